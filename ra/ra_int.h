/*
 * ra_int.h - internals shared by the RA's source files (not included from
 * outside ra/ except by its unit tests).
 */
#ifndef ANVIL_RA_INT_H
#define ANVIL_RA_INT_H

#include <pthread.h>

#include "core/core.h"
#include "ra/ra.h"
#include "rpc/rpc.h"

struct ra_pool;

struct ra {
	struct ra_config cfg;
	struct profiles *profiles;
	struct rpc_client *sa;
	struct rpc_client *va;
	struct rpc_client *ca;
	struct metrics *metrics; /* borrowed, may be NULL */
	struct ra_pool *pool;
	int64_t va_timeout_ms; /* the VA client's call timeout */

	pthread_mutex_t lock; /* guards the members below */
	pthread_cond_t cond;
	int stopping;
	int recovery_started;
	pthread_t recovery_thread;
	json_t *inflight;        /* order ids finalizing here */
	json_t *inflight_authzs; /* authz ids validating here */
	int star_started;        /* RFC 8739 renewal scheduler (star.c) */
	pthread_t star_thread;
	/* The CA's serial form, learned from its last ca.issue answer
	 * (finalize.c): first byte and length in bytes; 0 = not known yet */
	int serial_prefix;
	int serial_len;
	/* The orders this RA created, for their finalize (finalize.c
	 * ra_order_created): the take-once cache of core.h */
	struct takecache *orders;
};

/*
 * With ra->lock held: waits ms, or less when ra->stopping is set and
 * ra->cond signalled (the background threads' sleep; recovery.c).
 */
void ra_wait_locked(struct ra *ra, int64_t ms);

/* ---- worker pool (pool.c) ---- */
typedef void (*ra_job_fn)(void *arg);
/* n threads; NULL on failure. */
struct ra_pool *ra_pool_new(int n);
/* Queues fn(arg); the job owns arg. 0, or -1 if the pool is stopping. */
int ra_pool_submit(struct ra_pool *p, ra_job_fn fn, void *arg);
/* Runs the queued jobs to completion, joins and frees. */
void ra_pool_free(struct ra_pool *p);

/* ---- helpers (service.c) ---- */
/*
 * rpc_call with params stolen (may be NULL). 0 and *res (caller decrefs),
 * or -1 and *prob (caller frees).
 */
int ra_call(struct rpc_client *c, enum rpc_method_id id, json_t *params,
    const char *rid, json_t **res, struct problem **prob);
/* Positive integer member of params into *out; else -1 and malformed. */
int ra_param_id(const json_t *params, const char *name, int64_t *out,
    struct problem **prob);
/* Optional string member: NULL if absent or null; -1 malformed if not a
 * string. */
int ra_param_str(const json_t *params, const char *name, const char **out,
    struct problem **prob);
/* RFC 3339 of epoch ms into buf (>= 32). */
char *ra_time_fmt(int64_t ms, char *buf, size_t len);
/*
 * Parses the config section obj (borrowed; NULL: nothing to do) with spec
 * into raw. 0, or -1 with err "<section>: expected an object" or
 * "<section>.<key>: ...". What was parsed stays in raw (jspec_clear).
 */
int ra_section_parse(const json_t *obj, const char *section,
    const struct jspec *spec, void *raw, char *err, size_t errlen);
/* Frees v and its strings: n of them, or up to a NULL if n is 0. */
void ra_strv_free(char **v, size_t n);
/* RFC 3339 member of obj to epoch ms; -1 if absent/bad. */
int ra_time_get(const json_t *obj, const char *name, int64_t *ms);
/*
 * The account URL for CAA accounturi and account-bound challenges: the
 * `account_uri` param (the kid URL the WFE verified, as the client sees
 * it), else account_uri_prefix + aid (callers other than the WFE). A param
 * that is not a URL of account aid (no "/<aid>" at its end, over 1024
 * bytes) is malformed. 0 with *uri (caller frees), or -1 with *prob.
 */
int ra_account_uri(const struct ra *ra, const json_t *params, int64_t aid,
    char **uri, struct problem **prob);
