/*
 * h_misc.c - the unauthenticated endpoints: directory, newNonce, ARI,
 * CRLs, OCSP, issuer certificates.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "wfe/wfe_int.h"


/* See wfe_int.h. */
json_t *
wfe_ra_meta(struct wfe_req *r)
{
	json_t *res = wfe_cached_call(r, r->w->ra, &r->w->ra_meta,
	    &r->w->ra_meta_at_ms, RPC_RA_DIRECTORY_META);
	json_t *meta = json_incref(json_object_get(res, "meta"));

	json_decref(res);
	return json_is_object(meta) ? meta : (json_decref(meta), NULL);
}

void
wfe_h_directory(struct wfe_req *r, const char *tail)
{
	const struct wfe_config *cfg = r->w->cfg;
	json_t *d = json_object(), *meta = json_object(), *profiles, *caa, *ram;
	size_t i;

	(void)tail;
	/* RFC 8555 §6.3: "The server MUST allow GET requests for the
	 * directory and newNonce resources ..., in addition to POST-as-GET
	 * requests for these resources." */
	if (r->method == WFE_POST && wfe_post_as_get_only(
				     r, "the directory takes an empty POST-as-GET payload") != 0) {
		json_decref(d);
		json_decref(meta);
		return;
	}
#define U(k, p)                                                                \
	do {                                                                   \
		char *u_ = wfe_url(r, "%s", p);                                \
		json_object_set_new(d, k, json_string(u_));                    \
		free(u_);                                                      \
	} while (0)
	U("newNonce", "/acme/new-nonce");
	U("newAccount", "/acme/new-account");
	U("newOrder", "/acme/new-order");
	U("newAuthz", "/acme/new-authz");
	U("revokeCert", "/acme/revoke-cert");
	U("keyChange", "/acme/key-change");
	U("renewalInfo", "/acme/renewal-info");
#undef U
	if (cfg->tos != NULL)
		json_object_set_new(
		    meta, "termsOfService", json_string(cfg->tos));
	if (cfg->website != NULL)
		json_object_set_new(meta, "website", json_string(cfg->website));
	if (cfg->ncaa_identities > 0) {
		caa = json_array();
		for (i = 0; i < cfg->ncaa_identities; i++)
			json_array_append_new(
			    caa, json_string(cfg->caa_identities[i]));
		json_object_set_new(meta, "caaIdentities", caa);
	}
	json_object_set_new(
	    meta, "externalAccountRequired", json_boolean(cfg->eab_required));
	profiles = wfe_cached_call(r, r->w->ra, &r->w->profiles,
	    &r->w->profiles_at_ms, RPC_RA_PROFILES);
	if (json_is_object(json_object_get(profiles, "profiles")))
		json_object_set(
		    meta, "profiles", json_object_get(profiles, "profiles"));
	json_decref(profiles);
	/* Extension fields the RA's policy switches on (RFC 9444 §4.4
	 * subdomainAuthAllowed); absent while the RA cannot be asked. */
	ram = wfe_ra_meta(r);
	if (json_is_object(ram))
		json_object_update(meta, ram);
	json_decref(ram);
	json_object_set_new(d, "meta", meta);
	r->no_index_link = 1;
	wfe_reply_json(r, 200, d);
}

void
wfe_h_new_nonce(struct wfe_req *r, const char *tail)
{
	(void)tail;
	if (r->method == WFE_POST && wfe_post_as_get_only(
				     r, "newNonce takes an empty POST-as-GET payload") != 0)
		return;
	r->want_nonce = 1;
	wfe_add_header(r, "Cache-Control", "no-store");
	wfe_reply_raw(r, r->method == WFE_GET ? 204 : 200, NULL, NULL, 0);
}

static int
b64url_part_ok(const char *s, size_t n)
{
	uint8_t *raw = NULL;
	size_t rawlen = 0;
	int ok;

	ok = n > 0 && b64url_decode(s, n, &raw, &rawlen) == 0 && rawlen > 0;
	free(raw);
	return ok;
}

