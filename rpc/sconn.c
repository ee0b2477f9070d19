/*
 * sconn.c - one RPC connection driven directly by the thread that uses it:
 * blocking-style writes and frame reads with a deadline, plain or TLS, on
 * a non-blocking socket. The client checks one out per call and the
 * server's direct threads serve one each, so a call crosses no other
 * thread (docs/rpc.md, "Direct connections").
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <openssl/err.h>

#include "rpc/rpc.h"
#include "rpc/rpc_int.h"

#define SCONN_CHUNK 16384

struct rpc_sconn {
	int fd;
	SSL *ssl;
	uint8_t *buf; /* bytes read and not yet decoded */
	size_t len, cap;
};

/*
 * Waits until fd has `events` or wake_fd (if >= 0) is readable or the
 * deadline (monotonic ms, 0 = none) passes. 0 ready, SCONN_TIMEOUT,
 * SCONN_WOKEN, or SCONN_ERR with err.
 */
static int
sconn_wait(struct rpc_sconn *k, short events, int64_t deadline, int wake_fd,
    char *err, size_t errlen)
{
	struct pollfd p[2];
	int64_t left;
	int n, nfds = 1;

	for (;;) {
		p[0].fd = k->fd;
		p[0].events = events;
		p[0].revents = 0;
		if (wake_fd >= 0) {
			p[1].fd = wake_fd;
			p[1].events = POLLIN;
			p[1].revents = 0;
			nfds = 2;
		}
		left = -1;
		if (deadline > 0) {
			left = deadline - time_mono_ms();
			if (left <= 0)
				return SCONN_TIMEOUT;
			if (left > 1000000)
				left = 1000000;
		}
		n = poll(p, (nfds_t)nfds, (int)left);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "poll: %s", strerror(errno));
			return SCONN_ERR;
		}
		if (n == 0)
			continue; /* the deadline check above decides */
		if (nfds == 2 && (p[1].revents & (POLLIN | POLLHUP)) != 0)
			return SCONN_WOKEN;
		if (p[0].revents != 0)
			return 0;
	}
}

static void
sconn_ssl_err(const char *what, int sslerr, int n, char *err, size_t errlen)
{
	char ebuf[256];

	if (sslerr == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
		snprintf(err, errlen, "%s: %s", what,
		    n == 0 || errno == 0 ? "connection closed"
					 : strerror(errno));
	else
		snprintf(err, errlen, "%s: %s", what,
		    rpc_tls_errstr(ebuf, sizeof(ebuf)));
	ERR_clear_error();
}

static struct rpc_sconn *
sconn_new(int fd, SSL *ssl)
{
	struct rpc_sconn *k = xcalloc(1, sizeof(*k));

	k->fd = fd;
	k->ssl = ssl;
	return k;
}

/* Non-blocking connect of fd to sa by the deadline. 0 or -1 (err). */
static int
sconn_connect_fd(int fd, const struct sockaddr *sa, socklen_t salen,
    int64_t deadline, const char *what, char *err, size_t errlen)
{
	struct rpc_sconn tmp;
	int soerr = 0, r;
	socklen_t sl = sizeof(soerr);

	if (connect(fd, sa, salen) == 0)
		return 0;
	if (errno != EINPROGRESS && errno != EAGAIN) {
		snprintf(err, errlen, "connect %s: %s", what, strerror(errno));
		return -1;
	}
	memset(&tmp, 0, sizeof(tmp));
	tmp.fd = fd;
	r = sconn_wait(&tmp, POLLOUT, deadline, -1, err, errlen);
	if (r == SCONN_TIMEOUT) {
		snprintf(err, errlen, "connect %s: timed out", what);
		return -1;
	}
	if (r != 0)
		return -1;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
		soerr = errno;
	if (soerr != 0) {
		snprintf(err, errlen, "connect %s: %s", what, strerror(soerr));
		return -1;
	}
	return 0;
}

struct rpc_sconn *
rpc_sconn_connect(const struct rpc_addr *a, SSL_CTX *ctx,
    const char *server_name, int64_t deadline, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	struct addrinfo *res = NULL, *ai;
	struct rpc_sconn *k;
	SSL *ssl = NULL;
	int fd = -1, rc, e;
	char what[300];

	if (a->kind == RPC_ADDR_UNIX) {
		fd = rpc_unix_socket(a->path, &sun);
		if (fd < 0) {
			snprintf(err, errlen, "socket: %s", strerror(errno));
			return NULL;
		}
		if (sconn_connect_fd(fd, (struct sockaddr *)&sun, sizeof(sun),
			deadline, a->path, err, errlen) != 0) {
			close(fd);
			return NULL;
		}
	} else {
		if (rpc_resolve(a->host, a->port, &res, err, errlen) != 0)
			return NULL;
		snprintf(what, sizeof(what), "%s:%s", a->host, a->port);
		snprintf(err, errlen, "connect %s: no address", what);
		for (ai = res; ai != NULL; ai = ai->ai_next) {
			fd = rpc_tcp_socket(ai);
			if (fd < 0)
				continue;
			if (sconn_connect_fd(fd, ai->ai_addr, ai->ai_addrlen,
				deadline, what, err, errlen) == 0)
				break;
			close(fd);
			fd = -1;
		}
		freeaddrinfo(res);
		if (fd < 0)
			return NULL;
	}
	if (ctx != NULL) {
		ssl = SSL_new(ctx);
		if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
			snprintf(err, errlen, "TLS setup failed");
			goto fail;
		}
		SSL_set_connect_state(ssl);
		if (server_name != NULL && server_name[0] != '\0') {
			if (SSL_set1_host(ssl, server_name) != 1) {
				snprintf(err, errlen, "TLS setup failed");
				goto fail;
			}
			(void)SSL_set_tlsext_host_name(ssl, server_name);
		}
	}
	k = sconn_new(fd, ssl);
	while (ssl != NULL) {
		ERR_clear_error();
		rc = SSL_do_handshake(ssl);
		if (rc == 1)
			break;
		e = SSL_get_error(ssl, rc);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			rc = sconn_wait(k,
			    e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
			    deadline, -1, err, errlen);
			if (rc == 0)
				continue;
			if (rc == SCONN_TIMEOUT)
				snprintf(err, errlen, "TLS handshake: timed out");
		} else
			sconn_ssl_err("TLS handshake", e, rc, err, errlen);
		k->ssl = NULL; /* freed below with the fd */
		free(k);
		goto fail;
	}
	return k;
