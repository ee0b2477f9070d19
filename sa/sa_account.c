/*
 * sa_account.c - accounts and external account binding (EAB) keys.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "sa/sa_int.h"

/* clang-format off */
#define ACCT_COLS \
	"id, jwk, thumbprint, contact, status, " SA_TS("created") ", " \
	"eab_kid, tos_agreed, array_to_json(prior_thumbprints)"

static const struct sa_stmt st_acct_insert = {"acct_insert",
    "INSERT INTO accounts (jwk, thumbprint, contact, tos_agreed, eab_kid) "
    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (thumbprint) DO NOTHING "
    "RETURNING id"};
static const struct sa_stmt st_acct_id_by_tp = {"acct_id_by_tp",
    "SELECT id FROM accounts WHERE thumbprint = $1"};
static const struct sa_stmt st_eab_bind = {"eab_bind",
    "UPDATE eab_keys SET account_id = $1 WHERE kid = $2 AND NOT revoked "
    "AND account_id IS NULL"};
static const struct sa_stmt st_acct_get = {"acct_get",
    "SELECT " ACCT_COLS " FROM accounts WHERE id = $1"};
static const struct sa_stmt st_acct_status = {"acct_status",
    "SELECT status FROM accounts WHERE id = $1"};
static const struct sa_stmt st_acct_get_tp = {"acct_get_tp",
    "SELECT " ACCT_COLS " FROM accounts WHERE thumbprint = $1"};
static const struct sa_stmt st_acct_update = {"acct_update",
    "UPDATE accounts SET contact = COALESCE($2, contact), "
    "status = COALESCE($3, status) WHERE id = $1 RETURNING " ACCT_COLS};
static const struct sa_stmt st_acct_rekey = {"acct_rekey",
    "UPDATE accounts SET jwk = $2, thumbprint = $3, "
    "prior_thumbprints = CASE WHEN thumbprint = $3 THEN prior_thumbprints "
    "ELSE array_prepend(thumbprint, prior_thumbprints) END "
    "WHERE id = $1 RETURNING " ACCT_COLS};
static const struct sa_stmt st_eab_insert = {"eab_insert",
    "INSERT INTO eab_keys (kid, hmac_key, comment) "
    "VALUES ($1, decode($2, 'hex'), $3) ON CONFLICT (kid) DO NOTHING "
    "RETURNING kid, " SA_TS("created")};
static const struct sa_stmt st_eab_get = {"eab_get",
    "SELECT kid, encode(hmac_key, 'hex'), comment, " SA_TS("created") ", "
    "revoked, account_id FROM eab_keys WHERE kid = $1"};
static const struct sa_stmt st_eab_list = {"eab_list",
    "SELECT kid, NULL, comment, " SA_TS("created") ", "
    "revoked, account_id FROM eab_keys ORDER BY kid"};
static const struct sa_stmt st_eab_revoke = {"eab_revoke",
    "UPDATE eab_keys SET revoked = true WHERE kid = $1"};
/* clang-format on */

/* The JSON of ACCT_COLS and of the eab_get / eab_list columns. */
static const struct sa_col_spec acct_cols[] = {
    {"id", SA_COL_INT},
    {"key", SA_COL_JSON},
    {"thumbprint", SA_COL_STR},
    {"contact", SA_COL_JSON},
    {"status", SA_COL_STR},
    {"created", SA_COL_STR},
    {"eab_kid", SA_COL_STR_OR_NULL},
    {"tos_agreed", SA_COL_BOOL},
    /* keys the account used before (newest first), for dns-persist-01 */
    {"prior_thumbprints", SA_COL_JSON},
};
static const struct sa_col_spec eab_cols[] = {
    {"kid", SA_COL_STR},
    {"hmac_key", SA_COL_HEX_B64},
    {"comment", SA_COL_STR},
    {"created", SA_COL_STR},
    {"revoked", SA_COL_BOOL},
    {"account_id", SA_COL_INT},
};

/* clang-format off */
static const struct sa_in in_id[] = {SA_REQ("id", SA_IN_ID, 0)};
static const struct sa_in in_kid[] = {SA_REQ("kid", SA_IN_STR, 256)};
static const struct sa_in in_thumbprint[] = {
    SA_REQ("thumbprint", SA_IN_STR, 128)};
