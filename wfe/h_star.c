/*
 * h_star.c - RFC 8739 STAR at the ACME surface: the newOrder
 * "auto-renewal" object, the STAR members of an order, cancellation by
 * POST {"status": "canceled"} to the order, and the star-certificate URL
 * that always serves the order's current certificate.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "wfe/wfe_int.h"

/* See wfe_int.h. */
int
wfe_star_new_order_param(
    struct wfe_req *r, const json_t *payload, json_t *params)
{
	json_t *ar = json_object_get(payload, "auto-renewal");

	if (ar == NULL)
		return 0;
	if (!json_is_object(ar)) {
		wfe_reply_prob(r, PROB_MALFORMED,
		    "\"auto-renewal\" must be an object (RFC 8739 section "
		    "3.1.1)");
		return -1;
	}
	json_object_set(params, "auto_renewal", ar);
	return 0;
}

/* See wfe_int.h. */
void
wfe_star_order_json(const struct wfe_req *r, const json_t *order, json_t *j)
{
	const json_t *star = json_object_get(order, "star");
	const char *st = json_string_value(json_object_get(order, "status"));
	json_t *ar, *v;
	char *u;

	if (!json_is_object(star))
		return;
	ar = json_object();
	if ((v = json_object_get(star, "start_date")) != NULL)
		json_object_set(ar, "start-date", v);
	json_object_set(ar, "end-date", json_object_get(star, "end_date"));
	json_object_set(ar, "lifetime", json_object_get(star, "lifetime"));
	json_object_set(
	    ar, "lifetime-adjust", json_object_get(star, "lifetime_adjust"));
	json_object_set_new(ar, "allow-certificate-get",
	    json_boolean(json_is_true(json_object_get(star, "allow_get"))));
	json_object_set_new(j, "auto-renewal", ar);
	/* §3.1.1: "star-certificate" is used instead of "certificate". */
	if (json_object_get(j, "certificate") != NULL) {
		json_object_del(j, "certificate");
		u = wfe_url(r, "/acme/star-cert/%lld",
		    (long long)json_integer_value(
			json_object_get(order, "id")));
		json_object_set_new(j, "star-certificate", json_string(u));
		free(u);
	}
	/* A valid STAR order lives until its end-date; a canceled one got
	 * its "expires" set at cancellation (§3.1.2). */
	if (st != NULL && strcmp(st, "valid") == 0)
		json_object_set(
		    j, "expires", json_object_get(star, "end_date"));
}

/* See wfe_int.h. */
void
wfe_star_order_update(struct wfe_req *r, int64_t id)
{
	json_t *payload = NULL, *params = NULL, *res = NULL, *st;
	char *u;

	if (wfe_jws_payload(r, &payload) != 0)
		goto out;
	st = json_object_get(payload, "status");
	if (!json_is_string(st) ||
	    strcmp(json_string_value(st), "canceled") != 0) {
		wfe_reply_prob(r, PROB_MALFORMED,
		    "an order is read with POST-as-GET (empty payload); the "
		    "only update is {\"status\": \"canceled\"} of an "
		    "auto-renewal order (RFC 8739 section 3.1.2)");
		goto out;
	}
	params = json_pack("{sIsI}", "account_id", (json_int_t)r->account_id,
	    "order_id", (json_int_t)id);
	if (wfe_rpc(r, r->w->ra, RPC_RA_STAR_CANCEL, params, &res) != 0)
		goto out;
	u = wfe_url(r, "/acme/order/%lld", (long long)id);
	wfe_add_header(r, "Location", "%s", u);
	free(u);
	wfe_reply_json(r, 200, wfe_acme_order(r, res));
out:
	json_decref(payload);
	json_decref(params);
	json_decref(res);
}

/* "Thu, 03 Oct 2019 00:00:00 GMT" (RFC 7231 §7.1.1.1 IMF-fixdate) of an
 * RFC 3339 time into buf; 0 or -1. */
