/* LIBS: jose core */
/*
 * test_jose.c - the JOSE library: a table of good and bad JWS request
 * bodies (made here with OpenSSL), JWK import, RFC 7638 thumbprints, key
 * change, external account binding and key authorizations.
 * Run from the repository top (fixtures in test/vectors/jose/).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "core/core.h"
#include "jose/jose.h"
#include "test/unit/harness.h"

#define VEC "test/vectors/jose/"
#define URL "https://ca.example/acme/new-acct"
#define ACCT "https://ca.example/acme/acct/7"

/* Keys generated once in main; tests reach them through the th pointer. */
struct fx {
	struct th th; /* first: the harness passes &fx.th */
	EVP_PKEY *rsa, *rsa_b, *rsa1024, *rsa4096, *rsa_e3;
	EVP_PKEY *ec256, *ec256_b, *ec384, *ec521, *ed;
	struct jwk *acct; /* public jwk of ec256: the "account key" for kid */
	struct jose_policy def, all;
};

#define FX(t) ((struct fx *)(void *)(t))

/* ------------------------------------------------------------------ */
/* Building bodies                                                      */
/* ------------------------------------------------------------------ */

/* Protected header with jwk of key (or kid if key NULL), nonce, url. */
static json_t *
hdr(EVP_PKEY *key)
{
	json_t *h =
	    json_pack("{s:s, s:s}", "nonce", "bm9uY2Utb25l", "url", URL);

	if (key != NULL)
		json_object_set_new(h, "jwk", jwk_from_pkey(key));
	else
		json_object_set_new(h, "kid", json_string(ACCT));
	return h;
}

/* jws_sign, taking h. */
static char *
sign(EVP_PKEY *k, const char *alg, json_t *h, const char *payload)
{
	char *s = jws_sign(
	    k, alg, h, (const uint8_t *)payload, payload ? strlen(payload) : 0);

	json_decref(h);
	return s;
}

static char *
b64s(const char *s)
{
	return b64url_encode((const uint8_t *)s, strlen(s));
}

struct parts {
	char *p, *pl, *s;
};

static void
split(char *body, struct parts *out)
{
	json_t *o = json_loads(body, 0, NULL);

	out->p = xstrdup(json_string_value(json_object_get(o, "protected")));
	out->pl = xstrdup(json_string_value(json_object_get(o, "payload")));
	out->s = xstrdup(json_string_value(json_object_get(o, "signature")));
	json_decref(o);
	free(body);
}

static char *
join(struct parts *pt)
{
	char *s = xasprintf("{\"protected\":\"%s\",\"payload\":\"%s\","
			    "\"signature\":\"%s\"}",
	    pt->p, pt->pl, pt->s);

	free(pt->p);
	free(pt->pl);
	free(pt->s);
	return s;
}

/* Replaces the signature with raw bytes. */
static void
set_sig(struct parts *pt, const uint8_t *sig, size_t len)
{
	free(pt->s);
	pt->s = b64url_encode(sig, len);
}

/* Decodes the signature of pt into buf; returns its length. */
static size_t
get_sig(const struct parts *pt, uint8_t *buf, size_t cap)
{
	uint8_t *raw = NULL;
	size_t len = 0;

	if (b64url_decode(pt->s, strlen(pt->s), &raw, &len) != 0 || len > cap)
		abort();
	memcpy(buf, raw, len);
	free(raw);
	return len;
}

/* Body with an arbitrary protected header text, signed by k as alg. */
static char *
raw_hdr_body(
    EVP_PKEY *k, const char *alg, const char *hdr_text, const char *payload)
{
	struct parts pt;
	char *body = sign(k, alg, json_object(), payload);

	split(body, &pt);
	free(pt.p);
	pt.p = b64s(hdr_text);
	return join(&pt);
}

/* ------------------------------------------------------------------ */
/* The table                                                            */
/* ------------------------------------------------------------------ */

enum stage {
	OK,     /* parse + verify (+ payload JSON) succeed */
	PARSE,  /* jws_parse fails */
	VERIFY, /* jws_verify fails */
	PAYLOAD /* jws_payload_json fails */
};

struct jcase {
	const char *name;
	char *(*build)(struct fx *f);
	enum stage stage;
	enum prob_type type;
	int permissive;  /* policy with ES512 + EdDSA */
	int post_as_get; /* OK case with empty payload */
};

static char *
c_rs256(struct fx *f)
{
	return sign(f->rsa, "RS256", hdr(f->rsa), "{\"a\":1}");
}

static char *
c_rs4096(struct fx *f)
{
	return sign(f->rsa4096, "RS256", hdr(f->rsa4096), "{}");
}

static char *
c_es256(struct fx *f)
{
	return sign(f->ec256, "ES256", hdr(f->ec256), "{\"a\":1}");
}

static char *
c_es384(struct fx *f)
{
	return sign(f->ec384, "ES384", hdr(f->ec384), "{}");
}

static char *
c_es512(struct fx *f)
{
	return sign(f->ec521, "ES512", hdr(f->ec521), "{}");
}

static char *
c_eddsa(struct fx *f)
{
	return sign(f->ed, "EdDSA", hdr(f->ed), "{}");
}

static char *
c_kid(struct fx *f)
{
	return sign(f->ec256, "ES256", hdr(NULL), "{\"status\":\"x\"}");
}

static char *
c_post_as_get(struct fx *f)
{
	return sign(f->ec256, "ES256", hdr(NULL), NULL);
}

static char *
c_extra_hdr(struct fx *f)
{
	json_t *h = hdr(f->ec256);

	json_object_set_new(h, "typ", json_string("JOSE"));
	return sign(f->ec256, "ES256", h, "{}");
}

static char *
c_ws_body(struct fx *f)
{
	char *b = sign(f->ec256, "ES256", hdr(f->ec256), "{}");
	char *s = xasprintf(" \n\t%s\r\n ", b);

	free(b);
	return s;
}

static char *
c_jwk_alg_ok(struct fx *f)
{
	json_t *h = hdr(f->ec256);

	json_object_set_new(
	    json_object_get(h, "jwk"), "alg", json_string("ES256"));
	return sign(f->ec256, "ES256", h, "{}");
}

static char *
c_alg_none(struct fx *f)
{
	struct parts pt;
	json_t *h = hdr(f->ec256);
	char *hs;

	json_object_set_new(h, "alg", json_string("none"));
	hs = json_dumps(h, JSON_COMPACT);
	split(sign(f->ec256, "ES256", h, "{}"), &pt);
	free(pt.p);
	pt.p = b64s(hs);
	free(hs);
	free(pt.s);
	pt.s = xstrdup("AAAA");
	return join(&pt);
}

static char *
c_hs256_pubkey(struct fx *f)
{
	/* The classic attack: HMAC keyed with the public key's PEM. */
	BIO *bio = BIO_new(BIO_s_mem());
	char *pem = NULL, *out;
	json_t *h = hdr(f->rsa);
	long n;

	PEM_write_bio_PUBKEY(bio, f->rsa);
	n = BIO_get_mem_data(bio, &pem);
	out = jws_sign_hmac((const uint8_t *)pem, (size_t)n, "HS256", h,
	    (const uint8_t *)"{}", 2);
	json_decref(h);
	BIO_free(bio);
	return out;
}

