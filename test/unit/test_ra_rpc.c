/* LIBS: ra jose rpc core */
/*
 * test_ra_rpc.c - the RA's failure handling at the RPC level, with
 * in-process fake SA / VA / CA servers built on rpc/ (canned answers per
 * method, every call recorded): CA failure -> order error, VA unreachable ->
 * invalid authz with a problem, rate-limit storage failure fails open, a
 * rate-limit refusal carries retry_after, crash recovery finishes or fails
 * stale orders and fails stale validations, a result write the SA refuses
 * is retried, a VA answering within validation.wait costs one write
 * (sa.record_validation) and a slower one falls back to the claim, a certificate the CA stored despite an error finishes the
 * order, health names the missing dependency.
 */
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "ra/ra.h"
#include "rpc/rpc.h"

struct fake {
	const char *name;
	pthread_mutex_t mu;
	json_t *answers; /* method -> {"result": ..} | {"error": ..}; with
			  * "fail_times": n, the error n times, then the
			  * result; with "sleep_ms": n, after n ms */
	json_t *calls;   /* [{"method", "params"}] */
	struct rpc_server *srv;
	pthread_t thr;
};

static int
fake_handler(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	struct fake *f = svc;
	json_t *a;
	int rc;
	json_int_t sleep_ms;

	pthread_mutex_lock(&f->mu);
	json_array_append_new(f->calls,
	    json_pack(
		"{s:s,s:O}", "method", req->method, "params", req->params));
	a = json_object_get(f->answers, req->method);
	sleep_ms = json_integer_value(json_object_get(a, "sleep_ms"));
	if (sleep_ms > 0) {
		pthread_mutex_unlock(&f->mu);
		usleep((useconds_t)sleep_ms * 1000);
		pthread_mutex_lock(&f->mu);
		a = json_object_get(f->answers, req->method);
	}
	if (a != NULL &&
	    json_integer_value(json_object_get(a, "fail_times")) > 0) {
		json_object_set_new(a, "fail_times",
		    json_integer(
			json_integer_value(json_object_get(a, "fail_times")) -
			1));
		*prob = problem_from_json(json_object_get(a, "error"));
		rc = -1;
	} else if (a != NULL && json_object_get(a, "fail_times") == NULL &&
	    json_object_get(a, "error") != NULL) {
		*prob = problem_from_json(json_object_get(a, "error"));
		rc = -1;
	} else if (a != NULL) {
		*result = json_deep_copy(json_object_get(a, "result"));
		rc = 0;
	} else {
		*prob = problem_new(PROB_SERVER_INTERNAL,
		    "fake %s: no answer "
		    "for %s",
		    f->name, req->method);
		rc = -1;
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static void *
fake_run(void *arg)
{
	struct fake *f = arg;

	rpc_server_run(f->srv);
	return NULL;
}

static int
fake_start(
    struct fake *f, const char *name, const char *path, enum rpc_service owner)
{
	rpc_handler_fn handlers[RPC_METHOD__MAX];
	struct rpc_server_config cfg;
	char err[256];
	json_t *o;
	size_t n = 0;

	memset(f, 0, sizeof(*f));
	f->name = name;
	pthread_mutex_init(&f->mu, NULL);
	f->answers = json_object();
	f->calls = json_array();
	/* Every method the registry gives owner; the server checks each call
	 * of the RA against the registry's parameter spec and caller class
	 * (the RA is class "ra" here), as the real service would. */
	for (n = 0; n < RPC_METHOD__MAX; n++)
		handlers[n] = rpc_contract_get((enum rpc_method_id)n)->owner ==
			owner
		    ? fake_handler
		    : NULL;
	o = json_pack("{s:s,s:i,s:{s:[s]}}", "listen", path, "workers", 4,
	    "callers", "ra", "*");
	memset(&cfg, 0, sizeof(cfg));
	if (rpc_server_config_parse(o, &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "fake %s: %s\n", name, err);
		json_decref(o);
		return -1;
	}
	json_decref(o);
	f->srv = rpc_server_new_service(
	    &cfg, owner, handlers, f, NULL, NULL, NULL, err, sizeof(err));
	rpc_server_config_clear(&cfg);
	if (f->srv == NULL) {
		fprintf(stderr, "fake %s: %s\n", name, err);
		return -1;
	}
	return pthread_create(&f->thr, NULL, fake_run, f) == 0 ? 0 : -1;
}

static void
fake_stop(struct fake *f)
{
	if (f->srv == NULL)
		return;
	rpc_server_stop(f->srv);
	pthread_join(f->thr, NULL);
	rpc_server_free(f->srv);
	f->srv = NULL;
	json_decref(f->answers);
	json_decref(f->calls);
	pthread_mutex_destroy(&f->mu);
}

static void
answer(struct fake *f, enum rpc_method_id id, const char *json)
{
	json_t *v = json_loads(json, 0, NULL);

	if (v == NULL)
		abort();
	pthread_mutex_lock(&f->mu);
	json_object_set_new(f->answers, rpc_method_name(id), v);
	pthread_mutex_unlock(&f->mu);
}

/* Params of the last call of method (new reference) or NULL. */
static json_t *
last_call(struct fake *f, enum rpc_method_id id)
{
	json_t *c, *found = NULL;
	size_t i;

	pthread_mutex_lock(&f->mu);
	json_array_foreach(f->calls, i, c)
	{
		if (strcmp(json_string_value(json_object_get(c, "method")),
			rpc_method_name(id)) == 0)
			found = json_object_get(c, "params");
	}
	if (found != NULL)
		json_incref(found);
	pthread_mutex_unlock(&f->mu);
	return found;
}


/* Number of calls of method so far; *first (if first) the position of
 * the first among all calls, or -1. */
static int
scan_calls(struct fake *f, enum rpc_method_id id, int *first)
{
	json_t *c;
	size_t i;
	int n = 0;

	if (first != NULL)
		*first = -1;
	pthread_mutex_lock(&f->mu);
	json_array_foreach(f->calls, i, c)
	{
		if (strcmp(json_string_value(json_object_get(c, "method")),
			rpc_method_name(id)) != 0)
			continue;
		if (first != NULL && n == 0)
			*first = (int)i;
		n++;
	}
	pthread_mutex_unlock(&f->mu);
	return n;
}

/* Number of calls of method so far. */
static int
count_calls(struct fake *f, enum rpc_method_id id)
{
	return scan_calls(f, id, NULL);
}

/* Position of the first call of method among all calls so far, or -1. */
static int
first_call_at(struct fake *f, enum rpc_method_id id)
{
	int at = -1;

	(void)scan_calls(f, id, &at);
	return at;
}

static json_t *
wait_call(struct fake *f, enum rpc_method_id id)
{
	json_t *p;
	int i;

	for (i = 0; i < 200; i++) {
		if ((p = last_call(f, id)) != NULL)
			return p;
		usleep(25000);
	}
	return NULL;
}

/* Whether the last call of method (waited for, as a worker may make it
 * after the handler answered) had the string member m equal to want. */
static int
last_str_is(
    struct fake *f, enum rpc_method_id id, const char *m, const char *want)
{
	json_t *c = wait_call(f, id);
	const char *v = json_string_value(json_object_get(c, m));
	int ok = v != NULL && strcmp(v, want) == 0;

	if (!ok)
		fprintf(stderr, "  last %s: %s = %s, expected %s\n",
		    rpc_method_name(id), m, v ? v : "(none)", want);
	json_decref(c);
	return ok;
}

static void
reset(struct fake *f)
{
	pthread_mutex_lock(&f->mu);
	json_object_clear(f->answers);
	json_array_clear(f->calls);
	pthread_mutex_unlock(&f->mu);
}

/* Forgets the calls f received, keeps its answers. */
static void
clear_calls(struct fake *f)
{
	pthread_mutex_lock(&f->mu);
	json_array_clear(f->calls);
	pthread_mutex_unlock(&f->mu);
}

static char dir[256];
static struct fake fsa, fva, fca;
static struct ra *ra;

static struct ra *
make_ra(int with_va, const char *extra)
{
	char cfgtxt[4096], err[512];
	json_t *o;
	struct ra_config cfg;
	struct ra *r;

	snprintf(cfgtxt, sizeof(cfgtxt),
	    "{\"sa\": {\"target\": "
	    "\"unix:%s/sa.sock\", \"timeout\": \"2s\"}, \"va\": {\"target\": "
	    "\"unix:%s/%s\", \"timeout\": \"2s\"}, \"ca\": {\"target\": "
	    "\"unix:%s/ca.sock\", \"timeout\": \"2s\"}, \"profiles_file\": "
	    "\"configs/dev/profiles.json\", \"policy\": {\"dns_suffixes\": "
	    "[\"test\"]}, \"finalize\": {\"async\": false, \"recover_after\": "
	    "\"1s\"}, \"validation\": {\"wait\": \"0s\"}%s}",
	    dir, dir, with_va ? "va.sock" : "nope.sock", dir,
	    extra ? extra : "");
	o = json_loads(cfgtxt, 0, NULL);
	if (o == NULL ||
	    ra_config_parse(o, "test", &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "config: %s\n", err);
		json_decref(o);
		return NULL;
	}
	json_decref(o);
	r = ra_new(&cfg, NULL, err, sizeof(err));
	if (r == NULL)
		fprintf(stderr, "ra_new: %s\n", err);
	ra_config_clear(&cfg);
	return r;
}

/* Calls an ra.* handler directly; returns 0 / -1 like the handler. */
static int
call(struct ra *r, enum rpc_method_id id, const char *params, json_t **res,
    struct problem **prob)
{
	rpc_handler_fn fn = ra_rpc_handlers()[id];
	struct rpc_req req;
	int rc = -1;

	memset(&req, 0, sizeof(req));
	req.method = rpc_method_name(id);
	req.contract = rpc_contract_get(id);
	req.params = json_loads(params, 0, NULL);
	req.request_id = "test";
	*res = NULL;
	*prob = NULL;
	if (fn != NULL)
		rc = fn(r, &req, res, prob);
	json_decref(req.params);
	return rc;
}

/* RFC 3339 of now + delta seconds (static buffer; single-threaded use). */
static const char *
ra_now_str(long delta)
{
	static char buf[32];

	return time_fmt_rfc3339(time(NULL) + delta, buf, sizeof(buf));
}

/* base64url DER of a CSR for one DNS name with a fresh P-256 key. */
static char *
make_csr_b64(const char *name)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509_REQ *req = X509_REQ_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	char san[300];
	unsigned char *der = NULL;
	int len;
	char *out;

	snprintf(san, sizeof(san), "DNS:%s", name);
	X509_REQ_set_pubkey(req, key);
	sk_X509_EXTENSION_push(
	    exts, X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san));
	X509_REQ_add_extensions(req, exts);
	X509_REQ_sign(req, key, EVP_sha256());
	len = i2d_X509_REQ(req, &der);
	out = b64url_encode(der, (size_t)len);
	OPENSSL_free(der);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	return out;
}

