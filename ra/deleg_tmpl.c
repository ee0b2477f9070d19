/*
 * deleg_tmpl.c - the RFC 9115 §4 CSR template of a delegation: its syntax
 * (the CDDL of RFC 9115 appendix A, checked when the domain owner stores
 * it), a delegated order's identifiers against it (newOrder), a CSR
 * against it (finalize), and whether a CA profile gives a certificate no
 * more than it allows. Pure functions, no I/O: unit-tested in
 * test/unit/test_ra_deleg.c and fuzzed by test/fuzz/fuzz_deleg_tmpl.c.
 *
 * Semantics (RFC 9115 §4.1; the choices are listed in docs/acme.md):
 *  - a literal string is a mandatory field with exactly that value, "**" a
 *    mandatory field of the client's choosing, "*" an optional one;
 *  - "The NDC MUST NOT include in the CSR any fields, including any
 *    extensions, unless they are specified in the template": any other
 *    subject attribute, extension, CSR attribute or name type is refused;
 *  - keyUsage / extendedKeyUsage are literal lists: when the template has
 *    one, the CSR carries that extension with exactly those values;
 *  - subjectAltName DNS: each literal name appears once; every other name
 *    takes a "**" (at least one name each) or "*" slot (at most one);
 *  - keyTypes: the CSR's key and its self-signature match one entry.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ra/ra.h"
#include "ra/ra_int.h"

#define TMPL_MAX_LIST 100
#define TMPL_MAX_STR 255

static const char *const dn_keys[] = {"country", "stateOrProvince",
    "locality", "organization", "organizationalUnit", "emailAddress",
    "commonName"};
static const int dn_nids[] = {NID_countryName, NID_stateOrProvinceName,
    NID_localityName, NID_organizationName, NID_organizationalUnitName,
    NID_pkcs9_emailAddress, NID_commonName};
#define N_DN (sizeof(dn_keys) / sizeof(dn_keys[0]))

/* RFC 5280 §4.2.1.3 bit order */
static const char *const ku_names[] = {"digitalSignature", "nonRepudiation",
    "keyEncipherment", "dataEncipherment", "keyAgreement", "keyCertSign",
    "cRLSign", "encipherOnly", "decipherOnly"};
#define N_KU (sizeof(ku_names) / sizeof(ku_names[0]))

static const struct {
	const char *name;
	int nid;
} eku_names[] = {
    {"serverAuth", NID_server_auth},
    {"clientAuth", NID_client_auth},
    {"codeSigning", NID_code_sign},
    {"emailProtection", NID_email_protect},
    {"timeStamping", NID_time_stamp},
    {"OCSPSigning", NID_OCSP_sign},
};
#define N_EKU (sizeof(eku_names) / sizeof(eku_names[0]))

static const struct {
	const char *name;
	int md_nid;
	int pss;
} rsa_sigs[] = {
    {"sha256WithRSAEncryption", NID_sha256, 0},
    {"sha384WithRSAEncryption", NID_sha384, 0},
    {"sha512WithRSAEncryption", NID_sha512, 0},
    {"sha256WithRSAandMGF1", NID_sha256, 1},
    {"sha384WithRSAandMGF1", NID_sha384, 1},
    {"sha512WithRSAandMGF1", NID_sha512, 1},
};
static const struct {
	const char *curve; /* RFC 9115 name */
	const char *group; /* OpenSSL group name */
	const char *sig;
	int sig_nid;
} ec_types[] = {
    {"secp256r1", "prime256v1", "ecdsa-with-SHA256", NID_ecdsa_with_SHA256},
    {"secp384r1", "secp384r1", "ecdsa-with-SHA384", NID_ecdsa_with_SHA384},
    {"secp521r1", "secp521r1", "ecdsa-with-SHA512", NID_ecdsa_with_SHA512},
};

/* ---- syntax ------------------------------------------------------------ */

static int
is_wild(const char *s)
{
	return strcmp(s, "*") == 0 || strcmp(s, "**") == 0;
}

/* 1 if s is a dotted-decimal OID (RFC 9115 appendix A `oid`). */
static int
is_oid(const char *s)
{
	const char *p = s;

	if (*p < '0' || *p > '2')
		return 0;
	p++;
	while (*p == '.') {
		p++;
		if (*p == '0') {
			p++;
		} else if (*p >= '1' && *p <= '9') {
			while (*p >= '0' && *p <= '9')
				p++;
		} else
			return 0;
	}
	return *p == '\0' && strlen(s) <= 64;
}

