/*
 * acme_json.c - RPC objects (docs/rpc-methods.md) to ACME resources
 * (RFC 8555 §7.1).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wfe/wfe_int.h"

char *
wfe_url(const struct wfe_req *r, const char *fmt, ...)
{
	va_list ap;
	char *tail = NULL, *u;

	va_start(ap, fmt);
	if (vasprintf(&tail, fmt, ap) < 0)
		abort();
	va_end(ap);
	u = xasprintf("%s%s", r->base, tail);
	free(tail);
	return u;
}

static void
copy_member(json_t *dst, const char *dkey, const json_t *src, const char *skey)
{
	json_t *v = json_object_get(src, skey);

	if (v != NULL && !json_is_null(v))
		json_object_set_new(dst, dkey, json_deep_copy(v));
}

static void
set_url(json_t *dst, const char *key, char *url)
{
	json_object_set_new(dst, key, json_string(url));
	free(url);
}

json_t *
wfe_acme_problem(const json_t *rpc_prob)
{
	struct problem *p = problem_from_json(rpc_prob);
	json_t *j;
	int status;

	j = wfe_problem_body(p, &status);
	problem_free(p);
	return j;
}

json_t *
wfe_acme_account(struct wfe_req *r, const json_t *acct)
{
	json_t *j = json_object();
	json_t *contact = json_object_get(acct, "contact");
	json_int_t id = json_integer_value(json_object_get(acct, "id"));

	copy_member(j, "status", acct, "status");
	json_object_set_new(j, "contact",
	    json_is_array(contact) ? json_deep_copy(contact) : json_array());
	if (json_is_true(json_object_get(acct, "tos_agreed")))
		json_object_set_new(j, "termsOfServiceAgreed", json_true());
	set_url(
	    j, "orders", wfe_url(r, "/acme/acct/%lld/orders", (long long)id));
	copy_member(j, "key", acct, "key");
	copy_member(j, "createdAt", acct, "created");
	wfe_deleg_account_json(r, id, j);
	return j;
}

json_t *
wfe_acme_order(const struct wfe_req *r, const json_t *order)
{
	json_t *j = json_object(), *authzs = json_array();
	json_t *ids = json_object_get(order, "authz_ids"), *v, *err;
	json_int_t id = json_integer_value(json_object_get(order, "id"));
	const char *serial;
	size_t i;

	copy_member(j, "status", order, "status");
	copy_member(j, "expires", order, "expires");
	copy_member(j, "identifiers", order, "identifiers");
	copy_member(j, "notBefore", order, "not_before");
	copy_member(j, "notAfter", order, "not_after");
	copy_member(j, "profile", order, "profile");
	copy_member(j, "replaces", order, "replaces");
	json_array_foreach(ids, i, v)
	{
		char *u = wfe_url(
		    r, "/acme/authz/%lld", (long long)json_integer_value(v));
		json_array_append_new(authzs, json_string(u));
		free(u);
	}
	json_object_set_new(j, "authorizations", authzs);
	set_url(
	    j, "finalize", wfe_url(r, "/acme/finalize/%lld", (long long)id));
	serial =
	    json_string_value(json_object_get(order, "certificate_serial"));
	if (serial != NULL)
		set_url(j, "certificate", wfe_url(r, "/acme/cert/%s", serial));
	err = json_object_get(order, "error");
	if (json_is_object(err))
		json_object_set_new(j, "error", wfe_acme_problem(err));
	wfe_star_order_json(r, order, j);
	wfe_deleg_order_json(r, order, j);
	return j;
}

json_t *
wfe_acme_challenge(
    struct wfe_req *r, int64_t authz_id, const json_t *chall)
{
	json_t *j = json_object(), *err, *meta;
	const char *type;
	char *nonce;

	copy_member(j, "type", chall, "type");
	set_url(j, "url",
	    wfe_url(r, "/acme/chall/%lld/%lld", (long long)authz_id,
		(long long)json_integer_value(json_object_get(chall, "id"))));
	type = json_string_value(json_object_get(chall, "type"));
	if (type != NULL && strcmp(type, "dns-persist-01") == 0) {
		/* draft-ietf-acme-dns-persist §3.1: no token; the issuer
		 * domain names (the directory's, §3.2: D is a subset of C) */
		meta = wfe_ra_meta(r);
		if (json_is_array(json_object_get(meta, "issuerDomainNames")))
			json_object_set(j, "issuerDomainNames",
			    json_object_get(meta, "issuerDomainNames"));
		json_decref(meta);
	} else if (type != NULL && strcmp(type, "onion-csr-01") == 0) {
		/* RFC 9799 §3.2: a "nonce" (base64 with padding), no token;
		 * no authKey: this CA does not connect to hidden services */
		nonce = chal_onion_nonce(
		    json_string_value(json_object_get(chall, "token")));
		if (nonce != NULL)
			json_object_set_new(j, "nonce", json_string(nonce));
		free(nonce);
	} else if (type != NULL && strcmp(type, "bp-nodeid-00") == 0) {
		/* RFC 9891 §4.1: "id-chal" (carried in the bundles) and
		 * "token-chal" (the token, only ever on the ACME channel) */
		nonce = chal_bp_id_chal(
		    json_string_value(json_object_get(chall, "token")));
		json_object_set_new(j, "id-chal", json_string(nonce));
		free(nonce);
		copy_member(j, "token-chal", chall, "token");
	} else
		copy_member(j, "token", chall, "token");
	if (type != NULL && strcmp(type, "email-reply-00") == 0) {
		/* RFC 8823 §3: "from" is the address the challenge email
		 * comes from (the RA's policy.email.from); "token" above is
		 * token-part2 */
		meta = wfe_cached_call(r, r->w->ra, &r->w->ra_meta,
		    &r->w->ra_meta_at_ms, RPC_RA_DIRECTORY_META);
		if (json_is_string(json_object_get(meta, "email_from")))
			json_object_set(
			    j, "from", json_object_get(meta, "email_from"));
		json_decref(meta);
	}
	/* draft-ietf-acme-rats §2.2.1 "freshness_nonce (required)": the
	 * token, as its EDNOTE proposes ("use that to carry the attestation
	 * freshness nonce") */
	if (type != NULL && strcmp(type, "remote-attest-01") == 0)
		copy_member(j, "freshness_nonce", chall, "token");
	if (type != NULL && strcmp(type, "tkauth-01") == 0) {
		/* RFC 9447 §3 / RFC 9448 §5.3: the token type, and where
		 * tokens come from (policy.tkauth.token_authority, optional) */
		json_object_set_new(j, "tkauth-type", json_string("atc"));
		meta = wfe_cached_call(r, r->w->ra, &r->w->ra_meta,
		    &r->w->ra_meta_at_ms, RPC_RA_DIRECTORY_META);
		if (json_is_string(json_object_get(meta, "token_authority")))
			json_object_set(j, "token-authority",
			    json_object_get(meta, "token_authority"));
		json_decref(meta);
	}
	copy_member(j, "status", chall, "status");
	copy_member(j, "validated", chall, "validated");
	err = json_object_get(chall, "error");
	if (json_is_object(err))
		json_object_set_new(j, "error", wfe_acme_problem(err));
	copy_member(j, "validationRecord", chall, "validation_record");
	return j;
}

