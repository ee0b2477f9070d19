/*
 * sa_order.c - orders (authorizations and challenges: sa_authz.c).
 *
 * The stored order status is one of pending / processing / valid /
 * invalid; what callers see is derived on read (docs/rpc-methods.md):
 * processing, valid and invalid win; an expired order is invalid; an
 * invalid, deactivated, revoked or expired authz makes it invalid; all
 * authzs valid makes it ready; otherwise pending.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sa/sa_int.h"

#define SA_MAX_IDENTS 1000

/* clang-format off */
#define ORDER_COLS \
	"id, account_id, status, " SA_TS("expires") ", identifiers, " \
	SA_TS("not_before") ", " SA_TS("not_after") ", profile, error, " \
	"replaces, certificate_serial, " SA_TS("created") ", " \
	SA_TS("began_processing") ", expires <= now(), csr"

/* The order and its authzs' "id:status:expired" in one round trip (column
 * ORDER_AUTHZS_COL: a text array in identifier order). links and authzs
 * name where the order's order_authzs and authzs rows come from: the
 * tables, or WITH queries of a statement that wrote them. */
#define ORDER_AUTHZS_COL 15
#define ORDER_SELECT_FROM(links, authzs) \
    "SELECT " ORDER_COLS ", ARRAY(SELECT a.id || ':' || a.status || ':' || " \
    "(a.expires <= now())::int FROM " links " oa " \
    "JOIN " authzs " a ON a.id = oa.authz_id WHERE oa.order_id = orders.id " \
    "ORDER BY oa.pos, oa.authz_id), " SA_STAR_ORDER_COL \
    ", delegation_id"
#define ORDER_SELECT ORDER_SELECT_FROM("order_authzs", "authzs")
static const struct sa_stmt st_order_get = {"order_get",
    ORDER_SELECT " FROM orders WHERE id = $1"};
#define ORDER_STAR_COL 16
#define ORDER_DELEG_COL 17 /* RFC 9115 (sa_delegation.c) */
#define ORDER_NCOLS (ORDER_DELEG_COL + 1)
/*
 * The order (FROM clause `from`, naming it `orders`) with its authzs in one
 * result: one row per authz in identifier order, each the order's columns
 * (ORDER_SELECT_FROM) then the authz's (SA_AUTHZ_SELECT; NULL for an order
 * without authzs) and its position. links, authzs, challs: where those
 * rows come from (the tables, or WITH queries of a statement that wrote
 * them).
 */
#define ORDER_WITH_AUTHZS(from, links, authzs, challs) \
    "SELECT ord.*, az.* FROM (" ORDER_SELECT_FROM(links, authzs) \
    " FROM " from ") ord LEFT JOIN LATERAL (" SA_AUTHZ_SELECT(challs) \
    ", oa.pos FROM " links " oa JOIN " authzs " AS authzs " \
    "ON authzs.id = oa.authz_id WHERE oa.order_id = ord.id) az ON true " \
    "ORDER BY az.pos, az.id"
static const struct sa_stmt st_order_get_authzs = {"order_get_authzs",
    ORDER_WITH_AUTHZS("orders WHERE id = $1", "order_authzs", "authzs",
	"challenges")};
/*
 * A new order with its authzs in one statement (one implicit transaction
 * unless the caller opened one). $1 account, $2 expires, $3 identifiers
 * (JSON text), $4 not_before, $5 not_after, $6 profile, $7 replaces, $8
 * the ids of the authzs it reuses, which must be account $9's (the order's,
 * or the owner's of its delegation), $10 the new authzs: a JSON array of
 * {t, v, w, s, e, ct, ck, r, an} (identifier type and value, wildcard,
 * subdomain_auth, expires, challenge types and tokens as text[] literals,
 * reusable, ancestor names), $11 (may be NULL: no reuse) the time a reused
 * authz must outlive: an entry marked reusable takes, instead of a new
 * authz, the account's newest valid authz of its identifier and profile
 * that does, else such an RFC 9444 subdomain authorization of one of its
 * ancestors (entries may share it), and the order expires no later than
 * the authzs it takes (issue 18: no sa.get_valid_authzs first).
 * Answers as ORDER_WITH_AUTHZS; no row (nothing written): the account is not
 * valid or a reused authz is not $9's.
 */
