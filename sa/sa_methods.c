/*
 * sa_methods.c - the sa.* method table, the pool checkout around each call
 * and the RPC adapter.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sa/sa_int.h"

#define SA_METHODS(X)                                                          \
	X("sa.new_account", sa_m_new_account)                                  \
	X("sa.get_account", sa_m_get_account)                                  \
	X("sa.get_account_by_thumbprint", sa_m_get_account_by_thumbprint)      \
	X("sa.update_account", sa_m_update_account)                            \
	X("sa.change_account_key", sa_m_change_account_key)                    \
	X("sa.new_eab_key", sa_m_new_eab_key)                                  \
	X("sa.get_eab_key", sa_m_get_eab_key)                                  \
	X("sa.list_eab_keys", sa_m_list_eab_keys)                              \
	X("sa.revoke_eab_key", sa_m_revoke_eab_key)                            \
	X("sa.new_order", sa_m_new_order)                                      \
	X("sa.new_authz", sa_m_new_authz)                                      \
	X("sa.get_order", sa_m_get_order)                                      \
	X("sa.get_orders_by_account", sa_m_get_orders_by_account)              \
	X("sa.get_authz", sa_m_get_authz)                                      \
	X("sa.get_authzs", sa_m_get_authzs)                                    \
	X("sa.get_valid_authzs", sa_m_get_valid_authzs)                        \
	X("sa.set_authz_processing", sa_m_set_authz_processing)                \
	X("sa.finalize_authz", sa_m_finalize_authz)                            \
	X("sa.deactivate_authz", sa_m_deactivate_authz)                        \
	X("sa.set_order_processing", sa_m_set_order_processing)                \
	X("sa.set_order_error", sa_m_set_order_error)                          \
	X("sa.finalize_order", sa_m_finalize_order)                            \
	X("sa.get_stale_processing_orders", sa_m_get_stale_processing_orders)  \
	X("sa.get_stale_processing_authzs", sa_m_get_stale_processing_authzs)  \
	X("sa.reserve_serial", sa_m_reserve_serial)                            \
	X("sa.add_certificate", sa_m_add_certificate)                          \
	X("sa.get_certificate", sa_m_get_certificate)                          \
	X("sa.get_certificates", sa_m_get_certificates)                        \
	X("sa.revoke_certificate", sa_m_revoke_certificate)                    \
	X("sa.serials_by_account", sa_m_serials_by_account)                    \
	X("sa.serials_by_key", sa_m_serials_by_key)                            \
	X("sa.block_key", sa_m_block_key)                                      \
	X("sa.key_blocked", sa_m_key_blocked)                                  \
	X("sa.fqdn_set_issued", sa_m_fqdn_set_issued)                          \
	X("sa.count_certs_by_domain", sa_m_count_certs_by_domain)              \
	X("sa.rate_limit_spend", sa_m_rate_limit_spend)                        \
	X("sa.replacement_exists", sa_m_replacement_exists)                    \
	X("sa.revoked_by_shard", sa_m_revoked_by_shard)                        \
	X("sa.store_crl", sa_m_store_crl)                                      \
	X("sa.get_crl", sa_m_get_crl)                                          \
	X("sa.next_crl_number", sa_m_next_crl_number)                          \
	X("sa.store_ocsp", sa_m_store_ocsp)                                    \
	X("sa.get_ocsp", sa_m_get_ocsp)

struct sa_method_entry {
	const char *name;
	sa_method_fn fn;
};

#define SA_ENTRY(n, f) {n, f},
static const struct sa_method_entry sa_method_table[] = {SA_METHODS(SA_ENTRY)};

static int sa_rpc_handler(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob);

#define SA_RPC_ENTRY(n, f) {n, sa_rpc_handler},
static const struct rpc_method sa_rpc_table[] = {SA_METHODS(SA_RPC_ENTRY)};

#define SA_NMETHODS (sizeof(sa_method_table) / sizeof(sa_method_table[0]))

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
sa_call(struct sa *sa, const char *method, json_t *params, json_t **result,
    struct problem **prob)
{
	const struct sa_method_entry *m = NULL;
	struct sa_conn *c;
	json_t *empty = NULL;
	int64_t start;
	size_t i;
	int ret;

	*result = NULL;
	*prob = NULL;
	for (i = 0; i < SA_NMETHODS; i++)
		if (strcmp(sa_method_table[i].name, method) == 0)
			m = &sa_method_table[i];
	if (m == NULL) {
		*prob =
		    problem_new(PROB_MALFORMED, "unknown method %s", method);
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
	ret = m->fn(c, params, result, prob);
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
			log_bug("%s failed without a problem", method);
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
	return sa_call(svc, req->method, req->params, result, prob);
}

const struct rpc_method *
sa_rpc_methods(size_t *n)
{
	*n = sizeof(sa_rpc_table) / sizeof(sa_rpc_table[0]);
	return sa_rpc_table;
}