void
wfe_h_renewal_info(struct wfe_req *r, const char *tail)
{
	const char *dot = strchr(tail, '.');
	json_t *params = NULL, *res = NULL, *out = NULL, *win;
	json_int_t retry;

	if (dot == NULL || strchr(dot + 1, '.') != NULL ||
	    !b64url_part_ok(tail, (size_t)(dot - tail)) ||
	    !b64url_part_ok(dot + 1, strlen(dot + 1))) {
		wfe_reply_prob(r, PROB_MALFORMED,
		    "renewalInfo path must be "
		    "base64url(AKI) \".\" base64url(serial) (RFC 9773)");
		goto out;
	}
	params = json_pack("{ss}", "cert_id", tail);
	if (wfe_rpc(r, r->w->ra, RPC_RA_RENEWAL_INFO, params, &res) != 0)
		goto out;
	win = json_object_get(res, "suggested_window");
	out = json_pack("{s{sOsO}}", "suggestedWindow", "start",
	    json_object_get(win, "start"), "end", json_object_get(win, "end"));
	if (out == NULL) {
		wfe_reply_prob(
		    r, PROB_SERVER_INTERNAL, "renewal info without a window");
		goto out;
	}
	if (json_is_string(json_object_get(res, "explanation_url")))
		json_object_set(out, "explanationURL",
		    json_object_get(res, "explanation_url"));
	retry = json_integer_value(json_object_get(res, "retry_after_s"));
	wfe_add_header(
	    r, "Retry-After", "%lld", (long long)(retry > 0 ? retry : 21600));
	wfe_reply_json(r, 200, out);
	out = NULL;
out:
	json_decref(params);
	json_decref(res);
	json_decref(out);
}

/*
 * Replies 200 with res's b64url "der" member, decoded, as content type ctype.
 * Returns -1, having replied nothing, if the member is missing or not b64url.
 */
static int
reply_der(struct wfe_req *r, const json_t *res, const char *ctype)
{
	const char *s = json_string_value(json_object_get(res, "der"));
	uint8_t *raw = NULL;
	size_t len = 0;

	if (s == NULL || b64url_decode(s, strlen(s), &raw, &len) != 0)
		return -1;
	wfe_reply_raw(r, 200, ctype, (char *)raw, len);
	return 0;
}

static int
is_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return 0;
	return n > 0;
}

void
wfe_h_crl(struct wfe_req *r, const char *tail)
{
	const char *slash = strchr(tail, '/');
	json_t *params = NULL, *res = NULL;
	char *issuer = NULL;
	size_t sl;
	int64_t shard = -1;

	if (slash == NULL || !is_hex(tail, (size_t)(slash - tail)) ||
	    slash - tail != 16) {
		wfe_reply_prob(r, PROB_NOT_FOUND, "no such CRL");
		goto out;
	}
	sl = strlen(slash + 1);
	if (sl < 5 || strcmp(slash + 1 + sl - 4, ".crl") != 0 ||
	    (!(sl == 5 && slash[1] == '0') &&
		wfe_parse_id(slash + 1, sl - 4, &shard) != 0)) {
		wfe_reply_prob(r, PROB_NOT_FOUND, "no such CRL");
		goto out;
	}
	if (shard < 0)
		shard = 0;
	issuer = xstrndup(tail, 16);
	params = json_pack(
	    "{sssI}", "issuer_id", issuer, "shard", (json_int_t)shard);
	/* A replica's CRL may be the previous one: still within its validity
	 * period (RFC 5280 §5.1.2.5), which is what a CRL promises. */
	if (wfe_sa_read(r, RPC_SA_GET_CRL, params, NULL, &res) != 0)
		goto out;
	if (reply_der(r, res, "application/pkix-crl") != 0)
		wfe_reply_prob(r, PROB_SERVER_INTERNAL, "stored CRL unusable");
out:
	free(issuer);
	json_decref(params);
	json_decref(res);
}

/* A bare OCSP response with only a status (RFC 6960 §2.3). */
static void
ocsp_status_reply(struct wfe_req *r, int status)
{
	char *b = xmalloc(5);

	memcpy(b, "\x30\x03\x0a\x01", 4);
	b[4] = (char)status;
	wfe_reply_raw(r, 200, "application/ocsp-response", b, 5);
}

/* serial_hex of a non-negative ASN.1 integer; NULL if negative or too
 * long. Caller frees. */
