/* LIBS: va jose rpc core */
/*
 * test_va.c - the VA's pure parts: HTTP response parser, redirect URLs,
 * CAA evaluation, network policy, DNS message extraction, config.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "test/unit/harness.h"
#include "test/unit/onion_oracle.h"
#include "va/bpv7.h"
#include "va/va.h"
#include "va/va_int.h"

static enum va_http_rc
parse(const char *s, int eof, struct va_http_resp *r, char *err)
{
	return va_http_parse(s, strlen(s), eof, r, err, 200);
}

TH_TEST(test_http_content_length)
{
	struct va_http_resp r;
	char err[200];
	const char *s = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

	TH_CHECK(t, parse(s, 0, &r, err) == VA_HTTP_DONE);
	TH_CHECK(t, r.status == 200 && r.body_len == 5);
	TH_CHECK(t, memcmp(r.body, "hello", 5) == 0);
	va_http_resp_clear(&r);
	/* every proper prefix needs more */
	for (size_t n = 0; n < strlen(s); n++) {
		enum va_http_rc rc = va_http_parse(s, n, 0, &r, err, 200);
		TH_CHECK(t, rc == VA_HTTP_NEED_MORE);
		va_http_resp_clear(&r);
	}
	/* and with EOF it is an error (truncated) */
	TH_CHECK(t,
	    va_http_parse(s, strlen(s) - 1, 1, &r, err, 200) == VA_HTTP_ERROR);
	va_http_resp_clear(&r);
}

TH_TEST(test_http_chunked_and_close_delimited)
{
	struct va_http_resp r;
	char err[200];

	TH_CHECK(t,
	    parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n",
		0, &r, err) == VA_HTTP_DONE);
	TH_CHECK(t, r.body_len == 5 && memcmp(r.body, "abcde", 5) == 0);
	va_http_resp_clear(&r);
	TH_CHECK(t,
	    parse("HTTP/1.0 200 OK\r\n\r\nuntil close", 0, &r, err) ==
		VA_HTTP_NEED_MORE);
	va_http_resp_clear(&r);
	TH_CHECK(t,
	    parse("HTTP/1.0 200 OK\r\n\r\nuntil close", 1, &r, err) ==
		VA_HTTP_DONE);
	TH_CHECK(t, r.body_len == 11);
	va_http_resp_clear(&r);
}

TH_TEST(test_http_body_limit)
{
	/* a response (its %d: 7, zero-padded into a body), whether the body
	 * is over VA_HTTP_MAX_BODY, and the body length kept (-1: not looked
	 * at) */
	static const struct {
		const char *fmt;
		int too_large;
		long len;
	} cases[] = {
	    {"HTTP/1.1 200 OK\r\nContent-Length: 129\r\n\r\n", 1, -1},
	    {"HTTP/1.1 200 OK\r\n\r\n%0200d", 1, VA_HTTP_MAX_BODY + 1},
	    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: "
	     "chunked\r\n\r\n100\r\n%0150d",
		1, -1},
	    {"HTTP/1.1 200 OK\r\nContent-Length: 128\r\n\r\n%0128d", 0, 128},
	};
	struct va_http_resp r;
	char err[200], buf[600];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(buf, sizeof(buf), cases[i].fmt, 7);
		TH_CHECK(t, parse(buf, 0, &r, err) == VA_HTTP_DONE);
		TH_CHECK(t, r.body_too_large == cases[i].too_large);
		TH_CHECK(
		    t, cases[i].len < 0 || (long)r.body_len == cases[i].len);
		va_http_resp_clear(&r);
	}
}

TH_TEST(test_http_redirect_location)
{
	struct va_http_resp r;
	char err[200];

	TH_CHECK(t,
	    parse("HTTP/1.1 302 Found\r\nlocation:  /next  \r\n"
		  "Content-Length: 999\r\n\r\n",
		0, &r, err) == VA_HTTP_DONE);
	TH_CHECK(t, r.status == 302);
	TH_CHECK_STR(t, r.location, "/next");
	va_http_resp_clear(&r);
}

TH_TEST(test_http_rejects_malformed)
{
	static const char *const bad[] = {"HTTP/2 200 OK\r\n\r\n",
	    "HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 2000 OK\r\n\r\n",
	    "HTTP/1.1 200 OK\nContent-Length: 0\n\n",
	    "HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2"
	    "\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n"
	    "\r\n",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
	    "Content-Length: 3\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
	    "HTTP/1.1 302 OK\r\nLocation: a\r\nLocation: b\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nX: a\x01b\r\n\r\n", NULL};
	struct va_http_resp r;
	char err[200];
	int i;

	for (i = 0; bad[i] != NULL; i++) {
		enum va_http_rc rc = parse(bad[i], 0, &r, err);
		if (rc != VA_HTTP_ERROR)
			fprintf(stderr, "  case %d parsed: %d\n", i, rc);
		TH_CHECK(t, rc == VA_HTTP_ERROR);
		TH_CHECK(t, err[0] != '\0');
		TH_CHECK(t, r.location == NULL);
		va_http_resp_clear(&r);
	}
}

TH_TEST(test_http_head_limit)
{
	struct va_http_resp r;
	char err[200];
	size_t n = VA_HTTP_MAX_HEADER_BYTES + 100;
	char *buf = malloc(n + 1);

	memcpy(buf, "HTTP/1.1 200 OK\r\nX: ", 20);
	memset(buf + 20, 'a', n - 20);
	buf[n] = '\0';
	TH_CHECK(
	    t, va_http_parse(buf, n, 0, &r, err, sizeof(err)) == VA_HTTP_ERROR);
	TH_CHECK(t, strstr(err, "larger than") != NULL);
	va_http_resp_clear(&r);
	free(buf);
}

TH_TEST(test_url_parse_and_resolve)
{
	struct va_url u, v;
	char err[200];
	char *s;

	TH_CHECK(t,
	    va_url_parse("http://Example.TEST:8080/a?b#frag", NULL, &u, err,
		sizeof(err)) == 0);
	TH_CHECK_STR(t, u.host, "example.test");
	TH_CHECK(t, u.port == 8080 && !u.https && !u.host_is_ip);
	TH_CHECK_STR(t, u.path, "/a?b");
	TH_CHECK(t, va_url_parse("/c", &u, &v, err, sizeof(err)) == 0);
	s = va_url_string(&v);
	TH_CHECK_STR(t, s, "http://example.test:8080/c");
	free(s);
	va_url_clear(&v);
	TH_CHECK(
	    t, va_url_parse("https://[::1]/x", &u, &v, err, sizeof(err)) == 0);
	TH_CHECK(t,
	    v.https && v.port == 443 && v.host_is_ip && v.family == AF_INET6);
	s = va_url_string(&v);
	TH_CHECK_STR(t, s, "https://[::1]/x");
	free(s);
	va_url_clear(&v);
	TH_CHECK(
	    t, va_url_parse("https://h.test", NULL, &v, err, sizeof(err)) == 0);
	TH_CHECK_STR(t, v.path, "/");
	va_url_clear(&v);
	TH_CHECK(
	    t, va_url_parse("ftp://h.test/", NULL, &v, err, sizeof(err)) != 0);
	TH_CHECK(t, strstr(err, "only http and https") != NULL);
	TH_CHECK(t,
	    va_url_parse("http://user@h.test/", NULL, &v, err, sizeof(err)) !=
		0);
	TH_CHECK(t,
	    va_url_parse("http://h.test:0/", NULL, &v, err, sizeof(err)) != 0);
	TH_CHECK(t,
	    va_url_parse("http://h.test:99999/", NULL, &v, err, sizeof(err)) !=
		0);
	TH_CHECK(
	    t, va_url_parse("http://h test/", NULL, &v, err, sizeof(err)) != 0);
	TH_CHECK(t,
	    va_url_parse("http://h_x.test/", NULL, &v, err, sizeof(err)) != 0);
	TH_CHECK(
	    t, va_url_parse("http://[::1/", NULL, &v, err, sizeof(err)) != 0);
	TH_CHECK(
	    t, va_url_parse("relative/path", &u, &v, err, sizeof(err)) != 0);
	TH_CHECK(t, strstr(err, "relative redirect target") != NULL);
	TH_CHECK(t, va_url_parse("mailto:x@y", &u, &v, err, sizeof(err)) != 0);
	va_url_clear(&u);
}

static int
caa_ok(const struct va_caa_rr *rrs, size_t n, int wild, const char *acct,
    const char *method, char *why)
{
	char *ids[] = {"anvil.local", "other-name.example"};

	return va_caa_evaluate(rrs, n, wild, ids, 2, acct, method, why, 300);
}

