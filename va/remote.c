/*
 * remote.c - multi-perspective issuance corroboration (CA/Browser Forum
 * Baseline Requirements 3.2.2.9, Ballot SC-067).
 *
 * A primary VA (mpic.role "primary" with mpic.remotes) validates locally
 * first; when that passes it asks every remote VA, over mutual-TLS RPC
 * (va.remote_validate / va.remote_check_caa, caller class "va"), to
 * validate the same challenge and CAA from its own network position, all
 * at once, each on a thread of its own doing a blocking rpc_call. The
 * primary waits until the outcome is decided: enough remotes agreed
 * (n - allowed), too many did not (more than allowed), or every remote
 * answered. Remotes still running then finish on their own; their result
 * is logged and counted but no longer changes the decision.
 *
 * Every perspective's result goes into the validation record (the
 * authorization's audit trail in the SA), the VA's audit log and the
 * metrics anvil_va_mpic_remote_total{perspective,op,outcome} and
 * anvil_va_mpic_corroborations_total{op,result}. A lost quorum is its own
 * problem: "Multi-perspective corroboration failed ..." naming every
 * failing perspective, one RFC 8555 §6.7.1 subproblem each.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "va/va_int.h"

enum slot_state {
	SLOT_RUNNING,
	SLOT_PASS,  /* the remote agreed */
	SLOT_FAIL,  /* it saw something else (invalid / CAA forbids) */
	SLOT_ERROR, /* no usable answer (down, timeout, refused call) */
	SLOT__MAX
};

static const char *const slot_names[SLOT__MAX] = {
    "pending", "valid", "invalid", "unavailable"};

struct va_remote {
	char *name;
	char *region; /* may be NULL */
	struct rpc_client *client;
};

struct va_mpic {
	struct va_remote *remotes;
	size_t n;
	int allowed;     /* remote failures a corroboration may absorb */
	int min_regions; /* distinct regions the corroborators must span */
	int64_t timeout_ms;
	const char *perspective; /* borrowed from the config */
	struct metrics *metrics;
	/* threads still running (detached): va_mpic_free waits for them */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int threads;
};

struct slot {
	enum slot_state state;
	json_t *result;       /* the remote's reply (owned) */
	struct problem *prob; /* why it failed (owned) */
	int64_t ms;           /* duration of the call */
};

/* One corroboration, shared by the waiting worker and the remote calls. */
struct fan {
	struct va_mpic *m;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int refs;
	int caa; /* va.remote_check_caa, else va.remote_validate */
	char *rid;
	size_t n;
	struct slot *slots;
	int passed, failed, done;
	int decided; /* the worker has taken its decision */
};

struct fan_arg {
	struct fan *f;
	size_t i;
	json_t *params; /* owned copy: jansson refcounts are not atomic */
	int timeout_ms;
};

/* See va.h. */
int
va_mpic_allowed_failures(size_t n, int64_t configured)
{
	if (configured >= 0)
		return (int)configured;
	/* BR 3.2.2.9 "Quorum Requirements": 2-5 remote perspectives allow 1
	 * non-corroboration, 6 or more allow 2. With a single remote nothing
	 * can be absorbed. */
	if (n <= 1)
		return 0;
	return n <= 5 ? 1 : 2;
}

/* A copy of a remote's object without the keys that are not the RPC
 * client's (perspective, region). New reference. */
static json_t *
client_part(const json_t *r)
{
	json_t *c = json_deep_copy(r);

	json_object_del(c, "perspective");
	json_object_del(c, "region");
	return c;
}

/* 1 if name is a usable perspective name. */
static int
name_ok(const char *name)
{
	return name != NULL && name[0] != '\0' &&
	    strpbrk(name, "\"\\\r\n ") == NULL;
}

