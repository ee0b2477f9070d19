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

/* The flattened JSON serialization, as a frame() template. */
#define FLAT "{\"protected\":\"%P\",\"payload\":\"%L\",\"signature\":\"%S\"}"

/*
 * The body made from template fr, where %P, %L and %S stand for pt's
 * protected header, payload and signature; frees pt's strings.
 */
static char *
frame(struct parts *pt, const char *fr)
{
	char *out = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&out, &len);

	if (fp == NULL)
		abort();
	for (; *fr != '\0'; fr++) {
		const char *v = NULL;

		if (fr[0] == '%')
			v = fr[1] == 'P'   ? pt->p
			    : fr[1] == 'L' ? pt->pl
			    : fr[1] == 'S' ? pt->s
					   : NULL;
		if (v != NULL) {
			fputs(v, fp);
			fr++;
		} else {
			fputc(*fr, fp);
		}
	}
	if (fclose(fp) != 0)
		abort();
	free(pt->p);
	free(pt->pl);
	free(pt->s);
	return out;
}

static char *
join(struct parts *pt)
{
	return frame(pt, FLAT);
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

/* ------------------------------------------------------------------ */
/* The table                                                            */
/* ------------------------------------------------------------------ */

enum stage {
	OK,     /* parse + verify (+ payload JSON) succeed */
	PARSE,  /* jws_parse fails */
	VERIFY, /* jws_verify fails */
	PAYLOAD /* jws_payload_json fails */
};

/* The fixture's keys, by name in the table. */
enum key {
	K_EC256,
	K_EC256_B,
	K_EC384,
	K_EC521,
	K_ED,
	K_RSA,
	K_RSA_B,
	K_RSA1024,
	K_RSA4096,
	K_RSA_E3
};

static EVP_PKEY *
key_of(struct fx *f, enum key k)
{
	EVP_PKEY *const keys[] = {f->ec256, f->ec256_b, f->ec384, f->ec521,
	    f->ed, f->rsa, f->rsa_b, f->rsa1024, f->rsa4096, f->rsa_e3};

	return keys[k];
}

/* What the protected header names: the signer's jwk, the account's kid, or
 * the jwk of rsa (whoever signs). */
enum hdr_key { JWK_SIGNER, KID, JWK_RSA };

/*
 * One request body and what the library must make of it. A body is the
 * literal body, or what build returns, or else: a protected header from
 * hdr() for hk, changed by hdr_del, hdr_set and jwk_set, signed by key as
 * alg (default ES256) over payload (default "{}"; none for POST-as-GET),
 * then changed after signing by the members from hdr_after down.
 */
struct jcase {
	const char *name;
	enum stage stage;
	enum prob_type type;
	int permissive;  /* policy with ES512 + EdDSA */
	int post_as_get; /* OK case with empty payload */
	const char *body;
	char *(*build)(struct fx *f);
	enum key key;
	const char *alg;
	enum hdr_key hk;
	const char *payload;
	const char *hdr_del; /* member removed from the header */
	const char *hdr_set; /* JSON object merged into the header */
	const char *jwk_set; /* JSON object merged into its jwk */
	/* after signing: the protected header becomes the header as it was
	 * before signing with hdr_after merged in, or the text hdr_text */
	const char *hdr_after;
	const char *hdr_text;
	const char *pl_after; /* the payload becomes this text */
	size_t sig_len;       /* the signature cut or 0-padded to this */
	void (*edit)(struct fx *f, struct parts *pt);
	const char *frame; /* body template (%P, %L, %S), FLAT if NULL */
};

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

/* Replaces the signature with 64 random bytes. */
static void
e_sig_random64(struct fx *f, struct parts *pt)
{
	uint8_t sig[64];

	(void)f;
	random_bytes(sig, sizeof(sig));
	set_sig(pt, sig, sizeof(sig));
}

/* Replaces the signature with 64 zero bytes: r = s = 0. */
static void
e_sig_zero(struct fx *f, struct parts *pt)
{
	uint8_t sig[64] = {0};

	(void)f;
	set_sig(pt, sig, sizeof(sig));
}

/* Signs the same input with OpenSSL's native DER ECDSA output. */
static void
e_sig_der(struct fx *f, struct parts *pt)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t sig[128];
	size_t siglen = sizeof(sig);
	char *input = xasprintf("%s.%s", pt->p, pt->pl);

	if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, f->ec256) <= 0 ||
	    EVP_DigestSign(md, sig, &siglen, (uint8_t *)input, strlen(input)) <=
		0)
		abort();
	set_sig(pt, sig, siglen);
	EVP_MD_CTX_free(md);
	free(input);
}

