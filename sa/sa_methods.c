/*
 * sa_methods.c - the sa.* handlers by registry id (rpc/methods.def), the
 * pool checkout around each call and the RPC adapter.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sa/sa_int.h"

/* A method: its handler, or its declared form (sa_decl.c). */
struct sa_method {
	sa_method_fn fn;
	const struct sa_decl *decl;
};

/* A method written as a function (sa_m_<name>) or declared (sa_d_<name>) */
#define SA_FN(name) {.fn = sa_m_##name}
#define SA_DECL(name) {.decl = &sa_d_##name}

/* Methods by registry id (rpc/methods.def): the SA's dispatch table. */
static const struct sa_method sa_handlers[RPC_METHOD__MAX] = {
    [RPC_SA_NEW_ACCOUNT] = SA_FN(new_account),
    [RPC_SA_GET_ACCOUNT] = SA_DECL(get_account),
    [RPC_SA_GET_ACCOUNT_BY_THUMBPRINT] = SA_DECL(get_account_by_thumbprint),
    [RPC_SA_UPDATE_ACCOUNT] = SA_DECL(update_account),
    [RPC_SA_CHANGE_ACCOUNT_KEY] = SA_DECL(change_account_key),
    [RPC_SA_NEW_EAB_KEY] = SA_DECL(new_eab_key),
    [RPC_SA_GET_EAB_KEY] = SA_DECL(get_eab_key),
    [RPC_SA_LIST_EAB_KEYS] = SA_DECL(list_eab_keys),
    [RPC_SA_REVOKE_EAB_KEY] = SA_DECL(revoke_eab_key),
    [RPC_SA_NEW_ORDER] = SA_FN(new_order),
    [RPC_SA_NEW_AUTHZ] = SA_FN(new_authz),
    [RPC_SA_GET_ORDER] = SA_FN(get_order),
    [RPC_SA_GET_ORDERS_BY_ACCOUNT] = SA_FN(get_orders_by_account),
    [RPC_SA_GET_AUTHZ] = SA_FN(get_authz),
    [RPC_SA_GET_AUTHZS] = SA_FN(get_authzs),
    [RPC_SA_GET_VALID_AUTHZS] = SA_FN(get_valid_authzs),
    [RPC_SA_SET_AUTHZ_PROCESSING] = SA_FN(set_authz_processing),
    [RPC_SA_FINALIZE_AUTHZ] = SA_FN(finalize_authz),
    [RPC_SA_DEACTIVATE_AUTHZ] = SA_FN(deactivate_authz),
    [RPC_SA_SET_ORDER_PROCESSING] = SA_FN(set_order_processing),
    [RPC_SA_SET_ORDER_ERROR] = SA_FN(set_order_error),
    [RPC_SA_FINALIZE_ORDER] = SA_FN(finalize_order),
    [RPC_SA_GET_STALE_PROCESSING_ORDERS] = SA_FN(get_stale_processing_orders),
    [RPC_SA_GET_STALE_PROCESSING_AUTHZS] = SA_FN(get_stale_processing_authzs),
    [RPC_SA_RESERVE_SERIAL] = SA_FN(reserve_serial),
    [RPC_SA_RECLAIM_ORDER] = SA_FN(reclaim_order),
    [RPC_SA_ADD_CERTIFICATE] = SA_FN(add_certificate),
    [RPC_SA_GET_CERTIFICATE] = SA_DECL(get_certificate),
    [RPC_SA_GET_CERTIFICATES] = SA_FN(get_certificates),
    [RPC_SA_REVOKE_CERTIFICATE] = SA_FN(revoke_certificate),
    [RPC_SA_SERIALS_BY_ACCOUNT] = SA_DECL(serials_by_account),
    [RPC_SA_SERIALS_BY_KEY] = SA_DECL(serials_by_key),
    [RPC_SA_BLOCK_KEY] = SA_DECL(block_key),
    [RPC_SA_KEY_BLOCKED] = SA_DECL(key_blocked),
    [RPC_SA_FQDN_SET_ISSUED] = SA_FN(fqdn_set_issued),
    [RPC_SA_COUNT_CERTS_BY_DOMAIN] = SA_FN(count_certs_by_domain),
    [RPC_SA_RATE_LIMIT_SPEND] = SA_FN(rate_limit_spend),
    [RPC_SA_REPLACEMENT_EXISTS] = SA_FN(replacement_exists),
    [RPC_SA_REVOKED_BY_SHARD] = SA_DECL(revoked_by_shard),
    [RPC_SA_STORE_CRL] = SA_DECL(store_crl),
    [RPC_SA_GET_CRL] = SA_DECL(get_crl),
    [RPC_SA_NEXT_CRL_NUMBER] = SA_DECL(next_crl_number),
    [RPC_SA_STORE_OCSP] = SA_DECL(store_ocsp),
    [RPC_SA_GET_OCSP] = SA_DECL(get_ocsp),
    /* RFC 8739 STAR (sa_star.c) */
    [RPC_SA_STAR_NEW] = SA_DECL(star_new),
    [RPC_SA_STAR_GET] = SA_FN(star_get),
    [RPC_SA_STAR_SET_CSR] = SA_DECL(star_set_csr),
    [RPC_SA_STAR_CLAIM] = SA_DECL(star_claim),
    [RPC_SA_STAR_RELEASE] = SA_DECL(star_release),
    [RPC_SA_STAR_CANCEL] = SA_FN(star_cancel),
    /* RFC 9115 delegation (sa_delegation.c) */
    [RPC_SA_DELEGATION_NEW] = SA_DECL(delegation_new),
    [RPC_SA_DELEGATION_GET] = SA_DECL(delegation_get),
    [RPC_SA_DELEGATION_LIST] = SA_FN(delegation_list),
    [RPC_SA_DELEGATION_UPDATE] = SA_FN(delegation_update),
    [RPC_SA_DELEGATION_CANCEL] = SA_FN(delegation_cancel),
    [RPC_SA_CLAIM_CHALLENGE] = SA_FN(claim_challenge),
    [RPC_SA_TKAUTH_SPEND_JTI] = SA_FN(tkauth_spend_jti),
    [RPC_SA_PEEK_CHALLENGE] = SA_FN(peek_challenge),
    [RPC_SA_RECORD_VALIDATION] = SA_FN(record_validation),
};

