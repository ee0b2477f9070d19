/*
 * cmd_ca.c - `anvil-admin ca init` and `anvil-admin crl regenerate`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"
#include "cmd/anvil-admin/admin.h"

/* See admin.h. */
int
admin_ca_init(struct admin_ctx *ctx, int argc, char **argv)
{
	const char *dir = "var/pki", *pathlen_s = "0";
	struct ca_ceremony_pkcs11 p = {0};
	int use_p11 = 0;
	const struct admin_opt opts[] = {
	    {"--dir", .str = &dir},
	    {"--pkcs11", .flag = &use_p11},
	    {"--module", .str = &p.module},
	    {"--token", .str = &p.token},
	    {"--pin-file", .str = &p.pin_file},
	    {"--pin-env", .str = &p.pin_env},
	    {"--label-prefix", .str = &p.label_prefix},
	    {"--intermediate-pathlen", .str = &pathlen_s},
	    {"--pin",
		.refused = "the PIN never goes on the command line (ps "
			   "shows it): use --pin-file or --pin-env"},
	    {NULL},
	};
	char err[1024];
	json_t *o;
	int r, rc, pathlen;

	if ((rc = admin_parse_opts(ctx, argc, argv, opts)) >= 0)
		return rc;
	if (strlen(pathlen_s) != 1 || pathlen_s[0] < '0' ||
	    pathlen_s[0] > '0' + CA_CEREMONY_MAX_PATHLEN)
		return admin_usage_error(ctx, "--intermediate-pathlen is 0..%d",
		    CA_CEREMONY_MAX_PATHLEN);
	pathlen = pathlen_s[0] - '0';
	if (!use_p11 && (p.module || p.token || p.pin_file || p.pin_env ||
			    p.label_prefix))
		return admin_usage_error(ctx,
		    "--module/--token/--pin-file/--pin-env/--label-prefix "
		    "need --pkcs11");
	if (use_p11 && (p.module == NULL || p.token == NULL ||
			   (p.pin_file == NULL) == (p.pin_env == NULL)))
		return admin_usage_error(ctx,
		    "--pkcs11 needs --module, --token and one of --pin-file "
		    "and --pin-env");
	if (ctx->dry_run) {
		printf(
		    "dry run: would create root.pem root2.pem int-ecdsa.pem "
		    "int-ecdsa-cross.pem int-rsa.pem (+ keys%s), roots.pem and "
		    "issuers.json in %s\n",
		    use_p11 ? " in the token" : "", dir);
		return 0;
	}
	r = ca_ceremony_run(
	    dir, use_p11 ? &p : NULL, pathlen, err, sizeof(err));
	if (r != 0)
		return admin_fail(ctx, "%s", err);
	log_audit(NULL, "ca-init",
	    "admin=\"%s\" dir=%s%s%s intermediate_pathlen=%d result=ok",
	    ctx->who, dir, use_p11 ? " token=" : "", use_p11 ? p.token : "",
	    pathlen);
	if (ctx->json) {
		o = json_pack("{s:s, s:[s,s,s,s,s,s,s], s:b}", "dir", dir,
		    "files", "root.pem", "root2.pem", "int-ecdsa.pem",
		    "int-ecdsa-cross.pem", "int-rsa.pem", "roots.pem",
		    "issuers.json", "pkcs11", use_p11);
		admin_print_json(o);
		json_decref(o);
	} else if (use_p11)
		printf("created in %s: root.pem root2.pem int-ecdsa.pem "
		       "int-ecdsa-cross.pem int-rsa.pem, roots.pem, "
		       "issuers.json; keys %sroot %sroot2 %sint-ecdsa "
		       "%sint-rsa generated in token \"%s\"\n",
		    dir, p.label_prefix ? p.label_prefix : "",
		    p.label_prefix ? p.label_prefix : "",
		    p.label_prefix ? p.label_prefix : "",
		    p.label_prefix ? p.label_prefix : "", p.token);
	else
		printf("created in %s: root.pem root2.pem int-ecdsa.pem "
		       "int-ecdsa-cross.pem int-rsa.pem (+ .key files, mode "
		       "0600), roots.pem, issuers.json\n",
		    dir);
	return 0;
}

