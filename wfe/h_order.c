/*
 * h_order.c - newOrder, order, finalize, newAuthz, authz, challenge
 * (RFC 8555 §7.4-7.5). Every read checks the requester owns the resource;
 * another account gets the same 404 as a missing one.
 */
#include <stdlib.h>
#include <string.h>

#include "wfe/wfe_int.h"

/*
 * An order a read replica may show (wfe_sa_read): one no write changes any
 * more. RFC 8555 §7.1.6: "valid" and "invalid" are final, but only "valid"
 * is taken (a replica's "invalid" may be an expiry it computed while the
 * primary already finalized; nobody polls an invalid order anyway), and
 * not a valid STAR order, which renews and can still be canceled (RFC 8739
 * §3.1.2; "canceled" is final). pending / ready / processing: the client
 * may have just validated or finalized it, and a standby that has not
 * replayed that yet would show the order going backwards.
 */
static int
order_settled(const json_t *order)
{
	const char *st = json_string_value(json_object_get(order, "status"));

	if (st == NULL)
		return 0;
	return (strcmp(st, "valid") == 0 &&
		   json_object_get(order, "star") == NULL) ||
	    strcmp(st, "canceled") == 0;
}

/*
 * Reads an order/authz with `method` and returns it (new ref) when it
 * belongs to the requesting account; else NULL after replying 404. An
 * order may come from the read replica when settled; an authz always from
 * the primary: nearly every authz read is of a pending one (the client
 * polling its validation) or a valid one (which the client may deactivate,
 * RFC 8555 §7.5.2), states a replica may show stale.
 */
static json_t *
get_owned(struct wfe_req *r, enum rpc_method_id method, int64_t id,
    const char *what)
{
	json_t *params = json_pack("{sI}", "id", (json_int_t)id);
	json_t *res = NULL;
	struct problem *p = NULL;
	int rc = method == RPC_SA_GET_ORDER
	    ? wfe_sa_read_raw(r, method, params, order_settled, &res, &p)
	    : wfe_rpc_raw(r, r->w->sa, method, params, &res, &p);

	if (rc != 0) {
		json_decref(params);
		if (p->type == PROB_NOT_FOUND) {
			problem_free(p);
			wfe_reply_prob(r, PROB_NOT_FOUND, "no such %s", what);
		} else {
			wfe_reply_problem(r, p);
		}
		return NULL;
	}
	json_decref(params);
	if (json_integer_value(json_object_get(res, "account_id")) !=
	    r->account_id) {
		log_msg(LOG_LEVEL_INFO, r->rid,
		    "account %lld asked for %s %lld"
		    " of another account",
		    (long long)r->account_id, what, (long long)id);
		json_decref(res);
		wfe_reply_prob(r, PROB_NOT_FOUND, "no such %s", what);
		return NULL;
	}
	return res;
}

/*
 * The object_cache (wfe->objects): the authzs of a newOrder answer are
 * kept for the client's next read of each (RFC 8555 §7.5: it fetches them
 * before anything else), the certificate of a finalize answer for its
 * download (§7.4.2), each for one read within object_cache.ttl, so those
 * reads need no SA round trip (issue 18). A write through this instance
 * (challenge, deactivation) drops the authz; another WFE instance's write
 * is seen here once the entry is read or ttl old.
 */
static void
keep(struct wfe_req *r, char kind, const char *id, json_t *obj)
{
	char k[80];

	snprintf(k, sizeof(k), "%c%s", kind, id);
	takecache_put(r->w->objects, k, obj);
}

/* See wfe_int.h. */
json_t *
wfe_kept(struct wfe_req *r, char kind, const char *id)
{
	char k[80];
	json_t *obj;

	snprintf(k, sizeof(k), "%c%s", kind, id);
	obj = takecache_take(r->w->objects, k);
	if (obj != NULL &&
	    json_integer_value(json_object_get(obj, "account_id")) !=
		r->account_id) {
		json_decref(obj);
		obj = NULL;
	}
	return obj;
}

static json_t *
kept_authz(struct wfe_req *r, int64_t id)
{
	char s[32];

	snprintf(s, sizeof(s), "%lld", (long long)id);
	return wfe_kept(r, 'a', s);
}

/* Keeps the authzs of a newOrder answer (borrowed). */
static void
keep_authzs(struct wfe_req *r, const json_t *order)
{
	const json_t *az;
	char s[32];
	size_t i;

	json_array_foreach(json_object_get(order, "authzs"), i, az)
	{
		snprintf(s, sizeof(s), "%lld",
		    (long long)json_integer_value(json_object_get(az, "id")));
		keep(r, 'a', s, json_deep_copy(az));
	}
}

