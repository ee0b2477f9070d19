/* LIBS: ca rpc core */
/*
 * anvil-ca - the certificate authority: the only process holding issuer
 * keys. Serves the ca.* RPC methods (docs/rpc-methods.md) and regenerates
 * every CRL shard on a timer.
 *
 *   anvil-ca --config configs/dev/ca.json
 *   anvil-ca --bench SECONDS --issuers FILE --profiles FILE [--threads N]
 *       signing speed with an in-memory store (scripts/bench-ca.sh)
 *
 * Config keys: docs/config/ca.md.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/ca.h"
#include "cmd/anvil-ca/bench.h"
#include "core/core.h"
#include "rpc/rpc.h"

/* Retry delay of the CRL timer while the SA is not reachable. */
#define CRL_RETRY_MS 5000

struct ca_proc {
	struct ca *ca;
	struct rpc_client *sa;
	int64_t crl_period_ms;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stopping;
};

/* ca_store_call_fn over the SA RPC client. */
static int
sa_store_call(void *arg, enum rpc_method_id id, json_t *params,
    const char *request_id, json_t **result, struct problem **prob)
{
	return rpc_call(
	    arg, rpc_method_name(id), params, 0, request_id, result, prob);
}

/* Health: the SA answers health.check. */
static int
health(void *arg, char *msg, size_t msglen)
{
	struct ca_proc *p = arg;
	json_t *res = NULL;
	struct problem *prob = NULL;
	int rc = 0;

	if (rpc_call(p->sa, rpc_method_name(RPC_HEALTH_CHECK), NULL, 2000,
		NULL, &res, &prob) != 0) {
		snprintf(msg, msglen, "sa: %s",
		    prob && prob->detail ? prob->detail : "unreachable");
		rc = -1;
	}
	json_decref(res);
	problem_free(prob);
	return rc;
}

/* Sleeps up to ms unless stopping; returns 1 when stopping. */
static int
wait_or_stop(struct ca_proc *p, int64_t ms)
{
	struct timespec ts;
	int stop;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&p->mu);
	while (!p->stopping) {
		if (pthread_cond_timedwait(&p->cv, &p->mu, &ts) == ETIMEDOUT)
			break;
	}
	stop = p->stopping;
	pthread_mutex_unlock(&p->mu);
	return stop;
}

/* The CRL timer: all shards at start, then every crl_period. */
static void *
crl_timer(void *arg)
{
	struct ca_proc *p = arg;
	char rid[32];
	int64_t n = 0, delay;
	int failed;

	if (wait_or_stop(p, 200))
		return NULL;
	for (;;) {
		snprintf(rid, sizeof(rid), "crl-timer-%lld", (long long)++n);
		failed = ca_generate_all_crls(p->ca, rid);
		if (failed > 0)
			log_warn("CRL timer: %d shard(s) failed; retrying in "
				 "%ds",
			    failed, CRL_RETRY_MS / 1000);
		delay = failed > 0 ? CRL_RETRY_MS : p->crl_period_ms;
		if (wait_or_stop(p, delay))
			return NULL;
	}
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: anvil-ca --config FILE [--check]\n"
	    "       anvil-ca --bench SECONDS --issuers FILE --profiles FILE "
	    "[--threads N]\n");
}

