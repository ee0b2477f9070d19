/*
 * issue.c - the CA object and the certificate issuance pipeline:
 * reserve serial -> build TBS -> throwaway-sign -> lint -> real sign ->
 * check TBS identical -> store -> return.
 */
#include <string.h>

#include <openssl/x509v3.h>

#include "ca/ca_int.h"

#define CA_RESERVE_TRIES 3

/* See ca.h. */
void
ca_settings_defaults(struct ca_settings *s)
{
	*s = (struct ca_settings){
	    .serial_prefix = 0x7f,
	    .crl_shards = 4,
	    .crl_validity_ms = 7LL * 24 * 3600 * 1000,
	    .ocsp_validity_ms = 4LL * 24 * 3600 * 1000,
	    .ocsp_url = 1,
	    .rsa_min_bits = 2048,
	    .rsa_max_bits = 4096,
	    .alternate_roots = -1,
	};
}

/* See ca.h. */
struct ca *
ca_new(const struct ca_settings *s, struct ca_issuers *issuers,
    const struct profiles *profiles, struct ca_store store,
    struct metrics *metrics, char *err, size_t errlen)
{
	struct ca *ca = NULL;
	struct ca_issuer *is;
	size_t k;
	int ok = 0;

	ca = xcalloc(1, sizeof(*ca));
	ca->issuers = issuers;
	xmutex_init(&ca->crl_lock);
	if (s->alternate_roots >= 0 &&
	    ca_issuers_alternate_roots(issuers, (int)s->alternate_roots, err,
		errlen) != 0)
		goto out;
	if (s->public_base_url == NULL || s->public_base_url[0] == '\0') {
		snprintf(err, errlen, "public_base_url: required");
		goto out;
	}
	if (s->serial_prefix < 1 || s->serial_prefix > 127) {
		snprintf(err, errlen, "serial_prefix: must be 1..127");
		goto out;
	}
	if (s->crl_shards < 1 || s->crl_shards > 4096) {
		snprintf(err, errlen, "crl_shards: must be 1..4096");
		goto out;
	}
	if (s->crl_validity_ms < 60000 || s->ocsp_validity_ms < 60000) {
		snprintf(err, errlen,
		    "crl_validity / ocsp_validity: at least "
		    "1m");
		goto out;
	}
	if (issuers == NULL || issuers->count == 0 || profiles == NULL) {
		snprintf(err, errlen, "no issuers or no profiles");
		goto out;
	}
	ca->s = *s;
	ca->s.public_base_url = xstrdup(s->public_base_url);
	k = strlen(ca->s.public_base_url);
	while (k > 0 && ca->s.public_base_url[k - 1] == '/')
		ca->s.public_base_url[--k] = '\0';
	ca->profiles = profiles;
	ca->store = store;
	ca->metrics = metrics;
	for (k = 0; k < issuers->count; k++) {
		is = &issuers->list[k];
		if (is->lint_key != NULL)
			continue;
		is->lint_key = ca_key_generate(is->key_type,
		    is->key_type == CA_KEY_RSA ? EVP_PKEY_get_bits(is->key)
					       : 256);
		if (is->lint_key == NULL) {
			snprintf(err, errlen, "cannot generate a lint key");
			goto out;
		}
	}
	ok = 1;
out:
	if (!ok) {
		ca_free(ca);
		ca = NULL;
	}
	return ca;
}

/* Frees the CA and the issuers it took. */
void
ca_free(struct ca *ca)
{
	if (ca == NULL)
		return;
	ca_issuers_free(ca->issuers);
	free(ca->s.public_base_url);
	pthread_mutex_destroy(&ca->crl_lock);
	free(ca);
}

const struct ca_issuers *
ca_get_issuers(const struct ca *ca)
{
	return ca->issuers;
}

const struct ca_settings *
ca_get_settings(const struct ca *ca)
{
	return &ca->s;
}

