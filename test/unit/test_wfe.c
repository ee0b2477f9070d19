/* LIBS: wfe jose rpc core */
/*
 * test_wfe.c - unit tests of the WFE's pieces that need no network:
 * nonce service, routing table, URL checks, problem rendering, ACME JSON,
 * config parsing.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "test/unit/harness.h"
#include "wfe/wfe_int.h"

#define NOW 1800000000000LL /* a fixed wall clock for nonce tests */

/* A nonce service with prefix, remembering window nonces for a minute;
 * keyed with a fixed 32-byte key, or with a random one of its own. */
static struct wfe_nonce *
nonces(const char *prefix, int keyed, size_t window)
{
	static const uint8_t key[] = "0123456789abcdef0123456789abcdef";

	return wfe_nonce_new(
	    prefix, keyed ? key : NULL, keyed ? 32 : 0, window, 60000);
}

/* ---------------------------------------------------------------- nonces */

TH_TEST(test_nonce_once)
{
	struct wfe_nonce *ns = nonces("a1", 0, 1024);
	char *n = wfe_nonce_issue(ns, NOW);

	TH_CHECK(t, strncmp(n, "a1", 2) == 0);
	TH_CHECK(t, strlen(n) == 2 + 38);
	TH_CHECK(t, wfe_nonce_redeem(ns, n, NOW + 10) == WFE_NONCE_OK);
	/* accepted once only */
	TH_CHECK(t, wfe_nonce_redeem(ns, n, NOW + 20) == WFE_NONCE_UNKNOWN);
	free(n);
	wfe_nonce_free(ns);
}

TH_TEST(test_nonce_distinct)
{
	struct wfe_nonce *ns = nonces("a1", 0, 1024);
	char *a = wfe_nonce_issue(ns, NOW), *b = wfe_nonce_issue(ns, NOW);

	TH_CHECK(t, strcmp(a, b) != 0);
	/* redeem out of order */
	TH_CHECK(t,
	    wfe_nonce_redeem(ns, b, NOW) == WFE_NONCE_OK &&
		wfe_nonce_redeem(ns, a, NOW) == WFE_NONCE_OK);
	free(a);
	free(b);
	wfe_nonce_free(ns);
}

TH_TEST(test_nonce_expiry)
{
	struct wfe_nonce *ns = nonces("a1", 0, 1024);
	char *n = wfe_nonce_issue(ns, NOW);

	TH_CHECK(t, wfe_nonce_redeem(ns, n, NOW + 61000) == WFE_NONCE_EXPIRED);
	free(n);
	wfe_nonce_free(ns);
}

TH_TEST(test_nonce_window_bound)
{
	struct wfe_nonce *ns = nonces("a1", 0, 64);
	char *first = wfe_nonce_issue(ns, NOW), *last = NULL, *n;
	int i;

	/* A flood of 200 new nonces pushes the first out of the window but
	 * the memory stays at 64 bits; the newest ones still work. */
	for (i = 0; i < 200; i++) {
		n = wfe_nonce_issue(ns, NOW);
		free(last);
		last = n;
	}
	TH_CHECK(t, wfe_nonce_redeem(ns, first, NOW) == WFE_NONCE_EVICTED);
	TH_CHECK(t, wfe_nonce_redeem(ns, last, NOW) == WFE_NONCE_OK);
	free(first);
	free(last);
	wfe_nonce_free(ns);
}

/*
 * Issue 19: two instances misconfigured with one prefix and one key_file.
 * Their counters overlap (both start from the clock) and each remembers
 * issued nonces by slot, so before the fix one could accept a nonce the
 * other issued (and the nonce be used once at each). Now every tag covers
 * a random per-instance value: none of A's nonces verifies at B.
 */
