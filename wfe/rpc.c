/*
 * rpc.c - how handlers call the other services: with the request id, the
 * problem replied or handed back, and answers that change rarely (profiles,
 * issuers, RA directory meta) cached for a minute.
 */
#include <stdlib.h>
#include <string.h>

#include "rpc/rpc.h"
#include "wfe/wfe_int.h"

#define CACHE_OK_MS (60 * 1000)
#define CACHE_FAIL_MS (5 * 1000)

/*
 * The SA reads a replica may serve (docs/scaling.md, "Read replicas"): a
 * row the client has just been told about may be missing there, so
 * notFound (and unavailable) falls back to the primary; a stale status is
 * what a client polling again sees anyway. sa.get_account is not one: every
 * JWS is checked against it, and a deactivated account or a rolled-over key
 * must take effect at once (RFC 8555 §7.3.6, §7.3.5).
 */
static int
replica_read(enum rpc_method_id id)
{
	return id == RPC_SA_GET_ORDER || id == RPC_SA_GET_AUTHZ ||
	    id == RPC_SA_GET_CERTIFICATE || id == RPC_SA_GET_ORDERS_BY_ACCOUNT ||
	    id == RPC_SA_GET_CRL;
}

static void
replica_metric(struct wfe *w, const char *result)
{
	char labels[64];

	if (w->metrics == NULL)
		return;
	snprintf(labels, sizeof(labels), "result=\"%s\"", result);
	metrics_counter_add(w->metrics, "anvil_wfe_replica_reads_total",
	    "SA reads sent to the read replica SA (sa_read), by outcome: "
	    "served there, or fell back to the primary",
	    labels, 1);
}

/* See wfe_int.h. */
int
wfe_rpc_raw(struct wfe_req *r, struct rpc_client *c, enum rpc_method_id id,
    json_t *params, json_t **result, struct problem **prob)
{
	const char *method = rpc_method_name(id);

	*result = NULL;
	*prob = NULL;
	if (c == r->w->sa && r->w->sa_read != NULL && replica_read(id)) {
		if (rpc_call(r->w->sa_read, method, params, 0, r->rid, result,
			prob) == 0) {
			replica_metric(r->w, "replica");
			return 0;
		}
		if (*prob != NULL && (*prob)->type != PROB_NOT_FOUND &&
		    (*prob)->type != PROB_UNAVAILABLE)
			return -1;
		replica_metric(r->w, "primary");
		problem_free(*prob);
		*prob = NULL;
	}
	if (rpc_call(c, method, params, 0, r->rid, result, prob) == 0)
		return 0;
	if (*prob == NULL)
		*prob = problem_new(PROB_UNAVAILABLE, "%s failed", method);
	return -1;
}

/* See wfe_int.h. */
int
wfe_rpc(struct wfe_req *r, struct rpc_client *c, enum rpc_method_id id,
    json_t *params, json_t **result)
{
	struct problem *p = NULL;

	if (wfe_rpc_raw(r, c, id, params, result, &p) == 0)
		return 0;
	wfe_reply_problem(r, p);
	return -1;
}

/*
 * An RA answer cached for a minute (the CA's profiles and issuers, which the
 * WFE reaches only through the RA, and the RA's directory meta): new
 * reference, or NULL when the service could not be asked (a
 * failure is remembered briefly so that a down service does not slow every
 * directory request).
 */
json_t *
wfe_cached_call(struct wfe_req *r, struct rpc_client *c, json_t **slot,
    int64_t *at, enum rpc_method_id method)
{
	struct wfe *w = r->w;
	int64_t now = time_mono_ms();
	json_t *res = NULL;
	struct problem *p = NULL;
	int fresh;

	pthread_mutex_lock(&w->lock);
	fresh = *at != 0 && now - *at < (*slot ? CACHE_OK_MS : CACHE_FAIL_MS);
	if (fresh) {
		res = json_incref(*slot);
		pthread_mutex_unlock(&w->lock);
		return res;
	}
	pthread_mutex_unlock(&w->lock);
	if (wfe_rpc_raw(r, c, method, NULL, &res, &p) != 0) {
		log_msg(LOG_LEVEL_WARN, r->rid, "%s: %s", rpc_method_name(method),
		    p->detail ? p->detail : prob_type_name(p->type));
		problem_free(p);
		res = NULL;
	}
	pthread_mutex_lock(&w->lock);
	json_decref(*slot);
	*slot = json_incref(res);
	*at = now;
	pthread_mutex_unlock(&w->lock);
	return res;
}
