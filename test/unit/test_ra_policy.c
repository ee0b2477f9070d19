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
static struct profile classic, dnsonly;

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

static void
load_cfg(void)
{
	char err[256];
	json_t *o = json_loads(
	    "{\"policy\": {\"mode\": \"private\", "
	    "\"dns_suffixes\": [\"test\", \"Corp.Example\"], "
	    "\"ip_ranges\": [\"10.0.0.0/8\", \"::1/128\", \"192.168.1.0/24\"],"
	    " \"blocked_names\": [\"bad.test\"], \"allow_wildcards\": true},"
	    " \"rate_limits\": {\"new_orders_per_account\": {\"limit\": 5, "
	    "\"period\": \"1h\"}, \"profiles\": {\"shortlived\": "
	    "{\"new_orders_per_account\": {\"limit\": 1, \"period\": \"1h\", "
	    "\"burst\": 2}}}}}",
	    0, NULL);

	if (ra_config_parse(o, "t.json", &cfg, err, sizeof(err)) != 0)
		fprintf(stderr, "config: %s\n", err);
	json_decref(o);
	memset(&classic, 0, sizeof(classic));
	classic.name = "classic";
	classic.allow_dns = classic.allow_ip = 1;
	classic.max_identifiers = 3;
	dnsonly = classic;
	dnsonly.name = "dnsonly";
	dnsonly.allow_ip = 0;
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
	json_t *o = json_loads("{\"policy\": {\"mode\": \"any\", "
			       "\"ip_ranges\": [\"127.0.0.0/8\"], "
			       "\"blocked_names\": [\"bad.example.com\"], "
			       "\"allow_wildcards\": true}}",
	    0, NULL);
	static const char *const good[] = {"www.example.com", "a.b.wtf",
	    "x.xyz", "*.example.org", "sub.domain.co.uk", "localhost"};
	static const char *const bad[] = {"bad..name.com", "-x.example.com",
	    "under_score.com", "x.bad.example.com", "a.*.example.com"};
	size_t i;

	memset(&c, 0, sizeof(c));
	TH_CHECK(t, ra_config_parse(o, "t.json", &c, err, sizeof(err)) == 0);
	json_decref(o);
	TH_CHECK(t, c.policy.any_name && !c.policy.public_mode);
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		TH_CHECK(t, one(&c.policy, NULL, "dns", good[i], NULL) == -1);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		TH_CHECK(t,
		    one(&c.policy, NULL, "dns", bad[i], NULL) ==
			PROB_REJECTED_IDENTIFIER);
	TH_CHECK(t, one(&c.policy, NULL, "ip", "127.0.0.7", NULL) == -1);
	TH_CHECK(t,
	    one(&c.policy, NULL, "ip", "192.0.2.1", NULL) ==
		PROB_REJECTED_IDENTIFIER);
	TH_CHECK(t,
	    one(&c.policy, NULL, "uri", "https://b.com/", NULL) ==
		PROB_UNSUPPORTED_IDENTIFIER);
	/* no policy.email.domains: no email identifier */
	TH_CHECK(t,
	    one(&c.policy, NULL, "email", "a@b.com", NULL) ==
		PROB_REJECTED_IDENTIFIER);
	ra_config_clear(&c);
	o = json_loads("{\"policy\": {\"mode\": \"anything\"}}", 0, NULL);
	memset(&c, 0, sizeof(c));
	TH_CHECK(t, ra_config_parse(o, "t.json", &c, err, sizeof(err)) != 0);
	TH_CHECK(t, strstr(err, "policy.mode") != NULL);
	json_decref(o);
	ra_config_clear(&c);
}

