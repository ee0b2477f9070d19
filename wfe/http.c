/*
 * http.c - libmicrohttpd glue: per-request context, body reading with a cap,
 * the headers every response carries, metrics per request.
 *
 * Threading (docs/scaling.md "WFE"): MHD's internal thread pool of
 * cfg->threads epoll threads; handlers run on those threads and make
 * blocking rpc_call()s.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "rpc/rpc.h"
#include "wfe/wfe_int.h"

/* Largest declared body we read (and discard) to answer 413 politely. */
#define WFE_DRAIN_MAX (8ULL * 1024 * 1024)

static struct wfe_req *
req_new(struct wfe *w, const char *uri)
{
	struct wfe_req *r = xcalloc(1, sizeof(*r));
	uint64_t n;

	r->w = w;
	r->start_ms = time_mono_ms();
	r->uri = xstrdup(uri ? uri : "/");
	pthread_mutex_lock(&w->lock);
	n = ++w->rid_next;
	pthread_mutex_unlock(&w->lock);
	snprintf(r->rid, sizeof(r->rid), "%s-%llx", w->cfg->nonce_prefix,
	    (unsigned long long)n);
	r->route = "unknown";
	r->account_id = -1;
	return r;
}

static void
req_free(struct wfe_req *r)
{
	size_t i;

	if (r == NULL)
		return;
	free(r->uri);
	free(r->path);
	free(r->base);
	free(r->seen_base);
	free(r->client_ip);
	free(r->body);
	jws_free(r->jws);
	jwk_free(r->acct_key);
	json_decref(r->account);
	free(r->out);
	for (i = 0; i < r->nhdrs; i++) {
		free(r->hdrs[i].name);
		free(r->hdrs[i].value);
	}
	free(r);
}

/* MHD calls this first, with the raw request-target: the context starts
 * here so that the query string is kept for the `url` check. */
static void *
uri_log_cb(void *cls, const char *uri, struct MHD_Connection *con)
{
	(void)con;
	return req_new(cls, uri);
}

/*
 * access_log: one line per answered request, for client developers: peer,
 * listener, method, request-target, status, body bytes, route, time.
 */
static void
access_log_line(
    const struct wfe_req *r, const char *m, enum MHD_RequestTerminationCode toe)
{
	log_msg(LOG_LEVEL_INFO, r->rid,
	    "access %s %s \"%s %.200s\" %d %zu route=%s ms=%lld%s",
	    r->client_ip ? r->client_ip : "-",
	    r->pki    ? "pki"
	    : r->mgmt ? "mgmt"
		      : "acme",
	    m, r->uri ? r->uri : "-", r->status, r->out_len, r->route,
	    (long long)(time_mono_ms() - r->start_ms),
	    toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? ""
						       : " (not completed)");
}

static void
completed_cb(void *cls, struct MHD_Connection *con, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct wfe *w = cls;
	struct wfe_req *r = *con_cls;
	char labels[256], ep[64];
	const char *m;

	(void)con;
	(void)toe;
	if (r == NULL)
		return;
	if (r->done) {
		m = r->method == WFE_GET    ? "GET"
		    : r->method == WFE_HEAD ? "HEAD"
		    : r->method == WFE_POST ? "POST"
					    : "OTHER";
		if (w->cfg->access_log)
			access_log_line(r, m, toe);
		metrics_label_escape(r->route, ep, sizeof(ep));
		snprintf(labels, sizeof(labels),
		    "endpoint=\"%s\",method=\"%s\",status=\"%d\"", ep, m,
		    r->status);
		metrics_counter_add(w->metrics, "anvil_wfe_requests_total",
		    "HTTP requests by endpoint, method and status", labels, 1);
		snprintf(labels, sizeof(labels), "endpoint=\"%s\"", ep);
		metrics_histogram_observe(w->metrics,
		    "anvil_wfe_request_duration_seconds",
		    "Request latency by endpoint", labels,
		    (double)(time_mono_ms() - r->start_ms) / 1000.0);
	}
	req_free(r);
	*con_cls = NULL;
}

