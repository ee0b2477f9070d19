/*
 * bpv7.c - RFC 9171 bundles for RFC 9891 bp-nodeid-00, with libcbor.
 *
 * Encoding uses libcbor's encoders into a bounded buffer. Decoding pulls
 * one CBOR item head at a time with va_cbor_next (so nothing is
 * allocated and every length is checked against the bytes left), under
 * the limits of the bundles this exchange uses: the outer indefinite-length
 * array of RFC 9171 §4.1, definite lengths inside it, no tags, floats or
 * simple values, at most BP_MAX_ITEMS items, BP_MAX_DEPTH nesting,
 * BP_MAX_BLOCKS blocks and BP_MAX_BUNDLE bytes.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cbor.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "va/bpv7.h"
#include "va/va_int.h"

#define BP_MAX_ITEMS 512
#define BP_MAX_DEPTH 8
#define BP_PAYLOAD_BLOCK 1

/* ---------------- CRC (RFC 9171 §4.2.1) ---------------- */

/* See bpv7.h: CRC-16/X.25 (reflected 0x1021, init and xorout 0xFFFF). */
uint16_t
bp_crc16(const uint8_t *d, size_t n)
{
	uint16_t c = 0xFFFF;
	size_t i;
	int k;

	for (i = 0; i < n; i++) {
		c ^= d[i];
		for (k = 0; k < 8; k++)
			c = (uint16_t)((c & 1) ? (c >> 1) ^ 0x8408 : c >> 1);
	}
	return (uint16_t)~c;
}

