/*
 * rpcjson.c - va.validate / va.check_caa in the JSON shapes of
 * docs/rpc-methods.md. Bad params are a malformed problem; a failed
 * validation is a normal result.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "va/va_int.h"

static const char *
str_member(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* Milliseconds left before deadline_ms (0 = none): 0 for no limit, -1
 * when it has already passed. */
static int64_t
time_left(int64_t deadline_ms)
{
	int64_t left;

	if (deadline_ms <= 0)
		return 0;
	left = deadline_ms - time_now_ms() - 50;
	return left > 0 ? left : -1;
}

static int
parse_ident(const json_t *params, enum ident_type *t, const char **value,
    int *wildcard, struct problem **prob)
{
	const json_t *id = json_object_get(params, "identifier");
	const json_t *w = json_object_get(params, "wildcard");

	if (!json_is_object(id) || str_member(id, "type") == NULL ||
	    str_member(id, "value") == NULL) {
		*prob = problem_new(PROB_MALFORMED,
		    "identifier: expected "
		    "{\"type\",\"value\"}");
		return -1;
	}
	if (ident_type_parse(str_member(id, "type"), t) != 0) {
		*prob = problem_new(PROB_MALFORMED,
		    "identifier.type: "
		    "unsupported \"%s\"",
		    str_member(id, "type"));
		return -1;
	}
	*value = str_member(id, "value");
	if (w != NULL && !json_is_boolean(w) && !json_is_null(w)) {
		*prob = problem_new(PROB_MALFORMED,
		    "wildcard: expected a "
		    "boolean");
		return -1;
	}
	*wildcard = json_is_true(w);
	return 0;
}

/*
 * The primary passed: the remote perspectives must corroborate (BR
 * 3.2.2.9). Tags the primary's own hops with its perspective, appends the
 * remotes' entries to res->record and turns res invalid (with the
 * corroboration problem) when the quorum is not met.
 */
static void
corroborate_validation(struct va *va, const json_t *params,
    const struct va_request *req, const char *request_id,
    int64_t deadline_ms, struct va_result *res)
{
	struct problem *p = NULL;
	size_t i;
	json_t *hop;

	if (!json_is_array(res->record)) {
		json_decref(res->record);
		res->record = json_array();
	}
	json_array_foreach(res->record, i, hop)
	{
		if (json_is_object(hop))
			json_object_set_new(hop, "perspective",
			    json_string(va->cfg->mpic_perspective));
	}
	if (va_mpic_corroborate(va->mpic, 0, params,
		ident_type_name(req->ident_type), req->ident_value,
		request_id, deadline_ms, res->record, &p) != 0) {
		res->valid = 0;
		problem_free(res->prob);
		res->prob = p;
	}
}

int
va_validate_json(struct va *va, const json_t *params, const char *request_id,
    int64_t deadline_ms, json_t **result, struct problem **prob)
{
	struct va_request req;
	struct va_result res;
	const json_t *chal = json_object_get(params, "challenge");
	const json_t *caa = json_object_get(params, "check_caa");
	const struct chal_info *ci;
	int wildcard = 0;

	*result = NULL;
	*prob = NULL;
	memset(&req, 0, sizeof(req));
	if (parse_ident(params, &req.ident_type, &req.ident_value, &wildcard,
		prob) != 0)
		return -1;
	req.wildcard = wildcard;
	if (!json_is_object(chal) || str_member(chal, "token") == NULL ||
	    (ci = chal_lookup(str_member(chal, "type"))) == NULL) {
		*prob = problem_new(PROB_MALFORMED,
		    "challenge: expected {\"type\": a known challenge type, "
		    "\"token\"}");
		return -1;
	}
	req.challenge = ci->type;
	req.token = str_member(chal, "token");
	req.key_authorization = str_member(params, "key_authorization");
	if (req.key_authorization == NULL) {
		*prob = problem_new(PROB_MALFORMED,
		    "key_authorization: "
		    "required string");
		return -1;
	}
	req.account_uri = str_member(params, "account_uri");
	req.persist = json_object_get(params, "persist");
	req.payload = json_object_get(params, "payload");
	if (caa != NULL && !json_is_boolean(caa)) {
		*prob = problem_new(PROB_MALFORMED,
		    "check_caa: expected a "
		    "boolean");
		return -1;
	}
	req.check_caa = json_is_true(caa);
	req.request_id = request_id;
	req.timeout_ms = time_left(deadline_ms);
	if (req.timeout_ms < 0) {
		*prob = problem_new(PROB_UNAVAILABLE,
		    "deadline already "
		    "passed");
		return -1;
	}
	if (va_validate(va, &req, &res) != 0) {
		*prob = res.prob;
		res.prob = NULL;
		va_result_clear(&res);
		return -1;
	}
	/* onion-csr-01 and in-band onion CAA look at nothing on the network,
	 * and email-reply-00 proves control of a mailbox the MTA delivers to
	 * this VA, and bp-nodeid-00 goes over the bundle routes of this VA
	 * (RFC 9891 §4.4 leaves multi-perspective to policy): there is no
	 * view for other perspectives to corroborate */
	if (res.valid && va->mpic != NULL && req.challenge != CHAL_ONIONCSR01 &&
	    req.challenge != CHAL_EMAILREPLY00 &&
	    req.challenge != CHAL_BPNODEID00)
		corroborate_validation(va, params, &req, request_id,
		    deadline_ms, &res);
	*result = json_pack("{s:s,s:O}", "status",
	    res.valid ? "valid" : "invalid", "validation_record", res.record);
	if (!res.valid && res.prob != NULL)
		json_object_set_new(
		    *result, "error", problem_to_rpc_json(res.prob));
	va_result_clear(&res);
	return 0;
}

