/*
 * bpv7.h - the minimal Bundle Protocol version 7 (RFC 9171) and TCP
 * convergence layer version 4 (RFC 9174) pieces the VA needs for RFC 9891
 * bp-nodeid-00: encoding the ACME Node ID Validation Challenge Bundle,
 * decoding a Response Bundle under strict bounds, and framing the TCPCL
 * messages of one session. Pure functions on caller buffers: no I/O, no
 * allocation (decoded byte strings point into the caller's buffer).
 */
#ifndef ANVIL_VA_BPV7_H
#define ANVIL_VA_BPV7_H

#include <stddef.h>
#include <stdint.h>

/* Largest bundle encoded or accepted (a Response Bundle is ~200 bytes). */
#define BP_MAX_BUNDLE 8192
/* Longest EID text ("dtn://node/" or "ipn:N.S") handled. */
#define BP_MAX_EID 256
/* Most hash algorithms in a Challenge Bundle's alg-list. */
#define BP_MAX_ALGS 8
/* Most canonical blocks (payload and extension blocks) in a bundle. */
#define BP_MAX_BLOCKS 16
/* RFC 9172 §3.1 block type codes of the security blocks. */
#define BP_BLOCK_BIB 11
#define BP_BLOCK_BCB 12

/* RFC 9171 §4.2.3 bundle processing control flags used here. */
#define BP_FLAG_ADMIN_RECORD 0x02u
#define BP_FLAG_NO_FRAGMENT 0x04u
#define BP_FLAG_USER_APP_ACK 0x20u

/* RFC 9171 §4.2.1 CRC types. */
enum bp_crc { BP_CRC_NONE = 0, BP_CRC_16 = 1, BP_CRC_32C = 2 };

/* One canonical block as decoded (RFC 9171 §4.3.2); pointers into the
 * bundle buffer. */
struct bp_block {
	uint64_t type, num, flags;
	const uint8_t *data; /* the block-type-specific data */
	size_t data_len;
};

/* How bp_encode_acme adds a BIB (RFC 9173 BIB-HMAC-SHA2) as block 2,
 * targeting the payload with the primary block in its scope. */
struct bp_bib_sign {
	const uint8_t *key; /* borrowed */
	size_t key_len;
	uint64_t sha_variant; /* 5 HMAC 256/256, 6 384/384, 7 512/512 */
	const char *source;   /* the security source EID */
};

/*
 * One ACME Node ID Validation bundle (RFC 9891 §4.2 challenge, §4.3
 * response): the primary block fields and the administrative record.
 */
struct bp_acme {
	uint64_t flags;         /* bundle processing control flags */
	enum bp_crc crc;        /* CRC type of the primary block */
	char dest[BP_MAX_EID];  /* destination EID, URI text */
	char src[BP_MAX_EID];   /* source node ID, URI text */
	uint64_t created_ms;    /* creation time, ms since 2000-01-01 */
	uint64_t seq;           /* creation sequence number */
	uint64_t lifetime_ms;   /* bundle lifetime */
	uint64_t admin_type;    /* administrative record type code */
	const uint8_t *id_chal; /* key 1 (decode: into the buffer) */
	size_t id_chal_len;
	const uint8_t *token; /* key 2: token-bundle */
	size_t token_len;
	int64_t algs[BP_MAX_ALGS]; /* key 4 (challenge): alg-list */
	size_t n_algs;
	int has_digest;        /* key 3 (response) present */
	int digest_alg_is_int; /* the alg is an integer (not a tstr) */
	int64_t digest_alg;
	const uint8_t *digest;
	size_t digest_len;
	/* decode: the primary block's bytes and the canonical blocks */
	const uint8_t *primary;
	size_t primary_len;
	struct bp_block blocks[BP_MAX_BLOCKS];
	size_t n_blocks;
	/* encode: add a BIB when not NULL (borrowed) */
	const struct bp_bib_sign *sign;
};

