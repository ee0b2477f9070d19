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
#include <openssl/evp.h>
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
 * EC key rebuilt from its named curve and uncompressed point. NULL when the
 * curve has no name (explicit parameters of an unknown curve).
 */
static EVP_PKEY *
canonical_ec(const EVP_PKEY *pk)
{
	char group[64];
	size_t glen = 0, flen;
	BIGNUM *x = NULL, *y = NULL;
	unsigned char pt[1 + 2 * 66];
	EVP_PKEY *out = NULL;

	if (!EVP_PKEY_get_utf8_string_param(
		pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &glen) ||
	    glen == 0)
		return NULL;
	flen = ((size_t)EVP_PKEY_get_bits(pk) + 7) / 8;
	if (flen == 0 || flen > 66 ||
	    !EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_X, &x) ||
	    !EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_Y, &y))
		goto out;
	pt[0] = 0x04; /* uncompressed (RFC 5480 §2.2) */
	if (BN_bn2binpad(x, pt + 1, (int)flen) < 0 ||
	    BN_bn2binpad(y, pt + 1 + flen, (int)flen) < 0)
		goto out;
	out = key_ec_public(group, pt, 1 + 2 * flen);
out:
	BN_free(x);
	BN_free(y);
	return out;
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
		c = canonical_ec(pk);
		break;
	default:
		return -1;
	}
	if (c == NULL)
		return -1;
	n = i2d_PUBKEY(c, der);
	EVP_PKEY_free(c);
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
