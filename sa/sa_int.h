/*
 * sa_int.h - internals of the storage authority (not for other modules).
 */
#ifndef ANVIL_SA_INT_H
#define ANVIL_SA_INT_H

#include <pthread.h>

#include <libpq-fe.h>

#include "sa/sa.h"

/* An SQL expression rendering a timestamptz column as RFC 3339 UTC. */
/* clang-format off */
#define SA_TS(col) \
	"to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
/* clang-format on */

/*
 * A prepared statement: stable name and SQL text (static storage).
 * Names starting with SA_ADHOC_PREFIX are not prepared but sent with their
 * parameters each time (PQexecParams), so PostgreSQL plans them for the
 * actual values: used for searches with optional filters, where a generic
 * plan misjudges the row counts.
 */
#define SA_ADHOC_PREFIX "adhoc_"
struct sa_stmt {
	const char *name;
	const char *sql;
};

#define SA_MAX_PARAMS 16

/* Text parameters of one statement; values point into buf, into own
 * (strings sa_bind made: sa_params_clear frees them) or borrow. */
struct sa_params {
	int n, nown;
	const char *v[SA_MAX_PARAMS];
	char buf[SA_MAX_PARAMS][40];
	char *own[SA_MAX_PARAMS];
};

struct sa_conn {
	struct sa *sa;
	PGconn *pg;
	int broken;                      /* reconnect before next use */
	int in_tx; /* inside sa_tx: never reconnect (the transaction is lost) */
	const struct sa_stmt **prepared; /* statements prepared on pg */
	size_t nprepared, capprepared;
	char sqlstate[6]; /* of the last failed statement, "" if none */
};

struct sa {
	char *dsn;
	int64_t statement_timeout_ms;
	struct metrics *metrics;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct sa_conn *conns;
	size_t nconns;
	int *busy;
	pthread_mutex_t health_mu;
	struct sa_conn health;
};

/* sa_db.c */
void sa_params_init(struct sa_params *p);
void sa_p_str(struct sa_params *p, const char *s); /* NULL = SQL NULL */
void sa_p_int(struct sa_params *p, int64_t v);
void sa_p_bool(struct sa_params *p, int v);

/*
 * Runs st (prepared on first use per connection) with p (NULL = none).
 * Returns a PGresult the caller PQclears, or NULL with *prob set (the
 * SQLSTATE is left in c->sqlstate). A lost connection gives
 * PROB_UNAVAILABLE and marks the connection for reconnection.
 */
PGresult *sa_q(struct sa_conn *c, const struct sa_stmt *st,
    const struct sa_params *p, struct problem **prob);
/* Like sa_q for commands whose result is only the affected row count. */
int sa_exec(struct sa_conn *c, const struct sa_stmt *st,
    const struct sa_params *p, long *rows, struct problem **prob);

typedef int (*sa_tx_fn)(struct sa_conn *c, void *arg, struct problem **prob);
/*
 * Runs fn inside BEGIN ... COMMIT; fn returns 0 to commit, -1 (with *prob)
 * to roll back. Serialization failures and deadlocks are retried a few
 * times (fn must be safe to run again). Returns 0 or -1 with *prob.
 */
int sa_tx(struct sa_conn *c, sa_tx_fn fn, void *arg, struct problem **prob);

/* Whether the last failure of c was this SQLSTATE. */
int sa_sqlstate_is(const struct sa_conn *c, const char *state);
/* Opens (or re-opens) c->pg: 0 or -1 with a message in err. */
int sa_conn_open(struct sa_conn *c, char *err, size_t errlen);
void sa_conn_close(struct sa_conn *c);

/* "{1,2,3}" for a bigint[] parameter. Caller frees. */
char *sa_id_array(const int64_t *ids, size_t n);
/*
 * Runs st with p expecting one row: the result (caller PQclears), or NULL
 * with *prob: notFound with detail `notfound` when there is no row, or
 * sa_q's problem.
 */
