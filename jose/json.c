/* json.c - bounded, strict JSON and base64url input helpers. */
#include <stdlib.h>
#include <string.h>

#include "jose/jose_int.h"

/* Nesting depth of a JSON text, ignoring brackets inside strings. */
static int
json_depth_ok(const char *buf, size_t len)
{
	size_t i;
	int depth = 0, in_str = 0, esc = 0;

	for (i = 0; i < len; i++) {
		char c = buf[i];

		if (in_str) {
			if (esc)
				esc = 0;
			else if (c == '\\')
				esc = 1;
			else if (c == '"')
				in_str = 0;
			continue;
		}
		if (c == '"') {
			in_str = 1;
		} else if (c == '{' || c == '[') {
			if (++depth > JOSE_MAX_DEPTH)
				return 0;
		} else if (c == '}' || c == ']') {
			depth--;
		}
	}
	return 1;
}

int
jose_json_object(const char *buf, size_t len, const char *what, json_t **out,
    struct problem **prob)
{
	json_error_t err;
	json_t *j = NULL;

	*out = NULL;
	if (len == 0)
		return jose_fail(prob, PROB_MALFORMED, "%s is empty", what);
	if (memchr(buf, '\0', len) != NULL)
		return jose_fail(
		    prob, PROB_MALFORMED, "%s contains a NUL byte", what);
	if (!json_depth_ok(buf, len))
		return jose_fail(prob, PROB_MALFORMED,
		    "%s is nested deeper than %d levels", what, JOSE_MAX_DEPTH);
	j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &err);
	if (j == NULL)
		return jose_fail(prob, PROB_MALFORMED,
		    "%s is not valid JSON: %s (at offset %d)", what, err.text,
		    err.position);
	if (!json_is_object(j)) {
		json_decref(j);
		return jose_fail(
		    prob, PROB_MALFORMED, "%s must be a JSON object", what);
	}
	*out = j;
	return 0;
}

int
jose_is_b64url(const char *s)
{
	if (s == NULL || *s == '\0')
		return 0;
	for (; *s; s++) {
		char c = *s;

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			(c >= '0' && c <= '9') || c == '-' || c == '_'))
			return 0;
	}
	return 1;
}

int
jose_b64_member(const json_t *obj, const char *name, const char *what,
    enum prob_type t, uint8_t **out, size_t *outlen, struct problem **prob)
{
	const json_t *v = json_object_get(obj, name);

	*out = NULL;
	*outlen = 0;
	if (v == NULL)
		return jose_fail(
		    prob, t, "%s has no \"%s\" member", what, name);
	if (!json_is_string(v))
		return jose_fail(
		    prob, t, "%s \"%s\" must be a string", what, name);
	if (b64url_decode(
		json_string_value(v), json_string_length(v), out, outlen) != 0)
		return jose_fail(prob, t,
		    "%s \"%s\" is not unpadded base64url (RFC 7515 §2: "
		    "alphabet A-Z a-z 0-9 - _, no '=' padding, no whitespace, "
		    "unused trailing bits zero)",
		    what, name);
	return 0;
}
