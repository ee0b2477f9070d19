/* LIBS: va jose core */
/*
 * fuzz_va_dns.c - libFuzzer target for the VA's DNS response reader
 * (va_dns_msg_extract): hostile resolvers must not crash the VA or make it
 * loop on CNAME chains or compression pointers.
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
	static const int types[] = {1, 28, 16, 257};
	struct va_dns_result r;
	size_t i, k;

	if (size > 8192)
		return 0;
	for (k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
		memset(&r, 0, sizeof(r));
		if (va_dns_msg_extract(
			data, (int)size, "a.test", types[k], &r) == 0) {
			if (r.status != VA_DNS_OK && r.status != VA_DNS_NODATA)
				abort();
			for (i = 0; i < r.ntxt; i++)
				if (r.txt[i] == NULL)
					abort();
			for (i = 0; i < r.ncaa; i++)
				if (r.caa[i].tag == NULL ||
				    r.caa[i].value == NULL)
					abort();
		}
		va_dns_result_clear(&r);
	}
	return 0;
}
