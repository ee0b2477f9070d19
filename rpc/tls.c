/* tls.c - target addresses, OpenSSL contexts, peer names, process setup. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <event2/thread.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "rpc/rpc.h"
#include "rpc/rpc_int.h"

int
rpc_addr_parse(const char *s, struct rpc_addr *a, char *err, size_t errlen)
{
	const char *hp, *colon;

	memset(a, 0, sizeof(*a));
	if (s == NULL) {
		snprintf(err, errlen, "missing address");
		return -1;
	}
	if (strncmp(s, "unix:", 5) == 0) {
		if (s[5] == '\0' || strlen(s + 5) >= 108) {
			snprintf(
			    err, errlen, "bad unix socket path in \"%s\"", s);
			return -1;
		}
		a->kind = RPC_ADDR_UNIX;
		a->path = xstrdup(s + 5);
		return 0;
	}
	if (strncmp(s, "tcp:", 4) != 0) {
		snprintf(err, errlen,
		    "address \"%s\" must start with unix: "
		    "or tcp:",
		    s);
		return -1;
	}
	hp = s + 4;
	if (hp[0] == '[') {
		colon = strchr(hp, ']');
		if (colon == NULL || colon[1] != ':') {
			snprintf(err, errlen, "bad address \"%s\"", s);
			return -1;
		}
		a->host = xstrndup(hp + 1, (size_t)(colon - hp - 1));
		colon++;
	} else {
		colon = strrchr(hp, ':');
		if (colon == NULL || colon == hp) {
			snprintf(
			    err, errlen, "address \"%s\" needs host:port", s);
			return -1;
		}
		a->host = xstrndup(hp, (size_t)(colon - hp));
	}
	if (colon[1] == '\0' ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
	    atoi(colon + 1) > 65535) {
		snprintf(err, errlen, "bad port in \"%s\"", s);
		rpc_addr_clear(a);
		return -1;
	}
	a->kind = RPC_ADDR_TCP;
	a->port = xstrdup(colon + 1);
	return 0;
}

void
rpc_addr_clear(struct rpc_addr *a)
{
	if (a == NULL)
		return;
	free(a->path);
	free(a->host);
	free(a->port);
	memset(a, 0, sizeof(*a));
}

const char *
rpc_tls_errstr(char *buf, size_t buflen)
{
	unsigned long e, last = 0;

	while ((e = ERR_get_error()) != 0)
		last = e;
	if (last == 0)
		snprintf(buf, buflen, "unknown TLS error");
	else
		ERR_error_string_n(last, buf, buflen);
	return buf;
}

static SSL_CTX *
tls_ctx_common(const SSL_METHOD *meth, const char *cert, const char *key,
    const char *ca, char *err, size_t errlen)
{
	SSL_CTX *ctx = NULL;
	char ebuf[256];

	ERR_clear_error();
	ctx = SSL_CTX_new(meth);
	if (ctx == NULL) {
		snprintf(err, errlen, "SSL_CTX_new: %s",
		    rpc_tls_errstr(ebuf, sizeof(ebuf)));
		goto fail;
	}
	/* RFC 8996 / RFC 9325 (BCP 195): no TLS 1.0/1.1; TLS 1.2 only with
	 * ephemeral ECDH and AEAD suites (TLS 1.3 suites are all AEAD). The
	 * same floor as the WFE's HTTPS listeners (WFE_TLS_PRIORITIES). */
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		snprintf(err, errlen, "cannot require TLS 1.2");
		goto fail;
	}
	if (SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20") != 1) {
		snprintf(err, errlen, "cannot restrict TLS 1.2 to AEAD suites");
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx,
	    SSL_MODE_ENABLE_PARTIAL_WRITE |
		SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (cert == NULL || key == NULL || ca == NULL) {
		snprintf(err, errlen, "tls needs cert, key and ca");
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		snprintf(err, errlen, "tls.cert %s: %s", cert,
		    rpc_tls_errstr(ebuf, sizeof(ebuf)));
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		snprintf(err, errlen, "tls.key %s: %s", key,
		    rpc_tls_errstr(ebuf, sizeof(ebuf)));
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "tls.key %s does not match tls.cert %s",
		    key, cert);
		goto fail;
	}
	if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
		snprintf(err, errlen, "tls.ca %s: %s", ca,
		    rpc_tls_errstr(ebuf, sizeof(ebuf)));
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *
rpc_tls_server_ctx(
    const char *cert, const char *key, const char *ca, char *err, size_t errlen)
{
	SSL_CTX *ctx;
	STACK_OF(X509_NAME) * names;

	ctx = tls_ctx_common(TLS_server_method(), cert, key, ca, err, errlen);
	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_verify(
	    ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	names = SSL_load_client_CA_file(ca);
	if (names != NULL)
		SSL_CTX_set_client_CA_list(ctx, names);
	/* No session resumption: every connection presents its certificate. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	return ctx;
}

SSL_CTX *
rpc_tls_client_ctx(
    const char *cert, const char *key, const char *ca, char *err, size_t errlen)
{
	SSL_CTX *ctx;

	ctx = tls_ctx_common(TLS_client_method(), cert, key, ca, err, errlen);
	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return ctx;
}

char *
rpc_tls_peer_name(SSL *ssl)
{
	X509 *cert = NULL;
	GENERAL_NAMES *sans = NULL;
	char *name = NULL;
	char cn[256];
	int i, n;

	cert = SSL_get1_peer_certificate(ssl);
	if (cert == NULL || SSL_get_verify_result(ssl) != X509_V_OK)
		goto out;
	sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	for (i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
		const unsigned char *d;

		if (gn->type != GEN_DNS)
			continue;
		d = ASN1_STRING_get0_data(gn->d.dNSName);
		n = ASN1_STRING_length(gn->d.dNSName);
		if (n <= 0 || n > 253 || memchr(d, '\0', (size_t)n) != NULL)
			continue;
		name = xstrndup((const char *)d, (size_t)n);
		goto out;
	}
	n = X509_NAME_get_text_by_NID(
	    X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn));
	if (n > 0 && (size_t)n < sizeof(cn) && strlen(cn) == (size_t)n)
		name = xstrdup(cn);
out:
	GENERAL_NAMES_free(sans);
	X509_free(cert);
	return name;
}

void
rpc_ignore_sigpipe(void)
{
	struct sigaction sa;

	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_IGN;
		sigemptyset(&sa.sa_mask);
		(void)sigaction(SIGPIPE, &sa, NULL);
	}
}

static pthread_once_t rpc_threads_once = PTHREAD_ONCE_INIT;
static int rpc_threads_rc;

static void
rpc_threads_do_init(void)
{
	rpc_threads_rc = evthread_use_pthreads();
}

int
rpc_threads_init(void)
{
	if (pthread_once(&rpc_threads_once, rpc_threads_do_init) != 0)
		return -1;
	return rpc_threads_rc;
}

int
rpc_init(void)
{
	return rpc_threads_init();
}

int
rpc_req_remaining_ms(const struct rpc_req *req, int cap_ms)
{
	int64_t left;

	if (req == NULL || req->deadline_ms == 0)
		return cap_ms > 0 ? cap_ms : 0;
	left = req->deadline_ms - time_now_ms();
	if (left < 1)
		return 1;
	if (cap_ms > 0 && left > cap_ms)
		return cap_ms;
	return left > INT32_MAX ? INT32_MAX : (int)left;
}

/* See rpc_int.h. */
int
rpc_unix_socket(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	snprintf(sun->sun_path, sizeof(sun->sun_path), "%s", path);
	return socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

/* See rpc_int.h. */
int
rpc_resolve(const char *host, const char *port, struct addrinfo **res,
    char *err, size_t errlen)
{
	struct addrinfo hints;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	/* Blocking lookup: targets are addresses or /etc/hosts names in
	 * practice. */
	rc = getaddrinfo(host, port, &hints, res);
	if (rc != 0) {
		snprintf(err, errlen, "resolve %s: %s", host, gai_strerror(rc));
		return -1;
	}
	return 0;
}

/* See rpc_int.h. */
int
rpc_tcp_socket(const struct addrinfo *ai)
{
	int one = 1, fd;

	fd = socket(ai->ai_family,
	    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0)
		return -1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	rpc_tcp_keepalive(fd);
	return fd;
}

void
rpc_tcp_keepalive(int fd)
{
	int on = 1, idle = 30, intvl = 10, cnt = 3;

	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}
