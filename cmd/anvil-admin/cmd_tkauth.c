/*
 * cmd_tkauth.c - `anvil-admin tkauth token`: mints an RFC 9448 TNAuthList
 * Authority Token (the JWT a client answers tkauth-01 with) signed by the
 * development Token Authority scripts/bootstrap.sh makes, so that a
 * client developer can try tkauth-01 against `make run` or test mode
 * without writing a Token Authority. docs/acme.md "RFC 9447 + RFC 9448".
 *
 * The token: protected header {"alg", "typ": "JWT", "x5c": the chain
 * file's certificates, signer first} (RFC 9448 §5: per RFC 8555 §6.2, an
 * asymmetric alg), claims "exp", "jti" (fresh, RFC 9447 §4), optional
 * "iss", and "atc" {"tktype": "TNAuthList", "tkvalue": the identifier
 * value, "ca", "fingerprint": "SHA256 " + the account key's RFC 7638
 * thumbprint in colon hex}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cmd/anvil-admin/admin.h"
#include "jose/jose.h"

#define TK_JTI_BYTES 16
#define TK_MAX_CHAIN 5 /* what the VA accepts in x5c (va/tkauth.c) */

/*
 * RFC 9448 §5 "fingerprint" of a base64url SHA-256 thumbprint: "SHA256 "
 * and colon-separated uppercase hex. Caller frees; NULL if tp is not one.
 */
static char *
fingerprint_of(const char *tp)
{
	uint8_t *d = NULL;
	size_t n = 0, k;
	char *out;

	if (tp == NULL || b64url_decode(tp, strlen(tp), &d, &n) != 0 ||
	    n != 32) {
		free(d);
		return NULL;
	}
	out = xmalloc(7 + 3 * n);
	memcpy(out, "SHA256 ", 7);
	for (k = 0; k < n; k++)
		snprintf(
		    out + 7 + 3 * k, 4, k + 1 < n ? "%02X:" : "%02X", d[k]);
	free(d);
	return out;
}

/*
 * The RFC 7638 thumbprint of the public key in path: a JWK (JSON) or a
 * PEM public key. Caller frees; NULL with err.
 */
static char *
file_thumbprint(const char *path, char *err, size_t errlen)
{
	struct jose_policy pol;
	struct problem *prob = NULL;
	struct jwk *k = NULL;
	EVP_PKEY *pk = NULL;
	json_t *j = NULL;
	char *tp = NULL;
	BIO *b;

	jose_policy_permissive(&pol);
	j = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
	if (j == NULL && (b = BIO_new_file(path, "r")) != NULL) {
		pk = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
		BIO_free(b);
		if (pk != NULL)
			j = jwk_from_pkey(pk);
	}
	if (j == NULL)
		snprintf(err, errlen,
		    "%s: neither a JWK (JSON) nor a PEM public key", path);
	else if (jwk_parse(j, &pol, &k, &prob) != 0)
		snprintf(err, errlen, "%s: %s", path,
		    prob->detail ? prob->detail : "not a usable public key");
	else
		tp = jwk_thumbprint(k);
	problem_free(prob);
	jwk_free(k);
	json_decref(j);
	EVP_PKEY_free(pk);
	return tp;
}

/* The key thumbprint of account n from the SA. Caller frees; NULL after
 * a message. */
static char *
account_thumbprint(struct admin_ctx *ctx, int64_t n)
{
	json_t *a = NULL;
	char *tp = NULL;

	if (admin_call(ctx, ADMIN_SA, RPC_SA_GET_ACCOUNT,
		json_pack("{s:I}", "id", (json_int_t)n), &a, NULL) != 0)
		return NULL;
	if (json_string_value(json_object_get(a, "thumbprint")) != NULL)
		tp = xstrdup(
		    json_string_value(json_object_get(a, "thumbprint")));
	else
		admin_fail(
		    ctx, "account %lld has no key thumbprint", (long long)n);
	json_decref(a);
	return tp;
}

/*
 * The certificates of the PEM file path as an x5c array (RFC 7515
 * §4.1.6: standard base64 DER, signer first). New reference; NULL with
 * err.
 */
