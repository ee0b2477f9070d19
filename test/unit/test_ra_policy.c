/* LIBS: ra rpc jose core */
/*
 * test_ra_policy.c - the RA's pure parts: identifier policy (private and
 * public mode, block lists, wildcards, profiles, subproblems), registered
 * domains, IP ranges, GCRA arithmetic, order status derivation and the
 * strict config parser.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ra/ra.h"
#include "ra/ra_int.h"

static struct ra_config cfg;
static struct profile classic, dnsonly, smime;

static json_t *
ident(const char *type, const char *value)
{
	return json_pack("{s:s,s:s}", "type", type, "value", value);
}

/* Problem type of one identifier check, or -1 when accepted; *norm out. */
static int
one(const struct ra_policy *pol, const struct profile *prof, const char *type,
    const char *value, char **norm)
{
	json_t *i = ident(type, value);
	struct problem *p = NULL;
	enum ident_type t;
	char *n = NULL;
	int rc;

	rc = ra_policy_check_ident(pol, prof, i, &t, &n, &p);
	json_decref(i);
	if (rc == 0) {
		if (norm != NULL)
			*norm = n;
		else
			free(n);
		return -1;
	}
	rc = (int)p->type;
	problem_free(p);
	return rc;
}

#define OK (-1) /* accepted */
#define REJ PROB_REJECTED_IDENTIFIER
#define UNSUP PROB_UNSUPPORTED_IDENTIFIER
#define MAL PROB_MALFORMED

#define NCASES(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Every identifier check of the tests below, one row a case: the test (and
 * so the policy) that runs it, the profile, the identifier, the problem
 * expected (OK: accepted) and, when accepted, the normalized value ("":
 * not looked at).
 */
enum ident_test { T_ANY, T_DNS, T_EMAIL, T_WILD, T_NOWILD, T_IP, T_PUBLIC };

enum prof_id { PR_NONE, PR_CLASSIC, PR_DNSONLY, PR_SMIME };

struct ident_case {
	enum ident_test test;
	enum prof_id prof;
	const char *type, *value;
	int want;
	const char *norm;
};

