/*
 * finalize.c - ra.finalize_order: the order must be ready, the CSR passes
 * every check, the SA claims the order (exactly one finalize wins), then
 * the CA issues, synchronously or on a worker thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jose/jose.h"
#include "ra/ra_int.h"

/*
 * An asynchronous finalize's outcome, shared by the worker issuing it and
 * the handler waiting for it up to finalize.wait (the last of the two to
 * let go frees it).
 */
struct fwait {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	int refs;
	int done;
	json_t *issued; /* ca.issue's answer when the order became valid */
};

struct fjob {
	struct ra *ra;
	char *rid;
	json_t *order;
	char *csr;
	struct fwait *w; /* NULL when nobody waits */
	struct ra_claim claim;
};

/*
 * A new waiter holding two references (the worker's and the waiter's), or
 * NULL when its lock cannot be made: then nobody waits, and the client is
 * answered "processing" and polls as it would after finalize.wait.
 */
static struct fwait *
fwait_new(const char *rid)
{
	struct fwait *w = xcalloc(1, sizeof(*w));

	if (pthread_mutex_init(&w->mu, NULL) != 0) {
		free(w);
		w = NULL;
	} else if (pthread_cond_init(&w->cond, NULL) != 0) {
		pthread_mutex_destroy(&w->mu);
		free(w);
		w = NULL;
	}
	if (w == NULL) {
		log_msg(LOG_LEVEL_ERROR, rid,
		    "finalize: cannot create a lock; not waiting for issuance");
		return NULL;
	}
	w->refs = 2;
	return w;
}

static void
fwait_release(struct fwait *w)
{
	int last;

	pthread_mutex_lock(&w->mu);
	last = --w->refs == 0;
	pthread_mutex_unlock(&w->mu);
	if (!last)
		return;
	json_decref(w->issued);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cond);
	free(w);
}

/* The worker is done: issued (taken, may be NULL) for the waiter. */
static void
fwait_done(struct fwait *w, json_t *issued)
{
	pthread_mutex_lock(&w->mu);
	w->done = 1;
	w->issued = issued;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->mu);
	fwait_release(w);
}

/*
 * Waits up to ms for the worker and releases the handler's reference. 1
 * when the worker is done (*issued: ca.issue's answer, new, when the order
 * became valid, else NULL), 0 when it is still issuing.
 */
static int
fwait_for(struct fwait *w, int64_t ms, json_t **issued)
{
	struct timespec ts;
	int done;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->mu);
	while (!w->done &&
	    pthread_cond_timedwait(&w->cond, &w->mu, &ts) == 0)
		;
	done = w->done;
	*issued = done ? json_incref(w->issued) : NULL;
	pthread_mutex_unlock(&w->mu);
	fwait_release(w);
	return done;
}

/*
 * After ca.issue failed with `unavailable` (a timeout, the CA restarting),
 * the CA may still be storing the certificate: look this many more times,
 * this far apart, before declaring the issuance failed.
 */
#define RA_ISSUE_RECHECKS 3
#define RA_ISSUE_RECHECK_MS 1000
/*
 * A transient failure of ca.issue (the CA, the SA or PostgreSQL briefly
 * unavailable) is retried for this long at most, and never past the
 * order's expiry; after that the order stays processing and the recovery
 * sweep issues it again from the stored CSR (recovery.c).
 */
#define RA_ISSUE_RETRY_BUDGET_MS 120000
#define RA_ISSUE_RETRY_MAX_PAUSE_MS 4000

/* See ra_int.h. */
void
ra_claim_new(struct ra_claim *cl)
{
	uint8_t b[RA_CLAIM_BYTES];
	char *hex;

	random_bytes(b, sizeof(b));
	hex = hex_encode(b, sizeof(b));
	snprintf(cl->token, sizeof(cl->token), "%s", hex);
	free(hex);
	cl->at_ms = time_now_ms();
}

/*
 * The last moment the CA may sign for a claim (epoch ms): before another
 * RA's recovery may take the order over (recover_after after the claim was
 * set or refreshed), with a quarter of it to spare for clocks and the
 * store. since_ms: when the claim was set (a serial it reserved) or, for a
 * serial the CA reserves under the claim (which refreshes it), now.
 */
static int64_t
claim_sign_by(const struct ra *ra, int64_t since_ms)
{
	return since_ms + ra->cfg.recover_after_ms * 3 / 4;
}

/* ca.issue's claim and deadline for the next attempt into params: the
 * claim's serial only while its deadline lies ahead (else the CA reserves
 * one under the claim, which refreshes it). */
