/* LIBS: sa rpc core */
/*
 * test_sa.c - the storage authority's SQL layer, called in-process
 * (sa_call) against a real private PostgreSQL started with scripts/pg.sh.
 * Run from the repository top (scripts/ and schema/ are found there).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sa/sa_int.h"
#include "test/unit/harness.h"

struct fix {
	char dir[256];
	char dsn[512];
	struct sa *sa;
};

static int
fix_start(struct fix *f)
{
	char cmd[600];
	FILE *p;
	size_t n;

	snprintf(f->dir, sizeof(f->dir), "/tmp/test_sa-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(cmd, sizeof(cmd), "scripts/pg.sh start %s/pg 2>&1", f->dir);
	if ((p = popen(cmd, "r")) == NULL)
		return -1;
	if (fgets(f->dsn, sizeof(f->dsn), p) == NULL)
		f->dsn[0] = '\0';
	if (pclose(p) != 0) {
		fprintf(stderr, "pg.sh failed: %s\n", f->dsn);
		return -1;
	}
	n = strlen(f->dsn);
	while (n > 0 && f->dsn[n - 1] == '\n')
		f->dsn[--n] = '\0';
	return 0;
}

static void
fix_stop(struct fix *f)
{
	char cmd[600];

	sa_free(f->sa);
	f->sa = NULL;
	if (f->dir[0] == '\0')
		return;
	/* destroy, not stop + rm: the cluster may live in the /var/tmp
	 * fallback behind a symlink (pg.sh), which rm -rf would leave. */
	snprintf(cmd, sizeof(cmd),
	    "scripts/pg.sh destroy %s/pg >/dev/null 2>&1; "
	    "rm -rf %s",
	    f->dir, f->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup failed\n");
}

static struct fix F;

/* Calls a method with params given as JSON text; returns the problem type
 * name on error ("" on success) in a static-lifetime string. */
static const char *
call(enum rpc_method_id method, const char *params, json_t **result)
{
	json_t *p = json_loads(params, JSON_ALLOW_NUL, NULL), *r = NULL;
	struct problem *prob = NULL;
	static char type[64];

	if (p == NULL) {
		fprintf(stderr, "bad test JSON: %s\n", params);
		abort();
	}
	type[0] = '\0';
	if (sa_call(F.sa, method, p, &r, &prob) != 0) {
		snprintf(type, sizeof(type), "%s", prob_type_name(prob->type));
		problem_free(prob);
	}
	json_decref(p);
	if (result != NULL)
		*result = r;
	else
		json_decref(r);
	return type;
}

TH_TEST(test_migrate_twice)
{
	char err[512];
	int applied = -1, version = -1;

	TH_CHECK(t,
	    sa_migrate(
		F.dsn, "schema", 1, &applied, &version, err, sizeof(err)) == 0);
	TH_CHECK(t, applied >= 1 && version >= 1);
	TH_CHECK(t,
	    sa_migrate(
		F.dsn, "schema", 1, &applied, &version, err, sizeof(err)) == 0);
	TH_CHECK(t, applied == 0);
	/* check-only mode accepts a current database */
	TH_CHECK(t,
	    sa_migrate(F.dsn, "schema", 0, NULL, NULL, err, sizeof(err)) == 0);
	TH_CHECK(t,
	    sa_migrate(
		F.dsn, "/nonexistent", 1, NULL, NULL, err, sizeof(err)) == -1);
	TH_CHECK(t, strstr(err, "schema directory") != NULL);
}

TH_TEST(test_bad_dsn)
{
	struct sa_options o = {"host=/nonexistent dbname=x", 1, 1000, NULL};
	char err[512];
	struct sa *sa = sa_new(&o, err, sizeof(err));

	TH_CHECK(t, sa == NULL);
	TH_CHECK(t, strstr(err, "cannot connect") != NULL);
}

TH_TEST(test_open)
{
	struct sa_options o;
	char err[512];

	memset(&o, 0, sizeof(o));
	o.dsn = F.dsn;
	o.pool = 2;
	o.statement_timeout_ms = 5000;
	F.sa = sa_new(&o, err, sizeof(err));
	TH_CHECK(t, F.sa != NULL);
	TH_CHECK(t, sa_health(F.sa, err, sizeof(err)) == 0);
}

