/*
 * config.c - ra.json: strict parsing with defaults (docs/config/ra.md).
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ra/ra.h"
#include "ra/ra_int.h"

static const char *const rl_names[RA_RL__MAX] = {
    [RA_RL_NEW_ACCOUNTS_PER_IP] = "new_accounts_per_ip",
    [RA_RL_NEW_ORDERS_PER_ACCOUNT] = "new_orders_per_account",
    [RA_RL_FAILED_VALIDATIONS] = "failed_validations_per_identifier",
    [RA_RL_CERTS_PER_DOMAIN] = "certificates_per_domain",
    [RA_RL_DUPLICATE_CERTS] = "duplicate_certificates",
    [RA_RL_STAR_RENEWALS] = "star_renewals_per_account",
};

/* See ra.h / ra_int.h for ownership and return values. */
const char *
ra_rl_name(enum ra_rl which)
{
	return which < RA_RL__MAX ? rl_names[which] : "?";
}

/* What jspec fills; converted into struct ra_config afterwards. */
struct raw {
	struct config_common common;
	json_t *sa, *va, *ca;
	char *profiles_file;
	char *account_uri_prefix;
	char *terms_of_service;
	int eab_required;
	int64_t contacts_max;
	char *mode;
	char **dns_suffixes;
	size_t n_dns_suffixes;
	char **ip_ranges;
	size_t n_ip_ranges;
	char **blocked_names;
	size_t n_blocked_names;
	int allow_wildcards;
	int subdomain_auth;
	int onion;
	char **persist_names;
	size_t n_persist_names;
	char *persist_prefix;
	char **email_domains;
	size_t n_email_domains;
	char *email_from;
	char *psl_file;
	char **challenges;
	size_t n_challenges;
	int64_t rsa_min, rsa_max;
	json_t *rsa_sizes;
	char **curves;
	size_t n_curves;
	int allow_p521;
	int64_t fermat_rounds;
	int finalize_async;
	int64_t retry_after_ms;
	int64_t finalize_wait_ms;
	int64_t recover_after_ms;
	int64_t caa_recheck_after_ms;
	int reuse_enabled;
	int64_t reuse_percent;
	int64_t validation_workers;
	int64_t validation_wait_ms;
	json_t *rate_limits;
	int64_t slow_finalize_ms;
	int64_t test_reuse_percent;
	json_t *star;
	json_t *device_identifiers;
	char *token_authority;
	json_t *deleg;
};

#define F(n, t, m) JSPEC_FIELD(struct raw, n, t, m)
#define FS(n, m, c) JSPEC_STRV(struct raw, n, m, c)
#define FO(n, sub) JSPEC_SUB(n, sub)

static const struct jspec contacts_spec[] = {
    F("max", JSPEC_INT, contacts_max), JSPEC_END};
static const struct jspec persist_spec[] = {
    FS("issuer_domain_names", persist_names, n_persist_names),
    F("account_hash_prefix", JSPEC_STRING, persist_prefix), JSPEC_END};
static const struct jspec email_spec[] = {
    FS("domains", email_domains, n_email_domains),
    F("from", JSPEC_STRING, email_from), JSPEC_END};
static const struct jspec tkauth_spec[] = {
    F("token_authority", JSPEC_STRING, token_authority), JSPEC_END};
static const struct jspec policy_spec[] = {F("mode", JSPEC_STRING, mode),
    FS("dns_suffixes", dns_suffixes, n_dns_suffixes),
    FS("ip_ranges", ip_ranges, n_ip_ranges),
    FS("blocked_names", blocked_names, n_blocked_names),
    F("allow_wildcards", JSPEC_BOOL, allow_wildcards),
    F("public_suffix_file", JSPEC_STRING, psl_file),
    FS("challenges", challenges, n_challenges),
    F("subdomain_auth", JSPEC_BOOL, subdomain_auth),
    F("onion", JSPEC_BOOL, onion),
    FO("dns_persist", persist_spec), FO("email", email_spec),
    F("device_identifiers", JSPEC_JSON, device_identifiers),
    FO("tkauth", tkauth_spec), JSPEC_END};
static const struct jspec keys_spec[] = {F("rsa_min", JSPEC_INT, rsa_min),
    F("rsa_max", JSPEC_INT, rsa_max), F("rsa_sizes", JSPEC_JSON, rsa_sizes),
    FS("ecdsa_curves", curves, n_curves),
    F("allow_p521", JSPEC_BOOL, allow_p521),
    F("fermat_rounds", JSPEC_INT, fermat_rounds), JSPEC_END};
