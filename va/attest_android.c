/*
 * attest_android.c - the "android-key" attestation statement format
 * (WebAuthn §8.4) as device-attest-01 uses it:
 *
 *   attStmt = {"alg": -7 / -257, "sig": bytes, "x5c": [credCert, CAs]}
 *
 * credCert is the certificate the Android Keystore (TEE or StrongBox)
 * issues for a key it generated, with the Android Key Attestation
 * extension 1.3.6.1.4.1.11129.2.1.17 (KeyDescription). Checks, in WebAuthn
 * §8.4's order, attToBeSigned being the key authorization
 * (draft-ietf-acme-device-attest §5):
 *
 * - x5c chains to attestation.android_roots (Google's hardware
 *   attestation roots in production; nothing is built in) and sig is
 *   credCert's key's signature over the key authorization
 *   (va_attest_x5c_signed, shared with packed);
 * - attestationChallenge = SHA-256(key authorization): the hash of
 *   attToBeSigned stands for WebAuthn's clientDataHash, as tpm's
 *   extraData does; the Keystore signs the certificate when the key is
 *   generated, after the client knows its account key, so the full key
 *   authorization (not the token alone) is bound;
 * - allApplications is in neither authorization list; origin is
 *   KM_ORIGIN_GENERATED and purpose is KM_PURPOSE_SIGN (KM_PURPOSE_VERIFY
 *   is allowed besides: apps usually ask for SIGN|VERIFY), read from
 *   teeEnforced only unless the policy accepts software keys (then the
 *   union of both lists);
 * - attestationSecurityLevel and keymasterSecurityLevel are at least
 *   attestation.android_security_level (default "tee").
 *
 * The device identifiers are the ID attestation fields
 * attestationIdSerial / Imei / Meid (each a permanent-identifier), from
 * teeEnforced (also softwareEnforced when software keys are accepted). The
 * attested key is credCert's, which finalize compares with the CSR's
 * (authData, which would hold the credential key, "SHOULD be omitted").
 * The extension is decoded by attest_akd.c.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "va/va_int.h"

#define AKD_OID "1.3.6.1.4.1.11129.2.1.17"
#define KM_ORIGIN_GENERATED 0
#define KM_PURPOSE_SIGN 2
#define KM_PURPOSE_VERIFY 3

/* The KeyDescription of x (exactly one extension) into d. 0, or -1. */
static int
leaf_keydesc(X509 *x, struct va_akd *d, char *err, size_t errlen)
{
	ASN1_OBJECT *oid = OBJ_txt2obj(AKD_OID, 1);
	int i = oid != NULL ? X509_get_ext_by_OBJ(x, oid, -1) : -1;
	int again = i >= 0 ? X509_get_ext_by_OBJ(x, oid, i) : -1;
	const ASN1_OCTET_STRING *v;
	char why[128];

	ASN1_OBJECT_free(oid);
	if (i < 0 || again >= 0) {
		snprintf(err, errlen,
		    "x5c[0] must carry exactly one Android key attestation "
		    "extension (" AKD_OID ")");
		return -1;
	}
	v = X509_EXTENSION_get_data(X509_get_ext(x, i));
	if (va_akd_parse(ASN1_STRING_get0_data(v),
		(size_t)ASN1_STRING_length(v), d, why, sizeof(why)) != 0) {
		snprintf(err, errlen,
		    "malformed Android key attestation extension: %s", why);
		return -1;
	}
	return 0;
}

/* The authorization list the origin/purpose checks read (WebAuthn §8.4:
 * "use only the teeEnforced authorization list if the RP wants to accept
 * only keys from a trusted execution environment, otherwise use the union
 * of teeEnforced and softwareEnforced"). */
static struct va_akd_list
akd_effective(const struct va_akd *d, int min_level)
{
	struct va_akd_list l = d->tee;

	if (min_level > VA_AKD_SOFTWARE)
		return l;
	if (!l.has_origin) {
		l.has_origin = d->sw.has_origin;
		l.origin = d->sw.origin;
	}
	if (!l.has_purpose) {
		l.has_purpose = d->sw.has_purpose;
		l.n_purpose = d->sw.n_purpose;
		memcpy(l.purpose, d->sw.purpose, sizeof(l.purpose));
	}
	return l;
}