PGresult *sa_q_row(struct sa_conn *c, const struct sa_stmt *st,
    const struct sa_params *p, const char *notfound, struct problem **prob);
/*
 * Runs a one-row UPDATE st with p ($1 = id); when no row changes, sets
 * *prob to notFound if `exists` finds no row with that id, else to
 * `otherwise` with detail. 0 or -1 with *prob.
 */
int sa_update_or(struct sa_conn *c, const struct sa_stmt *st,
    const struct sa_params *p, const struct sa_stmt *exists,
    enum prob_type otherwise, const char *detail, struct problem **prob);
/*
 * Ids (first column) of the rows st lists for params.older_than, as a new
 * {key: [ids]} in *result. Shared by the stale-order and stale-authz
 * sweeps. 0 or -1 with *prob.
 */
int sa_stale_ids(struct sa_conn *c, const struct sa_stmt *st, const char *key,
    json_t *params, json_t **result, struct problem **prob);
/* The first column (ids) of the rows st gives for p, as a new {key: [ids]}
 * in *result. 0 or -1 with *prob. */
int sa_q_ids(struct sa_conn *c, const struct sa_stmt *st,
    const struct sa_params *p, const char *key, json_t **result,
    struct problem **prob);

/* sa_param.c: request parameter helpers; each sets *prob (malformed). */
int sa_get_id(const json_t *params, const char *name, int required,
    int64_t *out, struct problem **prob);
int sa_get_int(const json_t *params, const char *name, int required,
    int64_t *out, struct problem **prob);
int sa_get_str(const json_t *params, const char *name, int required,
    size_t maxlen, const char **out, struct problem **prob);
int sa_get_bool(const json_t *params, const char *name, int required, int *out,
    struct problem **prob);
/* Canonical RFC 3339 into buf (>= 32 bytes); "" when absent & optional. */
int sa_get_time(const json_t *params, const char *name, int required, char *buf,
    size_t buflen, struct problem **prob);
/* Lowercase hex of 2..max chars. */
int sa_get_hex(const json_t *params, const char *name, int required,
    size_t maxlen, const char **out, struct problem **prob);
/* JSON value of the given jansson type (JSON_OBJECT/ARRAY), borrowed. */
int sa_get_json(const json_t *params, const char *name, int required,
    json_type type, json_t **out, struct problem **prob);
/* Validates one identifier object {"type","value"}; borrowed outputs. */
int sa_check_identifier(const json_t *ident, const char **type,
    const char **value, struct problem **prob);
/* Base64url param decoded to hex text (caller frees *hex). */
int sa_get_b64_as_hex(const json_t *params, const char *name, int required,
    size_t maxlen, char **hex, struct problem **prob);

/* Compact JSON text of v (caller frees). */
char *sa_json_text(const json_t *v);
/* Parses stored JSON text (NULL = json_null()); new reference. */
json_t *sa_json_parse(const char *s);
/* Column value or NULL when SQL NULL. */
const char *sa_col(const PGresult *r, int row, int col);
int64_t sa_col_int(const PGresult *r, int row, int col);
int sa_col_bool(const PGresult *r, int row, int col);
/* Sets key to a string column, skipping SQL NULL. */
void sa_set_col_str(
    json_t *o, const char *key, const PGresult *r, int row, int col);
/* hex column -> base64url JSON string (NULL if SQL NULL). */
json_t *sa_col_hex_as_b64(const PGresult *r, int row, int col);

/*
 * Row -> JSON: one entry per result column, in column order. SQL NULL
 * leaves the key out, except for SA_COL_JSON and SA_COL_STR_OR_NULL, which
 * give JSON null. SA_COL_NONE: a column the caller reads itself.
 */
