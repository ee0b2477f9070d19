/*
 * acme.c - the issuance loop of one worker: account once, then
 * newOrder -> authz -> http-01 (answered by our responder) -> challenge ->
 * poll authz -> finalize -> poll order -> certificate, with every request
 * timed by kind. Every response's Replay-Nonce is kept for the next request
 * and badNonce is retried.
 *
 * Failure reasons (the keys of "failures" in the report) are the ACME
 * problem type of the error that ended the issuance (e.g. "rateLimited",
 * "incorrectResponse"), or for client-side ends: "timeout" (request or
 * polling deadline), "transport" (connect / TLS / HTTP), "protocol" (a
 * response an RFC 8555 server must not send), "badCertificate" (the
 * certificate does not match the CSR), "http-<status>" (an error without a
 * problem document). What ended a failed issuance (request, URL, HTTP
 * status, the start of the answer) is kept in w->detail: the report keeps
 * the first ones per reason ("failure_examples") and stderr shows them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "jose/jose.h"
#include "cmd/anvil-loadgen/lg.h"

#define ACME_ERR_PREFIX "urn:ietf:params:acme:error:"
#define MAX_NONCE_RETRIES 5
#define MAX_NAMES 100

static double
now_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		abort();
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0)
		;
}

/* xorshift64*: per-worker, only for unique test names. */
static uint64_t
rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static void
set_fail(char *fail, size_t faillen, const char *reason)
{
	snprintf(fail, faillen, "%s", reason);
}

/*
 * w->detail = "<what> <url> -> <status> <body>": the body's first bytes on
 * one line (control characters as spaces), bounded by LG_DETAIL_MAX.
 */
static void
note(struct lg_worker *w, const char *what, const char *url, int status,
    const char *body, size_t len)
{
	size_t n, i;
	int k = snprintf(w->detail, sizeof(w->detail), "%s %s -> %d ", what,
	    url != NULL ? url : "?", status);

	if (k < 0 || (size_t)k >= sizeof(w->detail) - 1)
		return;
	n = (size_t)k;
	for (i = 0; body != NULL && i < len && n < sizeof(w->detail) - 1; i++)
		w->detail[n++] =
		    (unsigned char)body[i] < 0x20 ? ' ' : body[i];
	w->detail[n] = '\0';
}

/* note() of a 2xx answer's JSON object (borrowed) as the server sent it. */
static void
note_json(struct lg_worker *w, const char *what, const char *url,
    const json_t *obj)
{
	char *s = json_dumps(obj, JSON_COMPACT);

	note(w, what, url, 200, s, s != NULL ? strlen(s) : 0);
	free(s);
}

/* "timeout" or "transport" from a transport error message. */
static void
transport_fail(struct lg_worker *w, const char *url, const char *err,
    char *fail, size_t faillen)
{
	set_fail(fail, faillen,
	    strstr(err, "timeout") != NULL ? "timeout" : "transport");
	snprintf(w->detail, sizeof(w->detail), "%s: %s", url, err);
	if (w->run->verbose)
		log_warn("worker %d: %s: %s", w->id, url, err);
}

/* Short problem type of an error response, or "http-<status>". */
static void
problem_reason(const struct lg_resp *r, char *fail, size_t faillen)
{
	json_t *doc = json_loadb(r->body, r->body_len, 0, NULL);
	const char *t = json_string_value(json_object_get(doc, "type"));

	if (t != NULL &&
	    strncmp(t, ACME_ERR_PREFIX, strlen(ACME_ERR_PREFIX)) == 0)
		set_fail(fail, faillen, t + strlen(ACME_ERR_PREFIX));
	else if (t != NULL)
		set_fail(fail, faillen, t);
	else
		snprintf(fail, faillen, "http-%d", r->status);
	json_decref(doc);
}

static int
get_nonce(struct lg_worker *w, char *fail, size_t faillen)
{
	struct lg_resp r = {0};
	char err[256];
	double t0 = now_ms();
	int rc = -1;

	if (lg_http_request(w->conn, "HEAD", w->run->new_nonce_url, NULL, NULL,
		0, &r, err, sizeof(err)) != 0) {
		transport_fail(w, w->run->new_nonce_url, err, fail, faillen);
		goto out;
	}
	lg_stats_add(&w->stats, LG_REQ_NONCE, now_ms() - t0);
	if ((r.status != 200 && r.status != 204) || r.nonce == NULL) {
		w->stats.errors[LG_REQ_NONCE]++;
		problem_reason(&r, fail, faillen);
		note(w, "HEAD", w->run->new_nonce_url, r.status, r.body,
		    r.body_len);
		goto out;
	}
	free(w->nonce);
	w->nonce = r.nonce;
	r.nonce = NULL;
	rc = 0;
out:
	lg_resp_clear(&r);
	return rc;
}

