/* LIBS: ca rpc core */
/*
 * test_ca.c - the CA signing pipeline without RPC: key ceremony, issuer
 * loading, issuance per key type and profile (verified against the chains),
 * serial uniqueness under 16 threads, CRLs and OCSP before and after a
 * revocation. Storage is an in-memory fake of the sa.* methods.
 *
 * The suite runs twice: with PEM issuer keys, then with every key in a
 * SoftHSM2 token (a fresh token directory and SOFTHSM2_CONF per run,
 * removed afterwards), plus the token's own failure cases: missing token,
 * wrong PIN, token removed while running and back.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ca/ca_int.h"
#include "ca/p11_int.h"
#include "test/unit/csr_der.h"
#include "test/unit/harness.h"

#define SOFTHSM_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define HSM_TOKEN "anvil-test"
#define HSM_PIN "246810"

/* ---------------- fake store ---------------- */

struct fake_store {
	pthread_mutex_t mu;
	json_t *reserved;    /* serial -> true */
	json_t *certs;       /* serial -> certificate object */
	json_t *crl_numbers; /* "issuer/shard" -> n */
	json_t *crls;
	json_t *ocsp;
	int fail_add;
	int ocsp_stores;
};

static int
fake_call(void *arg, enum rpc_method_id id, json_t *params, const char *rid,
    json_t **result, struct problem **prob)
{
	struct fake_store *fs = arg;
	const char *serial =
	    json_string_value(json_object_get(params, "serial"));
	char key[64];
	json_t *c, *arr;
	const char *k;
	int ret = 0;

	(void)rid;
	pthread_mutex_lock(&fs->mu);
	*result = NULL;
	if (id == RPC_SA_RESERVE_SERIAL) {
		if (json_object_get(fs->reserved, serial) != NULL) {
			*prob = problem_new(PROB_CONFLICT, "serial exists");
			ret = -1;
		} else {
			json_object_set_new(fs->reserved, serial, json_true());
			*result = json_object();
		}
	} else if (id == RPC_SA_ADD_CERTIFICATE) {
		if (fs->fail_add) {
			*prob = problem_new(PROB_UNAVAILABLE, "sa down");
			ret = -1;
		} else if (json_object_get(fs->reserved, serial) == NULL) {
			*prob = problem_new(PROB_MALFORMED, "not reserved");
			ret = -1;
		} else {
			c = json_deep_copy(params);
			json_object_set_new(c, "status", json_string("good"));
			json_object_set_new(fs->certs, serial, c);
			*result = json_object();
		}
	} else if (id == RPC_SA_GET_CERTIFICATE) {
		c = json_object_get(fs->certs, serial);
		if (c == NULL) {
			*prob = problem_new(PROB_NOT_FOUND, "no such cert");
			ret = -1;
		} else {
			*result = json_deep_copy(c);
		}
	} else if (id == RPC_SA_NEXT_CRL_NUMBER) {
		snprintf(key, sizeof(key), "%s/%lld",
		    json_string_value(json_object_get(params, "issuer_id")),
		    (long long)json_integer_value(
			json_object_get(params, "shard")));
		json_int_t n =
		    json_integer_value(json_object_get(fs->crl_numbers, key)) +
		    1;
		json_object_set_new(fs->crl_numbers, key, json_integer(n));
		*result = json_pack("{s:I}", "number", n);
	} else if (id == RPC_SA_REVOKED_BY_SHARD) {
		arr = json_array();
		json_object_foreach(fs->certs, k, c)
		{
			if (strcmp(
				json_string_value(json_object_get(c, "status")),
				"revoked") != 0 ||
			    !json_equal(json_object_get(c, "issuer_id"),
				json_object_get(params, "issuer_id")) ||
			    !json_equal(json_object_get(c, "shard"),
				json_object_get(params, "shard")))
				continue;
			json_array_append_new(arr,
			    json_pack("{s:s, s:O, s:O}", "serial", k,
				"revoked_at", json_object_get(c, "revoked_at"),
				"reason",
				json_object_get(c, "revoked_reason")));
		}
		*result = json_pack("{s:o}", "entries", arr);
	} else if (id == RPC_SA_STORE_CRL) {
		json_array_append(fs->crls, params);
		*result = json_object();
	} else if (id == RPC_SA_STORE_OCSP) {
		json_object_set(fs->ocsp, serial, params);
		fs->ocsp_stores++;
		*result = json_object();
	} else if (id == RPC_SA_GET_OCSP) {
		c = json_object_get(fs->ocsp, serial);
		if (c == NULL) {
			*prob = problem_new(PROB_NOT_FOUND, "no ocsp");
			ret = -1;
		} else {
			*result = json_deep_copy(c);
		}
	} else {
		*prob = problem_new(PROB_SERVER_INTERNAL, "unknown %s", rpc_method_name(id));
		ret = -1;
	}
	pthread_mutex_unlock(&fs->mu);
	return ret;
}

static void
fake_init(struct fake_store *fs)
{
	memset(fs, 0, sizeof(*fs));
	pthread_mutex_init(&fs->mu, NULL);
	fs->reserved = json_object();
	fs->certs = json_object();
	fs->crl_numbers = json_object();
	fs->crls = json_array();
	fs->ocsp = json_object();
}

static void
fake_clear(struct fake_store *fs)
{
	json_t *held[] = {
	    fs->reserved, fs->certs, fs->crl_numbers, fs->crls, fs->ocsp};

	for (size_t i = 0; i < sizeof(held) / sizeof(held[0]); i++)
		json_decref(held[i]);
	pthread_mutex_destroy(&fs->mu);
}

static void
fake_revoke(struct fake_store *fs, const char *serial, int reason)
{
	char t[32];
	json_t *c = json_object_get(fs->certs, serial);

	json_object_set_new(c, "status", json_string("revoked"));
	json_object_set_new(c, "revoked_at",
	    json_string(time_fmt_rfc3339(time(NULL) - 5, t, sizeof(t))));
	json_object_set_new(c, "revoked_reason", json_integer(reason));
}

/* ---------------- fixture ---------------- */

struct fixture {
	char dir[128];
	int hsm;          /* keys in a SoftHSM token */
	char tokdir[160]; /* SoftHSM token directory (hsm) */
	char pin[160];    /* PIN file (hsm) */
	struct fake_store fs;
	struct profiles *profiles;
	struct ca *ca;
	X509_STORE *trust;     /* root.pem only */
	X509_STORE *trust_alt; /* root2.pem only */
	EVP_PKEY *rsa2048;     /* reused subject key: RSA keygen is slow */
};

static struct fixture F; /* set up once in main, used by every test */

static X509 *
read_cert(const char *dir, const char *name)
{
	char path[256];
	FILE *f;
	X509 *x;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	return x;
}

static X509_STORE *
store_of(const char *dir, const char *root)
{
	X509_STORE *s = X509_STORE_new();
	X509 *x = read_cert(dir, root);

	X509_STORE_add_cert(s, x);
	X509_free(x);
	return s;
}

/*
 * A fresh SoftHSM2 token directory and configuration under f->dir (the
 * temp dir, before "/pki" is appended), SOFTHSM2_CONF pointing at it, one
 * initialized token HSM_TOKEN and its PIN file. 0 or -1.
 */
static int
hsm_token_setup(struct fixture *f)
{
	char conf[200], cmd[600];
	FILE *fp;

	if (access(SOFTHSM_MODULE, R_OK) != 0) {
		fprintf(stderr, "%s missing (scripts/install-deps.sh installs "
				"softhsm2)\n",
		    SOFTHSM_MODULE);
		return -1;
	}
	snprintf(f->tokdir, sizeof(f->tokdir), "%s/tokens", f->dir);
	snprintf(conf, sizeof(conf), "%s/softhsm2.conf", f->dir);
	snprintf(f->pin, sizeof(f->pin), "%s/pin", f->dir);
	if (mkdir(f->tokdir, 0700) != 0 || (fp = fopen(conf, "w")) == NULL)
		return -1;
	fprintf(fp,
	    "directories.tokendir = %s\nobjectstore.backend = file\n"
	    "log.level = ERROR\nslots.removable = false\n",
	    f->tokdir);
	fclose(fp);
	if ((fp = fopen(f->pin, "w")) == NULL)
		return -1;
	fprintf(fp, "%s\n", HSM_PIN);
	fclose(fp);
	if (chmod(f->pin, 0600) != 0 || setenv("SOFTHSM2_CONF", conf, 1) != 0)
		return -1;
	snprintf(cmd, sizeof(cmd),
	    "softhsm2-util --init-token --free --label %s --pin %s "
	    "--so-pin 13579 >/dev/null",
	    HSM_TOKEN, HSM_PIN);
	return system(cmd) == 0 ? 0 : -1;
}

