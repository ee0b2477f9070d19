/*
 * ca.h - Anvil's certificate authority: issuers, linted certificate
 * signing, CRLs and OCSP responses.
 *
 * The signing pipeline is a library that talks to storage only through a
 * `struct ca_store` callback taking sa.* method names and JSON params (the
 * contract of docs/rpc-methods.md). anvil-ca plugs rpc_call() in; unit
 * tests plug an in-memory fake. The RPC handlers (ca_rpc_methods) are thin
 * glue over ca_issue / ca_generate_crl / ca_ocsp / ca_issuers_json.
 *
 * Ownership: *_new / *_load return objects the caller frees with the
 * matching *_free (NULL is a no-op). Threads: a `struct ca` is immutable
 * after ca_new; every function taking a const or non-const `struct ca *`
 * may be called from several threads at once.
 */
#ifndef ANVIL_CA_H
#define ANVIL_CA_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "core/core.h"
#include "rpc/rpc.h"

/* Serial numbers: 1 prefix byte + 17 random bytes. */
#define CA_SERIAL_LEN 18

enum ca_key_type { CA_KEY_ECDSA, CA_KEY_RSA, CA_KEY__MAX };

/* "ecdsa" / "rsa" (static); parse returns -1 if unknown. */
const char *ca_key_type_name(enum ca_key_type t);
int ca_key_type_parse(const char *s, enum ca_key_type *out);

/* ------------------------------------------------------------------ */
/* Storage interface                                                    */
/* ------------------------------------------------------------------ */

/*
 * Calls one sa.* method. params is borrowed. On success returns 0 and
 * *result (new reference, the CA decrefs it); on failure -1 and *prob
 * (the CA frees it). Must be callable from several threads at once.
 */
typedef int (*ca_store_call_fn)(void *arg, enum rpc_method_id id, json_t *params,
    const char *request_id, json_t **result, struct problem **prob);

struct ca_store {
	ca_store_call_fn call;
	void *arg; /* borrowed; must outlive the ca */
};

/* ------------------------------------------------------------------ */
/* Issuers                                                              */
/* ------------------------------------------------------------------ */

struct ca_issuer;
struct ca_issuers;

/*
 * Loads an issuers file (written by `anvil-admin ca init`, format in
 * docs/config/ca.md): certificates, private keys (refused when group or
 * world readable; optionally passphrase-protected through
 * "key_passphrase_file") and the chains up to each root. Relative paths in
 * the file are relative to the file's directory. Returns NULL with err.
 */
struct ca_issuers *ca_issuers_load(const char *path, char *err, size_t errlen);
void ca_issuers_free(struct ca_issuers *is);
size_t ca_issuers_count(const struct ca_issuers *is);
/* Borrowed issuer i (< count). */
const struct ca_issuer *ca_issuers_get(const struct ca_issuers *is, size_t i);
/* Borrowed issuer by id (16 hex digits), NULL if none. */
const struct ca_issuer *ca_issuers_find(
    const struct ca_issuers *is, const char *id);
/*
 * The issuer for a profile and key type: the first one listing the key
 * type whose profile list is empty or names the profile. NULL if none.
 */
const struct ca_issuer *ca_issuers_choose(
    const struct ca_issuers *is, const char *profile, enum ca_key_type kt);

/* Accessors; strings are static to the issuer. */
const char *ca_issuer_id(const struct ca_issuer *i);
const char *ca_issuer_name(const struct ca_issuer *i);
enum ca_key_type ca_issuer_key_type(const struct ca_issuer *i);
/*
 * Issuer description for ca.get_issuers: {id, name, key_type, cert_pem,
 * chains_pem: [...], roots_pem: [...]}. New reference.
 */
json_t *ca_issuer_json(const struct ca_issuer *i);
/*
 * Signs msg (len bytes, borrowed) with SHA-256 by the issuer's key, in a
 * token or in memory, for benchmarks and key checks. 0 with *sig (caller
 * frees) and *siglen, or -1.
 */
int ca_issuer_sign(const struct ca_issuer *i, const uint8_t *msg, size_t len,
    uint8_t **sig, size_t *siglen);
/* 1 if the issuer's key is on a PKCS#11 token, else 0. */
int ca_issuer_in_token(const struct ca_issuer *i);

/* ------------------------------------------------------------------ */
/* The CA                                                               */
/* ------------------------------------------------------------------ */