/* Checks mpic.remotes[i] (borrowed) of cfg: 0, or -1 with err. */
static int
remote_check(const struct va_config *cfg, size_t i, const char *path, char *err,
    size_t errlen)
{
	const json_t *rs = cfg->mpic_remotes, *r = json_array_get(rs, i);
	const char *name = json_string_value(json_object_get(r, "perspective"));
	const json_t *region = json_object_get(r, "region");
	struct rpc_client_config cc;
	char sub[256];
	json_t *c;
	size_t k;
	int rc;

	if (!json_is_object(r) || !name_ok(name)) {
		snprintf(err, errlen,
		    "%s: mpic.remotes[%zu].perspective: required name "
		    "without spaces or quotes",
		    path, i);
		return -1;
	}
	if (strcmp(name, cfg->mpic_perspective) == 0) {
		snprintf(err, errlen,
		    "%s: mpic.remotes[%zu].perspective: \"%s\" is this "
		    "VA's own perspective",
		    path, i, name);
		return -1;
	}
	for (k = 0; k < i; k++)
		if (strcmp(name,
			json_string_value(json_object_get(
			    json_array_get(rs, k), "perspective"))) == 0) {
			snprintf(err, errlen,
			    "%s: mpic.remotes[%zu].perspective: \"%s\" "
			    "appears twice",
			    path, i, name);
			return -1;
		}
	if (region != NULL && !json_is_string(region)) {
		snprintf(err, errlen,
		    "%s: mpic.remotes[%zu].region: expected a string", path, i);
		return -1;
	}
	c = client_part(r);
	rc = rpc_client_config_parse(c, &cc, sub, sizeof(sub));
	json_decref(c);
	if (rc == 0 &&
	    (cc.target == NULL || strncmp(cc.target, "tcp:", 4) != 0)) {
		snprintf(sub, sizeof(sub),
		    "target: a remote VA is reached over mutual TLS "
		    "(\"tcp:host:port\")");
		rc = -1;
	}
	rpc_client_config_clear(&cc);
	if (rc != 0)
		snprintf(
		    err, errlen, "%s: mpic.remotes[%zu]: %s", path, i, sub);
	return rc;
}

/*
 * mpic.min_regions: 0 (off) or at most the distinct regions of the
 * remotes, every remote then naming its region. 0, or -1 with err.
 */
static int
min_regions_check(
    const struct va_config *cfg, const char *path, char *err, size_t errlen)
{
	const json_t *rs = cfg->mpic_remotes;
	size_t i, k, n = json_array_size(rs), distinct = 0;

	if (cfg->mpic_min_regions < 0 || cfg->mpic_min_regions > 32) {
		snprintf(
		    err, errlen, "%s: mpic.min_regions: expected 0..32", path);
		return -1;
	}
	if (cfg->mpic_min_regions == 0)
		return 0;
	for (i = 0; i < n; i++) {
		const char *r = json_string_value(
		    json_object_get(json_array_get(rs, i), "region"));
		if (r == NULL) {
			snprintf(err, errlen,
			    "%s: mpic.remotes[%zu].region: required when "
			    "mpic.min_regions is set",
			    path, i);
			return -1;
		}
		for (k = 0; k < i; k++)
			if (strcmp(r,
				json_string_value(json_object_get(
				    json_array_get(rs, k), "region"))) == 0)
				break;
		if (k == i)
			distinct++;
	}
	if ((size_t)cfg->mpic_min_regions > distinct) {
		snprintf(err, errlen,
		    "%s: mpic.min_regions: %lld, but the remotes span only %zu "
		    "region(s)",
		    path, (long long)cfg->mpic_min_regions, distinct);
		return -1;
	}
	return 0;
}

