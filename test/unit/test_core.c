/* LIBS: core */
/* test_core.c - unit tests of the core library. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "core/core.h"
#include "test/unit/harness.h"
#include "test/unit/onion_oracle.h"

TH_TEST(test_b64url_vectors)
{
	/* RFC 4648 §10 vectors, unpadded, URL alphabet. */
	static const char *in[] = {
	    "", "f", "fo", "foo", "foob", "fooba", "foobar"};
	static const char *out[] = {
	    "", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
	size_t i;

	for (i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		char *e = b64url_encode((const uint8_t *)in[i], strlen(in[i]));
		uint8_t *d;
		size_t dl;

		TH_CHECK_STR(t, e, out[i]);
		TH_CHECK(t, b64url_decode(e, strlen(e), &d, &dl) == 0);
		TH_CHECK(t, dl == strlen(in[i]) && memcmp(d, in[i], dl) == 0);
		free(e);
		free(d);
	}
	{
		uint8_t bin[] = {0xfb, 0xff, 0xfe};
		char *e = b64url_encode(bin, 3);

		TH_CHECK_STR(t, e, "-__-");
		free(e);
	}
}

/* RFC 4648 §10 test vectors (lowercase, padding dropped). */
TH_TEST(test_base32_vectors)
{
	static const char *const in[] = {"", "f", "fo", "foo", "foob",
	    "fooba", "foobar"};
	static const char *const out[] = {"", "my", "mzxq", "mzxw6",
	    "mzxw6yq", "mzxw6ytb", "mzxw6ytboi"};
	uint8_t buf[16];
	size_t i, n;
	char *e;

	for (i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		e = base32_encode_lower((const uint8_t *)in[i], strlen(in[i]));
		TH_CHECK_STR(t, e, out[i]);
		free(e);
		TH_CHECK(t, base32_decode(out[i], buf, sizeof(buf), &n) == 0 &&
			n == strlen(in[i]) && memcmp(buf, in[i], n) == 0);
	}
	/* either case decodes; bad characters, non-zero trailing bits and
	 * overflow are refused */
	TH_CHECK(t, base32_decode("MZXW6YTBOI", buf, sizeof(buf), &n) == 0 &&
		n == 6 && memcmp(buf, "foobar", 6) == 0);
	TH_CHECK(t, base32_decode("mzxw6ytb0i", buf, sizeof(buf), &n) == -1);
	TH_CHECK(t, base32_decode("mz", buf, sizeof(buf), &n) == -1);
	TH_CHECK(t, base32_decode("m", buf, sizeof(buf), &n) == -1);
	TH_CHECK(t, base32_decode("mzxw6ytboi", buf, 5, &n) == -1);
}

TH_TEST(test_b64url_strict)
{
	static const char *bad[] = {
	    "Zg==", "Zm9v+", "Zm9v/", "Zm 9v", "Z", "Zh", "Zm9vY\n", "Zm9vYg="};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t *d = NULL;
		size_t dl;

		TH_CHECK(
		    t, b64url_decode(bad[i], strlen(bad[i]), &d, &dl) == -1);
		TH_CHECK(t, d == NULL);
	}
}

TH_TEST(test_hex)
{
	uint8_t b[] = {0x00, 0xab, 0xff};
	char *h = hex_encode(b, 3);
	uint8_t *d;
	size_t dl;

	TH_CHECK_STR(t, h, "00abff");
	TH_CHECK(t,
	    hex_decode("00ABff", &d, &dl) == 0 && dl == 3 &&
		memcmp(d, b, 3) == 0);
	free(d);
	TH_CHECK(t, hex_decode("abc", &d, &dl) == -1);
	TH_CHECK(t, hex_decode("zz", &d, &dl) == -1);
	free(h);
}

TH_TEST(test_durations)
{
	int64_t ms;

	TH_CHECK(
	    t, duration_parse_ms("90d", &ms) == 0 && ms == 90LL * 86400000);
	TH_CHECK(t, duration_parse_ms("1h30m", &ms) == 0 && ms == 5400000);
	TH_CHECK(t, duration_parse_ms("250ms", &ms) == 0 && ms == 250);
	TH_CHECK(t, duration_parse_ms("10s", &ms) == 0 && ms == 10000);
	TH_CHECK(t, duration_parse_ms("0", &ms) == 0 && ms == 0);
	TH_CHECK(t, duration_parse_ms("", &ms) == -1);
	TH_CHECK(t, duration_parse_ms("10", &ms) == -1);
	TH_CHECK(t, duration_parse_ms("h", &ms) == -1);
	TH_CHECK(t, duration_parse_ms("5w", &ms) == -1);
	TH_CHECK(t, duration_parse_ms("99999999999999999999d", &ms) == -1);
}

TH_TEST(test_rfc3339)
{
	time_t v;
	char buf[32];

	TH_CHECK(t, time_parse_rfc3339("2026-11-28T15:00:00Z", &v) == 0);
	TH_CHECK_STR(
	    t, time_fmt_rfc3339(v, buf, sizeof(buf)), "2026-11-28T15:00:00Z");
	TH_CHECK(
	    t, time_parse_rfc3339("2026-11-28T16:00:00.123+01:00", &v) == 0);
	TH_CHECK_STR(
	    t, time_fmt_rfc3339(v, buf, sizeof(buf)), "2026-11-28T15:00:00Z");
	TH_CHECK(t, time_parse_rfc3339("2026-11-28 15:00:00Z", &v) == -1);
	TH_CHECK(t, time_parse_rfc3339("2026-13-28T15:00:00Z", &v) == -1);
	TH_CHECK(t, time_parse_rfc3339("2026-11-28T15:00:00", &v) == -1);
	TH_CHECK(t, time_parse_rfc3339("2026-11-28T15:00:00Zjunk", &v) == -1);
}