TH_TEST(test_private_dns)
{
	const struct ra_policy *pol = &cfg.policy;
	char *n = NULL;

	TH_CHECK(t, one(pol, &classic, "dns", "WWW.Example.TEST", &n) == -1);
	TH_CHECK_STR(t, n, "www.example.test");
	free(n);
	TH_CHECK(t, one(pol, &classic, "dns", "a.corp.example", NULL) == -1);
	/* outside the allowed suffixes, and the suffix itself */
	TH_CHECK(t,
	    one(pol, &classic, "dns", "example.com", NULL) ==
		PROB_REJECTED_IDENTIFIER);
	TH_CHECK(t,
	    one(pol, &classic, "dns", "test", NULL) ==
		PROB_REJECTED_IDENTIFIER);
	TH_CHECK(t,
	    one(pol, &classic, "dns", "corp.example", NULL) ==
		PROB_REJECTED_IDENTIFIER);
	TH_CHECK(t,
	    one(pol, &classic, "dns", "xcorp.example", NULL) ==
		PROB_REJECTED_IDENTIFIER);
	/* syntax */
	TH_CHECK(t,
	    one(pol, &classic, "dns", "a..test", NULL) ==
		PROB_REJECTED_IDENTIFIER);
	TH_CHECK(t,
	    one(pol, &classic, "dns", "-a.test", NULL) ==
		PROB_REJECTED_IDENTIFIER);
	TH_CHECK(t,
	    one(pol, &classic, "dns", "a.test.", NULL) ==
		PROB_REJECTED_IDENTIFIER);
	TH_CHECK(t,
	    one(pol, &classic, "dns", "a_b.test", NULL) ==
		PROB_REJECTED_IDENTIFIER);
	/* block list covers subdomains */
	TH_CHECK(t,
	    one(pol, &classic, "dns", "bad.test", NULL) ==
		PROB_REJECTED_IDENTIFIER);
	TH_CHECK(t,
	    one(pol, &classic, "dns", "x.bad.test", NULL) ==
		PROB_REJECTED_IDENTIFIER);
	TH_CHECK(t, one(pol, &classic, "dns", "notbad.test", NULL) == -1);
	/* unknown type */
	TH_CHECK(t,
	    one(pol, &classic, "uri", "https://b.test/", NULL) ==
		PROB_UNSUPPORTED_IDENTIFIER);
	/* a TLS profile refuses email identifiers */
	TH_CHECK(t,
	    one(pol, &classic, "email", "a@b.test", NULL) ==
		PROB_REJECTED_IDENTIFIER);
}

/* RFC 8823 email identifiers: policy.email.domains and the S/MIME profile. */
TH_TEST(test_email_policy)
{
	struct ra_config c;
	struct profile smime;
	char err[256], *n = NULL;
	json_t *o;

	memset(&c, 0, sizeof(c));
	memset(&smime, 0, sizeof(smime));
	smime.name = "smime";
	smime.allow_email = smime.eku_email_protection = 1;
	smime.max_identifiers = 1;
	o = json_loads("{\"policy\": {\"email\": {\"domains\": "
		       "[\"Mail.Test\"], \"from\": \"ca@anvil.test\"}}}",
	    0, NULL);
	TH_CHECK(t, ra_config_parse(o, "t.json", &c, err, sizeof(err)) == 0);
	json_decref(o);
	TH_CHECK(t,
	    one(&c.policy, &smime, "email", "Bob@mail.test", &n) == -1 &&
		n != NULL && strcmp(n, "Bob@mail.test") == 0);
	free(n);
	/* with email-reply-00 switched off nothing could validate the address:
	 * RFC 8555 §6.7 unsupportedIdentifier ("An identifier is of an
	 * unsupported type"), named as such instead of an SA error later */
	{
		struct ra_policy off = c.policy;
		json_t *i = ident("email", "bob@mail.test");
		struct problem *p = NULL;
		enum ident_type ty;

		off.challenges &= ~CHAL_BIT(CHAL_EMAILREPLY00);
		TH_CHECK(t, ra_policy_check_ident(&off, &smime, i, &ty, &n, &p) ==
			    -1 &&
			p->type == PROB_UNSUPPORTED_IDENTIFIER &&
			strstr(p->detail, "policy.challenges") != NULL);
		problem_free(p);
		json_decref(i);
		n = NULL;
	}
	/* not in normal form: the domain must be lowercase */
	TH_CHECK(t,
	    one(&c.policy, &smime, "email", "bob@MAIL.test", NULL) ==
		PROB_MALFORMED);
	/* another mail domain, or a subdomain, is not listed */
	TH_CHECK(t,
	    one(&c.policy, &smime, "email", "bob@other.test", NULL) ==
		PROB_REJECTED_IDENTIFIER);
	TH_CHECK(t,
	    one(&c.policy, &smime, "email", "bob@x.mail.test", NULL) ==
		PROB_REJECTED_IDENTIFIER);
	TH_CHECK(t,
	    one(&c.policy, &smime, "email", "bob", NULL) ==
		PROB_REJECTED_IDENTIFIER);
	/* the S/MIME profile refuses DNS names */
	TH_CHECK(t,
	    one(&c.policy, &smime, "dns", "a.test", NULL) ==
		PROB_REJECTED_IDENTIFIER);
	ra_config_clear(&c);
	/* email-reply-00 needs the challenge's "from" */
	memset(&c, 0, sizeof(c));
	o = json_loads("{\"policy\": {\"email\": {\"domains\": "
		       "[\"mail.test\"]}}}",
	    0, NULL);
	TH_CHECK(t, ra_config_parse(o, "t.json", &c, err, sizeof(err)) != 0);
	TH_CHECK(t, strstr(err, "policy.email.from") != NULL);
	json_decref(o);
	ra_config_clear(&c);
	memset(&c, 0, sizeof(c));
	o = json_loads("{\"policy\": {\"email\": {\"domains\": "
		       "[\"mail..test\"], \"from\": \"ca@anvil.test\"}}}",
	    0, NULL);
	TH_CHECK(t, ra_config_parse(o, "t.json", &c, err, sizeof(err)) != 0);
	TH_CHECK(t, strstr(err, "policy.email.domains[0]") != NULL);
	json_decref(o);
	ra_config_clear(&c);
}

