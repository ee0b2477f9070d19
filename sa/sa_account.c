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
    "RETURNING " SA_TS("created")};
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

/* Runs a statement returning ACCT_COLS; notFound when no row. */
static int
acct_one(struct sa_conn *c, const struct sa_stmt *st, const struct sa_params *p,
    json_t **result, struct problem **prob)
{
	return sa_q_one(c, st, p, acct_cols, SA_NCOLS(acct_cols),
	    "no such account", result, prob);
}

static int
check_contact(json_t *contact, struct problem **prob)
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

struct new_acct {
	char *jwk, *contact;
	const char *thumbprint, *eab_kid;
	int tos;
	int64_t id;
};

static int
new_acct_tx(struct sa_conn *c, void *arg, struct problem **prob)
{
	struct new_acct *a = arg;
	struct sa_params p;
	PGresult *r = NULL;
	long rows = 0;
	int ret = -1;

	sa_params_init(&p);
	sa_p_str(&p, a->jwk);
	sa_p_str(&p, a->thumbprint);
	sa_p_str(&p, a->contact);
	sa_p_bool(&p, a->tos);
	sa_p_str(&p, a->eab_kid);
	if ((r = sa_q(c, &st_acct_insert, &p, prob)) == NULL)
		goto out;
	if (PQntuples(r) == 0) {
		PQclear(r);
		sa_params_init(&p);
		sa_p_str(&p, a->thumbprint);
		if ((r = sa_q(c, &st_acct_id_by_tp, &p, prob)) == NULL)
			goto out;
		*prob = problem_new(PROB_CONFLICT,
		    "key already in use by account %lld",
		    PQntuples(r) ? (long long)sa_col_int(r, 0, 0) : 0LL);
		goto out;
	}
	a->id = sa_col_int(r, 0, 0);
	if (a->eab_kid != NULL) {
		sa_params_init(&p);
		sa_p_int(&p, a->id);
		sa_p_str(&p, a->eab_kid);
		if (sa_exec(c, &st_eab_bind, &p, &rows, prob) != 0)
			goto out;
		if (rows != 1) {
			*prob = problem_new(PROB_UNAUTHORIZED,
			    "external account key is unknown, revoked or "
			    "already used");
			goto out;
		}
	}
	ret = 0;
out:
	PQclear(r);
	return ret;
}

int
sa_m_new_account(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct new_acct a;
	json_t *key = NULL, *contact = NULL;
	struct sa_params p;
	int ret = -1;

	memset(&a, 0, sizeof(a));
	if (sa_get_json(params, "key", 1, JSON_OBJECT, &key, prob) < 0 ||
	    sa_get_str(params, "thumbprint", 1, 128, &a.thumbprint, prob) < 0 ||
	    sa_get_json(params, "contact", 0, JSON_ARRAY, &contact, prob) < 0 ||
	    sa_get_bool(params, "tos_agreed", 0, &a.tos, prob) < 0 ||
	    sa_get_str(params, "eab_kid", 0, 256, &a.eab_kid, prob) < 0)
		goto out;
	if (contact != NULL && check_contact(contact, prob) != 0)
		goto out;
	a.jwk = sa_json_text(key);
	if (strlen(a.jwk) > 16384) {
		*prob = problem_new(PROB_MALFORMED, "parameter key: too big");
		goto out;
	}
	a.contact = contact ? sa_json_text(contact) : xstrdup("[]");
	if (sa_tx(c, new_acct_tx, &a, prob) != 0) {
		if ((*prob)->type == PROB_CONFLICT && a.id == 0)
			log_info("new_account: %s", (*prob)->detail);
		goto out;
	}
	sa_params_init(&p);
	sa_p_int(&p, a.id);
	ret = acct_one(c, &st_acct_get, &p, result, prob);
out:
	free(a.jwk);
	free(a.contact);
	return ret;
}

int
sa_m_get_account(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct sa_params p;
	int64_t id = 0;

	if (sa_get_id(params, "id", 1, &id, prob) < 0)
		return -1;
	sa_params_init(&p);
	sa_p_int(&p, id);
	return acct_one(c, &st_acct_get, &p, result, prob);
}

int
sa_m_get_account_by_thumbprint(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct sa_params p;
	const char *tp = NULL;

	if (sa_get_str(params, "thumbprint", 1, 128, &tp, prob) < 0)
		return -1;
	sa_params_init(&p);
	sa_p_str(&p, tp);
	return acct_one(c, &st_acct_get_tp, &p, result, prob);
}

