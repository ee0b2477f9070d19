/*
 * admin.h - anvil-admin subcommands. Each one is a function taking the
 * command context and the arguments after its name (argv[0] is the first
 * option) and returning the process exit status (0 ok, 1 failure, 2 usage).
 * Add a command by writing the function in a cmd_<area>.c and one line in
 * the table of main.c; a command with options only (no positional
 * arguments) declares them as a struct admin_opt table for
 * admin_parse_opts.
 *
 * Every command accepts the common options parsed by admin_common_opt:
 * --json, --dry-run, --config FILE, --sa/--ra/--ca TARGET, --help. They
 * are matched first, so a command option must not reuse one of these names
 * (`tkauth token` spells the token's "ca": true as --allow-ca).
 */
#ifndef ANVIL_ADMIN_H
#define ANVIL_ADMIN_H

#include <stdio.h>

#include "core/core.h"
#include "rpc/rpc.h"

enum admin_svc { ADMIN_SA, ADMIN_RA, ADMIN_CA, ADMIN__MAX };

/* One run of the tool: options common to every command and the clients. */
struct admin_ctx {
	const char *argv0;       /* borrowed: how the tool was started */
	const char *cmd;         /* borrowed: command words, for messages */
	const char *usage;       /* borrowed: the command's option line */
	int json;                /* --json: machine-readable stdout */
	int dry_run;             /* --dry-run: change nothing */
	const char *config_path; /* borrowed: --config or env or default */
	const char *target[ADMIN__MAX]; /* borrowed: --sa/--ra/--ca */
	json_t *config;                 /* owned: admin.json once loaded */
	struct rpc_client *client[ADMIN__MAX]; /* owned, lazily created */
	char who[128]; /* admin identity for audit: "user(uid)" */
};

struct admin_cmd {
	const char *name; /* words, e.g. "ca init" */
	int (*fn)(struct admin_ctx *ctx, int argc, char **argv);
	const char *help; /* one line: options and what it does */
};

/*
 * Handles a common option at argv[*i] (advancing *i past its value).
 * Returns 1 if consumed, 0 if not a common option, 2 if --help was asked
 * (the command's usage is printed; exit 0), -1 on a missing value
 * (message printed).
 */
int admin_common_opt(struct admin_ctx *ctx, int argc, char **argv, int *i);
/*
 * admin_common_opt as one step of a command's option loop: 1 when argv[*i]
 * was a common option (go on with the next argument), 0 when it is the
 * command's own, -1 when the command ends now with exit code *rc (0 after
 * --help, 2 after a missing value).
 */
int admin_common_step(
    struct admin_ctx *ctx, int argc, char **argv, int *i, int *rc);
/* The value of option argv[*i] (advancing *i), or NULL with a message. */
const char *admin_optval(struct admin_ctx *ctx, int argc, char **argv, int *i);

/*
 * One option of a command's table for admin_parse_opts. Exactly one of the
 * destinations is set (they point into the caller's variables); values are
 * borrowed from argv.
 */
struct admin_opt {
	const char *name;    /* "--dir"; NULL with pos NULL ends the table */
	const char *pos;     /* or: the command's one positional argument,
				named in messages ("KID"); required, into str */
	int *flag;           /* takes no value: set to 1 */
	const char **str;    /* the value */
	long *port;          /* the value as a port, 1 to 65535 */
	json_t *list;        /* the value appended, each value once */
	const char *refused; /* usage error printed when the option is given */
};
/* Appends a copy of s to the array a (borrowed) unless it is there. */
void admin_add_unique(json_t *a, const char *s);
/*
 * Parses argv (a command's arguments) as the common options and the
 * options of opts. Returns -1 when all parsed, otherwise the exit code
 * after printing the message: 0 after --help, 2 after a usage error (an
 * unknown option, a missing or bad value, a positional argument missing,
 * repeated or not expected).
 */
int admin_parse_opts(
    struct admin_ctx *ctx, int argc, char **argv, const struct admin_opt *opts);