static const struct sa_stmt st_order_new = {"order_new",
    /* the entries of $10, numbered (k) */
    "WITH j AS (SELECT * FROM ROWS FROM (json_to_recordset($10::json) AS "
    "(t text, v text, w boolean, s boolean, e timestamptz, ct text, "
    "ck text, r boolean, an text[])) "
    "WITH ORDINALITY AS j(t, v, w, s, e, ct, ck, r, an, k)), "
    /* the valid authz a reusable entry takes: its own identifier's, else
     * an ancestor's subdomain authorization */
    "f AS (SELECT j.k, b.id, b.expires FROM j CROSS JOIN LATERAL ("
    "SELECT id, expires FROM (SELECT id, expires, 0 AS pref FROM authzs "
    "WHERE ident_type = j.t AND ident_value = j.v AND wildcard = j.w "
    "AND account_id = $9 AND status = 'valid' AND profile = $6 "
    "AND expires > $11::timestamptz "
    "UNION ALL SELECT id, expires, 1 FROM authzs WHERE ident_type = 'dns' "
    "AND ident_value = ANY(j.an) AND NOT wildcard AND subdomain_auth "
    "AND account_id = $9 AND status = 'valid' AND profile = $6 "
    "AND expires > $11::timestamptz) c WHERE j.r "
    "ORDER BY pref, expires DESC, id DESC LIMIT 1) b), "
    /* the order, only for a valid account and authzs it may reuse */
    "o AS (INSERT INTO orders (account_id, expires, identifiers, "
    "not_before, not_after, profile, replaces) SELECT $1, "
    "LEAST($2::timestamptz, (SELECT min(expires) FROM f)), "
    "$3::text, $4::timestamptz, $5::timestamptz, $6::text, $7::text "
    "FROM accounts WHERE id = $1 AND status = 'valid' "
    "AND (SELECT count(*) FROM authzs WHERE id = ANY($8::bigint[]) "
    "AND account_id = $9) = cardinality($8::bigint[]) RETURNING *), "
    /* the new authzs, numbered (k) after the reused ones, their ids drawn
     * first so that their challenges and links can name them */
    "n AS (SELECT nextval('authzs_id_seq') AS id, "
    "cardinality($8::bigint[]) + j.k AS k, j.t, j.v, j.w, j.s, j.e, j.ct, "
    "j.ck FROM o, j WHERE NOT EXISTS (SELECT 1 FROM f WHERE f.k = j.k)), "
    "new_a AS (INSERT INTO authzs (id, account_id, ident_type, ident_value, "
    "wildcard, expires, profile, subdomain_auth) "
    "SELECT id, $1, t, v, w, e, $6, s FROM n RETURNING *), "
    "new_c AS (INSERT INTO challenges (authz_id, type, token) "
    "SELECT n.id, u.t, u.k FROM n, unnest(n.ct::text[], n.ck::text[]) "
    "AS u(t, k) RETURNING *), "
    /* the authzs it reuses: $8's and those found (f), each once */
    "r AS (SELECT DISTINCT ON (id) id, k FROM (SELECT u.id, u.k "
    "FROM unnest($8::bigint[]) WITH ORDINALITY AS u(id, k) "
    "UNION ALL SELECT f.id, cardinality($8::bigint[]) + f.k FROM f) r0 "
    "ORDER BY id, k), "
    /* every authz of the order: the reused ones, then the new ones */
    "x AS (SELECT a.id, r.k, a.ident_type AS t, a.ident_value AS v, "
    "a.wildcard AS w FROM r JOIN authzs a ON a.id = r.id "
    "UNION ALL SELECT id, k, t, v, w FROM n), "
    /* linked at the place of their identifier in $3, ties by k */
    "l AS (INSERT INTO order_authzs (order_id, authz_id, pos) "
    "SELECT o.id, x.id, COALESCE((SELECT i.k - 1 FROM "
    "json_array_elements($3::json) WITH ORDINALITY AS i(j, k) "
    "WHERE i.j->>'type' = x.t AND i.j->>'value' = "
    "CASE WHEN x.w THEN '*.' || x.v ELSE x.v END ORDER BY i.k LIMIT 1), "
    "json_array_length($3::json)) * 100000 + x.k - 1 FROM o, x "
    "RETURNING *), "
    /* the order's authzs and challenges: the new rows, the reused ones */
    "all_a AS (SELECT * FROM new_a UNION ALL "
    "SELECT * FROM authzs WHERE id IN (SELECT id FROM r)), "
    "all_c AS (SELECT * FROM new_c UNION ALL "
    "SELECT * FROM challenges WHERE authz_id IN (SELECT id FROM r)) "
    ORDER_WITH_AUTHZS("o AS orders", "l", "all_a", "all_c")};
static const struct sa_stmt st_repl_lock = {"repl_lock",
    "SELECT r.order_id, (o.status IN ('valid', 'processing') OR "
    "(o.status = 'pending' AND o.expires > now())) FROM replacement_orders r "
    "JOIN orders o ON o.id = r.order_id WHERE r.serial = $1 FOR UPDATE OF r"};
static const struct sa_stmt st_repl_update = {"repl_update",
    "UPDATE replacement_orders SET order_id = $2 WHERE serial = $1"};
static const struct sa_stmt st_repl_insert = {"repl_insert",
    "INSERT INTO replacement_orders (serial, order_id) VALUES ($1, $2) "
    "ON CONFLICT (serial) DO NOTHING"};
