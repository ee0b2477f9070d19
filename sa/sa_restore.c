/*
 * sa_restore.c - what `anvil-sa --after-restore` does to a database just
 * restored from a backup (scripts/anvil-backup): CRL numbers must never go
 * backwards (RFC 5280 section 5.2.3: "CRL numbers ... monotonically
 * increasing"), but the dump may predate CRLs that were published after
 * it. Every shard's counter is raised to at least the current time in
 * milliseconds: a counter that grows by one per CRL cannot have reached
 * that, and a later restore raises it again.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sa/sa.h"

/* One-row, one-column integer query. */
static int
count_of(PGconn *pg, const char *sql, long long *out, char *err, size_t errlen)
{
	PGresult *r = PQexec(pg, sql);
	int ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;

	if (ok)
		*out = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	else
		snprintf(err, errlen, "%s: %s", sql, PQerrorMessage(pg));
	PQclear(r);
	return ok ? 0 : -1;
}

/* See sa.h. */
int
sa_after_restore(const char *dsn, int64_t floor, struct sa_restore_summary *s,
    char *err, size_t errlen)
{
	char fl[32];
	const char *params[1] = {fl};
	PGconn *pg = PQconnectdb(dsn);
	PGresult *r = NULL;
	int ret = -1;

	memset(s, 0, sizeof(*s));
	if (pg == NULL || PQstatus(pg) != CONNECTION_OK) {
		snprintf(err, errlen, "cannot connect to PostgreSQL: %s",
		    pg ? PQerrorMessage(pg) : "out of memory");
		goto out;
	}
	snprintf(fl, sizeof(fl), "%lld", (long long)floor);
	r = PQexecParams(pg,
	    "UPDATE crl_shards SET last_number = GREATEST(last_number, "
	    "$1::bigint)",
	    1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		snprintf(
		    err, errlen, "raising CRL numbers: %s", PQerrorMessage(pg));
		goto out;
	}
	s->crl_shards = strtoll(PQcmdTuples(r), NULL, 10);
	if (count_of(pg, "SELECT count(*) FROM accounts", &s->accounts, err,
		errlen) != 0 ||
	    count_of(pg, "SELECT count(*) FROM certificates", &s->certificates,
		err, errlen) != 0 ||
	    count_of(pg,
		"SELECT count(*) FROM certificate_status WHERE status = "
		"'revoked'",
		&s->revoked, err, errlen) != 0 ||
	    count_of(pg, "SELECT COALESCE(min(last_number), 0) FROM crl_shards",
		&s->crl_floor, err, errlen) != 0)
		goto out;
	ret = 0;
out:
	PQclear(r);
	PQfinish(pg);
	return ret;
}
