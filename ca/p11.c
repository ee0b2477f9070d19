/*
 * p11.c - issuer keys in a PKCS#11 token, used through the module's own
 * C_* functions (see p11_int.h for the model, docs/operations-ca.md for
 * why not the OpenSSL engine).
 *
 * The EVP_PKEY wrappers use EC_KEY_METHOD / RSA_METHOD, which OpenSSL 3
 * deprecates but still supports (it is how every engine key works): a key
 * with such a method is "foreign" and OpenSSL signs with it through the
 * legacy path. The deprecation warnings are silenced for this file only.
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <p11-kit/pkcs11.h>

#include "ca/ca_int.h"
#include "ca/p11_int.h"

#define P11_POOL_MAX 32
#define P11_PIN_MAX 256
#define P11_SIG_MAX 1024 /* RSA-8192 */

struct ca_p11 {
	char *module_path;
	char *token;
	char *pin;
	size_t pinlen;
	void *dl;
	CK_FUNCTION_LIST_PTR f;
	EC_KEY_METHOD *ec_meth;
	RSA_METHOD *rsa_meth;
	/* Readers: every use of sessions and handles. Writer: reset. */
	pthread_rwlock_t rw;
	/* Guards what follows (readers change the pool and the state). */
	pthread_mutex_t mu;
	int initialized;    /* C_Initialize succeeded, not finalized */
	int ok;             /* usable; 0 = the next user resets first */
	int pin_bad;        /* the token refused the PIN: never retry */
	uint64_t gen;       /* bumped by every successful reset */
	int64_t last_reset; /* ms, last reset attempt */
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE login; /* keeps the user logged in */
	CK_SESSION_HANDLE pool[P11_POOL_MAX];
	size_t npool;
	char last_err[256];
};

struct ca_p11_key {
	struct ca_p11 *m;
	char *label;
	uint8_t *id;
	size_t idlen;
	char *id_hex;
	pthread_mutex_t mu;
	CK_OBJECT_HANDLE h; /* valid while hgen == m->gen */
	uint64_t hgen;
};

/* ---------------- error names ---------------- */