static int
name_in(const char *s, const char *const *names, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

static int
eku_nid(const char *s)
{
	size_t i;

	for (i = 0; i < N_EKU; i++)
		if (strcmp(s, eku_names[i].name) == 0)
			return eku_names[i].nid;
	return NID_undef;
}

/* A non-empty array of at most TMPL_MAX_LIST short strings; wild: "*" and
 * "**" allowed. 0 or -1 with err naming where. */
static int
check_strings(const json_t *a, const char *where, int wild, char *err,
    size_t errlen)
{
	json_t *v;
	size_t i;

	if (!json_is_array(a) || json_array_size(a) == 0 ||
	    json_array_size(a) > TMPL_MAX_LIST) {
		snprintf(err, errlen, "%s: a non-empty array of at most %d "
		    "strings", where, TMPL_MAX_LIST);
		return -1;
	}
	json_array_foreach(a, i, v)
	{
		if (!json_is_string(v) || json_string_length(v) == 0 ||
		    json_string_length(v) > TMPL_MAX_STR ||
		    strlen(json_string_value(v)) != json_string_length(v)) {
			snprintf(err, errlen, "%s[%zu]: a non-empty string",
			    where, i);
			return -1;
		}
		if (!wild && is_wild(json_string_value(v))) {
			snprintf(err, errlen, "%s[%zu]: \"*\" and \"**\" are "
			    "not allowed here", where, i);
			return -1;
		}
	}
	return 0;
}

static int
check_key_type(const json_t *kt, size_t i, char *err, size_t errlen)
{
	const char *pt = json_string_value(json_object_get(kt, "PublicKeyType"));
	const char *st = json_string_value(json_object_get(kt, "SignatureType"));
	const char *nc;
	json_int_t len;
	size_t j;

	if (!json_is_object(kt) || pt == NULL || st == NULL ||
	    json_object_size(kt) != 3) {
		snprintf(err, errlen, "keyTypes[%zu]: an object of "
		    "PublicKeyType, SignatureType and PublicKeyLength or "
		    "namedCurve", i);
		return -1;
	}
	if (strcmp(pt, "rsaEncryption") == 0) {
		len = json_integer_value(json_object_get(kt, "PublicKeyLength"));
		if (!json_is_integer(json_object_get(kt, "PublicKeyLength")) ||
		    len < 1 || len > 16384) {
			snprintf(err, errlen, "keyTypes[%zu].PublicKeyLength: "
			    "an integer, 1 to 16384", i);
			return -1;
		}
		for (j = 0; j < sizeof(rsa_sigs) / sizeof(rsa_sigs[0]); j++)
			if (strcmp(st, rsa_sigs[j].name) == 0)
				return 0;
		snprintf(err, errlen, "keyTypes[%zu].SignatureType: not an "
		    "RSA signature type of RFC 9115 appendix A", i);
		return -1;
	}
	if (strcmp(pt, "id-ecPublicKey") == 0) {
		nc = json_string_value(json_object_get(kt, "namedCurve"));
		for (j = 0; nc != NULL && j < sizeof(ec_types) / sizeof(ec_types[0]);
		     j++) {
			if (strcmp(nc, ec_types[j].curve) != 0)
				continue;
			/* appendix A: "The parameters in each keyTypes entry
			 * form an acceptable combination." */
			if (strcmp(st, ec_types[j].sig) == 0)
				return 0;
			snprintf(err, errlen, "keyTypes[%zu]: %s is paired "
			    "with %s", i, nc, ec_types[j].sig);
			return -1;
		}
		snprintf(err, errlen, "keyTypes[%zu].namedCurve: secp256r1, "
		    "secp384r1 or secp521r1", i);
		return -1;
	}
	snprintf(err, errlen, "keyTypes[%zu].PublicKeyType: rsaEncryption or "
	    "id-ecPublicKey", i);
	return -1;
}

static int
check_subject(const json_t *s, char *err, size_t errlen)
{
	const char *k;
	json_t *v;

	if (!json_is_object(s) || json_object_size(s) == 0) {
		snprintf(err, errlen, "subject: a non-empty object");
		return -1;
	}
	json_object_foreach((json_t *)s, k, v)
	{
		if (name_in(k, dn_keys, N_DN) < 0) {
			snprintf(err, errlen, "subject.%.40s: unknown field", k);
			return -1;
		}
		if (!json_is_string(v) || json_string_length(v) == 0 ||
		    json_string_length(v) > TMPL_MAX_STR) {
			snprintf(err, errlen, "subject.%s: a non-empty string",
			    k);
			return -1;
		}
	}
	return 0;
}

/*
 * 0 when o is an object whose keys are all among known[0..n); else -1 with
 * err: "<what>: an object", or "<prefix><key>: <unknown>".
 */
static int
known_keys(const json_t *o, const char *what, const char *prefix,
    const char *const *known, size_t n, const char *unknown, char *err,
    size_t errlen)
{
	const char *k;
	json_t *v;

	if (!json_is_object(o)) {
		snprintf(err, errlen, "%s: an object", what);
		return -1;
	}
	json_object_foreach((json_t *)o, k, v)
	{
		if (name_in(k, known, n) < 0) {
			snprintf(err, errlen, "%s%.40s: %s", prefix, k, unknown);
			return -1;
		}
	}
	return 0;
}

static int
check_extensions(const json_t *e, char *err, size_t errlen)
{
	static const char *const exts[] = {
	    "subjectAltName", "keyUsage", "extendedKeyUsage"};
	const json_t *san = json_object_get(e, "subjectAltName");
	const char *k;
	json_t *v;
	size_t i;

	if (known_keys(e, "extensions", "extensions.", exts,
		sizeof(exts) / sizeof(exts[0]),
		"unknown extension (RFC 9115 section 6.5 registers keyUsage, "
		"extendedKeyUsage, subjectAltName)",
		err, errlen) != 0)
		return -1;
	if (!json_is_object(san) || json_object_size(san) == 0) {
		snprintf(err, errlen,
		    "extensions.subjectAltName: a non-empty object");
		return -1;
	}
	json_object_foreach((json_t *)san, k, v)
	{
		if (strcmp(k, "DNS") == 0) {
			if (check_strings(v, "extensions.subjectAltName.DNS",
				1, err, errlen) != 0)
				return -1;
		} else if (strcmp(k, "Email") == 0 || strcmp(k, "URI") == 0) {
			if (check_strings(v, k, 0, err, errlen) != 0)
				return -1;
		} else {
			snprintf(err, errlen, "extensions.subjectAltName."
			    "%.40s: DNS, Email or URI", k);
			return -1;
		}
	}
	if ((v = json_object_get(e, "keyUsage")) != NULL) {
		if (check_strings(v, "extensions.keyUsage", 0, err, errlen))
			return -1;
		json_array_foreach(v, i, san)
		{
			if (name_in(json_string_value(san), ku_names, N_KU) <
			    0) {
				snprintf(err, errlen, "extensions.keyUsage[%zu]"
				    ": unknown key usage", i);
				return -1;
			}
		}
	}
	if ((v = json_object_get(e, "extendedKeyUsage")) != NULL) {
		if (check_strings(v, "extensions.extendedKeyUsage", 0, err,
			errlen))
			return -1;
		json_array_foreach(v, i, san)
		{
			const char *s = json_string_value(san);
			if (eku_nid(s) == NID_undef && !is_oid(s)) {
				snprintf(err, errlen,
				    "extensions.extendedKeyUsage[%zu]: a "
				    "known name or an OID",
				    i);
				return -1;
			}
		}
	}
	return 0;
}

/* See ra.h. */
int
ra_deleg_template_check(const json_t *t, char *err, size_t errlen)
{
	static const char *const fields[] = {
	    "keyTypes", "subject", "extensions"};
	const json_t *kts = json_object_get(t, "keyTypes");
	json_t *v;
	size_t i;

	if (known_keys(t, "csr-template", "", fields,
		sizeof(fields) / sizeof(fields[0]),
		"unknown field (keyTypes, subject, extensions)", err,
		errlen) != 0)
		return -1;
	if (!json_is_array(kts) || json_array_size(kts) == 0 ||
	    json_array_size(kts) > TMPL_MAX_LIST) {
		snprintf(err, errlen, "keyTypes: a non-empty array");
		return -1;
	}
	json_array_foreach(kts, i, v)
	{
		if (check_key_type(v, i, err, errlen) != 0)
			return -1;
	}
	if ((v = json_object_get(t, "subject")) != NULL &&
	    check_subject(v, err, errlen) != 0)
		return -1;
	if (json_object_get(t, "extensions") == NULL) {
		snprintf(err, errlen, "extensions: required");
		return -1;
	}
	return check_extensions(json_object_get(t, "extensions"), err, errlen);
}

/* ---- identifiers (newOrder) -------------------------------------------- */

/* Counts of the DNS list of the template (borrowed). */
static void
dns_slots(const json_t *dns, size_t *must, size_t *may)
{
	json_t *v;
	size_t i;

	*must = *may = 0;
	json_array_foreach(dns, i, v)
	{
		if (strcmp(json_string_value(v), "**") == 0)
			(*must)++;
		else if (strcmp(json_string_value(v), "*") == 0)
			(*may)++;
	}
}

/* 1 if name (case-insensitively) is a literal of list (borrowed). */
static int
literal_in(const json_t *list, const char *name)
{
	json_t *v;
	size_t i;

	json_array_foreach(list, i, v)
	{
		const char *s = json_string_value(v);
		if (s != NULL && !is_wild(s) && strcasecmp(s, name) == 0)
			return 1;
	}
	return 0;
}

/*
 * Names (strings, borrowed) against a template SAN list (borrowed, may be
 * NULL): each literal exactly once, the rest within the wildcard slots.
 * 0, or -1 with a reason in err.
 */
static int
names_fit(const json_t *list, const char *const *names, size_t n,
    const char *what, char *err, size_t errlen)
{
	size_t i, j, must, may, extra = 0;
	json_t *v;

	dns_slots(list, &must, &may);
	for (i = 0; i < n; i++) {
		for (j = 0; j < i; j++)
			if (strcasecmp(names[i], names[j]) == 0) {
				snprintf(err, errlen, "%s name %.255s appears "
				    "twice", what, names[i]);
				return -1;
			}
		if (!literal_in(list, names[i]))
			extra++;
	}
	json_array_foreach(list, i, v)
	{
		const char *s = json_string_value(v);
		int found = 0;
		if (is_wild(s))
			continue;
		for (j = 0; j < n; j++)
			if (strcasecmp(s, names[j]) == 0)
				found = 1;
		if (!found) {
			snprintf(err, errlen, "the template's %s name %.255s "
			    "is missing", what, s);
			return -1;
		}
	}
	if (extra > must + may) {
		snprintf(err, errlen, "%zu %s name(s) not in the template "
		    "(it leaves %zu open)", extra, what, must + may);
		return -1;
	}
	if (extra < must) {
		snprintf(err, errlen, "the template asks for %zu %s name(s) "
		    "of the client's choosing (\"**\"), got %zu", must, what,
		    extra);
		return -1;
	}
	return 0;
}

/* See ra.h. */
int
ra_deleg_template_idents(
    const json_t *t, const json_t *idents, struct problem **prob)
{
	const json_t *san = json_object_get(
	    json_object_get(t, "extensions"), "subjectAltName");
	const char **names;
	const char *type, *val;
	size_t i, n = 0;
	json_t *v;
	char err[400];
	int rc = -1;

	names = xcalloc(json_array_size(idents) + 1, sizeof(*names));
	json_array_foreach(idents, i, v)
	{
		type = json_string_value(json_object_get(v, "type"));
		val = json_string_value(json_object_get(v, "value"));
		if (type == NULL || val == NULL || strcmp(type, "dns") != 0 ||
		    json_object_get(san, "DNS") == NULL) {
			*prob = problem_new(PROB_REJECTED_IDENTIFIER,
			    "The delegation's CSR template allows no "
			    "identifier of type %.32s",
			    type ? type : "?");
			goto out;
		}
		names[n++] = val;
	}
	if (names_fit(json_object_get(san, "DNS"), names, n, "DNS", err,
		sizeof(err)) != 0) {
		*prob = problem_new(PROB_REJECTED_IDENTIFIER,
		    "Identifiers outside the delegation's CSR template (RFC "
		    "9115 section 2.3.2): %s",
		    err);
		goto out;
	}
	rc = 0;
out:
	free(names);
	return rc;
}

/* ---- CSR (finalize) ---------------------------------------------------- */

static struct problem *
bad(const char *fmt, const char *arg)
{
	return problem_new(PROB_BAD_CSR,
	    "The CSR does not match the delegation's CSR template (RFC 9115 "
	    "section 4.1): %s%.200s",
	    fmt, arg ? arg : "");
}

/* The signature hash of a CSR's RSASSA-PSS parameters (NID), or NID_undef;
 * an absent hash is SHA-1 (RFC 4055) and matches nothing here. */
static int
pss_md(const X509_ALGOR *alg)
{
	const ASN1_OBJECT *obj;
	int ptype = 0, nid = NID_undef;
	const void *pval = NULL;
	RSA_PSS_PARAMS *pss = NULL;
	const ASN1_STRING *seq;
	const unsigned char *p;

	X509_ALGOR_get0(&obj, &ptype, &pval, alg);
	if (ptype != V_ASN1_SEQUENCE || pval == NULL)
		return NID_undef;
	seq = pval;
	p = ASN1_STRING_get0_data(seq);
	pss = d2i_RSA_PSS_PARAMS(NULL, &p, ASN1_STRING_length(seq));
	if (pss != NULL && pss->hashAlgorithm != NULL)
		nid = OBJ_obj2nid(pss->hashAlgorithm->algorithm);
	RSA_PSS_PARAMS_free(pss);
	return nid;
}

/* 1 if the CSR's key and signature match keyTypes entry kt (borrowed). */
static int
key_type_fits(const json_t *kt, EVP_PKEY *pk, const X509_ALGOR *alg)
{
	const char *pt = json_string_value(json_object_get(kt, "PublicKeyType"));
	const char *st = json_string_value(json_object_get(kt, "SignatureType"));
	const char *nc = json_string_value(json_object_get(kt, "namedCurve"));
	int signid = OBJ_obj2nid(alg->algorithm), mdnid = NID_undef, pknid;
	char group[64];
	size_t i, glen = 0;

	if (pt == NULL || st == NULL)
		return 0;
	if (strcmp(pt, "rsaEncryption") == 0 &&
	    EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA) {
		if (EVP_PKEY_get_bits(pk) != json_integer_value(json_object_get(
						 kt, "PublicKeyLength")))
			return 0;
		for (i = 0; i < sizeof(rsa_sigs) / sizeof(rsa_sigs[0]); i++) {
			if (strcmp(st, rsa_sigs[i].name) != 0)
				continue;
			if (rsa_sigs[i].pss)
				return signid == NID_rsassaPss &&
				    pss_md(alg) == rsa_sigs[i].md_nid;
			return signid != NID_rsassaPss &&
			    OBJ_find_sigid_algs(signid, &mdnid, &pknid) &&
			    pknid == NID_rsaEncryption &&
			    mdnid == rsa_sigs[i].md_nid;
		}
		return 0;
	}
	if (strcmp(pt, "id-ecPublicKey") == 0 && nc != NULL &&
	    EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC &&
	    EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME,
		group, sizeof(group), &glen)) {
		for (i = 0; i < sizeof(ec_types) / sizeof(ec_types[0]); i++)
			if (strcmp(nc, ec_types[i].curve) == 0)
				return strcmp(group, ec_types[i].group) == 0 &&
				    strcmp(st, ec_types[i].sig) == 0 &&
				    signid == ec_types[i].sig_nid;
	}
	return 0;
}

