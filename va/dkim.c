/*
 * dkim.c - Internet messages and DKIM (RFC 6376) for email-reply-00
 * (RFC 8823): parsing a message into header fields and body, the "simple"
 * and "relaxed" canonicalizations (§3.4), rsa-sha256 signing of the CA's
 * challenge email and verification of the applicant's reply against the
 * key record the VA looked up in DNS (§3.6.1). Pure functions: no I/O.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "va/va_int.h"

/* ------------------------------------------------------------------ */
/* Messages                                                            */
/* ------------------------------------------------------------------ */

/* See va_int.h. */
void
va_mail_clear(struct va_mail *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->nh; i++) {
		free(m->h[i].name);
		free(m->h[i].raw);
	}
	free(m->h);
	free(m->body);
	memset(m, 0, sizeof(*m));
}

/* Appends n bytes of s to the growing buffer (*buf, *len, *cap). */
static void
buf_add(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
	if (*len + n + 1 > *cap) {
		*cap = (*len + n + 1) * 2;
		*buf = xrealloc(*buf, *cap);
	}
	memcpy(*buf + *len, s, n);
	*len += n;
	(*buf)[*len] = '\0';
}

/* See va_int.h. */
int
va_mail_parse(const char *data, size_t len, struct va_mail *m)
{
	size_t pos = 0, cap = 0, bcap = 0, eol, n;
	struct va_mail_hdr *cur = NULL;
	size_t rawcap = 0, rawlen = 0;
	int in_body = 0;

	memset(m, 0, sizeof(*m));
	if (memchr(data, '\0', len) != NULL)
		return -1;
	while (pos < len) {
		const char *line = data + pos, *nl;

		nl = memchr(line, '\n', len - pos);
		eol = nl ? (size_t)(nl - line) : len - pos;
		pos += eol + (nl ? 1 : 0);
		n = eol;
		if (n > 0 && line[n - 1] == '\r')
			n--; /* CRLF or LF (a maildir file): both are CRLF */
		if (in_body) {
			buf_add(&m->body, &m->body_len, &bcap, line, n);
			buf_add(&m->body, &m->body_len, &bcap, "\r\n", 2);
			continue;
		}
		if (n == 0) {
			in_body = 1;
			continue;
		}
		if (line[0] == ' ' || line[0] == '\t') {
			if (cur == NULL)
				goto bad; /* continuation before any field */
			buf_add(&cur->raw, &rawlen, &rawcap, "\r\n", 2);
			buf_add(&cur->raw, &rawlen, &rawcap, line, n);
			continue;
		}
		{
			const char *colon = memchr(line, ':', n);
			size_t k;

			if (colon == NULL || colon == line)
				goto bad;
			for (k = 0; line + k < colon; k++)
				if (line[k] <= 32 || line[k] >= 127)
					goto bad; /* RFC 5322 §2.2 ftext */
			if (m->nh == cap) {
				cap = cap ? cap * 2 : 16;
				m->h = xrealloc(m->h, cap * sizeof(*m->h));
			}
			cur = &m->h[m->nh++];
			cur->name = xstrndup(line, (size_t)(colon - line));
			cur->raw = NULL;
			rawcap = rawlen = 0;
			buf_add(&cur->raw, &rawlen, &rawcap, line, n);
		}
		if (m->nh > 500)
			goto bad;
	}
	if (m->body == NULL)
		m->body = xstrdup("");
	return 0;
bad:
	va_mail_clear(m);
	return -1;
}

/* See va_int.h. */
char *
va_mail_value(const struct va_mail_hdr *h)
{
	const char *v = strchr(h->raw, ':') + 1;
	char *out = xmalloc(strlen(v) + 1), *o = out;
	size_t n;

	for (; *v; v++)
		if (*v != '\r' && *v != '\n')
			*o++ = *v;
	*o = '\0';
	/* trim */
	o = out;
	while (*o == ' ' || *o == '\t')
		o++;
	memmove(out, o, strlen(o) + 1);
	n = strlen(out);
	while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '\t'))
		out[--n] = '\0';
	return out;
}

