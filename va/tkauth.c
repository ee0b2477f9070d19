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
 *    Authority roots (va.json tkauth.roots; nothing is built in), or,
 *    without "x5c", an "x5u" (RFC 7515 §4.1.5) under a tkauth.x5u_allow
 *    prefix: va_validate fetches its PEM chain off the loop thread
 *    (va_tkauth_x5u_fetch) and the chain is verified exactly as x5c's;
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
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "jose/jose.h"
#include "va/va_int.h"

/* Bounds on hostile input. */
#define TK_MAX_JWT 16384
#define TK_MAX_X5C 5
#define TK_MAX_X5U_BODY 65536 /* bytes of the x5u resource */
#define TK_MAX_X5U_URL 2048
#define TK_X5U_TIMEOUT_MS 10000

struct va_tkauth {
	X509_STORE *roots; /* tkauth.roots; NULL: every token refused */
	int allow_ca;      /* tkauth.allow_ca */
	const struct va_config *cfg; /* borrowed: x5u_allow, x5u_ca */
	int curl_init;               /* curl_global_init succeeded */
};

/* See va_int.h. */
struct va_tkauth *
va_tkauth_new(const struct va_config *cfg, char *err, size_t errlen)
{
	struct va_tkauth *t = xcalloc(1, sizeof(*t));
	size_t i;

	t->allow_ca = cfg->tkauth_allow_ca;
	t->cfg = cfg;
	for (i = 0; i < cfg->n_tkauth_x5u_allow; i++)
		if (strncmp(cfg->tkauth_x5u_allow[i], "https://", 8) != 0 ||
		    strlen(cfg->tkauth_x5u_allow[i]) <= 8) {
			snprintf(err, errlen,
			    "tkauth.x5u_allow: \"%s\" is not an https:// URL "
			    "prefix",
			    cfg->tkauth_x5u_allow[i]);
			free(t);
			return NULL;
		}
	if (cfg->tkauth_x5u_ca != NULL &&
	    access(cfg->tkauth_x5u_ca, R_OK) != 0) {
		snprintf(err, errlen, "tkauth.x5u_ca: cannot read %s",
		    cfg->tkauth_x5u_ca);
		free(t);
		return NULL;
	}
	if (cfg->n_tkauth_x5u_allow > 0) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
			snprintf(err, errlen,
			    "tkauth.x5u_allow: libcurl cannot initialise");
			free(t);
			return NULL;
		}
		t->curl_init = 1;
	}
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
	if (t->curl_init)
		curl_global_cleanup();
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
 * The certificates of the header's "x5c" (RFC 7515 §4.1.6: standard base64
 * DER, the signer first): *leaf (new) and the rest pushed on rest. 0, or -1
 * with f.
 */
static int
tk_chain_x5c(const json_t *x5c, X509 **leaf, STACK_OF(X509) *rest,
    struct tk_fail *f)
{
	const json_t *e;
	uint8_t *der = NULL;
	size_t i, len;
	X509 *x;

	if (json_array_size(x5c) == 0 || json_array_size(x5c) > TK_MAX_X5C)
		return tk_bad(f, PROB_MALFORMED,
		    "\"x5c\" must hold 1..%d certificates", TK_MAX_X5C);
	json_array_foreach(x5c, i, e)
	{
		x = NULL;
		if (json_is_string(e) &&
		    json_string_length(e) < TK_MAX_JWT &&
		    va_b64_decode(json_string_value(e), &der, &len) == 0)
			x = va_der_cert(der, len, TK_MAX_JWT);
		free(der);
		der = NULL;
		if (x == NULL)
			return tk_bad(f, PROB_MALFORMED,
			    "x5c[%zu] is not a base64 DER certificate", i);
		if (i == 0)
			*leaf = x;
		else if (!sk_X509_push(rest, x)) {
			X509_free(x);
			return tk_bad(f, PROB_SERVER_INTERNAL, "out of memory");
		}
	}
	return 0;
}

/*
 * The certificates of the PEM chain fetched from "x5u" (url, borrowed, for
 * the detail): RFC 7515 §4.1.5, "The certificate containing the public key
 * corresponding to the key used to digitally sign the JWS MUST be the
 * first certificate". *leaf (new), the rest on rest. 0, or -1 with f.
 */
