/* LIBS: ca rpc core */
/*
 * test_ca_lint.c - every lint passes on a well-formed certificate and fires
 * on a certificate built to break exactly it.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/x509v3.h>

#include "ca/ca_int.h"
#include "test/unit/harness.h"

struct lfx {
	char dir[128];
	struct ca_issuers *issuers;
	struct profiles *profiles;
	const struct ca_issuer *ecdsa;
	EVP_PKEY *subject; /* P-256 subject key */
	EVP_PKEY *signer;  /* throwaway signing key */
	json_t *ids;       /* a.example.com, b.example.com */
};

static struct lfx L; /* set up once in main */

static int
setup(void)
{
	char err[512], path[256];

	snprintf(L.dir, sizeof(L.dir), "/tmp/test_ca_lint.XXXXXX");
	if (mkdtemp(L.dir) == NULL)
		return -1;
	if (ca_ceremony_init(L.dir, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/issuers.json", L.dir);
	if ((L.issuers = ca_issuers_load(path, err, sizeof(err))) == NULL ||
	    (L.profiles = profiles_load(
		 "configs/dev/profiles.json", err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	L.ecdsa = ca_issuers_choose(L.issuers, "classic", CA_KEY_ECDSA);
	L.subject = ca_key_generate(CA_KEY_ECDSA, 256);
	L.signer = ca_key_generate(CA_KEY_ECDSA, 256);
	L.ids = json_pack("[{s:s, s:s}, {s:s, s:s}]", "type", "dns", "value",
	    "a.example.com", "type", "dns", "value", "b.example.com");
	return L.ecdsa && L.subject && L.signer && L.ids ? 0 : -1;
}

static void
teardown(void)
{
	char cmd[300];

	ca_issuers_free(L.issuers);
	profiles_free(L.profiles);
	EVP_PKEY_free(L.subject);
	EVP_PKEY_free(L.signer);
	json_decref(L.ids);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", L.dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup failed\n");
}

/* A template that passes every lint; callers tweak it. */
static void
good_template(struct ca_tbs *t, const char *profile)
{
	time_t now = time(NULL);

	memset(t, 0, sizeof(*t));
	t->serial[0] = 0x7f;
	random_bytes(t->serial + 1, CA_SERIAL_LEN - 1);
	t->pubkey = L.subject;
	t->not_before = now - 3600;
	t->profile = profiles_find(L.profiles, profile);
	t->not_after = t->not_before + t->profile->validity_ms / 1000 - 1;
	t->cn = t->profile->keep_cn ? "a.example.com" : NULL;
	t->sans = L.ids;
	t->issuer = L.ecdsa;
	t->shard = 1;
	t->base_url = "https://ca.test";
	t->ocsp_url = 1;
}

static X509 *
build(const struct ca_tbs *t)
{
	char err[128];
	X509 *x = ca_tbs_build(t, err, sizeof(err));

	if (x == NULL)
		fprintf(stderr, "  build: %s\n", err);
	return x;
}

static void
resign(X509 *x)
{
	X509_sign(x, L.signer, EVP_sha256());
}

/* Replaces (or adds) an extension from its config string, then re-signs. */
static void
set_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;
	int idx;

	while ((idx = X509_get_ext_by_NID(x, nid, -1)) >= 0)
		X509_EXTENSION_free(X509_delete_ext(x, idx));
	if (value != NULL) {
		X509V3_set_ctx(&ctx, L.ecdsa->cert, x, NULL, NULL, 0);
		e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	resign(x);
}

/* Runs lint `name` on x: 0 pass, -1 fire. */
static int
run_lint(const char *name, X509 *x, const json_t *ids, const char *profile)
{
	const struct ca_lint *l = ca_lint_find(name);
	struct ca_lint_input in;
	char msg[256] = "";
	int rc;

	memset(&in, 0, sizeof(in));
	if (l == NULL) {
		fprintf(stderr, "  no lint %s\n", name);
		return 99;
	}
	in.cert = x;
	in.identifiers = ids;
	in.profile = profiles_find(L.profiles, profile);
	rc = l->fn(&in, msg, sizeof(msg));
	if (rc != 0)
		fprintf(stderr, "  %s fired: %s\n", name, msg);
	return rc;
}

/* run_lint(name, ids, profile) on a certificate built from tpl and
 * signed: 0 pass, -1 fire (99 when it could not be built). */
static int
lint_tpl(const struct ca_tbs *tpl, const char *name, const json_t *ids,
    const char *profile)
{
	X509 *x = build(tpl);
	int rc = 99;

	if (x != NULL) {
		resign(x);
		rc = run_lint(name, x, ids, profile);
	}
	X509_free(x);
	return rc;
}

/* run_lint(name) (classic profile, the usual identifiers) on the
 * certificate of tpl with extension nid set to value (NULL: removed). */
static int
lint_ext(const struct ca_tbs *tpl, const char *name, int nid, const char *value)
{
	X509 *x = build(tpl);
	int rc;

	set_ext(x, nid, value);
	rc = run_lint(name, x, L.ids, "classic");
	X509_free(x);
	return rc;
}

/* The usual test of one lint: the good classic certificate passes it and
 * it fires once extension nid is set to value (NULL: removed). */
static void
check_lint_ext(struct th *t, const char *name, int nid, const char *value)
{
	struct ca_tbs tpl;

	good_template(&tpl, "classic");
	TH_CHECK(t, lint_tpl(&tpl, name, L.ids, "classic") == 0);
	TH_CHECK(t, lint_ext(&tpl, name, nid, value) == -1);
}

TH_TEST(test_all_lints_pass_on_good_certs)
{
	static const char *profiles[] = {
	    "classic", "tlsserver", "shortlived", "clientauth"};
	struct ca_tbs tpl;
	struct ca_lint_input in;
	const char *failed = NULL;
	char msg[256];
	size_t i, n;
	X509 *x;

	memset(&in, 0, sizeof(in));
	ca_lints(&n);
	TH_CHECK(t, n >= 9);
	for (i = 0; i < 4; i++) {
		good_template(&tpl, profiles[i]);
		x = build(&tpl);
		TH_CHECK(t, x != NULL);
		if (x == NULL)
			continue;
		resign(x);
		in.cert = x;
		in.identifiers = L.ids;
		in.profile = tpl.profile;
		TH_CHECK(t, ca_lint_all(&in, &failed, msg, sizeof(msg)) == 0);
		if (failed)
			fprintf(
			    stderr, "  %s: %s: %s\n", profiles[i], failed, msg);
		X509_free(x);
	}
}

TH_TEST(test_lint_san_present)
{
	check_lint_ext(t, "san_present", NID_subject_alt_name, NULL);
}

TH_TEST(test_lint_san_matches_identifiers)
{
	struct ca_tbs tpl;
	json_t *other = json_pack("[{s:s, s:s}, {s:s, s:s}]", "type", "dns",
	    "value", "a.example.com", "type", "dns", "value", "c.example.com");
	json_t *fewer =
	    json_pack("[{s:s, s:s}]", "type", "dns", "value", "a.example.com");
	X509 *x;

	good_template(&tpl, "classic");
	x = build(&tpl);
	resign(x);
	TH_CHECK(
	    t, run_lint("san_matches_identifiers", x, L.ids, "classic") == 0);
	TH_CHECK(
	    t, run_lint("san_matches_identifiers", x, other, "classic") == -1);
	TH_CHECK(
	    t, run_lint("san_matches_identifiers", x, fewer, "classic") == -1);
	X509_free(x);
	json_decref(other);
	json_decref(fewer);
}

TH_TEST(test_lint_san_no_duplicates)
{
	struct ca_tbs tpl;
	json_t *dup = json_pack("[{s:s, s:s}, {s:s, s:s}]", "type", "dns",
	    "value", "a.example.com", "type", "dns", "value", "A.example.com");

	good_template(&tpl, "classic");
	tpl.sans = dup;
	TH_CHECK(t, lint_tpl(&tpl, "san_no_duplicates", dup, "classic") == -1);
	json_decref(dup);
}

TH_TEST(test_lint_dns_names_valid)
{
	static const char *bad[] = {"a..example.com", "a.*.example.com",
	    "-a.example.com", "a-.example.com", "under_score.example.com",
	    "example.123", "localhost", "**.example.com",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    ".example.com"};
	static const char *good[] = {
	    "*.example.com", "xn--bcher-kva.example", "a-b.c0.example.com"};
	struct ca_tbs tpl;
	json_t *ids;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]) + 3; i++) {
		int is_bad = i < sizeof(bad) / sizeof(bad[0]);
		const char *name =
		    is_bad ? bad[i] : good[i - sizeof(bad) / sizeof(bad[0])];
		ids = json_pack("[{s:s, s:s}]", "type", "dns", "value", name);
		good_template(&tpl, "tlsserver");
		tpl.sans = ids;
		if (lint_tpl(&tpl, "dns_names_valid", ids, "tlsserver") !=
		    (is_bad ? -1 : 0)) {
			fprintf(stderr, "  wrong verdict for %s\n", name);
			TH_CHECK(t, 0);
		}
		json_decref(ids);
	}
}

TH_TEST(test_lint_cn_in_san)
{
	struct ca_tbs tpl;

	good_template(&tpl, "classic");
	tpl.cn = "c.example.com";
	TH_CHECK(t, lint_tpl(&tpl, "cn_in_san", L.ids, "classic") == -1);
	good_template(&tpl, "classic");
	tpl.cn = "b.example.com";
	TH_CHECK(t, lint_tpl(&tpl, "cn_in_san", L.ids, "classic") == 0);
}

TH_TEST(test_lint_validity_within_profile)
{
	struct ca_tbs tpl;

	good_template(&tpl, "shortlived");
	TH_CHECK(t,
	    lint_tpl(&tpl, "validity_within_profile", L.ids, "shortlived") ==
		0);
	tpl.not_after += 1; /* one second too long */
	TH_CHECK(t,
	    lint_tpl(&tpl, "validity_within_profile", L.ids, "shortlived") ==
		-1);
	tpl.not_after = tpl.not_before - 10;
	TH_CHECK(t,
	    lint_tpl(&tpl, "validity_within_profile", L.ids, "shortlived") ==
		-1);
}

static void
set_serial_hex(X509 *x, const char *hex, int negative)
{
	BIGNUM *bn = NULL;
	ASN1_INTEGER *ai;

	BN_hex2bn(&bn, hex);
	BN_set_negative(bn, negative);
	ai = BN_to_ASN1_INTEGER(bn, NULL);
	X509_set_serialNumber(x, ai);
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	resign(x);
}

TH_TEST(test_lint_serial_valid)
{
	/* a serial number (hex magnitude, negative) and the lint's verdict */
	static const struct {
		const char *hex;
		int negative, want;
	} cases[] = {
	    {"0", 0, -1},
	    {"7f0102030405060708090a", 1, -1},
	    /* 20 magnitude bytes with the top bit set: 21 DER octets. */
	    {"ff0102030405060708090a0b0c0d0e0f10111213", 0, -1},
	    {"0102030405060708", 0, -1}, /* only 64 bits */
	    {"7f0102030405060708090a0b0c0d0e0f101112", 0, 0},
	};
	struct ca_tbs tpl;
	X509 *x;

	good_template(&tpl, "classic");
	TH_CHECK(t, lint_tpl(&tpl, "serial_valid", L.ids, "classic") == 0);
	x = build(&tpl);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		set_serial_hex(x, cases[i].hex, cases[i].negative);
		TH_CHECK(t,
		    run_lint("serial_valid", x, L.ids, "classic") ==
			cases[i].want);
	}
	X509_free(x);
}

