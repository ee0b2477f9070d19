/*
 * client.c - RPC client.
 *
 * rpc_call (the hot path): the calling thread checks a connection out of
 * a pool, writes its frame and reads the reply itself, then puts the
 * connection back. Each pooled connection is a direct one on the server
 * (rpc.direct: a server thread of its own), so a round trip costs two
 * thread wake-ups, one on each side.
 *
 * rpc_call_async: one I/O thread per client (started on first use) runs a
 * libevent loop owning its own connections, each multiplexing many calls by
 * id. Callers hand calls over through a locked queue and get a callback on
 * their own event_base. Timeouts run as timers on the I/O loop, so every
 * call completes exactly once, on the I/O thread.
 *
 * Several targets ("targets" in the config): the client is a group of
 * single-target clients (eps) and only chooses among them; see
 * call_failover.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/util.h>

#include "rpc/rpc.h"
#include "rpc/rpc_int.h"

#define CLI_BUCKETS 256
#define CLI_BACKOFF_MIN_MS 20
#define CLI_BACKOFF_MAX_MS 1000

enum cli_state { CLI_DOWN, CLI_CONNECTING, CLI_UP, CLI__MAX };
enum call_where { CALL_NONE, CALL_WAITING, CALL_SENT, CALL__MAX };

struct cli_call {
	int64_t id;
	char *method;
	char *request_id;
	uint8_t *frame;
	size_t framelen;
	int timeout_ms;
	int64_t t0;
	struct event *timer;
	struct cli_conn *conn;
	enum call_where where;
	struct cli_call *next; /* submit queue, waiting list or bucket */
	/* outcome */
	json_t *result;
	struct problem *prob;
	/* blocking caller */
	int is_async;
	/* async caller */
	struct event_base *ubase;
	rpc_done_fn done_fn;
	void *arg;
};

struct cli_conn {
	struct rpc_client *c;
	struct rpc_xport *x;
	enum cli_state state;
	int64_t next_attempt; /* monotonic ms */
	int backoff_ms;
	char last_err[256];
	struct cli_call *waiting, *waiting_tail;
	struct cli_call *buckets[CLI_BUCKETS];
	size_t nsent;
};

struct rpc_client {
	char *name;
	struct rpc_addr addr;
	char *server_name;
	SSL_CTX *ssl_ctx;
	int timeout_ms;
	size_t max_frame;
	struct metrics *metrics;

	struct event_base *base;
	pthread_t thread;
	int thread_started;
	struct event *submit_ev;
	pthread_mutex_t lock; /* submit queue and stopping */
	struct cli_call *q_head, *q_tail;
	int stopping;
	atomic_llong next_id;

	struct cli_conn *conns;
	size_t nconns;
	size_t rr;

	/* rpc_call's pool of direct connections (pool_mu) */
	pthread_mutex_t pool_mu;
	pthread_cond_t pool_cv; /* a connection came back or closed */
	struct pool_conn *idle;
	size_t nopen, maxopen;
	int64_t next_attempt; /* monotonic ms; connects wait for it */
	int backoff_ms;
	char last_err[256];

	/* Failover group ("targets"): eps are single-target clients and
	 * this one has no connections of its own. */
	struct rpc_client **eps;
	size_t neps;
	atomic_size_t ep_next;
	/* Bound on one connect + handshake (0: the call's deadline). */
	int connect_timeout_ms;
	int connecting; /* connects in progress (pool_mu) */
};

/* How an attempt on one endpoint ended (call_failover). */
enum ep_outcome {
	EP_ANSWERED, /* a reply, or a local error: final */
	EP_NOT_SENT, /* no connection: nothing reached the server */
	EP_LOST,     /* sent, then the connection failed or timed out */
};

/* An idle or checked-out connection of rpc_call's pool. */
struct pool_conn {
	struct rpc_sconn *k;
	struct pool_conn *next;
};

static void cli_conn_down(struct cli_conn *k, const char *why);
static struct rpc_client *group_new(const struct rpc_client_config *cfg,
    const char *name, struct metrics *metrics, char *err, size_t errlen);

/* ---------------------------------------------------------------- */
/* Calls                                                              */
/* ---------------------------------------------------------------- */

static void
call_free(struct cli_call *call)
{
	if (call == NULL)
		return;
	if (call->timer != NULL)
		event_free(call->timer);
	free(call->method);
	free(call->request_id);
	free(call->frame);
	json_decref(call->result);
	problem_free(call->prob);
	free(call);
}

static void
cli_metrics(struct rpc_client *c, struct cli_call *call)
{
	char m[300], peer[200], labels[800];
	const char *res;

	if (c->metrics == NULL)
		return;
	res = call->prob != NULL ? prob_type_name(call->prob->type) : "ok";
	metrics_label_escape(call->method, m, sizeof(m));
	metrics_label_escape(c->name, peer, sizeof(peer));
	snprintf(labels, sizeof(labels),
	    "peer=\"%s\",method=\"%s\","
	    "result=\"%s\"",
	    peer, m, res);
	metrics_counter_add(c->metrics, "anvil_rpc_client_calls_total",
	    "RPC calls made by this process.", labels, 1);
	snprintf(labels, sizeof(labels), "peer=\"%s\",method=\"%s\"", peer, m);
	metrics_histogram_observe(c->metrics,
	    "anvil_rpc_client_call_duration_seconds",
	    "Time from sending an RPC call to its answer.", labels,
	    (double)(time_mono_ms() - call->t0) / 1000.0);
}

