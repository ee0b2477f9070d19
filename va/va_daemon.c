/*
 * va_daemon.c - anvil-va's part of the service skeleton (rpc_service_main):
 * its config (docs/config/va.md) and the validation engine it serves
 * va.validate and va.check_caa with.
 */
#include <stdlib.h>
#include <string.h>

#include "va/va.h"

struct va_daemon {
	struct va_config cfg;
	struct va *va;
};

static void *
va_d_new(void)
{
	return xcalloc(1, sizeof(struct va_daemon));
}

static int
va_d_configure(void *st, json_t *obj, const char *path,
    struct rpc_service_conf *conf, char *err, size_t errlen)
{
	struct va_daemon *d = st;

	if (va_config_parse(obj, path, &d->cfg, err, errlen) != 0)
		return -1;
	conf->common = &d->cfg.common;
	return 0;
}

static int
va_d_health(void *arg, char *msg, size_t msglen)
{
	return va_health(arg, msg, msglen);
}

static int
va_d_open(void *st, struct rpc_service_conf *conf, char *err, size_t errlen)
{
	struct va_daemon *d = st;

	if ((d->va = va_new(&d->cfg, conf->metrics, err, errlen)) == NULL)
		return -1;
	conf->svc = d->va;
	conf->handlers = va_rpc_handlers();
	conf->health = va_d_health;
	conf->health_arg = d->va;
	log_info("DNS %s; http-01 port %lld, tls-alpn-01 port %lld; network "
		 "%s%s",
	    d->cfg.dns_resolvers[0], (long long)d->cfg.http01_port,
	    (long long)d->cfg.tlsalpn01_port, d->cfg.network_mode,
	    d->cfg.always_valid ? "; ALWAYS VALID (test mode)" : "");
	if (d->cfg.mpic_is_remote)
		log_info("mpic: remote perspective %s: answers va.remote_* only",
		    d->cfg.mpic_perspective);
	else if (json_array_size(d->cfg.mpic_remotes) > 0)
		log_info("mpic: primary perspective %s with %zu remote "
			 "perspectives (at most %d may fail)",
		    d->cfg.mpic_perspective,
		    json_array_size(d->cfg.mpic_remotes),
		    va_mpic_allowed_failures(json_array_size(d->cfg.mpic_remotes),
			d->cfg.mpic_max_failures));
	return 0;
}

/*
 * --check: build the validation engine once and throw it away, so what only
 * va_new checks (resolver addresses, network CIDRs) is refused before a
 * start, as it was before the skeleton. 0, or -1 with err.
 */
static int
va_d_check(void *st, char *err, size_t errlen)
{
	struct va_daemon *d = st;
	struct metrics *m = metrics_new();
	struct va *va = va_new(&d->cfg, m, err, errlen);
	int rc = va != NULL ? 0 : -1;

	va_free(va);
	metrics_free(m);
	return rc;
}

static void
va_d_free(void *st)
{
	struct va_daemon *d = st;

	va_free(d->va);
	va_config_clear(&d->cfg);
	free(d);
}

/* See va.h. */
const struct rpc_service_ops va_service = {
    .name = "anvil-va",
    .owner = RPC_SVC_VA,
    .state_new = va_d_new,
    .configure = va_d_configure,
    .open = va_d_open,
    .check = va_d_check,
    .free = va_d_free,
};