/* Frees what ca_issue filled. */
void
ca_issued_clear(struct ca_issued *out)
{
	if (out == NULL)
		return;
	free(out->serial);
	free(out->der);
	memset(out, 0, sizeof(*out));
}

static void
count(struct ca *ca, const char *name, const char *help, const char *labels)
{
	if (ca->metrics != NULL)
		metrics_counter_add(ca->metrics, name, help, labels, 1);
}

/* Identifier count and type policy of the profile. */
static struct problem *
check_identifiers(const struct profile *p, const json_t *ids)
{
	const json_t *id;
	const char *t;
	enum ident_type it;
	size_t k;

	if ((int64_t)json_array_size(ids) > p->max_identifiers)
		return problem_new(PROB_REJECTED_IDENTIFIER,
		    "profile %s "
		    "allows at most %lld identifiers",
		    p->name, (long long)p->max_identifiers);
	json_array_foreach(ids, k, id)
	{
		t = json_string_value(json_object_get(id, "type"));
		if (ident_type_parse(t, &it) == 0 &&
		    !profile_allows_ident(p, it))
			return problem_new(PROB_REJECTED_IDENTIFIER,
			    "profile "
			    "%s does not allow %s identifiers",
			    p->name, t);
	}
	return NULL;
}

/* Reserves a fresh serial in the store. */
static int
reserve_serial(struct ca *ca, const struct ca_issue_req *req, time_t na,
    uint8_t serial[CA_SERIAL_LEN], struct problem **prob)
{
	json_t *params = NULL, *res = NULL;
	char *hex = NULL, tbuf[32];
	int tries, ret = -1;

	for (tries = 0; tries < CA_RESERVE_TRIES; tries++) {
		serial[0] = (uint8_t)ca->s.serial_prefix;
		random_bytes(serial + 1, CA_SERIAL_LEN - 1);
		free(hex);
		hex = serial_hex(serial, CA_SERIAL_LEN);
		json_decref(params);
		params = json_pack("{s:s, s:I, s:s}", "serial", hex,
		    "account_id", (json_int_t)req->account_id, "expires",
		    time_fmt_rfc3339(na, tbuf, sizeof(tbuf)));
		/* under the order's claim: refused once it was taken over */
		if (req->claim != NULL && req->order_id > 0) {
			json_object_set_new(params, "order_id",
			    json_integer(req->order_id));
			json_object_set_new(
			    params, "claim", json_string(req->claim));
		}
		problem_free(*prob);
		*prob = NULL;
		if (ca_store_call(ca, RPC_SA_RESERVE_SERIAL, params,
			req->request_id, &res, prob) == 0) {
			ret = 0;
			goto out;
		}
		if ((*prob)->type != PROB_CONFLICT)
			goto out;
		log_msg(LOG_LEVEL_WARN, req->request_id,
		    "serial %s collided; "
		    "retrying",
		    hex);
	}
out:
	json_decref(params);
	json_decref(res);
	free(hex);
	return ret;
}

/*
 * The serial the order's claim reserved (req->reserved_serial, hex) into
 * serial when it is one of this CA's (its length and prefix): 1, else 0
 * (the CA reserves its own).
 */
static int
claimed_serial(struct ca *ca, const struct ca_issue_req *req,
    uint8_t serial[CA_SERIAL_LEN])
{
	uint8_t *b = NULL;
	size_t n = 0;
	int ok;

	if (req->reserved_serial == NULL ||
	    hex_decode(req->reserved_serial, &b, &n) != 0)
		return 0;
	ok = n == CA_SERIAL_LEN && b[0] == (uint8_t)ca->s.serial_prefix;
	if (ok)
		memcpy(serial, b, CA_SERIAL_LEN);
	else
		log_msg(LOG_LEVEL_INFO, req->request_id,
		    "serial %s is not one of this CA's (prefix %02x): "
		    "reserving another",
		    req->reserved_serial, (unsigned)ca->s.serial_prefix);
	free(b);
	return ok;
}

