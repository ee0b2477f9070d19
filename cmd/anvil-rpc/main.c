/* LIBS: rpc core */
/*
 * anvil-rpc - talk to an Anvil service by hand, run a test server, measure.
 *
 *   anvil-rpc call TARGET METHOD [JSON] [tls flags] [--timeout 10s]
 *   anvil-rpc doc        the method tables of docs/rpc-methods.md
 *   anvil-rpc methods    the registry (rpc/methods.def) as JSON
 *   anvil-rpc serve-test --listen ADDR [--workers N] [--allow JSON]
 *            [--socket-mode 0660] [--max-frame N] [tls flags]
 *   anvil-rpc bench TARGET [--threads N] [--seconds S] [tls flags]
 *   anvil-rpc stress TARGET [--threads N] [--calls N] [--seconds S]
 *            [--tolerate-unavailable] [tls flags]
 * tls flags: --cert F --key F --ca F [--server-name NAME]
 * Targets/addresses: unix:/path/x.sock or tcp:host:port (mutual TLS).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "rpc/rpc.h"

struct opts {
	const char *cert, *key, *ca, *server_name;
	const char *listen, *allow, *socket_mode, *request_id;
	int64_t timeout_ms;
	long workers, threads, calls, connections;
	double seconds;
	long max_frame;
	int tolerate;
	const char *pos[3];
	int npos;
};

static void
usage(void)
{
	fprintf(stderr,
	    "usage: anvil-rpc call TARGET METHOD [JSON] [--timeout 10s] "
	    "[--request-id ID]\n"
	    "       anvil-rpc doc | methods\n"
	    "       anvil-rpc serve-test --listen ADDR [--workers N] "
	    "[--allow JSON] [--socket-mode 0660] [--max-frame N]\n"
	    "       anvil-rpc bench TARGET [--threads N] [--seconds S] "
	    "[--connections N]\n"
	    "       anvil-rpc stress TARGET [--threads N] [--calls N] "
	    "[--seconds S] [--tolerate-unavailable]\n"
	    "TLS (tcp: targets): --cert F --key F --ca F "
	    "[--server-name NAME]\n");
}

/* The options that take a value: a string, or a whole number (atol). */
static const struct value_opt {
	const char *name;
	size_t off; /* of a const char * member, or of a long one */
	int is_long;
} value_opts[] = {
    {"--cert", offsetof(struct opts, cert), 0},
    {"--key", offsetof(struct opts, key), 0},
    {"--ca", offsetof(struct opts, ca), 0},
    {"--server-name", offsetof(struct opts, server_name), 0},
    {"--listen", offsetof(struct opts, listen), 0},
    {"--allow", offsetof(struct opts, allow), 0},
    {"--socket-mode", offsetof(struct opts, socket_mode), 0},
    {"--request-id", offsetof(struct opts, request_id), 0},
    {"--workers", offsetof(struct opts, workers), 1},
    {"--threads", offsetof(struct opts, threads), 1},
    {"--calls", offsetof(struct opts, calls), 1},
    {"--connections", offsetof(struct opts, connections), 1},
    {"--max-frame", offsetof(struct opts, max_frame), 1},
};

/* Option a with its value v (borrowed from argv) into o. 0, or -1 said. */
static int
set_value(struct opts *o, const char *a, const char *v)
{
	size_t k;

	for (k = 0; k < sizeof(value_opts) / sizeof(value_opts[0]); k++) {
		const struct value_opt *vo = &value_opts[k];

		if (strcmp(a, vo->name) != 0)
			continue;
		if (vo->is_long)
			*(long *)(void *)((char *)o + vo->off) = atol(v);
		else
			*(const char **)(void *)((char *)o + vo->off) = v;
		return 0;
	}
	if (strcmp(a, "--seconds") == 0) {
		o->seconds = atof(v);
		return 0;
	}
	if (strcmp(a, "--timeout") != 0) {
		fprintf(stderr, "anvil-rpc: unknown option %s\n", a);
		return -1;
	}
	if (duration_parse_ms(v, &o->timeout_ms) != 0 || o->timeout_ms <= 0) {
		fprintf(stderr, "anvil-rpc: bad --timeout\n");
		return -1;
	}
	return 0;
}

static int
parse_opts(int argc, char **argv, struct opts *o)
{
	int i;

	memset(o, 0, sizeof(*o));
	o->timeout_ms = 10000;
	o->threads = 1;
	o->workers = 8;
	o->seconds = 0;
	for (i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--tolerate-unavailable") == 0) {
			o->tolerate = 1;
			continue;
		}
		if (strncmp(a, "--", 2) != 0) {
			if (o->npos >= 3) {
				fprintf(stderr,
				    "anvil-rpc: too many "
				    "arguments\n");
				return -1;
			}
			o->pos[o->npos++] = a;
			continue;
		}
		if (v == NULL) {
			fprintf(stderr, "anvil-rpc: %s needs a value\n", a);
			return -1;
		}
		i++;
		if (set_value(o, a, v) != 0)
			return -1;
	}
	return 0;
}

