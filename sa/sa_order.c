/*
 * sa_order.c - orders, authorizations and challenges.
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
#define SA_MAX_CHALLS 8

#define ORDER_COLS                                                                \
	"id, account_id, status, " SA_TS("expires") ", identifiers, " SA_TS(      \
	    "not_before") ", " SA_TS("not_after") ", profile, error, "            \
						  "replaces, "                    \
						  "certificate_serial,"           \
						  " " SA_TS("created") ","        \
								       " " SA_TS( \
									   "b"    \
									   "e"    \
									   "g"    \
									   "a"    \
									   "n"    \
									   "_"    \
									   "p"    \
									   "r"    \
									   "o"    \
									   "c"    \
									   "e"    \
									   "s"    \
									   "s"    \
									   "i"    \
									   "n"    \
									   "g") ", expires <= now()"

#define AUTHZ_COLS                                                             \
	"id, account_id, ident_type, ident_value, wildcard, status, " SA_TS(   \
	    "expires") ", profile, " SA_TS("created") ", expires <= now()"

static const struct sa_stmt st_order_get = {
    "order_get", "SELECT " ORDER_COLS " FROM orders WHERE id = $1"};
static const struct sa_stmt st_order_authzs = {"order_authzs",
    "SELECT a.id, a.status, a.expires <= now() FROM order_authzs oa "
    "JOIN authzs a ON a.id = oa.authz_id WHERE oa.order_id = $1 "
    "ORDER BY oa.pos, oa.authz_id"};
static const struct sa_stmt st_authz_get = {"authz_get",
    "SELECT " AUTHZ_COLS " FROM authzs WHERE id = ANY($1::bigint[])"};
static const struct sa_stmt st_chall_get = {"chall_get",
    "SELECT id, authz_id, type, token, status, " SA_TS(
	"validated") ", error, validation_record FROM challenges "
		     "WHERE authz_id = ANY($1::bigint[]) ORDER BY authz_id, "
		     "id"};
static const struct sa_stmt st_authz_reused = {"authz_reused",
    "SELECT id, ident_type, ident_value, wildcard FROM authzs "
    "WHERE id = ANY($1::bigint[]) AND account_id = $2"};
static const struct sa_stmt st_authz_insert = {"authz_insert",
    "INSERT INTO authzs (account_id, ident_type, ident_value, wildcard, "
    "expires, profile) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id"};
static const struct sa_stmt st_chall_insert = {"chall_insert",
    "INSERT INTO challenges (authz_id, type, token) "
    "SELECT $1, t, k FROM unnest($2::text[], $3::text[]) AS u(t, k)"};
static const struct sa_stmt st_order_insert = {"order_insert",
    "INSERT INTO orders (account_id, expires, identifiers, not_before, "
    "not_after, profile, replaces) VALUES ($1, $2, $3, $4, $5, $6, $7) "
    "RETURNING id"};
static const struct sa_stmt st_order_link = {"order_link",
    "INSERT INTO order_authzs (order_id, authz_id, pos) "
    "SELECT $1, a, p FROM unnest($2::bigint[], $3::int[]) AS u(a, p)"};
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
    "SELECT id FROM orders WHERE account_id = $1 AND id > $2 "
    "AND expires > now() ORDER BY id LIMIT $3"};
static const struct sa_stmt st_valid_authz = {"valid_authz",
    "SELECT id FROM authzs WHERE account_id = $1 AND ident_type = $2 "
    "AND ident_value = $3 AND status = 'valid' AND expires > $4 "
    "AND wildcard = $5 AND ($6::text IS NULL OR profile = $6) "
    "ORDER BY expires DESC, id DESC LIMIT 1"};
static const struct sa_stmt st_authz_claim = {"authz_claim",
    "UPDATE authzs SET attempted_at = now() WHERE id = $1 "
    "AND status = 'pending' AND attempted_at IS NULL AND expires > now() "
    "RETURNING id"};
static const struct sa_stmt st_chall_claim = {"chall_claim",
    "UPDATE challenges SET status = 'processing', attempted_at = now() "
    "WHERE id = $2 AND authz_id = $1 AND status = 'pending'"};
static const struct sa_stmt st_authz_exists = {
    "authz_exists", "SELECT 1 FROM authzs WHERE id = $1"};
static const struct sa_stmt st_chall_finish = {"chall_finish",
    "UPDATE challenges SET status = $3, validated = CASE WHEN $3 = 'valid' "
    "THEN now() END, validation_record = $4, error = $5 "
    "WHERE id = $2 AND authz_id = $1 AND status = 'processing'"};
static const struct sa_stmt st_authz_finish = {"authz_finish",
    "UPDATE authzs SET status = $2, expires = COALESCE($3::timestamptz, "
    "expires) WHERE id = $1 AND status = 'pending'"};
static const struct sa_stmt st_authz_deact = {"authz_deact",
    "UPDATE authzs SET status = 'deactivated' WHERE id = $1 "
    "AND status IN ('pending', 'valid') AND expires > now()"};
static const struct sa_stmt st_order_claim = {"order_claim",
    "UPDATE orders SET status = 'processing', began_processing = now() "
    "WHERE id = $1 AND status = 'pending' AND expires > now() "
    "AND EXISTS (SELECT 1 FROM order_authzs WHERE order_id = $1) "
    "AND NOT EXISTS (SELECT 1 FROM order_authzs oa JOIN authzs a "
    "ON a.id = oa.authz_id WHERE oa.order_id = $1 "
    "AND (a.status <> 'valid' OR a.expires <= now()))"};
static const struct sa_stmt st_order_exists = {
    "order_exists", "SELECT 1 FROM orders WHERE id = $1"};
static const struct sa_stmt st_order_error = {"order_error",
    "UPDATE orders SET status = 'invalid', error = $2 "
    "WHERE id = $1 AND status <> 'valid'"};
static const struct sa_stmt st_order_final = {"order_final",
    "UPDATE orders SET status = 'valid', certificate_serial = $2 "
    "WHERE id = $1 AND status = 'processing'"};
static const struct sa_stmt st_order_stale = {"order_stale",
    "SELECT id FROM orders WHERE status = 'processing' "
    "AND began_processing < $1 ORDER BY id LIMIT 1000"};
/* Partial index challenges_processing_idx (0004); only pending authzs:
 * sa.finalize_authz could not finish any other. */
