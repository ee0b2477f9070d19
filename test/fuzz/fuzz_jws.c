/* LIBS: jose core */
/*
 * fuzz_jws.c - libFuzzer target over the JOSE parser and verifier: the input
 * is an ACME request body. It is parsed (permissive policy: every alg on),
 * verified with its embedded jwk or a fixed account key, its payload parsed
 * as JSON, checked as a keyChange request, and its payload's
 * externalAccountBinding (if any) checked. So that the fuzzer need not get
 * through base64url first, the same bytes are also tried as the decoded
 * protected header of a body, and as a JWK. Nothing may crash, leak or
 * hang.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. \
 *       test/fuzz/fuzz_jws.c jose/(*).c core/(*).c $(pkg-config ...) \
 *   ./fuzz_jws test/vectors/jose/corpus
 * (scripts/fuzz.sh does this for every target.)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "jose/jose.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The fixed "account key" (P-256) for kid requests. */
static const char acct_jwk[] =
    "{\"kty\":\"EC\",\"crv\":\"P-256\","
    "\"x\":\"jQZvrCjVxK-Gi5ezqVs6ls0_7pWLRQCNDGSq-9nHeXM\","
    "\"y\":\"5zQH6MPV9tJGy4fgz8JuElBSgJrdBgd01t6kuVbfhNg\"}";

static const uint8_t eab_key[32] = "fuzzing-eab-hmac-key-32-bytes..";

static void
check_eab(const struct jws *j, const json_t *payload)
{
	const json_t *eab = json_object_get(payload, "externalAccountBinding");
	struct problem *prob = NULL;
	char *kid = NULL;

	if (eab == NULL || j->jwk == NULL)
		return;
	if (jose_eab_kid(eab, &kid, &prob) == 0)
		(void)jose_verify_eab(
		    eab, eab_key, sizeof(eab_key), j->jwk, j->url, &prob);
	problem_free(prob);
	free(kid);
}

/* The input as a protected header, then as a bare JWK. */
static void
as_header_and_jwk(
    const uint8_t *data, size_t size, const struct jose_policy *pol)
{
	char *hdr = b64url_encode(data, size), *body;
	struct problem *prob = NULL;
	struct jws *j = NULL;
	struct jwk *k = NULL;
	json_t *obj;

	body = xasprintf("{\"protected\":\"%s\",\"payload\":\"e30\","
			 "\"signature\":\"AAAA\"}",
	    hdr);
	if (jws_parse(body, strlen(body), pol, &j, &prob) == 0)
		(void)jws_verify(j, j->jwk, NULL);
	else if (prob == NULL)
		abort();
	problem_free(prob);
	prob = NULL;
	jws_free(j);
	obj =
	    json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (obj != NULL) {
		if (jwk_parse(obj, pol, &k, &prob) == 0) {
			char *tp = jwk_thumbprint(k);

			if (strcmp(tp, k->thumbprint) != 0 || !jwk_equal(k, k))
				abort();
			free(tp);
		} else if (prob == NULL) {
			abort();
		}
	}
	problem_free(prob);
	jwk_free(k);
	json_decref(obj);
	free(body);
	free(hdr);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jose_policy pol;
	struct problem *prob = NULL;
	struct jws *j = NULL;
	struct jwk *acct = NULL, *newk = NULL;
	json_t *aj = NULL, *payload = NULL;

	jose_policy_default(&pol);
	pol.allow_es512 = pol.allow_eddsa = 1;
	aj = json_loads(acct_jwk, 0, NULL);
	if (aj == NULL || jwk_parse(aj, NULL, &acct, NULL) != 0)
		abort();
	if (size <= 4096)
		as_header_and_jwk(data, size, &pol);
	if (jws_parse((const char *)data, size, &pol, &j, &prob) != 0)
		goto out;
	if (prob != NULL)
		abort(); /* success must not leave a problem */
	(void)jws_verify(j, j->jwk != NULL ? j->jwk : acct, &prob);
	problem_free(prob);
	prob = NULL;
	if (jws_payload_json(j, &payload, &prob) == 0)
		check_eab(j, payload);
	problem_free(prob);
	prob = NULL;
	if (jose_verify_key_change(j, &pol, "https://ca.example/acme/acct/1",
		acct, &newk, &prob) == 0 &&
	    newk == NULL)
		abort();
out:
	if (j == NULL && prob == NULL)
		abort(); /* failure must explain itself */
	problem_free(prob);
	jwk_free(newk);
	json_decref(payload);
	jws_free(j);
	jwk_free(acct);
	json_decref(aj);
	return 0;
}
