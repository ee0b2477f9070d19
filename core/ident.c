/* ident.c - ACME identifier validation and normalisation. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/core.h"

static const char *const ident_names[IDENT__MAX] = {
    [IDENT_DNS] = "dns",
    [IDENT_IP] = "ip",
    [IDENT_EMAIL] = "email",
    [IDENT_PERMANENT_ID] = "permanent-identifier",
    [IDENT_HARDWARE_MODULE] = "hardware-module",
    [IDENT_BUNDLE_EID] = "bundleEID",
    [IDENT_REMOTE_ATTESTATION] = "remote-attestation",
    [IDENT_TNAUTHLIST] = "TNAuthList",
};

const char *
ident_type_name(enum ident_type t)
{
	return ((int)t >= 0 && t < IDENT__MAX) ? ident_names[t] : "unknown";
}

int
ident_type_parse(const char *s, enum ident_type *out)
{
	int i;

	for (i = 0; i < IDENT__MAX; i++) {
		if (s != NULL && strcmp(s, ident_names[i]) == 0) {
			*out = (enum ident_type)i;
			return 0;
		}
	}
	return -1;
}

/*
 * RFC 8555 §7.1.4: "Servers MUST verify any identifier values that begin
 * with the ASCII-Compatible Encoding prefix "xn--" as defined in RFC5890
 * are properly encoded." The label after "xn--" (s, n chars, lower case)
 * must decode as Punycode (RFC 3492 §6.2) to at most 63 code points, at
 * least one of them non-ASCII, none a surrogate or beyond U+10FFFF.
 * IDNA2008's per-code-point rules are not checked. 1 if so, else 0.
 */
static int
punycode_ok(const char *s, size_t n)
{
	enum { BASE = 36, TMIN = 1, TMAX = 26, SKEW = 38, DAMP = 700 };
	uint32_t out[64], code = 128, i = 0, bias = 72, w, k, t, digit, oldi;
	uint32_t delta, len = 0, nonascii = 0;
	size_t b = 0, in, j;
	int first = 1;

	for (j = 0; j < n; j++)
		if (s[j] == '-')
			b = j;
	if (n == 0)
		return 0;
	/* basic code points before the last delimiter (if any) */
	if (b > 0 || (n > 0 && s[0] == '-')) {
		if (b >= sizeof(out) / sizeof(out[0]))
			return 0;
		for (j = 0; j < b; j++)
			out[len++] = (uint8_t)s[j];
		in = b + 1;
	} else {
		in = 0;
	}
	if (in >= n)
		return 0; /* nothing encoded: not an A-label */
	while (in < n) {
		oldi = i;
		w = 1;
		for (k = BASE;; k += BASE) {
			char c;

			if (in >= n)
				return 0;
			c = s[in++];
			if (c >= 'a' && c <= 'z')
				digit = (uint32_t)(c - 'a');
			else if (c >= '0' && c <= '9')
				digit = (uint32_t)(c - '0' + 26);
			else
				return 0;
			if (digit > (UINT32_MAX - i) / w)
				return 0;
			i += digit * w;
			t = k <= bias ? TMIN : k >= bias + TMAX ? TMAX : k - bias;
			if (digit < t)
				break;
			if (w > UINT32_MAX / (BASE - t))
				return 0;
			w *= BASE - t;
		}
		/* adapt the bias (RFC 3492 §6.1) */
		delta = i - oldi;
		delta = first ? delta / DAMP : delta / 2;
		first = 0;
		delta += delta / (len + 1);
		for (k = 0; delta > ((BASE - TMIN) * TMAX) / 2; k += BASE)
			delta /= BASE - TMIN;
		bias = k + (BASE - TMIN + 1) * delta / (delta + SKEW);
		if (i / (len + 1) > 0x10FFFF - code)
			return 0;
		code += i / (len + 1);
		i %= len + 1;
		if (code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF) ||
		    code < 0x80 || len >= 63)
			return 0;
		memmove(out + i + 1, out + i, (len - i) * sizeof(out[0]));
		out[i++] = code;
		len++;
		nonascii++;
	}
	return nonascii > 0;
}

