/*
 * bench.c - `anvil-ca --bench` (ca_daemon.c): the signing pipeline's speed per key type
 * with an in-memory store that accepts everything, so that only the CA's
 * own work is measured (scripts/bench-ca.sh compares it with
 * `openssl speed`).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "ca/ca_int.h"

struct null_store {
	const char *issuer_id; /* what sa.get_certificate answers */
};

/* Accepts every write; answers reads with a good certificate. */
static int
null_call(void *arg, enum rpc_method_id id, json_t *params, const char *rid,
    json_t **result, struct problem **prob)
{
	struct null_store *ns = arg;

	(void)params;
	(void)rid;
	if (id == RPC_SA_GET_CERTIFICATE) {
		*result = json_pack(
		    "{s:s, s:s}", "status", "good", "issuer_id", ns->issuer_id);
		return 0;
	}
	if (id == RPC_SA_GET_OCSP) {
		*prob = problem_new(PROB_NOT_FOUND, "no cache in the bench");
		return -1;
	}
	if (id == RPC_SA_NEXT_CRL_NUMBER) {
		*result = json_pack("{s:i}", "number", 1);
		return 0;
	}
	if (id == RPC_SA_REVOKED_BY_SHARD) {
		*result = json_pack("{s:[]}", "entries");
		return 0;
	}
	*result = json_object();
	return 0;
}

/* DER CSR for bench.example.com with a fresh key. */
static uint8_t *
bench_csr(enum ca_key_type kt, size_t *len)
{
	EVP_PKEY *k = ca_key_generate(kt, 0); /* RSA 2048 or P-256 */
	X509_REQ *req = X509_REQ_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509_EXTENSION *e;
	unsigned char *p = NULL;
	uint8_t *der = NULL;
	int n;

	if (k == NULL || req == NULL || exts == NULL)
		goto out;
	e = X509V3_EXT_conf_nid(
	    NULL, NULL, NID_subject_alt_name, "DNS:bench.example.com");
	if (e == NULL || !sk_X509_EXTENSION_push(exts, e)) {
		X509_EXTENSION_free(e);
		goto out;
	}
	if (!X509_REQ_set_pubkey(req, k) ||
	    !X509_REQ_add_extensions(req, exts) ||
	    X509_REQ_sign(req, k, EVP_sha256()) <= 0)
		goto out;
	n = i2d_X509_REQ(req, &p);
	(void)ca_der_take(n, p, &der, len); /* der stays NULL on failure */
out:
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
	EVP_PKEY_free(k);
	return der;
}

enum bench_op { OP_ISSUE, OP_OCSP, OP_CRL, OP_SIGN };

struct worker {
	struct ca *ca;
	enum bench_op op;
	const uint8_t *csr;
	size_t csrlen;
	const json_t *ids;
	const char *serial;
	const char *issuer_id;
	const struct ca_issuer *issuer; /* OP_SIGN */
	int64_t until_ms;
	long done;
	long failed;
};

static void *
work(void *arg)
{
	struct worker *w = arg;
	struct ca_issue_req r;
	struct ca_issued out;
	struct problem *p = NULL;
	uint8_t *der;
	size_t len;
	int rc;

	memset(&r, 0, sizeof(r));
	r.csr_der = w->csr;
	r.csr_len = w->csrlen;
	r.identifiers = w->ids;
	r.profile = "shortlived";
	r.account_id = 1;
	while (time_mono_ms() < w->until_ms) {
		der = NULL;
		switch (w->op) {
		case OP_ISSUE:
			rc = ca_issue(w->ca, &r, &out, &p);
			if (rc == 0)
				ca_issued_clear(&out);
			break;
		case OP_OCSP:
			rc = ca_ocsp(w->ca, w->serial, NULL, &der, &len, &p);
			break;
		case OP_SIGN: /* the issuer key alone: one SHA-256 signature */
			rc = ca_issuer_sign(w->issuer,
			    (const uint8_t *)w->serial, 32, &der, &len);
			break;
		default:
			rc = ca_generate_crl(
			    w->ca, w->issuer_id, 0, NULL, NULL, &der, &len, &p);
			break;
		}
		free(der);
		if (rc == 0) {
			w->done++;
		} else {
			w->failed++;
			problem_free(p);
			p = NULL;
		}
	}
	return NULL;
}

/* Ops per second over `threads` threads for `ms`; -1 on failures. */
static double
run(struct ca *ca, enum bench_op op, const uint8_t *csr, size_t csrlen,
    const json_t *ids, const char *issuer_id, int threads, int64_t ms)
{
	struct worker *w = xcalloc((size_t)threads, sizeof(*w));
	pthread_t *th = xcalloc((size_t)threads, sizeof(*th));
	int64_t start = time_mono_ms(), el;
	long done = 0, failed = 0;
	int i, started = 0;

	for (i = 0; i < threads; i++) {
		w[i].ca = ca;
		w[i].op = op;
		w[i].csr = csr;
		w[i].csrlen = csrlen;
		w[i].ids = ids;
		w[i].serial = "7f0102030405060708090a0b0c0d0e0f1011";
		w[i].issuer_id = issuer_id;
		w[i].issuer = ca_issuers_find(ca_get_issuers(ca), issuer_id);
		w[i].until_ms = start + ms;
		if (pthread_create(&th[i], NULL, work, &w[i]) != 0)
			break;
		started++;
	}
	for (i = 0; i < started; i++) {
		pthread_join(th[i], NULL);
		done += w[i].done;
		failed += w[i].failed;
	}
	el = time_mono_ms() - start;
	free(w);
	free(th);
	if (failed > 0 || started < threads)
		return -1;
	return el > 0 ? (double)done * 1000.0 / (double)el : 0;
}

