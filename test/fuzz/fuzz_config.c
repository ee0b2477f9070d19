/* LIBS: ra va wfe jose rpc core */
/*
 * fuzz_config.c - libFuzzer target over configuration parsing: the input is
 * a config file's text. It goes through config_load_file's parser form
 * (json_loadb), core's jspec_parse with a spec using every field type
 * (nested objects, string lists, durations, doubles), profiles_parse, and
 * every service's strict config parser (ra, va, wfe, rpc server and client).
 * Each parser must either accept or fail with a message naming something;
 * nothing may crash, leak or hang. A failed parse must still be clearable.
 *
 *   scripts/fuzz.sh 60 fuzz_config
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "ra/ra.h"
#include "rpc/rpc.h"
#include "va/va.h"
#include "wfe/wfe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A destination with one field of every jspec type. */
struct every {
	char *str;
	int64_t num;
	int flag;
	int64_t dur_ms;
	json_t *any;
	char **list;
	size_t nlist;
	double ratio;
	char *inner_str;
	int64_t inner_num;
};

#define E struct every
static const struct jspec inner_spec[] = {
    {"name", JSPEC_STRING, offsetof(E, inner_str), 1, NULL, 0},
    JSPEC_FIELD(E, "port", JSPEC_INT, inner_num), JSPEC_END};

static const struct jspec every_spec[] = {
    JSPEC_FIELD(E, "log_level", JSPEC_STRING, str),
    JSPEC_FIELD(E, "workers", JSPEC_INT, num),
    JSPEC_FIELD(E, "enabled", JSPEC_BOOL, flag),
    JSPEC_FIELD(E, "timeout", JSPEC_DURATION, dur_ms),
    JSPEC_FIELD(E, "allow", JSPEC_JSON, any),
    JSPEC_STRV(E, "resolvers", list, nlist),
    JSPEC_FIELD(E, "ratio", JSPEC_DOUBLE, ratio),
    JSPEC_SUB("listen", inner_spec), JSPEC_END};
#undef E

/* Every list jspec filled must be NULL-terminated with nlist entries. */
static void
check_every(const struct every *e)
{
	size_t i;

	if (e->list == NULL)
		return;
	for (i = 0; i < e->nlist; i++)
		if (e->list[i] == NULL)
			abort();
	if (e->list[e->nlist] != NULL)
		abort();
}

static void
run_jspec(const json_t *obj)
{
	struct every e;
	char err[256];

	memset(&e, 0, sizeof(e));
	err[0] = '\0';
	if (config_parse("fuzz.json", obj, every_spec, &e, err, sizeof(err)) !=
	    0) {
		if (err[0] == '\0')
			abort(); /* a failure must say why */
	} else
		check_every(&e);
	jspec_clear(every_spec, &e);
}

static void
run_profiles(const json_t *obj)
{
	struct profiles *p;
	char err[256];
	size_t i;

	err[0] = '\0';
	p = profiles_parse(obj, "profiles.json", err, sizeof(err));
	if (p == NULL) {
		if (err[0] == '\0')
			abort();
		return;
	}
	/* An accepted set must have a findable default and named entries. */
	if (profiles_find(p, NULL) == NULL)
		abort();
	for (i = 0; i < p->count; i++)
		if (p->list[i].name == NULL ||
		    profiles_find(p, p->list[i].name) == NULL)
			abort();
	profiles_free(p);
}

static void
run_services(const json_t *obj)
{
	struct ra_config ra;
	struct va_config va;
	struct wfe_config wfe;
	struct rpc_server_config rs;
	struct rpc_client_config rc;
	char err[256];

	memset(&ra, 0, sizeof(ra));
	(void)ra_config_parse(obj, "ra.json", &ra, err, sizeof(err));
	ra_config_clear(&ra);
	memset(&va, 0, sizeof(va));
	(void)va_config_parse(obj, "va.json", &va, err, sizeof(err));
	va_config_clear(&va);
	memset(&wfe, 0, sizeof(wfe));
	(void)wfe_config_parse(obj, "wfe.json", &wfe, err, sizeof(err));
	wfe_config_clear(&wfe);
	memset(&rs, 0, sizeof(rs));
	(void)rpc_server_config_parse(obj, &rs, err, sizeof(err));
	rpc_server_config_clear(&rs);
	memset(&rc, 0, sizeof(rc));
	(void)rpc_client_config_parse(obj, &rc, err, sizeof(err));
	rpc_client_config_clear(&rc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t jerr;
	json_t *obj;
	const char *k;
	json_t *v;

	if (size > 64 * 1024)
		return 0;
	obj =
	    json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(obj)) {
		json_decref(obj);
		return 0;
	}
	run_jspec(obj);
	run_profiles(obj);
	run_services(obj);
	/* Sub-objects too: "rpc": {...}, "sa": {...} sections are the usual
	 * place for the rpc parsers. */
	json_object_foreach(obj, k, v)
	{
		if (json_is_object(v)) {
			run_jspec(v);
			run_services(v);
		}
	}
	json_decref(obj);
	return 0;
}
