/*
 * h_cert.c - certificate download (RFC 8555 §7.4.2) and revocation (§7.6).
 */
#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "wfe/wfe_int.h"

/* See wfe_int.h. */
char *
wfe_der_to_pem(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	long n = 0;
	int tag = 0, cls = 0;

	/*
	 * One DER SEQUENCE of exactly len bytes, written by the CA: checked,
	 * not parsed (OpenSSL 3.0 decodes the public key of every X509 it
	 * parses, a tenth of the WFE's CPU when this parsed).
	 */
	if (len < 2 || len > INT_MAX ||
	    (ASN1_get_object(&p, &n, &tag, &cls, (long)len) & 0x80) != 0 ||
	    tag != V_ASN1_SEQUENCE || cls != V_ASN1_UNIVERSAL ||
	    p + n != der + len)
		return NULL;
	return pem_encode("CERTIFICATE", der, len);
}

static int
serial_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > 40)
		return 0;
	for (i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]) ||
		    isupper((unsigned char)s[i]))
			return 0;
	return 1;
}

/* See wfe_int.h. */
int
wfe_cert_leaf(struct wfe_req *r, const json_t *cert, char **leaf, json_t **iss)
{
	const char *b64 = json_string_value(json_object_get(cert, "der"));
	const char *issuer =
	    json_string_value(json_object_get(cert, "issuer_id"));
	uint8_t *der = NULL;
	size_t derlen = 0;

	*iss = NULL;
	*leaf = NULL;
	if (b64 != NULL && issuer != NULL &&
	    b64url_decode(b64, strlen(b64), &der, &derlen) == 0)
		*leaf = wfe_der_to_pem(der, derlen);
	free(der);
	if (*leaf == NULL) {
		wfe_reply_prob(
		    r, PROB_SERVER_INTERNAL, "stored certificate unusable");
		return -1;
	}
	if ((*iss = wfe_issuer_find(r, issuer)) == NULL) {
		free(*leaf);
		*leaf = NULL;
		return -1;
	}
	return 0;
}

/* See wfe_int.h. */
int
wfe_cert_read_check(struct wfe_req *r)
{
	if (r->method != WFE_POST)
		return 0;
	return wfe_post_as_get_only(
	    r, "a certificate is read with POST-as-GET (empty payload)");
}

/* See wfe_int.h. */
int
wfe_cert_owner_check(struct wfe_req *r, const json_t *obj)
{
	if (r->method == WFE_POST &&
	    json_integer_value(json_object_get(obj, "account_id")) !=
		r->account_id) {
		wfe_reply_prob(r, PROB_NOT_FOUND, "no such certificate");
		return -1;
	}
	return 0;
}

/* See wfe_int.h. */
void
wfe_reply_pem_chain(struct wfe_req *r, char *pem)
{
	wfe_reply_raw(
	    r, 200, "application/pem-certificate-chain", pem, strlen(pem));
}