TH_TEST(test_lint_key_allowed)
{
	struct ca_tbs tpl;
	EVP_PKEY *small = ca_key_generate(CA_KEY_RSA, 1024);
	EVP_PKEY *k1 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
	EVP_PKEY *p384 = ca_key_generate(CA_KEY_ECDSA, 384);

	good_template(&tpl, "classic");
	tpl.pubkey = small;
	TH_CHECK(t, lint_tpl(&tpl, "key_allowed", L.ids, "classic") == -1);
	tpl.pubkey = k1;
	TH_CHECK(t, lint_tpl(&tpl, "key_allowed", L.ids, "classic") == -1);
	tpl.pubkey = p384;
	TH_CHECK(t, lint_tpl(&tpl, "key_allowed", L.ids, "classic") == 0);
	EVP_PKEY_free(small);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(p384);
}

/* keys.* in ca.json: a Pebble-like policy admits RSA-1024 and P-521. */
TH_TEST(test_key_policy_settings)
{
	struct ca_settings strict, open;
	EVP_PKEY *small = ca_key_generate(CA_KEY_RSA, 1024);
	EVP_PKEY *p521 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
	EVP_PKEY *k1 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
	char msg[128];

	ca_settings_defaults(&strict);
	ca_settings_defaults(&open);
	open.rsa_min_bits = 1024;
	open.allow_p521 = 1;
	TH_CHECK(t, ca_key_check(small, &strict, msg, sizeof(msg)) == -1);
	TH_CHECK(t, strstr(msg, "1024") != NULL);
	TH_CHECK(t, ca_key_check(p521, &strict, msg, sizeof(msg)) == -1);
	TH_CHECK(t, ca_key_check(small, &open, msg, sizeof(msg)) == 0);
	TH_CHECK(t, ca_key_check(p521, &open, msg, sizeof(msg)) == 0);
	TH_CHECK(t, ca_key_check(k1, &open, msg, sizeof(msg)) == -1);
	TH_CHECK(t, ca_key_check(small, NULL, msg, sizeof(msg)) == -1);
	EVP_PKEY_free(small);
	EVP_PKEY_free(p521);
	EVP_PKEY_free(k1);
}

