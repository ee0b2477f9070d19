/*
 * lint.c - checks run on the throwaway-signed certificate before the real
 * signature. Each lint is one small function; a failing lint refuses the
 * issuance.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/x509v3.h>

#include "ca/ca_int.h"

/* Printable text of a GENERAL_NAME (DNS, IP or rfc822Name) into buf; ""
 * otherwise. */
static const char *
gn_text(const GENERAL_NAME *gn, char *buf, size_t buflen)
{
	const ASN1_STRING *s;
	int len;

	buf[0] = '\0';
	if (gn->type == GEN_DNS || gn->type == GEN_EMAIL) {
		s = gn->type == GEN_DNS ? gn->d.dNSName : gn->d.rfc822Name;
		len = ASN1_STRING_length(s);
		if (len < 0 || (size_t)len >= buflen)
			len = (int)buflen - 1;
		memcpy(buf, ASN1_STRING_get0_data(s), (size_t)len);
		buf[len] = '\0';
	} else if (gn->type == GEN_IPADD) {
		s = gn->d.iPAddress;
		if (ASN1_STRING_length(s) == 4)
			inet_ntop(AF_INET, ASN1_STRING_get0_data(s), buf,
			    (socklen_t)buflen);
		else if (ASN1_STRING_length(s) == 16)
			inet_ntop(AF_INET6, ASN1_STRING_get0_data(s), buf,
			    (socklen_t)buflen);
	}
	return buf;
}

static GENERAL_NAMES *
get_sans(X509 *x, int *critical)
{
	return X509_get_ext_d2i(x, NID_subject_alt_name, critical, NULL);
}

static int
lint_san_present(const struct ca_lint_input *in, char *msg, size_t msglen)
{
	GENERAL_NAMES *g = get_sans(in->cert, NULL);
	int n = g != NULL ? sk_GENERAL_NAME_num(g) : 0;

	GENERAL_NAMES_free(g);
	if (n <= 0) {
		snprintf(msg, msglen, "no subjectAltName");
		return -1;
	}
	return 0;
}

/* Same type and value (DNS case-insensitively, IP by canonical text). */
static int
ident_equals_gn(const json_t *id, const GENERAL_NAME *gn)
{
	const char *t = json_string_value(json_object_get(id, "type"));
	const char *v = json_string_value(json_object_get(id, "value"));
	char buf[300];

	if (t == NULL || v == NULL)
		return 0;
	if (gn->type == GEN_DNS && strcmp(t, "dns") == 0)
		return strcasecmp(gn_text(gn, buf, sizeof(buf)), v) == 0 &&
		    (size_t)ASN1_STRING_length(gn->d.dNSName) == strlen(v);
	if (gn->type == GEN_IPADD && strcmp(t, "ip") == 0)
		return strcmp(gn_text(gn, buf, sizeof(buf)), v) == 0;
	if (gn->type == GEN_OTHERNAME)
		return ca_gn_device_equals(gn, t, v);
	if (gn->type == GEN_EMAIL && strcmp(t, "email") == 0)
		return strcmp(gn_text(gn, buf, sizeof(buf)), v) == 0 &&
		    (size_t)ASN1_STRING_length(gn->d.rfc822Name) == strlen(v);
	return 0;
}

static int
lint_san_matches_identifiers(
    const struct ca_lint_input *in, char *msg, size_t msglen)
{
	GENERAL_NAMES *g = get_sans(in->cert, NULL);
	const json_t *id;
	char buf[300];
	size_t k;
	int i, found, ret = -1;

	if (g == NULL) {
		snprintf(msg, msglen, "no subjectAltName");
		goto out;
	}
	if ((size_t)sk_GENERAL_NAME_num(g) !=
	    json_array_size(in->identifiers)) {
		snprintf(msg, msglen, "%d SANs for %zu identifiers",
		    sk_GENERAL_NAME_num(g), json_array_size(in->identifiers));
		goto out;
	}
	for (i = 0; i < sk_GENERAL_NAME_num(g); i++) {
		found = 0;
		json_array_foreach(in->identifiers, k,
		    id) if (ident_equals_gn(id, sk_GENERAL_NAME_value(g, i)))
		    found = 1;
		if (!found) {
			snprintf(msg, msglen,
			    "SAN \"%s\" is not an identifier "
			    "of the order",
			    gn_text(
				sk_GENERAL_NAME_value(g, i), buf, sizeof(buf)));
			goto out;
		}
	}
	ret = 0;
out:
	GENERAL_NAMES_free(g);
	return ret;
}