static int
match_key(const json_t *t, X509_REQ *req, struct problem **prob)
{
	const X509_ALGOR *alg = NULL;
	EVP_PKEY *pk = X509_REQ_get0_pubkey(req);
	json_t *kt;
	size_t i;

	X509_REQ_get0_signature(req, NULL, &alg);
	if (pk == NULL || alg == NULL) {
		*prob = bad("no readable key or signature", NULL);
		return -1;
	}
	json_array_foreach(json_object_get(t, "keyTypes"), i, kt)
	{
		if (key_type_fits(kt, pk, alg))
			return 0;
	}
	*prob = bad("the key type, size or signature algorithm is none of "
		    "keyTypes",
	    NULL);
	return -1;
}

static int
match_subject(const json_t *t, X509_REQ *req, struct problem **prob)
{
	const json_t *subj = json_object_get(t, "subject");
	X509_NAME *name = X509_REQ_get_subject_name(req);
	int seen[N_DN] = {0}, i, n, k, nid, len;
	unsigned char *utf8 = NULL;
	const char *want;
	X509_NAME_ENTRY *e;

	n = name ? X509_NAME_entry_count(name) : 0;
	for (i = 0; i < n; i++) {
		e = X509_NAME_get_entry(name, i);
		nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
		for (k = 0; k < (int)N_DN; k++)
			if (dn_nids[k] == nid)
				break;
		if (k == (int)N_DN ||
		    (want = json_string_value(
			 json_object_get(subj, dn_keys[k]))) == NULL) {
			*prob = bad("subject attribute not in the template: ",
			    OBJ_nid2sn(nid));
			return -1;
		}
		if (seen[k]++) {
			*prob = bad("subject attribute twice: ", dn_keys[k]);
			return -1;
		}
		if (is_wild(want))
			continue;
		len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
		if (len < 0 || (size_t)len != strlen(want) ||
		    memcmp(utf8, want, (size_t)len) != 0) {
			OPENSSL_free(utf8);
			*prob = bad("subject value differs from the template's "
				    "for ",
			    dn_keys[k]);
			return -1;
		}
		OPENSSL_free(utf8);
		utf8 = NULL;
	}
	for (k = 0; k < (int)N_DN; k++) {
		want = json_string_value(json_object_get(subj, dn_keys[k]));
		if (want != NULL && strcmp(want, "*") != 0 && !seen[k]) {
			*prob = bad("mandatory subject attribute missing: ",
			    dn_keys[k]);
			return -1;
		}
	}
	return 0;
}

