/* LIBS: core */
/*
 * test_tnauth.c - the RFC 8226 §9 TNAuthList parser (core/tnauth.c) and
 * the RFC 9448 §3 identifier check, on hand-made DER.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "core/core.h"
#include "test/unit/harness.h"

/* SEQUENCE { [0] { IA5String "709J" } } */
static const uint8_t spc_709j[] = {
    0x30, 0x08, 0xa0, 0x06, 0x16, 0x04, '7', '0', '9', 'J'};
/* SEQUENCE { [2] "12025550100", [1] { SEQUENCE { "1202555", 100 } } } */
static const uint8_t one_and_range[] = {0x30, 0x1f, 0xa2, 0x0d, 0x16, 0x0b,
    '1', '2', '0', '2', '5', '5', '5', '0', '1', '0', '0', 0xa1, 0x0e, 0x30,
    0x0c, 0x16, 0x07, '1', '2', '0', '2', '5', '5', '5', 0x02, 0x01, 0x64};

static int
parses(const uint8_t *d, size_t n)
{
	char err[200];

	return tnauth_parse(d, n, NULL, err, sizeof(err)) == 0;
}

TH_TEST(test_tnauth_valid)
{
	struct tnauth_list l;
	char err[200], buf[80];

	TH_CHECK(t, tnauth_parse(spc_709j, sizeof(spc_709j), &l, err,
			sizeof(err)) == 0);
	TH_CHECK(t, l.n == 1 && l.e[0].kind == TNAUTH_SPC);
	TH_CHECK_STR(t, l.e[0].text, "709J");
	TH_CHECK_STR(t, tnauth_summary(&l, buf, sizeof(buf)), "SPC 709J");
	TH_CHECK(t, tnauth_parse(one_and_range, sizeof(one_and_range), &l, err,
			sizeof(err)) == 0);
	TH_CHECK(t, l.n == 2 && l.e[0].kind == TNAUTH_ONE &&
		l.e[1].kind == TNAUTH_RANGE && l.e[1].count == 100);
	TH_CHECK_STR(t, l.e[0].text, "12025550100");
	TH_CHECK_STR(t, l.e[1].text, "1202555");
	TH_CHECK_STR(t, tnauth_summary(&l, buf, sizeof(buf)),
	    "TN 12025550100 +1 more");
}

/* RFC 8226 Appendix A is "DEFINITIONS EXPLICIT TAGS": an implicitly
 * tagged spc (80 04 ...) is not a TNEntry. */
TH_TEST(test_tnauth_refuses_implicit_tags)
{
	static const uint8_t implicit[] = {
	    0x30, 0x06, 0x80, 0x04, '7', '0', '9', 'J'};

	TH_CHECK(t, !parses(implicit, sizeof(implicit)));
}

TH_TEST(test_tnauth_refuses_non_der)
{
	/* SIZE (1..MAX): an empty list */
	static const uint8_t empty[] = {0x30, 0x00};
	/* BER indefinite length */
	static const uint8_t indef[] = {0x30, 0x80, 0xa0, 0x06, 0x16, 0x04, '7',
	    '0', '9', 'J', 0x00, 0x00};
	/* long form for a length below 128 */
	static const uint8_t longlen[] = {
	    0x30, 0x81, 0x08, 0xa0, 0x06, 0x16, 0x04, '7', '0', '9', 'J'};
	/* a byte after the list */
	static const uint8_t trailing[] = {
	    0x30, 0x08, 0xa0, 0x06, 0x16, 0x04, '7', '0', '9', 'J', 0x00};
	/* inner length beyond its parent */
	static const uint8_t overrun[] = {
	    0x30, 0x08, 0xa0, 0x07, 0x16, 0x04, '7', '0', '9', 'J'};
	/* spc [0] holding a UTF8String instead of an IA5String */
	static const uint8_t utf8[] = {
	    0x30, 0x08, 0xa0, 0x06, 0x0c, 0x04, '7', '0', '9', 'J'};

	TH_CHECK(t, !parses(empty, sizeof(empty)));
	TH_CHECK(t, !parses(indef, sizeof(indef)));
	TH_CHECK(t, !parses(longlen, sizeof(longlen)));
	TH_CHECK(t, !parses(trailing, sizeof(trailing)));
	TH_CHECK(t, !parses(overrun, sizeof(overrun)));
	TH_CHECK(t, !parses(utf8, sizeof(utf8)));
	TH_CHECK(t, !parses(spc_709j, sizeof(spc_709j) - 1));
	TH_CHECK(t, !parses(NULL, 0));
}

