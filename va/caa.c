/*
 * caa.c - CAA (RFC 8659) with the RFC 8657 accounturi and
 * validationmethods parameters: climb from the name towards the root, the
 * first non-empty RRset decides (CNAMEs are followed by the resolver).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "va/va_int.h"

#define CAA_TYPE 257

static int
known_tag(const char *t)
{
	static const char *const known[] = {"issue", "issuewild", "iodef",
	    "issuemail", "issuevmc", "contactemail", "contactphone", NULL};
	size_t i;

	for (i = 0; known[i] != NULL; i++)
		if (strcasecmp(t, known[i]) == 0)
			return 1;
	return 0;
}

static const char *
skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/*
 * One "; tag=value" parameter of a CAA issue value at *pp (advanced past
 * it): tag and val filled (raw: the value's text in value, rawlen long).
 * 1 when one was read, 0 at the end, -1 with why when malformed.
 */
static int
next_param(const char **pp, const char *value, char tag[64], char val[1024],
    const char **raw, size_t *rawlen, char *why, size_t whylen)
{
	const char *p = *pp, *s;
	size_t tl, vl;

	if (*p == '\0')
		return 0;
	if (*p != ';') {
		snprintf(why, whylen, "malformed CAA value \"%.100s\"", value);
		return -1;
	}
	p = skip_ws(p + 1);
	if (*p == '\0')
		return 0;
	s = p;
	while (isalnum((unsigned char)*p))
		p++;
	tl = (size_t)(p - s);
	if (tl == 0 || tl >= 64 || *skip_ws(p) != '=') {
		snprintf(why, whylen, "malformed CAA parameter in \"%.100s\"",
		    value);
		return -1;
	}
	memcpy(tag, s, tl);
	tag[tl] = '\0';
	p = skip_ws(skip_ws(p) + 1);
	s = p;
	while (
	    (unsigned char)*p >= 0x21 && (unsigned char)*p <= 0x7e && *p != ';')
		p++;
	vl = (size_t)(p - s);
	if (vl >= 1024) {
		snprintf(why, whylen, "CAA parameter value too long");
		return -1;
	}
	memcpy(val, s, vl);
	val[vl] = '\0';
	*raw = s;
	*rawlen = vl;
	*pp = skip_ws(p);
	return 1;
}

/* validationmethods=val (comma list, cut by strtok) includes method. */
static int
methods_include(char *val, const char *method)
{
	char *save = NULL, *m;

	for (m = strtok_r(val, ",", &save); m != NULL;
	     m = strtok_r(NULL, ",", &save))
		if (method != NULL && strcmp(m, method) == 0)
			return 1;
	return 0;
}

/*
 * Does one issue/issuewild value authorize us? 1 yes, 0 no (reason in
 * why when it is informative).
 */
static int
value_permits(const char *value, char *const *ids, size_t nids,
    const char *account_uri, const char *method, char *why, size_t whylen)
{
	const char *p = skip_ws(value), *s, *raw;
	char issuer[256], tag[64], val[1024];
	size_t n, i, vl;
	int matched = 0, seen_acct = 0, seen_meth = 0, r;

	s = p;
	while (isalnum((unsigned char)*p) || *p == '-' || *p == '.')
		p++;
	n = (size_t)(p - s);
	if (n == 0 || n >= sizeof(issuer))
		return 0; /* ";" alone or empty: nobody may issue */
	memcpy(issuer, s, n);
	issuer[n] = '\0';
	for (i = 0; i < nids; i++)
		if (strcasecmp(issuer, ids[i]) == 0)
			matched = 1;
	if (!matched)
		return 0;
	p = skip_ws(p);
	while (
	    (r = next_param(&p, value, tag, val, &raw, &vl, why, whylen)) > 0) {
		if (strcmp(tag, "accounturi") == 0) {
			if (seen_acct++) {
				snprintf(why, whylen,
				    "more than one accounturi "
				    "parameter: the record cannot be "
				    "satisfied");
				return 0;
			}
			if (account_uri == NULL ||
			    strcmp(val, account_uri) != 0) {
				snprintf(why, whylen,
				    "accounturi=%s does not "
				    "match the requesting account %s",
				    val, account_uri ? account_uri : "(none)");
				return 0;
			}
		} else if (strcmp(tag, "validationmethods") == 0) {
			if (seen_meth++) {
				snprintf(why, whylen,
				    "more than one "
				    "validationmethods parameter");
				return 0;
			}
			if (!methods_include(val, method)) {
				/* val was cut by strtok: show the raw one */
				snprintf(why, whylen,
				    "validationmethods=%.*s "
				    "does not include %s",
				    (int)vl, raw, method ? method : "(none)");
				return 0;
			}
		}
		/* other parameters are ignored */
	}
	return r == 0;
}

