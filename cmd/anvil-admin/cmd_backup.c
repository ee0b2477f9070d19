/*
 * cmd_backup.c - `anvil-admin backup` and `anvil-admin restore`: the admin
 * tool holds no database credentials, so both run the anvil-backup script
 * (pg_dump/pg_restore plus the config and key material, then
 * `anvil-sa --after-restore`) installed in PREFIX/share/anvil.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/anvil-admin/admin.h"

/*
 * The script for this installation (PREFIX/bin/../share/anvil), or the
 * source tree's scripts/ copy for binaries in bin/ or build-asan/bin/.
 */
static char *
script_path(void)
{
	static const char *const rel[] = {
	    "../share/anvil/anvil-backup", "../scripts/anvil-backup",
	    "../../scripts/anvil-backup"};
	char self[PATH_MAX], *dir, *p;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	size_t i;

	if (n <= 0)
		return xstrdup("/usr/share/anvil/anvil-backup");
	self[n] = '\0';
	dir = dirname(self);
	for (i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
		p = xasprintf("%s/%s", dir, rel[i]);
		if (access(p, X_OK) == 0)
			return p;
		free(p);
	}
	return xstrdup("/usr/share/anvil/anvil-backup");
}

static int
run_script(struct admin_ctx *ctx, const char *verb, int argc, char **argv)
{
	char **args = xcalloc((size_t)argc + 3, sizeof(*args));
	char *script = script_path();
	int i, n = 0;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			printf("usage: anvil-admin %s\n", ctx->usage);
			free(args);
			free(script);
			return 0;
		}
	}
	args[n++] = script;
	args[n++] = (char *)verb;
	for (i = 0; i < argc; i++)
		args[n++] = argv[i];
	args[n] = NULL;
	fflush(stdout);
	execv(script, args);
	admin_fail(ctx, "%s: %s", script, strerror(errno));
	free(args);
	free(script);
	return 1;
}

/* See admin.h. */
int
admin_backup(struct admin_ctx *ctx, int argc, char **argv)
{
	return run_script(ctx, "backup", argc, argv);
}

/* See admin.h. */
int
admin_restore(struct admin_ctx *ctx, int argc, char **argv)
{
	return run_script(ctx, "restore", argc, argv);
}
