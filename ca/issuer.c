/*
 * issuer.c - loading issuers (certificate, key, chains) from issuers.json.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/store.h>
#include <openssl/ui.h>
#include <openssl/x509v3.h>

#include "ca/ca_int.h"
#include "ca/p11_int.h"

#define CA_MAX_PEM_FILE (1024 * 1024)

struct issuer_spec {
	char *name;
	char *cert;
	char *key;
	char *key_uri;
	char *key_passphrase_file;
	char **key_types;
	size_t nkey_types;
	char **profiles;
	size_t nprofiles;
	json_t *chains;
	/* "pkcs11": {...}: the key is in a token */
	char *p11_uri;
	char *p11_module;
	char *p11_token;
	char *p11_label;
	char *p11_id;
	char *p11_pin_file;
	char *p11_pin_env;
};

/* An optional string member of issuers.json. */
#define S(n, m) JSPEC_FIELD(struct issuer_spec, n, JSPEC_STRING, m)
static const struct jspec pkcs11_fields[] = {
    S("uri", p11_uri),
    S("module", p11_module),
    S("token", p11_token),
    S("label", p11_label),
    S("id", p11_id),
    S("pin_file", p11_pin_file),
    S("pin_env", p11_pin_env),
    JSPEC_END,
};

static const struct jspec issuer_fields[] = {
    {"name", JSPEC_STRING, offsetof(struct issuer_spec, name), 1, NULL, 0},
    {"cert", JSPEC_STRING, offsetof(struct issuer_spec, cert), 1, NULL, 0},
    S("key", key),
    S("key_uri", key_uri),
    S("key_passphrase_file", key_passphrase_file),
    JSPEC_STRV(struct issuer_spec, "key_types", key_types, nkey_types),
    JSPEC_STRV(struct issuer_spec, "profiles", profiles, nprofiles),
    JSPEC_FIELD(struct issuer_spec, "chains", JSPEC_JSON, chains),
    JSPEC_SUB("pkcs11", pkcs11_fields),
    JSPEC_END,
};
#undef S

struct chain_spec {
	char *name;
	char **certs;
	size_t ncerts;
	char *root;
};

static const struct jspec chain_fields[] = {
    {"name", JSPEC_STRING, offsetof(struct chain_spec, name), 0, NULL, 0},
    {"certs", JSPEC_STRINGS, offsetof(struct chain_spec, certs), 1, NULL,
	offsetof(struct chain_spec, ncerts)},
    {"root", JSPEC_STRING, offsetof(struct chain_spec, root), 1, NULL, 0},
    JSPEC_END,
};

/* Path relative to dir unless absolute; malloc'd. */
static char *
resolve(const char *dir, const char *p)
{
	if (p[0] == '/' || dir[0] == '\0')
		return xstrdup(p);
	return xasprintf("%s/%s", dir, p);
}

/* Reads the first certificate of a PEM file. NULL with err. */
static X509 *
load_cert(const char *path, char **pem_out, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t len;
	BIO *b = NULL;
	X509 *x = NULL;

	if (file_read_all(path, CA_MAX_PEM_FILE, &buf, &len, err, errlen) != 0)
		goto out;
	if ((b = BIO_new_mem_buf(buf, (int)len)) == NULL)
		goto out;
	x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	if (x == NULL) {
		snprintf(err, errlen, "%s: no PEM certificate", path);
		goto out;
	}
	if (pem_out != NULL)
		*pem_out = ca_x509_pem(x);
out:
	BIO_free(b);
	free(buf);
	return x;
}

/* Wipes and frees a secret of len bytes; NULL is a no-op. */
static void
secret_free(char *s, size_t len)
{
	if (s == NULL)
		return;
	OPENSSL_cleanse(s, len);
	free(s);
}

/*
 * Reads the passphrase file at path (NULL: no passphrase, *pass NULL),
 * refusing one readable by others, without its trailing newline. 0 with
 * *pass (secret_free) and *plen, or -1 with err.
 */
static int
read_passphrase(
    const char *path, char **pass, size_t *plen, char *err, size_t errlen)
{
	*pass = NULL;
	*plen = 0;
	if (path == NULL)
		return 0;
	if (file_check_secret_mode(path, err, errlen) != 0 ||
	    file_read_all(path, 4096, pass, plen, err, errlen) != 0)
		return -1;
	while (*plen > 0 &&
	    ((*pass)[*plen - 1] == '\n' || (*pass)[*plen - 1] == '\r'))
		(*pass)[--*plen] = '\0';
	return 0;
}