TH_TEST(test_lint_ku_eku_consistent)
{
	/* one extension changed on the good certificate, each refused */
	static const struct {
		int nid;
		const char *value; /* NULL: removed */
	} bad[] = {
	    /* keyEncipherment on an ECDSA key. */
	    {NID_key_usage, "critical,digitalSignature,keyEncipherment"},
	    /* CA bits. */
	    {NID_key_usage, "critical,digitalSignature,keyCertSign"},
	    /* keyUsage not critical. */
	    {NID_key_usage, "digitalSignature"},
	    /* codeSigning EKU. */
	    {NID_ext_key_usage, "serverAuth,codeSigning"},
	    /* No EKU at all. */
	    {NID_ext_key_usage, NULL},
	};
	struct ca_tbs tpl;
	X509 *x;

	good_template(&tpl, "classic");
	x = build(&tpl);
	resign(x);
	TH_CHECK(t, run_lint("ku_eku_consistent", x, L.ids, "classic") == 0);
	/* The serverAuth certificate does not fit the clientauth profile. */
	TH_CHECK(
	    t, run_lint("ku_eku_consistent", x, L.ids, "clientauth") == -1);
	X509_free(x);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		TH_CHECK(t,
		    lint_ext(&tpl, "ku_eku_consistent", bad[i].nid,
			bad[i].value) == -1);
}

