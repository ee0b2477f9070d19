/* sign.c - JWS signing for tests, tools and the load generator. */
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "jose/jose_int.h"

/* "<b64 header>.<b64 payload>" with alg set in a copy of hdr. */
static char *
signing_input(const json_t *hdr, const char *alg, const uint8_t *payload,
    size_t payload_len)
{
	json_t *h = NULL;
	char *hs = NULL, *hb = NULL, *pb = NULL, *out = NULL;

	h = hdr != NULL ? json_deep_copy(hdr) : json_object();
	if (h == NULL || !json_is_object(h))
		goto out;
	if (json_object_set_new(h, "alg", json_string(alg)) != 0)
		goto out;
	hs = json_dumps(h, JSON_COMPACT);
	if (hs == NULL)
		goto out;
	hb = b64url_encode((const uint8_t *)hs, strlen(hs));
	pb = b64url_encode(payload != NULL ? payload : (const uint8_t *)"",
	    payload != NULL ? payload_len : 0);
	out = xasprintf("%s.%s", hb, pb);
out:
	json_decref(h);
	free(hs);
	free(hb);
	free(pb);
	return out;
}

/* Flattened JSON from the signing input and raw signature. */
static char *
assemble(const char *input, const uint8_t *sig, size_t siglen)
{
	const char *dot = strchr(input, '.');
	char *sb = b64url_encode(sig, siglen), *out = NULL;
	json_t *o;

	o = json_pack("{s:s%, s:s, s:s}", "protected", input,
	    (size_t)(dot - input), "payload", dot + 1, "signature", sb);
	if (o != NULL)
		out = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	free(sb);
	return out;
}

/* DER ECDSA signature to r||s of 2*len bytes; 0 or -1. */
static int
ecdsa_der_to_raw(const uint8_t *der, size_t derlen, size_t len, uint8_t *out)
{
	const unsigned char *p = der;
	ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
	const BIGNUM *r, *s;
	int rc = -1;

	if (es == NULL)
		return -1;
	ECDSA_SIG_get0(es, &r, &s);
	if (BN_bn2binpad(r, out, (int)len) == (int)len &&
	    BN_bn2binpad(s, out + len, (int)len) == (int)len)
		rc = 0;
	ECDSA_SIG_free(es);
	return rc;
}

char *
jws_sign(EVP_PKEY *key, const char *alg, const json_t *protected_hdr,
    const uint8_t *payload, size_t payload_len)
{
	enum jose_alg a;
	EVP_MD_CTX *md = NULL;
	char *input = NULL, *out = NULL;
	uint8_t *sig = NULL, raw[132];
	size_t siglen = 0, eclen;

	if (key == NULL || jose_alg_parse(alg, &a) != 0)
		return NULL;
	input = signing_input(protected_hdr, alg, payload, payload_len);
	if (input == NULL)
		goto out;
	md = EVP_MD_CTX_new();
	if (md == NULL ||
	    EVP_DigestSignInit(md, NULL, jose_alg_md(a), NULL, key) <= 0 ||
	    EVP_DigestSign(
		md, NULL, &siglen, (const uint8_t *)input, strlen(input)) <= 0)
		goto out;
	sig = xmalloc(siglen);
	if (EVP_DigestSign(
		md, sig, &siglen, (const uint8_t *)input, strlen(input)) <= 0)
		goto out;
	eclen = jose_alg_ec_len(a);
	if (eclen != 0) {
		if (ecdsa_der_to_raw(sig, siglen, eclen, raw) != 0)
			goto out;
		out = assemble(input, raw, 2 * eclen);
	} else {
		out = assemble(input, sig, siglen);
	}
out:
	EVP_MD_CTX_free(md);
	free(input);
	free(sig);
	return out;
}

/* EVP_MD of an HS* alg name, NULL if not one. */
static const EVP_MD *
hmac_md(const char *alg)
{
	if (alg == NULL)
		return NULL;
	if (strcmp(alg, "HS256") == 0)
		return EVP_sha256();
	if (strcmp(alg, "HS384") == 0)
		return EVP_sha384();
	if (strcmp(alg, "HS512") == 0)
		return EVP_sha512();
	return NULL;
}

char *
jws_sign_hmac(const uint8_t *key, size_t keylen, const char *alg,
    const json_t *protected_hdr, const uint8_t *payload, size_t payload_len)
{
	const EVP_MD *md = hmac_md(alg);
	uint8_t mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char *input, *out = NULL;

	if (md == NULL || key == NULL || keylen == 0 || keylen > INT32_MAX)
		return NULL;
	input = signing_input(protected_hdr, alg, payload, payload_len);
	if (input == NULL)
		return NULL;
	if (HMAC(md, key, (int)keylen, (const uint8_t *)input, strlen(input),
		mac, &maclen) != NULL)
		out = assemble(input, mac, maclen);
	free(input);
	return out;
}

int
jose_hmac(const char *alg, const uint8_t *key, size_t keylen,
    const uint8_t *data, size_t len, uint8_t mac[EVP_MAX_MD_SIZE])
{
	const EVP_MD *md = hmac_md(alg);
	unsigned int maclen = 0;

	if (md == NULL || key == NULL || keylen == 0 || keylen > INT32_MAX)
		return -1;
	if (HMAC(md, key, (int)keylen, data, len, mac, &maclen) == NULL)
		return -1;
	return (int)maclen;
}
