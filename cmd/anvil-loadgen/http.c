/*
 * http.c - a minimal blocking HTTP/1.1 client over OpenSSL with keep-alive:
 * enough for ACME (Content-Length, chunked, read-until-close bodies; HEAD;
 * Location / Replay-Nonce / Content-Type headers). One connection per
 * worker thread, so nothing here locks.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "core/core.h"
#include "cmd/anvil-loadgen/lg.h"

struct lg_conn {
	SSL_CTX *ctx;
	int timeout_ms;
	int fd;
	SSL *ssl;
	char *host; /* target of the open connection */
	int port;
	char *rbuf;
	size_t rpos, rlen, rcap;
	int got_bytes; /* response bytes seen for the current request */
	int timed_out; /* the last read or write hit the timeout */
	uint64_t opened;
};

int
lg_url_parse(const char *url, struct lg_url *out)
{
	const char *p, *hend, *slash, *colon;
	char *end = NULL;
	long port = 443;

	memset(out, 0, sizeof(*out));
	if (url == NULL || strncasecmp(url, "https://", 8) != 0)
		return -1;
	p = url + 8;
	slash = strchr(p, '/');
	hend = slash != NULL ? slash : p + strlen(p);
	if (*p == '[') { /* [v6]:port */
		const char *rb = memchr(p, ']', (size_t)(hend - p));
		if (rb == NULL)
			return -1;
		out->host = xstrndup(p + 1, (size_t)(rb - p - 1));
		colon = rb + 1 < hend && rb[1] == ':' ? rb + 1 : NULL;
	} else {
		colon = memchr(p, ':', (size_t)(hend - p));
		out->host =
		    xstrndup(p, (size_t)((colon != NULL ? colon : hend) - p));
	}
	if (colon != NULL) {
		errno = 0;
		port = strtol(colon + 1, &end, 10);
		if (errno != 0 || end != hend || port < 1 || port > 65535)
			goto bad;
	}
	if (out->host[0] == '\0')
		goto bad;
	out->port = (int)port;
	out->path = xstrdup(slash != NULL ? slash : "/");
	return 0;
bad:
	lg_url_clear(out);
	return -1;
}

void
lg_url_clear(struct lg_url *u)
{
	if (u == NULL)
		return;
	free(u->host);
	free(u->path);
	memset(u, 0, sizeof(*u));
}