static enum wfe_method
method_of(const char *m)
{
	if (strcmp(m, "GET") == 0)
		return WFE_GET;
	if (strcmp(m, "HEAD") == 0)
		return WFE_HEAD;
	if (strcmp(m, "POST") == 0)
		return WFE_POST;
	return WFE_OTHER;
}

static void
add_hdr(struct MHD_Response *resp, const char *name, const char *value)
{
	if (MHD_add_response_header(resp, name, value) != MHD_YES)
		log_bug("cannot add response header %s", name);
}

static enum MHD_Result
send_reply(struct wfe_req *r)
{
	struct MHD_Response *resp = NULL;
	enum MHD_Result ret;
	int have_cache = 0;
	size_t i;
	char *nonce = NULL;

	if (!r->mgmt && !r->pki &&
	    (r->want_nonce || r->status >= 400 || r->method == WFE_POST)) {
		nonce = wfe_nonce_issue(r->w->nonces, time_now_ms());
		metrics_counter_add(r->w->metrics, "anvil_wfe_nonces_total",
		    "Nonces by result", "result=\"issued\"", 1);
	}
	resp = MHD_create_response_from_buffer(
	    r->out_len, r->out, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(nonce);
		return MHD_NO;
	}
	r->out = NULL;
	if (r->ctype != NULL && (r->out_len > 0 || r->status != 204))
		add_hdr(resp, "Content-Type", r->ctype);
	if (nonce != NULL)
		add_hdr(resp, "Replay-Nonce", nonce);
	for (i = 0; i < r->nhdrs; i++) {
		if (strcmp(r->hdrs[i].name, "Cache-Control") == 0)
			have_cache = 1;
		add_hdr(resp, r->hdrs[i].name, r->hdrs[i].value);
	}
	if (!have_cache)
		add_hdr(resp, "Cache-Control", "public, max-age=0, no-cache");
	/* RFC 8555 §6.1: servers meant for browser-based clients "SHOULD set
	 * the Access-Control-Allow-Origin header field to the value "*"". */
	if (!r->mgmt && !r->pki)
		add_hdr(resp, "Access-Control-Allow-Origin", "*");
	if (!r->mgmt && !r->pki && !r->no_index_link && r->base != NULL) {
		char *link = xasprintf("<%s/directory>;rel=\"index\"", r->base);
		add_hdr(resp, "Link", link);
		free(link);
	}
	ret = MHD_queue_response(r->conn, (unsigned int)r->status, resp);
	MHD_destroy_response(resp);
	free(nonce);
	return ret;
}

/*
 * Before the body is read: a declared Content-Length beyond what we are
 * willing even to read and discard (WFE_DRAIN_MAX) is answered at once (MHD
 * then closes the connection without reading the body; a client still
 * sending sees the connection close). A body between max_body and
 * WFE_DRAIN_MAX is read, discarded and answered 413, so ordinary clients
 * get to read the problem. MHD_YES to go on reading.
 */
static enum MHD_Result
early_reject(struct wfe_req *r)
{
	const char *cl;
	char *end = NULL;
	unsigned long long n;
	struct problem *p;

	cl = MHD_lookup_connection_value(
	    r->conn, MHD_HEADER_KIND, "Content-Length");
	if (cl == NULL)
		return MHD_YES;
	n = strtoull(cl, &end, 10);
	if (end == cl || n <= WFE_DRAIN_MAX)
		return MHD_YES;
	p = problem_new(PROB_MALFORMED, "request body larger than %lld bytes",
	    (long long)r->w->cfg->max_body);
	p->status = 413;
	r->route = "too-large";
	wfe_reply_problem(r, p);
	return send_reply(r);
}

/*
 * The client's address: the last entry of cfg->client_ip_header (what the
 * trusted terminator appended) when configured and present, else the TCP
 * peer. malloc'd, or NULL if unknown.
 */