static char *
c_rs256_with_ec(struct fx *f)
{
	return sign(f->ec256, "RS256", hdr(f->ec256), "{}");
}

static char *
c_es256_with_rsa(struct fx *f)
{
	/* OpenSSL cannot make an "ES256" signature with an RSA key: take a
	 * 64-byte r||s-shaped signature under an ES256 header. */
	struct parts pt;
	json_t *h = hdr(f->rsa);
	uint8_t sig[64];
	char *hs;

	json_object_set_new(h, "alg", json_string("ES256"));
	hs = json_dumps(h, JSON_COMPACT);
	split(sign(f->rsa, "RS256", h, "{}"), &pt);
	free(pt.p);
	pt.p = b64s(hs);
	free(hs);
	random_bytes(sig, sizeof(sig));
	set_sig(&pt, sig, sizeof(sig));
	return join(&pt);
}

static char *
c_es384_with_p256(struct fx *f)
{
	return sign(f->ec256, "ES384", hdr(f->ec256), "{}");
}

static char *
c_es512_disabled(struct fx *f)
{
	return sign(f->ec521, "ES512", hdr(f->ec521), "{}");
}

static char *
c_eddsa_disabled(struct fx *f)
{
	return sign(f->ed, "EdDSA", hdr(f->ed), "{}");
}

static char *
c_alg_ps256(struct fx *f)
{
	return raw_hdr_body(f->rsa, "RS256",
	    "{\"alg\":\"PS256\",\"kid\":\"k\","
	    "\"nonce\":\"n\",\"url\":\"u\"}",
	    "{}");
}

static char *
c_alg_lower(struct fx *f)
{
	return raw_hdr_body(f->ec256, "ES256",
	    "{\"alg\":\"es256\",\"kid\":"
	    "\"k\",\"nonce\":\"n\",\"url\":\"u\"}",
	    "{}");
}

static char *
c_alg_number(struct fx *f)
{
	return raw_hdr_body(f->ec256, "ES256",
	    "{\"alg\":256,\"kid\":\"k\","
	    "\"nonce\":\"n\",\"url\":\"u\"}",
	    "{}");
}

static char *
c_alg_missing(struct fx *f)
{
	return raw_hdr_body(f->ec256, "ES256",
	    "{\"kid\":\"k\",\"nonce\":"
	    "\"n\",\"url\":\"u\"}",
	    "{}");
}

/* Signature of an ES256 body changed to len bytes (0-padded/cut). */
static char *
es256_sig_len(struct fx *f, size_t len)
{
	struct parts pt;
	uint8_t sig[600] = {0};

	split(sign(f->ec256, "ES256", hdr(f->ec256), "{}"), &pt);
	(void)get_sig(&pt, sig, sizeof(sig));
	set_sig(&pt, sig, len);
	return join(&pt);
}

static char *
c_es256_sig_short(struct fx *f)
{
	return es256_sig_len(f, 63);
}

static char *
c_es256_sig_long(struct fx *f)
{
	return es256_sig_len(f, 65);
}

static char *
c_es256_sig_zero(struct fx *f)
{
	struct parts pt;
	uint8_t sig[64] = {0};

	split(sign(f->ec256, "ES256", hdr(f->ec256), "{}"), &pt);
	set_sig(&pt, sig, sizeof(sig));
	return join(&pt);
}

static char *
rs256_sig_len(struct fx *f, size_t len)
{
	struct parts pt;
	uint8_t sig[600] = {0};

	split(sign(f->rsa, "RS256", hdr(f->rsa), "{}"), &pt);
	(void)get_sig(&pt, sig, sizeof(sig));
	set_sig(&pt, sig, len);
	return join(&pt);
}

static char *
c_rs256_sig_short(struct fx *f)
{
	return rs256_sig_len(f, 255);
}

static char *
c_rs256_sig_long(struct fx *f)
{
	return rs256_sig_len(f, 257);
}

static char *
c_es256_der(struct fx *f)
{
	/* Sign the same input with OpenSSL's native DER ECDSA output. */
	struct parts pt;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t sig[128];
	size_t siglen = sizeof(sig);
	char *input;

	split(sign(f->ec256, "ES256", hdr(f->ec256), "{}"), &pt);
	input = xasprintf("%s.%s", pt.p, pt.pl);
	if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, f->ec256) <= 0 ||
	    EVP_DigestSign(md, sig, &siglen, (uint8_t *)input, strlen(input)) <=
		0)
		abort();
	set_sig(&pt, sig, siglen);
	EVP_MD_CTX_free(md);
	free(input);
	return join(&pt);
}

static char *
c_sig_bitflip(struct fx *f)
{
	struct parts pt;
	uint8_t sig[600];
	size_t n;

	split(sign(f->rsa, "RS256", hdr(f->rsa), "{}"), &pt);
	n = get_sig(&pt, sig, sizeof(sig));
	sig[n / 2] ^= 0x01;
	set_sig(&pt, sig, n);
	return join(&pt);
}

static char *
c_payload_changed(struct fx *f)
{
	struct parts pt;

	split(sign(f->ec256, "ES256", hdr(f->ec256), "{\"a\":1}"), &pt);
	free(pt.pl);
	pt.pl = b64s("{\"a\":2}");
	return join(&pt);
}

static char *
c_header_changed(struct fx *f)
{
	struct parts pt;
	json_t *h = hdr(f->ec256);
	char *hs;

	split(sign(f->ec256, "ES256", json_incref(h), "{}"), &pt);
	json_object_set_new(h, "alg", json_string("ES256"));
	json_object_set_new(h, "url", json_string(URL "x"));
	hs = json_dumps(h, JSON_COMPACT);
	free(pt.p);
	pt.p = b64s(hs);
	free(hs);
	json_decref(h);
	return join(&pt);
}

static char *
c_jwk_and_kid(struct fx *f)
{
	json_t *h = hdr(f->ec256);

	json_object_set_new(h, "kid", json_string(ACCT));
	return sign(f->ec256, "ES256", h, "{}");
}

static char *
c_no_key(struct fx *f)
{
	json_t *h = hdr(NULL);

	json_object_del(h, "kid");
	return sign(f->ec256, "ES256", h, "{}");
}

static char *
c_private_d(struct fx *f)
{
	json_t *h = hdr(f->ec256);

	json_object_set_new(
	    json_object_get(h, "jwk"), "d", json_string("AAAA"));
	return sign(f->ec256, "ES256", h, "{}");
}

