/*
 * va.c - the VA object: its loop thread, the submission queue, the job
 * life cycle (timeout, test sleep, completion) and name resolution shared
 * by the challenge types.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <openssl/err.h>

#include "va/va_int.h"

/*
 * The VA's module for each challenge type of the shared table
 * (core/challenge.c); a type without one is refused as unsupported.
 */
static void (*const chal_start[CHAL__MAX])(struct va_job *j) = {
    [CHAL_HTTP01] = va_http01_start,
    [CHAL_DNS01] = va_dns01_start,
    [CHAL_TLSALPN01] = va_tlsalpn01_start,
    [CHAL_DNSACCOUNT01] = va_dnsaccount01_start,
    [CHAL_DNSPERSIST01] = va_dnspersist01_start,
    [CHAL_ONIONCSR01] = va_onioncsr01_start,
    [CHAL_DEVICEATTEST01] = va_deviceattest01_start,
    [CHAL_EMAILREPLY00] = va_emailreply00_start,
    [CHAL_REMOTEATTEST01] = va_remoteattest01_start,
    [CHAL_TKAUTH01] = va_tkauth01_start,
    [CHAL_BPNODEID00] = va_bpnodeid00_start,
};

void
va_result_clear(struct va_result *r)
{
	if (r == NULL)
		return;
	json_decref(r->record);
	problem_free(r->prob);
	memset(r, 0, sizeof(*r));
}

char *
va_keyauth_digest(const char *keyauth)
{
	uint8_t d[32];

	sha256((const uint8_t *)keyauth, strlen(keyauth), d);
	return b64url_encode(d, sizeof(d));
}

const char *
va_addr_str(int family, const uint8_t *raw, char *buf, size_t buflen)
{
	if (inet_ntop(family, raw, buf, (socklen_t)buflen) == NULL)
		snprintf(buf, buflen, "?");
	return buf;
}

/* ------------------------------------------------------------------ */
/* Job life cycle                                                      */
/* ------------------------------------------------------------------ */

void
va_job_ref(struct va_job *j)
{
	j->refs++;
}

static void
job_free(struct va_job *j)
{
	size_t i;

	free(j->ident);
	free(j->token);
	free(j->keyauth);
	free(j->account_uri);
	free(j->caa_method);
	json_decref(j->persist);
	json_decref(j->payload);
	free(j->tk_x5u_pem);
	free(j->rid);
	json_decref(j->record);
	problem_free(j->prob);
	if (j->timer)
		event_free(j->timer);
	if (j->sleeper)
		event_free(j->sleeper);
	if (j->retry_ev)
		event_free(j->retry_ev);
	va_conn_free(j->conn);
	free(j->dns_host);
	va_dns_result_clear(&j->dns_err[0]);
	va_dns_result_clear(&j->dns_err[1]);
	va_url_clear(&j->url);
	for (i = 0; i < sizeof(j->seen) / sizeof(j->seen[0]); i++)
		free(j->seen[i]);
	free(j->caa_name);
	va_email_job_free(j->email);
	va_bp_job_free(j->bp);
	free(j);
}

void
va_job_unref(struct va_job *j)
{
	if (--j->refs == 0)
		job_free(j);
}

static void
count_result(struct va_job *j, const char *result)
{
	char labels[128];
	double secs = (double)(time_mono_ms() - j->started_ms) / 1000.0;

	if (j->va->metrics == NULL)
		return;
	snprintf(labels, sizeof(labels), "type=\"%s\",result=\"%s\"",
	    j->kind == VA_JOB_CAA ? "caa" : chal_name(j->chal), result);
	metrics_counter_add(j->va->metrics, "anvil_va_validations_total",
	    "Validations by challenge type and result.", labels, 1);
	metrics_histogram_observe(j->va->metrics,
	    "anvil_va_validation_duration_seconds",
	    "Time from start to result of a validation.", labels, secs);
}

void
va_job_finish(struct va_job *j, struct problem *prob)
{
	struct va_result res;

	if (j->finished) {
		problem_free(prob);
		return;
	}
	j->finished = 1;
	if (j->rprev)
		j->rprev->rnext = j->rnext;
	else if (j->va->running == j)
		j->va->running = j->rnext;
	if (j->rnext)
		j->rnext->rprev = j->rprev;
	j->rprev = j->rnext = NULL;
	if (j->timer)
		event_del(j->timer);
	if (j->sleeper)
		event_del(j->sleeper);
	if (j->retry_ev)
		event_del(j->retry_ev);
	va_conn_free(j->conn);
	j->conn = NULL;
	if (prob != NULL && prob->identifier == NULL)
		prob->identifier = json_pack("{s:s,s:s}", "type",
		    ident_type_name(j->itype), "value", j->ident);
	memset(&res, 0, sizeof(res));
	res.valid = prob == NULL;
	res.prob = prob;
	res.record = j->record;
	j->record = NULL;
	if (res.record == NULL)
		res.record = json_array();
	log_audit(j->rid, "validation",
	    "type=%s identifier=%s:%s%s "
	    "result=%s problem=%s detail=\"%s\" ms=%lld",
	    j->kind == VA_JOB_CAA ? "caa" : chal_name(j->chal),
	    ident_type_name(j->itype), j->wildcard ? "*." : "", j->ident,
	    prob ? "invalid" : "valid", prob ? prob_type_name(prob->type) : "-",
	    prob && prob->detail ? prob->detail : "",
	    (long long)(time_mono_ms() - j->started_ms));
	count_result(j, prob ? prob_type_name(prob->type) : "valid");
	pthread_mutex_lock(&j->va->mu);
	j->va->inflight--;
	pthread_mutex_unlock(&j->va->mu);
	if (j->va->metrics != NULL)
		metrics_gauge_add(j->va->metrics, "anvil_va_inflight",
		    "Validations and CAA checks in progress.", NULL, -1);
	j->done(j->done_arg, &res);
	va_result_clear(&res);
	va_job_unref(j);
}

