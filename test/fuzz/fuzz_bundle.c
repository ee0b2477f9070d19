/* LIBS: va core */
/*
 * fuzz_bundle.c - libFuzzer target for the BPv7 bundle decoder of
 * bp-nodeid-00 (bp_decode_acme, libcbor streaming under strict bounds) and
 * the TCPCLv4 message parser: hostile bytes from a DTN node must not crash
 * the VA, read outside the input or leave pointers outside it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "test/fuzz/fuzz_util.h"
#include "va/bpv7.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bp_acme b;
	struct tcpcl_msg m;
	char err[160];
	size_t off = 0;
	long n;

	if (bp_decode_acme(data, size, &b, err, sizeof(err)) == 0) {
		if (b.n_algs > BP_MAX_ALGS ||
		    memchr(b.src, '\0', BP_MAX_EID) == NULL ||
		    memchr(b.dest, '\0', BP_MAX_EID) == NULL)
			abort();
		fuzz_inside(data, size, b.id_chal, b.id_chal_len);
		fuzz_inside(data, size, b.token, b.token_len);
		fuzz_inside(data, size, b.digest, b.digest_len);
	}
	while (off < size &&
	    (n = tcpcl_msg_parse(data + off, size - off, BP_MAX_BUNDLE, &m, err,
		 sizeof(err))) > 0) {
		if ((size_t)n > size - off)
			abort();
		fuzz_inside(data + off, (size_t)n, m.data, m.data_len);
		off += (size_t)n;
	}
	return 0;
}