static const struct jspec finalize_spec[] = {
    F("async", JSPEC_BOOL, finalize_async),
    F("retry_after", JSPEC_DURATION, retry_after_ms),
    F("wait", JSPEC_DURATION, finalize_wait_ms),
    F("recover_after", JSPEC_DURATION, recover_after_ms),
    F("caa_recheck_after", JSPEC_DURATION, caa_recheck_after_ms), JSPEC_END};
static const struct jspec reuse_spec[] = {
    F("enabled", JSPEC_BOOL, reuse_enabled),
    F("percent", JSPEC_INT, reuse_percent), JSPEC_END};
static const struct jspec validation_spec[] = {
    F("workers", JSPEC_INT, validation_workers),
    F("wait", JSPEC_DURATION, validation_wait_ms), JSPEC_END};
static const struct jspec test_spec[] = {
    F("slow_finalize", JSPEC_DURATION, slow_finalize_ms),
    F("authz_reuse_percent", JSPEC_INT, test_reuse_percent), JSPEC_END};
static const struct jspec top_spec[] = {
    CONFIG_COMMON_RPC_SPEC(struct raw, common), F("sa", JSPEC_JSON, sa),
    F("va", JSPEC_JSON, va), F("ca", JSPEC_JSON, ca),
    F("profiles_file", JSPEC_STRING, profiles_file),
    F("account_uri_prefix", JSPEC_STRING, account_uri_prefix),
    F("terms_of_service", JSPEC_STRING, terms_of_service),
    F("eab_required", JSPEC_BOOL, eab_required), FO("contacts", contacts_spec),
    FO("policy", policy_spec), FO("keys", keys_spec),
    FO("finalize", finalize_spec), FO("authz_reuse", reuse_spec),
    FO("validation", validation_spec),
    F("rate_limits", JSPEC_JSON, rate_limits), FO("test", test_spec),
    F("star", JSPEC_JSON, star), F("delegation", JSPEC_JSON, deleg),
    JSPEC_END};

/* {"limit":N,"period":"1h","burst":N} into *l. 0 or -1 with err. */
static int
parse_limit(const char *where, const json_t *o, struct ra_limit *l, char *err,
    size_t errlen)
{
	const char *key;
	json_t *v;
	int64_t period = 0;

	if (!json_is_object(o)) {
		snprintf(err, errlen, "%s: expected an object", where);
		return -1;
	}
	memset(l, 0, sizeof(*l));
	json_object_foreach((json_t *)o, key, v)
	{
		if (strcmp(key, "limit") == 0 && json_is_integer(v))
			l->limit = json_integer_value(v);
		else if (strcmp(key, "burst") == 0 && json_is_integer(v))
			l->burst = json_integer_value(v);
		else if (strcmp(key, "period") == 0 && json_is_string(v) &&
		    duration_parse_ms(json_string_value(v), &period) == 0)
			l->period_ms = period;
		else if (strcmp(key, "enabled") == 0 && json_is_boolean(v))
			;
		else {
			snprintf(err, errlen, "%s.%s: unknown key or bad value",
			    where, key);
			return -1;
		}
	}
	if (l->limit <= 0 || l->period_ms <= 0) {
		snprintf(err, errlen,
		    "%s: \"limit\" > 0 and \"period\" are required", where);
		return -1;
	}
	if (l->burst <= 0)
		l->burst = l->limit;
	l->enabled = !json_is_false(json_object_get(o, "enabled"));
	return 0;
}

static int
rl_index(const char *name)
{
	int i;

	for (i = 0; i < RA_RL__MAX; i++)
		if (strcmp(rl_names[i], name) == 0)
			return i;
	return -1;
}

/* "rate_limits": {<limit name>: {...}, "renewal_window": "120d",
 *  "profiles": {<profile>: {<limit name>: {...}}}} */
