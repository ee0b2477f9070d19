/*
 * jose_int.h - internals shared by the files of jose/ (not a public API).
 */
#ifndef ANVIL_JOSE_INT_H
#define ANVIL_JOSE_INT_H

#include "jose/jose.h"

/* Deepest JSON nesting accepted in anything we parse. */
#define JOSE_MAX_DEPTH 32

/* Sets *prob (if prob != NULL) to a new problem; always returns -1. */
int jose_fail(struct problem **prob, enum prob_type t, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Parses len bytes of untrusted JSON that must be an object: nesting
 * bounded by JOSE_MAX_DEPTH, duplicate member names rejected, no NUL.
 * what names the thing in the detail ("JWS", "protected header").
 * 0 and *out (new reference), or -1 and malformed.
 */
int jose_json_object(const char *buf, size_t len, const char *what,
    json_t **out, struct problem **prob);

/*
 * 1 if obj (borrowed) is a JWK of the same public key as key (borrowed),
 * whatever the signing policy would say of it, else 0.
 */
int jose_jwk_json_is(const json_t *obj, const struct jwk *key);

/*
 * RFC 7515 §7.2.2: the flattened JWS object obj (borrowed) has no member
 * but "protected", "payload" and "signature". 0, or -1 with a malformed
 * problem naming what and the member.
 */
int jose_flat_members(
    const json_t *obj, const char *what, struct problem **prob);

/*
 * Strict base64url of the string member name of obj into *out (malloc'd,
 * NUL appended). Missing / not a string / bad encoding -> -1 and a
 * problem of type t naming "<what>.<name>".
 */
int jose_b64_member(const json_t *obj, const char *name, const char *what,
    enum prob_type t, uint8_t **out, size_t *outlen, struct problem **prob);

/* 1 if s is non-empty and only base64url characters, else 0. */
int jose_is_b64url(const char *s);

/* The message digest of an alg (SHA-256/384/512), NULL for EdDSA. */
const EVP_MD *jose_alg_md(enum jose_alg a);
/* Size of one of r, s for the ECDSA algs; 0 for others. */
size_t jose_alg_ec_len(enum jose_alg a);

/*
 * Flags for jose_jws_from_object: what the header must / must not hold.
 */
enum {
	JOSE_HDR_NONCE_REQUIRED = 1,  /* outer JWS */
	JOSE_HDR_NONCE_FORBIDDEN = 2, /* inner key-change JWS */
	JOSE_HDR_JWK_REQUIRED = 4     /* inner key-change JWS */
};

/*
 * Parses an already-decoded flattened JWS object (borrowed) into *out
 * (jws_free); what names it in details ("JWS", "inner JWS"). Same checks as
 * jws_parse with flags choosing the nonce / jwk rules.
 */
int jose_jws_from_object(const json_t *obj, const struct jose_policy *policy,
    unsigned flags, const char *what, struct jws **out, struct problem **prob);

/* Raw signature check of data with pkey for alg; 1 valid, 0 not. */
int jose_sig_check(EVP_PKEY *pkey, enum jose_alg alg, const uint8_t *data,
    size_t len, const uint8_t *sig, size_t siglen);

/* HMAC of data with an HS256/384/512 alg into mac; its length or -1. */
int jose_hmac(const char *alg, const uint8_t *key, size_t keylen,
    const uint8_t *data, size_t len, uint8_t mac[EVP_MAX_MD_SIZE]);

#endif /* ANVIL_JOSE_INT_H */