/* The CSR's names of one GEN_* type (pointers into gens), n of them. */
static int
match_san(const json_t *san, const GENERAL_NAMES *gens, struct problem **prob)
{
	static const struct {
		int type;
		const char *key;
	} kinds[] = {{GEN_DNS, "DNS"}, {GEN_EMAIL, "Email"}, {GEN_URI, "URI"}};
	int i, n = sk_GENERAL_NAME_num(gens), rc = -1;
	const char **names = xcalloc((size_t)n + 1, sizeof(*names));
	size_t k, m;
	GENERAL_NAME *g;
	char err[400];

	for (i = 0; i < n; i++) {
		g = sk_GENERAL_NAME_value(gens, i);
		for (k = 0; k < 3 && kinds[k].type != g->type; k++)
			;
		if (k == 3 || json_object_get(san, kinds[k].key) == NULL) {
			*prob = bad("a subjectAltName of a type the template "
				    "does not list",
			    NULL);
			goto out;
		}
	}
	for (k = 0; k < 3; k++) {
		m = 0;
		for (i = 0; i < n; i++) {
			const ASN1_IA5STRING *s;
			g = sk_GENERAL_NAME_value(gens, i);
			if (g->type != kinds[k].type)
				continue;
			s = g->d.ia5;
			if (memchr(s->data, '\0', (size_t)s->length) != NULL) {
				*prob = bad("a subjectAltName with a NUL", NULL);
				goto out;
			}
			names[m++] = (const char *)s->data;
		}
		if (json_object_get(san, kinds[k].key) != NULL &&
		    names_fit(json_object_get(san, kinds[k].key), names, m,
			kinds[k].key, err, sizeof(err)) != 0) {
			*prob = bad("subjectAltName: ", err);
			goto out;
		}
	}
	rc = 0;
out:
	free(names);
	return rc;
}