/* Loads a private key, refusing readable-by-others files. */
static EVP_PKEY *
load_key(const char *path, const char *pass_path, char *err, size_t errlen)
{
	char *buf = NULL, *pass = NULL;
	size_t len = 0, plen = 0;
	BIO *b = NULL;
	EVP_PKEY *k = NULL;

	if (file_check_secret_mode(path, err, errlen) != 0)
		goto out;
	if (file_read_all(path, CA_MAX_PEM_FILE, &buf, &len, err, errlen) != 0)
		goto out;
	if (read_passphrase(pass_path, &pass, &plen, err, errlen) != 0)
		goto out;
	if ((b = BIO_new_mem_buf(buf, (int)len)) == NULL)
		goto out;
	k = PEM_read_bio_PrivateKey(b, NULL, NULL, pass != NULL ? pass : "");
	if (k == NULL)
		snprintf(err, errlen, "%s: cannot read private key%s", path,
		    pass != NULL ? " (wrong passphrase?)" : "");
out:
	BIO_free(b);
	secret_free(buf, len);
	secret_free(pass, plen);
	return k;
}

/*
 * Loads a private key through OSSL_STORE: "file:/path" or, with the
 * provider configured in OPENSSL_CONF, "pkcs11:token=...;object=..." for
 * a key that never leaves an HSM. The passphrase (PIN) is given to the
 * store's UI when it asks. NULL with err.
 */
static EVP_PKEY *
load_key_uri(const char *uri, const char *pass_path, char *err, size_t errlen)
{
	OSSL_STORE_CTX *st = NULL;
	OSSL_STORE_INFO *info;
	UI_METHOD *ui = NULL;
	EVP_PKEY *k = NULL;
	char *pass = NULL;
	size_t plen = 0;

	if (strncmp(uri, "file:", 5) == 0 &&
	    file_check_secret_mode(
		uri + (strncmp(uri, "file://", 7) == 0 ? 7 : 5), err, errlen) !=
		0)
		goto out;
	if (read_passphrase(pass_path, &pass, &plen, err, errlen) != 0)
		goto out;
	if (pass != NULL)
		ui = UI_UTIL_wrap_read_pem_callback(NULL, 0);
	st = OSSL_STORE_open(uri, ui, pass, NULL, NULL);
	if (st == NULL) {
		snprintf(err, errlen, "%s: cannot open key store", uri);
		goto out;
	}
	while (k == NULL && !OSSL_STORE_eof(st)) {
		info = OSSL_STORE_load(st);
		if (info == NULL)
			break;
		if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
			k = OSSL_STORE_INFO_get1_PKEY(info);
		OSSL_STORE_INFO_free(info);
	}
	if (k == NULL)
		snprintf(err, errlen, "%s: no private key found%s", uri,
		    pass != NULL ? " (wrong passphrase?)" : "");
out:
	OSSL_STORE_close(st);
	UI_destroy_method(ui);
	secret_free(pass, plen);
	return k;
}

/* Percent-decodes n bytes of s (RFC 7512 §2.3). Malloc'd; NULL if bad. */
static char *
pct_decode(const char *s, size_t n, size_t *outlen)
{
	char *o = xcalloc(1, n + 1), hx[3];
	size_t i, k = 0;
	char *end;

	for (i = 0; i < n; i++) {
		if (s[i] != '%') {
			o[k++] = s[i];
			continue;
		}
		if (i + 2 >= n) {
			free(o);
			return NULL;
		}
		hx[0] = s[i + 1];
		hx[1] = s[i + 2];
		hx[2] = '\0';
		o[k++] = (char)strtoul(hx, &end, 16);
		if (*end != '\0') {
			free(o);
			return NULL;
		}
		i += 2;
	}
	*outlen = k;
	return o;
}