/*
 * Fetches an account that must be valid: *acct (caller decrefs) or -1 and
 * *prob (accountDoesNotExist, unauthorized if deactivated/revoked).
 */
int ra_get_valid_account(struct ra *ra, const char *rid, int64_t id,
    json_t **acct, struct problem **prob);
/* Parses the account's JWK into an EVP_PKEY (caller frees) or NULL. */
EVP_PKEY *ra_account_pkey(const json_t *acct);
/* Counts a metric (name without labels). */
void ra_count(struct ra *ra, const char *name, const char *labels);
/* Spends one unit of the limit on key. 0 allowed (or limit off / SA
 * failure: fail open), -1 and *prob rateLimited. cost 0 = check only. */
int ra_rl_spend(struct ra *ra, const char *rid, enum ra_rl which,
    const char *profile, const char *key, int64_t cost, struct problem **prob);
/*
 * Looks for a certificate stored for the order (borrowed; "id" and
 * "account_id" members). 0 and *serial (caller frees; NULL when there is
 * none), or -1 if the SA could not be asked.
 */
int ra_find_order_cert(
    struct ra *ra, const char *rid, const json_t *order, char **serial);
/* Sleeps ms milliseconds (whole, despite signals). */
void ra_sleep_ms(int64_t ms);
/* Asks the CA for a new CRL of the certificate's shard; logs failures. */
void ra_regen_crl(struct ra *ra, const char *rid, const json_t *cert);

/* ---- handlers ---- */
int ra_h_new_account(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob);
int ra_h_update_account(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob);
int ra_h_key_change(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob);
int ra_h_new_order(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob);
int ra_h_new_authz(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob);
int ra_h_perform_validation(void *svc, const struct rpc_req *req,
    json_t **result, struct problem **prob);
int ra_h_deactivate_authz(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob);
int ra_h_finalize_order(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob);
int ra_h_revoke_by_account(void *svc, const struct rpc_req *req,
    json_t **result, struct problem **prob);
int ra_h_revoke_by_key(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob);
int ra_h_admin_revoke(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob);
int ra_h_renewal_info(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob);
int ra_h_directory_meta(void *svc, const struct rpc_req *req,
    json_t **result, struct problem **prob);
/* proxy.c: what the WFE may ask of the CA, through the RA only (the WFE
 * holds no CA client and cannot choose what is signed). */
int ra_h_ocsp(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob);
int ra_h_get_issuers(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob);
int ra_h_profiles(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob);

/*
 * Challenges for an identifier: the types enabled in pol (borrowed) that
 * can prove it, each with a fresh token; onion: the name is a .onion name
 * (RFC 9799: onion-csr-01 only). New JSON array [{type, token}]; it may be
 * empty when policy enables no applicable type.
 */
json_t *ra_new_challenges(const struct ra_policy *pol, enum ident_type type,
    int wildcard, int onion);
/* ---- RFC 9444 subdomain authorizations (subdomain.c) ---- */
struct ra_sub;
/*
 * Plans newOrder's subdomain authorizations from the identifiers as sent
 * (raw, borrowed): accepted "ancestorDomain"s and, when lookup is set, the
 * account's valid subdomain authorizations (valid after t_cut) of any
 * ancestor of a requested name. With lookup and exact (borrowed: the
 * order's own {type, value, wildcard}) the same sa.get_valid_authzs call
 * also looks for reusable authorizations of those names and *reuse gets
 * its answer (new; left NULL when no look-up was made, e.g. the policy is
 * off, or no "ancestorDomain" was asked for: then sa.new_order looks the
 * valid authzs up itself, ra_sub_reusable). 0 with *out (free with ra_sub_free; a no-op plan when the policy
 * is off), or -1 with *prob (malformed ancestorDomain).
 */
/* The account's valid authzs for idents (borrowed) that stay valid past cut:
 * sa.get_valid_authzs's answer (new), or NULL when the call failed (logged;
 * callers then plan new authzs). */
json_t *ra_valid_authzs(struct ra *ra, const char *rid, int64_t acct,
    const struct profile *prof, json_t *idents, const char *cut);
