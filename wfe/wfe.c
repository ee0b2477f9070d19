/*
 * wfe.c - lifecycle of the front end and the RPC helper.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "rpc/rpc.h"
#include "wfe/wfe_int.h"

static struct rpc_client *
client_new(const json_t *obj, const char *name, struct metrics *m, char *err,
    size_t errlen)
{
	return rpc_client_from_json(obj, name, m, NULL, err, errlen);
}

struct wfe *
wfe_new(const struct wfe_config *cfg, struct metrics *metrics, char *err,
    size_t errlen)
{
	struct wfe *w = xcalloc(1, sizeof(*w));
	char *key = NULL;
	size_t keylen = 0, len = 0;
	char e[256];
	int ok = 0;

	w->cfg = cfg;
	w->metrics = metrics;
	jose_policy_default(&w->policy);
	w->policy.allow_es512 = cfg->jose_allow_es512;
	w->policy.allow_eddsa = cfg->jose_allow_eddsa;
	w->policy.rsa_min_bits = (int)cfg->jose_rsa_min_bits;
	w->policy.rsa_max_bits = (int)cfg->jose_rsa_max_bits;
	if (pthread_mutex_init(&w->lock, NULL) != 0) {
		snprintf(err, errlen, "mutex init failed");
		free(w);
		return NULL;
	}
	if (cfg->faults != NULL)
		w->faults = json_deep_copy(cfg->faults);
	if (cfg->tls_cert != NULL) {
		if (file_read_all(cfg->tls_cert, 1 << 20, &w->tls_cert_pem,
			&len, e, sizeof(e)) != 0) {
			snprintf(err, errlen, "tls.cert: %s", e);
			goto out;
		}
		if (file_check_secret_mode(cfg->tls_key, e, sizeof(e)) != 0 ||
		    file_read_all(cfg->tls_key, 1 << 20, &w->tls_key_pem, &len,
			e, sizeof(e)) != 0) {
			snprintf(err, errlen, "tls.key: %s", e);
			goto out;
		}
	}
	if (cfg->nonce_key_file != NULL) {
		if (file_check_secret_mode(cfg->nonce_key_file, e, sizeof(e)) !=
			0 ||
		    file_read_all(cfg->nonce_key_file, 4096, &key, &keylen, e,
			sizeof(e)) != 0) {
			snprintf(err, errlen, "nonce.key_file: %s", e);
			goto out;
		}
		while (keylen > 0 &&
		    (key[keylen - 1] == '\n' || key[keylen - 1] == '\r'))
			keylen--;
		if (keylen < 16) {
			snprintf(err, errlen,
			    "nonce.key_file: at least 16 bytes of secret");
			goto out;
		}
	}
	w->accounts = wfe_acct_cache_new(
	    (size_t)cfg->account_cache_size, cfg->account_cache_ttl_ms);
	w->objects = takecache_new(
	    (size_t)cfg->object_cache_size, cfg->object_cache_ttl_ms);
	w->nonces = wfe_nonce_new(cfg->nonce_prefix, (uint8_t *)key, keylen,
	    (uint64_t)cfg->nonce_max_outstanding, cfg->nonce_lifetime_ms);
	if (w->nonces == NULL) {
		snprintf(err, errlen, "nonce: bad settings");
		goto out;
	}
	if ((w->ra = client_new(cfg->ra, "ra", metrics, err, errlen)) == NULL ||
	    (w->sa = client_new(cfg->sa, "sa", metrics, err, errlen)) == NULL)
		goto out;
	if (cfg->sa_read != NULL && (w->sa_read = client_new(cfg->sa_read,
					 "sa_read", metrics, err, errlen)) == NULL)
		goto out;
	ok = 1;
out:
	if (key != NULL) {
		OPENSSL_cleanse(key, keylen);
		free(key);
	}
	if (!ok) {
		wfe_free(w);
		return NULL;
	}
	return w;
}

void
wfe_free(struct wfe *w)
{
	if (w == NULL)
		return;
	wfe_stop(w);
	rpc_client_free(w->ra);
	rpc_client_free(w->sa);
	rpc_client_free(w->sa_read);
	wfe_nonce_free(w->nonces);
	wfe_acct_cache_free(w->accounts);
	takecache_free(w->objects);
	free(w->tls_cert_pem);
	if (w->tls_key_pem != NULL) {
		OPENSSL_cleanse(w->tls_key_pem, strlen(w->tls_key_pem));
		free(w->tls_key_pem);
	}
	json_decref(w->profiles);
	json_decref(w->ra_meta);
	json_decref(w->issuers);
	json_decref(w->faults);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

/*
 * /healthz: the listener runs and the services every ACME request needs
 * answer health.check (the SA's includes PostgreSQL). The CA is not
 * required: without it only issuance and a few GETs fail.
 */
static int
health(void *arg, char *msg, size_t msglen)
{
	struct wfe *w = arg;
	struct {
		const char *name;
		struct rpc_client *c;
	} deps[] = {{"sa", w->sa}, {"ra", w->ra}};
	json_t *res = NULL;
	struct problem *p = NULL;
	size_t i;

	if (w->listeners[WFE_L_ACME].mhd == NULL) {
		snprintf(msg, msglen, "listener not running");
		return -1;
	}
	for (i = 0; i < sizeof(deps) / sizeof(deps[0]); i++) {
		if (rpc_call(deps[i].c, rpc_method_name(RPC_HEALTH_CHECK), NULL,
			2000, NULL, &res, &p) != 0) {
			snprintf(msg, msglen, "%s unhealthy: %s", deps[i].name,
			    p && p->detail ? p->detail : "no answer");
			problem_free(p);
			return -1;
		}
		json_decref(res);
		res = NULL;
	}
	return 0;
}

/* Each connection is a descriptor: lift the soft limit towards the hard one
 * so that max_connections can be reached. */
static void
raise_fd_limit(int64_t want)
{
	struct rlimit rl;
	rlim_t need = (rlim_t)want + 256;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need
	    ? need
	    : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		log_warn("cannot raise the open files limit");
	if ((int64_t)rl.rlim_cur < want + 256)
		log_warn("open files limit %llu is below max_connections %lld",
		    (unsigned long long)rl.rlim_cur, (long long)want);
}

int
wfe_main(const struct wfe_config *cfg)
{
	struct metrics *m = NULL;
	struct debug_server *dbg = NULL;
	struct wfe *w = NULL;
	sigset_t set;
	char err[512];
	int sig = 0, rc = 1;

	/* Block the stop signals in every thread we create; sigwait below. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	raise_fd_limit(cfg->max_connections);
	m = metrics_new();
	w = wfe_new(cfg, m, err, sizeof(err));
	if (w == NULL) {
		log_error("%s", err);
		goto out;
	}
	if (wfe_start(w, err, sizeof(err)) != 0) {
		log_error("%s", err);
		goto out;
	}
	if (cfg->common.debug_port > 0) {
		dbg = debug_server_start(cfg->common.debug_addr,
		    (int)cfg->common.debug_port, m, health, w, err, sizeof(err));
		if (dbg == NULL) {
			log_error("debug: %s", err);
			goto out;
		}
	}
	log_info(
	    "anvil-wfe %s ready, base_url %s", ANVIL_VERSION, cfg->base_url);
	if (sigwait(&set, &sig) != 0)
		goto out;
	log_info("signal %d: draining", sig);
	rc = 0;
out:
	debug_server_stop(dbg);
	wfe_free(w);
	metrics_free(m);
	return rc;
}
