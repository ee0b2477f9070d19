/*
 * orders.c - ra.new_order (policy, profile, validity window, ARI replaces,
 * rate limits with renewal exemption, authz reuse) and ra.new_authz.
 */
#include <stdlib.h>
#include <string.h>

#include "ra/ra_int.h"

/*
 * New challenge list [{type, token}] for an identifier: every type of the
 * shared table (core/challenge.c) that pol enables and that can validate
 * it, in table order.
 */
json_t *
ra_new_challenges(const struct ra_policy *pol, enum ident_type type,
    int wildcard, int onion)
{
	json_t *a = json_array();
	const struct chal_info *c;
	char err[160], *tok;
	int t;

	for (t = 0; t < CHAL__MAX; t++) {
		c = chal_info((enum chal_type)t);
		if (!(pol->challenges & CHAL_BIT(t)) ||
		    chal_check(c, type, wildcard, err, sizeof(err)) != 0 ||
		    (type == IDENT_DNS &&
			chal_check_onion(c, onion, err, sizeof(err)) != 0))
			continue;
		tok = random_token(32);
		json_array_append_new(
		    a, json_pack("{s:s,s:s}", "type", c->name, "token", tok));
		free(tok);
	}
	return a;
}

/*
 * ARI replaces: the certificate must exist, belong to the account, share an
 * identifier with the order and not be replaced already.
 */
static int
check_replaces(struct ra *ra, const char *rid, int64_t acct, const char *certid,
    const json_t *idents, struct problem **prob)
{
	char *serial = serial_hex_of_certid(certid);
	json_t *cert = NULL, *res = NULL, *ci, *oi;
	struct problem *p = NULL;
	size_t i, j;
	int shared = 0, rc = -1;

	if (serial == NULL) {
		*prob = problem_new(PROB_MALFORMED,
		    "\"replaces\" is not a "
		    "valid ARI certificate identifier");
		goto out;
	}
	if (ra_call(ra->sa, RPC_SA_GET_CERTIFICATE,
		json_pack("{s:s}", "serial", serial), rid, &cert, &p) != 0) {
		if (p->type == PROB_NOT_FOUND) {
			*prob = problem_new(PROB_MALFORMED,
			    "The certificate "
			    "named in \"replaces\" does not exist");
			problem_free(p);
		} else
			*prob = p;
		goto out;
	}
	if (json_integer_value(json_object_get(cert, "account_id")) != acct) {
		*prob = problem_new(PROB_UNAUTHORIZED,
		    "The certificate named "
		    "in \"replaces\" belongs to another account");
		goto out;
	}
	json_array_foreach(json_object_get(cert, "identifiers"), i, ci)
	{
		json_array_foreach(idents, j, oi)
		{
			if (json_equal(ci, oi))
				shared = 1;
		}
	}
	if (!shared) {
		*prob = problem_new(PROB_MALFORMED,
		    "The order shares no "
		    "identifier with the certificate it replaces");
		goto out;
	}
	if (ra_call(ra->sa, RPC_SA_REPLACEMENT_EXISTS,
		json_pack("{s:s}", "serial", serial), rid, &res, prob) != 0)
		goto out;
	if (json_is_true(json_object_get(res, "exists"))) {
		*prob = problem_new(PROB_ALREADY_REPLACED,
		    "The certificate %s "
		    "has already been replaced",
		    serial);
		goto out;
	}
	rc = 0;
out:
	free(serial);
	json_decref(cert);
	json_decref(res);
	return rc;
}

/*
 * The order's field name (value s, borrowed) as *secs and *ms when
 * present; left alone when absent. 0, or -1 with *prob when s is not an
 * RFC 3339 time.
 */
static int
order_time(const char *name, const char *s, time_t *secs, int64_t *ms,
    struct problem **prob)
{
	if (s == NULL)
		return 0;
	if (time_parse_rfc3339(s, secs) != 0) {
		*prob = problem_new(
		    PROB_MALFORMED, "%s is not an RFC 3339 time", name);
		return -1;
	}
	*ms = (int64_t)*secs * 1000;
	return 0;
}