TH_TEST(test_dns_names)
{
	char err[128], *n;
	static const char *bad[] = {"", "a..b", "-a.com", "a-.com", "a.com.",
	    "a_b.com", "1.2.3.4", "exa mple.com", "*.*.a.com", "a.*.com",
	    "foo*.com", "*.", "\xc3\xa9.com"};
	size_t i;

	n = ident_dns_normalize("WWW.Example.COM", 0, err, sizeof(err));
	TH_CHECK_STR(t, n, "www.example.com");
	free(n);
	n = ident_dns_normalize("*.example.com", 1, err, sizeof(err));
	TH_CHECK_STR(t, n, "*.example.com");
	free(n);
	TH_CHECK(t,
	    ident_dns_normalize("*.example.com", 0, err, sizeof(err)) == NULL);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = ident_dns_normalize(bad[i], 1, err, sizeof(err));
		if (n != NULL)
			fprintf(stderr, "  accepted bad name %s\n", bad[i]);
		TH_CHECK(t, n == NULL && err[0] != '\0');
		free(n);
	}
	{
		char lbl[70], name[300];

		memset(lbl, 'a', 64);
		lbl[64] = 0;
		snprintf(name, sizeof(name), "%s.com", lbl);
		TH_CHECK(
		    t, ident_dns_normalize(name, 0, err, sizeof(err)) == NULL);
		lbl[63] = 0;
		snprintf(name, sizeof(name), "%s.com", lbl);
		n = ident_dns_normalize(name, 0, err, sizeof(err));
		TH_CHECK(t, n != NULL);
		free(n);
	}
}

/*
 * RFC 8555 §7.1.4: "Servers MUST verify any identifier values that begin
 * with the ASCII-Compatible Encoding prefix "xn--" as defined in RFC5890
 * are properly encoded." Good and bad A-labels, checked against Python's
 * RFC 3492 codec.
 */
TH_TEST(test_punycode_a_labels)
{
	static const char *const good[] = {"xn--bcher-kva.example",
	    "xn--fiqs8s.example", "www.xn--p1ai", "xn--mnchen-3ya.de",
	    "*.xn--bcher-kva.example"};
	static const char *const bad[] = {"xn--99999999999.example",
	    "xn--zzzzzzzzzzzz.example", "xn--abc-9.example", "xn--9.example",
	    "a.xn--9.example"};
	char err[128], *n;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		n = ident_dns_normalize(good[i], 1, err, sizeof(err));
		if (n == NULL)
			fprintf(stderr, "  refused %s: %s\n", good[i], err);
		TH_CHECK(t, n != NULL);
		free(n);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = ident_dns_normalize(bad[i], 1, err, sizeof(err));
		if (n != NULL)
			fprintf(stderr, "  accepted %s\n", bad[i]);
		TH_CHECK(t, n == NULL && strstr(err, "Punycode") != NULL);
		free(n);
	}
}

/*
 * The shared challenge table: RFC 8555 §7.1.3 "a wildcard domain name
 * ... MUST contain only dns-01"; RFC 8738 §7 "The "dns-01" challenge
 * type MUST NOT be used to validate IP identifiers".
 */
TH_TEST(test_challenge_table)
{
	const struct chal_info *c;
	char err[160];
	int i;

	for (i = 0; i < CHAL__MAX; i++) {
		c = chal_info((enum chal_type)i);
		TH_CHECK(t, c != NULL && c->type == (enum chal_type)i);
		TH_CHECK(t, chal_lookup(c->name) == c);
		TH_CHECK_STR(t, chal_name((enum chal_type)i), c->name);
	}
	TH_CHECK(t, chal_info(CHAL__MAX) == NULL);
	TH_CHECK(t, chal_lookup("http-02") == NULL);
	TH_CHECK(t, chal_lookup(NULL) == NULL);
	c = chal_lookup("dns-01");
	TH_CHECK(t, c != NULL && c->type == CHAL_DNS01);
	TH_CHECK(t, chal_check(c, IDENT_DNS, 1, err, sizeof(err)) == 0);
	TH_CHECK(t, chal_check(c, IDENT_IP, 0, err, sizeof(err)) != 0);
	TH_CHECK(t, strstr(err, "dns-01") != NULL && strstr(err, "RFC 8738"));
	c = chal_lookup("http-01");
	TH_CHECK(t, chal_check(c, IDENT_IP, 0, err, sizeof(err)) == 0);
	TH_CHECK(t, chal_check(c, IDENT_DNS, 0, err, sizeof(err)) == 0);
	TH_CHECK(t, chal_check(c, IDENT_DNS, 1, err, sizeof(err)) != 0);
	TH_CHECK(t, strstr(err, "only be validated with dns-01") != NULL);
	c = chal_lookup("tls-alpn-01");
	TH_CHECK(t, chal_check(c, IDENT_IP, 0, err, sizeof(err)) == 0);
	TH_CHECK(t, chal_check(c, IDENT_DNS, 1, err, sizeof(err)) != 0);
	TH_CHECK(t, chal_check(c, IDENT__MAX, 0, err, sizeof(err)) != 0);
}

/*
 * One text form for serials: leading zero bytes dropped, left-padded to 36
 * digits; RFC 5280 §4.1.2.2 "Conforming CAs MUST NOT use serialNumber
 * values longer than 20 octets". ARI CertIDs (RFC 9773 §4.1) carry the
 * serial as base64url of its DER integer bytes.
 */