TH_TEST(test_wildcards)
{
	struct ra_policy nowc = cfg.policy;
	char *n = NULL;

	TH_CHECK(t, one(&cfg.policy, &classic, "dns", "*.a.test", &n) == -1);
	TH_CHECK_STR(t, n, "*.a.test");
	free(n);
	TH_CHECK(t,
	    one(&cfg.policy, &classic, "dns", "a.*.test", NULL) ==
		PROB_REJECTED_IDENTIFIER);
	TH_CHECK(t,
	    one(&cfg.policy, &classic, "dns", "*a.test", NULL) ==
		PROB_REJECTED_IDENTIFIER);
	TH_CHECK(t,
	    one(&cfg.policy, &classic, "dns", "*.test", NULL) ==
		PROB_REJECTED_IDENTIFIER);
	TH_CHECK(t,
	    one(&cfg.policy, &classic, "dns", "*.bad.test", NULL) ==
		PROB_REJECTED_IDENTIFIER);
	nowc.allow_wildcards = 0;
	TH_CHECK(t,
	    one(&nowc, &classic, "dns", "*.a.test", NULL) ==
		PROB_REJECTED_IDENTIFIER);
}

TH_TEST(test_private_ip)
{
	char *n = NULL;

	TH_CHECK(t, one(&cfg.policy, &classic, "ip", "10.1.2.3", NULL) == -1);
	TH_CHECK(t, one(&cfg.policy, &classic, "ip", "::1", &n) == -1);
	TH_CHECK_STR(t, n, "::1");
	free(n);
	TH_CHECK(
	    t, one(&cfg.policy, &classic, "ip", "192.168.1.77", NULL) == -1);
	TH_CHECK(t,
	    one(&cfg.policy, &classic, "ip", "192.168.2.1", NULL) ==
		PROB_REJECTED_IDENTIFIER);
	TH_CHECK(t,
	    one(&cfg.policy, &classic, "ip", "8.8.8.8", NULL) ==
		PROB_REJECTED_IDENTIFIER);
	/* non-canonical text */
	TH_CHECK(t,
	    one(&cfg.policy, &classic, "ip", "0:0:0:0:0:0:0:1", NULL) ==
		PROB_MALFORMED);
	TH_CHECK(t,
	    one(&cfg.policy, &classic, "ip", "10.1.2", NULL) ==
		PROB_REJECTED_IDENTIFIER);
	/* profile without IPs */
	TH_CHECK(t,
	    one(&cfg.policy, &dnsonly, "ip", "10.1.2.3", NULL) ==
		PROB_REJECTED_IDENTIFIER);
}

