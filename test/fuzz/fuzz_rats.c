/* LIBS: va jose core */
/*
 * fuzz_rats.c - libFuzzer target for remote-attest-01's passport-model
 * verifier (draft-ietf-acme-rats; va/rats_ear.c over jose/compact.c): a
 * hostile CMW record value (compact JWS) must not crash the VA and is
 * never accepted without a trusted Verifier key. (rats_tpm.c links the
 * whole VA through attest.c, which a fuzz target cannot.)
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "va/va_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct va_rats *r;
	struct va_rats_verdict v;
	char err[300];

	if (r == NULL &&
	    (r = va_rats_new(NULL, NULL, err, sizeof(err))) == NULL)
		abort();
	memset(&v, 0, sizeof(v));
	/* no trusted Verifier key: nothing may verify */
	if (va_rats_ear_verify(
		r, data, size, "nonce", "", &v, err, sizeof(err)) == 0)
		abort();
	return 0;
}
