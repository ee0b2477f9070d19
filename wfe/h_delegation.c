/*
 * h_delegation.c - RFC 9115 delegation at the ACME surface (Anvil as the
 * IdO's server): an account's "delegations" URL (POST-as-GET: the
 * delegations made available to it, and those it made as domain owner;
 * POST with a delegation: the owner creates one), the delegation objects
 * (read by owner and NDC; updated or canceled by the owner only), the
 * newOrder "delegation" member and the delegation members of an order.
 * The design and its choices: docs/acme.md "RFC 9115: delegation".
 */
#include <stdlib.h>
#include <string.h>

#include "wfe/wfe_int.h"

#define DELEG_LIST_MAX 1000

/* 1 when the RA offers delegation (directory meta delegation-enabled). */
static int
deleg_enabled(struct wfe_req *r)
{
	json_t *meta = wfe_ra_meta(r);
	int on = json_is_true(json_object_get(meta, "delegation-enabled"));

	json_decref(meta);
	return on;
}

/* The id of url (borrowed) when it is <base><prefix><id>: 0, else -1. */
static int
url_id(const struct wfe_req *r, const char *url, const char *prefix,
    int64_t *id)
{
	size_t bl = strlen(r->base), pl = strlen(prefix);

	if (url == NULL || strncmp(url, r->base, bl) != 0 ||
	    strncmp(url + bl, prefix, pl) != 0)
		return -1;
	return wfe_parse_id(url + bl + pl, strlen(url + bl + pl), id);
}

/* The ACME form of an sa.delegation_get object (borrowed): new. */
static json_t *
deleg_json(struct wfe_req *r, const json_t *d)
{
	json_t *j = json_object(), *cm = json_object_get(d, "cname_map");
	char *u;

	json_object_set(j, "status", json_object_get(d, "status"));
	/* RFC 9115 §2.3.1.3: csr-template (required), cname-map (opt) */
	json_object_set(j, "csr-template", json_object_get(d, "csr_template"));
	if (json_is_object(cm))
		json_object_set(j, "cname-map", cm);
	u = wfe_url(r, "/acme/acct/%lld",
	    (long long)json_integer_value(json_object_get(d, "ndc_id")));
	json_object_set_new(j, "ndc", json_string(u));
	free(u);
	u = wfe_url(r, "/acme/acct/%lld",
	    (long long)json_integer_value(json_object_get(d, "owner_id")));
	json_object_set_new(j, "owner", json_string(u));
	free(u);
	return j;
}

static void
reply_deleg(struct wfe_req *r, int status, const json_t *d)
{
	char *u = wfe_url(r, "/acme/delegation/%lld",
	    (long long)json_integer_value(json_object_get(d, "id")));

	wfe_add_header(r, "Location", "%s", u);
	free(u);
	wfe_reply_json(r, status, deleg_json(r, d));
}

/* URLs of the delegations listed for the account in role ("ndc" or
 * "owner"): a new array, or NULL after replying. */
static json_t *
list_urls(struct wfe_req *r, const char *role)
{
	json_t *res = NULL, *urls = NULL, *v;
	size_t i;

	if (wfe_rpc(r, r->w->sa, RPC_SA_DELEGATION_LIST,
		json_pack("{s:I,s:s,s:I}", "account_id",
		    (json_int_t)r->account_id, "role", role, "limit",
		    (json_int_t)DELEG_LIST_MAX),
		&res) != 0)
		return NULL;
	urls = json_array();
	json_array_foreach(json_object_get(res, "ids"), i, v)
	{
		char *u = wfe_url(r, "/acme/delegation/%lld",
		    (long long)json_integer_value(v));
		json_array_append_new(urls, json_string(u));
		free(u);
	}
	json_decref(res);
	return urls;
}

/* Only the members of keys (NULL-terminated) in payload; else malformed. */
static int
only_members(struct wfe_req *r, const json_t *payload,
    const char *const *keys)
{
	const char *k;
	json_t *v;
	size_t i;

	json_object_foreach((json_t *)payload, k, v)
	{
		for (i = 0; keys[i] != NULL && strcmp(keys[i], k) != 0; i++)
			;
		if (keys[i] == NULL) {
			wfe_reply_prob(r, PROB_MALFORMED,
			    "unknown member \"%.40s\" in a delegation", k);
			return -1;
		}
	}
	return 0;
}

