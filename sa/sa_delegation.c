/*
 * sa_delegation.c - RFC 9115 delegations (schema/0011_delegation.sql): the
 * domain owner's delegation objects, the lists an account sees, the link
 * of a delegated order to the delegation (inside sa.new_order's
 * transaction, with the owner's authorizations), and the cancellation that
 * ends the delegation and every auto-renewal order made under it in one
 * transaction.
 *
 * The rules (who may create what, the CSR template) are the RA's
 * (ra/delegation.c, ra/deleg_tmpl.c); this file only stores and locks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sa/sa_int.h"

#define SA_DELEG_JSON_MAX (16 * 1024)

/* clang-format off */
#define DELEG_COLS \
	"id, owner_id, ndc_id, status, csr_template, cname_map, " \
	SA_TS("created") ", " SA_TS("updated") ", " SA_TS("canceled_at")

static const struct sa_stmt st_deleg_insert = {"deleg_insert",
    "INSERT INTO delegations (owner_id, ndc_id, csr_template, cname_map) "
    "SELECT $2, $3, $4, $5 WHERE (SELECT count(*) FROM delegations "
    "WHERE owner_id = $2 AND status = 'active') < $1 RETURNING id"};
static const struct sa_stmt st_deleg_get = {"deleg_get",
    "SELECT " DELEG_COLS " FROM delegations WHERE id = $1"};
static const struct sa_stmt st_deleg_list_ndc = {"deleg_list_ndc",
    "SELECT id FROM delegations WHERE ndc_id = $1 AND status = 'active' "
    "AND id > $2 ORDER BY id LIMIT $3"};
static const struct sa_stmt st_deleg_list_owner = {"deleg_list_owner",
    "SELECT id FROM delegations WHERE owner_id = $1 AND status = 'active' "
    "AND id > $2 ORDER BY id LIMIT $3"};
static const struct sa_stmt st_deleg_update = {"deleg_update",
    "UPDATE delegations SET csr_template = coalesce($3, csr_template), "
    "cname_map = CASE WHEN $5::boolean THEN $4 ELSE cname_map END, "
    "updated = now() WHERE id = $1 AND owner_id = $2 AND status = 'active'"};
/* The delegation an NDC's new order names: active and the NDC's; locked
 * against a concurrent cancel until the order is stored. */
static const struct sa_stmt st_deleg_lock_ndc = {"deleg_lock_ndc",
    "SELECT owner_id FROM delegations WHERE id = $1 AND ndc_id = $2 "
    "AND status = 'active' FOR SHARE"};
static const struct sa_stmt st_deleg_link = {"deleg_link",
    "UPDATE orders SET delegation_id = $2 WHERE id = $1"};
static const struct sa_stmt st_deleg_lock_owner = {"deleg_lock_owner",
    "SELECT status FROM delegations WHERE id = $1 AND owner_id = $2 "
    "FOR UPDATE"};
/* A renewal being issued (a live lease) or a first issuance (processing)
 * under the delegation: the cancel waits for it. */
static const struct sa_stmt st_deleg_busy = {"deleg_busy",
    "SELECT EXISTS (SELECT 1 FROM orders o WHERE o.delegation_id = $1 AND "
    "o.status = 'processing') OR EXISTS (SELECT 1 FROM star_orders s JOIN "
    "orders o ON o.id = s.order_id WHERE o.delegation_id = $1 AND "
    "s.status = 'active' AND s.lease_owner IS NOT NULL AND "
    "s.lease_until > now())"};
static const struct sa_stmt st_deleg_cancel = {"deleg_cancel",
    "UPDATE delegations SET status = 'canceled', canceled_at = now(), "
    "updated = now() WHERE id = $1"};
static const struct sa_stmt st_deleg_cancel_star = {"deleg_cancel_star",
    "UPDATE star_orders SET status = 'canceled', canceled_at = now(), "
    "next_at = NULL, ended_reason = 'delegation canceled' "
    "WHERE status = 'active' AND order_id IN (SELECT id FROM orders "
    "WHERE delegation_id = $1)"};
static const struct sa_stmt st_deleg_expire_star = {"deleg_expire_star",
    "UPDATE orders SET expires = now() WHERE delegation_id = $1 AND "
    "status = 'valid' AND expires > now() AND id IN (SELECT order_id FROM "
    "star_orders WHERE status = 'canceled')"};
