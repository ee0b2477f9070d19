/*
 * service.c - the RA object: RPC clients, method table, health, helpers and
 * rate-limit spending (crash recovery: recovery.c).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jose/jose.h"
#include "ra/ra_int.h"

/* The ra.* dispatch table, by registry id (rpc/methods.def). */
static const rpc_handler_fn handlers[RPC_METHOD__MAX] = {
    [RPC_RA_NEW_ACCOUNT] = ra_h_new_account,
    [RPC_RA_UPDATE_ACCOUNT] = ra_h_update_account,
    [RPC_RA_KEY_CHANGE] = ra_h_key_change,
    [RPC_RA_NEW_ORDER] = ra_h_new_order,
    [RPC_RA_NEW_AUTHZ] = ra_h_new_authz,
    [RPC_RA_PERFORM_VALIDATION] = ra_h_perform_validation,
    [RPC_RA_DEACTIVATE_AUTHZ] = ra_h_deactivate_authz,
    [RPC_RA_FINALIZE_ORDER] = ra_h_finalize_order,
    [RPC_RA_REVOKE_BY_ACCOUNT] = ra_h_revoke_by_account,
    [RPC_RA_REVOKE_BY_KEY] = ra_h_revoke_by_key,
    [RPC_RA_ADMIN_REVOKE] = ra_h_admin_revoke,
    [RPC_RA_RENEWAL_INFO] = ra_h_renewal_info,
    [RPC_RA_DIRECTORY_META] = ra_h_directory_meta,
    [RPC_RA_OCSP] = ra_h_ocsp,
    [RPC_RA_GET_ISSUERS] = ra_h_get_issuers,
    [RPC_RA_PROFILES] = ra_h_profiles,
    [RPC_RA_STAR_CANCEL] = ra_h_star_cancel,
    [RPC_RA_DELEGATION_NEW] = ra_h_delegation_new,
    [RPC_RA_DELEGATION_UPDATE] = ra_h_delegation_update,
    [RPC_RA_DELEGATION_CANCEL] = ra_h_delegation_cancel,
};

/* See ra.h / ra_int.h for ownership and return values. */
const rpc_handler_fn *
ra_rpc_handlers(void)
{
	return handlers;
}

/* See ra.h / ra_int.h for ownership and return values. */
int
ra_call(struct rpc_client *c, enum rpc_method_id id, json_t *params,
    const char *rid, json_t **res, struct problem **prob)
{
	const char *method = rpc_method_name(id);
	int rc;

	*res = NULL;
	rc = rpc_call(c, method, params, 0, rid, res, prob);
	json_decref(params);
	if (rc != 0 && *prob == NULL)
		*prob = problem_new(PROB_SERVER_INTERNAL, "%s failed", method);
	return rc;
}

/* See ra.h / ra_int.h for ownership and return values. */
int
ra_param_id(
    const json_t *params, const char *name, int64_t *out, struct problem **prob)
{
	json_t *v = json_object_get(params, name);

	if (!json_is_integer(v) || json_integer_value(v) <= 0) {
		*prob = problem_new(
		    PROB_MALFORMED, "\"%s\" must be a positive integer", name);
		return -1;
	}
	*out = json_integer_value(v);
	return 0;
}

/* See ra.h / ra_int.h for ownership and return values. */
int
ra_param_str(const json_t *params, const char *name, const char **out,
    struct problem **prob)
{
	json_t *v = json_object_get(params, name);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		*prob = problem_new(
		    PROB_MALFORMED, "\"%s\" must be a string", name);
		return -1;
	}
	*out = json_string_value(v);
	return 0;
}

/* See ra.h / ra_int.h for ownership and return values. */
char *
ra_time_fmt(int64_t ms, char *buf, size_t len)
{
	return time_fmt_rfc3339((time_t)(ms / 1000), buf, len);
}

/* See ra.h / ra_int.h for ownership and return values. */
int
ra_time_get(const json_t *obj, const char *name, int64_t *ms)
{
	json_t *v = json_object_get(obj, name);
	time_t t;

	if (!json_is_string(v) ||
	    time_parse_rfc3339(json_string_value(v), &t) != 0)
		return -1;
	*ms = (int64_t)t * 1000;
	return 0;
}

/* See ra.h / ra_int.h for ownership and return values. */
int
ra_get_valid_account(struct ra *ra, const char *rid, int64_t id, json_t **acct,
    struct problem **prob)
{
	json_t *a = NULL;
	const char *st;

