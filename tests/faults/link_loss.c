/* Link loss: two network namespaces joined by a veth pair (10.200.x.y/30), one sidecar in each bound to its namespace address, engines on the shared filesystem; the link set down mid-transfer fails the pushes within their deadline, set up again new pushes work with bytes checked. Skips when not root or without netns; the namespaces are removed at exit, also on failure. */
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "tests/faults/common.h"

#define REGION (32u << 20)
#define DEADLINE_MS 3000

static char ns_a[32], ns_b[32], veth_a[16], veth_b[16];
static int ns_made;
static struct tp_daemon a, b;

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Run a command line; 0 when it exited 0. Output goes to the TAP diag. */
static int sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	struct tp_run r;
	const char *argv[] = {"/bin/sh", "-c", cmd, NULL};

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	if (tp_run(&r, 10000, NULL, argv) != 0)
		return -1;
	int rc = r.status;
	if (rc != 0)
		diag("%s: exit %d: %s", cmd, rc, r.err ? r.err : "");
	tp_run_free(&r);
	return rc;
}

static void cleanup_ns(void)
{
	/* Daemons first, so nothing keeps the namespaces alive. */
	if (a.pid > 0)
		tp_daemon_stop(&a, SIGKILL, 2000);
	if (b.pid > 0)
		tp_daemon_stop(&b, SIGKILL, 2000);
	if (ns_made) {
		sh("ip netns del %s 2>/dev/null; ip netns del %s 2>/dev/null; "
		   "true", ns_a, ns_b);
		ns_made = 0;
	}
}

static void on_signal(int sig)
{
	(void)sig;
	exit(1); /* runs cleanup_ns */
}

