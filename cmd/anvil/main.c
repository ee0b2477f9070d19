/* LIBS: core */
/*
 * anvil - the launcher: starts every Anvil process in dependency order,
 * waits for each /healthz, restarts a child that dies (exponential backoff)
 * and on SIGTERM/SIGINT stops them in reverse order, waiting for a graceful
 * drain.
 *
 *   anvil run --config-dir DIR     (reads DIR/anvil.json)
 *
 * anvil.json:
 * {"lock_file": "var/run/anvil.lock",
 *  "startup_timeout": "60s", "stop_timeout": "20s",
 *  "services": [{"name": "sa", "argv": ["bin/anvil-sa", "--config", "..."],
 *                "health": "127.0.0.1:8101", "log": "var/log/sa.log"}],
 *  "ready_lines": ["ANVIL_DIRECTORY=https://localhost:4431/directory"]}
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"

#define MAX_SERVICES 16
#define BACKOFF_MAX_MS 30000
#define STABLE_MS 60000

struct service {
	char *name;
	char **argv;
	size_t argc;
	char *health; /* "addr:port" */
	char *log;
	pid_t pid;
	int64_t started_ms;
	int64_t backoff_ms;
	int64_t restart_at_ms; /* 0 = not waiting */
	int restarts;
};

struct launcher {
	char *lock_file;
	int64_t startup_timeout_ms;
	int64_t stop_timeout_ms;
	struct service svc[MAX_SERVICES];
	size_t nsvc;
	char **ready_lines;
	size_t nready;
	int lock_fd;
};

struct svc_in {
	char *name;
	char **argv;
	size_t argc;
	char *health;
	char *log;
};

static const struct jspec svc_spec[] = {
    {"name", JSPEC_STRING, offsetof(struct svc_in, name), 1, NULL, 0},
    {"argv", JSPEC_STRINGS, offsetof(struct svc_in, argv), 1, NULL,
	offsetof(struct svc_in, argc)},
    {"health", JSPEC_STRING, offsetof(struct svc_in, health), 0, NULL, 0},
    {"log", JSPEC_STRING, offsetof(struct svc_in, log), 0, NULL, 0},
    JSPEC_END,
};

struct launcher_in {
	char *lock_file;
	int64_t startup_timeout_ms;
	int64_t stop_timeout_ms;
	json_t *services;
	char **ready_lines;
	size_t nready;
};

static const struct jspec launcher_spec[] = {
    {"lock_file", JSPEC_STRING, offsetof(struct launcher_in, lock_file), 0,
	NULL, 0},
    {"startup_timeout", JSPEC_DURATION,
	offsetof(struct launcher_in, startup_timeout_ms), 0, NULL, 0},
    {"stop_timeout", JSPEC_DURATION,
	offsetof(struct launcher_in, stop_timeout_ms), 0, NULL, 0},
    {"services", JSPEC_JSON, offsetof(struct launcher_in, services), 1, NULL,
	0},
    {"ready_lines", JSPEC_STRINGS, offsetof(struct launcher_in, ready_lines), 0,
	NULL, offsetof(struct launcher_in, nready)},
    JSPEC_END,
};

static char *expand_env(const char *in);

static void
launcher_clear(struct launcher *l)
{
	size_t i, j;

	for (i = 0; i < l->nsvc; i++) {
		free(l->svc[i].name);
		for (j = 0; j < l->svc[i].argc; j++)
			free(l->svc[i].argv[j]);
		free(l->svc[i].argv);
		free(l->svc[i].health);
		free(l->svc[i].log);
	}
	for (i = 0; i < l->nready; i++)
		free(l->ready_lines[i]);
	free(l->ready_lines);
	free(l->lock_file);
}

