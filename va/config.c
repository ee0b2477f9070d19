/*
 * config.c - configs/<env>/va.json (keys documented in docs/config/va.md).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "va/va_int.h"

#define F(n, t, m) JSPEC_FIELD(struct va_config, n, t, m)
#define FS(n, m, c) JSPEC_STRV(struct va_config, n, m, c)
#define FO(n, s) JSPEC_SUB(n, s)

static const struct jspec dns_spec[] = {
    FS("resolvers", dns_resolvers, n_dns_resolvers),
    F("timeout", JSPEC_DURATION, dns_timeout_ms),
    F("tries", JSPEC_INT, dns_tries), JSPEC_END};
static const struct jspec network_spec[] = {
    F("mode", JSPEC_STRING, network_mode),
    FS("allow", network_allow, n_network_allow), JSPEC_END};
static const struct jspec test_spec[] = {
    F("sleep_max", JSPEC_DURATION, sleep_max_ms),
    F("always_valid", JSPEC_BOOL, always_valid), JSPEC_END};
static const struct jspec mpic_spec[] = {
    F("role", JSPEC_STRING, mpic_role),
    F("perspective", JSPEC_STRING, mpic_perspective),
    F("region", JSPEC_STRING, mpic_region),
    F("remotes", JSPEC_JSON, mpic_remotes),
    F("max_remote_failures", JSPEC_INT, mpic_max_failures),
    F("remote_timeout", JSPEC_DURATION, mpic_remote_timeout_ms),
    F("min_regions", JSPEC_INT, mpic_min_regions), JSPEC_END};
static const struct jspec attest_spec[] = {
    F("tpm_roots", JSPEC_STRING, attest_tpm_roots),
    F("apple_roots", JSPEC_STRING, attest_apple_roots),
    F("packed_roots", JSPEC_STRING, attest_packed_roots),
    F("android_roots", JSPEC_STRING, attest_android_roots),
    F("android_security_level", JSPEC_STRING, attest_android_level),
    JSPEC_END};
static const struct jspec email_dkim_spec[] = {
    F("key_file", JSPEC_STRING, email_dkim_key_file),
    F("selector", JSPEC_STRING, email_dkim_selector),
    F("domain", JSPEC_STRING, email_dkim_domain), JSPEC_END};
static const struct jspec email_spec[] = {
    F("smtp_url", JSPEC_STRING, email_smtp_url),
    F("maildir", JSPEC_STRING, email_maildir),
    F("secret_file", JSPEC_STRING, email_secret_file),
    FO("dkim", email_dkim_spec),
    F("reply_timeout", JSPEC_DURATION, email_reply_timeout_ms),
    F("poll_interval", JSPEC_DURATION, email_poll_ms), JSPEC_END};
static const struct jspec tkauth_spec[] = {
    F("roots", JSPEC_STRING, tkauth_roots),
    F("allow_ca", JSPEC_BOOL, tkauth_allow_ca),
    FS("x5u_allow", tkauth_x5u_allow, n_tkauth_x5u_allow),
    F("x5u_ca", JSPEC_STRING, tkauth_x5u_ca), JSPEC_END};
static const struct jspec va_spec[] = {
    CONFIG_COMMON_RPC_SPEC(struct va_config, common), FO("dns", dns_spec),
    F("http01_port", JSPEC_INT, http01_port),
    F("tlsalpn01_port", JSPEC_INT, tlsalpn01_port),
    F("https_port", JSPEC_INT, https_port),
    F("http_port_redirect", JSPEC_INT, http_port_redirect),
    F("user_agent", JSPEC_STRING, user_agent),
    FS("caa_identities", caa_identities, n_caa_identities),
    F("validation_timeout", JSPEC_DURATION, validation_timeout_ms),
    F("connect_retries", JSPEC_INT, connect_retries),
    FO("network", network_spec), FO("test", test_spec),
    FO("mpic", mpic_spec), FO("attestation", attest_spec),
    FO("email", email_spec), F("rats", JSPEC_JSON, rats),
    FO("tkauth", tkauth_spec),
    F("bp", JSPEC_JSON, bp), JSPEC_END};

static char **
strv(const char *a, const char *b)
{
	char **v = xcalloc(3, sizeof(*v));

	v[0] = xstrdup(a);
	if (b != NULL)
		v[1] = xstrdup(b);
	return v;
}

void
va_config_defaults(struct va_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->common.debug_port = 8103;
	cfg->dns_resolvers = strv("127.0.0.1:8053", NULL);
	cfg->n_dns_resolvers = 1;
	cfg->dns_timeout_ms = 5000;
	cfg->dns_tries = 2;
	cfg->http01_port = 80;
	cfg->tlsalpn01_port = 443;
	cfg->https_port = 443;
	cfg->http_port_redirect = 80;
	cfg->user_agent = xstrdup("anvil-va/0.1");
	cfg->caa_identities = strv("anvil.local", NULL);
	cfg->n_caa_identities = 1;
	cfg->validation_timeout_ms = 20000;
	cfg->connect_retries = 3;
	cfg->network_mode = xstrdup("private");
	cfg->network_allow = strv("127.0.0.0/8", "::1/128");
	cfg->n_network_allow = 2;
	cfg->mpic_role = xstrdup("primary");
	cfg->mpic_perspective = xstrdup("primary");
	cfg->mpic_max_failures = -1;
	cfg->email_reply_timeout_ms = 45000;
	cfg->email_poll_ms = 250;
}

void
va_config_clear(struct va_config *cfg)
{
	if (cfg == NULL)
		return;
	jspec_clear(va_spec, cfg);
}

static int
port_ok(int64_t p)
{
	return p >= 1 && p <= 65535;
}

/* ANVIL_VA_* port variable into *port (unset: unchanged). */
static int
env_port(const char *name, int64_t *port, char *err, size_t errlen)
{
	return env_int(name, 1, 65535, "a port 1..65535", port, err, errlen);
}