/* See bpv7.h: CRC-32C (reflected 0x1EDC6F41, init and xorout ~0). */
uint32_t
bp_crc32c(const uint8_t *d, size_t n)
{
	uint32_t c = 0xFFFFFFFFu;
	size_t i;
	int k;

	for (i = 0; i < n; i++) {
		c ^= d[i];
		for (k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
	}
	return ~c;
}

/* The CRC of type t over n bytes, big-endian into out; its length. */
static size_t
crc_value(enum bp_crc t, const uint8_t *d, size_t n, uint8_t out[4])
{
	uint32_t v;

	if (t == BP_CRC_16) {
		v = bp_crc16(d, n);
		out[0] = (uint8_t)(v >> 8);
		out[1] = (uint8_t)v;
		return 2;
	}
	v = bp_crc32c(d, n);
	out[0] = (uint8_t)(v >> 24);
	out[1] = (uint8_t)(v >> 16);
	out[2] = (uint8_t)(v >> 8);
	out[3] = (uint8_t)v;
	return 4;
}

/* ---------------- encoding ---------------- */

struct wr {
	uint8_t *p;
	size_t cap, off;
	int fail;
};

static void
w_put(struct wr *w, size_t n)
{
	if (n == 0)
		w->fail = 1;
	w->off += n;
}

#define W_ROOM(w)                                                              \
	((w)->fail ? NULL : (w)->p + (w)->off),                                \
	    ((w)->fail ? 0 : (w)->cap - (w)->off)

static void
w_uint(struct wr *w, uint64_t v)
{
	w_put(w, cbor_encode_uint(v, W_ROOM(w)));
}

static void
w_int(struct wr *w, int64_t v)
{
	if (v >= 0)
		w_uint(w, (uint64_t)v);
	else
		w_put(w, cbor_encode_negint((uint64_t)(-(v + 1)), W_ROOM(w)));
}

static void
w_raw(struct wr *w, const void *d, size_t n)
{
	if (w->fail || n > w->cap - w->off) {
		w->fail = 1;
		return;
	}
	if (n > 0)
		memcpy(w->p + w->off, d, n);
	w->off += n;
}

static void
w_bstr(struct wr *w, const uint8_t *d, size_t n)
{
	w_put(w, cbor_encode_bytestring_start(n, W_ROOM(w)));
	w_raw(w, d, n);
}

static void
w_tstr(struct wr *w, const char *s)
{
	w_put(w, cbor_encode_string_start(strlen(s), W_ROOM(w)));
	w_raw(w, s, strlen(s));
}

static void
w_array(struct wr *w, size_t n)
{
	w_put(w, cbor_encode_array_start(n, W_ROOM(w)));
}

/* RFC 9171 §4.2.5.1: dtn -> [1, ssp or 0 for none], ipn -> [2, [n, s]]. */
static void
w_eid(struct wr *w, const char *eid)
{
	unsigned long long node, svc;
	int used = 0;

	w_array(w, 2);
	if (strcmp(eid, "dtn:none") == 0) {
		w_uint(w, 1);
		w_uint(w, 0);
	} else if (strncmp(eid, "dtn:", 4) == 0) {
		w_uint(w, 1);
		w_tstr(w, eid + 4);
	} else if (sscanf(eid, "ipn:%llu.%llu%n", &node, &svc, &used) == 2 &&
	    eid[used] == '\0') {
		w_uint(w, 2);
		w_array(w, 2);
		w_uint(w, node);
		w_uint(w, svc);
	} else {
		w->fail = 1;
	}
}

/* Appends the CRC of the block that started at `start` (its last item, a
 * zero-filled byte string of the CRC's length, was just written). */
static void
w_block_crc(struct wr *w, size_t start, enum bp_crc t)
{
	uint8_t v[4];
	size_t n;

	if (w->fail || t == BP_CRC_NONE)
		return;
	n = crc_value(t, w->p + start, w->off - start, v);
	memcpy(w->p + w->off - n, v, n);
}

static void
w_crc_placeholder(struct wr *w, enum bp_crc t)
{
	static const uint8_t zero[4];

	if (t != BP_CRC_NONE)
		w_bstr(w, zero, t == BP_CRC_16 ? 2 : 4);
}

/* The administrative record [type, {1: id, 2: token, 3|4: ...}]. */
static size_t
encode_record(const struct bp_acme *b, uint8_t *out, size_t cap)
{
	struct wr w = {out, cap, 0, 0};
	size_t i;

	w_array(&w, 2);
	w_uint(&w, b->admin_type);
	w_put(&w, cbor_encode_map_start(3, W_ROOM(&w)));
	w_uint(&w, 1);
	w_bstr(&w, b->id_chal, b->id_chal_len);
	w_uint(&w, 2);
	w_bstr(&w, b->token, b->token_len);
	if (b->has_digest) {
		w_uint(&w, 3);
		w_array(&w, 2);
		w_int(&w, b->digest_alg);
		w_bstr(&w, b->digest, b->digest_len);
	} else {
		w_uint(&w, 4);
		w_array(&w, b->n_algs);
		for (i = 0; i < b->n_algs && i < BP_MAX_ALGS; i++)
			w_int(&w, b->algs[i]);
	}
	return w.fail ? 0 : w.off;
}

/* One canonical block [type, num, 0, CRC-32C, data, crc] into out. */
static size_t
encode_block(uint64_t type, uint64_t num, const uint8_t *d, size_t n,
    uint8_t *out, size_t cap)
{
	struct wr w = {out, cap, 0, 0};

	w_array(&w, 6);
	w_uint(&w, type);
	w_uint(&w, num);
	w_uint(&w, 0);
	w_uint(&w, BP_CRC_32C);
	w_bstr(&w, d, n);
	w_crc_placeholder(&w, BP_CRC_32C);
	w_block_crc(&w, 0, BP_CRC_32C);
	return w.fail ? 0 : w.off;
}

/*
 * The BIB of RFC 9891 §4.2 ("Challenge Bundles SHALL include a Block
 * Integrity Block (BIB) ... with a Security Source identical to the
 * bundle Source Node"): BIB-HMAC-SHA2 on the payload (block 1) with all
 * three scope flags, so the primary block is covered as the IPPT's
 * context (§5: "either directly as a target or as additional
 * authenticated data"). Written as block 2.
 */
static void
w_bib(struct wr *w, const struct bp_bib_sign *sg, const uint8_t *primary,
    size_t plen, const uint8_t *rec, size_t nrec)
{
	const uint64_t scope =
	    BIB_SCOPE_PRIMARY | BIB_SCOPE_TARGET_HDR | BIB_SCOPE_SEC_HDR;
	struct bp_block tgt = {1, 1, 0, rec, nrec};
	struct bp_block sec = {BP_BLOCK_BIB, 2, 0, NULL, 0};
	uint8_t ippt[BP_MAX_BUNDLE], mac[64], asb[512];
	struct wr a = {asb, sizeof(asb), 0, 0};
	size_t n = bp_bib_ippt(scope, primary, plen, &tgt, &sec, ippt,
	    sizeof(ippt));
	unsigned m = n == 0 ? 0
			    : bp_bib_hmac(sg->sha_variant, sg->key,
				  sg->key_len, ippt, n, mac);

	if (m == 0) {
		w->fail = 1;
		return;
	}
	/* RFC 9172 §3.6: targets, context id, flags (1: parameters
	 * present), source, parameters, results */
	w_array(&a, 1);
	w_uint(&a, 1);
	w_uint(&a, BIB_CTX_HMAC_SHA2);
	w_uint(&a, 1);
	w_eid(&a, sg->source);
	/* RFC 9173 §3.3: [1, SHA variant], [3, integrity scope flags] */
	w_array(&a, 2);
	w_array(&a, 2);
	w_uint(&a, 1);
	w_uint(&a, sg->sha_variant);
	w_array(&a, 2);
	w_uint(&a, 3);
	w_uint(&a, scope);
	/* §3.4: one result set for the one target: [1, expected HMAC] */
	w_array(&a, 1);
	w_array(&a, 1);
	w_array(&a, 2);
	w_uint(&a, 1);
	w_bstr(&a, mac, m);
	OPENSSL_cleanse(mac, sizeof(mac));
	if (a.fail) {
		w->fail = 1;
		return;
	}
	w_put(w, encode_block(BP_BLOCK_BIB, 2, asb, a.off, W_ROOM(w)));
}
/* See bpv7.h. */
size_t
bp_encode_acme(const struct bp_acme *b, uint8_t *out, size_t cap)
{
	struct wr w = {out, cap, 0, 0};
	uint8_t rec[1024];
	size_t start, nrec = encode_record(b, rec, sizeof(rec));

	if (nrec == 0 || b->n_algs > BP_MAX_ALGS)
		return 0;
	w_put(&w, cbor_encode_indef_array_start(W_ROOM(&w)));
	/* primary block (§4.3.1) */
	start = w.off;
	w_array(&w, b->crc == BP_CRC_NONE ? 8 : 9);
	w_uint(&w, 7);
	w_uint(&w, b->flags);
	w_uint(&w, (uint64_t)b->crc);
	w_eid(&w, b->dest);
	w_eid(&w, b->src);
	w_eid(&w, "dtn:none"); /* report-to: no status reports */
	w_array(&w, 2);
	w_uint(&w, b->created_ms);
	w_uint(&w, b->seq);
	w_uint(&w, b->lifetime_ms);
	w_crc_placeholder(&w, b->crc);
	w_block_crc(&w, start, b->crc);
	if (b->sign != NULL && !w.fail)
		w_bib(&w, b->sign, w.p + start, w.off - start, rec, nrec);
	/* payload block (§4.3.3): type 1, number 1, no flags, CRC-32C;
	 * last (§4.1) */
	w_put(&w, encode_block(BP_PAYLOAD_BLOCK, 1, rec, nrec, W_ROOM(&w)));
	w_put(&w, cbor_encode_break(W_ROOM(&w)));
	return w.fail || w.off > BP_MAX_BUNDLE ? 0 : w.off;
}

/* ---------------- decoding ---------------- */

struct rd {
	const uint8_t *buf;
	size_t len, off;
	size_t items;
	enum va_cbor_kind k; /* the last item's kind */
	uint64_t v;       /* integer value / container size */
	const uint8_t *s; /* string data */
	size_t n;         /* string length */
	char err[160];
};

static int
rd_fail(struct rd *r, const char *fmt, const char *what)
{
	if (r->err[0] == '\0')
		snprintf(r->err, sizeof(r->err), fmt, what);
	return -1;
}

/* Reads the next item head (a definite string with its data). */
static int
rd_next(struct rd *r)
{
	struct va_cbor_item it;
	size_t got;

	if (r->err[0] != '\0')
		return -1;
	if (r->off >= r->len)
		return rd_fail(r, "%s ends inside a CBOR item", "the bundle");
	if (++r->items > BP_MAX_ITEMS)
		return rd_fail(r, "%s has too many CBOR items", "the bundle");
	r->k = VA_CBOR_BAD;
	got = va_cbor_next(r->buf + r->off, r->len - r->off, &it);
	if (got == 0)
		return rd_fail(r, "%s is not well-formed CBOR (or truncated)",
		    "the bundle");
	r->off += got;
	r->k = it.kind, r->v = it.v, r->s = it.s, r->n = it.n;
	if (r->k == VA_CBOR_BAD || r->k == VA_CBOR_SIMPLE)
		return rd_fail(r,
		    "%s uses CBOR this exchange does not allow (indefinite "
		    "strings or maps, tags, floats, simple values)",
		    "the bundle");
	return 0;
}

static int
rd_expect(struct rd *r, enum va_cbor_kind k, const char *what)
{
	if (rd_next(r) != 0)
		return -1;
	if (r->k != k)
		return rd_fail(r, "%s has the wrong CBOR type", what);
	return 0;
}

static int
rd_uint(struct rd *r, uint64_t *v, const char *what)
{
	if (rd_expect(r, VA_CBOR_UINT, what) != 0)
		return -1;
	*v = r->v;
	return 0;
}

/* A definite array of exactly n items (n = 0: any size, put in *got). */
static int
rd_array(struct rd *r, uint64_t n, uint64_t *got, const char *what)
{
	if (rd_expect(r, VA_CBOR_ARRAY, what) != 0)
		return -1;
	if (n != 0 && r->v != n)
		return rd_fail(r, "%s has the wrong number of items", what);
	if (got != NULL)
		*got = r->v;
	return 0;
}

/* An integer or text algorithm identifier (COSE, alg-id = tstr / int). */
static int
rd_alg(struct rd *r, int64_t *v, int *is_int)
{
	if (rd_next(r) != 0)
		return -1;
	*is_int = 1;
	if (r->k == VA_CBOR_UINT && r->v <= INT64_MAX)
		*v = (int64_t)r->v;
	else if (r->k == VA_CBOR_NEG && r->v <= INT64_MAX)
		*v = -1 - (int64_t)r->v;
	else if (r->k == VA_CBOR_TSTR)
		*is_int = 0, *v = 0;
	else
		return rd_fail(r, "%s is not an integer or text",
		    "a hash algorithm identifier");
	return 0;
}

/* Skips one complete item (definite containers, nesting bounded). */
static int
rd_skip(struct rd *r, int depth)
{
	uint64_t n, i;

	if (depth > BP_MAX_DEPTH)
		return rd_fail(r, "%s nests too deeply", "the bundle");
	if (rd_next(r) != 0)
		return -1;
	if (r->k == VA_CBOR_ARRAY || r->k == VA_CBOR_MAP) {
		n = r->k == VA_CBOR_MAP ? r->v * 2 : r->v;
		if (n > r->len - r->off)
			return rd_fail(r, "%s declares more items than bytes",
			    "a container");
		for (i = 0; i < n; i++)
			if (rd_skip(r, depth + 1) != 0)
				return -1;
	} else if (r->k == VA_CBOR_IARRAY || r->k == VA_CBOR_BREAK) {
		return rd_fail(r, "%s has an indefinite array inside a block",
		    "the bundle");
	}
	return 0;
}

/* RFC 9171 §4.2.5.1: an EID into out (URI text). */
static int
rd_eid(struct rd *r, char out[BP_MAX_EID], const char *what)
{
	uint64_t scheme, node, svc;
	size_t i;

	if (rd_array(r, 2, NULL, what) != 0 || rd_uint(r, &scheme, what) != 0)
		return -1;
	if (scheme == 1) {
		if (rd_next(r) != 0)
			return -1;
		if (r->k == VA_CBOR_UINT && r->v == 0) {
			snprintf(out, BP_MAX_EID, "dtn:none");
			return 0;
		}
		if (r->k != VA_CBOR_TSTR || r->n == 0 || r->n > BP_MAX_EID - 5)
			return rd_fail(
			    r, "%s: a dtn EID is 0 or a text string", what);
		for (i = 0; i < r->n; i++)
			if (r->s[i] <= 0x20 || r->s[i] >= 0x7f)
				return rd_fail(r,
				    "%s: a dtn EID with a character outside "
				    "printable ASCII",
				    what);
		snprintf(
		    out, BP_MAX_EID, "dtn:%.*s", (int)r->n, (const char *)r->s);
		return 0;
	}
	if (scheme == 2) {
		if (rd_array(r, 2, NULL, what) != 0 ||
		    rd_uint(r, &node, what) != 0 || rd_uint(r, &svc, what) != 0)
			return -1;
		snprintf(
		    out, BP_MAX_EID, "ipn:%" PRIu64 ".%" PRIu64, node, svc);
		return 0;
	}
	return rd_fail(
	    r, "%s: an EID scheme other than dtn (1) or ipn (2)", what);
}

/*
 * A block's CRC (its last item, just read as r->s/r->n) over the block
 * bytes [start, r->off) with the CRC field zeroed (RFC 9171 §4.2.1).
 */
static int
rd_check_crc(struct rd *r, size_t start, uint64_t type, const char *what)
{
	uint8_t blk[BP_MAX_BUNDLE], want[4];
	size_t n = r->off - start, cn;

	if (r->k != VA_CBOR_BSTR || r->n != (type == BP_CRC_16 ? 2u : 4u))
		return rd_fail(r, "%s: the CRC has the wrong length", what);
	if (n > sizeof(blk))
		return rd_fail(r, "%s is too large", what);
	memcpy(blk, r->buf + start, n);
	memset(blk + n - r->n, 0, r->n);
	cn = crc_value((enum bp_crc)type, blk, n, want);
	if (cn != r->n || memcmp(want, r->s, cn) != 0)
		return rd_fail(r, "%s: CRC mismatch", what);
	return 0;
}

/* RFC 9171 §4.3.1: the primary block. */
static int
rd_primary(struct rd *r, struct bp_acme *b)
{
	const char *w = "the primary block";
	uint64_t n, ver, crc, x;
	char report[BP_MAX_EID];
	size_t start = r->off;
	int frag;

	if (rd_array(r, 0, &n, w) != 0 || rd_uint(r, &ver, w) != 0 ||
	    rd_uint(r, &b->flags, w) != 0 || rd_uint(r, &crc, w) != 0)
		return -1;
	if (ver != 7)
		return rd_fail(r, "%s: version is not 7", w);
	if (crc > BP_CRC_32C)
		return rd_fail(r, "%s: unknown CRC type", w);
	frag = (b->flags & 0x01) != 0;
	if (n != 8u + (crc != 0) + 2u * (unsigned)frag)
		return rd_fail(r, "%s has the wrong number of items", w);
	b->crc = (enum bp_crc)crc;
	if (rd_eid(r, b->dest, "the destination") != 0 ||
	    rd_eid(r, b->src, "the source node ID") != 0 ||
	    rd_eid(r, report, "the report-to EID") != 0 ||
	    rd_array(r, 2, NULL, "the creation timestamp") != 0 ||
	    rd_uint(r, &b->created_ms, "the creation time") != 0 ||
	    rd_uint(r, &b->seq, "the sequence number") != 0 ||
	    rd_uint(r, &b->lifetime_ms, "the lifetime") != 0)
		return -1;
	if (frag &&
	    (rd_uint(r, &x, "the fragment offset") != 0 ||
		rd_uint(r, &x, "the total ADU length") != 0))
		return -1;
	if (crc != 0 &&
	    (rd_next(r) != 0 || rd_check_crc(r, start, crc, w) != 0))
		return -1;
	b->primary = r->buf + start;
	b->primary_len = r->off - start;
	return 0;
}

/*
 * One canonical block (§4.3.2) into *blk (data pointing into the
 * buffer). 1 when the bundle's break was read instead, 0 for a block.
 */
static int
rd_block(struct rd *r, struct bp_block *blk)
{
	const char *w = "a canonical block";
	uint64_t n, crc;
	size_t start = r->off;

	if (rd_next(r) != 0)
		return -1;
	if (r->k == VA_CBOR_BREAK)
		return 1;
	if (r->k != VA_CBOR_ARRAY || (r->v != 5 && r->v != 6))
		return rd_fail(r, "%s is not an array of 5 or 6 items", w);
	n = r->v;
	if (rd_uint(r, &blk->type, w) != 0 || rd_uint(r, &blk->num, w) != 0 ||
	    rd_uint(r, &blk->flags, w) != 0 || rd_uint(r, &crc, w) != 0 ||
	    rd_expect(r, VA_CBOR_BSTR, w) != 0)
		return -1;
	blk->data = r->s;
	blk->data_len = r->n;
	if (crc > BP_CRC_32C || n != 5u + (crc != 0))
		return rd_fail(r, "%s: CRC type and item count disagree", w);
	if (crc != 0 &&
	    (rd_next(r) != 0 || rd_check_crc(r, start, crc, w) != 0))
		return -1;
	return 0;
}

/* RFC 9891 Appendix A: [type, {1: bstr, 2: bstr, 3: [alg, bstr] / 4:
 * [+ alg]}] in the payload data. */
static int
rd_record(struct rd *r, struct bp_acme *b)
{
	const char *w = "the administrative record";
	uint64_t n, i, key, m, seen = 0;
	int64_t alg;
	int is_int;

	if (rd_array(r, 2, NULL, w) != 0 ||
	    rd_uint(r, &b->admin_type, w) != 0 ||
	    rd_expect(r, VA_CBOR_MAP, w) != 0)
		return -1;
	n = r->v;
	if (n > 16)
		return rd_fail(r, "%s has too many pairs", w);
	for (i = 0; i < n; i++) {
		if (rd_uint(r, &key, "an ACME record key") != 0)
			return -1;
		if (key < 64 && (seen & (1ull << key)))
			return rd_fail(r, "%s has a duplicate key", w);
		if (key < 64)
			seen |= 1ull << key;
		if (key == 1 || key == 2) {
			if (rd_expect(r, VA_CBOR_BSTR,
				key == 1 ? "id-chal" : "token-bundle") != 0)
				return -1;
			if (key == 1)
				b->id_chal = r->s, b->id_chal_len = r->n;
			else
				b->token = r->s, b->token_len = r->n;
		} else if (key == 3) {
			if (rd_array(r, 2, NULL, "key-auth-digest") != 0 ||
			    rd_alg(r, &b->digest_alg, &b->digest_alg_is_int) !=
				0 ||
			    rd_expect(r, VA_CBOR_BSTR, "the digest") != 0)
				return -1;
			b->has_digest = 1;
			b->digest = r->s;
			b->digest_len = r->n;
		} else if (key == 4) {
			if (rd_array(r, 0, &m, "alg-list") != 0)
				return -1;
			if (m == 0 || m > BP_MAX_ALGS)
				return rd_fail(r, "%s has 0 or too many items",
				    "alg-list");
			for (b->n_algs = 0; b->n_algs < m; b->n_algs++) {
				if (rd_alg(r, &alg, &is_int) != 0)
					return -1;
				b->algs[b->n_algs] = is_int ? alg : INT64_MIN;
			}
		} else if (rd_skip(r, 2) != 0) {
			return -1;
		}
	}
	if (r->off != r->len)
		return rd_fail(r, "%s has data after it", w);
	return 0;
}

/* The canonical blocks after the primary into b->blocks, each block
 * number once, the payload (block 1, RFC 9171 §4.3.3) last. */
static void
rd_blocks(struct rd *r, struct bp_acme *b, const struct bp_block **payload)
{
	struct bp_block blk;
	size_t i;
	int rc;

	while ((rc = rd_block(r, &blk)) == 0) {
		if (*payload != NULL) {
			rd_fail(r, "%s follows the payload block", "a block");
			return;
		}
		for (i = 0; i < b->n_blocks; i++)
			if (b->blocks[i].num == blk.num)
				rd_fail(r, "%s number is used twice", "a block");
		if (b->n_blocks == BP_MAX_BLOCKS) {
			rd_fail(r, "%s has too many blocks", "the bundle");
			return;
		}
		b->blocks[b->n_blocks] = blk;
		if ((blk.type == BP_PAYLOAD_BLOCK) != (blk.num == 1))
			rd_fail(r,
			    "%s: the payload block is block 1 and no "
			    "other (RFC 9171 §4.3.3)",
			    "a block");
		if (blk.type == BP_PAYLOAD_BLOCK)
			*payload = &b->blocks[b->n_blocks];
		b->n_blocks++;
	}
	if (rc == 1 && *payload == NULL)
		rd_fail(r, "%s has no payload block", "the bundle");
	if (rc == 1 && r->off != r->len)
		rd_fail(r, "%s is followed by more data", "the bundle");
}

/* See bpv7.h. */
int
bp_decode_acme(
    const uint8_t *buf, size_t len, struct bp_acme *b, char *err, size_t errlen)
{
	struct rd r = {buf, len, 0, 0, VA_CBOR_BAD, 0, NULL, 0, ""};
	struct rd pr;
	const struct bp_block *payload = NULL;

	memset(b, 0, sizeof(*b));
	if (len == 0 || len > BP_MAX_BUNDLE) {
		snprintf(err, errlen, "the bundle is empty or over %d bytes",
		    BP_MAX_BUNDLE);
		return -1;
	}
	/* §4.1: "Each bundle SHALL be a concatenated sequence of at least
	 * two blocks, represented as a CBOR indefinite-length array." */
	if (rd_next(&r) == 0 && r.k != VA_CBOR_IARRAY)
		rd_fail(
		    &r, "%s is not an indefinite-length array", "the bundle");
	if (r.err[0] == '\0' && rd_primary(&r, b) == 0)
		rd_blocks(&r, b, &payload);
	if (r.err[0] == '\0' && (b->flags & BP_FLAG_ADMIN_RECORD)) {
		memset(&pr, 0, sizeof(pr));
		pr.buf = payload->data;
		pr.len = payload->data_len;
		if (rd_record(&pr, b) != 0)
			snprintf(r.err, sizeof(r.err), "%s", pr.err);
	}
	if (r.err[0] != '\0') {
		snprintf(err, errlen, "%s", r.err);
		memset(b, 0, sizeof(*b));
		return -1;
	}
	return 0;
}

/* ---------------- BPSec BIB (RFC 9172 §3.6, RFC 9173 §3) ---------------- */

/* RFC 9173 §3.3.4: [id, value] parameters (BIB-HMAC-SHA2's when ctx 1). */
static int
rd_bib_params(struct rd *r, struct bp_bib *bib)
{
	const char *w = "a BIB parameter";
	uint64_t n, i, id;

	if (rd_array(r, 0, &n, "the BIB parameters") != 0)
		return -1;
	if (n > 8)
		return rd_fail(r, "%s: more than 8", "the BIB parameters");
	for (i = 0; i < n; i++) {
		if (rd_array(r, 2, NULL, w) != 0 || rd_uint(r, &id, w) != 0)
			return -1;
		if (bib->ctx_id != BIB_CTX_HMAC_SHA2) {
			if (rd_skip(r, 2) != 0)
				return -1;
		} else if (id == 1) {
			/* §3.3.2: 5 HMAC 256/256, 6 384/384, 7 512/512 */
			if (rd_uint(r, &bib->sha_variant, "the SHA variant") !=
				0)
				return -1;
			if (bib->sha_variant < 5 || bib->sha_variant > 7)
				return rd_fail(r, "%s is not 5, 6 or 7",
				    "the BIB's SHA variant");
		} else if (id == 2) {
			if (rd_expect(r, VA_CBOR_BSTR, "the wrapped key") != 0)
				return -1;
			bib->wrapped_key = 1;
		} else if (id == 3) {
			if (rd_uint(r, &bib->scope, "the scope flags") != 0)
				return -1;
		} else if (rd_skip(r, 2) != 0) {
			return -1;
		}
	}
	return 0;
}

/* RFC 9172 §3.6: one result set per target; §3.4 of RFC 9173: result 1
 * is the expected HMAC. */
static int
rd_bib_results(struct rd *r, struct bp_bib *bib)
{
	const char *w = "a BIB result";
	uint64_t n, i, k, j, id;

	if (rd_array(r, 0, &n, "the BIB results") != 0)
		return -1;
	if (n != bib->n_targets)
		return rd_fail(r, "%s: not one result set per target",
		    "the BIB results");
	for (i = 0; i < n; i++) {
		if (rd_array(r, 0, &k, w) != 0)
			return -1;
		if (k > 8)
			return rd_fail(r, "%s set has more than 8", w);
		for (j = 0; j < k; j++) {
			if (rd_array(r, 2, NULL, w) != 0 ||
			    rd_uint(r, &id, w) != 0)
				return -1;
			if (bib->ctx_id == BIB_CTX_HMAC_SHA2 && id == 1) {
				if (rd_expect(r, VA_CBOR_BSTR, "the HMAC") != 0)
					return -1;
				bib->hmac[i] = r->s;
				bib->hmac_len[i] = r->n;
			} else if (rd_skip(r, 2) != 0) {
				return -1;
			}
		}
		if (bib->ctx_id == BIB_CTX_HMAC_SHA2 && bib->hmac[i] == NULL)
			return rd_fail(r, "%s set has no expected HMAC (1)", w);
	}
	return 0;
}

/* See bpv7.h. */
int
bp_bib_decode(const uint8_t *asb, size_t len, struct bp_bib *bib, char *err,
    size_t errlen)
{
	struct rd r = {asb, len, 0, 0, VA_CBOR_BAD, 0, NULL, 0, ""};
	uint64_t n = 0, i, j, flags = 0;

	memset(bib, 0, sizeof(*bib));
	bib->sha_variant = 6; /* RFC 9173 §3.3.2 default */
	bib->scope = 7;       /* §3.3.3 default */
	if (rd_array(&r, 0, &n, "the BIB targets") == 0 &&
	    (n == 0 || n > BIB_MAX_TARGETS))
		rd_fail(&r, "%s: 1 to 4 block numbers", "the BIB targets");
	for (i = 0; r.err[0] == '\0' && i < n; i++) {
		if (rd_uint(&r, &bib->targets[i], "a BIB target") != 0)
			break;
		for (j = 0; j < i; j++)
			if (bib->targets[j] == bib->targets[i])
				rd_fail(&r, "%s is listed twice", "a BIB target");
	}
	bib->n_targets = (size_t)n;
	if (rd_uint(&r, &bib->ctx_id, "the security context id") == 0 &&
	    rd_uint(&r, &flags, "the security context flags") == 0 &&
	    rd_eid(&r, bib->source, "the security source") == 0 &&
	    ((flags & 1) == 0 || rd_bib_params(&r, bib) == 0) &&
	    rd_bib_results(&r, bib) == 0 && r.off != r.len)
		rd_fail(&r, "%s has data after it", "the BIB");
	if (r.err[0] != '\0') {
		snprintf(err, errlen, "%s", r.err);
		return -1;
	}
	return 0;
}

/* See bpv7.h. */
size_t
bp_bib_ippt(uint64_t scope, const uint8_t *primary, size_t primary_len,
    const struct bp_block *target, const struct bp_block *sec, uint8_t *out,
    size_t cap)
{
	struct wr w = {out, cap, 0, 0};

	/* §3.7 step 1: "the CBOR encoding of the integrity scope flags in
	 * which all unset flags, reserved bits, and unassigned bits have
	 * been set to 0" */
	w_uint(&w, scope & 7);
	if (scope & BIB_SCOPE_PRIMARY)
		w_raw(&w, primary, primary_len);
	if ((scope & BIB_SCOPE_TARGET_HDR) && target != NULL) {
		w_uint(&w, target->type);
		w_uint(&w, target->num);
		w_uint(&w, target->flags);
	}
	if (scope & BIB_SCOPE_SEC_HDR) {
		w_uint(&w, sec->type);
		w_uint(&w, sec->num);
		w_uint(&w, sec->flags);
	}
	/* step 5: the target's canonical form, a byte string */
	if (target != NULL)
		w_bstr(&w, target->data, target->data_len);
	else
		w_bstr(&w, primary, primary_len);
	return w.fail ? 0 : w.off;
}

/* See bpv7.h. */
unsigned
bp_bib_hmac(uint64_t sha_variant, const uint8_t *key, size_t key_len,
    const uint8_t *d, size_t n, uint8_t out[64])
{
	const EVP_MD *md = sha_variant == 5 ? EVP_sha256()
	    : sha_variant == 6		    ? EVP_sha384()
	    : sha_variant == 7		    ? EVP_sha512()
					    : NULL;
	unsigned len = 0;

	if (md == NULL || key_len > INT32_MAX ||
	    HMAC(md, key, (int)key_len, d, n, out, &len) == NULL)
		return 0;
	return len;
}

/* The block numbered num in b, or NULL. */
static const struct bp_block *
block_of(const struct bp_acme *b, uint64_t num)
{
	size_t i;

	for (i = 0; i < b->n_blocks; i++)
		if (b->blocks[i].num == num)
			return &b->blocks[i];
	return NULL;
}

/* See bpv7.h. */
int
bp_bib_verify(const struct bp_acme *b, const struct bp_block *bib_blk,
    const struct bp_bib *bib, const uint8_t *key, size_t key_len, char *err,
    size_t errlen)
{
	uint8_t ippt[BP_MAX_BUNDLE], mac[64];
	const struct bp_block *tgt;
	size_t i, n;
	unsigned m;

	for (i = 0; i < bib->n_targets; i++) {
		tgt = bib->targets[i] == 0 ? NULL : block_of(b, bib->targets[i]);
		if (bib->targets[i] != 0 &&
		    (tgt == NULL || tgt->type == BP_BLOCK_BIB ||
			tgt->type == BP_BLOCK_BCB)) {
			snprintf(err, errlen,
			    "the BIB targets block %" PRIu64
			    ", which is not a block of the bundle it may "
			    "target",
			    bib->targets[i]);
			return -1;
		}
		n = bp_bib_ippt(bib->scope, b->primary, b->primary_len, tgt,
		    bib_blk, ippt, sizeof(ippt));
		m = n == 0 ? 0
			   : bp_bib_hmac(
				 bib->sha_variant, key, key_len, ippt, n, mac);
		if (m == 0 || m != bib->hmac_len[i] ||
		    CRYPTO_memcmp(mac, bib->hmac[i], m) != 0) {
			snprintf(err, errlen,
			    "the HMAC over block %" PRIu64
			    " does not verify (BIB-HMAC-SHA2, RFC 9173)",
			    bib->targets[i]);
			return -1;
		}
	}
	return 0;
}

/* ---------------- TCPCLv4 framing (RFC 9174) ---------------- */

static uint64_t
be(const uint8_t *p, int n)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

static void
put_be(uint8_t *p, uint64_t v, int n)
{
	int i;

	for (i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

/* See bpv7.h. RFC 9174 §4.2: magic "dtn!", version 4, flags. */
int
tcpcl_contact_parse(const uint8_t *buf, size_t len)
{
	static const uint8_t magic[4] = {'d', 't', 'n', '!'};
	size_t n = len < 4 ? len : 4;

	if (memcmp(buf, magic, n) != 0)
		return -1;
	if (len < TCPCL_CONTACT_LEN)
		return 0;
	return buf[4] == 4 ? TCPCL_CONTACT_LEN : -1;
}

/* See bpv7.h. */
void
tcpcl_contact_encode(uint8_t out[TCPCL_CONTACT_LEN], uint8_t flags)
{
	memcpy(out, "dtn!", 4);
	out[4] = 4;
	out[5] = flags;
}

static long
msg_bad(char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "TCPCL: %s", what);
	return -1;
}

/* SESS_INIT (§4.6) after its type byte. */
static long
parse_sess_init(const uint8_t *buf, size_t len, size_t max_data,
    struct tcpcl_msg *m, char *err, size_t errlen)
{
	uint64_t nid, ext;

	if (len < 1 + 2 + 8 + 8 + 2)
		return 0;
	m->keepalive = (uint16_t)be(buf + 1, 2);
	m->seg_mru = be(buf + 3, 8);
	m->xfer_mru = be(buf + 11, 8);
	nid = be(buf + 19, 2);
	if (nid > max_data)
		return msg_bad(err, errlen, "SESS_INIT node ID is too long");
	if (len < 21 + nid + 4)
		return 0;
	ext = be(buf + 21 + nid, 4);
	if (ext > max_data)
		return msg_bad(err, errlen, "SESS_INIT extensions too long");
	if (len < 25 + nid + ext)
		return 0;
	m->data = buf + 21;
	m->data_len = (size_t)nid;
	return (long)(25 + nid + ext);
}

/* XFER_SEGMENT (§5.2.2) after its type byte. */
static long
parse_segment(const uint8_t *buf, size_t len, size_t max_data,
    struct tcpcl_msg *m, char *err, size_t errlen)
{
	size_t off = 10;
	uint64_t ext, n;

	if (len < 10)
		return 0;
	m->flags = buf[1];
	m->xfer_id = be(buf + 2, 8);
	if (m->flags & TCPCL_FLAG_START) {
		if (len < off + 4)
			return 0;
		ext = be(buf + off, 4);
		if (ext > max_data)
			return msg_bad(
			    err, errlen, "transfer extensions too long");
		off += 4 + (size_t)ext;
	}
	if (len < off + 8)
		return 0;
	n = be(buf + off, 8);
	if (n > max_data)
		return msg_bad(err, errlen, "XFER_SEGMENT larger than allowed");
	off += 8;
	if (len < off + n)
		return 0;
	m->data = buf + off;
	m->data_len = (size_t)n;
	return (long)(off + n);
}

/* See bpv7.h. */
long
tcpcl_msg_parse(const uint8_t *buf, size_t len, size_t max_data,
    struct tcpcl_msg *m, char *err, size_t errlen)
{
	memset(m, 0, sizeof(*m));
	if (len == 0)
		return 0;
	m->type = (enum tcpcl_type)buf[0];
	switch (buf[0]) {
	case TCPCL_SESS_INIT:
		return parse_sess_init(buf, len, max_data, m, err, errlen);
	case TCPCL_XFER_SEGMENT:
		return parse_segment(buf, len, max_data, m, err, errlen);
	case TCPCL_XFER_ACK:
		if (len < 18)
			return 0;
		m->flags = buf[1];
		m->xfer_id = be(buf + 2, 8);
		m->length = be(buf + 10, 8);
		return 18;
	case TCPCL_XFER_REFUSE:
		if (len < 10)
			return 0;
		m->reason = buf[1];
		m->xfer_id = be(buf + 2, 8);
		return 10;
	case TCPCL_KEEPALIVE:
		return 1;
	case TCPCL_SESS_TERM:
		if (len < 3)
			return 0;
		m->flags = buf[1];
		m->reason = buf[2];
		return 3;
	case TCPCL_MSG_REJECT:
		if (len < 3)
			return 0;
		m->reason = buf[1];
		return 3;
	default:
		return msg_bad(err, errlen, "unknown message type");
	}
}

/* See bpv7.h. */
size_t
tcpcl_sess_init_encode(uint8_t *out, size_t cap, uint16_t keepalive,
    uint64_t seg_mru, uint64_t xfer_mru, const char *node_id)
{
	size_t n = strlen(node_id);

	if (n > 0xFFFF || cap < 25 + n)
		return 0;
	out[0] = TCPCL_SESS_INIT;
	put_be(out + 1, keepalive, 2);
	put_be(out + 3, seg_mru, 8);
	put_be(out + 11, xfer_mru, 8);
	put_be(out + 19, n, 2);
	memcpy(out + 21, node_id, n);
	put_be(out + 21 + n, 0, 4);
	return 25 + n;
}

/* See bpv7.h. */
size_t
tcpcl_xfer_segment_encode(uint8_t *out, size_t cap, uint8_t flags,
    uint64_t xfer_id, const uint8_t *data, size_t len)
{
	size_t off = 10;

	if (cap < 10 + 4 + 8 + len)
		return 0;
	out[0] = TCPCL_XFER_SEGMENT;
	out[1] = flags;
	put_be(out + 2, xfer_id, 8);
	if (flags & TCPCL_FLAG_START) {
		put_be(out + off, 0, 4);
		off += 4;
	}
	put_be(out + off, len, 8);
	off += 8;
	if (len > 0)
		memcpy(out + off, data, len);
	return off + len;
}

/* See bpv7.h. */
size_t
tcpcl_xfer_ack_encode(
    uint8_t *out, size_t cap, uint8_t flags, uint64_t xfer_id, uint64_t acked)
{
	if (cap < 18)
		return 0;
	out[0] = TCPCL_XFER_ACK;
	out[1] = flags;
	put_be(out + 2, xfer_id, 8);
	put_be(out + 10, acked, 8);
	return 18;
}

/* See bpv7.h. */
size_t
tcpcl_sess_term_encode(uint8_t *out, size_t cap, uint8_t flags, uint8_t reason)
{
	if (cap < 3)
		return 0;
	out[0] = TCPCL_SESS_TERM;
	out[1] = flags;
	out[2] = reason;
	return 3;
}
