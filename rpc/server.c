/*
 * server.c - RPC server: one libevent loop thread does accept/read/write,
 * a fixed pool of worker threads runs the handlers. Finished calls come
 * back to the loop through a mutex-protected list and event_active().
 * A connection that asks for it (rpc.direct, what Anvil's own clients do)
 * moves to a thread of its own that reads each frame, runs the handler and
 * writes the reply itself: no hand-off between threads on that path.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "rpc/rpc.h"
#include "rpc/rpc_int.h"

/* Calls in flight on one connection before it stops reading. */
#define SRV_MAX_INFLIGHT_PER_CONN 1024
/* Longest wait for in-flight calls and unsent replies when draining. */
#define SRV_DRAIN_MAX_MS 30000
/* Unsent reply bytes on one connection before it stops being read. */
#define SRV_MAX_OUTPUT (8u * 1024u * 1024u)
/* A connection must finish its TLS handshake within this time. */
#define SRV_HANDSHAKE_SECS 10
/* Direct connections (one thread each) at most; later ones stay on the
 * loop and the worker pool. */
#define SRV_MAX_DIRECT 512

struct srv_conn {
	struct rpc_server *s;
	struct rpc_xport *x;    /* NULL once closed */
	struct event *hs_timer; /* handshake deadline, until ready */
	char *peer;    /* "uid:N" or certificate name; NULL until known */
	char *user;    /* unix user name, may be NULL */
	char desc[80]; /* for logs */
	int inflight;
	int out_full; /* too many unsent replies: reading paused */
	int ready;
	struct srv_conn *prev, *next;
};

/* A connection served by a thread of its own (rpc.direct). */
struct srv_direct {
	struct rpc_server *s;
	struct rpc_sconn *k;
	char *peer;
	char *user;
	char desc[80];
};

struct srv_job {
	struct srv_conn *conn;
	json_t *frame; /* the request; owns what req borrows */
	struct rpc_parsed_req pr;
	const struct rpc_method *m;
	int64_t t0; /* monotonic ms at receipt */
	uint8_t *resp;
	size_t resplen;
	char result[40]; /* "ok" or problem type, for metrics */
	struct srv_job *next;
};

struct rpc_server {
	struct event_base *base;
	struct evconnlistener *lis;
	SSL_CTX *ssl_ctx;
	struct rpc_addr addr;
	ino_t sock_ino;
	size_t max_frame;
	json_t *allow;
	json_t *callers;
	struct rpc_method *methods;
	size_t nmethods;
	void *svc;
	struct metrics *metrics;
	debug_health_fn health;
	void *health_arg;

	pthread_t *threads;
	size_t nthreads;
	pthread_mutex_t lock; /* queue, done list, stop flag */
	pthread_cond_t cond;
	struct srv_job *q_head, *q_tail;       /* waiting for a worker */
	struct srv_job *done_head, *done_tail; /* answered, to be sent */
	int workers_stop;

	struct event *done_ev;
	struct event *stop_ev;
	struct event *sig_term, *sig_int;
	struct event *drain_ev;
	struct event *accept_ev; /* re-enables accepting after EMFILE */
	atomic_int draining;
	int64_t drain_start;
	atomic_long inflight; /* loop and direct threads */
	struct srv_conn *conns;

	/* Direct threads: counted under lock; the pipe becomes readable
	 * when they must stop. */
	int wake_pipe[2];
	size_t ndirect;
	pthread_cond_t direct_cond;
};

static int srv_health_handler(void *svc, const struct rpc_req *req,
    json_t **result, struct problem **prob);

/* ---------------------------------------------------------------- */
/* Authorization                                                      */
/* ---------------------------------------------------------------- */

/*
 * Whether arr lists peer, user, "*", or "self" while peer is a Unix peer
 * with this process's own uid (a process of the same user can read this
 * one's memory anyway, so no list could keep it out).
 */
static int
allow_list_has(const json_t *arr, const char *peer, const char *user)
{
	char self[32];
	size_t i;
	json_t *e;

	snprintf(self, sizeof(self), "uid:%u", (unsigned)geteuid());
	json_array_foreach(arr, i, e)
	{
		const char *v = json_string_value(e);

		if (v == NULL)
			continue;
		if (strcmp(v, "*") == 0)
			return 1;
		if (strcmp(v, "self") == 0 && peer != NULL &&
		    strcmp(peer, self) == 0)
			return 1;
		if (peer != NULL && strcmp(v, peer) == 0)
			return 1;
		if (user != NULL && strcmp(v, user) == 0)
			return 1;
	}
	return 0;
}

int
rpc_authorized(
    const json_t *allow, const char *method, const char *peer, const char *user)
{
	const char *key;
	json_t *v;
	size_t kl;

	const struct rpc_contract *hc = rpc_contract_get(RPC_HEALTH_CHECK);

	if (strcmp(method, hc->name) == 0)
		return 1;
	if (!json_is_object(allow))
		return 0;
	json_object_foreach((json_t *)allow, key, v)
	{
		kl = strlen(key);
		if (strcmp(key, method) != 0 &&
		    !(kl > 0 && key[kl - 1] == '*' &&
			strncmp(key, method, kl - 1) == 0))
			continue;
		if (json_is_array(v) && allow_list_has(v, peer, user))
			return 1;
	}
	return 0;
}

int
rpc_authorized_contract(const json_t *callers, const struct rpc_contract *m,
    const char *peer, const char *user)
{
	const char *key;
	json_t *v;

	if (m->id == RPC_HEALTH_CHECK)
		return 1;
	if (!json_is_object(callers))
		return 0;
	json_object_foreach((json_t *)callers, key, v)
	{
		if ((m->callers & rpc_caller_parse(key)) != 0 &&
		    json_is_array(v) && allow_list_has(v, peer, user))
			return 1;
	}
	return 0;
}