static int
parse_rate_limits(
    const json_t *rl, struct ra_config *cfg, char *err, size_t errlen)
{
	const char *key, *pkey, *lkey;
	json_t *v, *pv, *lv;
	char where[256];
	struct ra_limit tmp;
	int i;

	json_object_foreach((json_t *)rl, key, v)
	{
		if (strcmp(key, "renewal_window") == 0) {
			if (!json_is_string(v) ||
			    duration_parse_ms(json_string_value(v),
				&cfg->renewal_window_ms) != 0) {
				snprintf(err, errlen,
				    "rate_limits.renewal_window:"
				    " expected a duration");
				return -1;
			}
			continue;
		}
		if (strcmp(key, "profiles") == 0) {
			if (!json_is_object(v)) {
				snprintf(err, errlen,
				    "rate_limits.profiles: expected an object");
				return -1;
			}
			json_object_foreach(v, pkey, pv)
			{
				if (!json_is_object(pv)) {
					snprintf(err, errlen,
					    "rate_limits.profiles"
					    ".%s: expected an object",
					    pkey);
					return -1;
				}
				json_object_foreach(pv, lkey, lv)
				{
					snprintf(where, sizeof(where),
					    "rate_limits.profiles.%s.%s", pkey,
					    lkey);
					if (rl_index(lkey) < 0) {
						snprintf(err, errlen,
						    "%s: unknown limit", where);
						return -1;
					}
					if (parse_limit(where, lv, &tmp, err,
						errlen) != 0)
						return -1;
				}
			}
			cfg->limit_overrides = json_incref(v);
			continue;
		}
		i = rl_index(key);
		snprintf(where, sizeof(where), "rate_limits.%s", key);
		if (i < 0) {
			snprintf(err, errlen, "%s: unknown limit", where);
			return -1;
		}
		if (parse_limit(where, v, &cfg->limits[i], err, errlen) != 0)
			return -1;
	}
	return 0;
}

/* See ra.h / ra_int.h for ownership and return values. */
const struct ra_limit *
ra_config_limit(const struct ra_config *cfg, enum ra_rl which,
    const char *profile, struct ra_limit *tmp)
{
	json_t *p, *l;
	char err[64];

	if (profile != NULL && cfg->limit_overrides != NULL &&
	    (p = json_object_get(cfg->limit_overrides, profile)) != NULL &&
	    (l = json_object_get(p, rl_names[which])) != NULL &&
	    parse_limit("", l, tmp, err, sizeof(err)) == 0)
		return tmp;
	return &cfg->limits[which];
}

static void
raw_init(struct raw *r)
{
	memset(r, 0, sizeof(*r));
	r->common.debug_port = 8104;
	r->contacts_max = 10;
	r->allow_wildcards = 1;
	r->rsa_min = 2048;
	r->rsa_max = 4096;
	r->fermat_rounds = 110;
	r->finalize_async = 1;
	r->retry_after_ms = 1000;
	r->finalize_wait_ms = 500;
	r->recover_after_ms = 60000;
	r->caa_recheck_after_ms = 7LL * 3600 * 1000;
	r->reuse_enabled = 1;
	r->reuse_percent = 100;
	r->validation_workers = 4;
	r->validation_wait_ms = 1000;
	r->test_reuse_percent = -1;
}

static char **
strv_take(char ***src, size_t *n, size_t *dst_n)
{
	char **v = *src;

	*dst_n = *n;
	*src = NULL;
	*n = 0;
	return v;
}

/*
 * policy.dns_persist: required when dns-persist-01 is enabled. Issuer
 * domain names are lowercase A-labels without a trailing dot, at most 253
 * octets, 1 to 10 of them (draft-ietf-acme-dns-persist §3.1); the prefix
 * must end in "/" so that "sha-256/<hash>" appended to it is a URI (§4.1).
 */
static int
convert_persist(struct raw *r, struct ra_policy *pol, char *err, size_t errlen)
{
	size_t i, n;
	const char *s;

	pol->persist_names = strv_take(
	    &r->persist_names, &r->n_persist_names, &pol->n_persist_names);
	pol->persist_prefix =
	    r->persist_prefix ? xstrdup(r->persist_prefix) : NULL;
	if (!(pol->challenges & CHAL_BIT(CHAL_DNSPERSIST01)))
		return 0;
	n = pol->n_persist_names;
	if (n == 0 || n > 10) {
		snprintf(err, errlen,
		    "policy.dns_persist.issuer_domain_names: dns-persist-01 "
		    "needs 1 to 10 names");
		return -1;
	}
	for (i = 0; i < n; i++) {
		s = pol->persist_names[i];
		if (strlen(s) == 0 || strlen(s) > 253 ||
		    s[strlen(s) - 1] == '.' ||
		    strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-.") !=
			strlen(s)) {
			snprintf(err, errlen,
			    "policy.dns_persist.issuer_domain_names[%zu]: "
			    "expected a lowercase A-label domain name without "
			    "a trailing dot",
			    i);
			return -1;
		}
	}
	s = pol->persist_prefix;
	if (s == NULL ||
	    (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0) ||
	    s[strlen(s) - 1] != '/') {
		snprintf(err, errlen,
		    "policy.dns_persist.account_hash_prefix: dns-persist-01 "
		    "needs an http(s) URL ending in \"/\"");
		return -1;
	}
	return 0;
}