/* The payload's member from, if present, into params as to (the RA's
 * name for it). */
static void
copy_member(const json_t *payload, const char *from, json_t *params,
    const char *to)
{
	json_t *v = json_object_get(payload, from);

	if (v != NULL)
		json_object_set(params, to, v);
}

/* POST with a delegation to the owner's delegations URL. */
static void
create(struct wfe_req *r)
{
	static const char *const keys[] = {
	    "ndc", "csr-template", "cname-map", NULL};
	json_t *payload = NULL, *params;
	int64_t ndc;

	if (wfe_jws_payload(r, &payload) != 0 ||
	    only_members(r, payload, keys) != 0)
		goto out;
	if (url_id(r, json_string_value(json_object_get(payload, "ndc")),
		"/acme/acct/", &ndc) != 0) {
		wfe_reply_prob(r, PROB_MALFORMED,
		    "\"ndc\" must be the URL of the delegated account (NDC) "
		    "on this server");
		goto out;
	}
	params = json_pack("{s:I,s:I,s:O}", "account_id",
	    (json_int_t)r->account_id, "ndc_id", (json_int_t)ndc,
	    "csr_template",
	    json_object_get(payload, "csr-template")
		? json_object_get(payload, "csr-template")
		: json_null());
	copy_member(payload, "cname-map", params, "cname_map");
	wfe_ra_reply(r, RPC_RA_DELEGATION_NEW, params, 201, reply_deleg);
out:
	json_decref(payload);
}

void
wfe_h_delegations(struct wfe_req *r, const char *tail)
{
	json_t *mine = NULL, *owned = NULL;
	int64_t id;

	if (wfe_kid_resource(r, tail, "resource", &id) != 0)
		return;
	if (!deleg_enabled(r)) {
		wfe_reply_prob(r, PROB_NOT_FOUND,
		    "delegation (RFC 9115) is not enabled on this server");
		return;
	}
	if (id != r->account_id) {
		wfe_reply_prob(r, PROB_UNAUTHORIZED,
		    "the request's key id is not this account");
		return;
	}
	if (!r->jws->is_post_as_get) {
		create(r);
		return;
	}
	/* RFC 9115 §2.3.1.2: "The result of the request MUST be a JSON
	 * object whose delegations field is an array of URLs, each
	 * identifying a delegation configuration made available to the NDC
	 * account"; Anvil adds the owner's own ones. */
	if ((mine = list_urls(r, "ndc")) == NULL ||
	    (owned = list_urls(r, "owner")) == NULL)
		goto out;
	wfe_reply_json(r, 200,
	    json_pack("{s:O,s:O}", "delegations", mine, "owned-delegations",
		owned));
out:
	json_decref(mine);
	json_decref(owned);
}

/* POST with a payload to delegation id (d borrowed) by its owner. */
static void
update(struct wfe_req *r, int64_t id)
{
	static const char *const keys[] = {
	    "status", "csr-template", "cname-map", NULL};
	json_t *payload = NULL, *params, *st;

	if (wfe_jws_payload(r, &payload) != 0 ||
	    only_members(r, payload, keys) != 0)
		goto out;
	params = json_pack("{s:I,s:I}", "account_id",
	    (json_int_t)r->account_id, "delegation_id", (json_int_t)id);
	st = json_object_get(payload, "status");
	if (st != NULL) {
		if (!json_is_string(st) ||
		    strcmp(json_string_value(st), "canceled") != 0 ||
		    json_object_size(payload) != 1) {
			json_decref(params);
			wfe_reply_prob(r, PROB_MALFORMED,
			    "a delegation is ended with {\"status\": "
			    "\"canceled\"} alone");
			goto out;
		}
		wfe_ra_reply(
		    r, RPC_RA_DELEGATION_CANCEL, params, 200, reply_deleg);
		goto out;
	}
	copy_member(payload, "csr-template", params, "csr_template");
	copy_member(payload, "cname-map", params, "cname_map");
	wfe_ra_reply(r, RPC_RA_DELEGATION_UPDATE, params, 200, reply_deleg);
out:
	json_decref(payload);
}

