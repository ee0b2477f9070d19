/* LIBS: va jose rpc core */
/*
 * test_va_net.c - the VA through its C API with real sockets on loopback:
 * a libevent HTTP responder and a tiny UDP DNS server in this process.
 *
 *   test_va_net            the tests (ports 21320-21329)
 *   test_va_net --bench [N...]  validations/s for http-01 with N (default
 *                          1, 64, 512) in flight and the peak RSS (prints)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>

#include "test/unit/harness.h"
#include "va/va.h"

#define P_HTTP 21320
#define P_DNS 21321
#define P_SILENT 21322
#define P_CLOSED 21323 /* nothing listens: connection refused */
#define P_LATE 21324   /* a responder starts after the first refusal */
#define KA "tok.thumbprint"

/* ---------------------------------------------------------------- responder */

struct responder {
	struct event_base *base;
	struct evconnlistener *lis;
	pthread_t thr;
	int silent;                /* accept, read, never answer */
	struct bufferevent **held; /* silent connections kept open */
	size_t nheld;
};

static void
resp_write_cb(struct bufferevent *bev, void *arg)
{
	(void)arg;
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		bufferevent_free(bev);
}

static void
resp_read_cb(struct bufferevent *bev, void *arg)
{
	struct responder *r = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_ptr p = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 15\r\n"
				 "Connection: close\r\n\r\n" KA "\n";

	if (p.pos < 0)
		return;
	evbuffer_drain(in, evbuffer_get_length(in));
	if (r->silent)
		return;
	bufferevent_setcb(bev, NULL, resp_write_cb, NULL, r);
	bufferevent_write(bev, ok, sizeof(ok) - 1);
}

static void
resp_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)what;
	(void)arg;
	bufferevent_free(bev);
}

static void
resp_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct responder *r = arg;
	struct bufferevent *bev;

	(void)l;
	(void)sa;
	(void)salen;
	bev = bufferevent_socket_new(r->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		close(fd);
		return;
	}
	if (r->silent) {
		r->held = realloc(r->held, (r->nheld + 1) * sizeof(*r->held));
		r->held[r->nheld++] = bev;
		bufferevent_setcb(bev, resp_read_cb, NULL, NULL, r);
	} else {
		bufferevent_setcb(bev, resp_read_cb, NULL, resp_event_cb, r);
	}
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* 127.0.0.1:port into sin. */
static void
loopback(struct sockaddr_in *sin, int port)
{
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)port);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

