/*
 * sa_authz.c - authorizations and challenges.
 *
 * The stored authz status is pending / valid / invalid / deactivated /
 * revoked; a pending or valid authz past its expiry reads as expired.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sa/sa_int.h"

#define SA_MAX_IDENTS 1000
#define SA_MAX_CHALLS 8

/* clang-format off */
/* An authz and its challenges in one statement. */
static const struct sa_stmt st_authz_get = {"authz_get",
    SA_AUTHZ_SELECT("challenges") " FROM authzs WHERE id = ANY($1::bigint[])"};
/* One authz (every poll): with `id = ANY($1)` PostgreSQL's generic plan
 * expects 10 rows, so the plan cache re-planned the statement for the
 * actual array on every call; `id = $1` keeps one generic plan. */
static const struct sa_stmt st_authz_get1 = {
    "authz_get1", SA_AUTHZ_SELECT("challenges") " FROM authzs WHERE id = $1"};
/* An authz and its challenges ($8 types, $9 tokens) in one statement. */
static const struct sa_stmt st_authz_insert = {"authz_insert",
    "WITH a AS (INSERT INTO authzs (account_id, ident_type, ident_value, "
    "wildcard, expires, profile, subdomain_auth) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id), "
    "c AS (INSERT INTO challenges (authz_id, type, token) "
    "SELECT a.id, t, k FROM a, unnest($8::text[], $9::text[]) AS u(t, k)) "
    "SELECT id FROM a"};
/* The newest reusable authz of each identifier of $2 (a JSON array of
 * {t, v, w, s}: type, value, wildcard, subdomain_auth only), in one
 * statement: those that have one, read as sa_authz_of_row reads them, in
 * identifier order. */
static const struct sa_stmt st_valid_authz = {"valid_authz",
    SA_AUTHZ_SELECT("challenges") " FROM ROWS FROM "
    "(json_to_recordset($2::json) AS (t text, v text, w boolean, s boolean)) "
    "WITH ORDINALITY AS u(t, v, w, s, k) "
    "CROSS JOIN LATERAL (SELECT id AS best FROM authzs WHERE account_id = $1 "
    "AND ident_type = u.t AND ident_value = u.v AND status = 'valid' "
    "AND expires > $3 AND wildcard = u.w "
    "AND ($4::text IS NULL OR profile = $4) AND (NOT u.s OR subdomain_auth) "
    "ORDER BY expires DESC, id DESC LIMIT 1) b "
    "JOIN authzs ON authzs.id = b.best ORDER BY u.k"};
static const struct sa_stmt st_authz_claim = {"authz_claim",
    "UPDATE authzs SET attempted_at = now() WHERE id = $1 "
    "AND status = 'pending' AND attempted_at IS NULL AND expires > now() "
    "RETURNING id"};
static const struct sa_stmt st_chall_claim = {"chall_claim",
    "UPDATE challenges SET status = 'processing', attempted_at = now() "
    "WHERE id = $2 AND authz_id = $1 AND status = 'pending'"};
static const struct sa_stmt st_authz_exists = {"authz_exists",
    "SELECT 1 FROM authzs WHERE id = $1"};
/* The authz and its challenges as they are now, after a statement whose
 * WITH queries az and ch updated some: the updated rows instead of the
 * stored ones (the authz then reads from now_a AS authzs). */
#define AUTHZ_NOW \
	"now_a AS (SELECT * FROM az UNION ALL SELECT * FROM authzs " \
	"WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM az)), " \
	"now_c AS (SELECT * FROM ch UNION ALL SELECT * FROM challenges " \
	"WHERE authz_id = $1 AND id NOT IN (SELECT id FROM ch)) "
/*
 * A validation result in one statement: the challenge leaves processing
 * and, when that happened, a still-pending authz takes the result (it
 * keeps its status when it left pending meanwhile). Answers with the
 * authz as it is now (no read after the write) and whether the challenge
 * was processing.
 */
