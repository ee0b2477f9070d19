/*
 * cmd_setup.c - `anvil-admin setup`: a whole production config set in one
 * step from a few answers, and `anvil-admin setup --check` (also spelled
 * `anvil-admin check-config`) validating such a set before anything
 * starts. docs/operations.md section 1 is the operator's view.
 *
 * The set (all in --out, default /etc/anvil): sa.json ca.json va.json
 * ra.json wfe.json admin.json profiles.json anvil.json (the launcher, for
 * hosts without systemd) and sa.dsn (the database DSN, mode 0600). Keys are
 * never generated here: the issuer ceremony is `anvil-admin ca init`, the
 * WFE's HTTPS certificate comes from the operator.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd/anvil-admin/admin.h"

#define SETUP_DIR_DEFAULT "/etc/anvil"
#define SETUP_RUN_DEFAULT "/run/anvil"
#define SETUP_LOG_DEFAULT "/var/log/anvil"
#define SETUP_GROUP "anvil"
/*
 * The host name of the packaged default set (RFC 2606 reserves .invalid):
 * setup replaces such a set without --force, and --check refuses it.
 */
#define SETUP_PLACEHOLDER_HOST "acme.invalid"

enum setup_svc { SVC_SA, SVC_CA, SVC_VA, SVC_RA, SVC_WFE, SVC__MAX };

/*
 * The services in start order and the Unix user each runs as when no
 * installed unit says otherwise (User= of the units wins; --user makes all
 * one user, as under the launcher). Debug port = --debug-port-base + 1 +
 * index.
 */
static const struct {
	const char *name;
	const char *user;
} svc_table[SVC__MAX] = {
    {"sa", "anvil-sa"},
    {"ca", "anvil-ca"},
    {"va", "anvil-va"},
    {"ra", "anvil-ra"},
    {"wfe", "anvil-wfe"},
};

struct setup_opts {
	const char *host;
	const char *db;
	const char *keys;
	const char *out;
	const char *root; /* write under root + out (package builds) */
	const char *run_dir;
	const char *log_dir;
	const char *schema_dir;
	const char *tls_cert;
	const char *tls_key;
	const char *listen_addr;
	const char *user;     /* every service as this one user (launcher) */
	const char *unit_dir; /* where the systemd units are (User= lines) */
	char *unit_user[SVC__MAX]; /* owned: User= of each unit, or NULL */
	const char *log_format;
	long port;
	long pki_port; /* the WFE's plain-HTTP OCSP/CRL/issuer listener */
	long debug_base;
	json_t *admins;    /* owned: identities allowed to use the admin tool */
	json_t *suffixes;  /* owned: private-mode DNS suffixes */
	json_t *networks;  /* owned: private-mode CIDRs (RA and VA) */
	json_t *resolvers; /* owned: VA DNS resolvers */
	char *bin_dir;     /* owned */
	char *schema_buf;  /* owned: a default of setup_defaults, or NULL */
	char *cert_buf;    /* owned: likewise */
	char *key_buf;     /* owned: likewise */
	int force;
};

/* The directory holding this executable. Caller frees. */
static char *
self_dir(const char *argv0)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n > 0)
		self[n] = '\0';
	else
		snprintf(self, sizeof(self), "%s", argv0);
	return xstrdup(dirname(self));
}

/* Sets key of obj to a formatted string. */
static void set_fmt(json_t *obj, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void
set_fmt(json_t *obj, const char *key, const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	json_object_set_new(obj, key, json_string(s));
	free(s);
}

static const char *
svc_user(const struct setup_opts *o, enum setup_svc s)
{
	if (o->user != NULL)
		return o->user;
	return o->unit_user[s] != NULL ? o->unit_user[s] : svc_table[s].user;
}

/*
 * The User= of dir/anvil-<svc>.service, or NULL. Caller frees. The RPC
 * identity of a service on a Unix socket is the user its unit runs it as,
 * so the caller lists are built from the units actually installed.
 */
static char *
unit_user_of(const char *dir, const char *svc)
{
	char *path = xasprintf("%s/anvil-%s.service", dir, svc);
	char line[512], *user = NULL;
	FILE *f = fopen(path, "r");

	free(path);
	if (f == NULL)
		return NULL;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "User=", 5) == 0) {
			line[strcspn(line, "\r\n")] = '\0';
			free(user);
			user = xstrdup(line + 5);
		}
	}
	fclose(f);
	return user;
}

/*
 * The directory of the units: the first of BINDIR/../lib/systemd/system,
 * BINDIR/../../lib/systemd/system (/usr/bin with /lib), /etc/systemd/system,
 * /lib/systemd/system, /usr/lib/systemd/system that holds
 * anvil-sa.service. NULL if none. Caller frees.
 */
static char *
find_unit_dir(const char *bin_dir)
{
	char *cand[5];
	char *found = NULL;
	size_t k;

	cand[0] = xasprintf("%s/../lib/systemd/system", bin_dir);
	cand[1] = xasprintf("%s/../../lib/systemd/system", bin_dir);
	cand[2] = xstrdup("/etc/systemd/system");
	cand[3] = xstrdup("/lib/systemd/system");
	cand[4] = xstrdup("/usr/lib/systemd/system");
	for (k = 0; k < 5; k++) {
		char *p = xasprintf("%s/anvil-sa.service", cand[k]);

		if (found == NULL && access(p, R_OK) == 0) {
			found = cand[k];
			cand[k] = NULL;
		}
		free(p);
		free(cand[k]);
	}
	return found;
}

/* A list of the users of the given services plus the admins. New ref. */
static json_t *
who(const struct setup_opts *o, int with_admins, int n, ...)
{
	json_t *a = json_array(), *v;
	va_list ap;
	size_t i;

	va_start(ap, n);
	while (n-- > 0)
		admin_add_unique(
		    a, svc_user(o, (enum setup_svc)va_arg(ap, int)));
	va_end(ap);
	if (with_admins)
		json_array_foreach(o->admins, i, v)
		    admin_add_unique(a, json_string_value(v));
	return a;
}

static char *
sock(const struct setup_opts *o, enum setup_svc s)
{
	return xasprintf("unix:%s/%s.sock", o->run_dir, svc_table[s].name);
}

/* An RPC client object for a peer. New reference. */
static json_t *
client(const struct setup_opts *o, enum setup_svc s, const char *timeout,
    int conns)
{
	char *t = sock(o, s);
	json_t *j = json_pack("{s:s, s:s, s:i}", "target", t, "timeout",
	    timeout, "connections", conns);

	free(t);
	return j;
}

/*
 * The RPC server object of service s. Who may call what is the registry's
 * (rpc/methods.def): the config only names the identity of each caller
 * class, the same on every server (docs/rpc.md, "Authorization").
 */
