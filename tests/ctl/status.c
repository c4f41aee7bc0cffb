/* kvferryctl status against a real kvferryd: text, JSON checked with jq,
 * ipc and tcp control URLs, the environment's URL, usage errors and a
 * bounded failure when no sidecar is there. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/tap/proc.h"
#include "tests/tap/tap.h"

static int have_jq(void)
{
	return access("/usr/bin/jq", X_OK) == 0 ||
	    access("/usr/local/bin/jq", X_OK) == 0;
}

static const char *jq_path(void)
{
	return access("/usr/bin/jq", X_OK) == 0 ? "/usr/bin/jq" :
	    "/usr/local/bin/jq";
}

/* Save s to a file and run jq -e expr on it; 1 when jq says true. */
static int jq_true(const char *json, const char *expr)
{
	char path[320];
	struct tp_run r;
	FILE *f;
	int good;

	snprintf(path, sizeof(path), "%s/status.json", tp_tmpdir());
	f = fopen(path, "w");
	if (!f)
		return 0;
	fputs(json, f);
	fclose(f);
	{
		const char *argv[] = { jq_path(), "-e", expr, path, NULL };
		if (tp_run(&r, 5000, NULL, argv) != 0)
			return 0;
	}
	good = r.status == 0;
	if (!good)
		diag("jq -e '%s': %d %s %s", expr, r.status, r.out, r.err);
	tp_run_free(&r);
	return good;
}

static int ctl(struct tp_run *r, const char *const *env, const char *a1,
               const char *a2, const char *a3, const char *a4,
               const char *a5, const char *a6)
{
	const char *argv[] = { tp_bin("kvferryctl"), a1, a2, a3, a4, a5, a6,
		NULL };
	return tp_run(r, 10000, env, argv);
}