static int
match_ku(const json_t *want, ASN1_BIT_STRING *ku, struct problem **prob)
{
	json_t *v;
	size_t i, k;
	int need[N_KU] = {0};

	json_array_foreach(want, i, v)
	{
		need[name_in(json_string_value(v), ku_names, N_KU)] = 1;
	}
	for (k = 0; k < N_KU; k++)
		if (ASN1_BIT_STRING_get_bit(ku, (int)k) != need[k]) {
			*prob = bad("keyUsage differs from the template's "
				    "at ",
			    ku_names[k]);
			return -1;
		}
	/* no bit past decipherOnly */
	for (k = N_KU; k < (size_t)ku->length * 8; k++)
		if (ASN1_BIT_STRING_get_bit(ku, (int)k)) {
			*prob = bad("keyUsage has an unknown bit", NULL);
			return -1;
		}
	return 0;
}

static int
match_eku(const json_t *want, EXTENDED_KEY_USAGE *eku, struct problem **prob)
{
	int i, n = sk_ASN1_OBJECT_num(eku), found;
	ASN1_OBJECT *o, *w;
	const char *s;
	json_t *v;
	size_t j;

	if ((size_t)n != json_array_size(want))
		goto differ;
	json_array_foreach(want, j, v)
	{
		s = json_string_value(v);
		w = eku_nid(s) != NID_undef ? OBJ_nid2obj(eku_nid(s))
					    : OBJ_txt2obj(s, 1);
		found = 0;
		for (i = 0; w != NULL && i < n; i++) {
			o = sk_ASN1_OBJECT_value(eku, i);
			if (OBJ_cmp(o, w) == 0)
				found++;
		}
		if (eku_nid(s) == NID_undef)
			ASN1_OBJECT_free(w);
		if (found != 1)
			goto differ;
	}
	return 0;
differ:
	*prob = bad("extendedKeyUsage differs from the template's", NULL);
	return -1;
}

