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

TH_TEST(test_taken_once_by_its_key)
{
	struct takecache *c = takecache_new(64, 60000);
	json_t *o;

	TH_CHECK(t, c != NULL);
	takecache_put(c, "a1", json_pack("{s:i}", "id", 1));
	takecache_put(c, "c0a1", json_pack("{s:i}", "id", 2));
	TH_CHECK(t, takecache_take(c, "a2") == NULL);
	o = takecache_take(c, "a1");
	TH_CHECK(
	    t, o != NULL && json_integer_value(json_object_get(o, "id")) == 1);
	json_decref(o);
	TH_CHECK(t, takecache_take(c, "a1") == NULL); /* read once */
	o = takecache_take(c, "c0a1");
	TH_CHECK(
	    t, o != NULL && json_integer_value(json_object_get(o, "id")) == 2);
	json_decref(o);
	takecache_free(c);
}

TH_TEST(test_one_slot_keeps_the_newer_key)
{
	struct takecache *c = takecache_new(1, 60000);
	json_t *o;

	takecache_put(c, "o1", json_pack("{s:i}", "id", 1));
	takecache_put(c, "o2", json_pack("{s:i}", "id", 2));
	TH_CHECK(t, takecache_take(c, "o1") == NULL);
	o = takecache_take(c, "o2");
	TH_CHECK(
	    t, o != NULL && json_integer_value(json_object_get(o, "id")) == 2);
	json_decref(o);
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
