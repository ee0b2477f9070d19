/*
 * service.c - the ca.* RPC handlers: JSON in, library call, JSON out.
 */
#include <stddef.h>
#include <string.h>

#include <openssl/pem.h>

#include "ca/ca_int.h"

struct issue_params {
	char *csr;
	json_t *identifiers;
	char *profile;
	int64_t account_id;
	int64_t order_id;
	char *not_before;
	char *not_after;
	int finalize_order;
	char *serial;
	int ca;
	char *claim;
	int64_t sign_by_ms;
};

static const struct jspec issue_spec[] = {
    {"csr", JSPEC_STRING, offsetof(struct issue_params, csr), 1, NULL, 0},
    {"identifiers", JSPEC_JSON, offsetof(struct issue_params, identifiers), 1,
	NULL, 0},
    {"profile", JSPEC_STRING, offsetof(struct issue_params, profile), 0, NULL,
	0},
    {"account_id", JSPEC_INT, offsetof(struct issue_params, account_id), 1,
	NULL, 0},
    {"order_id", JSPEC_INT, offsetof(struct issue_params, order_id), 0, NULL,
	0},
    {"not_before", JSPEC_STRING, offsetof(struct issue_params, not_before), 0,
	NULL, 0},
    {"not_after", JSPEC_STRING, offsetof(struct issue_params, not_after), 0,
	NULL, 0},
    {"finalize_order", JSPEC_BOOL,
	offsetof(struct issue_params, finalize_order), 0, NULL, 0},
    {"serial", JSPEC_STRING, offsetof(struct issue_params, serial), 0, NULL,
	0},
    {"ca", JSPEC_BOOL, offsetof(struct issue_params, ca), 0, NULL, 0},
    {"claim", JSPEC_STRING, offsetof(struct issue_params, claim), 0, NULL,
	0},
    {"sign_by_ms", JSPEC_INT, offsetof(struct issue_params, sign_by_ms), 0,
	NULL, 0},
    JSPEC_END,
};

/* PEM of a DER certificate followed by an intermediates bundle. */
static char *
leaf_chain_pem(const uint8_t *der, size_t len, const char *intermediates)
{
	char *pem = pem_encode("CERTIFICATE", der, len);
	char *all = xasprintf("%s%s", pem, intermediates);

	free(pem);
	return all;
}

/* Parses req->params by spec into dest (zeroed by the caller, cleared with
 * jspec_clear); 0, or -1 with a malformed *prob naming the bad key. */
static int
parse_params(const struct rpc_req *req, const struct jspec *spec, void *dest,
    struct problem **prob)
{
	char err[256];

	if (jspec_parse(req->params, spec, dest, err, sizeof(err)) == 0)
		return 0;
	*prob = problem_new(PROB_MALFORMED, "%s", err);
	return -1;
}

/* {"der": base64url of der} (new reference). */
static json_t *
der_reply(const uint8_t *der, size_t len)
{
	char *b64 = b64url_encode(der, len);
	json_t *r = json_pack("{s:s}", "der", b64);

	free(b64);
	return r;
}

