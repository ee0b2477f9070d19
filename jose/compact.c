/*
 * compact.c - verification of a compact-serialised JWS (RFC 7515 §7.1),
 * the form of a JWT (RFC 7519 §3) such as an Entity Attestation Token
 * (RFC 9711 §7.1) a RATS Verifier signs. The ACME requests themselves are
 * flattened JSON (jws.c); this is for tokens those requests carry.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jose/jose_int.h"

/* Strict base64url of the n chars at s as JSON object (what names it). */
static int
b64_object(const char *s, size_t n, const char *what, json_t **out,
    char *err, size_t errlen)
{
	struct problem *p = NULL;
	uint8_t *raw = NULL;
	size_t len = 0;
	int rc = -1;

	if (b64url_decode(s, n, &raw, &len) != 0)
		snprintf(err, errlen, "the JWS %s is not base64url", what);
	else if (jose_json_object((const char *)raw, len, what, out, &p) != 0)
		snprintf(err, errlen, "the JWS %s: %s", what,
		    p && p->detail ? p->detail : "not a JSON object");
	else
		rc = 0;
	problem_free(p);
	free(raw);
	return rc;
}

/* See jose.h. */
int
jose_compact_verify(const char *jws, struct jwk *const *keys, size_t n,
    json_t **hdr, json_t **payload, size_t *which, char *err, size_t errlen)
{
	const char *d1, *d2, *alg_s;
	enum jose_alg alg;
	uint8_t *sig = NULL;
	size_t siglen = 0, i;
	int rc = -1;

	*hdr = *payload = NULL;
	d1 = strchr(jws, '.');
	d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	if (d1 == NULL || d2 == NULL || strchr(d2 + 1, '.') != NULL) {
		snprintf(err, errlen,
		    "not a compact JWS (three base64url parts, RFC 7515 "
		    "§7.1)");
		goto out;
	}
	if (b64_object(jws, (size_t)(d1 - jws), "header", hdr, err,
		errlen) != 0 ||
	    b64_object(d1 + 1, (size_t)(d2 - d1 - 1), "payload", payload, err,
		errlen) != 0)
		goto out;
	if (b64url_decode(d2 + 1, strlen(d2 + 1), &sig, &siglen) != 0) {
		snprintf(err, errlen, "the JWS signature is not base64url");
		goto out;
	}
	alg_s = json_string_value(json_object_get(*hdr, "alg"));
	if (alg_s == NULL || jose_alg_parse(alg_s, &alg) != 0) {
		snprintf(err, errlen,
		    "the JWS alg \"%.16s\" is not one of RS256, ES256, ES384, "
		    "ES512, EdDSA",
		    alg_s ? alg_s : "");
		goto out;
	}
	/* RFC 7515 §4.1.11: an extension we do not understand */
	if (json_object_get(*hdr, "crit") != NULL) {
		snprintf(err, errlen, "the JWS header has \"crit\"");
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (keys[i]->alg == alg &&
		    jose_sig_check(keys[i]->pkey, alg, (const uint8_t *)jws,
			(size_t)(d2 - jws), sig, siglen)) {
			*which = i;
			rc = 0;
			goto out;
		}
	}
	snprintf(err, errlen,
	    "the %s signature does not verify with any trusted key", alg_s);
out:
	free(sig);
	if (rc != 0) {
		json_decref(*hdr);
		json_decref(*payload);
		*hdr = *payload = NULL;
	}
	return rc;
}
