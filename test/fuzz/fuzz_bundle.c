/* LIBS: va core */
/*
 * fuzz_bundle.c - libFuzzer target for the BPv7 bundle decoder of
 * bp-nodeid-00 (bp_decode_acme, libcbor streaming under strict bounds), the
 * BPSec Abstract Security Block parser and BIB-HMAC-SHA2 check of every BIB
 * block (bp_bib_decode, bp_bib_verify: RFC 9172/9173), and the TCPCLv4
 * message parser: hostile bytes from a DTN node must not crash the VA,
 * read outside the input or leave pointers outside it. The whole input is
 * also parsed as an ASB on its own.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "test/fuzz/fuzz_util.h"
#include "va/bpv7.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every BIB block of b (decoded from data) parsed and checked. */
static void
fuzz_bibs(const uint8_t *data, size_t size, const struct bp_acme *b)
{
	static const uint8_t key[32] = {1};
	struct bp_bib bib;
	char err[200];
	size_t i, k;

	for (i = 0; i < b->n_blocks && i < BP_MAX_BLOCKS; i++) {
		fuzz_inside(data, size, b->blocks[i].data, b->blocks[i].data_len);
		if (b->blocks[i].type != BP_BLOCK_BIB ||
		    bp_bib_decode(b->blocks[i].data, b->blocks[i].data_len, &bib,
			err, sizeof(err)) != 0)
			continue;
		if (bib.n_targets == 0 || bib.n_targets > BIB_MAX_TARGETS ||
		    memchr(bib.source, '\0', BP_MAX_EID) == NULL)
			abort();
		for (k = 0; k < bib.n_targets; k++)
			fuzz_inside(data, size, bib.hmac[k], bib.hmac_len[k]);
		(void)bp_bib_verify(
		    b, &b->blocks[i], &bib, key, sizeof(key), err, sizeof(err));
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bp_acme b;
	struct bp_bib bib;
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
		fuzz_inside(data, size, b.primary, b.primary_len);
		fuzz_bibs(data, size, &b);
	}
	if (bp_bib_decode(data, size, &bib, err, sizeof(err)) == 0 &&
	    (bib.n_targets > BIB_MAX_TARGETS ||
		memchr(bib.source, '\0', BP_MAX_EID) == NULL))
		abort();
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
