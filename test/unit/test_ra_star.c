/* LIBS: ra jose core */
/*
 * test_ra_star.c - RFC 8739 STAR without I/O: the schedule of the
 * certificates (the worked example of RFC 8739 section 3.5.1), the checks
 * of a newOrder's auto-renewal object and the "star" config.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "ra/ra.h"

#define DAY 86400LL

static int64_t
at(const char *rfc3339)
{
	time_t t = 0;

	(void)time_parse_rfc3339(rfc3339, &t);
	return (int64_t)t;
}

/* RFC 8739 §3.5.1: start 2019-01-10, end 2019-01-20, lifetime 4 days,
 * lifetime-adjust 3 days, f = 1/2: the table of notBefore / notAfter. */
TH_TEST(test_rfc_example)
{
	struct ra_star_terms st = {at("2019-01-10T00:00:00Z"),
	    at("2019-01-20T00:00:00Z"), 345600, 259200, 0};
	int64_t nb, na, due;

	TH_CHECK(t, ra_star_pad(&st) == 3 * DAY);
	ra_star_first(&st, st.start, &nb, &na);
	TH_CHECK(t, nb == at("2019-01-10T00:00:00Z"));
	TH_CHECK(t, na == at("2019-01-14T00:00:00Z"));
	TH_CHECK(t, ra_star_next(&st, na, st.start, &nb, &na, &due) == 0);
	TH_CHECK(t, nb == at("2019-01-11T00:00:00Z"));
	TH_CHECK(t, na == at("2019-01-18T00:00:00Z"));
	/* "The value of the notBefore is also the time at which the client
	 * should expect the new certificate" */
	TH_CHECK(t, due == nb);
	TH_CHECK(t, ra_star_next(&st, na, nb, &nb, &na, &due) == 0);
	TH_CHECK(t, nb == at("2019-01-15T00:00:00Z"));
	TH_CHECK(t, na == at("2019-01-20T00:00:00Z"));
	/* the last one reaches end-date: the series is complete */
	TH_CHECK(t, ra_star_next(&st, na, nb, &nb, &na, &due) == 1);
}

TH_TEST(test_schedule_edges)
{
	/* no lifetime-adjust: the server pads half a lifetime (f = 1/2), so
	 * the next certificate is published halfway through the current
	 * one's nominal lifetime (§3.2) */
	struct ra_star_terms st = {0, 10000, 100, 0, 0};
	int64_t nb, na, due;

	TH_CHECK(t, ra_star_pad(&st) == 50);
	ra_star_first(&st, 1000, &nb, &na);
	TH_CHECK(t, nb == 1000 && na == 1100);
	TH_CHECK(t, ra_star_next(&st, 1100, 1010, &nb, &na, &due) == 0);
	TH_CHECK(t, nb == 1050 && na == 1200 && due == 1050);
	/* adjust above the lifetime counts as the lifetime (min(T, la)) */
	st.adjust = 500;
	TH_CHECK(t, ra_star_pad(&st) == 100);
	/* whole periods missed while nothing was issued are skipped */
	st.adjust = 0;
	TH_CHECK(t, ra_star_next(&st, 1100, 1450, &nb, &na, &due) == 0);
	TH_CHECK(t, na == 1500 && nb == 1350);
	/* a start-date in the future: the first one starts there */
	st.start = 2000;
	ra_star_first(&st, 1000, &nb, &na);
	TH_CHECK(t, nb == 2000 && na == 2100);
	/* never past end-date */
	st.start = 0;
	st.end = 1030;
	ra_star_first(&st, 1000, &nb, &na);
	TH_CHECK(t, na == 1030);
	TH_CHECK(t, ra_star_next(&st, na, 1010, &nb, &na, &due) == 1);
}

static int
check(const struct ra_star_config *sc, const struct profile *prof,
    const char *json, int64_t now, struct ra_star_terms *out)
{
	json_t *o = json_loads(json, 0, NULL);
	struct problem *p = NULL;
	int rc = ra_star_check(sc, prof, o, now, out, &p);

	json_decref(o);
	rc = rc == 0 ? -1 : (int)p->type;
	problem_free(p);
	return rc;
}

