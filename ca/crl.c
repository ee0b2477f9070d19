/*
 * crl.c - sharded CRLs (RFC 5280 §5) signed by the issuers.
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/x509v3.h>

#include "ca/ca_int.h"

#define CA_MAX_CRL_ENTRIES 1000000

static ASN1_INTEGER *
int_from_bytes(const uint8_t *b, size_t len)
{
	BIGNUM *bn = BN_bin2bn(b, (int)len, NULL);
	ASN1_INTEGER *ai = NULL;

	if (bn != NULL)
		ai = BN_to_ASN1_INTEGER(bn, NULL);
	BN_free(bn);
	return ai;
}

static int
add_entry(X509_CRL *crl, const struct ca_crl_entry *e)
{
	X509_REVOKED *r = NULL;
	ASN1_INTEGER *sn = NULL;
	ASN1_TIME *t = NULL;
	ASN1_ENUMERATED *reason = NULL;
	int ret = -1;

	if ((r = X509_REVOKED_new()) == NULL ||
	    (sn = int_from_bytes(e->serial, e->serial_len)) == NULL ||
	    (t = ASN1_TIME_set(NULL, e->revoked_at)) == NULL)
		goto out;
	if (!X509_REVOKED_set_serialNumber(r, sn) ||
	    !X509_REVOKED_set_revocationDate(r, t))
		goto out;
	/* RFC 5280: reason code absent rather than unspecified (0). */
	if (e->reason > 0) {
		if ((reason = ASN1_ENUMERATED_new()) == NULL ||
		    !ASN1_ENUMERATED_set(reason, e->reason) ||
		    X509_REVOKED_add1_ext_i2d(
			r, NID_crl_reason, reason, 0, 0) != 1)
			goto out;
	}
	if (!X509_CRL_add0_revoked(crl, r))
		goto out;
	r = NULL;
	ret = 0;
out:
	X509_REVOKED_free(r);
	ASN1_INTEGER_free(sn);
	ASN1_TIME_free(t);
	ASN1_ENUMERATED_free(reason);
	return ret;
}

/* The critical issuingDistributionPoint naming the shard URL. */
static int
add_idp(X509_CRL *crl, const char *url)
{
	ISSUING_DIST_POINT *idp = NULL;
	GENERAL_NAME *gn = NULL;
	ASN1_IA5STRING *uri = NULL;
	int ret = -1;

	if ((idp = ISSUING_DIST_POINT_new()) == NULL ||
	    (idp->distpoint = DIST_POINT_NAME_new()) == NULL ||
	    (idp->distpoint->name.fullname = GENERAL_NAMES_new()) == NULL)
		goto out;
	idp->distpoint->type = 0;
	if ((uri = ASN1_IA5STRING_new()) == NULL ||
	    !ASN1_STRING_set(uri, url, (int)strlen(url)) ||
	    (gn = GENERAL_NAME_new()) == NULL)
		goto out;
	GENERAL_NAME_set0_value(gn, GEN_URI, uri);
	uri = NULL;
	if (!sk_GENERAL_NAME_push(idp->distpoint->name.fullname, gn))
		goto out;
	gn = NULL;
	idp->onlyuser = 0xff;
	if (X509_CRL_add1_ext_i2d(
		crl, NID_issuing_distribution_point, idp, 1, 0) != 1)
		goto out;
	ret = 0;
out:
	ASN1_IA5STRING_free(uri);
	GENERAL_NAME_free(gn);
	ISSUING_DIST_POINT_free(idp);
	return ret;
}

