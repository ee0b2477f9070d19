/*
 * attest_cbor.c - the WebAuthn attestation object of device-attest-01
 * (draft-ietf-acme-device-attest §5, WebAuthn §6.5.4):
 *
 *   attObj = {"fmt": tstr, "attStmt": {...}, ? "authData": bstr}
 *
 * decoded with libcbor's streaming decoder under strict bounds: definite
 * lengths only, no tags, no floats, at most VA_ATT_MAX_DEPTH levels and
 * VA_ATT_MAX_ITEMS items, every declared length within the bytes left,
 * text map keys, no duplicate keys in the two outer maps and nothing after
 * the object. The byte strings the verifiers need are pointers into the
 * caller's buffer: nothing is copied or allocated.
 */
#include <stdio.h>
#include <string.h>

#include "va/va_int.h"

#define VA_ATT_MAX_DEPTH 8
#define VA_ATT_MAX_ITEMS 512

/* Keys the verifiers read; K_OTHER is any other key. */
enum att_key {
	K_NONE,
	K_OTHER,
	K_FMT,
	K_ATTSTMT,
	K_AUTHDATA,
	K_X5C,
	K_SIG,
	K_CERTINFO,
	K_PUBAREA,
	K_ALG,
	K_VER,
};

struct att_frame {
	int is_map;
	uint64_t left;    /* items still to come (a map counts keys too) */
	enum att_key key; /* maps: the key of the value being read */
	unsigned seen;    /* maps at depth 1-2: keys already read (bits) */
};

struct att_parse {
	struct va_attobj *o;
	struct att_frame st[VA_ATT_MAX_DEPTH];
	int depth;
	size_t items;
	size_t left_bytes; /* bytes after the item being decoded */
	int done;          /* the top-level map has ended */
	char err[128];
};

static void
att_fail(struct att_parse *p, const char *msg)
{
	if (p->err[0] == '\0')
		snprintf(p->err, sizeof(p->err), "%s", msg);
}

/* The key enum for text s (n bytes) in a map at depth d (1 = top). */
static enum att_key
att_key_of(int d, const unsigned char *s, size_t n)
{
	static const struct {
		int depth;
		const char *name;
		enum att_key k;
	} keys[] = {{1, "fmt", K_FMT}, {1, "attStmt", K_ATTSTMT},
	    {1, "authData", K_AUTHDATA}, {2, "x5c", K_X5C}, {2, "sig", K_SIG},
	    {2, "certInfo", K_CERTINFO}, {2, "pubArea", K_PUBAREA},
	    {2, "alg", K_ALG}, {2, "ver", K_VER}};
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (keys[i].depth == d && strlen(keys[i].name) == n &&
		    memcmp(keys[i].name, s, n) == 0)
			return keys[i].k;
	return K_OTHER;
}

/* 1 when the next item of the innermost container is a map key. */
static int
att_at_key(const struct att_parse *p)
{
	const struct att_frame *f = &p->st[p->depth - 1];

	return f->is_map && f->left % 2 == 0;
}

/*
 * Where the value being read sits: the key of the enclosing map at depth
 * d (1 = top level), or K_NONE when that level is not a map value.
 */
static enum att_key
att_path(const struct att_parse *p, int d)
{
	if (p->depth < d || !p->st[d - 1].is_map)
		return K_NONE;
	return p->st[d - 1].key;
}

/* Pops containers that have nothing left (an empty one just pushed, and
 * parents it completes). */
static void
att_pop_empty(struct att_parse *p)
{
	while (p->depth > 0 && p->st[p->depth - 1].left == 0) {
		p->depth--;
		if (p->depth == 0)
			p->done = 1;
	}
}

/*
 * Counts one item against the innermost container and pops the ones that
 * are complete. Called after a scalar; a container counts in its parent
 * when it starts (att_open).
 */
static void
att_consumed(struct att_parse *p)
{
	if (p->depth == 0)
		return;
	p->st[p->depth - 1].left--;
	att_pop_empty(p);
}

/* Common checks before any item; -1 when parsing must stop. */
static int
att_item(struct att_parse *p)
{
	if (p->err[0] != '\0')
		return -1;
	if (p->done) {
		att_fail(p, "data after the attestation object");
		return -1;
	}
	if (++p->items > VA_ATT_MAX_ITEMS) {
		att_fail(p, "too many CBOR items");
		return -1;
	}
	if (p->depth == 0) {
		att_fail(p, "the attestation object is not a CBOR map");
		return -1;
	}
	return 0;
}