static void
claim_params(struct ra *ra, const struct ra_claim *cl, json_t *params)
{
	int64_t by;

	if (cl == NULL || cl->token[0] == '\0')
		return;
	by = claim_sign_by(ra, cl->at_ms);
	if (json_object_get(params, "serial") != NULL &&
	    by < time_now_ms() + 1000)
		json_object_del(params, "serial");
	if (json_object_get(params, "serial") == NULL)
		by = claim_sign_by(ra, time_now_ms());
	json_object_set_new(params, "claim", json_string(cl->token));
	json_object_set_new(params, "sign_by_ms", json_integer(by));
}

/* 1 when a ca.issue failure p may go away by itself: retry, never fail
 * the order for it. */
static int
issue_transient(const struct problem *p)
{
	return p->type == PROB_UNAVAILABLE || p->type == PROB_CONFLICT;
}

static int
ra_is_stopping(struct ra *ra)
{
	int s;

	pthread_mutex_lock(&ra->lock);
	s = ra->stopping;
	pthread_mutex_unlock(&ra->lock);
	return s;
}

/*
 * ca.issue failed with p (borrowed): the CA may have stored the certificate
 * all the same (its answer lost). 1 and *serial (caller frees) if a stored
 * certificate is found, 0 if there is none, -1 if the SA could not be asked
 * (the order is then left processing for recovery).
 */
static int
issued_anyway(struct ra *ra, const char *rid, const json_t *order,
    const struct problem *p, char **serial)
{
	int i, tries = p->type == PROB_UNAVAILABLE ? 1 + RA_ISSUE_RECHECKS : 1;

	*serial = NULL;
	for (i = 0; i < tries; i++) {
		if (i > 0)
			ra_sleep_ms(RA_ISSUE_RECHECK_MS);
		if (ra_find_order_cert(ra, rid, order, serial) != 0)
			return -1;
		if (*serial != NULL)
			return 1;
	}
	return 0;
}

/* ca.issue's params for order (borrowed) and its CSR: new. */
static json_t *
issue_params(const json_t *order, const char *csr_b64)
{
	json_t *params, *v;

	/* finalize_order: the SA makes the order valid in the transaction
	 * that stores the certificate (no separate sa.finalize_order). */
	params = json_pack("{s:s,s:o,s:O,s:O,s:O,s:b}", "csr", csr_b64,
	    "identifiers",
	    ra_rats_cert_identifiers(json_object_get(order, "identifiers")),
	    "profile",
	    json_object_get(order, "profile"), "account_id",
	    json_object_get(order, "account_id"), "order_id",
	    json_object_get(order, "id"), "finalize_order", 1);
	if ((v = json_object_get(order, "not_before")) != NULL &&
	    json_is_string(v))
		json_object_set(params, "not_before", v);
	if ((v = json_object_get(order, "not_after")) != NULL &&
	    json_is_string(v))
		json_object_set(params, "not_after", v);
	ra_star_issue_window(order, params);
	if (ra_tkauth_issue_ca(order, csr_b64))
		json_object_set_new(params, "ca", json_true());
	/* The serial the claim reserved: for the first attempt only (a
	 * retry may follow a signature with it: never sign twice with one
	 * serial, the CA reserves another then). */
	if ((v = json_object_get(order, "reserved_serial")) != NULL &&
	    json_is_string(v))
		json_object_set(params, "serial", v);
	return params;
}

/* Remembers the serial form of the CA's answer res (borrowed): the next
 * claims reserve a serial of that form (serial_for_claim). */
static void
learn_serial_form(struct ra *ra, const json_t *res)
{
	const char *s = json_string_value(json_object_get(res, "serial"));
	size_t n = s ? strlen(s) : 0;
	unsigned b;

	if (n < 4 || n % 2 != 0 || n > 64 || sscanf(s, "%2x", &b) != 1 ||
	    b == 0 || b > 127)
		return;
	pthread_mutex_lock(&ra->lock);
	ra->serial_prefix = (int)b;
	ra->serial_len = (int)(n / 2);
	pthread_mutex_unlock(&ra->lock);
}

/*
 * Adds to the claim's params cp (borrowed) a fresh serial of the CA's
 * form, to reserve with the claim (one RPC and one commit less than the
 * CA's sa.reserve_serial), and when it expires: the order's notAfter, else
 * the profile's full validity from now. Nothing before the CA's form is
 * known, nor for a STAR order (its certificates come from the renewal
 * path).
 */
