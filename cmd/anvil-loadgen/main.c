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

static int
parse_opts(int argc, char **argv, struct opts *o)
{
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
	    {"poll", required_argument, NULL, 'p'},
	    {"timeout", required_argument, NULL, 't'},
	    {"issuance-timeout", required_argument, NULL, 'I'},
	    {"key-pool", required_argument, NULL, 'K'},
	    {"json", no_argument, NULL, 'j'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	char err[128], *probe = NULL, *norm = NULL;
	long v;
	int ch, bad_opt = 0;

	while ((ch = getopt_long(argc, argv, "c:d:n:k:vh", longopts, NULL)) !=
	    -1) {
		bad_opt = ch;
		switch (ch) {
		case 'D':
			o->directory = optarg;
			break;
		case 'T':
			o->trust = optarg;
			break;
		case 'S':
			o->suffix = optarg;
			break;
		case 'A':
			o->http_addr = optarg;
			break;
		case 'N':
			o->no_responder = 1;
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
		case 'c':
			if (parse_int(optarg, 1, 4096, &v) != 0)
				goto bad;
			o->clients = (int)v;
			break;
		case 'k':
			if (parse_int(optarg, 1, 100, &v) != 0)
				goto bad;
			o->names = (int)v;
			break;
		case 'P':
			if (parse_int(optarg, 1, 65535, &v) != 0)
				goto bad;
			o->http_port = (int)v;
			break;
		case 'K':
			if (parse_int(optarg, 1, 100000, &v) != 0)
				goto bad;
			o->key_pool = (int)v;
			break;
		case 'n':
			if (parse_int(optarg, 1, 1000000000L, &v) != 0)
				goto bad;
			o->count = v;
			break;
		case 'd':
			if (duration_parse_ms(optarg, &o->duration_ms) != 0 ||
			    o->duration_ms <= 0)
				goto bad;
			break;
		case 'p':
			if (duration_parse_ms(optarg, &o->poll_ms) != 0 ||
			    o->poll_ms < 0 || o->poll_ms > 60000)
				goto bad;
			break;
		case 't':
			if (duration_parse_ms(optarg, &o->timeout_ms) != 0 ||
			    o->timeout_ms <= 0 || o->timeout_ms > 3600000)
				goto bad;
			break;
		case 'I':
			if (duration_parse_ms(
				optarg, &o->issuance_timeout_ms) != 0 ||
			    o->issuance_timeout_ms <= 0)
				goto bad;
			break;
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind != argc || o->directory == NULL || o->trust == NULL) {
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
bad:
	for (ch = 0; longopts[ch].name != NULL; ch++)
		if (longopts[ch].val == bad_opt)
			break;
	fprintf(stderr, "anvil-loadgen: bad value \"%s\" for --%s\n", optarg,
	    longopts[ch].name != NULL ? longopts[ch].name : "?");
	return -1;
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
	struct lg_worker *workers = NULL;
	struct lg_stats total;
	struct lg_summary sum;
	pthread_attr_t attr;
	json_t *report = NULL;
	char err[512];
	double t_setup, t_start, cpu0 = 0;
	int i, started = 0, rc = 2, barriers = 0, attr_ok = 0, brc;

	memset(&run, 0, sizeof(run));
	memset(&sum, 0, sizeof(sum));
	lg_stats_init(&total);
	log_init("anvil-loadgen", LOG_LEVEL_INFO);
	/* A server that dies mid-request must cost one failed request, not
	 * the whole run. */
	signal(SIGPIPE, SIG_IGN);
	if (parse_opts(argc, argv, &o) != 0)
		goto out;
	run.clients = o.clients;
	run.names_per_order = o.names;
	run.suffix = o.suffix;
	run.count = o.count;
	run.duration_ms = o.duration_ms;
	run.poll_ms = (int)o.poll_ms;
	run.timeout_ms = (int)o.timeout_ms;
	run.issuance_timeout_ms = o.issuance_timeout_ms;
	run.verbose = o.verbose;
	atomic_init(&run.remaining, o.count);
	atomic_init(&run.key_seq, 0);
	run.ssl_ctx = lg_tls_ctx_new(o.trust, err, sizeof(err));
	if (run.ssl_ctx == NULL) {
		log_error("%s", err);
		goto out;
	}
	if (lg_fetch_directory(&run, o.directory, err, sizeof(err)) != 0) {
		log_error("directory %s: %s", o.directory, err);
		goto out;
	}
	if (!o.no_responder) {
		run.responder = lg_responder_start(
		    o.http_addr, o.http_port, err, sizeof(err));
		if (run.responder == NULL) {
			log_error("%s", err);
			goto out;
		}
	}
	run.keys = lg_keypool_new(o.key_pool);
	if (run.keys == NULL) {
		log_error("cannot generate the certificate key pool");
		goto out;
	}
	if (pthread_barrier_init(
		&run.ready_barrier, NULL, (unsigned)o.clients + 1) != 0 ||
	    pthread_barrier_init(
		&run.go_barrier, NULL, (unsigned)o.clients + 1) != 0) {
		log_error("pthread_barrier_init failed");
		goto out;
	}
	barriers = 1;
	if (pthread_attr_init(&attr) != 0 ||
	    pthread_attr_setstacksize(&attr, 512 * 1024) != 0) {
		log_error("pthread_attr failed");
		goto out;
	}
	attr_ok = 1;
	workers = xcalloc((size_t)o.clients, sizeof(*workers));
	t_setup = (double)time_mono_ms();
	for (i = 0; i < o.clients; i++) {
		workers[i].id = i;
		workers[i].run = &run;
		if (pthread_create(&workers[i].thread, &attr, lg_worker_main,
			&workers[i]) != 0) {
			/* The barriers count every worker: cannot go on. */
			log_error("pthread_create failed after %d workers", i);
			abort();
		}
		started++;
	}
	brc = pthread_barrier_wait(&run.ready_barrier);
	if (brc != 0 && brc != PTHREAD_BARRIER_SERIAL_THREAD)
		abort();
	t_start = (double)time_mono_ms();
	run.start_mono_ms = (int64_t)t_start;
	run.deadline_mono_ms = (int64_t)t_start + o.duration_ms;
	cpu0 = cpu_seconds();
	brc = pthread_barrier_wait(&run.go_barrier);
	if (brc != 0 && brc != PTHREAD_BARRIER_SERIAL_THREAD)
		abort();
	for (i = 0; i < started; i++)
		if (pthread_join(workers[i].thread, NULL) != 0)
			abort();
	sum.elapsed_s = ((double)time_mono_ms() - t_start) / 1000.0;
	sum.setup_s = (t_start - t_setup) / 1000.0;
	sum.loadgen_cpu_s = cpu_seconds() - cpu0;
	sum.directory = o.directory;
	sum.clients = o.clients;
	sum.names_per_order = o.names;
	sum.http01_served = lg_responder_served(run.responder);
	for (i = 0; i < started; i++) {
		lg_stats_merge(&total, &workers[i].stats);
		sum.connections += lg_conn_opened(workers[i].conn);
		sum.accounts_ok += workers[i].account_ok;
	}
	report = lg_stats_json(&total, &sum);
	if (o.json) {
		if (json_dumpf(report, stdout, JSON_INDENT(2)) != 0 ||
		    fputc('\n', stdout) == EOF)
			log_error("cannot write the report");
	} else {
		lg_stats_print(stdout, report);
	}
	rc = total.issued > 0 && json_object_size(total.failures) == 0 ? 0 : 1;
out:
	for (i = 0; i < started; i++)
		lg_worker_clear(&workers[i]);
	free(workers);
	if (attr_ok && pthread_attr_destroy(&attr) != 0)
		log_bug("pthread_attr_destroy failed");
	if (barriers &&
	    (pthread_barrier_destroy(&run.ready_barrier) != 0 ||
		pthread_barrier_destroy(&run.go_barrier) != 0))
		log_bug("pthread_barrier_destroy failed");
	json_decref(report);
	lg_stats_clear(&total);
	lg_responder_stop(run.responder);
	lg_keypool_free(run.keys);
	lg_run_clear_directory(&run);
	SSL_CTX_free(run.ssl_ctx);
	if (fflush(stdout) != 0)
		rc = 2;
	return rc;
}
