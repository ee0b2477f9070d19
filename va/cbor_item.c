/*
 * cbor_item.c - one CBOR item head at a time, for the VA's bounded CBOR
 * readers (attest_cbor.c's attestation objects, bpv7.c's bundles).
 *
 * libcbor's streaming decoder reports an item through a table of
 * callbacks; this file holds the one table and turns its calls into a
 * struct va_cbor_item, so each reader decides for itself, item by item,
 * what it accepts. Nothing is allocated: strings point into the caller's
 * buffer.
 */
#include <string.h>

#include <cbor.h>

#include "va/va_int.h"

static void
item_set(void *c, enum va_cbor_kind k, uint64_t v)
{
	struct va_cbor_item *it = c;

	it->kind = k;
	it->v = v;
}

static void
item_str(void *c, enum va_cbor_kind k, cbor_data s, size_t n)
{
	struct va_cbor_item *it = c;

	item_set(c, k, n);
	it->s = s;
	it->n = n;
}

/*
 * libcbor has one callback per width and kind; they differ only in the
 * argument's type and in what they record, so one line makes each.
 * CB_VAL records a head with a value (an integer, a count), CB_NONE one
 * without, CB_BAD refuses an item whatever its argument (indefinite
 * strings and maps, tags, floats, undefined).
 */
#define CB_VAL(name, type, kind)                                               \
	static void name(void *c, type v)                                      \
	{                                                                      \
		item_set(c, kind, (uint64_t)v);                                \
	}
#define CB_NONE(name, kind)                                                    \
	static void name(void *c)                                              \
	{                                                                      \
		item_set(c, kind, 0);                                          \
	}
#define CB_BAD(name, type)                                                     \
	static void name(void *c, type v)                                      \
	{                                                                      \
		(void)v;                                                       \
		item_set(c, VA_CBOR_BAD, 0);                                   \
	}

CB_VAL(cb_u8, uint8_t, VA_CBOR_UINT)
CB_VAL(cb_u16, uint16_t, VA_CBOR_UINT)
CB_VAL(cb_u32, uint32_t, VA_CBOR_UINT)
CB_VAL(cb_u64, uint64_t, VA_CBOR_UINT)
CB_VAL(cb_n8, uint8_t, VA_CBOR_NEG)
CB_VAL(cb_n16, uint16_t, VA_CBOR_NEG)
CB_VAL(cb_n32, uint32_t, VA_CBOR_NEG)
CB_VAL(cb_n64, uint64_t, VA_CBOR_NEG)
CB_VAL(cb_array, size_t, VA_CBOR_ARRAY)
CB_VAL(cb_map, size_t, VA_CBOR_MAP)
CB_VAL(cb_bool, bool, VA_CBOR_SIMPLE)
CB_NONE(cb_iarray, VA_CBOR_IARRAY)
CB_NONE(cb_break, VA_CBOR_BREAK)
CB_NONE(cb_null, VA_CBOR_SIMPLE)
CB_NONE(cb_bad, VA_CBOR_BAD)
CB_BAD(cb_bad_tag, uint64_t)
CB_BAD(cb_bad_f, float)
CB_BAD(cb_bad_d, double)

static void
cb_bstr(void *c, cbor_data s, size_t n)
{
	item_str(c, VA_CBOR_BSTR, s, n);
}

static void
cb_tstr(void *c, cbor_data s, size_t n)
{
	item_str(c, VA_CBOR_TSTR, s, n);
}

static const struct cbor_callbacks item_callbacks = {
    .uint8 = cb_u8,
    .uint16 = cb_u16,
    .uint32 = cb_u32,
    .uint64 = cb_u64,
    .negint8 = cb_n8,
    .negint16 = cb_n16,
    .negint32 = cb_n32,
    .negint64 = cb_n64,
    .byte_string_start = cb_bad,
    .byte_string = cb_bstr,
    .string = cb_tstr,
    .string_start = cb_bad,
    .indef_array_start = cb_iarray,
    .array_start = cb_array,
    .indef_map_start = cb_bad,
    .map_start = cb_map,
    .tag = cb_bad_tag,
    .float2 = cb_bad_f,
    .float4 = cb_bad_f,
    .float8 = cb_bad_d,
    .undefined = cb_bad,
    .null = cb_null,
    .boolean = cb_bool,
    .indef_break = cb_break,
};

/* See va_int.h. */
size_t
va_cbor_next(const uint8_t *buf, size_t len, struct va_cbor_item *it)
{
	struct cbor_decoder_result r;

	memset(it, 0, sizeof(*it));
	it->kind = VA_CBOR_BAD;
	if (len == 0)
		return 0;
	r = cbor_stream_decode(buf, len, &item_callbacks, it);
	if (r.status != CBOR_DECODER_FINISHED || r.read == 0 || r.read > len)
		return 0;
	return r.read;
}
