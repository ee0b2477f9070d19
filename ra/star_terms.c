/*
 * star_terms.c - RFC 8739 STAR without I/O: the "star" configuration, the
 * check of a newOrder's auto-renewal object and the schedule of the
 * certificates (RFC 8739 section 3.5). Kept apart from star.c so that what
 * only parses (ra.json, unit tests) links without the RPC client.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ra/ra.h"
#include "ra/ra_int.h"

/* ---- configuration ---------------------------------------------------- */

struct star_raw {
	int enabled;
	int64_t min_lifetime_ms;
	int64_t max_duration_ms;
	int allow_get;
	char **profiles;
	size_t n_profiles;
	int64_t poll_ms;
	int64_t lease_ms;
	int64_t batch;
};

#define SF(n, t, m)                                                            \
	{                                                                      \
		n, t, offsetof(struct star_raw, m), 0, NULL, 0                 \
	}
static const struct jspec star_spec[] = {SF("enabled", JSPEC_BOOL, enabled),
    SF("min_lifetime", JSPEC_DURATION, min_lifetime_ms),
    SF("max_duration", JSPEC_DURATION, max_duration_ms),
    SF("allow_certificate_get", JSPEC_BOOL, allow_get),
    {"profiles", JSPEC_STRINGS, offsetof(struct star_raw, profiles), 0, NULL,
	offsetof(struct star_raw, n_profiles)},
    SF("poll_interval", JSPEC_DURATION, poll_ms),
    SF("lease", JSPEC_DURATION, lease_ms), SF("batch", JSPEC_INT, batch),
    JSPEC_END};

/* See ra.h. */
int
ra_star_config_parse(
    const json_t *obj, struct ra_star_config *sc, char *err, size_t errlen)
{
	struct star_raw r;
	int rc = -1;

	memset(sc, 0, sizeof(*sc));
	memset(&r, 0, sizeof(r));
	r.min_lifetime_ms = 3600LL * 1000;
	r.max_duration_ms = 365LL * 86400 * 1000;
	r.allow_get = 1;
	r.poll_ms = 10000;
	r.lease_ms = 120000;
	r.batch = 50;
	if (ra_section_parse(obj, "star", star_spec, &r, err, errlen) != 0)
		goto out;
	if (r.min_lifetime_ms < 1000 || r.min_lifetime_ms % 1000 != 0) {
		snprintf(err, errlen,
		    "star.min_lifetime: whole seconds, at least 1s");
		goto out;
	}
	if (r.max_duration_ms < r.min_lifetime_ms) {
		snprintf(err, errlen,
		    "star.max_duration: at least star.min_lifetime");
		goto out;
	}
	if (r.poll_ms < 100 || r.poll_ms > 3600000) {
		snprintf(err, errlen, "star.poll_interval: 100ms to 1h");
		goto out;
	}
	if (r.lease_ms < 10000 || r.lease_ms > 3600000) {
		snprintf(err, errlen, "star.lease: 10s to 1h");
		goto out;
	}
	if (r.batch < 1 || r.batch > 1000) {
		snprintf(err, errlen, "star.batch: 1 to 1000");
		goto out;
	}
	sc->enabled = r.enabled;
	sc->min_lifetime_s = r.min_lifetime_ms / 1000;
	sc->max_duration_s = r.max_duration_ms / 1000;
	sc->allow_get = r.allow_get;
	sc->profiles = r.profiles;
	sc->n_profiles = r.n_profiles;
	r.profiles = NULL;
	r.n_profiles = 0;
	sc->poll_ms = r.poll_ms;
	sc->lease_ms = r.lease_ms;
	sc->batch = r.batch;
	rc = 0;
out:
	jspec_clear(star_spec, &r);
	return rc;
}

/* See ra.h. */
void
ra_star_config_clear(struct ra_star_config *sc)
{
	if (sc == NULL)
		return;
	ra_strv_free(sc->profiles, sc->n_profiles);
	memset(sc, 0, sizeof(*sc));
}

/* ---- the schedule (pure) ---------------------------------------------- */

/* See ra.h. */
int64_t
ra_star_pad(const struct ra_star_terms *t)
{
	int64_t client = t->adjust < t->lifetime ? t->adjust : t->lifetime;
	int64_t server = (t->lifetime + 1) / 2;

	return client > server ? client : server;
}

static int64_t
clamp_end(const struct ra_star_terms *t, int64_t na)
{
	return na > t->end ? t->end : na;
}

/* See ra.h. */
void
ra_star_first(
    const struct ra_star_terms *t, int64_t now, int64_t *nb, int64_t *na)
{
	int64_t nrd = t->start > now ? t->start : now;

	*nb = nrd - ra_star_pad(t);
	/* §3.5: "MUST NOT set the notBefore of the first STAR certificate
	 * to a date prior to the auto-renewal start-date"; without one, the
	 * start is now. */
	if (*nb < (t->start ? t->start : nrd))
		*nb = t->start ? t->start : nrd;
	*na = clamp_end(t, nrd + t->lifetime);
}

