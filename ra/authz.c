/*
 * authz.c - ra.perform_validation (claim in the SA, validate on a worker
 * thread through the VA, record the result) and ra.deactivate_authz.
 */
#include <stdlib.h>
#include <string.h>

#include "jose/jose.h"
#include "ra/ra_int.h"

/*
 * Writing a validation result: attempts with a doubling pause (0.25 s up
 * to 4 s) while the SA is unreachable, for at most this long in all.
 */
#define RA_FINALIZE_AUTHZ_BUDGET_MS 30000

struct vjob {
	struct ra *ra;
	char *rid;
	json_t *authz; /* the claimed authz */
	json_t *chall; /* the challenge being validated */
	char *key_authz;
	char *account_uri;
	int64_t account_id;
	json_t *persist; /* dns-persist-01: the VA's persist parameters */
	json_t *payload; /* the client's challenge response, or NULL */
};

static void
vjob_free(struct vjob *j)
{
	if (j == NULL)
		return;
	free(j->rid);
	json_decref(j->authz);
	json_decref(j->chall);
	free(j->key_authz);
	free(j->account_uri);
	json_decref(j->persist);
	json_decref(j->payload);
	free(j);
}

static void
authz_inflight_set(struct ra *ra, json_int_t id, int on)
{
	char k[32];

	snprintf(k, sizeof(k), "%lld", (long long)id);
	pthread_mutex_lock(&ra->lock);
	if (on)
		json_object_set_new(ra->inflight_authzs, k, json_true());
	else
		json_object_del(ra->inflight_authzs, k);
	pthread_mutex_unlock(&ra->lock);
}

/* See ra_int.h. */
int
ra_authz_inflight(struct ra *ra, json_int_t id)
{
	char k[32];
	int on;

	snprintf(k, sizeof(k), "%lld", (long long)id);
	pthread_mutex_lock(&ra->lock);
	on = json_object_get(ra->inflight_authzs, k) != NULL;
	pthread_mutex_unlock(&ra->lock);
	return on;
}

/*
 * sa.finalize_authz with params (borrowed), retried while the SA cannot be
 * reached or fails internally (it may be restarting, or PostgreSQL down).
 * The write is idempotent for us: `conflict` means the challenge is no
 * longer processing, i.e. an earlier attempt whose answer was lost landed
 * (or recovery failed it), and counts as done. 0, or -1 when it finally
 * failed (logged; recovery fails the challenge later).
 */
static int
finalize_authz_retry(
    struct ra *ra, const char *rid, int64_t aid, const json_t *params)
{
	json_t *fin = NULL;
	struct problem *p = NULL;
	int64_t deadline = time_mono_ms() + RA_FINALIZE_AUTHZ_BUDGET_MS;
	int64_t pause = 250;
	int rc = -1, stopping;

	for (;;) {
		if (ra_call(ra->sa, RPC_SA_FINALIZE_AUTHZ,
			json_incref((json_t *)params), rid, &fin, &p) == 0) {
			rc = 0;
			break;
		}
		if (p->type == PROB_CONFLICT) {
			log_msg(LOG_LEVEL_INFO, rid,
			    "finalize_authz %lld: %s "
			    "(already recorded)",
			    (long long)aid, p->detail ? p->detail : "conflict");
			rc = 0;
			break;
		}
		pthread_mutex_lock(&ra->lock);
		stopping = ra->stopping;
		pthread_mutex_unlock(&ra->lock);
		if ((p->type != PROB_UNAVAILABLE &&
			p->type != PROB_SERVER_INTERNAL) ||
		    stopping || time_mono_ms() + pause > deadline) {
			log_msg(LOG_LEVEL_ERROR, rid, "finalize_authz %lld: %s",
			    (long long)aid, p->detail ? p->detail : "error");
			break;
		}
		log_msg(LOG_LEVEL_WARN, rid,
		    "finalize_authz %lld: %s "
		    "(retrying in %lld ms)",
		    (long long)aid, p->detail ? p->detail : "error",
		    (long long)pause);
		problem_free(p);
		p = NULL;
		ra_sleep_ms(pause);
		if (pause < 4000)
			pause *= 2;
	}
	json_decref(fin);
	problem_free(p);
	return rc;
}

