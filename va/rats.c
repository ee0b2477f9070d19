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

#include "va/va_int.h"

#define RATS_MAX_RECORDS 8
#define RATS_MAX_VALUE (64 * 1024)

/* The verifiers, by the media type of the message they appraise. */
static const struct va_rats_verifier verifiers[] = {
    {"application/eat+jwt", "passport", va_rats_ear_verify},
    {"application/vnd.anvil.tpm2-quote+json", "background-check",
	va_rats_tpm_verify},
};

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
		    va_rats_status_ok(j->va->rats, "warning") ? " or \"warning\"" : "");
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
