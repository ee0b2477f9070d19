/* jwk.c - public JWK import/export, RFC 7638 thumbprints, comparison. */
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "jose/jose_int.h"

/* Members that only a private (or symmetric) key has. */
static const char *const private_members[] = {
    "d", "p", "q", "dp", "dq", "qi", "oth", "k", NULL};

struct curve {
	const char *crv;  /* JWK name */
	const char *ossl; /* OpenSSL group name */
	size_t len;       /* coordinate bytes */
	int bits;
	enum jose_alg alg;
};

static const struct curve curves[] = {
    {"P-256", "prime256v1", 32, 256, JOSE_ALG_ES256},
    {"P-384", "secp384r1", 48, 384, JOSE_ALG_ES384},
    {"P-521", "secp521r1", 66, 521, JOSE_ALG_ES512},
    {NULL, NULL, 0, 0, JOSE_ALG__MAX},
};

static const struct curve *
curve_by_name(const char *crv, int ossl)
{
	const struct curve *c;

	for (c = curves; c->crv != NULL; c++)
		if (strcmp(ossl ? c->ossl : c->crv, crv) == 0)
			return c;
	return NULL;
}

/* New jwk with canonical JSON and thumbprint; takes pkey and canon. */
static struct jwk *
jwk_build(EVP_PKEY *pkey, enum jwk_kty kty, const char *crv, enum jose_alg alg,
    int bits, json_t *canon)
{
	struct jwk *k = xcalloc(1, sizeof(*k));

	k->pkey = pkey;
	k->kty = kty;
	k->crv = crv;
	k->alg = alg;
	k->bits = bits;
	k->json = canon;
	k->thumbprint = jwk_thumbprint(k);
	return k;
}

static json_t *
b64_string(const uint8_t *b, size_t len)
{
	char *s = b64url_encode(b, len);
	json_t *j = json_string(s);

	free(s);
	if (j == NULL)
		abort();
	return j;
}

static int
jwk_parse_rsa(const json_t *obj, const struct jose_policy *p, struct jwk **out,
    struct problem **prob)
{
	uint8_t *n = NULL, *e = NULL;
	size_t nlen = 0, elen = 0;
	BIGNUM *bn_n = NULL, *bn_e = NULL;
	EVP_PKEY *pkey = NULL;
	json_t *canon = NULL;
	int bits, rc = -1;

	if (jose_b64_member(obj, "n", "RSA jwk", PROB_BAD_PUBLIC_KEY, &n, &nlen,
		prob) != 0 ||
	    jose_b64_member(
		obj, "e", "RSA jwk", PROB_BAD_PUBLIC_KEY, &e, &elen, prob) != 0)
		goto out;
	if (elen != 3 || e[0] != 1 || e[1] != 0 || e[2] != 1) {
		jose_fail(prob, PROB_BAD_PUBLIC_KEY,
		    "RSA public exponent must be 65537 (\"AQAB\")");
		goto out;
	}
	if (nlen == 0 || n[0] == 0) {
		jose_fail(prob, PROB_BAD_PUBLIC_KEY,
		    "RSA modulus \"n\" must not have leading zero octets "
		    "(RFC 7518 §6.3.1.1)");
		goto out;
	}
	if (nlen > 2048) {
		jose_fail(prob, PROB_BAD_PUBLIC_KEY, "RSA modulus too large");
		goto out;
	}
	bn_n = BN_bin2bn(n, (int)nlen, NULL);
	bn_e = BN_bin2bn(e, (int)elen, NULL);
	if (bn_n == NULL || bn_e == NULL)
		goto internal;
	bits = BN_num_bits(bn_n);
	if (bits < p->rsa_min_bits || bits > p->rsa_max_bits) {
		jose_fail(prob, PROB_BAD_PUBLIC_KEY,
		    "RSA key of %d bits: this server accepts %d to %d bits",
		    bits, p->rsa_min_bits, p->rsa_max_bits);
		goto out;
	}
	if (!BN_is_odd(bn_n)) {
		jose_fail(prob, PROB_BAD_PUBLIC_KEY,
		    "RSA modulus is even: not a valid key");
		goto out;
	}
	pkey = key_rsa_public(bn_n, bn_e);
	if (pkey == NULL) {
		jose_fail(
		    prob, PROB_BAD_PUBLIC_KEY, "RSA key could not be imported");
		goto out;
	}
	canon = json_pack("{s:o, s:s, s:o}", "e", b64_string(e, elen), "kty",
	    "RSA", "n", b64_string(n, nlen));
	if (canon == NULL)
		abort();
	*out = jwk_build(pkey, JWK_KTY_RSA, NULL, JOSE_ALG_RS256, bits, canon);
	pkey = NULL;
	rc = 0;
	goto out;
internal:
	jose_fail(prob, PROB_SERVER_INTERNAL, "RSA key import failed");
out:
	EVP_PKEY_free(pkey);
	BN_free(bn_n);
	BN_free(bn_e);
	free(n);
	free(e);
	return rc;
}

