/*
 * sa_db.c - libpq connections, prepared statements, transactions and the
 * mapping of PostgreSQL errors to ACME problems.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sa/sa_int.h"

#define SA_TX_RETRIES 5

void
sa_params_init(struct sa_params *p)
{
	p->n = 0;
	p->nown = 0;
}

void
sa_p_str(struct sa_params *p, const char *s)
{
	if (p->n >= SA_MAX_PARAMS) {
		log_bug("too many SQL parameters");
		abort();
	}
	p->v[p->n++] = s;
}

void
sa_p_int(struct sa_params *p, int64_t v)
{
	if (p->n >= SA_MAX_PARAMS) {
		log_bug("too many SQL parameters");
		abort();
	}
	snprintf(p->buf[p->n], sizeof(p->buf[p->n]), "%" PRId64, v);
	p->v[p->n] = p->buf[p->n];
	p->n++;
}

void
sa_p_bool(struct sa_params *p, int v)
{
	sa_p_str(p, v ? "true" : "false");
}

int
sa_sqlstate_is(const struct sa_conn *c, const char *state)
{
	return strcmp(c->sqlstate, state) == 0;
}

static void
sa_forget_prepared(struct sa_conn *c)
{
	free(c->prepared);
	c->prepared = NULL;
	c->nprepared = c->capprepared = 0;
}

void
sa_conn_close(struct sa_conn *c)
{
	if (c->pg != NULL)
		PQfinish(c->pg);
	c->pg = NULL;
	sa_forget_prepared(c);
}

int
sa_conn_open(struct sa_conn *c, char *err, size_t errlen)
{
	/* The DSN comes last so that it may override the defaults before it
	 * (a multi-host DSN sets a shorter connect_timeout per host). */
	const char *keys[] = {
	    "connect_timeout", "application_name", "dbname", NULL};
	const char *vals[] = {"5", "anvil-sa", c->sa->dsn, NULL};
	PGresult *r = NULL;
	char sql[96];
	int ret = -1;

	sa_conn_close(c);
	c->pg = PQconnectdbParams(keys, vals, 1);
	if (c->pg == NULL || PQstatus(c->pg) != CONNECTION_OK) {
		snprintf(err, errlen, "cannot connect to PostgreSQL: %s",
		    c->pg ? PQerrorMessage(c->pg) : "out of memory");
		goto out;
	}
	snprintf(sql, sizeof(sql),
	    "SET statement_timeout = %" PRId64 "; SET TIME ZONE 'UTC'",
	    c->sa->statement_timeout_ms);
	r = PQexec(c->pg, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		snprintf(err, errlen, "cannot configure connection: %s",
		    PQerrorMessage(c->pg));
		goto out;
	}
	c->broken = 0;
	ret = 0;
out:
	PQclear(r);
	if (ret != 0) {
		/* strip libpq's trailing newline */
		size_t n = strlen(err);
		while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
			err[--n] = '\0';
		sa_conn_close(c);
		c->broken = 1;
	}
	return ret;
}

/*
 * 1 if the idle connection c is known dead without sending anything: the
 * server closed it while it sat in the pool (a restart sends FATAL 57P01
 * and closes, a failover or idle timeout just closes). An idle connection
 * has nothing to read, so readable means a goodbye or EOF.
 */
static int
sa_conn_dead_while_idle(struct sa_conn *c)
{
	struct pollfd pfd;

	if (PQtransactionStatus(c->pg) != PQTRANS_IDLE)
		return 0;
	pfd.fd = PQsocket(c->pg);
	pfd.events = POLLIN;
	pfd.revents = 0;
	if (pfd.fd < 0)
		return 1;
	if (poll(&pfd, 1, 0) <= 0)
		return 0;
	/* We never LISTEN, so the server has nothing to say to an idle
	 * session but goodbye (the FATAL may come before the EOF is seen):
	 * anything readable retires the connection. */
	(void)PQconsumeInput(c->pg);
	return 1;
}

/*
 * Makes sure c is connected; PROB_UNAVAILABLE otherwise. Outside a
 * transaction a connection found dead is replaced before the statement is
 * sent, whatever the statement (writes included); inside one it is not,
 * the transaction being lost with it.
 */
