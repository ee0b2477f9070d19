/*
 * jws.c - authenticating an ACME POST (RFC 8555 §6.2-6.5), in the order of
 * docs/acme.md "JWS checks".
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>

#include "wfe/wfe_int.h"

static int
reject(struct wfe_req *r, const char *reason, struct problem *p)
{
	char labels[96];

	snprintf(labels, sizeof(labels), "reason=\"%s\"", reason);
	metrics_counter_add(r->w->metrics, "anvil_wfe_jws_rejections_total",
	    "JWS requests refused, by reason", labels, 1);
	wfe_reply_problem(r, p);
	return -1;
}

/*
 * Account id from a kid URL we issued. The accepted bases are this server's
 * own: the configured base_url, and r->base, which is the Host the client
 * used only when that Host is base_url's or one of cfg->hosts (never an
 * arbitrary Host header: issue 19). -1 if not.
 */
static int
kid_account_id(const struct wfe_req *r, const char *kid, int64_t *id)
{
	const char *bases[2] = {r->base, r->w->cfg->base_url};
	size_t i, bl;
	const char *rest;

	for (i = 0; i < 2; i++) {
		if (bases[i] == NULL)
			continue;
		bl = strlen(bases[i]);
		if (strncmp(kid, bases[i], bl) != 0)
			continue;
		rest = kid + bl;
		if (strncmp(rest, "/acme/acct/", 11) != 0)
			continue;
		rest += 11;
		if (wfe_parse_id(rest, strlen(rest), id) == 0)
			return 0;
	}
	return -1;
}

/*
 * Loads account id and its key into r. The status is not looked at here:
 * it is told only to whoever proves the key (account_usable, after the
 * signature is verified), so an unsigned request learns nothing about it.
 */
static int
load_account(struct wfe_req *r, int64_t id)
{
	json_t *params = NULL, *acct = NULL;
	struct problem *p = NULL;
	uint64_t gen = 0;
	int rc = -1;

	acct = wfe_acct_cache_get(r->w->accounts, id, time_mono_ms(), &gen);
	if (r->w->accounts != NULL)
		metrics_counter_add(r->w->metrics,
		    "anvil_wfe_account_cache_total",
		    "kid lookups by result (hit: no sa.get_account)",
		    acct != NULL ? "result=\"hit\"" : "result=\"miss\"", 1);
	if (acct != NULL)
		goto parse;
	params = json_pack("{sI}", "id", (json_int_t)id);
	if (wfe_rpc_raw(r, r->w->sa, RPC_SA_GET_ACCOUNT, params, &acct, &p) !=
	    0) {
		if (p->type == PROB_NOT_FOUND) {
			problem_free(p);
			p = problem_new(PROB_ACCOUNT_DOES_NOT_EXIST,
			    "no account %lld for this key id", (long long)id);
			reject(r, "account_does_not_exist", p);
		} else {
			wfe_reply_problem(r, p);
		}
		goto out;
	}
	wfe_acct_cache_put(r->w->accounts, id, gen, acct, time_mono_ms());
parse:
	if (wfe_acct_cache_key(r->w->accounts, json_object_get(acct, "key"),
		&r->acct_key, &p) != 0) {
		problem_free(p);
		log_bug(
		    "stored key of account %lld does not parse", (long long)id);
		wfe_reply_prob(r, PROB_SERVER_INTERNAL, "account key unusable");
		goto out;
	}
	r->account = acct;
	acct = NULL;
	r->account_id = id;
	rc = 0;
out:
	json_decref(params);
	json_decref(acct);
	return rc;
}

/* 0 if the (verified) account of r is valid, else replies and -1. */
static int
account_usable(struct wfe_req *r)
{
	const char *status;

	struct problem *p;

	status = json_string_value(json_object_get(r->account, "status"));
	if (status == NULL || strcmp(status, "valid") != 0) {
		/* RFC 8555 §7.3.6: a POST or POST-as-GET from a deactivated
		 * account gets 401 with type unauthorized. */
		p = problem_new(PROB_UNAUTHORIZED, "account is %s",
		    status ? status : "not valid");
		p->status = 401;
		return reject(r, "account_not_valid", p);
	}
	return 0;
}

