/* metrics.c - a small thread-safe Prometheus registry. */
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"

enum metric_kind { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

static const double default_buckets[] = {
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
};
#define NBUCKETS (sizeof(default_buckets) / sizeof(default_buckets[0]))

struct series {
	char *labels;
	double value; /* counter/gauge value; histogram sum */
	uint64_t count;
	uint64_t buckets[NBUCKETS];
	struct series *next;
};

struct family {
	char *name;
	char *help;
	enum metric_kind kind;
	struct series *series;
	struct family *next;
};

struct metrics {
	pthread_mutex_t mu;
	struct family *families;
	time_t start;
};

struct metrics *
metrics_new(void)
{
	struct metrics *m = xcalloc(1, sizeof(*m));

	xmutex_init(&m->mu);
	m->start = time(NULL);
	return m;
}

void
metrics_free(struct metrics *m)
{
	struct family *f, *fn;
	struct series *s, *sn;

	if (m == NULL)
		return;
	for (f = m->families; f != NULL; f = fn) {
		fn = f->next;
		for (s = f->series; s != NULL; s = sn) {
			sn = s->next;
			free(s->labels);
			free(s);
		}
		free(f->name);
		free(f->help);
		free(f);
	}
	pthread_mutex_destroy(&m->mu);
	free(m);
}

/* Called with m->mu held. */
static struct series *
series_get(struct metrics *m, const char *name, const char *help,
    enum metric_kind kind, const char *labels)
{
	struct family *f, **fp;
	struct series *s, **sp;

	if (labels == NULL)
		labels = "";
	for (fp = &m->families; (f = *fp) != NULL; fp = &f->next)
		if (strcmp(f->name, name) == 0)
			break;
	if (f == NULL) {
		f = xcalloc(1, sizeof(*f));
		f->name = xstrdup(name);
		f->help = xstrdup(help ? help : name);
		f->kind = kind;
		*fp = f;
	}
	for (sp = &f->series; (s = *sp) != NULL; sp = &s->next)
		if (strcmp(s->labels, labels) == 0)
			return s;
	s = xcalloc(1, sizeof(*s));
	s->labels = xstrdup(labels);
	*sp = s;
	return s;
}

/*
 * Records v into one series under m->mu: sets the value (set != 0) or adds
 * v to it; a histogram also counts v into its buckets. No-op for NULL m.
 */
static void
series_record(struct metrics *m, const char *name, const char *help,
    enum metric_kind kind, const char *labels, double v, int set)
{
	struct series *s;
	size_t i;

	if (m == NULL)
		return;
	pthread_mutex_lock(&m->mu);
	s = series_get(m, name, help, kind, labels);
	s->value = set ? v : s->value + v;
	if (kind == METRIC_HISTOGRAM) {
		s->count++;
		for (i = 0; i < NBUCKETS; i++)
			if (v <= default_buckets[i])
				s->buckets[i]++;
	}
	pthread_mutex_unlock(&m->mu);
}

void
metrics_counter_add(struct metrics *m, const char *name, const char *help,
    const char *labels, double v)
{
	series_record(m, name, help, METRIC_COUNTER, labels, v, 0);
}

void
metrics_gauge_set(struct metrics *m, const char *name, const char *help,
    const char *labels, double v)
{
	series_record(m, name, help, METRIC_GAUGE, labels, v, 1);
}

void
metrics_gauge_add(struct metrics *m, const char *name, const char *help,
    const char *labels, double v)
{
	series_record(m, name, help, METRIC_GAUGE, labels, v, 0);
}

void
metrics_histogram_observe(struct metrics *m, const char *name, const char *help,
    const char *labels, double v)
{
	series_record(m, name, help, METRIC_HISTOGRAM, labels, v, 0);
}

char *
metrics_label_escape(const char *v, char *buf, size_t buflen)
{
	size_t o = 0;

	if (buflen == 0)
		return buf;
	for (; v != NULL && *v != '\0' && o + 3 < buflen; v++) {
		if (*v == '\\' || *v == '"') {
			buf[o++] = '\\';
			buf[o++] = *v;
		} else if (*v == '\n') {
			buf[o++] = '\\';
			buf[o++] = 'n';
		} else {
			buf[o++] = *v;
		}
	}
	buf[o] = '\0';
	return buf;
}

struct sbuf {
	char *p;
	size_t len, cap;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		b->cap = b->cap * 2 + (size_t)n;
		b->p = xrealloc(b->p, b->cap);
	}
}