/*
 * Signed POST of payload (NULL: POST-as-GET) to url, timed as kind.
 * use_jwk: embed the account JWK instead of the kid (newAccount).
 * 0 on a 2xx answer (*resp filled; caller clears), else -1 and fail set.
 */
static int
signed_post(struct lg_worker *w, enum lg_req kind, const char *url,
    const char *payload, int use_jwk, struct lg_resp *resp, char *fail,
    size_t faillen)
{
	json_t *hdr = NULL;
	char *jws = NULL, err[256];
	int attempt, rc = -1;

	for (attempt = 0; attempt <= MAX_NONCE_RETRIES; attempt++) {
		double t0;

		if (w->nonce == NULL && get_nonce(w, fail, faillen) != 0)
			goto out;
		json_decref(hdr);
		hdr = json_pack("{s:s, s:s}", "url", url, "nonce", w->nonce);
		if (hdr == NULL ||
		    (use_jwk ? json_object_set(hdr, "jwk", w->account_jwk)
			     : json_object_set_new(
				   hdr, "kid", json_string(w->kid))) != 0) {
			set_fail(fail, faillen, "protocol");
			goto out;
		}
		free(jws);
		jws = jws_sign(w->account_key, "ES256", hdr,
		    (const uint8_t *)payload,
		    payload != NULL ? strlen(payload) : 0);
		free(w->nonce);
		w->nonce = NULL;
		if (jws == NULL) {
			log_bug("jws_sign failed");
			set_fail(fail, faillen, "protocol");
			goto out;
		}
		t0 = now_ms();
		if (lg_http_request(w->conn, "POST", url,
			"application/jose+json", jws, strlen(jws), resp, err,
			sizeof(err)) != 0) {
			transport_fail(w, url, err, fail, faillen);
			goto out;
		}
		lg_stats_add(&w->stats, kind, now_ms() - t0);
		w->nonce = resp->nonce;
		resp->nonce = NULL;
		if (resp->status >= 200 && resp->status < 300) {
			rc = 0;
			goto out;
		}
		problem_reason(resp, fail, faillen);
		if (strcmp(fail, "badNonce") != 0 ||
		    attempt == MAX_NONCE_RETRIES) {
			w->stats.errors[kind]++;
			note(w, lg_req_name(kind), url, resp->status,
			    resp->body, resp->body_len);
			if (w->run->verbose)
				log_warn("worker %d: %s -> %d %.300s", w->id,
				    url, resp->status, resp->body);
			goto out;
		}
		w->stats.bad_nonce_retries++;
	}
out:
	json_decref(hdr);
	free(jws);
	return rc;
}

/* Parses a 2xx body of the kind request to url as a JSON object. NULL
 * and fail "protocol". */
static json_t *
body_json(struct lg_worker *w, enum lg_req kind, const char *url,
    const struct lg_resp *r, char *fail, size_t faillen)
{
	json_t *j = json_loadb(r->body, r->body_len, 0, NULL);

	if (!json_is_object(j)) {
		json_decref(j);
		set_fail(fail, faillen, "protocol");
		note(w, lg_req_name(kind), url, r->status, r->body,
		    r->body_len);
		return NULL;
	}
	return j;
}

static const char *
jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* POST-as-GET url into *out (JSON object). 0 or -1 with fail. */
static int
fetch_json(struct lg_worker *w, enum lg_req kind, const char *url, json_t **out,
    char *fail, size_t faillen)
{
	struct lg_resp r = {0};
	int rc = -1;

	*out = NULL;
	if (signed_post(w, kind, url, NULL, 0, &r, fail, faillen) != 0)
		goto out;
	*out = body_json(w, kind, url, &r, fail, faillen);
	if (*out != NULL)
		rc = 0;
out:
	lg_resp_clear(&r);
	return rc;
}