#define ACCT                                                                   \
	"{\"id\": 7, \"status\": \"valid\", \"thumbprint\": \"tp\", "          \
	"\"key\": {\"kty\": \"EC\", \"crv\": \"P-256\", \"x\": "               \
	"\"gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0\", \"y\": "             \
	"\"SLW_xSffzlPWrHEVI30DHM_4egVwt3NQqeUD7nMFpps\"}}"

/* The fake SA's answers for a pending authz (id) with one pending
 * challenge (chall_id, type ctype) of account 7, claimed for validation
 * (sa.claim_challenge) or claimable (sa.peek_challenge), in profile with
 * wildcard. */
static void
answer_claim(int id, int chall_id, const char *ctype, const char *profile,
    int wildcard)
{
	char buf[1024];
	const char *key[] = {"claimed", "claimable"};
	enum rpc_method_id m[] = {RPC_SA_CLAIM_CHALLENGE, RPC_SA_PEEK_CHALLENGE};
	int i;

	answer(&fsa, RPC_SA_GET_ACCOUNT, "{\"result\": " ACCT "}");
	for (i = 0; i < 2; i++) {
		snprintf(buf, sizeof(buf),
		    "{\"result\": {\"%s\": true, \"thumbprint\": \"tp\", "
		    "\"authz\": {\"id\": %d, \"account_id\": 7, \"status\": "
		    "\"pending\", \"profile\": \"%s\", \"wildcard\": %s, "
		    "\"identifier\": {\"type\": \"dns\", \"value\": "
		    "\"a.test\"}, \"challenges\": [{\"id\": %d, \"type\": "
		    "\"%s\", \"token\": \"tok\", \"status\": \"pending\"}]}}}",
		    key[i], id, profile, wildcard ? "true" : "false", chall_id,
		    ctype);
		answer(&fsa, m[i], buf);
	}
}

/* ra.perform_validation of challenge chall_id of authz id for account 7:
 * the handler's return code (its problem dropped); */
/* the same, *out (new, if out) the status of the authz answered ("" on
 * an error). */
