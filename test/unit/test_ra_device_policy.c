/*
 * test_ra_device_policy.c - policy.device_identifiers (ra/device_policy.c):
 * config errors name the bad key; an EAB-bound account gets the devices of
 * its binding only; an account without a binding gets "default" or nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ra/ra.h"
#include "ra/ra_int.h"

static const char *const POLICY =
    "{\"eab\": {\"mdm-a\": {\"permanent-identifier\": [\"FLEETA-*\", "
    "\"SPECIAL1\"], \"hardware-module\": [\"*\"]}, \"mdm-b\": "
    "{\"permanent-identifier\": [\"FLEETB-*\"]}, \"mdm-c-*\": "
    "{\"permanent-identifier\": [\"FLEETC-*\"]}, \"mdm-c-lab-*\": "
    "{\"permanent-identifier\": [\"LABC-*\"]}}}";

/* Parses ra.json {"policy": {"device_identifiers": <dev>}}: rc, err. */
static int
parse(const char *dev, char *err, size_t errlen)
{
	struct ra_config c;
	char buf[1024];
	json_t *o;
	int rc;

	snprintf(buf, sizeof(buf),
	    "{\"policy\": {\"mode\": \"any\", \"device_identifiers\": %s}}",
	    dev);
	o = json_loads(buf, 0, NULL);
	if (o == NULL)
		return -2;
	memset(&c, 0, sizeof(c));
	rc = ra_config_parse(o, "t.json", &c, err, errlen);
	ra_config_clear(&c);
	json_decref(o);
	return rc;
}

TH_TEST(test_config_errors)
{
	static const struct {
		const char *dev, *key;
	} bad[] = {
	    {"[]", "policy.device_identifiers: expected an object"},
	    {"{\"eab\": []}", "policy.device_identifiers.eab:"},
	    {"{\"fleets\": {}}", "policy.device_identifiers.fleets:"},
	    {"{\"eab\": {\"k1\": {\"dns\": [\"*\"]}}}",
		"policy.device_identifiers.eab.k1.dns:"},
	    {"{\"eab\": {\"k1\": {\"permanent-identifier\": \"A*\"}}}",
		"policy.device_identifiers.eab.k1.permanent-identifier:"},
	    {"{\"eab\": {\"k1\": {\"permanent-identifier\": [\"A\", "
	     "\"*B\"]}}}",
		"policy.device_identifiers.eab.k1.permanent-identifier[1]:"},
	    {"{\"default\": {\"hardware-module\": [\"\"]}}",
		"policy.device_identifiers.default.hardware-module[0]:"},
	    {"{\"default\": {\"hardware-module\": [7]}}",
		"policy.device_identifiers.default.hardware-module[0]:"},
	    {"{\"eab\": {\"k2\": 3}}", "policy.device_identifiers.eab.k2:"},
	};
	char err[512];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		TH_CHECK(t, parse(bad[i].dev, err, sizeof(err)) == -1);
		if (strstr(err, bad[i].key) == NULL) {
			fprintf(stderr, "want %s in: %s\n", bad[i].key, err);
			TH_CHECK(t, 0);
		}
	}
	TH_CHECK(t, parse(POLICY, err, sizeof(err)) == 0);
	TH_CHECK(t, parse("null", err, sizeof(err)) == 0);
}

/* rc of ra_device_policy_check for one identifier; prob type into *type. */
static int
check(const json_t *pol, const char *kid, const char *type,
    const char *value, enum prob_type *pt)
{
	json_t *acct = kid ? json_pack("{s:s}", "eab_kid", kid)
			   : json_pack("{s:n}", "eab_kid");
	json_t *ids = json_pack("[{s:s,s:s}]", "type", type, "value", value);
	struct problem *prob = NULL;
	int rc;

	rc = ra_device_policy_check(pol, acct, ids, &prob);
	if (prob != NULL) {
		*pt = prob->type;
		problem_free(prob);
	}
	json_decref(acct);
	json_decref(ids);
	return rc;
}

TH_TEST(test_bindings)
{
	json_t *pol = json_loads(POLICY, 0, NULL), *dflt;
	enum prob_type pt = PROB_MALFORMED;
	const char *PI = "permanent-identifier", *HM = "hardware-module";

	/* an EAB-bound account gets the devices of its binding */
	TH_CHECK(t, check(pol, "mdm-a", PI, "FLEETA-0001", &pt) == 0);
	TH_CHECK(t, check(pol, "mdm-a", PI, "SPECIAL1", &pt) == 0);
	TH_CHECK(t, check(pol, "mdm-a", HM, "X/1.2.3", &pt) == 0);
	/* ... and nothing else: exact values are exact, types not named are
	 * refused */
	TH_CHECK(t, check(pol, "mdm-a", PI, "SPECIAL12", &pt) == -1 &&
		pt == PROB_REJECTED_IDENTIFIER);
	TH_CHECK(t, check(pol, "mdm-a", PI, "FLEETB-0001", &pt) == -1);
	TH_CHECK(t, check(pol, "mdm-b", PI, "FLEETA-0001", &pt) == -1);
	TH_CHECK(t, check(pol, "mdm-b", HM, "X/1.2.3", &pt) == -1);
	/* a key id pattern: the longest prefix wins */
	TH_CHECK(t, check(pol, "mdm-c-17", PI, "FLEETC-1", &pt) == 0);
	TH_CHECK(t, check(pol, "mdm-c-lab-2", PI, "LABC-1", &pt) == 0);
	TH_CHECK(t, check(pol, "mdm-c-lab-2", PI, "FLEETC-1", &pt) == -1);
	TH_CHECK(t, check(pol, "mdm-", PI, "FLEETC-1", &pt) == -1);
	/* no binding, no default: refused */
	TH_CHECK(t, check(pol, "other", PI, "FLEETA-0001", &pt) == -1);
	TH_CHECK(t, check(pol, NULL, PI, "FLEETA-0001", &pt) == -1);
	/* other identifier types are not this policy's business */
	TH_CHECK(t, check(pol, NULL, "dns", "a.test", &pt) == 0);
	/* policy off: anything */
	TH_CHECK(t, check(NULL, NULL, PI, "FLEETA-0001", &pt) == 0);
	/* "default" serves accounts without a (listed) binding */
	dflt = json_pack("{s:{s:[s]}}", "default", PI, "LAB-*");
	json_object_set(dflt, "eab", json_object_get(pol, "eab"));
	TH_CHECK(t, check(dflt, NULL, PI, "LAB-7", &pt) == 0);
	TH_CHECK(t, check(dflt, "other", PI, "LAB-7", &pt) == 0);
	TH_CHECK(t, check(dflt, "mdm-a", PI, "LAB-7", &pt) == -1);
	TH_CHECK(t, check(dflt, NULL, PI, "FLEETA-0001", &pt) == -1);
	json_decref(dflt);
	json_decref(pol);
}

TH_MAIN(log_init("test_ra_device_policy", LOG_LEVEL_ERROR))
