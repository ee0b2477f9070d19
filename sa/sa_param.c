/*
 * sa_param.c - validation of request parameters and conversion of result
 * columns to JSON. Every bad parameter becomes a `malformed` problem that
 * names it; nothing here trusts the caller.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "sa/sa_int.h"

/* JSON integers are exact below 2^53 on every side of the protocol. */
#define SA_MAX_JSON_INT 9007199254740991LL

static int
sa_bad(struct problem **prob, const char *name, const char *what)
{
	*prob = problem_new(PROB_MALFORMED, "parameter %s: %s", name, what);
	return -1;
}

/* Looks name up; 1 = present and of JSON type `type` (JSON_TRUE: a
 * boolean), 0 = absent (or null) and optional, -1 bad (`what` names the
 * expected type). */
static int
sa_lookup(const json_t *params, const char *name, int required,
    json_type type, const char *what, json_t **out, struct problem **prob)
{
	json_t *v =
	    json_is_object(params) ? json_object_get(params, name) : NULL;

	if (v == NULL || json_is_null(v)) {
		if (required)
			return sa_bad(prob, name, "required");
		return 0;
	}
	if (json_typeof(v) != type && !(type == JSON_TRUE && json_is_boolean(v)))
		return sa_bad(prob, name, what);
	*out = v;
	return 1;
}

int
sa_get_int(const json_t *params, const char *name, int required, int64_t *out,
    struct problem **prob)
{
	json_t *v = NULL;
	int rc = sa_lookup(params, name, required, JSON_INTEGER,
	    "expected an integer", &v, prob);

	if (rc <= 0)
		return rc;
	*out = json_integer_value(v);
	if (*out > SA_MAX_JSON_INT || *out < -SA_MAX_JSON_INT)
		return sa_bad(prob, name, "out of range");
	return 1;
}

int
sa_get_id(const json_t *params, const char *name, int required, int64_t *out,
    struct problem **prob)
{
	int rc = sa_get_int(params, name, required, out, prob);

	if (rc == 1 && *out <= 0)
		return sa_bad(prob, name, "expected a positive id");
	return rc;
}

int
sa_get_str(const json_t *params, const char *name, int required, size_t maxlen,
    const char **out, struct problem **prob)
{
	json_t *v = NULL;
	int rc = sa_lookup(
	    params, name, required, JSON_STRING, "expected a string", &v, prob);
	size_t len;

	if (rc <= 0)
		return rc;
	len = json_string_length(v);
	if (len > maxlen)
		return sa_bad(prob, name, "too long");
	if (strlen(json_string_value(v)) != len)
		return sa_bad(prob, name, "contains a NUL byte");
	*out = json_string_value(v);
	return 1;
}

int
sa_get_bool(const json_t *params, const char *name, int required, int *out,
    struct problem **prob)
{
	json_t *v = NULL;
	int rc = sa_lookup(
	    params, name, required, JSON_TRUE, "expected a boolean", &v, prob);

	if (rc == 1)
		*out = json_is_true(v);
	return rc;
}

int
sa_get_time(const json_t *params, const char *name, int required, char *buf,
    size_t buflen, struct problem **prob)
{
	const char *s = NULL;
	time_t t;
	int rc;

	buf[0] = '\0';
	rc = sa_get_str(params, name, required, 64, &s, prob);
	if (rc <= 0)
		return rc;
	if (time_parse_rfc3339(s, &t) != 0)
		return sa_bad(prob, name, "expected an RFC 3339 time");
	/* PostgreSQL's timestamptz range ends in year 294276 */
	if (t < 0 || t > 253402300799LL)
		return sa_bad(prob, name, "time out of range");
	time_fmt_rfc3339(t, buf, buflen);
	return 1;
}

int
sa_get_hex(const json_t *params, const char *name, int required, size_t maxlen,
    const char **out, struct problem **prob)
{
	const char *s = NULL;
	size_t i;
	int rc = sa_get_str(params, name, required, maxlen, &s, prob);

	if (rc <= 0)
		return rc;
	if (strlen(s) < 2)
		return sa_bad(prob, name, "too short");
	for (i = 0; s[i] != '\0'; i++)
		if (!isdigit((unsigned char)s[i]) && (s[i] < 'a' || s[i] > 'f'))
			return sa_bad(prob, name, "expected lowercase hex");
	*out = s;
	return 1;
}

int
sa_get_json(const json_t *params, const char *name, int required,
    json_type type, json_t **out, struct problem **prob)
{
	return sa_lookup(params, name, required, type,
	    type == JSON_ARRAY ? "expected an array" : "expected an object", out,
	    prob);
}