/* See va.h. */
int
va_mpic_config_check(
    const struct va_config *cfg, const char *path, char *err, size_t errlen)
{
	const json_t *rs = cfg->mpic_remotes;
	size_t i, n;

	if (strcmp(cfg->mpic_role, "primary") != 0 &&
	    strcmp(cfg->mpic_role, "remote") != 0) {
		snprintf(err, errlen,
		    "%s: mpic.role: expected \"primary\" or \"remote\"", path);
		return -1;
	}
	((struct va_config *)cfg)->mpic_is_remote =
	    strcmp(cfg->mpic_role, "remote") == 0;
	if (!name_ok(cfg->mpic_perspective)) {
		snprintf(err, errlen,
		    "%s: mpic.perspective: expected a non-empty name without "
		    "spaces or quotes",
		    path);
		return -1;
	}
	if (cfg->mpic_remote_timeout_ms < 0) {
		snprintf(
		    err, errlen, "%s: mpic.remote_timeout: must be >= 0", path);
		return -1;
	}
	if (rs == NULL || json_is_null(rs))
		return 0;
	if (!json_is_array(rs)) {
		snprintf(err, errlen,
		    "%s: mpic.remotes: expected an array of remote VAs", path);
		return -1;
	}
	n = json_array_size(rs);
	if (n > 0 && cfg->mpic_is_remote) {
		snprintf(err, errlen,
		    "%s: mpic.remotes: a remote VA (mpic.role \"remote\") "
		    "does not fan out further",
		    path);
		return -1;
	}
	if (n > 32) {
		snprintf(err, errlen, "%s: mpic.remotes: at most 32", path);
		return -1;
	}
	if (cfg->mpic_max_failures < -1 ||
	    (n > 0 && cfg->mpic_max_failures >= (int64_t)n)) {
		snprintf(err, errlen,
		    "%s: mpic.max_remote_failures: expected -1 (the BR "
		    "3.2.2.9 table) or 0..%zu (fewer than the remotes)",
		    path, n > 0 ? n - 1 : 0);
		return -1;
	}
	for (i = 0; i < n; i++)
		if (remote_check(cfg, i, path, err, errlen) != 0)
			return -1;
	return min_regions_check(cfg, path, err, errlen);
}

/* See va_int.h. */
struct va_mpic *
va_mpic_new(const struct va_config *cfg, struct metrics *metrics, char *err,
    size_t errlen)
{
	const json_t *rs = cfg->mpic_remotes;
	struct va_mpic *m;
	size_t i, n = json_is_array(rs) ? json_array_size(rs) : 0;

	if (n == 0 || cfg->mpic_is_remote)
		return NULL;
	m = xcalloc(1, sizeof(*m));
	m->remotes = xcalloc(n, sizeof(*m->remotes));
	m->metrics = metrics;
	m->perspective = cfg->mpic_perspective;
	m->allowed = va_mpic_allowed_failures(n, cfg->mpic_max_failures);
	m->min_regions = (int)cfg->mpic_min_regions;
	m->timeout_ms = cfg->mpic_remote_timeout_ms > 0
	    ? cfg->mpic_remote_timeout_ms
	    : cfg->validation_timeout_ms;
	if (pthread_mutex_init(&m->mu, NULL) != 0 ||
	    pthread_cond_init(&m->cv, NULL) != 0) {
		snprintf(err, errlen, "mpic: cannot create a lock");
		free(m->remotes);
		free(m);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		const json_t *r = json_array_get(rs, i);
		struct rpc_client_config cc;
		json_t *c = client_part(r);
		char sub[256];
		int rc = rpc_client_config_parse(c, &cc, sub, sizeof(sub));

		json_decref(c);
		m->n = i + 1;
		m->remotes[i].name = xstrdup(
		    json_string_value(json_object_get(r, "perspective")));
		if (json_is_string(json_object_get(r, "region")))
			m->remotes[i].region = xstrdup(
			    json_string_value(json_object_get(r, "region")));
		if (rc == 0)
			m->remotes[i].client = rpc_client_new(
			    &cc, m->remotes[i].name, metrics, sub, sizeof(sub));
		rpc_client_config_clear(&cc);
		if (rc != 0 || m->remotes[i].client == NULL) {
			snprintf(err, errlen, "mpic.remotes[%zu] (%s): %s", i,
			    m->remotes[i].name, sub);
			va_mpic_free(m);
			return NULL;
		}
	}
	return m;
}