static const struct sa_in in_update[] = {SA_REQ("id", SA_IN_ID, 0),
    SA_OPT("contact", SA_IN_ARRAY, 0, NULL),
    SA_OPT("status", SA_IN_STR, 16, NULL)};
static const struct sa_in in_rekey[] = {SA_REQ("id", SA_IN_ID, 0),
    SA_REQ("key", SA_IN_OBJECT, 0), SA_REQ("thumbprint", SA_IN_STR, 128)};
static const struct sa_in in_new_eab[] = {
    {.name = "kid", .kind = SA_IN_STR, .required = 1, .max = 256,
	.min = 1, .bad = "parameter kid: empty"},
    SA_REQ("hmac_key", SA_IN_B64_HEX, 1024),
    SA_OPT("comment", SA_IN_STR, 1024, "")};
static const struct sa_col_spec eab_created[] = {
    {"kid", SA_COL_STR}, {"created", SA_COL_STR}};
/* clang-format on */

static int check_contact(const json_t *contact, struct problem **prob);

/* sa.update_account: short contact strings, a status an account can have
 * ($3). */
static int
update_check(
    const json_t *params, const struct sa_params *p, struct problem **prob)
{
	const json_t *contact = json_object_get(params, "contact");
	const char *status = p->v[2];

	if (p->v[1] != NULL && check_contact(contact, prob) != 0)
		return -1;
	if (status != NULL && strcmp(status, "valid") != 0 &&
	    strcmp(status, "deactivated") != 0 &&
	    strcmp(status, "revoked") != 0) {
		*prob = problem_new(PROB_MALFORMED,
		    "parameter status: expected valid, deactivated or "
		    "revoked");
		return -1;
	}
	return 0;
}

/* sa.get_account, sa.get_account_by_thumbprint */
const struct sa_decl sa_d_get_account = {.st = &st_acct_get,
    SA_DECL_IN(in_id), SA_DECL_COLS(acct_cols), .fail = PROB_NOT_FOUND,
    .detail = "no such account"};
const struct sa_decl sa_d_get_account_by_thumbprint = {.st = &st_acct_get_tp,
    SA_DECL_IN(in_thumbprint), SA_DECL_COLS(acct_cols),
    .fail = PROB_NOT_FOUND, .detail = "no such account"};
/* sa.update_account: contact and status as given, each optional */
const struct sa_decl sa_d_update_account = {.st = &st_acct_update,
    SA_DECL_IN(in_update), .check = update_check, SA_DECL_COLS(acct_cols),
    .fail = PROB_NOT_FOUND, .detail = "no such account"};
/* sa.change_account_key: a key another account holds is a conflict */
const struct sa_decl sa_d_change_account_key = {.st = &st_acct_rekey,
    SA_DECL_IN(in_rekey), SA_DECL_COLS(acct_cols), .fail = PROB_NOT_FOUND,
    .detail = "no such account", .sqlstate = "23505",
    .state_fail = PROB_CONFLICT,
    .state_detail = "key already in use by another account"};

/* The EAB keys (sa.new_eab_key wipes the key's copy it made) */
const struct sa_decl sa_d_new_eab_key = {.st = &st_eab_insert,
    SA_DECL_IN(in_new_eab), SA_DECL_COLS(eab_created),
    .fail = PROB_CONFLICT, .detail = "EAB key %s already exists"};
const struct sa_decl sa_d_get_eab_key = {.st = &st_eab_get,
    SA_DECL_IN(in_kid), SA_DECL_COLS(eab_cols), .fail = PROB_NOT_FOUND,
    .detail = "no such EAB key"};
/* without hmac_key: st_eab_list reads it as NULL */
const struct sa_decl sa_d_list_eab_keys = {.st = &st_eab_list,
    .out = SA_OUT_LIST, SA_DECL_COLS(eab_cols), .key = "keys"};
const struct sa_decl sa_d_revoke_eab_key = {.st = &st_eab_revoke,
    SA_DECL_IN(in_kid), .out = SA_OUT_CHANGED, .fail = PROB_NOT_FOUND,
    .detail = "no such EAB key"};

/* Runs a statement returning ACCT_COLS; notFound when no row. */
static int
acct_one(struct sa_conn *c, const struct sa_stmt *st, const struct sa_params *p,
    json_t **result, struct problem **prob)
{
	return sa_q_one(c, st, p, acct_cols, SA_NCOLS(acct_cols),
	    "no such account", result, prob);
}

