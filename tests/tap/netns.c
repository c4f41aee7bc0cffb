/*
 * tests/tap/netns.c - network namespaces joined by veth pairs for tests
 * that need real links (see netns.h). Everything goes through ip(8) in a
 * shell, bounded by tp_sh. The namespaces outlive this process unless
 * removed, so removal is registered at exit and on the signals that end a
 * test (its alarm, prove's SIGTERM, ^C); it kills the daemons started
 * inside first, so nothing holds a namespace, and it runs before
 * tests/tap/proc.c removes the temp dir that tp_sh needs (tp_tmpdir() is
 * made before the exit handler is registered, and handlers run in
 * reverse).
 */
#include "tests/tap/netns.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_OPEN 4

static struct tp_netns *open_ns[MAX_OPEN];

static void close_all(void)
{
	for (int i = 0; i < MAX_OPEN; i++)
		if (open_ns[i])
			tp_netns_close(open_ns[i]);
}

static void on_signal(int sig)
{
	(void)sig;
	exit(1); /* runs close_all */
}

static void remember(struct tp_netns *n)
{
	static bool registered;

	if (!registered) {
		tp_tmpdir();
		atexit(close_all);
		signal(SIGINT, on_signal);
		signal(SIGTERM, on_signal);
		signal(SIGALRM, on_signal);
		registered = true;
	}
	for (int i = 0; i < MAX_OPEN; i++)
		if (!open_ns[i] || open_ns[i] == n) {
			open_ns[i] = n;
			return;
		}
}

int tp_netns_open(struct tp_netns *n, const char *tag, int nlinks, int net,
                  enum tp_say say, char *why, size_t len)
{
	int pid = (int)getpid();

	memset(n, 0, sizeof(*n));
	n->say = say;
	if (geteuid() != 0) {
		snprintf(why, len, "not root: network namespaces need "
		         "CAP_SYS_ADMIN");
		return -1;
	}
	if (nlinks < 1 || nlinks > TP_NETNS_LINKS || net < 1 ||
	    net + nlinks > 255 || strlen(tag) > 3) {
		snprintf(why, len, "tp_netns_open: bad arguments (tag '%s', "
		         "%d links from 10.%d)", tag, nlinks, net);
		return -1;
	}
	if (tp_sh(TP_SAY_QUIET, "command -v ip >/dev/null 2>&1") != 0) {
		snprintf(why, len, "no ip(8) (iproute2) on this machine");
		return -1;
	}
	snprintf(n->ns[TP_NS_A], sizeof(n->ns[0]), "kvf%sA%d", tag, pid);
	snprintf(n->ns[TP_NS_B], sizeof(n->ns[0]), "kvf%sB%d", tag, pid);
	remember(n);
	/* Marked before it exists: if one of the two is made and the other
	 * not, closing removes the one. */
	n->made = true;
	if (tp_sh(say, "ip netns add %s && ip netns add %s && "
	          "ip -n %s link set lo up && ip -n %s link set lo up",
	          n->ns[0], n->ns[1], n->ns[0], n->ns[1]) != 0) {
		tp_netns_close(n);
		snprintf(why, len, "ip netns add failed (no netns support "
		         "here?)");
		return -1;
	}
	for (int l = 0; l < nlinks; l++) {
		for (int s = 0; s < 2; s++) {
			/* At most 3 + 1 + 5 + 1 + 1 characters: within
			 * IFNAMSIZ (l < TP_NETNS_LINKS <= 10). */
			snprintf(n->dev[l][s], sizeof(n->dev[l][s]), "%s%c%u_%u",
			         tag, s ? 'b' : 'a', (unsigned)pid % 100000u,
			         (unsigned)l % 10u);
			snprintf(n->addr[l][s], sizeof(n->addr[l][s]),
			         "10.%d.%d.%d", net + l, pid % 250, 1 + s);
		}
		if (tp_sh(say, "ip link add %s netns %s type veth peer name %s "
		          "netns %s && ip -n %s addr add %s/30 dev %s && "
		          "ip -n %s addr add %s/30 dev %s && "
		          "ip -n %s link set %s up && ip -n %s link set %s up",
		          n->dev[l][0], n->ns[0], n->dev[l][1], n->ns[1],
		          n->ns[0], n->addr[l][0], n->dev[l][0], n->ns[1],
		          n->addr[l][1], n->dev[l][1], n->ns[0], n->dev[l][0],
		          n->ns[1], n->dev[l][1]) != 0) {
			tp_netns_close(n);
			snprintf(why, len, "cannot make veth pair %d between "
			         "namespaces", l);
			return -1;
		}
		n->nlinks = l + 1;
	}
	return 0;
}

