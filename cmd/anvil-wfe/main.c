/* LIBS: wfe jose rpc core */
/*
 * anvil-wfe - the ACME web front end.
 *
 *   anvil-wfe -c configs/dev/wfe.json [--check]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "wfe/wfe.h"

static void
usage(void)
{
	fprintf(stderr, "usage: anvil-wfe -c CONFIG [--check]\n");
}

static const struct config_env env_table[] = {
    {"ANVIL_WFE_LISTEN_PORT", "listen.port"},
    {"ANVIL_WFE_BASE_URL", "base_url"},
    {"ANVIL_WFE_DEBUG_PORT", "debug.port"},
    {"ANVIL_WFE_NONCE_PREFIX", "nonce.prefix"},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check", no_argument, NULL, 'k'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *path = NULL;
	struct wfe_config cfg;
	json_t *obj = NULL;
	enum log_level lvl = LOG_LEVEL_INFO;
	char err[512];
	int ch, check = 0, rc = 2;

	memset(&cfg, 0, sizeof(cfg));
	while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'k':
			check = 1;
			break;
		default:
			usage();
			goto out;
		}
	}
	if (path == NULL) {
		usage();
		goto out;
	}
	log_init("anvil-wfe", LOG_LEVEL_INFO);
	if ((obj = config_load_file(path, err, sizeof(err))) == NULL) {
		log_error("%s", err);
		goto out;
	}
	config_apply_env(obj, env_table);
	if (wfe_config_parse(obj, path, &cfg, err, sizeof(err)) != 0) {
		log_error("%s", err);
		goto out;
	}
	if (check) {
		printf("%s: ok\n", path);
		rc = 0;
		goto out;
	}
	if (log_level_parse(cfg.log_level, &lvl) == 0)
		log_init("anvil-wfe", lvl);
	rc = wfe_main(&cfg);
out:
	wfe_config_clear(&cfg);
	json_decref(obj);
	return rc;
}