TH_TEST(test_public_mode)
{
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
	TH_CHECK(t, one(&pub, &classic, "dns", "www.example.com", NULL) == -1);
	TH_CHECK(t, one(&pub, &classic, "dns", "example.co.uk", NULL) == -1);
	TH_CHECK(t,
	    one(&pub, &classic, "dns", "co.uk", NULL) ==
		PROB_REJECTED_IDENTIFIER);
	TH_CHECK(t,
	    one(&pub, &classic, "dns", "*.co.uk", NULL) ==
		PROB_REJECTED_IDENTIFIER);
	TH_CHECK(t, one(&pub, &classic, "dns", "*.example.com", NULL) == -1);
	TH_CHECK(t,
	    one(&pub, &classic, "dns", "host.internal-name", NULL) ==
		PROB_REJECTED_IDENTIFIER);
	TH_CHECK(t, one(&pub, &classic, "ip", "8.8.8.8", NULL) == -1);
	TH_CHECK(t,
	    one(&pub, &classic, "ip", "10.0.0.1", NULL) ==
		PROB_REJECTED_IDENTIFIER);
	TH_CHECK(t,
	    one(&pub, &classic, "ip", "127.0.0.1", NULL) ==
		PROB_REJECTED_IDENTIFIER);
	TH_CHECK(t,
	    one(&pub, &classic, "ip", "2001:db8::1", NULL) ==
		PROB_REJECTED_IDENTIFIER);
	TH_CHECK(t, one(&pub, &classic, "ip", "2606:4700::1111", NULL) == -1);
	{
		char *r =
		    ra_policy_registered_domain(&pub, "a.b.example.co.uk");
		TH_CHECK_STR(t, r, "example.co.uk");
		free(r);
		r = ra_policy_registered_domain(&pub, "*.www.example.com");
		TH_CHECK_STR(t, r, "example.com");
		free(r);
	}
	ra_psl_free(pub.psl);
}

TH_TEST(test_ident_list)
{
	json_t *in, *out = NULL;
	struct problem *p = NULL;

	in = json_pack("[{s:s,s:s},{s:s,s:s},{s:s,s:s}]", "type", "dns",
	    "value", "B.test", "type", "dns", "value", "a.test", "type", "dns",
	    "value", "b.test");
	TH_CHECK(t,
	    ra_policy_check_idents(&cfg.policy, &classic, in, &out, &p) == 0);
	TH_CHECK(t, json_array_size(out) == 2); /* deduplicated */
	TH_CHECK_STR(t,
	    json_string_value(json_object_get(json_array_get(out, 0), "value")),
	    "a.test");
	json_decref(in);
	json_decref(out);
	out = NULL;

	/* two bad identifiers -> two subproblems naming them */
	in = json_pack("[{s:s,s:s},{s:s,s:s},{s:s,s:s}]", "type", "dns",
	    "value", "ok.test", "type", "dns", "value", "evil.com", "type",
	    "ip", "value", "8.8.8.8");
	TH_CHECK(t,
	    ra_policy_check_idents(&cfg.policy, &classic, in, &out, &p) == -1);
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
	p = NULL;
	json_decref(in);

	/* too many for the profile */
	in = json_pack("[{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:s}]", "type",
	    "dns", "value", "a.test", "type", "dns", "value", "b.test", "type",
	    "dns", "value", "c.test", "type", "dns", "value", "d.test");
	TH_CHECK(t,
	    ra_policy_check_idents(&cfg.policy, &classic, in, &out, &p) == -1 &&
		p != NULL && p->type == PROB_REJECTED_IDENTIFIER);
	problem_free(p);
	p = NULL;
	json_decref(in);

	/* structural errors */
	in = json_pack("[]");
	TH_CHECK(t,
	    ra_policy_check_idents(&cfg.policy, &classic, in, &out, &p) == -1 &&
		p != NULL && p->type == PROB_MALFORMED);
	problem_free(p);
	p = NULL;
	json_decref(in);
	in = json_pack("[{s:s}]", "type", "dns");
	TH_CHECK(t,
	    ra_policy_check_idents(&cfg.policy, &classic, in, &out, &p) == -1 &&
		p != NULL && p->type == PROB_MALFORMED);
	problem_free(p);
	json_decref(in);
}

