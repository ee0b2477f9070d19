/*
 * stats.c - latency samples per request kind, failures by reason, and the
 * final report (JSON and text). Each worker owns one lg_stats; main merges
 * them after the workers have joined, so nothing here locks.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "cmd/anvil-loadgen/lg.h"

static const char *const req_names[LG_REQ__MAX] = {
    [LG_REQ_NONCE] = "newNonce",
    [LG_REQ_NEW_ACCOUNT] = "newAccount",
    [LG_REQ_NEW_ORDER] = "newOrder",
    [LG_REQ_AUTHZ] = "authz",
    [LG_REQ_CHALLENGE] = "challenge",
    [LG_REQ_POLL_AUTHZ] = "pollAuthz",
    [LG_REQ_FINALIZE] = "finalize",
    [LG_REQ_POLL_ORDER] = "pollOrder",
    [LG_REQ_CERT] = "certificate",
    [LG_REQ_ISSUANCE] = "issuance",
};

const char *
lg_req_name(enum lg_req k)
{
	return k < LG_REQ__MAX ? req_names[k] : "?";
}

void
lg_stats_init(struct lg_stats *s)
{
	memset(s, 0, sizeof(*s));
	s->failures = json_object();
	s->examples = json_object();
}

void
lg_stats_clear(struct lg_stats *s)
{
	int k;

	if (s == NULL)
		return;
	for (k = 0; k < LG_REQ__MAX; k++)
		free(s->samples[k]);
	json_decref(s->failures);
	json_decref(s->examples);
	free(s->timeline);
	free(s->points);
	memset(s, 0, sizeof(*s));
}

void
lg_stats_add(struct lg_stats *s, enum lg_req k, double ms)
{
	if (s->count[k] == s->cap[k]) {
		s->cap[k] = s->cap[k] == 0 ? 256 : s->cap[k] * 2;
		s->samples[k] =
		    xrealloc(s->samples[k], s->cap[k] * sizeof(double));
	}
	s->samples[k][s->count[k]++] = ms;
}

/* json_object_set_new that reports (never ignores) a failure. */
static void
jset(json_t *obj, const char *key, json_t *val)
{
	if (json_object_set_new(obj, key, val) != 0)
		log_bug("cannot set %s", key);
}

/* Makes timeline[0..len) valid (new slots zero). */
static void
timeline_grow(struct lg_stats *s, size_t len)
{
	if (len <= s->timeline_len)
		return;
	s->timeline = xrealloc(s->timeline, len * sizeof(uint32_t));
	memset(s->timeline + s->timeline_len, 0,
	    (len - s->timeline_len) * sizeof(uint32_t));
	s->timeline_len = len;
}

static void
point_add(struct lg_stats *s, double at_s, double ms)
{
	if (s->npoints == s->cap_points) {
		s->cap_points = s->cap_points == 0 ? 256 : s->cap_points * 2;
		s->points =
		    xrealloc(s->points, s->cap_points * sizeof(*s->points));
	}
	s->points[s->npoints].s = at_s;
	s->points[s->npoints].ms = ms;
	s->npoints++;
}

void
lg_stats_issued(struct lg_stats *s, double offset_s, double ms)
{
	point_add(s, offset_s, ms);
	size_t sec = offset_s > 0 ? (size_t)offset_s : 0;

	if (sec > 1000000)
		sec = 1000000; /* a window of ~11 days: clamp, never overflow */
	if (sec >= s->timeline_len)
		timeline_grow(s, sec + 64);
	s->timeline[sec]++;
	s->issued++;
	if (offset_s > s->last_ok_s)
		s->last_ok_s = offset_s;
}

static void
fail_add(json_t *obj, const char *reason, json_int_t n)
{
	json_t *cur = json_object_get(obj, reason);
	json_int_t v = json_is_integer(cur) ? json_integer_value(cur) : 0;

	jset(obj, reason, json_integer(v + n));
}

/* Appends detail to examples[reason] unless LG_EXAMPLES are kept. */
static int
example_add(json_t *examples, const char *reason, const char *detail)
{
	json_t *arr = json_object_get(examples, reason);

	if (detail == NULL || detail[0] == '\0')
		return 0;
	if (arr == NULL) {
		arr = json_array();
		jset(examples, reason, arr);
	}
	if (json_array_size(arr) >= LG_EXAMPLES)
		return 0;
	if (json_array_append_new(arr, json_string(detail)) != 0)
		log_bug("json_array_append_new failed");
	return 1;
}