/* Whether l's purposes are SIGN, with VERIFY allowed besides: VERIFY is
 * a public-key operation that gives the key no other use, and apps
 * usually ask for SIGN|VERIFY (WebAuthn says "equal to KM_PURPOSE_SIGN"). */
static int
purpose_sign(const struct va_akd_list *l)
{
	int sign = 0;
	size_t i;

	for (i = 0; i < l->n_purpose; i++) {
		if (l->purpose[i] == KM_PURPOSE_SIGN)
			sign = 1;
		else if (l->purpose[i] != KM_PURPOSE_VERIFY)
			return 0;
	}
	return sign;
}

/* §8.4's checks of d against the challenge and the policy. 0, or -1. */
static int
akd_check(const struct va_akd *d, const char *keyauth, int min_level, char *err,
    size_t errlen)
{
	struct va_akd_list l = akd_effective(d, min_level);
	uint8_t want[32];
	unsigned int wl = 0;

	/* "Verify that the attestationChallenge field in the attestation
	 * certificate extension data is identical to clientDataHash." */
	if (EVP_Digest(
		keyauth, strlen(keyauth), want, &wl, EVP_sha256(), NULL) != 1 ||
	    d->challenge_len != wl ||
	    CRYPTO_memcmp(d->challenge, want, wl) != 0) {
		snprintf(err, errlen,
		    "wrong nonce: attestationChallenge is not the SHA-256 of "
		    "this challenge's key authorization");
		return -1;
	}
	/* "The AuthorizationList.allApplications field is not present on
	 * either authorization list (softwareEnforced nor teeEnforced)" */
	if (d->sw.all_applications || d->tee.all_applications) {
		snprintf(err, errlen,
		    "allApplications is present: the key is not bound to one "
		    "application (WebAuthn §8.4)");
		return -1;
	}
	if (d->att_level < min_level || d->km_level < min_level) {
		snprintf(err, errlen,
		    "attestationSecurityLevel %s / keymasterSecurityLevel %s: "
		    "the policy requires %s",
		    va_android_level_name(d->att_level),
		    va_android_level_name(d->km_level),
		    va_android_level_name(min_level));
		return -1;
	}
	/* "The value in the AuthorizationList.origin field is equal to
	 * KM_ORIGIN_GENERATED. The value in the AuthorizationList.purpose
	 * field is equal to KM_PURPOSE_SIGN." */
	if (!l.has_origin || l.origin != KM_ORIGIN_GENERATED ||
	    !purpose_sign(&l)) {
		snprintf(err, errlen,
		    "the %s authorization list must have origin "
		    "KM_ORIGIN_GENERATED and purpose KM_PURPOSE_SIGN (and "
		    "KM_PURPOSE_VERIFY at most besides)",
		    min_level > VA_AKD_SOFTWARE ? "teeEnforced" : "effective");
		return -1;
	}
	return 0;
}

/* The attestationId* values of l as permanent-identifiers in idents. */
static void
akd_idents(const struct va_akd_list *l, json_t *idents)
{
	const char *ids[] = {l->serial, l->imei, l->meid};
	size_t i;

	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		if (ids[i][0] != '\0')
			json_array_append_new(idents,
			    json_pack("{s:s,s:s}", "type",
				"permanent-identifier", "value", ids[i]));
}

/* See va_int.h. */
int
va_attest_android(const struct va_attest *a, const struct va_attobj *o,
    const char *keyauth, struct va_att_result *res, char *err, size_t errlen)
{
	int min_level = va_attest_android_level(a), rc = -1;
	X509 *leaf = va_attest_x5c_signed(a, o, keyauth, err, errlen);
	struct va_akd d;

	if (leaf == NULL)
		return -1;
	if (leaf_keydesc(leaf, &d, err, errlen) != 0 ||
	    akd_check(&d, keyauth, min_level, err, errlen) != 0)
		goto out;
	if (va_attest_result_set(res, X509_get0_pubkey(leaf), NULL) != 0) {
		snprintf(err, errlen, "x5c[0]'s key cannot be encoded");
		goto out;
	}
	akd_idents(&d.tee, res->idents);
	if (min_level == VA_AKD_SOFTWARE)
		akd_idents(&d.sw, res->idents);
	rc = 0;
out:
	X509_free(leaf);
	return rc;
}
