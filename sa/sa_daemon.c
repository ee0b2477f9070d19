/*
 * sa_daemon.c - anvil-sa's part of the service skeleton (rpc_service_main):
 * its config (docs/config/sa.md), --migrate and --after-restore, the
 * database pool it serves with.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "sa/sa_int.h"

struct sa_cfg {
	int migrate;
	int restored;
	char *path;
	char *dsn_resolved;
	struct sa *sa;
	int version;
	rpc_handler_fn handlers[RPC_METHOD__MAX];
	struct config_common common; /* log_level, debug, rpc */
	char *dsn;
	char *dsn_file;
	int64_t pool;
	int auto_migrate;
	int64_t statement_timeout_ms;
	char *schema_dir;
};

static const struct jspec db_spec[] = {
    {"dsn", JSPEC_STRING, offsetof(struct sa_cfg, dsn), 0, NULL, 0},
    {"dsn_file", JSPEC_STRING, offsetof(struct sa_cfg, dsn_file), 0, NULL, 0},
    {"pool", JSPEC_INT, offsetof(struct sa_cfg, pool), 0, NULL, 0},
    {"auto_migrate", JSPEC_BOOL, offsetof(struct sa_cfg, auto_migrate), 0, NULL,
	0},
    {"statement_timeout", JSPEC_DURATION,
	offsetof(struct sa_cfg, statement_timeout_ms), 0, NULL, 0},
    {"schema_dir", JSPEC_STRING, offsetof(struct sa_cfg, schema_dir), 0, NULL,
	0},
    JSPEC_END,
};

static const struct jspec cfg_spec[] = {
    CONFIG_COMMON_RPC_SPEC(struct sa_cfg, common),
    {"db", JSPEC_OBJECT, 0, 1, db_spec, 0},
    JSPEC_END,
};

static const struct config_env env_table[] = {
    {"ANVIL_SA_DSN", "db.dsn"},
    {NULL, NULL},
};

/* Resolves the DSN: db.dsn (after ANVIL_SA_DSN), else db.dsn_file. */
static char *
resolve_dsn(const struct sa_cfg *cfg, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t len = 0;

	if (cfg->dsn != NULL && cfg->dsn[0] != '\0')
		return xstrdup(cfg->dsn);
	if (cfg->dsn_file == NULL) {
		snprintf(err, errlen,
		    "no database configured: set db.dsn, "
		    "db.dsn_file or the ANVIL_SA_DSN environment variable");
		return NULL;
	}
	if (file_check_secret_mode(cfg->dsn_file, err, errlen) != 0)
		return NULL;
	if (file_read_all(cfg->dsn_file, 64 * 1024, &buf, &len, err, errlen) !=
	    0)
		return NULL;
	while (len > 0 &&
	    (buf[len - 1] == '\n' || buf[len - 1] == '\r' ||
		buf[len - 1] == ' '))
		buf[--len] = '\0';
	if (len == 0) {
		snprintf(err, errlen, "db.dsn_file %s is empty", cfg->dsn_file);
		free(buf);
		return NULL;
	}
	return buf;
}

static void *
sa_d_new(void)
{
	struct sa_cfg *cfg = xcalloc(1, sizeof(*cfg));

	cfg->common.debug_port = 8101;
	cfg->statement_timeout_ms = 5000;
	return cfg;
}

static int
sa_d_flag(void *st, int argc, char **argv, int *i)
{
	struct sa_cfg *cfg = st;

	(void)argc;
	if (strcmp(argv[*i], "--migrate") == 0)
		cfg->migrate = 1;
	else if (strcmp(argv[*i], "--after-restore") == 0)
		cfg->restored = 1;
	else
		return 0;
	return 1;
}

static int
sa_d_configure(void *st, json_t *obj, const char *path,
    struct rpc_service_conf *conf, char *err, size_t errlen)
{
	struct sa_cfg *cfg = st;