static void
call_deliver_async(evutil_socket_t fd, short what, void *arg)
{
	struct cli_call *call = arg;

	(void)fd;
	(void)what;
	call->done_fn(
	    call->arg, call->prob == NULL ? call->result : NULL, call->prob);
	call_free(call);
}

/* I/O thread: the call is finished (already unlinked from any list). */
static void
call_complete(struct rpc_client *c, struct cli_call *call)
{
	struct timeval tv = {0, 0};

	/* The timer belongs to the client's base: free it here, on the I/O
	 * thread, since an async callback may run after rpc_client_free. */
	if (call->timer != NULL) {
		event_free(call->timer);
		call->timer = NULL;
	}
	call->conn = NULL;
	call->where = CALL_NONE;
	if (call->prob == NULL && call->result == NULL)
		call->prob = problem_new(
		    PROB_SERVER_INTERNAL, "%s: empty outcome", c->name);
	cli_metrics(c, call);
	if (event_base_once(call->ubase, -1, EV_TIMEOUT, call_deliver_async,
		call, &tv) != 0) {
		log_bug("cannot schedule RPC callback for %s", call->method);
		call_free(call);
	}
}

static void
call_fail(struct rpc_client *c, struct cli_call *call, const char *fmt,
    const char *why)
{
	if (call->prob == NULL && call->result == NULL)
		call->prob = problem_new(
		    PROB_UNAVAILABLE, fmt, c->name, call->method, why);
	call_complete(c, call);
}

/* Unlinks call from its connection's lists. */
static void
call_unlink(struct cli_call *call)
{
	struct cli_conn *k = call->conn;
	struct cli_call **pp, *prev = NULL;

	if (k == NULL)
		return;
	if (call->where == CALL_WAITING) {
		for (pp = &k->waiting; *pp != NULL; pp = &(*pp)->next) {
			if (*pp == call) {
				*pp = call->next;
				if (k->waiting_tail == call)
					k->waiting_tail = prev;
				break;
			}
			prev = *pp;
		}
	} else if (call->where == CALL_SENT) {
		pp = &k->buckets[(uint64_t)call->id % CLI_BUCKETS];
		for (; *pp != NULL; pp = &(*pp)->next) {
			if (*pp == call) {
				*pp = call->next;
				k->nsent--;
				break;
			}
		}
	}
	call->next = NULL;
	call->where = CALL_NONE;
	call->conn = NULL;
}

static void
call_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct cli_call *call = arg;
	struct rpc_client *c;
	char why[64];

	(void)fd;
	(void)what;
	c = call->conn != NULL ? call->conn->c : NULL;
	call_unlink(call);
	if (c == NULL)
		return; /* cannot happen: a pending timer implies a conn */
	snprintf(why, sizeof(why), "timed out after %d ms", call->timeout_ms);
	call_fail(c, call, "%s: %s %s", why);
}

/* ---------------------------------------------------------------- */
/* Connections                                                        */
/* ---------------------------------------------------------------- */

static void
cli_send(struct cli_conn *k, struct cli_call *call)
{
	size_t b = (uint64_t)call->id % CLI_BUCKETS;

	call->where = CALL_SENT;
	call->conn = k;
	call->next = k->buckets[b];
	k->buckets[b] = call;
	k->nsent++;
	if (evbuffer_add(rpc_xport_output(k->x), call->frame, call->framelen) !=
	    0) {
		call_unlink(call);
		call_fail(k->c, call, "%s: %s %s", "out of memory");
		return;
	}
	free(call->frame);
	call->frame = NULL;
	rpc_xport_flush(k->x);
}

static struct cli_call *
cli_take_sent(struct cli_conn *k, int64_t id)
{
	struct cli_call **pp, *call;

	pp = &k->buckets[(uint64_t)id % CLI_BUCKETS];
	for (; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->id == id) {
			call = *pp;
			*pp = call->next;
			call->next = NULL;
			call->where = CALL_NONE;
			call->conn = NULL;
			k->nsent--;
			return call;
		}
	}
	return NULL;
}

/* Reads complete response frames. Returns 1 when the conn went down. */
static int
cli_read_frames(struct cli_conn *k)
{
	struct evbuffer *in;
	uint8_t hdr[4], *data;
	size_t n = 0, used = 0;
	json_t *frame = NULL, *result = NULL;
	struct problem *prob = NULL;
	struct cli_call *call;
	int64_t id = 0;
	char err[256];

	while (k->x != NULL) {
		in = rpc_xport_input(k->x);
		if (evbuffer_get_length(in) < 4 ||
		    evbuffer_copyout(in, hdr, 4) != 4)
			return 0;
		if (rpc_frame_header(hdr, k->c->max_frame, &n, err,
			sizeof(err)) != RPC_FRAME_OK)
			goto bad;
		if (evbuffer_get_length(in) < n + 4)
			return 0;
		data = evbuffer_pullup(in, (ev_ssize_t)(n + 4));
		if (data == NULL) {
			snprintf(err, sizeof(err), "out of memory");
			goto bad;
		}
		if (rpc_frame_decode(data, n + 4, k->c->max_frame, &used,
			&frame, err, sizeof(err)) != RPC_FRAME_OK)
			goto bad;
		evbuffer_drain(in, used);
		if (rpc_response_parse(
			frame, &id, &result, &prob, err, sizeof(err)) != 0) {
			json_decref(frame);
			goto bad;
		}
		call = cli_take_sent(k, id);
		if (call == NULL) {
			log_debug("rpc: %s: reply to unknown or expired call "
				  "%lld",
			    k->c->name, (long long)id);
			problem_free(prob);
		} else {
			call->prob = prob;
			if (prob == NULL)
				call->result = json_incref(result);
			call_complete(k->c, call);
		}
		prob = NULL;
		json_decref(frame);
		frame = NULL;
	}
	return 1;
bad:
	log_warn("rpc: %s: bad reply frame: %s", k->c->name, err);
	cli_conn_down(k, err);
	return 1;
}

