/*
 * ceremony.c - the development key ceremony: roots, intermediates, a
 * cross-signature and the issuers.json that anvil-ca loads.
 * docs/operations-ca.md describes the production ceremony.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ca/ca_int.h"
#include "ca/p11_int.h"

#define YEAR (365L * 24 * 3600)

static const char *const outputs[] = {
    "root.pem",
    "root.key",
    "root2.pem",
    "root2.key",
    "int-ecdsa.pem",
    "int-ecdsa.key",
    "int-ecdsa-cross.pem",
    "int-rsa.pem",
    "int-rsa.key",
    "roots.pem",
    "issuers.json",
};

/* Writes data into dir/name, which must not exist. 0 or -1 with err. */
static int
write_new(const char *dir, const char *name, const char *data, mode_t mode,
    char *err, size_t errlen)
{
	char *path = xasprintf("%s/%s", dir, name);
	size_t len = strlen(data), off = 0;
	ssize_t n;
	int fd, ret = -1;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	while (off < len) {
		n = write(fd, data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto out;
		}
		off += (size_t)n;
	}
	if (fchmod(fd, mode) != 0 || fsync(fd) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	free(path);
	return ret;
}

static char *
key_pem(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data = NULL, *ret = NULL;
	long n;

	if (b == NULL)
		return NULL;
	if (PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) &&
	    (n = BIO_get_mem_data(b, &data)) > 0)
		ret = xstrndup(data, (size_t)n);
	BIO_free(b);
	return ret;
}

static int
add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok;

	if (e == NULL)
		return -1;
	ok = X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	return ok ? 0 : -1;
}

/*
 * A CA certificate for subject key `key` named cn, signed by signer_key
 * (issuer_cert NULL = self-signed). Caller frees.
 */
static X509 *
make_ca_cert_named(const char *cn, const X509_NAME *subject, EVP_PKEY *key,
    X509 *issuer_cert, EVP_PKEY *signer_key, long years, int pathlen)
{
	X509 *x = NULL;
	X509_NAME *name = NULL;
	BIGNUM *bn = NULL;
	uint8_t serial[16];
	X509V3_CTX ctx;
	const EVP_MD *md;
	char bc[64];
	int ok = 0;

	random_bytes(serial, sizeof(serial));
	serial[0] = (serial[0] & 0x7f) | 0x01;
	if ((x = X509_new()) == NULL || !X509_set_version(x, 2))
		goto out;
	if ((bn = BN_bin2bn(serial, sizeof(serial), NULL)) == NULL ||
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
		goto out;
	if (subject != NULL) {
		if ((name = X509_NAME_dup(subject)) == NULL)
			goto out;
	} else if ((name = X509_NAME_new()) == NULL ||
	    !X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC,
		(const unsigned char *)"XX", -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
		(const unsigned char *)"Anvil Development", -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
		(const unsigned char *)cn, -1, -1, 0))
		goto out;
	if (!X509_set_subject_name(x, name) ||
	    !X509_set_issuer_name(
		x, issuer_cert ? X509_get_subject_name(issuer_cert) : name))
		goto out;
	if (X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), years * YEAR) == NULL)
		goto out;
	if (!X509_set_pubkey(x, key))
		goto out;
	X509V3_set_ctx(&ctx, issuer_cert ? issuer_cert : x, x, NULL, NULL, 0);
	if (pathlen >= 0)
		snprintf(
		    bc, sizeof(bc), "critical,CA:TRUE,pathlen:%d", pathlen);
	else
		snprintf(bc, sizeof(bc), "critical,CA:TRUE");
	if (add_ext(x, &ctx, NID_basic_constraints, bc) ||
	    add_ext(x, &ctx, NID_key_usage,
		issuer_cert ? "critical,digitalSignature,keyCertSign,cRLSign"
			    : "critical,keyCertSign,cRLSign") ||
	    add_ext(x, &ctx, NID_subject_key_identifier, "hash"))
		goto out;
	if (issuer_cert != NULL &&
	    (add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") ||
		add_ext(x, &ctx, NID_ext_key_usage,
		    "serverAuth,clientAuth,emailProtection")))
		goto out;
	md = EVP_PKEY_get_base_id(signer_key) == EVP_PKEY_EC &&
		EVP_PKEY_get_bits(signer_key) >= 384
	    ? EVP_sha384()
	    : EVP_sha256();
	if (X509_sign(x, signer_key, md) <= 0)
		goto out;
	ok = 1;
out:
	X509_NAME_free(name);
	BN_free(bn);
	if (!ok) {
		X509_free(x);
		x = NULL;
	}
	return x;
}

static X509 *
make_ca_cert(const char *cn, EVP_PKEY *key, X509 *issuer_cert,
    EVP_PKEY *signer_key, long years, int pathlen)
{
	return make_ca_cert_named(
	    cn, NULL, key, issuer_cert, signer_key, years, pathlen);
}

