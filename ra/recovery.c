/*
 * recovery.c - crash recovery of orders and validations stuck in
 * processing: a sweep thread finalizes an order whose certificate exists
 * (else fails it) and fails challenges whose validation was interrupted.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ra/ra_int.h"

/* See ra_int.h. order borrowed. */
int
ra_find_order_cert(
    struct ra *ra, const char *rid, const json_t *order, char **serial)
{
	json_t *res = NULL, *c;
	struct problem *p = NULL;
	size_t i;
	json_int_t oid = json_integer_value(json_object_get(order, "id"));

	*serial = NULL;
	if (ra_call(ra->sa, RPC_SA_GET_CERTIFICATES,
		json_pack("{s:I,s:i}", "order_id", oid, "limit", 10), rid, &res,
		&p) != 0) {
		log_msg(LOG_LEVEL_WARN, rid,
		    "order %lld: cannot look for its "
		    "certificate: %s",
		    (long long)oid, p->detail ? p->detail : "error");
		problem_free(p);
		return -1;
	}
	json_array_foreach(json_object_get(res, "certificates"), i, c)
	{
		if (json_integer_value(json_object_get(c, "order_id")) == oid &&
		    json_is_string(json_object_get(c, "serial"))) {
			*serial = xstrdup(
			    json_string_value(json_object_get(c, "serial")));
			break;
		}
	}
	json_decref(res);
	return 0;
}

/*
 * Takes the stale order idv (borrowed) over under a new claim *cl: only if
 * its claimant has not shown itself since older_than (another RA may be
 * issuing it right now). From then on that one can neither get a serial
 * nor store a certificate for it (0016_order_claim). The order (caller
 * decrefs), or NULL when it was not taken over.
 */
static json_t *
reclaim(struct ra *ra, json_t *idv, const char *older_than, struct ra_claim *cl)
{
	json_t *order = NULL;
	struct problem *p = NULL;

	ra_claim_new(cl);
	if (ra_call(ra->sa, RPC_SA_RECLAIM_ORDER,
		json_pack("{s:O,s:s,s:s}", "id", idv, "claim", cl->token,
		    "older_than", older_than),
		NULL, &order, &p) != 0) {
		problem_free(p);
		return NULL;
	}
	return order;
}

/* See ra_int.h. */
int
ra_mark(struct ra *ra, json_t *set, json_int_t id, int on)
{
	char k[32];
	int changed;

	snprintf(k, sizeof(k), "%lld", (long long)id);
	pthread_mutex_lock(&ra->lock);
	changed = (json_object_get(set, k) != NULL) != (on != 0);
	if (on)
		json_object_set_new(set, k, json_true());
	else
		json_object_del(set, k);
	pthread_mutex_unlock(&ra->lock);
	return changed;
}

/* See ra_int.h. */
int
ra_marked(struct ra *ra, const json_t *set, json_int_t id)
{
	char k[32];
	int on;

	snprintf(k, sizeof(k), "%lld", (long long)id);
	pthread_mutex_lock(&ra->lock);
	on = json_object_get(set, k) != NULL;
	pthread_mutex_unlock(&ra->lock);
	return on;
}

/*
 * Asks the SA's stale-list method for what (logged by this name) left in
 * processing before t; *res (caller decrefs) has the ids. -1, logged, if the
 * SA does not answer.
 */
static int
stale_ids(struct ra *ra, enum rpc_method_id id, const char *what,
    const char *t, json_t **res)
{
	struct problem *p = NULL;

	if (ra_call(ra->sa, id, json_pack("{s:s}", "older_than", t), NULL, res,
		&p) == 0)
		return 0;
	log_warn("ra: recovery: cannot list stale %s: %s", what,
	    p->detail ? p->detail : "error");
	problem_free(p);
	return -1;
}

/* Logs and frees p (may be NULL) as the failed recovery of the what idv. */
static void
recovery_failed(const char *what, const json_t *idv, struct problem *p)
{
	if (p == NULL)
		return;
	log_warn("ra: recovery of %s %lld failed: %s", what,
	    (long long)json_integer_value(idv), p->detail ? p->detail : "error");
	problem_free(p);
}

