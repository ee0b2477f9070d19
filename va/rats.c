/*
 * rats.c - remote-attest-01 (draft-ietf-acme-rats §2.2): the client answers
 * the challenge with a RATS Conceptual Message Wrapper (CMW,
 * draft-ietf-rats-msg-wrap) holding evidence or an attestation result
 * over the challenge's freshness_nonce; the VA hands each wrapped message
 * to the verifier registered for its media type (the small interface of
 * va_int.h: message + nonce -> verdict) and accepts the challenge only
 * when every message was appraised and the verdict is acceptable. §2.2.1:
 * "The Server MUST perform a full verification of the remote attestation
 * data, including verification of the signature against a pre-configured
 * trust anchor, and appraisal according to a suitable appraisal policy"
 * (§3.4). Trust anchors are va.json "rats" (docs/config/va.md); nothing is
 * built in.
 *
 * The JWS payload of the challenge POST must be a JSON object (RFC 8555
 * §6.2, §7.5.1), so the CMW is the JSON CMW *collection* form (msg-wrap
 * §5.2: an object of label -> record, optional "__cmwc_t"); each record is
 * ["<media type>", "<base64url value>"(, indicator)].
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "jose/jose.h"
#include "va/va_int.h"

#define RATS_MAX_RECORDS 8
#define RATS_MAX_VALUE (64 * 1024)

struct va_rats {
	struct jwk **keys; /* rats.verifier_keys: trusted Verifier keys */
	size_t n_keys;
	int64_t max_age_ms;  /* rats.max_age: oldest attestation accepted */
	int accept_warning;  /* rats.accept_warning */
	json_t *pcr_digests; /* rats.tpm_pcr_digests: lowercase hex */
	const struct va_attest *attest; /* the tpm roots (borrowed) */
};

/* The verifiers, by the media type of the message they appraise. */
static const struct va_rats_verifier verifiers[] = {
    {"application/eat+jwt", "passport", va_rats_ear_verify},
    {"application/vnd.anvil.tpm2-quote+json", "background-check",
	va_rats_tpm_verify},
};

/* 1 if v (borrowed) is an array of hex digests of 20 to 64 bytes. */
static int
hex_digests(const json_t *v)
{
	const json_t *e;
	const char *s;
	size_t i, n;

	if (!json_is_array(v))
		return 0;
	json_array_foreach(v, i, e)
	{
		s = json_string_value(e);
		n = s ? strlen(s) : 0;
		if (n < 40 || n > 128 || n % 2 != 0 ||
		    strspn(s, "0123456789abcdefABCDEF") != n)
			return 0;
	}
	return 1;
}

/* See va_int.h. */
int
va_rats_config_check(const json_t *o, char *err, size_t errlen)
{
	const char *k;
	const json_t *v;
	int64_t ms;

	if (o == NULL)
		return 0;
	if (!json_is_object(o)) {
		snprintf(err, errlen, "rats: expected an object");
		return -1;
	}
	json_object_foreach((json_t *)o, k, v)
	{
		if (strcmp(k, "verifier_keys") == 0 && json_is_string(v))
			continue;
		if (strcmp(k, "accept_warning") == 0 && json_is_boolean(v))
			continue;
		if (strcmp(k, "tpm_pcr_digests") == 0 && hex_digests(v))
			continue;
		if (strcmp(k, "max_age") == 0 && json_is_string(v) &&
		    duration_parse_ms(json_string_value(v), &ms) == 0 && ms > 0)
			continue;
		snprintf(err, errlen,
		    "rats.%.64s: unknown key or bad value (verifier_keys: a PEM "
		    "file, max_age: a duration, accept_warning: a boolean, "
		    "tpm_pcr_digests: hex digests)",
		    k);
		return -1;
	}
	return 0;
}