static int
perform_validation_as(struct ra *r, int id, int chall_id, char **out)
{
	char params[128];
	json_t *res = NULL;
	struct problem *p = NULL;
	int rc;

	snprintf(params, sizeof(params),
	    "{\"account_id\": 7, \"authz_id\": %d, \"challenge_id\": %d}", id,
	    chall_id);
	rc = call(r, RPC_RA_PERFORM_VALIDATION, params, &res, &p);
	if (out != NULL)
		*out = strdup(rc == 0 && json_is_string(json_object_get(res, "status"))
			? json_string_value(json_object_get(res, "status"))
			: "");
	json_decref(res);
	problem_free(p);
	return rc;
}

static int
perform_validation(struct ra *r, int id, int chall_id)
{
	return perform_validation_as(r, id, chall_id, NULL);
}

/* The fake SA's answers for finalizing order 9 (one.a.test, ready, authz
 * 4) of account 7 whose key is not blocked. */
static void
answer_ready_order(void)
{
	answer(&fsa, RPC_SA_GET_ACCOUNT, "{\"result\": " ACCT "}");
	answer(&fsa, RPC_SA_GET_ORDER,
	    "{\"result\": {\"id\": 9, \"account_id\":"
	    " 7, \"status\": \"ready\", \"profile\": \"classic\", "
	    "\"authz_ids\": [4], "
	    "\"identifiers\": [{\"type\": \"dns\", \"value\": "
	    "\"one.a.test\"}]}}");
	answer(&fsa, RPC_SA_KEY_BLOCKED, "{\"result\": {\"blocked\": false}}");
}

/* The fake SA's answer for authz 4 of order 9: valid by http-01, validated
 * `delta` seconds from now. */
static void
answer_valid_authz(long delta)
{
	char buf[512];

	snprintf(buf, sizeof(buf),
	    "{\"result\": {\"authzs\": [{\"id\":"
	    " 4, \"identifier\": {\"type\": \"dns\", \"value\": "
	    "\"one.a.test\"}, \"challenges\": [{\"type\": \"http-01\", "
	    "\"status\": \"valid\", \"validated\": \"%s\"}]}]}}",
	    ra_now_str(delta));
	answer(&fsa, RPC_SA_GET_AUTHZS, buf);
}

/* The fake SA's answer to sa.set_order_processing for order 9 (expires
 * `expires` seconds from now; 0: no expiry in the answer). */
static void
answer_processing(long expires)
{
	char buf[512];

	snprintf(buf, sizeof(buf),
	    "{\"result\": {\"id\": 9, "
	    "\"account_id\": 7, \"status\": \"processing\", \"profile\": "
	    "\"classic\", %s%s%s\"identifiers\": "
	    "[{\"type\": \"dns\", \"value\": \"one.a.test\"}]}}",
	    expires ? "\"expires\": \"" : "",
	    expires ? ra_now_str(expires) : "", expires ? "\", " : "");
	answer(&fsa, RPC_SA_SET_ORDER_PROCESSING, buf);
}

/* ra.finalize_order of order 9 of account 7 with csr: the handler's
 * return code and *p (its result dropped). */
static int
finalize(struct ra *r, const char *csr, struct problem **p)
{
	char params[1024];
	json_t *res = NULL;
	int rc;

	snprintf(params, sizeof(params),
	    "{\"account_id\": 7, \"order_id\": 9, \"csr\": \"%s\"}", csr);
	rc = call(r, RPC_RA_FINALIZE_ORDER, params, &res, p);
	json_decref(res);
	return rc;
}

/* Forgets every answer and call of the three fake services. */
static void
reset_all(void)
{
	reset(&fsa);
	reset(&fca);
	reset(&fva);
}

TH_TEST(test_va_unreachable_invalidates_authz)
{
	json_t *fin;
	struct ra *r = make_ra(0, NULL);

	TH_CHECK(t, r != NULL);
	if (r == NULL)
		return;
	reset(&fsa);
	answer_claim(5, 11, "http-01", "classic", 0);
	answer(&fsa, RPC_SA_FINALIZE_AUTHZ, "{\"result\": {\"id\": 5}}");
	TH_CHECK(t, perform_validation(r, 5, 11) == 0);
	fin = wait_call(&fsa, RPC_SA_FINALIZE_AUTHZ);
	TH_CHECK(t, fin != NULL);
	if (fin != NULL) {
		TH_CHECK_STR(t,
		    json_string_value(json_object_get(fin, "status")),
		    "invalid");
		TH_CHECK(t, json_is_object(json_object_get(fin, "error")));
		TH_CHECK_STR(t,
		    json_string_value(
			json_object_get(json_object_get(fin, "error"), "type")),
		    "unavailable");
	}
	json_decref(fin);
	/* the key authorization was not leaked into params of others */
	ra_free(r);
}

TH_TEST(test_va_result_recorded)
{
	json_t *fin, *v;
	struct ra *r = make_ra(1, NULL);

	reset(&fsa);
	reset(&fva);
	answer_claim(5, 12, "dns-01", "tlsserver", 1);
	answer(&fsa, RPC_SA_FINALIZE_AUTHZ, "{\"result\": {\"id\": 5}}");
	answer(&fva, RPC_VA_VALIDATE,
	    "{\"result\": {\"status\": \"valid\", "
	    "\"validation_record\": [{\"hostname\": \"a.test\"}]}}");
	TH_CHECK(t, perform_validation(r, 5, 12) == 0);
	fin = wait_call(&fsa, RPC_SA_FINALIZE_AUTHZ);
	v = last_call(&fva, RPC_VA_VALIDATE);
	TH_CHECK(t, fin != NULL && v != NULL);
	if (fin != NULL && v != NULL) {
		time_t exp;
		TH_CHECK_STR(t,
		    json_string_value(json_object_get(fin, "status")), "valid");
		TH_CHECK(t,
		    json_array_size(
			json_object_get(fin, "validation_record")) == 1);
		/* tlsserver authz lifetime: 7 h */
		TH_CHECK(t,
		    time_parse_rfc3339(
			json_string_value(json_object_get(fin, "expires")),
			&exp) == 0 &&
			llabs((long long)(exp - time(NULL)) - 7 * 3600) < 60);
		TH_CHECK_STR(t,
		    json_string_value(json_object_get(v, "key_authorization")),
		    "tok.tp");
		TH_CHECK(t, json_is_true(json_object_get(v, "wildcard")));
		TH_CHECK(t, json_is_true(json_object_get(v, "check_caa")));
		TH_CHECK_STR(t,
		    json_string_value(json_object_get(v, "account_uri")),
		    "https://localhost:4431/acme/acct/7");
	}
	json_decref(fin);
	json_decref(v);
	ra_free(r);
}