TH_TEST(test_caa_evaluate)
{
	char why[300];
	struct va_caa_rr issue_us = {0, "issue", "anvil.local"};
	struct va_caa_rr issue_us2 = {0, "issue", " Other-Name.Example ; x=y"};
	struct va_caa_rr issue_le = {0, "issue", "letsencrypt.org"};
	struct va_caa_rr issue_none = {0, "issue", ";"};
	struct va_caa_rr wild_le = {0, "issuewild", "letsencrypt.org"};
	struct va_caa_rr iodef = {0, "iodef", "mailto:x@y"};
	struct va_caa_rr crit = {128, "future", "x"};
	struct va_caa_rr crit_known = {128, "issue", "anvil.local"};
	struct va_caa_rr acct = {
	    0, "issue", "anvil.local; accounturi=https://ca/acct/1"};
	struct va_caa_rr acct2 = {0, "issue",
	    "anvil.local; accounturi=a; "
	    "accounturi=a"};
	struct va_caa_rr meth = {0, "issue",
	    "anvil.local;validationmethods="
	    "dns-01,http-01"};
	struct va_caa_rr bad = {0, "issue", "anvil.local; =x"};
	struct va_caa_rr set1[] = {issue_le, issue_us};
	struct va_caa_rr set2[] = {issue_us, wild_le};
	struct va_caa_rr set3[] = {issue_us, crit};

	TH_CHECK(t, caa_ok(&issue_us, 1, 0, NULL, "http-01", why));
	TH_CHECK(t, caa_ok(&issue_us2, 1, 0, NULL, "http-01", why));
	TH_CHECK(t, !caa_ok(&issue_le, 1, 0, NULL, "http-01", why));
	TH_CHECK(t, strstr(why, "no \"issue\" record authorizes") != NULL);
	TH_CHECK(t, !caa_ok(&issue_none, 1, 0, NULL, "http-01", why));
	TH_CHECK(t, caa_ok(set1, 2, 0, NULL, "http-01", why));
	TH_CHECK(t, caa_ok(set2, 2, 0, NULL, "http-01", why));
	TH_CHECK(t, !caa_ok(set2, 2, 1, NULL, "dns-01", why));
	TH_CHECK(t, caa_ok(&issue_us, 1, 1, NULL, "dns-01", why));
	TH_CHECK(t, caa_ok(&iodef, 1, 0, NULL, "http-01", why));
	TH_CHECK(t, caa_ok(&wild_le, 1, 0, NULL, "http-01", why));
	TH_CHECK(t, !caa_ok(set3, 2, 0, NULL, "http-01", why));
	TH_CHECK(t, strstr(why, "critical") != NULL);
	TH_CHECK(t, caa_ok(&crit_known, 1, 0, NULL, "http-01", why));
	TH_CHECK(t, caa_ok(&acct, 1, 0, "https://ca/acct/1", "http-01", why));
	TH_CHECK(t, !caa_ok(&acct, 1, 0, "https://ca/acct/2", "http-01", why));
	TH_CHECK(t, strstr(why, "accounturi") != NULL);
	TH_CHECK(t, !caa_ok(&acct, 1, 0, NULL, "http-01", why));
	TH_CHECK(t, !caa_ok(&acct2, 1, 0, "a", "http-01", why));
	TH_CHECK(t, caa_ok(&meth, 1, 0, NULL, "http-01", why));
	TH_CHECK(t, !caa_ok(&meth, 1, 0, NULL, "tls-alpn-01", why));
	TH_CHECK(t, strstr(why, "validationmethods=dns-01,http-01") != NULL);
	TH_CHECK(t, !caa_ok(&bad, 1, 0, NULL, "http-01", why));
}

TH_TEST(test_netpolicy)
{
	/* an address, whether the public policy allows it (and the range its
	 * refusal names, NULL: not looked at), whether the private one with
	 * `allow` does (-1: not asked) */
	static const struct {
		const char *addr;
		int pub;
		const char *why;
		int priv;
	} cases[] = {
	    {"127.0.0.1", 0, "127.0.0.0/8", 0},
	    {"10.1.2.3", 0, NULL, 1},
	    {"8.8.8.8", 1, NULL, 0},
	    {"172.31.255.255", 0, NULL, -1},
	    {"172.32.0.1", 1, NULL, -1},
	    {"fd12::1", 0, NULL, 1},
	    {"::ffff:10.0.0.1", 0, NULL, -1},
	    {"2001:4860::8888", 1, NULL, -1},
	    {"2001:db8::1", 0, NULL, -1},
	};
	struct va_netpolicy pub, priv;
	char *allow[] = {"10.0.0.0/8", "fd00::/8"};
	char *bad[] = {"10.0.0.0/33"};
	char why[256], err[256];
	uint8_t a[16];

	TH_CHECK(t,
	    va_netpolicy_init(&pub, "public", NULL, 0, err, sizeof(err)) == 0);
	TH_CHECK(t,
	    va_netpolicy_init(&priv, "private", allow, 2, err, sizeof(err)) ==
		0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int af = strchr(cases[i].addr, ':') ? AF_INET6 : AF_INET;

		TH_CHECK(t, inet_pton(af, cases[i].addr, a) == 1);
		TH_CHECK(t,
		    va_netpolicy_allows(&pub, af, a, why, sizeof(why)) ==
			cases[i].pub);
		TH_CHECK(t,
		    cases[i].why == NULL || strstr(why, cases[i].why) != NULL);
		TH_CHECK(t,
		    cases[i].priv < 0 ||
			va_netpolicy_allows(&priv, af, a, why, sizeof(why)) ==
			    cases[i].priv);
	}
	va_netpolicy_clear(&priv);
	TH_CHECK(t,
	    va_netpolicy_init(&priv, "private", bad, 1, err, sizeof(err)) != 0);
	TH_CHECK(t, strstr(err, "10.0.0.0/33") != NULL);
	TH_CHECK(t,
	    va_netpolicy_init(&priv, "sideways", NULL, 0, err, sizeof(err)) !=
		0);
	va_netpolicy_clear(&pub);
	va_netpolicy_clear(&priv);
}

/* A DNS response: question + given answer RRs (owner names in full). */
static size_t
mkmsg(uint8_t *buf, const char *qname, int qtype, int nans,
    const char *const *owners, const int *types, const char *const *rdata,
    const int *rdlen)
{
	size_t o = 12;
	int i;
	const char *p;

	memset(buf, 0, 12);
	buf[2] = 0x81;
	buf[3] = 0x80;
	buf[5] = 1;
	buf[7] = (uint8_t)nans;
#define PUTNAME(n)                                                             \
	do {                                                                   \
		for (p = (n); *p;) {                                           \
			const char *dot = strchr(p, '.');                      \
			size_t l = dot ? (size_t)(dot - p) : strlen(p);        \
			buf[o++] = (uint8_t)l;                                 \
			memcpy(buf + o, p, l);                                 \
			o += l;                                                \
			p += l + (dot ? 1 : 0);                                \
		}                                                              \
		buf[o++] = 0;                                                  \
	} while (0)
	PUTNAME(qname);
	buf[o++] = 0;
	buf[o++] = (uint8_t)qtype;
	buf[o++] = 0;
	buf[o++] = 1;
	for (i = 0; i < nans; i++) {
		PUTNAME(owners[i]);
		buf[o++] = (uint8_t)(types[i] >> 8);
		buf[o++] = (uint8_t)types[i];
		buf[o++] = 0;
		buf[o++] = 1;
		memset(buf + o, 0, 4);
		o += 4;
		buf[o++] = (uint8_t)(rdlen[i] >> 8);
		buf[o++] = (uint8_t)rdlen[i];
		memcpy(buf + o, rdata[i], (size_t)rdlen[i]);
		o += (size_t)rdlen[i];
	}
#undef PUTNAME
	return o;
}

TH_TEST(test_dnsmsg_extract)
{
	uint8_t buf[1024];
	struct va_dns_result r;
	const char *owners[] = {"a.test", "b.test", "b.test"};
	const int types[] = {5, 16, 16};
	const char *rd[] = {"\001b\004test\000", "\003abc\002de", "\001x"};
	const int rdl[] = {8, 7, 2};
	const char *o2[] = {"c.test"};
	const int t2[] = {257};
	const char *rd2[] = {"\200\005issueanvil.local"};
	const int rdl2[] = {18};
	const char *o3[] = {"loop.test", "loop2.test"};
	const int t3[] = {5, 5};
	const char *rd3[] = {"\005loop2\004test\000", "\004loop\004test\000"};
	const int rdl3[] = {12, 11};
	const char *rd4[] = {"\001b\004test\000"};
	size_t n;

	memset(&r, 0, sizeof(r));
	n = mkmsg(buf, "a.test", 16, 3, owners, types, rd, rdl);
	TH_CHECK(t, va_dns_msg_extract(buf, (int)n, "a.test", 16, &r) == 0);
	TH_CHECK(t, r.status == VA_DNS_OK && r.ntxt == 2);
	TH_CHECK_STR(t, r.ntxt > 0 ? r.txt[0] : NULL, "abcde");
	TH_CHECK_STR(t, r.final_name, "b.test");
	va_dns_result_clear(&r);

	n = mkmsg(buf, "c.test", 257, 1, o2, t2, rd2, rdl2);
	TH_CHECK(t, va_dns_msg_extract(buf, (int)n, "c.test", 257, &r) == 0);
	TH_CHECK(t, r.ncaa == 1 && r.caa[0].flags == 128);
	TH_CHECK_STR(t, r.ncaa ? r.caa[0].tag : NULL, "issue");
	TH_CHECK_STR(t, r.ncaa ? r.caa[0].value : NULL, "anvil.local");
	va_dns_result_clear(&r);

	/* CNAME loop: an error, not a hang */
	n = mkmsg(buf, "loop.test", 1, 2, o3, t3, rd3, rdl3);
	TH_CHECK(t, va_dns_msg_extract(buf, (int)n, "loop.test", 1, &r) != 0);
	va_dns_result_clear(&r);

	/* CNAME whose target is not in the message: re-query the target */
	n = mkmsg(buf, "a.test", 1, 1, owners, types, rd4, rdl);
	TH_CHECK(t, va_dns_msg_extract(buf, (int)n, "a.test", 1, &r) == 0);
	TH_CHECK(t, r.status == VA_DNS_NODATA);
	TH_CHECK_STR(t, r.cname_target, "b.test");
	va_dns_result_clear(&r);

	/* truncated messages at every length never crash */
	n = mkmsg(buf, "a.test", 16, 3, owners, types, rd, rdl);
	for (size_t k = 0; k < n; k++) {
		va_dns_msg_extract(buf, (int)k, "a.test", 16, &r);
		va_dns_result_clear(&r);
	}
}

