/*
 * ra_daemon.c - anvil-ra's part of the service skeleton (rpc_service_main):
 * its config (docs/config/ra.md), the RA object with its lazy SA/VA/CA
 * clients, and the recovery thread started once the server is up.
 */
#include <stdlib.h>
#include <string.h>

#include "ra/ra_int.h"

struct ra_daemon {
	struct ra_config cfg;
	struct config_common common; /* moved out of cfg, which ra_new takes */
	struct ra *ra;
};

static void *
ra_d_new(void)
{
	return xcalloc(1, sizeof(struct ra_daemon));
}

static int
ra_d_configure(void *st, json_t *obj, const char *path,
    struct rpc_service_conf *conf, char *err, size_t errlen)
{
	struct ra_daemon *d = st;

	if (ra_config_parse(obj, path, &d->cfg, err, errlen) != 0)
		return -1;
	d->common = d->cfg.common;
	memset(&d->cfg.common, 0, sizeof(d->cfg.common));
	conf->common = &d->common;
	return 0;
}

static int
ra_d_open(void *st, struct rpc_service_conf *conf, char *err, size_t errlen)
{
	struct ra_daemon *d = st;

	if ((d->ra = ra_new(&d->cfg, conf->metrics, err, errlen)) == NULL)
		return -1;
	conf->svc = d->ra;
	conf->handlers = ra_rpc_handlers();
	conf->health = ra_health;
	conf->health_arg = d->ra;
	return 0;
}

static int
ra_d_start(void *st, char *err, size_t errlen)
{
	struct ra_daemon *d = st;

	(void)err;
	(void)errlen;
	if (ra_start_recovery_thread(d->ra) != 0)
		log_warn("cannot start the recovery thread");
	if (ra_star_start(d->ra) != 0)
		log_warn("cannot start the STAR renewal thread");
	return 0;
}

static void
ra_d_free(void *st)
{
	struct ra_daemon *d = st;

	ra_free(d->ra);
	ra_config_clear(&d->cfg);
	config_common_clear(&d->common);
	free(d);
}

/* See ra.h. */
const struct rpc_service_ops ra_service = {
    .name = "anvil-ra",
    .owner = RPC_SVC_RA,
    .state_new = ra_d_new,
    .configure = ra_d_configure,
    .open = ra_d_open,
    .start = ra_d_start,
    .free = ra_d_free,
};