TH_TEST(test_registered_domain_private)
{
	char *r = ra_policy_registered_domain(&cfg.policy, "a.b.corp.example");

	TH_CHECK_STR(t, r, "b.corp.example");
	free(r);
	r = ra_policy_registered_domain(&cfg.policy, "x.y.z.test");
	TH_CHECK_STR(t, r, "z.test");
	free(r);
	r = ra_policy_registered_domain(&cfg.policy, "10.0.0.1");
	TH_CHECK_STR(t, r, "10.0.0.1");
	free(r);
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
	const char *v2[] = {"valid", "valid"};
	const char *vp[] = {"valid", "pending"};
	const char *vi[] = {"valid", "invalid"};
	const char *vd[] = {"deactivated", "pending"};
	const char *ve[] = {"valid", "expired"};
	const char *vr[] = {"revoked"};
	int64_t now = 1000000;

	TH_CHECK_STR(
	    t, ra_order_status("pending", now + 1, now, v2, 2), "ready");
	TH_CHECK_STR(
	    t, ra_order_status("pending", now + 1, now, vp, 2), "pending");
	TH_CHECK_STR(
	    t, ra_order_status("pending", now + 1, now, vi, 2), "invalid");
	TH_CHECK_STR(
	    t, ra_order_status("pending", now + 1, now, vd, 2), "invalid");
	TH_CHECK_STR(
	    t, ra_order_status("pending", now + 1, now, ve, 2), "invalid");
	TH_CHECK_STR(
	    t, ra_order_status("pending", now + 1, now, vr, 1), "invalid");
	TH_CHECK_STR(t, ra_order_status("pending", now, now, v2, 2), "invalid");
	TH_CHECK_STR(t, ra_order_status("processing", now - 5, now, v2, 2),
	    "processing");
	TH_CHECK_STR(t, ra_order_status("valid", now - 5, now, v2, 2), "valid");
	TH_CHECK_STR(
	    t, ra_order_status("invalid", now + 5, now, v2, 2), "invalid");
}

TH_TEST(test_config)
{
	struct ra_config c;
	struct ra_limit tmp;
	const struct ra_limit *l;
	char err[512];
	json_t *o;

	/* defaults */
	o = json_object();
	TH_CHECK(t, ra_config_parse(o, "x.json", &c, err, sizeof(err)) == 0);
	TH_CHECK(t, c.finalize_async == 1 && c.contacts_max == 10);
	TH_CHECK(t,
	    c.keys.allow_p256 && c.keys.allow_p384 && !c.keys.allow_p521 &&
		c.keys.n_rsa_sizes == 3);
	TH_CHECK(t, c.authz_reuse_enabled && c.authz_reuse_percent == 100);
	TH_CHECK(t, !c.limits[RA_RL_NEW_ORDERS_PER_ACCOUNT].enabled);
	ra_config_clear(&c);
	json_decref(o);

	/* unknown key named */
	o = json_loads(
	    "{\"policy\": {\"mode\": \"private\", \"bogus\": 1}}", 0, NULL);
	TH_CHECK(t, ra_config_parse(o, "x.json", &c, err, sizeof(err)) == -1);
	TH_CHECK(t, strstr(err, "bogus") != NULL);
	ra_config_clear(&c);
	json_decref(o);
	o = json_loads(
	    "{\"policy\": {\"ip_ranges\": [\"10.0.0.0/99\"]}}", 0, NULL);
	TH_CHECK(t, ra_config_parse(o, "x.json", &c, err, sizeof(err)) == -1);
	TH_CHECK(t, strstr(err, "ip_ranges") != NULL);
	ra_config_clear(&c);
	json_decref(o);
	o = json_loads("{\"rate_limits\": {\"new_things\": {\"limit\": 1, "
		       "\"period\": \"1h\"}}}",
	    0, NULL);
	TH_CHECK(t, ra_config_parse(o, "x.json", &c, err, sizeof(err)) == -1);
	TH_CHECK(t, strstr(err, "new_things") != NULL);
	ra_config_clear(&c);
	json_decref(o);
	o = json_loads("{\"keys\": {\"ecdsa_curves\": [\"P-192\"]}}", 0, NULL);
	TH_CHECK(t, ra_config_parse(o, "x.json", &c, err, sizeof(err)) == -1);
	ra_config_clear(&c);
	json_decref(o);

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
	json_t *o;

	o = json_object();
	TH_CHECK(t, ra_config_parse(o, "x.json", &c, err, sizeof(err)) == 0);
	TH_CHECK(t, c.policy.challenges == chal_default_set());
	ra_config_clear(&c);
	json_decref(o);
	o = json_loads("{\"policy\": {\"challenges\": [\"dns-01\", "
		       "\"dns-account-01\"]}}",
	    0, NULL);
	TH_CHECK(t, ra_config_parse(o, "x.json", &c, err, sizeof(err)) == 0);
	TH_CHECK(t,
	    c.policy.challenges ==
		(CHAL_BIT(CHAL_DNS01) | CHAL_BIT(CHAL_DNSACCOUNT01)));
	ra_config_clear(&c);
	json_decref(o);
	o = json_loads("{\"policy\": {\"challenges\": [\"dns-01\", "
		       "\"dns-02\"]}}",
	    0, NULL);
	TH_CHECK(t, ra_config_parse(o, "x.json", &c, err, sizeof(err)) == -1);
	TH_CHECK(t, strstr(err, "policy.challenges[1]") != NULL &&
		strstr(err, "dns-02") != NULL);
	ra_config_clear(&c);
	json_decref(o);

	TH_CHECK(t, chal_lookup("dns-account-01") ==
		chal_info(CHAL_DNSACCOUNT01));
	TH_CHECK(t, chal_lookup("nope") == NULL);
	/* draft-ietf-acme-dns-account-label: DNS names and wildcards, no IPs */
	c2 = chal_info(CHAL_DNSACCOUNT01);
	TH_CHECK(t, chal_check(c2, IDENT_DNS, 1, err, sizeof(err)) == 0);
	TH_CHECK(t, chal_check(c2, IDENT_DNS, 0, err, sizeof(err)) == 0);
	TH_CHECK(t, chal_check(c2, IDENT_IP, 0, err, sizeof(err)) != 0);
	TH_CHECK(t, c2->needs_account_uri && !c2->offer);
	TH_CHECK(t, chal_check(chal_info(CHAL_HTTP01), IDENT_DNS, 1, err,
			sizeof(err)) != 0);
	TH_CHECK(t, chal_check(chal_info(CHAL_TLSALPN01), IDENT_IP, 0, err,
			sizeof(err)) == 0);
}

