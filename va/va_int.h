/*
 * va_int.h - internals of the VA shared between the va/ sources. Not for other
 * modules: they include va/va.h only.
 *
 * Threading: everything below runs on the VA loop thread, except the
 * submission queue (va->mu) and the job waiter used by va_validate.
 */
#ifndef ANVIL_VA_INT_H
#define ANVIL_VA_INT_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>

#include <ares.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "va/va.h"

/* ---------------- network policy (netpolicy.c) ---------------- */

struct va_cidr {
	int family; /* AF_INET / AF_INET6 */
	uint8_t addr[16];
	int bits;
};

struct va_netpolicy {
	int public_mode;
	struct va_cidr *allow;
	size_t n_allow;
};

/*
 * Fills *p (caller-owned) from the mode ("private"/"public", NULL =
 * private) and the borrowed CIDR strings. 0, or -1 with err naming the bad
 * entry (nothing left to free). Release with va_netpolicy_clear.
 */
int va_netpolicy_init(struct va_netpolicy *p, const char *mode,
    char *const *allow, size_t n, char *err, size_t errlen);
/* Frees what init allocated; NULL-safe, idempotent. */
void va_netpolicy_clear(struct va_netpolicy *p);
/* addr: 4 or 16 bytes by family (borrowed). 1 if the address may be
 * contacted, else 0 with a human reason in why. */
int va_netpolicy_allows(const struct va_netpolicy *p, int family,
    const uint8_t *addr, char *why, size_t whylen);
/* Parses "10.0.0.0/8" or "::1/128" (or a bare address) into the
 * caller's *out. 0 or -1. */
int va_cidr_parse(const char *s, struct va_cidr *out);
/* 1 if addr (same family, borrowed) lies inside c, else 0. */
int va_cidr_contains(const struct va_cidr *c, int family, const uint8_t *addr);

/* ---------------- URLs (url.c) ---------------- */

struct va_url {
	int https;
	char *host; /* lowercase name or canonical IP text (no brackets) */
	int host_is_ip;
	int family; /* for an IP host */
	uint8_t ip[16];
	int port;
	char *path; /* path + query, starts with '/' */
};

/*
 * Parses an absolute http(s) URL, or resolves `s` against `base` when it
 * starts with '/' or "//" (base may be NULL). s and base are borrowed;
 * *out is filled with owned strings (free with va_url_clear). 0, or -1
 * with err and *out left empty.
 */
int va_url_parse(const char *s, const struct va_url *base, struct va_url *out,
    char *err, size_t errlen);
/* Frees the strings in *u and zeroes it; NULL-safe. */
void va_url_clear(struct va_url *u);
/* "http://host[:port]/path" (port omitted when default). Caller frees. */
char *va_url_string(const struct va_url *u);

/* ---------------- DNS messages (dnsmsg.c) ---------------- */

enum va_dns_status {
	VA_DNS_OK,     /* answer with data */
	VA_DNS_NODATA, /* NOERROR, no records of the type */
	VA_DNS_NXDOMAIN,
	VA_DNS_SERVFAIL,
	VA_DNS_REFUSED,
	VA_DNS_TIMEOUT,
	VA_DNS_ERROR, /* anything else (see msg) */
	VA_DNS__MAX
};

struct va_caa_rr {
	int flags;
	char *tag;
	char *value;
};

struct va_dns_result {
	enum va_dns_status status;
	char msg[160]; /* human text for errors */
	int qtype;
	char *qname;      /* as asked */
	char *final_name; /* after CNAME following */
	/* A / AAAA */
	int *families;
	uint8_t (*addrs)[16];
	size_t naddrs;
	/* TXT */
	char **txt;
	size_t ntxt;
	/* CAA */
	struct va_caa_rr *caa;
	size_t ncaa;
	/* set when the answer ends in a CNAME whose target has no data
	 * in this message (the caller re-queries the target) */
	char *cname_target;
};

/* Frees every owned member and zeroes *r; NULL-safe. */
void va_dns_result_clear(struct va_dns_result *r);
/*
 * Extracts the records of qtype owned by qname from the response buf
 * (borrowed, len bytes), following CNAMEs inside the message. Appends owned
 * data to the caller's zeroed *res (free with va_dns_result_clear, also
 * after a failure). 0 with res->status OK or NODATA, or -1 with res->msg
 * on a malformed message or a CNAME loop.
 */
int va_dns_msg_extract(const unsigned char *buf, int len, const char *qname,
    int qtype, struct va_dns_result *res);
/* "NXDOMAIN", "SERVFAIL", "timeout" ... (static). */
const char *va_dns_status_name(enum va_dns_status s);

/* ---------------- DNS on the loop (dns.c) ---------------- */

struct va;
/* res is borrowed for the call. destroyed: the VA is shutting down. */
typedef void (*va_dns_cb)(void *arg, struct va_dns_result *res);

/* Creates va->ares on va->base from va->cfg. 0, or -1 with err (the
 * caller still calls va_dns_shutdown). Loop thread or before it runs. */