/* Stores attribute p..end (name=value) of a pkcs11: URI into sp. */
static int
p11_uri_attr(struct issuer_spec *sp, const char *p, const char *end, int query)
{
	const char *eq = memchr(p, '=', (size_t)(end - p));
	char **dst = NULL, *v, *t;
	size_t vlen, nlen;

	if (eq == NULL)
		return 0;
	nlen = (size_t)(eq - p);
#define IS(name) (nlen == strlen(name) && strncmp(p, name, nlen) == 0)
	if (!query && IS("token"))
		dst = &sp->p11_token;
	else if (!query && IS("object"))
		dst = &sp->p11_label;
	else if (!query && IS("id"))
		dst = &sp->p11_id;
	else if (query && IS("module-path"))
		dst = &sp->p11_module;
	else if (query && IS("pin-source"))
		dst = &sp->p11_pin_file;
#undef IS
	if (dst == NULL)
		return 0;
	if ((v = pct_decode(eq + 1, (size_t)(end - eq - 1), &vlen)) == NULL)
		return -1;
	if (dst == &sp->p11_id) {
		t = hex_encode((const uint8_t *)v, vlen); /* binary: as hex */
		free(v);
		v = t;
	} else if (dst == &sp->p11_pin_file && strncmp(v, "file:", 5) == 0) {
		t = xstrdup(v + 5);
		free(v);
		v = t;
	}
	free(*dst);
	*dst = v;
	return 0;
}

/*
 * Fills the pkcs11 fields of sp that a "pkcs11:" URI (RFC 7512) names:
 * token, object (the label) and id from the path; module-path and
 * pin-source (a file) from the query. What the URI names overrides the
 * separate keys. 0 or -1 with err.
 */
static int
parse_p11_uri(struct issuer_spec *sp, char *err, size_t errlen)
{
	const char *u = sp->p11_uri, *p, *q, *end;

	if (strncmp(u, "pkcs11:", 7) != 0) {
		snprintf(err, errlen, "pkcs11.uri: not a pkcs11: URI");
		return -1;
	}
	q = u + 7 + strcspn(u + 7, "?");
	for (p = u + 7; p < q; p = end + 1) {
		end = p + strcspn(p, ";?");
		if (p11_uri_attr(sp, p, end, 0) != 0)
			goto bad;
	}
	for (p = *q ? q + 1 : q; *p != '\0'; p = *end ? end + 1 : end) {
		end = p + strcspn(p, "&");
		if (p11_uri_attr(sp, p, end, 1) != 0)
			goto bad;
	}
	return 0;
bad:
	snprintf(err, errlen, "pkcs11.uri: bad %%-escape");
	return -1;
}

/*
 * The key of an issuer from a token: finds (or opens, once per module) the
 * module in `all`, finds the key by label/id and wraps it with the
 * certificate's public key. 0 or -1 with err.
 */
static int
load_p11_key(struct ca_issuers *all, const char *dir, struct issuer_spec *sp,
    struct ca_issuer *is, char *err, size_t errlen)
{
	struct ca_p11_conf c;
	struct ca_p11 *m = NULL;
	char *pin_path = NULL;
	uint8_t *id = NULL;
	size_t idlen = 0, k;
	int ret = -1;

	if (sp->p11_uri != NULL && parse_p11_uri(sp, err, errlen) != 0)
		goto out;
	if (sp->p11_module == NULL || sp->p11_token == NULL ||
	    sp->p11_label == NULL) {
		snprintf(err, errlen,
		    "pkcs11: module, token and label (or a uri naming "
		    "them) are required");
		goto out;
	}
	if (sp->p11_id != NULL && (hex_decode(sp->p11_id, &id, &idlen) != 0 ||
				      idlen == 0)) {
		snprintf(err, errlen, "pkcs11.id: expected hex digits");
		goto out;
	}
	if (sp->p11_pin_file != NULL)
		pin_path = resolve(dir, sp->p11_pin_file);
	for (k = 0; k < all->np11; k++) {
		if (strcmp(ca_p11_module_path(all->p11[k]), sp->p11_module))
			continue;
		if (strcmp(ca_p11_token(all->p11[k]), sp->p11_token) != 0) {
			snprintf(err, errlen,
			    "pkcs11.token: module %s is already used with "
			    "token \"%s\" (one token per module)",
			    sp->p11_module, ca_p11_token(all->p11[k]));
			goto out;
		}
		m = all->p11[k];
	}
	if (m == NULL) {
		c.module = sp->p11_module;
		c.token = sp->p11_token;
		c.pin_file = pin_path;
		c.pin_env = sp->p11_pin_env;
		if ((m = ca_p11_open(&c, err, errlen)) == NULL)
			goto out;
		all->p11 = xrealloc(
		    all->p11, (all->np11 + 1) * sizeof(*all->p11));
		all->p11[all->np11++] = m;
	}
	is->p11 = ca_p11_key_find(m, sp->p11_label, id, idlen, err, errlen);
	if (is->p11 == NULL)
		goto out;
	is->key = ca_p11_key_pkey(
	    is->p11, X509_get0_pubkey(is->cert), err, errlen);
	if (is->key == NULL)
		goto out;
	ret = 0;
out:
	free(pin_path);
	free(id);
	return ret;
}

