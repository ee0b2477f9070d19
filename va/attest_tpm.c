/*
 * attest_tpm.c - the "tpm" attestation statement format (WebAuthn §8.3)
 * as device-attest-01 uses it (draft-ietf-acme-device-attest §5: "The key
 * authorization is used to form attToBeSigned"):
 *
 *   attStmt = {"ver": "2.0", "alg": -7 / -257, "x5c": [AK cert, CAs...],
 *              "sig": bytes, "certInfo": TPMS_ATTEST, "pubArea": TPMT_PUBLIC}
 *
 * Checks: the AK certificate chains to attestation.tpm_roots and carries
 * the tcg-kp-AIKCertificate EKU (WebAuthn §8.3.1); sig is the AK's
 * signature over certInfo (ES256: DER ECDSA, RS256: PKCS#1 v1.5, both
 * SHA-256); certInfo is TPM_GENERATED_VALUE / TPM_ST_ATTEST_CERTIFY with
 * extraData = SHA-256(key authorization) and attested.name = the name of
 * pubArea (nameAlg || H(pubArea)). The device identifiers are the
 * PermanentIdentifier / HardwareModuleName otherNames of the AK
 * certificate; the attested key is pubArea's.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509v3.h>

#include "va/va_int.h"

#define TPM_GENERATED_VALUE 0xff544347u
#define TPM_ST_ATTEST_CERTIFY 0x8017u
#define TPM_ST_ATTEST_QUOTE 0x8018u
#define TPM_ALG_RSA 0x0001u
#define TPM_ALG_SHA1 0x0004u
#define TPM_ALG_SHA256 0x000bu
#define TPM_ALG_SHA384 0x000cu
#define TPM_ALG_NULL 0x0010u
#define TPM_ALG_ECC 0x0023u
#define TPM_ECC_NIST_P256 0x0003u
#define TPM_ECC_NIST_P384 0x0004u

/* A bounded reader over TPM's big-endian structures. */
struct rd {
	const uint8_t *p;
	size_t left;
	int bad;
};

static uint32_t
rd_u(struct rd *r, size_t n)
{
	uint32_t v = 0;
	size_t i;

	if (r->bad || r->left < n) {
		r->bad = 1;
		return 0;
	}
	for (i = 0; i < n; i++)
		v = (v << 8) | r->p[i];
	r->p += n;
	r->left -= n;
	return v;
}

/* A TPM2B: size (2 bytes) then that many bytes; *d points at them. */
static size_t
rd_2b(struct rd *r, const uint8_t **d)
{
	size_t n = rd_u(r, 2);

	if (r->bad || r->left < n) {
		r->bad = 1;
		*d = NULL;
		return 0;
	}
	*d = r->p;
	r->p += n;
	r->left -= n;
	return n;
}

static void
rd_skip(struct rd *r, size_t n)
{
	if (r->bad || r->left < n) {
		r->bad = 1;
		return;
	}
	r->p += n;
	r->left -= n;
}

static const EVP_MD *
tpm_md(uint32_t alg)
{
	switch (alg) {
	case TPM_ALG_SHA1:
		return EVP_sha1();
	case TPM_ALG_SHA256:
		return EVP_sha256();
	case TPM_ALG_SHA384:
		return EVP_sha384();
	default:
		return NULL;
	}
}

/* An RSA public key n (modulus, nlen bytes), e; NULL on failure. */
static EVP_PKEY *
rsa_key(const uint8_t *n, size_t nlen, uint32_t e)
{
	OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *k = NULL;
	BIGNUM *bn = BN_bin2bn(n, (int)nlen, NULL), *be = BN_new();

	if (b == NULL || bn == NULL || be == NULL ||
	    BN_set_word(be, e ? e : 65537) != 1 ||
	    OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_N, bn) != 1 ||
	    OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_E, be) != 1 ||
	    (params = OSSL_PARAM_BLD_to_param(b)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params) != 1)
		k = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(b);
	BN_free(bn);
	BN_free(be);
	return k;
}