/* ---------------------------------------------------------------- */
/* Metrics                                                            */
/* ---------------------------------------------------------------- */

static void
srv_metrics_call(
    struct rpc_server *s, const char *method, const char *result, double secs)
{
	char m[300], labels[700];

	if (s->metrics == NULL)
		return;
	metrics_label_escape(method, m, sizeof(m));
	snprintf(
	    labels, sizeof(labels), "method=\"%s\",result=\"%s\"", m, result);
	metrics_counter_add(s->metrics, "anvil_rpc_server_calls_total",
	    "RPC calls handled by this server.", labels, 1);
	snprintf(labels, sizeof(labels), "method=\"%s\"", m);
	metrics_histogram_observe(s->metrics,
	    "anvil_rpc_server_call_duration_seconds",
	    "Time from receipt to reply of an RPC call.", labels, secs);
}

static void
srv_metrics_inflight(struct rpc_server *s)
{
	if (s->metrics == NULL)
		return;
	metrics_gauge_set(s->metrics, "anvil_rpc_server_in_flight",
	    "RPC calls received and not yet answered.", NULL,
	    (double)atomic_load(&s->inflight));
}

/* ---------------------------------------------------------------- */
/* Connections                                                        */
/* ---------------------------------------------------------------- */

static void
conn_free(struct srv_conn *c)
{
	struct rpc_server *s = c->s;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else if (s->conns == c)
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	rpc_xport_free(c->x);
	if (c->hs_timer != NULL)
		event_free(c->hs_timer);
	free(c->peer);
	free(c->user);
	free(c);
}

/* Closes the socket; the struct lives on while workers hold calls. */
static void
conn_close(struct srv_conn *c, const char *why)
{
	if (c->x != NULL) {
		log_msg(why != NULL ? LOG_LEVEL_INFO : LOG_LEVEL_DEBUG, NULL,
		    "rpc: closing connection %s: %s", c->desc,
		    why != NULL ? why : "peer closed");
		rpc_xport_free(c->x);
		c->x = NULL;
	}
	if (c->hs_timer != NULL)
		(void)event_del(c->hs_timer);
	if (c->inflight == 0)
		conn_free(c);
}

static void
conn_on_hs_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct srv_conn *c = arg;

	(void)fd;
	(void)what;
	if (!c->ready)
		conn_close(c, "no completed handshake in time");
}

static void
conn_send(struct srv_conn *c, const uint8_t *frame, size_t len)
{
	if (c->x == NULL)
		return;
	if (evbuffer_add(rpc_xport_output(c->x), frame, len) != 0) {
		log_error("rpc: out of memory queueing a reply to %s", c->desc);
		return;
	}
	rpc_xport_flush(c->x);
	/* A peer that sends without reading must not grow our memory. */
	if (!c->out_full &&
	    evbuffer_get_length(rpc_xport_output(c->x)) > SRV_MAX_OUTPUT) {
		c->out_full = 1;
		rpc_xport_pause(c->x, 1);
		rpc_xport_notify_drained(c->x);
	}
}

/* Resumes reading unless a limit still holds. */
static void
conn_maybe_resume(struct srv_conn *c)
{
	if (c->x != NULL && !c->out_full &&
	    c->inflight < SRV_MAX_INFLIGHT_PER_CONN)
		rpc_xport_pause(c->x, 0);
}

/* Sends an error reply from the loop thread (call never ran). */
static void
conn_reply_err(struct srv_conn *c, json_t *id, const char *method,
    struct problem *p, int64_t t0)
{
	json_t *resp;
	uint8_t *frame;
	size_t len = 0;

	resp = rpc_response_err(id, p);
	frame = rpc_frame_encode(resp, c->s->max_frame, &len);
	srv_metrics_call(c->s, method, prob_type_name(p->type),
	    (double)(time_mono_ms() - t0) / 1000.0);
	if (frame != NULL)
		conn_send(c, frame, len);
	free(frame);
	json_decref(resp);
	problem_free(p);
}

static const struct rpc_method *
srv_find_method(struct rpc_server *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->nmethods; i++)
		if (strcmp(s->methods[i].name, name) == 0)
			return &s->methods[i];
	return NULL;
}

/*
 * The checks every call passes before its handler, on whichever thread
 * read it: server draining, method known, caller allowed, deadline not
 * passed. Returns NULL and sets *m, or a new problem to answer with (the
 * call never runs). desc names the connection in logs.
 */
