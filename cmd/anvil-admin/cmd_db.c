/*
 * cmd_db.c - `anvil-admin db migrate`: the admin holds no database
 * credentials, so it runs `anvil-sa --config <sa config> --migrate`, the
 * SA binary next to anvil-admin (or --sa-bin / "sa_bin" in admin.json).
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd/anvil-admin/admin.h"

/* anvil-sa in the directory of this executable. Caller frees. */
static char *
sibling_sa(const char *argv0)
{
	char self[PATH_MAX], *dir;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n > 0)
		self[n] = '\0';
	else
		snprintf(self, sizeof(self), "%s", argv0);
	dir = dirname(self);
	return xasprintf("%s/anvil-sa", dir);
}

/* Runs "bin --config sa_cfg --migrate" and waits: 0, or the exit code
 * (1) after printing the failure. */
static int
run_migrate(struct admin_ctx *ctx, const char *bin, const char *sa_cfg)
{
	int status;
	pid_t pid;

	fflush(stdout);
	if ((pid = fork()) < 0) {
		return admin_fail(ctx, "fork: %s", strerror(errno));
	}
	if (pid == 0) {
		/* The SA's messages go to stderr so --json stdout stays JSON.
		 */
		if (ctx->json && dup2(2, 1) < 0)
			_exit(127);
		execl(bin, bin, "--config", sa_cfg, "--migrate", (char *)NULL);
		fprintf(stderr, "anvil-admin db migrate: %s: %s\n", bin,
		    strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			return admin_fail(ctx, "waitpid: %s", strerror(errno));
		}
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		return admin_fail(ctx, "%s --migrate failed (status %d)", bin,
		    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	}
	return 0;
}

/* See admin.h. */
int
admin_db_migrate(struct admin_ctx *ctx, int argc, char **argv)
{
	const char *sa_cfg = NULL, *sa_bin = NULL;
	const struct admin_opt opts[] = {
	    {"--sa-config", .str = &sa_cfg},
	    {"--sa-bin", .str = &sa_bin},
	    {NULL},
	};
	char *bin = NULL;
	int rc;

	if ((rc = admin_parse_opts(ctx, argc, argv, opts)) >= 0)
		goto out;
	rc = 1;
	if (sa_cfg == NULL &&
	    (sa_cfg = admin_config_str(ctx, "sa_config")) == NULL) {
		if (ctx->config != NULL)
			admin_fail(ctx,
			    "%s: no \"sa_config\" (or pass "
			    "--sa-config)",
			    ctx->config_path);
		goto out;
	}
	if (sa_bin == NULL && ctx->config != NULL)
		sa_bin =
		    json_string_value(json_object_get(ctx->config, "sa_bin"));
	bin = sa_bin ? xstrdup(sa_bin) : sibling_sa(ctx->argv0);
	if (access(bin, X_OK) != 0) {
		rc = admin_fail(ctx, "%s: %s", bin, strerror(errno));
		goto out;
	}
	if (access(sa_cfg, R_OK) != 0) {
		rc = admin_fail(ctx, "%s: %s", sa_cfg, strerror(errno));
		goto out;
	}
	if (ctx->dry_run) {
		if (ctx->json) {
			json_t *o = json_pack("{s:b, s:[s,s,s,s]}", "dry_run",
			    1, "command", bin, "--config", sa_cfg, "--migrate");
			admin_print_json(o);
			json_decref(o);
		} else
			printf("dry run: would run %s --config %s --migrate\n",
			    bin, sa_cfg);
		rc = 0;
		goto out;
	}
	if ((rc = run_migrate(ctx, bin, sa_cfg)) != 0)
		goto out;
	log_audit(NULL, "admin-db-migrate",
	    "admin=\"%s\" sa_config=%s "
	    "result=ok",
	    ctx->who, sa_cfg);
	if (ctx->json) {
		json_t *o =
		    json_pack("{s:b, s:s}", "migrated", 1, "sa_config", sa_cfg);
		admin_print_json(o);
		json_decref(o);
	}
	rc = 0;
out:
	free(bin);
	return rc;
}
