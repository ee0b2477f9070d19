/*
 * cmd_show.c - inspection commands (account show, cert show, cert list,
 * order show) and account deactivate. Reads go to the SA, the one change
 * to the RA (which applies the account rules and audits it).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "cmd/anvil-admin/admin.h"

/*
 * Parses "[common options] POSITIONAL": *pos gets the one positional
 * argument (borrowed from argv), named `what` in messages. Returns -1 to
 * continue, else the exit code to return.
 */
static int
one_arg(struct admin_ctx *ctx, int argc, char **argv, const char *what,
    const char **pos)
{
	const struct admin_opt opts[] = {{.pos = what, .str = pos}, {NULL}};

	*pos = NULL;
	return admin_parse_opts(ctx, argc, argv, opts);
}

/* A positive id or -1 with a usage message. */
static int64_t
parse_id(struct admin_ctx *ctx, const char *s, const char *what)
{
	char *end;
	long long v = strtoll(s, &end, 10);

	if (*end != '\0' || v <= 0 || v >= (1LL << 53)) {
		admin_usage_error(ctx, "\"%s\" is not %s", s, what);
		return -1;
	}
	return (int64_t)v;
}

/*
 * one_arg for a positive id (`what` names the argument, `idwhat` the id in
 * the usage message) into *id. Returns -1 to continue, else the exit code.
 */
static int
one_id_arg(struct admin_ctx *ctx, int argc, char **argv, const char *what,
    const char *idwhat, int64_t *id)
{
	const char *pos;
	int rc;

	if ((rc = one_arg(ctx, argc, argv, what, &pos)) >= 0)
		return rc;
	if ((*id = parse_id(ctx, pos, idwhat)) < 0)
		return 2;
	return -1;
}


static const char *
str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "-";
}

/* "dns:a.example, ip:10.0.0.1" into a new string. */
static char *
idents_text(const json_t *arr)
{
	json_t *v;
	size_t k;
	char *out = xstrdup(""), *n;

	json_array_foreach(arr, k, v)
	{
		n = xasprintf("%s%s%s:%s", out, k ? ", " : "", str(v, "type"),
		    str(v, "value"));
		free(out);
		out = n;
	}
	return out;
}

static void
print_account(const json_t *a)
{
	json_t *v;
	size_t k;

	printf("account %lld\n  status:     %s\n  created:    %s\n"
	       "  thumbprint: %s\n  key type:   %s\n  eab kid:    %s\n",
	    (long long)json_integer_value(json_object_get(a, "id")),
	    str(a, "status"), str(a, "created"), str(a, "thumbprint"),
	    str(json_object_get(a, "key"), "kty"), str(a, "eab_kid"));
	printf("  contact:   ");
	json_array_foreach(json_object_get(a, "contact"), k, v)
	{
		printf(" %s", json_string_value(v));
	}
	printf(
	    "%s\n", json_array_size(json_object_get(a, "contact")) ? "" : " -");
}

/* See admin.h. */
int
admin_account_show(struct admin_ctx *ctx, int argc, char **argv)
{
	json_t *a = NULL, *certs = NULL;
	int64_t id;
	int rc;

	if ((rc = one_id_arg(ctx, argc, argv, "account ID", "an account id", &id)) >= 0)
		return rc;
	if (admin_call(ctx, ADMIN_SA, RPC_SA_GET_ACCOUNT,
		json_pack("{s:I}", "id", (json_int_t)id), &a, NULL) != 0)
		return 1;
	if (admin_call(ctx, ADMIN_SA, RPC_SA_SERIALS_BY_ACCOUNT,
		json_pack("{s:I}", "account_id", (json_int_t)id), &certs,
		NULL) != 0) {
		json_decref(a);
		return 1;
	}
	json_object_set(
	    a, "unexpired_serials", json_object_get(certs, "serials"));
	if (ctx->json)
		admin_print_json(a);
	else {
		print_account(a);
		printf("  unexpired certificates: %zu\n",
		    json_array_size(json_object_get(certs, "serials")));
	}
	json_decref(a);
	json_decref(certs);
	return 0;
}

