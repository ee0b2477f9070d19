/* LIBS: ra jose core */
/*
 * test_ra_csr.c - key policy, weak-key detection with real weak RSA keys
 * generated here (small prime factor, close primes, ROCA-structured
 * primes) and every CSR rejection of finalize.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "csr_der.h"
#include "harness.h"
#include "ra/ra.h"

static EVP_PKEY *
gen_ec(const char *curve)
{
	return EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
}

static EVP_PKEY *
gen_rsa(unsigned bits, unsigned e)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	EVP_PKEY *k = NULL;
	BIGNUM *be = BN_new();

	BN_set_word(be, e);
	if (ctx == NULL || EVP_PKEY_keygen_init(ctx) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)bits) <= 0 ||
	    EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx, be) <= 0 ||
	    EVP_PKEY_keygen(ctx, &k) <= 0)
		k = NULL;
	BN_free(be);
	EVP_PKEY_CTX_free(ctx);
	return k;
}

/* An RSA key of selection (EVP_PKEY_PUBLIC_KEY or EVP_PKEY_KEYPAIR) from
 * the parameters in b (freed here), or NULL. */
static EVP_PKEY *
rsa_fromdata(OSSL_PARAM_BLD *b, int selection)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(b);
	EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	EVP_PKEY *k = NULL;

	if (params == NULL || pctx == NULL ||
	    EVP_PKEY_fromdata_init(pctx) <= 0 ||
	    EVP_PKEY_fromdata(pctx, &k, selection, params) <= 0)
		k = NULL;
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(b);
	EVP_PKEY_CTX_free(pctx);
	return k;
}

/* An RSA private key from its two primes (e = 65537). */
static EVP_PKEY *
rsa_from_pq(const BIGNUM *p, const BIGNUM *q)
{
	BN_CTX *ctx = BN_CTX_new();
	BIGNUM *n = BN_new(), *e = BN_new(), *d = BN_new(), *p1 = BN_new();
	BIGNUM *q1 = BN_new(), *phi = BN_new(), *dp = BN_new(), *dq = BN_new();
	BIGNUM *qi = BN_new();
	OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
	EVP_PKEY *k = NULL;

	BN_set_word(e, 65537);
	BN_mul(n, p, q, ctx);
	BN_sub(p1, p, BN_value_one());
	BN_sub(q1, q, BN_value_one());
	BN_mul(phi, p1, q1, ctx);
	if (BN_mod_inverse(d, e, phi, ctx) == NULL)
		goto out;
	BN_mod(dp, d, p1, ctx);
	BN_mod(dq, d, q1, ctx);
	if (BN_mod_inverse(qi, q, p, ctx) == NULL)
		goto out;
	OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_N, n);
	OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_E, e);
	OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_D, d);
	OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_FACTOR1, p);
	OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_FACTOR2, q);
	OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_EXPONENT1, dp);
	OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_EXPONENT2, dq);
	OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, qi);
	k = rsa_fromdata(b, EVP_PKEY_KEYPAIR);
	b = NULL;
out:
	OSSL_PARAM_BLD_free(b);
	BN_free(n);
	BN_free(e);
	BN_free(d);
	BN_free(p1);
	BN_free(q1);
	BN_free(phi);
	BN_free(dp);
	BN_free(dq);
	BN_free(qi);
	BN_CTX_free(ctx);
	return k;
}

static BIGNUM *
prime_bits(int bits)
{
	BIGNUM *p = BN_new();
	BN_CTX *ctx = BN_CTX_new();

	BN_generate_prime_ex2(p, bits, 0, NULL, NULL, NULL, ctx);
	BN_CTX_free(ctx);
	return p;
}

/* A public RSA key from n (e = 65537). */
static EVP_PKEY *
rsa_public(const BIGNUM *n)
{
	OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();

	OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_N, n);
	OSSL_PARAM_BLD_push_ulong(b, OSSL_PKEY_PARAM_RSA_E, 65537);
	return rsa_fromdata(b, EVP_PKEY_PUBLIC_KEY);
}