static int
lint_san_no_duplicates(const struct ca_lint_input *in, char *msg, size_t msglen)
{
	GENERAL_NAMES *g = get_sans(in->cert, NULL);
	char a[300], b[300];
	int i, j, ret = 0;

	for (i = 0; g != NULL && i < sk_GENERAL_NAME_num(g); i++) {
		const GENERAL_NAME *gi = sk_GENERAL_NAME_value(g, i);
		for (j = i + 1; j < sk_GENERAL_NAME_num(g); j++) {
			const GENERAL_NAME *gj = sk_GENERAL_NAME_value(g, j);
			if (gi->type == gj->type &&
			    strcasecmp(gn_text(gi, a, sizeof(a)),
				gn_text(gj, b, sizeof(b))) == 0) {
				snprintf(
				    msg, msglen, "duplicate SAN \"%s\"", a);
				ret = -1;
				goto out;
			}
		}
	}
out:
	GENERAL_NAMES_free(g);
	return ret;
}

/* 0 if name is a valid DNS name (wildcard only as the leftmost label). */
static int
dns_name_check(const unsigned char *name, size_t len, char *why, size_t whylen)
{
	size_t i, k, start = 0, lab, nlabels = 0;
	int alldigits = 1;

	if (len == 0 || len > 253) {
		snprintf(why, whylen, "length %zu", len);
		return -1;
	}
	if (len >= 2 && name[0] == '*' && name[1] == '.')
		start = 2;
	for (i = start; i <= len; i++) {
		if (i < len && name[i] != '.')
			continue;
		lab = i - start;
		if (lab == 0 || lab > 63) {
			snprintf(why, whylen, "label length %zu", lab);
			return -1;
		}
		if (name[start] == '-' || name[i - 1] == '-') {
			snprintf(why, whylen, "label starts or ends with '-'");
			return -1;
		}
		alldigits = 1;
		for (k = start; k < i; k++) {
			unsigned char c = name[k];
			if (c > 127 || !(isalnum(c) || c == '-')) {
				snprintf(why, whylen, "character 0x%02x%s", c,
				    c == '*' ? " (wildcard not leftmost)" : "");
				return -1;
			}
			if (!isdigit(c))
				alldigits = 0;
		}
		nlabels++;
		start = i + 1;
	}
	if (alldigits) {
		snprintf(why, whylen, "all-numeric top-level label");
		return -1;
	}
	if (nlabels < 2) {
		snprintf(why, whylen, "single label");
		return -1;
	}
	return 0;
}

static int
lint_dns_names_valid(const struct ca_lint_input *in, char *msg, size_t msglen)
{
	GENERAL_NAMES *g = get_sans(in->cert, NULL);
	char why[96], buf[300];
	int i, ret = 0;

	for (i = 0; g != NULL && i < sk_GENERAL_NAME_num(g); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(g, i);
		if (gn->type != GEN_DNS)
			continue;
		if (dns_name_check(ASN1_STRING_get0_data(gn->d.dNSName),
			(size_t)ASN1_STRING_length(gn->d.dNSName), why,
			sizeof(why)) != 0) {
			snprintf(msg, msglen, "invalid DNS name \"%s\": %s",
			    gn_text(gn, buf, sizeof(buf)), why);
			ret = -1;
			break;
		}
	}
	GENERAL_NAMES_free(g);
	return ret;
}

