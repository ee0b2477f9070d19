/* jws.c - parsing and verification of flattened JWS request bodies. */
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "jose/jose_int.h"

/* "RS256, ES256, ES384" for details. Caller frees. */
static char *
allowed_list(const struct jose_policy *p)
{
	char buf[128] = "";
	int i;

	for (i = 0; i < JOSE_ALG__MAX; i++) {
		if (!jose_policy_allows(p, (enum jose_alg)i))
			continue;
		if (buf[0] != '\0')
			strncat(buf, ", ", sizeof(buf) - strlen(buf) - 1);
		strncat(buf, jose_alg_name((enum jose_alg)i),
		    sizeof(buf) - strlen(buf) - 1);
	}
	return xstrdup(buf);
}

static int
bad_alg(struct problem **prob, const struct jose_policy *p, const char *alg,
    const char *why)
{
	char *list = allowed_list(p);

	jose_fail(prob, PROB_BAD_SIGNATURE_ALGORITHM,
	    "JWS alg \"%.32s\" %s; this server accepts: %s", alg, why, list);
	free(list);
	return -1;
}

/* A member a JWS object or protected header must not have, and why. */
struct jws_refused {
	const char *key;
	const char *why; /* follows `what` in the malformed detail */
};

static const struct jws_refused refused_members[] = {
    {"signatures", "uses the general JSON serialization (\"signatures\"); "
		   "ACME requires the flattened serialization with exactly "
		   "one \"signature\" (RFC 8555 §6.2)"},
    {"header", "has an unprotected \"header\"; ACME allows only the "
	       "protected header (RFC 8555 §6.2)"},
};
static const struct jws_refused refused_header[] = {
    {"crit", "protected header has \"crit\": no extensions are supported"},
    {"b64", "protected header has \"b64\": unencoded payloads are not "
	    "supported"},
};

/* -1 with a malformed *prob naming `what` when obj has one of the n keys
 * of refused, else 0. */
static int
check_refused(const json_t *obj, const struct jws_refused *refused, size_t n,
    const char *what, struct problem **prob)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (json_object_get(obj, refused[i].key) != NULL)
			return jose_fail(prob, PROB_MALFORMED, "%s %s", what,
			    refused[i].why);
	return 0;
}

/* See jose_int.h. */
int
jose_flat_members(const json_t *obj, const char *what, struct problem **prob)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)obj, key, v)
	{
		if (strcmp(key, "protected") != 0 &&
		    strcmp(key, "payload") != 0 &&
		    strcmp(key, "signature") != 0)
			return jose_fail(prob, PROB_MALFORMED,
			    "%s has an unexpected member \"%.32s\"; expected "
			    "only protected, payload, signature",
			    what, key);
	}
	return 0;
}

/* Checks the members of a flattened JWS object (borrowed). */
static int
check_members(const json_t *obj, const char *what, struct problem **prob)
{
	if (check_refused(obj, refused_members,
		sizeof(refused_members) / sizeof(refused_members[0]), what,
		prob) != 0 ||
	    jose_flat_members(obj, what, prob) != 0)
		return -1;
	if (!json_is_string(json_object_get(obj, "protected")) ||
	    !json_is_string(json_object_get(obj, "payload")) ||
	    !json_is_string(json_object_get(obj, "signature")))
		return jose_fail(prob, PROB_MALFORMED,
		    "%s needs string members \"protected\", \"payload\" and "
		    "\"signature\"",
		    what);
	return 0;
}

/* alg of the header: allowed by policy, else badSignatureAlgorithm. */
static int
header_alg(const json_t *hdr, const struct jose_policy *p, const char *what,
    enum jose_alg *out, struct problem **prob)
{
	const json_t *v = json_object_get(hdr, "alg");
	const char *alg;

