/*
 * attest_akd.c - the Android Key Attestation extension
 * (1.3.6.1.4.1.11129.2.1.17) of android-key statements (attest_android.c):
 *
 *   KeyDescription ::= SEQUENCE {
 *       attestationVersion INTEGER, attestationSecurityLevel SecurityLevel,
 *       keyMintVersion INTEGER, keyMintSecurityLevel SecurityLevel,
 *       attestationChallenge OCTET STRING, uniqueId OCTET STRING,
 *       softwareEnforced AuthorizationList,
 *       hardwareEnforced AuthorizationList }   -- "teeEnforced" before v100
 *   SecurityLevel ::= ENUMERATED { Software (0), TrustedEnvironment (1),
 *       StrongBox (2) }
 *   AuthorizationList ::= SEQUENCE { purpose [1] EXPLICIT SET OF INTEGER
 *       OPTIONAL, ..., allApplications [600] EXPLICIT NULL OPTIONAL, ...,
 *       origin [702] EXPLICIT INTEGER OPTIONAL, ...,
 *       attestationIdSerial [713] EXPLICIT OCTET_STRING OPTIONAL,
 *       attestationIdImei [714] ..., attestationIdMeid [715] ..., ... }
 *
 * The KeyDescription is decoded with an OpenSSL ASN.1 template, after a
 * check that its header is DER (definite, spanning the input: OpenSSL
 * also takes BER's indefinite lengths). The two AuthorizationLists are
 * walked with ASN1_get_object because Android adds tags with every KeyMint
 * version: unknown tags are skipped, the ones read here must be
 * well-formed and appear once. Nothing here links the rest of the VA (the
 * fuzz target test/fuzz/fuzz_keydesc.c builds on this file alone).
 */
#include <stdio.h>
#include <string.h>

#include <openssl/asn1t.h>

#include "va/va_int.h"

#define AKD_MAX_FIELDS 128 /* entries of one AuthorizationList */

/* AuthorizationList tags read here (all [n] EXPLICIT) */
enum {
	TAG_PURPOSE = 1,
	TAG_ALL_APPLICATIONS = 600,
	TAG_ORIGIN = 702,
	TAG_ID_SERIAL = 713,
	TAG_ID_IMEI = 714,
	TAG_ID_MEID = 715,
};

typedef struct {
	ASN1_INTEGER *att_version;
	ASN1_ENUMERATED *att_level;
	ASN1_INTEGER *km_version;
	ASN1_ENUMERATED *km_level;
	ASN1_OCTET_STRING *challenge;
	ASN1_OCTET_STRING *unique_id;
	ASN1_TYPE *sw;  /* AuthorizationList, left encoded */
	ASN1_TYPE *tee; /* AuthorizationList, left encoded */
} AKD_DESC;

/* clang-format off */
ASN1_SEQUENCE(AKD_DESC) = {
	ASN1_SIMPLE(AKD_DESC, att_version, ASN1_INTEGER),
	ASN1_SIMPLE(AKD_DESC, att_level, ASN1_ENUMERATED),
	ASN1_SIMPLE(AKD_DESC, km_version, ASN1_INTEGER),
	ASN1_SIMPLE(AKD_DESC, km_level, ASN1_ENUMERATED),
	ASN1_SIMPLE(AKD_DESC, challenge, ASN1_OCTET_STRING),
	ASN1_SIMPLE(AKD_DESC, unique_id, ASN1_OCTET_STRING),
	ASN1_SIMPLE(AKD_DESC, sw, ASN1_ANY),
	ASN1_SIMPLE(AKD_DESC, tee, ASN1_ANY),
} static_ASN1_SEQUENCE_END(AKD_DESC)

static const char *const level_names[] = {"software", "tee", "strongbox"};
/* clang-format on */

/* See va_int.h. */
int
va_android_level_parse(const char *s)
{
	int i;

	if (s == NULL)
		return VA_AKD_TEE;
	for (i = 0; i < 3; i++)
		if (strcmp(s, level_names[i]) == 0)
			return i;
	return -1;
}

/* See va_int.h. */
const char *
va_android_level_name(int level)
{
	return level >= 0 && level < 3 ? level_names[level] : "?";
}

/*
 * The DER header at *p (at most end - *p bytes): definite length, content
 * inside the input. *p moves to the content. 0, or -1.
 */