static const struct sa_stmt st_repl_exists = {"repl_exists",
    "SELECT EXISTS (SELECT 1 FROM replacement_orders r JOIN orders o "
    "ON o.id = r.order_id WHERE r.serial = $1 AND (o.status IN ('valid', "
    "'processing') OR (o.status = 'pending' AND o.expires > now())))"};
static const struct sa_stmt st_orders_by_acct = {"orders_by_acct",
    "SELECT o.id FROM orders o WHERE o.account_id = $1 AND o.id > $2 "
    "AND o.expires > now() AND o.status <> 'invalid' "
    "AND (o.status IN ('processing', 'valid') OR NOT EXISTS ("
    "SELECT 1 FROM order_authzs oa JOIN authzs a ON a.id = oa.authz_id "
    "WHERE oa.order_id = o.id AND (a.status IN ('invalid', 'deactivated', "
    "'revoked') OR a.expires <= now()))) "
    "ORDER BY o.id LIMIT $3"};
/*
 * The finalize claim in one statement: the order is ready (pending,
 * unexpired, every authz valid), its account valid, the CSR key neither
 * blocked ($3) nor the account's key (thumbprint $4); serial $5 (if not
 * NULL; expiring $6) is reserved for its certificate in the same
 * statement; $7 (may be NULL) is the claimant's token (0016_order_claim).
 * The claimed order comes back as order_get reads it, and the serial if it
 * was reserved.
 */
static const struct sa_stmt st_order_claim = {"order_claim",
    "WITH claimed AS (UPDATE orders SET status = 'processing', "
    "began_processing = now(), csr = $2, claim = $7, claimed_at = now() "
    "WHERE id = $1 AND status = 'pending' "
    "AND expires > now() "
    "AND EXISTS (SELECT 1 FROM order_authzs WHERE order_id = $1) "
    "AND NOT EXISTS (SELECT 1 FROM order_authzs oa JOIN authzs a "
    "ON a.id = oa.authz_id WHERE oa.order_id = $1 "
    "AND (a.status <> 'valid' OR a.expires <= now())) "
    "AND NOT EXISTS (SELECT 1 FROM blocked_keys WHERE key_hash = $3) "
    "AND EXISTS (SELECT 1 FROM accounts ac WHERE ac.id = orders.account_id "
    "AND ac.status = 'valid' AND ac.thumbprint IS DISTINCT FROM $4) "
    "RETURNING *), "
    "rs AS (INSERT INTO serials (serial, account_id, expires) "
    "SELECT $5::text, account_id, $6::timestamptz FROM claimed "
    "WHERE $5::text IS NOT NULL ON CONFLICT (serial) DO NOTHING "
    "RETURNING serial) "
    ORDER_SELECT ", (SELECT serial FROM rs) FROM claimed AS orders"};
#define CLAIM_SERIAL_COL (ORDER_DELEG_COL + 1)
/* Why the claim refused order $1 (only asked when it did). */
static const struct sa_stmt st_claim_why = {"order_claim_why",
    "SELECT ac.status, ac.thumbprint = $2, "
    "EXISTS (SELECT 1 FROM blocked_keys WHERE key_hash = $3) "
    "FROM orders o JOIN accounts ac ON ac.id = o.account_id "
    "WHERE o.id = $1"};
static const struct sa_stmt st_order_exists = {"order_exists",
    "SELECT 1 FROM orders WHERE id = $1"};
static const struct sa_stmt st_order_error = {"order_error",
    "UPDATE orders SET status = 'invalid', error = $2, csr = NULL "
    "WHERE id = $1 AND status <> 'valid'"};
static const struct sa_stmt st_order_final = {"order_final",
    "UPDATE orders SET status = 'valid', certificate_serial = $2, "
    "csr = NULL WHERE id = $1 AND status = 'processing'"};
/* Stale: its claimant has not shown itself (claim, reserve) since $1. */
static const struct sa_stmt st_order_stale = {"order_stale",
    "SELECT id FROM orders WHERE status = 'processing' "
    "AND COALESCE(claimed_at, began_processing) < $1 ORDER BY id LIMIT 1000"};
/* Recovery takes a stale order over: the claim $2 replaces the old one
 * only if that is older than $3 (its holder stopped showing itself). */
static const struct sa_stmt st_order_reclaim = {"order_reclaim",
    "UPDATE orders SET claim = $2, claimed_at = now() WHERE id = $1 "
    "AND status = 'processing' "
    "AND COALESCE(claimed_at, began_processing) < $3"};
/* clang-format on */

