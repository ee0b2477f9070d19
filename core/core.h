/*
 * core.h - shared building blocks of every Anvil process.
 *
 * Logging, ACME problem documents, base64url, time and duration helpers,
 * identifier normalisation, declarative JSON parsing (config files and
 * request bodies), a Prometheus metrics registry and the per-process debug
 * HTTP server (/metrics, /healthz).
 *
 * Ownership: functions named *_new return an object the caller frees with the
 * matching *_free (NULL is a no-op). Strings returned as `char *` are malloc'd
 * and freed by the caller with free() unless the comment says "static".
 */
#ifndef ANVIL_CORE_H
#define ANVIL_CORE_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>
#include <openssl/types.h>

#define ANVIL_VERSION "0.1.0"

/* ------------------------------------------------------------------ */
/* Memory                                                               */
/* ------------------------------------------------------------------ */

/* Allocation that aborts on out-of-memory: memory safety is at stake. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a new malloc'd string (aborts on OOM). */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A mutex, condition variable or read-write lock with default attributes;
 * aborts when the system has no resources left to make one (as the
 * allocators above do on out-of-memory). */
void xmutex_init(pthread_mutex_t *m);
void xcond_init(pthread_cond_t *c);
void xrwlock_init(pthread_rwlock_t *l);

/* ------------------------------------------------------------------ */
/* Logging                                                              */
/* ------------------------------------------------------------------ */

enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR,
	LOG_LEVEL__MAX
};

/*
 * Set once from main() before any thread starts: the program name printed
 * on every line and the minimum level. Not thread-safe by design (it is the
 * process's only configuration that lives outside a context struct).
 */
void log_init(const char *progname, enum log_level min_level);
/* Parse "debug"/"info"/"warn"/"error"; returns -1 if unknown. */
int log_level_parse(const char *s, enum log_level *out);

/*
 * Line format. JSON: one object per line with "time", "level" (DEBUG, INFO,
 * WARN, ERROR or AUDIT), "program", "rid" (request id, when there is one),
 * "audit": true and "event" on audit lines, "msg" (the text line's message)
 * and every key=value word of the message as a string field ("serial",
 * "account", "reason", ...). log_init() reads ANVIL_LOG_FORMAT ("text" or
 * "json"), which wins over the config key log_format (config_load_file).
 */
enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON };
/* Parse "text"/"json"; returns -1 if unknown. */
int log_format_parse(const char *s, enum log_format *out);
/* Sets the format unless ANVIL_LOG_FORMAT chose one. Before threads. */
void log_set_format(enum log_format f);

/*
 * One line on stderr: "<time> <prog> <LEVEL> [rid=<request id>] message".
 * request_id may be NULL. Thread-safe (one write(2) per line).
 */