static int
der_head(const uint8_t **p, const uint8_t *end, int *tag, int *cls, long *len,
    int *cons)
{
	const unsigned char *q = *p;
	int r;

	if (*p >= end)
		return -1;
	r = ASN1_get_object(&q, len, tag, cls, end - *p);
	if ((r & 0x80) || r == 0x21 || *len < 0 || *len > end - q)
		return -1;
	*cons = (r & V_ASN1_CONSTRUCTED) != 0;
	*p = q;
	return 0;
}

/* The INTEGER that is exactly [p, end) into *v: 0, or -1. */
static int
der_int(const uint8_t *p, const uint8_t *end, int64_t *v)
{
	const unsigned char *q = p;
	ASN1_INTEGER *i = d2i_ASN1_INTEGER(NULL, &q, end - p);
	int ok = i != NULL && q == end && ASN1_INTEGER_get_int64(v, i) == 1;

	ASN1_INTEGER_free(i);
	return ok ? 0 : -1;
}

/* purpose: the SET OF INTEGER that is exactly [p, end). 0, or -1. */
static int
der_purposes(const uint8_t *p, const uint8_t *end, struct va_akd_list *l)
{
	const uint8_t *q;
	int tag, cls, cons;
	long len;

	if (der_head(&p, end, &tag, &cls, &len, &cons) != 0 ||
	    tag != V_ASN1_SET || cls != V_ASN1_UNIVERSAL || !cons ||
	    p + len != end)
		return -1;
	while (p < end) {
		q = p;
		if (l->n_purpose == VA_AKD_MAX_PURPOSES ||
		    der_head(&q, end, &tag, &cls, &len, &cons) != 0 ||
		    tag != V_ASN1_INTEGER || cls != V_ASN1_UNIVERSAL ||
		    der_int(p, q + len, &l->purpose[l->n_purpose++]) != 0)
			return -1;
		p = q + len;
	}
	l->has_purpose = 1;
	return 0;
}

/* An attestationId* OCTET STRING that is exactly [p, end), 1..64
 * printable bytes, into out. 0, or -1. */
static int
der_id(const uint8_t *p, const uint8_t *end, char *out)
{
	const unsigned char *q = p;
	ASN1_OCTET_STRING *s = d2i_ASN1_OCTET_STRING(NULL, &q, end - p);
	int n = s != NULL ? ASN1_STRING_length(s) : 0, i, ok;

	ok = s != NULL && q == end && n >= 1 && n <= VA_AKD_MAX_ID;
	for (i = 0; ok && i < n; i++)
		ok = ASN1_STRING_get0_data(s)[i] >= 0x20 &&
		    ASN1_STRING_get0_data(s)[i] != 0x7f;
	if (ok) {
		memcpy(out, ASN1_STRING_get0_data(s), (size_t)n);
		out[n] = '\0';
	}
	ASN1_OCTET_STRING_free(s);
	return ok ? 0 : -1;
}

/* The value of the field with tag in [p, end) into l. 0, or -1. */
static int
akd_field(int tag, const uint8_t *p, const uint8_t *end, struct va_akd_list *l)
{
	const unsigned char *q = p;
	ASN1_NULL *nul;
	int ok;

	switch (tag) {
	case TAG_PURPOSE:
		return der_purposes(p, end, l);
	case TAG_ALL_APPLICATIONS:
		nul = d2i_ASN1_NULL(NULL, &q, end - p);
		ok = nul != NULL && q == end;
		ASN1_NULL_free(nul);
		l->all_applications = 1;
		return ok ? 0 : -1;
	case TAG_ORIGIN:
		l->has_origin = 1;
		return der_int(p, end, &l->origin);
	case TAG_ID_SERIAL:
		return der_id(p, end, l->serial);
	case TAG_ID_IMEI:
		return der_id(p, end, l->imei);
	case TAG_ID_MEID:
		return der_id(p, end, l->meid);
	default:
		return 0;
	}
}

/* The bit of a tag read here (0 for the others). */
static unsigned
akd_bit(int tag)
{
	static const int read[] = {TAG_PURPOSE, TAG_ALL_APPLICATIONS,
	    TAG_ORIGIN, TAG_ID_SERIAL, TAG_ID_IMEI, TAG_ID_MEID};
	unsigned i;

	for (i = 0; i < sizeof(read) / sizeof(read[0]); i++)
		if (read[i] == tag)
			return 1u << i;
	return 0;
}