/* See ca_int.h. */
int
ca_issuers_alternate_roots(
    struct ca_issuers *is, int n, char *err, size_t errlen)
{
	EVP_PKEY *rk = NULL;
	X509 *root = NULL, *cross = NULL;
	struct ca_issuer *iss;
	char cn[96], tag[8];
	uint8_t rnd[2];
	size_t k, c;
	int j, ret = -1;

	/* keep chain 0 of every issuer */
	for (k = 0; k < is->count; k++) {
		iss = &is->list[k];
		for (c = 1; c < iss->nchains; c++) {
			free(iss->chains[c].intermediates_pem);
			free(iss->chains[c].root_pem);
			free(iss->chains[c].name);
		}
		iss->nchains = iss->nchains > 0 ? 1 : 0;
		iss->chains = xrealloc(
		    iss->chains, (size_t)(n + 1) * sizeof(*iss->chains));
	}
	random_bytes(rnd, sizeof(rnd));
	snprintf(tag, sizeof(tag), "%02x%02x", rnd[0], rnd[1]);
	for (j = 0; j < n; j++) {
		snprintf(cn, sizeof(cn), "Anvil Test Alternate Root A%d %s",
		    j + 1, tag);
		if ((rk = ca_key_generate(CA_KEY_ECDSA, 256)) == NULL ||
		    (root = make_ca_cert(cn, rk, NULL, rk, 20, -1)) == NULL) {
			snprintf(err, errlen,
			    "alternate root %d: key or "
			    "certificate generation failed",
			    j + 1);
			goto out;
		}
		for (k = 0; k < is->count; k++) {
			struct ca_chain *ch;

			iss = &is->list[k];
			/* the cross keeps the intermediate's pathlen */
			cross = make_ca_cert_named(NULL,
			    X509_get_subject_name(iss->cert),
			    X509_get0_pubkey(iss->cert), root, rk, 5,
			    (int)X509_get_pathlen(iss->cert));
			if (cross == NULL) {
				snprintf(err, errlen,
				    "alternate root %d: cross-signing %s "
				    "failed",
				    j + 1, iss->name);
				goto out;
			}
			ch = &iss->chains[iss->nchains];
			ch->intermediates_pem = ca_x509_pem(cross);
			ch->root_pem = ca_x509_pem(root);
			ch->name = xasprintf("alternate-%d", j + 1);
			X509_free(cross);
			cross = NULL;
			if (ch->intermediates_pem == NULL ||
			    ch->root_pem == NULL) {
				free(ch->intermediates_pem);
				free(ch->root_pem);
				free(ch->name);
				snprintf(err, errlen, "PEM encoding failed");
				goto out;
			}
			iss->nchains++;
		}
		X509_free(root);
		root = NULL;
		EVP_PKEY_free(rk);
		rk = NULL;
	}
	log_info("test mode: %d alternate chain(s) through throwaway roots", n);
	ret = 0;
out:
	X509_free(cross);
	X509_free(root);
	EVP_PKEY_free(rk);
	return ret;
}

static const char issuers_json[] =
    "{\n"
    "  \"issuers\": [\n"
    "    {\n"
    "      \"name\": \"%s\",\n"
    "      \"cert\": \"int-ecdsa.pem\",\n"
    "      %s,\n"
    "      \"key_types\": [\"ecdsa\"],\n"
    "      \"profiles\": [],\n"
    "      \"chains\": [\n"
    "        {\"name\": \"default\", \"certs\": [\"int-ecdsa.pem\"], "
    "\"root\": \"root.pem\"},\n"
    "        {\"name\": \"alternate\", \"certs\": "
    "[\"int-ecdsa-cross.pem\"], \"root\": \"root2.pem\"}\n"
    "      ]\n"
    "    },\n"
    "    {\n"
    "      \"name\": \"%s\",\n"
    "      \"cert\": \"int-rsa.pem\",\n"
    "      %s,\n"
    "      \"key_types\": [\"rsa\"],\n"
    "      \"profiles\": [],\n"
    "      \"chains\": [\n"
    "        {\"name\": \"default\", \"certs\": [\"int-rsa.pem\"], "
    "\"root\": \"root.pem\"}\n"
    "      ]\n"
    "    }\n"
    "  ]\n"
    "}\n";

/* Where the ceremony's keys come from: software, or a token. */
struct keysrc {
	const struct ca_ceremony_pkcs11 *p; /* NULL: software keys */
	int pathlen; /* the intermediates' pathLenConstraint */
	struct ca_p11 *m;
	struct ca_p11_key *keys[4];
	char *members[4]; /* issuers.json member naming each key */
};

static const char *const key_labels[4] = {
    "root", "root2", "int-ecdsa", "int-rsa"};

