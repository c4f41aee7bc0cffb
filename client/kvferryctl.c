/*
 * client/kvferryctl.c - the operator's command line: asks a kvferryd over
 * its control URL (nng req0, kvf.ctl.Request/Reply) and prints the answer
 * as text or JSON.
 *
 * Every call is bounded by one deadline (-t, default 3000 ms): the dial
 * runs in the background while the request waits for a connection, and
 * the reply wait gets what is left. A sidecar that is not there, or does
 * not answer in time, exits 2 with a message naming the URL; an error
 * answered by the sidecar exits 3 with its message.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "client/kvferry.h"
#include "client/kvferryctl.h"
#include "proto/version.h"

#define DEFAULT_URL "ipc:///run/kvferry/control.sock"
#define DEFAULT_TIMEOUT_MS 3000

static const struct ctl_cmd *const cmds[] = {
	&ctl_cmd_status,
	&ctl_cmd_objects,
	&ctl_cmd_engines,
	&ctl_cmd_regions,
	&ctl_cmd_peers,
	&ctl_cmd_xfers,
	&ctl_cmd_stats,
	&ctl_cmd_drain,
	&ctl_cmd_undrain,
	&ctl_cmd_log_level,
};
#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

static void usage(FILE *f)
{
	fprintf(f,
	    "usage: kvferryctl [-u URL] [-t MS] [-o text|json] COMMAND [ARGS]\n"
	    "\n"
	    "Ask a kvferry sidecar over its control URL.\n"
	    "\n"
	    "  -u, --url URL       control URL, ipc:///path or tcp://host:port\n"
	    "                      (env KVFERRY_CONTROL_URL, default %s)\n"
	    "  -t, --timeout MS    give up after MS milliseconds\n"
	    "                      (env KVFERRY_CTL_TIMEOUT_MS, default %d)\n"
	    "  -o, --output FMT    text (default) or json\n"
	    "  -h, --help          this help\n"
	    "  -V, --version       kvferryctl's version\n"
	    "\n"
	    "Commands:\n", DEFAULT_URL, DEFAULT_TIMEOUT_MS);
	for (size_t i = 0; i < NCMDS; i++) {
		char lhs[64];
		snprintf(lhs, sizeof(lhs), "%s %s", cmds[i]->name,
		    cmds[i]->args);
		fprintf(f, "  %-30s  %s\n", lhs, cmds[i]->help);
	}
	fprintf(f,
	    "\n"
	    "Exit status: 0 ok, 1 usage error, 2 sidecar unreachable or no "
	    "answer in time,\n3 the sidecar answered with an error, 4 drain "
	    "timed out with transfers still in flight.\n");
}

void ctl_json_quote(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

void ctl_json_begin(struct ctl_json *j, FILE *f)
{
	j->f = f;
	j->n = 0;
	fputc('{', f);
}

void ctl_json_key(struct ctl_json *j, const char *k)
{
	if (j->n++)
		fputc(',', j->f);
	if (!k)
		return; /* an array element */
	ctl_json_quote(j->f, k);
	fputc(':', j->f);
}

void ctl_json_str(struct ctl_json *j, const char *k, const char *val)
{
	ctl_json_key(j, k);
	ctl_json_quote(j->f, val ? val : "");
}

void ctl_json_u64(struct ctl_json *j, const char *k, uint64_t val)
{
	ctl_json_key(j, k);
	fprintf(j->f, "%llu", (unsigned long long)val);
}