void log_msg(enum log_level lvl, const char *request_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vmsg(
    enum log_level lvl, const char *request_id, const char *fmt, va_list ap);
/*
 * Audit event: always printed regardless of level, marked "AUDIT" so that
 * `grep ' AUDIT '` extracts them. `event` is a short name such as
 * "issuance", the rest a printf message of key=value pairs.
 */
void log_audit(const char *request_id, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, NULL, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, NULL, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, NULL, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, NULL, __VA_ARGS__)
/* A broken invariant: logs file:line. */
#define log_bug(fmt, ...)                                                      \
	log_msg(LOG_LEVEL_ERROR, NULL, "BUG %s:%d: " fmt, __FILE__, __LINE__,  \
	    ##__VA_ARGS__)

/* ------------------------------------------------------------------ */
/* ACME problems (RFC 7807 + RFC 8555 §6.7)                            */
/* ------------------------------------------------------------------ */

/*
 * One registry of problem codes. The short name (e.g. "badNonce") is what
 * travels over RPC; the URN and HTTP status are what the WFE sends.
 * PROB_NOT_FOUND is internal: it is sent as "malformed" with status 404.
 */
enum prob_type {
	PROB_ACCOUNT_DOES_NOT_EXIST,
	PROB_ALREADY_REPLACED,
	PROB_ALREADY_REVOKED,
	PROB_BAD_CSR,
	PROB_BAD_NONCE,
	PROB_BAD_PUBLIC_KEY,
	PROB_BAD_REVOCATION_REASON,
	PROB_BAD_SIGNATURE_ALGORITHM,
	PROB_CAA,
	PROB_COMPOUND,
	PROB_CONNECTION,
	PROB_DNS,
	PROB_EXTERNAL_ACCOUNT_REQUIRED,
	PROB_INCORRECT_RESPONSE,
	PROB_INVALID_CONTACT,
	PROB_INVALID_PROFILE,
	PROB_MALFORMED,
	PROB_ORDER_NOT_READY,
	PROB_RATE_LIMITED,
	PROB_REJECTED_IDENTIFIER,
	PROB_SERVER_INTERNAL,
	PROB_TLS,
	PROB_UNAUTHORIZED,
	PROB_UNSUPPORTED_CONTACT,
	PROB_UNSUPPORTED_IDENTIFIER,
	PROB_USER_ACTION_REQUIRED,
	PROB_CONFLICT,           /* internal name; urn malformed, status 409 */
	PROB_NOT_FOUND,          /* internal name; urn malformed, status 404 */
	PROB_METHOD_NOT_ALLOWED, /* internal name; urn malformed, status 405 */
	PROB_UNAVAILABLE, /* internal name; urn serverInternal, status 503 */
	PROB_ONION_CAA_REQUIRED, /* RFC 9799 §7.2 onionCAARequired */
	PROB_BAD_ATTESTATION_STATEMENT, /* draft-ietf-acme-device-attest §5 */
	/* RFC 8739 §5 (STAR) */
	PROB_AUTO_RENEWAL_CANCELED,
	PROB_AUTO_RENEWAL_EXPIRED,
	PROB_AUTO_RENEWAL_CANCELLATION_INVALID,
	PROB_AUTO_RENEWAL_REVOCATION_NOT_SUPPORTED,
	PROB_UNKNOWN_DELEGATION, /* RFC 9115 §2.3.1.3 */
	PROB__MAX
};

struct problem {
	enum prob_type type;
	int status;          /* HTTP status; defaults from the registry */
	char *detail;        /* owned, may be NULL */
	json_t *identifier;  /* owned, may be NULL: {"type","value"} */
	json_t *subproblems; /* owned JSON array of problem JSON, or NULL */
	int retry_after;     /* seconds, 0 = none (rate limits, 503) */
};

/* Short name, e.g. "badNonce" (static). */
const char *prob_type_name(enum prob_type t);
/* Full URN, e.g. "urn:ietf:params:acme:error:badNonce" (static). */
const char *prob_type_urn(enum prob_type t);
/* Default HTTP status for a type. */
int prob_type_status(enum prob_type t);
/* Accepts a short name or a full ACME URN; -1 if unknown. */
int prob_type_parse(const char *s, enum prob_type *out);

/* New problem with a printf detail; caller frees with problem_free. */
struct problem *problem_new(enum prob_type t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void problem_free(struct problem *p);
/* Adds a subproblem (takes ownership of sub) and sets the identifier on it. */
void problem_add_sub(struct problem *p, struct problem *sub,
    const char *ident_type, const char *ident_value);
/* Deep copy. */
struct problem *problem_dup(const struct problem *p);
/*
 * RFC 7807 JSON for clients: {"type": URN, "detail", "status",
 * "subproblems", "identifier"}. New reference.
 */
json_t *problem_to_json(const struct problem *p);
/*
 * RPC form: {"type": short name, "detail", "status", "subproblems",
 * "identifier", "retry_after"}. New reference.
 */
json_t *problem_to_rpc_json(const struct problem *p);
/* Parses either form. Unknown type becomes serverInternal. Never NULL. */
struct problem *problem_from_json(const json_t *j);

/* ------------------------------------------------------------------ */
/* Encoding                                                             */
/* ------------------------------------------------------------------ */

/* Unpadded base64url of len bytes. Never NULL. Caller frees. */
char *b64url_encode(const uint8_t *data, size_t len);
/*
 * Strict decode of an unpadded base64url string of inlen chars: any '=',
 * '+', '/', whitespace or other byte outside the alphabet, or a length of
 * 4k+1, is an error. On success *out is malloc'd (caller frees; a NUL byte
 * is appended but not counted) and 0 is returned; -1 otherwise.
 */
int b64url_decode(const char *in, size_t inlen, uint8_t **out, size_t *outlen);
/*
 * PEM (RFC 7468 §2: standard base64 in 64-character lines between
 * "-----BEGIN label-----" and "-----END label-----") of len bytes of der,
 * byte for byte what OpenSSL's PEM writers produce, without parsing der.
 * Never NULL. Caller frees.
 */
char *pem_encode(const char *label, const uint8_t *der, size_t len);
/* Lowercase hex of len bytes. Caller frees. */
char *hex_encode(const uint8_t *data, size_t len);
/* Decodes hex (either case) into *out (malloc'd). 0 or -1. */
int hex_decode(const char *in, uint8_t **out, size_t *outlen);
/*
 * Certificate serial numbers as text, the one form every service stores
 * and compares: lowercase hex of the unsigned big-endian value, leading
 * zero bytes dropped, left-padded with '0' to SERIAL_HEX_MIN digits (the
 * CA's 18-byte serials). NULL when n is 0 or the value has more than
 * SERIAL_MAX_BYTES significant bytes (RFC 5280 §4.1.2.2: at most 20
 * octets). Caller frees.
 */
#define SERIAL_HEX_MIN 36
#define SERIAL_MAX_BYTES 20
char *serial_hex(const uint8_t *b, size_t n);
/*
 * The serial of an ARI CertID "base64url(AKI).base64url(serial)" (RFC 9773
 * §4.1) as serial_hex, or NULL when certid is not one. Caller frees.
 */
char *serial_hex_of_certid(const char *certid);
/* Unpadded lowercase RFC 4648 base32 of len bytes. Caller frees. */
char *base32_encode_lower(const uint8_t *data, size_t len);
/*
 * Decodes unpadded RFC 4648 base32 (either case) into out (at most outcap
 * bytes); the unused bits of the last character must be zero. 0 with
 * *outlen, or -1 (bad character, too long, bad trailing bits).
 */
int base32_decode(const char *in, uint8_t *out, size_t outcap, size_t *outlen);

/* ------------------------------------------------------------------ */
/* Time                                                                 */
/* ------------------------------------------------------------------ */

/* Milliseconds since the epoch, wall clock. */
int64_t time_now_ms(void);
/* Monotonic milliseconds (for deadlines and timing). */
int64_t time_mono_ms(void);
/* The CLOCK_REALTIME time ms (>= 0) from now, for pthread_cond_timedwait. */
struct timespec time_realtime_after(int64_t ms);
/* "2026-11-28T15:00:00Z" into buf (>= 32 bytes); returns buf. */
char *time_fmt_rfc3339(time_t t, char *buf, size_t buflen);
/* Parses RFC 3339 (Z or +hh:mm offset, optional fraction). 0 or -1. */
int time_parse_rfc3339(const char *s, time_t *out);
/*
 * Durations like "90d", "12h", "30m", "10s", "250ms", "1h30m" into
 * milliseconds. 0 or -1 on bad syntax / overflow.
 */
int duration_parse_ms(const char *s, int64_t *out_ms);

/* ------------------------------------------------------------------ */
/* Identifiers                                                          */
/* ------------------------------------------------------------------ */

enum ident_type {
	IDENT_DNS,
	IDENT_IP,
	IDENT_EMAIL, /* RFC 8823 §2: an email address (rfc822Name) */
	IDENT_PERMANENT_ID, /* draft-ietf-acme-device-attest §3 */
	IDENT_HARDWARE_MODULE, /* draft-ietf-acme-device-attest §4 */
	IDENT_BUNDLE_EID, /* RFC 9891 §3: a DTN Node ID (ipn: / dtn: URI) */
	IDENT_REMOTE_ATTESTATION, /* draft-ietf-acme-rats §2.1: a hint */
	IDENT_TNAUTHLIST, /* RFC 9448 §3: base64url of a DER TNAuthList */
	IDENT__MAX
};

/* "dns" / "ip" (static) and back; parse returns -1 if unknown. */
const char *ident_type_name(enum ident_type t);
int ident_type_parse(const char *s, enum ident_type *out);

/*
 * Validates and normalises a DNS name for an ACME identifier: lowercases,
 * rejects a trailing dot, empty labels, labels > 63, names > 253, non-LDH
 * characters, leading/trailing hyphens, all-numeric TLD, "xn--" labels that
 * are syntactically invalid are allowed through (punycode is not decoded).
 * A leading "*." is allowed only when allow_wildcard. On success returns a
 * malloc'd normalised name; on failure NULL with a reason in err.
 */
char *ident_dns_normalize(
    const char *name, int allow_wildcard, char *err, size_t errlen);
/*
 * Parses an IPv4 or IPv6 literal into its canonical text form (RFC 5952 for
 * v6). Returns malloc'd canonical string, or NULL with reason in err.
 * If raw != NULL it receives the address bytes (4 or 16) and *rawlen.
 */
char *ident_ip_normalize(
    const char *ip, uint8_t raw[16], size_t *rawlen, char *err, size_t errlen);
/* Reverse-DNS name for an IP (in-addr.arpa / ip6.arpa). Caller frees. */
char *ident_ip_reverse_name(const uint8_t *raw, size_t rawlen);
/*
 * RFC 9799 / RFC 7686: 1 if the normalised DNS name (borrowed; may start
 * with "*.") is "onion" or ends in ".onion", else 0.
 */
int ident_onion_name(const char *name);
/*
 * The Tor v3 onion address of a normalised .onion name (borrowed; may
 * have subdomain labels and a leading "*."): the label before "onion" must
 * be 56 base32 characters of pubkey(32) || checksum(2) || version(1) with
 * version 3 and checksum = SHA3-256(".onion checksum" || pubkey ||
 * version)[:2] (tor-spec rend-spec-v3 §6). 0 with the Ed25519 key in
 * pubkey (may be NULL) and, when base is not NULL, *base pointing into
 * name at "<address>.onion"; -1 with the reason in err (a 16-character
 * version 2 address is named as such: RFC 9799 §2 forbids them).
 */
int ident_onion_parse(const char *name, uint8_t pubkey[32],
    const char **base, char *err, size_t errlen);
/*
 * Validates and normalises an email identifier (RFC 8823 §2: an
 * "addr-spec" of RFC 5322 §3.4.1, ASCII only): a dot-atom local part
 * (kept as given, local parts are case-sensitive per RFC 5321 §2.4) "@" a
 * DNS name (lowercased, as ident_dns_normalize, no wildcard). Quoted local
 * parts and address literals are refused. Returns a malloc'd normalised
 * address, or NULL with a reason in err.
 */
char *ident_email_normalize(const char *addr, char *err, size_t errlen);
/*
 * draft-ietf-acme-device-attest §3.1 / §4.1: value (borrowed) matches the
 * permanent-identifier-value (t IDENT_PERMANENT_ID) or hardware-module-value
 * (IDENT_HARDWARE_MODULE) ABNF and is valid UTF-8. No normalisation: the
 * draft wants octet-for-octet matches. 0, or -1 with the reason in err.
 */
int ident_device_check(
    enum ident_type t, const char *value, char *err, size_t errlen);
/* 1 for the device identifier types (permanent-identifier,
 * hardware-module), else 0. */
int ident_is_device(enum ident_type t);
/*
 * draft-ietf-acme-device-attest §3.2 / §4.2 (ident_device.c): the device
 * identifier a subjectAltName otherName names. type_oid: its type-id in
 * dotted text (1.3.6.1.5.5.7.8.3 PermanentIdentifier, .4
 * HardwareModuleName); der/len: the full DER of its value (a SEQUENCE),
 * borrowed. Returns the identifier value ("id[/assigner]", "serial/hwType";
 * malloc'd) and sets *type, or NULL when it is neither or malformed.
 */
char *ident_device_from_othername(const char *type_oid,
    const unsigned char *der, long len, enum ident_type *type);
/*
 * The inverse: the DER of the otherName value for identifier value (a
 * valid device identifier of type t, borrowed), malloc'd with *len, and
 * *type_oid (static); NULL when value is not valid.
 */
unsigned char *ident_device_othername_der(
    enum ident_type t, const char *value, size_t *len, const char **type_oid);
/*
 * RFC 9891 §3 (ident_bundle.c): checks and normalises a "bundleEID" value
 * (borrowed) that must name a DTN Node ID: "dtn://node-name/" (RFC 9171
 * §4.2.5.1.1, empty demux) or "ipn:N.0" (§4.2.5.1.2, service 0, N > 0).
 * The scheme is lowercased, percent-encoded unreserved characters are
 * decoded and other percent-encodings get uppercase hex (RFC 3986
 * §6.2.2), ipn numbers lose leading zeros. Returns 0 with *out
 * (malloc'd); -1 with the reason in err when the value is malformed (bad
 * percent-encoding or scheme-specific syntax: ACME "malformed"); -2 when
 * it is well-formed but not usable (another scheme, or an EID that is not
 * a Node ID: ACME "rejectedIdentifier").
 */
int ident_bundle_eid_normalize(
    const char *value, char **out, char *err, size_t errlen);
/* id-on-bundleEID (RFC 9174 §4.4.1), the BundleEID otherName form. */
#define IDENT_OID_BUNDLE_EID "1.3.6.1.5.5.7.8.11"
/*
 * RFC 9891 §7: the normalised Node ID that a subjectAltName otherName of
 * type type_oid (dotted text) with IA5String content ia5 (n bytes,
 * borrowed) names, "treated as being in the percent-encoded form";
 * malloc'd, or NULL when the type is not BundleEID or the value is not a
 * Node ID.
 */
char *ident_bundle_eid_from_othername(
    const char *type_oid, const unsigned char *ia5, size_t n);

/* ---- RFC 8226 §9 TNAuthList (tnauth.c), RFC 9448's identifier ---- */
/* The extension's OID, id-pe-TNAuthList (id-pe 26). */
#define TNAUTH_OID "1.3.6.1.5.5.7.1.26"
/* Bounds of what Anvil accepts (docs/acme.md "RFC 9448"). */
#define TNAUTH_MAX_DER 189     /* its base64url fits 252 characters */
#define TNAUTH_MAX_ENTRIES 32
enum tnauth_kind { TNAUTH_SPC, TNAUTH_RANGE, TNAUTH_ONE };
struct tnauth_entry {
	enum tnauth_kind kind;
	char text[128]; /* the SPC, the range start or the number (NUL'd) */
	uint64_t count; /* TNAUTH_RANGE: count (>= 2) */
};
struct tnauth_list {
	size_t n;
	struct tnauth_entry e[TNAUTH_MAX_ENTRIES];
};
/*
 * RFC 8226 §9 (module "DEFINITIONS EXPLICIT TAGS"): der/len (borrowed) is
 * exactly one DER TNAuthorizationList: SEQUENCE SIZE (1..MAX) OF TNEntry,
 * spc [0] IA5String, range [1] SEQUENCE {start TelephoneNumber, count
 * INTEGER (2..MAX)}, one [2] TelephoneNumber (IA5String 1..15 of
 * "0123456789#*"), minimal lengths, nothing trailing. Fills out (may be
 * NULL). 0, or -1 with the reason in err.
 */
int tnauth_parse(const uint8_t *der, size_t len, struct tnauth_list *out,
    char *err, size_t errlen);
/*
 * RFC 9448 §3: value (borrowed) is the unpadded base64url of a DER
 * TNAuthList tnauth_parse accepts, at most 252 characters. On success the
 * DER (malloc'd, caller frees) in *der / *len when der is not NULL. 0, or
 * -1 with the reason in err.
 */
int ident_tnauthlist_check(const char *value, uint8_t **der, size_t *len,
    char *err, size_t errlen);
/* A short text naming the list (for a certificate's CN): "SPC 709J",
 * "TN 12025550100", "TN 1202555 +100" (first entry; "+N more" when there
 * are others). Into buf; returns buf. */
const char *tnauth_summary(
    const struct tnauth_list *l, char *buf, size_t buflen);
/*
 * The TNAuthList extension (TNAUTH_OID) among exts (borrowed; NULL: none)
 * against the TNAuthList identifier value (borrowed): 1 it is there once
 * and holds exactly the identifier's DER, 0 it is absent, -1 otherwise
 * (another value, present twice, value not a TNAuthList) with the reason
 * in err. The CSR check (RA) and the STIR lint (CA) both ask this.
 */
int tnauth_ext_check(const STACK_OF(X509_EXTENSION) *exts, const char *value,
    char *err, size_t errlen);
/*
 * What the CSR req (borrowed) requests in basicConstraints (RFC 5280
 * §4.2.1.9, in its PKCS#9 extensionRequest): 1 cA TRUE, 0 absent or cA
 * FALSE, -1 an undecodable extension. RFC 9448 §6 compares it with the
 * Authority Token's "ca".
 */
struct X509_req_st;
int csr_requests_ca(struct X509_req_st *req);

/* ------------------------------------------------------------------ */
/* Challenge types (challenge.c): the one table RA and VA share         */
/* ------------------------------------------------------------------ */

/*
 * Every challenge type Anvil knows, in the order new authorizations offer
 * them. A new type is one enum value here plus one row in challenge.c
 * (and, to validate it, one entry in the VA's module table).
 */
enum chal_type {
	CHAL_HTTP01,
	CHAL_DNS01,
	CHAL_TLSALPN01,
	CHAL_DNSACCOUNT01, /* draft-ietf-acme-dns-account-label */
	CHAL_DNSPERSIST01, /* draft-ietf-acme-dns-persist */
	CHAL_ONIONCSR01,   /* RFC 9799 §3.2 */
	CHAL_EMAILREPLY00, /* RFC 8823 §3 */
	CHAL_DEVICEATTEST01, /* draft-ietf-acme-device-attest §5 */
	CHAL_BPNODEID00, /* RFC 9891 §4 */
	CHAL_REMOTEATTEST01, /* draft-ietf-acme-rats §2.2 */
	CHAL_TKAUTH01, /* RFC 9447 §3 with RFC 9448's "atc" token */
	CHAL__MAX
};

/* Bit for an identifier type in chal_info.idents. */
#define CHAL_IDENT(t) (1u << (t))
/* Bit for a challenge type in a set of types (e.g. RA policy.challenges). */
#define CHAL_BIT(t) (1u << (t))

struct chal_info {
	enum chal_type type;
	const char *name;      /* "http-01" (the ACME "type" value) */
	const char *spec;      /* where it is defined, for error details */
	unsigned idents;       /* CHAL_IDENT(IDENT_DNS) | ...: what it proves */
	int wildcard;          /* can validate a wildcard authorization */
	int needs_account_uri; /* validation needs the account URL */
	int offer;             /* on unless configuration says otherwise */
	int onion;             /* RFC 9799: 1 = proves .onion names only,
				  0 = never a .onion name (the default) */
	int claim_first;       /* validating has an effect outside Anvil, so
				  the RA claims the challenge before it starts
				  (never validated twice at once on two RAs) */
};

/* Row for t (static), or NULL when t is out of range. */
const struct chal_info *chal_info(enum chal_type t);
/* Row named s (static), or NULL when unknown / s is NULL. */
const struct chal_info *chal_lookup(const char *s);
/* "http-01" ... (static); "?" when out of range. */
const char *chal_name(enum chal_type t);
/* CHAL_BIT of every type whose row has offer set (the default set). */
unsigned chal_default_set(void);
/*
 * Whether c may validate an identifier of this type (wildcard: a wildcard
 * authorization). 0 when it may; -1 with the reason in err otherwise.
 */
int chal_check(const struct chal_info *c, enum ident_type ident, int wildcard,
    char *err, size_t errlen);
/*
 * RFC 9799: whether c may validate a DNS name that is (onion = 1) or is
 * not (onion = 0) a .onion name (ident_onion_name). 0 when it may; -1 with
 * the reason in err otherwise. Call after chal_check.
 */
int chal_check_onion(
    const struct chal_info *c, int onion, char *err, size_t errlen);
/*
 * The onion-csr-01 "nonce" of a challenge token (borrowed; the base64url
 * of the random bytes): the same bytes in standard base64 with padding
 * (RFC 9799 §3.2), or NULL when token is not base64url. Caller frees.
 */
char *chal_onion_nonce(const char *token);
/*
 * RFC 9891 §4.1: the bp-nodeid-00 "id-chal" of a challenge whose token
 * (borrowed) is the "token-chal": the base64url of the first 16 bytes of
 * SHA-256("ACME bp-nodeid-00 id-chal:" || token), so it has the token's
 * 128+ bits of entropy without revealing it and needs no storage. Caller
 * frees.
 */
char *chal_bp_id_chal(const char *token);

/* ------------------------------------------------------------------ */
/* Declarative JSON input (config files and request bodies)            */
/* ------------------------------------------------------------------ */

enum jspec_type {
	JSPEC_STRING,   /* char * (malloc'd copy) */
	JSPEC_INT,      /* int64_t */
	JSPEC_BOOL,     /* int (0/1) */
	JSPEC_DURATION, /* int64_t ms, from a duration string */
	JSPEC_JSON,     /* json_t * (new reference), any type */
	JSPEC_OBJECT,   /* nested object parsed with .sub into dest + offset */
	JSPEC_STRINGS,  /* char ** NULL-terminated (malloc'd) + count */
	JSPEC_DOUBLE,   /* double */
	JSPEC__MAX
};

/*
 * One field of an object. `offset` is where the value goes inside the
 * destination struct (use offsetof). For JSPEC_STRINGS, `count_offset`
 * receives the number of strings (size_t). For JSPEC_OBJECT, `sub` is the
 * nested spec, terminated by an entry with name == NULL, and the nested
 * fields write into the destination struct at `offset` (0: the same struct,
 * else a struct embedded there, e.g. a struct config_common).
 */
struct jspec {
	const char *name;
	enum jspec_type type;
	size_t offset;
	int required;
	const struct jspec *sub;
	size_t count_offset;
};

#define JSPEC_END                                                              \
	{                                                                      \
		NULL, JSPEC__MAX, 0, 0, NULL, 0                                \
	}
/*
 * Entries for fields of struct S: JSPEC_FIELD (optional, of a scalar type),
 * JSPEC_STRV (an optional JSPEC_STRINGS array with its count member),
 * JSPEC_SUB (an optional nested object whose fields fill the same struct).
 */
#define JSPEC_FIELD(S, n, t, m)                                                \
	{                                                                      \
		n, t, offsetof(S, m), 0, NULL, 0                               \
	}
#define JSPEC_STRV(S, n, m, c)                                                 \
	{                                                                      \
		n, JSPEC_STRINGS, offsetof(S, m), 0, NULL, offsetof(S, c)      \
	}
#define JSPEC_SUB(n, sub)                                                      \
	{                                                                      \
		n, JSPEC_OBJECT, 0, 0, sub, 0                                  \
	}

/*
 * Parses obj by spec into dest. Strict: a key not in the spec, a value of the
 * wrong type or a missing required key is an error; err receives a message
 * naming the key path (e.g. "rpc.listen: expected a string") and -1 is
 * returned. Fields already filled stay filled; free them with jspec_clear.
 * Absent optional fields are left untouched (so defaults set before the call
 * survive).
 */
int jspec_parse(const json_t *obj, const struct jspec *spec, void *dest,
    char *err, size_t errlen);
/*
 * Checks obj against spec exactly as jspec_parse does (same messages) but
 * stores nothing: for validating a request before its handler parses it.
 * Returns 0 or -1 with the message in err.
 */
int jspec_check(const json_t *obj, const struct jspec *spec, char *err,
    size_t errlen);
/* Frees what jspec_parse allocated in dest (strings, arrays, json refs). */
void jspec_clear(const struct jspec *spec, void *dest);

/*
 * Loads a JSON config file that must hold an object. On error returns NULL
 * and err names the file, line and column.
 */
json_t *config_load_file(const char *path, char *err, size_t errlen);
/*
 * Parses a config object: jspec_parse plus, on error, the file name
 * prefixed to the message. Returns 0 or -1.
 */
int config_parse(const char *path, const json_t *obj, const struct jspec *spec,
    void *dest, char *err, size_t errlen);
/*
 * The settings every service config has (docs/configuration.md "Keys every
 * service has"), one struct embedded in each service's config:
 *   "log_level": "debug" | "info" | "warn" | "error"  (default info)
 *   "debug": {"addr": "127.0.0.1", "port": N}  (/metrics, /healthz; 0 = off)
 *   "rpc": {...}  the RPC listener (rpc_server_config_parse reads it)
 * A service lists CONFIG_COMMON_SPEC (or CONFIG_COMMON_RPC_SPEC, with
 * "rpc") in its top-level spec, sets its own debug_port default before the
 * parse and calls config_common_check after it. jspec_clear of the service
 * spec (or config_common_clear) frees it.
 */
struct config_common {
	char *log_level;
	enum log_level level; /* log_level, parsed by config_common_check */
	char *debug_addr;
	int64_t debug_port;
	json_t *rpc; /* the "rpc" object; NULL when absent (the WFE) */
};
extern const struct jspec config_debug_spec[];
#define CONFIG_COMMON_SPEC(S, m)                                               \
	{"log_level", JSPEC_STRING, offsetof(S, m.log_level), 0, NULL, 0},     \
	{                                                                      \
		"debug", JSPEC_OBJECT, offsetof(S, m), 0, config_debug_spec, 0 \
	}
#define CONFIG_COMMON_RPC_SPEC(S, m)                                           \
	CONFIG_COMMON_SPEC(S, m), {                                            \
		"rpc", JSPEC_JSON, offsetof(S, m.rpc), 0, NULL, 0              \
	}
/*
 * After the parse: the defaults of absent strings (log_level "info",
 * debug.addr loopback), c->level, and the ranges. 0, or -1 with err
 * "path: key: ..." naming the bad key.
 */
int config_common_check(
    struct config_common *c, const char *path, char *err, size_t errlen);
/* Frees what c holds (its pointers become NULL); NULL is a no-op. */
void config_common_clear(struct config_common *c);
/*
 * Applies environment overrides: for each (env var, key path) pair whose
 * variable is set, sets the key in obj (creating objects on the way). Values
 * are parsed as JSON if they parse, else taken as strings. Returns 0.
 * Table terminated by {NULL, NULL}.
 */
struct config_env {
	const char *env;
	const char *path; /* dotted: "listen.port" */
};
int config_apply_env(json_t *obj, const struct config_env *table);
/*
 * Test-mode environment knobs (docs/testing-clients.md), one reader per
 * kind. Each reads getenv(name); unset or empty: returns 0 and leaves *out
 * alone. env_flag: "0" and "false" are off, anything else on. env_int: a
 * base-10 integer in lo..hi; env_duration: a duration (duration_parse_ms)
 * of 0..max_ms. 0, or -1 with err naming the variable, what it expects and
 * the value (expect: e.g. "a port 1..65535").
 */
void env_flag(const char *name, int *out);
int env_int(const char *name, int64_t lo, int64_t hi, const char *expect,
    int64_t *out, char *err, size_t errlen);
int env_duration(const char *name, int64_t max_ms, const char *expect,
    int64_t *out, char *err, size_t errlen);

/* ------------------------------------------------------------------ */
/* Metrics (Prometheus text exposition)                                */
/* ------------------------------------------------------------------ */

struct metrics;

/* Registry; thread-safe. `prefix` is prepended to nothing (names are full). */
struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

/*
 * Update a series. `name` is the full metric name (e.g.
 * "anvil_rpc_calls_total"), `help` its HELP text (used the first time),
 * `labels` the label set in exposition syntax without braces, e.g.
 * "method=\"sa.get_order\",result=\"ok\"" (NULL or "" for none). Label
 * values must be escaped by the caller with metrics_label_escape if they
 * are not constant.
 */
void metrics_counter_add(struct metrics *m, const char *name, const char *help,
    const char *labels, double v);
void metrics_gauge_set(struct metrics *m, const char *name, const char *help,
    const char *labels, double v);
void metrics_gauge_add(struct metrics *m, const char *name, const char *help,
    const char *labels, double v);
/* Histogram with the default buckets (seconds: 0.001 .. 10). */
void metrics_histogram_observe(struct metrics *m, const char *name,
    const char *help, const char *labels, double v);
/* Escapes a label value (\\, \", \n) into buf; returns buf. */
char *metrics_label_escape(const char *v, char *buf, size_t buflen);
/*
 * Renders the text exposition format, adding the process metrics
 * (anvil_process_resident_memory_bytes, _open_fds, _start_time_seconds,
 * _cpu_seconds_total). Caller frees.
 */
char *metrics_render(struct metrics *m);

/* ------------------------------------------------------------------ */
/* Debug HTTP server: /metrics and /healthz                            */
/* ------------------------------------------------------------------ */

/*
 * Health callback: returns 0 when healthy, else -1 and a reason in msg.
 * Called from the debug server's thread.
 */
typedef int (*debug_health_fn)(void *arg, char *msg, size_t msglen);

struct debug_server;

/*
 * Starts a plain-HTTP server on addr:port (loopback expected) in its own
 * thread serving GET /metrics (text/plain; version=0.0.4) and GET /healthz
 * (200 "ok" or 503 with the reason). Borrows m; m must outlive the server.
 * Returns NULL with err on failure (e.g. port in use).
 */
struct debug_server *debug_server_start(const char *addr, int port,
    struct metrics *m, debug_health_fn health, void *health_arg, char *err,
    size_t errlen);
void debug_server_stop(struct debug_server *s);

/* ------------------------------------------------------------------ */
/* Misc                                                                 */
/* ------------------------------------------------------------------ */

/* Fills buf with n random bytes from the CSPRNG; aborts if it fails. */
void random_bytes(uint8_t *buf, size_t n);
/* New random token: base64url of nbytes random bytes. Caller frees. */
char *random_token(size_t nbytes);
/* SHA-256 of data into out[32]. */
void sha256(const uint8_t *data, size_t len, uint8_t out[32]);

/* ---- subject keys (keyenc.c) ---- */

/*
 * The canonical SubjectPublicKeyInfo DER of an RSA or EC public key, built
 * from the key's numbers rather than copied from how it arrived:
 * rsaEncryption with NULL parameters (RFC 3279 §2.3.1); id-ecPublicKey with
 * a namedCurve OID (RFC 5480 §2.1.1) and the uncompressed point (§2.2).
 * pk borrowed. 0 and *der (OPENSSL_free) / *len, or -1 for another key
 * type or an EC key whose curve has no name.
 */
int key_spki_der(const EVP_PKEY *pk, unsigned char **der, size_t *len);
/*
 * A public key from its numbers (borrowed), NULL when OpenSSL refuses
 * them: RSA (n, e); EC on the curve OpenSSL calls group ("P-256") with
 * the point pt (len bytes, uncompressed 04||x||y). Caller frees.
 */
EVP_PKEY *key_rsa_public(const BIGNUM *n, const BIGNUM *e);
EVP_PKEY *key_ec_public(const char *group, const unsigned char *pt, size_t len);
/*
 * THE key hash (blocked_keys, key_hash_to_serial, revoke by key): hex
 * SHA-256 of key_spki_der. Every process computes it with this function.
 * pk borrowed; malloc'd string, NULL when key_spki_der fails.
 */
char *key_hash_hex(const EVP_PKEY *pk);
/*
 * 1 if xpk (borrowed) is encoded exactly as key_spki_der encodes its key,
 * 0 otherwise (RSA without NULL parameters, explicit EC curve parameters,
 * a compressed point, an unsupported key).
 */
int key_spki_is_canonical(const X509_PUBKEY *xpk);
/*
 * Reads a whole file (at most maxlen bytes, else error). *out malloc'd with
 * a NUL appended. 0 or -1 with err.
 */
int file_read_all(const char *path, size_t maxlen, char **out, size_t *outlen,
    char *err, size_t errlen);
/*
 * Refuses a secret file that is group- or world-readable or not a regular
 * file. 0 ok, -1 with reason in err.
 */
int file_check_secret_mode(const char *path, char *err, size_t errlen);

/* ------------------------------------------------------------------ */
/* Certificate profiles (configs/<env>/profiles.json, read by CA and RA) */
/* ------------------------------------------------------------------ */

/*
 * profiles.json:
 * {"default": "classic",
 *  "profiles": {"classic": {"description": "...", "validity": "90d",
 *     "backdate": "1h", "max_identifiers": 100,
 *     "identifier_types": ["dns","ip"], "keep_cn": true,
 *     "ekus": ["serverAuth"], "order_lifetime": "7d",
 *     "authz_lifetime": "30d", "pending_authz_lifetime": "7d",
 *     "allow_validity_request": true}}}
 * ekus: "serverAuth", "clientAuth", "emailProtection". An S/MIME profile
 * (identifier_types ["email"]) has exactly the emailProtection EKU and no
 * other identifier type; a TLS profile never has emailProtection (each is
 * refused for the other's certificates). allow_validity_request: newOrder may
 * carry notBefore/notAfter (within validity).
 */
struct profile {
	char *name;
	char *description;
	int64_t validity_ms;
	int64_t backdate_ms;
	int64_t max_identifiers;
	int allow_dns;
	int allow_ip;
	int keep_cn;
	int eku_server_auth;
	int eku_client_auth;
	int allow_email;          /* RFC 8823 email identifiers */
	int eku_email_protection; /* the S/MIME EKU (RFC 5280 §4.2.1.12) */
	int64_t order_lifetime_ms;
	int64_t authz_lifetime_ms;
	int64_t pending_authz_lifetime_ms;
	int allow_validity_request;
	/* identifier_types "permanent-identifier" / "hardware-module"
	 * (draft-ietf-acme-device-attest) */
	int allow_permanent_id;
	int allow_hardware_module;
	/* RFC 9891: identifier_types "bundleEID" and the EKU
	 * id-kp-bundleSecurity (RFC 9174 §4.4.2.1), only together */
	int allow_bundle_eid;
	int eku_bundle_security;
	/* identifier_types "remote-attestation" (draft-ietf-acme-rats) */
	int allow_remote_attestation;
	/* identifier_types ["TNAuthList"]: a STIR profile (RFC 8226 / RFC
	 * 9448), no EKU, no other identifier type */
	int allow_tnauthlist;
	/* "tkauth_ca": a STIR profile that issues CA certificates when the
	 * CSR asks for one and the Authority Token said "ca": true (RFC
	 * 9448 §5, §6 step 9) */
	int tkauth_ca;
};

struct profiles {
	char *default_name;
	struct profile *list;
	size_t count;
};

/* Loads and validates profiles.json; NULL with err naming the bad key. */
struct profiles *profiles_load(const char *path, char *err, size_t errlen);
/* Parses an already-loaded object (path used in messages only). */
struct profiles *profiles_parse(
    const json_t *obj, const char *path, char *err, size_t errlen);
void profiles_free(struct profiles *p);
/* NULL name means the default profile; NULL if not found. Borrowed. */
const struct profile *profiles_find(const struct profiles *p, const char *name);
/*
 * The certificate validity window the CA gives an order (one rule for the
 * RA at newOrder and the CA at issuance, so an order accepted by one is
 * never refused by the other). nb / na: the order's requested notBefore /
 * notAfter in seconds, 0 when absent; now: seconds. Fills *not_before and
 * *not_after (absent notBefore: now - backdate; absent notAfter: the
 * profile's full validity). Returns 0, or -1 when the window is empty or
 * longer than the profile's validity counted inclusively (RFC 5280
 * §4.1.2.5: "from notBefore through notAfter, inclusive").
 */
int profile_validity_window(const struct profile *p, time_t nb, time_t na,
    time_t now, time_t *not_before, time_t *not_after);
/*
 * 1 if profile p (borrowed) lists identifier type t in its
 * identifier_types, else 0. The RA (newOrder) and the CA (issuance) ask
 * this one table, so they cannot disagree.
 */
int profile_allows_ident(const struct profile *p, enum ident_type t);

/*
 * takecache.c: JSON objects under text keys (at most TAKECACHE_KEY_MAX
 * bytes). slots fixed (a newer key may replace an older one in its slot),
 * each entry lives ttl_ms at most. NULL when slots or ttl_ms is 0 (every
 * call then does nothing / finds nothing). Thread-safe.
 *
 * takecache_put/take: kept for one later reader ("read your own write",
 * issue 18). takecache_copy/put_gen/forget: a cache whose readers get
 * copies; the caller picks the slot (hash % slots) and the slot's
 * generation guards against putting back what was forgotten meanwhile.
 */
#define TAKECACHE_KEY_MAX 64
struct takecache;
/* FNV-1a of the text s: the slot hash of takecache_put/take, also for a
 * caller's own slot table keyed by text. */
uint64_t takecache_hash(const char *s);
struct takecache *takecache_new(size_t slots, int64_t ttl_ms);
void takecache_free(struct takecache *c);
/* Keeps obj (taken; dropped if key is too long) under key. */
void takecache_put(struct takecache *c, const char *key, json_t *obj);
/* The object under key (new reference, removed from the cache), or NULL
 * when absent or older than the ttl. */
json_t *takecache_take(struct takecache *c, const char *key);
/*
 * A deep copy of the object under key in slot hash (caller owns) when it
 * is younger than the ttl at now_ms (monotonic), else NULL. *gen receives
 * the slot's generation (0 when c is NULL), for takecache_put_gen.
 */
json_t *takecache_copy(struct takecache *c, uint64_t hash, const char *key,
    int64_t now_ms, uint64_t *gen);
/* Keeps obj (taken: kept or freed) under key in slot hash from now_ms,
 * unless gen is given and the slot's generation moved on since. */
void takecache_put_gen(struct takecache *c, uint64_t hash, const char *key,
    json_t *obj, const uint64_t *gen, int64_t now_ms);
/* Drops key's entry and bumps its slot's generation. */
void takecache_forget(struct takecache *c, uint64_t hash, const char *key);

#endif /* ANVIL_CORE_H */