static json_t *
chain_x5c(const char *path, char *err, size_t errlen)
{
	BIO *b = BIO_new_file(path, "r");
	json_t *arr = json_array();
	unsigned char *der, *b64;
	X509 *x;
	int n;

	while (b != NULL && json_array_size(arr) <= TK_MAX_CHAIN &&
	    (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		der = NULL;
		n = i2d_X509(x, &der);
		X509_free(x);
		if (n <= 0)
			break;
		b64 = xmalloc(4 * ((size_t)n / 3 + 1) + 1);
		EVP_EncodeBlock(b64, der, n);
		json_array_append_new(arr, json_string((const char *)b64));
		free(b64);
		OPENSSL_free(der);
	}
	BIO_free(b);
	if (json_array_size(arr) == 0 || json_array_size(arr) > TK_MAX_CHAIN) {
		snprintf(err, errlen,
		    "%s: want 1..%d PEM certificates (the Token Authority's "
		    "first)",
		    path, TK_MAX_CHAIN);
		json_decref(arr);
		return NULL;
	}
	return arr;
}

/* The private key in the PEM file path, or NULL with err. */
static EVP_PKEY *
load_key(const char *path, char *err, size_t errlen)
{
	BIO *b = BIO_new_file(path, "r");
	EVP_PKEY *k = NULL;

	if (b != NULL)
		k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	if (k == NULL)
		snprintf(
		    err, errlen, "%s: not a readable PEM private key", path);
	return k;
}

/*
 * The compact JWS (RFC 7515 §7.1) of claims signed with key, whose alg
 * follows from the key; hdr (borrowed) gets "alg". Caller frees; NULL
 * with err.
 */
static char *
sign_compact(EVP_PKEY *key, const json_t *hdr, const json_t *claims, char *err,
    size_t errlen)
{
	struct jose_policy pol;
	struct problem *prob = NULL;
	struct jwk *pub = NULL;
	json_t *jwk = jwk_from_pkey(key), *flat = NULL;
	char *payload = json_dumps(claims, JSON_COMPACT), *out = NULL;
	char *fj = NULL;

	jose_policy_permissive(&pol);
	if (jwk == NULL || jwk_parse(jwk, &pol, &pub, &prob) != 0) {
		snprintf(err, errlen,
		    "the Token Authority key is not an RSA, EC or Ed25519 "
		    "signing key");
		goto out;
	}
	fj = jws_sign(key, jose_alg_name(pub->alg), hdr,
	    (const uint8_t *)payload, strlen(payload));
	if (fj == NULL || (flat = json_loads(fj, 0, NULL)) == NULL) {
		snprintf(err, errlen, "signing failed");
		goto out;
	}
	out = xasprintf("%s.%s.%s",
	    json_string_value(json_object_get(flat, "protected")),
	    json_string_value(json_object_get(flat, "payload")),
	    json_string_value(json_object_get(flat, "signature")));
out:
	problem_free(prob);
	jwk_free(pub);
	json_decref(jwk);
	json_decref(flat);
	free(fj);
	free(payload);
	return out;
}

struct tk_opts {
	const char *tnauthlist, *account, *account_key, *key, *chain, *iss;
	const char *ttl;
	int ca;
	int64_t account_id; /* from --account */
};

/*
 * o->account as an account id: the number itself or the last path segment
 * of an account URL. 0, or -1 if it is neither.
 */
static int
account_id_of(struct tk_opts *o)
{
	const char *slash = strrchr(o->account, '/');
	const char *id = slash != NULL ? slash + 1 : o->account;
	char *end;
	long long n = strtoll(id, &end, 10);

	if (id[0] == '\0' || *end != '\0' || n <= 0)
		return -1;
	o->account_id = n;
	return 0;
}

/* Checks o and fills the defaults from admin.json. 0, or the exit code. */
static int
tk_check(struct admin_ctx *ctx, struct tk_opts *o, int64_t *ttl_ms)
{
	char err[256];

	if (o->tnauthlist == NULL)
		return admin_usage_error(ctx,
		    "--tnauthlist VALUE (the identifier's value) is required");
	if (ident_tnauthlist_check(
		o->tnauthlist, NULL, NULL, err, sizeof(err)) != 0)
		return admin_usage_error(ctx, "--tnauthlist: %s", err);
	if ((o->account == NULL) == (o->account_key == NULL))
		return admin_usage_error(
		    ctx, "give one of --account and --account-key");
	if (o->account != NULL && account_id_of(o) != 0)
		return admin_usage_error(ctx,
		    "--account: \"%s\" is neither an account id nor an "
		    "account URL",
		    o->account);
	if (duration_parse_ms(o->ttl, ttl_ms) != 0 || *ttl_ms < 1000)
		return admin_usage_error(ctx,
		    "--ttl: \"%s\" is not a duration of 1s or more", o->ttl);
	if (o->key == NULL)
		o->key = admin_config_str(ctx, "tkauth_key");
	if (o->chain == NULL)
		o->chain = admin_config_str(ctx, "tkauth_chain");
	if (o->key == NULL || o->chain == NULL)
		return admin_usage_error(ctx,
		    "no Token Authority: give --key and --chain, or "
		    "tkauth_key and tkauth_chain in admin.json");
	return 0;
}

/* See admin.h. */
int
admin_tkauth_token(struct admin_ctx *ctx, int argc, char **argv)
{
	struct tk_opts o = {.ttl = "10m"};
	const struct admin_opt opts[] = {
	    {"--tnauthlist", .str = &o.tnauthlist},
	    {"--account", .str = &o.account},
	    {"--account-key", .str = &o.account_key},
	    {"--allow-ca", .flag = &o.ca},
	    {"--ttl", .str = &o.ttl},
	    {"--iss", .str = &o.iss},
	    {"--key", .str = &o.key},
	    {"--chain", .str = &o.chain},
	    {NULL},
	};
	char err[512], *tp = NULL, *fp = NULL, *tok = NULL, *jti = NULL;
	uint8_t rnd[TK_JTI_BYTES];
	json_t *hdr = NULL, *claims = NULL, *x5c = NULL, *res;
	EVP_PKEY *key = NULL;
	int64_t ttl_ms = 0, exp;
	int rc;

	if ((rc = admin_parse_opts(ctx, argc, argv, opts)) >= 0 ||
	    (rc = tk_check(ctx, &o, &ttl_ms)) != 0)
		return rc;
	rc = 1;
	if (o.account_key != NULL &&
	    (tp = file_thumbprint(o.account_key, err, sizeof(err))) == NULL) {
		admin_fail(ctx, "%s", err);
		goto out;
	}
	if (o.account != NULL &&
	    (tp = account_thumbprint(ctx, o.account_id)) == NULL)
		goto out;
	if ((fp = fingerprint_of(tp)) == NULL) {
		admin_fail(ctx, "the account key thumbprint is not SHA-256");
		goto out;
	}
	if ((x5c = chain_x5c(o.chain, err, sizeof(err))) == NULL ||
	    (key = load_key(o.key, err, sizeof(err))) == NULL) {
		admin_fail(ctx, "%s", err);
		goto out;
	}
	random_bytes(rnd, sizeof(rnd));
	jti = hex_encode(rnd, sizeof(rnd));
	exp = (int64_t)time(NULL) + ttl_ms / 1000;
	hdr = json_pack("{s:s, s:O}", "typ", "JWT", "x5c", x5c);
	claims = json_pack("{s:I, s:s, s:{s:s, s:s, s:b, s:s}}", "exp",
	    (json_int_t)exp, "jti", jti, "atc", "tktype", "TNAuthList",
	    "tkvalue", o.tnauthlist, "ca", o.ca, "fingerprint", fp);
	if (o.iss != NULL)
		json_object_set_new(claims, "iss", json_string(o.iss));
	if ((tok = sign_compact(key, hdr, claims, err, sizeof(err))) == NULL) {
		admin_fail(ctx, "%s", err);
		goto out;
	}
	log_audit(NULL, "tkauth-token",
	    "admin=\"%s\" jti=%s ca=%d fingerprint=\"%s\"", ctx->who, jti, o.ca,
	    fp);
	if (ctx->json) {
		res = json_pack("{s:s, s:s, s:I, s:s}", "atc", tok, "jti", jti,
		    "exp", (json_int_t)exp, "fingerprint", fp);
		admin_print_json(res);
		json_decref(res);
	} else
		printf("%s\n", tok);
	rc = 0;
out:
	free(tp);
	free(fp);
	free(tok);
	free(jti);
	json_decref(hdr);
	json_decref(claims);
	json_decref(x5c);
	EVP_PKEY_free(key);
	return rc;
}
