/*
 * ra.h - the registration authority (anvil-ra).
 *
 * Every policy decision of Anvil lives here: accounts (contacts, EAB,
 * deactivation, key change), identifier policy, orders with authz reuse,
 * challenge validation through the VA, finalize through the CA with CSR and
 * key checks (including weak-key detection), revocation and rate limits.
 * The RA owns no storage: it talks to anvil-sa, anvil-va and anvil-ca over
 * rpc/ and serves the ra.* methods of docs/rpc-methods.md.
 *
 * The pure parts (identifier policy, key policy and weak-key checks, CSR
 * checks, GCRA arithmetic, order status derivation) are exposed here too so
 * that they can be unit-tested without any network.
 *
 * Ownership: *_new results are freed with the matching *_free (NULL is a
 * no-op); *_parse fills a caller-owned struct released with *_clear.
 * Problems returned through `struct problem **` are owned by the caller.
 */
#ifndef ANVIL_RA_H
#define ANVIL_RA_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/evp.h>

#include "core/core.h"
#include "rpc/rpc.h"

/* ------------------------------------------------------------------ */
/* Configuration (configs/<env>/ra.json, docs/config/ra.md)            */
/* ------------------------------------------------------------------ */

enum ra_rl {
	RA_RL_NEW_ACCOUNTS_PER_IP,
	RA_RL_NEW_ORDERS_PER_ACCOUNT,
	RA_RL_FAILED_VALIDATIONS,
	RA_RL_CERTS_PER_DOMAIN,
	RA_RL_DUPLICATE_CERTS,
	RA_RL_STAR_RENEWALS, /* RFC 8739 renewals per account */
	RA_RL__MAX
};

/* Config key of a limit, e.g. "new_orders_per_account" (static). */
const char *ra_rl_name(enum ra_rl which);

/* One limit: `limit` events per `period_ms`, bucket capacity `burst`. */
struct ra_limit {
	int enabled;
	int64_t limit;
	int64_t period_ms;
	int64_t burst;
};

struct ra_ip_range {
	uint8_t addr[16];
	size_t len; /* 4 or 16 */
	int prefix;
};

struct ra_psl;

struct ra_policy {
	int public_mode;
	int any_name; /* mode "any" (test modes): every valid DNS name */
	char **dns_suffixes;
	size_t n_dns_suffixes;
	struct ra_ip_range *ip_ranges;
	size_t n_ip_ranges;
	char **blocked_names;
	size_t n_blocked_names;
	int allow_wildcards;
	struct ra_psl *psl;  /* public mode only; owned */
	unsigned challenges; /* enabled types: CHAL_BIT(enum chal_type) */
	int subdomain_auth;  /* RFC 9444 subdomain authorizations */
	int onion;           /* RFC 9799 .onion names and onion-csr-01 */
	/* dns-persist-01 (policy.dns_persist) */
	char **persist_names; /* issuer domain names, 1 to 10 */
	size_t n_persist_names;
	char *persist_prefix; /* accountHashPrefix */
	/* RFC 8823 email identifiers (policy.email) */
	char **email_domains; /* mail domains the CA certifies, lowercase */
	size_t n_email_domains;
	char *email_from; /* the challenge email's sender (the "from" field) */
	/* policy.device_identifiers (device_policy.c); NULL: any account */
	json_t *device_identifiers;
	/* RFC 9447 §3 "token-authority" of tkauth-01 (policy.tkauth), or
	 * NULL */
	char *token_authority;
};

struct ra_key_policy {
	int64_t rsa_min;
	int64_t rsa_max;
	int rsa_sizes[16];
	size_t n_rsa_sizes;
	int allow_p256;
	int allow_p384;
	int allow_p521;
	int fermat_rounds;     /* default 110 */
	int small_prime_bound; /* default 751 */
};

/* RFC 8739 STAR (ra/star.c; the "star" object of ra.json). */
struct ra_star_config {
	int enabled;
	int64_t min_lifetime_s; /* directory meta min-lifetime */
	int64_t max_duration_s; /* directory meta max-duration */
	int allow_get;          /* directory meta allow-certificate-get */
	char **profiles;        /* profiles allowing STAR; none = every one */
	size_t n_profiles;
	int64_t poll_ms;  /* how often the renewal scheduler looks */
	int64_t lease_ms; /* how long a renewing RA holds an order */
	int64_t batch;    /* orders claimed per look */
};

