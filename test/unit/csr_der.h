/*
 * csr_der.h - the last steps of every test CSR: sign it and return its DER
 * in a buffer of its own (one copy for the unit tests that build CSRs with
 * OpenSSL; a failure of OpenSSL here is a broken test, so it aborts).
 */
#ifndef ANVIL_TEST_CSR_DER_H
#define ANVIL_TEST_CSR_DER_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

/* Signs req (borrowed) with key (borrowed) and md (NULL for Ed25519/Ed448)
 * and returns its DER, malloc'd (the caller frees it), length in *len. */
static inline uint8_t *
csr_sign_der(X509_REQ *req, EVP_PKEY *key, const EVP_MD *md, size_t *len)
{
	unsigned char *tmp = NULL;
	uint8_t *der;
	int l;

	if (X509_REQ_sign(req, key, md) <= 0 ||
	    (l = i2d_X509_REQ(req, &tmp)) <= 0 ||
	    (der = malloc((size_t)l)) == NULL)
		abort();
	memcpy(der, tmp, (size_t)l);
	OPENSSL_free(tmp);
	*len = (size_t)l;
	return der;
}

#endif