enum sa_col_kind {
	SA_COL_NONE,
	SA_COL_STR,
	SA_COL_STR_OR_NULL,
	SA_COL_INT,
	SA_COL_BOOL,
	SA_COL_JSON,     /* stored JSON text, parsed */
	SA_COL_JSON_OPT, /* the same, left out when SQL NULL */
	SA_COL_HEX_B64,  /* hex text -> base64url */
};
struct sa_col_spec {
	const char *key;
	enum sa_col_kind kind;
};
/* Sets o's members from row of r as spec[0..n) says (o borrowed). */
void sa_row_json(json_t *o, const PGresult *r, int row,
    const struct sa_col_spec *spec, size_t n);
/* The same for the columns base..base+n of row (o borrowed). */
void sa_row_json_at(json_t *o, const PGresult *r, int row, int base,
    const struct sa_col_spec *spec, size_t n);
#define SA_NCOLS(spec) (sizeof(spec) / sizeof((spec)[0]))
/*
 * sa_q_row, the row as a new JSON object in *out by spec[0..n)
 * (sa_row_json). 0 or -1 with *prob.
 */
int sa_q_one(struct sa_conn *c, const struct sa_stmt *st,
    const struct sa_params *p, const struct sa_col_spec *spec, size_t n,
    const char *notfound, json_t **out, struct problem **prob);

/*
 * A method in declared form (sa_decl.c, GNU Taler style): its request
 * parameters, read in order by sa_bind as $1.. of one statement, and what
 * the answer is. The parameter errors are sa_get_*'s (malformed, naming
 * the parameter).
 */
enum sa_in_kind {
	SA_IN_ID,      /* sa_get_id: a positive integer */
	SA_IN_INT,     /* sa_get_int; with max, within [min, max] */
	SA_IN_STR,     /* sa_get_str: at most max bytes; with min, at least */
	SA_IN_HEX,     /* sa_get_hex: at most max digits */
	SA_IN_TIME,    /* sa_get_time: canonical RFC 3339 */
	SA_IN_BOOL,    /* sa_get_bool */
	SA_IN_B64_HEX, /* sa_get_b64_as_hex: at most max characters */
	SA_IN_OBJECT,  /* a JSON object as its compact text; with max, at
			  most max bytes of it */
	SA_IN_ARRAY,   /* a JSON array as its compact text */
};
struct sa_in {
	const char *name;
	enum sa_in_kind kind;
	int required;
	int64_t max, min;
	/* the detail of a value outside [min, max] (an INT without it:
	 * "parameter <name>: out of range") */
	const char *bad;
	const char *dflt; /* bound when absent; NULL binds SQL NULL */
};
/*
 * Reads params as in[0..n) says into a new p ($1.. in order; absent and
 * optional: dflt). 0, or -1 with *prob (p left empty). The caller calls
 * sa_params_clear(p) after use.
 */
int sa_bind(const json_t *params, const struct sa_in *in, size_t n,
    struct sa_params *p, struct problem **prob);
/* Frees (and wipes: they may be key material) the strings p owns; p is
 * empty after. */
void sa_params_clear(struct sa_params *p);
enum sa_out_kind {
	SA_OUT_ROW,     /* the one row by cols; none: fail with detail */
	SA_OUT_LIST,    /* {key: [rows by cols]}; one column without a key:
			   [its values] */
	SA_OUT_CHANGED, /* a command: {} when it changed one row, else
			   fail with detail */
	SA_OUT_DONE,    /* a command: {} */
};
struct sa_decl {
	const struct sa_stmt *st;
	const struct sa_in *in;
	size_t nin;
	enum sa_out_kind out;
	const struct sa_col_spec *cols;
	size_t ncols;
	const char *key;     /* SA_OUT_LIST: the list's member */
	enum prob_type fail; /* ROW, CHANGED: the problem... */
	const char *detail;  /* ...and its detail (%s, %s: $1's, $2's text) */
	/* more checks of the bound parameters before st runs (NULL: none):
	 * 0, or -1 with *prob */
	int (*check)(
	    const json_t *params, const struct sa_params *p, struct problem **prob);
	/* SA_OUT_LIST: each row's JSON, new (NULL: by cols) */
	json_t *(*row)(const PGresult *r, int row);
	/* ROW, CHANGED: the answer is the object this reads by an id: the
	 * row's first column (ROW) or $1 (CHANGED). NULL: the row by cols,
	 * or {}. */
	int (*reply)(
	    struct sa_conn *c, int64_t id, json_t **out, struct problem **prob);
	/* st failing with this SQLSTATE (NULL: none) answers this problem */
	const char *sqlstate;
	enum prob_type state_fail;
	const char *state_detail;
};
/* A required / optional (bound as dflt when absent) sa_in of kind k and at
 * most m. */