TH_TEST(test_ca_failure_sets_order_error)
{
	struct ra *r = make_ra(1, NULL);
	char *csr = make_csr_b64("one.a.test");
	struct problem *p = NULL;
	json_t *err;

	reset_all();
	answer_ready_order();
	answer_valid_authz(0);
	/* The order expires in 6 s: the retries of a transient failure end
	 * there (in production: the retry budget or the order's expiry). */
	answer_processing(6);
	answer(&fsa, RPC_SA_SET_ORDER_ERROR, "{\"result\": {\"id\": 9}}");
	answer(&fca, RPC_CA_ISSUE,
	    "{\"error\": {\"type\": \"unavailable\", "
	    "\"detail\": \"hsm offline\", \"status\": 503}}");
	answer(&fsa, RPC_SA_GET_CERTIFICATES,
	    "{\"result\": {\"certificates\": "
	    "[]}}");
	(void)finalize(r, csr, &p);
	TH_CHECK(t, p == NULL); /* sync mode: the order */
	/* Issue 19: unavailable is transient. Each time the RA looks for a
	 * certificate the CA may have stored (then 3 more times), retries
	 * ca.issue while the order lives, and never makes the order invalid:
	 * it stays processing for recovery (which has the stored CSR). */
	TH_CHECK(t, count_calls(&fca, RPC_CA_ISSUE) >= 2);
	TH_CHECK(t,
	    count_calls(&fsa, RPC_SA_GET_CERTIFICATES) ==
		4 * count_calls(&fca, RPC_CA_ISSUE));
	TH_CHECK(t, last_call(&fsa, RPC_SA_SET_ORDER_ERROR) == NULL);
	TH_CHECK(t, last_call(&fsa, RPC_SA_FINALIZE_ORDER) == NULL);
	{
		json_t *sp = last_call(&fsa, RPC_SA_SET_ORDER_PROCESSING);
		TH_CHECK_STR(t,
		    json_string_value(json_object_get(sp, "csr")), csr);
		json_decref(sp);
	}
	problem_free(p);
	p = NULL;
	/* A definitive refusal by the CA makes the order invalid with it,
	 * after one look for a stored certificate. */
	reset(&fca);
	clear_calls(&fsa);
	answer(&fca, RPC_CA_ISSUE,
	    "{\"error\": {\"type\": \"badCSR\", "
	    "\"detail\": \"hsm offline refuses this key\", \"status\": 400}}");
	(void)finalize(r, csr, &p);
	TH_CHECK(t, p == NULL);
	TH_CHECK(t, count_calls(&fca, RPC_CA_ISSUE) == 1);
	{
		json_t *gc = last_call(&fsa, RPC_SA_GET_CERTIFICATES);
		TH_CHECK(t,
		    gc != NULL &&
			json_integer_value(json_object_get(gc, "order_id")) ==
			    9);
		json_decref(gc);
	}
	problem_free(p);
	err = last_call(&fsa, RPC_SA_SET_ORDER_ERROR);
	TH_CHECK(t, err != NULL);
	if (err != NULL) {
		json_t *e = json_object_get(err, "error");
		TH_CHECK_STR(t, json_string_value(json_object_get(e, "type")),
		    "badCSR");
		TH_CHECK(t,
		    strstr(json_string_value(json_object_get(e, "detail")),
			"hsm offline") != NULL);
		TH_CHECK(t, count_calls(&fsa, RPC_SA_GET_CERTIFICATES) == 1);
	}
	TH_CHECK(t, last_call(&fsa, RPC_SA_FINALIZE_ORDER) == NULL);
	TH_CHECK(t, last_call(&fva, RPC_VA_CHECK_CAA) == NULL); /* fresh */
	json_decref(err);

	/* validated 8 h ago: CAA is re-checked and here forbids issuance */
	reset(&fsa);
	answer(&fsa, RPC_SA_GET_ACCOUNT, "{\"result\": " ACCT "}");
	answer(&fsa, RPC_SA_GET_ORDER,
	    "{\"result\": {\"id\": 9, \"account_id\":"
	    " 7, \"status\": \"ready\", \"profile\": \"classic\", "
	    "\"authz_ids\": [4], "
	    "\"authz_ids\": [4], \"identifiers\": [{\"type\": \"dns\", "
	    "\"value\": \"one.a.test\"}]}}");
	answer(&fsa, RPC_SA_KEY_BLOCKED, "{\"result\": {\"blocked\": false}}");
	answer_valid_authz(-8 * 3600);
	answer(&fva, RPC_VA_CHECK_CAA,
	    "{\"result\": {\"ok\": false, \"error\":"
	    " {\"type\": \"caa\", \"detail\": \"CAA forbids\", \"status\": "
	    "403}}}");
	TH_CHECK(t, finalize(r, csr, &p) == -1);
	if (p != NULL)
		fprintf(stderr, "    (%s: %s)\n", prob_type_name(p->type),
		    p->detail);
	TH_CHECK(t, p != NULL && p->type == PROB_CAA);
	{
		json_t *cc = last_call(&fva, RPC_VA_CHECK_CAA);
		TH_CHECK(t,
		    cc != NULL &&
			strcmp(json_string_value(
				   json_object_get(cc, "validation_method")),
			    "http-01") == 0);
		json_decref(cc);
	}
	TH_CHECK(t, last_call(&fsa, RPC_SA_SET_ORDER_PROCESSING) == NULL);
	problem_free(p);
	free(csr);
	ra_free(r);
}

