/* alg.c - JWS algorithm names and the acceptance policy. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "jose/jose_int.h"

static const char *const alg_names[JOSE_ALG__MAX] = {
    [JOSE_ALG_RS256] = "RS256",
    [JOSE_ALG_ES256] = "ES256",
    [JOSE_ALG_ES384] = "ES384",
    [JOSE_ALG_ES512] = "ES512",
    [JOSE_ALG_EDDSA] = "EdDSA",
};

const char *
jose_alg_name(enum jose_alg a)
{
	if ((int)a < 0 || a >= JOSE_ALG__MAX)
		return "unknown";
	return alg_names[a];
}

int
jose_alg_parse(const char *s, enum jose_alg *out)
{
	int i;

	if (s == NULL)
		return -1;
	for (i = 0; i < JOSE_ALG__MAX; i++) {
		if (strcmp(s, alg_names[i]) == 0) {
			*out = (enum jose_alg)i;
			return 0;
		}
	}
	return -1;
}

void
jose_policy_default(struct jose_policy *p)
{
	*p = (struct jose_policy){.rsa_min_bits = 2048, .rsa_max_bits = 4096};
}

void
jose_policy_permissive(struct jose_policy *p)
{
	*p = (struct jose_policy){.allow_es512 = 1,
	    .allow_eddsa = 1,
	    .rsa_min_bits = 1024,
	    .rsa_max_bits = 16384};
}

int
jose_policy_allows(const struct jose_policy *p, enum jose_alg a)
{
	struct jose_policy def;

	if (p == NULL) {
		jose_policy_default(&def);
		p = &def;
	}
	switch (a) {
	case JOSE_ALG_RS256:
	case JOSE_ALG_ES256:
	case JOSE_ALG_ES384:
		return 1;
	case JOSE_ALG_ES512:
		return p->allow_es512 != 0;
	case JOSE_ALG_EDDSA:
		return p->allow_eddsa != 0;
	default:
		return 0;
	}
}

json_t *
jose_policy_algs_json(const struct jose_policy *p)
{
	json_t *arr = json_array();
	int i;

	if (arr == NULL)
		abort();
	for (i = 0; i < JOSE_ALG__MAX; i++) {
		if (jose_policy_allows(p, (enum jose_alg)i) &&
		    json_array_append_new(arr, json_string(alg_names[i])) != 0)
			abort();
	}
	return arr;
}

const EVP_MD *
jose_alg_md(enum jose_alg a)
{
	switch (a) {
	case JOSE_ALG_RS256:
	case JOSE_ALG_ES256:
		return EVP_sha256();
	case JOSE_ALG_ES384:
		return EVP_sha384();
	case JOSE_ALG_ES512:
		return EVP_sha512();
	default:
		return NULL;
	}
}

size_t
jose_alg_ec_len(enum jose_alg a)
{
	switch (a) {
	case JOSE_ALG_ES256:
		return 32;
	case JOSE_ALG_ES384:
		return 48;
	case JOSE_ALG_ES512:
		return 66;
	default:
		return 0;
	}
}

int
jose_fail(struct problem **prob, enum prob_type t, const char *fmt, ...)
{
	va_list ap;
	char *msg = NULL;

	if (prob == NULL)
		return -1;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	va_end(ap);
	*prob = problem_new(t, "%s", msg);
	free(msg);
	return -1;
}
