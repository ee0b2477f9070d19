/*
 * va.h - the validation authority: proves control of identifiers.
 *
 * http-01, dns-01 and tls-alpn-01 (RFC 8555 §8, RFC 8737, RFC 8738) and
 * CAA (RFC 8659, RFC 8657). All network work runs on the VA's own libevent
 * loop thread (c-ares for DNS, non-blocking sockets, non-blocking OpenSSL);
 * callers on other threads submit a validation and wait on a condition
 * variable, so many validations are in flight at once without a thread each.
 *
 * A failed validation is a result (status invalid + problem), not an error.
 */
#ifndef ANVIL_VA_H
#define ANVIL_VA_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/core.h"
#include "rpc/rpc.h"

/* ------------------------------------------------------------------ */
/* Configuration (configs/<env>/va.json, docs/config/va.md)            */
/* ------------------------------------------------------------------ */

struct va_config {
	struct config_common common; /* log_level, debug, rpc */
	char **dns_resolvers; /* "127.0.0.1:8053", "[::1]:53" */
	size_t n_dns_resolvers;
	int64_t dns_timeout_ms;
	int64_t dns_tries;
	int64_t http01_port;
	int64_t tlsalpn01_port;
	int64_t https_port;         /* allowed port of https redirect hops */
	int64_t http_port_redirect; /* allowed port of http redirect hops
				       (besides http01_port) */
	char *user_agent;
	char **caa_identities;
	size_t n_caa_identities;
	int64_t validation_timeout_ms;
	char *network_mode;   /* "private" or "public" */
	char **network_allow; /* CIDRs */
	size_t n_network_allow;
	int64_t sleep_max_ms; /* test: random delay in [0, sleep_max] */
	int always_valid;     /* test: no network, always valid */
	int64_t connect_retries; /* retries of a refused/reset connection */
	/* Multi-perspective issuance corroboration ("mpic" object,
	 * docs/config/va.md; va/remote.c). */
	char *mpic_role;        /* "primary" (default) or "remote" */
	char *mpic_perspective; /* this VA's perspective name */
	char *mpic_region;      /* optional label: RIR, cloud region */
	json_t *mpic_remotes;   /* [{perspective, region, <rpc client>}] */
	int64_t mpic_max_failures;     /* -1: the BR 3.2.2.9 table */
	int64_t mpic_remote_timeout_ms; /* 0: validation_timeout */
	int64_t mpic_min_regions; /* distinct regions among corroborators */
	int mpic_is_remote;             /* derived: role == "remote" */
	/* device-attest-01 roots ("attestation" object): PEM files, NULL
	 * when that format is not accepted */
	char *attest_tpm_roots;
	char *attest_apple_roots;
	char *attest_packed_roots;
	char *attest_android_roots;
	/* "software", "tee" (NULL: the default) or "strongbox": the lowest
	 * android-key attestationSecurityLevel accepted */
	char *attest_android_level;
	/* remote-attest-01 ("rats" object, docs/config/va.md; va/rats.c) */
	json_t *rats;
	/* RFC 8823 email-reply-00 ("email" object, docs/config/va.md) */
	char *email_smtp_url;      /* the MTA the challenge emails go to */
	char *email_maildir;       /* where the MTA delivers the replies */
	char *email_secret_file;   /* token-part1 key (32+ bytes) */
	char *email_dkim_key_file; /* signs the challenge emails */
	char *email_dkim_selector;
	char *email_dkim_domain;
	int64_t email_reply_timeout_ms; /* how long va.validate waits */
	int64_t email_poll_ms;          /* maildir scan interval */
	/* RFC 9447/9448 tkauth-01 ("tkauth" object, docs/config/va.md) */
	char *tkauth_roots; /* PEM: the trusted Token Authority roots */
	int tkauth_allow_ca; /* accept "atc" tokens with "ca": true */
	/* URL prefixes an "x5u" may name (https only); none: x5u refused */
	char **tkauth_x5u_allow;
	size_t n_tkauth_x5u_allow;
	char *tkauth_x5u_ca; /* PEM: CAs for the x5u fetch's TLS; NULL: system */
	/* RFC 9891 bp-nodeid-00 ("bp" object, checked by bpnodeid.c;
	 * docs/config/va.md); NULL: off */
	json_t *bp;
};

