/*
 * pki.c - the plain-HTTP listener for revocation data and issuer
 * certificates (wfe.json "pki"): the URLs that certificates carry in AIA
 * (OCSP, caIssuers) and CRL distribution points.
 *
 *   GET  /ocsp/<base64 DER OCSPRequest>   RFC 6960 Appendix A.1
 *   POST /ocsp                            body: DER OCSPRequest
 *   GET  /crl/<issuer_id>/<shard>.crl     application/pkix-crl
 *   GET  /issuer/<issuer_id>.der          application/pkix-cert
 *
 * The handlers are the ones the ACME listener serves under the same paths
 * (h_misc.c), so every fetch of this data goes through one place. No
 * nonces, no JWS, no ACME resources here: anything else is 404.
 */
#include <string.h>

#include "wfe/wfe_int.h"

#define GH (WFE_GET | WFE_HEAD)

static const struct wfe_route pki_routes[] = {
    {"pki-ocsp", "/ocsp", 0, WFE_POST, wfe_h_ocsp},
    {"pki-ocsp", "/ocsp/", 1, GH, wfe_h_ocsp},
    {"pki-crl", "/crl/", 1, GH, wfe_h_crl},
    {"pki-issuer", "/issuer/", 1, GH, wfe_h_issuer},
};

void
wfe_pki_dispatch(struct wfe_req *r)
{
	const struct wfe_route *rt = NULL;
	const char *tail = "";
	char allow[32];
	size_t i, n;

	for (i = 0; i < sizeof(pki_routes) / sizeof(pki_routes[0]); i++) {
		n = strlen(pki_routes[i].path);
		if (pki_routes[i].prefix ? strncmp(r->path, pki_routes[i].path,
					       n) == 0 &&
			    r->path[n] != '\0'
					 : strcmp(r->path, pki_routes[i].path) ==
			    0) {
			rt = &pki_routes[i];
			tail = r->path + n;
			break;
		}
	}
	if (rt == NULL) {
		r->route = "pki-unknown";
		wfe_reply_prob(
		    r, PROB_NOT_FOUND, "no such resource: %s", r->path);
		return;
	}
	r->route = rt->name;
	if (!(rt->methods & r->method)) {
		wfe_methods_allow(rt->methods, allow, sizeof(allow));
		wfe_reply_prob(r, PROB_METHOD_NOT_ALLOWED,
		    "method not allowed; use %s", allow);
		wfe_add_header(r, "Allow", "%s", allow);
		return;
	}
	rt->fn(r, tail);
	if (!r->done) {
		log_bug("handler %s built no reply", rt->name);
		wfe_reply_prob(r, PROB_SERVER_INTERNAL, "no reply");
	}
}