static void
timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct va_job *j = arg;
	struct problem *p;
	double s = (double)j->timeout_ms / 1000.0;

	(void)fd;
	(void)what;
	if (j->conn != NULL) {
		switch (j->conn->phase) {
		case VA_PHASE_CONNECT:
			p = problem_new(PROB_CONNECTION,
			    "Timeout during "
			    "connect to %s after %.1fs (likely a firewall "
			    "problem or nothing listening)",
			    j->dns_host ? j->dns_host : j->ident, s);
			break;
		case VA_PHASE_TLS:
			p = problem_new(PROB_TLS,
			    "Timeout during the TLS "
			    "handshake with %s after %.1fs",
			    j->dns_host ? j->dns_host : j->ident, s);
			break;
		default:
			p = problem_new(PROB_CONNECTION,
			    "Timeout after "
			    "connect to %s: no complete response within "
			    "%.1fs (your server may be slow or overloaded)",
			    j->dns_host ? j->dns_host : j->ident, s);
			break;
		}
	} else if (j->kind == VA_JOB_VALIDATE &&
	    j->chal == CHAL_EMAILREPLY00 && j->stage != NULL &&
	    strcmp(j->stage, "email") == 0) {
		p = problem_new(PROB_UNAUTHORIZED,
		    "No reply to the challenge email sent to %s arrived "
		    "within %.1fs (RFC 8823 §3.2)",
		    j->ident, s);
	} else if (j->kind == VA_JOB_VALIDATE && j->chal == CHAL_BPNODEID00) {
		/* RFC 9891 §4.3.2: "The lack of a response within the
		 * expected response interval ... SHALL also be treated as a
		 * validation failure." */
		p = problem_new(PROB_INCORRECT_RESPONSE,
		    "No Response Bundle from %s within %.1fs", j->ident, s);
	} else if (j->stage != NULL && strcmp(j->stage, "dns") == 0) {
		p = problem_new(PROB_DNS,
		    "DNS problem: query timed out "
		    "looking up %s (no answer within %.1fs)",
		    j->dns_host ? j->dns_host : j->ident, s);
	} else {
		p = problem_new(j->kind == VA_JOB_CAA ||
			    (j->stage && strcmp(j->stage, "caa") == 0)
			? PROB_CAA
			: PROB_CONNECTION,
		    "Validation of %s timed out after %.1fs", j->ident, s);
	}
	va_job_finish(j, p);
}

static void
begin(struct va_job *j)
{
	if (j->va->cfg->always_valid) {
		va_job_finish(j, NULL);
		return;
	}
	if (j->kind == VA_JOB_CAA) {
		va_caa_start(j);
		return;
	}
	chal_start[j->chal](j);
}

static void
sleep_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	begin(arg);
}

static void
job_start(struct va_job *j)
{
	struct va *va = j->va;
	struct timeval tv;

	j->started_ms = time_mono_ms();
	j->rnext = va->running;
	if (va->running)
		va->running->rprev = j;
	va->running = j;
	j->timer = evtimer_new(va->base, timeout_cb, j);
	tv.tv_sec = j->timeout_ms / 1000;
	tv.tv_usec = (j->timeout_ms % 1000) * 1000;
	if (j->timer == NULL || evtimer_add(j->timer, &tv) != 0) {
		log_bug("cannot arm the validation timer");
		va_job_finish(j,
		    problem_new(PROB_SERVER_INTERNAL,
			"VA: "
			"cannot arm a timer"));
		return;
	}
	if (va->cfg->sleep_max_ms > 0 && j->kind == VA_JOB_VALIDATE) {
		uint32_t r;
		int64_t ms;
		random_bytes((uint8_t *)&r, sizeof(r));
		ms = (int64_t)(r % (uint32_t)(va->cfg->sleep_max_ms + 1));
		j->sleeper = evtimer_new(va->base, sleep_cb, j);
		tv.tv_sec = ms / 1000;
		tv.tv_usec = (ms % 1000) * 1000;
		if (j->sleeper != NULL && evtimer_add(j->sleeper, &tv) == 0)
			return;
		log_warn("va: cannot arm the test sleep timer; not sleeping");
	}
	begin(j);
}

