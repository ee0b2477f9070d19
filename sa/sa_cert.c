/*
 * sa_cert.c - serials, certificates, revocation, key hashes and the
 * issuance counts used by rate limits and renewal detection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sa/sa_int.h"

#define SA_DER_MAX (64 * 1024)

/* clang-format off */
#define CERT_COLS(der) \
	"c.serial, c.account_id, c.order_id, " der ", c.issuer_id, " \
	"c.profile, c.identifiers, " SA_TS("c.not_before") ", " \
	SA_TS("c.not_after") ", " SA_TS("c.issued") ", c.key_hash, " \
	"s.status, " SA_TS("s.revoked_at") ", s.revoked_reason, c.shard"
#define CERT_FROM \
	" FROM certificates c JOIN certificate_status s ON s.serial = c.serial"
/* Optional filters shared by the get_certificates statements. */
#define CERT_FILTERS                                                           \
	" AND ($1::bigint IS NULL OR c.account_id = $1)"                       \
	" AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM issued_names n "      \
	"WHERE n.reversed_name = $2 AND n.serial = c.serial))"                 \
	" AND ($3::timestamptz IS NULL OR c.not_after < $3)"                   \
	" AND ($4::text IS NULL OR c.key_hash = $4)"                           \
	" AND ($6::bigint IS NULL OR c.order_id = $6)"                         \
	" ORDER BY c.not_after, c.serial LIMIT $5"

static const struct sa_stmt st_serial_insert = {"serial_insert",
    "INSERT INTO serials (serial, account_id, expires) VALUES ($1, $2, $3) "
    "ON CONFLICT (serial) DO NOTHING"};
/*
 * A serial reserved for processing order $4 only while claim $5 holds it
 * (0016_order_claim), which shows the claimant alive (claimed_at). The
 * answer: did the claim hold, was the serial reserved.
 */
static const struct sa_stmt st_serial_insert_claimed = {"serial_claimed",
    "WITH o AS (UPDATE orders SET claimed_at = now() WHERE id = $4 "
    "AND status = 'processing' AND claim = $5 RETURNING id), "
    "i AS (INSERT INTO serials (serial, account_id, expires) "
    "SELECT $1::text, $2::bigint, $3::timestamptz FROM o "
    "ON CONFLICT (serial) DO NOTHING RETURNING serial) "
    "SELECT EXISTS (SELECT 1 FROM o), EXISTS (SELECT 1 FROM i)"};
/*
 * A certificate stored in one statement (so one implicit transaction, no
 * BEGIN/COMMIT round trips, issue 18): the certificate if its serial $1
 * was reserved and is not stored yet, its status good, key hash -> serial,
 * the issued names ($12, reversed), the identifier-set hash ($13); with
 * $14 the processing order $3 becomes valid with it. With a claim $15 the
 * order must still be processing under it (0016_order_claim). The answer:
 * was the serial reserved, was the certificate stored, did the order
 * become valid, did the claim hold.
 * (Foreign keys to rows inserted by a sibling are checked at the end of
 * the statement.)
 */
static const struct sa_stmt st_cert_store = {"cert_store",
    "WITH k AS (SELECT ($15::text IS NULL OR EXISTS (SELECT 1 FROM orders "
    "WHERE id = $3::bigint AND status = 'processing' AND claim = $15)) "
    "AS ok), "
    "s AS (SELECT serial FROM serials, k WHERE serial = $1 AND k.ok), "
    "c AS (INSERT INTO certificates (serial, account_id, order_id, der, "
    "issuer_id, profile, identifiers, not_before, not_after, key_hash, "
    "shard) SELECT s.serial, $2::bigint, $3::bigint, decode($4, 'hex'), "
    "$5::text, $6::text, $7::text, $8::timestamptz, $9::timestamptz, "
    "$10::text, $11::int FROM s ON CONFLICT (serial) DO NOTHING "
    "RETURNING serial), "
    "st AS (INSERT INTO certificate_status (serial, issuer_id, shard, "
    "not_after) SELECT serial, $5::text, $11::int, $9::timestamptz FROM c), "
    "kh AS (INSERT INTO key_hash_to_serial (key_hash, serial, not_after) "
    "SELECT $10::text, serial, $9::timestamptz FROM c), "
    "nm AS (INSERT INTO issued_names (reversed_name, issued, serial) "
    "SELECT DISTINCT n, now(), c.serial FROM c, unnest($12::text[]) AS u(n)), "
    "fq AS (INSERT INTO fqdn_sets (set_hash, serial, issued, expires) "
    "SELECT $13::text, serial, now(), $9::timestamptz FROM c), "
    "ov AS (UPDATE orders SET status = 'valid', certificate_serial = $1, "
    "csr = NULL WHERE $14::boolean AND id = $3::bigint "
    "AND status = 'processing' AND EXISTS (SELECT 1 FROM c) RETURNING id) "
    "SELECT EXISTS (SELECT 1 FROM s), EXISTS (SELECT 1 FROM c), "
    "EXISTS (SELECT 1 FROM ov), (SELECT ok FROM k)"};
