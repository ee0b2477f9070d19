/*
 * issuers.c - the issuer certificates of ca.get_issuers, cached (rpc.c),
 * for the certificate chains and /issuer/.
 */
#include <stdlib.h>
#include <string.h>

#include "wfe/wfe_int.h"

/* See wfe_int.h. */
json_t *
wfe_issuers_all(struct wfe_req *r)
{
	json_t *all;

	all = wfe_cached_call(r, r->w->ra, &r->w->issuers, &r->w->issuers_at_ms,
	    RPC_RA_GET_ISSUERS);
	if (all == NULL) {
		struct problem *p = problem_new(
		    PROB_UNAVAILABLE, "certificate authority unavailable");
		p->retry_after = 5;
		wfe_reply_problem(r, p);
	}
	return all;
}

/* See wfe_int.h. */
json_t *
wfe_issuer_find(struct wfe_req *r, const char *id)
{
	json_t *all, *v, *found = NULL;
	size_t i;

	if ((all = wfe_issuers_all(r)) == NULL)
		return NULL;
	json_array_foreach(json_object_get(all, "issuers"), i, v)
	{
		const char *vid = json_string_value(json_object_get(v, "id"));
		if (vid != NULL && strcmp(vid, id) == 0) {
			found = json_incref(v);
			break;
		}
	}
	json_decref(all);
	if (found == NULL)
		wfe_reply_prob(r, PROB_NOT_FOUND, "no such issuer");
	return found;
}
