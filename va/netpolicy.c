/*
 * netpolicy.c - which addresses the VA may contact.
 *
 * public mode: everything except private and special-purpose ranges
 * (IANA IPv4/IPv6 special-purpose registries), unless listed in "allow".
 * private mode (enterprise CA validating internal hosts): only "allow".
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "va/va_int.h"

static const char *const special_v4[] = {"0.0.0.0/8", "10.0.0.0/8",
    "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.31.196.0/24", "192.52.193.0/24",
    "192.88.99.0/24", "192.168.0.0/16", "192.175.48.0/24", "198.18.0.0/15",
    "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", NULL};
static const char *const special_v6[] = {"::/128", "::1/128", "::ffff:0:0/96",
    "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32",
    "2002::/16", "2620:4f:8000::/48", "3fff::/20", "5f00::/16", "fc00::/7",
    "fe80::/10", "ff00::/8", NULL};

int
va_cidr_parse(const char *s, struct va_cidr *out)
{
	char buf[INET6_ADDRSTRLEN + 8];
	char *slash, *end;
	long bits;

	if (s == NULL || strlen(s) >= sizeof(buf))
		return -1;
	memset(out, 0, sizeof(*out));
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash != NULL)
		*slash++ = '\0';
	if (inet_pton(AF_INET, buf, out->addr) == 1) {
		out->family = AF_INET;
		bits = 32;
	} else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
		out->family = AF_INET6;
		bits = 128;
	} else {
		return -1;
	}
	if (slash != NULL) {
		long max = bits;
		if (*slash == '\0')
			return -1;
		bits = strtol(slash, &end, 10);
		if (*end != '\0' || bits < 0 || bits > max)
			return -1;
	}
	out->bits = (int)bits;
	return 0;
}

int
va_cidr_contains(const struct va_cidr *c, int family, const uint8_t *addr)
{
	int full = c->bits / 8, rest = c->bits % 8;

	if (c->family != family)
		return 0;
	if (memcmp(c->addr, addr, (size_t)full) != 0)
		return 0;
	if (rest) {
		uint8_t mask = (uint8_t)(0xff << (8 - rest));
		if ((c->addr[full] & mask) != (addr[full] & mask))
			return 0;
	}
	return 1;
}

int
va_netpolicy_init(struct va_netpolicy *p, const char *mode, char *const *allow,
    size_t n, char *err, size_t errlen)
{
	size_t i;

	memset(p, 0, sizeof(*p));
	if (mode == NULL || strcmp(mode, "private") == 0) {
		p->public_mode = 0;
	} else if (strcmp(mode, "public") == 0) {
		p->public_mode = 1;
	} else {
		snprintf(err, errlen,
		    "network.mode: expected \"private\" or "
		    "\"public\", got \"%s\"",
		    mode);
		return -1;
	}
	p->allow = xcalloc(n ? n : 1, sizeof(*p->allow));
	for (i = 0; i < n; i++) {
		if (va_cidr_parse(allow[i], &p->allow[i]) != 0) {
			snprintf(err, errlen,
			    "network.allow: \"%s\" is not an "
			    "address or CIDR",
			    allow[i]);
			va_netpolicy_clear(p);
			return -1;
		}
	}
	p->n_allow = n;
	return 0;
}

void
va_netpolicy_clear(struct va_netpolicy *p)
{
	if (p == NULL)
		return;
	free(p->allow);
	p->allow = NULL;
	p->n_allow = 0;
}

static int
in_list(
    int family, const uint8_t *addr, const char *const *list, const char **hit)
{
	struct va_cidr c;
	size_t i;

	for (i = 0; list[i] != NULL; i++) {
		if (va_cidr_parse(list[i], &c) == 0 &&
		    va_cidr_contains(&c, family, addr)) {
			*hit = list[i];
			return 1;
		}
	}
	return 0;
}

int
va_netpolicy_allows(const struct va_netpolicy *p, int family,
    const uint8_t *addr, char *why, size_t whylen)
{
	const char *hit = NULL;
	char txt[INET6_ADDRSTRLEN];
	size_t i;

	for (i = 0; i < p->n_allow; i++)
		if (va_cidr_contains(&p->allow[i], family, addr))
			return 1;
	if (inet_ntop(family, addr, txt, sizeof(txt)) == NULL)
		snprintf(txt, sizeof(txt), "?");
	if (!p->public_mode) {
		snprintf(why, whylen,
		    "%s is outside the ranges this private "
		    "CA validates (network.allow)",
		    txt);
		return 0;
	}
	if (in_list(family, addr, family == AF_INET ? special_v4 : special_v6,
		&hit)) {
		snprintf(why, whylen,
		    "%s is a private or special-purpose "
		    "address (%s) that a public CA does not contact",
		    txt, hit);
		return 0;
	}
	return 1;
}
