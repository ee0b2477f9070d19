/* LIBS: wfe jose rpc core */
/*
 * fuzz_wfe_input.c - the WFE's parsers of untrusted request pieces: nonce
 * redemption, request-target routing, ids, Host handling and the url check.
 * Input: arbitrary bytes, split at the first NUL into two strings.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wfe/wfe_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct wfe_nonce *ns;
	struct wfe_config cfg;
	char *a, *b, *seen = NULL, *base = NULL, *auth;
	const char *tail = NULL;
	size_t alen;
	int64_t id;
	char *n;

	if (ns == NULL)
		ns = wfe_nonce_new("a1", NULL, 0, 1024, 60000);
	a = xstrndup((const char *)data, size);
	alen = strlen(a);
	b = alen < size
	    ? xstrndup((const char *)data + alen + 1, size - alen - 1)
	    : xstrdup("");

	(void)wfe_nonce_redeem(ns, a, time_now_ms());
	n = wfe_nonce_issue(ns, time_now_ms());
	if (wfe_nonce_redeem(ns, n, time_now_ms()) != WFE_NONCE_OK)
		abort(); /* a fresh nonce must always redeem once */
	free(n);
	(void)wfe_route_find(a, &tail);
	(void)wfe_parse_id(a, alen, &id);
	auth = wfe_url_authority(a);
	free(auth);
	memset(&cfg, 0, sizeof(cfg));
	cfg.base_url = "https://localhost:4431";
	cfg.tls_cert = "x";
	wfe_url_bases(&cfg, a, b, &seen, &base);
	if (wfe_url_check(b, seen, a) && strncmp(b, seen, strlen(seen)) != 0)
		abort();
	free(seen);
	free(base);
	free(a);
	free(b);
	return 0;
}