/* An EC public key on curve (TPM id) with coordinates x, y. */
static EVP_PKEY *
ec_key(uint32_t curve, const uint8_t *x, size_t xl, const uint8_t *y,
    size_t yl)
{
	const char *group = curve == TPM_ECC_NIST_P256 ? "prime256v1"
	    : curve == TPM_ECC_NIST_P384		     ? "secp384r1"
							     : NULL;
	size_t cl = curve == TPM_ECC_NIST_P256 ? 32 : 48;
	uint8_t pt[1 + 2 * 48];
	OSSL_PARAM params[3];
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *k = NULL;

	if (group == NULL || xl == 0 || yl == 0 || xl > cl || yl > cl)
		return NULL;
	memset(pt, 0, sizeof(pt));
	pt[0] = 0x04;
	memcpy(pt + 1 + cl - xl, x, xl);
	memcpy(pt + 1 + 2 * cl - yl, y, yl);
	params[0] = OSSL_PARAM_construct_utf8_string(
	    OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0);
	params[1] = OSSL_PARAM_construct_octet_string(
	    OSSL_PKEY_PARAM_PUB_KEY, pt, 1 + 2 * cl);
	params[2] = OSSL_PARAM_construct_end();
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params) != 1)
		k = NULL;
	EVP_PKEY_CTX_free(ctx);
	return k;
}

/* TPMT_SYM_DEF_OBJECT then the scheme (TPMT_*_SCHEME): skipped. */
static void
skip_sym_and_scheme(struct rd *r)
{
	if (rd_u(r, 2) != TPM_ALG_NULL)
		rd_skip(r, 4); /* keyBits, mode */
	if (rd_u(r, 2) != TPM_ALG_NULL)
		rd_skip(r, 2); /* hashAlg */
}

/*
 * The public key of a TPMT_PUBLIC (RSA or ECC P-256/P-384) and its
 * nameAlg. NULL with err.
 */
static EVP_PKEY *
pub_area_key(const uint8_t *d, size_t n, uint32_t *name_alg, char *err,
    size_t errlen)
{
	struct rd r = {d, n, 0};
	const uint8_t *u, *x, *y;
	uint32_t type, e = 0, curve = 0;
	size_t ul, xl = 0, yl = 0;
	EVP_PKEY *k = NULL;

	type = rd_u(&r, 2);
	*name_alg = rd_u(&r, 2);
	rd_skip(&r, 4);     /* objectAttributes */
	(void)rd_2b(&r, &u); /* authPolicy */
	if (type == TPM_ALG_RSA) {
		skip_sym_and_scheme(&r);
		rd_skip(&r, 2); /* keyBits */
		e = rd_u(&r, 4);
		ul = rd_2b(&r, &u);
		if (!r.bad && r.left == 0 && ul >= 256 && ul <= 512)
			k = rsa_key(u, ul, e);
	} else if (type == TPM_ALG_ECC) {
		skip_sym_and_scheme(&r);
		curve = rd_u(&r, 2);
		if (rd_u(&r, 2) != TPM_ALG_NULL) /* kdf */
			rd_skip(&r, 2);
		xl = rd_2b(&r, &x);
		yl = rd_2b(&r, &y);
		if (!r.bad && r.left == 0)
			k = ec_key(curve, x, xl, y, yl);
	}
	if (k == NULL)
		snprintf(err, errlen,
		    "pubArea is not a well-formed RSA or NIST P-256/P-384 "
		    "TPMT_PUBLIC");
	return k;
}

/*
 * TPMS_ATTEST of TPM2_Certify: magic, type, extraData and the attested
 * name. 0 or -1 with err.
 */