/*
 * notBefore/notAfter within the profile, measured with the CA's own rule
 * (profile_validity_window: backdated notBefore when absent, inclusive
 * seconds), so an order accepted here is issued at finalize.
 */
static int
check_validity(const struct profile *prof, const char *nb, const char *na,
    int64_t now, struct problem **prob)
{
	time_t nbs = 0, nas = 0, wnb, wna;
	int64_t nbm = now, nam;

	if (nb == NULL && na == NULL)
		return 0;
	if (!prof->allow_validity_request) {
		*prob = problem_new(PROB_MALFORMED,
		    "Profile %s does not allow "
		    "notBefore/notAfter in orders",
		    prof->name);
		return -1;
	}
	if (order_time("notBefore", nb, &nbs, &nbm, prob) != 0)
		return -1;
	nam = nbm + prof->validity_ms;
	if (order_time("notAfter", na, &nas, &nam, prob) != 0)
		return -1;
	if (nbm < now - prof->backdate_ms - 60000) {
		*prob = problem_new(PROB_MALFORMED,
		    "notBefore is too far in "
		    "the past");
		return -1;
	}
	if (nbm > now + prof->order_lifetime_ms) {
		*prob = problem_new(PROB_MALFORMED,
		    "notBefore is too far in "
		    "the future (at most the order lifetime)");
		return -1;
	}
	if (nam <= nbm || nam <= now) {
		*prob = problem_new(PROB_MALFORMED,
		    "notAfter must be after "
		    "notBefore and in the future");
		return -1;
	}
	if (profile_validity_window(
		prof, nbs, nas, (time_t)(now / 1000), &wnb, &wna) != 0) {
		*prob = problem_new(PROB_MALFORMED,
		    "Requested validity exceeds "
		    "profile %s's maximum of %lld seconds, counted "
		    "inclusively from notBefore (default: now minus %lld "
		    "seconds of backdating)",
		    prof->name, (long long)(prof->validity_ms / 1000),
		    (long long)(prof->backdate_ms / 1000));
		return -1;
	}
	return 0;
}

/* Duplicate certificates: the exact identifier set (idents borrowed).
 * 0, or -1 with *prob (rateLimited). A failed count does not block. */
static int
check_duplicate_certs(struct ra *ra, const char *rid,
    const struct profile *prof, const json_t *idents, struct problem **prob)
{
	struct ra_limit tmp;
	const struct ra_limit *l;
	json_t *res = NULL, *v;
	struct problem *p = NULL;
	size_t i;
	int rc = -1;

	l = ra_config_limit(&ra->cfg, RA_RL_DUPLICATE_CERTS, prof->name, &tmp);
	if (l->enabled &&
	    ra_call(ra->sa, RPC_SA_FQDN_SET_ISSUED,
		json_pack("{s:O,s:I}", "identifiers", idents, "window_ms",
		    (json_int_t)l->period_ms),
		rid, &res, &p) == 0) {
		int64_t count =
		    json_integer_value(json_object_get(res, "count"));
		if (count >= l->limit) {
			int64_t oldest = 0, ts, retry;
			json_array_foreach(
			    json_object_get(res, "timestamps"), i, v)
			{
				if (json_is_string(v)) {
					json_t *w = json_pack("{s:O}", "t", v);
					if (ra_time_get(w, "t", &ts) == 0 &&
					    (oldest == 0 || ts < oldest))
						oldest = ts;
					json_decref(w);
				}
			}
			retry = oldest ? oldest + l->period_ms - time_now_ms()
				       : l->period_ms / l->limit;
			if (retry < 1000)
				retry = 1000;
			*prob = problem_new(PROB_RATE_LIMITED,
			    "Rate limit "
			    "duplicate_certificates exceeded: %lld "
			    "certificates for exactly this set of identifiers "
			    "in the last %llds; retry after %llds",
			    (long long)count, (long long)(l->period_ms / 1000),
			    (long long)(retry / 1000));
			(*prob)->retry_after = (int)((retry + 999) / 1000);
			goto out;
		}
	}
	rc = 0;
out:
	problem_free(p);
	json_decref(res);
	return rc;
}

