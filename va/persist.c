/*
 * persist.c - dns-persist-01 (draft-ietf-acme-dns-persist): a persistent
 * TXT record at _validation-persist.<name> in RFC 8659 issue-value syntax,
 * "<issuer-domain-name>; accounturi=<hashed account URI>[; policy=wildcard]
 * [; persistUntil=<unix seconds>]". The record's issuer must be one of the
 * CA's issuer domain names and its accounturi one of the hashed URIs the
 * RA computed for the requesting account (current and prior keys, the
 * domain and the "*" forms). Queried through the same resolver as dns-01;
 * CAA follows as for every challenge.
 */
#include <arpa/nameser.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "va/va_int.h"

#define PERSIST_MAX_NAMES 10

/* See va_int.h. */
int
va_persist_check_params(const json_t *persist, struct problem **prob)
{
	const json_t *names = json_object_get(persist, "issuer_domain_names");
	const json_t *uris = json_object_get(persist, "account_uris"), *v;
	size_t i;

	if (!json_is_object(persist) || !json_is_array(names) ||
	    json_array_size(names) == 0 ||
	    json_array_size(names) > PERSIST_MAX_NAMES ||
	    !json_is_array(uris) || json_array_size(uris) == 0 ||
	    !json_is_string(json_object_get(persist, "account_hash_prefix"))) {
		*prob = problem_new(PROB_MALFORMED,
		    "dns-persist-01 needs persist {issuer_domain_names: 1 to "
		    "10 names, account_uris: [..], account_hash_prefix}");
		return -1;
	}
	json_array_foreach(names, i, v)
	{
		if (!json_is_string(v))
			goto bad;
	}
	json_array_foreach(uris, i, v)
	{
		if (!json_is_string(v))
			goto bad;
	}
	return 0;
bad:
	*prob = problem_new(PROB_MALFORMED,
	    "persist: names and account URIs must be strings");
	return -1;
}

/* Trims RFC 5234 WSP (space, tab) at both ends in place; returns s. */
static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		*--e = '\0';
	return s;
}

/* RFC 8659 §4.2 tag: (ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT)). */
static int
tag_ok(const char *t)
{
	size_t i, n = strlen(t);

	if (n == 0 || !isalnum((unsigned char)t[0]) ||
	    !isalnum((unsigned char)t[n - 1]))
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)t[i]) && t[i] != '-')
			return 0;
	return 1;
}

/* RFC 8659 §4.2 value: *(%x21-3A / %x3C-7E). */
static int
value_ok(const char *v)
{
	for (; *v; v++)
		if ((unsigned char)*v < 0x21 || (unsigned char)*v > 0x7e ||
		    *v == ';')
			return 0;
	return 1;
}

static int
in_list(const json_t *list, const char *s, int nocase)
{
	size_t i;
	json_t *v;

	json_array_foreach(list, i, v)
	{
		const char *e = json_string_value(v);
		if (e != NULL &&
		    (nocase ? strcasecmp(e, s) == 0 : strcmp(e, s) == 0))
			return 1;
	}
	return 0;
}

/* The parameters of one issue-value that the check uses. */
struct persist_params {
	const char *acct; /* accounturi, borrowed from the record */
	int64_t until;    /* persistUntil (seen_until) */
	int seen_acct, seen_until, seen_pol;
	int wild; /* policy=wildcard */
};

/* persistUntil's value: a base-10 UNIX timestamp. */
static int
persist_parse_until(const char *val, int64_t *until, struct problem **prob)
{
	char *end = NULL;
	long long t;

	t = (*val >= '0' && *val <= '9') ? strtoll(val, &end, 10) : -1;
	if (t < 0 || end == NULL || *end != '\0' || strlen(val) > 18) {
		/* §4.1 item 5: "the CA MUST treat the record
		 * as malformed and reject it" */
		*prob = problem_new(PROB_MALFORMED,
		    "persistUntil=%.40s is not a base-10 UNIX "
		    "timestamp",
		    val);
		return -1;
	}
	*until = t;
	return 0;
}

/* One tag=val parameter into pp; -1 with *prob set on a repeated or bad
 * known parameter (txt is the whole record, for the message). */
static int
persist_param(const char *txt, const char *tag, const char *val,
    struct persist_params *pp, struct problem **prob)
{
	int dup = 0;

	if (strcasecmp(tag, "accounturi") == 0) {
		dup = pp->seen_acct++;
		pp->acct = val; /* compared later, exactly (§4.1) */
	} else if (strcasecmp(tag, "persistUntil") == 0) {
		if (pp->seen_until++)
			dup = 1;
		else if (persist_parse_until(val, &pp->until, prob) != 0)
			return -1;
	} else if (strcasecmp(tag, "policy") == 0) {
		dup = pp->seen_pol++;
		/* §4.1 item 4: case-insensitive; anything else is
		 * as if absent */
		pp->wild = strcasecmp(val, "wildcard") == 0;
	}
	/* other tags: ignored (§4.1 item 1) */
	if (dup) {
		*prob = problem_new(PROB_UNAUTHORIZED,
		    "_validation-persist record \"%.200s\" repeats a parameter",
		    txt);
		return -1;
	}
	return 0;
}

/* The ";"-separated parameters in rest (modified) into pp. */
static int
persist_parse_params(const char *txt, char *rest, struct persist_params *pp,
    struct problem **prob)
{
	char *param, *save = NULL, *eq, *tag, *val;

