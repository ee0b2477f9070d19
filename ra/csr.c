/*
 * csr.c - finalize CSR checks: signature, names exactly the order's, only
 * DNS/IP SANs, CN among them, key policy, not the account key.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ra/ra.h"

static int
inet_ntop_wrap(int len, const unsigned char *d, char *buf, size_t buflen)
{
	return inet_ntop(len == 4 ? AF_INET : AF_INET6, d, buf,
		   (socklen_t)buflen) != NULL
	    ? 0
	    : -1;
}

/* The normal form (malloc'd) of value as a name of type "dns", "email" or
 * "ip", or NULL with why in e. */
static char *
normalize(const char *type, const char *value, char *e, size_t elen)
{
	if (strcmp(type, "dns") == 0)
		return ident_dns_normalize(value, 1, e, elen);
	if (strcmp(type, "email") == 0)
		return ident_email_normalize(value, e, elen);
	return ident_ip_normalize(value, NULL, NULL, e, elen);
}

/* Adds "dns:<name>" / "ip:<addr>" to set (a JSON object used as a set). */
static int
add_name(
    json_t *set, const char *type, const char *value, struct problem **prob)
{
	char e[160], *n = normalize(type, value, e, sizeof(e)), *key;

	if (n == NULL) {
		*prob = problem_new(PROB_BAD_CSR,
		    "CSR contains an invalid %s "
		    "name \"%.100s\": %s",
		    type, value, e);
		return -1;
	}
	key = xasprintf("%s:%s", type, n);
	json_object_set_new(set, key, json_true());
	free(key);
	free(n);
	return 0;
}

/*
 * draft-ietf-acme-device-attest §3.2 / §4.2: a PermanentIdentifier or
 * HardwareModuleName otherName adds "<type>:<value>" to set (the value
 * rebuilt from its fields, never normalised); any other otherName is
 * badCSR. 0 or -1.
 */
static int
add_device_name(json_t *set, const GENERAL_NAME *g, struct problem **prob)
{
	const ASN1_TYPE *v = g->d.otherName->value;
	enum ident_type t;
	char oid[64], *val = NULL, *key;
	int n = OBJ_obj2txt(oid, sizeof(oid), g->d.otherName->type_id, 1);

	if (v != NULL && v->type == V_ASN1_SEQUENCE && n > 0 &&
	    (size_t)n < sizeof(oid))
		val = ident_device_from_othername(oid, v->value.sequence->data,
		    v->value.sequence->length, &t);
	/* RFC 9891 §7: a BundleEID (IA5String, percent-encoded form) */
	if (v != NULL && v->type == V_ASN1_IA5STRING && n > 0 &&
	    (size_t)n < sizeof(oid) &&
	    (val = ident_bundle_eid_from_othername(oid,
		 v->value.ia5string->data,
		 (size_t)v->value.ia5string->length)) != NULL)
		t = IDENT_BUNDLE_EID;
	if (val == NULL) {
		*prob = problem_new(PROB_BAD_CSR,
		    "CSR contains an otherName that is not a well-formed "
		    "PermanentIdentifier, HardwareModuleName or BundleEID "
		    "Node ID");
		return -1;
	}
	key = xasprintf("%s:%s", ident_type_name(t), val);
	json_object_set_new(set, key, json_true());
	free(key);
	free(val);
	return 0;
}

/*
 * Adds an IA5String SAN (a dNSName or an rfc822Name, v borrowed) as an
 * identifier of type; an empty value, one over 255 bytes or one with a NUL
 * is a malformed <what> SAN (badCSR). 0 / -1.
 */
static int
add_ia5_name(json_t *set, const char *type, const ASN1_IA5STRING *v,
    const char *what, struct problem **prob)
{
	const unsigned char *d = ASN1_STRING_get0_data(v);
	int l = ASN1_STRING_length(v), rc;
	char *s;

	if (l <= 0 || l > 255 || memchr(d, '\0', (size_t)l) != NULL) {
		*prob = problem_new(
		    PROB_BAD_CSR, "CSR has a malformed %s SAN", what);
		return -1;
	}
	s = xstrndup((const char *)d, (size_t)l);
	rc = add_name(set, type, s, prob);
	free(s);
	return rc;
}