static char *
c_off_curve(struct fx *f)
{
	json_t *h = hdr(f->ec256);
	json_t *jwk = json_object_get(h, "jwk");
	uint8_t *y = NULL;
	size_t ylen = 0;
	const char *ys = json_string_value(json_object_get(jwk, "y"));

	if (b64url_decode(ys, strlen(ys), &y, &ylen) != 0)
		abort();
	y[ylen - 1] ^= 1;
	ys = NULL;
	{
		char *e = b64url_encode(y, ylen);

		json_object_set_new(jwk, "y", json_string(e));
		free(e);
	}
	free(y);
	return sign(f->ec256, "ES256", h, "{}");
}

static char *
c_coord_len(struct fx *f)
{
	json_t *h = hdr(f->ec256);
	json_t *jwk = json_object_get(h, "jwk");
	uint8_t *x = NULL, x33[33] = {0};
	size_t xlen = 0;
	const char *xs = json_string_value(json_object_get(jwk, "x"));
	char *e;

	if (b64url_decode(xs, strlen(xs), &x, &xlen) != 0 || xlen != 32)
		abort();
	memcpy(x33 + 1, x, 32);
	e = b64url_encode(x33, 33);
	json_object_set_new(jwk, "x", json_string(e));
	free(e);
	free(x);
	return sign(f->ec256, "ES256", h, "{}");
}

static char *
c_rsa_e3(struct fx *f)
{
	return sign(f->rsa_e3, "RS256", hdr(f->rsa_e3), "{}");
}

static char *
c_rsa1024(struct fx *f)
{
	return sign(f->rsa1024, "RS256", hdr(f->rsa1024), "{}");
}

static char *
c_kty_oct(struct fx *f)
{
	json_t *h = hdr(NULL);

	json_object_del(h, "kid");
	json_object_set_new(
	    h, "jwk", json_pack("{s:s, s:s}", "kty", "oct", "k", "c2VjcmV0"));
	return sign(f->ec256, "ES256", h, "{}");
}

static char *
c_jwk_alg_mismatch(struct fx *f)
{
	json_t *h = hdr(f->ec256);

	json_object_set_new(
	    json_object_get(h, "jwk"), "alg", json_string("RS256"));
	return sign(f->ec256, "ES256", h, "{}");
}

static char *
c_sig_plus(struct fx *f)
{
	struct parts pt;
	size_t n;

	split(sign(f->ec256, "ES256", hdr(f->ec256), "{}"), &pt);
	n = strlen(pt.s);
	pt.s[n / 2] = '+';
	return join(&pt);
}

static char *
c_protected_padding(struct fx *f)
{
	struct parts pt;
	char *p;

	split(sign(f->ec256, "ES256", hdr(f->ec256), "{}"), &pt);
	p = xasprintf("%s==", pt.p);
	free(pt.p);
	pt.p = p;
	return join(&pt);
}

static char *
c_sig_trailing_bits(struct fx *f)
{
	/* 64 bytes end in a char carrying 2 data bits: set a spare one. */
	struct parts pt;
	size_t n;

	split(sign(f->ec256, "ES256", hdr(f->ec256), "{}"), &pt);
	n = strlen(pt.s);
	switch (pt.s[n - 1]) {
	case 'A':
		pt.s[n - 1] = 'B';
		break;
	case 'Q':
		pt.s[n - 1] = 'R';
		break;
	case 'g':
		pt.s[n - 1] = 'h';
		break;
	default:
		pt.s[n - 1] = 'x';
		break;
	}
	return join(&pt);
}

static char *
c_payload_space(struct fx *f)
{
	struct parts pt;
	char *p;

	split(sign(f->ec256, "ES256", hdr(f->ec256), "{\"abc\":1}"), &pt);
	p = xasprintf("%.4s %s", pt.pl, pt.pl + 4);
	free(pt.pl);
	pt.pl = p;
	return join(&pt);
}

static char *
c_dup_body_member(struct fx *f)
{
	struct parts pt;
	char *s;

	split(sign(f->ec256, "ES256", hdr(f->ec256), "{}"), &pt);
	s = xasprintf("{\"protected\":\"%s\",\"payload\":\"%s\",\"signature\":"
		      "\"%s\",\"payload\":\"\"}",
	    pt.p, pt.pl, pt.s);
	free(pt.p);
	free(pt.pl);
	free(pt.s);
	return s;
}

static char *
c_dup_hdr_member(struct fx *f)
{
	return raw_hdr_body(f->ec256, "ES256",
	    "{\"alg\":\"ES256\",\"alg\":"
	    "\"none\",\"kid\":\"k\",\"nonce\":\"n\",\"url\":\"u\"}",
	    "{}");
}

static char *
c_huge_int_hdr(struct fx *f)
{
	return raw_hdr_body(f->ec256, "ES256",
	    "{\"alg\":\"ES256\",\"kid\":\"k\","
	    "\"nonce\":\"n\",\"url\":\"u\",\"x\":"
	    "123456789012345678901234567890123456789}",
	    "{}");
}

static char *
c_huge_real_payload(struct fx *f)
{
	return sign(f->ec256, "ES256", hdr(f->ec256), "{\"n\":1e999}");
}

static char *
c_deep_payload(struct fx *f)
{
	char buf[2 * 200 + 1];

	memset(buf, '[', 200);
	memset(buf + 200, ']', 200);
	buf[400] = '\0';
	return sign(f->ec256, "ES256", hdr(f->ec256), buf);
}

static char *
c_deep_body(struct fx *f)
{
	(void)f;
	return xstrdup("{\"protected\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
		       "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}");
}

static char *
c_payload_not_json(struct fx *f)
{
	return sign(f->ec256, "ES256", hdr(f->ec256), "hello");
}

static char *
c_payload_array(struct fx *f)
{
	return sign(f->ec256, "ES256", hdr(f->ec256), "[1,2]");
}

static char *
c_payload_dup(struct fx *f)
{
	return sign(f->ec256, "ES256", hdr(f->ec256),
	    "{\"contact\":[],\"contact\":[\"mailto:x@y.z\"]}");
}

static char *
c_compact(struct fx *f)
{
	struct parts pt;

	split(sign(f->ec256, "ES256", hdr(f->ec256), "{}"), &pt);
	{
		char *s = xasprintf("%s.%s.%s", pt.p, pt.pl, pt.s);

		free(pt.p);
		free(pt.pl);
		free(pt.s);
		return s;
	}
}

static char *
c_general(struct fx *f)
{
	struct parts pt;
	char *s;

	split(sign(f->ec256, "ES256", hdr(f->ec256), "{}"), &pt);
	s = xasprintf("{\"payload\":\"%s\",\"signatures\":[{\"protected\":"
		      "\"%s\",\"signature\":\"%s\"}]}",
	    pt.pl, pt.p, pt.s);
	free(pt.p);
	free(pt.pl);
	free(pt.s);
	return s;
}

static char *
c_unprotected_header(struct fx *f)
{
	struct parts pt;
	char *s;

	split(sign(f->ec256, "ES256", hdr(f->ec256), "{}"), &pt);
	s = xasprintf("{\"protected\":\"%s\",\"header\":{\"kid\":\"x\"},"
		      "\"payload\":\"%s\",\"signature\":\"%s\"}",
	    pt.p, pt.pl, pt.s);
	free(pt.p);
	free(pt.pl);
	free(pt.s);
	return s;
}

