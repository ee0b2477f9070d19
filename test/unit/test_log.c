/* LIBS: core */
/*
 * test_log.c - core/log.c: text and JSON line formats, the fields of a
 * JSON line, ANVIL_LOG_FORMAT over the config's log_format, and the
 * log_format key of config_load_file.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "test/unit/harness.h"

/* Captures what the calls between cap_start and cap_end write on fd 2. */
struct cap {
	FILE *f;
	int saved;
};

static void
cap_start(struct cap *c)
{
	fflush(stderr);
	c->f = tmpfile();
	c->saved = dup(STDERR_FILENO);
	dup2(fileno(c->f), STDERR_FILENO);
}

/* Restores fd 2; returns what was written (caller frees). */
static char *
cap_end(struct cap *c)
{
	long n;
	char *buf;

	fflush(stderr);
	dup2(c->saved, STDERR_FILENO);
	close(c->saved);
	n = lseek(fileno(c->f), 0, SEEK_END);
	buf = calloc(1, (size_t)n + 1);
	if (buf != NULL && n > 0) {
		lseek(fileno(c->f), 0, SEEK_SET);
		if (read(fileno(c->f), buf, (size_t)n) != n)
			buf[0] = '\0';
	}
	fclose(c->f);
	return buf;
}

TH_TEST(test_text_line)
{
	struct cap c;
	char *out;

	unsetenv("ANVIL_LOG_FORMAT");
	log_init("anvil-test", LOG_LEVEL_INFO);
	log_set_format(LOG_FORMAT_TEXT);
	cap_start(&c);
	log_audit("r1", "revocation", "serial=%s reason=%d", "7fab", 1);
	log_msg(LOG_LEVEL_DEBUG, NULL, "not shown at info");
	out = cap_end(&c);
	TH_CHECK(t,
	    out != NULL &&
		strstr(out,
		    " anvil-test AUDIT rid=r1 "
		    "event=revocation serial=7fab "
		    "reason=1\n") != NULL);
	TH_CHECK(t, out != NULL && strstr(out, "not shown") == NULL);
	free(out);
}

TH_TEST(test_json_fields)
{
	struct cap c;
	json_error_t jerr;
	json_t *j;
	char *out;

	unsetenv("ANVIL_LOG_FORMAT");
	log_init("anvil-test", LOG_LEVEL_INFO);
	log_set_format(LOG_FORMAT_JSON);
	cap_start(&c);
	log_audit("r2", "admin-block-key",
	    "spki=ab12 comment=\"INC-42 key published\" account=17 by=admin");
	out = cap_end(&c);
	TH_CHECK(t, out != NULL && strchr(out, '\n') == out + strlen(out) - 1);
	j = json_loads(out ? out : "", 0, &jerr);
	TH_CHECK(t, json_is_object(j));
	TH_CHECK_STR(
	    t, json_string_value(json_object_get(j, "level")), "AUDIT");
	TH_CHECK_STR(
	    t, json_string_value(json_object_get(j, "program")), "anvil-test");
	TH_CHECK_STR(t, json_string_value(json_object_get(j, "rid")), "r2");
	TH_CHECK(t, json_is_true(json_object_get(j, "audit")));
	TH_CHECK_STR(t, json_string_value(json_object_get(j, "event")),
	    "admin-block-key");
	TH_CHECK_STR(t, json_string_value(json_object_get(j, "account")), "17");
	TH_CHECK_STR(t, json_string_value(json_object_get(j, "comment")),
	    "INC-42 key published");
	TH_CHECK_STR(t, json_string_value(json_object_get(j, "by")), "admin");
	TH_CHECK(t,
	    strstr(json_string_value(json_object_get(j, "msg")),
		"event=admin-block-key spki=ab12") != NULL);
	TH_CHECK(t,
	    strlen(json_string_value(json_object_get(j, "time"))) ==
		strlen("2026-12-07T07:40:27.665Z"));
	json_decref(j);
	free(out);
}

TH_TEST(test_json_hostile_message)
{
	struct cap c;
	json_t *j;
	char *out, *nl;

	log_init("anvil-test", LOG_LEVEL_INFO);
	log_set_format(LOG_FORMAT_JSON);
	cap_start(&c);
	/* A client-controlled string with quotes, a newline, a control byte
	 * and a key that would shadow a reserved field. */
	log_msg(LOG_LEVEL_WARN, NULL, "bad name \"a\nb\x01\" level=ERROR x=\"");
	out = cap_end(&c);
	nl = out ? strchr(out, '\n') : NULL;
	TH_CHECK(t, nl != NULL && nl[1] == '\0'); /* exactly one line */
	j = json_loads(out ? out : "", 0, NULL);
	TH_CHECK(t, json_is_object(j));
	TH_CHECK_STR(t, json_string_value(json_object_get(j, "level")), "WARN");
	TH_CHECK(t, json_object_get(j, "audit") == NULL);
	json_decref(j);
	free(out);
}

TH_TEST(test_env_wins)
{
	struct cap c;
	char *out;

	setenv("ANVIL_LOG_FORMAT", "text", 1);
	log_init("anvil-test", LOG_LEVEL_INFO);
	log_set_format(LOG_FORMAT_JSON); /* the config asks for JSON */
	cap_start(&c);
	log_info("hello");
	out = cap_end(&c);
	TH_CHECK(t, out != NULL && out[0] != '{' && strstr(out, " INFO hello"));
	free(out);
	setenv("ANVIL_LOG_FORMAT", "json", 1);
	log_init("anvil-test", LOG_LEVEL_INFO);
	cap_start(&c);
	log_info("hello");
	out = cap_end(&c);
	TH_CHECK(t, out != NULL && out[0] == '{');
	free(out);
	unsetenv("ANVIL_LOG_FORMAT");
}

TH_TEST(test_config_key)
{
	char path[] = "/tmp/test_log_XXXXXX";
	char err[256];
	struct cap c;
	json_t *j;
	char *out;
	int fd = mkstemp(path);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

	TH_CHECK(t, f != NULL);
	if (f == NULL)
		return;
	fputs("{\"log_format\": \"xml\", \"a\": 1}", f);
	fclose(f);
	unsetenv("ANVIL_LOG_FORMAT");
	log_init("anvil-test", LOG_LEVEL_INFO);
	log_set_format(LOG_FORMAT_TEXT);
	j = config_load_file(path, err, sizeof(err));
	TH_CHECK(t, j == NULL && strstr(err, "log_format") != NULL);
	f = fopen(path, "w");
	fputs("{\"log_format\": \"json\", \"a\": 1}", f);
	fclose(f);
	j = config_load_file(path, err, sizeof(err));
	/* Applied and removed, so strict service parsers never see it. */
	TH_CHECK(t,
	    j != NULL && json_object_get(j, "log_format") == NULL &&
		json_object_get(j, "a") != NULL);
	cap_start(&c);
	log_info("after config");
	out = cap_end(&c);
	TH_CHECK(t, out != NULL && out[0] == '{');
	free(out);
	json_decref(j);
	unlink(path);
	log_set_format(LOG_FORMAT_TEXT);
}

TH_MAIN((void)0) /* each test sets logging up itself */