static int
check_contact(const json_t *contact, struct problem **prob)
{
	size_t i;
	json_t *v;

	if (json_array_size(contact) > 32) {
		*prob = problem_new(PROB_MALFORMED, "too many contacts");
		return -1;
	}
	json_array_foreach(contact, i, v)
	{
		if (!json_is_string(v) || json_string_length(v) > 1024) {
			*prob = problem_new(PROB_MALFORMED,
			    "parameter contact: expected short strings");
			return -1;
		}
	}
	return 0;
}

/* sa.new_account: st_acct_insert's parameters, in its order */
static const struct sa_in in_new[] = {
    {.name = "key", .kind = SA_IN_OBJECT, .required = 1, .max = 16384,
	.bad = "parameter key: too big"},
    SA_REQ("thumbprint", SA_IN_STR, 128),
    SA_OPT("contact", SA_IN_ARRAY, 0, "[]"),
    SA_OPT("tos_agreed", SA_IN_BOOL, 0, "false"),
    SA_OPT("eab_kid", SA_IN_STR, 256, NULL)};

struct new_acct {
	const struct sa_params *in; /* in_new bound */
	int64_t id;
};

/* Why a's account was not inserted: conflict naming the account that
 * holds its key. -1 with *prob. */
static int
acct_conflict(struct sa_conn *c, const struct new_acct *a,
    struct problem **prob)
{
	struct sa_params p;
	PGresult *r;

	sa_params_init(&p);
	sa_p_str(&p, a->in->v[1]);
	if ((r = sa_q(c, &st_acct_id_by_tp, &p, prob)) == NULL)
		return -1;
	*prob = problem_new(PROB_CONFLICT, "key already in use by account %lld",
	    PQntuples(r) ? (long long)sa_col_int(r, 0, 0) : 0LL);
	PQclear(r);
	return -1;
}

static int
new_acct_tx(struct sa_conn *c, void *arg, struct problem **prob)
{
	struct new_acct *a = arg;
	const char *eab_kid = a->in->v[4];
	struct sa_params p;
	PGresult *r;
	long rows = 0;

	if ((r = sa_q(c, &st_acct_insert, a->in, prob)) == NULL)
		return -1;
	a->id = PQntuples(r) == 1 ? sa_col_int(r, 0, 0) : 0;
	PQclear(r);
	if (a->id == 0)
		return acct_conflict(c, a, prob);
	if (eab_kid == NULL)
		return 0;
	sa_params_init(&p);
	sa_p_int(&p, a->id);
	sa_p_str(&p, eab_kid);
	if (sa_exec(c, &st_eab_bind, &p, &rows, prob) != 0)
		return -1;
	if (rows != 1) {
		*prob = problem_new(PROB_UNAUTHORIZED,
		    "external account key is unknown, revoked or already used");
		return -1;
	}
	return 0;
}

int
sa_m_new_account(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct new_acct a = {NULL, 0};
	struct sa_params in, p;
	int ret = -1;

	if (sa_bind(params, in_new, SA_NCOLS(in_new), &in, prob) != 0)
		return -1;
	a.in = &in;
	/* absent or null: "[]" */
	if (check_contact(json_object_get(params, "contact"), prob) != 0)
		goto out;
	if (sa_tx(c, new_acct_tx, &a, prob) != 0) {
		if ((*prob)->type == PROB_CONFLICT && a.id == 0)
			log_info("new_account: %s", (*prob)->detail);
		goto out;
	}
	sa_params_init(&p);
	sa_p_int(&p, a.id);
	ret = acct_one(c, &st_acct_get, &p, result, prob);
out:
	sa_params_clear(&in);
	return ret;
}

/* See sa_int.h. */
int
sa_account_refusal(struct sa_conn *c, int64_t id, struct problem **prob)
{
	struct sa_params p;
	PGresult *r;
	int ret = -1;

	sa_params_init(&p);
	sa_p_int(&p, id);
	if ((r = sa_q(c, &st_acct_status, &p, prob)) == NULL)
		return -1;
	if (PQntuples(r) != 1)
		*prob = problem_new(PROB_ACCOUNT_DOES_NOT_EXIST,
		    "Account %lld does not exist", (long long)id);
	else if (strcmp(sa_col(r, 0, 0), "valid") != 0)
		*prob = problem_new(
		    PROB_UNAUTHORIZED, "Account is %s", sa_col(r, 0, 0));
	else
		ret = 0;
	PQclear(r);
	return ret;
}