/* See ca_int.h. */
int
ca_crl_build(const struct ca_issuer *is, int64_t number, const char *idp_url,
    time_t this_update, time_t next_update, const struct ca_crl_entry *entries,
    size_t n, uint8_t **der, size_t *len, char *err, size_t errlen)
{
	X509_CRL *crl = NULL;
	ASN1_TIME *tu = NULL, *nu = NULL;
	ASN1_INTEGER *num = NULL;
	X509_EXTENSION *akid = NULL;
	X509V3_CTX ctx;
	unsigned char *p = NULL;
	size_t k;
	int dl, ret = -1;

	if ((crl = X509_CRL_new()) == NULL || !X509_CRL_set_version(crl, 1) ||
	    !X509_CRL_set_issuer_name(crl, X509_get_subject_name(is->cert)))
		goto fail;
	if ((tu = ASN1_TIME_set(NULL, this_update)) == NULL ||
	    (nu = ASN1_TIME_set(NULL, next_update)) == NULL ||
	    !X509_CRL_set1_lastUpdate(crl, tu) ||
	    !X509_CRL_set1_nextUpdate(crl, nu))
		goto fail;
	for (k = 0; k < n; k++)
		if (add_entry(crl, &entries[k]) != 0)
			goto fail;
	if (!X509_CRL_sort(crl))
		goto fail;
	if ((num = ASN1_INTEGER_new()) == NULL ||
	    !ASN1_INTEGER_set_int64(num, number) ||
	    X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) != 1)
		goto fail;
	X509V3_set_ctx(&ctx, is->cert, NULL, NULL, crl, 0);
	if ((akid = X509V3_EXT_conf_nid(NULL, &ctx,
		 NID_authority_key_identifier, "keyid:always")) == NULL ||
	    !X509_CRL_add_ext(crl, akid, -1))
		goto fail;
	if (add_idp(crl, idp_url) != 0)
		goto fail;
	if (X509_CRL_sign(crl, is->key, EVP_sha256()) <= 0)
		goto fail;
	dl = i2d_X509_CRL(crl, &p);
	if (ca_der_take(dl, p, der, len) != 0)
		goto fail;
	ret = 0;
	goto out;
fail:
	snprintf(err, errlen, "building the CRL failed");
out:
	X509_CRL_free(crl);
	ASN1_TIME_free(tu);
	ASN1_TIME_free(nu);
	ASN1_INTEGER_free(num);
	X509_EXTENSION_free(akid);
	return ret;
}

/* Parses sa.revoked_by_shard entries; -1 with prob. */
static int
parse_entries(const json_t *arr, struct ca_crl_entry **out, size_t *n,
    struct problem **prob)
{
	struct ca_crl_entry *e;
	const json_t *it;
	const char *s, *at;
	size_t k, len;
	time_t t;

	*out = NULL;
	*n = 0;
	if (!json_is_array(arr) || json_array_size(arr) > CA_MAX_CRL_ENTRIES) {
		*prob = problem_new(PROB_SERVER_INTERNAL,
		    "sa.revoked_by_shard: "
		    "bad entries");
		return -1;
	}
	e = xcalloc(json_array_size(arr) + 1, sizeof(*e));
	*out = e;
	json_array_foreach(arr, k, it)
	{
		s = json_string_value(json_object_get(it, "serial"));
		at = json_string_value(json_object_get(it, "revoked_at"));
		if (s == NULL || at == NULL ||
		    hex_decode(s, &e[k].serial, &len) != 0 || len == 0 ||
		    len > 20 || time_parse_rfc3339(at, &t) != 0) {
			*prob = problem_new(PROB_SERVER_INTERNAL,
			    "sa.revoked_by_shard: bad entry %zu", k);
			*n = k + 1;
			return -1;
		}
		e[k].serial_len = len;
		e[k].revoked_at = t;
		e[k].reason =
		    (int)json_integer_value(json_object_get(it, "reason"));
		if (e[k].reason < 0 || e[k].reason > 10 || e[k].reason == 7)
			e[k].reason = 0;
		*n = k + 1;
	}
	return 0;
}

static void
free_entries(struct ca_crl_entry *e, size_t n)
{
	size_t k;

	for (k = 0; e != NULL && k < n; k++)
		free(e[k].serial);
	free(e);
}

/* See ca.h. */
int
ca_generate_crl(struct ca *ca, const char *issuer_id, int64_t shard,
    const char *rid, int64_t *number, uint8_t **der, size_t *der_len,
    struct problem **prob)
{
	const struct ca_issuer *is;
	json_t *params = NULL, *res = NULL, *res2 = NULL, *res3 = NULL;
	struct ca_crl_entry *entries = NULL;
	size_t n = 0, dlen = 0;
	uint8_t *d = NULL;
	char *url = NULL, *b64 = NULL, err[128], tu[32], nu[32], labels[96];
	time_t now = time(NULL), next;
	int64_t num;
	int ret = -1, locked = 0;