/*
 * Encodes b (borrowed; dest/src must be dtn:// or ipn: URIs) as a bundle
 * (RFC 9171 §4.1: an indefinite-length array of the primary block, CRC
 * b->crc, and the payload block holding [admin_type, {1: id-chal, 2:
 * token-bundle, 4: alg-list or 3: [alg, digest]}], CRC-32C) into out (cap
 * bytes). Returns the length, or 0 when it does not fit or an EID cannot
 * be encoded.
 */
size_t bp_encode_acme(const struct bp_acme *b, uint8_t *out, size_t cap);

/*
 * Decodes the bundle buf (len bytes, borrowed; b's pointers point into
 * it) into *b: version 7, a primary block of 8-11 items whose CRC (when
 * present) is checked, canonical blocks (CRCs checked, extension blocks
 * skipped) ending with the payload block, the payload parsed as an ACME
 * administrative record when the admin-record flag is set. Definite
 * lengths inside blocks, no tags or floats, depth and item counts
 * bounded, nothing after the bundle. 0, or -1 with the reason in err.
 */
int bp_decode_acme(const uint8_t *buf, size_t len, struct bp_acme *b, char *err,
    size_t errlen);

/* ---------------- BPSec (RFC 9172) BIB-HMAC-SHA2 (RFC 9173 §3) ---------------- */

#define BIB_CTX_HMAC_SHA2 1
#define BIB_MAX_TARGETS 4
/* RFC 9173 §3.3.3 integrity scope flags */
#define BIB_SCOPE_PRIMARY 0x1u
#define BIB_SCOPE_TARGET_HDR 0x2u
#define BIB_SCOPE_SEC_HDR 0x4u

/* A decoded Abstract Security Block (RFC 9172 §3.6) of a BIB. */
struct bp_bib {
	uint64_t targets[BIB_MAX_TARGETS];
	size_t n_targets;
	uint64_t ctx_id;
	char source[BP_MAX_EID];
	/* BIB-HMAC-SHA2 parameters (RFC 9173 §3.3), defaults applied */
	uint64_t sha_variant; /* 5, 6 (default) or 7 */
	uint64_t scope;       /* default 7 */
	int wrapped_key;      /* parameter 2 present */
	/* result 1, the expected HMAC, per target (in target order) */
	const uint8_t *hmac[BIB_MAX_TARGETS];
	size_t hmac_len[BIB_MAX_TARGETS];
};

/*
 * Decodes the ASB asb (len bytes, the BIB's block-type-specific data
 * without its byte string head; borrowed, bib's pointers point into it):
 * the CBOR sequence of targets, context id, flags, source, parameters
 * (when flag 1), results, one result set per target. For context 1 the
 * parameters and results are read as RFC 9173 §3.3/§3.4 define them (a
 * result set without result 1 is refused); other contexts' are skipped.
 * 0, or -1 with the reason in err.
 */
int bp_bib_decode(const uint8_t *asb, size_t len, struct bp_bib *bib,
    char *err, size_t errlen);

/*
 * The Integrity-Protected Plaintext of RFC 9173 §3.7 into out (cap
 * bytes): scope flags (unassigned bits zeroed), the primary block (bit
 * 0), the target's type, number and flags (bit 1), the security block's
 * (bit 2), then the target's data as a CBOR byte string (the primary
 * block, wrapped in a byte string head, when target is NULL). All
 * borrowed. The length, or 0 when it does not fit.
 */
size_t bp_bib_ippt(uint64_t scope, const uint8_t *primary,
    size_t primary_len, const struct bp_block *target,
    const struct bp_block *sec, uint8_t *out, size_t cap);

/*
 * HMAC of RFC 9173 §3.3.2 sha_variant (5, 6, 7) over n bytes into
 * out[64] with OpenSSL. Its length, or 0 for an unknown variant.
 */
unsigned bp_bib_hmac(uint64_t sha_variant, const uint8_t *key,
    size_t key_len, const uint8_t *d, size_t n, uint8_t out[64]);