static const struct sa_stmt st_cert_get = {"cert_get",
    "SELECT " CERT_COLS("encode(c.der, 'hex')") CERT_FROM
    " WHERE c.serial = $1"};
static const struct sa_stmt st_cert_get_nodel = {"cert_get_noder",
    "SELECT " CERT_COLS("NULL") CERT_FROM " WHERE c.serial = $1"};
static const struct sa_stmt st_certs_by_key = {"adhoc_certs_by_key",
    "SELECT " CERT_COLS("NULL") CERT_FROM
    " WHERE c.serial IN "
    "(SELECT serial FROM key_hash_to_serial WHERE key_hash = $4)"
    CERT_FILTERS};
static const struct sa_stmt st_certs_by_name = {"adhoc_certs_by_name",
    "SELECT " CERT_COLS("NULL") CERT_FROM
    " WHERE c.serial IN "
    "(SELECT serial FROM issued_names WHERE reversed_name = $2)"
    CERT_FILTERS};
static const struct sa_stmt st_certs_by_acct = {"adhoc_certs_by_acct",
    "SELECT " CERT_COLS("NULL") CERT_FROM
    " WHERE c.account_id = $1" CERT_FILTERS};
static const struct sa_stmt st_certs_by_order = {"adhoc_certs_by_order",
    "SELECT " CERT_COLS("NULL") CERT_FROM
    " WHERE c.order_id = $6" CERT_FILTERS};
static const struct sa_stmt st_certs_expiring = {"adhoc_certs_expiring",
    "SELECT " CERT_COLS("NULL") CERT_FROM
    " WHERE c.not_after < $3"
    " AND c.not_after > now()" CERT_FILTERS};
static const struct sa_stmt st_status_lock = {"status_lock",
    "SELECT status, revoked_reason FROM certificate_status "
    "WHERE serial = $1 FOR UPDATE"};
static const struct sa_stmt st_status_revoke = {"status_revoke",
    "UPDATE certificate_status SET status = 'revoked', revoked_at = $2, "
    "revoked_reason = $3 WHERE serial = $1"};
static const struct sa_stmt st_status_rereason = {"status_rereason",
    "UPDATE certificate_status SET revoked_reason = $2 WHERE serial = $1"};
static const struct sa_stmt st_serials_acct = {"serials_acct",
    "SELECT serial FROM certificates WHERE account_id = $1 "
    "AND not_after > now() ORDER BY not_after, serial"};
static const struct sa_stmt st_serials_key = {"serials_key",
    "SELECT serial FROM key_hash_to_serial WHERE key_hash = $1 "
    "AND not_after > now() ORDER BY not_after, serial"};
static const struct sa_stmt st_block_key = {"block_key",
    "INSERT INTO blocked_keys (key_hash, source, comment) "
    "VALUES ($1, $2, $3) ON CONFLICT (key_hash) DO NOTHING"};
static const struct sa_stmt st_key_blocked = {"key_blocked",
    "SELECT EXISTS (SELECT 1 FROM blocked_keys WHERE key_hash = $1)"};
static const struct sa_stmt st_fqdn_issued = {"fqdn_issued",
    "SELECT " SA_TS("issued") " FROM fqdn_sets WHERE set_hash = $2 "
    "AND issued > now() - $1::bigint * interval '1 millisecond' "
    "ORDER BY issued"};