static struct problem *
srv_admit(struct rpc_server *s, const struct rpc_parsed_req *pr,
    const char *peer, const char *user, const char *desc,
    const struct rpc_method **m)
{
	const char *meth = pr->method;
	char err[256];

	*m = NULL;
	if (atomic_load(&s->draining))
		return problem_new(PROB_UNAVAILABLE, "server is shutting down");
	*m = srv_find_method(s, meth);
	if (*m == NULL) {
		log_info("rpc: unknown method \"%s\" from %s", meth, desc);
		return problem_new(
		    PROB_MALFORMED, "unknown method \"%s\"", meth);
	}
	/* A registry method: the caller classes it lists (rpc.callers);
	 * anything else (test servers): the "allow" patterns. */
	if ((*m)->contract != NULL
		? !rpc_authorized_contract(s->callers, (*m)->contract, peer, user)
		: !rpc_authorized(s->allow, meth, peer, user)) {
		log_msg(LOG_LEVEL_WARN, pr->request_id,
		    "rpc: denied %s to %s%s%s%s", meth, peer,
		    user ? " (" : "", user ? user : "", user ? ")" : "");
		*m = NULL;
		return problem_new(
		    PROB_UNAUTHORIZED, "%s may not call %s", peer, meth);
	}
	/* The registry's parameter spec: a malformed call never reaches a
	 * handler, and the error names the key. */
	if ((*m)->contract != NULL &&
	    rpc_contract_check_params(
		(*m)->contract, pr->params, err, sizeof(err)) != 0) {
		log_msg(LOG_LEVEL_INFO, pr->request_id,
		    "rpc: %s from %s: bad params: %s", meth, desc, err);
		*m = NULL;
		return problem_new(
		    PROB_MALFORMED, "%s params: %s", meth, err);
	}
	if (pr->deadline_ms != 0 && pr->deadline_ms <= time_now_ms()) {
		log_msg(LOG_LEVEL_INFO, pr->request_id,
		    "rpc: %s from %s arrived after its deadline", meth, desc);
		*m = NULL;
		return problem_new(PROB_UNAVAILABLE,
		    "deadline exceeded before %s started", meth);
	}
	return NULL;
}

static int conn_go_direct(struct srv_conn *c, json_t *id);

static void
srv_enqueue(struct rpc_server *s, struct srv_job *j)
{
	pthread_mutex_lock(&s->lock);
	RPC_FIFO_PUSH(s->q_head, s->q_tail, j);
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

/* Handles one decoded frame. Returns 0, or -1 if the connection closed. */
static int
conn_handle_frame(struct srv_conn *c, json_t *frame)
{
	struct rpc_server *s = c->s;
	struct srv_job *j;
	const struct rpc_method *m;
	struct problem *p;
	char err[256];
	const char *meth;
	int r;
	int64_t t0 = time_mono_ms();

	j = xcalloc(1, sizeof(*j));
	j->frame = frame;
	r = rpc_request_parse(frame, &j->pr, err, sizeof(err));
	if (r < 0) {
		log_info("rpc: bad request from %s: %s", c->desc, err);
		json_decref(frame);
		free(j);
		conn_close(c, "bad request");
		return -1;
	}
	meth = r == 0 ? j->pr.method : "(invalid)";
	if (r > 0) {
		log_info("rpc: malformed request from %s: %s", c->desc, err);
		conn_reply_err(c, j->pr.id, meth,
		    problem_new(PROB_MALFORMED, "%s", err), t0);
		goto done;
	}
	if (strcmp(meth, RPC_DIRECT_METHOD) == 0) {
		r = conn_go_direct(c, j->pr.id);
		json_decref(j->frame);
		free(j);
		return r;
	}
	p = srv_admit(s, &j->pr, c->peer, c->user, c->desc, &m);
	if (p != NULL) {
		conn_reply_err(c, j->pr.id,
		    m == NULL && srv_find_method(s, meth) == NULL ? "(unknown)"
								  : meth,
		    p, t0);
		goto done;
	}
	j->m = m;
	j->conn = c;
	j->t0 = t0;
	c->inflight++;
	atomic_fetch_add(&s->inflight, 1);
	srv_metrics_inflight(s);
	if (c->inflight >= SRV_MAX_INFLIGHT_PER_CONN && c->x != NULL)
		rpc_xport_pause(c->x, 1);
	srv_enqueue(s, j);
	return 0;
done:
	json_decref(j->frame);
	free(j);
	return 0;
}

/* Decodes the complete frames in the input buffer. -1 if closed. */
static int
conn_read_frames(struct srv_conn *c)
{
	struct evbuffer *in;
	uint8_t hdr[4];
	uint8_t *data;
	size_t n = 0, used = 0;
	json_t *frame = NULL;
	char err[256];

	while (c->x != NULL) {
		in = rpc_xport_input(c->x);
		if (evbuffer_get_length(in) < 4)
			return 0;
		if (evbuffer_copyout(in, hdr, 4) != 4)
			return 0;
		if (rpc_frame_header(hdr, c->s->max_frame, &n, err,
			sizeof(err)) != RPC_FRAME_OK) {
			log_info("rpc: bad frame from %s: %s", c->desc, err);
			conn_close(c, err);
			return -1;
		}
		if (evbuffer_get_length(in) < n + 4)
			return 0;
		data = evbuffer_pullup(in, (ev_ssize_t)(n + 4));
		if (data == NULL) {
			conn_close(c, "out of memory");
			return -1;
		}
		if (rpc_frame_decode(data, n + 4, c->s->max_frame, &used,
			&frame, err, sizeof(err)) != RPC_FRAME_OK) {
			log_info("rpc: bad frame from %s: %s", c->desc, err);
			conn_close(c, err);
			return -1;
		}
		evbuffer_drain(in, used);
		if (conn_handle_frame(c, frame) != 0)
			return -1;
		if (c->inflight >= SRV_MAX_INFLIGHT_PER_CONN || c->out_full)
			return 0;
	}
	return -1;
}

static int
conn_on_xport(struct rpc_xport *x, enum rpc_xport_event ev, void *arg)
{
	struct srv_conn *c = arg;
	char *name;

	switch (ev) {
	case RPC_XPORT_CONNECTED:
		if (rpc_xport_ssl(x) != NULL) {
			name = rpc_tls_peer_name(rpc_xport_ssl(x));
			if (name == NULL) {
				conn_close(c,
				    "client certificate has no "
				    "usable name");
				return 1;
			}
			free(c->peer);
			c->peer = name;
			snprintf(c->desc, sizeof(c->desc), "tls:%s", name);
		}
		c->ready = 1;
		if (c->hs_timer != NULL)
			(void)event_del(c->hs_timer);
		log_debug("rpc: connection from %s", c->desc);
		return 0;
	case RPC_XPORT_READ:
		if (!c->ready || c->out_full ||
		    c->inflight >= SRV_MAX_INFLIGHT_PER_CONN)
			return 0;
		return conn_read_frames(c) != 0 ? 1 : 0;
	case RPC_XPORT_DRAINED:
		c->out_full = 0;
		conn_maybe_resume(c);
		return 0;
	case RPC_XPORT_CLOSED:
	default:
		if (evbuffer_get_length(rpc_xport_input(x)) > 0)
			log_info("rpc: %s closed with %zu bytes of a partial "
				 "frame",
			    c->desc, evbuffer_get_length(rpc_xport_input(x)));
		if (!c->ready)
			log_info("rpc: connection from %s failed: %s", c->desc,
			    rpc_xport_error(x));
		conn_close(c,
		    strncmp(rpc_xport_error(x), "connection closed", 17) == 0
			? NULL
			: rpc_xport_error(x));
		return 1;
	}
}

static void
srv_on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct rpc_server *s = arg;
	struct srv_conn *c;
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	struct passwd pw, *pwp = NULL;
	char pwbuf[1024], host[64] = "?", serv[16] = "?";
	int one = 1;

	(void)l;
	if (s->draining) {
		close(fd);
		return;
	}
	if (evutil_make_socket_nonblocking(fd) != 0) {
		close(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->s = s;
	if (s->addr.kind == RPC_ADDR_UNIX) {
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) != 0) {
			log_warn("rpc: SO_PEERCRED: %s", strerror(errno));
			close(fd);
			free(c);
			return;
		}
		c->peer = xasprintf("uid:%u", (unsigned)cred.uid);
		if (getpwuid_r(cred.uid, &pw, pwbuf, sizeof(pwbuf), &pwp) ==
			0 &&
		    pwp != NULL)
			c->user = xstrdup(pw.pw_name);
		snprintf(c->desc, sizeof(c->desc), "unix:uid=%u,pid=%d",
		    (unsigned)cred.uid, (int)cred.pid);
	} else {
		(void)setsockopt(
		    fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		rpc_tcp_keepalive(fd);
		(void)getnameinfo(sa, (socklen_t)salen, host, sizeof(host),
		    serv, sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV);
		snprintf(c->desc, sizeof(c->desc), "tcp:%s:%s", host, serv);
	}
	if (s->ssl_ctx != NULL) {
		struct timeval tv = {SRV_HANDSHAKE_SECS, 0};

		c->hs_timer = evtimer_new(s->base, conn_on_hs_timeout, c);
		if (c->hs_timer != NULL)
			(void)evtimer_add(c->hs_timer, &tv);
	}
	c->x = rpc_xport_new(
	    s->base, fd, s->ssl_ctx, 1, NULL, 0, conn_on_xport, c);
	if (c->x == NULL) {
		if (c->hs_timer != NULL)
			event_free(c->hs_timer);
		log_error("rpc: cannot set up connection %s", c->desc);
		free(c->peer);
		free(c->user);
		free(c);
		return;
	}
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
}

/* accept() failed (e.g. out of file descriptors): pause, then retry. */
static void
srv_on_accept_error(struct evconnlistener *l, void *arg)
{
	struct rpc_server *s = arg;
	struct timeval tv = {0, 100 * 1000};
	int e = EVUTIL_SOCKET_ERROR();

	log_warn("rpc: accept: %s; pausing new connections for 100 ms",
	    evutil_socket_error_to_string(e));
	if (evconnlistener_disable(l) == 0)
		(void)event_add(s->accept_ev, &tv);
}

static void
srv_on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
	struct rpc_server *s = arg;

	(void)fd;
	(void)what;
	if (!s->draining && s->lis != NULL)
		(void)evconnlistener_enable(s->lis);
}

