/* LIBS: ra jose rpc core */
/*
 * fuzz_deleg_tmpl.c - libFuzzer target over the RFC 9115 CSR template
 * (ra/deleg_tmpl.c): the domain owner's template is untrusted JSON and the
 * NDC's CSR untrusted DER. The input is "<template JSON>\0<CSR DER>": the
 * template goes through ra_deleg_template_check and, when accepted, the
 * identifier check, the profile check and the CSR match. A refusal must
 * say why (err, or a badCSR / rejectedIdentifier problem). Nothing may
 * crash, leak or hang.
 *
 *   scripts/fuzz.sh 60 fuzz_deleg_tmpl  (seeds: test/fuzz/corpus/fuzz_deleg_tmpl/)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "ra/ra.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t tlen = nul ? (size_t)(nul - data) : size;
	json_t *t, *ids;
	struct problem *p = NULL;
	struct profile prof;
	char err[300];

	t = json_loadb((const char *)data, tlen, JSON_REJECT_DUPLICATES, NULL);
	if (t == NULL)
		return 0;
	err[0] = '\0';
	if (ra_deleg_template_check(t, err, sizeof(err)) != 0) {
		if (err[0] == '\0')
			abort();
		json_decref(t);
		return 0;
	}
	ids = json_pack("[{s:s,s:s},{s:s,s:s}]", "type", "dns", "value",
	    "abc.ido.example", "type", "dns", "value", "x.ido.example");
	if (ra_deleg_template_idents(t, ids, &p) != 0 &&
	    (p == NULL || p->type != PROB_REJECTED_IDENTIFIER))
		abort();
	problem_free(p);
	p = NULL;
	memset(&prof, 0, sizeof(prof));
	prof.name = "fuzz";
	prof.eku_server_auth = 1;
	prof.eku_client_auth = 1;
	(void)ra_deleg_template_profile(t, &prof, 1, err, sizeof(err));
	if (nul != NULL &&
	    ra_deleg_template_match(t, nul + 1, size - tlen - 1, &p) != 0 &&
	    (p == NULL || p->type != PROB_BAD_CSR))
		abort();
	problem_free(p);
	json_decref(ids);
	json_decref(t);
	return 0;
}
