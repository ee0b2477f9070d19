/*
 * wfe.h - the ACME web front end (anvil-wfe).
 *
 * The only process ACME clients talk to: HTTPS (libmicrohttpd), directory,
 * nonces, JWS verification (jose/), ACME JSON and problem documents. It
 * calls ra.* for every change, read-only sa.* for reads and ca.get_issuers /
 * ca.ocsp / ca.profiles; it never touches the database or keys.
 *
 * Ownership: wfe_config_parse fills a caller-owned struct freed with
 * wfe_config_clear. wfe_new borrows the config (it must outlive the wfe)
 * and returns an object freed with wfe_free.
 */
#ifndef ANVIL_WFE_H
#define ANVIL_WFE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/core.h"
#include "rpc/rpc.h"

/* Parsed configs/<env>/wfe.json. Keys: docs/config/wfe.md. */
/*
 * RFC 8996 / BCP 195 (RFC 9325): TLS 1.0 and 1.1 MUST NOT be negotiated;
 * TLS 1.2 only with AEAD suites and ephemeral ECDH.
 */
#define WFE_TLS_PRIORITIES                                                    \
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM:" \
	"+AES-256-GCM:+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:"              \
	"+ECDHE-ECDSA:+ECDHE-RSA"

struct wfe_config {
	struct config_common common; /* log_level, debug (no rpc) */
	char *listen_addr;
	int64_t listen_port;
	char *tls_cert; /* NULL: plain HTTP (behind a TLS terminator) */
	char *tls_key;
	/* GnuTLS priority string of the HTTPS listeners (ACME and management);
	 * defaults to WFE_TLS_PRIORITIES: TLS 1.2+ with AEAD suites. */
	char *tls_priorities;
	char *base_url; /* "https://localhost:4431", no trailing '/' */
	char **hosts;   /* extra accepted Host header values */
	size_t nhosts;
	char *trusted_proxy_header; /* e.g. "X-Forwarded-Proto"; NULL = none */
	char *client_ip_header; /* e.g. "X-Forwarded-For"; NULL = TCP peer */
	int64_t threads;
	int64_t max_connections; /* open connections (MHD limit) */
	int64_t max_body;
	int64_t request_timeout_ms;
	char *nonce_prefix;
	int64_t nonce_max_outstanding;
	int64_t nonce_lifetime_ms;
	char *nonce_key_file;
	char *tos; /* directory.terms_of_service */
	char *website;
	char **caa_identities;
	size_t ncaa_identities;
	int eab_required;
	json_t *ra; /* rpc client configs (raw) */
	json_t *sa;
	json_t *ca;
	json_t *sa_read; /* optional: an SA on a read replica (docs/scaling.md) */
	int64_t retry_after_order_ms;
	int64_t retry_after_authz_ms;
	int64_t orders_per_page;
	int64_t nonce_reject_percent; /* test mode */
	json_t *faults;        /* test mode: docs/config/wfe.md test.faults */
	char *mgmt_addr;       /* test-mode management listener (plain HTTP) */
	int64_t mgmt_port;     /* 0 = off */
	int mgmt_tls;          /* HTTPS with tls.cert/key (Pebble's way) */
	char **mgmt_root_keys; /* test mode: PEM key files, chain order */
	size_t nmgmt_root_keys;
	char **mgmt_int_keys;
	size_t nmgmt_int_keys;
	int allow_cert_get;   /* plain GET on /acme/cert/ (default 0) */
	char *pki_addr;       /* plain-HTTP listener for OCSP, CRLs, issuers */
	int64_t pki_port;     /* 0 = off */
	int access_log;       /* one log line per request */
	int jose_allow_es512; /* jose.* -> struct jose_policy */
	int jose_allow_eddsa;
	int64_t jose_rsa_min_bits;
	int64_t jose_rsa_max_bits;
	int64_t account_cache_ttl_ms; /* 0 = no account cache */
	int64_t account_cache_size;
	int64_t object_cache_ttl_ms; /* 0 = no object cache */
	int64_t object_cache_size;
};

/*
 * Parses a loaded config object (borrowed) into cfg (caller clears with
 * wfe_config_clear even on failure). Defaults are filled first. `path`
 * only prefixes messages. 0, or -1 with a message naming the bad key.
 */
int wfe_config_parse(const json_t *obj, const char *path,
    struct wfe_config *cfg, char *err, size_t errlen);
void wfe_config_clear(struct wfe_config *cfg);

struct wfe;

/*
 * Creates the front end: RPC clients, nonce service, TLS material, metrics
 * (borrowed, must outlive the wfe). Does not listen yet. NULL with err.
 */
struct wfe *wfe_new(const struct wfe_config *cfg, struct metrics *metrics,
    char *err, size_t errlen);
/*
 * Starts the listeners, each with its own thread pool: the ACME one (HTTPS
 * with tls.cert/tls.key), the management one when management.port > 0
 * (Pebble-compatible read-only paths, test mode) and the plain-HTTP one for
 * OCSP, CRLs and issuer certificates when pki.port > 0. 0 or -1 with err;
 * wfe_stop stops those that started.
 */
int wfe_start(struct wfe *w, char *err, size_t errlen);
/* Stops the listeners (in-flight requests finish). Safe if not started. */
void wfe_stop(struct wfe *w);
void wfe_free(struct wfe *w);

/*
 * Process body: starts the listener and the debug server, waits for
 * SIGTERM/SIGINT, drains. Returns the process exit status.
 */
int wfe_main(const struct wfe_config *cfg);

/* anvil-wfe's part of the service skeleton (wfe_daemon.c). */
extern const struct rpc_service_ops wfe_service;

#endif /* ANVIL_WFE_H */
