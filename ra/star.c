/*
 * star.c - RFC 8739 short-term, automatically renewed (STAR) certificates:
 * the auto-renewal terms of a newOrder, the first certificate's validity
 * at finalize, the directory meta, cancellation, and the renewal scheduler
 * that issues each next certificate before the current one ends.
 *
 * The scheduler runs in every RA. Each look, it claims the orders that are
 * due from the SA with a lease (sa.star_claim: FOR UPDATE SKIP LOCKED, so
 * two RAs never renew one order at once), works out the next certificate
 * from the order's latest one (so a renewal the CA stored while this RA
 * died is never issued twice), issues it through the CA and hands the
 * order back with its next due time (sa.star_release). Nothing lives only
 * in memory: a restarted RA carries on where the rows say.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "ra/ra_int.h"

/* ---- newOrder ---------------------------------------------------------- */

/* See ra_int.h. */
int
ra_star_new_order_check(struct ra *ra, const struct profile *prof,
    const json_t *params, const char *nb, const char *na,
    struct ra_star_terms *terms, struct problem **prob)
{
	const json_t *ar = json_object_get(params, "auto_renewal");

	memset(terms, 0, sizeof(*terms));
	if (ar == NULL || json_is_null(ar))
		return 0;
	/* §3.1.1: "The optional notBefore and notAfter fields ... MUST NOT
	 * be present in a STAR Order." */
	if (nb != NULL || na != NULL) {
		*prob = problem_new(PROB_MALFORMED,
		    "notBefore and notAfter must not be present in an "
		    "auto-renewal order (RFC 8739 section 3.1.1)");
		return -1;
	}
	if (ra_star_check(&ra->cfg.star, prof, ar, time_now_ms() / 1000, terms,
		prob) != 0)
		return -1;
	return 0;
}

/* See ra_int.h. */
int
ra_star_new_order_attach(struct ra *ra, const char *rid, json_t **order,
    const struct ra_star_terms *t, struct problem **prob)
{
	json_t *params, *res = NULL, *r2 = NULL, *id = NULL;
	struct problem *q = NULL;
	char sd[32], ed[32];

	if (t->lifetime == 0)
		return 0; /* not a STAR order */
	params = json_pack("{s:O,s:O,s:s,s:I,s:I,s:b}", "order_id",
	    json_object_get(*order, "id"), "account_id",
	    json_object_get(*order, "account_id"), "end_date",
	    ra_time_fmt(t->end * 1000, ed, sizeof(ed)), "lifetime",
	    (json_int_t)t->lifetime, "lifetime_adjust", (json_int_t)t->adjust,
	    "allow_get", t->allow_get);
	if (t->start != 0)
		json_object_set_new(params, "start_date",
		    json_string(ra_time_fmt(t->start * 1000, sd, sizeof(sd))));
	if (ra_call(ra->sa, RPC_SA_STAR_NEW, params, rid, &res, prob) == 0) {
		/* keep the authzs sa.new_order returned with the order */
		if (json_object_get(*order, "authzs") != NULL)
			json_object_set(
			    res, "authzs", json_object_get(*order, "authzs"));
		json_decref(*order);
		*order = res;
		ra_count(ra, "anvil_ra_star_orders_total", NULL);
		return 0;
	}
	/* Never leave it to be issued as a plain order. */
	id = json_incref(json_object_get(*order, "id"));
	if (ra_call(ra->sa, RPC_SA_SET_ORDER_ERROR,
		json_pack(
		    "{s:O,s:o}", "id", id, "error", problem_to_rpc_json(*prob)),
		rid, &r2, &q) != 0) {
		log_msg(LOG_LEVEL_ERROR, rid,
		    "order %lld: STAR terms not stored and the order not "
		    "failed: %s",
		    (long long)json_integer_value(id),
		    q->detail ? q->detail : "error");
	}
	json_decref(id);
	json_decref(r2);
	problem_free(q);
	return -1;
}

/* ---- terms of a stored order ------------------------------------------ */

/* The terms of star (borrowed: an order's "star" or sa.star_get's
 * answer). 0 or -1 when unreadable. */
static int
terms_of(const json_t *star, struct ra_star_terms *t)
{
	int64_t ms;

	memset(t, 0, sizeof(*t));
	if (!json_is_object(star) || ra_time_get(star, "end_date", &ms) != 0)
		return -1;
	t->end = ms / 1000;
	if (ra_time_get(star, "start_date", &ms) == 0)
		t->start = ms / 1000;
	t->lifetime = json_integer_value(json_object_get(star, "lifetime"));
	t->adjust =
	    json_integer_value(json_object_get(star, "lifetime_adjust"));
	t->allow_get = json_is_true(json_object_get(star, "allow_get"));
	return t->lifetime > 0 ? 0 : -1;
}