int va_dns_init(struct va *va, char *err, size_t errlen);
/* Destroys the channel (pending lookups call back with VA_DNS_ERROR) and
 * its events. After the loop thread has stopped. */
void va_dns_shutdown(struct va *va);
/* Starts a lookup on the loop thread (name borrowed; CNAMEs followed, up
 * to 8 re-queries). cb runs exactly once, possibly before this returns;
 * arg must stay valid until then. */
void va_dns_query(
    struct va *va, const char *name, int qtype, va_dns_cb cb, void *arg);

/* ---------------- connections (conn.c) ---------------- */

enum va_conn_err {
	VA_CONN_OK,
	VA_CONN_ECONNECT, /* could not connect */
	VA_CONN_ETLS,     /* TLS handshake failed */
	VA_CONN_EIO,      /* reset / read / write error */
	VA_CONN_EPROTO,   /* malformed HTTP response */
	VA_CONN__MAX
};

enum va_conn_phase {
	VA_PHASE_CONNECT,
	VA_PHASE_TLS,
	VA_PHASE_WRITE,
	VA_PHASE_READ,
	VA_PHASE_DONE,
	VA_PHASE__MAX
};

struct va_conn;
/* Called once. On VA_CONN_OK the conn holds the data/SSL for inspection. */
typedef void (*va_conn_cb)(
    void *arg, struct va_conn *c, enum va_conn_err e, const char *msg);

struct va_conn {
	struct va *va;
	int fd;
	SSL *ssl;
	struct event *ev;
	enum va_conn_phase phase;
	int want_write; /* the current wait is for writability */
	/* request */
	char *out;
	size_t outlen, outoff;
	int handshake_only; /* tls-alpn-01: stop after the handshake */
	int tls;
	char *sni;  /* owned, NULL = none */
	char *alpn; /* owned, NULL = none */
	/* response */
	char *in;
	size_t inlen, incap;
	struct va_http_resp resp;
	va_conn_cb cb;
	void *arg;
	struct event *ctimer; /* optional connect timeout */
	int64_t connect_timeout_ms;
	int sys_errno; /* errno behind an ECONNECT/ETLS/EIO failure, or 0 */
};

/*
 * Connects to addr:port (addr borrowed, 4 or 16 bytes by family); with tls
 * set, does a TLS (>= 1.2, no verification) handshake with optional SNI and
 * ALPN (copied). Then either calls back
 * (handshake_only) or sends `request` and reads an HTTP response. Returns
 * the conn (freed by va_conn_free, also allowed from inside cb) or NULL
 * with cb never called and msg in err. A connect() refused at once is
 * reported through cb too (from the loop, with c->sys_errno set).
 */
struct va_conn *va_conn_start(struct va *va, int family, const uint8_t *addr,
    int port, int tls, const char *sni, const char *alpn, const char *request,
    int handshake_only, va_conn_cb cb, void *arg, char *err, size_t errlen);
void va_conn_free(struct va_conn *c);
/*
 * Fails the connect with VA_CONN_ECONNECT if the TCP handshake has not
 * completed within ms (used when another address family can be tried, so a
 * black-holed IPv6 route does not eat the whole validation budget).
 * 0, or -1 if the timer cannot be armed (the connect goes on without it).
 */
int va_conn_connect_timeout(struct va_conn *c, int64_t ms);

/* ---------------- jobs (va.c, http01.c, tlsalpn.c, dns01.c, caa.c) */

enum va_job_kind { VA_JOB_VALIDATE, VA_JOB_CAA, VA_JOB__MAX };

struct va_job {
	struct va *va;
	int refs;
	int finished;
	enum va_job_kind kind;
	/* request (owned copies) */
	enum ident_type itype;
	char *ident;
	int ip_family;
	uint8_t ip[16];
	int wildcard;
	enum chal_type chal;
	char *token;
	char *keyauth;
	char *account_uri;
	char *caa_method;
	json_t *persist; /* dns-persist-01 parameters (owned copy) */
	json_t *payload; /* challenge response object (owned ref) or NULL */
	char *tk_x5u_pem; /* tkauth-01: the fetched x5u chain (owned) or NULL */
	int check_caa;
	char *rid;
	int64_t timeout_ms;
	int64_t started_ms;
	/* result */
	json_t *record;
	struct problem *prob;
	/* completion */
	va_done_fn done;
	void *done_arg;
	struct event *timer;   /* validation timeout */
	struct event *sleeper; /* test sleep */
	struct event *retry_ev; /* backoff before a connection retry */
	void (*retry_fn)(struct va_job *j);
	int conn_retries; /* retries made so far (va_job_retry_conn) */
	/* in-progress network state */
	struct va_conn *conn;
	const char *stage; /* for timeout messages: "connect" ... */
	json_t *hop;       /* current record entry (borrowed from record) */
	/* resolution of the current host */
	int dns_pending;
	char *dns_host;
	int naddr;
	int addr_family[2]; /* [0] first IPv6, [1] first IPv4 */
	uint8_t addr_raw[2][16];
	int have_addr[2];
	int addr_try; /* index into the two */
	struct va_dns_result dns_err[2];
	/* http-01 */
	struct va_url url;
	int redirects;
	char *seen[12];
	/* caa */
	char *caa_name;               /* current name of the tree climb */
	/* email-reply-00 (email.c): its state, owned */
	struct va_email_job *email;
	/* bp-nodeid-00 (bpnodeid.c): its state, owned */
	struct va_bp_job *bp;
	struct va_job *next;          /* submission queue */
	struct va_job *rprev, *rnext; /* va->running (started, unfinished) */
};

