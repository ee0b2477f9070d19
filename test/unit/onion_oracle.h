/*
 * onion_oracle.h - the Tor v3 onion address of a key, computed in the tests
 * independently of core/ident.c (tor-spec rend-spec-v3 §6):
 *   base32(pubkey || SHA3-256(".onion checksum" || pubkey || version)[:2]
 *          || version)
 */
#ifndef ANVIL_TEST_ONION_ORACLE_H
#define ANVIL_TEST_ONION_ORACLE_H

#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/core.h"

/* The 56-character address label (without ".onion") of pubkey with
 * version; the caller frees it. */
static inline char *
onion_addr_of(const uint8_t pubkey[32], uint8_t version)
{
	uint8_t raw[35], d[32];
	unsigned dl = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	memcpy(raw, pubkey, 32);
	EVP_DigestInit_ex(ctx, EVP_sha3_256(), NULL);
	EVP_DigestUpdate(ctx, ".onion checksum", 15);
	EVP_DigestUpdate(ctx, pubkey, 32);
	EVP_DigestUpdate(ctx, &version, 1);
	EVP_DigestFinal_ex(ctx, d, &dl);
	EVP_MD_CTX_free(ctx);
	memcpy(raw + 32, d, 2);
	raw[34] = version;
	return base32_encode_lower(raw, sizeof(raw));
}

#endif