/* See va_int.h. */
void
va_mpic_free(struct va_mpic *m)
{
	size_t i;

	if (m == NULL)
		return;
	/* Calls still running hold the clients: let them end (each is
	 * bounded by its timeout). */
	pthread_mutex_lock(&m->mu);
	while (m->threads > 0)
		pthread_cond_wait(&m->cv, &m->mu);
	pthread_mutex_unlock(&m->mu);
	for (i = 0; i < m->n; i++) {
		rpc_client_free(m->remotes[i].client);
		free(m->remotes[i].name);
		free(m->remotes[i].region);
	}
	free(m->remotes);
	pthread_mutex_destroy(&m->mu);
	pthread_cond_destroy(&m->cv);
	free(m);
}

/* See va_int.h. */
size_t
va_mpic_remotes(const struct va_mpic *m)
{
	return m != NULL ? m->n : 0;
}

static void
fan_unref(struct fan *f)
{
	size_t i;
	int last;

	pthread_mutex_lock(&f->mu);
	last = --f->refs == 0;
	pthread_mutex_unlock(&f->mu);
	if (!last)
		return;
	for (i = 0; i < f->n; i++) {
		json_decref(f->slots[i].result);
		problem_free(f->slots[i].prob);
	}
	free(f->slots);
	free(f->rid);
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cv);
	free(f);
}

/* Classifies a remote's reply (borrowed) into *s. */
static void
classify(struct slot *s, int caa, json_t *res)
{
	const json_t *e = json_object_get(res, "error");
	int ok;

	if (caa)
		ok = json_is_true(json_object_get(res, "ok"));
	else
		ok = json_is_string(json_object_get(res, "status")) &&
		    strcmp(json_string_value(json_object_get(res, "status")),
			"valid") == 0;
	if (ok) {
		s->state = SLOT_PASS;
		return;
	}
	s->state = SLOT_FAIL;
	s->prob = json_is_object(e) ? problem_from_json(e)
	    : caa ? problem_new(PROB_CAA, "CAA forbids issuance")
		  : problem_new(PROB_UNAUTHORIZED, "validation failed");
}

static void *
remote_main(void *arg)
{
	struct fan_arg *a = arg;
	struct fan *f = a->f;
	struct va_mpic *m = f->m;
	struct va_remote *r = &m->remotes[a->i];
	json_t *res = NULL;
	struct problem *prob = NULL;
	int64_t t0 = time_mono_ms();
	struct slot s = {SLOT_RUNNING, NULL, NULL, 0};
	char labels[256], esc[128];
	int late;

	if (rpc_call(r->client,
		rpc_method_name(
		    f->caa ? RPC_VA_REMOTE_CHECK_CAA : RPC_VA_REMOTE_VALIDATE),
		a->params, a->timeout_ms, f->rid, &res, &prob) != 0) {
		s.state = SLOT_ERROR;
		s.prob = prob != NULL
		    ? prob
		    : problem_new(PROB_UNAVAILABLE, "no answer");
	} else {
		classify(&s, f->caa, res);
		s.result = res;
	}
	s.ms = time_mono_ms() - t0;
	json_decref(a->params);

	snprintf(labels, sizeof(labels),
	    "perspective=\"%s\",op=\"%s\",outcome=\"%s\"",
	    metrics_label_escape(r->name, esc, sizeof(esc)),
	    f->caa ? "caa" : "validate", slot_names[s.state]);
	metrics_counter_add(m->metrics, "anvil_va_mpic_remote_total",
	    "Remote perspective answers by perspective, operation and outcome "
	    "(valid: corroborated, invalid: saw something else, "
	    "unavailable: no usable answer).",
	    labels, 1);
	snprintf(labels, sizeof(labels), "perspective=\"%s\"",
	    metrics_label_escape(r->name, esc, sizeof(esc)));
	metrics_histogram_observe(m->metrics,
	    "anvil_va_mpic_remote_duration_seconds",
	    "Time of one remote perspective's corroboration call.", labels,
	    (double)s.ms / 1000.0);

	pthread_mutex_lock(&f->mu);
	late = f->decided;
	f->slots[a->i] = s;
	f->done++;
	if (s.state == SLOT_PASS)
		f->passed++;
	else
		f->failed++;
	pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->mu);
	if (late)
		log_msg(LOG_LEVEL_INFO, f->rid,
		    "mpic: %s answered %s after the decision (%lld ms)",
		    r->name, slot_names[s.state], (long long)s.ms);
	fan_unref(f);
	free(a);

	pthread_mutex_lock(&m->mu);
	m->threads--;
	pthread_cond_broadcast(&m->cv);
	pthread_mutex_unlock(&m->mu);
	return NULL;
}

