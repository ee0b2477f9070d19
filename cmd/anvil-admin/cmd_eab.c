/*
 * cmd_eab.c - external account binding keys: create (the HMAC key is
 * shown once and only its holder can bind an account), list, revoke.
 * All through the SA's eab methods.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cmd/anvil-admin/admin.h"

#define HMAC_KEY_BYTES 32
#define KID_BYTES 12

/*
 * A random base64url token of n bytes (owned) that never starts with '-':
 * kid and HMAC key are typed as arguments (`anvil-admin eab revoke KID`,
 * certbot --eab-kid KID --eab-hmac-key KEY), where a leading '-' reads as
 * an option; 1 token in 64 did.
 */
static char *
arg_token(size_t n)
{
	uint8_t key[HMAC_KEY_BYTES];
	char *t = NULL;

	do {
		if (t != NULL)
			OPENSSL_cleanse(t, strlen(t));
		free(t);
		random_bytes(key, n);
		t = b64url_encode(key, n);
	} while (t[0] == '-');
	OPENSSL_cleanse(key, sizeof(key));
	return t;
}

/* See admin.h. */
int
admin_eab_create(struct admin_ctx *ctx, int argc, char **argv)
{
	const char *comment = "", *kid = NULL;
	char *hmac = NULL, *mykid = NULL;
	json_t *res = NULL;
	int rc;
	const struct admin_opt opts[] = {
	    {"--comment", .str = &comment},
	    {"--kid", .str = &kid},
	    {NULL},
	};

	if ((rc = admin_parse_opts(ctx, argc, argv, opts)) >= 0)
		return rc;
	if (kid != NULL &&
	    (strlen(kid) > 128 ||
		strspn(kid,
		    "abcdefghijklmn"
		    "opqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") !=
		    strlen(kid)))
		return admin_usage_error(ctx,
		    "--kid: 1-128 characters of "
		    "[A-Za-z0-9._-]");
	if (ctx->dry_run) {
		if (ctx->json) {
			res = json_pack(
			    "{s:b, s:s}", "dry_run", 1, "comment", comment);
			admin_print_json(res);
			json_decref(res);
		} else
			printf("dry run: would create an EAB key%s%s "
			       "(comment \"%s\")\n",
			    kid ? " " : "", kid ? kid : "", comment);
		return 0;
	}
	mykid = kid ? xstrdup(kid) : arg_token(KID_BYTES);
	hmac = arg_token(HMAC_KEY_BYTES);
	rc = 1;
	if (admin_call(ctx, ADMIN_SA, RPC_SA_NEW_EAB_KEY,
		json_pack("{s:s, s:s, s:s}", "kid", mykid, "hmac_key", hmac,
		    "comment", comment),
		&res, NULL) != 0)
		goto out;
	log_audit(NULL, "admin-eab-create",
	    "admin=\"%s\" kid=%s "
	    "result=created",
	    ctx->who, mykid);
	if (ctx->json) {
		json_object_set_new(res, "hmac_key", json_string(hmac));
		json_object_set_new(res, "comment", json_string(comment));
		admin_print_json(res);
	} else
		printf("kid:      %s\nhmac_key: %s\n(the HMAC key is shown "
		       "only now; give both to the account holder, e.g. "
		       "lego --eab --kid KID --hmac KEY)\n",
		    mykid, hmac);
	rc = 0;
out:
	if (hmac != NULL)
		OPENSSL_cleanse(hmac, strlen(hmac));
	free(hmac);
	free(mykid);
	json_decref(res);
	return rc;
}

/* See admin.h. */
int
admin_eab_list(struct admin_ctx *ctx, int argc, char **argv)
{
	json_t *res = NULL, *k;
	size_t i;
	int rc;

	const struct admin_opt none[] = {{NULL}};

	if ((rc = admin_parse_opts(ctx, argc, argv, none)) >= 0)
		return rc;
	if (admin_call(ctx, ADMIN_SA, RPC_SA_LIST_EAB_KEYS, NULL, &res, NULL) !=
	    0)
		return 1;
	if (ctx->json)
		admin_print_json(res);
	else {
		printf("%-24s %-21s %-8s %-8s %s\n", "KID", "CREATED", "STATE",
		    "ACCOUNT", "COMMENT");
		json_array_foreach(json_object_get(res, "keys"), i, k)
		{
			json_t *acct = json_object_get(k, "account_id");
			const char *c =
			    json_string_value(json_object_get(k, "comment"));
			char ab[24];

			snprintf(ab, sizeof(ab), "%lld",
			    (long long)json_integer_value(acct));
			printf("%-24s %-21s %-8s %-8s %s\n",
			    json_string_value(json_object_get(k, "kid")),
			    json_string_value(json_object_get(k, "created")),
			    json_is_true(json_object_get(k, "revoked"))
				? "revoked"
				: acct ? "used"
				       : "unused",
			    acct ? ab : "-", c ? c : "");
		}
	}
	json_decref(res);
	return 0;
}

/* See admin.h. */
int
admin_eab_revoke(struct admin_ctx *ctx, int argc, char **argv)
{
	const char *kid = NULL;
	json_t *res = NULL;
	int rc;

	const struct admin_opt opts[] = {{.pos = "KID", .str = &kid}, {NULL}};

	if ((rc = admin_parse_opts(ctx, argc, argv, opts)) >= 0)
		return rc;
	if (ctx->dry_run) {
		if (admin_call(ctx, ADMIN_SA, RPC_SA_GET_EAB_KEY,
			json_pack("{s:s}", "kid", kid), &res, NULL) != 0)
			return 1;
		json_object_del(res, "hmac_key");
		if (ctx->json) {
			json_object_set_new(res, "dry_run", json_true());
			admin_print_json(res);
		} else
			printf("dry run: would revoke EAB key %s\n", kid);
		json_decref(res);
		return 0;
	}
	if (admin_call(ctx, ADMIN_SA, RPC_SA_REVOKE_EAB_KEY,
		json_pack("{s:s}", "kid", kid), &res, NULL) != 0)
		return 1;
	log_audit(NULL, "admin-eab-revoke",
	    "admin=\"%s\" kid=%s "
	    "result=revoked",
	    ctx->who, kid);
	json_decref(res);
	if (ctx->json) {
		res = json_pack("{s:s, s:b}", "kid", kid, "revoked", 1);
		admin_print_json(res);
		json_decref(res);
	} else
		printf("EAB key %s revoked\n", kid);
	return 0;
}