/* Comma-separated identifier values into a malloc'd string. */
static char *
idents_text(const json_t *ids)
{
	const json_t *id;
	char *s = xstrdup(""), *t;
	size_t k;

	json_array_foreach(ids, k, id)
	{
		t = xasprintf("%s%s%s", s, k ? "," : "",
		    json_string_value(json_object_get(id, "value")));
		free(s);
		s = t;
	}
	return s;
}

/*
 * A CA certificate (RFC 9448 "ca": true, which the RA checked): only from
 * a STIR profile with tkauth_ca, and only for a CSR that asks for CA:TRUE.
 * NULL, or a new badCSR problem.
 */
static struct problem *
check_ca(const struct profile *p, X509_REQ *csr)
{
	if (!p->tkauth_ca)
		return problem_new(PROB_BAD_CSR,
		    "profile %s does not issue CA certificates (tkauth_ca)",
		    p->name);
	if (csr_requests_ca(csr) != 1)
		return problem_new(PROB_BAD_CSR,
		    "a CA certificate needs a CSR with basicConstraints "
		    "CA:TRUE");
	return NULL;
}

/*
 * A CA certificate under an intermediate with pathLenConstraint 0 would
 * never path-validate (RFC 5280 §4.2.1.9: no CA may follow it): NULL, or a
 * new badCSR problem naming the fix.
 */
static struct problem *
check_ca_issuer(const struct ca_issuer *is, const struct profile *p)
{
	if (X509_get_pathlen(is->cert) != 0)
		return NULL;
	return problem_new(PROB_BAD_CSR,
	    "issuer %s (pathLenConstraint 0) cannot certify a CA "
	    "certificate; this CA needs an intermediate made with "
	    "`anvil-admin ca init --intermediate-pathlen 1` for profile %s",
	    is->name, p->name);
}

/* Lint-signs, lints, real-signs and compares. Returns the real cert. */
static X509 *
sign_linted(struct ca *ca, const struct ca_tbs *t, const json_t *ids,
    const struct ca_issue_req *req, struct problem **prob)
{
	X509 *lintx = NULL, *x = NULL;
	uint8_t *tbs1 = NULL, *tbs2 = NULL;
	size_t len1 = 0, len2 = 0;
	struct ca_lint_input li;
	const char *failed = NULL;
	char err[256], labels[128], *hex = NULL;
	int ok = 0;

	if ((lintx = ca_tbs_build(t, err, sizeof(err))) == NULL) {
		*prob = problem_new(PROB_BAD_CSR, "%s", err);
		goto out;
	}
	if (ca_x509_sign(lintx, t->issuer->lint_key) != 0 ||
	    ca_tbs_der(lintx, &tbs1, &len1) != 0) {
		*prob =
		    problem_new(PROB_SERVER_INTERNAL, "lint signing failed");
		goto out;
	}
	li.cert = lintx;
	li.pubkey = t->pubkey;
	li.spki = t->spki;
	li.identifiers = ids;
	li.profile = t->profile;
	li.settings = &ca->s;
	li.ca = t->ca;
	if (ca_lint_all(&li, &failed, err, sizeof(err)) != 0) {
		hex = serial_hex(t->serial, CA_SERIAL_LEN);
		log_audit(req->request_id, "lint-failure",
		    "serial=%s lint=%s "
		    "reason=\"%s\" issuer=%s profile=%s account=%lld",
		    hex, failed, err, t->issuer->id, t->profile->name,
		    (long long)req->account_id);
		snprintf(labels, sizeof(labels), "lint=\"%s\"", failed);
		count(ca, "anvil_ca_lint_failures_total",
		    "Issuances refused by a lint", labels);
		*prob = problem_new(PROB_SERVER_INTERNAL,
		    "certificate failed "
		    "lint %s: %s",
		    failed, err);
		goto out;
	}
	if ((x = ca_tbs_build(t, err, sizeof(err))) == NULL) {
		*prob = problem_new(PROB_SERVER_INTERNAL, "signing failed");
		goto out;
	}
	if (ca_x509_sign(x, t->issuer->key) != 0) {
		/* A token that is gone is unavailable (retry), not a bug. */
		*prob = ca_issuer_sign_problem(t->issuer, "signing");
		goto out;
	}
	if (ca_tbs_der(x, &tbs2, &len2) != 0) {
		*prob = problem_new(PROB_SERVER_INTERNAL, "signing failed");
		goto out;
	}
	if (len1 != len2 || memcmp(tbs1, tbs2, len1) != 0) {
		log_bug("lint and real TBS differ (issuer %s)", t->issuer->id);
		*prob = problem_new(PROB_SERVER_INTERNAL, "TBS mismatch");
		goto out;
	}
	ok = 1;
out:
	X509_free(lintx);
	free(tbs1);
	free(tbs2);
	free(hex);
	if (!ok) {
		X509_free(x);
		x = NULL;
	}
	return x;
}