/* TelephoneNumber ::= IA5String (SIZE (1..15)) (FROM ("0123456789#*"));
 * count INTEGER (2..MAX). */
TH_TEST(test_tnauth_refuses_bad_numbers)
{
	static const uint8_t letter[] = {
	    0x30, 0x07, 0xa2, 0x05, 0x16, 0x03, '1', 'a', '2'};
	static const uint8_t sixteen[] = {0x30, 0x14, 0xa2, 0x12, 0x16, 0x10,
	    '1', '2', '3', '4', '5', '6', '7', '8', '9', '0', '1', '2', '3',
	    '4', '5', '6'};
	static const uint8_t hash_star[] = {
	    0x30, 0x07, 0xa2, 0x05, 0x16, 0x03, '1', '#', '*'};
	static const uint8_t count1[] = {0x30, 0x0b, 0xa1, 0x09, 0x30, 0x07,
	    0x16, 0x02, '1', '2', 0x02, 0x01, 0x01};
	static const uint8_t count_neg[] = {0x30, 0x0b, 0xa1, 0x09, 0x30, 0x07,
	    0x16, 0x02, '1', '2', 0x02, 0x01, 0x80};
	static const uint8_t count_pad[] = {0x30, 0x0c, 0xa1, 0x0a, 0x30, 0x08,
	    0x16, 0x02, '1', '2', 0x02, 0x02, 0x00, 0x64};
	static const uint8_t count_ok[] = {0x30, 0x0c, 0xa1, 0x0a, 0x30, 0x08,
	    0x16, 0x02, '1', '2', 0x02, 0x02, 0x00, 0x80};
	static const uint8_t range_extra[] = {0x30, 0x0d, 0xa1, 0x0b, 0x30,
	    0x09, 0x16, 0x02, '1', '2', 0x02, 0x01, 0x64, 0x05, 0x00};

	TH_CHECK(t, !parses(letter, sizeof(letter)));
	TH_CHECK(t, !parses(sixteen, sizeof(sixteen)));
	TH_CHECK(t, parses(hash_star, sizeof(hash_star)));
	TH_CHECK(t, !parses(count1, sizeof(count1)));
	TH_CHECK(t, !parses(count_neg, sizeof(count_neg)));
	TH_CHECK(t, !parses(count_pad, sizeof(count_pad)));
	TH_CHECK(t, parses(count_ok, sizeof(count_ok)));
	TH_CHECK(t, !parses(range_extra, sizeof(range_extra)));
}

/* RFC 9448 §3: "the ACME "identifier" value is the base64url encoding of
 * the TNAuthList ASN.1 object using DER encoding rules". */
TH_TEST(test_tnauth_identifier)
{
	char err[200], *v = b64url_encode(spc_709j, sizeof(spc_709j)), *pad;
	uint8_t *der = NULL;
	size_t n = 0;

	TH_CHECK(t, ident_tnauthlist_check(v, &der, &n, err, sizeof(err)) == 0);
	TH_CHECK(t, n == sizeof(spc_709j) && der != NULL &&
		memcmp(der, spc_709j, n) == 0);
	free(der);
	pad = xasprintf("%s==", v);
	TH_CHECK(t, ident_tnauthlist_check(pad, NULL, NULL, err, sizeof(err)) !=
		0);
	TH_CHECK(t, ident_tnauthlist_check("", NULL, NULL, err, sizeof(err)) !=
		0);
	TH_CHECK(t, ident_tnauthlist_check("MAA", NULL, NULL, err,
			sizeof(err)) != 0); /* 30 00 */
	TH_CHECK(t, strcmp(ident_type_name(IDENT_TNAUTHLIST), "TNAuthList") ==
		0);
	free(pad);
	free(v);
}

/* RFC 9447 §3: tkauth-01 validates the TNAuthList identifier only. */
TH_TEST(test_tkauth_challenge_row)
{
	const struct chal_info *c = chal_lookup("tkauth-01");
	char err[200];

	TH_CHECK(t, c != NULL && c->type == CHAL_TKAUTH01);
	if (c == NULL)
		return;
	TH_CHECK(t, chal_check(c, IDENT_TNAUTHLIST, 0, err, sizeof(err)) == 0);
	TH_CHECK(t, chal_check(c, IDENT_DNS, 0, err, sizeof(err)) != 0);
	TH_CHECK(t, chal_check(chal_lookup("http-01"), IDENT_TNAUTHLIST, 0,
			err, sizeof(err)) != 0);
}