/* 2048-bit modulus 751 * p * q (p, q ~1019-bit primes). */
static EVP_PKEY *
weak_small_prime_key(void)
{
	BIGNUM *n = BN_new();
	BN_CTX *ctx = BN_CTX_new();
	EVP_PKEY *k = NULL;

	for (int i = 0; i < 50 && k == NULL; i++) {
		BIGNUM *p = prime_bits(1019), *q = prime_bits(1020);

		BN_mul(n, p, q, ctx);
		BN_clear_free(p);
		BN_clear_free(q);
		if (BN_mul_word(n, 751) == 1 && BN_num_bits(n) == 2048)
			k = rsa_public(n);
	}
	BN_free(n);
	BN_CTX_free(ctx);
	return k;
}

/* p and q adjacent primes: Fermat factors n at once. */
static EVP_PKEY *
weak_fermat_key(void)
{
	BIGNUM *p = prime_bits(1024), *q = BN_dup(p);
	BN_CTX *ctx = BN_CTX_new();
	EVP_PKEY *k;

	do {
		BN_add_word(q, 2);
	} while (BN_check_prime(q, ctx, NULL) != 1);
	k = rsa_from_pq(p, q);
	BN_free(p);
	BN_free(q);
	BN_CTX_free(ctx);
	return k;
}

/* RSALib-structured prime: k * M + (65537^a mod M), M the product of the
 * fingerprint primes 3..167. */
static BIGNUM *
roca_prime(BN_CTX *ctx)
{
	static const unsigned pr[] = {3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37,
	    41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 101, 103, 107,
	    109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167};
	BIGNUM *m, *g, *a, *kk, *e, *t, *lo, *hi, *p = BN_new();
	size_t i;

	/* the temporaries live in ctx's frame, freed by BN_CTX_end */
	BN_CTX_start(ctx);
	m = BN_CTX_get(ctx);
	g = BN_CTX_get(ctx);
	a = BN_CTX_get(ctx);
	kk = BN_CTX_get(ctx);
	e = BN_CTX_get(ctx);
	t = BN_CTX_get(ctx);
	lo = BN_CTX_get(ctx);
	hi = BN_CTX_get(ctx);
	BN_one(m);
	for (i = 0; i < sizeof(pr) / sizeof(pr[0]); i++)
		BN_mul_word(m, pr[i]);
	BN_set_word(e, 65537);
	/* k uniformly in [0.75 * 2^1024 / M, 2^1024 / M): p has 1024 bits
	 * with the top two set, so p * q has exactly 2048 bits. */
	BN_set_word(lo, 3);
	BN_lshift(lo, lo, 1022);
	BN_div(lo, NULL, lo, m, ctx);
	BN_add_word(lo, 1);
	BN_lshift(hi, BN_value_one(), 1024);
	BN_div(hi, NULL, hi, m, ctx);
	BN_sub(hi, hi, lo);
	for (;;) {
		BN_rand(a, 64, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY);
		BN_mod_exp(g, e, a, m, ctx);
		BN_rand_range(kk, hi);
		BN_add(kk, kk, lo);
		BN_mul(p, kk, m, ctx);
		BN_add(p, p, g);
		if (BN_num_bits(p) != 1024 || !BN_is_bit_set(p, 1022))
			continue;
		BN_sub(t, p, BN_value_one());
		BN_gcd(t, t, e, ctx);
		if (!BN_is_one(t))
			continue;
		if (BN_check_prime(p, ctx, NULL) == 1)
			break;
	}
	BN_CTX_end(ctx);
	return p;
}

static EVP_PKEY *
weak_roca_key(void)
{
	BN_CTX *ctx = BN_CTX_new();
	BIGNUM *p = roca_prime(ctx), *q = roca_prime(ctx);
	EVP_PKEY *k = rsa_from_pq(p, q);

	BN_free(p);
	BN_free(q);
	BN_CTX_free(ctx);
	return k;
}

static BIGNUM *
modulus(EVP_PKEY *k)
{
	BIGNUM *n = NULL;

	EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n);
	return n;
}

/* DER CSR with the given CN (may be NULL) and SAN string (OpenSSL
 * config syntax, e.g. "DNS:a.test,IP:10.0.0.1"; may be NULL). */
