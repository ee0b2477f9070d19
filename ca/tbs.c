/*
 * tbs.c - building the to-be-signed certificate from a template.
 *
 * The builder is deterministic: the same template always gives the same
 * TBSCertificate bytes, which is what lets the CA compare the lint
 * certificate with the real one.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bn.h>
#include <openssl/x509v3.h>

#include "ca/ca_int.h"

/* Adds one extension from its config-string form. 0 or -1. */
static int
add_conf_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext;
	int ok;

	ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	if (ext == NULL)
		return -1;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

/* A new GENERAL_NAME of IA5String type gen_type (GEN_DNS, GEN_EMAIL)
 * holding value (borrowed), or NULL. */
static GENERAL_NAME *
ia5_general_name(int gen_type, const char *value)
{
	GENERAL_NAME *gn = NULL;
	ASN1_IA5STRING *ia5 = NULL;

	if ((ia5 = ASN1_IA5STRING_new()) == NULL ||
	    !ASN1_STRING_set(ia5, value, (int)strlen(value)) ||
	    (gn = GENERAL_NAME_new()) == NULL) {
		ASN1_IA5STRING_free(ia5);
		return NULL;
	}
	GENERAL_NAME_set0_value(gn, gen_type, ia5);
	return gn;
}

/* One GENERAL_NAME for an identifier; NULL if malformed. */
static GENERAL_NAME *
ident_general_name(const char *type, const char *value)
{
	GENERAL_NAME *gn = NULL;
	ASN1_OCTET_STRING *os = NULL;
	unsigned char raw[16];
	int rawlen = 0;

	if (strcmp(type, "dns") == 0)
		return ia5_general_name(GEN_DNS, value);
	if (strcmp(type, "email") == 0) /* RFC 8823 §4 / RFC 5280 §4.2.1.6 */
		return ia5_general_name(GEN_EMAIL, value);
	if (strcmp(type, "permanent-identifier") == 0 ||
	    strcmp(type, "hardware-module") == 0)
		return ca_device_general_name(type, value);
	if (strcmp(type, "bundleEID") == 0)
		return ca_bundle_general_name(value);
	if (strcmp(type, "ip") == 0) {
		if (inet_pton(AF_INET, value, raw) == 1)
			rawlen = 4;
		else if (inet_pton(AF_INET6, value, raw) == 1)
			rawlen = 16;
		else
			goto fail;
		if ((os = ASN1_OCTET_STRING_new()) == NULL ||
		    !ASN1_OCTET_STRING_set(os, raw, rawlen))
			goto fail;
		if ((gn = GENERAL_NAME_new()) == NULL)
			goto fail;
		GENERAL_NAME_set0_value(gn, GEN_IPADD, os);
		return gn;
	}
fail:
	ASN1_OCTET_STRING_free(os);
	GENERAL_NAME_free(gn);
	return NULL;
}

static int
add_san(X509 *x, const json_t *sans, int critical)
{
	GENERAL_NAMES *gens = NULL;
	GENERAL_NAME *gn;
	const json_t *id;
	size_t k;
	int ret = -1;

	if ((gens = sk_GENERAL_NAME_new_null()) == NULL)
		goto out;
	json_array_foreach(sans, k, id)
	{
		gn = ident_general_name(
		    json_string_value(json_object_get(id, "type")),
		    json_string_value(json_object_get(id, "value")));
		if (gn == NULL)
			goto out;
		if (!sk_GENERAL_NAME_push(gens, gn)) {
			GENERAL_NAME_free(gn);
			goto out;
		}
	}
	if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, critical,
		X509V3_ADD_DEFAULT) != 1)
		goto out;
	ret = 0;
out:
	GENERAL_NAMES_free(gens);
	return ret;
}

/* What names the subject: RFC 8226's TNAuthList extension for a STIR
 * profile (stir.c), else the subjectAltName. 0, or -1 with err. */
static int
add_names(X509 *x, const struct ca_tbs *t, char *err, size_t errlen)
{
	if (t->profile->allow_tnauthlist)
		return ca_stir_add_ext(x, t->sans, err, errlen);
	if (add_san(x, t->sans, t->cn == NULL) != 0) {
		snprintf(err, errlen, "malformed identifier");
		return -1;
	}
	return 0;
}

