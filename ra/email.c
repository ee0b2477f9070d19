/*
 * email.c - RFC 8823 §3: once an authorization for an email identifier
 * exists, the RA asks the VA to send its challenge email (the VA knows
 * token-part1 and talks to the MTA; the RA knows the policy's From).
 */
#include <string.h>

#include "ra/ra_int.h"

/* See ra_int.h. */
void
ra_email_send_challenges(struct ra *ra, const char *rid, const json_t *authzs)
{
	const json_t *a, *c, *id;
	struct problem *p = NULL;
	json_t *res = NULL;
	size_t i, k;

	if (ra->cfg.policy.email_from == NULL ||
	    !(ra->cfg.policy.challenges & CHAL_BIT(CHAL_EMAILREPLY00)))
		return;
	json_array_foreach(authzs, i, a)
	{
		const char *st =
		    json_string_value(json_object_get(a, "status"));

		id = json_object_get(a, "identifier");
		if (st == NULL || strcmp(st, "pending") != 0 ||
		    json_string_value(json_object_get(id, "type")) == NULL ||
		    strcmp(json_string_value(json_object_get(id, "type")),
			"email") != 0)
			continue;
		json_array_foreach(json_object_get(a, "challenges"), k, c)
		{
			const char *t =
			    json_string_value(json_object_get(c, "type"));
			const char *cs =
			    json_string_value(json_object_get(c, "status"));
			if (t == NULL || strcmp(t, "email-reply-00") != 0 ||
			    (cs != NULL && strcmp(cs, "pending") != 0))
				continue;
			if (ra_call(ra->va, RPC_VA_SEND_EMAIL_CHALLENGE,
				json_pack("{s:O,s:O,s:s}", "identifier", id,
				    "token", json_object_get(c, "token"),
				    "from", ra->cfg.policy.email_from),
				rid, &res, &p) != 0) {
				/* the order stands; without the email its
				 * challenge fails when the client POSTs it */
				log_msg(LOG_LEVEL_ERROR, rid,
				    "email-reply-00: the challenge email to "
				    "%s was not sent: %s",
				    json_string_value(
					json_object_get(id, "value")),
				    p && p->detail ? p->detail : "error");
				problem_free(p);
				p = NULL;
			}
			json_decref(res);
			res = NULL;
		}
	}
}

/* See ra_int.h. */
void
ra_email_send_for_order(struct ra *ra, const char *rid, const json_t *order)
{
	ra_email_send_challenges(ra, rid, json_object_get(order, "authzs"));
}