static const struct sa_stmt st_authz_stale = {"authz_stale",
    "SELECT DISTINCT c.authz_id FROM challenges c JOIN authzs a "
    "ON a.id = c.authz_id WHERE c.status = 'processing' "
    "AND c.attempted_at < $1 AND a.status = 'pending' "
    "ORDER BY c.authz_id LIMIT 1000"};

/* "{1,2,3}" for a bigint[] parameter. Caller frees. */
static char *
id_array(const int64_t *ids, size_t n)
{
	char *s = xmalloc(n * 21 + 3);
	size_t i, off = 0;

	s[off++] = '{';
	for (i = 0; i < n; i++)
		off += (size_t)sprintf(
		    s + off, "%s%lld", i ? "," : "", (long long)ids[i]);
	s[off++] = '}';
	s[off] = '\0';
	return s;
}

/* Derived authz status from stored status and expiry. */
static const char *
authz_status(const char *stored, int expired)
{
	if (expired &&
	    (strcmp(stored, "pending") == 0 || strcmp(stored, "valid") == 0))
		return "expired";
	return stored;
}

static json_t *
chall_json(const PGresult *r, int row)
{
	json_t *o = json_object();
	const char *err = sa_col(r, row, 6), *rec = sa_col(r, row, 7);

	json_object_set_new(o, "id", json_integer(sa_col_int(r, row, 0)));
	sa_set_col_str(o, "type", r, row, 2);
	sa_set_col_str(o, "token", r, row, 3);
	sa_set_col_str(o, "status", r, row, 4);
	sa_set_col_str(o, "validated", r, row, 5);
	if (err != NULL)
		json_object_set_new(o, "error", sa_json_parse(err));
	if (rec != NULL)
		json_object_set_new(o, "validation_record", sa_json_parse(rec));
	return o;
}

/*
 * Reads authzs by id into a new array, in the order of ids, omitting the
 * missing ones. 0 or -1 with *prob.
 */
