/*
 * acctcache.c - the WFE's cache of accounts for the JWS "kid" lookup
 * (docs/config/wfe.md, account_cache). Without it every authenticated
 * request costs an sa.get_account round trip.
 *
 * A fixed array of slots indexed by account id (a newer entry replaces an
 * older one in the same slot), one mutex. An entry lives `ttl` at most, so
 * a change made through another WFE instance (or anvil-admin) is seen here
 * within ttl. A change made through this instance calls
 * wfe_acct_cache_forget, which also bumps the slot's generation: a lookup
 * that was already on its way to the SA before the change cannot put the
 * old account back (wfe_acct_cache_put compares generations).
 */
#include <pthread.h>
#include <stdlib.h>

#include "wfe/wfe_int.h"

struct acct_slot {
	int64_t id; /* 0 = empty */
	uint64_t gen;
	int64_t expires_ms; /* monotonic */
	json_t *acct;       /* owned, never handed out (copies are) */
};

struct wfe_acct_cache {
	pthread_mutex_t mu;
	struct acct_slot *slots;
	size_t nslots;
	int64_t ttl_ms;
};

struct wfe_acct_cache *
wfe_acct_cache_new(size_t slots, int64_t ttl_ms)
{
	struct wfe_acct_cache *c;

	if (slots == 0 || ttl_ms <= 0)
		return NULL;
	c = xcalloc(1, sizeof(*c));
	if (pthread_mutex_init(&c->mu, NULL) != 0) {
		free(c);
		return NULL;
	}
	c->slots = xcalloc(slots, sizeof(*c->slots));
	c->nslots = slots;
	c->ttl_ms = ttl_ms;
	return c;
}

void
wfe_acct_cache_free(struct wfe_acct_cache *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->nslots; i++)
		json_decref(c->slots[i].acct);
	free(c->slots);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

static struct acct_slot *
slot_of(struct wfe_acct_cache *c, int64_t id)
{
	return &c->slots[(uint64_t)id % c->nslots];
}

json_t *
wfe_acct_cache_get(
    struct wfe_acct_cache *c, int64_t id, int64_t now_ms, uint64_t *gen)
{
	struct acct_slot *s;
	json_t *copy = NULL;

	*gen = 0;
	if (c == NULL)
		return NULL;
	pthread_mutex_lock(&c->mu);
	s = slot_of(c, id);
	*gen = s->gen;
	if (s->id == id && s->acct != NULL && now_ms < s->expires_ms)
		copy = json_deep_copy(s->acct);
	pthread_mutex_unlock(&c->mu);
	return copy;
}

void
wfe_acct_cache_put(struct wfe_acct_cache *c, int64_t id, uint64_t gen,
    const json_t *acct, int64_t now_ms)
{
	struct acct_slot *s;
	json_t *copy, *old = NULL;

	if (c == NULL || acct == NULL)
		return;
	copy = json_deep_copy(acct);
	if (copy == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	s = slot_of(c, id);
	if (s->gen == gen) {
		old = s->acct;
		s->id = id;
		s->acct = copy;
		s->expires_ms = now_ms + c->ttl_ms;
		copy = NULL;
	}
	pthread_mutex_unlock(&c->mu);
	json_decref(old);
	json_decref(copy);
}

void
wfe_acct_cache_forget(struct wfe_acct_cache *c, int64_t id)
{
	struct acct_slot *s;
	json_t *old = NULL;

	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	s = slot_of(c, id);
	s->gen++;
	if (s->id == id) {
		old = s->acct;
		s->acct = NULL;
		s->id = 0;
	}
	pthread_mutex_unlock(&c->mu);
	json_decref(old);
}
