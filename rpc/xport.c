/*
 * xport.c - one non-blocking stream socket on a libevent loop, plain or
 * TLS (OpenSSL directly on the fd), with evbuffers for input and output.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/err.h>

#include "rpc/rpc.h"
#include "rpc/rpc_int.h"

/* Bytes read per wakeup before giving other connections a turn. */
#define XPORT_READ_BUDGET (256 * 1024)
#define XPORT_CHUNK 16384

enum xport_state {
	XPORT_CONNECTING,
	XPORT_HANDSHAKE,
	XPORT_OPEN,
	XPORT_DEAD,
	XPORT__MAX
};

struct rpc_xport {
	struct event_base *base;
	int fd;
	SSL *ssl;
	enum xport_state state;
	struct event *rev;
	struct event *wev;
	struct evbuffer *in;
	struct evbuffer *out;
	rpc_xport_cb cb;
	void *arg;
	int paused;
	int want_write;   /* TLS needs the socket writable */
	int want_read;    /* TLS needs the socket readable (even if paused) */
	int in_flush;     /* inside rpc_xport_flush: no callbacks */
	int failed;       /* failure noticed in flush, reported from the loop */
	int want_drained; /* owner waits for an empty output buffer */
	char err[256];
};

static void xport_pump(struct rpc_xport *x);

static void
xport_on_event(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	xport_pump(arg);
}

static void
xport_update(struct rpc_xport *x)
{
	int need_w, need_r;

	if (x->state == XPORT_DEAD)
		return;
	need_w = x->state == XPORT_CONNECTING || x->want_write ||
	    (x->state == XPORT_OPEN && evbuffer_get_length(x->out) > 0);
	need_r = x->state == XPORT_HANDSHAKE || x->want_read || !x->paused;
	if (x->state == XPORT_CONNECTING)
		need_r = 0;
	if (need_w) {
		if (!event_pending(x->wev, EV_WRITE, NULL))
			(void)event_add(x->wev, NULL);
	} else if (event_pending(x->wev, EV_WRITE, NULL))
		(void)event_del(x->wev);
	if (need_r) {
		if (!event_pending(x->rev, EV_READ, NULL))
			(void)event_add(x->rev, NULL);
	} else if (event_pending(x->rev, EV_READ, NULL))
		(void)event_del(x->rev);
}

/* Marks the transport dead and tells the owner (who may free it). */
static void
xport_fail(struct rpc_xport *x, const char *why)
{
	if (x->state == XPORT_DEAD || x->failed)
		return;
	snprintf(x->err, sizeof(x->err), "%s", why);
	if (x->in_flush) {
		x->failed = 1;
		event_active(x->wev, EV_WRITE, 0);
		return;
	}
	x->state = XPORT_DEAD;
	(void)event_del(x->rev);
	(void)event_del(x->wev);
	x->cb(x, RPC_XPORT_CLOSED, x->arg);
}