#define SA_REQ(n, k, m) {.name = (n), .kind = (k), .required = 1, .max = (m)}
#define SA_OPT(n, k, m, d) {.name = (n), .kind = (k), .max = (m), .dflt = (d)}
/* The .in/.nin and .cols/.ncols of a struct sa_decl from arrays. */
#define SA_DECL_IN(arr) .in = (arr), .nin = SA_NCOLS(arr)
#define SA_DECL_COLS(arr) .cols = (arr), .ncols = SA_NCOLS(arr)
/* Runs the method d declares for params: 0 and *result, or -1 and *prob. */
int sa_run(struct sa_conn *c, const struct sa_decl *d, json_t *params,
    json_t **result, struct problem **prob);
/* Column col of row of r as JSON of kind (NULL where sa_row_json leaves
 * the key out). */
json_t *sa_col_json(
    const PGresult *r, int row, int col, enum sa_col_kind kind);

/* Method implementations: (conn, params, result, prob). Declared below
 * as `sa_method_impl sa_m_<name>;`. */
typedef int sa_method_impl(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob);
typedef sa_method_impl *sa_method_fn;

/* sa_account.c */
sa_method_impl sa_m_new_account;
extern const struct sa_decl sa_d_get_account;
extern const struct sa_decl sa_d_get_account_by_thumbprint;
extern const struct sa_decl sa_d_update_account;
extern const struct sa_decl sa_d_change_account_key;
extern const struct sa_decl sa_d_new_eab_key;
extern const struct sa_decl sa_d_get_eab_key;
extern const struct sa_decl sa_d_list_eab_keys;
extern const struct sa_decl sa_d_revoke_eab_key;
/* Why a write that requires a valid account id wrote nothing: -1 with
 * *prob accountDoesNotExist or unauthorized ("Account is <status>"), or 0
 * when the account is valid (the reason was another). */
int sa_account_refusal(struct sa_conn *c, int64_t id, struct problem **prob);

/* sa_authz.c: one authorization to create, validated before the
 * transaction (shared with sa.new_order). */
struct sa_authz_in {
	const char *type, *value;
	int wildcard;
	int subdomain_auth; /* RFC 9444: covers every name below value */
	char expires[32];
	char *chall_types, *chall_tokens; /* text[] literals */
};
/* Parses one {identifier, wildcard, expires, challenges} into a (strings
 * borrowed from j, literals owned: sa_authz_in_clear). 0 or -1 with *prob. */
int sa_authz_in_parse(
    const json_t *j, struct sa_authz_in *a, struct problem **prob);
void sa_authz_in_clear(struct sa_authz_in *a);
/* clang-format off */
/*
 * An authz as sa_authz_of_row reads it: its columns, then its challenges
 * as a JSON array (error and validation_record are stored JSON text).
 * challs names where the challenges come from: the table, or a WITH query
 * of challenges rows (a statement that changed some returns them as they
 * are now). The FROM clause that follows calls the authzs `authzs`.
 */