/* Reason an invalid authz failed: its challenge's error type. */
static void
authz_invalid_reason(const json_t *authz, char *fail, size_t faillen)
{
	const json_t *chals = json_object_get(authz, "challenges"), *c;
	size_t i;

	set_fail(fail, faillen, "authzInvalid");
	json_array_foreach(chals, i, c)
	{
		const char *t = jstr(json_object_get(c, "error"), "type");

		if (t == NULL)
			continue;
		if (strncmp(t, ACME_ERR_PREFIX, strlen(ACME_ERR_PREFIX)) == 0)
			t += strlen(ACME_ERR_PREFIX);
		set_fail(fail, faillen, t);
		return;
	}
}

/*
 * Starts http-01 for one authz: fetches it; if pending, publishes the key
 * authorization and POSTs the challenge. *token (caller frees) is set when
 * something was published. *pending is 1 if the authz must be polled.
 */
static int
start_authz(struct lg_worker *w, const char *url, char **token, int *pending,
    char *fail, size_t faillen)
{
	json_t *authz = NULL, *c;
	struct lg_resp r = {0};
	const char *st, *curl = NULL, *tok = NULL;
	char *ka = NULL;
	size_t i;
	int rc = -1;

	*pending = 0;
	if (fetch_json(w, LG_REQ_AUTHZ, url, &authz, fail, faillen) != 0)
		goto out;
	st = jstr(authz, "status");
	if (st != NULL && strcmp(st, "valid") == 0) {
		rc = 0; /* reused authorization */
		goto out;
	}
	if (st == NULL || strcmp(st, "pending") != 0) {
		set_fail(fail, faillen, "protocol");
		note_json(w, lg_req_name(LG_REQ_AUTHZ), url, authz);
		goto out;
	}
	json_array_foreach(json_object_get(authz, "challenges"), i, c)
	{
		const char *t = jstr(c, "type");

		if (t != NULL && strcmp(t, "http-01") == 0) {
			curl = jstr(c, "url");
			tok = jstr(c, "token");
			break;
		}
	}
	if (curl == NULL || tok == NULL) {
		set_fail(fail, faillen, "noHttp01Challenge");
		goto out;
	}
	ka = jose_key_authorization(tok, w->thumbprint);
	lg_responder_put(w->run->responder, tok, ka);
	*token = xstrdup(tok);
	if (signed_post(
		w, LG_REQ_CHALLENGE, curl, "{}", 0, &r, fail, faillen) != 0)
		goto out;
	*pending = 1;
	rc = 0;
out:
	lg_resp_clear(&r);
	free(ka);
	json_decref(authz);
	return rc;
}

/* Polls an authz until valid. 0, or -1 with fail. */
static int
poll_authz(struct lg_worker *w, const char *url, double deadline, char *fail,
    size_t faillen)
{
	for (;;) {
		json_t *authz = NULL;
		const char *st;
		int done = 0;

		if (now_ms() > deadline) {
			set_fail(fail, faillen, "timeout");
			return -1;
		}
		sleep_ms(w->run->poll_ms);
		if (fetch_json(
			w, LG_REQ_POLL_AUTHZ, url, &authz, fail, faillen) != 0)
			return -1;
		st = jstr(authz, "status");
		if (st == NULL)
			st = "";
		if (strcmp(st, "valid") == 0)
			done = 1;
		else if (strcmp(st, "invalid") == 0) {
			authz_invalid_reason(authz, fail, faillen);
			done = -1;
		} else if (strcmp(st, "pending") != 0 &&
		    strcmp(st, "processing") != 0) {
			set_fail(fail, faillen, "protocol");
			done = -1;
		}
		if (done < 0)
			note_json(w, lg_req_name(LG_REQ_POLL_AUTHZ), url, authz);
		json_decref(authz);
		if (done != 0)
			return done > 0 ? 0 : -1;
	}
}