struct va_fdev {
	int fd;
	struct event *ev;
	struct va_fdev *next;
};

struct va {
	const struct va_config *cfg;
	struct metrics *metrics;
	struct va_netpolicy policy;
	struct event_base *base;
	pthread_t thread;
	int thread_started;
	int wake_fd;
	struct event *wake_ev;
	pthread_mutex_t mu;
	struct va_job *q_head, *q_tail;
	struct va_job *running; /* loop thread only */
	int stopping;
	int inflight;          /* guarded by mu */
	struct event *beat_ev; /* 1 s heartbeat of the loop */
	int64_t beat_ms;       /* atomic: last heartbeat (monotonic) */
	/* c-ares */
	ares_channel ares;
	int ares_ok;
	struct event *ares_timer;
	struct va_fdev *fdevs;
	SSL_CTX *ssl_ctx;
	struct va_mpic *mpic; /* remote perspectives; NULL: single */
	struct va_attest *attest; /* device-attest-01 roots */
	struct va_email *email; /* email-reply-00 (email.c); NULL: off */
	struct va_rats *rats;   /* remote-attest-01; NULL: no "rats" */
	struct va_tkauth *tkauth; /* tkauth-01 Token Authority roots */
	struct va_bp *bp; /* bp-nodeid-00 (bpnodeid.c); NULL: off */
};

/* ---------------- multi-perspective corroboration (remote.c) -------- */

struct va_mpic;
/*
 * The remote perspectives of a primary VA (cfg borrowed, must outlive it;
 * metrics may be NULL). NULL without err when cfg has none (or is a
 * remote); NULL with err when a client cannot be made.
 */
struct va_mpic *va_mpic_new(const struct va_config *cfg,
    struct metrics *metrics, char *err, size_t errlen);
/* Waits for calls still running, then frees. NULL-safe. */
void va_mpic_free(struct va_mpic *m);
/* Number of remote perspectives (0 for NULL). */
size_t va_mpic_remotes(const struct va_mpic *m);
/*
 * Asks every remote perspective to repeat what the primary just passed
 * (caa: va.remote_check_caa, else va.remote_validate) with params
 * (borrowed, the call's own params) and waits until the quorum is decided
 * or the budget (mpic.remote_timeout, capped by deadline_ms, wall-clock
 * epoch ms, 0 = none) runs out. Appends one entry per perspective to
 * records (borrowed JSON array). 0 when corroborated; -1 with *prob
 * (caller frees; caa, unauthorized or serverInternal, one subproblem per
 * failing perspective) when not. Blocking: never on the VA loop thread.
 */
int va_mpic_corroborate(struct va_mpic *m, int caa, const json_t *params,
    const char *ident_type, const char *ident_value, const char *rid,
    int64_t deadline_ms, json_t *records, struct problem **prob);

/* Ends a job with prob (taken; NULL = valid). Idempotent. */
void va_job_finish(struct va_job *j, struct problem *prob);
void va_job_ref(struct va_job *j);
void va_job_unref(struct va_job *j);

/*
 * RFC 8555 §8.2 lets the server retry: a connection that was refused or
 * reset (sys_errno ECONNREFUSED / ECONNRESET; msg borrowed, the failure's
 * text) is tried again by calling again(j) after a backoff (250 ms,
 * doubling), at most cfg->connect_retries times and only while the
 * validation deadline leaves time for another attempt. Each failed attempt
 * is recorded in the current hop's "attempts". 1 if a retry was
 * scheduled (the caller must not finish j), else 0.
 */
int va_job_retry_conn(struct va_job *j, int sys_errno, const char *msg,
    void (*again)(struct va_job *j));
/*
 * A connection of j failed (as for va_job_retry_conn): after a failed IPv6
 * address, again(j) tries the IPv4 one at once; else a retry as
 * va_job_retry_conn schedules it. 1 if either happened (the caller must
 * not finish j), else 0 (the caller finishes j with its problem).
 */
int va_job_conn_next(struct va_job *j, int sys_errno, const char *msg,
    void (*again)(struct va_job *j));
/*
 * A connection of j to target (borrowed, as the problem names it) on port
 * failed with msg: va_job_conn_next, else j finishes with the connection
 * problem naming the address tried; purpose (e.g. " for tls-alpn-01", or
 * "") says what the connection was for.
 */
void va_job_conn_failed(struct va_job *j, int sys_errno, const char *msg,
    void (*again)(struct va_job *j), const char *target, int port,
    const char *purpose);

/* Resolves j->dns_host (A + AAAA) then calls next(j) or finishes j with a
 * dns problem. Records addresses_resolved on j->hop when set. */
