/*
 * util.c - what every anvil-admin command shares: common options,
 * admin.json, RPC clients, one-line errors, PEM helpers, reason names.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cmd/anvil-admin/admin.h"

#define DEFAULT_CONFIG "configs/dev/admin.json"

static const char *const svc_names[ADMIN__MAX] = {"sa", "ra", "ca"};

static const struct {
	const char *name;
	int code;
} reasons[] = {
    {"unspecified", 0},
    {"keyCompromise", 1},
    {"cACompromise", 2},
    {"affiliationChanged", 3},
    {"superseded", 4},
    {"cessationOfOperation", 5},
    {"certificateHold", 6},
    {"removeFromCRL", 8},
    {"privilegeWithdrawn", 9},
    {"aACompromise", 10},
};

/* See admin.h. */
int
admin_reason_parse(const char *s)
{
	size_t k;

	for (k = 0; k < sizeof(reasons) / sizeof(reasons[0]); k++)
		if (strcmp(s, reasons[k].name) == 0)
			return reasons[k].code;
	return -1;
}

/* See admin.h. */
const char *
admin_reason_name(int code)
{
	size_t k;

	for (k = 0; k < sizeof(reasons) / sizeof(reasons[0]); k++)
		if (reasons[k].code == code)
			return reasons[k].name;
	return "unknown";
}

/* See admin.h. */
const char *
admin_optval(struct admin_ctx *ctx, int argc, char **argv, int *i)
{
	if (*i + 1 >= argc || argv[*i + 1][0] == '\0') {
		admin_usage_error(ctx, "%s needs a value", argv[*i]);
		return NULL;
	}
	*i += 1;
	return argv[*i];
}

/* See admin.h. */
int
admin_common_opt(struct admin_ctx *ctx, int argc, char **argv, int *i)
{
	const char *a = argv[*i];
	int k;

	if (strcmp(a, "--json") == 0) {
		ctx->json = 1;
		return 1;
	}
	if (strcmp(a, "--dry-run") == 0) {
		ctx->dry_run = 1;
		return 1;
	}
	if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
		printf("usage: anvil-admin %s %s\n  common options: --json "
		       "--dry-run --config FILE --sa/--ra/--ca TARGET\n",
		    ctx->cmd, ctx->usage);
		return 2;
	}
	if (strcmp(a, "--config") == 0) {
		if ((ctx->config_path = admin_optval(ctx, argc, argv, i)) ==
		    NULL)
			return -1;
		return 1;
	}
	for (k = 0; k < ADMIN__MAX; k++) {
		if (a[0] == '-' && a[1] == '-' &&
		    strcmp(a + 2, svc_names[k]) == 0) {
			if ((ctx->target[k] =
				    admin_optval(ctx, argc, argv, i)) == NULL)
				return -1;
			return 1;
		}
	}
	return 0;
}

/* See admin.h. */
int
admin_common_step(
    struct admin_ctx *ctx, int argc, char **argv, int *i, int *rc)
{
	int r = admin_common_opt(ctx, argc, argv, i);

	if (r < 0 || r == 2) {
		*rc = r == 2 ? 0 : 2;
		return -1;
	}
	return r;
}

/* See admin.h. */
void
admin_add_unique(json_t *a, const char *s)
{
	size_t k;
	json_t *v;

	json_array_foreach(a, k, v)
	{
		if (strcmp(json_string_value(v), s) == 0)
			return;
	}
	json_array_append_new(a, json_string(s));
}

/* The row of opts for argv[i]: the option of that name, or the positional
 * row when argv[i] does not start with '-' or follows "--" (args). NULL
 * when there is none. */
static const struct admin_opt *
find_opt(const struct admin_opt *opts, const char *arg, int args)
{
	const struct admin_opt *o;

	for (o = opts; o->name != NULL || o->pos != NULL; o++) {
		if (arg[0] == '-' && !args
			? o->name != NULL && strcmp(o->name, arg) == 0
			: o->pos != NULL)
			return o;
	}
	return NULL;
}

/* Stores the value v (borrowed) of option o. 0, or 2 after a message. */
static int
store_value(struct admin_ctx *ctx, const struct admin_opt *o, const char *v)
{
	char *end;
	long n;

	if (o->list != NULL) {
		admin_add_unique(o->list, v);
	} else if (o->port != NULL) {
		n = strtol(v, &end, 10);
		if (*v == '\0' || *end != '\0' || n < 1 || n > 65535)
			return admin_usage_error(ctx, "bad port \"%s\"", v);
		*o->port = n;
	} else if (o->pos != NULL && *o->str != NULL) {
		return admin_usage_error(
		    ctx, "one %s expected, got \"%s\" too", o->pos, v);
	} else {
		*o->str = v;
	}
	return 0;
}

/* See admin.h. */
int
admin_parse_opts(
    struct admin_ctx *ctx, int argc, char **argv, const struct admin_opt *opts)
{
	const struct admin_opt *o;
	const char *v;
	int i, r = 0, rc, dashdash = 0;

