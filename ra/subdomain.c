/*
 * subdomain.c - RFC 9444 subdomain authorizations in newOrder: an
 * identifier's "ancestorDomain" (when the policy allows it) gets one
 * pending authorization of that ancestor with subdomainAuthAllowed, and a
 * valid subdomain authorization of the same account for any ancestor of a
 * requested name is reused for it. Only dns-01 is offered on an ancestor.
 */
#include <stdlib.h>
#include <string.h>

#include "ra/ra_int.h"

struct ra_sub {
	json_t *wanted;  /* {"<name>": "<ancestor>"}: ancestorDomain accepted */
	json_t *planned; /* {"<ancestor>": index in new_authzs or -1} */
	json_t *valid;   /* valid subdomain authzs of the account (SA form) */
	json_t *anc;     /* {"<name>": [ancestors]}: looked up by sa.new_order */
};

/* See ra_int.h. */
void
ra_sub_free(struct ra_sub *s)
{
	if (s == NULL)
		return;
	json_decref(s->wanted);
	json_decref(s->planned);
	json_decref(s->valid);
	json_decref(s->anc);
	free(s);
}

/* 1 if the identifier object (borrowed) has type "dns". */
static int
is_dns(const json_t *ident)
{
	const char *t = json_string_value(json_object_get(ident, "type"));

	return t != NULL && strcmp(t, "dns") == 0;
}