TH_TEST(test_nonce_same_prefix_instances_disjoint)
{
	struct wfe_nonce *a = nonces("a1", 1, 8192);
	struct wfe_nonce *b = nonces("a1", 1, 8192);
	int i, accepted = 0, bad_mac = 0;
	char *n;

	for (i = 0; i < 6000; i++)
		free(wfe_nonce_issue(b, NOW));
	for (i = 0; i < 6000; i++) {
		n = wfe_nonce_issue(a, NOW);
		switch (wfe_nonce_redeem(b, n, NOW)) {
		case WFE_NONCE_OK:
			accepted++;
			break;
		case WFE_NONCE_BAD_MAC:
			bad_mac++;
			break;
		default:
			break;
		}
		/* still good where it was issued */
		if (i % 1000 == 0)
			TH_CHECK(
			    t, wfe_nonce_redeem(a, n, NOW) == WFE_NONCE_OK);
		free(n);
	}
	TH_CHECK(t, accepted == 0);
	TH_CHECK(t, bad_mac == 6000);
	wfe_nonce_free(a);
	wfe_nonce_free(b);
}

TH_TEST(test_nonce_prefix_and_key)
{
	struct wfe_nonce *a = nonces("a1", 1, 1024);
	struct wfe_nonce *b = nonces("b2", 1, 1024);
	struct wfe_nonce *c = nonces("a1", 0, 1024);
	char *n = wfe_nonce_issue(a, NOW);

	/* another instance (prefix) refuses it: the load balancer must route
	 * by prefix */
	TH_CHECK(t, wfe_nonce_redeem(b, n, NOW) == WFE_NONCE_WRONG_PREFIX);
	/* same prefix, other key: forged */
	TH_CHECK(t, wfe_nonce_redeem(c, n, NOW) == WFE_NONCE_BAD_MAC);
	TH_CHECK(t, wfe_nonce_redeem(a, n, NOW) == WFE_NONCE_OK);
	free(n);
	wfe_nonce_free(a);
	wfe_nonce_free(b);
	wfe_nonce_free(c);
}

TH_TEST(test_nonce_restart)
{
	struct wfe_nonce *a = nonces("a1", 1, 1024);
	struct wfe_nonce *a2 = NULL;
	char *n = wfe_nonce_issue(a, NOW);

	wfe_nonce_free(a);
	/* Same key after a restart: the nonce was not issued by this process
	 * (its tag covers the old process's instance value), so a replay is
	 * impossible. */
	a2 = nonces("a1", 1, 1024);
	TH_CHECK(t, wfe_nonce_redeem(a2, n, NOW) == WFE_NONCE_BAD_MAC);
	free(n);
	wfe_nonce_free(a2);
}

TH_TEST(test_nonce_malformed)
{
	struct wfe_nonce *ns = nonces("a1", 0, 1024);
	char *n = wfe_nonce_issue(ns, NOW);

	TH_CHECK(t, wfe_nonce_redeem(ns, NULL, NOW) == WFE_NONCE_MALFORMED);
	TH_CHECK(t, wfe_nonce_redeem(ns, "", NOW) == WFE_NONCE_MALFORMED);
	TH_CHECK(t, wfe_nonce_redeem(ns, "a1xyz", NOW) == WFE_NONCE_MALFORMED);
	/* one letter changed for another of the alphabet: a nonce the
	 * server never issued (the letter chosen against the issued one,
	 * saved before '+' overwrites it) */
	char was = n[10];
	n[10] = '+';
	TH_CHECK(t, wfe_nonce_redeem(ns, n, NOW) == WFE_NONCE_MALFORMED);
	n[10] = was == 'A' ? 'B' : 'A';
	TH_CHECK(t, wfe_nonce_redeem(ns, n, NOW) != WFE_NONCE_OK);
	free(n);
	TH_CHECK(t, wfe_nonce_new("", NULL, 0, 1024, 1000) == NULL);
	TH_CHECK(t, wfe_nonce_new("a/b", NULL, 0, 1024, 1000) == NULL);
	TH_CHECK(t, wfe_nonce_new("a1", NULL, 0, 10, 1000) == NULL);
	TH_CHECK_STR(t, wfe_nonce_result_name(WFE_NONCE_EXPIRED), "expired");
	wfe_nonce_free(ns);
}

