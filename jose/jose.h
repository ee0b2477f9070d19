/*
 * jose.h - JWS / JWK for ACME (RFC 8555 §6.2-6.5, §7.3.4-7.3.5, §8.1).
 *
 * A library with no I/O: the WFE hands it a request body and gets back a
 * parsed, checked JWS; then verifies it with the embedded jwk or with the
 * account key it looked up by kid. Everything a client can get wrong comes
 * back as a core `struct problem` (malformed, badSignatureAlgorithm,
 * badPublicKey, badNonce, unauthorized) with a detail a client developer can
 * act on.
 *
 * Ownership: *_new / *_parse results are freed by the matching *_free
 * (NULL is a no-op). `char *` results are malloc'd, freed with free().
 * `json_t *` results are new references (json_decref). On error every
 * function sets *prob to a new problem the caller frees with problem_free
 * (prob itself may be NULL if the caller does not want it).
 *
 * Thread-safety: all functions are reentrant; parsed objects are read-only
 * after parsing and may be shared between threads.
 */
#ifndef ANVIL_JOSE_H
#define ANVIL_JOSE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "core/core.h"

/* Largest JWS body jws_parse accepts (the WFE may cap lower). */
#define JOSE_MAX_JWS_LEN (128 * 1024)

/* ------------------------------------------------------------------ */
/* Algorithms and policy                                               */
/* ------------------------------------------------------------------ */

/* Signature algorithms of the outer (account-key) JWS. */
enum jose_alg {
	JOSE_ALG_RS256,
	JOSE_ALG_ES256,
	JOSE_ALG_ES384,
	JOSE_ALG_ES512,
	JOSE_ALG_EDDSA,
	JOSE_ALG__MAX
};

/* "RS256", "ES256", ... "EdDSA" (static). */
const char *jose_alg_name(enum jose_alg a);
/* Exact, case-sensitive name to enum; -1 if not one of ours. */
int jose_alg_parse(const char *s, enum jose_alg *out);

/*
 * What the server accepts. Fill with jose_policy_default() and then change
 * fields (e.g. from the WFE config). A NULL policy pointer anywhere below
 * means the defaults.
 */
struct jose_policy {
	int allow_es512;  /* default 0 */
	int allow_eddsa;  /* default 0 (Ed25519 only) */
	int rsa_min_bits; /* default 2048 */
	int rsa_max_bits; /* default 4096 */
};

/* Defaults: RS256, ES256, ES384; RSA 2048-4096 bits, e = 65537. */
void jose_policy_default(struct jose_policy *p);
/*
 * Everything this library can import (ES512, EdDSA on; RSA 1024-16384
 * bits, still e = 65537): for re-importing keys that were accepted once
 * under the configured policy, e.g. a stored account key in the RA/SA, so
 * that a later policy change never locks an existing account out.
 */
void jose_policy_permissive(struct jose_policy *p);
/* 1 if alg is allowed by policy (NULL = defaults), else 0. */
int jose_policy_allows(const struct jose_policy *p, enum jose_alg a);
/*
 * The allowed algorithms as a JSON array of strings, e.g.
 * ["RS256","ES256","ES384"] (new reference), for the "algorithms" member
 * the WFE adds to a badSignatureAlgorithm problem (RFC 8555 §6.2).
 */
json_t *jose_policy_algs_json(const struct jose_policy *p);

/* ------------------------------------------------------------------ */
/* JWK (public keys only)                                               */
/* ------------------------------------------------------------------ */

enum jwk_kty { JWK_KTY_RSA, JWK_KTY_EC, JWK_KTY_OKP, JWK_KTY__MAX };

/* A parsed, validated public key. Read-only after jwk_parse. */
struct jwk {
	EVP_PKEY *pkey; /* owned */
	enum jwk_kty kty;
	const char *crv;   /* static: "P-256" "P-384" "P-521" "Ed25519"; */
			   /* NULL for RSA */
	enum jose_alg alg; /* the one JWS alg this key signs with */
	int bits;          /* RSA modulus / curve size */
	json_t *json;      /* owned: canonical public members only */
	char *thumbprint;  /* owned: RFC 7638 SHA-256, base64url */
};

