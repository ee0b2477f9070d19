/* LIBS: va jose core */
/*
 * fuzz_attobj.c - libFuzzer target for device-attest-01's attestation
 * object decoder (va_attobj_parse, libcbor streaming under strict bounds):
 * hostile CBOR must not crash the VA, read outside the input or leave
 * pointers outside it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "va/va_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* p (n bytes) lies inside [data, data + size). */
static void
inside(const uint8_t *data, size_t size, const uint8_t *p, size_t n)
{
	if (p == NULL)
		return;
	if (p < data || n > size || p > data + size - n)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct va_attobj o;
	char err[160];
	size_t i;

	if (va_attobj_parse(data, size, &o, err, sizeof(err)) != 0)
		return 0;
	if (o.fmt[0] == '\0' || !o.has_att_stmt || o.n_x5c > VA_ATT_MAX_X5C)
		abort();
	for (i = 0; i < o.n_x5c; i++)
		inside(data, size, o.x5c[i], o.x5c_len[i]);
	inside(data, size, o.sig, o.sig_len);
	inside(data, size, o.cert_info, o.cert_info_len);
	inside(data, size, o.pub_area, o.pub_area_len);
	inside(data, size, o.auth_data, o.auth_data_len);
	return 0;
}