static int
cli_on_xport(struct rpc_xport *x, enum rpc_xport_event ev, void *arg)
{
	struct cli_conn *k = arg;
	struct cli_call *call;

	(void)x;
	switch (ev) {
	case RPC_XPORT_CONNECTED:
		k->state = CLI_UP;
		k->backoff_ms = 0;
		k->last_err[0] = '\0';
		while (k->x != NULL) {
			RPC_FIFO_POP(k->waiting, k->waiting_tail, call);
			if (call == NULL)
				break;
			call->next = NULL;
			cli_send(k, call);
		}
		return k->x == NULL ? 1 : 0;
	case RPC_XPORT_READ:
		return cli_read_frames(k);
	case RPC_XPORT_DRAINED:
		return 0;
	case RPC_XPORT_CLOSED:
	default:
		cli_conn_down(k, rpc_xport_error(x));
		return 1;
	}
}

/* Closes the connection, fails its calls and schedules the reconnect. */
static void
cli_conn_down(struct cli_conn *k, const char *why)
{
	struct rpc_client *c = k->c;
	struct cli_call *call, *list = NULL;
	char reason[256];
	size_t b;
	int was_up = k->state == CLI_UP;

	snprintf(reason, sizeof(reason), "%s", why);
	snprintf(k->last_err, sizeof(k->last_err), "%s", reason);
	if (k->x != NULL) {
		rpc_xport_free(k->x);
		k->x = NULL;
	}
	k->state = CLI_DOWN;
	/* A connection that worked may retry at once; then back off. */
	if (was_up)
		k->backoff_ms = 0;
	else if (k->backoff_ms == 0)
		k->backoff_ms = CLI_BACKOFF_MIN_MS;
	else if (k->backoff_ms < CLI_BACKOFF_MAX_MS)
		k->backoff_ms *= 2;
	if (k->backoff_ms > CLI_BACKOFF_MAX_MS)
		k->backoff_ms = CLI_BACKOFF_MAX_MS;
	k->next_attempt = time_mono_ms() + k->backoff_ms;
	if (was_up || k->waiting != NULL || k->nsent > 0)
		log_info("rpc: %s: connection lost (%s), %zu calls failed",
		    c->name, reason, k->nsent + (k->waiting ? 1 : 0));
	while ((call = k->waiting) != NULL) {
		k->waiting = call->next;
		call->next = list;
		list = call;
	}
	k->waiting_tail = NULL;
	for (b = 0; b < CLI_BUCKETS; b++) {
		while ((call = k->buckets[b]) != NULL) {
			k->buckets[b] = call->next;
			call->next = list;
			list = call;
		}
	}
	k->nsent = 0;
	while ((call = list) != NULL) {
		list = call->next;
		call->next = NULL;
		call->where = CALL_NONE;
		call->conn = NULL;
		call_fail(c, call, "%s unavailable: %s: %s", reason);
	}
}

static int
cli_connect(struct cli_conn *k)
{
	struct rpc_client *c = k->c;
	struct sockaddr_un sun;
	struct addrinfo *res = NULL, *ai;
	int fd = -1, inprogress = 0;

	if (c->addr.kind == RPC_ADDR_UNIX) {
		fd = rpc_unix_socket(c->addr.path, &sun);
		if (fd < 0)
			goto syserr;
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
			if (errno != EINPROGRESS)
				goto syserr;
			inprogress = 1;
		}
	} else {
		if (rpc_resolve(c->addr.host, c->addr.port, &res, k->last_err,
			sizeof(k->last_err)) != 0)
			return -1;
		for (ai = res; ai != NULL; ai = ai->ai_next) {
			fd = rpc_tcp_socket(ai);
			if (fd < 0)
				continue;
			if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
				break;
			if (errno == EINPROGRESS) {
				inprogress = 1;
				break;
			}
			close(fd);
			fd = -1;
		}
		freeaddrinfo(res);
		if (fd < 0)
			goto syserr;
	}
	k->x = rpc_xport_new(c->base, fd, c->ssl_ctx, 0, c->server_name,
	    inprogress, cli_on_xport, k);
	if (k->x == NULL) {
		snprintf(k->last_err, sizeof(k->last_err),
		    "transport setup "
		    "failed");
		return -1;
	}
	k->state = CLI_CONNECTING;
	return 0;