	*prob = NULL;
	if ((is = ca_issuers_find(ca->issuers, issuer_id)) == NULL) {
		*prob = problem_new(PROB_NOT_FOUND, "unknown issuer \"%s\"",
		    issuer_id ? issuer_id : "");
		goto out;
	}
	if (shard < 0 || shard >= ca->s.crl_shards) {
		*prob = problem_new(PROB_MALFORMED, "shard must be 0..%lld",
		    (long long)ca->s.crl_shards - 1);
		goto out;
	}
	params = json_pack(
	    "{s:s, s:I}", "issuer_id", is->id, "shard", (json_int_t)shard);
	pthread_mutex_lock(&ca->crl_lock);
	locked = 1;
	if (ca_store_call(ca, RPC_SA_NEXT_CRL_NUMBER, params, rid, &res, prob) !=
	    0)
		goto out;
	num = json_integer_value(json_object_get(res, "number"));
	if (num <= 0) {
		*prob = problem_new(PROB_SERVER_INTERNAL,
		    "sa.next_crl_number: "
		    "bad number");
		goto out;
	}
	if (ca_store_call(
		ca, RPC_SA_REVOKED_BY_SHARD, params, rid, &res2, prob) != 0)
		goto out;
	if (parse_entries(
		json_object_get(res2, "entries"), &entries, &n, prob) != 0)
		goto out;
	url = ca_url_crl(ca->s.public_base_url, is->id, shard);
	next = now + (time_t)(ca->s.crl_validity_ms / 1000);
	if (ca_crl_build(is, num, url, now, next, entries, n, &d, &dlen, err,
		sizeof(err)) != 0) {
		*prob = is->p11 != NULL
		    ? ca_issuer_sign_problem(is, "CRL signing")
		    : problem_new(PROB_SERVER_INTERNAL, "%s", err);
		goto out;
	}
	log_audit(rid, "crl-signed",
	    "issuer=%s shard=%lld number=%lld "
	    "entries=%zu",
	    is->id, (long long)shard, (long long)num, n);
	snprintf(
	    labels, sizeof(labels), "purpose=\"crl\",issuer=\"%s\"", is->id);
	if (ca->metrics != NULL)
		metrics_counter_add(ca->metrics, "anvil_ca_signatures_total",
		    "Signatures by the CA", labels, 1);
	b64 = b64url_encode(d, dlen);
	json_object_set_new(params, "number", json_integer(num));
	json_object_set_new(params, "der", json_string(b64));
	json_object_set_new(params, "this_update",
	    json_string(time_fmt_rfc3339(now, tu, sizeof(tu))));
	json_object_set_new(params, "next_update",
	    json_string(time_fmt_rfc3339(next, nu, sizeof(nu))));
	if (ca_store_call(ca, RPC_SA_STORE_CRL, params, rid, &res3, prob) != 0)
		goto out;
	if (number != NULL)
		*number = num;
	if (der != NULL) {
		*der = d;
		*der_len = dlen;
		d = NULL;
	}
	ret = 0;
out:
	if (locked)
		pthread_mutex_unlock(&ca->crl_lock);
	json_decref(params);
	json_decref(res);
	json_decref(res2);
	json_decref(res3);
	free_entries(entries, n);
	free(d);
	free(url);
	free(b64);
	return ret;
}

/* See ca.h. */
int
ca_generate_all_crls(struct ca *ca, const char *rid)
{
	struct problem *prob = NULL;
	size_t k;
	int64_t s;
	int failed = 0;

	for (k = 0; k < ca->issuers->count; k++) {
		for (s = 0; s < ca->s.crl_shards; s++) {
			if (ca_generate_crl(ca, ca->issuers->list[k].id, s, rid,
				NULL, NULL, NULL, &prob) != 0) {
				log_msg(LOG_LEVEL_WARN, rid, "CRL %s/%lld: %s",
				    ca->issuers->list[k].id, (long long)s,
				    prob && prob->detail ? prob->detail : "");
				problem_free(prob);
				prob = NULL;
				failed++;
			}
		}
	}
	return failed;
}
