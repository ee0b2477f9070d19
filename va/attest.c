/*
 * attest.c - device-attest-01 (draft-ietf-acme-device-attest §5): the
 * client's response carries "attObj", a base64url WebAuthn attestation
 * object. The VA decodes it (attest_cbor.c), verifies it with the
 * verifier of its "fmt" (attest_tpm.c, attest_apple.c) against the roots
 * configured for that format (va.json "attestation"; nothing is built in),
 * and checks that the statement names the order's identifier. Any failure
 * is badAttestationStatement with the reason in the detail (§5: "The
 * Server MUST provide the reason for rejecting the challenge in the
 * "detail" field").
 *
 * A statement cannot be replayed into another challenge: every format
 * binds it to this challenge (tpm: extraData = SHA-256 of the key
 * authorization; apple: the nonce extension = SHA-256 of the token), and
 * tokens are unique per challenge. The validation record keeps the hash
 * of the attested key, which finalize compares with the CSR's key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "va/va_int.h"

/* The formats whose statements chain to configured roots, in the order
 * of the roots in struct va_attest. */
static const char *const att_fmts[VA_ATT_N_FMTS] = {
    "tpm", "apple", "packed", "android-key"};

struct va_attest {
	X509_STORE *roots[VA_ATT_N_FMTS]; /* attestation.<fmt>_roots */
	int android_level; /* attestation.android_security_level */
};

/* A store with the certificates of PEM file path; NULL with err. */
static X509_STORE *
load_roots(const char *key, const char *path, char *err, size_t errlen)
{
	X509_STORE *st = X509_STORE_new();

	if (st == NULL || X509_STORE_load_file(st, path) != 1 ||
	    sk_X509_OBJECT_num(X509_STORE_get0_objects(st)) == 0) {
		snprintf(err, errlen,
		    "attestation.%s: cannot load certificates from %s", key,
		    path);
		X509_STORE_free(st);
		return NULL;
	}
	return st;
}

/* See va_int.h. */
struct va_attest *
va_attest_new(const struct va_config *cfg, char *err, size_t errlen)
{
	static const char *const keys[VA_ATT_N_FMTS] = {"tpm_roots",
	    "apple_roots", "packed_roots", "android_roots"};
	const char *paths[VA_ATT_N_FMTS] = {cfg->attest_tpm_roots,
	    cfg->attest_apple_roots, cfg->attest_packed_roots,
	    cfg->attest_android_roots};
	struct va_attest *a = xcalloc(1, sizeof(*a));
	size_t i;

	for (i = 0; i < VA_ATT_N_FMTS; i++)
		if (paths[i] != NULL &&
		    (a->roots[i] = load_roots(keys[i], paths[i], err,
			 errlen)) == NULL)
			goto fail;
	a->android_level = va_android_level_parse(cfg->attest_android_level);
	if (a->android_level < 0) {
		snprintf(err, errlen,
		    "attestation.android_security_level: expected "
		    "\"software\", \"tee\" or \"strongbox\"");
		goto fail;
	}
	return a;
fail:
	va_attest_free(a);
	return NULL;
}

/* See va_int.h. */
void
va_attest_free(struct va_attest *a)
{
	size_t i;

	if (a == NULL)
		return;
	for (i = 0; i < VA_ATT_N_FMTS; i++)
		X509_STORE_free(a->roots[i]);
	free(a);
}

/* See va_int.h. */
int
va_attest_android_level(const struct va_attest *a)
{
	return a->android_level;
}

/* See va_int.h: one DER certificate that is exactly n (1..max) bytes. */
X509 *
va_der_cert(const uint8_t *d, size_t n, size_t max)
{
	const unsigned char *p = d;
	X509 *x;

	if (n == 0 || n > max)
		return NULL;
	x = d2i_X509(NULL, &p, (long)n);
	if (x != NULL && p != d + n) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* See va_int.h: leaf with chain (both borrowed) verified to roots. */
int
va_chain_verify(X509_STORE *roots, X509 *leaf, STACK_OF(X509) *chain,
    const char **why)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int rc = -1;

	if (ctx == NULL || X509_STORE_CTX_init(ctx, roots, leaf, chain) != 1)
		goto out;
	rc = X509_verify_cert(ctx) == 1;
	if (!rc)
		*why = X509_verify_cert_error_string(
		    X509_STORE_CTX_get_error(ctx));
out:
	X509_STORE_CTX_free(ctx);
	return rc;
}

/*
 * See va_int.h: verifies o's x5c (leaf first, then intermediates) to the
 * roots of format fmt. The leaf (new reference) or NULL with err.
 */