/*
 * t's serial, chosen before signing either way: reserved by the order's
 * claim (durable with it) or here. 0, or -1 with *prob; unavailable past
 * req's sign_by_ms: the order's claim may belong to another RA's recovery
 * then, which signs, and this one must not (docs/scaling.md).
 */
static int
choose_serial(struct ca *ca, const struct ca_issue_req *req, struct ca_tbs *t,
    struct problem **prob)
{
	if (!claimed_serial(ca, req, t->serial) &&
	    reserve_serial(ca, req, t->not_after, t->serial, prob) != 0)
		return -1;
	if (req->sign_by_ms > 0 && time_now_ms() > req->sign_by_ms) {
		*prob = problem_new(PROB_UNAVAILABLE,
		    "the finalize claim's time ran out before signing");
		return -1;
	}
	return 0;
}

/* sa.add_certificate. */
static int
store_cert(struct ca *ca, const struct ca_issue_req *req,
    const struct ca_tbs *t, struct ca_issued *out, const char *khash,
    const json_t *sans, struct problem **prob)
{
	json_t *params, *res = NULL;
	char *b64, nb[32], na[32];
	int ret;

	b64 = b64url_encode(out->der, out->der_len);
	params = json_pack("{s:s, s:s, s:I, s:s, s:s, s:O, s:s, s:s, s:s, "
			   "s:I}",
	    "serial", out->serial, "der", b64, "account_id",
	    (json_int_t)req->account_id, "issuer_id", t->issuer->id, "profile",
	    t->profile->name, "identifiers", sans, "not_before",
	    time_fmt_rfc3339(t->not_before, nb, sizeof(nb)), "not_after",
	    time_fmt_rfc3339(t->not_after, na, sizeof(na)), "key_hash", khash,
	    "shard", (json_int_t)t->shard);
	if (req->order_id > 0)
		json_object_set_new(
		    params, "order_id", json_integer(req->order_id));
	if (req->order_id > 0 && req->finalize_order)
		json_object_set_new(params, "finalize_order", json_true());
	if (req->order_id > 0 && req->claim != NULL)
		json_object_set_new(params, "claim", json_string(req->claim));
	ret = ca_store_call(
	    ca, RPC_SA_ADD_CERTIFICATE, params, req->request_id, &res, prob);
	if (ret == 0)
		out->order_valid =
		    json_is_true(json_object_get(res, "order_valid"));
	json_decref(params);
	json_decref(res);
	free(b64);
	return ret;
}

/*
 * The request's CSR parsed (*csr, caller frees), its signature verified
 * and its key allowed (*kt: its type) and canonically encoded. 0, or -1
 * with *prob (badCSR, badPublicKey).
 */
static int
parse_csr(struct ca *ca, const struct ca_issue_req *req, X509_REQ **csr,
    enum ca_key_type *kt, struct problem **prob)
{
	const unsigned char *q;
	EVP_PKEY *pub;
	char err[256];