/* ------------------------------------------------------------------ */
/* Name resolution shared by http-01 and tls-alpn-01                   */
/* ------------------------------------------------------------------ */

struct resolve_ctx {
	struct va_job *j;
	void (*next)(struct va_job *j);
};

static struct problem *
dns_problem(const char *host, const struct va_dns_result *a,
    const struct va_dns_result *aaaa)
{
	const struct va_dns_result *r = a;

	/* Report the more telling of the two failures. */
	if (a->status == VA_DNS_NODATA || a->status == VA_DNS_OK)
		r = aaaa;
	switch (r->status) {
	case VA_DNS_NXDOMAIN:
		return problem_new(PROB_DNS,
		    "DNS problem: NXDOMAIN looking "
		    "up %s for %s - check that a DNS record exists for this "
		    "domain",
		    r->qtype == ns_t_a ? "A" : "AAAA", host);
	case VA_DNS_SERVFAIL:
		return problem_new(PROB_DNS,
		    "DNS problem: SERVFAIL looking "
		    "up %s for %s - the domain's nameservers may be "
		    "malfunctioning",
		    r->qtype == ns_t_a ? "A" : "AAAA", host);
	case VA_DNS_TIMEOUT:
		return problem_new(PROB_DNS,
		    "DNS problem: query timed out "
		    "looking up %s for %s",
		    r->qtype == ns_t_a ? "A" : "AAAA", host);
	case VA_DNS_REFUSED:
		return problem_new(PROB_DNS,
		    "DNS problem: REFUSED looking "
		    "up %s for %s",
		    r->qtype == ns_t_a ? "A" : "AAAA", host);
	case VA_DNS_NODATA:
	case VA_DNS_OK:
		return problem_new(PROB_DNS,
		    "DNS problem: no valid A or AAAA "
		    "records found for %s",
		    host);
	default:
		return problem_new(PROB_DNS,
		    "DNS problem: looking up %s for "
		    "%s: %s",
		    r->qtype == ns_t_a ? "A" : "AAAA", host, r->msg);
	}
}

static void
resolve_done(struct va_job *j, void (*next)(struct va_job *j))
{
	struct va_dns_result *res;
	json_t *list = json_array();
	char buf[64], why[256] = "";
	size_t i;
	int k, any = 0;

	j->have_addr[0] = j->have_addr[1] = 0;
	for (k = 0; k < 2; k++) {
		res = &j->dns_err[k];
		for (i = 0; i < res->naddrs; i++) {
			int slot = res->families[i] == AF_INET6 ? 0 : 1;
			json_array_append_new(list,
			    json_string(va_addr_str(res->families[i],
				res->addrs[i], buf, sizeof(buf))));
			any = 1;
			if (j->have_addr[slot])
				continue;
			if (!va_netpolicy_allows(&j->va->policy,
				res->families[i], res->addrs[i], why,
				sizeof(why)))
				continue;
			j->have_addr[slot] = 1;
			j->addr_family[slot] = res->families[i];
			memcpy(j->addr_raw[slot], res->addrs[i], 16);
		}
	}
	if (j->hop != NULL)
		json_object_set(j->hop, "addresses_resolved", list);
	json_decref(list);
	if (!any) {
		/* dns_err[0] holds AAAA, [1] A */
		va_job_finish(j,
		    dns_problem(j->dns_host, &j->dns_err[1], &j->dns_err[0]));
		return;
	}
	if (!j->have_addr[0] && !j->have_addr[1]) {
		va_job_finish(j,
		    problem_new(PROB_CONNECTION,
			"%s resolves "
			"only to addresses the VA may not contact: %s",
			j->dns_host, why));
		return;
	}
	j->stage = "connect";
	next(j);
}

static void
resolve_cb(void *arg, struct va_dns_result *res)
{
	struct resolve_ctx *rc = arg;
	struct va_job *j = rc->j;
	int slot = res->qtype == ns_t_aaaa ? 0 : 1;

	if (!j->finished) {
		va_dns_result_clear(&j->dns_err[slot]);
		j->dns_err[slot] = *res;
		memset(res, 0, sizeof(*res));
		if (--j->dns_pending == 0)
			resolve_done(j, rc->next);
	}
	va_job_unref(j);
	free(rc);
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct va_job *j = arg;

	(void)fd;
	(void)what;
	if (!j->finished && j->retry_fn != NULL)
		j->retry_fn(j);
}

