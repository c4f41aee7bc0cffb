/* kvferryd options: every bad flag and every bad KVFERRY_* value refused
 * with a message naming it; start-up errors (directory, port in use,
 * provider); flags override the environment; --help and --version. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/tap/proc.h"
#include "tests/tap/tap.h"

struct bad {
	const char *opt;   /* flag, or env var when env is set */
	const char *value;
	const char *want;  /* in the message, after "<opt> '<value>': " */
};

static const char *const flag_env[][2] = {
	{ "--engine-socket", "KVFERRY_ENGINE_SOCKET" },
	{ "--control-url", "KVFERRY_CONTROL_URL" },
	{ "--peer-url", "KVFERRY_PEER_URL" },
	{ "--advertise-url", "KVFERRY_ADVERTISE_URL" },
	{ "--provider", "KVFERRY_PROVIDER" },
	{ "--fabric-addr", "KVFERRY_FABRIC_ADDR" },
	{ "--log-level", "KVFERRY_LOG_LEVEL" },
	{ "--log-format", "KVFERRY_LOG_FORMAT" },
	{ "--xfer-timeout-ms", "KVFERRY_XFER_TIMEOUT_MS" },
	{ "--handshake-timeout-ms", "KVFERRY_HANDSHAKE_TIMEOUT_MS" },
	{ "--heartbeat-ms", "KVFERRY_HEARTBEAT_MS" },
	{ "--secret-file", "KVFERRY_SECRET_FILE" },
	{ "--socket-mode", "KVFERRY_SOCKET_MODE" },
	{ "--socket-group", "KVFERRY_SOCKET_GROUP" },
	{ "--metrics-url", "KVFERRY_METRICS_URL" },
	{ "--rails", "KVFERRY_RAILS" },
	{ "--stripe-min", "KVFERRY_STRIPE_MIN" },
	{ "--stripe-chunk", "KVFERRY_STRIPE_CHUNK" },
	{ "--inline-max", "KVFERRY_INLINE_MAX" },
	{ "--poll-spin-us", "KVFERRY_POLL_SPIN_US" },
};
#define NOPTS (sizeof(flag_env) / sizeof(flag_env[0]))

/* One bad value per option, each refused for a reason we can name. */
static const struct bad bads[NOPTS] = {
	{ "--engine-socket", "", "must not be empty" },
	{ "--control-url", "http://127.0.0.1:1", "must be ipc:///path or" },
	{ "--peer-url", "tcp://127.0.0.1:99999", "port '99999' is not a number in 1..65535" },
	{ "--advertise-url", "tcp://0.0.0.0:18515", "must name a host peers can reach, not a wildcard" },
	{ "--provider", "tcp ofi", "' ' cannot appear in a provider name" },
	{ "--fabric-addr", "tcp://10.0.0.1:1", "must be a host name or address (or a comma-separated list of them, one rail each), not a URL" },
	{ "--log-level", "loud", "must be error, warn, info or debug" },
	{ "--log-format", "xml", "must be text or json" },
	{ "--xfer-timeout-ms", "0", "must be a whole number of milliseconds in 1..3600000" },
	{ "--handshake-timeout-ms", "5s", "must be a whole number of milliseconds in 1..600000" },
	{ "--heartbeat-ms", "-1", "must be a whole number of milliseconds in 1..600000" },
	{ "--secret-file", "/nonexistent/kvf-secret", "cannot read it" },
	{ "--socket-mode", "0999", "must be octal permission bits" },
	{ "--socket-group", "kvf-no-such-group", "no such group" },
	{ "--metrics-url", "ftp://x:1", "must start with http://" },
	{ "--rails", "33", "must be a count in 1..32, all, or NIC (fabric domain) names" },
	{ "--stripe-min", "lots", "must be a number of bytes, optionally with a K, M, G or T suffix" },
	{ "--stripe-chunk", "1K", "must be at least 4K" },
	{ "--inline-max", "65537", "must be at most 64K" },
	{ "--poll-spin-us", "-5", "must be microseconds in 0..1000000" },
};

static const char *env_of(const char *flag)
{
	for (size_t i = 0; i < NOPTS; i++)
		if (strcmp(flag_env[i][0], flag) == 0)
			return flag_env[i][1];
	return NULL;
}

static int exit_code(const struct tp_daemon *d)
{
	return WIFEXITED(d->status) ? WEXITSTATUS(d->status) : 128;
}

/* Run kvferryd to its end (it must refuse to start); return its log. */
static char *refused(const char *name, const char *const *args,
                     const char *const *env, int want_code)
{
	struct tp_daemon d;
	char *log;

	if (tp_daemon_spawn(&d, name, args, env) != 0)
		bail("cannot spawn kvferryd");
	if (tp_daemon_wait(&d, 10000) != 0) {
		tp_daemon_stop(&d, SIGKILL, 1000);
		ok(0, "%s: kvferryd exits by itself", name);
		return tp_daemon_log(&d);
	}
	log = tp_daemon_log(&d);
	if (!ok(exit_code(&d) == want_code, "%s: exit status %d", name,
	        want_code))
		diag("exit %d, log: %s", exit_code(&d), log);
	return log;
}