void
lg_resp_clear(struct lg_resp *r)
{
	if (r == NULL)
		return;
	free(r->location);
	free(r->nonce);
	free(r->content_type);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

SSL_CTX *
lg_tls_ctx_new(const char *trust_file, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL) {
		snprintf(err, errlen, "SSL_CTX_new failed");
		return NULL;
	}
	if (SSL_CTX_load_verify_locations(ctx, trust_file, NULL) != 1) {
		snprintf(err, errlen, "cannot load trust file %s", trust_file);
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		snprintf(err, errlen, "cannot require TLS 1.2");
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

struct lg_conn *
lg_conn_new(SSL_CTX *ctx, int timeout_ms)
{
	struct lg_conn *c = xcalloc(1, sizeof(*c));

	c->ctx = ctx;
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
	c->fd = -1;
	return c;
}

static void
conn_close(struct lg_conn *c)
{
	if (c->ssl != NULL) {
		if (c->fd >= 0)
			(void)SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0)
		(void)close(c->fd);
	c->fd = -1;
	free(c->host);
	c->host = NULL;
	c->rpos = c->rlen = 0;
}

void
lg_conn_free(struct lg_conn *c)
{
	if (c == NULL)
		return;
	conn_close(c);
	free(c->rbuf);
	free(c);
}

uint64_t
lg_conn_opened(const struct lg_conn *c)
{
	return c->opened;
}

static int
tcp_connect(
    const char *host, int port, int timeout_ms, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL, *ai;
	struct timeval tv;
	char ps[16];
	int fd = -1, one = 1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(ps, sizeof(ps), "%d", port);
	rc = getaddrinfo(host, ps, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "resolve %s: %s", host, gai_strerror(rc));
		return -1;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol);
		if (fd < 0)
			continue;
		/* SO_SNDTIMEO also bounds connect(2) on Linux. */
		if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ==
			0 &&
		    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) ==
			0 &&
		    setsockopt(
			fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0 &&
		    connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		snprintf(err, errlen, "connect %s:%d: %s", host, port,
		    strerror(errno));
		(void)close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

static void
tls_err(const char *what, char *err, size_t errlen)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(
	    err, errlen, "%s: %s", what, e != 0 ? buf : "connection closed");
	ERR_clear_error();
}

static int
conn_open(struct lg_conn *c, const struct lg_url *u, char *err, size_t errlen)
{
	unsigned char addr[16];
	int is_ip;

	c->fd = tcp_connect(u->host, u->port, c->timeout_ms, err, errlen);
	if (c->fd < 0)
		return -1;
	c->ssl = SSL_new(c->ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
		tls_err("SSL_new", err, errlen);
		goto fail;
	}
	is_ip = inet_pton(AF_INET, u->host, addr) == 1 ||
	    inet_pton(AF_INET6, u->host, addr) == 1;
	if (is_ip) {
		if (X509_VERIFY_PARAM_set1_ip_asc(
			SSL_get0_param(c->ssl), u->host) != 1) {
			tls_err("verify ip", err, errlen);
			goto fail;
		}
	} else if (SSL_set_tlsext_host_name(c->ssl, u->host) != 1 ||
	    SSL_set1_host(c->ssl, u->host) != 1) {
		tls_err("set host", err, errlen);
		goto fail;
	}
	if (SSL_connect(c->ssl) != 1) {
		long vr = SSL_get_verify_result(c->ssl);

		if (vr != X509_V_OK)
			snprintf(err, errlen, "TLS to %s:%d: certificate: %s",
			    u->host, u->port,
			    X509_verify_cert_error_string(vr));
		else
			tls_err("TLS handshake", err, errlen);
		goto fail;
	}
	c->host = xstrdup(u->host);
	c->port = u->port;
	c->rpos = c->rlen = 0;
	c->opened++;
	return 0;
fail:
	conn_close(c);
	return -1;
}

/* Reads more bytes into rbuf. 0, or -1 with err (closed / timeout). */
static int
conn_fill(struct lg_conn *c, char *err, size_t errlen)
{
	int n, e;

	if (c->rpos > 0) { /* compact: nothing before rpos is referenced */
		memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
		c->rlen -= c->rpos;
		c->rpos = 0;
	}
	if (c->rcap - c->rlen < 16384) {
		if (c->rcap > LG_MAX_HEADER + LG_MAX_BODY + 65536) {
			snprintf(err, errlen, "response too large");
			return -1;
		}
		c->rcap = c->rcap == 0 ? 32768 : c->rcap * 2;
		c->rbuf = xrealloc(c->rbuf, c->rcap);
	}
	ERR_clear_error();
	n = SSL_read(c->ssl, c->rbuf + c->rlen, (int)(c->rcap - c->rlen));
	if (n > 0) {
		c->rlen += (size_t)n;
		c->got_bytes = 1;
		return 0;
	}
	e = SSL_get_error(c->ssl, n);
	if (e == SSL_ERROR_ZERO_RETURN)
		snprintf(err, errlen, "connection closed by server");
	else if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ||
	    (e == SSL_ERROR_SYSCALL &&
		(errno == EAGAIN || errno == EWOULDBLOCK))) {
		/* SO_RCVTIMEO expired (EAGAIN on a blocking socket). */
		snprintf(err, errlen, "timeout");
		c->timed_out = 1;
	} else if (e == SSL_ERROR_SYSCALL)
		snprintf(err, errlen, "read: %s",
		    errno != 0 ? strerror(errno) : "connection closed");
	else
		tls_err("TLS read", err, errlen);
	return -1;
}

/* Ensures n unread bytes are buffered. */
static int
conn_need(struct lg_conn *c, size_t n, char *err, size_t errlen)
{
	while (c->rlen - c->rpos < n)
		if (conn_fill(c, err, errlen) != 0)
			return -1;
	return 0;
}

/* Next CRLF-terminated line (without CRLF), NUL-terminated in place. */
static char *
conn_line(struct lg_conn *c, size_t maxlen, char *err, size_t errlen)
{
	for (;;) {
		char *s = c->rbuf + c->rpos;
		char *nl = c->rlen > c->rpos
		    ? memchr(s, '\n', c->rlen - c->rpos)
		    : NULL;

		if (nl != NULL) {
			*nl = '\0';
			if (nl > s && nl[-1] == '\r')
				nl[-1] = '\0';
			c->rpos = (size_t)(nl - c->rbuf) + 1;
			return s;
		}
		if (c->rlen - c->rpos > maxlen) {
			snprintf(err, errlen, "line too long");
			return NULL;
		}
		if (conn_fill(c, err, errlen) != 0)
			return NULL;
	}
}

