/*
 * dnsmsg.c - extracting A/AAAA/TXT/CAA records from a DNS response,
 * following CNAME chains inside the message. Names are decompressed with
 * c-ares' ares_expand_name; everything else is bounds-checked here.
 */
#include <arpa/nameser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "va/va_int.h"

#define MAX_RRS 256
#define MAX_CHAIN 8

static const char *const status_names[VA_DNS__MAX] = {
    "ok",
    "no records",
    "NXDOMAIN",
    "SERVFAIL",
    "REFUSED",
    "query timed out",
    "error",
};

const char *
va_dns_status_name(enum va_dns_status s)
{
	return (unsigned)s < VA_DNS__MAX ? status_names[s] : "?";
}

void
va_dns_result_clear(struct va_dns_result *r)
{
	size_t i;

	if (r == NULL)
		return;
	free(r->qname);
	free(r->final_name);
	free(r->families);
	free(r->addrs);
	for (i = 0; i < r->ntxt; i++)
		free(r->txt[i]);
	free(r->txt);
	for (i = 0; i < r->ncaa; i++) {
		free(r->caa[i].tag);
		free(r->caa[i].value);
	}
	free(r->caa);
	free(r->cname_target);
	memset(r, 0, sizeof(*r));
}

struct rr {
	char *owner;
	int type;
	const unsigned char *rdata;
	size_t rdlen;
	char *target; /* CNAME */
};

static int
name_eq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la && a[la - 1] == '.')
		la--;
	if (lb && b[lb - 1] == '.')
		lb--;
	return la == lb && strncasecmp(a, b, la) == 0;
}

static int
add_record(struct va_dns_result *res, const struct rr *rr,
    const unsigned char *buf, int len)
{
	size_t off;

	(void)buf;
	(void)len;
	switch (rr->type) {
	case ns_t_a:
	case ns_t_aaaa:
		if (rr->rdlen != (rr->type == ns_t_a ? 4u : 16u))
			return -1;
		res->families = xrealloc(
		    res->families, (res->naddrs + 1) * sizeof(*res->families));
		res->addrs = xrealloc(
		    res->addrs, (res->naddrs + 1) * sizeof(*res->addrs));
		res->families[res->naddrs] =
		    rr->type == ns_t_a ? AF_INET : AF_INET6;
		memset(res->addrs[res->naddrs], 0, 16);
		memcpy(res->addrs[res->naddrs], rr->rdata, rr->rdlen);
		res->naddrs++;
		return 0;
	case ns_t_txt: {
		/* One TXT RR = its character-strings concatenated. */
		char *s = xmalloc(rr->rdlen + 1);
		size_t n = 0;
		for (off = 0; off < rr->rdlen;) {
			size_t l = rr->rdata[off++];
			if (off + l > rr->rdlen) {
				free(s);
				return -1;
			}
			memcpy(s + n, rr->rdata + off, l);
			n += l;
			off += l;
		}
		s[n] = '\0';
		if (strlen(s) != n) { /* embedded NUL: cannot match */
			free(s);
			return 0;
		}
		res->txt =
		    xrealloc(res->txt, (res->ntxt + 1) * sizeof(*res->txt));
		res->txt[res->ntxt++] = s;
		return 0;
	}
	case 257: { /* CAA */
		size_t taglen;
		struct va_caa_rr *c;
		if (rr->rdlen < 2)
			return -1;
		taglen = rr->rdata[1];
		if (taglen == 0 || 2 + taglen > rr->rdlen)
			return -1;
		res->caa =
		    xrealloc(res->caa, (res->ncaa + 1) * sizeof(*res->caa));
		c = &res->caa[res->ncaa++];
		c->flags = rr->rdata[0];
		c->tag = xstrndup((const char *)rr->rdata + 2, taglen);
		c->value = xstrndup((const char *)rr->rdata + 2 + taglen,
		    rr->rdlen - 2 - taglen);
		return 0;
	}
	default:
		return 0;
	}
}