static const struct ident_case ident_cases[] = {
    /* policy.mode "any" (test_any_mode) */
    {T_ANY, PR_NONE, "dns", "www.example.com", OK, ""},
    {T_ANY, PR_NONE, "dns", "a.b.wtf", OK, ""},
    {T_ANY, PR_NONE, "dns", "x.xyz", OK, ""},
    {T_ANY, PR_NONE, "dns", "*.example.org", OK, ""},
    {T_ANY, PR_NONE, "dns", "sub.domain.co.uk", OK, ""},
    {T_ANY, PR_NONE, "dns", "localhost", OK, ""},
    {T_ANY, PR_NONE, "dns", "bad..name.com", REJ, ""},
    {T_ANY, PR_NONE, "dns", "-x.example.com", REJ, ""},
    {T_ANY, PR_NONE, "dns", "under_score.com", REJ, ""},
    {T_ANY, PR_NONE, "dns", "x.bad.example.com", REJ, ""},
    {T_ANY, PR_NONE, "dns", "a.*.example.com", REJ, ""},
    {T_ANY, PR_NONE, "ip", "127.0.0.7", OK, ""},
    {T_ANY, PR_NONE, "ip", "192.0.2.1", REJ, ""},
    {T_ANY, PR_NONE, "uri", "https://b.com/", UNSUP, ""},
    /* no policy.email.domains: no email identifier */
    {T_ANY, PR_NONE, "email", "a@b.com", REJ, ""},
    /* the private dev policy (test_private_dns) */
    {T_DNS, PR_CLASSIC, "dns", "WWW.Example.TEST", OK, "www.example.test"},
    {T_DNS, PR_CLASSIC, "dns", "a.corp.example", OK, ""},
    /* outside the allowed suffixes, and the suffix itself */
    {T_DNS, PR_CLASSIC, "dns", "example.com", REJ, ""},
    {T_DNS, PR_CLASSIC, "dns", "test", REJ, ""},
    {T_DNS, PR_CLASSIC, "dns", "corp.example", REJ, ""},
    {T_DNS, PR_CLASSIC, "dns", "xcorp.example", REJ, ""},
    /* syntax */
    {T_DNS, PR_CLASSIC, "dns", "a..test", REJ, ""},
    {T_DNS, PR_CLASSIC, "dns", "-a.test", REJ, ""},
    {T_DNS, PR_CLASSIC, "dns", "a.test.", REJ, ""},
    {T_DNS, PR_CLASSIC, "dns", "a_b.test", REJ, ""},
    /* block list covers subdomains */
    {T_DNS, PR_CLASSIC, "dns", "bad.test", REJ, ""},
    {T_DNS, PR_CLASSIC, "dns", "x.bad.test", REJ, ""},
    {T_DNS, PR_CLASSIC, "dns", "notbad.test", OK, ""},
    /* unknown type */
    {T_DNS, PR_CLASSIC, "uri", "https://b.test/", UNSUP, ""},
    /* a TLS profile refuses email identifiers */
    {T_DNS, PR_CLASSIC, "email", "a@b.test", REJ, ""},
    /* RFC 8823 email identifiers (test_email_policy) */
    {T_EMAIL, PR_SMIME, "email", "Bob@mail.test", OK, "Bob@mail.test"},
    /* not in normal form: the domain must be lowercase */
    {T_EMAIL, PR_SMIME, "email", "bob@MAIL.test", MAL, ""},
    /* another mail domain, or a subdomain, is not listed */
    {T_EMAIL, PR_SMIME, "email", "bob@other.test", REJ, ""},
    {T_EMAIL, PR_SMIME, "email", "bob@x.mail.test", REJ, ""},
    {T_EMAIL, PR_SMIME, "email", "bob", REJ, ""},
    /* the S/MIME profile refuses DNS names */
    {T_EMAIL, PR_SMIME, "dns", "a.test", REJ, ""},
    /* test_wildcards */
    {T_WILD, PR_CLASSIC, "dns", "*.a.test", OK, "*.a.test"},
    {T_WILD, PR_CLASSIC, "dns", "a.*.test", REJ, ""},
    {T_WILD, PR_CLASSIC, "dns", "*a.test", REJ, ""},
    {T_WILD, PR_CLASSIC, "dns", "*.test", REJ, ""},
    {T_WILD, PR_CLASSIC, "dns", "*.bad.test", REJ, ""},
    {T_NOWILD, PR_CLASSIC, "dns", "*.a.test", REJ, ""},
    /* test_private_ip */
    {T_IP, PR_CLASSIC, "ip", "10.1.2.3", OK, ""},
    {T_IP, PR_CLASSIC, "ip", "::1", OK, "::1"},
    {T_IP, PR_CLASSIC, "ip", "192.168.1.77", OK, ""},
    {T_IP, PR_CLASSIC, "ip", "192.168.2.1", REJ, ""},
    {T_IP, PR_CLASSIC, "ip", "8.8.8.8", REJ, ""},
    /* non-canonical text */
    {T_IP, PR_CLASSIC, "ip", "0:0:0:0:0:0:0:1", MAL, ""},
    {T_IP, PR_CLASSIC, "ip", "10.1.2", REJ, ""},
    /* profile without IPs */
    {T_IP, PR_DNSONLY, "ip", "10.1.2.3", REJ, ""},
    /* public mode, the Public Suffix List (test_public_mode) */
    {T_PUBLIC, PR_CLASSIC, "dns", "www.example.com", OK, ""},
    {T_PUBLIC, PR_CLASSIC, "dns", "example.co.uk", OK, ""},
    {T_PUBLIC, PR_CLASSIC, "dns", "co.uk", REJ, ""},
    {T_PUBLIC, PR_CLASSIC, "dns", "*.co.uk", REJ, ""},
    {T_PUBLIC, PR_CLASSIC, "dns", "*.example.com", OK, ""},
    {T_PUBLIC, PR_CLASSIC, "dns", "host.internal-name", REJ, ""},
    {T_PUBLIC, PR_CLASSIC, "ip", "8.8.8.8", OK, ""},
    {T_PUBLIC, PR_CLASSIC, "ip", "10.0.0.1", REJ, ""},
    {T_PUBLIC, PR_CLASSIC, "ip", "127.0.0.1", REJ, ""},
    {T_PUBLIC, PR_CLASSIC, "ip", "2001:db8::1", REJ, ""},
    {T_PUBLIC, PR_CLASSIC, "ip", "2606:4700::1111", OK, ""},
};

/* The profile a case names (NULL for PR_NONE); borrowed. */
static const struct profile *
profile_of(enum prof_id id)
{
	const struct profile *const all[] = {NULL, &classic, &dnsonly, &smime};

	return all[id];
}

/* Runs every case of ident_cases for the test `which` against pol; a
 * failing case is printed with its identifier, what came back and what was
 * expected. */