/* The responder's thread: its event loop until responder_stop. */
static void *
resp_main(void *arg)
{
	struct responder *r = arg;

	event_base_loop(r->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

static struct responder *
responder_start(int port, int silent)
{
	struct responder *r = calloc(1, sizeof(*r));
	struct sockaddr_in sin;

	loopback(&sin, port);
	r->silent = silent;
	r->base = event_base_new();
	r->lis = evconnlistener_new_bind(r->base, resp_accept_cb, r,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 4096,
	    (struct sockaddr *)&sin, sizeof(sin));
	if (r->lis == NULL) {
		fprintf(
		    stderr, "cannot listen on %d: %s\n", port, strerror(errno));
		event_base_free(r->base);
		free(r);
		return NULL;
	}
	pthread_create(&r->thr, NULL, resp_main, r);
	return r;
}

static void
responder_stop(struct responder *r)
{
	if (r == NULL)
		return;
	event_base_loopbreak(r->base);
	pthread_join(r->thr, NULL);
	for (size_t i = 0; i < r->nheld; i++)
		bufferevent_free(r->held[i]);
	free(r->held);
	evconnlistener_free(r->lis);
	event_base_free(r->base);
	free(r);
}

/* ---------------------------------------------------------------- DNS */

struct fakedns {
	int fd;
	pthread_t thr;
	volatile int stop;
	char txt[64];
};

static void *
dns_main(void *arg)
{
	struct fakedns *d = arg;
	uint8_t q[512], out[600];
	struct sockaddr_storage from;
	socklen_t fl;
	ssize_t n;
	size_t i, o;
	int qtype;

	while (!d->stop) {
		fl = sizeof(from);
		n = recvfrom(
		    d->fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
		if (n < 17)
			continue;
		for (i = 12; i < (size_t)n && q[i] != 0; i += 1u + q[i])
			;
		if (i + 5 > (size_t)n)
			continue;
		qtype = q[i + 1] << 8 | q[i + 2];
		/* names under "silent" are never answered */
		if (memmem(q + 12, i - 12, "\006silent", 7) != NULL)
			continue;
		memcpy(out, q, i + 5);
		out[2] = 0x81;
		out[3] = 0x80;
		out[4] = 0;
		out[5] = 1;
		out[6] = 0;
		out[7] = 0;
		memset(out + 8, 0, 4);
		o = i + 5;
		if (qtype == 1 || qtype == 16) {
			size_t tl = strlen(d->txt);
			out[7] = 1;
			out[o++] = 0xc0;
			out[o++] = 12;
			out[o++] = 0;
			out[o++] = (uint8_t)qtype;
			out[o++] = 0;
			out[o++] = 1;
			memset(out + o, 0, 4);
			o += 4;
			if (qtype == 1) {
				out[o++] = 0;
				out[o++] = 4;
				out[o++] = 127;
				out[o++] = 0;
				out[o++] = 0;
				out[o++] = 1;
			} else {
				out[o++] = 0;
				out[o++] = (uint8_t)(tl + 1);
				out[o++] = (uint8_t)tl;
				memcpy(out + o, d->txt, tl);
				o += tl;
			}
		}
		sendto(d->fd, out, o, 0, (struct sockaddr *)&from, fl);
	}
	return NULL;
}

static void
dns_stop(struct fakedns *d)
{
	if (d == NULL)
		return;
	d->stop = 1;
	pthread_join(d->thr, NULL);
	close(d->fd);
	free(d);
}

/* A UDP socket bound to 127.0.0.1:port with a 100 ms receive timeout, or
 * -1 (said on stderr). */
static int
udp_loopback(int port)
{
	struct sockaddr_in sin;
	struct timeval tv = {0, 100000};
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	loopback(&sin, port);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		fprintf(
		    stderr, "cannot bind DNS %d: %s\n", port, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static struct fakedns *
dns_start(int port, const char *txt)
{
	int fd = udp_loopback(port);
	struct fakedns *d;

	if (fd < 0)
		return NULL;
	d = calloc(1, sizeof(*d));
	d->fd = fd;
	snprintf(d->txt, sizeof(d->txt), "%s", txt);
	pthread_create(&d->thr, NULL, dns_main, d);
	return d;
}

/* ---------------------------------------------------------------- helpers */

static char resolver[] = "127.0.0.1:21321";

static void
config(struct va_config *cfg, int http_port, int64_t timeout_ms)
{
	va_config_defaults(cfg);
	free(cfg->dns_resolvers[0]);
	cfg->dns_resolvers[0] = strdup(resolver);
	cfg->dns_timeout_ms = 500;
	cfg->dns_tries = 1;
	cfg->http01_port = http_port;
	cfg->validation_timeout_ms = timeout_ms;
}

static void
request(
    struct va_request *req, enum ident_type t, const char *v, enum chal_type c)
{
	memset(req, 0, sizeof(*req));
	req->ident_type = t;
	req->ident_value = v;
	req->challenge = c;
	req->token = "tok";
	req->key_authorization = KA;
}

struct counter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done, valid, unavailable;
	int inflight_target; /* bench: resubmit to keep this many */
	int64_t stop_at;
	struct va *va;
	int keep;              /* keep the last result in kept */
	struct va_result kept; /* owned: va_result_clear it */
};

/* Zeroes c for callbacks of va (borrowed) with target in flight. */
static void
counter_init(struct counter *c, struct va *va, int target)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->va = va;
	c->inflight_target = target;
}

static void
counter_clear(struct counter *c)
{
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
}

/* Waits until every validation c counts has called back. */
static void
counter_wait(struct counter *c)
{
	pthread_mutex_lock(&c->mu);
	while (c->inflight_target > 0)
		pthread_cond_wait(&c->cv, &c->mu);
	pthread_mutex_unlock(&c->mu);
}

static void
count_done(void *arg, struct va_result *res)
{
	struct counter *c = arg;
	struct va_request req;
	struct problem *p = NULL;
	int again;

	pthread_mutex_lock(&c->mu);
	c->done++;
	if (res->valid)
		c->valid++;
	else if (res->prob && res->prob->type == PROB_UNAVAILABLE)
		c->unavailable++;
	again = c->stop_at > 0 && time_mono_ms() < c->stop_at;
	if (c->keep) {
		va_result_clear(&c->kept);
		c->kept = *res;
		memset(res, 0, sizeof(*res));
	}
	pthread_mutex_unlock(&c->mu);
	va_result_clear(res);
	if (again) {
		request(&req, IDENT_IP, "127.0.0.1", CHAL_HTTP01);
		if (va_validate_async(c->va, &req, count_done, c, &p) != 0) {
			problem_free(p);
			again = 0;
		}
	}
	if (!again) {
		pthread_mutex_lock(&c->mu);
		c->inflight_target--;
		pthread_cond_broadcast(&c->cv);
		pthread_mutex_unlock(&c->mu);
	}
}

/* One test's VA with its config, request and result. */
struct vt {
	struct va_config cfg;
	struct va_request req;
	struct va_result res;
	struct va *va;
};

/*
 * Starts v->va for the responder on http_port (config() with timeout_ms;
 * m borrowed, may be NULL). The VA reads v->cfg while it runs. -1, a failed
 * check in t and v cleared, if va_new refused the config.
 */
static int
vt_up(struct th *t, struct vt *v, int http_port, int64_t timeout_ms,
    struct metrics *m)
{
	char err[256];

	memset(v, 0, sizeof(*v));
	config(&v->cfg, http_port, timeout_ms);
	v->va = va_new(&v->cfg, m, err, sizeof(err));
	TH_CHECK(t, v->va != NULL);
	if (v->va != NULL)
		return 0;
	fprintf(stderr, "  va_new: %s\n", err);
	va_config_clear(&v->cfg);
	return -1;
}

/* Frees v->va, then its config. */
static void
vt_down(struct vt *v)
{
	va_free(v->va);
	va_config_clear(&v->cfg);
}

/* ---------------------------------------------------------------- tests */

TH_TEST(test_http01_ip_sync)
{
	struct vt v;
	char err[256];
	json_t *hop;

	if (vt_up(t, &v, P_HTTP, 5000, NULL) != 0)
		return;
	TH_CHECK(t, va_health(v.va, err, sizeof(err)) == 0);
	request(&v.req, IDENT_IP, "127.0.0.1", CHAL_HTTP01);
	TH_CHECK(t, va_validate(v.va, &v.req, &v.res) == 0);
	TH_CHECK(t, v.res.valid);
	hop = json_array_get(v.res.record, 0);
	TH_CHECK_STR(t, json_string_value(json_object_get(hop, "url")),
	    "http://127.0.0.1:21320/.well-known/acme-challenge/tok");
	TH_CHECK_STR(t, json_string_value(json_object_get(hop, "address_used")),
	    "127.0.0.1");
	va_result_clear(&v.res);
	vt_down(&v);
}

TH_TEST(test_http01_and_dns01_by_name)
{
	struct vt v;

	if (vt_up(t, &v, P_HTTP, 5000, NULL) != 0)
		return;
	request(&v.req, IDENT_DNS, "name.test", CHAL_HTTP01);
	TH_CHECK(t, va_validate(v.va, &v.req, &v.res) == 0);
	TH_CHECK(t, v.res.valid);
	TH_CHECK_STR(t,
	    json_string_value(
		json_object_get(json_array_get(v.res.record, 0), "hostname")),
	    "name.test");
	va_result_clear(&v.res);
	request(&v.req, IDENT_DNS, "name.test", CHAL_DNS01);
	TH_CHECK(t, va_validate(v.va, &v.req, &v.res) == 0);
	TH_CHECK(t, v.res.valid);
	va_result_clear(&v.res);
	v.req.key_authorization = "another";
	TH_CHECK(t, va_validate(v.va, &v.req, &v.res) == 0);
	TH_CHECK(t,
	    !v.res.valid && v.res.prob != NULL &&
		v.res.prob->type == PROB_INCORRECT_RESPONSE);
	va_result_clear(&v.res);
	vt_down(&v);
}

TH_TEST(test_512_in_flight)
{
	struct vt v;
	struct counter c;
	struct problem *p = NULL;
	int i, n = 512;
	int64_t t0;

	if (vt_up(t, &v, P_HTTP, 10000, NULL) != 0)
		return;
	counter_init(&c, v.va, n);
	request(&v.req, IDENT_IP, "127.0.0.1", CHAL_HTTP01);
	t0 = time_mono_ms();
	for (i = 0; i < n; i++)
		TH_CHECK(t,
		    va_validate_async(v.va, &v.req, count_done, &c, &p) == 0);
	counter_wait(&c);
	fprintf(stderr, "  512 validations in %lld ms\n",
	    (long long)(time_mono_ms() - t0));
	TH_CHECK(t, c.done == n && c.valid == n);
	TH_CHECK(t, va_inflight(v.va) == 0);
	vt_down(&v);
	counter_clear(&c);
}

TH_TEST(test_silent_server_times_out)
{
	struct vt v;
	int64_t t0;

	if (vt_up(t, &v, P_SILENT, 700, NULL) != 0)
		return;
	request(&v.req, IDENT_IP, "127.0.0.1", CHAL_HTTP01);
	t0 = time_mono_ms();
	TH_CHECK(t, va_validate(v.va, &v.req, &v.res) == 0);
	/* the 700 ms deadline, not the VA's 20 s default (room for a busy
	 * machine's scheduling) */
	TH_CHECK(t, time_mono_ms() - t0 < 5000);
	TH_CHECK(t,
	    !v.res.valid && v.res.prob != NULL &&
		v.res.prob->type == PROB_CONNECTION);
	TH_CHECK(t,
	    v.res.prob &&
		strstr(v.res.prob->detail,
		    "Timeout after "
		    "connect") != NULL);
	va_result_clear(&v.res);
	vt_down(&v);
}

/*
 * RFC 8555 §8.2: "the server MAY retry" -- a refused connection is tried
 * connect_retries more times with a growing backoff, each attempt is
 * recorded in the hop's "attempts", and the challenge then fails with a
 * connection problem well before the deadline.
 */
TH_TEST(test_refused_connection_retried_then_fails)
{
	struct vt v;
	json_t *att;
	int64_t t0;

	if (vt_up(t, &v, P_CLOSED, 10000, NULL) != 0)
		return;
	v.cfg.connect_retries = 3;
	request(&v.req, IDENT_IP, "127.0.0.1", CHAL_HTTP01);
	t0 = time_mono_ms();
	TH_CHECK(t, va_validate(v.va, &v.req, &v.res) == 0);
	/* 250 + 500 + 1000 ms of backoff, far below the 10 s deadline */
	TH_CHECK(t, time_mono_ms() - t0 >= 1750);
	TH_CHECK(t, time_mono_ms() - t0 < 8000);
	TH_CHECK(t,
	    !v.res.valid && v.res.prob != NULL &&
		v.res.prob->type == PROB_CONNECTION);
	TH_CHECK(t,
	    v.res.prob != NULL && v.res.prob->detail != NULL &&
		strstr(v.res.prob->detail, "refused") != NULL);
	att = json_object_get(json_array_get(v.res.record, 0), "attempts");
	TH_CHECK(t, json_array_size(att) == 3);
	TH_CHECK(t,
	    strstr(json_string_value(
		       json_object_get(json_array_get(att, 0), "error")),
		"refused") != NULL);
	va_result_clear(&v.res);
	/* connect_retries 0: one attempt, no record of retries */
	v.cfg.connect_retries = 0;
	t0 = time_mono_ms();
	TH_CHECK(t, va_validate(v.va, &v.req, &v.res) == 0);
	/* below the 1750 ms the three retries' backoff takes */
	TH_CHECK(t, time_mono_ms() - t0 < 1750);
	TH_CHECK(t, !v.res.valid && v.res.prob != NULL);
	TH_CHECK(t,
	    json_object_get(json_array_get(v.res.record, 0), "attempts") ==
		NULL);
	va_result_clear(&v.res);
	vt_down(&v);
}

/*
 * The client's responder comes up just after the challenge POST: the
 * first connection is refused, a retry reaches the responder and the
 * challenge is valid (the refusal stays in the record).
 */
TH_TEST(test_listener_started_late_is_reached_by_a_retry)
{
	struct vt v;
	struct metrics *m = metrics_new();
	struct responder *late = NULL;
	struct counter w;
	struct problem *p = NULL;
	char *text;
	int64_t deadline;
	json_t *att;
	int retried = 0;

	if (vt_up(t, &v, P_LATE, 10000, m) != 0) {
		metrics_free(m);
		return;
	}
	v.cfg.connect_retries = 3;
	counter_init(&w, NULL, 1);
	w.keep = 1;
	request(&v.req, IDENT_IP, "127.0.0.1", CHAL_HTTP01);
	TH_CHECK(t, va_validate_async(v.va, &v.req, count_done, &w, &p) == 0);
	problem_free(p);
	/* wait (bounded) for the first refusal to be counted */
	deadline = time_mono_ms() + 5000;
	while (!retried && time_mono_ms() < deadline) {
		text = metrics_render(m);
		retried = text != NULL &&
		    strstr(text, "anvil_va_connect_retries_total 1") != NULL;
		free(text);
		if (!retried)
			usleep(10 * 1000);
	}
	TH_CHECK(t, retried);
	late = responder_start(P_LATE, 0);
	TH_CHECK(t, late != NULL);
	counter_wait(&w);
	TH_CHECK(t, w.done == 1 && w.valid == 1 && w.kept.valid);
	att = json_object_get(json_array_get(w.kept.record, 0), "attempts");
	TH_CHECK(t, json_array_size(att) >= 1);
	va_result_clear(&w.kept);
	vt_down(&v);
	responder_stop(late);
	metrics_free(m);
	counter_clear(&w);
}

TH_TEST(test_free_with_validations_in_flight)
{
	struct vt v;
	struct counter c;
	struct problem *p = NULL;
	int i;

	if (vt_up(t, &v, P_SILENT, 30000, NULL) != 0)
		return;
	counter_init(&c, v.va, 0);
	request(&v.req, IDENT_IP, "127.0.0.1", CHAL_HTTP01);
	for (i = 0; i < 20; i++)
		TH_CHECK(t,
		    va_validate_async(v.va, &v.req, count_done, &c, &p) == 0);
	/* and some still waiting for DNS (the resolver never answers) */
	request(&v.req, IDENT_DNS, "pending.silent.test", CHAL_DNS01);
	for (i = 0; i < 5; i++)
		TH_CHECK(t,
		    va_validate_async(v.va, &v.req, count_done, &c, &p) == 0);
	request(&v.req, IDENT_DNS, "pending.silent.test", CHAL_HTTP01);
	for (i = 0; i < 5; i++)
		TH_CHECK(t,
		    va_validate_async(v.va, &v.req, count_done, &c, &p) == 0);
	usleep(200000);
	TH_CHECK(t, va_inflight(v.va) == 30);
	va_free(v.va);
	TH_CHECK(t, c.done == 30);
	TH_CHECK(t, c.unavailable == 30);
	counter_clear(&c);
	va_config_clear(&v.cfg);
}

TH_TEST(test_bad_requests)
{
	struct vt v;

	if (vt_up(t, &v, P_HTTP, 2000, NULL) != 0)
		return;
	request(&v.req, IDENT_IP, "127.0.0.1", CHAL_DNS01);
	TH_CHECK(t, va_validate(v.va, &v.req, &v.res) == -1);
	TH_CHECK(t, v.res.prob && v.res.prob->type == PROB_MALFORMED);
	va_result_clear(&v.res);
	request(&v.req, IDENT_IP, "300.1.1.1", CHAL_HTTP01);
	TH_CHECK(t, va_validate(v.va, &v.req, &v.res) == -1);
	va_result_clear(&v.res);
	request(&v.req, IDENT_DNS, "", CHAL_HTTP01);
	TH_CHECK(t, va_validate(v.va, &v.req, &v.res) == -1);
	va_result_clear(&v.res);
	request(&v.req, IDENT_DNS, "UPPER.test", CHAL_HTTP01);
	TH_CHECK(t, va_validate(v.va, &v.req, &v.res) == -1);
	TH_CHECK(
	    t, v.res.prob && strstr(v.res.prob->detail, "normalised") != NULL);
	va_result_clear(&v.res);
	request(&v.req, IDENT_DNS, "a..test", CHAL_DNS01);
	TH_CHECK(t, va_validate(v.va, &v.req, &v.res) == -1);
	va_result_clear(&v.res);
	vt_down(&v);
}

/* ---------------------------------------------------------------- bench */

static long
rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "VmRSS:", 6) == 0)
			kb = strtol(line + 6, NULL, 10);
	fclose(f);
	return kb;
}

