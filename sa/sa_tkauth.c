/*
 * sa_tkauth.c - the tkauth-01 Authority Tokens already spent
 * (schema/0015_tkauth_jti.sql): RFC 9447 §4 replay prevention. The rule
 * (one token, one challenge) is the RA's (ra/tkauth.c); this file stores
 * the first use atomically.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sa/sa_int.h"

/*
 * The first spender inserts; anyone later reads who spent it. Under a
 * concurrent first use the loser's INSERT waits, does nothing, and its
 * SELECT (same snapshot) may see no row: no row is "spent by another".
 *
 * The same statement prunes: up to 100 rows whose token expired more than
 * an hour ago (a token past "exp" is refused by the VA anyway, RFC 9448 §6
 * step 7; the hour covers the seconds between the VA's check and this
 * spend, and clock differences). SKIP LOCKED: two spenders never wait on
 * (or deadlock over) each other's pruning. No timer needed: the table only
 * grows through this statement.
 */
static const struct sa_stmt st_jti_spend = {"tkauth_jti_spend",
    "WITH gone AS (DELETE FROM tkauth_jtis WHERE (issuer, jti) IN "
    "(SELECT issuer, jti FROM tkauth_jtis "
    "WHERE expires < now() - interval '1 hour' "
    "ORDER BY expires LIMIT 100 FOR UPDATE SKIP LOCKED)), "
    "ins AS (INSERT INTO tkauth_jtis (issuer, jti, account_id, "
    "challenge_id, expires) VALUES ($1, $2, $3, $4, $5) "
    "ON CONFLICT (issuer, jti) DO NOTHING RETURNING challenge_id) "
    "SELECT challenge_id FROM ins UNION ALL "
    "SELECT challenge_id FROM tkauth_jtis WHERE issuer = $1 AND jti = $2 "
    "LIMIT 1"};

static const struct sa_in in_spend[] = {SA_REQ("issuer", SA_IN_STR, 1024),
    SA_REQ("jti", SA_IN_STR, 1024), SA_REQ("account_id", SA_IN_ID, 0),
    SA_REQ("challenge_id", SA_IN_ID, 0), SA_REQ("expires", SA_IN_TIME, 0)};

/* sa.tkauth_spend_jti (docs/rpc-methods.md). */
int
sa_m_tkauth_spend_jti(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct sa_params p;
	int64_t cid, by = 0;
	PGresult *r;

	if (sa_bind(params, in_spend, SA_NCOLS(in_spend), &p, prob) != 0)
		return -1;
	cid = strtoll(p.v[3], NULL, 10);
	r = sa_q(c, &st_jti_spend, &p, prob);
	sa_params_clear(&p);
	if (r == NULL)
		return -1;
	if (PQntuples(r) == 1)
		by = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	if (by == cid) {
		*result = json_pack("{s:I}", "challenge_id", (json_int_t)cid);
		return 0;
	}
	*prob = problem_new(PROB_CONFLICT,
	    by > 0 ? "the token was spent on challenge %lld"
		   : "the token is being spent on another challenge",
	    (long long)by);
	return -1;
}