static void
check_idents(struct th *t, enum ident_test which, const struct ra_policy *pol)
{
	const struct ident_case *c = ident_cases;

	for (size_t i = 0; i < NCASES(ident_cases); i++) {
		char *norm = NULL;
		int got;

		if (c[i].test != which)
			continue;
		got = one(
		    pol, profile_of(c[i].prof), c[i].type, c[i].value, &norm);
		if (got != c[i].want ||
		    (c[i].norm[0] != '\0' &&
			(norm == NULL || strcmp(norm, c[i].norm) != 0))) {
			fprintf(stderr,
			    "  FAIL %s \"%s\": problem %d (want %d), "
			    "normalized \"%s\" (want \"%s\")\n",
			    c[i].type, c[i].value, got, c[i].want,
			    norm ? norm : "(null)",
			    c[i].norm[0] ? c[i].norm : "(any)");
			t->cur_failed++;
		}
		free(norm);
	}
}

/* Parses the RA config text js into *c (zeroed first); returns
 * ra_config_parse's result with err filled. Free *c with ra_config_clear. */
static int
parse_cfg(const char *js, struct ra_config *c, char *err, size_t errlen)
{
	json_t *o = json_loads(js, 0, NULL);
	int rc;

	memset(c, 0, sizeof(*c));
	err[0] = '\0';
	if (o == NULL) {
		snprintf(err, errlen, "bad test JSON: %s", js);
		return -2;
	}
	rc = ra_config_parse(o, "t.json", c, err, errlen);
	json_decref(o);
	return rc;
}

/* 1 when the config text js is refused with an error naming want and also
 * (each NULL: not looked at); else prints what happened and returns 0. */
static int
cfg_refused(const char *js, const char *want, const char *also)
{
	struct ra_config c;
	char err[512];
	int rc = parse_cfg(js, &c, err, sizeof(err));

	ra_config_clear(&c);
	if (rc == -1 && (want == NULL || strstr(err, want) != NULL) &&
	    (also == NULL || strstr(err, also) != NULL))
		return 1;
	fprintf(stderr, "  config %s: %s (want an error naming %s %s)\n", js,
	    rc == 0 ? "accepted" : err, want ? want : "", also ? also : "");
	return 0;
}

/* 1 when the identifier {type, value} is refused under pol and prof with a
 * problem of type want whose detail contains detail. */
static int
ident_refused(const struct ra_policy *pol, const struct profile *prof,
    const char *type, const char *value, int want, const char *detail)
{
	json_t *i = ident(type, value);
	struct problem *p = NULL;
	enum ident_type ty;
	char *n = NULL;
	int ok;

	ok = ra_policy_check_ident(pol, prof, i, &ty, &n, &p) == -1 &&
	    (int)p->type == want && strstr(p->detail, detail) != NULL;
	if (!ok)
		fprintf(stderr, "  %s \"%s\": %s\n", type, value,
		    p ? p->detail : "accepted");
	free(n);
	problem_free(p);
	json_decref(i);
	return ok;
}

static void
load_cfg(void)
{
	char err[256];

	if (parse_cfg(
		"{\"policy\": {\"mode\": \"private\", "
		"\"dns_suffixes\": [\"test\", \"Corp.Example\"], "
		"\"ip_ranges\": [\"10.0.0.0/8\", \"::1/128\", "
		"\"192.168.1.0/24\"],"
		" \"blocked_names\": [\"bad.test\"], \"allow_wildcards\": true},"
		" \"rate_limits\": {\"new_orders_per_account\": {\"limit\": 5, "
		"\"period\": \"1h\"}, \"profiles\": {\"shortlived\": "
		"{\"new_orders_per_account\": {\"limit\": 1, \"period\": \"1h\", "
		"\"burst\": 2}}}}}",
		&cfg, err, sizeof(err)) != 0)
		fprintf(stderr, "config: %s\n", err);
	memset(&classic, 0, sizeof(classic));
	classic.name = "classic";
	classic.allow_dns = classic.allow_ip = 1;
	classic.max_identifiers = 3;
	dnsonly = classic;
	dnsonly.name = "dnsonly";
	dnsonly.allow_ip = 0;
	memset(&smime, 0, sizeof(smime));
	smime.name = "smime";
	smime.allow_email = smime.eku_email_protection = 1;
	smime.max_identifiers = 1;
}

/*
 * policy.mode "any" (the test modes, as Pebble): every syntactically valid
 * DNS name, whatever its suffix; malformed and blocked names are still
 * refused and IPs still need ip_ranges.
 */
TH_TEST(test_any_mode)
{
	struct ra_config c;
	char err[256];

	TH_CHECK(t,
	    parse_cfg("{\"policy\": {\"mode\": \"any\", "
		      "\"ip_ranges\": [\"127.0.0.0/8\"], "
		      "\"blocked_names\": [\"bad.example.com\"], "
		      "\"allow_wildcards\": true}}",
		&c, err, sizeof(err)) == 0);
	TH_CHECK(t, c.policy.any_name && !c.policy.public_mode);
	check_idents(t, T_ANY, &c.policy);
	ra_config_clear(&c);
	TH_CHECK(t,
	    cfg_refused(
		"{\"policy\": {\"mode\": \"anything\"}}", "policy.mode", NULL));
}