TH_TEST_IN(1, test_params_rejected)
{
	TH_CHECK_STR(t, call(RPC_SA_GET_ACCOUNT, "{}", NULL), "malformed");
	TH_CHECK_STR(
	    t, call(RPC_SA_GET_ACCOUNT, "{\"id\": 0}", NULL), "malformed");
	TH_CHECK_STR(
	    t, call(RPC_SA_GET_ACCOUNT, "{\"id\": 1.5}", NULL), "malformed");
	TH_CHECK_STR(t,
	    call(RPC_SA_GET_ACCOUNT, "{\"id\": 9007199254740993}", NULL),
	    "malformed");
	TH_CHECK_STR(t,
	    call(RPC_SA_GET_CERTIFICATE, "{\"serial\": \"ABCD\"}", NULL),
	    "malformed");
	TH_CHECK_STR(t, call(RPC_SA_GET_CERTIFICATE, "{\"serial\": \"a\"}", NULL),
	    "malformed");
	TH_CHECK_STR(t,
	    call(RPC_SA_RESERVE_SERIAL,
		"{\"serial\": \"abcd\", "
		"\"account_id\": 1, \"expires\": \"2030-13-01T00:00:00Z\"}",
		NULL),
	    "malformed");
	TH_CHECK_STR(t,
	    call(RPC_SA_RESERVE_SERIAL,
		"{\"serial\": \"abcd\", "
		"\"account_id\": 1, \"expires\": \"now\"}",
		NULL),
	    "malformed");
	TH_CHECK_STR(t,
	    call(RPC_SA_NEW_ACCOUNT,
		"{\"key\": {}, \"thumbprint\": "
		"\"a\\u0000b\"}",
		NULL),
	    "malformed");
	TH_CHECK_STR(t,
	    call(RPC_SA_NEW_EAB_KEY,
		"{\"kid\": \"k\", \"hmac_key\": "
		"\"a=\"}",
		NULL),
	    "malformed");
	TH_CHECK_STR(t, call(RPC_CA_ISSUE, "{}", NULL), "malformed");
	TH_CHECK_STR(t,
	    call(RPC_SA_NEW_AUTHZ,
		"{\"account_id\": 1, "
		"\"identifier\": {\"type\": \"dns\", \"value\": \"a\"}, "
		"\"expires\": \"2030-01-01T00:00:00Z\", \"challenges\": "
		"[{\"type\": \"http-01\", \"token\": \"a\\\"b\"}]}",
		NULL),
	    "malformed");
}

struct acct_arg {
	char tp[64];
	int64_t id;
	int attempts;
};

static const struct sa_stmt st_test_insert = {"test_insert",
    "INSERT INTO accounts (jwk, thumbprint) VALUES ('{}', $1) RETURNING id"};
static const struct sa_stmt st_test_ser = {
    "test_ser", "SELECT test_serialization_failure()"};

/* Inserts an account row with thumbprint a->tp in c's transaction; its id
 * goes to a->id. 0, or -1 with *prob set. */
static int
insert_account(struct sa_conn *c, struct acct_arg *a, struct problem **prob)
{
	struct sa_params p;
	PGresult *r;

	sa_params_init(&p);
	sa_p_str(&p, a->tp);
	if ((r = sa_q(c, &st_test_insert, &p, prob)) == NULL)
		return -1;
	a->id = sa_col_int(r, 0, 0);
	PQclear(r);
	return 0;
}

static int
fail_after_insert(struct sa_conn *c, void *arg, struct problem **prob)
{
	if (insert_account(c, arg, prob) != 0)
		return -1;
	*prob = problem_new(PROB_UNAUTHORIZED, "later step failed");
	return -1;
}

TH_TEST_IN(1, test_tx_rollback)
{
	struct sa_conn *c = &F.sa->conns[0];
	struct acct_arg a;
	struct problem *prob = NULL;
	char params[128];

	memset(&a, 0, sizeof(a));
	snprintf(a.tp, sizeof(a.tp), "rollback-%d", (int)getpid());
	TH_CHECK(t, sa_tx(c, fail_after_insert, &a, &prob) == -1);
	TH_CHECK(t, prob != NULL && prob->type == PROB_UNAUTHORIZED);
	problem_free(prob);
	TH_CHECK(t, a.id > 0);
	snprintf(params, sizeof(params), "{\"thumbprint\": \"%s\"}", a.tp);
	TH_CHECK_STR(
	    t, call(RPC_SA_GET_ACCOUNT_BY_THUMBPRINT, params, NULL), "notFound");
}

static int
fail_once_serialization(struct sa_conn *c, void *arg, struct problem **prob)
{
	struct acct_arg *a = arg;
	PGresult *r;

	a->attempts++;
	if (insert_account(c, a, prob) != 0)
		return -1;
	if (a->attempts == 1) {
		if ((r = sa_q(c, &st_test_ser, NULL, prob)) == NULL)
			return -1;
		PQclear(r);
	}
	return 0;
}

TH_TEST_IN(1, test_tx_retries_serialization_failure)
{
	struct sa_conn *c = &F.sa->conns[0];
	struct acct_arg a;
	struct problem *prob = NULL;
	char cmd[1024], params[128];
	json_t *r = NULL;

	snprintf(cmd, sizeof(cmd),
	    "psql '%s' -qc \"CREATE OR REPLACE FUNCTION "
	    "test_serialization_failure() RETURNS int AS \\$\\$ BEGIN RAISE "
	    "EXCEPTION 'injected' USING ERRCODE = '40001'; END \\$\\$ "
	    "LANGUAGE plpgsql\" >/dev/null",
	    F.dsn);
	TH_CHECK(t, system(cmd) == 0);
	memset(&a, 0, sizeof(a));
	snprintf(a.tp, sizeof(a.tp), "retry-%d", (int)getpid());
	TH_CHECK(t, sa_tx(c, fail_once_serialization, &a, &prob) == 0);
	problem_free(prob);
	TH_CHECK(t, a.attempts == 2);
	snprintf(params, sizeof(params), "{\"thumbprint\": \"%s\"}", a.tp);
	TH_CHECK_STR(t, call(RPC_SA_GET_ACCOUNT_BY_THUMBPRINT, params, &r), "");
	TH_CHECK(t, json_integer_value(json_object_get(r, "id")) == a.id);
	json_decref(r);
}

