/*
 * bench.h - anvil-ca --bench (see bench.c).
 */
#ifndef ANVIL_CA_BENCH_H
#define ANVIL_CA_BENCH_H

#include "ca/ca.h"

/*
 * Measures ca_issue (1 and `threads` threads), ca_ocsp and
 * ca_generate_crl per key type for `seconds` each, with a store that
 * accepts everything; prints one JSON line per key type. Returns the exit
 * status.
 */
int ca_bench_main(const char *issuers_path, const char *profiles_path,
    double seconds, int threads);

#endif
