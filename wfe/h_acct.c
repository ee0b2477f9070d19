/*
 * h_acct.c - newAccount, account (read, update, deactivate, orders list),
 * keyChange (RFC 8555 §7.3).
 */
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "wfe/wfe_int.h"

/* The "contact" member: absent (NULL, 0), or an array of strings. */
static int
contact_member(struct wfe_req *r, const json_t *payload, json_t **out)
{
	json_t *c = json_object_get(payload, "contact"), *v;
	size_t i;

	*out = NULL;
	if (c == NULL || json_is_null(c))
		return 0;
	if (!json_is_array(c)) {
		wfe_reply_prob(r, PROB_MALFORMED,
		    "\"contact\" must be an array of URL strings");
		return -1;
	}
	json_array_foreach(c, i, v)
	{
		if (!json_is_string(v)) {
			wfe_reply_prob(r, PROB_MALFORMED,
			    "\"contact\"[%zu] must be a string", i);
			return -1;
		}
	}
	*out = c;
	return 0;
}

static int
bool_member(struct wfe_req *r, const json_t *payload, const char *key, int *out)
{
	json_t *v = json_object_get(payload, key);

	*out = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_boolean(v)) {
		wfe_reply_prob(
		    r, PROB_MALFORMED, "\"%s\" must be a boolean", key);
		return -1;
	}
	*out = json_is_true(v);
	return 0;
}

void
wfe_h_new_account(struct wfe_req *r, const char *tail)
{
	json_t *payload = NULL, *contact, *eab, *params = NULL, *res = NULL;
	json_t *acct;
	char *url = NULL, *eab_url = NULL;
	int tos, only;

	(void)tail;
	if (wfe_jws_auth(r, WFE_KEY_JWK) != 0 ||
	    wfe_jws_payload(r, &payload) != 0)
		goto out;
	if (contact_member(r, payload, &contact) != 0 ||
	    bool_member(r, payload, "termsOfServiceAgreed", &tos) != 0 ||
	    bool_member(r, payload, "onlyReturnExisting", &only) != 0)
		goto out;
	eab = json_object_get(payload, "externalAccountBinding");
	if (eab != NULL && !json_is_object(eab)) {
		wfe_reply_prob(r, PROB_MALFORMED,
		    "\"externalAccountBinding\" must be a JWS object");
		goto out;
	}
	/* wfe_jws_auth checked it: this request's URL on one of our bases. */
	eab_url = xstrdup(r->jws->url);
	params = json_pack("{sOsssbsbss}", "key", r->jws->jwk->json,
	    "thumbprint", r->jws->jwk->thumbprint, "tos_agreed", tos,
	    "only_return_existing", only, "eab_url", eab_url);
	json_object_set_new(params, "contact",
	    contact ? json_deep_copy(contact) : json_array());
	if (eab != NULL)
		json_object_set(params, "eab", eab);
	if (r->client_ip != NULL)
		json_object_set_new(
		    params, "client_ip", json_string(r->client_ip));
	if (wfe_rpc(r, r->w->ra, RPC_RA_NEW_ACCOUNT, params, &res) != 0)
		goto out;
	acct = json_object_get(res, "account");
	if (!json_is_object(acct)) {
		wfe_reply_prob(r, PROB_SERVER_INTERNAL,
		    "registration authority returned no account");
		goto out;
	}
	url = wfe_url(r, "/acme/acct/%lld",
	    (long long)json_integer_value(json_object_get(acct, "id")));
	wfe_add_header(r, "Location", "%s", url);
	wfe_reply_json(r,
	    json_is_true(json_object_get(res, "created")) ? 201 : 200,
	    wfe_acme_account(r, acct));
out:
	free(url);
	free(eab_url);
	json_decref(payload);
	json_decref(params);
	json_decref(res);
}

