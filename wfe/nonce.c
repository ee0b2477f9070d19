/*
 * nonce.c - replay nonces with bounded memory (see wfe_int.h and
 * docs/scaling.md "WFE").
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "wfe/wfe_int.h"

#define NONCE_RAW_LEN 28 /* 8 counter + 4 time + 16 tag */
#define NONCE_TAG_LEN 16
#define NONCE_B64_LEN 38
#define NONCE_MAX_PREFIX 8

struct wfe_nonce {
	pthread_mutex_t lock;
	char prefix[NONCE_MAX_PREFIX + 1];
	size_t prefix_len;
	uint8_t key[32];
	size_t keylen;
	/* Random per instance (process), in every tag: two instances that
	 * share nonce.key_file and a prefix still never accept each other's
	 * nonces, whatever their counters (their tag spaces are disjoint). */
	uint8_t instance[16];
	uint64_t window;
	int64_t lifetime_ms;
	uint64_t next;  /* next counter to hand out */
	uint64_t first; /* first counter of this process */
	uint8_t *bits;  /* window bits: 1 = issued and unused */
};

static const char *const result_names[WFE_NONCE__MAX] = {
    "ok",
    "malformed",
    "wrong_prefix",
    "bad_mac",
    "expired",
    "evicted",
    "unknown",
};

const char *
wfe_nonce_result_name(enum wfe_nonce_result r)
{
	if ((unsigned)r >= WFE_NONCE__MAX)
		return "?";
	return result_names[r];
}

static int
prefix_ok(const char *p)
{
	size_t i, n = strlen(p);

	if (n == 0 || n > NONCE_MAX_PREFIX)
		return 0;
	for (i = 0; i < n; i++) {
		char c = p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') || c == '-' || c == '_'))
			return 0;
	}
	return 1;
}

struct wfe_nonce *
wfe_nonce_new(const char *prefix, const uint8_t *key, size_t keylen,
    uint64_t window, int64_t lifetime_ms)
{
	struct wfe_nonce *ns = NULL;

	if (prefix == NULL || !prefix_ok(prefix) || window < 64 ||
	    window > (1u << 30) || lifetime_ms <= 0 ||
	    (key != NULL && keylen < 16))
		return NULL;
	ns = xcalloc(1, sizeof(*ns));
	if (pthread_mutex_init(&ns->lock, NULL) != 0) {
		free(ns);
		return NULL;
	}
	strcpy(ns->prefix, prefix);
	ns->prefix_len = strlen(prefix);
	if (key != NULL) {
		/* Long keys are hashed down: HMAC would do the same. */
		if (keylen > sizeof(ns->key)) {
			sha256(key, keylen, ns->key);
			ns->keylen = 32;
		} else {
			memcpy(ns->key, key, keylen);
			ns->keylen = keylen;
		}
	} else {
		random_bytes(ns->key, sizeof(ns->key));
		ns->keylen = sizeof(ns->key);
	}
	random_bytes(ns->instance, sizeof(ns->instance));
	ns->window = window;
	ns->lifetime_ms = lifetime_ms;
	ns->next = (uint64_t)time_now_ms() * 1000u;
	ns->first = ns->next;
	ns->bits = xcalloc((size_t)(window + 7) / 8, 1);
	return ns;
}

void
wfe_nonce_free(struct wfe_nonce *ns)
{
	if (ns == NULL)
		return;
	OPENSSL_cleanse(ns->key, sizeof(ns->key));
	OPENSSL_cleanse(ns->instance, sizeof(ns->instance));
	pthread_mutex_destroy(&ns->lock);
	free(ns->bits);
	free(ns);
}