TH_TEST(test_config)
{
	struct va_config cfg;
	char err[512];
	json_t *o;

	o = json_pack("{s:{s:[s,s],s:s,s:i},s:s,s:{s:s}}", "dns", "resolvers",
	    "127.0.0.1:53", "[::1]:5353", "timeout", "250ms", "tries", 3,
	    "validation_timeout", "7s", "test", "sleep_max", "2s");
	TH_CHECK(t, va_config_parse(o, "va.json", &cfg, err, sizeof(err)) == 0);
	TH_CHECK(t, cfg.n_dns_resolvers == 2 && cfg.dns_timeout_ms == 250);
	TH_CHECK(t, cfg.dns_tries == 3 && cfg.validation_timeout_ms == 7000);
	TH_CHECK(t, cfg.sleep_max_ms == 2000 && cfg.http01_port == 80);
	TH_CHECK_STR(t, cfg.network_mode, "private");
	va_config_clear(&cfg);
	json_decref(o);

	o = json_pack("{s:{s:s}}", "network", "mode", "open");
	TH_CHECK(t, va_config_parse(o, "va.json", &cfg, err, sizeof(err)) != 0);
	TH_CHECK(t, strstr(err, "network.mode") != NULL);
	va_config_clear(&cfg);
	json_decref(o);

	o = json_pack("{s:i}", "http01_port", 70000);
	TH_CHECK(t, va_config_parse(o, "va.json", &cfg, err, sizeof(err)) != 0);
	TH_CHECK(t, strstr(err, "http01_port") != NULL);
	va_config_clear(&cfg);
	json_decref(o);

	setenv("PEBBLE_VA_ALWAYS_VALID", "1", 1);
	setenv("PEBBLE_VA_SLEEPTIME", "3", 1);
	o = json_object();
	TH_CHECK(t, va_config_parse(o, "va.json", &cfg, err, sizeof(err)) == 0);
	TH_CHECK(t, cfg.always_valid == 1 && cfg.sleep_max_ms == 3000);
	va_config_clear(&cfg);
	setenv("PEBBLE_VA_NOSLEEP", "1", 1);
	TH_CHECK(t, va_config_parse(o, "va.json", &cfg, err, sizeof(err)) == 0);
	TH_CHECK(t, cfg.sleep_max_ms == 0);
	va_config_clear(&cfg);
	unsetenv("PEBBLE_VA_ALWAYS_VALID");
	unsetenv("PEBBLE_VA_SLEEPTIME");
	unsetenv("PEBBLE_VA_NOSLEEP");
	json_decref(o);
}

/* va.json tkauth.x5u_allow / x5u_ca: a bad value names its key. */
TH_TEST(test_tkauth_x5u_config)
{
	static const struct {
		const char *allow, *ca, *want; /* want NULL: accepted */
	} cases[] = {
	    {"https://ta.example/certs/", NULL, NULL},
	    {"http://ta.example/certs/", NULL, "tkauth.x5u_allow"},
	    {"https://", NULL, "tkauth.x5u_allow"},
	    {"https://ta.example/", "/nonexistent/x5u-ca.pem",
		"tkauth.x5u_ca"},
	};
	struct va_config cfg;
	struct va_tkauth *tk;
	char err[512];
	json_t *o;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		o = json_pack("{s:{s:[s]}}", "tkauth", "x5u_allow",
		    cases[i].allow);
		if (cases[i].ca != NULL)
			json_object_set_new(json_object_get(o, "tkauth"),
			    "x5u_ca", json_string(cases[i].ca));
		TH_CHECK(t,
		    va_config_parse(o, "va.json", &cfg, err, sizeof(err)) == 0);
		err[0] = '\0';
		tk = va_tkauth_new(&cfg, err, sizeof(err));
		if (cases[i].want == NULL)
			TH_CHECK(t, tk != NULL);
		else
			TH_CHECK(t, tk == NULL &&
				strstr(err, cases[i].want) != NULL);
		va_tkauth_free(tk);
		va_config_clear(&cfg);
		json_decref(o);
	}
}

/*
 * draft-ietf-acme-dns-account-label §3.2: "Example DNS record for domain
 * example.org with account URL https://example.com/acme/acct/ExampleAccount:
 * _ujmmovf2vn55tgye._acme-challenge.example.org".
 */
TH_TEST(test_dns_account_label)
{
	char *l = va_dns_account_label(
	    "https://example.com/acme/acct/ExampleAccount");

	TH_CHECK_STR(t, l, "_ujmmovf2vn55tgye");
	free(l);
	/* 10 bytes = 16 base32 characters, no padding; another URL differs */
	l = va_dns_account_label("https://example.com/acme/acct/1");
	TH_CHECK(t, l != NULL && strlen(l) == 17 && l[0] == '_' &&
		strcmp(l, "_ujmmovf2vn55tgye") != 0);
	free(l);
	TH_CHECK_STR(t, chal_name(CHAL_DNSACCOUNT01),
	    "dns-account-01");
}

/*
 * draft-ietf-acme-dns-persist §4.1-4.2, §5: the record must name one of
 * our issuers and carry an accounturi of the requester; other issuers'
 * records are ignored; persistUntil in the past or not an integer, an
 * unaccepted hash algorithm, or a wildcard without policy=wildcard refuse.
 */
TH_TEST(test_persist_eval)
{
	/* a TXT record (%s: our account URI), for a wildcard or not: the
	 * result, persistUntil (-1: not looked at), the problem type and a
	 * word of its detail (-1, NULL: not looked at) */
	static const struct {
		const char *rec;
		int wildcard, rc;
		int64_t until;
		int type;
		const char *detail;
	} cases[] = {
	    {"anvil.test; accounturi=%s", 0, 0, 0, -1, NULL},
	    /* issuer compared case-insensitively, WSP around ";" and "=" */
	    {"  ANVIL.test ;accounturi = %s ; persistUntil=1900000000; x=y", 0,
		0, 1900000000, -1, NULL},
	    /* another CA's record is ignored */
	    {"other.ca; accounturi=x", 0, 1, -1, -1, NULL},
	    /* another account */
	    {"anvil.test; accounturi=https://ca.test/ah/sha-256/BBBB", 0, -1,
		-1, PROB_UNAUTHORIZED, NULL},
	    /* accounturi is mandatory */
	    {"anvil.test", 0, -1, -1, -1, NULL},
	    /* expired */
	    {"anvil.test; accounturi=%s; persistUntil=1700000000", 0, -1, -1,
		PROB_UNAUTHORIZED, "expired"},
	    /* not a base-10 integer: malformed */
	    {"anvil.test; accounturi=%s; persistUntil=17e8", 0, -1, -1,
		PROB_MALFORMED, NULL},
	    /* a hash algorithm we do not accept: malformed */
	    {"anvil.test; accounturi=https://ca.test/ah/sha-512/AAAA", 0, -1,
		-1, PROB_MALFORMED, NULL},
	    /* wildcard needs policy=wildcard (any case) */
	    {"anvil.test; accounturi=%s", 1, -1, -1, -1, NULL},
	    {"anvil.test; accounturi=%s; policy=WildCard", 1, 0, -1, -1, NULL},
	    /* a parameter without "=" is not an issue-value */
	    {"anvil.test; accounturi=%s; junk", 0, -1, -1, -1, NULL},
	};
	const char *mine = "https://ca.test/ah/sha-256/AAAA";
	json_t *ps = json_pack("{s:[s,s],s:[s],s:s}", "issuer_domain_names",
	    "anvil.test", "ca2.test", "account_uris", mine,
	    "account_hash_prefix", "https://ca.test/ah/");
	struct problem *p = NULL;
	int64_t until = 0, now = 1800000000;
	char rec[300];

	TH_CHECK(t, va_persist_check_params(ps, &p) == 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(rec, sizeof(rec), cases[i].rec, mine);
		until = 0;
		TH_CHECK(t,
		    va_persist_eval(rec, ps, cases[i].wildcard, now, &until,
			&p) == cases[i].rc);
		TH_CHECK(t, cases[i].until < 0 || until == cases[i].until);
		TH_CHECK(t,
		    cases[i].type < 0 ||
			(p != NULL && (int)p->type == cases[i].type));
		TH_CHECK(t,
		    cases[i].detail == NULL ||
			(p != NULL && strstr(p->detail, cases[i].detail)));
		problem_free(p);
		p = NULL;
	}
	json_decref(ps);
	ps = json_pack("{s:[],s:[s],s:s}", "issuer_domain_names",
	    "account_uris", mine, "account_hash_prefix", "x");
	TH_CHECK(t, va_persist_check_params(ps, &p) == -1);
	problem_free(p);
	json_decref(ps);
}

/* A config with one "mpic" object (JSON text); 0/-1 as va_config_parse,
 * err filled. */
static int
mpic_parse(const char *mpic, struct va_config *cfg, char *err, size_t errlen)
{
	json_error_t je;
	json_t *m = json_loads(mpic, 0, &je), *o = json_object();
	int rc;

	json_object_set_new(o, "mpic", m);
	rc = va_config_parse(o, "va.json", cfg, err, errlen);
	json_decref(o);
	return rc;
}