static char *
c_no_nonce(struct fx *f)
{
	json_t *h = hdr(f->ec256);

	json_object_del(h, "nonce");
	return sign(f->ec256, "ES256", h, "{}");
}

static char *
c_nonce_number(struct fx *f)
{
	json_t *h = hdr(f->ec256);

	json_object_set_new(h, "nonce", json_integer(5));
	return sign(f->ec256, "ES256", h, "{}");
}

static char *
c_no_url(struct fx *f)
{
	json_t *h = hdr(f->ec256);

	json_object_del(h, "url");
	return sign(f->ec256, "ES256", h, "{}");
}

static char *
c_url_number(struct fx *f)
{
	json_t *h = hdr(f->ec256);

	json_object_set_new(h, "url", json_integer(5));
	return sign(f->ec256, "ES256", h, "{}");
}

static char *
c_crit(struct fx *f)
{
	json_t *h = hdr(f->ec256);

	json_object_set_new(h, "crit", json_pack("[s]", "exp"));
	json_object_set_new(h, "exp", json_integer(1));
	return sign(f->ec256, "ES256", h, "{}");
}

static char *
c_not_json(struct fx *f)
{
	(void)f;
	return xstrdup("{\"protected\": nope}");
}

static char *
c_empty(struct fx *f)
{
	(void)f;
	return xstrdup("");
}

static char *
c_too_large(struct fx *f)
{
	char *s = xmalloc(JOSE_MAX_JWS_LEN + 10);

	(void)f;
	memset(s, ' ', JOSE_MAX_JWS_LEN + 9);
	s[0] = '{';
	s[JOSE_MAX_JWS_LEN + 8] = '}';
	s[JOSE_MAX_JWS_LEN + 9] = '\0';
	return s;
}

static char *
c_empty_sig(struct fx *f)
{
	struct parts pt;

	split(sign(f->ec256, "ES256", hdr(f->ec256), "{}"), &pt);
	free(pt.s);
	pt.s = xstrdup("");
	return join(&pt);
}

static char *
c_kid_wrong_key(struct fx *f)
{
	/* Signed by another P-256 key; verified with the account key. */
	return sign(f->ec256_b, "ES256", hdr(NULL), "{}");
}

static char *
c_protected_array(struct fx *f)
{
	return raw_hdr_body(f->ec256, "ES256", "[\"alg\",\"ES256\"]", "{}");
}

static char *
c_signature_number(struct fx *f)
{
	struct parts pt;
	char *s;

	split(sign(f->ec256, "ES256", hdr(f->ec256), "{}"), &pt);
	s = xasprintf("{\"protected\":\"%s\",\"payload\":\"%s\","
		      "\"signature\":12}",
	    pt.p, pt.pl);
	free(pt.p);
	free(pt.pl);
	free(pt.s);
	return s;
}

static char *
c_body_array(struct fx *f)
{
	(void)f;
	return xstrdup("[{\"protected\":\"e30\"}]");
}

static char *
c_rsa_sig_for_other_key(struct fx *f)
{
	/* Header embeds rsa's jwk, but the signature is by rsa_b. */
	return sign(f->rsa_b, "RS256", hdr(f->rsa), "{}");
}

