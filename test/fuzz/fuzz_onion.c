/* LIBS: core */
/*
 * fuzz_onion.c - libFuzzer target over the .onion v3 address parser
 * (ident_onion_parse in core/core.h, RFC 9799 §2): the input, as a name,
 * must either be refused with a reason or yield a key whose address,
 * rebuilt with base32, is the label the parser accepted. Nothing may
 * crash, leak or read out of bounds.
 *
 *   scripts/fuzz.sh 60 fuzz_onion
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *name, err[200], *b32;
	const char *base = NULL;
	uint8_t key[32];

	if (size > 300)
		return 0;
	name = malloc(size + 1);
	if (name == NULL)
		return 0;
	memcpy(name, data, size);
	name[size] = '\0';
	err[0] = '\0';
	if (ident_onion_parse(name, key, &base, err, sizeof(err)) == 0) {
		/* the accepted label starts with the key's base32 */
		b32 = base32_encode_lower(key, 32);
		if (base == NULL || strncmp(base, b32, 51) != 0 ||
		    strcmp(base + 56, ".onion") != 0)
			abort();
		free(b32);
	} else if (err[0] == '\0') {
		abort();
	}
	free(name);
	return 0;
}
