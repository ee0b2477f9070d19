/* LIBS: rpc core */
/*
 * test_rpc.c - unit tests of rpc/: framing, request/response parsing,
 * addresses, configuration, authorization, and a server and client in one
 * process over a real Unix socket.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/core.h"
#include "rpc/rpc.h"
#include "rpc/rpc_int.h"
#include "test/unit/harness.h"

static size_t
mkframe(uint8_t *buf, const char *json)
{
	size_t n = strlen(json);

	buf[0] = (uint8_t)(n >> 24);
	buf[1] = (uint8_t)(n >> 16);
	buf[2] = (uint8_t)(n >> 8);
	buf[3] = (uint8_t)n;
	memcpy(buf + 4, json, n);
	return n + 4;
}

TH_TEST(test_frame_decode)
{
	uint8_t buf[256];
	size_t n, used = 0;
	json_t *o = NULL;
	char err[128];

	n = mkframe(buf, "{\"id\":1}");
	TH_CHECK(t,
	    rpc_frame_decode(buf, n, 1024, &used, &o, err, sizeof(err)) ==
		RPC_FRAME_OK);
	TH_CHECK(t, used == n && json_is_object(o));
	json_decref(o);
	o = NULL;
	TH_CHECK(t,
	    rpc_frame_decode(buf, 3, 1024, &used, &o, err, sizeof(err)) ==
		    RPC_FRAME_NEED &&
		used == 4);
	TH_CHECK(t,
	    rpc_frame_decode(buf, n - 1, 1024, &used, &o, err, sizeof(err)) ==
		    RPC_FRAME_NEED &&
		used == n);
	/* over the limit: refused from the header alone */
	TH_CHECK(t,
	    rpc_frame_decode(buf, 4, 5, &used, &o, err, sizeof(err)) ==
		RPC_FRAME_BAD);
	TH_CHECK(t, strstr(err, "exceeds") != NULL);
	memset(buf, 0, 4);
	TH_CHECK(t,
	    rpc_frame_decode(buf, 4, 1024, &used, &o, err, sizeof(err)) ==
		RPC_FRAME_BAD);
	n = mkframe(buf, "{\"id\":1");
	TH_CHECK(t,
	    rpc_frame_decode(buf, n, 1024, &used, &o, err, sizeof(err)) ==
		    RPC_FRAME_BAD &&
		o == NULL);
	n = mkframe(buf, "[1,2]");
	TH_CHECK(t,
	    rpc_frame_decode(buf, n, 1024, &used, &o, err, sizeof(err)) ==
		    RPC_FRAME_BAD &&
		o == NULL);
	n = mkframe(buf, "{\"a\":1,\"a\":2}");
	TH_CHECK(t,
	    rpc_frame_decode(buf, n, 1024, &used, &o, err, sizeof(err)) ==
		RPC_FRAME_BAD);
	/* two frames back to back: the first is decoded alone */
	n = mkframe(buf, "{\"id\":1}");
	n += mkframe(buf + n, "{\"id\":2}");
	TH_CHECK(t,
	    rpc_frame_decode(buf, n, 1024, &used, &o, err, sizeof(err)) ==
		    RPC_FRAME_OK &&
		used == n / 2);
	TH_CHECK(t, json_integer_value(json_object_get(o, "id")) == 1);
	json_decref(o);
}

TH_TEST(test_frame_encode)
{
	json_t *o = json_pack("{s:i,s:s}", "id", 7, "method", "x.y");
	uint8_t *f;
	size_t n = 0, used = 0;
	json_t *back = NULL;
	char err[64];

	f = rpc_frame_encode(o, 1024, &n);
	TH_CHECK(t, f != NULL && n > 4);
	TH_CHECK(t,
	    f != NULL &&
		rpc_frame_decode(f, n, 1024, &used, &back, err, sizeof(err)) ==
		    RPC_FRAME_OK &&
		json_equal(o, back));
	free(f);
	TH_CHECK(t, rpc_frame_encode(o, 5, &n) == NULL);
	json_decref(o);
	json_decref(back);
}

static int
parse_req(const char *js, struct rpc_parsed_req *r, json_t **keep)
{
	char err[128];

	*keep = json_loads(js, 0, NULL);
	return rpc_request_parse(*keep, r, err, sizeof(err));
}

TH_TEST(test_request_parse)
{
	struct rpc_parsed_req r;
	json_t *j = NULL;

	TH_CHECK(t,
	    parse_req("{\"id\":1,\"method\":\"a.b\",\"deadline_ms\":5,"
		      "\"request_id\":\"r1\",\"params\":{\"x\":1}}",
		&r, &j) == 0);
	TH_CHECK_STR(t, r.method, "a.b");
	TH_CHECK_STR(t, r.request_id, "r1");
	TH_CHECK(t, r.deadline_ms == 5 && json_is_object(r.params));
	json_decref(j);
	TH_CHECK(t,
	    parse_req("{\"id\":\"s\",\"method\":\"a.b\"}", &r, &j) == 0 &&
		r.params == NULL && r.deadline_ms == 0);
	json_decref(j);
	TH_CHECK(t, parse_req("{\"method\":\"a.b\"}", &r, &j) == -1);
	json_decref(j);
	TH_CHECK(t, parse_req("{\"id\":1.5,\"method\":\"a.b\"}", &r, &j) == -1);
	json_decref(j);
	TH_CHECK(t, parse_req("{\"id\":[1],\"method\":\"a.b\"}", &r, &j) == -1);
	json_decref(j);
	TH_CHECK(t, parse_req("{\"id\":1}", &r, &j) == 1);
	json_decref(j);
	TH_CHECK(t, parse_req("{\"id\":1,\"method\":7}", &r, &j) == 1);
	json_decref(j);
	TH_CHECK(t,
	    parse_req("{\"id\":1,\"method\":\"a\",\"params\":[]}", &r, &j) ==
		1);
	json_decref(j);
	TH_CHECK(t,
	    parse_req("{\"id\":1,\"method\":\"a\",\"deadline_ms\":"
		      "\"x\"}",
		&r, &j) == 1);
	json_decref(j);
	TH_CHECK(t,
	    parse_req("{\"id\":1,\"method\":\"a\",\"request_id\":3}", &r, &j) ==
		1);
	json_decref(j);
}

