/*
 * delegation.c - RFC 9115 delegation with Anvil as the IdO's server: the
 * domain owner's account (IdO) creates, updates and cancels delegation
 * objects naming another account (the NDC); the NDC orders under one and
 * the order is issued on the owner's valid authorizations (nothing is
 * validated again), its CSR checked against the delegation's CSR template
 * (ra/deleg_tmpl.c) at finalize. Canceling a delegation cancels its STAR
 * orders at once (RFC 8739 §3.1.2 semantics, one SA transaction).
 *
 * Hooks: ra_h_new_order (orders.c) calls ra_deleg_new_order for an order
 * naming a delegation; ra_h_finalize_order (finalize.c) calls
 * ra_deleg_finalize; ra_h_directory_meta calls ra_deleg_meta.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/x509.h>

#include "ra/ra_int.h"

#define DELEG_CMAP_MAX 100

/* See ra_int.h. */
void
ra_deleg_meta(struct ra *ra, json_t *meta)
{
	/* RFC 9115 §2.3.4: "An ACME server that supports this delegation
	 * profile MUST include this key, and MUST set it to true." */
	if (ra->cfg.deleg.enabled)
		json_object_set_new(meta, "delegation-enabled", json_true());
}

static int
enabled(struct ra *ra, struct problem **prob)
{
	if (ra->cfg.deleg.enabled)
		return 0;
	*prob = problem_new(PROB_UNAUTHORIZED,
	    "delegation (RFC 9115) is not enabled on this server");
	return -1;
}

