/*
 * attest_packed.c - the "packed" attestation statement format (WebAuthn
 * §8.2), x5c path only, as device-attest-01 uses it
 * (draft-ietf-acme-device-attest §5: "The key authorization is used to
 * form attToBeSigned. This replaces the concatenation of
 * authenticatorData and clientDataHash"):
 *
 *   attStmt = {"alg": -7 / -257, "sig": bytes, "x5c": [attestnCert, CAs]}
 *
 * Checks (WebAuthn §8.2 verification procedure, "If x5c is present"):
 * attestnCert chains to attestation.packed_roots, is a version 3
 * certificate that is not a CA (§8.2.1), and sig is its signature over
 * attToBeSigned = the key authorization with alg. Self attestation (no
 * x5c) is refused: nothing but the device itself would vouch for it. The
 * device identifiers are attestnCert's PermanentIdentifier /
 * HardwareModuleName otherNames; the attested key is attestnCert's (the
 * credential public key lives in authData, which the draft says SHOULD be
 * omitted). §8.2.1's subject OU "Authenticator Attestation" and the AAGUID
 * extension are FIDO authenticator rules and are not checked.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "va/va_int.h"

/* See va_int.h. */
int
va_attest_packed(const struct va_attest *a, const struct va_attobj *o,
    const char *keyauth, struct va_att_result *res, char *err, size_t errlen)
{
	X509 *leaf = va_attest_x5c_signed(a, o, keyauth, err, errlen);
	int rc = -1;

	if (leaf == NULL)
		return -1;
	/* §8.2.1: "Version MUST be set to 3"; "Basic Constraints ... CA
	 * component MUST be set to false" */
	if (X509_get_version(leaf) != X509_VERSION_3 ||
	    X509_check_ca(leaf) != 0) {
		snprintf(err, errlen,
		    "attestnCert must be a version 3 certificate that is not "
		    "a CA (WebAuthn §8.2.1)");
		goto out;
	}
	if (va_attest_result_set(res, X509_get0_pubkey(leaf), leaf) != 0) {
		snprintf(err, errlen, "attestnCert's key cannot be encoded");
		goto out;
	}
	rc = 0;
out:
	X509_free(leaf);
	return rc;
}