static void
issuer_clear(struct ca_issuer *i)
{
	size_t k;

	free(i->name);
	X509_free(i->cert);
	EVP_PKEY_free(i->key);
	ca_p11_key_free(i->p11); /* after the EVP_PKEY that points to it */
	EVP_PKEY_free(i->lint_key);
	free(i->cert_pem);
	for (k = 0; k < i->nchains; k++) {
		free(i->chains[k].intermediates_pem);
		free(i->chains[k].root_pem);
		free(i->chains[k].name);
	}
	free(i->chains);
	for (k = 0; k < i->nprofiles; k++)
		free(i->profiles[k]);
	free(i->profiles);
	memset(i, 0, sizeof(*i));
}

/* Loads one chain; checks every link's signature up to the root. */
static int
load_chain(const char *dir, const json_t *obj, const struct ca_issuer *is,
    struct ca_chain *ch, char *err, size_t errlen)
{
	struct chain_spec cs;
	X509 **certs = NULL, *root = NULL;
	char *pem = NULL, *path = NULL, *all = NULL, *tmp, *root_pem = NULL;
	size_t k;
	int ret = -1;

	memset(&cs, 0, sizeof(cs));
	if (jspec_parse(obj, chain_fields, &cs, err, errlen) != 0)
		goto out;
	if (cs.ncerts == 0) {
		snprintf(err, errlen, "chains.certs: empty");
		goto out;
	}
	certs = xcalloc(cs.ncerts, sizeof(*certs));
	all = xstrdup("");
	for (k = 0; k < cs.ncerts; k++) {
		free(path);
		path = resolve(dir, cs.certs[k]);
		certs[k] = load_cert(path, &pem, err, errlen);
		if (certs[k] == NULL || pem == NULL)
			goto out;
		tmp = xasprintf("%s%s", all, pem);
		free(all);
		all = tmp;
		free(pem);
		pem = NULL;
	}
	free(path);
	path = resolve(dir, cs.root);
	if ((root = load_cert(path, &root_pem, err, errlen)) == NULL)
		goto out;
	if (X509_cmp(certs[0], is->cert) != 0 &&
	    EVP_PKEY_eq(X509_get0_pubkey(certs[0]), is->key) != 1) {
		snprintf(err, errlen,
		    "%s: first chain certificate does not "
		    "carry the issuer key",
		    cs.certs[0]);
		goto out;
	}
	for (k = 0; k < cs.ncerts; k++) {
		X509 *up = k + 1 < cs.ncerts ? certs[k + 1] : root;
		if (X509_verify(certs[k], X509_get0_pubkey(up)) != 1) {
			snprintf(err, errlen,
			    "%s: not signed by the next "
			    "certificate of its chain",
			    cs.certs[k]);
			goto out;
		}
	}
	ch->intermediates_pem = all;
	all = NULL;
	ch->root_pem = root_pem;
	root_pem = NULL;
	ch->name = xstrdup(cs.name != NULL ? cs.name : "default");
	ret = 0;
out:
	if (certs != NULL)
		for (k = 0; k < cs.ncerts; k++)
			X509_free(certs[k]);
	free(certs);
	X509_free(root);
	free(pem);
	free(path);
	free(all);
	free(root_pem);
	jspec_clear(chain_fields, &cs);
	return ret;
}

static int
load_issuer(struct ca_issuers *all, const char *dir, const json_t *obj,
    struct ca_issuer *is, char *err, size_t errlen)
{
	struct issuer_spec sp;
	char *cpath = NULL, *kpath = NULL, *ppath = NULL;
	const json_t *c;
	size_t k;
	enum ca_key_type kt;
	int ret = -1;