/* ---------------------------------------------------------------- */
/* Workers                                                            */
/* ---------------------------------------------------------------- */

static int
srv_health(struct rpc_server *s, json_t **result, struct problem **prob)
{
	char msg[256] = "";

	if (s->health != NULL &&
	    s->health(s->health_arg, msg, sizeof(msg)) != 0) {
		*prob = problem_new(PROB_UNAVAILABLE, "unhealthy: %s", msg);
		return -1;
	}
	*result = json_pack("{s:s}", "status", "ok");
	return 0;
}

/*
 * Runs one admitted call (m may be NULL when prob0 is set: then only the
 * error is encoded; prob0 is taken). Sets *respp and *resplenp to the encoded
 * reply frame (caller frees) and result to "ok" or the problem type.
 */
static void
srv_run_call(struct rpc_server *s, const struct rpc_parsed_req *pr,
    const struct rpc_method *m, const char *peer, struct problem *prob0,
    uint8_t **respp, size_t *resplenp, char result_name[40])
{
	struct rpc_req req;
	json_t *result = NULL, *resp = NULL, *empty = NULL;
	struct problem *prob = prob0;
	int rc;

	if (prob != NULL)
		goto reply;
	if (pr->deadline_ms != 0 && pr->deadline_ms <= time_now_ms()) {
		prob = problem_new(PROB_UNAVAILABLE,
		    "deadline exceeded before %s started", pr->method);
		goto reply;
	}
	if (pr->params == NULL)
		empty = json_object();
	req.method = pr->method;
	req.contract = m->contract;
	req.params = pr->params != NULL ? pr->params : empty;
	req.request_id = pr->request_id;
	req.peer = peer;
	req.deadline_ms = pr->deadline_ms;
	if (m->fn == srv_health_handler)
		rc = srv_health(s, &result, &prob);
	else
		rc = m->fn(s->svc, &req, &result, &prob);
	if (rc != 0 && prob == NULL) {
		log_bug("handler %s failed without a problem", pr->method);
		prob = problem_new(PROB_SERVER_INTERNAL, "internal error");
	}
	if (rc == 0 && prob != NULL) {
		problem_free(prob);
		prob = NULL;
	}
reply:
	if (prob != NULL) {
		resp = rpc_response_err(pr->id, prob);
		snprintf(result_name, 40, "%s", prob_type_name(prob->type));
	} else {
		resp = rpc_response_ok(pr->id, result);
		snprintf(result_name, 40, "ok");
	}
	*respp = rpc_frame_encode(resp, s->max_frame, resplenp);
	if (*respp == NULL) {
		log_error(
		    "rpc: reply to %s does not fit in a frame", pr->method);
		json_decref(resp);
		problem_free(prob);
		prob = problem_new(
		    PROB_SERVER_INTERNAL, "reply too large for a frame");
		resp = rpc_response_err(pr->id, prob);
		snprintf(result_name, 40, "serverInternal");
		*respp = rpc_frame_encode(resp, s->max_frame, resplenp);
	}
	json_decref(resp);
	json_decref(result);
	json_decref(empty);
	problem_free(prob);
}

