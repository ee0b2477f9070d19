/*
 * p11_int.h - issuer keys in a PKCS#11 token (an HSM; SoftHSM2 in tests).
 * Private to ca/ and its unit tests; docs/operations-ca.md says why Anvil
 * talks PKCS#11 itself instead of going through an OpenSSL engine.
 *
 * A `struct ca_p11` is one loaded module (dlopen), one token in it (found
 * by label) and a user login kept alive by one open session. A
 * `struct ca_p11_key` names one private key on that token (by CKA_LABEL
 * and, when known, CKA_ID); ca_p11_key_pkey() wraps it into an EVP_PKEY
 * whose signing operations go to the token, so X509_sign, X509_CRL_sign
 * and OCSP_basic_sign work unchanged. Every function here may be called
 * from several threads at once.
 *
 * Failures of the token while running (module errors, the token gone,
 * sessions or handles invalidated) make the signature fail and mark the
 * module for a reset: the next signature finalizes and re-initializes the
 * module, finds the token again, logs in again and finds the key again.
 * Resets are attempted at most every CA_P11_RESET_MS.
 */
#ifndef ANVIL_CA_P11_INT_H
#define ANVIL_CA_P11_INT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "ca/ca.h"

#define CA_P11_RESET_MS 250

struct ca_p11;
struct ca_p11_key;

/* Where the token is and how to log in. Strings borrowed. */
struct ca_p11_conf {
	const char *module;   /* path of the PKCS#11 module (.so) */
	const char *token;    /* CKA_LABEL of the token (CK_TOKEN_INFO.label) */
	const char *pin_file; /* file holding the user PIN (mode 0600) */
	const char *pin_env;  /* or: environment variable holding it */
};

/*
 * Loads the module, initializes it, finds the token and logs in. Exactly
 * one of pin_file / pin_env must be set; the PIN is kept (for logging in
 * again after a reset) and cleansed by ca_p11_free. Returns a new module
 * (caller frees with ca_p11_free) or NULL with err naming what is wrong
 * (module cannot be loaded, token not present, PIN rejected...).
 */
struct ca_p11 *ca_p11_open(
    const struct ca_p11_conf *c, char *err, size_t errlen);
/* Logs out, finalizes and unloads. NULL is a no-op. Keys must be freed. */
void ca_p11_free(struct ca_p11 *m);
/* Borrowed strings: the module path and the token label. */
const char *ca_p11_module_path(const struct ca_p11 *m);
const char *ca_p11_token(const struct ca_p11 *m);
/* The last token error (static to m, may change under other threads'
 * feet: copy it at once). "" when none. */
void ca_p11_last_error(struct ca_p11 *m, char *buf, size_t len);

/*
 * Finds the private key labelled `label` (and with CKA_ID `id`, idlen
 * bytes, when id is not NULL) on the token: exactly one must match. m is
 * borrowed and must outlive the key. Returns a new key (ca_p11_key_free)
 * or NULL with err.
 */
struct ca_p11_key *ca_p11_key_find(struct ca_p11 *m, const char *label,
    const uint8_t *id, size_t idlen, char *err, size_t errlen);
void ca_p11_key_free(struct ca_p11_key *k);
/* Borrowed: the module, the id (hex, "" if none). */
struct ca_p11 *ca_p11_key_module(const struct ca_p11_key *k);
const char *ca_p11_key_id_hex(const struct ca_p11_key *k);

/*
 * An EVP_PKEY with the public key `pub` (borrowed; an EC or RSA public
 * key, usually the issuer certificate's) whose private operations are
 * signatures by k in the token: ECDSA (CKM_ECDSA over the digest) or RSA
 * PKCS#1 v1.5 (CKM_RSA_PKCS over the DigestInfo). k is borrowed and must
 * outlive the result. Checks that the token key and pub form a pair by
 * signing a random digest and verifying it with pub. New reference or
 * NULL with err.
 */
EVP_PKEY *ca_p11_key_pkey(
    struct ca_p11_key *k, EVP_PKEY *pub, char *err, size_t errlen);

/*
 * Generates a key pair inside the token: P-256 / P-384 (bits 256/384) or
 * RSA of `bits`, private half sensitive and never extractable, both halves
 * labelled `label` with CKA_ID id (idlen bytes). Refuses (-1, nothing
 * generated) when any object labelled `label` exists. 0 with *pub (the
 * public key as read back from the token; caller frees) or -1 with err.
 */
int ca_p11_generate(struct ca_p11 *m, enum ca_key_type kt, int bits,
    const char *label, const uint8_t *id, size_t idlen, EVP_PKEY **pub,
    char *err, size_t errlen);
/* 1 if any object labelled label is on the token, 0 if none, -1 error. */
int ca_p11_label_exists(
    struct ca_p11 *m, const char *label, char *err, size_t errlen);

#endif /* ANVIL_CA_P11_INT_H */