static void
serial_for_claim(struct ra *ra, const json_t *order, json_t *cp)
{
	const struct profile *prof;
	uint8_t b[32];
	char *hex, t[32];
	int prefix, len;
	int64_t na;

	pthread_mutex_lock(&ra->lock);
	prefix = ra->serial_prefix;
	len = ra->serial_len;
	pthread_mutex_unlock(&ra->lock);
	if (len < 2 || len > (int)sizeof(b) ||
	    json_object_get(order, "star") != NULL)
		return;
	if (ra_time_get(order, "not_after", &na) != 0) {
		prof = profiles_find(ra->profiles,
		    json_string_value(json_object_get(order, "profile")));
		if (prof == NULL)
			return;
		na = time_now_ms() + prof->validity_ms;
	}
	b[0] = (uint8_t)prefix;
	random_bytes(b + 1, (size_t)len - 1);
	hex = serial_hex(b, (size_t)len);
	json_object_set_new(cp, "reserve_serial", json_string(hex));
	json_object_set_new(
	    cp, "serial_expires", json_string(ra_time_fmt(na, t, sizeof(t))));
	free(hex);
}

/*
 * sa.set_order_processing's params for order (borrowed) with the CSR (b64url),
 * its key's hash and thumbprint (tp may be NULL), a serial reserved with
 * the claim (serial_for_claim) and a fresh claim token (*cl): new.
 */
static json_t *
claim_params_new(struct ra *ra, const json_t *order, const char *csr,
    const char *khash, const char *tp, struct ra_claim *cl)
{
	json_t *cp;

	ra_claim_new(cl);
	cp = json_pack("{s:O,s:s,s:s,s:s}", "id", json_object_get(order, "id"),
	    "csr", csr, "key_hash", khash, "claim", cl->token);
	if (tp != NULL)
		json_object_set_new(cp, "csr_thumbprint", json_string(tp));
	serial_for_claim(ra, order, cp);
	return cp;
}

/* The CA refused: order id (borrowed) becomes invalid with p (taken; a
 * notFound from the CA is an internal error for the client). */
static void
fail_order(struct ra *ra, const char *rid, json_t *id, struct problem *p)
{
	struct problem *q = NULL;
	json_t *r2 = NULL;

	if (p->type == PROB_NOT_FOUND) {
		q = problem_new(PROB_SERVER_INTERNAL, "Issuance failed: %s",
		    p->detail ? p->detail : "CA unavailable");
		problem_free(p);
		p = q;
		q = NULL;
	}
	if (ra_call(ra->sa, RPC_SA_SET_ORDER_ERROR,
		json_pack(
		    "{s:O,s:o}", "id", id, "error", problem_to_rpc_json(p)),
		rid, &r2, &q) != 0) {
		log_msg(LOG_LEVEL_ERROR, rid,
		    "order %lld: cannot record the error: %s",
		    (long long)json_integer_value(id),
		    q->detail ? q->detail : "error");
	}
	log_audit(rid, "issuance", "order=%lld result=failed",
	    (long long)json_integer_value(id));
	ra_count(ra, "anvil_ra_orders_final_total", "status=\"invalid\"");
	json_decref(r2);
	problem_free(p);
	problem_free(q);
}

/* Order (borrowed) is valid with certificate serial: audit and count. */
static void
order_valid(
    struct ra *ra, const char *rid, const json_t *order, const char *serial)
{
	log_audit(rid, "issuance",
	    "order=%lld account=%lld serial=%s "
	    "result=valid",
	    (long long)json_integer_value(json_object_get(order, "id")),
	    (long long)json_integer_value(json_object_get(order, "account_id")),
	    serial);
	ra_count(ra, "anvil_ra_certificates_total", NULL);
	ra_count(ra, "anvil_ra_orders_final_total", "status=\"valid\"");
}

/*
 * sa.finalize_order for order (borrowed) and its stored certificate serial
 * (the CA's store did not make it valid, or its answer was lost). A
 * conflict means it is valid already (made so with its certificate); any
 * other failure leaves it processing for recovery (logged).
 */
static void
mark_valid(
    struct ra *ra, const char *rid, const json_t *order, const char *serial)
{
	json_t *id = json_object_get(order, "id"), *r2 = NULL;
	struct problem *q = NULL;

	if (ra_call(ra->sa, RPC_SA_FINALIZE_ORDER,
		json_pack("{s:O,s:s}", "id", id, "serial", serial), rid, &r2,
		&q) == 0)
		order_valid(ra, rid, order, serial);
	else if (q->type == PROB_CONFLICT) {
		log_msg(LOG_LEVEL_INFO, rid, "order %lld: %s",
		    (long long)json_integer_value(id),
		    q->detail ? q->detail : "conflict");
		order_valid(ra, rid, order, serial);
	} else
		log_msg(LOG_LEVEL_ERROR, rid,
		    "order %lld: cannot mark valid "
		    "(recovery will retry): %s",
		    (long long)json_integer_value(id),
		    q->detail ? q->detail : "error");
	json_decref(r2);
	problem_free(q);
}