TH_TEST(test_serial_hex)
{
	uint8_t b[22];
	char *h;

	memset(b, 0, sizeof(b));
	b[17] = 0x2a;
	h = serial_hex(b, 18);
	TH_CHECK_STR(t, h, "00000000000000000000000000000000002a");
	free(h);
	b[0] = 0x00;
	b[1] = 0x81; /* DER sign byte in front of a high-bit serial */
	h = serial_hex(b, 19);
	TH_CHECK_STR(t, h, "810000000000000000000000000000002a00");
	free(h);
	memset(b, 0xff, sizeof(b));
	h = serial_hex(b, 20);
	TH_CHECK(t, h != NULL && strlen(h) == 40);
	free(h);
	TH_CHECK(t, serial_hex(b, 21) == NULL);
	TH_CHECK(t, serial_hex(b, 0) == NULL);
	/* "AKI.serial": serial 0x00 0x87 0x65 0x43 0x21 */
	h = serial_hex_of_certid("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
	TH_CHECK_STR(t, h, "000000000000000000000000000087654321");
	free(h);
	TH_CHECK(t, serial_hex_of_certid("nodot") == NULL);
	TH_CHECK(t, serial_hex_of_certid(".AIdlQyE") == NULL);
	TH_CHECK(t, serial_hex_of_certid("a.b.c") == NULL);
	TH_CHECK(t, serial_hex_of_certid("a.!!") == NULL);
}

TH_TEST(test_ip_identifiers)
{
	char err[128], *n, *r;
	uint8_t raw[16];
	size_t rl;

	n = ident_ip_normalize(
	    "2001:DB8:0:0:0:0:0:1", raw, &rl, err, sizeof(err));
	TH_CHECK_STR(t, n, "2001:db8::1");
	TH_CHECK(t, rl == 16);
	r = ident_ip_reverse_name(raw, rl);
	TH_CHECK_STR(t, r,
	    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	    "8.b.d.0.1.0.0.2.ip6.arpa");
	free(n);
	free(r);
	n = ident_ip_normalize("192.0.2.10", raw, &rl, err, sizeof(err));
	TH_CHECK_STR(t, n, "192.0.2.10");
	r = ident_ip_reverse_name(raw, rl);
	TH_CHECK_STR(t, r, "10.2.0.192.in-addr.arpa");
	free(n);
	free(r);
	TH_CHECK(t,
	    ident_ip_normalize("256.1.1.1", NULL, NULL, err, sizeof(err)) ==
		NULL);
	TH_CHECK(t,
	    ident_ip_normalize("fe80::1%eth0", NULL, NULL, err, sizeof(err)) ==
		NULL);
	TH_CHECK(t,
	    ident_ip_normalize("example.com", NULL, NULL, err, sizeof(err)) ==
		NULL);
}

/*
 * draft-ietf-acme-device-attest §3.1: "the value MUST match the
 * permanent-identifier-value production rule"; §4.1 the same for
 * hardware-module-value (serial "/" an OID, which is required there).
 */
TH_TEST(test_device_identifiers)
{
	char err[160];
	static const char *const pid_ok[] = {"ABCDEF123456",
	    "ABCDEF123456/1.2.3.4", "a b-c_d.e", "X/2.999", "X/0.39.1",
	    "caf\xc3\xa9", "*.not-a-wildcard"};
	static const char *const pid_bad[] = {"", "/1.2.3", "A/", "A/1",
	    "A/3.1", "A/1.40", "A/1.2.03", "A/1..2", "A/1.2.", "A/b/1.2",
	    "\xc3\x28", "\xed\xa0\x80"};
	size_t i;

	for (i = 0; i < sizeof(pid_ok) / sizeof(pid_ok[0]); i++)
		TH_CHECK(t,
		    ident_device_check(IDENT_PERMANENT_ID, pid_ok[i], err,
			sizeof(err)) == 0);
	for (i = 0; i < sizeof(pid_bad) / sizeof(pid_bad[0]); i++)
		TH_CHECK(t,
		    ident_device_check(IDENT_PERMANENT_ID, pid_bad[i], err,
			sizeof(err)) != 0);
	TH_CHECK(t,
	    ident_device_check(
		IDENT_HARDWARE_MODULE, "ABCD/1.2.3.4", err, sizeof(err)) == 0);
	/* §4.1: hardware-module-value = hw-serial-num-value "/" hw-type-value */
	TH_CHECK(t,
	    ident_device_check(
		IDENT_HARDWARE_MODULE, "ABCD", err, sizeof(err)) != 0);
	TH_CHECK(t,
	    ident_device_check(IDENT_DNS, "example.com", err, sizeof(err)) !=
		0);
	{
		enum ident_type it;
		TH_CHECK(t,
		    ident_type_parse("permanent-identifier", &it) == 0 &&
			it == IDENT_PERMANENT_ID);
		TH_CHECK(t,
		    ident_type_parse("hardware-module", &it) == 0 &&
			it == IDENT_HARDWARE_MODULE);
		TH_CHECK_STR(t, ident_type_name(IDENT_HARDWARE_MODULE),
		    "hardware-module");
	}
	TH_CHECK(t,
	    chal_check(chal_lookup("device-attest-01"), IDENT_PERMANENT_ID, 0,
		err, sizeof(err)) == 0);
	TH_CHECK(t,
	    chal_check(chal_lookup("device-attest-01"), IDENT_DNS, 0, err,
		sizeof(err)) != 0);
	TH_CHECK(t,
	    chal_check(chal_lookup("http-01"), IDENT_PERMANENT_ID, 0, err,
		sizeof(err)) != 0);
}

struct cfg {
	char *name;
	int64_t workers;
	int flag;
	int64_t timeout_ms;
	char **list;
	size_t nlist;
	char *inner;
};

static const struct jspec inner_spec[] = {
    {"inner", JSPEC_STRING, offsetof(struct cfg, inner), 1, NULL, 0},
    JSPEC_END,
};
static const struct jspec cfg_spec[] = {
    {"name", JSPEC_STRING, offsetof(struct cfg, name), 1, NULL, 0},
    JSPEC_FIELD(struct cfg, "workers", JSPEC_INT, workers),
    JSPEC_FIELD(struct cfg, "flag", JSPEC_BOOL, flag),
    JSPEC_FIELD(struct cfg, "timeout", JSPEC_DURATION, timeout_ms),
    JSPEC_STRV(struct cfg, "list", list, nlist),
    JSPEC_SUB("sub", inner_spec),
    JSPEC_END,
};

static int
parse_cfg(const char *text, struct cfg *c, char *err, size_t errlen)
{
	json_t *j = json_loads(text, 0, NULL);
	int rc;

	memset(c, 0, sizeof(*c));
	c->workers = 4;
	rc = jspec_parse(j, cfg_spec, c, err, errlen);
	json_decref(j);
	return rc;
}

TH_TEST(test_jspec)
{
	/* a refused config text and what its error names */
	static const char *const bad[][2] = {
	    {"{\"name\":\"x\",\"wrokers\":3}", "wrokers"},
	    {"{\"name\":\"x\",\"workers\":\"3\"}",
		"workers: expected an integer"},
	    {"{\"workers\":3}", "name: required"},
	    {"{\"name\":\"x\",\"sub\":{\"innr\":1}}",
		"sub.innr: unknown key"},
	    {"{\"name\":\"x\",\"timeout\":\"soon\"}", "timeout"},
	};
	struct cfg c;
	char err[256];

	TH_CHECK(t,
	    parse_cfg(
		"{\"name\":\"x\",\"flag\":true,\"timeout\":"
		"\"5s\",\"list\":[\"a\",\"b\"],\"sub\":{\"inner\":\"i\"}}",
		&c, err, sizeof(err)) == 0);
	TH_CHECK_STR(t, c.name, "x");
	TH_CHECK(t, c.workers == 4 && c.flag == 1 && c.timeout_ms == 5000);
	TH_CHECK(t, c.nlist == 2 && strcmp(c.list[1], "b") == 0);
	TH_CHECK_STR(t, c.inner, "i");
	jspec_clear(cfg_spec, &c);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		TH_CHECK(t,
		    parse_cfg(bad[i][0], &c, err, sizeof(err)) == -1 &&
			strstr(err, bad[i][1]) != NULL);
		jspec_clear(cfg_spec, &c);
	}
}