#define SA_AUTHZ_SELECT(challs) \
	"SELECT id, account_id, ident_type, ident_value, wildcard, status, " \
	SA_TS("expires") ", profile, " SA_TS("created") ", " \
	"expires <= now(), subdomain_auth, " \
	"(SELECT json_agg(json_build_object('id', c.id, 'type', c.type, " \
	"'token', c.token, 'status', c.status, " \
	"'validated', " SA_TS("c.validated") ", 'error', c.error::json, " \
	"'validation_record', c.validation_record::json) ORDER BY c.id) " \
	"FROM " challs " c WHERE c.authz_id = authzs.id)"
/* clang-format on */
/* How many columns SA_AUTHZ_SELECT has. */
#define SA_AUTHZ_NCOLS 12
/* The authz of columns base.. of row of r (SA_AUTHZ_SELECT; r borrowed):
 * a new object, or NULL with *prob. */
json_t *sa_authz_of_row(
    const PGresult *r, int row, int base, struct problem **prob);
/* Derived authz status from stored status and expiry (static string). */
const char *sa_authz_status(const char *stored, int expired);

/* sa_order.c */
sa_method_impl sa_m_new_order;
sa_method_impl sa_m_get_order;
sa_method_impl sa_m_get_orders_by_account;
sa_method_impl sa_m_set_order_processing;
sa_method_impl sa_m_set_order_error;
sa_method_impl sa_m_finalize_order;
sa_method_impl sa_m_get_stale_processing_orders;
sa_method_impl sa_m_reclaim_order;
sa_method_impl sa_m_replacement_exists;

/* sa_authz.c */
sa_method_impl sa_m_new_authz;
sa_method_impl sa_m_get_authz;
sa_method_impl sa_m_get_authzs;
sa_method_impl sa_m_get_valid_authzs;
sa_method_impl sa_m_set_authz_processing;
sa_method_impl sa_m_finalize_authz;
sa_method_impl sa_m_deactivate_authz;
sa_method_impl sa_m_get_stale_processing_authzs;

/* sa_cert.c */
sa_method_impl sa_m_reserve_serial;
sa_method_impl sa_m_add_certificate;
extern const struct sa_decl sa_d_get_certificate;
sa_method_impl sa_m_get_certificates;
sa_method_impl sa_m_revoke_certificate;
extern const struct sa_decl sa_d_serials_by_account;
extern const struct sa_decl sa_d_serials_by_key;
extern const struct sa_decl sa_d_block_key;
extern const struct sa_decl sa_d_key_blocked;
sa_method_impl sa_m_fqdn_set_issued;
sa_method_impl sa_m_count_certs_by_domain;

/* sa_misc.c */
sa_method_impl sa_m_rate_limit_spend;
extern const struct sa_decl sa_d_revoked_by_shard;
extern const struct sa_decl sa_d_store_crl;
extern const struct sa_decl sa_d_get_crl;
extern const struct sa_decl sa_d_next_crl_number;
extern const struct sa_decl sa_d_store_ocsp;
extern const struct sa_decl sa_d_get_ocsp;

/* sa_flow.c: coarse hot-path steps (issue 18) */
int sa_m_claim_challenge(
    struct sa_conn *, json_t *, json_t **, struct problem **);
sa_method_impl sa_m_peek_challenge;
/* sa_authz.c: claim and result of a validation in one statement */
sa_method_impl sa_m_record_validation;
/* clang-format off */
/*
 * A WHERE on authzs: authz $1 may start the validation of its challenge
 * $2 for account acct (a parameter): it belongs to the account, is
 * pending, unexpired and not yet attempted, the account is valid and the
 * challenge pending and of no type in types (a text[] expression).
 */
#define SA_CLAIMABLE(acct, types) \
	"id = $1 AND account_id = " acct " AND status = 'pending' " \
	"AND attempted_at IS NULL AND expires > now() " \
	"AND EXISTS (SELECT 1 FROM accounts WHERE id = " acct \
	" AND status = 'valid') " \
	"AND EXISTS (SELECT 1 FROM challenges WHERE id = $2 AND " \
	"authz_id = $1 AND status = 'pending' AND type <> ALL(" types \
	"::text[]))"
