/*
 * fuzz_util.h - helpers shared by the libFuzzer targets (header only: each
 * target is built from its own .c file).
 */
#ifndef ANVIL_FUZZ_UTIL_H
#define ANVIL_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Aborts unless p (n bytes; NULL is fine) lies inside [data, data + size). */
static inline void
fuzz_inside(const uint8_t *data, size_t size, const uint8_t *p, size_t n)
{
	if (p == NULL)
		return;
	if (p < data || n > size || p > data + size - n)
		abort();
}

#endif
