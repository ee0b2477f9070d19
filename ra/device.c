/*
 * device.c - draft-ietf-acme-device-attest at finalize. Security
 * Considerations: "The Server verifies this chain: the attestation is
 * produced by a trusted attestation authority, the public key in the
 * attestation matches the public key in the CSR, and the device identifier
 * in the attestation matches the identifier in the Order."
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ra/ra_int.h"

/* 1 if the order (borrowed) has a permanent-identifier / hardware-module. */
static int
has_device_ident(const json_t *order)
{
	const json_t *id;
	enum ident_type t;
	size_t i;

	json_array_foreach(json_object_get(order, "identifiers"), i, id)
	{
		if (ident_type_parse(json_string_value(json_object_get(id,
					 "type")),
			&t) == 0 &&
		    ident_is_device(t))
			return 1;
	}
	return 0;
}

/* The attested key hash of authz az's valid challenge (borrowed) or NULL. */
static const char *
attested_key(const json_t *az)
{
	const json_t *ch, *rec;
	size_t i, k;
	const char *h;

	json_array_foreach(json_object_get(az, "challenges"), i, ch)
	{
		const char *st = json_string_value(json_object_get(ch, "status"));
		if (st == NULL || strcmp(st, "valid") != 0)
			continue;
		json_array_foreach(json_object_get(ch, "validation_record"), k,
		    rec)
		{
			h = json_string_value(
			    json_object_get(rec, "attested_spki_sha256"));
			if (h != NULL)
				return h;
		}
	}
	return NULL;
}

/* See ra_int.h. */
int
ra_device_check_key(struct ra *ra, const char *rid, const json_t *order,
    EVP_PKEY *csr_key, struct problem **prob)
{
	json_t *res = NULL, *az;
	unsigned char *der = NULL, md[32];
	unsigned int mdlen = 0;
	enum ident_type t;
	char *have = NULL;
	const char *want;
	size_t i;
	int n, rc = -1;

	if (!has_device_ident(order))
		return 0;
	n = i2d_PUBKEY(csr_key, &der);
	if (n <= 0 ||
	    EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL) != 1) {
		*prob = problem_new(PROB_BAD_CSR, "CSR key cannot be encoded");
		goto out;
	}
	have = b64url_encode(md, mdlen);
	if (ra_call(ra->sa, RPC_SA_GET_AUTHZS,
		json_pack("{s:O}", "ids", json_object_get(order, "authz_ids")),
		rid, &res, prob) != 0)
		goto out;
	json_array_foreach(json_object_get(res, "authzs"), i, az)
	{
		const json_t *ident = json_object_get(az, "identifier");
		if (ident_type_parse(json_string_value(json_object_get(ident,
					 "type")),
			&t) != 0 ||
		    !ident_is_device(t))
			continue;
		want = attested_key(az);
		if (want == NULL || strcmp(want, have) != 0) {
			*prob = problem_new(PROB_BAD_CSR,
			    "The CSR's key is not the key the attestation of "
			    "%s \"%.100s\" certified "
			    "(draft-ietf-acme-device-attest, Security "
			    "Considerations)",
			    ident_type_name(t),
			    json_string_value(json_object_get(ident, "value")));
			goto out;
		}
	}
	rc = 0;
out:
	OPENSSL_free(der);
	free(have);
	json_decref(res);
	return rc;
}
