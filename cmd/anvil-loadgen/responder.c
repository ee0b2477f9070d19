/*
 * responder.c - the loadgen's own http-01 server: a libevent evhttp loop in
 * one thread serving /.well-known/acme-challenge/<token> from a table the
 * workers fill. The table is a mutex-protected chained hash (workers put
 * and delete, the loop thread reads).
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>

#include "core/core.h"
#include "cmd/anvil-loadgen/lg.h"

#define NBUCKETS 4096
#define PREFIX "/.well-known/acme-challenge/"

struct entry {
	char *token;
	char *key_authz;
	struct entry *next;
};

struct lg_responder {
	struct event_base *base;
	struct evhttp *http;
	pthread_t thread;
	int thread_started;
	pthread_mutex_t mu;
	struct entry *buckets[NBUCKETS];
	atomic_uint_fast64_t served;
};

static unsigned
hash(const char *s)
{
	unsigned h = 2166136261u;

	while (*s != '\0')
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h % NBUCKETS;
}

void
lg_responder_put(
    struct lg_responder *r, const char *token, const char *key_authz)
{
	struct entry *e;
	unsigned h = hash(token);

	if (r == NULL) /* --no-responder: nothing to serve */
		return;
	e = xcalloc(1, sizeof(*e));
	e->token = xstrdup(token);
	e->key_authz = xstrdup(key_authz);
	if (pthread_mutex_lock(&r->mu) != 0)
		abort();
	e->next = r->buckets[h];
	r->buckets[h] = e;
	if (pthread_mutex_unlock(&r->mu) != 0)
		abort();
}

void
lg_responder_del(struct lg_responder *r, const char *token)
{
	struct entry **pp, *dead = NULL;
	unsigned h = hash(token);

	if (r == NULL)
		return;
	if (pthread_mutex_lock(&r->mu) != 0)
		abort();
	for (pp = &r->buckets[h]; *pp != NULL; pp = &(*pp)->next) {
		if (strcmp((*pp)->token, token) == 0) {
			dead = *pp;
			*pp = dead->next;
			break;
		}
	}
	if (pthread_mutex_unlock(&r->mu) != 0)
		abort();
	if (dead != NULL) {
		free(dead->token);
		free(dead->key_authz);
		free(dead);
	}
}

uint64_t
lg_responder_served(struct lg_responder *r)
{
	return r != NULL ? atomic_load(&r->served) : 0;
}

/* Copy of the key authorization for token, or NULL. */
static char *
lookup(struct lg_responder *r, const char *token)
{
	struct entry *e;
	char *out = NULL;

	if (pthread_mutex_lock(&r->mu) != 0)
		abort();
	for (e = r->buckets[hash(token)]; e != NULL; e = e->next)
		if (strcmp(e->token, token) == 0) {
			out = xstrdup(e->key_authz);
			break;
		}
	if (pthread_mutex_unlock(&r->mu) != 0)
		abort();
	return out;
}

static void
on_request(struct evhttp_request *req, void *arg)
{
	struct lg_responder *r = arg;
	const char *uri = evhttp_request_get_uri(req);
	struct evbuffer *buf = NULL;
	char *ka = NULL;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET || uri == NULL ||
	    strncmp(uri, PREFIX, strlen(PREFIX)) != 0) {
		evhttp_send_error(req, HTTP_NOTFOUND, NULL);
		return;
	}
	ka = lookup(r, uri + strlen(PREFIX));
	buf = evbuffer_new();
	if (ka == NULL || buf == NULL ||
	    evbuffer_add(buf, ka, strlen(ka)) != 0 ||
	    evhttp_add_header(evhttp_request_get_output_headers(req),
		"Content-Type", "text/plain") != 0) {
		evhttp_send_error(req, HTTP_NOTFOUND, NULL);
		goto out;
	}
	evhttp_send_reply(req, HTTP_OK, "OK", buf);
	atomic_fetch_add(&r->served, 1);
out:
	if (buf != NULL)
		evbuffer_free(buf);
	free(ka);
}

static void *
loop_main(void *arg)
{
	struct lg_responder *r = arg;

	if (event_base_dispatch(r->base) < 0)
		log_error("http-01 responder loop failed");
	return NULL;
}

struct lg_responder *
lg_responder_start(const char *addr, int port, char *err, size_t errlen)
{
	struct lg_responder *r = xcalloc(1, sizeof(*r));

	if (pthread_mutex_init(&r->mu, NULL) != 0)
		abort();
	atomic_init(&r->served, 0);
	if (evthread_use_pthreads() != 0) {
		snprintf(err, errlen, "libevent without pthreads support");
		goto fail;
	}
	r->base = event_base_new();
	r->http = r->base != NULL ? evhttp_new(r->base) : NULL;
	if (r->http == NULL) {
		snprintf(err, errlen, "cannot create the http-01 responder");
		goto fail;
	}
	evhttp_set_gencb(r->http, on_request, r);
	evhttp_set_timeout(r->http, 10);
	if (evhttp_bind_socket(r->http, addr, (ev_uint16_t)port) != 0) {
		snprintf(err, errlen,
		    "http-01 responder cannot listen on %s:%d", addr, port);
		goto fail;
	}
	if (pthread_create(&r->thread, NULL, loop_main, r) != 0) {
		snprintf(err, errlen, "pthread_create failed");
		goto fail;
	}
	r->thread_started = 1;
	return r;
fail:
	lg_responder_stop(r);
	return NULL;
}

void
lg_responder_stop(struct lg_responder *r)
{
	int i;

	if (r == NULL)
		return;
	if (r->thread_started) {
		if (event_base_loopbreak(r->base) != 0)
			log_bug("event_base_loopbreak failed");
		if (pthread_join(r->thread, NULL) != 0)
			log_bug("pthread_join failed");
	}
	if (r->http != NULL)
		evhttp_free(r->http);
	if (r->base != NULL)
		event_base_free(r->base);
	for (i = 0; i < NBUCKETS; i++) {
		while (r->buckets[i] != NULL) {
			struct entry *e = r->buckets[i];

			r->buckets[i] = e->next;
			free(e->token);
			free(e->key_authz);
			free(e);
		}
	}
	if (pthread_mutex_destroy(&r->mu) != 0)
		log_bug("pthread_mutex_destroy failed");
	free(r);
}