/* RFC 9115 delegation (ra/delegation.c; the "delegation" object of
 * ra.json). */
struct ra_deleg_config {
	int enabled;
	char **profiles; /* profiles a delegated order may use; none = all */
	size_t n_profiles;
	int64_t max_per_account; /* active delegations an owner may hold */
};

struct ra_config {
	struct config_common common; /* log_level, debug, rpc */
	json_t *sa;                  /* rpc_client_config objects */
	json_t *va;
	json_t *ca;
	char *profiles_file;
	char *account_uri_prefix;
	char *terms_of_service; /* NULL: no terms */
	int eab_required;
	int64_t contacts_max;
	struct ra_policy policy;
	struct ra_key_policy keys;
	int finalize_async;
	int64_t finalize_retry_after_ms;
	int64_t finalize_wait_ms; /* async: wait this long for the CA */
	int64_t recover_after_ms;     /* processing older than this is stale */
	int64_t caa_recheck_after_ms; /* re-check CAA of older validations */
	int authz_reuse_enabled;
	int64_t authz_reuse_percent;
	int64_t validation_workers;
	int64_t validation_wait_ms; /* wait this long for the VA (0: never) */
	struct ra_limit limits[RA_RL__MAX];
	json_t *limit_overrides;   /* {"<profile>": {"<limit>": {...}}} */
	int64_t renewal_window_ms; /* same identifier set => renewal */
	int64_t slow_finalize_ms;  /* test knob */
	struct ra_star_config star;
	struct ra_deleg_config deleg;
};

/*
 * Parses a whole ra.json object (borrowed) into cfg with defaults for
 * absent keys. path is used in messages. 0, or -1 with err naming the bad
 * key. Free with ra_config_clear (also after a failure).
 */
int ra_config_parse(const json_t *obj, const char *path, struct ra_config *cfg,
    char *err, size_t errlen);
void ra_config_clear(struct ra_config *cfg);
/* The limit that applies to `profile` (NULL = base); borrowed from cfg. */
const struct ra_limit *ra_config_limit(const struct ra_config *cfg,
    enum ra_rl which, const char *profile, struct ra_limit *tmp);

/* ------------------------------------------------------------------ */
/* Identifier policy                                                    */
/* ------------------------------------------------------------------ */

/*
 * Checks one identifier {"type","value"} (borrowed) against the policy and
 * the profile (borrowed, may be NULL = any type). On success *norm gets a
 * malloc'd normalised value (a wildcard keeps its "*." prefix), *type the
 * identifier type, and 0 is returned; else -1 and *prob (malformed,
 * rejectedIdentifier or unsupportedIdentifier) whose identifier is set.
 */
int ra_policy_check_ident(const struct ra_policy *pol,
    const struct profile *prof, const json_t *ident, enum ident_type *type,
    char **norm, struct problem **prob);
/*
 * draft-ietf-acme-rats (rats.c): a remote-attestation identifier's value
 * (borrowed) is a registered property hint (§7.1; "measured-boot" taken
 * as "measured_boot"). 0 with *norm (malloc'd), or -1 with *prob
 * (rejectedIdentifier).
 */
int ra_rats_check_hint(const char *value, char **norm, struct problem **prob);
/*
 * Checks a list of identifiers for an order: each with
 * ra_policy_check_ident, duplicates removed, count within the profile's
 * max_identifiers. On success *out is a new JSON array of normalised
 * identifiers {"type","value"} sorted by (type, value), 0 returned. Else -1
 * and *prob: rejectedIdentifier with one subproblem per bad identifier (or
 * malformed for a structural error).
 */
int ra_policy_check_idents(const struct ra_policy *pol,
    const struct profile *prof, const json_t *idents, json_t **out,
    struct problem **prob);
/*
 * RFC 9444: may an authorization of `ancestor` (a client's ancestorDomain,
 * as sent) cover `name` (a normalised DNS name, no wildcard)? Both
 * borrowed. 1 with *norm (malloc'd normalised ancestor) when the policy
 * allows it: subdomain authorizations on, ancestor strictly below every
 * policy boundary (private suffixes, public suffixes) and not blocked.
 * 0 when the policy does not allow it (the caller falls back to the name
 * itself, RFC 9444 §4.3). -1 with *prob (malformed) when ancestor is not a
 * proper ancestor of name in whole labels (§2).
 */
