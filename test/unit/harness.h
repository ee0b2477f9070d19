/*
 * harness.h - a tiny unit test harness that prints its totals.
 *
 *   TH_TEST(test_foo)
 *   {
 *           TH_CHECK(t, 1 + 1 == 2);
 *   }
 *
 *   TH_MAIN(log_init("test_foo", LOG_LEVEL_ERROR))
 *
 * TH_TEST defines a test and registers it: th_run_tests runs every test of
 * the program in source order, so a new test needs no line in main(). A
 * main() with more set-up than one statement calls th_run_tests(&t) itself.
 * TH_TEST_IN(group, fn) puts a test in another group (th_run_group), for a
 * main() that must do something between groups or run one only when its
 * fixture came up. TH_RUN(t, fn) runs one function as a test by hand.
 *
 * Each test passes when no TH_CHECK in it failed. The last line printed is
 * "N passed, N failed" (scripts/run-tests.sh sums them).
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

/* Runs fn as one test and counts it (prints ok/not ok/skip and name). */
static inline void
th_run_one(struct th *t, void (*fn)(struct th *), const char *name)
{
	t->cur_failed = 0;
	t->cur_skipped = 0;
	fn(t);
	if (t->cur_failed) {
		t->failed++;
		fprintf(stderr, "not ok - %s\n", name);
	} else if (t->cur_skipped) {
		t->skipped++;
		fprintf(stderr, "skip   - %s\n", name);
	} else {
		t->passed++;
		fprintf(stderr, "ok     - %s\n", name);
	}
}

#define TH_RUN(t, fn) th_run_one((t), (fn), #fn)

/* One registered test. TH_TEST puts a pointer to it in the th_cases
 * section: pointers, explicitly aligned, so that the section is an array the
 * compiler cannot pad differently. */
struct th_case {
	void (*fn)(struct th *);
	const char *name;
	int group;
	int line;
};

#define TH_TEST_IN(grp, fn)                                                    \
	static void fn(struct th *t);                                          \
	static const struct th_case th_case_##fn = {fn, #fn, (grp), __LINE__}; \
	static const struct th_case *const th_reg_##fn                         \
	    __attribute__((used, section("th_cases"),                          \
		aligned(sizeof(void *)))) = &th_case_##fn;                     \
	static void fn(struct th *t)

#define TH_TEST(fn) TH_TEST_IN(0, fn)

/* The linker's bounds of the th_cases section (weak: a program may have
 * no registered test). */
extern const struct th_case *const __start_th_cases[] __attribute__((weak));
extern const struct th_case *const __stop_th_cases[] __attribute__((weak));

/* Runs the registered tests of group in the order of their source lines. */
static inline void
th_run_group(struct th *t, int group)
{
	const struct th_case *const *c;
	const struct th_case *next;
	int last = 0;

	for (;;) {
		next = NULL;
		for (c = __start_th_cases; c < __stop_th_cases; c++)
			if ((*c)->group == group && (*c)->line > last &&
			    (next == NULL || (*c)->line < next->line))
				next = *c;
		if (next == NULL)
			return;
		last = next->line;
		th_run_one(t, next->fn, next->name);
	}
}

/* Runs the registered tests of group 0 (every TH_TEST). */
static inline void
th_run_tests(struct th *t)
{
	th_run_group(t, 0);
}

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

/*
 * The whole main() of a test program whose only set-up is one statement
 * (usually log_init): runs every TH_TEST and prints the totals.
 *   TH_MAIN(log_init("test_foo", LOG_LEVEL_ERROR))
 */
#define TH_MAIN(setup)                                                         \
	int main(void)                                                         \
	{                                                                      \
		struct th t = TH_INIT;                                         \
		setup;                                                         \
		th_run_tests(&t);                                              \
		return th_done(&t);                                            \
	}

#endif
