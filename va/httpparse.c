/*
 * httpparse.c - strict, bounded HTTP/1.1 response parser for http-01.
 *
 * Re-parses the whole buffer each time more bytes arrive; the buffer is
 * bounded (head <= VA_HTTP_MAX_HEADER_BYTES, body <= VA_HTTP_MAX_BODY + 1
 * collected), so this stays cheap and keeps no state between calls.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "va/va.h"

#define MAX_HEADERS 100

static int
is_tchar(unsigned char c)
{
	return isalnum(c) || strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Finds the next CRLF at or after off; returns its index or -1. */
static long
find_crlf(const char *buf, size_t len, size_t off)
{
	size_t i;

	for (i = off; i + 1 < len; i++) {
		if (buf[i] == '\r' && buf[i + 1] == '\n')
			return (long)i;
		if (buf[i] == '\n' || buf[i] == '\0')
			return -2; /* bare LF or NUL: refuse */
	}
	return -1;
}

/* Parses 1..18 decimal digits; -1 on anything else. */
static int64_t
parse_decimal(const char *s, size_t n)
{
	int64_t v = 0;
	size_t i;

	if (n == 0 || n > 18)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

static void
body_append(struct va_http_resp *r, const char *p, size_t n)
{
	size_t room = VA_HTTP_MAX_BODY + 1 - r->body_len;

	if (n > room) {
		n = room;
	}
	memcpy(r->body + r->body_len, p, n);
	r->body_len += n;
	if (r->body_len > VA_HTTP_MAX_BODY)
		r->body_too_large = 1;
}

/* Decodes a chunked body from buf[off..len). */
static enum va_http_rc
parse_chunked(const char *buf, size_t len, size_t off, struct va_http_resp *r,
    char *err, size_t errlen)
{
	for (;;) {
		long e = find_crlf(buf, len, off);
		size_t i, n = 0, digits = 0;

		if (e == -1)
			return VA_HTTP_NEED_MORE;
		if (e < 0) {
			snprintf(
			    err, errlen, "bad line ending in chunked body");
			return VA_HTTP_ERROR;
		}
		for (i = off; i < (size_t)e && isxdigit((unsigned char)buf[i]);
		     i++) {
			if (++digits > 8) {
				snprintf(err, errlen, "chunk size too long");
				return VA_HTTP_ERROR;
			}
			n = n * 16 +
			    (size_t)(isdigit((unsigned char)buf[i])
				    ? buf[i] - '0'
				    : tolower((unsigned char)buf[i]) - 'a' +
					10);
		}
		if (digits == 0 ||
		    (i < (size_t)e && buf[i] != ';' && buf[i] != ' ' &&
			buf[i] != '\t')) {
			snprintf(err, errlen, "bad chunk size line");
			return VA_HTTP_ERROR;
		}
		off = (size_t)e + 2;
		if (n == 0)
			return VA_HTTP_DONE; /* trailers ignored */
		if (len - off < n) {
			/* Partial chunk: what we have already may be enough
			 * to know the body is too large. */
			body_append(r, buf + off, len - off);
			if (r->body_too_large)
				return VA_HTTP_DONE;
			r->body_len -= len - off;
			return VA_HTTP_NEED_MORE;
		}
		body_append(r, buf + off, n);
		if (r->body_too_large)
			return VA_HTTP_DONE;
		off += n;
		if (len - off < 2)
			return VA_HTTP_NEED_MORE;
		if (buf[off] != '\r' || buf[off + 1] != '\n') {
			snprintf(err, errlen, "chunk not followed by CRLF");
			return VA_HTTP_ERROR;
		}
		off += 2;
	}
}

static enum va_http_rc
parse_header(const char *line, size_t n, struct va_http_resp *r, int *saw_te,
    char *err, size_t errlen)
{
	const char *colon = memchr(line, ':', n);
	const char *v, *end = line + n;
	size_t i, nlen, vlen;

	if (n > 0 && (line[0] == ' ' || line[0] == '\t')) {
		snprintf(err, errlen, "obsolete header line folding");
		return VA_HTTP_ERROR;
	}
	if (colon == NULL || colon == line) {
		snprintf(err, errlen, "header line without a name");
		return VA_HTTP_ERROR;
	}
	nlen = (size_t)(colon - line);
	for (i = 0; i < nlen; i++) {
		if (!is_tchar((unsigned char)line[i])) {
			snprintf(err, errlen,
			    "invalid character in header "
			    "name");
			return VA_HTTP_ERROR;
		}
	}
	v = colon + 1;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	vlen = (size_t)(end - v);
	for (i = 0; i < vlen; i++) {
		unsigned char c = (unsigned char)v[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			snprintf(err, errlen,
			    "control character in header "
			    "value");
			return VA_HTTP_ERROR;
		}
	}
	if (nlen == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
		int64_t cl = parse_decimal(v, vlen);
		if (cl < 0 ||
		    (r->content_length >= 0 && r->content_length != cl)) {
			snprintf(err, errlen, "invalid Content-Length");
			return VA_HTTP_ERROR;
		}
		r->content_length = cl;
	} else if (nlen == 17 &&
	    strncasecmp(line, "Transfer-Encoding", 17) == 0) {
		if (*saw_te || vlen != 7 || strncasecmp(v, "chunked", 7)) {
			snprintf(err, errlen, "unsupported Transfer-Encoding");
			return VA_HTTP_ERROR;
		}
		*saw_te = 1;
		r->chunked = 1;
	} else if (nlen == 8 && strncasecmp(line, "Location", 8) == 0) {
		if (r->location != NULL) {
			snprintf(err, errlen, "more than one Location header");
			return VA_HTTP_ERROR;
		}
		if (vlen == 0 || vlen > VA_HTTP_MAX_LOCATION) {
			snprintf(err, errlen, "empty or too long Location");
			return VA_HTTP_ERROR;
		}
		r->location = xstrndup(v, vlen);
	}
	return VA_HTTP_NEED_MORE;
}

void
va_http_resp_clear(struct va_http_resp *r)
{
	if (r == NULL)
		return;
	free(r->location);
	memset(r, 0, sizeof(*r));
	r->content_length = -1;
}

/*
 * The body after the head (at off): only a 2xx one matters; chunked,
 * Content-Length or until the peer closes. DONE, NEED_MORE, or ERROR with
 * err.
 */
static enum va_http_rc
parse_body(const char *buf, size_t len, size_t off, int eof,
    struct va_http_resp *r, char *err, size_t errlen)
{
	enum va_http_rc rc;

	/* Only a 2xx body matters to us. */
	if (r->status < 200 || r->status > 299 || r->status == 204)
		return VA_HTTP_DONE;
	if (r->chunked) {
		rc = parse_chunked(buf, len, off, r, err, errlen);
		if (rc == VA_HTTP_NEED_MORE && eof) {
			snprintf(err, errlen,
			    "connection closed inside a "
			    "chunked body");
			rc = VA_HTTP_ERROR;
		}
		return rc;
	}
	if (r->content_length >= 0) {
		size_t have = len - off;
		if (r->content_length > VA_HTTP_MAX_BODY) {
			r->body_too_large = 1;
			body_append(r, buf + off, have);
			r->body_too_large = 1;
			return VA_HTTP_DONE;
		}
		if (have >= (size_t)r->content_length) {
			body_append(r, buf + off, (size_t)r->content_length);
			return VA_HTTP_DONE;
		}
		if (eof) {
			snprintf(err, errlen,
			    "connection closed after %zu of "
			    "%lld body bytes",
			    have, (long long)r->content_length);
			return VA_HTTP_ERROR;
		}
		return VA_HTTP_NEED_MORE;
	}
	/* No framing: the body ends when the peer closes. */
	body_append(r, buf + off, len - off);
	if (r->body_too_large || eof)
		return VA_HTTP_DONE;
	r->body_len = 0;
	return VA_HTTP_NEED_MORE;
}

enum va_http_rc
va_http_parse(const char *buf, size_t len, int eof, struct va_http_resp *r,
    char *err, size_t errlen)
{
	enum va_http_rc rc = VA_HTTP_ERROR;
	long e;
	size_t off, nheaders = 0;
	int saw_te = 0;
	int64_t st;

	memset(r, 0, sizeof(*r));
	r->content_length = -1;
	err[0] = '\0';

	/* Status line: HTTP/1.x SP 3DIGIT SP reason */
	e = find_crlf(buf, len, 0);
	if (e == -1) {
		if (len > VA_HTTP_MAX_HEADER_BYTES)
			goto toolong;
		if (eof)
			goto truncated;
		return VA_HTTP_NEED_MORE;
	}
	if (e < 0 || e < 12 || memcmp(buf, "HTTP/1.", 7) != 0 ||
	    (buf[7] != '0' && buf[7] != '1') || buf[8] != ' ' ||
	    (e > 12 && buf[12] != ' ')) {
		snprintf(err, errlen, "malformed HTTP status line");
		goto fail;
	}
	st = parse_decimal(buf + 9, 3);
	if (st < 100 || st > 599) {
		snprintf(err, errlen, "malformed HTTP status code");
		goto fail;
	}
	r->status = (int)st;
	off = (size_t)e + 2;

	/* Header fields up to the empty line. */
	for (;;) {
		e = find_crlf(buf, len, off);
		if (e == -1) {
			if (len > VA_HTTP_MAX_HEADER_BYTES)
				goto toolong;
			if (eof)
				goto truncated;
			rc = VA_HTTP_NEED_MORE;
			goto fail;
		}
		if (e < 0) {
			snprintf(err, errlen, "bad line ending in headers");
			goto fail;
		}
		if ((size_t)e + 2 > VA_HTTP_MAX_HEADER_BYTES)
			goto toolong;
		if ((size_t)e == off)
			break;
		if (++nheaders > MAX_HEADERS) {
			snprintf(err, errlen, "too many header fields");
			goto fail;
		}
		if (parse_header(buf + off, (size_t)e - off, r, &saw_te, err,
			errlen) == VA_HTTP_ERROR)
			goto fail;
		off = (size_t)e + 2;
	}
	off += 2;
	if (r->chunked && r->content_length >= 0) {
		snprintf(err, errlen,
		    "both Content-Length and "
		    "Transfer-Encoding");
		goto fail;
	}
	rc = parse_body(buf, len, off, eof, r, err, errlen);
	if (rc == VA_HTTP_ERROR)
		goto fail;
	return rc;

toolong:
	snprintf(err, errlen, "HTTP response head larger than %d bytes",
	    VA_HTTP_MAX_HEADER_BYTES);
	goto fail;
truncated:
	snprintf(err, errlen,
	    "connection closed before the end of the HTTP "
	    "response head");
fail:
	free(r->location);
	r->location = NULL;
	return rc;
}