	memset(&sp, 0, sizeof(sp));
	if (jspec_parse(obj, issuer_fields, &sp, err, errlen) != 0)
		goto out;
	is->name = xstrdup(sp.name);
	if ((sp.key != NULL) + (sp.key_uri != NULL) +
		(json_object_get(obj, "pkcs11") != NULL) !=
	    1) {
		snprintf(err, errlen,
		    "exactly one of key, key_uri and pkcs11 is "
		    "required");
		goto out;
	}
	cpath = resolve(dir, sp.cert);
	if (sp.key_passphrase_file != NULL)
		ppath = resolve(dir, sp.key_passphrase_file);
	if ((is->cert = load_cert(cpath, &is->cert_pem, err, errlen)) == NULL)
		goto out;
	if (sp.key != NULL) {
		kpath = resolve(dir, sp.key);
		is->key = load_key(kpath, ppath, err, errlen);
	} else if (sp.key_uri != NULL) {
		is->key = load_key_uri(sp.key_uri, ppath, err, errlen);
	} else if (load_p11_key(all, dir, &sp, is, err, errlen) != 0)
		goto out;
	if (is->key == NULL)
		goto out;
	/* A token key was checked against the certificate by a test
	 * signature (ca_p11_key_pkey). */
	if (is->p11 == NULL && X509_check_private_key(is->cert, is->key) != 1) {
		snprintf(err, errlen, "%s: key does not match %s",
		    sp.key ? sp.key : sp.key_uri, sp.cert);
		goto out;
	}
	if (ca_pkey_type(is->key, &is->key_type) != 0) {
		snprintf(err, errlen, "%s: unsupported key type",
		    sp.key ? sp.key : sp.key_uri ? sp.key_uri : "pkcs11");
		goto out;
	}
	/* Caches the extensions now: later reads are from many threads. */
	(void)X509_check_purpose(is->cert, -1, 0);
	if (ca_x509_id(is->cert, is->id) != 0) {
		snprintf(err, errlen, "%s: cannot encode", sp.cert);
		goto out;
	}
	if (sp.nkey_types == 0)
		is->signs = 1u << is->key_type;
	for (k = 0; k < sp.nkey_types; k++) {
		if (ca_key_type_parse(sp.key_types[k], &kt) != 0) {
			snprintf(err, errlen, "key_types: unknown \"%s\"",
			    sp.key_types[k]);
			goto out;
		}
		is->signs |= 1u << kt;
	}
	is->profiles = xcalloc(sp.nprofiles + 1, sizeof(char *));
	for (k = 0; k < sp.nprofiles; k++)
		is->profiles[k] = xstrdup(sp.profiles[k]);
	is->nprofiles = sp.nprofiles;
	if (sp.chains != NULL && !json_is_array(sp.chains)) {
		snprintf(err, errlen, "chains: expected an array");
		goto out;
	}
	if (sp.chains == NULL || json_array_size(sp.chains) == 0) {
		snprintf(err, errlen, "chains: at least one chain is needed");
		goto out;
	}
	is->chains = xcalloc(json_array_size(sp.chains), sizeof(*is->chains));
	json_array_foreach(sp.chains, k, c)
	{
		if (!json_is_object(c)) {
			snprintf(err, errlen,
			    "chains[%zu]: expected an "
			    "object",
			    k);
			goto out;
		}
		if (load_chain(dir, c, is, &is->chains[k], err, errlen) != 0)
			goto out;
		is->nchains++;
	}
	ret = 0;
out:
	free(cpath);
	free(kpath);
	free(ppath);
	jspec_clear(issuer_fields, &sp);
	return ret;
}

/* See ca.h. */
struct ca_issuers *
ca_issuers_load(const char *path, char *err, size_t errlen)
{
	json_t *root = NULL;
	const json_t *arr, *obj;
	struct ca_issuers *is = NULL;
	char *dir = NULL, *slash, sub[512];
	size_t k;
	int ok = 0;

	if ((root = config_load_file(path, err, errlen)) == NULL)
		goto out;
	arr = json_object_get(root, "issuers");
	if (!json_is_array(arr) || json_array_size(arr) == 0 ||
	    json_object_size(root) != 1) {
		snprintf(err, errlen,
		    "%s: expected {\"issuers\": [...]} with "
		    "at least one issuer",
		    path);
		goto out;
	}
	dir = xstrdup(path);
	slash = strrchr(dir, '/');
	if (slash != NULL)
		*slash = '\0';
	else
		dir[0] = '\0';
	is = xcalloc(1, sizeof(*is));
	is->list = xcalloc(json_array_size(arr), sizeof(*is->list));
	json_array_foreach(arr, k, obj)
	{
		if (!json_is_object(obj)) {
			snprintf(err, errlen,
			    "%s: issuers[%zu]: expected an "
			    "object",
			    path, k);
			goto out;
		}
		is->count++;
		if (load_issuer(is, dir, obj, &is->list[k], sub,
			sizeof(sub)) != 0) {
			snprintf(
			    err, errlen, "%s: issuers[%zu]: %s", path, k, sub);
			goto out;
		}
	}
	ok = 1;
out:
	json_decref(root);
	free(dir);
	if (!ok) {
		ca_issuers_free(is);
		is = NULL;
	}
	return is;
}