static void
e_sig_bitflip(struct fx *f, struct parts *pt)
{
	uint8_t sig[600];
	size_t n = get_sig(pt, sig, sizeof(sig));

	(void)f;
	sig[n / 2] ^= 0x01;
	set_sig(pt, sig, n);
}

static void
e_sig_plus(struct fx *f, struct parts *pt)
{
	(void)f;
	pt->s[strlen(pt->s) / 2] = '+';
}

static void
e_sig_trailing_bits(struct fx *f, struct parts *pt)
{
	/* 64 bytes end in a char carrying 2 data bits: set a spare one. */
	char *last = pt->s + strlen(pt->s) - 1;

	(void)f;
	switch (*last) {
	case 'A':
		*last = 'B';
		break;
	case 'Q':
		*last = 'R';
		break;
	case 'g':
		*last = 'h';
		break;
	default:
		*last = 'x';
		break;
	}
}

static void
e_payload_space(struct fx *f, struct parts *pt)
{
	char *p = xasprintf("%.4s %s", pt->pl, pt->pl + 4);

	(void)f;
	free(pt->pl);
	pt->pl = p;
}

/* The jwk's coordinate member m, decoded (the caller frees it). */
static uint8_t *
jwk_coord(json_t *jwk, const char *m, size_t *len)
{
	const char *v = json_string_value(json_object_get(jwk, m));
	uint8_t *raw = NULL;

	if (v == NULL || b64url_decode(v, strlen(v), &raw, len) != 0)
		abort();
	return raw;
}

static void
set_coord(json_t *jwk, const char *m, const uint8_t *raw, size_t len)
{
	char *e = b64url_encode(raw, len);

	json_object_set_new(jwk, m, json_string(e));
	free(e);
}

static char *
c_off_curve(struct fx *f)
{
	json_t *h = hdr(f->ec256);
	json_t *jwk = json_object_get(h, "jwk");
	size_t ylen = 0;
	uint8_t *y = jwk_coord(jwk, "y", &ylen);

	y[ylen - 1] ^= 1;
	set_coord(jwk, "y", y, ylen);
	free(y);
	return sign(f->ec256, "ES256", h, "{}");
}

