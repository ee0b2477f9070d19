/*
 * wfe_int.h - internals of the web front end, shared by the files of wfe/
 * and by test/unit/test_wfe*.c. Not for other modules.
 */
#ifndef ANVIL_WFE_INT_H
#define ANVIL_WFE_INT_H

#include <pthread.h>
#include <stdint.h>

#include <jansson.h>

#include "core/core.h"
#include "jose/jose.h"
#include "rpc/rpc.h"
#include "wfe/wfe.h"

struct MHD_Daemon;
struct MHD_Connection;
struct rpc_client;

/* ------------------------------------------------------------------ */
/* Nonce service (nonce.c)                                              */
/* ------------------------------------------------------------------ */

/*
 * nonce = prefix || b64url(counter u64 BE || issued_s u32 BE ||
 *                          HMAC-SHA256(key, prefix || counter ||
 * issued)[0..16]) The counter starts at the wall clock in microseconds when the
 * service is created, so counters never repeat across restarts. Unused nonces
 * are remembered in a bitmap window of the last `window` counters: memory is
 * fixed, a flood of new nonces only pushes old ones out of the window.
 */
enum wfe_nonce_result {
	WFE_NONCE_OK,
	WFE_NONCE_MALFORMED,    /* wrong length / alphabet */
	WFE_NONCE_WRONG_PREFIX, /* issued by another instance */
	WFE_NONCE_BAD_MAC,      /* forged, or issued before a key change */
	WFE_NONCE_EXPIRED,      /* older than the lifetime */
	WFE_NONCE_EVICTED, /* fell out of the window (too many issued since) */
	WFE_NONCE_UNKNOWN, /* not issued by this process (restart) or reused */
	WFE_NONCE__MAX
};

struct wfe_nonce;

/* Static name for logs and metrics ("ok", "reused", ...). */
const char *wfe_nonce_result_name(enum wfe_nonce_result r);
/*
 * New nonce service. prefix borrowed (copied), 1..8 chars of [A-Za-z0-9_-].
 * key: keylen (>= 16) bytes of HMAC key (copied) or NULL for a random key.
 * window: how many outstanding nonces are remembered (>= 64).
 * NULL if an argument is invalid.
 */
struct wfe_nonce *wfe_nonce_new(const char *prefix, const uint8_t *key,
    size_t keylen, uint64_t window, int64_t lifetime_ms);
void wfe_nonce_free(struct wfe_nonce *ns);
/* A fresh nonce (caller frees). Thread-safe. */
char *wfe_nonce_issue(struct wfe_nonce *ns, int64_t now_ms);
/* Redeems a nonce once. Thread-safe. */
enum wfe_nonce_result wfe_nonce_redeem(
    struct wfe_nonce *ns, const char *nonce, int64_t now_ms);

/* ------------------------------------------------------------------ */
/* Account cache for the "kid" lookup (acctcache.c)                     */
/* ------------------------------------------------------------------ */

struct wfe_acct_cache;

/* slots entries at most, each kept ttl_ms at most. NULL when slots or
 * ttl_ms is 0 (no cache: the functions below accept NULL). */
struct wfe_acct_cache *wfe_acct_cache_new(size_t slots, int64_t ttl_ms);
void wfe_acct_cache_free(struct wfe_acct_cache *c);
/*
 * A copy of account id (new reference, caller owns) when cached and not
 * expired, else NULL. *gen receives the token to give wfe_acct_cache_put
 * after loading it from the SA. Thread-safe.
 */
json_t *wfe_acct_cache_get(
    struct wfe_acct_cache *c, int64_t id, int64_t now_ms, uint64_t *gen);
/* Caches a copy of acct (borrowed) unless id was forgotten since gen was
 * read. Thread-safe. */
void wfe_acct_cache_put(struct wfe_acct_cache *c, int64_t id, uint64_t gen,
    const json_t *acct, int64_t now_ms);
/* Drops id at once (its status or key changed through this instance). */
void wfe_acct_cache_forget(struct wfe_acct_cache *c, int64_t id);
/*
 * The stored account key jwk (borrowed) imported as jwk_parse does with the
 * permissive policy, from a cache keyed by the key's whole JSON text (so a
 * replaced key is never answered from it). c may be NULL (no cache).
 * 0 with *out a new jwk (jwk_free), or -1 with *prob.
 */
int wfe_acct_cache_key(struct wfe_acct_cache *c, const json_t *jwk,
    struct jwk **out, struct problem **prob);

