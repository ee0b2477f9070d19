/*
 * accounts.c - ra.new_account (terms, contacts, EAB, rate limit),
 * ra.update_account (contacts, deactivation) and ra.key_change.
 */
#include <ctype.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "jose/jose.h"
#include "ra/ra_int.h"

/* mailto:local@domain with a plain address (no hfields, one address). */
static int
check_contact(const char *c, struct problem **prob)
{
	const char *addr, *at, *p;
	char e[160], *dom = NULL;

	if (strncasecmp(c, "mailto:", 7) != 0) {
		*prob = problem_new(PROB_UNSUPPORTED_CONTACT,
		    "Contact \"%.100s\""
		    " is not a mailto: URI; only mailto: is supported",
		    c);
		return -1;
	}
	addr = c + 7;
	at = strrchr(addr, '@');
	if (strlen(c) > 320 || at == NULL || at == addr ||
	    strpbrk(addr, "?,;<>\"() \t\r\n:[]\\%") != NULL) {
		*prob = problem_new(PROB_INVALID_CONTACT,
		    "Contact \"%.100s\" is"
		    " not a valid email address",
		    c);
		return -1;
	}
	for (p = addr; p < at; p++) {
		if (!isprint((unsigned char)*p) || *p == '@') {
			*prob = problem_new(PROB_INVALID_CONTACT,
			    "Contact "
			    "\"%.100s\" has an invalid local part",
			    c);
			return -1;
		}
	}
	dom = ident_dns_normalize(at + 1, 0, e, sizeof(e));
	if (dom == NULL || strchr(dom, '.') == NULL) {
		*prob = problem_new(PROB_INVALID_CONTACT,
		    "Contact \"%.100s\" "
		    "has an invalid domain%s%s",
		    c, dom ? "" : ": ", dom ? "" : e);
		free(dom);
		return -1;
	}
	free(dom);
	return 0;
}

/* Validates the contact array (borrowed; NULL = none). */
static int
check_contacts(struct ra *ra, const json_t *contact, struct problem **prob)
{
	size_t i;
	json_t *v;

	if (contact == NULL || json_is_null(contact))
		return 0;
	if (!json_is_array(contact)) {
		*prob = problem_new(
		    PROB_MALFORMED, "\"contact\" must be an array of strings");
		return -1;
	}
	if ((int64_t)json_array_size(contact) > ra->cfg.contacts_max) {
		*prob = problem_new(PROB_INVALID_CONTACT,
		    "Too many contacts "
		    "(%zu, at most %lld)",
		    json_array_size(contact), (long long)ra->cfg.contacts_max);
		return -1;
	}
	json_array_foreach(contact, i, v)
	{
		if (!json_is_string(v)) {
			*prob = problem_new(PROB_MALFORMED,
			    "\"contact\" must be an array of strings");
			return -1;
		}
		if (check_contact(json_string_value(v), prob) != 0)
			return -1;
	}
	return 0;
}

static int
check_account_key(
    struct ra *ra, const json_t *key, struct jwk **out, struct problem **prob)
{
	struct jose_policy pol;

	jose_policy_default(&pol);
	pol.allow_es512 = ra->cfg.keys.allow_p521;
	/* Ed25519 account keys (RFC 8037) are gated by the WFE's
	 * jose.allow_eddsa, which refuses an EdDSA JWS before it gets here;
	 * the RA's key policy (sizes, curves, weak keys) is about RSA and EC. */
	pol.allow_eddsa = 1;
	pol.rsa_min_bits = (int)ra->cfg.keys.rsa_min;
	pol.rsa_max_bits = (int)ra->cfg.keys.rsa_max;
	if (jwk_parse(key, &pol, out, prob) != 0)
		return -1;
	if (EVP_PKEY_get_base_id((*out)->pkey) == EVP_PKEY_ED25519)
		return 0;
	return ra_key_check(&ra->cfg.keys, (*out)->pkey, prob);
}

