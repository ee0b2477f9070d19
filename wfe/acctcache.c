/*
 * acctcache.c - the WFE's cache of accounts for the JWS "kid" lookup
 * (docs/config/wfe.md, account_cache). Without it every authenticated
 * request costs an sa.get_account round trip.
 *
 * A core takecache read by copy: slots indexed by account id (a newer
 * entry replaces an older one in the same slot), one mutex. An entry lives
 * `ttl` at most, so a change made through another WFE instance (or
 * anvil-admin) is seen here within ttl. A change made through this
 * instance calls wfe_acct_cache_forget, which also bumps the slot's
 * generation: a lookup that was already on its way to the SA before the
 * change cannot put the old account back (wfe_acct_cache_put compares
 * generations).
 *
 * It also keeps the parsed account keys (wfe_acct_cache_key), one per slot
 * keyed by the JWK's JSON text: importing an EC key (EVP_PKEY_fromdata
 * builds its curve group) was a fifth of the WFE's CPU.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wfe/wfe_int.h"

struct wfe_acct_cache {
	struct takecache *slots; /* accounts never handed out (copies are) */
	pthread_mutex_t key_mu;  /* guards keys */
	struct acct_key_slot {
		char *text;      /* the JWK's compact sorted JSON */
		struct jwk *key; /* never handed out (jwk_dup copies are) */
	} *keys;
	size_t nkeys;
};

/* The cache key of account id, in buf. */
static const char *
acct_key(char buf[32], int64_t id)
{
	snprintf(buf, 32, "%" PRId64, id);
	return buf;
}

struct wfe_acct_cache *
wfe_acct_cache_new(size_t slots, int64_t ttl_ms)
{
	struct takecache *t = takecache_new(slots, ttl_ms);
	struct wfe_acct_cache *c;

	if (t == NULL)
		return NULL;
	c = xcalloc(1, sizeof(*c));
	c->slots = t;
	c->nkeys = slots > 0 ? slots : 1;
	c->keys = xcalloc(c->nkeys, sizeof(*c->keys));
	xmutex_init(&c->key_mu);
	return c;
}

void
wfe_acct_cache_free(struct wfe_acct_cache *c)
{
	size_t i;

	if (c == NULL)
		return;
	takecache_free(c->slots);
	for (i = 0; i < c->nkeys; i++) {
		free(c->keys[i].text);
		jwk_free(c->keys[i].key);
	}
	free(c->keys);
	pthread_mutex_destroy(&c->key_mu);
	free(c);
}

json_t *
wfe_acct_cache_get(
    struct wfe_acct_cache *c, int64_t id, int64_t now_ms, uint64_t *gen)
{
	char key[32];

	*gen = 0;
	return c == NULL ? NULL
			 : takecache_copy(c->slots, (uint64_t)id,
			       acct_key(key, id), now_ms, gen);
}

void
wfe_acct_cache_put(struct wfe_acct_cache *c, int64_t id, uint64_t gen,
    const json_t *acct, int64_t now_ms)
{
	char key[32];

	if (c == NULL || acct == NULL)
		return;
	takecache_put_gen(c->slots, (uint64_t)id, acct_key(key, id),
	    json_deep_copy(acct), &gen, now_ms);
}

void
wfe_acct_cache_forget(struct wfe_acct_cache *c, int64_t id)
{
	char key[32];

	if (c != NULL)
		takecache_forget(c->slots, (uint64_t)id, acct_key(key, id));
}

/* See wfe_int.h. */
int
wfe_acct_cache_key(struct wfe_acct_cache *c, const json_t *jwk,
    struct jwk **out, struct problem **prob)
{
	struct jose_policy stored;
	struct acct_key_slot *s;
	struct jwk *keep, *old_key;
	char *text, *old_text;

	/* A stored key passed the policy when the account was made; the
	 * policy may have been tightened since, which must not lock the
	 * account out, so it is re-imported permissively. */
	jose_policy_permissive(&stored);
	*out = NULL;
	if (c == NULL ||
	    (text = json_dumps(jwk, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
		return jwk_parse(jwk, &stored, out, prob);
	s = &c->keys[takecache_hash(text) % c->nkeys];
	pthread_mutex_lock(&c->key_mu);
	if (s->text != NULL && strcmp(s->text, text) == 0)
		*out = jwk_dup(s->key);
	pthread_mutex_unlock(&c->key_mu);
	if (*out != NULL) {
		free(text);
		return 0;
	}
	if (jwk_parse(jwk, &stored, out, prob) != 0) {
		free(text);
		return -1;
	}
	if ((keep = jwk_dup(*out)) == NULL) {
		free(text);
		return 0;
	}
	pthread_mutex_lock(&c->key_mu);
	old_text = s->text; /* the slot's previous key goes */
	old_key = s->key;
	s->text = text;
	s->key = keep;
	pthread_mutex_unlock(&c->key_mu);
	free(old_text);
	jwk_free(old_key);
	return 0;
}