/* The JSON of ORDER_COLS (derived status and authz_ids by hand). */
static const struct sa_col_spec order_cols[] = {
    {"id", SA_COL_INT},
    {"account_id", SA_COL_INT},
    {"status", SA_COL_NONE},
    {"expires", SA_COL_STR},
    {"identifiers", SA_COL_JSON},
    {"not_before", SA_COL_STR},
    {"not_after", SA_COL_STR},
    {"profile", SA_COL_STR},
    {"error", SA_COL_JSON_OPT},
    {"replaces", SA_COL_STR},
    {"certificate_serial", SA_COL_STR},
    {"created", SA_COL_STR},
    {"began_processing", SA_COL_STR},
    {"expired", SA_COL_NONE},
    {"csr", SA_COL_STR},
};

static int order_of_row(
    const PGresult *ro, int64_t id, json_t **out, struct problem **prob);

int
sa_read_order(
    struct sa_conn *c, int64_t id, json_t **out, struct problem **prob)
{
	struct sa_params p;
	PGresult *ro;
	int ret;

	sa_params_init(&p);
	sa_p_int(&p, id);
	if ((ro = sa_q(c, &st_order_get, &p, prob)) == NULL)
		return -1;
	if (PQntuples(ro) != 1) {
		*prob = problem_new(PROB_NOT_FOUND, "no such order");
		PQclear(ro);
		return -1;
	}
	ret = order_of_row(ro, id, out, prob);
	PQclear(ro);
	return ret;
}

/* The order JSON of ORDER_SELECT's only row of ro (borrowed) for order id:
 * 0 with *out (new), or -1 with *prob. */
static int
order_of_row(const PGresult *ro, int64_t id, json_t **out, struct problem **prob)
{
	json_t *o = NULL, *ids;
	const char *stored, *status, *arr, *e;
	char as_buf[32];
	int n = 0, nvalid = 0, bad = 0, ret = -1;
	long long aid;
	int expired, used;

	o = json_object();
	ids = json_array();
	/* "{12:valid:0,13:pending:1}": ids, stored statuses (plain words,
	 * never quoted by PostgreSQL) and whether each has expired. */
	arr = sa_col(ro, 0, ORDER_AUTHZS_COL);
	e = arr != NULL && arr[0] == '{' ? arr + 1 : "}";
	while (*e != '}' && *e != '\0') {
		if (sscanf(e, "%lld:%31[a-z]:%d%n", &aid, as_buf, &expired,
			&used) != 3) {
			*prob = problem_new(
			    PROB_SERVER_INTERNAL, "order authzs unreadable");
			log_bug("order %lld: authz list %s", (long long)id,
			    arr);
			json_decref(ids);
			goto out;
		}
		e += used;
		if (*e == ',')
			e++;
		n++;
		status = sa_authz_status(as_buf, expired != 0);
		json_array_append_new(ids, json_integer(aid));
		if (strcmp(status, "valid") == 0)
			nvalid++;
		else if (strcmp(status, "pending") != 0)
			bad = 1;
	}
	stored = sa_col(ro, 0, 2);
	if (strcmp(stored, "pending") != 0)
		status = stored;
	else if (sa_col_bool(ro, 0, 13) || bad)
		status = "invalid";
	else if (n > 0 && nvalid == n)
		status = "ready";
	else
		status = "pending";
	sa_row_json(o, ro, 0, order_cols, SA_NCOLS(order_cols));
	json_object_set_new(o, "status", json_string(status));
	json_object_set_new(o, "authz_ids", ids);
	if (sa_star_attach(o, sa_col(ro, 0, ORDER_STAR_COL)) != 0) {
		*prob = problem_new(
		    PROB_SERVER_INTERNAL, "order STAR data unreadable");
		goto out;
	}
	if (sa_col(ro, 0, ORDER_DELEG_COL) != NULL)
		json_object_set_new(o, "delegation_id",
		    json_integer(sa_col_int(ro, 0, ORDER_DELEG_COL)));
	*out = o;
	o = NULL;
	ret = 0;
out:
	json_decref(o);
	return ret;
}

struct new_order {
	int64_t account_id;
	char expires[32], not_before[32], not_after[32];
	char *idents_text;
	json_t *idents;
	const char *profile, *replaces;
	char *replaces_key;
	char *reuse;      /* bigint[] literal of the reused authz ids */
	char *news;       /* JSON text: st_order_new's $10 */
	char reuse_after[32]; /* $11: "" for no reuse of valid authzs */
	int with_authzs;  /* answer with the authzs too */
	/* RFC 9115: the order's delegation (0: none); whose authzs it reuses */
	int64_t delegation_id, authz_account;
	/* filled by the statement */
	int64_t order_id;
	json_t *result;
};

/*
 * Key of replacement_orders for a `replaces` value: an ARI CertID
 * "b64url(AKI).b64url(serial)" becomes the serial as the CA writes it
 * (serial_hex_of_certid); anything else is used as given. Caller frees.
 */
static char *
replaces_key(const char *replaces)
{
	char *key = serial_hex_of_certid(replaces);

	return key != NULL ? key : xstrdup(replaces);
}