char *
ident_dns_normalize(
    const char *name, int allow_wildcard, char *err, size_t errlen)
{
	size_t len, i, label_start, label_len;
	char *n = NULL;
	int all_digits_label = 1;
	const char *base;

	if (name == NULL || *name == '\0') {
		snprintf(err, errlen, "empty DNS name");
		return NULL;
	}
	len = strlen(name);
	if (len > 253) {
		snprintf(err, errlen, "DNS name longer than 253 characters");
		return NULL;
	}
	n = xstrdup(name);
	for (i = 0; i < len; i++)
		n[i] = (char)tolower((unsigned char)n[i]);
	base = n;
	if (strncmp(n, "*.", 2) == 0) {
		if (!allow_wildcard) {
			snprintf(err, errlen, "wildcard not allowed here");
			goto bad;
		}
		base = n + 2;
	}
	if (strchr(base, '*') != NULL) {
		snprintf(err, errlen,
		    "wildcard '*' allowed only as the whole leftmost label");
		goto bad;
	}
	if (base[0] == '\0') {
		snprintf(err, errlen, "empty DNS name");
		goto bad;
	}
	if (base[strlen(base) - 1] == '.') {
		snprintf(err, errlen, "DNS name ends in a dot");
		goto bad;
	}
	label_start = 0;
	len = strlen(base);
	for (i = 0; i <= len; i++) {
		char c = base[i];

		if (c == '.' || c == '\0') {
			label_len = i - label_start;
			if (label_len == 0) {
				snprintf(err, errlen,
				    "DNS name has an empty "
				    "label");
				goto bad;
			}
			if (label_len > 63) {
				snprintf(err, errlen,
				    "DNS label longer than "
				    "63 characters");
				goto bad;
			}
			if (base[label_start] == '-' || base[i - 1] == '-') {
				snprintf(err, errlen,
				    "DNS label starts or "
				    "ends with a hyphen");
				goto bad;
			}
			if (label_len > 4 &&
			    strncmp(base + label_start, "xn--", 4) == 0 &&
			    !punycode_ok(base + label_start + 4,
				label_len - 4)) {
				snprintf(err, errlen,
				    "DNS label %.*s is not a valid "
				    "Punycode A-label (RFC 3492)",
				    (int)label_len, base + label_start);
				goto bad;
			}
			if (c == '\0')
				break;
			label_start = i + 1;
			all_digits_label = 1;
			continue;
		}
		if (!(isalnum((unsigned char)c) || c == '-')) {
			snprintf(err, errlen,
			    "DNS name contains an invalid "
			    "character (only letters, digits, '-' and '.')");
			goto bad;
		}
		if (!isdigit((unsigned char)c))
			all_digits_label = 0;
	}
	if (all_digits_label) {
		snprintf(err, errlen,
		    "DNS name has an all-numeric top-level "
		    "label (use an IP identifier for addresses)");
		goto bad;
	}
	return n;
bad:
	free(n);
	return NULL;
}

char *
ident_ip_normalize(
    const char *ip, uint8_t raw[16], size_t *rawlen, char *err, size_t errlen)
{
	uint8_t buf[16];
	char text[INET6_ADDRSTRLEN];

	if (ip == NULL || *ip == '\0' || strlen(ip) >= INET6_ADDRSTRLEN) {
		snprintf(err, errlen, "invalid IP address");
		return NULL;
	}
	if (inet_pton(AF_INET, ip, buf) == 1) {
		if (inet_ntop(AF_INET, buf, text, sizeof(text)) == NULL)
			goto bad;
		if (raw != NULL)
			memcpy(raw, buf, 4);
		if (rawlen != NULL)
			*rawlen = 4;
		return xstrdup(text);
	}
	if (strchr(ip, '%') == NULL && inet_pton(AF_INET6, ip, buf) == 1) {
		if (inet_ntop(AF_INET6, buf, text, sizeof(text)) == NULL)
			goto bad;
		if (raw != NULL)
			memcpy(raw, buf, 16);
		if (rawlen != NULL)
			*rawlen = 16;
		return xstrdup(text);
	}
bad:
	snprintf(err, errlen, "\"%.64s\" is not an IPv4 or IPv6 address", ip);
	return NULL;
}

char *
ident_ip_reverse_name(const uint8_t *raw, size_t rawlen)
{
	static const char digits[] = "0123456789abcdef";
	char buf[128];
	size_t o = 0;
	int i;

	if (rawlen == 4) {
		snprintf(buf, sizeof(buf), "%u.%u.%u.%u.in-addr.arpa", raw[3],
		    raw[2], raw[1], raw[0]);
		return xstrdup(buf);
	}
	for (i = 15; i >= 0; i--) {
		buf[o++] = digits[raw[i] & 15];
		buf[o++] = '.';
		buf[o++] = digits[raw[i] >> 4];
		buf[o++] = '.';
	}
	memcpy(buf + o, "ip6.arpa", 9);
	return xstrdup(buf);
}

