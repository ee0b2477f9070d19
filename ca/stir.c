/*
 * stir.c - STIR certificates (RFC 8226) for TNAuthList identifiers (RFC
 * 9448): RFC 8226 §9 "The TN Authorization List certificate extension"
 * (id-pe-TNAuthList, 1.3.6.1.5.5.7.1.26) carries exactly the DER the
 * identifier's value encodes, in place of a subjectAltName; the subject
 * names the list. The profile (core/profile.c) has no EKU, and tbs.c gives
 * such certificates the keyUsage digitalSignature alone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "ca/ca_int.h"

/* The one TNAuthList identifier of sans (borrowed), or NULL. */
static const char *
stir_value(const json_t *sans)
{
	const json_t *id = json_array_get(sans, 0);
	const char *t = json_string_value(json_object_get(id, "type"));

	if (json_array_size(sans) != 1 || t == NULL ||
	    strcmp(t, "TNAuthList") != 0)
		return NULL;
	return json_string_value(json_object_get(id, "value"));
}

/* See ca_int.h. */
int
ca_stir_add_ext(X509 *x, const json_t *sans, char *err, size_t errlen)
{
	const char *v = stir_value(sans);
	ASN1_OBJECT *oid = OBJ_txt2obj(TNAUTH_OID, 1);
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	X509_EXTENSION *ext = NULL;
	uint8_t *der = NULL;
	size_t len = 0;
	char e[200];
	int rc = -1;

	if (v == NULL) {
		snprintf(err, errlen,
		    "a STIR certificate is for exactly one TNAuthList "
		    "identifier");
		goto out;
	}
	if (ident_tnauthlist_check(v, &der, &len, e, sizeof(e)) != 0) {
		snprintf(err, errlen, "TNAuthList: %s", e);
		goto out;
	}
	/* RFC 8226 §9 does not ask for criticality; a relying party that
	 * does not know the extension still sees a valid certificate */
	if (oid == NULL || os == NULL ||
	    !ASN1_OCTET_STRING_set(os, der, (int)len) ||
	    (ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 0, os)) == NULL ||
	    !X509_add_ext(x, ext, -1)) {
		snprintf(err, errlen, "building the TNAuthList extension failed");
		goto out;
	}
	rc = 0;
out:
	X509_EXTENSION_free(ext);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(oid);
	free(der);
	return rc;
}

/* See ca_int.h. */
const char *
ca_stir_cn(const json_t *sans, char *buf, size_t buflen)
{
	const char *v = stir_value(sans);
	struct tnauth_list l;
	uint8_t *der = NULL;
	size_t len = 0;
	char e[200];

	if (v == NULL || ident_tnauthlist_check(v, &der, &len, e, sizeof(e)) !=
		0 ||
	    tnauth_parse(der, len, &l, e, sizeof(e)) != 0) {
		free(der);
		return NULL;
	}
	free(der);
	return tnauth_summary(&l, buf, buflen);
}

/* See ca_int.h. */
int
ca_stir_lint(X509 *x, const json_t *idents, int ca, char *msg, size_t msglen)
{
	const char *v = stir_value(idents);
	char e[200] = "";

	if (v == NULL ||
	    tnauth_ext_check(X509_get0_extensions(x), v, e, sizeof(e)) != 1) {
		snprintf(msg, msglen,
		    "a STIR certificate has one TNAuthList extension holding "
		    "its one TNAuthList identifier's DER%s%s",
		    e[0] ? ": " : "", e);
		return -1;
	}
	if (X509_get_ext_by_NID(x, NID_subject_alt_name, -1) >= 0 ||
	    X509_get_ext_by_NID(x, NID_ext_key_usage, -1) >= 0 ||
	    X509_get_key_usage(x) !=
		(ca ? KU_KEY_CERT_SIGN | KU_CRL_SIGN : KU_DIGITAL_SIGNATURE)) {
		snprintf(msg, msglen,
		    "a STIR certificate has no subjectAltName, no "
		    "extKeyUsage and keyUsage %s alone",
		    ca ? "keyCertSign, cRLSign" : "digitalSignature");
		return -1;
	}
	return 0;
}