/* Certificates per registered domain (idents borrowed). 0, or -1 with
 * *prob (rateLimited). A failed count does not block. */
static int
check_certs_per_domain(struct ra *ra, const char *rid,
    const struct profile *prof, const json_t *idents, struct problem **prob)
{
	struct ra_limit tmp;
	const struct ra_limit *l;
	json_t *res = NULL, *v, *domains = NULL;
	struct problem *p = NULL;
	const char *k;
	char *dom;
	size_t i;
	int rc = -1;

	l = ra_config_limit(&ra->cfg, RA_RL_CERTS_PER_DOMAIN, prof->name, &tmp);
	if (l->enabled) {
		domains = json_object();
		json_array_foreach(idents, i, v)
		{
			dom = ra_policy_registered_domain(&ra->cfg.policy,
			    json_string_value(json_object_get(v, "value")));
			json_object_set_new(domains, dom, json_true());
			free(dom);
		}
		json_object_foreach(domains, k, v)
		{
			if (ra_call(ra->sa, RPC_SA_COUNT_CERTS_BY_DOMAIN,
				json_pack("{s:s,s:I}", "domain", k, "window_ms",
				    (json_int_t)l->period_ms),
				rid, &res, &p) != 0) {
				problem_free(p);
				p = NULL;
				continue;
			}
			if (json_integer_value(json_object_get(res, "count")) >=
			    l->limit) {
				int64_t retry = l->period_ms / l->limit;
				*prob = problem_new(PROB_RATE_LIMITED,
				    "Rate "
				    "limit certificates_per_domain exceeded "
				    "for %s: %lld per %llds",
				    k, (long long)l->limit,
				    (long long)(l->period_ms / 1000));
				(*prob)->retry_after =
				    (int)((retry + 999) / 1000);
				goto out;
			}
			json_decref(res);
			res = NULL;
		}
	}
	rc = 0;
out:
	json_decref(res);
	json_decref(domains);
	problem_free(p);
	return rc;
}

/* Identifiers in SA form for sa.get_valid_authzs: base name + wildcard. */
static json_t *
authz_idents(const json_t *idents)
{
	json_t *a = json_array(), *v;
	size_t i;
	const char *val;
	int wc;

	json_array_foreach(idents, i, v)
	{
		val = json_string_value(json_object_get(v, "value"));
		wc = strncmp(val, "*.", 2) == 0 &&
		    json_string_value(json_object_get(v, "type")) != NULL &&
		    strcmp(json_string_value(json_object_get(v, "type")),
			"dns") == 0;
		json_array_append_new(a,
		    json_pack("{s:O,s:s,s:b}", "type",
			json_object_get(v, "type"), "value", wc ? val + 2 : val,
			"wildcard", wc));
	}
	return a;
}

static int
check_limits(struct ra *ra, const char *rid, int64_t acct,
    const struct profile *prof, const json_t *idents, int replacing,
    struct problem **prob)
{
	json_t *res = NULL, *v;
	struct problem *p = NULL;
	struct ra_limit t1, t2;
	int renewal = replacing, rc = -1;
	char *key = NULL;
	size_t i;

	/* Renewal: the same identifier set was issued recently. Only asked
	 * when a limit that renewals are exempt from is on (issue 18: no
	 * SA round trip for an answer nobody uses). */
	if (!ra_config_limit(&ra->cfg, RA_RL_CERTS_PER_DOMAIN, prof->name, &t1)
		 ->enabled &&
	    !ra_config_limit(
		&ra->cfg, RA_RL_NEW_ORDERS_PER_ACCOUNT, prof->name, &t2)
		 ->enabled)
		renewal = 1;
	if (!renewal &&
	    ra_call(ra->sa, RPC_SA_FQDN_SET_ISSUED,
		json_pack("{s:O,s:I}", "identifiers", idents, "window_ms",
		    (json_int_t)ra->cfg.renewal_window_ms),
		rid, &res, &p) == 0) {
		renewal = json_integer_value(json_object_get(res, "count")) > 0;
	}
	problem_free(p);
	p = NULL;
	json_decref(res);
	res = NULL;