/* Keeps the certificate of a finalize answer (borrowed; its `issued`
 * member is removed). */
static void
keep_certificate(struct wfe_req *r, json_t *order)
{
	json_t *iss = json_object_get(order, "issued");
	const char *serial = json_string_value(
	    json_object_get(order, "certificate_serial"));

	if (json_is_object(iss) && serial != NULL)
		keep(r, 'c', serial,
		    json_pack("{s:O,s:O,s:O}", "der",
			json_object_get(iss, "der"), "issuer_id",
			json_object_get(iss, "issuer_id"), "account_id",
			json_object_get(order, "account_id")));
	json_object_del(order, "issued");
}

static void
reply_order(struct wfe_req *r, int status, const json_t *order)
{
	const char *st = json_string_value(json_object_get(order, "status"));
	char *u = wfe_url(r, "/acme/order/%lld",
	    (long long)json_integer_value(json_object_get(order, "id")));

	wfe_add_header(r, "Location", "%s", u);
	free(u);
	if (st != NULL && strcmp(st, "processing") == 0) {
		/* The RA's estimate (ra.finalize_order) wins over the config.
		 */
		json_int_t ra_s =
		    json_integer_value(json_object_get(order, "retry_after_s"));

		wfe_add_header(r, "Retry-After", "%lld",
		    ra_s > 0
			? (long long)ra_s
			: (long long)((r->w->cfg->retry_after_order_ms + 999) /
			      1000));
	}
	wfe_reply_json(r, status, wfe_acme_order(r, order));
}

static int
string_member(struct wfe_req *r, const json_t *o, const char *key,
    json_t *params, const char *pkey)
{
	json_t *v = json_object_get(o, key);

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		wfe_reply_prob(
		    r, PROB_MALFORMED, "\"%s\" must be a string", key);
		return -1;
	}
	json_object_set(params, pkey, v);
	return 0;
}

static int
identifier_ok(struct wfe_req *r, const json_t *id, const char *where)
{
	if (!json_is_object(id) ||
	    !json_is_string(json_object_get(id, "type")) ||
	    !json_is_string(json_object_get(id, "value"))) {
		wfe_reply_prob(r, PROB_MALFORMED,
		    "%s must be an object with "
		    "string \"type\" and \"value\"",
		    where);
		return 0;
	}
	return 1;
}

void
wfe_h_new_order(struct wfe_req *r, const char *tail)
{
	json_t *payload = NULL, *params = NULL, *res = NULL, *ids, *v;
	size_t i;

	(void)tail;
	if (wfe_jws_auth(r, WFE_KEY_KID) != 0 ||
	    wfe_jws_payload(r, &payload) != 0)
		goto out;
	ids = json_object_get(payload, "identifiers");
	if (!json_is_array(ids) || json_array_size(ids) == 0) {
		wfe_reply_prob(r, PROB_MALFORMED,
		    "\"identifiers\" must be a non-empty array");
		goto out;
	}
	json_array_foreach(ids, i, v)
	{
		if (!identifier_ok(r, v, "each identifier"))
			goto out;
	}
	params = json_pack("{sIsO}", "account_id", (json_int_t)r->account_id,
	    "identifiers", ids);
	if (string_member(r, payload, "notBefore", params, "not_before") ||
	    string_member(r, payload, "notAfter", params, "not_after") ||
	    string_member(r, payload, "profile", params, "profile") ||
	    string_member(r, payload, "replaces", params, "replaces") ||
	    wfe_star_new_order_param(r, payload, params) ||
	    wfe_deleg_new_order_param(r, payload, params))
		goto out;
	if (wfe_rpc(r, r->w->ra, RPC_RA_NEW_ORDER, params, &res) != 0)
		goto out;
	keep_authzs(r, res);
	reply_order(r, 201, res);
out:
	json_decref(payload);
	json_decref(params);
	json_decref(res);
}

void
wfe_h_order(struct wfe_req *r, const char *tail)
{
	json_t *order = NULL;
	int64_t id;

	if (wfe_kid_resource(r, tail, "order", &id) != 0)
		return;
	if (!r->jws->is_post_as_get) {
		wfe_star_order_update(r, id);
		return;
	}
	if ((order = get_owned(r, RPC_SA_GET_ORDER, id, "order")) == NULL)
		return;
	reply_order(r, 200, order);
	json_decref(order);
}