/* --------------------------------------------------------------- routing */

TH_TEST(test_route_find)
{
	/* a path, whether a route serves it, its name (NULL: not looked at),
	 * methods it must allow, its exact methods (0: not looked at) and the
	 * tail after a prefix (NULL: not looked at) */
	static const struct {
		const char *path;
		int found;
		const char *name;
		unsigned has, exact;
		const char *tail;
	} cases[] = {
	    {"/directory", 1, "directory", WFE_HEAD, 0, NULL},
	    {"/acme/acct/12/orders", 1, "account", 0, 0, "12/orders"},
	    {"/acme/chall/5/7", 1, "challenge", 0, 0, "5/7"},
	    {"/acme/cert/abcd/1", 1, "cert", WFE_GET | WFE_POST, 0, NULL},
	    /* order, authz, challenge are POST only: GET is a 405 */
	    {"/acme/order/1", 1, NULL, 0, WFE_POST, NULL},
	    /* a prefix route needs something after the prefix */
	    {"/acme/acct/", 0, NULL, 0, 0, NULL},
	    {"/directoryx", 0, NULL, 0, 0, NULL},
	    {"/nope", 0, NULL, 0, 0, NULL},
	    {NULL, 0, NULL, 0, 0, NULL},
	    {"/ocsp", 1, NULL, 0, WFE_POST, NULL},
	    {"/ocsp/MEow", 1, NULL, WFE_GET, 0, NULL},
	    {"/crl/0011223344556677/0.crl", 1, "crl", 0, 0, NULL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *tail = NULL;
		const struct wfe_route *r =
		    wfe_route_find(cases[i].path, &tail);

		TH_CHECK(t, (r != NULL) == cases[i].found);
		if (r == NULL)
			continue;
		TH_CHECK(t,
		    cases[i].name == NULL ||
			strcmp(r->name, cases[i].name) == 0);
		TH_CHECK(t, (r->methods & cases[i].has) == cases[i].has);
		TH_CHECK(
		    t, cases[i].exact == 0 || r->methods == cases[i].exact);
		TH_CHECK(t,
		    cases[i].tail == NULL ||
			(tail != NULL && strcmp(tail, cases[i].tail) == 0));
	}
}

TH_TEST(test_methods_allow)
{
	char buf[32];

	TH_CHECK_STR(t,
	    wfe_methods_allow(WFE_GET | WFE_HEAD | WFE_POST, buf, sizeof(buf)),
	    "GET, HEAD, POST");
	TH_CHECK_STR(t, wfe_methods_allow(WFE_POST, buf, sizeof(buf)), "POST");
}

/* ------------------------------------------------------------------ URLs */

TH_TEST(test_url_check)
{
	/* the JWS "url", the path requested, and whether they match for a
	 * client that reached us as `seen` */
	static const struct {
		const char *url, *path;
		int ok;
	} cases[] = {
	    {"https://localhost:4431/acme/new-order", "/acme/new-order", 1},
	    {"https://localhost:4432/acme/new-order", "/acme/new-order", 0},
	    {"http://localhost:4431/acme/new-order", "/acme/new-order", 0},
	    {"https://example.com/acme/new-order", "/acme/new-order", 0},
	    {"https://localhost:4431/acme/new-order/", "/acme/new-order", 0},
	    {"https://localhost:4431/acme/new-acct", "/acme/new-order", 0},
	    {"https://localhost:4431/acme/acct/1/orders?cursor=5",
		"/acme/acct/1/orders?cursor=5", 1},
	    {"https://localhost:4431/acme/acct/1/orders",
		"/acme/acct/1/orders?cursor=5", 0},
	    {NULL, "/", 0},
	};
	const char *seen = "https://localhost:4431";

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		TH_CHECK(t,
		    !!wfe_url_check(cases[i].url, seen, cases[i].path) ==
			cases[i].ok);
}

TH_TEST(test_url_bases)
{
	/* Host and trusted proto header of a request: the base it was seen
	 * at (NULL: not looked at) and the base URLs are built from */
	static const struct {
		const char *host, *proto, *seen, *base;
	} cases[] = {
	    {"localhost:4431", NULL, "https://localhost:4431",
		"https://localhost:4431"},
	    {"127.0.0.1:4431", NULL, NULL, "https://127.0.0.1:4431"},
	    /* an unknown Host is compared as seen, but never echoed in URLs */
	    {"evil.example", NULL, "https://evil.example",
		"https://localhost:4431"},
	    {"a b/c", NULL, NULL, "https://localhost:4431"},
	    /* behind a TLS terminator: the trusted header says http */
	    {"localhost:4431", "http", "http://localhost:4431", NULL},
	};
	struct wfe_config cfg;
	char *hosts[] = {"127.0.0.1:4431", NULL};

	memset(&cfg, 0, sizeof(cfg));
	cfg.base_url = "https://localhost:4431";
	cfg.tls_cert = "x";
	cfg.hosts = hosts;
	cfg.nhosts = 1;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *seen = NULL, *base = NULL;

		wfe_url_bases(
		    &cfg, cases[i].host, cases[i].proto, &seen, &base);
		if (cases[i].seen != NULL)
			TH_CHECK_STR(t, seen, cases[i].seen);
		if (cases[i].base != NULL)
			TH_CHECK_STR(t, base, cases[i].base);
		free(seen);
		free(base);
	}
}