TH_TEST(test_config_file_and_env)
{
	char path[] = "/tmp/anvil-test-cfg-XXXXXX", err[256];
	int fd = mkstemp(path);
	json_t *j;
	static const struct config_env env[] = {
	    {"ANVIL_TEST_PORT", "listen.port"},
	    {"ANVIL_TEST_NAME", "name"},
	    {NULL, NULL},
	};

	TH_CHECK(t, fd >= 0);
	TH_CHECK(t, write(fd, "{\"name\": 1,\n \"name\": 2}", 24) == 24);
	close(fd);
	TH_CHECK(t, config_load_file(path, err, sizeof(err)) == NULL);
	TH_CHECK(t, strstr(err, path) != NULL);
	TH_CHECK(t,
	    config_load_file("/nonexistent/x.json", err, sizeof(err)) == NULL);
	unlink(path);

	j = json_pack("{s:s}", "name", "a");
	setenv("ANVIL_TEST_PORT", "4999", 1);
	setenv("ANVIL_TEST_NAME", "bee", 1);
	config_apply_env(j, env);
	TH_CHECK(t,
	    json_integer_value(
		json_object_get(json_object_get(j, "listen"), "port")) == 4999);
	TH_CHECK_STR(t, json_string_value(json_object_get(j, "name")), "bee");
	json_decref(j);
}

/* The test-mode knob readers: unset and empty leave the value, a good
 * value is taken, a bad one is an error naming the variable and value. */
TH_TEST(test_env_knobs)
{
	/* One step each: the variable's value (NULL: unset), the reader ('i'
	 * env_int 1..9, 'd' env_duration up to 1s, 'f' env_flag) and what it
	 * gives: return code, the value after (v or flag), the error. */
	static const struct {
		const char *env;
		char reader;
		int rc;
		int64_t after;
		const char *err;
	} steps[] = {
	    {NULL, 'i', 0, 7, NULL},
	    {NULL, 'f', 0, 5, NULL},
	    {"", 'd', 0, 7, NULL},
	    {"9", 'i', 0, 9, NULL},
	    {"9", 'f', 0, 1, NULL},
	    {"10", 'i', -1, 9, "ANVIL_TEST_KNOB: expected 1..9, got \"10\""},
	    {"false", 'f', 0, 0, NULL},
	    {"250ms", 'd', 0, 250, NULL},
	    {"2s", 'd', -1, 250,
		"ANVIL_TEST_KNOB: expected up to 1s, got \"2s\""},
	};
	char err[256];
	int64_t v = 7;
	int flag = 5, rc = 0;

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		if (steps[i].env == NULL)
			unsetenv("ANVIL_TEST_KNOB");
		else
			setenv("ANVIL_TEST_KNOB", steps[i].env, 1);
		if (steps[i].reader == 'i')
			rc = env_int("ANVIL_TEST_KNOB", 1, 9, "1..9", &v, err,
			    sizeof(err));
		else if (steps[i].reader == 'd')
			rc = env_duration("ANVIL_TEST_KNOB", 1000, "up to 1s",
			    &v, err, sizeof(err));
		else
			env_flag("ANVIL_TEST_KNOB", &flag);
		TH_CHECK(t, rc == steps[i].rc);
		TH_CHECK(t,
		    (steps[i].reader == 'f' ? flag : v) == steps[i].after);
		if (steps[i].err != NULL)
			TH_CHECK_STR(t, err, steps[i].err);
		rc = 0;
	}
	unsetenv("ANVIL_TEST_KNOB");
}

TH_TEST(test_problems)
{
	struct problem *p, *q;
	json_t *j;
	enum prob_type ty;

	p = problem_new(PROB_REJECTED_IDENTIFIER, "2 names refused");
	problem_add_sub(
	    p, problem_new(PROB_REJECTED_IDENTIFIER, "bad a"), "dns", "a.bad");
	problem_add_sub(
	    p, problem_new(PROB_MALFORMED, "bad b"), "dns", "b.bad");
	j = problem_to_json(p);
	TH_CHECK_STR(t, json_string_value(json_object_get(j, "type")),
	    "urn:ietf:params:acme:error:rejectedIdentifier");
	TH_CHECK(t, json_integer_value(json_object_get(j, "status")) == 400);
	TH_CHECK(t, json_array_size(json_object_get(j, "subproblems")) == 2);
	TH_CHECK_STR(t,
	    json_string_value(json_object_get(
		json_array_get(json_object_get(j, "subproblems"), 1), "type")),
	    "urn:ietf:params:acme:error:malformed");
	json_decref(j);

	j = problem_to_rpc_json(p);
	q = problem_from_json(j);
	TH_CHECK(t, q->type == PROB_REJECTED_IDENTIFIER);
	TH_CHECK_STR(t, q->detail, "2 names refused");
	TH_CHECK(t, json_array_size(q->subproblems) == 2);
	json_decref(j);
	problem_free(q);
	problem_free(p);

	p = problem_new(PROB_NOT_FOUND, "no such order");
	j = problem_to_json(p);
	TH_CHECK_STR(t, json_string_value(json_object_get(j, "type")),
	    "urn:ietf:params:acme:error:malformed");
	TH_CHECK(t, json_integer_value(json_object_get(j, "status")) == 404);
	json_decref(j);
	problem_free(p);

	TH_CHECK(
	    t, prob_type_parse("badNonce", &ty) == 0 && ty == PROB_BAD_NONCE);
	TH_CHECK(t,
	    prob_type_parse("urn:ietf:params:acme:error:caa", &ty) == 0 &&
		ty == PROB_CAA);
	TH_CHECK(t, prob_type_parse("nonsense", &ty) == -1);
	TH_CHECK(t, prob_type_status(PROB_RATE_LIMITED) == 429);
	j = json_pack("{s:s}", "type", "whatever");
	q = problem_from_json(j);
	TH_CHECK(t, q->type == PROB_SERVER_INTERNAL);
	problem_free(q);
	json_decref(j);
}

