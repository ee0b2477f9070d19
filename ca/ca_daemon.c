/*
 * ca_daemon.c - anvil-ca's part of the service skeleton (rpc_service_main):
 * its config (docs/config/ca.md), the issuer keys (loaded before any
 * privilege is dropped; the process is not dumpable), the SA client, the
 * CRL timer that regenerates every shard, and --bench.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/ca_int.h"

/* Retry delay of the CRL timer while the SA is not reachable. */
#define CRL_RETRY_MS 5000

struct ca_daemon {
	struct ca_config cfg;
	struct rpc_client_config ccfg;
	struct profiles *profiles;
	struct ca_issuers *issuers; /* until ca_new takes them */
	struct ca *ca;
	struct rpc_client *sa;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t timer;
	int timer_started;
	int stopping;
	/* --bench */
	double bench_seconds;
	const char *bench_issuers, *bench_profiles;
	long bench_threads;
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
ca_d_health(void *arg, char *msg, size_t msglen)
{
	struct ca_daemon *d = arg;
	json_t *res = NULL;
	struct problem *prob = NULL;
	int rc = 0;

	if (rpc_call(d->sa, rpc_method_name(RPC_HEALTH_CHECK), NULL, 2000, NULL,
		&res, &prob) != 0) {
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
wait_or_stop(struct ca_daemon *d, int64_t ms)
{
	struct timespec ts = time_realtime_after(ms);
	int stop;

	pthread_mutex_lock(&d->mu);
	while (!d->stopping) {
		if (pthread_cond_timedwait(&d->cv, &d->mu, &ts) == ETIMEDOUT)
			break;
	}
	stop = d->stopping;
	pthread_mutex_unlock(&d->mu);
	return stop;
}

/* The CRL timer: all shards at start, then every crl_period. */
static void *
crl_timer(void *arg)
{
	struct ca_daemon *d = arg;
	char rid[32];
	int64_t n = 0, delay;
	int failed;

	if (wait_or_stop(d, 200))
		return NULL;
	for (;;) {
		snprintf(rid, sizeof(rid), "crl-timer-%lld", (long long)++n);
		failed = ca_generate_all_crls(d->ca, rid);
		if (failed > 0)
			log_warn("CRL timer: %d shard(s) failed; retrying in "
				 "%ds",
			    failed, CRL_RETRY_MS / 1000);
		delay = failed > 0 ? CRL_RETRY_MS : d->cfg.crl_period_ms;
		if (wait_or_stop(d, delay))
			return NULL;
	}
}

static void *
ca_d_new(void)
{
	struct ca_daemon *d = xcalloc(1, sizeof(*d));

	if (pthread_mutex_init(&d->mu, NULL) != 0) {
		free(d);
		return NULL;
	}
	if (pthread_cond_init(&d->cv, NULL) != 0) {
		pthread_mutex_destroy(&d->mu);
		free(d);
		return NULL;
	}
	d->bench_threads = 4;
	return d;
}

static int
ca_d_flag(void *st, int argc, char **argv, int *i)
{
	struct ca_daemon *d = st;
	const char *a = argv[*i];

	if (*i + 1 >= argc)
		return 0;
	if (strcmp(a, "--bench") == 0)
		d->bench_seconds = atof(argv[++*i]);
	else if (strcmp(a, "--issuers") == 0)
		d->bench_issuers = argv[++*i];
	else if (strcmp(a, "--profiles") == 0)
		d->bench_profiles = argv[++*i];
	else if (strcmp(a, "--threads") == 0)
		d->bench_threads = atol(argv[++*i]);
	else
		return 0;
	return 2; /* --bench needs no config file */
}

/* --bench (standalone): signing speed with an in-memory store. */
static int
ca_d_command(void *st, int configured)
{
	struct ca_daemon *d = st;

	if (configured)
		return -1;
	if (d->bench_seconds <= 0 || d->bench_issuers == NULL ||
	    d->bench_profiles == NULL || d->bench_threads <= 0 ||
	    d->bench_threads > 256) {
		fprintf(stderr,
		    "usage: anvil-ca --bench SECONDS --issuers FILE --profiles "
		    "FILE [--threads N]\n");
		return 2;
	}
	log_init("anvil-ca", LOG_LEVEL_ERROR);
	return ca_bench_main(d->bench_issuers, d->bench_profiles,
	    d->bench_seconds, (int)d->bench_threads);
}

static int
ca_d_configure(void *st, json_t *obj, const char *path,
    struct rpc_service_conf *conf, char *err, size_t errlen)
{
	struct ca_daemon *d = st;
	char tmp[1024];
	size_t k;

	if (ca_config_parse(obj, path, &d->cfg, err, errlen) != 0)
		return -1;
	if (rpc_client_config_parse(d->cfg.sa, &d->ccfg, tmp, sizeof(tmp)) !=
	    0) {
		snprintf(err, errlen, "%s: sa.%s", path, tmp);
		return -1;
	}
	/* The issuer keys are read here, before any privilege is dropped. */
	if ((d->profiles = profiles_load(d->cfg.profiles, err, errlen)) ==
		NULL ||
	    (d->issuers = ca_issuers_load(d->cfg.issuers, err, errlen)) == NULL)
		return -1;
	for (k = 0; k < ca_issuers_count(d->issuers); k++) {
		const struct ca_issuer *is = ca_issuers_get(d->issuers, k);

		log_info("issuer %s \"%s\" (%s)", ca_issuer_id(is),
		    ca_issuer_name(is),
		    ca_key_type_name(ca_issuer_key_type(is)));
	}
	conf->common = &d->cfg.common;
	return 0;
}

static int
ca_d_open(void *st, struct rpc_service_conf *conf, char *err, size_t errlen)
{
	struct ca_daemon *d = st;

	if ((d->sa = rpc_client_new(
		 &d->ccfg, "sa", conf->metrics, err, errlen)) == NULL)
		return -1;
	d->ca = ca_new(&d->cfg.settings, d->issuers, d->profiles,
	    (struct ca_store){sa_store_call, d->sa}, conf->metrics, err,
	    errlen);
	d->issuers = NULL; /* taken by ca_new, even on failure */
	if (d->ca == NULL)
		return -1;
	conf->svc = d->ca;
	conf->handlers = ca_rpc_handlers();
	conf->health = ca_d_health;
	conf->health_arg = d;
	return 0;
}

static int
ca_d_start(void *st, char *err, size_t errlen)
{
	struct ca_daemon *d = st;

	if (pthread_create(&d->timer, NULL, crl_timer, d) != 0) {
		snprintf(err, errlen, "cannot start the CRL timer");
		return -1;
	}
	d->timer_started = 1;
	log_info("%lld CRL shards per issuer, regenerated every %llds",
	    (long long)d->cfg.settings.crl_shards,
	    (long long)(d->cfg.crl_period_ms / 1000));
	return 0;
}

static void
ca_d_stop(void *st)
{
	struct ca_daemon *d = st;

	if (!d->timer_started)
		return;
	pthread_mutex_lock(&d->mu);
	d->stopping = 1;
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->mu);
	pthread_join(d->timer, NULL);
	d->timer_started = 0;
}

static void
ca_d_free(void *st)
{
	struct ca_daemon *d = st;

	ca_d_stop(d);
	ca_free(d->ca);
	ca_issuers_free(d->issuers);
	rpc_client_free(d->sa);
	profiles_free(d->profiles);
	rpc_client_config_clear(&d->ccfg);
	ca_config_clear(&d->cfg);
	pthread_mutex_destroy(&d->mu);
	pthread_cond_destroy(&d->cv);
	free(d);
}

/* See ca.h. */
const struct rpc_service_ops ca_service = {
    .name = "anvil-ca",
    .owner = RPC_SVC_CA,
    .usage = "       anvil-ca --bench SECONDS --issuers FILE --profiles "
	     "FILE [--threads N]\n",
    .keep_secret = 1,
    .state_new = ca_d_new,
    .flag = ca_d_flag,
    .configure = ca_d_configure,
    .command = ca_d_command,
    .open = ca_d_open,
    .start = ca_d_start,
    .stop = ca_d_stop,
    .free = ca_d_free,
};