/* See ra_int.h. order borrowed (status processing). */
void
ra_issue_order(struct ra *ra, const char *rid, const json_t *order,
    const char *csr_b64, const struct ra_claim *cl, json_t **issued)
{
	json_t *res = NULL, *params;
	struct problem *p = NULL;
	json_t *id = json_object_get(order, "id");
	const char *serial;
	char *found = NULL;
	int any;
	int64_t deadline = time_mono_ms() + RA_ISSUE_RETRY_BUDGET_MS;
	int64_t expires, pause = 250;

	if (ra_time_get(order, "expires", &expires) == 0 &&
	    deadline > time_mono_ms() + (expires - time_now_ms()))
		deadline = time_mono_ms() + (expires - time_now_ms());
	if (ra->cfg.slow_finalize_ms > 0)
		ra_sleep_ms(ra->cfg.slow_finalize_ms);
	params = issue_params(order, csr_b64);
	claim_params(ra, cl, params);
	while (ra_call(ra->ca, RPC_CA_ISSUE, json_incref(params), rid, &res,
		   &p) != 0) {
		log_msg(LOG_LEVEL_WARN, rid, "order %lld: issuance failed: %s",
		    (long long)json_integer_value(id),
		    p->detail ? p->detail : "error");
		any = issued_anyway(ra, rid, order, p, &found);
		if (any < 0) {
			log_msg(LOG_LEVEL_ERROR, rid,
			    "order %lld: left "
			    "processing for recovery",
			    (long long)json_integer_value(id));
			goto out;
		}
		if (any > 0) {
			log_msg(LOG_LEVEL_WARN, rid,
			    "order %lld: the CA stored "
			    "certificate %s all the same",
			    (long long)json_integer_value(id), found);
			serial = found;
			goto finalize;
		}
		if (p->type == PROB_ORDER_NOT_READY && cl != NULL) {
			/* The claim was taken over (another RA's recovery
			 * issues it) or the order finished: hands off. */
			log_msg(LOG_LEVEL_WARN, rid,
			    "order %lld: no longer claimed by this finalize, "
			    "left to its new claimant: %s",
			    (long long)json_integer_value(id),
			    p->detail ? p->detail : "");
			goto out;
		}
		if (issue_transient(p)) {
			/* Not a refusal: try again while the order lives;
			 * past the budget (or when stopping) leave it
			 * processing for recovery, never invalid. */
			if (ra_is_stopping(ra) ||
			    time_mono_ms() + pause > deadline) {
				log_msg(LOG_LEVEL_WARN, rid,
				    "order %lld: left processing for "
				    "recovery after a transient failure",
				    (long long)json_integer_value(id));
				goto out;
			}
			log_msg(LOG_LEVEL_INFO, rid,
			    "order %lld: retrying ca.issue in %lld ms",
			    (long long)json_integer_value(id),
			    (long long)pause);
			problem_free(p);
			p = NULL;
			json_object_del(params, "serial");
			ra_sleep_ms(pause);
			claim_params(ra, cl, params);
			if (pause < RA_ISSUE_RETRY_MAX_PAUSE_MS)
				pause *= 2;
			continue;
		}
		fail_order(ra, rid, id, p);
		p = NULL;
		goto out;
	}
	serial = json_string_value(json_object_get(res, "serial"));
	if (serial == NULL) {
		log_bug("ca.issue returned no serial");
		goto out;
	}
	learn_serial_form(ra, res);
	if (json_is_true(json_object_get(res, "order_valid"))) {
		order_valid(ra, rid, order, serial);
		if (issued != NULL)
			*issued = json_incref(res);
		goto out;
	}
finalize:
	mark_valid(ra, rid, order, serial);
out:
	json_decref(params);
	json_decref(res);
	problem_free(p);
	free(found);
}

static void
finalize_job(void *arg)
{
	struct fjob *j = arg;
	json_int_t id = json_integer_value(json_object_get(j->order, "id"));
	json_t *issued = NULL;

	ra_issue_order(j->ra, j->rid, j->order, j->csr, &j->claim, &issued);
	ra_mark(j->ra, j->ra->inflight, id, 0);
	if (j->w != NULL)
		fwait_done(j->w, issued);
	else
		json_decref(issued);
	free(j->rid);
	free(j->csr);
	json_decref(j->order);
	free(j);
}