void va_job_resolve(
    struct va_job *j, const char *host, void (*next)(struct va_job *j));
/* Records the address of slot (0 IPv6, 1 IPv4) in the current hop's
 * "addresses_tried" (an attempt that failed before a fallback). */
void va_job_note_tried(struct va_job *j, int slot);
/* The address slot (0 IPv6, 1 IPv4) the next connection of j uses: IPv6
 * first when the name has one. Records it as the hop's "address_used". */
int va_job_addr_slot(struct va_job *j);
/*
 * Starts j->conn (va_conn_start with arg j) to the address of the next slot
 * (va_job_addr_slot) on port; an IPv6 attempt gets a third of the job's
 * time to connect, leaving the rest for the IPv4 fallback. 0, or -1 with
 * the reason in err (cb is then never called).
 */
int va_job_dial(struct va_job *j, int port, int tls, const char *sni,
    const char *alpn, const char *request, int handshake_only, va_conn_cb cb,
    char *err, size_t errlen);
/* Human text of an address. buf >= 64. */
const char *va_addr_str(
    int family, const uint8_t *raw, char *buf, size_t buflen);

void va_http01_start(struct va_job *j);
void va_tlsalpn01_start(struct va_job *j);
void va_dns01_start(struct va_job *j);
/* dns-account-01: TXT at <label>._acme-challenge.<name> (dns01.c). */
void va_dnsaccount01_start(struct va_job *j);
/* Finishes j with the problem of a TXT lookup that did not answer
 * (NODATA, NXDOMAIN, SERVFAIL, timeout, other); res borrowed. */
void va_dns01_txt_failure(struct va_job *j, struct va_dns_result *res);
/*
 * Queries TXT at name (borrowed) for j, noting it in j's record and
 * j->dns_host; cb gets the answer with a reference to j (dns01.c).
 */
void va_dns01_txt_query(struct va_job *j, const char *name, va_dns_cb cb);
/* dns-persist-01: the persistent TXT at _validation-persist.<name>. */
void va_dnspersist01_start(struct va_job *j);
/* onion-csr-01 (onion.c): checks j->csr at once, then finishes j. */
void va_onioncsr01_start(struct va_job *j);
/*
 * RFC 9799 §3.2 steps 1-5 for the CSR csr_b64 (base64url DER) answering
 * the onion-csr-01 challenge with token (the nonce's base64url) for the
 * normalised .onion name (wildcard: its base name); every argument
 * borrowed. NULL when it passes, else the problem (caller frees): badCSR
 * (not a CSR), incorrectResponse (wrong key, signature or nonces),
 * malformed (not a v3 .onion name).
 */
struct problem *va_onion_csr_check(
    const char *name, const char *token, const char *csr_b64);
/*
 * RFC 9799 §6.4: evaluates the in-band CAA record set caa (the "caa"
 * string of onionCAA, one "caa <flags> <tag> <value>" per line; NULL or
 * empty: no records) of the .onion name as RFC 8659 / RFC 8657 would a
 * DNS RRset, with cfg's CAA identities. Borrows everything. 1 when
 * issuance is permitted, else 0 with *prob (caa; caller frees).
 */
int va_onion_caa_eval(const struct va_config *cfg, const char *name,
    const char *caa, int wildcard, const char *account_uri,
    const char *method, struct problem **prob);
/* Checks a va_request's persist object (borrowed): 0, or -1 with *prob
 * (malformed) naming what is missing. */
int va_persist_check_params(const json_t *persist, struct problem **prob);
/*
 * Evaluates one _validation-persist TXT string (borrowed) against persist
 * (borrowed) at time now_s for a wildcard authorization or not. 0 when it
 * satisfies every rule of draft-ietf-acme-dns-persist §4.1-4.2 and §5,
 * with *until the persistUntil value (0 = none); 1 when its issuer is not
 * one of ours (the record is ignored); -1 when it is ours but does not
 * satisfy them, with *prob saying why (malformed for a bad persistUntil or
 * an unaccepted hash algorithm, unauthorized otherwise).
 */
int va_persist_eval(const char *txt, const json_t *persist, int wildcard,
    int64_t now_s, int64_t *until, struct problem **prob);
/* The challenge passed: run CAA when asked (DNS identifiers), else
 * finish the job as valid. */
void va_job_validated(struct va_job *j);
/* CAA tree climb for j->ident; finishes j. */
void va_caa_start(struct va_job *j);
/*
 * Evaluates one CAA RRset (RFC 8659 §4, RFC 8657). Returns 1 if issuance
 * is permitted, else 0 with the reason in why.
 */
int va_caa_evaluate(const struct va_caa_rr *rrs, size_t n, int wildcard,
    char *const *identities, size_t nidentities, const char *account_uri,
    const char *method, char *why, size_t whylen);

/* Builds the key authorization digest (b64url SHA-256). Caller frees. */
char *va_keyauth_digest(const char *keyauth);

/* ---------------- bounded CBOR (cbor_item.c) ------------------------- */