/* Copies an encoded SubjectPublicKeyInfo into x without re-encoding. */
static int
copy_spki(X509 *x, const X509_PUBKEY *src)
{
	ASN1_OBJECT *alg = NULL;
	const ASN1_OBJECT *aobj = NULL;
	const unsigned char *pk = NULL;
	const void *pval = NULL;
	X509_ALGOR *pa = NULL;
	unsigned char *penc = NULL;
	void *pcopy = NULL;
	int pklen = 0, ptype = V_ASN1_UNDEF;
	X509_PUBKEY *dst = X509_get_X509_PUBKEY(x);

	if (dst == NULL ||
	    !X509_PUBKEY_get0_param(&alg, &pk, &pklen, &pa, src) ||
	    pk == NULL || pklen <= 0)
		return -1;
	X509_ALGOR_get0(&aobj, &ptype, &pval, pa);
	if (ptype == V_ASN1_OBJECT)
		pcopy = OBJ_dup(pval);
	else if (ptype == V_ASN1_SEQUENCE)
		pcopy = ASN1_STRING_dup(pval);
	else if (ptype != V_ASN1_NULL && ptype != V_ASN1_UNDEF)
		return -1;
	if (ptype != V_ASN1_NULL && ptype != V_ASN1_UNDEF && pcopy == NULL)
		return -1;
	if ((penc = OPENSSL_memdup(pk, (size_t)pklen)) == NULL)
		goto fail;
	if (!X509_PUBKEY_set0_param(
		dst, OBJ_dup(aobj), ptype, pcopy, penc, pklen))
		goto fail;
	return 0;
fail:
	OPENSSL_free(penc);
	if (ptype == V_ASN1_OBJECT)
		ASN1_OBJECT_free(pcopy);
	else
		ASN1_STRING_free(pcopy);
	return -1;
}

/*
 * basicConstraints and keyUsage (both critical): an end entity, CA:FALSE
 * and digitalSignature (+ keyEncipherment for RSA TLS keys; RFC 8226 STIR
 * certificates sign PASSporTs, digitalSignature only); a STIR CA
 * certificate (t->ca, RFC 9448 "ca": true) CA:TRUE pathlen 0 and
 * keyCertSign + cRLSign. 0 or -1.
 */
static int
add_bc_ku(X509 *x, X509V3_CTX *ctx, const struct ca_tbs *t, enum ca_key_type kt)
{
	if (add_conf_ext(x, ctx, NID_basic_constraints,
		t->ca ? "critical,CA:TRUE,pathlen:0" : "critical,CA:FALSE"))
		return -1;
	return add_conf_ext(x, ctx, NID_key_usage,
		   t->ca ? CA_STIR_CA_KU
		   : kt == CA_KEY_RSA && !t->profile->allow_tnauthlist
		       ? "critical,digitalSignature,keyEncipherment"
		       : "critical,digitalSignature")
	    ? -1
	    : 0;
}

