/*
 * harness.h - a tiny unit test harness that prints its totals.
 *
 *   static void test_foo(struct th *t) { TH_CHECK(t, 1 + 1 == 2); }
 *   int main(void) { struct th t = TH_INIT; TH_RUN(&t, test_foo);
 *                    return th_done(&t); }
 *
 * Each TH_RUN is one test: it passes when no TH_CHECK in it failed. The last
 * line printed is "N passed, N failed" (scripts/run-tests.sh sums them).
 */
#ifndef ANVIL_TEST_HARNESS_H
#define ANVIL_TEST_HARNESS_H

#include <stdio.h>
#include <string.h>

struct th {
	int passed;
	int failed;
	int skipped;
	int cur_failed;
	int cur_skipped;
};

#define TH_INIT                                                                \
	{                                                                      \
		0, 0, 0, 0, 0                                                  \
	}

#define TH_CHECK(t, cond)                                                      \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "  FAIL %s:%d: %s\n", __FILE__,        \
			    __LINE__, #cond);                                  \
			(t)->cur_failed++;                                     \
		}                                                              \
	} while (0)

#define TH_CHECK_STR(t, a, b)                                                  \
	do {                                                                   \
		const char *th_a_ = (a), *th_b_ = (b);                         \
		if (th_a_ == NULL || th_b_ == NULL ||                          \
		    strcmp(th_a_, th_b_) != 0) {                               \
			fprintf(stderr,                                        \
			    "  FAIL %s:%d: %s == %s (\"%s\" vs "               \
			    "\"%s\")\n",                                       \
			    __FILE__, __LINE__, #a, #b,                        \
			    th_a_ ? th_a_ : "(null)",                          \
			    th_b_ ? th_b_ : "(null)");                         \
			(t)->cur_failed++;                                     \
		}                                                              \
	} while (0)

/* Marks the running test skipped (with a reason) and returns from it. */
#define TH_SKIP(t, why)                                                        \
	do {                                                                   \
		fprintf(stderr, "  SKIP %s\n", (why));                         \
		(t)->cur_skipped = 1;                                          \
		return;                                                        \
	} while (0)

#define TH_RUN(t, fn)                                                          \
	do {                                                                   \
		(t)->cur_failed = 0;                                           \
		(t)->cur_skipped = 0;                                          \
		fn(t);                                                         \
		if ((t)->cur_failed) {                                         \
			(t)->failed++;                                         \
			fprintf(stderr, "not ok - %s\n", #fn);                 \
		} else if ((t)->cur_skipped) {                                 \
			(t)->skipped++;                                        \
			fprintf(stderr, "skip   - %s\n", #fn);                 \
		} else {                                                       \
			(t)->passed++;                                         \
			fprintf(stderr, "ok     - %s\n", #fn);                 \
		}                                                              \
	} while (0)

static inline int
th_done(struct th *t)
{
	fflush(stderr);
	if (t->skipped)
		printf("%d passed, %d failed, %d skipped\n", t->passed,
		    t->failed, t->skipped);
	else
		printf("%d passed, %d failed\n", t->passed, t->failed);
	fflush(stdout);
	return t->failed ? 1 : 0;
}

#endif
