/* bench.c - verifications per second of the JOSE library. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "cmd/anvil-jose-verify/bench.h"
#include "core/core.h"
#include "jose/jose.h"

/* Process CPU time in ms: what `openssl speed` measures by default too. */
static int64_t
cpu_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
		return time_mono_ms();
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Runs parse+verify (full) or verify only for ~seconds of CPU time;
 * ops per CPU-second, or -1 if a verification failed.
 */
static double
time_loop(const char *body, const struct jws *parsed, double seconds, int full)
{
	int64_t start = cpu_ms(), now = start;
	long n = 0;

	while (now - start < (int64_t)(seconds * 1000)) {
		int i;

		for (i = 0; i < 64; i++) {
			struct jws *j = NULL;
			int rc;

			if (full) {
				rc = jws_parse(
				    body, strlen(body), NULL, &j, NULL);
				if (rc == 0)
					rc = jws_verify(j, j->jwk, NULL);
				jws_free(j);
			} else {
				rc = jws_verify(parsed, parsed->jwk, NULL);
			}
			if (rc != 0)
				return -1;
		}
		n += 64;
		now = cpu_ms();
	}
	return (double)n * 1000.0 / (double)(now - start);
}

static int
bench_one(const char *alg, EVP_PKEY *key, double seconds)
{
	json_t *hdr = json_pack("{s:o, s:s, s:s}", "jwk", jwk_from_pkey(key),
	    "nonce", "YmVuY2gtbm9uY2U", "url",
	    "https://ca.example/acme/"
	    "new-acct");
	const char *pl = "{\"termsOfServiceAgreed\":true,\"contact\":"
			 "[\"mailto:admin@example.com\"]}";
	char *body = jws_sign(key, alg, hdr, (const uint8_t *)pl, strlen(pl));
	struct jws *j = NULL;
	double full, verify;
	int rc = -1;

	if (body == NULL || jws_parse(body, strlen(body), NULL, &j, NULL) != 0)
		goto out;
	verify = time_loop(body, j, seconds, 0);
	full = time_loop(body, j, seconds, 1);
	if (verify < 0 || full < 0)
		goto out;
	printf("{\"alg\":\"%s\",\"verify_per_s\":%.0f,"
	       "\"parse_and_verify_per_s\":%.0f}\n",
	    alg, verify, full);
	rc = 0;
out:
	jws_free(j);
	free(body);
	json_decref(hdr);
	return rc;
}

int
jose_bench_run(double seconds)
{
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	int rc = -1;

	if (ec == NULL || rsa == NULL)
		goto out;
	if (bench_one("ES256", ec, seconds) != 0 ||
	    bench_one("RS256", rsa, seconds) != 0)
		goto out;
	rc = 0;
out:
	EVP_PKEY_free(ec);
	EVP_PKEY_free(rsa);
	return rc;
}
