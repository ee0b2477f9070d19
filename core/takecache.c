/*
 * takecache.c - a small cache of JSON objects, each handed out at most
 * once (take), for "read your own write" on the hot path (issue 18): the
 * WFE keeps the authzs of a newOrder answer and the certificate of a
 * finalize answer for the client's next GET, the RA keeps the orders it
 * created for their finalize. A fixed array of slots indexed by the key's
 * hash (a newer entry replaces an older one in its slot), one mutex; an
 * entry lives ttl at most. Holders keep only what a reader may be shown
 * for that long (docs/performance.md "Fifth session").
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#define TAKECACHE_KEY_MAX 64

struct take_slot {
	char key[TAKECACHE_KEY_MAX + 1]; /* "" = empty */
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

static struct take_slot *
slot_of(struct takecache *c, const char *key)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (; *key != '\0'; key++)
		h = (h ^ (unsigned char)*key) * 1099511628211ULL;
	return &c->slots[h % c->nslots];
}

/* See core.h. */
void
takecache_put(struct takecache *c, const char *key, json_t *obj)
{
	struct take_slot *s;
	json_t *old = NULL;

	if (c == NULL || key == NULL || strlen(key) > TAKECACHE_KEY_MAX ||
	    obj == NULL) {
		json_decref(obj);
		return;
	}
	pthread_mutex_lock(&c->mu);
	s = slot_of(c, key);
	old = s->obj;
	strcpy(s->key, key);
	s->obj = obj;
	s->expires_ms = time_mono_ms() + c->ttl_ms;
	pthread_mutex_unlock(&c->mu);
	json_decref(old);
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
	s = slot_of(c, key);
	if (s->obj != NULL && strcmp(s->key, key) == 0) {
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