/* One ca.generate_crl; appends {issuer, shard, number|error} to out. */
static int
regen_one(struct admin_ctx *ctx, const char *issuer, int64_t shard, json_t *out)
{
	json_t *res = NULL;
	struct problem *p = NULL;
	int rc = 0;

	if (ctx->dry_run) {
		json_array_append_new(out,
		    json_pack("{s:s, s:I}", "issuer_id", issuer, "shard",
			(json_int_t)shard));
		if (!ctx->json)
			printf("would regenerate issuer %s shard %lld\n",
			    issuer, (long long)shard);
		return 0;
	}
	if (admin_call(ctx, ADMIN_CA, RPC_CA_GENERATE_CRL,
		json_pack("{s:s, s:I}", "issuer_id", issuer, "shard",
		    (json_int_t)shard),
		&res, &p) != 0) {
		fprintf(stderr, "issuer %s shard %lld: %s: %s\n", issuer,
		    (long long)shard, prob_type_name(p->type),
		    p->detail ? p->detail : "");
		json_array_append_new(out,
		    json_pack("{s:s, s:I, s:s}", "issuer_id", issuer, "shard",
			(json_int_t)shard, "error",
			p->detail ? p->detail : prob_type_name(p->type)));
		rc = -1;
	} else {
		json_array_append_new(out,
		    json_pack("{s:s, s:I, s:O}", "issuer_id", issuer, "shard",
			(json_int_t)shard, "number",
			json_object_get(res, "number")));
		if (!ctx->json)
			printf("issuer %s shard %lld number %lld\n", issuer,
			    (long long)shard,
			    (long long)json_integer_value(
				json_object_get(res, "number")));
	}
	json_decref(res);
	problem_free(p);
	return rc;
}

/* See admin.h. */
int
admin_crl_regenerate(struct admin_ctx *ctx, int argc, char **argv)
{
	const char *only_issuer = NULL, *shard = NULL;
	const struct admin_opt opts[] = {
	    {"--issuer", .str = &only_issuer},
	    {"--shard", .str = &shard},
	    {NULL},
	};
	json_t *res = NULL, *is, *done = json_array();
	int64_t shards, s, only_shard = -1;
	size_t k;
	int failed = 0, rc;
	char *end;

	if ((rc = admin_parse_opts(ctx, argc, argv, opts)) >= 0)
		goto out;
	if (shard != NULL) {
		only_shard = strtoll(shard, &end, 10);
		if (*end != '\0' || only_shard < 0) {
			rc = admin_usage_error(
			    ctx, "--shard: \"%s\" is not a number", shard);
			goto out;
		}
	}
	rc = 1;
	if (admin_call(ctx, ADMIN_CA, RPC_CA_GET_ISSUERS, NULL, &res, NULL) != 0)
		goto out;
	shards = json_integer_value(json_object_get(res, "crl_shards"));
	if (shards <= 0)
		shards = 1;
	json_array_foreach(json_object_get(res, "issuers"), k, is)
	{
		const char *id = json_string_value(json_object_get(is, "id"));
		if (id == NULL || (only_issuer && strcmp(id, only_issuer)))
			continue;
		for (s = 0; s < shards; s++) {
			if (only_shard >= 0 && s != only_shard)
				continue;
			if (regen_one(ctx, id, s, done) != 0)
				failed++;
		}
	}
	if (json_array_size(done) == 0) {
		rc = admin_fail(ctx, "no such issuer or shard");
		goto out;
	}
	if (!ctx->dry_run)
		log_audit(NULL, "crl-regenerate",
		    "admin=\"%s\" shards=%zu "
		    "failed=%d",
		    ctx->who, json_array_size(done), failed);
	if (ctx->json) {
		json_decref(res);
		res = json_pack(
		    "{s:O, s:b}", "crls", done, "dry_run", ctx->dry_run);
		admin_print_json(res);
	}
	rc = failed ? 1 : 0;
out:
	json_decref(res);
	json_decref(done);
	return rc;
}
