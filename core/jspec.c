/* jspec.c - declarative, strict JSON parsing for configs and requests. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static const struct jspec *
jspec_find(const struct jspec *spec, const char *key)
{
	for (; spec->name != NULL; spec++)
		if (strcmp(spec->name, key) == 0)
			return spec;
	return NULL;
}

static int jspec_parse_prefixed(const json_t *obj, const struct jspec *spec,
    void *dest, const char *prefix, char *err, size_t errlen);

/* "<prefix><key>: expected <what f's type wants>"; returns -1. */
static int
jspec_type_error(
    const struct jspec *f, const char *prefix, char *err, size_t errlen)
{
	static const char *const want[JSPEC__MAX] = {
	    "a string",
	    "an integer",
	    "true or false",
	    "a duration string",
	    "a JSON value",
	    "an object",
	    "an array of strings",
	    "a number",
	};

	snprintf(
	    err, errlen, "%s%s: expected %s", prefix, f->name, want[f->type]);
	return -1;
}

/* -1 naming the first key of obj that spec does not know, else 0. */
static int
jspec_refuse_unknown_keys(const json_t *obj, const struct jspec *spec,
    const char *prefix, char *err, size_t errlen)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)obj, key, v)
	{
		if (jspec_find(spec, key) == NULL) {
			snprintf(err, errlen, "%s%s: unknown key", prefix, key);
			return -1;
		}
	}
	return 0;
}

/* A JSPEC_DURATION value: a duration string, or the integer 0. */
static int
jspec_parse_duration(const struct jspec *f, const json_t *v, void *slot,
    const char *prefix, char *err, size_t errlen)
{
	int64_t ms = 0;

	if (json_is_integer(v) && json_integer_value(v) == 0) {
		if (slot != NULL)
			*(int64_t *)slot = 0;
		return 0;
	}
	if (!json_is_string(v) ||
	    duration_parse_ms(json_string_value(v), &ms) != 0) {
		snprintf(err, errlen,
		    "%s%s: expected a duration "
		    "such as \"90d\", \"12h\", \"30s\" or "
		    "\"250ms\"",
		    prefix, f->name);
		return -1;
	}
	if (slot != NULL)
		*(int64_t *)slot = ms;
	return 0;
}

/* A JSPEC_STRINGS value: replaces the NULL-terminated array in slot and
 * its count at base + f->count_offset (nothing written when slot is
 * NULL). */
static int
jspec_parse_strings(const struct jspec *f, const json_t *v, char *base,
    void *slot, const char *prefix, char *err, size_t errlen)
{
	char **arr, **old = slot ? *(char ***)slot : NULL;
	size_t i, n;
	json_t *e;

	if (!json_is_array(v))
		return jspec_type_error(f, prefix, err, errlen);
	n = json_array_size(v);
	json_array_foreach(v, i, e)
	{
		if (!json_is_string(e)) {
			snprintf(err, errlen,
			    "%s%s[%zu]: "
			    "expected a string",
			    prefix, f->name, i);
			return -1;
		}
	}
	if (slot == NULL)
		return 0;
	if (old != NULL) {
		for (i = 0; old[i] != NULL; i++)
			free(old[i]);
		free(old);
	}
	arr = xcalloc(n + 1, sizeof(*arr));
	json_array_foreach(v, i, e) arr[i] = xstrdup(json_string_value(e));
	*(char ***)slot = arr;
	*(size_t *)(base + f->count_offset) = n;
	return 0;
}

/* A value of a scalar type (string, integer, number, boolean, any JSON)
 * into slot (nothing written when slot is NULL). */
static int
jspec_parse_scalar(const struct jspec *f, json_t *v, void *slot,
    const char *prefix, char *err, size_t errlen)
{
	switch (f->type) {
	case JSPEC_STRING:
		if (!json_is_string(v))
			return jspec_type_error(f, prefix, err, errlen);
		if (slot == NULL)
			break;
		free(*(char **)slot);
		*(char **)slot = xstrdup(json_string_value(v));
		break;
	case JSPEC_INT:
		if (!json_is_integer(v))
			return jspec_type_error(f, prefix, err, errlen);
		if (slot != NULL)
			*(int64_t *)slot = json_integer_value(v);
		break;
	case JSPEC_DOUBLE:
		if (!json_is_number(v))
			return jspec_type_error(f, prefix, err, errlen);
		if (slot != NULL)
			*(double *)slot = json_number_value(v);
		break;
	case JSPEC_BOOL:
		if (!json_is_boolean(v))
			return jspec_type_error(f, prefix, err, errlen);
		if (slot != NULL)
			*(int *)slot = json_is_true(v);
		break;
	case JSPEC_JSON:
		if (slot == NULL)
			break;
		json_decref(*(json_t **)slot);
		*(json_t **)slot = json_incref(v);
		break;
	default:
		snprintf(err, errlen, "%s%s: bad spec", prefix, f->name);
		return -1;
	}
	return 0;
}