/*
 * Key i (0 root, 1 root2, 2 int-ecdsa, 3 int-rsa) of type kt/bits: made
 * in software, or generated in the token and wrapped. NULL with err.
 */
static EVP_PKEY *
make_key(struct keysrc *src, int i, enum ca_key_type kt, int bits, char *err,
    size_t errlen)
{
	EVP_PKEY *pub = NULL, *k = NULL;
	char *label;
	uint8_t id[8];
	json_t *o;

	if (src->p == NULL) {
		if ((k = ca_key_generate(kt, bits)) == NULL)
			snprintf(err, errlen, "key generation failed");
		src->members[i] =
		    xasprintf("\"key\": \"%s.key\"", key_labels[i]);
		return k;
	}
	label = xasprintf("%s%s",
	    src->p->label_prefix ? src->p->label_prefix : "", key_labels[i]);
	random_bytes(id, sizeof(id));
	if (ca_p11_generate(src->m, kt, bits, label, id, sizeof(id), &pub, err,
		errlen) != 0)
		goto out;
	src->keys[i] =
	    ca_p11_key_find(src->m, label, id, sizeof(id), err, errlen);
	if (src->keys[i] == NULL)
		goto out;
	if ((k = ca_p11_key_pkey(src->keys[i], pub, err, errlen)) == NULL)
		goto out;
	o = json_pack("{s:s, s:s, s:s, s:s}", "module", src->p->module, "token",
	    src->p->token, "label", label, "id",
	    ca_p11_key_id_hex(src->keys[i]));
	if (src->p->pin_file != NULL)
		json_object_set_new(
		    o, "pin_file", json_string(src->p->pin_file));
	else
		json_object_set_new(o, "pin_env", json_string(src->p->pin_env));
	{
		char *d = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
		src->members[i] = xasprintf("\"pkcs11\": %s", d);
		free(d);
	}
	json_decref(o);
out:
	EVP_PKEY_free(pub);
	free(label);
	return k;
}

/*
 * The ceremony never overwrites: dir exists (created 0700 if not), none of
 * its outputs exists yet and, with a token, no key label is taken. 0, or
 * -1 with err.
 */
static int
check_fresh(const char *dir, struct keysrc *src, char *err, size_t errlen)
{
	struct stat st;
	char *path;
	size_t k;
	int i, r;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	for (k = 0; k < sizeof(outputs) / sizeof(outputs[0]); k++) {
		path = xasprintf("%s/%s", dir, outputs[k]);
		if (lstat(path, &st) == 0) {
			snprintf(err, errlen,
			    "%s already exists: refusing to "
			    "overwrite (move the old PKI away first)",
			    path);
			free(path);
			return -1;
		}
		free(path);
	}
	/* Every label is checked before anything is generated. */
	for (i = 0; src->p != NULL && i < 4; i++) {
		path = xasprintf("%s%s",
		    src->p->label_prefix ? src->p->label_prefix : "",
		    key_labels[i]);
		r = ca_p11_label_exists(src->m, path, err, errlen);
		if (r > 0)
			snprintf(err, errlen,
			    "token \"%s\" already holds a key labelled \"%s\": "
			    "refusing to overwrite (use another --label-prefix "
			    "or token)",
			    src->p->token, path);
		free(path);
		if (r != 0)
			return -1;
	}
	return 0;
}

