/* LIBS: ra jose rpc core */
/*
 * test_ra_deleg.c - the RFC 9115 CSR template without I/O: its syntax
 * check (appendix A), a delegated order's identifiers against it, CSRs
 * against it (section 4.1) and whether a profile stays within it, plus the
 * "delegation" config.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "csr_der.h"
#include "harness.h"
#include "ra/ra.h"

/* RFC 9115 section 4.2, "Example CSR template" (abc.ido.example). */
static const char *const example =
    "{\"keyTypes\": [{\"PublicKeyType\": \"rsaEncryption\", "
    "\"PublicKeyLength\": 2048, \"SignatureType\": "
    "\"sha256WithRSAEncryption\"}, {\"PublicKeyType\": \"id-ecPublicKey\", "
    "\"namedCurve\": \"secp256r1\", \"SignatureType\": "
    "\"ecdsa-with-SHA256\"}], \"subject\": {\"country\": \"CA\", "
    "\"stateOrProvince\": \"**\", \"locality\": \"**\"}, \"extensions\": "
    "{\"subjectAltName\": {\"DNS\": [\"abc.ido.example\"]}, \"keyUsage\": "
    "[\"digitalSignature\"], \"extendedKeyUsage\": [\"serverAuth\", "
    "\"clientAuth\"]}}";

static json_t *
tmpl_of(const char *s)
{
	json_t *t = json_loads(s, 0, NULL);

	if (t == NULL)
		abort();
	return t;
}

/* What a test CSR carries. */
struct req {
	int curve;         /* NID of an EC curve, or 0 for RSA */
	int rsa_bits;
	const EVP_MD *md;  /* NULL: SHA-256 */
	const char *subj;  /* "C=CA/ST=x/L=y" */
	const char *sans;  /* "DNS:a,DNS:b" */
	const char *ku;    /* NULL: none */
	const char *eku;   /* NULL: none */
	const char *extra; /* one more extension "name=value", or NULL */
};

static void
add_ext(STACK_OF(X509_EXTENSION) * exts, int nid, const char *value)
{
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, nid, value);

	if (e == NULL)
		abort();
	sk_X509_EXTENSION_push(exts, e);
}

/* DER of the CSR q describes (malloc'd, *len). */
static uint8_t *
make_csr(const struct req *q, size_t *len)
{
	EVP_PKEY *pk = q->curve ? EVP_EC_gen(OBJ_nid2sn(q->curve))
				: EVP_RSA_gen((unsigned)q->rsa_bits);
	X509_REQ *r = X509_REQ_new();
	X509_NAME *n = X509_NAME_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	char buf[256], *tok, *save = NULL, *eq;
	uint8_t *der;

	snprintf(buf, sizeof(buf), "%s", q->subj ? q->subj : "");
	for (tok = strtok_r(buf, "/", &save); tok != NULL;
	     tok = strtok_r(NULL, "/", &save)) {
		eq = strchr(tok, '=');
		*eq = '\0';
		X509_NAME_add_entry_by_txt(n, tok, MBSTRING_UTF8,
		    (unsigned char *)eq + 1, -1, -1, 0);
	}
	X509_REQ_set_subject_name(r, n);
	X509_REQ_set_pubkey(r, pk);
	if (q->sans)
		add_ext(exts, NID_subject_alt_name, q->sans);
	if (q->ku)
		add_ext(exts, NID_key_usage, q->ku);
	if (q->eku)
		add_ext(exts, NID_ext_key_usage, q->eku);
	if (q->extra) {
		snprintf(buf, sizeof(buf), "%s", q->extra);
		eq = strchr(buf, '=');
		*eq = '\0';
		add_ext(exts, OBJ_sn2nid(buf), eq + 1);
	}
	X509_REQ_add_extensions(r, exts);
	der = csr_sign_der(r, pk, q->md ? q->md : EVP_sha256(), len);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_NAME_free(n);
	X509_REQ_free(r);
	EVP_PKEY_free(pk);
	return der;
}

/* The good CSR of the example template; tests change one thing. */
static struct req
good(void)
{
	struct req q = {NID_X9_62_prime256v1, 0, NULL,
	    "C=CA/ST=Quebec/L=Montreal", "DNS:abc.ido.example",
	    "critical,digitalSignature", "serverAuth,clientAuth", NULL};
	return q;
}

/* ra_deleg_template_match of q against template s: 0, or the problem
 * type's index + 1 (badCSR expected). */