int ra_policy_ancestor(const struct ra_policy *pol, const struct profile *prof,
    const char *name, const char *ancestor, char **norm,
    struct problem **prob);
/*
 * Every proper ancestor of `name` (normalised, borrowed) that may carry a
 * subdomain authorization under the policy, nearest first: a new JSON
 * array of strings (empty when subdomain authorizations are off).
 */
json_t *ra_policy_ancestors(const struct ra_policy *pol,
    const struct profile *prof, const char *name);

/*
 * dns-persist-01 (draft-ietf-acme-dns-persist §4.1): the hashed account
 * URI prefix + "sha-256/" + base64url(SHA-256(len(domain) || domain ||
 * thumbprint || account_url)). domain is the validated FQDN or "*" (the
 * opt-out form); thumbprint the unpadded base64url SHA-256 JWK thumbprint.
 * All borrowed. Caller frees; NULL if domain is empty or over 255 octets.
 */
char *ra_persist_account_uri(const char *prefix, const char *domain,
    const char *thumbprint, const char *account_url);

/*
 * The registered domain of a DNS name for per-domain rate limits: public
 * mode = one label below the public suffix; private mode = one label below
 * the configured suffix it matched (or the last two labels). IPs are their
 * own key. Malloc'd; never NULL.
 */
char *ra_policy_registered_domain(
    const struct ra_policy *pol, const char *name);
/* Loads a Public Suffix List file. NULL with err on failure. */
struct ra_psl *ra_psl_load(const char *path, char *err, size_t errlen);
void ra_psl_free(struct ra_psl *psl);
/* Length of the public suffix of name (0 when the TLD is unknown). */
size_t ra_psl_suffix_len(const struct ra_psl *psl, const char *name);
/* Parses "10.0.0.0/8" or "::1/128". 0 or -1. */
int ra_ip_range_parse(const char *s, struct ra_ip_range *out);
/* 1 if the raw address (len 4 or 16) is in the range. */
int ra_ip_range_contains(
    const struct ra_ip_range *r, const uint8_t *addr, size_t len);
/* 1 if the address is special-purpose (IANA registries), else 0. */
int ra_ip_special_purpose(const uint8_t *addr, size_t len);

/* ------------------------------------------------------------------ */
/* Key policy and weak keys                                             */
/* ------------------------------------------------------------------ */

/* Fills the defaults: RSA 2048/3072/4096, P-256, P-384. */
void ra_key_policy_default(struct ra_key_policy *kp);
/*
 * Checks a public key (borrowed) against the policy and the weak-key tests
 * (RSA: e = 65537, allowed size, no prime factor <= small_prime_bound, not
 * Fermat-factorable in fermat_rounds, no ROCA fingerprint; ECDSA: allowed
 * curve, valid point). 0 if acceptable; -1 and *prob badPublicKey.
 */
int ra_key_check(
    const struct ra_key_policy *kp, EVP_PKEY *pkey, struct problem **prob);

/* The individual weak-key tests on a modulus (borrowed): 1 = weak. */
int ra_weak_small_prime(const BIGNUM *n, int bound);
int ra_weak_fermat(const BIGNUM *n, int rounds);
int ra_weak_roca(const BIGNUM *n);

/* SHA-256 of the SubjectPublicKeyInfo DER as 64 hex digits. Malloc'd. */
char *ra_key_hash(EVP_PKEY *pkey);

/* ------------------------------------------------------------------ */
/* CSR checks                                                           */
/* ------------------------------------------------------------------ */

/*
 * Checks a DER CSR (borrowed) for an order whose normalised identifiers are
 * `idents` (borrowed JSON array; a wildcard as "*.name"): parses, verifies
 * the self-signature, requires the SANs (DNS and IP only) plus the CN (if
 * any, it must be one of them) to be exactly the order's identifiers,
 * checks the key against kp and that it is not account_key (may be NULL).
 * On success returns 0 and, if pkey_out != NULL, *pkey_out receives the
 * CSR's public key (EVP_PKEY_free). Else -1 and *prob (badCSR or
 * badPublicKey).
 */