int
va_job_retry_conn(struct va_job *j, int sys_errno, const char *msg,
    void (*again)(struct va_job *j))
{
	int64_t delay = 250LL << (j->conn_retries < 6 ? j->conn_retries : 6);
	int64_t left = j->timeout_ms - (time_mono_ms() - j->started_ms);
	struct timeval tv;
	json_t *att;

	if ((sys_errno != ECONNREFUSED && sys_errno != ECONNRESET) ||
	    j->conn_retries >= j->va->cfg->connect_retries || j->finished)
		return 0;
	/* leave the next attempt at least a second before the deadline */
	if (left < delay + 1000)
		return 0;
	if (j->hop != NULL) {
		att = json_object_get(j->hop, "attempts");
		if (att == NULL) {
			att = json_array();
			if (json_object_set_new(j->hop, "attempts", att) != 0)
				att = NULL;
		}
		if (att != NULL)
			json_array_append_new(att,
			    json_pack("{s:s,s:I,s:I}", "error",
				msg != NULL ? msg : strerror(sys_errno),
				"after_ms",
				(json_int_t)(time_mono_ms() - j->started_ms),
				"retry_in_ms", (json_int_t)delay));
	}
	if (j->retry_ev == NULL &&
	    (j->retry_ev = evtimer_new(j->va->base, retry_cb, j)) == NULL)
		return 0;
	tv.tv_sec = (time_t)(delay / 1000);
	tv.tv_usec = (suseconds_t)((delay % 1000) * 1000);
	if (evtimer_add(j->retry_ev, &tv) != 0)
		return 0;
	j->retry_fn = again;
	j->conn_retries++;
	if (j->va->metrics != NULL)
		metrics_counter_add(j->va->metrics,
		    "anvil_va_connect_retries_total",
		    "Validation connections retried after a refusal or "
		    "reset (RFC 8555 section 8.2).",
		    NULL, 1);
	log_msg(LOG_LEVEL_INFO, j->rid,
	    "validation of %s: %s; retry %d in %lld ms", j->ident,
	    msg != NULL ? msg : strerror(sys_errno), j->conn_retries,
	    (long long)delay);
	return 1;
}

/* See va_int.h. */
int
va_job_conn_next(struct va_job *j, int sys_errno, const char *msg,
    void (*again)(struct va_job *j))
{
	int slot = j->addr_try;

	if (slot == 0 && j->have_addr[1]) {
		/* IPv6 failed: fall back to IPv4. */
		j->addr_try = 1;
		va_job_note_tried(j, slot);
		again(j);
		return 1;
	}
	return va_job_retry_conn(j, sys_errno, msg, again);
}

/* See va_int.h. */
void
va_job_conn_failed(struct va_job *j, int sys_errno, const char *msg,
    void (*again)(struct va_job *j), const char *target, int port,
    const char *purpose)
{
	char addr[64];
	int slot = j->addr_try;

	if (va_job_conn_next(j, sys_errno, msg, again))
		return;
	va_job_finish(j,
	    problem_new(PROB_CONNECTION,
		"Connecting to %s (address %s, port %d)%s failed: %s", target,
		va_addr_str(j->addr_family[slot], j->addr_raw[slot], addr,
		    sizeof(addr)),
		port, purpose, msg));
}

/* See va_int.h. */
int
va_job_addr_slot(struct va_job *j)
{
	char addr[64];
	int slot;

	if (j->addr_try == 0 && !j->have_addr[0])
		j->addr_try = 1;
	slot = j->addr_try;
	json_object_set_new(j->hop, "address_used",
	    json_string(va_addr_str(
		j->addr_family[slot], j->addr_raw[slot], addr, sizeof(addr))));
	return slot;
}

/* See va_int.h. */
int
va_job_dial(struct va_job *j, int port, int tls, const char *sni,
    const char *alpn, const char *request, int handshake_only, va_conn_cb cb,
    char *err, size_t errlen)
{
	int slot = va_job_addr_slot(j);

	j->conn = va_conn_start(j->va, j->addr_family[slot], j->addr_raw[slot],
	    port, tls, sni, alpn, request, handshake_only, cb, j, err, errlen);
	if (j->conn == NULL)
		return -1;
	if (slot == 0 && j->have_addr[1])
		(void)va_conn_connect_timeout(j->conn, j->timeout_ms / 3);
	return 0;
}

void
va_job_note_tried(struct va_job *j, int slot)
{
	json_t *tried;
	char buf[64];

	if (j->hop == NULL)
		return;
	tried = json_object_get(j->hop, "addresses_tried");
	if (tried == NULL) {
		tried = json_array();
		if (json_object_set_new(j->hop, "addresses_tried", tried) != 0)
			return;
	}
	json_array_append_new(tried,
	    json_string(va_addr_str(
		j->addr_family[slot], j->addr_raw[slot], buf, sizeof(buf))));
}

void
va_job_resolve(
    struct va_job *j, const char *host, void (*next)(struct va_job *j))
{
	uint8_t raw[16];
	char why[256];
	int k;