/*
 * Imports a public JWK object (borrowed). Checks: kty RSA/EC/OKP, required
 * members present and strict base64url, no private members (d p q dp dq qi
 * oth k), RSA e = 65537 and bits within policy, EC point on the named curve
 * with coordinates of exactly the curve's length, crv/kty allowed by policy,
 * an "alg" member (if any) matching the key, "use" (if any) = "sig".
 * On success *out is a new jwk (jwk_free) and 0 is returned; else -1 with
 * *prob badPublicKey (bad key) or malformed (not a JWK at all).
 */
int jwk_parse(const json_t *obj, const struct jose_policy *policy,
    struct jwk **out, struct problem **prob);
void jwk_free(struct jwk *k);
/* A new jwk (jwk_free) holding the same key as k (borrowed): the EVP_PKEY
 * is shared (read-only use is thread-safe), the rest copied. NULL on error. */
struct jwk *jwk_dup(const struct jwk *k);
/* RFC 7638 thumbprint, base64url SHA-256. Caller frees. */
char *jwk_thumbprint(const struct jwk *k);
/* 1 if both are the same public key, else 0 (NULLs are never equal). */
int jwk_equal(const struct jwk *a, const struct jwk *b);
/* Canonical public JWK JSON (new reference). */
json_t *jwk_to_json(const struct jwk *k);
/*
 * Public JWK of an OpenSSL key (RSA, EC P-256/384/521, Ed25519; the key may
 * hold a private part, only public members are emitted). Borrows pkey.
 * New reference, or NULL if the key type is unsupported.
 */
json_t *jwk_from_pkey(EVP_PKEY *pkey);

/* ------------------------------------------------------------------ */
/* JWS (flattened JSON serialization only)                              */
/* ------------------------------------------------------------------ */

/* A parsed outer JWS. Read-only after jws_parse. */
struct jws {
	enum jose_alg alg;
	char *nonce;           /* owned, present (jws_parse requires it) */
	char *url;             /* owned, present */
	char *kid;             /* owned, exactly one of kid / jwk is non-NULL */
	struct jwk *jwk;       /* owned */
	json_t *protected_hdr; /* owned: the decoded protected header */
	uint8_t *payload;      /* owned, NUL-terminated (not counted) */
	size_t payload_len;
	int is_post_as_get;  /* payload is empty ("") */
	char *signing_input; /* owned: "<protected b64>.<payload b64>" */
	size_t signing_input_len;
	uint8_t *sig; /* owned: raw signature bytes */
	size_t sig_len;
};

/*
 * Parses and checks the structure of an ACME request body (borrowed, len
 * bytes, need not be NUL-terminated): a JSON object with exactly
 * "protected", "payload", "signature" (no "header", no "signatures", no
 * compact form, no duplicate members), strict base64url everywhere, a
 * protected header with alg (allowed by policy; else badSignatureAlgorithm
 * listing the allowed ones), nonce (missing -> badNonce), url, exactly one
 * of jwk/kid, no "crit"/"b64". An embedded jwk is imported with jwk_parse
 * (badPublicKey). The signature is NOT checked: call jws_verify.
 * 0 and *out (jws_free) on success, else -1 and *prob.
 */
int jws_parse(const char *body, size_t len, const struct jose_policy *policy,
    struct jws **out, struct problem **prob);
void jws_free(struct jws *j);

/*
 * Verifies the signature of j with key (both borrowed): the header alg must
 * be the alg of the key (else badSignatureAlgorithm), ECDSA signatures must
 * be r||s of the curve's exact length (else malformed, the detail says
 * when it looks DER-encoded), RSA signatures the modulus length, then the
 * signature must verify (else malformed "JWS signature verification
 * failed", as Boulder and Pebble answer).
 * The WFE passes j->jwk for new-account / revoke-by-key, or the account's
 * stored key for kid requests. 0 if valid, -1 and *prob otherwise.
 */
int jws_verify(
    const struct jws *j, const struct jwk *key, struct problem **prob);

/*
 * The payload as a JSON object (new reference in *out). An empty payload
 * (POST-as-GET), non-JSON, duplicate members or a non-object -> -1 and
 * malformed.
 */
int jws_payload_json(const struct jws *j, json_t **out, struct problem **prob);