static int
lint_cn_in_san(const struct ca_lint_input *in, char *msg, size_t msglen)
{
	X509_NAME *subj = X509_get_subject_name(in->cert);
	GENERAL_NAMES *g = NULL;
	unsigned char *cn = NULL;
	char buf[300];
	int idx, n, i, ret = 0;

	idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
	if (idx < 0)
		return 0;
	ret = -1;
	if (X509_NAME_get_index_by_NID(subj, NID_commonName, idx) >= 0) {
		snprintf(msg, msglen, "more than one CN");
		goto out;
	}
	n = ASN1_STRING_to_UTF8(
	    &cn, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx)));
	if (n < 0) {
		snprintf(msg, msglen, "undecodable CN");
		goto out;
	}
	if (n > 64) {
		snprintf(msg, msglen, "CN longer than 64 characters");
		goto out;
	}
	g = get_sans(in->cert, NULL);
	for (i = 0; g != NULL && i < sk_GENERAL_NAME_num(g); i++) {
		if (strcasecmp(
			gn_text(sk_GENERAL_NAME_value(g, i), buf, sizeof(buf)),
			(const char *)cn) == 0) {
			ret = 0;
			goto out;
		}
	}
	snprintf(msg, msglen, "CN \"%s\" is not among the SANs", cn);
out:
	OPENSSL_free(cn);
	GENERAL_NAMES_free(g);
	return ret;
}

static int
lint_validity_within_profile(
    const struct ca_lint_input *in, char *msg, size_t msglen)
{
	int days, secs;
	int64_t span;

	if (!ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(in->cert),
		X509_get0_notAfter(in->cert))) {
		snprintf(msg, msglen, "unreadable validity");
		return -1;
	}
	span = (int64_t)days * 86400 + secs + 1; /* notAfter is inclusive */
	if (span <= 0) {
		snprintf(msg, msglen, "notAfter before notBefore");
		return -1;
	}
	if (span * 1000 > in->profile->validity_ms) {
		snprintf(msg, msglen,
		    "validity %llds exceeds profile %s "
		    "maximum %llds",
		    (long long)span, in->profile->name,
		    (long long)(in->profile->validity_ms / 1000));
		return -1;
	}
	return 0;
}

static int
lint_serial_valid(const struct ca_lint_input *in, char *msg, size_t msglen)
{
	const ASN1_INTEGER *s = X509_get0_serialNumber(in->cert);
	BIGNUM *bn = ASN1_INTEGER_to_BN(s, NULL);
	int ret = -1;

	if (bn == NULL) {
		snprintf(msg, msglen, "unreadable serial");
		goto out;
	}
	if (BN_is_negative(bn) || BN_is_zero(bn)) {
		snprintf(msg, msglen, "serial not positive");
		goto out;
	}
	/* DER content octets: the magnitude plus a 0x00 if the top bit is set.
	 */
	if (BN_num_bytes(bn) + (BN_num_bits(bn) % 8 == 0 ? 1 : 0) > 20) {
		snprintf(msg, msglen, "serial longer than 20 octets");
		goto out;
	}
	if (BN_num_bytes(bn) < 9) {
		snprintf(
		    msg, msglen, "serial has fewer than 64 bits of entropy");
		goto out;
	}
	ret = 0;
out:
	BN_free(bn);
	return ret;
}

/* The certificate's key: the request's (proven equal) or decoded. */
static EVP_PKEY *
lint_pubkey(const struct ca_lint_input *in)
{
	if (in->pubkey != NULL && in->spki != NULL)
		return in->pubkey;
	return X509_get0_pubkey(in->cert);
}

static int
lint_spki_matches_request(
    const struct ca_lint_input *in, char *msg, size_t msglen)
{
	unsigned char *a = NULL, *b = NULL;
	int la, lb, ret = -1;

	if (in->spki == NULL)
		return 0;
	la = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(in->cert), &a);
	lb = i2d_X509_PUBKEY(in->spki, &b);
	if (la <= 0 || la != lb || memcmp(a, b, (size_t)la) != 0)
		snprintf(msg, msglen,
		    "certificate key differs from the "
		    "requested key");
	else
		ret = 0;
	OPENSSL_free(a);
	OPENSSL_free(b);
	return ret;
}