int
va_caa_evaluate(const struct va_caa_rr *rrs, size_t n, int wildcard,
    char *const *ids, size_t nids, const char *account_uri, const char *method,
    char *why, size_t whylen)
{
	const char *want = "issue";
	size_t i, relevant = 0;
	char reason[300] = "";

	for (i = 0; i < n; i++) {
		if ((rrs[i].flags & 0x80 || rrs[i].flags & 0x01) &&
		    !known_tag(rrs[i].tag)) {
			snprintf(why, whylen,
			    "a CAA record has the unknown "
			    "tag \"%.40s\" marked critical",
			    rrs[i].tag);
			return 0;
		}
	}
	if (wildcard) {
		for (i = 0; i < n; i++)
			if (strcasecmp(rrs[i].tag, "issuewild") == 0)
				want = "issuewild";
	}
	for (i = 0; i < n; i++) {
		if (strcasecmp(rrs[i].tag, want) != 0)
			continue;
		relevant++;
		if (value_permits(rrs[i].value, ids, nids, account_uri, method,
			reason, sizeof(reason)))
			return 1;
	}
	if (relevant == 0)
		return 1; /* e.g. only iodef, or only issuewild for a
			     non-wildcard name */
	snprintf(why, whylen, "no \"%s\" record authorizes %s%s%s", want,
	    nids ? ids[0] : "this CA", reason[0] ? ": " : "", reason);
	return 0;
}

static void caa_query(struct va_job *j);

static void
caa_cb(void *arg, struct va_dns_result *res)
{
	struct va_job *j = arg;
	const struct va_config *cfg = j->va->cfg;
	char why[512];
	const char *dot;

	if (j->finished)
		goto out;
	switch (res->status) {
	case VA_DNS_OK:
		if (res->ncaa > 0) {
			if (va_caa_evaluate(res->caa, res->ncaa, j->wildcard,
				cfg->caa_identities, cfg->n_caa_identities,
				j->account_uri, j->caa_method, why,
				sizeof(why)))
				va_job_finish(j, NULL);
			else
				va_job_finish(j,
				    problem_new(PROB_CAA,
					"CAA "
					"record for %s prevents issuance%s%s: "
					"%s",
					res->qname,
					strcmp(res->qname, j->ident) ? " of "
								     : "",
					strcmp(res->qname, j->ident) ? j->ident
								     : "",
					why));
			break;
		}
		/* FALLTHROUGH */
	case VA_DNS_NODATA:
	case VA_DNS_NXDOMAIN:
		dot = strchr(j->caa_name, '.');
		if (dot == NULL || dot[1] == '\0') {
			va_job_finish(j, NULL); /* no CAA anywhere */
			break;
		}
		{
			char *parent = xstrdup(dot + 1);
			free(j->caa_name);
			j->caa_name = parent;
		}
		caa_query(j);
		break;
	default:
		va_job_finish(j,
		    problem_new(PROB_DNS,
			"While processing CAA "
			"for %s: DNS problem: %s looking up CAA for %s",
			j->ident,
			res->status == VA_DNS_ERROR
			    ? res->msg
			    : va_dns_status_name(res->status),
			res->qname));
		break;
	}
out:
	va_job_unref(j);
}

static void
caa_query(struct va_job *j)
{
	va_job_ref(j);
	free(j->dns_host);
	j->dns_host = xstrdup(j->caa_name);
	va_dns_query(j->va, j->caa_name, CAA_TYPE, caa_cb, j);
}

void
va_caa_start(struct va_job *j)
{
	if (j->itype != IDENT_DNS) {
		va_job_finish(j, NULL);
		return;
	}
	j->stage = "caa";
	free(j->caa_name);
	j->caa_name = xstrdup(j->ident);
	caa_query(j);
}

void
va_job_validated(struct va_job *j)
{
	if (j->check_caa && j->itype == IDENT_DNS) {
		va_caa_start(j);
		return;
	}
	va_job_finish(j, NULL);
}