	for (i = 0; i < argc; i++) {
		if (!dashdash && strcmp(argv[i], "--") == 0) {
			dashdash = 1; /* the rest are arguments, not options */
			continue;
		}
		if (!dashdash &&
		    (r = admin_common_step(ctx, argc, argv, &i, &rc)) < 0)
			return rc;
		if (!dashdash && r > 0)
			continue;
		if ((o = find_opt(opts, argv[i], dashdash)) == NULL)
			return admin_usage_error(ctx,
			    argv[i][0] == '-' && !dashdash
				? "unknown option \"%s\""
					      : "unexpected argument \"%s\"",
			    argv[i]);
		if (o->refused != NULL)
			return admin_usage_error(ctx, "%s", o->refused);
		if (o->flag != NULL) {
			*o->flag = 1;
			continue;
		}
		if (o->pos != NULL)
			v = argv[i];
		else if ((v = admin_optval(ctx, argc, argv, &i)) == NULL)
			return 2;
		if (store_value(ctx, o, v) != 0)
			return 2;
	}
	for (o = opts; o->name != NULL || o->pos != NULL; o++) {
		if (o->pos != NULL && *o->str == NULL)
			return admin_usage_error(ctx, "%s required", o->pos);
	}
	return -1;
}

/* See admin.h. */
int
admin_exclusive_opt(struct admin_ctx *ctx, int argc, char **argv, int *i,
    const char *const *names, const char *kind, const char **sel,
    const char **val)
{
	size_t k;

	for (k = 0; names[k] != NULL && strcmp(argv[*i], names[k]) != 0; k++)
		;
	if (names[k] == NULL) {
		admin_usage_error(ctx, "unknown option \"%s\"", argv[*i]);
		return -1;
	}
	if (*sel != NULL) {
		admin_usage_error(
		    ctx, "%s and %s: give one %s", *sel, argv[*i], kind);
		return -1;
	}
	*sel = argv[*i];
	return (*val = admin_optval(ctx, argc, argv, i)) != NULL ? 0 : -1;
}

/* See admin.h. */
int
admin_exclusive_missing(struct admin_ctx *ctx, const char *const *names)
{
	char list[512];
	size_t k, off = 0;

	list[0] = '\0';
	for (k = 0; names[k] != NULL && off < sizeof(list); k++)
		off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s",
		    k > 0 ? ", " : "", names[k]);
	return admin_usage_error(ctx, "one of %s is required", list);
}

/* "anvil-admin <cmd>: <message><tail>" on stderr. */
static void
report(struct admin_ctx *ctx, const char *tail, const char *fmt, va_list ap)
{
	fprintf(stderr, "anvil-admin %s: ", ctx->cmd ? ctx->cmd : "");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "%s\n", tail);
}

/* See admin.h. */
int
admin_usage_error(struct admin_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report(ctx, " (see --help)", fmt, ap);
	va_end(ap);
	return 2;
}

/* See admin.h. */
int
admin_fail(struct admin_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report(ctx, "", fmt, ap);
	va_end(ap);
	return 1;
}

/* Loads admin.json once; 0, or -1 with a message. */
static int
load_config(struct admin_ctx *ctx)
{
	static const char *const keys[] = {
	    "sa", "ra", "ca", "sa_config", "sa_bin", "tkauth_key",
	    "tkauth_chain", NULL};
	char err[512];
	const char *key, *path = ctx->config_path;
	json_t *v;
	size_t k;

	if (ctx->config != NULL)
		return 0;
	if (path == NULL)
		path = getenv("ANVIL_ADMIN_CONFIG");
	if (path == NULL || path[0] == '\0')
		path = DEFAULT_CONFIG;
	ctx->config_path = path;
	if ((ctx->config = config_load_file(path, err, sizeof(err))) == NULL) {
		admin_fail(ctx, "%s", err);
		return -1;
	}
	json_object_foreach(ctx->config, key, v)
	{
		for (k = 0; keys[k] != NULL; k++)
			if (strcmp(key, keys[k]) == 0)
				break;
		if (keys[k] == NULL) {
			admin_fail(ctx, "%s: unknown key \"%s\"", path, key);
			return -1;
		}
	}
	return 0;
}

/* See admin.h. */
const char *
admin_config_str(struct admin_ctx *ctx, const char *key)
{
	if (load_config(ctx) != 0)
		return NULL;
	return json_string_value(json_object_get(ctx->config, key));
}

