/*
 * rpc.h - framed JSON RPC between Anvil processes.
 *
 * Frame: 4-byte big-endian length, then one JSON object.
 * Request:  {"id":7,"method":"<service>.<verb>","deadline_ms":<epoch ms>,
 *            "request_id":"<trace id>","params":{...}}
 * Response: {"id":7,"result":{...}} or {"id":7,"error":<problem rpc json>}
 * (see core.h problem_to_rpc_json). Protocol details: docs/rpc.md.
 *
 * Transports: "unix:/path/to.sock" or "tcp:host:port" (mutual TLS).
 */
#ifndef ANVIL_RPC_H
#define ANVIL_RPC_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/core.h"
#include "rpc/contract.h"

#define RPC_DEFAULT_MAX_FRAME (16u * 1024u * 1024u)
#define RPC_DEFAULT_TIMEOUT_MS 10000

/* ------------------------------------------------------------------ */
/* Server                                                               */
/* ------------------------------------------------------------------ */

/* What a handler sees of one call. All members borrowed for the call. */
struct rpc_req {
	const char *method;
	/* Registry entry of the method, NULL outside the contract; the
	 * params have been checked against contract->params. */
	const struct rpc_contract *contract;
	json_t *params;         /* always an object ({} if absent) */
	const char *request_id; /* trace id, may be NULL */
	const char *peer;    /* identity: "uid:0" (unix) or cert name (tls) */
	int64_t deadline_ms; /* wall-clock epoch ms; 0 = none */
};

/*
 * A method handler, run on a worker thread. On success returns 0 and sets
 * *result to a new JSON reference (an object; the server takes it). On
 * failure returns -1 and sets *prob (the server takes it and sends it as
 * the error). `svc` is the pointer given to rpc_server_new.
 */
typedef int (*rpc_handler_fn)(void *svc, const struct rpc_req *req,
    json_t **result, struct problem **prob);

struct rpc_method {
	const char *name; /* wire name */
	rpc_handler_fn fn;
	/* Registry entry (rpc/methods.def); NULL for a method outside the
	 * contract (test servers). rpc_server_new fills it in by name. */
	const struct rpc_contract *contract;
};

/*
 * The dispatch table of one service, derived from the registry: one entry
 * for each method `owner` owns, with handlers[id] as its handler (handlers
 * is indexed by enum rpc_method_id, RPC_METHOD__MAX entries). Fails (NULL,
 * err) when an owned method has no handler or a handler is given for a
 * method another service owns. Returns a new array (caller frees; the
 * names and contracts point into the registry) and its length in *n.
 */
struct rpc_method *rpc_contract_methods(enum rpc_service owner,
    const rpc_handler_fn *handlers, size_t *n, char *err, size_t errlen);

/*
 * Server configuration, parsed from the "rpc" object of a service's config
 * with rpc_server_config_parse:
 * {
 *   "listen": "unix:var/run/sa.sock" | "tcp:127.0.0.1:9101",
 *   "workers": 8,
 *   "max_frame": 16777216,
 *   "socket_mode": "0660",                      (unix only)
 *   "tls": {"cert": "...", "key": "...", "ca": "..."},   (tcp only)
 *   "callers": {"wfe": ["anvil-wfe"], "ra": ["anvil-ra"],
 *               "ca": ["anvil-ca"], "admin": ["root"]},
 *   "allow": {"test.echo": ["*"]}     (methods outside the registry only)
 * }
 * Identities: for TLS the client certificate's first SAN DNS name (else
 * CN); for Unix sockets "uid:<n>" or a user name, or "*" meaning any peer
 * that could connect (the socket's file mode is then the access control).
 * A registry method (rpc/methods.def) may be called by an identity listed
 * under one of the caller classes the registry gives it; nothing else
 * (deny by default). "allow" governs only methods outside the registry
 * (test servers): keys are method names, prefixes ending in "*" or "*";
 * a call is allowed when any matching key lists the caller.
 * health.check is always allowed.
 * Call rpc_server_config_clear after use, also after a failed parse.
 */
struct rpc_server_config {
	char *listen;
	int64_t workers;
	int64_t max_frame;
	char *socket_mode;
	char *tls_cert;
	char *tls_key;
	char *tls_ca;
	json_t *allow;
	json_t *callers;
};

/* 0 or -1 with a message naming the bad key in err. Fills defaults. */
int rpc_server_config_parse(
    const json_t *obj, struct rpc_server_config *cfg, char *err, size_t errlen);
void rpc_server_config_clear(struct rpc_server_config *cfg);

struct rpc_server;

/*
 * Creates a server: binds and listens (a stale unix socket file is
 * replaced; one that a live server answers on is an error). Borrows cfg,
 * methods (must outlive the server), svc and metrics (may be NULL).
 * health.check is added automatically; if `health` is non-NULL it is called
 * for health.check and for the debug /healthz. Returns NULL with err.
 */