int ra_sub_plan(struct ra *ra, const char *rid, int64_t acct,
    const struct profile *prof, const json_t *raw, const char *t_cut,
    int lookup, const json_t *exact, json_t **reuse, struct ra_sub **out,
    struct problem **prob);
void ra_sub_free(struct ra_sub *s);
/*
 * Covers one normalised order identifier {type,value,wildcard} (borrowed)
 * by a subdomain authorization: an existing one goes into reuse_ids (and
 * may shorten *expires), a new one of the ancestor (dns-01 only, pending
 * until t_aexp) into new_authzs, once per ancestor. 1 if covered, 0 if the
 * identifier needs its own authorization.
 */
int ra_sub_cover(struct ra *ra, struct ra_sub *s, const json_t *ident,
    json_t *reuse_ids, json_t *new_authzs, const char *t_aexp,
    int64_t *expires);
/*
 * Marks entry (a new_authzs entry of sa.new_order for identifier ident;
 * both borrowed, entry changed) "reusable": sa.new_order takes the
 * account's valid authz of the identifier instead when it finds one, or a
 * valid RFC 9444 subdomain authorization of one of its "ancestors" (set
 * from s's plan when ra_sub_plan left the look-up to sa.new_order).
 */
void ra_sub_reusable(const struct ra_sub *s, const json_t *ident,
    json_t *entry);
/* The challenges of a subdomain authorization (dns-01 with a new token), or
 * NULL when policy does not enable dns-01. New array. */
json_t *ra_sub_challenges(struct ra *ra);
/* ---- dns-persist-01 (persist.c) ---- */
/*
 * The VA's "persist" parameters for validating fqdn (borrowed; the base
 * name of a wildcard) for the account acct (borrowed, valid) whose URL is
 * account_url: issuer domain names, the hashed URIs of every key the
 * account has used (current first), the prefix. New object.
 */
json_t *ra_persist_params(struct ra *ra, const json_t *acct,
    const char *account_url, const char *fqdn);
/* persistUntil (epoch ms) the VA reported in a validation record, or 0. */
int64_t ra_persist_until_ms(const json_t *validation_record);
/* Adds issuerDomainNames and accountHashPrefix to meta when dns-persist-01
 * is enabled. */
void ra_persist_meta(struct ra *ra, json_t *meta);
/* ---- RFC 9799 .onion names (onion.c) ---- */
/*
 * In-band CAA at finalize (§6.4): every .onion identifier of order
 * (borrowed) needs a valid, unexpired onionCAA entry (onion_caa, borrowed,
 * may be NULL) signed by its key, whose record set the VA then evaluates.
 * 0 when issuance may go on, else -1 with *prob (onionCAARequired,
 * malformed, unauthorized, caa).
 */
int ra_onion_caa(struct ra *ra, const char *rid, const json_t *order,
    const json_t *onion_caa, const char *uri, struct problem **prob);
/* Adds inBandOnionCAARequired to meta when policy.onion is on. */
void ra_onion_meta(struct ra *ra, json_t *meta);
/* Appends id to the JSON array ids unless it is there already. */
void ra_ids_add(json_t *ids, json_int_t id);
/*
 * A finalize claim (0016_order_claim): the token that sa.set_order_processing
 * or sa.reclaim_order stored with the order, and when it was asked for
 * (epoch ms, before the SA set it).
 */
#define RA_CLAIM_BYTES 16
struct ra_claim {
	char token[2 * RA_CLAIM_BYTES + 1];
	int64_t at_ms;
};
/* A fresh claim into cl: a random token, at_ms now. */
void ra_claim_new(struct ra_claim *cl);
/*
 * The ids this process is working on, which recovery leaves alone
 * (ra->inflight: orders finalizing; ra->inflight_authzs: authzs
 * validating), under ra->lock: ra_mark adds id to set (on) or removes it,
 * 1 if that changed the set; ra_marked is 1 if id is in set (recovery.c).
 */