/* Frees is and every key it holds. */
void
ca_issuers_free(struct ca_issuers *is)
{
	size_t k;

	if (is == NULL)
		return;
	for (k = 0; k < is->count; k++)
		issuer_clear(&is->list[k]);
	free(is->list);
	for (k = 0; k < is->np11; k++)
		ca_p11_free(is->p11[k]);
	free(is->p11);
	free(is);
}

size_t
ca_issuers_count(const struct ca_issuers *is)
{
	return is != NULL ? is->count : 0;
}

const struct ca_issuer *
ca_issuers_get(const struct ca_issuers *is, size_t i)
{
	if (is == NULL || i >= is->count)
		return NULL;
	return &is->list[i];
}

const struct ca_issuer *
ca_issuers_find(const struct ca_issuers *is, const char *id)
{
	size_t k;

	if (is == NULL || id == NULL)
		return NULL;
	for (k = 0; k < is->count; k++)
		if (strcmp(is->list[k].id, id) == 0)
			return &is->list[k];
	return NULL;
}

const struct ca_issuer *
ca_issuers_choose(
    const struct ca_issuers *is, const char *profile, enum ca_key_type kt)
{
	size_t k, p;
	const struct ca_issuer *i;

	if (is == NULL)
		return NULL;
	for (k = 0; k < is->count; k++) {
		i = &is->list[k];
		if (!(i->signs & (1u << kt)))
			continue;
		if (i->nprofiles == 0)
			return i;
		for (p = 0; p < i->nprofiles; p++)
			if (profile != NULL &&
			    strcmp(i->profiles[p], profile) == 0)
				return i;
	}
	return NULL;
}

const char *
ca_issuer_id(const struct ca_issuer *i)
{
	return i->id;
}

const char *
ca_issuer_name(const struct ca_issuer *i)
{
	return i->name;
}

enum ca_key_type
ca_issuer_key_type(const struct ca_issuer *i)
{
	return i->key_type;
}

/* See ca.h. */
json_t *
ca_issuer_json(const struct ca_issuer *i)
{
	json_t *o, *chains, *roots;
	size_t k;

	chains = json_array();
	roots = json_array();
	for (k = 0; k < i->nchains; k++) {
		json_array_append_new(
		    chains, json_string(i->chains[k].intermediates_pem));
		json_array_append_new(
		    roots, json_string(i->chains[k].root_pem));
	}
	o = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o}", "id", i->id, "name",
	    i->name, "key_type", ca_key_type_name(i->key_type), "cert_pem",
	    i->cert_pem, "chains_pem", chains, "roots_pem", roots);
	return o;
}

/* See ca_int.h. */
struct problem *
ca_issuer_sign_problem(const struct ca_issuer *is, const char *what)
{
	char le[256];

	if (is->p11 == NULL)
		return problem_new(PROB_SERVER_INTERNAL, "%s failed", what);
	ca_p11_last_error(ca_p11_key_module(is->p11), le, sizeof(le));
	log_msg(LOG_LEVEL_WARN, NULL, "issuer %s: %s failed: key on token: %s",
	    is->id, what, le[0] ? le : "signature failed");
	return problem_new(PROB_UNAVAILABLE,
	    "%s failed: the issuer key's token is unavailable%s%s", what,
	    le[0] ? ": " : "", le);
}

/* See ca.h. */
int
ca_issuer_sign(const struct ca_issuer *i, const uint8_t *msg, size_t len,
    uint8_t **sig, size_t *siglen)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	size_t n = 0;
	int ret = -1;

	*sig = NULL;
	if (md == NULL ||
	    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, i->key) != 1 ||
	    EVP_DigestSign(md, NULL, &n, msg, len) != 1)
		goto out;
	*sig = xmalloc(n);
	if (EVP_DigestSign(md, *sig, &n, msg, len) != 1) {
		free(*sig);
		*sig = NULL;
		goto out;
	}
	*siglen = n;
	ret = 0;
out:
	EVP_MD_CTX_free(md);
	return ret;
}

int
ca_issuer_in_token(const struct ca_issuer *i)
{
	return i->p11 != NULL;
}
