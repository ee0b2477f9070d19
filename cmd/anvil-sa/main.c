/* LIBS: sa rpc core */
/*
 * anvil-sa - the storage authority: the only process holding database
 * credentials. Serves the sa.* RPC methods (docs/rpc-methods.md).
 *
 *   anvil-sa --config configs/dev/sa.json            serve
 *   anvil-sa --config configs/dev/sa.json --migrate  apply migrations, exit
 *   anvil-sa --config configs/dev/sa.json --check    validate the config, exit
 *   anvil-sa --config F --after-restore  after restoring a backup: CRL
 *                                        numbers continue upwards; exit
 *
 * Config keys: docs/config/sa.md. ANVIL_SA_DSN overrides db.dsn.
 */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "rpc/rpc.h"
#include "sa/sa.h"

struct sa_cfg {
	char *log_level;
	char *debug_addr;
	int64_t debug_port;
	json_t *rpc;
	char *dsn;
	char *dsn_file;
	int64_t pool;
	int auto_migrate;
	int64_t statement_timeout_ms;
	char *schema_dir;
};

static const struct jspec debug_spec[] = {
    {"addr", JSPEC_STRING, offsetof(struct sa_cfg, debug_addr), 0, NULL, 0},
    {"port", JSPEC_INT, offsetof(struct sa_cfg, debug_port), 1, NULL, 0},
    JSPEC_END,
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
    {"log_level", JSPEC_STRING, offsetof(struct sa_cfg, log_level), 0, NULL, 0},
    {"debug", JSPEC_OBJECT, 0, 1, debug_spec, 0},
    {"rpc", JSPEC_JSON, offsetof(struct sa_cfg, rpc), 1, NULL, 0},
    {"db", JSPEC_OBJECT, 0, 1, db_spec, 0},
    JSPEC_END,
};

static const struct config_env env_table[] = {
    {"ANVIL_SA_DSN", "db.dsn"},
    {NULL, NULL},
};

static void
usage(void)
{
	fprintf(stderr, "usage: anvil-sa --config FILE [--migrate | --check | --after-restore]\n");
}

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