static void
body_append(struct lg_resp *r, const char *p, size_t n)
{
	r->body = xrealloc(r->body, r->body_len + n + 1);
	memcpy(r->body + r->body_len, p, n);
	r->body_len += n;
	r->body[r->body_len] = '\0';
}

/* Copies exactly n body bytes from the connection. */
static int
read_exact(
    struct lg_conn *c, struct lg_resp *r, size_t n, char *err, size_t errlen)
{
	while (n > 0) {
		size_t avail, take;

		if (c->rpos == c->rlen && conn_fill(c, err, errlen) != 0)
			return -1;
		avail = c->rlen - c->rpos;
		take = avail < n ? avail : n;
		body_append(r, c->rbuf + c->rpos, take);
		c->rpos += take;
		n -= take;
	}
	return 0;
}

static int
read_chunked(struct lg_conn *c, struct lg_resp *r, char *err, size_t errlen)
{
	for (;;) {
		char *line = conn_line(c, 1024, err, errlen), *end = NULL;
		unsigned long sz;

		if (line == NULL)
			return -1;
		errno = 0;
		sz = strtoul(line, &end, 16);
		if (errno != 0 || end == line ||
		    r->body_len + sz > LG_MAX_BODY) {
			snprintf(err, errlen, "bad chunk size");
			return -1;
		}
		if (sz == 0)
			break;
		if (read_exact(c, r, sz, err, errlen) != 0 ||
		    conn_need(c, 2, err, errlen) != 0)
			return -1;
		c->rpos += 2; /* CRLF after the chunk */
	}
	for (;;) { /* trailers up to the empty line */
		char *line = conn_line(c, LG_MAX_HEADER, err, errlen);

		if (line == NULL)
			return -1;
		if (*line == '\0')
			return 0;
	}
}

static char *
trim(char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	return s;
}

/*
 * Reads one response. *must_close set when the server asked to close or
 * the body ran to EOF.
 */
static int
read_response(struct lg_conn *c, int is_head, struct lg_resp *r,
    int *must_close, char *err, size_t errlen)
{
	char *line;
	long long clen = -1;
	int chunked = 0, minor = 1;

	line = conn_line(c, LG_MAX_HEADER, err, errlen);
	if (line == NULL)
		return -1;
	if (sscanf(line, "HTTP/1.%d %d", &minor, &r->status) != 2 ||
	    r->status < 100 || r->status > 599) {
		snprintf(err, errlen, "bad status line");
		return -1;
	}
	*must_close = minor == 0;
	for (;;) {
		char *colon, *v;

		line = conn_line(c, LG_MAX_HEADER, err, errlen);
		if (line == NULL)
			return -1;
		if (*line == '\0')
			break;
		colon = strchr(line, ':');
		if (colon == NULL)
			continue;
		*colon = '\0';
		v = trim(colon + 1);
		if (strcasecmp(line, "content-length") == 0)
			clen = strtoll(v, NULL, 10);
		else if (strcasecmp(line, "transfer-encoding") == 0)
			chunked = strcasestr(v, "chunked") != NULL;
		else if (strcasecmp(line, "connection") == 0)
			*must_close = strcasestr(v, "close") != NULL;
		else if (strcasecmp(line, "location") == 0 && !r->location)
			r->location = xstrdup(v);
		else if (strcasecmp(line, "replay-nonce") == 0 && !r->nonce)
			r->nonce = xstrdup(v);
		else if (strcasecmp(line, "content-type") == 0 &&
		    !r->content_type)
			r->content_type = xstrdup(v);
	}
	r->body = xstrdup("");
	if (is_head || r->status < 200 || r->status == 204 || r->status == 304)
		return 0;
	if (chunked)
		return read_chunked(c, r, err, errlen);
	if (clen >= 0) {
		if (clen > LG_MAX_BODY) {
			snprintf(err, errlen, "body too large");
			return -1;
		}
		return read_exact(c, r, (size_t)clen, err, errlen);
	}
	*must_close = 1; /* body runs to EOF */
	for (;;) {
		char e2[8];

		if (c->rpos < c->rlen) {
			body_append(r, c->rbuf + c->rpos, c->rlen - c->rpos);
			c->rpos = c->rlen;
		}
		if (r->body_len > LG_MAX_BODY) {
			snprintf(err, errlen, "body too large");
			return -1;
		}
		if (conn_fill(c, e2, sizeof(e2)) != 0)
			return 0;
	}
}