TH_TEST(test_rate_limits_fail_open_and_refuse)
{
	json_t *res = NULL;
	struct problem *p = NULL;
	struct ra *r = make_ra(1,
	    ", \"rate_limits\": {\"new_orders_per_account"
	    "\": {\"limit\": 10, \"period\": \"1h\"}}");
	const char *order = "{\"account_id\": 7, \"identifiers\": [{\"type\": "
			    "\"dns\", \"value\": \"x.test\"}]}";

	reset(&fsa);
	answer(&fsa, RPC_SA_GET_ACCOUNT, "{\"result\": " ACCT "}");
	answer(&fsa, RPC_SA_FQDN_SET_ISSUED, "{\"result\": {\"count\": 0}}");
	/* with_authzs (c976ecd): sa.new_order answers with the authzs */
	answer(&fsa, RPC_SA_NEW_ORDER,
	    "{\"result\": {\"id\": 3, \"authz_ids\": "
	    "[4], \"authzs\": [{\"id\": 4}]}}");
	answer(&fsa, RPC_SA_GET_AUTHZS,
	    "{\"result\": {\"authzs\": [{\"id\": "
	    "4}]}}");
	/* no answer for sa.rate_limit_spend: the SA errors -> fail open */
	TH_CHECK(t, call(r, RPC_RA_NEW_ORDER, order, &res, &p) == 0);
	TH_CHECK(t, json_array_size(json_object_get(res, "authzs")) == 1);
	json_decref(res);
	problem_free(p);
	p = NULL;
	{
		json_t *np = last_call(&fsa, RPC_SA_NEW_ORDER), *na;
		TH_CHECK(t, np != NULL);
		na = json_array_get(json_object_get(np, "new_authzs"), 0);
		TH_CHECK(
		    t, json_array_size(json_object_get(na, "challenges")) == 3);
		/* issue 18: no sa.get_valid_authzs first; sa.new_order takes
		 * a valid authz of the name instead of this one if it finds
		 * one that outlives reuse_valid_after */
		TH_CHECK(t, json_is_true(json_object_get(na, "reusable")));
		TH_CHECK(t,
		    json_is_string(json_object_get(np, "reuse_valid_after")));
		TH_CHECK(t, count_calls(&fsa, RPC_SA_GET_VALID_AUTHZS) == 0);
		json_decref(np);
	}
	/* refusal: rateLimited with retry_after from the SA */
	answer(&fsa, RPC_SA_RATE_LIMIT_SPEND,
	    "{\"result\": {\"allowed\": false,"
	    " \"retry_after_ms\": 4500, \"remaining\": 0}}");
	TH_CHECK(t, call(r, RPC_RA_NEW_ORDER, order, &res, &p) == -1);
	TH_CHECK(t,
	    p != NULL && p->type == PROB_RATE_LIMITED && p->retry_after == 5);
	{
		json_t *sp = last_call(&fsa, RPC_SA_RATE_LIMIT_SPEND);
		TH_CHECK_STR(t, json_string_value(json_object_get(sp, "key")),
		    "new_order:acct:7");
		TH_CHECK(t,
		    json_integer_value(json_object_get(sp, "emission_ms")) ==
			360000);
		json_decref(sp);
	}
	json_decref(res);
	problem_free(p);
	ra_free(r);
}

/*
 * The SA's answers to a recovery pass over order id, left processing: its
 * id from sa.get_stale_processing_orders, the order {"id": id, "account_id":
 * 7, "status": "processing"<more>} from sa.reclaim_order and the
 * certificates array certs from sa.get_certificates.
 */
static void
answer_stale_order(int id, const char *more, const char *certs)
{
	char *s = xasprintf("{\"result\": {\"order_ids\": [%d]}}", id);

	answer(&fsa, RPC_SA_GET_STALE_PROCESSING_ORDERS, s);
	free(s);
	s = xasprintf("{\"result\": {\"id\": %d, \"account_id\": 7, "
		      "\"status\": \"processing\"%s}}",
	    id, more);
	answer(&fsa, RPC_SA_RECLAIM_ORDER, s);
	free(s);
	s = xasprintf("{\"result\": {\"certificates\": %s}}", certs);
	answer(&fsa, RPC_SA_GET_CERTIFICATES, s);
	free(s);
}

TH_TEST(test_recovery)
{
	json_t *fin, *err;
	struct ra *r = make_ra(1, NULL);

	reset(&fsa);
	answer_stale_order(21, "",
	    "[{\"serial\": \"aa\", \"order_id\": 20}, "
	    "{\"serial\": \"bb\", \"order_id\": 21}]");
	answer(&fsa, RPC_SA_FINALIZE_ORDER, "{\"result\": {\"id\": 21}}");
	TH_CHECK(t, ra_recover_stale_orders(r) == 1);
	TH_CHECK(t, last_str_is(&fsa, RPC_SA_FINALIZE_ORDER, "serial", "bb"));
	/* Issue 25: recovery takes the order over under a claim of its own,
	 * bounded by the recovery age, so the RA that stalled on it can no
	 * longer get a serial or store a certificate for it. */
	fin = last_call(&fsa, RPC_SA_RECLAIM_ORDER);
	TH_CHECK(t,
	    fin != NULL &&
		json_integer_value(json_object_get(fin, "id")) == 21 &&
		json_is_string(json_object_get(fin, "claim")) &&
		json_is_string(json_object_get(fin, "older_than")));
	json_decref(fin);

	reset(&fsa);
	answer_stale_order(22, "", "[]");
	answer(&fsa, RPC_SA_SET_ORDER_ERROR, "{\"result\": {\"id\": 22}}");
	TH_CHECK(t, ra_recover_stale_orders(r) == 1);
	err = last_call(&fsa, RPC_SA_SET_ORDER_ERROR);
	TH_CHECK(t,
	    err != NULL &&
		json_integer_value(json_object_get(err, "id")) == 22);
	json_decref(err);
	TH_CHECK(t, last_call(&fsa, RPC_SA_FINALIZE_ORDER) == NULL);

	/* Issue 19: an order left processing with its CSR stored (the RA
	 * died, or gave up on a transient failure) is issued again, not
	 * failed. */
	reset(&fsa);
	reset(&fca);
	{
		char *more =
		    xasprintf(", \"profile\": \"classic\", "
			      "\"expires\": \"%s\", \"csr\": \"Q1NS\", "
			      "\"identifiers\": [{\"type\": \"dns\", "
			      "\"value\": \"one.a.test\"}]",
			ra_now_str(3600));

		answer_stale_order(23, more, "[]");
		free(more);
	}
	answer(&fca, RPC_CA_ISSUE, "{\"result\": {\"serial\": \"cc\"}}");
	answer(&fsa, RPC_SA_FINALIZE_ORDER, "{\"result\": {\"id\": 23}}");
	TH_CHECK(t, ra_recover_stale_orders(r) == 1);
	TH_CHECK(t, last_str_is(&fca, RPC_CA_ISSUE, "csr", "Q1NS"));
	TH_CHECK(t, last_str_is(&fsa, RPC_SA_FINALIZE_ORDER, "serial", "cc"));
	TH_CHECK(t, last_call(&fsa, RPC_SA_SET_ORDER_ERROR) == NULL);

	/* the SA down: -1, nothing crashes */
	reset(&fsa);
	TH_CHECK(t, ra_recover_stale_orders(r) == -1);
	ra_free(r);
}

