/*
 * lg.h - internals of anvil-loadgen, an RFC 8555 client for load.
 *
 * Shape: one thread per worker doing blocking HTTPS on its own keep-alive
 * connection (http.c), the ACME issuance loop (acme.c), an http-01
 * responder on a libevent loop in its own thread (responder.c), a pool of
 * pre-generated certificate keys and CSR building (csr.c), and latency /
 * failure statistics (stats.c). See docs/performance.md for why threads.
 *
 * Ownership follows the project rules: *_new / *_free pairs, *_clear for
 * caller-owned structs, free(NULL)-style no-ops.
 */
#ifndef ANVIL_LOADGEN_LG_H
#define ANVIL_LOADGEN_LG_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <openssl/ssl.h>

/* ------------------------------------------------------------------ */
/* HTTPS client (http.c)                                                */
/* ------------------------------------------------------------------ */

/* Largest response header block / body the client accepts. */
#define LG_MAX_HEADER (64 * 1024)
#define LG_MAX_BODY (1024 * 1024)

/* A parsed https:// URL. Fields malloc'd; free with lg_url_clear. */
struct lg_url {
	char *host;
	int port;
	char *path; /* starts with '/', includes the query */
};

/* 0 and *out filled, or -1 if url is not https://host[:port]/path. */
int lg_url_parse(const char *url, struct lg_url *out);
void lg_url_clear(struct lg_url *u);

/* One HTTP response; fields owned, free with lg_resp_clear. */
struct lg_resp {
	int status;
	char *location;     /* Location header or NULL */
	char *nonce;        /* Replay-Nonce header or NULL */
	char *content_type; /* Content-Type header or NULL */
	char *body;         /* NUL-terminated (not counted), never NULL on 0 */
	size_t body_len;
};

void lg_resp_clear(struct lg_resp *r);

/* One keep-alive HTTPS connection (not thread-safe: one per worker). */
struct lg_conn;

/*
 * New unconnected connection. Borrows ctx (must outlive the conn).
 * timeout_ms bounds connect, each read and each write.
 */
struct lg_conn *lg_conn_new(SSL_CTX *ctx, int timeout_ms);
void lg_conn_free(struct lg_conn *c);
/* Number of TCP+TLS connections opened so far. */
uint64_t lg_conn_opened(const struct lg_conn *c);

/*
 * Sends one request (method "GET", "HEAD" or "POST"; body may be NULL) to
 * url, reusing the open connection when it goes to the same host:port, and
 * reads the response into *resp (cleared first; caller clears after).
 * A kept-alive connection the server closed while idle is replaced before
 * the request is sent. A request that failed on a reused connection before
 * any answer byte is sent again once on a fresh one only when repeating it
 * cannot do anything twice: GET/HEAD, or the request was not completely
 * written (RFC 9110 §9.2.2). A POST that was written and then cut off may
 * have been processed: that is an error for the caller (e.g. a finalize
 * sent again would meet its own order "processing", as orderNotReady).
 * 0 on a complete HTTP response (any status), -1 with a reason in err on
 * transport / TLS / protocol errors (the connection is then closed).
 */
int lg_http_request(struct lg_conn *c, const char *method, const char *url,
    const char *content_type, const char *body, size_t body_len,
    struct lg_resp *resp, char *err, size_t errlen);

/*
 * TLS client context trusting only the PEM roots in trust_file, verifying
 * the peer. NULL with err on failure. Caller frees with SSL_CTX_free.
 */
SSL_CTX *lg_tls_ctx_new(const char *trust_file, char *err, size_t errlen);

/* ------------------------------------------------------------------ */
/* Statistics (stats.c)                                                 */
/* ------------------------------------------------------------------ */