static int
fixture_setup(struct fixture *f, int hsm)
{
	char err[512], path[256];
	struct ca_issuers *is;
	struct ca_settings s;

	memset(f, 0, sizeof(*f));
	f->hsm = hsm;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_ca.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	if (hsm && hsm_token_setup(f) != 0)
		return -1;
	strncat(f->dir, "/pki", sizeof(f->dir) - strlen(f->dir) - 1);
	if (hsm) {
		struct ca_ceremony_pkcs11 cp = {
		    SOFTHSM_MODULE, HSM_TOKEN, f->pin, NULL, NULL};
		if (ca_ceremony_init_pkcs11(f->dir, &cp, err, sizeof(err)) !=
		    0) {
			fprintf(stderr, "pkcs11 ceremony: %s\n", err);
			return -1;
		}
	} else if (ca_ceremony_init(f->dir, err, sizeof(err)) != 0) {
		fprintf(stderr, "ceremony: %s\n", err);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/issuers.json", f->dir);
	if ((is = ca_issuers_load(path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "issuers: %s\n", err);
		return -1;
	}
	f->profiles =
	    profiles_load("configs/dev/profiles.json", err, sizeof(err));
	if (f->profiles == NULL) {
		fprintf(stderr, "profiles: %s\n", err);
		ca_issuers_free(is);
		return -1;
	}
	fake_init(&f->fs);
	ca_settings_defaults(&s);
	s.public_base_url = "https://ca.test:4431/";
	s.serial_prefix = 0x42;
	s.crl_shards = 8;
	f->ca = ca_new(&s, is, f->profiles,
	    (struct ca_store){fake_call, &f->fs}, NULL, err, sizeof(err));
	if (f->ca == NULL) {
		fprintf(stderr, "ca_new: %s\n", err);
		return -1;
	}
	f->rsa2048 = ca_key_generate(CA_KEY_RSA, 2048);
	f->trust = store_of(f->dir, "root.pem");
	f->trust_alt = store_of(f->dir, "root2.pem");
	return 0;
}

static void
fixture_teardown(struct fixture *f)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%.*s'", (int)(strlen(f->dir) - 4),
	    f->dir);
	ca_free(f->ca);
	profiles_free(f->profiles);
	fake_clear(&f->fs);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", f->dir);
	X509_STORE_free(f->trust);
	X509_STORE_free(f->trust_alt);
	EVP_PKEY_free(f->rsa2048);
}

/* A fresh DER CSR for the names ("dns:x" / "ip:x"), cn may be NULL. */
static uint8_t *
make_csr(enum ca_key_type kt, int bits, const char *cn,
    const char *const *names, size_t n, size_t *len, EVP_PKEY **keyout)
{
	X509_REQ *req = X509_REQ_new();
	EVP_PKEY *k;
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509_EXTENSION *ext;
	char san[1024] = "";
	uint8_t *der;
	size_t i;

	if (kt == CA_KEY_RSA && bits == 2048 && F.rsa2048 != NULL &&
	    EVP_PKEY_up_ref(F.rsa2048))
		k = F.rsa2048;
	else
		k = ca_key_generate(kt, bits);
	for (i = 0; i < n; i++) {
		strcat(san, i ? "," : "");
		strcat(san, strncmp(names[i], "ip:", 3) == 0 ? "IP:" : "DNS:");
		strcat(
		    san, names[i] + (strncmp(names[i], "ip:", 3) == 0 ? 3 : 4));
	}
	X509_REQ_set_version(req, 0);
	X509_REQ_set_pubkey(req, k);
	if (cn != NULL)
		X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN",
		    MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
	sk_X509_EXTENSION_push(exts, ext);
	X509_REQ_add_extensions(req, exts);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	der = csr_sign_der(req, k, EVP_sha256(), len);
	X509_REQ_free(req);
	if (keyout != NULL)
		*keyout = k;
	else
		EVP_PKEY_free(k);
	return der;
}

/* Identifiers JSON for names ("dns:x" / "ip:x"). */
static json_t *
idents(const char *const *names, size_t n)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < n; i++) {
		int ip = strncmp(names[i], "ip:", 3) == 0;
		json_array_append_new(a,
		    json_pack("{s:s, s:s}", "type", ip ? "ip" : "dns", "value",
			names[i] + (ip ? 3 : 4)));
	}
	return a;
}

/* Issues for names in the given (identifier) order; CSR in csr order. */
static int
issue(struct fixture *f, enum ca_key_type kt, const char *profile,
    const char *cn, const char *const *csr_names, const char *const *id_names,
    size_t n, struct ca_issued *out, struct problem **prob)
{
	size_t len;
	uint8_t *der = make_csr(
	    kt, kt == CA_KEY_RSA ? 2048 : 256, cn, csr_names, n, &len, NULL);
	json_t *ids = idents(id_names, n);
	struct ca_issue_req r;
	int rc;

	memset(&r, 0, sizeof(r));
	r.csr_der = der;
	r.csr_len = len;
	r.identifiers = ids;
	r.profile = profile;
	r.account_id = 7;
	r.order_id = 9;
	r.request_id = "test";
	rc = ca_issue(f->ca, &r, out, prob);
	free(der);
	json_decref(ids);
	return rc;
}

static X509 *
parse_der(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	return d2i_X509(NULL, &p, (long)len);
}

/* Verifies leaf against a trust store with the given untrusted PEM. */
static int
verify_chain(X509 *leaf, X509_STORE *trust, const char *inter_pem, int purpose)
{
	BIO *b = BIO_new_mem_buf(inter_pem, -1);
	STACK_OF(X509) *untrusted = sk_X509_new_null();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	X509 *x;
	int ok;

	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
		sk_X509_push(untrusted, x);
	ERR_clear_error();
	X509_STORE_CTX_init(ctx, trust, leaf, untrusted);
	X509_STORE_CTX_set_purpose(ctx, purpose);
	ok = X509_verify_cert(ctx);
	if (ok != 1)
		fprintf(stderr, "  verify: %s\n",
		    X509_verify_cert_error_string(
			X509_STORE_CTX_get_error(ctx)));
	X509_STORE_CTX_free(ctx);
	sk_X509_pop_free(untrusted, X509_free);
	BIO_free(b);
	return ok == 1;
}

static char *
ext_text(X509 *x, int nid)
{
	int idx = X509_get_ext_by_NID(x, nid, -1);
	BIO *b;
	char *data, *ret = NULL;
	long n;

	if (idx < 0)
		return NULL;
	b = BIO_new(BIO_s_mem());
	if (X509V3_EXT_print(b, X509_get_ext(x, idx), 0, 0) == 1) {
		n = BIO_get_mem_data(b, &data);
		ret = strndup(data, (size_t)n);
	}
	BIO_free(b);
	return ret;
}

/* ---------------- tests ---------------- */

TH_TEST(test_ceremony_files_and_modes)
{
	static const char *keys[] = {
	    "root.key", "root2.key", "int-ecdsa.key", "int-rsa.key"};
	struct stat st;
	char path[256];
	size_t i;

	if (F.hsm)
		TH_SKIP(t, "keys are in the token");

	for (i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s/%s", F.dir, keys[i]);
		TH_CHECK(t, stat(path, &st) == 0);
		TH_CHECK(t, (st.st_mode & 0777) == 0600);
	}
	snprintf(path, sizeof(path), "%s/roots.pem", F.dir);
	TH_CHECK(t, stat(path, &st) == 0 && st.st_size > 0);
}

TH_TEST(test_ceremony_refuses_overwrite)
{
	char err[512], path[256], *before = NULL, *after = NULL;
	size_t l1 = 0, l2 = 0;

	snprintf(path, sizeof(path), "%s/root.pem", F.dir);
	TH_CHECK(t,
	    file_read_all(path, 1 << 20, &before, &l1, err, sizeof(err)) == 0);
	TH_CHECK(t, ca_ceremony_init(F.dir, err, sizeof(err)) == -1);
	TH_CHECK(t, strstr(err, "already exists") != NULL);
	TH_CHECK(t,
	    file_read_all(path, 1 << 20, &after, &l2, err, sizeof(err)) == 0);
	TH_CHECK(
	    t, before && after && l1 == l2 && memcmp(before, after, l1) == 0);
	free(before);
	free(after);
}

TH_TEST(test_issuers_loaded)
{
	const struct ca_issuers *is = ca_get_issuers(F.ca);
	const struct ca_issuer *e, *r;
	json_t *j;

	TH_CHECK(t, ca_issuers_count(is) == 2);
	e = ca_issuers_choose(is, "classic", CA_KEY_ECDSA);
	r = ca_issuers_choose(is, "classic", CA_KEY_RSA);
	TH_CHECK(t, e != NULL && r != NULL && e != r);
	if (e == NULL || r == NULL)
		return;
	TH_CHECK(t, ca_issuer_key_type(e) == CA_KEY_ECDSA);
	TH_CHECK(t, ca_issuer_key_type(r) == CA_KEY_RSA);
	TH_CHECK(t, strlen(ca_issuer_id(e)) == 16);
	TH_CHECK(t, ca_issuers_find(is, ca_issuer_id(r)) == r);
	TH_CHECK(t, e->nchains == 2 && r->nchains == 1);
	j = ca_issuers_json(F.ca);
	TH_CHECK(t, json_array_size(json_object_get(j, "issuers")) == 2);
	TH_CHECK(t, json_integer_value(json_object_get(j, "crl_shards")) == 8);
	TH_CHECK(t,
	    json_array_size(json_object_get(
		json_array_get(json_object_get(j, "issuers"), 0),
		"roots_pem")) == 2);
	json_decref(j);
}

/* First certificate of a PEM text. */
static X509 *
pem_first(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	return x;
}

/*
 * PEBBLE_ALTERNATE_ROOTS / test.alternate_roots: chain 0 of every issuer
 * stays, N chains through new throwaway roots follow, each a cross-sign
 * of the issuer (same subject and key) that the chain's root verifies.
 */