TH_TEST(test_finalize_authz_retried)
{
	json_t *fin;
	struct ra *r = make_ra(1, NULL);
	int i;

	reset(&fsa);
	reset(&fva);
	answer_claim(5, 11, "http-01", "classic", 0);
	/* the SA is down twice (restarting), then the write lands */
	answer(&fsa, RPC_SA_FINALIZE_AUTHZ,
	    "{\"fail_times\": 2, \"error\": "
	    "{\"type\": \"unavailable\", \"detail\": \"database down\", "
	    "\"status\": 503}, \"result\": {\"id\": 5}}");
	answer(&fva, RPC_VA_VALIDATE,
	    "{\"result\": {\"status\": \"valid\", "
	    "\"validation_record\": []}}");
	TH_CHECK(t, perform_validation(r, 5, 11) == 0);
	for (i = 0; i < 200 && count_calls(&fsa, RPC_SA_FINALIZE_AUTHZ) < 3; i++)
		usleep(25000);
	TH_CHECK(t, count_calls(&fsa, RPC_SA_FINALIZE_AUTHZ) == 3);
	TH_CHECK(
	    t, last_str_is(&fsa, RPC_SA_FINALIZE_AUTHZ, "status", "valid"));

	/* conflict: an earlier attempt landed; not retried */
	reset(&fsa);
	answer_claim(6, 13, "http-01", "classic", 0);
	answer(&fsa, RPC_SA_FINALIZE_AUTHZ,
	    "{\"error\": {\"type\": "
	    "\"conflict\", \"detail\": \"challenge is not being validated\", "
	    "\"status\": 409}}");
	TH_CHECK(t, perform_validation(r, 6, 13) == 0);
	fin = wait_call(&fsa, RPC_SA_FINALIZE_AUTHZ);
	json_decref(fin);
	usleep(600000);
	TH_CHECK(t, count_calls(&fsa, RPC_SA_FINALIZE_AUTHZ) == 1);
	ra_free(r);
}

/* Order 9 ready, no authz to show, moved to processing; an order error
 * would be accepted. */
static void
answer_stored_cert_lookup(void)
{
	answer_ready_order();
	answer(&fsa, RPC_SA_GET_AUTHZS, "{\"result\": {\"authzs\": []}}");
	answer_processing(0);
	answer(&fsa, RPC_SA_SET_ORDER_ERROR, "{\"result\": {\"id\": 9}}");
}

TH_TEST(test_ca_error_with_stored_certificate)
{
	char *csr = make_csr_b64("one.a.test");
	struct ra *r = make_ra(1, NULL);
	struct problem *p = NULL;
	json_t *fin;

	reset_all();
	answer_stored_cert_lookup();
	answer(&fsa, RPC_SA_FINALIZE_ORDER, "{\"result\": {\"id\": 9}}");
	answer(&fsa, RPC_SA_GET_CERTIFICATES,
	    "{\"result\": {\"certificates\": "
	    "[{\"serial\": \"0abc\", \"order_id\": 9}]}}");
	/* the RA's CA call timed out after the CA stored the certificate */
	answer(&fca, RPC_CA_ISSUE,
	    "{\"error\": {\"type\": \"unavailable\", "
	    "\"detail\": \"ca.issue timed out after 15 ms\", \"status\": "
	    "503}}");
	(void)finalize(r, csr, &p);
	TH_CHECK(t, p == NULL);
	problem_free(p);
	fin = last_call(&fsa, RPC_SA_FINALIZE_ORDER);
	TH_CHECK(t,
	    fin != NULL &&
		json_integer_value(json_object_get(fin, "id")) == 9 &&
		strcmp(json_string_value(json_object_get(fin, "serial")),
		    "0abc") == 0);
	json_decref(fin);
	TH_CHECK(t, last_call(&fsa, RPC_SA_SET_ORDER_ERROR) == NULL);

	/* the lookup itself fails: the order stays processing (recovery) */
	reset(&fsa);
	answer_stored_cert_lookup();
	(void)finalize(r, csr, &p);
	problem_free(p);
	TH_CHECK(t, last_call(&fsa, RPC_SA_SET_ORDER_ERROR) == NULL);
	TH_CHECK(t, last_call(&fsa, RPC_SA_FINALIZE_ORDER) == NULL);
	free(csr);
	ra_free(r);
}

TH_TEST(test_recovery_of_validations)
{
	json_t *fin, *ls;
	struct ra *r = make_ra(1, NULL);
	time_t older;

	reset(&fsa);
	answer(&fsa, RPC_SA_GET_STALE_PROCESSING_AUTHZS,
	    "{\"result\": "
	    "{\"authz_ids\": [5]}}");
	answer(&fsa, RPC_SA_GET_AUTHZ,
	    "{\"result\": {\"id\": 5, \"account_id\""
	    ": 7, \"status\": \"pending\", \"challenges\": [{\"id\": 11, "
	    "\"type\": \"http-01\", \"status\": \"pending\"}, {\"id\": 12, "
	    "\"type\": \"dns-01\", \"status\": \"processing\"}]}}");
	answer(&fsa, RPC_SA_FINALIZE_AUTHZ, "{\"result\": {\"id\": 5}}");
	TH_CHECK(t, ra_recover_stale_authzs(r) == 1);
	ls = last_call(&fsa, RPC_SA_GET_STALE_PROCESSING_AUTHZS);
	/* VA timeout 2 s + recover_after 1 s */
	TH_CHECK(t,
	    ls != NULL &&
		time_parse_rfc3339(
		    json_string_value(json_object_get(ls, "older_than")),
		    &older) == 0 &&
		llabs((long long)(time(NULL) - older) - 3) <= 1);
	json_decref(ls);
	fin = last_call(&fsa, RPC_SA_FINALIZE_AUTHZ);
	TH_CHECK(t, fin != NULL);
	if (fin != NULL) {
		json_t *e = json_object_get(fin, "error");
		TH_CHECK(t,
		    json_integer_value(json_object_get(fin, "challenge_id")) ==
			12);
		TH_CHECK_STR(t,
		    json_string_value(json_object_get(fin, "status")),
		    "invalid");
		TH_CHECK_STR(t, json_string_value(json_object_get(e, "type")),
		    "serverInternal");
		TH_CHECK(t,
		    strstr(json_string_value(json_object_get(e, "detail")),
			"validation interrupted") != NULL);
	}
	json_decref(fin);

	/* finished meanwhile (conflict): not counted, no crash */
	answer(&fsa, RPC_SA_FINALIZE_AUTHZ,
	    "{\"error\": {\"type\": "
	    "\"conflict\", \"detail\": \"not processing\", \"status\": "
	    "409}}");
	TH_CHECK(t, ra_recover_stale_authzs(r) == 0);

	/* the SA down: -1 */
	reset(&fsa);
	TH_CHECK(t, ra_recover_stale_authzs(r) == -1);
	ra_free(r);
}