static int
sa_conn_ensure(struct sa_conn *c, struct problem **prob)
{
	char err[512];

	if (c->pg != NULL && !c->broken && PQstatus(c->pg) == CONNECTION_OK) {
		if (c->in_tx || !sa_conn_dead_while_idle(c))
			return 0;
		log_info("pooled PostgreSQL connection closed by the server "
			 "while idle; reconnecting");
		c->broken = 1;
	}
	if (c->in_tx) {
		*prob = problem_new(
		    PROB_UNAVAILABLE, "database unavailable, retry later");
		(*prob)->retry_after = 1;
		return -1;
	}
	if (sa_conn_open(c, err, sizeof(err)) != 0) {
		log_warn("database unavailable: %s", err);
		*prob = problem_new(
		    PROB_UNAVAILABLE, "database unavailable, retry later");
		(*prob)->retry_after = 1;
		return -1;
	}
	log_info("connected to PostgreSQL");
	if (c->sa->metrics != NULL)
		metrics_counter_add(c->sa->metrics,
		    "anvil_sa_db_connects_total",
		    "PostgreSQL connections opened by the pool", NULL, 1);
	return 0;
}

/* Maps a failed statement to a problem; marks the connection broken. */
static struct problem *
sa_problem_from(struct sa_conn *c, const PGresult *r, const char *what)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(c->pg);
	struct problem *p;

	snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", state ? state : "");
	if (PQstatus(c->pg) != CONNECTION_OK || state == NULL ||
	    strncmp(c->sqlstate, "08", 2) == 0 ||
	    strncmp(c->sqlstate, "57P", 3) == 0 ||
	    strcmp(c->sqlstate, "25006") == 0) {
		/* 25006: read-only transaction: the server was demoted to a
		 * standby (failover); a new connection finds the primary
		 * (target_session_attrs=read-write in the DSN). */
		c->broken = 1;
		log_warn("database connection lost during %s: %s", what,
		    msg ? msg : "");
		p = problem_new(
		    PROB_UNAVAILABLE, "database unavailable, retry later");
		p->retry_after = 1;
		return p;
	}
	if (strcmp(c->sqlstate, "57014") == 0 ||
	    strcmp(c->sqlstate, "40001") == 0 ||
	    strcmp(c->sqlstate, "40P01") == 0 ||
	    strncmp(c->sqlstate, "53", 2) == 0) {
		log_warn("%s: %s", what, msg ? msg : "");
		p = problem_new(PROB_UNAVAILABLE, "database busy, retry later");
		p->retry_after = 1;
		return p;
	}
	if (strcmp(c->sqlstate, "23505") == 0)
		return problem_new(PROB_CONFLICT, "already exists");
	if (strcmp(c->sqlstate, "23503") == 0)
		return problem_new(
		    PROB_MALFORMED, "refers to an object that does not exist");
	if (strncmp(c->sqlstate, "22", 2) == 0 ||
	    strncmp(c->sqlstate, "23", 2) == 0) {
		log_info(
		    "%s rejected by the database: %s", what, msg ? msg : "");
		return problem_new(PROB_MALFORMED, "invalid value");
	}
	log_bug(
	    "%s failed: SQLSTATE %s: %s", what, c->sqlstate, msg ? msg : "");
	return problem_new(PROB_SERVER_INTERNAL, "database error");
}

static int
sa_prepare(struct sa_conn *c, const struct sa_stmt *st, int nparams,
    struct problem **prob)
{
	PGresult *r = NULL;
	size_t i;
	int ret = -1;

	for (i = 0; i < c->nprepared; i++)
		if (c->prepared[i] == st)
			return 0;
	r = PQprepare(c->pg, st->name, st->sql, nparams, NULL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		*prob = sa_problem_from(c, r, st->name);
		goto out;
	}
	if (c->nprepared == c->capprepared) {
		c->capprepared = c->capprepared ? c->capprepared * 2 : 32;
		c->prepared = xrealloc(
		    c->prepared, c->capprepared * sizeof(*c->prepared));
	}
	c->prepared[c->nprepared++] = st;
	ret = 0;
out:
	PQclear(r);
	return ret;
}

/*
 * Whether a statement that failed on a dead connection outside a
 * transaction may be sent again: a read, or a server that told us it was
 * shutting down (57P01..57P03) before anything ran.
 */
