/*
 * service.c - rpc_service_main, the one skeleton every anvil-* daemon runs:
 * flags, config, logging, signals, debug server, RPC server from the
 * registry, privilege drop, drain. The daemon's own part is a struct
 * rpc_service_ops in its folder (sa/, ra/, ca/, va/, wfe/).
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "rpc/rpc.h"

struct svc_flags {
	const char *path;
	const char *user;
	int check;
	int standalone;
};

static void
svc_usage(const struct rpc_service_ops *ops)
{
	fprintf(stderr,
	    "usage: %s -c|--config FILE [--check] [--user NAME]\n"
	    "       %s --version\n%s",
	    ops->name, ops->name, ops->usage != NULL ? ops->usage : "");
}

/* 0 = go on; otherwise the exit status + 1 (so 1 = exit 0, 3 = exit 2). */
static int
svc_parse_flags(const struct rpc_service_ops *ops, void *st, int argc,
    char **argv, struct svc_flags *f)
{
	int i, r;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if ((strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0) &&
		    i + 1 < argc)
			f->path = argv[++i];
		else if (strcmp(a, "--check") == 0)
			f->check = 1;
		else if (strcmp(a, "--user") == 0 && i + 1 < argc)
			f->user = argv[++i];
		else if (strcmp(a, "--version") == 0) {
			printf("%s %s\n", ops->name, ANVIL_VERSION);
			return 1;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			svc_usage(ops);
			return 1;
		} else if (ops->flag != NULL &&
		    (r = ops->flag(st, argc, argv, &i)) > 0) {
			if (r == 2)
				f->standalone = 1;
		} else {
			svc_usage(ops);
			return 3;
		}
	}
	if (f->path == NULL && !f->standalone) {
		svc_usage(ops);
		return 3;
	}
	return 0;
}

/*
 * What a daemon gives up once its sockets and keys are open: no new
 * privileges ever (setuid binaries, file capabilities); not dumpable when it
 * holds secrets (no core files, no ptrace or /proc/PID/mem by a process of
 * the same user); and, started as root with --user, root itself.
 */
