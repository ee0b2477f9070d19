/*
 * rpc.c - how handlers call the other services: with the request id, the
 * problem replied or handed back, the SA reads a read replica may serve
 * (wfe_sa_read), and answers that change rarely (profiles, issuers, RA
 * directory meta) cached for a minute.
 */
#include <stdlib.h>
#include <string.h>

#include "rpc/rpc.h"
#include "wfe/wfe_int.h"

#define CACHE_OK_MS (60 * 1000)
#define CACHE_FAIL_MS (5 * 1000)

static void
replica_metric(struct wfe *w, const char *result)
{
	char labels[64];

	if (w->metrics == NULL)
		return;
	snprintf(labels, sizeof(labels), "result=\"%s\"", result);
	metrics_counter_add(w->metrics, "anvil_wfe_replica_reads_total",
	    "SA reads sent to the read replica SA (sa_read), by outcome: "
	    "served there (replica), missing or unavailable there (primary), "
	    "or in a state a write can still change (unsettled, asked again "
	    "on the primary)",
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
	if (rpc_call(c, method, params, 0, r->rid, result, prob) == 0)
		return 0;
	if (*prob == NULL)
		*prob = problem_new(PROB_UNAVAILABLE, "%s failed", method);
	return -1;
}

/* See wfe_int.h. */
int
wfe_sa_read_raw(struct wfe_req *r, enum rpc_method_id id, json_t *params,
    int (*settled)(const json_t *answer), json_t **result,
    struct problem **prob)
{
	*result = NULL;
	*prob = NULL;
	if (r->w->sa_read != NULL) {
		if (rpc_call(r->w->sa_read, rpc_method_name(id), params, 0,
			r->rid, result, prob) == 0) {
			if (settled == NULL || settled(*result)) {
				replica_metric(r->w, "replica");
				return 0;
			}
			/* Maybe older than what this client was told: the
			 * primary has the state after every acknowledged
			 * write. */
			replica_metric(r->w, "unsettled");
			json_decref(*result);
			*result = NULL;
		} else if (*prob != NULL && (*prob)->type != PROB_NOT_FOUND &&
		    (*prob)->type != PROB_UNAVAILABLE) {
			return -1;
		} else {
			/* Not replayed there yet, or the replica is down. */
			replica_metric(r->w, "primary");
			problem_free(*prob);
			*prob = NULL;
		}
	}
	return wfe_rpc_raw(r, r->w->sa, id, params, result, prob);
}

/* See wfe_int.h. */
int
wfe_sa_read(struct wfe_req *r, enum rpc_method_id id, json_t *params,
    int (*settled)(const json_t *answer), json_t **result)
{
	struct problem *p = NULL;

	if (wfe_sa_read_raw(r, id, params, settled, result, &p) == 0)
		return 0;
	wfe_reply_problem(r, p);
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

/* See wfe_int.h. */
void
wfe_ra_reply(struct wfe_req *r, enum rpc_method_id id, json_t *params,
    int status, void (*reply)(struct wfe_req *, int, const json_t *))
{
	json_t *res = NULL;

	if (wfe_rpc(r, r->w->ra, id, params, &res) == 0)
		reply(r, status, res);
	json_decref(params);
	json_decref(res);
}