/*
 * The certificate's key block is canonical (issue 19): RSA with NULL
 * algorithm parameters (RFC 3279 §2.3.1), EC with a namedCurve OID
 * (RFC 5480 §2.1.1; explicit parameters are forbidden by BR §7.1.3.1.2)
 * and an uncompressed point. A structural check, no re-encoding.
 */
static int
lint_spki_canonical(const struct ca_lint_input *in, char *msg, size_t msglen)
{
	X509_PUBKEY *xpk = X509_get_X509_PUBKEY(in->cert);
	ASN1_OBJECT *alg = NULL;
	const ASN1_OBJECT *aobj = NULL;
	const unsigned char *pk = NULL;
	const void *pval = NULL;
	X509_ALGOR *pa = NULL;
	int pklen = 0, ptype = V_ASN1_UNDEF;

	if (xpk == NULL ||
	    !X509_PUBKEY_get0_param(&alg, &pk, &pklen, &pa, xpk) ||
	    pa == NULL) {
		snprintf(msg, msglen, "no subjectPublicKeyInfo");
		return -1;
	}
	X509_ALGOR_get0(&aobj, &ptype, &pval, pa);
	switch (OBJ_obj2nid(aobj)) {
	case NID_rsaEncryption:
		if (ptype != V_ASN1_NULL) {
			snprintf(msg, msglen,
			    "RSA key without NULL algorithm parameters");
			return -1;
		}
		break;
	case NID_X9_62_id_ecPublicKey:
		if (ptype != V_ASN1_OBJECT) {
			snprintf(msg, msglen, "EC key not on a named curve");
			return -1;
		}
		if (pk == NULL || pklen < 1 || pk[0] != 0x04) {
			snprintf(msg, msglen, "EC point not uncompressed");
			return -1;
		}
		break;
	default:
		break; /* key_allowed refuses other types */
	}
	return 0;
}

/* See ca_int.h. */
int
ca_key_check(EVP_PKEY *k, const struct ca_settings *s, char *msg, size_t msglen)
{
	char curve[64];
	size_t clen = 0;
	int bits;
	int64_t rmin = s ? s->rsa_min_bits : 2048;
	int64_t rmax = s ? s->rsa_max_bits : 4096;
	int p521 = s ? s->allow_p521 : 0;

	if (k == NULL) {
		snprintf(msg, msglen, "unreadable public key");
		return -1;
	}
	switch (EVP_PKEY_get_base_id(k)) {
	case EVP_PKEY_RSA:
		bits = EVP_PKEY_get_bits(k);
		if (bits < rmin || bits > rmax || bits % 8 != 0) {
			snprintf(msg, msglen, "RSA key of %d bits", bits);
			return -1;
		}
		return 0;
	case EVP_PKEY_EC:
		if (!EVP_PKEY_get_utf8_string_param(
			k, "group", curve, sizeof(curve), &clen)) {
			snprintf(msg, msglen, "EC key without a named curve");
			return -1;
		}
		if (strcmp(curve, "prime256v1") != 0 &&
		    strcmp(curve, "P-256") != 0 &&
		    strcmp(curve, "secp384r1") != 0 &&
		    strcmp(curve, "P-384") != 0 &&
		    !(p521 &&
			(strcmp(curve, "secp521r1") == 0 ||
			    strcmp(curve, "P-521") == 0))) {
			snprintf(msg, msglen, "EC curve %s not allowed", curve);
			return -1;
		}
		return 0;
	default:
		snprintf(msg, msglen, "key type not allowed");
		return -1;
	}
}

static int
lint_key_allowed(const struct ca_lint_input *in, char *msg, size_t msglen)
{
	return ca_key_check(lint_pubkey(in), in->settings, msg, msglen);
}