TH_TEST(test_private_dns)
{
	check_idents(t, T_DNS, &cfg.policy);
}

/* RFC 8823 email identifiers: policy.email.domains and the S/MIME profile. */
TH_TEST(test_email_policy)
{
	struct ra_config c;
	struct ra_policy off;
	char err[256];

	TH_CHECK(t,
	    parse_cfg("{\"policy\": {\"email\": {\"domains\": "
		      "[\"Mail.Test\"], \"from\": \"ca@anvil.test\"}}}",
		&c, err, sizeof(err)) == 0);
	check_idents(t, T_EMAIL, &c.policy);
	/* with email-reply-00 switched off nothing could validate the address:
	 * RFC 8555 §6.7 unsupportedIdentifier ("An identifier is of an
	 * unsupported type"), named as such instead of an SA error later */
	off = c.policy;
	off.challenges &= ~CHAL_BIT(CHAL_EMAILREPLY00);
	TH_CHECK(t,
	    ident_refused(&off, &smime, "email", "bob@mail.test", UNSUP,
		"policy.challenges"));
	ra_config_clear(&c);
	/* email-reply-00 needs the challenge's "from" */
	TH_CHECK(t,
	    cfg_refused("{\"policy\": {\"email\": {\"domains\": "
			"[\"mail.test\"]}}}",
		"policy.email.from", NULL));
	TH_CHECK(t,
	    cfg_refused("{\"policy\": {\"email\": {\"domains\": "
			"[\"mail..test\"], \"from\": \"ca@anvil.test\"}}}",
		"policy.email.domains[0]", NULL));
}

TH_TEST(test_wildcards)
{
	struct ra_policy nowc = cfg.policy;

	check_idents(t, T_WILD, &cfg.policy);
	nowc.allow_wildcards = 0;
	check_idents(t, T_NOWILD, &nowc);
}

TH_TEST(test_private_ip)
{
	check_idents(t, T_IP, &cfg.policy);
}

/* Checks ra_policy_registered_domain for each {name, registered domain}. */
static void
check_registered(struct th *t, const struct ra_policy *pol,
    const char *const (*c)[2], size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char *r = ra_policy_registered_domain(pol, c[i][0]);

		TH_CHECK_STR(t, r, c[i][1]);
		free(r);
	}
}

TH_TEST(test_public_mode)
{
	static const char *const registered[][2] = {
	    {"a.b.example.co.uk", "example.co.uk"},
	    {"*.www.example.com", "example.com"},
	};
	struct ra_policy pub;
	char err[128];

	memset(&pub, 0, sizeof(pub));
	pub.challenges = chal_default_set();
	pub.public_mode = 1;
	pub.allow_wildcards = 1;
	pub.psl = ra_psl_load(
	    "/usr/share/publicsuffix/public_suffix_list.dat", err, sizeof(err));
	if (pub.psl == NULL)
		TH_SKIP(t, "no public suffix list installed");
	check_idents(t, T_PUBLIC, &pub);
	check_registered(t, &pub, registered, NCASES(registered));
	ra_psl_free(pub.psl);
}

/* ra_policy_check_idents (private policy, classic profile) on the JSON text
 * js: its result, *out and *p as it sets them. */
static int
check_list(const char *js, json_t **out, struct problem **p)
{
	json_t *in = json_loads(js, 0, NULL);
	int rc = ra_policy_check_idents(&cfg.policy, &classic, in, out, p);

	json_decref(in);
	return rc;
}

/* The problem type check_list gives js, or -1 when accepted. */
static int
list_problem(const char *js)
{
	json_t *out = NULL;
	struct problem *p = NULL;
	int rc = -1;

	if (check_list(js, &out, &p) != 0)
		rc = p != NULL ? (int)p->type : -2;
	json_decref(out);
	problem_free(p);
	return rc;
}

#define ID(type, value) "{\"type\": \"" type "\", \"value\": \"" value "\"}"