static int
read_authzs(struct sa_conn *c, const int64_t *ids, size_t n, json_t **out,
    struct problem **prob)
{
	struct sa_params p;
	PGresult *ra = NULL, *rc = NULL;
	char *arr = id_array(ids, n);
	json_t *list = NULL;
	size_t i;
	int row, k, ret = -1;

	sa_params_init(&p);
	sa_p_str(&p, arr);
	if ((ra = sa_q(c, &st_authz_get, &p, prob)) == NULL ||
	    (rc = sa_q(c, &st_chall_get, &p, prob)) == NULL)
		goto out;
	list = json_array();
	for (i = 0; i < n; i++) {
		for (row = 0; row < PQntuples(ra); row++)
			if (sa_col_int(ra, row, 0) == ids[i])
				break;
		if (row == PQntuples(ra))
			continue;
		json_t *o = json_object(), *chs = json_array();

		json_object_set_new(o, "id", json_integer(ids[i]));
		json_object_set_new(
		    o, "account_id", json_integer(sa_col_int(ra, row, 1)));
		json_object_set_new(o, "identifier",
		    json_pack("{s:s, s:s}", "type", sa_col(ra, row, 2), "value",
			sa_col(ra, row, 3)));
		json_object_set_new(
		    o, "wildcard", json_boolean(sa_col_bool(ra, row, 4)));
		json_object_set_new(o, "status",
		    json_string(authz_status(
			sa_col(ra, row, 5), sa_col_bool(ra, row, 9))));
		sa_set_col_str(o, "expires", ra, row, 6);
		sa_set_col_str(o, "profile", ra, row, 7);
		sa_set_col_str(o, "created", ra, row, 8);
		for (k = 0; k < PQntuples(rc); k++)
			if (sa_col_int(rc, k, 1) == ids[i])
				json_array_append_new(chs, chall_json(rc, k));
		json_object_set_new(o, "challenges", chs);
		json_array_append_new(list, o);
	}
	*out = list;
	list = NULL;
	ret = 0;
out:
	json_decref(list);
	PQclear(ra);
	PQclear(rc);
	free(arr);
	return ret;
}

int
sa_read_authz(
    struct sa_conn *c, int64_t id, json_t **out, struct problem **prob)
{
	json_t *list = NULL;
	int ret = -1;

	if (read_authzs(c, &id, 1, &list, prob) != 0)
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

int
sa_read_order(
    struct sa_conn *c, int64_t id, json_t **out, struct problem **prob)
{
	struct sa_params p;
	PGresult *ro = NULL, *ra = NULL;
	json_t *o = NULL, *ids;
	const char *stored, *status;
	int i, n, nvalid = 0, bad = 0, ret = -1;

