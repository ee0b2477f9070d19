/*
 * http01.c - http-01 (RFC 8555 §8.3): GET the key authorization over
 * plain HTTP, following at most 10 redirects (301/302/307/308) to http or
 * https on the allowed ports, each hop re-resolved and recorded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "va/va_int.h"

#define MAX_REDIRECTS 10

static void hop_start(struct va_job *j);
static void connect_next(struct va_job *j);

/* Printable rendering of up to 128 bytes of an untrusted body. */
static void
printable(const unsigned char *s, size_t n, char *out, size_t outlen)
{
	size_t i, o = 0;

	for (i = 0; i < n && o + 5 < outlen; i++) {
		if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\')
			out[o++] = (char)s[i];
		else
			o += (size_t)snprintf(
			    out + o, outlen - o, "\\x%02x", s[i]);
	}
	out[o] = '\0';
}

void
va_http01_start(struct va_job *j)
{
	char err[200];
	char *u;
	int v6 = j->itype == IDENT_IP && j->ip_family == AF_INET6;

	u = xasprintf("http://%s%s%s:%d/.well-known/acme-challenge/%s",
	    v6 ? "[" : "", j->ident, v6 ? "]" : "",
	    (int)j->va->cfg->http01_port, j->token);
	if (va_url_parse(u, NULL, &j->url, err, sizeof(err)) != 0) {
		va_job_finish(j,
		    problem_new(PROB_MALFORMED,
			"cannot build the "
			"http-01 URL: %s",
			err));
		free(u);
		return;
	}
	free(u);
	hop_start(j);
}

static void
hop_start(struct va_job *j)
{
	char *u = va_url_string(&j->url);
	json_t *hop, *resolvers;
	size_t i;

	for (i = 0; i < sizeof(j->seen) / sizeof(j->seen[0]); i++) {
		if (j->seen[i] != NULL && strcmp(j->seen[i], u) == 0) {
			va_job_finish(j,
			    problem_new(PROB_UNAUTHORIZED,
				"Redirect loop detected: %s was already "
				"visited "
				"during this validation",
				u));
			free(u);
			return;
		}
		if (j->seen[i] == NULL) {
			j->seen[i] = xstrdup(u);
			break;
		}
	}
	resolvers = json_array();
	for (i = 0; i < j->va->cfg->n_dns_resolvers; i++)
		json_array_append_new(
		    resolvers, json_string(j->va->cfg->dns_resolvers[i]));
	hop = json_pack("{s:s,s:s,s:i,s:[],s:o}", "url", u, "hostname",
	    j->url.host, "port", j->url.port, "addresses_resolved",
	    "resolver_addrs", resolvers);
	json_array_append_new(j->record, hop);
	j->hop = hop;
	free(u);
	va_job_resolve(j, j->url.host, connect_next);
}

static char *
build_request(struct va_job *j)
{
	const struct va_url *u = &j->url;
	int v6 = u->host_is_ip && u->family == AF_INET6;
	char port[16] = "";

	if (u->port != (u->https ? 443 : 80))
		snprintf(port, sizeof(port), ":%d", u->port);
	return xasprintf(
	    "GET %s HTTP/1.1\r\nHost: %s%s%s%s\r\n"
	    "User-Agent: %s\r\nAccept: */*\r\nConnection: close\r\n\r\n",
	    u->path, v6 ? "[" : "", u->host, v6 ? "]" : "", port,
	    j->va->cfg->user_agent);
}

static void http_cb(
    void *arg, struct va_conn *c, enum va_conn_err e, const char *msg);

static void
connect_failed(struct va_job *j, int sys_errno, const char *msg)
{
	char *u = va_url_string(&j->url);

	va_job_conn_failed(
	    j, sys_errno, msg, connect_next, u, j->url.port, "");
	free(u);
}

static void
connect_next(struct va_job *j)
{
	char err[200];
	char *req = build_request(j);
	int rc;

	rc = va_job_dial(j, j->url.port, j->url.https,
	    j->url.host_is_ip ? NULL : j->url.host, NULL, req, 0, http_cb, err,
	    sizeof(err));
	free(req);
	if (rc != 0)
		connect_failed(j, 0, err);
}

static int
port_allowed(const struct va_config *cfg, const struct va_url *u)
{
	if (u->https)
		return u->port == cfg->https_port;
	return u->port == cfg->http_port_redirect ||
	    u->port == cfg->http01_port;
}

