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
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "wfe/wfe_int.h"

struct wfe_acct_cache {
	struct takecache *slots; /* accounts never handed out (copies are) */
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
	return c;
}

void
wfe_acct_cache_free(struct wfe_acct_cache *c)
{
	if (c == NULL)
		return;
	takecache_free(c->slots);
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