/* A key (text) of the innermost map: records it, refusing duplicates of
 * known keys at the two outer levels. */
static void
att_take_key(struct att_parse *p, const unsigned char *s, size_t n)
{
	struct att_frame *f = &p->st[p->depth - 1];
	enum att_key k = att_key_of(p->depth, s, n);

	if (p->depth <= 2 && k != K_OTHER) {
		if (f->seen & (1u << k)) {
			att_fail(p, "duplicate key in the attestation object");
			return;
		}
		f->seen |= 1u << k;
	}
	f->key = k;
}

/* A scalar value that is not a key: only its position matters. */
static void
att_scalar(struct att_parse *p)
{
	if (att_at_key(p)) {
		att_fail(p, "a map key that is not a text string");
		return;
	}
	att_consumed(p);
}

/* A text string: a map key, or fmt / attStmt.ver. */
static void
att_string(struct att_parse *p, const uint8_t *s, size_t n)
{
	if (att_item(p) != 0)
		return;
	if (att_at_key(p)) {
		att_take_key(p, s, n);
		att_consumed(p);
		return;
	}
	if (p->depth == 1 && att_path(p, 1) == K_FMT) {
		if (n == 0 || n >= sizeof(p->o->fmt) ||
		    memchr(s, '\0', n) != NULL) {
			att_fail(p, "fmt is not a short text string");
			return;
		}
		memcpy(p->o->fmt, s, n);
		p->o->fmt[n] = '\0';
	} else if (p->depth == 2 && att_path(p, 1) == K_ATTSTMT &&
	    att_path(p, 2) == K_VER) {
		if (n == 0 || n >= sizeof(p->o->ver) ||
		    memchr(s, '\0', n) != NULL) {
			att_fail(p, "attStmt.ver is not a short text string");
			return;
		}
		memcpy(p->o->ver, s, n);
		p->o->ver[n] = '\0';
	}
	att_consumed(p);
}

/* The attStmt byte string member k into its slot. */
static void
att_take_bytes(struct att_parse *p, enum att_key k, const uint8_t *s, size_t n)
{
	struct va_attobj *o = p->o;

	switch (k) {
	case K_SIG:
		o->sig = s, o->sig_len = n;
		break;
	case K_CERTINFO:
		o->cert_info = s, o->cert_info_len = n;
		break;
	case K_PUBAREA:
		o->pub_area = s, o->pub_area_len = n;
		break;
	default:
		break;
	}
}

/* A byte string: authData, an attStmt member or an x5c certificate. */
static void
att_bytes(struct att_parse *p, const uint8_t *s, size_t n)
{
	if (att_item(p) != 0)
		return;
	if (att_at_key(p)) {
		att_fail(p, "a map key that is not a text string");
		return;
	}
	if (p->depth == 1 && att_path(p, 1) == K_AUTHDATA) {
		p->o->auth_data = s, p->o->auth_data_len = n;
	} else if (p->depth == 2 && att_path(p, 1) == K_ATTSTMT) {
		att_take_bytes(p, att_path(p, 2), s, n);
	} else if (p->depth == 3 && att_path(p, 1) == K_ATTSTMT &&
	    att_path(p, 2) == K_X5C) {
		if (p->o->n_x5c >= VA_ATT_MAX_X5C) {
			att_fail(p, "x5c has too many certificates");
			return;
		}
		p->o->x5c[p->o->n_x5c] = s;
		p->o->x5c_len[p->o->n_x5c++] = n;
	}
	att_consumed(p);
}