TH_TEST(test_response_roundtrip)
{
	json_t *id = json_integer(42), *res = json_pack("{s:i}", "a", 1);
	json_t *ok = rpc_response_ok(id, res), *bad, *out = NULL;
	struct problem *p = problem_new(PROB_ORDER_NOT_READY, "not yet"), *q;
	int64_t got = 0;
	char err[64];

	TH_CHECK(t,
	    rpc_response_parse(ok, &got, &out, &q, err, sizeof(err)) == 0 &&
		got == 42 && q == NULL && json_equal(out, res));
	bad = rpc_response_err(id, p);
	TH_CHECK(t,
	    rpc_response_parse(bad, &got, &out, &q, err, sizeof(err)) == 0 &&
		q != NULL && out == NULL);
	TH_CHECK(t,
	    q != NULL && q->type == PROB_ORDER_NOT_READY && q->status == 403);
	TH_CHECK_STR(t, q != NULL ? q->detail : NULL, "not yet");
	problem_free(q);
	json_object_del(ok, "result");
	TH_CHECK(
	    t, rpc_response_parse(ok, &got, &out, &q, err, sizeof(err)) == -1);
	json_decref(ok);
	json_decref(bad);
	json_decref(id);
	json_decref(res);
	problem_free(p);
}

TH_TEST(test_addr_parse)
{
	struct rpc_addr a;
	char err[128];

	TH_CHECK(t,
	    rpc_addr_parse("unix:/tmp/x.sock", &a, err, sizeof(err)) == 0 &&
		a.kind == RPC_ADDR_UNIX);
	TH_CHECK_STR(t, a.path, "/tmp/x.sock");
	rpc_addr_clear(&a);
	TH_CHECK(t,
	    rpc_addr_parse("tcp:127.0.0.1:9101", &a, err, sizeof(err)) == 0 &&
		a.kind == RPC_ADDR_TCP);
	TH_CHECK_STR(t, a.host, "127.0.0.1");
	TH_CHECK_STR(t, a.port, "9101");
	rpc_addr_clear(&a);
	TH_CHECK(t, rpc_addr_parse("tcp:[::1]:9", &a, err, sizeof(err)) == 0);
	TH_CHECK_STR(t, a.host, "::1");
	rpc_addr_clear(&a);
	TH_CHECK(t, rpc_addr_parse("tcp:host", &a, err, sizeof(err)) != 0);
	TH_CHECK(t, rpc_addr_parse("tcp:h:99999", &a, err, sizeof(err)) != 0);
	TH_CHECK(t, rpc_addr_parse("tcp:h:9x", &a, err, sizeof(err)) != 0);
	TH_CHECK(t, rpc_addr_parse("http://x", &a, err, sizeof(err)) != 0);
	TH_CHECK(t, rpc_addr_parse("unix:", &a, err, sizeof(err)) != 0);
}

static int
srv_cfg(const char *js, struct rpc_server_config *c, char *err, size_t n)
{
	json_t *j = json_loads(js, 0, NULL);
	int rc = rpc_server_config_parse(j, c, err, n);

	json_decref(j);
	return rc;
}

/* 1 when the client config text js is refused with an error naming want
 * (NULL: any error); else prints what happened and returns 0. */
static int
cli_refused(const char *js, const char *want)
{
	struct rpc_client_config c;
	char err[256] = "";
	json_t *j = json_loads(js, 0, NULL);
	int rc = rpc_client_config_parse(j, &c, err, sizeof(err));

	json_decref(j);
	if (rc == 0)
		rpc_client_config_clear(&c);
	if (rc != 0 && (want == NULL || strstr(err, want) != NULL))
		return 1;
	fprintf(
	    stderr, "  client config %s: %s\n", js, rc == 0 ? "accepted" : err);
	return 0;
}

TH_TEST(test_config)
{
	/* refused server configs and the key their errors name */
	static const char *const bad[][2] = {
	    {"{\"listen\":\"unix:/a\",\"bogus\":1}", "bogus"},
	    {"{\"listen\":\"tcp:127.0.0.1:1\"}", "tls"},
	    {"{\"listen\":\"unix:/a\",\"socket_mode\":\"99\"}", "socket_mode"},
	    {"{\"listen\":\"unix:/a\",\"allow\":{\"x\":\"ra\"}}", "allow.x"},
	    {"{\"listen\":\"unix:/a\",\"workers\":0}", "workers"},
	};
	struct rpc_server_config s;
	struct rpc_client_config c;
	json_t *j;
	char err[256];

	TH_CHECK(t,
	    srv_cfg("{\"listen\":\"unix:/tmp/a.sock\"}", &s, err,
		sizeof(err)) == 0);
	TH_CHECK(t, s.workers == 8 && s.max_frame == RPC_DEFAULT_MAX_FRAME);
	TH_CHECK_STR(t, s.socket_mode, "0660");
	rpc_server_config_clear(&s);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		TH_CHECK(t,
		    srv_cfg(bad[i][0], &s, err, sizeof(err)) != 0 &&
			strstr(err, bad[i][1]) != NULL);
	TH_CHECK(t,
	    srv_cfg(
		"{\"listen\":\"tcp:127.0.0.1:1\",\"tls\":{"
		"\"cert\":\"c\",\"key\":\"k\",\"ca\":\"a\"},\"allow\":{\"*\":"
		"[\"ra\"]}}",
		&s, err, sizeof(err)) == 0);
	TH_CHECK_STR(t, s.tls_ca, "a");
	rpc_server_config_clear(&s);

	j = json_loads("{\"target\":\"unix:/x\",\"timeout\":\"250ms\","
		       "\"connections\":2}",
	    0, NULL);
	TH_CHECK(t, rpc_client_config_parse(j, &c, err, sizeof(err)) == 0);
	TH_CHECK(t, c.timeout_ms == 250 && c.connections == 2);
	rpc_client_config_clear(&c);
	json_decref(j);
	TH_CHECK(t, cli_refused("{\"target\":\"tcp:1.2.3.4:5\"}", NULL));
	TH_CHECK(t,
	    cli_refused(
		"{\"target\":\"unix:/x\",\"timeout\":\"soon\"}", "timeout"));
}