/* Finalizes and polls the order until valid; *cert_url malloc'd. */
static int
finalize_order(struct lg_worker *w, const char *order_url,
    const char *finalize_url, EVP_PKEY *key, const char *const *names, size_t n,
    double deadline, char **cert_url, char *fail, size_t faillen)
{
	struct lg_resp r = {0};
	json_t *order = NULL, *payload = NULL;
	char *csr = NULL, *body = NULL;
	/* where the order shown last came from */
	const char *what = lg_req_name(LG_REQ_FINALIZE), *url = finalize_url;
	int rc = -1;

	csr = lg_csr_b64(key, names, n);
	payload = csr != NULL ? json_pack("{s:s}", "csr", csr) : NULL;
	body = payload != NULL ? json_dumps(payload, JSON_COMPACT) : NULL;
	if (body == NULL) {
		log_bug("cannot build the CSR");
		set_fail(fail, faillen, "protocol");
		goto out;
	}
	if (signed_post(w, LG_REQ_FINALIZE, finalize_url, body, 0, &r, fail,
		faillen) != 0)
		goto out;
	order = body_json(w, LG_REQ_FINALIZE, finalize_url, &r, fail, faillen);
	if (order == NULL)
		goto out;
	for (;;) {
		const char *st = jstr(order, "status");

		if (st == NULL)
			st = "";
		if (strcmp(st, "valid") == 0 && jstr(order, "certificate")) {
			*cert_url = xstrdup(jstr(order, "certificate"));
			rc = 0;
			goto out;
		}
		if (strcmp(st, "invalid") == 0) {
			const char *t =
			    jstr(json_object_get(order, "error"), "type");

			if (t != NULL &&
			    strncmp(t, ACME_ERR_PREFIX,
				strlen(ACME_ERR_PREFIX)) == 0)
				t += strlen(ACME_ERR_PREFIX);
			set_fail(fail, faillen, t != NULL ? t : "orderInvalid");
			note_json(w, what, url, order);
			goto out;
		}
		if (strcmp(st, "processing") != 0 && strcmp(st, "ready") != 0 &&
		    strcmp(st, "valid") != 0) {
			set_fail(fail, faillen, "protocol");
			note_json(w, what, url, order);
			goto out;
		}
		if (now_ms() > deadline) {
			set_fail(fail, faillen, "timeout");
			goto out;
		}
		sleep_ms(w->run->poll_ms);
		json_decref(order);
		order = NULL;
		if (fetch_json(w, LG_REQ_POLL_ORDER, order_url, &order, fail,
			faillen) != 0)
			goto out;
		what = lg_req_name(LG_REQ_POLL_ORDER);
		url = order_url;
	}
out:
	lg_resp_clear(&r);
	json_decref(order);
	json_decref(payload);
	free(csr);
	free(body);
	return rc;
}

/* newOrder payload for names. New reference. */
static char *
order_payload(char *const *names, size_t n)
{
	json_t *ids = json_array(), *p;
	char *out;
	size_t i;

	for (i = 0; i < n; i++)
		if (json_array_append_new(ids,
			json_pack("{s:s, s:s}", "type", "dns", "value",
			    names[i])) != 0)
			log_bug("json_array_append_new failed");
	p = json_pack("{s:o}", "identifiers", ids);
	out = p != NULL ? json_dumps(p, JSON_COMPACT) : NULL;
	json_decref(p);
	return out;
}

