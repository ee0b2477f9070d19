/*
 * onion.c - onion-csr-01 (RFC 9799 §3.2): the client answers the challenge
 * with a CSR signed by the .onion service's Ed25519 key (the key encoded
 * in the v3 address) carrying the CA/Browser Forum nonce attributes
 * (BR Appendix B.2.b): caSigningNonce (2.23.140.41) = the challenge's
 * nonce bytes, applicantSigningNonce (2.23.140.42) = at least 64 bits of
 * the client's. No network: the validation channel is ACME itself (§8.3).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "va/va_int.h"

/* A CSR larger than this is not a CSR with one Ed25519 key. */
#define ONION_CSR_MAX 16384
/* §3.2: "It MUST contain at least 64 bits of entropy." */
#define ONION_NONCE_MIN 8

/*
 * The value of the single-valued OCTET STRING attribute oid of req:
 * *val borrowed from req. 0, or -1 with why (absent, repeated, several
 * values, another type).
 */
static int
octet_attr(X509_REQ *req, const char *oid, const char *name,
    const ASN1_OCTET_STRING **val, char *why, size_t whylen)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	X509_ATTRIBUTE *a;
	ASN1_TYPE *t;
	int idx, rc = -1;

	if (obj == NULL) {
		snprintf(why, whylen, "cannot build OID %s", oid);
		return -1;
	}
	idx = X509_REQ_get_attr_by_OBJ(req, obj, -1);
	if (idx < 0) {
		snprintf(why, whylen, "the CSR has no %s attribute (%s)", name,
		    oid);
		goto out;
	}
	if (X509_REQ_get_attr_by_OBJ(req, obj, idx) >= 0) {
		snprintf(why, whylen, "the CSR has more than one %s attribute",
		    name);
		goto out;
	}
	a = X509_REQ_get_attr(req, idx);
	/* "SINGLE VALUE TRUE", "WITH SYNTAX OCTET STRING" */
	if (X509_ATTRIBUTE_count(a) != 1 ||
	    (t = X509_ATTRIBUTE_get0_type(a, 0)) == NULL ||
	    t->type != V_ASN1_OCTET_STRING) {
		snprintf(why, whylen,
		    "the %s attribute must hold one OCTET STRING (RFC 9799 "
		    "§3.2)",
		    name);
		goto out;
	}
	*val = t->value.octet_string;
	rc = 0;
out:
	ASN1_OBJECT_free(obj);
	return rc;
}

/*
 * Subject alternative names of the CSR, if it has any, must all be DNS
 * names at or below base (the "<address>.onion" of the name validated).
 * 0, or -1 with why.
 */
static int
san_ok(X509_REQ *req, const char *base, char *why, size_t whylen)
{
	STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
	GENERAL_NAMES *gens = NULL;
	const GENERAL_NAME *g;
	const char *s;
	size_t bl = strlen(base), sl;
	int i, rc = -1, crit = -1;

	if (exts == NULL)
		return 0;
	gens = X509V3_get_d2i(exts, NID_subject_alt_name, &crit, NULL);
	if (gens == NULL) {
		rc = crit == -1 ? 0 : -1; /* -1: absent; else unparsable */
		if (rc != 0)
			snprintf(why, whylen,
			    "the CSR's subjectAltName cannot be parsed");
		goto out;
	}
	for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		g = sk_GENERAL_NAME_value(gens, i);
		if (g->type != GEN_DNS) {
			snprintf(why, whylen,
			    "the CSR names something other than a DNS name");
			goto out;
		}
		s = (const char *)ASN1_STRING_get0_data(g->d.dNSName);
		sl = (size_t)ASN1_STRING_length(g->d.dNSName);
		if (!(sl == bl && strncasecmp(s, base, bl) == 0) &&
		    !(sl > bl + 1 && s[sl - bl - 1] == '.' &&
			strncasecmp(s + sl - bl, base, bl) == 0)) {
			snprintf(why, whylen,
			    "the CSR names %.*s, which is not %s or below it",
			    (int)(sl > 100 ? 100 : sl), s, base);
			goto out;
		}
	}
	rc = 0;
out:
	GENERAL_NAMES_free(gens);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return rc;
}

/* Step 1: csr_b64 is the base64url DER of a PKCS#10 request. NULL and
 * *req (the caller frees it), or the problem. */
static struct problem *
onion_csr_parse(const char *csr_b64, X509_REQ **req)
{
	uint8_t *der = NULL;
	const uint8_t *p;
	size_t derlen = 0;

	/* 1. "The CSR is a well formatted PKCS#10 request." */
	if (csr_b64 == NULL || strlen(csr_b64) > ONION_CSR_MAX * 4 / 3 + 4 ||
	    b64url_decode(csr_b64, strlen(csr_b64), &der, &derlen) != 0)
		return problem_new(PROB_BAD_CSR,
		    "\"csr\" must be the base64url DER of a PKCS#10 request "
		    "(RFC 9799 §3.2)");
	p = der;
	*req = d2i_X509_REQ(NULL, &p, (long)derlen);
	if (*req == NULL || p != der + derlen) {
		free(der);
		return problem_new(PROB_BAD_CSR,
		    "\"csr\" is not a DER PKCS#10 request (RFC 2986)");
	}
	free(der);
	return NULL;
}