static void
validate_job(void *arg)
{
	struct vjob *j = arg;
	struct ra *ra = j->ra;
	json_t *res = NULL, *params, *ident, *err = NULL;
	struct problem *p = NULL;
	const struct profile *prof;
	const char *status = "invalid";
	int64_t aid = json_integer_value(json_object_get(j->authz, "id"));
	int64_t cid = json_integer_value(json_object_get(j->chall, "id"));
	char t[32], *key;
	int64_t life, until;
	int wildcard = json_is_true(json_object_get(j->authz, "wildcard"));

	ident = json_object_get(j->authz, "identifier");
	params = json_pack("{s:O,s:b,s:{s:O,s:O},s:s,s:s,s:b}", "identifier",
	    ident, "wildcard", wildcard, "challenge", "type",
	    json_object_get(j->chall, "type"), "token",
	    json_object_get(j->chall, "token"), "key_authorization",
	    j->key_authz, "account_uri", j->account_uri, "check_caa",
	    strcmp(json_string_value(json_object_get(ident, "type")), "dns") ==
		0);
	if (j->persist != NULL)
		json_object_set(params, "persist", j->persist);
	if (j->payload != NULL)
		json_object_set(params, "payload", j->payload);
	if (ra_call(ra->va, RPC_VA_VALIDATE, params, j->rid, &res, &p) != 0) {
		err = problem_to_rpc_json(p);
	} else {
		const char *s =
		    json_string_value(json_object_get(res, "status"));
		if (s != NULL && strcmp(s, "valid") == 0)
			status = "valid";
		else if (json_is_object(json_object_get(res, "error")))
			err = json_incref(json_object_get(res, "error"));
		else {
			struct problem *q = problem_new(PROB_SERVER_INTERNAL,
			    "The VA returned no usable result");
			err = problem_to_rpc_json(q);
			problem_free(q);
		}
	}
	problem_free(p);
	p = NULL;
	prof = profiles_find(ra->profiles,
	    json_string_value(json_object_get(j->authz, "profile")));
	if (prof == NULL)
		prof = profiles_find(ra->profiles, NULL);
	life = time_now_ms() + (prof ? prof->authz_lifetime_ms : 30LL * 86400000);
	/* dns-persist-01 §4.1 item 5: "the CA MUST NOT set the expires field
	 * of the resulting authorization object later than T" */
	until = ra_persist_until_ms(json_object_get(res, "validation_record"));
	if (until > 0 && until < life)
		life = until;
	ra_time_fmt(life, t, sizeof(t));
	params = json_pack("{s:I,s:I,s:s,s:s}", "authz_id", (json_int_t)aid,
	    "challenge_id", (json_int_t)cid, "status", status, "expires", t);
	if (json_is_array(json_object_get(res, "validation_record")))
		json_object_set(params, "validation_record",
		    json_object_get(res, "validation_record"));
	else
		json_object_set_new(params, "validation_record", json_array());
	if (err != NULL)
		json_object_set(params, "error", err);
	(void)finalize_authz_retry(ra, j->rid, aid, params);
	json_decref(params);
	authz_inflight_set(ra, aid, 0);
	log_audit(j->rid, "validation",
	    "authz=%lld challenge=%lld type=%s "
	    "identifier=%s result=%s",
	    (long long)aid, (long long)cid,
	    json_string_value(json_object_get(j->chall, "type")),
	    json_string_value(json_object_get(ident, "value")), status);
	ra_count(ra, "anvil_ra_validations_total",
	    strcmp(status, "valid") == 0 ? "result=\"valid\""
					 : "result=\"invalid\"");
	if (strcmp(status, "invalid") == 0) {
		struct problem *rl = NULL;
		key = xasprintf("failed_validation:acct:%lld:%s%s",
		    (long long)j->account_id, wildcard ? "*." : "",
		    json_string_value(json_object_get(ident, "value")));
		(void)ra_rl_spend(ra, j->rid, RA_RL_FAILED_VALIDATIONS,
		    prof ? prof->name : NULL, key, 1, &rl);
		problem_free(rl);
		free(key);
	}
	json_decref(res);
	json_decref(err);
	vjob_free(j);
}

/* Fetches an authz owned by the account. */
static int
get_own_authz(struct ra *ra, const char *rid, int64_t acct, int64_t id,
    json_t **authz, struct problem **prob)
{
	if (ra_call(ra->sa, RPC_SA_GET_AUTHZ,
		json_pack("{s:I}", "id", (json_int_t)id), rid, authz,
		prob) != 0)
		return -1;
	if (json_integer_value(json_object_get(*authz, "account_id")) != acct) {
		json_decref(*authz);
		*authz = NULL;
		*prob = problem_new(PROB_UNAUTHORIZED,
		    "Authorization %lld "
		    "belongs to another account",
		    (long long)id);
		return -1;
	}
	return 0;
}

/* ra.perform_validation handler (docs/rpc-methods.md): req borrowed; on 0
 * *result, on -1 *prob, both handed to the RPC server. */
