/*
 * contract.c - the method registry (rpc/methods.def) as data: lookups,
 * parameter checks, the dispatch table of one service and the generated
 * documentation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/rpc.h"

#define RPC_SVC_OF(o) RPC_SVC_##o
#define RPC_ACCESS_OF(a) RPC_##a

static const struct rpc_contract registry[RPC_METHOD__MAX] = {
#define RPC_METHOD(id, name, owner, access, callers, params, result, errors)   \
	[RPC_##id] = {RPC_##id, name, RPC_SVC_OF(owner),                       \
	    RPC_ACCESS_OF(access), (callers), params, result, errors},
#include "rpc/methods.def"
#undef RPC_METHOD
};

static const char *const svc_names[RPC_SVC__MAX] = {
    "any", "sa", "ra", "ca", "va"};

static const char *const caller_names[RPC_CALLER__COUNT] = {
    "wfe", "ra", "ca", "admin", "va"};

/* See contract.h. */
const struct rpc_contract *
rpc_contract_get(enum rpc_method_id id)
{
	if ((int)id < 0 || id >= RPC_METHOD__MAX)
		return NULL;
	return &registry[id];
}

/* See contract.h. */
const char *
rpc_method_name(enum rpc_method_id id)
{
	const struct rpc_contract *m = rpc_contract_get(id);

	return m != NULL ? m->name : "?";
}

/* See contract.h. */
const struct rpc_contract *
rpc_contract_find(const char *name)
{
	size_t i;

	if (name == NULL)
		return NULL;
	for (i = 0; i < RPC_METHOD__MAX; i++)
		if (strcmp(registry[i].name, name) == 0)
			return &registry[i];
	return NULL;
}

/* See contract.h. */
const char *
rpc_service_name(enum rpc_service svc)
{
	if ((int)svc < 0 || svc >= RPC_SVC__MAX)
		return "?";
	return svc_names[svc];
}

/* See contract.h. */
const char *
rpc_caller_name(unsigned bit)
{
	unsigned i;

	for (i = 0; i < RPC_CALLER__COUNT; i++)
		if (bit == (1u << i))
			return caller_names[i];
	return NULL;
}

/* See contract.h. */
unsigned
rpc_caller_parse(const char *name)
{
	unsigned i;

	for (i = 0; i < RPC_CALLER__COUNT; i++)
		if (strcmp(caller_names[i], name) == 0)
			return 1u << i;
	return 0;
}

/* See contract.h. */
int
rpc_contract_check_params(const struct rpc_contract *m, const json_t *params,
    char *err, size_t errlen)
{
	json_t *empty = NULL;
	int rc;

	if (params == NULL)
		params = empty = json_object();
	rc = jspec_check(params, m->params, err, errlen);
	json_decref(empty);
	return rc;
}

/* See rpc.h. */
struct rpc_method *
rpc_contract_methods(enum rpc_service owner, const rpc_handler_fn *handlers,
    size_t *n, char *err, size_t errlen)
{
	struct rpc_method *out;
	size_t i, k = 0;

	*n = 0;
	out = xcalloc(RPC_METHOD__MAX, sizeof(*out));
	for (i = 0; i < RPC_METHOD__MAX; i++) {
		const struct rpc_contract *m = &registry[i];

		if (m->owner != owner) {
			if (handlers[i] != NULL && m->owner != RPC_SVC_ANY) {
				snprintf(err, errlen,
				    "%s service has a handler for %s, "
				    "which %s owns",
				    rpc_service_name(owner), m->name,
				    rpc_service_name(m->owner));
				free(out);
				return NULL;
			}
			continue;
		}
		if (handlers[i] == NULL) {
			snprintf(err, errlen, "%s has no handler", m->name);
			free(out);
			return NULL;
		}
		out[k].name = m->name;
		out[k].fn = handlers[i];
		out[k].contract = m;
		k++;
	}
	*n = k;
	return out;
}

/* See rpc.h. */
struct rpc_server *
rpc_server_new_service(const struct rpc_server_config *cfg,
    enum rpc_service owner, const rpc_handler_fn *handlers, void *svc,
    struct metrics *metrics, debug_health_fn health, void *health_arg,
    char *err, size_t errlen)
{
	struct rpc_method *methods;
	struct rpc_server *s;
	size_t n;

	methods = rpc_contract_methods(owner, handlers, &n, err, errlen);
	if (methods == NULL)
		return NULL;
	s = rpc_server_new(
	    cfg, methods, n, svc, metrics, health, health_arg, err, errlen);
	free(methods);
	return s;
}

