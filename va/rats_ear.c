/*
 * rats_ear.c - the passport-model verifier of remote-attest-01: an
 * attestation result (draft-ietf-acme-rats §1, Security Considerations:
 * "The attestation-result-01 challenge (the Passport Model) is mandatory
 * to implement") as an EAT Attestation Result (EAR,
 * draft-fv-rats-ear: an EAT, RFC 9711, in a JWT signed by the Verifier,
 * profile "tag:github.com,2023:veraison/ear") whose AR4SI trustworthiness
 * tiers (draft-ietf-rats-ar4si) say how the Verifier appraised the device.
 *
 * Checks: the signature verifies with a trusted Verifier key (va.json
 * rats.verifier_keys); eat_profile is EAR's; eat_nonce (RFC 9711 §4.1) is
 * the challenge's freshness_nonce; iat is at most rats.max_age old and not
 * in the future, exp (if any) not past; every submodule has an
 * "ear.status", and the verdict is the worst of them.
 */
#include <stdio.h>
#include <string.h>

#include "jose/jose.h"
#include "va/va_int.h"

#define EAR_PROFILE "tag:github.com,2023:veraison/ear"
#define CLOCK_SKEW_S 60

/* AR4SI tiers, best first; -1 when s is none of them. */
static int
tier_rank(const char *s)
{
	static const char *const tiers[] = {
	    "affirming", "none", "warning", "contraindicated"};
	size_t i;

	for (i = 0; s != NULL && i < sizeof(tiers) / sizeof(tiers[0]); i++)
		if (strcmp(s, tiers[i]) == 0)
			return (int)i;
	return -1;
}

/* 1 if eat_nonce (borrowed; a string or an array of strings) has nonce. */
static int
has_nonce(const json_t *eat_nonce, const char *nonce)
{
	const json_t *v;
	size_t i;

	if (json_is_string(eat_nonce))
		return strcmp(json_string_value(eat_nonce), nonce) == 0;
	json_array_foreach(eat_nonce, i, v)
	{
		if (json_is_string(v) && strcmp(json_string_value(v), nonce) == 0)
			return 1;
	}
	return 0;
}

/* iat / exp of claims c (borrowed) against now. 0, or -1 with err. */
static int
check_times(const struct va_rats *r, const json_t *c, char *err,
    size_t errlen)
{
	const json_t *iat = json_object_get(c, "iat"), *exp;
	int64_t now = time_now_ms() / 1000, max_age = va_rats_max_age_ms(r) / 1000;

	if (!json_is_integer(iat)) {
		snprintf(err, errlen, "no integer \"iat\"");
		return -1;
	}
	if (json_integer_value(iat) > now + CLOCK_SKEW_S) {
		snprintf(err, errlen, "\"iat\" is in the future");
		return -1;
	}
	if (json_integer_value(iat) < now - max_age - CLOCK_SKEW_S) {
		snprintf(err, errlen,
		    "the attestation result is %lld s old (rats.max_age: %lld "
		    "s)",
		    (long long)(now - json_integer_value(iat)),
		    (long long)max_age);
		return -1;
	}
	exp = json_object_get(c, "exp");
	if (exp != NULL &&
	    (!json_is_integer(exp) || json_integer_value(exp) < now)) {
		snprintf(err, errlen, "the attestation result has expired");
		return -1;
	}
	return 0;
}

/* The worst "ear.status" of the submods of c (borrowed) into v. */
static int
appraise(const json_t *c, struct va_rats_verdict *v, char *err,
    size_t errlen)
{
	const json_t *subs = json_object_get(c, "submods"), *s;
	const char *name, *st;
	int worst = -1, rank;

	if (!json_is_object(subs) || json_object_size(subs) == 0) {
		snprintf(err, errlen,
		    "no \"submods\" with an appraisal (EAR: one per attester)");
		return -1;
	}
	json_object_foreach((json_t *)subs, name, s)
	{
		st = json_string_value(json_object_get(s, "ear.status"));
		if ((rank = tier_rank(st)) < 0) {
			snprintf(err, errlen,
			    "submod \"%.64s\" has no AR4SI \"ear.status\" "
			    "(affirming, none, warning, contraindicated)",
			    name);
			return -1;
		}
		if (rank > worst) {
			worst = rank;
			snprintf(v->status, sizeof(v->status), "%s", st);
			snprintf(v->where, sizeof(v->where), "submod \"%.64s\"",
			    name);
		}
	}
	return 0;
}

/* See va_int.h. */
int
va_rats_ear_verify(const struct va_rats *r, const uint8_t *msg, size_t len,
    const char *nonce, const char *hint, struct va_rats_verdict *v,
    char *err, size_t errlen)
{
	json_t *hdr = NULL, *c = NULL;
	struct jwk *const *keys;
	const char *s;
	char *jwt;
	size_t n, which = 0;
	int rc = -1;

	(void)hint; /* the Verifier's policy covers the property asked for */
	keys = va_rats_keys(r, &n);
	if (memchr(msg, '\0', len) != NULL) {
		snprintf(err, errlen, "the JWT contains a NUL byte");
		return -1;
	}
	jwt = xstrndup((const char *)msg, len);
	/* §3.4: "verification of the signature against a pre-configured
	 * trust anchor" */
	if (jose_compact_verify(jwt, keys, n, &hdr, &c, &which, err, errlen) !=
	    0)
		goto out;
	s = json_string_value(json_object_get(c, "eat_profile"));
	if (s == NULL || strcmp(s, EAR_PROFILE) != 0) {
		snprintf(err, errlen, "eat_profile is not \"%s\"", EAR_PROFILE);
		goto out;
	}
	if (!has_nonce(json_object_get(c, "eat_nonce"), nonce)) {
		snprintf(err, errlen,
		    "eat_nonce is not the challenge's freshness_nonce");
		goto out;
	}
	if (check_times(r, c, err, errlen) != 0 ||
	    appraise(c, v, err, errlen) != 0)
		goto out;
	s = json_string_value(json_object_get(c, "ear.verifier-id")) != NULL
	    ? json_string_value(json_object_get(c, "ear.verifier-id"))
	    : json_string_value(json_object_get(
		  json_object_get(c, "ear.verifier-id"), "build"));
	snprintf(v->verifier, sizeof(v->verifier),
	    "rats.verifier_keys[%zu]%s%.100s", which, s ? " " : "", s ? s : "");
	rc = 0;
out:
	free(jwt);
	json_decref(hdr);
	json_decref(c);
	return rc;
}