	q = req->csr_der;
	if (req->csr_der == NULL || req->csr_len == 0 || req->csr_len > 65536 ||
	    (*csr = d2i_X509_REQ(NULL, &q, (long)req->csr_len)) == NULL ||
	    q != req->csr_der + req->csr_len) {
		*prob = problem_new(PROB_BAD_CSR, "CSR is not valid DER");
		return -1;
	}
	pub = X509_REQ_get0_pubkey(*csr);
	if (pub == NULL || X509_REQ_verify(*csr, pub) != 1) {
		*prob = problem_new(PROB_BAD_CSR, "CSR signature invalid");
		return -1;
	}
	if (ca_pkey_type(pub, kt) != 0 ||
	    ca_key_check(pub, &ca->s, err, sizeof(err)) != 0) {
		*prob = problem_new(PROB_BAD_PUBLIC_KEY, "key not allowed: %s",
		    *kt == CA_KEY__MAX ? "unsupported type" : err);
		return -1;
	}
	/* Makes the copy of the CSR's key block into the certificate (tbs.c
	 * copy_spki) provably canonical: it equals the re-encoded key. */
	if (!key_spki_is_canonical(X509_REQ_get_X509_PUBKEY(*csr))) {
		*prob = problem_new(PROB_BAD_CSR,
		    "CSR public key is not in its canonical encoding");
		return -1;
	}
	return 0;
}

/*
 * Fills t's issuer (one that signs kt keys for profile p) and validity
 * window (the request's, within the profile, not past the issuer's own).
 * 0, or -1 with *prob.
 */
static int
choose_issuer(struct ca *ca, const struct profile *p,
    const struct ca_issue_req *req, enum ca_key_type kt, time_t now,
    struct ca_tbs *t, struct problem **prob)
{
	t->issuer = ca_issuers_choose(ca->issuers, p->name, kt);
	if (t->issuer == NULL) {
		*prob = problem_new(PROB_BAD_PUBLIC_KEY,
		    "no issuer signs %s "
		    "keys for profile %s",
		    ca_key_type_name(kt), p->name);
		return -1;
	}
	if (profile_validity_window(p, req->not_before, req->not_after, now,
		&t->not_before, &t->not_after) != 0) {
		*prob = problem_new(PROB_MALFORMED,
		    "requested validity is "
		    "outside profile %s",
		    p->name);
		return -1;
	}
	if (X509_cmp_time(X509_get0_notAfter(t->issuer->cert), &t->not_after) <
	    0) {
		*prob = problem_new(PROB_SERVER_INTERNAL,
		    "issuer %s expires "
		    "before the certificate would",
		    t->issuer->id);
		return -1;
	}
	return 0;
}

/* See ca.h. */
int
ca_issue(struct ca *ca, const struct ca_issue_req *req, struct ca_issued *out,
    struct problem **prob)
{
	const struct profile *p;
	X509_REQ *csr = NULL;
	X509 *x = NULL;
	EVP_PKEY *pub;
	json_t *sans = NULL;
	struct ca_tbs t;
	enum ca_key_type kt = CA_KEY__MAX;
	char err[256], *khash = NULL, *idtext = NULL, labels[160], pe[96];
	char stir_cn[65]; /* RFC 5280 ub-common-name 64 */
	time_t now = time(NULL);
	int ret = -1;