int
main(int argc, char **argv)
{
	struct ca_config cfg;
	struct rpc_server_config rcfg;
	struct rpc_client_config ccfg;
	struct ca_proc proc;
	struct metrics *metrics = NULL;
	struct debug_server *dbg = NULL;
	struct rpc_server *srv = NULL;
	struct profiles *profiles = NULL;
	struct ca_issuers *issuers = NULL;
	const char *path = NULL, *bench_issuers = NULL, *bench_profiles = NULL;
	double bench_seconds = 0;
	long bench_threads = 4;
	char err[1024], tmp[1100];
	enum log_level lvl;
	pthread_t timer;
	size_t k;
	int i, check = 0, timer_started = 0, rc = 1;

	memset(&cfg, 0, sizeof(cfg));
	memset(&rcfg, 0, sizeof(rcfg));
	memset(&ccfg, 0, sizeof(ccfg));
	memset(&proc, 0, sizeof(proc));
	pthread_mutex_init(&proc.mu, NULL);
	pthread_cond_init(&proc.cv, NULL);
	for (i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "--config") == 0 ||
			strcmp(argv[i], "-c") == 0) &&
		    i + 1 < argc)
			path = argv[++i];
		else if (strcmp(argv[i], "--check") == 0)
			check = 1;
		else if (strcmp(argv[i], "--bench") == 0 && i + 1 < argc)
			bench_seconds = atof(argv[++i]);
		else if (strcmp(argv[i], "--issuers") == 0 && i + 1 < argc)
			bench_issuers = argv[++i];
		else if (strcmp(argv[i], "--profiles") == 0 && i + 1 < argc)
			bench_profiles = argv[++i];
		else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			bench_threads = atol(argv[++i]);
		else {
			usage();
			return 2;
		}
	}
	if (bench_seconds > 0 && bench_issuers != NULL &&
	    bench_profiles != NULL && bench_threads > 0 &&
	    bench_threads <= 256) {
		log_init("anvil-ca", LOG_LEVEL_ERROR);
		return ca_bench_main(bench_issuers, bench_profiles,
		    bench_seconds, (int)bench_threads);
	}
	if (path == NULL) {
		usage();
		return 2;
	}
	log_init("anvil-ca", LOG_LEVEL_INFO);
	signal(SIGPIPE, SIG_IGN);
	if (ca_config_load(path, &cfg, err, sizeof(err)) != 0)
		goto fail;
	if (log_level_parse(cfg.log_level, &lvl) != 0) {
		snprintf(err, sizeof(err), "%s: log_level: unknown level %s",
		    path, cfg.log_level);
		goto fail;
	}
	log_init("anvil-ca", lvl);
	if (rpc_server_config_parse(cfg.rpc, &rcfg, err, sizeof(err)) != 0 ||
	    rpc_client_config_parse(cfg.sa, &ccfg, err, sizeof(err)) != 0) {
		snprintf(tmp, sizeof(tmp), "%s: %s", path, err);
		snprintf(err, sizeof(err), "%s", tmp);
		goto fail;
	}
	if ((profiles = profiles_load(cfg.profiles, err, sizeof(err))) == NULL)
		goto fail;
	if ((issuers = ca_issuers_load(cfg.issuers, err, sizeof(err))) == NULL)
		goto fail;
	for (k = 0; k < ca_issuers_count(issuers); k++) {
		const struct ca_issuer *is = ca_issuers_get(issuers, k);
		log_info("issuer %s \"%s\" (%s)", ca_issuer_id(is),
		    ca_issuer_name(is),
		    ca_key_type_name(ca_issuer_key_type(is)));
	}
	if (check) {
		/* Config, profiles and every issuer key loaded: ok. */
		printf("%s: ok\n", path);
		rc = 0;
		goto out;
	}
	metrics = metrics_new();
	if ((proc.sa = rpc_client_new(
		 &ccfg, "sa", metrics, err, sizeof(err))) == NULL)
		goto fail;
	proc.crl_period_ms = cfg.crl_period_ms;
	proc.ca = ca_new(&cfg.settings, issuers, profiles,
	    (struct ca_store){sa_store_call, proc.sa}, metrics, err,
	    sizeof(err));
	issuers = NULL; /* taken by ca_new, even on failure */
	if (proc.ca == NULL) {
		snprintf(tmp, sizeof(tmp), "%s: %s", path, err);
		snprintf(err, sizeof(err), "%s", tmp);
		goto fail;
	}
	dbg = debug_server_start(cfg.debug_addr, (int)cfg.debug_port, metrics,
	    health, &proc, err, sizeof(err));
	if (dbg == NULL)
		goto fail;
	srv = rpc_server_new_service(&rcfg, RPC_SVC_CA, ca_rpc_handlers(),
	    proc.ca, metrics, health, &proc, err, sizeof(err));
	if (srv == NULL)
		goto fail;
	if (pthread_create(&timer, NULL, crl_timer, &proc) != 0) {
		snprintf(err, sizeof(err), "cannot start the CRL timer");
		goto fail;
	}
	timer_started = 1;
	log_info("serving ca.* on %s; %lld CRL shards per issuer, "
		 "regenerated every %llds",
	    rcfg.listen, (long long)cfg.settings.crl_shards,
	    (long long)(cfg.crl_period_ms / 1000));
	rpc_server_run(srv);
	log_info("stopped");
	rc = 0;
	goto out;
fail:
	log_error("%s", err);
	rc = 1;
out:
	if (timer_started) {
		pthread_mutex_lock(&proc.mu);
		proc.stopping = 1;
		pthread_cond_signal(&proc.cv);
		pthread_mutex_unlock(&proc.mu);
		pthread_join(timer, NULL);
	}
	rpc_server_free(srv);
	debug_server_stop(dbg);
	ca_free(proc.ca);
	ca_issuers_free(issuers);
	rpc_client_free(proc.sa);
	profiles_free(profiles);
	metrics_free(metrics);
	rpc_server_config_clear(&rcfg);
	rpc_client_config_clear(&ccfg);
	ca_config_clear(&cfg);
	pthread_mutex_destroy(&proc.mu);
	pthread_cond_destroy(&proc.cv);
	return rc;
}