static int
bench(int argc, char **argv)
{
	int levels[8] = {1, 64, 512};
	size_t nlevels = 3;
	struct va_config cfg;
	struct va_request req;
	struct problem *p = NULL;
	struct va *va;
	char err[256];
	size_t k;
	long base_rss;

	config(&cfg, P_HTTP, 10000);
	va = va_new(&cfg, NULL, err, sizeof(err));
	if (va == NULL) {
		fprintf(stderr, "va_new: %s\n", err);
		return 1;
	}
	if (argc > 0) {
		for (nlevels = 0; nlevels < (size_t)argc && nlevels < 8;
		     nlevels++)
			levels[nlevels] = atoi(argv[nlevels]);
	}
	base_rss = rss_kb();
	printf("bench-va: http-01 against a local C responder, IP identifier "
	       "(no DNS), 3 s per level\n");
	printf("bench-va: RSS before: %ld KiB\n", base_rss);
	for (k = 0; k < nlevels; k++) {
		struct counter c;
		int i, n = levels[k];
		int64_t t0;
		long peak = 0;
		double secs;

		counter_init(&c, va, n);
		t0 = time_mono_ms();
		c.stop_at = t0 + 3000;
		request(&req, IDENT_IP, "127.0.0.1", CHAL_HTTP01);
		for (i = 0; i < n; i++)
			if (va_validate_async(va, &req, count_done, &c, &p) !=
			    0)
				problem_free(p);
		pthread_mutex_lock(&c.mu);
		while (c.inflight_target > 0) {
			struct timespec ts;
			long r;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 100000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&c.cv, &c.mu, &ts);
			r = rss_kb();
			if (r > peak)
				peak = r;
		}
		pthread_mutex_unlock(&c.mu);
		secs = (double)(time_mono_ms() - t0) / 1000.0;
		printf("bench-va: in_flight=%d validations=%d valid=%d "
		       "rate=%.0f/s peak_rss=%ld KiB\n",
		    n, c.done, c.valid, c.done / secs, peak);
		fflush(stdout);
		counter_clear(&c);
	}
	va_free(va);
	va_config_clear(&cfg);
	return 0;
}

int
main(int argc, char **argv)
{
	struct th t = TH_INIT;
	struct responder *http, *silent;
	struct fakedns *dns;
	char *digest;
	uint8_t d[32];
	int rc;

	log_init("test_va_net", LOG_LEVEL_ERROR);
	/* the responders' loops are stopped from the main thread */
	evthread_use_pthreads();
	sha256((const uint8_t *)KA, strlen(KA), d);
	digest = b64url_encode(d, sizeof(d));
	http = responder_start(P_HTTP, 0);
	silent = responder_start(P_SILENT, 1);
	dns = dns_start(P_DNS, digest);
	free(digest);
	if (http == NULL || silent == NULL || dns == NULL) {
		responder_stop(http);
		responder_stop(silent);
		dns_stop(dns);
		printf("0 passed, 1 failed\n");
		return 1;
	}
	if (argc > 1 && strcmp(argv[1], "--bench") == 0) {
		rc = bench(argc - 2, argv + 2);
	} else {
		th_run_tests(&t);
		rc = th_done(&t);
	}
	responder_stop(http);
	responder_stop(silent);
	dns_stop(dns);
	return rc;
}