/* Loads DIR/anvil.json into l. 0 or -1 with err. */
static int
launcher_load(struct launcher *l, const char *dir, char *err, size_t errlen)
{
	char path[1024];
	struct launcher_in in;
	json_t *j = NULL, *s;
	size_t i;
	int rc = -1;

	memset(&in, 0, sizeof(in));
	in.startup_timeout_ms = 60000;
	in.stop_timeout_ms = 20000;
	snprintf(path, sizeof(path), "%s/anvil.json", dir);
	j = config_load_file(path, err, errlen);
	if (j == NULL)
		goto out;
	if (config_parse(path, j, launcher_spec, &in, err, errlen) != 0)
		goto out;
	if (!json_is_array(in.services) || json_array_size(in.services) == 0 ||
	    json_array_size(in.services) > MAX_SERVICES) {
		snprintf(err, errlen,
		    "%s: services: expected an array of 1..%d "
		    "objects",
		    path, MAX_SERVICES);
		goto out;
	}
	json_array_foreach(in.services, i, s)
	{
		struct svc_in si;
		char inner[400];

		memset(&si, 0, sizeof(si));
		if (jspec_parse(s, svc_spec, &si, inner, sizeof(inner)) != 0 ||
		    si.argc == 0) {
			snprintf(err, errlen, "%s: services[%zu].%s", path, i,
			    si.argc == 0 && inner[0] == 0 ? "argv: empty"
							  : inner);
			jspec_clear(svc_spec, &si);
			goto out;
		}
		for (size_t k = 0; k < si.argc; k++) {
			char *e = expand_env(si.argv[k]);

			free(si.argv[k]);
			si.argv[k] = e;
		}
		l->svc[l->nsvc].name = si.name;
		l->svc[l->nsvc].argv = si.argv;
		l->svc[l->nsvc].argc = si.argc;
		l->svc[l->nsvc].health = si.health;
		l->svc[l->nsvc].log = si.log;
		l->svc[l->nsvc].backoff_ms = 1000;
		l->nsvc++;
	}
	l->lock_file = in.lock_file ? xstrdup(in.lock_file)
				    : xstrdup("var/run/anvil.lock");
	l->startup_timeout_ms = in.startup_timeout_ms;
	l->stop_timeout_ms = in.stop_timeout_ms;
	for (i = 0; i < in.nready; i++) {
		char *e = expand_env(in.ready_lines[i]);

		free(in.ready_lines[i]);
		in.ready_lines[i] = e;
	}
	l->ready_lines = in.ready_lines;
	l->nready = in.nready;
	in.ready_lines = NULL;
	in.nready = 0;
	rc = 0;
out:
	jspec_clear(launcher_spec, &in);
	json_decref(j);
	return rc;
}

/*
 * Expands ${NAME} from the environment (unset = empty). Returns a new
 * string; the caller frees it.
 */
static char *
expand_env(const char *in)
{
	size_t cap = strlen(in) + 1, len = 0;
	char *out = xmalloc(cap);

	while (*in != '\0') {
		const char *end;

		if (in[0] == '$' && in[1] == '{' &&
		    (end = strchr(in + 2, '}')) != NULL) {
			char name[128];
			const char *v;
			size_t n = (size_t)(end - in - 2);

			if (n >= sizeof(name))
				n = sizeof(name) - 1;
			memcpy(name, in + 2, n);
			name[n] = '\0';
			v = getenv(name);
			if (v == NULL)
				v = "";
			cap += strlen(v);
			out = xrealloc(out, cap);
			memcpy(out + len, v, strlen(v));
			len += strlen(v);
			in = end + 1;
			continue;
		}
		out[len++] = *in++;
	}
	out[len] = '\0';
	return out;
}

/* Creates the parent directories of path (like mkdir -p dirname). */
static void
mkdir_parents(const char *path)
{
	char buf[1024];
	char *p;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = buf + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			if (mkdir(buf, 0755) != 0 && errno != EEXIST)
				return;
			*p = '/';
		}
	}
}