struct ca_settings {
	char *public_base_url;    /* "https://localhost:4431", no trailing / */
	int64_t serial_prefix;    /* 1..127: first serial byte */
	int64_t crl_shards;       /* N >= 1: shard = serial mod N */
	int64_t crl_validity_ms;  /* nextUpdate - thisUpdate */
	int64_t ocsp_validity_ms; /* nextUpdate - thisUpdate of OCSP */
	int ocsp_url;             /* put the OCSP URL in AIA */
	/* Certificate key policy (keys.* in ca.json): RSA size range and
	 * whether P-521 is allowed besides P-256/P-384. Defaults 2048, 4096,
	 * no; test-target configs open it up the way Pebble does. */
	int64_t rsa_min_bits;
	int64_t rsa_max_bits;
	int allow_p521;
	/* Test mode (ca.json test.alternate_roots, PEBBLE_ALTERNATE_ROOTS):
	 * -1 keeps the chains of issuers.json; N >= 0 keeps each issuer's
	 * first chain and adds N chains through throwaway roots made at
	 * start (in memory only), as Pebble does. */
	int64_t alternate_roots;
};

/* Default settings (base URL NULL). */
void ca_settings_defaults(struct ca_settings *s);

struct ca;

/*
 * A CA. Copies settings; takes `issuers` (freed by ca_free, also on
 * failure); borrows profiles, store.arg and metrics (may be NULL), which
 * must outlive it. Generates one throwaway lint key per issuer. NULL with
 * err on bad settings.
 */
struct ca *ca_new(const struct ca_settings *s, struct ca_issuers *issuers,
    const struct profiles *profiles, struct ca_store store,
    struct metrics *metrics, char *err, size_t errlen);
void ca_free(struct ca *ca);
/* Borrowed. */
const struct ca_issuers *ca_get_issuers(const struct ca *ca);
const struct ca_settings *ca_get_settings(const struct ca *ca);

struct ca_issue_req {
	const uint8_t *csr_der; /* borrowed; already checked by the RA */
	size_t csr_len;
	const json_t *identifiers; /* borrowed array of {type, value} */
	const char *profile;       /* NULL = default */
	int64_t account_id;
	int64_t order_id;       /* 0 = none */
	int finalize_order;     /* the store makes the order valid too */
	/* NULL, or a serial (hex) reserved for this order by its claim
	 * (sa.set_order_processing): signed with instead of reserving one
	 * when it has this CA's prefix and length */
	const char *reserved_serial;
	/* NULL, or the order's finalize claim token: the SA reserves the
	 * serial and stores the certificate only while the order is
	 * processing under it (0016_order_claim) */
	const char *claim;
	/* 0, or epoch ms after which nothing is signed (the claim's holder
	 * may have been replaced by then) */
	int64_t sign_by_ms;
	time_t not_before;      /* 0 = from the profile */
	time_t not_after;       /* 0 = from the profile */
	const char *request_id; /* may be NULL */
	/* RFC 9448: the RA checked the Authority Token said "ca": true and
	 * the CSR asks for CA:TRUE; the profile must have tkauth_ca */
	int ca;
};

struct ca_issued {
	char *serial; /* 36 lowercase hex digits, owned */
	uint8_t *der; /* owned */
	size_t der_len;
	const struct ca_issuer *issuer; /* borrowed from the ca */
	int64_t shard;
	int order_valid; /* finalize_order: the order became valid */
};

/*
 * Issues a certificate: chooses the issuer, reserves a fresh serial in the
 * store, builds the TBS, signs it with the throwaway key, lints it, signs
 * it for real, checks the two TBS are identical and stores it
 * (sa.add_certificate) before returning 0 with *out filled (free with
 * ca_issued_clear). -1 and *prob (caller frees) on bad input
 * (badCSR / malformed / invalidProfile / rejectedIdentifier), a failed lint
 * (serverInternal, audit-logged) or a store failure.
 */
int ca_issue(struct ca *ca, const struct ca_issue_req *req,
    struct ca_issued *out, struct problem **prob);
void ca_issued_clear(struct ca_issued *out);

/*
 * Builds, signs and stores (sa.store_crl) the CRL of one issuer shard with
 * the number from sa.next_crl_number and the entries of
 * sa.revoked_by_shard. 0 with *number and *der (caller frees) or -1 and
 * *prob. der/number may be NULL when the caller only wants it stored.
 */
int ca_generate_crl(struct ca *ca, const char *issuer_id, int64_t shard,
    const char *request_id, int64_t *number, uint8_t **der, size_t *der_len,
    struct problem **prob);
