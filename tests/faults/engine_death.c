/* An engine SIGKILLed in the middle of a 1 GiB push: its sidecar logs it and releases its session and regions (status counts drop), the remote engine gets no notification for the unfinished transfer, and another engine on the same sidecar keeps transferring with its bytes checked. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/kvferry.h"
#include "tests/tap/clock.h"
#include "tests/tap/ctl.h"
#include "tests/tap/engine.h"
#include "tests/tap/events.h"
#include "tests/tap/pattern.h"
#include "tests/tap/proc.h"
#include "tests/tap/tap.h"

#define REGION (32u << 20)
#define SEGS 32 /* 32 x 32 MiB: about a second or more over tcp */

/* The doomed engine, forked before the parent touches nng (nng is not
 * fork-safe): wait for the go, connect, allocate, resolve, submit the big
 * push, tell the parent, then wait to be killed. */
static void child(const struct tp_daemon *a, const struct tp_daemon *b,
                  int go, int fd)
{
	struct kvf_connect_opts o = {.socket_path = a->engine_socket};
	struct kvf_seg segs[SEGS];
	struct kvf_xfer_opts xo = {.tag = "doomed", .tag_len = 6,
	                           .timeout_ms = 60000};
	kvf_client *c;
	kvf_region r;
	kvf_peer peer;
	kvf_xfer x;
	void *p;
	char st = 'x';

	if (read(go, &st, 1) != 1)
		_exit(1);
	st = 'x';
	if (kvf_connect("doomed", &o, &c) == 0 &&
	    kvf_alloc_host(c, REGION, NULL, &p, &r) == 0 &&
	    kvf_resolve_peer(c, b->peer_url, "dec", 0, &peer) == 0) {
		memset(p, 0x5a, REGION);
		for (int i = 0; i < SEGS; i++)
			segs[i] = (struct kvf_seg){r, 1, 0, 0, REGION};
		st = 'r';
	}
	/* Ready: the parent holds B still, then lets us submit, so the
	 * push cannot finish before the kill however fast bytes move. */
	if (write(fd, &st, 1) != 1 || read(go, &st, 1) != 1)
		_exit(1);
	st = 'x';
	if (kvf_submit(c, KVF_WRITE, peer, segs, SEGS, &xo, &x) == 0)
		st = 's';
	if (write(fd, &st, 1) != 1)
		_exit(1);
	for (;;)
		pause();
}

static pid_t child_pid;

/* One status byte from the child, waiting up to 10 s; 0 when none. */
static char read_st(int fd)
{
	struct timespec ts = {10, 0};
	fd_set rf;
	char st = 0;

	FD_ZERO(&rf);
	FD_SET(fd, &rf);
	if (pselect(fd + 1, &rf, NULL, NULL, &ts, NULL) != 1 ||
	    read(fd, &st, 1) != 1)
		return 0;
	return st;
}

/* A bail must not leave the child behind. */
static void reap_child(void)
{
	if (child_pid > 0) {
		kill(child_pid, SIGKILL);
		waitpid(child_pid, NULL, 0);
	}
}

