/* LIBS: core */
/*
 * fuzz_tnauthlist.c - libFuzzer target for the RFC 8226 TNAuthList DER
 * parser (core/tnauth.c): hostile DER must not crash, read outside the
 * input, or yield an entry that breaks the module's constraints.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tnauth_list l;
	char err[200], buf[80], *v;
	size_t i, n;

	if (tnauth_parse(data, size, &l, err, sizeof(err)) != 0) {
		if (err[0] == '\0')
			abort();
		return 0;
	}
	if (l.n == 0 || l.n > TNAUTH_MAX_ENTRIES)
		abort();
	for (i = 0; i < l.n; i++) {
		n = strlen(l.e[i].text);
		if (n == 0 || n >= sizeof(l.e[i].text))
			abort();
		if (l.e[i].kind != TNAUTH_SPC &&
		    (n > 15 || strspn(l.e[i].text, "0123456789#*") != n))
			abort();
		if (l.e[i].kind == TNAUTH_RANGE && l.e[i].count < 2)
			abort();
	}
	(void)tnauth_summary(&l, buf, sizeof(buf));
	/* what parses as DER is an identifier once base64url-encoded */
	v = b64url_encode(data, size);
	if (ident_tnauthlist_check(v, NULL, NULL, err, sizeof(err)) != 0)
		abort();
	free(v);
	return 0;
}