	for (param = rest ? strtok_r(rest, ";", &save) : NULL; param != NULL;
	     param = strtok_r(NULL, ";", &save)) {
		param = trim(param);
		if (*param == '\0')
			continue;
		if ((eq = strchr(param, '=')) == NULL) {
			*prob = problem_new(PROB_UNAUTHORIZED,
			    "_validation-persist record \"%.200s\" is not an "
			    "RFC 8659 issue-value (parameter without \"=\")",
			    txt);
			return -1;
		}
		*eq = '\0';
		tag = trim(param);
		val = trim(eq + 1);
		if (!tag_ok(tag) || !value_ok(val)) {
			*prob = problem_new(PROB_UNAUTHORIZED,
			    "_validation-persist record \"%.200s\" is not an "
			    "RFC 8659 issue-value (bad tag or value)",
			    txt);
			return -1;
		}
		if (persist_param(txt, tag, val, pp, prob) != 0)
			return -1;
	}
	return 0;
}

/* The accounturi names the requesting account with an accepted hash. */
static int
persist_check_account(const char *issuer, const struct persist_params *pp,
    const json_t *persist, struct problem **prob)
{
	const char *prefix;
	size_t pl;

	if (pp->acct == NULL) {
		*prob = problem_new(PROB_UNAUTHORIZED,
		    "_validation-persist record for %s has no accounturi "
		    "(draft-ietf-acme-dns-persist §4.1: it is mandatory)",
		    issuer);
		return -1;
	}
	prefix =
	    json_string_value(json_object_get(persist, "account_hash_prefix"));
	pl = strlen(prefix);
	if (strncmp(pp->acct, prefix, pl) == 0 &&
	    strncmp(pp->acct + pl, "sha-256/", 8) != 0) {
		/* §4.1: "A CA MUST reject with a malformed error any record
		 * whose <hash-alg> token identifies a hash algorithm the CA no
		 * longer accepts" (Anvil accepts sha-256 only) */
		*prob = problem_new(PROB_MALFORMED,
		    "accounturi %.200s uses a hash algorithm this CA does not "
		    "accept (only sha-256)",
		    pp->acct);
		return -1;
	}
	if (!in_list(json_object_get(persist, "account_uris"), pp->acct, 0)) {
		*prob = problem_new(PROB_UNAUTHORIZED,
		    "accounturi %.200s does not identify the requesting "
		    "account (any of its keys, this name or \"*\")",
		    pp->acct);
		return -1;
	}
	return 0;
}

/* The record is still in force at now_s and allows a wildcard if one is
 * asked for. */
static int
persist_check_scope(const struct persist_params *pp, int wildcard,
    int64_t now_s, struct problem **prob)
{
	if (pp->seen_until && pp->until < now_s) {
		/* §4.1 item 5: "After timestamp T, a CA MUST NOT consider the
		 * record valid for new validation attempts." */
		char when[32];
		time_t tt = (time_t)pp->until;
		struct tm tm;

		gmtime_r(&tt, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		*prob = problem_new(PROB_UNAUTHORIZED,
		    "_validation-persist record expired: persistUntil=%lld "
		    "(%s) has passed",
		    (long long)pp->until, when);
		return -1;
	}
	if (wildcard && !pp->wild) {
		*prob = problem_new(PROB_UNAUTHORIZED,
		    "a wildcard authorization needs policy=wildcard in the "
		    "_validation-persist record (draft-ietf-acme-dns-persist "
		    "§5)");
		return -1;
	}
	return 0;
}

/* See va_int.h. */
int
va_persist_eval(const char *txt, const json_t *persist, int wildcard,
    int64_t now_s, int64_t *until, struct problem **prob)
{
	char *buf = xstrdup(txt), *issuer, *rest;
	struct persist_params pp;
	int rc = -1;

	memset(&pp, 0, sizeof(pp));
	*until = 0;
	*prob = NULL;
	rest = strchr(buf, ';');
	if (rest != NULL)
		*rest++ = '\0';
	issuer = trim(buf);
	/* §4.3.2 step 2: records of other issuers are ignored */
	if (*issuer == '\0' ||
	    !in_list(
		json_object_get(persist, "issuer_domain_names"), issuer, 1)) {
		rc = 1;
		goto out;
	}
	if (persist_parse_params(txt, rest, &pp, prob) != 0)
		goto out;
	*until = pp.until;
	if (persist_check_account(issuer, &pp, persist, prob) != 0 ||
	    persist_check_scope(&pp, wildcard, now_s, prob) != 0)
		goto out;
	rc = 0;
out:
	free(buf);
	return rc;
}

static void
persist_cb(void *arg, struct va_dns_result *res)
{
	struct va_job *j = arg;
	struct problem *first = NULL, *p = NULL;
	int64_t until = 0, now_s = time_now_ms() / 1000;
	json_t *hop;
	size_t i;
	int r;

	if (j->finished)
		goto out;
	if (res->status != VA_DNS_OK) {
		va_dns01_txt_failure(j, res);
		goto out;
	}
	for (i = 0; i < res->ntxt; i++) {
		r = va_persist_eval(
		    res->txt[i], j->persist, j->wildcard, now_s, &until, &p);
		if (r == 0) {
			hop = json_array_get(j->record,
			    json_array_size(j->record) - 1);
			if (until > 0)
				json_object_set_new(
				    hop, "persist_until", json_integer(until));
			va_job_validated(j);
			goto out;
		}
		if (r < 0 && first == NULL) {
			first = p;
			p = NULL;
		}
		problem_free(p);
		p = NULL;
	}
	if (first == NULL)
		first = problem_new(PROB_UNAUTHORIZED,
		    "No _validation-persist TXT record for this CA's issuer "
		    "domain names at %s",
		    res->qname);
	va_job_finish(j, first);
	first = NULL;
out:
	problem_free(first);
	va_job_unref(j);
}

void
va_dnspersist01_start(struct va_job *j)
{
	char *name = xasprintf("_validation-persist.%s", j->ident);

	va_dns01_txt_query(j, name, persist_cb);
	free(name);
}
