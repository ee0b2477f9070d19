/*
 * challenge.c - the challenge types: one row each, shared by the RA (which
 * types a new authorization offers) and the VA (which requests it
 * accepts). RFC 8555 §8.3 (http-01), §8.4 (dns-01), RFC 8737 (tls-alpn-01),
 * RFC 8738 §7 (IP identifiers: http-01 and tls-alpn-01 only), RFC 8555
 * §7.1.3 (a wildcard authorization: dns-01 only),
 * draft-ietf-acme-dns-account-label (dns-account-01), RFC 9799
 * (onion-csr-01; no other type for .onion names).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/core.h"

static const struct chal_info chal_table[CHAL__MAX] = {
    [CHAL_HTTP01] = {CHAL_HTTP01, "http-01", "RFC 8555 §8.3",
	CHAL_IDENT(IDENT_DNS) | CHAL_IDENT(IDENT_IP), 0, 0, 1},
    [CHAL_DNS01] = {CHAL_DNS01, "dns-01", "RFC 8555 §8.4",
	CHAL_IDENT(IDENT_DNS), 1, 0, 1},
    [CHAL_TLSALPN01] = {CHAL_TLSALPN01, "tls-alpn-01", "RFC 8737",
	CHAL_IDENT(IDENT_DNS) | CHAL_IDENT(IDENT_IP), 0, 0, 1},
    /* §3: wildcards as for dns-01; the label comes from the account URL */
    [CHAL_DNSACCOUNT01] = {CHAL_DNSACCOUNT01, "dns-account-01",
	"draft-ietf-acme-dns-account-label", CHAL_IDENT(IDENT_DNS), 1, 1, 0},
    /* §5: a wildcard needs policy=wildcard in the record (the VA checks) */
    [CHAL_DNSPERSIST01] = {CHAL_DNSPERSIST01, "dns-persist-01",
	"draft-ietf-acme-dns-persist", CHAL_IDENT(IDENT_DNS), 1, 0, 0},
    /* RFC 9799 §3.2: .onion names only, wildcards too; on with the RA's
     * policy.onion */
    [CHAL_ONIONCSR01] = {CHAL_ONIONCSR01, "onion-csr-01", "RFC 9799 §3.2",
	CHAL_IDENT(IDENT_DNS), 1, 0, 0, 1},
    /* RFC 8823 §3: email identifiers only; offered wherever the policy
     * allows email identifiers at all. Claimed first: the VA sends an
     * email */
    [CHAL_EMAILREPLY00] = {CHAL_EMAILREPLY00, "email-reply-00", "RFC 8823 §3",
	CHAL_IDENT(IDENT_EMAIL), 0, 0, 1, .claim_first = 1},
    /* the only type for device identifiers; profiles must allow those */
    [CHAL_DEVICEATTEST01] = {CHAL_DEVICEATTEST01, "device-attest-01",
	"draft-ietf-acme-device-attest",
	CHAL_IDENT(IDENT_PERMANENT_ID) | CHAL_IDENT(IDENT_HARDWARE_MODULE), 0,
	0, 1, 0},
    /* RFC 9891 §4: Node IDs only; off unless policy.challenges names it */
    [CHAL_BPNODEID00] = {CHAL_BPNODEID00, "bp-nodeid-00", "RFC 9891 §4",
	CHAL_IDENT(IDENT_BUNDLE_EID), 0, 0, 0},
    /* draft-ietf-acme-rats §2.2: the attestation a remote-attestation
     * identifier asks for; off unless policy.challenges lists it */
    [CHAL_REMOTEATTEST01] = {CHAL_REMOTEATTEST01, "remote-attest-01",
	"draft-ietf-acme-rats", CHAL_IDENT(IDENT_REMOTE_ATTESTATION), 0, 0,
	0, 0},
    /* RFC 9447 §3 / RFC 9448 §4: the TNAuthList identifier's only type;
     * off unless policy.challenges names it (it needs Token Authority
     * roots in the VA's tkauth section). Claimed first: the RA spends the
     * Authority Token */
    [CHAL_TKAUTH01] = {CHAL_TKAUTH01, "tkauth-01", "RFC 9447 §3",
	CHAL_IDENT(IDENT_TNAUTHLIST), 0, 0, 0, 0, .claim_first = 1},
};