static const struct sa_stmt st_deleg_fail_pending = {"deleg_fail_pending",
    "UPDATE orders SET status = 'invalid', error = $2, csr = NULL "
    "WHERE delegation_id = $1 AND status = 'pending'"};
/* clang-format on */

static const struct sa_col_spec deleg_cols[] = {
    {"id", SA_COL_INT},
    {"owner_id", SA_COL_INT},
    {"ndc_id", SA_COL_INT},
    {"status", SA_COL_STR},
    {"csr_template", SA_COL_JSON},
    {"cname_map", SA_COL_JSON_OPT},
    {"created", SA_COL_STR},
    {"updated", SA_COL_STR},
    {"canceled_at", SA_COL_STR},
};

/* clang-format off */
#define IN_JSON(n, req) {.name = n, .kind = SA_IN_OBJECT, .required = req, \
	.max = SA_DELEG_JSON_MAX, .bad = n ": too large"}
static const struct sa_in in_id[] = {SA_REQ("id", SA_IN_ID, 0)};
static const struct sa_in in_new[] = {SA_REQ("max_active", SA_IN_INT, 0),
    SA_REQ("owner_id", SA_IN_ID, 0), SA_REQ("ndc_id", SA_IN_ID, 0),
    IN_JSON("csr_template", 1), IN_JSON("cname_map", 0)};
/* sa.delegation_update; $5 is whether cname_map was given (null: none) */
static const struct sa_in in_update[] = {SA_REQ("id", SA_IN_ID, 0),
    SA_REQ("owner_id", SA_IN_ID, 0), IN_JSON("csr_template", 0),
    IN_JSON("cname_map", 0)};
/* clang-format on */

static int read_deleg(
    struct sa_conn *c, int64_t id, json_t **out, struct problem **prob);

/* sa.delegation_get, sa.delegation_new (docs/rpc-methods.md). */
const struct sa_decl sa_d_delegation_get = {.st = &st_deleg_get,
    SA_DECL_IN(in_id), SA_DECL_COLS(deleg_cols), .fail = PROB_NOT_FOUND,
    .detail = "no such delegation"};
const struct sa_decl sa_d_delegation_new = {.st = &st_deleg_insert,
    SA_DECL_IN(in_new), .fail = PROB_RATE_LIMITED,
    .detail = "an account holds at most %s active delegations",
    .reply = read_deleg};

/* The delegation id as JSON (new) into *out; 0, or -1 with *prob
 * (notFound). */
static int
read_deleg(struct sa_conn *c, int64_t id, json_t **out, struct problem **prob)
{
	struct sa_params p;

	sa_params_init(&p);
	sa_p_int(&p, id);
	return sa_q_one(c, &st_deleg_get, &p, deleg_cols, SA_NCOLS(deleg_cols),
	    "no such delegation", out, prob);
}

/* sa.delegation_list (docs/rpc-methods.md). */
int
sa_m_delegation_list(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct sa_params p;
	const char *role = NULL;
	int64_t aid = 0, after = 0, limit = 0;
	int owner;

	if (sa_get_id(params, "account_id", 1, &aid, prob) < 0 ||
	    sa_get_str(params, "role", 1, 8, &role, prob) < 0 ||
	    sa_get_int(params, "after", 0, &after, prob) < 0 ||
	    sa_get_int(params, "limit", 1, &limit, prob) < 0)
		return -1;
	owner = strcmp(role, "owner") == 0;
	if ((!owner && strcmp(role, "ndc") != 0) || limit < 1 ||
	    limit > 1000) {
		*prob = problem_new(
		    PROB_MALFORMED, "role: owner or ndc; limit: 1 to 1000");
		return -1;
	}
	sa_params_init(&p);
	sa_p_int(&p, aid);
	sa_p_int(&p, after);
	sa_p_int(&p, limit);
	return sa_q_ids(c, owner ? &st_deleg_list_owner : &st_deleg_list_ndc,
	    &p, "ids", result, prob);
}