static const struct sa_stmt st_authz_result = {"authz_result",
    /* the challenge, if it was being validated */
    "WITH ch AS (UPDATE challenges SET status = $3, "
    "validated = CASE WHEN $3 = 'valid' THEN now() END, "
    "validation_record = $4, error = $5 "
    "WHERE id = $2 AND authz_id = $1 AND status = 'processing' "
    "RETURNING *), "
    /* the authz, if the challenge was and it is still pending */
    "az AS (UPDATE authzs SET status = $3, "
    "expires = COALESCE($6::timestamptz, expires) "
    "WHERE id = $1 AND status = 'pending' AND EXISTS (SELECT 1 FROM ch) "
    "RETURNING *), "
    AUTHZ_NOW SA_AUTHZ_SELECT("now_c") ", (SELECT count(*) FROM ch) "
    "FROM now_a AS authzs"};
/*
 * Claim and result of a validation in one statement (sa.record_validation,
 * issue 18): the authz of account $7 takes the result (and is marked
 * attempted) only if the claim's conditions hold now, the challenge then
 * goes from pending straight to the result. Under READ COMMITTED a
 * concurrent claim or record waits for the authz's row lock and re-checks
 * attempted_at IS NULL on the new version: exactly one of them changes
 * anything. Answers as st_authz_result does.
 */
static const struct sa_stmt st_authz_record = {"authz_record",
    "WITH az AS (UPDATE authzs SET attempted_at = now(), status = $3, "
    "expires = COALESCE($6::timestamptz, expires) "
    "WHERE " SA_CLAIMABLE("$7", "'{}'") " RETURNING *), "
    "ch AS (UPDATE challenges SET status = $3, attempted_at = now(), "
    "validated = CASE WHEN $3 = 'valid' THEN now() END, "
    "validation_record = $4, error = $5 "
    "WHERE id = $2 AND authz_id IN (SELECT id FROM az) "
    "AND status = 'pending' RETURNING *), "
    AUTHZ_NOW SA_AUTHZ_SELECT("now_c") ", (SELECT count(*) FROM ch) "
    "FROM now_a AS authzs"};
static const struct sa_stmt st_authz_deact = {"authz_deact",
    "UPDATE authzs SET status = 'deactivated' WHERE id = $1 "
    "AND status IN ('pending', 'valid') AND expires > now()"};
/* Partial index challenges_processing_idx (0004). Any authz status: one
 * deactivated while its validation ran has its challenge finished too. */
static const struct sa_stmt st_authz_stale = {"authz_stale",
    "SELECT DISTINCT c.authz_id FROM challenges c "
    "WHERE c.status = 'processing' AND c.attempted_at < $1 "
    "ORDER BY c.authz_id LIMIT 1000"};
/* clang-format on */

/* The JSON of SA_AUTHZ_SELECT's columns (identifier, derived status,
 * subdomain_auth and challenges by hand). */
static const struct sa_col_spec authz_cols[] = {
    {"id", SA_COL_INT},
    {"account_id", SA_COL_INT},
    {"identifier.type", SA_COL_NONE},
    {"identifier.value", SA_COL_NONE},
    {"wildcard", SA_COL_BOOL},
    {"status", SA_COL_NONE},
    {"expires", SA_COL_STR},
    {"profile", SA_COL_STR},
    {"created", SA_COL_STR},
    {"expired", SA_COL_NONE},
};
#define AUTHZ_CHALLS_COL 11

/* Derived authz status from stored status and expiry. */
const char *
sa_authz_status(const char *stored, int expired)
{
	if (expired &&
	    (strcmp(stored, "pending") == 0 || strcmp(stored, "valid") == 0))
		return "expired";
	return stored;
}

/* The challenges column (JSON array text, NULL when none) as a new array;
 * a NULL validated/error/validation_record is left out, as sa_row_json
 * does for the other columns. NULL if unreadable. */
