/* LIBS: jose core */
/*
 * anvil-jose-verify - checks one ACME JWS request body the way the WFE
 * does and prints the verdict as one JSON object. A debugging tool and the
 * bridge for the interoperability tests (JWS made by other libraries).
 *
 *   anvil-jose-verify [options] < body.json
 *     --url URL           expected protected "url" (else not compared)
 *     --nonce N           expected "nonce" (else not compared)
 *     --kid-key FILE      JWK (JSON file) of the account, for kid requests
 *     --allow-es512 / --allow-eddsa / --rsa-max-bits N
 *     --payload-json      the payload must be a JSON object
 *     --key-change ACCOUNT_URL   check the keyChange inner JWS (needs
 *                         --kid-key for the old key)
 *     --eab-key B64URL    check payload.externalAccountBinding with this
 *                         MAC key (its url must be --url, or the outer url)
 *     --key-authz TOKEN   also print the key authorization of TOKEN for the
 *                         signing key and its dns-01 digest
 *   anvil-jose-verify --bench SECONDS
 *                         verifications/s for ES256 and RS256 (bench.c)
 *
 * Output: {"ok": true, "alg", "url", "nonce", "kid", "thumbprint",
 * "post_as_get", "payload", "new_key_thumbprint", "eab_kid",
 * "key_authorization", "dns01_txt"} or
 * {"ok": false, "stage": "parse|verify|url|nonce|payload|key_change|eab",
 * "problem": {RFC 7807}}. Exit 0 accepted, 1 rejected, 2 usage/IO error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/anvil-jose-verify/bench.h"
#include "core/core.h"
#include "jose/jose.h"

struct opts {
	const char *url;
	const char *nonce;
	const char *kid_key;
	const char *key_change;
	const char *eab_key;
	const char *key_authz;
	int payload_json;
	struct jose_policy policy;
};

static int
usage(void)
{
	fprintf(stderr,
	    "usage: anvil-jose-verify [--url U] [--nonce N] "
	    "[--kid-key JWKFILE] [--allow-es512] [--allow-eddsa] "
	    "[--rsa-max-bits N] [--payload-json] [--key-change ACCOUNT_URL] "
	    "[--eab-key B64URL] [--key-authz TOKEN] < body\n");
	return 2;
}

static int
parse_args(int argc, char **argv, struct opts *o)
{
	int i;

	memset(o, 0, sizeof(*o));
	jose_policy_default(&o->policy);
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--allow-es512") == 0) {
			o->policy.allow_es512 = 1;
		} else if (strcmp(a, "--allow-eddsa") == 0) {
			o->policy.allow_eddsa = 1;
		} else if (strcmp(a, "--payload-json") == 0) {
			o->payload_json = 1;
		} else if (v == NULL) {
			return -1;
		} else if (strcmp(a, "--url") == 0) {
			o->url = v, i++;
		} else if (strcmp(a, "--nonce") == 0) {
			o->nonce = v, i++;
		} else if (strcmp(a, "--kid-key") == 0) {
			o->kid_key = v, i++;
		} else if (strcmp(a, "--key-change") == 0) {
			o->key_change = v, i++;
		} else if (strcmp(a, "--eab-key") == 0) {
			o->eab_key = v, i++;
		} else if (strcmp(a, "--key-authz") == 0) {
			o->key_authz = v, i++;
		} else if (strcmp(a, "--rsa-max-bits") == 0) {
			o->policy.rsa_max_bits = atoi(v), i++;
		} else {
			return -1;
		}
	}
	return 0;
}

/* Reads all of stdin (capped) into *out. 0 or -1. */
static int
read_stdin(char **out, size_t *outlen)
{
	size_t cap = 4096, len = 0, n;
	char *buf = xmalloc(cap);

	while ((n = fread(buf + len, 1, cap - len, stdin)) > 0) {
		len += n;
		if (len > 4 * JOSE_MAX_JWS_LEN) {
			free(buf);
			return -1;
		}
		if (len == cap) {
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
	}
	if (ferror(stdin)) {
		free(buf);
		return -1;
	}
	*out = buf;
	*outlen = len;
	return 0;
}

static struct jwk *
load_jwk(const char *path, const struct jose_policy *p)
{
	char err[256];
	json_t *j = config_load_file(path, err, sizeof(err));
	struct jwk *k = NULL;
	struct problem *prob = NULL;

	if (j == NULL) {
		fprintf(stderr, "anvil-jose-verify: %s\n", err);
		return NULL;
	}
	if (jwk_parse(j, p, &k, &prob) != 0) {
		fprintf(
		    stderr, "anvil-jose-verify: %s: %s\n", path, prob->detail);
		problem_free(prob);
	}
	json_decref(j);
	return k;
}

/* The EAB check of a newAccount payload. */
static int
check_eab(const struct opts *o, const struct jws *j, const json_t *payload,
    json_t *res, struct problem **prob)
{
	const json_t *eab = json_object_get(payload, "externalAccountBinding");
	uint8_t *key = NULL;
	size_t keylen = 0;
	char *kid = NULL;
	int rc = -1;

	if (eab == NULL) {
		*prob = problem_new(PROB_EXTERNAL_ACCOUNT_REQUIRED,
		    "no externalAccountBinding in the payload");
		goto out;
	}
	if (j->jwk == NULL) {
		*prob = problem_new(PROB_MALFORMED, "EAB needs a jwk request");
		goto out;
	}
	if (b64url_decode(o->eab_key, strlen(o->eab_key), &key, &keylen) != 0) {
		*prob = problem_new(PROB_MALFORMED, "bad --eab-key");
		goto out;
	}
	if (jose_eab_kid(eab, &kid, prob) != 0 ||
	    jose_verify_eab(
		eab, key, keylen, j->jwk, o->url ? o->url : j->url, prob) != 0)
		goto out;
	json_object_set_new(res, "eab_kid", json_string(kid));
	rc = 0;
out:
	free(kid);
	free(key);
	return rc;
}

static void
add_key_authz(json_t *res, const char *token, const char *thumbprint)
{
	char *ka = jose_key_authorization(token, thumbprint);
	char *txt = jose_key_authz_digest_b64(ka);

	json_object_set_new(res, "key_authorization", json_string(ka));
	json_object_set_new(res, "dns01_txt", json_string(txt));
	free(ka);
	free(txt);
}

/* The key change check: the thumbprint of the new key into res. */
static int
check_key_change(const struct opts *o, const struct jws *j,
    const struct jwk *acct, json_t *res, struct problem **prob)
{
	struct jwk *newk = NULL;

	if (acct == NULL ||
	    jose_verify_key_change(
		j, &o->policy, o->key_change, acct, &newk, prob) != 0) {
		if (*prob == NULL)
			*prob = problem_new(
			    PROB_MALFORMED, "--key-change needs --kid-key");
		jwk_free(newk);
		return -1;
	}
	json_object_set_new(
	    res, "new_key_thumbprint", json_string(newk->thumbprint));
	jwk_free(newk);
	return 0;
}

/*
 * The WFE's checks of body in order. NULL when it passes, else the stage
 * that refused it with *prob. *j (parsed request) and *payload (when
 * asked for) are the caller's to free either way; res gets the results
 * of the key change and EAB checks.
 */
static const char *
verify_body(const struct opts *o, const char *body, size_t len,
    const struct jwk *acct, json_t *res, struct jws **j, json_t **payload,
    struct problem **prob)
{
	if (jws_parse(body, len, &o->policy, j, prob) != 0)
		return "parse";
	if ((*j)->kid != NULL && acct == NULL) {
		*prob = problem_new(PROB_ACCOUNT_DOES_NOT_EXIST,
		    "kid request but no --kid-key given");
		return "verify";
	}
	if (jws_verify(*j, (*j)->jwk != NULL ? (*j)->jwk : acct, prob) != 0)
		return "verify";
	if (o->url != NULL && strcmp(o->url, (*j)->url) != 0) {
		*prob = problem_new(PROB_UNAUTHORIZED,
		    "url \"%s\" is not the "
		    "request URL \"%s\"",
		    (*j)->url, o->url);
		return "url";
	}
	if (o->nonce != NULL && strcmp(o->nonce, (*j)->nonce) != 0) {
		*prob = problem_new(PROB_BAD_NONCE, "unexpected nonce");
		return "nonce";
	}
	if ((o->payload_json || o->eab_key != NULL) &&
	    jws_payload_json(*j, payload, prob) != 0)
		return "payload";
	if (o->key_change != NULL &&
	    check_key_change(o, *j, acct, res, prob) != 0)
		return "key_change";
	if (o->eab_key != NULL && check_eab(o, *j, *payload, res, prob) != 0)
		return "eab";
	return NULL;
}

/* The fields of an accepted request into res (payload borrowed). */
static void
add_accepted(json_t *res, const struct opts *o, const struct jws *j,
    const struct jwk *acct, json_t *payload)
{
	const char *thumbprint = j->jwk ? j->jwk->thumbprint : acct->thumbprint;

	json_object_set_new(res, "alg", json_string(jose_alg_name(j->alg)));
	json_object_set_new(res, "url", json_string(j->url));
	json_object_set_new(res, "nonce", json_string(j->nonce));
	json_object_set_new(
	    res, "kid", j->kid ? json_string(j->kid) : json_null());
	json_object_set_new(res, "thumbprint", json_string(thumbprint));
	json_object_set_new(
	    res, "post_as_get", json_boolean(j->is_post_as_get));
	json_object_set_new(
	    res, "payload", payload ? json_incref(payload) : json_null());
	if (o->key_authz != NULL)
		add_key_authz(res, o->key_authz, thumbprint);
}

int
main(int argc, char **argv)
{
	struct opts o;
	char *body = NULL, *out = NULL;
	size_t len = 0;
	struct jws *j = NULL;
	struct jwk *acct = NULL;
	struct problem *prob = NULL;
	json_t *res = json_object(), *payload = NULL;
	const char *stage;
	int rc = 2;

	log_init("anvil-jose-verify", LOG_LEVEL_WARN);
	if (argc == 3 && strcmp(argv[1], "--bench") == 0) {
		rc = jose_bench_run(atof(argv[2])) == 0 ? 0 : 2;
		goto out;
	}
	if (parse_args(argc, argv, &o) != 0) {
		rc = usage();
		goto out;
	}
	if (read_stdin(&body, &len) != 0) {
		fprintf(stderr, "anvil-jose-verify: cannot read stdin\n");
		goto out;
	}
	if (o.kid_key != NULL) {
		struct jose_policy any;

		jose_policy_permissive(&any);
		acct = load_jwk(o.kid_key, &any);
		if (acct == NULL)
			goto out;
	}
	stage = verify_body(&o, body, len, acct, res, &j, &payload, &prob);
	rc = stage == NULL ? 0 : 1;
	json_object_set_new(res, "ok", json_boolean(rc == 0));
	if (rc != 0) {
		json_object_set_new(res, "stage", json_string(stage));
		json_object_set_new(res, "problem", problem_to_json(prob));
	} else {
		add_accepted(res, &o, j, acct, payload);
	}
	out = json_dumps(res, JSON_COMPACT | JSON_SORT_KEYS);
	if (out == NULL || printf("%s\n", out) < 0) {
		rc = 2;
		goto out;
	}
out:
	free(out);
	free(body);
	json_decref(res);
	json_decref(payload);
	jws_free(j);
	jwk_free(acct);
	problem_free(prob);
	return rc;
}
