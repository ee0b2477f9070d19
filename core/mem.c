/* mem.c - allocation helpers that abort on out-of-memory. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static void
oom(void)
{
	static const char msg[] = "anvil: out of memory\n";
	fwrite(msg, 1, sizeof(msg) - 1, stderr);
	abort();
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		oom();
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		oom();
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		oom();
	return q;
}

char *
xstrdup(const char *s)
{
	char *p = strdup(s ? s : "");

	if (p == NULL)
		oom();
	return p;
}

char *
xstrndup(const char *s, size_t n)
{
	char *p = strndup(s ? s : "", n);

	if (p == NULL)
		oom();
	return p;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p = NULL;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (r < 0)
		oom();
	return p;
}

static void
no_lock(const char *what)
{
	fprintf(stderr, "anvil: %s failed: out of resources\n", what);
	abort();
}

void
xmutex_init(pthread_mutex_t *m)
{
	if (pthread_mutex_init(m, NULL) != 0)
		no_lock("pthread_mutex_init");
}

void
xcond_init(pthread_cond_t *c)
{
	if (pthread_cond_init(c, NULL) != 0)
		no_lock("pthread_cond_init");
}

void
xrwlock_init(pthread_rwlock_t *l)
{
	if (pthread_rwlock_init(l, NULL) != 0)
		no_lock("pthread_rwlock_init");
}