/*
 * BR 3.2.2.9 (Ballot SC-067) quorum table: with 2-5 remote perspectives
 * at most 1 may fail to corroborate, with 6 or more at most 2; an explicit
 * mpic.max_remote_failures wins. And the config is checked key by key.
 */
TH_TEST(test_mpic_quorum_and_config)
{
	/* a refused mpic section (each %s: a remote's tls block) and the key
	 * its error names */
	static const char *const bad[][2] = {
	    {"{\"role\": \"secondary\"}", "mpic.role"},
	    /* a remote does not fan out */
	    {"{\"role\": \"remote\", \"perspective\": \"eu\", "
	     "\"remotes\": [{\"perspective\": \"ap\", "
	     "\"target\": \"tcp:10.0.0.3:9\", %s}]}",
		"mpic.remotes"},
	    /* remotes are reached over mutual TLS only */
	    {"{\"remotes\": [{\"perspective\": \"eu\", "
	     "\"target\": \"unix:/tmp/x.sock\"}]}",
		"mpic.remotes[0]"},
	    /* duplicate perspective, missing name */
	    {"{\"remotes\": [{\"perspective\": \"eu\", "
	     "\"target\": \"tcp:10.0.0.2:9\", %s}, {\"perspective\": "
	     "\"eu\", \"target\": \"tcp:10.0.0.3:9\", %s}]}",
		"mpic.remotes[1].perspective"},
	    {"{\"remotes\": [{\"target\": \"tcp:1.2.3.4:9\"}]}",
		"mpic.remotes[0].perspective"},
	    /* min_regions needs regions, and no more than the remotes span */
	    {"{\"min_regions\": 2, \"remotes\": [{\"perspective\": "
	     "\"eu\", \"region\": \"RIPE\", \"target\": "
	     "\"tcp:10.0.0.2:9\", %s}, {\"perspective\": \"de\", "
	     "\"region\": \"RIPE\", \"target\": \"tcp:10.0.0.3:9\", %s}]}",
		"mpic.min_regions"},
	    {"{\"min_regions\": 1, \"remotes\": [{\"perspective\": "
	     "\"eu\", \"target\": \"tcp:10.0.0.2:9\", %s}]}",
		"mpic.remotes[0].region"},
	    /* a quorum the remotes cannot fail */
	    {"{\"max_remote_failures\": 1, \"remotes\": [{\"perspective\": "
	     "\"eu\", \"target\": \"tcp:10.0.0.2:9\", %s}]}",
		"mpic.max_remote_failures"},
	};
	struct va_config cfg;
	char err[512];
	static const char *tls =
	    "\"tls\": {\"cert\": \"c.pem\", \"key\": \"k.pem\", "
	    "\"ca\": \"ca.pem\"}";
	char buf[1024];

	TH_CHECK(t, va_mpic_allowed_failures(1, -1) == 0);
	TH_CHECK(t, va_mpic_allowed_failures(2, -1) == 1);
	TH_CHECK(t, va_mpic_allowed_failures(5, -1) == 1);
	TH_CHECK(t, va_mpic_allowed_failures(6, -1) == 2);
	TH_CHECK(t, va_mpic_allowed_failures(9, -1) == 2);
	TH_CHECK(t, va_mpic_allowed_failures(3, 0) == 0);

	/* defaults: a single-perspective primary */
	TH_CHECK(t, mpic_parse("{}", &cfg, err, sizeof(err)) == 0);
	TH_CHECK_STR(t, cfg.mpic_role, "primary");
	TH_CHECK(t, !cfg.mpic_is_remote && cfg.mpic_max_failures == -1);
	va_config_clear(&cfg);

	snprintf(buf, sizeof(buf),
	    "{\"perspective\": \"us\", \"remotes\": ["
	    "{\"perspective\": \"eu\", \"region\": \"RIPE\", "
	    "\"target\": \"tcp:10.0.0.2:9\", %s},"
	    "{\"perspective\": \"ap\", \"target\": \"tcp:10.0.0.3:9\", "
	    "%s}]}",
	    tls, tls);
	TH_CHECK(t, mpic_parse(buf, &cfg, err, sizeof(err)) == 0);
	va_config_clear(&cfg);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(buf, sizeof(buf), bad[i][0], tls, tls);
		TH_CHECK(t,
		    mpic_parse(buf, &cfg, err, sizeof(err)) != 0 &&
			strstr(err, bad[i][1]) != NULL);
		va_config_clear(&cfg);
	}
}

/*
 * device-attest-01's attObj decoder (draft-ietf-acme-device-attest §5,
 * WebAuthn §6.5.4): a well-formed object gives its members; malformed or
 * hostile CBOR is refused with a reason, never read past its end.
 */
TH_TEST(test_attobj_parse)
{
	/* {"fmt": "tpm", "attStmt": {"ver": "2.0", "alg": -7,
	 *  "x5c": [h'01'], "sig": h'0203'}} */
	static const uint8_t ok[] = {0xa2, 0x63, 'f', 'm', 't', 0x63, 't', 'p',
	    'm', 0x67, 'a', 't', 't', 'S', 't', 'm', 't', 0xa4, 0x63, 'v',
	    'e', 'r', 0x63, '2', '.', '0', 0x63, 'a', 'l', 'g', 0x26, 0x63,
	    'x', '5', 'c', 0x81, 0x41, 0x01, 0x63, 's', 'i', 'g', 0x42, 0x02,
	    0x03};
	/* malformed or hostile objects: each refused */
	static const struct {
		size_t len;
		const char *cbor;
	} hostile[] = {
	    /* not a map */
	    {2, "\x81\x01"},
	    /* an array claiming 2^32 items in 9 bytes */
	    {12, "\xa1\x61x\x9b\x00\x00\x00\x01\x00\x00\x00\x00"},
	    /* indefinite-length map */
	    {8,
		"\xbf\x63"
		"fmt\x61x\xff"},
	    /* a tag */
	    {2, "\xc1\xa0"},
	    /* duplicate "fmt" */
	    {14,
		"\xa2\x63"
		"fmt\x61x\x63"
		"fmt\x61y"},
	    /* no attStmt */
	    {7,
		"\xa1\x63"
		"fmt\x61x"},
	    /* 9 levels of nesting */
	    {13, "\xa1\x61x\x81\x81\x81\x81\x81\x81\x81\x81\x01"},
	};
	uint8_t bad[sizeof(ok) + 1];
	struct va_attobj o;
	char err[160];

	TH_CHECK(t, va_attobj_parse(ok, sizeof(ok), &o, err, sizeof(err)) == 0);
	TH_CHECK_STR(t, o.fmt, "tpm");
	TH_CHECK_STR(t, o.ver, "2.0");
	TH_CHECK(t, o.has_alg && o.alg == -7);
	TH_CHECK(t, o.n_x5c == 1 && o.x5c_len[0] == 1 && o.x5c[0][0] == 1);
	TH_CHECK(t, o.sig_len == 2 && o.sig[1] == 3);
	/* trailing byte after the object */
	memcpy(bad, ok, sizeof(ok));
	bad[sizeof(ok)] = 0x00;
	TH_CHECK(t, va_attobj_parse(bad, sizeof(bad), &o, err, sizeof(err)) != 0);
	/* truncated */
	TH_CHECK(t,
	    va_attobj_parse(ok, sizeof(ok) - 1, &o, err, sizeof(err)) != 0);
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++)
		TH_CHECK(t,
		    va_attobj_parse((const uint8_t *)hostile[i].cbor,
			hostile[i].len, &o, err, sizeof(err)) != 0);
}

/*
 * The Android Key Attestation extension (KeyDescription, WebAuthn §8.4):
 * the fields the android-key checks read, unknown-free lists, and
 * refusals of truncated, trailing, repeated and out-of-range input. The
 * vectors come from test_ext_attest_android.py's own DER encoder.
 */