static char *
client_ip_of(struct wfe *w, struct MHD_Connection *con)
{
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa;
	const char *h, *last;
	char buf[INET6_ADDRSTRLEN];
	size_t n;

	if (w->cfg->client_ip_header != NULL &&
	    (h = MHD_lookup_connection_value(
		 con, MHD_HEADER_KIND, w->cfg->client_ip_header)) != NULL) {
		last = strrchr(h, ',');
		last = last != NULL ? last + 1 : h;
		last += strspn(last, " \t");
		n = strcspn(last, " \t");
		if (n > 0 && n < sizeof(buf)) {
			memcpy(buf, last, n);
			buf[n] = '\0';
			return xstrdup(buf);
		}
	}
	ci = MHD_get_connection_info(con, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || (sa = ci->client_addr) == NULL)
		return NULL;
	if (sa->sa_family == AF_INET &&
	    inet_ntop(AF_INET,
		&((const struct sockaddr_in *)(const void *)sa)->sin_addr, buf,
		sizeof(buf)) != NULL)
		return xstrdup(buf);
	if (sa->sa_family == AF_INET6 &&
	    inet_ntop(AF_INET6,
		&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
		buf, sizeof(buf)) != NULL)
		return xstrdup(buf);
	return NULL;
}

/*
 * libmicrohttpd's own messages. Its TLS handshake errors carry no peer and
 * come once per bad connection, so they go to debug; notify_conn_cb logs
 * them with the peer, rate-limited.
 */
static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	log_msg(strstr(msg, "handshake") != NULL ? LOG_LEVEL_DEBUG
						 : LOG_LEVEL_INFO,
	    NULL, "%s", msg);
}

/* Per TLS connection: the peer and whether a request arrived. */
struct conn_ctx {
	char peer[INET6_ADDRSTRLEN + 8];
	unsigned requests;
};

static void
peer_of(struct MHD_Connection *con, char *buf, size_t buflen)
{
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa;
	char host[INET6_ADDRSTRLEN];
	socklen_t sl;

	snprintf(buf, buflen, "?");
	ci = MHD_get_connection_info(con, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || (sa = ci->client_addr) == NULL)
		return;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)sa;
		sl = sizeof(*s4);
		if (inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host)))
			snprintf(buf, buflen, "%s:%u", host,
			    (unsigned)ntohs(s4->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;
		sl = sizeof(*s6);
		if (inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host)))
			snprintf(buf, buflen, "[%s]:%u", host,
			    (unsigned)ntohs(s6->sin6_port));
	}
	(void)sl;
}

/*
 * A TLS connection that closed before its first request: the handshake
 * failed (plain HTTP on the HTTPS port, an untrusted certificate, no
 * common cipher) or the client gave up. Counted always; logged with the
 * peer at info at most once a second, with how many were not logged.
 */
static void
tls_failure(struct wfe *w, const char *peer)
{
	int64_t now = time_mono_ms();
	uint64_t skipped = 0;
	int say = 0;

	metrics_counter_add(w->metrics, "anvil_wfe_tls_handshake_failures_total",
	    "TLS connections closed before a request (failed handshakes)",
	    NULL, 1);
	pthread_mutex_lock(&w->lock);
	if (w->tls_fail_logged_ms == 0 || now - w->tls_fail_logged_ms >= 1000) {
		say = 1;
		skipped = w->tls_fail_suppressed;
		w->tls_fail_suppressed = 0;
		w->tls_fail_logged_ms = now;
	} else {
		w->tls_fail_suppressed++;
	}
	pthread_mutex_unlock(&w->lock);
	if (say)
		log_msg(LOG_LEVEL_INFO, NULL,
		    "TLS handshake with %s failed or the connection closed "
		    "before a request (%llu more not logged in the last "
		    "second)",
		    peer, (unsigned long long)skipped);
}

static void
notify_conn_cb(void *cls, struct MHD_Connection *con, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
	struct conn_ctx *c;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		c = xcalloc(1, sizeof(*c));
		peer_of(con, c->peer, sizeof(c->peer));
		*socket_context = c;
		return;
	}
	c = *socket_context;
	if (c == NULL)
		return;
	if (c->requests == 0)
		tls_failure(cls, c->peer);
	free(c);
	*socket_context = NULL;
}