static json_t *
server(const struct setup_opts *o, enum setup_svc s, int workers)
{
	char *l = sock(o, s);
	json_t *callers = json_pack("{s:o, s:o, s:o, s:o}", "wfe",
	    who(o, 0, 1, SVC_WFE), "ra", who(o, 0, 1, SVC_RA), "ca",
	    who(o, 0, 1, SVC_CA), "admin", who(o, 1, 0));
	json_t *j = json_pack("{s:s, s:i, s:s, s:o}", "listen", l, "workers",
	    workers, "socket_mode", "0660", "callers", callers);

	free(l);
	return j;
}

static json_t *
debug_obj(const struct setup_opts *o, enum setup_svc s)
{
	return json_pack("{s:s, s:I}", "addr", "127.0.0.1", "port",
	    (json_int_t)(o->debug_base + 1 + (long)s));
}

static char *
base_url(const struct setup_opts *o)
{
	if (o->port == 443)
		return xasprintf("https://%s", o->host);
	return xasprintf("https://%s:%ld", o->host, o->port);
}

/*
 * Where certificates point for OCSP, CRLs and issuers: the WFE's plain-HTTP
 * pki listener (--pki-port, 80 by default; RFC 5280 §8 discourages https
 * URIs there). Caller frees.
 */
static char *
pki_url(const struct setup_opts *o)
{
	if (o->pki_port == 80)
		return xasprintf("http://%s", o->host);
	return xasprintf("http://%s:%ld", o->host, o->pki_port);
}

/* The common head of every service config. New reference. */
static json_t *
svc_head(const struct setup_opts *o, enum setup_svc s)
{
	json_t *j = json_pack(
	    "{s:s, s:o}", "log_level", "info", "debug", debug_obj(o, s));

	if (o->log_format != NULL)
		json_object_set_new(
		    j, "log_format", json_string(o->log_format));
	return j;
}

static json_t *
gen_sa(const struct setup_opts *o, const char *dsn_file)
{
	json_t *j = svc_head(o, SVC_SA);

	json_object_set_new(j, "rpc", server(o, SVC_SA, 8));
	json_object_set_new(j, "db",
	    json_pack("{s:s, s:i, s:b, s:s, s:s}", "dsn_file", dsn_file, "pool",
		8, "auto_migrate", 0, "statement_timeout", "5s", "schema_dir",
		o->schema_dir));
	return j;
}

static json_t *
gen_ca(const struct setup_opts *o)
{
	json_t *j = svc_head(o, SVC_CA);
	char *url = pki_url(o);

	json_object_set_new(j, "rpc", server(o, SVC_CA, 8));
	json_object_set_new(j, "sa", client(o, SVC_SA, "10s", 4));
	set_fmt(j, "profiles", "%s/profiles.json", o->out);
	set_fmt(j, "issuers", "%s/pki/issuers.json", o->out);
	json_object_set_new(j, "public_base_url", json_string(url));
	json_object_set_new(j, "serial_prefix", json_integer(127));
	json_object_set_new(j, "crl_shards", json_integer(4));
	json_object_set_new(j, "crl_period", json_string("1h"));
	json_object_set_new(j, "crl_validity", json_string("7d"));
	json_object_set_new(j, "ocsp_validity", json_string("4d"));
	json_object_set_new(j, "ocsp_url", json_true());
	free(url);
	return j;
}

static json_t *
gen_va(const struct setup_opts *o)
{
	json_t *j = svc_head(o, SVC_VA);
	int priv = json_array_size(o->networks) > 0;

	json_object_set_new(j, "rpc", server(o, SVC_VA, 64));
	json_object_set_new(j, "dns",
	    json_pack("{s:O, s:s, s:i}", "resolvers", o->resolvers, "timeout",
		"5s", "tries", 2));
	json_object_set_new(j, "http01_port", json_integer(80));
	json_object_set_new(j, "tlsalpn01_port", json_integer(443));
	json_object_set_new(j, "https_port", json_integer(443));
	json_object_set_new(j, "http_port_redirect", json_integer(80));
	json_object_set_new(
	    j, "user_agent", json_string("anvil-va/" ANVIL_VERSION));
	json_object_set_new(j, "caa_identities", json_pack("[s]", o->host));
	json_object_set_new(j, "validation_timeout", json_string("20s"));
	json_object_set_new(j, "network",
	    json_pack("{s:s, s:O}", "mode", priv ? "private" : "public",
		"allow", o->networks));
	return j;
}

static json_t *
gen_ra(const struct setup_opts *o)
{
	json_t *j = svc_head(o, SVC_RA);
	char *url = base_url(o), *prefix = xasprintf("%s/acme/acct/", url);
	char *tos = xasprintf("%s/terms", url);
	json_t *policy;

	json_object_set_new(j, "rpc", server(o, SVC_RA, 8));
	json_object_set_new(j, "sa", client(o, SVC_SA, "10s", 4));
	json_object_set_new(j, "va", client(o, SVC_VA, "60s", 4));
	json_object_set_new(j, "ca", client(o, SVC_CA, "30s", 2));
	set_fmt(j, "profiles_file", "%s/profiles.json", o->out);
	json_object_set_new(j, "account_uri_prefix", json_string(prefix));
	json_object_set_new(j, "terms_of_service", json_string(tos));
	json_object_set_new(j, "eab_required", json_false());
	if (json_array_size(o->suffixes) > 0 ||
	    json_array_size(o->networks) > 0)
		policy = json_pack("{s:s, s:O, s:O, s:[], s:b}", "mode",
		    "private", "dns_suffixes", o->suffixes, "ip_ranges",
		    o->networks, "blocked_names", "allow_wildcards", 1);
	else
		policy = json_pack("{s:s, s:[], s:b}", "mode", "public",
		    "blocked_names", "allow_wildcards", 1);
	json_object_set_new(j, "policy", policy);
	json_object_set_new(j, "finalize",
	    json_pack("{s:b, s:s, s:s, s:s}", "async", 1, "retry_after", "1s",
		"recover_after", "60s", "caa_recheck_after", "7h"));
	json_object_set_new(j, "validation", json_pack("{s:i}", "workers", 8));
	free(url);
	free(prefix);
	free(tos);
	return j;
}

