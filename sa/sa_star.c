/*
 * sa_star.c - RFC 8739 STAR orders (schema/0010_star.sql): the
 * auto-renewal row of an order, the renewal claims with a lease (several
 * RAs, one renewal of an order at a time), cancellation, and the STAR part
 * of the order JSON that sa_read_order returns.
 *
 * The business rules (what is due, which validity the next certificate
 * gets) are the RA's (ra/star.c); this file only stores and locks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sa/sa_int.h"

#define SA_STAR_CSR_MAX (64 * 1024)
#define SA_STAR_OWNER_MAX 128

/* clang-format off */
/* The star row, its order and the order's latest certificate (the one the
 * star-certificate URL serves). der: SQL for the DER column. */
#define STAR_COLS(der) \
	"s.order_id, s.account_id, s.status, " SA_TS("s.start_date") ", " \
	SA_TS("s.end_date") ", s.lifetime, s.lifetime_adjust, s.allow_get, " \
	"s.csr, " SA_TS("s.next_at") ", s.renewals, " \
	SA_TS("s.canceled_at") ", s.ended_reason, o.status, o.profile, " \
	"o.identifiers, c.serial, " SA_TS("c.not_before") ", " \
	SA_TS("c.not_after") ", c.issuer_id, " der ", s.end_date <= now()"
#define STAR_FROM \
	" FROM star_orders s JOIN orders o ON o.id = s.order_id " \
	"LEFT JOIN LATERAL (SELECT serial, not_before, not_after, issuer_id, " \
	"der FROM certificates WHERE order_id = s.order_id " \
	"ORDER BY not_after DESC, not_before DESC, issued DESC LIMIT 1) c " \
	"ON true"

static const struct sa_stmt st_star_insert = {"star_insert",
    "INSERT INTO star_orders (order_id, account_id, start_date, end_date, "
    "lifetime, lifetime_adjust, allow_get) "
    "SELECT id, account_id, $3, $4, $5, $6, $7 FROM orders "
    "WHERE id = $1 AND account_id = $2 AND status = 'pending' "
    "ON CONFLICT (order_id) DO NOTHING"};
static const struct sa_stmt st_star_get = {"star_get",
    "SELECT " STAR_COLS("NULL") STAR_FROM " WHERE s.order_id = $1"};
static const struct sa_stmt st_star_get_der = {"star_get_der",
    "SELECT " STAR_COLS("encode(c.der, 'hex')") STAR_FROM
    " WHERE s.order_id = $1"};
static const struct sa_stmt st_star_set_csr = {"star_set_csr",
    "UPDATE star_orders SET csr = $2, next_at = now() "
    "WHERE order_id = $1 AND status = 'active'"};
static const struct sa_stmt st_star_claim = {"star_claim",
    "WITH claimed AS (UPDATE star_orders SET lease_owner = $1, "
    "lease_until = now() + $2::bigint * interval '1 millisecond' "
    "WHERE order_id IN (SELECT order_id FROM star_orders "
    "WHERE status = 'active' AND next_at <= now() "
    "AND (lease_until IS NULL OR lease_until < now()) "
    "ORDER BY next_at LIMIT $3 FOR UPDATE SKIP LOCKED) "
    "RETURNING order_id) "
    "SELECT " STAR_COLS("NULL") STAR_FROM
    " JOIN claimed k ON k.order_id = s.order_id ORDER BY s.next_at"};
static const struct sa_stmt st_star_release = {"star_release",
    "UPDATE star_orders SET next_at = $3, status = $4, ended_reason = $5, "
    "renewals = renewals + $6::boolean::int, lease_owner = NULL, "
    "lease_until = NULL "
    "WHERE order_id = $1 AND lease_owner = $2 AND status = 'active'"};
static const struct sa_stmt st_star_lock = {"star_lock",
    "SELECT s.status, o.status, (s.lease_owner IS NOT NULL AND "
    "s.lease_until > now()), s.account_id FROM star_orders s "
    "JOIN orders o ON o.id = s.order_id WHERE s.order_id = $1 "
    "FOR UPDATE OF s"};
static const struct sa_stmt st_star_cancel = {"star_cancel",
    "UPDATE star_orders SET status = 'canceled', canceled_at = now(), "
    "next_at = NULL, ended_reason = 'canceled' WHERE order_id = $1"};
static const struct sa_stmt st_star_order_expire = {"star_order_expire",
    "UPDATE orders SET expires = now() WHERE id = $1"};
/* clang-format on */

/* Column numbers of STAR_COLS. */
enum {
	SC_ORDER_ID,
	SC_ACCOUNT_ID,
	SC_STATUS,
	SC_START,
	SC_END,
	SC_LIFETIME,
	SC_ADJUST,
	SC_ALLOW_GET,
	SC_CSR,
	SC_NEXT_AT,
	SC_RENEWALS,
	SC_CANCELED_AT,
	SC_ENDED_REASON,
	SC_ORDER_STATUS,
	SC_PROFILE,
	SC_IDENTS,
	SC_SERIAL,
	SC_NB,
	SC_NA,
	SC_ISSUER,
	SC_DER,
	SC_ENDED,
};

