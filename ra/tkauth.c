/*
 * tkauth.c - RFC 9448 §6 step 9 at finalize: "Verify that the "atc" claim
 * "ca" identifier boolean corresponds to the CSR request for either a CA
 * certificate or an end-entity certificate". The VA checked the token when
 * the challenge was answered and kept its "ca" in the validation record
 * (va/tkauth.c); the CSR only arrives at finalize, so the comparison is
 * here: the CSR's basicConstraints cA must equal the token's "ca" (absent
 * = false, RFC 9448 §5), and a CA certificate needs a profile with
 * tkauth_ca. Either failure is badCSR (RFC 8555 §7.4: the CA "is unwilling
 * to issue a certificate corresponding to the submitted CSR").
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "ra/ra_int.h"

/* The CSR (b64url DER, borrowed) parsed, or NULL. Caller frees. */
static X509_REQ *
csr_parse(const char *csr_b64)
{
	uint8_t *der = NULL;
	size_t len = 0;
	const unsigned char *p;
	X509_REQ *req = NULL;

	if (csr_b64 == NULL ||
	    b64url_decode(csr_b64, strlen(csr_b64), &der, &len) != 0)
		return NULL;
	p = der;
	req = d2i_X509_REQ(NULL, &p, (long)len);
	free(der);
	return req;
}

/* 1 if the order (borrowed) names a TNAuthList identifier, else 0. */
static int
order_has_tnauthlist(const json_t *order)
{
	const json_t *v;
	const char *t;
	size_t i;

	json_array_foreach(json_object_get(order, "identifiers"), i, v)
	{
		t = json_string_value(json_object_get(v, "type"));
		if (t != NULL && strcmp(t, "TNAuthList") == 0)
			return 1;
	}
	return 0;
}

/*
 * The "ca" the VA recorded for the valid tkauth-01 challenge of the
 * order's TNAuthList authz (order read with_authzs, borrowed): 1 or 0; -1
 * when there is no such challenge (the order is not ready then).
 */
static int
token_ca(const json_t *order)
{
	const json_t *az, *ch, *rec;
	const char *t, *st;
	size_t i, k, r;

	json_array_foreach(json_object_get(order, "authzs"), i, az)
	{
		t = json_string_value(
		    json_object_get(json_object_get(az, "identifier"), "type"));
		if (t == NULL || strcmp(t, "TNAuthList") != 0)
			continue;
		json_array_foreach(json_object_get(az, "challenges"), k, ch)
		{
			t = json_string_value(json_object_get(ch, "type"));
			st = json_string_value(json_object_get(ch, "status"));
			if (t == NULL || st == NULL ||
			    strcmp(t, "tkauth-01") != 0 ||
			    strcmp(st, "valid") != 0)
				continue;
			json_array_foreach(
			    json_object_get(ch, "validation_record"), r, rec)
			{
				if (json_object_get(rec, "jti") != NULL)
					return json_is_true(
					    json_object_get(rec, "ca"));
			}
		}
	}
	return -1;
}

/* See ra_int.h. */
int
ra_tkauth_finalize(struct ra *ra, const json_t *order, const char *csr_b64,
    struct problem **prob)
{
	const struct profile *prof;
	X509_REQ *req;
	int want, have;

	if (!order_has_tnauthlist(order))
		return 0;
	if ((req = csr_parse(csr_b64)) == NULL) {
		*prob = problem_new(PROB_BAD_CSR, "CSR is not DER");
		return -1;
	}
	want = csr_requests_ca(req);
	X509_REQ_free(req);
	have = token_ca(order);
	if (want < 0) {
		*prob = problem_new(PROB_BAD_CSR,
		    "the CSR's basicConstraints cannot be decoded");
		return -1;
	}
	if (have < 0) {
		*prob = problem_new(PROB_UNAUTHORIZED,
		    "the order's TNAuthList has no valid tkauth-01 "
		    "challenge");
		return -1;
	}
	if (want != have) {
		*prob = problem_new(PROB_BAD_CSR,
		    "the CSR asks for %s certificate and the Authority Token "
		    "says \"ca\": %s (RFC 9448 §6 step 9: the \"ca\" boolean "
		    "\"corresponds to the CSR request for either a CA "
		    "certificate or an end-entity certificate\")",
		    want ? "a CA" : "an end-entity", have ? "true" : "false");
		return -1;
	}
	prof = profiles_find(
	    ra->profiles, json_string_value(json_object_get(order, "profile")));
	if (want && (prof == NULL || !prof->tkauth_ca)) {
		*prob = problem_new(PROB_BAD_CSR,
		    "profile %s does not issue CA certificates for "
		    "\"ca\": true Authority Tokens (profiles.json tkauth_ca)",
		    prof ? prof->name : "(unknown)");
		return -1;
	}
	return 0;
}

/* See ra_int.h. */
int
ra_tkauth_issue_ca(const json_t *order, const char *csr_b64)
{
	X509_REQ *req;
	int ca;

	if (!order_has_tnauthlist(order) || (req = csr_parse(csr_b64)) == NULL)
		return 0;
	ca = csr_requests_ca(req) == 1;
	X509_REQ_free(req);
	return ca;
}

/* The VA's tkauth-01 record in res (borrowed): the entry with a "jti",
 * or NULL. */
static const json_t *
token_record(const json_t *res)
{
	const json_t *rec;
	size_t i;

	json_array_foreach(json_object_get(res, "validation_record"), i, rec)
	{
		if (json_is_string(json_object_get(rec, "jti")))
			return rec;
	}
	return NULL;
}

/* See ra_int.h. */
int
ra_tkauth_spend(struct ra *ra, const char *rid, int64_t account_id,
    int64_t challenge_id, const json_t *res, struct problem **prob)
{
	const json_t *rec = token_record(res);
	json_t *out = NULL;
	struct problem *p = NULL;
	char exp[40];
	int rc;

	if (rec == NULL ||
	    !json_is_string(json_object_get(rec, "token_authority")) ||
	    !json_is_number(json_object_get(rec, "exp"))) {
		*prob = problem_new(PROB_SERVER_INTERNAL,
		    "tkauth-01: the VA recorded no token jti");
		return -1;
	}
	ra_time_fmt((int64_t)(json_number_value(json_object_get(rec, "exp")) *
			1000.0),
	    exp, sizeof(exp));
	rc = ra_call(ra->sa, RPC_SA_TKAUTH_SPEND_JTI,
	    json_pack("{s:O,s:O,s:I,s:I,s:s}", "issuer",
		json_object_get(rec, "token_authority"), "jti",
		json_object_get(rec, "jti"), "account_id",
		(json_int_t)account_id, "challenge_id",
		(json_int_t)challenge_id, "expires", exp),
	    rid, &out, &p);
	json_decref(out);
	if (rc == 0)
		return 0;
	if (p->type == PROB_CONFLICT)
		*prob = problem_new(PROB_UNAUTHORIZED,
		    "tkauth-01: this Authority Token (jti \"%.64s\") was "
		    "already used: %s (RFC 9447 §4: the jti tracks \"when the "
		    "same \"atc\" Authority Token is being used for multiple "
		    "challenges\"; Anvil accepts a token once)",
		    json_string_value(json_object_get(rec, "jti")),
		    p->detail ? p->detail : "conflict");
	else
		*prob = problem_new(p->type, "tkauth-01: recording the token: %s",
		    p->detail ? p->detail : "error");
	problem_free(p);
	return -1;
}
