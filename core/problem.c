/* problem.c - the one registry of ACME problem types and their JSON forms. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#define ACME_URN "urn:ietf:params:acme:error:"

struct prob_def {
	const char *name; /* short name: RPC form */
	const char *urn;  /* ACME_URN + the URN's name */
	int status;
};

/* P: the type's own URN; P_AS: a type without one of its own (RPC only)
 * answers clients with the URN of another. */
#define P(e, n, st) [e] = {n, ACME_URN n, st}
#define P_AS(e, n, as, st) [e] = {n, ACME_URN as, st}
static const struct prob_def prob_defs[PROB__MAX] = {
    P(PROB_ACCOUNT_DOES_NOT_EXIST, "accountDoesNotExist", 400),
    P(PROB_ALREADY_REPLACED, "alreadyReplaced", 409),
    P(PROB_ALREADY_REVOKED, "alreadyRevoked", 400),
    P(PROB_BAD_CSR, "badCSR", 400),
    P(PROB_BAD_NONCE, "badNonce", 400),
    P(PROB_BAD_PUBLIC_KEY, "badPublicKey", 400),
    P(PROB_BAD_REVOCATION_REASON, "badRevocationReason", 400),
    P(PROB_BAD_SIGNATURE_ALGORITHM, "badSignatureAlgorithm", 400),
    P(PROB_CAA, "caa", 403),
    P(PROB_COMPOUND, "compound", 400),
    P(PROB_CONNECTION, "connection", 400),
    P(PROB_DNS, "dns", 400),
    P(PROB_EXTERNAL_ACCOUNT_REQUIRED, "externalAccountRequired", 400),
    P(PROB_INCORRECT_RESPONSE, "incorrectResponse", 403),
    P(PROB_INVALID_CONTACT, "invalidContact", 400),
    P(PROB_INVALID_PROFILE, "invalidProfile", 400),
    P(PROB_MALFORMED, "malformed", 400),
    P(PROB_ORDER_NOT_READY, "orderNotReady", 403),
    P(PROB_RATE_LIMITED, "rateLimited", 429),
    P(PROB_REJECTED_IDENTIFIER, "rejectedIdentifier", 400),
    P(PROB_SERVER_INTERNAL, "serverInternal", 500),
    P(PROB_TLS, "tls", 400),
    P(PROB_UNAUTHORIZED, "unauthorized", 403),
    P(PROB_UNSUPPORTED_CONTACT, "unsupportedContact", 400),
    P(PROB_UNSUPPORTED_IDENTIFIER, "unsupportedIdentifier", 400),
    P(PROB_USER_ACTION_REQUIRED, "userActionRequired", 403),
    P_AS(PROB_CONFLICT, "conflict", "malformed", 409),
    P_AS(PROB_NOT_FOUND, "notFound", "malformed", 404),
    P_AS(PROB_METHOD_NOT_ALLOWED, "methodNotAllowed", "malformed", 405),
    P_AS(PROB_UNAVAILABLE, "unavailable", "serverInternal", 503),
    /* RFC 9799 §6.4.1: in-band CAA is required but was not provided */
    P(PROB_ONION_CAA_REQUIRED, "onionCAARequired", 400),
    P(PROB_BAD_ATTESTATION_STATEMENT, "badAttestationStatement", 400),
    /* RFC 8739 §3.1.2, §3.2 (STAR) */
    P(PROB_AUTO_RENEWAL_CANCELED, "autoRenewalCanceled", 403),
    P(PROB_AUTO_RENEWAL_EXPIRED, "autoRenewalExpired", 403),
    P(PROB_AUTO_RENEWAL_CANCELLATION_INVALID, "autoRenewalCancellationInvalid",
	400),
    P(PROB_AUTO_RENEWAL_REVOCATION_NOT_SUPPORTED,
	"autoRenewalRevocationNotSupported", 403),
    /* RFC 9115 §2.3.1.3 */
    P(PROB_UNKNOWN_DELEGATION, "unknownDelegation", 403),
};
#undef P
#undef P_AS

static int
prob_valid(enum prob_type t)
{
	return (int)t >= 0 && t < PROB__MAX;
}

const char *
prob_type_name(enum prob_type t)
{
	return prob_valid(t) ? prob_defs[t].name : "serverInternal";
}

const char *
prob_type_urn(enum prob_type t)
{
	return prob_valid(t) ? prob_defs[t].urn : ACME_URN "serverInternal";
}

int
prob_type_status(enum prob_type t)
{
	return prob_valid(t) ? prob_defs[t].status : 500;
}

int
prob_type_parse(const char *s, enum prob_type *out)
{
	int i;

	if (s == NULL)
		return -1;
	for (i = 0; i < PROB__MAX; i++) {
		if (strcmp(s, prob_defs[i].name) == 0) {
			*out = (enum prob_type)i;
			return 0;
		}
	}
	if (strncmp(s, ACME_URN, strlen(ACME_URN)) == 0) {
		s += strlen(ACME_URN);
		for (i = 0; i < PROB__MAX; i++) {
			/* only a type's own URN names it */
			if (strcmp(s, prob_defs[i].name) == 0 &&
			    strcmp(prob_defs[i].urn + strlen(ACME_URN), s) ==
				0) {
				*out = (enum prob_type)i;
				return 0;
			}
		}
	}
	return -1;
}