/* What one CBOR item head is (cbor_item.c). */
enum va_cbor_kind {
	VA_CBOR_UINT,   /* v: the value */
	VA_CBOR_NEG,    /* v: the encoded value n of -1 - n */
	VA_CBOR_BSTR,   /* definite byte string: s/n */
	VA_CBOR_TSTR,   /* definite text string: s/n (not checked as UTF-8) */
	VA_CBOR_ARRAY,  /* definite array of v items */
	VA_CBOR_IARRAY, /* indefinite-length array start */
	VA_CBOR_MAP,    /* definite map of v pairs */
	VA_CBOR_BREAK,  /* the "break" of an indefinite item */
	VA_CBOR_SIMPLE, /* false, true (v 0/1) or null */
	VA_CBOR_BAD, /* indefinite strings or maps, tags, floats, undefined */
};

struct va_cbor_item {
	enum va_cbor_kind kind;
	uint64_t v;
	const uint8_t *s; /* borrowed from the buffer given to va_cbor_next */
	size_t n;
};

/*
 * Decodes the head of the CBOR item at buf (len bytes, borrowed; a string
 * comes with its data) into *it. The bytes read, or 0 when the data is
 * not well-formed or ends inside the item.
 */
size_t va_cbor_next(const uint8_t *buf, size_t len, struct va_cbor_item *it);

/* ---------------- device-attest-01 (attest*.c) ---------------------- */

#define VA_ATT_MAX_LEN 65536 /* bytes of an attObj */
#define VA_ATT_MAX_X5C 8     /* certificates in attStmt.x5c */
#define VA_ATT_N_FMTS 4      /* formats with roots: tpm apple packed android-key */

/*
 * A decoded attestation object (draft-ietf-acme-device-attest §5,
 * WebAuthn §6.5.4). Byte strings point into the buffer given to
 * va_attobj_parse (borrowed; NULL/0 when absent).
 */
struct va_attobj {
	char fmt[32];
	char ver[8];   /* attStmt.ver (tpm: "2.0") */
	int has_alg;   /* attStmt.alg present */
	int64_t alg;   /* COSE algorithm: -7 ES256, -257 RS256 */
	int has_att_stmt;
	const uint8_t *x5c[VA_ATT_MAX_X5C];
	size_t x5c_len[VA_ATT_MAX_X5C];
	size_t n_x5c;
	const uint8_t *sig;
	size_t sig_len;
	const uint8_t *cert_info; /* tpm: TPMS_ATTEST */
	size_t cert_info_len;
	const uint8_t *pub_area; /* tpm: TPMT_PUBLIC of the attested key */
	size_t pub_area_len;
	const uint8_t *auth_data;
	size_t auth_data_len;
};

/*
 * Decodes len bytes at buf (borrowed; must outlive *out) as an attestation
 * object under strict bounds (attest_cbor.c). 0, or -1 with the reason in
 * err (out zeroed).
 */
int va_attobj_parse(const uint8_t *buf, size_t len, struct va_attobj *out,
    char *err, size_t errlen);

/* The attestation roots of each format (va.json "attestation"). */
struct va_attest;
/* Loads the configured roots (cfg borrowed). NULL with err on a bad file;
 * an empty set (no formats) when none are configured. */
struct va_attest *va_attest_new(const struct va_config *cfg, char *err,
    size_t errlen);
void va_attest_free(struct va_attest *a);

/* What a verified statement proves (attest.c fills, caller clears). */
struct va_att_result {
	json_t *idents;        /* [{type, value}] the statement names (owned) */
	uint8_t spki_sha256[32]; /* the attested key's SubjectPublicKeyInfo */
	int have_key;
};

/*
 * Format verifiers: a, o borrowed; keyauth / token the challenge's. 0 and
 * res filled, or -1 with the reason in err (badAttestationStatement).
 */
int va_attest_tpm(const struct va_attest *a, const struct va_attobj *o,
    const char *keyauth, struct va_att_result *res, char *err, size_t errlen);
int va_attest_apple(const struct va_attest *a, const struct va_attobj *o,
    const char *token, struct va_att_result *res, char *err, size_t errlen);
/*
 * A TPM2_Quote (RATS evidence): o's x5c[0] is an AK certificate chaining
 * to the tpm roots with the AIK EKU, o->sig (alg -7 DER ECDSA / -257
 * PKCS#1) its signature over o->cert_info, a TPMS_ATTEST of type QUOTE
 * whose extraData is SHA-256(nonce). 0 with *pcr_digest (borrowed from
 * o->cert_info), or -1 with err.
 */
int va_attest_tpm_quote(const struct va_attest *a, const struct va_attobj *o,
    const char *nonce, const uint8_t **pcr_digest, size_t *pcr_digest_len,
    char *err, size_t errlen);
int va_attest_packed(const struct va_attest *a, const struct va_attobj *o,
    const char *keyauth, struct va_att_result *res, char *err, size_t errlen);
int va_attest_android(const struct va_attest *a, const struct va_attobj *o,
    const char *keyauth, struct va_att_result *res, char *err, size_t errlen);