/* See ra_int.h. */
int
ra_star_finalize(struct ra *ra, const char *rid, const json_t *order,
    const char *csr, struct problem **prob)
{
	json_t *res = NULL;
	int rc;

	if (json_object_get(order, "star") == NULL)
		return 0;
	rc = ra_call(ra->sa, RPC_SA_STAR_SET_CSR,
	    json_pack("{s:O,s:s}", "order_id", json_object_get(order, "id"),
		"csr", csr),
	    rid, &res, prob);
	json_decref(res);
	return rc;
}

/* See ra_int.h. */
void
ra_star_issue_window(const json_t *order, json_t *params)
{
	struct ra_star_terms t;
	int64_t nb, na;
	char b[32], a[32];

	if (terms_of(json_object_get(order, "star"), &t) != 0)
		return;
	ra_star_first(&t, time_now_ms() / 1000, &nb, &na);
	json_object_set_new(params, "not_before",
	    json_string(ra_time_fmt(nb * 1000, b, sizeof(b))));
	json_object_set_new(params, "not_after",
	    json_string(ra_time_fmt(na * 1000, a, sizeof(a))));
}

/* See ra_int.h. */
void
ra_star_meta(struct ra *ra, json_t *meta)
{
	const struct ra_star_config *sc = &ra->cfg.star;

	if (!sc->enabled)
		return;
	/* RFC 8739 §3.4 */
	json_object_set_new(meta, "auto-renewal",
	    json_pack("{s:I,s:I,s:b}", "min-lifetime",
		(json_int_t)sc->min_lifetime_s, "max-duration",
		(json_int_t)sc->max_duration_s, "allow-certificate-get",
		sc->allow_get));
}

/* See ra_int.h. */
int
ra_star_revoke_check(
    struct ra *ra, const char *rid, const json_t *cert, struct problem **prob)
{
	json_t *oid = json_object_get(cert, "order_id"), *res = NULL;
	struct problem *p = NULL;

	if (!json_is_integer(oid))
		return 0;
	if (ra_call(ra->sa, RPC_SA_STAR_GET,
		json_pack("{s:O}", "order_id", oid), rid, &res, &p) != 0) {
		if (p->type == PROB_NOT_FOUND) {
			problem_free(p);
			return 0;
		}
		*prob = p;
		return -1;
	}
	json_decref(res);
	/* §3.1.2: "A server receiving a revocation request for a STAR
	 * certificate MUST return an error response with status code 403
	 * (Forbidden) and type ...:autoRenewalRevocationNotSupported". */
	*prob = problem_new(PROB_AUTO_RENEWAL_REVOCATION_NOT_SUPPORTED,
	    "STAR certificates are not revoked: cancel the order instead "
	    "(RFC 8739 section 3.1.2)");
	return -1;
}

/* ---- cancellation ------------------------------------------------------ */

/* ra.star_cancel handler (docs/rpc-methods.md): req borrowed; on 0
 * *result, on -1 *prob, both handed to the RPC server. */
int
ra_h_star_cancel(void *svc, const struct rpc_req *req, json_t **result,
    struct problem **prob)
{
	struct ra *ra = svc;
	json_t *order = NULL;
	struct problem *p = NULL;
	int64_t aid, oid;
	int64_t deadline;
	int rc = -1;