	/* Failed validations per identifier per account (check only). */
	json_array_foreach(idents, i, v)
	{
		key =
		    xasprintf("failed_validation:acct:%lld:%s", (long long)acct,
			json_string_value(json_object_get(v, "value")));
		if (ra_rl_spend(ra, rid, RA_RL_FAILED_VALIDATIONS, prof->name,
			key, 0, prob) != 0)
			goto out;
		free(key);
		key = NULL;
	}
	if (check_duplicate_certs(ra, rid, prof, idents, prob) != 0)
		goto out;
	if (renewal) {
		rc = 0;
		goto out;
	}
	if (check_certs_per_domain(ra, rid, prof, idents, prob) != 0)
		goto out;
	/* New orders per account (renewals exempt); spent last. */
	key = xasprintf("new_order:acct:%lld", (long long)acct);
	if (ra_rl_spend(ra, rid, RA_RL_NEW_ORDERS_PER_ACCOUNT, prof->name, key,
		1, prob) != 0)
		goto out;
	rc = 0;
out:
	free(key);
	json_decref(res);
	problem_free(p);
	return rc;
}

static int
reuse_roll(struct ra *ra)
{
	uint8_t b[2];

	if (!ra->cfg.authz_reuse_enabled || ra->cfg.authz_reuse_percent <= 0)
		return 0;
	if (ra->cfg.authz_reuse_percent >= 100)
		return 1;
	random_bytes(b, sizeof(b));
	return ((b[0] << 8) | b[1]) % 100 < ra->cfg.authz_reuse_percent;
}

/*
 * How long a reused authz must still be valid: a useful part of the
 * order's life (the order then expires no later than its earliest authz).
 */
static int64_t
reuse_min_left_ms(const struct profile *prof)
{
	int64_t min_left = prof->order_lifetime_ms;

	if (min_left > prof->authz_lifetime_ms / 2)
		min_left = prof->authz_lifetime_ms / 2;
	if (min_left > 86400000LL)
		min_left = 86400000LL;
	return min_left;
}

/* See ra_int.h (also used by delegation.c). */
json_t *
ra_find_reusable(const json_t *reuse, const json_t *v, int64_t id)
{
	json_t *a, *ai;
	size_t j;

	json_array_foreach(json_object_get(reuse, "authzs"), j, a)
	{
		ai = json_object_get(a, "identifier");
		if (json_equal(json_object_get(ai, "type"),
			json_object_get(v, "type")) &&
		    json_equal(json_object_get(ai, "value"),
			json_object_get(v, "value")) &&
		    json_is_true(json_object_get(a, "wildcard")) ==
			json_is_true(json_object_get(v, "wildcard")) &&
		    json_integer_value(json_object_get(a, "account_id")) ==
			id &&
		    json_integer_value(json_object_get(a, "id")) > 0)
			return a;
	}
	return NULL;
}

/* sa.new_order's new_authzs entry for identifier v (borrowed): new. */
static json_t *
new_authz_params(struct ra *ra, const json_t *v, const char *expires)
{
	enum ident_type it = IDENT_DNS;

	(void)ident_type_parse(
	    json_string_value(json_object_get(v, "type")), &it);
	return json_pack("{s:{s:O,s:O},s:O,s:s,s:o}", "identifier", "type",
	    json_object_get(v, "type"), "value", json_object_get(v, "value"),
	    "wildcard", json_object_get(v, "wildcard"), "expires", expires,
	    "challenges",
	    ra_new_challenges(&ra->cfg.policy, it,
		json_is_true(json_object_get(v, "wildcard")),
		it == IDENT_DNS &&
		    ident_onion_name(
			json_string_value(json_object_get(v, "value")))));
}

/* Sets not_before, not_after, replaces on np when given. */
static void
set_optional_strs(
    json_t *np, const char *nb, const char *na, const char *replaces)
{
	if (nb != NULL)
		json_object_set_new(np, "not_before", json_string(nb));
	if (na != NULL)
		json_object_set_new(np, "not_after", json_string(na));
	if (replaces != NULL)
		json_object_set_new(np, "replaces", json_string(replaces));
}

