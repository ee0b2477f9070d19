/*
 * ocsp.c - RFC 6960 OCSP responses signed directly by the issuer, cached
 * in the SA.
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ocsp.h>

#include "ca/ca_int.h"

/* See ca_int.h. */
int
ca_ocsp_build(const struct ca_issuer *is, const uint8_t *serial,
    size_t serial_len, int revoked, time_t revoked_at, int reason,
    time_t this_update, time_t next_update, uint8_t **der, size_t *len,
    char *err, size_t errlen)
{
	BIGNUM *bn = NULL;
	ASN1_INTEGER *sn = NULL;
	OCSP_CERTID *id = NULL;
	OCSP_BASICRESP *bs = NULL;
	OCSP_RESPONSE *resp = NULL;
	ASN1_TIME *tu = NULL, *nu = NULL, *rt = NULL;
	unsigned char *p = NULL;
	int n, ret = -1;

	if ((bn = BN_bin2bn(serial, (int)serial_len, NULL)) == NULL ||
	    (sn = BN_to_ASN1_INTEGER(bn, NULL)) == NULL)
		goto fail;
	id = OCSP_cert_id_new(EVP_sha1(), X509_get_subject_name(is->cert),
	    X509_get0_pubkey_bitstr(is->cert), sn);
	if (id == NULL || (bs = OCSP_BASICRESP_new()) == NULL)
		goto fail;
	if ((tu = ASN1_TIME_set(NULL, this_update)) == NULL ||
	    (nu = ASN1_TIME_set(NULL, next_update)) == NULL)
		goto fail;
	if (revoked && (rt = ASN1_TIME_set(NULL, revoked_at)) == NULL)
		goto fail;
	if (OCSP_basic_add1_status(bs, id,
		revoked ? V_OCSP_CERTSTATUS_REVOKED : V_OCSP_CERTSTATUS_GOOD,
		revoked ? reason : 0, rt, tu, nu) == NULL)
		goto fail;
	if (OCSP_basic_sign(bs, is->cert, is->key, EVP_sha256(), NULL,
		OCSP_NOCERTS | OCSP_RESPID_KEY) != 1)
		goto fail;
	if ((resp = OCSP_response_create(
		 OCSP_RESPONSE_STATUS_SUCCESSFUL, bs)) == NULL)
		goto fail;
	n = i2d_OCSP_RESPONSE(resp, &p);
	if (ca_der_take(n, p, der, len) != 0)
		goto fail;
	ret = 0;
	goto out;
fail:
	snprintf(err, errlen, "building the OCSP response failed");
out:
	BN_free(bn);
	ASN1_INTEGER_free(sn);
	OCSP_CERTID_free(id);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	ASN1_TIME_free(tu);
	ASN1_TIME_free(nu);
	ASN1_TIME_free(rt);
	return ret;
}

/*
 * Status (V_OCSP_CERTSTATUS_*) of the single response in a DER
 * OCSPResponse; -1 if unreadable.
 */
static int
cached_status(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	OCSP_RESPONSE *resp = NULL;
	OCSP_BASICRESP *bs = NULL;
	OCSP_SINGLERESP *single;
	int st = -1, reason;

	resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
	if (resp == NULL || (bs = OCSP_response_get1_basic(resp)) == NULL)
		goto out;
	if (OCSP_resp_count(bs) != 1 ||
	    (single = OCSP_resp_get0(bs, 0)) == NULL)
		goto out;
	st = OCSP_single_get0_status(single, &reason, NULL, NULL, NULL);
out:
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	return st;
}

/*
 * The SA's cached response when it is in the first half of its validity
 * and says what the certificate's status says; 0 with *der, else -1.
 */
static int
from_cache(struct ca *ca, json_t *params, const char *rid, int revoked,
    uint8_t **der, size_t *len)
{
	json_t *res = NULL;
	struct problem *prob = NULL;
	const char *tu, *d;
	time_t t, now = time(NULL);
	int ret = -1;

	if (ca_store_call(ca, RPC_SA_GET_OCSP, params, rid, &res, &prob) != 0)
		goto out;
	tu = json_string_value(json_object_get(res, "this_update"));
	d = json_string_value(json_object_get(res, "der"));
	if (tu == NULL || d == NULL || time_parse_rfc3339(tu, &t) != 0)
		goto out;
	if (now >= t + (time_t)(ca->s.ocsp_validity_ms / 2000) || t > now + 60)
		goto out;
	if (b64url_decode(d, strlen(d), der, len) != 0)
		goto out;
	if (cached_status(*der, *len) !=
	    (revoked ? V_OCSP_CERTSTATUS_REVOKED : V_OCSP_CERTSTATUS_GOOD)) {
		free(*der);
		*der = NULL;
		goto out;
	}
	ret = 0;
out:
	json_decref(res);
	problem_free(prob);
	return ret;
}