/* The lowest android-key security level accepted (VA_AKD_*). */
int va_attest_android_level(const struct va_attest *a);

/*
 * The Android Key Attestation extension (OID 1.3.6.1.4.1.11129.2.1.17,
 * KeyDescription) as attest_android.c reads it: only what the checks use.
 * Identifier values are copied ("" when absent).
 */
enum { VA_AKD_SOFTWARE, VA_AKD_TEE, VA_AKD_STRONGBOX };
#define VA_AKD_MAX_PURPOSES 8
#define VA_AKD_MAX_ID 64 /* bytes of an attestationId* value */
struct va_akd_list {          /* one AuthorizationList */
	size_t n_purpose;         /* [1] purpose: SET OF INTEGER */
	int64_t purpose[VA_AKD_MAX_PURPOSES];
	int has_purpose;
	int has_origin; /* [702] origin */
	int64_t origin;
	int all_applications; /* [600] allApplications present */
	char serial[VA_AKD_MAX_ID + 1]; /* [713] attestationIdSerial */
	char imei[VA_AKD_MAX_ID + 1];   /* [714] attestationIdImei */
	char meid[VA_AKD_MAX_ID + 1];   /* [715] attestationIdMeid */
};
struct va_akd {
	int64_t att_version;
	int att_level; /* attestationSecurityLevel (VA_AKD_*) */
	int km_level;  /* keymasterSecurityLevel / keyMintSecurityLevel */
	uint8_t challenge[128]; /* attestationChallenge (at most 128 bytes) */
	size_t challenge_len;
	struct va_akd_list sw, tee; /* softwareEnforced, teeEnforced */
};
/* Parses len DER bytes at der (borrowed) as a KeyDescription, bounded:
 * the exact length, known fields typed, no duplicate field the checks
 * read. 0, or -1 with the reason in err (out zeroed). */
int va_akd_parse(const uint8_t *der, size_t len, struct va_akd *out,
    char *err, size_t errlen);
/* "software" / "tee" (also NULL) / "strongbox" → VA_AKD_*, else -1. */
int va_android_level_parse(const char *s);
/* The name of VA_AKD_* level (static). */
const char *va_android_level_name(int level);
/* Shared helpers (attest.c) */
/* res gets key's (borrowed) SPKI hash and the device identifiers of x's
 * (borrowed; NULL: none) otherNames. 0, or -1 when key cannot be encoded. */
int va_attest_result_set(struct va_att_result *res, EVP_PKEY *key, X509 *x);
/* o->sig (alg -7 DER ECDSA / -257 PKCS#1 v1.5, SHA-256) by x's key over
 * len bytes at data: 1 valid, 0 not. */
int va_attest_sig_ok(X509 *x, const struct va_attobj *o, const uint8_t *data,
    size_t len);
/* One DER certificate that is exactly n (1..max) bytes at d; new, or NULL. */
X509 *va_der_cert(const uint8_t *d, size_t n, size_t max);
/* leaf with the intermediates in chain (both borrowed) to roots: 1 trusted,
 * 0 not (*why: OpenSSL's static reason), -1 could not be set up. */
int va_chain_verify(X509_STORE *roots, X509 *leaf, STACK_OF(X509) *chain,
    const char **why);
/* o's x5c chained to the roots of format fmt: the leaf (new) or NULL. */
X509 *va_attest_chain(const struct va_attest *a, const char *fmt,
    const struct va_attobj *o, char *err, size_t errlen);
/* packed / android-key: o has alg and sig, an x5c chaining to o->fmt's
 * roots, and sig is x5c[0]'s signature over keyauth. The leaf (new
 * reference) or NULL with err. */
X509 *va_attest_x5c_signed(const struct va_attest *a,
    const struct va_attobj *o, const char *keyauth, char *err,
    size_t errlen);
int va_attest_spki_hash(EVP_PKEY *k, uint8_t out[32]);
void va_attest_san_idents(X509 *x, json_t *idents);
/* device-attest-01: verifies j->payload's attObj; finishes j. */
void va_deviceattest01_start(struct va_job *j);

/* ---------------- remote-attest-01 (rats*.c) ------------------------ */
/* draft-ietf-acme-rats: trusted Verifier keys and appraisal policy
 * (va.json "rats"). */
struct va_rats;
struct jwk;

/* What a verifier concluded about one message. */
struct va_rats_verdict {
	char status[24];   /* AR4SI tier: affirming, none, warning, ... */
	char where[80];    /* which part got that tier (a submodule) */
	char verifier[160]; /* who appraised (which trusted key / AK) */
};

/*
 * The verifier interface: one per media type of CMW record. verify
 * appraises len bytes at msg (borrowed) that must be fresh for nonce (the
 * challenge's freshness_nonce) and may use hint (the remote-attestation
 * identifier's value). 0 with *v filled (the caller judges v->status), or
 * -1 with the reason in err (untrusted, stale, malformed).
 */
struct va_rats_verifier {
	const char *media_type; /* CMW record type, without parameters */
	const char *model;      /* RFC 9334: "passport" / "background-check" */
	int (*verify)(const struct va_rats *r, const uint8_t *msg, size_t len,
	    const char *nonce, const char *hint, struct va_rats_verdict *v,
	    char *err, size_t errlen);
};

