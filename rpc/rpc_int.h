/*
 * rpc_int.h - internals shared by the files of rpc/ (and its unit tests and
 * fuzz target). Not for use outside rpc/.
 */
#ifndef ANVIL_RPC_INT_H
#define ANVIL_RPC_INT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/ssl.h>

#include "core/core.h"

struct event_base;
struct evbuffer;

/* ------------------------------------------------------------------ */
/* Framing (frame.c)                                                    */
/* ------------------------------------------------------------------ */

enum rpc_frame_status {
	RPC_FRAME_OK,   /* one frame decoded */
	RPC_FRAME_NEED, /* not enough bytes yet */
	RPC_FRAME_BAD,  /* protocol error: the connection must be closed */
	RPC_FRAME__MAX
};

/*
 * Reads the 4-byte big-endian length at hdr. Returns RPC_FRAME_BAD (reason
 * in err) when the length is 0 or above max_frame, else RPC_FRAME_OK with
 * the payload length in *len.
 */
enum rpc_frame_status rpc_frame_header(const uint8_t hdr[4], size_t max_frame,
    size_t *len, char *err, size_t errlen);

/*
 * Decodes one frame from the start of buf (len bytes, borrowed). On
 * RPC_FRAME_OK sets *out to a new reference to the JSON object and
 * *consumed to the bytes used. RPC_FRAME_NEED: *consumed is the total
 * number of bytes the frame needs (or 4 if the header is incomplete).
 * RPC_FRAME_BAD: reason in err (oversized, invalid JSON, not an object).
 */
enum rpc_frame_status rpc_frame_decode(const uint8_t *buf, size_t len,
    size_t max_frame, size_t *consumed, json_t **out, char *err, size_t errlen);

/*
 * Serialises obj (borrowed) into a new frame (header + compact JSON).
 * Returns the malloc'd frame (caller frees) and its length in *len, or NULL
 * when it cannot be encoded or is larger than max_frame.
 */
uint8_t *rpc_frame_encode(const json_t *obj, size_t max_frame, size_t *len);

/* A parsed request; members borrow from the frame object. */
struct rpc_parsed_req {
	json_t *id; /* integer or string */
	const char *method;
	json_t *params; /* object, or NULL when absent */
	const char *request_id;
	int64_t deadline_ms;
};

/*
 * Checks a request object (borrowed). Returns 0 when valid; 1 when the id
 * is usable but something else is wrong (answer with a malformed error
 * whose detail is in err); -1 when there is no usable id (close).
 */
int rpc_request_parse(
    json_t *frame, struct rpc_parsed_req *req, char *err, size_t errlen);

/*
 * Checks a response object (borrowed). Returns 0 and sets *id; then either
 * *result (borrowed) is set or *prob (new, caller frees). -1 when the
 * object is not a response (err set).
 */
int rpc_response_parse(json_t *frame, int64_t *id, json_t **result,
    struct problem **prob, char *err, size_t errlen);

/* New response objects. id and result are borrowed (result is copied by
 * reference). */
json_t *rpc_response_ok(json_t *id, json_t *result);
json_t *rpc_response_err(json_t *id, const struct problem *prob);

/* ------------------------------------------------------------------ */
/* Targets and TLS (tls.c)                                             */
/* ------------------------------------------------------------------ */

enum rpc_addr_kind { RPC_ADDR_UNIX, RPC_ADDR_TCP, RPC_ADDR__MAX };

struct rpc_addr {
	enum rpc_addr_kind kind;
	char *path; /* unix */
	char *host; /* tcp, without brackets */
	char *port; /* tcp */
};

/* Parses "unix:/path" or "tcp:host:port" / "tcp:[v6]:port". 0 or -1. */
int rpc_addr_parse(const char *s, struct rpc_addr *a, char *err, size_t errlen);
void rpc_addr_clear(struct rpc_addr *a);

/*
 * New TLS contexts (TLS 1.2+). Server: requires and verifies a client
 * certificate against ca. Client: verifies the server against ca and
 * presents cert/key. NULL with err on failure; caller frees with
 * SSL_CTX_free.
 */
SSL_CTX *rpc_tls_server_ctx(const char *cert, const char *key, const char *ca,
    char *err, size_t errlen);
SSL_CTX *rpc_tls_client_ctx(const char *cert, const char *key, const char *ca,
    char *err, size_t errlen);