void
wfe_h_finalize(struct wfe_req *r, const char *tail)
{
	json_t *payload = NULL, *order = NULL, *params = NULL, *res = NULL;
	json_t *csr;
	struct problem *p = NULL;
	int64_t id;

	if (wfe_kid_resource(r, tail, "order", &id) != 0 ||
	    wfe_jws_payload(r, &payload) != 0)
		goto out;
	csr = json_object_get(payload, "csr");
	if (!json_is_string(csr) || json_string_length(csr) == 0) {
		/* A foreign or missing order still gets its 404 first. */
		if ((order = get_owned(r, RPC_SA_GET_ORDER, id, "order")) ==
		    NULL)
			goto out;
		wfe_reply_prob(
		    r, PROB_MALFORMED, "\"csr\" must be a base64url DER CSR");
		goto out;
	}
	/* ra.finalize_order reads the order and checks its owner itself: no
	 * read here on the way in (issue 18). */
	params = json_pack("{sIsIsOss}", "account_id",
	    (json_int_t)r->account_id, "order_id", (json_int_t)id, "csr", csr,
	    "account_uri", r->jws->kid);
	/* RFC 9799 §6.4: in-band CAA of the order's .onion names */
	if (json_object_get(payload, "onionCAA") != NULL)
		json_object_set(
		    params, "onion_caa", json_object_get(payload, "onionCAA"));
	if (wfe_rpc_raw(r, r->w->ra, RPC_RA_FINALIZE_ORDER, params, &res, &p) !=
	    0) {
		/* Missing or another account's: 404 as for a read, never
		 * telling that the order exists. */
		if (p->type == PROB_NOT_FOUND || p->type == PROB_UNAUTHORIZED) {
			if ((order = get_owned(r, RPC_SA_GET_ORDER, id,
				 "order")) == NULL) {
				problem_free(p);
				goto out;
			}
		}
		wfe_reply_problem(r, p);
		goto out;
	}
	keep_certificate(r, res);
	reply_order(r, 200, res);
out:
	json_decref(payload);
	json_decref(order);
	json_decref(params);
	json_decref(res);
}

static void
reply_authz(struct wfe_req *r, int status, const json_t *authz)
{
	char *u = wfe_url(r, "/acme/authz/%lld",
	    (long long)json_integer_value(json_object_get(authz, "id")));

	if (status == 201)
		wfe_add_header(r, "Location", "%s", u);
	free(u);
	wfe_reply_json(r, status, wfe_acme_authz(r, authz));
}

void
wfe_h_new_authz(struct wfe_req *r, const char *tail)
{
	json_t *payload = NULL, *ident;

	(void)tail;
	if (wfe_jws_auth(r, WFE_KEY_KID) != 0 ||
	    wfe_jws_payload(r, &payload) != 0)
		goto out;
	ident = json_object_get(payload, "identifier");
	if (!identifier_ok(r, ident, "\"identifier\""))
		goto out;
	wfe_ra_reply(r, RPC_RA_NEW_AUTHZ,
	    json_pack("{sIsO}", "account_id", (json_int_t)r->account_id,
		"identifier", ident),
	    201, reply_authz);
out:
	json_decref(payload);
}

void
wfe_h_authz(struct wfe_req *r, const char *tail)
{
	json_t *payload = NULL, *authz = NULL, *st;
	int64_t id;

	if (wfe_kid_resource(r, tail, "authorization", &id) != 0)
		goto out;
	authz = kept_authz(r, id); /* dropped before a deactivation too */
	if (authz == NULL || !r->jws->is_post_as_get) {
		json_decref(authz);
		authz = get_owned(r, RPC_SA_GET_AUTHZ, id, "authorization");
		if (authz == NULL)
			goto out;
	}
	if (r->jws->is_post_as_get) {
		reply_authz(r, 200, authz);
		goto out;
	}
	if (wfe_jws_payload(r, &payload) != 0)
		goto out;
	st = json_object_get(payload, "status");
	if (!json_is_string(st) ||
	    strcmp(json_string_value(st), "deactivated") != 0) {
		wfe_reply_prob(r, PROB_MALFORMED,
		    "an authorization update "
		    "must be {\"status\": \"deactivated\"}");
		goto out;
	}
	wfe_ra_reply(r, RPC_RA_DEACTIVATE_AUTHZ,
	    json_pack("{sIsI}", "account_id", (json_int_t)r->account_id,
		"authz_id", (json_int_t)id),
	    200, reply_authz);
out:
	json_decref(payload);
	json_decref(authz);
}

