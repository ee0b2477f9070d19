/*
 * tnauth.c - the TNAuthList of RFC 8226 §9 (STIR certificates), which RFC
 * 9448 §3 makes an ACME identifier: "the ACME "identifier" value is the
 * base64url encoding of the TNAuthList ASN.1 object using DER encoding
 * rules". The module of RFC 8226 Appendix A is "DEFINITIONS EXPLICIT TAGS",
 * so each TNEntry is a constructed context tag around the universal type:
 *
 *   TNAuthorizationList ::= SEQUENCE SIZE (1..MAX) OF TNEntry
 *   TNEntry ::= CHOICE {
 *     spc   [0] ServiceProviderCode,      -- A0 { 16 IA5String }
 *     range [1] TelephoneNumberRange,     -- A1 { 30 { 16 .., 02 .. } }
 *     one   [2] TelephoneNumber }         -- A2 { 16 IA5String }
 *   ServiceProviderCode ::= IA5String
 *   TelephoneNumberRange ::= SEQUENCE {
 *     start TelephoneNumber, count INTEGER (2..MAX), ... }
 *   TelephoneNumber ::= IA5String (SIZE (1..15)) (FROM ("0123456789#*"))
 *
 * Everything here is hostile input (a client's identifier, a token's
 * "tkvalue"): every length is checked against what remains before use.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "core/core.h"

/* One DER TLV at *p (end bounds it): tag, content pointer/length. */
struct tlv {
	unsigned tag;
	const uint8_t *v;
	size_t len;
};

/*
 * Reads one TLV with a single-byte tag and a definite, minimally encoded
 * length (DER, X.690 §10.1) from [*p, end), advancing *p. 0 or -1.
 */
static int
tlv_read(const uint8_t **p, const uint8_t *end, struct tlv *t)
{
	const uint8_t *q = *p;
	size_t len, nb, i;

	if (end - q < 2)
		return -1;
	t->tag = *q++;
	if ((t->tag & 0x1f) == 0x1f)
		return -1; /* multi-byte tags: none in this module */
	len = *q++;
	if (len & 0x80) {
		nb = len & 0x7f;
		/* 0x80 is BER's indefinite length; more than 2 length
		 * bytes is far beyond TNAUTH_MAX_DER */
		if (nb == 0 || nb > 2 || (size_t)(end - q) < nb)
			return -1;
		len = 0;
		for (i = 0; i < nb; i++)
			len = (len << 8) | q[i];
		q += nb;
		/* minimal: the long form only from 128 on, no leading 0 */
		if (len < 128 || (nb == 2 && len < 256))
			return -1;
	}
	if ((size_t)(end - q) < len)
		return -1;
	t->v = q;
	t->len = len;
	*p = q + len;
	return 0;
}

/* An IA5String TLV (tag 0x16) that is exactly [v, v + n). 0 or -1. */
static int
ia5_read(const uint8_t *v, size_t n, const uint8_t **s, size_t *slen)
{
	const uint8_t *p = v;
	struct tlv t;

	if (tlv_read(&p, v + n, &t) != 0 || t.tag != 0x16 || p != v + n)
		return -1;
	*s = t.v;
	*slen = t.len;
	return 0;
}

/* TelephoneNumber: 1..15 of "0123456789#*". 1 or 0. */
static int
tn_ok(const uint8_t *s, size_t n)
{
	size_t i;

	if (n < 1 || n > 15)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '#' ||
			s[i] == '*'))
			return 0;
	return 1;
}

/* A ServiceProviderCode Anvil accepts: 1..127 printable ASCII (IA5String
 * allows control characters; a certificate name should not carry them). */