/*
 * policy.email (RFC 8823): the mail domains whose addresses the CA
 * certifies (none: no email identifier is accepted) and the challenge
 * email's From address, required when email-reply-00 is enabled and a
 * domain is listed.
 */
static int
convert_email(struct raw *r, struct ra_policy *pol, char *err, size_t errlen)
{
	char e[160], *n;
	size_t i;

	pol->email_domains = strv_take(
	    &r->email_domains, &r->n_email_domains, &pol->n_email_domains);
	for (i = 0; i < pol->n_email_domains; i++) {
		n = ident_dns_normalize(pol->email_domains[i], 0, e, sizeof(e));
		if (n == NULL) {
			snprintf(err, errlen, "policy.email.domains[%zu]: %s",
			    i, e);
			return -1;
		}
		free(pol->email_domains[i]);
		pol->email_domains[i] = n;
	}
	if (r->email_from != NULL) {
		n = ident_email_normalize(r->email_from, e, sizeof(e));
		if (n == NULL) {
			snprintf(err, errlen, "policy.email.from: %s", e);
			return -1;
		}
		pol->email_from = n;
	}
	if (pol->n_email_domains > 0 &&
	    (pol->challenges & CHAL_BIT(CHAL_EMAILREPLY00)) &&
	    pol->email_from == NULL) {
		snprintf(err, errlen,
		    "policy.email.from: required when policy.email.domains "
		    "is set and email-reply-00 is enabled (RFC 8823 §3: the "
		    "challenge's \"from\")");
		return -1;
	}
	return 0;
}

/* policy.challenges: the enabled types (default: every offered one). */
static int
convert_challenges(
    struct raw *r, struct ra_policy *pol, char *err, size_t errlen)
{
	size_t i;

	pol->challenges = r->challenges ? 0 : chal_default_set();
	for (i = 0; i < r->n_challenges; i++) {
		const struct chal_info *c = chal_lookup(r->challenges[i]);

		if (c == NULL) {
			snprintf(err, errlen,
			    "policy.challenges[%zu]: unknown challenge "
			    "type \"%.64s\"",
			    i, r->challenges[i]);
			return -1;
		}
		pol->challenges |= CHAL_BIT(c->type);
	}
	if (pol->challenges == 0) {
		snprintf(
		    err, errlen, "policy.challenges: names no challenge type");
		return -1;
	}
	return 0;
}

