/*
 * rats_tpm.c - the background-check verifier of remote-attest-01
 * (draft-ietf-acme-rats §1: "ACME servers can leverage the Remote
 * Attestation ecosystem ... by directly consuming evidence"): TPM 2.0
 * evidence, a TPM2_Quote over the challenge's freshness nonce, appraised
 * by the VA itself (RFC 9334 §5.2: here the Relying Party hosts the
 * Verifier). The CMW record's media type is
 * "application/vnd.anvil.tpm2-quote+json" (no registered CMW type carries
 * a bare TPM quote) and its value the JSON object
 *
 *   {"x5c": [base64url DER AK certificate, CA certificates...],
 *    "alg": -7 (ES256, DER ECDSA) | -257 (RS256, PKCS#1 v1.5),
 *    "quote": base64url TPMS_ATTEST, "sig": base64url signature}
 *
 * Checks (va_attest_tpm_quote): the AK certificate chains to the
 * device-attest-01 tpm roots (va.json attestation.tpm_roots) with the AIK
 * EKU, sig is the AK's over the quote, the quote's extraData is
 * SHA-256(freshness_nonce). Appraisal: the quote's PCR digest against the
 * reference values rats.tpm_pcr_digests: one of them -> affirming, none
 * -> contraindicated; no reference values -> warning (a genuine, fresh
 * TPM whose state nobody appraised).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "va/va_int.h"

/* Strict base64url member name of o into *out (malloc'd). 0 or -1. */
static int
b64_member(const json_t *o, const char *name, uint8_t **out, size_t *len)
{
	const char *s = json_string_value(json_object_get(o, name));

	*out = NULL;
	return s != NULL && b64url_decode(s, strlen(s), out, len) == 0 ? 0 : -1;
}

/* See va_int.h. */
int
va_rats_tpm_verify(const struct va_rats *r, const uint8_t *msg, size_t len,
    const char *nonce, const char *hint, struct va_rats_verdict *v,
    char *err, size_t errlen)
{
	uint8_t *x5c[VA_ATT_MAX_X5C] = {NULL}, *quote = NULL, *sig = NULL;
	const uint8_t *digest = NULL;
	const json_t *certs, *alg;
	struct va_attobj o;
	json_t *ev;
	char *hex = NULL;
	size_t i, dlen = 0;
	int rc = -1, known;

	(void)hint;
	memset(&o, 0, sizeof(o));
	ev = json_loadb((const char *)msg, len, JSON_REJECT_DUPLICATES, NULL);
	certs = json_object_get(ev, "x5c");
	alg = json_object_get(ev, "alg");
	if (!json_is_object(ev) || !json_is_array(certs) ||
	    json_array_size(certs) == 0 ||
	    json_array_size(certs) > VA_ATT_MAX_X5C ||
	    (alg != NULL && !json_is_integer(alg)) ||
	    b64_member(ev, "quote", &quote, &o.cert_info_len) != 0 ||
	    b64_member(ev, "sig", &sig, &o.sig_len) != 0) {
		snprintf(err, errlen,
		    "the evidence is not {\"x5c\": [AK certificate...], "
		    "\"alg\", \"quote\", \"sig\"} with base64url values");
		goto out;
	}
	for (i = 0; i < json_array_size(certs); i++) {
		const char *c = json_string_value(json_array_get(certs, i));
		if (c == NULL ||
		    b64url_decode(c, strlen(c), &x5c[i], &o.x5c_len[i]) != 0) {
			snprintf(err, errlen, "x5c[%zu] is not base64url", i);
			goto out;
		}
		o.x5c[i] = x5c[i];
	}
	o.n_x5c = json_array_size(certs);
	snprintf(o.fmt, sizeof(o.fmt), "tpm");
	o.has_alg = 1;
	o.alg = alg != NULL ? json_integer_value(alg) : -7;
	o.cert_info = quote;
	o.sig = sig;
	if (o.alg != -7 && o.alg != -257) {
		snprintf(err, errlen, "alg must be -7 (ES256) or -257 (RS256)");
		goto out;
	}
	if (va_attest_tpm_quote(va_rats_attest(r), &o, nonce, &digest, &dlen,
		err, errlen) != 0)
		goto out;
	hex = hex_encode(digest, dlen);
	known = va_rats_pcr_digest_known(r, hex);
	snprintf(v->status, sizeof(v->status), "%s",
	    known == 1 ? "affirming"
	    : known == 0 ? "contraindicated"
			 : "warning");
	snprintf(v->where, sizeof(v->where), "PCR digest %.16s...", hex);
	snprintf(v->verifier, sizeof(v->verifier),
	    "anvil-va tpm2-quote (AK chains to attestation.tpm_roots)");
	rc = 0;
out:
	for (i = 0; i < VA_ATT_MAX_X5C; i++)
		free(x5c[i]);
	free(quote);
	free(sig);
	free(hex);
	json_decref(ev);
	return rc;
}