/* One extension of the CSR against the template's extensions (borrowed). */
static int
match_ext(const json_t *te, X509_EXTENSION *ext, int *seen,
    struct problem **prob)
{
	int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext)), rc = -1;
	const char *key = nid == NID_subject_alt_name ? "subjectAltName"
	    : nid == NID_key_usage		      ? "keyUsage"
	    : nid == NID_ext_key_usage		      ? "extendedKeyUsage"
						      : NULL;
	int bit = nid == NID_subject_alt_name ? 1
	    : nid == NID_key_usage	      ? 2
					      : 4;
	void *d = NULL;

	if (key == NULL || json_object_get(te, key) == NULL) {
		*prob = bad("an extension the template does not list: ",
		    nid != NID_undef ? OBJ_nid2sn(nid) : "(unknown OID)");
		return -1;
	}
	if (*seen & bit) {
		*prob = bad("an extension twice: ", key);
		return -1;
	}
	*seen |= bit;
	if ((d = X509V3_EXT_d2i(ext)) == NULL) {
		*prob = bad("an unreadable extension: ", key);
		return -1;
	}
	if (bit == 1)
		rc = match_san(json_object_get(te, key), d, prob);
	else if (bit == 2)
		rc = match_ku(json_object_get(te, key), d, prob);
	else
		rc = match_eku(json_object_get(te, key), d, prob);
	if (bit == 1)
		GENERAL_NAMES_free(d);
	else if (bit == 2)
		ASN1_BIT_STRING_free(d);
	else
		EXTENDED_KEY_USAGE_free(d);
	return rc;
}