/* Verifies the EAB object and returns its kid (malloc'd) or -1. */
static int
verify_eab(struct ra *ra, const char *rid, const json_t *eab,
    const struct jwk *acct_key, const char *url, char **kid_out,
    struct problem **prob)
{
	char *kid = NULL;
	json_t *k = NULL;
	uint8_t *hkey = NULL;
	size_t hlen = 0;
	const char *hk;
	struct problem *p = NULL;
	int rc = -1;

	if (jose_eab_kid(eab, &kid, prob) != 0)
		goto out;
	if (ra_call(ra->sa, RPC_SA_GET_EAB_KEY, json_pack("{s:s}", "kid", kid),
		rid, &k, &p) != 0) {
		if (p->type == PROB_NOT_FOUND)
			*prob = problem_new(PROB_UNAUTHORIZED,
			    "External account binding key \"%.64s\" is unknown",
			    kid);
		else {
			*prob = p;
			p = NULL;
		}
		goto out;
	}
	if (json_is_true(json_object_get(k, "revoked"))) {
		*prob = problem_new(PROB_UNAUTHORIZED,
		    "External account binding key has been revoked");
		goto out;
	}
	if (json_integer_value(json_object_get(k, "account_id")) > 0) {
		*prob = problem_new(PROB_UNAUTHORIZED,
		    "External account binding key has already been used");
		goto out;
	}
	hk = json_string_value(json_object_get(k, "hmac_key"));
	if (hk == NULL || b64url_decode(hk, strlen(hk), &hkey, &hlen) != 0) {
		log_bug("EAB key %s has an undecodable hmac_key", kid);
		*prob = problem_new(PROB_SERVER_INTERNAL, "Bad stored EAB key");
		goto out;
	}
	if (jose_verify_eab(eab, hkey, hlen, acct_key, url, prob) != 0)
		goto out;
	*kid_out = kid;
	kid = NULL;
	rc = 0;
out:
	if (hkey != NULL) {
		OPENSSL_cleanse(hkey, hlen);
		free(hkey);
	}
	free(kid);
	json_decref(k);
	problem_free(p);
	return rc;
}

static int
existing_result(json_t *acct, json_t **result, struct problem **prob)
{
	const char *st = json_string_value(json_object_get(acct, "status"));

	if (st != NULL && strcmp(st, "valid") != 0) {
		/* RFC 8555 §7.3.6: a POST from a deactivated account (here:
		 * newAccount with its key) is 401 unauthorized. */
		*prob = problem_new(PROB_UNAUTHORIZED, "Account is %s", st);
		(*prob)->status = 401;
		return -1;
	}
	*result = json_pack("{s:O,s:b}", "account", acct, "created", 0);
	return 0;
}

/*
 * What a new account needs besides its key (params and jwk borrowed):
 * terms of service agreed, valid contacts, the EAB binding when given or
 * required (*kid: its key id, caller frees) and the per-IP rate limit.
 * 0, or -1 with *prob.
 */
static int
new_account_checks(struct ra *ra, const char *rid, const json_t *params,
    const struct jwk *jwk, char **kid, struct problem **prob)
{
	const json_t *contact = json_object_get(params, "contact");
	const json_t *eab = json_object_get(params, "eab");
	const char *ip = NULL, *url = NULL;
	char *rlkey = NULL;
	int rc = -1;

	if (eab != NULL && json_is_null(eab))
		eab = NULL;
	if (ra_param_str(params, "client_ip", &ip, prob) != 0 ||
	    ra_param_str(params, "eab_url", &url, prob) != 0)
		goto out;
	if (ra->cfg.terms_of_service != NULL &&
	    !json_is_true(json_object_get(params, "tos_agreed"))) {
		*prob = problem_new(PROB_MALFORMED,
		    "You must agree to the "
		    "terms of service (%s)",
		    ra->cfg.terms_of_service);
		goto out;
	}
	if (check_contacts(ra, contact, prob) != 0)
		goto out;
	if (eab != NULL) {
		if (url == NULL) {
			*prob = problem_new(PROB_MALFORMED,
			    "\"eab_url\" is required with \"eab\"");
			goto out;
		}
		if (verify_eab(ra, rid, eab, jwk, url, kid, prob) != 0)
			goto out;
	} else if (ra->cfg.eab_required) {
		*prob = problem_new(PROB_EXTERNAL_ACCOUNT_REQUIRED,
		    "This CA "
		    "requires an external account binding for new accounts");
		goto out;
	}
	if (ip != NULL) {
		rlkey = xasprintf("new_account:ip:%s", ip);
		if (ra_rl_spend(ra, rid, RA_RL_NEW_ACCOUNTS_PER_IP, NULL, rlkey,
			1, prob) != 0)
			goto out;
	}
	rc = 0;
out:
	free(rlkey);
	return rc;
}