TH_TEST(test_alternate_roots)
{
	struct ca_issuers *is;
	const struct ca_issuer *iss;
	char path[256], err[256], *chain0;
	X509 *cross, *root;
	size_t k, c;

	if (F.hsm) /* the file-key run covers it: only public keys are used */
		TH_SKIP(t, "keys are in the token");
	snprintf(path, sizeof(path), "%s/issuers.json", F.dir);
	is = ca_issuers_load(path, err, sizeof(err));
	TH_CHECK(t, is != NULL);
	if (is == NULL)
		return;
	chain0 = xstrdup(is->list[0].chains[0].intermediates_pem);
	TH_CHECK(t, ca_issuers_alternate_roots(is, 3, err, sizeof(err)) == 0);
	for (k = 0; k < is->count; k++) {
		iss = &is->list[k];
		TH_CHECK(t, iss->nchains == 4);
		for (c = 1; c < iss->nchains && c < 4; c++) {
			cross = pem_first(iss->chains[c].intermediates_pem);
			root = pem_first(iss->chains[c].root_pem);
			TH_CHECK(t, cross != NULL && root != NULL);
			if (cross != NULL && root != NULL) {
				TH_CHECK(t,
				    X509_NAME_cmp(X509_get_subject_name(cross),
					X509_get_subject_name(iss->cert)) == 0);
				TH_CHECK(t,
				    EVP_PKEY_eq(X509_get0_pubkey(cross),
					X509_get0_pubkey(iss->cert)) == 1);
				TH_CHECK(t,
				    X509_verify(cross, X509_get0_pubkey(root)) ==
					1);
				TH_CHECK(t,
				    X509_get_pathlen(cross) ==
					X509_get_pathlen(iss->cert));
			}
			/* chain c of every issuer ends in the same root */
			TH_CHECK(t,
			    strcmp(iss->chains[c].root_pem,
				is->list[0].chains[c].root_pem) == 0);
			X509_free(cross);
			X509_free(root);
		}
	}
	TH_CHECK_STR(t, is->list[0].chains[0].intermediates_pem, chain0);
	TH_CHECK(t, strcmp(is->list[0].chains[1].root_pem,
			is->list[0].chains[2].root_pem) != 0);
	/* 0: only the first chain is left */
	TH_CHECK(t, ca_issuers_alternate_roots(is, 0, err, sizeof(err)) == 0);
	TH_CHECK(t, is->list[0].nchains == 1 && is->list[1].nchains == 1);
	free(chain0);
	ca_issuers_free(is);
}

TH_TEST(test_issuers_reject_readable_key)
{
	char path[256], err[512];
	struct ca_issuers *is;

	if (F.hsm)
		TH_SKIP(t, "keys are in the token");

	snprintf(path, sizeof(path), "%s/int-rsa.key", F.dir);
	chmod(path, 0644);
	snprintf(path, sizeof(path), "%s/issuers.json", F.dir);
	is = ca_issuers_load(path, err, sizeof(err));
	TH_CHECK(t, is == NULL);
	ca_issuers_free(is);
	snprintf(path, sizeof(path), "%s/int-rsa.key", F.dir);
	chmod(path, 0600);
}

/* The number of issuers path loads, or -1 with the error in err (said on
 * stderr). */
static int
issuers_in(const char *path, char *err, size_t errlen)
{
	struct ca_issuers *is = ca_issuers_load(path, err, errlen);
	int n = is != NULL ? (int)ca_issuers_count(is) : -1;

	if (is == NULL)
		fprintf(stderr, "  %s: %s\n", path, err);
	ca_issuers_free(is);
	return n;
}

TH_TEST(test_issuers_passphrase_key)
{
	char path[256], err[512];
	EVP_PKEY *k = NULL;
	FILE *f;

	if (F.hsm)
		TH_SKIP(t, "keys are in the token");

	snprintf(path, sizeof(path), "%s/int-ecdsa.key", F.dir);
	f = fopen(path, "r");
	if (f != NULL) {
		k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
	}
	TH_CHECK(t, k != NULL);
	snprintf(path, sizeof(path), "%s/enc.key", F.dir);
	f = fopen(path, "w");
	TH_CHECK(t,
	    f != NULL &&
		PEM_write_PrivateKey(f, k, EVP_aes_256_cbc(), NULL, 0, NULL,
		    (void *)"s3cret pass") == 1);
	if (f != NULL)
		fclose(f);
	chmod(path, 0600);
	snprintf(path, sizeof(path), "%s/enc.pass", F.dir);
	f = fopen(path, "w");
	if (f != NULL) {
		fputs("s3cret pass\n", f);
		fclose(f);
	}
	chmod(path, 0600);
	snprintf(path, sizeof(path), "%s/enc.json", F.dir);
	f = fopen(path, "w");
	if (f != NULL) {
		fputs("{\"issuers\": [{\"name\": \"enc\", \"cert\": "
		      "\"int-ecdsa.pem\", \"key\": \"enc.key\", "
		      "\"key_passphrase_file\": \"enc.pass\", \"chains\": "
		      "[{\"certs\": [\"int-ecdsa.pem\"], \"root\": "
		      "\"root.pem\"}]}]}",
		    f);
		fclose(f);
	}
	TH_CHECK(t, issuers_in(path, err, sizeof(err)) == 1);
	/* The same key through an OSSL_STORE URI (the HSM path). */
	f = fopen(path, "w");
	if (f != NULL) {
		fprintf(f,
		    "{\"issuers\": [{\"name\": \"uri\", \"cert\": "
		    "\"int-ecdsa.pem\", \"key_uri\": \"file:%s/enc.key\", "
		    "\"key_passphrase_file\": \"enc.pass\", \"chains\": "
		    "[{\"certs\": [\"int-ecdsa.pem\"], \"root\": "
		    "\"root.pem\"}]}]}",
		    F.dir);
		fclose(f);
	}
	TH_CHECK(t, issuers_in(path, err, sizeof(err)) == 1);
	/* A wrong passphrase is refused with a clear message. */
	snprintf(path, sizeof(path), "%s/enc.pass", F.dir);
	f = fopen(path, "w");
	if (f != NULL) {
		fputs("wrong\n", f);
		fclose(f);
	}
	snprintf(path, sizeof(path), "%s/enc.json", F.dir);
	TH_CHECK(t,
	    issuers_in(path, err, sizeof(err)) == -1 &&
		strstr(err, "passphrase") != NULL);
	/* A chain whose root did not sign it is refused. */
	f = fopen(path, "w");
	if (f != NULL) {
		fputs("{\"issuers\": [{\"name\": \"x\", \"cert\": "
		      "\"int-ecdsa.pem\", \"key\": \"int-ecdsa.key\", "
		      "\"chains\": [{\"certs\": [\"int-ecdsa.pem\"], "
		      "\"root\": \"root2.pem\"}]}]}",
		    f);
		fclose(f);
	}
	TH_CHECK(t,
	    issuers_in(path, err, sizeof(err)) == -1 &&
		strstr(err, "not signed") != NULL);
	EVP_PKEY_free(k);
}

static void
check_issued(struct th *t, const struct ca_issued *out, const char *profile,
    enum ca_key_type kt, int expect_cn, int purpose)
{
	X509 *x = parse_der(out->der, out->der_len);
	const struct ca_issuer *is = out->issuer;
	const ASN1_INTEGER *sn;
	json_t *stored;
	char *txt;
	size_t k;

	TH_CHECK(t, x != NULL);
	if (x == NULL)
		return;
	TH_CHECK(t, ca_issuer_key_type(is) == kt);
	for (k = 0; k < is->nchains; k++)
		TH_CHECK(t,
		    verify_chain(x, k == 0 ? F.trust : F.trust_alt,
			is->chains[k].intermediates_pem, purpose));
	sn = X509_get0_serialNumber(x);
	TH_CHECK(t, ASN1_STRING_length(sn) == CA_SERIAL_LEN);
	TH_CHECK(t, ASN1_STRING_get0_data(sn)[0] == 0x42);
	TH_CHECK(
	    t, strlen(out->serial) == 36 && strncmp(out->serial, "42", 2) == 0);
	TH_CHECK(t,
	    (X509_NAME_get_index_by_NID(X509_get_subject_name(x),
		 NID_commonName, -1) >= 0) == expect_cn);
	stored = json_object_get(F.fs.certs, out->serial);
	TH_CHECK(t, stored != NULL);
	TH_CHECK_STR(
	    t, json_string_value(json_object_get(stored, "profile")), profile);
	TH_CHECK(t,
	    strlen(json_string_value(json_object_get(stored, "key_hash"))) ==
		64);
	TH_CHECK(t,
	    json_integer_value(json_object_get(stored, "shard")) ==
		ca_serial_shard(ASN1_STRING_get0_data(sn), CA_SERIAL_LEN, 8));
	txt = ext_text(x, NID_crl_distribution_points);
	TH_CHECK(t,
	    txt != NULL && strstr(txt, "https://ca.test:4431/crl/") &&
		strstr(txt, is->id));
	free(txt);
	txt = ext_text(x, NID_info_access);
	TH_CHECK(t,
	    txt != NULL && strstr(txt, "https://ca.test:4431/ocsp") &&
		strstr(txt, "https://ca.test:4431/issuer/"));
	free(txt);
	txt = ext_text(x, NID_key_usage);
	TH_CHECK(t,
	    txt != NULL && strstr(txt, "Digital Signature") &&
		(strstr(txt, "Key Encipherment") != NULL) ==
		    (kt == CA_KEY_RSA));
	free(txt);
	X509_free(x);
}