TH_TEST(test_parse_id)
{
	/* refused ids: zero, leading zeros, signs, junk, empty, over 2^53 */
	static const char *const bad[] = {"0", "012", "-1", "1a", "",
	    "99999999999999999", "9007199254740992"};
	int64_t v = 0;
	char *a;

	TH_CHECK(t, wfe_parse_id("42", 2, &v) == 0 && v == 42);
	TH_CHECK(t, wfe_parse_id("42/orders", 2, &v) == 0 && v == 42);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		TH_CHECK(t, wfe_parse_id(bad[i], strlen(bad[i]), &v) != 0);
	a = wfe_url_authority("https://a.b:1/x");
	TH_CHECK_STR(t, a, "a.b:1");
	free(a);
	TH_CHECK(t, wfe_url_authority("ftp://a") == NULL);
}

/* -------------------------------------------------------------- problems */

static struct wfe *
fake_wfe(void)
{
	struct wfe *w = xcalloc(1, sizeof(*w));

	jose_policy_default(&w->policy);
	return w;
}

static const char *
hdr(const struct wfe_req *r, const char *name)
{
	for (size_t i = 0; i < r->nhdrs; i++)
		if (strcmp(r->hdrs[i].name, name) == 0)
			return r->hdrs[i].value;
	return NULL;
}

static void
req_clear(struct wfe_req *r)
{
	size_t i;

	free(r->out);
	for (i = 0; i < r->nhdrs; i++) {
		free(r->hdrs[i].name);
		free(r->hdrs[i].value);
	}
	memset(r, 0, sizeof(*r));
}

/* Replies a problem of type with detail to a request to /x of w; the
 * problem document, parsed (the caller decrefs it). */
static json_t *
render(
    struct wfe_req *r, struct wfe *w, enum prob_type type, const char *detail)
{
	r->w = w;
	r->path = "/x";
	wfe_reply_prob(r, type, detail);
	return json_loads(r->out, 0, NULL);
}