/* sa.delegation_update (docs/rpc-methods.md). */
int
sa_m_delegation_update(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct sa_params p;
	int64_t id, owner;
	json_t *d = NULL;
	long rows = 0;
	int ret = -1;

	if (sa_bind(params, in_update, SA_NCOLS(in_update), &p, prob) != 0)
		return -1;
	/* "cname_map": null removes it */
	sa_p_bool(&p, json_object_get(params, "cname_map") != NULL);
	id = strtoll(p.v[0], NULL, 10);
	owner = strtoll(p.v[1], NULL, 10);
	if (sa_exec(c, &st_deleg_update, &p, &rows, prob) != 0 ||
	    read_deleg(c, id, &d, prob) != 0)
		goto out;
	if (rows == 1)
		*result = d;
	else {
		*prob = json_integer_value(json_object_get(d, "owner_id")) !=
			owner
		    ? problem_new(PROB_NOT_FOUND, "no such delegation")
		    : problem_new(PROB_CONFLICT,
			  "the delegation is canceled: it is not updated");
		json_decref(d);
	}
	ret = rows == 1 ? 0 : -1;
out:
	sa_params_clear(&p);
	return ret;
}

/* See sa_int.h. */
int
sa_deleg_order_lock(struct sa_conn *c, int64_t delegation_id, int64_t ndc_id,
    int64_t *owner_id, struct problem **prob)
{
	struct sa_params p;
	PGresult *r;

	sa_params_init(&p);
	sa_p_int(&p, delegation_id);
	sa_p_int(&p, ndc_id);
	if ((r = sa_q_row(c, &st_deleg_lock_ndc, &p, "no active delegation",
		 prob)) == NULL) {
		if ((*prob)->type == PROB_NOT_FOUND)
			(*prob)->type = PROB_UNKNOWN_DELEGATION;
		return -1;
	}
	*owner_id = sa_col_int(r, 0, 0);
	PQclear(r);
	return 0;
}

/* See sa_int.h. */
int
sa_deleg_order_link(struct sa_conn *c, int64_t order_id, int64_t delegation_id,
    struct problem **prob)
{
	struct sa_params p;

	sa_params_init(&p);
	sa_p_int(&p, order_id);
	sa_p_int(&p, delegation_id);
	return sa_exec(c, &st_deleg_link, &p, NULL, prob);
}

struct cancel {
	int64_t id, owner_id;
	char *error;
};

static int
cancel_tx(struct sa_conn *c, void *arg, struct problem **prob)
{
	struct cancel *k = arg;
	struct sa_params p, p2;
	PGresult *r;
	int canceled, busy;

	sa_params_init(&p);
	sa_p_int(&p, k->id);
	sa_p_int(&p, k->owner_id);
	if ((r = sa_q_row(c, &st_deleg_lock_owner, &p, "no such delegation",
		 prob)) == NULL)
		return -1;
	canceled = strcmp(sa_col(r, 0, 0), "canceled") == 0;
	PQclear(r);
	if (canceled)
		return 0; /* canceled already: nothing more to do */
	sa_params_init(&p);
	sa_p_int(&p, k->id);
	if ((r = sa_q(c, &st_deleg_busy, &p, prob)) == NULL)
		return -1;
	busy = sa_col_bool(r, 0, 0);
	PQclear(r);
	if (busy) {
		*prob = problem_new(PROB_CONFLICT,
		    "a certificate of delegation %lld is being issued",
		    (long long)k->id);
		return -1;
	}
	sa_params_init(&p2);
	sa_p_int(&p2, k->id);
	sa_p_str(&p2, k->error);
	return sa_exec(c, &st_deleg_cancel, &p, NULL, prob) != 0 ||
		sa_exec(c, &st_deleg_cancel_star, &p, NULL, prob) != 0 ||
		sa_exec(c, &st_deleg_expire_star, &p, NULL, prob) != 0 ||
		sa_exec(c, &st_deleg_fail_pending, &p2, NULL, prob) != 0
	    ? -1
	    : 0;
}

/* sa.delegation_cancel (docs/rpc-methods.md). */
int
sa_m_delegation_cancel(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct cancel k;
	struct problem *why;
	json_t *ej;
	int ret;

	memset(&k, 0, sizeof(k));
	if (sa_get_id(params, "id", 1, &k.id, prob) < 0 ||
	    sa_get_id(params, "owner_id", 1, &k.owner_id, prob) < 0)
		return -1;
	why = problem_new(PROB_UNAUTHORIZED,
	    "the domain owner canceled the delegation");
	ej = problem_to_rpc_json(why);
	k.error = sa_json_text(ej);
	json_decref(ej);
	problem_free(why);
	ret = sa_tx(c, cancel_tx, &k, prob);
	free(k.error);
	if (ret != 0)
		return -1;
	return read_deleg(c, k.id, result, prob);
}