TH_TEST(test_akd_parse)
{
	/* v300, StrongBox, challenge "abcd"; softwareEnforced
	 * {allApplications}; hardwareEnforced {purpose {SIGN, VERIFY},
	 * origin GENERATED, attestationIdSerial "SN1"} */
	static const uint8_t ok[] = "\x30\x3a\x02\x02\x01\x2c\x0a\x01\x02"
	    "\x02\x02\x01\x2c\x0a\x01\x02\x04\x04\x61\x62\x63\x64\x04\x00"
	    "\x30\x06\xbf\x84\x58\x02\x05\x00\x30\x1a\xa1\x08\x31\x06"
	    "\x02\x01\x02\x02\x01\x03\xbf\x85\x3e\x03\x02\x01\x00\xbf"
	    "\x85\x49\x05\x04\x03\x53\x4e\x31";
	/* hardwareEnforced with origin [702] twice */
	static const uint8_t dup[] = "\x30\x28\x02\x02\x00\xc8\x0a\x01\x01"
	    "\x02\x02\x00\xc8\x0a\x01\x01\x04\x04\x61\x62\x63\x64\x04\x00"
	    "\x30\x00\x30\x0e\xbf\x85\x3e\x03\x02\x01\x00\xbf\x85\x3e"
	    "\x03\x02\x01\x00";
	uint8_t bad[sizeof(ok)];
	struct va_akd d;
	char err[160];

	TH_CHECK(t, va_akd_parse(ok, sizeof(ok) - 1, &d, err, sizeof(err)) ==
		0);
	TH_CHECK(t, d.att_version == 300 && d.att_level == VA_AKD_STRONGBOX &&
		d.km_level == VA_AKD_STRONGBOX);
	TH_CHECK(t, d.challenge_len == 4 && memcmp(d.challenge, "abcd", 4) == 0);
	TH_CHECK(t, d.sw.all_applications && !d.tee.all_applications);
	TH_CHECK(t, d.tee.has_purpose && d.tee.n_purpose == 2 &&
		d.tee.purpose[0] == 2 && d.tee.purpose[1] == 3);
	TH_CHECK(t, d.tee.has_origin && d.tee.origin == 0 && !d.sw.has_origin);
	TH_CHECK_STR(t, d.tee.serial, "SN1");
	TH_CHECK_STR(t, d.sw.serial, "");
	/* truncated, trailing byte, repeated field */
	TH_CHECK(t, va_akd_parse(ok, sizeof(ok) - 2, &d, err, sizeof(err)) != 0);
	TH_CHECK(t, va_akd_parse(ok, sizeof(ok), &d, err, sizeof(err)) != 0);
	TH_CHECK(t, va_akd_parse(dup, sizeof(dup) - 1, &d, err, sizeof(err)) !=
		0);
	TH_CHECK(t, strstr(err, "[702]") != NULL);
	/* SecurityLevel 3 */
	memcpy(bad, ok, sizeof(ok));
	bad[8] = 3;
	TH_CHECK(t, va_akd_parse(bad, sizeof(ok) - 1, &d, err, sizeof(err)) != 0);
	/* purpose [1] as a primitive (IMPLICIT) field */
	bad[8] = 2;
	bad[34] = 0x81;
	TH_CHECK(t, va_akd_parse(bad, sizeof(ok) - 1, &d, err, sizeof(err)) != 0);
	/* the outer SEQUENCE with an indefinite (BER) length */
	TH_CHECK(t, va_akd_parse((const uint8_t *)"\x30\x80\x00\x00", 4, &d,
			err, sizeof(err)) != 0);
	TH_CHECK(t, va_android_level_parse(NULL) == VA_AKD_TEE &&
		va_android_level_parse("software") == VA_AKD_SOFTWARE &&
		va_android_level_parse("TEE") < 0);
}

/*
 * RFC 9799 §6.4: the in-band record set is evaluated "the same ... as if
 * they had been in the DNS": issue naming us and onion-csr-01 permits,
 * another CA or another method refuses, null/empty permits, a line of
 * another form refuses.
 */
TH_TEST(test_onion_caa_eval)
{
	struct va_config cfg;
	char *ids[] = {"anvil.test"};
	struct problem *p = NULL;
	const char *n = "x.onion";

	memset(&cfg, 0, sizeof(cfg));
	cfg.caa_identities = ids;
	cfg.n_caa_identities = 1;
	TH_CHECK(t, va_onion_caa_eval(&cfg, n, NULL, 0, NULL, "onion-csr-01",
			&p) == 1);
	TH_CHECK(t, va_onion_caa_eval(&cfg, n, "\n \n", 0, NULL,
			"onion-csr-01", &p) == 1);
	/* §6.4.2's example, with our identity */
	TH_CHECK(t, va_onion_caa_eval(&cfg, n,
			"caa 128 issue \"anvil.test;validationmethods="
			"onion-csr-01\"\ncaa 0 iodef \"mailto:e@example.com\"",
			0, NULL, "onion-csr-01", &p) == 1);
	TH_CHECK(t, va_onion_caa_eval(&cfg, n,
			"caa 0 issue \"acmeforonions.example\"", 0, NULL,
			"onion-csr-01", &p) == 0 &&
		p != NULL && p->type == PROB_CAA);
	problem_free(p);
	p = NULL;
	TH_CHECK(t, va_onion_caa_eval(&cfg, n,
			"caa 0 issue \"anvil.test; validationmethods=http-01\"",
			0, NULL, "onion-csr-01", &p) == 0);
	problem_free(p);
	p = NULL;
	/* issuewild for a wildcard; unquoted values; unknown critical tag */
	TH_CHECK(t, va_onion_caa_eval(&cfg, n,
			"caa 0 issue anvil.test\ncaa 0 issuewild ;", 1, NULL,
			"onion-csr-01", &p) == 0);
	problem_free(p);
	p = NULL;
	TH_CHECK(t, va_onion_caa_eval(&cfg, n,
			"caa 0 issue anvil.test\ncaa 128 future \"x\"", 0, NULL,
			"onion-csr-01", &p) == 0);
	problem_free(p);
	p = NULL;
	TH_CHECK(t, va_onion_caa_eval(&cfg, n, "0 issue \"anvil.test\"", 0,
			NULL, "onion-csr-01", &p) == 0 &&
		p != NULL && strstr(p->detail, "caa <flags>") != NULL);
	problem_free(p);
	p = NULL;
	TH_CHECK(t, va_onion_caa_eval(&cfg, n, "caa 999 issue \"anvil.test\"",
			0, NULL, "onion-csr-01", &p) == 0);
	problem_free(p);
}

/* The v3 address of an Ed25519 key (tor-spec rend-spec-v3 §6). */
static char *
onion_of(EVP_PKEY *k)
{
	uint8_t raw[32];
	size_t n = 32;
	char *b, *name;

	EVP_PKEY_get_raw_public_key(k, raw, &n);
	b = onion_addr_of(raw, 3);
	name = xasprintf("%s.onion", b);
	free(b);
	return name;
}

/* A CSR signed by k with the given nonce attributes (NULL: absent), as
 * base64url DER. */
static char *
onion_csr(EVP_PKEY *k, const uint8_t *ca, size_t cal, const uint8_t *ap,
    size_t apl)
{
	X509_REQ *r = X509_REQ_new();
	unsigned char *der = NULL;
	char *out;
	int n;

	X509_REQ_set_pubkey(r, k);
	if (ca != NULL)
		X509_REQ_add1_attr_by_txt(
		    r, "2.23.140.41", V_ASN1_OCTET_STRING, ca, (int)cal);
	if (ap != NULL)
		X509_REQ_add1_attr_by_txt(
		    r, "2.23.140.42", V_ASN1_OCTET_STRING, ap, (int)apl);
	X509_REQ_sign(r, k, NULL);
	n = i2d_X509_REQ(r, &der);
	out = b64url_encode(der, (size_t)n);
	OPENSSL_free(der);
	X509_REQ_free(r);
	return out;
}

/*
 * RFC 9799 §3.2 steps 1-5 on CSRs made here: the right one passes; another
 * key, a missing or wrong caSigningNonce, a short applicantSigningNonce and
 * garbage fail with the step named.
 */
TH_TEST(test_onion_csr_check)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	uint8_t nonce[32], ap[16];
	char *name = onion_of(k), *token, *csr, *wild;
	struct problem *p;

	memset(nonce, 7, sizeof(nonce));
	nonce[0] = 1;
	memset(ap, 9, sizeof(ap));
	ap[3] = 2;
	token = b64url_encode(nonce, sizeof(nonce));
	csr = onion_csr(k, nonce, sizeof(nonce), ap, sizeof(ap));
	TH_CHECK(t, (p = va_onion_csr_check(name, token, csr)) == NULL);
	problem_free(p);
	wild = xasprintf("www.%s", name);
	TH_CHECK(t, (p = va_onion_csr_check(wild, token, csr)) == NULL);
	problem_free(p);
	free(csr);
	/* step 2: another service's key */
	csr = onion_csr(other, nonce, sizeof(nonce), ap, sizeof(ap));
	p = va_onion_csr_check(name, token, csr);
	TH_CHECK(t, p != NULL && p->type == PROB_INCORRECT_RESPONSE &&
		strstr(p->detail, "step 2") != NULL);
	problem_free(p);
	free(csr);
	/* step 4: absent, then another nonce */
	csr = onion_csr(k, NULL, 0, ap, sizeof(ap));
	p = va_onion_csr_check(name, token, csr);
	TH_CHECK(t, p != NULL && strstr(p->detail, "caSigningNonce") != NULL);
	problem_free(p);
	free(csr);
	csr = onion_csr(k, ap, sizeof(ap), ap, sizeof(ap));
	p = va_onion_csr_check(name, token, csr);
	TH_CHECK(t, p != NULL && strstr(p->detail, "step 4") != NULL);
	problem_free(p);
	free(csr);
	/* step 5: 4 bytes are not 64 bits */
	csr = onion_csr(k, nonce, sizeof(nonce), ap, 4);
	p = va_onion_csr_check(name, token, csr);
	TH_CHECK(t, p != NULL && strstr(p->detail, "step 5") != NULL);
	problem_free(p);
	free(csr);
	/* step 1: not a CSR */
	p = va_onion_csr_check(name, token, "AAAA");
	TH_CHECK(t, p != NULL && p->type == PROB_BAD_CSR);
	problem_free(p);
	free(wild);
	free(token);
	free(name);
	EVP_PKEY_free(k);
	EVP_PKEY_free(other);
}

/*
 * RFC 6376 as RFC 8823 needs it (va/dkim.c): a message parsed from LF
 * lines (a maildir file), a relaxed/relaxed rsa-sha256 signature made and
 * verified, and each change a forger could make refused.
 */
/* The DKIM checks on field + "\n" + msg with the first `from` changed to
 * `to` (as a tampering relay would): *body_ok whether the body hash holds,
 * *sig_ok whether the signature verifies with pub. 0, or -1 when the
 * message or its DKIM-Signature does not parse. */
