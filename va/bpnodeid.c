/*
 * bpnodeid.c - RFC 9891 bp-nodeid-00: the VA acts as the BP agent of the
 * ACME server. It opens a TCPCLv4 session (RFC 9174) to the
 * convergence-layer address that va.json bp.routes gives for the Node ID
 * (RFC 9891 §1.1: "The mapping of Node ID to potential convergence layer
 * (CL) protocol and network address is left to implementation and
 * configuration of the BP Agent"), sends the Challenge Bundle (§4.2) as
 * one transfer and waits, for the response interval (§4.1.2), for the
 * Response Bundle (§4.3) to come back over the same session, then checks
 * it (§4.3.2). The wire formats are in bpv7.c.
 *
 * Both bundles carry a BPSec BIB (BIB-HMAC-SHA2, RFC 9173; bpbib.c). With
 * va.json bp.tls the session runs over TLS 1.3 (RFC 9174 §4.4) and the
 * node's certificate must name the Node ID.
 *
 * Limits (docs/acme.md): one route per Node ID, no BP forwarding, no
 * listener (the response must come back on the session the VA opened),
 * no Bundle Age block (the VA's clock is synchronised).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "va/bpv7.h"
#include "va/va_int.h"

/* DTN time (RFC 9171 §4.2.6) counts from 2000-01-01T00:00:00Z. */
#define DTN_EPOCH_MS 946684800000LL
#define BP_IO_MAX (BP_MAX_BUNDLE + 1024)

struct bp_route {
	char *node_id; /* normalised */
	int family;
	uint8_t addr[16];
	int port;
	char *text; /* "addr:port" as configured */
};

struct va_bp {
	char *node_id; /* this VA's Node ID, the bundles' source */
	int64_t interval_ms, min_ms, max_ms, connect_ms;
	int64_t algs[BP_MAX_ALGS];
	size_t n_algs;
	uint64_t admin_type;
	struct bp_route *routes;
	size_t n_routes;
	struct va_bp_bib *bib; /* BPSec keys and trust (bpbib.c) */
	SSL_CTX *tls;          /* bp.tls: TCPCL over TLS; NULL: off */
	int tls_required;      /* refuse a node without CAN_TLS */
};

enum bp_state { BS_CONNECT, BS_CONTACT, BS_TLS, BS_SESS_INIT, BS_XFER };

struct va_bp_job {
	int fd;
	SSL *ssl; /* RFC 9174 §4.4 TLS after the contact headers */
	struct event *ev;    /* readable (persistent) */
	struct event *wev;   /* writable: connected, or room to send */
	struct event *timer; /* the response interval */
	enum bp_state state;
	uint8_t out[BP_IO_MAX];
	size_t outlen, outoff;
	uint8_t in[2 * BP_IO_MAX];
	size_t inlen;
	uint8_t rx[BP_MAX_BUNDLE]; /* the transfer being received */
	size_t rxlen;
	uint64_t rx_id;
	int rx_open;
	uint8_t bundle[BP_MAX_BUNDLE];
	size_t bundle_len;
	uint8_t id_chal[16], token[16];
	int64_t created_ms, interval_ms; /* epoch ms */
	const struct bp_route *route;
};

/* ---------------- configuration ---------------- */

static const struct {
	int64_t id;
	const char *md;
} bp_algs[] = {{-16, "SHA256"}, {-43, "SHA384"}, {-44, "SHA512"}};

static const char *
alg_md(int64_t id)
{
	size_t i;

	for (i = 0; i < sizeof(bp_algs) / sizeof(bp_algs[0]); i++)
		if (bp_algs[i].id == id)
			return bp_algs[i].md;
	return NULL;
}

/* See va_int.h. */
void
va_bp_free(struct va_bp *bp)
{
	size_t i;

	if (bp == NULL)
		return;
	for (i = 0; i < bp->n_routes; i++) {
		free(bp->routes[i].node_id);
		free(bp->routes[i].text);
	}
	free(bp->routes);
	va_bp_bib_free(bp->bib);
	SSL_CTX_free(bp->tls);
	free(bp->node_id);
	free(bp);
}

/* See va_int.h. */
int
va_bp_bad(char *err, size_t errlen, const char *key, const char *why)
{
	snprintf(err, errlen, "bp.%s: %s", key, why);
	return -1;
}

/* "1.2.3.4:port" or "[::1]:port" into r. 0 or -1. */
static int
parse_addr(const char *s, struct bp_route *r)
{
	char host[64];
	const char *colon;
	char *end;
	long port;
	size_t n;

	if (s[0] == '[') {
		colon = strstr(s, "]:");
		if (colon == NULL ||
		    (n = (size_t)(colon - s - 1)) >= sizeof(host))
			return -1;
		memcpy(host, s + 1, n);
		host[n] = '\0';
		colon++;
		r->family = AF_INET6;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || (n = (size_t)(colon - s)) >= sizeof(host))
			return -1;
		memcpy(host, s, n);
		host[n] = '\0';
		r->family = AF_INET;
	}
	if (inet_pton(r->family, host, r->addr) != 1)
		return -1;
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || colon[1] == '\0' || port < 1 || port > 65535)
		return -1;
	r->port = (int)port;
	return 0;
}