/* Every shard of every issuer; returns the number of failures. */
int ca_generate_all_crls(struct ca *ca, const char *request_id);

/*
 * The OCSP response (DER OCSPResponse with a BasicOCSPResponse) for a
 * serial: the SA's cached one while it is in the first half of its
 * validity, otherwise signed now from sa.get_certificate and cached with
 * sa.store_ocsp. 0 with *der (caller frees) or -1 and *prob (notFound for
 * an unknown serial).
 */
int ca_ocsp(struct ca *ca, const char *serial, const char *request_id,
    uint8_t **der, size_t *der_len, struct problem **prob);

/* {issuers: [...], crl_shards: N} for ca.get_issuers. New reference. */
json_t *ca_issuers_json(const struct ca *ca);
/* {profiles: {name: description}, default: name}. New reference. */
json_t *ca_profiles_json(const struct ca *ca);

/* ------------------------------------------------------------------ */
/* RPC glue                                                             */
/* ------------------------------------------------------------------ */

/*
 * The ca.* method table for rpc_server_new (svc = struct ca *). Static;
 * *count receives its length.
 */
const rpc_handler_fn *ca_rpc_handlers(void);
/* anvil-ca's part of the service skeleton (ca_daemon.c): config, issuer
 * keys, the SA client, the CRL timer and --bench. */
extern const struct rpc_service_ops ca_service;

/* ------------------------------------------------------------------ */
/* Process configuration (configs/<env>/ca.json)                       */
/* ------------------------------------------------------------------ */

struct ca_config {
	struct config_common common; /* log_level, debug, rpc */
	json_t *sa;                  /* rpc_client_config object */
	char *profiles;
	char *issuers;
	int64_t crl_period_ms; /* regeneration timer */
	struct ca_settings settings;
};

/*
 * Parses the object of ca.json (borrowed; loaded from path, which prefixes
 * messages) strictly into cfg, defaults first. 0, or -1 with err naming
 * the key. Free with ca_config_clear (also after a failure).
 */
int ca_config_parse(const json_t *obj, const char *path, struct ca_config *cfg,
    char *err, size_t errlen);
void ca_config_clear(struct ca_config *cfg);

/* ------------------------------------------------------------------ */
/* Key ceremony (anvil-admin ca init)                                  */
/* ------------------------------------------------------------------ */

/*
 * Creates into dir (created 0700 if missing): root.pem/key (ECDSA P-384),
 * root2.pem/key (alternate root, RSA-2048), int-ecdsa.pem/key (P-256,
 * signed by root), int-ecdsa-cross.pem (the same intermediate signed by
 * root2), int-rsa.pem/key (RSA-2048, signed by root), roots.pem and
 * issuers.json. Keys are written 0600 with O_EXCL: refuses (-1, nothing
 * written) when any output file already exists. 0 or -1 with err.
 */
int ca_ceremony_init(const char *dir, char *err, size_t errlen);

/* Where `anvil-admin ca init --pkcs11` puts the keys. Strings borrowed. */
struct ca_ceremony_pkcs11 {
	const char *module;       /* PKCS#11 module path */
	const char *token;        /* token label */
	const char *pin_file;     /* absolute path of the PIN file, or */
	const char *pin_env;      /* the environment variable holding it */
	const char *label_prefix; /* NULL/"": labels root, root2, int-ecdsa,
				     int-rsa */
};

/*
 * The same hierarchy as ca_ceremony_init with every private key generated
 * inside the token (sensitive, never extractable) and no .key files:
 * issuers.json names each intermediate's module, token, label and CKA_ID
 * and the PIN source. Refuses (-1, nothing generated or written) when an
 * output file exists or the token already holds an object with one of the
 * labels. 0 or -1 with err.
 */
int ca_ceremony_init_pkcs11(const char *dir,
    const struct ca_ceremony_pkcs11 *p, char *err, size_t errlen);

/*
 * Either ceremony (p NULL: software keys; p borrowed) with the
 * intermediates' basicConstraints pathLenConstraint `pathlen` (0..
 * CA_CEREMONY_MAX_PATHLEN) instead of 0: 1 lets an intermediate sign the
 * CA certificates of a profile with tkauth_ca (RFC 9448 "ca": true) that a
 * relying party can path-validate; the cross-signature keeps it. 0 or -1
 * with err.
 */
#define CA_CEREMONY_MAX_PATHLEN 1
int ca_ceremony_run(const char *dir, const struct ca_ceremony_pkcs11 *p,
    int pathlen, char *err, size_t errlen);

#endif /* ANVIL_CA_H */