X509 *
va_attest_chain(const struct va_attest *a, const char *fmt,
    const struct va_attobj *o, char *err, size_t errlen)
{
	X509_STORE *roots = NULL;
	STACK_OF(X509) *chain = NULL;
	X509 *leaf = NULL, *x;
	const char *why;
	size_t i;
	int ok = 0, trusted = -1;

	for (i = 0; i < VA_ATT_N_FMTS; i++)
		if (strcmp(att_fmts[i], fmt) == 0)
			roots = a->roots[i];
	if (roots == NULL) {
		snprintf(err, errlen,
		    "no attestation roots are configured for format %s",
		    fmt);
		return NULL;
	}
	if (o->n_x5c == 0) {
		snprintf(err, errlen, "attStmt.x5c is missing or empty");
		return NULL;
	}
	if ((leaf = va_der_cert(o->x5c[0], o->x5c_len[0], VA_ATT_MAX_LEN)) == NULL) {
		snprintf(err, errlen, "attStmt.x5c[0] is not a certificate");
		return NULL;
	}
	chain = sk_X509_new_null();
	for (i = 1; chain != NULL && i < o->n_x5c; i++) {
		if ((x = va_der_cert(o->x5c[i], o->x5c_len[i], VA_ATT_MAX_LEN)) == NULL ||
		    !sk_X509_push(chain, x)) {
			X509_free(x);
			snprintf(err, errlen,
			    "attStmt.x5c[%zu] is not a certificate", i);
			goto out;
		}
	}
	if (chain == NULL ||
	    (trusted = va_chain_verify(roots, leaf, chain, &why)) < 0) {
		snprintf(err, errlen, "cannot set up chain verification");
		goto out;
	}
	if (trusted == 0) {
		snprintf(err, errlen,
		    "the attestation certificate does not chain to a "
		    "configured %s root: %s",
		    fmt, why);
		goto out;
	}
	ok = 1;
out:
	sk_X509_pop_free(chain, X509_free);
	if (!ok) {
		X509_free(leaf);
		leaf = NULL;
	}
	return leaf;
}

/* See va_int.h: o->sig by x's key over data with o->alg. 1 or 0. */
int
va_attest_sig_ok(X509 *x, const struct va_attobj *o, const uint8_t *data,
    size_t len)
{
	EVP_PKEY *pk = X509_get0_pubkey(x);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int want = o->alg == -7 ? EVP_PKEY_EC : EVP_PKEY_RSA, ok;

	ok = pk != NULL && md != NULL && o->sig != NULL &&
	    (o->alg == -7 || o->alg == -257) &&
	    EVP_PKEY_get_base_id(pk) == want &&
	    EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pk) == 1 &&
	    EVP_DigestVerify(md, o->sig, o->sig_len, data, len) == 1;
	EVP_MD_CTX_free(md);
	return ok;
}

/*
 * See va_int.h: the x5c path of the formats whose x5c[0] key signs
 * attToBeSigned = the key authorization (packed, android-key). The
 * leaf (new reference) or NULL with err.
 */
X509 *
va_attest_x5c_signed(const struct va_attest *a, const struct va_attobj *o,
    const char *keyauth, char *err, size_t errlen)
{
	X509 *leaf;

	if (!o->has_alg || (o->alg != -7 && o->alg != -257) ||
	    o->sig == NULL) {
		snprintf(err, errlen,
		    "a %s attStmt needs alg -7 or -257 and sig", o->fmt);
		return NULL;
	}
	if (o->n_x5c == 0) {
		snprintf(err, errlen,
		    "%s self attestation (no x5c) is not accepted: no "
		    "attestation authority vouches for the device",
		    o->fmt);
		return NULL;
	}
	if ((leaf = va_attest_chain(a, o->fmt, o, err, errlen)) == NULL)
		return NULL;
	/* WebAuthn §8.2 / §8.4: "Verify that sig is a valid signature over
	 * the concatenation of authenticatorData and clientDataHash using
	 * the [attestation] public key in [the first certificate in x5c]
	 * with the algorithm specified in alg", attToBeSigned being the key
	 * authorization (draft-ietf-acme-device-attest §5) */
	if (!va_attest_sig_ok(leaf, o, (const uint8_t *)keyauth,
		strlen(keyauth))) {
		snprintf(err, errlen,
		    "wrong nonce or key: sig is not x5c[0]'s signature over "
		    "the key authorization");
		X509_free(leaf);
		return NULL;
	}
	return leaf;
}

/* See va_int.h: SHA-256 of k's DER SubjectPublicKeyInfo. 0 or -1. */
int
va_attest_spki_hash(EVP_PKEY *k, uint8_t out[32])
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(k, &der);
	unsigned int len = 0;
	int rc = -1;

	if (n > 0 &&
	    EVP_Digest(der, (size_t)n, out, &len, EVP_sha256(), NULL) == 1 &&
	    len == 32)
		rc = 0;
	OPENSSL_free(der);
	return rc;
}

/* The dotted text of an OID into buf; 0 or -1. */
static int
oid_text(const ASN1_OBJECT *o, char *buf, size_t buflen)
{
	int n = OBJ_obj2txt(buf, (int)buflen, o, 1);

	return n > 0 && (size_t)n < buflen ? 0 : -1;
}