/*
 * The order's validity window: an RFC 8739 auto-renewal object (into
 * *star; star->lifetime 0 when there is none) or notBefore/notAfter. 0,
 * or -1 with *prob.
 */
static int
check_window(struct ra *ra, const struct profile *prof, const json_t *params,
    const char *nb, const char *na, int64_t now, struct ra_star_terms *star,
    struct problem **prob)
{
	if (ra_star_new_order_check(ra, prof, params, nb, na, star, prob) != 0)
		return -1;
	return check_validity(prof, nb, na, now, prob);
}

/* Logs and counts the new order (all borrowed); reused: the authzs of its
 * answer that were valid already. */
static void
new_order_done(
    struct ra *ra, const char *rid, const json_t *order, int64_t id,
    const json_t *idents)
{
	const json_t *a;
	size_t i, reused = 0;
	const char *st;

	json_array_foreach(json_object_get(order, "authzs"), i, a)
	{
		st = json_string_value(json_object_get(a, "status"));
		reused += st != NULL && strcmp(st, "valid") == 0;
	}
	log_msg(LOG_LEVEL_INFO, rid,
	    "new order %lld account=%lld "
	    "identifiers=%zu reused=%zu",
	    (long long)json_integer_value(json_object_get(order, "id")),
	    (long long)id, json_array_size(idents), reused);
	ra_count(ra, "anvil_ra_new_orders_total", NULL);
}

/*
 * For each authz identifier of aidents (borrowed): a reusable valid authz
 * of account id found in reuse (its id into reuse_ids, *expires lowered to
 * its expiry), an ancestor's subdomain authz (ra_sub_cover), or a new
 * authz (params into new_authzs, pending until t_aexp). With fold (no
 * look-up made, reuse NULL) a new authz that may be a reused one is marked
 * "reusable" (ra_sub_reusable): sa.new_order takes a valid one instead.
 */
static void
plan_authzs(struct ra *ra, const json_t *aidents, const json_t *reuse,
    struct ra_sub *sub, int64_t id, const char *t_aexp, int fold,
    json_t *reuse_ids, json_t *new_authzs, int64_t *expires)
{
	const json_t *v;
	json_t *a;
	int64_t ae;
	size_t i;

	json_array_foreach(aidents, i, v)
	{
		if (ra_rats_reusable(v) &&
		    (a = ra_find_reusable(reuse, v, id)) != NULL) {
			ra_ids_add(reuse_ids,
			    json_integer_value(json_object_get(a, "id")));
			if (ra_time_get(a, "expires", &ae) == 0 && ae < *expires)
				*expires = ae;
			continue;
		}
		if (ra_sub_cover(
			ra, sub, v, reuse_ids, new_authzs, t_aexp, expires))
			continue;
		a = new_authz_params(ra, v, t_aexp);
		if (fold && ra_rats_reusable(v))
			ra_sub_reusable(sub, v, a);
		json_array_append_new(new_authzs, a);
	}
}

/*
 * The account (*acct, new) when policy.device_identifiers needs its EAB
 * key id: only for an order with a device identifier (idents borrowed);
 * otherwise *acct stays NULL and nothing is read (sa.new_order checks the
 * account's status). 0, or -1 with *prob.
 */
static int
device_account(struct ra *ra, const char *rid, int64_t id,
    const json_t *idents, json_t **acct, struct problem **prob)
{
	const json_t *v;
	enum ident_type t;
	size_t i;

	if (ra->cfg.policy.device_identifiers == NULL)
		return 0;
	json_array_foreach(idents, i, v)
	{
		if (ident_type_parse(json_string_value(json_object_get(v, "type")),
			&t) == 0 &&
		    ident_is_device(t))
			return ra_get_valid_account(ra, rid, id, acct, prob);
	}
	return 0;
}

/* ra.new_order handler (docs/rpc-methods.md): req borrowed; on 0 *result, on -1
 * *prob, both handed to the RPC server. */