static const struct jcase cases[] = {
    {"RS256 with RSA-2048 jwk", c_rs256, OK, 0, 0, 0},
    {"RS256 with RSA-4096 jwk", c_rs4096, OK, 0, 0, 0},
    {"ES256 with P-256 jwk", c_es256, OK, 0, 0, 0},
    {"ES384 with P-384 jwk", c_es384, OK, 0, 0, 0},
    {"ES512 with P-521 when enabled", c_es512, OK, 0, 1, 0},
    {"EdDSA with Ed25519 when enabled", c_eddsa, OK, 0, 1, 0},
    {"kid + account key", c_kid, OK, 0, 0, 0},
    {"POST-as-GET (empty payload)", c_post_as_get, OK, 0, 0, 1},
    {"extra header member typ", c_extra_hdr, OK, 0, 0, 0},
    {"whitespace around body", c_ws_body, OK, 0, 0, 0},
    {"jwk alg member matching", c_jwk_alg_ok, OK, 0, 0, 0},
    {"alg none", c_alg_none, PARSE, PROB_BAD_SIGNATURE_ALGORITHM, 0, 0},
    {"HS256 keyed with the public key", c_hs256_pubkey, PARSE,
	PROB_BAD_SIGNATURE_ALGORITHM, 0, 0},
    {"RS256 header with EC key", c_rs256_with_ec, VERIFY,
	PROB_BAD_SIGNATURE_ALGORITHM, 0, 0},
    {"ES256 header with RSA key", c_es256_with_rsa, VERIFY,
	PROB_BAD_SIGNATURE_ALGORITHM, 0, 0},
    {"ES384 header with P-256 key", c_es384_with_p256, VERIFY,
	PROB_BAD_SIGNATURE_ALGORITHM, 0, 0},
    {"ES512 when disabled", c_es512_disabled, PARSE,
	PROB_BAD_SIGNATURE_ALGORITHM, 0, 0},
    {"EdDSA when disabled", c_eddsa_disabled, PARSE,
	PROB_BAD_SIGNATURE_ALGORITHM, 0, 0},
    {"alg PS256", c_alg_ps256, PARSE, PROB_BAD_SIGNATURE_ALGORITHM, 0, 0},
    {"alg es256 (case)", c_alg_lower, PARSE, PROB_BAD_SIGNATURE_ALGORITHM, 0,
	0},
    {"alg not a string", c_alg_number, PARSE, PROB_MALFORMED, 0, 0},
    {"alg missing", c_alg_missing, PARSE, PROB_MALFORMED, 0, 0},
    {"ES256 signature truncated (63)", c_es256_sig_short, VERIFY,
	PROB_MALFORMED, 0, 0},
    {"ES256 signature over-long (65)", c_es256_sig_long, VERIFY, PROB_MALFORMED,
	0, 0},
    {"ES256 signature r=s=0", c_es256_sig_zero, VERIFY, PROB_MALFORMED, 0, 0},
    {"RS256 signature truncated", c_rs256_sig_short, VERIFY, PROB_MALFORMED, 0,
	0},
    {"RS256 signature over-long", c_rs256_sig_long, VERIFY, PROB_MALFORMED, 0,
	0},
    {"ES256 DER-encoded signature", c_es256_der, VERIFY, PROB_MALFORMED, 0, 0},
    {"RS256 signature bit flipped", c_sig_bitflip, VERIFY, PROB_MALFORMED, 0,
	0},
    {"payload changed after signing", c_payload_changed, VERIFY, PROB_MALFORMED,
	0, 0},
    {"protected header changed after signing", c_header_changed, VERIFY,
	PROB_MALFORMED, 0, 0},
    {"signed by another key than the jwk", c_rsa_sig_for_other_key, VERIFY,
	PROB_MALFORMED, 0, 0},
    {"kid request signed by another key", c_kid_wrong_key, VERIFY,
	PROB_MALFORMED, 0, 0},
    {"both jwk and kid", c_jwk_and_kid, PARSE, PROB_MALFORMED, 0, 0},
    {"neither jwk nor kid", c_no_key, PARSE, PROB_MALFORMED, 0, 0},
    {"private member d in jwk", c_private_d, PARSE, PROB_BAD_PUBLIC_KEY, 0, 0},
    {"EC point off curve", c_off_curve, PARSE, PROB_BAD_PUBLIC_KEY, 0, 0},
    {"EC coordinate of 33 bytes", c_coord_len, PARSE, PROB_BAD_PUBLIC_KEY, 0,
	0},
    {"RSA exponent 3", c_rsa_e3, PARSE, PROB_BAD_PUBLIC_KEY, 0, 0},
    {"RSA 1024 bits", c_rsa1024, PARSE, PROB_BAD_PUBLIC_KEY, 0, 0},
    {"kty oct (symmetric) jwk", c_kty_oct, PARSE, PROB_BAD_PUBLIC_KEY, 0, 0},
    {"jwk alg RS256 on an EC key", c_jwk_alg_mismatch, PARSE,
	PROB_BAD_PUBLIC_KEY, 0, 0},
    {"'+' in signature", c_sig_plus, PARSE, PROB_MALFORMED, 0, 0},
    {"'=' padding in protected", c_protected_padding, PARSE, PROB_MALFORMED, 0,
	0},
    {"non-canonical base64url (spare bits set)", c_sig_trailing_bits, PARSE,
	PROB_MALFORMED, 0, 0},
    {"space inside payload", c_payload_space, PARSE, PROB_MALFORMED, 0, 0},
    {"duplicate member in body", c_dup_body_member, PARSE, PROB_MALFORMED, 0,
	0},
    {"duplicate alg in protected header", c_dup_hdr_member, PARSE,
	PROB_MALFORMED, 0, 0},
    {"huge integer in protected header", c_huge_int_hdr, PARSE, PROB_MALFORMED,
	0, 0},
    {"huge real in payload", c_huge_real_payload, PAYLOAD, PROB_MALFORMED, 0,
	0},
    {"200-deep payload", c_deep_payload, PAYLOAD, PROB_MALFORMED, 0, 0},
    {"40-deep body", c_deep_body, PARSE, PROB_MALFORMED, 0, 0},
    {"payload not JSON", c_payload_not_json, PAYLOAD, PROB_MALFORMED, 0, 0},
    {"payload a JSON array", c_payload_array, PAYLOAD, PROB_MALFORMED, 0, 0},
    {"payload with duplicate member", c_payload_dup, PAYLOAD, PROB_MALFORMED, 0,
	0},
    {"compact serialization", c_compact, PARSE, PROB_MALFORMED, 0, 0},
    {"general serialization", c_general, PARSE, PROB_MALFORMED, 0, 0},
    {"unprotected header", c_unprotected_header, PARSE, PROB_MALFORMED, 0, 0},
    {"no nonce", c_no_nonce, PARSE, PROB_BAD_NONCE, 0, 0},
    {"nonce a number", c_nonce_number, PARSE, PROB_BAD_NONCE, 0, 0},
    {"no url", c_no_url, PARSE, PROB_MALFORMED, 0, 0},
    {"url a number", c_url_number, PARSE, PROB_MALFORMED, 0, 0},
    {"crit header", c_crit, PARSE, PROB_MALFORMED, 0, 0},
    {"body not JSON", c_not_json, PARSE, PROB_MALFORMED, 0, 0},
    {"empty body", c_empty, PARSE, PROB_MALFORMED, 0, 0},
    {"body over the size cap", c_too_large, PARSE, PROB_MALFORMED, 0, 0},
    {"empty signature", c_empty_sig, PARSE, PROB_MALFORMED, 0, 0},
    {"protected header is an array", c_protected_array, PARSE, PROB_MALFORMED,
	0, 0},
    {"signature a number", c_signature_number, PARSE, PROB_MALFORMED, 0, 0},
    {"body a JSON array", c_body_array, PARSE, PROB_MALFORMED, 0, 0},
};

/* Runs one case; returns 1 if it behaved as the table says. */
static int
run_case(struct fx *f, const struct jcase *c)
{
	const struct jose_policy *pol = c->permissive ? &f->all : &f->def;
	struct problem *prob = NULL;
	struct jws *j = NULL;
	json_t *payload = NULL;
	char *body = c->build(f);
	enum stage got = OK;
	int ok = 0;

	if (body == NULL) {
		fprintf(stderr, "  case \"%s\": could not build\n", c->name);
		return 0;
	}
	if (jws_parse(body, strlen(body), pol, &j, &prob) != 0) {
		got = PARSE;
	} else if (jws_verify(j, j->jwk != NULL ? j->jwk : f->acct, &prob) !=
	    0) {
		got = VERIFY;
	} else if (!j->is_post_as_get &&
	    jws_payload_json(j, &payload, &prob) != 0) {
		got = PAYLOAD;
	}
	if (got == c->stage && (got == OK || prob->type == c->type))
		ok = 1;
	if (ok && got == OK)
		ok = j->is_post_as_get == c->post_as_get &&
		    strcmp(j->url, URL) == 0 && j->nonce != NULL &&
		    (j->jwk != NULL) != (j->kid != NULL);
	if (ok && got != OK)
		ok = prob->detail != NULL && prob->detail[0] != '\0';
	if (!ok)
		fprintf(stderr,
		    "  case \"%s\": expected stage %d type %s, got "
		    "stage %d type %s (%s)\n",
		    c->name, c->stage,
		    c->stage == OK ? "-" : prob_type_name(c->type), got,
		    prob ? prob_type_name(prob->type) : "-",
		    prob && prob->detail ? prob->detail : "");
	else if (got != OK)
		fprintf(stderr, "ok     - jws case: %s -> %s: %s\n", c->name,
		    prob_type_name(prob->type), prob->detail);
	else
		fprintf(stderr, "ok     - jws case: %s -> accepted\n", c->name);
	json_decref(payload);
	jws_free(j);
	problem_free(prob);
	free(body);
	return ok;
}

/*
 * Each row of the table is one test in the totals (the harness's TH_RUN
 * bookkeeping, by hand, so that the row's name is printed).
 */
static void
run_table(struct fx *f)
{
	size_t i, n = sizeof(cases) / sizeof(cases[0]);

	for (i = 0; i < n; i++) {
		if (run_case(f, &cases[i])) {
			f->th.passed++;
		} else {
			f->th.failed++;
			fprintf(
			    stderr, "not ok - jws case: %s\n", cases[i].name);
		}
	}
	if (n < 40) {
		f->th.failed++;
		fprintf(stderr, "not ok - the table has fewer than 40 rows\n");
	}
}