/* Anvil's own test-mode environment knobs (docs/testing-clients.md); they
 * win over the PEBBLE_ aliases. */
static int
apply_anvil_env(struct va_config *cfg, char *err, size_t errlen)
{
	const char *e;
	size_t i;

	env_flag("ANVIL_VA_ALWAYS_VALID", &cfg->always_valid);
	if (env_duration("ANVIL_VA_SLEEP_MAX", 3600 * 1000,
		"a duration up to 1h", &cfg->sleep_max_ms, err, errlen) != 0)
		return -1;
	if ((e = getenv("ANVIL_VA_DNS_RESOLVER")) != NULL && e[0] != '\0') {
		for (i = 0; i < cfg->n_dns_resolvers; i++)
			free(cfg->dns_resolvers[i]);
		free(cfg->dns_resolvers);
		cfg->dns_resolvers = strv(e, NULL);
		cfg->n_dns_resolvers = 1;
	}
	if (env_port("ANVIL_VA_HTTP01_PORT", &cfg->http01_port, err, errlen) !=
		0 ||
	    env_port("ANVIL_VA_TLSALPN01_PORT", &cfg->tlsalpn01_port, err,
		errlen) != 0 ||
	    env_port("ANVIL_VA_HTTPS_PORT", &cfg->https_port, err, errlen) != 0)
		return -1;
	return 0;
}

/* The rules the settings must keep: 0, or -1 with err naming the key. */
static int
check_rules(struct va_config *cfg, const char *path, char *err, size_t errlen)
{
	size_t i;
	const struct {
		int bad;
		const char *what;
	} rules[] = {
	    {!port_ok(cfg->http01_port) || !port_ok(cfg->tlsalpn01_port) ||
		    !port_ok(cfg->https_port) ||
		    !port_ok(cfg->http_port_redirect),
		"http01_port, tlsalpn01_port, https_port and "
		"http_port_redirect must be 1..65535"},
	    {cfg->n_dns_resolvers == 0,
		"dns.resolvers: at least one resolver is required"},
	    {cfg->dns_timeout_ms <= 0 || cfg->dns_tries < 1 ||
		    cfg->dns_tries > 10,
		"dns.timeout must be > 0 and dns.tries 1..10"},
	    {cfg->connect_retries < 0 || cfg->connect_retries > 10,
		"connect_retries: expected 0..10"},
	    {cfg->validation_timeout_ms <= 0 || cfg->sleep_max_ms < 0,
		"validation_timeout must be > 0"},
	    {cfg->email_reply_timeout_ms <= 0 || cfg->email_poll_ms < 10 ||
		    cfg->email_poll_ms > 60000,
		"email.reply_timeout must be > 0 and email.poll_interval "
		"10ms..60s"},
	    {cfg->user_agent[0] == '\0' ||
		    strpbrk(cfg->user_agent, "\r\n") != NULL,
		"user_agent: must be a non-empty single line"},
	    {strcmp(cfg->network_mode, "private") != 0 &&
		    strcmp(cfg->network_mode, "public") != 0,
		"network.mode: expected \"private\" or \"public\""},
	};

	for (i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if (rules[i].bad) {
			snprintf(err, errlen, "%s: %s", path, rules[i].what);
			return -1;
		}
	return va_mpic_config_check(cfg, path, err, errlen);
}

int
va_config_parse(const json_t *obj, const char *path, struct va_config *cfg,
    char *err, size_t errlen)
{
	const char *e;
	int64_t secs = -1;
	char inner[256];

	va_config_defaults(cfg);
	if (config_parse(path, obj, va_spec, cfg, err, errlen) != 0 ||
	    config_common_check(&cfg->common, path, err, errlen) != 0)
		return -1;
	/* Pebble's environment knobs, so client test suites feel at home. */
	if ((e = getenv("PEBBLE_VA_ALWAYS_VALID")) != NULL && e[0] != '\0' &&
	    strcmp(e, "0") != 0 && strcmp(e, "false") != 0)
		cfg->always_valid = 1;
	if (env_int("PEBBLE_VA_SLEEPTIME", 0, 3600, "seconds (0..3600)", &secs,
		err, errlen) != 0)
		return -1;
	if (secs >= 0)
		cfg->sleep_max_ms = secs * 1000;
	if ((e = getenv("PEBBLE_VA_NOSLEEP")) != NULL && e[0] != '\0' &&
	    strcmp(e, "0") != 0 && strcmp(e, "false") != 0)
		cfg->sleep_max_ms = 0;
	if (apply_anvil_env(cfg, err, errlen) != 0)
		return -1;
	if (va_rats_config_check(cfg->rats, inner, sizeof(inner)) != 0) {
		snprintf(err, errlen, "%s: %s", path, inner);
		return -1;
	}

	return check_rules(cfg, path, err, errlen);
}