void
wfe_h_cert(struct wfe_req *r, const char *tail)
{
	const char *slash = strchr(tail, '/');
	size_t slen = slash ? (size_t)(slash - tail) : strlen(tail);
	json_t *params = NULL, *cert = NULL, *iss = NULL, *chains;
	char *serial = NULL, *leaf = NULL, *body = NULL;
	const char *chain;
	size_t nchains, i;
	int64_t idx = 0;

	if (!serial_ok(tail, slen) ||
	    (slash != NULL && !(strcmp(slash, "/0") == 0) &&
		wfe_parse_id(slash + 1, strlen(slash + 1), &idx) != 0)) {
		wfe_reply_prob(r, PROB_NOT_FOUND, "no such certificate");
		goto out;
	}
	if (r->method != WFE_POST && !r->w->cfg->allow_cert_get) {
		wfe_reply_prob(r, PROB_METHOD_NOT_ALLOWED,
		    "certificates are read with POST-as-GET");
		wfe_add_header(r, "Allow", "POST");
		goto out;
	}
	if (wfe_cert_read_check(r) != 0)
		goto out;
	serial = xstrndup(tail, slen);
	params = json_pack("{ss}", "serial", serial);
	/* The replica may answer: only the DER, issuer and owner are used,
	 * which never change once stored (the status is not shown here). */
	if (r->method == WFE_POST)
		cert = wfe_kept(r, 'c', serial); /* the finalize answer's */
	if (cert == NULL &&
	    wfe_sa_read(r, RPC_SA_GET_CERTIFICATE, params, NULL, &cert) != 0)
		goto out;
	if (wfe_cert_owner_check(r, cert) != 0 ||
	    wfe_cert_leaf(r, cert, &leaf, &iss) != 0)
		goto out;
	chains = json_object_get(iss, "chains_pem");
	nchains = json_array_size(chains);
	if (nchains == 0) {
		body = xstrdup(leaf);
	} else {
		if ((size_t)idx >= nchains) {
			wfe_reply_prob(r, PROB_NOT_FOUND, "no such chain");
			goto out;
		}
		chain = json_string_value(json_array_get(chains, (size_t)idx));
		body = xasprintf("%s%s", leaf, chain ? chain : "");
	}
	for (i = 0; i < nchains; i++)
		if (i != (size_t)idx)
			wfe_add_header(r, "Link",
			    "<%s/acme/cert/%s/%zu>;rel=\"alternate\"", r->base,
			    serial, i);
	wfe_reply_pem_chain(r, body);
	body = NULL;
out:
	free(serial);
	free(leaf);
	free(body);
	json_decref(params);
	json_decref(cert);
	json_decref(iss);
}

void
wfe_h_revoke(struct wfe_req *r, const char *tail)
{
	json_t *payload = NULL, *params = NULL, *res = NULL, *reason;
	const char *b64;
	uint8_t *der = NULL;
	size_t derlen = 0;
	const unsigned char *p;
	X509 *x = NULL;
	EVP_PKEY *pk;
	json_int_t rc = 0;

	(void)tail;
	if (wfe_jws_auth(r, WFE_KEY_EITHER) != 0 ||
	    wfe_jws_payload(r, &payload) != 0)
		goto out;
	b64 = json_string_value(json_object_get(payload, "certificate"));
	if (b64 == NULL ||
	    b64url_decode(b64, strlen(b64), &der, &derlen) != 0) {
		wfe_reply_prob(r, PROB_MALFORMED,
		    "\"certificate\" must be "
		    "the base64url DER certificate");
		goto out;
	}
	p = der;
	if ((x = d2i_X509(NULL, &p, (long)derlen)) == NULL ||
	    p != der + derlen) {
		wfe_reply_prob(r, PROB_MALFORMED,
		    "\"certificate\" is not a DER certificate");
		goto out;
	}
	reason = json_object_get(payload, "reason");
	if (reason != NULL && !json_is_null(reason)) {
		if (!json_is_integer(reason)) {
			wfe_reply_prob(r, PROB_BAD_REVOCATION_REASON,
			    "\"reason\" must be an integer CRLReason code");
			goto out;
		}
		rc = json_integer_value(reason);
	}
	if (r->jws->jwk != NULL) {
		pk = X509_get0_pubkey(x);
		if (pk == NULL || EVP_PKEY_eq(pk, r->jws->jwk->pkey) != 1) {
			wfe_reply_prob(r, PROB_UNAUTHORIZED,
			    "the JWS key is "
			    "not the key of this certificate");
			goto out;
		}
		params = json_pack("{sssI}", "der", b64, "reason", rc);
		if (wfe_rpc(r, r->w->ra, RPC_RA_REVOKE_BY_KEY, params, &res) != 0)
			goto out;
	} else {
		params = json_pack("{sIsssI}", "account_id",
		    (json_int_t)r->account_id, "der", b64, "reason", rc);
		if (wfe_rpc(
			r, r->w->ra, RPC_RA_REVOKE_BY_ACCOUNT, params, &res) != 0)
			goto out;
	}
	wfe_reply_raw(r, 200, NULL, NULL, 0);
out:
	X509_free(x);
	free(der);
	json_decref(payload);
	json_decref(params);
	json_decref(res);
}