fail:
	ERR_clear_error();
	SSL_free(ssl);
	if (fd >= 0)
		close(fd);
	return NULL;
}

struct rpc_sconn *
rpc_sconn_wrap(int fd, SSL *ssl, const uint8_t *pending, size_t npending)
{
	struct rpc_sconn *k = sconn_new(fd, ssl);

	if (npending > 0) {
		k->cap = npending > SCONN_CHUNK ? npending : SCONN_CHUNK;
		k->buf = xmalloc(k->cap);
		memcpy(k->buf, pending, npending);
		k->len = npending;
	}
	return k;
}

void
rpc_sconn_free(struct rpc_sconn *k)
{
	if (k == NULL)
		return;
	if (k->ssl != NULL) {
		(void)SSL_shutdown(k->ssl);
		SSL_free(k->ssl);
		ERR_clear_error();
	}
	if (k->fd >= 0)
		close(k->fd);
	free(k->buf);
	free(k);
}

int
rpc_sconn_fd(const struct rpc_sconn *k)
{
	return k->fd;
}

int
rpc_sconn_write(struct rpc_sconn *k, const uint8_t *buf, size_t len,
    int64_t deadline, int wake_fd, char *err, size_t errlen)
{
	size_t off = 0;
	ssize_t n;
	int r, e, chunk;
	short want;

	while (off < len) {
		want = POLLOUT;
		if (k->ssl == NULL) {
			n = send(k->fd, buf + off, len - off, MSG_NOSIGNAL);
			if (n > 0) {
				off += (size_t)n;
				continue;
			}
			if (n < 0 && errno == EINTR)
				continue;
			if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
				snprintf(err, errlen, "write: %s",
				    n == 0 ? "connection closed"
					   : strerror(errno));
				return SCONN_ERR;
			}
		} else {
			chunk = len - off > SCONN_CHUNK ? SCONN_CHUNK
							: (int)(len - off);
			ERR_clear_error();
			r = SSL_write(k->ssl, buf + off, chunk);
			if (r > 0) {
				off += (size_t)r;
				continue;
			}
			e = SSL_get_error(k->ssl, r);
			if (e == SSL_ERROR_WANT_READ)
				want = POLLIN;
			else if (e != SSL_ERROR_WANT_WRITE) {
				sconn_ssl_err("TLS write", e, r, err, errlen);
				return SCONN_ERR;
			}
		}
		r = sconn_wait(k, want, deadline, wake_fd, err, errlen);
		if (r != 0)
			return r;
	}
	return 0;
}