static struct rpc_client *
make_client(const struct opts *o, const char *target)
{
	struct rpc_client_config cfg;
	struct rpc_client *c = NULL;
	json_t *j;
	char err[512];

	j = json_pack("{s:s}", "target", target);
	if (o->connections > 0)
		json_object_set_new(
		    j, "connections", json_integer(o->connections));
	if (o->max_frame > 0)
		json_object_set_new(j, "max_frame", json_integer(o->max_frame));
	if (o->cert != NULL || o->key != NULL || o->ca != NULL) {
		json_t *t = json_pack("{s:s?,s:s?,s:s?}", "cert", o->cert,
		    "key", o->key, "ca", o->ca);

		if (o->server_name != NULL)
			json_object_set_new(
			    t, "server_name", json_string(o->server_name));
		json_object_set_new(j, "tls", t);
	}
	if (rpc_client_config_parse(j, &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "anvil-rpc: %s\n", err);
		goto out;
	}
	cfg.timeout_ms = o->timeout_ms;
	c = rpc_client_new(&cfg,
	    o->server_name != NULL ? o->server_name : "target", NULL, err,
	    sizeof(err));
	if (c == NULL)
		fprintf(stderr, "anvil-rpc: %s\n", err);
	rpc_client_config_clear(&cfg);
out:
	json_decref(j);
	return c;
}