/*
 * argv[*i] as one of the mutually exclusive options `names` (NULL-ended),
 * with its value (advancing *i): *sel (in: the one seen before, or NULL)
 * gets the option, *val its value. 0, or -1 after a usage message: an
 * option not in names, a second one of them ("give one <kind>"), no value.
 */
int admin_exclusive_opt(struct admin_ctx *ctx, int argc, char **argv, int *i,
    const char *const *names, const char *kind, const char **sel,
    const char **val);
/* The usage error "one of <names> is required"; returns 2. */
int admin_exclusive_missing(
    struct admin_ctx *ctx, const char *const *names);
/* Prints "anvil-admin <cmd>: <message> (see --help)" and returns 2. */
int admin_usage_error(struct admin_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prints "anvil-admin <cmd>: <message>" on stderr and returns 1. */
int admin_fail(struct admin_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * The client for a service (borrowed from ctx; freed by admin_ctx_clear),
 * from the --sa/--ra/--ca override or admin.json. NULL with a message.
 */
struct rpc_client *admin_svc(struct admin_ctx *ctx, enum admin_svc svc);
/* A string from admin.json (borrowed), or NULL. */
const char *admin_config_str(struct admin_ctx *ctx, const char *key);
/*
 * Calls method on svc. params is taken (decref'd here; NULL = {}). On 0
 * *res is a new reference (caller decrefs); on -1 the problem is printed
 * as one line unless prob_out is non-NULL, in which case it is handed over
 * (caller frees) and nothing is printed.
 */
int admin_call(struct admin_ctx *ctx, enum admin_svc svc, enum rpc_method_id id,
    json_t *params, json_t **res, struct problem **prob_out);
/* Prints j (borrowed) as indented JSON plus newline on stdout. */
void admin_print_json(const json_t *j);
/* Frees what ctx owns. */
void admin_ctx_clear(struct admin_ctx *ctx);

/*
 * A certificate serial (lowercase hex of the INTEGER's bytes) and the
 * SHA-256 of its SubjectPublicKeyInfo (hex) from every certificate in a
 * PEM file: *serials and *key_hashes are new JSON arrays of strings
 * (caller decrefs; key_hashes may be NULL if not wanted). 0, or -1 with
 * err.
 */
int admin_pem_certs(const char *path, json_t **serials, json_t **key_hashes,
    char *err, size_t errlen);
/*
 * SHA-256 hex of the SubjectPublicKeyInfo of a PEM public or private key
 * file. Caller frees. NULL with err.
 */
char *admin_pem_key_hash(const char *path, char *err, size_t errlen);
/* Parses a revocation reason name (or its number); -1 if unknown. */
int admin_reason_parse(const char *s);
/* The RFC 5280 name of a reason code (static). */
const char *admin_reason_name(int code);

int admin_ca_init(struct admin_ctx *ctx, int argc, char **argv);
int admin_crl_regenerate(struct admin_ctx *ctx, int argc, char **argv);
int admin_revoke(struct admin_ctx *ctx, int argc, char **argv);
int admin_block_key(struct admin_ctx *ctx, int argc, char **argv);
int admin_account_show(struct admin_ctx *ctx, int argc, char **argv);
int admin_account_deactivate(struct admin_ctx *ctx, int argc, char **argv);
int admin_cert_show(struct admin_ctx *ctx, int argc, char **argv);
int admin_cert_list(struct admin_ctx *ctx, int argc, char **argv);
int admin_order_show(struct admin_ctx *ctx, int argc, char **argv);
int admin_eab_create(struct admin_ctx *ctx, int argc, char **argv);
int admin_eab_list(struct admin_ctx *ctx, int argc, char **argv);
int admin_eab_revoke(struct admin_ctx *ctx, int argc, char **argv);
int admin_db_migrate(struct admin_ctx *ctx, int argc, char **argv);
int admin_setup(struct admin_ctx *ctx, int argc, char **argv);
int admin_check_config(struct admin_ctx *ctx, int argc, char **argv);
int admin_backup(struct admin_ctx *ctx, int argc, char **argv);
int admin_restore(struct admin_ctx *ctx, int argc, char **argv);
int admin_tkauth_token(struct admin_ctx *ctx, int argc, char **argv);

#endif