syserr:
	snprintf(k->last_err, sizeof(k->last_err), "connect %s: %s",
	    c->addr.kind == RPC_ADDR_UNIX ? c->addr.path : c->addr.host,
	    strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

/* I/O thread: puts a new call on a connection or fails it. */
static void
cli_dispatch(struct rpc_client *c, struct cli_call *call)
{
	struct cli_conn *k;
	int64_t now = time_mono_ms();
	size_t i;
	char why[300] = "no connection";
	struct timeval tv;

	tv.tv_sec = call->timeout_ms / 1000;
	tv.tv_usec = (call->timeout_ms % 1000) * 1000;
	call->timer = evtimer_new(c->base, call_on_timeout, call);
	if (call->timer == NULL) {
		call_fail(c, call, "%s: %s %s", "out of memory");
		return;
	}
	for (i = 0; i < c->nconns; i++) {
		k = &c->conns[(c->rr + i) % c->nconns];
		if (k->state == CLI_DOWN) {
			if (k->next_attempt > now) {
				snprintf(why, sizeof(why), "%s", k->last_err);
				continue;
			}
			if (cli_connect(k) != 0) {
				snprintf(why, sizeof(why), "%s", k->last_err);
				cli_conn_down(k, k->last_err);
				continue;
			}
		}
		c->rr = (c->rr + i + 1) % c->nconns;
		(void)evtimer_add(call->timer, &tv);
		call->conn = k;
		if (k->state == CLI_UP) {
			cli_send(k, call);
		} else {
			call->where = CALL_WAITING;
			RPC_FIFO_PUSH(k->waiting, k->waiting_tail, call);
		}
		return;
	}
	call_fail(c, call, "%s unavailable: %s: %s", why);
}

static void
cli_on_submit(evutil_socket_t fd, short what, void *arg)
{
	struct rpc_client *c = arg;
	struct cli_call *list, *call;
	int stopping;
	size_t i;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&c->lock);
	list = c->q_head;
	c->q_head = c->q_tail = NULL;
	stopping = c->stopping;
	pthread_mutex_unlock(&c->lock);
	while ((call = list) != NULL) {
		list = call->next;
		call->next = NULL;
		if (stopping)
			call_fail(c, call, "%s: %s %s", "client shut down");
		else
			cli_dispatch(c, call);
	}
	if (stopping) {
		for (i = 0; i < c->nconns; i++)
			cli_conn_down(&c->conns[i], "client shut down");
		event_base_loopbreak(c->base);
	}
}

static void *
cli_thread(void *arg)
{
	struct rpc_client *c = arg;

	/* Runs until rpc_client_free breaks the loop. */
	(void)event_base_loop(c->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

/* ---------------------------------------------------------------- */
/* Public API                                                         */
/* ---------------------------------------------------------------- */

/*
 * What a single-target client and a failover group share: a new client
 * with its locks (pool_cv waits on CLOCK_MONOTONIC), name, metrics
 * (borrowed) and call timeout. NULL with err when a lock cannot be made.
 */
static struct rpc_client *
cli_alloc(const struct rpc_client_config *cfg, const char *name,
    struct metrics *metrics, char *err, size_t errlen)
{
	struct rpc_client *c = xcalloc(1, sizeof(*c));
	pthread_condattr_t ca;
	int ok;

	if (pthread_condattr_init(&ca) != 0) {
		snprintf(err, errlen, "cannot create a lock");
		free(c);
		return NULL;
	}
	ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
	    pthread_mutex_init(&c->lock, NULL) == 0 &&
	    pthread_mutex_init(&c->pool_mu, NULL) == 0 &&
	    pthread_cond_init(&c->pool_cv, &ca) == 0;
	(void)pthread_condattr_destroy(&ca);
	if (!ok) {
		snprintf(err, errlen, "cannot create a lock");
		free(c);
		return NULL;
	}
	atomic_init(&c->next_id, 0);
	c->name = xstrdup(name != NULL ? name : "rpc");
	c->metrics = metrics;
	c->timeout_ms =
	    cfg->timeout_ms > 0 ? (int)cfg->timeout_ms : RPC_DEFAULT_TIMEOUT_MS;
	return c;
}

struct rpc_client *
rpc_client_new(const struct rpc_client_config *cfg, const char *name,
    struct metrics *metrics, char *err, size_t errlen)
{
	struct rpc_client *c;
	size_t i;

	if (rpc_threads_init() != 0) {
		snprintf(err, errlen, "libevent threading unavailable");
		return NULL;
	}
	rpc_ignore_sigpipe();
	if (cfg->targets != NULL && cfg->ntargets > 1)
		return group_new(cfg, name, metrics, err, errlen);
	if ((c = cli_alloc(cfg, name, metrics, err, errlen)) == NULL)
		return NULL;
	c->max_frame =
	    cfg->max_frame > 0 ? (size_t)cfg->max_frame : RPC_DEFAULT_MAX_FRAME;
	c->connect_timeout_ms = (int)cfg->connect_timeout_ms;
	if (rpc_addr_parse(cfg->target, &c->addr, err, errlen) != 0)
		goto fail;
	if (c->addr.kind == RPC_ADDR_TCP) {
		c->ssl_ctx = rpc_tls_client_ctx(
		    cfg->tls_cert, cfg->tls_key, cfg->tls_ca, err, errlen);
		if (c->ssl_ctx == NULL)
			goto fail;
		/* The server must present a certificate for this name:
		 * tls.server_name, else the client's name ("sa"). */
		c->server_name =
		    xstrdup(cfg->tls_server_name != NULL ? cfg->tls_server_name
							 : c->name);
	}
	c->nconns = (size_t)(cfg->connections > 0 ? cfg->connections : 4);
	c->maxopen = c->nconns;
	c->conns = xcalloc(c->nconns, sizeof(*c->conns));
	for (i = 0; i < c->nconns; i++)
		c->conns[i].c = c;
	c->base = event_base_new();
	if (c->base == NULL) {
		snprintf(err, errlen, "event_base_new failed");
		goto fail;
	}
	c->submit_ev = event_new(c->base, -1, 0, cli_on_submit, c);
	if (c->submit_ev == NULL) {
		snprintf(err, errlen, "event_new failed");
		goto fail;
	}
	return c;
fail:
	rpc_client_free(c);
	return NULL;
}

void
rpc_client_free(struct rpc_client *c)
{
	struct pool_conn *pc;
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->neps; i++)
		rpc_client_free(c->eps[i]);
	free(c->eps);
	while ((pc = c->idle) != NULL) {
		c->idle = pc->next;
		rpc_sconn_free(pc->k);
		free(pc);
	}
	if (c->thread_started) {
		pthread_mutex_lock(&c->lock);
		c->stopping = 1;
		pthread_mutex_unlock(&c->lock);
		event_active(c->submit_ev, EV_READ, 0);
		pthread_join(c->thread, NULL);
	}
	if (c->submit_ev != NULL)
		event_free(c->submit_ev);
	if (c->base != NULL)
		event_base_free(c->base);
	SSL_CTX_free(c->ssl_ctx);
	free(c->conns);
	free(c->server_name);
	rpc_addr_clear(&c->addr);
	free(c->name);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->pool_mu);
	pthread_cond_destroy(&c->pool_cv);
	free(c);
}

