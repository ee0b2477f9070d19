/*
 * sa_migrate.c - numbered schema migrations (schema/NNNN_name.sql).
 *
 * Under a PostgreSQL advisory lock (so concurrent migrators serialise),
 * each pending file runs in its own transaction together with its row in
 * schema_migrations. A database whose version is newer than the newest
 * file is refused: an old binary must not write to a newer schema.
 */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "sa/sa_int.h"

/* Arbitrary constant: "anvil sa" migrations. */
#define SA_MIGRATE_LOCK "7361616e76696c"

struct mig_file {
	int version;
	char *name;
	char *path;
};

static int
mig_cmp(const void *a, const void *b)
{
	const struct mig_file *x = a, *y = b;

	return (x->version > y->version) - (x->version < y->version);
}

static void
mig_free(struct mig_file *f, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(f[i].name);
		free(f[i].path);
	}
	free(f);
}

/* Lists NNNN_*.sql in dir sorted by version; 0 or -1 with err. */
static int
mig_scan(const char *dir, struct mig_file **out, size_t *nout, char *err,
    size_t errlen)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct mig_file *f = NULL;
	size_t n = 0, cap = 0, i, len;
	int ret = -1;

	if (d == NULL) {
		snprintf(err, errlen,
		    "schema directory %s cannot be read (set db.schema_dir "
		    "to the directory holding NNNN_*.sql migrations)",
		    dir);
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		const char *s = e->d_name;

		len = strlen(s);
		if (len < 9 || !isdigit((unsigned char)s[0]) ||
		    !isdigit((unsigned char)s[1]) ||
		    !isdigit((unsigned char)s[2]) ||
		    !isdigit((unsigned char)s[3]) || s[4] != '_' ||
		    strcmp(s + len - 4, ".sql") != 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			f = xrealloc(f, cap * sizeof(*f));
		}
		f[n].version = atoi(s);
		f[n].name = xstrdup(s);
		f[n].path = xasprintf("%s/%s", dir, s);
		n++;
	}
	qsort(f, n, sizeof(*f), mig_cmp);
	for (i = 1; i < n; i++) {
		if (f[i].version == f[i - 1].version) {
			snprintf(err, errlen,
			    "two migrations numbered %04d: "
			    "%s and %s",
			    f[i].version, f[i - 1].name, f[i].name);
			goto out;
		}
	}
	if (n == 0) {
		snprintf(err, errlen, "no NNNN_*.sql migrations in %s", dir);
		goto out;
	}
	*out = f;
	*nout = n;
	f = NULL;
	n = 0;
	ret = 0;
out:
	closedir(d);
	mig_free(f, n);
	return ret;
}

/* Runs sql; 0 or -1 with err prefixed by what. */
static int
mig_exec(
    PGconn *pg, const char *sql, const char *what, char *err, size_t errlen)
{
	PGresult *r = PQexec(pg, sql);
	ExecStatusType s = PQresultStatus(r);
	int ret = 0;

	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "%s: %s", what, PQerrorMessage(pg));
		ret = -1;
	}
	PQclear(r);
	return ret;
}

static int
mig_apply(PGconn *pg, const struct mig_file *f, char *err, size_t errlen)
{
	char *sql = NULL, ver[16], ferr[256];
	const char *vals[2];
	size_t len = 0;
	PGresult *r = NULL;
	int ret = -1;

	if (file_read_all(f->path, 16 * 1024 * 1024, &sql, &len, ferr,
		sizeof(ferr)) != 0) {
		snprintf(err, errlen, "%s", ferr);
		return -1;
	}
	if (mig_exec(pg, "BEGIN", f->name, err, errlen) != 0)
		goto out;
	if (mig_exec(pg, sql, f->name, err, errlen) != 0)
		goto rollback;
	snprintf(ver, sizeof(ver), "%d", f->version);
	vals[0] = ver;
	vals[1] = f->name;
	r = PQexecParams(pg,
	    "INSERT INTO schema_migrations (version, name) "
	    "VALUES ($1, $2)",
	    2, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		snprintf(err, errlen, "%s: recording: %s", f->name,
		    PQerrorMessage(pg));
		goto rollback;
	}
	if (mig_exec(pg, "COMMIT", f->name, err, errlen) != 0)
		goto out;
	log_info("applied migration %s", f->name);
	ret = 0;
	goto out;
rollback : {
	char ignored[64];

	(void)mig_exec(pg, "ROLLBACK", "rollback", ignored, sizeof(ignored));
}
out:
	PQclear(r);
	free(sql);
	return ret;
}

