/*
 * config.c - configs/<env>/wfe.json, parsed strictly (docs/config/wfe.md).
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "wfe/wfe_int.h"

#define F(n, t, field, req)                                                    \
	{                                                                      \
		n, t, offsetof(struct wfe_config, field), req, NULL, 0         \
	}
#define O(n, sub) JSPEC_SUB(n, sub)

static const struct jspec listen_spec[] = {
    F("addr", JSPEC_STRING, listen_addr, 0),
    F("port", JSPEC_INT, listen_port, 0), JSPEC_END};
static const struct jspec tls_spec[] = {F("cert", JSPEC_STRING, tls_cert, 1),
    F("key", JSPEC_STRING, tls_key, 1),
    F("priorities", JSPEC_STRING, tls_priorities, 0), JSPEC_END};
static const struct jspec nonce_spec[] = {
    F("prefix", JSPEC_STRING, nonce_prefix, 0),
    F("max_outstanding", JSPEC_INT, nonce_max_outstanding, 0),
    F("lifetime", JSPEC_DURATION, nonce_lifetime_ms, 0),
    F("key_file", JSPEC_STRING, nonce_key_file, 0), JSPEC_END};
static const struct jspec dir_spec[] = {
    F("terms_of_service", JSPEC_STRING, tos, 0),
    F("website", JSPEC_STRING, website, 0),
    {"caa_identities", JSPEC_STRINGS,
	offsetof(struct wfe_config, caa_identities), 0, NULL,
	offsetof(struct wfe_config, ncaa_identities)},
    F("external_account_required", JSPEC_BOOL, eab_required, 0), JSPEC_END};
static const struct jspec retry_spec[] = {
    F("order", JSPEC_DURATION, retry_after_order_ms, 0),
    F("authz", JSPEC_DURATION, retry_after_authz_ms, 0), JSPEC_END};
static const struct jspec test_spec[] = {
    F("nonce_reject_percent", JSPEC_INT, nonce_reject_percent, 0),
    F("faults", JSPEC_JSON, faults, 0), JSPEC_END};
static const struct jspec mgmt_spec[] = {F("addr", JSPEC_STRING, mgmt_addr, 0),
    F("port", JSPEC_INT, mgmt_port, 1), F("tls", JSPEC_BOOL, mgmt_tls, 0),
    {"root_keys", JSPEC_STRINGS, offsetof(struct wfe_config, mgmt_root_keys), 0,
	NULL, offsetof(struct wfe_config, nmgmt_root_keys)},
    {"intermediate_keys", JSPEC_STRINGS,
	offsetof(struct wfe_config, mgmt_int_keys), 0, NULL,
	offsetof(struct wfe_config, nmgmt_int_keys)},
    JSPEC_END};
static const struct jspec pki_spec[] = {F("addr", JSPEC_STRING, pki_addr, 0),
    F("port", JSPEC_INT, pki_port, 1), JSPEC_END};
static const struct jspec jose_spec[] = {
    F("allow_es512", JSPEC_BOOL, jose_allow_es512, 0),
    F("allow_eddsa", JSPEC_BOOL, jose_allow_eddsa, 0),
    F("rsa_min_bits", JSPEC_INT, jose_rsa_min_bits, 0),
    F("rsa_max_bits", JSPEC_INT, jose_rsa_max_bits, 0), JSPEC_END};
static const struct jspec acct_cache_spec[] = {
    F("ttl", JSPEC_DURATION, account_cache_ttl_ms, 0),
    F("size", JSPEC_INT, account_cache_size, 0), JSPEC_END};
static const struct jspec obj_cache_spec[] = {
    F("ttl", JSPEC_DURATION, object_cache_ttl_ms, 0),
    F("size", JSPEC_INT, object_cache_size, 0), JSPEC_END};
static const struct jspec wfe_spec[] = {
    CONFIG_COMMON_SPEC(struct wfe_config, common),
    O("listen", listen_spec), O("tls", tls_spec),
    F("base_url", JSPEC_STRING, base_url, 1),
    {"hosts", JSPEC_STRINGS, offsetof(struct wfe_config, hosts), 0, NULL,
	offsetof(struct wfe_config, nhosts)},
    F("trusted_proxy_header", JSPEC_STRING, trusted_proxy_header, 0),
    F("client_ip_header", JSPEC_STRING, client_ip_header, 0),
    F("threads", JSPEC_INT, threads, 0),
    F("max_connections", JSPEC_INT, max_connections, 0),
    F("max_body", JSPEC_INT, max_body, 0),
    F("request_timeout", JSPEC_DURATION, request_timeout_ms, 0),
    O("nonce", nonce_spec), O("directory", dir_spec),
    F("ra", JSPEC_JSON, ra, 1), F("sa", JSPEC_JSON, sa, 1),
    F("ca", JSPEC_JSON, ca, 0), F("sa_read", JSPEC_JSON, sa_read, 0),
    O("retry_after", retry_spec),
    F("orders_per_page", JSPEC_INT, orders_per_page, 0),
    F("certificate_get", JSPEC_BOOL, allow_cert_get, 0), O("test", test_spec),
    O("management", mgmt_spec), O("jose", jose_spec),
    O("account_cache", acct_cache_spec),
    O("object_cache", obj_cache_spec), O("pki", pki_spec),
    F("access_log", JSPEC_BOOL, access_log, 0), JSPEC_END};

/* Removes members whose value is null, recursively: "key": null means
 * "not set" in our configs. */