/* See core.h. */
int
ident_onion_name(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	return (n == 5 && strcmp(name, "onion") == 0) ||
	    (n > 6 && strcmp(name + n - 6, ".onion") == 0);
}

/* SHA3-256(".onion checksum" || pubkey || version)[:2] into sum. */
static int
onion_checksum(const uint8_t pubkey[32], uint8_t version, uint8_t sum[2])
{
	static const char pfx[] = ".onion checksum";
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t d[EVP_MAX_MD_SIZE];
	unsigned dl = 0;
	int ok;

	ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha3_256(), NULL) == 1 &&
	    EVP_DigestUpdate(ctx, pfx, sizeof(pfx) - 1) == 1 &&
	    EVP_DigestUpdate(ctx, pubkey, 32) == 1 &&
	    EVP_DigestUpdate(ctx, &version, 1) == 1 &&
	    EVP_DigestFinal_ex(ctx, d, &dl) == 1 && dl >= 2;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return -1;
	memcpy(sum, d, 2);
	return 0;
}

/* See core.h. */
int
ident_onion_parse(const char *name, uint8_t pubkey[32], const char **base,
    char *err, size_t errlen)
{
	char label[57];
	uint8_t raw[35], sum[2];
	const char *end, *start;
	size_t n, len;

	if (!ident_onion_name(name) || strlen(name) == 5) {
		snprintf(err, errlen, "not a name under .onion");
		return -1;
	}
	end = name + strlen(name) - 6; /* the dot before "onion" */
	start = end;
	while (start > name && start[-1] != '.')
		start--;
	len = (size_t)(end - start);
	if (len == 16) {
		snprintf(err, errlen,
		    "%.16s.onion is a version 2 onion address; RFC 9799 §2: "
		    "\"Version 2 addresses MUST NOT be used\"",
		    start);
		return -1;
	}
	if (len != 56) {
		snprintf(err, errlen,
		    "the label before .onion must be a version 3 onion "
		    "address of 56 base32 characters (it has %zu)",
		    len);
		return -1;
	}
	memcpy(label, start, 56);
	label[56] = '\0';
	if (base32_decode(label, raw, sizeof(raw), &n) != 0 || n != 35) {
		snprintf(err, errlen,
		    "%s.onion is not base32 (RFC 4648, letters a-z and 2-7)",
		    label);
		return -1;
	}
	if (raw[34] != 3) {
		snprintf(err, errlen,
		    "%s.onion has version byte %u; only version 3 onion "
		    "addresses are accepted (RFC 9799 §2)",
		    label, raw[34]);
		return -1;
	}
	if (onion_checksum(raw, 3, sum) != 0) {
		snprintf(err, errlen, "SHA3-256 is unavailable");
		return -1;
	}
	if (memcmp(sum, raw + 32, 2) != 0) {
		snprintf(err, errlen,
		    "%s.onion has a wrong checksum (tor-spec rend-spec-v3 "
		    "§6: SHA3-256(\".onion checksum\" || pubkey || version))",
		    label);
		return -1;
	}
	if (pubkey != NULL)
		memcpy(pubkey, raw, 32);
	if (base != NULL)
		*base = start;
	return 0;
}

