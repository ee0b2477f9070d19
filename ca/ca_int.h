/*
 * ca_int.h - internals of the CA shared between ca/ sources and its unit tests.
 * Nothing outside ca/ and test/unit/test_ca*.c includes this.
 */
#ifndef ANVIL_CA_INT_H
#define ANVIL_CA_INT_H

#include <pthread.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca/ca.h"

struct ca_chain {
	char *intermediates_pem; /* issuer cert (or its cross-sign) upwards */
	char *root_pem;
	char *name; /* "default" / "alternate" */
};

struct ca_issuer {
	char id[17];
	char *name;
	enum ca_key_type key_type; /* of the issuer's own key */
	unsigned signs;            /* bit mask of enum ca_key_type it serves */
	X509 *cert;
	EVP_PKEY *key;
	/* Set when key is a handle on a PKCS#11 token (p11_int.h); owned. */
	struct ca_p11_key *p11;
	EVP_PKEY *lint_key; /* throwaway key of the same type, set by ca_new */
	char *cert_pem;
	struct ca_chain *chains;
	size_t nchains;
	char **profiles; /* NULL-terminated; empty = every profile */
	size_t nprofiles;
};

struct ca_issuers {
	struct ca_issuer *list;
	size_t count;
	struct ca_p11 **p11; /* owned: the PKCS#11 modules the keys use */
	size_t np11;
};

/*
 * The problem for a signature by issuer `is` that failed: unavailable
 * (503, the RA retries) when its key is on a token, naming the token's
 * error; serverInternal "<what> failed" otherwise. Caller frees.
 */
struct problem *ca_issuer_sign_problem(
    const struct ca_issuer *is, const char *what);

struct ca {
	struct ca_settings s;
	struct ca_issuers *issuers;
	const struct profiles *profiles;
	struct ca_store store;
	struct metrics *metrics;
	pthread_mutex_t crl_lock; /* one CRL generation at a time */
};

/*
 * Test mode (ceremony.c): keeps each issuer's first chain and replaces the
 * others by n chains, each through a new throwaway root (P-256, in memory
 * only) that cross-signs the issuer (same subject and key). Roots are
 * shared by all issuers, so chain k of every issuer ends in root k.
 * 0, or -1 with err (the issuers are left as they were on failure of a
 * signature, possibly with fewer chains).
 */
int ca_issuers_alternate_roots(
    struct ca_issuers *is, int n, char *err, size_t errlen);

/* ---- helpers (util.c) ---- */

/* Key type of a public key; -1 if neither RSA nor EC. */
int ca_pkey_type(const EVP_PKEY *k, enum ca_key_type *out);
/* PEM text of a certificate, malloc'd; NULL on failure. */
char *ca_x509_pem(const X509 *x);
/* DER of a certificate, malloc'd; -1 on failure. */
int ca_x509_der(const X509 *x, uint8_t **der, size_t *len);
/*
 * Takes p, what an i2d_*() call that returned n wrote (OPENSSL_malloc'd, may
 * be NULL): 0 with *der (a malloc'd copy, caller frees) and *len, or -1 when
 * n <= 0. Frees p in both cases.
 */
int ca_der_take(int n, unsigned char *p, uint8_t **der, size_t *len);
/* Issuer id: hex of the first 8 bytes of SHA-256(cert DER) into id[17]. */
int ca_x509_id(const X509 *x, char id[17]);
/* Serial mod n (n >= 1). */
int64_t ca_serial_shard(const uint8_t *serial, size_t len, int64_t n);
/* Calls the store; counts nothing. Same contract as ca_store_call_fn. */
int ca_store_call(struct ca *ca, enum rpc_method_id id, json_t *params,
    const char *rid, json_t **result, struct problem **prob);
/* Signs with SHA-256 (ECDSA or RSA PKCS#1 v1.5). 0 or -1. */
int ca_x509_sign(X509 *x, EVP_PKEY *key);
/* A fresh key: P-256, P-384 (bits 384) or RSA of `bits`. NULL on error. */
EVP_PKEY *ca_key_generate(enum ca_key_type kt, int bits);

/* ---- TBS (tbs.c) ---- */

struct ca_tbs {
	uint8_t serial[CA_SERIAL_LEN];
	EVP_PKEY *pubkey; /* borrowed (subject key) */
	/*
	 * Borrowed, may be NULL: the subject key as the CSR encoded it. When
	 * set it is copied into the certificate as ASN.1 (fast); otherwise
	 * pubkey is encoded with X509_set_pubkey (slow in OpenSSL 3, and the
	 * only way that leaves a decoded key in the certificate).
	 */
	const X509_PUBKEY *spki;
	time_t not_before;
	time_t not_after;   /* inclusive */
	const char *cn;     /* NULL: empty subject */
	const json_t *sans; /* borrowed array of {type, value}, in order */
	const struct profile *profile;
	const struct ca_issuer *issuer;
	int64_t shard;
	const char *base_url;
	int ocsp_url;
	/* RFC 9448 "ca": true: a STIR CA certificate (CA:TRUE, pathlen 0,
	 * keyCertSign/cRLSign) for the profile's tkauth_ca */
	int ca;
};

/* Unsigned certificate from a template; NULL with err. Caller frees. */
X509 *ca_tbs_build(const struct ca_tbs *t, char *err, size_t errlen);
/* DER of the TBSCertificate of a signed certificate. 0 or -1. */
int ca_tbs_der(X509 *x, uint8_t **der, size_t *len);
/*
 * Orders identifiers as the CSR's SAN extension lists them (those the CSR
 * does not list last). Returns a new array of new {type,value} objects, or
 * NULL with err when an identifier is malformed.
 */