/* The AuthorizationList (SEQUENCE of [n] EXPLICIT fields) that is exactly
 * t's encoding into l. 0, or -1 with err naming it. */
static int
akd_list(const ASN1_TYPE *t, const char *name, struct va_akd_list *l, char *err,
    size_t errlen)
{
	const uint8_t *p, *end, *in;
	unsigned seen = 0, bit;
	int tag, cls, cons, n = 0;
	long len;

	if (t->type != V_ASN1_SEQUENCE) {
		snprintf(err, errlen, "%s is not a SEQUENCE", name);
		return -1;
	}
	p = ASN1_STRING_get0_data(t->value.sequence);
	end = p + ASN1_STRING_length(t->value.sequence);
	if (der_head(&p, end, &tag, &cls, &len, &cons) != 0 || p + len != end) {
		snprintf(err, errlen, "%s is not DER", name);
		return -1;
	}
	while (p < end) {
		if (++n > AKD_MAX_FIELDS ||
		    der_head(&p, end, &tag, &cls, &len, &cons) != 0 ||
		    cls != V_ASN1_CONTEXT_SPECIFIC || !cons) {
			snprintf(err, errlen,
			    "%s: entry %d is not an [n] EXPLICIT field", name,
			    n);
			return -1;
		}
		in = p;
		p += len;
		bit = akd_bit(tag);
		if ((seen & bit) != 0 || akd_field(tag, in, p, l) != 0) {
			snprintf(err, errlen,
			    "%s: field [%d] is malformed or repeated", name,
			    tag);
			return -1;
		}
		seen |= bit;
	}
	return 0;
}

/* An ENUMERATED SecurityLevel (0..2) of d into *out: 0, or -1. */
static int
akd_level(const ASN1_ENUMERATED *e, int *out)
{
	int64_t v;

	if (ASN1_ENUMERATED_get_int64(&v, e) != 1 || v < 0 || v > 2)
		return -1;
	*out = (int)v;
	return 0;
}

/* See va_int.h. */
int
va_akd_parse(const uint8_t *der, size_t len, struct va_akd *out, char *err,
    size_t errlen)
{
	const unsigned char *p = der;
	const uint8_t *hp = der;
	AKD_DESC *d = NULL;
	int rc = -1, tag, cls, cons;
	long hl;

	memset(out, 0, sizeof(*out));
	/* OpenSSL's decoder also takes BER's indefinite lengths: the outer
	 * header must be a definite one spanning the input */
	if (len == 0 || len > VA_ATT_MAX_LEN ||
	    der_head(&hp, der + len, &tag, &cls, &hl, &cons) != 0 ||
	    tag != V_ASN1_SEQUENCE || hp + hl != der + len ||
	    (d = (AKD_DESC *)ASN1_item_d2i(
		 NULL, &p, (long)len, ASN1_ITEM_rptr(AKD_DESC))) == NULL ||
	    p != der + len) {
		snprintf(err, errlen, "not a DER KeyDescription");
		goto out;
	}
	if (ASN1_INTEGER_get_int64(&out->att_version, d->att_version) != 1 ||
	    akd_level(d->att_level, &out->att_level) != 0 ||
	    akd_level(d->km_level, &out->km_level) != 0) {
		snprintf(err, errlen,
		    "attestationVersion or a SecurityLevel is out of range");
		goto out;
	}
	if (ASN1_STRING_length(d->challenge) > (int)sizeof(out->challenge)) {
		snprintf(err, errlen, "attestationChallenge is over 128 bytes");
		goto out;
	}
	out->challenge_len = (size_t)ASN1_STRING_length(d->challenge);
	memcpy(out->challenge, ASN1_STRING_get0_data(d->challenge),
	    out->challenge_len);
	if (akd_list(d->sw, "softwareEnforced", &out->sw, err, errlen) != 0 ||
	    akd_list(d->tee, "teeEnforced", &out->tee, err, errlen) != 0)
		goto out;
	rc = 0;
out:
	ASN1_item_free((ASN1_VALUE *)d, ASN1_ITEM_rptr(AKD_DESC));
	if (rc != 0)
		memset(out, 0, sizeof(*out));
	return rc;
}