int ra_csr_check(const uint8_t *der, size_t len, const json_t *idents,
    const struct ra_key_policy *kp, EVP_PKEY *account_key, EVP_PKEY **pkey_out,
    struct problem **prob);

/* ------------------------------------------------------------------ */
/* GCRA and status                                                      */
/* ------------------------------------------------------------------ */

/*
 * Generic cell rate algorithm on one bucket. tat_ms is the stored
 * theoretical arrival time (0 = fresh bucket). A spend of `cost` is allowed
 * if max(tat, now) + cost * emission - now <= burst * emission; then
 * *new_tat is the new TAT. *retry_after_ms is the wait before the spend
 * would be allowed (0 when allowed); *remaining the spends still possible
 * afterwards. Returns 1 allowed, 0 denied.
 */
int ra_gcra(int64_t tat_ms, int64_t now_ms, int64_t emission_ms, int64_t burst,
    int64_t cost, int64_t *new_tat, int64_t *retry_after_ms,
    int64_t *remaining);

/*
 * Order status as docs/rpc-methods.md defines it: stored processing,
 * valid or invalid win; else expired -> invalid; any authz
 * invalid/deactivated/expired/revoked -> invalid; all valid -> ready;
 * else pending. Strings borrowed; returns a static string.
 */
const char *ra_order_status(const char *stored, int64_t expires_ms,
    int64_t now_ms, const char *const *authz_status, size_t nauthz);

/* ------------------------------------------------------------------ */
/* RFC 8739 STAR: the accepted auto-renewal terms and the schedule      */
/* ------------------------------------------------------------------ */

/* An order's auto-renewal object, in seconds since the epoch. */
struct ra_star_terms {
	int64_t start;  /* 0 when the client gave no start-date */
	int64_t end;    /* end-date */
	int64_t lifetime;
	int64_t adjust; /* lifetime-adjust as the client asked (0 if not) */
	int allow_get;
};

/*
 * Parses the "star" object of ra.json (borrowed; NULL = defaults: off)
 * into sc (free with ra_star_config_clear). 0, or -1 with err naming the
 * key.
 */
int ra_star_config_parse(
    const json_t *obj, struct ra_star_config *sc, char *err, size_t errlen);
void ra_star_config_clear(struct ra_star_config *sc);
/*
 * Checks policy.device_identifiers (obj borrowed; NULL = off): EAB key id
 * -> {device identifier type -> patterns} and "default". 0 with *out a new
 * reference (NULL when off), or -1 with err naming the bad key.
 */
int ra_device_policy_parse(
    const json_t *obj, json_t **out, char *err, size_t errlen);
/*
 * Checks a newOrder's "auto-renewal" object (borrowed) against sc and the
 * profile (borrowed) at now (epoch seconds): RFC 8739 §3.1.1 fields and
 * types, lifetime >= min-lifetime, end-date - start-date <= max-duration,
 * each certificate within the profile's validity. 0 with *out (the terms
 * the server accepts: allow_get only if sc allows it), or -1 with *prob
 * (malformed).
 */
int ra_star_check(const struct ra_star_config *sc, const struct profile *prof,
    const json_t *ar, int64_t now, struct ra_star_terms *out,
    struct problem **prob);
/*
 * The padding before each nominal renewal date (RFC 8739 §3.5):
 * max(min(lifetime, lifetime-adjust), f * lifetime) with f = 1/2, so the
 * next certificate is published (and valid) halfway through the nominal
 * lifetime of the current one.
 */
int64_t ra_star_pad(const struct ra_star_terms *t);
/*
 * The first certificate, issued at now (epoch s): nominal renewal date
 * max(now, start); *nb never before start-date (§3.5); *na = min(nrd +
 * lifetime, end).
 */
void ra_star_first(const struct ra_star_terms *t, int64_t now, int64_t *nb,
    int64_t *na);
/*
 * The certificate after the latest one (whose notAfter is last_na) at now:
 * 1 when the series is complete (last_na reached end-date); else 0 with
 * its *nb, *na and *due (when to issue it: its notBefore, so it is valid
 * when published). Whole periods missed (the CA was down) are skipped.
 */