/* MHD's access handler of every listener; cls is its struct wfe_listener. */
static enum MHD_Result
access_cb(void *cls, struct MHD_Connection *con, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	const struct wfe_listener *l = cls;
	struct wfe *w = l->w;
	enum wfe_listener_kind kind = l->kind;
	struct wfe_req *r = *con_cls;
	const char *host, *proto = NULL;

	(void)version;

	if (r == NULL) {
		r = req_new(w, url);
		*con_cls = r;
	}
	if (r->conn == NULL) {
		/* First call: headers are in. */
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
		    con, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

		/* socket_context is set on the TLS ACME listener only */
		if (ci != NULL && ci->socket_context != NULL)
			((struct conn_ctx *)ci->socket_context)->requests++;
		r->conn = con;
		r->mgmt = kind == WFE_L_MGMT;
		r->pki = kind == WFE_L_PKI;
		r->method = method_of(method);
		r->path = xstrdup(url);
		host =
		    MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Host");
		if (w->cfg->trusted_proxy_header != NULL)
			proto = MHD_lookup_connection_value(
			    con, MHD_HEADER_KIND, w->cfg->trusted_proxy_header);
		wfe_url_bases(w->cfg, host, proto, &r->seen_base, &r->base);
		r->client_ip = client_ip_of(w, con);
		return early_reject(r);
	}
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;

		if (!r->body_too_large &&
		    r->body_len + n <= (size_t)w->cfg->max_body) {
			r->body = xrealloc(r->body, r->body_len + n + 1);
			memcpy(r->body + r->body_len, upload_data, n);
			r->body_len += n;
			r->body[r->body_len] = '\0';
		} else {
			r->body_too_large = 1;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (r->done)
		return MHD_YES; /* already answered */
	if (r->body_too_large) {
		struct problem *p = problem_new(PROB_MALFORMED,
		    "request body larger than %lld bytes",
		    (long long)w->cfg->max_body);
		p->status = 413;
		wfe_reply_problem(r, p);
	} else if (kind == WFE_L_MGMT) {
		wfe_mgmt_dispatch(r);
	} else if (kind == WFE_L_PKI) {
		wfe_pki_dispatch(r);
	} else {
		wfe_dispatch(r);
	}
	return send_reply(r);
}

/* Fills ss from an IP literal and port; sets MHD_USE_IPv6 in *flags. */
static int
sock_addr(const char *addr, int64_t port, struct sockaddr_storage *ss,
    unsigned int *flags)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*flags |= MHD_USE_IPv6;
		return 0;
	}
	return -1;
}

/* What differs between the listeners; addr is borrowed from the config. */
struct listen_spec {
	const char *section; /* config section, named in errors */
	const char *addr;
	int64_t port;       /* <= 0: the listener is not configured */
	int tls;            /* HTTPS with tls.cert/tls.key */
	unsigned int threads;
	unsigned int conn_limit; /* 0: libmicrohttpd's default */
	unsigned int timeout_s;
};

/*
 * The ACME listener takes its sizes from the config. The management
 * listener (test mode; Pebble's is HTTPS with the ACME listener's cert when
 * management.tls) and the plain-HTTP OCSP/CRL/issuer listener (RFC 5280 §8:
 * "CAs SHOULD NOT include URIs that specify https ... in extensions"; the
 * data is signed, so relying parties that do not trust the TLS root can
 * fetch it) have their own small thread pools, so that a burst on them does
 * not take the ACME listener's threads.
 */
static void
listen_spec_of(
    const struct wfe *w, enum wfe_listener_kind kind, struct listen_spec *s)
{
	const struct wfe_config *cfg = w->cfg;

	memset(s, 0, sizeof(*s));
	s->threads = 2;
	s->timeout_s = 30;
	switch (kind) {
	case WFE_L_ACME:
		s->section = "listen";
		s->addr = cfg->listen_addr;
		s->port = cfg->listen_port;
		s->tls = w->tls_cert_pem != NULL;
		s->threads = (unsigned int)cfg->threads;
		s->conn_limit = (unsigned int)cfg->max_connections;
		s->timeout_s =
		    (unsigned int)((cfg->request_timeout_ms + 999) / 1000);
		break;
	case WFE_L_MGMT:
		s->section = "management";
		s->addr = cfg->mgmt_addr;
		s->port = cfg->mgmt_port;
		s->tls = cfg->mgmt_tls;
		break;
	case WFE_L_PKI:
		s->section = "pki";
		s->addr = cfg->pki_addr;
		s->port = cfg->pki_port;
		break;
	}
}