static int
match_exts(const json_t *t, X509_REQ *req, struct problem **prob)
{
	const json_t *te = json_object_get(t, "extensions");
	STACK_OF(X509_EXTENSION) *exts = NULL;
	int i, seen = 0, rc = -1, loc;

	/* only the extensionRequest attribute (no challengePassword &c.) */
	for (i = 0; i < X509_REQ_get_attr_count(req); i++) {
		loc = OBJ_obj2nid(
		    X509_ATTRIBUTE_get0_object(X509_REQ_get_attr(req, i)));
		if (loc != NID_ext_req) {
			*prob = bad("a CSR attribute the template does not "
				    "list: ",
			    OBJ_nid2sn(loc));
			return -1;
		}
	}
	exts = X509_REQ_get_extensions(req);
	for (i = 0; i < sk_X509_EXTENSION_num(exts); i++)
		if (match_ext(te, sk_X509_EXTENSION_value(exts, i), &seen,
			prob) != 0)
			goto out;
	if (!(seen & 1)) {
		*prob = bad("no subjectAltName extension", NULL);
		goto out;
	}
	if ((json_object_get(te, "keyUsage") != NULL && !(seen & 2)) ||
	    (json_object_get(te, "extendedKeyUsage") != NULL && !(seen & 4))) {
		*prob = bad("the template's keyUsage and extendedKeyUsage are "
			    "mandatory in the CSR",
		    NULL);
		goto out;
	}
	rc = 0;
out:
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return rc;
}

