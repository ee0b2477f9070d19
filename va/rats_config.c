/*
 * rats_config.c - va.json "rats" (docs/config/va.md) for remote-attest-01
 * (rats.c): the trusted RATS Verifier keys, the appraisal policy and the
 * TPM reference values. Kept apart from rats.c (the validation job) so
 * that config checks and fuzz targets link without the VA's event loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "jose/jose.h"
#include "va/va_int.h"

struct va_rats {
	struct jwk **keys; /* rats.verifier_keys: trusted Verifier keys */
	size_t n_keys;
	int64_t max_age_ms;  /* rats.max_age: oldest attestation accepted */
	int accept_warning;  /* rats.accept_warning */
	json_t *pcr_digests; /* rats.tpm_pcr_digests: lowercase hex */
	const struct va_attest *attest; /* the tpm roots (borrowed) */
};

/* 1 if v (borrowed) is an array of hex digests of 20 to 64 bytes. */
static int
hex_digests(const json_t *v)
{
	const json_t *e;
	const char *s;
	size_t i, n;

	if (!json_is_array(v))
		return 0;
	json_array_foreach(v, i, e)
	{
		s = json_string_value(e);
		n = s ? strlen(s) : 0;
		if (n < 40 || n > 128 || n % 2 != 0 ||
		    strspn(s, "0123456789abcdefABCDEF") != n)
			return 0;
	}
	return 1;
}

/* See va_int.h. */
int
va_rats_config_check(const json_t *o, char *err, size_t errlen)
{
	const char *k;
	const json_t *v;
	int64_t ms;

	if (o == NULL)
		return 0;
	if (!json_is_object(o)) {
		snprintf(err, errlen, "rats: expected an object");
		return -1;
	}
	json_object_foreach((json_t *)o, k, v)
	{
		if (strcmp(k, "verifier_keys") == 0 && json_is_string(v))
			continue;
		if (strcmp(k, "accept_warning") == 0 && json_is_boolean(v))
			continue;
		if (strcmp(k, "tpm_pcr_digests") == 0 && hex_digests(v))
			continue;
		if (strcmp(k, "max_age") == 0 && json_is_string(v) &&
		    duration_parse_ms(json_string_value(v), &ms) == 0 && ms > 0)
			continue;
		snprintf(err, errlen,
		    "rats.%.64s: unknown key or bad value (verifier_keys: a PEM "
		    "file, max_age: a duration, accept_warning: a boolean, "
		    "tpm_pcr_digests: hex digests)",
		    k);
		return -1;
	}
	return 0;
}

/* Loads every public key of PEM file path into r. 0, or -1 with err. */
static int
load_keys(struct va_rats *r, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	struct problem *p = NULL;
	struct jose_policy pol;
	struct jwk *k;
	EVP_PKEY *pk;
	json_t *j;

	jose_policy_permissive(&pol);
	if (f == NULL) {
		snprintf(
		    err, errlen, "rats.verifier_keys: cannot open %s", path);
		return -1;
	}
	while ((pk = PEM_read_PUBKEY(f, NULL, NULL, NULL)) != NULL) {
		j = jwk_from_pkey(pk);
		k = NULL;
		if (j == NULL || jwk_parse(j, &pol, &k, &p) != 0) {
			snprintf(err, errlen,
			    "rats.verifier_keys: key %zu of %s is not an RSA, "
			    "EC or Ed25519 signing key",
			    r->n_keys + 1, path);
			problem_free(p);
			json_decref(j);
			EVP_PKEY_free(pk);
			fclose(f);
			return -1;
		}
		json_decref(j);
		EVP_PKEY_free(pk);
		r->keys = xrealloc(r->keys, (r->n_keys + 1) * sizeof(*r->keys));
		r->keys[r->n_keys++] = k;
	}
	ERR_clear_error();
	fclose(f);
	if (r->n_keys == 0) {
		snprintf(err, errlen, "rats.verifier_keys: no PUBLIC KEY in %s",
		    path);
		return -1;
	}
	return 0;
}

/* See va_int.h. */
struct va_rats *
va_rats_new(
    const json_t *o, const struct va_attest *attest, char *err, size_t errlen)
{
	struct va_rats *r = xcalloc(1, sizeof(*r));
	const char *path, *age;
	const json_t *d;
	size_t i;
	char *h;

	r->max_age_ms = 5 * 60 * 1000;
	if (va_rats_config_check(o, err, errlen) != 0)
		goto fail;
	age = json_string_value(json_object_get(o, "max_age"));
	if (age != NULL)
		(void)duration_parse_ms(age, &r->max_age_ms);
	r->accept_warning = json_is_true(json_object_get(o, "accept_warning"));
	r->attest = attest;
	r->pcr_digests = json_array();
	json_array_foreach(json_object_get(o, "tpm_pcr_digests"), i, d)
	{
		h = xstrdup(json_string_value(d));
		for (char *c = h; *c; c++)
			if (*c >= 'A' && *c <= 'F')
				*c = (char)(*c - 'A' + 'a');
		json_array_append_new(r->pcr_digests, json_string(h));
		free(h);
	}
	path = json_string_value(json_object_get(o, "verifier_keys"));
	if (path != NULL && load_keys(r, path, err, errlen) != 0)
		goto fail;
	return r;
fail:
	va_rats_free(r);
	return NULL;
}

/* See va_int.h. */
void
va_rats_free(struct va_rats *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->n_keys; i++)
		jwk_free(r->keys[i]);
	free(r->keys);
	json_decref(r->pcr_digests);
	free(r);
}

/* See va_int.h. */
struct jwk *const *
va_rats_keys(const struct va_rats *r, size_t *n)
{
	*n = r->n_keys;
	return r->keys;
}

/* See va_int.h. */
int64_t
va_rats_max_age_ms(const struct va_rats *r)
{
	return r->max_age_ms;
}

/* See va_int.h. */
const struct va_attest *
va_rats_attest(const struct va_rats *r)
{
	return r->attest;
}

/* See va_int.h. */
int
va_rats_pcr_digest_known(const struct va_rats *r, const char *hex)
{
	const json_t *d;
	size_t i;

	if (json_array_size(r->pcr_digests) == 0)
		return -1;
	json_array_foreach(r->pcr_digests, i, d)
	{
		if (strcmp(json_string_value(d), hex) == 0)
			return 1;
	}
	return 0;
}

/* See va_int.h. */
int
va_rats_status_ok(const struct va_rats *r, const char *status)
{
	return strcmp(status, "affirming") == 0 ||
	    (r->accept_warning && strcmp(status, "warning") == 0);
}