static const struct sa_stmt st_count_domain = {"count_domain",
    "SELECT count(DISTINCT serial) FROM issued_names "
    "WHERE (reversed_name = $1 OR (reversed_name >= $1 || '.' "
    "AND reversed_name < $1 || '/')) "
    "AND issued > now() - $2::bigint * interval '1 millisecond'"};
/* clang-format on */

/* The JSON of CERT_COLS. */
static const struct sa_col_spec cert_cols[] = {
    {"serial", SA_COL_STR},
    {"account_id", SA_COL_INT},
    {"order_id", SA_COL_INT},
    {"der", SA_COL_HEX_B64},
    {"issuer_id", SA_COL_STR},
    {"profile", SA_COL_STR},
    {"identifiers", SA_COL_JSON},
    {"not_before", SA_COL_STR},
    {"not_after", SA_COL_STR},
    {"issued", SA_COL_STR},
    {"key_hash", SA_COL_STR},
    {"status", SA_COL_STR},
    {"revoked_at", SA_COL_STR},
    {"revoked_reason", SA_COL_INT},
    {"shard", SA_COL_INT},
};

/* clang-format off */
static const struct sa_in in_serial[] = {
    SA_REQ("serial", SA_IN_HEX, SA_SERIAL_MAX)};
static const struct sa_in in_account[] = {SA_REQ("account_id", SA_IN_ID, 0)};
static const struct sa_in in_key_hash[] = {SA_REQ("key_hash", SA_IN_HEX, 64)};
static const struct sa_in in_block_key[] = {SA_REQ("key_hash", SA_IN_HEX, 64),
    SA_OPT("source", SA_IN_STR, 256, ""),
    SA_OPT("comment", SA_IN_STR, 1024, "")};
static const struct sa_in in_reserve[] = {
    SA_REQ("serial", SA_IN_HEX, SA_SERIAL_MAX),
    SA_REQ("account_id", SA_IN_ID, 0), SA_REQ("expires", SA_IN_TIME, 0),
    SA_OPT("order_id", SA_IN_ID, 0, NULL),
    SA_OPT("claim", SA_IN_HEX, SA_CLAIM_MAX, NULL)};
/* clang-format off */
#define IN_WINDOW {.name = "window_ms", .kind = SA_IN_INT, .required = 1, \
	.max = 10LL * 365 * 86400 * 1000, .min = 1, \
	.bad = "parameter window_ms: out of range"}
/* clang-format on */
static const struct sa_in in_window[] = {IN_WINDOW};
static const struct sa_in in_count[] = {
    {.name = "domain", .kind = SA_IN_STR, .required = 1, .max = 255,
	.min = 1, .bad = "parameter domain: empty"},
    IN_WINDOW};
static const struct sa_col_spec serial_col[] = {{NULL, SA_COL_STR}};
static const struct sa_col_spec blocked_col[] = {{"blocked", SA_COL_BOOL}};
/* clang-format on */

/* sa.get_certificate (with its DER) */
const struct sa_decl sa_d_get_certificate = {.st = &st_cert_get,
    SA_DECL_IN(in_serial), SA_DECL_COLS(cert_cols), .fail = PROB_NOT_FOUND,
    .detail = "no such certificate"};
/* sa.serials_by_account, sa.serials_by_key: the unexpired serials */
const struct sa_decl sa_d_serials_by_account = {.st = &st_serials_acct,
    SA_DECL_IN(in_account), .out = SA_OUT_LIST, SA_DECL_COLS(serial_col),
    .key = "serials"};
const struct sa_decl sa_d_serials_by_key = {.st = &st_serials_key,
    SA_DECL_IN(in_key_hash), .out = SA_OUT_LIST, SA_DECL_COLS(serial_col),
    .key = "serials"};
/* sa.block_key (already blocked is no error), sa.key_blocked */
const struct sa_decl sa_d_block_key = {.st = &st_block_key,
    SA_DECL_IN(in_block_key), .out = SA_OUT_DONE};
const struct sa_decl sa_d_key_blocked = {.st = &st_key_blocked,
    SA_DECL_IN(in_key_hash), SA_DECL_COLS(blocked_col)};