static void
job_run(struct rpc_server *s, struct srv_job *j)
{
	srv_run_call(s, &j->pr, j->m, j->conn->peer, NULL, &j->resp,
	    &j->resplen, j->result);
}

static void *
worker_main(void *arg)
{
	struct rpc_server *s = arg;
	struct srv_job *j;

	for (;;) {
		pthread_mutex_lock(&s->lock);
		while (s->q_head == NULL && !s->workers_stop)
			pthread_cond_wait(&s->cond, &s->lock);
		RPC_FIFO_POP(s->q_head, s->q_tail, j);
		pthread_mutex_unlock(&s->lock);
		if (j == NULL)
			break;

		job_run(s, j);

		pthread_mutex_lock(&s->lock);
		RPC_FIFO_PUSH(s->done_head, s->done_tail, j);
		pthread_mutex_unlock(&s->lock);
		event_active(s->done_ev, EV_READ, 0);
	}
	return NULL;
}

/* Loop thread: sends finished replies. */
static void
srv_on_done(evutil_socket_t fd, short what, void *arg)
{
	struct rpc_server *s = arg;
	struct srv_job *list, *j;
	struct srv_conn *c;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&s->lock);
	list = s->done_head;
	s->done_head = s->done_tail = NULL;
	pthread_mutex_unlock(&s->lock);
	while ((j = list) != NULL) {
		list = j->next;
		c = j->conn;
		srv_metrics_call(s, j->pr.method, j->result,
		    (double)(time_mono_ms() - j->t0) / 1000.0);
		if (j->resp != NULL)
			conn_send(c, j->resp, j->resplen);
		c->inflight--;
		atomic_fetch_sub(&s->inflight, 1);
		if (c->x == NULL && c->inflight == 0)
			conn_free(c);
		else if (c->inflight == SRV_MAX_INFLIGHT_PER_CONN - 1)
			conn_maybe_resume(c);
		free(j->resp);
		json_decref(j->frame);
		free(j);
	}
	srv_metrics_inflight(s);
}

/* ---------------------------------------------------------------- */
/* Direct connections                                                 */
/* ---------------------------------------------------------------- */

static void
direct_free(struct srv_direct *d)
{
	struct rpc_server *s = d->s;

	rpc_sconn_free(d->k);
	free(d->peer);
	free(d->user);
	free(d);
	pthread_mutex_lock(&s->lock);
	s->ndirect--;
	pthread_cond_broadcast(&s->direct_cond);
	pthread_mutex_unlock(&s->lock);
}

/*
 * One frame on a direct connection: the same checks as on the loop, then
 * the handler and the reply, all on this thread. -1 when the connection
 * must close.
 */
static int
direct_call(struct srv_direct *d, json_t *frame)
{
	struct rpc_server *s = d->s;
	struct rpc_parsed_req pr;
	const struct rpc_method *m = NULL;
	struct problem *p = NULL;
	uint8_t *resp = NULL;
	size_t resplen = 0;
	char err[256], result[40];
	const char *meth;
	int r;
	int64_t t0 = time_mono_ms();

	/* Counted from receipt, so that a drain starting now waits for it. */
	atomic_fetch_add(&s->inflight, 1);
	srv_metrics_inflight(s);
	r = rpc_request_parse(frame, &pr, err, sizeof(err));
	if (r < 0) {
		log_info("rpc: bad request from %s: %s", d->desc, err);
		log_info("rpc: closing connection %s: bad request", d->desc);
		atomic_fetch_sub(&s->inflight, 1);
		return -1;
	}
	meth = r == 0 ? pr.method : "(invalid)";
	if (r > 0) {
		log_info("rpc: malformed request from %s: %s", d->desc, err);
		p = problem_new(PROB_MALFORMED, "%s", err);
	} else if (strcmp(meth, RPC_DIRECT_METHOD) == 0) {
		p = problem_new(PROB_MALFORMED, "already a direct connection");
	} else {
		p = srv_admit(s, &pr, d->peer, d->user, d->desc, &m);
		if (p != NULL && m == NULL && srv_find_method(s, meth) == NULL)
			meth = "(unknown)";
	}
	srv_run_call(s, &pr, m, d->peer, p, &resp, &resplen, result);
	r = 0;
	/* Counted before the reply leaves: a caller that reads /metrics
	 * after its reply sees its call. */
	srv_metrics_call(
	    s, meth, result, (double)(time_mono_ms() - t0) / 1000.0);
	if (resp != NULL &&
	    rpc_sconn_write(d->k, resp, resplen, 0, s->wake_pipe[0], err,
		sizeof(err)) != 0) {
		log_info("rpc: closing connection %s: %s", d->desc, err);
		r = -1;
	}
	atomic_fetch_sub(&s->inflight, 1);
	srv_metrics_inflight(s);
	free(resp);
	return r;
}