static int
collect_sans(X509_REQ *req, json_t *set, struct problem **prob)
{
	STACK_OF(X509_EXTENSION) *exts = NULL;
	GENERAL_NAMES *gens = NULL;
	int i, rc = -1, idx;
	char ipbuf[64];

	exts = X509_REQ_get_extensions(req);
	if (exts == NULL)
		return 0;
	idx = X509v3_get_ext_by_NID(exts, NID_subject_alt_name, -1);
	if (idx >= 0 &&
	    X509v3_get_ext_by_NID(exts, NID_subject_alt_name, idx) >= 0) {
		*prob = problem_new(PROB_BAD_CSR,
		    "CSR has more than one subjectAltName extension");
		goto out;
	}
	if (idx < 0) {
		rc = 0;
		goto out;
	}
	gens = X509V3_EXT_d2i(X509v3_get_ext(exts, idx));
	if (gens == NULL) {
		*prob = problem_new(PROB_BAD_CSR,
		    "CSR subjectAltName extension cannot be parsed");
		goto out;
	}
	for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		if (g->type == GEN_DNS) {
			if (add_ia5_name(set, "dns", g->d.dNSName, "DNS",
				prob) != 0)
				goto out;
		} else if (g->type == GEN_IPADD) {
			int l = ASN1_STRING_length(g->d.iPAddress);
			const unsigned char *d =
			    ASN1_STRING_get0_data(g->d.iPAddress);
			if ((l != 4 && l != 16) ||
			    inet_ntop_wrap(l, d, ipbuf, sizeof(ipbuf)) != 0) {
				*prob = problem_new(PROB_BAD_CSR,
				    "CSR has a malformed IP address SAN");
				goto out;
			}
			if (add_name(set, "ip", ipbuf, prob) != 0)
				goto out;
		} else if (g->type == GEN_EMAIL) {
			/* RFC 8823 §4: the rfc822Name of an email identifier */
			if (add_ia5_name(set, "email", g->d.rfc822Name,
				"rfc822Name", prob) != 0)
				goto out;
		} else if (g->type == GEN_OTHERNAME) {
			if (add_device_name(set, g, prob) != 0)
				goto out;
		} else {
			*prob = problem_new(PROB_BAD_CSR,
			    "CSR contains a "
			    "subjectAltName that is not a DNS name, an IP "
			    "address or an rfc822Name");
			goto out;
		}
	}
	rc = 0;
out:
	GENERAL_NAMES_free(gens);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return rc;
}

/* The subject CN (at most one) into *cn (malloc'd) or NULL. 0 / -1. */
static int
get_cn(X509_REQ *req, char **cn, struct problem **prob)
{
	X509_NAME *subj = X509_REQ_get_subject_name(req);
	int idx, l;
	ASN1_STRING *d;
	unsigned char *utf8 = NULL;

	*cn = NULL;
	if (subj == NULL)
		return 0;
	idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
	if (idx < 0)
		return 0;
	if (X509_NAME_get_index_by_NID(subj, NID_commonName, idx) >= 0) {
		*prob = problem_new(
		    PROB_BAD_CSR, "CSR has more than one Common Name");
		return -1;
	}
	d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));
	l = ASN1_STRING_to_UTF8(&utf8, d);
	if (l <= 0 || l > 255 || memchr(utf8, '\0', (size_t)l) != NULL) {
		OPENSSL_free(utf8);
		*prob =
		    problem_new(PROB_BAD_CSR, "CSR Common Name is malformed");
		return -1;
	}
	*cn = xstrndup((const char *)utf8, (size_t)l);
	OPENSSL_free(utf8);
	return 0;
}

/* The CSR's Common Name, if any, must name one of its SANs (csr_names:
 * "type:value" keys, same normalisation). 0, or -1 with *prob (badCSR). */
static int
check_cn(X509_REQ *req, const json_t *csr_names, struct problem **prob)
{
	char *cn = NULL, *key = NULL, e[160], *n = NULL;
	int rc = -1;

	if (get_cn(req, &cn, prob) != 0)
		goto out;
	if (cn != NULL) {
		/* The CN must name one of the SANs (same normalisation). */
		const char *t = strchr(cn, '@') != NULL ? "email"
		    : strchr(cn, ':') != NULL ||
			strspn(cn, "0123456789.") == strlen(cn)
		    ? "ip"
		    : "dns";
		if ((n = normalize(t, cn, e, sizeof(e))) == NULL) {
			*prob = problem_new(PROB_BAD_CSR,
			    "CSR Common Name "
			    "\"%.100s\" is not a valid name: %s",
			    cn, e);
			goto out;
		}
		key = xasprintf("%s:%s", t, n);
		if (json_object_get(csr_names, key) == NULL) {
			*prob = problem_new(PROB_BAD_CSR,
			    "CSR Common Name "
			    "\"%.100s\" is not among its subjectAltNames",
			    cn);
			goto out;
		}
	}
	rc = 0;
out:
	free(cn);
	free(key);
	free(n);
	return rc;
}

/* The CSR names (csr_names, borrowed) are exactly the order's identifiers
 * (idents, borrowed). 0, or -1 with *prob (badCSR). */
