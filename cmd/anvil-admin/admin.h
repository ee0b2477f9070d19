/*
 * admin.h - anvil-admin subcommands. Each one is a function taking the
 * arguments after its name (argv[0] is the first option) and returning the
 * process exit status (0 ok, 1 failure, 2 usage). Add a command by
 * writing the function in its own cmd_<area>.c and one line in the table
 * of main.c.
 */
#ifndef ANVIL_ADMIN_H
#define ANVIL_ADMIN_H

#include "core/core.h"
#include "rpc/rpc.h"

struct admin_cmd {
	const char *name; /* words, e.g. "ca init" */
	int (*fn)(int argc, char **argv);
	const char *help; /* one line: options and what it does */
};

/*
 * A client for target ("unix:/path" or "tcp:host:port"), named name for
 * metrics; NULL with a message on stderr. Caller frees with
 * rpc_client_free.
 */
struct rpc_client *admin_client(const char *target, const char *name);

int admin_ca_init(int argc, char **argv);
int admin_crl_regenerate(int argc, char **argv);

#endif