/* One perspective's entry of the validation record (new reference). */
static json_t *
slot_json(const struct va_remote *r, const struct slot *s, int caa)
{
	json_t *o = json_pack("{s:s,s:s}", "perspective", r->name, "status",
	    slot_names[s->state]);

	if (r->region != NULL)
		json_object_set_new(o, "region", json_string(r->region));
	json_object_set_new(o, "check", json_string(caa ? "caa" : "challenge"));
	if (s->state != SLOT_RUNNING)
		json_object_set_new(o, "duration_ms", json_integer(s->ms));
	else
		json_object_set_new(o, "note",
		    json_string("not awaited: the outcome was already "
				"decided"));
	if (s->prob != NULL)
		json_object_set_new(o, "error", problem_to_rpc_json(s->prob));
	if (!caa && s->result != NULL &&
	    json_is_array(json_object_get(s->result, "validation_record")))
		json_object_set(o, "validation_record",
		    json_object_get(s->result, "validation_record"));
	return o;
}

/* Distinct regions among the perspectives that agreed. f->mu held. */
static int
passed_regions(const struct fan *f)
{
	size_t i, k;
	int n = 0;

	for (i = 0; i < f->n; i++) {
		const char *r = f->m->remotes[i].region;
		if (f->slots[i].state != SLOT_PASS || r == NULL)
			continue;
		for (k = 0; k < i; k++)
			if (f->slots[k].state == SLOT_PASS &&
			    f->m->remotes[k].region != NULL &&
			    strcmp(f->m->remotes[k].region, r) == 0)
				break;
		if (k == i)
			n++;
	}
	return n;
}

/* 1 when the quorum is met: enough perspectives agreed, spanning enough
 * regions. f->mu held. */
static int
quorum_met(const struct fan *f)
{
	return f->passed >= (int)f->n - f->m->allowed &&
	    passed_regions(f) >= f->m->min_regions;
}

/* Starts remote i's call on a detached thread; on failure records the
 * slot as unavailable. f->mu not held. */