static void *
direct_main(void *arg)
{
	struct srv_direct *d = arg;
	struct rpc_server *s = d->s;
	json_t *frame = NULL;
	char err[256];
	int r;

	for (;;) {
		r = rpc_sconn_read_frame(d->k, s->max_frame, 0,
		    s->wake_pipe[0], &frame, err, sizeof(err));
		if (r == SCONN_EOF || r == SCONN_WOKEN)
			break;
		if (r == SCONN_BAD) {
			log_info("rpc: bad frame from %s: %s", d->desc, err);
			break;
		}
		if (r != 0) {
			log_info("rpc: closing connection %s: %s", d->desc, err);
			break;
		}
		r = direct_call(d, frame);
		json_decref(frame);
		frame = NULL;
		if (r != 0)
			break;
	}
	log_debug("rpc: direct connection %s closed", d->desc);
	direct_free(d);
	return NULL;
}

/*
 * rpc.direct on the loop: when the connection is idle, hand its socket to
 * a new thread that answers the request and then serves the connection
 * alone. Otherwise (calls in flight, unsent output, draining, too many
 * direct threads) answer {"direct": false} and keep it on the loop; the
 * peer may go on using it either way. -1 when the connection left the loop.
 */
static int
conn_go_direct(struct srv_conn *c, json_t *id)
{
	struct rpc_server *s = c->s;
	struct srv_direct *d;
	struct evbuffer *in;
	json_t *resp, *res;
	uint8_t *frame, *pending = NULL;
	size_t len = 0, npend;
	pthread_attr_t attr;
	pthread_t th;
	SSL *ssl = NULL;
	int fd = -1, ok = 0;
	char err[256];

	pthread_mutex_lock(&s->lock);
	if (c->inflight == 0 && !atomic_load(&s->draining) &&
	    evbuffer_get_length(rpc_xport_output(c->x)) == 0 &&
	    s->ndirect < SRV_MAX_DIRECT) {
		s->ndirect++;
		ok = 1;
	}
	pthread_mutex_unlock(&s->lock);
	res = json_pack("{s:b}", "direct", ok);
	resp = rpc_response_ok(id, res);
	json_decref(res);
	frame = rpc_frame_encode(resp, s->max_frame, &len);
	json_decref(resp);
	if (!ok) {
		if (frame != NULL)
			conn_send(c, frame, len);
		free(frame);
		return 0;
	}
	in = rpc_xport_input(c->x);
	npend = evbuffer_get_length(in);
	if (npend > 0) {
		pending = xmalloc(npend);
		if (evbuffer_copyout(in, pending, npend) != (ev_ssize_t)npend)
			npend = 0;
	}
	d = xcalloc(1, sizeof(*d));
	d->s = s;
	rpc_xport_detach(c->x, &fd, &ssl);
	c->x = NULL;
	d->k = rpc_sconn_wrap(fd, ssl, pending, npend);
	free(pending);
	d->peer = xstrdup(c->peer != NULL ? c->peer : "?");
	d->user = c->user != NULL ? xstrdup(c->user) : NULL;
	snprintf(d->desc, sizeof(d->desc), "%s", c->desc);
	if (c->hs_timer != NULL)
		(void)event_del(c->hs_timer);
	conn_free(c);
	if (frame == NULL || rpc_sconn_write(d->k, frame, len, 0,
				 s->wake_pipe[0], err, sizeof(err)) != 0) {
		free(frame);
		direct_free(d);
		return -1;
	}
	free(frame);
	(void)pthread_attr_init(&attr);
	(void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&th, &attr, direct_main, d) != 0) {
		log_error("rpc: cannot start a thread for %s", d->desc);
		direct_free(d);
	}
	(void)pthread_attr_destroy(&attr);
	return -1;
}

/* ---------------------------------------------------------------- */
/* Drain and stop                                                     */
/* ---------------------------------------------------------------- */

static int
srv_output_pending(struct rpc_server *s)
{
	struct srv_conn *c;

	for (c = s->conns; c != NULL; c = c->next)
		if (c->x != NULL &&
		    evbuffer_get_length(rpc_xport_output(c->x)) > 0)
			return 1;
	return 0;
}

static void
srv_on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
	struct rpc_server *s = arg;

	(void)fd;
	(void)what;
	if ((atomic_load(&s->inflight) == 0 && !srv_output_pending(s)) ||
	    time_mono_ms() - s->drain_start > SRV_DRAIN_MAX_MS) {
		if (atomic_load(&s->inflight) != 0)
			log_warn("rpc: drain timed out with %ld calls in "
				 "flight",
			    (long)atomic_load(&s->inflight));
		(void)event_del(s->drain_ev);
		event_base_loopexit(s->base, NULL);
	}
}

static void
srv_begin_drain(struct rpc_server *s, const char *why)
{
	struct timeval tv = {0, 10 * 1000};

	if (atomic_load(&s->draining))
		return;
	log_info("rpc: %s: draining %ld calls in flight", why,
	    (long)atomic_load(&s->inflight));
	atomic_store(&s->draining, 1);
	s->drain_start = time_mono_ms();
	if (s->lis != NULL)
		evconnlistener_disable(s->lis);
	(void)event_add(s->drain_ev, &tv);
}

