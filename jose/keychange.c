/* keychange.c - account key rollover (RFC 8555 §7.3.5). */
#include <stdlib.h>
#include <string.h>

#include "jose/jose_int.h"

int
jose_verify_key_change(const struct jws *outer,
    const struct jose_policy *policy, const char *account_url,
    const struct jwk *old_key, struct jwk **new_key, struct problem **prob)
{
	json_t *inner_obj = NULL, *payload = NULL;
	struct jws *inner = NULL;
	const json_t *acct, *oldk;
	int rc = -1;

	*new_key = NULL;
	if (outer == NULL || account_url == NULL || old_key == NULL)
		return jose_fail(prob, PROB_SERVER_INTERNAL,
		    "key change check without its inputs");
	if (outer->kid == NULL) {
		jose_fail(prob, PROB_MALFORMED,
		    "keyChange must be signed with "
		    "the current account key, identified by \"kid\"");
		goto out;
	}
	if (outer->is_post_as_get) {
		jose_fail(prob, PROB_MALFORMED,
		    "keyChange payload must be the "
		    "inner JWS signed by the new key");
		goto out;
	}
	if (jose_json_object((const char *)outer->payload, outer->payload_len,
		"inner JWS", &inner_obj, prob) != 0 ||
	    jose_jws_from_object(inner_obj, policy,
		JOSE_HDR_NONCE_FORBIDDEN | JOSE_HDR_JWK_REQUIRED, "inner JWS",
		&inner, prob) != 0)
		goto out;
	if (jws_verify(inner, inner->jwk, prob) != 0)
		goto out;
	if (outer->url == NULL || strcmp(inner->url, outer->url) != 0) {
		jose_fail(prob, PROB_MALFORMED,
		    "inner JWS \"url\" must equal "
		    "the outer JWS \"url\"");
		goto out;
	}
	if (jws_payload_json(inner, &payload, prob) != 0)
		goto out;
	acct = json_object_get(payload, "account");
	oldk = json_object_get(payload, "oldKey");
	if (!json_is_string(acct) || !json_is_object(oldk)) {
		jose_fail(prob, PROB_MALFORMED,
		    "keyChange object needs "
		    "\"account\" (string) and \"oldKey\" (JWK)");
		goto out;
	}
	if (strcmp(json_string_value(acct), account_url) != 0) {
		jose_fail(prob, PROB_UNAUTHORIZED,
		    "keyChange \"account\" is "
		    "not the URL of the account that signed the request (%s)",
		    account_url);
		goto out;
	}
	if (!jose_jwk_json_is(oldk, old_key)) {
		jose_fail(prob, PROB_UNAUTHORIZED,
		    "keyChange \"oldKey\" is not "
		    "the current account key");
		goto out;
	}
	if (jwk_equal(inner->jwk, old_key)) {
		jose_fail(prob, PROB_MALFORMED,
		    "the new key is the same as the "
		    "current account key");
		goto out;
	}
	*new_key = inner->jwk;
	inner->jwk = NULL;
	rc = 0;
out:
	json_decref(inner_obj);
	json_decref(payload);
	jws_free(inner);
	return rc;
}