/*
 * Fills defaults, then parses obj strictly (unknown key = error naming it)
 * and applies Pebble's environment aliases (PEBBLE_VA_ALWAYS_VALID,
 * PEBBLE_VA_NOSLEEP, PEBBLE_VA_SLEEPTIME seconds). `path` is used in
 * messages only. Returns 0, or -1 with err. Free with va_config_clear
 * (also after a failure).
 */
int va_config_parse(const json_t *obj, const char *path, struct va_config *cfg,
    char *err, size_t errlen);
void va_config_clear(struct va_config *cfg);
/* Sets every field to its default (no allocation beyond strings). */
void va_config_defaults(struct va_config *cfg);

/* ------------------------------------------------------------------ */
/* The VA                                                               */
/* ------------------------------------------------------------------ */

struct va;

/*
 * Creates the VA and starts its loop thread. Borrows cfg (must outlive the
 * VA) and metrics (may be NULL). Returns NULL with err (bad resolver
 * address, bad CIDR, c-ares or libevent failure).
 */
struct va *va_new(const struct va_config *cfg, struct metrics *metrics,
    char *err, size_t errlen);
/* Stops the loop thread (in-flight validations fail) and frees. */
void va_free(struct va *va);

/*
 * The dns-account-01 label of an account URL: "_" followed by the lowercase
 * unpadded base32 of the first 10 bytes of SHA-256(account_url)
 * (draft-ietf-acme-dns-account-label §3.2), e.g. "_ujmmovf2vn55tgye".
 * Borrows account_url; caller frees the result.
 */
char *va_dns_account_label(const char *account_url);

/* One validation request; every member borrowed for the call. */
struct va_request {
	enum ident_type ident_type;
	const char *ident_value; /* normalised; wildcard: the base name */
	int wildcard;
	enum chal_type challenge; /* core/challenge.c */
	const char *token;
	const char *key_authorization;
	const char *account_uri; /* CAA accounturi and the dns-account-01
				    label; NULL only for other challenges */
	int check_caa;           /* run CAA after a successful validation */
	/* dns-persist-01 only: {"issuer_domain_names": [..], "account_uris":
	 * [..] (the hashed account URIs that identify the requester),
	 * "account_hash_prefix": ".."} (borrowed; docs/rpc-methods.md) */
	const json_t *persist;
	/* the client's challenge response object (device-attest-01: attObj),
	 * or NULL (borrowed) */
	const json_t *payload;
	/* tkauth-01: the PEM chain fetched from the token's "x5u" (borrowed;
	 * va_validate fills it, va_validate_async callers leave it NULL) */
	const char *tkauth_x5u_pem;
	const char *request_id;  /* may be NULL */
	int64_t timeout_ms;      /* the configured validation_timeout, or
				    this when > 0 and smaller */
};

/* Outcome; free with va_result_clear. */
struct va_result {
	int valid;
	json_t *record;       /* JSON array of hop records (owned) */
	struct problem *prob; /* owned; set when !valid */
};

void va_result_clear(struct va_result *r);

/*
 * Blocking validation, callable from any thread except the VA's loop.
 * Fills *res (caller clears). Returns 0; -1 only if req is unusable (then
 * res->prob says why, malformed).
 */
int va_validate(
    struct va *va, const struct va_request *req, struct va_result *res);

/*
 * Asynchronous form: done runs exactly once on the VA's loop thread with
 * the result (the callee takes ownership of *res's members). Returns 0, or
 * -1 with *prob (caller frees) if the request is unusable.
 */
typedef void (*va_done_fn)(void *arg, struct va_result *res);
int va_validate_async(struct va *va, const struct va_request *req,
    va_done_fn done, void *arg, struct problem **prob);

/*
 * CAA of a .onion name (RFC 9799 §6): never looked up in the DNS (§6.1);
 * caa is the in-band record set the client signed (§6.4; NULL: none).
 * Same answers as va_check_caa: 1 permitted, 0 not (with *prob, caller
 * frees). Borrows everything; callable from any thread.
 */
int va_check_onion_caa(struct va *va, const char *name, const char *caa,
    int wildcard, const char *account_uri, const char *method,
    struct problem **prob);
/*
 * Blocking CAA check for an identifier (timeout_ms as in va_request;
 * strings borrowed). Returns 1 when issuance is
 * permitted, 0 when not (with *prob: type caa, or dns-ish detail), -1 if
 * the request is unusable (*prob malformed). IP identifiers are always
 * permitted (RFC 8738 has no CAA).
 */
int va_check_caa(struct va *va, enum ident_type type, const char *value,
    int wildcard, const char *validation_method, const char *account_uri,
    const char *request_id, int64_t timeout_ms, struct problem **prob);