/* See ca_int.h. */
X509 *
ca_tbs_build(const struct ca_tbs *t, char *err, size_t errlen)
{
	X509 *x = NULL;
	X509_NAME *subj = NULL;
	BIGNUM *bn = NULL;
	ASN1_INTEGER *serial = NULL;
	X509V3_CTX ctx;
	enum ca_key_type kt;
	char *aia = NULL, *crl = NULL, *ocsp = NULL, *cdp = NULL;
	char eku[80];
	int ok = 0;

	if (ca_pkey_type(t->pubkey, &kt) != 0) {
		snprintf(err, errlen, "unsupported subject key type");
		goto out;
	}
	if ((x = X509_new()) == NULL || !X509_set_version(x, 2))
		goto fail;
	if ((bn = BN_bin2bn(t->serial, CA_SERIAL_LEN, NULL)) == NULL ||
	    (serial = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
	    !X509_set_serialNumber(x, serial))
		goto fail;
	if (!X509_set_issuer_name(x, X509_get_subject_name(t->issuer->cert)))
		goto fail;
	if ((subj = X509_NAME_new()) == NULL)
		goto fail;
	if (t->cn != NULL &&
	    !X509_NAME_add_entry_by_NID(subj, NID_commonName, MBSTRING_UTF8,
		(const unsigned char *)t->cn, -1, -1, 0))
		goto fail;
	if (!X509_set_subject_name(x, subj))
		goto fail;
	if (ASN1_TIME_set(X509_getm_notBefore(x), t->not_before) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(x), t->not_after) == NULL)
		goto fail;
	if (t->spki != NULL ? copy_spki(x, t->spki) != 0
			    : !X509_set_pubkey(x, t->pubkey))
		goto fail;

	X509V3_set_ctx(&ctx, t->issuer->cert, x, NULL, NULL, 0);
	if (add_bc_ku(x, &ctx, t, kt) != 0)
		goto fail;
	snprintf(eku, sizeof(eku), "%s%s%s",
	    t->profile->eku_server_auth ? "serverAuth" : "",
	    t->profile->eku_server_auth && t->profile->eku_client_auth ? ","
								       : "",
	    t->profile->eku_client_auth ? "clientAuth" : "");
	/* an S/MIME profile has this EKU alone (core/profile.c) */
	if (t->profile->eku_email_protection)
		snprintf(eku, sizeof(eku), "emailProtection");
	/* RFC 9891 §7: id-kp-bundleSecurity (RFC 9174 §4.4.2.1), alone */
	if (t->profile->eku_bundle_security)
		snprintf(eku, sizeof(eku), "1.3.6.1.5.5.7.3.35");
	if (eku[0] != '\0' && add_conf_ext(x, &ctx, NID_ext_key_usage, eku))
		goto fail;
	if (add_conf_ext(x, &ctx, NID_subject_key_identifier, "hash"))
		goto fail;
	if (add_conf_ext(x, &ctx, NID_authority_key_identifier, "keyid:always"))
		goto fail;
	crl = ca_url_issuer(t->base_url, t->issuer->id);
	if (t->ocsp_url) {
		ocsp = ca_url_ocsp(t->base_url);
		aia = xasprintf("OCSP;URI:%s,caIssuers;URI:%s", ocsp, crl);
	} else {
		aia = xasprintf("caIssuers;URI:%s", crl);
	}
	if (add_conf_ext(x, &ctx, NID_info_access, aia))
		goto fail;
	free(crl);
	crl = ca_url_crl(t->base_url, t->issuer->id, t->shard);
	cdp = xasprintf("URI:%s", crl);
	if (add_conf_ext(x, &ctx, NID_crl_distribution_points, cdp))
		goto fail;
	if (add_names(x, t, err, errlen) != 0)
		goto out;
	ok = 1;
	goto out;
fail:
	snprintf(err, errlen, "building the certificate failed");
out:
	X509_NAME_free(subj);
	BN_free(bn);
	ASN1_INTEGER_free(serial);
	free(aia);
	free(crl);
	free(ocsp);
	free(cdp);
	if (!ok) {
		X509_free(x);
		x = NULL;
	}
	return x;
}

/* See ca_int.h. */
int
ca_tbs_der(X509 *x, uint8_t **der, size_t *len)
{
	unsigned char *p = NULL;
	int n = i2d_re_X509_tbs(x, &p);

	return ca_der_take(n, p, der, len);
}

/* Does identifier id equal the CSR's general name gn? */
static int
ident_matches(const json_t *id, const GENERAL_NAME *gn)
{
	const char *type = json_string_value(json_object_get(id, "type"));
	const char *value = json_string_value(json_object_get(id, "value"));
	unsigned char raw[16];
	int rawlen = 0;
	const ASN1_STRING *s;

	if (type == NULL || value == NULL)
		return 0;
	if (gn->type == GEN_DNS && strcmp(type, "dns") == 0) {
		s = gn->d.dNSName;
		return (size_t)ASN1_STRING_length(s) == strlen(value) &&
		    strncasecmp((const char *)ASN1_STRING_get0_data(s), value,
			strlen(value)) == 0;
	}
	if (gn->type == GEN_EMAIL && strcmp(type, "email") == 0) {
		/* the local part is case-sensitive (RFC 5321 §2.4), the
		 * domain is not: both were normalised by the RA */
		s = gn->d.rfc822Name;
		return (size_t)ASN1_STRING_length(s) == strlen(value) &&
		    memcmp(ASN1_STRING_get0_data(s), value, strlen(value)) ==
		    0;
	}
	if (gn->type == GEN_OTHERNAME) /* §3.2: "an octet-for-octet match" */
		return ca_gn_device_equals(gn, type, value);
	if (gn->type == GEN_IPADD && strcmp(type, "ip") == 0) {
		if (inet_pton(AF_INET, value, raw) == 1)
			rawlen = 4;
		else if (inet_pton(AF_INET6, value, raw) == 1)
			rawlen = 16;
		s = gn->d.iPAddress;
		return rawlen > 0 && ASN1_STRING_length(s) == rawlen &&
		    memcmp(ASN1_STRING_get0_data(s), raw, (size_t)rawlen) == 0;
	}
	return 0;
}