static void
drop_nulls(json_t *obj)
{
	const char *k;
	json_t *v;
	void *tmp;

	json_object_foreach_safe(obj, tmp, k, v)
	{
		if (json_is_null(v))
			json_object_del(obj, k);
		else if (json_is_object(v))
			drop_nulls(v);
	}
}

/* 0..100 from an environment variable, Pebble-style: a bad number is an
 * error, out-of-range values are clamped. -1 when unset. */
static int
env_percent(const char *name, int64_t *out, char *err, size_t errlen)
{
	const char *e = getenv(name);
	char *end;
	long long v;

	if (e == NULL || e[0] == '\0')
		return 0;
	v = strtoll(e, &end, 10);
	if (*end != '\0') {
		snprintf(err, errlen,
		    "%s: expected a percentage, got \"%.40s\"", name, e);
		return -1;
	}
	*out = v < 0 ? 0 : v > 100 ? 100 : v;
	return 0;
}

/* Built-in values of wfe.json's settings (docs/config/wfe.md). */
static void
set_defaults(struct wfe_config *cfg)
{
	cfg->listen_port = 4431;
	cfg->threads = 8;
	cfg->max_connections = 10000;
	cfg->max_body = 65536;
	cfg->request_timeout_ms = 30000;
	cfg->nonce_max_outstanding = 100000;
	cfg->nonce_lifetime_ms = 3600 * 1000;
	cfg->retry_after_order_ms = 1000;
	cfg->retry_after_authz_ms = 1000;
	cfg->orders_per_page = 50;
	cfg->allow_cert_get = 0; /* RFC 8555 §6.3: GET is 405 */
	cfg->jose_rsa_min_bits = 2048;
	cfg->jose_rsa_max_bits = 4096;
	cfg->account_cache_ttl_ms = 5000;
	cfg->account_cache_size = 16384;
	cfg->object_cache_ttl_ms = 5000;
	cfg->object_cache_size = 4096;
}

/*
 * Sizes and limits of a parsed config (threads, connections, body, timeouts,
 * nonces, paging, account cache): 0, or -1 with msg naming the key.
 */
static int
check_sizes(const struct wfe_config *cfg, char *msg, size_t msglen)
{
#define LIM(...)                                                               \
	do {                                                                   \
		snprintf(msg, msglen, __VA_ARGS__);                            \
		return -1;                                                     \
	} while (0)
	if (cfg->threads < 1 || cfg->threads > 1024)
		LIM("threads: expected 1..1024");
	if (cfg->max_connections < cfg->threads ||
	    cfg->max_connections > 1000000)
		LIM("max_connections: expected threads..1000000");
	if (cfg->max_body < 1024 || cfg->max_body > JOSE_MAX_JWS_LEN)
		LIM("max_body: expected 1024..%d", JOSE_MAX_JWS_LEN);
	if (cfg->request_timeout_ms < 1000)
		LIM("request_timeout: at least 1s");
	if (cfg->nonce_max_outstanding < 64 ||
	    cfg->nonce_max_outstanding > (1 << 30))
		LIM("nonce.max_outstanding: expected 64..2^30");
	if (cfg->nonce_lifetime_ms < 1000)
		LIM("nonce.lifetime: at least 1s");
	{
		struct wfe_nonce *probe =
		    wfe_nonce_new(cfg->nonce_prefix, NULL, 0, 64, 1000);
		if (probe == NULL)
			LIM("nonce.prefix: 1..8 characters of [A-Za-z0-9_-]");
		wfe_nonce_free(probe);
	}
	if (cfg->orders_per_page < 1 || cfg->orders_per_page > 1000)
		LIM("orders_per_page: expected 1..1000");
	if (cfg->account_cache_ttl_ms < 0 ||
	    cfg->account_cache_ttl_ms > 300 * 1000)
		LIM("account_cache.ttl: expected 0s..300s");
	if (cfg->account_cache_size < 1 || cfg->account_cache_size > 1 << 24)
		LIM("account_cache.size: expected 1..16777216");
	if (cfg->object_cache_ttl_ms < 0 || cfg->object_cache_ttl_ms > 60 * 1000)
		LIM("object_cache.ttl: expected 0s..60s");
	if (cfg->object_cache_size < 1 || cfg->object_cache_size > 1 << 20)
		LIM("object_cache.size: expected 1..1048576");
#undef LIM
	return 0;
}

/* Test-mode environment knobs (docs/testing-clients.md); the ANVIL_ name
 * wins over Pebble's. */
