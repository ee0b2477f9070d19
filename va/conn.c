/*
 * conn.c - one outbound connection on the VA loop: non-blocking connect,
 * optional non-blocking TLS handshake, then either stop (tls-alpn-01) or
 * send an HTTP request and read a bounded response.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "va/va_int.h"

#define CONN_MAX_IN (VA_HTTP_MAX_HEADER_BYTES + 8192)

static void conn_ev_cb(evutil_socket_t fd, short what, void *arg);
static void ctimer_cb(evutil_socket_t fd, short what, void *arg);

void
va_conn_free(struct va_conn *c)
{
	if (c == NULL)
		return;
	if (c->ev != NULL)
		event_free(c->ev);
	if (c->ctimer != NULL)
		event_free(c->ctimer);
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	if (c->fd >= 0)
		close(c->fd);
	free(c->out);
	free(c->in);
	free(c->sni);
	free(c->alpn);
	va_http_resp_clear(&c->resp);
	free(c);
}

static void
conn_wait(struct va_conn *c, short what)
{
	if (c->ev != NULL)
		event_free(c->ev);
	c->want_write = (what & EV_WRITE) != 0;
	c->ev = event_new(c->va->base, c->fd, what, conn_ev_cb, c);
	if (c->ev == NULL || event_add(c->ev, NULL) != 0)
		log_bug("cannot wait on socket %d", c->fd);
}

static void conn_done(struct va_conn *c, enum va_conn_err e, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

static void
conn_done(struct va_conn *c, enum va_conn_err e, const char *fmt, ...)
{
	char msg[256] = "";
	va_list ap;

	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
	}
	c->phase = VA_PHASE_DONE;
	if (c->ev != NULL) {
		event_free(c->ev);
		c->ev = NULL;
	}
	if (c->ctimer != NULL) {
		event_free(c->ctimer);
		c->ctimer = NULL;
	}
	c->cb(c->arg, c, e, msg); /* may free c */
}

static const char *
ssl_err_text(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();

	if (e == 0)
		snprintf(buf, len, "%s",
		    errno ? strerror(errno)
			  : "connection closed during the TLS handshake");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

static void do_write(struct va_conn *c);
static void do_read(struct va_conn *c);

static void
do_handshake(struct va_conn *c)
{
	char buf[200];
	int r, e;

	ERR_clear_error();
	errno = 0;
	r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		if (c->handshake_only) {
			conn_done(c, VA_CONN_OK, NULL);
			return;
		}
		c->phase = VA_PHASE_WRITE;
		do_write(c);
		return;
	}
	e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ)
		conn_wait(c, EV_READ);
	else if (e == SSL_ERROR_WANT_WRITE)
		conn_wait(c, EV_WRITE);
	else {
		c->sys_errno = errno;
		conn_done(c, VA_CONN_ETLS, "TLS handshake failed: %s",
		    ssl_err_text(buf, sizeof(buf)));
	}
}

/* What one send or receive did (conn_io). */
enum io_rc {
	IO_OK,         /* *got bytes moved */
	IO_WANT_READ,  /* try again when the socket is readable */
	IO_WANT_WRITE, /* ... writable */
	IO_EOF,        /* receive: the peer closed */
	IO_FAIL,       /* c->sys_errno set, the reason in why */
};

/*
 * Sends c->out from c->outoff (wr) or receives into c->in at c->inlen, at
 * most len bytes, over TLS when c has a session.
 */
static enum io_rc
conn_io(struct va_conn *c, int wr, size_t len, size_t *got, char *why,
    size_t whylen)
{
	ssize_t n;
	int e;

	if (c->ssl != NULL) {
		ERR_clear_error();
		errno = 0;
		n = wr ? SSL_write(c->ssl, c->out + c->outoff, (int)len)
		       : SSL_read(c->ssl, c->in + c->inlen, (int)len);
		if (n > 0) {
			*got = (size_t)n;
			return IO_OK;
		}
		e = SSL_get_error(c->ssl, (int)n);
		if (e == SSL_ERROR_WANT_READ)
			return IO_WANT_READ;
		if (e == SSL_ERROR_WANT_WRITE)
			return IO_WANT_WRITE;
		if (!wr &&
		    (e == SSL_ERROR_ZERO_RETURN ||
			(e == SSL_ERROR_SYSCALL && errno == 0)))
			return IO_EOF;
		c->sys_errno = errno;
		ssl_err_text(why, whylen);
		return IO_FAIL;
	}
	n = wr ? send(c->fd, c->out + c->outoff, len, MSG_NOSIGNAL)
	       : recv(c->fd, c->in + c->inlen, len, 0);
	if (n > 0 || (n == 0 && wr)) {
		*got = (size_t)n;
		return IO_OK;
	}
	if (n == 0)
		return IO_EOF;
	if (errno == EAGAIN || errno == EINTR)
		return wr ? IO_WANT_WRITE : IO_WANT_READ;
	c->sys_errno = errno;
	snprintf(why, whylen, "%s", strerror(errno));
	return IO_FAIL;
}

