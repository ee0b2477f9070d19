/*
 * revoke.c - revocation by the certificate's account, by an account holding
 * valid authorizations for all its identifiers, by the certificate's own
 * key, and by an administrator; then a fresh CRL for the shard. Also
 * ra.renewal_info (ARI windows).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "ra/ra_int.h"

#define REASON_KEY_COMPROMISE 1
#define REASON_CESSATION 5

/* Who asks for a revocation: the reasons each may choose differ. */
enum revoke_by {
	REVOKE_BY_SUBSCRIBER, /* the account or the certificate's key */
	REVOKE_BY_OPERATOR,   /* anvil-admin */
};

/*
 * Reads the optional CRLReason of params into *reason (0 when absent).
 * Subscribers get the reasons the Baseline Requirements §7.2.2 let them
 * choose: unspecified (0), keyCompromise (1), affiliationChanged (3),
 * superseded (4), cessationOfOperation (5); privilegeWithdrawn (9) and the
 * rest of RFC 5280's list (0-6, 8-10) only by the operator. Others:
 * -1 and *prob badRevocationReason (RFC 8555 §7.6).
 */
static int
get_reason(const json_t *params, enum revoke_by by, int *reason,
    struct problem **prob)
{
	static const int subscriber[] = {0, 1, 3, 4, 5};
	json_t *v = json_object_get(params, "reason");
	json_int_t r;
	size_t i;

	*reason = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > 10 || json_integer_value(v) == 7) {
		*prob = problem_new(PROB_BAD_REVOCATION_REASON,
		    "Revocation "
		    "reason must be one of 0-6, 8-10 (RFC 5280 CRLReason)");
		return -1;
	}
	r = json_integer_value(v);
	if (by == REVOKE_BY_SUBSCRIBER) {
		for (i = 0; i < sizeof(subscriber) / sizeof(subscriber[0]); i++)
			if (r == subscriber[i])
				break;
		if (i == sizeof(subscriber) / sizeof(subscriber[0])) {
			*prob = problem_new(PROB_BAD_REVOCATION_REASON,
			    "Revocation reason %lld may only be set by the CA "
			    "operator; subscribers may use 0 (unspecified), "
			    "1 (keyCompromise), 3 (affiliationChanged), "
			    "4 (superseded) or 5 (cessationOfOperation)",
			    (long long)r);
			return -1;
		}
	}
	*reason = (int)r;
	return 0;
}

/*
 * Looks up the stored certificate for a DER given by a client: it must be
 * one this CA issued, byte for byte. *cert (caller decrefs).
 */
static int
lookup_der(struct ra *ra, const char *rid, const json_t *params, json_t **cert,
    struct problem **prob)
{
	const char *b64;
	uint8_t *der = NULL;
	size_t len = 0;
	X509 *x = NULL;
	const unsigned char *p;
	const ASN1_INTEGER *sn;
	char *serial = NULL;
	struct problem *e = NULL;
	const char *stored;
	int rc = -1;

	*cert = NULL;
	if (ra_param_str(params, "der", &b64, prob) != 0)
		goto out;
	if (b64 == NULL || b64url_decode(b64, strlen(b64), &der, &len) != 0 ||
	    len == 0 || len > 65536) {
		*prob = problem_new(PROB_MALFORMED,
		    "\"der\" must be the "
		    "base64url DER of a certificate");
		goto out;
	}
	p = der;
	x = d2i_X509(NULL, &p, (long)len);
	if (x == NULL || p != der + len) {
		*prob = problem_new(PROB_MALFORMED,
		    "The certificate cannot be "
		    "parsed");
		goto out;
	}
	sn = X509_get0_serialNumber(x);
	serial = serial_hex(
	    ASN1_STRING_get0_data(sn), (size_t)ASN1_STRING_length(sn));
	if (serial == NULL) {
		*prob = problem_new(
		    PROB_NOT_FOUND, "Certificate was not issued by this CA");
		goto out;
	}
	if (ra_call(ra->sa, RPC_SA_GET_CERTIFICATE,
		json_pack("{s:s}", "serial", serial), rid, cert, &e) != 0) {
		if (e->type == PROB_NOT_FOUND) {
			*prob = problem_new(PROB_NOT_FOUND,
			    "Certificate %s was "
			    "not issued by this CA",
			    serial);
			problem_free(e);
		} else
			*prob = e;
		goto out;
	}
	stored = json_string_value(json_object_get(*cert, "der"));
	if (stored == NULL || strcmp(stored, b64) != 0) {
		*prob = problem_new(PROB_NOT_FOUND,
		    "Certificate %s was not "
		    "issued by this CA",
		    serial);
		json_decref(*cert);
		*cert = NULL;
		goto out;
	}
	rc = 0;
out:
	free(der);
	free(serial);
	X509_free(x);
	return rc;
}