static json_t *
gen_wfe(const struct setup_opts *o)
{
	json_t *j = svc_head(o, SVC_WFE);
	char *url = base_url(o), *tos = xasprintf("%s/terms", url);

	json_object_set_new(j, "listen",
	    json_pack(
		"{s:s, s:i}", "addr", o->listen_addr, "port", (int)o->port));
	json_object_set_new(j, "tls",
	    json_pack("{s:s, s:s}", "cert", o->tls_cert, "key", o->tls_key));
	json_object_set_new(j, "base_url", json_string(url));
	json_object_set_new(j, "pki",
	    json_pack("{s:s, s:i}", "addr", o->listen_addr, "port",
		(int)o->pki_port));
	json_object_set_new(j, "hosts", json_array());
	json_object_set_new(j, "threads", json_integer(8));
	json_object_set_new(j, "max_body", json_integer(65536));
	json_object_set_new(j, "request_timeout", json_string("30s"));
	json_object_set_new(j, "directory",
	    json_pack("{s:s, s:[s], s:b}", "terms_of_service", tos,
		"caa_identities", o->host, "external_account_required", 0));
	json_object_set_new(j, "ra", client(o, SVC_RA, "30s", 8));
	json_object_set_new(j, "sa", client(o, SVC_SA, "10s", 8));
	free(url);
	free(tos);
	return j;
}

static json_t *
gen_admin(const struct setup_opts *o)
{
	char *sa = sock(o, SVC_SA), *ra = sock(o, SVC_RA),
	     *ca = sock(o, SVC_CA);
	json_t *j = json_pack("{s:{s:s, s:s}, s:{s:s, s:s}, s:{s:s, s:s}}",
	    "sa", "target", sa, "timeout", "30s", "ra", "target", ra, "timeout",
	    "60s", "ca", "target", ca, "timeout", "60s");

	set_fmt(j, "sa_config", "%s/sa.json", o->out);
	set_fmt(j, "sa_bin", "%s/anvil-sa", o->bin_dir);
	free(sa);
	free(ra);
	free(ca);
	return j;
}

/* The launcher's config: the same services for hosts without systemd. */
static json_t *
gen_launcher(const struct setup_opts *o)
{
	json_t *svcs = json_array();
	char *url = base_url(o);
	json_t *j;
	int s;

	for (s = 0; s < SVC__MAX; s++) {
		const char *n = svc_table[s].name;
		char *bin = xasprintf("%s/anvil-%s", o->bin_dir, n);
		char *cfg = xasprintf("%s/%s.json", o->out, n);
		char *health =
		    xasprintf("127.0.0.1:%ld", o->debug_base + 1 + s);
		char *log = xasprintf("%s/%s.log", o->log_dir, n);

		json_array_append_new(svcs,
		    json_pack("{s:s, s:[s,s,s], s:s, s:s}", "name", n, "argv",
			bin, "--config", cfg, "health", health, "log", log));
		free(bin);
		free(cfg);
		free(health);
		free(log);
	}
	j = json_pack("{s:s, s:s, s:o}", "startup_timeout", "60s",
	    "stop_timeout", "30s", "services", svcs);
	set_fmt(j, "lock_file", "%s/anvil.lock", o->run_dir);
	json_object_set_new(j, "ready_lines", json_array());
	{
		char *line = xasprintf("ANVIL_DIRECTORY=%s/directory", url);
		json_array_append_new(
		    json_object_get(j, "ready_lines"), json_string(line));
		free(line);
	}
	free(url);
	return j;
}

/*
 * The certificate profiles of a production CA: the dev set without the
 * client-auth profile (add it to profiles.json where wanted).
 */
static const char profiles_json[] =
    "{\"default\": \"classic\", \"profiles\": {"
    "\"classic\": {\"description\": \"90-day server certificate with a "
    "Common Name, DNS and IP identifiers\", \"validity\": \"90d\", "
    "\"backdate\": \"1h\", \"max_identifiers\": 100, \"identifier_types\": "
    "[\"dns\", \"ip\"], \"keep_cn\": true, \"ekus\": [\"serverAuth\"], "
    "\"order_lifetime\": \"7d\", \"authz_lifetime\": \"30d\", "
    "\"pending_authz_lifetime\": \"7d\", \"allow_validity_request\": "
    "false},"
    "\"tlsserver\": {\"description\": \"45-day TLS server certificate "
    "without a Common Name\", \"validity\": \"45d\", \"backdate\": \"1h\", "
    "\"max_identifiers\": 25, \"identifier_types\": [\"dns\"], \"keep_cn\": "
    "false, \"ekus\": [\"serverAuth\"], \"order_lifetime\": \"8h\", "
    "\"authz_lifetime\": \"7h\", \"pending_authz_lifetime\": \"1h\", "
    "\"allow_validity_request\": false},"
    "\"shortlived\": {\"description\": \"7-day server certificate, DNS and "
    "IP identifiers, no Common Name\", \"validity\": \"7d\", \"backdate\": "
    "\"1h\", \"max_identifiers\": 25, \"identifier_types\": [\"dns\", "
    "\"ip\"], \"keep_cn\": false, \"ekus\": [\"serverAuth\"], "
    "\"order_lifetime\": \"8h\", \"authz_lifetime\": \"7h\", "
    "\"pending_authz_lifetime\": \"1h\", \"allow_validity_request\": "
    "false}}}";

/* The DSN for --db: "local" is PostgreSQL's Unix socket, peer auth. */
static char *
dsn_of(const char *db)
{
	if (strcmp(db, "local") == 0)
		return xstrdup("host=/var/run/postgresql dbname=anvil");
	return xstrdup(db);
}

/*
 * Writes data to dir/name with mode (atomically: a temporary file then
 * rename), refusing to replace an existing file unless force. The file is
 * given to owner (uid, -1 keeps) and group anvil when those exist and we
 * are root. 0, or -1 with err.
 */
static int
write_file(const char *dir, const char *name, const char *data, mode_t mode,
    uid_t owner, int force, char *err, size_t errlen)
{
	char *path = xasprintf("%s/%s", dir, name);
	char *tmp = xasprintf("%s/.%s.tmp", dir, name);
	struct group *gr = getgrnam(SETUP_GROUP);
	size_t len = strlen(data), off = 0;
	int fd = -1, rc = -1;

	if (!force && access(path, F_OK) == 0) {
		snprintf(err, errlen,
		    "%s exists (pass --force to replace the whole set)", path);
		goto out;
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)) <
	    0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	while (off < len) {
		ssize_t n = write(fd, data + off, len - off);
		if (n < 0) {
			snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
			goto out;
		}
		off += (size_t)n;
	}
	if (fchmod(fd, mode) != 0 ||
	    (geteuid() == 0 &&
		fchown(fd, owner, gr != NULL ? gr->gr_gid : (gid_t)-1) != 0) ||
	    close(fd) != 0) {
		fd = -1;
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (rc != 0)
		unlink(tmp);
	free(path);
	free(tmp);
	return rc;
}

static int
write_json(const char *dir, const char *name, json_t *j, int force, char *err,
    size_t errlen)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	char *text = xasprintf("%s\n", s);
	int rc =
	    write_file(dir, name, text, 0640, (uid_t)-1, force, err, errlen);

	free(s);
	free(text);
	return rc;
}