static int
tk_chain_pem(const char *pem, const char *url, X509 **leaf,
    STACK_OF(X509) *rest, struct tk_fail *f)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x;
	int n = 0, rc = -1;

	if (b == NULL)
		return tk_bad(f, PROB_SERVER_INTERNAL, "out of memory");
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		if (++n > TK_MAX_X5C) {
			X509_free(x);
			tk_bad(f, PROB_UNAUTHORIZED,
			    "the x5u resource %s holds more than %d "
			    "certificates",
			    url, TK_MAX_X5C);
			goto out;
		}
		if (n == 1)
			*leaf = x;
		else if (!sk_X509_push(rest, x)) {
			X509_free(x);
			tk_bad(f, PROB_SERVER_INTERNAL, "out of memory");
			goto out;
		}
	}
	if (n == 0) {
		tk_bad(f, PROB_UNAUTHORIZED,
		    "the x5u resource %s holds no PEM certificate "
		    "(RFC 7515 §4.1.5)",
		    url);
		goto out;
	}
	rc = 0;
out:
	ERR_clear_error(); /* PEM_read_bio_X509's "no start line" at the end */
	BIO_free(b);
	return rc;
}

/*
 * RFC 9448 §6 steps 2-3: the signer's certificate, from the header's "x5c"
 * or else from x5u_pem (the chain va_validate fetched from "x5u"; may be
 * NULL), chains to a configured Token Authority root. New reference, or
 * NULL with f.
 */
static X509 *
tk_signer(const struct va_tkauth *ta, const json_t *hdr, const char *x5u_pem,
    struct tk_fail *f)
{
	const json_t *x5c = json_object_get(hdr, "x5c");
	const json_t *x5u = json_object_get(hdr, "x5u");
	STACK_OF(X509) *rest = NULL;
	X509 *leaf = NULL;
	const char *why;
	int ok = 0, trusted, got;

	if (!json_is_array(x5c) && (!json_is_string(x5u) || x5u_pem == NULL)) {
		tk_bad(f, PROB_UNAUTHORIZED,
		    x5u != NULL
			? "the token's \"x5u\" was not fetched (va.json "
			  "tkauth.x5u_allow is empty or it is not a string)"
			: "the token's header has neither an \"x5c\" "
			  "certificate chain nor an \"x5u\" (RFC 9448 §6)");
		return NULL;
	}
	if (ta->roots == NULL) {
		tk_bad(f, PROB_UNAUTHORIZED,
		    "no Token Authority is trusted (va.json tkauth.roots)");
		return NULL;
	}
	if ((rest = sk_X509_new_null()) == NULL) {
		tk_bad(f, PROB_SERVER_INTERNAL, "out of memory");
		return NULL;
	}
	got = json_is_array(x5c)
	    ? tk_chain_x5c(x5c, &leaf, rest, f)
	    : tk_chain_pem(x5u_pem, json_string_value(x5u), &leaf, rest, f);
	if (got != 0)
		goto out;
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
	json_t *rec;
	char subj[256] = "";