static void
do_write(struct va_conn *c)
{
	char why[200];
	size_t n = 0;
	enum io_rc rc;

	while (c->outoff < c->outlen) {
		rc = conn_io(c, 1, c->outlen - c->outoff, &n, why, sizeof(why));
		if (rc == IO_WANT_READ || rc == IO_WANT_WRITE) {
			conn_wait(c, rc == IO_WANT_READ ? EV_READ : EV_WRITE);
			return;
		}
		if (rc != IO_OK) {
			conn_done(c, VA_CONN_EIO,
			    "error sending the request: %s", why);
			return;
		}
		c->outoff += n;
	}
	c->phase = VA_PHASE_READ;
	do_read(c);
}

static void
parse_in(struct va_conn *c, int eof)
{
	char err[200];
	enum va_http_rc rc;

	va_http_resp_clear(&c->resp);
	rc = va_http_parse(c->in, c->inlen, eof, &c->resp, err, sizeof(err));
	if (rc == VA_HTTP_DONE) {
		conn_done(c, VA_CONN_OK, NULL);
	} else if (rc == VA_HTTP_ERROR) {
		conn_done(c, VA_CONN_EPROTO, "%s", err);
	} else if (eof || c->inlen >= CONN_MAX_IN) {
		conn_done(c, VA_CONN_EPROTO, "incomplete HTTP response");
	} else {
		conn_wait(c, c->want_write ? EV_WRITE : EV_READ);
	}
}

static void
do_read(struct va_conn *c)
{
	char why[200];
	size_t n = 0;
	enum io_rc rc;

	for (;;) {
		if (c->incap - c->inlen < 1024 && c->incap < CONN_MAX_IN) {
			c->incap = c->incap ? c->incap * 2 : 4096;
			if (c->incap > CONN_MAX_IN)
				c->incap = CONN_MAX_IN;
			c->in = xrealloc(c->in, c->incap);
		}
		if (c->inlen >= c->incap) {
			parse_in(c, 0);
			return;
		}
		rc = conn_io(c, 0, c->incap - c->inlen, &n, why, sizeof(why));
		c->want_write = rc == IO_WANT_WRITE;
		if (rc == IO_WANT_READ || rc == IO_WANT_WRITE || rc == IO_EOF) {
			parse_in(c, rc == IO_EOF);
			return;
		}
		if (rc == IO_FAIL) {
			conn_done(c, VA_CONN_EIO,
			    "error reading the response: %s", why);
			return;
		}
		c->inlen += n;
	}
}

static void
start_tls_or_write(
    struct va_conn *c, int tls, const char *sni, const char *alpn)
{
	unsigned char protos[64];
	size_t alen;

	if (!tls) {
		c->phase = VA_PHASE_WRITE;
		do_write(c);
		return;
	}
	c->phase = VA_PHASE_TLS;
	c->ssl = SSL_new(c->va->ssl_ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
		conn_done(c, VA_CONN_ETLS, "cannot create a TLS session");
		return;
	}
	if (sni != NULL && SSL_set_tlsext_host_name(c->ssl, sni) != 1) {
		conn_done(c, VA_CONN_ETLS, "cannot set SNI");
		return;
	}
	if (alpn != NULL) {
		alen = strlen(alpn);
		if (alen == 0 || alen >= sizeof(protos)) {
			conn_done(c, VA_CONN_ETLS, "bad ALPN");
			return;
		}
		protos[0] = (unsigned char)alen;
		memcpy(protos + 1, alpn, alen);
		if (SSL_set_alpn_protos(c->ssl, protos, (unsigned)(alen + 1)) !=
		    0) {
			conn_done(c, VA_CONN_ETLS, "cannot set ALPN");
			return;
		}
	}
	SSL_set_connect_state(c->ssl);
	do_handshake(c);
}