TH_TEST(test_lint_no_unknown_critical_ext)
{
	struct ca_tbs tpl;
	ASN1_OBJECT *obj = OBJ_txt2obj("1.3.6.1.4.1.99999.1", 1);
	ASN1_OCTET_STRING *data = ASN1_OCTET_STRING_new();
	X509_EXTENSION *e;
	X509 *x;

	ASN1_OCTET_STRING_set(data, (const unsigned char *)"\x05\x00", 2);
	good_template(&tpl, "classic");
	x = build(&tpl);
	resign(x);
	TH_CHECK(
	    t, run_lint("no_unknown_critical_ext", x, L.ids, "classic") == 0);
	e = X509_EXTENSION_create_by_OBJ(NULL, obj, 1, data);
	X509_add_ext(x, e, -1);
	resign(x);
	TH_CHECK(
	    t, run_lint("no_unknown_critical_ext", x, L.ids, "classic") == -1);
	X509_EXTENSION_free(e);
	ASN1_OBJECT_free(obj);
	ASN1_OCTET_STRING_free(data);
	X509_free(x);
	/* A known extension made critical when it should not be. */
	TH_CHECK(t,
	    lint_ext(&tpl, "no_unknown_critical_ext", NID_info_access,
		"critical,caIssuers;URI:http://x.test/") == -1);
}