void ctl_json_end(struct ctl_json *j)
{
	fputs("}\n", j->f);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int parse_timeout(const char *s, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (s[0] < '0' || s[0] > '9' || *end || errno || v < 1 ||
	    v > 3600000)
		return -1;
	*out = (int)v;
	return 0;
}

/*
 * Send req to url and wait for the reply within timeout_ms. Returns
 * CTL_EXIT_OK with *out set, or CTL_EXIT_UNREACHABLE / CTL_EXIT_USAGE
 * with the reason in err.
 */
static int call(const char *url, int timeout_ms, const Kvf__Ctl__Request *req,
                Kvf__Ctl__Reply **out, char *err, size_t errlen)
{
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms, now;
	nng_socket s;
	nng_msg *m;
	struct stat st;
	size_t n;
	int rv;

	if (strncmp(url, "ipc://", 6) == 0 && stat(url + 6, &st) != 0) {
		snprintf(err, errlen, "no control socket at %s: %s (is kvferryd "
		    "running? pick its URL with -u or KVFERRY_CONTROL_URL)",
		    url + 6, strerror(errno));
		return CTL_EXIT_UNREACHABLE;
	}
	if ((rv = nng_req0_open(&s)) != 0) {
		snprintf(err, errlen, "nng_req0_open() failed: %s",
		    nng_strerror(rv));
		return CTL_EXIT_UNREACHABLE;
	}
	nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, 4u * KVF_MAX_CONTROL_MSG);
	/* Retry a refused connection quickly: the deadline bounds it. */
	nng_socket_set_ms(s, NNG_OPT_RECONNMINT, 20);
	nng_socket_set_ms(s, NNG_OPT_RECONNMAXT, 200);
	/* Never resend within our deadline: a control request is not always
	 * idempotent. */
	nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, timeout_ms + 1000);
	rv = nng_dial(s, url, NULL, NNG_FLAG_NONBLOCK);
	if (rv != 0) {
		snprintf(err, errlen, "cannot dial %s: %s", url,
		    nng_strerror(rv));
		nng_close(s);
		return rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP ?
		    CTL_EXIT_USAGE : CTL_EXIT_UNREACHABLE;
	}
	n = kvf__ctl__request__get_packed_size(req);
	if ((rv = nng_msg_alloc(&m, n)) != 0) {
		snprintf(err, errlen, "out of memory");
		nng_close(s);
		return CTL_EXIT_UNREACHABLE;
	}
	kvf__ctl__request__pack(req, nng_msg_body(m));
	nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, timeout_ms);
	if ((rv = nng_sendmsg(s, m, 0)) != 0) {
		nng_msg_free(m);
		goto unreachable;
	}
	now = now_ms();
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO,
	    now >= deadline ? 1 : (nng_duration)(deadline - now));
	if ((rv = nng_recvmsg(s, &m, 0)) != 0)
		goto unreachable;
	*out = kvf__ctl__reply__unpack(NULL, nng_msg_len(m), nng_msg_body(m));
	n = nng_msg_len(m);
	nng_msg_free(m);
	nng_close(s);
	if (!*out) {
		snprintf(err, errlen, "the reply from %s (%zu bytes) does not "
		    "decode as kvf.ctl.Reply", url, n);
		return CTL_EXIT_ERROR;
	}
	return CTL_EXIT_OK;

unreachable:
	if (rv == NNG_ETIMEDOUT)
		snprintf(err, errlen, "no answer from %s within %d ms (is "
		    "kvferryd running there? raise -t for a slow link)", url,
		    timeout_ms);
	else
		snprintf(err, errlen, "talking to %s failed: %s", url,
		    nng_strerror(rv));
	nng_close(s);
	return CTL_EXIT_UNREACHABLE;
}

