/*
 * route.c - the one routing table; 404 and 405 are answered here.
 */
#include <stdlib.h>
#include <string.h>

#include "wfe/wfe_int.h"

#define GH (WFE_GET | WFE_HEAD)
#define P WFE_POST

static const struct wfe_route routes[] = {
    {"directory", "/directory", 0, GH | P, wfe_h_directory},
    {"directory", "/dir", 0, GH | P, wfe_h_directory}, /* Pebble's path */
    {"new-nonce", "/acme/new-nonce", 0, GH | P, wfe_h_new_nonce},
    {"new-account", "/acme/new-account", 0, P, wfe_h_new_account},
    {"new-order", "/acme/new-order", 0, P, wfe_h_new_order},
    {"new-authz", "/acme/new-authz", 0, P, wfe_h_new_authz},
    {"revoke-cert", "/acme/revoke-cert", 0, P, wfe_h_revoke},
    {"key-change", "/acme/key-change", 0, P, wfe_h_key_change},
    {"renewal-info", "/acme/renewal-info/", 1, GH, wfe_h_renewal_info},
    {"account", "/acme/acct/", 1, P, wfe_h_account},
    {"order", "/acme/order/", 1, P, wfe_h_order},
    {"authz", "/acme/authz/", 1, P, wfe_h_authz},
    {"challenge", "/acme/chall/", 1, P, wfe_h_challenge},
    {"finalize", "/acme/finalize/", 1, P, wfe_h_finalize},
    {"cert", "/acme/cert/", 1, GH | P, wfe_h_cert},
    {"crl", "/crl/", 1, GH, wfe_h_crl},
    {"ocsp", "/ocsp", 0, P, wfe_h_ocsp},
    {"ocsp", "/ocsp/", 1, GH, wfe_h_ocsp},
    {"issuer", "/issuer/", 1, GH, wfe_h_issuer},
    /* RFC 8739 STAR: the order's rolling certificate */
    {"star-certificate", "/acme/star-cert/", 1, GH | P, wfe_h_star_cert},
    /* RFC 9115 delegation */
    {"delegations", "/acme/delegations/", 1, P, wfe_h_delegations},
    {"delegation", "/acme/delegation/", 1, P, wfe_h_delegation},
};

const struct wfe_route *
wfe_route_find(const char *path, const char **tail)
{
	size_t i, n;

	if (path == NULL)
		return NULL;
	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		n = strlen(routes[i].path);
		if (routes[i].prefix) {
			if (strncmp(path, routes[i].path, n) == 0 &&
			    path[n] != '\0') {
				*tail = path + n;
				return &routes[i];
			}
		} else if (strcmp(path, routes[i].path) == 0) {
			*tail = path + n;
			return &routes[i];
		}
	}
	return NULL;
}

const char *
wfe_methods_allow(unsigned methods, char *buf, size_t buflen)
{
	buf[0] = '\0';
	snprintf(buf, buflen, "%s%s%s", (methods & WFE_GET) ? "GET, " : "",
	    (methods & WFE_HEAD) ? "HEAD, " : "",
	    (methods & WFE_POST) ? "POST, " : "");
	if (strlen(buf) >= 2)
		buf[strlen(buf) - 2] = '\0';
	return buf;
}

int
wfe_route_name_known(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (strcmp(routes[i].name, name) == 0)
			return 1;
	return 0;
}

void
wfe_dispatch(struct wfe_req *r)
{
	const struct wfe_route *rt;
	const char *tail = "";
	char allow[32];

	rt = wfe_route_find(r->path, &tail);
	if (rt == NULL) {
		r->route = "unknown";
		wfe_reply_prob(
		    r, PROB_NOT_FOUND, "no such resource: %s", r->path);
		return;
	}
	r->route = rt->name;
	if (!(rt->methods & r->method)) {
		struct problem *p;

		wfe_methods_allow(rt->methods, allow, sizeof(allow));
		p = problem_new(PROB_METHOD_NOT_ALLOWED,
		    "method not allowed; use %s%s", allow,
		    (rt->methods & WFE_POST) && !(rt->methods & WFE_GET)
			? " (POST-as-GET to read; RFC 8555 section 6.3)"
			: "");
		wfe_reply_problem(r, p);
		wfe_add_header(r, "Allow", "%s", allow);
		return;
	}
	if (wfe_fault_injected(r, rt->name))
		return;
	rt->fn(r, tail);
	if (!r->done) {
		log_bug("handler %s built no reply", rt->name);
		wfe_reply_prob(r, PROB_SERVER_INTERNAL, "no reply");
	}
}
