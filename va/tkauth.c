/*
 * tkauth.c - tkauth-01 (RFC 9447) with the "atc" token type for TNAuthList
 * identifiers (RFC 9448). The client answers the challenge with
 * {"atc": "<JWT>"} (RFC 9448 §5.5), a JWT a Token Authority signed. The
 * VA checks it as RFC 9448 §6 lists ("the ACME server MUST perform the
 * following steps"):
 *
 *  - the header: an asymmetric "alg" (RFC 9448 §5: the protected header
 *    "MUST comply with "Request Authentication" (Section 6.2 of RFC
 *    8555)"), an "x5c" chain whose leaf chains to the configured Token
 *    Authority roots (va.json tkauth.roots; nothing is built in). "x5u"
 *    alone is refused: Anvil does not fetch it (docs/acme.md);
 *  - the signature, with the leaf's key;
 *  - the claims: "exp" (not passed), "jti" (RFC 9447 §4: "the JWT MUST
 *    contain a "jti" element and an "exp" claim"), "nbf" when present;
 *  - "atc": "tktype" "TNAuthList", "tkvalue" the same DER as the
 *    identifier, "fingerprint" that of the account key, "ca" false unless
 *    tkauth.allow_ca.
 *
 * Failures of authority (untrusted signer, bad signature, expired, another
 * account, another TNAuthList, ca without policy) are "unauthorized";
 * a response that is not a JWT of this shape is "malformed". The detail
 * always names the step that failed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "jose/jose.h"
#include "va/va_int.h"

/* Bounds on hostile input. */
#define TK_MAX_JWT 16384
#define TK_MAX_X5C 5

struct va_tkauth {
	X509_STORE *roots; /* tkauth.roots; NULL: every token refused */
	int allow_ca;      /* tkauth.allow_ca */
};

/* See va_int.h. */
struct va_tkauth *
va_tkauth_new(const struct va_config *cfg, char *err, size_t errlen)
{
	struct va_tkauth *t = xcalloc(1, sizeof(*t));

	t->allow_ca = cfg->tkauth_allow_ca;
	if (cfg->tkauth_roots == NULL)
		return t;
	t->roots = X509_STORE_new();
	if (t->roots == NULL ||
	    X509_STORE_load_file(t->roots, cfg->tkauth_roots) != 1 ||
	    sk_X509_OBJECT_num(X509_STORE_get0_objects(t->roots)) == 0) {
		snprintf(err, errlen,
		    "tkauth.roots: cannot load certificates from %s",
		    cfg->tkauth_roots);
		va_tkauth_free(t);
		return NULL;
	}
	return t;
}

/* See va_int.h. */
void
va_tkauth_free(struct va_tkauth *t)
{
	if (t == NULL)
		return;
	X509_STORE_free(t->roots);
	free(t);
}

/* What a check found wrong: the problem type and the reason. */
struct tk_fail {
	enum prob_type type;
	char why[256];
};