	if (ra_param_id(req->params, "account_id", &aid, prob) != 0 ||
	    ra_param_id(req->params, "order_id", &oid, prob) != 0)
		return -1;
	/* A renewal being issued holds the order's lease: wait for it to
	 * finish (or for its lease to run out), so that no certificate is
	 * issued after the answer (§3.1.2 "MUST NOT issue any additional
	 * certificates"). */
	deadline = time_mono_ms() + ra->cfg.star.lease_ms + 5000;
	for (;;) {
		if (ra_call(ra->sa, RPC_SA_STAR_CANCEL,
			json_pack("{s:I,s:I}", "order_id", (json_int_t)oid,
			    "account_id", (json_int_t)aid),
			req->request_id, result, &p) == 0)
			break;
		if (p->type != PROB_CONFLICT) {
			if (p->type == PROB_NOT_FOUND &&
			    ra_call(ra->sa, RPC_SA_GET_ORDER,
				json_pack("{s:I}", "id", (json_int_t)oid),
				req->request_id, &order, prob) == 0) {
				/* exists: of this account and not STAR? */
				problem_free(p);
				p = json_integer_value(json_object_get(
					order, "account_id")) == aid
				    ? problem_new(PROB_MALFORMED,
					  "Only an auto-renewal (RFC 8739) "
					  "order is updated, with "
					  "{\"status\": \"canceled\"}")
				    : problem_new(
					  PROB_NOT_FOUND, "no such order");
			} else if (*prob != NULL) {
				problem_free(p);
				p = *prob;
				*prob = NULL;
			}
			*prob = p;
			p = NULL;
			goto out;
		}
		if (time_mono_ms() > deadline) {
			*prob = problem_new(PROB_UNAVAILABLE,
			    "a renewal of this order is being issued; try "
			    "again");
			goto out;
		}
		problem_free(p);
		p = NULL;
		ra_sleep_ms(200);
	}
	log_audit(req->request_id, "star-cancel", "order=%lld account=%lld",
	    (long long)oid, (long long)aid);
	ra_count(ra, "anvil_ra_star_cancellations_total", NULL);
	rc = 0;
out:
	problem_free(p);
	json_decref(order);
	return rc;
}

/* ---- the renewal scheduler --------------------------------------------- */

struct renew {
	const char *owner;
	int64_t claimed_ms; /* monotonic */
};

static void
count_renewal(struct ra *ra, const char *result)
{
	char lbl[64];

	snprintf(lbl, sizeof(lbl), "result=\"%s\"", result);
	ra_count(ra, "anvil_ra_star_renewals_total", lbl);
}

/* Hands order oid back: due again at next (epoch s) or ended (next 0). */
static void
release(struct ra *ra, const struct renew *rn, json_int_t oid, int64_t next,
    const char *reason, int renewed)
{
	json_t *params, *res = NULL;
	struct problem *p = NULL;
	char t[32];

	params = json_pack("{s:I,s:s,s:s,s:b}", "order_id", oid, "owner",
	    rn->owner, "status", next ? "active" : "ended", "renewed", renewed);
	if (next)
		json_object_set_new(params, "next_at",
		    json_string(ra_time_fmt(next * 1000, t, sizeof(t))));
	if (reason != NULL)
		json_object_set_new(params, "reason", json_string(reason));
	if (ra_call(ra->sa, RPC_SA_STAR_RELEASE, params, NULL, &res, &p) != 0) {
		log_warn("star: order %lld: cannot hand back: %s",
		    (long long)oid, p->detail ? p->detail : "error");
		problem_free(p);
	} else if (!next) {
		log_audit(NULL, "star-ended", "order=%lld reason=%s",
		    (long long)oid, reason ? reason : "-");
		count_renewal(ra, "ended");
	}
	json_decref(res);
}

/* 1 if the account of s (borrowed) may still get certificates. */
static int
account_ok(struct ra *ra, const json_t *s, struct problem **prob)
{
	json_t *acct = NULL;
	int rc = ra_get_valid_account(ra, NULL,
	    json_integer_value(json_object_get(s, "account_id")), &acct, prob);

	json_decref(acct);
	return rc == 0;
}

/*
 * 1 if the key of s's CSR (borrowed) was blocked since finalize (reported
 * compromised: sa.block_key), 0 if not, -1 if it could not be told.
 */
static int
csr_key_blocked(struct ra *ra, const json_t *s)
{
	const char *csr = json_string_value(json_object_get(s, "csr"));
	const unsigned char *p;
	uint8_t *der = NULL;
	size_t len = 0;
	X509_REQ *req = NULL;
	json_t *res = NULL;
	struct problem *prob = NULL;
	char *hash = NULL;
	int rc = -1;

	if (csr == NULL || b64url_decode(csr, strlen(csr), &der, &len) != 0)
		goto out;
	p = der;
	if ((req = d2i_X509_REQ(NULL, &p, (long)len)) == NULL ||
	    (hash = ra_key_hash(X509_REQ_get0_pubkey(req))) == NULL)
		goto out;
	if (ra_call(ra->sa, RPC_SA_KEY_BLOCKED,
		json_pack("{s:s}", "key_hash", hash), NULL, &res, &prob) != 0)
		goto out;
	rc = json_is_true(json_object_get(res, "blocked")) ? 1 : 0;
out:
	problem_free(prob);
	json_decref(res);
	free(hash);
	X509_REQ_free(req);
	free(der);
	return rc;
}