/* See ra.h. */
int
ra_deleg_template_match(const json_t *t, const uint8_t *der, size_t len,
    struct problem **prob)
{
	const unsigned char *p = der;
	X509_REQ *req = NULL;
	int rc = -1;

	if (len > 65536 || (req = d2i_X509_REQ(NULL, &p, (long)len)) == NULL ||
	    p != der + len) {
		*prob = problem_new(PROB_BAD_CSR, "the CSR is not DER");
		goto out;
	}
	if (match_key(t, req, prob) != 0 || match_subject(t, req, prob) != 0 ||
	    match_exts(t, req, prob) != 0)
		goto out;
	rc = 0;
out:
	X509_REQ_free(req);
	return rc;
}

/* ---- what the certificate may carry ------------------------------------ */

/* See ra.h. */
int
ra_deleg_template_profile(const json_t *t, const struct profile *prof,
    int rsa, char *err, size_t errlen)
{
	const json_t *e = json_object_get(t, "extensions");
	const json_t *ku = json_object_get(e, "keyUsage");
	const json_t *eku = json_object_get(e, "extendedKeyUsage");
	static const struct {
		const char *name;
		size_t off;
	} pe[] = {
	    {"serverAuth", offsetof(struct profile, eku_server_auth)},
	    {"clientAuth", offsetof(struct profile, eku_client_auth)},
	    {"emailProtection", offsetof(struct profile, eku_email_protection)},
	};
	size_t i, j;
	int found;
	json_t *v;

	/* The key usages ca/tbs.c gives every certificate. */
	if (ku != NULL &&
	    (!literal_in(ku, "digitalSignature") ||
		(rsa && !literal_in(ku, "keyEncipherment")))) {
		snprintf(err, errlen, "certificates of profile %s carry "
		    "keyUsage digitalSignature%s, more than the template's "
		    "keyUsage", prof->name, rsa ? ", keyEncipherment" : "");
		return -1;
	}
	if (eku == NULL)
		return 0;
	for (i = 0; i < sizeof(pe) / sizeof(pe[0]); i++) {
		if (!*(const int *)((const char *)prof + pe[i].off))
			continue;
		found = 0;
		json_array_foreach(eku, j, v)
		{
			if (strcmp(json_string_value(v), pe[i].name) == 0)
				found = 1;
		}
		if (!found) {
			snprintf(err, errlen, "certificates of profile %s "
			    "carry extendedKeyUsage %s, which the template "
			    "does not list", prof->name, pe[i].name);
			return -1;
		}
	}
	return 0;
}

/* ---- configuration ---------------------------------------------------- */

/* The section's keys land straight in struct ra_deleg_config. */
static const struct jspec deleg_spec[] = {
    {"enabled", JSPEC_BOOL, offsetof(struct ra_deleg_config, enabled), 0,
	NULL, 0},
    {"profiles", JSPEC_STRINGS, offsetof(struct ra_deleg_config, profiles),
	0, NULL, offsetof(struct ra_deleg_config, n_profiles)},
    {"max_per_account", JSPEC_INT,
	offsetof(struct ra_deleg_config, max_per_account), 0, NULL, 0},
    JSPEC_END};

/* See ra.h. */
int
ra_deleg_config_parse(
    const json_t *obj, struct ra_deleg_config *dc, char *err, size_t errlen)
{
	memset(dc, 0, sizeof(*dc));
	dc->max_per_account = 100;
	if (ra_section_parse(obj, "delegation", deleg_spec, dc, err, errlen) !=
	    0)
		goto fail;
	if (dc->max_per_account < 1 || dc->max_per_account > 100000) {
		snprintf(err, errlen, "delegation.max_per_account: 1 to 100000");
		goto fail;
	}
	return 0;
fail:
	jspec_clear(deleg_spec, dc);
	return -1;
}

/* See ra.h. */
void
ra_deleg_config_clear(struct ra_deleg_config *dc)
{
	ra_strv_free(dc->profiles, dc->n_profiles);
	memset(dc, 0, sizeof(*dc));
}