/* "www.example.com" -> "com.example.www" (IPs unchanged). Caller frees. */
static char *
reverse_name(const char *type, const char *name)
{
	size_t len = strlen(name), off = 0;
	char *out;
	const char *end = name + len, *p;

	if (strcmp(type, "dns") != 0)
		return xstrdup(name);
	out = xmalloc(len + 1);
	while (end > name) {
		p = end;
		while (p > name && p[-1] != '.')
			p--;
		if (off > 0)
			out[off++] = '.';
		memcpy(out + off, p, (size_t)(end - p));
		off += (size_t)(end - p);
		end = p > name ? p - 1 : name;
	}
	out[off] = '\0';
	return out;
}

static json_t *
cert_json(const PGresult *r, int row)
{
	json_t *o = json_object();

	sa_row_json(o, r, row, cert_cols, SA_NCOLS(cert_cols));
	return o;
}

int
sa_read_certificate(struct sa_conn *c, const char *serial, int with_der,
    json_t **out, struct problem **prob)
{
	struct sa_params p;

	sa_params_init(&p);
	sa_p_str(&p, serial);
	return sa_q_one(c, with_der ? &st_cert_get : &st_cert_get_nodel, &p,
	    cert_cols, SA_NCOLS(cert_cols), "no such certificate", out, prob);
}

/* A reservation that failed: a serial for an unknown account is malformed
 * (23503). -1 with *prob. */
static int
reserve_failed(struct sa_conn *c, struct problem **prob)
{
	if (sa_sqlstate_is(c, "23503")) {
		problem_free(*prob);
		*prob = problem_new(PROB_MALFORMED, "no such account");
	}
	return -1;
}

/* The serial of p (in_reserve bound: serial, account, expires, order id,
 * claim) reserved under the order's claim (st_serial_insert_claimed). 0
 * and *result, or -1 and *prob: orderNotReady when the claim no longer
 * holds, conflict when the serial exists. */
static int
reserve_claimed(struct sa_conn *c, const struct sa_params *p, json_t **result,
    struct problem **prob)
{
	PGresult *r;
	int held, reserved;

	if ((r = sa_q(c, &st_serial_insert_claimed, p, prob)) == NULL)
		return reserve_failed(c, prob);
	held = sa_col_bool(r, 0, 0);
	reserved = sa_col_bool(r, 0, 1);
	PQclear(r);
	if (!held) {
		*prob = problem_new(PROB_ORDER_NOT_READY,
		    "order %s is not processing under this claim (taken over "
		    "by recovery, or finished)",
		    p->v[3]);
		return -1;
	}
	if (!reserved) {
		*prob = problem_new(PROB_CONFLICT, "serial already exists");
		return -1;
	}
	*result = json_object();
	return 0;
}

/* The serial of p (serial, account, expires) reserved: 0 and *result, or
 * -1 and *prob (conflict when it exists). */
static int
reserve(struct sa_conn *c, const struct sa_params *p, json_t **result,
    struct problem **prob)
{
	long rows = 0;

	if (sa_exec(c, &st_serial_insert, p, &rows, prob) != 0)
		return reserve_failed(c, prob);
	if (rows != 1) {
		*prob = problem_new(
		    PROB_CONFLICT, "serial %s already exists", p->v[0]);
		return -1;
	}
	*result = json_object();
	return 0;
}

int
sa_m_reserve_serial(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct sa_params p;
	int ret;

	if (sa_bind(params, in_reserve, SA_NCOLS(in_reserve), &p, prob) != 0)
		return -1;
	if (p.v[3] != NULL && p.v[4] == NULL) {
		*prob = problem_new(
		    PROB_MALFORMED, "parameter claim: required");
		ret = -1;
	} else if (p.v[3] != NULL)
		ret = reserve_claimed(c, &p, result, prob);
	else {
		p.n = 3; /* serial, account, expires: st_serial_insert's */
		ret = reserve(c, &p, result, prob);
	}
	sa_params_clear(&p);
	return ret;
}

struct add_cert {
	const char *serial, *issuer_id, *profile, *key_hash, *claim;
	int64_t account_id, order_id, shard;
	int finalize_order, order_valid; /* in; out */
	char *der_hex, *idents_text, *names, *set_hash;
	char not_before[32], not_after[32];
};