/* The present, non-null value v of field f. dest NULL: check only. */
static int
jspec_parse_field(const struct jspec *f, json_t *v, void *dest,
    const char *prefix, char *err, size_t errlen)
{
	char *base = dest;
	void *slot = base != NULL ? base + f->offset : NULL;
	char sub[256];

	switch (f->type) {
	case JSPEC_DURATION:
		return jspec_parse_duration(f, v, slot, prefix, err, errlen);
	case JSPEC_OBJECT:
		snprintf(sub, sizeof(sub), "%s%s.", prefix, f->name);
		if (!json_is_object(v))
			return jspec_type_error(f, prefix, err, errlen);
		return jspec_parse_prefixed(v, f->sub, slot, sub, err, errlen);
	case JSPEC_STRINGS:
		return jspec_parse_strings(
		    f, v, base, slot, prefix, err, errlen);
	default:
		return jspec_parse_scalar(f, v, slot, prefix, err, errlen);
	}
}

static int
jspec_parse_prefixed(const json_t *obj, const struct jspec *spec, void *dest,
    const char *prefix, char *err, size_t errlen)
{
	const struct jspec *f;
	json_t *v;

	if (!json_is_object(obj)) {
		snprintf(err, errlen, "%s%sexpected an object", prefix,
		    *prefix ? ": " : "");
		return -1;
	}
	if (jspec_refuse_unknown_keys(obj, spec, prefix, err, errlen) != 0)
		return -1;
	for (f = spec; f->name != NULL; f++) {
		v = json_object_get(obj, f->name);
		if (v == NULL || json_is_null(v)) {
			if (f->required) {
				snprintf(err, errlen,
				    "%s%s: required key is "
				    "missing",
				    prefix, f->name);
				return -1;
			}
			continue;
		}
		/* dest NULL: check only (jspec_check), write nothing. */
		if (jspec_parse_field(f, v, dest, prefix, err, errlen) != 0)
			return -1;
	}
	return 0;
}

int
jspec_parse(const json_t *obj, const struct jspec *spec, void *dest, char *err,
    size_t errlen)
{
	return jspec_parse_prefixed(obj, spec, dest, "", err, errlen);
}

int
jspec_check(const json_t *obj, const struct jspec *spec, char *err,
    size_t errlen)
{
	return jspec_parse_prefixed(obj, spec, NULL, "", err, errlen);
}

void
jspec_clear(const struct jspec *spec, void *dest)
{
	const struct jspec *f;
	char *base = dest;

	for (f = spec; f->name != NULL; f++) {
		void *slot = base + f->offset;

		switch (f->type) {
		case JSPEC_STRING:
			free(*(char **)slot);
			*(char **)slot = NULL;
			break;
		case JSPEC_JSON:
			json_decref(*(json_t **)slot);
			*(json_t **)slot = NULL;
			break;
		case JSPEC_OBJECT:
			jspec_clear(f->sub, slot);
			break;
		case JSPEC_STRINGS: {
			char **arr = *(char ***)slot;
			size_t i;

			if (arr != NULL) {
				for (i = 0; arr[i] != NULL; i++)
					free(arr[i]);
				free(arr);
			}
			*(char ***)slot = NULL;
			*(size_t *)(base + f->count_offset) = 0;
			break;
		}
		default:
			break;
		}
	}
}

json_t *
config_load_file(const char *path, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *j, *fmt;

	j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (j == NULL) {
		snprintf(err, errlen, "%s:%d:%d: %s", path, jerr.line,
		    jerr.column, jerr.text);
		return NULL;
	}
	if (!json_is_object(j)) {
		snprintf(
		    err, errlen, "%s: the top level must be an object", path);
		json_decref(j);
		return NULL;
	}
	/*
	 * "log_format" is understood by every service config the same way:
	 * applied here (before the service's own strict parse) and removed.
	 */
	if ((fmt = json_object_get(j, "log_format")) != NULL) {
		enum log_format f;

		if (log_format_parse(json_string_value(fmt), &f) != 0) {
			snprintf(err, errlen,
			    "%s: log_format: expected \"text\" or \"json\"",
			    path);
			json_decref(j);
			return NULL;
		}
		log_set_format(f);
		json_object_del(j, "log_format");
	}
	return j;
}