TH_TEST(test_issue_ecdsa_classic)
{
	static const char *csr[] = {
	    "dns:b.example.com", "dns:a.example.com", "ip:192.0.2.7"};
	static const char *ids[] = {
	    "dns:a.example.com", "ip:192.0.2.7", "dns:b.example.com"};
	struct ca_issued out;
	struct problem *p = NULL;
	X509 *x;
	char *txt;
	int days, secs;

	TH_CHECK(t,
	    issue(&F, CA_KEY_ECDSA, "classic", "a.example.com", csr, ids, 3,
		&out, &p) == 0);
	if (p != NULL) {
		fprintf(stderr, "  %s\n", p->detail);
		problem_free(p);
		return;
	}
	check_issued(
	    t, &out, "classic", CA_KEY_ECDSA, 1, X509_PURPOSE_SSL_SERVER);
	x = parse_der(out.der, out.der_len);
	/* SAN order follows the CSR. */
	txt = ext_text(x, NID_subject_alt_name);
	TH_CHECK_STR(t, txt,
	    "DNS:b.example.com, DNS:a.example.com, "
	    "IP Address:192.0.2.7");
	free(txt);
	ASN1_TIME_diff(
	    &days, &secs, X509_get0_notBefore(x), X509_get0_notAfter(x));
	TH_CHECK(t, days == 89 && secs == 86399);
	txt = ext_text(x, NID_ext_key_usage);
	TH_CHECK_STR(t, txt, "TLS Web Server Authentication");
	free(txt);
	X509_free(x);
	ca_issued_clear(&out);
}

TH_TEST(test_issue_rsa_classic)
{
	static const char *n[] = {"dns:rsa.example.com"};
	struct ca_issued out;
	struct problem *p = NULL;

	TH_CHECK(t, issue(&F, CA_KEY_RSA, NULL, NULL, n, n, 1, &out, &p) == 0);
	if (p == NULL) {
		check_issued(
		    t, &out, "classic", CA_KEY_RSA, 1, X509_PURPOSE_SSL_SERVER);
		ca_issued_clear(&out);
	}
	problem_free(p);
}

TH_TEST(test_issue_each_profile_and_key_type)
{
	static const char *n[] = {"dns:p.example.net", "dns:q.example.net"};
	static const struct {
		const char *profile;
		int cn;
		int purpose;
		int days;
	} cases[] = {
	    {"classic", 1, X509_PURPOSE_SSL_SERVER, 90},
	    {"tlsserver", 0, X509_PURPOSE_SSL_SERVER, 45},
	    {"shortlived", 0, X509_PURPOSE_SSL_SERVER, 7},
	    {"clientauth", 1, X509_PURPOSE_SSL_CLIENT, 30},
	};
	struct ca_issued out;
	struct problem *p;
	size_t i;
	int kt, days, secs, crit;
	X509 *x;
	GENERAL_NAMES *g;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (kt = 0; kt < CA_KEY__MAX; kt++) {
			p = NULL;
			if (issue(&F, (enum ca_key_type)kt, cases[i].profile,
				NULL, n, n, 2, &out, &p) != 0) {
				fprintf(stderr, "  %s/%d: %s\n",
				    cases[i].profile, kt, p ? p->detail : "");
				TH_CHECK(t, 0);
				problem_free(p);
				continue;
			}
			check_issued(t, &out, cases[i].profile,
			    (enum ca_key_type)kt, cases[i].cn,
			    cases[i].purpose);
			x = parse_der(out.der, out.der_len);
			ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x),
			    X509_get0_notAfter(x));
			TH_CHECK(t, days + 1 == cases[i].days);
			/* clientauth: not a server certificate. */
			TH_CHECK(t,
			    (X509_check_purpose(
				 x, X509_PURPOSE_SSL_SERVER, 0) == 1) ==
				(strcmp(cases[i].profile, "clientauth") != 0));
			g = X509_get_ext_d2i(
			    x, NID_subject_alt_name, &crit, NULL);
			TH_CHECK(t, crit == !cases[i].cn);
			GENERAL_NAMES_free(g);
			X509_free(x);
			ca_issued_clear(&out);
		}
	}
}

/* Whether an issuance that returned rc, *out and *p was refused with a
 * problem of type; clears *out and frees *p (NULL after). */
static int
refused(int rc, struct ca_issued *out, struct problem **p, enum prob_type type)
{
	int ok = rc == -1 && *p != NULL && (*p)->type == type;

	if (!ok)
		fprintf(stderr, "  ca_issue: %d %s, expected %s\n", rc,
		    *p ? prob_type_name((*p)->type) : "-",
		    prob_type_name(type));
	if (rc == 0)
		ca_issued_clear(out);
	problem_free(*p);
	*p = NULL;
	return ok;
}

/* Whether ca_issue refuses r with a problem of type. */
static int
refused_as(const struct ca_issue_req *r, enum prob_type type)
{
	struct ca_issued out;
	struct problem *p = NULL;

	return refused(ca_issue(F.ca, r, &out, &p), &out, &p, type);
}

/* Makes r's CSR a new one for the name with a kt key of bits, in *der
 * (the old one freed). */
static void
set_csr(struct ca_issue_req *r, uint8_t **der, enum ca_key_type kt, int bits,
    const char *const *name)
{
	free(*der);
	*der = make_csr(kt, bits, NULL, name, 1, &r->csr_len, NULL);
	r->csr_der = *der;
}

TH_TEST(test_issue_refusals)
{
	static const char *ip[] = {"ip:10.1.2.3"};
	static const char *dns[] = {"dns:ok.example.com"};
	struct ca_issued out;
	struct problem *p = NULL;
	struct ca_issue_req r;
	json_t *ids = idents(dns, 1), *many;
	uint8_t junk[] = {0x30, 0x03, 0x02, 0x01, 0x01};
	size_t len, i;
	uint8_t *der;

	/* IP identifiers are not allowed by tlsserver. */
	TH_CHECK(t,
	    refused(
		issue(&F, CA_KEY_ECDSA, "tlsserver", NULL, ip, ip, 1, &out, &p),
		&out, &p, PROB_REJECTED_IDENTIFIER));
	TH_CHECK(t,
	    refused(
		issue(&F, CA_KEY_ECDSA, "nosuch", NULL, dns, dns, 1, &out, &p),
		&out, &p, PROB_INVALID_PROFILE));
	memset(&r, 0, sizeof(r));
	r.csr_der = junk;
	r.csr_len = sizeof(junk);
	r.identifiers = ids;
	r.account_id = 1;
	TH_CHECK(t, refused_as(&r, PROB_BAD_CSR));
	/* Too many identifiers for tlsserver (25). */
	der = make_csr(CA_KEY_ECDSA, 256, NULL, dns, 1, &len, NULL);
	many = json_array();
	for (i = 0; i < 26; i++)
		json_array_append_new(many,
		    json_pack(
			"{s:s, s:s}", "type", "dns", "value", "x.example.com"));
	r.csr_der = der;
	r.csr_len = len;
	r.identifiers = many;
	r.profile = "tlsserver";
	TH_CHECK(t, refused_as(&r, PROB_REJECTED_IDENTIFIER));
	/* Requested validity longer than the profile. */
	r.identifiers = ids;
	r.profile = "classic";
	r.not_before = time(NULL);
	r.not_after = r.not_before + 91 * 86400;
	TH_CHECK(t, refused_as(&r, PROB_MALFORMED));
	/* Weak keys are refused before a serial is spent; P-384 is fine. */
	set_csr(&r, &der, CA_KEY_RSA, 1024, dns);
	r.not_before = r.not_after = 0;
	TH_CHECK(t, refused_as(&r, PROB_BAD_PUBLIC_KEY));
	set_csr(&r, &der, CA_KEY_ECDSA, 384, dns);
	TH_CHECK(t, ca_issue(F.ca, &r, &out, &p) == 0);
	TH_CHECK(
	    t, out.issuer && ca_issuer_key_type(out.issuer) == CA_KEY_ECDSA);
	problem_free(p);
	p = NULL;
	ca_issued_clear(&out);
	/* A requested shorter validity is honoured. */
	r.not_before = time(NULL);
	r.not_after = r.not_before + 86400 - 1;
	TH_CHECK(t, ca_issue(F.ca, &r, &out, &p) == 0);
	problem_free(p);
	p = NULL;
	ca_issued_clear(&out);
	free(der);
	json_decref(ids);
	json_decref(many);
}

/* A CSR asking for a CA certificate (basicConstraints critical CA:TRUE). */
static uint8_t *
ca_csr(size_t *len)
{
	X509_REQ *req = X509_REQ_new();
	EVP_PKEY *k = ca_key_generate(CA_KEY_ECDSA, 256);
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	uint8_t *der;

	X509_REQ_set_version(req, 0);
	X509_REQ_set_pubkey(req, k);
	sk_X509_EXTENSION_push(exts, X509V3_EXT_conf_nid(NULL, NULL,
					 NID_basic_constraints, "critical,CA:TRUE"));
	X509_REQ_add_extensions(req, exts);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	der = csr_sign_der(req, k, EVP_sha256(), len);
	X509_REQ_free(req);
	EVP_PKEY_free(k);
	return der;
}

/* A stir-ca CA certificate request (RFC 9448 "ca": true) to ca. */
static int
issue_stir_ca(struct ca *ca, struct ca_issued *out, struct problem **p)
{
	struct ca_issue_req r;
	json_t *ids = json_pack("[{s:s, s:s}]", "type", "TNAuthList", "value",
	    "MAigBhYENzA5Sg"); /* SPC 709J */
	size_t len;
	int rc;

	memset(&r, 0, sizeof(r));
	r.csr_der = ca_csr(&len);
	r.csr_len = len;
	r.identifiers = ids;
	r.profile = "stir-ca";
	r.account_id = 1;
	r.ca = 1;
	rc = ca_issue(ca, &r, out, p);
	free((void *)r.csr_der);
	json_decref(ids);
	return rc;
}