static int
dkim_tampered(const char *field, const char *msg, const char *from,
    const char *to, EVP_PKEY *pub, int *body_ok, int *sig_ok)
{
	char *txt = xasprintf("%s\n%s", field, msg), err[256];
	struct va_mail m;
	struct va_dkim_sig sig;
	int rc = -1;

	memcpy(strstr(txt, from), to, strlen(to));
	if (va_mail_parse(txt, strlen(txt), &m) == 0) {
		if (va_dkim_sig_parse(va_mail_find(&m, "DKIM-Signature"), &sig,
			err, sizeof(err)) == 0) {
			*body_ok = va_dkim_body_hash_ok(&m, &sig);
			*sig_ok = va_dkim_verify(
				      &m, &sig, pub, err, sizeof(err)) == 0;
			va_dkim_sig_clear(&sig);
			rc = 0;
		}
		va_mail_clear(&m);
	}
	free(txt);
	return rc;
}

TH_TEST(test_dkim_sign_verify)
{
	const char *msg_txt =
	    "From: Alice <alice@mail.test>\n"
	    "To: acme-challenge@anvil.test\n"
	    "Subject: Re: ACME:  abc\n"
	    "  def\n"
	    "Date: Mon, 7 Dec 2026 10:00:00 +0000\n"
	    "\n"
	    "-----BEGIN ACME RESPONSE-----\n"
	    "xyz  \n"
	    "-----END ACME RESPONSE-----\n"
	    "\n\n";
	EVP_PKEY *key = EVP_RSA_gen(2048), *pub = NULL;
	struct va_mail m, m2;
	struct va_dkim_sig sig;
	char err[256], *field, *signed_txt, *v, *txt;
	uint8_t *der = NULL;
	int derlen, body_ok = 1, sig_ok = 1;

	TH_CHECK(t, key != NULL);
	TH_CHECK(t, va_mail_parse(msg_txt, strlen(msg_txt), &m) == 0);
	TH_CHECK(t, m.nh == 4 && va_mail_count(&m, "subject") == 1);
	v = va_mail_value(va_mail_find(&m, "Subject"));
	TH_CHECK(t, strcmp(v, "Re: ACME:  abc  def") == 0);
	free(v);
	field = va_dkim_sign(&m, key, "mail.test", "s1",
	    "from:to:subject:date", 1796640000);
	TH_CHECK(t, field != NULL);
	va_mail_clear(&m);
	/* the key record as a domain publishes it */
	derlen = i2d_PUBKEY(key, &der);
	{
		char *b = xmalloc((size_t)derlen * 2 + 4);
		EVP_EncodeBlock((unsigned char *)b, der, derlen);
		txt = xasprintf("v=DKIM1; k=rsa; p=%s", b);
		free(b);
	}
	OPENSSL_free(der);
	pub = va_dkim_key_from_txt(txt, err, sizeof(err));
	TH_CHECK(t, pub != NULL);

	signed_txt = xasprintf("%s\n%s", field, msg_txt);
	TH_CHECK(t, va_mail_parse(signed_txt, strlen(signed_txt), &m2) == 0);
	TH_CHECK(t,
	    va_dkim_sig_parse(va_mail_find(&m2, "DKIM-Signature"), &sig, err,
		sizeof(err)) == 0);
	TH_CHECK(t, strcmp(sig.d, "mail.test") == 0 && sig.relaxed_hdr &&
		sig.relaxed_body);
	TH_CHECK(t, va_dkim_signs_header(&sig, "Subject") &&
		!va_dkim_signs_header(&sig, "Message-ID"));
	TH_CHECK(t, va_dkim_body_hash_ok(&m2, &sig));
	TH_CHECK(t, va_dkim_verify(&m2, &sig, pub, err, sizeof(err)) == 0);
	va_dkim_sig_clear(&sig);
	va_mail_clear(&m2);
	free(signed_txt);

	/* a changed Subject (another token-part1): the signature fails */
	TH_CHECK(t,
	    dkim_tampered(
		field, msg_txt, "abc", "abd", pub, &body_ok, &sig_ok) == 0 &&
		!sig_ok);
	/* a changed body (another digest): the body hash fails */
	TH_CHECK(t,
	    dkim_tampered(
		field, msg_txt, "xyz", "xyw", pub, &body_ok, &sig_ok) == 0 &&
		!body_ok);

	/* key records: revoked (empty p=), not RSA, garbage */
	TH_CHECK(t, va_dkim_key_from_txt("v=DKIM1; p=", err, sizeof(err)) ==
		NULL);
	TH_CHECK(t, va_dkim_key_from_txt("v=DKIM1; k=ed25519; p=AAAA", err,
			sizeof(err)) == NULL);
	TH_CHECK(t, va_dkim_key_from_txt("p=!!!!", err, sizeof(err)) == NULL);
	/* not a message */
	TH_CHECK(t, va_mail_parse("no colon here\n", 14, &m) != 0);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(key);
	free(txt);
	free(field);
}

/* RFC 9891 Appendix B.1, "Example Challenge Bundle" (0xFFFF record type,
 * no CRCs), encoded from its diagnostic notation. */
static const uint8_t rfc9891_challenge[] =
    "\x9f\x88\x07\x18\x22\x00\x82\x01\x6e\x2f\x2f\x61\x63\x6d\x65\x2d"
    "\x63\x6c\x69\x65\x6e\x74\x2f\x82\x01\x6e\x2f\x2f\x61\x63\x6d\x65"
    "\x2d\x73\x65\x72\x76\x65\x72\x2f\x82\x01\x00\x82\x1a\x00\x0f\x42"
    "\x40\x00\x19\xea\x60\x85\x01\x01\x00\x00\x58\x2c\x82\x19\xff\xff"
    "\xa3\x01\x50\x74\x3b\x5a\xbe\x26\x13\x3d\x45\x85\x4b\x73\x4a\xdf"
    "\xb6\x16\x7d\x02\x50\xa7\x7c\x91\x60\x55\x38\x2b\x1c\x10\x68\x74"
    "\x23\x27\x64\x5d\x89\x04\x81\x2f\xff";
/* Appendix B.2, "Example Response Bundle". */
static const uint8_t rfc9891_response[] =
    "\x9f\x88\x07\x02\x00\x82\x01\x6e\x2f\x2f\x61\x63\x6d\x65\x2d\x73"
    "\x65\x72\x76\x65\x72\x2f\x82\x01\x6e\x2f\x2f\x61\x63\x6d\x65\x2d"
    "\x63\x6c\x69\x65\x6e\x74\x2f\x82\x01\x00\x82\x1a\x00\x0f\xb7\x70"
    "\x00\x19\x75\x30\x85\x01\x01\x00\x00\x58\x4e\x82\x19\xff\xff\xa3"
    "\x01\x50\x74\x3b\x5a\xbe\x26\x13\x3d\x45\x85\x4b\x73\x4a\xdf\xb6"
    "\x16\x7d\x02\x50\xa7\x7c\x91\x60\x55\x38\x2b\x1c\x10\x68\x74\x23"
    "\x27\x64\x5d\x89\x03\x82\x2f\x58\x20\x99\x52\x0e\x24\x44\x19\x89"
    "\xef\x17\xa5\x83\x3a\x30\xc5\x52\x41\x48\x8d\x3c\x7e\xb8\x51\x19"
    "\xe1\x33\xd9\xe2\x27\x95\xc7\xad\xec\xff";

/* RFC 9891 Appendix B: the example bundles decode field by field. */
TH_TEST(test_bpv7_rfc9891_examples)
{
	/* "the full Key Authorization value is the following" */
	static const char ka[] = "p3yRYFU4KxwQaHQjJ2RdiQtPUZNY4ONIk6LxErRFEjVw."
				 "LPJNul-wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ";
	struct bp_acme b;
	uint8_t md[32];
	char err[160];

	TH_CHECK(t, bp_decode_acme(rfc9891_challenge,
			sizeof(rfc9891_challenge) - 1, &b, err,
			sizeof(err)) == 0);
	/* "flags: user-app-ack, payload-is-an-admin-record" */
	TH_CHECK(t, b.flags == 0x22 && b.crc == BP_CRC_NONE);
	TH_CHECK_STR(t, b.dest, "dtn://acme-client/");
	TH_CHECK_STR(t, b.src, "dtn://acme-server/");
	/* "timestamp: 2000-01-01T00:16:40+00:00", "lifetime: 60s" */
	TH_CHECK(t, b.created_ms == 1000000 && b.lifetime_ms == 60000);
	TH_CHECK(t, b.admin_type == 0xFFFF && b.n_algs == 1 &&
		b.algs[0] == -16 && !b.has_digest);
	TH_CHECK(t, b.id_chal_len == 16 && b.token_len == 16);

	TH_CHECK(t, bp_decode_acme(rfc9891_response,
			sizeof(rfc9891_response) - 1, &b, err,
			sizeof(err)) == 0);
	TH_CHECK(t, b.flags == 0x02 && b.lifetime_ms == 30000);
	TH_CHECK_STR(t, b.src, "dtn://acme-client/");
	TH_CHECK(t, b.has_digest && b.digest_alg_is_int &&
		b.digest_alg == -16 && b.digest_len == 32);
	/* "SHA-256 key auth. digest" of the Key Authorization */
	sha256((const uint8_t *)ka, strlen(ka), md);
	TH_CHECK(t, b.digest_len == 32 && memcmp(b.digest, md, 32) == 0);
}

/* RFC 9171 §4.2.1 CRCs (check values of the two algorithms) and an
 * encode/decode round trip with CRC-32C blocks. */