struct rpc_server *rpc_server_new(const struct rpc_server_config *cfg,
    const struct rpc_method *methods, size_t nmethods, void *svc,
    struct metrics *metrics, debug_health_fn health, void *health_arg,
    char *err, size_t errlen);
/*
 * rpc_server_new for one service of the registry: the dispatch table is
 * rpc_contract_methods(owner, handlers) (see there), so the server answers
 * exactly the methods the registry gives `owner`, with its caller classes
 * and parameter specs. Same borrowing and result as rpc_server_new.
 */
struct rpc_server *rpc_server_new_service(const struct rpc_server_config *cfg,
    enum rpc_service owner, const rpc_handler_fn *handlers, void *svc,
    struct metrics *metrics, debug_health_fn health, void *health_arg,
    char *err, size_t errlen);
/*
 * Runs the event loop until rpc_server_stop or SIGTERM/SIGINT (handled
 * inside: stop accepting, finish in-flight calls, return). Returns 0.
 */
int rpc_server_run(struct rpc_server *s);
/* Thread-safe; makes rpc_server_run drain and return. */
void rpc_server_stop(struct rpc_server *s);
void rpc_server_free(struct rpc_server *s);

/* ------------------------------------------------------------------ */
/* Client                                                               */
/* ------------------------------------------------------------------ */

/*
 * Client configuration ("sa": {...} objects in a service's config):
 * {
 *   "target": "unix:var/run/sa.sock" | "tcp:127.0.0.1:9101",
 *   "timeout": "10s",
 *   "connections": 4,
 *   "max_frame": 16777216,
 *   "tls": {"cert": "...", "key": "...", "ca": "...", "server_name": "sa"}
 * }
 * or, instead of "target", several instances of the service:
 *   "targets": ["tcp:10.77.0.21:9101", "tcp:10.77.0.22:9101"],
 *   "connect_timeout": "1s"
 * Each call starts at the next target in turn (spreading the load) and
 * moves on to the following one, within the call's deadline, when a
 * target cannot be reached (connect refused or timed out, connection
 * lost before the request was sent) and, for read-only methods of the
 * registry, also when the request was sent but the connection failed or
 * the call timed out. A write that may have reached a server is never sent
 * twice: its failure is returned (PROB_UNAVAILABLE) for the caller to
 * retry as it would any failure. A target that failed is skipped until its
 * back-off (20 ms doubling to 1 s) has passed. connect_timeout (default
 * 1s with targets, else the call's deadline) bounds one connect + TLS
 * handshake, so an unreachable machine costs at most that much per call.
 * After a parse, target is the first of targets (for messages).
 */
struct rpc_client_config {
	char *target;
	char **targets; /* NULL or ntargets addresses */
	size_t ntargets;
	int64_t connect_timeout_ms; /* 0 = default */
	int64_t timeout_ms;
	int64_t connections;
	int64_t max_frame;
	char *tls_cert;
	char *tls_key;
	char *tls_ca;
	char *tls_server_name;
};

int rpc_client_config_parse(
    const json_t *obj, struct rpc_client_config *cfg, char *err, size_t errlen);
void rpc_client_config_clear(struct rpc_client_config *cfg);

struct rpc_client;

/*
 * Creates a client; does not connect yet (connections are made on demand
 * and re-made with backoff after failures, so a peer may start later or
 * restart). Borrows cfg only during the call; metrics may be NULL and must
 * outlive the client. `name` labels metrics (e.g. "sa") and is the server
 * name a TLS peer's certificate must carry unless tls.server_name is set.
 * rpc_call uses up to cfg->connections direct connections (docs/rpc.md);
 * the first rpc_call_async starts an I/O thread. rpc_client_free fails
 * async calls still pending; blocking calls must have returned.
 */
struct rpc_client *rpc_client_new(const struct rpc_client_config *cfg,
    const char *name, struct metrics *metrics, char *err, size_t errlen);
/*
 * rpc_client_config_parse of obj (borrowed), then rpc_client_new: the
 * client of the peer `name` a service config describes. Errors in err are
 * prefixed "name: ". *timeout_ms (if not NULL) receives the configured
 * call timeout. NULL on failure.
 */
struct rpc_client *rpc_client_from_json(const json_t *obj, const char *name,
    struct metrics *metrics, int64_t *timeout_ms, char *err, size_t errlen);
void rpc_client_free(struct rpc_client *c);

/*
 * Blocking call, safe from any thread; the calling thread does the I/O on
 * a connection checked out for the call. params is borrowed (NULL = {}).
 * timeout_ms <= 0 uses the configured default. request_id may be NULL.
 * Returns 0 and *result (new reference, caller decrefs) on success;
 * -1 and *prob (caller frees) on an error response or on failure to reach
 * the peer (PROB_UNAVAILABLE, "sa unavailable: ...") or timeout
 * (PROB_UNAVAILABLE, "... timed out").
 */
int rpc_call(struct rpc_client *c, const char *method, json_t *params,
    int timeout_ms, const char *request_id, json_t **result,
    struct problem **prob);

