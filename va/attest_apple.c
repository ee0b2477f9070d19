/*
 * attest_apple.c - the "apple" format of Apple's managed device
 * attestation as device-attest-01 uses it:
 *
 *   attStmt = {"x5c": [leaf, intermediates...]}
 *
 * Apple's attestation service signs the leaf before the account key is
 * known, so attToBeSigned is the token alone (draft-ietf-acme-device-
 * attest §5: "In these formats, attToBeSigned is formed from the token
 * alone"): the leaf's freshness extension 1.2.840.113635.100.8.11.1 holds
 * SHA-256(token). The device identifiers are the serial number
 * (1.2.840.113635.100.8.9.1) and the UDID (1.2.840.113635.100.8.9.2),
 * each a permanent-identifier; the attested key is the leaf's. The leaf
 * must chain to attestation.apple_roots (Apple's Enterprise Attestation
 * Root CA in production, a test root in tests).
 */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "va/va_int.h"

/* The raw value of the leaf's extension oid (borrowed) or NULL. */
static const ASN1_OCTET_STRING *
ext_value(X509 *x, const char *oid)
{
	ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
	int i = o != NULL ? X509_get_ext_by_OBJ(x, o, -1) : -1;

	ASN1_OBJECT_free(o);
	if (i < 0)
		return NULL;
	return X509_EXTENSION_get_data(X509_get_ext(x, i));
}

/* A printable identifier extension as a permanent-identifier. */
static void
add_ident(X509 *x, const char *oid, json_t *idents)
{
	const ASN1_OCTET_STRING *v = ext_value(x, oid);
	const unsigned char *d;
	char buf[256];
	int n, i;

	if (v == NULL)
		return;
	d = ASN1_STRING_get0_data(v);
	n = ASN1_STRING_length(v);
	if (n <= 0 || (size_t)n >= sizeof(buf))
		return;
	for (i = 0; i < n; i++)
		if (d[i] < 0x20 || d[i] == '/' || d[i] > 0x7e)
			return;
	memcpy(buf, d, (size_t)n);
	buf[n] = '\0';
	json_array_append_new(idents,
	    json_pack("{s:s,s:s}", "type", "permanent-identifier", "value",
		buf));
}

/* See va_int.h. */
int
va_attest_apple(const struct va_attest *a, const struct va_attobj *o,
    const char *token, struct va_att_result *res, char *err, size_t errlen)
{
	const ASN1_OCTET_STRING *nonce;
	uint8_t want[32];
	unsigned int wl = 0;
	X509 *leaf = NULL;
	int rc = -1;

	if ((leaf = va_attest_chain(a, "apple", o, err, errlen)) == NULL)
		goto out;
	nonce = ext_value(leaf, "1.2.840.113635.100.8.11.1");
	if (nonce == NULL) {
		snprintf(err, errlen,
		    "the attestation certificate has no nonce extension "
		    "(1.2.840.113635.100.8.11.1)");
		goto out;
	}
	if (EVP_Digest(token, strlen(token), want, &wl, EVP_sha256(), NULL) !=
		1 ||
	    ASN1_STRING_length(nonce) != (int)wl ||
	    CRYPTO_memcmp(ASN1_STRING_get0_data(nonce), want, wl) != 0) {
		snprintf(err, errlen,
		    "the nonce extension is not the SHA-256 of this "
		    "challenge's token (wrong nonce)");
		goto out;
	}
	if (va_attest_spki_hash(X509_get0_pubkey(leaf), res->spki_sha256) !=
	    0) {
		snprintf(err, errlen, "the attested key cannot be read");
		goto out;
	}
	res->have_key = 1;
	add_ident(leaf, "1.2.840.113635.100.8.9.1", res->idents); /* serial */
	add_ident(leaf, "1.2.840.113635.100.8.9.2", res->idents); /* UDID */
	rc = 0;
out:
	X509_free(leaf);
	return rc;
}
