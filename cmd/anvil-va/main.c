/* LIBS: va rpc core */
/*
 * anvil-va - the validation authority process: serves va.validate and
 * va.check_caa (docs/rpc-methods.md) over RPC; /metrics and /healthz on the
 * debug port.
 *
 *   anvil-va --config configs/dev/va.json [--check]
 *
 * Config keys: docs/config/va.md.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "rpc/rpc.h"
#include "va/va.h"

static int
health(void *arg, char *msg, size_t msglen)
{
	return va_health(arg, msg, msglen);
}

static void
usage(void)
{
	fprintf(stderr, "usage: anvil-va --config FILE [--check]\n");
}

int
main(int argc, char **argv)
{
	struct va_config cfg;
	struct rpc_server_config rcfg;
	struct metrics *metrics = NULL;
	struct debug_server *dbg = NULL;
	struct rpc_server *srv = NULL;
	struct va *va = NULL;
	json_t *obj = NULL;
	const char *path = NULL;
	char err[1024];
	enum log_level lvl = LOG_LEVEL_INFO;
	int i, check = 0, rc = 1;

	memset(&cfg, 0, sizeof(cfg));
	memset(&rcfg, 0, sizeof(rcfg));
	for (i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "--config") == 0 ||
			strcmp(argv[i], "-c") == 0) &&
		    i + 1 < argc)
			path = argv[++i];
		else if (strcmp(argv[i], "--check") == 0)
			check = 1;
		else {
			usage();
			return 2;
		}
	}
	if (path == NULL) {
		usage();
		return 2;
	}
	log_init("anvil-va", LOG_LEVEL_INFO);
	signal(SIGPIPE, SIG_IGN);
	if ((obj = config_load_file(path, err, sizeof(err))) == NULL)
		goto fail;
	if (va_config_parse(obj, path, &cfg, err, sizeof(err)) != 0)
		goto fail;
	if (log_level_parse(cfg.log_level, &lvl) == 0)
		log_init("anvil-va", lvl);
	if (cfg.rpc == NULL) {
		snprintf(
		    err, sizeof(err), "%s: rpc: required key is missing", path);
		goto fail;
	}
	if (rpc_server_config_parse(cfg.rpc, &rcfg, err, sizeof(err)) != 0) {
		char tmp[1024];

		snprintf(tmp, sizeof(tmp), "%s: rpc.%s", path, err);
		memcpy(err, tmp, sizeof(err));
		goto fail;
	}
	metrics = metrics_new();
	if ((va = va_new(&cfg, metrics, err, sizeof(err))) == NULL)
		goto fail;
	if (check) {
		printf("%s: ok\n", path);
		rc = 0;
		goto out;
	}
	dbg = debug_server_start(cfg.debug_addr, (int)cfg.debug_port, metrics,
	    health, va, err, sizeof(err));
	if (dbg == NULL)
		goto fail;
	srv = rpc_server_new_service(&rcfg, RPC_SVC_VA, va_rpc_handlers(), va,
	    metrics, health, va, err, sizeof(err));
	if (srv == NULL)
		goto fail;
	log_info("serving va.validate and va.check_caa on %s; DNS %s; "
		 "http-01 port %lld, tls-alpn-01 port %lld; network %s%s",
	    rcfg.listen, cfg.dns_resolvers[0], (long long)cfg.http01_port,
	    (long long)cfg.tlsalpn01_port, cfg.network_mode,
	    cfg.always_valid ? "; ALWAYS VALID (test mode)" : "");
	rpc_server_run(srv);
	log_info("stopped");
	rc = 0;
	goto out;
fail:
	log_error("%s", err);
	rc = 1;
out:
	rpc_server_free(srv);
	debug_server_stop(dbg);
	va_free(va);
	metrics_free(metrics);
	rpc_server_config_clear(&rcfg);
	va_config_clear(&cfg);
	json_decref(obj);
	return rc;
}