int
config_parse(const char *path, const json_t *obj, const struct jspec *spec,
    void *dest, char *err, size_t errlen)
{
	char inner[512];

	if (jspec_parse(obj, spec, dest, inner, sizeof(inner)) != 0) {
		snprintf(err, errlen, "%s: %s", path, inner);
		return -1;
	}
	return 0;
}

const struct jspec config_debug_spec[] = {
    {"addr", JSPEC_STRING, offsetof(struct config_common, debug_addr), 0, NULL,
	0},
    {"port", JSPEC_INT, offsetof(struct config_common, debug_port), 0, NULL,
	0},
    JSPEC_END,
};

/* A struct config_common on its own (for config_common_clear). */
struct common_only {
	struct config_common c;
};
static const struct jspec common_spec[] = {
    CONFIG_COMMON_RPC_SPEC(struct common_only, c),
    JSPEC_END,
};

/* See core.h. */
void
config_common_clear(struct config_common *c)
{
	if (c != NULL)
		jspec_clear(common_spec, c);
}

/* See core.h. */
int
config_common_check(
    struct config_common *c, const char *path, char *err, size_t errlen)
{
	if (c->log_level == NULL)
		c->log_level = xstrdup("info");
	if (c->debug_addr == NULL)
		c->debug_addr = xstrdup("127.0.0.1");
	if (log_level_parse(c->log_level, &c->level) != 0) {
		snprintf(err, errlen, "%s: log_level: unknown level \"%.32s\"",
		    path, c->log_level);
		return -1;
	}
	if (c->debug_port < 0 || c->debug_port > 65535) {
		snprintf(err, errlen, "%s: debug.port: out of range", path);
		return -1;
	}
	return 0;
}

int
config_apply_env(json_t *obj, const struct config_env *table)
{
	for (; table->env != NULL; table++) {
		const char *val = getenv(table->env);
		char path[256], *save = NULL, *tok, *next;
		json_t *cur = obj, *v;

		if (val == NULL || strlen(table->path) >= sizeof(path))
			continue;
		v = json_loads(val, JSON_DECODE_ANY, NULL);
		if (v == NULL)
			v = json_string(val);
		snprintf(path, sizeof(path), "%s", table->path);
		tok = strtok_r(path, ".", &save);
		while (tok != NULL) {
			next = strtok_r(NULL, ".", &save);
			if (next == NULL) {
				json_object_set(cur, tok, v);
				break;
			}
			if (!json_is_object(json_object_get(cur, tok)))
				json_object_set_new(cur, tok, json_object());
			cur = json_object_get(cur, tok);
			tok = next;
		}
		json_decref(v);
	}
	return 0;
}

/* See core.h. */
void
env_flag(const char *name, int *out)
{
	const char *e = getenv(name);

	if (e != NULL && e[0] != '\0')
		*out = strcmp(e, "0") != 0 && strcmp(e, "false") != 0;
}

/* err: "NAME: expected EXPECT, got "VALUE"". Returns -1. */
static int
env_bad(const char *name, const char *expect, const char *val, char *err,
    size_t errlen)
{
	snprintf(err, errlen, "%s: expected %s, got \"%.40s\"", name, expect,
	    val);
	return -1;
}

/* See core.h. */
int
env_int(const char *name, int64_t lo, int64_t hi, const char *expect,
    int64_t *out, char *err, size_t errlen)
{
	const char *e = getenv(name);
	char *end;
	long long v;

	if (e == NULL || e[0] == '\0')
		return 0;
	errno = 0;
	v = strtoll(e, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		return env_bad(name, expect, e, err, errlen);
	*out = v;
	return 0;
}

/* See core.h. */
int
env_duration(const char *name, int64_t max_ms, const char *expect,
    int64_t *out, char *err, size_t errlen)
{
	const char *e = getenv(name);
	int64_t ms;

	if (e == NULL || e[0] == '\0')
		return 0;
	if (duration_parse_ms(e, &ms) != 0 || ms < 0 || ms > max_ms)
		return env_bad(name, expect, e, err, errlen);
	*out = ms;
	return 0;
}
