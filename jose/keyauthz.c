/* keyauthz.c - key authorizations for http-01, dns-01, tls-alpn-01. */
#include <stdlib.h>
#include <string.h>

#include "jose/jose_int.h"

char *
jose_key_authorization(const char *token, const char *thumbprint)
{
	return xasprintf("%s.%s", token, thumbprint);
}

void
jose_key_authz_digest(const char *key_authz, uint8_t out[32])
{
	sha256((const uint8_t *)key_authz, strlen(key_authz), out);
}

char *
jose_key_authz_digest_b64(const char *key_authz)
{
	uint8_t md[32];

	jose_key_authz_digest(key_authz, md);
	return b64url_encode(md, sizeof(md));
}
