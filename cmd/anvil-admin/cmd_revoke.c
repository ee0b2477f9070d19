/*
 * cmd_revoke.c - `anvil-admin revoke` and `anvil-admin block-key`: the
 * incident commands. Revocation goes through ra.admin_revoke (which
 * records the admin, blocks the key on request and refreshes the CRL
 * shard); selectors are resolved through the SA.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/anvil-admin/admin.h"

#define MAX_SERIALS_FILE (16 * 1024 * 1024)

/* A hex string of 1..maxlen digits, lowercased in place. */
static int
hex_ok(char *s, size_t maxlen)
{
	size_t n = strlen(s), k;

	if (n == 0 || n > maxlen || strspn(s, "0123456789abcdefABCDEF") != n)
		return 0;
	for (k = 0; k < n; k++)
		if (s[k] >= 'A' && s[k] <= 'F')
			s[k] = (char)(s[k] - 'A' + 'a');
	return 1;
}

/* Serials from a file, one per line ('#' comments, blanks skipped). */
static int
read_serials(struct admin_ctx *ctx, const char *path, json_t *out)
{
	char err[256], *buf = NULL, *line, *save = NULL, *e;
	size_t len, lineno = 0;
	int rc = -1;

	if (file_read_all(
		path, MAX_SERIALS_FILE, &buf, &len, err, sizeof(err)) != 0) {
		admin_fail(ctx, "%s", err);
		goto out;
	}
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		while (*line == ' ' || *line == '\t')
			line++;
		for (e = line + strlen(line); e > line &&
		     (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r');
		     e--)
			e[-1] = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		if (!hex_ok(line, 64)) {
			admin_fail(
			    ctx, "%s:%zu: not a hex serial", path, lineno);
			goto out;
		}
		json_array_append_new(out, json_string(line));
	}
	rc = 0;
out:
	free(buf);
	return rc;
}

/* Appends the serials of a {serials: [...]} SA result to out. */
static int
serials_from(
    struct admin_ctx *ctx, enum rpc_method_id method, json_t *params,
    json_t *out)
{
	json_t *res = NULL;

	if (admin_call(ctx, ADMIN_SA, method, params, &res, NULL) != 0)
		return -1;
	json_array_extend(out, json_object_get(res, "serials"));
	json_decref(res);
	return 0;
}

/* Progress on stderr for bulk runs: at most ~20 lines, or \r on a tty. */
static void
progress(size_t done, size_t total, size_t rev, size_t already, size_t fail)
{
	int tty = isatty(2);
	size_t step = total / 20 ? total / 20 : 1;

	if (total < 2 || (!tty && done % step != 0 && done != total))
		return;
	fprintf(stderr,
	    "%sprogress: %zu/%zu revoked=%zu already=%zu "
	    "failed=%zu%s",
	    tty ? "\r" : "", done, total, rev, already, fail,
	    tty && done != total ? "" : "\n");
}

/*
 * One serial (v, borrowed) of revoke_list: appended to revoked, already or
 * failed (borrowed arrays); *down set when the service is unavailable.
 * 1 when a dry run checked it (no progress line), else 0.
 */
static int
revoke_one(struct admin_ctx *ctx, json_t *v, int reason, int block_key,
    json_t *revoked, json_t *already, json_t *failed, int *down)
{
	const char *serial = json_string_value(v), *st;
	json_t *params, *res = NULL, *cert;
	struct problem *p = NULL;

	if (ctx->dry_run) {
		if (admin_call(ctx, ADMIN_SA, RPC_SA_GET_CERTIFICATE,
			json_pack("{s:s}", "serial", serial), &cert, &p) != 0) {
			json_array_append_new(failed,
			    json_pack("{s:s, s:s}", "serial", serial, "error",
				p->detail ? p->detail : ""));
			*down = p->type == PROB_UNAVAILABLE;
			problem_free(p);
			return 1;
		}
		st = json_string_value(json_object_get(cert, "status"));
		json_array_append(
		    st && strcmp(st, "revoked") == 0 ? already : revoked, v);
		json_decref(cert);
		return 1;
	}
	params = json_pack("{s:s, s:i, s:s}", "serial", serial, "reason",
	    reason, "admin", ctx->who);
	if (block_key)
		json_object_set_new(params, "block_key", json_true());
	if (admin_call(ctx, ADMIN_RA, RPC_RA_ADMIN_REVOKE, params, &res, &p) !=
	    0) {
		json_array_append_new(failed,
		    json_pack("{s:s, s:s}", "serial", serial, "error",
			p->detail ? p->detail : prob_type_name(p->type)));
		if (!ctx->json)
			admin_fail(ctx, "%s: %s: %s", serial,
			    prob_type_name(p->type),
			    p->detail ? p->detail : "");
		*down = p->type == PROB_UNAVAILABLE;
		problem_free(p);
	} else {
		st = json_string_value(json_object_get(res, "status"));
		json_array_append(st && strcmp(st, "already_revoked") == 0
			? already
			: revoked,
		    v);
		json_decref(res);
		res = NULL;
	}
	return 0;
}