static int
sa_safe_to_retry(const struct sa_conn *c, const struct sa_stmt *st)
{
	return strncmp(c->sqlstate, "57P0", 4) == 0 ||
	    strncasecmp(st->sql, "SELECT", 6) == 0;
}

PGresult *
sa_q(struct sa_conn *c, const struct sa_stmt *st, const struct sa_params *p,
    struct problem **prob)
{
	PGresult *r = NULL;
	ExecStatusType s;
	int n = p ? p->n : 0;

	for (int attempt = 0;; attempt++) {
		int idle;

		c->sqlstate[0] = '\0';
		if (sa_conn_ensure(c, prob) != 0)
			return NULL;
		idle = PQtransactionStatus(c->pg) == PQTRANS_IDLE;
		if (strncmp(st->name, SA_ADHOC_PREFIX,
			strlen(SA_ADHOC_PREFIX)) == 0)
			r = PQexecParams(c->pg, st->sql, n, NULL,
			    p ? p->v : NULL, NULL, NULL, 0);
		else if (sa_prepare(c, st, 0, prob) != 0) {
			if (attempt == 0 && idle && c->broken &&
			    sa_safe_to_retry(c, st)) {
				problem_free(*prob);
				*prob = NULL;
				continue;
			}
			return NULL;
		} else
			r = PQexecPrepared(
			    c->pg, st->name, n, p ? p->v : NULL, NULL, NULL, 0);
		s = PQresultStatus(r);
		if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK)
			return r;
		*prob = sa_problem_from(c, r, st->name);
		PQclear(r);
		r = NULL;
		/*
		 * A pooled connection that PostgreSQL closed while it sat idle
		 * (restart, failover) fails on first use; outside a transaction
		 * that statement never ran, so one retry on a new connection is
		 * safe for reads and for the administrator-shutdown case.
		 */
		if (attempt == 0 && idle && c->broken &&
		    sa_safe_to_retry(c, st)) {
			problem_free(*prob);
			*prob = NULL;
			continue;
		}
		return NULL;
	}
}

