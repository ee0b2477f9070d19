/*
 * url.c - the URL a client saw, and the bases of the URLs we hand out.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "wfe/wfe_int.h"

char *
wfe_url_authority(const char *url)
{
	const char *p, *end;

	if (url == NULL)
		return NULL;
	if (strncmp(url, "https://", 8) == 0)
		p = url + 8;
	else if (strncmp(url, "http://", 7) == 0)
		p = url + 7;
	else
		return NULL;
	end = strchr(p, '/');
	if (end == NULL)
		end = p + strlen(p);
	if (end == p)
		return NULL;
	return xstrndup(p, (size_t)(end - p));
}

int
wfe_url_check(const char *jws_url, const char *seen_base, const char *uri)
{
	size_t bl;

	if (jws_url == NULL || seen_base == NULL || uri == NULL)
		return 0;
	bl = strlen(seen_base);
	if (strncmp(jws_url, seen_base, bl) != 0)
		return 0;
	return strcmp(jws_url + bl, uri) == 0;
}

/* A Host value we are willing to echo back: no spaces, slashes or control
 * characters, bounded length. */
static int
host_sane(const char *h)
{
	size_t i, n;

	if (h == NULL)
		return 0;
	n = strlen(h);
	if (n == 0 || n > 255)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)h[i];
		if (c <= 0x20 || c >= 0x7f || c == '/' || c == '\\' ||
		    c == '?' || c == '#' || c == '@' || c == '"' || c == '<' ||
		    c == '>')
			return 0;
	}
	return 1;
}

void
wfe_url_bases(const struct wfe_config *cfg, const char *host, const char *proto,
    char **seen, char **base)
{
	const char *scheme;
	char *own = NULL;
	int allowed = 0;
	size_t i;

	if (proto != NULL && strcasecmp(proto, "http") == 0)
		scheme = "http";
	else if (proto != NULL && strcasecmp(proto, "https") == 0)
		scheme = "https";
	else
		scheme = cfg->tls_cert != NULL ? "https" : "http";
	if (!host_sane(host)) {
		*seen = xstrdup(cfg->base_url);
		*base = xstrdup(cfg->base_url);
		return;
	}
	*seen = xasprintf("%s://%s", scheme, host);
	own = wfe_url_authority(cfg->base_url);
	if (own != NULL && strcasecmp(own, host) == 0)
		allowed = 1;
	for (i = 0; !allowed && i < cfg->nhosts; i++)
		if (strcasecmp(cfg->hosts[i], host) == 0)
			allowed = 1;
	free(own);
	*base = allowed ? xstrdup(*seen) : xstrdup(cfg->base_url);
}

int
wfe_parse_id(const char *s, size_t len, int64_t *out)
{
	int64_t v = 0;
	size_t i;

	if (s == NULL || len == 0 || len > 16 || s[0] == '0')
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v <= 0 || v >= ((int64_t)1 << 53))
		return -1;
	*out = v;
	return 0;
}