static void
xport_fail_ssl(struct rpc_xport *x, const char *what, int sslerr)
{
	char ebuf[256], msg[400];

	if (sslerr == SSL_ERROR_SYSCALL && errno != 0 && ERR_peek_error() == 0)
		snprintf(msg, sizeof(msg), "%s: %s", what, strerror(errno));
	else if (sslerr == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
		snprintf(msg, sizeof(msg), "%s: connection closed", what);
	else
		snprintf(msg, sizeof(msg), "%s: %s", what,
		    rpc_tls_errstr(ebuf, sizeof(ebuf)));
	ERR_clear_error();
	xport_fail(x, msg);
}

/* Returns 0 to go on, -1 when the transport failed. */
static int
xport_write(struct rpc_xport *x)
{
	struct evbuffer_iovec v;
	int n, e;

	x->want_write = 0;
	while (evbuffer_get_length(x->out) > 0) {
		if (x->ssl == NULL) {
			n = evbuffer_write(x->out, x->fd);
			if (n > 0)
				continue;
			if (n < 0 &&
			    (errno == EAGAIN || errno == EINTR ||
				errno == EWOULDBLOCK))
				return 0;
			xport_fail(x, n < 0 ? strerror(errno) : "write failed");
			return -1;
		}
		if (evbuffer_peek(x->out, -1, NULL, &v, 1) < 1)
			return 0;
		if (v.iov_len > XPORT_CHUNK)
			v.iov_len = XPORT_CHUNK;
		ERR_clear_error();
		n = SSL_write(x->ssl, v.iov_base, (int)v.iov_len);
		if (n > 0) {
			evbuffer_drain(x->out, (size_t)n);
			continue;
		}
		e = SSL_get_error(x->ssl, n);
		if (e == SSL_ERROR_WANT_WRITE) {
			x->want_write = 1;
			return 0;
		}
		if (e == SSL_ERROR_WANT_READ) {
			x->want_read = 1;
			return 0;
		}
		xport_fail_ssl(x, "TLS write", e);
		return -1;
	}
	return 0;
}

/*
 * Reads what is available (up to a budget). Returns 1 when bytes arrived,
 * 0 when none, 2 at EOF after possibly some bytes (*got says), -1 failed.
 */
static int
xport_read(struct rpc_xport *x, int *got)
{
	struct evbuffer_iovec v;
	size_t total = 0;
	int n, e;

	*got = 0;
	x->want_read = 0;
	while (total < XPORT_READ_BUDGET) {
		if (x->ssl == NULL) {
			n = evbuffer_read(x->in, x->fd, XPORT_CHUNK * 4);
			if (n > 0) {
				total += (size_t)n;
				*got = 1;
				continue;
			}
			if (n == 0)
				return 2;
			if (errno == EAGAIN || errno == EINTR ||
			    errno == EWOULDBLOCK)
				return 0;
			xport_fail(x, strerror(errno));
			return -1;
		}
		if (evbuffer_reserve_space(x->in, XPORT_CHUNK, &v, 1) < 1) {
			xport_fail(x, "out of buffer space");
			return -1;
		}
		ERR_clear_error();
		n = SSL_read(x->ssl, v.iov_base, (int)v.iov_len);
		if (n > 0) {
			v.iov_len = (size_t)n;
			(void)evbuffer_commit_space(x->in, &v, 1);
			total += (size_t)n;
			*got = 1;
			continue;
		}
		(void)evbuffer_commit_space(x->in, &v, 0);
		e = SSL_get_error(x->ssl, n);
		if (e == SSL_ERROR_WANT_READ)
			return 0;
		if (e == SSL_ERROR_WANT_WRITE) {
			x->want_write = 1;
			return 0;
		}
		if (e == SSL_ERROR_ZERO_RETURN)
			return 2;
		if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 &&
		    (n == 0 || errno == ECONNRESET)) {
			ERR_clear_error();
			return 2;
		}
		xport_fail_ssl(x, "TLS read", e);
		return -1;
	}
	/* Budget used up: come back to this connection on the next turn. */
	event_active(x->rev, EV_READ, 0);
	return 0;
}

