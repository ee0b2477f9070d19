/*
 * device_policy.c - which device identifiers (draft-ietf-acme-device-attest
 * permanent-identifier / hardware-module) an account may ask for:
 * ra.json policy.device_identifiers (docs/config/ra.md). An MDM gets an EAB
 * key per fleet; the key id names the serial numbers its accounts may
 * certify, so one fleet's account cannot order another fleet's devices
 * (the attestation alone proves the device exists, not that the account
 * manages it).
 *
 *   "device_identifiers": {
 *     "eab": {"<kid>": {"permanent-identifier": ["FLEET-A-*", "SN123"]}},
 *     "default": {"hardware-module": ["*"]}
 *   }
 *
 * A pattern is an exact value, or a prefix followed by one "*" at the end
 * ("*" alone: any value). A type a binding does not name is refused. A key
 * id ending in "*" binds every key id with that prefix (one EAB key per
 * account, many accounts per fleet); an exact key id wins, then the
 * longest prefix.
 */
#include <stdio.h>
#include <string.h>

#include "ra/ra_int.h"

/* Checks one binding object v (borrowed) found at `where`. */
static int
check_binding(const char *where, const json_t *v, char *err, size_t errlen)
{
	const char *type, *pat, *star;
	enum ident_type t;
	const json_t *pats, *p;
	size_t i;

	if (!json_is_object(v)) {
		snprintf(err, errlen,
		    "%s: expected an object of identifier type -> patterns",
		    where);
		return -1;
	}
	json_object_foreach((json_t *)v, type, pats)
	{
		if (ident_type_parse(type, &t) != 0 || !ident_is_device(t)) {
			snprintf(err, errlen,
			    "%s.%s: not a device identifier type "
			    "(permanent-identifier or hardware-module)",
			    where, type);
			return -1;
		}
		if (!json_is_array(pats)) {
			snprintf(err, errlen,
			    "%s.%s: expected an array of patterns", where,
			    type);
			return -1;
		}
		json_array_foreach(pats, i, p)
		{
			pat = json_string_value(p);
			star = pat != NULL ? strchr(pat, '*') : NULL;
			if (pat == NULL || pat[0] == '\0' ||
			    (star != NULL && star[1] != '\0')) {
				snprintf(err, errlen,
				    "%s.%s[%zu]: expected a value, or a prefix "
				    "with one \"*\" at the end",
				    where, type, i);
				return -1;
			}
		}
	}
	return 0;
}

/* See ra.h. */
int
ra_device_policy_parse(const json_t *obj, json_t **out, char *err,
    size_t errlen)
{
	const char *key, *kid;
	const json_t *v, *b;
	char where[300];

	*out = NULL;
	if (obj == NULL || json_is_null(obj))
		return 0;
	if (!json_is_object(obj)) {
		snprintf(err, errlen,
		    "policy.device_identifiers: expected an object");
		return -1;
	}
	json_object_foreach((json_t *)obj, key, v)
	{
		if (strcmp(key, "default") == 0) {
			if (check_binding("policy.device_identifiers.default",
				v, err, errlen) != 0)
				return -1;
		} else if (strcmp(key, "eab") == 0) {
			if (!json_is_object(v)) {
				snprintf(err, errlen,
				    "policy.device_identifiers.eab: expected "
				    "an object of EAB key id -> binding");
				return -1;
			}
			json_object_foreach((json_t *)v, kid, b)
			{
				snprintf(where, sizeof(where),
				    "policy.device_identifiers.eab.%.200s", kid);
				if (check_binding(where, b, err, errlen) != 0)
					return -1;
			}
		} else {
			snprintf(err, errlen,
			    "policy.device_identifiers.%.64s: unknown key "
			    "(expected \"eab\" or \"default\")",
			    key);
			return -1;
		}
	}
	*out = json_incref((json_t *)obj);
	return 0;
}

/* 1 if value matches one of the patterns (borrowed JSON array). */
static int
pattern_match(const json_t *pats, const char *value)
{
	const json_t *p;
	const char *s;
	size_t i, n;

	json_array_foreach(pats, i, p)
	{
		s = json_string_value(p);
		n = strlen(s);
		if (n > 0 && s[n - 1] == '*') {
			if (strncmp(value, s, n - 1) == 0)
				return 1;
		} else if (strcmp(value, s) == 0) {
			return 1;
		}
	}
	return 0;
}

/*
 * The binding (borrowed) of EAB key id kid in eab (borrowed): its own
 * entry, else the entry of the longest "prefix*" key matching it, else
 * NULL.
 */
static const json_t *
find_binding(const json_t *eab, const char *kid)
{
	const json_t *b, *best = NULL;
	const char *key;
	size_t n, best_n = 0;

	if (kid == NULL || eab == NULL)
		return NULL;
	if ((b = json_object_get(eab, kid)) != NULL)
		return b;
	json_object_foreach((json_t *)eab, key, b)
	{
		n = strlen(key);
		if (n > 0 && key[n - 1] == '*' && n - 1 >= best_n &&
		    strncmp(kid, key, n - 1) == 0) {
			best = b;
			best_n = n - 1;
		}
	}
	return best;
}

/* See ra_int.h. */
int
ra_device_policy_check(const json_t *pol, const json_t *acct,
    const json_t *idents, struct problem **prob)
{
	const json_t *binding, *id;
	const char *kid, *type, *value;
	struct problem *top = NULL, *sub;
	enum ident_type t;
	char who[300];
	size_t i;

	if (pol == NULL)
		return 0;
	kid = json_string_value(json_object_get(acct, "eab_kid"));
	binding = find_binding(json_object_get(pol, "eab"), kid);
	if (binding != NULL)
		snprintf(who, sizeof(who), "EAB key \"%.200s\"", kid);
	else {
		binding = json_object_get(pol, "default");
		snprintf(who, sizeof(who), "%s",
		    binding != NULL ? "the default binding"
		    : kid != NULL   ? "no binding (its EAB key is not listed)"
				    : "no binding (no EAB key)");
	}
	json_array_foreach(idents, i, id)
	{
		type = json_string_value(json_object_get(id, "type"));
		value = json_string_value(json_object_get(id, "value"));
		if (ident_type_parse(type, &t) != 0 || !ident_is_device(t) ||
		    value == NULL)
			continue;
		if (binding != NULL &&
		    pattern_match(json_object_get(binding, type), value))
			continue;
		if (top == NULL)
			top = problem_new(PROB_REJECTED_IDENTIFIER,
			    "This account may not ask for these device "
			    "identifiers (policy.device_identifiers)");
		sub = problem_new(PROB_REJECTED_IDENTIFIER,
		    "The account's %s does not allow %s \"%.100s\" "
		    "(policy.device_identifiers)",
		    who, type, value);
		problem_add_sub(top, sub, type, value);
	}
	if (top == NULL)
		return 0;
	*prob = top;
	return -1;
}