static json_t *
challs_json(const char *text)
{
	json_t *chs, *ch;
	size_t i;
	static const char *const opt[] = {
	    "validated", "error", "validation_record"};

	if (text == NULL)
		return json_array();
	chs = json_loads(text, 0, NULL);
	if (!json_is_array(chs)) {
		json_decref(chs);
		return NULL;
	}
	json_array_foreach(chs, i, ch)
	{
		for (size_t k = 0; k < sizeof(opt) / sizeof(opt[0]); k++)
			if (json_is_null(json_object_get(ch, opt[k])))
				json_object_del(ch, opt[k]);
	}
	return chs;
}

/* See sa_int.h. */
json_t *
sa_authz_of_row(const PGresult *r, int row, int base, struct problem **prob)
{
	json_t *o, *chs = challs_json(sa_col(r, row, base + AUTHZ_CHALLS_COL));

	if (chs == NULL) {
		log_bug("authz %s: challenges unreadable", sa_col(r, row, base));
		*prob = problem_new(PROB_SERVER_INTERNAL, "challenges unreadable");
		return NULL;
	}
	o = json_object();
	sa_row_json_at(o, r, row, base, authz_cols, SA_NCOLS(authz_cols));
	json_object_set_new(o, "identifier",
	    json_pack("{s:s, s:s}", "type", sa_col(r, row, base + 2), "value",
		sa_col(r, row, base + 3)));
	json_object_set_new(o, "status",
	    json_string(sa_authz_status(
		sa_col(r, row, base + 5), sa_col_bool(r, row, base + 9))));
	if (sa_col_bool(r, row, base + 10))
		json_object_set_new(o, "subdomain_auth", json_true());
	json_object_set_new(o, "challenges", chs);
	return o;
}

/*
 * Reads authzs by id into a new array, in the order of ids, omitting the
 * missing ones. 0 or -1 with *prob.
 */
int
sa_read_authzs(struct sa_conn *c, const int64_t *ids, size_t n, json_t **out,
    struct problem **prob)
{
	struct sa_params p;
	PGresult *ra = NULL;
	char *arr = sa_id_array(ids, n);
	json_t *list = NULL, *o;
	size_t i;
	int row, ret = -1;

	sa_params_init(&p);
	if (n == 1)
		sa_p_int(&p, ids[0]);
	else
		sa_p_str(&p, arr);
	if ((ra = sa_q(c, n == 1 ? &st_authz_get1 : &st_authz_get, &p,
		 prob)) == NULL)
		goto out;
	list = json_array();
	for (i = 0; i < n; i++) {
		for (row = 0; row < PQntuples(ra); row++)
			if (sa_col_int(ra, row, 0) == ids[i])
				break;
		if (row == PQntuples(ra))
			continue;
		if ((o = sa_authz_of_row(ra, row, 0, prob)) == NULL)
			goto out;
		json_array_append_new(list, o);
	}
	*out = list;
	list = NULL;
	ret = 0;
out:
	json_decref(list);
	PQclear(ra);
	free(arr);
	return ret;
}

int
sa_read_authz(
    struct sa_conn *c, int64_t id, json_t **out, struct problem **prob)
{
	json_t *list = NULL;
	int ret = -1;

	if (sa_read_authzs(c, &id, 1, &list, prob) != 0)
		return -1;
	if (json_array_size(list) != 1) {
		*prob = problem_new(PROB_NOT_FOUND, "no such authorization");
		goto out;
	}
	*out = json_incref(json_array_get(list, 0));
	ret = 0;
out:
	json_decref(list);
	return ret;
}

static int
token_ok(const char *s, int allow_dash_only)
{
	size_t i;

	if (s[0] == '\0')
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		char ch = s[i];

		if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		    ch == '-')
			continue;
		if (!allow_dash_only && ((ch >= 'A' && ch <= 'Z') || ch == '_'))
			continue;
		return 0;
	}
	return 1;
}