static int
lint_ku_eku_consistent(const struct ca_lint_input *in, char *msg, size_t msglen)
{
	X509 *x = in->cert;
	uint32_t ku, xku;
	int crit = -1, is_rsa;
	ASN1_BIT_STRING *kus;

	kus = X509_get_ext_d2i(x, NID_key_usage, &crit, NULL);
	ASN1_BIT_STRING_free(kus);
	if (kus == NULL || crit != 1) {
		snprintf(msg, msglen, "keyUsage missing or not critical");
		return -1;
	}
	ku = X509_get_key_usage(x);
	is_rsa = EVP_PKEY_get_base_id(lint_pubkey(in)) == EVP_PKEY_RSA;
	if (!(ku & KU_DIGITAL_SIGNATURE)) {
		snprintf(msg, msglen, "keyUsage lacks digitalSignature");
		return -1;
	}
	if (ku & (KU_KEY_CERT_SIGN | KU_CRL_SIGN)) {
		snprintf(msg, msglen, "keyUsage has CA bits");
		return -1;
	}
	if (!is_rsa && (ku & (KU_KEY_ENCIPHERMENT | KU_DATA_ENCIPHERMENT))) {
		snprintf(msg, msglen, "keyEncipherment on an ECDSA key");
		return -1;
	}
	if (ku & ~(uint32_t)(KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT)) {
		snprintf(msg, msglen, "unexpected keyUsage bits 0x%x", ku);
		return -1;
	}
	xku = X509_get_extended_key_usage(x);
	if (xku == UINT32_MAX) {
		snprintf(msg, msglen, "extKeyUsage missing");
		return -1;
	}
	if (xku & XKU_ANYEKU) {
		snprintf(msg, msglen, "anyExtendedKeyUsage present");
		return -1;
	}
	if (!!(xku & XKU_SSL_SERVER) != !!in->profile->eku_server_auth ||
	    !!(xku & XKU_SSL_CLIENT) != !!in->profile->eku_client_auth ||
	    !!(xku & XKU_SMIME) != !!in->profile->eku_email_protection ||
	    (xku &
		~(uint32_t)(XKU_SSL_SERVER | XKU_SSL_CLIENT | XKU_SMIME))) {
		snprintf(msg, msglen, "extKeyUsage does not match profile %s",
		    in->profile->name);
		return -1;
	}
	return 0;
}

static int
lint_no_unknown_critical(
    const struct ca_lint_input *in, char *msg, size_t msglen)
{
	static const int known[] = {
	    NID_basic_constraints, NID_key_usage, NID_subject_alt_name};
	const X509_EXTENSION *e;
	char oid[80];
	size_t k;
	int i, nid, ok;

	for (i = 0; i < X509_get_ext_count(in->cert); i++) {
		e = X509_get_ext(in->cert, i);
		if (!X509_EXTENSION_get_critical(e))
			continue;
		nid =
		    OBJ_obj2nid(X509_EXTENSION_get_object((X509_EXTENSION *)e));
		ok = 0;
		for (k = 0; k < sizeof(known) / sizeof(known[0]); k++)
			if (nid == known[k])
				ok = 1;
		if (!ok) {
			OBJ_obj2txt(oid, sizeof(oid),
			    X509_EXTENSION_get_object((X509_EXTENSION *)e), 1);
			snprintf(
			    msg, msglen, "unknown critical extension %s", oid);
			return -1;
		}
	}
	return 0;
}

static int
lint_not_ca(const struct ca_lint_input *in, char *msg, size_t msglen)
{
	BASIC_CONSTRAINTS *bc;
	int crit = -1, ret = 0;

	bc = X509_get_ext_d2i(in->cert, NID_basic_constraints, &crit, NULL);
	/* RFC 9448 "ca": true from a tkauth_ca profile: CA:TRUE with
	 * pathlen 0 (it certifies end entities only), else CA:FALSE */
	if (in->ca && in->profile->tkauth_ca
		? bc == NULL || !bc->ca || crit != 1 || bc->pathlen == NULL ||
		    ASN1_INTEGER_get(bc->pathlen) != 0
		: bc == NULL || bc->ca) {
		snprintf(msg, msglen,
		    in->ca ? "a STIR CA certificate has critical CA:TRUE, "
			     "pathlen 0, from a tkauth_ca profile"
			   : "basicConstraints missing or CA:TRUE");
		ret = -1;
	}
	BASIC_CONSTRAINTS_free(bc);
	return ret;
}