TH_TEST(test_problem_render)
{
	struct wfe *w = fake_wfe();
	struct wfe_req r;
	json_t *j;

	memset(&r, 0, sizeof(r));
	j = render(&r, w, PROB_BAD_NONCE, "stale");
	TH_CHECK(t, r.status == 400 && r.want_nonce && r.done);
	TH_CHECK_STR(t, r.ctype, "application/problem+json");
	TH_CHECK_STR(t, json_string_value(json_object_get(j, "type")),
	    "urn:ietf:params:acme:error:badNonce");
	TH_CHECK_STR(
	    t, json_string_value(json_object_get(j, "detail")), "stale");
	TH_CHECK(t, json_integer_value(json_object_get(j, "status")) == 400);
	json_decref(j);
	req_clear(&r);

	/* internal notFound -> malformed 404 */
	j = render(&r, w, PROB_NOT_FOUND, "no such order");
	TH_CHECK(t, r.status == 404);
	TH_CHECK_STR(t, json_string_value(json_object_get(j, "type")),
	    "urn:ietf:params:acme:error:malformed");
	json_decref(j);
	req_clear(&r);

	/* unavailable -> 503 with Retry-After, never a bare 500 */
	r.w = w;
	r.path = "/x";
	wfe_add_header(&r, "Location", "https://x/");
	wfe_reply_prob(&r, PROB_UNAVAILABLE, "sa unavailable");
	TH_CHECK(t, r.status == 503);
	TH_CHECK(t, hdr(&r, "Retry-After") != NULL);
	TH_CHECK(t, hdr(&r, "Location") == NULL); /* success headers dropped */
	req_clear(&r);

	/* badSignatureAlgorithm lists the algorithms */
	j = render(&r, w, PROB_BAD_SIGNATURE_ALGORITHM, "HS256");
	TH_CHECK(t, json_is_array(json_object_get(j, "algorithms")));
	json_decref(j);
	req_clear(&r);

	/* rate limits keep their Retry-After; subproblems survive */
	{
		struct problem *p =
		    problem_new(PROB_REJECTED_IDENTIFIER, "two bad names");
		problem_add_sub(p,
		    problem_new(PROB_REJECTED_IDENTIFIER, "blocked"), "dns",
		    "a.example");
		r.w = w;
		r.path = "/x";
		wfe_reply_problem(&r, p);
		j = json_loads(r.out, 0, NULL);
		TH_CHECK(
		    t, json_array_size(json_object_get(j, "subproblems")) == 1);
		json_decref(j);
		req_clear(&r);
		p = problem_new(PROB_RATE_LIMITED, "slow down");
		p->retry_after = 42;
		r.w = w;
		r.path = "/x";
		wfe_reply_problem(&r, p);
		TH_CHECK(t, r.status == 429);
		TH_CHECK_STR(t, hdr(&r, "Retry-After"), "42");
		req_clear(&r);
	}
	free(w);
}

/* ------------------------------------------------------------- ACME JSON */

enum acme_obj { ORDER, AUTHZ, ACCOUNT };

/* The string member m of object o, or NULL. */
static const char *
str_of(const json_t *o, const char *m)
{
	return json_string_value(json_object_get(o, m));
}

/* The ACME JSON the WFE makes for r of the SA object in sa_text (the
 * caller decrefs it). */
static json_t *
acme_json(struct wfe_req *r, enum acme_obj kind, const char *sa_text)
{
	json_t *o = json_loads(sa_text, 0, NULL), *j;

	if (o == NULL)
		abort();
	j = kind == ORDER   ? wfe_acme_order(r, o)
	    : kind == AUTHZ ? wfe_acme_authz(r, o)
			    : wfe_acme_account(r, o);
	json_decref(o);
	return j;
}