int
sa_migrate(const char *dsn, const char *schema_dir, int apply, int *applied,
    int *version, char *err, size_t errlen)
{
	struct mig_file *files = NULL;
	size_t nfiles = 0, i;
	PGconn *pg = NULL;
	PGresult *r = NULL;
	int cur, newest, locked = 0, napplied = 0, ret = -1, exists;

	if (mig_scan(schema_dir ? schema_dir : SA_SCHEMA_DIR_DEFAULT, &files,
		&nfiles, err, errlen) != 0)
		return -1;
	newest = files[nfiles - 1].version;
	pg = PQconnectdb(dsn);
	if (pg == NULL || PQstatus(pg) != CONNECTION_OK) {
		snprintf(err, errlen, "cannot connect to PostgreSQL: %s",
		    pg ? PQerrorMessage(pg) : "out of memory");
		goto out;
	}
	if (mig_exec(pg, "SET client_min_messages = warning", "setup", err,
		errlen) != 0 ||
	    mig_exec(pg,
		"SELECT pg_advisory_lock(x'" SA_MIGRATE_LOCK "'::bigint)",
		"advisory lock", err, errlen) != 0)
		goto out;
	locked = 1;
	/* Only checking (no apply) writes nothing, so that an SA can start on
	 * a hot standby (a read SA, docs/scaling.md). */
	r = PQexec(pg, "SELECT to_regclass('schema_migrations') IS NOT NULL");
	exists = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
	    strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	r = NULL;
	if ((apply || !exists) &&
	    mig_exec(pg,
		"CREATE TABLE IF NOT EXISTS schema_migrations ("
		"version integer PRIMARY KEY, name text NOT NULL, "
		"applied timestamptz NOT NULL DEFAULT now())",
		"schema_migrations", err, errlen) != 0)
		goto out;
	r = PQexec(pg,
	    "SELECT COALESCE(max(version), 0) FROM "
	    "schema_migrations");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "reading schema_migrations: %s",
		    PQerrorMessage(pg));
		goto out;
	}
	cur = atoi(PQgetvalue(r, 0, 0));
	if (cur > newest) {
		snprintf(err, errlen,
		    "database schema version %d is newer "
		    "than this anvil-sa knows (%d, from %s): upgrade anvil-sa "
		    "before using this database",
		    cur, newest,
		    schema_dir ? schema_dir : SA_SCHEMA_DIR_DEFAULT);
		goto out;
	}
	if (!apply && cur < newest) {
		snprintf(err, errlen,
		    "database schema version %d is older "
		    "than %d: run anvil-sa --migrate (or set "
		    "db.auto_migrate)",
		    cur, newest);
		goto out;
	}
	for (i = 0; apply && i < nfiles; i++) {
		if (files[i].version <= cur)
			continue;
		if (mig_apply(pg, &files[i], err, errlen) != 0)
			goto out;
		napplied++;
		cur = files[i].version;
	}
	if (applied != NULL)
		*applied = napplied;
	if (version != NULL)
		*version = cur;
	ret = 0;
out:
	PQclear(r);
	if (locked) {
		char ignored[64];

		(void)mig_exec(pg,
		    "SELECT pg_advisory_unlock(x'" SA_MIGRATE_LOCK "'::bigint)",
		    "unlock", ignored, sizeof(ignored));
	}
	if (pg != NULL)
		PQfinish(pg);
	mig_free(files, nfiles);
	if (ret != 0) {
		/* err holds a message only on failure; trim libpq's newline */
		size_t l = strnlen(err, errlen);

		while (l > 0 && err[l - 1] == '\n')
			err[--l] = '\0';
	}
	return ret;
}
