/*
 * mgmt.c - the test-mode management listener (plain HTTP, loopback),
 * read-only and named after Pebble's so client test suites feel at home:
 *   GET /roots/<n>                 root of chain n of the first issuer (PEM)
 *   GET /intermediates/<n>         the intermediate of chain n (PEM)
 *                                  (both: Link rel="alternate" to the
 *                                  other chains, as Pebble)
 *   GET /root-keys/<n>             the PEM file management.root_keys[n]
 *   GET /intermediate-keys/<n>     the PEM file management.intermediate_keys[n]
 *   GET /cert-status-by-serial/<s> {"Status","Serial","Certificate",
 *                                   "Reason","RevokedAt"}
 *   GET /faults, POST /faults      the test.faults in force / replace it
 *
 * Keys: the WFE never holds issuer keys. Only a test-mode config names key
 * files here (a throwaway CA made by bootstrap under var/testmode/pki);
 * without them both key paths are 404. Production configs have no
 * management listener at all.
 */
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "wfe/wfe_int.h"

/* Index n from "<n>" (0 allowed). -1 if not a small number. */
static int
index_of(const char *s)
{
	int64_t v = 0;

	if (strcmp(s, "0") == 0)
		return 0;
	if (wfe_parse_id(s, strlen(s), &v) != 0 || v > 1000)
		return -1;
	return (int)v;
}

/* First PEM block of a bundle, malloc'd, or NULL. */
static char *
first_pem(const char *bundle)
{
	const char *end_mark = "-----END CERTIFICATE-----";
	const char *b, *e;

	if (bundle == NULL || (b = strstr(bundle, "-----BEGIN")) == NULL ||
	    (e = strstr(b, end_mark)) == NULL)
		return NULL;
	return xasprintf("%.*s\n", (int)(e + strlen(end_mark) - b), b);
}

static void
reply_pem(struct wfe_req *r, char *pem)
{
	if (pem == NULL) {
		wfe_reply_prob(r, PROB_NOT_FOUND, "no such chain");
		return;
	}
	wfe_reply_pem_chain(r, pem);
}

/*
 * Pebble's discovery of the other chains: one Link: <.../<what>/<i>>;
 * rel="alternate" for every chain i but n, on the URL the client used.
 */
static void
alternate_links(struct wfe_req *r, const char *what, int n, size_t count)
{
	const char *host = MHD_lookup_connection_value(
	    r->conn, MHD_HEADER_KIND, "Host");
	char hostbuf[300];
	size_t i;

	if (host == NULL || host[0] == '\0' || strlen(host) > 255 ||
	    strpbrk(host, " \t\r\n<>\"/") != NULL) {
		snprintf(hostbuf, sizeof(hostbuf), "%s:%lld",
		    r->w->cfg->mgmt_addr, (long long)r->w->cfg->mgmt_port);
		host = hostbuf;
	}
	for (i = 0; i < count; i++)
		if (i != (size_t)n)
			wfe_add_header(r, "Link",
			    "<%s://%s/%s/%zu>;rel=\"alternate\"",
			    r->w->cfg->mgmt_tls ? "https" : "http", host, what,
			    i);
}

static void
mgmt_chain(struct wfe_req *r, const char *tail, int roots)
{
	json_t *all = NULL, *iss, *list;
	int n = index_of(tail);
	const char *pem;

	if (n < 0) {
		wfe_reply_prob(r, PROB_NOT_FOUND, "no such chain");
		return;
	}
	if ((all = wfe_issuers_all(r)) == NULL)
		return;
	iss = json_array_get(json_object_get(all, "issuers"), 0);
	list = json_object_get(iss, roots ? "roots_pem" : "chains_pem");
	pem = json_string_value(json_array_get(list, (size_t)n));
	if (!roots && pem == NULL && n == 0)
		pem = json_string_value(json_object_get(iss, "cert_pem"));
	reply_pem(r, roots ? (pem ? xstrdup(pem) : NULL) : first_pem(pem));
	if (pem != NULL)
		alternate_links(r, roots ? "roots" : "intermediates", n,
		    json_array_size(list));
	json_decref(all);
}

static char *
der_b64_to_pem(const char *b64)
{
	uint8_t *der = NULL;
	size_t len = 0;
	char *out;

	if (b64 == NULL || b64url_decode(b64, strlen(b64), &der, &len) != 0)
		return NULL;
	out = wfe_der_to_pem(der, len);
	free(der);
	return out;
}