	config_apply_env(obj, env_table);
	if (config_parse(path, obj, cfg_spec, cfg, err, errlen) != 0 ||
	    config_common_check(&cfg->common, path, err, errlen) != 0)
		return -1;
	if (cfg->pool < 0 || cfg->pool > 1000) {
		snprintf(err, errlen, "%s: db.pool: expected 1 to 1000", path);
		return -1;
	}
	if (cfg->pool == 0) {
		json_t *w = json_object_get(cfg->common.rpc, "workers");

		cfg->pool = json_is_integer(w) ? json_integer_value(w) : 8;
	}
	/* The pool and the RPC workers go together: one connection each. */
	if (json_object_get(cfg->common.rpc, "workers") == NULL)
		json_object_set_new(
		    cfg->common.rpc, "workers", json_integer(cfg->pool));
	if (cfg->statement_timeout_ms < 0) {
		snprintf(
		    err, errlen, "%s: db.statement_timeout: negative", path);
		return -1;
	}
	if ((cfg->dsn_resolved = resolve_dsn(cfg, err, errlen)) == NULL)
		return -1;
	if (cfg->schema_dir == NULL)
		cfg->schema_dir = xstrdup(SA_SCHEMA_DIR_DEFAULT);
	cfg->path = xstrdup(path);
	conf->common = &cfg->common;
	return 0;
}

/* --migrate, --after-restore; else migrate (auto_migrate) and serve. */
static int
sa_d_command(void *st, int configured)
{
	struct sa_cfg *cfg = st;
	struct sa_restore_summary sum;
	char err[1024];
	int applied = 0;

	if (!configured)
		return 2;
	if (cfg->restored) {
		if (sa_after_restore(cfg->dsn_resolved, time_now_ms(), &sum,
			err, sizeof(err)) != 0) {
			log_error("%s", err);
			return 1;
		}
		printf("restored: %lld accounts, %lld certificates (%lld "
		       "revoked); CRL numbers of %lld shards now start above "
		       "%lld\n",
		    sum.accounts, sum.certificates, sum.revoked, sum.crl_shards,
		    sum.crl_floor);
		log_audit(NULL, "db-after-restore",
		    "accounts=%lld certificates=%lld revoked=%lld "
		    "crl_floor=%lld",
		    sum.accounts, sum.certificates, sum.revoked, sum.crl_floor);
		return 0;
	}
	if (sa_migrate(cfg->dsn_resolved, cfg->schema_dir,
		cfg->migrate || cfg->auto_migrate, &applied, &cfg->version, err,
		sizeof(err)) != 0) {
		log_error("%s", err);
		return 1;
	}
	if (cfg->migrate || applied > 0)
		log_info("schema at version %d (%d migration%s applied)",
		    cfg->version, applied, applied == 1 ? "" : "s");
	return cfg->migrate ? 0 : -1;
}

static int
sa_d_open(void *st, struct rpc_service_conf *conf, char *err, size_t errlen)
{
	struct sa_cfg *cfg = st;
	struct sa_options opt;

	memset(&opt, 0, sizeof(opt));
	opt.dsn = cfg->dsn_resolved;
	opt.pool = (size_t)cfg->pool;
	opt.statement_timeout_ms = cfg->statement_timeout_ms;
	opt.metrics = conf->metrics;
	if ((cfg->sa = sa_new(&opt, err, errlen)) == NULL)
		return -1;
	sa_rpc_handlers(cfg->handlers);
	conf->svc = cfg->sa;
	conf->handlers = cfg->handlers;
	conf->health = sa_health;
	conf->health_arg = cfg->sa;
	log_info("%lld database connections (schema version %d)",
	    (long long)cfg->pool, cfg->version);
	return 0;
}

static void
sa_d_free(void *st)
{
	struct sa_cfg *cfg = st;

	sa_free(cfg->sa);
	jspec_clear(cfg_spec, cfg);
	free(cfg->path);
	if (cfg->dsn_resolved != NULL)
		OPENSSL_cleanse(cfg->dsn_resolved, strlen(cfg->dsn_resolved));
	free(cfg->dsn_resolved);
	free(cfg);
}

/* See sa.h. */
const struct rpc_service_ops sa_service = {
    .name = "anvil-sa",
    .owner = RPC_SVC_SA,
    .usage = "       anvil-sa -c FILE --migrate        apply migrations, exit\n"
	     "       anvil-sa -c FILE --after-restore  after restoring a "
	     "backup: CRL numbers continue upwards\n",
    .keep_secret = 1,
    .state_new = sa_d_new,
    .flag = sa_d_flag,
    .configure = sa_d_configure,
    .command = sa_d_command,
    .open = sa_d_open,
    .free = sa_d_free,
};