static int
parse_cert_info(const uint8_t *d, size_t n, const uint8_t **extra,
    size_t *extra_len, const uint8_t **name, size_t *name_len, char *err,
    size_t errlen)
{
	struct rd r = {d, n, 0};
	const uint8_t *skip;

	if (rd_u(&r, 4) != TPM_GENERATED_VALUE) {
		snprintf(err, errlen,
		    "certInfo.magic is not TPM_GENERATED_VALUE");
		return -1;
	}
	if (rd_u(&r, 2) != TPM_ST_ATTEST_CERTIFY) {
		snprintf(err, errlen,
		    "certInfo.type is not TPM_ST_ATTEST_CERTIFY");
		return -1;
	}
	(void)rd_2b(&r, &skip); /* qualifiedSigner */
	*extra_len = rd_2b(&r, extra);
	rd_skip(&r, 17); /* clockInfo */
	rd_skip(&r, 8);  /* firmwareVersion */
	*name_len = rd_2b(&r, name);
	(void)rd_2b(&r, &skip); /* qualifiedName */
	if (r.bad || r.left != 0) {
		snprintf(err, errlen, "certInfo is not a TPMS_ATTEST");
		return -1;
	}
	return 0;
}

/* The AK certificate's EKU holds tcg-kp-AIKCertificate (2.23.133.8.3). */
static int
has_aik_eku(X509 *x)
{
	EXTENDED_KEY_USAGE *eku;
	ASN1_OBJECT *want = OBJ_txt2obj("2.23.133.8.3", 1);
	int i, ok = 0;

	eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
	for (i = 0; want != NULL && eku != NULL &&
	     i < sk_ASN1_OBJECT_num(eku);
	     i++)
		if (OBJ_cmp(sk_ASN1_OBJECT_value(eku, i), want) == 0)
			ok = 1;
	EXTENDED_KEY_USAGE_free(eku);
	ASN1_OBJECT_free(want);
	return ok;
}

/* sig over certInfo by the AK (SHA-256). 0 or -1 with err. */
static int
check_sig(X509 *ak, const struct va_attobj *o, char *err, size_t errlen)
{
	if (va_attest_sig_ok(ak, o, o->cert_info, o->cert_info_len))
		return 0;
	snprintf(err, errlen, "sig is not the AK's signature over certInfo");
	return -1;
}

/* extraData = SHA-256(keyauth) and attested name = name of pubArea. */
static int
check_binding(const struct va_attobj *o, const char *keyauth, char *err,
    size_t errlen)
{
	const uint8_t *extra, *name;
	size_t extra_len, name_len;
	uint8_t want[EVP_MAX_MD_SIZE + 2];
	unsigned int wl = 0;
	uint32_t alg;
	const EVP_MD *md;

	if (parse_cert_info(o->cert_info, o->cert_info_len, &extra,
		&extra_len, &name, &name_len, err, errlen) != 0)
		return -1;
	/* §5 step 2: "Verify that attToBeSigned contains the key
	 * authorization ... and that the value matches what the Server
	 * stored." */
	if (EVP_Digest(keyauth, strlen(keyauth), want, &wl, EVP_sha256(),
		NULL) != 1 ||
	    extra_len != wl || CRYPTO_memcmp(extra, want, wl) != 0) {
		snprintf(err, errlen,
		    "certInfo.extraData is not the SHA-256 of this "
		    "challenge's key authorization (wrong nonce)");
		return -1;
	}
	alg = o->pub_area_len >= 4
	    ? ((uint32_t)o->pub_area[2] << 8) | o->pub_area[3]
	    : 0;
	if ((md = tpm_md(alg)) == NULL) {
		snprintf(err, errlen, "pubArea.nameAlg is not supported");
		return -1;
	}
	want[0] = (uint8_t)(alg >> 8);
	want[1] = (uint8_t)alg;
	if (EVP_Digest(o->pub_area, o->pub_area_len, want + 2, &wl, md,
		NULL) != 1 ||
	    name_len != wl + 2 || memcmp(name, want, name_len) != 0) {
		snprintf(err, errlen,
		    "certInfo.attested.name is not the name of pubArea");
		return -1;
	}
	return 0;
}

/*
 * The AK certificate of o (new reference) when it chains to the tpm roots,
 * has the AIK EKU and signed o->cert_info; else NULL with err.
 */
