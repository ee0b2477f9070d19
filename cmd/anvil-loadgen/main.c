/* LIBS: jose core */
/*
 * anvil-loadgen - an RFC 8555 client for load testing any ACME server.
 *
 *   anvil-loadgen --directory https://localhost:14000/dir --trust root.pem
 *                 [--clients 16] [--duration 30s | --count 1000]
 *                 [--names 1] [--suffix loadgen.example] [--http-port 5002]
 *                 [--json]
 *
 * N worker threads, each with its own ES256 account, loop full issuances
 * with http-01 answered by the built-in responder. The report gives
 * issuances/s, failures by problem type and latency percentiles for the
 * whole issuance and per request kind. Exit status: 0 when every issuance
 * succeeded (and at least one did), 1 when some failed, 2 on a usage or
 * setup error (e.g. the directory is unreachable).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <openssl/ssl.h>

#include "core/core.h"
#include "cmd/anvil-loadgen/lg.h"

struct opts {
	const char *directory;
	const char *trust;
	const char *suffix;
	const char *http_addr;
	int http_port;
	int clients;
	int names;
	int64_t count;
	int64_t duration_ms;
	int64_t poll_ms;
	int64_t timeout_ms;
	int64_t issuance_timeout_ms;
	int key_pool;
	int json;
	int verbose;
	int no_responder;
	int renew;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: anvil-loadgen --directory URL --trust PEM [options]\n"
	    "  -c, --clients N         concurrent workers/accounts (16)\n"
	    "  -d, --duration D        run for D (e.g. 30s, 2m; default 10s)\n"
	    "  -n, --count N           stop after N issuances instead\n"
	    "  -k, --names K           names per order (1, max 100)\n"
	    "      --suffix S          names are <random>.S (loadgen.example)\n"
	    "      --http-addr A       http-01 responder address (127.0.0.1)\n"
	    "      --http-port P       http-01 responder port (5002)\n"
	    "      --no-responder      do not serve http-01 (always-valid "
	    "servers)\n"
	    "      --renew             each worker issues once for its names "
	    "before the\n"
	    "                          window, then orders the same names "
	    "again (authz reuse)\n"
	    "      --poll D            polling interval (25ms)\n"
	    "      --timeout D         per-request timeout (10s)\n"
	    "      --issuance-timeout D  per-issuance deadline (60s)\n"
	    "      --key-pool N        pre-generated certificate keys (64)\n"
	    "      --json              print the report as JSON on stdout\n"
	    "  -v, --verbose           log every error\n");
}

static int
parse_int(const char *s, long lo, long hi, long *out)
{
	char *end = NULL;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* parse_int into an int option. */
static int
parse_int_opt(const char *s, long lo, long hi, int *out)
{
	long v;

	if (parse_int(s, lo, hi, &v) != 0)
		return -1;
	*out = (int)v;
	return 0;
}

/* A duration option in [lo, hi] milliseconds. */
static int
parse_duration_opt(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
	if (duration_parse_ms(s, out) != 0 || *out < lo || *out > hi)
		return -1;
	return 0;
}

/*
 * Stores the value of option ch (one taking an argument) from arg.
 * 0 when stored, -1 when arg is not a valid value, 1 when ch is not an
 * option with a value.
 */