/*
 * Skips the question section of buf and reads up to MAX_RRS answer records
 * into rrs (*nrr of them; owner and target malloc'd, rdata borrowed from
 * buf, freed by the caller even on failure). 0, or -1 when malformed.
 */
static int
parse_rrs(const unsigned char *buf, int len, struct rr *rrs, size_t *nrr)
{
	const unsigned char *p;
	unsigned qd, an, k;
	long enclen;

	qd = (unsigned)(buf[4] << 8 | buf[5]);
	an = (unsigned)(buf[6] << 8 | buf[7]);
	p = buf + 12;
	for (k = 0; k < qd; k++) {
		char *n = NULL;
		if (ares_expand_name(p, buf, len, &n, &enclen) != ARES_SUCCESS)
			return -1;
		ares_free_string(n);
		p += enclen;
		if (p + 4 > buf + len)
			return -1;
		p += 4;
	}
	for (k = 0; k < an && *nrr < MAX_RRS; k++) {
		struct rr *r = &rrs[*nrr];
		char *n = NULL;
		if (ares_expand_name(p, buf, len, &n, &enclen) != ARES_SUCCESS)
			return -1;
		r->owner = xstrdup(n);
		ares_free_string(n);
		(*nrr)++;
		p += enclen;
		if (p + 10 > buf + len)
			return -1;
		r->type = p[0] << 8 | p[1];
		r->rdlen = (size_t)(p[8] << 8 | p[9]);
		p += 10;
		if (r->rdlen > (size_t)(buf + len - p))
			return -1;
		r->rdata = p;
		if (r->type == ns_t_cname) {
			if (ares_expand_name(p, buf, len, &n, &enclen) !=
			    ARES_SUCCESS)
				return -1;
			r->target = xstrdup(n);
			ares_free_string(n);
		}
		p += r->rdlen;
	}
	return 0;
}

int
va_dns_msg_extract(const unsigned char *buf, int len, const char *qname,
    int qtype, struct va_dns_result *res)
{
	struct rr rrs[MAX_RRS];
	size_t nrr = 0, i;
	char *cur = NULL;
	int rc = -1, hops, found;

	memset(rrs, 0, sizeof(rrs));
	if (len < 12) {
		snprintf(res->msg, sizeof(res->msg), "DNS response too short");
		return -1;
	}
	if (parse_rrs(buf, len, rrs, &nrr) != 0)
		goto bad;
	cur = xstrdup(qname);
	for (hops = 0; hops <= MAX_CHAIN; hops++) {
		const char *next = NULL;
		found = 0;
		for (i = 0; i < nrr; i++) {
			if (rrs[i].type == qtype &&
			    name_eq(rrs[i].owner, cur)) {
				if (add_record(res, &rrs[i], buf, len) != 0)
					goto bad;
				found = 1;
			}
		}
		if (found)
			break;
		for (i = 0; i < nrr; i++)
			if (rrs[i].type == ns_t_cname &&
			    name_eq(rrs[i].owner, cur))
				next = rrs[i].target;
		if (next == NULL)
			break;
		free(cur);
		cur = xstrdup(next);
	}
	if (hops > MAX_CHAIN) {
		snprintf(res->msg, sizeof(res->msg),
		    "CNAME chain longer than "
		    "%d",
		    MAX_CHAIN);
		goto out;
	}
	free(res->final_name);
	res->final_name = xstrdup(cur);
	if (res->naddrs || res->ntxt || res->ncaa) {
		res->status = VA_DNS_OK;
	} else {
		res->status = VA_DNS_NODATA;
		if (!name_eq(cur, qname))
			res->cname_target = xstrdup(cur);
	}
	rc = 0;
	goto out;
bad:
	snprintf(res->msg, sizeof(res->msg), "malformed DNS response");
out:
	for (i = 0; i < nrr; i++) {
		free(rrs[i].owner);
		free(rrs[i].target);
	}
	free(cur);
	return rc;
}
