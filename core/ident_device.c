/*
 * ident_device.c - the X.509 forms of draft-ietf-acme-device-attest's
 * identifiers: a subjectAltName otherName PermanentIdentifier (RFC 4043,
 * id-on 3) for permanent-identifier and HardwareModuleName (RFC 4108,
 * id-on 4) for hardware-module, to and from the identifier's string value
 * (§3.2: "The value of the identifierValue field of the PermanentIdentifier
 * MUST be an octet-for-octet match of the device-identifier-value value";
 * §4.2 likewise for hwSerialNum).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/objects.h>

#include "core/core.h"

#define OID_PERMANENT_ID "1.3.6.1.5.5.7.8.3"
#define OID_HARDWARE_MODULE "1.3.6.1.5.5.7.8.4"

/* The dotted text of o into buf; 0 or -1. */
static int
oid_text(const ASN1_OBJECT *o, char *buf, size_t buflen)
{
	int n = OBJ_obj2txt(buf, (int)buflen, o, 1);

	return n > 0 && (size_t)n < buflen ? 0 : -1;
}

/* PermanentIdentifier SEQUENCE at der: "value" or "value/assigner". */
static char *
permanent_id(const unsigned char *der, long n)
{
	const unsigned char *p = der, *end, *q;
	long len;
	int tag, cls;
	char value[256] = "", oid[128] = "";
	ASN1_OBJECT *obj;

	if ((ASN1_get_object(&p, &len, &tag, &cls, n) & 0x80) ||
	    tag != V_ASN1_SEQUENCE || p + len != der + n)
		return NULL;
	end = p + len;
	while (p < end) {
		q = p;
		if ((ASN1_get_object(&p, &len, &tag, &cls, end - p) & 0x80) ||
		    cls != V_ASN1_UNIVERSAL)
			return NULL;
		if (tag == V_ASN1_UTF8STRING && len > 0 &&
		    (size_t)len < sizeof(value) && memchr(p, 0, len) == NULL &&
		    memchr(p, '/', len) == NULL) {
			memcpy(value, p, (size_t)len);
			value[len] = '\0';
		} else if (tag == V_ASN1_OBJECT) {
			obj = d2i_ASN1_OBJECT(NULL, &q, p + len - q);
			if (obj == NULL || oid_text(obj, oid, sizeof(oid)) != 0) {
				ASN1_OBJECT_free(obj);
				return NULL;
			}
			ASN1_OBJECT_free(obj);
		} else {
			return NULL;
		}
		p += len;
	}
	if (value[0] == '\0')
		return NULL;
	return oid[0] ? xasprintf("%s/%s", value, oid) : xstrdup(value);
}

/* HardwareModuleName SEQUENCE at der: "serial/hwType". */
static char *
hardware_module(const unsigned char *der, long n)
{
	const unsigned char *p = der, *end;
	long len;
	int tag, cls;
	char serial[256], oid[128];
	ASN1_OBJECT *obj;

	if ((ASN1_get_object(&p, &len, &tag, &cls, n) & 0x80) ||
	    tag != V_ASN1_SEQUENCE || p + len != der + n)
		return NULL;
	end = p + len;
	obj = d2i_ASN1_OBJECT(NULL, &p, end - p);
	if (obj == NULL || oid_text(obj, oid, sizeof(oid)) != 0) {
		ASN1_OBJECT_free(obj);
		return NULL;
	}
	ASN1_OBJECT_free(obj);
	if ((ASN1_get_object(&p, &len, &tag, &cls, end - p) & 0x80) ||
	    tag != V_ASN1_OCTET_STRING || len <= 0 || p + len != end ||
	    (size_t)len >= sizeof(serial) || memchr(p, 0, len) != NULL ||
	    memchr(p, '/', len) != NULL)
		return NULL;
	memcpy(serial, p, (size_t)len);
	serial[len] = '\0';
	return xasprintf("%s/%s", serial, oid);
}

/* See core.h. */
char *
ident_device_from_othername(const char *type_oid, const unsigned char *der,
    long len, enum ident_type *type)
{
	char *v = NULL, err[8];

	if (type_oid == NULL || der == NULL || len <= 0)
		return NULL;
	if (strcmp(type_oid, OID_PERMANENT_ID) == 0) {
		*type = IDENT_PERMANENT_ID;
		v = permanent_id(der, len);
	} else if (strcmp(type_oid, OID_HARDWARE_MODULE) == 0) {
		*type = IDENT_HARDWARE_MODULE;
		v = hardware_module(der, len);
	}
	if (v != NULL && ident_device_check(*type, v, err, sizeof(err)) != 0) {
		free(v);
		v = NULL;
	}
	return v;
}

/* Appends tag, DER length and n bytes of body to out (at *o; out holds
 * at least *o + n + 4). */
static void
put_tlv(unsigned char *out, size_t *o, int tag, const void *body, size_t n)
{
	out[(*o)++] = (unsigned char)tag;
	if (n < 0x80) {
		out[(*o)++] = (unsigned char)n;
	} else if (n < 0x100) {
		out[(*o)++] = 0x81;
		out[(*o)++] = (unsigned char)n;
	} else {
		out[(*o)++] = 0x82;
		out[(*o)++] = (unsigned char)(n >> 8);
		out[(*o)++] = (unsigned char)n;
	}
	memcpy(out + *o, body, n);
	*o += n;
}

/* See core.h. */
unsigned char *
ident_device_othername_der(
    enum ident_type t, const char *value, size_t *len, const char **type_oid)
{
	unsigned char inner[600], *out = NULL, *oder = NULL;
	const char *slash;
	ASN1_OBJECT *obj = NULL;
	size_t o = 0, idlen;
	char err[8], *oidtxt = NULL;
	int on = 0;

	if (ident_device_check(t, value, err, sizeof(err)) != 0 ||
	    strlen(value) > 255)
		return NULL;
	slash = strchr(value, '/');
	idlen = slash ? (size_t)(slash - value) : strlen(value);
	if (slash != NULL) {
		oidtxt = xstrdup(slash + 1);
		if ((obj = OBJ_txt2obj(oidtxt, 1)) == NULL ||
		    (on = i2d_ASN1_OBJECT(obj, &oder)) <= 0 || on > 200)
			goto out;
	}
	if (t == IDENT_PERMANENT_ID) {
		put_tlv(inner, &o, V_ASN1_UTF8STRING, value, idlen);
		if (oder != NULL) {
			memcpy(inner + o, oder, (size_t)on);
			o += (size_t)on;
		}
		*type_oid = OID_PERMANENT_ID;
	} else {
		memcpy(inner + o, oder, (size_t)on);
		o += (size_t)on;
		put_tlv(inner, &o, V_ASN1_OCTET_STRING, value, idlen);
		*type_oid = OID_HARDWARE_MODULE;
	}
	out = xmalloc(o + 4);
	*len = 0;
	put_tlv(out, len, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED, inner, o);
out:
	ASN1_OBJECT_free(obj);
	OPENSSL_free(oder);
	free(oidtxt);
	return out;
}