static int
do_revoke(struct ra *ra, const char *rid, const json_t *cert, int reason,
    struct problem **prob)
{
	json_t *res = NULL;
	char t[32];

	ra_time_fmt(time_now_ms(), t, sizeof(t));
	if (ra_call(ra->sa, RPC_SA_REVOKE_CERTIFICATE,
		json_pack("{s:O,s:i,s:s}", "serial",
		    json_object_get(cert, "serial"), "reason", reason,
		    "revoked_at", t),
		rid, &res, prob) != 0)
		return -1;
	json_decref(res);
	ra_regen_crl(ra, rid, cert);
	ra_count(ra, "anvil_ra_revocations_total", NULL);
	return 0;
}

static int
block_key(struct ra *ra, const char *rid, const json_t *cert,
    const char *source, const char *comment, struct problem **prob)
{
	json_t *res = NULL;

	if (!json_is_string(json_object_get(cert, "key_hash"))) {
		*prob = problem_new(
		    PROB_SERVER_INTERNAL, "Stored certificate has no key hash");
		return -1;
	}
	if (ra_call(ra->sa, RPC_SA_BLOCK_KEY,
		json_pack("{s:O,s:s,s:s}", "key_hash",
		    json_object_get(cert, "key_hash"), "source", source,
		    "comment", comment),
		rid, &res, prob) != 0)
		return -1;
	json_decref(res);
	log_audit(rid, "key-blocked", "key_hash=%s source=%s",
	    json_string_value(json_object_get(cert, "key_hash")), source);
	return 0;
}

/* 1 if the account holds valid authzs for every identifier of cert. */
static int
holds_authzs(struct ra *ra, const char *rid, int64_t acct, const json_t *cert)
{
	json_t *ids = json_array(), *v, *res = NULL;
	struct problem *p = NULL;
	size_t i;
	char t[32];
	int ok = 0;

	json_array_foreach(json_object_get(cert, "identifiers"), i, v)
	{
		const char *val =
		    json_string_value(json_object_get(v, "value"));
		int wc;
		if (val == NULL)
			goto out;
		wc = strncmp(val, "*.", 2) == 0 &&
		    json_string_value(json_object_get(v, "type")) != NULL &&
		    strcmp(json_string_value(json_object_get(v, "type")),
			"dns") == 0;
		json_array_append_new(ids,
		    json_pack("{s:O,s:s,s:b}", "type",
			json_object_get(v, "type"), "value", wc ? val + 2 : val,
			"wildcard", wc));
	}
	if (json_array_size(ids) == 0)
		goto out;
	ra_time_fmt(time_now_ms(), t, sizeof(t));
	if (ra_call(ra->sa, RPC_SA_GET_VALID_AUTHZS,
		json_pack("{s:I,s:O,s:s}", "account_id", (json_int_t)acct,
		    "identifiers", ids, "valid_until_after", t),
		rid, &res, &p) != 0) {
		problem_free(p);
		goto out;
	}
	json_array_foreach(ids, i, v)
	{
		json_t *a;
		size_t j;
		int found = 0;
		json_array_foreach(json_object_get(res, "authzs"), j, a)
		{
			json_t *ai = json_object_get(a, "identifier");
			if (json_equal(json_object_get(ai, "value"),
				json_object_get(v, "value")) &&
			    json_equal(json_object_get(ai, "type"),
				json_object_get(v, "type")) &&
			    json_integer_value(
				json_object_get(a, "account_id")) == acct)
				found = 1;
		}
		if (!found)
			goto out;
	}
	ok = 1;
out:
	json_decref(ids);
	json_decref(res);
	return ok;
}