TH_TEST(test_bpv7_encode_and_crc)
{
	static const uint8_t id[16] = {1, 2, 3}, tok[16] = {9, 8, 7};
	struct bp_acme in, out;
	uint8_t buf[BP_MAX_BUNDLE];
	char err[160];
	size_t n, i;

	TH_CHECK(t, bp_crc16((const uint8_t *)"123456789", 9) == 0x906E);
	TH_CHECK(t, bp_crc32c((const uint8_t *)"123456789", 9) == 0xE3069283u);
	memset(&in, 0, sizeof(in));
	in.flags = BP_FLAG_ADMIN_RECORD | BP_FLAG_USER_APP_ACK;
	in.crc = BP_CRC_32C;
	snprintf(in.dest, sizeof(in.dest), "ipn:977000.0");
	snprintf(in.src, sizeof(in.src), "dtn://anvil-va.test/");
	in.created_ms = 123456789;
	in.lifetime_ms = 5000;
	in.admin_type = 0xFFFF;
	in.id_chal = id, in.id_chal_len = sizeof(id);
	in.token = tok, in.token_len = sizeof(tok);
	in.algs[0] = -16, in.algs[1] = -44, in.n_algs = 2;
	n = bp_encode_acme(&in, buf, sizeof(buf));
	TH_CHECK(t, n > 0 && buf[0] == 0x9f && buf[n - 1] == 0xff);
	TH_CHECK(t, bp_decode_acme(buf, n, &out, err, sizeof(err)) == 0);
	TH_CHECK_STR(t, out.dest, "ipn:977000.0");
	TH_CHECK_STR(t, out.src, "dtn://anvil-va.test/");
	TH_CHECK(t, out.crc == BP_CRC_32C && out.created_ms == 123456789 &&
		out.lifetime_ms == 5000 && out.n_algs == 2 &&
		out.algs[1] == -44 && out.id_chal_len == 16 &&
		memcmp(out.token, tok, 16) == 0);
	/* one flipped bit in the primary block (the creation time, 0x075bcd15):
	 * its CRC no longer matches */
	for (i = 0; i + 4 < n && memcmp(buf + i, "\x07\x5b\xcd\x15", 4); i++)
		;
	TH_CHECK(t, i + 4 < n);
	buf[i + 3] ^= 0x01;
	TH_CHECK(t, bp_decode_acme(buf, n, &out, err, sizeof(err)) == -1 &&
		strstr(err, "CRC mismatch") != NULL);
	/* too small a buffer: nothing */
	TH_CHECK(t, bp_encode_acme(&in, buf, 40) == 0);
}

/* Bundles the decoder must refuse, with the reason. */
TH_TEST(test_bpv7_refusals)
{
	static const struct {
		const char *hex_desc;
		const uint8_t *data;
		size_t len;
		const char *why;
	} bad[] = {
	    {"truncated", rfc9891_challenge, 40, "CBOR"},
	    {"definite outer array", (const uint8_t *)"\x82\x01\x02", 3,
		"indefinite-length"},
	    {"tag", (const uint8_t *)"\x9f\xc1\x00\xff", 4, "does not allow"},
	    {"empty bundle", (const uint8_t *)"\x9f\xff", 2, "wrong CBOR type"},
	};
	uint8_t buf[256];
	struct bp_acme b;
	char err[160];
	size_t i, n = sizeof(rfc9891_challenge) - 1;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		TH_CHECK(t, bp_decode_acme(bad[i].data, bad[i].len, &b, err,
				sizeof(err)) == -1);
		if (strstr(err, bad[i].why) == NULL)
			fprintf(stderr, "  %s: %s\n", bad[i].hex_desc, err);
		TH_CHECK(t, strstr(err, bad[i].why) != NULL);
	}
	/* data after the bundle */
	memcpy(buf, rfc9891_challenge, n);
	buf[n] = 0x00;
	TH_CHECK(t, bp_decode_acme(buf, n + 1, &b, err, sizeof(err)) == -1 &&
		strstr(err, "followed by more data") != NULL);
	/* version 6 */
	memcpy(buf, rfc9891_challenge, n);
	buf[2] = 0x06;
	TH_CHECK(t, bp_decode_acme(buf, n, &b, err, sizeof(err)) == -1 &&
		strstr(err, "version") != NULL);
	/* no payload block: the break right after the primary block */
	memcpy(buf, rfc9891_challenge, 0x35);
	buf[0x35] = 0xff;
	TH_CHECK(t, bp_decode_acme(buf, 0x36, &b, err, sizeof(err)) == -1 &&
		strstr(err, "no payload block") != NULL);
}

/* RFC 9173 Appendix A.1, "Example 1 - Simple Integrity": a BIB
 * (BIB-HMAC-SHA2, HMAC 512/512, scope 0) on the payload of ipn:2.1's
 * bundle, key 1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b. */
static const uint8_t rfc9173_a1[] =
    "\x9f\x88\x07\x00\x00\x82\x02\x82\x01\x02\x82\x02\x82\x02\x01\x82"
    "\x02\x82\x02\x01\x82\x00\x18\x28\x1a\x00\x0f\x42\x40\x85\x0b\x02"
    "\x00\x00\x58\x56\x81\x01\x01\x01\x82\x02\x82\x02\x01\x82\x82\x01"
    "\x07\x82\x03\x00\x81\x81\x82\x01\x58\x40\x3b\xdc\x69\xb3\xa3\x4a"
    "\x2b\x5d\x3a\x85\x54\x36\x8b\xd1\xe8\x08\xf6\x06\x21\x9d\x2a\x10"
    "\xa8\x46\xea\xe3\x88\x6a\xe4\xec\xc8\x3c\x4e\xe5\x50\xfd\xfb\x1c"
    "\xc6\x36\xb9\x04\xe2\xf1\xa7\x3e\x30\x3d\xcd\x4b\x6c\xce\xce\x00"
    "\x3e\x95\xe8\x16\x4d\xcc\x89\xa1\x56\xe1\x85\x01\x01\x00\x00\x58"
    "\x23\x52\x65\x61\x64\x79\x20\x74\x6f\x20\x67\x65\x6e\x65\x72\x61"
    "\x74\x65\x20\x61\x20\x33\x32\x2d\x62\x79\x74\x65\x20\x70\x61\x79"
    "\x6c\x6f\x61\x64\xff";

/* Malformed ASBs (RFC 9172 §3.6) and why they are refused. */
static const struct {
	const char *asb;
	size_t len;
	const char *why;
} bad_asb[] = {
    {"\x80\x01\x00\x82\x02\x82\x01\x00\x80", 9, "1 to 4"},
    {"\x82\x01\x01\x01\x00\x82\x02\x82\x01\x00\x80", 11, "listed twice"},
    {"\x81\x01\x01\x00\x82\x02\x82\x01\x00\x80", 10,
	"one result set per target"},
    {"\x81\x01\x01\x00\x82\x02\x82\x01\x00\x81\x80", 11, "no expected HMAC"},
    {"\x81\x01\x01\x01\x82\x02\x82\x01\x00\x81\x82\x01\x09\x81\x80", 15,
	"5, 6 or 7"},
};

/* A signed Challenge-like bundle with lifetime ms into buf, decoded
 * into *b. */
static size_t
bib_bundle(const struct bp_bib_sign *sg, uint64_t lifetime, uint8_t *buf,
    struct bp_acme *b)
{
	static const uint8_t id[16] = {1}, tok[16] = {2};
	struct bp_acme in;
	char err[200];
	size_t n;

	memset(&in, 0, sizeof(in));
	in.flags = BP_FLAG_ADMIN_RECORD | BP_FLAG_USER_APP_ACK;
	in.crc = BP_CRC_32C;
	snprintf(in.dest, sizeof(in.dest), "ipn:977000.0");
	snprintf(in.src, sizeof(in.src), "dtn://anvil-va.test/");
	in.created_ms = 42, in.lifetime_ms = lifetime, in.admin_type = 0xFFFF;
	in.id_chal = id, in.id_chal_len = sizeof(id);
	in.token = tok, in.token_len = sizeof(tok);
	in.algs[0] = -16, in.n_algs = 1;
	in.sign = sg;
	n = bp_encode_acme(&in, buf, BP_MAX_BUNDLE);
	if (n == 0 || bp_decode_acme(buf, n, b, err, sizeof(err)) != 0)
		return 0;
	return n;
}

/* RFC 9172/9173 BIBs: the RFC's example verifies, ours round-trip, a
 * changed key or primary block fails, malformed ASBs are refused. */