/*
 * Asynchronous call for libevent users: the callback runs on `base`'s
 * thread with either result (borrowed) or prob (borrowed), exactly once,
 * also on timeout or failure. `base` must have been created after
 * rpc_init() (or any rpc_client_new/rpc_server_new), must keep running
 * (e.g. EVLOOP_NO_EXIT_ON_EMPTY) and outlive the call. Returns 0, or -1
 * (bad arguments, request too large; the callback will not run).
 */
struct event_base;
typedef void (*rpc_done_fn)(void *arg, json_t *result, struct problem *prob);
int rpc_call_async(struct rpc_client *c, struct event_base *base,
    const char *method, json_t *params, int timeout_ms, const char *request_id,
    rpc_done_fn done, void *arg);

/* ------------------------------------------------------------------ */
/* Helpers (extensions)                                                 */
/* ------------------------------------------------------------------ */

/*
 * Enables libevent's pthreads support (once per process; also done by
 * rpc_server_new and rpc_client_new). Call it from main() before creating
 * an event_base that will receive rpc_call_async callbacks. 0 or -1.
 */
int rpc_init(void);

/*
 * Milliseconds left before the call's deadline, for a handler that calls
 * further services: min(remaining, cap_ms) (cap_ms <= 0: no cap); 1 when
 * the deadline has already passed; cap_ms (or 0 = client default) when the
 * call has no deadline. Borrows req.
 */
int rpc_req_remaining_ms(const struct rpc_req *req, int cap_ms);

/* ------------------------------------------------------------------ */
/* Service skeleton (service.c)                                         */
/* ------------------------------------------------------------------ */

/*
 * What a daemon hands the skeleton once configured and opened. Every
 * member is borrowed and must stay valid until ops->free.
 */
struct rpc_service_conf {
	/* log level, debug server (/metrics, /healthz), "rpc" server object
	 * (RPC services): the common part of the service's config, checked
	 * (config_common_check) by configure */
	const struct config_common *common;
	/* Set by open: */
	struct metrics *metrics;
	void *svc;                      /* the handlers' svc pointer */
	const rpc_handler_fn *handlers; /* by registry id */
	debug_health_fn health;
	void *health_arg;
};

/*
 * One daemon's part of rpc_service_main. Callbacks get the state from
 * state_new; each may be NULL when the daemon has nothing to do there.
 */
struct rpc_service_ops {
	const char *name;       /* "anvil-sa": log tag and usage */
	enum rpc_service owner; /* methods served; RPC_SVC_ANY = no RPC server */
	const char *usage;      /* extra usage lines (own flags), may be NULL */
	int keep_secret;        /* holds keys or passwords: not dumpable */
	/* The daemon's state, or NULL when it cannot be made (no memory,
	 * no locks). */
	void *(*state_new)(void);
	/* An own flag at argv[*i] (may consume more by advancing *i): 1 taken,
	 * 2 taken and no config needed (a standalone command), 0 unknown. */
	int (*flag)(void *st, int argc, char **argv, int *i);
	/* Parses the config file's object (borrowed; the skeleton loaded it
	 * from path, and the hook may change it, e.g. apply environment
	 * overrides) into st and points conf->common at its common part
	 * (config_common_check done). 0, or -1 with err naming the file and
	 * the key. */
	int (*configure)(void *st, json_t *obj, const char *path,
	    struct rpc_service_conf *conf, char *err, size_t errlen);
	/* --check: what beyond configure makes the config usable (files,
	 * keys). 0 or -1 with err. */
	int (*check)(void *st, char *err, size_t errlen);
	/* A command instead of serving (migrate, bench...): the exit status,
	 * or -1 to go on serving. */
	int (*command)(void *st, int configured);
	/* Opens what the service serves with (database, keys, clients) and
	 * sets conf->svc, handlers, health. 0 or -1 with err. */
	int (*open)(void *st, struct rpc_service_conf *conf, char *err,
	    size_t errlen);
	/* After the servers are up and privileges dropped: timers, threads. */
	int (*start)(void *st, char *err, size_t errlen);
	/* RPC_SVC_ANY only: serves until a stop signal; the exit status. */
	int (*run)(void *st);
	/* Stops background work (the RPC server has drained). */
	void (*stop)(void *st);
	void (*free)(void *st);
};

/*
 * The skeleton of every anvil-* daemon: flags (-c/--config FILE, --check,
 * --user NAME, --version, --help, plus ops->flag), config, logging, SIGPIPE
 * ignored, the debug server, the RPC server built from the registry
 * (rpc_server_new_service for ops->owner), dropping privileges after the
 * sockets and keys are open (--user when started as root; no new
 * privileges; not dumpable for keep_secret), serving until SIGTERM/SIGINT,
 * draining and freeing. Returns the process exit status (2 for usage).
 */
int rpc_service_main(const struct rpc_service_ops *ops, int argc, char **argv);

#endif /* ANVIL_RPC_H */