static int
lint_empty_subject_san_critical(
    const struct ca_lint_input *in, char *msg, size_t msglen)
{
	GENERAL_NAMES *g;
	int crit = -1;

	if (X509_NAME_entry_count(X509_get_subject_name(in->cert)) > 0)
		return 0;
	g = get_sans(in->cert, &crit);
	GENERAL_NAMES_free(g);
	if (crit != 1) {
		snprintf(msg, msglen, "empty subject needs a critical SAN");
		return -1;
	}
	return 0;
}

static int
lint_revocation_info(const struct ca_lint_input *in, char *msg, size_t msglen)
{
	int crit;
	void *aia, *cdp;
	int ret = 0;

	aia = X509_get_ext_d2i(in->cert, NID_info_access, &crit, NULL);
	cdp = X509_get_ext_d2i(
	    in->cert, NID_crl_distribution_points, &crit, NULL);
	if (aia == NULL || cdp == NULL) {
		snprintf(msg, msglen, "missing %s",
		    aia == NULL ? "authorityInfoAccess"
				: "cRLDistributionPoints");
		ret = -1;
	}
	AUTHORITY_INFO_ACCESS_free(aia);
	CRL_DIST_POINTS_free(cdp);
	return ret;
}

/* RFC 8226 STIR certificates (stir.c): the TNAuthList extension stands
 * where a TLS certificate has its subjectAltName, and there is no EKU. */
static int
lint_stir(const struct ca_lint_input *in, char *msg, size_t msglen)
{
	if (!in->profile->allow_tnauthlist)
		return 0;
	return ca_stir_lint(in->cert, in->identifiers, in->ca, msg, msglen);
}

/* The lints about subjectAltNames and EKUs, which lint_stir replaces for a
 * STIR profile. 1 or 0. */
static int
stir_replaces(const char *name)
{
	static const char *const names[] = {"san_present",
	    "san_matches_identifiers", "cn_in_san", "ku_eku_consistent",
	    "empty_subject_san_critical"};
	size_t k;

	for (k = 0; k < sizeof(names) / sizeof(names[0]); k++)
		if (strcmp(name, names[k]) == 0)
			return 1;
	return 0;
}

static const struct ca_lint lint_table[] = {
    {"san_present", lint_san_present},
    {"san_matches_identifiers", lint_san_matches_identifiers},
    {"san_no_duplicates", lint_san_no_duplicates},
    {"dns_names_valid", lint_dns_names_valid},
    {"cn_in_san", lint_cn_in_san},
    {"validity_within_profile", lint_validity_within_profile},
    {"serial_valid", lint_serial_valid},
    {"spki_matches_request", lint_spki_matches_request},
    {"spki_canonical", lint_spki_canonical},
    {"key_allowed", lint_key_allowed},
    {"ku_eku_consistent", lint_ku_eku_consistent},
    {"no_unknown_critical_ext", lint_no_unknown_critical},
    {"not_ca", lint_not_ca},
    {"empty_subject_san_critical", lint_empty_subject_san_critical},
    {"revocation_info", lint_revocation_info},
    {"stir_tnauthlist", lint_stir},
};

/* Static table. */
const struct ca_lint *
ca_lints(size_t *count)
{
	*count = sizeof(lint_table) / sizeof(lint_table[0]);
	return lint_table;
}

/* Borrowed entry or NULL. */
const struct ca_lint *
ca_lint_find(const char *name)
{
	size_t k;

	for (k = 0; k < sizeof(lint_table) / sizeof(lint_table[0]); k++)
		if (strcmp(lint_table[k].name, name) == 0)
			return &lint_table[k];
	return NULL;
}

/* See ca_int.h. */
int
ca_lint_all(const struct ca_lint_input *in, const char **failed, char *msg,
    size_t msglen)
{
	size_t k;

	*failed = NULL;
	for (k = 0; k < sizeof(lint_table) / sizeof(lint_table[0]); k++) {
		if (in->profile->allow_tnauthlist &&
		    stir_replaces(lint_table[k].name))
			continue;
		if (lint_table[k].fn(in, msg, msglen) != 0) {
			*failed = lint_table[k].name;
			return -1;
		}
	}
	return 0;
}
