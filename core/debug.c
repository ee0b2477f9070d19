/* debug.c - per-process debug HTTP server: /metrics and /healthz. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "core/core.h"

struct debug_server {
	struct MHD_Daemon *d;
	struct metrics *m;
	debug_health_fn health;
	void *health_arg;
};

static enum MHD_Result
debug_reply(struct MHD_Connection *conn, unsigned int status, const char *ctype,
    char *body)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(
	    strlen(body), body, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", ctype);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
debug_handler(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **req_cls)
{
	struct debug_server *s = cls;
	char msg[512];

	(void)version;
	(void)upload_data;
	if (*req_cls == NULL) {
		*req_cls = s; /* first call: headers only */
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		*upload_data_size = 0; /* ignore bodies */
		return MHD_YES;
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return debug_reply(
		    conn, 405, "text/plain", xstrdup("method not allowed\n"));
	if (strcmp(url, "/metrics") == 0)
		return debug_reply(conn, 200,
		    "text/plain; version=0.0.4; charset=utf-8",
		    metrics_render(s->m));
	if (strcmp(url, "/healthz") == 0) {
		msg[0] = '\0';
		if (s->health != NULL &&
		    s->health(s->health_arg, msg, sizeof(msg)) != 0)
			return debug_reply(conn, 503, "text/plain",
			    xasprintf("unhealthy: %s\n", msg));
		return debug_reply(conn, 200, "text/plain", xstrdup("ok\n"));
	}
	return debug_reply(conn, 404, "text/plain", xstrdup("not found\n"));
}

struct debug_server *
debug_server_start(const char *addr, int port, struct metrics *m,
    debug_health_fn health, void *health_arg, char *err, size_t errlen)
{
	struct debug_server *s;
	struct sockaddr_storage ss;
	socklen_t sslen;

	memset(&ss, 0, sizeof(ss));
	if (addr == NULL)
		addr = "127.0.0.1";
	if (port <= 0 || port > 65535) {
		snprintf(err, errlen, "debug port %d out of range", port);
		return NULL;
	}
	if (strchr(addr, ':') != NULL) {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;

		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, addr, &a6->sin6_addr) != 1)
			goto bad_addr;
		sslen = sizeof(*a6);
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;

		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, addr, &a4->sin_addr) != 1)
			goto bad_addr;
		sslen = sizeof(*a4);
	}
	(void)sslen;
	s = xcalloc(1, sizeof(*s));
	s->m = m;
	s->health = health;
	s->health_arg = health_arg;
	s->d =
	    MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
		    (strchr(addr, ':') ? MHD_USE_IPv6 : 0) | MHD_USE_ERROR_LOG,
		(uint16_t)port, NULL, NULL, debug_handler, s,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)64, MHD_OPTION_END);
	if (s->d == NULL) {
		snprintf(err, errlen,
		    "cannot listen on %s:%d for the debug "
		    "server (port in use?)",
		    addr, port);
		free(s);
		return NULL;
	}
	return s;
bad_addr:
	snprintf(
	    err, errlen, "debug address \"%s\" is not an IP address", addr);
	return NULL;
}

void
debug_server_stop(struct debug_server *s)
{
	if (s == NULL)
		return;
	MHD_stop_daemon(s->d);
	free(s);
}
