/* config.c - the "rpc" server object and the client objects of a config. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/rpc.h"
#include "rpc/rpc_int.h"

#define F(field) offsetof(struct rpc_server_config, field)
static const struct jspec srv_tls_spec[] = {
    {"cert", JSPEC_STRING, F(tls_cert), 1, NULL, 0},
    {"key", JSPEC_STRING, F(tls_key), 1, NULL, 0},
    {"ca", JSPEC_STRING, F(tls_ca), 1, NULL, 0}, JSPEC_END};
static const struct jspec srv_spec[] = {
    {"listen", JSPEC_STRING, F(listen), 1, NULL, 0},
    {"workers", JSPEC_INT, F(workers), 0, NULL, 0},
    {"max_frame", JSPEC_INT, F(max_frame), 0, NULL, 0},
    {"socket_mode", JSPEC_STRING, F(socket_mode), 0, NULL, 0},
    {"tls", JSPEC_OBJECT, 0, 0, srv_tls_spec, 0},
    {"allow", JSPEC_JSON, F(allow), 0, NULL, 0},
    {"callers", JSPEC_JSON, F(callers), 0, NULL, 0}, JSPEC_END};
#undef F

#define F(field) offsetof(struct rpc_client_config, field)
static const struct jspec cli_tls_spec[] = {
    {"cert", JSPEC_STRING, F(tls_cert), 1, NULL, 0},
    {"key", JSPEC_STRING, F(tls_key), 1, NULL, 0},
    {"ca", JSPEC_STRING, F(tls_ca), 1, NULL, 0},
    {"server_name", JSPEC_STRING, F(tls_server_name), 0, NULL, 0}, JSPEC_END};
static const struct jspec cli_spec[] = {
    {"target", JSPEC_STRING, F(target), 0, NULL, 0},
    {"targets", JSPEC_STRINGS, F(targets), 0, NULL, F(ntargets)},
    {"connect_timeout", JSPEC_DURATION, F(connect_timeout_ms), 0, NULL, 0},
    {"timeout", JSPEC_DURATION, F(timeout_ms), 0, NULL, 0},
    {"connections", JSPEC_INT, F(connections), 0, NULL, 0},
    {"max_frame", JSPEC_INT, F(max_frame), 0, NULL, 0},
    {"tls", JSPEC_OBJECT, 0, 0, cli_tls_spec, 0}, JSPEC_END};
#undef F

/* An integer member of a config (at off) and the range it must be in; msg
 * names the key and the range. */
struct limit {
	size_t off;
	int64_t lo, hi;
	const char *msg;
};

static const struct limit srv_limits[] = {
    {offsetof(struct rpc_server_config, workers), 1, 1024,
	"rpc.workers: must be 1..1024"},
    {offsetof(struct rpc_server_config, max_frame), 256, 1 << 30,
	"rpc.max_frame: must be 256..1073741824"},
};
static const struct limit cli_limits[] = {
    {offsetof(struct rpc_client_config, timeout_ms), 1, 3600 * 1000,
	"timeout: must be between 1ms and 1h"},
    {offsetof(struct rpc_client_config, connect_timeout_ms), 0, 3600 * 1000,
	"connect_timeout: must be between 1ms and 1h"},
    {offsetof(struct rpc_client_config, connections), 1, 256,
	"connections: must be 1..256"},
    {offsetof(struct rpc_client_config, max_frame), 256, 1 << 30,
	"max_frame: must be 256..1073741824"},
};

/* 0 when every limit of lim (n of them) holds in cfg, else -1 with the
 * first one's message in err. */
static int
check_limits(const void *cfg, const struct limit *lim, size_t n, char *err,
    size_t errlen)
{
	size_t i;
	int64_t v;

	for (i = 0; i < n; i++) {
		v = *(const int64_t *)((const char *)cfg + lim[i].off);
		if (v < lim[i].lo || v > lim[i].hi) {
			snprintf(err, errlen, "%s", lim[i].msg);
			return -1;
		}
	}
	return 0;
}

/*
 * Checks rpc.<section>: absent, or an object whose members are arrays of
 * non-empty strings (what names them in the error). With classes, each
 * member's name must be a caller class of the registry.
 */
static int
check_name_lists(const json_t *o, const char *section, const char *what,
    int classes, char *err, size_t errlen)
{
	const char *key;
	json_t *v, *e;
	size_t i;

	if (o == NULL)
		return 0;
	if (!json_is_object(o)) {
		snprintf(err, errlen, "rpc.%s: expected an object", section);
		return -1;
	}
	json_object_foreach((json_t *)o, key, v)
	{
		if (classes && rpc_caller_parse(key) == 0) {
			snprintf(err, errlen,
			    "rpc.%s.%s: unknown caller class (wfe, ra, "
			    "ca, admin or va)",
			    section, key);
			return -1;
		}
		if (!json_is_array(v)) {
			snprintf(err, errlen, "rpc.%s.%s: expected an array of %s",
			    section, key, what);
			return -1;
		}
		json_array_foreach(v, i, e)
		{
			if (!json_is_string(e) || json_string_length(e) == 0) {
				snprintf(err, errlen,
				    "rpc.%s.%s[%zu]: expected a non-empty string",
				    section, key, i);
				return -1;
			}
		}
	}
	return 0;
}

