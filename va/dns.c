/*
 * dns.c - c-ares driven from the VA's libevent loop.
 *
 * c-ares tells us which sockets it wants watched (sock_state_cb); each gets
 * a persistent libevent event that calls ares_process_fd. One timer, re-armed
 * after every c-ares call from ares_timeout, drives retransmissions and
 * timeouts. No c-ares call ever blocks.
 */
#include <arpa/nameser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "va/va_int.h"

#define MAX_REQUERY 8

struct dnsq {
	struct va *va;
	char *qname; /* original */
	char *cur;   /* name asked now (after CNAME re-queries) */
	int qtype;
	int requeries;
	va_dns_cb cb;
	void *arg;
};

static void rearm_timer(struct va *va);

static void
fd_cb(evutil_socket_t fd, short what, void *arg)
{
	struct va *va = arg;

	ares_process_fd(va->ares, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
	    (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	rearm_timer(va);
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct va *va = arg;

	(void)fd;
	(void)what;
	ares_process_fd(va->ares, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	rearm_timer(va);
}

static void
rearm_timer(struct va *va)
{
	struct timeval tv, *tvp;

	if (va->ares_timer == NULL)
		return;
	tvp = ares_timeout(va->ares, NULL, &tv);
	if (tvp == NULL) {
		event_del(va->ares_timer);
		return;
	}
	if (evtimer_add(va->ares_timer, tvp) != 0)
		log_bug("evtimer_add failed for the c-ares timer");
}

static void
sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
	struct va *va = data;
	struct va_fdev **pp, *f;

	for (pp = &va->fdevs; (f = *pp) != NULL; pp = &f->next)
		if (f->fd == fd)
			break;
	if (f != NULL) {
		event_free(f->ev);
		f->ev = NULL;
	}
	if (!readable && !writable) {
		if (f != NULL) {
			*pp = f->next;
			free(f);
		}
		return;
	}
	if (f == NULL) {
		f = xcalloc(1, sizeof(*f));
		f->fd = fd;
		f->next = va->fdevs;
		va->fdevs = f;
	}
	f->ev = event_new(va->base, fd,
	    (short)(EV_PERSIST | (readable ? EV_READ : 0) |
		(writable ? EV_WRITE : 0)),
	    fd_cb, va);
	if (f->ev == NULL || event_add(f->ev, NULL) != 0)
		log_bug("cannot watch c-ares socket %d", (int)fd);
}

int
va_dns_init(struct va *va, char *err, size_t errlen)
{
	struct ares_options opts;
	char *csv = NULL;
	size_t i, n = 0;
	int rc = -1, r;

	r = ares_library_init(ARES_LIB_INIT_ALL);
	if (r != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares init: %s", ares_strerror(r));
		return -1;
	}
	memset(&opts, 0, sizeof(opts));
	opts.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES |
	    ARES_FLAG_NOCHECKRESP | ARES_FLAG_EDNS;
	opts.timeout = (int)va->cfg->dns_timeout_ms;
	opts.tries = (int)va->cfg->dns_tries;
	opts.ednspsz = 1232;
	/* hundreds of answers can arrive while the loop is busy */
	opts.socket_receive_buffer_size = 1 << 20;
	opts.sock_state_cb = sock_state_cb;
	opts.sock_state_cb_data = va;
	r = ares_init_options(&va->ares, &opts,
	    ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
		ARES_OPT_EDNSPSZ | ARES_OPT_SOCK_STATE_CB |
		ARES_OPT_SOCK_RCVBUF);
	if (r != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares init: %s", ares_strerror(r));
		ares_library_cleanup();
		return -1;
	}
	va->ares_ok = 1;
	for (i = 0; i < va->cfg->n_dns_resolvers; i++)
		n += strlen(va->cfg->dns_resolvers[i]) + 1;
	csv = xcalloc(1, n + 1);
	for (i = 0; i < va->cfg->n_dns_resolvers; i++) {
		if (i)
			strcat(csv, ",");
		strcat(csv, va->cfg->dns_resolvers[i]);
	}
	r = ares_set_servers_ports_csv(va->ares, csv);
	if (r != ARES_SUCCESS || va->cfg->n_dns_resolvers == 0) {
		snprintf(err, errlen, "dns.resolvers: cannot use \"%s\": %s",
		    csv, r != ARES_SUCCESS ? ares_strerror(r) : "empty list");
		goto out;
	}
	va->ares_timer = evtimer_new(va->base, timer_cb, va);
	if (va->ares_timer == NULL) {
		snprintf(err, errlen, "evtimer_new failed");
		goto out;
	}
	rc = 0;
out:
	free(csv);
	return rc;
}

void
va_dns_shutdown(struct va *va)
{
	struct va_fdev *f, *next;

	if (va->ares_ok) {
		/* Pending queries call back with ARES_EDESTRUCTION. */
		ares_destroy(va->ares);
		ares_library_cleanup();
		va->ares_ok = 0;
	}
	for (f = va->fdevs; f != NULL; f = next) {
		next = f->next;
		if (f->ev)
			event_free(f->ev);
		free(f);
	}
	va->fdevs = NULL;
	if (va->ares_timer)
		event_free(va->ares_timer);
	va->ares_timer = NULL;
}

static void send_query(struct dnsq *q);

static void
finish(struct dnsq *q, struct va_dns_result *res)
{
	res->qtype = q->qtype;
	if (res->qname == NULL)
		res->qname = xstrdup(q->qname);
	q->cb(q->arg, res);
	va_dns_result_clear(res);
	free(q->qname);
	free(q->cur);
	free(q);
}

static void
query_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dnsq *q = arg;
	struct va_dns_result res;

	(void)timeouts;
	memset(&res, 0, sizeof(res));
	switch (status) {
	case ARES_SUCCESS:
		if (va_dns_msg_extract(abuf, alen, q->cur, q->qtype, &res) != 0)
			res.status = VA_DNS_ERROR;
		else if (res.cname_target != NULL &&
		    q->requeries < MAX_REQUERY) {
			/* CNAME without the target's data: ask for it. */
			free(q->cur);
			q->cur = res.cname_target;
			res.cname_target = NULL;
			q->requeries++;
			va_dns_result_clear(&res);
			send_query(q);
			return;
		}
		break;
	case ARES_ENODATA:
		res.status = VA_DNS_NODATA;
		break;
	case ARES_ENOTFOUND:
		res.status = VA_DNS_NXDOMAIN;
		break;
	case ARES_ESERVFAIL:
		res.status = VA_DNS_SERVFAIL;
		break;
	case ARES_EREFUSED:
		res.status = VA_DNS_REFUSED;
		break;
	case ARES_ETIMEOUT:
		res.status = VA_DNS_TIMEOUT;
		break;
	default:
		res.status = VA_DNS_ERROR;
		snprintf(res.msg, sizeof(res.msg), "%s", ares_strerror(status));
		break;
	}
	if (res.status != VA_DNS_ERROR || res.msg[0] == '\0')
		snprintf(res.msg, sizeof(res.msg), "%s",
		    va_dns_status_name(res.status));
	finish(q, &res);
}

static void
send_query(struct dnsq *q)
{
	struct va *va = q->va; /* q may be gone when ares_query returns */

	ares_query(va->ares, q->cur, ns_c_in, q->qtype, query_cb, q);
	rearm_timer(va);
}

void
va_dns_query(
    struct va *va, const char *name, int qtype, va_dns_cb cb, void *arg)
{
	struct dnsq *q = xcalloc(1, sizeof(*q));

	q->va = va;
	q->qname = xstrdup(name);
	q->cur = xstrdup(name);
	q->qtype = qtype;
	q->cb = cb;
	q->arg = arg;
	send_query(q);
}
