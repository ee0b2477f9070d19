/*
 * onion.c - RFC 9799 at finalize: the in-band CAA record sets of the
 * order's .onion names (§6.4 "onionCAA"), each signed by the service's
 * Ed25519 key over "onion-caa|" || expiry || "|" || caa, evaluated by the
 * VA like a DNS RRset (va.check_caa with onion_caa). This CA cannot read
 * hidden service descriptors, so it requires the in-band set (§6.4.1:
 * onionCAARequired) and says so in the directory (inBandOnionCAARequired).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "ra/ra_int.h"

/*
 * 0 when sig_b64 (base64url, '=' padding allowed: the RFC's example has
 * it) is pubkey's Ed25519 signature over msg, else -1.
 */
static int
ed25519_ok(const uint8_t pubkey[32], const char *msg, const char *sig_b64)
{
	EVP_PKEY *k = NULL;
	EVP_MD_CTX *ctx = NULL;
	uint8_t *sig = NULL;
	size_t siglen = 0, n = strlen(sig_b64);
	int rc = -1;

	while (n > 0 && sig_b64[n - 1] == '=')
		n--;
	if (b64url_decode(sig_b64, n, &sig, &siglen) != 0 || siglen != 64)
		goto out;
	k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pubkey, 32);
	ctx = EVP_MD_CTX_new();
	if (k == NULL || ctx == NULL ||
	    EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k) != 1)
		goto out;
	if (EVP_DigestVerify(ctx, sig, siglen, (const uint8_t *)msg,
		strlen(msg)) == 1)
		rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(k);
	free(sig);
	return rc;
}

/*
 * The onionCAA entry for the order identifier name (borrowed, without
 * "*."), whose address is base: checked for shape, expiry and signature.
 * 0 with *caa (borrowed from oc; NULL: the service has no CAA records),
 * or -1 with *prob.
 */
static int
entry_check(const json_t *oc, const char *name, const char *base,
    const char **caa, struct problem **prob)
{
	const json_t *e, *c, *x, *s;
	uint8_t pk[32];
	char err[200], *msg;
	json_int_t expiry;
	int rc;

	*caa = NULL;
	e = json_object_get(oc, base);
	if (e == NULL)
		e = json_object_get(oc, name);
	if (e == NULL) {
		/* §6.4.1: "the ACME server MUST respond with an
		 * "onionCAARequired" error" */
		*prob = problem_new(PROB_ONION_CAA_REQUIRED,
		    "This CA does not fetch CAA from hidden service "
		    "descriptors: finalize must carry onionCAA for %s "
		    "(RFC 9799 §6.4.1)",
		    base);
		return -1;
	}
	c = json_object_get(e, "caa");
	x = json_object_get(e, "expiry");
	s = json_object_get(e, "signature");
	if (!json_is_object(e) || c == NULL ||
	    !(json_is_string(c) || json_is_null(c)) || !json_is_integer(x) ||
	    !json_is_string(s)) {
		*prob = problem_new(PROB_MALFORMED,
		    "onionCAA[\"%s\"] must be {caa: string or null, expiry: "
		    "integer, signature: string} (RFC 9799 §6.4)",
		    base);
		return -1;
	}
	expiry = json_integer_value(x);
	if (expiry <= time_now_ms() / 1000) {
		*prob = problem_new(PROB_UNAUTHORIZED,
		    "onionCAA[\"%s\"] expired at %lld (RFC 9799 §6.4: "
		    "expiry is when the record set stops being valid)",
		    base, (long long)expiry);
		return -1;
	}
	if (ident_onion_parse(base, pk, NULL, err, sizeof(err)) != 0) {
		*prob = problem_new(PROB_MALFORMED, "%s", err);
		return -1;
	}
	/* "onion-caa|" || expiry || "|" || caa; "If the caa field is null it
	 * is represented as an empty string in the signature calculation." */
	msg = xasprintf("onion-caa|%lld|%s", (long long)expiry,
	    json_is_string(c) ? json_string_value(c) : "");
	rc = ed25519_ok(pk, msg, json_string_value(s));
	free(msg);
	if (rc != 0) {
		*prob = problem_new(PROB_UNAUTHORIZED,
		    "onionCAA[\"%s\"] is not signed by the key of %s "
		    "(RFC 9799 §6.4: the Ed25519 signature of \"onion-caa|\" "
		    "|| expiry || \"|\" || caa, base64url)",
		    base, base);
		return -1;
	}
	*caa = json_is_string(c) ? json_string_value(c) : NULL;
	return 0;
}

/* See ra_int.h. */
int
ra_onion_caa(struct ra *ra, const char *rid, const json_t *order,
    const json_t *onion_caa, const char *uri, struct problem **prob)
{
	json_t *oi, *chk = NULL, *params;
	const char *v, *t, *name, *base, *caa;
	char err[200];
	size_t i;
	int wildcard, rc = -1;

	if (onion_caa != NULL && !json_is_object(onion_caa)) {
		*prob = problem_new(PROB_MALFORMED,
		    "onionCAA must be an object keyed by .onion name (RFC "
		    "9799 §6.4)");
		return -1;
	}
	json_array_foreach(json_object_get(order, "identifiers"), i, oi)
	{
		v = json_string_value(json_object_get(oi, "value"));
		t = json_string_value(json_object_get(oi, "type"));
		if (v == NULL || t == NULL || strcmp(t, "dns") != 0 ||
		    !ident_onion_name(v))
			continue;
		wildcard = strncmp(v, "*.", 2) == 0;
		name = wildcard ? v + 2 : v;
		if (ident_onion_parse(name, NULL, &base, err, sizeof(err)) !=
		    0) {
			*prob = problem_new(PROB_MALFORMED, "%s", err);
			goto out;
		}
		if (entry_check(onion_caa, name, base, &caa, prob) != 0)
			goto out;
		if (caa == NULL)
			continue; /* no CAA records: nothing restricts */
		/* §6: "CAA records in a hidden service descriptor are to be
		 * treated the same by CAs as if they had been in the DNS" */
		params = json_pack("{s:{s:s,s:s},s:b,s:s,s:s,s:s}",
		    "identifier", "type", "dns", "value", name, "wildcard",
		    wildcard, "validation_method", "onion-csr-01",
		    "account_uri", uri, "onion_caa", caa);
		if (ra_call(ra->va, RPC_VA_CHECK_CAA, params, rid, &chk,
			prob) != 0)
			goto out;
		if (!json_is_true(json_object_get(chk, "ok"))) {
			*prob = json_is_object(json_object_get(chk, "error"))
			    ? problem_from_json(json_object_get(chk, "error"))
			    : problem_new(PROB_CAA,
				  "CAA forbids issuance for %s", v);
			goto out;
		}
		json_decref(chk);
		chk = NULL;
	}
	rc = 0;
out:
	json_decref(chk);
	return rc;
}

/* See ra_int.h. */
void
ra_onion_meta(struct ra *ra, json_t *meta)
{
	/* §6.4.1: "If true, the ACME server requires the client to provide
	 * the CAA record set in the finalize request." */
	if (ra->cfg.policy.onion)
		json_object_set_new(meta, "inBandOnionCAARequired", json_true());
}
