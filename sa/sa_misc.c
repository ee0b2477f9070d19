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
static const struct sa_col_spec revoked_cols[] = {
    {"serial", SA_COL_STR},
    {"revoked_at", SA_COL_STR},
    {"reason", SA_COL_INT},
};
static const struct sa_col_spec number_col[] = {{"number", SA_COL_INT}};

/* clang-format off */
/* A CRL shard: issuer_id and shard are $1 and $2. */
#define IN_SHARD SA_REQ("issuer_id", SA_IN_HEX, 64), \
	{.name = "shard", .kind = SA_IN_INT, .required = 1, .max = 1000000, \
	.bad = "parameter shard: range"}
static const struct sa_in in_shard[] = {IN_SHARD};
static const struct sa_in in_store_crl[] = {IN_SHARD,
    {.name = "number", .kind = SA_IN_INT, .required = 1,
	.max = INT64_MAX, .min = 1, .bad = "parameter number: > 0"},
    SA_REQ("der", SA_IN_B64_HEX, 64 * 1024 * 1024),
    SA_REQ("this_update", SA_IN_TIME, 0), SA_REQ("next_update", SA_IN_TIME, 0)};
static const struct sa_in in_serial[] = {SA_REQ("serial", SA_IN_HEX, 64)};
static const struct sa_in in_store_ocsp[] = {SA_REQ("serial", SA_IN_HEX, 64),
    SA_REQ("der", SA_IN_B64_HEX, 1024 * 1024),
    SA_REQ("this_update", SA_IN_TIME, 0), SA_REQ("next_update", SA_IN_TIME, 0)};
/* clang-format on */

/* CRL shards: the revoked entries, the stored CRL, the next number. */
const struct sa_decl sa_d_revoked_by_shard = {.st = &st_revoked_shard,
    SA_DECL_IN(in_shard), .out = SA_OUT_LIST, SA_DECL_COLS(revoked_cols),
    .key = "entries"};
const struct sa_decl sa_d_store_crl = {.st = &st_crl_store,
    SA_DECL_IN(in_store_crl), .out = SA_OUT_CHANGED, .fail = PROB_CONFLICT,
    .detail = "a CRL with this or a higher number is stored"};
const struct sa_decl sa_d_get_crl = {.st = &st_crl_get, SA_DECL_IN(in_shard),
    SA_DECL_COLS(crl_cols), .fail = PROB_NOT_FOUND,
    .detail = "no CRL stored"};
const struct sa_decl sa_d_next_crl_number = {.st = &st_crl_next,
    SA_DECL_IN(in_shard), SA_DECL_COLS(number_col)};
/* OCSP responses of known certificates */
const struct sa_decl sa_d_store_ocsp = {.st = &st_ocsp_store,
    SA_DECL_IN(in_store_ocsp), .out = SA_OUT_DONE, .sqlstate = "23503",
    .state_fail = PROB_NOT_FOUND, .state_detail = "no such certificate"};
const struct sa_decl sa_d_get_ocsp = {.st = &st_ocsp_get,
    SA_DECL_IN(in_serial), SA_DECL_COLS(ocsp_cols), .fail = PROB_NOT_FOUND,
    .detail = "no OCSP response stored"};

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
