/*
 * device.c - subjectAltName otherNames for draft-ietf-acme-device-attest's
 * identifiers: §3.2 "The identity is included in the Subject Alternative
 * Name Extension ("SAN") using the identifierValue field of the
 * PermanentIdentifier form described in RFC 4043"; §4.2 the
 * HardwareModuleName form of RFC 4108 (encoding in core/ident_device.c).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "ca/ca_int.h"

/* See ca_int.h. */
GENERAL_NAME *
ca_device_general_name(const char *type, const char *value)
{
	enum ident_type t;
	const char *oid = NULL;
	unsigned char *der = NULL;
	const unsigned char *p;
	size_t len = 0;
	ASN1_OBJECT *obj = NULL;
	ASN1_TYPE *val = NULL;
	GENERAL_NAME *gn = NULL;

	if (ident_type_parse(type, &t) != 0 || !ident_is_device(t) ||
	    (der = ident_device_othername_der(t, value, &len, &oid)) == NULL)
		return NULL;
	p = der;
	if ((obj = OBJ_txt2obj(oid, 1)) == NULL ||
	    (val = d2i_ASN1_TYPE(NULL, &p, (long)len)) == NULL ||
	    (gn = GENERAL_NAME_new()) == NULL ||
	    GENERAL_NAME_set0_othername(gn, obj, val) != 1) {
		GENERAL_NAME_free(gn);
		ASN1_OBJECT_free(obj);
		ASN1_TYPE_free(val);
		gn = NULL;
	}
	free(der);
	return gn;
}

/* See ca_int.h. */
char *
ca_gn_device_ident(const GENERAL_NAME *gn, enum ident_type *type)
{
	const ASN1_TYPE *v;
	char oid[64];
	int n;

	if (gn->type != GEN_OTHERNAME)
		return NULL;
	v = gn->d.otherName->value;
	n = OBJ_obj2txt(oid, sizeof(oid), gn->d.otherName->type_id, 1);
	/* RFC 9891 §7: a BundleEID (IA5String) names a bundleEID */
	if (v != NULL && v->type == V_ASN1_IA5STRING && n > 0 &&
	    (size_t)n < sizeof(oid)) {
		*type = IDENT_BUNDLE_EID;
		return ident_bundle_eid_from_othername(oid,
		    v->value.ia5string->data,
		    (size_t)v->value.ia5string->length);
	}
	if (v == NULL || v->type != V_ASN1_SEQUENCE || n <= 0 ||
	    (size_t)n >= sizeof(oid))
		return NULL;
	return ident_device_from_othername(oid, v->value.sequence->data,
	    v->value.sequence->length, type);
}

/* See ca_int.h. */
int
ca_gn_device_equals(const GENERAL_NAME *gn, const char *type, const char *value)
{
	enum ident_type dt;
	char *dv = ca_gn_device_ident(gn, &dt);
	int eq = dv != NULL && strcmp(ident_type_name(dt), type) == 0 &&
	    strcmp(dv, value) == 0;

	free(dv);
	return eq;
}

/* See ca_int.h. */
GENERAL_NAME *
ca_bundle_general_name(const char *value)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(IDENT_OID_BUNDLE_EID, 1);
	ASN1_IA5STRING *s = ASN1_IA5STRING_new();
	ASN1_TYPE *val = ASN1_TYPE_new();
	GENERAL_NAME *gn = GENERAL_NAME_new();

	if (obj == NULL || s == NULL || val == NULL || gn == NULL ||
	    !ASN1_STRING_set(s, value, (int)strlen(value)))
		goto fail;
	ASN1_TYPE_set(val, V_ASN1_IA5STRING, s);
	s = NULL;
	if (GENERAL_NAME_set0_othername(gn, obj, val) != 1)
		goto fail;
	return gn;
fail:
	GENERAL_NAME_free(gn);
	ASN1_OBJECT_free(obj);
	ASN1_TYPE_free(val);
	ASN1_IA5STRING_free(s);
	return NULL;
}