/* See ra.h. */
int
ra_recover_stale_orders(struct ra *ra)
{
	json_t *res = NULL, *idv, *order = NULL, *r2 = NULL;
	struct problem *p = NULL, *perr;
	struct ra_claim cl;
	char t[32], *serial = NULL;
	size_t i;
	int n = 0;
	int64_t expires;

	ra_time_fmt(time_now_ms() - ra->cfg.recover_after_ms, t, sizeof(t));
	if (stale_ids(ra, RPC_SA_GET_STALE_PROCESSING_ORDERS, "orders", t,
		&res) != 0)
		return -1;
	json_array_foreach(json_object_get(res, "order_ids"), i, idv)
	{
		if (ra_marked(ra, ra->inflight, json_integer_value(idv)))
			continue;
		if ((order = reclaim(ra, idv, t, &cl)) == NULL)
			continue;
		if (ra_find_order_cert(ra, NULL, order, &serial) != 0) {
			/* unknown whether it was issued: next round */
			json_decref(order);
			order = NULL;
			continue;
		}
		if (serial == NULL &&
		    json_is_string(json_object_get(order, "csr")) &&
		    ra_time_get(order, "expires", &expires) == 0 &&
		    expires > time_now_ms() &&
		    strcmp(json_string_value(json_object_get(order, "status")),
			"processing") == 0) {
			/* Interrupted (crash, transient failure past the
			 * retry budget): issue again, never fail it for a
			 * server-side reason (an expired one is failed below;
			 * a refusal by the CA fails it in ra_issue_order). */
			log_audit(NULL, "order-recovered",
			    "order=%lld result=reissue",
			    (long long)json_integer_value(idv));
			ra_reissue_order(ra, order, &cl);
			n++;
			json_decref(order);
			order = NULL;
			continue;
		}
		if (serial != NULL) {
			if (ra_call(ra->sa, RPC_SA_FINALIZE_ORDER,
				json_pack(
				    "{s:O,s:s}", "id", idv, "serial", serial),
				NULL, &r2, &p) == 0) {
				log_audit(NULL, "order-recovered",
				    "order=%lld "
				    "serial=%s result=valid",
				    (long long)json_integer_value(idv), serial);
				ra_count(ra, "anvil_ra_orders_final_total",
				    "status=\"valid\"");
			}
		} else {
			perr = problem_new(PROB_SERVER_INTERNAL,
			    "Issuance was "
			    "interrupted; please submit a new order");
			if (ra_call(ra->sa, RPC_SA_SET_ORDER_ERROR,
				json_pack("{s:O,s:o}", "id", idv, "error",
				    problem_to_rpc_json(perr)),
				NULL, &r2, &p) == 0) {
				log_audit(NULL, "order-recovered",
				    "order=%lld "
				    "result=invalid",
				    (long long)json_integer_value(idv));
				ra_count(ra, "anvil_ra_orders_final_total",
				    "status=\"invalid\"");
			}
			problem_free(perr);
		}
		if (p == NULL)
			n++;
		recovery_failed("order", idv, p);
		p = NULL;
		free(serial);
		serial = NULL;
		json_decref(order);
		json_decref(r2);
		order = r2 = NULL;
	}
	json_decref(res);
	return n;
}

/* See ra.h. */
int
ra_recover_stale_authzs(struct ra *ra)
{
	json_t *res = NULL, *idv, *authz = NULL, *r2 = NULL, *c, *err;
	struct problem *p = NULL, *perr;
	json_int_t cid;
	char t[32];
	size_t i, j;
	int n = 0;

	ra_time_fmt(
	    time_now_ms() - ra->va_timeout_ms - ra->cfg.recover_after_ms, t,
	    sizeof(t));
	if (stale_ids(ra, RPC_SA_GET_STALE_PROCESSING_AUTHZS, "authorizations",
		t, &res) != 0)
		return -1;
	perr = problem_new(PROB_SERVER_INTERNAL,
	    "validation interrupted; "
	    "retry with a new order");
	err = problem_to_rpc_json(perr);
	problem_free(perr);
	json_array_foreach(json_object_get(res, "authz_ids"), i, idv)
	{
		if (ra_marked(
			ra, ra->inflight_authzs, json_integer_value(idv)))
			continue;
		if (ra_call(ra->sa, RPC_SA_GET_AUTHZ,
			json_pack("{s:O}", "id", idv), NULL, &authz, &p) != 0)
			goto next;
		cid = 0;
		json_array_foreach(json_object_get(authz, "challenges"), j, c)
		{
			if (json_is_string(json_object_get(c, "status")) &&
			    strcmp(
				json_string_value(json_object_get(c, "status")),
				"processing") == 0)
				cid = json_integer_value(
				    json_object_get(c, "id"));
		}
		if (cid == 0)
			goto next;
		if (ra_call(ra->sa, RPC_SA_FINALIZE_AUTHZ,
			json_pack("{s:O,s:I,s:s,s:[],s:O}", "authz_id", idv,
			    "challenge_id", cid, "status", "invalid",
			    "validation_record", "error", err),
			NULL, &r2, &p) != 0)
			goto next;
		log_audit(NULL, "validation-recovered",
		    "authz=%lld "
		    "challenge=%lld result=invalid",
		    (long long)json_integer_value(idv), (long long)cid);
		ra_count(
		    ra, "anvil_ra_validations_total", "result=\"invalid\"");
		n++;
	next:
		if (p != NULL && p->type == PROB_CONFLICT) {
			problem_free(p); /* finished meanwhile */
			p = NULL;
		}
		recovery_failed("authz", idv, p);
		p = NULL;
		json_decref(authz);
		json_decref(r2);
		authz = r2 = NULL;
	}
	json_decref(err);
	json_decref(res);
	return n;
}

/* See ra_int.h. */
void
ra_wait_locked(struct ra *ra, int64_t ms)
{
	struct timespec ts = time_realtime_after(ms);

	while (!ra->stopping &&
	    pthread_cond_timedwait(&ra->cond, &ra->lock, &ts) != ETIMEDOUT)
		;
}

static void *
recovery_main(void *arg)
{
	struct ra *ra = arg;
	int64_t period = ra->cfg.recover_after_ms / 2;

	if (period < 1000)
		period = 1000;
	if (period > 60000)
		period = 60000;
	pthread_mutex_lock(&ra->lock);
	while (!ra->stopping) {
		pthread_mutex_unlock(&ra->lock);
		(void)ra_recover_stale_orders(ra);
		(void)ra_recover_stale_authzs(ra);
		pthread_mutex_lock(&ra->lock);
		ra_wait_locked(ra, period);
	}
	pthread_mutex_unlock(&ra->lock);
	return NULL;
}

/* See ra.h / ra_int.h for ownership and return values. */
int
ra_start_recovery_thread(struct ra *ra)
{
	if (pthread_create(&ra->recovery_thread, NULL, recovery_main, ra) != 0)
		return -1;
	ra->recovery_started = 1;
	return 0;
}