/* Steps 2 and 3: req's key is the Ed25519 key pk of the service base and
 * signed it. NULL or the problem. */
static struct problem *
onion_csr_key_check(X509_REQ *req, const uint8_t pk[32], const char *base)
{
	uint8_t got[32];
	size_t gotlen = sizeof(got);
	EVP_PKEY *onion_key, *csr_key = X509_REQ_get0_pubkey(req);
	int ok;

	/* 2. "The public key in the CSR corresponds to the ".onion"
	 * Special-Use Domain Name being validated." */
	if (csr_key == NULL || EVP_PKEY_get_id(csr_key) != EVP_PKEY_ED25519 ||
	    EVP_PKEY_get_raw_public_key(csr_key, got, &gotlen) != 1 ||
	    gotlen != 32 || memcmp(got, pk, 32) != 0)
		return problem_new(PROB_INCORRECT_RESPONSE,
		    "The CSR's public key is not the Ed25519 key of %s "
		    "(RFC 9799 §3.2 step 2)",
		    base);
	/* 3. "The signature over the CSR validates with the ".onion"
	 * Special-Use Domain Name public key." */
	onion_key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pk, 32);
	ok = onion_key != NULL && X509_REQ_verify(req, onion_key) == 1;
	EVP_PKEY_free(onion_key);
	if (!ok)
		return problem_new(PROB_INCORRECT_RESPONSE,
		    "The CSR's signature does not verify with the key of %s "
		    "(RFC 9799 §3.2 step 3)",
		    base);
	return NULL;
}

/* Steps 4 and 5: the CA's nonce (nonce, noncelen) and an applicant nonce
 * of its own are in req's attributes. NULL or the problem. */
static struct problem *
onion_csr_nonce_check(X509_REQ *req, const uint8_t *nonce, size_t noncelen)
{
	const ASN1_OCTET_STRING *ca_n = NULL, *ap_n = NULL;
	char why[240];
	size_t i;
	int same = 1;

	/* 4. "The caSigningNonce attribute is present and its contents
	 * matches the nonce provided to the client." (raw bytes) */
	if (octet_attr(req, "2.23.140.41", "caSigningNonce", &ca_n, why,
		sizeof(why)) != 0)
		return problem_new(PROB_INCORRECT_RESPONSE, "%s", why);
	if ((size_t)ASN1_STRING_length(ca_n) != noncelen ||
	    memcmp(ASN1_STRING_get0_data(ca_n), nonce, noncelen) != 0)
		return problem_new(PROB_INCORRECT_RESPONSE,
		    "The caSigningNonce attribute is not this challenge's "
		    "nonce (its raw bytes, not the base64 text; RFC 9799 "
		    "§3.2 step 4)");
	/* 5. "The applicantSigningNonce attribute is present and contains
	 * at least 64 bits of entropy." Entropy cannot be measured; at least
	 * 8 bytes that are not one repeated byte and not the CA's nonce. */
	if (octet_attr(req, "2.23.140.42", "applicantSigningNonce", &ap_n, why,
		sizeof(why)) != 0)
		return problem_new(PROB_INCORRECT_RESPONSE, "%s", why);
	for (i = 1; i < (size_t)ASN1_STRING_length(ap_n); i++)
		if (ASN1_STRING_get0_data(ap_n)[i] !=
		    ASN1_STRING_get0_data(ap_n)[0])
			same = 0;
	if (ASN1_STRING_length(ap_n) < ONION_NONCE_MIN || same ||
	    ASN1_STRING_cmp(ap_n, ca_n) == 0)
		return problem_new(PROB_INCORRECT_RESPONSE,
		    "The applicantSigningNonce must be at least %d random "
		    "bytes of the client's own (RFC 9799 §3.2 step 5: at "
		    "least 64 bits of entropy)",
		    ONION_NONCE_MIN);
	return NULL;
}

/* See va_int.h. */
struct problem *
va_onion_csr_check(const char *name, const char *token, const char *csr_b64)
{
	uint8_t pk[32], *nonce = NULL;
	size_t noncelen = 0;
	const char *base = NULL;
	X509_REQ *req = NULL;
	struct problem *prob = NULL;
	char why[240];

	if (ident_onion_parse(name, pk, &base, why, sizeof(why)) != 0) {
		prob = problem_new(PROB_MALFORMED, "%s", why);
		goto out;
	}
	if (token == NULL ||
	    b64url_decode(token, strlen(token), &nonce, &noncelen) != 0) {
		prob = problem_new(PROB_MALFORMED, "bad challenge token");
		goto out;
	}
	if ((prob = onion_csr_parse(csr_b64, &req)) != NULL ||
	    (prob = onion_csr_key_check(req, pk, base)) != NULL ||
	    (prob = onion_csr_nonce_check(req, nonce, noncelen)) != NULL)
		goto out;
	/* The subject is not looked at ("CAs MUST NOT validate its
	 * contents"); names it carries must be of this service. */
	if (san_ok(req, base, why, sizeof(why)) != 0)
		prob = problem_new(PROB_INCORRECT_RESPONSE, "%s", why);
out:
	X509_REQ_free(req);
	free(nonce);
	return prob;
}