/*
 * 1 if the imported EC key passes OpenSSL's quick public key check: not the
 * point at infinity, coordinates below p, on the curve. The full check's
 * extra n*Q == O test costs a scalar multiplication and adds nothing here:
 * P-256/384/521 have cofactor 1, so every other on-curve point has order n.
 */
static int
pkey_public_ok(EVP_PKEY *pkey)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	int ok;

	if (ctx == NULL)
		return 0;
	ok = EVP_PKEY_public_check_quick(ctx) == 1;
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

static int
jwk_parse_ec(const json_t *obj, const struct jose_policy *p, struct jwk **out,
    struct problem **prob)
{
	const char *crv = json_string_value(json_object_get(obj, "crv"));
	const struct curve *c;
	uint8_t *x = NULL, *y = NULL, *pt = NULL;
	size_t xlen = 0, ylen = 0;
	EVP_PKEY *pkey = NULL;
	json_t *canon = NULL;
	int rc = -1;

	if (crv == NULL) {
		jose_fail(prob, PROB_BAD_PUBLIC_KEY,
		    "EC jwk needs a \"crv\" string (P-256 or P-384)");
		goto out;
	}
	c = curve_by_name(crv, 0);
	if (c == NULL || (c->alg == JOSE_ALG_ES512 && !p->allow_es512)) {
		jose_fail(prob, PROB_BAD_PUBLIC_KEY,
		    "EC curve \"%.40s\" is not accepted; use P-256 or P-384%s",
		    crv, p->allow_es512 ? " or P-521" : "");
		goto out;
	}
	if (jose_b64_member(obj, "x", "EC jwk", PROB_BAD_PUBLIC_KEY, &x, &xlen,
		prob) != 0 ||
	    jose_b64_member(
		obj, "y", "EC jwk", PROB_BAD_PUBLIC_KEY, &y, &ylen, prob) != 0)
		goto out;
	if (xlen != c->len || ylen != c->len) {
		jose_fail(prob, PROB_BAD_PUBLIC_KEY,
		    "EC %s coordinates must be exactly %zu bytes each "
		    "(got x %zu, y %zu)",
		    c->crv, c->len, xlen, ylen);
		goto out;
	}
	pt = xmalloc(1 + 2 * c->len);
	pt[0] = 0x04;
	memcpy(pt + 1, x, c->len);
	memcpy(pt + 1 + c->len, y, c->len);
	pkey = key_ec_public(c->ossl, pt, 1 + 2 * c->len);
	if (pkey == NULL || !pkey_public_ok(pkey)) {
		jose_fail(prob, PROB_BAD_PUBLIC_KEY,
		    "EC point is not on curve %s", c->crv);
		goto out;
	}
	canon = json_pack("{s:s, s:s, s:o, s:o}", "crv", c->crv, "kty", "EC",
	    "x", b64_string(x, xlen), "y", b64_string(y, ylen));
	if (canon == NULL)
		abort();
	*out = jwk_build(pkey, JWK_KTY_EC, c->crv, c->alg, c->bits, canon);
	pkey = NULL;
	rc = 0;
out:
	EVP_PKEY_free(pkey);
	free(x);
	free(y);
	free(pt);
	return rc;
}