/* Parses one {identifier, wildcard, expires, challenges} into a. */
int
sa_authz_in_parse(const json_t *j, struct sa_authz_in *a, struct problem **prob)
{
	json_t *chs = NULL, *ch;
	size_t i, n;
	char *types = NULL, *toks = NULL;
	size_t tl = 2, kl = 2;

	memset(a, 0, sizeof(*a));
	if (!json_is_object(j)) {
		*prob = problem_new(
		    PROB_MALFORMED, "new authorization: expected an object");
		return -1;
	}
	if (sa_check_identifier(json_object_get(j, "identifier"), &a->type,
		&a->value, prob) != 0 ||
	    sa_get_bool(j, "wildcard", 0, &a->wildcard, prob) < 0 ||
	    sa_get_bool(j, "subdomain_auth", 0, &a->subdomain_auth, prob) < 0 ||
	    sa_get_time(j, "expires", 1, a->expires, sizeof(a->expires), prob) <
		0 ||
	    sa_get_json(j, "challenges", 1, JSON_ARRAY, &chs, prob) < 0)
		return -1;
	n = json_array_size(chs);
	if (n == 0 || n > SA_MAX_CHALLS) {
		*prob = problem_new(PROB_MALFORMED,
		    "challenges: expected 1 to %d", SA_MAX_CHALLS);
		return -1;
	}
	json_array_foreach(chs, i, ch)
	{
		const char *t = NULL, *k = NULL;

		if (sa_get_str(ch, "type", 1, 32, &t, prob) < 0 ||
		    sa_get_str(ch, "token", 1, 128, &k, prob) < 0)
			return -1;
		if (!token_ok(t, 1) || !token_ok(k, 0)) {
			*prob = problem_new(PROB_MALFORMED,
			    "challenge type or token has bad characters");
			return -1;
		}
		for (size_t d = 0; d < i; d++)
			if (strcmp(t, json_string_value(json_object_get(
					  json_array_get(chs, d), "type"))) ==
			    0) {
				*prob = problem_new(PROB_MALFORMED,
				    "duplicate challenge type in one "
				    "authorization");
				return -1;
			}
		tl += strlen(t) + 1;
		kl += strlen(k) + 1;
	}
	types = xcalloc(tl + 1, 1);
	toks = xcalloc(kl + 1, 1);
	strcat(types, "{");
	strcat(toks, "{");
	json_array_foreach(chs, i, ch)
	{
		if (i > 0) {
			strcat(types, ",");
			strcat(toks, ",");
		}
		strcat(types, json_string_value(json_object_get(ch, "type")));
		strcat(toks, json_string_value(json_object_get(ch, "token")));
	}
	strcat(types, "}");
	strcat(toks, "}");
	a->chall_types = types;
	a->chall_tokens = toks;
	return 0;
}

void
sa_authz_in_clear(struct sa_authz_in *a)
{
	free(a->chall_types);
	free(a->chall_tokens);
	a->chall_types = a->chall_tokens = NULL;
}

/* Inserts one authz and its challenges; *id receives its id. */
static int
authz_insert(struct sa_conn *c, int64_t account_id, const char *profile,
    const struct sa_authz_in *a, int64_t *id, struct problem **prob)
{
	struct sa_params p;
	PGresult *r;

	sa_params_init(&p);
	sa_p_int(&p, account_id);
	sa_p_str(&p, a->type);
	sa_p_str(&p, a->value);
	sa_p_bool(&p, a->wildcard);
	sa_p_str(&p, a->expires);
	sa_p_str(&p, profile);
	sa_p_bool(&p, a->subdomain_auth);
	sa_p_str(&p, a->chall_types);
	sa_p_str(&p, a->chall_tokens);
	if ((r = sa_q(c, &st_authz_insert, &p, prob)) == NULL)
		return -1;
	*id = sa_col_int(r, 0, 0);
	PQclear(r);
	return 0;
}

struct new_authz {
	int64_t account_id, id;
	const char *profile;
	struct sa_authz_in a;
};