static int
parse_value_opt(int ch, const char *arg, struct opts *o)
{
	long v;

	switch (ch) {
	case 'D':
		o->directory = arg;
		return 0;
	case 'T':
		o->trust = arg;
		return 0;
	case 'S':
		o->suffix = arg;
		return 0;
	case 'A':
		o->http_addr = arg;
		return 0;
	case 'c':
		return parse_int_opt(arg, 1, 4096, &o->clients);
	case 'k':
		return parse_int_opt(arg, 1, 100, &o->names);
	case 'P':
		return parse_int_opt(arg, 1, 65535, &o->http_port);
	case 'K':
		return parse_int_opt(arg, 1, 100000, &o->key_pool);
	case 'n':
		if (parse_int(arg, 1, 1000000000L, &v) != 0)
			return -1;
		o->count = v;
		return 0;
	case 'd':
		return parse_duration_opt(arg, 1, INT64_MAX, &o->duration_ms);
	case 'p':
		return parse_duration_opt(arg, 0, 60000, &o->poll_ms);
	case 't':
		return parse_duration_opt(arg, 1, 3600000, &o->timeout_ms);
	case 'I':
		return parse_duration_opt(
		    arg, 1, INT64_MAX, &o->issuance_timeout_ms);
	default:
		return 1;
	}
}

/* The options that go together: required ones, --count vs --duration,
 * a --suffix that makes DNS names. 0 or -1 after saying why. */
static int
check_opts(struct opts *o, int extra_args)
{
	char err[128], *probe, *norm;

	if (extra_args || o->directory == NULL || o->trust == NULL) {
		fprintf(stderr,
		    "anvil-loadgen: --directory and --trust are "
		    "required\n");
		usage(stderr);
		return -1;
	}
	if (o->count > 0 && o->duration_ms > 0) {
		fprintf(stderr,
		    "anvil-loadgen: give --count or --duration, "
		    "not both\n");
		return -1;
	}
	if (o->count == 0 && o->duration_ms == 0)
		o->duration_ms = 10000;
	probe = xasprintf("a.%s", o->suffix);
	norm = ident_dns_normalize(probe, 0, err, sizeof(err));
	free(probe);
	if (norm == NULL) {
		fprintf(stderr, "anvil-loadgen: bad --suffix %s: %s\n",
		    o->suffix, err);
		return -1;
	}
	free(norm);
	return 0;
}