int main(void)
{
	struct tp_daemon a, b;
	const char *const args[] = {"--provider", "tcp", NULL};
	kvf_client *dec = NULL, *pre = NULL;
	struct kvf_event ev;
	uint8_t *dbuf, *pbuf;
	kvf_region dr, pr;
	kvf_peer peer;
	kvf_xfer x;
	int fds[2], gofd[2], others = 0;
	pid_t pid;
	char st = 0;

	plan(16);
	/* A child that died early must fail a check, not kill us with
	 * SIGPIPE before the exit handlers stop the sidecars. */
	signal(SIGPIPE, SIG_IGN);
	if (tp_daemon_start(&a, "a", args, NULL) != 0 ||
	    tp_daemon_start(&b, "b", args, NULL) != 0)
		bail("sidecars did not start");
	if (pipe(fds) != 0 || pipe(gofd) != 0)
		bail("pipe");
	fflush(stdout);
	if ((pid = fork()) == 0) {
		child_pid = 0;
		close(fds[0]);
		close(gofd[1]);
		child(&a, &b, gofd[0], fds[1]);
	}
	if (pid < 0)
		bail("fork");
	child_pid = pid;
	atexit(reap_child);
	close(fds[1]);
	close(gofd[0]);
	tp_engine_open("dec", &b, NULL, REGION, &dec, &dbuf, &dr);
	if (dr != 1)
		bail("decode region is %u, the child assumes 1", dr);
	tp_engine_open("survivor", &a, NULL, 1 << 20, &pre, &pbuf, &pr);
	if (kvf_resolve_peer(pre, b.peer_url, "dec", 0, &peer) != 0)
		bail("surviving engine: %s", kvf_last_error());

	if (write(gofd[1], "g", 1) != 1)
		bail("cannot start the child");
	st = read_st(fds[0]);
	if (st == 'r') {
		kill(b.pid, SIGSTOP);
		if (write(gofd[1], "g", 1) != 1)
			bail("cannot let the child submit");
		st = read_st(fds[0]);
	}
	is_int(st, 's', "the doomed engine submitted a 1 GiB push");
	is_int(tp_ctl_status_field(&a, "engines"), 2, "A counts two engines");
	is_int(tp_ctl_status_field(&a, "regions"), 2, "and two regions");
	ok(tp_ctl_status_field(&a, "xfers_in_flight") >= 1,
	   "the push is in flight when the engine is killed");
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	child_pid = 0;
	usleep(100 * 1000); /* A sees the engine go first */
	kill(b.pid, SIGCONT);

	long t0 = tp_now_ms();
	long long engines = -1, regions = -1;
	while (tp_now_ms() - t0 < 10000) {
		engines = tp_ctl_status_field(&a, "engines");
		regions = tp_ctl_status_field(&a, "regions");
		if (engines == 1 && regions == 1)
			break;
		usleep(50 * 1000);
	}
	is_int(engines, 1, "A counts one engine after the kill");
	is_int(regions, 1, "its region was released");
	diag("released %ld ms after SIGKILL", tp_now_ms() - t0);
	t0 = tp_now_ms();
	while (tp_now_ms() - t0 < 10000 &&
	       tp_ctl_status_field(&a, "xfers_in_flight") != 0)
		usleep(50 * 1000);
	is_int(tp_ctl_status_field(&a, "xfers_in_flight"), 0,
	       "the dead engine's transfer ended on A");
	/* Its connection closing or its pidfd, whichever came first. */
	ok(tp_daemon_log_count(&a, "doomed") > 0 &&
	   (tp_daemon_log_count(&a, "disconnected") > 0 ||
	    tp_daemon_log_count(&a, "process exited") > 0),
	   "A logged the engine's disconnection");

	/* The survivor keeps working, bytes checked. */
	tp_pattern_fill(pbuf, 1 << 20, 77);
	struct kvf_seg s = {pr, dr, 0, 4096, 1 << 20};
	struct kvf_xfer_opts xo = {.tag = "alive", .tag_len = 5};
	is_int(kvf_submit(pre, KVF_WRITE, peer, &s, 1, &xo, &x), 0,
	       "the other engine submits after the kill");
	ok(tp_wait_event(pre, KVF_EV_XFER_DONE, 20000, &ev, &tp_wait_quiet) &&
	   ev.status == 0, "and its transfer completes (%s)", ev.message);
	int got = 0, doomed = 0;
	t0 = tp_now_ms();
	while (tp_now_ms() - t0 < 5000 && !got) {
		int n = 0;
		if (kvf_wait(dec, &ev, 1, 100, &n) != 0)
			break;
		if (n && ev.type == KVF_EV_NOTIF) {
			if (ev.tag_len == 5 && !memcmp(ev.tag, "alive", 5))
				got = 1;
			else
				doomed++;
		} else if (n) {
			others++;
		}
	}
	ok(got, "decode got the survivor's notification");
	ok(got && tp_pattern_ok(dbuf + 4096, 1 << 20, 77),
	   "with the survivor's bytes in place");
	/* Anything the dead engine's push could still notify has had time. */
	t0 = tp_now_ms();
	while (tp_now_ms() - t0 < 1500) {
		int n = 0;
		if (kvf_wait(dec, &ev, 1, 100, &n) != 0)
			break;
		if (n && ev.type == KVF_EV_NOTIF)
			doomed++;
	}
	is_int(doomed, 0, "no notification for the killed engine's "
	       "unfinished push");
	is_int(others, 0, "decode saw no other events");

	kvf_close(pre);
	kvf_close(dec);
	ok(tp_daemon_stop(&a, SIGTERM, 5000) == 0, "A stops cleanly");
	ok(tp_daemon_stop(&b, SIGTERM, 5000) == 0, "B stops cleanly");
	return tap_exit_status();
}