int
sa_exec(struct sa_conn *c, const struct sa_stmt *st, const struct sa_params *p,
    long *rows, struct problem **prob)
{
	PGresult *r = sa_q(c, st, p, prob);

	if (r == NULL)
		return -1;
	if (rows != NULL)
		*rows = strtol(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return 0;
}

/* Plain (unprepared) command such as BEGIN; 0 or -1 with *prob. */
static int
sa_simple(struct sa_conn *c, const char *sql, struct problem **prob)
{
	PGresult *r;
	int ret = 0;

	r = PQexec(c->pg, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		*prob = sa_problem_from(c, r, sql);
		ret = -1;
	}
	PQclear(r);
	return ret;
}

static int
sa_retryable(const struct sa_conn *c)
{
	return !c->broken &&
	    (sa_sqlstate_is(c, "40001") || sa_sqlstate_is(c, "40P01"));
}

int
sa_tx(struct sa_conn *c, sa_tx_fn fn, void *arg, struct problem **prob)
{
	struct problem *p = NULL;
	int attempt;
	struct timespec ts;

	for (attempt = 0; attempt < SA_TX_RETRIES; attempt++) {
		problem_free(p);
		p = NULL;
		c->sqlstate[0] = '\0';
		if (sa_conn_ensure(c, &p) != 0)
			break;
		if (sa_simple(c, "BEGIN", &p) != 0) {
			/* Nothing ran yet: a connection that died while idle
			 * is replaced once. */
			if (c->broken && attempt == 0)
				continue;
			break;
		}
		c->in_tx = 1;
		if (fn(c, arg, &p) == 0) {
			c->in_tx = 0;
			if (sa_simple(c, "COMMIT", &p) == 0)
				return 0;
		} else {
			c->in_tx = 0;
			struct problem *ignored = NULL;
			char state[6];

			/* keep the SQLSTATE of the failure, not ROLLBACK's */
			memcpy(state, c->sqlstate, sizeof(state));
			if (!c->broken &&
			    sa_simple(c, "ROLLBACK", &ignored) != 0)
				c->broken = 1;
			problem_free(ignored);
			memcpy(c->sqlstate, state, sizeof(state));
		}
		if (!sa_retryable(c))
			break;
		log_info("transaction retry %d after SQLSTATE %s", attempt + 1,
		    c->sqlstate);
		ts.tv_sec = 0;
		ts.tv_nsec = (long)(attempt + 1) * 5000000L;
		nanosleep(&ts, NULL);
	}
	if (p == NULL)
		p = problem_new(PROB_SERVER_INTERNAL, "transaction failed");
	*prob = p;
	return -1;
}

struct sa *
sa_new(const struct sa_options *opt, char *err, size_t errlen)
{
	struct sa *sa = NULL;
	size_t i, n = opt->pool ? opt->pool : 1;

	if (opt->dsn == NULL) {
		snprintf(err, errlen, "no database DSN configured");
		return NULL;
	}
	sa = xcalloc(1, sizeof(*sa));
	sa->dsn = xstrdup(opt->dsn);
	sa->statement_timeout_ms = opt->statement_timeout_ms;
	sa->metrics = opt->metrics;
	if (pthread_mutex_init(&sa->mu, NULL) != 0 ||
	    pthread_cond_init(&sa->cv, NULL) != 0 ||
	    pthread_mutex_init(&sa->health_mu, NULL) != 0) {
		log_bug("pthread init failed");
		abort();
	}
	sa->conns = xcalloc(n, sizeof(*sa->conns));
	sa->busy = xcalloc(n, sizeof(*sa->busy));
	sa->nconns = n;
	for (i = 0; i < n; i++) {
		sa->conns[i].sa = sa;
		sa->conns[i].broken = 1;
	}
	sa->health.sa = sa;
	sa->health.broken = 1;
	if (sa_conn_open(&sa->conns[0], err, errlen) != 0) {
		sa_free(sa);
		return NULL;
	}
	return sa;
}

void
sa_free(struct sa *sa)
{
	if (sa == NULL)
		return;
	for (size_t i = 0; i < sa->nconns; i++)
		sa_conn_close(&sa->conns[i]);
	sa_conn_close(&sa->health);
	pthread_mutex_destroy(&sa->mu);
	pthread_cond_destroy(&sa->cv);
	pthread_mutex_destroy(&sa->health_mu);
	free(sa->conns);
	free(sa->busy);
	free(sa->dsn);
	free(sa);
}

int
sa_health(void *arg, char *msg, size_t msglen)
{
	struct sa *sa = arg;
	struct sa_conn *c = &sa->health;
	PGresult *r = NULL;
	int ret = -1;

	pthread_mutex_lock(&sa->health_mu);
	/*
	 * Two tries: a connection that predates a PostgreSQL restart still
	 * looks CONNECTION_OK until used, so its first ping fails although a
	 * fresh connection would succeed.
	 */
	for (int attempt = 0; attempt < 2 && ret != 0; attempt++) {
		if (c->pg == NULL || c->broken ||
		    PQstatus(c->pg) != CONNECTION_OK) {
			if (sa_conn_open(c, msg, msglen) != 0)
				goto out;
		}
		PQclear(r);
		r = PQexec(c->pg, "SELECT 1");
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			snprintf(msg, msglen, "database ping failed: %s",
			    PQerrorMessage(c->pg));
			c->broken = 1;
			continue;
		}
		ret = 0;
	}
out:
	PQclear(r);
	pthread_mutex_unlock(&sa->health_mu);
	return ret;
}

/* "{1,2,3}" for a bigint[] parameter: the JSON array's text in braces.
 * Caller frees. */
char *
sa_id_array(const int64_t *ids, size_t n)
{
	json_t *a = json_array();
	char *s;

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_integer(ids[i]));
	s = sa_json_text(a);
	json_decref(a);
	s[0] = '{';
	s[strlen(s) - 1] = '}';
	return s;
}

/*
 * Runs a one-row UPDATE keyed by $1 = id; when no row changes, answers
 * notFound if the row does not exist, else `otherwise`.
 */
int
sa_update_or(struct sa_conn *c, const struct sa_stmt *st,
    const struct sa_params *p, const struct sa_stmt *exists,
    enum prob_type otherwise, const char *detail, struct problem **prob)
{
	struct sa_params q;
	PGresult *r;
	long rows = 0;

