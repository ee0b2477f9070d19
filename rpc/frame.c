/* frame.c - length-prefixed JSON frames, request and response objects. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/rpc.h"
#include "rpc/rpc_int.h"

enum rpc_frame_status
rpc_frame_header(const uint8_t hdr[4], size_t max_frame, size_t *len, char *err,
    size_t errlen)
{
	uint32_t n;

	n = ((uint32_t)hdr[0] << 24) | ((uint32_t)hdr[1] << 16) |
	    ((uint32_t)hdr[2] << 8) | (uint32_t)hdr[3];
	if (n == 0) {
		snprintf(err, errlen, "empty frame");
		return RPC_FRAME_BAD;
	}
	if ((size_t)n > max_frame) {
		snprintf(err, errlen,
		    "frame of %u bytes exceeds the limit of "
		    "%zu",
		    n, max_frame);
		return RPC_FRAME_BAD;
	}
	*len = n;
	return RPC_FRAME_OK;
}

enum rpc_frame_status
rpc_frame_decode(const uint8_t *buf, size_t len, size_t max_frame,
    size_t *consumed, json_t **out, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *obj = NULL;
	size_t n = 0;

	*out = NULL;
	if (len < 4) {
		*consumed = 4;
		return RPC_FRAME_NEED;
	}
	if (rpc_frame_header(buf, max_frame, &n, err, errlen) != RPC_FRAME_OK)
		return RPC_FRAME_BAD;
	if (len - 4 < n) {
		*consumed = n + 4;
		return RPC_FRAME_NEED;
	}
	obj =
	    json_loadb((const char *)buf + 4, n, JSON_REJECT_DUPLICATES, &jerr);
	if (obj == NULL) {
		snprintf(err, errlen, "invalid JSON at byte %d: %s",
		    jerr.position, jerr.text);
		return RPC_FRAME_BAD;
	}
	if (!json_is_object(obj)) {
		json_decref(obj);
		snprintf(err, errlen, "frame is not a JSON object");
		return RPC_FRAME_BAD;
	}
	*out = obj;
	*consumed = n + 4;
	return RPC_FRAME_OK;
}

uint8_t *
rpc_frame_encode(const json_t *obj, size_t max_frame, size_t *len)
{
	char *s = NULL;
	uint8_t *f = NULL;
	size_t n;

	s = json_dumps(obj, JSON_COMPACT);
	if (s == NULL)
		goto out;
	n = strlen(s);
	if (n == 0 || n > max_frame || n > UINT32_MAX)
		goto out;
	f = xmalloc(n + 4);
	f[0] = (uint8_t)(n >> 24);
	f[1] = (uint8_t)(n >> 16);
	f[2] = (uint8_t)(n >> 8);
	f[3] = (uint8_t)n;
	memcpy(f + 4, s, n);
	*len = n + 4;
out:
	free(s);
	return f;
}

int
rpc_request_parse(
    json_t *frame, struct rpc_parsed_req *req, char *err, size_t errlen)
{
	json_t *v;

	memset(req, 0, sizeof(*req));
	v = json_object_get(frame, "id");
	if (v == NULL ||
	    !(json_is_integer(v) ||
		(json_is_string(v) && json_string_length(v) <= 128))) {
		snprintf(err, errlen, "request without a usable id");
		return -1;
	}
	req->id = v;
	v = json_object_get(frame, "method");
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    json_string_length(v) > 128) {
		snprintf(err, errlen, "method must be a non-empty string");
		return 1;
	}
	req->method = json_string_value(v);
	if (strlen(req->method) != json_string_length(v)) {
		snprintf(err, errlen, "method contains a NUL byte");
		return 1;
	}
	v = json_object_get(frame, "params");
	if (v != NULL && !json_is_null(v)) {
		if (!json_is_object(v)) {
			snprintf(err, errlen, "params must be an object");
			return 1;
		}
		req->params = v;
	}
	v = json_object_get(frame, "deadline_ms");
	if (v != NULL && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 0) {
			snprintf(err, errlen,
			    "deadline_ms must be a non-negative integer");
			return 1;
		}
		req->deadline_ms = json_integer_value(v);
	}
	v = json_object_get(frame, "request_id");
	if (v != NULL && !json_is_null(v)) {
		if (!json_is_string(v) || json_string_length(v) > 256 ||
		    strlen(json_string_value(v)) != json_string_length(v)) {
			snprintf(err, errlen,
			    "request_id must be a string of "
			    "at most 256 bytes");
			return 1;
		}
		req->request_id = json_string_value(v);
	}
	return 0;
}

int
rpc_response_parse(json_t *frame, int64_t *id, json_t **result,
    struct problem **prob, char *err, size_t errlen)
{
	json_t *v, *e;

	*result = NULL;
	*prob = NULL;
	v = json_object_get(frame, "id");
	if (!json_is_integer(v)) {
		snprintf(err, errlen, "response without an integer id");
		return -1;
	}
	*id = json_integer_value(v);
	e = json_object_get(frame, "error");
	if (e != NULL) {
		if (!json_is_object(e)) {
			snprintf(
			    err, errlen, "response error is not an object");
			return -1;
		}
		*prob = problem_from_json(e);
		return 0;
	}
	v = json_object_get(frame, "result");
	if (v == NULL) {
		snprintf(err, errlen, "response has neither result nor error");
		return -1;
	}
	*result = v;
	return 0;
}

json_t *
rpc_response_ok(json_t *id, json_t *result)
{
	json_t *o = json_object();

	json_object_set(o, "id", id);
	if (result != NULL)
		json_object_set(o, "result", result);
	else
		json_object_set_new(o, "result", json_object());
	return o;
}

json_t *
rpc_response_err(json_t *id, const struct problem *prob)
{
	json_t *o = json_object();

	json_object_set(o, "id", id);
	json_object_set_new(o, "error", problem_to_rpc_json(prob));
	return o;
}