/* Stores a (st_cert_store). 0, or -1 with *prob. */
static int
add_cert_store(struct sa_conn *c, struct add_cert *a, struct problem **prob)
{
	struct sa_params p;
	PGresult *r;
	int rc = -1;

	sa_params_init(&p);
	sa_p_str(&p, a->serial);
	sa_p_int(&p, a->account_id);
	if (a->order_id > 0)
		sa_p_int(&p, a->order_id);
	else
		sa_p_str(&p, NULL);
	sa_p_str(&p, a->der_hex);
	sa_p_str(&p, a->issuer_id);
	sa_p_str(&p, a->profile);
	sa_p_str(&p, a->idents_text);
	sa_p_str(&p, a->not_before);
	sa_p_str(&p, a->not_after);
	sa_p_str(&p, a->key_hash);
	sa_p_int(&p, a->shard);
	sa_p_str(&p, a->names);
	sa_p_str(&p, a->set_hash);
	sa_p_bool(&p, a->finalize_order && a->order_id > 0);
	sa_p_str(&p, a->claim);
	if ((r = sa_q(c, &st_cert_store, &p, prob)) == NULL) {
		if (sa_sqlstate_is(c, "23503")) {
			problem_free(*prob);
			*prob = problem_new(
			    PROB_MALFORMED, "no such account or order");
		}
		return -1;
	}
	if (!sa_col_bool(r, 0, 3))
		*prob = problem_new(PROB_ORDER_NOT_READY,
		    "order %lld is not processing under this claim: "
		    "certificate %s not stored",
		    (long long)a->order_id, a->serial);
	else if (!sa_col_bool(r, 0, 0))
		*prob = problem_new(
		    PROB_MALFORMED, "serial %s was not reserved", a->serial);
	else if (!sa_col_bool(r, 0, 1))
		*prob = problem_new(
		    PROB_CONFLICT, "certificate %s already stored", a->serial);
	else {
		a->order_valid = sa_col_bool(r, 0, 2);
		rc = 0;
	}
	PQclear(r);
	return rc;
}

/* text[] literal of reversed names, each double-quoted. Caller frees. */
static int
names_array(json_t *idents, char **out, struct problem **prob)
{
	size_t i, len = 3;
	json_t *id;
	char *s, **rev;
	const char *t, *v;
	size_t n = json_array_size(idents);
	int ret = -1;

	rev = xcalloc(n + 1, sizeof(*rev));
	json_array_foreach(idents, i, id)
	{
		if (sa_check_identifier(id, &t, &v, prob) != 0)
			goto out;
		if (strpbrk(v, "\"\\{},") != NULL) {
			*prob = problem_new(PROB_MALFORMED,
			    "identifier value has bad characters");
			goto out;
		}
		rev[i] = reverse_name(t, v);
		len += strlen(rev[i]) + 3;
	}
	s = xcalloc(len, 1);
	strcat(s, "{");
	for (i = 0; i < n; i++) {
		if (i > 0)
			strcat(s, ",");
		strcat(s, "\"");
		strcat(s, rev[i]);
		strcat(s, "\"");
	}
	strcat(s, "}");
	*out = s;
	ret = 0;
out:
	for (i = 0; i < n; i++)
		free(rev[i]);
	free(rev);
	return ret;
}