/* policy.*: mode, DNS suffixes, blocked names, IP ranges, challenges, PSL. */
static int
convert_policy(struct raw *r, struct ra_policy *pol, char *err, size_t errlen)
{
	size_t i;

	if (r->mode == NULL || strcmp(r->mode, "private") == 0)
		pol->public_mode = 0;
	else if (strcmp(r->mode, "public") == 0)
		pol->public_mode = 1;
	else if (strcmp(r->mode, "any") == 0)
		pol->any_name = 1; /* IPs: still ip_ranges */
	else {
		snprintf(err, errlen,
		    "policy.mode: expected \"private\", \"public\" or "
		    "\"any\"");
		return -1;
	}
	pol->dns_suffixes = strv_take(
	    &r->dns_suffixes, &r->n_dns_suffixes, &pol->n_dns_suffixes);
	for (i = 0; i < pol->n_dns_suffixes; i++) {
		char e[128], *n;
		n = ident_dns_normalize(pol->dns_suffixes[i], 0, e, sizeof(e));
		if (n == NULL) {
			snprintf(
			    err, errlen, "policy.dns_suffixes[%zu]: %s", i, e);
			return -1;
		}
		free(pol->dns_suffixes[i]);
		pol->dns_suffixes[i] = n;
	}
	pol->blocked_names = strv_take(
	    &r->blocked_names, &r->n_blocked_names, &pol->n_blocked_names);
	for (i = 0; pol->blocked_names && pol->blocked_names[i]; i++) {
		char *p;
		for (p = pol->blocked_names[i]; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
	}
	if (r->n_ip_ranges > 0) {
		pol->ip_ranges =
		    xcalloc(r->n_ip_ranges, sizeof(struct ra_ip_range));
		for (i = 0; i < r->n_ip_ranges; i++) {
			if (ra_ip_range_parse(
				r->ip_ranges[i], &pol->ip_ranges[i]) != 0) {
				snprintf(err, errlen,
				    "policy.ip_ranges[%zu]: "
				    "bad CIDR \"%s\"",
				    i, r->ip_ranges[i]);
				return -1;
			}
		}
		pol->n_ip_ranges = r->n_ip_ranges;
	}
	pol->allow_wildcards = r->allow_wildcards;
	pol->subdomain_auth = r->subdomain_auth;
	if (convert_challenges(r, pol, err, errlen) != 0)
		return -1;
	if (convert_email(r, pol, err, errlen) != 0)
		return -1;
	/* RFC 9799: policy.onion accepts v3 .onion names and offers
	 * onion-csr-01 for them (the only type that can prove one here) */
	pol->onion = r->onion;
	if (pol->onion)
		pol->challenges |= CHAL_BIT(CHAL_ONIONCSR01);
	else if (pol->challenges & CHAL_BIT(CHAL_ONIONCSR01)) {
		snprintf(err, errlen,
		    "policy.challenges: onion-csr-01 needs policy.onion "
		    "(RFC 9799 .onion names) to be true");
		return -1;
	}
	/* RFC 9447 §3: "token-authority" is an optional URL (a hint where
	 * clients get tokens); https only, shown in every tkauth-01 */
	if (r->token_authority != NULL &&
	    strncmp(r->token_authority, "https://", 8) != 0) {
		snprintf(err, errlen,
		    "policy.tkauth.token_authority: must be an https:// URL");
		return -1;
	}
	pol->token_authority = r->token_authority;
	r->token_authority = NULL;
	if (convert_persist(r, pol, err, errlen) != 0 ||
	    ra_device_policy_parse(r->device_identifiers,
		&pol->device_identifiers, err, errlen) != 0)
		return -1;
	if (pol->public_mode) {
		char e[256];
		pol->psl = ra_psl_load(r->psl_file
			? r->psl_file
			: "/usr/share/publicsuffix/public_suffix_list.dat",
		    e, sizeof(e));
		if (pol->psl == NULL) {
			snprintf(
			    err, errlen, "policy.public_suffix_file: %s", e);
			return -1;
		}
	}
	return 0;
}

/* keys.rsa_sizes (borrowed) into kp: at most 16 sizes in bits. */
static int
convert_rsa_sizes(
    const json_t *sizes, struct ra_key_policy *kp, char *err, size_t errlen)
{
	json_t *v;
	size_t i;

	if (!json_is_array(sizes) || json_array_size(sizes) > 16) {
		snprintf(err, errlen,
		    "keys.rsa_sizes: expected an array"
		    " of at most 16 integers");
		return -1;
	}
	kp->n_rsa_sizes = 0;
	json_array_foreach(sizes, i, v)
	{
		if (!json_is_integer(v) || json_integer_value(v) < 512 ||
		    json_integer_value(v) > 16384) {
			snprintf(err, errlen,
			    "keys.rsa_sizes[%zu]: "
			    "expected a key size in bits",
			    i);
			return -1;
		}
		kp->rsa_sizes[kp->n_rsa_sizes++] = (int)json_integer_value(v);
	}
	return 0;
}

/* keys.*: RSA sizes, ECDSA curves, Fermat rounds. */
static int
convert_keys(struct raw *r, struct ra_key_policy *kp, char *err, size_t errlen)
{
	size_t i;

	ra_key_policy_default(kp);
	kp->rsa_min = r->rsa_min;
	kp->rsa_max = r->rsa_max;
	if (kp->rsa_min < 512 || kp->rsa_max < kp->rsa_min ||
	    kp->rsa_max > 16384) {
		snprintf(err, errlen, "keys.rsa_min/rsa_max: bad range");
		return -1;
	}
	if (r->rsa_sizes != NULL &&
	    convert_rsa_sizes(r->rsa_sizes, kp, err, errlen) != 0)
		return -1;
	if (r->curves != NULL) {
		kp->allow_p256 = kp->allow_p384 = 0;
		for (i = 0; i < r->n_curves; i++) {
			if (strcmp(r->curves[i], "P-256") == 0)
				kp->allow_p256 = 1;
			else if (strcmp(r->curves[i], "P-384") == 0)
				kp->allow_p384 = 1;
			else if (strcmp(r->curves[i], "P-521") == 0)
				kp->allow_p521 = 1;
			else {
				snprintf(err, errlen,
				    "keys.ecdsa_curves[%zu]: "
				    "unknown curve \"%s\"",
				    i, r->curves[i]);
				return -1;
			}
		}
	}
	if (r->allow_p521)
		kp->allow_p521 = 1;
	if (r->fermat_rounds < 0 || r->fermat_rounds > 100000) {
		snprintf(err, errlen, "keys.fermat_rounds: must be 0..100000");
		return -1;
	}
	kp->fermat_rounds = (int)r->fermat_rounds;
	return 0;
}

static int
convert(struct raw *r, struct ra_config *cfg, char *err, size_t errlen)
{
	cfg->common = r->common; /* checked by config_common_check */
	memset(&r->common, 0, sizeof(r->common));
	cfg->sa = r->sa ? json_incref(r->sa) : NULL;
	cfg->va = r->va ? json_incref(r->va) : NULL;
	cfg->ca = r->ca ? json_incref(r->ca) : NULL;
	cfg->profiles_file = xstrdup(
	    r->profiles_file ? r->profiles_file : "configs/dev/profiles.json");
	cfg->account_uri_prefix = xstrdup(r->account_uri_prefix
		? r->account_uri_prefix
		: "https://localhost:4431/acme/acct/");
	cfg->terms_of_service = r->terms_of_service && r->terms_of_service[0]
	    ? xstrdup(r->terms_of_service)
	    : NULL;
	cfg->eab_required = r->eab_required;
	if (r->contacts_max < 0 || r->contacts_max > 100) {
		snprintf(err, errlen, "contacts.max: must be 0..100");
		return -1;
	}
	cfg->contacts_max = r->contacts_max;
	if (convert_policy(r, &cfg->policy, err, errlen) != 0 ||
	    convert_keys(r, &cfg->keys, err, errlen) != 0)
		return -1;
	cfg->finalize_async = r->finalize_async;
	cfg->finalize_retry_after_ms = r->retry_after_ms;
	if (r->finalize_wait_ms < 0 || r->finalize_wait_ms > 10000) {
		snprintf(err, errlen, "finalize.wait: must be 0s..10s");
		return -1;
	}
	cfg->finalize_wait_ms = r->finalize_wait_ms;
	cfg->recover_after_ms = r->recover_after_ms;
	cfg->caa_recheck_after_ms = r->caa_recheck_after_ms;
	cfg->authz_reuse_enabled = r->reuse_enabled;
	cfg->authz_reuse_percent = r->test_reuse_percent >= 0
	    ? r->test_reuse_percent
	    : r->reuse_percent;
	if (cfg->authz_reuse_percent < 0 || cfg->authz_reuse_percent > 100) {
		snprintf(err, errlen, "authz_reuse.percent: must be 0..100");
		return -1;
	}
	if (r->validation_workers < 1 || r->validation_workers > 256) {
		snprintf(err, errlen, "validation.workers: must be 1..256");
		return -1;
	}
	cfg->validation_workers = r->validation_workers;
	if (r->validation_wait_ms < 0 || r->validation_wait_ms > 10000) {
		snprintf(err, errlen, "validation.wait: must be 0s..10s");
		return -1;
	}
	cfg->validation_wait_ms = r->validation_wait_ms;
	cfg->renewal_window_ms = 120LL * 86400 * 1000;
	if (r->rate_limits != NULL) {
		if (!json_is_object(r->rate_limits)) {
			snprintf(
			    err, errlen, "rate_limits: expected an object");
			return -1;
		}
		if (parse_rate_limits(r->rate_limits, cfg, err, errlen) != 0)
			return -1;
	}
	cfg->slow_finalize_ms = r->slow_finalize_ms;
	return 0;
}

/*
 * Parses ra.json (obj borrowed) into cfg (caller-owned, cleared first).
 * 0, or -1 with err naming the key; call ra_config_clear either way.
 */
/*
 * Test-mode environment knobs (docs/testing-clients.md). PEBBLE_AUTHZREUSE
 * as Pebble reads it: a percentage, values outside 0..100 ignored; the
 * ANVIL_ names win and are strict.
 */
static int
apply_env(struct ra_config *cfg, char *err, size_t errlen)
{
	const char *e;
	char *end;
	long long v;
	int64_t pct = -1;

	if ((e = getenv("PEBBLE_AUTHZREUSE")) != NULL && e[0] != '\0') {
		v = strtoll(e, &end, 10);
		if (*end == '\0' && v >= 0 && v <= 100) {
			cfg->authz_reuse_enabled = 1;
			cfg->authz_reuse_percent = (int)v;
		}
	}
	if (env_int("ANVIL_RA_AUTHZ_REUSE_PERCENT", 0, 100, "0..100", &pct,
		err, errlen) != 0)
		return -1;
	if (pct >= 0) {
		cfg->authz_reuse_enabled = pct > 0;
		cfg->authz_reuse_percent = pct;
	}
	return env_duration("ANVIL_RA_SLOW_FINALIZE", 3600 * 1000,
	    "a duration up to 1h", &cfg->slow_finalize_ms, err, errlen);
}

int
ra_config_parse(const json_t *obj, const char *path, struct ra_config *cfg,
    char *err, size_t errlen)
{
	struct raw r;
	int rc = -1;
	char inner[512];

	memset(cfg, 0, sizeof(*cfg));
	raw_init(&r);
	if (jspec_parse(obj, top_spec, &r, inner, sizeof(inner)) != 0) {
		snprintf(
		    err, errlen, "%s: %s", path ? path : "ra config", inner);
		goto out;
	}
	if (config_common_check(
		&r.common, path ? path : "ra config", err, errlen) != 0)
		goto out;
	if (convert(&r, cfg, inner, sizeof(inner)) != 0 ||
	    ra_star_config_parse(
		r.star, &cfg->star, inner, sizeof(inner)) != 0 ||
	    ra_deleg_config_parse(
		r.deleg, &cfg->deleg, inner, sizeof(inner)) != 0 ||
	    apply_env(cfg, inner, sizeof(inner)) != 0) {
		snprintf(
		    err, errlen, "%s: %s", path ? path : "ra config", inner);
		goto out;
	}
	rc = 0;
out:
	jspec_clear(top_spec, &r);
	return rc;
}

/* See ra_int.h. */
int
ra_section_parse(const json_t *obj, const char *section,
    const struct jspec *spec, void *raw, char *err, size_t errlen)
{
	char inner[256];

	if (obj == NULL)
		return 0;
	if (!json_is_object(obj)) {
		snprintf(err, errlen, "%s: expected an object", section);
		return -1;
	}
	if (jspec_parse(obj, spec, raw, inner, sizeof(inner)) != 0) {
		snprintf(err, errlen, "%s.%s", section, inner);
		return -1;
	}
	return 0;
}

/* See ra_int.h. */
void
ra_strv_free(char **v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n || (n == 0 && v[i] != NULL); i++)
		free(v[i]);
	free(v);
}

