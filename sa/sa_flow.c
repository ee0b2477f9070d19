/*
 * sa_flow.c - coarse methods for the issuance hot path (issue 18): one RPC
 * does one step of the ACME flow in one statement, checking in SQL what
 * the RA used to read first (ownership, account status, states).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sa/sa_int.h"

/* clang-format off */
/*
 * Starts the validation of challenge $2 of authz $1 for account $3, in one
 * statement (so one transaction): the authz must belong to the account,
 * be pending, unexpired and not yet attempted, the account must be valid
 * and the challenge pending and not of a type in $4 (those the caller's
 * response cannot answer); then the authz is marked attempted and the
 * challenge processing. Answers with the authz as it is now (whether
 * claimed or not: no read after the write), whether it was claimed
 * (exactly one concurrent caller gets true) and then the account's key
 * thumbprint (for the key authorization). No row: no such authz. A
 * caller that lost a race to another claim sees the authz as its
 * statement's snapshot had it (before the winner's commit).
 */
static const struct sa_stmt st_chall_start = {"chall_start",
    /* the authz, marked attempted if every condition holds */
    "WITH az AS (UPDATE authzs SET attempted_at = now() "
    "WHERE " SA_CLAIMABLE("$3", "$4") " RETURNING id), "
    /* the challenge, processing if its authz was claimed */
    "ch AS (UPDATE challenges SET status = 'processing', "
    "attempted_at = now() WHERE id = $2 AND authz_id IN (SELECT id FROM az) "
    "AND status = 'pending' RETURNING *), "
    /* the authz's challenges as they are now (the claimed one updated) */
    "now_c AS (SELECT * FROM ch UNION ALL SELECT * FROM challenges "
    "WHERE authz_id = $1 AND id NOT IN (SELECT id FROM ch)) "
    SA_AUTHZ_SELECT("now_c") ", EXISTS (SELECT 1 FROM ch), "
    "(SELECT thumbprint FROM accounts WHERE id = $3 AND EXISTS "
    "(SELECT 1 FROM ch)) FROM authzs WHERE id = $1"};
/*
 * What st_chall_start would answer, read-only: the authz, whether it
 * could be claimed now and then the account key's thumbprint. The RA
 * validates first and writes claim and result in one statement
 * (sa.record_validation), which checks the same conditions again.
 */
static const struct sa_stmt st_chall_peek = {"chall_peek",
    "WITH ok AS (SELECT 1 FROM authzs WHERE " SA_CLAIMABLE("$3", "$4") ") "
    SA_AUTHZ_SELECT("challenges") ", EXISTS (SELECT 1 FROM ok), "
    "(SELECT thumbprint FROM accounts WHERE id = $3 AND EXISTS "
    "(SELECT 1 FROM ok)) FROM authzs WHERE id = $1"};
/* clang-format on */

/* A text[] literal of challenge type names (a JSON array of strings,
 * borrowed; NULL = none) into *out (caller frees). 0, or -1 with *prob. */
static int
types_literal(const json_t *types, char **out, struct problem **prob)
{
	size_t i, len = 3;
	json_t *v;
	const char *t;
	char *s;

	if (json_array_size(types) > 16) {
		*prob = problem_new(PROB_MALFORMED, "except_types: too many");
		return -1;
	}
	json_array_foreach(types, i, v)
	{
		t = json_string_value(v);
		if (t == NULL || t[0] == '\0' || strlen(t) > 64 ||
		    strspn(t, "abcdefghijklmnopqrstuvwxyz0123456789-") !=
			strlen(t)) {
			*prob = problem_new(PROB_MALFORMED,
			    "except_types: challenge type names expected");
			return -1;
		}
		len += strlen(t) + 1;
	}
	s = xcalloc(len, 1);
	strcat(s, "{");
	json_array_foreach(types, i, v)
	{
		if (i > 0)
			strcat(s, ",");
		strcat(s, json_string_value(v));
	}
	strcat(s, "}");
	*out = s;
	return 0;
}

/*
 * Runs st (st_chall_start or st_chall_peek: $1 authz, $2 challenge, $3
 * account, $4 types left out) for params (borrowed); *result (new) says
 * under key whether the challenge was (could be) claimed.
 */
static int
chall_claim(struct sa_conn *c, const struct sa_stmt *st, const char *key,
    json_t *params, json_t **result, struct problem **prob)
{
	struct sa_params p;
	int64_t acct = 0, azid = 0, cid = 0;
	json_t *authz, *except = NULL;
	PGresult *r;
	char *types = NULL;
	int claimed;

	if (sa_get_id(params, "account_id", 1, &acct, prob) < 0 ||
	    sa_get_id(params, "authz_id", 1, &azid, prob) < 0 ||
	    sa_get_id(params, "challenge_id", 1, &cid, prob) < 0 ||
	    sa_get_json(params, "except_types", 0, JSON_ARRAY, &except, prob) <
		0 ||
	    types_literal(except, &types, prob) != 0)
		return -1;
	sa_params_init(&p);
	sa_p_int(&p, azid);
	sa_p_int(&p, cid);
	sa_p_int(&p, acct);
	sa_p_str(&p, types);
	r = sa_q(c, st, &p, prob);
	free(types);
	if (r == NULL)
		return -1;
	/* No such authz: nothing was claimed. Otherwise the authz as it is
	 * now: claimed (challenge processing), or as it is, for the caller
	 * to tell why not (another account, not pending, already being
	 * validated, account not valid). */
	if (PQntuples(r) != 1) {
		PQclear(r);
		*result = json_pack("{s:b}", key, 0);
		return 0;
	}
	if ((authz = sa_authz_of_row(r, 0, 0, prob)) == NULL) {
		PQclear(r);
		return -1;
	}
	claimed = sa_col_bool(r, 0, SA_AUTHZ_NCOLS);
	*result = json_pack("{s:b,s:o}", key, claimed, "authz", authz);
	if (claimed && sa_col(r, 0, SA_AUTHZ_NCOLS + 1) != NULL)
		json_object_set_new(*result, "thumbprint",
		    json_string(sa_col(r, 0, SA_AUTHZ_NCOLS + 1)));
	PQclear(r);
	return 0;
}

/* sa.claim_challenge (rpc/methods.def): params borrowed; *result new. */
int
sa_m_claim_challenge(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	return chall_claim(c, &st_chall_start, "claimed", params, result, prob);
}

/* sa.peek_challenge (rpc/methods.def): params borrowed; *result new. */
int
sa_m_peek_challenge(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	return chall_claim(c, &st_chall_peek, "claimable", params, result, prob);
}