/*
 * RFC 5280 §4.2.1.9: under an intermediate with pathLenConstraint 0 a CA
 * certificate never path-validates (the delegate's leaf beneath it is
 * refused), so the CA refuses to sign one there (badCSR naming the fix);
 * `anvil-admin ca init --intermediate-pathlen 1` (ca_ceremony_run) makes
 * intermediates, cross-signature included, that allow one level, and
 * issuance then works.
 */
TH_TEST(test_stir_ca_needs_an_issuer_allowing_it)
{
	char dir[300], path[320], err[512];
	const char *const names[] = {"int-ecdsa.pem", "int-ecdsa-cross.pem",
	    "int-rsa.pem"};
	struct ca_issuers *is;
	struct ca_settings s;
	struct ca_issued out;
	struct problem *p = NULL;
	struct ca *ca;
	X509 *x;
	size_t k;

	if (F.hsm)
		TH_SKIP(t, "the file-key run covers it");
	TH_CHECK(t, issue_stir_ca(F.ca, &out, &p) == -1);
	TH_CHECK(t, p != NULL && p->type == PROB_BAD_CSR &&
			strstr(p->detail, "pathLenConstraint 0") != NULL &&
			strstr(p->detail, "--intermediate-pathlen 1") != NULL);
	problem_free(p);
	p = NULL;
	snprintf(dir, sizeof(dir), "%.*s/pki-pathlen1",
	    (int)(strlen(F.dir) - 4), F.dir);
	TH_CHECK(t, ca_ceremony_run(dir, NULL, 2, err, sizeof(err)) == -1);
	TH_CHECK(t, ca_ceremony_run(dir, NULL, 1, err, sizeof(err)) == 0);
	for (k = 0; k < 3; k++) {
		x = read_cert(dir, names[k]);
		TH_CHECK(t, x != NULL && X509_get_pathlen(x) == 1);
		X509_free(x);
	}
	snprintf(path, sizeof(path), "%s/issuers.json", dir);
	is = ca_issuers_load(path, err, sizeof(err));
	TH_CHECK(t, is != NULL);
	if (is == NULL)
		return;
	ca_settings_defaults(&s);
	s.public_base_url = "https://ca.test:4431/";
	s.serial_prefix = 0x43;
	ca = ca_new(&s, is, F.profiles, (struct ca_store){fake_call, &F.fs},
	    NULL, err, sizeof(err));
	TH_CHECK(t, ca != NULL);
	if (ca == NULL)
		return;
	TH_CHECK(t, issue_stir_ca(ca, &out, &p) == 0);
	if (p == NULL)
		ca_issued_clear(&out);
	problem_free(p);
	ca_free(ca);
}

TH_TEST(test_lint_failure_refuses_issuance)
{
	static const char *bad[] = {"dns:bad..example.com"};
	struct ca_issued out;
	struct problem *p = NULL;
	size_t before = json_object_size(F.fs.certs);

	TH_CHECK(t,
	    issue(&F, CA_KEY_ECDSA, "classic", NULL, bad, bad, 1, &out, &p) ==
		-1);
	TH_CHECK(t,
	    p && p->type == PROB_SERVER_INTERNAL && p->detail &&
		strstr(p->detail, "dns_names_valid") != NULL);
	TH_CHECK(t, json_object_size(F.fs.certs) == before);
	problem_free(p);
}

TH_TEST(test_store_failure_is_an_error)
{
	static const char *n[] = {"dns:store.example.com"};
	struct ca_issued out;
	struct problem *p = NULL;

	F.fs.fail_add = 1;
	TH_CHECK(t,
	    issue(&F, CA_KEY_ECDSA, "classic", NULL, n, n, 1, &out, &p) == -1);
	TH_CHECK(t, p && p->type == PROB_UNAVAILABLE);
	TH_CHECK(t, out.der == NULL && out.serial == NULL);
	F.fs.fail_add = 0;
	problem_free(p);
}

#define PAR_THREADS 16
#define PAR_EACH 6

struct par_arg {
	char *serials[PAR_EACH];
	int failures;
	int id;
};

static void *
par_issue(void *arg)
{
	struct par_arg *a = arg;
	struct ca_issued out;
	struct problem *p;
	char name[64];
	const char *n[1] = {name};
	int i;

	snprintf(name, sizeof(name), "dns:t%d.example.org", a->id);
	for (i = 0; i < PAR_EACH; i++) {
		p = NULL;
		if (issue(&F, i % 2 ? CA_KEY_RSA : CA_KEY_ECDSA, "shortlived",
			NULL, n, n, 1, &out, &p) != 0) {
			a->failures++;
			problem_free(p);
			continue;
		}
		a->serials[i] = strdup(out.serial);
		ca_issued_clear(&out);
	}
	return NULL;
}

TH_TEST(test_serials_unique_under_16_threads)
{
	pthread_t th[PAR_THREADS];
	struct par_arg args[PAR_THREADS];
	json_t *seen = json_object();
	int i, j, dup = 0, total = 0;

	memset(args, 0, sizeof(args));
	for (i = 0; i < PAR_THREADS; i++) {
		args[i].id = i;
		pthread_create(&th[i], NULL, par_issue, &args[i]);
	}
	for (i = 0; i < PAR_THREADS; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < PAR_THREADS; i++) {
		TH_CHECK(t, args[i].failures == 0);
		for (j = 0; j < PAR_EACH; j++) {
			if (args[i].serials[j] == NULL)
				continue;
			total++;
			if (json_object_get(seen, args[i].serials[j]) != NULL)
				dup++;
			json_object_set_new(
			    seen, args[i].serials[j], json_true());
			TH_CHECK(t,
			    json_object_get(F.fs.certs, args[i].serials[j]) !=
				NULL);
			free(args[i].serials[j]);
		}
	}
	TH_CHECK(t, total == PAR_THREADS * PAR_EACH);
	TH_CHECK(t, dup == 0);
	json_decref(seen);
}

static X509_CRL *
parse_crl(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	return d2i_X509_CRL(NULL, &p, (long)len);
}

/* issue() of the one DNS name as "classic" with a kt key: 0, or -1 and a
 * failed check in t. */
static int
issue_classic(
    struct th *t, enum ca_key_type kt, const char *name, struct ca_issued *out)
{
	const char *const n[] = {name};
	struct problem *p = NULL;
	int rc = issue(&F, kt, "classic", NULL, n, n, 1, out, &p);

	TH_CHECK(t, rc == 0);
	if (p != NULL) {
		fprintf(stderr, "  issue %s: %s\n", name, p->detail);
		problem_free(p);
		rc = -1;
	}
	return rc;
}

static int
crl_has(X509_CRL *crl, const char *serial_hex, int *reason)
{
	STACK_OF(X509_REVOKED) *rs = X509_CRL_get_REVOKED(crl);
	ASN1_ENUMERATED *e;
	char *h;
	int i, found = 0;

	for (i = 0; i < sk_X509_REVOKED_num(rs); i++) {
		const ASN1_INTEGER *sn = X509_REVOKED_get0_serialNumber(
		    sk_X509_REVOKED_value(rs, i));
		h = hex_encode(
		    ASN1_STRING_get0_data(sn), (size_t)ASN1_STRING_length(sn));
		if (strcmp(h, serial_hex) == 0) {
			found = 1;
			e = X509_REVOKED_get_ext_d2i(
			    sk_X509_REVOKED_value(rs, i), NID_crl_reason, NULL,
			    NULL);
			*reason = e ? (int)ASN1_ENUMERATED_get(e) : 0;
			ASN1_ENUMERATED_free(e);
		}
		free(h);
	}
	return found;
}

TH_TEST(test_crl_before_and_after_revocation)
{
	struct ca_issued out;
	struct problem *p = NULL;
	uint8_t *der = NULL;
	size_t len = 0;
	int64_t num1 = 0, num2 = 0;
	X509_CRL *crl;
	ISSUING_DIST_POINT *idp;
	int crit = 0, reason = -1;
	char *url;

	if (issue_classic(t, CA_KEY_ECDSA, "dns:crl.example.com", &out) != 0)
		return;
	TH_CHECK(t,
	    ca_generate_crl(F.ca, out.issuer->id, out.shard, "t", &num1, &der,
		&len, &p) == 0);
	crl = parse_crl(der, len);
	TH_CHECK(t, crl != NULL);
	TH_CHECK(
	    t, X509_CRL_verify(crl, X509_get0_pubkey(out.issuer->cert)) == 1);
	TH_CHECK(t, !crl_has(crl, out.serial, &reason));
	idp = X509_CRL_get_ext_d2i(
	    crl, NID_issuing_distribution_point, &crit, NULL);
	TH_CHECK(t, idp != NULL && crit == 1);
	url = ca_url_crl("https://ca.test:4431", out.issuer->id, out.shard);
	TH_CHECK(t,
	    idp && idp->distpoint &&
		ASN1_STRING_length(
		    sk_GENERAL_NAME_value(idp->distpoint->name.fullname, 0)
			->d.uniformResourceIdentifier) == (int)strlen(url));
	free(url);
	ISSUING_DIST_POINT_free(idp);
	X509_CRL_free(crl);
	free(der);
	der = NULL;

	fake_revoke(&F.fs, out.serial, 1);
	TH_CHECK(t,
	    ca_generate_crl(F.ca, out.issuer->id, out.shard, "t", &num2, &der,
		&len, &p) == 0);
	TH_CHECK(t, num2 == num1 + 1);
	crl = parse_crl(der, len);
	TH_CHECK(t,
	    crl &&
		X509_CRL_verify(crl, X509_get0_pubkey(out.issuer->cert)) == 1);
	TH_CHECK(t, crl && crl_has(crl, out.serial, &reason) && reason == 1);
	X509_CRL_free(crl);
	free(der);
	TH_CHECK(t, json_array_size(F.fs.crls) >= 2);
	/* Bad shard and issuer are refused. */
	TH_CHECK(t,
	    ca_generate_crl(
		F.ca, out.issuer->id, 8, "t", NULL, NULL, NULL, &p) == -1 &&
		p->type == PROB_MALFORMED);
	problem_free(p);
	p = NULL;
	TH_CHECK(t,
	    ca_generate_crl(
		F.ca, "0000000000000000", 0, "t", NULL, NULL, NULL, &p) == -1 &&
		p->type == PROB_NOT_FOUND);
	problem_free(p);
	TH_CHECK(t, ca_generate_all_crls(F.ca, "t") == 0);
	ca_issued_clear(&out);
}