	if (v == NULL)
		return jose_fail(prob, PROB_MALFORMED,
		    "%s protected header has no \"alg\"", what);
	if (!json_is_string(v))
		return jose_fail(prob, PROB_MALFORMED,
		    "%s protected header \"alg\" must be a string", what);
	alg = json_string_value(v);
	if (strcmp(alg, "none") == 0)
		return bad_alg(prob, p, alg, "(unsigned) is never accepted");
	if (strncmp(alg, "HS", 2) == 0)
		return bad_alg(prob, p, alg,
		    "(a MAC) is not accepted for request signatures");
	if (jose_alg_parse(alg, out) != 0)
		return bad_alg(prob, p, alg, "is not supported");
	if (!jose_policy_allows(p, *out))
		return bad_alg(prob, p, alg, "is disabled on this server");
	return 0;
}

/* Optional string member; -1 and malformed if present but not a string. */
static int
opt_string(const json_t *hdr, const char *name, const char *what, char **out,
    struct problem **prob)
{
	const json_t *v = json_object_get(hdr, name);

	*out = NULL;
	if (v == NULL)
		return 0;
	if (!json_is_string(v) || json_string_length(v) == 0)
		return jose_fail(prob, PROB_MALFORMED,
		    "%s protected header \"%s\" must be a non-empty string",
		    what, name);
	if (strlen(json_string_value(v)) != json_string_length(v))
		return jose_fail(prob, PROB_MALFORMED,
		    "%s protected header \"%s\" contains a NUL", what, name);
	*out = xstrdup(json_string_value(v));
	return 0;
}

static int
parse_header(struct jws *j, const struct jose_policy *p, unsigned flags,
    const char *what, struct problem **prob)
{
	const json_t *hdr = j->protected_hdr;
	const json_t *jwk;

	if (header_alg(hdr, p, what, &j->alg, prob) != 0)
		return -1;
	if (check_refused(hdr, refused_header,
		sizeof(refused_header) / sizeof(refused_header[0]), what,
		prob) != 0)
		return -1;
	jwk = json_object_get(hdr, "jwk");
	if (jwk != NULL && json_object_get(hdr, "kid") != NULL)
		return jose_fail(prob, PROB_MALFORMED,
		    "%s protected header has both \"jwk\" and \"kid\"; send "
		    "exactly one (RFC 8555 §6.2)",
		    what);
	if (jwk == NULL && json_object_get(hdr, "kid") == NULL)
		return jose_fail(prob, PROB_MALFORMED,
		    "%s protected header has neither \"jwk\" nor \"kid\"",
		    what);
	if ((flags & JOSE_HDR_JWK_REQUIRED) && jwk == NULL)
		return jose_fail(prob, PROB_MALFORMED,
		    "%s must carry the new key as \"jwk\", not \"kid\"", what);
	if (opt_string(hdr, "kid", what, &j->kid, prob) != 0)
		return -1;
	if (jwk != NULL && jwk_parse(jwk, p, &j->jwk, prob) != 0)
		return -1;
	if (json_object_get(hdr, "nonce") != NULL &&
	    (flags & JOSE_HDR_NONCE_FORBIDDEN))
		return jose_fail(prob, PROB_MALFORMED,
		    "%s must not have a \"nonce\" (RFC 8555 §7.3.5)", what);
	if (json_object_get(hdr, "nonce") == NULL &&
	    (flags & JOSE_HDR_NONCE_REQUIRED))
		return jose_fail(prob, PROB_BAD_NONCE,
		    "%s has no anti-replay \"nonce\" in its protected header",
		    what);
	if (json_object_get(hdr, "nonce") != NULL) {
		const json_t *n = json_object_get(hdr, "nonce");

		if (!json_is_string(n) || !jose_is_b64url(json_string_value(n)))
			return jose_fail(prob, PROB_BAD_NONCE,
			    "%s \"nonce\" must be a base64url string", what);
		j->nonce = xstrdup(json_string_value(n));
	}
	if (json_object_get(hdr, "url") == NULL)
		return jose_fail(prob, PROB_MALFORMED,
		    "%s protected header has no \"url\"", what);
	return opt_string(hdr, "url", what, &j->url, prob);
}