static char *
c_coord_len(struct fx *f)
{
	json_t *h = hdr(f->ec256);
	json_t *jwk = json_object_get(h, "jwk");
	size_t xlen = 0;
	uint8_t *x = jwk_coord(jwk, "x", &xlen), x33[33] = {0};

	if (xlen != 32)
		abort();
	memcpy(x33 + 1, x, 32);
	set_coord(jwk, "x", x33, 33);
	free(x);
	return sign(f->ec256, "ES256", h, "{}");
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

#define BAD_ALG PROB_BAD_SIGNATURE_ALGORITHM
#define BAD_KEY PROB_BAD_PUBLIC_KEY
/* The start of a flattened body, for .frame */
#define P_AND_L "{\"protected\":\"%P\",\"payload\":\"%L\","
/* A protected header with a kid, nonce and url after the members given. */
#define HDR_KNU(members)                                                       \
	"{" members "\"kid\":\"k\",\"nonce\":\"n\",\"url\":\"u\"}"

static const struct jcase cases[] = {
    {"RS256 with RSA-2048 jwk", OK, .key = K_RSA, .alg = "RS256",
	.payload = "{\"a\":1}"},
    {"RS256 with RSA-4096 jwk", OK, .key = K_RSA4096, .alg = "RS256"},
    {"ES256 with P-256 jwk", OK, .payload = "{\"a\":1}"},
    {"ES384 with P-384 jwk", OK, .key = K_EC384, .alg = "ES384"},
    {"ES512 with P-521 when enabled", OK, .permissive = 1, .key = K_EC521,
	.alg = "ES512"},
    {"EdDSA with Ed25519 when enabled", OK, .permissive = 1, .key = K_ED,
	.alg = "EdDSA"},
    {"kid + account key", OK, .hk = KID, .payload = "{\"status\":\"x\"}"},
    {"POST-as-GET (empty payload)", OK, .post_as_get = 1, .hk = KID},
    {"extra header member typ", OK, .hdr_set = "{\"typ\":\"JOSE\"}"},
    {"whitespace around body", OK, .frame = " \n\t" FLAT "\r\n "},
    {"jwk alg member matching", OK, .jwk_set = "{\"alg\":\"ES256\"}"},
    {"alg none", PARSE, BAD_ALG, .hdr_after = "{\"alg\":\"none\"}",
	.frame = P_AND_L "\"signature\":\"AAAA\"}"},
    {"HS256 keyed with the public key", PARSE, BAD_ALG,
	.build = c_hs256_pubkey},
    {"RS256 header with EC key", VERIFY, BAD_ALG, .alg = "RS256"},
    /* OpenSSL cannot make an "ES256" signature with an RSA key: take a
     * 64-byte r||s-shaped signature under an ES256 header. */
    {"ES256 header with RSA key", VERIFY, BAD_ALG, .key = K_RSA, .alg = "RS256",
	.hdr_after = "{\"alg\":\"ES256\"}", .edit = e_sig_random64},
    {"ES384 header with P-256 key", VERIFY, BAD_ALG, .alg = "ES384"},
    {"ES512 when disabled", PARSE, BAD_ALG, .key = K_EC521, .alg = "ES512"},
    {"EdDSA when disabled", PARSE, BAD_ALG, .key = K_ED, .alg = "EdDSA"},
    {"alg PS256", PARSE, BAD_ALG, .key = K_RSA, .alg = "RS256",
	.hdr_text = HDR_KNU("\"alg\":\"PS256\",")},
    {"alg es256 (case)", PARSE, BAD_ALG,
	.hdr_text = HDR_KNU("\"alg\":\"es256\",")},
    {"alg not a string", PARSE, PROB_MALFORMED,
	.hdr_text = HDR_KNU("\"alg\":256,")},
    {"alg missing", PARSE, PROB_MALFORMED, .hdr_text = HDR_KNU("")},
    {"ES256 signature truncated (63)", VERIFY, PROB_MALFORMED, .sig_len = 63},
    {"ES256 signature over-long (65)", VERIFY, PROB_MALFORMED, .sig_len = 65},
    {"ES256 signature r=s=0", VERIFY, PROB_MALFORMED, .edit = e_sig_zero},
    {"RS256 signature truncated", VERIFY, PROB_MALFORMED, .key = K_RSA,
	.alg = "RS256", .sig_len = 255},
    {"RS256 signature over-long", VERIFY, PROB_MALFORMED, .key = K_RSA,
	.alg = "RS256", .sig_len = 257},
    {"ES256 DER-encoded signature", VERIFY, PROB_MALFORMED, .edit = e_sig_der},
    {"RS256 signature bit flipped", VERIFY, PROB_MALFORMED, .key = K_RSA,
	.alg = "RS256", .edit = e_sig_bitflip},
    {"payload changed after signing", VERIFY, PROB_MALFORMED,
	.payload = "{\"a\":1}", .pl_after = "{\"a\":2}"},
    {"protected header changed after signing", VERIFY, PROB_MALFORMED,
	.hdr_after = "{\"alg\":\"ES256\",\"url\":\"" URL "x\"}"},
    /* Header embeds rsa's jwk, but the signature is by rsa_b. */
    {"signed by another key than the jwk", VERIFY, PROB_MALFORMED,
	.key = K_RSA_B, .alg = "RS256", .hk = JWK_RSA},
    /* Signed by another P-256 key; verified with the account key. */
    {"kid request signed by another key", VERIFY, PROB_MALFORMED,
	.key = K_EC256_B, .hk = KID},
    {"both jwk and kid", PARSE, PROB_MALFORMED,
	.hdr_set = "{\"kid\":\"" ACCT "\"}"},
    {"neither jwk nor kid", PARSE, PROB_MALFORMED, .hk = KID, .hdr_del = "kid"},
    {"private member d in jwk", PARSE, BAD_KEY, .jwk_set = "{\"d\":\"AAAA\"}"},
    {"EC point off curve", PARSE, BAD_KEY, .build = c_off_curve},
    {"EC coordinate of 33 bytes", PARSE, BAD_KEY, .build = c_coord_len},
    {"RSA exponent 3", PARSE, BAD_KEY, .key = K_RSA_E3, .alg = "RS256"},
    {"RSA 1024 bits", PARSE, BAD_KEY, .key = K_RSA1024, .alg = "RS256"},
    {"kty oct (symmetric) jwk", PARSE, BAD_KEY, .hk = KID, .hdr_del = "kid",
	.hdr_set = "{\"jwk\":{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}}"},
    {"jwk alg RS256 on an EC key", PARSE, BAD_KEY,
	.jwk_set = "{\"alg\":\"RS256\"}"},
    {"'=' padding in protected", PARSE, PROB_MALFORMED,
	.frame = "{\"protected\":\"%P==\",\"payload\":\"%L\","
		 "\"signature\":\"%S\"}"},
    {"non-canonical base64url (spare bits set)", PARSE, PROB_MALFORMED,
	.edit = e_sig_trailing_bits},
    {"'+' in signature", PARSE, PROB_MALFORMED, .edit = e_sig_plus},
    {"space inside payload", PARSE, PROB_MALFORMED, .payload = "{\"abc\":1}",
	.edit = e_payload_space},
    {"duplicate member in body", PARSE, PROB_MALFORMED,
	.frame = "{\"protected\":\"%P\",\"payload\":\"%L\",\"signature\":"
		 "\"%S\",\"payload\":\"\"}"},
    {"duplicate alg in protected header", PARSE, PROB_MALFORMED,
	.hdr_text = HDR_KNU("\"alg\":\"ES256\",\"alg\":\"none\",")},
    {"huge integer in protected header", PARSE, PROB_MALFORMED,
	.hdr_text = "{\"alg\":\"ES256\",\"kid\":\"k\",\"nonce\":\"n\","
		    "\"url\":\"u\",\"x\":"
		    "123456789012345678901234567890123456789}"},
    {"huge real in payload", PAYLOAD, PROB_MALFORMED,
	.payload = "{\"n\":1e999}"},
    {"200-deep payload", PAYLOAD, PROB_MALFORMED, .build = c_deep_payload},
    {"40-deep body", PARSE, PROB_MALFORMED,
	.body = "{\"protected\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
		"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}"},
    {"payload not JSON", PAYLOAD, PROB_MALFORMED, .payload = "hello"},
    {"payload a JSON array", PAYLOAD, PROB_MALFORMED, .payload = "[1,2]"},
    {"payload with duplicate member", PAYLOAD, PROB_MALFORMED,
	.payload = "{\"contact\":[],\"contact\":[\"mailto:x@y.z\"]}"},
    {"compact serialization", PARSE, PROB_MALFORMED, .frame = "%P.%L.%S"},
    {"general serialization", PARSE, PROB_MALFORMED,
	.frame = "{\"payload\":\"%L\",\"signatures\":[{\"protected\":"
		 "\"%P\",\"signature\":\"%S\"}]}"},
    {"unprotected header", PARSE, PROB_MALFORMED,
	.frame = "{\"protected\":\"%P\",\"header\":{\"kid\":\"x\"},"
		 "\"payload\":\"%L\",\"signature\":\"%S\"}"},
    {"no nonce", PARSE, PROB_BAD_NONCE, .hdr_del = "nonce"},
    {"nonce a number", PARSE, PROB_BAD_NONCE, .hdr_set = "{\"nonce\":5}"},
    {"no url", PARSE, PROB_MALFORMED, .hdr_del = "url"},
    {"url a number", PARSE, PROB_MALFORMED, .hdr_set = "{\"url\":5}"},
    {"crit header", PARSE, PROB_MALFORMED,
	.hdr_set = "{\"crit\":[\"exp\"],\"exp\":1}"},
    {"body not JSON", PARSE, PROB_MALFORMED, .body = "{\"protected\": nope}"},
    {"empty body", PARSE, PROB_MALFORMED, .body = ""},
    {"body over the size cap", PARSE, PROB_MALFORMED, .build = c_too_large},
    {"empty signature", PARSE, PROB_MALFORMED,
	.frame = P_AND_L "\"signature\":\"\"}"},
    {"protected header is an array", PARSE, PROB_MALFORMED,
	.hdr_text = "[\"alg\",\"ES256\"]"},
    {"signature a number", PARSE, PROB_MALFORMED,
	.frame = P_AND_L "\"signature\":12}"},
    {"body a JSON array", PARSE, PROB_MALFORMED,
	.body = "[{\"protected\":\"e30\"}]"},
};

/* Merges the JSON object text js into o (both may be NULL: no change). */
static void
merge(json_t *o, const char *js)
{
	json_t *add = js != NULL ? json_loads(js, 0, NULL) : NULL;

	if (js != NULL && (o == NULL || json_object_update(o, add) != 0))
		abort();
	json_decref(add);
}

/* Replaces the string *slot (owned) with the base64url of text. */
static void
set_b64(char **slot, const char *text)
{
	free(*slot);
	*slot = b64s(text);
}

/* The body of case c (the caller frees it), or NULL if signing failed. */
static char *
build_case(struct fx *f, const struct jcase *c)
{
	EVP_PKEY *k = key_of(f, c->key);
	json_t *h, *before = NULL;
	struct parts pt;
	char *body;

	if (c->body != NULL)
		return xstrdup(c->body);
	if (c->build != NULL)
		return c->build(f);
	h = hdr(c->hk == KID ? NULL : c->hk == JWK_RSA ? f->rsa : k);
	if (c->hdr_del != NULL)
		json_object_del(h, c->hdr_del);
	merge(h, c->hdr_set);
	merge(json_object_get(h, "jwk"), c->jwk_set);
	if (c->hdr_after != NULL)
		before = json_deep_copy(h);
	body = sign(k, c->alg ? c->alg : "ES256", h,
	    c->post_as_get   ? NULL
		: c->payload ? c->payload
			     : "{}");
	if (body == NULL ||
	    (before == NULL && c->hdr_text == NULL && c->pl_after == NULL &&
		c->sig_len == 0 && c->edit == NULL && c->frame == NULL))
		return body;
	split(body, &pt);
	if (before != NULL) {
		char *hs;

		merge(before, c->hdr_after);
		hs = json_dumps(before, JSON_COMPACT);
		set_b64(&pt.p, hs);
		free(hs);
		json_decref(before);
	}
	if (c->hdr_text != NULL)
		set_b64(&pt.p, c->hdr_text);
	if (c->pl_after != NULL)
		set_b64(&pt.pl, c->pl_after);
	if (c->sig_len != 0) {
		uint8_t sig[600] = {0};

		(void)get_sig(&pt, sig, sizeof(sig));
		set_sig(&pt, sig, c->sig_len);
	}
	if (c->edit != NULL)
		c->edit(f, &pt);
	return frame(&pt, c->frame != NULL ? c->frame : FLAT);
}

/* The row called name. */
static const struct jcase *
case_named(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (strcmp(cases[i].name, name) == 0)
			return &cases[i];
	abort();
}

/* Runs one case; returns 1 if it behaved as the table says. */
static int
run_case(struct fx *f, const struct jcase *c)
{
	const struct jose_policy *pol = c->permissive ? &f->all : &f->def;
	struct problem *prob = NULL;
	struct jws *j = NULL;
	json_t *payload = NULL;
	char *body = build_case(f, c);
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
	char *body = build_case(f, case_named("alg PS256"));
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

/* kc_result of key_change(f, newk, ih, kc), the new key dropped; -2 if
 * the change was refused but a new key came back anyway. */
static int
kc_try(struct fx *f, EVP_PKEY *newk, json_t *ih, json_t *kc)
{
	struct jwk *nk = NULL;
	int r = kc_result(f, key_change(f, newk, ih, kc), &nk);

	if (r != -1 && nk != NULL)
		r = -2;
	jwk_free(nk);
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
	TH_CHECK(
	    t, kc_try(f, f->ec256_b, h, kc_obj(f->ec256)) == PROB_MALFORMED);
	/* inner uses kid */
	h = json_pack("{s:s, s:s}", "kid", ACCT, "url", URL "/key-change");
	TH_CHECK(
	    t, kc_try(f, f->ec256_b, h, kc_obj(f->ec256)) == PROB_MALFORMED);
	/* inner url differs */
	h = inner_hdr(f->ec256_b);
	json_object_set_new(h, "url", json_string(URL "/other"));
	TH_CHECK(
	    t, kc_try(f, f->ec256_b, h, kc_obj(f->ec256)) == PROB_MALFORMED);
	/* account differs */
	kc = kc_obj(f->ec256);
	json_object_set_new(kc, "account", json_string(ACCT "0"));
	TH_CHECK(t,
	    kc_try(f, f->ec256_b, inner_hdr(f->ec256_b), kc) ==
		PROB_UNAUTHORIZED);
	/* oldKey is not the account key */
	TH_CHECK(t,
	    kc_try(f, f->ec256_b, inner_hdr(f->ec256_b), kc_obj(f->ec384)) ==
		PROB_UNAUTHORIZED);
	/* oldKey missing */
	kc = kc_obj(f->ec256);
	json_object_del(kc, "oldKey");
	TH_CHECK(t,
	    kc_try(f, f->ec256_b, inner_hdr(f->ec256_b), kc) == PROB_MALFORMED);
	/* inner signed by a key other than its jwk */
	TH_CHECK(t,
	    kc_try(f, f->ec256, inner_hdr(f->ec256_b), kc_obj(f->ec256)) ==
		PROB_MALFORMED);
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
	    kc_try(f, f->ec256, inner_hdr(f->ec256), kc_obj(f->ec256)) ==
		PROB_MALFORMED);
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