int ctl_request(const struct ctl_conn *c, const char *name,
                Kvf__Ctl__Request *req, Kvf__Ctl__Reply__BodyCase want,
                Kvf__Ctl__Reply **out)
{
	Kvf__Ctl__Reply *rep = NULL;
	char err[1024];
	int rv;

	req->proto_version = KVF_CTL_PROTO_VERSION;
	if ((rv = call(c->url, c->timeout_ms, req, &rep, err,
	         sizeof(err))) != 0) {
		fprintf(stderr, "kvferryctl: %s\n", err);
		return rv;
	}
	if (rep->proto_version != KVF_CTL_PROTO_VERSION) {
		fprintf(stderr, "kvferryctl: the sidecar at %s speaks control "
		    "protocol version %u, this kvferryctl (kvferry %s) speaks "
		    "version %u\n", c->url, rep->proto_version,
		    KVF_VERSION_STRING, KVF_CTL_PROTO_VERSION);
	} else if (rep->body_case == KVF__CTL__REPLY__BODY_ERROR) {
		const Kvf__Error *e = rep->error;
		fprintf(stderr, "kvferryctl: %s: the sidecar at %s refused: %s "
		    "(%s, code %u)\n", name, c->url, e->message,
		    kvf_strerror((int)e->code), e->code);
	} else if (rep->body_case != want) {
		fprintf(stderr, "kvferryctl: %s: the sidecar at %s answered "
		    "with reply kind %d, expected %d\n", name, c->url,
		    (int)rep->body_case, (int)want);
	} else {
		*out = rep;
		return CTL_EXIT_OK;
	}
	kvf__ctl__reply__free_unpacked(rep, NULL);
	return CTL_EXIT_ERROR;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "timeout", required_argument, NULL, 't' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	Kvf__Ctl__Request req = KVF__CTL__REQUEST__INIT;
	const struct ctl_cmd *cmd = NULL;
	const char *url = getenv("KVFERRY_CONTROL_URL");
	const char *env_to = getenv("KVFERRY_CTL_TIMEOUT_MS");
	Kvf__Ctl__Reply *rep = NULL;
	struct ctl_conn conn;
	int timeout_ms = DEFAULT_TIMEOUT_MS, json = 0, c, rv;
	char err[1024];

	if (!url || !url[0])
		url = DEFAULT_URL;
	if (env_to && parse_timeout(env_to, &timeout_ms) != 0) {
		fprintf(stderr, "kvferryctl: KVFERRY_CTL_TIMEOUT_MS '%s': must "
		    "be milliseconds in 1..3600000\n", env_to);
		return CTL_EXIT_USAGE;
	}
	/* "+": options end at the command; its own arguments follow. */
	while ((c = getopt_long(argc, argv, "+u:t:o:hV", lopts, NULL)) != -1) {
		switch (c) {
		case 'u':
			url = optarg;
			break;
		case 't':
			if (parse_timeout(optarg, &timeout_ms) != 0) {
				fprintf(stderr, "kvferryctl: -t '%s': must be "
				    "milliseconds in 1..3600000\n", optarg);
				return CTL_EXIT_USAGE;
			}
			break;
		case 'o':
			if (strcmp(optarg, "json") == 0)
				json = 1;
			else if (strcmp(optarg, "text") == 0)
				json = 0;
			else {
				fprintf(stderr, "kvferryctl: -o '%s': must be "
				    "text or json\n", optarg);
				return CTL_EXIT_USAGE;
			}
			break;
		case 'h':
			usage(stdout);
			return CTL_EXIT_OK;
		case 'V':
			printf("kvferryctl %s (control protocol %u)\n",
			    KVF_VERSION_STRING, KVF_CTL_PROTO_VERSION);
			return CTL_EXIT_OK;
		default:
			usage(stderr);
			return CTL_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "kvferryctl: no command given\n");
		usage(stderr);
		return CTL_EXIT_USAGE;
	}
	for (size_t i = 0; i < NCMDS; i++)
		if (strcmp(argv[optind], cmds[i]->name) == 0)
			cmd = cmds[i];
	if (!cmd) {
		fprintf(stderr, "kvferryctl: unknown command '%s' (see "
		    "kvferryctl --help)\n", argv[optind]);
		return CTL_EXIT_USAGE;
	}
	if (strncmp(url, "ipc://", 6) != 0 && strncmp(url, "tcp://", 6) != 0) {
		fprintf(stderr, "kvferryctl: control URL '%s': must be "
		    "ipc:///path or tcp://host:port\n", url);
		return CTL_EXIT_USAGE;
	}
	conn.url = url;
	conn.timeout_ms = timeout_ms;
	conn.json = json;
	/* Commands that talk more than once (stats, drain) run themselves. */
	if (cmd->run) {
		rv = cmd->run(&conn, argc - optind, argv + optind, stdout);
		return rv == CTL_EXIT_OK && fflush(stdout) != 0 ?
		    CTL_EXIT_ERROR : rv;
	}
	if ((rv = cmd->build(&req, argc - optind, argv + optind, err,
	         sizeof(err))) != 0) {
		fprintf(stderr, "kvferryctl: %s\n", err);
		return rv;
	}
	if ((rv = ctl_request(&conn, cmd->name, &req, cmd->reply, &rep)) != 0)
		return rv;
	cmd->print(rep, json, stdout);
	rv = fflush(stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_ERROR;
	kvf__ctl__reply__free_unpacked(rep, NULL);
	return rv;
}