static const char *
ckr_name(CK_RV rv)
{
	static const struct {
		CK_RV rv;
		const char *name;
	} t[] = {
	    {CKR_OK, "CKR_OK"},
	    {CKR_HOST_MEMORY, "CKR_HOST_MEMORY"},
	    {CKR_SLOT_ID_INVALID, "CKR_SLOT_ID_INVALID"},
	    {CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR"},
	    {CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED"},
	    {CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD"},
	    {CKR_ATTRIBUTE_VALUE_INVALID, "CKR_ATTRIBUTE_VALUE_INVALID"},
	    {CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR"},
	    {CKR_DEVICE_MEMORY, "CKR_DEVICE_MEMORY"},
	    {CKR_DEVICE_REMOVED, "CKR_DEVICE_REMOVED"},
	    {CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID"},
	    {CKR_KEY_TYPE_INCONSISTENT, "CKR_KEY_TYPE_INCONSISTENT"},
	    {CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID"},
	    {CKR_OBJECT_HANDLE_INVALID, "CKR_OBJECT_HANDLE_INVALID"},
	    {CKR_OPERATION_ACTIVE, "CKR_OPERATION_ACTIVE"},
	    {CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT"},
	    {CKR_PIN_LOCKED, "CKR_PIN_LOCKED"},
	    {CKR_SESSION_CLOSED, "CKR_SESSION_CLOSED"},
	    {CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID"},
	    {CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT"},
	    {CKR_TOKEN_NOT_RECOGNIZED, "CKR_TOKEN_NOT_RECOGNIZED"},
	    {CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN"},
	    {CKR_USER_PIN_NOT_INITIALIZED, "CKR_USER_PIN_NOT_INITIALIZED"},
	    {CKR_BUFFER_TOO_SMALL, "CKR_BUFFER_TOO_SMALL"},
	    {CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED"},
	    {CKR_CRYPTOKI_ALREADY_INITIALIZED,
		"CKR_CRYPTOKI_ALREADY_INITIALIZED"},
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (t[i].rv == rv)
			return t[i].name;
	return "CKR_(other)";
}

/* ---------------- state ---------------- */

/* The token failed under generation gen: the next user resets. */
static void
mark_broken(struct ca_p11 *m, uint64_t gen, const char *what, CK_RV rv)
{
	pthread_mutex_lock(&m->mu);
	if (m->gen == gen && m->ok) {
		m->ok = 0;
		snprintf(m->last_err, sizeof(m->last_err),
		    "token \"%s\": %s: %s (0x%lx)", m->token, what,
		    ckr_name(rv), (unsigned long)rv);
		log_msg(LOG_LEVEL_WARN, NULL, "pkcs11: %s; will reconnect",
		    m->last_err);
	}
	pthread_mutex_unlock(&m->mu);
}

static void
set_err(struct ca_p11 *m, const char *fmt, const char *a, CK_RV rv)
{
	pthread_mutex_lock(&m->mu);
	snprintf(m->last_err, sizeof(m->last_err), fmt, a, ckr_name(rv),
	    (unsigned long)rv);
	pthread_mutex_unlock(&m->mu);
}

/* Errors that say the token, session or login is gone (not our input). */
static int
rv_is_token_trouble(CK_RV rv)
{
	switch (rv) {
	case CKR_OK:
	case CKR_ARGUMENTS_BAD:
	case CKR_MECHANISM_INVALID:
	case CKR_KEY_TYPE_INCONSISTENT:
	case CKR_DATA_LEN_RANGE:
	case CKR_BUFFER_TOO_SMALL:
		return 0;
	default:
		return 1;
	}
}

/* Finds the slot whose token is labelled m->token. Writer held. */
static CK_RV
find_slot(struct ca_p11 *m, CK_SLOT_ID *out, char *seen, size_t seenlen)
{
	CK_SLOT_ID *slots = NULL;
	CK_ULONG n = 0, i;
	CK_TOKEN_INFO ti;
	CK_RV rv;
	char label[33];
	size_t k, used = 0;

	seen[0] = '\0';
	if ((rv = m->f->C_GetSlotList(CK_TRUE, NULL, &n)) != CKR_OK)
		return rv;
	slots = xcalloc(n + 1, sizeof(*slots));
	if ((rv = m->f->C_GetSlotList(CK_TRUE, slots, &n)) != CKR_OK)
		goto out;
	rv = CKR_TOKEN_NOT_PRESENT;
	for (i = 0; i < n; i++) {
		if (m->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		memcpy(label, ti.label, 32);
		label[32] = '\0';
		for (k = 32; k > 0 && label[k - 1] == ' '; k--)
			label[k - 1] = '\0';
		if (!(ti.flags & CKF_TOKEN_INITIALIZED))
			continue;
		if (strcmp(label, m->token) == 0) {
			*out = slots[i];
			rv = CKR_OK;
			break;
		}
		if (used + strlen(label) + 4 < seenlen)
			used += (size_t)snprintf(seen + used, seenlen - used,
			    "%s\"%s\"", used ? ", " : "", label);
	}
out:
	free(slots);
	return rv;
}

static void
close_sessions(struct ca_p11 *m)
{
	size_t i;

	for (i = 0; i < m->npool; i++)
		(void)m->f->C_CloseSession(m->pool[i]);
	m->npool = 0;
	if (m->login != CK_INVALID_HANDLE) {
		(void)m->f->C_Logout(m->login);
		(void)m->f->C_CloseSession(m->login);
		m->login = CK_INVALID_HANDLE;
	}
}

/*
 * (Re)initializes the module, finds the token and logs in. The writer
 * lock is held (or m is not shared yet). force skips the rate limit. 0 or
 * -1 with m->last_err set.
 */
static int
reset(struct ca_p11 *m, int force)
{
	CK_C_INITIALIZE_ARGS args;
	CK_RV rv;
	char seen[200];
	int64_t now = time_now_ms();

	pthread_mutex_lock(&m->mu);
	if (m->ok) {
		pthread_mutex_unlock(&m->mu);
		return 0; /* another thread reset it meanwhile */
	}
	if (m->pin_bad || (!force && now - m->last_reset < CA_P11_RESET_MS)) {
		pthread_mutex_unlock(&m->mu);
		return -1;
	}
	m->last_reset = now;
	pthread_mutex_unlock(&m->mu);

	if (m->initialized) {
		close_sessions(m);
		(void)m->f->C_Finalize(NULL);
		m->initialized = 0;
	}
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	rv = m->f->C_Initialize(&args);
	if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		set_err(m,
		    "module %s: already initialized in this process (%s, "
		    "0x%lx): one issuers file per module",
		    m->module_path, rv);
		return -1;
	}
	if (rv != CKR_OK) {
		set_err(m, "module %s: C_Initialize: %s (0x%lx)",
		    m->module_path, rv);
		return -1;
	}
	m->initialized = 1;
	if ((rv = find_slot(m, &m->slot, seen, sizeof(seen))) != CKR_OK) {
		pthread_mutex_lock(&m->mu);
		if (rv == CKR_TOKEN_NOT_PRESENT)
			snprintf(m->last_err, sizeof(m->last_err),
			    "token \"%s\" not present in %s (tokens seen: "
			    "%s)",
			    m->token, m->module_path, seen[0] ? seen : "none");
		else
			snprintf(m->last_err, sizeof(m->last_err),
			    "module %s: C_GetSlotList: %s (0x%lx)",
			    m->module_path, ckr_name(rv), (unsigned long)rv);
		pthread_mutex_unlock(&m->mu);
		return -1;
	}
	rv = m->f->C_OpenSession(m->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
	    NULL, NULL, &m->login);
	if (rv != CKR_OK) {
		m->login = CK_INVALID_HANDLE;
		set_err(
		    m, "token \"%s\": C_OpenSession: %s (0x%lx)", m->token, rv);
		return -1;
	}
	rv = m->f->C_Login(
	    m->login, CKU_USER, (CK_UTF8CHAR_PTR)m->pin, (CK_ULONG)m->pinlen);
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
		pthread_mutex_lock(&m->mu);
		/* Never guess again: a real HSM locks the PIN after a few
		 * failures. */
		if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED ||
		    rv == CKR_PIN_EXPIRED || rv == CKR_PIN_INVALID ||
		    rv == CKR_PIN_LEN_RANGE)
			m->pin_bad = 1;
		snprintf(m->last_err, sizeof(m->last_err),
		    "token \"%s\": C_Login: %s (0x%lx)%s", m->token,
		    ckr_name(rv), (unsigned long)rv,
		    m->pin_bad ? ": PIN rejected, not retrying" : "");
		pthread_mutex_unlock(&m->mu);
		return -1;
	}
	pthread_mutex_lock(&m->mu);
	m->ok = 1;
	m->gen++;
	m->last_err[0] = '\0';
	pthread_mutex_unlock(&m->mu);
	return 0;
}

/*
 * A session of the current generation; the reader lock is held on
 * success (release with put_session). Resets a broken module once. 0 or
 * -1.
 */
static int
get_session(struct ca_p11 *m, CK_SESSION_HANDLE *s, uint64_t *gen)
{
	int tried = 0, ok;
	CK_RV rv;

	for (;;) {
		pthread_rwlock_rdlock(&m->rw);
		pthread_mutex_lock(&m->mu);
		ok = m->ok;
		*gen = m->gen;
		*s = CK_INVALID_HANDLE;
		if (ok && m->npool > 0)
			*s = m->pool[--m->npool];
		pthread_mutex_unlock(&m->mu);
		if (ok) {
			if (*s != CK_INVALID_HANDLE)
				return 0;
			rv = m->f->C_OpenSession(
			    m->slot, CKF_SERIAL_SESSION, NULL, NULL, s);
			if (rv == CKR_OK)
				return 0;
			mark_broken(m, *gen, "C_OpenSession", rv);
		}
		pthread_rwlock_unlock(&m->rw);
		if (tried)
			return -1;
		tried = 1;
		pthread_rwlock_wrlock(&m->rw);
		(void)reset(m, 0);
		pthread_rwlock_unlock(&m->rw);
	}
}

/* Returns s to the pool (keep) or closes it; drops the reader lock. */
static void
put_session(struct ca_p11 *m, CK_SESSION_HANDLE s, uint64_t gen, int keep)
{
	pthread_mutex_lock(&m->mu);
	if (keep && m->ok && m->gen == gen && m->npool < P11_POOL_MAX) {
		m->pool[m->npool++] = s;
		s = CK_INVALID_HANDLE;
	}
	pthread_mutex_unlock(&m->mu);
	if (s != CK_INVALID_HANDLE)
		(void)m->f->C_CloseSession(s);
	pthread_rwlock_unlock(&m->rw);
}

/* Up to max handles of objects matching tmpl. */
static CK_RV
find_objects(struct ca_p11 *m, CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl,
    CK_ULONG n, CK_OBJECT_HANDLE *out, CK_ULONG max, CK_ULONG *found)
{
	CK_RV rv, rv2;

	*found = 0;
	if ((rv = m->f->C_FindObjectsInit(s, tmpl, n)) != CKR_OK)
		return rv;
	rv = m->f->C_FindObjects(s, out, max, found);
	rv2 = m->f->C_FindObjectsFinal(s);
	return rv != CKR_OK ? rv : rv2;
}

/* ---------------- module ---------------- */

static int
read_pin(const struct ca_p11_conf *c, char **pin, size_t *len, char *err,
    size_t errlen)
{
	const char *v;

	*pin = NULL;
	if ((c->pin_file == NULL) == (c->pin_env == NULL)) {
		snprintf(err, errlen,
		    "exactly one of pin_file and pin_env is "
		    "required");
		return -1;
	}
	if (c->pin_file != NULL) {
		if (file_check_secret_mode(c->pin_file, err, errlen) != 0 ||
		    file_read_all(
			c->pin_file, P11_PIN_MAX, pin, len, err, errlen) != 0)
			return -1;
		while (*len > 0 &&
		    ((*pin)[*len - 1] == '\n' || (*pin)[*len - 1] == '\r'))
			(*pin)[--*len] = '\0';
	} else {
		v = getenv(c->pin_env);
		if (v == NULL || v[0] == '\0') {
			snprintf(err, errlen,
			    "pin_env: environment variable %s is not set",
			    c->pin_env);
			return -1;
		}
		*pin = xstrdup(v);
		*len = strlen(v);
	}
	if (*len == 0) {
		snprintf(err, errlen, "%s: empty PIN",
		    c->pin_file ? c->pin_file : c->pin_env);
		free(*pin);
		*pin = NULL;
		return -1;
	}
	return 0;
}

static int ec_sign(int type, const unsigned char *dgst, int dlen,
    unsigned char *sig, unsigned int *siglen, const BIGNUM *kinv,
    const BIGNUM *r, EC_KEY *ec);
static ECDSA_SIG *ec_sign_sig(const unsigned char *dgst, int dlen,
    const BIGNUM *kinv, const BIGNUM *r, EC_KEY *ec);
static int rsa_priv_enc(
    int flen, const unsigned char *from, unsigned char *to, RSA *rsa, int pad);
static int rsa_priv_dec(
    int flen, const unsigned char *from, unsigned char *to, RSA *rsa, int pad);

/* See p11_int.h. */
struct ca_p11 *
ca_p11_open(const struct ca_p11_conf *c, char *err, size_t errlen)
{
	struct ca_p11 *m = NULL;
	CK_C_GetFunctionList getfl;
	int ok = 0;

	if (c->module == NULL || c->token == NULL) {
		snprintf(err, errlen, "module and token are required");
		return NULL;
	}
	m = xcalloc(1, sizeof(*m));
	xrwlock_init(&m->rw);
	xmutex_init(&m->mu);
	m->login = CK_INVALID_HANDLE;
	m->module_path = xstrdup(c->module);
	m->token = xstrdup(c->token);
	if (read_pin(c, &m->pin, &m->pinlen, err, errlen) != 0)
		goto out;
	m->dl = dlopen(c->module, RTLD_NOW | RTLD_LOCAL);
	if (m->dl == NULL) {
		snprintf(err, errlen, "module %s: cannot load: %s", c->module,
		    dlerror());
		goto out;
	}
	*(void **)&getfl = dlsym(m->dl, "C_GetFunctionList");
	if (getfl == NULL || getfl(&m->f) != CKR_OK || m->f == NULL) {
		snprintf(
		    err, errlen, "module %s: no C_GetFunctionList", c->module);
		m->f = NULL;
		goto out;
	}
	if ((m->ec_meth = EC_KEY_METHOD_new(EC_KEY_OpenSSL())) == NULL ||
	    (m->rsa_meth = RSA_meth_dup(RSA_PKCS1_OpenSSL())) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	EC_KEY_METHOD_set_sign(m->ec_meth, ec_sign, NULL, ec_sign_sig);
	if (RSA_meth_set1_name(m->rsa_meth, "anvil-pkcs11") != 1 ||
	    RSA_meth_set_priv_enc(m->rsa_meth, rsa_priv_enc) != 1 ||
	    RSA_meth_set_priv_dec(m->rsa_meth, rsa_priv_dec) != 1) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (reset(m, 1) != 0) {
		snprintf(err, errlen, "%s", m->last_err);
		goto out;
	}
	ok = 1;
out:
	if (!ok) {
		ca_p11_free(m);
		m = NULL;
	}
	return m;
}

/* See p11_int.h. */
void
ca_p11_free(struct ca_p11 *m)
{
	if (m == NULL)
		return;
	if (m->f != NULL && m->initialized) {
		close_sessions(m);
		(void)m->f->C_Finalize(NULL);
	}
	if (m->dl != NULL)
		dlclose(m->dl);
	if (m->ec_meth != NULL) /* not NULL-safe in OpenSSL 3.0 */
		EC_KEY_METHOD_free(m->ec_meth);
	if (m->rsa_meth != NULL)
		RSA_meth_free(m->rsa_meth);
	if (m->pin != NULL) {
		OPENSSL_cleanse(m->pin, m->pinlen);
		free(m->pin);
	}
	free(m->module_path);
	free(m->token);
	pthread_rwlock_destroy(&m->rw);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

const char *
ca_p11_module_path(const struct ca_p11 *m)
{
	return m->module_path;
}

const char *
ca_p11_token(const struct ca_p11 *m)
{
	return m->token;
}

void
ca_p11_last_error(struct ca_p11 *m, char *buf, size_t len)
{
	pthread_mutex_lock(&m->mu);
	snprintf(buf, len, "%s", m->last_err);
	pthread_mutex_unlock(&m->mu);
}

/* ---------------- keys ---------------- */

/*
 * The key's handle in generation gen, looked up with session s when the
 * cached one is older. CKR_OK, CKR_KEY_HANDLE_INVALID when the key is not
 * (exactly once) on the token, or the module's error.
 */
static CK_RV
key_handle(struct ca_p11_key *k, CK_SESSION_HANDLE s, uint64_t gen,
    CK_OBJECT_HANDLE *h)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE t[3] = {
	    {CKA_CLASS, &cls, sizeof(cls)},
	    {CKA_LABEL, k->label, strlen(k->label)},
	    {CKA_ID, k->id, k->idlen},
	};
	CK_OBJECT_HANDLE found[2];
	CK_ULONG n;
	CK_RV rv = CKR_OK;

	pthread_mutex_lock(&k->mu);
	if (k->hgen != gen) {
		rv = find_objects(
		    k->m, s, t, k->id != NULL ? 3 : 2, found, 2, &n);
		if (rv == CKR_OK && n != 1)
			rv = CKR_KEY_HANDLE_INVALID;
		if (rv == CKR_OK) {
			k->h = found[0];
			k->hgen = gen;
		}
	}
	*h = k->h;
	pthread_mutex_unlock(&k->mu);
	return rv;
}

/* See p11_int.h. */
struct ca_p11_key *
ca_p11_key_find(struct ca_p11 *m, const char *label, const uint8_t *id,
    size_t idlen, char *err, size_t errlen)
{
	struct ca_p11_key *k = xcalloc(1, sizeof(*k));
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE h;
	uint64_t gen;
	CK_RV rv;

	k->m = m;
	k->label = xstrdup(label);
	xmutex_init(&k->mu);
	if (id != NULL && idlen > 0) {
		k->id = xcalloc(1, idlen);
		memcpy(k->id, id, idlen);
		k->idlen = idlen;
		k->id_hex = hex_encode(id, idlen);
	} else
		k->id_hex = xstrdup("");
	if (get_session(m, &s, &gen) != 0) {
		ca_p11_last_error(m, err, errlen);
		goto fail;
	}
	rv = key_handle(k, s, gen, &h);
	put_session(m, s, gen, rv == CKR_OK);
	if (rv == CKR_KEY_HANDLE_INVALID) {
		snprintf(err, errlen,
		    "token \"%s\": no single private key labelled \"%s\"%s%s",
		    m->token, label, k->idlen ? " with id " : "", k->id_hex);
		goto fail;
	}
	if (rv != CKR_OK) {
		snprintf(err, errlen, "token \"%s\": C_FindObjects: %s",
		    m->token, ckr_name(rv));
		goto fail;
	}
	return k;
fail:
	ca_p11_key_free(k);
	return NULL;
}

void
ca_p11_key_free(struct ca_p11_key *k)
{
	if (k == NULL)
		return;
	free(k->label);
	free(k->id);
	free(k->id_hex);
	pthread_mutex_destroy(&k->mu);
	free(k);
}

struct ca_p11 *
ca_p11_key_module(const struct ca_p11_key *k)
{
	return k->m;
}

const char *
ca_p11_key_id_hex(const struct ca_p11_key *k)
{
	return k->id_hex;
}

/*
 * Signs in with k's token: mech over in. *outlen is the room in out on
 * entry and the signature length on return. A token failure marks the
 * module broken and, once, resets it and tries again. 0 or -1.
 */
static int
p11_sign(struct ca_p11_key *k, CK_MECHANISM_TYPE mtype, const uint8_t *in,
    size_t inlen, uint8_t *out, size_t *outlen)
{
	struct ca_p11 *m = k->m;
	CK_MECHANISM mech = {mtype, NULL, 0};
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE h;
	CK_ULONG n;
	uint64_t gen;
	CK_RV rv;
	int attempt;
	const char *what;

	for (attempt = 0; attempt < 2; attempt++) {
		if (get_session(m, &s, &gen) != 0)
			return -1;
		what = "C_FindObjects";
		rv = key_handle(k, s, gen, &h);
		if (rv == CKR_OK) {
			what = "C_SignInit";
			rv = m->f->C_SignInit(s, &mech, h);
		}
		if (rv == CKR_OK) {
			what = "C_Sign";
			n = (CK_ULONG)*outlen;
			rv = m->f->C_Sign(
			    s, (CK_BYTE_PTR)in, (CK_ULONG)inlen, out, &n);
		}
		if (rv == CKR_OK) {
			put_session(m, s, gen, 1);
			*outlen = (size_t)n;
			return 0;
		}
		if (!rv_is_token_trouble(rv)) {
			/* Our request was wrong; the session may hold a
			 * half-started operation: close it. */
			set_err(m, "token \"%s\": signing: %s (0x%lx)",
			    m->token, rv);
			put_session(m, s, gen, 0);
			return -1;
		}
		mark_broken(m, gen, what, rv);
		put_session(m, s, gen, 0);
	}
	return -1;
}

/* ---------------- EVP_PKEY glue ---------------- */

/* The key behind an EC_KEY / RSA made by ca_p11_key_pkey (app data). */
static ECDSA_SIG *
ec_sign_sig(const unsigned char *dgst, int dlen, const BIGNUM *kinv,
    const BIGNUM *r, EC_KEY *ec)
{
	struct ca_p11_key *k = EC_KEY_get_ex_data(ec, 0);
	uint8_t buf[256];
	size_t len = sizeof(buf), half;
	BIGNUM *br = NULL, *bs = NULL;
	ECDSA_SIG *sig = NULL;

	(void)kinv;
	(void)r;
	if (k == NULL || dlen <= 0 ||
	    p11_sign(k, CKM_ECDSA, dgst, (size_t)dlen, buf, &len) != 0)
		return NULL;
	if (len == 0 || len % 2 != 0)
		return NULL;
	half = len / 2;
	br = BN_bin2bn(buf, (int)half, NULL);
	bs = BN_bin2bn(buf + half, (int)half, NULL);
	if (br == NULL || bs == NULL || (sig = ECDSA_SIG_new()) == NULL ||
	    ECDSA_SIG_set0(sig, br, bs) != 1) {
		BN_free(br);
		BN_free(bs);
		ECDSA_SIG_free(sig);
		return NULL;
	}
	return sig;
}

static int
ec_sign(int type, const unsigned char *dgst, int dlen, unsigned char *sig,
    unsigned int *siglen, const BIGNUM *kinv, const BIGNUM *r, EC_KEY *ec)
{
	ECDSA_SIG *s = ec_sign_sig(dgst, dlen, kinv, r, ec);
	unsigned char *p = sig;
	int n;

	(void)type;
	if (s == NULL)
		return 0;
	n = i2d_ECDSA_SIG(s, &p);
	ECDSA_SIG_free(s);
	if (n <= 0)
		return 0;
	*siglen = (unsigned int)n;
	return 1;
}

static int
rsa_priv_enc(
    int flen, const unsigned char *from, unsigned char *to, RSA *rsa, int pad)
{
	struct ca_p11_key *k = RSA_get_ex_data(rsa, 0);
	size_t len = (size_t)RSA_size(rsa);

	/* PKCS#1 v1.5 over a DigestInfo: what RSA_sign hands over. */
	if (k == NULL || pad != RSA_PKCS1_PADDING || flen <= 0)
		return -1;
	if (p11_sign(k, CKM_RSA_PKCS, from, (size_t)flen, to, &len) != 0)
		return -1;
	return (int)len;
}

static int
rsa_priv_dec(
    int flen, const unsigned char *from, unsigned char *to, RSA *rsa, int pad)
{
	/* Issuer keys only sign. */
	(void)flen;
	(void)from;
	(void)to;
	(void)rsa;
	(void)pad;
	return -1;
}

/* See p11_int.h. */
EVP_PKEY *
ca_p11_key_pkey(struct ca_p11_key *k, EVP_PKEY *pub, char *err, size_t errlen)
{
	EVP_PKEY *pk = NULL;
	EVP_MD_CTX *md = NULL;
	EC_KEY *ec = NULL;
	RSA *rsa = NULL;
	const BIGNUM *n, *e;
	uint8_t msg[32], sig[P11_SIG_MAX];
	size_t siglen = sizeof(sig);
	int ok = 0;

	if ((pk = EVP_PKEY_new()) == NULL)
		goto oom;
	if (EVP_PKEY_get_base_id(pub) == EVP_PKEY_EC) {
		const EC_KEY *src = EVP_PKEY_get0_EC_KEY(pub);
		if (src == NULL || (ec = EC_KEY_new()) == NULL ||
		    EC_KEY_set_method(ec, k->m->ec_meth) != 1 ||
		    EC_KEY_set_group(ec, EC_KEY_get0_group(src)) != 1 ||
		    EC_KEY_set_public_key(ec, EC_KEY_get0_public_key(src)) !=
			1 ||
		    EC_KEY_set_ex_data(ec, 0, k) != 1 ||
		    EVP_PKEY_assign_EC_KEY(pk, ec) != 1)
			goto oom;
		ec = NULL;
	} else if (EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA) {
		const RSA *src = EVP_PKEY_get0_RSA(pub);
		BIGNUM *n2 = NULL, *e2 = NULL;
		if (src == NULL || (rsa = RSA_new()) == NULL ||
		    RSA_set_method(rsa, k->m->rsa_meth) != 1)
			goto oom;
		RSA_get0_key(src, &n, &e, NULL);
		if ((n2 = BN_dup(n)) == NULL || (e2 = BN_dup(e)) == NULL ||
		    RSA_set0_key(rsa, n2, e2, NULL) != 1) {
			BN_free(n2);
			BN_free(e2);
			goto oom;
		}
		if (RSA_set_ex_data(rsa, 0, k) != 1 ||
		    EVP_PKEY_assign_RSA(pk, rsa) != 1)
			goto oom;
		rsa = NULL;
	} else {
		snprintf(err, errlen, "unsupported public key type");
		goto out;
	}
	/* Proof that the token's key is the private half of pub. */
	random_bytes(msg, sizeof(msg));
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pk) != 1 ||
	    EVP_DigestSign(md, sig, &siglen, msg, sizeof(msg)) != 1) {
		char le[256];
		ca_p11_last_error(k->m, le, sizeof(le));
		snprintf(err, errlen,
		    "token \"%s\" key \"%s\": test signature failed%s%s",
		    k->m->token, k->label, le[0] ? ": " : "", le);
		goto out;
	}
	EVP_MD_CTX_free(md);
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub) != 1 ||
	    EVP_DigestVerify(md, sig, siglen, msg, sizeof(msg)) != 1) {
		snprintf(err, errlen,
		    "token \"%s\" key \"%s\" does not match the "
		    "certificate's public key",
		    k->m->token, k->label);
		goto out;
	}
	ok = 1;
	goto out;
oom:
	snprintf(err, errlen, "cannot build the key object");
out:
	ERR_clear_error();
	EVP_MD_CTX_free(md);
	EC_KEY_free(ec);
	RSA_free(rsa);
	if (!ok) {
		EVP_PKEY_free(pk);
		pk = NULL;
	}
	return pk;
}

/* ---------------- generation ---------------- */

/* See p11_int.h. */
int
ca_p11_label_exists(
    struct ca_p11 *m, const char *label, char *err, size_t errlen)
{
	CK_ATTRIBUTE t[1] = {{CKA_LABEL, (void *)label, strlen(label)}};
	CK_OBJECT_HANDLE h[1];
	CK_SESSION_HANDLE s;
	CK_ULONG n;
	uint64_t gen;
	CK_RV rv;

	if (get_session(m, &s, &gen) != 0) {
		ca_p11_last_error(m, err, errlen);
		return -1;
	}
	rv = find_objects(m, s, t, 1, h, 1, &n);
	put_session(m, s, gen, rv == CKR_OK);
	if (rv != CKR_OK) {
		snprintf(err, errlen, "token \"%s\": C_FindObjects: %s",
		    m->token, ckr_name(rv));
		return -1;
	}
	return n > 0 ? 1 : 0;
}

/* Reads one attribute (malloc'd). CKR_OK or the error. */
static CK_RV
get_attr(struct ca_p11 *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
    CK_ATTRIBUTE_TYPE type, uint8_t **out, size_t *len)
{
	CK_ATTRIBUTE a = {type, NULL, 0};
	CK_RV rv;

	*out = NULL;
	if ((rv = m->f->C_GetAttributeValue(s, h, &a, 1)) != CKR_OK)
		return rv;
	if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > 65536)
		return CKR_ATTRIBUTE_VALUE_INVALID;
	a.pValue = xcalloc(1, a.ulValueLen + 1);
	if ((rv = m->f->C_GetAttributeValue(s, h, &a, 1)) != CKR_OK) {
		free(a.pValue);
		return rv;
	}
	*out = a.pValue;
	*len = a.ulValueLen;
	return CKR_OK;
}

/* The public key object h as an EVP_PKEY; NULL on error. */
static EVP_PKEY *
read_public(struct ca_p11 *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
    enum ca_key_type kt, int nid)
{
	uint8_t *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;
	const unsigned char *p;
	ASN1_OCTET_STRING *os = NULL;
	EC_KEY *ec = NULL;
	RSA *rsa = NULL;
	BIGNUM *bn = NULL, *be = NULL;
	EVP_PKEY *pk = NULL;

	if ((pk = EVP_PKEY_new()) == NULL)
		goto fail;
	if (kt == CA_KEY_ECDSA) {
		if (get_attr(m, s, h, CKA_EC_POINT, &a, &alen) != CKR_OK)
			goto fail;
		if ((ec = EC_KEY_new_by_curve_name(nid)) == NULL)
			goto fail;
		/* DER OCTET STRING per the standard; some modules send the
		 * bare point. */
		p = a;
		if (alen > 2 && a[0] == 0x04 &&
		    (os = d2i_ASN1_OCTET_STRING(NULL, &p, (long)alen)) !=
			NULL) {
			p = ASN1_STRING_get0_data(os);
			if (o2i_ECPublicKey(&ec, &p, ASN1_STRING_length(os)) ==
			    NULL)
				goto fail;
		} else {
			p = a;
			if (o2i_ECPublicKey(&ec, &p, (long)alen) == NULL)
				goto fail;
		}
		if (EVP_PKEY_assign_EC_KEY(pk, ec) != 1)
			goto fail;
		ec = NULL;
	} else {
		if (get_attr(m, s, h, CKA_MODULUS, &a, &alen) != CKR_OK ||
		    get_attr(m, s, h, CKA_PUBLIC_EXPONENT, &b, &blen) != CKR_OK)
			goto fail;
		if ((rsa = RSA_new()) == NULL ||
		    (bn = BN_bin2bn(a, (int)alen, NULL)) == NULL ||
		    (be = BN_bin2bn(b, (int)blen, NULL)) == NULL ||
		    RSA_set0_key(rsa, bn, be, NULL) != 1)
			goto fail;
		bn = be = NULL;
		if (EVP_PKEY_assign_RSA(pk, rsa) != 1)
			goto fail;
		rsa = NULL;
	}
	ASN1_OCTET_STRING_free(os);
	free(a);
	free(b);
	return pk;
fail:
	ASN1_OCTET_STRING_free(os);
	EC_KEY_free(ec);
	RSA_free(rsa);
	BN_free(bn);
	BN_free(be);
	EVP_PKEY_free(pk);
	free(a);
	free(b);
	return NULL;
}

/* See p11_int.h. */
int
ca_p11_generate(struct ca_p11 *m, enum ca_key_type kt, int bits,
    const char *label, const uint8_t *id, size_t idlen, EVP_PKEY **pub,
    char *err, size_t errlen)
{
	static const uint8_t p256[] = {
	    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
	static const uint8_t p384[] = {
	    0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
	static const uint8_t f4[] = {0x01, 0x00, 0x01};
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ULONG modbits = (CK_ULONG)bits;
	CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_ATTRIBUTE pubt[6], privt[8];
	CK_ULONG npub = 0, npriv = 0;
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	CK_OBJECT_HANDLE hpub, hpriv;
	uint64_t gen;
	CK_RV rv;
	int nid = bits == 384 ? NID_secp384r1 : NID_X9_62_prime256v1, r;

	*pub = NULL;
	if ((r = ca_p11_label_exists(m, label, err, errlen)) != 0) {
		if (r > 0)
			snprintf(err, errlen,
			    "token \"%s\" already holds a key labelled \"%s\": "
			    "refusing to overwrite",
			    m->token, label);
		return -1;
	}
#define ATTR(arr, cnt, t, p, l)                                                \
	do {                                                                   \
		arr[cnt].type = (t);                                           \
		arr[cnt].pValue = (void *)(p);                                 \
		arr[cnt].ulValueLen = (l);                                     \
		cnt++;                                                         \
	} while (0)
	ATTR(pubt, npub, CKA_TOKEN, &yes, sizeof(yes));
	ATTR(pubt, npub, CKA_VERIFY, &yes, sizeof(yes));
	ATTR(pubt, npub, CKA_LABEL, label, strlen(label));
	ATTR(pubt, npub, CKA_ID, id, idlen);
	if (kt == CA_KEY_ECDSA) {
		if (bits == 384)
			ATTR(pubt, npub, CKA_EC_PARAMS, p384, sizeof(p384));
		else
			ATTR(pubt, npub, CKA_EC_PARAMS, p256, sizeof(p256));
	} else {
		mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
		ATTR(pubt, npub, CKA_MODULUS_BITS, &modbits, sizeof(modbits));
		ATTR(pubt, npub, CKA_PUBLIC_EXPONENT, f4, sizeof(f4));
	}
	ATTR(privt, npriv, CKA_TOKEN, &yes, sizeof(yes));
	ATTR(privt, npriv, CKA_PRIVATE, &yes, sizeof(yes));
	ATTR(privt, npriv, CKA_SENSITIVE, &yes, sizeof(yes));
	ATTR(privt, npriv, CKA_EXTRACTABLE, &no, sizeof(no));
	ATTR(privt, npriv, CKA_SIGN, &yes, sizeof(yes));
	ATTR(privt, npriv, CKA_DECRYPT, &no, sizeof(no));
	ATTR(privt, npriv, CKA_LABEL, label, strlen(label));
	ATTR(privt, npriv, CKA_ID, id, idlen);
#undef ATTR
	if (get_session(m, &s, &gen) != 0) {
		ca_p11_last_error(m, err, errlen);
		return -1;
	}
	/* Key generation needs a read-write session. */
	put_session(m, s, gen, 1);
	s = CK_INVALID_HANDLE;
	pthread_rwlock_rdlock(&m->rw);
	rv = m->f->C_OpenSession(
	    m->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
	if (rv != CKR_OK)
		s = CK_INVALID_HANDLE;
	else
		rv = m->f->C_GenerateKeyPair(
		    s, &mech, pubt, npub, privt, npriv, &hpub, &hpriv);
	if (rv == CKR_OK && (*pub = read_public(m, s, hpub, kt, nid)) == NULL)
		rv = CKR_FUNCTION_FAILED;
	if (s != CK_INVALID_HANDLE)
		(void)m->f->C_CloseSession(s);
	pthread_rwlock_unlock(&m->rw);
	if (rv != CKR_OK) {
		snprintf(err, errlen,
		    "token \"%s\": generating \"%s\": %s (0x%lx)", m->token,
		    label, ckr_name(rv), (unsigned long)rv);
		return -1;
	}
	return 0;
}