/*
 * Signs (for tests, tools and the load generator): returns the flattened
 * JWS as a malloc'd JSON string, or NULL on error. key is borrowed and must
 * hold a private key; alg one of RS256/ES256/ES384/ES512/EdDSA; protected_hdr
 * (borrowed) gets "alg" set to alg in a copy; payload may be NULL/0 for
 * POST-as-GET. ECDSA signatures are emitted in JWS r||s form.
 */
char *jws_sign(EVP_PKEY *key, const char *alg, const json_t *protected_hdr,
    const uint8_t *payload, size_t payload_len);
/* Same with an HMAC key (alg HS256/HS384/HS512), for EAB. NULL on error. */
char *jws_sign_hmac(const uint8_t *key, size_t keylen, const char *alg,
    const json_t *protected_hdr, const uint8_t *payload, size_t payload_len);

/* ------------------------------------------------------------------ */
/* Key change (RFC 8555 §7.3.5)                                         */
/* ------------------------------------------------------------------ */

/*
 * outer: the keyChange request, already parsed, verified with the account's
 * current key and its url/nonce checked by the WFE (borrowed). Its payload
 * must be an inner flattened JWS with an embedded jwk (no kid; nonce
 * optional), signed by that new key, with the same url as outer, and a
 * payload {"account": account_url, "oldKey": <JWK equal to old_key>}.
 * The new key must differ from the old one. On success *new_key receives
 * the new key (jwk_free) and 0 is returned; else -1 and *prob (malformed,
 * badSignatureAlgorithm, badPublicKey, unauthorized).
 */
int jose_verify_key_change(const struct jws *outer,
    const struct jose_policy *policy, const char *account_url,
    const struct jwk *old_key, struct jwk **new_key, struct problem **prob);

/* ------------------------------------------------------------------ */
/* External account binding (RFC 8555 §7.3.4)                          */
/* ------------------------------------------------------------------ */

/*
 * Reads the "kid" of an externalAccountBinding JWS object (borrowed; the
 * value of the newAccount payload's "externalAccountBinding" member) so the
 * caller can look up the HMAC key. *kid malloc'd. 0, or -1 and malformed.
 */
int jose_eab_kid(const json_t *eab, char **kid, struct problem **prob);
/*
 * Verifies the EAB JWS: flattened, protected header alg HS256/HS384/HS512,
 * kid present, url equal to expected_url (the newAccount URL), no nonce,
 * payload equal to account_jwk (the outer JWS's jwk), and the HMAC under
 * hmac_key (keylen raw bytes, borrowed; the caller decodes the b64url EAB
 * key) compared in constant time. 0 if valid; -1 and *prob: malformed
 * (structure), unauthorized (bad MAC / wrong key in payload).
 */
int jose_verify_eab(const json_t *eab, const uint8_t *hmac_key, size_t keylen,
    const struct jwk *account_jwk, const char *expected_url,
    struct problem **prob);

/* ------------------------------------------------------------------ */
/* Key authorizations (RFC 8555 §8.1, §8.4; RFC 8737)                  */
/* ------------------------------------------------------------------ */

/* "token.thumbprint" (both borrowed). Caller frees. */
char *jose_key_authorization(const char *token, const char *thumbprint);
/* SHA-256 of the key authorization into out[32] (tls-alpn-01). */
void jose_key_authz_digest(const char *key_authz, uint8_t out[32]);
/* base64url(SHA-256(key authorization)): the dns-01 TXT value. Caller frees. */
char *jose_key_authz_digest_b64(const char *key_authz);

/* ------------------------------------------------------------------ */
/* Compact JWS (compact.c): tokens such as EAT / JWT                    */
/* ------------------------------------------------------------------ */

/*
 * Verifies the compact JWS jws (borrowed, NUL-terminated; RFC 7515 §7.1)
 * with the first of the n keys (borrowed) whose alg is the header's "alg"
 * and under which the signature verifies. A header with "crit" is refused.
 * 0 with *hdr and *payload (the decoded JSON objects, new references) and
 * *which (the key's index), or -1 with the reason in err.
 */
int jose_compact_verify(const char *jws, struct jwk *const *keys, size_t n,
    json_t **hdr, json_t **payload, size_t *which, char *err, size_t errlen);

#endif /* ANVIL_JOSE_H */