static void
params_doc(const struct jspec *p, char *buf, size_t len)
{
	static const char *const tn[JSPEC__MAX] = {"string", "int", "bool",
	    "duration", "json", "object", "strings", "number"};
	size_t off = 0;

	buf[0] = '\0';
	if (p->name == NULL) {
		snprintf(buf, len, "—");
		return;
	}
	for (; p->name != NULL && off < len; p++) {
		int w = snprintf(buf + off, len - off, "%s`%s` %s%s",
		    off ? ", " : "", p->name, tn[p->type],
		    p->required ? "" : " (opt)");

		if (w < 0)
			break;
		off += (size_t)w;
	}
}

static void
callers_doc(unsigned callers, char *buf, size_t len)
{
	size_t off = 0;
	unsigned i;

	buf[0] = '\0';
	for (i = 0; i < RPC_CALLER__COUNT && off < len; i++) {
		int w;

		if (!(callers & (1u << i)))
			continue;
		w = snprintf(buf + off, len - off, "%s%s", off ? ", " : "",
		    caller_names[i]);
		if (w < 0)
			break;
		off += (size_t)w;
	}
}

/* See contract.h. */
int
rpc_contract_write_doc(FILE *f)
{
	static const struct {
		enum rpc_service svc;
		const char *title;
	} sections[] = {
	    {RPC_SVC_SA, "sa.* — storage (anvil-sa)"},
	    {RPC_SVC_CA, "ca.* — certificate authority (anvil-ca)"},
	    {RPC_SVC_VA, "va.* — validation authority (anvil-va)"},
	    {RPC_SVC_RA, "ra.* — registration authority (anvil-ra)"},
	    {RPC_SVC_ANY, "Served by every service"},
	};
	char pbuf[1024], cbuf[128];
	size_t s, i;

	fprintf(f,
	    "<!-- generated from rpc/methods.def by `anvil-rpc doc`; "
	    "do not edit by hand -->\n");
	for (s = 0; s < sizeof(sections) / sizeof(sections[0]); s++) {
		fprintf(f, "\n### %s\n\n", sections[s].title);
		fprintf(f,
		    "| method | access | callers | params | result | "
		    "errors |\n|---|---|---|---|---|---|\n");
		for (i = 0; i < RPC_METHOD__MAX; i++) {
			const struct rpc_contract *m = &registry[i];

			if (m->owner != sections[s].svc)
				continue;
			params_doc(m->params, pbuf, sizeof(pbuf));
			callers_doc(m->callers, cbuf, sizeof(cbuf));
			fprintf(f, "| `%s` | %s | %s | %s | %s | %s |\n",
			    m->name, m->access == RPC_RO ? "read" : "write",
			    cbuf, pbuf, m->result, m->errors);
		}
	}
	return ferror(f) ? -1 : 0;
}

/* See contract.h. */
int
rpc_contract_write_json(FILE *f)
{
	json_t *all = json_array();
	size_t i;
	unsigned b;
	int rc;

	for (i = 0; i < RPC_METHOD__MAX; i++) {
		const struct rpc_contract *m = &registry[i];
		json_t *callers = json_array(), *params = json_array();
		const struct jspec *p;

		for (b = 0; b < RPC_CALLER__COUNT; b++)
			if (m->callers & (1u << b))
				json_array_append_new(
				    callers, json_string(caller_names[b]));
		for (p = m->params; p->name != NULL; p++)
			json_array_append_new(params,
			    json_pack("{s:s,s:b}", "name", p->name, "required",
				p->required));
		json_array_append_new(all,
		    json_pack("{s:s,s:s,s:s,s:o,s:o}", "name", m->name, "owner",
			svc_names[m->owner], "access",
			m->access == RPC_RO ? "read" : "write", "callers",
			callers, "params", params));
	}
	rc = json_dumpf(all, f, JSON_INDENT(1)) == 0 ? 0 : -1;
	fputc('\n', f);
	json_decref(all);
	return rc;
}
