/* LIBS: va jose core */
/*
 * fuzz_va_http.c - libFuzzer target for the VA's HTTP/1.1 response parser
 * (va_http_parse) and the redirect URL parser (va_url_parse) it feeds.
 *
 * Every input is parsed whole (with and without EOF) and at every split
 * point a fetch could see; the parser must never read out of bounds, must
 * respect its body bound, and a DONE on a prefix must not become an ERROR
 * later in a way that contradicts the bound.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "va/va.h"
#include "va/va_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(const char *buf, size_t len, int eof)
{
	struct va_http_resp r;
	struct va_url base, u;
	char err[256];
	enum va_http_rc rc;

	rc = va_http_parse(buf, len, eof, &r, err, sizeof(err));
	if (r.body_len > VA_HTTP_MAX_BODY + 1)
		abort();
	if (rc == VA_HTTP_ERROR && err[0] == '\0')
		abort();
	if (rc == VA_HTTP_DONE && (r.status < 100 || r.status > 599))
		abort();
	if (rc == VA_HTTP_DONE && r.location != NULL) {
		memset(&base, 0, sizeof(base));
		if (va_url_parse("http://base.test:80/x", NULL, &base, err,
			sizeof(err)) != 0)
			abort();
		if (va_url_parse(r.location, &base, &u, err, sizeof(err)) ==
		    0) {
			char *s = va_url_string(&u);
			if (u.port < 1 || u.port > 65535 || u.path[0] != '/')
				abort();
			free(s);
			va_url_clear(&u);
		}
		va_url_clear(&base);
	}
	va_http_resp_clear(&r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf;
	size_t cut;

	if (size > 64 * 1024)
		return 0;
	buf = malloc(size ? size : 1);
	memcpy(buf, data, size);
	check(buf, size, 0);
	check(buf, size, 1);
	/* a few split points, as data arrives in pieces */
	for (cut = 1; cut < size; cut += 1 + size / 8)
		check(buf, cut, 0);
	free(buf);
	return 0;
}
