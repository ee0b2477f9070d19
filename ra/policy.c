/*
 * policy.c - identifier policy: private (allowed suffixes and IP ranges) or
 * public (names under a public suffix, no special-purpose IPs), block
 * lists, wildcard rules, per-profile identifier types and counts.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ra/ra.h"

/* ------------------------------------------------------------------ */
/* Public Suffix List                                                   */
/* ------------------------------------------------------------------ */

struct ra_psl {
	char **rules; /* sorted; "*.ck" wildcard, "!www.ck" exception */
	size_t n;
};

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Loads a PSL file; NULL with err. Caller frees with ra_psl_free. */
struct ra_psl *
ra_psl_load(const char *path, char *err, size_t errlen)
{
	FILE *f;
	char line[512];
	struct ra_psl *psl = NULL;
	size_t cap = 0;

	f = fopen(path, "r");
	if (f == NULL) {
		snprintf(err, errlen, "cannot open %s", path);
		return NULL;
	}
	psl = xcalloc(1, sizeof(*psl));
	while (fgets(line, sizeof(line), f) != NULL) {
		char *s = line, *e;
		if (strncmp(s, "//", 2) == 0)
			continue;
		for (e = s;
		     *e && *e != ' ' && *e != '\t' && *e != '\n' && *e != '\r';
		     e++)
			;
		*e = '\0';
		if (*s == '\0')
			continue;
		if (psl->n == cap) {
			cap = cap ? cap * 2 : 1024;
			psl->rules = xrealloc(psl->rules, cap * sizeof(char *));
		}
		psl->rules[psl->n++] = xstrdup(s);
	}
	fclose(f);
	if (psl->n == 0) {
		snprintf(err, errlen, "%s: no rules", path);
		ra_psl_free(psl);
		return NULL;
	}
	qsort(psl->rules, psl->n, sizeof(char *), cmp_str);
	return psl;
}

/* See ra.h / ra_int.h for ownership and return values. */
void
ra_psl_free(struct ra_psl *psl)
{
	size_t i;

	if (psl == NULL)
		return;
	for (i = 0; i < psl->n; i++)
		free(psl->rules[i]);
	free(psl->rules);
	free(psl);
}

static int
psl_has(const struct ra_psl *psl, const char *rule)
{
	return bsearch(&rule, psl->rules, psl->n, sizeof(char *), cmp_str) !=
	    NULL;
}

/*
 * Length of the public suffix at the end of name: the longest matching
 * rule (exceptions remove one label); 0 if even the TLD is unknown.
 */
size_t
ra_psl_suffix_len(const struct ra_psl *psl, const char *name)
{
	const char *p = name + strlen(name), *best = NULL;
	char buf[300];

	if (psl == NULL)
		return 0;
	/* Walk suffixes from the TLD towards the full name. */
	for (;;) {
		while (p > name && p[-1] != '.')
			p--;
		snprintf(buf, sizeof(buf), "!%s", p);
		if (psl_has(psl, buf)) {
			const char *dot = strchr(p, '.');
			best = dot ? dot + 1 : NULL;
			break;
		}
		if (psl_has(psl, p))
			best = p;
		else {
			const char *dot = strchr(p, '.');
			if (dot != NULL) {
				snprintf(buf, sizeof(buf), "*.%s", dot + 1);
				if (psl_has(psl, buf))
					best = p;
			}
		}
		if (p == name)
			break;
		p--; /* onto the dot */
	}
	return best ? strlen(best) : 0;
}

/* ------------------------------------------------------------------ */
/* IP ranges                                                            */
/* ------------------------------------------------------------------ */

/* See ra.h / ra_int.h for ownership and return values. */
int
ra_ip_range_parse(const char *s, struct ra_ip_range *out)
{
	char buf[64], *slash, *end;
	long pfx;

	if (strlen(s) >= sizeof(buf))
		return -1;
	memcpy(buf, s, strlen(s) + 1);
	slash = strchr(buf, '/');
	memset(out, 0, sizeof(*out));
	if (slash != NULL)
		*slash = '\0';
	if (inet_pton(AF_INET, buf, out->addr) == 1)
		out->len = 4;
	else if (inet_pton(AF_INET6, buf, out->addr) == 1)
		out->len = 16;
	else
		return -1;
	if (slash == NULL) {
		out->prefix = (int)out->len * 8;
		return 0;
	}
	pfx = strtol(slash + 1, &end, 10);
	if (*end != '\0' || end == slash + 1 || pfx < 0 ||
	    pfx > (long)out->len * 8)
		return -1;
	out->prefix = (int)pfx;
	return 0;
}