static int
check_names_match(
    const json_t *csr_names, const json_t *idents, struct problem **prob)
{
	json_t *want = json_object(), *v;
	const char *k;
	size_t i;
	int rc = -1;

	json_array_foreach(idents, i, v)
	{
		char *w = xasprintf("%s:%s",
		    json_string_value(json_object_get(v, "type")),
		    json_string_value(json_object_get(v, "value")));
		json_object_set_new(want, w, json_true());
		free(w);
	}
	json_object_foreach((json_t *)csr_names, k, v)
	{
		if (json_object_get(want, k) == NULL) {
			*prob = problem_new(PROB_BAD_CSR,
			    "CSR names %s, which "
			    "is not an identifier of the order",
			    strchr(k, ':') + 1);
			goto out;
		}
	}
	json_object_foreach(want, k, v)
	{
		/* draft-ietf-acme-device-attest §3.2: "Clients MAY omit
		 * identifiers of types permanent-identifier and
		 * hardware-module in the certificate signing request" */
		if (strncmp(k, "permanent-identifier:", 21) == 0 ||
		    strncmp(k, "hardware-module:", 16) == 0)
			continue;
		/* draft-ietf-acme-rats: a remote-attestation identifier
		 * "does not result in any specific contents to the
		 * certificate Subject or SubjectAltName" */
		if (strncmp(k, "remote-attestation:", 19) == 0)
			continue;
		/* RFC 9448: a TNAuthList is no subjectAltName; the CSR may
		 * carry it as the RFC 8226 extension (check_csr_tnauth) */
		if (strncmp(k, "TNAuthList:", 11) == 0)
			continue;
		if (json_object_get(csr_names, k) == NULL) {
			*prob = problem_new(PROB_BAD_CSR,
			    "CSR does not name "
			    "the order's identifier %s",
			    strchr(k, ':') + 1);
			goto out;
		}
	}
	rc = 0;
out:
	json_decref(want);
	return rc;
}

/* The TNAuthList identifier of idents (borrowed), or NULL. */
static const char *
order_tnauthlist(const json_t *idents)
{
	const json_t *v;
	const char *t;
	size_t i;

	json_array_foreach(idents, i, v)
	{
		t = json_string_value(json_object_get(v, "type"));
		if (t != NULL && strcmp(t, "TNAuthList") == 0)
			return json_string_value(json_object_get(v, "value"));
	}
	return NULL;
}

/*
 * An order for a TNAuthList (RFC 9448): a TNAuthList extension (RFC 8226
 * §9, id-pe 26) the CSR requests must be exactly the identifier's DER (the
 * certificate carries the identifier's); its Common Name is not checked
 * as a host name (the STIR profile names the list itself). 0, or -1 with
 * *prob (badCSR).
 */
static int
check_csr_tnauth(X509_REQ *req, const char *value, struct problem **prob)
{
	STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
	char e[200];
	int rc = tnauth_ext_check(exts, value, e, sizeof(e));

	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	if (rc >= 0)
		return 0;
	*prob = problem_new(PROB_BAD_CSR,
	    "the CSR's TNAuthList extension is not the order's TNAuthList "
	    "identifier (RFC 9448): %s",
	    e);
	return -1;
}

/* See ra.h. */
int
ra_csr_check(const uint8_t *der, size_t len, const json_t *idents,
    const struct ra_key_policy *kp, EVP_PKEY *account_key, EVP_PKEY **pkey_out,
    struct problem **prob)
{
	X509_REQ *req = NULL;
	EVP_PKEY *pkey = NULL;
	json_t *csr_names = json_object();
	const unsigned char *p = der;
	int rc = -1;

	if (pkey_out != NULL)
		*pkey_out = NULL;
	if (len == 0 || len > 65536 ||
	    (req = d2i_X509_REQ(NULL, &p, (long)len)) == NULL ||
	    p != der + len) {
		*prob = problem_new(PROB_BAD_CSR,
		    "CSR is not a DER-encoded "
		    "PKCS#10 request");
		goto out;
	}
	pkey = X509_REQ_get_pubkey(req);
	if (pkey == NULL) {
		*prob = problem_new(PROB_BAD_CSR,
		    "CSR public key cannot be "
		    "parsed");
		goto out;
	}
	if (X509_REQ_verify(req, pkey) != 1) {
		*prob = problem_new(PROB_BAD_CSR, "CSR signature is invalid");
		goto out;
	}
	/* The certificate carries the key exactly as the CSR encodes it, and
	 * the key hash is over the canonical encoding: only a canonical one
	 * may pass (RFC 3279 NULL parameters for RSA; RFC 5480 named curve
	 * and uncompressed point for EC). */
	if (!key_spki_is_canonical(X509_REQ_get_X509_PUBKEY(req))) {
		*prob = problem_new(PROB_BAD_CSR,
		    "CSR public key is not in its canonical encoding (RSA: "
		    "NULL algorithm parameters, RFC 3279; EC: a named curve "
		    "and an uncompressed point, RFC 5480)");
		goto out;
	}
	if (collect_sans(req, csr_names, prob) != 0)
		goto out;
	if (order_tnauthlist(idents) != NULL
		? check_csr_tnauth(req, order_tnauthlist(idents), prob) != 0
		: check_cn(req, csr_names, prob) != 0)
		goto out;
	if (check_names_match(csr_names, idents, prob) != 0)
		goto out;
	if (ra_key_check(kp, pkey, prob) != 0)
		goto out;
	if (account_key != NULL && EVP_PKEY_eq(pkey, account_key) == 1) {
		*prob = problem_new(PROB_BAD_CSR,
		    "CSR must not use the "
		    "account key");
		goto out;
	}
	if (pkey_out != NULL) {
		*pkey_out = pkey;
		pkey = NULL;
	}
	rc = 0;
out:
	X509_REQ_free(req);
	EVP_PKEY_free(pkey);
	json_decref(csr_names);
	return rc;
}