	if (sa_exec(c, st, p, &rows, prob) != 0)
		return -1;
	if (rows == 1)
		return 0;
	sa_params_init(&q);
	sa_p_str(&q, p->v[0]);
	if ((r = sa_q(c, exists, &q, prob)) == NULL)
		return -1;
	if (PQntuples(r) == 0)
		*prob = problem_new(PROB_NOT_FOUND, "no such object");
	else
		*prob = problem_new(otherwise, "%s", detail);
	PQclear(r);
	return -1;
}

/*
 * Ids (first column) of the rows `st` lists for params.older_than, as
 * {key: [ids]}. Shared by the stale-order and stale-authz sweeps.
 */
int
sa_stale_ids(struct sa_conn *c, const struct sa_stmt *st, const char *key,
    json_t *params, json_t **result, struct problem **prob)
{
	struct sa_params p;
	char before[32];

	if (sa_get_time(params, "older_than", 1, before, sizeof(before), prob) <
	    0)
		return -1;
	sa_params_init(&p);
	sa_p_str(&p, before);
	return sa_q_ids(c, st, &p, key, result, prob);
}

/* See sa_int.h. */
int
sa_q_ids(struct sa_conn *c, const struct sa_stmt *st,
    const struct sa_params *p, const char *key, json_t **result,
    struct problem **prob)
{
	PGresult *r;
	json_t *ids;
	int i;

	if ((r = sa_q(c, st, p, prob)) == NULL)
		return -1;
	ids = json_array();
	for (i = 0; i < PQntuples(r); i++)
		json_array_append_new(ids, json_integer(sa_col_int(r, i, 0)));
	PQclear(r);
	*result = json_pack("{s:o}", key, ids);
	return 0;
}

/* See sa_int.h. */
void
sa_row_json(json_t *o, const PGresult *r, int row,
    const struct sa_col_spec *spec, size_t n)
{
	sa_row_json_at(o, r, row, 0, spec, n);
}

/* See sa_int.h. */
json_t *
sa_col_json(const PGresult *r, int row, int col, enum sa_col_kind kind)
{
	const char *v = sa_col(r, row, col);

	switch (kind) {
	case SA_COL_NONE:
		return NULL;
	case SA_COL_STR:
		return v != NULL ? json_string(v) : NULL;
	case SA_COL_STR_OR_NULL:
		return v != NULL ? json_string(v) : json_null();
	case SA_COL_INT:
		return v != NULL ? json_integer(sa_col_int(r, row, col)) : NULL;
	case SA_COL_BOOL:
		return json_boolean(sa_col_bool(r, row, col));
	case SA_COL_JSON:
		return sa_json_parse(v);
	case SA_COL_JSON_OPT:
		return v != NULL ? sa_json_parse(v) : NULL;
	case SA_COL_HEX_B64:
		return sa_col_hex_as_b64(r, row, col);
	}
	return NULL;
}

/* See sa_int.h. */
void
sa_row_json_at(json_t *o, const PGresult *r, int row, int base,
    const struct sa_col_spec *spec, size_t n)
{
	json_t *j;
	size_t i;

	for (i = 0; i < n; i++) {
		j = sa_col_json(r, row, base + (int)i, spec[i].kind);
		if (j != NULL)
			json_object_set_new(o, spec[i].key, j);
	}
}

/* See sa_int.h. */
PGresult *
sa_q_row(struct sa_conn *c, const struct sa_stmt *st,
    const struct sa_params *p, const char *notfound, struct problem **prob)
{
	PGresult *r = sa_q(c, st, p, prob);

	if (r != NULL && PQntuples(r) != 1) {
		*prob = problem_new(PROB_NOT_FOUND, "%s", notfound);
		PQclear(r);
		r = NULL;
	}
	return r;
}

/* See sa_int.h. */
int
sa_q_one(struct sa_conn *c, const struct sa_stmt *st,
    const struct sa_params *p, const struct sa_col_spec *spec, size_t n,
    const char *notfound, json_t **out, struct problem **prob)
{
	PGresult *r = sa_q_row(c, st, p, notfound, prob);

	if (r == NULL)
		return -1;
	*out = json_object();
	sa_row_json(*out, r, 0, spec, n);
	PQclear(r);
	return 0;
}