static void
follow_redirect(struct va_job *j, const char *location)
{
	struct va_url next;
	char err[200];
	char *from = va_url_string(&j->url), *to = NULL;

	if (j->redirects >= MAX_REDIRECTS) {
		va_job_finish(j,
		    problem_new(PROB_UNAUTHORIZED,
			"Too many "
			"redirects: more than %d, the last from %s",
			MAX_REDIRECTS, from));
		goto out;
	}
	if (va_url_parse(location, &j->url, &next, err, sizeof(err)) != 0) {
		va_job_finish(j,
		    problem_new(PROB_UNAUTHORIZED,
			"Invalid "
			"redirect from %s to \"%.200s\": %s",
			from, location, err));
		goto out;
	}
	to = va_url_string(&next);
	if (!port_allowed(j->va->cfg, &next)) {
		va_job_finish(j,
		    problem_new(PROB_UNAUTHORIZED,
			"Redirect from "
			"%s to %s is not allowed: only port %lld (or %lld) for "
			"http and %lld for https may be used",
			from, to, (long long)j->va->cfg->http_port_redirect,
			(long long)j->va->cfg->http01_port,
			(long long)j->va->cfg->https_port));
		va_url_clear(&next);
		goto out;
	}
	j->redirects++;
	va_url_clear(&j->url);
	j->url = next;
	hop_start(j);
out:
	free(from);
	free(to);
}

static void
check_body(struct va_job *j, const struct va_http_resp *r, const char *url)
{
	size_t n = r->body_len;
	char got[VA_HTTP_MAX_BODY * 4 + 8];

	if (r->body_too_large) {
		va_job_finish(j,
		    problem_new(PROB_UNAUTHORIZED,
			"Invalid "
			"response from %s: the body is larger than %d bytes; "
			"it "
			"must hold only the key authorization",
			url, VA_HTTP_MAX_BODY));
		return;
	}
	while (n > 0 &&
	    (r->body[n - 1] == ' ' || r->body[n - 1] == '\t' ||
		r->body[n - 1] == '\r' || r->body[n - 1] == '\n'))
		n--;
	if (n == strlen(j->keyauth) && memcmp(r->body, j->keyauth, n) == 0) {
		va_job_validated(j);
		return;
	}
	printable(r->body, n, got, sizeof(got));
	va_job_finish(j,
	    problem_new(PROB_INCORRECT_RESPONSE,
		"The key "
		"authorization file from the server did not match this "
		"challenge. Expected \"%s\" (got \"%s\") at %s",
		j->keyauth, got, url));
}

static void
http_cb(void *arg, struct va_conn *c, enum va_conn_err e, const char *msg)
{
	struct va_job *j = arg;
	const struct va_http_resp *r = &c->resp;
	char *url = va_url_string(&j->url);
	int st = r->status;

	j->conn = NULL;
	switch (e) {
	case VA_CONN_ECONNECT:
		connect_failed(j, c->sys_errno, msg);
		break;
	case VA_CONN_ETLS:
		va_job_finish(j,
		    problem_new(PROB_TLS,
			"TLS error fetching "
			"%s: %s",
			url, msg));
		break;
	case VA_CONN_EIO:
		if (va_job_retry_conn(j, c->sys_errno, msg, connect_next))
			break;
		va_job_finish(j,
		    problem_new(PROB_CONNECTION,
			"Error getting "
			"validation data from %s: %s",
			url, msg));
		break;
	case VA_CONN_EPROTO:
	case VA_CONN__MAX:
		va_job_finish(j,
		    problem_new(PROB_UNAUTHORIZED,
			"Invalid HTTP "
			"response from %s: %s",
			url, msg));
		break;
	case VA_CONN_OK:
		if (st == 301 || st == 302 || st == 307 || st == 308) {
			if (r->location == NULL)
				va_job_finish(j,
				    problem_new(PROB_UNAUTHORIZED,
					"Redirect (HTTP %d) from %s without a "
					"Location header",
					st, url));
			else
				follow_redirect(j, r->location);
		} else if (st != 200) {
			va_job_finish(j,
			    problem_new(PROB_UNAUTHORIZED,
				"Invalid response from %s: HTTP %d (expected "
				"200%s)",
				url, st,
				st >= 300 && st < 400
				    ? "; only 301, 302, "
				      "307 and 308 redirects are followed"
				    : ""));
		} else {
			check_body(j, r, url);
		}
		break;
	}
	va_conn_free(c);
	free(url);
}