static const struct option longopts[] = {
    {"directory", required_argument, NULL, 'D'},
    {"trust", required_argument, NULL, 'T'},
    {"clients", required_argument, NULL, 'c'},
    {"duration", required_argument, NULL, 'd'},
    {"count", required_argument, NULL, 'n'},
    {"names", required_argument, NULL, 'k'},
    {"suffix", required_argument, NULL, 'S'},
    {"http-addr", required_argument, NULL, 'A'},
    {"http-port", required_argument, NULL, 'P'},
    {"no-responder", no_argument, NULL, 'N'},
    {"renew", no_argument, NULL, 'R'},
    {"poll", required_argument, NULL, 'p'},
    {"timeout", required_argument, NULL, 't'},
    {"issuance-timeout", required_argument, NULL, 'I'},
    {"key-pool", required_argument, NULL, 'K'},
    {"json", no_argument, NULL, 'j'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Says which option had the bad value arg. */
static void
report_bad_value(int ch, const char *arg)
{
	int i;

	for (i = 0; longopts[i].name != NULL; i++)
		if (longopts[i].val == ch)
			break;
	fprintf(stderr, "anvil-loadgen: bad value \"%s\" for --%s\n", arg,
	    longopts[i].name != NULL ? longopts[i].name : "?");
}

static int
parse_opts(int argc, char **argv, struct opts *o)
{
	int ch, r;

	while ((ch = getopt_long(argc, argv, "c:d:n:k:vh", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'N':
			o->no_responder = 1;
			break;
		case 'R':
			o->renew = 1;
			break;
		case 'j':
			o->json = 1;
			break;
		case 'v':
			o->verbose = 1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			r = parse_value_opt(ch, optarg, o);
			if (r < 0) {
				report_bad_value(ch, optarg);
				return -1;
			}
			if (r > 0) {
				usage(stderr);
				return -1;
			}
		}
	}
	return check_opts(o, optind != argc);
}

static double
cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* The worker threads of a run and what starts them. */
struct crew {
	struct lg_worker *workers; /* owned, `started` of them running */
	pthread_attr_t attr;
	int started;
	int barriers; /* run's barriers initialised */
	int attr_ok;  /* attr initialised */
};

/* Copies the options that drive the workers into run. */
static void
run_init(struct lg_run *run, const struct opts *o)
{
	memset(run, 0, sizeof(*run));
	run->clients = o->clients;
	run->names_per_order = o->names;
	run->suffix = o->suffix;
	run->count = o->count;
	run->duration_ms = o->duration_ms;
	run->poll_ms = (int)o->poll_ms;
	run->timeout_ms = (int)o->timeout_ms;
	run->issuance_timeout_ms = o->issuance_timeout_ms;
	run->verbose = o->verbose;
	run->renew = o->renew;
	atomic_init(&run->remaining, o->count);
	atomic_init(&run->key_seq, 0);
}

/* What the workers share: TLS trust, the directory, the http-01
 * responder, the key pool. 0, or -1 after logging why. */
static int
run_setup(struct lg_run *run, const struct opts *o)
{
	char err[512];

	run->ssl_ctx = lg_tls_ctx_new(o->trust, err, sizeof(err));
	if (run->ssl_ctx == NULL) {
		log_error("%s", err);
		return -1;
	}
	if (lg_fetch_directory(run, o->directory, err, sizeof(err)) != 0) {
		log_error("directory %s: %s", o->directory, err);
		return -1;
	}
	if (!o->no_responder) {
		run->responder = lg_responder_start(
		    o->http_addr, o->http_port, err, sizeof(err));
		if (run->responder == NULL) {
			log_error("%s", err);
			return -1;
		}
	}
	run->keys = lg_keypool_new(o->key_pool);
	if (run->keys == NULL) {
		log_error("cannot generate the certificate key pool");
		return -1;
	}
	return 0;
}

/* Frees what run_setup made. */
static void
run_clear(struct lg_run *run)
{
	lg_responder_stop(run->responder);
	lg_keypool_free(run->keys);
	lg_run_clear_directory(run);
	SSL_CTX_free(run->ssl_ctx);
}

/* Starts run->clients workers; they wait at run's ready barrier. 0, or
 * -1 after logging why (then nothing was started). */
static int
crew_start(struct crew *c, struct lg_run *run)
{
	int i;

	if (pthread_barrier_init(
		&run->ready_barrier, NULL, (unsigned)run->clients + 1) != 0 ||
	    pthread_barrier_init(
		&run->go_barrier, NULL, (unsigned)run->clients + 1) != 0) {
		log_error("pthread_barrier_init failed");
		return -1;
	}
	c->barriers = 1;
	if (pthread_attr_init(&c->attr) != 0 ||
	    pthread_attr_setstacksize(&c->attr, 512 * 1024) != 0) {
		log_error("pthread_attr failed");
		return -1;
	}
	c->attr_ok = 1;
	c->workers = xcalloc((size_t)run->clients, sizeof(*c->workers));
	for (i = 0; i < run->clients; i++) {
		c->workers[i].id = i;
		c->workers[i].run = run;
		if (pthread_create(&c->workers[i].thread, &c->attr,
			lg_worker_main, &c->workers[i]) != 0) {
			/* The barriers count every worker: cannot go on. */
			log_error("pthread_create failed after %d workers", i);
			abort();
		}
		c->started++;
	}
	return 0;
}

static void
barrier_wait(pthread_barrier_t *b)
{
	int brc = pthread_barrier_wait(b);

	if (brc != 0 && brc != PTHREAD_BARRIER_SERIAL_THREAD)
		abort();
}

/* Lets the started workers go once all are ready, waits for them, and
 * puts the setup/run times and the CPU used into sum. */
static void
crew_run(
    struct crew *c, struct lg_run *run, double t_setup, struct lg_summary *sum)
{
	double t_start, cpu0;
	int i;

	barrier_wait(&run->ready_barrier);
	t_start = (double)time_mono_ms();
	run->start_mono_ms = (int64_t)t_start;
	run->deadline_mono_ms = (int64_t)t_start + run->duration_ms;
	cpu0 = cpu_seconds();
	barrier_wait(&run->go_barrier);
	for (i = 0; i < c->started; i++)
		if (pthread_join(c->workers[i].thread, NULL) != 0)
			abort();
	sum->elapsed_s = ((double)time_mono_ms() - t_start) / 1000.0;
	sum->setup_s = (t_start - t_setup) / 1000.0;
	sum->loadgen_cpu_s = cpu_seconds() - cpu0;
}

/* Frees the workers and what crew_start made. */
static void
crew_clear(struct crew *c, struct lg_run *run)
{
	int i;

	for (i = 0; i < c->started; i++)
		lg_worker_clear(&c->workers[i]);
	free(c->workers);
	if (c->attr_ok && pthread_attr_destroy(&c->attr) != 0)
		log_bug("pthread_attr_destroy failed");
	if (c->barriers &&
	    (pthread_barrier_destroy(&run->ready_barrier) != 0 ||
		pthread_barrier_destroy(&run->go_barrier) != 0))
		log_bug("pthread_barrier_destroy failed");
}

/* Sums the workers' statistics into total and prints the report (JSON
 * or text). 0 when every issuance succeeded and at least one did. */
static int
report(const struct crew *c, const struct lg_run *run, const struct opts *o,
    struct lg_stats *total, struct lg_summary *sum)
{
	json_t *rep;
	int i;

	sum->directory = o->directory;
	sum->clients = o->clients;
	sum->names_per_order = o->names;
	sum->renew = o->renew;
	sum->http01_served = lg_responder_served(run->responder);
	for (i = 0; i < c->started; i++) {
		lg_stats_merge(total, &c->workers[i].stats);
		sum->connections += lg_conn_opened(c->workers[i].conn);
		sum->accounts_ok += c->workers[i].account_ok;
	}
	rep = lg_stats_json(total, sum);
	if (o->json) {
		if (json_dumpf(rep, stdout, JSON_INDENT(2)) != 0 ||
		    fputc('\n', stdout) == EOF)
			log_error("cannot write the report");
	} else {
		lg_stats_print(stdout, rep);
	}
	json_decref(rep);
	if (total->issued == 0 || json_object_size(total->failures) != 0)
		return 1;
	return 0;
}

int
main(int argc, char **argv)
{
	struct opts o = {.suffix = "loadgen.example",
	    .http_addr = "127.0.0.1",
	    .http_port = 5002,
	    .clients = 16,
	    .names = 1,
	    .poll_ms = 25,
	    .timeout_ms = 10000,
	    .issuance_timeout_ms = 60000,
	    .key_pool = 64};
	struct lg_run run;
	struct crew crew;
	struct lg_stats total;
	struct lg_summary sum;
	double t_setup;
	int rc = 2;

	memset(&run, 0, sizeof(run));
	memset(&crew, 0, sizeof(crew));
	memset(&sum, 0, sizeof(sum));
	lg_stats_init(&total);
	log_init("anvil-loadgen", LOG_LEVEL_INFO);
	/* A server that dies mid-request must cost one failed request, not
	 * the whole run. */
	signal(SIGPIPE, SIG_IGN);
	if (parse_opts(argc, argv, &o) != 0)
		goto out;
	run_init(&run, &o);
	if (run_setup(&run, &o) != 0)
		goto out;
	t_setup = (double)time_mono_ms();
	if (crew_start(&crew, &run) != 0)
		goto out;
	crew_run(&crew, &run, t_setup, &sum);
	rc = report(&crew, &run, &o, &total, &sum);
out:
	crew_clear(&crew, &run);
	lg_stats_clear(&total);
	run_clear(&run);
	if (fflush(stdout) != 0)
		rc = 2;
	return rc;
}