static void
fan_start(struct fan *f, size_t i, const json_t *params, int64_t budget)
{
	struct va_mpic *m = f->m;
	struct fan_arg *a = xcalloc(1, sizeof(*a));
	pthread_attr_t attr;
	pthread_t th;
	int rc;

	a->f = f;
	a->i = i;
	a->params = json_deep_copy(params);
	a->timeout_ms = (int)budget;
	pthread_mutex_lock(&f->mu);
	f->refs++;
	pthread_mutex_unlock(&f->mu);
	pthread_mutex_lock(&m->mu);
	m->threads++;
	pthread_mutex_unlock(&m->mu);
	rc = pthread_attr_init(&attr);
	if (rc == 0) {
		(void)pthread_attr_setdetachstate(
		    &attr, PTHREAD_CREATE_DETACHED);
		(void)pthread_attr_setstacksize(&attr, 256 * 1024);
		rc = pthread_create(&th, &attr, remote_main, a);
		pthread_attr_destroy(&attr);
	}
	if (rc == 0)
		return;
	/* counts as a perspective without an answer */
	pthread_mutex_lock(&m->mu);
	m->threads--;
	pthread_cond_broadcast(&m->cv);
	pthread_mutex_unlock(&m->mu);
	pthread_mutex_lock(&f->mu);
	f->refs--;
	f->slots[i].state = SLOT_ERROR;
	f->slots[i].prob = problem_new(
	    PROB_SERVER_INTERNAL, "cannot start the call: %s", strerror(rc));
	f->failed++;
	f->done++;
	pthread_mutex_unlock(&f->mu);
	json_decref(a->params);
	free(a);
}

/* Appends every perspective's entry to records and writes the audit
 * line. f->mu held. */
static void
fan_record(struct fan *f, int corroborated, const char *ident_type,
    const char *ident_value, int64_t t0, json_t *records)
{
	struct va_mpic *m = f->m;
	size_t i, len = 64 + f->n * 48;
	char *summary = xcalloc(1, len), *cur = summary;

	for (i = 0; i < f->n; i++) {
		int w;
		json_array_append_new(
		    records, slot_json(&m->remotes[i], &f->slots[i], f->caa));
		w = snprintf(cur, len - (size_t)(cur - summary), "%s%s:%s",
		    i > 0 ? "," : "", m->remotes[i].name,
		    slot_names[f->slots[i].state]);
		if (w < 0 || (size_t)w >= len - (size_t)(cur - summary))
			break;
		cur += w;
	}
	log_audit(f->rid, "mpic",
	    "op=%s identifier=%s:%s primary=%s remotes=%s passed=%d/%zu "
	    "regions=%d allowed_failures=%d result=%s duration_ms=%lld",
	    f->caa ? "caa" : "validate", ident_type, ident_value,
	    m->perspective, summary, f->passed, f->n, passed_regions(f),
	    m->allowed, corroborated ? "corroborated" : "not_corroborated",
	    (long long)(time_mono_ms() - t0));
	free(summary);
}

/*
 * The problem of a lost quorum: distinct from the primary's own failures
 * (the primary passed, the other perspectives did not agree), one
 * subproblem per failing perspective. f->mu held. New problem.
 */
static struct problem *
fan_problem(struct fan *f, int timed_out, int64_t budget,
    const char *ident_type, const char *ident_value)
{
	struct va_mpic *m = f->m;
	int any_fail = 0, any_caa = 0;
	struct problem *p;
	enum prob_type t;
	size_t i;

	for (i = 0; i < f->n; i++) {
		struct slot *s = &f->slots[i];
		if (s->state == SLOT_FAIL)
			any_fail = 1;
		if ((s->state == SLOT_FAIL || s->state == SLOT_ERROR) &&
		    s->prob != NULL && s->prob->type == PROB_CAA)
			any_caa = 1;
	}
	t = any_caa    ? PROB_CAA
	    : any_fail ? PROB_UNAUTHORIZED
		       : PROB_SERVER_INTERNAL;
	if (f->passed >= (int)f->n - m->allowed)
		p = problem_new(PROB_UNAUTHORIZED,
		    "Multi-perspective corroboration failed for %s: the %d "
		    "remote perspectives that corroborated the primary's %s "
		    "span %d region(s), %d required",
		    ident_value, f->passed, f->caa ? "CAA check" : "validation",
		    passed_regions(f), m->min_regions);
	else
		p = problem_new(t,
		    "Multi-perspective corroboration failed for %s: %d of %zu "
		    "remote perspectives did not corroborate the primary's %s "
		    "(at most %d may fail)%s",
		    ident_value,
		    f->failed + (timed_out ? (int)f->n - f->done : 0), f->n,
		    f->caa ? "CAA check" : "validation", m->allowed,
		    any_fail ? ""
			     : "; the remote perspectives were unreachable");
	for (i = 0; i < f->n; i++) {
		struct slot *s = &f->slots[i];
		struct problem *sp;
		enum prob_type st = PROB_SERVER_INTERNAL;

		if (s->state == SLOT_PASS ||
		    (s->state == SLOT_RUNNING && !timed_out))
			continue;
		if (s->state == SLOT_RUNNING) {
			sp = problem_new(st,
			    "perspective %s: no answer within %lld ms",
			    m->remotes[i].name, (long long)budget);
		} else {
			if (s->prob != NULL &&
			    s->prob->type != PROB_UNAVAILABLE)
				st = s->prob->type;
			sp = problem_new(st, "perspective %s: %s",
			    m->remotes[i].name,
			    s->prob != NULL && s->prob->detail != NULL
				? s->prob->detail
				: slot_names[s->state]);
		}
		problem_add_sub(p, sp, ident_type, ident_value);
	}
	return p;
}