/* See va_int.h. */
const struct va_mail_hdr *
va_mail_find(const struct va_mail *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->nh; i++)
		if (strcasecmp(m->h[i].name, name) == 0)
			return &m->h[i];
	return NULL;
}

/* See va_int.h. */
size_t
va_mail_count(const struct va_mail *m, const char *name)
{
	size_t i, n = 0;

	for (i = 0; i < m->nh; i++)
		if (strcasecmp(m->h[i].name, name) == 0)
			n++;
	return n;
}

/* ------------------------------------------------------------------ */
/* Canonicalization (RFC 6376 §3.4)                                     */
/* ------------------------------------------------------------------ */

/* §3.4.2 relaxed header: "name:value\r\n" appended to the buffer. */
static void
canon_header_relaxed(
    const char *raw, int crlf, char **buf, size_t *len, size_t *cap)
{
	const char *colon = strchr(raw, ':'), *v;
	size_t i, n = (size_t)(colon - raw), start;
	int sp = 0;
	char c;

	/* the name in lower case, without the WSP before the colon */
	while (n > 0 && (raw[n - 1] == ' ' || raw[n - 1] == '\t'))
		n--;
	for (i = 0; i < n; i++) {
		c = (char)tolower((unsigned char)raw[i]);
		buf_add(buf, len, cap, &c, 1);
	}
	buf_add(buf, len, cap, ":", 1);
	start = *len;
	v = colon + 1;
	for (; *v; v++) {
		if (*v == '\r' || *v == '\n')
			continue; /* unfold */
		if (*v == ' ' || *v == '\t') {
			sp = 1;
			continue;
		}
		if (sp && *len > start)
			buf_add(buf, len, cap, " ", 1);
		sp = 0;
		buf_add(buf, len, cap, v, 1);
	}
	if (crlf)
		buf_add(buf, len, cap, "\r\n", 2);
}

/* One header field canonicalized into the buffer. */
static void
canon_header(const char *raw, int relaxed, int crlf, char **buf, size_t *len,
    size_t *cap)
{
	if (relaxed) {
		canon_header_relaxed(raw, crlf, buf, len, cap);
		return;
	}
	buf_add(buf, len, cap, raw, strlen(raw));
	if (crlf)
		buf_add(buf, len, cap, "\r\n", 2);
}

/* §3.4.3 / §3.4.4: the canonical body (malloc'd, *outlen bytes). */
static char *
canon_body(const struct va_mail *m, int relaxed, size_t *outlen)
{
	char *out = NULL;
	size_t len = 0, cap = 0, pos = 0, eol, k, keep;
	int sp;

	out = xstrdup("");
	cap = 1;
	while (pos < m->body_len) {
		const char *line = m->body + pos;
		const char *e = strstr(line, "\r\n");

		eol = e ? (size_t)(e - line) : m->body_len - pos;
		pos += eol + (e ? 2 : 0);
		if (!relaxed) {
			buf_add(&out, &len, &cap, line, eol);
		} else {
			sp = 0;
			for (k = 0; k < eol; k++) {
				if (line[k] == ' ' || line[k] == '\t') {
					sp = 1;
					continue;
				}
				if (sp)
					buf_add(&out, &len, &cap, " ", 1);
				sp = 0;
				buf_add(&out, &len, &cap, line + k, 1);
			}
		}
		buf_add(&out, &len, &cap, "\r\n", 2);
	}
	/* no empty lines at the end */
	keep = len;
	while (keep >= 4 && memcmp(out + keep - 4, "\r\n\r\n", 4) == 0)
		keep -= 2;
	if (keep == 2 && memcmp(out, "\r\n", 2) == 0)
		keep = 0;
	len = keep;
	out[len] = '\0';
	if (len == 0 && !relaxed) {
		/* §3.4.3: an empty body is one CRLF */
		free(out);
		out = xstrdup("\r\n");
		len = 2;
	}
	*outlen = len;
	return out;
}

/* ------------------------------------------------------------------ */
/* Base64 (standard alphabet, RFC 6376 uses it for bh= b= p=)          */
/* ------------------------------------------------------------------ */