/* ra.new_account handler (docs/rpc-methods.md): req borrowed; on 0 *result, on
 * -1 *prob, both handed to the RPC server. */
int
ra_h_new_account(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	struct ra *ra = svc;
	json_t *params = req->params, *acct = NULL, *key, *contact;
	struct jwk *jwk = NULL;
	struct problem *p = NULL;
	const char *ip = NULL, *url = NULL;
	char *kid = NULL;
	int rc = -1;

	key = json_object_get(params, "key");
	contact = json_object_get(params, "contact");
	if (!json_is_object(key)) {
		*prob = problem_new(PROB_MALFORMED, "\"key\" must be a JWK");
		goto out;
	}
	/* malformed parameters before any look-up */
	if (ra_param_str(params, "client_ip", &ip, prob) != 0 ||
	    ra_param_str(params, "eab_url", &url, prob) != 0)
		goto out;
	if (check_account_key(ra, key, &jwk, prob) != 0)
		goto out;
	/* An existing account is returned as it is. */
	if (ra_call(ra->sa, RPC_SA_GET_ACCOUNT_BY_THUMBPRINT,
		json_pack("{s:s}", "thumbprint", jwk->thumbprint),
		req->request_id, &acct, &p) == 0) {
		rc = existing_result(acct, result, prob);
		goto out;
	}
	if (p->type != PROB_NOT_FOUND) {
		*prob = p;
		p = NULL;
		goto out;
	}
	problem_free(p);
	p = NULL;
	if (json_is_true(json_object_get(params, "only_return_existing"))) {
		*prob = problem_new(PROB_ACCOUNT_DOES_NOT_EXIST,
		    "No account exists with this key");
		goto out;
	}
	if (new_account_checks(ra, req->request_id, params, jwk, &kid, prob) !=
	    0)
		goto out;
	if (ra_call(ra->sa, RPC_SA_NEW_ACCOUNT,
		json_pack("{s:O,s:s,s:o,s:b,s:s?}", "key", jwk->json,
		    "thumbprint", jwk->thumbprint, "contact",
		    contact && json_is_array(contact) ? json_incref(contact)
						      : json_array(),
		    "tos_agreed",
		    json_is_true(json_object_get(params, "tos_agreed")),
		    "eab_kid", kid),
		req->request_id, &acct, &p) != 0) {
		if (p->type == PROB_CONFLICT && kid == NULL) {
			/* lost a race with the same key: return that one */
			problem_free(p);
			p = NULL;
			if (ra_call(ra->sa, RPC_SA_GET_ACCOUNT_BY_THUMBPRINT,
				json_pack(
				    "{s:s}", "thumbprint", jwk->thumbprint),
				req->request_id, &acct, prob) != 0)
				goto out;
			rc = existing_result(acct, result, prob);
			goto out;
		}
		*prob = p;
		p = NULL;
		goto out;
	}
	log_audit(req->request_id, "new-account", "account=%lld eab=%s ip=%s",
	    (long long)json_integer_value(json_object_get(acct, "id")),
	    kid ? kid : "-", ip ? ip : "-");
	ra_count(ra, "anvil_ra_new_accounts_total", NULL);
	*result = json_pack("{s:O,s:b}", "account", acct, "created", 1);
	rc = 0;
out:
	jwk_free(jwk);
	json_decref(acct);
	problem_free(p);
	free(kid);
	return rc;
}