static int
new_authz_tx(struct sa_conn *c, void *arg, struct problem **prob)
{
	struct new_authz *n = arg;

	return authz_insert(
	    c, n->account_id, n->profile, &n->a, &n->id, prob);
}

int
sa_m_new_authz(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct new_authz n;
	int ret = -1;

	memset(&n, 0, sizeof(n));
	if (sa_get_id(params, "account_id", 1, &n.account_id, prob) < 0 ||
	    sa_get_str(params, "profile", 0, 64, &n.profile, prob) < 0 ||
	    sa_authz_in_parse(params, &n.a, prob) != 0)
		goto out;
	if (n.profile == NULL)
		n.profile = "";
	if (sa_tx(c, new_authz_tx, &n, prob) != 0)
		goto out;
	ret = sa_read_authz(c, n.id, result, prob);
out:
	sa_authz_in_clear(&n.a);
	return ret;
}

int
sa_m_get_authz(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	int64_t id = 0;

	if (sa_get_id(params, "id", 1, &id, prob) < 0)
		return -1;
	return sa_read_authz(c, id, result, prob);
}

int
sa_m_get_authzs(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	json_t *idsj = NULL, *v, *list = NULL;
	int64_t *ids = NULL;
	size_t i, n;
	int ret = -1;

	if (sa_get_json(params, "ids", 1, JSON_ARRAY, &idsj, prob) < 0)
		return -1;
	n = json_array_size(idsj);
	if (n > SA_MAX_IDENTS) {
		*prob = problem_new(PROB_MALFORMED, "ids: too many");
		return -1;
	}
	ids = xcalloc(n + 1, sizeof(*ids));
	json_array_foreach(idsj, i, v)
	{
		if (!json_is_integer(v) || json_integer_value(v) <= 0) {
			*prob = problem_new(
			    PROB_MALFORMED, "ids: expected positive integers");
			goto out;
		}
		ids[i] = json_integer_value(v);
	}
	if (n == 0)
		list = json_array();
	else if (sa_read_authzs(c, ids, n, &list, prob) != 0)
		goto out;
	*result = json_pack("{s:o}", "authzs", list);
	ret = 0;
out:
	free(ids);
	return ret;
}

int
sa_m_get_valid_authzs(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct sa_params p;
	json_t *idents = NULL, *id, *list = NULL, *want = NULL;
	const char *profile = NULL, *t, *v;
	char after[32], *text = NULL;
	int64_t acct = 0;
	size_t i;
	int wild = 0, sub = 0, row, ret = -1;
	PGresult *r = NULL;

	if (sa_get_id(params, "account_id", 1, &acct, prob) < 0 ||
	    sa_get_json(params, "identifiers", 1, JSON_ARRAY, &idents, prob) <
		0 ||
	    sa_get_str(params, "profile", 0, 64, &profile, prob) < 0 ||
	    sa_get_time(
		params, "valid_until_after", 1, after, sizeof(after), prob) < 0)
		return -1;
	if (json_array_size(idents) > SA_MAX_IDENTS) {
		*prob = problem_new(PROB_MALFORMED, "too many identifiers");
		return -1;
	}
	want = json_array();
	json_array_foreach(idents, i, id)
	{
		wild = sub = 0;
		if (sa_check_identifier(id, &t, &v, prob) != 0 ||
		    sa_get_bool(id, "wildcard", 0, &wild, prob) < 0 ||
		    sa_get_bool(id, "subdomain_auth", 0, &sub, prob) < 0)
			goto out;
		json_array_append_new(want,
		    json_pack("{s:s,s:s,s:b,s:b}", "t", t, "v", v, "w", wild,
			"s", sub));
	}
	list = json_array();
	if (json_array_size(want) > 0) {
		text = sa_json_text(want);
		sa_params_init(&p);
		sa_p_int(&p, acct);
		sa_p_str(&p, text);
		sa_p_str(&p, after);
		sa_p_str(&p, profile);
		if ((r = sa_q(c, &st_valid_authz, &p, prob)) == NULL)
			goto out;
		/* Found in the same statement, in identifier order. */
		for (row = 0; row < PQntuples(r); row++) {
			json_t *a = sa_authz_of_row(r, row, 0, prob);

			if (a == NULL)
				goto out;
			json_array_append_new(list, a);
		}
	}
	*result = json_pack("{s:o}", "authzs", list);
	list = NULL;
	ret = 0;
out:
	PQclear(r);
	json_decref(list);
	json_decref(want);
	free(text);
	return ret;
}

