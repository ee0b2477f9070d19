/*
 * proxy.c - ra.ocsp, ra.get_issuers, ra.profiles: the only ways the WFE
 * reaches the CA. The WFE names a serial; the CA reads that certificate's
 * status from the SA and signs the matching OCSP response, so the WFE
 * cannot choose what is signed (docs/security.md, trust boundaries).
 */
#include "ra/ra_int.h"

/* Forwards one parameterless or serial call to the CA. */
static int
to_ca(struct ra *ra, enum rpc_method_id id, json_t *params,
    const struct rpc_req *req, json_t **result, struct problem **prob)
{
	return ra_call(ra->ca, id, params, req->request_id, result, prob);
}

/* See ra_int.h. */
int
ra_h_ocsp(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	/* The registry spec has checked that serial is a string; the CA
	 * checks its form and answers malformed / notFound. */
	return to_ca(svc, RPC_CA_OCSP,
	    json_pack(
		"{s:O}", "serial", json_object_get(req->params, "serial")),
	    req, result, prob);
}

/* See ra_int.h. */
int
ra_h_get_issuers(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	return to_ca(svc, RPC_CA_GET_ISSUERS, NULL, req, result, prob);
}

/* See ra_int.h. */
int
ra_h_profiles(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	return to_ca(svc, RPC_CA_PROFILES, NULL, req, result, prob);
}