	*acct = NULL;
	if (ra_call(ra->sa, RPC_SA_GET_ACCOUNT,
		json_pack("{s:I}", "id", (json_int_t)id), rid, &a, prob) != 0) {
		if ((*prob)->type == PROB_NOT_FOUND) {
			problem_free(*prob);
			*prob = problem_new(PROB_ACCOUNT_DOES_NOT_EXIST,
			    "Account %lld does not exist", (long long)id);
		}
		return -1;
	}
	st = json_string_value(json_object_get(a, "status"));
	if (st == NULL || strcmp(st, "valid") != 0) {
		*prob = problem_new(
		    PROB_UNAUTHORIZED, "Account is %s", st ? st : "not valid");
		json_decref(a);
		return -1;
	}
	*acct = a;
	return 0;
}

/* See ra.h / ra_int.h for ownership and return values. */
EVP_PKEY *
ra_account_pkey(const json_t *acct)
{
	struct jwk *k = NULL;
	struct problem *p = NULL;
	struct jose_policy pol;
	EVP_PKEY *pk = NULL;

	jose_policy_default(&pol);
	pol.allow_es512 = 1;
	pol.allow_eddsa = 1;
	pol.rsa_min_bits = 512;
	pol.rsa_max_bits = 16384;
	if (jwk_parse(json_object_get(acct, "key"), &pol, &k, &p) != 0) {
		problem_free(p);
		return NULL;
	}
	pk = k->pkey;
	if (EVP_PKEY_up_ref(pk) != 1)
		pk = NULL;
	jwk_free(k);
	return pk;
}

/* See ra.h / ra_int.h for ownership and return values. */
void
ra_count(struct ra *ra, const char *name, const char *labels)
{
	if (ra->metrics != NULL)
		metrics_counter_add(ra->metrics, name, "RA events", labels, 1);
}

/* See ra.h / ra_int.h for ownership and return values. */
int
ra_rl_spend(struct ra *ra, const char *rid, enum ra_rl which,
    const char *profile, const char *key, int64_t cost, struct problem **prob)
{
	struct ra_limit tmp;
	const struct ra_limit *l =
	    ra_config_limit(&ra->cfg, which, profile, &tmp);
	json_t *res = NULL;
	struct problem *p = NULL;
	int64_t retry = 0, remaining = 0;
	int rc = 0;
	char lbl[128];

	if (!l->enabled)
		return 0;
	if (ra_call(ra->sa, RPC_SA_RATE_LIMIT_SPEND,
		json_pack("{s:s,s:I,s:I,s:I,s:I}", "key", key, "emission_ms",
		    (json_int_t)(l->period_ms / l->limit), "burst",
		    (json_int_t)l->burst, "cost", (json_int_t)cost, "now_ms",
		    (json_int_t)time_now_ms()),
		rid, &res, &p) != 0) {
		/* Fail open: a storage hiccup must not block issuance. */
		log_msg(LOG_LEVEL_WARN, rid, "rate limit %s: %s (ignored)", key,
		    p->detail ? p->detail : "error");
		problem_free(p);
		return 0;
	}
	retry = json_integer_value(json_object_get(res, "retry_after_ms"));
	remaining = json_integer_value(json_object_get(res, "remaining"));
	if (!json_is_true(json_object_get(res, "allowed")) ||
	    (cost == 0 && remaining < 1)) {
		if (retry <= 0)
			retry = l->period_ms / l->limit;
		*prob = problem_new(PROB_RATE_LIMITED,
		    "Rate limit %s exceeded "
		    "for %s: %lld per %llds; retry after %llds",
		    ra_rl_name(which), key, (long long)l->limit,
		    (long long)(l->period_ms / 1000),
		    (long long)((retry + 999) / 1000));
		(*prob)->retry_after = (int)((retry + 999) / 1000);
		snprintf(lbl, sizeof(lbl), "limit=\"%s\"", ra_rl_name(which));
		ra_count(ra, "anvil_ra_rate_limited_total", lbl);
		rc = -1;
	}
	json_decref(res);
	return rc;
}

