/* LIBS: va jose core */
/*
 * fuzz_keydesc.c - libFuzzer target for the Android Key Attestation
 * extension decoder of device-attest-01's android-key format
 * (va_akd_parse: an OpenSSL ASN.1 template for KeyDescription, the two
 * AuthorizationLists walked with ASN1_get_object): hostile DER must not
 * crash the VA, read outside the input or yield values outside the
 * decoder's bounds.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "va/va_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts unless l keeps the decoder's bounds. */
static void
check_list(const struct va_akd_list *l)
{
	const char *ids[] = {l->serial, l->imei, l->meid};
	size_t i, j, n;

	if (l->n_purpose > VA_AKD_MAX_PURPOSES ||
	    (l->n_purpose > 0 && !l->has_purpose))
		abort();
	for (i = 0; i < 3; i++) {
		n = strlen(ids[i]);
		if (n > VA_AKD_MAX_ID)
			abort();
		for (j = 0; j < n; j++)
			if ((unsigned char)ids[i][j] < 0x20 ||
			    ids[i][j] == 0x7f)
				abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct va_akd d;
	char err[160];

	if (va_akd_parse(data, size, &d, err, sizeof(err)) != 0) {
		if (err[0] == '\0')
			abort();
		return 0;
	}
	if (d.att_level < VA_AKD_SOFTWARE || d.att_level > VA_AKD_STRONGBOX ||
	    d.km_level < VA_AKD_SOFTWARE || d.km_level > VA_AKD_STRONGBOX ||
	    d.challenge_len > sizeof(d.challenge))
		abort();
	check_list(&d.sw);
	check_list(&d.tee);
	return 0;
}