int
wfe_jws_auth(struct wfe_req *r, enum wfe_key_mode mode)
{
	struct wfe *w = r->w;
	struct problem *p = NULL;
	const char *ct;
	const struct jwk *key;
	enum wfe_nonce_result nr;
	int64_t id = 0;

	ct = MHD_lookup_connection_value(
	    r->conn, MHD_HEADER_KIND, "Content-Type");
	if (ct == NULL || strcasecmp(ct, "application/jose+json") != 0) {
		p = problem_new(PROB_MALFORMED,
		    "Content-Type must be application/jose+json");
		p->status = 415;
		return reject(r, "content_type", p);
	}
	if (MHD_lookup_connection_value(
		r->conn, MHD_HEADER_KIND, "Replay-Nonce") != NULL)
		return reject(r, "replay_nonce_header",
		    problem_new(PROB_MALFORMED,
			"a request must not carry a Replay-Nonce "
			"header; put the nonce in the protected header"));
	if (r->body == NULL || r->body_len == 0)
		return reject(r, "no_body",
		    problem_new(PROB_MALFORMED,
			"request body is empty; expected a flattened JWS"));
	if (jws_parse(r->body, r->body_len, &w->policy, &r->jws, &p) != 0)
		return reject(r, prob_type_name(p->type), p);
	if (r->jws->kid != NULL && mode == WFE_KEY_JWK)
		return reject(r, "kid_not_allowed",
		    problem_new(PROB_MALFORMED,
			"this request must embed a \"jwk\", not a \"kid\""));
	if (r->jws->jwk != NULL && mode == WFE_KEY_KID)
		return reject(r, "jwk_not_allowed",
		    problem_new(PROB_MALFORMED,
			"this request must carry the account URL as \"kid\", "
			"not an embedded \"jwk\""));
	if (r->jws->kid != NULL) {
		if (kid_account_id(r, r->jws->kid, &id) != 0)
			return reject(r, "bad_kid",
			    problem_new(PROB_ACCOUNT_DOES_NOT_EXIST,
				"\"kid\" is not an account URL of this "
				"server"));
		if (load_account(r, id) != 0)
			return -1;
		key = r->acct_key;
	} else {
		key = r->jws->jwk;
	}
	if (jws_verify(r->jws, key, &p) != 0)
		return reject(r, "signature", p);
	if (r->account != NULL && account_usable(r) != 0)
		return -1;
	if (w->cfg->nonce_reject_percent > 0) {
		uint8_t b[4];
		uint32_t v;

		/* 32 random bits: "% 100" of one byte would favour 0..55. */
		random_bytes(b, sizeof(b));
		v = ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) |
		    ((uint32_t)b[2] << 8) | b[3];
		if ((int)(v % 100) < w->cfg->nonce_reject_percent)
			return reject(r, "nonce_test_reject",
			    problem_new(PROB_BAD_NONCE,
				"nonce rejected on purpose "
				"(test.nonce_reject_percent)"));
	}
	nr = wfe_nonce_redeem(w->nonces, r->jws->nonce, time_now_ms());
	if (nr != WFE_NONCE_OK) {
		char labels[64];

		snprintf(labels, sizeof(labels), "result=\"rejected_%s\"",
		    wfe_nonce_result_name(nr));
		metrics_counter_add(w->metrics, "anvil_wfe_nonces_total",
		    "Nonces by result", labels, 1);
		return reject(r, "bad_nonce",
		    problem_new(PROB_BAD_NONCE,
			"JWS has an invalid anti-replay nonce (%s); retry with "
			"the nonce of this response",
			wfe_nonce_result_name(nr)));
	}
	metrics_counter_add(w->metrics, "anvil_wfe_nonces_total",
	    "Nonces by result", "result=\"redeemed\"", 1);
	/* RFC 8555 §6.4: the url binds the request to this server and
	 * resource. r->base is the scheme and Host the client used when that
	 * Host is base_url's or a listed alias, else base_url: never a Host
	 * header we do not own. */
	if (!wfe_url_check(r->jws->url, r->base, r->uri))
		return reject(r, "url",
		    problem_new(PROB_UNAUTHORIZED,
			"JWS \"url\" header is %s but this request is for %s%s",
			r->jws->url, r->base, r->uri));
	return 0;
}

/* See wfe_int.h. */
int
wfe_kid_resource(
    struct wfe_req *r, const char *tail, const char *what, int64_t *id)
{
	if (wfe_parse_id(tail, strlen(tail), id) != 0) {
		wfe_reply_prob(r, PROB_NOT_FOUND, "no such %s", what);
		return -1;
	}
	return wfe_jws_auth(r, WFE_KEY_KID);
}

/* See wfe_int.h. */
int
wfe_post_as_get_only(struct wfe_req *r, const char *detail)
{
	if (wfe_jws_auth(r, WFE_KEY_KID) != 0)
		return -1;
	if (!r->jws->is_post_as_get) {
		wfe_reply_prob(r, PROB_MALFORMED, "%s", detail);
		return -1;
	}
	return 0;
}

int
wfe_jws_payload(struct wfe_req *r, json_t **out)
{
	struct problem *p = NULL;

	*out = NULL;
	if (r->jws->is_post_as_get) {
		wfe_reply_prob(r, PROB_MALFORMED,
		    "this request needs a JSON object payload, not an empty "
		    "POST-as-GET payload");
		return -1;
	}
	if (jws_payload_json(r->jws, out, &p) != 0) {
		wfe_reply_problem(r, p);
		return -1;
	}
	return 0;
}