int main(void)
{
	struct tp_daemon d, t;
	struct tp_run r;
	char want[512], expr[1024], *log, provider[64] = "";
	long up1 = -1, up2 = -1;

	plan(26);
	if (tp_daemon_start(&d, "d", NULL, NULL) != 0)
		bail("kvferryd did not start");

	/* Text. */
	ctl(&r, NULL, "-u", d.control_url, "status", NULL, NULL, NULL);
	is_int(r.status, 0, "status (text) exits 0");
	like(r.out, "version:             0.", "text: version");
	snprintf(want, sizeof(want), "engine socket:       %s\n",
	    d.engine_socket);
	like(r.out, want, "text: engine socket");
	snprintf(want, sizeof(want), "peer url:            %s\n", d.peer_url);
	like(r.out, want, "text: peer url");
	snprintf(want, sizeof(want), "pid:                 %d\n", (int)d.pid);
	like(r.out, want, "text: pid");
	like(r.out, "engines:             0\n", "text: engine count");
	{
		const char *p = strstr(r.out, "provider:");
		ok(p && sscanf(p, "provider: %63s", provider) == 1 &&
		        strcmp(provider, "-") != 0,
		    "text: a provider was chosen (%s)", provider);
	}
	tp_run_free(&r);
	log = tp_daemon_log(&d);
	snprintf(want, sizeof(want), "fabric: rail 0: provider %s,", provider);
	like(log, want, "text: the provider is the one the daemon logged");
	free(log);

	/* JSON, through the environment's URL. */
	snprintf(want, sizeof(want), "KVFERRY_CONTROL_URL=%s", d.control_url);
	{
		const char *env[] = { want, NULL };
		ctl(&r, env, "-o", "json", "status", NULL, NULL, NULL);
	}
	is_int(r.status, 0, "status -o json via KVFERRY_CONTROL_URL exits 0");
	if (!have_jq()) {
		skip(6, "jq is not installed");
	} else {
		ok(jq_true(r.out, "type == \"object\""), "json: parses");
		snprintf(expr, sizeof(expr),
		    ".engine_socket == \"%s\" and .control_url == \"%s\" and "
		    ".peer_url == \"%s\" and .pid == %d",
		    d.engine_socket, d.control_url, d.peer_url, (int)d.pid);
		ok(jq_true(r.out, expr), "json: addresses and pid");
		snprintf(expr, sizeof(expr), ".provider == \"%s\" and "
		    "(.fabric | length) > 0 and (.domain | length) > 0",
		    provider);
		ok(jq_true(r.out, expr), "json: provider, fabric, domain");
		ok(jq_true(r.out, "[.engines, .peers, .regions, "
		    ".xfers_in_flight, .xfers_total, .xfers_failed, "
		    ".bytes_total] == [0,0,0,0,0,0,0]"),
		    "json: counters all zero on an idle sidecar");
		ok(jq_true(r.out, "(.version | test(\"^[0-9]+\\\\.[0-9]+\")) "
		    "and (.sidecar_id | test(\"^[0-9a-f]{32}$\")) and "
		    "(.uptime_ms | type) == \"number\""),
		    "json: version, sidecar id, uptime");
		ok(jq_true(r.out, "keys_unsorted | length == 19"),
		    "json: 19 keys");
		ok(jq_true(r.out, ".rails | length == 1 and .[0].index == 0 "
		    "and .[0].bytes == 0 and (.[0].domain | length > 0)"),
		    "json: one rail, idle, with its NIC named");
	}
	{
		const char *p = strstr(r.out, "\"uptime_ms\":");
		if (p)
			up1 = atol(p + 12);
	}
	tp_run_free(&r);
	usleep(120000);
	ctl(&r, NULL, "-u", d.control_url, "-o", "json", "status", NULL);
	{
		const char *p = strstr(r.out, "\"uptime_ms\":");
		if (p)
			up2 = atol(p + 12);
	}
	ok(up1 >= 0 && up2 >= up1 + 100, "uptime grows (%ld -> %ld ms)", up1,
	    up2);
	tp_run_free(&r);

	/* Usage errors exit 1. */
	ctl(&r, NULL, "-u", d.control_url, "-o", "xml", "status", NULL);
	ok(r.status == 1 && strstr(r.err, "-o 'xml'"), "-o xml: exit 1");
	tp_run_free(&r);
	ctl(&r, NULL, "-u", d.control_url, "frobnicate", NULL, NULL, NULL);
	ok(r.status == 1 && strstr(r.err, "unknown command 'frobnicate'"),
	    "unknown command: exit 1");
	tp_run_free(&r);
	ctl(&r, NULL, "-t", "0", "status", NULL, NULL, NULL);
	ok(r.status == 1 && strstr(r.err, "-t '0'"), "-t 0: exit 1");
	tp_run_free(&r);
	ctl(&r, NULL, "-u", "http://x:1", "status", NULL, NULL, NULL);
	ok(r.status == 1 && strstr(r.err, "must be ipc:///path or"),
	    "bad URL: exit 1");
	tp_run_free(&r);

	/* Nobody there: exit 2, bounded. */
	{
		char url[64];
		snprintf(url, sizeof(url), "tcp://127.0.0.1:%d",
		    tp_free_port());
		ctl(&r, NULL, "-u", url, "-t", "400", "status", NULL);
		ok(r.status == 2 && strstr(r.err, "no answer from") &&
		        r.ms < 3000,
		    "nothing on a tcp port: exit 2 after %ld ms", r.ms);
		tp_run_free(&r);
	}
	{
		/* Something accepts connections but never speaks nng. */
		struct sockaddr_in sa = { 0 };
		socklen_t len = sizeof(sa);
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		char url[64];
		sa.sin_family = AF_INET;
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (fd < 0 || bind(fd, (void *)&sa, sizeof(sa)) != 0 ||
		    listen(fd, 4) != 0 ||
		    getsockname(fd, (void *)&sa, &len) != 0)
			bail("cannot listen");
		snprintf(url, sizeof(url), "tcp://127.0.0.1:%d",
		    ntohs(sa.sin_port));
		ctl(&r, NULL, "-u", url, "-t", "700", "status", NULL);
		ok(r.status == 2 && r.ms >= 600 && r.ms < 4000,
		    "a silent listener: exit 2 after %ld ms (limit 700)", r.ms);
		tp_run_free(&r);
		close(fd);
	}
	{
		/* The default limit is a few seconds, not forever. */
		char url[64];
		snprintf(url, sizeof(url), "tcp://127.0.0.1:%d",
		    tp_free_port());
		ctl(&r, NULL, "-u", url, "status", NULL, NULL, NULL);
		ok(r.status == 2 && r.ms < 6000,
		    "default limit: exit 2 after %ld ms", r.ms);
		tp_run_free(&r);
	}

	if (tp_daemon_stop(&d, SIGTERM, 10000) != 0)
		diag("kvferryd d needed SIGKILL");
	ctl(&r, NULL, "-u", d.control_url, "status", NULL, NULL, NULL);
	if (!ok(r.status == 2 && strstr(r.err, "no control socket at") &&
	            strstr(r.err, d.control_url + 6),
	        "after shutdown: exit 2 naming the socket")) {
		diag("kvferryctl exit %d: %s", r.status, r.err);
		log = tp_daemon_log(&d);
		diag("kvferryd log: %s", log);
		free(log);
	}
	tp_run_free(&r);

	/* A tcp:// control URL. */
	{
		char url[64];
		const char *args[] = { "--control-url", url, NULL };
		snprintf(url, sizeof(url), "tcp://127.0.0.1:%d",
		    tp_free_port());
		/* The defaults plus a tcp control URL: the later flag
		 * wins. Run after d stopped: two sidecars that both picked
		 * shm on one fabric address collide in fi_enable. */
		if (tp_daemon_start(&t, "t", args, NULL) != 0) {
			ok(0, "daemon with a tcp control URL starts");
		} else {
			ctl(&r, NULL, "-u", url, "status", NULL, NULL, NULL);
			if (!ok(r.status == 0 && strstr(r.out, url),
			        "status over tcp:// answers"))
				diag("kvferryctl exit %d: %s", r.status, r.err);
			tp_run_free(&r);
			tp_daemon_stop(&t, SIGTERM, 10000);
		}
	}

	return tap_exit_status();
}