TH_TEST(test_metrics_render)
{
	struct metrics *m = metrics_new();
	char *out, esc[64];

	metrics_counter_add(
	    m, "anvil_test_total", "Test counter.", "method=\"a\"", 2);
	metrics_counter_add(
	    m, "anvil_test_total", "Test counter.", "method=\"a\"", 1);
	metrics_gauge_set(m, "anvil_test_gauge", "Gauge.", NULL, 7);
	metrics_histogram_observe(
	    m, "anvil_test_seconds", "Hist.", "m=\"x\"", 0.003);
	out = metrics_render(m);
	TH_CHECK(t, strstr(out, "# TYPE anvil_test_total counter") != NULL);
	TH_CHECK(t, strstr(out, "anvil_test_total{method=\"a\"} 3\n") != NULL);
	TH_CHECK(t, strstr(out, "anvil_test_gauge 7\n") != NULL);
	TH_CHECK(t,
	    strstr(out,
		"anvil_test_seconds_bucket{m=\"x\",le="
		"\"0.0025\"} 0\n") != NULL);
	TH_CHECK(t,
	    strstr(out,
		"anvil_test_seconds_bucket{m=\"x\",le="
		"\"0.005\"} 1\n") != NULL);
	TH_CHECK(
	    t, strstr(out, "anvil_test_seconds_count{m=\"x\"} 1\n") != NULL);
	TH_CHECK(
	    t, strstr(out, "anvil_process_resident_memory_bytes ") != NULL);
	free(out);
	TH_CHECK_STR(t, metrics_label_escape("a\"b\\c\n", esc, sizeof(esc)),
	    "a\\\"b\\\\c\\n");
	metrics_free(m);
}

static int
health_bad(void *arg, char *msg, size_t len)
{
	snprintf(msg, len, "%s", (const char *)arg);
	return -1;
}

static char *
http_get(int port, const char *path)
{
	struct sockaddr_in a;
	char req[256], *buf = xcalloc(1, 65536);
	size_t n = 0;
	ssize_t r;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return buf;
	}
	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: x\r\n\r\n", path);
	if (write(fd, req, strlen(req)) < 0) {
		close(fd);
		return buf;
	}
	while (n < 65535 && (r = read(fd, buf + n, 65535 - n)) > 0)
		n += (size_t)r;
	close(fd);
	return buf;
}

TH_TEST(test_debug_server)
{
	struct metrics *m = metrics_new();
	char err[256], *resp;
	struct debug_server *s;
	int port = 21990;

	metrics_counter_add(m, "anvil_x_total", "X.", NULL, 1);
	s = debug_server_start(
	    "127.0.0.1", port, m, NULL, NULL, err, sizeof(err));
	TH_CHECK(t, s != NULL);
	if (s == NULL) {
		fprintf(stderr, "  %s\n", err);
		metrics_free(m);
		return;
	}
	resp = http_get(port, "/metrics");
	TH_CHECK(t, strstr(resp, "200") != NULL);
	TH_CHECK(t, strstr(resp, "anvil_x_total 1") != NULL);
	free(resp);
	resp = http_get(port, "/healthz");
	TH_CHECK(t,
	    strstr(resp, "HTTP/1.0 200") != NULL ||
		strstr(resp, "HTTP/1.1 200") != NULL);
	free(resp);
	resp = http_get(port, "/nope");
	TH_CHECK(t, strstr(resp, " 404 ") != NULL);
	free(resp);
	debug_server_stop(s);

	s = debug_server_start("127.0.0.1", port, m, health_bad,
	    (void *)"database down", err, sizeof(err));
	TH_CHECK(t, s != NULL);
	if (s != NULL) {
		resp = http_get(port, "/healthz");
		TH_CHECK(t, strstr(resp, " 503 ") != NULL);
		TH_CHECK(t, strstr(resp, "database down") != NULL);
		free(resp);
		debug_server_stop(s);
	}
	metrics_free(m);
}

/* 1 when profiles_parse refuses the profiles.json text js with an error
 * naming want (NULL: any error); else prints what happened, returns 0. */
static int
profiles_refused(const char *js, const char *want)
{
	json_t *j = json_loads(js, 0, NULL);
	char err[400] = "";
	struct profiles *p = profiles_parse(j, "p.json", err, sizeof(err));
	int ok = j != NULL && p == NULL &&
	    (want == NULL || strstr(err, want) != NULL);

	if (!ok)
		fprintf(stderr, "  profiles %s: %s\n", js,
		    p != NULL ? "accepted" : err);
	profiles_free(p);
	json_decref(j);
	return ok;
}

TH_TEST(test_profiles)
{
	char err[256];
	json_t *j;
	struct profiles *p;
	const struct profile *pr;

	j = json_loads(
	    "{\"default\":\"classic\",\"profiles\":{\"classic\":"
	    "{\"validity\":\"90d\",\"ekus\":[\"serverAuth\"]},\"short\":"
	    "{\"validity\":\"7d\",\"keep_cn\":false,\"identifier_types\":"
	    "[\"dns\"]}}}",
	    0, NULL);
	p = profiles_parse(j, "p.json", err, sizeof(err));
	TH_CHECK(t, p != NULL);
	if (p != NULL) {
		pr = profiles_find(p, NULL);
		TH_CHECK(t, pr != NULL && strcmp(pr->name, "classic") == 0);
		TH_CHECK(t, pr != NULL && pr->validity_ms == 90LL * 86400000);
		pr = profiles_find(p, "short");
		TH_CHECK(t,
		    pr != NULL && !pr->keep_cn && pr->allow_dns &&
			!pr->allow_ip);
		TH_CHECK(t, profiles_find(p, "nope") == NULL);
	}
	profiles_free(p);
	json_decref(j);

	TH_CHECK(t, profiles_refused("{\"profiles\":{\"a\":{\"validity\":"
				     "\"1d\",\"ekus\":[\"codeSigning\"]}}}",
			"codeSigning"));
	TH_CHECK(t,
	    profiles_refused("{\"profiles\":{\"a\":{\"validty\":\"1d\"}}}",
		"profiles.a.validty: unknown key"));
}