/* See ra.h / ra_int.h for ownership and return values. */
int
ra_ip_range_contains(
    const struct ra_ip_range *r, const uint8_t *addr, size_t len)
{
	int bits = r->prefix, i;

	if (len != r->len)
		return 0;
	for (i = 0; bits > 0; i++, bits -= 8) {
		uint8_t mask = bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));
		if ((addr[i] & mask) != (r->addr[i] & mask))
			return 0;
	}
	return 1;
}

/* IANA IPv4/IPv6 special-purpose address registries (not globally
 * reachable or reserved). */
static const char *const special_ranges[] = {
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.31.196.0/24",
    "192.52.193.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "192.175.48.0/24",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "255.255.255.255/32",
    "::/128",
    "::1/128",
    "::ffff:0:0/96",
    "64:ff9b::/96",
    "64:ff9b:1::/48",
    "100::/64",
    "2001::/23",
    "2001:db8::/32",
    "2002::/16",
    "2620:4f:8000::/48",
    "3fff::/20",
    "5f00::/16",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
};

/* See ra.h / ra_int.h for ownership and return values. */
int
ra_ip_special_purpose(const uint8_t *addr, size_t len)
{
	size_t i;
	struct ra_ip_range r;

	for (i = 0; i < sizeof(special_ranges) / sizeof(special_ranges[0]);
	     i++) {
		if (ra_ip_range_parse(special_ranges[i], &r) == 0 &&
		    ra_ip_range_contains(&r, addr, len))
			return 1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Identifiers                                                          */
/* ------------------------------------------------------------------ */

/* 1 if name equals suffix or ends with "." suffix. */
static int
under(const char *name, const char *suffix)
{
	size_t ln = strlen(name), ls = strlen(suffix);

	if (ln == ls)
		return strcmp(name, suffix) == 0;
	return ln > ls && name[ln - ls - 1] == '.' &&
	    strcmp(name + ln - ls, suffix) == 0;
}

/* A problem of type t about the identifier type/value (both borrowed),
 * its detail from fmt. */
static struct problem *__attribute__((format(printf, 4, 5)))
ident_prob(enum prob_type t, const char *type, const char *value,
    const char *fmt, ...)
{
	struct problem *p;
	char detail[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	p = problem_new(t, "%s", detail);
	p->identifier = json_pack("{s:s,s:s}", "type", type, "value", value);
	return p;
}

static int
check_dns(const struct ra_policy *pol, const char *raw, char **norm,
    struct problem **prob)
{
	char e[160];
	char *n = NULL;
	const char *base;
	size_t i;
	int ok;

	n = ident_dns_normalize(raw, 1, e, sizeof(e));
	if (n == NULL) {
		*prob = ident_prob(PROB_REJECTED_IDENTIFIER, "dns", raw,
		    "Invalid DNS name: %s", e);
		return -1;
	}
	base = strncmp(n, "*.", 2) == 0 ? n + 2 : n;
	if (base != n && !pol->allow_wildcards) {
		*prob = ident_prob(PROB_REJECTED_IDENTIFIER, "dns", n,
		    "Wildcard names are not allowed by this CA");
		goto fail;
	}
	if (strchr(base, '*') != NULL) {
		*prob = ident_prob(PROB_REJECTED_IDENTIFIER, "dns", n,
		    "A wildcard is only allowed as the whole leftmost label");
		goto fail;
	}
	/* RFC 7686: .onion names are not in the DNS; RFC 9799 §3.1.1: dns-01
	 * MUST NOT validate them, and http-01 / tls-alpn-01 need Tor. With
	 * policy.onion they are proved by onion-csr-01 (§3.2), v3 only. */
	if (under(base, "onion")) {
		if (!pol->onion) {
			*prob = ident_prob(PROB_REJECTED_IDENTIFIER, "dns", n,
			    "%s is a .onion name (RFC 7686); this CA does not "
			    "issue for .onion names (RFC 9799)",
			    n);
			goto fail;
		}
		if (ident_onion_parse(base, NULL, NULL, e, sizeof(e)) != 0) {
			*prob = ident_prob(PROB_REJECTED_IDENTIFIER, "dns", n,
			    "Invalid .onion name: %s", e);
			goto fail;
		}
	}
	for (i = 0; i < pol->n_blocked_names; i++) {
		if (under(base, pol->blocked_names[i])) {
			*prob = ident_prob(PROB_REJECTED_IDENTIFIER, "dns", n,
			    "The name %s is blocked by the CA's policy", n);
			goto fail;
		}
	}
	if (pol->onion && under(base, "onion")) {
		/* a v3 address is self-authenticating: not subject to the
		 * suffix list or the PSL (RFC 9799 §2, §6.1) */
	} else if (pol->any_name) {
		/* test modes, as Pebble: any syntactically valid name (the
		 * syntax and the blocked names were checked above) */
	} else if (pol->public_mode) {
		size_t sl = ra_psl_suffix_len(pol->psl, base);
		if (sl == 0) {
			*prob = ident_prob(PROB_REJECTED_IDENTIFIER, "dns", n,
			    "%s does not end in a public suffix", n);
			goto fail;
		}
		if (sl >= strlen(base)) {
			*prob = ident_prob(PROB_REJECTED_IDENTIFIER, "dns", n,
			    "%s is a public suffix", n);
			goto fail;
		}
		/* A wildcard directly above a public suffix covers names of
		 * many registrants. */
		if (base != n &&
		    ra_psl_suffix_len(pol->psl, base) == strlen(base)) {
			*prob = ident_prob(PROB_REJECTED_IDENTIFIER, "dns", n,
			    "Wildcard over a public suffix: %s", n);
			goto fail;
		}
	} else {
		ok = 0;
		for (i = 0; i < pol->n_dns_suffixes; i++) {
			/* A name must be strictly below the suffix. */
			if (under(base, pol->dns_suffixes[i]) &&
			    strcmp(base, pol->dns_suffixes[i]) != 0)
				ok = 1;
		}
		if (!ok) {
			*prob = ident_prob(PROB_REJECTED_IDENTIFIER, "dns", n,
			    "%s is not under a domain this CA issues for", n);
			goto fail;
		}
	}
	*norm = n;
	return 0;
fail:
	free(n);
	return -1;
}

static int
check_ip(const struct ra_policy *pol, const char *raw, char **norm,
    struct problem **prob)
{
	char e[160];
	uint8_t addr[16];
	size_t alen = 0, i;
	char *n;
	int ok;

	n = ident_ip_normalize(raw, addr, &alen, e, sizeof(e));
	if (n == NULL) {
		*prob = ident_prob(PROB_REJECTED_IDENTIFIER, "ip", raw,
		    "Invalid IP address: %s", e);
		return -1;
	}
	if (strcmp(n, raw) != 0) {
		*prob = ident_prob(PROB_MALFORMED, "ip", raw,
		    "IP address is not in canonical form (expected %s)", n);
		free(n);
		return -1;
	}
	if (pol->public_mode) {
		ok = !ra_ip_special_purpose(addr, alen);
	} else {
		ok = 0;
		for (i = 0; i < pol->n_ip_ranges; i++)
			if (ra_ip_range_contains(
				&pol->ip_ranges[i], addr, alen))
				ok = 1;
	}
	if (!ok) {
		*prob = ident_prob(PROB_REJECTED_IDENTIFIER, "ip", n,
		    "The CA does not issue for the IP address %s", n);
		free(n);
		return -1;
	}
	*norm = n;
	return 0;
}

/*
 * RFC 8823 §2 email identifier: a valid address (ident_email_normalize)
 * given in its normal form, whose domain policy.email.domains lists.
 */
static int
check_email(const struct ra_policy *pol, const char *raw, char **norm,
    struct problem **prob)
{
	char e[160], *n;
	const char *dom;
	size_t i;

	n = ident_email_normalize(raw, e, sizeof(e));
	if (n == NULL) {
		*prob = ident_prob(PROB_REJECTED_IDENTIFIER, "email", raw,
		    "Invalid email address: %s", e);
		return -1;
	}
	if (strcmp(n, raw) != 0) {
		*prob = ident_prob(PROB_MALFORMED, "email", raw,
		    "Email address is not in normal form (expected %s)", n);
		free(n);
		return -1;
	}
	dom = strrchr(n, '@') + 1;
	for (i = 0; i < pol->n_email_domains; i++)
		if (strcmp(dom, pol->email_domains[i]) == 0) {
			*norm = n;
			return 0;
		}
	*prob = ident_prob(PROB_REJECTED_IDENTIFIER, "email", n,
	    "The CA does not issue for addresses in the mail domain %s", dom);
	free(n);
	return -1;
}

/*
 * draft-ietf-acme-device-attest §3.1 / §4.1: "The Server MUST verify that
 * identifier values in newOrder requests conform to the ...-value
 * production rule and MUST reject requests containing non-conforming
 * values with a "malformed" error." The value is kept byte for byte.
 */
static int
check_device(enum ident_type t, const char *ts, const char *vs, char **norm,
    struct problem **prob)
{
	char e[160];

	if (ident_device_check(t, vs, e, sizeof(e)) != 0) {
		*prob = ident_prob(PROB_MALFORMED, ts, vs,
		    "Invalid %s identifier: %s", ts, e);
		return -1;
	}
	*norm = xstrdup(vs);
	return 0;
}

/*
 * RFC 9891 §3: a bundleEID is decoded and normalised; a bad
 * percent-encoding or scheme-specific syntax is "malformed", a scheme not
 * handled (or an EID that is not a Node ID) "rejectedIdentifier".
 */
static int
check_bundle_eid(
    const char *ts, const char *vs, char **norm, struct problem **prob)
{
	char e[200];
	int rc = ident_bundle_eid_normalize(vs, norm, e, sizeof(e));

	if (rc == 0)
		return 0;
	*prob = ident_prob(rc == -1 ? PROB_MALFORMED : PROB_REJECTED_IDENTIFIER,
	    ts, vs, "Invalid %s identifier: %s", ts, e);
	return -1;
}

/*
 * RFC 9448 §3: the value is "the base64url encoding of the TNAuthList
 * ASN.1 object using DER encoding rules"; a value that is not (core
 * tnauth.c: strict DER, RFC 8226 §9) is malformed. Kept byte for byte: the
 * certificate carries exactly this DER.
 */
static int
check_tnauthlist(const char *vs, char **norm, struct problem **prob)
{
	char e[200];

	if (ident_tnauthlist_check(vs, NULL, NULL, e, sizeof(e)) != 0) {
		*prob = ident_prob(PROB_MALFORMED, "TNAuthList", vs,
		    "Invalid TNAuthList identifier: %s", e);
		return -1;
	}
	*norm = xstrdup(vs);
	return 0;
}

/*
 * RFC 9444's identifier members present with the right type
 * ("ancestorDomain" string in newOrder, "subdomainAuthAllowed" boolean in
 * newAuthz); their meaning is the RA's orders.c / subdomain.c business.
 */
static size_t
rfc9444_members(const json_t *ident)
{
	return (size_t)json_is_string(json_object_get(ident, "ancestorDomain")) +
	    (size_t)json_is_boolean(
		json_object_get(ident, "subdomainAuthAllowed"));
}

/* Whether a challenge type pol enables can validate identifiers of type t. */
static int
any_challenge_for(const struct ra_policy *pol, enum ident_type t)
{
	char err[160];
	int c;

	for (c = 0; c < CHAL__MAX; c++)
		if ((pol->challenges & CHAL_BIT(c)) &&
		    chal_check(chal_info((enum chal_type)c), t, 0, err,
			sizeof(err)) == 0)
			return 1;
	return 0;
}

/*
 * Checks one identifier (borrowed). 0 and *norm (malloc'd), *type; or -1
 * and *prob with its identifier set.
 */
int
ra_policy_check_ident(const struct ra_policy *pol, const struct profile *prof,
    const json_t *ident, enum ident_type *type, char **norm,
    struct problem **prob)
{
	const char *ts, *vs;
	json_t *t, *v;

	*norm = NULL;
	if (!json_is_object(ident) ||
	    !json_is_string(t = json_object_get(ident, "type")) ||
	    !json_is_string(v = json_object_get(ident, "value")) ||
	    json_object_size(ident) != 2 + rfc9444_members(ident)) {
		*prob = problem_new(PROB_MALFORMED,
		    "An identifier must be an object with exactly \"type\" "
		    "and \"value\" strings (and RFC 9444's string "
		    "\"ancestorDomain\" or boolean \"subdomainAuthAllowed\")");
		return -1;
	}
	ts = json_string_value(t);
	vs = json_string_value(v);
	if (strlen(vs) > 255) {
		*prob = problem_new(
		    PROB_REJECTED_IDENTIFIER, "Identifier value too long");
		return -1;
	}
	if (ident_type_parse(ts, type) != 0) {
		*prob = ident_prob(PROB_UNSUPPORTED_IDENTIFIER, ts, vs,
		    "Identifier type \"%s\" is not supported", ts);
		return -1;
	}
	if (prof != NULL && !profile_allows_ident(prof, *type)) {
		if (*type == IDENT_TNAUTHLIST)
			*prob = ident_prob(PROB_REJECTED_IDENTIFIER, ts, vs,
			    "Profile %s does not allow TNAuthList identifiers "
			    "(use a STIR profile, RFC 8226)",
			    prof->name);
		else
			*prob = ident_prob(PROB_REJECTED_IDENTIFIER, ts, vs,
			    "Profile does not allow identifiers of type %s",
			    ts);
		return -1;
	}
	if (!any_challenge_for(pol, *type)) {
		*prob = ident_prob(PROB_UNSUPPORTED_IDENTIFIER, ts, vs,
		    "No challenge type enabled on this server (policy."
		    "challenges) can validate identifiers of type %s", ts);
		return -1;
	}
	if (ident_is_device(*type))
		return check_device(*type, ts, vs, norm, prob);
	if (*type == IDENT_BUNDLE_EID)
		return check_bundle_eid(ts, vs, norm, prob);
	if (*type == IDENT_TNAUTHLIST)
		return check_tnauthlist(vs, norm, prob);
	if (*type == IDENT_DNS)
		return check_dns(pol, vs, norm, prob);
	if (*type == IDENT_EMAIL)
		return check_email(pol, vs, norm, prob);
	if (*type == IDENT_REMOTE_ATTESTATION)
		return ra_rats_check_hint(vs, norm, prob);
	return check_ip(pol, vs, norm, prob);
}

static int
cmp_ident(const void *a, const void *b)
{
	json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	int c = strcmp(json_string_value(json_object_get(x, "type")),
	    json_string_value(json_object_get(y, "type")));

	if (c != 0)
		return c;
	return strcmp(json_string_value(json_object_get(x, "value")),
	    json_string_value(json_object_get(y, "value")));
}

/* 1 if every subproblem of p has type t. */
static int
all_subs_are(const struct problem *p, enum prob_type pt)
{
	const char *want = prob_type_name(pt);
	json_t *v;
	size_t i;

	json_array_foreach(p->subproblems, i, v)
	{
		const char *t = json_string_value(json_object_get(v, "type"));
		if (t == NULL || strcmp(t, want) != 0)
			return 0;
	}
	return json_array_size(p->subproblems) > 0;
}

/*
 * Adds the rejection sub (owned) of one identifier to *top (made on the
 * first). nbad counts the identifiers rejected so far. Returns 1 when sub
 * is a structural error with no identifier to blame: it replaced *top and
 * the check stops; else 0.
 */
static int
add_rejection(struct problem **top, struct problem *sub, size_t *nbad)
{
	struct problem *t = *top;

	if (t == NULL)
		t = *top = problem_new(PROB_REJECTED_IDENTIFIER,
		    "Cannot issue for the identifier(s)");
	if (sub->identifier == NULL) {
		problem_free(t);
		*top = sub;
		return 1;
	}
	if ((*nbad)++ == 0 && t->detail != NULL) {
		free(t->detail);
		t->detail = xasprintf("Cannot issue for "
				      "\"%s\": %s",
		    json_string_value(
			json_object_get(sub->identifier, "value")),
		    sub->detail ? sub->detail : "rejected");
	} else if (*nbad == 2) {
		free(t->detail);
		t->detail = xstrdup("Cannot issue for "
				    "several identifiers (see subproblems)");
	}
	json_array_append_new(
	    t->subproblems ? t->subproblems : (t->subproblems = json_array()),
	    problem_to_rpc_json(sub));
	problem_free(sub);
	return 0;
}

/* A new array of list's identifiers sorted, each once. */
static json_t *
sorted_unique(const json_t *list)
{
	size_t i, n = json_array_size(list);
	json_t **arr = xcalloc(n, sizeof(json_t *)), *res = json_array();

	for (i = 0; i < n; i++)
		arr[i] = json_array_get(list, i);
	qsort(arr, n, sizeof(json_t *), cmp_ident);
	for (i = 0; i < n; i++) {
		if (i > 0 && cmp_ident(&arr[i], &arr[i - 1]) == 0)
			continue;
		json_array_append(res, arr[i]);
	}
	free(arr);
	return res;
}

/*
 * Checks an order's identifiers (borrowed). 0 and *out (new sorted, deduped
 * array), or -1 and *prob (rejectedIdentifier with subproblems).
 */
int
ra_policy_check_idents(const struct ra_policy *pol, const struct profile *prof,
    const json_t *idents, json_t **out, struct problem **prob)
{
	json_t *list = NULL, *res = NULL, *v;
	struct problem *top = NULL, *sub = NULL;
	size_t i, n, nbad = 0, k;
	enum ident_type type;
	char *norm = NULL;
	int rc = -1;

	*out = NULL;
	if (!json_is_array(idents) || json_array_size(idents) == 0) {
		*prob = problem_new(PROB_MALFORMED,
		    "\"identifiers\" must be a non-empty array");
		goto out;
	}
	n = json_array_size(idents);
	if (n > 1000) {
		*prob = problem_new(
		    PROB_REJECTED_IDENTIFIER, "Too many identifiers (%zu)", n);
		goto out;
	}
	list = json_array();
	json_array_foreach(idents, i, v)
	{
		if (ra_policy_check_ident(pol, prof, v, &type, &norm, &sub) !=
		    0) {
			if (add_rejection(&top, sub, &nbad) != 0)
				break;
			continue;
		}
		json_array_append_new(list,
		    json_pack("{s:s,s:s}", "type", ident_type_name(type),
			"value", norm));
		free(norm);
		norm = NULL;
	}
	if (top != NULL) {
		/* RFC 8555 §6.7: unsupportedIdentifier is the type for
		 * "an identifier of an unsupported type"; the top level says
		 * so too when that is every identifier's problem. */
		if (top->subproblems != NULL &&
		    all_subs_are(top, PROB_UNSUPPORTED_IDENTIFIER))
			top->type = PROB_UNSUPPORTED_IDENTIFIER;
		/* draft-ietf-acme-device-attest §3.1: a non-conforming
		 * device identifier is "malformed" */
		if (top->subproblems != NULL &&
		    all_subs_are(top, PROB_MALFORMED))
			top->type = PROB_MALFORMED;
		*prob = top;
		top = NULL;
		goto out;
	}
	res = sorted_unique(list);
	k = json_array_size(res);
	if (prof != NULL && prof->max_identifiers > 0 &&
	    (int64_t)k > prof->max_identifiers) {
		*prob = problem_new(PROB_REJECTED_IDENTIFIER,
		    "Order has %zu "
		    "identifiers; profile %s allows at most %lld",
		    k, prof->name, (long long)prof->max_identifiers);
		goto out;
	}
	*out = res;
	res = NULL;
	rc = 0;
out:
	json_decref(list);
	json_decref(res);
	problem_free(top);
	return rc;
}

/* Registered domain for rate limits (malloc'd). */
char *
ra_policy_registered_domain(const struct ra_policy *pol, const char *name)
{
	const char *base = strncmp(name, "*.", 2) == 0 ? name + 2 : name;
	const char *p;
	size_t sl = 0, i, best = 0;

	if (strchr(base, ':') != NULL ||
	    strspn(base, "0123456789.") == strlen(base))
		return xstrdup(base); /* an IP */
	if (pol->public_mode)
		sl = ra_psl_suffix_len(pol->psl, base);
	else {
		for (i = 0; i < pol->n_dns_suffixes; i++) {
			size_t l = strlen(pol->dns_suffixes[i]);
			if (under(base, pol->dns_suffixes[i]) && l > best)
				best = l;
		}
		sl = best;
	}
	if (sl == 0) {
		/* last label as the "suffix" */
		p = strrchr(base, '.');
		sl = p ? strlen(p + 1) : 0;
	}
	if (sl >= strlen(base))
		return xstrdup(base);
	p = base + strlen(base) - sl - 1; /* the dot before the suffix */
	while (p > base && p[-1] != '.')
		p--;
	return xstrdup(p);
}

/* ------------------------------------------------------------------ */
/* RFC 9444 subdomain authorizations                                    */
/* ------------------------------------------------------------------ */

/* See ra.h. */
int
ra_policy_ancestor(const struct ra_policy *pol, const struct profile *prof,
    const char *name, const char *ancestor, char **norm, struct problem **prob)
{
	char *low = NULL;
	size_t nl = strlen(name), al, i;
	json_t *id = NULL;
	enum ident_type type;
	struct problem *p = NULL;
	int rc = -1;

	*norm = NULL;
	al = strlen(ancestor);
	low = xstrdup(ancestor);
	for (i = 0; i < al; i++)
		if (low[i] >= 'A' && low[i] <= 'Z')
			low[i] = (char)(low[i] - 'A' + 'a');
	/* §2: "contains that subdomain and has less labels"; whole labels */
	if (al == 0 || al + 1 >= nl || name[nl - al - 1] != '.' ||
	    strcmp(name + nl - al, low) != 0 || strchr(low, '*') != NULL) {
		*prob = problem_new(PROB_MALFORMED,
		    "ancestorDomain \"%.255s\" is not an ancestor domain of "
		    "\"%s\" (RFC 9444 §2: whole labels, never the name itself)",
		    ancestor, name);
		goto out;
	}
	rc = 0;
	if (!pol->subdomain_auth)
		goto out;
	id = json_pack("{s:s,s:s}", "type", "dns", "value", low);
	if (ra_policy_check_ident(pol, prof, id, &type, norm, &p) != 0)
		goto out; /* at or above a boundary, or blocked: not here */
	rc = 1;
out:
	problem_free(p);
	json_decref(id);
	free(low);
	return rc;
}

/* See ra.h. */
json_t *
ra_policy_ancestors(
    const struct ra_policy *pol, const struct profile *prof, const char *name)
{
	json_t *out = json_array();
	const char *p = name;
	struct problem *prob = NULL;
	char *norm = NULL;

	if (!pol->subdomain_auth)
		return out;
	while ((p = strchr(p, '.')) != NULL) {
		p++;
		if (ra_policy_ancestor(pol, prof, name, p, &norm, &prob) == 1)
			json_array_append_new(out, json_string(norm));
		free(norm);
		norm = NULL;
		problem_free(prob);
		prob = NULL;
	}
	return out;
}

/* ------------------------------------------------------------------ */
/* dns-persist-01 hashed account URIs                                   */
/* ------------------------------------------------------------------ */

/* See ra.h. */
char *
ra_persist_account_uri(const char *prefix, const char *domain,
    const char *thumbprint, const char *account_url)
{
	size_t dl = strlen(domain), tl = strlen(thumbprint),
	       ul = strlen(account_url);
	uint8_t *buf, d[32];
	char *b64, *out;

	if (dl == 0 || dl > 255)
		return NULL;
	/* H(length_of_domain || domain_name || key || account_URL) */
	buf = xmalloc(1 + dl + tl + ul);
	buf[0] = (uint8_t)dl;
	memcpy(buf + 1, domain, dl);
	memcpy(buf + 1 + dl, thumbprint, tl);
	memcpy(buf + 1 + dl + tl, account_url, ul);
	sha256(buf, 1 + dl + tl + ul, d);
	free(buf);
	b64 = b64url_encode(d, sizeof(d));
	out = xasprintf("%ssha-256/%s", prefix, b64);
	free(b64);
	return out;
}