/*
 * RFC 8823 §3.1: composes the challenge email for token-part2 token (the
 * challenge's "token") to address `to` from `from`, with token-part1 in the
 * subject, DKIM-signs it when configured and hands it to the MTA over
 * SMTP (libcurl). Blocking: call from an RPC worker thread, never the loop.
 * Strings borrowed. 0 with *message_id (malloc'd), or -1 with *prob.
 */
int va_email_send_challenge(struct va *va, const char *to, const char *from,
    const char *token, const char *request_id, char **message_id,
    struct problem **prob);

/* ------------------------------------------------------------------ */
/* Multi-perspective issuance corroboration (va/remote.c)              */
/* ------------------------------------------------------------------ */

/*
 * Remote failures a corroboration may absorb with n remote perspectives:
 * `configured` when >= 0, else the CA/Browser Forum BR 3.2.2.9 table
 * (1 remote: 0; 2-5: 1; 6 or more: 2).
 */
int va_mpic_allowed_failures(size_t n, int64_t configured);

/*
 * Checks cfg's "mpic" object (role, perspective, remotes as RPC client
 * configs, quorum, timeout). 0, or -1 with err naming the bad key
 * ("mpic.remotes[1].target: ..."). `path` is used in messages only.
 */
int va_mpic_config_check(
    const struct va_config *cfg, const char *path, char *err, size_t errlen);

/* Validations currently in flight (for health and metrics). */
int va_inflight(struct va *va);
/*
 * Health for /healthz and health.check (debug_health_fn shape; arg is the
 * VA): -1 with a reason when the loop thread has not run for 5 s.
 */
int va_health(struct va *va, char *msg, size_t msglen);

/* ------------------------------------------------------------------ */
/* RPC glue: JSON in and out as in docs/rpc-methods.md (va.*)          */
/* ------------------------------------------------------------------ */

/*
 * va.validate params → result object (new reference in *result) or -1
 * with *prob (malformed params). request_id may be NULL; deadline_ms is the
 * caller's wall-clock deadline (0 = none).
 */
int va_validate_json(struct va *va, const json_t *params,
    const char *request_id, int64_t deadline_ms, json_t **result,
    struct problem **prob);
/* va.check_caa params → {"ok":bool,"error":problem}; as above. */
int va_check_caa_json(struct va *va, const json_t *params,
    const char *request_id, int64_t deadline_ms, json_t **result,
    struct problem **prob);
/*
 * The va.* handlers indexed by registry id (static storage), for
 * rpc_server_new_service(RPC_SVC_VA, ...); the svc pointer is the struct va.
 */
const rpc_handler_fn *va_rpc_handlers(void);
/* anvil-va's part of the service skeleton (va_daemon.c). */
extern const struct rpc_service_ops va_service;

/* ------------------------------------------------------------------ */
/* HTTP/1.1 response parser (exposed for tests and the fuzz target)   */
/* ------------------------------------------------------------------ */

#define VA_HTTP_MAX_BODY 128
#define VA_HTTP_MAX_HEADER_BYTES 16384
#define VA_HTTP_MAX_LOCATION 4096

enum va_http_rc {
	VA_HTTP_NEED_MORE, /* incomplete: read more */
	VA_HTTP_DONE,      /* a complete response (maybe body_too_large) */
	VA_HTTP_ERROR      /* malformed; err says why */
};

struct va_http_resp {
	int status;
	char *location;         /* owned, NULL if absent */
	int64_t content_length; /* -1 if absent */
	int chunked;
	unsigned char body[VA_HTTP_MAX_BODY + 1];
	size_t body_len;
	int body_too_large; /* more than VA_HTTP_MAX_BODY body bytes */
};

/*
 * Parses buf[0..len) holding everything received so far (eof: the peer
 * closed). Strict: CRLF line endings, token header names, no obs-fold, at
 * most VA_HTTP_MAX_HEADER_BYTES of head, Content-Length digits only and
 * consistent, Transfer-Encoding only "chunked", not both. Only the body of
 * a 2xx response is collected (at most VA_HTTP_MAX_BODY + 1 bytes; more
 * sets body_too_large and returns DONE early). Fills *r (cleared first;
 * caller clears with va_http_resp_clear).
 */
enum va_http_rc va_http_parse(const char *buf, size_t len, int eof,
    struct va_http_resp *r, char *err, size_t errlen);
void va_http_resp_clear(struct va_http_resp *r);

#endif /* ANVIL_VA_H */