/* revoke_list's summary: JSON, or one line per would-be revocation and a
 * count line. The arrays are borrowed. */
static void
print_summary(struct admin_ctx *ctx, int reason, json_t *revoked,
    json_t *already, json_t *failed)
{
	json_t *v;
	size_t k;

	if (ctx->json) {
		json_t *o = json_pack("{s:O, s:O, s:O, s:b, s:s}",
		    ctx->dry_run ? "would_revoke" : "revoked", revoked,
		    "already_revoked", already, "failed", failed, "dry_run",
		    ctx->dry_run, "reason", admin_reason_name(reason));
		admin_print_json(o);
		json_decref(o);
	} else if (ctx->dry_run) {
		json_array_foreach(revoked, k, v)
		{
			printf("would revoke %s\n", json_string_value(v));
		}
		printf("dry run: would revoke %zu, already revoked %zu, "
		       "not found %zu (reason %s)\n",
		    json_array_size(revoked), json_array_size(already),
		    json_array_size(failed), admin_reason_name(reason));
	} else {
		printf("revoked %zu, already revoked %zu, failed %zu\n",
		    json_array_size(revoked), json_array_size(already),
		    json_array_size(failed));
	}
}

/*
 * Revokes each serial in list (borrowed) with reason; block_key: 1 true,
 * 0 absent (the RA's default). Prints the summary; returns the exit code.
 */
static int
revoke_list(struct admin_ctx *ctx, json_t *list, int reason, int block_key)
{
	json_t *revoked = json_array(), *already = json_array();
	json_t *failed = json_array(), *v;
	const char *serial;
	size_t k, n = json_array_size(list);
	int rc = 1, down = 0;

	if (n == 0) {
		rc = admin_fail(ctx, "no certificates matched");
		goto out;
	}
	if (admin_svc(ctx, ctx->dry_run ? ADMIN_SA : ADMIN_RA) == NULL)
		goto out;
	json_array_foreach(list, k, v)
	{
		serial = json_string_value(v);
		if (down) {
			/* The service is gone: do not wait a timeout per
			 * serial. */
			json_array_append_new(failed,
			    json_pack("{s:s, s:s}", "serial", serial, "error",
				"not attempted: service "
				"unavailable"));
			progress(k + 1, n, json_array_size(revoked),
			    json_array_size(already), json_array_size(failed));
			continue;
		}
		if (revoke_one(ctx, v, reason, block_key, revoked, already,
			failed, &down) != 0)
			continue;
		progress(k + 1, n, json_array_size(revoked),
		    json_array_size(already), json_array_size(failed));
	}
	if (!ctx->dry_run)
		log_audit(NULL, "admin-revoke",
		    "admin=\"%s\" reason=%d "
		    "block_key=%d revoked=%zu already_revoked=%zu failed=%zu",
		    ctx->who, reason, block_key, json_array_size(revoked),
		    json_array_size(already), json_array_size(failed));
	print_summary(ctx, reason, revoked, already, failed);
	rc = json_array_size(failed) ? 1 : 0;
out:
	json_decref(revoked);
	json_decref(already);
	json_decref(failed);
	return rc;
}

/*
 * The serials a revoke selector names (sel: the option, h: its value) into
 * *list (owned by the caller, may be replaced). 0, or -1 after printing
 * the failure.
 */
static int
selected_serials(
    struct admin_ctx *ctx, const char *sel, const char *h, json_t **list)
{
	char err[256];