static void
srv_on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	srv_begin_drain(arg, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void
srv_on_stop(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	srv_begin_drain(arg, "stop requested");
}

/* ---------------------------------------------------------------- */
/* Listening                                                          */
/* ---------------------------------------------------------------- */

static int
srv_listen_unix(
    struct rpc_server *s, const char *mode_str, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	struct stat st;
	int fd = -1, probe = -1;
	mode_t mode = (mode_t)strtol(mode_str, NULL, 8);

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", s->addr.path);
	if (lstat(s->addr.path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s exists and is not a socket",
			    s->addr.path);
			goto fail;
		}
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 &&
		    connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
			snprintf(err, errlen,
			    "%s: another server is "
			    "listening there",
			    s->addr.path);
			goto fail;
		}
		if (unlink(s->addr.path) != 0) {
			snprintf(err, errlen, "unlink stale %s: %s",
			    s->addr.path, strerror(errno));
			goto fail;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		goto fail;
	}
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		snprintf(
		    err, errlen, "bind %s: %s", s->addr.path, strerror(errno));
		goto fail;
	}
	if (chmod(s->addr.path, mode) != 0 || stat(s->addr.path, &st) != 0) {
		snprintf(
		    err, errlen, "chmod %s: %s", s->addr.path, strerror(errno));
		(void)unlink(s->addr.path);
		goto fail;
	}
	s->sock_ino = st.st_ino;
	if (listen(fd, 512) != 0) {
		snprintf(err, errlen, "listen %s: %s", s->addr.path,
		    strerror(errno));
		(void)unlink(s->addr.path);
		goto fail;
	}
	if (probe >= 0)
		close(probe);
	return fd;
fail:
	if (probe >= 0)
		close(probe);
	if (fd >= 0)
		close(fd);
	return -1;
}