/* Checks the "rats" object (borrowed, NULL: absent) without loading
 * files. 0, or -1 with err naming the key. */
int va_rats_config_check(const json_t *o, char *err, size_t errlen);
/* Loads the "rats" object (borrowed): NULL with err on failure. */
struct va_rats *va_rats_new(const json_t *o, const struct va_attest *attest,
    char *err, size_t errlen);
void va_rats_free(struct va_rats *r);
/* The trusted Verifier keys (borrowed), *n of them. */
struct jwk *const *va_rats_keys(const struct va_rats *r, size_t *n);
/* rats.max_age in ms. */
int64_t va_rats_max_age_ms(const struct va_rats *r);
/* The device-attest-01 roots (borrowed): AK CAs for TPM quotes. */
const struct va_attest *va_rats_attest(const struct va_rats *r);
/* rats.tpm_pcr_digests: -1 when none is configured, 1 when hex (lowercase)
 * is one of them, else 0. */
int va_rats_pcr_digest_known(const struct va_rats *r, const char *hex);
/* Background-check model: TPM2_Quote evidence (rats_tpm.c). */
int va_rats_tpm_verify(const struct va_rats *r, const uint8_t *msg,
    size_t len, const char *nonce, const char *hint,
    struct va_rats_verdict *v, char *err, size_t errlen);
/* 1 if an AR4SI tier is acceptable under r's policy. */
int va_rats_status_ok(const struct va_rats *r, const char *status);
/* Passport model: an EAR (EAT attestation result JWT, rats_ear.c). */
int va_rats_ear_verify(const struct va_rats *r, const uint8_t *msg,
    size_t len, const char *nonce, const char *hint,
    struct va_rats_verdict *v, char *err, size_t errlen);
/* remote-attest-01: appraises j->payload's CMW collection; finishes j. */
void va_remoteattest01_start(struct va_job *j);
/* ---------------- messages and DKIM (dkim.c) ---------------- */

struct va_mail_hdr {
	char *name; /* as written */
	char *raw;  /* "Name: value", folded lines joined by CRLF, no final
		       CRLF */
};

struct va_mail {
	struct va_mail_hdr *h;
	size_t nh;
	char *body; /* lines ended by CRLF */
	size_t body_len;
};

/*
 * Parses an Internet message (RFC 5322; CRLF or bare LF line ends, as in
 * a maildir file) into the caller's *m (free with va_mail_clear). data
 * borrowed. 0, or -1 when it is not a message (NUL bytes, a header line
 * without a colon, more than 500 fields).
 */
int va_mail_parse(const char *data, size_t len, struct va_mail *m);
void va_mail_clear(struct va_mail *m);
/* The first field called name (case-insensitive), borrowed; or NULL. */
const struct va_mail_hdr *va_mail_find(
    const struct va_mail *m, const char *name);
/* How many fields are called name. */
size_t va_mail_count(const struct va_mail *m, const char *name);
/* A field's value unfolded and trimmed: malloc'd. */
char *va_mail_value(const struct va_mail_hdr *h);

/* A parsed DKIM-Signature field (RFC 6376 §3.5); strings owned. */
struct va_dkim_sig {
	const struct va_mail_hdr *hdr; /* borrowed from the message */
	char *v, *a, *c, *d, *s, *h, *bh, *b, *l, *x;
	int relaxed_hdr, relaxed_body;
};

/* Fills *s from field h (borrowed; must outlive *s). 0, or -1 with err
 * (missing tags, an algorithm other than rsa-sha256, an l= limit). */
int va_dkim_sig_parse(const struct va_mail_hdr *h, struct va_dkim_sig *s,
    char *err, size_t errlen);
void va_dkim_sig_clear(struct va_dkim_sig *s);
/* 1 when the h= tag of s lists the field name. */
int va_dkim_signs_header(const struct va_dkim_sig *s, const char *name);
/* 1 when bh= is the hash of m's canonical body (§3.7), else 0. */
int va_dkim_body_hash_ok(const struct va_mail *m, const struct va_dkim_sig *s);
/* Verifies the signature over m's header fields with key (borrowed). 0, or
 * -1 with err. */
int va_dkim_verify(const struct va_mail *m, const struct va_dkim_sig *s,
    EVP_PKEY *key, char *err, size_t errlen);
/* The RSA key of a DKIM key record (§3.6.1 "v=DKIM1; k=rsa; p=..."), or
 * NULL with err. Caller frees. */
EVP_PKEY *va_dkim_key_from_txt(const char *txt, char *err, size_t errlen);
/*
 * A "DKIM-Signature: ..." field (malloc'd, no CRLF) signing m (borrowed)
 * with key for d=domain s=selector, relaxed/relaxed, over the fields named
 * in hlist ("from:to:subject"); NULL when signing failed.
 */
char *va_dkim_sign(const struct va_mail *m, EVP_PKEY *key, const char *domain,
    const char *selector, const char *hlist, int64_t now);