	free(j->dns_host);
	j->dns_host = xstrdup(host);
	j->have_addr[0] = j->have_addr[1] = 0;
	j->addr_try = 0;
	if (j->hop != NULL)
		json_object_set_new(j->hop, "hostname", json_string(host));
	if (inet_pton(AF_INET6, host, raw) == 1 ||
	    inet_pton(AF_INET, host, raw) == 1) {
		int fam = strchr(host, ':') ? AF_INET6 : AF_INET;
		int slot = fam == AF_INET6 ? 0 : 1;
		if (j->hop != NULL)
			json_object_set_new(j->hop, "addresses_resolved",
			    json_pack("[s]", host));
		if (!va_netpolicy_allows(
			&j->va->policy, fam, raw, why, sizeof(why))) {
			va_job_finish(j,
			    problem_new(PROB_CONNECTION,
				"the VA "
				"may not contact %s: %s",
				host, why));
			return;
		}
		j->have_addr[slot] = 1;
		j->addr_family[slot] = fam;
		memset(j->addr_raw[slot], 0, 16);
		memcpy(j->addr_raw[slot], raw, fam == AF_INET6 ? 16 : 4);
		j->stage = "connect";
		next(j);
		return;
	}
	j->stage = "dns";
	j->dns_pending = 2;
	for (k = 0; k < 2; k++) {
		struct resolve_ctx *rc = xcalloc(1, sizeof(*rc));
		rc->j = j;
		rc->next = next;
		va_job_ref(j);
		va_dns_query(
		    j->va, host, k == 0 ? ns_t_aaaa : ns_t_a, resolve_cb, rc);
	}
}

/* ------------------------------------------------------------------ */
/* Loop thread and submission                                          */
/* ------------------------------------------------------------------ */

static void
wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct va *va = arg;
	struct va_job *list, *j;
	uint64_t v;

	(void)what;
	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("va: eventfd read: %s", strerror(errno));
	pthread_mutex_lock(&va->mu);
	list = va->q_head;
	va->q_head = va->q_tail = NULL;
	if (va->stopping)
		event_base_loopbreak(va->base);
	pthread_mutex_unlock(&va->mu);
	while ((j = list) != NULL) {
		list = j->next;
		j->next = NULL;
		job_start(j);
	}
}

static void
beat_cb(evutil_socket_t fd, short what, void *arg)
{
	struct va *va = arg;

	(void)fd;
	(void)what;
	__atomic_store_n(&va->beat_ms, time_mono_ms(), __ATOMIC_RELAXED);
}

int
va_health(struct va *va, char *msg, size_t msglen)
{
	int64_t age =
	    time_mono_ms() - __atomic_load_n(&va->beat_ms, __ATOMIC_RELAXED);

	if (age > 5000) {
		snprintf(msg, msglen, "VA event loop stalled for %lld ms",
		    (long long)age);
		return -1;
	}
	return 0;
}