enum lg_req {
	LG_REQ_NONCE,
	LG_REQ_NEW_ACCOUNT,
	LG_REQ_NEW_ORDER,
	LG_REQ_AUTHZ,
	LG_REQ_CHALLENGE,
	LG_REQ_POLL_AUTHZ,
	LG_REQ_FINALIZE,
	LG_REQ_POLL_ORDER,
	LG_REQ_CERT,
	LG_REQ_ISSUANCE, /* the whole issuance, newOrder to certificate */
	LG_REQ__MAX
};

/* "newNonce", "newAccount", ... "issuance" (static). */
const char *lg_req_name(enum lg_req k);

/* One completed issuance: window offset at completion, latency. */
struct lg_point {
	double s;
	double ms;
};

/* Latency samples (ms) per kind and failure counts by reason. */
struct lg_stats {
	double *samples[LG_REQ__MAX];
	size_t count[LG_REQ__MAX];
	size_t cap[LG_REQ__MAX];
	uint64_t errors[LG_REQ__MAX]; /* requests answered with an error */
	json_t *failures;             /* owned: {"reason": count} */
	json_t *examples; /* owned: {"reason": [detail, ...]}, LG_EXAMPLES max */
	uint64_t issued;
	uint64_t bad_nonce_retries;
	uint32_t *timeline; /* issuances completed in second i of the window */
	size_t timeline_len;
	struct lg_point *points; /* every issuance: when it ended, how long */
	size_t npoints, cap_points;
	double last_ok_s; /* window offset of the last completed issuance */
};

void lg_stats_init(struct lg_stats *s);
void lg_stats_clear(struct lg_stats *s);
/* Records one latency sample in ms. */
void lg_stats_add(struct lg_stats *s, enum lg_req k, double ms);
/*
 * Counts one completed issuance at offset_s seconds into the window that
 * took ms (for the per-second latency series of the JSON report).
 */
void lg_stats_issued(struct lg_stats *s, double offset_s, double ms);
/* Failure details kept per reason (the first ones seen). */
#define LG_EXAMPLES 3
/* Longest failure detail kept: request, URL, status and the answer's start. */
#define LG_DETAIL_MAX 640

/*
 * Counts one failed issuance under reason and keeps detail (both borrowed;
 * detail may be NULL or empty) as an example of it while fewer than
 * LG_EXAMPLES are kept. 1 if detail was kept (the caller logs it), else 0.
 */
int lg_stats_fail(struct lg_stats *s, const char *reason, const char *detail);
/* Adds everything of src into dst (src unchanged). */
void lg_stats_merge(struct lg_stats *dst, const struct lg_stats *src);

/* Everything main prints at the end. */
struct lg_summary {
	const char *directory;
	int clients;
	int names_per_order;
	int renew;            /* --renew: every measured order a renewal */
	double elapsed_s;     /* measured window */
	double setup_s;       /* account creation before the window */
	double loadgen_cpu_s; /* this process's CPU in the window */
	uint64_t connections;
	uint64_t http01_served;
	int accounts_ok;
};

/*
 * Result as JSON (new reference): issued, failed, rate, failures by
 * reason, latency percentiles per kind. Sorts the samples in s.
 */
json_t *lg_stats_json(struct lg_stats *s, const struct lg_summary *sum);
/* Human-readable report of the JSON made by lg_stats_json (borrowed). */
void lg_stats_print(FILE *f, const json_t *report);

/* ------------------------------------------------------------------ */
/* Certificate keys and CSRs (csr.c)                                    */
/* ------------------------------------------------------------------ */

struct lg_keypool;

/* n pre-generated ECDSA P-256 keys. NULL on failure. */
struct lg_keypool *lg_keypool_new(int n);
void lg_keypool_free(struct lg_keypool *p);
/* Borrowed key number i modulo the pool size. */
EVP_PKEY *lg_keypool_get(struct lg_keypool *p, uint64_t i);
/* New ECDSA P-256 key (account keys). NULL on failure. Caller frees. */
EVP_PKEY *lg_key_new_p256(void);

/*
 * A CSR for names[0..n) (CN = names[0], all in the SAN), signed by key
 * (borrowed), as unpadded base64url DER. Caller frees; NULL on failure.
 */