/*
 * A failover group over cfg->targets: one single-target client each, with
 * a connect timeout of cfg->connect_timeout (default 1 s) so that an
 * unreachable machine does not eat the whole deadline of a call.
 */
static struct rpc_client *
group_new(const struct rpc_client_config *cfg, const char *name,
    struct metrics *metrics, char *err, size_t errlen)
{
	struct rpc_client_config one;
	struct rpc_client *g;
	char tmp[256];
	size_t i;

	if ((g = cli_alloc(cfg, name, metrics, err, errlen)) == NULL)
		return NULL;
	atomic_init(&g->ep_next, 0);
	g->eps = xcalloc(cfg->ntargets, sizeof(*g->eps));
	for (i = 0; i < cfg->ntargets; i++) {
		one = *cfg;
		one.target = cfg->targets[i];
		one.targets = NULL;
		one.ntargets = 0;
		if (one.connect_timeout_ms <= 0)
			one.connect_timeout_ms = 1000;
		g->eps[i] = rpc_client_new(&one, name, metrics, tmp, sizeof(tmp));
		if (g->eps[i] == NULL) {
			snprintf(err, errlen, "targets[%zu]: %s", i, tmp);
			rpc_client_free(g);
			return NULL;
		}
		g->neps++;
	}
	return g;
}

/* Builds a call with its frame; NULL with *prob on failure. */
static struct cli_call *
call_new(struct rpc_client *c, const char *method, json_t *params,
    int timeout_ms, const char *request_id, struct problem **prob)
{
	struct cli_call *call;
	json_t *req;

	if (method == NULL || (params != NULL && !json_is_object(params))) {
		*prob = problem_new(
		    PROB_SERVER_INTERNAL, "rpc_call: bad method or params");
		return NULL;
	}
	call = xcalloc(1, sizeof(*call));
	call->id = (int64_t)atomic_fetch_add(&c->next_id, 1) + 1;
	call->method = xstrdup(method);
	call->request_id = request_id != NULL ? xstrdup(request_id) : NULL;
	call->timeout_ms = timeout_ms > 0 ? timeout_ms : c->timeout_ms;
	call->t0 = time_mono_ms();
	req = json_pack("{s:I,s:s,s:I}", "id", (json_int_t)call->id, "method",
	    method, "deadline_ms",
	    (json_int_t)(time_now_ms() + call->timeout_ms));
	if (req == NULL) {
		*prob = problem_new(
		    PROB_SERVER_INTERNAL, "rpc_call: cannot build request");
		call_free(call);
		return NULL;
	}
	if (request_id != NULL)
		json_object_set_new(req, "request_id", json_string(request_id));
	json_object_set_new(req, "params",
	    params != NULL ? json_incref(params) : json_object());
	call->frame = rpc_frame_encode(req, c->max_frame, &call->framelen);
	json_decref(req);
	if (call->frame == NULL) {
		*prob = problem_new(PROB_MALFORMED,
		    "%s: request for %s does "
		    "not fit in a frame",
		    c->name, method);
		call_free(call);
		return NULL;
	}
	return call;
}

/* Queues an async call for the I/O thread (started on first use). 0 or -1
 * (no thread: the call was not queued). */