static int
match(const char *s, const struct req *q, char *detail, size_t dlen)
{
	json_t *t = tmpl_of(s);
	struct problem *p = NULL;
	size_t len = 0;
	uint8_t *der = make_csr(q, &len);
	int rc = ra_deleg_template_match(t, der, len, &p);

	if (detail)
		snprintf(detail, dlen, "%s", p && p->detail ? p->detail : "");
	if (rc != 0)
		rc = p != NULL && p->type == PROB_BAD_CSR ? 1 : 2;
	problem_free(p);
	free(der);
	json_decref(t);
	return rc;
}

TH_TEST(test_syntax)
{
	static const char *const bad[] = {
	    "[]",
	    "{\"keyTypes\": [], \"extensions\": {\"subjectAltName\": "
	    "{\"DNS\": [\"a.example\"]}}}",
	    /* no extensions */
	    "{\"keyTypes\": [{\"PublicKeyType\": \"id-ecPublicKey\", "
	    "\"namedCurve\": \"secp256r1\", \"SignatureType\": "
	    "\"ecdsa-with-SHA256\"}]}",
	    /* appendix A: the parameters form an acceptable combination */
	    "{\"keyTypes\": [{\"PublicKeyType\": \"id-ecPublicKey\", "
	    "\"namedCurve\": \"secp384r1\", \"SignatureType\": "
	    "\"ecdsa-with-SHA256\"}], \"extensions\": {\"subjectAltName\": "
	    "{\"DNS\": [\"a.example\"]}}}",
	    /* RSA without PublicKeyLength */
	    "{\"keyTypes\": [{\"PublicKeyType\": \"rsaEncryption\", "
	    "\"SignatureType\": \"sha256WithRSAEncryption\", \"x\": 1}], "
	    "\"extensions\": {\"subjectAltName\": {\"DNS\": [\"a.example\"]}}}",
	    /* Email is regtext: no wildcard */
	    "{\"keyTypes\": [{\"PublicKeyType\": \"id-ecPublicKey\", "
	    "\"namedCurve\": \"secp256r1\", \"SignatureType\": "
	    "\"ecdsa-with-SHA256\"}], \"extensions\": {\"subjectAltName\": "
	    "{\"Email\": [\"*\"]}}}",
	    /* an empty subject (non-empty<distinguishedName>) */
	    "{\"keyTypes\": [{\"PublicKeyType\": \"id-ecPublicKey\", "
	    "\"namedCurve\": \"secp256r1\", \"SignatureType\": "
	    "\"ecdsa-with-SHA256\"}], \"subject\": {}, \"extensions\": "
	    "{\"subjectAltName\": {\"DNS\": [\"a.example\"]}}}",
	    /* unknown key usage, EKU not an OID */
	    "{\"keyTypes\": [{\"PublicKeyType\": \"id-ecPublicKey\", "
	    "\"namedCurve\": \"secp256r1\", \"SignatureType\": "
	    "\"ecdsa-with-SHA256\"}], \"extensions\": {\"subjectAltName\": "
	    "{\"DNS\": [\"a.example\"]}, \"keyUsage\": [\"signEverything\"]}}",
	    "{\"keyTypes\": [{\"PublicKeyType\": \"id-ecPublicKey\", "
	    "\"namedCurve\": \"secp256r1\", \"SignatureType\": "
	    "\"ecdsa-with-SHA256\"}], \"extensions\": {\"subjectAltName\": "
	    "{\"DNS\": [\"a.example\"]}, \"extendedKeyUsage\": [\"1.02.3\"]}}",
	    /* unregistered extension */
	    "{\"keyTypes\": [{\"PublicKeyType\": \"id-ecPublicKey\", "
	    "\"namedCurve\": \"secp256r1\", \"SignatureType\": "
	    "\"ecdsa-with-SHA256\"}], \"extensions\": {\"subjectAltName\": "
	    "{\"DNS\": [\"a.example\"]}, \"basicConstraints\": []}}",
	};
	char err[300];
	json_t *tm;
	size_t i;

	tm = tmpl_of(example);
	TH_CHECK(t, ra_deleg_template_check(tm, err, sizeof(err)) == 0);
	json_decref(tm);
	tm = tmpl_of("{\"keyTypes\": [{\"PublicKeyType\": \"id-ecPublicKey\", "
		     "\"namedCurve\": \"secp256r1\", \"SignatureType\": "
		     "\"ecdsa-with-SHA256\"}], \"extensions\": "
		     "{\"subjectAltName\": {\"DNS\": [\"a.example\"]}, "
		     "\"extendedKeyUsage\": [\"1.3.6.1.5.5.7.3.1\"]}}");
	TH_CHECK(t, ra_deleg_template_check(tm, err, sizeof(err)) == 0);
	json_decref(tm);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tm = tmpl_of(bad[i]);
		err[0] = '\0';
		TH_CHECK(t, ra_deleg_template_check(tm, err, sizeof(err)) == -1);
		TH_CHECK(t, err[0] != '\0');
		json_decref(tm);
	}
}

