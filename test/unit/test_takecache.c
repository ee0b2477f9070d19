/* LIBS: core */
/*
 * test_takecache.c - core/takecache.c: an object is handed out once, to
 * the reader of its own key, never after its ttl; a newer key replaces an
 * older one in its slot; a key too long or a cache that is off keeps
 * nothing (and never leaks what it was given: make asan).
 */
#include <time.h>

#include "core/core.h"
#include "test/unit/harness.h"

/* Puts {"id": id} under key (c takes the object). */
static void
put_id(struct takecache *c, const char *key, int id)
{
	takecache_put(c, key, json_pack("{s:i}", "id", id));
}

/* 1 if taking key from c hands out the object {"id": id}. */
static int
takes_id(struct takecache *c, const char *key, int id)
{
	json_t *o = takecache_take(c, key);
	int ok =
	    o != NULL && json_integer_value(json_object_get(o, "id")) == id;

	json_decref(o);
	return ok;
}

TH_TEST(test_taken_once_by_its_key)
{
	struct takecache *c = takecache_new(64, 60000);

	TH_CHECK(t, c != NULL);
	put_id(c, "a1", 1);
	put_id(c, "c0a1", 2);
	TH_CHECK(t, takecache_take(c, "a2") == NULL);
	TH_CHECK(t, takes_id(c, "a1", 1));
	TH_CHECK(t, takecache_take(c, "a1") == NULL); /* read once */
	TH_CHECK(t, takes_id(c, "c0a1", 2));
	takecache_free(c);
}

TH_TEST(test_one_slot_keeps_the_newer_key)
{
	struct takecache *c = takecache_new(1, 60000);

	put_id(c, "o1", 1);
	put_id(c, "o2", 2);
	TH_CHECK(t, takecache_take(c, "o1") == NULL);
	TH_CHECK(t, takes_id(c, "o2", 2));
	takecache_free(c);
}

TH_TEST(test_nothing_after_the_ttl)
{
	struct takecache *c = takecache_new(8, 20);
	struct timespec ts = {0, 40 * 1000000L};

	takecache_put(c, "a1", json_object());
	nanosleep(&ts, NULL);
	TH_CHECK(t, takecache_take(c, "a1") == NULL);
	takecache_free(c);
}

TH_TEST(test_off_or_too_long_keeps_nothing)
{
	struct takecache *c = takecache_new(8, 60000);
	char key[80];

	TH_CHECK(t, takecache_new(0, 1000) == NULL);
	TH_CHECK(t, takecache_new(8, 0) == NULL);
	takecache_put(NULL, "a1", json_object()); /* freed, not kept */
	TH_CHECK(t, takecache_take(NULL, "a1") == NULL);
	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	takecache_put(c, key, json_object());
	TH_CHECK(t, takecache_take(c, key) == NULL);
	takecache_free(c);
}

TH_MAIN(log_init("test_takecache", LOG_LEVEL_ERROR))