static int
parse_routes(struct va_bp *bp, const json_t *routes, char *err, size_t errlen)
{
	const char *key;
	json_t *v;
	char e[200], msg[300], *norm;

	if (!json_is_object(routes))
		return va_bp_bad(err, errlen, "routes",
		    "expected an object {\"<node id>\": \"address:port\"}");
	bp->routes = xcalloc(json_object_size(routes) + 1, sizeof(*bp->routes));
	json_object_foreach((json_t *)routes, key, v)
	{
		struct bp_route *r = &bp->routes[bp->n_routes];

		if (ident_bundle_eid_normalize(key, &norm, e, sizeof(e)) != 0) {
			snprintf(msg, sizeof(msg), "not a Node ID: %s", e);
			snprintf(
			    err, errlen, "bp.routes.\"%.100s\": %s", key, msg);
			return -1;
		}
		r->node_id = norm;
		bp->n_routes++;
		if (!json_is_string(v) ||
		    parse_addr(json_string_value(v), r) != 0) {
			snprintf(err, errlen,
			    "bp.routes.\"%.100s\": expected \"IPv4:port\" or "
			    "\"[IPv6]:port\" (the TCPCL address of the node)",
			    key);
			return -1;
		}
		r->text = xstrdup(json_string_value(v));
	}
	return 0;
}

static int
parse_duration(
    const json_t *o, const char *key, int64_t *ms, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);

	if (v == NULL)
		return 0;
	if (!json_is_string(v) ||
	    duration_parse_ms(json_string_value(v), ms) != 0 || *ms <= 0)
		return va_bp_bad(
		    err, errlen, key, "expected a duration like \"10s\"");
	return 0;
}

static int
parse_algs(struct va_bp *bp, const json_t *a, char *err, size_t errlen)
{
	json_t *v;
	size_t i;

	if (a == NULL)
		return 0;
	if (!json_is_array(a) || json_array_size(a) == 0 ||
	    json_array_size(a) > BP_MAX_ALGS)
		return va_bp_bad(err, errlen, "hash_algorithms",
		    "expected 1 to 8 COSE algorithm ids (-16, -43, -44)");
	bp->n_algs = 0;
	json_array_foreach(a, i, v)
	{
		if (!json_is_integer(v) ||
		    alg_md(json_integer_value(v)) == NULL)
			return va_bp_bad(err, errlen, "hash_algorithms",
			    "only -16 (SHA-256), -43 (SHA-384) and -44 "
			    "(SHA-512) are known");
		bp->algs[bp->n_algs++] = json_integer_value(v);
	}
	return 0;
}