/* RFC 8823 §2 identifiers and the S/MIME profile rule (core/profile.c). */
TH_TEST(test_email_identifiers_and_smime_profiles)
{
	static const char *const bad[] = {"", "alice", "@example.com",
	    "alice@", ".alice@example.com", "al..ice@example.com",
	    "\"al ice\"@example.com", "al ice@example.com",
	    "alice@[127.0.0.1]", "alice@example.com.", "alice@*.example.com",
	    "\xc3\xa9@example.com"};
	char err[256], *n;
	json_t *j;
	struct profiles *p;
	size_t i;

	n = ident_email_normalize("Alice.B+tag@Mail.Example.COM", err,
	    sizeof(err));
	/* RFC 5321 §2.4: the local part is case-sensitive, the domain not */
	TH_CHECK(t, n != NULL && strcmp(n, "Alice.B+tag@mail.example.com") == 0);
	free(n);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = ident_email_normalize(bad[i], err, sizeof(err));
		TH_CHECK(t, n == NULL);
		free(n);
	}
	TH_CHECK(t, strcmp(ident_type_name(IDENT_EMAIL), "email") == 0);
	TH_CHECK(t,
	    chal_lookup("email-reply-00") != NULL &&
		chal_check(chal_lookup("email-reply-00"), IDENT_EMAIL, 0, err,
		    sizeof(err)) == 0 &&
		chal_check(chal_lookup("email-reply-00"), IDENT_DNS, 0, err,
		    sizeof(err)) != 0 &&
		chal_check(chal_lookup("http-01"), IDENT_EMAIL, 0, err,
		    sizeof(err)) != 0);

	/* an S/MIME profile: emailProtection is its default EKU */
	j = json_loads("{\"profiles\":{\"smime\":{\"validity\":\"30d\","
		       "\"identifier_types\":[\"email\"]}}}",
	    0, NULL);
	p = profiles_parse(j, "p.json", err, sizeof(err));
	TH_CHECK(t,
	    p != NULL && p->list[0].allow_email &&
		p->list[0].eku_email_protection &&
		!p->list[0].eku_server_auth);
	profiles_free(p);
	json_decref(j);
	/* ... and it never mixes with TLS EKUs or DNS/IP identifiers */
	TH_CHECK(t, profiles_refused("{\"profiles\":{\"x\":{\"validity\":"
				     "\"30d\",\"identifier_types\":[\"email\","
				     "\"dns\"],\"ekus\":[\"emailProtection\"]}}}",
			"profiles.x: an S/MIME profile"));
	TH_CHECK(t, profiles_refused("{\"profiles\":{\"x\":{\"validity\":"
				     "\"30d\",\"identifier_types\":[\"dns\"],"
				     "\"ekus\":[\"serverAuth\","
				     "\"emailProtection\"]}}}",
			NULL));
	TH_CHECK(t, profiles_refused("{\"profiles\":{\"x\":{\"validity\":"
				     "\"30d\",\"identifier_types\":[\"email\"],"
				     "\"ekus\":[\"serverAuth\"]}}}",
			NULL));
}

TH_TEST(test_secret_mode)
{
	char path[] = "/tmp/anvil-test-key-XXXXXX", err[256];
	int fd = mkstemp(path);

	TH_CHECK(t, fd >= 0);
	close(fd);
	chmod(path, 0600);
	TH_CHECK(t, file_check_secret_mode(path, err, sizeof(err)) == 0);
	chmod(path, 0640);
	TH_CHECK(t, file_check_secret_mode(path, err, sizeof(err)) == -1);
	TH_CHECK(t, strstr(err, "chmod 600") != NULL);
	unlink(path);
}

/*
 * RFC 9799 §2: "The value of identifier MUST be the textual representation
 * as defined in Part Special Hostnames in Tor - ".onion" of [tor-spec]. The
 * value MAY include subdomain labels. Version 2 addresses
 * [tor-rend-spec-v2] MUST NOT be used as these are now considered
 * insecure." The RFC's own example addresses parse to their keys.
 */
TH_TEST(test_onion_address)
{
	static const char bbc[] =
	    "bbcweb3hytmzhn5d532owbu6oqadra5z3ar726vq5kgwwn6aucdccrad.onion";
	static const uint8_t bbc_key[8] = {
	    0x08, 0x45, 0x62, 0x07, 0x67, 0xc4, 0xd9, 0x93};
	uint8_t key[32], k2[32];
	const char *base = NULL;
	char err[200], name[128], *a;

	TH_CHECK(t, ident_onion_name(bbc));
	TH_CHECK(t, ident_onion_name("onion"));
	TH_CHECK(t, !ident_onion_name("example.com"));
	TH_CHECK(t, !ident_onion_name("notonion"));
	TH_CHECK(t, !ident_onion_name("onion.example"));
	TH_CHECK(t, ident_onion_parse(bbc, key, &base, err, sizeof(err)) == 0);
	TH_CHECK(t, memcmp(key, bbc_key, sizeof(bbc_key)) == 0);
	TH_CHECK(t, base == bbc);
	/* subdomains and a wildcard: the same key, base at the address */
	snprintf(name, sizeof(name), "www.%s", bbc);
	TH_CHECK(t, ident_onion_parse(name, k2, &base, err, sizeof(err)) == 0);
	TH_CHECK(t, memcmp(key, k2, 32) == 0 && strcmp(base, bbc) == 0);
	snprintf(name, sizeof(name), "*.a.b.%s", bbc);
	TH_CHECK(t, ident_onion_parse(name, k2, &base, err, sizeof(err)) == 0);
	TH_CHECK(t, strcmp(base, bbc) == 0);
	/* §6.4.2's example address */
	TH_CHECK(t,
	    ident_onion_parse("5anebu2glyc235wbbop3m2ukzlaptpkq333vdtdvcjpigy"
			      "b7x2i2m2qd.onion",
		key, NULL, err, sizeof(err)) == 0);
	TH_CHECK(t, key[0] == 0xe8 && key[1] == 0x1a);
	/* version 2 (16 characters) is named as such */
	TH_CHECK(t, ident_onion_parse("facebookcorewwwi.onion", key, NULL, err,
			sizeof(err)) == -1);
	TH_CHECK(t, strstr(err, "version 2") != NULL);
	/* wrong length, bad alphabet, bare TLD, not .onion */
	TH_CHECK(t, ident_onion_parse("abc.onion", key, NULL, err,
			sizeof(err)) == -1);
	TH_CHECK(t, strstr(err, "56") != NULL);
	TH_CHECK(t, ident_onion_parse("onion", key, NULL, err, sizeof(err)) ==
		-1);
	TH_CHECK(t, ident_onion_parse("example.com", key, NULL, err,
			sizeof(err)) == -1);
	snprintf(name, sizeof(name), "%s", bbc);
	name[10] = '1'; /* '1' is not in the base32 alphabet */
	TH_CHECK(t, ident_onion_parse(name, key, NULL, err, sizeof(err)) == -1);
	TH_CHECK(t, strstr(err, "base32") != NULL);
	/* one changed key character: the checksum no longer matches */
	snprintf(name, sizeof(name), "%s", bbc);
	name[0] = 'c';
	TH_CHECK(t, ident_onion_parse(name, key, NULL, err, sizeof(err)) == -1);
	TH_CHECK(t, strstr(err, "checksum") != NULL);
	/* a correct checksum with another version byte */
	memset(k2, 0x42, sizeof(k2));
	a = onion_addr_of(k2, 4);
	snprintf(name, sizeof(name), "%s.onion", a);
	free(a);
	TH_CHECK(t, ident_onion_parse(name, key, NULL, err, sizeof(err)) == -1);
	TH_CHECK(t, strstr(err, "version byte 4") != NULL);
}