static void
fmt_value(char *buf, size_t len, double v)
{
	if (isinf(v))
		snprintf(buf, len, v > 0 ? "+Inf" : "-Inf");
	else if (v == (double)(int64_t)v && fabs(v) < 1e15)
		snprintf(buf, len, "%lld", (long long)v);
	else
		snprintf(buf, len, "%.9g", v);
}

static void
render_process(struct sbuf *b, time_t start)
{
	long rss_pages = 0, pagesz = sysconf(_SC_PAGESIZE);
	FILE *fp;
	DIR *d;
	struct dirent *de;
	int fds = 0;
	struct rusage ru;
	double cpu = 0;

	fp = fopen("/proc/self/statm", "r");
	if (fp != NULL) {
		long size;

		if (fscanf(fp, "%ld %ld", &size, &rss_pages) != 2)
			rss_pages = 0;
		fclose(fp);
	}
	d = opendir("/proc/self/fd");
	if (d != NULL) {
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.')
				fds++;
		closedir(d);
		fds--; /* the directory handle itself */
	}
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	sb_printf(b,
	    "# HELP anvil_process_resident_memory_bytes Resident "
	    "memory size in bytes.\n# TYPE anvil_process_resident_memory_bytes "
	    "gauge\nanvil_process_resident_memory_bytes %ld\n",
	    rss_pages * pagesz);
	sb_printf(b,
	    "# HELP anvil_process_open_fds Number of open file "
	    "descriptors.\n# TYPE anvil_process_open_fds gauge\n"
	    "anvil_process_open_fds %d\n",
	    fds);
	sb_printf(b,
	    "# HELP anvil_process_start_time_seconds Start time of "
	    "the process since the epoch in seconds.\n# TYPE "
	    "anvil_process_start_time_seconds gauge\n"
	    "anvil_process_start_time_seconds %lld\n",
	    (long long)start);
	sb_printf(b,
	    "# HELP anvil_process_cpu_seconds_total Total user and "
	    "system CPU time spent in seconds.\n# TYPE "
	    "anvil_process_cpu_seconds_total counter\n"
	    "anvil_process_cpu_seconds_total %.6f\n",
	    cpu);
}

char *
metrics_render(struct metrics *m)
{
	struct sbuf b = {xmalloc(4096), 0, 4096};
	struct family *f;
	struct series *s;
	char v[64];
	size_t i;

	b.p[0] = '\0';
	if (m == NULL)
		return b.p;
	pthread_mutex_lock(&m->mu);
	for (f = m->families; f != NULL; f = f->next) {
		sb_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help,
		    f->name,
		    f->kind == METRIC_COUNTER     ? "counter"
			: f->kind == METRIC_GAUGE ? "gauge"
						  : "histogram");
		for (s = f->series; s != NULL; s = s->next) {
			const char *sep = s->labels[0] ? "," : "";

			if (f->kind != METRIC_HISTOGRAM) {
				fmt_value(v, sizeof(v), s->value);
				if (s->labels[0])
					sb_printf(&b, "%s{%s} %s\n", f->name,
					    s->labels, v);
				else
					sb_printf(&b, "%s %s\n", f->name, v);
				continue;
			}
			for (i = 0; i < NBUCKETS; i++) {
				fmt_value(v, sizeof(v), default_buckets[i]);
				sb_printf(&b, "%s_bucket{%s%sle=\"%s\"} %llu\n",
				    f->name, s->labels, sep, v,
				    (unsigned long long)s->buckets[i]);
			}
			sb_printf(&b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n",
			    f->name, s->labels, sep,
			    (unsigned long long)s->count);
			fmt_value(v, sizeof(v), s->value);
			if (s->labels[0]) {
				sb_printf(&b, "%s_sum{%s} %s\n", f->name,
				    s->labels, v);
				sb_printf(&b, "%s_count{%s} %llu\n", f->name,
				    s->labels, (unsigned long long)s->count);
			} else {
				sb_printf(&b, "%s_sum %s\n", f->name, v);
				sb_printf(&b, "%s_count %llu\n", f->name,
				    (unsigned long long)s->count);
			}
		}
	}
	pthread_mutex_unlock(&m->mu);
	render_process(&b, m->start);
	return b.p;
}