/* ra.revoke_by_account handler (docs/rpc-methods.md): req borrowed; on 0
 * *result, on -1 *prob, both handed to the RPC server. */
int
ra_h_revoke_by_account(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	struct ra *ra = svc;
	json_t *acct = NULL, *cert = NULL;
	int64_t aid;
	int reason, rc = -1;

	if (ra_param_id(req->params, "account_id", &aid, prob) != 0 ||
	    get_reason(req->params, REVOKE_BY_SUBSCRIBER, &reason, prob) != 0)
		goto out;
	if (ra_get_valid_account(ra, req->request_id, aid, &acct, prob) != 0)
		goto out;
	if (lookup_der(ra, req->request_id, req->params, &cert, prob) != 0 ||
	    ra_star_revoke_check(ra, req->request_id, cert, prob) != 0)
		goto out;
	if (json_integer_value(json_object_get(cert, "account_id")) != aid) {
		if (!holds_authzs(ra, req->request_id, aid, cert)) {
			*prob = problem_new(PROB_UNAUTHORIZED,
			    "The account "
			    "neither owns the certificate nor holds valid "
			    "authorizations for all its identifiers");
			goto out;
		}
		/* Another holder of the names: cessationOfOperation. */
		reason = REASON_CESSATION;
	}
	if (do_revoke(ra, req->request_id, cert, reason, prob) != 0)
		goto out;
	log_audit(req->request_id, "revocation",
	    "serial=%s reason=%d "
	    "by=account account=%lld",
	    json_string_value(json_object_get(cert, "serial")), reason,
	    (long long)aid);
	*result = json_object();
	rc = 0;
out:
	json_decref(acct);
	json_decref(cert);
	return rc;
}

/* ra.revoke_by_key handler (docs/rpc-methods.md): req borrowed; on 0 *result,
 * on -1 *prob, both handed to the RPC server. */
int
ra_h_revoke_by_key(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	struct ra *ra = svc;
	json_t *cert = NULL;
	int reason, rc = -1;

	if (get_reason(req->params, REVOKE_BY_SUBSCRIBER, &reason, prob) != 0)
		goto out;
	if (lookup_der(ra, req->request_id, req->params, &cert, prob) != 0 ||
	    ra_star_revoke_check(ra, req->request_id, cert, prob) != 0)
		goto out;
	if (reason == REASON_KEY_COMPROMISE &&
	    block_key(ra, req->request_id, cert, "revoke-by-key",
		"keyCompromise proven by a request signed "
		"with the key",
		prob) != 0)
		goto out;
	if (do_revoke(ra, req->request_id, cert, reason, prob) != 0)
		goto out;
	log_audit(req->request_id, "revocation", "serial=%s reason=%d by=key",
	    json_string_value(json_object_get(cert, "serial")), reason);
	*result = json_object();
	rc = 0;
out:
	json_decref(cert);
	return rc;
}

/* ra.admin_revoke handler (docs/rpc-methods.md): req borrowed; on 0 *result, on
 * -1 *prob, both handed to the RPC server. */
