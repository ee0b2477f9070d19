/*
 * sa_misc.c - rate-limit buckets (GCRA), CRL shards and OCSP responses.
 */
#include <stdlib.h>
#include <string.h>

#include "sa/sa_int.h"

/* clang-format off */
static const struct sa_stmt st_rl_ensure = {"rl_ensure",
    "INSERT INTO rate_limit_buckets (key, tat_ms) VALUES ($1, 0) "
    "ON CONFLICT (key) DO NOTHING"};
static const struct sa_stmt st_rl_lock = {"rl_lock",
    "SELECT tat_ms FROM rate_limit_buckets WHERE key = $1 FOR UPDATE"};
static const struct sa_stmt st_rl_set = {"rl_set",
    "UPDATE rate_limit_buckets SET tat_ms = $2, updated = now() "
    "WHERE key = $1"};
static const struct sa_stmt st_revoked_shard = {"revoked_shard",
    "SELECT serial, " SA_TS("revoked_at") ", revoked_reason "
    "FROM certificate_status WHERE issuer_id = $1 AND shard = $2 "
    "AND status = 'revoked' AND not_after > now() ORDER BY serial"};
static const struct sa_stmt st_crl_store = {"crl_store",
    "INSERT INTO crl_shards (issuer_id, shard, last_number, number, der, "
    "this_update, next_update) VALUES ($1, $2, $3, $3, decode($4, 'hex'), "
    "$5, $6) ON CONFLICT (issuer_id, shard) DO UPDATE SET "
    "number = excluded.number, der = excluded.der, "
    "this_update = excluded.this_update, next_update = excluded.next_update, "
    "last_number = GREATEST(crl_shards.last_number, excluded.number) "
    "WHERE crl_shards.number IS NULL OR crl_shards.number < excluded.number"};
static const struct sa_stmt st_crl_get = {"crl_get",
    "SELECT number, encode(der, 'hex'), " SA_TS("this_update") ", "
    SA_TS("next_update") " FROM crl_shards "
    "WHERE issuer_id = $1 AND shard = $2 AND number IS NOT NULL"};
static const struct sa_stmt st_crl_next = {"crl_next",
    "INSERT INTO crl_shards (issuer_id, shard, last_number) "
    "VALUES ($1, $2, 1) ON CONFLICT (issuer_id, shard) DO UPDATE SET "
    "last_number = crl_shards.last_number + 1 RETURNING last_number"};
static const struct sa_stmt st_ocsp_store = {"ocsp_store",
    "INSERT INTO ocsp_responses (serial, der, this_update, next_update) "
    "VALUES ($1, decode($2, 'hex'), $3, $4) ON CONFLICT (serial) DO UPDATE "
    "SET der = excluded.der, this_update = excluded.this_update, "
    "next_update = excluded.next_update"};
static const struct sa_stmt st_ocsp_get = {"ocsp_get",
    "SELECT encode(der, 'hex'), " SA_TS("this_update") ", "
    SA_TS("next_update") " FROM ocsp_responses WHERE serial = $1"};
/* clang-format on */

/* The JSON of the crl_get and ocsp_get columns. */
static const struct sa_col_spec crl_cols[] = {
    {"number", SA_COL_INT},
    {"der", SA_COL_HEX_B64},
    {"this_update", SA_COL_STR},
    {"next_update", SA_COL_STR},
};
static const struct sa_col_spec ocsp_cols[] = {
    {"der", SA_COL_HEX_B64},
    {"this_update", SA_COL_STR},
    {"next_update", SA_COL_STR},
};

struct rl {
	const char *key;
	int64_t emission, burst, cost, now;
	int allowed;
	int64_t retry_after, remaining;
};

/*
 * GCRA: the bucket stores the theoretical arrival time (TAT). A request
 * of `cost` is allowed when the new TAT is at most burst * emission ahead
 * of now.
 */
static int
rl_tx(struct sa_conn *c, void *arg, struct problem **prob)
{
	struct rl *b = arg;
	struct sa_params p;
	PGresult *r;
	int64_t tat, new_tat, cap = b->burst * b->emission;

	sa_params_init(&p);
	sa_p_str(&p, b->key);
	if (sa_exec(c, &st_rl_ensure, &p, NULL, prob) != 0)
		return -1;
	if ((r = sa_q(c, &st_rl_lock, &p, prob)) == NULL)
		return -1;
	tat = sa_col_int(r, 0, 0);
	PQclear(r);
	if (tat < b->now)
		tat = b->now;
	new_tat = tat + b->cost * b->emission;
	if (new_tat - b->now > cap) {
		b->allowed = 0;
		b->retry_after = new_tat - b->now - cap;
		b->remaining = (cap - (tat - b->now)) / b->emission;
		return 0;
	}
	b->allowed = 1;
	b->retry_after = 0;
	b->remaining = (cap - (new_tat - b->now)) / b->emission;
	if (b->cost == 0)
		return 0;
	sa_p_int(&p, new_tat);
	return sa_exec(c, &st_rl_set, &p, NULL, prob);
}