static int
spc_ok(const uint8_t *s, size_t n)
{
	size_t i;

	if (n < 1 || n >= sizeof(((struct tnauth_entry *)0)->text))
		return 0;
	for (i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return 0;
	return 1;
}

/*
 * count INTEGER (2..MAX) in DER (minimal two's complement, positive),
 * at most 2^63 - 1 here. 0 or -1.
 */
static int
count_read(const uint8_t *v, size_t n, uint64_t *out)
{
	uint64_t c = 0;
	size_t i;

	if (n == 0 || n > 8 || (v[0] & 0x80))
		return -1; /* empty, too large or negative */
	if (n > 1 && v[0] == 0 && !(v[1] & 0x80))
		return -1; /* not minimal */
	for (i = 0; i < n; i++)
		c = (c << 8) | v[i];
	if (c < 2)
		return -1;
	*out = c;
	return 0;
}

/* One TNEntry (t) into e. 0, or -1 with err. */
static int
entry_parse(const struct tlv *t, size_t k, struct tnauth_entry *e, char *err,
    size_t errlen)
{
	const uint8_t *s, *p, *end;
	struct tlv seq, start, cnt;
	size_t sl;

	memset(e, 0, sizeof(*e));
	switch (t->tag) {
	case 0xa0: /* spc [0] ServiceProviderCode */
		if (ia5_read(t->v, t->len, &s, &sl) != 0 || !spc_ok(s, sl)) {
			snprintf(err, errlen,
			    "entry %zu: spc [0] is not an explicitly tagged "
			    "IA5String of 1..127 printable characters",
			    k);
			return -1;
		}
		e->kind = TNAUTH_SPC;
		memcpy(e->text, s, sl);
		return 0;
	case 0xa2: /* one [2] TelephoneNumber */
		if (ia5_read(t->v, t->len, &s, &sl) != 0 || !tn_ok(s, sl)) {
			snprintf(err, errlen,
			    "entry %zu: one [2] is not a TelephoneNumber "
			    "(IA5String of 1..15 of \"0123456789#*\")",
			    k);
			return -1;
		}
		e->kind = TNAUTH_ONE;
		memcpy(e->text, s, sl);
		return 0;
	case 0xa1: /* range [1] TelephoneNumberRange */
		p = t->v;
		end = t->v + t->len;
		if (tlv_read(&p, end, &seq) != 0 || seq.tag != 0x30 ||
		    p != end) {
			snprintf(err, errlen,
			    "entry %zu: range [1] does not hold exactly one "
			    "SEQUENCE",
			    k);
			return -1;
		}
		p = seq.v;
		end = seq.v + seq.len;
		if (tlv_read(&p, end, &start) != 0 || start.tag != 0x16 ||
		    !tn_ok(start.v, start.len)) {
			snprintf(err, errlen,
			    "entry %zu: range start is not a TelephoneNumber",
			    k);
			return -1;
		}
		if (tlv_read(&p, end, &cnt) != 0 || cnt.tag != 0x02 ||
		    count_read(cnt.v, cnt.len, &e->count) != 0) {
			snprintf(err, errlen,
			    "entry %zu: range count is not a DER INTEGER "
			    "(2..2^63-1)",
			    k);
			return -1;
		}
		if (p != end) {
			/* the "..." extension marker: no extension is defined,
			 * and what a CA cannot read it does not certify */
			snprintf(err, errlen,
			    "entry %zu: range has members after count (no "
			    "extension of TelephoneNumberRange is defined)",
			    k);
			return -1;
		}
		e->kind = TNAUTH_RANGE;
		memcpy(e->text, start.v, start.len);
		return 0;
	default:
		snprintf(err, errlen,
		    "entry %zu: tag 0x%02x is none of spc [0], range [1], "
		    "one [2] (explicitly tagged, RFC 8226 Appendix A)",
		    k, t->tag);
		return -1;
	}
}

/* See core.h. */
int
tnauth_parse(const uint8_t *der, size_t len, struct tnauth_list *out,
    char *err, size_t errlen)
{
	struct tnauth_list tmp;
	const uint8_t *p = der, *end, *q;
	struct tlv outer, t;
	size_t k = 0;

	if (out == NULL)
		out = &tmp;
	memset(out, 0, sizeof(*out));
	if (der == NULL || len == 0 || len > TNAUTH_MAX_DER) {
		snprintf(err, errlen, "TNAuthList DER must be 1..%d octets",
		    TNAUTH_MAX_DER);
		return -1;
	}
	end = der + len;
	if (tlv_read(&p, end, &outer) != 0 || outer.tag != 0x30) {
		snprintf(err, errlen,
		    "not a DER SEQUENCE (TNAuthorizationList, RFC 8226 §9)");
		return -1;
	}
	if (p != end) {
		snprintf(err, errlen, "data after the TNAuthorizationList");
		return -1;
	}
	q = outer.v;
	while (q < outer.v + outer.len) {
		if (tlv_read(&q, outer.v + outer.len, &t) != 0) {
			snprintf(err, errlen,
			    "entry %zu: not a DER TLV within the SEQUENCE", k);
			return -1;
		}
		if (k == TNAUTH_MAX_ENTRIES) {
			snprintf(err, errlen, "more than %d entries",
			    TNAUTH_MAX_ENTRIES);
			return -1;
		}
		if (entry_parse(&t, k, &out->e[k], err, errlen) != 0)
			return -1;
		k++;
	}
	if (k == 0) {
		snprintf(err, errlen,
		    "empty list (SEQUENCE SIZE (1..MAX) OF TNEntry)");
		return -1;
	}
	out->n = k;
	return 0;
}

/* See core.h. */
int
ident_tnauthlist_check(const char *value, uint8_t **der, size_t *len,
    char *err, size_t errlen)
{
	uint8_t *raw = NULL;
	size_t n = 0, vl = value != NULL ? strlen(value) : 0;
	char why[160];

	if (vl == 0 || vl > 252) {
		snprintf(err, errlen,
		    "value must be 1..252 characters of base64url");
		return -1;
	}
	if (b64url_decode(value, vl, &raw, &n) != 0) {
		snprintf(err, errlen,
		    "value is not unpadded base64url (RFC 9448 §3)");
		return -1;
	}
	if (tnauth_parse(raw, n, NULL, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "value is not a DER TNAuthList: %s", why);
		free(raw);
		return -1;
	}
	if (der != NULL) {
		*der = raw;
		*len = n;
	} else {
		free(raw);
	}
	return 0;
}

/* See core.h. */
const char *
tnauth_summary(const struct tnauth_list *l, char *buf, size_t buflen)
{
	const struct tnauth_entry *e = &l->e[0];
	char more[32] = "";

	if (l->n == 0) {
		snprintf(buf, buflen, "TNAuthList");
		return buf;
	}
	if (l->n > 1)
		snprintf(more, sizeof(more), " +%zu more", l->n - 1);
	if (e->kind == TNAUTH_SPC)
		snprintf(buf, buflen, "SPC %s%s", e->text, more);
	else if (e->kind == TNAUTH_ONE)
		snprintf(buf, buflen, "TN %s%s", e->text, more);
	else
		snprintf(buf, buflen, "TN %s count %llu%s", e->text,
		    (unsigned long long)e->count, more);
	return buf;
}

/* See core.h. */
int
tnauth_ext_check(const STACK_OF(X509_EXTENSION) *exts, const char *value,
    char *err, size_t errlen)
{
	ASN1_OBJECT *oid = OBJ_txt2obj(TNAUTH_OID, 1);
	const ASN1_OCTET_STRING *os;
	uint8_t *der = NULL;
	size_t len = 0;
	char e[200];
	int i, rc = -1;

	if (oid == NULL ||
	    ident_tnauthlist_check(value, &der, &len, e, sizeof(e)) != 0) {
		snprintf(err, errlen, "TNAuthList: %s",
		    oid == NULL ? "no OID" : e);
		goto out;
	}
	i = exts != NULL ? X509v3_get_ext_by_OBJ(exts, oid, -1) : -1;
	if (i < 0) {
		rc = 0;
		goto out;
	}
	os = X509_EXTENSION_get_data(X509v3_get_ext(exts, i));
	if (X509v3_get_ext_by_OBJ(exts, oid, i) >= 0)
		snprintf(err, errlen, "the TNAuthList extension appears twice");
	else if ((size_t)ASN1_STRING_length(os) != len ||
	    memcmp(ASN1_STRING_get0_data(os), der, len) != 0)
		snprintf(err, errlen,
		    "the TNAuthList extension is not the identifier's DER");
	else
		rc = 1;
out:
	ASN1_OBJECT_free(oid);
	free(der);
	return rc;
}

/* See core.h. */
int
csr_requests_ca(X509_REQ *req)
{
	STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
	BASIC_CONSTRAINTS *bc = NULL;
	int crit = -1, rc = 0;

	if (exts != NULL)
		bc = X509V3_get_d2i(exts, NID_basic_constraints, &crit, NULL);
	if (bc != NULL)
		rc = bc->ca ? 1 : 0;
	else if (crit != -1)
		rc = -1; /* present but not decodable, or present twice */
	BASIC_CONSTRAINTS_free(bc);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return rc;
}