/*
 * va.check_caa for one DNS identifier {type,value} (borrowed) validated
 * with method. 0 when CAA allows issuance, else -1 and *prob (the VA's caa
 * problem, or unavailable).
 */
static int
caa_check_one(struct ra *ra, const char *rid, const json_t *ident, int wildcard,
    const char *method, const char *uri, struct problem **prob)
{
	json_t *chk = NULL;
	int rc = -1;

	if (ra_call(ra->va, RPC_VA_CHECK_CAA,
		json_pack("{s:O,s:b,s:s,s:s}", "identifier", ident, "wildcard",
		    wildcard, "validation_method", method, "account_uri", uri),
		rid, &chk, prob) != 0)
		return -1;
	if (!json_is_true(json_object_get(chk, "ok"))) {
		*prob = json_is_object(json_object_get(chk, "error"))
		    ? problem_from_json(json_object_get(chk, "error"))
		    : problem_new(PROB_CAA, "CAA forbids issuance for %s",
			  json_string_value(json_object_get(ident, "value")));
		goto out;
	}
	rc = 0;
out:
	json_decref(chk);
	return rc;
}

/* 1 if anc is a proper ancestor of name in whole labels (RFC 9444 §2). */
static int
below(const char *name, const char *anc)
{
	size_t al = strlen(anc), nl = strlen(name);

	return al + 1 < nl && name[nl - al - 1] == '.' &&
	    strcmp(name + nl - al, anc) == 0;
}

/* The challenge of authz az (borrowed) that validated it, or NULL. */
static const json_t *
valid_challenge(const json_t *az)
{
	const json_t *ch, *valid_ch = NULL;
	size_t j;

	json_array_foreach(json_object_get(az, "challenges"), j, ch)
	{
		const char *st = json_string_value(json_object_get(ch, "status"));

		if (st != NULL && strcmp(st, "valid") == 0)
			valid_ch = ch;
	}
	return valid_ch;
}

/*
 * CAA must still allow issuance at finalize: every DNS authz validated more
 * than caa_recheck_after ago is re-checked through va.check_caa (BR 3.2.2.8:
 * CAA results may be reused for at most 8 hours). A subdomain authorization
 * (RFC 9444) was validated at its ancestor, so CAA of every order name it
 * covers is checked now, whatever its age (RFC 8659 §3: CAA of the name in
 * the certificate). 0, or -1 and *prob (the VA's caa problem, or
 * unavailable).
 */
static int
caa_recheck(struct ra *ra, const char *rid, const json_t *order,
    const char *uri, struct problem **prob)
{
	json_t *res = NULL, *az, *oi, *authzs;
	const json_t *valid_ch;
	int64_t now = time_now_ms(), validated;
	const char *method, *av, *ov;
	size_t i, j;
	int rc = -1;

	/* The order was read with its authzs (sa.get_order with_authzs). */
	authzs = json_object_get(order, "authzs");
	if (!json_is_array(authzs)) {
		if (ra_call(ra->sa, RPC_SA_GET_AUTHZS,
			json_pack("{s:O}", "ids",
			    json_object_get(order, "authz_ids")),
			rid, &res, prob) != 0)
			goto out;
		authzs = json_object_get(res, "authzs");
	}
	json_array_foreach(authzs, i, az)
	{
		json_t *ident = json_object_get(az, "identifier");
		if (!json_is_string(json_object_get(ident, "type")) ||
		    strcmp(json_string_value(json_object_get(ident, "type")),
			"dns") != 0)
			continue;
		/* RFC 9799 §6.1: never in the DNS (ra_onion_caa) */
		if (ident_onion_name(
			json_string_value(json_object_get(ident, "value"))))
			continue;
		valid_ch = valid_challenge(az);
		method = valid_ch
		    ? json_string_value(json_object_get(valid_ch, "type"))
		    : "dns-01";
		av = json_string_value(json_object_get(ident, "value"));
		if (json_is_true(json_object_get(az, "subdomain_auth"))) {
			json_array_foreach(
			    json_object_get(order, "identifiers"), j, oi)
			{
				ov = json_string_value(
				    json_object_get(oi, "value"));
				if (ov != NULL && av != NULL &&
				    strncmp(ov, "*.", 2) != 0 &&
				    below(ov, av) &&
				    caa_check_one(
					ra, rid, oi, 0, method, uri, prob) != 0)
					goto out;
			}
		}
		if (valid_ch != NULL &&
		    ra_time_get(valid_ch, "validated", &validated) == 0 &&
		    now - validated <= ra->cfg.caa_recheck_after_ms)
			continue;
		if (caa_check_one(ra, rid, ident,
			json_is_true(json_object_get(az, "wildcard")), method,
			uri, prob) != 0)
			goto out;
	}
	rc = 0;
out:
	json_decref(res);
	return rc;
}

