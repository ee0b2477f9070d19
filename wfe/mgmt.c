/*
 * mgmt.c - the test-mode management listener (plain HTTP, loopback),
 * read-only and named after Pebble's so client test suites feel at home:
 *   GET /roots/<n>                 root of chain n of the first issuer (PEM)
 *   GET /intermediates/<n>         the intermediate of chain n (PEM)
 *   GET /intermediate-keys/<n>     404: the WFE never holds keys
 *   GET /cert-status-by-serial/<s> {"Status","Serial","Certificate",
 *                                   "Reason","RevokedAt"}
 */
#include <stdlib.h>
#include <string.h>

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
	wfe_reply_raw(r, 200, "application/pem-certificate-chain", pem,
	    strlen(pem));
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
	json_decref(all);
}

static char *
der_b64_to_pem(const char *b64)
{
	uint8_t *der = NULL;
	const unsigned char *p;
	size_t len = 0;
	X509 *x = NULL;
	BIO *bio = NULL;
	char *data = NULL, *out = NULL;
	long n;

	if (b64 == NULL || b64url_decode(b64, strlen(b64), &der, &len) != 0)
		goto done;
	p = der;
	if ((x = d2i_X509(NULL, &p, (long)len)) == NULL ||
	    (bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_X509(bio, x) != 1)
		goto done;
	n = BIO_get_mem_data(bio, &data);
	if (n > 0)
		out = xstrndup(data, (size_t)n);
done:
	BIO_free(bio);
	X509_free(x);
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
	if (wfe_rpc(r, r->w->sa, "sa.get_certificate", params, &cert) != 0)
		goto done;
	st = json_string_value(json_object_get(cert, "status"));
	pem = der_b64_to_pem(json_string_value(json_object_get(cert, "der")));
	out = json_object();
	json_object_set_new(out, "Status", json_string(st != NULL &&
	    strcmp(st, "revoked") == 0 ? "Revoked" : "Valid"));
	json_object_set_new(out, "Serial", json_string(serial));
	json_object_set_new(out, "Certificate", pem ? json_string(pem) :
	    json_null());
	if (json_object_get(cert, "revoked_at") != NULL) {
		json_object_set(out, "RevokedAt",
		    json_object_get(cert, "revoked_at"));
		json_object_set(out, "Reason",
		    json_object_get(cert, "revoked_reason"));
	}
	wfe_reply_json(r, 200, out);
done:
	free(pem);
	json_decref(params);
	json_decref(cert);
}

void
wfe_mgmt_dispatch(struct wfe_req *r)
{
	const char *p = r->path;

	if (r->method != WFE_GET && r->method != WFE_HEAD) {
		wfe_reply_prob(r, PROB_METHOD_NOT_ALLOWED,
		    "the management API is read-only");
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
		wfe_reply_prob(r, PROB_NOT_FOUND, "anvil-wfe never holds issuer "
		    "keys; they stay in anvil-ca");
	} else if (strncmp(p, "/cert-status-by-serial/", 23) == 0) {
		r->route = "mgmt-cert-status";
		mgmt_cert_status(r, p + 23);
	} else {
		r->route = "mgmt-unknown";
		wfe_reply_prob(r, PROB_NOT_FOUND, "no such resource: %s", p);
	}
}