/* clang-format on */

/* Longest serial (hex digits) sa.reserve_serial and the order claim take. */
#define SA_SERIAL_MAX 64
/* Longest finalize claim token (hex digits; 0016_order_claim). */
#define SA_CLAIM_MAX 64

/* Shared readers (sa_order.c / sa_authz.c / sa_cert.c), used after writes. */
int sa_read_order(
    struct sa_conn *c, int64_t id, json_t **out, struct problem **prob);
int sa_read_authz(
    struct sa_conn *c, int64_t id, json_t **out, struct problem **prob);
/* Authzs by id (n of ids, borrowed) into a new array *out, in the order of
 * ids, missing ones omitted. 0 or -1 with *prob. */
int sa_read_authzs(struct sa_conn *c, const int64_t *ids, size_t n,
    json_t **out, struct problem **prob);
int sa_read_certificate(struct sa_conn *c, const char *serial, int with_der,
    json_t **out, struct problem **prob);
/* SHA-256 hex of the sorted, de-duplicated identifier values. */
char *sa_fqdn_set_hash(const json_t *identifiers);

/* sa_star.c: RFC 8739 STAR orders */
/* clang-format off */
/* A column of the order query: the order's star_orders row as JSON text
 * (NULL for an order without auto-renewal). */
#define SA_STAR_ORDER_COL \
	"(SELECT json_build_object('status', s.status, 'start_date', " \
	SA_TS("s.start_date") ", 'end_date', " SA_TS("s.end_date") ", " \
	"'lifetime', s.lifetime, 'lifetime_adjust', s.lifetime_adjust, " \
	"'allow_get', s.allow_get, 'next_at', " SA_TS("s.next_at") ", " \
	"'canceled_at', " SA_TS("s.canceled_at") ")::text " \
	"FROM star_orders s WHERE s.order_id = orders.id)"
/* clang-format on */
/*
 * Adds the STAR part of an order (star_json: SA_STAR_ORDER_COL's text,
 * borrowed, NULL for none) to order (borrowed): "star" and, for a canceled
 * one, status "canceled". 0, or -1 if the text is unreadable.
 */
int sa_star_attach(json_t *order, const char *star_json);
extern const struct sa_decl sa_d_star_new;
int sa_m_star_get(struct sa_conn *, json_t *, json_t **, struct problem **);
extern const struct sa_decl sa_d_star_set_csr;
extern const struct sa_decl sa_d_star_claim;
extern const struct sa_decl sa_d_star_release;
int sa_m_star_cancel(struct sa_conn *, json_t *, json_t **, struct problem **);

/* sa_delegation.c: RFC 9115 delegations */
/*
 * Inside sa.new_order's transaction: the delegation delegation_id, active
 * and made for ndc_id, locked against a concurrent cancel; *owner_id is
 * the domain owner whose authorizations the order reuses. 0, or -1 with
 * *prob (unknownDelegation).
 */
int sa_deleg_order_lock(struct sa_conn *c, int64_t delegation_id,
    int64_t ndc_id, int64_t *owner_id, struct problem **prob);
/* Inside sa.new_order's transaction: the new order belongs to the
 * delegation. 0 or -1 with *prob. */
int sa_deleg_order_link(struct sa_conn *c, int64_t order_id,
    int64_t delegation_id, struct problem **prob);
extern const struct sa_decl sa_d_delegation_new;
extern const struct sa_decl sa_d_delegation_get;
sa_method_impl sa_m_delegation_list;
sa_method_impl sa_m_delegation_update;
sa_method_impl sa_m_delegation_cancel;
/* RFC 9447 jti store (sa_tkauth.c) */
sa_method_impl sa_m_tkauth_spend_jti;

#endif /* ANVIL_SA_INT_H */