/* See admin.h. */
struct rpc_client *
admin_svc(struct admin_ctx *ctx, enum admin_svc svc)
{
	struct rpc_client_config cfg;
	json_t *obj = NULL;
	char err[512];

	if (ctx->client[svc] != NULL)
		return ctx->client[svc];
	memset(&cfg, 0, sizeof(cfg));
	if (ctx->target[svc] != NULL)
		obj = json_pack("{s:s}", "target", ctx->target[svc]);
	else if (load_config(ctx) != 0)
		return NULL;
	else if ((obj = json_object_get(ctx->config, svc_names[svc])) == NULL) {
		admin_fail(ctx, "%s: no \"%s\" target (or pass --%s)",
		    ctx->config_path, svc_names[svc], svc_names[svc]);
		return NULL;
	} else
		json_incref(obj);
	if (rpc_client_config_parse(obj, &cfg, err, sizeof(err)) != 0) {
		admin_fail(ctx, "%s: %s", svc_names[svc], err);
		goto out;
	}
	cfg.connections = 1;
	ctx->client[svc] =
	    rpc_client_new(&cfg, svc_names[svc], NULL, err, sizeof(err));
	if (ctx->client[svc] == NULL)
		admin_fail(ctx, "%s: %s", cfg.target, err);
	rpc_client_config_clear(&cfg);
out:
	json_decref(obj);
	return ctx->client[svc];
}

/* See admin.h. */
int
admin_call(struct admin_ctx *ctx, enum admin_svc svc, enum rpc_method_id id,
    json_t *params, json_t **res, struct problem **prob_out)
{
	const char *method = rpc_method_name(id);
	struct rpc_client *c;
	struct problem *p = NULL;
	int rc = -1;

	*res = NULL;
	if (prob_out != NULL)
		*prob_out = NULL;
	if ((c = admin_svc(ctx, svc)) == NULL) {
		if (prob_out != NULL)
			*prob_out = problem_new(PROB_UNAVAILABLE,
			    "no client for %s", svc_names[svc]);
		goto out;
	}
	if (rpc_call(c, method, params, 0, NULL, res, &p) != 0) {
		if (prob_out != NULL) {
			*prob_out = p;
			p = NULL;
		} else {
			admin_fail(ctx, "%s: %s: %s", method,
			    prob_type_name(p->type),
			    p->detail ? p->detail : "");
		}
		goto out;
	}
	rc = 0;
out:
	problem_free(p);
	json_decref(params);
	return rc;
}

/* See admin.h. */
void
admin_print_json(const json_t *j)
{
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
	fputc('\n', stdout);
}

/* See admin.h. */
void
admin_ctx_clear(struct admin_ctx *ctx)
{
	int k;

	for (k = 0; k < ADMIN__MAX; k++) {
		rpc_client_free(ctx->client[k]);
		ctx->client[k] = NULL;
	}
	json_decref(ctx->config);
	ctx->config = NULL;
}

/* See admin.h. */
int
admin_pem_certs(const char *path, json_t **serials, json_t **key_hashes,
    char *err, size_t errlen)
{
	const ASN1_INTEGER *sn;
	X509 *x = NULL;
	BIO *b = NULL;
	char *hex = NULL;
	int rc = -1;

	*serials = json_array();
	if (key_hashes != NULL)
		*key_hashes = json_array();
	if ((b = BIO_new_file(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: cannot open", path);
		goto out;
	}
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		sn = X509_get0_serialNumber(x);
		hex = serial_hex(
		    ASN1_STRING_get0_data(sn), (size_t)ASN1_STRING_length(sn));
		if (hex == NULL) {
			snprintf(err, errlen, "%s: bad serial number", path);
			goto out;
		}
		json_array_append_new(*serials, json_string(hex));
		free(hex);
		hex = NULL;
		if (key_hashes != NULL) {
			if ((hex = key_hash_hex(X509_get0_pubkey(x))) == NULL) {
				snprintf(
				    err, errlen, "%s: bad public key", path);
				goto out;
			}
			json_array_append_new(*key_hashes, json_string(hex));
			free(hex);
			hex = NULL;
		}
		X509_free(x);
		x = NULL;
	}
	ERR_clear_error();
	if (json_array_size(*serials) == 0) {
		snprintf(err, errlen, "%s: no PEM certificate", path);
		goto out;
	}
	rc = 0;
out:
	if (rc != 0) {
		json_decref(*serials);
		*serials = NULL;
		if (key_hashes != NULL) {
			json_decref(*key_hashes);
			*key_hashes = NULL;
		}
	}
	free(hex);
	X509_free(x);
	BIO_free(b);
	return rc;
}

/* See admin.h. */
char *
admin_pem_key_hash(const char *path, char *err, size_t errlen)
{
	EVP_PKEY *pk = NULL;
	BIO *b = NULL;
	char *h = NULL;

	if ((b = BIO_new_file(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: cannot open", path);
		goto out;
	}
	pk = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
	if (pk == NULL) {
		ERR_clear_error();
		if (BIO_reset(b) != 0) {
			snprintf(err, errlen, "%s: cannot read", path);
			goto out;
		}
		pk = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	}
	if (pk == NULL) {
		ERR_clear_error();
		snprintf(err, errlen, "%s: no PEM public or private key", path);
		goto out;
	}
	if ((h = key_hash_hex(pk)) == NULL)
		snprintf(err, errlen, "%s: cannot encode the key", path);
out:
	EVP_PKEY_free(pk);
	BIO_free(b);
	return h;
}