int main(void)
{
	char name[64], want[1024], envbuf[400], *log;
	struct tp_run r;

	plan(2 * 2 * (int)NOPTS + 23);

	for (size_t i = 0; i < NOPTS; i++) {
		const char *args[] = { bads[i].opt, bads[i].value, NULL };
		snprintf(name, sizeof(name), "flag%zu", i);
		log = refused(name, args, NULL, 2);
		snprintf(want, sizeof(want), "%s '%s': %s", bads[i].opt,
		    bads[i].value, bads[i].want);
		like(log, want, "bad %s refused with its reason", bads[i].opt);
		free(log);
	}
	for (size_t i = 0; i < NOPTS; i++) {
		const char *env[] = { envbuf, NULL };
		const char *var = env_of(bads[i].opt);
		snprintf(envbuf, sizeof(envbuf), "%s=%s", var, bads[i].value);
		snprintf(name, sizeof(name), "env%zu", i);
		log = refused(name, NULL, env, 2);
		snprintf(want, sizeof(want), "%s '%s': %s", var, bads[i].value,
		    bads[i].want);
		like(log, want, "bad %s refused with its reason", var);
		free(log);
	}

	/* Flags that are not options or lack their value. */
	{
		const char *a1[] = { "--bogus", NULL };
		const char *a2[] = { "--log-level", NULL };
		log = refused("unknown", a1, NULL, 2);
		like(log, "unknown option '--bogus'", "unknown flag refused");
		free(log);
		log = refused("novalue", a2, NULL, 2);
		like(log, "--log-level: needs a value", "missing value refused");
		free(log);
	}

	/* What only start-up can tell. */
	{
		const char *a[] = { "--engine-socket",
			"/nonexistent-kvf/deeper/engine.sock", NULL };
		log = refused("nodir", a, NULL, 1);
		like(log, "--engine-socket /nonexistent-kvf/deeper/engine.sock: "
		    "directory /nonexistent-kvf/deeper does not exist",
		    "socket directory missing: named");
		free(log);
	}
	{
		char file[300], sock[320];
		const char *a[] = { "--engine-socket", sock, NULL };
		FILE *f;
		snprintf(file, sizeof(file), "%s/plainfile", tp_tmpdir());
		snprintf(sock, sizeof(sock), "%s/engine.sock", file);
		f = fopen(file, "w");
		if (f)
			fclose(f);
		log = refused("notdir", a, NULL, 1);
		snprintf(want, sizeof(want), "%s is not a directory", file);
		like(log, want, "socket directory is a file: named");
		free(log);
	}
	{
		/* A directory we may not write: as root, run kvferryd as
		 * nobody through setpriv (root may write anywhere). */
		char ro[320], sock[360], ctl[400], peer[64];
		const char *argv[] = { "/usr/bin/setpriv", "--reuid=65534",
			"--regid=65534", "--clear-groups", tp_bin("kvferryd"),
			"--engine-socket", sock, "--control-url", ctl,
			"--peer-url", peer, NULL };
		const char *const *run = argv;
		snprintf(ro, sizeof(ro), "%s/readonly", tp_tmpdir());
		snprintf(sock, sizeof(sock), "%s/engine.sock", ro);
		snprintf(ctl, sizeof(ctl), "ipc://%s/ctl-ro.sock", tp_tmpdir());
		snprintf(peer, sizeof(peer), "tcp://127.0.0.1:%d",
		    tp_free_port());
		if (geteuid() != 0)
			run = argv + 4;
		if (mkdir(ro, 0555) != 0 || chmod(tp_tmpdir(), 0755) != 0 ||
		    (geteuid() == 0 && access(argv[0], X_OK) != 0)) {
			skip(1, "cannot set up a read-only directory");
		} else {
			tp_run(&r, 10000, NULL, run);
			snprintf(want, sizeof(want), "--engine-socket %s: "
			    "directory %s is not writable: Permission denied",
			    sock, ro);
			ok(r.status == 1 && strstr(r.err, want),
			    "socket directory not writable: named");
			if (r.status != 1 || !strstr(r.err, want))
				diag("exit %d: %s", r.status, r.err);
			tp_run_free(&r);
		}
		chmod(tp_tmpdir(), 0700);
	}
	{
		char sock[320];
		const char *e[] = { envbuf, NULL };
		FILE *f;
		snprintf(sock, sizeof(sock), "%s/regular.sock", tp_tmpdir());
		f = fopen(sock, "w");
		if (f)
			fclose(f);
		/* The env var is overridden by the default flags of the
		 * helper, so pass it raw. */
		snprintf(envbuf, sizeof(envbuf), "KVFERRY_ENGINE_SOCKET=%s",
		    sock);
		{
			struct tp_daemon d;
			char ctl[400], peer[64];
			const char *a[] = { "--control-url", ctl, "--peer-url",
				peer, NULL };
			snprintf(ctl, sizeof(ctl), "ipc://%s/ctl-regular.sock",
			    tp_tmpdir());
			snprintf(peer, sizeof(peer), "tcp://127.0.0.1:%d",
			    tp_free_port());
			tp_daemon_spawn_raw(&d, "regular", a, e);
			tp_daemon_wait(&d, 10000);
			log = tp_daemon_log(&d);
			snprintf(want, sizeof(want),
			    "KVFERRY_ENGINE_SOCKET %s: exists and is not a "
			    "socket", sock);
			ok(exit_code(&d) == 1 && strstr(log, want),
			    "a file in the socket's place is kept, refused");
			if (!strstr(log, want))
				diag("log: %s", log);
			free(log);
		}
	}
	{
		/* Port in use: hold a listening TCP socket. */
		struct sockaddr_in sa = { 0 };
		socklen_t len = sizeof(sa);
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		char url[64], ctl[128];
		sa.sin_family = AF_INET;
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (fd < 0 || bind(fd, (void *)&sa, sizeof(sa)) != 0 ||
		    listen(fd, 1) != 0 ||
		    getsockname(fd, (void *)&sa, &len) != 0)
			bail("cannot hold a TCP port");
		snprintf(url, sizeof(url), "tcp://127.0.0.1:%d",
		    ntohs(sa.sin_port));
		{
			const char *a[] = { "--peer-url", url, NULL };
			log = refused("peerbusy", a, NULL, 1);
			snprintf(want, sizeof(want),
			    "--peer-url %s: nng_listener_start() failed: "
			    "address in use", url);
			like(log, want, "peer port in use: named");
			free(log);
		}
		snprintf(ctl, sizeof(ctl), "KVFERRY_CONTROL_URL=%s", url);
		{
			/* The helper passes --control-url; run raw. */
			struct tp_daemon d;
			char sock[320], peer[64];
			const char *a[] = { "--engine-socket", sock,
				"--peer-url", peer, NULL };
			const char *e[] = { ctl, NULL };
			snprintf(sock, sizeof(sock), "%s/ctlbusy.sock",
			    tp_tmpdir());
			snprintf(peer, sizeof(peer), "tcp://127.0.0.1:%d",
			    tp_free_port());
			tp_daemon_spawn_raw(&d, "ctlbusy", a, e);
			tp_daemon_wait(&d, 10000);
			log = tp_daemon_log(&d);
			snprintf(want, sizeof(want),
			    "KVFERRY_CONTROL_URL %s: nng_listener_start() "
			    "failed: address in use", url);
			ok(exit_code(&d) == 1 && strstr(log, want),
			    "control port in use: named (env)");
			if (!strstr(log, want))
				diag("log: %s", log);
			free(log);
		}
		close(fd);
	}
	{
		const char *a[] = { "--provider", "kvfnosuchprov", NULL };
		const char *e[] = { "KVFERRY_PROVIDER=kvfnosuchprov", NULL };
		log = refused("prov", a, NULL, 1);
		like(log, "--provider 'kvfnosuchprov': xfer_fabric_open() failed",
		    "unknown provider (flag): named");
		free(log);
		log = refused("provenv", NULL, e, 1);
		like(log, "KVFERRY_PROVIDER 'kvfnosuchprov': xfer_fabric_open()",
		    "unknown provider (env): named");
		free(log);
	}
	{
		const char *a[] = { "--peer-url", "tcp://192.0.2.1:18515",
			NULL };
		log = refused("notlocal", a, NULL, 1);
		like(log, "--peer-url tcp://192.0.2.1:18515: "
		    "nng_listener_start() failed",
		    "peer address not on this host: named");
		free(log);
	}

	/* A flag wins over its variable; a good variable is used. */
	{
		const char *a[] = { "--log-format", "text", NULL };
		const char *e[] = { "KVFERRY_LOG_FORMAT=json",
			"KVFERRY_LOG_LEVEL=debug", NULL };
		struct tp_daemon d;
		if (tp_daemon_start(&d, "prec", a, e) != 0)
			bail("kvferryd prec did not start");
		tp_daemon_stop(&d, SIGTERM, 10000);
		log = tp_daemon_log(&d);
		ok(strstr(log, " INFO  kvferryd ready") && !strchr(log, '{'),
		    "--log-format text beats KVFERRY_LOG_FORMAT=json");
		like(log, " DEBUG ", "KVFERRY_LOG_LEVEL=debug is used");
		free(log);
	}

	/* --help and --version. */
	{
		const char *argv[] = { tp_bin("kvferryd"), "--help", NULL };
		int all = 1;
		tp_run(&r, 5000, NULL, argv);
		for (size_t i = 0; i < NOPTS; i++)
			if (!strstr(r.out, flag_env[i][0]) ||
			    !strstr(r.out, flag_env[i][1])) {
				diag("--help lacks %s", flag_env[i][0]);
				all = 0;
			}
		ok(r.status == 0 && all,
		    "--help exits 0 and lists every flag and variable");
		tp_run_free(&r);
	}
	{
		const char *argv[] = { tp_bin("kvferryd"), "--version", NULL };
		tp_run(&r, 5000, NULL, argv);
		ok(r.status == 0 && strncmp(r.out, "kvferryd 0.", 10) == 0,
		    "--version exits 0 and prints the version");
		tp_run_free(&r);
	}
	return tap_exit_status();
}