void tp_netns_close(struct tp_netns *n)
{
	for (int i = 0; i < n->ndaemons; i++)
		if (n->daemons[i]->pid > 0)
			tp_daemon_stop(n->daemons[i], SIGKILL, 2000);
	n->ndaemons = 0;
	if (n->made)
		tp_sh(n->say, "ip netns del %s 2>/dev/null; "
		      "ip netns del %s 2>/dev/null; true", n->ns[0], n->ns[1]);
	n->made = false;
	for (int i = 0; i < MAX_OPEN; i++)
		if (open_ns[i] == n)
			open_ns[i] = NULL;
}

int tp_netns_link_set(struct tp_netns *n, int l, bool up)
{
	return tp_sh(n->say, "ip -n %s link set %s %s", n->ns[TP_NS_A],
	             n->dev[l][TP_NS_A], up ? "up" : "down");
}

long long tp_netns_tx_bytes(const struct tp_netns *n, int l, int side)
{
	char cmd[200];
	const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
	struct tp_run r;
	long long v = -1;

	snprintf(cmd, sizeof(cmd), "ip netns exec %s cat "
	         "/sys/class/net/%s/statistics/tx_bytes", n->ns[side],
	         n->dev[l][side]);
	if (tp_run(&r, 10000, NULL, argv) != 0)
		return -1;
	if (r.status != 0 || sscanf(r.out, "%lld", &v) != 1)
		v = -1;
	tp_run_free(&r);
	return v;
}

const char *tp_netns_wrap_bins(struct tp_netns *n)
{
	static char real[512];
	char dir[600], path[700], target[700];
	const char *b = getenv("KVF_BUILD");
	FILE *f;

	if (!b || !b[0]) {
		tp_say(n->say, "tp_netns_wrap_bins: KVF_BUILD is not set");
		return NULL;
	}
	snprintf(real, sizeof(real), "%s", b);
	snprintf(dir, sizeof(dir), "%s/build", tp_tmpdir());
	snprintf(path, sizeof(path), "%s/bin", dir);
	if (mkdir(dir, 0755) != 0 || mkdir(path, 0755) != 0) {
		tp_say(n->say, "tp_netns_wrap_bins: mkdir(%s) failed", path);
		return NULL;
	}
	snprintf(path, sizeof(path), "%s/bin/kvferryd", dir);
	if (!(f = fopen(path, "w"))) {
		tp_say(n->say, "tp_netns_wrap_bins: cannot write %s", path);
		return NULL;
	}
	fprintf(f, "#!/bin/sh\nexec ip netns exec \"$KVF_NETNS\" "
	        "%s/bin/kvferryd \"$@\"\n", real);
	fclose(f);
	chmod(path, 0755);
	snprintf(path, sizeof(path), "%s/bin/kvferryctl", dir);
	snprintf(target, sizeof(target), "%s/bin/kvferryctl", real);
	if (symlink(target, path) != 0) {
		tp_say(n->say, "tp_netns_wrap_bins: symlink(%s) failed", path);
		return NULL;
	}
	setenv("KVF_BUILD", dir, 1);
	return real;
}

int tp_netns_daemon_start(struct tp_netns *n, int side, struct tp_daemon *d,
                          const char *name, const char *const *args)
{
	char env_ns[64];
	const char *env[] = {env_ns, NULL};
	int i = 0;

	while (i < n->ndaemons && n->daemons[i] != d)
		i++;
	if (i == TP_NETNS_DAEMONS) {
		tp_say(n->say, "tp_netns_daemon_start: more than %d daemons",
		       TP_NETNS_DAEMONS);
		return -1;
	}
	/* Remembered before it starts: a half-started one is killed too. A
	 * struct used again for a new daemon is remembered once. */
	if (i == n->ndaemons)
		n->daemons[n->ndaemons++] = d;
	snprintf(env_ns, sizeof(env_ns), "KVF_NETNS=%s", n->ns[side]);
	return tp_daemon_start(d, name, args, env);
}