void
va_onioncsr01_start(struct va_job *j)
{
	struct problem *p;

	json_array_append_new(j->record,
	    json_pack(
		"{s:s,s:s}", "hostname", j->ident, "method", "onion-csr-01"));
	p = va_onion_csr_check(j->ident, j->token,
	    json_string_value(json_object_get(j->payload, "csr")));
	if (p != NULL) {
		va_job_finish(j, p);
		return;
	}
	va_job_validated(j);
}

/*
 * One line of an in-band CAA record set, "caa" SP flags SP tag SP value
 * (RFC 9799 §6; value as in RFC 8659 §4.1.1, quoted or not) into rr
 * (strings malloc'd). 0, or -1 when the line is not of that form.
 */
static int
caa_line(const char *line, size_t len, struct va_caa_rr *rr)
{
	char *buf = xstrndup(line, len), *s = buf, *end, *tag, *val, *o;
	long flags;
	int rc = -1;

	while (*s == ' ' || *s == '\t')
		s++;
	if (strncasecmp(s, "caa", 3) != 0 || (s[3] != ' ' && s[3] != '\t'))
		goto out;
	s += 4;
	while (*s == ' ' || *s == '\t')
		s++;
	flags = strtol(s, &end, 10);
	if (end == s || flags < 0 || flags > 255 || (*end != ' ' && *end != '\t'))
		goto out;
	s = end;
	while (*s == ' ' || *s == '\t')
		s++;
	tag = s;
	while ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
	    (*s >= '0' && *s <= '9'))
		s++;
	if (s == tag || (*s != ' ' && *s != '\t'))
		goto out;
	*s++ = '\0';
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '"') {
		/* a quoted character-string: \" and \\ escapes */
		val = o = ++s;
		for (; *s != '\0' && *s != '"'; s++) {
			if (*s == '\\' && s[1] != '\0')
				s++;
			*o++ = *s;
		}
		if (*s != '"')
			goto out;
		s++;
		while (*s == ' ' || *s == '\t' || *s == '\r')
			s++;
		if (*s != '\0')
			goto out;
		*o = '\0';
	} else {
		val = s;
		s += strlen(s);
		while (s > val && (s[-1] == ' ' || s[-1] == '\t' || s[-1] == '\r'))
			*--s = '\0';
	}
	rr->flags = (int)flags;
	rr->tag = xstrdup(tag);
	rr->value = xstrdup(val);
	rc = 0;
out:
	free(buf);
	return rc;
}

/* See va_int.h. */
int
va_onion_caa_eval(const struct va_config *cfg, const char *name,
    const char *caa, int wildcard, const char *account_uri,
    const char *method, struct problem **prob)
{
	struct va_caa_rr *rrs = NULL;
	size_t n = 0, i, cap = 0, len;
	const char *line = caa, *nl;
	char why[512];
	int rc = 0;

	*prob = NULL;
	if (caa == NULL)
		return 1;
	while (*line != '\0') {
		nl = strchr(line, '\n');
		len = nl ? (size_t)(nl - line) : strlen(line);
		if (strspn(line, " \t\r") < len) {
			if (n == cap) {
				cap = cap ? cap * 2 : 4;
				if (cap > 256) {
					*prob = problem_new(PROB_CAA,
					    "The in-band CAA record set of %s "
					    "has too many records",
					    name);
					goto out;
				}
				rrs = xrealloc(rrs, cap * sizeof(*rrs));
			}
			if (caa_line(line, len, &rrs[n]) != 0) {
				*prob = problem_new(PROB_CAA,
				    "The in-band CAA record set of %s has a "
				    "line that is not \"caa <flags> <tag> "
				    "<value>\" (RFC 9799 §6): %.*s",
				    name, (int)(len > 120 ? 120 : len), line);
				goto out;
			}
			n++;
		}
		line += len;
		if (*line == '\n')
			line++;
	}
	if (n == 0) {
		rc = 1; /* an empty set: no restriction (RFC 8659 §4) */
		goto out;
	}
	if (va_caa_evaluate(rrs, n, wildcard, cfg->caa_identities,
		cfg->n_caa_identities, account_uri, method, why, sizeof(why))) {
		rc = 1;
		goto out;
	}
	*prob = problem_new(PROB_CAA,
	    "The in-band CAA record set of %s prevents issuance (RFC 9799 "
	    "§6.4): %s",
	    name, why);
out:
	for (i = 0; i < n; i++) {
		free(rrs[i].tag);
		free(rrs[i].value);
	}
	free(rrs);
	return rc;
}

/* See va.h. */
int
va_check_onion_caa(struct va *va, const char *name, const char *caa,
    int wildcard, const char *account_uri, const char *method,
    struct problem **prob)
{
	return va_onion_caa_eval(
	    va->cfg, name, caa, wildcard, account_uri, method, prob);
}