/* ------------------------------------------------------------------ */
/* Other behaviour                                                      */
/* ------------------------------------------------------------------ */

TH_TEST(test_alg_problem_lists_allowed)
{
	struct fx *f = FX(t);
	struct problem *prob = NULL;
	struct jws *j = NULL;
	char *body = c_alg_ps256(f);
	json_t *algs = jose_policy_algs_json(&f->all);

	TH_CHECK(t, jws_parse(body, strlen(body), NULL, &j, &prob) == -1);
	TH_CHECK(t,
	    prob != NULL &&
		strstr(prob->detail,
		    "RS256, ES256, "
		    "ES384") != NULL);
	TH_CHECK(t, json_array_size(algs) == 5);
	TH_CHECK_STR(t, json_string_value(json_array_get(algs, 4)), "EdDSA");
	json_decref(algs);
	problem_free(prob);
	free(body);
}

TH_TEST(test_rfc7638_thumbprint)
{
	char err[256], *expect = NULL, *tp = NULL;
	size_t len = 0;
	json_t *obj =
	    config_load_file(VEC "rfc7638-jwk.json", err, sizeof(err));
	struct jwk *k = NULL;
	struct problem *prob = NULL;

	if (obj == NULL)
		TH_SKIP(t, "run from the repository top (fixtures missing)");
	TH_CHECK(t,
	    file_read_all(VEC "rfc7638-thumbprint.txt", 1024, &expect, &len,
		err, sizeof(err)) == 0);
	TH_CHECK(t, jwk_parse(obj, NULL, &k, &prob) == 0);
	if (k != NULL && expect != NULL) {
		expect[strcspn(expect, "\n")] = '\0';
		tp = jwk_thumbprint(k);
		TH_CHECK_STR(t, tp, expect);
		TH_CHECK_STR(t, k->thumbprint, expect);
		TH_CHECK(t,
		    k->kty == JWK_KTY_RSA && k->bits == 2048 &&
			k->alg == JOSE_ALG_RS256);
	}
	free(tp);
	free(expect);
	jwk_free(k);
	problem_free(prob);
	json_decref(obj);
}

/* Thumbprint of the JWK of a key, through jwk_parse. */
static char *
tp_of(EVP_PKEY *key, const struct jose_policy *p)
{
	json_t *j = jwk_from_pkey(key);
	struct jwk *k = NULL;
	char *tp = NULL;

	if (j != NULL && jwk_parse(j, p, &k, NULL) == 0)
		tp = xstrdup(k->thumbprint);
	jwk_free(k);
	json_decref(j);
	return tp;
}

TH_TEST(test_jwk_roundtrip_and_equal)
{
	struct fx *f = FX(t);
	EVP_PKEY *keys[] = {f->rsa, f->ec256, f->ec384, f->ec521, f->ed};
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *j = jwk_from_pkey(keys[i]), *back = NULL;
		struct jwk *a = NULL, *b = NULL;

		TH_CHECK(t, j != NULL);
		TH_CHECK(t, jwk_parse(j, &f->all, &a, NULL) == 0);
		if (a == NULL) {
			json_decref(j);
			continue;
		}
		back = jwk_to_json(a);
		TH_CHECK(t, json_equal(back, j));
		TH_CHECK(t, jwk_parse(back, &f->all, &b, NULL) == 0);
		TH_CHECK(t, jwk_equal(a, b));
		TH_CHECK(
		    t, b != NULL && strcmp(a->thumbprint, b->thumbprint) == 0);
		TH_CHECK(t, !jwk_equal(a, f->acct) || keys[i] == f->ec256);
		jwk_free(a);
		jwk_free(b);
		json_decref(j);
		json_decref(back);
	}
	TH_CHECK(t, !jwk_equal(NULL, f->acct));
}

TH_TEST(test_thumbprint_ignores_extras)
{
	/* Member order, "alg"/"use"/"kid" extras do not change the print. */
	struct fx *f = FX(t);
	json_t *j = jwk_from_pkey(f->ec256);
	char *s = json_dumps(j, JSON_COMPACT), *tp = tp_of(f->ec256, NULL);
	json_t *re;
	struct jwk *k = NULL;

	json_object_set_new(j, "use", json_string("sig"));
	json_object_set_new(j, "kid", json_string("mine"));
	json_object_set_new(j, "alg", json_string("ES256"));
	TH_CHECK(t, jwk_parse(j, NULL, &k, NULL) == 0);
	TH_CHECK(t, k != NULL && tp != NULL && strcmp(k->thumbprint, tp) == 0);
	re = json_object_get(k ? k->json : NULL, "kid");
	TH_CHECK(t, re == NULL);
	jwk_free(k);
	free(s);
	free(tp);
	json_decref(j);
}

TH_TEST(test_jwk_rejects)
{
	struct fx *f = FX(t);
	struct jose_policy narrow = f->def;
	json_t *j = jwk_from_pkey(f->rsa);
	struct jwk *k = NULL;
	struct problem *prob = NULL;
	const char *bad[] = {
	    "[]",
	    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA\"}",
	    "{\"kty\":\"EC\",\"crv\":\"secp256k1\",\"x\":\"AA\",\"y\":\"AA\"}",
	    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AA\"}",
	    "{\"kty\":\"RSA\",\"n\":\"AAEC\",\"e\":\"AQAB\"}",
	    "{\"kty\":\"RSA\",\"n\":5,\"e\":\"AQAB\"}",
	    "{\"n\":\"AQAB\",\"e\":\"AQAB\"}",
	    "{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\",\"use\":\"enc\"}",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *b = json_loads(bad[i], 0, NULL);

		TH_CHECK(t, jwk_parse(b, NULL, &k, &prob) == -1 && k == NULL);
		TH_CHECK(t,
		    prob != NULL &&
			(prob->type == PROB_BAD_PUBLIC_KEY ||
			    prob->type == PROB_MALFORMED));
		problem_free(prob);
		prob = NULL;
		json_decref(b);
	}
	/* The permissive policy re-imports keys the default refuses. */
	{
		struct jose_policy perm;
		json_t *small = jwk_from_pkey(f->rsa1024);

		jose_policy_permissive(&perm);
		TH_CHECK(t, jwk_parse(small, NULL, &k, NULL) == -1);
		TH_CHECK(t,
		    jwk_parse(small, &perm, &k, NULL) == 0 && k != NULL &&
			k->bits == 1024);
		jwk_free(k);
		k = NULL;
		json_decref(small);
	}
	/* Max bits is a policy knob. */
	narrow.rsa_max_bits = 2047;
	TH_CHECK(t, jwk_parse(j, &narrow, &k, &prob) == -1);
	TH_CHECK(t,
	    prob && prob->type == PROB_BAD_PUBLIC_KEY &&
		strstr(prob->detail, "2048 bits") != NULL);
	problem_free(prob);
	/* A NULL prob pointer is allowed. */
	TH_CHECK(t, jwk_parse(j, &narrow, &k, NULL) == -1);
	json_decref(j);
}