/* A new fan for m's remotes (one reference: the caller's). */
static struct fan *
fan_new(struct va_mpic *m, int caa, const char *rid)
{
	struct fan *f = xcalloc(1, sizeof(*f));

	f->m = m;
	f->caa = caa;
	f->rid = rid != NULL ? xstrdup(rid) : NULL;
	f->n = m->n;
	f->slots = xcalloc(m->n, sizeof(*f->slots));
	f->refs = 1;
	if (pthread_mutex_init(&f->mu, NULL) != 0 ||
	    pthread_cond_init(&f->cv, NULL) != 0)
		log_bug("mpic: cannot create a lock");
	return f;
}

/* See va_int.h. */
int
va_mpic_corroborate(struct va_mpic *m, int caa, const json_t *params,
    const char *ident_type, const char *ident_value, const char *rid,
    int64_t deadline_ms, json_t *records, struct problem **prob)
{
	struct fan *f = fan_new(m, caa, rid);
	int64_t budget = m->timeout_ms, t0 = time_mono_ms();
	int corroborated, timed_out = 0;
	struct timespec until;
	char labels[96];
	size_t i;

	*prob = NULL;
	if (deadline_ms > 0 && deadline_ms - time_now_ms() - 100 < budget)
		budget = deadline_ms - time_now_ms() - 100;
	if (budget < 1)
		budget = 1;
	for (i = 0; i < m->n; i++)
		fan_start(f, i, params, budget);

	/* Wait for the decision. Each call ends by its own timeout; the
	 * extra second only guards against a call that never returns. */
	until = time_realtime_after(budget + 1000);
	pthread_mutex_lock(&f->mu);
	while (
	    !quorum_met(f) && f->failed <= m->allowed && f->done < (int)f->n) {
		if (pthread_cond_timedwait(&f->cv, &f->mu, &until) ==
		    ETIMEDOUT) {
			log_msg(LOG_LEVEL_ERROR, rid,
			    "mpic: remote calls overran their timeout");
			timed_out = 1;
			break;
		}
	}
	f->decided = 1;
	corroborated = quorum_met(f);
	fan_record(f, corroborated, ident_type, ident_value, t0, records);
	if (!corroborated)
		*prob =
		    fan_problem(f, timed_out, budget, ident_type, ident_value);
	pthread_mutex_unlock(&f->mu);
	snprintf(labels, sizeof(labels), "op=\"%s\",result=\"%s\"",
	    caa ? "caa" : "validate",
	    corroborated ? "corroborated" : "not_corroborated");
	metrics_counter_add(m->metrics, "anvil_va_mpic_corroborations_total",
	    "Multi-perspective corroborations by operation and result.", labels,
	    1);
	fan_unref(f);
	return corroborated ? 0 : -1;
}
