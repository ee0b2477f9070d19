/*
 * persist.c - the RA's side of dns-persist-01 (draft-ietf-acme-dns-persist):
 * the hashed account URIs that identify an account (§4.2: every key it has
 * used, each with the validated FQDN and with "*"), the parameters handed
 * to the VA, the persistUntil bound on the authorization's expiry (§4.1
 * item 5) and the directory meta fields (§3.2, §4.1).
 */
#include <stdlib.h>
#include <string.h>

#include "ra/ra_int.h"

/* Appends the two hashed URIs (fqdn and "*") of one thumbprint. */
static void
add_uris(json_t *uris, const char *prefix, const char *fqdn, const char *tp,
    const char *account_url)
{
	const char *doms[2] = {fqdn, "*"};
	char *u;
	size_t i;

	for (i = 0; i < 2; i++) {
		u = ra_persist_account_uri(prefix, doms[i], tp, account_url);
		if (u != NULL)
			json_array_append_new(uris, json_string(u));
		free(u);
	}
}

/* See ra_int.h. */
json_t *
ra_persist_params(struct ra *ra, const json_t *acct, const char *account_url,
    const char *fqdn)
{
	const struct ra_policy *pol = &ra->cfg.policy;
	json_t *names = json_array(), *uris = json_array(), *v;
	const char *tp;
	size_t i;

	for (i = 0; i < pol->n_persist_names; i++)
		json_array_append_new(names, json_string(pol->persist_names[i]));
	/* §4.2: "the CA MUST evaluate the account's current key first, and
	 * SHOULD evaluate remaining retained keys in reverse chronological
	 * order"; the account is valid (checked live by the caller, rule 1) */
	tp = json_string_value(json_object_get(acct, "thumbprint"));
	if (tp != NULL)
		add_uris(uris, pol->persist_prefix, fqdn, tp, account_url);
	json_array_foreach(json_object_get(acct, "prior_thumbprints"), i, v)
	{
		if (json_is_string(v))
			add_uris(uris, pol->persist_prefix, fqdn,
			    json_string_value(v), account_url);
	}
	return json_pack("{s:o,s:o,s:s}", "issuer_domain_names", names,
	    "account_uris", uris, "account_hash_prefix", pol->persist_prefix);
}

/* See ra_int.h. */
int64_t
ra_persist_until_ms(const json_t *validation_record)
{
	size_t i;
	json_t *hop;
	int64_t until = 0;

	json_array_foreach(validation_record, i, hop)
	{
		json_t *u = json_object_get(hop, "persist_until");
		if (json_is_integer(u) && json_integer_value(u) > 0)
			until = json_integer_value(u) * 1000;
	}
	return until;
}

/* See ra_int.h. */
void
ra_persist_meta(struct ra *ra, json_t *meta)
{
	const struct ra_policy *pol = &ra->cfg.policy;
	json_t *names;
	size_t i;

	if (!(pol->challenges & CHAL_BIT(CHAL_DNSPERSIST01)))
		return;
	names = json_array();
	for (i = 0; i < pol->n_persist_names; i++)
		json_array_append_new(names, json_string(pol->persist_names[i]));
	/* §3.2 issuerDomainNames, §4.1 accountHashPrefix */
	json_object_set_new(meta, "issuerDomainNames", names);
	json_object_set_new(
	    meta, "accountHashPrefix", json_string(pol->persist_prefix));
}