/* One whole issuance. 0, or -1 with the failure reason in fail. */
static int
issue_one(struct lg_worker *w, char *fail, size_t faillen)
{
	struct lg_run *run = w->run;
	size_t n = (size_t)run->names_per_order, i, nauthz = 0;
	char *names[MAX_NAMES] = {0}, *tokens[MAX_NAMES] = {0};
	int pending[MAX_NAMES] = {0};
	char *payload = NULL, *order_url = NULL, *cert_url = NULL, err[256];
	json_t *order = NULL, *authzs;
	struct lg_resp r = {0};
	EVP_PKEY *key = lg_keypool_get(
	    run->keys, (uint64_t)atomic_fetch_add(&run->key_seq, 1));
	double deadline = now_ms() + (double)run->issuance_timeout_ms;
	const char *fin;
	int rc = -1;

	for (i = 0; i < n; i++)
		names[i] = w->renew_names != NULL
		    ? xstrdup(w->renew_names[i])
		    : xasprintf("%016llx.%s",
			  (unsigned long long)rng_next(&w->rng), run->suffix);
	payload = order_payload(names, n);
	if (payload == NULL) {
		set_fail(fail, faillen, "protocol");
		goto out;
	}
	if (signed_post(w, LG_REQ_NEW_ORDER, run->new_order_url, payload, 0, &r,
		fail, faillen) != 0)
		goto out;
	order = body_json(w, LG_REQ_NEW_ORDER, run->new_order_url, &r, fail,
	    faillen);
	if (order == NULL)
		goto out;
	authzs = json_object_get(order, "authorizations");
	fin = jstr(order, "finalize");
	if (r.location == NULL || fin == NULL || !json_is_array(authzs) ||
	    json_array_size(authzs) == 0 ||
	    json_array_size(authzs) > MAX_NAMES) {
		set_fail(fail, faillen, "protocol");
		note(w, "newOrder (Location, finalize, authorizations)",
		    run->new_order_url, r.status, r.body, r.body_len);
		goto out;
	}
	order_url = xstrdup(r.location);
	nauthz = json_array_size(authzs);
	for (i = 0; i < nauthz; i++) {
		const char *u = json_string_value(json_array_get(authzs, i));

		if (u == NULL) {
			set_fail(fail, faillen, "protocol");
			note_json(w, "newOrder (authorizations)",
			    run->new_order_url, order);
			goto out;
		}
		if (start_authz(w, u, &tokens[i], &pending[i], fail, faillen) !=
		    0)
			goto out;
	}
	for (i = 0; i < nauthz; i++) {
		if (pending[i] &&
		    poll_authz(w, json_string_value(json_array_get(authzs, i)),
			deadline, fail, faillen) != 0)
			goto out;
	}
	if (finalize_order(w, order_url, fin, key, (const char *const *)names,
		n, deadline, &cert_url, fail, faillen) != 0)
		goto out;
	lg_resp_clear(&r);
	if (signed_post(w, LG_REQ_CERT, cert_url, NULL, 0, &r, fail, faillen) !=
	    0)
		goto out;
	if (lg_cert_check(r.body, r.body_len, key, (const char *const *)names,
		n, err, sizeof(err)) != 0) {
		if (run->verbose)
			log_warn("worker %d: %s", w->id, err);
		snprintf(w->detail, sizeof(w->detail), "%s: %s", cert_url, err);
		set_fail(fail, faillen, "badCertificate");
		goto out;
	}
	rc = 0;
out:
	for (i = 0; i < MAX_NAMES; i++) {
		if (tokens[i] != NULL)
			lg_responder_del(run->responder, tokens[i]);
		free(tokens[i]);
		free(names[i]);
	}
	lg_resp_clear(&r);
	json_decref(order);
	free(payload);
	free(order_url);
	free(cert_url);
	return rc;
}

/* Account key, JWK, thumbprint and newAccount. 0 or -1 with fail. */
static int
create_account(struct lg_worker *w, char *fail, size_t faillen)
{
	struct jwk *k = NULL;
	struct problem *prob = NULL;
	struct lg_resp r = {0};
	int rc = -1;

	w->account_key = lg_key_new_p256();
	w->account_jwk =
	    w->account_key != NULL ? jwk_from_pkey(w->account_key) : NULL;
	if (w->account_jwk == NULL ||
	    jwk_parse(w->account_jwk, NULL, &k, &prob) != 0) {
		log_bug("cannot make an account key");
		set_fail(fail, faillen, "protocol");
		goto out;
	}
	w->thumbprint = jwk_thumbprint(k);
	if (signed_post(w, LG_REQ_NEW_ACCOUNT, w->run->new_account_url,
		"{\"termsOfServiceAgreed\":true}", 1, &r, fail, faillen) != 0)
		goto out;
	if (r.location == NULL) {
		set_fail(fail, faillen, "protocol");
		note(w, "newAccount (no Location)", w->run->new_account_url,
		    r.status, r.body, r.body_len);
		goto out;
	}
	w->kid = xstrdup(r.location);
	rc = 0;
out:
	lg_resp_clear(&r);
	problem_free(prob);
	jwk_free(k);
	return rc;
}

int
lg_fetch_directory(
    struct lg_run *run, const char *url, char *err, size_t errlen)
{
	struct lg_conn *c = lg_conn_new(run->ssl_ctx, run->timeout_ms);
	struct lg_resp r = {0};
	json_t *dir = NULL;
	int rc = -1;