TH_TEST(test_key_authorization)
{
	/* Independent values: printf 'tok.print' | sha256sum | base64url. */
	char *ka = jose_key_authorization("tok", "print");
	char *d = jose_key_authz_digest_b64(ka);
	uint8_t raw[32];
	char *hex;

	TH_CHECK_STR(t, ka, "tok.print");
	TH_CHECK_STR(t, d, "mVG9RDqZGUHNaYH__iR1qjtL3OJV6Y09RJWpigSaTPw");
	jose_key_authz_digest(ka, raw);
	hex = hex_encode(raw, 32);
	TH_CHECK_STR(t, hex,
	    "9951bd443a991941cd6981fffe2475aa3b4bdce255e98d3d"
	    "4495a98a049a4cfc");
	free(hex);
	free(ka);
	free(d);
}

/* ------------------------------------------------------------------ */
/* Key change                                                           */
/* ------------------------------------------------------------------ */

/* Outer keyChange JWS (kid, by ec256) around an inner built from args. */
static struct jws *
key_change(struct fx *f, EVP_PKEY *newk, json_t *inner_hdr, json_t *kc)
{
	char *kcs = json_dumps(kc, JSON_COMPACT), *inner, *outer;
	json_t *oh = hdr(NULL);
	struct jws *j = NULL;

	json_object_set_new(oh, "url", json_string(URL "/key-change"));
	inner = jws_sign(newk, "ES256", inner_hdr, (uint8_t *)kcs, strlen(kcs));
	outer = sign(f->ec256, "ES256", oh, inner);
	if (outer == NULL ||
	    jws_parse(outer, strlen(outer), NULL, &j, NULL) != 0 ||
	    jws_verify(j, f->acct, NULL) != 0)
		abort();
	free(kcs);
	free(inner);
	free(outer);
	json_decref(inner_hdr);
	json_decref(kc);
	return j;
}

static json_t *
inner_hdr(EVP_PKEY *newk)
{
	return json_pack(
	    "{s:o, s:s}", "jwk", jwk_from_pkey(newk), "url", URL "/key-change");
}

static json_t *
kc_obj(EVP_PKEY *old)
{
	return json_pack(
	    "{s:s, s:o}", "account", ACCT, "oldKey", jwk_from_pkey(old));
}

/* Runs jose_verify_key_change; returns the problem type or -1 if ok. */
static int
kc_result(struct fx *f, struct jws *outer, struct jwk **newk)
{
	struct problem *prob = NULL;
	int r = -1;

	*newk = NULL;
	if (jose_verify_key_change(outer, NULL, ACCT, f->acct, newk, &prob) !=
	    0) {
		r = (int)prob->type;
		fprintf(stderr, "  key change: %s: %s\n",
		    prob_type_name(prob->type), prob->detail);
	}
	problem_free(prob);
	jws_free(outer);
	return r;
}

TH_TEST(test_key_change)
{
	struct fx *f = FX(t);
	struct jwk *nk = NULL;
	json_t *h, *kc;
	char *tp = tp_of(f->ec256_b, NULL);

	/* good */
	TH_CHECK(t,
	    kc_result(f,
		key_change(
		    f, f->ec256_b, inner_hdr(f->ec256_b), kc_obj(f->ec256)),
		&nk) == -1);
	TH_CHECK(
	    t, nk != NULL && tp != NULL && strcmp(nk->thumbprint, tp) == 0);
	jwk_free(nk);
	/* inner carries a nonce */
	h = inner_hdr(f->ec256_b);
	json_object_set_new(h, "nonce", json_string("abcd"));
	TH_CHECK(t,
	    kc_result(f, key_change(f, f->ec256_b, h, kc_obj(f->ec256)), &nk) ==
		    PROB_MALFORMED &&
		nk == NULL);
	/* inner uses kid */
	h = json_pack("{s:s, s:s}", "kid", ACCT, "url", URL "/key-change");
	TH_CHECK(t,
	    kc_result(f, key_change(f, f->ec256_b, h, kc_obj(f->ec256)), &nk) ==
		PROB_MALFORMED);
	/* inner url differs */
	h = inner_hdr(f->ec256_b);
	json_object_set_new(h, "url", json_string(URL "/other"));
	TH_CHECK(t,
	    kc_result(f, key_change(f, f->ec256_b, h, kc_obj(f->ec256)), &nk) ==
		PROB_MALFORMED);
	/* account differs */
	kc = kc_obj(f->ec256);
	json_object_set_new(kc, "account", json_string(ACCT "0"));
	TH_CHECK(t,
	    kc_result(f, key_change(f, f->ec256_b, inner_hdr(f->ec256_b), kc),
		&nk) == PROB_UNAUTHORIZED);
	/* oldKey is not the account key */
	TH_CHECK(t,
	    kc_result(f,
		key_change(
		    f, f->ec256_b, inner_hdr(f->ec256_b), kc_obj(f->ec384)),
		&nk) == PROB_UNAUTHORIZED);
	/* oldKey missing */
	kc = kc_obj(f->ec256);
	json_object_del(kc, "oldKey");
	TH_CHECK(t,
	    kc_result(f, key_change(f, f->ec256_b, inner_hdr(f->ec256_b), kc),
		&nk) == PROB_MALFORMED);
	/* inner signed by a key other than its jwk */
	TH_CHECK(t,
	    kc_result(f,
		key_change(
		    f, f->ec256, inner_hdr(f->ec256_b), kc_obj(f->ec256)),
		&nk) == PROB_MALFORMED);
	/* outer JWS with a jwk instead of the account's kid */
	{
		json_t *ih = inner_hdr(f->ec256_b);
		char *inner = jws_sign(f->ec256_b, "ES256", ih, NULL, 0);
		char *outer = sign(f->ec256, "ES256", hdr(f->ec256), inner);
		struct jws *j = NULL;

		TH_CHECK(
		    t, jws_parse(outer, strlen(outer), NULL, &j, NULL) == 0);
		TH_CHECK(
		    t, j != NULL && kc_result(f, j, &nk) == PROB_MALFORMED);
		json_decref(ih);
		free(inner);
		free(outer);
	}
	/* new key = old key */
	TH_CHECK(t,
	    kc_result(f,
		key_change(f, f->ec256, inner_hdr(f->ec256), kc_obj(f->ec256)),
		&nk) == PROB_MALFORMED);
	free(tp);
}

/* ------------------------------------------------------------------ */
/* External account binding                                             */
/* ------------------------------------------------------------------ */

static const uint8_t eab_key[] = "0123456789abcdef0123456789abcdef";

static json_t *
eab(EVP_PKEY *acct, const char *alg, const char *kid, const char *url)
{
	json_t *h = json_pack("{s:s, s:s}", "kid", kid, "url", url);
	json_t *pl = jwk_from_pkey(acct), *out;
	char *pls = json_dumps(pl, JSON_COMPACT);
	char *s =
	    jws_sign_hmac(eab_key, 32, alg, h, (uint8_t *)pls, strlen(pls));

	out = json_loads(s, 0, NULL);
	free(s);
	free(pls);
	json_decref(pl);
	json_decref(h);
	return out;
}