static void
mgmt_cert_status(struct wfe_req *r, const char *serial)
{
	json_t *params = NULL, *cert = NULL, *out;
	const char *st;
	char *pem = NULL;

	if (strlen(serial) == 0 || strlen(serial) > 40 ||
	    strspn(serial, "0123456789abcdef") != strlen(serial)) {
		wfe_reply_prob(r, PROB_NOT_FOUND, "no such certificate");
		goto done;
	}
	params = json_pack("{ss}", "serial", serial);
	if (wfe_rpc(r, r->w->sa, RPC_SA_GET_CERTIFICATE, params, &cert) != 0)
		goto done;
	st = json_string_value(json_object_get(cert, "status"));
	pem = der_b64_to_pem(json_string_value(json_object_get(cert, "der")));
	out = json_object();
	json_object_set_new(out, "Status",
	    json_string(st != NULL && strcmp(st, "revoked") == 0 ? "Revoked"
								 : "Valid"));
	json_object_set_new(out, "Serial", json_string(serial));
	json_object_set_new(
	    out, "Certificate", pem ? json_string(pem) : json_null());
	if (json_object_get(cert, "revoked_at") != NULL) {
		json_object_set(
		    out, "RevokedAt", json_object_get(cert, "revoked_at"));
		json_object_set(
		    out, "Reason", json_object_get(cert, "revoked_reason"));
	}
	wfe_reply_json(r, 200, out);
done:
	free(pem);
	json_decref(params);
	json_decref(cert);
}

/* Serves key file n of the list, read at request time. */
static void
mgmt_key(struct wfe_req *r, const char *tail, char *const *files, size_t nfiles)
{
	char *pem = NULL, e[256];
	size_t len = 0;
	int n = index_of(tail);

	if (n < 0 || (size_t)n >= nfiles) {
		wfe_reply_prob(r, PROB_NOT_FOUND,
		    nfiles == 0
			? "no key files configured (management.root_keys / "
			  "intermediate_keys; anvil-wfe never holds issuer "
			  "keys)"
			: "no such key");
		return;
	}
	if (file_read_all(files[n], 1 << 16, &pem, &len, e, sizeof(e)) != 0) {
		log_warn("management: %s", e);
		wfe_reply_prob(r, PROB_SERVER_INTERNAL, "key file unreadable");
		return;
	}
	if (strstr(pem, "-----BEGIN") == NULL ||
	    strstr(pem, "PRIVATE KEY-----") == NULL) {
		free(pem);
		wfe_reply_prob(r, PROB_SERVER_INTERNAL,
		    "key file is not a PEM private key");
		return;
	}
	wfe_reply_raw(r, 200, "application/x-pem-file", pem, len);
}

static void
mgmt_faults(struct wfe_req *r)
{
	json_error_t jerr;
	json_t *f = NULL;
	char err[256];

	if (r->method == WFE_POST) {
		f = json_loadb(r->body ? r->body : "", r->body_len,
		    JSON_DECODE_ANY, &jerr);
		if (f == NULL) {
			wfe_reply_prob(r, PROB_MALFORMED,
			    "body is not JSON: %s", jerr.text);
			goto out;
		}
		if (!json_is_null(f) && !json_is_object(f)) {
			wfe_reply_prob(r, PROB_MALFORMED,
			    "body must be a JSON "
			    "object or null");
			goto out;
		}
		if (!json_is_null(f) &&
		    wfe_faults_check(f, err, sizeof(err)) != 0) {
			wfe_reply_prob(r, PROB_MALFORMED, "%s", err);
			goto out;
		}
		wfe_faults_set(r->w, json_is_null(f) ? NULL : f);
		log_info("management: test.faults replaced");
		json_decref(f);
	}
	f = wfe_faults_get(r->w);
	wfe_reply_json(r, 200, f != NULL ? json_incref(f) : json_object());
out:
	json_decref(f);
}

void
wfe_mgmt_dispatch(struct wfe_req *r)
{
	const char *p = r->path;

	if (strcmp(p, "/faults") == 0) {
		r->route = "mgmt-faults";
		if (r->method == WFE_GET || r->method == WFE_HEAD ||
		    r->method == WFE_POST) {
			mgmt_faults(r);
		} else {
			wfe_reply_prob(
			    r, PROB_METHOD_NOT_ALLOWED, "use GET or POST");
			wfe_add_header(r, "Allow", "GET, HEAD, POST");
		}
		return;
	}
	if (r->method != WFE_GET && r->method != WFE_HEAD) {
		wfe_reply_prob(
		    r, PROB_METHOD_NOT_ALLOWED, "only /faults takes a POST");
		wfe_add_header(r, "Allow", "GET, HEAD");
		return;
	}
	if (strncmp(p, "/roots/", 7) == 0) {
		r->route = "mgmt-roots";
		mgmt_chain(r, p + 7, 1);
	} else if (strncmp(p, "/intermediates/", 15) == 0) {
		r->route = "mgmt-intermediates";
		mgmt_chain(r, p + 15, 0);
	} else if (strncmp(p, "/intermediate-keys/", 19) == 0) {
		r->route = "mgmt-intermediate-keys";
		mgmt_key(r, p + 19, r->w->cfg->mgmt_int_keys,
		    r->w->cfg->nmgmt_int_keys);
	} else if (strncmp(p, "/root-keys/", 11) == 0) {
		r->route = "mgmt-root-keys";
		mgmt_key(r, p + 11, r->w->cfg->mgmt_root_keys,
		    r->w->cfg->nmgmt_root_keys);
	} else if (strncmp(p, "/cert-status-by-serial/", 23) == 0) {
		r->route = "mgmt-cert-status";
		mgmt_cert_status(r, p + 23);
	} else {
		r->route = "mgmt-unknown";
		wfe_reply_prob(r, PROB_NOT_FOUND, "no such resource: %s", p);
	}
}
