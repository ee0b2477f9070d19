/*
 * reply.c - the one place responses are built: problems, JSON, raw bytes.
 * http.c turns the result into an MHD response and adds the headers every
 * response carries (Replay-Nonce, Link rel="index").
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wfe/wfe_int.h"

void
wfe_add_header(struct wfe_req *r, const char *name, const char *fmt, ...)
{
	va_list ap;
	char *v = NULL;

	if (r->nhdrs >= WFE_MAX_HEADERS) {
		log_bug("too many response headers (%s)", name);
		return;
	}
	va_start(ap, fmt);
	if (vasprintf(&v, fmt, ap) < 0)
		abort();
	va_end(ap);
	r->hdrs[r->nhdrs].name = xstrdup(name);
	r->hdrs[r->nhdrs].value = v;
	r->nhdrs++;
}

static void
reply_clear(struct wfe_req *r)
{
	size_t i;

	free(r->out);
	r->out = NULL;
	r->out_len = 0;
	/* Headers set for a success reply (Location, Link up) do not belong
	 * on a problem that replaced it. */
	for (i = 0; i < r->nhdrs; i++) {
		free(r->hdrs[i].name);
		free(r->hdrs[i].value);
	}
	r->nhdrs = 0;
}

json_t *
wfe_problem_body(const struct problem *p, int *status)
{
	json_t *j = problem_to_json(p);
	json_t *st = json_object_get(j, "status");

	*status = p->status ? p->status : prob_type_status(p->type);
	if (*status < 400 || *status > 599)
		*status = 500;
	if (!json_is_integer(st) || json_integer_value(st) != *status)
		json_object_set_new(j, "status", json_integer(*status));
	return j;
}

void
wfe_reply_problem(struct wfe_req *r, struct problem *p)
{
	json_t *j = NULL;
	int status = 500;
	int retry = p->retry_after;

	reply_clear(r);
	j = wfe_problem_body(p, &status);
	if (p->type == PROB_BAD_SIGNATURE_ALGORITHM)
		json_object_set_new(
		    j, "algorithms", jose_policy_algs_json(&r->w->policy));
	if (retry <= 0 && (p->type == PROB_UNAVAILABLE || status == 503))
		retry = 1;
	if (retry > 0)
		wfe_add_header(r, "Retry-After", "%d", retry);
	if (status >= 500)
		log_msg(LOG_LEVEL_WARN, r->rid, "%s %s -> %d %s: %s",
		    r->method == WFE_POST ? "POST" : "GET", r->path, status,
		    prob_type_name(p->type), p->detail ? p->detail : "");
	else
		log_msg(LOG_LEVEL_INFO, r->rid, "%s -> %d %s: %s", r->path,
		    status, prob_type_name(p->type),
		    p->detail ? p->detail : "");
	r->out = json_dumps(j, JSON_COMPACT);
	r->out_len = r->out ? strlen(r->out) : 0;
	r->status = status;
	r->ctype = "application/problem+json";
	r->want_nonce = 1;
	r->done = 1;
	json_decref(j);
	problem_free(p);
}

void
wfe_reply_prob(struct wfe_req *r, enum prob_type t, const char *fmt, ...)
{
	va_list ap;
	char *d = NULL;
	struct problem *p;

	va_start(ap, fmt);
	if (vasprintf(&d, fmt, ap) < 0)
		abort();
	va_end(ap);
	p = problem_new(t, "%s", d);
	free(d);
	wfe_reply_problem(r, p);
}

void
wfe_reply_json(struct wfe_req *r, int status, json_t *j)
{
	if (j == NULL) {
		log_bug("reply without a JSON body (route %s)", r->route);
		wfe_reply_prob(r, PROB_SERVER_INTERNAL,
		    "could not build the "
		    "response");
		return;
	}
	free(r->out);
	r->out = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	r->out_len = r->out ? strlen(r->out) : 0;
	r->status = status;
	r->ctype = "application/json";
	r->done = 1;
	json_decref(j);
}

void
wfe_reply_raw(
    struct wfe_req *r, int status, const char *ctype, char *data, size_t len)
{
	free(r->out);
	r->out = data;
	r->out_len = len;
	r->status = status;
	r->ctype = ctype;
	r->done = 1;
}