static int
svc_drop(const struct rpc_service_ops *ops, const char *user, char *err,
    size_t errlen)
{
	struct passwd *pw;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		snprintf(err, errlen, "no_new_privs: %s", strerror(errno));
		return -1;
	}
	if (user != NULL) {
		errno = 0;
		if ((pw = getpwnam(user)) == NULL) {
			snprintf(err, errlen, "--user %s: no such user", user);
			return -1;
		}
		if (geteuid() != 0 && geteuid() != pw->pw_uid) {
			snprintf(err, errlen,
			    "--user %s: only root can become another user",
			    user);
			return -1;
		}
		if (geteuid() == 0 &&
		    (initgroups(pw->pw_name, pw->pw_gid) != 0 ||
			setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)) {
			snprintf(err, errlen, "--user %s: %s", user,
			    strerror(errno));
			return -1;
		}
		if (pw->pw_uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
			snprintf(err, errlen, "--user %s: root regained", user);
			return -1;
		}
	}
	if (ops->keep_secret) {
		struct rlimit rl = {0, 0};

		if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 ||
		    setrlimit(RLIMIT_CORE, &rl) != 0) {
			snprintf(
			    err, errlen, "not dumpable: %s", strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* The log level and the "rpc" section of the configuration conf (read
 * from path) into effect and rcfg. 0, or -1 with err. */
static int
svc_apply_conf(const struct rpc_service_ops *ops, const char *path,
    const struct rpc_service_conf *conf, struct rpc_server_config *rcfg,
    char *err, size_t errlen)
{
	char tmp[1024];

	log_init(ops->name, conf->common->level);
	if (ops->owner == RPC_SVC_ANY)
		return 0;
	if (conf->common->rpc == NULL) {
		snprintf(err, errlen, "%s: rpc: required key is missing", path);
		return -1;
	}
	if (rpc_server_config_parse(
		conf->common->rpc, rcfg, tmp, sizeof(tmp)) != 0) {
		snprintf(err, errlen, "%s: %s", path, tmp);
		return -1;
	}
	return 0;
}

/* What svc_serve started, for the caller to stop. */
struct svc_running {
	struct debug_server *dbg;
	struct rpc_server *srv;
	int opened; /* ops->open succeeded */
};

/* Opens the service, starts its debug and RPC servers, drops privileges
 * and serves until stopped. 0, or -1 with err. */
static int
svc_serve(const struct rpc_service_ops *ops, void *st,
    const struct svc_flags *f, struct rpc_service_conf *conf,
    const struct rpc_server_config *rcfg, struct svc_running *run, char *err,
    size_t errlen)
{
	conf->metrics = metrics_new();
	if (ops->open(st, conf, err, errlen) != 0)
		return -1;
	run->opened = 1;
	if (conf->common->debug_port > 0) {
		run->dbg = debug_server_start(conf->common->debug_addr,
		    (int)conf->common->debug_port, conf->metrics, conf->health,
		    conf->health_arg, err, errlen);
		if (run->dbg == NULL)
			return -1;
	}
	run->srv =
	    rpc_server_new_service(rcfg, ops->owner, conf->handlers, conf->svc,
		conf->metrics, conf->health, conf->health_arg, err, errlen);
	if (run->srv == NULL)
		return -1;
	/* Sockets, keys and the database are open: drop the rest. */
	if (svc_drop(ops, f->user, err, errlen) != 0)
		return -1;
	if (ops->start != NULL && ops->start(st, err, errlen) != 0)
		return -1;
	log_info("%s %s: serving %s.* on %s%s%s", ops->name, ANVIL_VERSION,
	    rpc_service_name(ops->owner), rcfg->listen,
	    f->user != NULL ? " as " : "", f->user != NULL ? f->user : "");
	rpc_server_run(run->srv);
	log_info("stopped");
	return 0;
}

/* See rpc.h. */
int
rpc_service_main(const struct rpc_service_ops *ops, int argc, char **argv)
{
	struct rpc_service_conf conf;
	struct rpc_server_config rcfg;
	struct svc_flags f;
	struct svc_running run;
	void *st = NULL;
	json_t *obj;
	char err[1024];
	int r, rc = 1;

	memset(&conf, 0, sizeof(conf));
	memset(&rcfg, 0, sizeof(rcfg));
	memset(&f, 0, sizeof(f));
	memset(&run, 0, sizeof(run));
	log_init(ops->name, LOG_LEVEL_INFO);
	signal(SIGPIPE, SIG_IGN);
	err[0] = '\0';
	if (ops->state_new != NULL && (st = ops->state_new()) == NULL) {
		snprintf(err, sizeof(err), "cannot create the service state "
		    "(no memory or locks)");
		goto fail;
	}
	if ((r = svc_parse_flags(ops, st, argc, argv, &f)) != 0) {
		rc = r - 1;
		goto out;
	}
	if (f.standalone && ops->command != NULL) {
		rc = ops->command(st, 0);
		goto out;
	}
	if ((obj = config_load_file(f.path, err, sizeof(err))) == NULL)
		goto fail;
	r = ops->configure(st, obj, f.path, &conf, err, sizeof(err));
	json_decref(obj);
	if (r != 0 ||
	    svc_apply_conf(ops, f.path, &conf, &rcfg, err, sizeof(err)) != 0)
		goto fail;
	if (f.check) {
		if (ops->check != NULL && ops->check(st, err, sizeof(err)) != 0)
			goto fail;
		printf("%s: ok\n", f.path);
		rc = 0;
		goto out;
	}
	if (ops->command != NULL && (r = ops->command(st, 1)) >= 0) {
		rc = r;
		goto out;
	}
	if (ops->owner == RPC_SVC_ANY) {
		/* The WFE: its listener, debug server and signals are its
		 * own (wfe_main), so the drop comes before its listener is
		 * bound (with --user: a port above 1023, or systemd's
		 * User= with CAP_NET_BIND_SERVICE). */
		if (svc_drop(ops, f.user, err, sizeof(err)) != 0)
			goto fail;
		rc = ops->run(st);
		goto out;
	}
	if (svc_serve(ops, st, &f, &conf, &rcfg, &run, err, sizeof(err)) != 0)
		goto fail;
	rc = 0;
	goto out;
fail:
	if (err[0] != '\0')
		log_error("%s", err);
	rc = 1;
out:
	if (run.opened && ops->stop != NULL)
		ops->stop(st);
	rpc_server_free(run.srv);
	debug_server_stop(run.dbg);
	if (st != NULL && ops->free != NULL)
		ops->free(st);
	metrics_free(conf.metrics);
	rpc_server_config_clear(&rcfg);
	return rc;
}