/* A definite container of n items (maps: 2n) begins. */
static void
att_open(struct att_parse *p, int is_map, uint64_t n)
{
	struct att_frame *f;

	if (p->err[0] != '\0')
		return;
	if (p->done) {
		att_fail(p, "data after the attestation object");
		return;
	}
	if (++p->items > VA_ATT_MAX_ITEMS) {
		att_fail(p, "too many CBOR items");
		return;
	}
	/* every item takes at least one byte */
	if (n > p->left_bytes || (is_map && n > p->left_bytes / 2)) {
		att_fail(p, "a CBOR length runs past the end of the data");
		return;
	}
	if (p->depth == 0 && !is_map) {
		att_fail(p, "the attestation object is not a CBOR map");
		return;
	}
	if (p->depth > 0) {
		if (att_at_key(p)) {
			att_fail(p, "a map key that is not a text string");
			return;
		}
		if (p->depth == 1 && att_path(p, 1) == K_ATTSTMT && !is_map) {
			att_fail(p, "attStmt is not a map");
			return;
		}
		if (p->depth == 2 && att_path(p, 1) == K_ATTSTMT &&
		    att_path(p, 2) == K_X5C && is_map) {
			att_fail(p, "x5c is not an array");
			return;
		}
		p->st[p->depth - 1].left--;
	}
	if (p->depth >= VA_ATT_MAX_DEPTH) {
		att_fail(p, "CBOR nesting too deep");
		return;
	}
	f = &p->st[p->depth++];
	memset(f, 0, sizeof(*f));
	f->is_map = is_map;
	f->left = is_map ? 2 * n : n;
	if (p->depth == 2 && is_map && att_path(p, 1) == K_ATTSTMT)
		p->o->has_att_stmt = 1;
	att_pop_empty(p);
}

/* An integer (v, negative when neg: -1 - v). alg is the only one read. */
static void
att_int(struct att_parse *p, uint64_t v, int neg)
{
	if (att_item(p) != 0)
		return;
	if (p->depth == 2 && !att_at_key(p) && att_path(p, 1) == K_ATTSTMT &&
	    att_path(p, 2) == K_ALG) {
		if (v > INT32_MAX) {
			att_fail(p, "attStmt.alg out of range");
			return;
		}
		p->o->alg = neg ? -1 - (int64_t)v : (int64_t)v;
		p->o->has_alg = 1;
	}
	att_scalar(p);
}

/* One item head, by kind; indefinite lengths, tags, floats, undefined are
 * refused. */
static void
att_dispatch(struct att_parse *p, const struct va_cbor_item *it)
{
	switch (it->kind) {
	case VA_CBOR_UINT:
	case VA_CBOR_NEG:
		att_int(p, it->v, it->kind == VA_CBOR_NEG);
		break;
	case VA_CBOR_BSTR:
		att_bytes(p, it->s, it->n);
		break;
	case VA_CBOR_TSTR:
		att_string(p, it->s, it->n);
		break;
	case VA_CBOR_ARRAY:
	case VA_CBOR_MAP:
		att_open(p, it->kind == VA_CBOR_MAP, it->v);
		break;
	case VA_CBOR_SIMPLE:
		if (att_item(p) == 0)
			att_scalar(p);
		break;
	default:
		att_fail(p,
		    "unsupported CBOR (indefinite length, tag, float or "
		    "undefined)");
		break;
	}
}

/* See va_int.h. */
int
va_attobj_parse(const uint8_t *buf, size_t len, struct va_attobj *out,
    char *err, size_t errlen)
{
	struct att_parse p;
	struct va_cbor_item it;
	size_t off = 0, got;

	memset(out, 0, sizeof(*out));
	memset(&p, 0, sizeof(p));
	p.o = out;
	if (len == 0 || len > VA_ATT_MAX_LEN) {
		snprintf(err, errlen, "attObj is empty or larger than %d bytes",
		    VA_ATT_MAX_LEN);
		return -1;
	}
	p.left_bytes = len;
	while (off < len && p.err[0] == '\0') {
		got = va_cbor_next(buf + off, len - off, &it);
		if (got == 0) {
			att_fail(&p, "attObj is not well-formed CBOR");
			break;
		}
		att_dispatch(&p, &it);
		/* containers check their declared sizes against this */
		off += got;
		p.left_bytes = len - off;
		if (p.done && off < len)
			att_fail(&p, "data after the attestation object");
	}
	if (p.err[0] == '\0' && !p.done)
		att_fail(&p, "attObj ends inside a CBOR item");
	if (p.err[0] == '\0' && out->fmt[0] == '\0')
		att_fail(&p, "attObj has no \"fmt\" text string");
	if (p.err[0] == '\0' && !out->has_att_stmt)
		att_fail(&p, "attObj has no \"attStmt\" map");
	if (p.err[0] != '\0') {
		snprintf(err, errlen, "%s", p.err);
		memset(out, 0, sizeof(*out));
		return -1;
	}
	return 0;
}