TH_TEST(test_authorized)
{
	json_t *a = json_loads(
	    "{\"x.get_order\":[\"wfe\"],\"x.get_*\":"
	    "[\"ca\"],\"*\":[\"admin\",\"uid:7\"],\"x.open\":[\"*\"]}",
	    0, NULL);

	TH_CHECK(t, rpc_authorized(a, "x.get_order", "wfe", NULL));
	TH_CHECK(t, rpc_authorized(a, "x.get_order", "ca", NULL));
	TH_CHECK(t, rpc_authorized(a, "x.get_order", "admin", NULL));
	TH_CHECK(t, !rpc_authorized(a, "x.new_order", "wfe", NULL));
	TH_CHECK(t, !rpc_authorized(a, "x.new_order", "ca", NULL));
	TH_CHECK(t, rpc_authorized(a, "x.new_order", "uid:7", NULL));
	TH_CHECK(t, rpc_authorized(a, "x.new_order", "uid:8", "admin"));
	TH_CHECK(t, rpc_authorized(a, "x.open", "anyone", NULL));
	TH_CHECK(t, rpc_authorized(a, rpc_method_name(RPC_HEALTH_CHECK), "anyone", NULL));
	TH_CHECK(t, !rpc_authorized(NULL, "x.x", "admin", NULL));
	TH_CHECK(t, rpc_authorized(NULL, rpc_method_name(RPC_HEALTH_CHECK), "x", NULL));
	json_decref(a);
}

TH_TEST(test_remaining)
{
	struct rpc_req r;
	int left;

	memset(&r, 0, sizeof(r));
	TH_CHECK(t, rpc_req_remaining_ms(&r, 500) == 500);
	TH_CHECK(t, rpc_req_remaining_ms(&r, 0) == 0);
	r.deadline_ms = time_now_ms() - 5;
	TH_CHECK(t, rpc_req_remaining_ms(&r, 500) == 1);
	r.deadline_ms = time_now_ms() + 10000;
	left = rpc_req_remaining_ms(&r, 0);
	TH_CHECK(t, left > 9000 && left <= 10000);
	TH_CHECK(t, rpc_req_remaining_ms(&r, 300) == 300);
}

/* ---------------------------------------------------------------- */
/* In-process server + client                                         */
/* ---------------------------------------------------------------- */

struct tsvc {
	atomic_int runs;
	atomic_int healthy;
	atomic_int sleeping, most_sleeping; /* t.sleep calls at once */
};

/* Counts one handler run in svc (a struct tsvc). */
static void
ran(void *svc)
{
	struct tsvc *s = svc;

	atomic_fetch_add(&s->runs, 1);
}

/* ran(svc), then answers res (owned) as the call's result. */
static int
ran_with(void *svc, json_t **result, json_t *res)
{
	ran(svc);
	*result = res;
	return 0;
}

static int
h_echo(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	(void)prob;
	return ran_with(svc, result,
	    json_pack("{s:O,s:s,s:s?}", "params", req->params, "peer",
		req->peer, "rid", req->request_id));
}

static int
h_sleep(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	struct tsvc *s = svc;
	int now, most;

	(void)prob;
	(void)req;
	ran(svc);
	now = atomic_fetch_add(&s->sleeping, 1) + 1;
	most = atomic_load(&s->most_sleeping);
	while (now > most &&
	    !atomic_compare_exchange_weak(&s->most_sleeping, &most, now))
		;
	usleep(300 * 1000);
	atomic_fetch_sub(&s->sleeping, 1);
	*result = json_object();
	return 0;
}

static int
h_fail(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	struct problem *p = problem_new(PROB_RATE_LIMITED, "slow down");

	(void)svc;
	(void)req;
	(void)result;
	p->retry_after = 7;
	*prob = p;
	return -1;
}

static int
h_health(void *arg, char *msg, size_t n)
{
	struct tsvc *s = arg;

	if (atomic_load(&s->healthy))
		return 0;
	snprintf(msg, n, "db down");
	return -1;
}

static const struct rpc_method tmethods[] = {
    {"t.echo", h_echo, NULL},
    {"t.sleep", h_sleep, NULL},
    {"t.fail", h_fail, NULL},
    {"t.secret", h_echo, NULL},
};

struct srv_thread {
	struct rpc_server *s;
	pthread_t th;
};

static void *
srv_main(void *arg)
{
	struct srv_thread *st = arg;

	(void)rpc_server_run(st->s);
	return NULL;
}

/* The JSON text printf'd from fmt and ap, parsed (NULL if it is not). */
static json_t *
json_vfmt(const char *fmt, va_list ap)
{
	char js[600];

	vsnprintf(js, sizeof(js), fmt, ap);
	return json_loads(js, 0, NULL);
}

/* Starts a test server with tmethods for svc from the config text printf'd
 * from fmt, on a thread of its own; with_health: h_health answers health
 * checks; m counts (may be NULL). 0, or -1 with the error printed. */
static int start_server_fmt(struct srv_thread *st, struct tsvc *svc,
    struct metrics *m, int with_health, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int
start_server_fmt(struct srv_thread *st, struct tsvc *svc, struct metrics *m,
    int with_health, const char *fmt, ...)
{
	struct rpc_server_config cfg;
	int rc;
	va_list ap;
	json_t *j;
	char err[256];

	va_start(ap, fmt);
	j = json_vfmt(fmt, ap);
	va_end(ap);
	st->s = NULL;
	rc = rpc_server_config_parse(j, &cfg, err, sizeof(err));
	json_decref(j);
	if (rc != 0) {
		fprintf(stderr, "config: %s\n", err);
		return -1;
	}
	st->s = rpc_server_new(&cfg, tmethods, 4, svc, m,
	    with_health ? h_health : NULL, with_health ? svc : NULL, err,
	    sizeof(err));
	rpc_server_config_clear(&cfg);
	if (st->s == NULL) {
		fprintf(stderr, "server: %s\n", err);
		return -1;
	}
	return pthread_create(&st->th, NULL, srv_main, st) == 0 ? 0 : -1;
}

/* The usual test server on path: 4 workers, frames up to 4096 bytes, t.*
 * for this uid and t.secret for nobody. */
static int
start_server(struct srv_thread *st, const char *path, struct tsvc *svc,
    struct metrics *m)
{
	/* t.secret matches "t.*" too: make it exact-only by removing. */
	return start_server_fmt(st, svc, m, 1,
	    "{\"listen\":\"unix:%s\",\"workers\":4,"
	    "\"max_frame\":4096,\"allow\":{\"t.*\":[\"uid:%u\"],"
	    "\"t.secret\":[\"uid:99999\"]}}",
	    path, (unsigned)getuid());
}

/* Frees c and removes the socket path and the directory test_socket made.
 */
static void
drop_test_socket(struct rpc_client *c, const char *dir, const char *path)
{
	rpc_client_free(c);
	(void)unlink(path);
	(void)rmdir(dir);
}

/* A fresh service state and a socket path `name` in a new temporary
 * directory dir (a "/tmp/...XXXXXX" template): 0, or -1 when the
 * directory cannot be made. */
static int
test_socket(
    char *dir, char *path, size_t len, const char *name, struct tsvc *svc)
{
	atomic_init(&svc->runs, 0);
	atomic_init(&svc->healthy, 1);
	atomic_init(&svc->sleeping, 0);
	atomic_init(&svc->most_sleeping, 0);
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, len, "%s/%s", dir, name);
	return 0;
}