static void
xport_pump(struct rpc_xport *x)
{
	int soerr = 0, r, got = 0, e;
	socklen_t sl = sizeof(soerr);
	char msg[300];

	if (x->failed) {
		x->failed = 0;
		snprintf(msg, sizeof(msg), "%s", x->err);
		xport_fail(x, msg);
		return;
	}
	if (x->state == XPORT_CONNECTING) {
		if (getsockopt(x->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
			soerr = errno;
		if (soerr != 0) {
			snprintf(
			    msg, sizeof(msg), "connect: %s", strerror(soerr));
			xport_fail(x, msg);
			return;
		}
		if (x->ssl == NULL) {
			x->state = XPORT_OPEN;
			if (x->cb(x, RPC_XPORT_CONNECTED, x->arg) != 0)
				return;
		} else
			x->state = XPORT_HANDSHAKE;
	}
	if (x->state == XPORT_HANDSHAKE) {
		ERR_clear_error();
		r = SSL_do_handshake(x->ssl);
		if (r == 1) {
			x->state = XPORT_OPEN;
			x->want_read = x->want_write = 0;
			if (x->cb(x, RPC_XPORT_CONNECTED, x->arg) != 0)
				return;
		} else {
			e = SSL_get_error(x->ssl, r);
			x->want_read = e == SSL_ERROR_WANT_READ;
			x->want_write = e == SSL_ERROR_WANT_WRITE;
			if (!x->want_read && !x->want_write) {
				xport_fail_ssl(x, "TLS handshake", e);
				return;
			}
			xport_update(x);
			return;
		}
	}
	if (x->state != XPORT_OPEN)
		return;
	if (xport_write(x) != 0)
		return;
	if (x->want_drained && evbuffer_get_length(x->out) == 0) {
		x->want_drained = 0;
		if (x->cb(x, RPC_XPORT_DRAINED, x->arg) != 0)
			return;
	}
	if (!x->paused || x->want_read) {
		r = xport_read(x, &got);
		if (r < 0)
			return;
		/* Also when resumed with bytes left over from before the
		 * pause: the socket may have nothing new to announce. */
		if ((got || (!x->paused && evbuffer_get_length(x->in) > 0)) &&
		    x->cb(x, RPC_XPORT_READ, x->arg) != 0)
			return;
		if (r == 2) {
			xport_fail(x, "connection closed by peer");
			return;
		}
		/* The owner may have queued output in the callback. */
		if (x->state == XPORT_OPEN && evbuffer_get_length(x->out) > 0 &&
		    xport_write(x) != 0)
			return;
	}
	xport_update(x);
}

struct rpc_xport *
rpc_xport_new(struct event_base *base, int fd, SSL_CTX *ctx, int is_server,
    const char *server_name, int connecting, rpc_xport_cb cb, void *arg)
{
	struct rpc_xport *x;

	x = xcalloc(1, sizeof(*x));
	x->base = base;
	x->fd = fd;
	x->cb = cb;
	x->arg = arg;
	x->in = evbuffer_new();
	x->out = evbuffer_new();
	x->rev = event_new(base, fd, EV_READ | EV_PERSIST, xport_on_event, x);
	x->wev = event_new(base, fd, EV_WRITE | EV_PERSIST, xport_on_event, x);
	if (x->in == NULL || x->out == NULL || x->rev == NULL || x->wev == NULL)
		goto fail;
	if (ctx != NULL) {
		x->ssl = SSL_new(ctx);
		if (x->ssl == NULL || SSL_set_fd(x->ssl, fd) != 1)
			goto fail;
		if (is_server)
			SSL_set_accept_state(x->ssl);
		else {
			SSL_set_connect_state(x->ssl);
			if (server_name != NULL && server_name[0] != '\0') {
				if (SSL_set1_host(x->ssl, server_name) != 1)
					goto fail;
				(void)SSL_set_tlsext_host_name(
				    x->ssl, server_name);
			}
		}
	}
	x->state = connecting ? XPORT_CONNECTING
			      : (x->ssl != NULL ? XPORT_HANDSHAKE : XPORT_OPEN);
	if (connecting)
		(void)event_add(x->wev, NULL);
	else if (x->ssl != NULL)
		event_active(x->rev, EV_READ, 0);
	else {
		/* Plain and already connected: report it from the loop. */
		x->state = XPORT_CONNECTING;
		event_active(x->wev, EV_WRITE, 0);
	}
	if (x->state != XPORT_CONNECTING || connecting)
		xport_update(x);
	return x;
fail:
	ERR_clear_error();
	x->fd = -1;
	rpc_xport_free(x);
	close(fd);
	return NULL;
}

/* See rpc_int.h. */
void
rpc_events_free(struct event *const *evs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (evs[i] != NULL)
			event_free(evs[i]);
}

void
rpc_xport_free(struct rpc_xport *x)
{
	struct event *evs[2];

	if (x == NULL)
		return;
	evs[0] = x->rev;
	evs[1] = x->wev;
	rpc_events_free(evs, 2);
	if (x->ssl != NULL) {
		if (x->state == XPORT_OPEN)
			(void)SSL_shutdown(x->ssl);
		SSL_free(x->ssl);
	}
	if (x->fd >= 0)
		close(x->fd);
	if (x->in != NULL)
		evbuffer_free(x->in);
	if (x->out != NULL)
		evbuffer_free(x->out);
	free(x);
}

void
rpc_xport_detach(struct rpc_xport *x, int *fd, SSL **ssl)
{
	*fd = x->fd;
	*ssl = x->ssl;
	x->fd = -1;
	x->ssl = NULL;
	rpc_xport_free(x);
}

struct evbuffer *
rpc_xport_input(struct rpc_xport *x)
{
	return x->in;
}

struct evbuffer *
rpc_xport_output(struct rpc_xport *x)
{
	return x->out;
}

void
rpc_xport_flush(struct rpc_xport *x)
{
	if (x->state != XPORT_OPEN || x->failed)
		return;
	x->in_flush = 1;
	if (xport_write(x) == 0 && !x->failed)
		xport_update(x);
	x->in_flush = 0;
}

void
rpc_xport_notify_drained(struct rpc_xport *x)
{
	x->want_drained = 1;
	if (x->state == XPORT_OPEN && evbuffer_get_length(x->out) == 0)
		event_active(x->wev, EV_WRITE, 0);
}

void
rpc_xport_pause(struct rpc_xport *x, int paused)
{
	if (x->paused == paused || x->state == XPORT_DEAD || x->failed)
		return;
	x->paused = paused;
	xport_update(x);
	/* TLS may hold decrypted bytes the socket will not announce. */
	if (!paused && x->state == XPORT_OPEN)
		event_active(x->rev, EV_READ, 0);
}

const char *
rpc_xport_error(const struct rpc_xport *x)
{
	return x->err;
}

SSL *
rpc_xport_ssl(struct rpc_xport *x)
{
	return x->ssl;
}

int
rpc_xport_fd(const struct rpc_xport *x)
{
	return x->fd;
}