/* Issues one renewal of s (borrowed, claimed) valid [nb, na]. 0 and
 * *new_na, or -1 with *prob. */
static int
issue_renewal(struct ra *ra, const json_t *s, int64_t nb, int64_t na,
    int64_t *new_na, struct problem **prob)
{
	json_t *res = NULL, *params;
	char b[32], a[32];
	const char *serial;

	params = json_pack("{s:O,s:O,s:O,s:O,s:O,s:s,s:s}", "csr",
	    json_object_get(s, "csr"), "identifiers",
	    json_object_get(s, "identifiers"), "profile",
	    json_object_get(s, "profile"), "account_id",
	    json_object_get(s, "account_id"), "order_id",
	    json_object_get(s, "order_id"), "not_before",
	    ra_time_fmt(nb * 1000, b, sizeof(b)), "not_after",
	    ra_time_fmt(na * 1000, a, sizeof(a)));
	if (params == NULL) {
		*prob =
		    problem_new(PROB_SERVER_INTERNAL, "STAR order unusable");
		return -1;
	}
	if (ra_call(ra->ca, RPC_CA_ISSUE, params, NULL, &res, prob) != 0)
		return -1;
	serial = json_string_value(json_object_get(res, "serial"));
	log_audit(NULL, "issuance",
	    "order=%lld account=%lld serial=%s star=renewal result=valid",
	    (long long)json_integer_value(json_object_get(s, "order_id")),
	    (long long)json_integer_value(json_object_get(s, "account_id")),
	    serial ? serial : "?");
	ra_count(ra, "anvil_ra_certificates_total", NULL);
	json_decref(res);
	*new_na = na;
	return 0;
}

/* One claimed order s (borrowed). */
static void
renew_one(struct ra *ra, const struct renew *rn, const json_t *s)
{
	json_int_t oid = json_integer_value(json_object_get(s, "order_id"));
	const char *ost = json_string_value(json_object_get(s, "order_status"));
	struct ra_star_terms t;
	struct problem *p = NULL;
	int64_t now = time_now_ms() / 1000, last_na, nb, na, due, new_na;
	char *key = NULL;

	if (terms_of(s, &t) != 0 || ost == NULL) {
		log_bug("star: order %lld unreadable", (long long)oid);
		release(ra, rn, oid, 0, "unreadable", 0);
		return;
	}
	if (strcmp(ost, "invalid") == 0) {
		release(ra, rn, oid, 0, "order invalid", 0);
		return;
	}
	if (strcmp(ost, "valid") != 0) {
		/* finalize still running: look again shortly */
		release(ra, rn, oid, now + 1, NULL, 0);
		return;
	}
	if (ra_time_get(json_object_get(s, "cert"), "not_after", &last_na) !=
	    0) {
		log_bug("star: valid order %lld has no certificate",
		    (long long)oid);
		release(ra, rn, oid, 0, "no certificate", 0);
		return;
	}
	last_na /= 1000;
	if (ra_star_next(&t, last_na, now, &nb, &na, &due) != 0) {
		release(ra, rn, oid, 0, "end-date reached", 0);
		return;
	}
	if (due > now) {
		release(ra, rn, oid, due, NULL, 0);
		return;
	}
	if (!json_is_string(json_object_get(s, "csr"))) {
		release(ra, rn, oid, 0, "no CSR", 0);
		return;
	}
	if (!account_ok(ra, s, &p)) {
		if (p->type == PROB_UNAVAILABLE ||
		    p->type == PROB_SERVER_INTERNAL)
			release(ra, rn, oid, now + 5, NULL, 0);
		else
			release(ra, rn, oid, 0, "account not valid", 0);
		goto out;
	}
	switch (csr_key_blocked(ra, s)) {
	case 1:
		release(ra, rn, oid, 0, "key blocked", 0);
		goto out;
	case -1:
		release(ra, rn, oid, now + 5, NULL, 0);
		goto out;
	default:
		break;
	}
	key = xasprintf("star_renewal:acct:%lld",
	    (long long)json_integer_value(json_object_get(s, "account_id")));
	if (ra_rl_spend(ra, NULL, RA_RL_STAR_RENEWALS,
		json_string_value(json_object_get(s, "profile")), key, 1,
		&p) != 0) {
		log_warn("star: order %lld: renewal postponed: %s",
		    (long long)oid, p->detail ? p->detail : "rate limited");
		count_renewal(ra, "rate_limited");
		release(ra, rn, oid,
		    now + (p->retry_after > 0 ? p->retry_after : 60), NULL, 0);
		goto out;
	}
	/* Never start an issuance the lease might not cover: a lease that
	 * ran out may be another RA's already. */
	if (time_mono_ms() - rn->claimed_ms > ra->cfg.star.lease_ms / 2) {
		release(ra, rn, oid, now, NULL, 0);
		goto out;
	}
	if (issue_renewal(ra, s, nb, na, &new_na, &p) != 0) {
		log_warn("star: order %lld: renewal failed: %s", (long long)oid,
		    p->detail ? p->detail : "error");
		count_renewal(ra, "failed");
		if (p->type == PROB_UNAVAILABLE || p->type == PROB_CONFLICT ||
		    p->type == PROB_SERVER_INTERNAL)
			/* the CA may have stored it all the same: the next
			 * look starts from the latest certificate */
			release(ra, rn, oid, now + 5, NULL, 0);
		else
			release(ra, rn, oid, 0, prob_type_name(p->type), 0);
		goto out;
	}
	count_renewal(ra, "issued");
	if (ra_star_next(&t, new_na, now, &nb, &na, &due) != 0)
		release(ra, rn, oid, 0, "end-date reached", 1);
	else
		release(ra, rn, oid, due > now ? due : now, NULL, 1);
out:
	free(key);
	problem_free(p);
}