static int
write_all(struct lg_conn *c, const char *p, size_t n, char *err, size_t errlen)
{
	while (n > 0) {
		int w;

		ERR_clear_error();
		w = SSL_write(c->ssl, p, (int)n);
		if (w <= 0) {
			int e = SSL_get_error(c->ssl, w);

			if (e == SSL_ERROR_WANT_WRITE ||
			    e == SSL_ERROR_WANT_READ) {
				snprintf(err, errlen, "timeout");
				c->timed_out = 1;
				return -1;
			}
			tls_err("TLS write", err, errlen);
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * Whether an idle kept-alive connection can carry the next request: nothing
 * is buffered and nothing is readable (a readable idle socket means the
 * server closed it, or sent what no request asked for).
 */
static int
conn_idle_ok(const struct lg_conn *c)
{
	struct pollfd p = {.fd = c->fd, .events = POLLIN};

	return c->rpos == c->rlen && SSL_pending(c->ssl) == 0 &&
	    poll(&p, 1, 0) == 0;
}

int
lg_http_request(struct lg_conn *c, const char *method, const char *url,
    const char *content_type, const char *body, size_t body_len,
    struct lg_resp *resp, char *err, size_t errlen)
{
	struct lg_url u;
	char *req = NULL, *hostport = NULL, *ct = NULL;
	size_t reqlen;
	int rc = -1, attempt, must_close = 0;
	int is_head = strcmp(method, "HEAD") == 0;
	int idempotent = is_head || strcmp(method, "GET") == 0;

	lg_resp_clear(resp);
	if (lg_url_parse(url, &u) != 0) {
		snprintf(err, errlen, "bad URL %.200s", url != NULL ? url : "");
		return -1;
	}
	hostport = strchr(u.host, ':') != NULL
	    ? xasprintf("[%s]:%d", u.host, u.port)
	    : xasprintf("%s:%d", u.host, u.port);
	ct = content_type != NULL
	    ? xasprintf("Content-Type: %s\r\n", content_type)
	    : xstrdup("");
	req = xasprintf("%s %s HTTP/1.1\r\nHost: %s\r\n"
			"User-Agent: anvil-loadgen/" ANVIL_VERSION "\r\n"
			"Accept: */*\r\n%sContent-Length: %zu\r\n\r\n",
	    method, u.path, hostport, ct, body != NULL ? body_len : 0);
	reqlen = strlen(req);
	if (body != NULL && body_len > 0) {
		req = xrealloc(req, reqlen + body_len + 1);
		memcpy(req + reqlen, body, body_len);
		reqlen += body_len;
		req[reqlen] = '\0';
	}
	if (c->ssl != NULL &&
	    ((strcmp(c->host, u.host) != 0 || c->port != u.port) ||
		!conn_idle_ok(c)))
		conn_close(c);
	for (attempt = 0; attempt < 2; attempt++) {
		int reused = c->ssl != NULL, written = 0;

		if (!reused && conn_open(c, &u, err, errlen) != 0)
			goto out;
		c->got_bytes = 0;
		c->timed_out = 0;
		if (c->rpos == c->rlen)
			c->rpos = c->rlen = 0;
		if (write_all(c, req, reqlen, err, errlen) == 0) {
			written = 1;
			if (read_response(c, is_head, resp, &must_close, err,
				errlen) == 0) {
				rc = 0;
				break;
			}
		}
		/*
		 * Again only on a kept-alive connection the server closed
		 * before answering anything, and only when sending it twice
		 * cannot act twice (lg.h); a timeout may mean the request
		 * is being processed.
		 */
		conn_close(c);
		if (!reused || c->got_bytes || c->timed_out ||
		    (written && !idempotent))
			goto out;
		lg_resp_clear(resp);
	}
	if (rc == 0 && must_close)
		conn_close(c);
out:
	if (rc != 0)
		lg_resp_clear(resp);
	free(req);
	free(hostport);
	free(ct);
	lg_url_clear(&u);
	return rc;
}