static int
eab_result(struct fx *f, json_t *e, const uint8_t *key, size_t keylen)
{
	struct problem *prob = NULL;
	int r = -1;

	if (jose_verify_eab(e, key, keylen, f->acct, URL, &prob) != 0) {
		r = (int)prob->type;
		fprintf(stderr, "  eab: %s: %s\n", prob_type_name(prob->type),
		    prob->detail);
	}
	problem_free(prob);
	json_decref(e);
	return r;
}

TH_TEST(test_eab)
{
	struct fx *f = FX(t);
	char *kid = NULL;
	json_t *e = eab(f->ec256, "HS256", "kid-1", URL), *h;
	struct problem *prob = NULL;
	char *s, *tampered;
	const char *sig;

	TH_CHECK(t, jose_eab_kid(e, &kid, NULL) == 0);
	TH_CHECK_STR(t, kid, "kid-1");
	free(kid);
	TH_CHECK(t, eab_result(f, e, eab_key, 32) == -1);
	TH_CHECK(t,
	    eab_result(f, eab(f->ec256, "HS384", "k", URL), eab_key, 32) == -1);
	TH_CHECK(t,
	    eab_result(f, eab(f->ec256, "HS512", "k", URL), eab_key, 32) == -1);
	/* wrong MAC key */
	TH_CHECK(t,
	    eab_result(f, eab(f->ec256, "HS256", "k", URL),
		(const uint8_t *)"another key of 32 bytes.........",
		32) == PROB_UNAUTHORIZED);
	/* payload is another key */
	TH_CHECK(t,
	    eab_result(f, eab(f->ec384, "HS256", "k", URL), eab_key, 32) ==
		PROB_UNAUTHORIZED);
	/* wrong url */
	TH_CHECK(t,
	    eab_result(f, eab(f->ec256, "HS256", "k", URL "/x"), eab_key, 32) ==
		PROB_MALFORMED);
	/* truncated MAC */
	e = eab(f->ec256, "HS256", "k", URL);
	sig = json_string_value(json_object_get(e, "signature"));
	tampered = xstrndup(sig, strlen(sig) - 3);
	json_object_set_new(e, "signature", json_string(tampered));
	free(tampered);
	TH_CHECK(t, eab_result(f, e, eab_key, 32) == PROB_UNAUTHORIZED);
	/* a nonce / an RS256 alg in the EAB header */
	h = json_pack(
	    "{s:s, s:s, s:s}", "kid", "k", "url", URL, "nonce", "abc");
	s = jws_sign_hmac(eab_key, 32, "HS256", h, (uint8_t *)"{}", 2);
	TH_CHECK(t,
	    eab_result(f, json_loads(s, 0, NULL), eab_key, 32) ==
		PROB_MALFORMED);
	free(s);
	json_decref(h);
	h = json_pack("{s:s, s:s}", "kid", "k", "url", URL);
	s = jws_sign(f->ec256, "ES256", h, (uint8_t *)"{}", 2);
	TH_CHECK(t,
	    eab_result(f, json_loads(s, 0, NULL), eab_key, 32) ==
		PROB_BAD_SIGNATURE_ALGORITHM);
	free(s);
	json_decref(h);
	/* no kid */
	h = json_pack("{s:s}", "url", URL);
	s = jws_sign_hmac(eab_key, 32, "HS256", h, (uint8_t *)"{}", 2);
	e = json_loads(s, 0, NULL);
	TH_CHECK(t,
	    jose_eab_kid(e, &kid, &prob) == -1 && kid == NULL &&
		prob->type == PROB_MALFORMED);
	problem_free(prob);
	json_decref(e);
	free(s);
	json_decref(h);
	/* not an object */
	e = json_string("x");
	TH_CHECK(t, eab_result(f, e, eab_key, 32) == PROB_MALFORMED);
}

TH_TEST(test_sign_shapes)
{
	/* ECDSA output is r||s of the curve's size; RSA the modulus size. */
	struct fx *f = FX(t);
	struct {
		EVP_PKEY *k;
		const char *alg;
		size_t len;
	} v[] = {
	    {f->ec256, "ES256", 64},
	    {f->ec384, "ES384", 96},
	    {f->ec521, "ES512", 132},
	    {f->rsa, "RS256", 256},
	    {f->ed, "EdDSA", 64},
	};
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct parts pt;
		uint8_t sig[600];
		char *s = sign(v[i].k, v[i].alg, json_object(), "{}");

		TH_CHECK(t, s != NULL);
		if (s == NULL)
			continue;
		split(s, &pt);
		TH_CHECK(t, get_sig(&pt, sig, sizeof(sig)) == v[i].len);
		free(join(&pt));
	}
	TH_CHECK(t, jws_sign(f->ec256, "HS256", NULL, NULL, 0) == NULL);
	TH_CHECK(t, jws_sign_hmac(eab_key, 32, "RS256", NULL, NULL, 0) == NULL);
}

static EVP_PKEY *
load_pem(const char *path)
{
	FILE *fp = fopen(path, "r");
	EVP_PKEY *k;

	if (fp == NULL)
		return NULL;
	k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	return k;
}

int
main(void)
{
	struct fx f;
	json_t *j;
	int rc;

	memset(&f, 0, sizeof(f));
	f.th = (struct th)TH_INIT;
	log_init("test_jose", LOG_LEVEL_WARN);
	jose_policy_default(&f.def);
	jose_policy_default(&f.all);
	f.all.allow_es512 = f.all.allow_eddsa = 1;
	f.rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	f.rsa_b = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	f.rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	f.ec256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	f.ec256_b = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	f.ec384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	f.ec521 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
	f.ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	f.rsa4096 = load_pem(VEC "rsa4096.pem");
	f.rsa_e3 = load_pem(VEC "rsa2048-e3.pem");
	if (f.rsa4096 == NULL || f.rsa_e3 == NULL) {
		fprintf(stderr,
		    "fixtures missing: run from the repository "
		    "top\n");
		printf("0 passed, 1 failed\n");
		return 1;
	}
	j = jwk_from_pkey(f.ec256);
	if (f.rsa == NULL || f.ec256 == NULL || f.ed == NULL ||
	    jwk_parse(j, NULL, &f.acct, NULL) != 0)
		abort();
	json_decref(j);

	run_table(&f);
	th_run_tests(&f.th);

	rc = th_done(&f.th);
	jwk_free(f.acct);
	EVP_PKEY_free(f.rsa);
	EVP_PKEY_free(f.rsa_b);
	EVP_PKEY_free(f.rsa1024);
	EVP_PKEY_free(f.rsa4096);
	EVP_PKEY_free(f.rsa_e3);
	EVP_PKEY_free(f.ec256);
	EVP_PKEY_free(f.ec256_b);
	EVP_PKEY_free(f.ec384);
	EVP_PKEY_free(f.ec521);
	EVP_PKEY_free(f.ed);
	return rc;
}