static int sa_rpc_handler(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob);

static struct sa_conn *
sa_checkout(struct sa *sa)
{
	size_t i;

	pthread_mutex_lock(&sa->mu);
	for (;;) {
		for (i = 0; i < sa->nconns; i++)
			if (!sa->busy[i])
				break;
		if (i < sa->nconns)
			break;
		pthread_cond_wait(&sa->cv, &sa->mu);
	}
	sa->busy[i] = 1;
	if (sa->metrics != NULL)
		metrics_gauge_add(sa->metrics, "anvil_sa_db_connections_busy",
		    "PostgreSQL connections in use by a call", NULL, 1);
	pthread_mutex_unlock(&sa->mu);
	return &sa->conns[i];
}

static void
sa_checkin(struct sa *sa, struct sa_conn *c)
{
	pthread_mutex_lock(&sa->mu);
	sa->busy[c - sa->conns] = 0;
	if (sa->metrics != NULL)
		metrics_gauge_add(sa->metrics, "anvil_sa_db_connections_busy",
		    "PostgreSQL connections in use by a call", NULL, -1);
	pthread_cond_signal(&sa->cv);
	pthread_mutex_unlock(&sa->mu);
}

int
sa_call(struct sa *sa, enum rpc_method_id id, json_t *params, json_t **result,
    struct problem **prob)
{
	const struct rpc_contract *m = rpc_contract_get(id);
	const struct sa_method *fn = m != NULL ? &sa_handlers[id] : NULL;
	struct sa_conn *c;
	json_t *empty = NULL;
	int64_t start;
	int ret;

	*result = NULL;
	*prob = NULL;
	if (fn == NULL || (fn->fn == NULL && fn->decl == NULL)) {
		*prob = problem_new(PROB_MALFORMED, "not an sa.* method: %s",
		    rpc_method_name(id));
		return -1;
	}
	if (params == NULL)
		params = empty = json_object();
	if (!json_is_object(params)) {
		*prob = problem_new(PROB_MALFORMED, "params must be an object");
		return -1;
	}
	c = sa_checkout(sa);
	start = time_mono_ms();
	ret = fn->decl != NULL ? sa_run(c, fn->decl, params, result, prob)
			       : fn->fn(c, params, result, prob);
	sa_checkin(sa, c);
	json_decref(empty);
	if (sa->metrics != NULL) {
		char qlabels[96];

		snprintf(qlabels, sizeof(qlabels), "method=\"%s\"", m->name);
		metrics_histogram_observe(sa->metrics,
		    "anvil_sa_query_duration_seconds",
		    "Database time of an sa.* call (connection held), by "
		    "method",
		    qlabels, (double)(time_mono_ms() - start) / 1000.0);
	}
	if (ret != 0) {
		if (*prob == NULL) {
			log_bug("%s failed without a problem", m->name);
			*prob =
			    problem_new(PROB_SERVER_INTERNAL, "internal error");
		}
		json_decref(*result);
		*result = NULL;
		if (sa->metrics != NULL) {
			char labels[160];

			snprintf(labels, sizeof(labels),
			    "method=\"%s\",type=\"%s\"", m->name,
			    prob_type_name((*prob)->type));
			metrics_counter_add(sa->metrics,
			    "anvil_sa_errors_total",
			    "sa.* calls that returned an error, by type",
			    labels, 1);
		}
		return -1;
	}
	return 0;
}

static int
sa_rpc_handler(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	return sa_call(svc, req->contract->id, req->params, result, prob);
}

/* See sa.h. */
void
sa_rpc_handlers(rpc_handler_fn out[RPC_METHOD__MAX])
{
	size_t i;

	for (i = 0; i < RPC_METHOD__MAX; i++)
		out[i] = sa_handlers[i].fn != NULL || sa_handlers[i].decl != NULL
		    ? sa_rpc_handler
		    : NULL;
}