static int
ceremony(const char *dir, struct keysrc *src, char *err, size_t errlen)
{
	EVP_PKEY *rk = NULL, *r2k = NULL, *ek = NULL, *rsk = NULL;
	X509 *root = NULL, *root2 = NULL, *ie = NULL, *iex = NULL, *ir = NULL;
	char *pems[11];
	char *roots = NULL, *json = NULL, cn[4][96], tag[8];
	uint8_t rnd[2];
	size_t k;
	int ret = -1;

	memset(pems, 0, sizeof(pems));
	if (check_fresh(dir, src, err, errlen) != 0)
		goto out;
	random_bytes(rnd, sizeof(rnd));
	snprintf(tag, sizeof(tag), "%02x%02x", rnd[0], rnd[1]);
	snprintf(cn[0], sizeof(cn[0]), "Anvil Dev Root X1 %s", tag);
	snprintf(cn[1], sizeof(cn[1]), "Anvil Dev Alternate Root R1 %s", tag);
	snprintf(
	    cn[2], sizeof(cn[2]), "Anvil Dev ECDSA Intermediate E1 %s", tag);
	snprintf(cn[3], sizeof(cn[3]), "Anvil Dev RSA Intermediate R2 %s", tag);
	if ((rk = make_key(src, 0, CA_KEY_ECDSA, 384, err, errlen)) == NULL ||
	    (r2k = make_key(src, 1, CA_KEY_RSA, 2048, err, errlen)) == NULL ||
	    (ek = make_key(src, 2, CA_KEY_ECDSA, 256, err, errlen)) == NULL ||
	    (rsk = make_key(src, 3, CA_KEY_RSA, 2048, err, errlen)) == NULL)
		goto out;
	if ((root = make_ca_cert(cn[0], rk, NULL, rk, 20, -1)) == NULL ||
	    (root2 = make_ca_cert(cn[1], r2k, NULL, r2k, 20, -1)) == NULL ||
	    (ie = make_ca_cert(cn[2], ek, root, rk, 5, src->pathlen)) == NULL ||
	    (iex = make_ca_cert(cn[2], ek, root2, r2k, 5, src->pathlen)) ==
		NULL ||
	    (ir = make_ca_cert(cn[3], rsk, root, rk, 5, src->pathlen)) ==
		NULL) {
		snprintf(err, errlen, "certificate signing failed");
		goto out;
	}
	pems[0] = ca_x509_pem(root);
	pems[2] = ca_x509_pem(root2);
	pems[4] = ca_x509_pem(ie);
	pems[6] = ca_x509_pem(iex);
	pems[7] = ca_x509_pem(ir);
	if (src->p == NULL) {
		pems[1] = key_pem(rk);
		pems[3] = key_pem(r2k);
		pems[5] = key_pem(ek);
		pems[8] = key_pem(rsk);
	}
	for (k = 0; k < 9; k++) {
		int is_key = strstr(outputs[k], ".key") != NULL;
		if (pems[k] == NULL && !(is_key && src->p != NULL)) {
			snprintf(err, errlen, "PEM encoding failed");
			goto out;
		}
	}
	roots = xasprintf("%s%s", pems[0], pems[2]);
	json = xasprintf(
	    issuers_json, cn[2], src->members[2], cn[3], src->members[3]);
	for (k = 0; k < 9; k++) {
		int is_key = strstr(outputs[k], ".key") != NULL;
		if (pems[k] == NULL)
			continue; /* a key that stays in the token */
		if (write_new(dir, outputs[k], pems[k], is_key ? 0600 : 0644,
			err, errlen) != 0)
			goto out;
	}
	if (write_new(dir, "roots.pem", roots, 0644, err, errlen) != 0 ||
	    write_new(dir, "issuers.json", json, 0644, err, errlen) != 0)
		goto out;
	ret = 0;
out:
	for (k = 0; k < sizeof(pems) / sizeof(pems[0]); k++) {
		if (pems[k] != NULL)
			OPENSSL_cleanse(pems[k], strlen(pems[k]));
		free(pems[k]);
	}
	free(roots);
	free(json);
	EVP_PKEY_free(rk);
	EVP_PKEY_free(r2k);
	EVP_PKEY_free(ek);
	EVP_PKEY_free(rsk);
	X509_free(root);
	X509_free(root2);
	X509_free(ie);
	X509_free(iex);
	X509_free(ir);
	return ret;
}

static void
keysrc_clear(struct keysrc *src)
{
	int i;

	for (i = 0; i < 4; i++) {
		ca_p11_key_free(src->keys[i]);
		free(src->members[i]);
	}
	ca_p11_free(src->m);
}

/* See ca.h. */
int
ca_ceremony_init(const char *dir, char *err, size_t errlen)
{
	return ca_ceremony_run(dir, NULL, 0, err, errlen);
}

/* See ca.h. */
int
ca_ceremony_init_pkcs11(const char *dir, const struct ca_ceremony_pkcs11 *p,
    char *err, size_t errlen)
{
	return ca_ceremony_run(dir, p, 0, err, errlen);
}

/* See ca.h. */
int
ca_ceremony_run(const char *dir, const struct ca_ceremony_pkcs11 *p,
    int pathlen, char *err, size_t errlen)
{
	struct keysrc src;
	int ret = -1;

	memset(&src, 0, sizeof(src));
	if (pathlen < 0 || pathlen > CA_CEREMONY_MAX_PATHLEN) {
		snprintf(err, errlen,
		    "intermediate pathlen must be 0..%d",
		    CA_CEREMONY_MAX_PATHLEN);
		return -1;
	}
	src.pathlen = pathlen;
	if (p == NULL) {
		ret = ceremony(dir, &src, err, errlen);
	} else if (p->pin_file != NULL && p->pin_file[0] != '/') {
		snprintf(err, errlen,
		    "pin_file: give an absolute path (issuers.json records "
		    "it)");
	} else {
		struct ca_p11_conf c = {
		    p->module, p->token, p->pin_file, p->pin_env};

		src.p = p;
		if ((src.m = ca_p11_open(&c, err, errlen)) != NULL)
			ret = ceremony(dir, &src, err, errlen);
	}
	keysrc_clear(&src);
	return ret;
}