/* ------------------------------------------------------------------ */
/* Requests and replies                                                 */
/* ------------------------------------------------------------------ */

enum wfe_method { WFE_GET = 1, WFE_HEAD = 2, WFE_POST = 4, WFE_OTHER = 8 };

#define WFE_MAX_HEADERS 16

struct wfe_header {
	char *name;
	char *value;
};

/* Per-request context: created when the request line arrives, freed in
 * MHD's completion callback. */
struct wfe_req {
	struct wfe *w;
	struct MHD_Connection *conn;
	char rid[24];     /* request id for logs and RPC */
	int64_t start_ms; /* monotonic */
	char *uri;        /* raw request-target (path + query), owned */
	char *path;       /* path without query, owned */
	enum wfe_method method;
	const char *route; /* route name for metrics (static) */
	char *base;        /* "https://host[:port]" for URLs we emit, owned */
	char *seen_base;   /* scheme://Host the client used, owned */
	/* body */
	char *body;
	size_t body_len;
	int body_too_large;
	int done; /* reply built */
	/* authenticated request (jws.c) */
	struct jws *jws;
	struct jwk *acct_key; /* key of the requesting account */
	json_t *account;      /* sa account object */
	int64_t account_id;
	/* reply */
	int status;
	const char *ctype; /* static */
	char *out;         /* owned */
	size_t out_len;
	int want_nonce;
	int no_index_link;
	int mgmt;        /* request on the management listener */
	int pki;         /* request on the plain-HTTP OCSP/CRL/issuer listener */
	char *client_ip; /* TCP peer, or client_ip_header's last entry */
	struct wfe_header hdrs[WFE_MAX_HEADERS];
	size_t nhdrs;
};

/* Adds a response header (name and value copied). A 17th is dropped and
 * logged as a bug. */
