/*
 * sa.h - the storage authority: Anvil's only PostgreSQL client.
 *
 * anvil-sa serves the sa.* RPC methods of docs/rpc-methods.md. This header
 * is what cmd/anvil-sa (and tests) use: a connection pool with prepared
 * statements, the migrator and the method table.
 *
 * Threading: a struct sa is shared by all RPC worker threads. Each call
 * borrows one pooled connection for its duration (blocking while all are
 * busy), so connections = concurrent calls.
 */
#ifndef ANVIL_SA_H
#define ANVIL_SA_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/core.h"
#include "rpc/rpc.h"

/* Where migrations are looked for when the config names no directory. */
#define SA_SCHEMA_DIR_DEFAULT "schema"

struct sa;

/*
 * Options of sa_new. All borrowed during the call only.
 * dsn: libpq connection string. pool: number of connections (>= 1).
 * statement_timeout_ms: per-statement limit set on every connection
 * (0 = server default). metrics may be NULL; it must outlive the sa.
 */
struct sa_options {
	const char *dsn;
	size_t pool;
	int64_t statement_timeout_ms;
	struct metrics *metrics;
};

/*
 * Creates the pool. Connections are opened lazily (the first one right
 * away, to report a bad DSN early); a database that is down later makes
 * calls fail with PROB_UNAVAILABLE until it is back. Returns NULL with a
 * message in err when the first connection fails. Free with sa_free.
 */
struct sa *sa_new(const struct sa_options *opt, char *err, size_t errlen);
void sa_free(struct sa *sa);

/*
 * Migrations: reads schema_dir/NNNN_*.sql, takes a PostgreSQL advisory
 * lock, and (when apply != 0) runs each pending file in its own
 * transaction, recording it in schema_migrations. When apply == 0 it only
 * checks that the database is exactly at the newest version the files
 * describe. A database newer than the files is always refused. On success
 * returns 0 and, when non-NULL, *applied = number of files applied and
 * *version = the resulting version. -1 with a message in err otherwise.
 */
int sa_migrate(const char *dsn, const char *schema_dir, int apply, int *applied,
    int *version, char *err, size_t errlen);

/* What a restored database holds (sa_after_restore). */
struct sa_restore_summary {
	long long accounts;
	long long certificates;
	long long revoked;
	long long crl_shards; /* shards whose counter was raised or kept */
	long long crl_floor;  /* the lowest shard counter afterwards */
};

/*
 * Prepares a database restored from a backup: raises every CRL shard's
 * number to at least floor (the caller passes the current time in ms) so
 * CRL numbers continue above anything published from the lost database,
 * and counts what was restored into *s. dsn borrowed. 0, or -1 with err.
 */
int sa_after_restore(const char *dsn, int64_t floor,
    struct sa_restore_summary *s, char *err, size_t errlen);

/*
 * Runs one sa.* method in-process (what the RPC handler does). params is
 * borrowed (NULL means {}). Returns 0 with *result (new reference, caller
 * decrefs), or -1 with *prob (caller frees): notFound / conflict /
 * malformed / unavailable / ... as documented in docs/rpc-methods.md.
 */
int sa_call(struct sa *sa, enum rpc_method_id id, json_t *params,
    json_t **result, struct problem **prob);

/*
 * Health callback for debug_server_start / rpc_server_new: pings the
 * database over a dedicated connection. arg is the struct sa.
 */
int sa_health(void *arg, char *msg, size_t msglen);

/*
 * Fills out (indexed by registry id) with the RPC handler of every sa.*
 * method and NULL elsewhere; build the server's table with
 * rpc_contract_methods(RPC_SVC_SA, ...). The svc pointer given to
 * rpc_server_new must be the struct sa.
 */
void sa_rpc_handlers(rpc_handler_fn out[RPC_METHOD__MAX]);

/* anvil-sa's part of the service skeleton (sa_daemon.c). */
extern const struct rpc_service_ops sa_service;

#endif /* ANVIL_SA_H */
