/*
 * takecache.c - a small cache of JSON objects under text keys: a fixed
 * array of slots (a newer entry replaces an older one in its slot), one
 * mutex, each entry living ttl at most.
 *
 * Two ways to read it:
 *  - take: the entry is handed out at most once, for "read your own write"
 *    on the hot path (issue 18): the WFE keeps the authzs of a newOrder
 *    answer and the certificate of a finalize answer for the client's next
 *    GET, the RA keeps the orders it created for their finalize. Holders
 *    keep only what a reader may be shown for that long
 *    (docs/performance.md "Fifth session").
 *  - copy: the entry stays and readers get copies; each slot has a
 *    generation that takecache_forget bumps, so a load that started
 *    before a change cannot put the old object back (takecache_put_gen).
 *    The WFE's account cache (wfe/acctcache.c) works this way.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

struct take_slot {
	char key[TAKECACHE_KEY_MAX + 1]; /* "" = empty */
	uint64_t gen;                    /* bumped by takecache_forget */
	int64_t expires_ms;              /* monotonic */
	json_t *obj;                     /* owned */
};

struct takecache {
	pthread_mutex_t mu;
	struct take_slot *slots;
	size_t nslots;
	int64_t ttl_ms;
};

/* See core.h. */
struct takecache *
takecache_new(size_t slots, int64_t ttl_ms)
{
	struct takecache *c;

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

/* See core.h. */
void
takecache_free(struct takecache *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->nslots; i++)
		json_decref(c->slots[i].obj);
	free(c->slots);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/* See core.h. */
uint64_t
takecache_hash(const char *key)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *key != '\0'; key++)
		h = (h ^ (unsigned char)*key) * 1099511628211ULL;
	return h;
}

/* The slot of an entry that is under key (locked), else NULL. */
static struct take_slot *
slot_with(struct takecache *c, uint64_t hash, const char *key)
{
	struct take_slot *s = &c->slots[hash % c->nslots];

	return s->obj != NULL && strcmp(s->key, key) == 0 ? s : NULL;
}

/* See core.h. */
void
takecache_put_gen(struct takecache *c, uint64_t hash, const char *key,
    json_t *obj, const uint64_t *gen, int64_t now_ms)
{
	struct take_slot *s;

	if (c == NULL || key == NULL || strlen(key) > TAKECACHE_KEY_MAX ||
	    obj == NULL) {
		json_decref(obj);
		return;
	}
	pthread_mutex_lock(&c->mu);
	s = &c->slots[hash % c->nslots];
	if (gen == NULL || s->gen == *gen) {
		json_t *old = s->obj;

		strcpy(s->key, key);
		s->obj = obj;
		s->expires_ms = now_ms + c->ttl_ms;
		obj = old;
	}
	pthread_mutex_unlock(&c->mu);
	json_decref(obj); /* the one replaced, or the one refused */
}

/* See core.h. */
void
takecache_put(struct takecache *c, const char *key, json_t *obj)
{
	takecache_put_gen(
	    c, key != NULL ? takecache_hash(key) : 0, key, obj, NULL, time_mono_ms());
}

/* See core.h. */
json_t *
takecache_take(struct takecache *c, const char *key)
{
	struct take_slot *s;
	json_t *obj = NULL;

	if (c == NULL || key == NULL)
		return NULL;
	pthread_mutex_lock(&c->mu);
	if ((s = slot_with(c, takecache_hash(key), key)) != NULL) {
		obj = s->obj;
		s->obj = NULL;
		s->key[0] = '\0';
		if (time_mono_ms() >= s->expires_ms) {
			json_decref(obj);
			obj = NULL;
		}
	}
	pthread_mutex_unlock(&c->mu);
	return obj;
}

/* See core.h. */
json_t *
takecache_copy(struct takecache *c, uint64_t hash, const char *key,
    int64_t now_ms, uint64_t *gen)
{
	struct take_slot *s;
	json_t *copy = NULL;

	*gen = 0;
	if (c == NULL || key == NULL)
		return NULL;
	pthread_mutex_lock(&c->mu);
	*gen = c->slots[hash % c->nslots].gen;
	if ((s = slot_with(c, hash, key)) != NULL && now_ms < s->expires_ms)
		copy = json_deep_copy(s->obj);
	pthread_mutex_unlock(&c->mu);
	return copy;
}

/* See core.h. */
void
takecache_forget(struct takecache *c, uint64_t hash, const char *key)
{
	struct take_slot *s;
	json_t *old = NULL;

	if (c == NULL || key == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	c->slots[hash % c->nslots].gen++;
	if ((s = slot_with(c, hash, key)) != NULL) {
		old = s->obj;
		s->obj = NULL;
		s->key[0] = '\0';
	}
	pthread_mutex_unlock(&c->mu);
	json_decref(old);
}
