/* LIBS: core */
/*
 * fuzz_json_body.c - libFuzzer target over what a request body's payload
 * goes through in core: the JSON parser, jspec_parse with the specs of
 * ACME request payloads (newAccount, newOrder, finalize, revokeCert,
 * account update), the helpers applied to their fields (RFC 3339 times,
 * base64url, identifier normalisation) and problem documents (both forms:
 * a problem parsed from untrusted JSON must survive a round trip through
 * its client and RPC forms with the same type and status).
 *
 *   scripts/fuzz.sh 60 fuzz_json_body
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct body {
	char **contact;
	size_t ncontact;
	int tos;
	int only_existing;
	json_t *eab;
	json_t *identifiers;
	char *not_before;
	char *not_after;
	char *profile;
	char *replaces;
	char *csr;
	char *certificate;
	int64_t reason;
	char *status;
};

#define O(f) offsetof(struct body, f)
#define F(n, t, m) JSPEC_FIELD(struct body, n, t, m)
static const struct jspec new_account_spec[] = {
    JSPEC_STRV(struct body, "contact", contact, ncontact),
    F("termsOfServiceAgreed", JSPEC_BOOL, tos),
    F("onlyReturnExisting", JSPEC_BOOL, only_existing),
    F("externalAccountBinding", JSPEC_JSON, eab), JSPEC_END};
static const struct jspec new_order_spec[] = {
    {"identifiers", JSPEC_JSON, O(identifiers), 1, NULL, 0},
    F("notBefore", JSPEC_STRING, not_before),
    F("notAfter", JSPEC_STRING, not_after), F("profile", JSPEC_STRING, profile),
    F("replaces", JSPEC_STRING, replaces), JSPEC_END};
static const struct jspec finalize_spec[] = {
    {"csr", JSPEC_STRING, O(csr), 1, NULL, 0}, JSPEC_END};
static const struct jspec revoke_spec[] = {
    {"certificate", JSPEC_STRING, O(certificate), 1, NULL, 0},
    F("reason", JSPEC_INT, reason), JSPEC_END};
static const struct jspec update_spec[] = {
    JSPEC_STRV(struct body, "contact", contact, ncontact),
    F("status", JSPEC_STRING, status), JSPEC_END};
#undef F
#undef O

static void
check_b64(const char *s)
{
	uint8_t *out = NULL;
	size_t outlen = 0;
	char *again;

	if (s == NULL || b64url_decode(s, strlen(s), &out, &outlen) != 0)
		return;
	/* Strict decoding: what decodes re-encodes to the same text. */
	again = b64url_encode(out, outlen);
	if (strcmp(again, s) != 0)
		abort();
	free(again);
	free(out);
}

static void
check_time(const char *s)
{
	time_t t;
	char buf[64];

	if (s == NULL || time_parse_rfc3339(s, &t) != 0)
		return;
	(void)time_fmt_rfc3339(t, buf, sizeof(buf));
}

static void
check_identifiers(const json_t *ids)
{
	const json_t *id;
	size_t i;
	char err[128], *n;
	uint8_t raw[16];
	size_t rawlen;

	if (!json_is_array(ids))
		return;
	json_array_foreach(ids, i, id)
	{
		const char *v = json_string_value(json_object_get(id, "value"));

		if (v == NULL || i > 100)
			continue;
		n = ident_dns_normalize(v, 1, err, sizeof(err));
		if (n != NULL) {
			/* Normalising is idempotent. */
			char *n2 = ident_dns_normalize(n, 1, err, sizeof(err));

			if (n2 == NULL || strcmp(n, n2) != 0)
				abort();
			free(n2);
		}
		free(n);
		n = ident_ip_normalize(v, raw, &rawlen, err, sizeof(err));
		if (n != NULL) {
			char *rev = ident_ip_reverse_name(raw, rawlen);

			free(rev);
		}
		free(n);
	}
}

static void
run_spec(const json_t *obj, const struct jspec *spec)
{
	struct body b;
	char err[256];

	memset(&b, 0, sizeof(b));
	if (jspec_parse(obj, spec, &b, err, sizeof(err)) == 0) {
		check_b64(b.csr);
		check_b64(b.certificate);
		check_time(b.not_before);
		check_time(b.not_after);
		check_identifiers(b.identifiers);
	}
	jspec_clear(spec, &b);
}

static void
check_problem(const json_t *j)
{
	struct problem *p = problem_from_json(j), *q, *d;
	json_t *client, *rpc;
	enum prob_type t;

	if (p == NULL)
		abort(); /* never NULL */
	client = problem_to_json(p);
	rpc = problem_to_rpc_json(p);
	if (client == NULL || rpc == NULL)
		abort();
	q = problem_from_json(rpc);
	if (q == NULL || q->type != p->type || q->status != p->status)
		abort();
	d = problem_dup(p);
	if (d == NULL || d->type != p->type)
		abort();
	if (prob_type_parse(prob_type_urn(p->type), &t) != 0)
		abort();
	problem_free(d);
	problem_free(q);
	json_decref(client);
	json_decref(rpc);
	problem_free(p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *obj;

	if (size > 64 * 1024)
		return 0;
	obj = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
	if (obj == NULL)
		return 0;
	if (json_is_object(obj)) {
		run_spec(obj, new_account_spec);
		run_spec(obj, new_order_spec);
		run_spec(obj, finalize_spec);
		run_spec(obj, revoke_spec);
		run_spec(obj, update_spec);
	}
	check_problem(obj);
	json_decref(obj);
	return 0;
}