/* Identity of the verified peer: first SAN DNS name, else CN. Caller
 * frees; NULL if none. */
char *rpc_tls_peer_name(SSL *ssl);
/* Last OpenSSL error queue entry as text into buf (and clears the queue). */
const char *rpc_tls_errstr(char *buf, size_t buflen);

/* TCP keepalive (probe after 30 s idle, every 10 s, 3 probes): a dead peer
 * host is noticed on an idle connection. */
void rpc_tcp_keepalive(int fd);
struct addrinfo;
struct sockaddr_un;
/* A non-blocking, close-on-exec Unix stream socket (fd, or -1 with errno)
 * and *sun set to path, for a connect. */
int rpc_unix_socket(const char *path, struct sockaddr_un *sun);
/* The stream addresses of host:port into *res (the caller frees it with
 * freeaddrinfo). 0, or -1 with "resolve HOST: why" in err. */
int rpc_resolve(const char *host, const char *port, struct addrinfo **res,
    char *err, size_t errlen);
/* A non-blocking, close-on-exec client socket for ai with TCP_NODELAY and
 * keepalive (rpc_tcp_keepalive): fd, or -1 with errno. */
int rpc_tcp_socket(const struct addrinfo *ai);
/* Ignores SIGPIPE if it still has its default action. */
void rpc_ignore_sigpipe(void);
/* evthread_use_pthreads once; 0 or -1. */
int rpc_threads_init(void);

/* ------------------------------------------------------------------ */
/* Transport: a non-blocking socket, optionally TLS (xport.c)          */
/* ------------------------------------------------------------------ */

enum rpc_xport_event {
	RPC_XPORT_CONNECTED, /* connect (and TLS handshake) done */
	RPC_XPORT_READ,      /* new bytes in the input buffer */
	RPC_XPORT_CLOSED,    /* EOF or error; reason via rpc_xport_error */
	RPC_XPORT_DRAINED,   /* output buffer emptied (if asked for) */
	RPC_XPORT__MAX
};

struct rpc_xport;
struct event;

/*
 * An intrusive FIFO: items linked through ->next from head to tail (both
 * NULL when empty). PUSH appends it; POP takes the head into out (NULL
 * when empty). The caller holds whatever lock guards the list.
 */
#define RPC_FIFO_PUSH(head, tail, it)                                          \
	do {                                                                   \
		(it)->next = NULL;                                             \
		if ((tail) != NULL)                                            \
			(tail)->next = (it);                                   \
		else                                                           \
			(head) = (it);                                         \
		(tail) = (it);                                                 \
	} while (0)
#define RPC_FIFO_POP(head, tail, out)                                          \
	do {                                                                   \
		(out) = (head);                                                \
		if ((out) != NULL && ((head) = (out)->next) == NULL)           \
			(tail) = NULL;                                         \
	} while (0)

/* event_free of each of the n events that is not NULL (an owner's events,
 * some of which may never have been made). */
void rpc_events_free(struct event *const *evs, size_t n);

/*
 * Callback on the loop thread. The owner may free the transport inside the
 * callback only for RPC_XPORT_CLOSED, or when it returns 1 ("freed").
 */
typedef int (*rpc_xport_cb)(
    struct rpc_xport *x, enum rpc_xport_event ev, void *arg);

/*
 * Wraps fd (taken; closed by rpc_xport_free). ctx NULL = plain; otherwise
 * TLS, server side when is_server, else client with SNI/hostname check
 * against server_name. connecting: fd has a non-blocking connect in
 * progress. RPC_XPORT_CONNECTED is always delivered from the loop, never
 * from inside this call. NULL on failure (fd closed).
 */
struct rpc_xport *rpc_xport_new(struct event_base *base, int fd, SSL_CTX *ctx,
    int is_server, const char *server_name, int connecting, rpc_xport_cb cb,
    void *arg);
void rpc_xport_free(struct rpc_xport *x);
struct evbuffer *rpc_xport_input(struct rpc_xport *x);
struct evbuffer *rpc_xport_output(struct rpc_xport *x);
/* Call after appending to the output buffer. */
void rpc_xport_flush(struct rpc_xport *x);
/* Asks for one RPC_XPORT_DRAINED when the output buffer is next empty. */
void rpc_xport_notify_drained(struct rpc_xport *x);
/* Stops / resumes reading from the socket (back-pressure). */
void rpc_xport_pause(struct rpc_xport *x, int paused);
/* Reason of the close (static storage inside x). */
const char *rpc_xport_error(const struct rpc_xport *x);
/* TLS object or NULL (borrowed). */
SSL *rpc_xport_ssl(struct rpc_xport *x);
int rpc_xport_fd(const struct rpc_xport *x);

