/*
 * bpbib.c - BPSec for RFC 9891 bp-nodeid-00: the va.json bp.bib keys and
 * trust policy, and the Block Integrity Block checks of a Response
 * Bundle (RFC 9891 §4.3.2, §5) with the BIB-HMAC-SHA2 security context
 * of RFC 9173 §3 (the wire formats are in bpv7.c).
 *
 * RFC 9891 §5: "The receiver needs policy configuration to know which
 * security sources are permitted to attest for which bundle sources."
 * bp.bib.sources is that policy: each trusted security source Node ID
 * with its named key and the Node IDs it may attest for (a node always
 * may for itself).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "va/bpv7.h"
#include "va/va_int.h"

#define BIB_MAX_KEY 128

struct bib_key {
	char *name;
	uint8_t *key;
	size_t len;
};

struct bib_source {
	char *eid; /* normalised Node ID */
	const struct bib_key *key;
	char **nodes; /* normalised Node IDs it attests for */
	size_t n_nodes;
	int any; /* "*": every Node ID */
};

struct va_bp_bib {
	struct bib_key *keys;
	size_t n_keys;
	struct bib_source *sources;
	size_t n_sources;
	struct bp_bib_sign sign; /* key borrowed from keys, source set later */
};

/* See va_int.h. */
void
va_bp_bib_free(struct va_bp_bib *bb)
{
	size_t i, k;

	if (bb == NULL)
		return;
	for (i = 0; i < bb->n_keys; i++) {
		OPENSSL_cleanse(bb->keys[i].key, bb->keys[i].len);
		free(bb->keys[i].key);
		free(bb->keys[i].name);
	}
	for (i = 0; i < bb->n_sources; i++) {
		for (k = 0; k < bb->sources[i].n_nodes; k++)
			free(bb->sources[i].nodes[k]);
		free(bb->sources[i].nodes);
		free(bb->sources[i].eid);
	}
	free(bb->keys);
	free(bb->sources);
	free(bb);
}

/* Hex text (surrounding whitespace ignored) into k. 0 or -1. */
static int
key_from_hex(struct bib_key *k, const char *text)
{
	char buf[2 * BIB_MAX_KEY + 1];
	size_t n;

	while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')
		text++;
	n = strcspn(text, " \t\r\n");
	if (n == 0 || n >= sizeof(buf) || text[n + strspn(text + n, " \t\r\n")])
		return -1;
	memcpy(buf, text, n);
	buf[n] = '\0';
	return hex_decode(buf, &k->key, &k->len) == 0 && k->len >= 16 ? 0 : -1;
}

/* One bp.bib.keys entry: {"hex": "..."} or {"file": "path"} (hex text,
 * mode 0600). */
static int
parse_key(struct bib_key *k, const char *name, const json_t *v, char *err,
    size_t errlen)
{
	const char *hex = json_string_value(json_object_get(v, "hex"));
	const char *path = json_string_value(json_object_get(v, "file"));
	char e[300], *text = NULL;
	int rc;

	k->name = xstrdup(name);
	if (!json_is_object(v) || json_object_size(v) != 1 ||
	    (hex == NULL) == (path == NULL)) {
		snprintf(err, errlen,
		    "bp.bib.keys.%.60s: expected {\"hex\": \"...\"} or "
		    "{\"file\": \"path\"}",
		    name);
		return -1;
	}
	if (path != NULL &&
	    (file_check_secret_mode(path, e, sizeof(e)) != 0 ||
		file_read_all(
		    path, 4 * BIB_MAX_KEY, &text, NULL, e, sizeof(e)) != 0)) {
		snprintf(err, errlen, "bp.bib.keys.%.60s: %s", name, e);
		return -1;
	}
	rc = key_from_hex(k, path != NULL ? text : hex);
	free(text);
	if (rc != 0)
		snprintf(err, errlen,
		    "bp.bib.keys.%.60s: expected 16 to %d bytes as hex", name,
		    BIB_MAX_KEY);
	return rc;
}

static const struct bib_key *
key_named(const struct va_bp_bib *bb, const char *name)
{
	size_t i;

	for (i = 0; name != NULL && i < bb->n_keys; i++)
		if (strcmp(bb->keys[i].name, name) == 0)
			return &bb->keys[i];
	return NULL;
}

/* A Node ID of the config into *out (normalised), or -1 with err. */
static int
node_id(const char *in, char **out, const char *what, char *err, size_t errlen)
{
	char e[200];

	if (ident_bundle_eid_normalize(in, out, e, sizeof(e)) == 0)
		return 0;
	snprintf(err, errlen, "%s: not a Node ID: %s", what, e);
	return -1;
}