/* Lowercased copy (identifier values are compared normalised). */
static char *
lower(const char *s)
{
	char *o = xstrdup(s), *p;

	for (p = o; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return o;
}

/* See ra_int.h. */
json_t *
ra_valid_authzs(struct ra *ra, const char *rid, int64_t acct,
    const struct profile *prof, json_t *idents, const char *cut)
{
	json_t *res = NULL;
	struct problem *p = NULL;

	if (ra_call(ra->sa, RPC_SA_GET_VALID_AUTHZS,
		json_pack("{s:I,s:O,s:s,s:s}", "account_id", (json_int_t)acct,
		    "identifiers", idents, "profile", prof->name,
		    "valid_until_after", cut),
		rid, &res, &p) != 0) {
		log_msg(LOG_LEVEL_WARN, rid, "valid authz lookup failed: %s",
		    p->detail ? p->detail : "error");
		problem_free(p);
		return NULL;
	}
	return res;
}

/*
 * One sa.get_valid_authzs for q (borrowed: the ancestors' subdomain
 * authorizations, and the order's own identifiers when reuse is set):
 * valid subdomain authorizations of the account go to s->valid; *reuse
 * (when not NULL) gets the whole answer for the exact-name reuse (an empty
 * one when the look-up failed: the order then gets new authzs).
 */
static void
sub_lookup(struct ra *ra, const char *rid, int64_t acct,
    const struct profile *prof, const char *t_cut, json_t *q,
    struct ra_sub *s, json_t **reuse)
{
	json_t *res = ra_valid_authzs(ra, rid, acct, prof, q, t_cut), *v;
	size_t j;

	if (res == NULL) {
		if (reuse != NULL)
			*reuse = json_pack("{s:[]}", "authzs");
		return;
	}
	json_array_foreach(json_object_get(res, "authzs"), j, v)
	{
		/* the SA filters by account; be sure */
		if (json_integer_value(json_object_get(v, "account_id")) ==
			acct &&
		    json_is_true(json_object_get(v, "subdomain_auth")))
			json_array_append(s->valid, v);
	}
	if (reuse != NULL)
		*reuse = json_incref(res);
	json_decref(res);
}

/* See ra_int.h. */
int
ra_sub_plan(struct ra *ra, const char *rid, int64_t acct,
    const struct profile *prof, const json_t *raw, const char *t_cut,
    int lookup, const json_t *exact, json_t **reuse, struct ra_sub **out,
    struct problem **prob)
{
	struct ra_sub *s = xcalloc(1, sizeof(*s));
	json_t *v, *anc, *q = NULL, *list;
	const char *val;
	char *name = NULL, *norm = NULL;
	size_t i, j;
	int rc = -1, r;

	s->wanted = json_object();
	s->planned = json_object();
	s->valid = json_array();
	s->anc = json_object();
	*out = NULL;
	if (!ra->cfg.policy.subdomain_auth) {
		/* not offered: "ancestorDomain" is an unknown member here */
		*out = s;
		return 0;
	}
	q = json_array();
	json_array_foreach(raw, i, v)
	{
		val = json_string_value(json_object_get(v, "value"));
		if (val == NULL || !is_dns(v))
			continue;
		free(name);
		name = lower(val);
		anc = json_object_get(v, "ancestorDomain");
		if (anc != NULL && !json_is_null(anc)) {
			if (!json_is_string(anc)) {
				*prob = problem_new(PROB_MALFORMED,
				    "ancestorDomain must be a string");
				goto out;
			}
			if (strncmp(name, "*.", 2) == 0) {
				/* a wildcard keeps its own authorization */
			} else if ((r = ra_policy_ancestor(&ra->cfg.policy,
					prof, name, json_string_value(anc),
					&norm, prob)) < 0)
				goto out;
			else if (r == 1) {
				json_object_set_new(
				    s->wanted, name, json_string(norm));
				json_object_set_new(
				    s->planned, norm, json_integer(-1));
			}
			free(norm);
			norm = NULL;
		}
		if (!lookup || strncmp(name, "*.", 2) == 0)
			continue;
		list = ra_policy_ancestors(&ra->cfg.policy, prof, name);
		json_array_foreach(list, j, anc)
		{
			json_array_append_new(q,
			    json_pack("{s:s,s:O,s:b,s:b}", "type", "dns",
				"value", anc, "wildcard", 0, "subdomain_auth",
				1));
		}
		/* RFC 9799 §3.1.1: a .onion name has no dns-01 ancestor */
		if (json_array_size(list) > 0 && !ident_onion_name(name))
			json_object_set(s->anc, name, list);
		json_decref(list);
	}
	/* Nothing asked of an ancestor: sa.new_order finds the reusable
	 * authzs, the ancestors' too, in its statement (ra_sub_reusable). */
	if (exact != NULL && lookup && json_object_size(s->wanted) == 0) {
		*out = s;
		s = NULL;
		rc = 0;
		goto out;
	}
	json_object_clear(s->anc);
	if (exact != NULL && lookup)
		json_array_extend(q, (json_t *)exact);
	if (json_array_size(q) > 0)
		sub_lookup(ra, rid, acct, prof, t_cut, q, s,
		    exact != NULL && lookup ? reuse : NULL);
	*out = s;
	s = NULL;
	rc = 0;
out:
	ra_sub_free(s);
	json_decref(q);
	free(name);
	free(norm);
	return rc;
}

/* See ra_int.h. */
json_t *
ra_sub_challenges(struct ra *ra)
{
	char *tok;
	json_t *chs;

	/* RFC 9444 §6 leaves the methods to policy; control of a whole
	 * subtree is proven in its DNS zone, so dns-01 only. */
	if (!(ra->cfg.policy.challenges & CHAL_BIT(CHAL_DNS01)))
		return NULL;
	tok = random_token(32);
	chs = json_pack("[{s:s,s:s}]", "type", "dns-01", "token", tok);
	free(tok);
	return chs;
}

/* See ra_int.h. */
void
ra_ids_add(json_t *ids, json_int_t id)
{
	size_t i;
	json_t *v;

	json_array_foreach(ids, i, v)
	{
		if (json_integer_value(v) == id)
			return;
	}
	json_array_append_new(ids, json_integer(id));
}

/* 1 if anc (normalised) is a proper ancestor of name in whole labels. */
static int
is_ancestor(const char *anc, const char *name)
{
	size_t al = strlen(anc), nl = strlen(name);

	return al + 1 < nl && name[nl - al - 1] == '.' &&
	    strcmp(name + nl - al, anc) == 0;
}

/* See ra_int.h. */
int
ra_sub_cover(struct ra *ra, struct ra_sub *s, const json_t *ident,
    json_t *reuse_ids, json_t *new_authzs, const char *t_aexp, int64_t *expires)
{
	const char *name = json_string_value(json_object_get(ident, "value"));
	const char *want;
	json_t *a, *slot, *chs;
	size_t i;
	int64_t ae;

	if (s == NULL || !ra->cfg.policy.subdomain_auth || name == NULL ||
	    json_is_true(json_object_get(ident, "wildcard")) || !is_dns(ident) ||
	    ident_onion_name(name))
		return 0; /* RFC 9799 §3.1.1: no dns-01 for a .onion name */
	/* A valid subdomain authorization of this account for an ancestor. */
	json_array_foreach(s->valid, i, a)
	{
		const char *av = json_string_value(
		    json_object_get(json_object_get(a, "identifier"), "value"));
		if (av != NULL && is_ancestor(av, name)) {
			ra_ids_add(reuse_ids,
			    json_integer_value(json_object_get(a, "id")));
			if (ra_time_get(a, "expires", &ae) == 0 &&
			    ae < *expires)
				*expires = ae;
			return 1;
		}
	}
	/* The ancestor the client asked for, or the name itself when another
	 * identifier names it as its ancestor: one new authorization. */
	want = json_string_value(json_object_get(s->wanted, name));
	if (want == NULL && json_object_get(s->planned, name) != NULL)
		want = name;
	if (want == NULL)
		return 0;
	slot = json_object_get(s->planned, want);
	if (slot != NULL && json_integer_value(slot) >= 0)
		return 1; /* already created for another identifier */
	if ((chs = ra_sub_challenges(ra)) == NULL)
		return 0;
	json_object_set_new(s->planned, want,
	    json_integer((json_int_t)json_array_size(new_authzs)));
	json_array_append_new(new_authzs,
	    json_pack("{s:{s:s,s:s},s:b,s:b,s:s,s:o}", "identifier", "type",
		"dns", "value", want, "wildcard", 0, "subdomain_auth", 1,
		"expires", t_aexp, "challenges", chs));
	return 1;
}

/* See ra_int.h. */
void
ra_sub_reusable(const struct ra_sub *s, const json_t *ident, json_t *entry)
{
	json_t *list = NULL;
	char *name;

	if (s != NULL && !json_is_true(json_object_get(ident, "wildcard")) &&
	    is_dns(ident) &&
	    json_string_value(json_object_get(ident, "value")) != NULL) {
		name = lower(json_string_value(json_object_get(ident, "value")));
		list = json_object_get(s->anc, name);
		free(name);
	}
	json_object_set_new(entry, "reusable", json_true());
	if (list != NULL)
		json_object_set(entry, "ancestors", list);
}

/* ra.directory_meta handler (docs/rpc-methods.md): the directory "meta"
 * fields the RA's policy switches on. req borrowed; *result new. */
int
ra_h_directory_meta(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	struct ra *ra = svc;
	json_t *meta = json_object();

	(void)req;
	(void)prob;
	/* RFC 9444 §4.4: advertised only when the policy issues them */
	if (ra->cfg.policy.subdomain_auth)
		json_object_set_new(meta, "subdomainAuthAllowed", json_true());
	ra_persist_meta(ra, meta);
	ra_onion_meta(ra, meta);
	ra_star_meta(ra, meta);
	ra_deleg_meta(ra, meta);
	*result = json_pack("{s:o}", "meta", meta);
	/* RFC 8823 §3: the WFE shows it as the email-reply-00 "from" */
	if (ra->cfg.policy.email_from != NULL)
		json_object_set_new(*result, "email_from",
		    json_string(ra->cfg.policy.email_from));
	/* RFC 9447 §3: the WFE shows it as tkauth-01's "token-authority" */
	if (ra->cfg.policy.token_authority != NULL)
		json_object_set_new(*result, "token_authority",
		    json_string(ra->cfg.policy.token_authority));
	return 0;
}