/* Reads what is there into the buffer. 0 bytes came, SCONN_AGAIN (with
 * *want), SCONN_EOF or SCONN_ERR. */
static int
sconn_fill(struct rpc_sconn *k, size_t need, short *want, char *err,
    size_t errlen)
{
	ssize_t n;
	int r, e;
	size_t room;

	if (k->cap - k->len < SCONN_CHUNK || k->cap < need) {
		k->cap = k->len + SCONN_CHUNK > need ? k->len + SCONN_CHUNK
						     : need;
		k->buf = xrealloc(k->buf, k->cap);
	}
	room = k->cap - k->len;
	*want = POLLIN;
	if (k->ssl == NULL) {
		n = read(k->fd, k->buf + k->len, room);
		if (n > 0) {
			k->len += (size_t)n;
			return 0;
		}
		if (n == 0)
			return SCONN_EOF;
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return SCONN_AGAIN;
		snprintf(err, errlen, "read: %s", strerror(errno));
		return SCONN_ERR;
	}
	ERR_clear_error();
	r = SSL_read(
	    k->ssl, k->buf + k->len, room > INT32_MAX ? INT32_MAX : (int)room);
	if (r > 0) {
		k->len += (size_t)r;
		return 0;
	}
	e = SSL_get_error(k->ssl, r);
	if (e == SSL_ERROR_WANT_READ)
		return SCONN_AGAIN;
	if (e == SSL_ERROR_WANT_WRITE) {
		*want = POLLOUT;
		return SCONN_AGAIN;
	}
	if (e == SSL_ERROR_ZERO_RETURN ||
	    (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 &&
		(r == 0 || errno == ECONNRESET))) {
		ERR_clear_error();
		return SCONN_EOF;
	}
	sconn_ssl_err("TLS read", e, r, err, errlen);
	return SCONN_ERR;
}

int
rpc_sconn_read_frame(struct rpc_sconn *k, size_t max_frame, int64_t deadline,
    int wake_fd, json_t **out, char *err, size_t errlen)
{
	size_t n = 0, used = 0, need;
	short want = POLLIN;
	int r;

	*out = NULL;
	for (;;) {
		need = 4;
		if (k->len >= 4) {
			if (rpc_frame_header(k->buf, max_frame, &n, err,
				errlen) != RPC_FRAME_OK)
				return SCONN_BAD;
			need = n + 4;
			if (k->len >= need) {
				if (rpc_frame_decode(k->buf, need, max_frame,
					&used, out, err,
					errlen) != RPC_FRAME_OK)
					return SCONN_BAD;
				memmove(k->buf, k->buf + used, k->len - used);
				k->len -= used;
				return 0;
			}
		}
		r = sconn_fill(k, need, &want, err, errlen);
		if (r == 0)
			continue;
		if (r == SCONN_EOF) {
			if (k->len > 0) {
				snprintf(err, errlen,
				    "connection closed inside a frame "
				    "(%zu bytes)",
				    k->len);
				return SCONN_ERR;
			}
			snprintf(err, errlen, "connection closed");
			return SCONN_EOF;
		}
		if (r != SCONN_AGAIN)
			return r;
		r = sconn_wait(k, want, deadline, wake_fd, err, errlen);
		if (r != 0)
			return r;
	}
}

int
rpc_sconn_stale(struct rpc_sconn *k)
{
	struct pollfd p;
	uint8_t b;
	int r, e;

	if (k->len > 0)
		return 1; /* bytes nobody asked for */
	p.fd = k->fd;
	p.events = POLLIN;
	p.revents = 0;
	if (poll(&p, 1, 0) == 0)
		return 0;
	if (k->ssl == NULL)
		return 1; /* EOF, an error or unrequested bytes */
	/* TLS: the record may be a protocol message with no data. */
	ERR_clear_error();
	r = SSL_read(k->ssl, &b, 1);
	if (r > 0)
		return 1;
	e = SSL_get_error(k->ssl, r);
	ERR_clear_error();
	return e == SSL_ERROR_WANT_READ ? 0 : 1;
}