/*
 * Randomised checks of the address parser: every key's address round-trips
 * to the key; every single-character change of a valid address and every
 * random label is refused unless it is itself a valid address (never a
 * crash, never a key other than the one the label encodes).
 */
TH_TEST(test_onion_address_fuzz)
{
	static const char alpha[] = "abcdefghijklmnopqrstuvwxyz234567.-*";
	uint8_t pk[32], got[32];
	char name[160], err[200], *a;
	int i, j, accepted_mutants = 0, ok = 1;
	unsigned seed = 12345;

	for (i = 0; i < 300; i++) {
		for (j = 0; j < 32; j++) {
			seed = seed * 1103515245u + 12345u;
			pk[j] = (uint8_t)(seed >> 16);
		}
		a = onion_addr_of(pk, 3);
		snprintf(name, sizeof(name), "%s.onion", a);
		if (ident_onion_parse(name, got, NULL, err, sizeof(err)) != 0 ||
		    memcmp(got, pk, 32) != 0)
			ok = 0;
		/* one mutated character */
		seed = seed * 1103515245u + 12345u;
		j = (int)((seed >> 16) % 56);
		seed = seed * 1103515245u + 12345u;
		name[j] = alpha[(seed >> 16) % (sizeof(alpha) - 1)];
		if (strncmp(name, a, 56) != 0 &&
		    ident_onion_parse(name, got, NULL, err, sizeof(err)) == 0)
			accepted_mutants++;
		free(a);
		/* random label of random length */
		seed = seed * 1103515245u + 12345u;
		j = (int)((seed >> 16) % 70);
		name[j] = '\0';
		while (j-- > 0) {
			seed = seed * 1103515245u + 12345u;
			name[j] = alpha[(seed >> 16) % (sizeof(alpha) - 1)];
		}
		strcat(name, ".onion");
		(void)ident_onion_parse(name, got, NULL, err, sizeof(err));
	}
	TH_CHECK(t, ok);
	/* a 16-bit checksum lets about 1 in 65536 through, not 1 in 300 */
	TH_CHECK(t, accepted_mutants == 0);
}

/* RFC 9799 §3.2: "nonce (required, string) A Base64 [RFC4648] encoded
 * nonce, including padding characters." */
TH_TEST(test_onion_nonce)
{
	char *n = chal_onion_nonce("bI6_MRqV4gw"); /* RFC example's bytes */
	const struct chal_info *c = chal_lookup("onion-csr-01");
	char err[160];

	TH_CHECK_STR(t, n, "bI6/MRqV4gw=");
	free(n);
	TH_CHECK(t, chal_onion_nonce("not base64url!") == NULL);
	TH_CHECK(t, c != NULL && c->type == CHAL_ONIONCSR01 && c->onion &&
		c->wildcard && !c->offer);
	TH_CHECK(t, chal_check_onion(c, 1, err, sizeof(err)) == 0);
	TH_CHECK(t, chal_check_onion(c, 0, err, sizeof(err)) == -1);
	TH_CHECK(t, strstr(err, "only validate a .onion") != NULL);
	/* §3.1.1: "The existing "dns-01" challenge MUST NOT be used" */
	c = chal_lookup("dns-01");
	TH_CHECK(t, chal_check_onion(c, 1, err, sizeof(err)) == -1);
	TH_CHECK(t, chal_check_onion(c, 0, err, sizeof(err)) == 0);
	TH_CHECK(t, chal_check_onion(chal_lookup("http-01"), 1, err,
			sizeof(err)) == -1);
	TH_CHECK(t, strcmp(prob_type_urn(PROB_ONION_CAA_REQUIRED),
			"urn:ietf:params:acme:error:onionCAARequired") == 0);
}

/*
 * RFC 9891 §3: "Any "bundleEID" value which fails to properly
 * percent-decode SHALL be rejected with an ACME error type of
 * "malformed"", "SHALL decode and normalize (based on scheme-specific
 * syntax) all such received identifiers", and "Any "bundleEID" value
 * which uses a scheme not handled by the ACME server SHALL be rejected
 * with an ACME error type of "rejectedIdentifier"".
 */
