/* bench.h - the --bench mode of anvil-jose-verify. */
#ifndef ANVIL_JOSE_VERIFY_BENCH_H
#define ANVIL_JOSE_VERIFY_BENCH_H

/*
 * Times jws_parse + jws_verify of a typical newAccount body and jws_verify
 * alone, for ES256 (P-256) and RS256 (RSA-2048), each for about `seconds`
 * seconds of CPU time, and prints one JSON object per line with ops per
 * CPU-second. 0 or -1.
 */
int jose_bench_run(double seconds);

#endif