/* mkdir -p path; the last level gets mode and group anvil when root. */
static int
make_dir(const char *path, mode_t mode, char *err, size_t errlen)
{
	struct group *gr = getgrnam(SETUP_GROUP);
	char *p = xstrdup(path), *q;

	for (q = strchr(p + 1, '/'); q != NULL; q = strchr(q + 1, '/')) {
		*q = '\0';
		if (mkdir(p, 0755) != 0 && errno != EEXIST) {
			snprintf(err, errlen, "%s: %s", p, strerror(errno));
			free(p);
			return -1;
		}
		*q = '/';
	}
	free(p);
	if (mkdir(path, mode) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (geteuid() == 0 && gr != NULL &&
	    chown(path, (uid_t)-1, gr->gr_gid) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Whether dir holds the packaged default set (wfe.json, placeholder). */
static int
placeholder_set(const char *dir)
{
	char *p = xasprintf("%s/wfe.json", dir);
	json_t *j = json_load_file(p, 0, NULL);
	const char *u = json_string_value(json_object_get(j, "base_url"));
	int r = u != NULL && strcmp(u, "https://" SETUP_PLACEHOLDER_HOST) == 0;

	json_decref(j);
	free(p);
	return r;
}

/* Nameservers of /etc/resolv.conf as "addr:53". New array. */
static json_t *
system_resolvers(void)
{
	json_t *a = json_array();
	char line[512], addr[256];
	FILE *f = fopen("/etc/resolv.conf", "r");

	if (f != NULL) {
		while (fgets(line, sizeof(line), f) != NULL) {
			if (sscanf(line, " nameserver %255s", addr) != 1)
				continue;
			if (strchr(addr, ':') != NULL) {
				char *s = xasprintf("[%s]:53", addr);
				json_array_append_new(a, json_string(s));
				free(s);
			} else {
				char *s = xasprintf("%s:53", addr);
				json_array_append_new(a, json_string(s));
				free(s);
			}
		}
		fclose(f);
	}
	if (json_array_size(a) == 0)
		json_array_append_new(a, json_string("127.0.0.1:53"));
	return a;
}

static void
print_next_steps(const struct setup_opts *o, const char *dsn)
{
	const char *sa_user = svc_user(o, SVC_SA);
	const char *ca_user = svc_user(o, SVC_CA);

	printf("wrote %s/{sa,ca,va,ra,wfe,admin,anvil,profiles}.json and "
	       "%s/sa.dsn\n\nnext steps:\n",
	    o->out, o->out);
	if (strcmp(o->db, "local") == 0)
		printf("  1. database: sudo -u postgres createuser %s && sudo "
		       "-u postgres createdb -O %s anvil\n",
		    sa_user, sa_user);
	else
		printf("  1. database: the DSN in %s/sa.dsn must reach an "
		       "existing, empty or migrated database (%s)\n",
		    o->out, strstr(dsn, "password") ? "password hidden" : dsn);
	printf("     then: sudo -u %s anvil-admin db migrate --config "
	       "%s/admin.json\n",
	    sa_user, o->out);
	if (strcmp(o->keys, "pkcs11") == 0)
		printf("  2. issuer keys in the HSM (docs/operations-ca.md): "
		       "install -o %s -m 0600 PINFILE %s/hsm.pin, then\n"
		       "     sudo -u %s anvil-admin ca init --dir %s/pki "
		       "--pkcs11 --module /usr/lib/.../your-pkcs11.so --token "
		       "LABEL --pin-file %s/hsm.pin\n",
		    ca_user, o->out, ca_user, o->out, o->out);
	else
		printf("  2. issuer keys: sudo -u %s anvil-admin ca init --dir "
		       "%s/pki (then move the root key offline: "
		       "docs/operations-ca.md)\n",
		    ca_user, o->out);
	printf("  3. HTTPS certificate for %s: %s and %s (key mode 0600, "
	       "owner %s)\n",
	    o->host, o->tls_cert, o->tls_key, svc_user(o, SVC_WFE));
	printf("  4. anvil-admin setup --check --dir %s\n", o->out);
	printf("  5. systemctl enable --now anvil.target   (or: anvil run "
	       "--config-dir %s)\n",
	    o->out);
}

/* The whole set as one JSON object on stdout (dry run); all borrowed. */
static void
print_set(const char *const *names, json_t *const *files, json_t *admin,
    json_t *launcher, json_t *profiles)
{
	json_t *all = json_object();
	int s;

	for (s = 0; s < SVC__MAX; s++)
		json_object_set(all, names[s], files[s]);
	json_object_set(all, "admin.json", admin);
	json_object_set(all, "anvil.json", launcher);
	json_object_set(all, "profiles.json", profiles);
	admin_print_json(all);
	json_decref(all);
}

/* 1 (after printing it) when a file of the set already exists in wdir,
 * else 0. names: the services' config file names. */
static int
refuse_existing(
    struct admin_ctx *ctx, const char *wdir, const char *const *names)
{
	static const char *const others[] = {
	    "admin.json", "anvil.json", "profiles.json", "sa.dsn"};
	int s;

	for (s = 0; s < SVC__MAX + 4; s++) {
		const char *n = s < SVC__MAX ? names[s] : others[s - SVC__MAX];
		char *p = xasprintf("%s/%s", wdir, n);
		int exists = access(p, F_OK) == 0;

		free(p);
		if (exists)
			return admin_fail(ctx,
			    "%s/%s exists (pass --force to replace the whole "
			    "set)",
			    wdir, n);
	}
	return 0;
}

static int
setup_write(struct admin_ctx *ctx, struct setup_opts *o)
{
	static const char *const names[SVC__MAX] = {
	    "sa.json", "ca.json", "va.json", "ra.json", "wfe.json"};
	json_t *files[SVC__MAX] = {NULL}, *admin = NULL, *launcher = NULL;
	json_t *profiles = NULL;
	struct passwd *pw;
	char err[1024], *dsn = NULL, *dsn_file = NULL, *dsn_text = NULL;
	char *pki = NULL, *tls = NULL, *wdir = NULL;
	json_error_t jerr;
	int s, rc = 1;

	dsn = dsn_of(o->db);
	dsn_file = xasprintf("%s/sa.dsn", o->out);
	files[SVC_SA] = gen_sa(o, dsn_file);
	files[SVC_CA] = gen_ca(o);
	files[SVC_VA] = gen_va(o);
	files[SVC_RA] = gen_ra(o);
	files[SVC_WFE] = gen_wfe(o);
	admin = gen_admin(o);
	launcher = gen_launcher(o);
	if ((profiles = json_loads(profiles_json, 0, &jerr)) == NULL) {
		rc = admin_fail(ctx, "built-in profiles: %s", jerr.text);
		goto out;
	}
	if (ctx->dry_run) {
		print_set(names, files, admin, launcher, profiles);
		rc = 0;
		goto out;
	}
	wdir = xasprintf("%s%s", o->root ? o->root : "", o->out);
	pki = xasprintf("%s/pki", wdir);
	tls = xasprintf("%s/tls", wdir);
	if (make_dir(wdir, 0750, err, sizeof(err)) != 0 ||
	    make_dir(pki, 0750, err, sizeof(err)) != 0 ||
	    make_dir(tls, 0750, err, sizeof(err)) != 0 ||
	    (o->root == NULL &&
		make_dir(o->log_dir, 0750, err, sizeof(err)) != 0)) {
		rc = admin_fail(ctx, "%s", err);
		goto out;
	}
	/* The set is written whole or not at all: check before writing. */
	if (!o->force && !placeholder_set(wdir) &&
	    (rc = refuse_existing(ctx, wdir, names)) != 0)
		goto out;
	for (s = 0; s < SVC__MAX; s++)
		if (write_json(wdir, names[s], files[s], 1, err, sizeof(err)) !=
		    0)
			goto fail;
	if (write_json(wdir, "admin.json", admin, 1, err, sizeof(err)) != 0 ||
	    write_json(wdir, "anvil.json", launcher, 1, err, sizeof(err)) !=
		0 ||
	    write_json(wdir, "profiles.json", profiles, 1, err, sizeof(err)) !=
		0)
		goto fail;
	/* Only the SA's user may read the DSN (it may hold a password). */
	pw = getpwnam(svc_user(o, SVC_SA));
	dsn_text = xasprintf("%s\n", dsn);
	if (write_file(wdir, "sa.dsn", dsn_text, 0600,
		pw != NULL ? pw->pw_uid : (uid_t)-1, 1, err, sizeof(err)) != 0)
		goto fail;
	if (o->root != NULL)
		; /* a package build: nobody to tell */
	else if (!ctx->json)
		print_next_steps(o, dsn);
	else {
		json_t *d = json_pack("{s:s}", "dir", o->out);
		admin_print_json(d);
		json_decref(d);
	}
	rc = 0;
	goto out;
fail:
	rc = admin_fail(ctx, "%s", err);
out:
	for (s = 0; s < SVC__MAX; s++)
		json_decref(files[s]);
	json_decref(admin);
	json_decref(launcher);
	json_decref(profiles);
	free(dsn);
	free(dsn_file);
	free(dsn_text);
	free(pki);
	free(tls);
	free(wdir);
	return rc;
}

/* ---- setup --check ------------------------------------------------- */

struct check {
	struct admin_ctx *ctx;
	const char *dir;
	json_t *cfg[SVC__MAX]; /* owned */
	json_t *admin;         /* owned */
	json_t *launcher;      /* owned */
	json_t *results;       /* owned: [{"check", "ok", "detail"}] */
	int failed;
};

static void report(struct check *c, int ok, const char *what, const char *fmt,
    ...) __attribute__((format(printf, 4, 5)));
static void
report(struct check *c, int ok, const char *what, const char *fmt, ...)
{
	char detail[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	if (!ok)
		c->failed++;
	json_array_append_new(c->results,
	    json_pack(
		"{s:s, s:b, s:s}", "check", what, "ok", ok, "detail", detail));
	if (!c->ctx->json)
		printf("%-4s %-10s %s\n", ok ? "ok" : "FAIL", what, detail);
}

/* Loads dir/name; reports and returns NULL when it does not parse. */
static json_t *
check_load(struct check *c, const char *name)
{
	char *path = xasprintf("%s/%s", c->dir, name);
	json_error_t jerr;
	json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);

	if (j == NULL)
		report(c, 0, "parse", "%s: line %d: %s", path, jerr.line,
		    jerr.text);
	else if (!json_is_object(j)) {
		report(c, 0, "parse", "%s: not a JSON object", path);
		json_decref(j);
		j = NULL;
	} else
		report(c, 1, "parse", "%s", path);
	free(path);
	return j;
}

/* A string at obj.a[.b] or NULL. */
static const char *
str2(const json_t *obj, const char *a, const char *b)
{
	const json_t *v = json_object_get(obj, a);

	if (b != NULL)
		v = json_object_get(v, b);
	return json_string_value(v);
}

/* The binary the launcher config starts for service s, else a sibling. */
static char *
daemon_bin(struct check *c, enum setup_svc s)
{
	json_t *svcs = json_object_get(c->launcher, "services"), *e;
	char *dir, *bin;
	size_t i;

	json_array_foreach(svcs, i, e)
	{
		const char *n = json_string_value(json_object_get(e, "name"));
		const char *b = json_string_value(
		    json_array_get(json_object_get(e, "argv"), 0));
		if (n != NULL && b != NULL && strcmp(n, svc_table[s].name) == 0)
			return xstrdup(b);
	}
	dir = self_dir(c->ctx->argv0);
	bin = xasprintf("%s/anvil-%s", dir, svc_table[s].name);
	free(dir);
	return bin;
}

/*
 * Runs `bin --check --config path`; returns its exit status (-1 if it
 * could not run) and its last output line in last.
 */
static int
run_check(const char *bin, const char *path, char *last, size_t lastlen)
{
	char buf[8192];
	size_t len = 0;
	int fds[2], status;
	pid_t pid;
	ssize_t n;

	last[0] = '\0';
	if (pipe(fds) != 0)
		return -1;
	if ((pid = fork()) < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		dup2(fds[1], STDERR_FILENO);
		close(fds[0]);
		close(fds[1]);
		execl(bin, bin, "--check", "--config", path, (char *)NULL);
		fprintf(stderr, "%s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	close(fds[1]);
	while ((n = read(fds[0], buf + len, sizeof(buf) - 1 - len)) > 0) {
		len += (size_t)n;
		if (len >= sizeof(buf) - 1) /* keep the tail */
			len = 0;
	}
	close(fds[0]);
	buf[len] = '\0';
	while (len > 0 && buf[len - 1] == '\n')
		buf[--len] = '\0';
	{
		char *nl = strrchr(buf, '\n');
		snprintf(last, lastlen, "%s", nl ? nl + 1 : buf);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void
check_daemons(struct check *c)
{
	char last[1024];
	int s;

	for (s = 0; s < SVC__MAX; s++) {
		char *bin = daemon_bin(c, (enum setup_svc)s);
		char *path = xasprintf("%s/%s.json", c->dir, svc_table[s].name);
		int st;

		if (c->cfg[s] == NULL) {
			free(bin);
			free(path);
			continue;
		}
		st = run_check(bin, path, last, sizeof(last));
		report(c, st == 0, "daemon", "%s --check --config %s: %s", bin,
		    path,
		    st == 0       ? "ok"
			: last[0] ? last
				  : "failed");
		free(bin);
		free(path);
	}
}

/* Every client target names the listener of the service it calls. */
static void
check_targets(struct check *c)
{
	static const struct {
		int from; /* -1 = admin.json */
		const char *key;
		enum setup_svc to;
	} pairs[] = {
	    {SVC_CA, "sa", SVC_SA},
	    {SVC_RA, "sa", SVC_SA},
	    {SVC_RA, "va", SVC_VA},
	    {SVC_RA, "ca", SVC_CA},
	    {SVC_WFE, "ra", SVC_RA},
	    {SVC_WFE, "sa", SVC_SA},
	    {-1, "sa", SVC_SA},
	    {-1, "ra", SVC_RA},
	    {-1, "ca", SVC_CA},
	};
	size_t k;

	for (k = 0; k < sizeof(pairs) / sizeof(pairs[0]); k++) {
		const json_t *from =
		    pairs[k].from < 0 ? c->admin : c->cfg[pairs[k].from];
		const char *fname =
		    pairs[k].from < 0 ? "admin" : svc_table[pairs[k].from].name;
		const char *t = str2(from, pairs[k].key, "target");
		const char *l = str2(c->cfg[pairs[k].to], "rpc", "listen");

		if (from == NULL || c->cfg[pairs[k].to] == NULL)
			continue;
		report(c, t != NULL && l != NULL && strcmp(t, l) == 0, "target",
		    "%s.json %s.target %s, %s listens on %s", fname,
		    pairs[k].key, t ? t : "(missing)",
		    svc_table[pairs[k].to].name, l ? l : "(missing)");
	}
}

/*
 * Deny by default: every listener names the identities of its caller
 * classes (rpc.callers; what each class may call is the registry's) and no
 * "anyone".
 */
static void
check_allow(struct check *c)
{
	int s;

	for (s = 0; s < SVC__MAX; s++) {
		json_t *callers, *ids, *id;
		const char *cls, *bad = NULL;
		size_t i;

		if (c->cfg[s] == NULL || s == SVC_WFE)
			continue;
		callers = json_object_get(
		    json_object_get(c->cfg[s], "rpc"), "callers");
		if (!json_is_object(callers) || json_object_size(callers) == 0) {
			report(c, 0, "allowlist",
			    "%s.json rpc.callers: missing or empty (every call "
			    "is refused)",
			    svc_table[s].name);
			continue;
		}
		json_object_foreach(callers, cls, ids)
		{
			json_array_foreach(ids, i, id)
			{
				const char *v = json_string_value(id);
				if (v == NULL || strcmp(v, "*") == 0)
					bad = cls;
			}
		}
		if (bad != NULL)
			report(c, 0, "allowlist",
			    "%s.json rpc.callers.%s lets anyone who can "
			    "connect call as %s; list the callers",
			    svc_table[s].name, bad, bad);
		else
			report(c, 1, "allowlist",
			    "%s.json: %zu caller classes, no "
			    "wildcard identity",
			    svc_table[s].name, json_object_size(callers));
	}
}

/*
 * With systemd units installed: every caller's user (User= of its unit)
 * is named in the caller lists of each service it calls, so no call that the
 * architecture needs is refused at run time.
 */
static void
check_callers(struct check *c)
{
	/* Who calls whom, as which caller class (rpc/methods.def). */
	static const struct {
		enum setup_svc from, to;
		const char *cls;
	} calls[] = {
	    {SVC_CA, SVC_SA, "ca"},
	    {SVC_RA, SVC_SA, "ra"},
	    {SVC_RA, SVC_VA, "ra"},
	    {SVC_RA, SVC_CA, "ra"},
	    {SVC_WFE, SVC_RA, "wfe"},
	    {SVC_WFE, SVC_SA, "wfe"},
	};
	char *dir, *self = self_dir(c->ctx->argv0), *users[SVC__MAX] = {NULL};
	size_t k, i;
	int s, bad = 0;

	dir = find_unit_dir(self);
	free(self);
	if (dir == NULL)
		return;
	for (s = 0; s < SVC__MAX; s++)
		users[s] = unit_user_of(dir, svc_table[s].name);
	for (k = 0; k < sizeof(calls) / sizeof(calls[0]); k++) {
		const char *u = users[calls[k].from];
		json_t *ids = json_object_get(
		    json_object_get(json_object_get(c->cfg[calls[k].to], "rpc"),
			"callers"),
		    calls[k].cls);
		json_t *id;
		int found = 0;

		if (u == NULL || c->cfg[calls[k].to] == NULL)
			continue;
		json_array_foreach(ids, i, id)
		{
			if (json_is_string(id) &&
			    strcmp(json_string_value(id), u) == 0)
				found = 1;
		}
		if (!found) {
			bad = 1;
			report(c, 0, "callers",
			    "%s.json rpc.callers.%s does not name %s, the user "
			    "of %s/anvil-%s.service",
			    svc_table[calls[k].to].name, calls[k].cls, u, dir,
			    svc_table[calls[k].from].name);
		}
	}
	if (!bad)
		report(c, 1, "callers",
		    "the caller lists name the users of the units in %s", dir);
	for (s = 0; s < SVC__MAX; s++)
		free(users[s]);
	free(dir);
}

/* Distinct debug ports, matched by the launcher's health addresses. */
static void
check_ports(struct check *c)
{
	json_int_t ports[SVC__MAX] = {0};
	json_t *svcs = json_object_get(c->launcher, "services"), *e;
	size_t i;
	int s, t, ok = 1;

	for (s = 0; s < SVC__MAX; s++) {
		ports[s] = json_integer_value(json_object_get(
		    json_object_get(c->cfg[s], "debug"), "port"));
		for (t = 0; t < s; t++)
			if (ports[s] != 0 && ports[s] == ports[t]) {
				report(c, 0, "ports",
				    "%s and %s share debug port %lld",
				    svc_table[t].name, svc_table[s].name,
				    (long long)ports[s]);
				ok = 0;
			}
	}
	json_array_foreach(svcs, i, e)
	{
		const char *n = json_string_value(json_object_get(e, "name"));
		const char *h = json_string_value(json_object_get(e, "health"));
		const char *colon = h ? strrchr(h, ':') : NULL;

		for (s = 0; n != NULL && s < SVC__MAX; s++) {
			if (strcmp(n, svc_table[s].name) != 0)
				continue;
			if (colon == NULL || atoll(colon + 1) != ports[s]) {
				report(c, 0, "ports",
				    "anvil.json: %s health %s is not its "
				    "debug port %lld",
				    n, h ? h : "(none)", (long long)ports[s]);
				ok = 0;
			}
		}
	}
	if (ok)
		report(c, 1, "ports", "debug ports distinct%s",
		    c->launcher ? ", launcher health checks match" : "");
}

/* Secret files: present and readable by their owner only. */
static void
check_secret(struct check *c, const char *what, const char *path)
{
	char err[512];

	if (file_check_secret_mode(path, err, sizeof(err)) != 0)
		report(c, 0, "secret", "%s: %s", what, err);
	else
		report(c, 1, "secret", "%s: %s mode 0600", what, path);
}

static void
check_secrets(struct check *c)
{
	const char *p;
	json_t *iss = NULL, *e;
	json_error_t jerr;
	char *dir = NULL, *path = NULL;
	size_t i;

	if ((p = str2(c->cfg[SVC_SA], "db", "dsn_file")) != NULL)
		check_secret(c, "sa.json db.dsn_file", p);
	if ((p = str2(c->cfg[SVC_WFE], "tls", "key")) != NULL) {
		check_secret(c, "wfe.json tls.key", p);
		p = str2(c->cfg[SVC_WFE], "tls", "cert");
		report(c, p != NULL && access(p, R_OK) == 0, "file",
		    "wfe.json tls.cert: %s%s", p ? p : "(missing)",
		    p != NULL && access(p, R_OK) == 0 ? "" : ": not readable");
	}
	if ((p = str2(c->cfg[SVC_CA], "issuers", NULL)) == NULL)
		return;
	if ((iss = json_load_file(p, 0, &jerr)) == NULL) {
		report(c, 0, "issuers",
		    "%s: %s (create it with anvil-admin ca init)", p,
		    jerr.text);
		return;
	}
	path = xstrdup(p);
	dir = xstrdup(dirname(path));
	json_array_foreach(json_object_get(iss, "issuers"), i, e)
	{
		static const char *const keys[] = {
		    "key", "key_passphrase_file"};
		const char *name =
		    json_string_value(json_object_get(e, "name"));
		size_t k;

		for (k = 0; k < 2; k++) {
			const char *f =
			    json_string_value(json_object_get(e, keys[k]));
			char *full, *what;

			if (f == NULL)
				continue;
			full = f[0] == '/' ? xstrdup(f)
					   : xasprintf("%s/%s", dir, f);
			what = xasprintf(
			    "issuer \"%s\" %s", name ? name : "?", keys[k]);
			check_secret(c, what, full);
			free(full);
			free(what);
		}
		if (json_is_object(json_object_get(e, "pkcs11"))) {
			const json_t *p11 = json_object_get(e, "pkcs11");
			const char *pf =
			    json_string_value(json_object_get(p11, "pin_file"));
			char *full, *what;

			if (pf != NULL) {
				full = pf[0] == '/'
				    ? xstrdup(pf)
				    : xasprintf("%s/%s", dir, pf);
				what =
				    xasprintf("issuer \"%s\" pkcs11.pin_file",
					name ? name : "?");
				check_secret(c, what, full);
				free(full);
				free(what);
			}
			const char *tok =
			    json_string_value(json_object_get(p11, "token"));
			const char *lbl =
			    json_string_value(json_object_get(p11, "label"));
			report(c, 1, "issuers",
			    "issuer \"%s\": key in PKCS#11 token \"%s\" "
			    "(label \"%s\")",
			    name ? name : "?", tok ? tok : "(in uri)",
			    lbl ? lbl : "(in uri)");
		}
		if (json_object_get(e, "key_uri") != NULL)
			report(c, 1, "issuers",
			    "issuer \"%s\": key in a store (%s)",
			    name ? name : "?",
			    json_string_value(json_object_get(e, "key_uri")));
	}
	if (json_array_size(json_object_get(iss, "issuers")) == 0)
		report(c, 0, "issuers", "%s lists no issuer", p);
	json_decref(iss);
	free(path);
	free(dir);
}

/* The public URL is the same everywhere it is written. */
static void
check_urls(struct check *c)
{
	const char *base = str2(c->cfg[SVC_WFE], "base_url", NULL);
	const char *pub = str2(c->cfg[SVC_CA], "public_base_url", NULL);
	const char *acct = str2(c->cfg[SVC_RA], "account_uri_prefix", NULL);
	char *want;

	if (base == NULL)
		return;
	if (strcmp(base, "https://" SETUP_PLACEHOLDER_HOST) == 0)
		report(c, 0, "urls",
		    "wfe.json base_url %s is the packaged placeholder: run "
		    "anvil-admin setup --host YOUR.NAME",
		    base);
	want = xasprintf("%s/acme/acct/", base);
	/* public_base_url: the WFE's http pki listener on the same host, or
	 * its https base_url (the https option) */
	{
		json_int_t pp = json_integer_value(json_object_get(
		    json_object_get(c->cfg[SVC_WFE], "pki"), "port"));
		const char *host = strstr(base, "://");
		char *h = xstrdup(host != NULL ? host + 3 : base), *colon;
		char *http = NULL;

		if ((colon = strrchr(h, ':')) != NULL && strchr(h, ']') == NULL)
			*colon = '\0';
		if (pp > 0)
			http = pp == 80 ? xasprintf("http://%s", h)
					: xasprintf("http://%s:%lld", h,
					      (long long)pp);
		report(c,
		    pub != NULL &&
			(strcmp(pub, base) == 0 ||
			    (http != NULL && strcmp(pub, http) == 0)),
		    "urls",
		    "ca.json public_base_url %s, wfe.json base_url %s%s%s",
		    pub ? pub : "(missing)", base,
		    http ? ", pki listener " : "", http ? http : "");
		free(http);
		free(h);
	}
	report(c, acct != NULL && strcmp(acct, want) == 0, "urls",
	    "ra.json account_uri_prefix %s (want %s)",
	    acct ? acct : "(missing)", want);
	free(want);
}

/* The schema directory holds the migrations. */
static void
check_schema(struct check *c)
{
	const char *d = str2(c->cfg[SVC_SA], "db", "schema_dir");
	struct dirent *de;
	DIR *dh;
	int n = 0;

	if (d == NULL)
		return;
	if ((dh = opendir(d)) != NULL) {
		while ((de = readdir(dh)) != NULL) {
			size_t l = strlen(de->d_name);
			if (l > 4 && strcmp(de->d_name + l - 4, ".sql") == 0)
				n++;
		}
		closedir(dh);
	}
	report(c, n > 0, "schema", "%s: %d migration files", d, n);
}

static int
setup_check(struct admin_ctx *ctx, const char *dir)
{
	struct check c;
	char *p;
	int s;

	memset(&c, 0, sizeof(c));
	c.ctx = ctx;
	c.dir = dir;
	c.results = json_array();
	for (s = 0; s < SVC__MAX; s++) {
		p = xasprintf("%s.json", svc_table[s].name);
		c.cfg[s] = check_load(&c, p);
		free(p);
	}
	c.admin = check_load(&c, "admin.json");
	p = xasprintf("%s/anvil.json", dir);
	if (access(p, F_OK) == 0)
		c.launcher = check_load(&c, "anvil.json");
	free(p);
	check_daemons(&c);
	check_targets(&c);
	check_allow(&c);
	check_callers(&c);
	check_ports(&c);
	check_secrets(&c);
	check_urls(&c);
	check_schema(&c);
	if (ctx->json)
		admin_print_json(c.results);
	else
		printf("%s: %s\n", dir,
		    c.failed ? "FAILED (fix the lines marked FAIL)" : "ok");
	for (s = 0; s < SVC__MAX; s++)
		json_decref(c.cfg[s]);
	json_decref(c.admin);
	json_decref(c.launcher);
	json_decref(c.results);
	return c.failed ? 1 : 0;
}

/* See admin.h. */
int
admin_check_config(struct admin_ctx *ctx, int argc, char **argv)
{
	const char *dir = SETUP_DIR_DEFAULT;
	const struct admin_opt opts[] = {{"--dir", .str = &dir}, {NULL}};
	int rc = admin_parse_opts(ctx, argc, argv, opts);

	return rc >= 0 ? rc : setup_check(ctx, dir);
}

/* The options setup needs are there and well-formed: 0, or the exit code
 * (2) after printing the usage error. */
static int
check_opts(struct admin_ctx *ctx, const struct setup_opts *o)
{
	if (o->host == NULL || o->host[0] == '\0' || strchr(o->host, '/') ||
	    strchr(o->host, ':')) {
		return admin_usage_error(ctx,
		    "--host NAME is required: the public DNS name clients use "
		    "(no scheme, no port)");
	}
	if (strcmp(o->keys, "files") != 0 && strcmp(o->keys, "pkcs11") != 0) {
		return admin_usage_error(ctx, "--keys is files or pkcs11");
	}
	if (o->log_format != NULL && strcmp(o->log_format, "text") != 0 &&
	    strcmp(o->log_format, "json") != 0) {
		return admin_usage_error(ctx, "--log-format is text or json");
	}
	if (o->out[0] != '/' || o->run_dir[0] != '/' || o->log_dir[0] != '/') {
		return admin_usage_error(ctx,
		    "--out, --run-dir and --log-dir must be absolute paths");
	}
	return 0;
}

/*
 * Fills in what the operator did not give: bin_dir (borrowed, NULL: this
 * executable's), the schema and TLS paths, the unit users, root as the one
 * admin, the system's resolvers. What it builds is owned by o.
 */
static void
setup_defaults(struct admin_ctx *ctx, struct setup_opts *o, const char *bin_dir)
{
	int i;

	o->bin_dir = bin_dir ? xstrdup(bin_dir) : self_dir(ctx->argv0);
	if (o->schema_dir == NULL) {
		/* Installed layout: PREFIX/bin and PREFIX/share/anvil/schema.
		 */
		char *p = xasprintf("%s/../share/anvil/schema", o->bin_dir);
		char real[PATH_MAX];

		o->schema_buf = xstrdup(realpath(p, real) != NULL
			? real
			: "/usr/share/anvil/schema");
		o->schema_dir = o->schema_buf;
		free(p);
	}
	if (o->tls_cert == NULL)
		o->tls_cert = o->cert_buf = xasprintf("%s/tls/wfe.pem", o->out);
	if (o->tls_key == NULL)
		o->tls_key = o->key_buf = xasprintf("%s/tls/wfe.key", o->out);
	if (o->user == NULL) {
		char *ud = o->unit_dir ? xstrdup(o->unit_dir)
				       : find_unit_dir(o->bin_dir);

		for (i = 0; ud != NULL && i < SVC__MAX; i++)
			o->unit_user[i] = unit_user_of(ud, svc_table[i].name);
		free(ud);
	}
	if (json_array_size(o->admins) == 0)
		admin_add_unique(o->admins, "root");
	if (json_array_size(o->resolvers) == 0) {
		json_decref(o->resolvers);
		o->resolvers = system_resolvers();
	}
}

/* Frees what o owns. */
static void
setup_opts_clear(struct setup_opts *o)
{
	int i;

	json_decref(o->admins);
	json_decref(o->suffixes);
	json_decref(o->networks);
	json_decref(o->resolvers);
	free(o->bin_dir);
	for (i = 0; i < SVC__MAX; i++)
		free(o->unit_user[i]);
	free(o->schema_buf);
	free(o->cert_buf);
	free(o->key_buf);
}

/* See admin.h. */
int
admin_setup(struct admin_ctx *ctx, int argc, char **argv)
{
	struct setup_opts o = {
	    .db = "local",
	    .keys = "files",
	    .out = SETUP_DIR_DEFAULT,
	    .run_dir = SETUP_RUN_DEFAULT,
	    .log_dir = SETUP_LOG_DEFAULT,
	    .listen_addr = "0.0.0.0",
	    .port = 443,
	    .pki_port = 80,
	    .debug_base = 8100,
	    .admins = json_array(),
	    .suffixes = json_array(),
	    .networks = json_array(),
	    .resolvers = json_array(),
	};
	const char *bin_dir = NULL;
	int check = 0, rc;
	/* --out and --dir (the spelling of check-config) are one option */
	const struct admin_opt opts[] = {
	    {"--check", .flag = &check},
	    {"--force", .flag = &o.force},
	    {"--host", .str = &o.host},
	    {"--db", .str = &o.db},
	    {"--keys", .str = &o.keys},
	    {"--out", .str = &o.out},
	    {"--dir", .str = &o.out},
	    {"--root", .str = &o.root},
	    {"--unit-dir", .str = &o.unit_dir},
	    {"--run-dir", .str = &o.run_dir},
	    {"--log-dir", .str = &o.log_dir},
	    {"--bin-dir", .str = &bin_dir},
	    {"--schema-dir", .str = &o.schema_dir},
	    {"--tls-cert", .str = &o.tls_cert},
	    {"--tls-key", .str = &o.tls_key},
	    {"--listen", .str = &o.listen_addr},
	    {"--port", .port = &o.port},
	    {"--pki-port", .port = &o.pki_port},
	    {"--debug-port-base", .port = &o.debug_base},
	    {"--user", .str = &o.user},
	    {"--admin-user", .list = o.admins},
	    {"--private-suffix", .list = o.suffixes},
	    {"--private-network", .list = o.networks},
	    {"--resolver", .list = o.resolvers},
	    {"--log-format", .str = &o.log_format},
	    {NULL},
	};

	if ((rc = admin_parse_opts(ctx, argc, argv, opts)) >= 0)
		goto out;
	if (o.debug_base > 65530) {
		rc = admin_usage_error(ctx, "bad port base");
		goto out;
	}
	if (check) {
		rc = setup_check(ctx, o.out);
		goto out;
	}
	if ((rc = check_opts(ctx, &o)) != 0)
		goto out;
	setup_defaults(ctx, &o, bin_dir);
	rc = setup_write(ctx, &o);
out:
	setup_opts_clear(&o);
	return rc;
}