/* bp.tls: {"ca_file": PEM roots, "required": bool (default true)}. */
static int
parse_tls(struct va_bp *bp, const json_t *t, char *err, size_t errlen)
{
	const char *ca = json_string_value(json_object_get(t, "ca_file"));
	json_t *req = json_object_get(t, "required");

	if (t == NULL)
		return 0;
	if (!json_is_object(t) || ca == NULL ||
	    (req != NULL && !json_is_boolean(req)) ||
	    json_object_size(t) != 1u + (req != NULL))
		return va_bp_bad(err, errlen, "tls",
		    "expected {\"ca_file\": \"<PEM roots of the nodes' "
		    "certificates>\", \"required\": true|false}");
	bp->tls = SSL_CTX_new(TLS_client_method());
	if (bp->tls == NULL ||
	    SSL_CTX_set_min_proto_version(bp->tls, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_load_verify_locations(bp->tls, ca, NULL) != 1) {
		ERR_clear_error();
		return va_bp_bad(err, errlen, "tls.ca_file",
		    "cannot load it as PEM certificates");
	}
	SSL_CTX_set_verify(bp->tls, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(bp->tls, SSL_MODE_ENABLE_PARTIAL_WRITE |
		SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	bp->tls_required = req == NULL || json_is_true(req);
	return 0;
}

static int
bp_parse(struct va_bp *bp, const json_t *o, char *err, size_t errlen)
{
	static const char *const keys[] = {"node_id", "routes",
	    "response_interval", "min_interval", "max_interval",
	    "connect_timeout", "hash_algorithms", "admin_record_type", "bib",
	    "tls"};
	const char *key;
	json_t *v;
	char e[200];
	size_t i;

	json_object_foreach((json_t *)o, key, v)
	{
		for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (strcmp(key, keys[i]) == 0)
				break;
		if (i == sizeof(keys) / sizeof(keys[0]))
			return va_bp_bad(err, errlen, key, "unknown key");
	}
	v = json_object_get(o, "node_id");
	if (!json_is_string(v))
		return va_bp_bad(err, errlen, "node_id",
		    "required: this VA's Node ID (dtn://name/ or ipn:N.0)");
	if (ident_bundle_eid_normalize(
		json_string_value(v), &bp->node_id, e, sizeof(e)) != 0)
		return va_bp_bad(err, errlen, "node_id", e);
	if (va_bp_bib_new(json_object_get(o, "bib"), bp->node_id, &bp->bib,
		err, errlen) != 0)
		return -1;
	v = json_object_get(o, "admin_record_type");
	if (v != NULL && (!json_is_integer(v) || json_integer_value(v) < 1))
		return va_bp_bad(err, errlen, "admin_record_type",
		    "expected a positive integer");
	if (v != NULL)
		bp->admin_type = (uint64_t)json_integer_value(v);
	if (parse_duration(
		o, "response_interval", &bp->interval_ms, err, errlen) != 0 ||
	    parse_duration(o, "min_interval", &bp->min_ms, err, errlen) != 0 ||
	    parse_duration(o, "max_interval", &bp->max_ms, err, errlen) != 0 ||
	    parse_duration(
		o, "connect_timeout", &bp->connect_ms, err, errlen) != 0 ||
	    parse_algs(
		bp, json_object_get(o, "hash_algorithms"), err, errlen) != 0 ||
	    parse_tls(bp, json_object_get(o, "tls"), err, errlen) != 0)
		return -1;
	if (bp->min_ms > bp->max_ms || bp->interval_ms < bp->min_ms ||
	    bp->interval_ms > bp->max_ms)
		return va_bp_bad(err, errlen, "response_interval",
		    "must lie within min_interval..max_interval");
	return parse_routes(bp, json_object_get(o, "routes"), err, errlen);
}

/* See va_int.h. */
int
va_bp_new(
    const struct va_config *cfg, struct va_bp **out, char *err, size_t errlen)
{
	struct va_bp *bp;

	*out = NULL;
	if (cfg->bp == NULL || json_is_null(cfg->bp))
		return 0;
	if (!json_is_object(cfg->bp))
		return va_bp_bad(err, errlen, "", "expected an object");
	bp = xcalloc(1, sizeof(*bp));
	/* RFC 9891 §4.1.2: "The lower limit on response interval is
	 * network-specific, but SHOULD NOT be shorter than one second" and
	 * the upper "SHOULD NOT be longer than one minute (60 seconds) for a
	 * terrestrial-only DTN" */
	bp->interval_ms = 10000;
	bp->min_ms = 1000;
	bp->max_ms = 60000;
	bp->connect_ms = 5000;
	bp->algs[0] = -16; /* §4.2: "SHALL support ... SHA-256 (-16)" */
	bp->n_algs = 1;
	bp->admin_type = 0xFFFF; /* the RFC's examples; see docs/acme.md */
	if (bp_parse(bp, cfg->bp, err, errlen) != 0) {
		va_bp_free(bp);
		return -1;
	}
	*out = bp;
	return 0;
}

/* See va_int.h. */
int64_t
va_bp_interval(const struct va_bp *bp, const json_t *payload,
    int64_t *connect_ms, struct problem **prob)
{
	json_t *rtt = json_object_get(payload, "rtt");
	int64_t ms;
	double d;

	if (bp == NULL) {
		*prob = problem_new(PROB_MALFORMED,
		    "bp-nodeid-00 is not configured on this VA (va.json bp)");
		return -1;
	}
	*connect_ms = bp->connect_ms;
	if (rtt == NULL)
		return bp->interval_ms;
	/* §4.1.2: "rtt (optional, number) ... The minimum RTT value SHALL
	 * be zero." */
	d = json_number_value(rtt);
	if (!json_is_number(rtt) || d < 0 || d > 86400.0 * 365) {
		*prob = problem_new(PROB_MALFORMED,
		    "rtt: expected a number of seconds >= 0 (RFC 9891 §4.1.2)");
		return -1;
	}
	/* "the response interval SHOULD be twice the RTT (with limiting
	 * logic applied ...)" */
	ms = (int64_t)(d * 2000.0);
	if (ms < bp->min_ms)
		ms = bp->min_ms;
	if (ms > bp->max_ms)
		ms = bp->max_ms;
	return ms;
}

/* ---------------- the exchange ---------------- */

/* See va_int.h. */
void
va_bp_job_free(struct va_bp_job *bj)
{
	if (bj == NULL)
		return;
	if (bj->ev != NULL)
		event_free(bj->ev);
	if (bj->wev != NULL)
		event_free(bj->wev);
	if (bj->timer != NULL)
		event_free(bj->timer);
	if (bj->ssl != NULL)
		SSL_free(bj->ssl);
	if (bj->fd >= 0)
		close(bj->fd);
	free(bj);
}

/* Closes the session (events stay allocated until the job is freed). */
static void
bp_close(struct va_bp_job *bj)
{
	if (bj->ev != NULL)
		event_del(bj->ev);
	if (bj->wev != NULL)
		event_del(bj->wev);
	if (bj->timer != NULL)
		event_del(bj->timer);
	if (bj->fd >= 0)
		close(bj->fd);
	bj->fd = -1;
}

/* Ends j with incorrectResponse (RFC 9891 §4.4: "a validation failure
 * SHALL be indicated by an ACME error type of "incorrectResponse"). */
static void __attribute__((format(printf, 2, 3)))
bp_fail(struct va_job *j, const char *fmt, ...)
{
	char detail[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	bp_close(j->bp);
	va_job_finish(j, problem_new(PROB_INCORRECT_RESPONSE, "%s", detail));
}

static void
bp_queue(struct va_bp_job *bj, size_t n)
{
	bj->outlen += n;
}

static void
hop_set(struct va_job *j, const char *key, json_t *v)
{
	if (j->hop != NULL)
		json_object_set_new(j->hop, key, v);
	else
		json_decref(v);
}

/* The Challenge Bundle of RFC 9891 §4.2 into bj->bundle. 0 or -1. */
static int
build_challenge(struct va_job *j, struct va_bp_job *bj, const struct va_bp *bp)
{
	struct bp_acme b;
	uint8_t *raw = NULL;
	size_t n = 0;
	char *id = chal_bp_id_chal(j->token);
	int rc = -1;

	if (id == NULL || b64url_decode(id, strlen(id), &raw, &n) != 0 ||
	    n != sizeof(bj->id_chal))
		goto out;
	memcpy(bj->id_chal, raw, n);
	/* §4.2: token-bundle "SHALL have at least 128 bits of entropy" */
	random_bytes(bj->token, sizeof(bj->token));
	memset(&b, 0, sizeof(b));
	/* "SHALL indicate that the payload is an administrative record" and
	 * "that user application acknowledgement is requested" */
	b.flags =
	    BP_FLAG_ADMIN_RECORD | BP_FLAG_USER_APP_ACK | BP_FLAG_NO_FRAGMENT;
	b.crc = BP_CRC_32C;
	snprintf(b.dest, sizeof(b.dest), "%s", j->ident);
	snprintf(b.src, sizeof(b.src), "%s", bp->node_id);
	bj->created_ms = time_now_ms();
	b.created_ms = (uint64_t)(bj->created_ms - DTN_EPOCH_MS);
	b.lifetime_ms = (uint64_t)bj->interval_ms;
	b.admin_type = bp->admin_type;
	b.id_chal = bj->id_chal;
	b.id_chal_len = sizeof(bj->id_chal);
	b.token = bj->token;
	b.token_len = sizeof(bj->token);
	memcpy(b.algs, bp->algs, sizeof(b.algs));
	b.n_algs = bp->n_algs;
	/* "Challenge Bundles SHALL include a Block Integrity Block (BIB) ...
	 * with a Security Source identical to the bundle Source Node." */
	b.sign = va_bp_bib_signer(bp->bib);
	bj->bundle_len = bp_encode_acme(&b, bj->bundle, sizeof(bj->bundle));
	rc = bj->bundle_len > 0 ? 0 : -1;
out:
	free(id);
	free(raw);
	return rc;
}

/*
 * §4.1.1 step 8: the digest of the key authorization
 * base64url(token-bundle) || token-chal "." thumbprint (j->keyauth is
 * token-chal "." thumbprint) with md. Its length, or 0.
 */
static unsigned
keyauth_digest(const struct va_job *j, const struct va_bp_job *bj,
    const char *md, uint8_t out[EVP_MAX_MD_SIZE])
{
	char *tb = b64url_encode(bj->token, sizeof(bj->token));
	char *ka = xasprintf("%s%s", tb, j->keyauth);
	unsigned n = 0;

	if (EVP_Digest(
		ka, strlen(ka), out, &n, EVP_get_digestbyname(md), NULL) != 1)
		n = 0;
	free(tb);
	free(ka);
	return n;
}

/* 1 when eid (borrowed) normalises to the Node ID want. */
static int
same_node(const char *eid, const char *want)
{
	char e[200], *norm = NULL;
	int same;

	if (ident_bundle_eid_normalize(eid, &norm, e, sizeof(e)) != 0)
		return 0;
	same = strcmp(norm, want) == 0;
	free(norm);
	return same;
}

/* The checks of RFC 9891 §4.3.2 other than the digest. NULL or why. */
static const char *
response_shape(
    const struct va_bp_job *bj, const struct va_bp *bp, const struct bp_acme *r)
{
	size_t i;

	/* §4.3: "The primary block flags SHALL NOT indicate that user
	 * application acknowledgement is requested" */
	if (r->flags & BP_FLAG_USER_APP_ACK)
		return "requests user application acknowledgement, which marks "
		       "a Challenge Bundle (RFC 9891 §4.3)";
	/* "The response payload contains the same id-chal and token-bundle
	 * as sent in the Challenge Bundle" */
	if (r->id_chal_len != sizeof(bj->id_chal) ||
	    memcmp(r->id_chal, bj->id_chal, sizeof(bj->id_chal)) != 0 ||
	    r->token_len != sizeof(bj->token) ||
	    memcmp(r->token, bj->token, sizeof(bj->token)) != 0)
		return "does not carry the id-chal and token-bundle of the "
		       "Challenge Bundle";
	if (!same_node(r->dest, bp->node_id))
		return "is not addressed to this server's Node ID";
	if (!r->has_digest)
		return "has no key-auth-digest (key 3)";
	/* "a hash algorithm identifier acceptable to the server (as
	 * indicated in the challenge bundle)" */
	for (i = 0; i < bp->n_algs; i++)
		if (r->digest_alg_is_int && r->digest_alg == bp->algs[i])
			return NULL;
	return "uses a hash algorithm the Challenge Bundle did not offer";
}

/* A whole bundle arrived on the session: RFC 9891 §4.3.2. */
static void
bp_response(struct va_job *j, struct va_bp_job *bj)
{
	const struct va_bp *bp = j->va->bp;
	struct bp_acme r;
	uint8_t want[EVP_MAX_MD_SIZE];
	unsigned n;
	char err[400], src[BP_MAX_EID];
	const char *why;

	if (bp_decode_acme(bj->rx, bj->rxlen, &r, err, sizeof(err)) != 0) {
		bp_fail(j, "The bundle received from %s is malformed: %s",
		    j->ident, err);
		return;
	}
	hop_set(j, "response_source", json_string(r.src));
	/* not an ACME record: some other traffic of the node, ignored */
	if (!(r.flags & BP_FLAG_ADMIN_RECORD) || r.admin_type != bp->admin_type)
		return;
	/* "The Response Bundle was received within the time interval allowed
	 * for the challenge" */
	if (time_now_ms() > bj->created_ms + bj->interval_ms) {
		bp_fail(j,
		    "The Response Bundle from %s arrived after the "
		    "response interval",
		    j->ident);
		return;
	}
	/* "The Response Bundle Source Node ID is identical to the Node ID
	 * being validated." */
	if (!same_node(r.src, j->ident)) {
		bp_fail(j,
		    "The Response Bundle's source node ID %.200s is not the "
		    "Node ID being validated (%.200s)",
		    r.src, j->ident);
		return;
	}
	if ((why = response_shape(bj, bp, &r)) != NULL) {
		bp_fail(j, "The Response Bundle from %s %s", j->ident, why);
		return;
	}
	/* "The Response Bundle contains a BIB which covers at least the
	 * primary block and payload. That BIB has a security source which is
	 * trusted and passes security-context-specific validation." */
	if (va_bp_bib_check(
		bp->bib, &r, j->ident, src, sizeof(src), err, sizeof(err)) != 0) {
		bp_fail(j, "The Response Bundle from %s %s", j->ident, err);
		return;
	}
	hop_set(j, "bib_source", json_string(src));
	/* "The response payload contains the expected Key Authorization
	 * digest computed by the ACME server." */
	n = keyauth_digest(j, bj, alg_md(r.digest_alg), want);
	if (n == 0 || n != r.digest_len ||
	    CRYPTO_memcmp(want, r.digest, n) != 0) {
		bp_fail(j,
		    "The Response Bundle from %s carries the wrong key "
		    "authorization digest",
		    j->ident);
		return;
	}
	hop_set(j, "hash_algorithm", json_integer(r.digest_alg));
	bp_close(bj);
	va_job_finish(j, NULL);
}

/* XFER_SEGMENT m: reassembles, acknowledges, handles the whole bundle. */
static void
bp_segment(struct va_job *j, struct va_bp_job *bj, const struct tcpcl_msg *m)
{
	size_t n;

	if (m->flags & TCPCL_FLAG_START) {
		bj->rx_open = 1;
		bj->rx_id = m->xfer_id;
		bj->rxlen = 0;
	}
	if (!bj->rx_open || m->xfer_id != bj->rx_id) {
		bp_fail(j,
		    "TCPCL: %s sent a segment of a transfer it did not "
		    "start",
		    j->ident);
		return;
	}
	if (m->data_len > sizeof(bj->rx) - bj->rxlen) {
		bp_fail(j, "The bundle sent by %s is larger than 8192 bytes",
		    j->ident);
		return;
	}
	memcpy(bj->rx + bj->rxlen, m->data, m->data_len);
	bj->rxlen += m->data_len;
	/* RFC 9174 §5.2.3: acknowledge every segment, cumulatively */
	n = tcpcl_xfer_ack_encode(bj->out + bj->outlen,
	    sizeof(bj->out) - bj->outlen, m->flags, m->xfer_id, bj->rxlen);
	bp_queue(bj, n);
	if (m->flags & TCPCL_FLAG_END) {
		bj->rx_open = 0;
		bp_response(j, bj);
	}
}

static void
bp_send_bundle(struct va_job *j, struct va_bp_job *bj)
{
	size_t n = tcpcl_xfer_segment_encode(bj->out + bj->outlen,
	    sizeof(bj->out) - bj->outlen, TCPCL_FLAG_START | TCPCL_FLAG_END, 1,
	    bj->bundle, bj->bundle_len);
	struct timeval tv = {(time_t)(bj->interval_ms / 1000),
	    (suseconds_t)(bj->interval_ms % 1000) * 1000};

	bp_queue(bj, n);
	bj->state = BS_XFER;
	j->stage = "bundle";
	(void)evtimer_add(bj->timer, &tv);
}

/* One message in the established session. */
static void
bp_message(struct va_job *j, struct va_bp_job *bj, const struct tcpcl_msg *m)
{
	switch (m->type) {
	case TCPCL_SESS_INIT:
		if (bj->state != BS_SESS_INIT) {
			bp_fail(j, "TCPCL: %s sent SESS_INIT twice", j->ident);
			return;
		}
		hop_set(j, "cl_node_id",
		    json_stringn((const char *)m->data, m->data_len));
		bp_send_bundle(j, bj);
		return;
	case TCPCL_XFER_SEGMENT:
		if (bj->state == BS_XFER)
			bp_segment(j, bj, m);
		else
			bp_fail(j, "TCPCL: %s sent data before SESS_INIT",
			    j->ident);
		return;
	case TCPCL_XFER_ACK:
	case TCPCL_KEEPALIVE:
		return;
	case TCPCL_XFER_REFUSE:
		bp_fail(j,
		    "%s refused the Challenge Bundle (XFER_REFUSE reason %u)",
		    j->ident, m->reason);
		return;
	case TCPCL_SESS_TERM:
		bp_fail(j,
		    "%s ended the TCPCL session (reason %u) without a "
		    "Response Bundle",
		    j->ident, m->reason);
		return;
	default:
		bp_fail(j, "%s rejected a TCPCL message (MSG_REJECT reason %u)",
		    j->ident, m->reason);
		return;
	}
}

/* RFC 9174 §4.6: SESS_INIT after the contact headers (and TLS);
 * keepalive 0 (none), our MRUs. */
static void
bp_sess_init(struct va_bp_job *bj, const struct va_bp *bp)
{
	bp_queue(bj, tcpcl_sess_init_encode(bj->out + bj->outlen,
			 sizeof(bj->out) - bj->outlen, 0, BP_MAX_BUNDLE,
			 BP_MAX_BUNDLE, bp->node_id));
	bj->state = BS_SESS_INIT;
}

/*
 * The node's contact header (flags): RFC 9174 §4.3 "Negotiation of the
 * Enable TLS parameter is performed by taking the logical AND of the two
 * Contact Headers' CAN_TLS flags. A local security policy is then
 * applied": bp.tls.required refuses a node without it, else the session
 * goes on in plain TCP. 0 or -1 (failed).
 */
static int
bp_contact(struct va_job *j, struct va_bp_job *bj, uint8_t flags)
{
	const struct va_bp *bp = j->va->bp;

	if (bp->tls != NULL && (flags & TCPCL_CAN_TLS)) {
		bj->ssl = SSL_new(bp->tls);
		if (bj->ssl == NULL || SSL_set_fd(bj->ssl, bj->fd) != 1) {
			bp_fail(j, "Cannot start TLS with %s", j->ident);
			return -1;
		}
		SSL_set_connect_state(bj->ssl);
		bj->state = BS_TLS;
		j->stage = "tls";
		return 0;
	}
	if (bp->tls != NULL && bp->tls_required) {
		bp_fail(j,
		    "%s does not offer TLS (CAN_TLS, RFC 9174 §4.2) and "
		    "va.json bp.tls.required is set",
		    j->ident);
		return -1;
	}
	hop_set(j, "tls", json_false());
	bp_sess_init(bj, bp);
	return 0;
}

/* Parses what has arrived; may finish j. */
static void
bp_input(struct va_job *j, struct va_bp_job *bj)
{
	struct tcpcl_msg m;
	char err[160];
	size_t off = 0;
	long n;

	while (!j->finished && bj->state != BS_TLS && off < bj->inlen) {
		if (bj->state == BS_CONTACT) {
			n = tcpcl_contact_parse(bj->in + off, bj->inlen - off);
			if (n < 0) {
				bp_fail(j,
				    "%s did not answer with a TCPCLv4 "
				    "contact header",
				    j->ident);
				return;
			}
			if (n == 0 || bp_contact(j, bj, bj->in[off + 5]) != 0)
				break;
		} else {
			n = tcpcl_msg_parse(bj->in + off, bj->inlen - off,
			    BP_MAX_BUNDLE, &m, err, sizeof(err));
			if (n < 0) {
				bp_fail(j, "%s: %s", j->ident, err);
				return;
			}
			if (n == 0)
				break;
			bp_message(j, bj, &m);
		}
		off += (size_t)n;
	}
	if (off > 0 && !j->finished) {
		memmove(bj->in, bj->in + off, bj->inlen - off);
		bj->inlen -= off;
	}
	if (!j->finished && bj->inlen == sizeof(bj->in))
		bp_fail(j, "%s sent a TCPCL message larger than 16 KiB",
		    j->ident);
}

/* Connected (or failed to): sends the contact header. 0 or -1 (failed). */
static int
bp_connected(struct va_job *j, struct va_bp_job *bj)
{
	int e = 0;
	socklen_t el = sizeof(e);

	if (getsockopt(bj->fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0)
		e = errno;
	if (e != 0) {
		bp_fail(j, "Cannot reach the TCPCL address of %s: %s", j->ident,
		    strerror(e));
		return -1;
	}
	tcpcl_contact_encode(bj->out + bj->outlen,
	    j->va->bp->tls != NULL ? TCPCL_CAN_TLS : 0);
	bp_queue(bj, TCPCL_CONTACT_LEN);
	bj->state = BS_CONTACT;
	j->stage = "tcpcl";
	return 0;
}

/* SSL_get_error of r mapped to: -2 would block (wants I/O), -1 error,
 * 0 closed. */
static int
bp_ssl_result(struct va_bp_job *bj, int r)
{
	int se = SSL_get_error(bj->ssl, r);

	if (se == SSL_ERROR_WANT_READ || se == SSL_ERROR_WANT_WRITE)
		return -2;
	return se == SSL_ERROR_ZERO_RETURN ? 0 : -1;
}

/* Sends n bytes (plain or TLS): the count, -2 would block, -1 error. */
static ssize_t
bp_send(struct va_bp_job *bj, const uint8_t *d, size_t n)
{
	ssize_t w;
	int r;

	if (bj->ssl == NULL) {
		w = write(bj->fd, d, n);
		return w < 0 && (errno == EAGAIN || errno == EINTR) ? -2 : w;
	}
	r = SSL_write(bj->ssl, d, n > INT32_MAX ? INT32_MAX : (int)n);
	return r > 0 ? r : bp_ssl_result(bj, r);
}

/* Reads into bj->in (plain or TLS): the count, 0 closed, -2 would
 * block, -1 error. */
static ssize_t
bp_recv(struct va_bp_job *bj)
{
	size_t room = sizeof(bj->in) - bj->inlen;
	ssize_t n;
	int r;

	if (bj->ssl == NULL) {
		n = read(bj->fd, bj->in + bj->inlen, room);
		return n < 0 && (errno == EAGAIN || errno == EINTR) ? -2 : n;
	}
	r = SSL_read(bj->ssl, bj->in + bj->inlen, (int)room);
	return r > 0 ? r : bp_ssl_result(bj, r);
}

/* Writes what is queued; waits for writability when the socket is full. */
static void
bp_flush(struct va_job *j, struct va_bp_job *bj)
{
	ssize_t n;

	while (!j->finished && bj->outoff < bj->outlen) {
		n = bp_send(bj, bj->out + bj->outoff, bj->outlen - bj->outoff);
		if (n == -2) {
			if (event_add(bj->wev, NULL) != 0)
				bp_fail(j,
				    "Cannot watch the TCPCL session with %s",
				    j->ident);
			return;
		}
		if (n <= 0) {
			bp_fail(j, "Cannot send to %s over TCPCL: %s", j->ident,
			    strerror(errno));
			return;
		}
		bj->outoff += (size_t)n;
	}
	if (!j->finished)
		bj->outoff = bj->outlen = 0;
}

/*
 * RFC 9174 §4.4.3: the node's certificate (verified to bp.tls.ca_file in
 * the handshake) must name the Node ID being validated as a NODE-ID, a
 * BundleEID otherName (§4.4.1). 0 or -1 (failed).
 */
static int
bp_tls_peer(struct va_job *j, struct va_bp_job *bj)
{
	X509 *cert = SSL_get1_peer_certificate(bj->ssl);
	GENERAL_NAMES *gens = cert == NULL ? NULL
					   : X509_get_ext_d2i(cert,
						 NID_subject_alt_name, NULL,
						 NULL);
	const GENERAL_NAME *g;
	char oid[64], *id;
	int i, ok = 0;

	for (i = 0; i < sk_GENERAL_NAME_num(gens) && !ok; i++) {
		g = sk_GENERAL_NAME_value(gens, i);
		if (g->type != GEN_OTHERNAME ||
		    g->d.otherName->value->type != V_ASN1_IA5STRING ||
		    OBJ_obj2txt(oid, sizeof(oid), g->d.otherName->type_id, 1) <=
			0)
			continue;
		id = ident_bundle_eid_from_othername(oid,
		    g->d.otherName->value->value.ia5string->data,
		    (size_t)g->d.otherName->value->value.ia5string->length);
		ok = id != NULL && strcmp(id, j->ident) == 0;
		free(id);
	}
	GENERAL_NAMES_free(gens);
	X509_free(cert);
	if (!ok)
		bp_fail(j,
		    "The TLS certificate of %s does not name it as a NODE-ID "
		    "(BundleEID otherName, RFC 9174 §4.4.1)",
		    j->ident);
	return ok ? 0 : -1;
}

/* One step of the TLS handshake; then SESS_INIT over TLS. */
static void
bp_tls_step(struct va_job *j, struct va_bp_job *bj)
{
	char e[200];
	int r = SSL_do_handshake(bj->ssl);

	if (r == 1) {
		if (bp_tls_peer(j, bj) != 0)
			return;
		hop_set(j, "tls", json_string(SSL_get_version(bj->ssl)));
		bp_sess_init(bj, j->va->bp);
		bp_flush(j, bj);
		return;
	}
	if (bp_ssl_result(bj, r) == -2) {
		if (SSL_get_error(bj->ssl, r) == SSL_ERROR_WANT_WRITE &&
		    event_add(bj->wev, NULL) != 0)
			bp_fail(j, "Cannot watch the TCPCL session with %s",
			    j->ident);
		return;
	}
	ERR_error_string_n(ERR_peek_last_error(), e, sizeof(e));
	ERR_clear_error();
	bp_fail(j, "TLS with %s failed: %s", j->ident, e);
}

/* Moves the session on: the TLS handshake while it runs, else the output. */
static void
bp_advance(struct va_job *j, struct va_bp_job *bj)
{
	if (bj->state == BS_TLS)
		bp_tls_step(j, bj);
	else
		bp_flush(j, bj);
}

static void
bp_writable(struct va_job *j, struct va_bp_job *bj)
{
	if (j->finished || bj->fd < 0)
		return;
	if (bj->state == BS_CONNECT && bp_connected(j, bj) != 0)
		return;
	bp_advance(j, bj);
}

static void
bp_readable(struct va_job *j, struct va_bp_job *bj)
{
	ssize_t n;

	if (j->finished || bj->fd < 0 || bj->state == BS_CONNECT)
		return;
	/* TLS may hold decrypted bytes the socket no longer signals: read
	 * until it would block */
	while (bj->state != BS_TLS) {
		n = bp_recv(bj);
		if (n == -2)
			break;
		if (n <= 0) {
			bp_fail(j,
			    "%s closed the TCPCL session without a Response "
			    "Bundle%s",
			    j->ident, n == 0 ? "" : " (read error)");
			return;
		}
		bj->inlen += (size_t)n;
		bp_input(j, bj);
		if (j->finished)
			return;
		if (bj->ssl == NULL)
			break;
	}
	bp_advance(j, bj);
}

/* The socket callback (both events; what says which) holds a reference:
 * finishing the job inside it (va_job_finish drops the last one) must not
 * free j and its BP state before it returns. */
static void
bp_io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct va_job *j = arg;

	(void)fd;
	va_job_ref(j);
	if (what & EV_WRITE)
		bp_writable(j, j->bp);
	else
		bp_readable(j, j->bp);
	va_job_unref(j);
}

static void
bp_interval_cb(evutil_socket_t fd, short what, void *arg)
{
	struct va_job *j = arg;
	char s[32];

	(void)fd;
	(void)what;
	if (j->finished)
		return;
	snprintf(s, sizeof(s), "%.1f", (double)j->bp->interval_ms / 1000.0);
	/* §4.3.2: "The lack of a response within the expected response
	 * interval ... SHALL also be treated as a validation failure." */
	bp_fail(j,
	    "No Response Bundle from %s within the response interval "
	    "of %ss (RFC 9891 §4.1.2)",
	    j->ident, s);
}

static const struct bp_route *
route_of(const struct va_bp *bp, const char *node)
{
	size_t i;

	for (i = 0; i < bp->n_routes; i++)
		if (strcmp(bp->routes[i].node_id, node) == 0)
			return &bp->routes[i];
	return NULL;
}

/* Non-blocking connect to r; the fd or -1 with errno. */
static int
bp_connect(const struct bp_route *r)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd;

	memset(&ss, 0, sizeof(ss));
	if (r->family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)r->port);
		memcpy(&s4->sin_addr, r->addr, 4);
		sl = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)r->port);
		memcpy(&s6->sin6_addr, r->addr, 16);
		sl = sizeof(*s6);
	}
	fd = socket(r->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&ss, sl) != 0 &&
	    errno != EINPROGRESS) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* See va_int.h. */
