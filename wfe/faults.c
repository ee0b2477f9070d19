/*
 * faults.c - test-mode fault injection (test.faults in wfe.json, and the
 * management API that changes it at run time): the configuration check and
 * the per-request roll that answers with an injected problem.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wfe/wfe_int.h"

static int
fault_pcts_ok(
    const json_t *f, const char *where, int top, char *err, size_t errlen)
{
	static const char *const keys[] = {
	    "internal_percent", "unavailable_percent", "rate_limited_percent"};
	const char *k;
	json_t *v;
	size_t i;
	int known, sum = 0;

	if (!json_is_object(f)) {
		snprintf(err, errlen, "%s: expected an object", where);
		return -1;
	}
	json_object_foreach((json_t *)f, k, v)
	{
		if (top &&
		    (strcmp(k, "retry_after") == 0 ||
			strcmp(k, "endpoints") == 0))
			continue;
		known = 0;
		for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (strcmp(k, keys[i]) == 0)
				known = 1;
		if (!known) {
			snprintf(err, errlen, "%s.%s: unknown key", where, k);
			return -1;
		}
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > 100) {
			snprintf(err, errlen,
			    "%s.%s: expected an integer 0..100", where, k);
			return -1;
		}
		sum += (int)json_integer_value(v);
	}
	if (sum > 100) {
		snprintf(err, errlen,
		    "%s: the percentages add up to more "
		    "than 100",
		    where);
		return -1;
	}
	return 0;
}

/* See wfe_int.h. */
int
wfe_faults_check(const json_t *f, char *err, size_t errlen)
{
	const json_t *ra, *eps;
	const char *k;
	json_t *v;
	char where[128];

	if (fault_pcts_ok(f, "test.faults", 1, err, errlen) != 0)
		return -1;
	ra = json_object_get(f, "retry_after");
	if (ra != NULL &&
	    (!json_is_integer(ra) || json_integer_value(ra) < 0 ||
		json_integer_value(ra) > 86400)) {
		snprintf(err, errlen,
		    "test.faults.retry_after: expected "
		    "seconds 0..86400");
		return -1;
	}
	eps = json_object_get(f, "endpoints");
	if (eps == NULL)
		return 0;
	if (!json_is_object(eps)) {
		snprintf(err, errlen,
		    "test.faults.endpoints: expected an "
		    "object of route name -> percentages");
		return -1;
	}
	json_object_foreach((json_t *)eps, k, v)
	{
		if (!wfe_route_name_known(k)) {
			snprintf(err, errlen,
			    "test.faults.endpoints.%.40s: "
			    "no such endpoint (docs/config/wfe.md)",
			    k);
			return -1;
		}
		snprintf(where, sizeof(where), "test.faults.endpoints.%s", k);
		if (fault_pcts_ok(v, where, 0, err, errlen) != 0)
			return -1;
	}
	return 0;
}

/* See wfe_int.h. */
json_t *
wfe_faults_get(struct wfe *w)
{
	json_t *f;

	pthread_mutex_lock(&w->lock);
	f = json_incref(w->faults);
	pthread_mutex_unlock(&w->lock);
	return f;
}

/* See wfe_int.h. */
void
wfe_faults_set(struct wfe *w, const json_t *f)
{
	json_t *copy = f != NULL ? json_deep_copy(f) : NULL, *old;

	pthread_mutex_lock(&w->lock);
	old = w->faults;
	w->faults = copy;
	pthread_mutex_unlock(&w->lock);
	json_decref(old);
}

/*
 * Test mode: a percentage of requests fail on purpose. The route's entry
 * in test.faults.endpoints applies to every method of that route; the
 * top-level percentages to POSTs only. 1 if a fault was replied.
 */
int
wfe_fault_injected(struct wfe_req *r, const char *route)
{
	static const struct {
		const char *key;
		enum prob_type type;
		int retry;
	} kinds[] = {
	    {"internal_percent", PROB_SERVER_INTERNAL, 0},
	    {"unavailable_percent", PROB_UNAVAILABLE, 1},
	    {"rate_limited_percent", PROB_RATE_LIMITED, 1},
	};
	json_t *all = wfe_faults_get(r->w);
	const json_t *f, *ra;
	uint8_t rnd[4];
	int roll, acc = 0, hit = 0;
	size_t i;

	if (all == NULL)
		return 0;
	f = json_object_get(json_object_get(all, "endpoints"), route);
	if (f == NULL && r->method == WFE_POST)
		f = all;
	if (f == NULL)
		goto out;
	random_bytes(rnd, sizeof(rnd));
	roll = (int)((((uint32_t)rnd[0] << 24) | ((uint32_t)rnd[1] << 16) |
			 ((uint32_t)rnd[2] << 8) | rnd[3]) %
	    100);
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]) && !hit; i++) {
		acc +=
		    (int)json_integer_value(json_object_get(f, kinds[i].key));
		if (roll < acc) {
			struct problem *p = problem_new(kinds[i].type,
			    "injected fault (test.faults %s)", kinds[i].key);

			ra = json_object_get(all, "retry_after");
			if (kinds[i].retry)
				p->retry_after = ra != NULL
				    ? (int)json_integer_value(ra)
				    : 1;
			wfe_reply_problem(r, p);
			hit = 1;
		}
	}
out:
	json_decref(all);
	return hit;
}