	memset(out, 0, sizeof(*out));
	memset(&t, 0, sizeof(t));
	*prob = NULL;
	if ((p = profiles_find(ca->profiles, req->profile)) == NULL) {
		*prob = problem_new(PROB_INVALID_PROFILE,
		    "unknown profile "
		    "\"%s\"",
		    req->profile ? req->profile : "(default)");
		goto out;
	}
	if (parse_csr(ca, req, &csr, &kt, prob) != 0)
		goto out;
	pub = X509_REQ_get0_pubkey(csr);
	if ((*prob = check_identifiers(p, req->identifiers)) != NULL ||
	    (req->ca && (*prob = check_ca(p, csr)) != NULL))
		goto out;
	if ((sans = ca_order_sans(csr, req->identifiers, err, sizeof(err))) ==
	    NULL) {
		*prob = problem_new(PROB_MALFORMED, "%s", err);
		goto out;
	}
	if (choose_issuer(ca, p, req, kt, now, &t, prob) != 0)
		goto out;
	if (req->ca && (*prob = check_ca_issuer(t.issuer, p)) != NULL)
		goto out;
	t.pubkey = pub;
	t.spki = X509_REQ_get_X509_PUBKEY(csr);
	t.profile = p;
	t.sans = sans;
	t.cn = p->allow_tnauthlist ? ca_stir_cn(sans, stir_cn, sizeof(stir_cn))
	    : p->keep_cn	   ? ca_choose_cn(csr, sans)
				   : NULL;
	t.base_url = ca->s.public_base_url;
	t.ocsp_url = ca->s.ocsp_url;
	t.ca = req->ca;
	if (choose_serial(ca, req, &t, prob) != 0)
		goto out;
	t.shard = ca_serial_shard(t.serial, CA_SERIAL_LEN, ca->s.crl_shards);
	if ((x = sign_linted(ca, &t, req->identifiers, req, prob)) == NULL)
		goto out;
	out->serial = serial_hex(t.serial, CA_SERIAL_LEN);
	out->issuer = t.issuer;
	out->shard = t.shard;
	if (ca_x509_der(x, &out->der, &out->der_len) != 0 ||
	    (khash = key_hash_hex(pub)) == NULL) {
		*prob = problem_new(PROB_SERVER_INTERNAL, "encoding failed");
		goto out;
	}
	idtext = idents_text(sans);
	log_audit(req->request_id, "issuance",
	    "serial=%s issuer=%s "
	    "issuer_name=\"%s\" profile=%s account=%lld order=%lld "
	    "identifiers=%s shard=%lld",
	    out->serial, t.issuer->id, t.issuer->name, p->name,
	    (long long)req->account_id, (long long)req->order_id, idtext,
	    (long long)t.shard);
	snprintf(labels, sizeof(labels), "purpose=\"cert\",issuer=\"%s\"",
	    t.issuer->id);
	count(ca, "anvil_ca_signatures_total", "Signatures by the CA", labels);
	if (store_cert(ca, req, &t, out, khash, sans, prob) != 0) {
		log_audit(req->request_id, "issuance-store-failed",
		    "serial=%s "
		    "reason=\"%s\"",
		    out->serial, (*prob)->detail ? (*prob)->detail : "");
		goto out;
	}
	snprintf(labels, sizeof(labels), "profile=\"%s\",key_type=\"%s\"",
	    metrics_label_escape(p->name, pe, sizeof(pe)),
	    ca_key_type_name(kt));
	count(ca, "anvil_certificates_issued_total",
	    "Certificates issued and stored, by profile and key type", labels);
	ret = 0;
out:
	if (ret != 0)
		ca_issued_clear(out);
	X509_REQ_free(csr);
	X509_free(x);
	json_decref(sans);
	free(khash);
	free(idtext);
	return ret;
}

/* See ca.h. */
json_t *
ca_issuers_json(const struct ca *ca)
{
	json_t *arr = json_array();
	size_t k;

	for (k = 0; k < ca->issuers->count; k++)
		json_array_append_new(
		    arr, ca_issuer_json(&ca->issuers->list[k]));
	return json_pack("{s:o, s:I}", "issuers", arr, "crl_shards",
	    (json_int_t)ca->s.crl_shards);
}

/* See ca.h. */
json_t *
ca_profiles_json(const struct ca *ca)
{
	json_t *o = json_object();
	size_t k;

	for (k = 0; k < ca->profiles->count; k++)
		json_object_set_new(o, ca->profiles->list[k].name,
		    json_string(ca->profiles->list[k].description
			    ? ca->profiles->list[k].description
			    : ""));
	return json_pack("{s:o, s:s?}", "profiles", o, "default",
	    ca->profiles->default_name);
}