/* See bench.h. */
int
ca_bench_main(const char *issuers_path, const char *profiles_path,
    double seconds, int threads)
{
	struct profiles *profiles = NULL;
	struct ca_issuers *issuers = NULL;
	struct ca *ca[CA_KEY__MAX] = {NULL, NULL};
	struct null_store ns[CA_KEY__MAX], ns_cur;
	struct ca_settings s;
	const struct ca_issuer *is;
	uint8_t *csr = NULL;
	size_t csrlen = 0;
	json_t *ids = NULL;
	char err[1024];
	int64_t ms = (int64_t)(seconds * 1000);
	int kt, rc = 1;
	double issue1, issuen, ocsp, crl, sign1, signn;

	ids = json_pack(
	    "[{s:s, s:s}]", "type", "dns", "value", "bench.example.com");
	if ((profiles = profiles_load(profiles_path, err, sizeof(err))) == NULL)
		goto fail;
	/* One CA over one load of the issuers: a PKCS#11 module can be
	 * initialized once per process. */
	if ((issuers = ca_issuers_load(issuers_path, err, sizeof(err))) == NULL)
		goto fail;
	for (kt = 0; kt < CA_KEY__MAX; kt++) {
		is = ca_issuers_choose(
		    issuers, "shortlived", (enum ca_key_type)kt);
		if (is == NULL) {
			snprintf(err, sizeof(err), "no %s issuer",
			    ca_key_type_name((enum ca_key_type)kt));
			goto fail;
		}
		ns[kt].issuer_id = ca_issuer_id(is);
	}
	ca_settings_defaults(&s);
	s.public_base_url = "https://bench.test";
	s.crl_shards = 1;
	/* The store answers for the key type being measured (ns.issuer_id
	 * is set before each round; rounds run one after the other). */
	ns_cur.issuer_id = ns[0].issuer_id;
	ca[0] = ca_new(&s, issuers, profiles,
	    (struct ca_store){null_call, &ns_cur}, NULL, err, sizeof(err));
	issuers = NULL;
	if (ca[0] == NULL)
		goto fail;
	ca[1] = ca[0];
	for (kt = 0; kt < CA_KEY__MAX; kt++) {
		free(csr);
		if ((csr = bench_csr((enum ca_key_type)kt, &csrlen)) == NULL) {
			snprintf(err, sizeof(err), "CSR generation failed");
			goto fail;
		}
		ns_cur.issuer_id = ns[kt].issuer_id;
		issue1 = run(ca[kt], OP_ISSUE, csr, csrlen, ids,
		    ns[kt].issuer_id, 1, ms);
		issuen = run(ca[kt], OP_ISSUE, csr, csrlen, ids,
		    ns[kt].issuer_id, threads, ms);
		ocsp = run(
		    ca[kt], OP_OCSP, csr, csrlen, ids, ns[kt].issuer_id, 1, ms);
		crl = run(
		    ca[kt], OP_CRL, csr, csrlen, ids, ns[kt].issuer_id, 1, ms);
		sign1 = run(ca[kt], OP_SIGN, csr, csrlen, ids,
		    ns[kt].issuer_id, 1, ms);
		signn = run(ca[kt], OP_SIGN, csr, csrlen, ids,
		    ns[kt].issuer_id, threads, ms);
		if (issue1 < 0 || issuen < 0 || ocsp < 0 || crl < 0 ||
		    sign1 < 0 || signn < 0) {
			snprintf(err, sizeof(err),
			    "%s: operations failed "
			    "during the bench",
			    ca_key_type_name((enum ca_key_type)kt));
			goto fail;
		}
		printf("{\"key_type\":\"%s\",\"issue_per_s\":%.0f,"
		       "\"issue_per_s_threads\":%.0f,\"threads\":%d,"
		       "\"ocsp_per_s\":%.0f,\"crl_per_s\":%.0f,"
		       "\"sign_per_s\":%.0f,\"sign_per_s_threads\":%.0f,"
		       "\"key\":\"%s\"}\n",
		    ca_key_type_name((enum ca_key_type)kt), issue1, issuen,
		    threads, ocsp, crl, sign1, signn,
		    ca_issuer_in_token(ca_issuers_find(ca_get_issuers(ca[kt]),
			ns[kt].issuer_id))
			? "pkcs11"
			: "memory");
		fflush(stdout);
	}
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "anvil-ca --bench: %s\n", err);
out:
	ca_free(ca[0]); /* ca[1] is the same CA */
	ca_issuers_free(issuers);
	profiles_free(profiles);
	json_decref(ids);
	free(csr);
	return rc;
}