static int
h_issue(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	struct ca *ca = svc;
	struct issue_params ip;
	struct ca_issue_req ir;
	struct ca_issued out;
	uint8_t *csr = NULL;
	size_t csrlen = 0, k;
	json_t *alts = NULL;
	char *b64 = NULL, *chain = NULL, *alt;
	int ret = -1;

	memset(&ip, 0, sizeof(ip));
	memset(&ir, 0, sizeof(ir));
	memset(&out, 0, sizeof(out));
	if (parse_params(req, issue_spec, &ip, prob) != 0)
		goto out;
	if (b64url_decode(ip.csr, strlen(ip.csr), &csr, &csrlen) != 0) {
		*prob = problem_new(PROB_BAD_CSR, "csr: not base64url");
		goto out;
	}
	if (!json_is_array(ip.identifiers)) {
		*prob = problem_new(PROB_MALFORMED,
		    "identifiers: expected an "
		    "array");
		goto out;
	}
	if ((ip.not_before != NULL &&
		time_parse_rfc3339(ip.not_before, &ir.not_before) != 0) ||
	    (ip.not_after != NULL &&
		time_parse_rfc3339(ip.not_after, &ir.not_after) != 0)) {
		*prob = problem_new(PROB_MALFORMED,
		    "not_before / not_after: "
		    "not RFC 3339");
		goto out;
	}
	ir.csr_der = csr;
	ir.csr_len = csrlen;
	ir.identifiers = ip.identifiers;
	ir.profile = ip.profile;
	ir.account_id = ip.account_id;
	ir.order_id = ip.order_id;
	ir.finalize_order = ip.finalize_order;
	ir.reserved_serial = ip.serial;
	ir.ca = ip.ca;
	ir.claim = ip.claim;
	ir.sign_by_ms = ip.sign_by_ms;
	ir.request_id = req->request_id;
	if (ca_issue(ca, &ir, &out, prob) != 0)
		goto out;
	b64 = b64url_encode(out.der, out.der_len);
	chain = leaf_chain_pem(
	    out.der, out.der_len, out.issuer->chains[0].intermediates_pem);
	alts = json_array();
	for (k = 1; k < out.issuer->nchains; k++) {
		alt = leaf_chain_pem(out.der, out.der_len,
		    out.issuer->chains[k].intermediates_pem);
		if (alt != NULL)
			json_array_append_new(alts, json_string(alt));
		free(alt);
	}
	if (chain == NULL) {
		*prob = problem_new(PROB_SERVER_INTERNAL, "encoding failed");
		goto out;
	}
	*result = json_pack("{s:s, s:s, s:s, s:s, s:O, s:I}", "serial",
	    out.serial, "der", b64, "issuer_id", out.issuer->id, "chain_pem",
	    chain, "alternates_pem", alts, "shard", (json_int_t)out.shard);
	if (out.order_valid)
		json_object_set_new(*result, "order_valid", json_true());
	ret = 0;
out:
	jspec_clear(issue_spec, &ip);
	ca_issued_clear(&out);
	free(csr);
	free(b64);
	free(chain);
	json_decref(alts);
	return ret;
}

static int
h_get_issuers(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	(void)req;
	(void)prob;
	*result = ca_issuers_json(svc);
	return 0;
}

static int
h_profiles(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	(void)req;
	(void)prob;
	*result = ca_profiles_json(svc);
	return 0;
}

struct crl_params {
	char *issuer_id;
	int64_t shard;
};

static const struct jspec crl_spec[] = {
    {"issuer_id", JSPEC_STRING, offsetof(struct crl_params, issuer_id), 1, NULL,
	0},
    {"shard", JSPEC_INT, offsetof(struct crl_params, shard), 1, NULL, 0},
    JSPEC_END,
};

static int
h_generate_crl(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	struct crl_params cp;
	uint8_t *der = NULL;
	size_t len = 0;
	int64_t number = 0;
	int ret = -1;

	memset(&cp, 0, sizeof(cp));
	if (parse_params(req, crl_spec, &cp, prob) == 0 &&
	    ca_generate_crl(svc, cp.issuer_id, cp.shard, req->request_id,
		&number, &der, &len, prob) == 0) {
		*result = der_reply(der, len);
		json_object_set_new(*result, "number", json_integer(number));
		ret = 0;
	}
	jspec_clear(crl_spec, &cp);
	free(der);
	return ret;
}

struct ocsp_params {
	char *serial;
};

static const struct jspec ocsp_spec[] = {
    {"serial", JSPEC_STRING, offsetof(struct ocsp_params, serial), 1, NULL, 0},
    JSPEC_END,
};

static int
h_ocsp(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	struct ocsp_params op;
	uint8_t *der = NULL;
	size_t len = 0;
	int ret = -1;

	memset(&op, 0, sizeof(op));
	if (parse_params(req, ocsp_spec, &op, prob) == 0 &&
	    ca_ocsp(svc, op.serial, req->request_id, &der, &len, prob) == 0) {
		*result = der_reply(der, len);
		ret = 0;
	}
	jspec_clear(ocsp_spec, &op);
	free(der);
	return ret;
}

/* The ca.* dispatch table, by registry id (rpc/methods.def). */
static const rpc_handler_fn handlers[RPC_METHOD__MAX] = {
    [RPC_CA_ISSUE] = h_issue,
    [RPC_CA_GET_ISSUERS] = h_get_issuers,
    [RPC_CA_GENERATE_CRL] = h_generate_crl,
    [RPC_CA_OCSP] = h_ocsp,
    [RPC_CA_PROFILES] = h_profiles,
};

/* See ca.h. */
const rpc_handler_fn *
ca_rpc_handlers(void)
{
	return handlers;
}