/* GET /healthz on "addr:port" with a 1 s timeout; 1 when 200. */
static int
health_ok(const char *hp)
{
	char host[128], req[256], resp[64];
	const char *colon = strrchr(hp, ':');
	struct sockaddr_in a;
	struct pollfd pfd;
	ssize_t n;
	size_t got = 0;
	int fd, ok = 0;

	if (colon == NULL || (size_t)(colon - hp) >= sizeof(host))
		return 0;
	memcpy(host, hp, (size_t)(colon - hp));
	host[colon - hp] = '\0';
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
		return 0;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		goto out;
	snprintf(
	    req, sizeof(req), "GET /healthz HTTP/1.0\r\nHost: %s\r\n\r\n", hp);
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
		goto out;
	pfd.fd = fd;
	pfd.events = POLLIN;
	while (got < sizeof(resp) - 1) {
		if (poll(&pfd, 1, 1000) <= 0)
			goto out;
		n = read(fd, resp + got, sizeof(resp) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	resp[got] = '\0';
	ok = strncmp(resp, "HTTP/1.", 7) == 0 &&
	    strncmp(resp + 8, " 200", 4) == 0;
out:
	close(fd);
	return ok;
}

static int
service_start(struct service *s)
{
	pid_t pid;

	pid = fork();
	if (pid < 0) {
		log_error("fork for %s: %s", s->name, strerror(errno));
		return -1;
	}
	if (pid == 0) {
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setpgid(0, 0); /* a Ctrl-C reaches the launcher only */
		if (s->log != NULL) {
			int fd;

			mkdir_parents(s->log);
			fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
			if (fd >= 0) {
				dup2(fd, STDOUT_FILENO);
				dup2(fd, STDERR_FILENO);
				close(fd);
			}
		}
		execv(s->argv[0], s->argv);
		fprintf(stderr, "anvil: exec %s: %s\n", s->argv[0],
		    strerror(errno));
		_exit(127);
	}
	s->pid = pid;
	s->started_ms = time_mono_ms();
	s->restart_at_ms = 0;
	log_info("started %s (pid %d)", s->name, (int)pid);
	return 0;
}

/* Waits for a signal up to ms; returns the signal number or 0. */
static int
wait_signal(const sigset_t *set, int64_t ms)
{
	struct timespec ts;
	int sig;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000;
	sig = sigtimedwait(set, NULL, &ts);
	return sig < 0 ? 0 : sig;
}

/* Reaps children; marks dead ones for restart. Returns names logged. */
static void
reap(struct launcher *l, int stopping)
{
	pid_t pid;
	int status;
	size_t i;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (i = 0; i < l->nsvc; i++) {
			struct service *s = &l->svc[i];
			int64_t now = time_mono_ms();

			if (s->pid != pid)
				continue;
			s->pid = 0;
			if (stopping)
				break;
			if (now - s->started_ms > STABLE_MS)
				s->backoff_ms = 1000;
			s->restart_at_ms = now + s->backoff_ms;
			s->restarts++;
			if (WIFSIGNALED(status))
				log_warn("%s (pid %d) killed by signal %d; "
					 "restarting in %lld ms",
				    s->name, (int)pid, WTERMSIG(status),
				    (long long)s->backoff_ms);
			else
				log_warn("%s (pid %d) exited with status %d; "
					 "restarting in %lld ms",
				    s->name, (int)pid, WEXITSTATUS(status),
				    (long long)s->backoff_ms);
			s->backoff_ms *= 2;
			if (s->backoff_ms > BACKOFF_MAX_MS)
				s->backoff_ms = BACKOFF_MAX_MS;
			break;
		}
	}
}

/* Stops running children in reverse order with SIGTERM, then SIGKILL. */
static void
stop_all(struct launcher *l, const sigset_t *set)
{
	size_t i;

	for (i = l->nsvc; i-- > 0;) {
		struct service *s = &l->svc[i];
		int64_t deadline;

		if (s->pid <= 0)
			continue;
		log_info("stopping %s (pid %d)", s->name, (int)s->pid);
		kill(s->pid, SIGTERM);
		deadline = time_mono_ms() + l->stop_timeout_ms;
		while (s->pid > 0 && time_mono_ms() < deadline) {
			(void)wait_signal(set, 100);
			reap(l, 1);
		}
		if (s->pid > 0) {
			log_warn(
			    "%s did not stop in time; killing it", s->name);
			kill(s->pid, SIGKILL);
			while (s->pid > 0) {
				(void)wait_signal(set, 100);
				reap(l, 1);
			}
		}
	}
}

static int
take_lock(struct launcher *l)
{
	char buf[32];
	int fd;

	mkdir_parents(l->lock_file);
	fd = open(l->lock_file, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		log_error("%s: %s", l->lock_file, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		ssize_t n = read(fd, buf, sizeof(buf) - 1);

		buf[n > 0 ? n : 0] = '\0';
		fprintf(stderr,
		    "anvil: already running (pid %s, lock %s); stop "
		    "it first (Ctrl-C in its terminal or kill %s)\n",
		    n > 0 ? buf : "?", l->lock_file, n > 0 ? buf : "<pid>");
		close(fd);
		return -1;
	}
	if (ftruncate(fd, 0) == 0) {
		snprintf(buf, sizeof(buf), "%d", (int)getpid());
		if (pwrite(fd, buf, strlen(buf), 0) < 0)
			log_warn("cannot write pid to %s", l->lock_file);
	}
	l->lock_fd = fd;
	return 0;
}

static int
cmd_run(const char *dir)
{
	struct launcher l;
	sigset_t set;
	char err[1024];
	size_t i;
	int rc = 1, sig = 0;

	memset(&l, 0, sizeof(l));
	l.lock_fd = -1;
	if (launcher_load(&l, dir, err, sizeof(err)) != 0) {
		fprintf(stderr, "anvil: %s\n", err);
		goto out;
	}
	if (take_lock(&l) != 0)
		goto out;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);

	/* Start in order, each healthy before the next. */
	for (i = 0; i < l.nsvc; i++) {
		struct service *s = &l.svc[i];
		int64_t deadline = time_mono_ms() + l.startup_timeout_ms;

		if (service_start(s) != 0)
			goto stop;
		while (s->health != NULL && !health_ok(s->health)) {
			sig = wait_signal(&set, 25);
			if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP)
				goto stop;
			reap(&l, 1);
			if (s->pid == 0) {
				log_error("%s exited during start-up; see %s",
				    s->name, s->log ? s->log : "its output");
				goto stop;
			}
			if (time_mono_ms() > deadline) {
				log_error("%s not healthy at %s after %lld s; "
					  "see %s",
				    s->name, s->health,
				    (long long)l.startup_timeout_ms / 1000,
				    s->log ? s->log : "its output");
				goto stop;
			}
		}
		log_info("%s is healthy", s->name);
	}
	for (i = 0; i < l.nready; i++)
		printf("%s\n", l.ready_lines[i]);
	fflush(stdout);

	/* Supervise. */
	for (;;) {
		int64_t now;

		sig = wait_signal(&set, 500);
		if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP)
			break;
		reap(&l, 0);
		now = time_mono_ms();
		for (i = 0; i < l.nsvc; i++) {
			struct service *s = &l.svc[i];

			if (s->pid == 0 && s->restart_at_ms != 0 &&
			    now >= s->restart_at_ms)
				if (service_start(s) != 0)
					s->restart_at_ms = now + s->backoff_ms;
		}
	}
	log_info("signal %d: stopping", sig);
	rc = 0;
stop:
	stop_all(&l, &set);
	if (rc != 0)
		fprintf(stderr, "anvil: start-up failed\n");
out:
	if (l.lock_fd >= 0) {
		unlink(l.lock_file);
		close(l.lock_fd);
	}
	launcher_clear(&l);
	return rc;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: anvil run --config-dir DIR\n"
	    "  Starts every process listed in DIR/anvil.json in order, waits\n"
	    "  for each /healthz, restarts crashed ones, stops all on\n"
	    "  SIGTERM/SIGINT.\n");
}

int
main(int argc, char **argv)
{
	const char *dir = NULL;
	int i;

	log_init("anvil", LOG_LEVEL_INFO);
	if (argc < 2 || strcmp(argv[1], "run") != 0) {
		usage();
		return 2;
	}
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--config-dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(argv[i], "--help") == 0) {
			usage();
			return 0;
		} else {
			fprintf(
			    stderr, "anvil: unknown argument %s\n", argv[i]);
			usage();
			return 2;
		}
	}
	if (dir == NULL) {
		usage();
		return 2;
	}
	return cmd_run(dir);
}