static int
jwk_parse_okp(const json_t *obj, const struct jose_policy *p, struct jwk **out,
    struct problem **prob)
{
	const char *crv = json_string_value(json_object_get(obj, "crv"));
	uint8_t *x = NULL;
	size_t xlen = 0;
	EVP_PKEY *pkey = NULL;
	json_t *canon;
	int rc = -1;

	if (!p->allow_eddsa) {
		jose_fail(prob, PROB_BAD_PUBLIC_KEY,
		    "OKP (EdDSA) keys are not accepted by this server; use RSA "
		    "or EC P-256/P-384");
		goto out;
	}
	if (crv == NULL || strcmp(crv, "Ed25519") != 0) {
		jose_fail(prob, PROB_BAD_PUBLIC_KEY,
		    "OKP jwk: only crv \"Ed25519\" is accepted");
		goto out;
	}
	if (jose_b64_member(
		obj, "x", "OKP jwk", PROB_BAD_PUBLIC_KEY, &x, &xlen, prob) != 0)
		goto out;
	if (xlen != 32) {
		jose_fail(prob, PROB_BAD_PUBLIC_KEY,
		    "Ed25519 public key must be 32 bytes (got %zu)", xlen);
		goto out;
	}
	pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, xlen);
	if (pkey == NULL) {
		jose_fail(prob, PROB_BAD_PUBLIC_KEY,
		    "Ed25519 key could not be imported");
		goto out;
	}
	canon = json_pack("{s:s, s:s, s:o}", "crv", "Ed25519", "kty", "OKP",
	    "x", b64_string(x, xlen));
	if (canon == NULL)
		abort();
	*out =
	    jwk_build(pkey, JWK_KTY_OKP, "Ed25519", JOSE_ALG_EDDSA, 256, canon);
	pkey = NULL;
	rc = 0;
out:
	EVP_PKEY_free(pkey);
	free(x);
	return rc;
}

int
jwk_parse(const json_t *obj, const struct jose_policy *policy, struct jwk **out,
    struct problem **prob)
{
	struct jose_policy def;
	const char *kty, *s;
	const json_t *v;
	enum jose_alg want;
	int i, rc;

	*out = NULL;
	if (policy == NULL) {
		jose_policy_default(&def);
		policy = &def;
	}
	if (!json_is_object(obj))
		return jose_fail(
		    prob, PROB_MALFORMED, "jwk must be a JSON object");
	for (i = 0; private_members[i] != NULL; i++)
		if (json_object_get(obj, private_members[i]) != NULL)
			return jose_fail(prob, PROB_BAD_PUBLIC_KEY,
			    "jwk holds private or symmetric key material "
			    "(\"%s\"); send only the public key",
			    private_members[i]);
	kty = json_string_value(json_object_get(obj, "kty"));
	if (kty == NULL)
		return jose_fail(
		    prob, PROB_BAD_PUBLIC_KEY, "jwk needs a \"kty\" string");
	v = json_object_get(obj, "use");
	if (v != NULL &&
	    (!json_is_string(v) || strcmp(json_string_value(v), "sig") != 0))
		return jose_fail(prob, PROB_BAD_PUBLIC_KEY,
		    "jwk \"use\", if present, must be \"sig\"");
	if (strcmp(kty, "RSA") == 0)
		rc = jwk_parse_rsa(obj, policy, out, prob);
	else if (strcmp(kty, "EC") == 0)
		rc = jwk_parse_ec(obj, policy, out, prob);
	else if (strcmp(kty, "OKP") == 0)
		rc = jwk_parse_okp(obj, policy, out, prob);
	else
		return jose_fail(prob, PROB_BAD_PUBLIC_KEY,
		    "jwk kty \"%.20s\" is not supported; use RSA or EC", kty);
	if (rc != 0)
		return rc;
	v = json_object_get(obj, "alg");
	if (v != NULL) {
		want = (*out)->alg;
		s = json_string_value(v);
		if (s == NULL || strcmp(s, jose_alg_name(want)) != 0) {
			jwk_free(*out);
			*out = NULL;
			return jose_fail(prob, PROB_BAD_PUBLIC_KEY,
			    "jwk \"alg\" must be \"%s\" for this key",
			    jose_alg_name(want));
		}
	}
	return 0;
}

void
jwk_free(struct jwk *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	json_decref(k->json);
	free(k->thumbprint);
	free(k);
}