static char *
asn1_serial_hex(const ASN1_INTEGER *ai)
{
	if (ASN1_STRING_type(ai) == V_ASN1_NEG_INTEGER)
		return NULL;
	return serial_hex(
	    ASN1_STRING_get0_data(ai), (size_t)ASN1_STRING_length(ai));
}

void
wfe_h_ocsp(struct wfe_req *r, const char *tail)
{
	OCSP_REQUEST *req = NULL;
	OCSP_ONEREQ *one;
	OCSP_CERTID *cid;
	ASN1_INTEGER *ai = NULL;
	const unsigned char *pp;
	unsigned char *raw = NULL;
	size_t rawlen = 0, tl;
	char *serial = NULL;
	json_t *params = NULL, *res = NULL;
	struct problem *p = NULL;
	int n;

	if (r->method == WFE_POST) {
		if (r->body == NULL || r->body_len == 0) {
			ocsp_status_reply(r, 1);
			goto out;
		}
		pp = (const unsigned char *)r->body;
		req = d2i_OCSP_REQUEST(NULL, &pp, (long)r->body_len);
	} else {
		tl = strlen(tail);
		raw = xmalloc(tl / 4 * 3 + 4);
		n = tl % 4 == 0 && tl > 0
		    ? EVP_DecodeBlock(raw, (const unsigned char *)tail, (int)tl)
		    : -1;
		if (n > 0) {
			rawlen = (size_t)n;
			while (tl > 0 && tail[tl - 1] == '=' && rawlen > 0) {
				rawlen--;
				tl--;
			}
			pp = raw;
			req = d2i_OCSP_REQUEST(NULL, &pp, (long)rawlen);
		}
	}
	if (req == NULL || OCSP_request_onereq_count(req) != 1) {
		ocsp_status_reply(r, 1); /* malformedRequest */
		goto out;
	}
	one = OCSP_request_onereq_get0(req, 0);
	cid = OCSP_onereq_get0_id(one);
	if (OCSP_id_get0_info(NULL, NULL, NULL, &ai, cid) != 1 ||
	    (serial = asn1_serial_hex(ai)) == NULL) {
		ocsp_status_reply(r, 1);
		goto out;
	}
	params = json_pack("{ss}", "serial", serial);
	if (wfe_rpc_raw(r, r->w->ra, RPC_RA_OCSP, params, &res, &p) != 0) {
		if (p->type == PROB_UNAVAILABLE ||
		    p->type == PROB_SERVER_INTERNAL)
			ocsp_status_reply(r, 3); /* tryLater */
		else
			ocsp_status_reply(r, 6); /* unauthorized */
		goto out;
	}
	if (reply_der(r, res, "application/ocsp-response") != 0)
		ocsp_status_reply(r, 2); /* internalError */
out:
	problem_free(p);
	OCSP_REQUEST_free(req);
	free(raw);
	free(serial);
	json_decref(params);
	json_decref(res);
}

void
wfe_h_issuer(struct wfe_req *r, const char *tail)
{
	json_t *iss = NULL;
	const char *pem;
	char *id = NULL;
	BIO *bio = NULL;
	X509 *x = NULL;
	unsigned char *der = NULL;
	int len;
	size_t tl = strlen(tail);

	if (tl != 20 || strcmp(tail + 16, ".der") != 0 || !is_hex(tail, 16)) {
		wfe_reply_prob(r, PROB_NOT_FOUND, "no such issuer");
		goto out;
	}
	id = xstrndup(tail, 16);
	if ((iss = wfe_issuer_find(r, id)) == NULL)
		goto out;
	pem = json_string_value(json_object_get(iss, "cert_pem"));
	if (pem == NULL || (bio = BIO_new_mem_buf(pem, -1)) == NULL ||
	    (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL ||
	    (len = i2d_X509(x, &der)) <= 0) {
		wfe_reply_prob(r, PROB_SERVER_INTERNAL, "issuer unusable");
		goto out;
	}
	{
		char *copy = xmalloc((size_t)len);
		memcpy(copy, der, (size_t)len);
		wfe_reply_raw(
		    r, 200, "application/pkix-cert", copy, (size_t)len);
	}
out:
	OPENSSL_free(der);
	X509_free(x);
	BIO_free(bio);
	json_decref(iss);
	free(id);
}