struct authz_claim {
	int64_t authz_id, chall_id;
};

static int
authz_claim_tx(struct sa_conn *c, void *arg, struct problem **prob)
{
	struct authz_claim *a = arg;
	struct sa_params p;
	PGresult *r;
	long rows = 0;
	int claimed;

	sa_params_init(&p);
	sa_p_int(&p, a->authz_id);
	if ((r = sa_q(c, &st_authz_claim, &p, prob)) == NULL)
		return -1;
	claimed = PQntuples(r) == 1;
	PQclear(r);
	if (!claimed) {
		if ((r = sa_q(c, &st_authz_exists, &p, prob)) == NULL)
			return -1;
		if (PQntuples(r) == 0)
			*prob = problem_new(
			    PROB_NOT_FOUND, "no such authorization");
		else
			*prob = problem_new(PROB_CONFLICT,
			    "authorization is not pending or is already "
			    "being validated");
		PQclear(r);
		return -1;
	}
	sa_p_int(&p, a->chall_id);
	if (sa_exec(c, &st_chall_claim, &p, &rows, prob) != 0)
		return -1;
	if (rows != 1) {
		*prob = problem_new(PROB_NOT_FOUND,
		    "no such pending challenge in this authorization");
		return -1;
	}
	return 0;
}

int
sa_m_set_authz_processing(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct authz_claim a;

	if (sa_get_id(params, "authz_id", 1, &a.authz_id, prob) < 0 ||
	    sa_get_id(params, "challenge_id", 1, &a.chall_id, prob) < 0)
		return -1;
	if (sa_tx(c, authz_claim_tx, &a, prob) != 0)
		return -1;
	return sa_read_authz(c, a.authz_id, result, prob);
}

struct authz_final {
	int64_t authz_id, chall_id, account_id;
	const char *status;
	char expires[32];
	char *record, *error;
};

/* Runs st (st_authz_result, or st_authz_record with f's account) for f:
 * the result (caller clears), or NULL with *prob. */
static PGresult *
authz_final_q(struct sa_conn *c, const struct sa_stmt *st,
    const struct authz_final *f, struct problem **prob)
{
	struct sa_params p;

	sa_params_init(&p);
	sa_p_int(&p, f->authz_id);
	sa_p_int(&p, f->chall_id);
	sa_p_str(&p, f->status);
	sa_p_str(&p, f->record);
	sa_p_str(&p, f->error);
	sa_p_str(&p, f->expires[0] ? f->expires : NULL);
	if (st == &st_authz_record)
		sa_p_int(&p, f->account_id);
	return sa_q(c, st, &p, prob);
}

/* The result of f in one statement (its own transaction): 0 with *out
 * (the authz as it is now, new), or -1 with *prob (conflict: the
 * challenge is not being validated). */
static int
authz_final(struct sa_conn *c, const struct authz_final *f, json_t **out,
    struct problem **prob)
{
	PGresult *r;
	int ret;

	*out = NULL;
	if ((r = authz_final_q(c, &st_authz_result, f, prob)) == NULL)
		return -1;
	/* The authz changes nothing when it left pending meanwhile
	 * (deactivated by its account while the validation ran): the
	 * challenge is finished all the same, never left processing; the
	 * authz keeps its status. */
	if (PQntuples(r) != 1 || sa_col_int(r, 0, SA_AUTHZ_NCOLS) != 1)
		*prob = problem_new(
		    PROB_CONFLICT, "challenge is not being validated");
	else
		*out = sa_authz_of_row(r, 0, 0, prob);
	ret = PQntuples(r) == 1 && *out != NULL ? 0 : -1;
	PQclear(r);
	return ret;
}

