/* encoding.c - strict base64url (RFC 4648 §5, unpadded) and hex. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/*
 * One base64 quantum (RFC 4648 §4) of the first min(n, 3) bytes of d in
 * alphabet a, written to out: 4 characters, or with fewer than 3 bytes
 * and !pad only the n + 1 that carry bits. The number written.
 */
static size_t
b64_quantum(const char *a, const uint8_t *d, size_t n, int pad, char *out)
{
	uint32_t v = (uint32_t)d[0] << 16;
	size_t k = n >= 3 ? 4 : n + 1, i;

	if (n > 1)
		v |= (uint32_t)d[1] << 8;
	if (n > 2)
		v |= d[2];
	for (i = 0; i < 4; i++)
		if (i < k)
			out[i] = a[(v >> (18 - 6 * i)) & 63];
		else if (pad)
			out[i] = '=';
	return pad ? 4 : k;
}

char *
b64url_encode(const uint8_t *data, size_t len)
{
	size_t outlen = (len / 3) * 4 + ((len % 3) ? (len % 3) + 1 : 0);
	char *out = xmalloc(outlen + 1);
	size_t i, o = 0;

	for (i = 0; i < len; i += 3)
		o += b64_quantum(b64url_alphabet, data + i, len - i, 0, out + o);
	out[o] = '\0';
	return out;
}

static int
b64url_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

int
b64url_decode(const char *in, size_t inlen, uint8_t **out, size_t *outlen)
{
	uint8_t *buf;
	size_t i, o = 0, rem = inlen % 4;
	uint32_t acc = 0;
	int bits = 0;

	*out = NULL;
	*outlen = 0;
	if (in == NULL || rem == 1)
		return -1;
	buf = xmalloc(inlen / 4 * 3 + 3 + 1);
	for (i = 0; i < inlen; i++) {
		int v = b64url_val((unsigned char)in[i]);

		if (v < 0) {
			free(buf);
			return -1;
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* Non-canonical encodings (leftover bits set) are rejected. */
	if (acc != 0) {
		free(buf);
		return -1;
	}
	buf[o] = 0;
	*out = buf;
	*outlen = o;
	return 0;
}

char *
hex_encode(const uint8_t *data, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	char *out = xmalloc(len * 2 + 1);
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[data[i] >> 4];
		out[2 * i + 1] = digits[data[i] & 15];
	}
	out[2 * len] = '\0';
	return out;
}

static int
hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
hex_decode(const char *in, uint8_t **out, size_t *outlen)
{
	size_t n, i;
	uint8_t *buf;

	*out = NULL;
	*outlen = 0;
	if (in == NULL)
		return -1;
	n = strlen(in);
	if (n % 2 != 0)
		return -1;
	buf = xmalloc(n / 2 + 1);
	for (i = 0; i < n / 2; i++) {
		int hi = hex_val(in[2 * i]), lo = hex_val(in[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			free(buf);
			return -1;
		}
		buf[i] = (uint8_t)(hi << 4 | lo);
	}
	buf[n / 2] = 0;
	*out = buf;
	*outlen = n / 2;
	return 0;
}

char *
base32_encode_lower(const uint8_t *data, size_t len)
{
	static const char alpha[] = "abcdefghijklmnopqrstuvwxyz234567";
	char *out = xmalloc((len * 8 + 4) / 5 + 1);
	uint32_t acc = 0;
	int bits = 0;
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		acc = (acc << 8) | data[i];
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			out[o++] = alpha[(acc >> bits) & 31];
		}
	}
	if (bits > 0)
		out[o++] = alpha[(acc << (5 - bits)) & 31];
	out[o] = '\0';
	return out;
}

int
base32_decode(const char *in, uint8_t *out, size_t outcap, size_t *outlen)
{
	uint32_t acc = 0;
	int bits = 0, v;
	size_t o = 0;
	char c;

	*outlen = 0;
	if (in == NULL)
		return -1;
	for (; *in; in++) {
		c = *in;
		if (c >= 'a' && c <= 'z')
			v = c - 'a';
		else if (c >= 'A' && c <= 'Z')
			v = c - 'A';
		else if (c >= '2' && c <= '7')
			v = c - '2' + 26;
		else
			return -1;
		acc = (acc << 5) | (uint32_t)v;
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			if (o == outcap)
				return -1;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	/* leftover bits must be zero padding of the last character */
	if (bits >= 5 || (acc & ((1u << bits) - 1)) != 0)
		return -1;
	*outlen = o;
	return 0;
}

/* See core.h. */
char *
serial_hex(const uint8_t *b, size_t n)
{
	char *h, *out;
	size_t l;

	while (n > 1 && b[0] == 0) {
		b++;
		n--;
	}
	if (n == 0 || n > SERIAL_MAX_BYTES)
		return NULL;
	h = hex_encode(b, n);
	l = strlen(h);
	if (l >= SERIAL_HEX_MIN)
		return h;
	out = xmalloc(SERIAL_HEX_MIN + 1);
	memset(out, '0', SERIAL_HEX_MIN - l);
	memcpy(out + SERIAL_HEX_MIN - l, h, l + 1);
	free(h);
	return out;
}

/* See core.h. */
char *
serial_hex_of_certid(const char *certid)
{
	const char *dot = strchr(certid, '.');
	uint8_t *raw = NULL;
	size_t n = 0;
	char *hex = NULL;

	if (dot == NULL || dot == certid || strchr(dot + 1, '.') != NULL)
		return NULL;
	if (b64url_decode(dot + 1, strlen(dot + 1), &raw, &n) == 0 && n > 0 &&
	    n <= SERIAL_MAX_BYTES)
		hex = serial_hex(raw, n);
	free(raw);
	return hex;
}

/* See core.h. */
char *
pem_encode(const char *label, const uint8_t *der, size_t len)
{
	size_t chars = (len + 2) / 3 * 4, i, o, col = 0;
	size_t cap = 2 * strlen(label) + 32 + chars + chars / 64 + 2;
	char *out = xmalloc(cap);

	o = (size_t)snprintf(out, cap, "-----BEGIN %s-----\n", label);
	for (i = 0; i < len; i += 3) {
		o += b64_quantum(b64_alphabet, der + i, len - i, 1, out + o);
		if ((col += 4) == 64) {
			out[o++] = '\n';
			col = 0;
		}
	}
	if (col > 0)
		out[o++] = '\n';
	snprintf(out + o, cap - o, "-----END %s-----\n", label);
	return out;
}
