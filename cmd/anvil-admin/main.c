/* LIBS: ca rpc core */
/*
 * anvil-admin - the operator's command line. Talks to the services over
 * RPC (never SQL); `ca init` is the local key ceremony.
 *
 *   anvil-admin help
 *   anvil-admin <command words> [options]
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cmd/anvil-admin/admin.h"

static const struct admin_cmd commands[] = {
	{"ca init", admin_ca_init,
	    "[--dir var/pki]  create roots, intermediates, a cross-sign, "
	    "roots.pem and issuers.json (never overwrites)"},
	{"crl regenerate", admin_crl_regenerate,
	    "[--ca unix:var/run/ca.sock] [--issuer ID] [--shard N]  sign and "
	    "store CRLs now (all shards of all issuers by default)"},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void
usage(FILE *f)
{
	size_t k;

	fprintf(f, "usage: anvil-admin <command> [options]\n\ncommands:\n");
	for (k = 0; k < NCOMMANDS; k++)
		fprintf(f, "  %s %s\n", commands[k].name, commands[k].help);
}

/* Number of words of name matched by argv[1..], 0 if it does not match. */
static int
match(const char *name, int argc, char **argv)
{
	char buf[128], *save = NULL, *w;
	int i = 1;

	snprintf(buf, sizeof(buf), "%s", name);
	for (w = strtok_r(buf, " ", &save); w != NULL;
	    w = strtok_r(NULL, " ", &save), i++) {
		if (i >= argc || strcmp(argv[i], w) != 0)
			return 0;
	}
	return i - 1;
}

/* See admin.h. */
struct rpc_client *
admin_client(const char *target, const char *name)
{
	struct rpc_client_config cfg;
	struct rpc_client *c;
	char err[512];

	memset(&cfg, 0, sizeof(cfg));
	cfg.target = (char *)target;
	cfg.timeout_ms = 30000;
	cfg.connections = 1;
	cfg.max_frame = RPC_DEFAULT_MAX_FRAME;
	c = rpc_client_new(&cfg, name, NULL, err, sizeof(err));
	if (c == NULL)
		fprintf(stderr, "anvil-admin: %s: %s\n", target, err);
	return c;
}

int
main(int argc, char **argv)
{
	size_t k;
	int n;

	log_init("anvil-admin", LOG_LEVEL_WARN);
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2 || strcmp(argv[1], "help") == 0 ||
	    strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (k = 0; k < NCOMMANDS; k++) {
		if ((n = match(commands[k].name, argc, argv)) > 0)
			return commands[k].fn(argc - 1 - n, argv + 1 + n);
	}
	fprintf(stderr, "anvil-admin: unknown command \"%s\"\n\n", argv[1]);
	usage(stderr);
	return 2;
}
