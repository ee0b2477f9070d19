/*
 * contract.h - the RPC contract between Anvil's processes, as the compiler
 * sees it: one id per method (generated from rpc/methods.def), its owner
 * service, parameter spec (core/jspec), reply shape, read-only or write,
 * and the caller classes allowed to call it.
 *
 * Callers name methods by id (RPC_SA_GET_ORDER), never by string; servers
 * build their dispatch table with rpc_contract_methods; rpc_server checks
 * the caller and the parameters against the entry before a handler runs.
 * Only rpc/ includes this header's users' wire names: see
 * docs/rpc-methods.md (generated: `anvil-rpc doc`).
 */
#ifndef ANVIL_RPC_CONTRACT_H
#define ANVIL_RPC_CONTRACT_H

#include <stddef.h>

#include "core/core.h"

/* The services that own methods. RPC_SVC_ANY: served by every server. */
enum rpc_service {
	RPC_SVC_ANY,
	RPC_SVC_SA,
	RPC_SVC_RA,
	RPC_SVC_CA,
	RPC_SVC_VA,
	RPC_SVC__MAX
};

/* Caller classes (bits). A server's "callers" config maps identities to
 * classes; a method lists the classes allowed. */
enum rpc_caller {
	RPC_BY_WFE = 1u << 0,
	RPC_BY_RA = 1u << 1,
	RPC_BY_CA = 1u << 2,
	RPC_BY_ADMIN = 1u << 3,
	/* a primary VA asking a remote VA to corroborate (docs/scaling.md) */
	RPC_BY_VA = 1u << 4,
};
#define RPC_CALLER__COUNT 5

enum rpc_access { RPC_RO, RPC_RW, RPC_ACCESS__MAX };

/* One id per method of rpc/methods.def: RPC_SA_GET_ORDER, ... */
enum rpc_method_id {
#define RPC_METHOD(id, name, owner, access, callers, params, result, errors)   \
	RPC_##id,
#include "rpc/methods.def"
#undef RPC_METHOD
	RPC_METHOD__MAX
};

/* One registry entry (static storage, never freed). */
struct rpc_contract {
	enum rpc_method_id id;
	const char *name; /* wire name, e.g. sa.get_order */
	enum rpc_service owner;
	enum rpc_access access;
	unsigned callers;           /* RPC_BY_* bits */
	const struct jspec *params; /* terminated by JSPEC_END */
	const char *result;         /* reply shape (Markdown) */
	const char *errors;         /* problem types (Markdown) */
};

/* Parameter spec helpers for rpc/methods.def. */
#define RPC_P(key, type)                                                       \
	{                                                                      \
		key, JSPEC_##type, 0, 1, NULL, 0                               \
	}
#define RPC_O(key, type)                                                       \
	{                                                                      \
		key, JSPEC_##type, 0, 0, NULL, 0                               \
	}
#define RPC_PARAMS(...) ((const struct jspec[]){__VA_ARGS__, JSPEC_END})
#define RPC_NO_PARAMS ((const struct jspec[]){JSPEC_END})

/* The entry of id (never NULL for a valid id; NULL when out of range). */
const struct rpc_contract *rpc_contract_get(enum rpc_method_id id);
/* The wire name of id ("?" when out of range). */
const char *rpc_method_name(enum rpc_method_id id);
/* The entry named name (borrowed), or NULL: not part of the contract. */
const struct rpc_contract *rpc_contract_find(const char *name);

/* "sa", "ra", "ca", "va" or "any". */
const char *rpc_service_name(enum rpc_service svc);
/* Class name of one RPC_BY_* bit ("wfe", "ra", "ca", "admin", "va"), or
 * NULL. */
const char *rpc_caller_name(unsigned bit);
/* The RPC_BY_* bit named name, or 0 when unknown. */
unsigned rpc_caller_parse(const char *name);

/*
 * Checks params (borrowed; NULL counts as {}) against the method's spec:
 * 0, or -1 with a message naming the bad key in err ("id: expected an
 * integer", "foo: unknown key", "id: required key is missing").
 */
int rpc_contract_check_params(const struct rpc_contract *m,
    const json_t *params, char *err, size_t errlen);

/*
 * Writes docs/rpc-methods.md's generated part (the method tables) to f.
 * Returns 0 or -1 on a write error.
 */
int rpc_contract_write_doc(FILE *f);
/* Writes the registry as one JSON document (for tests and tools) to f. */
int rpc_contract_write_json(FILE *f);

#endif /* ANVIL_RPC_CONTRACT_H */
