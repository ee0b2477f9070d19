/*
 * util.c - small OpenSSL and storage helpers of the CA.
 */
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "ca/ca_int.h"

static const char *const key_type_names[CA_KEY__MAX] = {
    [CA_KEY_ECDSA] = "ecdsa",
    [CA_KEY_RSA] = "rsa",
};

/* Static name of a key type. */
const char *
ca_key_type_name(enum ca_key_type t)
{
	if ((int)t < 0 || t >= CA_KEY__MAX)
		return "unknown";
	return key_type_names[t];
}

/* Parses "ecdsa" / "rsa"; 0 or -1. */
int
ca_key_type_parse(const char *s, enum ca_key_type *out)
{
	int i;

	if (s == NULL)
		return -1;
	for (i = 0; i < CA_KEY__MAX; i++) {
		if (strcmp(s, key_type_names[i]) == 0) {
			*out = (enum ca_key_type)i;
			return 0;
		}
	}
	return -1;
}

/* Borrows k; 0 with *out or -1 for other key types. */
int
ca_pkey_type(const EVP_PKEY *k, enum ca_key_type *out)
{
	if (k == NULL)
		return -1;
	switch (EVP_PKEY_get_base_id(k)) {
	case EVP_PKEY_EC:
		*out = CA_KEY_ECDSA;
		return 0;
	case EVP_PKEY_RSA:
		*out = CA_KEY_RSA;
		return 0;
	default:
		return -1;
	}
}

/* Borrows x; malloc'd PEM or NULL. */
char *
ca_x509_pem(const X509 *x)
{
	BIO *b = NULL;
	char *data = NULL, *ret = NULL;
	long n;

	if ((b = BIO_new(BIO_s_mem())) == NULL)
		goto out;
	if (!PEM_write_bio_X509(b, (X509 *)x))
		goto out;
	n = BIO_get_mem_data(b, &data);
	if (n <= 0)
		goto out;
	ret = xstrndup(data, (size_t)n);
out:
	BIO_free(b);
	return ret;
}

/* See ca_int.h. */
int
ca_der_take(int n, unsigned char *p, uint8_t **der, size_t *len)
{
	int ret = -1;

	if (n > 0 && p != NULL) {
		*der = xmalloc((size_t)n);
		memcpy(*der, p, (size_t)n);
		*len = (size_t)n;
		ret = 0;
	}
	OPENSSL_free(p);
	return ret;
}

/* Borrows x; 0 with *der (caller frees) or -1. */
int
ca_x509_der(const X509 *x, uint8_t **der, size_t *len)
{
	unsigned char *p = NULL;
	int n = i2d_X509(x, &p);

	return ca_der_take(n, p, der, len);
}

/* Borrows x; fills id (17 bytes). 0 or -1. */
int
ca_x509_id(const X509 *x, char id[17])
{
	uint8_t *der = NULL, h[32];
	size_t len;
	char *hex;

	if (ca_x509_der(x, &der, &len) != 0)
		return -1;
	sha256(der, len, h);
	free(der);
	hex = hex_encode(h, 8);
	memcpy(id, hex, 16);
	id[16] = '\0';
	free(hex);
	return 0;
}

/* Big-endian serial modulo n. */
int64_t
ca_serial_shard(const uint8_t *serial, size_t len, int64_t n)
{
	uint64_t r = 0;
	size_t i;

	if (n <= 1)
		return 0;
	for (i = 0; i < len; i++)
		r = (r * 256 + serial[i]) % (uint64_t)n;
	return (int64_t)r;
}

/* See ca_int.h. */
int
ca_store_call(struct ca *ca, enum rpc_method_id id, json_t *params,
    const char *rid, json_t **result, struct problem **prob)
{
	*result = NULL;
	*prob = NULL;
	if (ca->store.call == NULL) {
		*prob =
		    problem_new(PROB_SERVER_INTERNAL, "no store configured");
		return -1;
	}
	if (ca->store.call(ca->store.arg, id, params, rid, result, prob) != 0) {
		if (*prob == NULL)
			*prob = problem_new(PROB_SERVER_INTERNAL, "%s failed",
			    rpc_method_name(id));
		if (*result != NULL) {
			json_decref(*result);
			*result = NULL;
		}
		return -1;
	}
	if (*result == NULL)
		*result = json_object();
	return 0;
}

/* Borrows x and key; SHA-256 signature. 0 or -1. */
int
ca_x509_sign(X509 *x, EVP_PKEY *key)
{
	return X509_sign(x, key, EVP_sha256()) > 0 ? 0 : -1;
}

/* New key (caller frees with EVP_PKEY_free) or NULL. */
EVP_PKEY *
ca_key_generate(enum ca_key_type kt, int bits)
{
	if (kt == CA_KEY_RSA)
		return EVP_PKEY_Q_keygen(
		    NULL, NULL, "RSA", (size_t)(bits > 0 ? bits : 2048));
	return EVP_PKEY_Q_keygen(
	    NULL, NULL, "EC", bits == 384 ? "P-384" : "P-256");
}

/* Malloc'd URL of a CRL shard. */
char *
ca_url_crl(const char *base, const char *issuer_id, int64_t shard)
{
	return xasprintf(
	    "%s/crl/%s/%lld.crl", base, issuer_id, (long long)shard);
}

/* Malloc'd URL of an issuer certificate (DER). */
char *
ca_url_issuer(const char *base, const char *issuer_id)
{
	return xasprintf("%s/issuer/%s.der", base, issuer_id);
}

/* Malloc'd OCSP responder URL. */
char *
ca_url_ocsp(const char *base)
{
	return xasprintf("%s/ocsp", base);
}