int
lg_stats_fail(struct lg_stats *s, const char *reason, const char *detail)
{
	const char *r = reason != NULL ? reason : "unknown";

	fail_add(s->failures, r, 1);
	return example_add(s->examples, r, detail);
}

void
lg_stats_merge(struct lg_stats *dst, const struct lg_stats *src)
{
	const char *key;
	json_t *val;
	int k;

	for (k = 0; k < LG_REQ__MAX; k++) {
		size_t i;

		for (i = 0; i < src->count[k]; i++)
			lg_stats_add(dst, (enum lg_req)k, src->samples[k][i]);
		dst->errors[k] += src->errors[k];
	}
	json_object_foreach(src->failures, key, val)
	    fail_add(dst->failures, key, json_integer_value(val));
	json_object_foreach(src->examples, key, val)
	{
		size_t i;
		json_t *e;

		json_array_foreach(val, i, e)
		    example_add(dst->examples, key, json_string_value(e));
	}
	timeline_grow(dst, src->timeline_len);
	for (k = 0; k < (int)src->timeline_len; k++)
		dst->timeline[k] += src->timeline[k];
	for (k = 0; k < (int)src->npoints; k++)
		point_add(dst, src->points[k].s, src->points[k].ms);
	if (src->last_ok_s > dst->last_ok_s)
		dst->last_ok_s = src->last_ok_s;
	dst->issued += src->issued;
	dst->bad_nonce_retries += src->bad_nonce_retries;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0..n). */
static double
pct(const double *v, size_t n, double p)
{
	size_t rank;

	if (n == 0)
		return 0;
	rank = (size_t)ceil(p / 100.0 * (double)n);
	if (rank < 1)
		rank = 1;
	return v[rank - 1];
}

static double
round3(double v)
{
	return round(v * 1000.0) / 1000.0;
}

static int
cmp_point(const void *a, const void *b)
{
	const struct lg_point *x = a, *y = b;

	return x->s < y->s ? -1 : x->s > y->s;
}

/*
 * Per second of the window: [second, issuances, p50 ms, p90 ms, p99 ms] of
 * the issuances that completed in it (seconds without any are left out).
 */
static json_t *
latency_timeline(struct lg_stats *s)
{
	json_t *out = json_array();
	double *ms = NULL;
	size_t i = 0, j, n;

	qsort(s->points, s->npoints, sizeof(*s->points), cmp_point);
	ms = xcalloc(s->npoints + 1, sizeof(double));
	while (i < s->npoints) {
		long sec = (long)floor(s->points[i].s);

		for (j = i, n = 0;
		     j < s->npoints && (long)floor(s->points[j].s) == sec; j++)
			ms[n++] = s->points[j].ms;
		qsort(ms, n, sizeof(double), cmp_double);
		if (json_array_append_new(out,
			json_pack("[I, I, f, f, f]", (json_int_t)sec,
			    (json_int_t)n, round3(pct(ms, n, 50)),
			    round3(pct(ms, n, 90)), round3(pct(ms, n, 99)))) !=
		    0)
			log_bug("json_array_append_new failed");
		i = j;
	}
	free(ms);
	return out;
}