static int
ocsp_status(const uint8_t *der, size_t len, const struct ca_issuer *is,
    const char *serial_hex, int *reason)
{
	const unsigned char *p = der;
	OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
	OCSP_BASICRESP *bs = NULL;
	STACK_OF(X509) *certs = sk_X509_new_null();
	X509_STORE *st = X509_STORE_new();
	OCSP_CERTID *id = NULL;
	BIGNUM *bn = NULL;
	ASN1_INTEGER *sn = NULL;
	ASN1_GENERALIZEDTIME *rev, *tu, *nu;
	int status = -1;

	if (resp == NULL ||
	    OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL ||
	    (bs = OCSP_response_get1_basic(resp)) == NULL)
		goto out;
	sk_X509_push(certs, is->cert);
	if (OCSP_basic_verify(bs, certs, st, OCSP_TRUSTOTHER | OCSP_NOVERIFY) !=
	    1)
		goto out;
	BN_hex2bn(&bn, serial_hex);
	sn = BN_to_ASN1_INTEGER(bn, NULL);
	id = OCSP_cert_id_new(EVP_sha1(), X509_get_subject_name(is->cert),
	    X509_get0_pubkey_bitstr(is->cert), sn);
	if (OCSP_resp_find_status(bs, id, &status, reason, &rev, &tu, &nu) != 1)
		status = -1;
	else if (OCSP_check_validity(tu, nu, 300, -1) != 1)
		status = -2;
out:
	OCSP_CERTID_free(id);
	ASN1_INTEGER_free(sn);
	BN_free(bn);
	sk_X509_free(certs);
	X509_STORE_free(st);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	return status;
}

TH_TEST(test_ocsp_before_and_after_revocation)
{
	uint8_t *der = NULL, *der2 = NULL;
	size_t len = 0, len2 = 0;
	int reason = -1, stores;
	struct ca_issued out;
	struct problem *p = NULL;

	for (int kt = 0; kt < CA_KEY__MAX; kt++) {
		if (issue_classic(t, (enum ca_key_type)kt,
			"dns:ocsp.example.com", &out) != 0)
			return;
		TH_CHECK(
		    t, ca_ocsp(F.ca, out.serial, "t", &der, &len, &p) == 0);
		TH_CHECK(t,
		    ocsp_status(der, len, out.issuer, out.serial, &reason) ==
			V_OCSP_CERTSTATUS_GOOD);
		/* A fresh cached response is served again without signing. */
		stores = F.fs.ocsp_stores;
		TH_CHECK(
		    t, ca_ocsp(F.ca, out.serial, "t", &der2, &len2, &p) == 0);
		TH_CHECK(t,
		    F.fs.ocsp_stores == stores && len == len2 &&
			memcmp(der, der2, len) == 0);
		free(der);
		free(der2);
		der = der2 = NULL;
		/* After revocation the cache is not trusted. */
		fake_revoke(&F.fs, out.serial, 4);
		TH_CHECK(
		    t, ca_ocsp(F.ca, out.serial, "t", &der, &len, &p) == 0);
		TH_CHECK(t,
		    ocsp_status(der, len, out.issuer, out.serial, &reason) ==
			    V_OCSP_CERTSTATUS_REVOKED &&
			reason == 4);
		free(der);
		der = NULL;
		ca_issued_clear(&out);
	}
	TH_CHECK(t,
	    ca_ocsp(F.ca, "0102", "t", &der, &len, &p) == -1 &&
		p->type == PROB_NOT_FOUND);
	problem_free(p);
	p = NULL;
	TH_CHECK(t,
	    ca_ocsp(F.ca, "zz", "t", &der, &len, &p) == -1 &&
		p->type == PROB_MALFORMED);
	problem_free(p);
}

TH_TEST(test_shard_is_serial_mod_n)
{
	uint8_t s[3] = {0x01, 0x00, 0x07}; /* 65543 */

	TH_CHECK(t, ca_serial_shard(s, 3, 8) == 65543 % 8);
	TH_CHECK(t, ca_serial_shard(s, 3, 1) == 0);
	TH_CHECK(t, ca_serial_shard(s, 3, 1000) == 65543 % 1000);
}

/* How many profiles configs/dev/profiles.json (the fixture's) defines. */
static size_t
dev_profile_count(void)
{
	json_t *j = json_load_file("configs/dev/profiles.json", 0, NULL);
	size_t n = json_object_size(json_object_get(j, "profiles"));

	json_decref(j);
	return n;
}

TH_TEST(test_profiles_json)
{
	json_t *j = ca_profiles_json(F.ca);
	json_t *ps = json_object_get(j, "profiles");

	TH_CHECK(t, json_object_size(ps) == dev_profile_count());
	TH_CHECK(t, json_object_get(ps, "smime") != NULL);
	TH_CHECK(t, json_object_get(ps, "device") != NULL);
	TH_CHECK(t, json_object_get(ps, "classic") != NULL);
	TH_CHECK(t, json_object_get(ps, "tlsserver") != NULL);
	TH_CHECK(t, json_object_get(ps, "shortlived") != NULL);
	TH_CHECK(t, json_object_get(ps, "clientauth") != NULL);
	TH_CHECK_STR(
	    t, json_string_value(json_object_get(j, "default")), "classic");
	json_decref(j);
}

TH_TEST(test_dev_config_loads)
{
	const char *path = "configs/dev/ca.json";
	struct ca_config c;
	char err[512];
	json_t *obj = config_load_file(path, err, sizeof(err));

	TH_CHECK(t, obj != NULL);
	TH_CHECK(t, ca_config_parse(obj, path, &c, err, sizeof(err)) == 0);
	json_decref(obj);
	/* the WFE's plain-HTTP pki listener (RFC 5280 §8: "CAs SHOULD NOT
	 * include URIs that specify https") */
	TH_CHECK_STR(t, c.settings.public_base_url, "http://localhost:4430");
	TH_CHECK(t, c.settings.alternate_roots == -1);
	TH_CHECK(t, c.common.debug_port == 8102);
	TH_CHECK(t, c.crl_period_ms == 3600 * 1000);
	TH_CHECK(t, c.settings.crl_shards == 4);
	ca_config_clear(&c);
}

TH_TEST(test_bad_settings_refused)
{
	struct ca_settings s;
	char err[256];
	struct ca *ca;

	ca_settings_defaults(&s);
	s.public_base_url = "https://x";
	s.serial_prefix = 0x80; /* would make the serial negative */
	ca = ca_new(&s, NULL, F.profiles, (struct ca_store){NULL, NULL}, NULL,
	    err, sizeof(err));
	TH_CHECK(t, ca == NULL && strstr(err, "serial_prefix") != NULL);
}

static int
call_method(enum rpc_method_id id, const char *params_json, json_t **result,
    struct problem **prob)
{
	rpc_handler_fn fn = ca_rpc_handlers()[id];
	struct rpc_req req;
	json_error_t jerr;
	int rc = -2;

	memset(&req, 0, sizeof(req));
	req.method = rpc_method_name(id);
	req.contract = rpc_contract_get(id);
	req.params = json_loads(params_json, 0, &jerr);
	req.request_id = "rpc-test";
	*result = NULL;
	*prob = NULL;
	if (fn != NULL)
		rc = fn(F.ca, &req, result, prob);
	json_decref(req.params);
	return rc;
}

