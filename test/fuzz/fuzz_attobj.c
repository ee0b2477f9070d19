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

#include "test/fuzz/fuzz_util.h"
#include "va/va_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
		fuzz_inside(data, size, o.x5c[i], o.x5c_len[i]);
	fuzz_inside(data, size, o.sig, o.sig_len);
	fuzz_inside(data, size, o.cert_info, o.cert_info_len);
	fuzz_inside(data, size, o.pub_area, o.pub_area_len);
	fuzz_inside(data, size, o.auth_data, o.auth_data_len);
	return 0;
}