json_t *
lg_stats_json(struct lg_stats *s, const struct lg_summary *sum)
{
	json_t *out = json_object(), *lat = json_object(), *tl;
	json_int_t failed = 0;
	size_t i;
	const char *key;
	json_t *val;
	int k;

	json_object_foreach(s->failures, key, val) failed +=
	    json_integer_value(val);
	tl = json_array();
	for (i = 0; i < s->timeline_len; i++) {
		if (i >= (size_t)ceil(sum->elapsed_s) && s->timeline[i] == 0)
			break;
		if (json_array_append_new(tl, json_integer(s->timeline[i])) !=
		    0)
			log_bug("json_array_append_new failed");
	}
	for (k = 0; k < LG_REQ__MAX; k++) {
		size_t n = s->count[k];
		double *v = s->samples[k], total = 0;

		if (n == 0)
			continue;
		qsort(v, n, sizeof(double), cmp_double);
		for (i = 0; i < n; i++)
			total += v[i];
		jset(lat, lg_req_name((enum lg_req)k),
		    json_pack("{s:I, s:I, s:f, s:f, s:f, s:f, s:f}", "count",
			(json_int_t)n, "errors", (json_int_t)s->errors[k],
			"mean_ms", round3(total / (double)n), "p50_ms",
			round3(pct(v, n, 50)), "p90_ms", round3(pct(v, n, 90)),
			"p99_ms", round3(pct(v, n, 99)), "max_ms",
			round3(v[n - 1])));
	}
	jset(out, "directory", json_string(sum->directory));
	jset(out, "clients", json_integer(sum->clients));
	jset(out, "names_per_order", json_integer(sum->names_per_order));
	jset(out, "renew", json_boolean(sum->renew));
	jset(out, "accounts", json_integer(sum->accounts_ok));
	jset(out, "elapsed_s", json_real(round3(sum->elapsed_s)));
	jset(out, "setup_s", json_real(round3(sum->setup_s)));
	jset(out, "issued", json_integer((json_int_t)s->issued));
	jset(out, "failed", json_integer(failed));
	jset(out, "issuances_per_s",
	    json_real(sum->elapsed_s > 0
		    ? round3((double)s->issued / sum->elapsed_s)
		    : 0));
	jset(out, "failures", json_incref(s->failures));
	jset(out, "failure_examples", json_incref(s->examples));
	jset(out, "bad_nonce_retries",
	    json_integer((json_int_t)s->bad_nonce_retries));
	jset(out, "connections", json_integer((json_int_t)sum->connections));
	jset(
	    out, "http01_served", json_integer((json_int_t)sum->http01_served));
	jset(out, "loadgen_cpu_s", json_real(round3(sum->loadgen_cpu_s)));
	jset(out, "latency", lat);
	jset(out, "last_issuance_s", json_real(round3(s->last_ok_s)));
	jset(out, "timeline", tl);
	jset(out, "latency_timeline", latency_timeline(s));
	return out;
}

static double
num(const json_t *o, const char *k)
{
	return json_number_value(json_object_get(o, k));
}

void
lg_stats_print(FILE *f, const json_t *r)
{
	const json_t *lat = json_object_get(r, "latency"), *fails;
	const char *key;
	json_t *val;
	int k;

	fprintf(f, "directory    %s\n",
	    json_string_value(json_object_get(r, "directory")));
	fprintf(f, "clients      %d (accounts %d), %d name(s) per order%s\n",
	    (int)num(r, "clients"), (int)num(r, "accounts"),
	    (int)num(r, "names_per_order"),
	    json_is_true(json_object_get(r, "renew"))
		? ", renewals (authz reuse)"
		: "");
	fprintf(f, "issued       %.0f in %.2f s = %.2f issuances/s\n",
	    num(r, "issued"), num(r, "elapsed_s"), num(r, "issuances_per_s"));
	fprintf(f, "failed       %.0f\n", num(r, "failed"));
	fails = json_object_get(r, "failures");
	json_object_foreach((json_t *)fails, key, val)
	{
		const json_t *ex = json_object_get(
		    json_object_get(r, "failure_examples"), key), *e;
		size_t i;

		fprintf(f, "  %-32s %lld\n", key,
		    (long long)json_integer_value(val));
		json_array_foreach(ex, i, e) fprintf(
		    f, "    e.g. %s\n", json_string_value(e));
	}
	fprintf(f,
	    "badNonce retries %.0f, connections %.0f, http-01 served "
	    "%.0f, loadgen CPU %.2f s\n",
	    num(r, "bad_nonce_retries"), num(r, "connections"),
	    num(r, "http01_served"), num(r, "loadgen_cpu_s"));
	fprintf(f, "%-12s %8s %6s %9s %9s %9s %9s %9s\n", "latency(ms)",
	    "count", "errors", "mean", "p50", "p90", "p99", "max");
	for (k = 0; k < LG_REQ__MAX; k++) {
		const json_t *o =
		    json_object_get(lat, lg_req_name((enum lg_req)k));

		if (o == NULL)
			continue;
		fprintf(f, "%-12s %8.0f %6.0f %9.2f %9.2f %9.2f %9.2f %9.2f\n",
		    lg_req_name((enum lg_req)k), num(o, "count"),
		    num(o, "errors"), num(o, "mean_ms"), num(o, "p50_ms"),
		    num(o, "p90_ms"), num(o, "p99_ms"), num(o, "max_ms"));
	}
}
