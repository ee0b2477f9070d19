/*
 * csr.c - the pool of pre-generated certificate keys, CSR building and the
 * check of a downloaded certificate. Key generation is done once at start
 * so that it is not part of the measured issuance.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/core.h"
#include "cmd/anvil-loadgen/lg.h"

struct lg_keypool {
	EVP_PKEY **keys;
	int n;
};

EVP_PKEY *
lg_key_new_p256(void)
{
	return EVP_EC_gen("P-256");
}

struct lg_keypool *
lg_keypool_new(int n)
{
	struct lg_keypool *p = NULL;
	int i;

	if (n < 1)
		return NULL;
	p = xcalloc(1, sizeof(*p));
	p->keys = xcalloc((size_t)n, sizeof(EVP_PKEY *));
	for (i = 0; i < n; i++) {
		p->keys[i] = lg_key_new_p256();
		if (p->keys[i] == NULL) {
			p->n = i;
			lg_keypool_free(p);
			return NULL;
		}
	}
	p->n = n;
	return p;
}

void
lg_keypool_free(struct lg_keypool *p)
{
	int i;

	if (p == NULL)
		return;
	for (i = 0; i < p->n; i++)
		EVP_PKEY_free(p->keys[i]);
	free(p->keys);
	free(p);
}

EVP_PKEY *
lg_keypool_get(struct lg_keypool *p, uint64_t i)
{
	return p->keys[i % (uint64_t)p->n];
}

char *
lg_csr_b64(EVP_PKEY *key, const char *const *names, size_t n)
{
	X509_REQ *req = NULL;
	X509_NAME *subj = NULL;
	X509_EXTENSION *ext = NULL;
	STACK_OF(X509_EXTENSION) *exts = NULL;
	GENERAL_NAMES *gens = NULL;
	unsigned char *der = NULL;
	char *out = NULL;
	size_t i;
	int len;

	if (n == 0)
		goto out;
	req = X509_REQ_new();
	subj = X509_NAME_new();
	gens = GENERAL_NAMES_new();
	exts = sk_X509_EXTENSION_new_null();
	if (req == NULL || subj == NULL || gens == NULL || exts == NULL)
		goto out;
	if (X509_REQ_set_version(req, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_ASC,
		(const unsigned char *)names[0], -1, -1, 0) != 1 ||
	    X509_REQ_set_subject_name(req, subj) != 1 ||
	    X509_REQ_set_pubkey(req, key) != 1)
		goto out;
	for (i = 0; i < n; i++) {
		GENERAL_NAME *g = GENERAL_NAME_new();
		ASN1_IA5STRING *s = ASN1_IA5STRING_new();

		if (g == NULL || s == NULL ||
		    ASN1_STRING_set(s, names[i], (int)strlen(names[i])) != 1) {
			GENERAL_NAME_free(g);
			ASN1_IA5STRING_free(s);
			goto out;
		}
		GENERAL_NAME_set0_value(g, GEN_DNS, s);
		if (sk_GENERAL_NAME_push(gens, g) <= 0) {
			GENERAL_NAME_free(g);
			goto out;
		}
	}
	ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens);
	if (ext == NULL || sk_X509_EXTENSION_push(exts, ext) <= 0)
		goto out;
	ext = NULL; /* owned by exts now */
	if (X509_REQ_add_extensions(req, exts) != 1 ||
	    X509_REQ_sign(req, key, EVP_sha256()) <= 0)
		goto out;
	len = i2d_X509_REQ(req, &der);
	if (len <= 0)
		goto out;
	out = b64url_encode(der, (size_t)len);
out:
	OPENSSL_free(der);
	X509_EXTENSION_free(ext);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	GENERAL_NAMES_free(gens);
	X509_NAME_free(subj);
	X509_REQ_free(req);
	return out;
}

int
lg_cert_check(const char *pem, size_t len, EVP_PKEY *key,
    const char *const *names, size_t n, char *err, size_t errlen)
{
	BIO *bio = NULL;
	X509 *cert = NULL;
	size_t i;
	int rc = -1;

	if (len > (size_t)LG_MAX_BODY) {
		snprintf(err, errlen, "certificate chain too large");
		goto out;
	}
	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio == NULL)
		goto out;
	cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	if (cert == NULL) {
		snprintf(err, errlen, "no PEM certificate in the response");
		goto out;
	}
	if (EVP_PKEY_eq(X509_get0_pubkey(cert), key) != 1) {
		snprintf(err, errlen, "certificate key is not the CSR key");
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (X509_check_host(cert, names[i], 0,
			X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) != 1) {
			snprintf(err, errlen, "certificate does not cover %s",
			    names[i]);
			goto out;
		}
	}
	rc = 0;
out:
	X509_free(cert);
	BIO_free(bio);
	return rc;
}
