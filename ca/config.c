/*
 * config.c - configs/<env>/ca.json (keys documented in docs/config/ca.md).
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"

#define CFG(f) offsetof(struct ca_config, f)

static const struct jspec keys_spec[] = {
    {"rsa_min_bits", JSPEC_INT, CFG(settings.rsa_min_bits), 0, NULL, 0},
    {"rsa_max_bits", JSPEC_INT, CFG(settings.rsa_max_bits), 0, NULL, 0},
    {"allow_p521", JSPEC_BOOL, CFG(settings.allow_p521), 0, NULL, 0},
    JSPEC_END,
};

static const struct jspec test_spec[] = {
    {"alternate_roots", JSPEC_INT, CFG(settings.alternate_roots), 0, NULL, 0},
    JSPEC_END,
};

static const struct jspec ca_spec[] = {
    {"test", JSPEC_OBJECT, 0, 0, test_spec, 0},
    {"keys", JSPEC_OBJECT, 0, 0, keys_spec, 0},
    CONFIG_COMMON_RPC_SPEC(struct ca_config, common),
    {"sa", JSPEC_JSON, CFG(sa), 1, NULL, 0},
    {"profiles", JSPEC_STRING, CFG(profiles), 1, NULL, 0},
    {"issuers", JSPEC_STRING, CFG(issuers), 1, NULL, 0},
    {"public_base_url", JSPEC_STRING, CFG(settings.public_base_url), 1, NULL,
	0},
    {"serial_prefix", JSPEC_INT, CFG(settings.serial_prefix), 0, NULL, 0},
    {"crl_shards", JSPEC_INT, CFG(settings.crl_shards), 0, NULL, 0},
    {"crl_period", JSPEC_DURATION, CFG(crl_period_ms), 0, NULL, 0},
    {"crl_validity", JSPEC_DURATION, CFG(settings.crl_validity_ms), 0, NULL, 0},
    {"ocsp_validity", JSPEC_DURATION, CFG(settings.ocsp_validity_ms), 0, NULL,
	0},
    {"ocsp_url", JSPEC_BOOL, CFG(settings.ocsp_url), 0, NULL, 0},
    JSPEC_END,
};

/* See ca.h. */
int
ca_config_parse(const json_t *obj, const char *path, struct ca_config *cfg,
    char *err, size_t errlen)
{
	memset(cfg, 0, sizeof(*cfg));
	ca_settings_defaults(&cfg->settings);
	cfg->common.debug_port = 8102;
	cfg->crl_period_ms = 3600 * 1000;
	if (config_parse(path, obj, ca_spec, cfg, err, errlen) != 0 ||
	    config_common_check(&cfg->common, path, err, errlen) != 0)
		return -1;
	if (cfg->settings.rsa_min_bits < 1024 ||
	    cfg->settings.rsa_max_bits > 8192 ||
	    cfg->settings.rsa_min_bits > cfg->settings.rsa_max_bits) {
		snprintf(err, errlen,
		    "%s: keys.rsa_min_bits/rsa_max_bits: "
		    "need 1024 <= min <= max <= 8192",
		    path);
		return -1;
	}
	{
		/* Pebble's knob: N alternate chains (test mode only). */
		const char *e = getenv("PEBBLE_ALTERNATE_ROOTS");
		char *end;
		long long v;

		if (e != NULL && e[0] != '\0') {
			v = strtoll(e, &end, 10);
			if (*end != '\0' || v < 0 || v > 10) {
				snprintf(err, errlen,
				    "PEBBLE_ALTERNATE_ROOTS: expected 0..10, "
				    "got \"%.20s\"",
				    e);
				return -1;
			}
			cfg->settings.alternate_roots = v;
		}
	}
	if (cfg->settings.alternate_roots < -1 ||
	    cfg->settings.alternate_roots > 10) {
		snprintf(err, errlen, "%s: test.alternate_roots: -1..10", path);
		return -1;
	}
	if (cfg->crl_period_ms < 1000) {
		snprintf(err, errlen, "%s: crl_period: at least 1s", path);
		return -1;
	}
	return 0;
}

/* Frees what ca_config_parse filled. */
void
ca_config_clear(struct ca_config *cfg)
{
	if (cfg == NULL)
		return;
	jspec_clear(ca_spec, cfg);
	memset(cfg, 0, sizeof(*cfg));
}