int
ra_h_new_order(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	struct ra *ra = svc;
	json_t *params = req->params, *idents = NULL, *acct = NULL;
	json_t *aidents = NULL, *reuse = NULL, *reuse_ids = NULL;
	json_t *new_authzs = NULL, *order = NULL, *np;
	struct ra_sub *sub = NULL;
	const struct profile *prof;
	const char *pname, *nb, *na, *replaces;
	int64_t id, now = time_now_ms(), expires, t0 = time_mono_ms();
	char t_exp[32], t_aexp[32], t_cut[32];
	int rc = -1, rolled, fold;
	struct ra_star_terms star;

	if (ra_param_id(params, "account_id", &id, prob) != 0 ||
	    ra_param_str(params, "profile", &pname, prob) != 0 ||
	    ra_param_str(params, "not_before", &nb, prob) != 0 ||
	    ra_param_str(params, "not_after", &na, prob) != 0 ||
	    ra_param_str(params, "replaces", &replaces, prob) != 0)
		goto out;
	/* The account's status is checked by sa.new_order, in the
	 * transaction that creates the order (no read first, issue 18). */
	prof = profiles_find(ra->profiles, pname);
	if (prof == NULL) {
		*prob = problem_new(
		    PROB_INVALID_PROFILE, "Unknown profile \"%.64s\"", pname);
		goto out;
	}
	if (ra_policy_check_idents(&ra->cfg.policy, prof,
		json_object_get(params, "identifiers"), &idents, prob) != 0 ||
	    device_account(ra, req->request_id, id, idents, &acct, prob) != 0 ||
	    ra_device_policy_check(ra->cfg.policy.device_identifiers, acct,
		idents, prob) != 0 ||
	    check_window(ra, prof, params, nb, na, now, &star, prob) != 0 ||
	    (replaces != NULL &&
		check_replaces(
		    ra, req->request_id, id, replaces, idents, prob) != 0) ||
	    check_limits(ra, req->request_id, id, prof, idents,
		replaces != NULL, prob) != 0)
		goto out;

	expires = now + prof->order_lifetime_ms;
	ra_time_fmt(expires, t_exp, sizeof(t_exp));
	ra_time_fmt(
	    now + prof->pending_authz_lifetime_ms, t_aexp, sizeof(t_aexp));
	aidents = authz_idents(idents);
	/* RFC 9115: an order under a delegation, on the owner's authzs */
	if (json_object_get(params, "delegation_id") != NULL) {
		if (ra_deleg_new_order(ra, req->request_id, id, prof, idents,
			aidents, params, &order, prob) != 0)
			goto out;
		goto attach;
	}
	reuse_ids = json_array();
	new_authzs = json_array();
	ra_time_fmt(now + reuse_min_left_ms(prof), t_cut, sizeof(t_cut));
	rolled = reuse_roll(ra);
	if (ra_sub_plan(ra, req->request_id, id, prof,
		json_object_get(params, "identifiers"), t_cut, rolled, aidents,
		&reuse, &sub, prob) != 0)
		goto out;
	/* Reuse without a look-up first: sa.new_order finds the valid authzs
	 * (the ancestors' subdomain ones too) in its statement (issue 18);
	 * the RFC 9444 plan looked them up itself when an ancestorDomain was
	 * asked for. */
	fold = rolled && reuse == NULL;
	plan_authzs(ra, aidents, reuse, sub, id, t_aexp, fold, reuse_ids,
	    new_authzs, &expires);
	ra_time_fmt(expires, t_exp, sizeof(t_exp));
	np = json_pack("{s:I,s:s,s:O,s:s,s:O,s:O}", "account_id",
	    (json_int_t)id, "expires", t_exp, "identifiers", idents, "profile",
	    prof->name, "reuse_authz_ids", reuse_ids, "new_authzs", new_authzs);
	set_optional_strs(np, nb, na, replaces);
	if (fold)
		json_object_set_new(np, "reuse_valid_after", json_string(t_cut));
	/* One SA call: the order comes back with its authzs. */
	json_object_set_new(np, "with_authzs", json_true());
	if (ra_call(ra->sa, RPC_SA_NEW_ORDER, np, req->request_id, &order,
		prob) != 0)
		goto out;
attach:
	if (ra_star_new_order_attach(ra, req->request_id, &order, &star, prob))
		goto out;
	new_order_done(ra, req->request_id, order, id, idents);
	ra_email_send_for_order(ra, req->request_id, order);
	ra_order_created(ra, order, t0);
	*result = order;
	order = NULL;
	rc = 0;
out:
	json_decref(acct);
	ra_sub_free(sub);
	json_decref(idents);
	json_decref(aidents);
	json_decref(reuse);
	json_decref(reuse_ids);
	json_decref(new_authzs);
	json_decref(order);
	return rc;
}