/* Claims what is due and renews it. Number of orders claimed, -1 if the
 * SA could not be asked. */
static int
star_round(struct ra *ra, const char *owner)
{
	json_t *res = NULL, *s;
	struct problem *p = NULL;
	struct renew rn;
	size_t i, n;

	if (ra_call(ra->sa, RPC_SA_STAR_CLAIM,
		json_pack("{s:s,s:I,s:I}", "owner", owner, "lease_ms",
		    (json_int_t)ra->cfg.star.lease_ms, "limit",
		    (json_int_t)ra->cfg.star.batch),
		NULL, &res, &p) != 0) {
		log_warn("star: cannot claim due orders: %s",
		    p->detail ? p->detail : "error");
		problem_free(p);
		return -1;
	}
	rn.owner = owner;
	rn.claimed_ms = time_mono_ms();
	n = json_array_size(json_object_get(res, "orders"));
	json_array_foreach(json_object_get(res, "orders"), i, s)
	{
		pthread_mutex_lock(&ra->lock);
		if (ra->stopping) {
			pthread_mutex_unlock(&ra->lock);
			/* hand the rest back at once for another RA */
			release(ra, &rn,
			    json_integer_value(json_object_get(s, "order_id")),
			    time_now_ms() / 1000, NULL, 0);
			continue;
		}
		pthread_mutex_unlock(&ra->lock);
		renew_one(ra, &rn, s);
	}
	if (n > 0)
		ra_count(ra, "anvil_ra_star_claims_total", NULL);
	json_decref(res);
	return (int)n;
}

static void *
star_main(void *arg)
{
	struct ra *ra = arg;
	char *owner, *tok = random_token(8);
	char host[64];
	int64_t period = ra->cfg.star.poll_ms;
	int n;

	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "ra");
	host[sizeof(host) - 1] = '\0';
	owner = xasprintf("%.40s:%ld:%s", host, (long)getpid(), tok);
	free(tok);
	log_info("star: renewal scheduler %s, every %lld ms", owner,
	    (long long)period);
	pthread_mutex_lock(&ra->lock);
	while (!ra->stopping) {
		pthread_mutex_unlock(&ra->lock);
		n = star_round(ra, owner);
		pthread_mutex_lock(&ra->lock);
		if (n >= ra->cfg.star.batch)
			continue; /* more may be due */
		ra_wait_locked(ra, period);
	}
	pthread_mutex_unlock(&ra->lock);
	free(owner);
	return NULL;
}

/* See ra_int.h. */
int
ra_star_start(struct ra *ra)
{
	if (!ra->cfg.star.enabled)
		return 0;
	if (pthread_create(&ra->star_thread, NULL, star_main, ra) != 0)
		return -1;
	ra->star_started = 1;
	return 0;
}

/* See ra_int.h: call with ra->stopping set and broadcast. */
void
ra_star_stop(struct ra *ra)
{
	if (ra->star_started)
		pthread_join(ra->star_thread, NULL);
	ra->star_started = 0;
}