int main(void)
{
	struct kvf_connect_opts o = {0};
	kvf_client *pre = NULL, *dec = NULL;
	struct kvf_event ev;
	uint8_t *pbuf, *dbuf;
	kvf_region pr, dr;
	kvf_peer peer;
	kvf_xfer ids[4], x;
	char build[600], path[700], ip_a[32], ip_b[32], url_a[64], url_b[64];
	int net = (int)(getpid() % 60) * 4, port;

	if (geteuid() != 0)
		skip_all("not root: network namespaces need CAP_SYS_ADMIN");
	if (system("command -v ip >/dev/null 2>&1") != 0)
		skip_all("no ip(8) (iproute2) on this machine");
	snprintf(ns_a, sizeof ns_a, "kvfA%d", (int)getpid());
	snprintf(ns_b, sizeof ns_b, "kvfB%d", (int)getpid());
	snprintf(veth_a, sizeof veth_a, "kva%d", (int)getpid() % 100000);
	snprintf(veth_b, sizeof veth_b, "kvb%d", (int)getpid() % 100000);
	snprintf(ip_a, sizeof ip_a, "10.200.%d.%d", net / 256, net % 256 + 1);
	snprintf(ip_b, sizeof ip_b, "10.200.%d.%d", net / 256, net % 256 + 2);
	atexit(cleanup_ns);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGALRM, on_signal);
	alarm(120);
	ns_made = 1;
	if (sh("ip netns add %s && ip netns add %s", ns_a, ns_b) != 0) {
		ns_made = 1; /* remove whichever was made */
		cleanup_ns();
		skip_all("ip netns add failed (no netns support here?)");
	}
	if (sh("ip link add %s netns %s type veth peer name %s netns %s && "
	       "ip -n %s addr add %s/30 dev %s && "
	       "ip -n %s addr add %s/30 dev %s && "
	       "ip -n %s link set %s up && ip -n %s link set %s up && "
	       "ip -n %s link set lo up && ip -n %s link set lo up",
	       veth_a, ns_a, veth_b, ns_b, ns_a, ip_a, veth_a, ns_b, ip_b,
	       veth_b, ns_a, veth_a, ns_b, veth_b, ns_a, ns_b) != 0)
		skip_all("cannot make a veth pair between namespaces");

	plan(10);
	/* kvferryd through `ip netns exec`: a bin/ directory whose kvferryd
	 * enters $KVF_NETNS first. */
	const char *real = getenv("KVF_BUILD");
	if (!real)
		bail("KVF_BUILD is not set");
	snprintf(build, sizeof build, "%s/build", tp_tmpdir());
	snprintf(path, sizeof path, "%s/bin", build);
	mkdir(build, 0755);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/bin/kvferryd", build);
	{
		FILE *f = fopen(path, "w");
		if (!f)
			bail("cannot write %s", path);
		fprintf(f, "#!/bin/sh\nexec ip netns exec \"$KVF_NETNS\" "
		        "%s/bin/kvferryd \"$@\"\n", real);
		fclose(f);
		chmod(path, 0755);
		snprintf(path, sizeof path, "%s/bin/kvferryctl", build);
		char target[700];
		snprintf(target, sizeof target, "%s/bin/kvferryctl", real);
		if (symlink(target, path) != 0)
			bail("symlink %s", path);
	}
	setenv("KVF_BUILD", build, 1);

	port = tp_free_port();
	snprintf(url_a, sizeof url_a, "tcp://%s:%d", ip_a, port);
	snprintf(url_b, sizeof url_b, "tcp://%s:%d", ip_b, port);
	{
		char ea[64], eb[64];
		snprintf(ea, sizeof ea, "KVF_NETNS=%s", ns_a);
		snprintf(eb, sizeof eb, "KVF_NETNS=%s", ns_b);
		const char *env_a[] = {ea, NULL}, *env_b[] = {eb, NULL};
		const char *args_a[] = {"--provider", "tcp", "--fabric-addr",
		                        ip_a, "--peer-url", url_a,
		                        "--heartbeat-ms", "300", NULL};
		const char *args_b[] = {"--provider", "tcp", "--fabric-addr",
		                        ip_b, "--peer-url", url_b,
		                        "--heartbeat-ms", "300", NULL};
		if (tp_daemon_start(&a, "a", args_a, env_a) != 0 ||
		    tp_daemon_start(&b, "b", args_b, env_b) != 0)
			bail("sidecars did not start in the namespaces");
	}
	o.socket_path = a.engine_socket;
	if (kvf_connect("pre", &o, &pre) != 0 ||
	    kvf_alloc_host(pre, REGION, NULL, (void **)&pbuf, &pr) != 0)
		bail("pre: %s", kvf_last_error());
	o.socket_path = b.engine_socket;
	if (kvf_connect("dec", &o, &dec) != 0 ||
	    kvf_alloc_host(dec, REGION, NULL, (void **)&dbuf, &dr) != 0)
		bail("dec: %s", kvf_last_error());
	is_int(kvf_resolve_peer(pre, b.peer_url, "dec", 3000, &peer), 0,
	       "A resolves decode across the veth link (%s)", kvf_last_error());

	pattern(pbuf, 1 << 20, 1);
	struct kvf_seg s = {pr, dr, 0, 0, 1 << 20};
	struct kvf_xfer_opts xo = {.tag = "ok", .tag_len = 2,
	                           .timeout_ms = DEADLINE_MS};
	kvf_submit(pre, KVF_WRITE, peer, &s, 1, &xo, &x);
	ok(wait_type(dec, KVF_EV_NOTIF, 10000, &ev, NULL, NULL) == 1 &&
	   pattern_ok(dbuf, 1 << 20, 1), "a push crosses the link, bytes "
	   "checked");
	wait_type(pre, KVF_EV_XFER_DONE, 5000, &ev, NULL, NULL);

	/* Large pushes in flight, then the link goes down. */
	struct kvf_seg big[16];
	for (int i = 0; i < 16; i++)
		big[i] = (struct kvf_seg){pr, dr, 0, 0, REGION};
	for (int i = 0; i < 4; i++)
		kvf_submit(pre, KVF_WRITE, peer, big, 16, &xo, &ids[i]);
	usleep(100 * 1000);
	long t0 = now_ms();
	ok(sh("ip -n %s link set %s down", ns_a, veth_a) == 0,
	   "link set down");
	int seen = 0, bad = 0, late = 0;
	while (now_ms() - t0 < DEADLINE_MS + 5000 && seen < 4) {
		int n = 0;
		if (kvf_wait(pre, &ev, 1, 100, &n) != 0)
			break;
		if (!n || ev.type != KVF_EV_XFER_DONE)
			continue;
		seen++;
		if (ev.status != KVF_EPEER && ev.status != KVF_ETIMEDOUT &&
		    ev.status != 0)
			bad++;
		if (now_ms() - t0 > DEADLINE_MS + 1000)
			late++;
		diag("push %llu: %s after %ld ms", (unsigned long long)ev.xfer,
		     kvf_strerror(ev.status), now_ms() - t0);
	}
	is_int(seen, 4, "all four pushes ended");
	is_int(bad, 0, "with KVF_EPEER or KVF_ETIMEDOUT");
	is_int(late, 0, "within their %d ms deadline (+1 s)", DEADLINE_MS);

	ok(sh("ip -n %s link set %s up", ns_a, veth_a) == 0, "link set up");
	/* The heartbeats see the peer again; allow them a few rounds. */
	int okd = 0;
	t0 = now_ms();
	for (int i = 0; i < 40 && !okd; i++) {
		pattern(pbuf, 1 << 20, 100 + i);
		kvf_submit(pre, KVF_WRITE, peer, &s, 1, &xo, &x);
		if (wait_type(pre, KVF_EV_XFER_DONE, DEADLINE_MS + 2000, &ev,
		              NULL, NULL) == 1 && ev.status == 0)
			okd = 100 + i;
		else
			usleep(300 * 1000);
	}
	ok(okd, "after the link is back a new push completes (%ld ms)",
	   now_ms() - t0);
	{
		int found = 0;
		long t1 = now_ms();
		while (!found && now_ms() - t1 < 5000 &&
		       wait_type(dec, KVF_EV_NOTIF, 1000, &ev, NULL, NULL) == 1)
			found = pattern_ok(dbuf, 1 << 20, (uint32_t)okd);
		ok(found, "with its bytes in place");
	}
	kvf_close(pre);
	kvf_close(dec);
	/* Operations lost on the downed link may still be draining in the
	 * provider; a stop waits for them (bounded). */
	t0 = now_ms();
	int stopped = tp_daemon_stop(&a, SIGTERM, 15000) == 0 &&
	              tp_daemon_stop(&b, SIGTERM, 15000) == 0;
	ok(stopped, "both sidecars stop (%ld ms)", now_ms() - t0);
	a.pid = b.pid = 0;
	cleanup_ns();
	return tap_exit_status();
}