TH_TEST(test_acme_json)
{
	struct wfe_req r;
	struct wfe w;
	json_t *j;

	memset(&r, 0, sizeof(r));
	r.base = "https://localhost:4431";
	/* the RA's directory meta, cached: delegation (RFC 9115) is on */
	memset(&w, 0, sizeof(w));
	pthread_mutex_init(&w.lock, NULL);
	w.ra_meta = json_pack("{s:{s:b}}", "meta", "delegation-enabled", 1);
	w.ra_meta_at_ms = time_mono_ms();
	r.w = &w;
	j = acme_json(&r, ORDER,
	    "{\"id\":9,\"account_id\":1,\"status\":\"valid\","
	    "\"expires\":\"2026-12-01T00:00:00Z\",\"identifiers\":[{\"type\":"
	    "\"dns\",\"value\":\"a.test\"}],\"profile\":\"classic\","
	    "\"authz_ids\":[5,6],\"certificate_serial\":\"7f01\","
	    "\"error\":{\"type\":\"badCSR\",\"detail\":\"x\",\"status\":400}}");
	TH_CHECK_STR(
	    t, str_of(j, "finalize"), "https://localhost:4431/acme/finalize/9");
	TH_CHECK_STR(t, str_of(j, "certificate"),
	    "https://localhost:4431/acme/cert/7f01");
	TH_CHECK_STR(t,
	    json_string_value(
		json_array_get(json_object_get(j, "authorizations"), 1)),
	    "https://localhost:4431/acme/authz/6");
	TH_CHECK_STR(t,
	    json_string_value(
		json_object_get(json_object_get(j, "error"), "type")),
	    "urn:ietf:params:acme:error:badCSR");
	TH_CHECK(t, json_object_get(j, "account_id") == NULL);
	json_decref(j);

	j = acme_json(&r, AUTHZ,
	    "{\"id\":5,\"account_id\":1,\"status\":\"pending\","
	    "\"identifier\":{\"type\":\"dns\",\"value\":\"a.test\"},"
	    "\"wildcard\":true,\"expires\":\"2026-12-01T00:00:00Z\","
	    "\"challenges\":[{\"id\":11,\"type\":\"dns-01\",\"token\":\"tok\","
	    "\"status\":\"pending\"}]}");
	TH_CHECK(t, json_is_true(json_object_get(j, "wildcard")));
	TH_CHECK_STR(t,
	    json_string_value(json_object_get(
		json_array_get(json_object_get(j, "challenges"), 0), "url")),
	    "https://localhost:4431/acme/chall/5/11");
	json_decref(j);

	j = acme_json(&r, ACCOUNT,
	    "{\"id\":3,\"status\":\"valid\",\"contact\":"
	    "[\"mailto:a@b.test\"],\"tos_agreed\":true,\"key\":{"
	    "\"kty\":\"EC\"}}");
	TH_CHECK_STR(t, str_of(j, "orders"),
	    "https://localhost:4431/acme/acct/3/orders");
	/* RFC 9115 §2.3.1.1, only while delegation-enabled (§6.3) */
	TH_CHECK_STR(t, str_of(j, "delegations"),
	    "https://localhost:4431/acme/delegations/3");
	TH_CHECK(t, json_is_true(json_object_get(j, "termsOfServiceAgreed")));
	json_decref(j);

	/* RFC 9115 §2.3.2: a delegated order shows its delegation and "an
	 * authorizations array with zero elements" (the owner's stay hidden) */
	j = acme_json(&r, ORDER,
	    "{\"id\":4,\"account_id\":2,\"status\":\"ready\","
	    "\"authz_ids\":[5],\"delegation_id\":8}");
	TH_CHECK(t, json_array_size(json_object_get(j, "authorizations")) == 0);
	TH_CHECK_STR(t, str_of(j, "delegation"),
	    "https://localhost:4431/acme/delegation/8");
	json_decref(j);
	json_decref(w.ra_meta);
	pthread_mutex_destroy(&w.lock);
}

/* ---------------------------------------------------------------- config */

static int
parse_cfg(const char *text, struct wfe_config *cfg, char *err, size_t n)
{
	json_t *o = json_loads(text, 0, NULL);
	int rc = wfe_config_parse(o, "wfe.json", cfg, err, n);

	json_decref(o);
	return rc;
}

#define CLIENTS                                                                \
	"\"ra\":{\"target\":\"unix:/x\"},\"sa\":{\"target\":\"unix:/y\"},"     \
	"\"ca\":{\"target\":\"unix:/z\"}"