static int
call_submit(struct rpc_client *c, struct cli_call *call)
{
	int first;

	pthread_mutex_lock(&c->lock);
	if (!c->thread_started) {
		if (pthread_create(&c->thread, NULL, cli_thread, c) != 0) {
			pthread_mutex_unlock(&c->lock);
			log_error("rpc: %s: cannot start the I/O thread",
			    c->name);
			return -1;
		}
		c->thread_started = 1;
	}
	first = c->q_head == NULL;
	if (c->q_tail != NULL)
		c->q_tail->next = call;
	else
		c->q_head = call;
	c->q_tail = call;
	pthread_mutex_unlock(&c->lock);
	if (first)
		event_active(c->submit_ev, EV_READ, 0);
	return 0;
}

/* ---------------------------------------------------------------- */
/* rpc_call: the pool of direct connections                           */
/* ---------------------------------------------------------------- */

/* Closes a checked-out connection (it failed or its call timed out). */
static void
pool_drop(struct rpc_client *c, struct pool_conn *pc)
{
	rpc_sconn_free(pc->k);
	free(pc);
	pthread_mutex_lock(&c->pool_mu);
	c->nopen--;
	pthread_cond_signal(&c->pool_cv);
	pthread_mutex_unlock(&c->pool_mu);
}

static void
pool_put(struct rpc_client *c, struct pool_conn *pc)
{
	pthread_mutex_lock(&c->pool_mu);
	pc->next = c->idle;
	c->idle = pc;
	pthread_cond_signal(&c->pool_cv);
	pthread_mutex_unlock(&c->pool_mu);
}

/*
 * An endpoint of a group lost a call that was sent (timeout, connection
 * broken): its idle connections may be as dead (a partitioned machine
 * answers nothing, so they do not look stale), so close them and keep new
 * calls away until the back-off has passed.
 */
static void
ep_suspect(struct rpc_client *c, const char *why)
{
	struct pool_conn *pc, *list;

	pthread_mutex_lock(&c->pool_mu);
	list = c->idle;
	c->idle = NULL;
	for (pc = list; pc != NULL; pc = pc->next)
		c->nopen--;
	c->backoff_ms = c->backoff_ms == 0 ? CLI_BACKOFF_MIN_MS
	    : c->backoff_ms * 2 > CLI_BACKOFF_MAX_MS
	    ? CLI_BACKOFF_MAX_MS
	    : c->backoff_ms * 2;
	c->next_attempt = time_mono_ms() + c->backoff_ms;
	snprintf(c->last_err, sizeof(c->last_err), "%s", why);
	pthread_cond_broadcast(&c->pool_cv);
	pthread_mutex_unlock(&c->pool_mu);
	while ((pc = list) != NULL) {
		list = pc->next;
		rpc_sconn_free(pc->k);
		free(pc);
	}
}

/*
 * A new connection, asked to become direct on the server. The answer does
 * not matter: a server that keeps it multiplexed serves it as well. NULL
 * with err.
 */
static struct rpc_sconn *
pool_connect(struct rpc_client *c, int64_t deadline, char *err, size_t errlen)
{
	static const char hello[] = "{\"id\":0,\"method\":\"" RPC_DIRECT_METHOD
				    "\"}";
	uint8_t hdr[4 + sizeof(hello)];
	struct rpc_sconn *k;
	json_t *frame = NULL;
	size_t n = sizeof(hello) - 1;
	int64_t cdl;
	int r;

	/* An unreachable host must not take the whole call's deadline when
	 * another target could answer: bound connect + handshake + hello. */
	cdl = time_mono_ms() + c->connect_timeout_ms;
	if (c->connect_timeout_ms > 0 && cdl < deadline)
		deadline = cdl;
	k = rpc_sconn_connect(
	    &c->addr, c->ssl_ctx, c->server_name, deadline, err, errlen);
	if (k == NULL)
		return NULL;
	if (c->connect_timeout_ms > 0 && c->addr.kind == RPC_ADDR_TCP) {
		/* An endpoint of a group: a request a cut-off machine never
		 * acknowledges breaks the connection after this, instead of
		 * hanging until the call's deadline while more calls queue on
		 * the connections to it (the others take over). */
		unsigned int uto = (unsigned int)c->connect_timeout_ms * 2;

		(void)setsockopt(rpc_sconn_fd(k), IPPROTO_TCP, TCP_USER_TIMEOUT,
		    &uto, sizeof(uto));
	}
	hdr[0] = (uint8_t)(n >> 24);
	hdr[1] = (uint8_t)(n >> 16);
	hdr[2] = (uint8_t)(n >> 8);
	hdr[3] = (uint8_t)n;
	memcpy(hdr + 4, hello, n);
	r = rpc_sconn_write(k, hdr, n + 4, deadline, -1, err, errlen);
	if (r == 0)
		r = rpc_sconn_read_frame(
		    k, c->max_frame, deadline, -1, &frame, err, errlen);
	json_decref(frame);
	if (r != 0) {
		if (r == SCONN_TIMEOUT)
			snprintf(err, errlen, "no answer to %s",
			    RPC_DIRECT_METHOD);
		rpc_sconn_free(k);
		return NULL;
	}
	return k;
}