/* Frees everything ra_config_parse put into cfg; cfg is zeroed. */
void
ra_config_clear(struct ra_config *cfg)
{
	if (cfg == NULL)
		return;
	config_common_clear(&cfg->common);
	json_decref(cfg->sa);
	json_decref(cfg->va);
	json_decref(cfg->ca);
	free(cfg->profiles_file);
	free(cfg->account_uri_prefix);
	free(cfg->terms_of_service);
	ra_strv_free(cfg->policy.dns_suffixes, cfg->policy.n_dns_suffixes);
	ra_strv_free(cfg->policy.blocked_names, cfg->policy.n_blocked_names);
	ra_strv_free(cfg->policy.persist_names, cfg->policy.n_persist_names);
	free(cfg->policy.persist_prefix);
	ra_strv_free(cfg->policy.email_domains, cfg->policy.n_email_domains);
	free(cfg->policy.email_from);
	json_decref(cfg->policy.device_identifiers);
	free(cfg->policy.token_authority);
	free(cfg->policy.ip_ranges);
	ra_psl_free(cfg->policy.psl);
	json_decref(cfg->limit_overrides);
	ra_star_config_clear(&cfg->star);
	ra_deleg_config_clear(&cfg->deleg);
	memset(cfg, 0, sizeof(*cfg));
}