json_t *
wfe_acme_authz(struct wfe_req *r, const json_t *authz)
{
	json_t *j = json_object(), *chs = json_array(), *v;
	int64_t id = json_integer_value(json_object_get(authz, "id"));
	const char *st = json_string_value(json_object_get(authz, "status"));
	const json_t *all = json_object_get(authz, "challenges");
	const char *keep = NULL;
	size_t i;

	copy_member(j, "identifier", authz, "identifier");
	copy_member(j, "status", authz, "status");
	copy_member(j, "expires", authz, "expires");
	/* RFC 8555 §7.1.4: "For valid authorizations, the challenge that was
	 * validated. For invalid authorizations, the challenge that was
	 * attempted and failed." Only when one is marked so (an authz that
	 * became invalid without an attempt keeps its list). */
	if (st != NULL &&
	    (strcmp(st, "valid") == 0 || strcmp(st, "invalid") == 0))
		json_array_foreach(all, i, v)
		{
			const char *cs =
			    json_string_value(json_object_get(v, "status"));
			if (cs != NULL && strcmp(cs, st) == 0)
				keep = st;
		}
	json_array_foreach(all, i, v)
	{
		const char *cs = json_string_value(json_object_get(v, "status"));

		if (keep != NULL && (cs == NULL || strcmp(cs, keep) != 0))
			continue;
		json_array_append_new(chs, wfe_acme_challenge(r, id, v));
	}
	json_object_set_new(j, "challenges", chs);
	if (json_is_true(json_object_get(authz, "wildcard")))
		json_object_set_new(j, "wildcard", json_true());
	/* RFC 9444 §4.1: the authorization covers every name below it */
	if (json_is_true(json_object_get(authz, "subdomain_auth")))
		json_object_set_new(j, "subdomainAuthAllowed", json_true());
	return j;
}