TH_TEST(test_health_names_missing_dependency)
{
	char msg[256] = "";
	struct ra *r = make_ra(0, NULL);

	TH_CHECK(t, ra_health(r, msg, sizeof(msg)) == -1);
	TH_CHECK(t, strncmp(msg, "va:", 3) == 0);
	ra_free(r);
	r = make_ra(1, NULL);
	TH_CHECK(t, ra_health(r, msg, sizeof(msg)) == 0);
	ra_free(r);
}

/*
 * The RA no longer reads the account before newOrder and finalize (issue
 * 18): the SA checks it in the statement that writes, and its refusal is
 * what the client gets. Nothing asks sa.get_account.
 */
TH_TEST(test_account_checks)
{
	json_t *res = NULL, *np;
	struct problem *p = NULL;
	struct ra *r = make_ra(1, NULL);

	reset(&fsa);
	answer(&fsa, RPC_SA_NEW_ORDER,
	    "{\"error\": {\"type\": \"accountDoesNotExist\", "
	    "\"detail\": \"Account 8 does not exist\", \"status\": 400}}");
	TH_CHECK(t,
	    call(r, RPC_RA_NEW_ORDER,
		"{\"account_id\": 8, \"identifiers\": "
		"[{\"type\": \"dns\", \"value\": \"acct.test\"}]}",
		&res, &p) == -1);
	TH_CHECK(t, p != NULL && p->type == PROB_ACCOUNT_DOES_NOT_EXIST);
	np = last_call(&fsa, RPC_SA_GET_ACCOUNT);
	TH_CHECK(t, np == NULL);
	json_decref(np);
	problem_free(p);
	ra_free(r);
}

int
main(void)
{
	struct th t = TH_INIT;
	char path[300];
	int ok;

	log_init("test_ra_rpc", LOG_LEVEL_ERROR);
	snprintf(dir, sizeof(dir), "/tmp/test_ra_rpc.%d", (int)getpid());
	if (mkdir(dir, 0700) != 0)
		return 1;
	snprintf(path, sizeof(path), "unix:%s/sa.sock", dir);
	ok = fake_start(&fsa, "sa", path, RPC_SVC_SA) == 0;
	snprintf(path, sizeof(path), "unix:%s/va.sock", dir);
	ok = ok && fake_start(&fva, "va", path, RPC_SVC_VA) == 0;
	snprintf(path, sizeof(path), "unix:%s/ca.sock", dir);
	ok = ok && fake_start(&fca, "ca", path, RPC_SVC_CA) == 0;
	if (!ok) {
		fprintf(stderr, "cannot start fake servers\n");
		printf("0 passed, 1 failed\n");
		return 1;
	}
	(void)ra;
	th_run_tests(&t);
	fake_stop(&fsa);
	fake_stop(&fva);
	fake_stop(&fca);
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	if (system(path) != 0)
		fprintf(stderr, "cleanup of %s failed\n", dir);
	return th_done(&t);
}

/* The fake SA's answer to sa.record_validation: recorded or not, the
 * authz (id 5, challenge 11) then status. */
static void
answer_record(int recorded, const char *status)
{
	char buf[512];

	snprintf(buf, sizeof(buf),
	    "{\"result\": {\"recorded\": %s, \"authz\": {\"id\": 5, "
	    "\"account_id\": 7, \"status\": \"%s\", \"identifier\": "
	    "{\"type\": \"dns\", \"value\": \"a.test\"}, \"challenges\": "
	    "[{\"id\": 11, \"type\": \"http-01\", \"token\": \"tok\", "
	    "\"status\": \"%s\"}]}}}",
	    recorded ? "true" : "false", status, status);
	answer(&fsa, RPC_SA_RECORD_VALIDATION, buf);
}

TH_TEST(test_validation_in_one_write)
{
	json_t *rec, *v;
	char *st = NULL;
	struct ra *r = make_ra(1, ", \"validation\": {\"wait\": \"10s\"}");

	/* the VA answers within validation.wait: read, VA, one write (claim
	 * and result), answered with the recorded authz */
	reset_all();
	answer_claim(5, 11, "http-01", "classic", 0);
	answer(&fva, RPC_VA_VALIDATE,
	    "{\"result\": {\"status\": \"valid\", "
	    "\"validation_record\": [{\"hostname\": \"a.test\"}]}}");
	answer_record(1, "valid");
	TH_CHECK(t, perform_validation_as(r, 5, 11, &st) == 0);
	TH_CHECK_STR(t, st, "valid");
	free(st);
	rec = last_call(&fsa, RPC_SA_RECORD_VALIDATION);
	v = last_call(&fva, RPC_VA_VALIDATE);
	TH_CHECK(t, rec != NULL && v != NULL);
	if (rec != NULL && v != NULL) {
		TH_CHECK(t,
		    json_integer_value(json_object_get(rec, "account_id")) == 7);
		TH_CHECK(t,
		    json_integer_value(json_object_get(rec, "challenge_id")) ==
			11);
		TH_CHECK_STR(t,
		    json_string_value(json_object_get(rec, "status")), "valid");
		TH_CHECK(t,
		    json_array_size(
			json_object_get(rec, "validation_record")) == 1);
		TH_CHECK(t, json_is_string(json_object_get(rec, "expires")));
	}
	TH_CHECK(t, last_str_is(&fva, RPC_VA_VALIDATE, "key_authorization",
			"tok.tp"));
	json_decref(rec);
	json_decref(v);
	TH_CHECK(t, count_calls(&fsa, RPC_SA_PEEK_CHALLENGE) == 1);
	TH_CHECK(t, count_calls(&fsa, RPC_SA_CLAIM_CHALLENGE) == 0);
	TH_CHECK(t, count_calls(&fsa, RPC_SA_FINALIZE_AUTHZ) == 0);

	/* another validation claimed it first: nothing recorded, the authz
	 * answered as it is (here already invalid) */
	reset(&fsa);
	answer_claim(5, 11, "http-01", "classic", 0);
	answer_record(0, "invalid");
	TH_CHECK(t, perform_validation_as(r, 5, 11, &st) == 0);
	TH_CHECK_STR(t, st, "invalid");
	free(st);
	TH_CHECK(t, count_calls(&fsa, RPC_SA_RECORD_VALIDATION) == 1);
	TH_CHECK(t, count_calls(&fsa, RPC_SA_FINALIZE_AUTHZ) == 0);
	ra_free(r);
}