/* ra.new_authz handler (docs/rpc-methods.md): req borrowed; on 0 *result, on -1
 * *prob, both handed to the RPC server. */
int
ra_h_new_authz(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	struct ra *ra = svc;
	json_t *params = req->params, *acct = NULL, *one = NULL, *idents = NULL;
	json_t *chs;
	const struct profile *prof;
	const char *pname, *val;
	enum ident_type it = IDENT_DNS;
	int64_t id;
	char t[32];
	int rc = -1, sub, onion;

	if (ra_param_id(params, "account_id", &id, prob) != 0 ||
	    ra_param_str(params, "profile", &pname, prob) != 0)
		goto out;
	if (ra_get_valid_account(ra, req->request_id, id, &acct, prob) != 0)
		goto out;
	prof = profiles_find(ra->profiles, pname);
	if (prof == NULL) {
		*prob = problem_new(PROB_INVALID_PROFILE,
		    "Unknown profile "
		    "\"%.64s\"",
		    pname);
		goto out;
	}
	one = json_pack("[O]",
	    json_object_get(params, "identifier")
		? json_object_get(params, "identifier")
		: json_null());
	if (ra_policy_check_idents(&ra->cfg.policy, prof, one, &idents, prob) !=
		0 ||
	    ra_device_policy_check(
		ra->cfg.policy.device_identifiers, acct, idents, prob) != 0)
		goto out;
	val = json_string_value(
	    json_object_get(json_array_get(idents, 0), "value"));
	if (strncmp(val, "*.", 2) == 0) {
		*prob = problem_new(PROB_REJECTED_IDENTIFIER,
		    "Pre-authorization "
		    "is not possible for wildcard names");
		goto out;
	}
	(void)ident_type_parse(json_string_value(json_object_get(
				   json_array_get(idents, 0), "type")),
	    &it);
	ra_time_fmt(
	    time_now_ms() + prof->pending_authz_lifetime_ms, t, sizeof(t));
	/* RFC 9444 §4.2: "subdomainAuthAllowed" asks for an authorization of
	 * every name below this one; without the policy it is a plain one. */
	chs = NULL;
	onion = it == IDENT_DNS &&
	    ident_onion_name(json_string_value(
		json_object_get(json_array_get(idents, 0), "value")));
	/* a .onion name has no dns-01 ancestor (RFC 9799 §3.1.1) */
	if (it == IDENT_DNS && !onion && ra->cfg.policy.subdomain_auth &&
	    json_is_true(json_object_get(
		json_object_get(params, "identifier"), "subdomainAuthAllowed")))
		chs = ra_sub_challenges(ra);
	sub = chs != NULL;
	if (chs == NULL)
		chs = ra_new_challenges(&ra->cfg.policy, it, 0, onion);
	if (ra_call(ra->sa, RPC_SA_NEW_AUTHZ,
		json_pack("{s:I,s:O,s:b,s:b,s:s,s:s,s:o}", "account_id",
		    (json_int_t)id, "identifier", json_array_get(idents, 0),
		    "wildcard", 0, "subdomain_auth", sub, "expires", t,
		    "profile", prof->name, "challenges", chs),
		req->request_id, result, prob) != 0)
		goto out;
	if (it == IDENT_EMAIL) {
		json_t *one_authz = json_pack("[O]", *result);
		ra_email_send_challenges(ra, req->request_id, one_authz);
		json_decref(one_authz);
	}
	rc = 0;
out:
	json_decref(acct);
	json_decref(one);
	json_decref(idents);
	return rc;
}