/*
 * Checks every target of the BIB block bib_blk (decoded as *bib) of the
 * decoded bundle b against key: each target exists and its HMAC matches
 * (constant time). All borrowed. 0, or -1 with the reason in err.
 */
int bp_bib_verify(const struct bp_acme *b, const struct bp_block *bib_blk,
    const struct bp_bib *bib, const uint8_t *key, size_t key_len, char *err,
    size_t errlen);

/* RFC 9171 §4.2.1: CRC-16 X.25 and CRC-32C (Castagnoli) of n bytes. */
uint16_t bp_crc16(const uint8_t *d, size_t n);
uint32_t bp_crc32c(const uint8_t *d, size_t n);

/* ---------------- TCPCLv4 (RFC 9174) framing ---------------- */

enum tcpcl_type {
	TCPCL_XFER_SEGMENT = 0x01,
	TCPCL_XFER_ACK = 0x02,
	TCPCL_XFER_REFUSE = 0x03,
	TCPCL_KEEPALIVE = 0x04,
	TCPCL_SESS_TERM = 0x05,
	TCPCL_MSG_REJECT = 0x06,
	TCPCL_SESS_INIT = 0x07,
};

#define TCPCL_FLAG_END 0x01u
#define TCPCL_FLAG_START 0x02u
#define TCPCL_CONTACT_LEN 6

/* One parsed TCPCL message; pointers into the caller's buffer. */
struct tcpcl_msg {
	enum tcpcl_type type;
	uint8_t flags;       /* XFER_SEGMENT/ACK, SESS_TERM */
	uint8_t reason;      /* XFER_REFUSE, SESS_TERM, MSG_REJECT */
	uint64_t xfer_id;    /* XFER_* */
	uint64_t length;     /* XFER_ACK acknowledged length */
	const uint8_t *data; /* XFER_SEGMENT data, SESS_INIT node ID */
	size_t data_len;
	uint16_t keepalive; /* SESS_INIT */
	uint64_t seg_mru, xfer_mru;
};

/*
 * The peer's contact header at buf: TCPCL_CONTACT_LEN when complete and
 * valid ("dtn!", version 4), 0 when more bytes are needed, -1 when not a
 * TCPCLv4 contact header.
 */
int tcpcl_contact_parse(const uint8_t *buf, size_t len);
/* RFC 9174 §4.2 contact header flag: this entity can use TLS. */
#define TCPCL_CAN_TLS 0x01u
/* Writes this side's contact header to out[6]; flags TCPCL_CAN_TLS or 0. */
void tcpcl_contact_encode(uint8_t out[TCPCL_CONTACT_LEN], uint8_t flags);

/*
 * One message at buf (len bytes): the bytes it takes (> 0) with *m
 * filled, 0 when more bytes are needed, -1 when malformed or larger than
 * max_data (a segment's data, a node ID) with the reason in err.
 */
long tcpcl_msg_parse(const uint8_t *buf, size_t len, size_t max_data,
    struct tcpcl_msg *m, char *err, size_t errlen);

/*
 * Encoders into out (cap bytes): the length written, or 0 when it does
 * not fit. SESS_INIT carries node_id (borrowed) and no extension items;
 * XFER_SEGMENT carries data (no transfer extension items).
 */
size_t tcpcl_sess_init_encode(uint8_t *out, size_t cap, uint16_t keepalive,
    uint64_t seg_mru, uint64_t xfer_mru, const char *node_id);
size_t tcpcl_xfer_segment_encode(uint8_t *out, size_t cap, uint8_t flags,
    uint64_t xfer_id, const uint8_t *data, size_t len);
size_t tcpcl_xfer_ack_encode(
    uint8_t *out, size_t cap, uint8_t flags, uint64_t xfer_id, uint64_t acked);
size_t tcpcl_sess_term_encode(
    uint8_t *out, size_t cap, uint8_t flags, uint8_t reason);

#endif