TH_TEST(test_check)
{
	struct ra_star_config sc;
	struct profile prof;
	struct ra_star_terms out;
	char err[200];
	json_t *cfg = json_loads("{\"enabled\": true, \"min_lifetime\": "
				 "\"1h\", \"max_duration\": \"30d\"}",
	    0, NULL);
	int64_t now = at("2026-01-01T00:00:00Z");

	memset(&prof, 0, sizeof(prof));
	prof.name = "classic";
	prof.validity_ms = 90 * DAY * 1000;
	TH_CHECK(t, ra_star_config_parse(cfg, &sc, err, sizeof(err)) == 0);
	TH_CHECK(t,
	    check(&sc, &prof,
		"{\"end-date\": \"2026-01-10T00:00:00Z\", "
		"\"lifetime\": 86400, \"allow-certificate-get\": true}",
		now, &out) == -1);
	TH_CHECK(t, out.lifetime == 86400 && out.allow_get == 1);
	TH_CHECK(t,
	    check(&sc, &prof,
		"{\"end-date\": \"2026-01-10T00:00:00Z\", "
		"\"lifetime\": 60}",
		now, &out) == PROB_MALFORMED);
	TH_CHECK(t,
	    check(&sc, &prof,
		"{\"end-date\": \"2026-03-10T00:00:00Z\", "
		"\"lifetime\": 86400}",
		now, &out) == PROB_MALFORMED);
	TH_CHECK(t,
	    check(&sc, &prof, "{\"lifetime\": 86400}", now, &out) ==
		PROB_MALFORMED);
	TH_CHECK(t,
	    check(&sc, &prof,
		"{\"end-date\": \"2026-01-10T00:00:00Z\", "
		"\"lifetime\": 86400, \"x\": 1}",
		now, &out) == PROB_MALFORMED);
	/* allow-certificate-get is reflected false when the server does not
	 * offer it (§3.3 "If the server accepts the request") */
	sc.allow_get = 0;
	TH_CHECK(t,
	    check(&sc, &prof,
		"{\"end-date\": \"2026-01-10T00:00:00Z\", "
		"\"lifetime\": 86400, \"allow-certificate-get\": true}",
		now, &out) == -1);
	TH_CHECK(t, out.allow_get == 0);
	/* off for a profile not listed */
	ra_star_config_clear(&sc);
	json_decref(cfg);
	cfg = json_loads(
	    "{\"enabled\": true, \"profiles\": [\"short\"]}", 0, NULL);
	TH_CHECK(t, ra_star_config_parse(cfg, &sc, err, sizeof(err)) == 0);
	TH_CHECK(t,
	    check(&sc, &prof,
		"{\"end-date\": \"2026-01-10T00:00:00Z\", "
		"\"lifetime\": 86400}",
		now, &out) == PROB_MALFORMED);
	ra_star_config_clear(&sc);
	json_decref(cfg);
}

TH_TEST(test_config)
{
	/* a refused star section and what its error names */
	static const char *const bad[][2] = {
	    {"{\"min_lifetime\": \"1500ms\"}", "star.min_lifetime"},
	    {"{\"lease\": \"1s\"}", "star.lease"},
	    {"{\"bogus\": 1}", "bogus"},
	};
	struct ra_star_config sc;
	char err[200];

	TH_CHECK(t, ra_star_config_parse(NULL, &sc, err, sizeof(err)) == 0);
	TH_CHECK(t, sc.enabled == 0 && sc.min_lifetime_s == 3600);
	ra_star_config_clear(&sc);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *o = json_loads(bad[i][0], 0, NULL);

		TH_CHECK(t,
		    ra_star_config_parse(o, &sc, err, sizeof(err)) == -1 &&
			strstr(err, bad[i][1]) != NULL);
		json_decref(o);
	}
}

TH_MAIN(log_init("test_ra_star", LOG_LEVEL_ERROR))