static int
replaces_tx(struct sa_conn *c, struct new_order *o, struct problem **prob)
{
	struct sa_params p;
	PGresult *r = NULL;
	long rows = 0;
	int ret = -1;

	sa_params_init(&p);
	sa_p_str(&p, o->replaces_key);
	if ((r = sa_q(c, &st_repl_lock, &p, prob)) == NULL)
		goto out;
	sa_p_int(&p, o->order_id);
	if (PQntuples(r) == 1) {
		if (sa_col_bool(r, 0, 1)) {
			*prob = problem_new(PROB_ALREADY_REPLACED,
			    "certificate %s is already being replaced by "
			    "order %lld",
			    o->replaces, (long long)sa_col_int(r, 0, 0));
			goto out;
		}
		if (sa_exec(c, &st_repl_update, &p, NULL, prob) != 0)
			goto out;
	} else {
		if (sa_exec(c, &st_repl_insert, &p, &rows, prob) != 0)
			goto out;
		if (rows != 1) {
			*prob = problem_new(PROB_ALREADY_REPLACED,
			    "certificate %s is already being replaced",
			    o->replaces);
			goto out;
		}
	}
	ret = 0;
out:
	PQclear(r);
	return ret;
}

/*
 * The order of ORDER_WITH_AUTHZS's rows of r (borrowed) for order id, with
 * its "authzs" when with_authzs: 0 with *out (new), or -1 with *prob.
 */
static int
order_with_authzs(const PGresult *r, int64_t id, int with_authzs,
    json_t **out, struct problem **prob)
{
	json_t *list, *a;
	int row;

	if (order_of_row(r, id, out, prob) != 0)
		return -1;
	if (!with_authzs)
		return 0;
	list = json_array();
	for (row = 0; row < PQntuples(r); row++) {
		if (sa_col(r, row, ORDER_NCOLS) == NULL)
			continue; /* LEFT JOIN: an order without authzs */
		if ((a = sa_authz_of_row(r, row, ORDER_NCOLS, prob)) == NULL) {
			json_decref(list);
			json_decref(*out);
			*out = NULL;
			return -1;
		}
		json_array_append_new(list, a);
	}
	json_object_set_new(*out, "authzs", list);
	return 0;
}

/* The order's statement (st_order_new): o->order_id and o->result, or -1
 * with *prob (nothing written). */
static int
order_insert(struct sa_conn *c, struct new_order *o, struct problem **prob)
{
	struct sa_params p;
	PGresult *r;
	int ret = -1;

	sa_params_init(&p);
	sa_p_int(&p, o->account_id);
	sa_p_str(&p, o->expires);
	sa_p_str(&p, o->idents_text);
	sa_p_str(&p, o->not_before[0] ? o->not_before : NULL);
	sa_p_str(&p, o->not_after[0] ? o->not_after : NULL);
	sa_p_str(&p, o->profile);
	sa_p_str(&p, o->replaces);
	sa_p_str(&p, o->reuse);
	sa_p_int(&p, o->authz_account);
	sa_p_str(&p, o->news);
	sa_p_str(&p, o->reuse_after[0] ? o->reuse_after : NULL);
	if ((r = sa_q(c, &st_order_new, &p, prob)) == NULL)
		return -1;
	/* No row: the account is not valid or a reused authz is not the
	 * authz account's (checked by the statement, not by a read first). */
	if (PQntuples(r) == 0) {
		if (sa_account_refusal(c, o->account_id, prob) == 0)
			*prob = problem_new(PROB_MALFORMED,
			    "reuse_authz_ids: unknown authorization for this "
			    "account");
		goto out;
	}
	o->order_id = sa_col_int(r, 0, 0);
	json_decref(o->result);
	o->result = NULL;
	ret = order_with_authzs(
	    r, o->order_id, o->with_authzs, &o->result, prob);
out:
	PQclear(r);
	return ret;
}

/* An order under a delegation or replacing a certificate: its statement
 * with the locks and writes that go with it, in one transaction. */
static int
new_order_tx(struct sa_conn *c, void *arg, struct problem **prob)
{
	struct new_order *o = arg;

	if (o->delegation_id > 0 &&
	    sa_deleg_order_lock(c, o->delegation_id, o->account_id,
		&o->authz_account, prob) != 0)
		return -1;
	if (order_insert(c, o, prob) != 0)
		return -1;
	if (o->delegation_id > 0) {
		if (sa_deleg_order_link(
			c, o->order_id, o->delegation_id, prob) != 0)
			return -1;
		json_object_set_new(o->result, "delegation_id",
		    json_integer(o->delegation_id));
	}
	if (o->replaces != NULL && replaces_tx(c, o, prob) != 0)
		return -1;
	return 0;
}

static int
check_identifiers(json_t *idents, struct problem **prob)
{
	size_t i;
	json_t *id;
	const char *t, *v;

	if (json_array_size(idents) > SA_MAX_IDENTS) {
		*prob = problem_new(PROB_MALFORMED, "too many identifiers");
		return -1;
	}
	json_array_foreach(idents, i, id)
	{
		if (sa_check_identifier(id, &t, &v, prob) != 0)
			return -1;
	}
	return 0;
}