int ra_mark(struct ra *ra, json_t *set, json_int_t id, int on);
int ra_marked(struct ra *ra, const json_t *set, json_int_t id);
/*
 * Recovery of an order left processing with its CSR stored (order
 * borrowed, from sa.reclaim_order under the claim cl): issues it again
 * (ra_issue_order), marked in flight meanwhile. Nothing when the order has
 * no CSR.
 */
void ra_reissue_order(
    struct ra *ra, const json_t *order, const struct ra_claim *cl);
/*
 * Issues for an order already claimed as processing (finalize.c) under the
 * claim cl (borrowed; NULL: none): the CA reserves the serial and stores
 * the certificate only while the order holds it, and signs nothing past
 * its deadline; once it is lost the order is left to its new claimant.
 * With issued not NULL, *issued is ca.issue's answer (new) when the order
 * was made valid with it, else NULL.
 */
void ra_issue_order(struct ra *ra, const char *rid, const json_t *order,
    const char *csr_b64, const struct ra_claim *cl, json_t **issued);
/*
 * ra.new_order created order (borrowed, with its authzs) for a request
 * that began at t0 (time_mono_ms): kept for its finalize, which then needs
 * no sa.get_order (finalize.c).
 */
void ra_order_created(struct ra *ra, const json_t *order, int64_t t0);
/* ---- draft-ietf-acme-device-attest (device.c) ---- */
/*
 * The CSR key (borrowed) must be the key each device authorization of the
 * order (borrowed) attested (the VA's validation record keeps the SHA-256
 * of its SubjectPublicKeyInfo). 0, or -1 with *prob (badCSR).
 */
int ra_device_check_key(struct ra *ra, const char *rid, const json_t *order,
    EVP_PKEY *csr_key, struct problem **prob);
/*
 * newOrder / newAuthz: each device identifier of idents (borrowed,
 * normalised) must match a pattern of the binding of the account's
 * (borrowed) eab_kid in pol (policy.device_identifiers, borrowed; NULL:
 * off), else of its "default". 0, or -1 with *prob (rejectedIdentifier,
 * one subproblem per refused identifier).
 */
int ra_device_policy_check(const json_t *pol, const json_t *acct,
    const json_t *idents, struct problem **prob);

/* ---- draft-ietf-acme-rats (rats.c) ---- */
/* The identifiers (borrowed) that go into a certificate: all but the
 * remote-attestation ones. New array. */
json_t *ra_rats_cert_identifiers(const json_t *idents);
/* 0 for a remote-attestation identifier (borrowed: an attestation is
 * never reused by a later order), else 1. */
int ra_rats_reusable(const json_t *ident);

/* ---- RFC 8739 STAR (star.c) ---- */
/*
 * newOrder: the params' "auto_renewal" (borrowed; NULL when absent)
 * checked for profile prof with the order's notBefore/notAfter (nb, na,
 * which RFC 8739 §3.1.1 forbids in a STAR order). 0 with *terms (lifetime
 * 0 when there is no auto-renewal), or -1 with *prob.
 */
int ra_star_new_order_check(struct ra *ra, const struct profile *prof,
    const json_t *params, const char *nb, const char *na,
    struct ra_star_terms *terms, struct problem **prob);
/*
 * Makes the new order *order (taken, replaced by the re-read order) a STAR
 * order with terms (nothing when terms->lifetime is 0). On failure the
 * order is failed (never issued as a plain one): -1 with *prob.
 */
int ra_star_new_order_attach(struct ra *ra, const char *rid, json_t **order,
    const struct ra_star_terms *terms, struct problem **prob);
/* finalize: keeps the CSR (borrowed) of a STAR order (borrowed; a plain
 * order is left alone) for its renewals. 0 or -1 with *prob. */
int ra_star_finalize(struct ra *ra, const char *rid, const json_t *order,
    const char *csr, struct problem **prob);
/* ca.issue params (borrowed) of a STAR order's (borrowed) first
 * certificate: its RFC 8739 §3.5 validity. Nothing for a plain order. */
void ra_star_issue_window(const json_t *order, json_t *params);
/* The directory's "auto-renewal" meta (RFC 8739 §3.4) into meta. */
void ra_star_meta(struct ra *ra, json_t *meta);
/* ACME revocation of cert (borrowed, sa certificate): -1 with *prob
 * autoRenewalRevocationNotSupported for a STAR certificate (§3.1.2). */