/* See jose.h. */
struct jwk *
jwk_dup(const struct jwk *k)
{
	struct jwk *d;

	if (k == NULL || EVP_PKEY_up_ref(k->pkey) != 1)
		return NULL;
	d = xcalloc(1, sizeof(*d));
	*d = *k;
	d->json = json_deep_copy(k->json);
	d->thumbprint = xstrdup(k->thumbprint);
	return d;
}

char *
jwk_thumbprint(const struct jwk *k)
{
	/* The canonical JSON holds exactly the required members; sorted
	 * keys and no whitespace is RFC 7638 §3's form. */
	char *s = json_dumps(k->json, JSON_COMPACT | JSON_SORT_KEYS);
	uint8_t md[32];
	char *out;

	if (s == NULL)
		abort();
	sha256((const uint8_t *)s, strlen(s), md);
	free(s);
	out = b64url_encode(md, sizeof(md));
	return out;
}

int
jwk_equal(const struct jwk *a, const struct jwk *b)
{
	if (a == NULL || b == NULL)
		return 0;
	if (a->kty != b->kty || a->alg != b->alg)
		return 0;
	return EVP_PKEY_eq(a->pkey, b->pkey) == 1;
}

/* See jose_int.h. */
int
jose_jwk_json_is(const json_t *obj, const struct jwk *key)
{
	struct jose_policy any;
	struct jwk *k = NULL;
	int eq;

	/* any key the outer JWS accepted: compare, do not re-judge */
	jose_policy_permissive(&any);
	eq = jwk_parse(obj, &any, &k, NULL) == 0 && jwk_equal(k, key);
	jwk_free(k);
	return eq;
}

json_t *
jwk_to_json(const struct jwk *k)
{
	return json_deep_copy(k->json);
}

static json_t *
bn_param_b64(EVP_PKEY *pkey, const char *name, size_t padlen)
{
	BIGNUM *bn = NULL;
	uint8_t *buf = NULL;
	json_t *j = NULL;
	int len;

	if (!EVP_PKEY_get_bn_param(pkey, name, &bn))
		goto out;
	len = padlen ? (int)padlen : BN_num_bytes(bn);
	buf = xmalloc((size_t)len + 1);
	if (BN_bn2binpad(bn, buf, len) != len)
		goto out;
	j = b64_string(buf, (size_t)len);
out:
	free(buf);
	BN_free(bn);
	return j;
}

json_t *
jwk_from_pkey(EVP_PKEY *pkey)
{
	char group[64];
	size_t glen = 0, rawlen = 32;
	uint8_t raw[32];
	const struct curve *c;
	json_t *a = NULL, *b = NULL, *out = NULL;

	switch (EVP_PKEY_get_base_id(pkey)) {
	case EVP_PKEY_RSA:
		a = bn_param_b64(pkey, OSSL_PKEY_PARAM_RSA_E, 0);
		b = bn_param_b64(pkey, OSSL_PKEY_PARAM_RSA_N, 0);
		if (a != NULL && b != NULL)
			out = json_pack(
			    "{s:O, s:s, s:O}", "e", a, "kty", "RSA", "n", b);
		break;
	case EVP_PKEY_EC:
		if (!EVP_PKEY_get_utf8_string_param(pkey,
			OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
			&glen))
			break;
		c = curve_by_name(group, 1);
		if (c == NULL)
			break;
		a = bn_param_b64(pkey, OSSL_PKEY_PARAM_EC_PUB_X, c->len);
		b = bn_param_b64(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, c->len);
		if (a != NULL && b != NULL)
			out = json_pack("{s:s, s:s, s:O, s:O}", "crv", c->crv,
			    "kty", "EC", "x", a, "y", b);
		break;
	case EVP_PKEY_ED25519:
		if (EVP_PKEY_get_raw_public_key(pkey, raw, &rawlen) != 1 ||
		    rawlen != 32)
			break;
		a = b64_string(raw, rawlen);
		out = json_pack(
		    "{s:s, s:s, s:O}", "crv", "Ed25519", "kty", "OKP", "x", a);
		break;
	default:
		break;
	}
	json_decref(a);
	json_decref(b);
	return out;
}