void wfe_add_header(struct wfe_req *r, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Replies with a problem (takes p). Always adds a fresh nonce. */
void wfe_reply_problem(struct wfe_req *r, struct problem *p);
/* Same from a code and printf detail. */
void wfe_reply_prob(struct wfe_req *r, enum prob_type t, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Replies JSON (takes j) with status. */
void wfe_reply_json(struct wfe_req *r, int status, json_t *j);
/* Replies raw bytes (takes data, malloc'd, may be NULL if len 0). */
void wfe_reply_raw(
    struct wfe_req *r, int status, const char *ctype, char *data, size_t len);
/*
 * The RFC 7807 body for a problem (new reference) and its HTTP status
 * (from the registry unless p->status is set).
 */
json_t *wfe_problem_body(const struct problem *p, int *status);

/* ------------------------------------------------------------------ */
/* Routing (route.c)                                                    */
/* ------------------------------------------------------------------ */

typedef void (*wfe_handler_fn)(struct wfe_req *r, const char *tail);

struct wfe_route {
	const char *name; /* metrics label */
	const char *path; /* exact path, or prefix when `prefix` */
	int prefix;
	unsigned methods; /* WFE_GET | WFE_HEAD | WFE_POST */
	wfe_handler_fn fn;
};

/*
 * Finds the route for path; *tail receives the part after a prefix route's
 * path ("" for exact routes). NULL if no route matches (404).
 */
const struct wfe_route *wfe_route_find(const char *path, const char **tail);
/* "GET, HEAD, POST" style Allow value for a method mask (static buffer
 * owned by caller: buf >= 32). */
const char *wfe_methods_allow(unsigned methods, char *buf, size_t buflen);
/* 1 if name is a route name of the table (test.faults.endpoints keys). */
int wfe_route_name_known(const char *name);
/*
 * Checks a test.faults object (borrowed): percentages 0..100 adding up to
 * at most 100, retry_after, endpoints. 0, or -1 with err naming the key.
 */
int wfe_faults_check(const json_t *f, char *err, size_t errlen);
/* The fault injection now in force: a new reference or NULL (none). */
json_t *wfe_faults_get(struct wfe *w);
/* Replaces it (f borrowed, already checked; NULL = off). */
void wfe_faults_set(struct wfe *w, const json_t *f);
/*
 * Test mode: rolls the fault injection in force for this request (route
 * name borrowed); 1 if an injected problem was replied, else 0 (faults.c).
 */
int wfe_fault_injected(struct wfe_req *r, const char *route);
/* Runs the request: route, method check, faults, handler. */
void wfe_dispatch(struct wfe_req *r);
/* Same for the management listener (mgmt.c). */
void wfe_mgmt_dispatch(struct wfe_req *r);
/* Same for the plain-HTTP OCSP/CRL/issuer listener (pki.c). */
void wfe_pki_dispatch(struct wfe_req *r);

/* ------------------------------------------------------------------ */
/* URLs (url.c)                                                         */
/* ------------------------------------------------------------------ */

/*
 * Splits "scheme://authority[/...]"; returns the authority (malloc'd) or
 * NULL if the URL is not http(s).
 */
char *wfe_url_authority(const char *url);
/*
 * 1 if jws_url equals seen_base + uri exactly (seen_base like
 * "https://localhost:4431", uri the raw request-target), else 0.
 */
int wfe_url_check(const char *jws_url, const char *seen_base, const char *uri);
/*
 * Chooses the bases of a request: scheme from the trusted proxy header value
 * (NULL: "https" when tls else "http"), host from the Host header. *seen is
 * what the client used; *base is the same when the host is allowed (the
 * base_url's own authority or cfg->hosts), else cfg->base_url. Both malloc'd.
 */
void wfe_url_bases(const struct wfe_config *cfg, const char *host,
    const char *proto, char **seen, char **base);
/* Parses a positive decimal id (< 2^53) of exactly len chars. 0 or -1. */
int wfe_parse_id(const char *s, size_t len, int64_t *out);

/* ------------------------------------------------------------------ */
/* The front end                                                        */
/* ------------------------------------------------------------------ */

/* Which listener a request came in on. */
enum wfe_listener_kind { WFE_L_ACME, WFE_L_MGMT, WFE_L_PKI };
#define WFE_LISTENERS 3

/* One libmicrohttpd daemon; the cls of its access handler (http.c). */
struct wfe_listener {
	struct wfe *w; /* borrowed: the wfe that holds this listener */
	enum wfe_listener_kind kind;
	struct MHD_Daemon *mhd; /* owned; NULL when not started */
};

struct wfe {
	const struct wfe_config *cfg;
	struct metrics *metrics;
	struct rpc_client *ra;
	struct rpc_client *sa;
	struct rpc_client *sa_read; /* NULL, or an SA on a read replica */
	struct wfe_nonce *nonces;
	struct wfe_acct_cache *accounts; /* NULL when account_cache is off */
	/* authzs of newOrder answers and certificates of finalize answers,
	 * each for one later read (h_order.c, h_cert.c); NULL when
	 * object_cache is off */
	struct takecache *objects;
	struct jose_policy policy;
	struct wfe_listener listeners[WFE_LISTENERS]; /* by kind (http.c) */
	char *tls_cert_pem;
	char *tls_key_pem;
	pthread_mutex_t lock; /* guards the caches below and rid counter */
	uint64_t rid_next;
	json_t *profiles; /* cached ca.profiles result, may be NULL */
	int64_t profiles_at_ms;
	json_t *ra_meta; /* cached ra.directory_meta result, may be NULL */
	int64_t ra_meta_at_ms;
	json_t *faults;  /* test.faults in force (POST /faults), owned */
	json_t *issuers; /* cached ca.get_issuers result */
	int64_t issuers_at_ms;
	/* TLS connections that ended before a request (http.c), logged at
	 * most once a second; guarded by lock */
	int64_t tls_fail_logged_ms;
	uint64_t tls_fail_suppressed;
};

/*
 * RPC with the request id. params borrowed (NULL = {}); on success *result
 * is a new reference the caller owns and 0 is returned; on failure the
 * problem is replied (wfe_rpc) and -1 returned.
 */
int wfe_rpc(struct wfe_req *r, struct rpc_client *c, enum rpc_method_id id,
    json_t *params, json_t **result);
/*
 * Calls the RA's method id with params (consumed) and hands its answer
 * (borrowed) to reply(r, status, answer); a failed call replies the problem.
 */
void wfe_ra_reply(struct wfe_req *r, enum rpc_method_id id, json_t *params,
    int status, void (*reply)(struct wfe_req *, int, const json_t *));
/* Same without replying: 0, or -1 and *prob (caller frees). */
int wfe_rpc_raw(struct wfe_req *r, struct rpc_client *c, enum rpc_method_id id,
    json_t *params, json_t **result, struct problem **prob);

/*
 * An SA read the read replica SA (sa_read) may serve (docs/scaling.md,
 * "Read replicas"). A standby replays the primary's commits some time
 * after the client was told about them, so its answer is used only when
 * settled(answer) says it shows a state no later write can change (NULL:
 * any answer, for callers that use only fields that never change once
 * written). Otherwise — no sa_read, notFound or unavailable there, or an
 * answer that may be older than what the client has seen — the primary
 * `sa` answers. params borrowed; contract of wfe_rpc_raw.
 */
int wfe_sa_read_raw(struct wfe_req *r, enum rpc_method_id id, json_t *params,
    int (*settled)(const json_t *answer), json_t **result,
    struct problem **prob);
/* wfe_sa_read_raw that replies the problem on failure (as wfe_rpc). */
int wfe_sa_read(struct wfe_req *r, enum rpc_method_id id, json_t *params,
    int (*settled)(const json_t *answer), json_t **result);

/* ------------------------------------------------------------------ */
/* JWS checks (jws.c)                                                   */
/* ------------------------------------------------------------------ */

enum wfe_key_mode { WFE_KEY_KID, WFE_KEY_JWK, WFE_KEY_EITHER };

/*
 * Authenticates a POST: content type, body, JWS structure, signature (with
 * the embedded jwk or the kid's account key), nonce, url. On success fills
 * r->jws (and r->account*, r->acct_key for kid) and returns 0; else replies
 * the problem and returns -1.
 */
int wfe_jws_auth(struct wfe_req *r, enum wfe_key_mode mode);
/*
 * A POST to the resource whose numeric id is tail (borrowed): parses the
 * id into *id (a malformed one is 404 "no such <what>") and authenticates
 * the request by its kid (wfe_jws_auth). 0, or -1 after replying.
 */
int wfe_kid_resource(
    struct wfe_req *r, const char *tail, const char *what, int64_t *id);
/*
 * A POST to a resource read with POST-as-GET only: authenticates it (kid)
 * and requires the empty payload, else replies malformed with detail
 * (borrowed, the whole sentence). 0, or -1 after replying the problem.
 */
int wfe_post_as_get_only(struct wfe_req *r, const char *detail);
/* The payload object (new ref) or -1 after replying malformed. POST-as-GET
 * (empty payload) is refused. */
int wfe_jws_payload(struct wfe_req *r, json_t **out);

/* ------------------------------------------------------------------ */
/* ACME JSON (acme_json.c)                                              */
/* ------------------------------------------------------------------ */

/*
 * RPC objects to ACME resources. All borrow r (for the URL base) and the
 * input object and return a new reference the caller owns.
 */
json_t *wfe_acme_account(struct wfe_req *r, const json_t *acct);
json_t *wfe_acme_order(const struct wfe_req *r, const json_t *order);
json_t *wfe_acme_authz(struct wfe_req *r, const json_t *authz);
json_t *wfe_acme_challenge(
    struct wfe_req *r, int64_t authz_id, const json_t *chall);
/*
 * The RA's directory meta fields (ra.directory_meta, cached a minute):
 * new reference to the "meta" object, or NULL when the RA cannot be asked.
 */
json_t *wfe_ra_meta(struct wfe_req *r);
/* The RFC 7807 form of an RPC problem JSON (new ref). */
json_t *wfe_acme_problem(const json_t *rpc_prob);
/* r->base followed by the printf-formatted path; caller frees. */
char *wfe_url(const struct wfe_req *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * A parameterless call's answer cached in *slot (at: when it was fetched,
 * monotonic ms; both under w->lock) for a minute, a failure for 5 s: a new
 * reference, or NULL when the service could not be asked (rpc.c).
 */
json_t *wfe_cached_call(struct wfe_req *r, struct rpc_client *c,
    json_t **slot, int64_t *at, enum rpc_method_id method);
/* The issuer with this id from ca.get_issuers, cached (new ref), or NULL
 * after replying the problem (issuers.c). */
json_t *wfe_issuer_find(struct wfe_req *r, const char *id);
/* The whole cached ca.get_issuers result (new ref), or NULL after replying
 * 503. */
json_t *wfe_issuers_all(struct wfe_req *r);

/* ------------------------------------------------------------------ */
/* Handlers (h_*.c)                                                     */
/* ------------------------------------------------------------------ */

/*
 * Route handlers: borrow r and tail (the path after the route's prefix) and
 * always leave a reply built in r (wfe_reply_*); http.c sends it.
 */
void wfe_h_directory(struct wfe_req *r, const char *tail);
void wfe_h_new_nonce(struct wfe_req *r, const char *tail);
void wfe_h_new_account(struct wfe_req *r, const char *tail);
void wfe_h_account(struct wfe_req *r, const char *tail);
void wfe_h_key_change(struct wfe_req *r, const char *tail);
/*
 * h_order.c: the object of kind ('a' authz, 'c' certificate) and id this
 * instance kept for one read (object_cache), when it belongs to the
 * requesting account: new, removed from the cache; else NULL.
 */
json_t *wfe_kept(struct wfe_req *r, char kind, const char *id);
void wfe_h_new_order(struct wfe_req *r, const char *tail);
void wfe_h_order(struct wfe_req *r, const char *tail);
void wfe_h_new_authz(struct wfe_req *r, const char *tail);
void wfe_h_authz(struct wfe_req *r, const char *tail);
void wfe_h_challenge(struct wfe_req *r, const char *tail);
void wfe_h_finalize(struct wfe_req *r, const char *tail);
void wfe_h_cert(struct wfe_req *r, const char *tail);
/*
 * The PEM of a stored certificate (cert borrowed, with "der" and
 * "issuer_id") into *leaf (caller frees) and its issuer (wfe_issuer_find)
 * into *iss (caller decrefs). 0, or -1 after replying the problem.
 */
int wfe_cert_leaf(
    struct wfe_req *r, const json_t *cert, char **leaf, json_t **iss);
/*
 * The checks every certificate download makes (RFC 8555 section 7.4.2):
 * a POST must be a POST-as-GET (empty payload), and by a POST only the
 * owner (obj borrowed, with "account_id") may read it. 0, or -1 after
 * replying the problem (a certificate of another account is "not found").
 */
int wfe_cert_read_check(struct wfe_req *r);
int wfe_cert_owner_check(struct wfe_req *r, const json_t *obj);
/* Replies 200 with pem (taken) as application/pem-certificate-chain. */
void wfe_reply_pem_chain(struct wfe_req *r, char *pem);
void wfe_h_revoke(struct wfe_req *r, const char *tail);
void wfe_h_renewal_info(struct wfe_req *r, const char *tail);
void wfe_h_crl(struct wfe_req *r, const char *tail);
void wfe_h_ocsp(struct wfe_req *r, const char *tail);
void wfe_h_issuer(struct wfe_req *r, const char *tail);
/* PEM of a DER certificate (borrowed): new string, NULL if unreadable. */
char *wfe_der_to_pem(const uint8_t *der, size_t len);

/* ---- RFC 8739 STAR (h_star.c) ---- */
/* newOrder: the payload's "auto-renewal" (borrowed) into params. 0, or -1
 * after replying malformed. */
int wfe_star_new_order_param(
    struct wfe_req *r, const json_t *payload, json_t *params);
/* The STAR members of order (borrowed, with "star") into j: auto-renewal,
 * star-certificate instead of certificate, expires. */
void wfe_star_order_json(const struct wfe_req *r, const json_t *order, json_t *j);
/* POST with a payload to order id: {"status": "canceled"} (§3.1.2). */
void wfe_star_order_update(struct wfe_req *r, int64_t id);
/* GET/HEAD/POST-as-GET /acme/star-cert/<order id>. */
void wfe_h_star_cert(struct wfe_req *r, const char *tail);

/* ---- RFC 9115 delegation (h_delegation.c) ---- */
/* POST /acme/delegations/<account id>: list (POST-as-GET) or create. */
void wfe_h_delegations(struct wfe_req *r, const char *tail);
/* POST /acme/delegation/<id>: read (owner, NDC), update or cancel (owner). */
void wfe_h_delegation(struct wfe_req *r, const char *tail);
/* newOrder: the payload's "delegation" URL (borrowed) into params as
 * delegation_id. 0, or -1 after replying unknownDelegation. */
int wfe_deleg_new_order_param(
    struct wfe_req *r, const json_t *payload, json_t *params);
/* The delegation members of order (borrowed) into j: "delegation" and an
 * empty "authorizations" (RFC 9115 §2.3.2). */
void wfe_deleg_order_json(const struct wfe_req *r, const json_t *order, json_t *j);
/* The account's "delegations" URL into j when delegation is enabled. */
void wfe_deleg_account_json(struct wfe_req *r, int64_t id, json_t *j);

#endif /* ANVIL_WFE_INT_H */