/*
 * RFC 9444 §2: "Ancestor Domain: a domain is an ancestor domain of a
 * subdomain if it contains that subdomain and has less labels than that
 * subdomain. A domain cannot be an ancestor domain of itself ... the
 * comparisons here are done on whole labels". Policy: never at or above a
 * configured suffix, never a blocked name, nothing while switched off.
 */
TH_TEST(test_ancestor_policy)
{
	struct problem *p = NULL;
	char *n = NULL;
	json_t *l;

	cfg.policy.subdomain_auth = 1;
	TH_CHECK(t, ra_policy_ancestor(&cfg.policy, &classic, "a.b.x.test",
			"X.Test", &n, &p) == 1);
	TH_CHECK_STR(t, n, "x.test");
	free(n);
	TH_CHECK(t, ra_policy_ancestor(&cfg.policy, &classic, "a.b.x.test",
			"b.x.test", &n, &p) == 1);
	free(n);
	/* the configured suffix itself is a policy boundary: fall back */
	TH_CHECK(t, ra_policy_ancestor(&cfg.policy, &classic, "a.b.x.test",
			"test", &n, &p) == 0 && n == NULL);
	/* below a blocked name: no */
	TH_CHECK(t, ra_policy_ancestor(&cfg.policy, &classic, "a.bad.test",
			"bad.test", &n, &p) == 0 && n == NULL);
	/* not whole labels, itself, unrelated: malformed */
	TH_CHECK(t, ra_policy_ancestor(&cfg.policy, &classic, "ooo.x.test",
			"oo.x.test", &n, &p) == -1 && p->type == PROB_MALFORMED);
	problem_free(p);
	p = NULL;
	TH_CHECK(t, ra_policy_ancestor(&cfg.policy, &classic, "x.test",
			"x.test", &n, &p) == -1);
	problem_free(p);
	p = NULL;
	TH_CHECK(t, ra_policy_ancestor(&cfg.policy, &classic, "x.test",
			"y.test", &n, &p) == -1);
	problem_free(p);
	p = NULL;
	l = ra_policy_ancestors(&cfg.policy, &classic, "a.b.x.test");
	TH_CHECK(t, json_array_size(l) == 2 &&
		strcmp(json_string_value(json_array_get(l, 0)), "b.x.test") ==
		    0 &&
		strcmp(json_string_value(json_array_get(l, 1)), "x.test") == 0);
	json_decref(l);
	/* switched off: never */
	cfg.policy.subdomain_auth = 0;
	TH_CHECK(t, ra_policy_ancestor(&cfg.policy, &classic, "a.b.x.test",
			"x.test", &n, &p) == 0 && n == NULL);
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
	u = ra_persist_account_uri("https://ca.example/account-hash/", "*",
	    tp, "https://ca.example/acct/123");
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
	json_t *o;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o = json_loads(bad[i][0], 0, NULL);
		TH_CHECK(t, o != NULL &&
			ra_config_parse(o, "x.json", &c, err, sizeof(err)) == -1 &&
			strstr(err, bad[i][1]) != NULL);
		ra_config_clear(&c);
		json_decref(o);
	}
	o = json_loads("{\"policy\": {\"challenges\": [\"dns-persist-01\"], "
		       "\"dns_persist\": {\"issuer_domain_names\": "
		       "[\"ca.test\"], \"account_hash_prefix\": "
		       "\"https://ca.test/h/\"}}}",
	    0, NULL);
	TH_CHECK(t, ra_config_parse(o, "x.json", &c, err, sizeof(err)) == 0 &&
		c.policy.n_persist_names == 1 &&
		strcmp(c.policy.persist_prefix, "https://ca.test/h/") == 0);
	ra_config_clear(&c);
	json_decref(o);
}

