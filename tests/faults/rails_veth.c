/* Rails over real links: two network namespaces joined by two veth pairs, a sidecar in each with one rail per pair (--fabric-addr a0,a1); a striped push, a striped pull and a spread of small pushes, with the bytes checked and the kernel's own counters of each veth showing that both links carried about half the data. Skips when not root or without netns; the namespaces are removed at exit, also on failure. */
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "tests/faults/common.h"

#define REGION (64u << 20)

static char ns_a[32], ns_b[32], veth[2][2][16];
static int ns_made;
static struct tp_daemon a, b;

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int sh(const char *fmt, ...)
{
	char cmd[768];
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

/* Bytes the kernel counted leaving a veth of namespace A. */
static long long tx_bytes(int link)
{
	char cmd[200];
	long long v = -1;
	FILE *p;

	snprintf(cmd, sizeof cmd, "ip netns exec %s cat "
	         "/sys/class/net/%s/statistics/tx_bytes", ns_a, veth[link][0]);
	if ((p = popen(cmd, "r"))) {
		if (fscanf(p, "%lld", &v) != 1)
			v = -1;
		pclose(p);
	}
	return v;
}

static const char *ip(int link, int side)
{
	static char buf[2][2][32];
	int net = (int)(getpid() % 60) * 4;

	snprintf(buf[link][side], sizeof buf[link][side], "10.%d.%d.%d",
	         210 + link, net / 256, net % 256 + 1 + side);
	return buf[link][side];
}

int main(void)
{
	struct kvf_connect_opts o = {0};
	kvf_client *pre = NULL, *dec = NULL;
	struct kvf_event ev;
	uint8_t *pbuf, *dbuf;
	kvf_region pr, dr;
	kvf_peer peer;
	kvf_xfer x;
	char build[600], path[700], url_a[64], url_b[64], fa[80], fb[80];
	int port;

	if (geteuid() != 0)
		skip_all("not root: network namespaces need CAP_SYS_ADMIN");
	if (system("command -v ip >/dev/null 2>&1") != 0)
		skip_all("no ip(8) (iproute2) on this machine");
	snprintf(ns_a, sizeof ns_a, "kvfRA%d", (int)getpid());
	snprintf(ns_b, sizeof ns_b, "kvfRB%d", (int)getpid());
	for (int l = 0; l < 2; l++)
		for (int s = 0; s < 2; s++)
			snprintf(veth[l][s], sizeof veth[l][s], "kr%c%d_%d",
			         s ? 'b' : 'a', (int)getpid() % 100000, l);
	atexit(cleanup_ns);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGALRM, on_signal);
	alarm(120);
	ns_made = 1;
	if (sh("ip netns add %s && ip netns add %s && ip -n %s link set lo up "
	       "&& ip -n %s link set lo up", ns_a, ns_b, ns_a, ns_b) != 0) {
		cleanup_ns();
		skip_all("ip netns add failed (no netns support here?)");
	}
	for (int l = 0; l < 2; l++)
		if (sh("ip link add %s netns %s type veth peer name %s netns %s "
		       "&& ip -n %s addr add %s/30 dev %s && "
		       "ip -n %s addr add %s/30 dev %s && "
		       "ip -n %s link set %s up && ip -n %s link set %s up",
		       veth[l][0], ns_a, veth[l][1], ns_b, ns_a, ip(l, 0),
		       veth[l][0], ns_b, ip(l, 1), veth[l][1], ns_a,
		       veth[l][0], ns_b, veth[l][1]) != 0)
			skip_all("cannot make veth pair %d between namespaces",
			         l);

	plan(13);
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
	snprintf(url_a, sizeof url_a, "tcp://%s:%d", ip(0, 0), port);
	snprintf(url_b, sizeof url_b, "tcp://%s:%d", ip(0, 1), port);
	snprintf(fa, sizeof fa, "%s,%s", ip(0, 0), ip(1, 0));
	snprintf(fb, sizeof fb, "%s,%s", ip(0, 1), ip(1, 1));
	{
		char ea[64], eb[64];
		snprintf(ea, sizeof ea, "KVF_NETNS=%s", ns_a);
		snprintf(eb, sizeof eb, "KVF_NETNS=%s", ns_b);
		const char *env_a[] = {ea, NULL}, *env_b[] = {eb, NULL};
		const char *args_a[] = {"--provider", "tcp", "--fabric-addr", fa,
		                        "--peer-url", url_a, NULL};
		const char *args_b[] = {"--provider", "tcp", "--fabric-addr", fb,
		                        "--peer-url", url_b, NULL};
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
	       "A resolves decode across the links (%s)", kvf_last_error());

	/* A striped push: each link carries about half. */
	long long t0 = tx_bytes(0), t1 = tx_bytes(1);
	pattern(pbuf, REGION, 1);
	struct kvf_seg s = {pr, dr, 0, 0, REGION};
	struct kvf_xfer_opts xo = {.tag = "big", .tag_len = 3};
	kvf_submit(pre, KVF_WRITE, peer, &s, 1, &xo, &x);
	ok(wait_type(dec, KVF_EV_NOTIF, 30000, &ev, NULL, NULL) == 1,
	   "decode notified of a 64 MiB push");
	ok(pattern_ok(dbuf, REGION, 1), "every byte landed");
	ok(wait_type(pre, KVF_EV_XFER_DONE, 30000, &ev, NULL, NULL) == 1 &&
	   ev.status == 0, "the push completed ok");
	t0 = tx_bytes(0) - t0;
	t1 = tx_bytes(1) - t1;
	diag("veth 0 sent %lld bytes, veth 1 %lld", t0, t1);
	ok(t0 > REGION / 4 && t1 > REGION / 4,
	   "both links carried a large share (kernel counters)");
	ok(t0 + t1 >= REGION && t0 + t1 < REGION + REGION / 8,
	   "together the data once, plus headers");

	/* A striped pull: the data flows B -> A, requests A -> B. */
	memset(pbuf, 0, REGION);
	pattern(dbuf, REGION, 2);
	kvf_submit(pre, KVF_READ, peer, &s, 1, NULL, &x);
	ok(wait_type(pre, KVF_EV_XFER_DONE, 30000, &ev, NULL, NULL) == 1 &&
	   ev.status == 0, "a 64 MiB pull completed ok");
	ok(pattern_ok(pbuf, REGION, 2), "the pulled bytes match");

	/* Small pushes, many in flight: spread over the links. */
	t0 = tx_bytes(0);
	t1 = tx_bytes(1);
	pattern(pbuf, REGION, 3);
	int n = 0, good = 0;
	for (int i = 0; i < 32; i++) {
		struct kvf_seg ss = {pr, dr, (uint64_t)i << 20, (uint64_t)i << 20,
		                     128u << 10};
		struct kvf_xfer_opts so = {.tag = "s", .tag_len = 1};
		n += kvf_submit(pre, KVF_WRITE, peer, &ss, 1, &so, &x) == 0;
	}
	is_int(n, 32, "32 small pushes submitted");
	for (int i = 0; i < 32; i++)
		good += wait_type(dec, KVF_EV_NOTIF, 20000, &ev, NULL, NULL) == 1;
	is_int(good, 32, "each was notified");
	good = 1;
	for (int i = 0; i < 32; i++)
		good &= memcmp(dbuf + ((uint64_t)i << 20),
		               pbuf + ((uint64_t)i << 20), 128u << 10) == 0;
	ok(good, "and their bytes landed");
	t0 = tx_bytes(0) - t0;
	t1 = tx_bytes(1) - t1;
	diag("small: veth 0 sent %lld bytes, veth 1 %lld", t0, t1);
	ok(t0 > (128 << 10) && t1 > (128 << 10),
	   "both links carried some of them");

	kvf_close(pre);
	kvf_close(dec);
	ok(tp_daemon_stop(&a, SIGTERM, 10000) == 0 &&
	   tp_daemon_stop(&b, SIGTERM, 10000) == 0, "both sidecars stop");
	a.pid = b.pid = 0;
	cleanup_ns();
	return tap_exit_status();
}