json_t *ca_order_sans(
    X509_REQ *csr, const json_t *identifiers, char *err, size_t errlen);
/* The CN to put into the subject, or NULL (static to sans/csr lifetime). */
const char *ca_choose_cn(X509_REQ *csr, const json_t *sans);
/* draft-ietf-acme-device-attest §3.2/§4.2 (device.c): the otherName for a
 * permanent-identifier / hardware-module identifier (new), or NULL when
 * type is not one or value is malformed. */
GENERAL_NAME *ca_device_general_name(const char *type, const char *value);
/* The device identifier value (malloc'd, *type set) an otherName gn
 * (borrowed) names, or NULL. */
char *ca_gn_device_ident(const GENERAL_NAME *gn, enum ident_type *type);
/* 1 if the otherName gn (borrowed) names exactly identifier type/value
 * (octet for octet, draft-ietf-acme-device-attest §3.2), else 0. */
int ca_gn_device_equals(
    const GENERAL_NAME *gn, const char *type, const char *value);
/* RFC 9891 §7 (device.c): the BundleEID otherName (RFC 9174 §4.4.1) for a
 * normalised bundleEID value (borrowed); new, or NULL. */
GENERAL_NAME *ca_bundle_general_name(const char *value);

/* ---- RFC 8226 STIR certificates for RFC 9448 TNAuthList (stir.c) ---- */
/* Adds the TNAuthList extension (the DER of the one TNAuthList identifier
 * of sans, borrowed) to x. 0, or -1 with err. */
int ca_stir_add_ext(X509 *x, const json_t *sans, char *err, size_t errlen);
/* The subject CN naming that list ("SPC 709J"...) into buf, or NULL. */
const char *ca_stir_cn(const json_t *sans, char *buf, size_t buflen);
/* The STIR lint: one TNAuthList extension equal to the one identifier's
 * DER, no subjectAltName, no EKU, keyUsage digitalSignature only (ca: a
 * CA certificate, keyCertSign and cRLSign only). 0, or
 * -1 with msg. */
int ca_stir_lint(
    X509 *x, const json_t *idents, int ca, char *msg, size_t msglen);
/* The keyUsage of a STIR certificate: a CA one (tbs.ca) signs certificates
 * and CRLs, an end-entity one PASSporTs (digitalSignature). */
#define CA_STIR_CA_KU "critical,keyCertSign,cRLSign"

/* ---- lints (lint.c) ---- */

struct ca_lint_input {
	X509 *cert; /* the throwaway-signed certificate */
	/*
	 * Optional: the subject key as requested (decoded EVP_PKEY and its
	 * SPKI). When spki is set, lint spki_matches_request checks the
	 * certificate carries exactly it, and the key lints read pubkey
	 * instead of decoding the certificate's key again.
	 */
	EVP_PKEY *pubkey;
	const X509_PUBKEY *spki;
	const json_t *identifiers; /* the order's identifiers */
	const struct profile *profile;
	const struct ca_settings *settings; /* key policy; NULL = defaults */
	int ca; /* a tkauth_ca CA certificate was asked for (ca_tbs.ca) */
};

/* 0 = pass, -1 = fail with a reason in msg. */
typedef int (*ca_lint_fn)(
    const struct ca_lint_input *in, char *msg, size_t msglen);

struct ca_lint {
	const char *name;
	ca_lint_fn fn;
};

/* The lint table (static) and its length. */
const struct ca_lint *ca_lints(size_t *count);
/*
 * Key policy of the CA: RSA 2048..4096 bits (multiple of 8), ECDSA P-256 or
 * P-384. Borrows k; 0 or -1 with the reason in msg.
 */
int ca_key_check(
    EVP_PKEY *k, const struct ca_settings *s, char *msg, size_t msglen);
/* Looks a lint up by name; NULL if none. */
const struct ca_lint *ca_lint_find(const char *name);
/*
 * Runs every lint; 0 when all pass, else -1 with *failed = the first
 * failing lint's name (static) and its reason in msg.
 */
int ca_lint_all(const struct ca_lint_input *in, const char **failed, char *msg,
    size_t msglen);

/* ---- CRL / OCSP builders (crl.c, ocsp.c) ---- */

struct ca_crl_entry {
	uint8_t *serial; /* owned */
	size_t serial_len;
	time_t revoked_at;
	int reason;
};

/* Signed DER CRL; 0 or -1 with err. */
int ca_crl_build(const struct ca_issuer *is, int64_t number,
    const char *idp_url, time_t this_update, time_t next_update,
    const struct ca_crl_entry *entries, size_t n, uint8_t **der, size_t *len,
    char *err, size_t errlen);

/*
 * Signed DER OCSPResponse for one serial. revoked: 0 good, 1 revoked with
 * revoked_at and reason. 0 or -1 with err.
 */
int ca_ocsp_build(const struct ca_issuer *is, const uint8_t *serial,
    size_t serial_len, int revoked, time_t revoked_at, int reason,
    time_t this_update, time_t next_update, uint8_t **der, size_t *len,
    char *err, size_t errlen);

/* URL helpers: malloc'd strings. */
char *ca_url_crl(const char *base, const char *issuer_id, int64_t shard);
char *ca_url_issuer(const char *base, const char *issuer_id);
char *ca_url_ocsp(const char *base);

/*
 * anvil-ca --bench (bench.c): measures ca_issue (1 and `threads` threads),
 * ca_ocsp and ca_generate_crl per key type for `seconds` each, with a store
 * that accepts everything; prints one JSON line per key type. Returns the
 * exit status.
 */
int ca_bench_main(const char *issuers_path, const char *profiles_path,
    double seconds, int threads);

#endif /* ANVIL_CA_INT_H */