static void
nonce_tag(const struct wfe_nonce *ns, const uint8_t raw[12],
    uint8_t tag[NONCE_TAG_LEN])
{
	uint8_t msg[NONCE_MAX_PREFIX + sizeof(ns->instance) + 12];
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	size_t n = 0;

	memcpy(msg, ns->prefix, ns->prefix_len);
	n += ns->prefix_len;
	memcpy(msg + n, ns->instance, sizeof(ns->instance));
	n += sizeof(ns->instance);
	memcpy(msg + n, raw, 12);
	n += 12;
	if (HMAC(EVP_sha256(), ns->key, (int)ns->keylen, msg, n, md, &mdlen) ==
		NULL ||
	    mdlen < NONCE_TAG_LEN)
		abort(); /* the CSPRNG/HMAC failing is not recoverable */
	memcpy(tag, md, NONCE_TAG_LEN);
}

static void
put_be(uint8_t *p, uint64_t v, int n)
{
	int i;

	for (i = n - 1; i >= 0; i--) {
		p[i] = (uint8_t)(v & 0xff);
		v >>= 8;
	}
}

static uint64_t
get_be(const uint8_t *p, int n)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

char *
wfe_nonce_issue(struct wfe_nonce *ns, int64_t now_ms)
{
	uint8_t raw[NONCE_RAW_LEN];
	uint64_t ctr, slot;
	char *b64 = NULL, *out = NULL;

	pthread_mutex_lock(&ns->lock);
	ctr = ns->next++;
	slot = ctr % ns->window;
	ns->bits[slot / 8] |= (uint8_t)(1u << (slot % 8));
	pthread_mutex_unlock(&ns->lock);

	put_be(raw, ctr, 8);
	put_be(raw + 8, (uint64_t)(now_ms / 1000), 4);
	nonce_tag(ns, raw, raw + 12);
	b64 = b64url_encode(raw, sizeof(raw));
	out = xasprintf("%s%s", ns->prefix, b64);
	free(b64);
	return out;
}

enum wfe_nonce_result
wfe_nonce_redeem(struct wfe_nonce *ns, const char *nonce, int64_t now_ms)
{
	enum wfe_nonce_result res = WFE_NONCE_MALFORMED;
	uint8_t *raw = NULL;
	size_t rawlen = 0, n;
	uint8_t tag[NONCE_TAG_LEN];
	uint64_t ctr, issued_s, slot;
	uint8_t bit;

	if (nonce == NULL)
		goto out;
	n = strlen(nonce);
	if (n < NONCE_B64_LEN + 1 || n > NONCE_B64_LEN + NONCE_MAX_PREFIX)
		goto out;
	if (n != ns->prefix_len + NONCE_B64_LEN ||
	    memcmp(nonce, ns->prefix, ns->prefix_len) != 0) {
		res = WFE_NONCE_WRONG_PREFIX;
		goto out;
	}
	if (b64url_decode(
		nonce + ns->prefix_len, NONCE_B64_LEN, &raw, &rawlen) != 0 ||
	    rawlen != NONCE_RAW_LEN)
		goto out;
	nonce_tag(ns, raw, tag);
	if (CRYPTO_memcmp(tag, raw + 12, NONCE_TAG_LEN) != 0) {
		res = WFE_NONCE_BAD_MAC;
		goto out;
	}
	ctr = get_be(raw, 8);
	issued_s = get_be(raw + 8, 4);
	if ((int64_t)issued_s * 1000 + ns->lifetime_ms < now_ms) {
		res = WFE_NONCE_EXPIRED;
		goto out;
	}
	pthread_mutex_lock(&ns->lock);
	if (ctr >= ns->next || ctr < ns->first) {
		res = WFE_NONCE_UNKNOWN;
	} else if (ns->next - ctr > ns->window) {
		res = WFE_NONCE_EVICTED;
	} else {
		slot = ctr % ns->window;
		bit = (uint8_t)(1u << (slot % 8));
		if (ns->bits[slot / 8] & bit) {
			ns->bits[slot / 8] &= (uint8_t)~bit;
			res = WFE_NONCE_OK;
		} else {
			res = WFE_NONCE_UNKNOWN;
		}
	}
	pthread_mutex_unlock(&ns->lock);
out:
	free(raw);
	return res;
}