TH_TEST(test_fqdn_set_hash)
{
	json_t *a = json_loads("[{\"type\":\"dns\",\"value\":\"b.com\"},"
			       "{\"type\":\"dns\",\"value\":\"a.com\"}]",
	    0, NULL);
	json_t *b = json_loads("[{\"type\":\"dns\",\"value\":\"a.com\"},"
			       "{\"type\":\"dns\",\"value\":\"b.com\"},"
			       "{\"type\":\"dns\",\"value\":\"a.com\"}]",
	    0, NULL);
	json_t *c =
	    json_loads("[{\"type\":\"dns\",\"value\":\"a.com\"}]", 0, NULL);
	char *ha = sa_fqdn_set_hash(a), *hb = sa_fqdn_set_hash(b),
	     *hc = sa_fqdn_set_hash(c);

	TH_CHECK_STR(t, ha, hb);
	TH_CHECK(t, strcmp(ha, hc) != 0);
	TH_CHECK(t, strlen(ha) == 64);
	free(ha);
	free(hb);
	free(hc);
	json_decref(a);
	json_decref(b);
	json_decref(c);
}

#define NTHREADS 8
#define PER_THREAD 25

static void *
pool_worker(void *arg)
{
	int *fails = arg, i;
	char params[256];
	uint8_t rnd[16];
	char *tp;

	for (i = 0; i < PER_THREAD; i++) {
		random_bytes(rnd, sizeof(rnd));
		tp = hex_encode(rnd, sizeof(rnd));
		snprintf(params, sizeof(params),
		    "{\"key\": {\"kty\": \"EC\"}, "
		    "\"thumbprint\": \"%s\"}",
		    tp);
		free(tp);
		{
			json_t *p = json_loads(params, 0, NULL), *r = NULL;
			struct problem *prob = NULL;

			if (sa_call(F.sa, RPC_SA_NEW_ACCOUNT, p, &r, &prob) !=
			    0) {
				(*fails)++;
				problem_free(prob);
			}
			json_decref(r);
			json_decref(p);
		}
	}
	return NULL;
}

TH_TEST_IN(1, test_pool_shared_by_threads)
{
	pthread_t th[NTHREADS];
	int fails[NTHREADS] = {0}, i, total = 0;

	for (i = 0; i < NTHREADS; i++)
		TH_CHECK(t,
		    pthread_create(&th[i], NULL, pool_worker, &fails[i]) == 0);
	for (i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		total += fails[i];
	}
	TH_CHECK(t, total == 0);
}

TH_TEST_IN(1, test_account_conflict_and_update)
{
	json_t *r = NULL;
	char params[256];
	int64_t id;

	TH_CHECK_STR(t,
	    call(RPC_SA_NEW_ACCOUNT,
		"{\"key\": {\"kty\": \"OKP\"}, "
		"\"thumbprint\": \"unit-tp-1\", \"contact\": "
		"[\"mailto:a@b.c\"]}",
		&r),
	    "");
	id = json_integer_value(json_object_get(r, "id"));
	TH_CHECK(t, id > 0);
	TH_CHECK_STR(
	    t, json_string_value(json_object_get(r, "status")), "valid");
	json_decref(r);
	TH_CHECK_STR(t,
	    call(RPC_SA_NEW_ACCOUNT,
		"{\"key\": {}, \"thumbprint\": "
		"\"unit-tp-1\"}",
		NULL),
	    "conflict");
	snprintf(params, sizeof(params),
	    "{\"id\": %lld, \"status\": "
	    "\"deactivated\"}",
	    (long long)id);
	TH_CHECK_STR(t, call(RPC_SA_UPDATE_ACCOUNT, params, &r), "");
	TH_CHECK_STR(
	    t, json_string_value(json_object_get(r, "status")), "deactivated");
	TH_CHECK(t, json_array_size(json_object_get(r, "contact")) == 1);
	json_decref(r);
}

int
main(void)
{
	struct th t = TH_INIT;

	log_init("test_sa", LOG_LEVEL_ERROR);
	if (fix_start(&F) != 0) {
		fprintf(stderr,
		    "cannot start PostgreSQL (run from the "
		    "repository top)\n");
		fix_stop(&F); /* whatever pg.sh got as far as starting */
		printf("0 passed, 1 failed\n");
		return 1;
	}
	th_run_tests(&t);
	/* group 1: the tests that need the SA handle test_open made */
	if (F.sa != NULL)
		th_run_group(&t, 1);
	fix_stop(&F);
	return th_done(&t);
}