static int
tk_bad(struct tk_fail *f, enum prob_type t, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fills f; returns -1. */
static int
tk_bad(struct tk_fail *f, enum prob_type t, const char *fmt, ...)
{
	va_list ap;

	f->type = t;
	va_start(ap, fmt);
	vsnprintf(f->why, sizeof(f->why), fmt, ap);
	va_end(ap);
	return -1;
}

/* A strict JSON object from base64url part [s, s + n). NULL if not. */
static json_t *
part_json(const char *s, size_t n)
{
	uint8_t *raw = NULL;
	size_t len = 0;
	json_t *j = NULL;

	if (b64url_decode(s, n, &raw, &len) == 0)
		j = json_loadb((const char *)raw, len, JSON_REJECT_DUPLICATES,
		    NULL);
	free(raw);
	if (j != NULL && !json_is_object(j)) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

/* The parts of a compact JWS (RFC 7515 §7.1). */
struct tk_jwt {
	json_t *hdr;
	json_t *claims;
	struct jws sig; /* alg, signing_input, sig: for jws_verify */
};

static void
tk_jwt_clear(struct tk_jwt *t)
{
	json_decref(t->hdr);
	json_decref(t->claims);
	free(t->sig.signing_input);
	free(t->sig.sig);
	memset(t, 0, sizeof(*t));
}

/* Splits and decodes token (borrowed). 0, or -1 with f. */
static int
tk_jwt_parse(const char *token, struct tk_jwt *t, struct tk_fail *f)
{
	const char *d1, *d2;
	const char *alg;
	size_t n = strlen(token);
	enum jose_alg a;

	memset(t, 0, sizeof(*t));
	if (n > TK_MAX_JWT)
		return tk_bad(f, PROB_MALFORMED, "the token is over %d bytes",
		    TK_MAX_JWT);
	d1 = strchr(token, '.');
	d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	if (d1 == NULL || d2 == NULL || strchr(d2 + 1, '.') != NULL)
		return tk_bad(f, PROB_MALFORMED,
		    "the token is not a JWS in compact serialization "
		    "(RFC 7515 §7.1: three base64url parts)");
	t->hdr = part_json(token, (size_t)(d1 - token));
	t->claims = part_json(d1 + 1, (size_t)(d2 - d1 - 1));
	if (t->hdr == NULL || t->claims == NULL)
		return tk_bad(f, PROB_MALFORMED,
		    "the token's %s is not a base64url JSON object",
		    t->hdr == NULL ? "header" : "payload");
	if (b64url_decode(d2 + 1, strlen(d2 + 1), &t->sig.sig,
		&t->sig.sig_len) != 0)
		return tk_bad(f, PROB_MALFORMED,
		    "the token's signature is not base64url");
	alg = json_string_value(json_object_get(t->hdr, "alg"));
	/* RFC 8555 §6.2: "MUST NOT be "none" or a Message Authentication
	 * Code (MAC)-based algorithm"; jose knows asymmetric ones only */
	if (alg == NULL || jose_alg_parse(alg, &a) != 0)
		return tk_bad(f, PROB_BAD_SIGNATURE_ALGORITHM,
		    "the token's \"alg\" is %s%.16s%s (RFC 9448 §5: an "
		    "asymmetric JWS algorithm, RFC 8555 §6.2)",
		    alg ? "\"" : "", alg ? alg : "missing", alg ? "\"" : "");
	if (json_object_get(t->hdr, "crit") != NULL)
		return tk_bad(f, PROB_MALFORMED,
		    "the token's header has \"crit\", which Anvil does not "
		    "understand (RFC 7515 §4.1.11)");
	t->sig.alg = a;
	t->sig.signing_input_len = (size_t)(d2 - token);
	t->sig.signing_input = xmalloc(t->sig.signing_input_len + 1);
	memcpy(t->sig.signing_input, token, t->sig.signing_input_len);
	t->sig.signing_input[t->sig.signing_input_len] = '\0';
	return 0;
}

/*
 * RFC 9448 §6 steps 2-3: the leaf of the header's "x5c" (RFC 7515 §4.1.6:
 * standard base64 DER, the signer first) chains to a configured Token
 * Authority root. New reference, or NULL with f.
 */
static X509 *
tk_signer(const struct va_tkauth *ta, const json_t *hdr, struct tk_fail *f)
{
	const json_t *x5c = json_object_get(hdr, "x5c"), *e;
	STACK_OF(X509) *rest = NULL;
	X509 *leaf = NULL, *x;
	const char *why;
	uint8_t *der = NULL;
	size_t i, len;
	int ok = 0, trusted;

	if (!json_is_array(x5c)) {
		tk_bad(f, PROB_UNAUTHORIZED,
		    json_object_get(hdr, "x5u") != NULL
			? "the token names its signer by \"x5u\" only; Anvil "
			  "needs the chain in \"x5c\" (it does not fetch x5u)"
			: "the token's header has no \"x5c\" certificate "
			  "chain (RFC 9448 §6)");
		return NULL;
	}
	if (json_array_size(x5c) == 0 || json_array_size(x5c) > TK_MAX_X5C) {
		tk_bad(f, PROB_MALFORMED, "\"x5c\" must hold 1..%d certificates",
		    TK_MAX_X5C);
		return NULL;
	}
	if (ta->roots == NULL) {
		tk_bad(f, PROB_UNAUTHORIZED,
		    "no Token Authority is trusted (va.json tkauth.roots)");
		return NULL;
	}
	rest = sk_X509_new_null();
	json_array_foreach(x5c, i, e)
	{
		x = NULL;
		if (json_is_string(e) &&
		    json_string_length(e) < TK_MAX_JWT &&
		    va_b64_decode(json_string_value(e), &der, &len) == 0)
			x = va_der_cert(der, len, TK_MAX_JWT);
		free(der);
		der = NULL;
		if (x == NULL) {
			tk_bad(f, PROB_MALFORMED,
			    "x5c[%zu] is not a base64 DER certificate", i);
			goto out;
		}
		if (i == 0)
			leaf = x;
		else if (rest == NULL || !sk_X509_push(rest, x)) {
			X509_free(x);
			tk_bad(f, PROB_SERVER_INTERNAL, "out of memory");
			goto out;
		}
	}
	if ((trusted = va_chain_verify(ta->roots, leaf, rest, &why)) < 0) {
		tk_bad(f, PROB_SERVER_INTERNAL,
		    "cannot set up chain verification");
		goto out;
	}
	if (trusted == 0) {
		tk_bad(f, PROB_UNAUTHORIZED,
		    "the token's signer does not chain to a trusted Token "
		    "Authority root: %s",
		    why);
		goto out;
	}
	ok = 1;
out:
	sk_X509_pop_free(rest, X509_free);
	if (!ok) {
		X509_free(leaf);
		leaf = NULL;
	}
	return leaf;
}

/* RFC 9448 §6 step 4: the signature with signer's key. 0, or -1 with f. */
static int
tk_check_sig(const struct tk_jwt *t, X509 *signer, struct tk_fail *f)
{
	struct jose_policy pol;
	struct problem *p = NULL;
	struct jwk *key = NULL;
	json_t *jk = jwk_from_pkey(X509_get0_pubkey(signer));
	int rc = -1;

	jose_policy_permissive(&pol);
	if (jk == NULL || jwk_parse(jk, &pol, &key, &p) != 0) {
		tk_bad(f, PROB_UNAUTHORIZED,
		    "the signer's key is of a type Anvil cannot verify%s%s",
		    p && p->detail ? ": " : "", p && p->detail ? p->detail : "");
		goto out;
	}
	if (jws_verify(&t->sig, key, &p) != 0) {
		tk_bad(f, p->type == PROB_BAD_SIGNATURE_ALGORITHM
			? PROB_BAD_SIGNATURE_ALGORITHM
			: PROB_UNAUTHORIZED,
		    "the token's signature does not verify with the signer's "
		    "key: %s",
		    p->detail ? p->detail : "invalid");
		goto out;
	}
	rc = 0;
out:
	problem_free(p);
	jwk_free(key);
	json_decref(jk);
	return rc;
}

/*
 * RFC 9448 §5: "exp" and "jti" MUST be included; §6 step 7 "verify that
 * the remaining claims are valid (e.g., verify that token has not
 * expired)": "nbf", when there, must have passed. 0, or -1 with f.
 */
static int
tk_check_times(const json_t *c, struct tk_fail *f)
{
	const json_t *exp = json_object_get(c, "exp");
	const json_t *nbf = json_object_get(c, "nbf");
	const json_t *jti = json_object_get(c, "jti");
	double now = (double)time_now_ms() / 1000.0;

	if (!json_is_number(exp))
		return tk_bad(f, PROB_MALFORMED,
		    "the token has no numeric \"exp\" claim (RFC 9448 §5: "
		    "it \"MUST be included\")");
	if (!json_is_string(jti) || json_string_length(jti) == 0)
		return tk_bad(f, PROB_MALFORMED,
		    "the token has no \"jti\" claim (RFC 9447 §4: the JWT "
		    "\"MUST contain a \"jti\" element\")");
	if (json_number_value(exp) <= now)
		return tk_bad(f, PROB_UNAUTHORIZED,
		    "the token expired at %.0f (now %.0f; RFC 9448 §6 step 7)",
		    json_number_value(exp), now);
	if (nbf != NULL &&
	    (!json_is_number(nbf) || json_number_value(nbf) > now))
		return tk_bad(f, PROB_UNAUTHORIZED,
		    "the token's \"nbf\" is not a past NumericDate");
	return 0;
}

/*
 * The account key's fingerprint as RFC 9448 §5 shows it: "SHA256 " and
 * the SHA-256 JWK thumbprint (RFC 7638, the one in the key authorization
 * after the token) as colon-separated uppercase hex. Into buf (at least
 * 104 bytes). 0, or -1 when keyauth holds no thumbprint.
 */
static int
tk_fingerprint(const char *keyauth, char *buf, size_t buflen)
{
	const char *dot = keyauth ? strrchr(keyauth, '.') : NULL;
	uint8_t *d = NULL;
	size_t n = 0, i, o;

	if (dot == NULL || b64url_decode(dot + 1, strlen(dot + 1), &d, &n) != 0 ||
	    n != 32 || buflen < 7 + 32 * 3) {
		free(d);
		return -1;
	}
	o = (size_t)snprintf(buf, buflen, "SHA256 ");
	for (i = 0; i < n; i++)
		o += (size_t)snprintf(buf + o, buflen - o, "%s%02X",
		    i ? ":" : "", d[i]);
	free(d);
	return 0;
}

/* Decodes a "tkvalue": base64url, '=' padding tolerated. 0 or -1. */
static int
tk_value_der(const char *v, uint8_t **der, size_t *len)
{
	size_t n = strlen(v);

	while (n > 0 && v[n - 1] == '=')
		n--;
	return b64url_decode(v, n, der, len);
}

/*
 * RFC 9448 §6 steps 1, 5, 6, 8 and 9 on the "atc" claim: tktype
 * "TNAuthList", tkvalue the identifier's DER, fingerprint the account's,
 * ca allowed. 0, or -1 with f.
 */
static int
tk_check_atc(const struct va_job *j, const json_t *atc, int allow_ca,
    struct tk_fail *f)
{
	const char *tktype = json_string_value(json_object_get(atc, "tktype"));
	const char *tkvalue = json_string_value(json_object_get(atc, "tkvalue"));
	const char *fp = json_string_value(json_object_get(atc, "fingerprint"));
	const json_t *ca = json_object_get(atc, "ca");
	uint8_t *want = NULL, *have = NULL;
	size_t wlen = 0, hlen = 0;
	char mine[128], e[200];
	int rc = -1;

	/* step 1: "a well-formed JSON object containing the mandatory key
	 * values" */
	if (!json_is_object(atc) || tktype == NULL || tkvalue == NULL ||
	    fp == NULL || (ca != NULL && !json_is_boolean(ca))) {
		tk_bad(f, PROB_MALFORMED,
		    "the token's \"atc\" claim is not an object with strings "
		    "\"tktype\", \"tkvalue\", \"fingerprint\" and an optional "
		    "boolean \"ca\" (RFC 9448 §5)");
		goto out;
	}
	/* step 5 */
	if (strcmp(tktype, "TNAuthList") != 0) {
		tk_bad(f, PROB_UNAUTHORIZED,
		    "atc.tktype is \"%.32s\", not \"TNAuthList\" (RFC 9448 §6 "
		    "step 5)",
		    tktype);
		goto out;
	}
	/* step 6: "the equivalent base64url-encoded TNAuthList ... as the
	 * identifier": compared as DER, so padding does not matter */
	if (ident_tnauthlist_check(j->ident, &want, &wlen, e, sizeof(e)) != 0) {
		tk_bad(f, PROB_MALFORMED, "the identifier: %s", e);
		goto out;
	}
	if (tk_value_der(tkvalue, &have, &hlen) != 0 || hlen != wlen ||
	    memcmp(have, want, wlen) != 0) {
		tk_bad(f, PROB_UNAUTHORIZED,
		    "atc.tkvalue is not the TNAuthList of this authorization "
		    "(RFC 9448 §6 step 6)");
		goto out;
	}
	/* step 8: "the "atc" claim "fingerprint" is valid and matches the
	 * account key of the client making the request" */
	if (tk_fingerprint(j->keyauth, mine, sizeof(mine)) != 0) {
		tk_bad(f, PROB_SERVER_INTERNAL,
		    "no account key thumbprint for this challenge");
		goto out;
	}
	if (strcasecmp(fp, mine) != 0) {
		tk_bad(f, PROB_UNAUTHORIZED,
		    "atc.fingerprint \"%.110s\" is not this account key's "
		    "(%s; RFC 9448 §6 step 8)",
		    fp, mine);
		goto out;
	}
	/* step 9 and §5: "ca" true allows a CA certificate for delegation;
	 * the operator decides whether those tokens are accepted */
	if (json_is_true(ca) && !allow_ca) {
		tk_bad(f, PROB_UNAUTHORIZED,
		    "the token allows a CA certificate (\"ca\": true) and this "
		    "CA's policy does not issue them (va.json "
		    "tkauth.allow_ca)");
		goto out;
	}
	rc = 0;
out:
	free(want);
	free(have);
	return rc;
}

/* See va_int.h. */
void
va_tkauth01_start(struct va_job *j)
{
	const char *tok = json_string_value(json_object_get(j->payload, "atc"));
	const json_t *atc;
	struct tk_jwt t;
	struct tk_fail f;
	X509 *signer = NULL;
	char subj[256] = "";

	memset(&t, 0, sizeof(t));
	/* RFC 9448 §5.5: the client POSTs {"atc": "<token>"} */
	if (tok == NULL) {
		tk_bad(&f, PROB_MALFORMED,
		    "the response has no \"atc\" string (RFC 9448 §5.5)");
		goto fail;
	}
	if (tk_jwt_parse(tok, &t, &f) != 0 ||
	    (signer = tk_signer(j->va->tkauth, t.hdr, &f)) == NULL ||
	    tk_check_sig(&t, signer, &f) != 0 ||
	    tk_check_times(t.claims, &f) != 0)
		goto fail;
	atc = json_object_get(t.claims, "atc");
	if (tk_check_atc(j, atc, j->va->tkauth->allow_ca, &f) != 0)
		goto fail;
	X509_NAME_oneline(X509_get_subject_name(signer), subj, sizeof(subj));
	/* the record keeps what identifies this token: RFC 9447 §4, the jti
	 * "provides a convenient way to reliably track when the same "atc"
	 * Authority Token is being used for multiple challenges" */
	json_array_append_new(j->record,
	    json_pack("{s:s,s:s,s:O,s:O,s:b}", "token_authority", subj, "jti",
		json_string_value(json_object_get(t.claims, "jti")), "exp",
		json_object_get(t.claims, "exp"), "iss",
		json_object_get(t.claims, "iss") ? json_object_get(t.claims,
						       "iss")
						 : json_null(),
		"ca", json_is_true(json_object_get(atc, "ca"))));
	X509_free(signer);
	tk_jwt_clear(&t);
	va_job_finish(j, NULL);
	return;
fail:
	X509_free(signer);
	tk_jwt_clear(&t);
	va_job_finish(j, problem_new(f.type, "tkauth-01: %s", f.why));
}
