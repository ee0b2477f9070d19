/*
 * tlsalpn.c - tls-alpn-01 (RFC 8737; IP identifiers RFC 8738 §6): a TLS
 * handshake with SNI and ALPN "acme-tls/1"; the self-signed certificate
 * must name exactly the identifier and carry a critical acmeIdentifier
 * extension holding SHA-256 of the key authorization.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <openssl/crypto.h>
#include <openssl/x509v3.h>

#include "va/va_int.h"

#define ALPN "acme-tls/1"
#define OID_ACME_IDENTIFIER "1.3.6.1.5.5.7.1.31"

static void alpn_connect(struct va_job *j);

void
va_tlsalpn01_start(struct va_job *j)
{
	json_t *hop = json_pack("{s:s,s:i,s:[]}", "hostname", j->ident, "port",
	    (int)j->va->cfg->tlsalpn01_port, "addresses_resolved");

	json_array_append_new(j->record, hop);
	j->hop = hop;
	va_job_resolve(j, j->ident, alpn_connect);
}

/*
 * The acmeIdentifier extension of cert (borrowed): present once, critical,
 * a DER OCTET STRING holding SHA-256 of the key authorization (RFC 8737
 * §3). NULL when it is right, else the problem (new).
 */
static struct problem *
check_acme_ext(struct va_job *j, X509 *cert, int port)
{
	const unsigned char *p;
	ASN1_OBJECT *oid = NULL;
	ASN1_OCTET_STRING *inner = NULL;
	const ASN1_OCTET_STRING *data;
	X509_EXTENSION *ext;
	struct problem *prob = NULL;
	uint8_t want[32];
	char *want_b64 = NULL, *got_b64 = NULL;
	int idx;

	oid = OBJ_txt2obj(OID_ACME_IDENTIFIER, 1);
	idx = oid ? X509_get_ext_by_OBJ(cert, oid, -1) : -1;
	if (idx < 0) {
		prob = problem_new(PROB_UNAUTHORIZED,
		    "Incorrect validation "
		    "certificate for tls-alpn-01 from %s:%d: no acmeIdentifier "
		    "extension (%s)",
		    j->dns_host, port, OID_ACME_IDENTIFIER);
		goto out;
	}
	ext = X509_get_ext(cert, idx);
	if (!X509_EXTENSION_get_critical(ext)) {
		prob = problem_new(PROB_UNAUTHORIZED,
		    "Incorrect validation "
		    "certificate for tls-alpn-01 from %s:%d: the "
		    "acmeIdentifier "
		    "extension must be marked critical",
		    j->dns_host, port);
		goto out;
	}
	if (X509_get_ext_by_OBJ(cert, oid, idx) >= 0) {
		prob = problem_new(PROB_UNAUTHORIZED,
		    "Incorrect validation "
		    "certificate for tls-alpn-01 from %s:%d: more than one "
		    "acmeIdentifier extension",
		    j->dns_host, port);
		goto out;
	}
	data = X509_EXTENSION_get_data(ext);
	p = ASN1_STRING_get0_data(data);
	inner = d2i_ASN1_OCTET_STRING(NULL, &p, ASN1_STRING_length(data));
	if (inner == NULL ||
	    p != ASN1_STRING_get0_data(data) + ASN1_STRING_length(data) ||
	    ASN1_STRING_length(inner) != 32) {
		prob = problem_new(PROB_UNAUTHORIZED,
		    "Incorrect validation "
		    "certificate for tls-alpn-01 from %s:%d: the "
		    "acmeIdentifier extension must hold a DER OCTET STRING of "
		    "32 bytes",
		    j->dns_host, port);
		goto out;
	}
	sha256((const uint8_t *)j->keyauth, strlen(j->keyauth), want);
	if (CRYPTO_memcmp(ASN1_STRING_get0_data(inner), want, 32) != 0) {
		want_b64 = b64url_encode(want, 32);
		got_b64 = b64url_encode(ASN1_STRING_get0_data(inner), 32);
		prob = problem_new(PROB_INCORRECT_RESPONSE,
		    "Incorrect "
		    "validation certificate for tls-alpn-01 from %s:%d: "
		    "acmeIdentifier holds %s (base64url), expected SHA-256 of "
		    "the key authorization = %s",
		    j->dns_host, port, got_b64, want_b64);
		goto out;
	}
out:
	free(want_b64);
	free(got_b64);
	ASN1_OCTET_STRING_free(inner);
	ASN1_OBJECT_free(oid);
	return prob;
}

/* Text list of the SANs for messages. */
static void
san_text(const GENERAL_NAMES *gens, char *out, size_t outlen)
{
	char addr[64];
	size_t o = 0;
	int i;

	out[0] = '\0';
	for (i = 0;
	     gens != NULL && i < sk_GENERAL_NAME_num(gens) && o + 4 < outlen;
	     i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const char *sep = i ? ", " : "";
		if (g->type == GEN_DNS)
			o += (size_t)snprintf(out + o, outlen - o, "%sDNS:%.*s",
			    sep, ASN1_STRING_length(g->d.dNSName),
			    (const char *)ASN1_STRING_get0_data(g->d.dNSName));
		else if (g->type == GEN_IPADD &&
		    (ASN1_STRING_length(g->d.iPAddress) == 4 ||
			ASN1_STRING_length(g->d.iPAddress) == 16))
			o += (size_t)snprintf(out + o, outlen - o, "%sIP:%s",
			    sep,
			    va_addr_str(ASN1_STRING_length(g->d.iPAddress) == 4
				    ? AF_INET
				    : AF_INET6,
				ASN1_STRING_get0_data(g->d.iPAddress), addr,
				sizeof(addr)));
		else
			o += (size_t)snprintf(out + o, outlen - o,
			    "%s(other name type %d)", sep, g->type);
		if (o >= outlen)
			o = outlen - 1;
	}
	if (o == 0)
		snprintf(out, outlen, "no subjectAltName");
}