static const json_t *
find_challenge(const json_t *authz, int64_t cid)
{
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(authz, "challenges"), i, v)
	{
		if (json_integer_value(json_object_get(v, "id")) == cid)
			return v;
	}
	return NULL;
}

/*
 * POST {} to a challenge: ra.perform_validation checks ownership and states
 * itself (one SA statement on the hot path), so the WFE does not read the
 * authz first. On a refusal for a missing or foreign resource the WFE
 * reads the authz to answer as for a read (404 for both, never telling
 * that another account's authz exists); another refusal (the account not
 * valid) is replied as the RA gave it. payload (borrowed): the POST's
 * JSON object. 0 with *res (the authz after the call, new) or -1 after
 * replying.
 */
static int
start_validation(struct wfe_req *r, int64_t aid, int64_t cid,
    const json_t *payload, json_t **res)
{
	json_t *params, *authz;
	struct problem *p = NULL;
	int rc;

	params = json_pack("{sIsIsIssss}", "account_id",
	    (json_int_t)r->account_id, "authz_id", (json_int_t)aid,
	    "challenge_id", (json_int_t)cid, "thumbprint",
	    r->acct_key->thumbprint, "account_uri", r->jws->kid);
	/* a response with members (device-attest-01's attObj, onion-csr-01's
	 * csr) travels to the VA */
	if (json_is_object(payload) && json_object_size(payload) > 0)
		json_object_set(params, "payload", (json_t *)payload);
	json_decref(kept_authz(r, aid)); /* it changes now */
	rc = wfe_rpc_raw(r, r->w->ra, RPC_RA_PERFORM_VALIDATION, params, res, &p);
	json_decref(params);
	if (rc == 0)
		return 0;
	if (p->type == PROB_NOT_FOUND || p->type == PROB_UNAUTHORIZED) {
		if ((authz = get_owned(r, RPC_SA_GET_AUTHZ, aid, "challenge")) ==
		    NULL) {
			problem_free(p);
			return -1;
		}
		json_decref(authz);
		if (p->type == PROB_NOT_FOUND) {
			problem_free(p);
			wfe_reply_prob(r, PROB_NOT_FOUND, "no such challenge");
			return -1;
		}
	}
	wfe_reply_problem(r, p);
	return -1;
}

void
wfe_h_challenge(struct wfe_req *r, const char *tail)
{
	const char *slash = strchr(tail, '/');
	json_t *payload = NULL, *authz = NULL;
	const json_t *ch;
	json_t *csr;
	const char *st;
	int64_t aid, cid;
	char *up = NULL;

	if (slash == NULL ||
	    wfe_parse_id(tail, (size_t)(slash - tail), &aid) != 0 ||
	    wfe_parse_id(slash + 1, strlen(slash + 1), &cid) != 0) {
		wfe_reply_prob(r, PROB_NOT_FOUND, "no such challenge");
		goto out;
	}
	if (wfe_jws_auth(r, WFE_KEY_KID) != 0)
		goto out;
	if (r->jws->is_post_as_get) {
		if ((authz = get_owned(r, RPC_SA_GET_AUTHZ, aid, "challenge")) ==
		    NULL)
			goto out;
	} else {
		/* Any JSON object (normally {}) asks for validation;
		 * onion-csr-01 answers with {"csr"} (RFC 9799 §3.2). The RA
		 * answers with the authz as it is when there is nothing to
		 * start (challenge not pending). */
		if (wfe_jws_payload(r, &payload) != 0)
			goto out;
		csr = json_object_get(payload, "csr");
		if (csr != NULL && !json_is_string(csr)) {
			wfe_reply_prob(r, PROB_MALFORMED,
			    "\"csr\" must be a base64url DER CSR");
			goto out;
		}
		if (start_validation(r, aid, cid, payload, &authz) != 0)
			goto out;
	}
	if ((ch = find_challenge(authz, cid)) == NULL) {
		wfe_reply_prob(r, PROB_NOT_FOUND, "no such challenge");
		goto out;
	}
	up = wfe_url(r, "/acme/authz/%lld", (long long)aid);
	wfe_add_header(r, "Link", "<%s>;rel=\"up\"", up);
	st = json_string_value(json_object_get(ch, "status"));
	if (st != NULL && strcmp(st, "processing") == 0)
		wfe_add_header(r, "Retry-After", "%lld",
		    (long long)((r->w->cfg->retry_after_authz_ms + 999) /
			1000));
	wfe_reply_json(r, 200, wfe_acme_challenge(r, aid, ch));
out:
	free(up);
	json_decref(payload);
	json_decref(authz);
}