int
ra_h_admin_revoke(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	struct ra *ra = svc;
	json_t *cert = NULL, *bk;
	struct problem *p = NULL;
	const char *serial, *admin;
	char *lower = NULL, *c;
	int reason, rc = -1, block, already = 0;

	if (ra_param_str(req->params, "serial", &serial, prob) != 0 ||
	    ra_param_str(req->params, "admin", &admin, prob) != 0 ||
	    get_reason(req->params, REVOKE_BY_OPERATOR, &reason, prob) != 0)
		goto out;
	if (serial == NULL || serial[0] == '\0' || strlen(serial) > 64 ||
	    strspn(serial, "0123456789abcdefABCDEF") != strlen(serial)) {
		*prob = problem_new(PROB_MALFORMED, "\"serial\" must be hex");
		goto out;
	}
	if (admin == NULL || admin[0] == '\0') {
		*prob = problem_new(PROB_MALFORMED,
		    "\"admin\" (who revokes) is "
		    "required");
		goto out;
	}
	lower = xstrdup(serial);
	for (c = lower; *c; c++)
		if (*c >= 'A' && *c <= 'F')
			*c = (char)(*c - 'A' + 'a');
	if (ra_call(ra->sa, RPC_SA_GET_CERTIFICATE,
		json_pack("{s:s}", "serial", lower), req->request_id, &cert,
		prob) != 0)
		goto out;
	bk = json_object_get(req->params, "block_key");
	block = json_is_true(bk) ||
	    (reason == REASON_KEY_COMPROMISE && !json_is_false(bk));
	if (block &&
	    block_key(ra, req->request_id, cert, "admin", admin, prob) != 0)
		goto out;
	if (do_revoke(ra, req->request_id, cert, reason, &p) != 0) {
		if (p->type != PROB_ALREADY_REVOKED) {
			*prob = p;
			p = NULL;
			goto out;
		}
		already = 1;
	}
	log_audit(req->request_id, "revocation",
	    "serial=%s reason=%d by=admin "
	    "admin=%s block_key=%d result=%s",
	    lower, reason, admin, block,
	    already ? "already_revoked" : "revoked");
	*result = json_pack(
	    "{s:s}", "status", already ? "already_revoked" : "revoked");
	rc = 0;
out:
	problem_free(p);
	json_decref(cert);
	free(lower);
	return rc;
}

/* ra.renewal_info handler (docs/rpc-methods.md): req borrowed; on 0 *result, on
 * -1 *prob, both handed to the RPC server. */
int
ra_h_renewal_info(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	struct ra *ra = svc;
	json_t *cert = NULL;
	const char *cid;
	char *serial = NULL, s1[32], s2[32];
	int64_t nb, na, now = time_now_ms(), start, end, life;
	const char *st;
	int rc = -1;

	if (ra_param_str(req->params, "cert_id", &cid, prob) != 0)
		goto out;
	if (cid == NULL || (serial = serial_hex_of_certid(cid)) == NULL) {
		*prob = problem_new(PROB_MALFORMED,
		    "Malformed ARI certificate "
		    "identifier");
		goto out;
	}
	if (ra_call(ra->sa, RPC_SA_GET_CERTIFICATE,
		json_pack("{s:s}", "serial", serial), req->request_id, &cert,
		prob) != 0)
		goto out;
	if (ra_time_get(cert, "not_before", &nb) != 0 ||
	    ra_time_get(cert, "not_after", &na) != 0 || na <= nb) {
		*prob = problem_new(PROB_SERVER_INTERNAL,
		    "Stored certificate "
		    "has no validity period");
		goto out;
	}
	st = json_string_value(json_object_get(cert, "status"));
	life = na - nb;
	if (st != NULL && strcmp(st, "revoked") == 0) {
		/* renew now: a window entirely in the past */
		start = now - 2 * 3600000LL;
		end = now - 3600000LL;
	} else {
		int64_t ideal =
		    na - (life < 10LL * 86400000 ? life / 2 : life / 3);
		start = ideal - life / 100;
		end = ideal + life / 100;
	}
	*result = json_pack("{s:{s:s,s:s},s:i}", "suggested_window", "start",
	    ra_time_fmt(start, s1, sizeof(s1)), "end",
	    ra_time_fmt(end, s2, sizeof(s2)), "retry_after_s", 21600);
	rc = 0;
out:
	free(serial);
	json_decref(cert);
	return rc;
}