int
sa_m_add_certificate(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct add_cert a;
	json_t *idents = NULL;
	int ret = -1;

	memset(&a, 0, sizeof(a));
	if (sa_get_hex(params, "serial", 1, SA_SERIAL_MAX, &a.serial, prob) <
		0 ||
	    sa_get_b64_as_hex(params, "der", 1, SA_DER_MAX * 4 / 3 + 4,
		&a.der_hex, prob) < 0 ||
	    sa_get_id(params, "account_id", 1, &a.account_id, prob) < 0 ||
	    sa_get_id(params, "order_id", 0, &a.order_id, prob) < 0 ||
	    sa_get_hex(params, "issuer_id", 1, 64, &a.issuer_id, prob) < 0 ||
	    sa_get_str(params, "profile", 0, 64, &a.profile, prob) < 0 ||
	    sa_get_json(params, "identifiers", 1, JSON_ARRAY, &idents, prob) <
		0 ||
	    sa_get_time(params, "not_before", 1, a.not_before,
		sizeof(a.not_before), prob) < 0 ||
	    sa_get_time(params, "not_after", 1, a.not_after,
		sizeof(a.not_after), prob) < 0 ||
	    sa_get_hex(params, "key_hash", 1, 64, &a.key_hash, prob) < 0 ||
	    sa_get_int(params, "shard", 0, &a.shard, prob) < 0 ||
	    sa_get_bool(params, "finalize_order", 0, &a.finalize_order,
		prob) < 0 ||
	    sa_get_hex(params, "claim", 0, SA_CLAIM_MAX, &a.claim, prob) < 0)
		goto out;
	if (a.claim != NULL && a.order_id <= 0) {
		*prob = problem_new(PROB_MALFORMED, "claim: needs order_id");
		goto out;
	}
	if (a.profile == NULL)
		a.profile = "";
	if (a.shard < 0 || a.shard > 1000000) {
		*prob = problem_new(PROB_MALFORMED, "parameter shard: range");
		goto out;
	}
	if (json_array_size(idents) == 0 || json_array_size(idents) > 1000) {
		*prob = problem_new(PROB_MALFORMED,
		    "parameter identifiers: 1 to 1000 expected");
		goto out;
	}
	if (names_array(idents, &a.names, prob) != 0)
		goto out;
	a.idents_text = sa_json_text(idents);
	a.set_hash = sa_fqdn_set_hash(idents);
	if (add_cert_store(c, &a, prob) != 0)
		goto out;
	*result = a.order_valid ? json_pack("{s:b}", "order_valid", 1)
				: json_object();
	ret = 0;
out:
	free(a.der_hex);
	free(a.idents_text);
	free(a.names);
	free(a.set_hash);
	return ret;
}

int
sa_m_get_certificates(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct sa_params p;
	const struct sa_stmt *st;
	json_t *ident = NULL, *list;
	const char *key_hash = NULL, *t = NULL, *v = NULL;
	char before[32], *rev = NULL;
	int64_t acct = 0, order = 0, limit = 100;
	PGresult *r = NULL;
	int i, ret = -1;

	if (sa_get_id(params, "account_id", 0, &acct, prob) < 0 ||
	    sa_get_id(params, "order_id", 0, &order, prob) < 0 ||
	    sa_get_json(params, "identifier", 0, JSON_OBJECT, &ident, prob) <
		0 ||
	    sa_get_time(params, "expiring_before", 0, before, sizeof(before),
		prob) < 0 ||
	    sa_get_hex(params, "key_hash", 0, 64, &key_hash, prob) < 0 ||
	    sa_get_int(params, "limit", 0, &limit, prob) < 0)
		goto out;
	if (ident != NULL) {
		if (sa_check_identifier(ident, &t, &v, prob) != 0)
			goto out;
		rev = reverse_name(t, v);
	}
	if (limit < 1 || limit > 1000) {
		*prob = problem_new(PROB_MALFORMED, "limit: 1 to 1000");
		goto out;
	}
	if (order > 0)
		st = &st_certs_by_order;
	else if (key_hash != NULL)
		st = &st_certs_by_key;
	else if (rev != NULL)
		st = &st_certs_by_name;
	else if (acct > 0)
		st = &st_certs_by_acct;
	else if (before[0] != '\0')
		st = &st_certs_expiring;
	else {
		*prob = problem_new(PROB_MALFORMED,
		    "one of account_id, order_id, identifier, expiring_before, "
		    "key_hash is required");
		goto out;
	}
	sa_params_init(&p);
	if (acct > 0)
		sa_p_int(&p, acct);
	else
		sa_p_str(&p, NULL);
	sa_p_str(&p, rev);
	sa_p_str(&p, before[0] ? before : NULL);
	sa_p_str(&p, key_hash);
	sa_p_int(&p, limit);
	if (order > 0)
		sa_p_int(&p, order);
	else
		sa_p_str(&p, NULL);
	if ((r = sa_q(c, st, &p, prob)) == NULL)
		goto out;
	list = json_array();
	for (i = 0; i < PQntuples(r); i++)
		json_array_append_new(list, cert_json(r, i));
	*result = json_pack("{s:o}", "certificates", list);
	ret = 0;
out:
	PQclear(r);
	free(rev);
	return ret;
}