/* RFC 9799 §3.1.1: "The existing dns-01 challenge MUST NOT be used to
 * validate .onion Special-Use Domain Names"; without policy.onion they are
 * refused in both modes (onion is on the Public Suffix List). With it, v3
 * addresses (and names below them) are accepted whatever the suffix list
 * says; §2: "Version 2 addresses [tor-rend-spec-v2] MUST NOT be used". */
TH_TEST(test_onion_refused)
{
	struct problem *p = NULL;
	struct ra_policy on = cfg.policy;
	char *n = NULL;
	enum ident_type type;
	json_t *chs, *o;
	struct ra_config c;
	char err[256];
	json_t *id = json_pack("{s:s,s:s}", "type", "dns", "value",
	    "www.bbcweb3hytmzhn5d532owbu6oqadra5z3ar726vq5kgwwn6aucdccrad."
	    "onion");
	json_t *v2 = json_pack(
	    "{s:s,s:s}", "type", "dns", "value", "facebookcorewwwi.onion");

	TH_CHECK(t, ra_policy_check_ident(&cfg.policy, &classic, id, &type,
			&n, &p) == -1 &&
		p->type == PROB_REJECTED_IDENTIFIER &&
		strstr(p->detail, "RFC 9799") != NULL);
	problem_free(p);
	p = NULL;
	on.onion = 1;
	on.challenges |= CHAL_BIT(CHAL_ONIONCSR01);
	TH_CHECK(t, ra_policy_check_ident(&on, &classic, id, &type, &n, &p) ==
		0);
	free(n);
	n = NULL;
	TH_CHECK(t, ra_policy_check_ident(&on, &classic, v2, &type, &n, &p) ==
		    -1 &&
		p->type == PROB_REJECTED_IDENTIFIER &&
		strstr(p->detail, "version 2") != NULL);
	problem_free(p);
	/* only onion-csr-01 for a .onion name, never for another */
	chs = ra_new_challenges(&on, IDENT_DNS, 1, 1);
	TH_CHECK(t, json_array_size(chs) == 1 &&
		strcmp(json_string_value(json_object_get(
			   json_array_get(chs, 0), "type")),
		    "onion-csr-01") == 0);
	json_decref(chs);
	chs = ra_new_challenges(&on, IDENT_DNS, 0, 0);
	TH_CHECK(t, json_array_size(chs) > 0);
	for (size_t i = 0; i < json_array_size(chs); i++)
		TH_CHECK(t, strcmp(json_string_value(json_object_get(
				       json_array_get(chs, i), "type")),
				"onion-csr-01") != 0);
	json_decref(chs);
	/* config: onion-csr-01 cannot be listed without policy.onion */
	o = json_pack("{s:{s:s,s:[s,s]}}", "policy", "mode", "private",
	    "challenges", "http-01", "onion-csr-01");
	memset(&c, 0, sizeof(c));
	TH_CHECK(t, ra_config_parse(o, "x.json", &c, err, sizeof(err)) == -1 &&
		strstr(err, "policy.challenges") != NULL &&
		strstr(err, "policy.onion") != NULL);
	ra_config_clear(&c);
	json_decref(o);
	json_decref(id);
	json_decref(v2);
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
