/* alg.c - JWS algorithm names and the acceptance policy. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "jose/jose_int.h"

/* One row per JWS algorithm (RFC 7518 §3.1, RFC 8037 §3.1). */
static const struct alg_def {
	const char *name;
	const EVP_MD *(*md)(void); /* NULL: EdDSA hashes inside the signature */
	size_t ec_len;             /* bytes of r and of s; 0: not ECDSA */
} algs[JOSE_ALG__MAX] = {
    [JOSE_ALG_RS256] = {"RS256", EVP_sha256, 0},
    [JOSE_ALG_ES256] = {"ES256", EVP_sha256, 32},
    [JOSE_ALG_ES384] = {"ES384", EVP_sha384, 48},
    [JOSE_ALG_ES512] = {"ES512", EVP_sha512, 66},
    [JOSE_ALG_EDDSA] = {"EdDSA", NULL, 0},
};

/* The row of a, or NULL when a is out of range. */
static const struct alg_def *
alg_def(enum jose_alg a)
{
	return (int)a >= 0 && a < JOSE_ALG__MAX ? &algs[a] : NULL;
}

const char *
jose_alg_name(enum jose_alg a)
{
	return alg_def(a) != NULL ? alg_def(a)->name : "unknown";
}

int
jose_alg_parse(const char *s, enum jose_alg *out)
{
	int i;

	if (s == NULL)
		return -1;
	for (i = 0; i < JOSE_ALG__MAX; i++) {
		if (strcmp(s, algs[i].name) == 0) {
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
		    json_array_append_new(arr, json_string(algs[i].name)) != 0)
			abort();
	}
	return arr;
}

const EVP_MD *
jose_alg_md(enum jose_alg a)
{
	const struct alg_def *d = alg_def(a);

	return d != NULL && d->md != NULL ? d->md() : NULL;
}

size_t
jose_alg_ec_len(enum jose_alg a)
{
	return alg_def(a) != NULL ? alg_def(a)->ec_len : 0;
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