static int
http_date(const char *rfc3339, char *buf, size_t len)
{
	static const char *const days[] = {
	    "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const mons[] = {"Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t t;
	struct tm tm;

	if (rfc3339 == NULL || time_parse_rfc3339(rfc3339, &t) != 0 ||
	    gmtime_r(&t, &tm) == NULL)
		return -1;
	snprintf(buf, len, "%s, %02d %s %04d %02d:%02d:%02d GMT",
	    days[tm.tm_wday], tm.tm_mday, mons[tm.tm_mon], tm.tm_year + 1900,
	    tm.tm_hour, tm.tm_min, tm.tm_sec);
	return 0;
}

static int64_t
epoch_of(const json_t *o, const char *key)
{
	time_t t;
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL && time_parse_rfc3339(s, &t) == 0 ? (int64_t)t : 0;
}

/* The PEM chain of cert (borrowed sa.star_get "cert" with der): new
 * string, or NULL after replying. */
static char *
chain_pem(struct wfe_req *r, const json_t *cert)
{
	json_t *iss;
	char *leaf, *out;
	const char *chain;

	if (wfe_cert_leaf(r, cert, &leaf, &iss) != 0)
		return NULL;
	chain = json_string_value(
	    json_array_get(json_object_get(iss, "chains_pem"), 0));
	out = xasprintf("%s%s", leaf, chain ? chain : "");
	free(leaf);
	json_decref(iss);
	return out;
}

void
wfe_h_star_cert(struct wfe_req *r, const char *tail)
{
	json_t *params = NULL, *star = NULL, *cert;
	struct problem *p = NULL;
	const char *st;
	char nb[40], na[40], *body = NULL;
	int64_t id, now, next, fresh;

	if (wfe_parse_id(tail, strlen(tail), &id) != 0) {
		wfe_reply_prob(r, PROB_NOT_FOUND, "no such certificate");
		goto out;
	}
	if (wfe_cert_read_check(r) != 0)
		goto out;
	params = json_pack("{sIsb}", "order_id", (json_int_t)id, "with_der", 1);
	if (wfe_rpc_raw(r, r->w->sa, RPC_SA_STAR_GET, params, &star, &p) != 0) {
		if (p->type == PROB_NOT_FOUND) {
			problem_free(p);
			wfe_reply_prob(
			    r, PROB_NOT_FOUND, "no such certificate");
		} else
			wfe_reply_problem(r, p);
		goto out;
	}
	if (wfe_cert_owner_check(r, star) != 0)
		goto out;
	/* §3.3: unauthenticated GET (and HEAD) only when negotiated. */
	if (r->method != WFE_POST &&
	    !json_is_true(json_object_get(star, "allow_get"))) {
		wfe_reply_prob(r, PROB_METHOD_NOT_ALLOWED,
		    "this order did not negotiate allow-certificate-get: "
		    "read its certificate with POST-as-GET");
		wfe_add_header(r, "Allow", "POST");
		goto out;
	}
	st = json_string_value(json_object_get(star, "status"));
	cert = json_object_get(star, "cert");
	now = time_now_ms() / 1000;
	/* §3.1.2: a canceled order's star-certificate is 403
	 * autoRenewalCanceled. */
	if (st != NULL && strcmp(st, "canceled") == 0) {
		wfe_reply_prob(r, PROB_AUTO_RENEWAL_CANCELED,
		    "the auto-renewal order was canceled");
		goto out;
	}
	/* §3.2: "For expired Orders, the server MUST respond with 403". */
	if (json_is_true(json_object_get(star, "end_passed")) ||
	    (cert != NULL && epoch_of(cert, "not_after") < now)) {
		wfe_reply_prob(r, PROB_AUTO_RENEWAL_EXPIRED,
		    "the auto-renewal order has expired");
		goto out;
	}
	if (cert == NULL) {
		wfe_reply_prob(r, PROB_NOT_FOUND,
		    "no certificate issued for this order yet");
		goto out;
	}
	if ((body = chain_pem(r, cert)) == NULL)
		goto out;
	/* §3.2: Cert-Not-Before / Cert-Not-After, equal to the fields of
	 * the end-entity certificate, as HTTP-dates. */
	if (http_date(json_string_value(json_object_get(cert, "not_before")),
		nb, sizeof(nb)) == 0 &&
	    http_date(json_string_value(json_object_get(cert, "not_after")), na,
		sizeof(na)) == 0) {
		wfe_add_header(r, "Cert-Not-Before", "%s", nb);
		wfe_add_header(r, "Cert-Not-After", "%s", na);
	}
	/* §3.6: a GET answer goes stale in caches no later than the
	 * certificate's end, and here when the next one is published. */
	if (r->method != WFE_POST) {
		fresh = epoch_of(cert, "not_after") - now;
		next = epoch_of(star, "next_at");
		if (next > 0 && next - now < fresh)
			fresh = next - now;
		wfe_add_header(r, "Cache-Control", "public, max-age=%lld",
		    (long long)(fresh > 0 ? fresh : 0));
	}
	wfe_reply_pem_chain(r, body);
	body = NULL;
out:
	free(body);
	json_decref(params);
	json_decref(star);
}