int
jose_jws_from_object(const json_t *obj, const struct jose_policy *policy,
    unsigned flags, const char *what, struct jws **out, struct problem **prob)
{
	struct jose_policy def;
	struct jws *j = NULL;
	uint8_t *hdr = NULL;
	size_t hdrlen = 0;
	const char *pstr, *plstr;
	size_t plen, pllen;
	int rc = -1;

	*out = NULL;
	if (policy == NULL) {
		jose_policy_default(&def);
		policy = &def;
	}
	if (check_members(obj, what, prob) != 0)
		goto out;
	j = xcalloc(1, sizeof(*j));
	if (jose_b64_member(obj, "protected", what, PROB_MALFORMED, &hdr,
		&hdrlen, prob) != 0)
		goto out;
	if (jose_json_object((const char *)hdr, hdrlen, "protected header",
		&j->protected_hdr, prob) != 0)
		goto out;
	if (parse_header(j, policy, flags, what, prob) != 0)
		goto out;
	if (jose_b64_member(obj, "payload", what, PROB_MALFORMED, &j->payload,
		&j->payload_len, prob) != 0)
		goto out;
	j->is_post_as_get = j->payload_len == 0;
	/* After the header, so "alg":"none" with no signature is answered
	 * badSignatureAlgorithm (RFC 8555 §6.2), not malformed. */
	if (json_string_length(json_object_get(obj, "signature")) == 0) {
		jose_fail(
		    prob, PROB_MALFORMED, "%s has an empty signature", what);
		goto out;
	}
	if (jose_b64_member(obj, "signature", what, PROB_MALFORMED, &j->sig,
		&j->sig_len, prob) != 0)
		goto out;
	pstr = json_string_value(json_object_get(obj, "protected"));
	plen = json_string_length(json_object_get(obj, "protected"));
	plstr = json_string_value(json_object_get(obj, "payload"));
	pllen = json_string_length(json_object_get(obj, "payload"));
	j->signing_input_len = plen + 1 + pllen;
	j->signing_input = xmalloc(j->signing_input_len + 1);
	memcpy(j->signing_input, pstr, plen);
	j->signing_input[plen] = '.';
	memcpy(j->signing_input + plen + 1, plstr, pllen);
	j->signing_input[j->signing_input_len] = '\0';
	*out = j;
	j = NULL;
	rc = 0;
out:
	free(hdr);
	jws_free(j);
	return rc;
}

int
jws_parse(const char *body, size_t len, const struct jose_policy *policy,
    struct jws **out, struct problem **prob)
{
	json_t *obj = NULL;
	size_t i = 0;
	int rc = -1;

	*out = NULL;
	if (body == NULL || len == 0)
		return jose_fail(prob, PROB_MALFORMED,
		    "request body is empty; expected a flattened JWS");
	if (len > JOSE_MAX_JWS_LEN)
		return jose_fail(prob, PROB_MALFORMED,
		    "request body of %zu bytes is larger than %d", len,
		    JOSE_MAX_JWS_LEN);
	while (i < len &&
	    (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' ||
		body[i] == '\n'))
		i++;
	if (i < len && body[i] != '{') {
		if (memchr(body, '.', len) != NULL && body[i] != '[' &&
		    body[i] != '"')
			return jose_fail(prob, PROB_MALFORMED,
			    "compact JWS serialization is not accepted; send "
			    "the flattened JSON serialization (RFC 8555 §6.2)");
		return jose_fail(prob, PROB_MALFORMED,
		    "request body must be a flattened JWS JSON object");
	}
	if (jose_json_object(body, len, "JWS", &obj, prob) != 0)
		goto out;
	rc = jose_jws_from_object(
	    obj, policy, JOSE_HDR_NONCE_REQUIRED, "JWS", out, prob);
out:
	json_decref(obj);
	return rc;
}

void
jws_free(struct jws *j)
{
	if (j == NULL)
		return;
	free(j->nonce);
	free(j->url);
	free(j->kid);
	jwk_free(j->jwk);
	json_decref(j->protected_hdr);
	free(j->payload);
	free(j->signing_input);
	free(j->sig);
	free(j);
}