static char *
b64_encode(const uint8_t *d, size_t n)
{
	char *out = xmalloc(4 * ((n + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)out, d, (int)n);
	return out;
}

/* See va_int.h. */
int
va_b64_decode(const char *s, uint8_t **out, size_t *outlen)
{
	size_t n = strlen(s), k = 0, pad = 0, i;
	char *clean = xmalloc(n + 1);
	int r;

	for (i = 0; i < n; i++)
		if (!isspace((unsigned char)s[i]))
			clean[k++] = s[i];
	clean[k] = '\0';
	if (k == 0 || k % 4 != 0) {
		free(clean);
		return -1;
	}
	if (clean[k - 1] == '=')
		pad++;
	if (clean[k - 2] == '=')
		pad++;
	*out = xmalloc(k / 4 * 3 + 1);
	r = EVP_DecodeBlock(*out, (unsigned char *)clean, (int)k);
	free(clean);
	if (r < 0 || (size_t)r < pad) {
		free(*out);
		*out = NULL;
		return -1;
	}
	*outlen = (size_t)r - pad;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Tag lists (§3.2)                                                    */
/* ------------------------------------------------------------------ */

/* The value of tag `name` in a tag-list (whitespace removed), malloc'd;
 * NULL when absent. */
static char *
tag_value(const char *list, const char *name)
{
	const char *p = list, *semi, *eq;
	size_t nl = strlen(name);

	while (p != NULL && *p) {
		const char *t = p, *te;

		semi = strchr(p, ';');
		while (*t == ' ' || *t == '\t' || *t == '\r' || *t == '\n')
			t++;
		eq = strchr(t, '=');
		if (eq == NULL || (semi != NULL && eq > semi))
			goto next;
		te = eq;
		while (te > t && isspace((unsigned char)te[-1]))
			te--;
		if ((size_t)(te - t) == nl && strncmp(t, name, nl) == 0) {
			const char *v = eq + 1,
				   *ve = semi ? semi : v + strlen(v);
			char *out = xmalloc((size_t)(ve - v) + 1), *o = out;
			for (; v < ve; v++)
				if (!isspace((unsigned char)*v))
					*o++ = *v;
			*o = '\0';
			return out;
		}
	next:
		p = semi ? semi + 1 : NULL;
	}
	return NULL;
}

/* raw (a DKIM-Signature field) with the b= tag's value removed (§3.7):
 * malloc'd. */
static char *
strip_b_value(const char *raw)
{
	const char *colon = strchr(raw, ':'), *p, *semi, *t, *eq;
	char *out = xstrdup(raw);
	size_t off;

	p = colon + 1;
	while (p && *p) {
		semi = strchr(p, ';');
		t = p;
		while (*t && isspace((unsigned char)*t))
			t++;
		if (*t == 'b') {
			eq = t + 1;
			while (*eq && isspace((unsigned char)*eq))
				eq++;
			if (*eq == '=') {
				const char *ve = semi ? semi : eq + strlen(eq);
				off = (size_t)(eq + 1 - raw);
				memmove(out + off, out + (ve - raw),
				    strlen(raw) - (size_t)(ve - raw) + 1);
				return out;
			}
		}
		p = semi ? semi + 1 : NULL;
	}
	return out;
}

/* ------------------------------------------------------------------ */
/* Signatures                                                          */
/* ------------------------------------------------------------------ */

/* See va_int.h. */
void
va_dkim_sig_clear(struct va_dkim_sig *s)
{
	if (s == NULL)
		return;
	free(s->v);
	free(s->a);
	free(s->c);
	free(s->d);
	free(s->s);
	free(s->h);
	free(s->bh);
	free(s->b);
	free(s->l);
	free(s->x);
	memset(s, 0, sizeof(*s));
}

/* See va_int.h. */
int
va_dkim_sig_parse(const struct va_mail_hdr *h, struct va_dkim_sig *s, char *err,
    size_t errlen)
{
	const char *list = strchr(h->raw, ':') + 1;
	char *slash;

	memset(s, 0, sizeof(*s));
	s->hdr = h;
	s->v = tag_value(list, "v");
	s->a = tag_value(list, "a");
	s->c = tag_value(list, "c");
	s->d = tag_value(list, "d");
	s->s = tag_value(list, "s");
	s->h = tag_value(list, "h");
	s->bh = tag_value(list, "bh");
	s->b = tag_value(list, "b");
	s->l = tag_value(list, "l");
	s->x = tag_value(list, "x");
	if (s->v == NULL || strcmp(s->v, "1") != 0 || s->a == NULL ||
	    s->d == NULL || s->s == NULL || s->h == NULL || s->bh == NULL ||
	    s->b == NULL) {
		snprintf(err, errlen,
		    "DKIM-Signature lacks one of v=1, a=, d=, s=, h=, bh=, b= "
		    "(RFC 6376 §3.5)");
		return -1;
	}
	if (strcmp(s->a, "rsa-sha256") != 0) {
		snprintf(err, errlen,
		    "DKIM signature algorithm %.32s is not supported "
		    "(rsa-sha256 only)",
		    s->a);
		return -1;
	}
	if (s->l != NULL) {
		/* a body length limit lets anyone append text unsigned */
		snprintf(err, errlen,
		    "DKIM signatures with a body length limit (l=) are not "
		    "accepted");
		return -1;
	}
	s->relaxed_hdr = s->relaxed_body = 0;
	if (s->c != NULL) {
		slash = strchr(s->c, '/');
		if (slash != NULL)
			*slash = '\0';
		if (strcmp(s->c, "relaxed") == 0)
			s->relaxed_hdr = 1;
		else if (strcmp(s->c, "simple") != 0)
			goto badc;
		if (slash != NULL) {
			if (strcmp(slash + 1, "relaxed") == 0)
				s->relaxed_body = 1;
			else if (strcmp(slash + 1, "simple") != 0)
				goto badc;
			*slash = '/';
		}
	}
	return 0;
badc:
	snprintf(err, errlen, "DKIM c= is not simple or relaxed");
	return -1;
}

/* See va_int.h. */
int
va_dkim_signs_header(const struct va_dkim_sig *s, const char *name)
{
	const char *p = s->h;
	size_t n = strlen(name);

	while (p != NULL && *p) {
		const char *e = strchr(p, ':');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == n && strncasecmp(p, name, n) == 0)
			return 1;
		p = e ? e + 1 : NULL;
	}
	return 0;
}

/* See va_int.h. */
int
va_dkim_body_hash_ok(const struct va_mail *m, const struct va_dkim_sig *s)
{
	uint8_t d[32];
	size_t len;
	char *body = canon_body(m, s->relaxed_body, &len), *b64;
	int ok;

	sha256((const uint8_t *)body, len, d);
	b64 = b64_encode(d, sizeof(d));
	ok = strcmp(b64, s->bh) == 0;
	free(b64);
	free(body);
	return ok;
}

/*
 * The data signed (§3.7): the h= fields (each name's instances taken from
 * the bottom up), then sig_raw (the DKIM-Signature field with b= empty)
 * without its CRLF. Malloc'd, *len bytes.
 */
static char *
signed_data(const struct va_mail *m, const char *hlist, int relaxed,
    const char *sig_raw, size_t *len)
{
	char *out = xstrdup(""), *names = xstrdup(hlist), *save = NULL, *nm;
	size_t cap = 1, i;
	int *used = xcalloc(m->nh + 1, sizeof(int));

	*len = 0;
	for (nm = strtok_r(names, ":", &save); nm != NULL;
	     nm = strtok_r(NULL, ":", &save)) {
		for (i = m->nh; i-- > 0;) {
			if (!used[i] && strcasecmp(m->h[i].name, nm) == 0) {
				used[i] = 1;
				canon_header(
				    m->h[i].raw, relaxed, 1, &out, len, &cap);
				break;
			}
		}
	}
	canon_header(sig_raw, relaxed, 0, &out, len, &cap);
	free(used);
	free(names);
	return out;
}

/* See va_int.h. */
int
va_dkim_verify(const struct va_mail *m, const struct va_dkim_sig *s,
    EVP_PKEY *key, char *err, size_t errlen)
{
	char *stripped = strip_b_value(s->hdr->raw), *data;
	uint8_t *sig = NULL;
	size_t siglen = 0, len = 0;
	EVP_MD_CTX *ctx = NULL;
	int ok = 0;

	data = signed_data(m, s->h, s->relaxed_hdr, stripped, &len);
	if (va_b64_decode(s->b, &sig, &siglen) != 0) {
		snprintf(err, errlen, "DKIM b= is not base64");
		goto out;
	}
	ctx = EVP_MD_CTX_new();
	ok = ctx != NULL &&
	    EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
	    EVP_DigestVerify(ctx, sig, siglen, (const uint8_t *)data, len) == 1;
	if (!ok)
		snprintf(err, errlen,
		    "the DKIM signature of d=%.100s does not verify with the "
		    "key of %.60s._domainkey.%.100s",
		    s->d, s->s, s->d);
out:
	EVP_MD_CTX_free(ctx);
	free(sig);
	free(data);
	free(stripped);
	return ok ? 0 : -1;
}

/* See va_int.h. */
EVP_PKEY *
va_dkim_key_from_txt(const char *txt, char *err, size_t errlen)
{
	char *v = tag_value(txt, "v"), *k = tag_value(txt, "k");
	char *p = tag_value(txt, "p");
	const uint8_t *q;
	uint8_t *der = NULL;
	size_t derlen = 0;
	EVP_PKEY *key = NULL;

	if (v != NULL && strcmp(v, "DKIM1") != 0) {
		snprintf(err, errlen, "DKIM key record has v=%.16s", v);
		goto out;
	}
	if (k != NULL && strcmp(k, "rsa") != 0) {
		snprintf(err, errlen, "DKIM key type k=%.16s is not rsa", k);
		goto out;
	}
	if (p == NULL || p[0] == '\0') {
		/* §3.6.1: an empty p= is a revoked key */
		snprintf(err, errlen,
		    "DKIM key record has no (or a revoked) "
		    "p= key");
		goto out;
	}
	if (va_b64_decode(p, &der, &derlen) != 0) {
		snprintf(err, errlen, "DKIM key p= is not base64");
		goto out;
	}
	q = der;
	key = d2i_PUBKEY(NULL, &q, (long)derlen);
	if (key == NULL || EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
		EVP_PKEY_free(key);
		key = NULL;
		snprintf(err, errlen, "DKIM key p= is not an RSA public key");
	}
out:
	free(der);
	free(v);
	free(k);
	free(p);
	return key;
}

/* See va_int.h. */
char *
va_dkim_sign(const struct va_mail *m, EVP_PKEY *key, const char *domain,
    const char *selector, const char *hlist, int64_t now)
{
	uint8_t d[32], *sig = NULL;
	size_t blen, len = 0, siglen = 0;
	char *body = canon_body(m, 1, &blen), *bh, *hdr, *data, *b = NULL;
	char *out = NULL;
	EVP_MD_CTX *ctx = NULL;

	sha256((const uint8_t *)body, blen, d);
	bh = b64_encode(d, sizeof(d));
	hdr = xasprintf("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; "
			"d=%s; s=%s; t=%lld; h=%s; bh=%s; b=",
	    domain, selector, (long long)now, hlist, bh);
	data = signed_data(m, hlist, 1, hdr, &len);
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL ||
	    EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(ctx, NULL, &siglen, (const uint8_t *)data, len) != 1)
		goto out;
	sig = xmalloc(siglen);
	if (EVP_DigestSign(ctx, sig, &siglen, (const uint8_t *)data, len) != 1)
		goto out;
	b = b64_encode(sig, siglen);
	out = xasprintf("%s%s", hdr, b);
out:
	EVP_MD_CTX_free(ctx);
	free(sig);
	free(b);
	free(data);
	free(hdr);
	free(bh);
	free(body);
	return out;
}