struct revoke {
	const char *serial;
	int64_t reason;
	char at[32];
};

static int
revoke_tx(struct sa_conn *c, void *arg, struct problem **prob)
{
	struct revoke *rv = arg;
	struct sa_params p;
	PGresult *r;
	int revoked, old_reason;

	sa_params_init(&p);
	sa_p_str(&p, rv->serial);
	if ((r = sa_q_row(c, &st_status_lock, &p, "no such certificate",
		 prob)) == NULL)
		return -1;
	revoked = strcmp(sa_col(r, 0, 0), "revoked") == 0;
	old_reason = (int)sa_col_int(r, 0, 1);
	PQclear(r);
	if (!revoked) {
		sa_p_str(&p, rv->at);
		sa_p_int(&p, rv->reason);
		return sa_exec(c, &st_status_revoke, &p, NULL, prob);
	}
	if (old_reason != 1 && rv->reason == 1) {
		/* RFC 5280 5.3.1: may be re-revoked for keyCompromise */
		sa_p_int(&p, rv->reason);
		return sa_exec(c, &st_status_rereason, &p, NULL, prob);
	}
	*prob = problem_new(
	    PROB_ALREADY_REVOKED, "certificate is already revoked");
	return -1;
}

int
sa_m_revoke_certificate(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct revoke rv;

	memset(&rv, 0, sizeof(rv));
	if (sa_get_hex(params, "serial", 1, SA_SERIAL_MAX, &rv.serial, prob) <
		0 ||
	    sa_get_int(params, "reason", 1, &rv.reason, prob) < 0 ||
	    sa_get_time(params, "revoked_at", 1, rv.at, sizeof(rv.at), prob) <
		0)
		return -1;
	if (rv.reason < 0 || rv.reason > 10 || rv.reason == 7) {
		*prob = problem_new(PROB_BAD_REVOCATION_REASON,
		    "revocation reason %lld is not allowed",
		    (long long)rv.reason);
		return -1;
	}
	if (sa_tx(c, revoke_tx, &rv, prob) != 0)
		return -1;
	return sa_read_certificate(c, rv.serial, 0, result, prob);
}

int
sa_m_fqdn_set_issued(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct sa_params p;
	json_t *idents = NULL, *ts, *id;
	const char *t, *v;
	char *hash;
	PGresult *r;
	size_t i;
	int k;

	if (sa_get_json(params, "identifiers", 1, JSON_ARRAY, &idents, prob) <
		0 ||
	    sa_bind(params, in_window, SA_NCOLS(in_window), &p, prob) != 0)
		return -1;
	/* (p owns nothing: in_window is an integer) */
	if (json_array_size(idents) > 1000) {
		*prob = problem_new(PROB_MALFORMED, "too many identifiers");
		return -1;
	}
	json_array_foreach(idents, i, id)
	{
		if (sa_check_identifier(id, &t, &v, prob) != 0)
			return -1;
	}
	hash = sa_fqdn_set_hash(idents);
	sa_p_str(&p, hash);
	r = sa_q(c, &st_fqdn_issued, &p, prob);
	free(hash);
	sa_params_clear(&p);
	if (r == NULL)
		return -1;
	ts = json_array();
	for (k = 0; k < PQntuples(r); k++)
		json_array_append_new(ts, json_string(sa_col(r, k, 0)));
	*result =
	    json_pack("{s:i, s:o}", "count", PQntuples(r), "timestamps", ts);
	PQclear(r);
	return 0;
}

int
sa_m_count_certs_by_domain(
    struct sa_conn *c, json_t *params, json_t **result, struct problem **prob)
{
	struct sa_params p;
	char *rev;
	PGresult *r;

	if (sa_bind(params, in_count, SA_NCOLS(in_count), &p, prob) != 0)
		return -1;
	/* issued_names holds the names reversed */
	rev = reverse_name("dns", p.v[0]);
	p.v[0] = rev;
	r = sa_q(c, &st_count_domain, &p, prob);
	free(rev);
	sa_params_clear(&p);
	if (r == NULL)
		return -1;
	*result = json_pack("{s:I}", "count", (json_int_t)sa_col_int(r, 0, 0));
	PQclear(r);
	return 0;
}