/* reuse_authz_ids (borrowed, may be NULL) as o->reuse: 0, or -1 with
 * *prob (not positive ids, one twice). */
static int
reuse_param(struct new_order *o, const json_t *reuse, struct problem **prob)
{
	size_t i, k, n = json_array_size(reuse);
	int64_t *ids = xcalloc(n + 1, sizeof(*ids));
	int ret = -1;

	for (i = 0; i < n; i++) {
		json_t *v = json_array_get(reuse, i);

		if (!json_is_integer(v) || json_integer_value(v) <= 0) {
			*prob = problem_new(PROB_MALFORMED,
			    "reuse_authz_ids: expected positive ids");
			goto out;
		}
		ids[i] = json_integer_value(v);
		for (k = 0; k < i; k++)
			if (ids[k] == ids[i]) {
				*prob = problem_new(PROB_MALFORMED,
				    "the same authorization twice");
				goto out;
			}
	}
	o->reuse = sa_id_array(ids, n);
	ret = 0;
out:
	free(ids);
	return ret;
}

/* A new authz's "ancestors" (borrowed, may be NULL): at most 127 names
 * (a DNS name has fewer labels). 0, or -1 with *prob. */
static int
check_ancestors(const json_t *anc, struct problem **prob)
{
	const json_t *v;
	size_t i;

	if (json_array_size(anc) > 127) {
		*prob = problem_new(PROB_MALFORMED, "ancestors: too many");
		return -1;
	}
	json_array_foreach(anc, i, v)
	{
		if (!json_is_string(v) || json_string_length(v) == 0 ||
		    json_string_length(v) > 253) {
			*prob = problem_new(PROB_MALFORMED,
			    "ancestors: expected DNS names");
			return -1;
		}
	}
	return 0;
}

/* new_authzs (borrowed, may be NULL) as o->news: 0, or -1 with *prob. */
static int
news_param(struct new_order *o, const json_t *news, struct problem **prob)
{
	struct sa_authz_in a;
	json_t *list = json_array(), *v, *anc;
	size_t i;
	int ret = -1, reusable;

	json_array_foreach(news, i, v)
	{
		reusable = 0;
		anc = NULL;
		if (sa_authz_in_parse(v, &a, prob) != 0 ||
		    sa_get_bool(v, "reusable", 0, &reusable, prob) < 0 ||
		    sa_get_json(v, "ancestors", 0, JSON_ARRAY, &anc, prob) < 0 ||
		    check_ancestors(anc, prob) != 0) {
			sa_authz_in_clear(&a);
			goto out;
		}
		json_array_append_new(list,
		    json_pack("{s:s,s:s,s:b,s:b,s:s,s:s,s:s,s:b,s:O}", "t",
			a.type, "v", a.value, "w", a.wildcard, "s",
			a.subdomain_auth, "e", a.expires, "ct", a.chall_types,
			"ck", a.chall_tokens, "r", reusable && !a.subdomain_auth,
			"an", anc != NULL ? anc : json_null()));
		sa_authz_in_clear(&a);
	}
	o->news = sa_json_text(list);
	ret = 0;
out:
	json_decref(list);
	return ret;
}

int
sa_m_new_order(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct new_order o;
	json_t *reuse = NULL, *news = NULL;
	int ret = -1;

	memset(&o, 0, sizeof(o));
	if (sa_get_id(params, "account_id", 1, &o.account_id, prob) < 0 ||
	    sa_get_time(
		params, "expires", 1, o.expires, sizeof(o.expires), prob) < 0 ||
	    sa_get_json(params, "identifiers", 1, JSON_ARRAY, &o.idents, prob) <
		0 ||
	    sa_get_time(params, "not_before", 0, o.not_before,
		sizeof(o.not_before), prob) < 0 ||
	    sa_get_time(params, "not_after", 0, o.not_after,
		sizeof(o.not_after), prob) < 0 ||
	    sa_get_str(params, "profile", 0, 64, &o.profile, prob) < 0 ||
	    sa_get_str(params, "replaces", 0, 1024, &o.replaces, prob) < 0 ||
	    sa_get_json(
		params, "reuse_authz_ids", 0, JSON_ARRAY, &reuse, prob) < 0 ||
	    sa_get_json(params, "new_authzs", 0, JSON_ARRAY, &news, prob) < 0 ||
	    sa_get_id(params, "delegation_id", 0, &o.delegation_id, prob) < 0 ||
	    sa_get_bool(params, "with_authzs", 0, &o.with_authzs, prob) < 0 ||
	    sa_get_time(params, "reuse_valid_after", 0, o.reuse_after,
		sizeof(o.reuse_after), prob) < 0)
		goto out;
	if (o.profile == NULL)
		o.profile = "";
	if (check_identifiers(o.idents, prob) != 0)
		goto out;
	if (json_array_size(reuse) > SA_MAX_IDENTS ||
	    json_array_size(news) > SA_MAX_IDENTS) {
		*prob = problem_new(PROB_MALFORMED, "too many authorizations");
		goto out;
	}
	if (o.delegation_id > 0 && json_array_size(news) > 0) {
		*prob = problem_new(PROB_MALFORMED,
		    "a delegated order only reuses the owner's authorizations");
		goto out;
	}
	if (reuse_param(&o, reuse, prob) != 0 ||
	    news_param(&o, news, prob) != 0)
		goto out;
	o.idents_text = sa_json_text(o.idents);
	o.authz_account = o.account_id;
	if (o.replaces != NULL)
		o.replaces_key = replaces_key(o.replaces);
	/* One statement, its own transaction; a delegation's lock or a
	 * replacement's record go with it in one transaction. */
	if (o.delegation_id > 0 || o.replaces != NULL
		? sa_tx(c, new_order_tx, &o, prob) != 0
		: order_insert(c, &o, prob) != 0)
		goto out;
	*result = o.result;
	o.result = NULL;
	ret = 0;
out:
	json_decref(o.result);
	free(o.reuse);
	free(o.news);
	free(o.idents_text);
	free(o.replaces_key);
	return ret;
}

