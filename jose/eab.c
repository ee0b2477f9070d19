/* eab.c - external account binding (RFC 8555 §7.3.4). */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "jose/jose_int.h"

/* Decoded protected header of an EAB object (borrowed) into *hdr. */
static int
eab_header(const json_t *eab, json_t **hdr, struct problem **prob)
{
	uint8_t *raw = NULL;
	size_t rawlen = 0;
	int rc;

	*hdr = NULL;
	if (!json_is_object(eab))
		return jose_fail(prob, PROB_MALFORMED,
		    "externalAccountBinding must be a flattened JWS object");
	if (jose_flat_members(eab, "externalAccountBinding", prob) != 0)
		return -1;
	if (jose_b64_member(eab, "protected", "externalAccountBinding",
		PROB_MALFORMED, &raw, &rawlen, prob) != 0)
		return -1;
	rc = jose_json_object((const char *)raw, rawlen,
	    "externalAccountBinding protected header", hdr, prob);
	free(raw);
	return rc;
}

int
jose_eab_kid(const json_t *eab, char **kid, struct problem **prob)
{
	json_t *hdr = NULL;
	const json_t *v;
	int rc = -1;

	*kid = NULL;
	if (eab_header(eab, &hdr, prob) != 0)
		goto out;
	v = json_object_get(hdr, "kid");
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		jose_fail(prob, PROB_MALFORMED,
		    "externalAccountBinding protected header needs a \"kid\" "
		    "string naming the EAB key");
		goto out;
	}
	*kid = xstrdup(json_string_value(v));
	rc = 0;
out:
	json_decref(hdr);
	return rc;
}

int
jose_verify_eab(const json_t *eab, const uint8_t *hmac_key, size_t keylen,
    const struct jwk *account_jwk, const char *expected_url,
    struct problem **prob)
{
	json_t *hdr = NULL, *payload = NULL;
	const char *alg, *url, *ps, *pls;
	uint8_t *raw = NULL, *sig = NULL, mac[EVP_MAX_MD_SIZE];
	size_t rawlen = 0, siglen = 0;
	char *input = NULL, *kid = NULL;
	int maclen, rc = -1;

	if (jose_eab_kid(eab, &kid, prob) != 0 ||
	    eab_header(eab, &hdr, prob) != 0)
		goto out;
	alg = json_string_value(json_object_get(hdr, "alg"));
	if (alg == NULL ||
	    (strcmp(alg, "HS256") != 0 && strcmp(alg, "HS384") != 0 &&
		strcmp(alg, "HS512") != 0)) {
		jose_fail(prob, PROB_BAD_SIGNATURE_ALGORITHM,
		    "externalAccountBinding alg must be a MAC algorithm: "
		    "HS256, HS384 or HS512");
		goto out;
	}
	if (json_object_get(hdr, "nonce") != NULL) {
		jose_fail(prob, PROB_MALFORMED,
		    "externalAccountBinding must "
		    "not have a \"nonce\" (RFC 8555 §7.3.4)");
		goto out;
	}
	if (json_object_get(hdr, "jwk") != NULL ||
	    json_object_get(hdr, "crit") != NULL) {
		jose_fail(prob, PROB_MALFORMED,
		    "externalAccountBinding "
		    "protected header must not have \"jwk\" or \"crit\"");
		goto out;
	}
	url = json_string_value(json_object_get(hdr, "url"));
	if (url == NULL || expected_url == NULL ||
	    strcmp(url, expected_url) != 0) {
		jose_fail(prob, PROB_MALFORMED,
		    "externalAccountBinding \"url\" "
		    "must be the newAccount URL %s",
		    expected_url ? expected_url : "");
		goto out;
	}
	if (jose_b64_member(eab, "payload", "externalAccountBinding",
		PROB_MALFORMED, &raw, &rawlen, prob) != 0 ||
	    jose_b64_member(eab, "signature", "externalAccountBinding",
		PROB_MALFORMED, &sig, &siglen, prob) != 0 ||
	    jose_json_object((const char *)raw, rawlen,
		"externalAccountBinding payload", &payload, prob) != 0)
		goto out;
	if (!jose_jwk_json_is(payload, account_jwk)) {
		jose_fail(prob, PROB_UNAUTHORIZED,
		    "externalAccountBinding "
		    "payload must be the account key (the outer JWS \"jwk\")");
		goto out;
	}
	ps = json_string_value(json_object_get(eab, "protected"));
	pls = json_string_value(json_object_get(eab, "payload"));
	input = xasprintf("%s.%s", ps, pls);
	maclen = jose_hmac(
	    alg, hmac_key, keylen, (const uint8_t *)input, strlen(input), mac);
	if (maclen < 0) {
		jose_fail(prob, PROB_UNAUTHORIZED,
		    "externalAccountBinding "
		    "cannot be checked: empty MAC key for kid \"%.64s\"",
		    kid);
		goto out;
	}
	if (siglen != (size_t)maclen ||
	    CRYPTO_memcmp(sig, mac, (size_t)maclen) != 0) {
		jose_fail(prob, PROB_UNAUTHORIZED,
		    "externalAccountBinding "
		    "MAC does not verify with the key for kid \"%.64s\"",
		    kid);
		goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(mac, sizeof(mac));
	json_decref(hdr);
	json_decref(payload);
	free(raw);
	free(sig);
	free(input);
	free(kid);
	return rc;
}