TH_TEST(test_lint_not_ca)
{
	check_lint_ext(t, "not_ca", NID_basic_constraints, "critical,CA:TRUE");
}

TH_TEST(test_lint_empty_subject_san_critical)
{
	struct ca_tbs tpl;
	X509 *x;
	int idx;

	good_template(&tpl, "tlsserver");
	x = build(&tpl);
	resign(x);
	TH_CHECK(t,
	    run_lint("empty_subject_san_critical", x, L.ids, "tlsserver") == 0);
	idx = X509_get_ext_by_NID(x, NID_subject_alt_name, -1);
	X509_EXTENSION_set_critical(X509_get_ext(x, idx), 0);
	resign(x);
	TH_CHECK(t,
	    run_lint("empty_subject_san_critical", x, L.ids, "tlsserver") ==
		-1);
	X509_free(x);
}

TH_TEST(test_lint_revocation_info)
{
	check_lint_ext(t, "revocation_info", NID_crl_distribution_points, NULL);
}

/* An RSA SPKI like key's but without the NULL algorithm parameters. */
static X509_PUBKEY *
rsa_spki_without_null(EVP_PKEY *key)
{
	X509_PUBKEY *canon = NULL, *out = NULL, *set = NULL;
	const unsigned char *pk = NULL, *p;
	unsigned char *copy, *der = NULL;
	int pklen = 0, derlen;

	if (!X509_PUBKEY_set(&canon, key) ||
	    !X509_PUBKEY_get0_param(NULL, &pk, &pklen, NULL, canon) ||
	    (copy = OPENSSL_memdup(pk, (size_t)pklen)) == NULL)
		goto out;
	if ((set = X509_PUBKEY_new()) == NULL ||
	    !X509_PUBKEY_set0_param(set, OBJ_nid2obj(NID_rsaEncryption),
		V_ASN1_UNDEF, NULL, copy, pklen)) {
		OPENSSL_free(copy);
		goto out;
	}
	/* through DER, as a CSR would bring it, so the key is decoded */
	if ((derlen = i2d_X509_PUBKEY(set, &der)) > 0) {
		p = der;
		out = d2i_X509_PUBKEY(NULL, &p, derlen);
	}
out:
	OPENSSL_free(der);
	X509_PUBKEY_free(set);
	X509_PUBKEY_free(canon);
	return out;
}

/* The SPKI of an EC key encoded with param (ENCODING / POINT_FORMAT). */
static X509_PUBKEY *
ec_spki_with(EVP_PKEY *key, const char *param, const char *value)
{
	EVP_PKEY *d = EVP_PKEY_dup(key);
	X509_PUBKEY *out = NULL;

	if (d != NULL && EVP_PKEY_set_utf8_string_param(d, param, value))
		X509_PUBKEY_set(&out, d);
	EVP_PKEY_free(d);
	return out;
}

/* Issue 19: odd encodings of a key are not canonical; the certificate
 * built from one fails spki_canonical; every encoding of one key has the
 * same key hash (the one blocked_keys is keyed by). */