	if (strcmp(sel, "--serial") == 0)
		json_array_append_new(*list, json_string(h));
	else if (strcmp(sel, "--serials-file") == 0) {
		if (read_serials(ctx, h, *list) != 0)
			return -1;
	} else if (strcmp(sel, "--account") == 0) {
		if (serials_from(ctx, RPC_SA_SERIALS_BY_ACCOUNT,
			json_pack("{s:I}", "account_id",
			    (json_int_t)strtoll(h, NULL, 10)),
			*list) != 0)
			return -1;
	} else if (strcmp(sel, "--spki-sha256") == 0) {
		if (serials_from(ctx, RPC_SA_SERIALS_BY_KEY,
			json_pack("{s:s}", "key_hash", h), *list) != 0)
			return -1;
	} else {
		json_decref(*list);
		*list = NULL;
		if (admin_pem_certs(h, list, NULL, err, sizeof(err)) != 0) {
			admin_fail(ctx, "%s", err);
			return -1;
		}
	}
	return 0;
}

/* What `revoke` and `block-key` revoke or block: one of these. */
static const char *const revoke_selectors[] = {"--serial", "--serials-file",
    "--account", "--spki-sha256", "--cert-file", NULL};
static const char *const block_selectors[] = {
    "--spki-sha256", "--key-file", "--cert-file", NULL};

/* See admin.h. */
int
admin_revoke(struct admin_ctx *ctx, int argc, char **argv)
{
	json_t *list = json_array();
	char *end, *h = NULL;
	const char *v, *sel = NULL;
	int i, r, reason = 0, block = 0, rc = 2;
	long long id;

	for (i = 0; i < argc; i++) {
		if ((r = admin_common_step(ctx, argc, argv, &i, &rc)) < 0)
			goto out;
		if (r > 0)
			continue;
		if (strcmp(argv[i], "--block-key") == 0) {
			block = 1;
			continue;
		}
		if (strcmp(argv[i], "--reason") == 0) {
			if ((v = admin_optval(ctx, argc, argv, &i)) == NULL)
				goto out;
			if ((reason = admin_reason_parse(v)) < 0 ||
			    reason == 2 || reason == 6 || reason == 8 ||
			    reason == 10) {
				rc = admin_usage_error(ctx,
				    "--reason: \"%s\" "
				    "is not one of keyCompromise, superseded, "
				    "cessationOfOperation, privilegeWithdrawn, "
				    "affiliationChanged, unspecified",
				    v);
				goto out;
			}
			continue;
		}
		if (admin_exclusive_opt(ctx, argc, argv, &i, revoke_selectors,
			"selector", &sel, &v) != 0)
			goto out;
		free(h);
		h = xstrdup(v);
		if ((strcmp(sel, "--serial") == 0 && !hex_ok(h, 64)) ||
		    (strcmp(sel, "--spki-sha256") == 0 &&
			(strlen(h) != 64 || !hex_ok(h, 64)))) {
			rc = admin_usage_error(ctx, "%s: \"%s\" is not hex%s",
			    sel, v,
			    sel[2] == 's' && sel[3] == 'p'
				? " SHA-256 (64 digits)"
				: "");
			goto out;
		}
		if (strcmp(sel, "--account") == 0) {
			id = strtoll(v, &end, 10);
			if (*end != '\0' || id <= 0) {
				rc = admin_usage_error(ctx,
				    "--account: \"%s\" "
				    "is not an account id",
				    v);
				goto out;
			}
		}
	}
	if (sel == NULL) {
		rc = admin_exclusive_missing(ctx, revoke_selectors);
		goto out;
	}
	rc = 1;
	if (selected_serials(ctx, sel, h, &list) != 0)
		goto out;
	rc = revoke_list(ctx, list, reason, block);
out:
	free(h);
	json_decref(list);
	return rc;
}

/*
 * The key hashes a block-key selector names (sel: the option, h: its
 * value) as a new array in *hashes (caller decrefs; may be set on
 * failure). 0, or the exit code (1 failure, 2 usage) after printing it.
 */