static uint8_t *
make_csr(EVP_PKEY *key, const char *cn, const char *san, size_t *len)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	uint8_t *der;

	if (cn != NULL)
		X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
		    (const unsigned char *)cn, -1, -1, 0);
	X509_REQ_set_subject_name(req, name);
	X509_REQ_set_pubkey(req, key);
	if (san != NULL) {
		X509_EXTENSION *ext =
		    X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
		sk_X509_EXTENSION_push(exts, ext);
		X509_REQ_add_extensions(req, exts);
	}
	der = csr_sign_der(req, key, EVP_sha256(), len);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_NAME_free(name);
	X509_REQ_free(req);
	return der;
}

static json_t *
idents(const char *spec)
{
	/* "dns:a.test,ip:10.0.0.1" */
	json_t *a = json_array();
	char *s = strdup(spec), *tok, *save = NULL;

	for (tok = strtok_r(s, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char *c = strchr(tok, ':');
		*c = '\0';
		json_array_append_new(
		    a, json_pack("{s:s,s:s}", "type", tok, "value", c + 1));
	}
	free(s);
	return a;
}

/* Runs ra_csr_check; returns the problem type or -1 when accepted. */
static int
check(EVP_PKEY *key, const char *cn, const char *san, const char *ids,
    const struct ra_key_policy *kp, EVP_PKEY *acct)
{
	size_t len;
	uint8_t *der = make_csr(key, cn, san, &len);
	json_t *id = idents(ids);
	struct problem *p = NULL;
	int rc;

	rc = ra_csr_check(der, len, id, kp, acct, NULL, &p);
	if (rc == 0)
		rc = -1;
	else {
		rc = (int)p->type;
		fprintf(stderr, "    (%s: %s)\n", prob_type_name(p->type),
		    p->detail);
	}
	problem_free(p);
	json_decref(id);
	free(der);
	return rc;
}

static struct ra_key_policy kp;
static EVP_PKEY *ec256, *ec384, *ec521, *rsa2048;

/* One CSR check: the test that runs it, the key (one of main's), the CN
 * and SAN of the CSR (NULL: none), the order's identifiers and the problem
 * expected (-1: accepted). */
enum csr_test { T_GOOD, T_MISMATCH };
static const struct {
	enum csr_test test;
	EVP_PKEY *const *key;
	const char *cn, *san, *ids;
	int want;
} csr_cases[] = {
    {T_GOOD, &ec256, "a.test", "DNS:a.test,DNS:b.test", "dns:a.test,dns:b.test",
	-1},
    {T_GOOD, &ec384, NULL, "DNS:b.test,DNS:a.test", "dns:a.test,dns:b.test",
	-1},
    {T_GOOD, &rsa2048, "A.Test", "DNS:A.TEST", "dns:a.test", -1},
    {T_GOOD, &ec256, NULL, "DNS:*.a.test", "dns:*.a.test", -1},
    {T_GOOD, &ec256, "10.0.0.1", "IP:10.0.0.1,DNS:a.test",
	"dns:a.test,ip:10.0.0.1", -1},
    {T_GOOD, &ec256, NULL, "IP:::1", "ip:::1", -1},
    /* extra name */
    {T_MISMATCH, &ec256, NULL, "DNS:a.test,DNS:c.test", "dns:a.test",
	PROB_BAD_CSR},
    /* missing name */
    {T_MISMATCH, &ec256, NULL, "DNS:a.test", "dns:a.test,dns:b.test",
	PROB_BAD_CSR},
    /* CN not among the SANs */
    {T_MISMATCH, &ec256, "c.test", "DNS:a.test", "dns:a.test", PROB_BAD_CSR},
    /* CN only, no SAN */
    {T_MISMATCH, &ec256, "a.test", NULL, "dns:a.test", PROB_BAD_CSR},
    /* other SAN types */
    {T_MISMATCH, &ec256, NULL, "DNS:a.test,email:x@a.test", "dns:a.test",
	PROB_BAD_CSR},
    {T_MISMATCH, &ec256, NULL, "DNS:a.test,URI:https://a.test/", "dns:a.test",
	PROB_BAD_CSR},
    /* wildcard vs base name are different identifiers */
    {T_MISMATCH, &ec256, NULL, "DNS:a.test", "dns:*.a.test", PROB_BAD_CSR},
    /* IP vs DNS */
    {T_MISMATCH, &ec256, NULL, "DNS:10.0.0.1", "ip:10.0.0.1", PROB_BAD_CSR},
};

/* Runs the rows of csr_cases for test (default key policy, no account
 * key); a failing row is printed. */
static void
check_csrs(struct th *t, enum csr_test test)
{
	for (size_t i = 0; i < sizeof(csr_cases) / sizeof(csr_cases[0]); i++) {
		int got;

		if (csr_cases[i].test != test)
			continue;
		got = check(*csr_cases[i].key, csr_cases[i].cn,
		    csr_cases[i].san, csr_cases[i].ids, &kp, NULL);
		if (got != csr_cases[i].want) {
			fprintf(stderr, "  FAIL CSR %s for %s: %d (want %d)\n",
			    csr_cases[i].san ? csr_cases[i].san : "-",
			    csr_cases[i].ids, got, csr_cases[i].want);
			t->cur_failed++;
		}
	}
}

TH_TEST(test_good_csrs)
{
	check_csrs(t, T_GOOD);
}

TH_TEST(test_name_mismatches)
{
	check_csrs(t, T_MISMATCH);
}

TH_TEST(test_bad_der_and_signature)
{
	size_t len;
	uint8_t *der = make_csr(ec256, NULL, "DNS:a.test", &len);
	json_t *id = idents("dns:a.test");
	struct problem *p = NULL;
	uint8_t junk[] = {0x30, 0x03, 0x02, 0x01, 0x01};

	der[len - 5] ^= 0x55; /* inside the signature */
	TH_CHECK(t, ra_csr_check(der, len, id, &kp, NULL, NULL, &p) == -1);
	TH_CHECK(t, p != NULL && p->type == PROB_BAD_CSR);
	problem_free(p);
	p = NULL;
	TH_CHECK(t,
	    ra_csr_check(junk, sizeof(junk), id, &kp, NULL, NULL, &p) == -1 &&
		p != NULL && p->type == PROB_BAD_CSR);
	problem_free(p);
	p = NULL;
	/* trailing garbage after a valid CSR */
	der[len - 5] ^= 0x55;
	{
		uint8_t *d2 = malloc(len + 1);
		memcpy(d2, der, len);
		d2[len] = 0;
		TH_CHECK(t,
		    ra_csr_check(d2, len + 1, id, &kp, NULL, NULL, &p) == -1 &&
			p != NULL && p->type == PROB_BAD_CSR);
		free(d2);
	}
	problem_free(p);
	json_decref(id);
	free(der);
}

TH_TEST(test_key_policy)
{
	EVP_PKEY *small = gen_rsa(1024, 65537), *e3 = gen_rsa(2048, 3);
	EVP_PKEY *odd = gen_rsa(2304, 65537);
	struct ra_key_policy kp521 = kp;
	/* a CSR for a.test by key under a key policy with an account key:
	 * the problem expected (-1: accepted) */
	const struct {
		EVP_PKEY *key;
		const struct ra_key_policy *kp;
		EVP_PKEY *acct;
		int want;
	} cases[] = {
	    {small, &kp, NULL, PROB_BAD_PUBLIC_KEY},
	    {e3, &kp, NULL, PROB_BAD_PUBLIC_KEY},
	    /* 2304 is between min and max but not a listed size */
	    {odd, &kp, NULL, PROB_BAD_PUBLIC_KEY},
	    {ec521, &kp, NULL, PROB_BAD_PUBLIC_KEY},
	    {ec521, &kp521, NULL, -1},
	    /* the account key may not be the certificate key */
	    {ec256, &kp, ec256, PROB_BAD_CSR},
	    {ec256, &kp, ec384, -1},
	};

	TH_CHECK(t, small != NULL && e3 != NULL && odd != NULL);
	kp521.allow_p521 = 1;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		TH_CHECK(t,
		    check(cases[i].key, NULL, "DNS:a.test", "dns:a.test",
			cases[i].kp, cases[i].acct) == cases[i].want);
	EVP_PKEY_free(small);
	EVP_PKEY_free(e3);
	EVP_PKEY_free(odd);
}

/*
 * What every weak-key test checks on k (taken): its modulus is 2048 bits,
 * each detector's verdict (1 flagged, 0 not, -1 not asked: small_prime at
 * bound 751, fermat at 110 rounds, roca), ra_key_check refuses it as
 * badPublicKey naming why, and so does a CSR check when k has its private
 * half (csr).
 */
static void
check_weak(struct th *t, EVP_PKEY *k, int small_prime, int fermat, int roca,
    const char *why, int csr)
{
	struct problem *p = NULL;
	BIGNUM *n;

	TH_CHECK(t, k != NULL);
	if (k == NULL)
		return;
	n = modulus(k);
	TH_CHECK(t, BN_num_bits(n) == 2048);
	TH_CHECK(
	    t, small_prime < 0 || ra_weak_small_prime(n, 751) == small_prime);
	TH_CHECK(t, fermat < 0 || ra_weak_fermat(n, 110) == fermat);
	TH_CHECK(t, roca < 0 || ra_weak_roca(n) == roca);
	TH_CHECK(t,
	    ra_key_check(&kp, k, &p) == -1 && p != NULL &&
		p->type == PROB_BAD_PUBLIC_KEY &&
		strstr(p->detail, why) != NULL);
	problem_free(p);
	TH_CHECK(t,
	    !csr ||
		check(k, NULL, "DNS:a.test", "dns:a.test", &kp, NULL) ==
		    PROB_BAD_PUBLIC_KEY);
	BN_free(n);
	EVP_PKEY_free(k);
}

TH_TEST(test_weak_small_prime)
{
	EVP_PKEY *k = weak_small_prime_key();
	BIGNUM *n = k != NULL ? modulus(k) : NULL;

	/* the smallest factor is 751: a bound below it does not find it */
	TH_CHECK(t, n != NULL && ra_weak_small_prime(n, 743) == 0);
	BN_free(n);
	/* a public key only (n = 751 * p * q): no CSR */
	check_weak(t, k, 1, -1, -1, "small prime", 0);
}

TH_TEST(test_weak_fermat)
{
	check_weak(t, weak_fermat_key(), 0, 1, 0, "Fermat", 1);
}

TH_TEST(test_weak_roca)
{
	check_weak(t, weak_roca_key(), -1, 0, 1, "ROCA", 1);
}

TH_TEST(test_strong_keys_pass_weak_tests)
{
	int i, flagged = 0;

	for (i = 0; i < 5; i++) {
		EVP_PKEY *k = gen_rsa(2048, 65537);
		BIGNUM *n = modulus(k);
		flagged += ra_weak_small_prime(n, 751) +
		    ra_weak_fermat(n, 110) + ra_weak_roca(n);
		BN_free(n);
		EVP_PKEY_free(k);
	}
	TH_CHECK(t, flagged == 0);
}

TH_TEST(test_key_hash)
{
	char *h1 = ra_key_hash(ec256), *h2 = ra_key_hash(ec256);
	char *h3 = ra_key_hash(ec384);

	TH_CHECK(t, h1 != NULL && strlen(h1) == 64);
	TH_CHECK_STR(t, h1, h2);
	TH_CHECK(t, h3 != NULL && strcmp(h1, h3) != 0);
	free(h1);
	free(h2);
	free(h3);
}

int
main(void)
{
	struct th t = TH_INIT;

	ra_key_policy_default(&kp);
	ec256 = gen_ec("P-256");
	ec384 = gen_ec("P-384");
	ec521 = gen_ec("P-521");
	rsa2048 = gen_rsa(2048, 65537);
	th_run_tests(&t);
	EVP_PKEY_free(ec256);
	EVP_PKEY_free(ec384);
	EVP_PKEY_free(ec521);
	EVP_PKEY_free(rsa2048);
	return th_done(&t);
}