TH_MAIN((void)0) /* nothing to set up */

/* A CSR signed with a fresh P-256 key, with basicConstraints bc (an
 * X509V3 config string) when not NULL. New, or NULL. */
static X509_REQ *
csr_with_bc(const char *bc)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509_REQ *r = X509_REQ_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509_EXTENSION *e = NULL;

	if (k == NULL || r == NULL || exts == NULL ||
	    !X509_REQ_set_pubkey(r, k))
		goto fail;
	if (bc != NULL) {
		e = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, bc);
		if (e == NULL || !sk_X509_EXTENSION_push(exts, e) ||
		    !X509_REQ_add_extensions(r, exts))
			goto fail;
	}
	if (X509_REQ_sign(r, k, EVP_sha256()) <= 0)
		goto fail;
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	EVP_PKEY_free(k);
	return r;
fail:
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	EVP_PKEY_free(k);
	X509_REQ_free(r);
	return NULL;
}

/* RFC 9448 §6 step 9 compares "ca" with "the CSR request for either a CA
 * certificate or an end-entity certificate": cA TRUE is a CA request, no
 * basicConstraints or cA FALSE an end-entity one. */
TH_TEST(test_csr_requests_ca)
{
	static const struct {
		const char *bc;
		int want;
	} cases[] = {{NULL, 0}, {"critical,CA:FALSE", 0},
	    {"critical,CA:TRUE", 1}, {"CA:TRUE,pathlen:0", 1}};
	X509_REQ *r;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		r = csr_with_bc(cases[i].bc);
		TH_CHECK(t, r != NULL);
		if (r == NULL)
			continue;
		TH_CHECK(t, csr_requests_ca(r) == cases[i].want);
		X509_REQ_free(r);
	}
}

/* A stack of n TNAuthList extensions holding der/len. Caller frees. */
static STACK_OF(X509_EXTENSION) *
tnauth_exts(const uint8_t *der, size_t len, int n)
{
	STACK_OF(X509_EXTENSION) *sk = sk_X509_EXTENSION_new_null();
	ASN1_OBJECT *oid = OBJ_txt2obj(TNAUTH_OID, 1);
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	int i;

	ASN1_OCTET_STRING_set(os, der, (int)len);
	for (i = 0; i < n; i++)
		sk_X509_EXTENSION_push(
		    sk, X509_EXTENSION_create_by_OBJ(NULL, oid, 0, os));
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(oid);
	return sk;
}

/* RFC 9448: the certificate carries the identifier's TNAuthList; the CSR
 * may omit the extension but, when it has one, it is exactly that. */
TH_TEST(test_tnauth_ext_check)
{
	const char *spc = "MAigBhYENzA5Sg"; /* spc_709j, base64url */
	STACK_OF(X509_EXTENSION) *sk;
	char err[200];

	TH_CHECK(t, tnauth_ext_check(NULL, spc, err, sizeof(err)) == 0);
	sk = tnauth_exts(spc_709j, sizeof(spc_709j), 1);
	TH_CHECK(t, tnauth_ext_check(sk, spc, err, sizeof(err)) == 1);
	sk_X509_EXTENSION_pop_free(sk, X509_EXTENSION_free);
	sk = tnauth_exts(spc_709j, sizeof(spc_709j), 2);
	TH_CHECK(t, tnauth_ext_check(sk, spc, err, sizeof(err)) == -1 &&
			strstr(err, "twice") != NULL);
	sk_X509_EXTENSION_pop_free(sk, X509_EXTENSION_free);
	sk = tnauth_exts(one_and_range, sizeof(one_and_range), 1);
	TH_CHECK(t, tnauth_ext_check(sk, spc, err, sizeof(err)) == -1 &&
			strstr(err, "not the identifier's DER") != NULL);
	TH_CHECK(t, tnauth_ext_check(sk, "not base64url!", err, sizeof(err)) ==
			-1);
	sk_X509_EXTENSION_pop_free(sk, X509_EXTENSION_free);
}