int ra_star_revoke_check(struct ra *ra, const char *rid, const json_t *cert,
    struct problem **prob);
/* Starts / stops (joins) the renewal scheduler thread. */
int ra_star_start(struct ra *ra);
void ra_star_stop(struct ra *ra);
int ra_h_star_cancel(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob);

/* ---- RFC 9115 delegation (delegation.c) ---- */

/* Adds "delegation-enabled" to the directory meta (borrowed) when on. */
void ra_deleg_meta(struct ra *ra, json_t *meta);
/*
 * ra.new_order of an order naming params' delegation_id (all borrowed;
 * idents policy-checked, aidents in sa.get_valid_authzs form): the
 * delegation must be active and made for account id, the identifiers
 * within its CSR template, the profile within it, and the owner must hold
 * a valid authorization for every name; the order is stored linked to
 * those. 0 with *order (new, with authzs), or -1 with *prob
 * (unknownDelegation, rejectedIdentifier, invalidProfile, unauthorized).
 */
int ra_deleg_new_order(struct ra *ra, const char *rid, int64_t id,
    const struct profile *prof, const json_t *idents, const json_t *aidents,
    const json_t *params, json_t **order, struct problem **prob);
/*
 * Finalize of order (borrowed; ready): for a delegated order the
 * delegation must still be active and the CSR (b64url, borrowed) match its
 * template; a mismatch makes the order invalid (403 badCSR). *uri (owned,
 * replaced) becomes the owner's account URL for the CAA accounturi check.
 * 0 (also for a plain order), or -1 with *prob.
 */
int ra_deleg_finalize(struct ra *ra, const char *rid, const json_t *order,
    const char *csr, char **uri, struct problem **prob);
int ra_h_delegation_new(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob);
int ra_h_delegation_update(void *svc, const struct rpc_req *req,
    json_t **result, struct problem **prob);
int ra_h_delegation_cancel(void *svc, const struct rpc_req *req,
    json_t **result, struct problem **prob);
/* orders.c: the authz of an sa.get_valid_authzs answer (borrowed) for
 * identifier v of account id, or NULL. Borrowed. */
json_t *ra_find_reusable(const json_t *reuse, const json_t *v, int64_t id);
/*
 * RFC 8823 §3 (email.c): asks the VA to send the challenge email of every
 * pending email-reply-00 challenge among authzs (borrowed, as sa.get_authzs
 * returns them). A failure is logged: the order stands.
 */
void ra_email_send_challenges(
    struct ra *ra, const char *rid, const json_t *authzs);
/* The same for the authzs of an order as sa.new_order returns it. */
void ra_email_send_for_order(
    struct ra *ra, const char *rid, const json_t *order);

/* ---- RFC 9448 "ca" at finalize (tkauth.c) ---- */
/* finalize of an order (read with_authzs, borrowed) naming a TNAuthList:
 * the CSR's (b64url, borrowed) basicConstraints cA equals the Authority
 * Token's "ca" (RFC 9448 §6 step 9) and a CA certificate needs a
 * tkauth_ca profile. Other orders: 0. 0, or -1 with *prob (badCSR). */
int ra_tkauth_finalize(struct ra *ra, const json_t *order,
    const char *csr_b64, struct problem **prob);
/* 1 if ca.issue for order (borrowed) and its CSR (borrowed) asks for a
 * STIR CA certificate (a TNAuthList order whose CSR asks CA:TRUE, which
 * ra_tkauth_finalize allowed), else 0. */
int ra_tkauth_issue_ca(const json_t *order, const char *csr_b64);
/* A tkauth-01 challenge the VA found valid (its reply res, borrowed):
 * spends the token's jti in the SA for this challenge (RFC 9447 §4), so
 * that it validates no other challenge. 0, or -1 with *prob (unauthorized
 * when it was spent already). */
int ra_tkauth_spend(struct ra *ra, const char *rid, int64_t account_id,
    int64_t challenge_id, const json_t *res, struct problem **prob);

#endif /* ANVIL_RA_INT_H */