int
sa_get_b64_as_hex(const json_t *params, const char *name, int required,
    size_t maxlen, char **hex, struct problem **prob)
{
	const char *s = NULL;
	uint8_t *bin = NULL;
	size_t binlen = 0;
	int rc = sa_get_str(params, name, required, maxlen, &s, prob);

	if (rc <= 0)
		return rc;
	if (b64url_decode(s, strlen(s), &bin, &binlen) != 0)
		return sa_bad(prob, name, "expected unpadded base64url");
	if (binlen == 0) {
		free(bin);
		return sa_bad(prob, name, "empty");
	}
	*hex = hex_encode(bin, binlen);
	free(bin);
	return 1;
}

int
sa_check_identifier(const json_t *ident, const char **type, const char **value,
    struct problem **prob)
{
	const char *t = NULL, *v = NULL;
	enum ident_type it;

	if (!json_is_object(ident))
		return sa_bad(prob, "identifier", "expected an object");
	if (sa_get_str(ident, "type", 1, 32, &t, prob) < 0 ||
	    sa_get_str(ident, "value", 1, 255, &v, prob) < 0)
		return -1;
	/* every type core/ident.c knows (dns, ip, device identifiers...) */
	if (ident_type_parse(t, &it) != 0)
		return sa_bad(prob, "identifier.type", "unknown type");
	/* draft-ietf-acme-rats §2.1: a remote-attestation value "MAY be
	 * left empty" */
	if (v[0] == '\0' && it != IDENT_REMOTE_ATTESTATION)
		return sa_bad(prob, "identifier.value", "empty");
	*type = t;
	*value = v;
	return 0;
}

char *
sa_json_text(const json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	if (s == NULL) {
		log_bug("json_dumps failed");
		abort();
	}
	return s;
}

json_t *
sa_json_parse(const char *s)
{
	json_t *v;
	json_error_t e;

	if (s == NULL)
		return json_null();
	v = json_loads(s, JSON_DECODE_ANY, &e);
	if (v == NULL) {
		log_bug("stored JSON does not parse: %s", e.text);
		return json_null();
	}
	return v;
}

const char *
sa_col(const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return NULL;
	return PQgetvalue(r, row, col);
}

int64_t
sa_col_int(const PGresult *r, int row, int col)
{
	const char *s = sa_col(r, row, col);

	return s ? strtoll(s, NULL, 10) : 0;
}

int
sa_col_bool(const PGresult *r, int row, int col)
{
	const char *s = sa_col(r, row, col);

	return s != NULL && s[0] == 't';
}

void
sa_set_col_str(json_t *o, const char *key, const PGresult *r, int row, int col)
{
	const char *s = sa_col(r, row, col);

	if (s != NULL)
		json_object_set_new(o, key, json_string(s));
}

json_t *
sa_col_hex_as_b64(const PGresult *r, int row, int col)
{
	const char *s = sa_col(r, row, col);
	uint8_t *bin = NULL;
	size_t len = 0;
	char *b64;
	json_t *j;

	if (s == NULL)
		return NULL;
	if (hex_decode(s, &bin, &len) != 0) {
		log_bug("stored hex does not decode");
		return json_string("");
	}
	b64 = b64url_encode(bin, len);
	j = json_string(b64);
	free(b64);
	free(bin);
	return j;
}

static int
sa_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char *
sa_fqdn_set_hash(const json_t *identifiers)
{
	size_t i, n = json_array_size(identifiers), len = 0, k = 0;
	char **vals = xcalloc(n ? n : 1, sizeof(*vals));
	char *joined, *hex;
	uint8_t dig[32];

	for (i = 0; i < n; i++) {
		json_t *id = json_array_get(identifiers, i);
		const char *v = json_string_value(json_object_get(id, "value"));

		vals[i] = xstrdup(v ? v : "");
		len += strlen(vals[i]) + 1;
	}
	qsort(vals, n, sizeof(*vals), sa_cmp_str);
	joined = xcalloc(len + 1, 1);
	for (i = 0; i < n; i++) {
		if (i > 0 && strcmp(vals[i], vals[i - 1]) == 0)
			continue;
		if (k > 0)
			strcat(joined, ",");
		strcat(joined, vals[i]);
		k++;
	}
	sha256((const uint8_t *)joined, strlen(joined), dig);
	hex = hex_encode(dig, sizeof(dig));
	for (i = 0; i < n; i++)
		free(vals[i]);
	free(vals);
	free(joined);
	return hex;
}