static void
orders_list(struct wfe_req *r)
{
	const char *cursor;
	int64_t after = 0;
	json_t *params = NULL, *res = NULL, *list, *v, *ids;
	size_t i;
	json_int_t last = 0;

	cursor = MHD_lookup_connection_value(
	    r->conn, MHD_GET_ARGUMENT_KIND, "cursor");
	if (cursor != NULL &&
	    wfe_parse_id(cursor, strlen(cursor), &after) != 0) {
		wfe_reply_prob(r, PROB_MALFORMED, "bad cursor");
		goto out;
	}
	params = json_pack("{sIsI}", "account_id", (json_int_t)r->account_id,
	    "limit", (json_int_t)r->w->cfg->orders_per_page);
	if (after > 0)
		json_object_set_new(
		    params, "after_id", json_integer((json_int_t)after));
	/* The primary: a replica's list may miss the order the client has
	 * just created (docs/scaling.md, "Read replicas"). */
	if (wfe_rpc(r, r->w->sa, RPC_SA_GET_ORDERS_BY_ACCOUNT, params, &res) != 0)
		goto out;
	list = json_array();
	ids = json_object_get(res, "order_ids");
	json_array_foreach(ids, i, v)
	{
		char *u = wfe_url(
		    r, "/acme/order/%lld", (long long)json_integer_value(v));
		json_array_append_new(list, json_string(u));
		free(u);
		last = json_integer_value(v);
	}
	if (json_is_true(json_object_get(res, "more")) && last > 0)
		wfe_add_header(r, "Link",
		    "<%s/acme/acct/%lld/orders?cursor=%lld>;rel=\"next\"",
		    r->base, (long long)r->account_id, (long long)last);
	wfe_reply_json(r, 200, json_pack("{so}", "orders", list));
out:
	json_decref(params);
	json_decref(res);
}

/*
 * Replies the account the RA returns after changing it (an update, a key
 * change), having forgotten the cached copy: the next request on this
 * instance sees the change.
 */
static void
reply_changed(struct wfe_req *r, int status, const json_t *acct)
{
	wfe_acct_cache_forget(r->w->accounts, r->account_id);
	wfe_reply_json(r, status, wfe_acme_account(r, acct));
}

void
wfe_h_account(struct wfe_req *r, const char *tail)
{
	const char *slash = strchr(tail, '/');
	size_t idlen = slash ? (size_t)(slash - tail) : strlen(tail);
	json_t *payload = NULL, *contact = NULL, *params;
	json_t *st;
	int64_t id;
	int deactivate = 0;

	if (wfe_parse_id(tail, idlen, &id) != 0 ||
	    (slash != NULL && strcmp(slash, "/orders") != 0)) {
		wfe_reply_prob(r, PROB_NOT_FOUND, "no such account resource");
		goto out;
	}
	if (wfe_jws_auth(r, WFE_KEY_KID) != 0)
		goto out;
	if (id != r->account_id) {
		wfe_reply_prob(r, PROB_UNAUTHORIZED,
		    "the request's key id is not this account");
		goto out;
	}
	if (slash != NULL) {
		if (!r->jws->is_post_as_get) {
			wfe_reply_prob(r, PROB_MALFORMED,
			    "the orders list is read with POST-as-GET");
			goto out;
		}
		orders_list(r);
		goto out;
	}
	if (r->jws->is_post_as_get) {
		wfe_reply_json(r, 200, wfe_acme_account(r, r->account));
		goto out;
	}
	if (wfe_jws_payload(r, &payload) != 0 ||
	    contact_member(r, payload, &contact) != 0)
		goto out;
	st = json_object_get(payload, "status");
	if (st != NULL && !json_is_null(st)) {
		if (!json_is_string(st) ||
		    (strcmp(json_string_value(st), "deactivated") != 0 &&
			strcmp(json_string_value(st), "valid") != 0)) {
			wfe_reply_prob(r, PROB_MALFORMED,
			    "\"status\" may only "
			    "be set to \"deactivated\"");
			goto out;
		}
		deactivate = strcmp(json_string_value(st), "deactivated") == 0;
	}
	if (!deactivate && contact == NULL) {
		wfe_reply_json(r, 200, wfe_acme_account(r, r->account));
		goto out;
	}
	params = json_pack("{sIsb}", "account_id", (json_int_t)r->account_id,
	    "deactivate", deactivate);
	if (contact != NULL)
		json_object_set(params, "contact", contact);
	/* Deactivated (or new contacts): the next request, here, sees it. */
	wfe_ra_reply(r, RPC_RA_UPDATE_ACCOUNT, params, 200, reply_changed);
out:
	json_decref(payload);
}

void
wfe_h_key_change(struct wfe_req *r, const char *tail)
{
	struct jwk *new_key = NULL;
	struct problem *p = NULL;

	(void)tail;
	if (wfe_jws_auth(r, WFE_KEY_KID) != 0)
		goto out;
	if (jose_verify_key_change(r->jws, &r->w->policy, r->jws->kid,
		r->acct_key, &new_key, &p) != 0) {
		wfe_reply_problem(r, p);
		goto out;
	}
	/* The old key stops working on this instance at once. */
	wfe_ra_reply(r, RPC_RA_KEY_CHANGE,
	    json_pack("{sIsOss}", "account_id", (json_int_t)r->account_id,
		"new_key", new_key->json, "new_thumbprint",
		new_key->thumbprint),
	    200, reply_changed);
out:
	jwk_free(new_key);
}