int
sa_m_get_order(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct sa_params p;
	int64_t id = 0;
	int with = 0, ret;
	PGresult *r;

	if (sa_get_id(params, "id", 1, &id, prob) < 0 ||
	    sa_get_bool(params, "with_authzs", 0, &with, prob) < 0)
		return -1;
	if (!with)
		return sa_read_order(c, id, result, prob);
	/* The order with its authzs in one statement (ra.finalize_order's
	 * CAA re-check). */
	sa_params_init(&p);
	sa_p_int(&p, id);
	if ((r = sa_q(c, &st_order_get_authzs, &p, prob)) == NULL)
		return -1;
	if (PQntuples(r) == 0) {
		*prob = problem_new(PROB_NOT_FOUND, "no such order");
		ret = -1;
	} else
		ret = order_with_authzs(r, id, 1, result, prob);
	PQclear(r);
	return ret;
}

int
sa_m_get_orders_by_account(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct sa_params p;
	PGresult *r;
	int64_t acct = 0, after = 0, limit = 100;
	json_t *ids;
	int i, n;

	if (sa_get_id(params, "account_id", 1, &acct, prob) < 0 ||
	    sa_get_int(params, "after_id", 0, &after, prob) < 0 ||
	    sa_get_int(params, "limit", 0, &limit, prob) < 0)
		return -1;
	if (limit < 1 || limit > 1000) {
		*prob = problem_new(PROB_MALFORMED, "limit: 1 to 1000");
		return -1;
	}
	sa_params_init(&p);
	sa_p_int(&p, acct);
	sa_p_int(&p, after);
	sa_p_int(&p, limit + 1);
	if ((r = sa_q(c, &st_orders_by_acct, &p, prob)) == NULL)
		return -1;
	n = PQntuples(r);
	ids = json_array();
	for (i = 0; i < n && i < limit; i++)
		json_array_append_new(ids, json_integer(sa_col_int(r, i, 0)));
	PQclear(r);
	*result = json_pack("{s:o, s:b}", "order_ids", ids, "more", n > limit);
	return 0;
}

/* Why the claim of order id (CSR key thumbprint tp, key hash khash; both
 * may be NULL) changed nothing: *prob set, -1. */
static int
claim_refused(struct sa_conn *c, int64_t id, const char *tp, const char *khash,
    struct problem **prob)
{
	struct sa_params p;
	PGresult *r;
	const char *st;

	sa_params_init(&p);
	sa_p_int(&p, id);
	sa_p_str(&p, tp);
	sa_p_str(&p, khash);
	if ((r = sa_q(c, &st_claim_why, &p, prob)) == NULL)
		return -1;
	st = PQntuples(r) == 1 ? sa_col(r, 0, 0) : NULL;
	if (st == NULL)
		*prob = problem_new(PROB_NOT_FOUND, "no such object");
	else if (strcmp(st, "valid") != 0)
		*prob = problem_new(PROB_UNAUTHORIZED, "Account is %s", st);
	else if (tp != NULL && sa_col_bool(r, 0, 1))
		*prob = problem_new(
		    PROB_BAD_CSR, "CSR must not use the account key");
	else if (khash != NULL && sa_col_bool(r, 0, 2))
		*prob = problem_new(PROB_BAD_PUBLIC_KEY,
		    "The CSR's key is blocked (it was reported "
		    "compromised)");
	else
		*prob = problem_new(PROB_ORDER_NOT_READY, "order is not ready");
	PQclear(r);
	return -1;
}