	if (lg_http_request(c, "GET", url, NULL, NULL, 0, &r, err, errlen) != 0)
		goto out;
	if (r.status != 200) {
		snprintf(
		    err, errlen, "directory %s answered %d", url, r.status);
		goto out;
	}
	dir = json_loadb(r.body, r.body_len, 0, NULL);
	if (jstr(dir, "newNonce") == NULL || jstr(dir, "newAccount") == NULL ||
	    jstr(dir, "newOrder") == NULL) {
		snprintf(err, errlen,
		    "%s is not an ACME directory (newNonce, newAccount, "
		    "newOrder)",
		    url);
		goto out;
	}
	run->new_nonce_url = xstrdup(jstr(dir, "newNonce"));
	run->new_account_url = xstrdup(jstr(dir, "newAccount"));
	run->new_order_url = xstrdup(jstr(dir, "newOrder"));
	rc = 0;
out:
	json_decref(dir);
	lg_resp_clear(&r);
	lg_conn_free(c);
	return rc;
}

void
lg_run_clear_directory(struct lg_run *run)
{
	free(run->new_nonce_url);
	free(run->new_account_url);
	free(run->new_order_url);
	run->new_nonce_url = run->new_account_url = run->new_order_url = NULL;
}

/* Counts a failure; the first details per reason go to stderr too. */
static void
worker_fail(struct lg_worker *w, const char *fail)
{
	if (lg_stats_fail(&w->stats, fail, w->detail))
		log_warn("worker %d: %s: %s", w->id, fail, w->detail);
}

/*
 * --renew: the worker's own names, issued once before the window (not
 * counted) so that every measured order is a second order for names this
 * account holds valid authorizations for (RFC 8555 §7.1.3's authz reuse:
 * no challenge, no validation). 0, or -1 after counting the failure.
 */
static int
renew_prime(struct lg_worker *w)
{
	char fail[96];
	int i, n = w->run->names_per_order;

	w->renew_names = xcalloc((size_t)n, sizeof(*w->renew_names));
	for (i = 0; i < n; i++)
		w->renew_names[i] = xasprintf("%016llx.%s",
		    (unsigned long long)rng_next(&w->rng), w->run->suffix);
	w->detail[0] = '\0';
	if (issue_one(w, fail, sizeof(fail)) == 0)
		return 0;
	worker_fail(w, fail);
	return -1;
}

static int
should_continue(struct lg_run *run)
{
	if (run->count > 0)
		return atomic_fetch_sub(&run->remaining, 1) > 0;
	return time_mono_ms() < run->deadline_mono_ms;
}

void *
lg_worker_main(void *arg)
{
	struct lg_worker *w = arg;
	char fail[96];
	int brc;

	lg_stats_init(&w->stats);
	random_bytes((uint8_t *)&w->rng, sizeof(w->rng));
	w->rng |= 1;
	w->conn = lg_conn_new(w->run->ssl_ctx, w->run->timeout_ms);
	if (create_account(w, fail, sizeof(fail)) == 0)
		w->account_ok = 1;
	else
		worker_fail(w, fail);
	if (w->account_ok && w->run->renew && renew_prime(w) != 0)
		w->account_ok = 0;
	brc = pthread_barrier_wait(&w->run->ready_barrier);
	if (brc != 0 && brc != PTHREAD_BARRIER_SERIAL_THREAD)
		abort();
	brc = pthread_barrier_wait(&w->run->go_barrier);
	if (brc != 0 && brc != PTHREAD_BARRIER_SERIAL_THREAD)
		abort();
	while (w->account_ok && should_continue(w->run)) {
		double t0 = now_ms();

		w->detail[0] = '\0';
		if (issue_one(w, fail, sizeof(fail)) == 0) {
			double t1 = now_ms();

			lg_stats_issued(&w->stats,
			    (t1 - (double)w->run->start_mono_ms) / 1000.0,
			    t1 - t0);
			lg_stats_add(&w->stats, LG_REQ_ISSUANCE, t1 - t0);
		} else {
			worker_fail(w, fail);
			sleep_ms(20); /* do not spin on a dead server */
		}
	}
	return NULL;
}

void
lg_worker_clear(struct lg_worker *w)
{
	EVP_PKEY_free(w->account_key);
	json_decref(w->account_jwk);
	free(w->thumbprint);
	free(w->kid);
	free(w->nonce);
	lg_conn_free(w->conn);
	lg_stats_clear(&w->stats);
	for (int i = 0; w->renew_names != NULL && i < w->run->names_per_order;
	     i++)
		free(w->renew_names[i]);
	free(w->renew_names);
	w->renew_names = NULL;
	w->account_key = NULL;
	w->account_jwk = NULL;
	w->thumbprint = w->kid = w->nonce = NULL;
	w->conn = NULL;
}
