/*
 * keyenc.c - the one canonical encoding of a subject public key, and the
 * key hash every process derives from it (issue 19).
 *
 * The key hash names a key in blocked_keys and key_hash_to_serial. The CA
 * stores it with each certificate, the RA checks it at finalize, anvil-admin
 * computes it for revoke-by-key: all of them call key_hash_hex, so a key
 * blocked once is blocked however a later CSR encodes it.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "core/core.h"

/* A new public-only key of type name from params; NULL on error. */
static EVP_PKEY *
key_from_params(const char *name, OSSL_PARAM_BLD *bld)
{
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *out = NULL;
	OSSL_PARAM *params = NULL;

	if ((params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, name, NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &out, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
		EVP_PKEY_free(out);
		out = NULL;
	}
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return out;
}

/* See core.h. */
EVP_PKEY *
key_rsa_public(const BIGNUM *n, const BIGNUM *e)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	EVP_PKEY *out = NULL;

	if (bld != NULL &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
		out = key_from_params("RSA", bld);
	OSSL_PARAM_BLD_free(bld);
	return out;
}

/* See core.h. */
EVP_PKEY *
key_ec_public(const char *group, const unsigned char *pt, size_t len)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	EVP_PKEY *out = NULL;

	if (bld != NULL &&
	    OSSL_PARAM_BLD_push_utf8_string(
		bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) &&
	    OSSL_PARAM_BLD_push_octet_string(
		bld, OSSL_PKEY_PARAM_PUB_KEY, pt, len))
		out = key_from_params("EC", bld);
	OSSL_PARAM_BLD_free(bld);
	return out;
}

/* RSA key rebuilt from (n, e): encodes as rsaEncryption with NULL params. */
static EVP_PKEY *
canonical_rsa(const EVP_PKEY *pk)
{
	BIGNUM *n = NULL, *e = NULL;
	EVP_PKEY *out = NULL;

	if (EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &n) &&
	    EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e))
		out = key_rsa_public(n, e);
	BN_free(n);
	BN_free(e);
	return out;
}

/*
 * The canonical SPKI of an EC key (namedCurve parameters, uncompressed
 * point: what i2d_PUBKEY of the key rebuilt with key_ec_public writes;
 * test_core's test_spki_ec_canonical compares both) assembled as ASN.1
 * with X509_PUBKEY_set0_param. OpenSSL 3.0's i2d_PUBKEY builds a key and an
 * OSSL_ENCODER context for every call, which made this the most expensive
 * step of a finalize in the RA and the CA. Length of *der, or -1.
 */
static int
spki_ec_der(const EVP_PKEY *pk, unsigned char **der)
{
	char group[64];
	size_t glen = 0, flen;
	BIGNUM *x = NULL, *y = NULL;
	unsigned char *pt = NULL;
	X509_PUBKEY *xpk = NULL;
	int nid, n = -1;

	if (!EVP_PKEY_get_utf8_string_param(
		pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &glen) ||
	    glen == 0)
		return -1;
	if ((nid = OBJ_sn2nid(group)) == NID_undef &&
	    (nid = EC_curve_nist2nid(group)) == NID_undef)
		return -1;
	flen = ((size_t)EVP_PKEY_get_bits(pk) + 7) / 8;
	if (flen == 0 || flen > 66 ||
	    !EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_X, &x) ||
	    !EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_Y, &y) ||
	    (pt = OPENSSL_malloc(1 + 2 * flen)) == NULL)
		goto out;
	pt[0] = 0x04; /* uncompressed (RFC 5480 §2.2) */
	if (BN_bn2binpad(x, pt + 1, (int)flen) < 0 ||
	    BN_bn2binpad(y, pt + 1 + flen, (int)flen) < 0 ||
	    (xpk = X509_PUBKEY_new()) == NULL ||
	    !X509_PUBKEY_set0_param(xpk, OBJ_nid2obj(NID_X9_62_id_ecPublicKey),
		V_ASN1_OBJECT, OBJ_nid2obj(nid), pt, (int)(1 + 2 * flen)))
		goto out;
	pt = NULL; /* owned by xpk */
	n = i2d_X509_PUBKEY(xpk, der);
out:
	OPENSSL_free(pt);
	X509_PUBKEY_free(xpk);
	BN_free(x);
	BN_free(y);
	return n;
}

/* See core.h. */
int
key_spki_der(const EVP_PKEY *pk, unsigned char **der, size_t *len)
{
	EVP_PKEY *c = NULL;
	int n = -1;

	*der = NULL;
	*len = 0;
	if (pk == NULL)
		return -1;
	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_RSA:
		c = canonical_rsa(pk);
		break;
	case EVP_PKEY_EC:
		n = spki_ec_der(pk, der);
		break;
	default:
		return -1;
	}
	if (c != NULL) {
		n = i2d_PUBKEY(c, der);
		EVP_PKEY_free(c);
	}
	if (n <= 0) {
		*der = NULL;
		return -1;
	}
	*len = (size_t)n;
	return 0;
}

/* See core.h. */
char *
key_hash_hex(const EVP_PKEY *pk)
{
	unsigned char *der = NULL;
	size_t len = 0;
	uint8_t h[32];

	if (key_spki_der(pk, &der, &len) != 0)
		return NULL;
	sha256(der, len, h);
	OPENSSL_free(der);
	return hex_encode(h, sizeof(h));
}

/* See core.h. */
int
key_spki_is_canonical(const X509_PUBKEY *xpk)
{
	unsigned char *raw = NULL, *der = NULL;
	size_t len = 0;
	EVP_PKEY *pk;
	int n, ok = 0;

	if (xpk == NULL || (pk = X509_PUBKEY_get0(xpk)) == NULL)
		return 0;
	if (key_spki_der(pk, &der, &len) != 0)
		return 0;
	n = i2d_X509_PUBKEY(xpk, &raw);
	ok = n > 0 && (size_t)n == len && memcmp(raw, der, len) == 0;
	OPENSSL_free(raw);
	OPENSSL_free(der);
	return ok;
}