static int
apply_env(struct wfe_config *cfg, char *err, size_t errlen)
{
	const char *e;
	json_error_t jerr;
	json_t *f;

	if (env_percent("PEBBLE_WFE_NONCEREJECT", &cfg->nonce_reject_percent,
		err, errlen) != 0 ||
	    env_percent("ANVIL_WFE_NONCE_REJECT_PERCENT",
		&cfg->nonce_reject_percent, err, errlen) != 0)
		return -1;
	if ((e = getenv("ANVIL_WFE_FAULTS")) != NULL && e[0] != '\0') {
		f = json_loads(e, 0, &jerr);
		if (f == NULL) {
			snprintf(err, errlen, "ANVIL_WFE_FAULTS: not JSON: %s",
			    jerr.text);
			return -1;
		}
		json_decref(cfg->faults);
		cfg->faults = json_is_null(f) ? NULL : f;
		if (json_is_null(f))
			json_decref(f);
	}
	env_flag("ANVIL_WFE_ACCESS_LOG", &cfg->access_log);
	return 0;
}

int
wfe_config_parse(const json_t *obj, const char *path, struct wfe_config *cfg,
    char *err, size_t errlen)
{
	json_t *copy = NULL;
	char *auth = NULL;
	char sub[256];
	int rc = -1;

	memset(cfg, 0, sizeof(*cfg));
	set_defaults(cfg);
	if (!json_is_object(obj)) {
		snprintf(err, errlen, "%s: expected an object", path);
		goto out;
	}
	copy = json_deep_copy(obj);
	if (copy == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	drop_nulls(copy);
	if (config_parse(path, copy, wfe_spec, cfg, err, errlen) != 0 ||
	    config_common_check(&cfg->common, path, err, errlen) != 0)
		goto out;
	if (cfg->listen_addr == NULL)
		cfg->listen_addr = xstrdup("127.0.0.1");
	if (cfg->nonce_prefix == NULL)
		cfg->nonce_prefix = xstrdup("a1");
#define BAD(...)                                                               \
	do {                                                                   \
		snprintf(sub, sizeof(sub), __VA_ARGS__);                       \
		snprintf(err, errlen, "%s: %s", path, sub);                    \
		goto out;                                                      \
	} while (0)
	if (cfg->listen_port < 0 || cfg->listen_port > 65535)
		BAD("listen.port: out of range");
	auth = wfe_url_authority(cfg->base_url);
	if (auth == NULL)
		BAD("base_url: expected http(s)://host[:port]");
	{
		char *slash = strchr(strstr(cfg->base_url, "://") + 3, '/');
		if (slash != NULL && strspn(slash, "/") != strlen(slash))
			BAD("base_url: must not have a path");
		if (slash != NULL)
			*slash = '\0';
	}
	if (check_sizes(cfg, sub, sizeof(sub)) != 0) {
		snprintf(err, errlen, "%s: %s", path, sub);
		goto out;
	}
	if (apply_env(cfg, sub, sizeof(sub)) != 0) {
		snprintf(err, errlen, "%s: %s", path, sub);
		goto out;
	}
	if (cfg->nonce_reject_percent < 0 || cfg->nonce_reject_percent > 100)
		BAD("test.nonce_reject_percent: expected 0..100");
	if (cfg->faults != NULL &&
	    wfe_faults_check(cfg->faults, sub, sizeof(sub)) != 0) {
		snprintf(err, errlen, "%s: %s", path, sub);
		goto out;
	}
	/* 1024 only for test mode (Pebble's floor; configs/pebble-compat). */
	if (cfg->jose_rsa_min_bits < 1024 || cfg->jose_rsa_max_bits > 8192 ||
	    cfg->jose_rsa_min_bits > cfg->jose_rsa_max_bits)
		BAD("jose.rsa_min_bits/rsa_max_bits: 1024 <= min <= max <= "
		    "8192");
	if (cfg->tls_priorities == NULL)
		cfg->tls_priorities = xstrdup(WFE_TLS_PRIORITIES);
	else if (cfg->tls_priorities[0] == '\0' ||
	    strlen(cfg->tls_priorities) > 1024)
		BAD("tls.priorities: a GnuTLS priority string, 1..1024 "
		    "characters");
	if (cfg->mgmt_port < 0 || cfg->mgmt_port > 65535)
		BAD("management.port: out of range");
	if (cfg->mgmt_port > 0 && cfg->mgmt_addr == NULL)
		cfg->mgmt_addr = xstrdup("127.0.0.1");
	if (cfg->pki_port < 0 || cfg->pki_port > 65535)
		BAD("pki.port: out of range");
	if (cfg->pki_port > 0 && cfg->pki_addr == NULL)
		cfg->pki_addr = xstrdup("127.0.0.1");
#undef BAD
	rc = 0;
out:
	free(auth);
	json_decref(copy);
	return rc;
}

void
wfe_config_clear(struct wfe_config *cfg)
{
	if (cfg == NULL)
		return;
	jspec_clear(wfe_spec, cfg);
	memset(cfg, 0, sizeof(*cfg));
}