TH_TEST(test_spki_canonical)
{
	EVP_PKEY *rsa = ca_key_generate(CA_KEY_RSA, 2048);
	X509_PUBKEY *odd[3] = {NULL, NULL, NULL}, *canon_ec = NULL,
		    *canon_rsa = NULL;
	struct ca_tbs tpl;
	char *h0 = NULL, *h1 = NULL;
	size_t i;

	odd[0] = rsa_spki_without_null(rsa);
	odd[1] =
	    ec_spki_with(L.subject, OSSL_PKEY_PARAM_EC_ENCODING, "explicit");
	odd[2] = ec_spki_with(L.subject,
	    OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, "compressed");
	X509_PUBKEY_set(&canon_ec, L.subject);
	X509_PUBKEY_set(&canon_rsa, rsa);
	TH_CHECK(t, key_spki_is_canonical(canon_ec) == 1);
	TH_CHECK(t, key_spki_is_canonical(canon_rsa) == 1);
	for (i = 0; i < 3; i++) {
		TH_CHECK(t, odd[i] != NULL);
		if (odd[i] == NULL)
			continue;
		TH_CHECK(t, key_spki_is_canonical(odd[i]) == 0);
		/* same key hash however the key was encoded */
		h0 = key_hash_hex(
		    X509_PUBKEY_get0(i == 0 ? canon_rsa : canon_ec));
		h1 = key_hash_hex(X509_PUBKEY_get0(odd[i]));
		TH_CHECK(t, h0 != NULL);
		TH_CHECK(t, h1 != NULL && strcmp(h0, h1) == 0);
		free(h0);
		free(h1);
		/* a certificate carrying the odd block (copied as it came, the
		 * old fast path) fails the lint */
		good_template(&tpl, "classic");
		tpl.pubkey = i == 0 ? rsa : L.subject;
		tpl.spki = odd[i];
		TH_CHECK(t,
		    lint_tpl(&tpl, "spki_canonical", L.ids, "classic") == -1);
	}
	good_template(&tpl, "classic");
	tpl.spki = canon_ec;
	TH_CHECK(t, lint_tpl(&tpl, "spki_canonical", L.ids, "classic") == 0);
	for (i = 0; i < 3; i++)
		X509_PUBKEY_free(odd[i]);
	X509_PUBKEY_free(canon_ec);
	X509_PUBKEY_free(canon_rsa);
	EVP_PKEY_free(rsa);
}

TH_TEST(test_lint_spki_matches_request)
{
	struct ca_tbs tpl;
	struct ca_lint_input in;
	X509_PUBKEY *mine = NULL, *other = NULL;
	EVP_PKEY *ok = NULL;
	char msg[256];
	X509 *x;

	X509_PUBKEY_set(&mine, L.subject);
	X509_PUBKEY_set(&other, L.signer);
	good_template(&tpl, "classic");
	tpl.spki = mine; /* the fast path: SPKI copied as ASN.1 */
	x = build(&tpl);
	TH_CHECK(t, x != NULL);
	if (x == NULL)
		goto out;
	resign(x);
	memset(&in, 0, sizeof(in));
	in.cert = x;
	in.identifiers = L.ids;
	in.profile = tpl.profile;
	in.pubkey = L.subject;
	in.spki = mine;
	TH_CHECK(t,
	    ca_lint_find("spki_matches_request")->fn(&in, msg, sizeof(msg)) ==
		0);
	TH_CHECK(
	    t, ca_lint_find("key_allowed")->fn(&in, msg, sizeof(msg)) == 0);
	in.spki = other;
	in.pubkey = L.signer;
	TH_CHECK(t,
	    ca_lint_find("spki_matches_request")->fn(&in, msg, sizeof(msg)) ==
		-1);
	/* The copied SPKI decodes to the subject key. */
	ok = X509_get_pubkey(x);
	TH_CHECK(t, ok == NULL || EVP_PKEY_eq(ok, L.subject) == 1);
	X509_free(x);
out:
	EVP_PKEY_free(ok);
	X509_PUBKEY_free(mine);
	X509_PUBKEY_free(other);
}

TH_TEST(test_fast_and_slow_spki_give_the_same_tbs)
{
	struct ca_tbs tpl;
	X509_PUBKEY *spki = NULL;
	X509 *a, *b;
	uint8_t *da = NULL, *db = NULL;
	size_t la = 0, lb = 0;
	EVP_PKEY *rsa = ca_key_generate(CA_KEY_RSA, 2048);
	int i;

	for (i = 0; i < 2; i++) {
		good_template(&tpl, "classic");
		if (i == 1)
			tpl.pubkey = rsa;
		X509_PUBKEY_set(&spki, tpl.pubkey);
		a = build(&tpl);
		tpl.spki = spki;
		b = build(&tpl);
		X509_sign(a, L.signer, EVP_sha256());
		X509_sign(b, L.signer, EVP_sha256());
		TH_CHECK(t,
		    ca_tbs_der(a, &da, &la) == 0 &&
			ca_tbs_der(b, &db, &lb) == 0);
		TH_CHECK(t, la == lb && la > 0 && memcmp(da, db, la) == 0);
		free(da);
		free(db);
		da = db = NULL;
		X509_free(a);
		X509_free(b);
		X509_PUBKEY_free(spki);
		spki = NULL;
	}
	EVP_PKEY_free(rsa);
}