TH_TEST(test_slow_va_falls_back_to_the_claim)
{
	char *st = NULL;
	struct ra *r = make_ra(1, ", \"validation\": {\"wait\": \"100ms\"}");

	/* the VA answers after validation.wait: the RA claims the challenge
	 * and the worker writes the result with sa.finalize_authz */
	reset_all();
	answer_claim(5, 11, "http-01", "classic", 0);
	answer(&fsa, RPC_SA_FINALIZE_AUTHZ, "{\"result\": {\"id\": 5}}");
	answer(&fva, RPC_VA_VALIDATE,
	    "{\"sleep_ms\": 600, \"result\": {\"status\": \"valid\", "
	    "\"validation_record\": []}}");
	TH_CHECK(t, perform_validation_as(r, 5, 11, &st) == 0);
	TH_CHECK_STR(t, st, "pending"); /* the fake claim's authz */
	free(st);
	TH_CHECK(t, count_calls(&fsa, RPC_SA_CLAIM_CHALLENGE) == 1);
	TH_CHECK(t,
	    last_str_is(&fsa, RPC_SA_FINALIZE_AUTHZ, "status", "valid"));
	TH_CHECK(t, count_calls(&fsa, RPC_SA_RECORD_VALIDATION) == 0);

	/* the claim lost (another POST claimed first): the authz as it is,
	 * and the late result is dropped, never written */
	reset(&fsa);
	reset(&fva);
	answer_claim(5, 11, "http-01", "classic", 0);
	answer(&fsa, RPC_SA_CLAIM_CHALLENGE,
	    "{\"result\": {\"claimed\": false, \"authz\": {\"id\": 5, "
	    "\"account_id\": 7, \"status\": \"pending\", \"identifier\": "
	    "{\"type\": \"dns\", \"value\": \"a.test\"}, \"challenges\": "
	    "[{\"id\": 11, \"type\": \"http-01\", \"token\": \"tok\", "
	    "\"status\": \"processing\"}]}}}");
	answer(&fva, RPC_VA_VALIDATE,
	    "{\"sleep_ms\": 400, \"result\": {\"status\": \"valid\", "
	    "\"validation_record\": []}}");
	TH_CHECK(t, perform_validation_as(r, 5, 11, &st) == 0);
	TH_CHECK_STR(t, st, "pending");
	free(st);
	ra_free(r); /* waits for the worker */
	TH_CHECK(t, count_calls(&fsa, RPC_SA_FINALIZE_AUTHZ) == 0);
	TH_CHECK(t, count_calls(&fsa, RPC_SA_RECORD_VALIDATION) == 0);
}

/*
 * A failed validation counts against the account's failed-validations
 * limit before its result is written: a client that sees the invalid
 * authz and at once makes a new order for the name is limited. On the
 * fallback path the worker writes the result, so it must spend first.
 */
TH_TEST(test_failed_validation_spent_before_written)
{
	char *st = NULL;
	struct ra *r = make_ra(1,
	    ", \"validation\": {\"wait\": \"100ms\"}, \"rate_limits\": "
	    "{\"failed_validations_per_identifier\": {\"limit\": 5, "
	    "\"period\": \"1h\"}}");

	reset_all();
	answer_claim(5, 11, "http-01", "classic", 0);
	answer(&fsa, RPC_SA_FINALIZE_AUTHZ, "{\"result\": {\"id\": 5}}");
	answer(&fsa, RPC_SA_RATE_LIMIT_SPEND,
	    "{\"result\": {\"allowed\": true, \"remaining\": 4}}");
	answer(&fva, RPC_VA_VALIDATE,
	    "{\"sleep_ms\": 400, \"result\": {\"status\": \"invalid\", "
	    "\"error\": {\"type\": \"urn:ietf:params:acme:error:connection\", "
	    "\"detail\": \"refused\"}, \"validation_record\": []}}");
	TH_CHECK(t, perform_validation_as(r, 5, 11, &st) == 0);
	free(st);
	TH_CHECK(t,
	    last_str_is(&fsa, RPC_SA_FINALIZE_AUTHZ, "status", "invalid"));
	TH_CHECK(t, count_calls(&fsa, RPC_SA_RATE_LIMIT_SPEND) == 1);
	TH_CHECK(t, first_call_at(&fsa, RPC_SA_RATE_LIMIT_SPEND) >= 0 &&
		first_call_at(&fsa, RPC_SA_RATE_LIMIT_SPEND) <
		    first_call_at(&fsa, RPC_SA_FINALIZE_AUTHZ));
	TH_CHECK(t, last_str_is(&fsa, RPC_SA_RATE_LIMIT_SPEND, "key",
			"failed_validation:acct:7:a.test"));
	ra_free(r);
}

/*
 * A challenge type whose row in core/challenge.c says claim_first
 * (email-reply-00: validating sends an email) is claimed before the VA
 * runs, however long validation.wait is: after the read
 * (sa.peek_challenge) comes sa.claim_challenge, never
 * sa.record_validation, and the worker writes the result.
 */
TH_TEST(test_claim_first_type_is_claimed_before_the_va)
{
	char *st = NULL;
	struct ra *r = make_ra(1, ", \"validation\": {\"wait\": \"10s\"}");

	reset_all();
	answer_claim(5, 11, "email-reply-00", "classic", 0);
	answer(&fsa, RPC_SA_FINALIZE_AUTHZ, "{\"result\": {\"id\": 5}}");
	answer(&fva, RPC_VA_VALIDATE,
	    "{\"result\": {\"status\": \"valid\", "
	    "\"validation_record\": []}}");
	TH_CHECK(t, perform_validation_as(r, 5, 11, &st) == 0);
	TH_CHECK_STR(t, st, "pending"); /* the fake claim's authz */
	free(st);
	TH_CHECK(t,
	    last_str_is(&fsa, RPC_SA_FINALIZE_AUTHZ, "status", "valid"));
	TH_CHECK(t, count_calls(&fsa, RPC_SA_CLAIM_CHALLENGE) == 1);
	TH_CHECK(t, first_call_at(&fsa, RPC_SA_CLAIM_CHALLENGE) <
		first_call_at(&fsa, RPC_SA_FINALIZE_AUTHZ));
	TH_CHECK(t, count_calls(&fsa, RPC_SA_RECORD_VALIDATION) == 0);
	ra_free(r);
}