/* RFC 7638 thumbprint of pkey (borrowed) as the account table stores it
 * (jwk_thumbprint of the same key), or NULL for a key no JWK can hold.
 * Caller frees. */
static char *
key_thumbprint(EVP_PKEY *pkey)
{
	json_t *j = jwk_from_pkey(pkey);
	char *s, *out;
	uint8_t md[32];

	if (j == NULL)
		return NULL;
	s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	if (s == NULL)
		return NULL;
	sha256((const uint8_t *)s, strlen(s), md);
	free(s);
	out = b64url_encode(md, sizeof(md));
	return out;
}

/*
 * The CSR of a finalize (b64url DER, borrowed) against the order
 * (borrowed): parsed and checked (ra_csr_check; a TNAuthList order's
 * basicConstraints against its Authority Token, ra_tkauth_finalize). 0 with *key_hash and
 * *thumbprint (the CSR key's hash and RFC 7638 thumbprint, caller frees;
 * sa.set_order_processing refuses a blocked key and the account's own
 * key), or -1 with *prob (badCSR, badPublicKey, ...).
 */
static int
check_csr(struct ra *ra, const char *rid, const json_t *order,
    const char *csr, char **key_hash, char **thumbprint,
    struct problem **prob)
{
	EVP_PKEY *ckey = NULL;
	uint8_t *der = NULL;
	size_t derlen = 0;
	char *khash = NULL;
	int rc = -1;

	if (csr == NULL ||
	    b64url_decode(csr, strlen(csr), &der, &derlen) != 0) {
		*prob = problem_new(PROB_BAD_CSR,
		    "\"csr\" must be the "
		    "base64url DER of a CSR");
		goto out;
	}
	if (ra_csr_check(der, derlen, json_object_get(order, "identifiers"),
		&ra->cfg.keys, NULL, &ckey, prob) != 0)
		goto out;
	if (ra_device_check_key(ra, rid, order, ckey, prob) != 0 ||
	    ra_tkauth_finalize(ra, order, csr, prob) != 0)
		goto out;
	khash = ra_key_hash(ckey);
	if (khash == NULL) {
		*prob = problem_new(PROB_BAD_CSR, "CSR key cannot be encoded");
		goto out;
	}
	*key_hash = khash;
	khash = NULL;
	*thumbprint = key_thumbprint(ckey);
	rc = 0;
out:
	EVP_PKEY_free(ckey);
	free(der);
	free(khash);
	return rc;
}

/* See ra_int.h. Only plain orders (DNS and IP identifiers, no STAR, no
 * delegation) are kept: their finalize reads nothing that changed since
 * but what the claim checks itself (created_order). */
void
ra_order_created(struct ra *ra, const json_t *order, int64_t t0)
{
	const json_t *v;
	const char *t;
	char k[32];
	size_t i;

	if (ra->orders == NULL || json_object_get(order, "star") != NULL ||
	    json_integer_value(json_object_get(order, "delegation_id")) != 0 ||
	    !json_is_array(json_object_get(order, "authzs")))
		return;
	json_array_foreach(json_object_get(order, "identifiers"), i, v)
	{
		t = json_string_value(json_object_get(v, "type"));
		if (t == NULL || (strcmp(t, "dns") != 0 && strcmp(t, "ip") != 0))
			return;
	}
	snprintf(k, sizeof(k), "o%lld",
	    (long long)json_integer_value(json_object_get(order, "id")));
	takecache_put(ra->orders, k,
	    json_pack("{s:o,s:I}", "order", json_deep_copy(order), "t0",
		(json_int_t)t0));
}

/*
 * The order oid as this RA created it (new; ra_order_created), when its
 * finalize may go without sa.get_order: what it reads of the order never
 * changes (owner, identifiers, profile, validity, authz ids), and what
 * does — the order's readiness, its authzs' states, the account's status —
 * the claim (sa.set_order_processing) checks in its statement. The CAA
 * re-check is not needed: every authz is either one this order created
 * (pending then, so validated after t0, less than caa_recheck_after ago)
 * or a reused one validated less than caa_recheck_after ago, and none is
 * an RFC 9444 subdomain authorization (whose CAA is always checked at
 * finalize). NULL otherwise: read the order.
 */