/* See admin.h. */
int
admin_account_deactivate(struct admin_ctx *ctx, int argc, char **argv)
{
	json_t *a = NULL;
	int64_t id;
	int rc;

	if ((rc = one_id_arg(ctx, argc, argv, "account ID", "an account id", &id)) >= 0)
		return rc;
	if (ctx->dry_run) {
		if (admin_call(ctx, ADMIN_SA, RPC_SA_GET_ACCOUNT,
			json_pack("{s:I}", "id", (json_int_t)id), &a,
			NULL) != 0)
			return 1;
		if (ctx->json) {
			json_object_set_new(a, "dry_run", json_true());
			admin_print_json(a);
		} else
			printf("dry run: would deactivate account %lld "
			       "(now %s)\n",
			    (long long)id, str(a, "status"));
		json_decref(a);
		return 0;
	}
	if (admin_call(ctx, ADMIN_RA, RPC_RA_UPDATE_ACCOUNT,
		json_pack("{s:I, s:b}", "account_id", (json_int_t)id,
		    "deactivate", 1),
		&a, NULL) != 0)
		return 1;
	log_audit(NULL, "admin-deactivate-account",
	    "admin=\"%s\" "
	    "account=%lld result=%s",
	    ctx->who, (long long)id, str(a, "status"));
	if (ctx->json)
		admin_print_json(a);
	else
		printf("account %lld is now %s\n", (long long)id,
		    str(a, "status"));
	json_decref(a);
	return 0;
}

