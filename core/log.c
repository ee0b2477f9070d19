/*
 * log.c - one line per event on stderr, with an audit marker: text
 * ("<time> <prog> <LEVEL> rid=<id> message") or, with log_format "json" /
 * ANVIL_LOG_FORMAT=json, one JSON object per line with the same content
 * (docs/operations.md "Logs").
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"

/* Set once by log_init() in main() before threads start. */
static const char *log_prog = "anvil";
static enum log_level log_min = LOG_LEVEL_INFO;
static enum log_format log_fmt = LOG_FORMAT_TEXT;
static int log_fmt_from_env = 0;

static const char *const level_names[LOG_LEVEL__MAX] = {
    "DEBUG",
    "INFO",
    "WARN",
    "ERROR",
};

void
log_init(const char *progname, enum log_level min_level)
{
	const char *env = getenv("ANVIL_LOG_FORMAT");
	enum log_format f;

	log_prog = progname ? progname : "anvil";
	log_min = min_level;
	if (env != NULL && env[0] != '\0' && log_format_parse(env, &f) == 0) {
		log_fmt = f;
		log_fmt_from_env = 1;
	}
}

int
log_format_parse(const char *s, enum log_format *out)
{
	if (s != NULL && strcmp(s, "text") == 0)
		*out = LOG_FORMAT_TEXT;
	else if (s != NULL && strcmp(s, "json") == 0)
		*out = LOG_FORMAT_JSON;
	else
		return -1;
	return 0;
}

void
log_set_format(enum log_format f)
{
	if (!log_fmt_from_env)
		log_fmt = f;
}

/*
 * Adds the key=value words of msg to obj as strings ("comment=\"a b\""
 * keeps its spaces). Keys already in obj (time, level, ...) are not
 * overwritten: the whole text is in "msg" anyway.
 */
static void
add_fields(json_t *obj, const char *msg)
{
	const char *p = msg;

	while (*p != '\0') {
		const char *k = p, *eq, *v, *end;
		char key[64], *val;

		while (*p != '\0' && *p != ' ')
			p++;
		end = p;
		while (*p == ' ')
			p++;
		for (eq = k; eq < end &&
		     (isalnum((unsigned char)*eq) || *eq == '_' || *eq == '-' ||
			 *eq == '.');
		     eq++)
			;
		if (eq == k || eq >= end || *eq != '=' ||
		    (size_t)(eq - k) >= sizeof(key))
			continue;
		v = eq + 1;
		if (*v == '"') {
			const char *q = strchr(v + 1, '"');
			if (q != NULL) {
				end = q + 1;
				p = end;
				while (*p == ' ')
					p++;
				v++;
				val = strndup(v, (size_t)(q - v));
			} else
				val = strndup(v, (size_t)(end - v));
		} else
			val = strndup(v, (size_t)(end - v));
		memcpy(key, k, (size_t)(eq - k));
		key[eq - k] = '\0';
		if (val != NULL && json_object_get(obj, key) == NULL)
			json_object_set_new(obj, key, json_string(val));
		free(val);
	}
}

/* The JSON form of one line into out (newline-terminated); its length. */
static size_t
json_line(char *out, size_t outlen, const char *stamp, const char *level,
    const char *request_id, const char *event, const char *msg)
{
	json_t *o = json_object();
	char *s;
	size_t n = 0;

	json_object_set_new(o, "time", json_string(stamp));
	json_object_set_new(o, "level", json_string(level));
	json_object_set_new(o, "program", json_string(log_prog));
	if (request_id != NULL)
		json_object_set_new(o, "rid", json_string(request_id));
	if (event != NULL) {
		json_object_set_new(o, "audit", json_true());
		json_object_set_new(o, "event", json_string(event));
	}
	json_object_set_new(o, "msg", json_string(msg));
	add_fields(o, msg);
	s = json_dumps(
	    o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	json_decref(o);
	if (s == NULL)
		return 0;
	n = strlen(s);
	if (n + 2 > outlen) {
		/* Too long for one line: keep it valid JSON, drop fields. */
		free(s);
		o = json_pack("{s:s, s:s, s:s, s:b}", "time", stamp, "level",
		    level, "program", log_prog, "truncated", 1);
		s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(o);
		if (s == NULL)
			return 0;
		n = strlen(s);
	}
	memcpy(out, s, n);
	out[n++] = '\n';
	free(s);
	return n;
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
log_emit(const char *level, const char *request_id, const char *event,
    const char *fmt, va_list ap)
{
	char line[4096];
	struct timeval tv;
	struct tm tm;
	size_t n;
	int r;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	if (log_fmt == LOG_FORMAT_JSON) {
		char stamp[40], msg[3072], out[8192];
		size_t k =
		    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);

		snprintf(stamp + k, sizeof(stamp) - k, ".%03dZ",
		    (int)(tv.tv_usec / 1000));
		vsnprintf(msg, sizeof(msg), fmt, ap);
		n = json_line(
		    out, sizeof(out), stamp, level, request_id, event, msg);
		if (n > 0 && write(STDERR_FILENO, out, n) < 0) {
			/* Nowhere left to report it. */
		}
		return;
	}
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
	log_emit(level_names[lvl], request_id, NULL, fmt, ap);
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
log_line(const char *level, const char *request_id, const char *event,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(level, request_id, event, fmt, ap);
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
	log_line("AUDIT", request_id, event, "event=%s %s", event, buf);
}