/*
 * Checks a connection out for one call: an idle one that is still sound,
 * else a new one while fewer than `connections` are open (unless the last
 * connect failed less than the back-off ago: then fail at once), else waits
 * for one to come back, until wait_until (monotonic ms, 0 = the deadline).
 * NULL with *prob (timeout or unavailable).
 */
static struct pool_conn *
pool_get(struct rpc_client *c, const struct cli_call *call, int64_t deadline,
    int64_t wait_until, struct problem **prob)
{
	struct pool_conn *pc;
	struct rpc_sconn *k;
	struct timespec ts;
	char err[256];
	int64_t now;

	pthread_mutex_lock(&c->pool_mu);
	for (;;) {
		while ((pc = c->idle) != NULL) {
			c->idle = pc->next;
			pc->next = NULL;
			if (!rpc_sconn_stale(pc->k)) {
				pthread_mutex_unlock(&c->pool_mu);
				return pc;
			}
			/* The server closed it (restart, drain): not an
			 * error for this call, which has not been sent. */
			rpc_sconn_free(pc->k);
			free(pc);
			c->nopen--;
		}
		now = time_mono_ms();
		if (c->nopen < c->maxopen) {
			/* An endpoint of a group whose last connect failed is
			 * probed by one call at a time; the others go on to
			 * the next endpoint instead of all waiting for a
			 * machine that may not answer. */
			if (c->next_attempt > now ||
			    (c->connect_timeout_ms > 0 && c->backoff_ms > 0 &&
				c->connecting > 0)) {
				*prob = problem_new(PROB_UNAVAILABLE,
				    "%s unavailable: %s: %s", c->name,
				    call->method, c->last_err);
				pthread_mutex_unlock(&c->pool_mu);
				return NULL;
			}
			c->nopen++;
			c->connecting++;
			pthread_mutex_unlock(&c->pool_mu);
			k = pool_connect(c, deadline, err, sizeof(err));
			pthread_mutex_lock(&c->pool_mu);
			c->connecting--;
			if (k != NULL) {
				c->backoff_ms = 0;
				c->next_attempt = 0;
				pthread_mutex_unlock(&c->pool_mu);
				pc = xcalloc(1, sizeof(*pc));
				pc->k = k;
				return pc;
			}
			c->nopen--;
			pthread_cond_signal(&c->pool_cv);
			c->backoff_ms = c->backoff_ms == 0
			    ? CLI_BACKOFF_MIN_MS
			    : (c->backoff_ms * 2 > CLI_BACKOFF_MAX_MS
				      ? CLI_BACKOFF_MAX_MS
				      : c->backoff_ms * 2);
			c->next_attempt = time_mono_ms() + c->backoff_ms;
			snprintf(c->last_err, sizeof(c->last_err), "%s", err);
			pthread_mutex_unlock(&c->pool_mu);
			log_info("rpc: %s: cannot connect (%s), retrying in "
				 "%d ms at the earliest",
			    c->name, err, c->backoff_ms);
			*prob = problem_new(PROB_UNAVAILABLE,
			    "%s unavailable: %s: %s", c->name, call->method,
			    err);
			return NULL;
		}
		if (wait_until > 0 && wait_until < deadline)
			deadline = wait_until;
		if (now >= deadline) {
			pthread_mutex_unlock(&c->pool_mu);
			*prob = problem_new(PROB_UNAVAILABLE,
			    "%s: %s timed out after %d ms (waiting for a "
			    "connection)",
			    c->name, call->method, call->timeout_ms);
			return NULL;
		}
		ts.tv_sec = (time_t)(deadline / 1000);
		ts.tv_nsec = (long)(deadline % 1000) * 1000000L;
		(void)pthread_cond_timedwait(&c->pool_cv, &c->pool_mu, &ts);
	}
}

/* A call on one endpoint (a single-target client); *how says whether it
 * may have reached the server. Waits for a free connection until wait_until
 * (monotonic ms; 0 = the deadline). Same results as rpc_call. */
static int
call_endpoint(struct rpc_client *c, const char *method, json_t *params,
    int timeout_ms, const char *request_id, json_t **result,
    struct problem **prob, int64_t wait_until, enum ep_outcome *how)
{
	struct cli_call *call;
	struct pool_conn *pc;
	json_t *frame = NULL, *res = NULL;
	struct problem *p = NULL;
	char err[256];
	int64_t deadline, id = 0;
	int r, rc = -1;