int
main(int argc, char **argv)
{
	struct sa_cfg cfg;
	struct rpc_server_config rcfg;
	struct metrics *metrics = NULL;
	struct debug_server *dbg = NULL;
	struct rpc_server *srv = NULL;
	struct sa *sa = NULL;
	struct sa_options opt;
	rpc_handler_fn handlers[RPC_METHOD__MAX];
	json_t *obj = NULL;
	const char *path = NULL;
	char err[1024], *dsn = NULL;
	enum log_level lvl = LOG_LEVEL_INFO;
	int i, migrate = 0, check = 0, restored = 0, applied = 0, version = 0, rc = 1;

	memset(&cfg, 0, sizeof(cfg));
	memset(&rcfg, 0, sizeof(rcfg));
	for (i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "--config") == 0 ||
			strcmp(argv[i], "-c") == 0) &&
		    i + 1 < argc)
			path = argv[++i];
		else if (strcmp(argv[i], "--migrate") == 0)
			migrate = 1;
		else if (strcmp(argv[i], "--check") == 0)
			check = 1;
		else if (strcmp(argv[i], "--after-restore") == 0)
			restored = 1;
		else {
			usage();
			return 2;
		}
	}
	if (path == NULL) {
		usage();
		return 2;
	}
	log_init("anvil-sa", LOG_LEVEL_INFO);
	signal(SIGPIPE, SIG_IGN);
	cfg.debug_addr = xstrdup("127.0.0.1");
	cfg.statement_timeout_ms = 5000;
	if ((obj = config_load_file(path, err, sizeof(err))) == NULL)
		goto fail;
	config_apply_env(obj, env_table);
	if (config_parse(path, obj, cfg_spec, &cfg, err, sizeof(err)) != 0)
		goto fail;
	if (cfg.log_level != NULL) {
		if (log_level_parse(cfg.log_level, &lvl) != 0) {
			snprintf(err, sizeof(err),
			    "%s: log_level: unknown "
			    "level %s",
			    path, cfg.log_level);
			goto fail;
		}
		log_init("anvil-sa", lvl);
	}
	if (rpc_server_config_parse(cfg.rpc, &rcfg, err, sizeof(err)) != 0) {
		char tmp[1024];

		snprintf(tmp, sizeof(tmp), "%s: %s", path, err);
		memcpy(err, tmp, sizeof(err));
		goto fail;
	}
	if (cfg.pool < 0 || cfg.pool > 1000) {
		snprintf(
		    err, sizeof(err), "%s: db.pool: expected 1 to 1000", path);
		goto fail;
	}
	if (cfg.pool == 0)
		cfg.pool = rcfg.workers > 0 ? rcfg.workers : 8;
	if (json_object_get(cfg.rpc, "workers") == NULL)
		rcfg.workers = cfg.pool;
	if (cfg.statement_timeout_ms < 0) {
		snprintf(err, sizeof(err), "%s: db.statement_timeout: negative",
		    path);
		goto fail;
	}
	if ((dsn = resolve_dsn(&cfg, err, sizeof(err))) == NULL)
		goto fail;
	if (cfg.schema_dir == NULL)
		cfg.schema_dir = xstrdup(SA_SCHEMA_DIR_DEFAULT);
	if (check) {
		/* The config and the DSN (file mode) only: no connection. */
		printf("%s: ok\n", path);
		rc = 0;
		goto out;
	}

	if (restored) {
		struct sa_restore_summary sum;

		if (sa_after_restore(dsn, time_now_ms(), &sum, err,
			sizeof(err)) != 0)
			goto fail;
		printf("restored: %lld accounts, %lld certificates (%lld "
		       "revoked); CRL numbers of %lld shards now start above "
		       "%lld\n",
		    sum.accounts, sum.certificates, sum.revoked, sum.crl_shards,
		    sum.crl_floor);
		log_audit(NULL, "db-after-restore",
		    "accounts=%lld certificates=%lld revoked=%lld "
		    "crl_floor=%lld",
		    sum.accounts, sum.certificates, sum.revoked, sum.crl_floor);
		rc = 0;
		goto out;
	}
	if (sa_migrate(dsn, cfg.schema_dir, migrate || cfg.auto_migrate,
		&applied, &version, err, sizeof(err)) != 0)
		goto fail;
	if (migrate || applied > 0)
		log_info("schema at version %d (%d migration%s applied)",
		    version, applied, applied == 1 ? "" : "s");
	if (migrate) {
		rc = 0;
		goto out;
	}

	metrics = metrics_new();
	memset(&opt, 0, sizeof(opt));
	opt.dsn = dsn;
	opt.pool = (size_t)cfg.pool;
	opt.statement_timeout_ms = cfg.statement_timeout_ms;
	opt.metrics = metrics;
	if ((sa = sa_new(&opt, err, sizeof(err))) == NULL)
		goto fail;
	dbg = debug_server_start(cfg.debug_addr, (int)cfg.debug_port, metrics,
	    sa_health, sa, err, sizeof(err));
	if (dbg == NULL)
		goto fail;
	sa_rpc_handlers(handlers);
	srv = rpc_server_new_service(&rcfg, RPC_SVC_SA, handlers, sa, metrics,
	    sa_health, sa, err, sizeof(err));
	if (srv == NULL)
		goto fail;
	log_info("serving sa.* on %s with %lld database connections "
		 "(schema version %d)",
	    rcfg.listen, (long long)cfg.pool, version);
	rpc_server_run(srv);
	log_info("stopped");
	rc = 0;
	goto out;
fail:
	log_error("%s", err);
	rc = 1;
out:
	rpc_server_free(srv);
	debug_server_stop(dbg);
	sa_free(sa);
	metrics_free(metrics);
	rpc_server_config_clear(&rcfg);
	jspec_clear(cfg_spec, &cfg);
	free(cfg.schema_dir);
	json_decref(obj);
	if (dsn != NULL)
		memset(dsn, 0, strlen(dsn));
	free(dsn);
	return rc;
}