static void
conn_ev_cb(evutil_socket_t fd, short what, void *arg)
{
	struct va_conn *c = arg;
	int soerr = 0;
	socklen_t sl = sizeof(soerr);

	(void)fd;
	(void)what;
	switch (c->phase) {
	case VA_PHASE_CONNECT:
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
			soerr = errno;
		if (soerr != 0) {
			c->sys_errno = soerr;
			conn_done(c, VA_CONN_ECONNECT, "%s", strerror(soerr));
			return;
		}
		if (c->ctimer != NULL) {
			event_free(c->ctimer);
			c->ctimer = NULL;
		}
		start_tls_or_write(c, c->tls, c->sni, c->alpn);
		return;
	case VA_PHASE_TLS:
		do_handshake(c);
		return;
	case VA_PHASE_WRITE:
		do_write(c);
		return;
	case VA_PHASE_READ:
		do_read(c);
		return;
	case VA_PHASE_DONE:
	case VA_PHASE__MAX:
		return;
	}
}

struct va_conn *
va_conn_start(struct va *va, int family, const uint8_t *addr, int port, int tls,
    const char *sni, const char *alpn, const char *request, int handshake_only,
    va_conn_cb cb, void *arg, char *err, size_t errlen)
{
	struct va_conn *c = NULL;
	struct sockaddr_storage ss;
	socklen_t sl;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		memcpy(&s4->sin_addr, addr, 4);
		sl = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		memcpy(&s6->sin6_addr, addr, 16);
		sl = sizeof(*s6);
	}
	c = xcalloc(1, sizeof(*c));
	c->va = va;
	c->cb = cb;
	c->arg = arg;
	c->handshake_only = handshake_only;
	c->tls = tls;
	c->sni = sni ? xstrdup(sni) : NULL;
	c->alpn = alpn ? xstrdup(alpn) : NULL;
	c->resp.content_length = -1;
	if (request != NULL) {
		c->out = xstrdup(request);
		c->outlen = strlen(request);
	}
	c->fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		goto fail;
	}
	if (connect(c->fd, (struct sockaddr *)&ss, sl) != 0 &&
	    errno != EINPROGRESS) {
		/* Refused at once (loopback): report it through cb like a
		 * refusal seen later, so the caller sees the errno and can
		 * retry (RFC 8555 §8.2). */
		struct timeval now = {0, 0};

		c->sys_errno = errno;
		snprintf(err, errlen, "%s", strerror(errno));
		c->phase = VA_PHASE_CONNECT;
		c->ctimer = evtimer_new(va->base, ctimer_cb, c);
		if (c->ctimer == NULL || evtimer_add(c->ctimer, &now) != 0)
			goto fail;
		return c;
	}
	c->phase = VA_PHASE_CONNECT;
	conn_wait(c, EV_WRITE);
	return c;
fail:
	va_conn_free(c);
	return NULL;
}

static void
ctimer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct va_conn *c = arg;

	(void)fd;
	(void)what;
	if (c->phase == VA_PHASE_CONNECT && c->sys_errno != 0)
		conn_done(c, VA_CONN_ECONNECT, "%s", strerror(c->sys_errno));
	else if (c->phase == VA_PHASE_CONNECT)
		conn_done(c, VA_CONN_ECONNECT,
		    "no answer to the TCP handshake "
		    "within %lld ms",
		    (long long)c->connect_timeout_ms);
}

int
va_conn_connect_timeout(struct va_conn *c, int64_t ms)
{
	struct timeval tv;

	if (c->phase != VA_PHASE_CONNECT || ms <= 0 || c->ctimer != NULL)
		return 0;
	c->connect_timeout_ms = ms;
	c->ctimer = evtimer_new(c->va->base, ctimer_cb, c);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	if (c->ctimer == NULL || evtimer_add(c->ctimer, &tv) != 0) {
		log_bug("cannot arm the connect timer");
		return -1;
	}
	return 0;
}