	*result = NULL;
	*prob = NULL;
	*how = EP_ANSWERED;
	call = call_new(c, method, params, timeout_ms, request_id, prob);
	if (call == NULL)
		return -1;
	deadline = call->t0 + call->timeout_ms;
	pc = pool_get(c, call, deadline, wait_until, &call->prob);
	if (pc == NULL) {
		*how = EP_NOT_SENT;
		goto out;
	}
	r = rpc_sconn_write(
	    pc->k, call->frame, call->framelen, deadline, -1, err, sizeof(err));
	while (r == 0) {
		r = rpc_sconn_read_frame(
		    pc->k, c->max_frame, deadline, -1, &frame, err, sizeof(err));
		if (r != 0)
			break;
		if (rpc_response_parse(
			frame, &id, &res, &p, err, sizeof(err)) != 0) {
			log_warn("rpc: %s: bad reply frame: %s", c->name, err);
			r = SCONN_BAD;
			break;
		}
		if (id == call->id)
			break;
		/* Not ours: cannot happen with one call per connection. */
		log_debug("rpc: %s: reply to unknown call %lld", c->name,
		    (long long)id);
		problem_free(p);
		p = NULL;
		json_decref(frame);
		frame = NULL;
	}
	if (r != 0) {
		/* The reply may still come: the connection cannot be reused. */
		pool_drop(c, pc);
		*how = EP_LOST;
		if (c->connect_timeout_ms > 0)
			ep_suspect(c, r == SCONN_TIMEOUT ? "call timed out" : err);
		if (r == SCONN_TIMEOUT)
			call->prob = problem_new(PROB_UNAVAILABLE,
			    "%s: %s timed out after %d ms", c->name, method,
			    call->timeout_ms);
		else
			call->prob = problem_new(PROB_UNAVAILABLE,
			    "%s unavailable: %s: %s", c->name, method, err);
		goto out;
	}
	pool_put(c, pc);
	if (p != NULL)
		call->prob = p;
	else
		call->result = json_incref(res);
out:
	json_decref(frame);
	cli_metrics(c, call);
	if (call->prob != NULL) {
		*prob = call->prob;
		call->prob = NULL;
	} else {
		*result = call->result;
		call->result = NULL;
		rc = 0;
	}
	call_free(call);
	return rc;
}

/*
 * The group's rpc_call: starts at the next endpoint in turn and moves on
 * while the deadline lasts when an endpoint could not be reached, or, for
 * a read-only method of the registry, when the request was sent but lost
 * or not answered within its share of the deadline (what is left divided
 * by the endpoints not tried yet). A write that may have reached a server
 * is not repeated.
 */
static int
call_failover(struct rpc_client *g, const char *method, json_t *params,
    int timeout_ms, const char *request_id, json_t **result,
    struct problem **prob)
{
	const struct rpc_contract *ct = rpc_contract_find(method);
	int ro = ct != NULL && ct->access == RPC_RO;
	int64_t deadline, left, wait_until, attempt;
	enum ep_outcome how = EP_NOT_SENT;
	size_t start, i;
	int rc = -1;

	*result = NULL;
	*prob = NULL;
	deadline = time_mono_ms() + (timeout_ms > 0 ? timeout_ms : g->timeout_ms);
	start = atomic_fetch_add(&g->ep_next, 1);
	for (i = 0; i < g->neps; i++) {
		left = deadline - time_mono_ms();
		if (left <= 0)
			break;
		if (*prob != NULL) {
			problem_free(*prob);
			*prob = NULL;
		}
		/* All connections of an endpoint busy (or hung on a
		 * partitioned machine): wait a connect timeout, then try
		 * the next one; the last one gets the rest of the deadline. */
		wait_until = i + 1 < g->neps
		    ? time_mono_ms() + g->eps[(start + i) % g->neps]->connect_timeout_ms
		    : 0;
		/* A read may be repeated: an endpoint that does not answer
		 * (a machine cut off) gets its share of what is left, so
		 * the others still have time. A write waits for its answer. */
		attempt = ro ? left / (int64_t)(g->neps - i) : left;
		if (attempt < 1)
			attempt = 1;
		rc = call_endpoint(g->eps[(start + i) % g->neps], method,
		    params, (int)attempt, request_id, result, prob, wait_until,
		    &how);
		if (rc == 0 || how == EP_ANSWERED || (how == EP_LOST && !ro))
			return rc;
	}
	if (*prob == NULL)
		*prob = problem_new(PROB_UNAVAILABLE, "%s: %s timed out after %d ms",
		    g->name, method, timeout_ms > 0 ? timeout_ms : g->timeout_ms);
	return -1;
}

int
rpc_call(struct rpc_client *c, const char *method, json_t *params,
    int timeout_ms, const char *request_id, json_t **result,
    struct problem **prob)
{
	enum ep_outcome how;

	if (c->neps > 0)
		return call_failover(
		    c, method, params, timeout_ms, request_id, result, prob);
	return call_endpoint(
	    c, method, params, timeout_ms, request_id, result, prob, 0, &how);
}

int
rpc_call_async(struct rpc_client *c, struct event_base *base,
    const char *method, json_t *params, int timeout_ms, const char *request_id,
    rpc_done_fn done, void *arg)
{
	struct cli_call *call;
	struct problem *prob = NULL;

	if (base == NULL || done == NULL)
		return -1;
	/* A group hands the call to its endpoints in turn (no failover for
	 * asynchronous calls: the callback sees the endpoint's outcome). */
	if (c->neps > 0)
		return rpc_call_async(
		    c->eps[atomic_fetch_add(&c->ep_next, 1) % c->neps], base,
		    method, params, timeout_ms, request_id, done, arg);
	call = call_new(c, method, params, timeout_ms, request_id, &prob);
	if (call == NULL) {
		log_warn("rpc: %s", prob->detail != NULL ? prob->detail : "");
		problem_free(prob);
		return -1;
	}
	call->is_async = 1;
	call->ubase = base;
	call->done_fn = done;
	call->arg = arg;
	if (call_submit(c, call) != 0) {
		call_free(call);
		return -1;
	}
	return 0;
}
