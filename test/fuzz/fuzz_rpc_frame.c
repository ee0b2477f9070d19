/* LIBS: rpc core */
/*
 * fuzz_rpc_frame.c - libFuzzer target over the RPC frame decoder: the input
 * is a byte stream as read from a socket. Every frame in it is decoded the
 * way the server and client do (header check, JSON object, request and
 * response checks); each decoded object must survive an encode/decode
 * round trip unchanged. Build and run: scripts/fuzz.sh (make fuzz).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "rpc/rpc.h"
#include "rpc/rpc_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0, used = 0, max_frame, flen = 0, used2 = 0;
	json_t *frame = NULL, *result = NULL, *back = NULL, *resp = NULL;
	struct problem *prob = NULL;
	struct rpc_parsed_req req;
	enum rpc_frame_status st;
	uint8_t *enc;
	int64_t id;
	char err[256];

	if (size < 1)
		return 0;
	/* First byte picks the frame limit, like a configured max_frame. */
	max_frame = 16 + (size_t)data[0] * 64;
	data++;
	size--;
	while (off < size) {
		st = rpc_frame_decode(data + off, size - off, max_frame, &used,
		    &frame, err, sizeof(err));
		if (st != RPC_FRAME_OK)
			break;
		if (used == 0 || used > size - off)
			abort();
		off += used;
		if (rpc_request_parse(frame, &req, err, sizeof(err)) >= 0) {
			if (req.id == NULL)
				abort();
			prob = problem_new(PROB_MALFORMED, "%s", err);
			resp = rpc_response_err(req.id, prob);
			json_decref(resp);
			problem_free(prob);
			prob = NULL;
		}
		if (rpc_response_parse(
			frame, &id, &result, &prob, err, sizeof(err)) == 0 &&
		    prob == NULL && result == NULL)
			abort();
		problem_free(prob);
		prob = NULL;
		enc = rpc_frame_encode(frame, (size_t)1 << 30, &flen);
		if (enc != NULL) {
			if (rpc_frame_decode(enc, flen, (size_t)1 << 30, &used2,
				&back, err, sizeof(err)) != RPC_FRAME_OK ||
			    used2 != flen || !json_equal(back, frame))
				abort();
			json_decref(back);
			back = NULL;
			free(enc);
		}
		json_decref(frame);
		frame = NULL;
	}
	return 0;
}
