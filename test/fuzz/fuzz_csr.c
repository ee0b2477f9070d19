/* LIBS: ra jose rpc core */
/*
 * fuzz_csr.c - libFuzzer target over the RA's CSR check (ra_csr_check in
 * ra/ra.h): the input is a DER CSR as a finalize request would carry it,
 * checked against a fixed order (two DNS names, a wildcard and an IP) with
 * the dev key policy, with and without an account key. An accepted CSR
 * must hand back its public key; a refused one must carry badCSR or
 * badPublicKey. Nothing may crash, leak or hang.
 *
 *   scripts/fuzz.sh 60 fuzz_csr   (seeds: test/fuzz/corpus/fuzz_csr/)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>

#include "core/core.h"
#include "ra/ra.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_t *
order_idents(void)
{
	return json_pack("[{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:s}]", "type",
	    "dns", "value", "a.test", "type", "dns", "value", "www.a.test",
	    "type", "dns", "value", "*.b.test", "type", "ip", "value",
	    "127.0.0.1");
}

static void
check_once(const uint8_t *data, size_t size, const json_t *ids,
    const struct ra_key_policy *kp, EVP_PKEY *acct)
{
	struct problem *prob = NULL;
	EVP_PKEY *pk = NULL;

	if (ra_csr_check(data, size, ids, kp, acct, &pk, &prob) == 0) {
		if (pk == NULL || prob != NULL)
			abort();
	} else {
		if (prob == NULL || pk != NULL)
			abort();
		if (prob->type != PROB_BAD_CSR &&
		    prob->type != PROB_BAD_PUBLIC_KEY)
			abort();
	}
	EVP_PKEY_free(pk);
	problem_free(prob);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static EVP_PKEY *acct;
	struct ra_key_policy kp;
	json_t *ids;

	if (size > 16 * 1024)
		return 0;
	if (acct == NULL)
		acct = EVP_EC_gen("P-256");
	ra_key_policy_default(&kp);
	ids = order_idents();
	check_once(data, size, ids, &kp, NULL);
	check_once(data, size, ids, &kp, acct);
	json_decref(ids);
	return 0;
}