TH_TEST(test_ident_list)
{
	json_t *out = NULL;
	struct problem *p = NULL;

	TH_CHECK(t,
	    check_list("[" ID("dns", "B.test") "," ID("dns", "a.test") "," ID(
			   "dns", "b.test") "]",
		&out, &p) == 0);
	TH_CHECK(t, json_array_size(out) == 2); /* deduplicated */
	TH_CHECK_STR(t,
	    json_string_value(json_object_get(json_array_get(out, 0), "value")),
	    "a.test");
	json_decref(out);
	out = NULL;

	/* two bad identifiers -> two subproblems naming them */
	TH_CHECK(t,
	    check_list("[" ID("dns", "ok.test") "," ID(
			   "dns", "evil.com") "," ID("ip", "8.8.8.8") "]",
		&out, &p) == -1);
	TH_CHECK(t, p != NULL && p->type == PROB_REJECTED_IDENTIFIER);
	TH_CHECK(t, p != NULL && json_array_size(p->subproblems) == 2);
	if (p != NULL && json_array_size(p->subproblems) == 2) {
		json_t *s1 = json_array_get(p->subproblems, 0);
		TH_CHECK_STR(t,
		    json_string_value(json_object_get(
			json_object_get(s1, "identifier"), "value")),
		    "evil.com");
	}
	problem_free(p);

	/* too many for the profile */
	TH_CHECK(t,
	    list_problem("[" ID("dns", "a.test") "," ID("dns", "b.test") "," ID(
		"dns", "c.test") "," ID("dns", "d.test") "]") == REJ);
	/* structural errors */
	TH_CHECK(t, list_problem("[]") == MAL);
	TH_CHECK(t, list_problem("[{\"type\": \"dns\"}]") == MAL);
}

TH_TEST(test_registered_domain_private)
{
	static const char *const registered[][2] = {
	    {"a.b.corp.example", "b.corp.example"},
	    {"x.y.z.test", "z.test"},
	    {"10.0.0.1", "10.0.0.1"},
	};

	check_registered(t, &cfg.policy, registered, NCASES(registered));
}

TH_TEST(test_ip_ranges)
{
	struct ra_ip_range r;
	uint8_t a4[4] = {10, 200, 1, 1}, b4[4] = {11, 0, 0, 1};
	uint8_t v6[16] = {0};

	TH_CHECK(t, ra_ip_range_parse("10.0.0.0/8", &r) == 0);
	TH_CHECK(t, ra_ip_range_contains(&r, a4, 4) == 1);
	TH_CHECK(t, ra_ip_range_contains(&r, b4, 4) == 0);
	TH_CHECK(t, ra_ip_range_contains(&r, v6, 16) == 0);
	TH_CHECK(t, ra_ip_range_parse("10.0.0.0/33", &r) == -1);
	TH_CHECK(t, ra_ip_range_parse("banana/8", &r) == -1);
	TH_CHECK(t, ra_ip_range_parse("::/0", &r) == 0);
	TH_CHECK(t, ra_ip_range_contains(&r, v6, 16) == 1);
	TH_CHECK(t, ra_ip_special_purpose(a4, 4) == 1);
	TH_CHECK(t, ra_ip_special_purpose(b4, 4) == 0);
}

TH_TEST(test_gcra)
{
	int64_t tat = 0, now = 1000000, nt, retry, rem;
	int i, allowed = 0;

	/* 10 per 10 s, burst 3: three at once, the fourth waits 1 s */
	for (i = 0; i < 4; i++) {
		if (ra_gcra(tat, now, 1000, 3, 1, &nt, &retry, &rem)) {
			allowed++;
			tat = nt;
		}
	}
	TH_CHECK(t, allowed == 3);
	TH_CHECK(t, ra_gcra(tat, now, 1000, 3, 1, &nt, &retry, &rem) == 0);
	TH_CHECK(t, retry == 1000);
	TH_CHECK(t, rem == 0);
	/* after the wait, one more */
	TH_CHECK(
	    t, ra_gcra(tat, now + 1000, 1000, 3, 1, &nt, &retry, &rem) == 1);
	/* cost 0 is a check: denied-equivalent shows as remaining 0 */
	TH_CHECK(t, ra_gcra(tat, now, 1000, 3, 0, &nt, &retry, &rem) == 1);
	TH_CHECK(t, rem == 0 && nt == tat);
	/* a fresh bucket has burst - 1 left after one spend */
	TH_CHECK(t, ra_gcra(0, now, 1000, 3, 1, &nt, &retry, &rem) == 1);
	TH_CHECK(t, rem == 2 && nt == now + 1000);
	/* long idle refills completely but not beyond burst */
	TH_CHECK(t,
	    ra_gcra(now, now + 100000, 1000, 3, 1, &nt, &retry, &rem) == 1 &&
		rem == 2);
	/* cost larger than burst never passes */
	TH_CHECK(t, ra_gcra(0, now, 1000, 3, 4, &nt, &retry, &rem) == 0);
}