/*
 * Starts the listener of this kind as w->listeners[kind] (owned by w, freed
 * by wfe_stop). 0 or -1 with err naming the config key.
 */
static int
listener_start(struct wfe *w, enum wfe_listener_kind kind,
    const struct listen_spec *s, char *err, size_t errlen)
{
	struct wfe_listener *l = &w->listeners[kind];
	struct sockaddr_storage ss;
	unsigned int flags =
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
	struct MHD_OptionItem opt[6];
	size_t n = 0;

	if (sock_addr(s->addr, s->port, &ss, &flags) != 0) {
		snprintf(err, errlen, "%s.addr: not an IP address: %s",
		    s->section, s->addr);
		return -1;
	}
	if (s->tls && w->tls_cert_pem == NULL) {
		snprintf(err, errlen, "%s.tls needs tls.cert/tls.key",
		    s->section);
		return -1;
	}
	if (s->tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
		snprintf(err, errlen, "libmicrohttpd was built without TLS");
		return -1;
	}
	if (s->conn_limit > 0)
		opt[n++] = (struct MHD_OptionItem){
		    MHD_OPTION_CONNECTION_LIMIT, s->conn_limit, NULL};
	if (s->tls) {
		flags |= MHD_USE_TLS;
		opt[n++] = (struct MHD_OptionItem){
		    MHD_OPTION_HTTPS_MEM_KEY, 0, w->tls_key_pem};
		opt[n++] = (struct MHD_OptionItem){
		    MHD_OPTION_HTTPS_MEM_CERT, 0, w->tls_cert_pem};
		opt[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES,
		    0, (void *)w->cfg->tls_priorities};
	}
	if (s->tls && kind == WFE_L_ACME) /* logs failed handshakes */
		opt[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION,
		    (intptr_t)notify_conn_cb, w};
	opt[n] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
	l->w = w;
	l->kind = kind;
	l->mhd = MHD_start_daemon(flags, 0, NULL, NULL, access_cb, l,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR,
	    (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE, s->threads,
	    MHD_OPTION_CONNECTION_TIMEOUT, s->timeout_s,
	    MHD_OPTION_URI_LOG_CALLBACK, uri_log_cb, w,
	    MHD_OPTION_NOTIFY_COMPLETED, completed_cb, w, MHD_OPTION_ARRAY, opt,
	    MHD_OPTION_END);
	if (l->mhd == NULL) {
		snprintf(err, errlen, "cannot listen on %s:%lld (in use?%s)",
		    s->addr, (long long)s->port,
		    s->tls ? " or tls.priorities refused by GnuTLS: see the log"
			   : "");
		return -1;
	}
	return 0;
}

int
wfe_start(struct wfe *w, char *err, size_t errlen)
{
	const struct wfe_config *cfg = w->cfg;
	struct listen_spec s;

	listen_spec_of(w, WFE_L_ACME, &s);
	if (listener_start(w, WFE_L_ACME, &s, err, errlen) != 0)
		return -1;
	log_info("listening on %s://%s:%lld (%lld threads, %lld connections)",
	    s.tls ? "https" : "http", s.addr, (long long)s.port,
	    (long long)cfg->threads, (long long)cfg->max_connections);
	listen_spec_of(w, WFE_L_MGMT, &s);
	if (s.port > 0) {
		if (listener_start(w, WFE_L_MGMT, &s, err, errlen) != 0)
			return -1;
		log_info("management listener on %s://%s:%lld (test mode)",
		    s.tls ? "https" : "http", s.addr, (long long)s.port);
	}
	listen_spec_of(w, WFE_L_PKI, &s);
	if (s.port > 0) {
		if (listener_start(w, WFE_L_PKI, &s, err, errlen) != 0)
			return -1;
		log_info("OCSP/CRL/issuer listener on http://%s:%lld", s.addr,
		    (long long)s.port);
	}
	return 0;
}

void
wfe_stop(struct wfe *w)
{
	size_t i;

	if (w == NULL)
		return;
	/* in the reverse order of wfe_start */
	for (i = WFE_LISTENERS; i-- > 0;) {
		if (w->listeners[i].mhd != NULL)
			MHD_stop_daemon(w->listeners[i].mhd);
		w->listeners[i].mhd = NULL;
	}
}