TH_TEST(test_config)
{
	static const struct {
		const char *members; /* after base_url and CLIENTS: refused */
		const char *names;   /* in the error (NULL: not looked at) */
	} refused[] = {
	    {",\"bogus\":1", "bogus"},
	    {",\"nonce\":{\"prefix\":\"bad/prefix\"}", "nonce.prefix"},
	    {",\"test\":{\"faults\":{\"internal_percent\":500}}",
		"internal_percent"},
	    {",\"management\":{\"addr\":\"127.0.0.1\"}", NULL},
	    {",\"jose\":{\"rsa_min_bits\":512}", "jose.rsa_min_bits"},
	};
	struct wfe_config cfg;
	char err[256] = "";

	TH_CHECK(t,
	    parse_cfg("{\"base_url\":\"https://localhost:4431/\"," CLIENTS
		      ",\"tls\":null,\"nonce\":{\"prefix\":\"b7\","
		      "\"lifetime\":\"10m\"}}",
		&cfg, err, sizeof(err)) == 0);
	TH_CHECK_STR(t, cfg.base_url, "https://localhost:4431");
	TH_CHECK_STR(t, cfg.nonce_prefix, "b7");
	TH_CHECK(t, cfg.nonce_lifetime_ms == 600000);
	TH_CHECK(t, cfg.threads == 8 && cfg.max_body == 65536);
	TH_CHECK(t, cfg.tls_cert == NULL);
	wfe_config_clear(&cfg);

	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		char *text =
		    xasprintf("{\"base_url\":\"https://x\"," CLIENTS "%s}",
			refused[i].members);

		int named;

		err[0] = '\0';
		TH_CHECK(t, parse_cfg(text, &cfg, err, sizeof(err)) != 0);
		named = refused[i].names == NULL ||
		    strstr(err, refused[i].names) != NULL;
		TH_CHECK(t, named);
		if (!named)
			fprintf(stderr, "  %s: %s\n", text, err);
		wfe_config_clear(&cfg);
		free(text);
	}
	/* a base URL with a path; no base URL */
	TH_CHECK(t,
	    parse_cfg("{\"base_url\":\"https://x/acme\"," CLIENTS "}", &cfg,
		err, sizeof(err)) != 0);
	TH_CHECK(t, strstr(err, "base_url") != NULL);
	wfe_config_clear(&cfg);
	TH_CHECK(t, parse_cfg("{" CLIENTS "}", &cfg, err, sizeof(err)) != 0);
	wfe_config_clear(&cfg);
	TH_CHECK(t,
	    parse_cfg("{\"base_url\":\"https://x\"," CLIENTS
		      ",\"management\":{\"port\":4432}}",
		&cfg, err, sizeof(err)) == 0);
	TH_CHECK(t, cfg.mgmt_port == 4432);
	TH_CHECK(t, cfg.jose_rsa_min_bits == 2048 && !cfg.jose_allow_es512);
	TH_CHECK_STR(t, cfg.mgmt_addr, "127.0.0.1");
	wfe_config_clear(&cfg);
	TH_CHECK(t,
	    parse_cfg("{\"base_url\":\"https://x\"," CLIENTS
		      ",\"jose\":{\"allow_es512\":true}}",
		&cfg, err, sizeof(err)) == 0 &&
		cfg.jose_allow_es512 == 1);
	wfe_config_clear(&cfg);
}

/* The kid look-up cache: hits are copies, entries expire after the ttl,
 * forget drops an entry at once and a load that started before the forget
 * cannot put the old account back. */