/* See ca.h. */
int
ca_ocsp(struct ca *ca, const char *serial, const char *rid, uint8_t **der,
    size_t *der_len, struct problem **prob)
{
	json_t *params = NULL, *cert = NULL, *res = NULL;
	const struct ca_issuer *is;
	uint8_t *sn = NULL;
	size_t snlen = 0;
	const char *status, *at;
	time_t revoked_at = 0, now = time(NULL), next;
	int revoked, reason = 0, ret = -1;
	char *b64 = NULL, err[128], tu[32], nu[32], labels[96];

	*prob = NULL;
	*der = NULL;
	if (serial == NULL || strlen(serial) == 0 || strlen(serial) > 40 ||
	    hex_decode(serial, &sn, &snlen) != 0) {
		*prob = problem_new(PROB_MALFORMED,
		    "serial must be hex, at "
		    "most 20 bytes");
		goto out;
	}
	params = json_pack("{s:s}", "serial", serial);
	if (ca_store_call(ca, RPC_SA_GET_CERTIFICATE, params, rid, &cert, prob) !=
	    0)
		goto out;
	status = json_string_value(json_object_get(cert, "status"));
	revoked = status != NULL && strcmp(status, "revoked") == 0;
	if (revoked) {
		at = json_string_value(json_object_get(cert, "revoked_at"));
		if (at == NULL || time_parse_rfc3339(at, &revoked_at) != 0)
			revoked_at = now;
		reason = (int)json_integer_value(
		    json_object_get(cert, "revoked_reason"));
		if (reason < 0 || reason > 10 || reason == 7)
			reason = 0;
	}
	if (from_cache(ca, params, rid, revoked, der, der_len) == 0) {
		ret = 0;
		goto out;
	}
	is = ca_issuers_find(
	    ca->issuers, json_string_value(json_object_get(cert, "issuer_id")));
	if (is == NULL) {
		*prob = problem_new(PROB_SERVER_INTERNAL,
		    "certificate %s has "
		    "an unknown issuer",
		    serial);
		goto out;
	}
	next = now + (time_t)(ca->s.ocsp_validity_ms / 1000);
	if (ca_ocsp_build(is, sn, snlen, revoked, revoked_at, reason, now, next,
		der, der_len, err, sizeof(err)) != 0) {
		*prob = is->p11 != NULL
		    ? ca_issuer_sign_problem(is, "OCSP signing")
		    : problem_new(PROB_SERVER_INTERNAL, "%s", err);
		goto out;
	}
	log_audit(rid, "ocsp-signed", "serial=%s issuer=%s status=%s", serial,
	    is->id, revoked ? "revoked" : "good");
	snprintf(
	    labels, sizeof(labels), "purpose=\"ocsp\",issuer=\"%s\"", is->id);
	if (ca->metrics != NULL)
		metrics_counter_add(ca->metrics, "anvil_ca_signatures_total",
		    "Signatures by the CA", labels, 1);
	b64 = b64url_encode(*der, *der_len);
	json_object_set_new(params, "der", json_string(b64));
	json_object_set_new(params, "this_update",
	    json_string(time_fmt_rfc3339(now, tu, sizeof(tu))));
	json_object_set_new(params, "next_update",
	    json_string(time_fmt_rfc3339(next, nu, sizeof(nu))));
	if (ca_store_call(ca, RPC_SA_STORE_OCSP, params, rid, &res, prob) != 0) {
		/* The response is valid without the cache: serve it. */
		log_msg(LOG_LEVEL_WARN, rid, "caching OCSP for %s: %s", serial,
		    (*prob)->detail ? (*prob)->detail : "");
		problem_free(*prob);
		*prob = NULL;
	}
	ret = 0;
out:
	if (ret != 0) {
		free(*der);
		*der = NULL;
	}
	json_decref(params);
	json_decref(cert);
	json_decref(res);
	free(sn);
	free(b64);
	return ret;
}