static const struct sa_col_spec star_cols[] = {
    {"order_id", SA_COL_INT},
    {"account_id", SA_COL_INT},
    {"status", SA_COL_STR},
    {"start_date", SA_COL_STR},
    {"end_date", SA_COL_STR},
    {"lifetime", SA_COL_INT},
    {"lifetime_adjust", SA_COL_INT},
    {"allow_get", SA_COL_BOOL},
    {"csr", SA_COL_STR},
    {"next_at", SA_COL_STR},
    {"renewals", SA_COL_INT},
    {"canceled_at", SA_COL_STR},
    {"ended_reason", SA_COL_STR},
    {"order_status", SA_COL_STR},
    {"profile", SA_COL_STR},
    {"identifiers", SA_COL_JSON},
    {"serial", SA_COL_NONE},
    {"not_before", SA_COL_NONE},
    {"not_after", SA_COL_NONE},
    {"issuer_id", SA_COL_NONE},
    {"der", SA_COL_NONE},
    {"end_passed", SA_COL_BOOL},
};

/* One STAR_COLS row as JSON (new); "cert" when the order has one. */
static json_t *
star_row(const PGresult *r, int row)
{
	json_t *o = json_object(), *cert, *der;

	sa_row_json(o, r, row, star_cols, SA_NCOLS(star_cols));
	if (sa_col(r, row, SC_SERIAL) != NULL) {
		cert = json_object();
		sa_set_col_str(cert, "serial", r, row, SC_SERIAL);
		sa_set_col_str(cert, "not_before", r, row, SC_NB);
		sa_set_col_str(cert, "not_after", r, row, SC_NA);
		sa_set_col_str(cert, "issuer_id", r, row, SC_ISSUER);
		if ((der = sa_col_hex_as_b64(r, row, SC_DER)) != NULL)
			json_object_set_new(cert, "der", der);
		json_object_set_new(o, "cert", cert);
	}
	return o;
}

/* clang-format off */
#define STAR_LIFETIME_BAD \
	"lifetime must be positive, lifetime_adjust not negative"
static const struct sa_in in_new[] = {SA_REQ("order_id", SA_IN_ID, 0),
    SA_REQ("account_id", SA_IN_ID, 0),
    SA_OPT("start_date", SA_IN_TIME, 0, NULL),
    SA_REQ("end_date", SA_IN_TIME, 0),
    {.name = "lifetime", .kind = SA_IN_INT, .required = 1,
	.max = INT64_MAX, .min = 1, .bad = STAR_LIFETIME_BAD},
    {.name = "lifetime_adjust", .kind = SA_IN_INT, .max = INT64_MAX,
	.bad = STAR_LIFETIME_BAD, .dflt = "0"},
    SA_OPT("allow_get", SA_IN_BOOL, 0, "false")};
static const struct sa_in in_set_csr[] = {SA_REQ("order_id", SA_IN_ID, 0),
    SA_REQ("csr", SA_IN_STR, SA_STAR_CSR_MAX)};
#define STAR_CLAIM_BAD "lease_ms: 1000 to 3600000; limit: 1 to 1000"
static const struct sa_in in_claim[] = {
    SA_REQ("owner", SA_IN_STR, SA_STAR_OWNER_MAX),
    {.name = "lease_ms", .kind = SA_IN_INT, .required = 1, .max = 3600000,
	.min = 1000, .bad = STAR_CLAIM_BAD},
    {.name = "limit", .kind = SA_IN_INT, .required = 1, .max = 1000,
	.min = 1, .bad = STAR_CLAIM_BAD}};
static const struct sa_in in_release[] = {SA_REQ("order_id", SA_IN_ID, 0),
    SA_REQ("owner", SA_IN_STR, SA_STAR_OWNER_MAX),
    SA_OPT("next_at", SA_IN_TIME, 0, NULL), SA_REQ("status", SA_IN_STR, 16),
    SA_OPT("reason", SA_IN_STR, 200, NULL),
    SA_OPT("renewed", SA_IN_BOOL, 0, "false")};
/* clang-format on */

/* sa.star_release: the lease ends with the order active (next_at $3 set)
 * or ended ($4). */
static int
release_check(
    const json_t *params, const struct sa_params *p, struct problem **prob)
{
	(void)params;
	if (strcmp(p->v[3], "active") != 0 && strcmp(p->v[3], "ended") != 0) {
		*prob = problem_new(PROB_MALFORMED, "status: active or ended");
		return -1;
	}
	if (strcmp(p->v[3], "active") == 0 && p->v[2] == NULL) {
		*prob = problem_new(
		    PROB_MALFORMED, "next_at is required while active");
		return -1;
	}
	return 0;
}