/* See ra.h / ra_int.h for ownership and return values. */
void
ra_regen_crl(struct ra *ra, const char *rid, const json_t *cert)
{
	json_t *res = NULL;
	struct problem *p = NULL;
	json_t *issuer = json_object_get(cert, "issuer_id");
	json_t *shard = json_object_get(cert, "shard");

	if (!json_is_string(issuer) || !json_is_integer(shard))
		return;
	if (ra_call(ra->ca, RPC_CA_GENERATE_CRL,
		json_pack("{s:O,s:O}", "issuer_id", issuer, "shard", shard),
		rid, &res, &p) != 0) {
		log_msg(LOG_LEVEL_WARN, rid,
		    "CRL regeneration for shard %lld "
		    "failed (ignored): %s",
		    (long long)json_integer_value(shard),
		    p->detail ? p->detail : "error");
		problem_free(p);
	}
	json_decref(res);
}

/* Health: every dependency answers health.check. */
int
ra_health(void *arg, char *msg, size_t msglen)
{
	struct ra *ra = arg;
	struct rpc_client *deps[3] = {ra->sa, ra->va, ra->ca};
	static const char *const names[3] = {"sa", "va", "ca"};
	json_t *res = NULL;
	struct problem *p = NULL;
	int i;

	for (i = 0; i < 3; i++) {
		if (rpc_call(deps[i], rpc_method_name(RPC_HEALTH_CHECK), NULL,
			2000, NULL, &res, &p) != 0) {
			snprintf(msg, msglen, "%s: %s", names[i],
			    p && p->detail ? p->detail : "unreachable");
			problem_free(p);
			return -1;
		}
		json_decref(res);
		res = NULL;
	}
	return 0;
}

static struct rpc_client *
make_client(const json_t *obj, const char *name, struct metrics *m,
    int64_t *timeout_ms, char *err, size_t errlen)
{
	if (obj == NULL) {
		snprintf(err, errlen, "%s: client config missing", name);
		return NULL;
	}
	return rpc_client_from_json(obj, name, m, timeout_ms, err, errlen);
}

/* See ra.h: takes cfg's contents. */
struct ra *
ra_new(struct ra_config *cfg, struct metrics *metrics, char *err, size_t errlen)
{
	struct ra *ra = xcalloc(1, sizeof(*ra));
	char e[512];

	ra->cfg = *cfg;
	memset(cfg, 0, sizeof(*cfg));
	ra->metrics = metrics;
	xmutex_init(&ra->lock);
	xcond_init(&ra->cond);
	ra->inflight = json_object();
	ra->inflight_authzs = json_object();
	ra->profiles = profiles_load(ra->cfg.profiles_file, e, sizeof(e));
	if (ra->profiles == NULL) {
		snprintf(err, errlen, "profiles: %s", e);
		goto fail;
	}
	if ((ra->sa = make_client(
		 ra->cfg.sa, "sa", metrics, NULL, err, errlen)) == NULL ||
	    (ra->va = make_client(ra->cfg.va, "va", metrics, &ra->va_timeout_ms,
		 err, errlen)) == NULL ||
	    (ra->ca = make_client(
		 ra->cfg.ca, "ca", metrics, NULL, err, errlen)) == NULL)
		goto fail;
	ra->orders = takecache_new(4096, ra->cfg.caa_recheck_after_ms);
	ra->pool = ra_pool_new((int)ra->cfg.validation_workers);
	if (ra->pool == NULL) {
		snprintf(err, errlen, "cannot start worker threads");
		goto fail;
	}
	return ra;
fail:
	ra_free(ra);
	return NULL;
}

/* See ra.h / ra_int.h for ownership and return values. */
void
ra_free(struct ra *ra)
{
	if (ra == NULL)
		return;
	pthread_mutex_lock(&ra->lock);
	ra->stopping = 1;
	pthread_cond_broadcast(&ra->cond);
	pthread_mutex_unlock(&ra->lock);
	if (ra->recovery_started)
		pthread_join(ra->recovery_thread, NULL);
	ra_star_stop(ra);
	ra_pool_free(ra->pool);
	rpc_client_free(ra->sa);
	rpc_client_free(ra->va);
	rpc_client_free(ra->ca);
	profiles_free(ra->profiles);
	ra_config_clear(&ra->cfg);
	json_decref(ra->inflight);
	json_decref(ra->inflight_authzs);
	takecache_free(ra->orders);
	pthread_mutex_destroy(&ra->lock);
	pthread_cond_destroy(&ra->cond);
	free(ra);
}

/* See ra_int.h. */
void
ra_sleep_ms(int64_t ms)
{
	struct timespec ts = {
	    (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0)
		;
}