static X509 *
trusted_ak(const struct va_attest *a, const struct va_attobj *o, char *err,
    size_t errlen)
{
	X509 *ak = va_attest_chain(a, "tpm", o, err, errlen);

	if (ak == NULL)
		return NULL;
	if (!has_aik_eku(ak)) {
		snprintf(err, errlen,
		    "the AK certificate lacks the tcg-kp-AIKCertificate EKU "
		    "(2.23.133.8.3)");
		X509_free(ak);
		return NULL;
	}
	if (check_sig(ak, o, err, errlen) != 0) {
		X509_free(ak);
		return NULL;
	}
	return ak;
}

/* See va_int.h. */
int
va_attest_tpm_quote(const struct va_attest *a, const struct va_attobj *o,
    const char *nonce, const uint8_t **pcr_digest, size_t *pcr_digest_len,
    char *err, size_t errlen)
{
	struct rd r = {o->cert_info, o->cert_info_len, 0};
	const uint8_t *skip, *extra;
	uint8_t want[32];
	size_t extra_len, i, n;
	X509 *ak;

	if ((ak = trusted_ak(a, o, err, errlen)) == NULL)
		return -1;
	X509_free(ak);
	if (rd_u(&r, 4) != TPM_GENERATED_VALUE ||
	    rd_u(&r, 2) != TPM_ST_ATTEST_QUOTE) {
		snprintf(err, errlen,
		    "the quote is not TPM_GENERATED_VALUE / "
		    "TPM_ST_ATTEST_QUOTE");
		return -1;
	}
	(void)rd_2b(&r, &skip); /* qualifiedSigner */
	extra_len = rd_2b(&r, &extra);
	rd_skip(&r, 17); /* clockInfo */
	rd_skip(&r, 8);  /* firmwareVersion */
	n = rd_u(&r, 4); /* TPML_PCR_SELECTION.count */
	for (i = 0; i < n && i < 16 && !r.bad; i++) {
		rd_skip(&r, 2);            /* hash */
		rd_skip(&r, rd_u(&r, 1)); /* sizeofSelect, pcrSelect */
	}
	*pcr_digest_len = rd_2b(&r, pcr_digest);
	if (r.bad || r.left != 0 || n > 16) {
		snprintf(err, errlen, "the quote is not a TPMS_ATTEST");
		return -1;
	}
	if (EVP_Digest(nonce, strlen(nonce), want, NULL, EVP_sha256(), NULL) !=
		1 ||
	    extra_len != sizeof(want) || memcmp(extra, want, sizeof(want)) != 0) {
		snprintf(err, errlen,
		    "wrong nonce: the quote's extraData is not "
		    "SHA-256(freshness_nonce)");
		return -1;
	}
	return 0;
}

/* See va_int.h. */
int
va_attest_tpm(const struct va_attest *a, const struct va_attobj *o,
    const char *keyauth, struct va_att_result *res, char *err, size_t errlen)
{
	EVP_PKEY *key = NULL;
	X509 *ak = NULL;
	uint32_t name_alg = 0;
	int rc = -1;

	if (strcmp(o->ver, "2.0") != 0 || !o->has_alg ||
	    (o->alg != -7 && o->alg != -257) || o->sig == NULL ||
	    o->cert_info == NULL || o->pub_area == NULL) {
		snprintf(err, errlen,
		    "a tpm attStmt needs ver \"2.0\", alg -7 or -257, sig, "
		    "certInfo, pubArea and x5c");
		return -1;
	}
	if ((ak = trusted_ak(a, o, err, errlen)) == NULL ||
	    check_binding(o, keyauth, err, errlen) != 0)
		goto out;
	key = pub_area_key(o->pub_area, o->pub_area_len, &name_alg, err,
	    errlen);
	if (key == NULL || va_attest_result_set(res, key, ak) != 0)
		goto out;
	rc = 0;
out:
	EVP_PKEY_free(key);
	X509_free(ak);
	return rc;
}