/*
 * Hands the socket over to another owner: frees the transport's events
 * and buffers but neither closes fd nor frees the TLS object, which go to
 * *fd and *ssl (NULL when plain). Copy the unread input first. Only from
 * the transport's callback, which must then return 1 ("freed").
 */
void rpc_xport_detach(struct rpc_xport *x, int *fd, SSL **ssl);

/* ------------------------------------------------------------------ */
/* Direct connections (sconn.c): one thread drives one socket           */
/* ------------------------------------------------------------------ */

/* Results besides 0 (done). */
enum rpc_sconn_status {
	SCONN_TIMEOUT = 1, /* the deadline passed */
	SCONN_WOKEN,       /* wake_fd became readable */
	SCONN_EOF,         /* the peer closed between frames */
	SCONN_ERR,         /* I/O or TLS failure (err says) */
	SCONN_BAD,         /* a frame that breaks the protocol (err says) */
	SCONN_AGAIN,       /* internal: would block */
	SCONN__MAX
};

/* The name of the built-in call that moves a connection to a server thread
 * of its own (docs/rpc.md, "Direct connections"). */
#define RPC_DIRECT_METHOD "rpc.direct"

struct rpc_sconn;

/*
 * Connects to a (borrowed) and, when ctx is set, completes the TLS
 * handshake checking server_name, all by deadline (monotonic ms; 0 =
 * none). NULL with the reason in err.
 */
struct rpc_sconn *rpc_sconn_connect(const struct rpc_addr *a, SSL_CTX *ctx,
    const char *server_name, int64_t deadline, char *err, size_t errlen);
/* Wraps an open non-blocking fd and its TLS object (both taken; ssl may
 * be NULL) with npending bytes already read from it (copied). */
struct rpc_sconn *rpc_sconn_wrap(
    int fd, SSL *ssl, const uint8_t *pending, size_t npending);
/* Closes and frees (NULL is fine). */
void rpc_sconn_free(struct rpc_sconn *k);
int rpc_sconn_fd(const struct rpc_sconn *k);
/*
 * Writes all len bytes of buf (borrowed) by deadline (0 = none). A
 * readable wake_fd (-1 = none) ends the wait. 0, SCONN_TIMEOUT,
 * SCONN_WOKEN or SCONN_ERR (err).
 */
int rpc_sconn_write(struct rpc_sconn *k, const uint8_t *buf, size_t len,
    int64_t deadline, int wake_fd, char *err, size_t errlen);
/*
 * Reads one frame by deadline: 0 with *out (new reference to the JSON
 * object), or SCONN_TIMEOUT, SCONN_WOKEN, SCONN_EOF, SCONN_ERR or SCONN_BAD
 * with err.
 */
int rpc_sconn_read_frame(struct rpc_sconn *k, size_t max_frame,
    int64_t deadline, int wake_fd, json_t **out, char *err, size_t errlen);
/* 1 when an idle connection is no longer usable: the peer closed it or
 * sent bytes nobody asked for. Never blocks. */
int rpc_sconn_stale(struct rpc_sconn *k);

/* ------------------------------------------------------------------ */
/* Authorization (server.c, exposed for unit tests)                    */
/* ------------------------------------------------------------------ */

/*
 * Whether peer (and optional user name) may call method under the "allow"
 * object (borrowed, may be NULL). Keys: exact method names, prefixes ending
 * in "*" ("sa.get_*"), or "*". Allowed when any matching key lists the
 * identity, the user name or "*". health.check is always allowed.
 */
int rpc_authorized(const json_t *allow, const char *method, const char *peer,
    const char *user);
/*
 * Whether peer (and optional user name) may call the registry method m
 * under the "callers" object (borrowed, may be NULL = nobody): allowed when
 * one of the classes m->callers names lists the identity, the user name or
 * "*". health.check is always allowed.
 */
int rpc_authorized_contract(const json_t *callers, const struct rpc_contract *m,
    const char *peer, const char *user);

#endif /* ANVIL_RPC_INT_H */