TH_TEST(test_bundle_eid_identifiers)
{
	static const char *const ok[][2] = {
	    {"dtn://example/", "dtn://example/"},
	    {"DTN://acme-client/", "dtn://acme-client/"},
	    {"dtn://n%61me/", "dtn://name/"},
	    {"dtn://a%2fb/", "dtn://a%2Fb/"},
	    {"ipn:977000.0", "ipn:977000.0"},
	    {"IPN:007.000", "ipn:7.0"},
	    {"ipn:18446744073709551615.0", "ipn:18446744073709551615.0"},
	};
	/* malformed: bad percent-encoding or scheme-specific syntax */
	static const char *const bad[] = {"dtn://a%zz/", "dtn://a%4/",
	    "dtn:/x/", "dtn://x", "dtn:///", "dtn://a b/", "ipn:1",
	    "ipn:1.x", "ipn:18446744073709551616.0", "ipn:.0", "ipn:1.0x",
	    "example", ":x", "dtn://a/b%"};
	/* well-formed but not handled: other schemes, not a Node ID */
	static const char *const rej[] = {"https://example/", "dtn:none",
	    "dtn://node/svc", "dtn://node/~group", "ipn:5.1", "ipn:0.0",
	    "ipn:1.2.0"};
	char err[200], *out = NULL, *id, *id2;
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		TH_CHECK(t, ident_bundle_eid_normalize(ok[i][0], &out, err,
				sizeof(err)) == 0);
		TH_CHECK_STR(t, out, ok[i][1]);
		free(out);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		TH_CHECK(t, ident_bundle_eid_normalize(bad[i], &out, err,
				sizeof(err)) == -1 &&
			out == NULL);
	}
	for (i = 0; i < sizeof(rej) / sizeof(rej[0]); i++) {
		TH_CHECK(t, ident_bundle_eid_normalize(rej[i], &out, err,
				sizeof(err)) == -2 &&
			out == NULL);
	}
	TH_CHECK(t, ident_bundle_eid_normalize("dtn://node/svc", &out, err,
			sizeof(err)) == -2 &&
		strstr(err, "not its Node ID") != NULL);
	TH_CHECK(t, ident_type_parse("bundleEID", &(enum ident_type){0}) == 0);
	TH_CHECK_STR(t, ident_type_name(IDENT_BUNDLE_EID), "bundleEID");
	/* §4: bp-nodeid-00 validates bundleEID only */
	TH_CHECK(t, chal_lookup("bp-nodeid-00") != NULL &&
		chal_check(chal_lookup("bp-nodeid-00"), IDENT_BUNDLE_EID, 0,
		    err, sizeof(err)) == 0 &&
		chal_check(chal_lookup("bp-nodeid-00"), IDENT_DNS, 0, err,
		    sizeof(err)) != 0 &&
		chal_check(chal_lookup("http-01"), IDENT_BUNDLE_EID, 0, err,
		    sizeof(err)) != 0);
	/* §4.1: id-chal "SHALL NOT contain any characters outside the
	 * base64url alphabet", at least 128 bits, one per token */
	id = chal_bp_id_chal("tPUZNY4ONIk6LxErRFEjVw");
	id2 = chal_bp_id_chal("p3yRYFU4KxwQaHQjJ2RdiQ");
	TH_CHECK(t, id != NULL && strlen(id) == 22 &&
		strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			   "0123456789-_") == 22);
	TH_CHECK(t, id != NULL && id2 != NULL && strcmp(id, id2) != 0 &&
		strcmp(id, "tPUZNY4ONIk6LxErRFEjVw") != 0);
	free(id);
	free(id2);
}

/* RFC 9891 §7: bundleEID goes with id-kp-bundleSecurity, never TLS. */
TH_TEST(test_bundle_security_profiles)
{
	static const char *const refused[] = {
	    "{\"profiles\":{\"x\":{\"validity\":\"30d\",\"identifier_types\":"
	    "[\"bundleEID\"],\"ekus\":[\"serverAuth\"]}}}",
	    "{\"profiles\":{\"x\":{\"validity\":\"30d\",\"identifier_types\":"
	    "[\"bundleEID\"],\"ekus\":[\"bundleSecurity\",\"clientAuth\"]}}}",
	    "{\"profiles\":{\"x\":{\"validity\":\"30d\",\"identifier_types\":"
	    "[\"dns\"],\"ekus\":[\"bundleSecurity\"]}}}",
	    "{\"profiles\":{\"x\":{\"validity\":\"30d\",\"identifier_types\":"
	    "[\"bundleEID\",\"email\"],\"ekus\":[\"bundleSecurity\"]}}}",
	};
	struct profiles *p;
	char err[400];
	json_t *j;
	size_t i;

	j = json_loads("{\"profiles\":{\"dtn\":{\"validity\":\"30d\","
		       "\"identifier_types\":[\"bundleEID\",\"dns\"],"
		       "\"ekus\":[\"bundleSecurity\"]}}}",
	    0, NULL);
	p = profiles_parse(j, "p.json", err, sizeof(err));
	TH_CHECK(t, p != NULL && p->list[0].allow_bundle_eid &&
		p->list[0].eku_bundle_security &&
		!p->list[0].eku_server_auth);
	profiles_free(p);
	json_decref(j);
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		TH_CHECK(t, profiles_refused(refused[i],
				i == 3 ? NULL : "profiles.x: a bundle security"));
}

/*
 * pem_encode writes what OpenSSL's PEM writer writes (RFC 7468 §2: "the
 * base64-encoded data ... MUST wrap ... at 64 characters"), for every length
 * remainder and across line boundaries.
 */
TH_TEST(test_pem_encode)
{
	uint8_t data[200];
	size_t len;

	for (len = 0; len < sizeof(data); len++)
		data[len] = (uint8_t)(len * 37 + 11);
	for (len = 1; len <= sizeof(data); len++) {
		BIO *bio = BIO_new(BIO_s_mem());
		char *mem = NULL, *pem;
		long n;

		TH_CHECK(t, bio != NULL &&
			PEM_write_bio(bio, "CERTIFICATE", "", data, (long)len) >
			    0);
		n = BIO_get_mem_data(bio, &mem);
		pem = pem_encode("CERTIFICATE", data, len);
		TH_CHECK(t, n > 0 && strlen(pem) == (size_t)n &&
			memcmp(pem, mem, (size_t)n) == 0);
		free(pem);
		BIO_free(bio);
	}
}

/*
 * key_spki_der of an EC key is its named-curve, uncompressed-point SPKI:
 * the same bytes as OpenSSL's own encoder writes for a fresh key of each
 * curve, and key_spki_is_canonical accepts that encoding.
 */
TH_TEST(test_spki_ec_canonical)
{
	static const char *curves[] = {"P-256", "P-384", "P-521"};
	size_t i;

	for (i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
		EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curves[i]);
		unsigned char *ref = NULL, *der = NULL;
		const unsigned char *p;
		size_t len = 0;
		int n = pk != NULL ? i2d_PUBKEY(pk, &ref) : -1;
		X509_PUBKEY *xpk;

		TH_CHECK(t, n > 0 && key_spki_der(pk, &der, &len) == 0 &&
			len == (size_t)n && memcmp(der, ref, len) == 0);
		p = ref;
		xpk = n > 0 ? d2i_X509_PUBKEY(NULL, &p, n) : NULL;
		TH_CHECK(t, xpk != NULL && key_spki_is_canonical(xpk));
		X509_PUBKEY_free(xpk);
		OPENSSL_free(der);
		OPENSSL_free(ref);
		EVP_PKEY_free(pk);
	}
}

TH_MAIN(log_init("test_core", LOG_LEVEL_WARN))