TH_TEST(test_order_status)
{
	static const char *const v2[] = {"valid", "valid"};
	static const char *const vp[] = {"valid", "pending"};
	static const char *const vi[] = {"valid", "invalid"};
	static const char *const vd[] = {"deactivated", "pending"};
	static const char *const ve[] = {"valid", "expired"};
	static const char *const vr[] = {"revoked"};
	/* stored status, expiry relative to now, authz statuses, result */
	static const struct {
		const char *stored;
		int64_t expires;
		const char *const *authz;
		size_t n;
		const char *want;
	} cases[] = {
	    {"pending", 1, v2, 2, "ready"},
	    {"pending", 1, vp, 2, "pending"},
	    {"pending", 1, vi, 2, "invalid"},
	    {"pending", 1, vd, 2, "invalid"},
	    {"pending", 1, ve, 2, "invalid"},
	    {"pending", 1, vr, 1, "invalid"},
	    {"pending", 0, v2, 2, "invalid"},
	    {"processing", -5, v2, 2, "processing"},
	    {"valid", -5, v2, 2, "valid"},
	    {"invalid", 5, v2, 2, "invalid"},
	};
	int64_t now = 1000000;

	for (size_t i = 0; i < NCASES(cases); i++)
		TH_CHECK_STR(t,
		    ra_order_status(cases[i].stored, now + cases[i].expires,
			now, cases[i].authz, cases[i].n),
		    cases[i].want);
}

TH_TEST(test_config)
{
	struct ra_config c;
	struct ra_limit tmp;
	const struct ra_limit *l;
	char err[512];

	/* defaults */
	TH_CHECK(t, parse_cfg("{}", &c, err, sizeof(err)) == 0);
	TH_CHECK(t, c.finalize_async == 1 && c.contacts_max == 10);
	TH_CHECK(t,
	    c.keys.allow_p256 && c.keys.allow_p384 && !c.keys.allow_p521 &&
		c.keys.n_rsa_sizes == 3);
	TH_CHECK(t, c.authz_reuse_enabled && c.authz_reuse_percent == 100);
	TH_CHECK(t, !c.limits[RA_RL_NEW_ORDERS_PER_ACCOUNT].enabled);
	ra_config_clear(&c);

	/* unknown key named */
	TH_CHECK(t,
	    cfg_refused("{\"policy\": {\"mode\": \"private\", "
			"\"bogus\": 1}}",
		"bogus", NULL));
	TH_CHECK(t,
	    cfg_refused("{\"policy\": {\"ip_ranges\": "
			"[\"10.0.0.0/99\"]}}",
		"ip_ranges", NULL));
	TH_CHECK(t,
	    cfg_refused("{\"rate_limits\": {\"new_things\": "
			"{\"limit\": 1, \"period\": \"1h\"}}}",
		"new_things", NULL));
	TH_CHECK(t,
	    cfg_refused(
		"{\"keys\": {\"ecdsa_curves\": [\"P-192\"]}}", NULL, NULL));

	/* per-profile limit override */
	l = ra_config_limit(
	    &cfg, RA_RL_NEW_ORDERS_PER_ACCOUNT, "classic", &tmp);
	TH_CHECK(t,
	    l->enabled && l->limit == 5 && l->burst == 5 &&
		l->period_ms == 3600000);
	l = ra_config_limit(
	    &cfg, RA_RL_NEW_ORDERS_PER_ACCOUNT, "shortlived", &tmp);
	TH_CHECK(t, l->enabled && l->limit == 1 && l->burst == 2);
}

/* policy.challenges: default RFC 8555 set, names parsed, unknown refused
 * naming the entry, and the table says which types prove what. */
TH_TEST(test_challenge_config)
{
	struct ra_config c;
	const struct chal_info *c2;
	char err[512];

	TH_CHECK(t, parse_cfg("{}", &c, err, sizeof(err)) == 0);
	TH_CHECK(t, c.policy.challenges == chal_default_set());
	ra_config_clear(&c);
	TH_CHECK(t,
	    parse_cfg("{\"policy\": {\"challenges\": [\"dns-01\", "
		      "\"dns-account-01\"]}}",
		&c, err, sizeof(err)) == 0);
	TH_CHECK(t,
	    c.policy.challenges ==
		(CHAL_BIT(CHAL_DNS01) | CHAL_BIT(CHAL_DNSACCOUNT01)));
	ra_config_clear(&c);
	TH_CHECK(t,
	    cfg_refused("{\"policy\": {\"challenges\": [\"dns-01\", "
			"\"dns-02\"]}}",
		"policy.challenges[1]", "dns-02"));

	TH_CHECK(
	    t, chal_lookup("dns-account-01") == chal_info(CHAL_DNSACCOUNT01));
	TH_CHECK(t, chal_lookup("nope") == NULL);
	/* draft-ietf-acme-dns-account-label: DNS names and wildcards, no IPs */
	c2 = chal_info(CHAL_DNSACCOUNT01);
	TH_CHECK(t, chal_check(c2, IDENT_DNS, 1, err, sizeof(err)) == 0);
	TH_CHECK(t, chal_check(c2, IDENT_DNS, 0, err, sizeof(err)) == 0);
	TH_CHECK(t, chal_check(c2, IDENT_IP, 0, err, sizeof(err)) != 0);
	TH_CHECK(t, c2->needs_account_uri && !c2->offer);
	TH_CHECK(t,
	    chal_check(
		chal_info(CHAL_HTTP01), IDENT_DNS, 1, err, sizeof(err)) != 0);
	TH_CHECK(t,
	    chal_check(
		chal_info(CHAL_TLSALPN01), IDENT_IP, 0, err, sizeof(err)) == 0);
}