/* The leaf PEM of a DER in b64url plus the issuer's default chain. */
static char *
chain_pem(struct admin_ctx *ctx, const json_t *cert)
{
	const char *b64 = json_string_value(json_object_get(cert, "der"));
	const char *issuer = str(cert, "issuer_id");
	json_t *res = NULL, *is;
	uint8_t *der = NULL;
	size_t len, k, off;
	char *b64std = NULL, *out = NULL, *n;

	if (b64 == NULL || b64url_decode(b64, strlen(b64), &der, &len) != 0)
		goto out;
	/* Standard base64 with 64-column lines for PEM. */
	b64std = xmalloc(4 * ((len + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)b64std, der, (int)len);
	out = xstrdup("-----BEGIN CERTIFICATE-----\n");
	for (off = 0; off < strlen(b64std); off += 64) {
		n = xasprintf("%s%.64s\n", out, b64std + off);
		free(out);
		out = n;
	}
	n = xasprintf("%s-----END CERTIFICATE-----\n", out);
	free(out);
	out = n;
	if (admin_call(ctx, ADMIN_CA, RPC_CA_GET_ISSUERS, NULL, &res, NULL) != 0)
		goto out;
	json_array_foreach(json_object_get(res, "issuers"), k, is)
	{
		if (strcmp(str(is, "id"), issuer) != 0)
			continue;
		n = xasprintf("%s%s", out,
		    json_string_value(
			json_array_get(json_object_get(is, "chains_pem"), 0))
			? json_string_value(json_array_get(
			      json_object_get(is, "chains_pem"), 0))
			: str(is, "cert_pem"));
		free(out);
		out = n;
	}
out:
	free(der);
	free(b64std);
	json_decref(res);
	return out;
}

/* See admin.h. */
int
admin_cert_show(struct admin_ctx *ctx, int argc, char **argv)
{
	json_t *c = NULL;
	const char *pos;
	char *ids = NULL, *pem = NULL, *lower = NULL, *p;
	int rc;

	if ((rc = one_arg(ctx, argc, argv, "SERIAL", &pos)) >= 0)
		return rc;
	lower = xstrdup(pos);
	for (p = lower; *p; p++)
		if (*p >= 'A' && *p <= 'F')
			*p = (char)(*p - 'A' + 'a');
	if (strlen(lower) > 64 ||
	    strspn(lower, "0123456789abcdef") != strlen(lower)) {
		rc = admin_usage_error(ctx, "\"%s\" is not a hex serial", pos);
		goto out;
	}
	rc = 1;
	if (admin_call(ctx, ADMIN_SA, RPC_SA_GET_CERTIFICATE,
		json_pack("{s:s}", "serial", lower), &c, NULL) != 0)
		goto out;
	pem = chain_pem(ctx, c);
	if (ctx->json) {
		json_object_del(c, "der");
		if (pem != NULL)
			json_object_set_new(c, "chain_pem", json_string(pem));
		admin_print_json(c);
	} else {
		ids = idents_text(json_object_get(c, "identifiers"));
		printf("certificate %s\n  status:      %s", str(c, "serial"),
		    str(c, "status"));
		if (json_object_get(c, "revoked_at") != NULL)
			printf(" at %s reason %s", str(c, "revoked_at"),
			    admin_reason_name((int)json_integer_value(
				json_object_get(c, "revoked_reason"))));
		printf(
		    "\n  identifiers: %s\n  account:     %lld\n"
		    "  order:       %lld\n  profile:     %s\n"
		    "  issuer:      %s\n  not before:  %s\n  not after:   %s\n"
		    "  key sha256:  %s\n",
		    ids,
		    (long long)json_integer_value(
			json_object_get(c, "account_id")),
		    (long long)json_integer_value(
			json_object_get(c, "order_id")),
		    str(c, "profile"), str(c, "issuer_id"),
		    str(c, "not_before"), str(c, "not_after"),
		    str(c, "key_hash"));
		printf("%s", pem ? pem : "(chain unavailable)\n");
	}
	rc = 0;
out:
	free(lower);
	free(ids);
	free(pem);
	json_decref(c);
	return rc;
}

/*
 * Adds the filter of cert list option sel (value v) to params (borrowed):
 * account_id, expiring_before or a normalised identifier. 0, or the exit
 * code (2) after printing the usage error.
 */
static int
add_filter(
    struct admin_ctx *ctx, const char *sel, const char *v, json_t *params)
{
	char err[256], tbuf[32], *norm = NULL;
	int64_t ms, id;

	if (strcmp(sel, "--account") == 0) {
		if ((id = parse_id(ctx, v, "an account id")) < 0)
			return 2;
		json_object_set_new(params, "account_id", json_integer(id));
	} else if (strcmp(sel, "--expiring-within") == 0) {
		if (duration_parse_ms(v, &ms) != 0 || ms <= 0) {
			return admin_usage_error(ctx,
			    "--expiring-within:"
			    " \"%s\" is not a duration like 7d",
			    v);
		}
		json_object_set_new(params, "expiring_before",
		    json_string(
			time_fmt_rfc3339((time_t)((time_now_ms() + ms) / 1000),
			    tbuf, sizeof(tbuf))));
	} else {
		if ((norm = ident_ip_normalize(
			 v, NULL, NULL, err, sizeof(err))) != NULL)
			json_object_set_new(params, "identifier",
			    json_pack(
				"{s:s, s:s}", "type", "ip", "value", norm));
		else if ((norm = ident_dns_normalize(v, 0, err, sizeof(err))) !=
		    NULL)
			json_object_set_new(params, "identifier",
			    json_pack(
				"{s:s, s:s}", "type", "dns", "value", norm));
		else {
			return admin_usage_error(ctx, "--identifier: %s", err);
		}
	}
	free(norm);
	return 0;
}

/* What `cert list` selects by: one of these. */
static const char *const cert_filters[] = {
    "--account", "--expiring-within", "--identifier", NULL};

/* See admin.h. */
int
admin_cert_list(struct admin_ctx *ctx, int argc, char **argv)
{
	json_t *params = json_object(), *res = NULL, *c;
	const char *v, *sel = NULL;
	char *ids;
	int64_t limit = 100;
	size_t k;
	int i, r, rc = 2;

	for (i = 0; i < argc; i++) {
		if ((r = admin_common_step(ctx, argc, argv, &i, &rc)) < 0)
			goto out;
		if (r > 0)
			continue;
		if (strcmp(argv[i], "--limit") == 0) {
			if ((v = admin_optval(ctx, argc, argv, &i)) == NULL)
				goto out;
			if ((limit = parse_id(ctx, v, "a limit")) < 0)
				goto out;
			if (limit > 1000) {
				rc = admin_usage_error(ctx,
				    "--limit: at most "
				    "1000");
				goto out;
			}
			continue;
		}
		if (admin_exclusive_opt(ctx, argc, argv, &i, cert_filters,
			"filter", &sel, &v) != 0)
			goto out;
		if ((rc = add_filter(ctx, sel, v, params)) != 0)
			goto out;
		rc = 2;
	}
	if (sel == NULL) {
		rc = admin_exclusive_missing(ctx, cert_filters);
		goto out;
	}
	json_object_set_new(params, "limit", json_integer(limit));
	rc = 1;
	if (admin_call(ctx, ADMIN_SA, RPC_SA_GET_CERTIFICATES,
		json_incref(params), &res, NULL) != 0)
		goto out;
	if (ctx->json)
		admin_print_json(res);
	else {
		printf("%-38s %-8s %-21s %-8s %s\n", "SERIAL", "STATUS",
		    "NOT AFTER", "ACCOUNT", "IDENTIFIERS");
		json_array_foreach(json_object_get(res, "certificates"), k, c)
		{
			ids = idents_text(json_object_get(c, "identifiers"));
			printf("%-38s %-8s %-21s %-8lld %s\n", str(c, "serial"),
			    str(c, "status"), str(c, "not_after"),
			    (long long)json_integer_value(
				json_object_get(c, "account_id")),
			    ids);
			free(ids);
		}
		printf("%zu certificate(s)\n",
		    json_array_size(json_object_get(res, "certificates")));
	}
	rc = 0;
out:
	json_decref(params);
	json_decref(res);
	return rc;
}

/* See admin.h. */
int
admin_order_show(struct admin_ctx *ctx, int argc, char **argv)
{
	json_t *o = NULL, *az = NULL, *a;
	char *ids = NULL;
	int64_t id;
	size_t k;
	int rc;

	if ((rc = one_id_arg(ctx, argc, argv, "order ID", "an order id", &id)) >= 0)
		return rc;
	rc = 1;
	if (admin_call(ctx, ADMIN_SA, RPC_SA_GET_ORDER,
		json_pack("{s:I}", "id", (json_int_t)id), &o, NULL) != 0)
		goto out;
	if (admin_call(ctx, ADMIN_SA, RPC_SA_GET_AUTHZS,
		json_pack("{s:O}", "ids", json_object_get(o, "authz_ids")), &az,
		NULL) != 0)
		goto out;
	json_object_set(o, "authzs", json_object_get(az, "authzs"));
	if (ctx->json)
		admin_print_json(o);
	else {
		ids = idents_text(json_object_get(o, "identifiers"));
		printf(
		    "order %lld\n  status:      %s\n  account:     %lld\n"
		    "  identifiers: %s\n  profile:     %s\n  created:     %s\n"
		    "  expires:     %s\n  certificate: %s\n",
		    (long long)id, str(o, "status"),
		    (long long)json_integer_value(
			json_object_get(o, "account_id")),
		    ids, str(o, "profile"), str(o, "created"),
		    str(o, "expires"), str(o, "certificate_serial"));
		if (json_object_get(o, "error") != NULL)
			printf("  error:       %s: %s\n",
			    str(json_object_get(o, "error"), "type"),
			    str(json_object_get(o, "error"), "detail"));
		json_array_foreach(json_object_get(az, "authzs"), k, a)
		{
			printf("  authz %lld: %s:%s%s %s\n",
			    (long long)json_integer_value(
				json_object_get(a, "id")),
			    str(json_object_get(a, "identifier"), "type"),
			    str(json_object_get(a, "identifier"), "value"),
			    json_is_true(json_object_get(a, "wildcard"))
				? " (wildcard)"
				: "",
			    str(a, "status"));
		}
	}
	rc = 0;
out:
	free(ids);
	json_decref(o);
	json_decref(az);
	return rc;
}