TH_TEST(test_bpv7_bib)
{
	static const uint8_t a1_key[16] = {0x1a, 0x2b, 0x1a, 0x2b, 0x1a, 0x2b,
	    0x1a, 0x2b, 0x1a, 0x2b, 0x1a, 0x2b, 0x1a, 0x2b, 0x1a, 0x2b};
	uint8_t key[32], buf[BP_MAX_BUNDLE], buf2[BP_MAX_BUNDLE];
	struct bp_bib_sign sg = {key, sizeof(key), 5, "dtn://anvil-va.test/"};
	struct bp_acme b, b2;
	struct bp_bib bib;
	char err[200];
	size_t i;

	TH_CHECK(t, bp_decode_acme(rfc9173_a1, sizeof(rfc9173_a1) - 1, &b, err,
			sizeof(err)) == 0);
	TH_CHECK(t, b.n_blocks == 2 && b.blocks[0].type == BP_BLOCK_BIB &&
		b.blocks[0].num == 2);
	TH_CHECK(t, bp_bib_decode(b.blocks[0].data, b.blocks[0].data_len, &bib,
			err, sizeof(err)) == 0);
	/* A.1.3.2: target 1, context 1, source ipn:2.1, SHA variant 7,
	 * scope flags 0 */
	TH_CHECK(t, bib.n_targets == 1 && bib.targets[0] == 1 &&
		bib.ctx_id == BIB_CTX_HMAC_SHA2 && bib.sha_variant == 7 &&
		bib.scope == 0 && bib.hmac_len[0] == 64);
	TH_CHECK_STR(t, bib.source, "ipn:2.1");
	TH_CHECK(t, bp_bib_verify(&b, &b.blocks[0], &bib, a1_key,
			sizeof(a1_key), err, sizeof(err)) == 0);
	TH_CHECK(t, bp_bib_verify(&b, &b.blocks[0], &bib, a1_key, 15, err,
			sizeof(err)) == -1 &&
		strstr(err, "does not verify") != NULL);

	/* ours: HMAC 256/256 on the payload, scope 7, source = the VA */
	memset(key, 0x5a, sizeof(key));
	TH_CHECK(t, bib_bundle(&sg, 5000, buf, &b) > 0);
	TH_CHECK(t, b.n_blocks == 2 && b.blocks[0].type == BP_BLOCK_BIB &&
		b.blocks[1].type == 1);
	TH_CHECK(t, bp_bib_decode(b.blocks[0].data, b.blocks[0].data_len, &bib,
			err, sizeof(err)) == 0);
	TH_CHECK(t, bib.sha_variant == 5 && bib.scope == 7 &&
		bib.n_targets == 1 && bib.targets[0] == 1 &&
		bib.hmac_len[0] == 32);
	TH_CHECK_STR(t, bib.source, "dtn://anvil-va.test/");
	TH_CHECK(t, bp_bib_verify(&b, &b.blocks[0], &bib, key, sizeof(key),
			err, sizeof(err)) == 0);
	/* the primary block is in the scope: the same BIB on a bundle with
	 * another lifetime does not verify */
	TH_CHECK(t, bib_bundle(NULL, 6000, buf2, &b2) > 0);
	TH_CHECK(t, bp_bib_verify(&b2, &b.blocks[0], &bib, key, sizeof(key),
			err, sizeof(err)) == -1);
	key[0] ^= 1;
	TH_CHECK(t, bp_bib_verify(&b, &b.blocks[0], &bib, key, sizeof(key),
			err, sizeof(err)) == -1);
	for (i = 0; i < sizeof(bad_asb) / sizeof(bad_asb[0]); i++) {
		TH_CHECK(t, bp_bib_decode((const uint8_t *)bad_asb[i].asb,
				bad_asb[i].len, &bib, err, sizeof(err)) == -1);
		if (strstr(err, bad_asb[i].why) == NULL)
			fprintf(stderr, "  asb %zu: %s\n", i, err);
		TH_CHECK(t, strstr(err, bad_asb[i].why) != NULL);
	}
}

/* va.json bp.bib errors name the bad key (RFC 9891 §4.2/§4.3 want the
 * BIBs, so bp.bib is required). */
TH_TEST(test_bp_bib_config)
{
	static const char *const base =
	    "{\"node_id\": \"dtn://anvil-va.test/\", \"routes\": {}, "
	    "\"bib\": %s}";
	static const char k32[] = "\"00112233445566778899aabbccddeeff00112233"
				  "445566778899aabbccddeeff\"";
	static const struct {
		const char *bib, *why;
	} cases[] = {
	    {"null", "bp.bib: required"},
	    {"{\"keys\": {}, \"nope\": 1}", "bp.bib.nope: unknown key"},
	    {"{\"keys\": {\"a\": {\"hex\": \"zz\"}}, \"sign_key\": \"a\"}",
		"bp.bib.keys.a: expected 16"},
	    {"{\"keys\": {\"a\": {\"hex\": \"00\", \"file\": \"x\"}}}",
		"bp.bib.keys.a: expected {"},
	    {"{\"keys\": {\"a\": {\"file\": \"/nonexistent/k\"}}}",
		"bp.bib.keys.a: /nonexistent/k"},
	    {"{\"keys\": {\"a\": {\"hex\": K}}}", "bp.bib.sign_key: required"},
	    {"{\"keys\": {\"a\": {\"hex\": K}}, \"sign_key\": \"a\", "
	     "\"hmac\": 384}",
		"RFC 9173 §3.5"},
	    {"{\"keys\": {\"a\": {\"hex\": K}}, \"sign_key\": \"a\", "
	     "\"hmac\": 100}",
		"bp.bib.hmac"},
	    {"{\"keys\": {\"a\": {\"hex\": K}}, \"sign_key\": \"a\", "
	     "\"sources\": {\"https://x/\": {\"key\": \"a\"}}}",
		"bp.bib.sources.\"https://x/\": not a Node ID"},
	    {"{\"keys\": {\"a\": {\"hex\": K}}, \"sign_key\": \"a\", "
	     "\"sources\": {\"ipn:5.0\": {\"key\": \"b\"}}}",
		"bp.bib.sources.\"ipn:5.0\": expected"},
	    {"{\"keys\": {\"a\": {\"hex\": K}}, \"sign_key\": \"a\", "
	     "\"sources\": {\"ipn:5.0\": {\"key\": \"a\", \"nodes\": "
	     "[\"ipn:5.1\"]}}}",
		"not a Node ID"},
	    {"{\"keys\": {\"a\": {\"hex\": K}}, \"sign_key\": \"a\", "
	     "\"sources\": {\"ipn:5.0\": {\"key\": \"a\", \"nodes\": "
	     "[\"*\", \"ipn:6.0\"]}}}",
		NULL},
	};
	struct va_config cfg;
	struct va_bp *bp;
	json_error_t je;
	char text[1024], bib[600], err[300], *k;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(bib, sizeof(bib), "%s", cases[i].bib);
		if ((k = strstr(bib, "K")) != NULL) {
			memmove(k + strlen(k32), k + 1, strlen(k + 1) + 1);
			memcpy(k, k32, strlen(k32));
		}
		snprintf(text, sizeof(text), base, bib);
		memset(&cfg, 0, sizeof(cfg));
		cfg.bp = json_loads(text, 0, &je);
		TH_CHECK(t, cfg.bp != NULL);
		err[0] = '\0';
		TH_CHECK(t, va_bp_new(&cfg, &bp, err, sizeof(err)) ==
			(cases[i].why == NULL ? 0 : -1));
		if (cases[i].why != NULL && strstr(err, cases[i].why) == NULL)
			fprintf(stderr, "  case %zu: %s\n", i, err);
		TH_CHECK(t, cases[i].why == NULL || strstr(err, cases[i].why));
		va_bp_free(bp);
		json_decref(cfg.bp);
	}
}

/* RFC 9174 framing: contact header, SESS_INIT, XFER_SEGMENT, XFER_ACK. */
TH_TEST(test_tcpcl_framing)
{
	uint8_t buf[256], ch[TCPCL_CONTACT_LEN];
	struct tcpcl_msg m;
	char err[120];
	size_t n;

	tcpcl_contact_encode(ch, TCPCL_CAN_TLS);
	TH_CHECK(t, memcmp(ch, "dtn!\x04\x01", 6) == 0);
	tcpcl_contact_encode(ch, 0);
	TH_CHECK(t, memcmp(ch, "dtn!\x04\x00", 6) == 0);
	TH_CHECK(t, tcpcl_contact_parse(ch, 6) == 6);
	TH_CHECK(t, tcpcl_contact_parse(ch, 3) == 0);
	TH_CHECK(t, tcpcl_contact_parse((const uint8_t *)"dtn!\x03\x00", 6) ==
		-1);
	TH_CHECK(t, tcpcl_contact_parse((const uint8_t *)"GET /", 5) == -1);
	n = tcpcl_sess_init_encode(
	    buf, sizeof(buf), 0, 8192, 8192, "dtn://anvil-va.test/");
	TH_CHECK(t, n == 25 + 20);
	TH_CHECK(t, tcpcl_msg_parse(buf, n - 1, 8192, &m, err, sizeof(err)) ==
		0);
	TH_CHECK(t, tcpcl_msg_parse(buf, n, 8192, &m, err, sizeof(err)) ==
			(long)n &&
		m.type == TCPCL_SESS_INIT && m.seg_mru == 8192 &&
		m.data_len == 20 && memcmp(m.data, "dtn://anvil-va.test/", 20) == 0);
	n = tcpcl_xfer_segment_encode(buf, sizeof(buf),
	    TCPCL_FLAG_START | TCPCL_FLAG_END, 7, (const uint8_t *)"abc", 3);
	TH_CHECK(t, tcpcl_msg_parse(buf, n, 8192, &m, err, sizeof(err)) ==
			(long)n &&
		m.type == TCPCL_XFER_SEGMENT && m.xfer_id == 7 &&
		m.data_len == 3 && memcmp(m.data, "abc", 3) == 0);
	/* a segment larger than the limit is refused, not buffered */
	TH_CHECK(t, tcpcl_msg_parse(buf, n, 2, &m, err, sizeof(err)) == -1);
	n = tcpcl_xfer_ack_encode(buf, sizeof(buf), 3, 7, 3);
	TH_CHECK(t, tcpcl_msg_parse(buf, n, 8192, &m, err, sizeof(err)) == 18 &&
		m.type == TCPCL_XFER_ACK && m.length == 3);
	buf[0] = 0x42;
	TH_CHECK(t, tcpcl_msg_parse(buf, 1, 8192, &m, err, sizeof(err)) == -1);
}

TH_MAIN(log_init("test_va", LOG_LEVEL_ERROR))