/* The STAR methods of docs/rpc-methods.md that are one statement. */
const struct sa_decl sa_d_star_new = {.st = &st_star_insert,
    SA_DECL_IN(in_new), .out = SA_OUT_CHANGED, .fail = PROB_CONFLICT,
    .detail = "order %s is not a pending order of account %s, or is STAR "
	      "already",
    .reply = sa_read_order};
const struct sa_decl sa_d_star_set_csr = {.st = &st_star_set_csr,
    SA_DECL_IN(in_set_csr), .out = SA_OUT_CHANGED, .fail = PROB_CONFLICT,
    .detail = "no active STAR order %s"};
const struct sa_decl sa_d_star_claim = {.st = &st_star_claim,
    SA_DECL_IN(in_claim), .out = SA_OUT_LIST, .row = star_row,
    .key = "orders"};
const struct sa_decl sa_d_star_release = {.st = &st_star_release,
    SA_DECL_IN(in_release), .check = release_check, .out = SA_OUT_CHANGED,
    .fail = PROB_CONFLICT,
    .detail = "STAR order %s: the lease of %s is gone (canceled, or taken "
	      "over after it expired)"};

/* See sa_int.h. */
int
sa_star_attach(json_t *order, const char *star_json)
{
	json_t *star;
	const char *st;

	if (star_json == NULL)
		return 0;
	star = sa_json_parse(star_json);
	if (!json_is_object(star)) {
		json_decref(star);
		return -1;
	}
	st = json_string_value(json_object_get(star, "status"));
	/* RFC 8739 §3.1.2: a canceled order's status is "canceled". */
	if (st != NULL && strcmp(st, "canceled") == 0)
		json_object_set_new(order, "status", json_string("canceled"));
	json_object_set_new(order, "star", star);
	return 0;
}

/* sa.star_get (docs/rpc-methods.md). */
int
sa_m_star_get(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct sa_params p;
	PGresult *r;
	int64_t oid = 0;
	int with_der = 0;

	if (sa_get_id(params, "order_id", 1, &oid, prob) < 0 ||
	    sa_get_bool(params, "with_der", 0, &with_der, prob) < 0)
		return -1;
	sa_params_init(&p);
	sa_p_int(&p, oid);
	r = sa_q_row(c, with_der ? &st_star_get_der : &st_star_get, &p,
	    "no such STAR order", prob);
	if (r == NULL)
		return -1;
	*result = star_row(r, 0);
	PQclear(r);
	return 0;
}

struct cancel {
	int64_t order_id, account_id;
};

/* Why the locked STAR order of row 0 of r (st_star_lock) may not be
 * canceled by k's account: a new problem, or NULL when it may. */
static struct problem *
cancel_refusal(const PGresult *r, const struct cancel *k)
{
	const char *st = sa_col(r, 0, 0), *ost = sa_col(r, 0, 1);

	if (sa_col_int(r, 0, 3) != k->account_id)
		return problem_new(PROB_NOT_FOUND, "no such STAR order");
	/* RFC 8739 §3.1.2: only a "valid" auto-renewal order is canceled. */
	if (strcmp(st, "active") != 0 || strcmp(ost, "valid") != 0)
		return problem_new(PROB_AUTO_RENEWAL_CANCELLATION_INVALID,
		    "The order is %s, not valid: it cannot be canceled",
		    strcmp(st, "canceled") == 0    ? "canceled already"
			: strcmp(st, "ended") == 0 ? "past its last certificate"
						   : ost);
	if (sa_col_bool(r, 0, 2))
		return problem_new(PROB_CONFLICT,
		    "a renewal of order %lld is being issued",
		    (long long)k->order_id);
	return NULL;
}

static int
cancel_tx(struct sa_conn *c, void *arg, struct problem **prob)
{
	struct cancel *k = arg;
	struct sa_params p;
	PGresult *r;

	sa_params_init(&p);
	sa_p_int(&p, k->order_id);
	if ((r = sa_q_row(c, &st_star_lock, &p, "no such STAR order", prob)) ==
	    NULL)
		return -1;
	*prob = cancel_refusal(r, k);
	PQclear(r);
	if (*prob != NULL)
		return -1;
	return sa_exec(c, &st_star_cancel, &p, NULL, prob) != 0 ||
		sa_exec(c, &st_star_order_expire, &p, NULL, prob) != 0
	    ? -1
	    : 0;
}

/* sa.star_cancel (docs/rpc-methods.md). */
int
sa_m_star_cancel(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct cancel k;

	if (sa_get_id(params, "order_id", 1, &k.order_id, prob) < 0 ||
	    sa_get_id(params, "account_id", 1, &k.account_id, prob) < 0)
		return -1;
	if (sa_tx(c, cancel_tx, &k, prob) != 0)
		return -1;
	return sa_read_order(c, k.order_id, result, prob);
}