void
va_bpnodeid00_start(struct va_job *j)
{
	const struct va_bp *bp = j->va->bp;
	struct va_bp_job *bj;
	struct problem *p = NULL;
	int64_t connect_ms = 0;

	if (bp == NULL) {
		va_job_finish(j,
		    problem_new(PROB_SERVER_INTERNAL,
			"bp-nodeid-00 is not configured"));
		return;
	}
	bj = j->bp = xcalloc(1, sizeof(*bj));
	bj->fd = -1;
	bj->interval_ms = va_bp_interval(bp, j->payload, &connect_ms, &p);
	if (bj->interval_ms < 0) {
		va_job_finish(j, p);
		return;
	}
	j->hop = json_pack("{s:s,s:s,s:s,s:I}", "node_id", j->ident, "source",
	    bp->node_id, "convergence_layer", "tcpcl-v4",
	    "response_interval_ms", (json_int_t)bj->interval_ms);
	json_array_append_new(j->record, j->hop);
	if ((bj->route = route_of(bp, j->ident)) == NULL) {
		bp_fail(j,
		    "No convergence-layer route to %s is configured (va.json "
		    "bp.routes)",
		    j->ident);
		return;
	}
	hop_set(j, "address", json_string(bj->route->text));
	if (build_challenge(j, bj, bp) != 0) {
		va_job_finish(j,
		    problem_new(PROB_SERVER_INTERNAL,
			"cannot encode the Challenge Bundle"));
		return;
	}
	if ((bj->fd = bp_connect(bj->route)) < 0) {
		bp_fail(j, "Cannot reach the TCPCL address of %s: %s", j->ident,
		    strerror(errno));
		return;
	}
	bj->ev =
	    event_new(j->va->base, bj->fd, EV_READ | EV_PERSIST, bp_io_cb, j);
	bj->wev = event_new(j->va->base, bj->fd, EV_WRITE, bp_io_cb, j);
	bj->timer = evtimer_new(j->va->base, bp_interval_cb, j);
	j->stage = "connect";
	if (bj->ev == NULL || bj->wev == NULL || bj->timer == NULL ||
	    event_add(bj->ev, NULL) != 0 || event_add(bj->wev, NULL) != 0)
		bp_fail(j, "Cannot watch the TCPCL session with %s", j->ident);
}