int
sa_m_rate_limit_spend(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct rl b;
	const int64_t big = 1000000000000000LL; /* keeps products in range */

	memset(&b, 0, sizeof(b));
	if (sa_get_str(params, "key", 1, 512, &b.key, prob) < 0 ||
	    sa_get_int(params, "emission_ms", 1, &b.emission, prob) < 0 ||
	    sa_get_int(params, "burst", 1, &b.burst, prob) < 0 ||
	    sa_get_int(params, "cost", 0, &b.cost, prob) < 0 ||
	    sa_get_int(params, "now_ms", 1, &b.now, prob) < 0)
		return -1;
	if (json_object_get(params, "cost") == NULL)
		b.cost = 1;
	if (b.emission <= 0 || b.burst <= 0 || b.cost < 0 || b.now <= 0 ||
	    b.emission > big / 1000000 || b.burst > 1000000 ||
	    b.cost > 1000000 || b.now > big * 9) {
		*prob = problem_new(
		    PROB_MALFORMED, "rate limit parameters out of range");
		return -1;
	}
	if (sa_tx(c, rl_tx, &b, prob) != 0)
		return -1;
	if (b.remaining < 0)
		b.remaining = 0;
	*result = json_pack("{s:b, s:I, s:I}", "allowed", b.allowed,
	    "retry_after_ms", (json_int_t)b.retry_after, "remaining",
	    (json_int_t)b.remaining);
	return 0;
}

/* params' issuer_id and shard as $1 and $2 of a new p (strings borrowed
 * from params). 0 or -1 with *prob. */
static int
shard_params(json_t *params, struct sa_params *p, struct problem **prob)
{
	const char *issuer = NULL;
	int64_t shard = 0;

	if (sa_get_hex(params, "issuer_id", 1, 64, &issuer, prob) < 0 ||
	    sa_get_int(params, "shard", 1, &shard, prob) < 0)
		return -1;
	if (shard < 0 || shard > 1000000) {
		*prob = problem_new(PROB_MALFORMED, "parameter shard: range");
		return -1;
	}
	sa_params_init(p);
	sa_p_str(p, issuer);
	sa_p_int(p, shard);
	return 0;
}

int
sa_m_revoked_by_shard(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct sa_params p;
	PGresult *r;
	json_t *list;
	int i;

	if (shard_params(params, &p, prob) != 0)
		return -1;
	if ((r = sa_q(c, &st_revoked_shard, &p, prob)) == NULL)
		return -1;
	list = json_array();
	for (i = 0; i < PQntuples(r); i++)
		json_array_append_new(list,
		    json_pack("{s:s, s:s, s:I}", "serial", sa_col(r, i, 0),
			"revoked_at", sa_col(r, i, 1), "reason",
			(json_int_t)sa_col_int(r, i, 2)));
	PQclear(r);
	*result = json_pack("{s:o}", "entries", list);
	return 0;
}

int
sa_m_store_crl(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct sa_params p;
	int64_t number = 0;
	char *der = NULL, tu[32], nu[32];
	long rows = 0;
	int ret = -1;

	if (shard_params(params, &p, prob) != 0 ||
	    sa_get_int(params, "number", 1, &number, prob) < 0 ||
	    sa_get_b64_as_hex(params, "der", 1, 64 * 1024 * 1024, &der, prob) <
		0 ||
	    sa_get_time(params, "this_update", 1, tu, sizeof(tu), prob) < 0 ||
	    sa_get_time(params, "next_update", 1, nu, sizeof(nu), prob) < 0)
		goto out;
	if (number <= 0) {
		*prob = problem_new(PROB_MALFORMED, "parameter number: > 0");
		goto out;
	}
	sa_p_int(&p, number);
	sa_p_str(&p, der);
	sa_p_str(&p, tu);
	sa_p_str(&p, nu);
	if (sa_exec(c, &st_crl_store, &p, &rows, prob) != 0)
		goto out;
	if (rows != 1) {
		*prob = problem_new(PROB_CONFLICT,
		    "a CRL with this or a higher number is stored");
		goto out;
	}
	*result = json_object();
	ret = 0;
out:
	free(der);
	return ret;
}

int
sa_m_get_crl(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct sa_params p;

	if (shard_params(params, &p, prob) != 0)
		return -1;
	return sa_q_one(c, &st_crl_get, &p, crl_cols, SA_NCOLS(crl_cols),
	    "no CRL stored", result, prob);
}

int
sa_m_next_crl_number(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct sa_params p;
	PGresult *r;

	if (shard_params(params, &p, prob) != 0)
		return -1;
	if ((r = sa_q(c, &st_crl_next, &p, prob)) == NULL)
		return -1;
	*result = json_pack("{s:I}", "number", (json_int_t)sa_col_int(r, 0, 0));
	PQclear(r);
	return 0;
}

int
sa_m_store_ocsp(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct sa_params p;
	const char *serial = NULL;
	char *der = NULL, tu[32], nu[32];
	int ret = -1;

	if (sa_get_hex(params, "serial", 1, 64, &serial, prob) < 0 ||
	    sa_get_b64_as_hex(params, "der", 1, 1024 * 1024, &der, prob) < 0 ||
	    sa_get_time(params, "this_update", 1, tu, sizeof(tu), prob) < 0 ||
	    sa_get_time(params, "next_update", 1, nu, sizeof(nu), prob) < 0)
		goto out;
	sa_params_init(&p);
	sa_p_str(&p, serial);
	sa_p_str(&p, der);
	sa_p_str(&p, tu);
	sa_p_str(&p, nu);
	if (sa_exec(c, &st_ocsp_store, &p, NULL, prob) != 0) {
		if (sa_sqlstate_is(c, "23503")) {
			problem_free(*prob);
			*prob =
			    problem_new(PROB_NOT_FOUND, "no such certificate");
		}
		goto out;
	}
	*result = json_object();
	ret = 0;
out:
	free(der);
	return ret;
}

int
sa_m_get_ocsp(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct sa_params p;
	const char *serial = NULL;

	if (sa_get_hex(params, "serial", 1, 64, &serial, prob) < 0)
		return -1;
	sa_params_init(&p);
	sa_p_str(&p, serial);
	return sa_q_one(c, &st_ocsp_get, &p, ocsp_cols, SA_NCOLS(ocsp_cols),
	    "no OCSP response stored", result, prob);
}
