/*
 * ident_bundle.c - RFC 9891 §3 "bundleEID" identifiers: a DTN Node ID as
 * a URI of the "dtn" or "ipn" scheme (RFC 9171 §4.2.5.1). RFC 9891 §3:
 * "Any "bundleEID" value which fails to properly percent-decode SHALL be
 * rejected with an ACME error type of "malformed"", "An ACME server
 * supporting identifiers of type "bundleEID" SHALL decode and normalize
 * (based on scheme-specific syntax) all such received identifiers", and
 * "Any "bundleEID" value which uses a scheme not handled by the ACME
 * server SHALL be rejected with an ACME error type of
 * "rejectedIdentifier"".
 *
 * Only Node IDs are accepted (RFC 9891 §3.1: the certificate profile
 * "requires that the value hold a Node ID"; RFC 9171 §4.2.5.2: the node
 * ID is the EID of the administrative endpoint): "dtn://node-name/" (empty
 * demux) and "ipn:N.0".
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/core.h"

/* RFC 3986 §2.3 unreserved. */
static int
unreserved(int c)
{
	return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* RFC 3986 §2.2 sub-delims. */
static int
sub_delim(int c)
{
	return c != '\0' && strchr("!$&'()*+,;=", c) != NULL;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * RFC 3986 §6.2.2.1-2 on s (borrowed, after the scheme): every "%" must
 * start a valid %XX; unreserved characters are decoded, the others keep
 * uppercase hex. Malloc'd result or NULL with err.
 */
static char *
pct_normalize(const char *s, char *err, size_t errlen)
{
	size_t i, o = 0, n = strlen(s);
	char *out = xmalloc(n + 1);
	int hi, lo, c;

	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if (c <= 0x20 || c >= 0x7f) {
			snprintf(err, errlen,
			    "character 0x%02x is not allowed in a URI", c);
			free(out);
			return NULL;
		}
		if (c != '%') {
			out[o++] = (char)c;
			continue;
		}
		if (i + 2 >= n || (hi = hexval((unsigned char)s[i + 1])) < 0 ||
		    (lo = hexval((unsigned char)s[i + 2])) < 0) {
			snprintf(err, errlen,
			    "\"%%\" at offset %zu does not start a "
			    "percent-encoded octet (RFC 3986 §2.1)",
			    i);
			free(out);
			return NULL;
		}
		c = hi * 16 + lo;
		if (unreserved(c)) {
			out[o++] = (char)c;
		} else {
			o += (size_t)snprintf(out + o, 4, "%%%02X", c);
		}
		i += 2;
	}
	out[o] = '\0';
	return out;
}

/* "dtn:" part (normalised, borrowed). 0 / -1 / -2 as the public function. */
static int
dtn_node_id(const char *ssp, char *err, size_t errlen)
{
	const char *p, *slash;

	if (strcmp(ssp, "none") == 0) {
		snprintf(err, errlen,
		    "dtn:none is the null endpoint, not a Node ID (RFC 9171 "
		    "§4.2.5.1.1)");
		return -2;
	}
	if (strncmp(ssp, "//", 2) != 0 ||
	    (slash = strchr(ssp + 2, '/')) == NULL) {
		snprintf(err, errlen,
		    "a dtn URI is \"dtn:none\" or \"dtn://\" node-name \"/\" "
		    "demux (RFC 9171 §4.2.5.1.1)");
		return -1;
	}
	if (slash == ssp + 2) {
		snprintf(err, errlen, "the dtn node-name is empty");
		return -1;
	}
	/* node-name = reg-name (RFC 3986 §3.2.2) */
	for (p = ssp + 2; p < slash; p++)
		if (!unreserved((unsigned char)*p) &&
		    !sub_delim((unsigned char)*p) && *p != '%') {
			snprintf(err, errlen,
			    "character '%c' is not allowed in a dtn node-name "
			    "(RFC 3986 reg-name)",
			    *p);
			return -1;
		}
	if (slash[1] != '\0') {
		snprintf(err, errlen,
		    "\"%.80s\" is an endpoint of a node, not its Node ID: "
		    "the dtn administrative endpoint has an empty demux "
		    "(\"dtn://node-name/\", RFC 9171 §4.2.5.2)",
		    ssp);
		return -2;
	}
	return 0;
}

/* One ipn number (1*DIGIT, < 2^64) at *pp, advancing it. 0 or -1. */
static int
ipn_number(const char **pp, unsigned long long *v)
{
	char *end;
	size_t n = strspn(*pp, "0123456789");

	if (n == 0)
		return -1;
	errno = 0;
	*v = strtoull(*pp, &end, 10);
	if (errno == ERANGE || end != *pp + n)
		return -1;
	*pp += n;
	return 0;
}

/* "ipn:" part (normalised, borrowed): 0 with *node, else -1 / -2. */
static int
ipn_node_id(const char *ssp, unsigned long long *node, char *err, size_t errlen)
{
	unsigned long long svc;
	const char *p = ssp;

	int ok = ipn_number(&p, node) == 0 && *p == '.';

	if (ok) {
		p++;
		ok = ipn_number(&p, &svc) == 0;
	}
	if (!ok) {
		snprintf(err, errlen,
		    "an ipn URI is \"ipn:\" node-nbr \".\" service-nbr, "
		    "decimal numbers below 2^64 (RFC 9171 §4.2.5.1.2)");
		return -1;
	}
	if (*p == '.') {
		snprintf(err, errlen,
		    "three-element ipn URIs (allocator.node.service) are not "
		    "handled by this server");
		return -2;
	}
	if (*p != '\0') {
		snprintf(err, errlen,
		    "unexpected \"%.40s\" after the ipn service number", p);
		return -1;
	}
	if (*node == 0) {
		snprintf(err, errlen,
		    "ipn node number 0 is the null endpoint, not a Node ID");
		return -2;
	}
	if (svc != 0) {
		snprintf(err, errlen,
		    "\"ipn:%.60s\" is a service endpoint, not a Node ID: the "
		    "ipn administrative endpoint has service number 0 (RFC "
		    "9171 §4.2.5.2)",
		    ssp);
		return -2;
	}
	return 0;
}

/* See core.h. */
int
ident_bundle_eid_normalize(
    const char *value, char **out, char *err, size_t errlen)
{
	const char *colon;
	char scheme[16], *ssp = NULL;
	unsigned long long node = 0;
	size_t i, n;
	int rc;

	*out = NULL;
	if (value == NULL || value[0] == '\0' || strlen(value) > 255) {
		snprintf(err, errlen, "empty or longer than 255 characters");
		return -1;
	}
	colon = strchr(value, ':');
	n = colon != NULL ? (size_t)(colon - value) : 0;
	/* RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
	for (i = 0; i < n; i++)
		if (!isalpha((unsigned char)value[i]) &&
		    (i == 0 ||
			(!isdigit((unsigned char)value[i]) &&
			    strchr("+-.", value[i]) == NULL)))
			break;
	if (colon == NULL || n == 0 || i != n) {
		snprintf(err, errlen, "not a URI (no scheme)");
		return -1;
	}
	if (n >= sizeof(scheme) ||
	    (strncasecmp(value, "dtn", n) != 0 &&
		strncasecmp(value, "ipn", n) != 0) ||
	    n != 3) {
		snprintf(err, errlen,
		    "scheme \"%.*s\" is not handled (dtn and ipn, RFC 9171 "
		    "§4.2.5.1)",
		    (int)(n < 40 ? n : 40), value);
		return -2;
	}
	for (i = 0; i < n; i++)
		scheme[i] = (char)tolower((unsigned char)value[i]);
	scheme[n] = '\0';
	if ((ssp = pct_normalize(colon + 1, err, errlen)) == NULL)
		return -1;
	if (strcmp(scheme, "dtn") == 0) {
		rc = dtn_node_id(ssp, err, errlen);
		if (rc == 0)
			*out = xasprintf("dtn:%s", ssp);
	} else {
		rc = ipn_node_id(ssp, &node, err, errlen);
		if (rc == 0)
			*out = xasprintf("ipn:%llu.0", node);
	}
	free(ssp);
	return rc;
}

/* See core.h. */
char *
ident_bundle_eid_from_othername(
    const char *type_oid, const unsigned char *ia5, size_t n)
{
	char *text, *out = NULL, err[8];

	if (type_oid == NULL || strcmp(type_oid, IDENT_OID_BUNDLE_EID) != 0 ||
	    ia5 == NULL || n == 0 || n > 255 || memchr(ia5, '\0', n) != NULL)
		return NULL;
	text = xstrndup((const char *)ia5, n);
	if (ident_bundle_eid_normalize(text, &out, err, sizeof(err)) != 0)
		out = NULL;
	free(text);
	return out;
}
