/*
 * wfe_daemon.c - anvil-wfe's part of the service skeleton
 * (rpc_service_main): its config (docs/config/wfe.md, with environment
 * overrides) and wfe_main, which owns the HTTPS listener, the debug server
 * and the stop signals (the WFE serves HTTP, not RPC).
 */
#include <stdlib.h>
#include <string.h>

#include "wfe/wfe.h"

static const struct config_env env_table[] = {
    {"ANVIL_WFE_LISTEN_PORT", "listen.port"},
    {"ANVIL_WFE_BASE_URL", "base_url"},
    {"ANVIL_WFE_DEBUG_PORT", "debug.port"},
    {"ANVIL_WFE_NONCE_PREFIX", "nonce.prefix"},
    {NULL, NULL},
};

static void *
wfe_d_new(void)
{
	return xcalloc(1, sizeof(struct wfe_config));
}

static int
wfe_d_configure(void *st, json_t *obj, const char *path,
    struct rpc_service_conf *conf, char *err, size_t errlen)
{
	struct wfe_config *cfg = st;

	config_apply_env(obj, env_table);
	if (wfe_config_parse(obj, path, cfg, err, errlen) != 0)
		return -1;
	conf->common = &cfg->common;
	return 0;
}

static int
wfe_d_run(void *st)
{
	return wfe_main(st);
}

static void
wfe_d_free(void *st)
{
	wfe_config_clear(st);
	free(st);
}

/* See wfe.h. */
const struct rpc_service_ops wfe_service = {
    .name = "anvil-wfe",
    .owner = RPC_SVC_ANY,
    .state_new = wfe_d_new,
    .configure = wfe_d_configure,
    .run = wfe_d_run,
    .free = wfe_d_free,
};