/* See ca_int.h. */
json_t *
ca_order_sans(
    X509_REQ *csr, const json_t *identifiers, char *err, size_t errlen)
{
	STACK_OF(X509_EXTENSION) *exts = NULL;
	GENERAL_NAMES *gens = NULL;
	json_t *out = NULL, *used = NULL;
	const json_t *id;
	size_t k, n;
	int g, ok = 0;

	if (!json_is_array(identifiers) || json_array_size(identifiers) == 0) {
		snprintf(err, errlen, "no identifiers");
		goto out;
	}
	json_array_foreach(identifiers, k, id)
	{
		const char *t = json_string_value(json_object_get(id, "type"));
		const char *v = json_string_value(json_object_get(id, "value"));
		if (t == NULL || v == NULL ||
		    (strcmp(t, "dns") != 0 && strcmp(t, "ip") != 0 &&
			strcmp(t, "email") != 0 &&
			strcmp(t, "permanent-identifier") != 0 &&
			strcmp(t, "hardware-module") != 0 &&
			strcmp(t, "bundleEID") != 0 &&
			strcmp(t, "TNAuthList") != 0) ||
		    v[0] == '\0' || strlen(v) > 253) {
			snprintf(err, errlen, "identifiers[%zu]: malformed", k);
			goto out;
		}
	}
	n = json_array_size(identifiers);
	out = json_array();
	used = json_array();
	for (k = 0; k < n; k++)
		json_array_append_new(used, json_false());
	exts = X509_REQ_get_extensions(csr);
	if (exts != NULL)
		gens = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
	for (g = 0; gens != NULL && g < sk_GENERAL_NAME_num(gens); g++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, g);
		json_array_foreach(identifiers, k, id)
		{
			if (json_is_true(json_array_get(used, k)) ||
			    !ident_matches(id, gn))
				continue;
			json_array_set_new(used, k, json_true());
			json_array_append_new(out,
			    json_pack("{s:O, s:O}", "type",
				json_object_get(id, "type"), "value",
				json_object_get(id, "value")));
			break;
		}
	}
	json_array_foreach(identifiers, k, id)
	{
		if (json_is_true(json_array_get(used, k)))
			continue;
		json_array_append_new(out,
		    json_pack("{s:O, s:O}", "type", json_object_get(id, "type"),
			"value", json_object_get(id, "value")));
	}
	ok = 1;
out:
	GENERAL_NAMES_free(gens);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	json_decref(used);
	if (!ok) {
		json_decref(out);
		out = NULL;
	}
	return out;
}

/* See ca_int.h. */
const char *
ca_choose_cn(X509_REQ *csr, const json_t *sans)
{
	X509_NAME *subj = X509_REQ_get_subject_name(csr);
	const json_t *id;
	const char *v, *first = NULL;
	unsigned char *cn = NULL;
	size_t k;
	int idx, n;

	idx = subj != NULL
	    ? X509_NAME_get_index_by_NID(subj, NID_commonName, -1)
	    : -1;
	if (idx >= 0) {
		n = ASN1_STRING_to_UTF8(&cn,
		    X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx)));
		if (n < 0)
			cn = NULL;
	}
	json_array_foreach(sans, k, id)
	{
		if (strcmp(json_string_value(json_object_get(id, "type")),
			"dns") != 0)
			continue;
		v = json_string_value(json_object_get(id, "value"));
		if (strlen(v) > 64)
			continue;
		if (first == NULL)
			first = v;
		if (cn != NULL && strcasecmp((const char *)cn, v) == 0) {
			first = v;
			break;
		}
	}
	OPENSSL_free(cn);
	return first;
}