/* See core.h. */
const struct chal_info *
chal_info(enum chal_type t)
{
	return (unsigned)t < CHAL__MAX ? &chal_table[t] : NULL;
}

/* See core.h. */
const struct chal_info *
chal_lookup(const char *s)
{
	size_t i;

	for (i = 0; s != NULL && i < CHAL__MAX; i++)
		if (strcmp(s, chal_table[i].name) == 0)
			return &chal_table[i];
	return NULL;
}

/* See core.h. */
const char *
chal_name(enum chal_type t)
{
	return (unsigned)t < CHAL__MAX ? chal_table[t].name : "?";
}

/* See core.h. */
unsigned
chal_default_set(void)
{
	unsigned set = 0;
	size_t i;

	for (i = 0; i < CHAL__MAX; i++)
		if (chal_table[i].offer)
			set |= CHAL_BIT(i);
	return set;
}

/* See core.h. */
int
chal_check(const struct chal_info *c, enum ident_type ident, int wildcard,
    char *err, size_t errlen)
{
	char with[96] = "";
	size_t i;

	if (wildcard && !c->wildcard) {
		for (i = 0; i < CHAL__MAX; i++)
			if (chal_table[i].wildcard)
				snprintf(with + strlen(with),
				    sizeof(with) - strlen(with), "%s%s",
				    with[0] ? " or " : "", chal_table[i].name);
		snprintf(err, errlen,
		    "a wildcard authorization can only be validated with %s "
		    "(RFC 8555 §7.1.3)",
		    with);
		return -1;
	}
	if ((unsigned)ident >= IDENT__MAX ||
	    (c->idents & CHAL_IDENT(ident)) == 0) {
		if (ident == IDENT_IP)
			snprintf(err, errlen,
			    "%s cannot validate an IP address identifier "
			    "(RFC 8738)",
			    c->name);
		else
			snprintf(err, errlen,
			    "%s cannot validate an identifier of type %s (%s)",
			    c->name, ident_type_name(ident), c->spec);
		return -1;
	}
	return 0;
}

/* See core.h. */
int
chal_check_onion(const struct chal_info *c, int onion, char *err, size_t errlen)
{
	if (onion && !c->onion) {
		/* §3.1.1: "The existing "dns-01" challenge MUST NOT be used
		 * to validate ".onion" Special-Use Domain Names"; http-01 and
		 * tls-alpn-01 need a connection over Tor, which this CA does
		 * not make (§3.1.2, §8.8). */
		snprintf(err, errlen,
		    "%s cannot validate a .onion name (RFC 9799 §3: use "
		    "onion-csr-01)",
		    c->name);
		return -1;
	}
	if (!onion && c->onion) {
		/* §3.2: "An "onion-csr-01" MUST NOT be used to issue
		 * certificates for non ".onion" Special-Use Domain Names." */
		snprintf(err, errlen,
		    "%s can only validate a .onion name (%s)", c->name,
		    c->spec);
		return -1;
	}
	return 0;
}

/* See core.h. */
char *
chal_onion_nonce(const char *token)
{
	uint8_t *raw = NULL;
	size_t n = 0;
	char *out = NULL;

	if (token == NULL || b64url_decode(token, strlen(token), &raw, &n) != 0)
		return NULL;
	out = xmalloc(4 * ((n + 2) / 3) + 1);
	(void)EVP_EncodeBlock((unsigned char *)out, raw, (int)n);
	free(raw);
	return out;
}

/* See core.h. */
char *
chal_bp_id_chal(const char *token)
{
	static const char label[] = "ACME bp-nodeid-00 id-chal:";
	uint8_t md[32];
	size_t n = token != NULL ? strlen(token) : 0;
	uint8_t *buf = xmalloc(sizeof(label) + n);
	char *out;

	memcpy(buf, label, sizeof(label) - 1);
	if (n > 0)
		memcpy(buf + sizeof(label) - 1, token, n);
	sha256(buf, sizeof(label) - 1 + n, md);
	free(buf);
	out = b64url_encode(md, 16);
	return out;
}