static json_t *
created_order(struct ra *ra, int64_t oid)
{
	json_t *e, *order, *az;
	const json_t *ch;
	const char *st;
	int64_t t0, validated, now = time_now_ms();
	char k[32];
	size_t i;

	snprintf(k, sizeof(k), "o%lld", (long long)oid);
	if ((e = takecache_take(ra->orders, k)) == NULL)
		return NULL;
	t0 = json_integer_value(json_object_get(e, "t0"));
	order = json_incref(json_object_get(e, "order"));
	json_decref(e);
	if (time_mono_ms() - t0 >= ra->cfg.caa_recheck_after_ms)
		goto stale;
	json_array_foreach(json_object_get(order, "authzs"), i, az)
	{
		st = json_string_value(json_object_get(az, "status"));
		if (json_is_true(json_object_get(az, "subdomain_auth")) ||
		    st == NULL)
			goto stale;
		if (strcmp(st, "pending") == 0)
			continue;
		ch = valid_challenge(az);
		if (strcmp(st, "valid") != 0 || ch == NULL ||
		    ra_time_get(ch, "validated", &validated) != 0 ||
		    now - validated > ra->cfg.caa_recheck_after_ms)
			goto stale;
	}
	return order;
stale:
	json_decref(order);
	return NULL;
}

/*
 * Issues claimed (borrowed) on a worker and waits up to finalize.wait for
 * it. 1 when it finished meanwhile (*issued: ca.issue's answer when the
 * order became valid, else NULL), 0 when it is still issuing.
 */
static int
issue_async(struct ra *ra, const char *rid, const json_t *claimed,
    const char *csr, const struct ra_claim *cl, json_t **issued)
{
	struct fjob *j = xcalloc(1, sizeof(*j));
	struct fwait *w = NULL;
	int done = 0;

	*issued = NULL;
	j->ra = ra;
	j->rid = rid ? xstrdup(rid) : NULL;
	j->order = json_incref((json_t *)claimed);
	j->csr = xstrdup(csr);
	j->claim = *cl;
	if (ra->cfg.finalize_wait_ms > 0)
		j->w = w = fwait_new(rid);
	if (ra_pool_submit(ra->pool, finalize_job, j) != 0) {
		/* shutting down: issue inline rather than strand it */
		finalize_job(j);
		done = 1;
	}
	if (w != NULL &&
	    fwait_for(w, done ? 0 : ra->cfg.finalize_wait_ms, issued))
		done = 1;
	return done;
}

/* The order claimed (borrowed) made valid by ca.issue's answer issued
 * (borrowed), as the client sees it, with the certificate the WFE may
 * serve from its cache (`issued`: der, issuer_id): new. */
static json_t *
valid_order(const json_t *claimed, const json_t *issued)
{
	json_t *o = json_deep_copy(claimed);

	json_object_set_new(o, "status", json_string("valid"));
	json_object_set(
	    o, "certificate_serial", json_object_get(issued, "serial"));
	json_object_del(o, "csr");
	json_object_del(o, "reserved_serial");
	json_object_set_new(o, "issued",
	    json_pack("{s:O,s:O}", "der", json_object_get(issued, "der"),
		"issuer_id", json_object_get(issued, "issuer_id")));
	return o;
}

/* 1 if order (borrowed, as read) is ready, else 0 with *prob
 * (orderNotReady, RFC 8555 §7.4). */
static int
order_ready(const json_t *order, struct problem **prob)
{
	const char *st = json_string_value(json_object_get(order, "status"));

	if (st != NULL && strcmp(st, "ready") == 0)
		return 1;
	*prob = problem_new(PROB_ORDER_NOT_READY, "Order is %s, not ready",
	    st ? st : "in an unknown state");
	return 0;
}

/*
 * The order oid for its finalize by account aid: as this RA created it, or
 * read with its authzs. 0 with *order (new) and *created (1: from
 * created_order, whose status and authzs are those of its creation), or -1
 * with *prob.
 */
static int
finalize_order_of(struct ra *ra, const char *rid, int64_t oid, int64_t aid,
    json_t **order, int *created, struct problem **prob)
{
	*created = (*order = created_order(ra, oid)) != NULL;
	if (!*created &&
	    ra_call(ra->sa, RPC_SA_GET_ORDER,
		json_pack("{s:I,s:b}", "id", (json_int_t)oid, "with_authzs", 1),
		rid, order, prob) != 0)
		return -1;
	if (json_integer_value(json_object_get(*order, "account_id")) != aid) {
		*prob = problem_new(PROB_UNAUTHORIZED,
		    "Order %lld belongs to another account", (long long)oid);
		return -1;
	}
	/* the claim refuses an order that is not ready (orderNotReady) */
	return *created || order_ready(*order, prob) ? 0 : -1;
}