int
rpc_server_config_parse(
    const json_t *obj, struct rpc_server_config *cfg, char *err, size_t errlen)
{
	struct rpc_addr a;
	char *end = NULL;
	long mode;

	memset(cfg, 0, sizeof(*cfg));
	memset(&a, 0, sizeof(a));
	cfg->workers = 8;
	cfg->max_frame = RPC_DEFAULT_MAX_FRAME;
	if (!json_is_object(obj)) {
		snprintf(err, errlen, "rpc: expected an object");
		return -1;
	}
	if (jspec_parse(obj, srv_spec, cfg, err, errlen) != 0)
		goto fail;
	if (cfg->socket_mode == NULL)
		cfg->socket_mode = xstrdup("0660");
	if (rpc_addr_parse(cfg->listen, &a, err, errlen) != 0) {
		char tmp[256];

		snprintf(tmp, sizeof(tmp), "rpc.listen: %s", err);
		snprintf(err, errlen, "%s", tmp);
		goto fail;
	}
	if (a.kind == RPC_ADDR_TCP && cfg->tls_cert == NULL) {
		snprintf(err, errlen,
		    "rpc.tls: required for a tcp: listen "
		    "address (mutual TLS)");
		goto fail;
	}
	if (check_limits(cfg, srv_limits,
		sizeof(srv_limits) / sizeof(srv_limits[0]), err, errlen) != 0)
		goto fail;
	mode = strtol(cfg->socket_mode, &end, 8);
	if (cfg->socket_mode[0] == '\0' || *end != '\0' || mode < 0 ||
	    mode > 0777) {
		snprintf(err, errlen,
		    "rpc.socket_mode: expected an octal "
		    "mode such as \"0660\"");
		goto fail;
	}
	if (check_name_lists(cfg->allow, "allow", "client names", 0, err,
		errlen) != 0 ||
	    check_name_lists(cfg->callers, "callers", "identities", 1, err,
		errlen) != 0)
		goto fail;
	rpc_addr_clear(&a);
	return 0;
fail:
	rpc_addr_clear(&a);
	rpc_server_config_clear(cfg);
	return -1;
}

void
rpc_server_config_clear(struct rpc_server_config *cfg)
{
	if (cfg == NULL)
		return;
	/* socket_mode, when defaulted, is in the spec's slot too */
	jspec_clear(srv_spec, cfg);
	memset(cfg, 0, sizeof(*cfg));
}

/*
 * "target" (one address) or "targets" (several, tried in turn: client-side
 * failover), not both; every address must parse and a tcp: one needs tls.
 * With "targets", cfg->target is set to the first (for messages).
 */
static int
check_targets(struct rpc_client_config *cfg, char *err, size_t errlen)
{
	struct rpc_addr a;
	char tmp[256];
	size_t i, n;
	int tcp = 0;

	if (cfg->target != NULL && cfg->targets != NULL) {
		snprintf(err, errlen, "targets: give target or targets, not both");
		return -1;
	}
	if (cfg->target == NULL && cfg->targets == NULL) {
		snprintf(err, errlen, "target: required key is missing");
		return -1;
	}
	if (cfg->targets != NULL && (cfg->ntargets < 1 || cfg->ntargets > 16)) {
		snprintf(err, errlen, "targets: expected 1 to 16 addresses");
		return -1;
	}
	n = cfg->targets != NULL ? cfg->ntargets : 1;
	for (i = 0; i < n; i++) {
		memset(&a, 0, sizeof(a));
		if (rpc_addr_parse(cfg->targets != NULL ? cfg->targets[i]
							: cfg->target,
			&a, tmp, sizeof(tmp)) != 0) {
			if (cfg->targets != NULL)
				snprintf(err, errlen, "targets[%zu]: %s", i, tmp);
			else
				snprintf(err, errlen, "%s", tmp);
			return -1;
		}
		tcp |= a.kind == RPC_ADDR_TCP;
		rpc_addr_clear(&a);
	}
	if (tcp && cfg->tls_cert == NULL) {
		snprintf(err, errlen,
		    "tls: required for a tcp: target "
		    "(mutual TLS)");
		return -1;
	}
	if (cfg->targets != NULL)
		cfg->target = xstrdup(cfg->targets[0]);
	return 0;
}

int
rpc_client_config_parse(
    const json_t *obj, struct rpc_client_config *cfg, char *err, size_t errlen)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->timeout_ms = RPC_DEFAULT_TIMEOUT_MS;
	cfg->connections = 4;
	cfg->max_frame = RPC_DEFAULT_MAX_FRAME;
	if (!json_is_object(obj)) {
		snprintf(err, errlen, "expected an object");
		return -1;
	}
	if (jspec_parse(obj, cli_spec, cfg, err, errlen) != 0)
		goto fail;
	if (check_targets(cfg, err, errlen) != 0)
		goto fail;
	if (check_limits(cfg, cli_limits,
		sizeof(cli_limits) / sizeof(cli_limits[0]), err, errlen) != 0)
		goto fail;
	return 0;
fail:
	rpc_client_config_clear(cfg);
	return -1;
}

/* See rpc.h. */
struct rpc_client *
rpc_client_from_json(const json_t *obj, const char *name,
    struct metrics *metrics, int64_t *timeout_ms, char *err, size_t errlen)
{
	struct rpc_client_config cc;
	struct rpc_client *c = NULL;
	char e[256];

	if (rpc_client_config_parse(obj, &cc, e, sizeof(e)) != 0) {
		snprintf(err, errlen, "%s: %s", name, e);
		return NULL;
	}
	if (timeout_ms != NULL)
		*timeout_ms = cc.timeout_ms;
	if ((c = rpc_client_new(&cc, name, metrics, e, sizeof(e))) == NULL)
		snprintf(err, errlen, "%s: %s", name, e);
	rpc_client_config_clear(&cc);
	return c;
}

void
rpc_client_config_clear(struct rpc_client_config *cfg)
{
	if (cfg == NULL)
		return;
	/* target, when copied from targets[0], is in the spec's slot too */
	jspec_clear(cli_spec, cfg);
	memset(cfg, 0, sizeof(*cfg));
}