/* Loads every public key of PEM file path into r. 0, or -1 with err. */
static int
load_keys(struct va_rats *r, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	struct problem *p = NULL;
	struct jose_policy pol;
	struct jwk *k;
	EVP_PKEY *pk;
	json_t *j;

	jose_policy_permissive(&pol);
	if (f == NULL) {
		snprintf(err, errlen, "rats.verifier_keys: cannot open %s",
		    path);
		return -1;
	}
	while ((pk = PEM_read_PUBKEY(f, NULL, NULL, NULL)) != NULL) {
		j = jwk_from_pkey(pk);
		k = NULL;
		if (j == NULL || jwk_parse(j, &pol, &k, &p) != 0) {
			snprintf(err, errlen,
			    "rats.verifier_keys: key %zu of %s is not an RSA, "
			    "EC or Ed25519 signing key",
			    r->n_keys + 1, path);
			problem_free(p);
			json_decref(j);
			EVP_PKEY_free(pk);
			fclose(f);
			return -1;
		}
		json_decref(j);
		EVP_PKEY_free(pk);
		r->keys = xrealloc(r->keys, (r->n_keys + 1) * sizeof(*r->keys));
		r->keys[r->n_keys++] = k;
	}
	ERR_clear_error();
	fclose(f);
	if (r->n_keys == 0) {
		snprintf(err, errlen,
		    "rats.verifier_keys: no PUBLIC KEY in %s", path);
		return -1;
	}
	return 0;
}

/* See va_int.h. */
struct va_rats *
va_rats_new(const json_t *o, const struct va_attest *attest, char *err,
    size_t errlen)
{
	struct va_rats *r = xcalloc(1, sizeof(*r));
	const char *path, *age;
	const json_t *d;
	size_t i;
	char *h;

	r->max_age_ms = 5 * 60 * 1000;
	if (va_rats_config_check(o, err, errlen) != 0)
		goto fail;
	age = json_string_value(json_object_get(o, "max_age"));
	if (age != NULL)
		(void)duration_parse_ms(age, &r->max_age_ms);
	r->accept_warning = json_is_true(json_object_get(o, "accept_warning"));
	r->attest = attest;
	r->pcr_digests = json_array();
	json_array_foreach(json_object_get(o, "tpm_pcr_digests"), i, d)
	{
		h = xstrdup(json_string_value(d));
		for (char *c = h; *c; c++)
			if (*c >= 'A' && *c <= 'F')
				*c = (char)(*c - 'A' + 'a');
		json_array_append_new(r->pcr_digests, json_string(h));
		free(h);
	}
	path = json_string_value(json_object_get(o, "verifier_keys"));
	if (path != NULL && load_keys(r, path, err, errlen) != 0)
		goto fail;
	return r;
fail:
	va_rats_free(r);
	return NULL;
}

/* See va_int.h. */
void
va_rats_free(struct va_rats *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->n_keys; i++)
		jwk_free(r->keys[i]);
	free(r->keys);
	json_decref(r->pcr_digests);
	free(r);
}

/* See va_int.h. */
struct jwk *const *
va_rats_keys(const struct va_rats *r, size_t *n)
{
	*n = r->n_keys;
	return r->keys;
}

/* See va_int.h. */
int64_t
va_rats_max_age_ms(const struct va_rats *r)
{
	return r->max_age_ms;
}

/* See va_int.h. */
const struct va_attest *
va_rats_attest(const struct va_rats *r)
{
	return r->attest;
}

/* See va_int.h. */
int
va_rats_pcr_digest_known(const struct va_rats *r, const char *hex)
{
	const json_t *d;
	size_t i;

	if (json_array_size(r->pcr_digests) == 0)
		return -1;
	json_array_foreach(r->pcr_digests, i, d)
	{
		if (strcmp(json_string_value(d), hex) == 0)
			return 1;
	}
	return 0;
}

/* See va_int.h. */
int
va_rats_status_ok(const struct va_rats *r, const char *status)
{
	return strcmp(status, "affirming") == 0 ||
	    (r->accept_warning && strcmp(status, "warning") == 0);
}

/* The verifier of media type mt (parameters after ';' ignored), or NULL. */
static const struct va_rats_verifier *
find_verifier(const char *mt)
{
	size_t i, n = strcspn(mt, "; ");

	for (i = 0; i < sizeof(verifiers) / sizeof(verifiers[0]); i++)
		if (strlen(verifiers[i].media_type) == n &&
		    strncasecmp(mt, verifiers[i].media_type, n) == 0)
			return &verifiers[i];
	return NULL;
}

/* Finishes j with a problem of type t: "remote-attest-01: why". */
static void
rats_fail(struct va_job *j, enum prob_type t, const char *why)
{
	va_job_finish(
	    j, problem_new(t, "remote-attest-01 (draft-ietf-acme-rats): %s",
		   why));
}

/*
 * One CMW record rec (borrowed) labelled label: verified and appraised
 * into a record entry of j. 0, or -1 with j finished.
 */