	memset(&t, 0, sizeof(t));
	/* RFC 9448 §5.5: the client POSTs {"atc": "<token>"} */
	if (tok == NULL) {
		tk_bad(&f, PROB_MALFORMED,
		    "the response has no \"atc\" string (RFC 9448 §5.5)");
		goto fail;
	}
	if (tk_jwt_parse(tok, &t, &f) != 0 ||
	    (signer = tk_signer(j->va->tkauth, t.hdr, j->tk_x5u_pem, &f)) ==
		NULL ||
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
	rec = json_pack("{s:s,s:s,s:O,s:O,s:b}", "token_authority", subj,
	    "jti", json_string_value(json_object_get(t.claims, "jti")), "exp",
	    json_object_get(t.claims, "exp"), "iss",
	    json_object_get(t.claims, "iss") ? json_object_get(t.claims, "iss")
					     : json_null(),
	    "ca", json_is_true(json_object_get(atc, "ca")));
	/* where the signer's chain came from, when it was fetched */
	if (!json_is_array(json_object_get(t.hdr, "x5c")))
		json_object_set(rec, "x5u", json_object_get(t.hdr, "x5u"));
	json_array_append_new(j->record, rec);
	X509_free(signer);
	tk_jwt_clear(&t);
	va_job_finish(j, NULL);
	return;
fail:
	X509_free(signer);
	tk_jwt_clear(&t);
	va_job_finish(j, problem_new(f.type, "tkauth-01: %s", f.why));
}

/* The x5u response body, capped at TK_MAX_X5U_BODY. */
struct tk_body {
	char *data;
	size_t len;
	int too_big;
};

static size_t
tk_body_write(char *p, size_t size, size_t n, void *arg)
{
	struct tk_body *b = arg;
	size_t add = size * n;

	if (add > TK_MAX_X5U_BODY - b->len) {
		b->too_big = 1;
		return 0; /* aborts the transfer (CURLE_WRITE_ERROR) */
	}
	b->data = xrealloc(b->data, b->len + add + 1);
	memcpy(b->data + b->len, p, add);
	b->len += add;
	b->data[b->len] = '\0';
	return add;
}

/*
 * url may be fetched: a single-line https URL under one of the
 * tkauth.x5u_allow prefixes (a prefix matches up to a '/' boundary, so
 * "https://ta.example" does not admit "https://ta.example.evil").
 */
static int
tk_x5u_allowed(const struct va_config *cfg, const char *url)
{
	size_t i, n;
	const char *p;

	if (strncasecmp(url, "https://", 8) != 0 ||
	    strlen(url) > TK_MAX_X5U_URL)
		return 0;
	for (p = url; *p != '\0'; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return 0;
	for (i = 0; i < cfg->n_tkauth_x5u_allow; i++) {
		n = strlen(cfg->tkauth_x5u_allow[i]);
		if (n > 8 && strncmp(url, cfg->tkauth_x5u_allow[i], n) == 0 &&
		    (cfg->tkauth_x5u_allow[i][n - 1] == '/' ||
			url[n] == '\0' || url[n] == '/'))
			return 1;
	}
	return 0;
}

/* GETs url into b: https only, TLS verified (tkauth.x5u_ca or the system
 * store), no redirects, 200 only. 0, or -1 with err. */
static int
tk_x5u_get(const struct va_config *cfg, const char *url, int64_t timeout_ms,
    struct tk_body *b, char *err, size_t errlen)
{
	char ebuf[CURL_ERROR_SIZE] = "";
	CURL *c = curl_easy_init();
	CURLcode rc = CURLE_FAILED_INIT;
	long status = 0;

	if (c == NULL ||
	    curl_easy_setopt(c, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
	    (cfg->tkauth_x5u_ca != NULL &&
		curl_easy_setopt(c, CURLOPT_CAINFO, cfg->tkauth_x5u_ca) !=
		    CURLE_OK) ||
	    curl_easy_setopt(c, CURLOPT_USERAGENT, cfg->user_agent) !=
		CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, tk_body_write) !=
		CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_WRITEDATA, b) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE,
		(curl_off_t)TK_MAX_X5U_BODY) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms) !=
		CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf) != CURLE_OK) {
		snprintf(err, errlen, "cannot set up the fetch");
		curl_easy_cleanup(c);
		return -1;
	}
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK &&
	    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
		status = 0;
	curl_easy_cleanup(c);
	if (b->too_big || rc == CURLE_FILESIZE_EXCEEDED)
		snprintf(err, errlen, "the resource is larger than %d bytes",
		    TK_MAX_X5U_BODY);
	else if (rc != CURLE_OK)
		snprintf(err, errlen, "%s",
		    ebuf[0] ? ebuf : curl_easy_strerror(rc));
	else if (status != 200)
		snprintf(err, errlen, "HTTP status %ld (redirects are not "
				      "followed)",
		    status);
	else
		return 0;
	return -1;
}

/* See va_int.h. */
int
va_tkauth_x5u_fetch(const struct va_tkauth *t, const json_t *payload,
    int64_t timeout_ms, char **pem, struct problem **prob)
{
	const char *tok = json_string_value(json_object_get(payload, "atc"));
	const char *url;
	struct tk_jwt jwt;
	struct tk_fail f;
	struct tk_body b = {NULL, 0, 0};
	char err[CURL_ERROR_SIZE + 64];
	int rc = 0;

	*pem = NULL;
	*prob = NULL;
	memset(&jwt, 0, sizeof(jwt));
	/* whatever is wrong with the token itself, the loop reports; RFC 7515
	 * §4.1.6 "x5c" gives the chain itself, so with both present x5c is
	 * used and x5u is not dereferenced */
	if (tok == NULL || t->roots == NULL ||
	    tk_jwt_parse(tok, &jwt, &f) != 0 ||
	    json_object_get(jwt.hdr, "x5c") != NULL ||
	    (url = json_string_value(json_object_get(jwt.hdr, "x5u"))) ==
		NULL ||
	    t->cfg->n_tkauth_x5u_allow == 0)
		goto out;
	if (!tk_x5u_allowed(t->cfg, url)) {
		*prob = problem_new(PROB_UNAUTHORIZED,
		    "tkauth-01: the token's x5u %s is not an https URL under "
		    "va.json tkauth.x5u_allow: its signer is not a trusted "
		    "Token Authority (RFC 9448 §6)",
		    url);
		rc = -1;
		goto out;
	}
	if (tk_x5u_get(t->cfg, url,
		timeout_ms < TK_X5U_TIMEOUT_MS ? timeout_ms : TK_X5U_TIMEOUT_MS,
		&b, err, sizeof(err)) != 0) {
		*prob = problem_new(PROB_UNAUTHORIZED,
		    "tkauth-01: cannot fetch the token's x5u %s: %s", url,
		    err);
		free(b.data);
		rc = -1;
		goto out;
	}
	*pem = b.data != NULL ? b.data : xstrdup("");
out:
	tk_jwt_clear(&jwt);
	return rc;
}