/* ---------------- email-reply-00 (email.c) ---------------- */

struct va_email;
struct va_email_job;
/*
 * The VA's email-reply-00 state from cfg->email_* (token secret, DKIM
 * signing key): 0 with *out (NULL when the VA has no "email" section), or
 * -1 with err naming the bad key. Free with va_email_free.
 */
int va_email_new(const struct va_config *cfg, struct va_email **out,
    char *err, size_t errlen);
void va_email_free(struct va_email *e);
/* Frees a job's email state; NULL-safe. */
void va_email_job_free(struct va_email_job *ej);
/* The email-reply-00 module (loop thread): waits for the reply in the
 * maildir and checks it. */
void va_emailreply00_start(struct va_job *j);

/* Decodes standard base64 (RFC 4648 §4, padded), ignoring whitespace, into
 * *out (malloc'd, caller frees) / *outlen (dkim.c). 0 or -1. */
int va_b64_decode(const char *s, uint8_t **out, size_t *outlen);

/* ---------------- tkauth-01, RFC 9447 / RFC 9448 (tkauth.c) -------- */
/* The Token Authority roots and policy (va.json "tkauth"). */
struct va_tkauth;
/* From cfg (borrowed); a value even without roots (every token is then
 * refused). NULL with err naming the bad key. */
struct va_tkauth *va_tkauth_new(
    const struct va_config *cfg, char *err, size_t errlen);
void va_tkauth_free(struct va_tkauth *t);
/*
 * tkauth-01 with a token that names its signer by "x5u" only: fetches the
 * PEM chain (https, a tkauth.x5u_allow prefix, tkauth.x5u_ca, no
 * redirects, 64 KiB, timeout_ms capped at 10 s). payload borrowed. 0 with
 * *pem (caller frees) or with *pem NULL when there is nothing to fetch (no
 * token, an "x5c", no roots: the loop reports those); -1 with *prob
 * (caller frees, unauthorized). Blocking: never on the VA loop thread.
 */
int va_tkauth_x5u_fetch(const struct va_tkauth *t, const json_t *payload,
    int64_t timeout_ms, char **pem, struct problem **prob);
/* tkauth-01: verifies j->payload's "atc" Authority Token; finishes j. */
void va_tkauth01_start(struct va_job *j);
/* ---------------- bp-nodeid-00 (bpnodeid.c, RFC 9891) ---------------- */

struct va_bp;
struct va_bp_job;
/*
 * The "bp" section of cfg (borrowed) checked and loaded into *out (NULL
 * when there is none: bp-nodeid-00 is off). 0, or -1 with err naming the
 * bad key (bp.routes."<node id>" for a bad route).
 */
int va_bp_new(const struct va_config *cfg, struct va_bp **out, char *err,
    size_t errlen);
void va_bp_free(struct va_bp *bp);
/*
 * RFC 9891 §4.1.2: the response interval for the client's response object
 * payload (borrowed, may be NULL): twice its "rtt" or bp.response_interval,
 * within bp.min_interval..bp.max_interval; plus the connect budget in
 * *connect_ms. -1 with *prob (malformed) when "rtt" is not a number >= 0
 * or bp is NULL (off).
 */
int64_t va_bp_interval(const struct va_bp *bp, const json_t *payload,
    int64_t *connect_ms, struct problem **prob);
/* Closes and frees a job's BP state; NULL-safe. */
void va_bp_job_free(struct va_bp_job *bj);
/* Sends the Challenge Bundle and checks the Response Bundle. */
void va_bpnodeid00_start(struct va_job *j);

/* "bp.<key>: <why>" into err; -1. */
int va_bp_bad(char *err, size_t errlen, const char *key, const char *why);
/* BPSec for bp-nodeid-00 (bpbib.c): va.json bp.bib, keys and trust. */
struct va_bp_bib;
struct bp_acme;
struct bp_bib_sign;
/*
 * bp.bib (borrowed o) checked and loaded into *out: named HMAC keys, the
 * key of the VA's BIB, whose security source is va_node (borrowed, must
 * outlive *out), and the trusted security sources. 0, or -1 with err
 * naming the bad key.
 */
int va_bp_bib_new(const json_t *o, const char *va_node, struct va_bp_bib **out,
    char *err, size_t errlen);
void va_bp_bib_free(struct va_bp_bib *bb);
/* How the Challenge Bundle's BIB is made (borrowed from bb). */
const struct bp_bib_sign *va_bp_bib_signer(const struct va_bp_bib *bb);
/*
 * RFC 9891 §4.3.2's BIB check of the decoded Response Bundle r (borrowed)
 * for the Node ID node: no BCB, every BIB that can be checked verifies,
 * and one from a source trusted for node covers the primary block and the
 * payload. 0 with the security source in src, or -1 with the reason (to
 * follow "The Response Bundle from X ") in why.
 */
int va_bp_bib_check(const struct va_bp_bib *bb, const struct bp_acme *r,
    const char *node, char *src, size_t srclen, char *why, size_t whylen);

#endif /* ANVIL_VA_INT_H */