int ra_star_next(const struct ra_star_terms *t, int64_t last_na, int64_t now,
    int64_t *nb, int64_t *na, int64_t *due);

/* ------------------------------------------------------------------ */
/* RFC 9115 delegation: the CSR template (ra/deleg_tmpl.c)              */
/* ------------------------------------------------------------------ */

/*
 * Parses the "delegation" object of ra.json (borrowed; NULL = off) into dc
 * (free with ra_deleg_config_clear). 0, or -1 with err naming the key.
 */
int ra_deleg_config_parse(
    const json_t *obj, struct ra_deleg_config *dc, char *err, size_t errlen);
void ra_deleg_config_clear(struct ra_deleg_config *dc);
/*
 * Checks a CSR template (borrowed) against the CDDL of RFC 9115 appendix A
 * (no unknown member anywhere, known key types, usages and name types,
 * wildcards only in subject values and SAN DNS names). 0, or -1 with err
 * naming the bad member.
 */
int ra_deleg_template_check(const json_t *tmpl, char *err, size_t errlen);
/*
 * A delegated order's identifiers (borrowed, policy-checked) against a
 * checked template (borrowed): all of type dns, every literal SAN DNS name
 * present, the others within the "**" / "*" slots. 0, or -1 with *prob
 * (rejectedIdentifier).
 */
int ra_deleg_template_idents(
    const json_t *tmpl, const json_t *idents, struct problem **prob);
/*
 * A CSR (DER, borrowed) against a checked template (borrowed), RFC 9115
 * §4.1: key type and size, CSR signature algorithm, subject attributes,
 * extensions (SAN names, keyUsage, extendedKeyUsage), no other field. 0,
 * or -1 with *prob (badCSR naming the first mismatch).
 */
int ra_deleg_template_match(const json_t *tmpl, const uint8_t *der,
    size_t len, struct problem **prob);
/*
 * Whether certificates of profile prof (borrowed) for a key (rsa: RSA,
 * else EC) carry no key usage or extended key usage beyond the template's
 * lists (when it has them). 0, or -1 with err.
 */
int ra_deleg_template_profile(const json_t *tmpl, const struct profile *prof,
    int rsa, char *err, size_t errlen);

/* ------------------------------------------------------------------ */
/* The service                                                          */
/* ------------------------------------------------------------------ */

struct ra;

/*
 * Creates the RA: loads the profiles, creates RPC clients to sa/va/ca and
 * starts the worker pool. Takes ownership of *cfg (its contents; the struct
 * is zeroed). metrics (may be NULL) is borrowed and must outlive the RA.
 * NULL with err on failure.
 */
struct ra *ra_new(
    struct ra_config *cfg, struct metrics *metrics, char *err, size_t errlen);
/* Waits for running background jobs, then frees. NULL is a no-op. */
void ra_free(struct ra *ra);
/*
 * The ra.* handlers indexed by registry id (static storage), for
 * rpc_contract_methods(RPC_SVC_RA, ...); the svc pointer is the struct ra.
 */
const rpc_handler_fn *ra_rpc_handlers(void);
/* anvil-ra's part of the service skeleton (ra_daemon.c). */
extern const struct rpc_service_ops ra_service;
/* debug_health_fn: healthy when sa, va and ca answer health.check. */
int ra_health(void *ra, char *msg, size_t msglen);
/*
 * Finishes or fails orders stuck in `processing` (older than the config's
 * recover_after): finalized if a certificate for the order exists, else
 * set to an error. Returns the number of orders handled, -1 if the SA could
 * not be asked.
 */
int ra_recover_stale_orders(struct ra *ra);
/*
 * Fails validations stuck in `processing` longer than the VA timeout plus a
 * margin (the RA died or the SA stayed unreachable while the result was
 * being written): the challenge becomes invalid with serverInternal, so the
 * client can start over. Returns the number of authzs handled, -1 if the SA
 * could not be asked.
 */
int ra_recover_stale_authzs(struct ra *ra);
/* Starts a thread that runs ra_recover_stale_orders and
 * ra_recover_stale_authzs periodically. 0/-1. */
int ra_start_recovery_thread(struct ra *ra);

#endif /* ANVIL_RA_H */
