/* LIBS: ca jose rpc core */
/*
 * anvil-admin - the operator's command line. Talks to the services over
 * RPC (never SQL); `ca init` is the local key ceremony and `db migrate`
 * runs anvil-sa --migrate (the SA holds the database credentials).
 *
 *   anvil-admin help
 *   anvil-admin <command words> [options]
 */
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/anvil-admin/admin.h"

#define COMMON_HELP                                                            \
	"common: --json --dry-run --config FILE "                              \
	"--sa/--ra/--ca TARGET --help"

static const struct admin_cmd commands[] = {
    {"revoke", admin_revoke,
	"--serial S | --serials-file F | --account ID | --spki-sha256 H | "
	"--cert-file F  [--reason NAME] [--block-key]  revoke certificates"},
    {"block-key", admin_block_key,
	"--spki-sha256 H | --key-file F | --cert-file F  --comment TEXT "
	"[--revoke]  refuse a key from now on"},
    {"account show", admin_account_show, "ID  an account"},
    {"account deactivate", admin_account_deactivate,
	"ID  deactivate an account"},
    {"cert show", admin_cert_show,
	"SERIAL  status, identifiers, account and PEM chain"},
    {"cert list", admin_cert_list,
	"--account ID | --expiring-within 7d | --identifier NAME "
	"[--limit N]  certificates"},
    {"order show", admin_order_show, "ID  an order and its authorizations"},
    {"eab create", admin_eab_create,
	"[--comment TEXT] [--kid KID]  new EAB key (the HMAC key is "
	"printed once)"},
    {"eab list", admin_eab_list, "  EAB keys (without HMAC keys)"},
    {"eab revoke", admin_eab_revoke, "KID  revoke an unused EAB key"},
    {"ca init", admin_ca_init,
	"[--dir var/pki] [--pkcs11 --module SO --token LABEL "
	"(--pin-file F | --pin-env VAR) [--label-prefix P]] "
	"[--intermediate-pathlen 0|1]  create roots, "
	"intermediates, a cross-sign, roots.pem and issuers.json (never "
	"overwrites; --pkcs11: keys generated in the token)"},
    {"db migrate", admin_db_migrate,
	"[--sa-config FILE] [--sa-bin PATH]  apply schema migrations "
	"(runs anvil-sa --migrate)"},
    {"setup", admin_setup,
	"--host NAME [--db local|DSN] [--keys files|pkcs11] [--out DIR] "
	"[--force] | --check [--dir DIR]  write (or check) a production "
	"config set"},
    {"check-config", admin_check_config,
	"[--dir DIR]  validate a config set before starting it"},
    {"backup", admin_backup,
	"--out DIR [--config-dir /etc/anvil]  pg_dump plus config and keys "
	"(runs anvil-backup)"},
    {"restore", admin_restore,
	"BACKUP --dsn DSN [--config-dir DIR] [--restore-config]  into an "
	"empty database, then anvil-sa --after-restore"},
    {"crl regenerate", admin_crl_regenerate,
	"[--issuer ID] [--shard N]  sign and store CRLs now (all shards "
	"of all issuers by default)"},
    {"tkauth token", admin_tkauth_token,
	"--tnauthlist VALUE (--account ID|URL | --account-key FILE) [--allow-ca] "
	"[--ttl 10m] [--iss URL] [--key F --chain F]  mint an RFC 9448 "
	"Authority Token for tkauth-01 with the development Token "
	"Authority"},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void
usage(FILE *f)
{
	size_t k;

	fprintf(f, "usage: anvil-admin <command> [options]\n\ncommands:\n");
	for (k = 0; k < NCOMMANDS; k++)
		fprintf(f, "  %s %s\n", commands[k].name, commands[k].help);
	fprintf(f,
	    "\n%s\nconfig: --config, $ANVIL_ADMIN_CONFIG or "
	    "configs/dev/admin.json\n",
	    COMMON_HELP);
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

/* "user(uid)", or "$SUDO_USER via user(uid)" under sudo. */
static void
identity(char *buf, size_t len)
{
	struct passwd *pw = getpwuid(getuid());
	const char *sudo = getenv("SUDO_USER");
	const char *name = pw != NULL ? pw->pw_name : "unknown";

	if (sudo != NULL && sudo[0] != '\0')
		snprintf(
		    buf, len, "%s via %s(%u)", sudo, name, (unsigned)getuid());
	else
		snprintf(buf, len, "%s(%u)", name, (unsigned)getuid());
}

int
main(int argc, char **argv)
{
	struct admin_ctx ctx;
	size_t k;
	int n, rc = 2;

	log_init("anvil-admin", LOG_LEVEL_WARN);
	signal(SIGPIPE, SIG_IGN);
	memset(&ctx, 0, sizeof(ctx));
	ctx.argv0 = argv[0];
	identity(ctx.who, sizeof(ctx.who));
	if (argc < 2 || strcmp(argv[1], "help") == 0 ||
	    strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (k = 0; k < NCOMMANDS; k++) {
		if ((n = match(commands[k].name, argc, argv)) > 0) {
			ctx.cmd = commands[k].name;
			ctx.usage = commands[k].help;
			rc = commands[k].fn(&ctx, argc - 1 - n, argv + 1 + n);
			admin_ctx_clear(&ctx);
			return rc;
		}
	}
	fprintf(stderr,
	    "anvil-admin: unknown command \"%s\" (see "
	    "anvil-admin help)\n",
	    argv[1]);
	return rc;
}
