/*
 * rats.c - draft-ietf-acme-rats on the RA side: the "remote-attestation"
 * identifier (§2.1) whose value is a property hint from the ACME Attest
 * Properties Hint Registry (§7.1), validated by remote-attest-01 (the
 * VA's va/rats.c). It is "not an actual identifier. It does not result in
 * any specific contents to the certificate Subject or SubjectAltName"
 * (Security Considerations): finalize leaves it out of the CSR comparison
 * and of the certificate, and an attestation is never reused by a later
 * order (it is evidence of the device's state now, §1 "continuous
 * monitoring").
 */
#include <stdio.h>
#include <string.h>

#include "ra/ra_int.h"

/* §7.1 initial registry contents. */
static const char *const hints[] = {"", "hsm", "measured_boot",
    "os_patch_level", "sw_manifest", "fido2"};

/* See ra.h. */
int
ra_rats_check_hint(const char *value, char **norm, struct problem **prob)
{
	size_t i;

	/* §3.1's examples spell "measured-boot"; the registry (§7.1)
	 * "measured_boot": one property, stored as the registry spells it */
	if (strcmp(value, "measured-boot") == 0)
		value = "measured_boot";
	for (i = 0; i < sizeof(hints) / sizeof(hints[0]); i++) {
		if (strcmp(value, hints[i]) == 0) {
			*norm = xstrdup(value);
			return 0;
		}
	}
	*prob = problem_new(PROB_REJECTED_IDENTIFIER,
	    "\"%.64s\" is not a property hint of the ACME Attest Properties "
	    "Hint Registry (draft-ietf-acme-rats §7.1: \"\", hsm, "
	    "measured_boot, os_patch_level, sw_manifest, fido2)",
	    value);
	(*prob)->identifier = json_pack(
	    "{s:s,s:s}", "type", "remote-attestation", "value", value);
	return -1;
}

/* 1 if identifier id (borrowed) is a remote-attestation one. */
static int
is_rats(const json_t *id)
{
	const char *t = json_string_value(json_object_get(id, "type"));

	return t != NULL && strcmp(t, "remote-attestation") == 0;
}

/* See ra_int.h. */
json_t *
ra_rats_cert_identifiers(const json_t *idents)
{
	json_t *out = json_array(), *id;
	size_t i;

	json_array_foreach(idents, i, id)
	{
		if (!is_rats(id))
			json_array_append(out, id);
	}
	return out;
}

/* See ra_int.h. */
int
ra_rats_reusable(const json_t *ident)
{
	return !is_rats(ident);
}
