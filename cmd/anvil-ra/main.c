/* LIBS: ra jose rpc core */
/*
 * anvil-ra - the registration authority process.
 *
 *   anvil-ra --config configs/dev/ra.json [--check]
 *
 * Reads the config, connects (lazily) to anvil-sa / anvil-va / anvil-ca,
 * serves /metrics and /healthz on the debug port (healthy when all three
 * answer health.check), recovers orders left in `processing` by a crash,
 * then serves the ra.* RPC methods until SIGTERM/SIGINT.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "ra/ra.h"
#include "rpc/rpc.h"

static void
usage(void)
{
	fprintf(stderr, "usage: anvil-ra --config FILE [--check]\n");
}

int
main(int argc, char **argv)
{
	const char *path = NULL;
	json_t *obj = NULL;
	struct ra_config cfg;
	struct rpc_server_config scfg;
	struct metrics *m = NULL;
	struct ra *ra = NULL;
	struct debug_server *dbg = NULL;
	struct rpc_server *srv = NULL;
	char err[1024];
	int i, check = 0, rc = 1;

	memset(&cfg, 0, sizeof(cfg));
	memset(&scfg, 0, sizeof(scfg));
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (strcmp(argv[i], "--check") == 0)
			check = 1;
		else if (strcmp(argv[i], "--version") == 0) {
			printf("anvil-ra %s\n", ANVIL_VERSION);
			return 0;
		} else {
			usage();
			return 2;
		}
	}
	if (path == NULL) {
		usage();
		return 2;
	}
	log_init("anvil-ra", LOG_LEVEL_INFO);
	obj = config_load_file(path, err, sizeof(err));
	if (obj == NULL) {
		fprintf(stderr, "anvil-ra: %s\n", err);
		goto out;
	}
	if (ra_config_parse(obj, path, &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "anvil-ra: %s\n", err);
		goto out;
	}
	log_init("anvil-ra", cfg.log_level);
	if (cfg.rpc == NULL) {
		fprintf(stderr, "anvil-ra: %s: rpc: required\n", path);
		goto out;
	}
	if (rpc_server_config_parse(cfg.rpc, &scfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "anvil-ra: %s: rpc.%s\n", path, err);
		goto out;
	}
	if (check) {
		printf("%s: ok\n", path);
		rc = 0;
		goto out;
	}
	m = metrics_new();
	{
		char *daddr = xstrdup(cfg.debug_addr);
		int dport = (int)cfg.debug_port;

		ra = ra_new(&cfg, m, err, sizeof(err));
		if (ra == NULL) {
			free(daddr);
			fprintf(stderr, "anvil-ra: %s: %s\n", path, err);
			goto out;
		}
		dbg = debug_server_start(
		    daddr, dport, m, ra_health, ra, err, sizeof(err));
		free(daddr);
		if (dbg == NULL) {
			fprintf(stderr, "anvil-ra: debug server: %s\n", err);
			goto out;
		}
	}
	srv = rpc_server_new_service(&scfg, RPC_SVC_RA, ra_rpc_handlers(), ra,
	    m, ra_health, ra, err, sizeof(err));
	if (srv == NULL) {
		fprintf(stderr, "anvil-ra: rpc server: %s\n", err);
		goto out;
	}
	if (ra_start_recovery_thread(ra) != 0)
		log_warn("anvil-ra: cannot start the recovery thread");
	log_info("anvil-ra %s: serving on %s", ANVIL_VERSION, scfg.listen);
	rpc_server_run(srv);
	log_info("anvil-ra: stopped");
	rc = 0;
out:
	rpc_server_free(srv);
	debug_server_stop(dbg);
	ra_free(ra);
	metrics_free(m);
	rpc_server_config_clear(&scfg);
	ra_config_clear(&cfg);
	json_decref(obj);
	return rc;
}