int
sa_m_set_order_processing(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct sa_params p;
	const char *csr = NULL, *khash = NULL, *tp = NULL, *serial = NULL;
	const char *claim = NULL;
	char sexp[32];
	int64_t id = 0;
	PGresult *r;
	int ret;

	if (sa_get_id(params, "id", 1, &id, prob) < 0 ||
	    sa_get_str(params, "csr", 0, 100000, &csr, prob) < 0 ||
	    sa_get_hex(params, "key_hash", 0, 64, &khash, prob) < 0 ||
	    sa_get_str(params, "csr_thumbprint", 0, 64, &tp, prob) < 0 ||
	    sa_get_hex(params, "reserve_serial", 0, SA_SERIAL_MAX, &serial,
		prob) < 0 ||
	    sa_get_time(params, "serial_expires", serial != NULL, sexp,
		sizeof(sexp), prob) < 0 ||
	    sa_get_hex(params, "claim", 0, SA_CLAIM_MAX, &claim, prob) < 0)
		return -1;
	sa_params_init(&p);
	sa_p_int(&p, id);
	sa_p_str(&p, csr);
	sa_p_str(&p, khash);
	sa_p_str(&p, tp);
	sa_p_str(&p, serial);
	sa_p_str(&p, serial != NULL ? sexp : NULL);
	sa_p_str(&p, claim);
	if ((r = sa_q(c, &st_order_claim, &p, prob)) == NULL)
		return -1;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return claim_refused(c, id, tp, khash, prob);
	}
	ret = order_of_row(r, id, result, prob);
	if (ret == 0 && sa_col(r, 0, CLAIM_SERIAL_COL) != NULL)
		json_object_set_new(*result, "reserved_serial",
		    json_string(sa_col(r, 0, CLAIM_SERIAL_COL)));
	PQclear(r);
	return ret;
}

int
sa_m_set_order_error(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct sa_params p;
	json_t *err = NULL;
	char *text = NULL;
	int64_t id = 0;
	int ret = -1;

	if (sa_get_id(params, "id", 1, &id, prob) < 0 ||
	    sa_get_json(params, "error", 1, JSON_OBJECT, &err, prob) < 0)
		return -1;
	text = sa_json_text(err);
	if (strlen(text) > 65536) {
		*prob = problem_new(PROB_MALFORMED, "error too big");
		goto out;
	}
	sa_params_init(&p);
	sa_p_int(&p, id);
	sa_p_str(&p, text);
	if (sa_update_or(c, &st_order_error, &p, &st_order_exists,
		PROB_CONFLICT, "order is already valid", prob) != 0)
		goto out;
	ret = sa_read_order(c, id, result, prob);
out:
	free(text);
	return ret;
}

int
sa_m_finalize_order(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct sa_params p;
	const char *serial = NULL;
	int64_t id = 0;

	if (sa_get_id(params, "id", 1, &id, prob) < 0 ||
	    sa_get_hex(params, "serial", 1, 64, &serial, prob) < 0)
		return -1;
	sa_params_init(&p);
	sa_p_int(&p, id);
	sa_p_str(&p, serial);
	if (sa_update_or(c, &st_order_final, &p, &st_order_exists,
		PROB_CONFLICT, "order is not processing", prob) != 0)
		return -1;
	return sa_read_order(c, id, result, prob);
}

int
sa_m_get_stale_processing_orders(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	return sa_stale_ids(
	    c, &st_order_stale, "order_ids", params, result, prob);
}

int
sa_m_reclaim_order(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct sa_params p;
	const char *claim = NULL;
	char older[32];
	int64_t id = 0;

	if (sa_get_id(params, "id", 1, &id, prob) < 0 ||
	    sa_get_hex(params, "claim", 1, SA_CLAIM_MAX, &claim, prob) < 0 ||
	    sa_get_time(params, "older_than", 1, older, sizeof(older), prob) <
		0)
		return -1;
	sa_params_init(&p);
	sa_p_int(&p, id);
	sa_p_str(&p, claim);
	sa_p_str(&p, older);
	if (sa_update_or(c, &st_order_reclaim, &p, &st_order_exists,
		PROB_CONFLICT,
		"order is not processing, or its claim is not stale", prob) !=
	    0)
		return -1;
	return sa_read_order(c, id, result, prob);
}

int
sa_m_replacement_exists(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct sa_params p;
	const char *serial = NULL;
	PGresult *r;

	char *key;

	if (sa_get_str(params, "serial", 1, 1024, &serial, prob) < 0)
		return -1;
	key = replaces_key(serial);
	sa_params_init(&p);
	sa_p_str(&p, key);
	r = sa_q(c, &st_repl_exists, &p, prob);
	free(key);
	if (r == NULL)
		return -1;
	*result = json_pack("{s:b}", "exists", sa_col_bool(r, 0, 0));
	PQclear(r);
	return 0;
}