/*
 * A check refused the finalize of a kept order (created_order) with *prob:
 * RFC 8555 §7.4 wants orderNotReady for an order that is not ready,
 * whatever else is wrong, and the kept order does not say; read it (only
 * on this refusal path) and replace *prob when it is not ready.
 */
static void
not_ready_first(
    struct ra *ra, const char *rid, int64_t oid, struct problem **prob)
{
	json_t *order = NULL;
	struct problem *q = NULL;

	if (ra_call(ra->sa, RPC_SA_GET_ORDER,
		json_pack("{s:I}", "id", (json_int_t)oid), rid, &order,
		&q) != 0) {
		problem_free(q);
		return;
	}
	if (!order_ready(order, &q)) {
		problem_free(*prob);
		*prob = q;
	}
	json_decref(order);
}

/* ra.finalize_order handler (docs/rpc-methods.md): req borrowed; on 0 *result,
 * on -1 *prob, both handed to the RPC server. */
int
ra_h_finalize_order(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	struct ra *ra = svc;
	json_t *params = req->params, *order = NULL, *issued = NULL;
	json_t *claimed = NULL, *cp;
	const char *csr;
	char *uri = NULL, *khash = NULL, *tp = NULL;
	struct ra_claim cl;
	int64_t aid, oid;
	int rc = -1, created, done = 1;

	if (ra_param_id(params, "account_id", &aid, prob) != 0 ||
	    ra_param_id(params, "order_id", &oid, prob) != 0 ||
	    ra_param_str(params, "csr", &csr, prob) != 0 ||
	    ra_account_uri(ra, params, aid, &uri, prob) != 0)
		goto out;
	/* The account's status and key are checked by the claim
	 * (sa.set_order_processing), not read first (issue 18). */
	if (finalize_order_of(
		ra, req->request_id, oid, aid, &order, &created, prob) != 0)
		goto out;
	if (ra_deleg_finalize(ra, req->request_id, order, csr, &uri, prob) !=
		0 ||
	    check_csr(ra, req->request_id, order, csr, &khash, &tp, prob) !=
		0 ||
	    (!created &&
		caa_recheck(ra, req->request_id, order, uri, prob) != 0) ||
	    ra_onion_caa(ra, req->request_id, order,
		json_object_get(params, "onion_caa"), uri, prob) != 0 ||
	    ra_star_finalize(ra, req->request_id, order, csr, prob) != 0) {
		if (created)
			not_ready_first(ra, req->request_id, oid, prob);
		goto out;
	}
	/* The CSR is stored with the claim: if this process dies or gives
	 * up on a transient failure, recovery issues it again. The claim
	 * refuses a blocked key, the account's own key and an account no
	 * longer valid in the same statement. */
	cp = claim_params_new(ra, order, csr, khash, tp, &cl);
	if (ra_call(ra->sa, RPC_SA_SET_ORDER_PROCESSING, cp, req->request_id,
		&claimed, prob) != 0)
		goto out;
	ra_mark(ra, ra->inflight, oid, 1);
	if (ra->cfg.finalize_async)
		done = issue_async(
		    ra, req->request_id, claimed, csr, &cl, &issued);
	else {
		ra_issue_order(
		    ra, req->request_id, claimed, csr, &cl, &issued);
		ra_mark(ra, ra->inflight, oid, 0);
	}
	rc = 0;
	if (issued != NULL) {
		/* issued while we waited: no poll needed, nothing to read */
		*result = valid_order(claimed, issued);
	} else if (done) {
		/* failed, or left for recovery: as stored */
		rc = ra_call(ra->sa, RPC_SA_GET_ORDER,
		    json_pack("{s:I}", "id", (json_int_t)oid), req->request_id,
		    result, prob);
	} else {
		json_object_set_new(claimed, "retry_after_s",
		    json_integer(
			(ra->cfg.finalize_retry_after_ms + 999) / 1000));
		*result = claimed;
		claimed = NULL;
	}
out:
	json_decref(order);
	json_decref(issued);
	json_decref(claimed);
	free(uri);
	free(khash);
	free(tp);
	return rc;
}

/* See ra_int.h. order borrowed. */
void
ra_reissue_order(
    struct ra *ra, const json_t *order, const struct ra_claim *cl)
{
	json_int_t id = json_integer_value(json_object_get(order, "id"));
	const char *csr = json_string_value(json_object_get(order, "csr"));

	if (csr == NULL)
		return;
	ra_mark(ra, ra->inflight, id, 1);
	ra_issue_order(ra, NULL, order, csr, cl, NULL);
	ra_mark(ra, ra->inflight, id, 0);
}