/*
 * RFC 9444 §2: "Ancestor Domain: a domain is an ancestor domain of a
 * subdomain if it contains that subdomain and has less labels than that
 * subdomain. A domain cannot be an ancestor domain of itself ... the
 * comparisons here are done on whole labels". Policy: never at or above a
 * configured suffix, never a blocked name, nothing while switched off.
 */
/* 1 when ra_policy_ancestor(name, anc) under the private policy gives want:
 * 1 with the normalized ancestor norm ("": not looked at), 0 with no name,
 * -1 with a malformed problem; else prints what came back and returns 0. */
static int
ancestor_is(const char *name, const char *anc, int want, const char *norm)
{
	struct problem *p = NULL;
	char *n = NULL;
	int rc = ra_policy_ancestor(&cfg.policy, &classic, name, anc, &n, &p);
	int ok = rc == want;

	if (rc == 1)
		ok = ok && n != NULL &&
		    (norm[0] == '\0' || strcmp(n, norm) == 0);
	else if (rc == 0)
		ok = ok && n == NULL;
	else
		ok = ok && p != NULL && p->type == PROB_MALFORMED;
	if (!ok)
		fprintf(stderr, "  ancestor %s of %s: %d, %s\n", anc, name, rc,
		    n != NULL ? n : (p != NULL ? p->detail : "-"));
	free(n);
	problem_free(p);
	return ok;
}

TH_TEST(test_ancestor_policy)
{
	/* name, ancestor, normalized ancestor ("": not looked at) and what
	 * ancestor_is expects */
	static const struct {
		const char *name, *anc, *norm;
		int want;
	} cases[] = {
	    {"a.b.x.test", "X.Test", "x.test", 1},
	    {"a.b.x.test", "b.x.test", "", 1},
	    /* the configured suffix itself is a policy boundary: fall back */
	    {"a.b.x.test", "test", "", 0},
	    /* below a blocked name: no */
	    {"a.bad.test", "bad.test", "", 0},
	    /* not whole labels, itself, unrelated: malformed */
	    {"ooo.x.test", "oo.x.test", "", -1},
	    {"x.test", "x.test", "", -1},
	    {"x.test", "y.test", "", -1},
	};
	json_t *l;

	cfg.policy.subdomain_auth = 1;
	for (size_t i = 0; i < NCASES(cases); i++)
		TH_CHECK(t,
		    ancestor_is(cases[i].name, cases[i].anc, cases[i].want,
			cases[i].norm));
	l = ra_policy_ancestors(&cfg.policy, &classic, "a.b.x.test");
	TH_CHECK(t,
	    json_array_size(l) == 2 &&
		strcmp(json_string_value(json_array_get(l, 0)), "b.x.test") ==
		    0 &&
		strcmp(json_string_value(json_array_get(l, 1)), "x.test") == 0);
	json_decref(l);
	/* switched off: never */
	cfg.policy.subdomain_auth = 0;
	TH_CHECK(t, ancestor_is("a.b.x.test", "x.test", 0, ""));
	l = ra_policy_ancestors(&cfg.policy, &classic, "a.b.x.test");
	TH_CHECK(t, json_array_size(l) == 0);
	json_decref(l);
}

/* draft-ietf-acme-dns-persist §10.2 test vectors (hashed URIs). */
TH_TEST(test_persist_account_uri)
{
	const char *tp = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
	char *u;

	u = ra_persist_account_uri("https://ca.example/account-hash/",
	    "example.com", tp, "https://ca.example/acct/123");
	TH_CHECK_STR(t, u,
	    "https://ca.example/account-hash/sha-256/"
	    "5SQm7n6tPh2-PlLbCKGnViTXX5z19SCN4cPGQHSk-kw");
	free(u);
	/* the domain-omitted opt-out: domain_name "*" */
	u = ra_persist_account_uri("https://ca.example/account-hash/", "*", tp,
	    "https://ca.example/acct/123");
	TH_CHECK_STR(t, u,
	    "https://ca.example/account-hash/sha-256/"
	    "NpDnSwUthQK8zCgFdefYxAdAVPnygMLbs9US6oO-5ug");
	free(u);
	TH_CHECK(t, ra_persist_account_uri("p/", "", tp, "u") == NULL);
}