static int
san_matches(struct va_job *j, const GENERAL_NAMES *gens)
{
	const GENERAL_NAME *g;
	int len;

	if (gens == NULL || sk_GENERAL_NAME_num(gens) != 1)
		return 0;
	g = sk_GENERAL_NAME_value(gens, 0);
	if (j->itype == IDENT_DNS) {
		if (g->type != GEN_DNS)
			return 0;
		len = ASN1_STRING_length(g->d.dNSName);
		return (size_t)len == strlen(j->ident) &&
		    strncasecmp(
			(const char *)ASN1_STRING_get0_data(g->d.dNSName),
			j->ident, (size_t)len) == 0;
	}
	if (g->type != GEN_IPADD)
		return 0;
	len = ASN1_STRING_length(g->d.iPAddress);
	return len == (j->ip_family == AF_INET ? 4 : 16) &&
	    memcmp(ASN1_STRING_get0_data(g->d.iPAddress), j->ip, (size_t)len) ==
	    0;
}

static struct problem *
check_cert(struct va_job *j, SSL *ssl)
{
	const unsigned char *proto = NULL;
	unsigned int plen = 0;
	X509 *cert = NULL;
	GENERAL_NAMES *gens = NULL;
	struct problem *prob = NULL;
	char names[512];
	int port = (int)j->va->cfg->tlsalpn01_port;

	SSL_get0_alpn_selected(ssl, &proto, &plen);
	if (plen != strlen(ALPN) || memcmp(proto, ALPN, plen) != 0) {
		prob = problem_new(PROB_UNAUTHORIZED,
		    "Cannot negotiate ALPN "
		    "protocol \"%s\" for tls-alpn-01 with %s:%d (the server "
		    "chose %s%.*s%s)",
		    ALPN, j->dns_host, port, plen ? "\"" : "no protocol",
		    (int)plen, plen ? (const char *)proto : "",
		    plen ? "\"" : "");
		goto out;
	}
	cert = SSL_get1_peer_certificate(ssl);
	if (cert == NULL) {
		prob = problem_new(PROB_UNAUTHORIZED,
		    "No certificate from "
		    "%s:%d for tls-alpn-01",
		    j->dns_host, port);
		goto out;
	}
	gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	if (!san_matches(j, gens)) {
		san_text(gens, names, sizeof(names));
		prob = problem_new(PROB_UNAUTHORIZED,
		    "Incorrect validation "
		    "certificate for tls-alpn-01 from %s:%d: it must contain "
		    "exactly one subjectAltName, %s:%s; it contains %s",
		    j->dns_host, port, j->itype == IDENT_DNS ? "DNS" : "IP",
		    j->ident, names);
		goto out;
	}
	prob = check_acme_ext(j, cert, port);
out:
	GENERAL_NAMES_free(gens);
	X509_free(cert);
	return prob;
}

/* IPv6 failed: fall back to IPv4; else the connection problem. */
static void
connect_failed(struct va_job *j, int sys_errno, const char *msg)
{
	va_job_conn_failed(j, sys_errno, msg, alpn_connect, j->dns_host,
	    (int)j->va->cfg->tlsalpn01_port, " for tls-alpn-01");
}

static void
alpn_cb(void *arg, struct va_conn *c, enum va_conn_err e, const char *msg)
{
	struct va_job *j = arg;
	struct problem *prob;
	char addr[64];
	int slot = j->addr_try;
	int port = (int)j->va->cfg->tlsalpn01_port;

	j->conn = NULL;
	switch (e) {
	case VA_CONN_OK:
		prob = check_cert(j, c->ssl);
		if (prob == NULL)
			va_job_validated(j);
		else
			va_job_finish(j, prob);
		break;
	case VA_CONN_ECONNECT:
		connect_failed(j, c->sys_errno, msg);
		break;
	default:
		if (va_job_retry_conn(j, c->sys_errno, msg, alpn_connect))
			break;
		va_job_finish(j,
		    problem_new(PROB_TLS,
			"tls-alpn-01 with %s "
			"(address %s, port %d): %s",
			j->dns_host,
			va_addr_str(j->addr_family[slot], j->addr_raw[slot],
			    addr, sizeof(addr)),
			port, msg));
		break;
	}
	va_conn_free(c);
}

static void
alpn_connect(struct va_job *j)
{
	char err[200];
	char *sni;
	int rc;

	if (j->itype == IDENT_IP)
		sni = ident_ip_reverse_name(
		    j->ip, j->ip_family == AF_INET ? 4 : 16);
	else
		sni = xstrdup(j->ident);
	rc = va_job_dial(j, (int)j->va->cfg->tlsalpn01_port, 1, sni, ALPN, NULL,
	    1, alpn_cb, err, sizeof(err));
	free(sni);
	if (rc != 0)
		connect_failed(j, 0, err);
}