TH_TEST(test_tbs_is_deterministic)
{
	struct ca_tbs tpl;
	X509 *a, *b;
	uint8_t *da = NULL, *db = NULL;
	size_t la = 0, lb = 0;

	good_template(&tpl, "classic");
	a = build(&tpl);
	b = build(&tpl);
	X509_sign(a, L.signer, EVP_sha256());
	X509_sign(b, L.ecdsa->key, EVP_sha256());
	TH_CHECK(
	    t, ca_tbs_der(a, &da, &la) == 0 && ca_tbs_der(b, &db, &lb) == 0);
	TH_CHECK(t, la == lb && la > 0 && memcmp(da, db, la) == 0);
	free(da);
	free(db);
	X509_free(a);
	X509_free(b);
}

int
main(void)
{
	struct th t = TH_INIT;

	log_init("test_ca_lint", LOG_LEVEL_ERROR);
	if (setup() != 0) {
		printf("0 passed, 1 failed\n");
		return 1;
	}
	th_run_tests(&t);
	teardown();
	return th_done(&t);
}

/* Runs every lint (ca_lint_all) on x for profile with ca as asked: 0 all
 * pass, -1 one fired (named in stderr). */
static int
lint_all_ca(X509 *x, const json_t *ids, const char *profile, int ca)
{
	struct ca_lint_input in;
	const char *failed = NULL;
	char msg[256];
	int rc;

	memset(&in, 0, sizeof(in));
	in.cert = x;
	in.identifiers = ids;
	in.profile = profiles_find(L.profiles, profile);
	in.ca = ca;
	rc = ca_lint_all(&in, &failed, msg, sizeof(msg));
	if (rc != 0)
		fprintf(stderr, "  %s: %s: %s\n", profile, failed, msg);
	return rc;
}

/* RFC 9448 "ca": true: a STIR CA certificate of a tkauth_ca profile passes
 * every lint; the same certificate asked as an end entity, or from a
 * profile without tkauth_ca, or with a pathlen other than 0, does not. */
TH_TEST(test_lint_stir_ca_certificate)
{
	/* SEQUENCE { [0] { IA5String "709J" } } as unpadded base64url */
	json_t *ids = json_pack(
	    "[{s:s, s:s}]", "type", "TNAuthList", "value", "MAigBhYENzA5Sg");
	struct ca_tbs tpl;
	X509 *x;

	good_template(&tpl, "stir-ca");
	tpl.sans = ids;
	tpl.cn = NULL;
	tpl.ca = 1;
	x = build(&tpl);
	TH_CHECK(t, x != NULL);
	if (x == NULL)
		goto out;
	resign(x);
	TH_CHECK(t, X509_check_ca(x) == 1);
	TH_CHECK(t, X509_get_key_usage(x) == (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
	TH_CHECK(t, lint_all_ca(x, ids, "stir-ca", 1) == 0);
	TH_CHECK(t, lint_all_ca(x, ids, "stir-ca", 0) == -1);
	TH_CHECK(t, lint_all_ca(x, ids, "stir", 1) == -1);
	set_ext(x, NID_basic_constraints, "critical,CA:TRUE,pathlen:1");
	TH_CHECK(t, lint_all_ca(x, ids, "stir-ca", 1) == -1);
	X509_free(x);
	/* the end-entity STIR certificate of the same profile still passes */
	tpl.ca = 0;
	x = build(&tpl);
	TH_CHECK(t, x != NULL);
	if (x != NULL) {
		resign(x);
		TH_CHECK(t, lint_all_ca(x, ids, "stir-ca", 0) == 0);
		X509_free(x);
	}
out:
	json_decref(ids);
}