/* RFC 5322 §3.2.3 atext, ASCII. */
static int
is_atext(int c)
{
	return isalnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* See core.h. */
char *
ident_email_normalize(const char *addr, char *err, size_t errlen)
{
	const char *at;
	char *dom = NULL, *out;
	size_t i, llen;

	if (addr == NULL || *addr == '\0') {
		snprintf(err, errlen, "empty email address");
		return NULL;
	}
	at = strrchr(addr, '@');
	if (at == NULL || at == addr) {
		snprintf(err, errlen,
		    "an email identifier is local-part@domain (RFC 5322 "
		    "§3.4.1 addr-spec)");
		return NULL;
	}
	llen = (size_t)(at - addr);
	/* RFC 5321 §4.5.3.1.1: a local part of at most 64 octets */
	if (llen > 64) {
		snprintf(err, errlen, "local part longer than 64 characters");
		return NULL;
	}
	/* dot-atom-text (RFC 5322 §3.2.3): atext runs separated by dots */
	for (i = 0; i < llen; i++) {
		int c = (unsigned char)addr[i];
		if (c == '.') {
			if (i == 0 || i + 1 == llen || addr[i + 1] == '.') {
				snprintf(err, errlen,
				    "local part has a leading, trailing or "
				    "doubled dot");
				return NULL;
			}
		} else if (!is_atext(c)) {
			snprintf(err, errlen,
			    "local part may only hold RFC 5322 atext "
			    "characters and dots (no quoted strings, no "
			    "non-ASCII)");
			return NULL;
		}
	}
	if (at[1] == '[') {
		snprintf(err, errlen, "address literals are not supported");
		return NULL;
	}
	dom = ident_dns_normalize(at + 1, 0, err, errlen);
	if (dom == NULL)
		return NULL;
	out = xasprintf("%.*s@%s", (int)llen, addr, dom);
	free(dom);
	return out;
}

/* See core.h. */
int
ident_is_device(enum ident_type t)
{
	return t == IDENT_PERMANENT_ID || t == IDENT_HARDWARE_MODULE;
}

/*
 * n bytes at s are well-formed UTF-8 (RFC 3629: shortest form, no
 * surrogates, at most U+10FFFF). 1 or 0.
 */
static int
utf8_ok(const unsigned char *s, size_t n)
{
	size_t i = 0, k, len;
	uint32_t cp, min;

	while (i < n) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if ((s[i] & 0xE0) == 0xC0) {
			len = 2, cp = s[i] & 0x1F, min = 0x80;
		} else if ((s[i] & 0xF0) == 0xE0) {
			len = 3, cp = s[i] & 0x0F, min = 0x800;
		} else if ((s[i] & 0xF8) == 0xF0) {
			len = 4, cp = s[i] & 0x07, min = 0x10000;
		} else {
			return 0;
		}
		if (len > n - i)
			return 0;
		for (k = 1; k < len; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		i += len;
	}
	return 1;
}

/*
 * The draft's dotted-decimal OID (assigner-value / hw-type-value):
 *   first-and-second-components = (("0" / "1") "." (*1(%x31-33) %x30-39))
 *                                 / ("2" "." component)
 *   component = "0" / (%x31-39 *%x30-39)
 * then *("." component). 1 if s is one, else 0.
 */
/* One OID component ("0" or no leading zero, at most 20 digits) at
 * *pp, advancing it. 1 or 0. */
static int
oid_component(const char **pp)
{
	size_t n = strspn(*pp, "0123456789");

	if (n == 0 || n > 20 || (n > 1 && (*pp)[0] == '0'))
		return 0;
	*pp += n;
	return 1;
}

static int
oid_text_ok(const char *s)
{
	const char *p = s;

	if ((p[0] == '0' || p[0] == '1') && p[1] == '.') {
		p += 2;
		/* 0..39: [1-3] then a digit, or one digit */
		if (p[0] >= '1' && p[0] <= '3' && isdigit((unsigned char)p[1]))
			p += 2;
		else if (isdigit((unsigned char)p[0]))
			p += 1;
		else
			return 0;
	} else if (p[0] == '2' && p[1] == '.') {
		p += 2;
		if (!oid_component(&p))
			return 0;
	} else {
		return 0;
	}
	while (*p == '.') {
		p++;
		if (!oid_component(&p))
			return 0;
	}
	return *p == '\0';
}

/* See core.h. */
int
ident_device_check(
    enum ident_type t, const char *value, char *err, size_t errlen)
{
	const char *slash;
	size_t n;

	if (!ident_is_device(t) || value == NULL || value[0] == '\0') {
		snprintf(err, errlen, "empty or not a device identifier");
		return -1;
	}
	n = strlen(value);
	if (!utf8_ok((const unsigned char *)value, n)) {
		snprintf(err, errlen, "value is not valid UTF-8");
		return -1;
	}
	slash = strchr(value, '/');
	if (slash == value) {
		snprintf(err, errlen,
		    "the %s part before \"/\" is empty",
		    t == IDENT_PERMANENT_ID ? "device identifier"
					    : "serial number");
		return -1;
	}
	if (slash == NULL) {
		if (t == IDENT_HARDWARE_MODULE) {
			snprintf(err, errlen,
			    "hardware-module-value is hw-serial-num-value "
			    "\"/\" hw-type-value (an OID is required)");
			return -1;
		}
		return 0;
	}
	if (!oid_text_ok(slash + 1)) {
		snprintf(err, errlen,
		    "\"%.64s\" after \"/\" is not a dotted-decimal object "
		    "identifier (%s)",
		    slash + 1,
		    t == IDENT_PERMANENT_ID ? "assigner-value" : "hw-type-value");
		return -1;
	}
	return 0;
}