/* The claim and result of f in one statement: 0 with *out ({recorded,
 * authz (opt)}, new), or -1 with *prob. */
static int
authz_record(struct sa_conn *c, const struct authz_final *f, json_t **out,
    struct problem **prob)
{
	PGresult *r;
	json_t *authz;

	if ((r = authz_final_q(c, &st_authz_record, f, prob)) == NULL)
		return -1;
	if (PQntuples(r) != 1) { /* no such authz */
		PQclear(r);
		*out = json_pack("{s:b}", "recorded", 0);
		return 0;
	}
	if ((authz = sa_authz_of_row(r, 0, 0, prob)) == NULL) {
		PQclear(r);
		return -1;
	}
	*out = json_pack("{s:b,s:o}", "recorded",
	    sa_col_int(r, 0, SA_AUTHZ_NCOLS) == 1, "authz", authz);
	PQclear(r);
	return 0;
}

/* sa.finalize_authz, or with with_account sa.record_validation (the
 * claim's conditions checked for account_id in the same statement):
 * params borrowed; *result new. */
static int
authz_result_method(struct sa_conn *c, json_t *params, int with_account,
    json_t **result, struct problem **prob)
{
	struct authz_final f;
	json_t *rec = NULL, *err = NULL;
	int ret = -1;

	memset(&f, 0, sizeof(f));
	if ((with_account &&
		sa_get_id(params, "account_id", 1, &f.account_id, prob) < 0) ||
	    sa_get_id(params, "authz_id", 1, &f.authz_id, prob) < 0 ||
	    sa_get_id(params, "challenge_id", 1, &f.chall_id, prob) < 0 ||
	    sa_get_str(params, "status", 1, 16, &f.status, prob) < 0 ||
	    sa_get_time(
		params, "expires", 0, f.expires, sizeof(f.expires), prob) < 0 ||
	    sa_get_json(params, "error", 0, JSON_OBJECT, &err, prob) < 0)
		goto out;
	rec = json_object_get(params, "validation_record");
	if (strcmp(f.status, "valid") != 0 &&
	    strcmp(f.status, "invalid") != 0) {
		*prob = problem_new(PROB_MALFORMED,
		    "parameter status: expected valid or invalid");
		goto out;
	}
	if (rec != NULL && !json_is_null(rec))
		f.record = sa_json_text(rec);
	if (err != NULL)
		f.error = sa_json_text(err);
	if ((f.record && strlen(f.record) > 65536) ||
	    (f.error && strlen(f.error) > 65536)) {
		*prob = problem_new(
		    PROB_MALFORMED, "validation record or error too big");
		goto out;
	}
	ret = with_account ? authz_record(c, &f, result, prob)
			   : authz_final(c, &f, result, prob);
out:
	free(f.record);
	free(f.error);
	return ret;
}

int
sa_m_finalize_authz(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	return authz_result_method(c, params, 0, result, prob);
}

/* sa.record_validation (rpc/methods.def): params borrowed; *result new. */
int
sa_m_record_validation(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	return authz_result_method(c, params, 1, result, prob);
}

int
sa_m_deactivate_authz(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct sa_params p;
	int64_t id = 0;

	if (sa_get_id(params, "id", 1, &id, prob) < 0)
		return -1;
	sa_params_init(&p);
	sa_p_int(&p, id);
	if (sa_update_or(c, &st_authz_deact, &p, &st_authz_exists,
		PROB_CONFLICT, "authorization is not pending or valid",
		prob) != 0)
		return -1;
	return sa_read_authz(c, id, result, prob);
}

int
sa_m_get_stale_processing_authzs(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	return sa_stale_ids(
	    c, &st_authz_stale, "authz_ids", params, result, prob);
}