int
sa_m_update_account(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct sa_params p;
	json_t *contact = NULL;
	const char *status = NULL;
	char *ctext = NULL;
	int64_t id = 0;
	int ret = -1;

	if (sa_get_id(params, "id", 1, &id, prob) < 0 ||
	    sa_get_json(params, "contact", 0, JSON_ARRAY, &contact, prob) < 0 ||
	    sa_get_str(params, "status", 0, 16, &status, prob) < 0)
		goto out;
	if (contact != NULL && check_contact(contact, prob) != 0)
		goto out;
	if (status != NULL && strcmp(status, "valid") != 0 &&
	    strcmp(status, "deactivated") != 0 &&
	    strcmp(status, "revoked") != 0) {
		*prob = problem_new(PROB_MALFORMED,
		    "parameter status: expected valid, deactivated or "
		    "revoked");
		goto out;
	}
	if (contact != NULL)
		ctext = sa_json_text(contact);
	sa_params_init(&p);
	sa_p_int(&p, id);
	sa_p_str(&p, ctext);
	sa_p_str(&p, status);
	ret = acct_one(c, &st_acct_update, &p, result, prob);
out:
	free(ctext);
	return ret;
}

int
sa_m_change_account_key(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct sa_params p;
	json_t *key = NULL;
	const char *tp = NULL;
	char *jwk = NULL;
	int64_t id = 0;
	int ret = -1;

	if (sa_get_id(params, "id", 1, &id, prob) < 0 ||
	    sa_get_json(params, "key", 1, JSON_OBJECT, &key, prob) < 0 ||
	    sa_get_str(params, "thumbprint", 1, 128, &tp, prob) < 0)
		goto out;
	jwk = sa_json_text(key);
	sa_params_init(&p);
	sa_p_int(&p, id);
	sa_p_str(&p, jwk);
	sa_p_str(&p, tp);
	ret = acct_one(c, &st_acct_rekey, &p, result, prob);
	if (ret != 0 && sa_sqlstate_is(c, "23505")) {
		problem_free(*prob);
		*prob = problem_new(
		    PROB_CONFLICT, "key already in use by another account");
	}
out:
	free(jwk);
	return ret;
}

static json_t *
eab_json(const PGresult *r, int row, int with_key)
{
	json_t *o = json_object();

	sa_row_json(o, r, row, eab_cols, SA_NCOLS(eab_cols));
	if (!with_key)
		json_object_del(o, "hmac_key");
	return o;
}

int
sa_m_new_eab_key(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct sa_params p;
	const char *kid = NULL, *comment = NULL;
	char *hex = NULL;
	PGresult *r = NULL;
	int ret = -1;

	if (sa_get_str(params, "kid", 1, 256, &kid, prob) < 0 ||
	    sa_get_b64_as_hex(params, "hmac_key", 1, 1024, &hex, prob) < 0 ||
	    sa_get_str(params, "comment", 0, 1024, &comment, prob) < 0)
		goto out;
	if (kid[0] == '\0') {
		*prob = problem_new(PROB_MALFORMED, "parameter kid: empty");
		goto out;
	}
	sa_params_init(&p);
	sa_p_str(&p, kid);
	sa_p_str(&p, hex);
	sa_p_str(&p, comment ? comment : "");
	if ((r = sa_q(c, &st_eab_insert, &p, prob)) == NULL)
		goto out;
	if (PQntuples(r) != 1) {
		*prob = problem_new(
		    PROB_CONFLICT, "EAB key %s already exists", kid);
		goto out;
	}
	*result =
	    json_pack("{s:s, s:s}", "kid", kid, "created", sa_col(r, 0, 0));
	ret = 0;
out:
	PQclear(r);
	if (hex != NULL)
		OPENSSL_cleanse(hex, strlen(hex));
	free(hex);
	return ret;
}

int
sa_m_get_eab_key(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct sa_params p;
	const char *kid = NULL;

	if (sa_get_str(params, "kid", 1, 256, &kid, prob) < 0)
		return -1;
	sa_params_init(&p);
	sa_p_str(&p, kid);
	return sa_q_one(c, &st_eab_get, &p, eab_cols, SA_NCOLS(eab_cols),
	    "no such EAB key", result, prob);
}

int
sa_m_list_eab_keys(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	PGresult *r;
	json_t *keys;
	int i;

	(void)params;
	if ((r = sa_q(c, &st_eab_list, NULL, prob)) == NULL)
		return -1;
	keys = json_array();
	for (i = 0; i < PQntuples(r); i++)
		json_array_append_new(keys, eab_json(r, i, 0));
	PQclear(r);
	*result = json_pack("{s:o}", "keys", keys);
	return 0;
}

int
sa_m_revoke_eab_key(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct sa_params p;
	const char *kid = NULL;
	long rows = 0;

	if (sa_get_str(params, "kid", 1, 256, &kid, prob) < 0)
		return -1;
	sa_params_init(&p);
	sa_p_str(&p, kid);
	if (sa_exec(c, &st_eab_revoke, &p, &rows, prob) != 0)
		return -1;
	if (rows != 1) {
		*prob = problem_new(PROB_NOT_FOUND, "no such EAB key");
		return -1;
	}
	*result = json_object();
	return 0;
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
