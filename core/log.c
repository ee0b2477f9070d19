/* log.c - one line per event on stderr, with an audit marker. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"

/* Set once by log_init() in main() before threads start. */
static const char *log_prog = "anvil";
static enum log_level log_min = LOG_LEVEL_INFO;

static const char *const level_names[LOG_LEVEL__MAX] = {
    "DEBUG",
    "INFO",
    "WARN",
    "ERROR",
};

void
log_init(const char *progname, enum log_level min_level)
{
	log_prog = progname ? progname : "anvil";
	log_min = min_level;
}

int
log_level_parse(const char *s, enum log_level *out)
{
	static const char *const lower[LOG_LEVEL__MAX] = {
	    "debug",
	    "info",
	    "warn",
	    "error",
	};
	int i;

	for (i = 0; i < LOG_LEVEL__MAX; i++) {
		if (s != NULL && strcmp(s, lower[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

static void
log_emit(const char *level, const char *request_id, const char *fmt, va_list ap)
{
	char line[4096];
	struct timeval tv;
	struct tm tm;
	size_t n;
	int r;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03dZ %s %s ",
	    (int)(tv.tv_usec / 1000), log_prog, level);
	if (r > 0)
		n += (size_t)r;
	if (request_id != NULL && n < sizeof(line)) {
		r = snprintf(line + n, sizeof(line) - n, "rid=%s ", request_id);
		if (r > 0)
			n += (size_t)r;
	}
	if (n < sizeof(line)) {
		r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		if (r > 0)
			n += (size_t)r;
	}
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	/* One event, one line: fold embedded newlines. */
	for (size_t i = 0; i < n; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[n++] = '\n';
	/* A single write(2) keeps lines whole across threads. */
	if (write(STDERR_FILENO, line, n) < 0) {
		/* Nowhere left to report it. */
	}
}

void
log_vmsg(
    enum log_level lvl, const char *request_id, const char *fmt, va_list ap)
{
	if (lvl < log_min || lvl >= LOG_LEVEL__MAX)
		return;
	log_emit(level_names[lvl], request_id, fmt, ap);
}

void
log_msg(enum log_level lvl, const char *request_id, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(lvl, request_id, fmt, ap);
	va_end(ap);
}

static void
log_line(const char *level, const char *request_id, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(level, request_id, fmt, ap);
	va_end(ap);
}

void
log_audit(const char *request_id, const char *event, const char *fmt, ...)
{
	char buf[3072];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_line("AUDIT", request_id, "event=%s %s", event, buf);
}