TH_TEST(test_rpc_handlers)
{
	static const char *n[] = {"dns:rpc.example.com"};
	static const struct {
		enum rpc_method_id method;
		const char *params, *type;
	} bad[] = {
	    {RPC_CA_ISSUE, "{}", "malformed"},
	    {RPC_CA_ISSUE,
		"{\"csr\": 5, \"identifiers\": [], "
		"\"account_id\": 1}",
		"malformed"},
	    {RPC_CA_ISSUE,
		"{\"csr\": \"!!\", \"identifiers\": [], "
		"\"account_id\": 1}",
		"badCSR"},
	    {RPC_CA_ISSUE,
		"{\"csr\": \"AAAA\", \"identifiers\": \"x\", "
		"\"account_id\": 1}",
		"malformed"},
	    {RPC_CA_ISSUE,
		"{\"csr\": \"AAAA\", \"identifiers\": [1, 2], "
		"\"account_id\": 1}",
		"badCSR"},
	    {RPC_CA_ISSUE,
		"{\"csr\": \"AAAA\", \"identifiers\": [], "
		"\"account_id\": 1, \"not_after\": \"soon\"}",
		"malformed"},
	    {RPC_CA_ISSUE,
		"{\"csr\": \"AAAA\", \"identifiers\": [], "
		"\"account_id\": 1, \"extra\": 1}",
		"malformed"},
	    {RPC_CA_GENERATE_CRL, "{\"issuer_id\": 7, \"shard\": 0}",
		"malformed"},
	    {RPC_CA_GENERATE_CRL, "{\"issuer_id\": \"x\", \"shard\": -1}",
		"notFound"},
	    {RPC_CA_OCSP, "{\"serial\": 5}", "malformed"},
	    {RPC_CA_OCSP, "{\"serial\": \"\"}", "malformed"},
	    {RPC_CA_OCSP, "{\"serial\": \"abc\"}", "malformed"},
	};
	json_t *res = NULL, *ids;
	struct problem *p = NULL;
	char *params, *b64;
	uint8_t *der;
	size_t i, len;
	const char *chain;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		TH_CHECK(t,
		    call_method(bad[i].method, bad[i].params, &res, &p) == -1);
		if (p == NULL || strcmp(prob_type_name(p->type), bad[i].type)) {
			fprintf(stderr, "  %s %s: got %s\n", rpc_method_name(bad[i].method),
			    bad[i].params, p ? prob_type_name(p->type) : "ok");
			TH_CHECK(t, 0);
		}
		problem_free(p);
		json_decref(res);
	}
	/* Identifiers that are not objects with a CSR that parses. */
	der = make_csr(CA_KEY_ECDSA, 256, NULL, n, 1, &len, NULL);
	b64 = b64url_encode(der, len);
	params = xasprintf("{\"csr\": \"%s\", \"identifiers\": [1, {}], "
			   "\"account_id\": 1}",
	    b64);
	TH_CHECK(t,
	    call_method(RPC_CA_ISSUE, params, &res, &p) == -1 && p &&
		p->type == PROB_MALFORMED);
	problem_free(p);
	free(params);
	/* The happy path through the handler. */
	ids = idents(n, 1);
	params =
	    xasprintf("{\"csr\": \"%s\", \"identifiers\": "
		      "[{\"type\": \"dns\", \"value\": \"rpc.example.com\"}], "
		      "\"account_id\": 3, \"order_id\": 4, \"profile\": "
		      "\"tlsserver\"}",
		b64);
	TH_CHECK(t, call_method(RPC_CA_ISSUE, params, &res, &p) == 0);
	chain = json_string_value(json_object_get(res, "chain_pem"));
	TH_CHECK(t,
	    chain != NULL &&
		strncmp(chain, "-----BEGIN CERTIFICATE", 22) == 0 &&
		strstr(chain + 10, "BEGIN CERTIFICATE") != NULL);
	TH_CHECK(
	    t, json_array_size(json_object_get(res, "alternates_pem")) == 1);
	TH_CHECK(
	    t, strlen(json_string_value(json_object_get(res, "serial"))) == 36);
	json_decref(res);
	problem_free(p);
	res = NULL;
	p = NULL;
	TH_CHECK(t,
	    call_method(RPC_CA_GET_ISSUERS, "{}", &res, &p) == 0 &&
		json_array_size(json_object_get(res, "issuers")) == 2);
	json_decref(res);
	TH_CHECK(t,
	    call_method(RPC_CA_PROFILES, "{}", &res, &p) == 0 &&
		json_object_size(json_object_get(res, "profiles")) ==
		    dev_profile_count());
	json_decref(res);
	free(params);
	free(b64);
	free(der);
	json_decref(ids);
}

/* ---------------- keys in a token (hsm runs only) ---------------- */

/*
 * Writes F.dir/<name> = issuers.json with every issuer's "pkcs11" object
 * changed: member `key` set to `val` (NULL deletes it). Returns the path
 * (static buffer).
 */
static const char *
issuers_variant(const char *name, const char *key, const char *val,
    const char *key2, const char *val2)
{
	static char out[256];
	char in[256];
	json_t *root, *is, *p;
	size_t i;

	snprintf(in, sizeof(in), "%s/issuers.json", F.dir);
	snprintf(out, sizeof(out), "%s/%s", F.dir, name);
	root = json_load_file(in, 0, NULL);
	json_array_foreach(json_object_get(root, "issuers"), i, is)
	{
		p = json_object_get(is, "pkcs11");
		if (val != NULL)
			json_object_set_new(p, key, json_string(val));
		else
			json_object_del(p, key);
		if (key2 != NULL && val2 != NULL)
			json_object_set_new(p, key2, json_string(val2));
		else if (key2 != NULL)
			json_object_del(p, key2);
	}
	json_dump_file(root, out, JSON_INDENT(2));
	json_decref(root);
	return out;
}

/* A CA over issuers loaded from path; NULL with err printed. */
static struct ca *
hsm_ca(const char *path)
{
	char err[512];
	struct ca_issuers *is = ca_issuers_load(path, err, sizeof(err));
	struct ca_settings s;
	struct ca *ca;

	if (is == NULL) {
		fprintf(stderr, "  load: %s\n", err);
		return NULL;
	}
	ca_settings_defaults(&s);
	s.public_base_url = "https://ca.test:4431/";
	s.serial_prefix = 0x42; /* what check_issued expects */
	s.crl_shards = 8;
	ca = ca_new(&s, is, F.profiles, (struct ca_store){fake_call, &F.fs},
	    NULL, err, sizeof(err));
	if (ca == NULL)
		fprintf(stderr, "  ca_new: %s\n", err);
	return ca;
}

TH_TEST_IN(1, test_hsm_ceremony_keys_stay_in_token)
{
	static const char *keys[] = {
	    "root.key", "root2.key", "int-ecdsa.key", "int-rsa.key"};
	struct ca *ca = NULL;
	const struct ca_issuers *is;
	struct ca_ceremony_pkcs11 cp = {
	    SOFTHSM_MODULE, HSM_TOKEN, F.pin, NULL, NULL};
	char path[256], dir2[200], err[512];
	json_t *root, *p;
	struct stat st;
	size_t i;

	if (!F.hsm)
		TH_SKIP(t, "PEM run");
	for (i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s/%s", F.dir, keys[i]);
		TH_CHECK(t, stat(path, &st) != 0); /* no key file at all */
	}
	snprintf(path, sizeof(path), "%s/issuers.json", F.dir);
	ca = hsm_ca(path);
	is = ca_get_issuers(ca);
	TH_CHECK(t, ca != NULL && ca_issuers_count(is) == 2);
	for (i = 0; i < ca_issuers_count(is); i++)
		TH_CHECK(t, ca_issuers_get(is, i)->p11 != NULL);
	ca_free(ca);
	snprintf(path, sizeof(path), "%s/issuers.json", F.dir);
	root = json_load_file(path, 0, NULL);
	p = json_object_get(
	    json_array_get(json_object_get(root, "issuers"), 0), "pkcs11");
	TH_CHECK_STR(t, json_string_value(json_object_get(p, "label")),
	    "int-ecdsa");
	TH_CHECK_STR(
	    t, json_string_value(json_object_get(p, "token")), HSM_TOKEN);
	TH_CHECK(t,
	    json_string_value(json_object_get(p, "id")) != NULL &&
		strlen(json_string_value(json_object_get(p, "id"))) == 16);
	TH_CHECK_STR(
	    t, json_string_value(json_object_get(p, "pin_file")), F.pin);
	json_decref(root);
	/* A second ceremony on the same token refuses: the labels exist. */
	snprintf(dir2, sizeof(dir2), "%s2", F.dir);
	TH_CHECK(t, ca_ceremony_init_pkcs11(dir2, &cp, err, sizeof(err)) == -1);
	TH_CHECK(t, strstr(err, "already holds a key labelled") != NULL);
	snprintf(path, sizeof(path), "%s/issuers.json", dir2);
	TH_CHECK(t, stat(path, &st) != 0);
	snprintf(path, sizeof(path), "%s/root.pem", dir2);
	TH_CHECK(t, stat(path, &st) != 0);
	/* And with another prefix it works on the same token. */
	cp.label_prefix = "b-";
	TH_CHECK(t, ca_ceremony_init_pkcs11(dir2, &cp, err, sizeof(err)) == 0);
	snprintf(path, sizeof(path), "%s/issuers.json", dir2);
	root = json_load_file(path, 0, NULL);
	p = json_object_get(
	    json_array_get(json_object_get(root, "issuers"), 1), "pkcs11");
	TH_CHECK_STR(t, json_string_value(json_object_get(p, "label")),
	    "b-int-rsa");
	json_decref(root);
	snprintf(path, sizeof(path), "rm -rf '%s'", dir2);
	TH_CHECK(t, system(path) == 0);
}