static int
selected_keys(struct admin_ctx *ctx, const char *sel, char *h, json_t **hashes)
{
	json_t *serials = NULL;
	char err[256];
	int rc;

	if (strcmp(sel, "--spki-sha256") == 0) {
		if (strlen(h) != 64 || !hex_ok(h, 64)) {
			return admin_usage_error(ctx,
			    "--spki-sha256: \"%s\" is "
			    "not a hex SHA-256 (64 digits)",
			    h);
		}
		*hashes = json_pack("[s]", h);
	} else if (strcmp(sel, "--key-file") == 0) {
		char *kh = admin_pem_key_hash(h, err, sizeof(err));

		if (kh == NULL)
			return admin_fail(ctx, "%s", err);
		*hashes = json_pack("[s]", kh);
		free(kh);
	} else {
		rc = admin_pem_certs(h, &serials, hashes, err, sizeof(err));
		json_decref(serials);
		if (rc != 0)
			return admin_fail(ctx, "%s", err);
	}
	return 0;
}

/*
 * Blocks each key hash (borrowed) with comment, or says it would in a dry
 * run; with serials (borrowed), first collects the key's unexpired serials
 * into it. 0, or -1 after printing the failure.
 */
static int
block_keys(
    struct admin_ctx *ctx, json_t *hashes, const char *comment, json_t *serials)
{
	json_t *res = NULL, *v;
	size_t k;

	json_array_foreach(hashes, k, v)
	{
		if (serials != NULL &&
		    serials_from(ctx, RPC_SA_SERIALS_BY_KEY,
			json_pack("{s:O}", "key_hash", v), serials) != 0)
			return -1;
		if (ctx->dry_run) {
			if (!ctx->json)
				printf("would block key %s\n",
				    json_string_value(v));
			continue;
		}
		if (admin_call(ctx, ADMIN_SA, RPC_SA_BLOCK_KEY,
			json_pack("{s:O, s:s, s:s}", "key_hash", v, "source",
			    "admin", "comment", comment),
			&res, NULL) != 0)
			return -1;
		json_decref(res);
		res = NULL;
		log_audit(NULL, "admin-block-key",
		    "admin=\"%s\" key_hash=%s "
		    "result=blocked",
		    ctx->who, json_string_value(v));
		if (!ctx->json)
			printf("blocked key %s\n", json_string_value(v));
	}
	return 0;
}

/* See admin.h. */
int
admin_block_key(struct admin_ctx *ctx, int argc, char **argv)
{
	json_t *hashes = NULL, *serials = NULL, *res = NULL;
	const char *val, *sel = NULL, *comment = NULL;
	char *h = NULL;
	int i, r, rc = 2, do_revoke = 0;

	for (i = 0; i < argc; i++) {
		if ((r = admin_common_step(ctx, argc, argv, &i, &rc)) < 0)
			goto out;
		if (r > 0)
			continue;
		if (strcmp(argv[i], "--revoke") == 0) {
			do_revoke = 1;
			continue;
		}
		if (strcmp(argv[i], "--comment") == 0) {
			if ((comment = admin_optval(ctx, argc, argv, &i)) ==
			    NULL)
				goto out;
			continue;
		}
		if (admin_exclusive_opt(ctx, argc, argv, &i, block_selectors,
			"key", &sel, &val) != 0)
			goto out;
		h = xstrdup(val);
	}
	if (sel == NULL) {
		rc = admin_exclusive_missing(ctx, block_selectors);
		goto out;
	}
	if (comment == NULL) {
		rc = admin_usage_error(ctx, "--comment (why) is required");
		goto out;
	}
	if ((rc = selected_keys(ctx, sel, h, &hashes)) != 0)
		goto out;
	rc = 1;
	serials = json_array();
	if (block_keys(ctx, hashes, comment, do_revoke ? serials : NULL) != 0)
		goto out;
	if (ctx->json && !do_revoke) {
		res = json_pack("{s:O, s:b}",
		    ctx->dry_run ? "would_block" : "blocked", hashes, "dry_run",
		    ctx->dry_run);
		admin_print_json(res);
	}
	rc = 0;
	if (do_revoke) {
		if (json_array_size(serials) == 0) {
			if (ctx->json) {
				res = json_pack("{s:O, s:[], s:b}", "blocked",
				    hashes, "revoked", "dry_run", ctx->dry_run);
				admin_print_json(res);
			} else
				printf("no unexpired certificates with this "
				       "key\n");
		} else
			rc = revoke_list(ctx, serials, 1, 0);
	}
out:
	free(h);
	json_decref(hashes);
	json_decref(serials);
	json_decref(res);
	return rc;
}