struct problem *
problem_new(enum prob_type t, const char *fmt, ...)
{
	struct problem *p = xcalloc(1, sizeof(*p));
	va_list ap;

	p->type = prob_valid(t) ? t : PROB_SERVER_INTERNAL;
	p->status = prob_type_status(p->type);
	if (fmt != NULL) {
		char *d = NULL;

		va_start(ap, fmt);
		if (vasprintf(&d, fmt, ap) < 0)
			d = NULL;
		va_end(ap);
		p->detail = d;
	}
	return p;
}

void
problem_free(struct problem *p)
{
	if (p == NULL)
		return;
	free(p->detail);
	json_decref(p->identifier);
	json_decref(p->subproblems);
	free(p);
}

void
problem_add_sub(struct problem *p, struct problem *sub, const char *ident_type,
    const char *ident_value)
{
	json_t *sj;

	if (p == NULL || sub == NULL)
		return;
	if (ident_type != NULL && ident_value != NULL) {
		json_decref(sub->identifier);
		sub->identifier = json_pack(
		    "{s:s, s:s}", "type", ident_type, "value", ident_value);
	}
	if (p->subproblems == NULL)
		p->subproblems = json_array();
	/* Subproblems are kept in RPC form; problem_to_json converts. */
	sj = problem_to_rpc_json(sub);
	json_array_append_new(p->subproblems, sj);
	problem_free(sub);
}

struct problem *
problem_dup(const struct problem *p)
{
	struct problem *q;

	if (p == NULL)
		return NULL;
	q = xcalloc(1, sizeof(*q));
	q->type = p->type;
	q->status = p->status;
	q->detail = p->detail ? xstrdup(p->detail) : NULL;
	q->identifier = p->identifier ? json_deep_copy(p->identifier) : NULL;
	q->subproblems = p->subproblems ? json_deep_copy(p->subproblems) : NULL;
	q->retry_after = p->retry_after;
	return q;
}

/*
 * RPC form: everything. ACME form (RFC 7807 + RFC 8555 §6.7.1): "The
 * "identifier" field MUST NOT be present at the top level in ACME problem
 * documents", so only subproblems (depth > 0) carry it.
 */
static json_t *
problem_json(const struct problem *p, int rpc_form, int depth)
{
	json_t *j = json_object();
	size_t i;
	json_t *sub;

	json_object_set_new(j, "type",
	    json_string(
		rpc_form ? prob_type_name(p->type) : prob_type_urn(p->type)));
	if (p->detail != NULL)
		json_object_set_new(j, "detail", json_string(p->detail));
	json_object_set_new(j, "status",
	    json_integer(p->status ? p->status : prob_type_status(p->type)));
	if (p->identifier != NULL && (rpc_form || depth > 0))
		json_object_set(j, "identifier", p->identifier);
	if (p->subproblems != NULL && json_array_size(p->subproblems) > 0) {
		json_t *arr = json_array();

		json_array_foreach(p->subproblems, i, sub)
		{
			struct problem *sp = problem_from_json(sub);

			json_array_append_new(
			    arr, problem_json(sp, rpc_form, depth + 1));
			problem_free(sp);
		}
		json_object_set_new(j, "subproblems", arr);
	}
	if (rpc_form && p->retry_after > 0)
		json_object_set_new(
		    j, "retry_after", json_integer(p->retry_after));
	return j;
}

json_t *
problem_to_json(const struct problem *p)
{
	return problem_json(p, 0, 0);
}

json_t *
problem_to_rpc_json(const struct problem *p)
{
	return problem_json(p, 1, 0);
}

struct problem *
problem_from_json(const json_t *j)
{
	struct problem *p = xcalloc(1, sizeof(*p));
	const char *type = json_string_value(json_object_get(j, "type"));
	const char *detail = json_string_value(json_object_get(j, "detail"));
	json_t *status = json_object_get(j, "status");
	json_t *ident = json_object_get(j, "identifier");
	json_t *subs = json_object_get(j, "subproblems");
	json_t *ra = json_object_get(j, "retry_after");
	enum prob_type t;

	if (prob_type_parse(type, &t) != 0)
		t = PROB_SERVER_INTERNAL;
	p->type = t;
	p->status = prob_type_status(t);
	if (json_is_integer(status) && json_integer_value(status) >= 100 &&
	    json_integer_value(status) <= 599)
		p->status = (int)json_integer_value(status);
	if (detail != NULL)
		p->detail = xstrdup(detail);
	if (json_is_object(ident))
		p->identifier = json_deep_copy(ident);
	if (json_is_array(subs) && json_array_size(subs) > 0) {
		size_t i;
		json_t *s;

		p->subproblems = json_array();
		/* Normalise each subproblem to the RPC form. */
		json_array_foreach(subs, i, s)
		{
			struct problem *sp;

			if (!json_is_object(s))
				continue;
			sp = problem_from_json(s);
			json_array_append_new(
			    p->subproblems, problem_to_rpc_json(sp));
			problem_free(sp);
		}
	}
	if (json_is_integer(ra) && json_integer_value(ra) > 0 &&
	    json_integer_value(ra) < 86400 * 365)
		p->retry_after = (int)json_integer_value(ra);
	return p;
}