/* ra.update_account handler (docs/rpc-methods.md): req borrowed; on 0 *result,
 * on -1 *prob, both handed to the RPC server. */
int
ra_h_update_account(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	struct ra *ra = svc;
	json_t *acct = NULL, *params = req->params, *contact, *upd;
	int64_t id;
	int deactivate;

	if (ra_param_id(params, "account_id", &id, prob) != 0)
		return -1;
	if (ra_get_valid_account(ra, req->request_id, id, &acct, prob) != 0)
		return -1;
	json_decref(acct);
	acct = NULL;
	contact = json_object_get(params, "contact");
	if (contact != NULL && json_is_null(contact))
		contact = NULL;
	deactivate = json_is_true(json_object_get(params, "deactivate"));
	if (contact != NULL && check_contacts(ra, contact, prob) != 0)
		return -1;
	upd = json_pack("{s:I}", "id", (json_int_t)id);
	if (contact != NULL)
		json_object_set(upd, "contact", contact);
	if (deactivate)
		json_object_set_new(upd, "status", json_string("deactivated"));
	if (ra_call(ra->sa, RPC_SA_UPDATE_ACCOUNT, upd, req->request_id, &acct,
		prob) != 0)
		return -1;
	if (deactivate)
		log_audit(req->request_id, "account-deactivated",
		    "account=%lld", (long long)id);
	*result = acct;
	return 0;
}

/* ra.key_change handler (docs/rpc-methods.md): req borrowed; on 0 *result, on
 * -1 *prob, both handed to the RPC server. */
int
ra_h_key_change(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	struct ra *ra = svc;
	json_t *acct = NULL, *params = req->params;
	struct jwk *jwk = NULL;
	int64_t id;
	int rc = -1;

	if (ra_param_id(params, "account_id", &id, prob) != 0)
		goto out;
	if (ra_get_valid_account(ra, req->request_id, id, &acct, prob) != 0)
		goto out;
	json_decref(acct);
	acct = NULL;
	if (!json_is_object(json_object_get(params, "new_key"))) {
		*prob =
		    problem_new(PROB_MALFORMED, "\"new_key\" must be a JWK");
		goto out;
	}
	if (check_account_key(
		ra, json_object_get(params, "new_key"), &jwk, prob) != 0)
		goto out;
	if (ra_call(ra->sa, RPC_SA_CHANGE_ACCOUNT_KEY,
		json_pack("{s:I,s:O,s:s}", "id", (json_int_t)id, "key",
		    jwk->json, "thumbprint", jwk->thumbprint),
		req->request_id, &acct, prob) != 0)
		goto out;
	log_audit(req->request_id, "key-change", "account=%lld thumbprint=%s",
	    (long long)id, jwk->thumbprint);
	*result = acct;
	acct = NULL;
	rc = 0;
out:
	json_decref(acct);
	jwk_free(jwk);
	return rc;
}

/* See ra_int.h. */
int
ra_account_uri(const struct ra *ra, const json_t *params, int64_t aid,
    char **uri, struct problem **prob)
{
	const json_t *v = json_object_get(params, "account_uri");
	char tail[32];
	size_t n, tl;

	*uri = NULL;
	if (v == NULL || json_is_null(v)) {
		*uri = xasprintf(
		    "%s%lld", ra->cfg.account_uri_prefix, (long long)aid);
		return 0;
	}
	n = json_string_length(v);
	tl = (size_t)snprintf(tail, sizeof(tail), "/%lld", (long long)aid);
	if (!json_is_string(v) || n > 1024 || n <= tl ||
	    strcmp(json_string_value(v) + n - tl, tail) != 0) {
		*prob = problem_new(PROB_MALFORMED,
		    "account_uri: expected the URL of account %lld",
		    (long long)aid);
		return -1;
	}
	*uri = xstrdup(json_string_value(v));
	return 0;
}