/* See ra.h. */
int
ra_star_next(const struct ra_star_terms *t, int64_t last_na, int64_t now,
    int64_t *nb, int64_t *na, int64_t *due)
{
	int64_t nrd = last_na;

	if (last_na >= t->end)
		return 1;
	/* periods that passed entirely while nothing was issued */
	while (nrd + t->lifetime <= now && nrd + t->lifetime < t->end)
		nrd += t->lifetime;
	*nb = nrd - ra_star_pad(t);
	*na = clamp_end(t, nrd + t->lifetime);
	*due = *nb;
	return 0;
}

/* ---- the auto-renewal object of a newOrder ----------------------------- */

static int
get_time_member(const json_t *ar, const char *key, int required, int64_t *out,
    struct problem **prob)
{
	json_t *v = json_object_get(ar, key);
	time_t t;

	*out = 0;
	if (v == NULL && !required)
		return 0;
	if (!json_is_string(v) ||
	    time_parse_rfc3339(json_string_value(v), &t) != 0) {
		*prob = problem_new(PROB_MALFORMED,
		    "auto-renewal \"%s\" must be an RFC 3339 date%s", key,
		    required ? " (required)" : "");
		return -1;
	}
	*out = (int64_t)t;
	return 0;
}

static int
get_int_member(const json_t *ar, const char *key, int required, int64_t *out,
    struct problem **prob)
{
	json_t *v = json_object_get(ar, key);

	*out = 0;
	if (v == NULL && !required)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		*prob = problem_new(PROB_MALFORMED,
		    "auto-renewal \"%s\" must be a non-negative integer "
		    "number of seconds%s",
		    key, required ? " (required)" : "");
		return -1;
	}
	*out = json_integer_value(v);
	return 0;
}

static int
profile_allowed(const struct ra_star_config *sc, const char *name)
{
	size_t i;

	if (sc->n_profiles == 0)
		return 1;
	for (i = 0; i < sc->n_profiles; i++)
		if (strcmp(sc->profiles[i], name) == 0)
			return 1;
	return 0;
}

/* See ra.h. */
int
ra_star_check(const struct ra_star_config *sc, const struct profile *prof,
    const json_t *ar, int64_t now, struct ra_star_terms *out,
    struct problem **prob)
{
	static const char *const known[] = {"start-date", "end-date",
	    "lifetime", "lifetime-adjust", "allow-certificate-get", NULL};
	const char *key;
	json_t *v;
	int64_t begin, span;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (!sc->enabled || !profile_allowed(sc, prof->name)) {
		*prob = problem_new(PROB_MALFORMED,
		    "auto-renewal (RFC 8739) is not offered%s%s",
		    sc->enabled ? " with profile " : "",
		    sc->enabled ? prof->name : "");
		return -1;
	}
	if (!json_is_object(ar)) {
		*prob = problem_new(
		    PROB_MALFORMED, "\"auto-renewal\" must be an object");
		return -1;
	}
	json_object_foreach((json_t *)ar, key, v)
	{
		for (i = 0; known[i] != NULL; i++)
			if (strcmp(known[i], key) == 0)
				break;
		if (known[i] == NULL) {
			*prob = problem_new(PROB_MALFORMED,
			    "auto-renewal: unknown field \"%.64s\"", key);
			return -1;
		}
	}
	if (get_time_member(ar, "start-date", 0, &out->start, prob) != 0 ||
	    get_time_member(ar, "end-date", 1, &out->end, prob) != 0 ||
	    get_int_member(ar, "lifetime", 1, &out->lifetime, prob) != 0 ||
	    get_int_member(ar, "lifetime-adjust", 0, &out->adjust, prob) != 0)
		return -1;
	v = json_object_get(ar, "allow-certificate-get");
	if (v != NULL && !json_is_boolean(v)) {
		*prob = problem_new(PROB_MALFORMED,
		    "auto-renewal \"allow-certificate-get\" must be a boolean");
		return -1;
	}
	/* §3.3: the server reflects the setting when it accepts it. */
	out->allow_get = json_is_true(v) && sc->allow_get;
	if (out->lifetime < sc->min_lifetime_s) {
		*prob = problem_new(PROB_MALFORMED,
		    "auto-renewal lifetime %llds is below min-lifetime %llds",
		    (long long)out->lifetime, (long long)sc->min_lifetime_s);
		return -1;
	}
	if ((out->lifetime + ra_star_pad(out) + 1) * 1000 > prof->validity_ms) {
		*prob = problem_new(PROB_MALFORMED,
		    "auto-renewal lifetime %llds plus %llds of padding exceeds "
		    "profile %s's certificate validity of %llds",
		    (long long)out->lifetime, (long long)ra_star_pad(out),
		    prof->name, (long long)(prof->validity_ms / 1000));
		return -1;
	}
	begin = out->start > now ? out->start : now;
	if (out->end <= begin) {
		*prob = problem_new(PROB_MALFORMED,
		    "auto-renewal end-date must be after start-date and in the "
		    "future");
		return -1;
	}
	span = out->end - (out->start ? out->start : now);
	if (span > sc->max_duration_s) {
		*prob = problem_new(PROB_MALFORMED,
		    "auto-renewal end-date - start-date is %llds, above "
		    "max-duration %llds",
		    (long long)span, (long long)sc->max_duration_s);
		return -1;
	}
	if (out->start != 0 && out->start > now + sc->max_duration_s) {
		*prob = problem_new(PROB_MALFORMED,
		    "auto-renewal start-date is too far in the future");
		return -1;
	}
	return 0;
}