	sa_params_init(&p);
	sa_p_int(&p, id);
	if ((ro = sa_q(c, &st_order_get, &p, prob)) == NULL)
		goto out;
	if (PQntuples(ro) != 1) {
		*prob = problem_new(PROB_NOT_FOUND, "no such order");
		goto out;
	}
	if ((ra = sa_q(c, &st_order_authzs, &p, prob)) == NULL)
		goto out;
	o = json_object();
	ids = json_array();
	n = PQntuples(ra);
	for (i = 0; i < n; i++) {
		const char *as =
		    authz_status(sa_col(ra, i, 1), sa_col_bool(ra, i, 2));

		json_array_append_new(ids, json_integer(sa_col_int(ra, i, 0)));
		if (strcmp(as, "valid") == 0)
			nvalid++;
		else if (strcmp(as, "pending") != 0)
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
	json_object_set_new(o, "id", json_integer(id));
	json_object_set_new(
	    o, "account_id", json_integer(sa_col_int(ro, 0, 1)));
	json_object_set_new(o, "status", json_string(status));
	sa_set_col_str(o, "expires", ro, 0, 3);
	json_object_set_new(o, "identifiers", sa_json_parse(sa_col(ro, 0, 4)));
	sa_set_col_str(o, "not_before", ro, 0, 5);
	sa_set_col_str(o, "not_after", ro, 0, 6);
	sa_set_col_str(o, "profile", ro, 0, 7);
	json_object_set_new(o, "authz_ids", ids);
	if (sa_col(ro, 0, 8) != NULL)
		json_object_set_new(
		    o, "error", sa_json_parse(sa_col(ro, 0, 8)));
	sa_set_col_str(o, "replaces", ro, 0, 9);
	sa_set_col_str(o, "certificate_serial", ro, 0, 10);
	sa_set_col_str(o, "created", ro, 0, 11);
	sa_set_col_str(o, "began_processing", ro, 0, 12);
	*out = o;
	o = NULL;
	ret = 0;
out:
	json_decref(o);
	PQclear(ro);
	PQclear(ra);
	return ret;
}

/* One authorization to create, validated before the transaction. */
struct authz_in {
	const char *type, *value;
	int wildcard;
	char expires[32];
	char *chall_types, *chall_tokens; /* text[] literals */
};

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
static int
parse_authz_in(const json_t *j, struct authz_in *a, struct problem **prob)
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

static void
authz_in_clear(struct authz_in *a)
{
	free(a->chall_types);
	free(a->chall_tokens);
	a->chall_types = a->chall_tokens = NULL;
}

/* Inserts one authz and its challenges; *id receives its id. */
static int
insert_authz(struct sa_conn *c, int64_t account_id, const char *profile,
    const struct authz_in *a, int64_t *id, struct problem **prob)
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
	if ((r = sa_q(c, &st_authz_insert, &p, prob)) == NULL)
		return -1;
	*id = sa_col_int(r, 0, 0);
	PQclear(r);
	sa_params_init(&p);
	sa_p_int(&p, *id);
	sa_p_str(&p, a->chall_types);
	sa_p_str(&p, a->chall_tokens);
	if (sa_exec(c, &st_chall_insert, &p, NULL, prob) != 0) {
		if (sa_sqlstate_is(c, "23505")) {
			problem_free(*prob);
			*prob = problem_new(PROB_MALFORMED,
			    "duplicate challenge type in one authorization");
		}
		return -1;
	}
	return 0;
}

struct new_order {
	int64_t account_id;
	char expires[32], not_before[32], not_after[32];
	char *idents_text;
	json_t *idents;
	const char *profile, *replaces;
	char *replaces_key;
	int64_t *reuse;
	size_t nreuse;
	struct authz_in *news;
	size_t nnews;
	/* filled by the transaction */
	int64_t order_id;
	int64_t *all_ids;
	int *all_pos;
};

/* Position of (type, value, wildcard) in the order's identifiers. */
static int
ident_pos(
    const json_t *idents, const char *type, const char *value, int wildcard)
{
	size_t i;
	json_t *id;

	json_array_foreach(idents, i, id)
	{
		const char *t = json_string_value(json_object_get(id, "type"));
		const char *v = json_string_value(json_object_get(id, "value"));

		if (t == NULL || v == NULL || strcmp(t, type) != 0)
			continue;
		if (wildcard && strncmp(v, "*.", 2) == 0 &&
		    strcmp(v + 2, value) == 0)
			return (int)i;
		if (!wildcard && strcmp(v, value) == 0)
			return (int)i;
	}
	return (int)json_array_size(idents);
}

/*
 * Key of replacement_orders for a `replaces` value: an ARI CertID
 * "b64url(AKI).b64url(serial)" becomes the serial as the CA writes it
 * (lowercase hex, leading zero bytes dropped, left-padded to 36 digits,
 * as the RA does); anything else is used as given. Caller frees.
 */
static char *
replaces_key(const char *replaces)
{
	const char *dot = strchr(replaces, '.');
	uint8_t *raw = NULL, *b;
	size_t n = 0, l;
	char *h, *out;

	if (dot == NULL || dot == replaces || strchr(dot + 1, '.') != NULL ||
	    b64url_decode(dot + 1, strlen(dot + 1), &raw, &n) != 0 || n == 0 ||
	    n > 20) {
		free(raw);
		return xstrdup(replaces);
	}
	b = raw;
	while (n > 1 && b[0] == 0) {
		b++;
		n--;
	}
	h = hex_encode(b, n);
	free(raw);
	l = strlen(h);
	if (l >= 36)
		return h;
	out = xmalloc(37);
	memset(out, '0', 36 - l);
	memcpy(out + 36 - l, h, l + 1);
	free(h);
	return out;
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

static int
new_order_tx(struct sa_conn *c, void *arg, struct problem **prob)
{
	struct new_order *o = arg;
	struct sa_params p;
	PGresult *r = NULL;
	char *arr = NULL, *ids = NULL, *pos = NULL;
	size_t i, j, n = o->nreuse + o->nnews;
	int ret = -1;

	if (o->nreuse > 0) {
		arr = id_array(o->reuse, o->nreuse);
		sa_params_init(&p);
		sa_p_str(&p, arr);
		sa_p_int(&p, o->account_id);
		if ((r = sa_q(c, &st_authz_reused, &p, prob)) == NULL)
			goto out;
		if ((size_t)PQntuples(r) != o->nreuse) {
			*prob = problem_new(PROB_MALFORMED,
			    "reuse_authz_ids: unknown authorization for this "
			    "account");
			goto out;
		}
		for (i = 0; i < o->nreuse; i++) {
			int row;

			for (row = 0; row < PQntuples(r); row++)
				if (sa_col_int(r, row, 0) == o->reuse[i])
					break;
			o->all_ids[i] = o->reuse[i];
			o->all_pos[i] = ident_pos(o->idents, sa_col(r, row, 1),
			    sa_col(r, row, 2), sa_col_bool(r, row, 3));
		}
	}
	for (i = 0; i < o->nnews; i++) {
		j = o->nreuse + i;
		if (insert_authz(c, o->account_id, o->profile, &o->news[i],
			&o->all_ids[j], prob) != 0)
			goto out;
		o->all_pos[j] = ident_pos(o->idents, o->news[i].type,
		    o->news[i].value, o->news[i].wildcard);
	}
	PQclear(r);
	sa_params_init(&p);
	sa_p_int(&p, o->account_id);
	sa_p_str(&p, o->expires);
	sa_p_str(&p, o->idents_text);
	sa_p_str(&p, o->not_before[0] ? o->not_before : NULL);
	sa_p_str(&p, o->not_after[0] ? o->not_after : NULL);
	sa_p_str(&p, o->profile);
	sa_p_str(&p, o->replaces);
	if ((r = sa_q(c, &st_order_insert, &p, prob)) == NULL)
		goto out;
	o->order_id = sa_col_int(r, 0, 0);
	if (n > 0) {
		/* pos = index in identifiers, ties by order of arrival */
		int64_t *tmp = xcalloc(n, sizeof(*tmp));

		for (i = 0; i < n; i++)
			tmp[i] = (int64_t)o->all_pos[i] * 100000 + (int64_t)i;
		ids = id_array(o->all_ids, n);
		pos = id_array(tmp, n);
		free(tmp);
		sa_params_init(&p);
		sa_p_int(&p, o->order_id);
		sa_p_str(&p, ids);
		sa_p_str(&p, pos);
		if (sa_exec(c, &st_order_link, &p, NULL, prob) != 0) {
			if (sa_sqlstate_is(c, "23505")) {
				problem_free(*prob);
				*prob = problem_new(PROB_MALFORMED,
				    "the same authorization twice");
			}
			goto out;
		}
	}
	if (o->replaces != NULL && replaces_tx(c, o, prob) != 0)
		goto out;
	ret = 0;
out:
	PQclear(r);
	free(arr);
	free(ids);
	free(pos);
	return ret;
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

int
sa_m_new_order(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct new_order o;
	json_t *reuse = NULL, *news = NULL, *v;
	size_t i;
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
	    sa_get_json(params, "new_authzs", 0, JSON_ARRAY, &news, prob) < 0)
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
	o.nreuse = json_array_size(reuse);
	o.nnews = json_array_size(news);
	o.reuse = xcalloc(o.nreuse + 1, sizeof(*o.reuse));
	o.news = xcalloc(o.nnews + 1, sizeof(*o.news));
	o.all_ids = xcalloc(o.nreuse + o.nnews + 1, sizeof(*o.all_ids));
	o.all_pos = xcalloc(o.nreuse + o.nnews + 1, sizeof(*o.all_pos));
	json_array_foreach(reuse, i, v)
	{
		if (!json_is_integer(v) || json_integer_value(v) <= 0) {
			*prob = problem_new(PROB_MALFORMED,
			    "reuse_authz_ids: expected positive ids");
			goto out;
		}
		o.reuse[i] = json_integer_value(v);
	}
	json_array_foreach(news, i, v)
	{
		if (parse_authz_in(v, &o.news[i], prob) != 0)
			goto out;
	}
	o.idents_text = sa_json_text(o.idents);
	if (o.replaces != NULL)
		o.replaces_key = replaces_key(o.replaces);
	if (sa_tx(c, new_order_tx, &o, prob) != 0)
		goto out;
	ret = sa_read_order(c, o.order_id, result, prob);
out:
	for (i = 0; o.news != NULL && i < o.nnews; i++)
		authz_in_clear(&o.news[i]);
	free(o.news);
	free(o.reuse);
	free(o.all_ids);
	free(o.all_pos);
	free(o.idents_text);
	free(o.replaces_key);
	return ret;
}

struct new_authz {
	int64_t account_id, id;
	const char *profile;
	struct authz_in a;
};

static int
new_authz_tx(struct sa_conn *c, void *arg, struct problem **prob)
{
	struct new_authz *n = arg;

	return insert_authz(c, n->account_id, n->profile, &n->a, &n->id, prob);
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
	    parse_authz_in(params, &n.a, prob) != 0)
		goto out;
	if (n.profile == NULL)
		n.profile = "";
	if (sa_tx(c, new_authz_tx, &n, prob) != 0)
		goto out;
	ret = sa_read_authz(c, n.id, result, prob);
out:
	authz_in_clear(&n.a);
	return ret;
}

int
sa_m_get_order(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	int64_t id = 0;

	if (sa_get_id(params, "id", 1, &id, prob) < 0)
		return -1;
	return sa_read_order(c, id, result, prob);
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
	else if (read_authzs(c, ids, n, &list, prob) != 0)
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
	json_t *idents = NULL, *id, *list = NULL, *a = NULL;
	const char *profile = NULL, *t, *v;
	char after[32];
	int64_t acct = 0;
	size_t i;
	int wild = 0, ret = -1;
	PGresult *r;

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
	list = json_array();
	json_array_foreach(idents, i, id)
	{
		wild = 0;
		if (sa_check_identifier(id, &t, &v, prob) != 0 ||
		    sa_get_bool(id, "wildcard", 0, &wild, prob) < 0)
			goto out;
		sa_params_init(&p);
		sa_p_int(&p, acct);
		sa_p_str(&p, t);
		sa_p_str(&p, v);
		sa_p_str(&p, after);
		sa_p_bool(&p, wild);
		sa_p_str(&p, profile);
		if ((r = sa_q(c, &st_valid_authz, &p, prob)) == NULL)
			goto out;
		if (PQntuples(r) == 1) {
			int64_t aid = sa_col_int(r, 0, 0);

			PQclear(r);
			if (sa_read_authz(c, aid, &a, prob) != 0)
				goto out;
			json_array_append_new(list, a);
			a = NULL;
		} else {
			PQclear(r);
		}
	}
	*result = json_pack("{s:o}", "authzs", list);
	list = NULL;
	ret = 0;
out:
	json_decref(list);
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
	int64_t authz_id, chall_id;
	const char *status;
	char expires[32];
	char *record, *error;
};

static int
authz_final_tx(struct sa_conn *c, void *arg, struct problem **prob)
{
	struct authz_final *f = arg;
	struct sa_params p;
	long rows = 0;

	sa_params_init(&p);
	sa_p_int(&p, f->authz_id);
	sa_p_int(&p, f->chall_id);
	sa_p_str(&p, f->status);
	sa_p_str(&p, f->record);
	sa_p_str(&p, f->error);
	if (sa_exec(c, &st_chall_finish, &p, &rows, prob) != 0)
		return -1;
	if (rows != 1) {
		*prob = problem_new(
		    PROB_CONFLICT, "challenge is not being validated");
		return -1;
	}
	sa_params_init(&p);
	sa_p_int(&p, f->authz_id);
	sa_p_str(&p, f->status);
	sa_p_str(&p, f->expires[0] ? f->expires : NULL);
	if (sa_exec(c, &st_authz_finish, &p, &rows, prob) != 0)
		return -1;
	if (rows != 1) {
		*prob =
		    problem_new(PROB_CONFLICT, "authorization is not pending");
		return -1;
	}
	return 0;
}

int
sa_m_finalize_authz(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct authz_final f;
	json_t *rec = NULL, *err = NULL;
	int ret = -1;

	memset(&f, 0, sizeof(f));
	if (sa_get_id(params, "authz_id", 1, &f.authz_id, prob) < 0 ||
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
	if (sa_tx(c, authz_final_tx, &f, prob) != 0)
		goto out;
	ret = sa_read_authz(c, f.authz_id, result, prob);
out:
	free(f.record);
	free(f.error);
	return ret;
}

/*
 * Runs a one-row UPDATE keyed by $1 = id; when no row changes, answers
 * notFound if the row does not exist, else `otherwise`.
 */
static int
update_or(struct sa_conn *c, const struct sa_stmt *st,
    const struct sa_params *p, const struct sa_stmt *exists,
    enum prob_type otherwise, const char *detail, struct problem **prob)
{
	struct sa_params q;
	PGresult *r;
	long rows = 0;

	if (sa_exec(c, st, p, &rows, prob) != 0)
		return -1;
	if (rows == 1)
		return 0;
	sa_params_init(&q);
	sa_p_str(&q, p->v[0]);
	if ((r = sa_q(c, exists, &q, prob)) == NULL)
		return -1;
	if (PQntuples(r) == 0)
		*prob = problem_new(PROB_NOT_FOUND, "no such object");
	else
		*prob = problem_new(otherwise, "%s", detail);
	PQclear(r);
	return -1;
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
	if (update_or(c, &st_authz_deact, &p, &st_authz_exists, PROB_CONFLICT,
		"authorization is not pending or valid", prob) != 0)
		return -1;
	return sa_read_authz(c, id, result, prob);
}

int
sa_m_set_order_processing(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct sa_params p;
	int64_t id = 0;

	if (sa_get_id(params, "id", 1, &id, prob) < 0)
		return -1;
	sa_params_init(&p);
	sa_p_int(&p, id);
	if (update_or(c, &st_order_claim, &p, &st_order_exists,
		PROB_ORDER_NOT_READY, "order is not ready", prob) != 0)
		return -1;
	return sa_read_order(c, id, result, prob);
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
	if (update_or(c, &st_order_error, &p, &st_order_exists, PROB_CONFLICT,
		"order is already valid", prob) != 0)
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
	if (update_or(c, &st_order_final, &p, &st_order_exists, PROB_CONFLICT,
		"order is not processing", prob) != 0)
		return -1;
	return sa_read_order(c, id, result, prob);
}

/*
 * Ids (first column) of the rows `st` lists for params.older_than, as
 * {key: [ids]}. Shared by the stale-order and stale-authz sweeps.
 */
static int
stale_ids(struct sa_conn *c, const struct sa_stmt *st, const char *key,
    json_t *params, json_t **result, struct problem **prob)
{
	struct sa_params p;
	char before[32];
	PGresult *r;
	json_t *ids;
	int i;

	if (sa_get_time(params, "older_than", 1, before, sizeof(before), prob) <
	    0)
		return -1;
	sa_params_init(&p);
	sa_p_str(&p, before);
	if ((r = sa_q(c, st, &p, prob)) == NULL)
		return -1;
	ids = json_array();
	for (i = 0; i < PQntuples(r); i++)
		json_array_append_new(ids, json_integer(sa_col_int(r, i, 0)));
	PQclear(r);
	*result = json_pack("{s:o}", key, ids);
	return 0;
}

int
sa_m_get_stale_processing_orders(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	return stale_ids(c, &st_order_stale, "order_ids", params, result,
	    prob);
}

int
sa_m_get_stale_processing_authzs(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	return stale_ids(c, &st_authz_stale, "authz_ids", params, result,
	    prob);
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