static void
stop_server(struct srv_thread *st)
{
	rpc_server_stop(st->s);
	pthread_join(st->th, NULL);
	rpc_server_free(st->s);
	st->s = NULL;
}

/* A test client ("tsvc") from the client config text printf'd from fmt;
 * m counts (may be NULL). NULL, with the error printed, when it cannot be
 * made. */
static struct rpc_client *client_fmt(struct metrics *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static struct rpc_client *
client_fmt(struct metrics *m, const char *fmt, ...)
{
	struct rpc_client_config cfg;
	struct rpc_client *c;
	char err[256];
	va_list ap;
	json_t *j;
	int rc;

	va_start(ap, fmt);
	j = json_vfmt(fmt, ap);
	va_end(ap);
	rc = rpc_client_config_parse(j, &cfg, err, sizeof(err));
	json_decref(j);
	if (rc != 0) {
		fprintf(stderr, "config: %s\n", err);
		return NULL;
	}
	c = rpc_client_new(&cfg, "tsvc", m, err, sizeof(err));
	rpc_client_config_clear(&cfg);
	return c;
}

/* The usual test client's config (client_fmt with the socket path). */
#define UNIX_CLIENT                                                            \
	"{\"target\":\"unix:%s\",\"timeout\":\"2s\","                          \
	"\"connections\":2,\"max_frame\":4096}"

/* 1 when rpc_call(method) without params succeeds. */
static int
call_ok(struct rpc_client *c, const char *method)
{
	json_t *res = NULL;
	struct problem *p = NULL;
	int rc = rpc_call(c, method, NULL, 0, NULL, &res, &p);

	json_decref(res);
	problem_free(p);
	return rc == 0;
}

/* 1 when rpc_call(method) without params (timeout_ms, 0: the client's)
 * fails with a problem of type whose detail holds detail (NULL: any). */
static int
call_refused(struct rpc_client *c, const char *method, int timeout_ms,
    enum prob_type type, const char *detail)
{
	json_t *res = NULL;
	struct problem *p = NULL;
	int ok = rpc_call(c, method, NULL, timeout_ms, NULL, &res, &p) == -1 &&
	    p != NULL && p->type == type &&
	    (detail == NULL || strstr(p->detail, detail) != NULL);

	json_decref(res);
	problem_free(p);
	return ok;
}

struct async_state {
	struct event_base *base;
	int called;
	int ok;
	char type[32];
};

static void
async_done(void *arg, json_t *result, struct problem *prob)
{
	struct async_state *a = arg;

	a->called++;
	a->ok = result != NULL && prob == NULL;
	if (prob != NULL)
		snprintf(
		    a->type, sizeof(a->type), "%s", prob_type_name(prob->type));
	event_base_loopexit(a->base, NULL);
}

TH_TEST(test_live)
{
	char dir[] = "/tmp/anvil-rpc-unit-XXXXXX", path[128];
	struct srv_thread st;
	struct tsvc svc;
	struct metrics *m = metrics_new();
	struct rpc_client *c = NULL;
	json_t *res = NULL, *params;
	struct problem *p = NULL;
	struct async_state as;
	struct stat sb;
	char *text;
	int runs, i;
	char big[5000];

	if (test_socket(dir, path, sizeof(path), "t.sock", &svc) != 0)
		TH_SKIP(t, "mkdtemp failed");
	TH_CHECK(t, start_server(&st, path, &svc, m) == 0);
	TH_CHECK(t, stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0660);
	c = client_fmt(m, UNIX_CLIENT, path);
	TH_CHECK(t, c != NULL);
	if (c == NULL)
		goto out;

	/* a call and its result; request id and peer travel */
	params = json_pack("{s:i}", "n", 5);
	TH_CHECK(t, rpc_call(c, "t.echo", params, 0, "req-1", &res, &p) == 0);
	TH_CHECK(t,
	    res != NULL && json_equal(json_object_get(res, "params"), params));
	TH_CHECK_STR(
	    t, json_string_value(json_object_get(res, "rid")), "req-1");
	TH_CHECK(t,
	    strncmp(json_string_value(json_object_get(res, "peer")),
		"uid:", 4) == 0);
	json_decref(res);
	res = NULL;
	json_decref(params);

	/* a handler's problem crosses unchanged */
	TH_CHECK(t, rpc_call(c, "t.fail", NULL, 0, NULL, &res, &p) == -1);
	TH_CHECK(t,
	    p != NULL && p->type == PROB_RATE_LIMITED && p->retry_after == 7);
	TH_CHECK_STR(t, p ? p->detail : NULL, "slow down");
	problem_free(p);
	p = NULL;

	/* unknown method */
	TH_CHECK(
	    t, call_refused(c, "t.nope", 0, PROB_MALFORMED, "unknown method"));

	/* health.check follows the health callback */
	TH_CHECK(t, rpc_call(c, rpc_method_name(RPC_HEALTH_CHECK), NULL, 0, NULL, &res, &p) == 0);
	json_decref(res);
	res = NULL;
	atomic_store(&svc.healthy, 0);
	TH_CHECK(t,
	    call_refused(c, rpc_method_name(RPC_HEALTH_CHECK), 0,
		PROB_UNAVAILABLE, "db down"));

	/* timeout: the caller gets unavailable after its own timeout */
	TH_CHECK(
	    t, call_refused(c, "t.sleep", 50, PROB_UNAVAILABLE, "timed out"));

	/* a request larger than max_frame is refused locally */
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	params = json_pack("{s:s}", "big", big);
	TH_CHECK(t, rpc_call(c, "t.echo", params, 0, NULL, &res, &p) == -1);
	problem_free(p);
	p = NULL;
	json_decref(params);

	/* the connection still works afterwards */
	TH_CHECK(t, rpc_call(c, "t.echo", NULL, 0, NULL, &res, &p) == 0);
	json_decref(res);
	res = NULL;

	/* async from a libevent loop */
	memset(&as, 0, sizeof(as));
	as.base = event_base_new();
	TH_CHECK(t,
	    rpc_call_async(
		c, as.base, "t.echo", NULL, 0, NULL, async_done, &as) == 0);
	(void)event_base_loop(as.base, EVLOOP_NO_EXIT_ON_EMPTY);
	TH_CHECK(t, as.called == 1 && as.ok);
	as.called = 0;
	TH_CHECK(t,
	    rpc_call_async(
		c, as.base, "t.fail", NULL, 0, NULL, async_done, &as) == 0);
	(void)event_base_loop(as.base, EVLOOP_NO_EXIT_ON_EMPTY);
	TH_CHECK(t, as.called == 1 && !as.ok);
	TH_CHECK_STR(t, as.type, "rateLimited");
	/* a client freed with an async call pending: the callback still runs
	 * once, with an error, after the client is gone */
	{
		struct rpc_client *c2 = client_fmt(NULL, UNIX_CLIENT, path);

		as.called = 0;
		TH_CHECK(t,
		    c2 != NULL &&
			rpc_call_async(c2, as.base, "t.sleep", NULL, 0, NULL,
			    async_done, &as) == 0);
		rpc_client_free(c2);
		(void)event_base_loop(as.base, EVLOOP_NO_EXIT_ON_EMPTY);
		TH_CHECK(t, as.called == 1 && !as.ok);
		TH_CHECK_STR(t, as.type, "unavailable");
	}
	event_base_free(as.base);

	/* metrics were recorded on both sides */
	text = metrics_render(m);
	TH_CHECK(t,
	    text != NULL &&
		strstr(text,
		    "anvil_rpc_server_calls_total{method=\"t.echo\",result="
		    "\"ok\"}") != NULL);
	TH_CHECK(t,
	    text != NULL &&
		strstr(text,
		    "anvil_rpc_client_calls_total{peer=\"tsvc\",method=\"t."
		    "fail\","
		    "result=\"rateLimited\"}") != NULL);
	TH_CHECK(t,
	    text != NULL &&
		strstr(text, "anvil_rpc_server_call_duration_seconds") != NULL);
	free(text);

	/* server restart: the client reconnects by itself */
	usleep(300 * 1000); /* let the slow call finish */
	stop_server(&st);
	TH_CHECK(t, stat(path, &sb) != 0);
	TH_CHECK(t, call_refused(c, "t.echo", 0, PROB_UNAVAILABLE, NULL));
	TH_CHECK(t, start_server(&st, path, &svc, m) == 0);
	for (i = 0; i < 100; i++) {
		if (rpc_call(c, "t.echo", NULL, 0, NULL, &res, &p) == 0)
			break;
		problem_free(p);
		p = NULL;
		usleep(20 * 1000);
	}
	TH_CHECK(t, res != NULL);
	json_decref(res);
	res = NULL;

	/* denied: t.secret only for uid 99999 ... but t.* lists us */
	runs = atomic_load(&svc.runs);
	TH_CHECK(t, rpc_call(c, "t.secret", NULL, 0, NULL, &res, &p) == 0);
	TH_CHECK(t, atomic_load(&svc.runs) == runs + 1);
	json_decref(res);
	res = NULL;
	stop_server(&st);
out:
	drop_test_socket(c, dir, path);
	metrics_free(m);
}

TH_TEST(test_denied_and_deadline)
{
	char dir[] = "/tmp/anvil-rpc-unit-XXXXXX", path[128], js[300];
	char err[256];
	struct rpc_server_config cfg;
	struct srv_thread st;
	struct tsvc svc;
	struct rpc_client *c = NULL;
	json_t *j;

	if (test_socket(dir, path, sizeof(path), "d.sock", &svc) != 0)
		TH_SKIP(t, "mkdtemp failed");
	TH_CHECK(t,
	    start_server_fmt(&st, &svc, NULL, 0,
		"{\"listen\":\"unix:%s\",\"workers\":1,\"socket_mode\":"
		"\"0600\",\"allow\":{\"t.echo\":[\"uid:99999\","
		"\"nosuchuser\"]}}",
		path) == 0);
	if (st.s == NULL)
		goto out;
	c = client_fmt(NULL, UNIX_CLIENT, path);
	TH_CHECK(t, call_refused(c, "t.echo", 0, PROB_UNAUTHORIZED, NULL));
	TH_CHECK(t, call_refused(c, "t.sleep", 0, PROB_UNAUTHORIZED, NULL));
	TH_CHECK(t, atomic_load(&svc.runs) == 0);
	/* health.check is always allowed */
	TH_CHECK(t, call_ok(c, rpc_method_name(RPC_HEALTH_CHECK)));
	/* a second server on a live socket is refused */
	snprintf(js, sizeof(js), "{\"listen\":\"unix:%s\"}", path);
	j = json_loads(js, 0, NULL);
	TH_CHECK(t, rpc_server_config_parse(j, &cfg, err, sizeof(err)) == 0);
	json_decref(j);
	TH_CHECK(t,
	    rpc_server_new(&cfg, tmethods, 4, &svc, NULL, NULL, NULL, err,
		sizeof(err)) == NULL &&
		strstr(err, "another server"));
	rpc_server_config_clear(&cfg);
	stop_server(&st);
out:
	drop_test_socket(c, dir, path);
}

struct sleeper {
	struct rpc_client *c;
	int ok;
	pthread_t th;
};

static void *
sleeper_main(void *arg)
{
	struct sleeper *sl = arg;
	json_t *res = NULL;
	struct problem *p = NULL;

	sl->ok = rpc_call(sl->c, "t.sleep", NULL, 5000, NULL, &res, &p) == 0;
	json_decref(res);
	problem_free(p);
	return NULL;
}

/*
 * rpc_call runs on direct connections: each is served by a thread of its
 * own that runs the handler itself (issue 18, "RPC without hand-offs"), so
 * the server's worker count no longer bounds blocking callers. One worker
 * and four concurrent 300 ms calls: through the worker pool they would
 * run one after the other; on direct connections they overlap (counted in
 * the handler: a bound on the elapsed time would also count a busy
 * machine's scheduling).
 */
TH_TEST(test_direct)
{
	char dir[] = "/tmp/anvil-rpc-unit-XXXXXX", path[128];
	struct srv_thread st;
	struct tsvc svc;
	struct rpc_client *c = NULL;
	struct sleeper sl[4];
	int64_t t0, el;
	int i;

	if (test_socket(dir, path, sizeof(path), "w.sock", &svc) != 0)
		TH_SKIP(t, "mkdtemp failed");
	TH_CHECK(t,
	    start_server_fmt(&st, &svc, NULL, 0,
		"{\"listen\":\"unix:%s\",\"workers\":1,"
		"\"allow\":{\"t.*\":[\"*\"]}}",
		path) == 0);
	if (st.s == NULL)
		goto out;
	c = client_fmt(
	    NULL, "{\"target\":\"unix:%s\",\"connections\":4}", path);
	TH_CHECK(t, c != NULL);
	if (c == NULL) {
		stop_server(&st);
		goto out;
	}
	t0 = time_mono_ms();
	for (i = 0; i < 4; i++) {
		sl[i].c = c;
		sl[i].ok = 0;
		TH_CHECK(t,
		    pthread_create(&sl[i].th, NULL, sleeper_main, &sl[i]) == 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(sl[i].th, NULL);
		TH_CHECK(t, sl[i].ok);
	}
	el = time_mono_ms() - t0;
	TH_CHECK(t, atomic_load(&svc.runs) == 4);
	TH_CHECK(t, atomic_load(&svc.most_sleeping) >= 2);
	printf("# 4 calls of 300 ms on direct connections: %lld ms, at most "
	       "%d at once\n",
	    (long long)el, atomic_load(&svc.most_sleeping));
	/* SIGTERM-style drain with direct connections open and idle: the
	 * server stops and frees without waiting for them to close. */
	stop_server(&st);
	TH_CHECK(t, stat(path, &(struct stat){0}) != 0);
out:
	drop_test_socket(c, dir, path);
}

TH_TEST(test_unreachable)
{
	struct rpc_client *c =
	    client_fmt(NULL, UNIX_CLIENT, "/nonexistent/x.sock");
	json_t *res = NULL;
	struct problem *p = NULL;
	int64_t t0 = time_mono_ms();

	TH_CHECK(t, c != NULL);
	if (c == NULL)
		return;
	TH_CHECK(t, rpc_call(c, "t.echo", NULL, 0, NULL, &res, &p) == -1);
	TH_CHECK(t,
	    p != NULL && p->type == PROB_UNAVAILABLE &&
		strstr(p->detail, "tsvc unavailable") != NULL);
	TH_CHECK(t, time_mono_ms() - t0 < 1000);
	problem_free(p);
	rpc_client_free(c);
}

/* The registry: every method once, wire names "<owner>.<verb>", lookups
 * both ways, parameter specs that name the bad key. */
TH_TEST(test_contract_registry)
{
	const struct rpc_contract *m;
	char err[256];
	json_t *j;
	size_t i, k;

	for (i = 0; i < RPC_METHOD__MAX; i++) {
		m = rpc_contract_get((enum rpc_method_id)i);
		TH_CHECK(t, m != NULL && m->id == (enum rpc_method_id)i);
		TH_CHECK(t, rpc_contract_find(m->name) == m);
		TH_CHECK(t, m->callers != 0 && m->params != NULL);
		if (m->owner != RPC_SVC_ANY)
			TH_CHECK(t,
			    strncmp(m->name, rpc_service_name(m->owner),
				2) == 0 &&
				m->name[2] == '.');
		for (k = 0; k < i; k++)
			TH_CHECK(t,
			    strcmp(rpc_method_name((enum rpc_method_id)k),
				m->name) != 0);
	}
	TH_CHECK(t, rpc_contract_find("sa.no_such") == NULL);
	TH_CHECK(t, rpc_contract_get(RPC_METHOD__MAX) == NULL);
	TH_CHECK(t, rpc_contract_find(rpc_method_name(RPC_SA_GET_ORDER))->id == RPC_SA_GET_ORDER);
	m = rpc_contract_get(RPC_SA_GET_ORDER);
	j = json_loads("{\"id\": 9}", 0, NULL);
	TH_CHECK(t, rpc_contract_check_params(m, j, err, sizeof(err)) == 0);
	json_decref(j);
	j = json_loads("{\"id\": \"9\"}", 0, NULL);
	TH_CHECK(t,
	    rpc_contract_check_params(m, j, err, sizeof(err)) == -1 &&
		strcmp(err, "id: expected an integer") == 0);
	json_decref(j);
	j = json_loads("{\"id\": 9, \"evil\": 1}", 0, NULL);
	TH_CHECK(t,
	    rpc_contract_check_params(m, j, err, sizeof(err)) == -1 &&
		strcmp(err, "evil: unknown key") == 0);
	json_decref(j);
	TH_CHECK(t,
	    rpc_contract_check_params(m, NULL, err, sizeof(err)) == -1 &&
		strcmp(err, "id: required key is missing") == 0);
	/* The WFE reaches no signing method and no SA write. */
	for (i = 0; i < RPC_METHOD__MAX; i++) {
		m = rpc_contract_get((enum rpc_method_id)i);
		if (m->owner == RPC_SVC_CA || m->owner == RPC_SVC_VA ||
		    (m->owner == RPC_SVC_SA && m->access == RPC_RW))
			TH_CHECK(t, !(m->callers & RPC_BY_WFE));
	}
}

/* Caller classes: deny by default, "self" is this process's own uid. */
TH_TEST(test_contract_callers)
{
	json_t *c = json_loads("{\"wfe\": [\"anvil-wfe\", \"wfe\"], "
			       "\"ra\": [\"uid:7\"], \"admin\": [\"self\"]}",
	    0, NULL);
	const struct rpc_contract *issue = rpc_contract_get(RPC_CA_ISSUE);
	const struct rpc_contract *get = rpc_contract_get(RPC_SA_GET_ORDER);
	const struct rpc_contract *hc = rpc_contract_get(RPC_HEALTH_CHECK);
	char self[32];

	snprintf(self, sizeof(self), "uid:%u", (unsigned)geteuid());
	TH_CHECK(t, rpc_authorized_contract(c, get, "wfe", NULL));
	TH_CHECK(t, rpc_authorized_contract(c, get, "uid:5", "anvil-wfe"));
	TH_CHECK(t, !rpc_authorized_contract(c, issue, "wfe", NULL));
	TH_CHECK(t, !rpc_authorized_contract(c, issue, "uid:5", "anvil-wfe"));
	TH_CHECK(t, rpc_authorized_contract(c, issue, "uid:7", NULL));
	TH_CHECK(t, rpc_authorized_contract(c, get, self, NULL));
	TH_CHECK(t, !rpc_authorized_contract(c, issue, self, NULL));
	TH_CHECK(t, !rpc_authorized_contract(c, get, "uid:99998", NULL));
	TH_CHECK(t, !rpc_authorized_contract(NULL, get, "wfe", NULL));
	TH_CHECK(t, rpc_authorized_contract(NULL, hc, "anyone", NULL));
	json_decref(c);
}

static int
h_never(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	(void)req;
	(void)prob;
	return ran_with(svc, result, json_object());
}

/* A server built from the registry: refuses what the caller class may not
 * call, and a malformed call before its handler runs, naming the key. */
TH_TEST(test_contract_server)
{
	char dir[] = "/tmp/anvil-rpc-ct.XXXXXX", path[200], js[512], err[256];
	rpc_handler_fn h[RPC_METHOD__MAX];
	struct rpc_server_config cfg;
	struct srv_thread st;
	struct tsvc svc;
	struct rpc_client *c = NULL;
	json_t *j, *res = NULL;
	struct problem *p = NULL;
	size_t i, n = 0;
	struct rpc_method *tbl;

	memset(h, 0, sizeof(h));
	for (i = 0; i < RPC_METHOD__MAX; i++)
		if (rpc_contract_get((enum rpc_method_id)i)->owner ==
		    RPC_SVC_SA)
			h[i] = h_never;
	/* Every owned method needs a handler; none of another service. */
	h[RPC_SA_GET_ORDER] = NULL;
	TH_CHECK(t,
	    rpc_contract_methods(RPC_SVC_SA, h, &n, err, sizeof(err)) ==
		    NULL &&
		strstr(err, "sa.get_order has no handler") != NULL);
	h[RPC_SA_GET_ORDER] = h_never;
	h[RPC_CA_ISSUE] = h_never;
	TH_CHECK(t,
	    rpc_contract_methods(RPC_SVC_SA, h, &n, err, sizeof(err)) ==
		    NULL &&
		strstr(err, rpc_method_name(RPC_CA_ISSUE)) != NULL);
	h[RPC_CA_ISSUE] = NULL;
	tbl = rpc_contract_methods(RPC_SVC_SA, h, &n, err, sizeof(err));
	TH_CHECK(t, tbl != NULL && n > 40);
	free(tbl);

	if (test_socket(dir, path, sizeof(path), "c.sock", &svc) != 0)
		TH_SKIP(t, "mkdtemp failed");
	/* This process is class "wfe" only. */
	snprintf(js, sizeof(js),
	    "{\"listen\":\"unix:%s\",\"workers\":1,"
	    "\"callers\":{\"wfe\":[\"uid:%u\"]},"
	    "\"allow\":{\"*\":[\"*\"]}}",
	    path, (unsigned)geteuid());
	j = json_loads(js, 0, NULL);
	TH_CHECK(t, rpc_server_config_parse(j, &cfg, err, sizeof(err)) == 0);
	json_decref(j);
	st.s = rpc_server_new_service(
	    &cfg, RPC_SVC_SA, h, &svc, NULL, NULL, NULL, err, sizeof(err));
	rpc_server_config_clear(&cfg);
	TH_CHECK(t, st.s != NULL);
	if (st.s == NULL)
		goto out;
	TH_CHECK(t, pthread_create(&st.th, NULL, srv_main, &st) == 0);
	c = client_fmt(NULL, UNIX_CLIENT, path);
	/* A write the WFE class may not call: refused ("allow" does not
	 * widen registry methods). */
	j = json_pack("{s:s,s:I,s:s}", "serial", "ab", "account_id",
	    (json_int_t)1, "expires", "2030-01-01T00:00:00Z");
	TH_CHECK(t,
	    rpc_call(c, rpc_method_name(RPC_SA_RESERVE_SERIAL), j, 0, NULL,
		&res, &p) == -1 &&
		p != NULL && p->type == PROB_UNAUTHORIZED);
	json_decref(j);
	problem_free(p);
	p = NULL;
	/* Allowed, but malformed: refused before the handler, key named. */
	j = json_pack("{s:s}", "id", "9");
	TH_CHECK(t,
	    rpc_call(c, rpc_method_name(RPC_SA_GET_ORDER), j, 0, NULL, &res,
		&p) == -1 &&
		p != NULL && p->type == PROB_MALFORMED &&
		strstr(p->detail, "id: expected an integer") != NULL);
	json_decref(j);
	problem_free(p);
	p = NULL;
	TH_CHECK(t, atomic_load(&svc.runs) == 0);
	/* Allowed and well-formed: reaches the handler. */
	j = json_pack("{s:I}", "id", (json_int_t)9);
	TH_CHECK(t,
	    rpc_call(c, rpc_method_name(RPC_SA_GET_ORDER), j, 0, NULL, &res,
		&p) == 0);
	json_decref(j);
	json_decref(res);
	TH_CHECK(t, atomic_load(&svc.runs) == 1);
	stop_server(&st);
out:
	drop_test_socket(c, dir, path);
}

/* ---------------------------------------------------------------- */
/* Client-side failover ("targets")                                   */
/* ---------------------------------------------------------------- */

/* A server that accepts, answers the direct-connection hello, reads one
 * request and closes without answering: a machine lost mid-call. */
struct blackhole {
	int fd;
	pthread_t th;
	atomic_int requests;
	atomic_int stop;
	int hang; /* keep the connection open, never answer */
	int held[64];
	int nheld;
};

static int
read_frame_raw(int fd)
{
	uint8_t hdr[4], buf[4096];
	size_t n, got = 0;
	ssize_t r;

	while (got < 4) {
		r = read(fd, hdr + got, 4 - got);
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	n = ((size_t)hdr[0] << 24) | ((size_t)hdr[1] << 16) |
	    ((size_t)hdr[2] << 8) | hdr[3];
	while (n > 0) {
		r = read(fd, buf, n < sizeof(buf) ? n : sizeof(buf));
		if (r <= 0)
			return -1;
		n -= (size_t)r;
	}
	return 0;
}

static void *
blackhole_main(void *arg)
{
	struct blackhole *b = arg;
	uint8_t out[128];
	size_t n;
	int fd;

	while (!atomic_load(&b->stop)) {
		fd = accept(b->fd, NULL, NULL);
		if (fd < 0)
			continue;
		n = mkframe(out, "{\"id\":0,\"result\":{}}");
		if (read_frame_raw(fd) == 0 &&
		    write(fd, out, n) == (ssize_t)n && read_frame_raw(fd) == 0)
			atomic_fetch_add(&b->requests, 1);
		if (b->hang && b->nheld < 64)
			b->held[b->nheld++] = fd;
		else
			close(fd);
	}
	while (b->nheld > 0)
		close(b->held[--b->nheld]);
	return NULL;
}

static int
blackhole_start(struct blackhole *b, const char *path)
{
	struct sockaddr_un sun;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	atomic_init(&b->requests, 0);
	atomic_init(&b->stop, 0);
	b->nheld = 0;
	b->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (b->fd < 0 || bind(b->fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 ||
	    listen(b->fd, 16) != 0)
		return -1;
	return pthread_create(&b->th, NULL, blackhole_main, b) == 0 ? 0 : -1;
}

static void
blackhole_stop(struct blackhole *b, const char *path)
{
	atomic_store(&b->stop, 1);
	/* wake accept() */
	shutdown(b->fd, SHUT_RDWR);
	pthread_join(b->th, NULL);
	close(b->fd);
	(void)unlink(path);
}

static struct rpc_client *
new_group_client(const char *a, const char *b)
{
	return client_fmt(NULL,
	    "{\"targets\":[\"unix:%s\",\"unix:%s\"],\"timeout\":\"3s\","
	    "\"connect_timeout\":\"500ms\",\"connections\":2}",
	    a, b);
}

TH_TEST(test_failover_config)
{
	/* refused client configs with targets and what their errors name */
	static const char *const bad[][2] = {
	    {"{\"targets\":[\"unix:/a\"],\"target\":\"unix:/b\"}", "targets"},
	    {"{\"targets\":[\"unix:/a\",\"bogus:1\"]}", "targets[1]"},
	    {"{\"targets\":[\"unix:/a\",\"tcp:10.0.0.1:1\"]}", "tls"},
	    {"{\"timeout\":\"1s\"}", "target"},
	};
	struct rpc_client_config c;
	json_t *j;
	char err[256];

	j = json_loads("{\"targets\":[\"unix:/a\",\"unix:/b\"],"
		       "\"connect_timeout\":\"300ms\"}",
	    0, NULL);
	TH_CHECK(t, rpc_client_config_parse(j, &c, err, sizeof(err)) == 0);
	TH_CHECK(t, c.ntargets == 2 && c.connect_timeout_ms == 300);
	TH_CHECK_STR(t, c.target, "unix:/a");
	rpc_client_config_clear(&c);
	json_decref(j);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		TH_CHECK(t, cli_refused(bad[i][0], bad[i][1]));
}

/*
 * Two targets: calls succeed while one is missing, are spread over both
 * when both answer, keep succeeding when one stops; a request lost after
 * it was sent is repeated on the other target only for a read-only
 * method (health.check), never for a write (t.echo is outside the
 * registry, so not known to be read-only).
 */
TH_TEST(test_failover)
{
	char dir[] = "/tmp/anvil-rpc-unit-XXXXXX", pa[128], pb[128];
	struct srv_thread sa, sb;
	struct tsvc va, vb;
	struct blackhole bh;
	struct rpc_client *c = NULL;
	int i, ok, a0, b0, lost_rw = 0, lost_ro = 0, all_ok = 1, dup = 0;

	memset(&va, 0, sizeof(va));
	memset(&vb, 0, sizeof(vb));
	atomic_init(&va.healthy, 1);
	atomic_init(&vb.healthy, 1);
	if (mkdtemp(dir) == NULL)
		TH_SKIP(t, "mkdtemp failed");
	snprintf(pa, sizeof(pa), "%s/a.sock", dir);
	snprintf(pb, sizeof(pb), "%s/b.sock", dir);
	TH_CHECK(t, start_server(&sb, pb, &vb, NULL) == 0);
	c = new_group_client(pa, pb);
	TH_CHECK(t, c != NULL);
	if (c == NULL)
		goto out_b;
	/* a missing: every call lands on b */
	for (i = 0; i < 20; i++)
		all_ok &= call_ok(c, "t.echo");
	TH_CHECK(t, all_ok);
	TH_CHECK(t, atomic_load(&vb.runs) == 20);
	/* both up: both get calls (a's back-off is at most 1 s) */
	TH_CHECK(t, start_server(&sa, pa, &va, NULL) == 0);
	for (i = 0; i < 400 && atomic_load(&va.runs) == 0; i++) {
		all_ok &= call_ok(c, "t.echo");
		usleep(10 * 1000);
	}
	TH_CHECK(t, all_ok);
	TH_CHECK(t, atomic_load(&va.runs) > 0);
	a0 = atomic_load(&va.runs);
	b0 = atomic_load(&vb.runs);
	for (i = 0; i < 20; i++)
		all_ok &= call_ok(c, "t.echo");
	TH_CHECK(t, all_ok);
	TH_CHECK(t, atomic_load(&va.runs) > a0 && atomic_load(&vb.runs) > b0);
	/* a stops: calls go on */
	stop_server(&sa);
	for (i = 0; i < 20; i++)
		all_ok &= call_ok(c, "t.echo");
	TH_CHECK(t, all_ok);
	/* a takes requests and drops them */
	bh.hang = 0;
	TH_CHECK(t, blackhole_start(&bh, pa) == 0);
	for (i = 0; i < 300 && (lost_rw == 0 || lost_ro == 0); i++) {
		a0 = atomic_load(&bh.requests);
		b0 = atomic_load(&vb.runs);
		if (lost_rw == 0) {
			ok = call_ok(c, "t.echo");
			if (atomic_load(&bh.requests) > a0) {
				lost_rw++;
				/* not repeated on b, and reported */
				dup |= ok || atomic_load(&vb.runs) != b0;
			}
		} else {
			ok = call_ok(c, rpc_method_name(RPC_HEALTH_CHECK));
			all_ok &= ok;
			if (atomic_load(&bh.requests) > a0)
				lost_ro++;
		}
		usleep(5 * 1000);
	}
	TH_CHECK(t, lost_rw == 1 && !dup);
	TH_CHECK(t, lost_ro >= 1 && all_ok);
	blackhole_stop(&bh, pa);
	/* a takes requests and never answers (a machine cut off): a read
	 * still succeeds on b within its 3 s deadline */
	bh.hang = 1;
	TH_CHECK(t, blackhole_start(&bh, pa) == 0);
	lost_ro = 0;
	for (i = 0; i < 300 && lost_ro == 0; i++) {
		int64_t t0 = time_mono_ms();

		a0 = atomic_load(&bh.requests);
		ok = call_ok(c, rpc_method_name(RPC_HEALTH_CHECK));
		all_ok &= ok && time_mono_ms() - t0 < 3000;
		if (atomic_load(&bh.requests) > a0)
			lost_ro++;
		usleep(5 * 1000);
	}
	TH_CHECK(t, lost_ro == 1 && all_ok);
	blackhole_stop(&bh, pa);
	rpc_client_free(c);
out_b:
	stop_server(&sb);
	(void)unlink(pa);
	(void)unlink(pb);
	(void)rmdir(dir);
}

TH_MAIN(log_init("test_rpc", LOG_LEVEL_ERROR))
