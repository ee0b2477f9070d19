/*
 * dns01.c - dns-01 (RFC 8555 §8.4): a TXT record at _acme-challenge.<name>
 * equal to base64url(SHA-256(key authorization)); any of several records
 * may match. A wildcard authorization validates its base name.
 * dns-account-01 (draft-ietf-acme-dns-account-label) is the same check at
 * <label>._acme-challenge.<name>, the label derived from the account URL,
 * through the same resolver (and the same CAA step afterwards).
 */
#include <arpa/nameser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "va/va_int.h"

/*
 * For dns-account-01 a missing record names the account URL the label was
 * derived from (the draft §3.4 SHOULD); "" for dns-01. Static or borrowed.
 */
static const char *
label_hint(const struct va_job *j, char *buf, size_t len)
{
	if (j->chal != CHAL_DNSACCOUNT01 || j->account_uri == NULL)
		return "";
	snprintf(buf, len,
	    " (dns-account-01 label derived from the account URL %.300s)",
	    j->account_uri);
	return buf;
}

/* See va_int.h. */
void
va_dns01_txt_failure(struct va_job *j, struct va_dns_result *res)
{
	const char *name = res->qname;
	char hint[400];
	struct problem *p;

	switch (res->status) {
	case VA_DNS_NODATA:
		p = problem_new(PROB_UNAUTHORIZED, "No TXT record found at %s%s",
		    name, label_hint(j, hint, sizeof(hint)));
		break;
	case VA_DNS_NXDOMAIN:
		p = problem_new(PROB_DNS,
		    "DNS problem: NXDOMAIN looking up TXT for %s - check that a "
		    "DNS record exists for this domain%s",
		    name, label_hint(j, hint, sizeof(hint)));
		break;
	case VA_DNS_SERVFAIL:
		p = problem_new(PROB_DNS,
		    "DNS problem: SERVFAIL looking up TXT for %s - the domain's "
		    "nameservers may be malfunctioning",
		    name);
		break;
	case VA_DNS_TIMEOUT:
		p = problem_new(PROB_DNS,
		    "DNS problem: query timed out looking up TXT for %s", name);
		break;
	default:
		p = problem_new(PROB_DNS, "DNS problem: looking up TXT for %s: %s",
		    name, res->msg);
		break;
	}
	va_job_finish(j, p);
}

static void
txt_cb(void *arg, struct va_dns_result *res)
{
	struct va_job *j = arg;
	char *want = NULL, found[400];
	const char *name = res->qname;
	size_t i, o = 0;

	if (j->finished)
		goto out;
	switch (res->status) {
	case VA_DNS_OK:
		want = va_keyauth_digest(j->keyauth);
		for (i = 0; i < res->ntxt; i++) {
			if (strcmp(res->txt[i], want) == 0) {
				va_job_validated(j);
				goto out;
			}
		}
		found[0] = '\0';
		for (i = 0; i < res->ntxt && i < 3 && o + 4 < sizeof(found);
		     i++) {
			o += (size_t)snprintf(found + o, sizeof(found) - o,
			    "%s\"%.80s\"", i ? ", " : "", res->txt[i]);
			if (o >= sizeof(found))
				o = sizeof(found) - 1;
		}
		va_job_finish(j,
		    problem_new(PROB_INCORRECT_RESPONSE,
			"Incorrect TXT record%s %s%s found at %s (expected "
			"\"%s\", "
			"base64url of the SHA-256 of the key authorization)",
			res->ntxt > 1 ? "s" : "", found,
			res->ntxt > 3 ? " ..." : "", name, want));
		break;
	default:
		va_dns01_txt_failure(j, res);
		break;
	}
out:
	free(want);
	va_job_unref(j);
}

/* See va_int.h. */
void
va_dns01_txt_query(struct va_job *j, const char *name, va_dns_cb cb)
{
	json_array_append_new(j->record,
	    json_pack("{s:s,s:s}", "hostname", j->ident, "txt_name", name));
	j->stage = "dns";
	free(j->dns_host);
	j->dns_host = xstrdup(name);
	va_job_ref(j);
	va_dns_query(j->va, name, ns_t_txt, cb, j);
}

void
va_dns01_start(struct va_job *j)
{
	char *name = xasprintf("_acme-challenge.%s", j->ident);

	va_dns01_txt_query(j, name, txt_cb);
	free(name);
}

/* See va.h. */
char *
va_dns_account_label(const char *account_url)
{
	uint8_t d[32];
	char *b32, *label;

	sha256((const uint8_t *)account_url, strlen(account_url), d);
	b32 = base32_encode_lower(d, 10);
	label = xasprintf("_%s", b32);
	free(b32);
	return label;
}

void
va_dnsaccount01_start(struct va_job *j)
{
	char *label = va_dns_account_label(j->account_uri),
	     *name = xasprintf("%s._acme-challenge.%s", label, j->ident);

	va_dns01_txt_query(j, name, txt_cb);
	free(label);
	free(name);
}