/* One bp.bib.sources entry: {"key": name, "nodes": [Node IDs or "*"]}. */
static int
parse_source(struct va_bp_bib *bb, struct bib_source *s, const char *eid,
    const json_t *v, char *err, size_t errlen)
{
	json_t *nodes = json_object_get(v, "nodes"), *n;
	char what[160];
	size_t i;

	snprintf(what, sizeof(what), "bp.bib.sources.\"%.100s\"", eid);
	if (node_id(eid, &s->eid, what, err, errlen) != 0)
		return -1;
	if (!json_is_object(v) ||
	    (s->key = key_named(
		 bb, json_string_value(json_object_get(v, "key")))) == NULL ||
	    (nodes != NULL && !json_is_array(nodes))) {
		snprintf(err, errlen,
		    "%s: expected {\"key\": \"<a name in bp.bib.keys>\", "
		    "\"nodes\": [\"<node id>\" or \"*\", ...]}",
		    what);
		return -1;
	}
	s->nodes = xcalloc(json_array_size(nodes) + 1, sizeof(*s->nodes));
	json_array_foreach(nodes, i, n)
	{
		if (json_is_string(n) &&
		    strcmp(json_string_value(n), "*") == 0) {
			s->any = 1;
			continue;
		}
		if (!json_is_string(n) ||
		    node_id(json_string_value(n), &s->nodes[s->n_nodes], what,
			err, errlen) != 0)
			return -1;
		s->n_nodes++;
	}
	return 0;
}

static int
parse_sign(struct va_bp_bib *bb, const json_t *o, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, "hmac");
	json_int_t bits = v == NULL ? 256 : json_integer_value(v);
	const struct bib_key *k =
	    key_named(bb, json_string_value(json_object_get(o, "sign_key")));

	if (k == NULL)
		return va_bp_bad(err, errlen, "bib.sign_key",
		    "required: the name (in bp.bib.keys) of the key of the "
		    "BIB on Challenge Bundles");
	if ((v != NULL && !json_is_integer(v)) ||
	    (bits != 256 && bits != 384 && bits != 512))
		return va_bp_bad(err, errlen, "bib.hmac",
		    "expected 256, 384 or 512 (HMAC-SHA variant, RFC 9173 "
		    "§3.3.2)");
	/* RFC 9173 §3.5: "the key ... MUST have a key length equal to the
	 * output of the HMAC" */
	if (k->len * 8 != (size_t)bits)
		return va_bp_bad(err, errlen, "bib.sign_key",
		    "the key's length must equal the HMAC output (bp.bib.hmac "
		    "bits; RFC 9173 §3.5)");
	bb->sign.key = k->key;
	bb->sign.key_len = k->len;
	bb->sign.sha_variant = bits == 256 ? 5 : bits == 384 ? 6 : 7;
	return 0;
}

static int
bib_parse(struct va_bp_bib *bb, const json_t *o, char *err, size_t errlen)
{
	static const char *const known[] = {
	    "keys", "sign_key", "hmac", "sources"};
	json_t *keys = json_object_get(o, "keys"),
	       *sources = json_object_get(o, "sources"), *v;
	const char *key;
	size_t i;

	json_object_foreach((json_t *)o, key, v)
	{
		for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			if (strcmp(key, known[i]) == 0)
				break;
		if (i == sizeof(known) / sizeof(known[0])) {
			snprintf(err, errlen, "bp.bib.%.60s: unknown key", key);
			return -1;
		}
	}
	if (!json_is_object(keys) ||
	    (sources != NULL && !json_is_object(sources)))
		return va_bp_bad(err, errlen,
		    json_is_object(keys) ? "bib.sources" : "bib.keys",
		    "expected an object");
	bb->keys = xcalloc(json_object_size(keys) + 1, sizeof(*bb->keys));
	json_object_foreach(keys, key, v)
	{
		if (parse_key(&bb->keys[bb->n_keys++], key, v, err, errlen) !=
		    0)
			return -1;
	}
	if (parse_sign(bb, o, err, errlen) != 0)
		return -1;
	bb->sources =
	    xcalloc(json_object_size(sources) + 1, sizeof(*bb->sources));
	json_object_foreach(sources, key, v)
	{
		if (parse_source(bb, &bb->sources[bb->n_sources++], key, v, err,
			errlen) != 0)
			return -1;
	}
	return 0;
}

/* See va_int.h. */
int
va_bp_bib_new(const json_t *o, const char *va_node, struct va_bp_bib **out,
    char *err, size_t errlen)
{
	struct va_bp_bib *bb;

	*out = NULL;
	/* RFC 9891 §4.2: "Challenge Bundles SHALL include a Block Integrity
	 * Block (BIB)"; §4.3: "Response Bundles SHALL include a BIB" */
	if (!json_is_object(o))
		return va_bp_bad(err, errlen, "bib",
		    "required: an object with keys, sign_key and sources (RFC "
		    "9891 §4.2/§4.3: both bundles SHALL carry a BIB)");
	bb = xcalloc(1, sizeof(*bb));
	if (bib_parse(bb, o, err, errlen) != 0) {
		va_bp_bib_free(bb);
		return -1;
	}
	bb->sign.source = va_node; /* "a Security Source identical to the
				      bundle Source Node" */
	*out = bb;
	return 0;
}

/* See va_int.h. */
const struct bp_bib_sign *
va_bp_bib_signer(const struct va_bp_bib *bb)
{
	return &bb->sign;
}