static json_t *
dns_idents(const char *a, const char *b)
{
	json_t *l = json_array();

	json_array_append_new(
	    l, json_pack("{s:s,s:s}", "type", "dns", "value", a));
	if (b)
		json_array_append_new(
		    l, json_pack("{s:s,s:s}", "type", "dns", "value", b));
	return l;
}

static int
idents_ok(const char *tmpl, const char *a, const char *b)
{
	json_t *tm = tmpl_of(tmpl), *ids = dns_idents(a, b);
	struct problem *p = NULL;
	int rc = ra_deleg_template_idents(tm, ids, &p);

	if (rc != 0 && (p == NULL || p->type != PROB_REJECTED_IDENTIFIER))
		rc = 2;
	problem_free(p);
	json_decref(tm);
	json_decref(ids);
	return rc;
}

TH_TEST(test_idents)
{
	static const char two[] =
	    "{\"keyTypes\": [{\"PublicKeyType\": \"id-ecPublicKey\", "
	    "\"namedCurve\": \"secp256r1\", \"SignatureType\": "
	    "\"ecdsa-with-SHA256\"}], \"extensions\": {\"subjectAltName\": "
	    "{\"DNS\": [\"abc.ido.example\", \"**\"]}}}";
	static const char opt[] =
	    "{\"keyTypes\": [{\"PublicKeyType\": \"id-ecPublicKey\", "
	    "\"namedCurve\": \"secp256r1\", \"SignatureType\": "
	    "\"ecdsa-with-SHA256\"}], \"extensions\": {\"subjectAltName\": "
	    "{\"DNS\": [\"abc.ido.example\", \"*\"]}}}";
	/* template, one or two DNS identifiers, idents_ok's answer */
	const struct {
		const char *tmpl, *a, *b;
		int want;
	} cases[] = {
	    {example, "abc.ido.example", NULL, 0},
	    /* case-insensitive, as DNS names are */
	    {example, "ABC.ido.example", NULL, 0},
	    {example, "www.ido.example", NULL, -1},
	    {example, "abc.ido.example", "www.ido.example", -1},
	    /* "**": a mandatory name of the client's choosing */
	    {two, "abc.ido.example", NULL, -1},
	    {two, "abc.ido.example", "x.ido.example", 0},
	    {two, "x.ido.example", "y.ido.example", -1},
	    /* "*": an optional one */
	    {opt, "abc.ido.example", NULL, 0},
	    {opt, "abc.ido.example", "x.ido.example", 0},
	    /* the same name twice does not fill a slot */
	    {opt, "abc.ido.example", "abc.ido.example", -1},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		TH_CHECK(t,
		    idents_ok(cases[i].tmpl, cases[i].a, cases[i].b) ==
			cases[i].want);
}

/* The good CSR with one thing changed: field names the member of struct
 * req ("rsa": an RSA key of value bits; "curve", "md": by OpenSSL name;
 * "subj", "sans", "ku", "eku", "extra": the text, NULL for none). */
static struct req
good_but(const char *field, const char *value)
{
	struct req q = good();

	if (field == NULL)
		return q;
	if (strcmp(field, "rsa") == 0) {
		q.curve = 0;
		q.rsa_bits = atoi(value);
	} else if (strcmp(field, "curve") == 0)
		q.curve = OBJ_sn2nid(value);
	else if (strcmp(field, "md") == 0)
		q.md = EVP_get_digestbyname(value);
	else if (strcmp(field, "subj") == 0)
		q.subj = value;
	else if (strcmp(field, "sans") == 0)
		q.sans = value;
	else if (strcmp(field, "ku") == 0)
		q.ku = value;
	else if (strcmp(field, "eku") == 0)
		q.eku = value;
	else if (strcmp(field, "extra") == 0)
		q.extra = value;
	else
		abort();
	return q;
}

TH_TEST(test_csr)
{
	/* the good CSR with one change (good_but), what match gives (0
	 * matches, 1 badCSR) and a word the detail must hold (NULL: any) */
	static const struct {
		const char *field, *value;
		int want;
		const char *detail;
	} cases[] = {
	    {NULL, NULL, 0, NULL},
	    /* RSA 2048 with sha256WithRSAEncryption is the other key type */
	    {"rsa", "2048", 0, NULL},
	    /* keyTypes: "MUST have the type/size defined by one of the array
	     * members" */
	    {"rsa", "3072", 1, "keyTypes"},
	    {"curve", "secp384r1", 1, NULL},
	    {"md", "SHA384", 1, NULL},
	    /* subject: literal, "**" mandatory, nothing else */
	    {"subj", "C=FR/ST=Quebec/L=Montreal", 1, NULL},
	    {"subj", "C=CA/ST=Quebec", 1, "locality"},
	    {"subj", "C=CA/ST=Quebec/L=Montreal/CN=abc.ido.example", 1, NULL},
	    {"subj", "C=CA/ST=Quebec/ST=Ontario/L=Montreal", 1, NULL},
	    /* extensions: SAN names, literal keyUsage and EKU, nothing else */
	    {"sans", "DNS:abc.ido.example,DNS:www.ido.example", 1, NULL},
	    {"sans", "DNS:abc.ido.example,IP:192.0.2.1", 1, NULL},
	    {"sans", NULL, 1, NULL},
	    {"ku", NULL, 1, NULL},
	    {"ku", "digitalSignature,keyEncipherment", 1, NULL},
	    {"eku", "serverAuth", 1, NULL},
	    /* a set: the order does not count */
	    {"eku", "clientAuth,serverAuth", 0, NULL},
	    {"eku", "serverAuth,clientAuth,codeSigning", 1, NULL},
	    {"extra", "basicConstraints=CA:FALSE", 1, "basicConstraints"},
	};
	char d[400];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct req q = good_but(cases[i].field, cases[i].value);

		TH_CHECK(t, match(example, &q, d, sizeof(d)) == cases[i].want);
		TH_CHECK(t,
		    cases[i].detail == NULL ||
			strstr(d, cases[i].detail) != NULL);
	}
	/* garbage is badCSR, never a crash */
	{
		json_t *tm = tmpl_of(example);
		struct problem *p = NULL;
		const uint8_t junk[] = {0x30, 0x03, 0x02, 0x01, 0x00};

		TH_CHECK(t, ra_deleg_template_match(
				tm, junk, sizeof(junk), &p) == -1);
		TH_CHECK(t, p != NULL && p->type == PROB_BAD_CSR);
		problem_free(p);
		json_decref(tm);
	}
}