TH_TEST_IN(1, test_hsm_token_missing_refuses_start)
{
	char err[512];
	struct ca_issuers *is;

	if (!F.hsm)
		TH_SKIP(t, "PEM run");
	is = ca_issuers_load(
	    issuers_variant("i-missing.json", "token", "no-such-token", NULL,
		NULL),
	    err, sizeof(err));
	TH_CHECK(t, is == NULL);
	TH_CHECK(t, strstr(err, "token \"no-such-token\" not present") != NULL);
	TH_CHECK(t, strstr(err, HSM_TOKEN) != NULL); /* says what it saw */
	ca_issuers_free(is);
	/* A key label that is not on the token. */
	is = ca_issuers_load(
	    issuers_variant("i-nolabel.json", "label", "nope", "id", NULL),
	    err, sizeof(err));
	TH_CHECK(t, is == NULL && strstr(err, "\"nope\"") != NULL);
	ca_issuers_free(is);
}

TH_TEST_IN(1, test_hsm_wrong_pin_refused)
{
	char path[256], err[512];
	struct ca_issuers *is;
	FILE *f;

	if (!F.hsm)
		TH_SKIP(t, "PEM run");
	snprintf(path, sizeof(path), "%s/badpin", F.dir);
	f = fopen(path, "w");
	fputs("000000\n", f);
	fclose(f);
	chmod(path, 0600);
	is = ca_issuers_load(
	    issuers_variant("i-badpin.json", "pin_file", path, NULL, NULL),
	    err, sizeof(err));
	TH_CHECK(t, is == NULL && strstr(err, "CKR_PIN_INCORRECT") != NULL);
	ca_issuers_free(is);
	/* A PIN file others can read is refused before the token sees it. */
	chmod(path, 0644);
	is = ca_issuers_load(
	    issuers_variant("i-badpin.json", "pin_file", path, NULL, NULL),
	    err, sizeof(err));
	TH_CHECK(t, is == NULL && strstr(err, "CKR_") == NULL);
	ca_issuers_free(is);
}

TH_TEST_IN(1, test_hsm_pin_env_and_uri)
{
	static const char *n[] = {"dns:env.example.com"};
	char uri[512], err[512];
	struct ca_issuers *is;
	struct ca_issued out;
	struct problem *p = NULL;
	struct ca *saved;

	if (!F.hsm)
		TH_SKIP(t, "PEM run");
	unsetenv("ANVIL_TEST_HSM_PIN");
	is = ca_issuers_load(issuers_variant("i-env.json", "pin_env",
				 "ANVIL_TEST_HSM_PIN", "pin_file", NULL),
	    err, sizeof(err));
	TH_CHECK(t, is == NULL && strstr(err, "ANVIL_TEST_HSM_PIN") != NULL);
	ca_issuers_free(is);
	setenv("ANVIL_TEST_HSM_PIN", HSM_PIN, 1);
	saved = F.ca;
	F.ca = hsm_ca(issuers_variant("i-env.json", "pin_env",
	    "ANVIL_TEST_HSM_PIN", "pin_file", NULL));
	TH_CHECK(t, F.ca != NULL);
	if (F.ca != NULL &&
	    issue(&F, CA_KEY_ECDSA, "classic", NULL, n, n, 1, &out, &p) == 0) {
		check_issued(t, &out, "classic", CA_KEY_ECDSA, 1,
		    X509_PURPOSE_SSL_SERVER);
		ca_issued_clear(&out);
	} else
		TH_CHECK(t, 0);
	problem_free(p);
	p = NULL;
	ca_free(F.ca);
	unsetenv("ANVIL_TEST_HSM_PIN");
	/* RFC 7512 URI naming token, object and the PIN source. */
	snprintf(uri, sizeof(uri),
	    "pkcs11:token=%s;object=int-ecdsa?module-path=%s&pin-source=file:%s",
	    HSM_TOKEN, SOFTHSM_MODULE, F.pin);
	F.ca = NULL;
	{
		char path[256];
		json_t *root, *is2, *o;
		size_t i;
		snprintf(path, sizeof(path), "%s/issuers.json", F.dir);
		root = json_load_file(path, 0, NULL);
		json_array_foreach(json_object_get(root, "issuers"), i, is2)
		{
			const char *lbl = json_string_value(json_object_get(
			    json_object_get(is2, "pkcs11"), "label"));
			char u2[600];
			snprintf(u2, sizeof(u2), "%s", uri);
			if (strcmp(lbl, "int-rsa") == 0)
				snprintf(u2, sizeof(u2),
				    "pkcs11:token=%s;object=int%%2drsa"
				    "?module-path=%s&pin-source=file:%s",
				    HSM_TOKEN, SOFTHSM_MODULE, F.pin);
			o = json_pack("{s:s}", "uri", u2);
			json_object_set_new(is2, "pkcs11", o);
		}
		snprintf(path, sizeof(path), "%s/i-uri.json", F.dir);
		json_dump_file(root, path, 0);
		json_decref(root);
		F.ca = hsm_ca(path);
	}
	TH_CHECK(t, F.ca != NULL);
	if (F.ca != NULL &&
	    issue(&F, CA_KEY_RSA, "classic", NULL, n, n, 1, &out, &p) == 0) {
		check_issued(
		    t, &out, "classic", CA_KEY_RSA, 1, X509_PURPOSE_SSL_SERVER);
		ca_issued_clear(&out);
	} else
		TH_CHECK(t, 0);
	problem_free(p);
	ca_free(F.ca);
	F.ca = saved;
}

/* The token's directory (the one entry of F.tokdir), into buf. */
static int
token_subdir(char *buf, size_t len)
{
	char cmd[300];
	FILE *f;

	snprintf(cmd, sizeof(cmd), "ls '%s'", F.tokdir);
	if ((f = popen(cmd, "r")) == NULL)
		return -1;
	if (fgets(buf, (int)len, f) == NULL) {
		pclose(f);
		return -1;
	}
	pclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return buf[0] ? 0 : -1;
}

TH_TEST(test_hsm_token_removed_then_back)
{
	static const char *n[] = {"dns:gone.example.com"};
	char sub[128], from[400], to[400];
	struct ca_issued out, first;
	struct problem *p = NULL;
	size_t before;
	uint8_t *der = NULL;
	size_t len;
	int64_t deadline;
	int rc = -1;

	if (!F.hsm)
		TH_SKIP(t, "PEM run");
	TH_CHECK(t, F.ca != NULL);
	if (F.ca == NULL)
		return;
	TH_CHECK(t,
	    issue(&F, CA_KEY_ECDSA, "classic", NULL, n, n, 1, &first, &p) ==
		0);
	if (p != NULL) {
		problem_free(p);
		return;
	}
	TH_CHECK(t, token_subdir(sub, sizeof(sub)) == 0);
	snprintf(from, sizeof(from), "%s/%s", F.tokdir, sub);
	snprintf(to, sizeof(to), "%s/../unplugged-%s", F.tokdir, sub);
	TH_CHECK(t, rename(from, to) == 0); /* the token is unplugged */
	before = json_object_size(F.fs.certs);
	TH_CHECK(t,
	    issue(&F, CA_KEY_ECDSA, "classic", NULL, n, n, 1, &out, &p) == -1);
	TH_CHECK(t, p != NULL && p->type == PROB_UNAVAILABLE);
	if (p != NULL) {
		TH_CHECK(t, strstr(p->detail, "token") != NULL);
		problem_free(p);
		p = NULL;
	}
	/* Nothing half-stored. */
	TH_CHECK(t, json_object_size(F.fs.certs) == before);
	TH_CHECK(t,
	    ca_generate_crl(F.ca, first.issuer->id, 0, "t", NULL, NULL, NULL,
		&p) == -1 &&
		p != NULL && p->type == PROB_UNAVAILABLE);
	problem_free(p);
	p = NULL;
	TH_CHECK(t,
	    ca_ocsp(F.ca, first.serial, "t", &der, &len, &p) == -1 &&
		p != NULL && p->type == PROB_UNAVAILABLE);
	problem_free(p);
	p = NULL;
	TH_CHECK(t, rename(to, from) == 0); /* plugged in again */
	deadline = time_now_ms() + 60000; /* ends at the first success */
	while (time_now_ms() < deadline) {
		rc = issue(&F, CA_KEY_ECDSA, "classic", NULL, n, n, 1, &out, &p);
		if (rc == 0)
			break;
		problem_free(p);
		p = NULL;
		usleep(50 * 1000);
	}
	TH_CHECK(t, rc == 0);
	if (rc == 0) {
		check_issued(t, &out, "classic", CA_KEY_ECDSA, 1,
		    X509_PURPOSE_SSL_SERVER);
		ca_issued_clear(&out);
	}
	problem_free(p);
	p = NULL;
	TH_CHECK(t, ca_ocsp(F.ca, first.serial, "t", &der, &len, &p) == 0);
	free(der);
	problem_free(p);
	ca_issued_clear(&first);
}

static void
run_suite(struct th *t)
{
	th_run_tests(t);
	/* One module instance per process: the tests below load their own. */
	if (F.hsm) {
		ca_free(F.ca);
		F.ca = NULL;
	}
	th_run_group(t, 1);
}

int
main(void)
{
	struct th t = TH_INIT;

	log_init("test_ca", LOG_LEVEL_ERROR);
	fprintf(stderr, "# issuer keys in PEM files\n");
	if (fixture_setup(&F, 0) != 0) {
		printf("0 passed, 1 failed\n");
		return 1;
	}
	run_suite(&t);
	fixture_teardown(&F);
	fprintf(stderr, "# issuer keys in a SoftHSM2 token\n");
	if (fixture_setup(&F, 1) != 0) {
		t.failed++;
		fprintf(stderr, "not ok - SoftHSM2 fixture\n");
	} else
		run_suite(&t);
	fixture_teardown(&F);
	return th_done(&t);
}