void
wfe_h_delegation(struct wfe_req *r, const char *tail)
{
	json_t *d = NULL;
	struct problem *p = NULL;
	int64_t id, owner, ndc;

	if (wfe_kid_resource(r, tail, "delegation", &id) != 0)
		return;
	if (wfe_rpc_raw(r, r->w->sa, RPC_SA_DELEGATION_GET,
		json_pack("{s:I}", "id", (json_int_t)id), &d, &p) != 0) {
		if (p->type == PROB_NOT_FOUND) {
			wfe_reply_prob(r, PROB_NOT_FOUND, "no such delegation");
		} else {
			wfe_reply_problem(r, p); /* takes p */
			p = NULL;
		}
		goto out;
	}
	owner = json_integer_value(json_object_get(d, "owner_id"));
	ndc = json_integer_value(json_object_get(d, "ndc_id"));
	/* Another account gets the same 404 as a missing one. */
	if (r->account_id != owner && r->account_id != ndc) {
		log_msg(LOG_LEVEL_INFO, r->rid,
		    "account %lld asked for delegation %lld of others",
		    (long long)r->account_id, (long long)id);
		wfe_reply_prob(r, PROB_NOT_FOUND, "no such delegation");
		goto out;
	}
	if (r->jws->is_post_as_get) {
		reply_deleg(r, 200, d);
		goto out;
	}
	/* §2.3.1.3: "a new read-only delegation object" for the NDC. */
	if (r->account_id != owner) {
		wfe_reply_prob(r, PROB_UNAUTHORIZED,
		    "only the domain owner's account changes a delegation; "
		    "it is read-only for the delegated account (RFC 9115 "
		    "section 2.3.1.3)");
		goto out;
	}
	update(r, id);
out:
	problem_free(p);
	json_decref(d);
}

/* See wfe_int.h. */
int
wfe_deleg_new_order_param(
    struct wfe_req *r, const json_t *payload, json_t *params)
{
	const json_t *v = json_object_get(payload, "delegation");
	int64_t id;

	if (v == NULL)
		return 0;
	/* §2.3.1.3: a URL that does not correspond to a configuration
	 * available to the account: 403 unknownDelegation. */
	if (!json_is_string(v) ||
	    url_id(r, json_string_value(v), "/acme/delegation/", &id) != 0) {
		wfe_reply_prob(r, PROB_UNKNOWN_DELEGATION,
		    "\"delegation\" is not the URL of a delegation of this "
		    "server (RFC 9115 section 2.3.1.3)");
		return -1;
	}
	json_object_set_new(params, "delegation_id", json_integer(id));
	return 0;
}

/* See wfe_int.h. */
void
wfe_deleg_order_json(const struct wfe_req *r, const json_t *order, json_t *j)
{
	const json_t *did = json_object_get(order, "delegation_id");
	char *u;

	if (!json_is_integer(did))
		return;
	/* §2.3.2: the order "MUST contain an authorizations array with zero
	 * elements" and "MUST contain the indicated delegation". The owner's
	 * authorizations it stands on stay the owner's. */
	json_object_set_new(j, "authorizations", json_array());
	u = wfe_url(r, "/acme/delegation/%lld",
	    (long long)json_integer_value(did));
	json_object_set_new(j, "delegation", json_string(u));
	free(u);
}

/* See wfe_int.h. */
void
wfe_deleg_account_json(struct wfe_req *r, int64_t id, json_t *j)
{
	char *u;

	/* §6.3 (IANA): "the delegations field is only reported by ACME
	 * servers that have delegation-enabled set to true" */
	if (!deleg_enabled(r))
		return;
	u = wfe_url(r, "/acme/delegations/%lld", (long long)id);
	json_object_set_new(j, "delegations", json_string(u));
	free(u);
}