/* See va_int.h: the attested key and the device identifiers of x. */
int
va_attest_result_set(struct va_att_result *res, EVP_PKEY *key, X509 *x)
{
	if (va_attest_spki_hash(key, res->spki_sha256) != 0)
		return -1;
	res->have_key = 1;
	if (x != NULL)
		va_attest_san_idents(x, res->idents);
	return 0;
}

/* See va_int.h: the device identifiers in x's subjectAltName otherNames
 * (PermanentIdentifier, HardwareModuleName) appended to idents. */
void
va_attest_san_idents(X509 *x, json_t *idents)
{
	GENERAL_NAMES *gens;
	int i;

	gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const ASN1_TYPE *v;
		enum ident_type t;
		char oid[64], *val;
		if (g->type != GEN_OTHERNAME)
			continue;
		v = g->d.otherName->value;
		if (v == NULL || v->type != V_ASN1_SEQUENCE ||
		    oid_text(g->d.otherName->type_id, oid, sizeof(oid)) != 0)
			continue;
		val = ident_device_from_othername(oid,
		    v->value.sequence->data, v->value.sequence->length, &t);
		if (val != NULL)
			json_array_append_new(idents,
			    json_pack("{s:s,s:s}", "type", ident_type_name(t),
				"value", val));
		free(val);
	}
	GENERAL_NAMES_free(gens);
}

/* Whether idents (borrowed) holds {type: t, value: v}. */
static int
names_ident(const json_t *idents, const char *t, const char *v)
{
	const json_t *e;
	size_t i;

	json_array_foreach(idents, i, e)
	{
		const char *et = json_string_value(json_object_get(e, "type"));
		const char *ev = json_string_value(json_object_get(e, "value"));
		if (et != NULL && ev != NULL && strcmp(et, t) == 0 &&
		    strcmp(ev, v) == 0)
			return 1;
	}
	return 0;
}

/* Finishes j with badAttestationStatement "what: why". */
static void
att_fail(struct va_job *j, const char *why)
{
	va_job_finish(j,
	    problem_new(PROB_BAD_ATTESTATION_STATEMENT,
		"device-attest-01: %s", why));
}

/* The verifier of o->fmt; 0 with res, -1 with err. */
static int
att_verify(struct va_job *j, const struct va_attobj *o,
    struct va_att_result *res, char *err, size_t errlen)
{
	if (strcmp(o->fmt, "tpm") == 0)
		return va_attest_tpm(
		    j->va->attest, o, j->keyauth, res, err, errlen);
	if (strcmp(o->fmt, "apple") == 0)
		return va_attest_apple(
		    j->va->attest, o, j->token, res, err, errlen);
	if (strcmp(o->fmt, "packed") == 0)
		return va_attest_packed(
		    j->va->attest, o, j->keyauth, res, err, errlen);
	if (strcmp(o->fmt, "android-key") == 0)
		return va_attest_android(
		    j->va->attest, o, j->keyauth, res, err, errlen);
	snprintf(err, errlen,
	    "attestation format \"%.24s\" is not supported (tpm, apple, "
	    "packed, android-key)",
	    o->fmt);
	return -1;
}

/* See va_int.h. */
void
va_deviceattest01_start(struct va_job *j)
{
	const char *b64 = json_string_value(json_object_get(j->payload,
	    "attObj"));
	struct va_att_result res;
	struct va_attobj o;
	uint8_t *buf = NULL;
	size_t len = 0;
	char err[256], *key = NULL;

	memset(&res, 0, sizeof(res));
	res.idents = json_array();
	/* §5: "A Client responds with the response object containing the
	 * WebAuthn attestation object in the "attObj" field" */
	if (b64 == NULL) {
		att_fail(j, "the response has no \"attObj\" string");
		goto out;
	}
	if (strlen(b64) > (VA_ATT_MAX_LEN / 3 + 1) * 4 ||
	    b64url_decode(b64, strlen(b64), &buf, &len) != 0) {
		att_fail(j, "attObj is not base64url or is too large");
		goto out;
	}
	if (va_attobj_parse(buf, len, &o, err, sizeof(err)) != 0 ||
	    att_verify(j, &o, &res, err, sizeof(err)) != 0) {
		att_fail(j, err);
		goto out;
	}
	/* §5 step 3: "Verify that the attestation statement contains a
	 * device identifier and that it matches the identifier in the
	 * Order." */
	if (!names_ident(res.idents, ident_type_name(j->itype), j->ident)) {
		snprintf(err, sizeof(err),
		    "the %s statement does not name the %s \"%.100s\"", o.fmt,
		    ident_type_name(j->itype), j->ident);
		att_fail(j, err);
		goto out;
	}
	key = res.have_key ? b64url_encode(res.spki_sha256, 32) : NULL;
	json_array_append_new(j->record,
	    json_pack("{s:s,s:s,s:s*}", "format", o.fmt, "identifier",
		j->ident, "attested_spki_sha256", key));
	va_job_finish(j, NULL);
out:
	free(key);
	free(buf);
	json_decref(res.idents);
}
