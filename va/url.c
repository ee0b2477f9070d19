/*
 * url.c - the small URL subset http-01 needs: http(s)://host[:port]/path.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "va/va_int.h"

#define MAX_PATH 2000

void
va_url_clear(struct va_url *u)
{
	if (u == NULL)
		return;
	free(u->host);
	free(u->path);
	memset(u, 0, sizeof(*u));
}

static int
set_host(struct va_url *u, const char *h, size_t n, int bracketed, char *err,
    size_t errlen)
{
	char buf[300], nerr[128];
	char txt[INET6_ADDRSTRLEN];
	char *name;

	if (n == 0 || n >= sizeof(buf)) {
		snprintf(err, errlen, "empty or too long host");
		return -1;
	}
	memcpy(buf, h, n);
	buf[n] = '\0';
	if (bracketed) {
		if (inet_pton(AF_INET6, buf, u->ip) != 1) {
			snprintf(err, errlen, "bad IPv6 literal \"%s\"", buf);
			return -1;
		}
		u->family = AF_INET6;
	} else if (inet_pton(AF_INET, buf, u->ip) == 1) {
		u->family = AF_INET;
	} else {
		name = ident_dns_normalize(buf, 0, nerr, sizeof(nerr));
		if (name == NULL) {
			snprintf(err, errlen, "invalid host name \"%.64s\": %s",
			    buf, nerr);
			return -1;
		}
		u->host = name;
		return 0;
	}
	u->host_is_ip = 1;
	if (inet_ntop(u->family, u->ip, txt, sizeof(txt)) == NULL) {
		snprintf(err, errlen, "bad IP literal");
		return -1;
	}
	u->host = xstrdup(txt);
	return 0;
}

/* 1 if s has only printable ASCII (no space, control or 8-bit byte). */
static int
printable_ascii(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return 0;
	return 1;
}

/* The port digits in [s, end) into *port (1..65535). 0, or -1 with err. */
static int
parse_port(const char *s, const char *end, int *port, char *err, size_t errlen)
{
	const char *p;
	long v = 0;

	if (s == end || end - s > 5) {
		snprintf(err, errlen, "bad port in URL");
		return -1;
	}
	for (p = s; p < end; p++) {
		if (!isdigit((unsigned char)*p)) {
			snprintf(err, errlen, "bad port in URL");
			return -1;
		}
		v = v * 10 + (*p - '0');
	}
	if (v < 1 || v > 65535) {
		snprintf(err, errlen, "port %ld out of range", v);
		return -1;
	}
	*port = (int)v;
	return 0;
}

int
va_url_parse(const char *s, const struct va_url *base, struct va_url *out,
    char *err, size_t errlen)
{
	const char *p, *auth, *auth_end, *hs, *he, *port_s = NULL;
	size_t plen;
	int bracketed = 0;

	memset(out, 0, sizeof(*out));
	if (!printable_ascii(s)) {
		snprintf(err, errlen,
		    "URL contains a space, control or non-ASCII character");
		return -1;
	}
	if (s[0] == '/' && s[1] != '/') {
		if (base == NULL) {
			snprintf(err, errlen, "relative URL without a base");
			return -1;
		}
		out->https = base->https;
		out->host = xstrdup(base->host);
		out->host_is_ip = base->host_is_ip;
		out->family = base->family;
		memcpy(out->ip, base->ip, sizeof(out->ip));
		out->port = base->port;
		p = s;
		goto path;
	}
	if (strncasecmp(s, "http://", 7) == 0) {
		auth = s + 7;
	} else if (strncasecmp(s, "https://", 8) == 0) {
		out->https = 1;
		auth = s + 8;
	} else if (s[0] == '/' && s[1] == '/' && base != NULL) {
		out->https = base->https;
		auth = s + 2;
	} else if (strstr(s, "://") == NULL) {
		snprintf(err, errlen,
		    "relative redirect target \"%.100s\" is "
		    "not supported: use an absolute URL or path",
		    s);
		return -1;
	} else {
		const char *colon = strchr(s, ':');
		snprintf(err, errlen,
		    "only http and https URLs are allowed "
		    "(scheme \"%.*s\")",
		    (int)(colon - s > 16 ? 16 : colon - s), s);
		return -1;
	}
	auth_end = auth + strcspn(auth, "/?#");
	if (memchr(auth, '@', (size_t)(auth_end - auth)) != NULL) {
		snprintf(err, errlen, "URL with user information");
		return -1;
	}
	if (auth < auth_end && *auth == '[') {
		hs = auth + 1;
		he = memchr(hs, ']', (size_t)(auth_end - hs));
		if (he == NULL) {
			snprintf(err, errlen, "unterminated IPv6 literal");
			return -1;
		}
		bracketed = 1;
		if (he + 1 < auth_end) {
			if (he[1] != ':') {
				snprintf(
				    err, errlen, "junk after IPv6 literal");
				return -1;
			}
			port_s = he + 2;
		}
	} else {
		hs = auth;
		he = memchr(auth, ':', (size_t)(auth_end - auth));
		if (he != NULL)
			port_s = he + 1;
		else
			he = auth_end;
	}
	if (set_host(out, hs, (size_t)(he - hs), bracketed, err, errlen) != 0)
		goto fail;
	out->port = out->https ? 443 : 80;
	if (port_s != NULL &&
	    parse_port(port_s, auth_end, &out->port, err, errlen) != 0)
		goto fail;
	p = auth_end;
path:
	plen = strcspn(p, "#");
	if (plen > MAX_PATH) {
		snprintf(
		    err, errlen, "URL path longer than %d bytes", MAX_PATH);
		goto fail;
	}
	if (plen == 0 || p[0] != '/')
		out->path = xasprintf("/%.*s", (int)plen, p);
	else
		out->path = xstrndup(p, plen);
	return 0;
fail:
	va_url_clear(out);
	return -1;
}

char *
va_url_string(const struct va_url *u)
{
	int defport = u->https ? 443 : 80;
	int v6 = u->host_is_ip && u->family == AF_INET6;
	char portbuf[16] = "";

	if (u->port != defport)
		snprintf(portbuf, sizeof(portbuf), ":%d", u->port);
	return xasprintf("%s://%s%s%s%s%s", u->https ? "https" : "http",
	    v6 ? "[" : "", u->host, v6 ? "]" : "", portbuf,
	    u->path ? u->path : "/");
}