/* The trusted source s may attest for node (normalised). */
static int
attests_for(const struct bib_source *s, const char *node)
{
	size_t i;

	if (s->any || strcmp(s->eid, node) == 0)
		return 1;
	for (i = 0; i < s->n_nodes; i++)
		if (strcmp(s->nodes[i], node) == 0)
			return 1;
	return 0;
}

/* The policy entry for a BIB's security source text, or NULL. */
static const struct bib_source *
source_of(const struct va_bp_bib *bb, const char *eid)
{
	char e[200], *norm = NULL;
	const struct bib_source *s = NULL;
	size_t i;

	if (ident_bundle_eid_normalize(eid, &norm, e, sizeof(e)) != 0)
		return NULL;
	for (i = 0; i < bb->n_sources && s == NULL; i++)
		if (strcmp(bb->sources[i].eid, norm) == 0)
			s = &bb->sources[i];
	free(norm);
	return s;
}

/* The BIB covers the payload and the primary block (§5: "either
 * directly as a target or as additional authenticated data"). */
static int
covers(const struct bp_bib *bib)
{
	int payload = 0, primary = (bib->scope & BIB_SCOPE_PRIMARY) != 0;
	size_t i;

	for (i = 0; i < bib->n_targets; i++) {
		payload |= bib->targets[i] == 1;
		primary |= bib->targets[i] == 0;
	}
	return payload && primary;
}

/*
 * One BIB block blk of r: 1 when it verifies from a trusted source for
 * node and covers both blocks, 0 when it is not usable here (why in
 * skip), -1 when it is malformed or its HMAC fails (why in err).
 */
static int
check_one(const struct va_bp_bib *bb, const struct bp_acme *r,
    const struct bp_block *blk, const char *node, char *src, size_t srclen,
    char *why, size_t whylen)
{
	const struct bib_source *s;
	struct bp_bib bib;
	char e[200];

	if (bp_bib_decode(blk->data, blk->data_len, &bib, e, sizeof(e)) != 0) {
		snprintf(why, whylen, "has a malformed BIB: %s", e);
		return -1;
	}
	snprintf(src, srclen, "%s", bib.source);
	if (bib.ctx_id != BIB_CTX_HMAC_SHA2 || bib.wrapped_key) {
		snprintf(why, whylen,
		    "has no BIB this server can check (security context %d "
		    "with a configured key, RFC 9173 §3, is needed)",
		    BIB_CTX_HMAC_SHA2);
		return 0;
	}
	/* §4.3.2: "That BIB has a security source which is trusted" */
	if ((s = source_of(bb, bib.source)) == NULL || !attests_for(s, node)) {
		snprintf(why, whylen,
		    "has a BIB whose security source %.200s is not trusted "
		    "for this Node ID (va.json bp.bib.sources)",
		    bib.source);
		return 0;
	}
	/* "and passes security-context-specific validation" */
	if (bp_bib_verify(
		r, blk, &bib, s->key->key, s->key->len, e, sizeof(e)) != 0) {
		snprintf(why, whylen, "has a BIB from %.200s that fails: %s",
		    bib.source, e);
		return -1;
	}
	/* "The Response Bundle contains a BIB which covers at least the
	 * primary block and payload." */
	if (!covers(&bib)) {
		snprintf(why, whylen,
		    "has a BIB from %.200s that does not cover both the primary "
		    "block and the payload",
		    bib.source);
		return 0;
	}
	return 1;
}

/* See va_int.h. */
int
va_bp_bib_check(const struct va_bp_bib *bb, const struct bp_acme *r,
    const char *node, char *src, size_t srclen, char *why, size_t whylen)
{
	char s[BP_MAX_EID] = "";
	size_t i;
	int rc, ok = 0;

	snprintf(why, whylen,
	    "has no Block Integrity Block (RFC 9891 §4.3: \"Response Bundles "
	    "SHALL include a BIB\")");
	for (i = 0; i < r->n_blocks; i++) {
		/* §4.3: "Response Bundles SHALL NOT be directly encrypted by
		 * BCB" */
		if (r->blocks[i].type == BP_BLOCK_BCB) {
			snprintf(why, whylen,
			    "carries a Block Confidentiality Block (RFC 9891 "
			    "§4.3: SHALL NOT be encrypted by BCB)");
			return -1;
		}
	}
	/* every BIB is checked: one that fails makes the bundle fail
	 * (RFC 9172 §5.1.2), one that verifies and covers is needed */
	for (i = 0; i < r->n_blocks; i++) {
		if (r->blocks[i].type != BP_BLOCK_BIB)
			continue;
		rc = check_one(bb, r, &r->blocks[i], node, s, sizeof(s),
		    ok ? s : why, ok ? sizeof(s) : whylen);
		if (rc < 0)
			return -1;
		if (rc > 0 && !ok) {
			ok = 1;
			snprintf(src, srclen, "%s", s);
		}
	}
	return ok ? 0 : -1;
}