int
ra_h_perform_validation(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	struct ra *ra = svc;
	json_t *params = req->params, *acct = NULL, *authz = NULL, *c;
	json_t *chall = NULL, *claimed = NULL;
	struct problem *p = NULL;
	struct vjob *j = NULL;
	int64_t aid, azid, cid;
	const char *st, *tp, *ctype;
	char *uri = NULL;
	size_t i;
	int rc = -1;

	if (ra_param_id(params, "account_id", &aid, prob) != 0 ||
	    ra_param_id(params, "authz_id", &azid, prob) != 0 ||
	    ra_param_id(params, "challenge_id", &cid, prob) != 0 ||
	    ra_account_uri(ra, params, aid, &uri, prob) != 0)
		goto out;
	if (ra_get_valid_account(ra, req->request_id, aid, &acct, prob) != 0)
		goto out;
	if (get_own_authz(ra, req->request_id, aid, azid, &authz, prob) != 0)
		goto out;
	json_array_foreach(json_object_get(authz, "challenges"), i, c)
	{
		if (json_integer_value(json_object_get(c, "id")) == cid)
			chall = c;
	}
	if (chall == NULL) {
		*prob = problem_new(PROB_NOT_FOUND,
		    "Challenge %lld is not part "
		    "of authorization %lld",
		    (long long)cid, (long long)azid);
		goto out;
	}
	st = json_string_value(json_object_get(authz, "status"));
	if (st == NULL || strcmp(st, "pending") != 0) {
		/* Nothing to start: answer with the current state. */
		*result = authz;
		authz = NULL;
		rc = 0;
		goto out;
	}
	if (ra_call(ra->sa, RPC_SA_SET_AUTHZ_PROCESSING,
		json_pack("{s:I,s:I}", "authz_id", (json_int_t)azid,
		    "challenge_id", (json_int_t)cid),
		req->request_id, &claimed, &p) != 0) {
		if (p->type != PROB_CONFLICT) {
			*prob = p;
			p = NULL;
			goto out;
		}
		/* Someone else started a validation: report the state. */
		problem_free(p);
		p = NULL;
		rc = ra_call(ra->sa, RPC_SA_GET_AUTHZ,
		    json_pack("{s:I}", "id", (json_int_t)azid), req->request_id,
		    result, prob);
		goto out;
	}
	tp = json_string_value(json_object_get(acct, "thumbprint"));
	j = xcalloc(1, sizeof(*j));
	j->ra = ra;
	j->rid = req->request_id ? xstrdup(req->request_id) : NULL;
	j->authz = json_incref(authz);
	j->chall = json_incref(chall);
	j->key_authz = jose_key_authorization(
	    json_string_value(json_object_get(chall, "token")), tp ? tp : "");
	ctype = json_string_value(json_object_get(chall, "type"));
	if (ctype != NULL && strcmp(ctype, "dns-persist-01") == 0)
		j->persist = ra_persist_params(ra, acct, uri,
		    json_string_value(json_object_get(
			json_object_get(authz, "identifier"), "value")));
	if (json_is_object(json_object_get(params, "payload")))
		j->payload = json_incref(json_object_get(params, "payload"));
	j->account_uri = uri;
	uri = NULL;
	j->account_id = aid;
	authz_inflight_set(ra, azid, 1);
	if (ra_pool_submit(ra->pool, validate_job, j) != 0) {
		authz_inflight_set(ra, azid, 0);
		vjob_free(j);
		*prob = problem_new(PROB_UNAVAILABLE, "RA is shutting down");
		goto out;
	}
	*result = claimed;
	claimed = NULL;
	rc = 0;
out:
	free(uri); /* NULL once the job took it */
	json_decref(acct);
	json_decref(authz);
	json_decref(claimed);
	problem_free(p);
	return rc;
}

/* ra.deactivate_authz handler (docs/rpc-methods.md): req borrowed; on 0
 * *result, on -1 *prob, both handed to the RPC server. */
int
ra_h_deactivate_authz(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	struct ra *ra = svc;
	json_t *params = req->params, *acct = NULL, *authz = NULL;
	struct problem *p = NULL;
	int64_t aid, azid;
	int rc = -1;

	if (ra_param_id(params, "account_id", &aid, prob) != 0 ||
	    ra_param_id(params, "authz_id", &azid, prob) != 0)
		goto out;
	if (ra_get_valid_account(ra, req->request_id, aid, &acct, prob) != 0)
		goto out;
	if (get_own_authz(ra, req->request_id, aid, azid, &authz, prob) != 0)
		goto out;
	if (ra_call(ra->sa, RPC_SA_DEACTIVATE_AUTHZ,
		json_pack("{s:I}", "id", (json_int_t)azid), req->request_id,
		result, &p) != 0) {
		if (p->type == PROB_CONFLICT) {
			*prob = problem_new(PROB_MALFORMED,
			    "Authorization is "
			    "%s and cannot be deactivated",
			    json_string_value(
				json_object_get(authz, "status")));
			problem_free(p);
		} else
			*prob = p;
		p = NULL;
		goto out;
	}
	log_audit(req->request_id, "authz-deactivated",
	    "authz=%lld "
	    "account=%lld",
	    (long long)azid, (long long)aid);
	rc = 0;
out:
	json_decref(acct);
	json_decref(authz);
	return rc;
}