int
va_check_caa_json(struct va *va, const json_t *params, const char *request_id,
    int64_t deadline_ms, json_t **result, struct problem **prob)
{
	int64_t left = time_left(deadline_ms);

	enum ident_type t;
	const char *value, *method;
	struct problem *p = NULL;
	json_t *perspectives;
	int wildcard = 0, rc, onion;

	*result = NULL;
	*prob = NULL;
	if (parse_ident(params, &t, &value, &wildcard, prob) != 0)
		return -1;
	method = str_member(params, "validation_method");
	if (left < 0) {
		*prob = problem_new(PROB_UNAVAILABLE,
		    "deadline already "
		    "passed");
		return -1;
	}
	onion = t == IDENT_DNS && ident_onion_name(value);
	if (onion)
		/* RFC 9799 §6.1: no CAA lookup in the DNS for a .onion name;
		 * its record set comes in-band (§6.4) or there is none */
		rc = va_check_onion_caa(va, value,
		    str_member(params, "onion_caa"), wildcard,
		    str_member(params, "account_uri"), method, &p);
	else
		rc = va_check_caa(va, t, value, wildcard, method,
		    str_member(params, "account_uri"), request_id, left, &p);
	if (rc < 0) {
		*prob = p;
		return -1;
	}
	perspectives = NULL;
	if (rc == 1 && va->mpic != NULL && !onion) {
		perspectives = json_array();
		if (va_mpic_corroborate(va->mpic, 1, params,
			ident_type_name(t), value, request_id, deadline_ms,
			perspectives, &p) != 0)
			rc = 0;
	}
	*result = json_pack("{s:b}", "ok", rc == 1);
	if (perspectives != NULL)
		json_object_set_new(*result, "perspectives", perspectives);
	if (rc == 0 && p != NULL)
		json_object_set_new(*result, "error", problem_to_rpc_json(p));
	problem_free(p);
	return 0;
}

/*
 * A remote VA (mpic.role "remote") answers only va.remote_*, a primary
 * only va.validate / va.check_caa: 0, or -1 with *prob (unauthorized).
 */
static int
role_check(struct va *va, int remote_call, struct problem **prob)
{
	if (va->cfg->mpic_is_remote == remote_call)
		return 0;
	*prob = problem_new(PROB_UNAUTHORIZED,
	    remote_call ? "this VA is not a remote perspective (mpic.role "
			  "is \"%s\")"
			: "this VA is the remote perspective \"%s\": it "
			  "answers only va.remote_* calls of a primary VA",
	    remote_call ? va->cfg->mpic_role : va->cfg->mpic_perspective);
	return -1;
}

/* Adds this remote's perspective (and region) to a reply. */
static void
add_perspective(struct va *va, json_t *result)
{
	json_object_set_new(
	    result, "perspective", json_string(va->cfg->mpic_perspective));
	if (va->cfg->mpic_region != NULL)
		json_object_set_new(
		    result, "region", json_string(va->cfg->mpic_region));
}

/*
 * va.validate and va.check_caa, and their va.remote_* twins that only a
 * remote perspective answers (its reply names the perspective).
 */
static int
h_check(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	enum rpc_method_id id = req->contract->id;
	int remote =
	    id == RPC_VA_REMOTE_VALIDATE || id == RPC_VA_REMOTE_CHECK_CAA;
	int (*run)(struct va *, const json_t *, const char *, int64_t,
	    json_t **, struct problem **) =
	    id == RPC_VA_CHECK_CAA || id == RPC_VA_REMOTE_CHECK_CAA
	    ? va_check_caa_json
	    : va_validate_json;

	if (role_check(svc, remote, prob) != 0 ||
	    run(svc, req->params, req->request_id, req->deadline_ms, result,
		prob) != 0)
		return -1;
	if (remote)
		add_perspective(svc, *result);
	return 0;
}

/* va.send_email_challenge (docs/rpc-methods.md): blocking SMTP on this
 * RPC worker thread, never on the VA loop. */
static int
h_send_email_challenge(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	const json_t *id = json_object_get(req->params, "identifier");
	char *msgid = NULL;

	if (role_check(svc, 0, prob) != 0)
		return -1;
	if (str_member(id, "type") == NULL ||
	    strcmp(str_member(id, "type"), "email") != 0 ||
	    str_member(id, "value") == NULL) {
		*prob = problem_new(PROB_MALFORMED,
		    "identifier: expected {\"type\": \"email\", \"value\"}");
		return -1;
	}
	if (va_email_send_challenge(svc, str_member(id, "value"),
		str_member(req->params, "from"),
		str_member(req->params, "token"), req->request_id, &msgid,
		prob) != 0)
		return -1;
	*result = json_pack("{s:s}", "message_id", msgid);
	free(msgid);
	return 0;
}

/* The va.* dispatch table, by registry id (rpc/methods.def). */
static const rpc_handler_fn handlers[RPC_METHOD__MAX] = {
    [RPC_VA_VALIDATE] = h_check,
    [RPC_VA_CHECK_CAA] = h_check,
    [RPC_VA_REMOTE_VALIDATE] = h_check,
    [RPC_VA_REMOTE_CHECK_CAA] = h_check,
    [RPC_VA_SEND_EMAIL_CHALLENGE] = h_send_email_challenge,
};

/* See va.h. */
const rpc_handler_fn *
va_rpc_handlers(void)
{
	return handlers;
}