char *lg_csr_b64(EVP_PKEY *key, const char *const *names, size_t n);

/*
 * Checks a downloaded PEM chain (borrowed): the first certificate must
 * carry key's public key and cover every name. 0 ok, -1 with reason.
 */
int lg_cert_check(const char *pem, size_t len, EVP_PKEY *key,
    const char *const *names, size_t n, char *err, size_t errlen);

/* ------------------------------------------------------------------ */
/* http-01 responder (responder.c)                                      */
/* ------------------------------------------------------------------ */

struct lg_responder;

/*
 * Starts a plain-HTTP server on addr:port in its own thread answering
 * GET /.well-known/acme-challenge/<token> with the registered key
 * authorization (404 otherwise). NULL with err if the port cannot be bound.
 */
struct lg_responder *lg_responder_start(
    const char *addr, int port, char *err, size_t errlen);
/* Stops the thread and frees everything. NULL is a no-op. */
void lg_responder_stop(struct lg_responder *r);
/* Registers token -> key authorization (both copied). Thread-safe; NULL r
 * (--no-responder) is a no-op, as for lg_responder_del. */
void lg_responder_put(
    struct lg_responder *r, const char *token, const char *key_authz);
/* Forgets token. Thread-safe. */
void lg_responder_del(struct lg_responder *r, const char *token);
/* Challenge requests answered with 200 so far. */
uint64_t lg_responder_served(struct lg_responder *r);

/* ------------------------------------------------------------------ */
/* The run (acme.c)                                                     */
/* ------------------------------------------------------------------ */

/* Shared, read-only after start except the atomics. */
struct lg_run {
	/* options */
	int clients;
	int names_per_order;
	const char *suffix;
	int64_t count;       /* issuances to start in total, 0 = by duration */
	int64_t duration_ms; /* 0 = by count */
	int poll_ms;
	int64_t issuance_timeout_ms;
	int timeout_ms; /* per request */
	int verbose;
	int renew; /* workers re-order their own names (authz reuse) */
	/* directory */
	char *new_nonce_url;
	char *new_account_url;
	char *new_order_url;
	/* shared objects (borrowed) */
	SSL_CTX *ssl_ctx;
	struct lg_keypool *keys;
	struct lg_responder *responder;
	/* coordination */
	pthread_barrier_t ready_barrier; /* workers + main: accounts made */
	pthread_barrier_t go_barrier;    /* workers + main: window opens */
	atomic_int_fast64_t remaining;   /* issuances left to start (count) */
	atomic_int_fast64_t key_seq;
	int64_t start_mono_ms;    /* set by main between the barriers */
	int64_t deadline_mono_ms; /* set by main between the barriers */
};

/* One worker: own account key, connection and statistics. */
struct lg_worker {
	int id;
	struct lg_run *run; /* borrowed */
	pthread_t thread;
	EVP_PKEY *account_key;
	json_t *account_jwk;
	char *thumbprint;
	char *kid;
	char *nonce;
	struct lg_conn *conn;
	struct lg_stats stats;
	char detail[LG_DETAIL_MAX]; /* what ended the current issuance */
	int account_ok;
	uint64_t rng;
	char **renew_names; /* --renew: names_per_order names, owned */
};

/*
 * Fetches the directory at url and fills the run's endpoint URLs.
 * 0, or -1 with err.
 */
int lg_fetch_directory(
    struct lg_run *run, const char *url, char *err, size_t errlen);
/* Frees what lg_fetch_directory filled in run. */
void lg_run_clear_directory(struct lg_run *run);

/*
 * Thread body: creates the account, waits at both barriers, then
 * loops issuances until the count or the deadline is reached. arg is the
 * struct lg_worker (borrowed). Returns NULL.
 */
void *lg_worker_main(void *arg);
/* Frees the worker's members (not the struct). */
void lg_worker_clear(struct lg_worker *w);

#endif /* ANVIL_LOADGEN_LG_H */