static int
one_record(struct va_job *j, const char *label, const json_t *rec)
{
	const struct va_rats_verifier *v;
	struct va_rats_verdict verdict;
	const char *mt, *b64;
	uint8_t *buf = NULL;
	size_t len = 0;
	char err[300], why[400];
	int rc = -1;

	mt = json_string_value(json_array_get(rec, 0));
	b64 = json_string_value(json_array_get(rec, 1));
	if (!json_is_array(rec) || json_array_size(rec) < 2 ||
	    json_array_size(rec) > 3 || b64 == NULL ||
	    (json_array_size(rec) == 3 &&
		!json_is_integer(json_array_get(rec, 2)))) {
		snprintf(why, sizeof(why),
		    "CMW \"%.64s\" is not a JSON CMW record [type, "
		    "base64url value(, indicator)] (draft-ietf-rats-msg-wrap "
		    "§5.2)",
		    label);
		rats_fail(j, PROB_MALFORMED, why);
		return -1;
	}
	if (mt == NULL) {
		snprintf(why, sizeof(why),
		    "CMW \"%.64s\": only media-type record types are "
		    "accepted, not CoAP content-formats",
		    label);
		rats_fail(j, PROB_BAD_ATTESTATION_STATEMENT, why);
		return -1;
	}
	if (strlen(b64) > (RATS_MAX_VALUE / 3 + 1) * 4 ||
	    b64url_decode(b64, strlen(b64), &buf, &len) != 0) {
		snprintf(why, sizeof(why),
		    "CMW \"%.64s\": the value is not base64url or is larger "
		    "than %d bytes",
		    label, RATS_MAX_VALUE);
		rats_fail(j, PROB_MALFORMED, why);
		return -1;
	}
	if ((v = find_verifier(mt)) == NULL) {
		snprintf(why, sizeof(why),
		    "CMW \"%.64s\": no verifier for \"%.80s\" (accepted: "
		    "application/eat+jwt, "
		    "application/vnd.anvil.tpm2-quote+json)",
		    label, mt);
		rats_fail(j, PROB_BAD_ATTESTATION_STATEMENT, why);
		goto out;
	}
	memset(&verdict, 0, sizeof(verdict));
	/* §2.2.1: "freshness_nonce ... MUST be included in the Attestation
	 * Results to provide freshness" (it is the challenge token) */
	if (v->verify(j->va->rats, buf, len, j->token, j->ident, &verdict, err,
		sizeof(err)) != 0) {
		snprintf(why, sizeof(why), "CMW \"%.64s\" (%s): %s", label,
		    v->media_type, err);
		rats_fail(j, PROB_BAD_ATTESTATION_STATEMENT, why);
		goto out;
	}
	if (!va_rats_status_ok(j->va->rats, verdict.status)) {
		snprintf(why, sizeof(why),
		    "CMW \"%.64s\": the appraisal is \"%s\"%s%s, not "
		    "\"affirming\"%s",
		    label, verdict.status, verdict.where[0] ? " for " : "",
		    verdict.where,
		    j->va->rats->accept_warning ? " or \"warning\"" : "");
		rats_fail(j, PROB_BAD_ATTESTATION_STATEMENT, why);
		goto out;
	}
	json_array_append_new(j->record,
	    json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "format", v->media_type,
		"model", v->model, "cmw_label", label, "verifier",
		verdict.verifier, "status", verdict.status, "hint",
		j->ident));
	rc = 0;
out:
	free(buf);
	return rc;
}

/* See va_int.h. */
void
va_remoteattest01_start(struct va_job *j)
{
	const json_t *p = j->payload, *rec;
	const char *label;
	size_t n = 0;

	if (j->va->rats == NULL) {
		rats_fail(j, PROB_BAD_ATTESTATION_STATEMENT,
		    "this server has no trusted verifier (va.json rats)");
		return;
	}
	json_object_foreach((json_t *)p, label, rec)
	{
		if (strcmp(label, "__cmwc_t") == 0)
			continue; /* the collection's type: informational */
		if (++n > RATS_MAX_RECORDS) {
			rats_fail(j, PROB_MALFORMED,
			    "the CMW collection has more than 8 records");
			return;
		}
		if (one_record(j, label, rec) != 0)
			return;
	}
	if (n == 0) {
		/* §2.2.2: "The HTTP POST body to the challenge URL MUST be
		 * a raw JSON or CBOR CMW" */
		rats_fail(j, PROB_MALFORMED,
		    "the response is not a JSON CMW collection with at least "
		    "one record (§2.2.2)");
		return;
	}
	va_job_finish(j, NULL);
}