/* 1 if s is an FQDN with its terminating '.' (RFC 9115 §2.3.1.3). */
static int
fqdn_dot(const char *s)
{
	size_t n = strlen(s), i, label = 0;

	if (n < 2 || n > 254 || s[n - 1] != '.' || s[0] == '.')
		return 0;
	for (i = 0; i < n; i++) {
		char ch = s[i];
		if (ch == '.') {
			if (label == 0 || label > 63)
				return 0;
			label = 0;
		} else if ((ch >= 'a' && ch <= 'z') ||
		    (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '_' || (ch == '*' && i == 0)) {
			label++;
		} else
			return 0;
	}
	return 1;
}

/*
 * The cname-map (borrowed, may be NULL or null) against the template
 * (borrowed, checked): FQDN pairs, each name a delegated name (a literal
 * SAN DNS name of the template, or any name when it leaves names open).
 */
static int
check_cname_map(const json_t *cm, const json_t *tmpl, struct problem **prob)
{
	const json_t *dns = json_object_get(
	    json_object_get(json_object_get(tmpl, "extensions"),
		"subjectAltName"),
	    "DNS");
	const char *k;
	json_t *v, *d;
	size_t i, open_slots = 0;
	int found;

	if (cm == NULL || json_is_null(cm))
		return 0;
	if (!json_is_object(cm) || json_object_size(cm) > DELEG_CMAP_MAX) {
		*prob = problem_new(PROB_MALFORMED,
		    "\"cname-map\" must be an object of at most %d pairs",
		    DELEG_CMAP_MAX);
		return -1;
	}
	json_array_foreach(dns, i, d)
	{
		const char *s = json_string_value(d);
		if (strcmp(s, "*") == 0 || strcmp(s, "**") == 0)
			open_slots++;
	}
	json_object_foreach((json_t *)cm, k, v)
	{
		/* §2.3.1.3: "Both names and values MUST be FQDNs with a
		 * terminating '.'." */
		if (!fqdn_dot(k) || !json_is_string(v) ||
		    !fqdn_dot(json_string_value(v))) {
			*prob = problem_new(PROB_MALFORMED,
			    "\"cname-map\": %.255s: names and values must be "
			    "FQDNs with a terminating '.' (RFC 9115 section "
			    "2.3.1.3)",
			    k);
			return -1;
		}
		found = open_slots > 0;
		json_array_foreach(dns, i, d)
		{
			const char *s = json_string_value(d);
			if (strlen(s) + 1 == strlen(k) &&
			    strncasecmp(s, k, strlen(s)) == 0)
				found = 1;
		}
		if (!found) {
			*prob = problem_new(PROB_MALFORMED,
			    "\"cname-map\": %.255s is not a name the CSR "
			    "template delegates",
			    k);
			return -1;
		}
	}
	return 0;
}

static int
check_template(const json_t *tmpl, struct problem **prob)
{
	char err[300];

	if (ra_deleg_template_check(tmpl, err, sizeof(err)) != 0) {
		*prob = problem_new(PROB_MALFORMED,
		    "\"csr-template\" (RFC 9115 section 4): %s", err);
		return -1;
	}
	return 0;
}

/* ra.delegation_new handler (docs/rpc-methods.md): req borrowed; on 0
 * *result, on -1 *prob, both handed to the RPC server. */
int
ra_h_delegation_new(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	struct ra *ra = svc;
	json_t *owner = NULL, *ndc = NULL;
	const json_t *tmpl = json_object_get(req->params, "csr_template");
	const json_t *cm = json_object_get(req->params, "cname_map");
	struct problem *p = NULL;
	int64_t oid, nid;
	int rc = -1;

	if (ra_param_id(req->params, "account_id", &oid, prob) != 0 ||
	    ra_param_id(req->params, "ndc_id", &nid, prob) != 0 ||
	    enabled(ra, prob) != 0 ||
	    ra_get_valid_account(ra, req->request_id, oid, &owner, prob) != 0)
		goto out;
	if (nid == oid) {
		*prob = problem_new(PROB_MALFORMED,
		    "\"ndc\": an account does not delegate to itself");
		goto out;
	}
	/* §7.2: "the IdO MUST ensure that each account is associated with
	 * the exact policies": the NDC is an existing, valid account. */
	if (ra_get_valid_account(ra, req->request_id, nid, &ndc, &p) != 0) {
		*prob = problem_new(PROB_MALFORMED,
		    "\"ndc\": no valid account %lld on this server",
		    (long long)nid);
		goto out;
	}
	if (check_template(tmpl, prob) != 0 ||
	    check_cname_map(cm, tmpl, prob) != 0)
		goto out;
	if (ra_call(ra->sa, RPC_SA_DELEGATION_NEW,
		json_pack("{s:I,s:I,s:O,s:O,s:I}", "owner_id", (json_int_t)oid,
		    "ndc_id", (json_int_t)nid, "csr_template", tmpl,
		    "cname_map", cm != NULL ? cm : json_null(), "max_active",
		    (json_int_t)ra->cfg.deleg.max_per_account),
		req->request_id, result, prob) != 0)
		goto out;
	log_audit(req->request_id, "delegation-new",
	    "delegation=%lld owner=%lld ndc=%lld",
	    (long long)json_integer_value(json_object_get(*result, "id")),
	    (long long)oid, (long long)nid);
	ra_count(ra, "anvil_ra_delegations_total", "op=\"new\"");
	rc = 0;
out:
	problem_free(p);
	json_decref(owner);
	json_decref(ndc);
	return rc;
}

/* ra.delegation_update handler (docs/rpc-methods.md). */
int
ra_h_delegation_update(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	struct ra *ra = svc;
	json_t *owner = NULL, *cur = NULL, *sp;
	const json_t *tmpl = json_object_get(req->params, "csr_template");
	const json_t *cm = json_object_get(req->params, "cname_map");
	int64_t oid, did;
	int rc = -1;

	if (ra_param_id(req->params, "account_id", &oid, prob) != 0 ||
	    ra_param_id(req->params, "delegation_id", &did, prob) != 0 ||
	    enabled(ra, prob) != 0 ||
	    ra_get_valid_account(ra, req->request_id, oid, &owner, prob) != 0)
		goto out;
	if (ra_call(ra->sa, RPC_SA_DELEGATION_GET,
		json_pack("{s:I}", "id", (json_int_t)did), req->request_id,
		&cur, prob) != 0)
		goto out;
	if (json_integer_value(json_object_get(cur, "owner_id")) != oid) {
		*prob = problem_new(PROB_NOT_FOUND, "no such delegation");
		goto out;
	}
	if (tmpl == NULL)
		tmpl = json_object_get(cur, "csr_template");
	else if (check_template(tmpl, prob) != 0)
		goto out;
	if (check_cname_map(cm != NULL ? cm : json_object_get(cur, "cname_map"),
		tmpl, prob) != 0)
		goto out;
	sp = json_pack("{s:I,s:I}", "id", (json_int_t)did, "owner_id",
	    (json_int_t)oid);
	if (json_object_get(req->params, "csr_template") != NULL)
		json_object_set(sp, "csr_template", (json_t *)tmpl);
	if (cm != NULL)
		json_object_set(sp, "cname_map", (json_t *)cm);
	if (ra_call(ra->sa, RPC_SA_DELEGATION_UPDATE, sp, req->request_id,
		result, prob) != 0)
		goto out;
	log_audit(req->request_id, "delegation-update",
	    "delegation=%lld owner=%lld", (long long)did, (long long)oid);
	ra_count(ra, "anvil_ra_delegations_total", "op=\"update\"");
	rc = 0;
out:
	json_decref(owner);
	json_decref(cur);
	return rc;
}

/* ra.delegation_cancel handler (docs/rpc-methods.md). Waits out a
 * certificate of the delegation being issued (a STAR renewal's lease, a
 * first issuance), so that no certificate follows the answer. */
int
ra_h_delegation_cancel(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	struct ra *ra = svc;
	struct problem *p = NULL;
	int64_t oid, did, deadline;

	if (ra_param_id(req->params, "account_id", &oid, prob) != 0 ||
	    ra_param_id(req->params, "delegation_id", &did, prob) != 0)
		return -1;
	deadline = time_mono_ms() + ra->cfg.star.lease_ms + 5000;
	while (ra_call(ra->sa, RPC_SA_DELEGATION_CANCEL,
		   json_pack("{s:I,s:I}", "id", (json_int_t)did, "owner_id",
		       (json_int_t)oid),
		   req->request_id, result, &p) != 0) {
		if (p->type != PROB_CONFLICT) {
			*prob = p;
			return -1;
		}
		problem_free(p);
		p = NULL;
		if (time_mono_ms() > deadline) {
			*prob = problem_new(PROB_UNAVAILABLE,
			    "a certificate of this delegation is being "
			    "issued; try again");
			return -1;
		}
		ra_sleep_ms(200);
	}
	log_audit(req->request_id, "delegation-cancel",
	    "delegation=%lld owner=%lld", (long long)did, (long long)oid);
	ra_count(ra, "anvil_ra_delegations_total", "op=\"cancel\"");
	return 0;
}

/* The delegation did (new) if it is active and made for account ndc;
 * else -1 with *prob: unknownDelegation (RFC 9115 §2.3.1.3: "If the
 * delegation attribute in the Order object contains a URL that does not
 * correspond to a configuration available to the requesting ACME account,
 * the IdO MUST return an error response with status code 403"). */
static int
get_for_ndc(struct ra *ra, const char *rid, int64_t did, int64_t ndc,
    json_t **out, struct problem **prob)
{
	struct problem *p = NULL;
	json_t *owner = NULL;
	const char *st;

	*out = NULL;
	if (ra->cfg.deleg.enabled &&
	    ra_call(ra->sa, RPC_SA_DELEGATION_GET,
		json_pack("{s:I}", "id", (json_int_t)did), rid, out, &p) != 0) {
		*out = NULL;
		if (p->type != PROB_NOT_FOUND) {
			*prob = p;
			return -1;
		}
		problem_free(p);
	}
	st = json_string_value(json_object_get(*out, "status"));
	/* the owner's account must still be valid: a deactivated owner
	 * delegates nothing any more */
	if (*out != NULL && st != NULL && strcmp(st, "active") == 0 &&
	    json_integer_value(json_object_get(*out, "ndc_id")) == ndc &&
	    ra_get_valid_account(ra, rid,
		json_integer_value(json_object_get(*out, "owner_id")), &owner,
		&p) != 0) {
		problem_free(p);
		st = NULL;
	}
	json_decref(owner);
	if (*out == NULL ||
	    json_integer_value(json_object_get(*out, "ndc_id")) != ndc ||
	    st == NULL || strcmp(st, "active") != 0) {
		json_decref(*out);
		*out = NULL;
		*prob = problem_new(PROB_UNKNOWN_DELEGATION,
		    "the delegation is not one available to this account (RFC "
		    "9115 section 2.3.1.3)");
		return -1;
	}
	return 0;
}

static int
profile_allowed(
    struct ra *ra, const struct profile *prof, struct problem **prob)
{
	size_t i;

	if (ra->cfg.deleg.n_profiles == 0)
		return 0;
	for (i = 0; i < ra->cfg.deleg.n_profiles; i++)
		if (strcmp(ra->cfg.deleg.profiles[i], prof->name) == 0)
			return 0;
	*prob = problem_new(PROB_INVALID_PROFILE,
	    "profile %s is not offered for delegated orders", prof->name);
	return -1;
}

/*
 * The owner's valid authzs (sa.get_valid_authzs) for each identifier of
 * aidents (borrowed): their ids into reuse_ids, *expires lowered to the
 * earliest. -1 with *prob (unauthorized, one subproblem per name the owner
 * holds no authorization for).
 */
static int
owner_authzs(struct ra *ra, const char *rid, int64_t owner,
    const struct profile *prof, const json_t *aidents, json_t *reuse_ids,
    int64_t *expires, struct problem **prob)
{
	json_t *res = NULL, *v, *a;
	struct problem *missing = NULL;
	char cut[32];
	int64_t ae;
	size_t i;
	int rc = -1;

	ra_time_fmt(time_now_ms() + 60000, cut, sizeof(cut));
	if (ra_call(ra->sa, RPC_SA_GET_VALID_AUTHZS,
		json_pack("{s:I,s:O,s:s,s:s}", "account_id", (json_int_t)owner,
		    "identifiers", aidents, "profile", prof->name,
		    "valid_until_after", cut),
		rid, &res, prob) != 0)
		goto out;
	json_array_foreach(aidents, i, v)
	{
		if ((a = ra_find_reusable(res, v, owner)) == NULL) {
			if (missing == NULL)
				missing = problem_new(PROB_UNAUTHORIZED,
				    "The domain owner holds no valid "
				    "authorization for every name of the "
				    "order: nothing is validated for a "
				    "delegated order (RFC 9115 section 2.3)");
			problem_add_sub(missing,
			    problem_new(PROB_UNAUTHORIZED,
				"no valid authorization of the domain owner"),
			    json_string_value(json_object_get(v, "type")),
			    json_string_value(json_object_get(v, "value")));
			continue;
		}
		ra_ids_add(reuse_ids, json_integer_value(json_object_get(a, "id")));
		if (ra_time_get(a, "expires", &ae) == 0 && ae < *expires)
			*expires = ae;
	}
	if (missing != NULL) {
		*prob = missing;
		missing = NULL;
		goto out;
	}
	rc = 0;
out:
	json_decref(res);
	problem_free(missing);
	return rc;
}

/* See ra_int.h. */
int
ra_deleg_new_order(struct ra *ra, const char *rid, int64_t id,
    const struct profile *prof, const json_t *idents, const json_t *aidents,
    const json_t *params, json_t **order, struct problem **prob)
{
	json_t *d = NULL, *reuse_ids = json_array(), *np;
	const json_t *tmpl;
	int64_t did, owner, expires;
	char err[300], t_exp[32];
	int rc = -1;

	if (ra_param_id(params, "delegation_id", &did, prob) != 0 ||
	    get_for_ndc(ra, rid, did, id, &d, prob) != 0 ||
	    profile_allowed(ra, prof, prob) != 0)
		goto out;
	tmpl = json_object_get(d, "csr_template");
	owner = json_integer_value(json_object_get(d, "owner_id"));
	/* §2.3.2: the order "MUST have entries in the identifiers field for
	 * each delegated name present in the configuration" */
	if (ra_deleg_template_idents(tmpl, idents, prob) != 0)
		goto out;
	/* Never more than the template allows (EC keys: digitalSignature;
	 * RSA keys are checked again at finalize). */
	if (ra_deleg_template_profile(tmpl, prof, 0, err, sizeof(err)) != 0) {
		*prob = problem_new(PROB_INVALID_PROFILE, "%s", err);
		goto out;
	}
	expires = time_now_ms() + prof->order_lifetime_ms;
	if (owner_authzs(ra, rid, owner, prof, aidents, reuse_ids, &expires,
		prob) != 0)
		goto out;
	ra_time_fmt(expires, t_exp, sizeof(t_exp));
	np = json_pack("{s:I,s:s,s:O,s:s,s:O,s:[],s:I,s:b}", "account_id",
	    (json_int_t)id, "expires", t_exp, "identifiers", idents, "profile",
	    prof->name, "reuse_authz_ids", reuse_ids, "new_authzs",
	    "delegation_id", (json_int_t)did, "with_authzs", 1);
	if (ra_call(ra->sa, RPC_SA_NEW_ORDER, np, rid, order, prob) != 0)
		goto out;
	log_msg(LOG_LEVEL_INFO, rid,
	    "delegated order %lld account=%lld delegation=%lld owner=%lld",
	    (long long)json_integer_value(json_object_get(*order, "id")),
	    (long long)id, (long long)did, (long long)owner);
	ra_count(ra, "anvil_ra_delegated_orders_total", NULL);
	rc = 0;
out:
	json_decref(d);
	json_decref(reuse_ids);
	return rc;
}

/* The order (borrowed) becomes invalid with a copy of p (borrowed):
 * RFC 9115 §2.2 "If the CSR verification fails, Order1 is moved to an
 * invalid state". Logged when it cannot be recorded. */
static void
fail_order(struct ra *ra, const char *rid, const json_t *order,
    const struct problem *p)
{
	json_t *r2 = NULL;
	struct problem *q = NULL;

	if (ra_call(ra->sa, RPC_SA_SET_ORDER_ERROR,
		json_pack("{s:O,s:o}", "id", json_object_get(order, "id"),
		    "error", problem_to_rpc_json(p)),
		rid, &r2, &q) != 0) {
		log_msg(LOG_LEVEL_WARN, rid,
		    "delegated order %lld: refusal not recorded: %s",
		    (long long)json_integer_value(json_object_get(order, "id")),
		    q->detail ? q->detail : "error");
	}
	json_decref(r2);
	problem_free(q);
}

/* The CSR (b64url DER, borrowed) against the template and the profile.
 * 0, or -1 with *prob (badCSR). */
static int
match_csr(const json_t *tmpl, const struct profile *prof, const char *csr,
    struct problem **prob)
{
	uint8_t *der = NULL;
	size_t len = 0;
	const unsigned char *p;
	X509_REQ *req = NULL;
	EVP_PKEY *pk;
	char err[300];
	int rc = -1;

	if (csr == NULL || b64url_decode(csr, strlen(csr), &der, &len) != 0) {
		*prob = problem_new(
		    PROB_BAD_CSR, "\"csr\" must be the base64url DER of a CSR");
		goto out;
	}
	if (ra_deleg_template_match(tmpl, der, len, prob) != 0)
		goto out;
	p = der;
	if ((req = d2i_X509_REQ(NULL, &p, (long)len)) == NULL ||
	    (pk = X509_REQ_get0_pubkey(req)) == NULL) {
		*prob = problem_new(PROB_BAD_CSR, "the CSR is unreadable");
		goto out;
	}
	if (ra_deleg_template_profile(tmpl, prof,
		EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA, err,
		sizeof(err)) != 0) {
		*prob = problem_new(PROB_BAD_CSR, "%s", err);
		goto out;
	}
	rc = 0;
out:
	X509_REQ_free(req);
	free(der);
	return rc;
}

/* See ra_int.h. */
int
ra_deleg_finalize(struct ra *ra, const char *rid, const json_t *order,
    const char *csr, char **uri, struct problem **prob)
{
	json_t *d = NULL;
	const json_t *did = json_object_get(order, "delegation_id");
	const struct profile *prof;
	char *slash, *nu;
	int64_t owner;
	int rc = -1;

	if (did == NULL)
		return 0;
	if (get_for_ndc(ra, rid, json_integer_value(did),
		json_integer_value(json_object_get(order, "account_id")), &d,
		prob) != 0)
		goto out;
	prof = profiles_find(
	    ra->profiles, json_string_value(json_object_get(order, "profile")));
	if (prof == NULL) {
		*prob = problem_new(PROB_SERVER_INTERNAL, "order profile gone");
		goto out;
	}
	if (match_csr(json_object_get(d, "csr_template"), prof, csr, prob) !=
	    0) {
		/* §2.3.2: "the IdO MUST return an error response with status
		 * code 403 (Forbidden)" */
		(*prob)->status = 403;
		fail_order(ra, rid, order, *prob);
		goto out;
	}
	/* CAA accounturi (RFC 8657) names the account that validated: the
	 * owner's (RFC 9115 section 7.4) */
	owner = json_integer_value(json_object_get(d, "owner_id"));
	slash = strrchr(*uri, '/');
	nu = xasprintf("%.*s%lld", slash ? (int)(slash - *uri + 1) : 0, *uri,
	    (long long)owner);
	free(*uri);
	*uri = nu;
	rc = 0;
out:
	json_decref(d);
	return rc;
}