int
jose_sig_check(EVP_PKEY *pkey, enum jose_alg alg, const uint8_t *data,
    size_t len, const uint8_t *sig, size_t siglen)
{
	size_t eclen = jose_alg_ec_len(alg);
	EVP_MD_CTX *md = NULL;
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *s = NULL;
	unsigned char *der = NULL;
	const uint8_t *vsig = sig;
	size_t vlen = siglen;
	int derlen, ok = 0;

	if (eclen != 0) {
		if (siglen != 2 * eclen)
			goto out;
		r = BN_bin2bn(sig, (int)eclen, NULL);
		s = BN_bin2bn(sig + eclen, (int)eclen, NULL);
		es = ECDSA_SIG_new();
		if (r == NULL || s == NULL || es == NULL ||
		    !ECDSA_SIG_set0(es, r, s))
			goto out;
		r = s = NULL;
		derlen = i2d_ECDSA_SIG(es, &der);
		if (derlen <= 0)
			goto out;
		vsig = der;
		vlen = (size_t)derlen;
	} else if (alg == JOSE_ALG_RS256) {
		if (siglen != (size_t)EVP_PKEY_get_size(pkey))
			goto out;
	} else if (alg == JOSE_ALG_EDDSA) {
		if (siglen != 64)
			goto out;
	} else {
		goto out;
	}
	md = EVP_MD_CTX_new();
	if (md == NULL ||
	    EVP_DigestVerifyInit(md, NULL, jose_alg_md(alg), NULL, pkey) <= 0)
		goto out;
	ok = EVP_DigestVerify(md, vsig, vlen, data, len) == 1;
out:
	EVP_MD_CTX_free(md);
	ECDSA_SIG_free(es);
	BN_free(r);
	BN_free(s);
	OPENSSL_free(der);
	return ok;
}

int
jws_verify(const struct jws *j, const struct jwk *key, struct problem **prob)
{
	size_t eclen;

	if (j == NULL || key == NULL)
		return jose_fail(prob, PROB_SERVER_INTERNAL,
		    "jws_verify without a JWS or key");
	if (j->alg != key->alg)
		return jose_fail(prob, PROB_BAD_SIGNATURE_ALGORITHM,
		    "JWS alg \"%s\" does not match the key: the key is "
		    "%s%s%s, which signs with %s",
		    jose_alg_name(j->alg),
		    key->kty == JWK_KTY_RSA      ? "RSA"
			: key->kty == JWK_KTY_EC ? "EC"
						 : "OKP",
		    key->crv ? " " : "", key->crv ? key->crv : "",
		    jose_alg_name(key->alg));
	eclen = jose_alg_ec_len(j->alg);
	if (eclen != 0 && j->sig_len != 2 * eclen)
		return jose_fail(prob, PROB_MALFORMED,
		    "%s signature must be %zu bytes (r||s, RFC 7518 §3.4), "
		    "got %zu%s",
		    jose_alg_name(j->alg), 2 * eclen, j->sig_len,
		    j->sig_len > 0 && j->sig[0] == 0x30 ? " (looks DER-encoded)"
							: "");
	if (j->alg == JOSE_ALG_RS256 &&
	    j->sig_len != (size_t)EVP_PKEY_get_size(key->pkey))
		return jose_fail(prob, PROB_MALFORMED,
		    "RS256 signature must be %d bytes (the modulus size), got "
		    "%zu",
		    EVP_PKEY_get_size(key->pkey), j->sig_len);
	if (j->alg == JOSE_ALG_EDDSA && j->sig_len != 64)
		return jose_fail(prob, PROB_MALFORMED,
		    "EdDSA signature must be 64 bytes, got %zu", j->sig_len);
	if (!jose_sig_check(key->pkey, j->alg,
		(const uint8_t *)j->signing_input, j->signing_input_len, j->sig,
		j->sig_len))
		return jose_fail(
		    prob, PROB_MALFORMED, "JWS signature verification failed");
	return 0;
}

int
jws_payload_json(const struct jws *j, json_t **out, struct problem **prob)
{
	*out = NULL;
	if (j->is_post_as_get)
		return jose_fail(prob, PROB_MALFORMED,
		    "this request needs a JSON object payload; an empty "
		    "payload (POST-as-GET) is not accepted here");
	return jose_json_object(
	    (const char *)j->payload, j->payload_len, "JWS payload", out, prob);
}