/* policy.dns_persist is required with dns-persist-01 and checked (§3.1
 * name rules, §4.1 prefix); errors name the key. */
TH_TEST(test_persist_config)
{
	static const char *const bad[][2] = {
	    {"{\"policy\": {\"challenges\": [\"dns-persist-01\"]}}",
		"issuer_domain_names"},
	    {"{\"policy\": {\"challenges\": [\"dns-persist-01\"], "
	     "\"dns_persist\": {\"issuer_domain_names\": [\"CA.test\"], "
	     "\"account_hash_prefix\": \"https://ca.test/h/\"}}}",
		"issuer_domain_names[0]"},
	    {"{\"policy\": {\"challenges\": [\"dns-persist-01\"], "
	     "\"dns_persist\": {\"issuer_domain_names\": [\"ca.test\"], "
	     "\"account_hash_prefix\": \"https://ca.test/h\"}}}",
		"account_hash_prefix"},
	    {"{\"policy\": {\"dns_persist\": {\"bogus\": 1}}}", "bogus"},
	};
	struct ra_config c;
	char err[512];

	for (size_t i = 0; i < NCASES(bad); i++)
		TH_CHECK(t, cfg_refused(bad[i][0], bad[i][1], NULL));
	TH_CHECK(t,
	    parse_cfg("{\"policy\": {\"challenges\": [\"dns-persist-01\"], "
		      "\"dns_persist\": {\"issuer_domain_names\": "
		      "[\"ca.test\"], \"account_hash_prefix\": "
		      "\"https://ca.test/h/\"}}}",
		&c, err, sizeof(err)) == 0 &&
		c.policy.n_persist_names == 1 &&
		strcmp(c.policy.persist_prefix, "https://ca.test/h/") == 0);
	ra_config_clear(&c);
}

/* RFC 9799 §3.1.1: "The existing dns-01 challenge MUST NOT be used to
 * validate .onion Special-Use Domain Names"; without policy.onion they are
 * refused in both modes (onion is on the Public Suffix List). With it, v3
 * addresses (and names below them) are accepted whatever the suffix list
 * says; §2: "Version 2 addresses [tor-rend-spec-v2] MUST NOT be used". */
TH_TEST(test_onion_refused)
{
	static const char v3[] =
	    "www.bbcweb3hytmzhn5d532owbu6oqadra5z3ar726vq5kgwwn6aucdccrad."
	    "onion";
	struct ra_policy on = cfg.policy;
	json_t *chs;

	TH_CHECK(t,
	    ident_refused(&cfg.policy, &classic, "dns", v3, REJ, "RFC 9799"));
	on.onion = 1;
	on.challenges |= CHAL_BIT(CHAL_ONIONCSR01);
	TH_CHECK(t, one(&on, &classic, "dns", v3, NULL) == OK);
	TH_CHECK(t,
	    ident_refused(&on, &classic, "dns", "facebookcorewwwi.onion", REJ,
		"version 2"));
	/* only onion-csr-01 for a .onion name, never for another */
	chs = ra_new_challenges(&on, IDENT_DNS, 1, 1);
	TH_CHECK(t,
	    json_array_size(chs) == 1 &&
		strcmp(json_string_value(
			   json_object_get(json_array_get(chs, 0), "type")),
		    "onion-csr-01") == 0);
	json_decref(chs);
	chs = ra_new_challenges(&on, IDENT_DNS, 0, 0);
	TH_CHECK(t, json_array_size(chs) > 0);
	for (size_t i = 0; i < json_array_size(chs); i++)
		TH_CHECK(t,
		    strcmp(json_string_value(
			       json_object_get(json_array_get(chs, i), "type")),
			"onion-csr-01") != 0);
	json_decref(chs);
	/* config: onion-csr-01 cannot be listed without policy.onion */
	TH_CHECK(t,
	    cfg_refused("{\"policy\": {\"mode\": \"private\", "
			"\"challenges\": [\"http-01\", "
			"\"onion-csr-01\"]}}",
		"policy.challenges", "policy.onion"));
}

int
main(void)
{
	struct th t = TH_INIT;

	log_init("test_ra_policy", LOG_LEVEL_ERROR);
	load_cfg();
	th_run_tests(&t);
	ra_config_clear(&cfg);
	return th_done(&t);
}