static int
cmd_call(const struct opts *o)
{
	struct rpc_client *c = NULL;
	json_t *params = NULL, *result = NULL, *pj = NULL;
	struct problem *prob = NULL;
	json_error_t jerr;
	char *s = NULL;
	int rc = 1;

	if (o->npos < 2) {
		usage();
		return 2;
	}
	if (o->npos == 3) {
		params = json_loads(o->pos[2], 0, &jerr);
		if (!json_is_object(params)) {
			fprintf(stderr,
			    "anvil-rpc: params must be a JSON "
			    "object\n");
			goto out;
		}
	}
	c = make_client(o, o->pos[0]);
	if (c == NULL)
		goto out;
	if (rpc_call(c, o->pos[1], params, (int)o->timeout_ms, o->request_id,
		&result, &prob) != 0) {
		pj = problem_to_rpc_json(prob);
		s = json_dumps(pj, JSON_COMPACT | JSON_SORT_KEYS);
		printf("error: %s\n", s != NULL ? s : "?");
		goto out;
	}
	s = json_dumps(
	    result, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	printf("%s\n", s != NULL ? s : "null");
	rc = 0;
out:
	free(s);
	json_decref(pj);
	json_decref(params);
	json_decref(result);
	problem_free(prob);
	rpc_client_free(c);
	return rc;
}

/* ---------------------------------------------------------------- */
/* serve-test                                                         */
/* ---------------------------------------------------------------- */

struct test_svc {
	atomic_long calls; /* handler runs, for tests of "never ran" */
};

static int
h_echo(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	struct test_svc *t = svc;

	(void)prob;
	atomic_fetch_add(&t->calls, 1);
	*result = json_incref(req->params);
	return 0;
}

static int
h_sleep(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	struct test_svc *t = svc;
	json_t *ms = json_object_get(req->params, "ms");
	struct timespec ts;
	json_int_t v;

	atomic_fetch_add(&t->calls, 1);
	if (!json_is_integer(ms) || json_integer_value(ms) < 0 ||
	    json_integer_value(ms) > 600000) {
		*prob = problem_new(
		    PROB_MALFORMED, "ms: expected an integer 0..600000");
		return -1;
	}
	v = json_integer_value(ms);
	ts.tv_sec = (time_t)(v / 1000);
	ts.tv_nsec = (long)(v % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
	*result = json_pack("{s:I}", "slept_ms", v);
	return 0;
}

static int
h_fail(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	struct test_svc *t = svc;
	const char *type =
	    json_string_value(json_object_get(req->params, "type"));
	const char *detail =
	    json_string_value(json_object_get(req->params, "detail"));
	enum prob_type pt = PROB_SERVER_INTERNAL;

	(void)result;
	atomic_fetch_add(&t->calls, 1);
	if (type != NULL && prob_type_parse(type, &pt) != 0)
		pt = PROB_SERVER_INTERNAL;
	*prob = problem_new(pt, "%s", detail != NULL ? detail : "test.fail");
	return -1;
}

static int
h_whoami(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	(void)svc;
	(void)prob;
	*result = json_pack(
	    "{s:s,s:s?}", "peer", req->peer, "request_id", req->request_id);
	return 0;
}

/* Monotonic microseconds: round trips are far below a millisecond. */
static int64_t
mono_us(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Context switches of every thread of this process so far. */
static long
self_ctxt_switches(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return ru.ru_nvcsw + ru.ru_nivcsw;
}

static int
h_calls(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	struct test_svc *t = svc;

	(void)req;
	(void)prob;
	/* Context switches of every thread the server ever ran, exited
	 * ones included (scripts/bench-rpc.sh). */
	*result = json_pack("{s:I,s:I}", "calls",
	    (json_int_t)atomic_load(&t->calls), "ctxt_switches",
	    (json_int_t)self_ctxt_switches());
	return 0;
}

static const struct rpc_method test_methods[] = {
    {"test.echo", h_echo, NULL},
    {"test.sleep", h_sleep, NULL},
    {"test.fail", h_fail, NULL},
    {"test.whoami", h_whoami, NULL},
    {"test.calls", h_calls, NULL},
};

static int
cmd_serve(const struct opts *o)
{
	struct rpc_server_config cfg;
	struct rpc_server *s = NULL;
	struct test_svc svc;
	struct metrics *m = NULL;
	json_t *j = NULL, *allow = NULL;
	json_error_t jerr;
	char err[512];
	int rc = 1;

	memset(&cfg, 0, sizeof(cfg));
	atomic_init(&svc.calls, 0);
	if (o->listen == NULL) {
		usage();
		return 2;
	}
	allow = json_loads(
	    o->allow != NULL ? o->allow : "{\"*\":[\"*\"]}", 0, &jerr);
	if (allow == NULL) {
		fprintf(stderr, "anvil-rpc: --allow: %s\n", jerr.text);
		goto out;
	}
	j = json_pack("{s:s,s:I,s:O}", "listen", o->listen, "workers",
	    (json_int_t)o->workers, "allow", allow);
	if (o->socket_mode != NULL)
		json_object_set_new(
		    j, "socket_mode", json_string(o->socket_mode));
	if (o->max_frame > 0)
		json_object_set_new(j, "max_frame", json_integer(o->max_frame));
	if (o->cert != NULL || o->key != NULL || o->ca != NULL)
		json_object_set_new(j, "tls",
		    json_pack("{s:s?,s:s?,s:s?}", "cert", o->cert, "key",
			o->key, "ca", o->ca));
	if (rpc_server_config_parse(j, &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "anvil-rpc: %s\n", err);
		goto out;
	}
	m = metrics_new();
	s = rpc_server_new(&cfg, test_methods,
	    sizeof(test_methods) / sizeof(test_methods[0]), &svc, m, NULL, NULL,
	    err, sizeof(err));
	if (s == NULL) {
		fprintf(stderr, "anvil-rpc: %s\n", err);
		goto out;
	}
	rc = rpc_server_run(s) == 0 ? 0 : 1;
out:
	rpc_server_free(s);
	metrics_free(m);
	rpc_server_config_clear(&cfg);
	json_decref(j);
	json_decref(allow);
	return rc;
}

/* ---------------------------------------------------------------- */
/* bench and stress                                                   */
/* ---------------------------------------------------------------- */

struct load {
	struct rpc_client *c;
	const struct opts *o;
	int verify;
	int64_t end_ms; /* monotonic; 0 = use calls */
	atomic_long ok, errors, unavailable, mismatched;
	atomic_long ok_since_error;
	atomic_llong lat_us_total;
};

struct load_thread {
	struct load *l;
	long idx;
	pthread_t th;
};

static void *
load_main(void *arg)
{
	struct load_thread *t = arg;
	struct load *l = t->l;
	json_t *params = NULL, *result = NULL;
	struct problem *prob = NULL;
	long i;
	int64_t t0;

	for (i = 0;; i++) {
		if (l->end_ms != 0 ? time_mono_ms() >= l->end_ms
				   : i >= l->o->calls)
			break;
		if (l->verify)
			params = json_pack("{s:i,s:i,s:s}", "t", (int)t->idx,
			    "i", (int)i, "pad", "0123456789abcdef");
		t0 = mono_us();
		if (rpc_call(l->c, "test.echo", params, 0, NULL, &result,
			&prob) != 0) {
			atomic_fetch_add(&l->errors, 1);
			atomic_store(&l->ok_since_error, 0);
			if (prob->type == PROB_UNAVAILABLE)
				atomic_fetch_add(&l->unavailable, 1);
			else
				fprintf(stderr, "error: %s: %s\n",
				    prob_type_name(prob->type),
				    prob->detail ? prob->detail : "");
			problem_free(prob);
			prob = NULL;
			if (l->o->tolerate)
				usleep(5000);
		} else {
			atomic_fetch_add(&l->lat_us_total, mono_us() - t0);
			if (l->verify && !json_equal(result, params)) {
				atomic_fetch_add(&l->mismatched, 1);
			} else {
				atomic_fetch_add(&l->ok, 1);
				atomic_fetch_add(&l->ok_since_error, 1);
			}
			json_decref(result);
			result = NULL;
		}
		json_decref(params);
		params = NULL;
	}
	return NULL;
}

static int
cmd_load(const struct opts *o, int verify)
{
	struct load l;
	struct load_thread *ts = NULL;
	long i, n = o->threads > 0 ? o->threads : 1;
	int64_t t0, el;
	int rc = 1;
	long ok, errors, unav, mism, cs0;

	memset(&l, 0, sizeof(l));
	if (o->npos < 1) {
		usage();
		return 2;
	}
	l.o = o;
	l.verify = verify;
	l.c = make_client(o, o->pos[0]);
	if (l.c == NULL)
		return 1;
	if (o->seconds > 0 || o->calls <= 0)
		l.end_ms = time_mono_ms() +
		    (int64_t)((o->seconds > 0 ? o->seconds : 3.0) * 1000);
	ts = xcalloc((size_t)n, sizeof(*ts));
	cs0 = self_ctxt_switches();
	t0 = time_mono_ms();
	for (i = 0; i < n; i++) {
		ts[i].l = &l;
		ts[i].idx = i;
		if (pthread_create(&ts[i].th, NULL, load_main, &ts[i]) != 0) {
			fprintf(stderr, "anvil-rpc: pthread_create failed\n");
			n = i;
			break;
		}
	}
	for (i = 0; i < n; i++)
		pthread_join(ts[i].th, NULL);
	el = time_mono_ms() - t0;
	if (el <= 0)
		el = 1;
	ok = atomic_load(&l.ok);
	errors = atomic_load(&l.errors);
	unav = atomic_load(&l.unavailable);
	mism = atomic_load(&l.mismatched);
	printf("target=%s threads=%ld calls_ok=%ld errors=%ld unavailable=%ld "
	       "mismatched=%ld ok_after_last_error=%ld seconds=%.2f "
	       "rps=%.0f mean_latency_us=%.1f client_cs_per_call=%.2f\n",
	    o->pos[0], n, ok, errors, unav, mism,
	    atomic_load(&l.ok_since_error), (double)el / 1000.0,
	    (double)ok * 1000.0 / (double)el,
	    ok > 0 ? (double)atomic_load(&l.lat_us_total) / (double)ok : 0.0,
	    ok + errors > 0 ? (double)(self_ctxt_switches() - cs0) /
		    (double)(ok + errors)
			    : 0.0);
	if (mism != 0 || ok == 0)
		goto out;
	if (errors != 0 && !(o->tolerate && errors == unav))
		goto out;
	if (!verify || o->calls <= 0 || o->seconds > 0 ||
	    ok + errors == (long)n * o->calls)
		rc = 0;
out:
	free(ts);
	rpc_client_free(l.c);
	return rc;
}

int
main(int argc, char **argv)
{
	struct opts o;
	const char *lvl = getenv("ANVIL_LOG_LEVEL");
	enum log_level ll = LOG_LEVEL_WARN;

	if (lvl != NULL)
		(void)log_level_parse(lvl, &ll);
	if (argc < 2) {
		usage();
		return 2;
	}
	if (strcmp(argv[1], "serve-test") == 0 && lvl == NULL)
		ll = LOG_LEVEL_INFO;
	log_init("anvil-rpc", ll);
	if (parse_opts(argc - 2, argv + 2, &o) != 0)
		return 2;
	if (strcmp(argv[1], "call") == 0)
		return cmd_call(&o);
	if (strcmp(argv[1], "doc") == 0)
		return rpc_contract_write_doc(stdout) == 0 ? 0 : 1;
	if (strcmp(argv[1], "methods") == 0)
		return rpc_contract_write_json(stdout) == 0 ? 0 : 1;
	if (strcmp(argv[1], "serve-test") == 0)
		return cmd_serve(&o);
	if (strcmp(argv[1], "bench") == 0)
		return cmd_load(&o, 0);
	if (strcmp(argv[1], "stress") == 0)
		return cmd_load(&o, 1);
	usage();
	return 2;
}