TH_TEST(test_profile)
{
	struct profile prof;
	json_t *tm = tmpl_of(example);
	char err[300];

	memset(&prof, 0, sizeof(prof));
	prof.name = "p";
	prof.eku_server_auth = 1;
	TH_CHECK(t, ra_deleg_template_profile(tm, &prof, 0, err, sizeof(err)) ==
		0);
	/* RSA certificates carry keyEncipherment: more than the template */
	TH_CHECK(t, ra_deleg_template_profile(tm, &prof, 1, err, sizeof(err)) ==
		-1);
	prof.eku_email_protection = 1;
	TH_CHECK(t, ra_deleg_template_profile(tm, &prof, 0, err, sizeof(err)) ==
		-1);
	TH_CHECK(t, strstr(err, "emailProtection") != NULL);
	json_decref(tm);
}

TH_TEST(test_config)
{
	/* a refused delegation section and what its error names */
	static const char *const bad[][2] = {
	    {"{\"max_per_account\": 0}", "delegation.max_per_account"},
	    {"{\"bogus\": 1}", "bogus"},
	};
	struct ra_deleg_config dc;
	char err[256];
	json_t *o;

	TH_CHECK(t, ra_deleg_config_parse(NULL, &dc, err, sizeof(err)) == 0);
	TH_CHECK(t, dc.enabled == 0 && dc.max_per_account == 100);
	ra_deleg_config_clear(&dc);
	o = json_loads(
	    "{\"enabled\": true, \"profiles\": [\"classic\"]}", 0, NULL);
	TH_CHECK(t, ra_deleg_config_parse(o, &dc, err, sizeof(err)) == 0);
	TH_CHECK(t, dc.enabled && dc.n_profiles == 1);
	ra_deleg_config_clear(&dc);
	json_decref(o);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o = json_loads(bad[i][0], 0, NULL);
		TH_CHECK(t,
		    ra_deleg_config_parse(o, &dc, err, sizeof(err)) == -1 &&
			strstr(err, bad[i][1]) != NULL);
		json_decref(o);
	}
}

TH_MAIN(log_init("test_ra_deleg", LOG_LEVEL_ERROR))