TH_TEST(test_acct_cache)
{
	struct wfe_acct_cache *c = wfe_acct_cache_new(8, 1000);
	json_t *a = json_pack("{s:I,s:s}", "id", (json_int_t)42, "status",
	    "valid");
	json_t *got;
	uint64_t gen = 0, gen2 = 0;

	TH_CHECK(t, wfe_acct_cache_new(8, 0) == NULL);
	TH_CHECK(t, c != NULL);
	if (c == NULL) {
		json_decref(a);
		return;
	}
	TH_CHECK(t, wfe_acct_cache_get(c, 42, 0, &gen) == NULL);
	wfe_acct_cache_put(c, 42, gen, a, 0);
	got = wfe_acct_cache_get(c, 42, 999, &gen2);
	TH_CHECK(t, got != NULL && got != a && json_equal(got, a));
	json_decref(got);
	/* expired after ttl */
	TH_CHECK(t, wfe_acct_cache_get(c, 42, 1000, &gen2) == NULL);
	/* 50 shares 42's slot (50 % 8 == 42 % 8) but is another account */
	TH_CHECK(t, wfe_acct_cache_get(c, 50, 0, &gen2) == NULL);
	/* forget: gone at once */
	wfe_acct_cache_put(c, 42, gen2, a, 0);
	wfe_acct_cache_forget(c, 42);
	TH_CHECK(t, wfe_acct_cache_get(c, 42, 1, &gen2) == NULL);
	/* a load that read its generation before the forget is not kept */
	(void)wfe_acct_cache_get(c, 42, 1, &gen);
	wfe_acct_cache_forget(c, 42);
	wfe_acct_cache_put(c, 42, gen, a, 1);
	TH_CHECK(t, wfe_acct_cache_get(c, 42, 2, &gen2) == NULL);
	/* NULL cache (account_cache.ttl 0s): every call is a no-op */
	TH_CHECK(t, wfe_acct_cache_get(NULL, 42, 0, &gen) == NULL);
	wfe_acct_cache_put(NULL, 42, gen, a, 0);
	wfe_acct_cache_forget(NULL, 42);
	wfe_acct_cache_free(c);
	json_decref(a);
}

/*
 * The account key cache answers the same key jwk_parse imports, and never
 * an older key for a replaced one (RFC 8555 §7.3.5: after a key change the
 * old key must no longer work): with one slot, A then B then A each come
 * back as themselves. A JWK that does not import is refused every time.
 */
TH_TEST(test_acct_cache_key)
{
	struct wfe_acct_cache *c = wfe_acct_cache_new(1, 1000);
	EVP_PKEY *a = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *b = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	json_t *ja = jwk_from_pkey(a), *jb = jwk_from_pkey(b);
	json_t *bad = json_pack("{s:s, s:s}", "kty", "EC", "crv", "P-256");
	struct jose_policy pol;
	struct jwk *ref_a = NULL, *ref_b = NULL, *k;
	struct problem *p = NULL;
	const json_t *seq[] = {ja, ja, jb, ja, jb};
	size_t i;

	jose_policy_permissive(&pol);
	TH_CHECK(t, c != NULL && ja != NULL && jb != NULL &&
		jwk_parse(ja, &pol, &ref_a, &p) == 0 &&
		jwk_parse(jb, &pol, &ref_b, &p) == 0);
	for (i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
		k = NULL;
		TH_CHECK(t, wfe_acct_cache_key(c, seq[i], &k, &p) == 0);
		TH_CHECK(t, k != NULL &&
			jwk_equal(k, seq[i] == ja ? ref_a : ref_b) &&
			!jwk_equal(k, seq[i] == ja ? ref_b : ref_a) &&
			strcmp(k->thumbprint,
			    (seq[i] == ja ? ref_a : ref_b)->thumbprint) == 0);
		jwk_free(k);
	}
	for (i = 0; i < 2; i++) {
		k = NULL;
		TH_CHECK(t, wfe_acct_cache_key(c, bad, &k, &p) == -1 &&
			k == NULL && p != NULL);
		problem_free(p);
		p = NULL;
	}
	k = NULL;
	TH_CHECK(t, wfe_acct_cache_key(NULL, jb, &k, &p) == 0 &&
		jwk_equal(k, ref_b));
	jwk_free(k);
	jwk_free(ref_a);
	jwk_free(ref_b);
	json_decref(bad);
	json_decref(ja);
	json_decref(jb);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
	wfe_acct_cache_free(c);
}

TH_MAIN(log_init("test_wfe", LOG_LEVEL_ERROR))