static void *
loop_main(void *arg)
{
	struct va *va = arg;

	event_base_loop(va->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

static void
wake(struct va *va)
{
	uint64_t one = 1;

	if (write(va->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("va: eventfd write: %s", strerror(errno));
}

struct va *
va_new(const struct va_config *cfg, struct metrics *metrics, char *err,
    size_t errlen)
{
	struct va *va = xcalloc(1, sizeof(*va));

	va->cfg = cfg;
	va->metrics = metrics;
	va->wake_fd = -1;
	if (pthread_mutex_init(&va->mu, NULL) != 0) {
		snprintf(err, errlen, "pthread_mutex_init failed");
		free(va);
		return NULL;
	}
	if (va_netpolicy_init(&va->policy, cfg->network_mode,
		cfg->network_allow, cfg->n_network_allow, err, errlen) != 0)
		goto fail;
	va->base = event_base_new();
	if (va->base == NULL) {
		snprintf(err, errlen, "event_base_new failed");
		goto fail;
	}
	va->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (va->wake_fd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	va->wake_ev =
	    event_new(va->base, va->wake_fd, EV_READ | EV_PERSIST, wake_cb, va);
	if (va->wake_ev == NULL || event_add(va->wake_ev, NULL) != 0) {
		snprintf(err, errlen, "cannot watch the eventfd");
		goto fail;
	}
	va->beat_ms = time_mono_ms();
	va->beat_ev = event_new(va->base, -1, EV_PERSIST, beat_cb, va);
	if (va->beat_ev == NULL ||
	    event_add(va->beat_ev, &(struct timeval){1, 0}) != 0) {
		snprintf(err, errlen, "cannot add the heartbeat timer");
		goto fail;
	}
	va->ssl_ctx = SSL_CTX_new(TLS_client_method());
	if (va->ssl_ctx == NULL ||
	    SSL_CTX_set_min_proto_version(va->ssl_ctx, TLS1_2_VERSION) != 1) {
		snprintf(err, errlen, "cannot create the TLS context");
		goto fail;
	}
	SSL_CTX_set_verify(va->ssl_ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_options(
	    va->ssl_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(va->ssl_ctx, SSL_SESS_CACHE_OFF);
	if (va_dns_init(va, err, errlen) != 0)
		goto fail;
	err[0] = '\0';
	va->mpic = va_mpic_new(cfg, metrics, err, errlen);
	if (va->mpic == NULL && err[0] != '\0')
		goto fail;
	if ((va->attest = va_attest_new(cfg, err, errlen)) == NULL)
		goto fail;
	if (va_email_new(cfg, &va->email, err, errlen) != 0)
		goto fail;
	if (cfg->rats != NULL &&
	    (va->rats = va_rats_new(cfg->rats, va->attest, err, errlen)) ==
		NULL)
		goto fail;
	if ((va->tkauth = va_tkauth_new(cfg, err, errlen)) == NULL)
		goto fail;
	if (va_bp_new(cfg, &va->bp, err, errlen) != 0)
		goto fail;
	if (pthread_create(&va->thread, NULL, loop_main, va) != 0) {
		snprintf(err, errlen, "cannot start the VA loop thread");
		goto fail;
	}
	va->thread_started = 1;
	return va;
fail:
	va_free(va);
	return NULL;
}

void
va_free(struct va *va)
{
	struct va_job *j;

	if (va == NULL)
		return;
	va_mpic_free(va->mpic);
	if (va->thread_started) {
		pthread_mutex_lock(&va->mu);
		va->stopping = 1;
		pthread_mutex_unlock(&va->mu);
		wake(va);
		pthread_join(va->thread, NULL);
	}
	/* Jobs never started fail now; running ones fail as c-ares is
	 * destroyed or below. */
	while ((j = va->q_head) != NULL) {
		va->q_head = j->next;
		j->started_ms = time_mono_ms();
		va_job_finish(j,
		    problem_new(PROB_UNAVAILABLE,
			"VA shutting "
			"down"));
	}
	while ((j = va->running) != NULL)
		va_job_finish(j,
		    problem_new(PROB_UNAVAILABLE,
			"VA shutting "
			"down"));
	if (va->base != NULL)
		va_dns_shutdown(va);
	if (va->wake_ev)
		event_free(va->wake_ev);
	if (va->beat_ev)
		event_free(va->beat_ev);
	if (va->wake_fd >= 0)
		close(va->wake_fd);
	if (va->base != NULL)
		event_base_free(va->base);
	va_email_free(va->email);
	va_bp_free(va->bp);
	SSL_CTX_free(va->ssl_ctx);
	va_netpolicy_clear(&va->policy);
	va_attest_free(va->attest);
	va_rats_free(va->rats);
	va_tkauth_free(va->tkauth);
	pthread_mutex_destroy(&va->mu);
	free(va);
}

int
va_inflight(struct va *va)
{
	int n;

	pthread_mutex_lock(&va->mu);
	n = va->inflight;
	pthread_mutex_unlock(&va->mu);
	return n;
}

static struct va_job *
job_new(struct va *va, enum va_job_kind kind, enum ident_type itype,
    const char *value, int wildcard, const char *rid, int64_t timeout_ms,
    struct problem **prob)
{
	struct va_job *j;
	uint8_t raw[16];

	if (value == NULL || value[0] == '\0') {
		*prob = problem_new(PROB_MALFORMED, "identifier value missing");
		return NULL;
	}
	j = xcalloc(1, sizeof(*j));
	j->va = va;
	j->refs = 1;
	j->kind = kind;
	j->itype = itype;
	j->ident = xstrdup(value);
	j->wildcard = wildcard;
	j->rid = rid ? xstrdup(rid) : NULL;
	j->timeout_ms = va->cfg->validation_timeout_ms;
	if (timeout_ms > 0 && timeout_ms < j->timeout_ms)
		j->timeout_ms =
		    timeout_ms; /* the caller's deadline is nearer */
	if (itype == IDENT_IP) {
		if (inet_pton(AF_INET, value, raw) == 1) {
			j->ip_family = AF_INET;
		} else if (inet_pton(AF_INET6, value, raw) == 1) {
			j->ip_family = AF_INET6;
		} else {
			*prob = problem_new(PROB_MALFORMED,
			    "\"%s\" is not an "
			    "IP address",
			    value);
			job_free(j);
			return NULL;
		}
		memcpy(j->ip, raw, 16);
	} else if (itype == IDENT_DNS) {
		char nerr[128];
		char *norm = ident_dns_normalize(value, 0, nerr, sizeof(nerr));
		if (norm == NULL || strcmp(norm, value) != 0) {
			*prob = problem_new(PROB_MALFORMED,
			    "\"%.100s\" is not a "
			    "normalised DNS name%s%s",
			    value, norm ? "" : ": ", norm ? "" : nerr);
			free(norm);
			job_free(j);
			return NULL;
		}
		free(norm);
	} else if (ident_is_device(itype) ||
	    itype == IDENT_REMOTE_ATTESTATION) {
		/* nothing to resolve: the attestation names the device */
	} else if (itype == IDENT_BUNDLE_EID) {
		char nerr[200], *norm = NULL;
		if (ident_bundle_eid_normalize(value, &norm, nerr,
			sizeof(nerr)) != 0 ||
		    strcmp(norm, value) != 0) {
			*prob = problem_new(PROB_MALFORMED,
			    "\"%.100s\" is not a normalised DTN Node ID%s%s",
			    value, norm ? "" : ": ", norm ? "" : nerr);
			free(norm);
			job_free(j);
			return NULL;
		}
		free(norm);
	} else if (itype == IDENT_TNAUTHLIST) {
		char nerr[200];
		if (ident_tnauthlist_check(value, NULL, NULL, nerr,
			sizeof(nerr)) != 0) {
			*prob = problem_new(PROB_MALFORMED, "TNAuthList: %s",
			    nerr);
			job_free(j);
			return NULL;
		}
	} else if (itype == IDENT_EMAIL) {
		char nerr[128];
		char *norm = ident_email_normalize(value, nerr, sizeof(nerr));
		if (norm == NULL || strcmp(norm, value) != 0) {
			*prob = problem_new(PROB_MALFORMED,
			    "\"%.100s\" is not a normalised email address%s%s",
			    value, norm ? "" : ": ", norm ? "" : nerr);
			free(norm);
			job_free(j);
			return NULL;
		}
		free(norm);
	} else {
		*prob = problem_new(PROB_MALFORMED,
		    "unsupported identifier "
		    "type");
		job_free(j);
		return NULL;
	}
	return j;
}

static int
submit(struct va *va, struct va_job *j, struct problem **prob)
{
	pthread_mutex_lock(&va->mu);
	if (va->stopping) {
		pthread_mutex_unlock(&va->mu);
		*prob = problem_new(PROB_UNAVAILABLE, "VA shutting down");
		job_free(j);
		return -1;
	}
	va->inflight++;
	if (va->metrics != NULL)
		metrics_gauge_add(va->metrics, "anvil_va_inflight",
		    "Validations and CAA checks in progress.", NULL, 1);
	if (va->q_tail)
		va->q_tail->next = j;
	else
		va->q_head = j;
	va->q_tail = j;
	pthread_mutex_unlock(&va->mu);
	wake(va);
	return 0;
}

/* bp-nodeid-00's job timeout from the response object (frees j on error). */
static int
bp_timeout(struct va *va, const struct va_request *req, struct va_job *j,
    struct problem **prob)
{
	int64_t connect_ms = 0,
		ms = va_bp_interval(va->bp, req->payload, &connect_ms, prob);

	if (ms < 0) {
		job_free(j);
		return -1;
	}
	ms += connect_ms + 1000;
	j->timeout_ms =
	    req->timeout_ms > 0 && req->timeout_ms < ms ? req->timeout_ms : ms;
	return 0;
}

int
va_validate_async(struct va *va, const struct va_request *req, va_done_fn done,
    void *arg, struct problem **prob)
{
	const struct chal_info *c;
	struct va_job *j;
	char err[160];

	if ((c = chal_info(req->challenge)) == NULL ||
	    chal_start[req->challenge] == NULL) {
		*prob = problem_new(PROB_MALFORMED, "unknown challenge type");
		return -1;
	}
	if (req->token == NULL || req->key_authorization == NULL) {
		*prob = problem_new(PROB_MALFORMED,
		    "token and key_authorization are required");
		return -1;
	}
	if (chal_check(c, req->ident_type, req->wildcard, err, sizeof(err)) !=
	    0) {
		*prob = problem_new(PROB_MALFORMED, "%s", err);
		return -1;
	}
	/* RFC 9799 §3.1.1 / §3.2 / §8.4: a .onion name only by
	 * onion-csr-01, onion-csr-01 only for a .onion name */
	if (req->ident_type == IDENT_DNS &&
	    chal_check_onion(c, ident_onion_name(req->ident_value), err,
		sizeof(err)) != 0) {
		*prob = problem_new(PROB_MALFORMED, "%s", err);
		return -1;
	}
	if (req->challenge == CHAL_ONIONCSR01 &&
	    !json_is_string(json_object_get(req->payload, "csr"))) {
		*prob = problem_new(PROB_MALFORMED,
		    "onion-csr-01 needs the client's csr");
		return -1;
	}
	if (c->needs_account_uri &&
	    (req->account_uri == NULL || req->account_uri[0] == '\0')) {
		*prob = problem_new(PROB_MALFORMED,
		    "%s needs the account URL (account_uri)", c->name);
		return -1;
	}
	if (req->challenge == CHAL_DNSPERSIST01 &&
	    va_persist_check_params(req->persist, prob) != 0)
		return -1;
	j = job_new(va, VA_JOB_VALIDATE, req->ident_type, req->ident_value,
	    req->wildcard, req->request_id, req->timeout_ms, prob);
	if (j == NULL)
		return -1;
	j->chal = req->challenge;
	/* RFC 8823: a person may take minutes to answer; email.reply_timeout
	 * replaces validation_timeout (the caller's deadline still wins) */
	if (j->chal == CHAL_EMAILREPLY00 && va->cfg->email_reply_timeout_ms > 0)
		j->timeout_ms = req->timeout_ms > 0 &&
			req->timeout_ms < va->cfg->email_reply_timeout_ms
		    ? req->timeout_ms
		    : va->cfg->email_reply_timeout_ms;
	/* RFC 9891 §4.1.2: the response interval (+ connect) bounds it */
	if (j->chal == CHAL_BPNODEID00 && bp_timeout(va, req, j, prob) != 0)
		return -1;
	j->token = xstrdup(req->token);
	j->keyauth = xstrdup(req->key_authorization);
	j->account_uri = req->account_uri ? xstrdup(req->account_uri) : NULL;
	j->check_caa = req->check_caa;
	j->persist = req->persist ? json_deep_copy(req->persist) : NULL;
	j->payload = json_is_object(req->payload)
	    ? json_deep_copy(req->payload)
	    : NULL;
	j->tk_x5u_pem =
	    req->tkauth_x5u_pem ? xstrdup(req->tkauth_x5u_pem) : NULL;
	j->caa_method = xstrdup(c->name);
	j->record = json_array();
	j->done = done;
	j->done_arg = arg;
	return submit(va, j, prob);
}

/* A blocked caller of va_validate / va_check_caa. */
struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
	struct va_result res;
};

/* 0, or -1 (nothing to destroy) if the primitives cannot be made. */
static int
waiter_init(struct waiter *w)
{
	memset(w, 0, sizeof(*w));
	if (pthread_mutex_init(&w->mu, NULL) != 0)
		return -1;
	if (pthread_cond_init(&w->cv, NULL) != 0) {
		pthread_mutex_destroy(&w->mu);
		return -1;
	}
	return 0;
}

static void
waiter_done(void *arg, struct va_result *res)
{
	struct waiter *w = arg;

	pthread_mutex_lock(&w->mu);
	w->res = *res;
	memset(res, 0, sizeof(*res));
	w->done = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void
waiter_wait(struct waiter *w)
{
	pthread_mutex_lock(&w->mu);
	while (!w->done)
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
}

/* va_validate once the request is complete: submits and waits. */
static int
validate_wait(
    struct va *va, const struct va_request *req, struct va_result *res)
{
	struct waiter w;
	struct problem *prob = NULL;

	if (waiter_init(&w) != 0) {
		res->prob = problem_new(PROB_SERVER_INTERNAL,
		    "VA: cannot "
		    "create a condition variable");
		res->record = json_array();
		return -1;
	}
	if (va_validate_async(va, req, waiter_done, &w, &prob) != 0) {
		pthread_cond_destroy(&w.cv);
		pthread_mutex_destroy(&w.mu);
		res->prob = prob;
		res->record = json_array();
		return -1;
	}
	waiter_wait(&w);
	*res = w.res;
	return 0;
}

int
va_validate(struct va *va, const struct va_request *req, struct va_result *res)
{
	struct problem *prob = NULL;
	struct va_request r = *req;
	char *x5u_pem = NULL;
	int rc;

	memset(res, 0, sizeof(*res));
	/* tkauth-01's x5u is fetched here, on the caller's thread (blocking
	 * network I/O stays off the loop); a failed fetch is the answer */
	if (req->challenge == CHAL_TKAUTH01 && !va->cfg->always_valid &&
	    va_tkauth_x5u_fetch(va->tkauth, req->payload,
		req->timeout_ms > 0 ? req->timeout_ms
				    : va->cfg->validation_timeout_ms,
		&x5u_pem, &prob) != 0) {
		res->prob = prob;
		res->record = json_array();
		return 0;
	}
	r.tkauth_x5u_pem = x5u_pem;
	rc = validate_wait(va, &r, res);
	free(x5u_pem);
	return rc;
}

int
va_check_caa(struct va *va, enum ident_type type, const char *value,
    int wildcard, const char *validation_method, const char *account_uri,
    const char *request_id, int64_t timeout_ms, struct problem **prob)
{
	struct waiter w;
	struct va_job *j;

	*prob = NULL;
	if (type == IDENT_IP)
		return 1;
	j = job_new(va, VA_JOB_CAA, type, value, wildcard, request_id,
	    timeout_ms, prob);
	if (j == NULL)
		return -1;
	j->caa_method = validation_method ? xstrdup(validation_method) : NULL;
	j->account_uri = account_uri ? xstrdup(account_uri) : NULL;
	if (waiter_init(&w) != 0) {
		job_free(j);
		*prob = problem_new(PROB_SERVER_INTERNAL,
		    "VA: cannot create "
		    "a condition variable");
		return -1;
	}
	j->done = waiter_done;
	j->done_arg = &w;
	if (submit(va, j, prob) != 0) {
		pthread_cond_destroy(&w.cv);
		pthread_mutex_destroy(&w.mu);
		return -1;
	}
	waiter_wait(&w);
	json_decref(w.res.record);
	if (w.res.valid)
		return 1;
	*prob = w.res.prob;
	return 0;
}