static int
srv_listen_tcp(struct rpc_server *s, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL, *ai;
	int fd = -1, one = 1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	rc = getaddrinfo(
	    s->addr.host[0] ? s->addr.host : NULL, s->addr.port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "%s: %s", s->addr.host, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family,
		    ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    ai->ai_protocol);
		if (fd < 0)
			continue;
		(void)setsockopt(
		    fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, 512) == 0)
			break;
		snprintf(err, errlen, "bind %s:%s: %s", s->addr.host,
		    s->addr.port, strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* The service's methods (copied; each with its contract) and
 * health.check into s. 0, or -1 with err. */
static int
srv_set_methods(struct rpc_server *s, const struct rpc_method *methods,
    size_t nmethods, char *err, size_t errlen)
{
	size_t i;

	s->methods = xcalloc(nmethods + 1, sizeof(*s->methods));
	for (i = 0; i < nmethods; i++) {
		if (methods[i].name == NULL || methods[i].fn == NULL) {
			snprintf(err, errlen,
			    "method %zu has no name or "
			    "handler",
			    i);
			return -1;
		}
		s->methods[i] = methods[i];
		if (s->methods[i].contract == NULL)
			s->methods[i].contract =
			    rpc_contract_find(methods[i].name);
	}
	s->methods[nmethods].contract = rpc_contract_get(RPC_HEALTH_CHECK);
	s->methods[nmethods].name = s->methods[nmethods].contract->name;
	s->methods[nmethods].fn = srv_health_handler;
	s->nmethods = nmethods + 1;
	return 0;
}

/* Binds s's listening socket (Unix or TCP) on s->base. */
static int
srv_open_listener(struct rpc_server *s, const struct rpc_server_config *cfg,
    char *err, size_t errlen)
{
	int fd;

	if (s->addr.kind == RPC_ADDR_UNIX)
		fd = srv_listen_unix(s,
		    cfg->socket_mode != NULL ? cfg->socket_mode : "0660", err,
		    errlen);
	else
		fd = srv_listen_tcp(s, err, errlen);
	if (fd < 0)
		return -1;
	s->lis = evconnlistener_new(s->base, srv_on_accept, s,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
	if (s->lis == NULL) {
		close(fd);
		snprintf(err, errlen, "evconnlistener_new failed");
		return -1;
	}
	evconnlistener_set_error_cb(s->lis, srv_on_accept_error);
	return 0;
}

/* The loop's own events: accept pause, done, stop, drain, signals. */
static int
srv_new_events(struct rpc_server *s, char *err, size_t errlen)
{
	s->accept_ev = evtimer_new(s->base, srv_on_accept_resume, s);
	s->done_ev = event_new(s->base, -1, 0, srv_on_done, s);
	s->stop_ev = event_new(s->base, -1, 0, srv_on_stop, s);
	s->drain_ev = event_new(s->base, -1, EV_PERSIST, srv_on_drain_tick, s);
	s->sig_term = evsignal_new(s->base, SIGTERM, srv_on_signal, s);
	s->sig_int = evsignal_new(s->base, SIGINT, srv_on_signal, s);
	if (s->done_ev == NULL || s->stop_ev == NULL || s->drain_ev == NULL ||
	    s->accept_ev == NULL || s->sig_term == NULL || s->sig_int == NULL) {
		snprintf(err, errlen, "event_new failed");
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- */
/* Public API                                                         */
/* ---------------------------------------------------------------- */

struct rpc_server *
rpc_server_new(const struct rpc_server_config *cfg,
    const struct rpc_method *methods, size_t nmethods, void *svc,
    struct metrics *metrics, debug_health_fn health, void *health_arg,
    char *err, size_t errlen)
{
	struct rpc_server *s = NULL;
	size_t i;

	if (rpc_threads_init() != 0) {
		snprintf(err, errlen, "libevent threading unavailable");
		return NULL;
	}
	rpc_ignore_sigpipe();
	s = xcalloc(1, sizeof(*s));
	if (pthread_mutex_init(&s->lock, NULL) != 0 ||
	    pthread_cond_init(&s->cond, NULL) != 0 ||
	    pthread_cond_init(&s->direct_cond, NULL) != 0) {
		snprintf(err, errlen, "cannot create a lock");
		free(s);
		return NULL;
	}
	atomic_init(&s->draining, 0);
	atomic_init(&s->inflight, 0);
	s->wake_pipe[0] = s->wake_pipe[1] = -1;
	if (pipe2(s->wake_pipe, O_CLOEXEC) != 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		goto fail;
	}
	s->svc = svc;
	s->metrics = metrics;
	s->health = health;
	s->health_arg = health_arg;
	s->max_frame =
	    cfg->max_frame > 0 ? (size_t)cfg->max_frame : RPC_DEFAULT_MAX_FRAME;
	if (cfg->allow != NULL)
		s->allow = json_deep_copy(cfg->allow);
	if (cfg->callers != NULL)
		s->callers = json_deep_copy(cfg->callers);
	if (srv_set_methods(s, methods, nmethods, err, errlen) != 0)
		goto fail;
	if (rpc_addr_parse(cfg->listen, &s->addr, err, errlen) != 0)
		goto fail;
	if (s->addr.kind == RPC_ADDR_TCP) {
		s->ssl_ctx = rpc_tls_server_ctx(
		    cfg->tls_cert, cfg->tls_key, cfg->tls_ca, err, errlen);
		if (s->ssl_ctx == NULL)
			goto fail;
	}
	s->base = event_base_new();
	if (s->base == NULL) {
		snprintf(err, errlen, "event_base_new failed");
		goto fail;
	}
	if (srv_open_listener(s, cfg, err, errlen) != 0 ||
	    srv_new_events(s, err, errlen) != 0)
		goto fail;
	s->nthreads = (size_t)(cfg->workers > 0 ? cfg->workers : 8);
	s->threads = xcalloc(s->nthreads, sizeof(*s->threads));
	for (i = 0; i < s->nthreads; i++) {
		if (pthread_create(&s->threads[i], NULL, worker_main, s) != 0) {
			snprintf(err, errlen, "pthread_create failed");
			s->nthreads = i;
			goto fail;
		}
	}
	return s;
fail:
	rpc_server_free(s);
	return NULL;
}

int
rpc_server_run(struct rpc_server *s)
{
	(void)event_add(s->sig_term, NULL);
	(void)event_add(s->sig_int, NULL);
	if (s->addr.kind == RPC_ADDR_UNIX)
		log_info("rpc: listening on unix:%s", s->addr.path);
	else
		log_info("rpc: listening on tcp:%s:%s (mutual TLS)",
		    s->addr.host, s->addr.port);
	(void)event_base_dispatch(s->base);
	(void)event_del(s->sig_term);
	(void)event_del(s->sig_int);
	if (s->lis != NULL) {
		evconnlistener_free(s->lis);
		s->lis = NULL;
	}
	log_info("rpc: server stopped");
	return 0;
}

void
rpc_server_stop(struct rpc_server *s)
{
	if (s != NULL && s->stop_ev != NULL)
		event_active(s->stop_ev, EV_READ, 0);
}

void
rpc_server_free(struct rpc_server *s)
{
	struct srv_job *j;
	struct stat st;
	size_t i;

	if (s == NULL)
		return;
	/* Direct threads: wake them (the pipe stays readable) and wait. */
	if (s->wake_pipe[1] >= 0)
		(void)write(s->wake_pipe[1], "x", 1);
	pthread_mutex_lock(&s->lock);
	while (s->ndirect > 0)
		pthread_cond_wait(&s->direct_cond, &s->lock);
	s->workers_stop = 1;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	for (i = 0; i < s->nthreads; i++)
		pthread_join(s->threads[i], NULL);
	free(s->threads);
	/* Jobs that finished after the loop stopped: drop them. */
	while ((j = s->done_head) != NULL) {
		s->done_head = j->next;
		j->conn->inflight--;
		free(j->resp);
		json_decref(j->frame);
		free(j);
	}
	while (s->conns != NULL) {
		s->conns->inflight = 0;
		conn_free(s->conns);
	}
	if (s->lis != NULL)
		evconnlistener_free(s->lis);
	if (s->addr.kind == RPC_ADDR_UNIX && s->addr.path != NULL &&
	    s->sock_ino != 0 && stat(s->addr.path, &st) == 0 &&
	    st.st_ino == s->sock_ino)
		(void)unlink(s->addr.path);
	{
		struct event *evs[] = {s->accept_ev, s->done_ev, s->stop_ev,
		    s->drain_ev, s->sig_term, s->sig_int};

		rpc_events_free(evs, sizeof(evs) / sizeof(evs[0]));
	}
	if (s->base != NULL)
		event_base_free(s->base);
	SSL_CTX_free(s->ssl_ctx);
	rpc_addr_clear(&s->addr);
	json_decref(s->allow);
	json_decref(s->callers);
	free(s->methods);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	pthread_cond_destroy(&s->direct_cond);
	if (s->wake_pipe[0] >= 0)
		close(s->wake_pipe[0]);
	if (s->wake_pipe[1] >= 0)
		close(s->wake_pipe[1]);
	free(s);
}

static int
srv_health_handler(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	/* Never called: job_run recognises it and calls srv_health. */
	(void)svc;
	(void)req;
	(void)result;
	*prob = problem_new(PROB_SERVER_INTERNAL, "health not wired");
	return -1;
}
