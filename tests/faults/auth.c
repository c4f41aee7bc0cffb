/* Who may connect: sidecars sharing --secret-file handshake and transfer; a wrong or missing secret on either side is refused with KVF_EPERM and one log line; a world-readable or short secret file stops start-up naming --secret-file; an engine of another uid is refused on hello unless --socket-group shares the socket. */
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/kvferry.h"
#include "tests/tap/clock.h"
#include "tests/tap/engine.h"
#include "tests/tap/events.h"
#include "tests/tap/pattern.h"
#include "tests/tap/proc.h"
#include "tests/tap/tap.h"

static const char *secret(const char *name, const char *body, int mode)
{
	static char paths[6][512];
	static int next;
	char *p = paths[next++ % 6];
	FILE *f;

	snprintf(p, 512, "%s/%s", tp_tmpdir(), name);
	if (!(f = fopen(p, "w")))
		bail("cannot write %s", p);
	fputs(body, f);
	fclose(f);
	chmod(p, (mode_t)mode);
	return p;
}

/* As uid 65534, connect to the socket; the kvf_connect code, or -1. */
static int connect_as_nobody(const char *sock, char *msg, size_t msglen)
{
	int fds[2], rc = -1;
	pid_t pid;

	if (pipe(fds) != 0)
		return -1;
	fflush(stdout);
	if ((pid = fork()) == 0) {
		struct kvf_connect_opts o = {.socket_path = sock,
		                             .timeout_ms = 3000};
		kvf_client *c = NULL;
		char out[300];
		close(fds[0]);
		if (setgid(65534) != 0 || setuid(65534) != 0)
			_exit(2);
		int r = kvf_connect("stranger", &o, &c);
		snprintf(out, sizeof out, "%d %s", r, r ? kvf_last_error() : "");
		if (write(fds[1], out, strlen(out) + 1) < 0)
			_exit(3);
		kvf_close(c);
		_exit(0);
	}
	close(fds[1]);
	char buf[300] = "";
	ssize_t n = 0;
	long t0 = tp_now_ms();
	while (tp_now_ms() - t0 < 10000) {
		n = read(fds[0], buf, sizeof buf - 1);
		if (n >= 0)
			break;
	}
	close(fds[0]);
	if (n > 0) {
		buf[n] = 0;
		rc = atoi(buf);
		snprintf(msg, msglen, "%s", strchr(buf, ' ') ? strchr(buf, ' ') + 1 : "");
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return rc;
}

int main(void)
{
	struct tp_daemon a, b, c, d, bad;
	const char *s1, *s1b, *s2, *world;
	kvf_client *pre = NULL, *db = NULL, *dc = NULL, *dd = NULL;
	struct kvf_event ev;
	uint8_t *pbuf, *bbuf;
	kvf_region pr, br;
	kvf_peer peer;
	kvf_xfer x;
	int rc;

	plan(18);
	s1 = secret("s1", "kvferry shared secret number one\n", 0600);
	s1b = secret("s1b", "kvferry shared secret number one", 0640);
	s2 = secret("s2", "a different secret altogether!!", 0600);
	world = secret("world", "kvferry shared secret number one\n", 0644);

	/* Bad secret files stop start-up with a message naming the option. */
	{
		const char *args[] = {"--provider", "tcp", "--secret-file", world,
		                      NULL};
		tp_daemon_spawn(&bad, "bad1", args, NULL);
		ok(tp_daemon_wait(&bad, 10000) == 0 && bad.status != 0,
		   "a world-readable secret file: start-up fails");
		char *log = tp_daemon_log(&bad);
		like(log, "--secret-file", "naming --secret-file");
		like(log, "others", "and saying why");
		free(log);
		args[3] = secret("short", "short\n", 0600);
		tp_daemon_spawn(&bad, "bad2", args, NULL);
		ok(tp_daemon_wait(&bad, 10000) == 0 && bad.status != 0,
		   "a too short secret: start-up fails");
	}

	/* Fork the uid test's child before this process uses nng. */
	int as_nobody = -2, as_nobody_grp = -2;
	char nmsg[300] = "", gmsg[300] = "";
	if (geteuid() == 0) {
		const char *args[] = {"--provider", "tcp", "--socket-mode", "0666",
		                      NULL};
		struct tp_daemon u, g;
		chmod(tp_tmpdir(), 0755);
		if (tp_daemon_start(&u, "u", args, NULL) == 0) {
			chmod(u.dir, 0755);
			as_nobody = connect_as_nobody(u.engine_socket, nmsg,
			                              sizeof nmsg);
			tp_daemon_stop(&u, SIGTERM, 5000);
		}
		struct group *gr = getgrgid(getegid());
		const char *gargs[] = {"--provider", "tcp", "--socket-mode",
		                       "0666", "--socket-group",
		                       gr ? gr->gr_name : "root", NULL};
		if (tp_daemon_start(&g, "g", gargs, NULL) == 0) {
			chmod(g.dir, 0755);
			as_nobody_grp = connect_as_nobody(g.engine_socket, gmsg,
			                                  sizeof gmsg);
			tp_daemon_stop(&g, SIGTERM, 5000);
		}
	}

	{
		const char *aa[] = {"--provider", "tcp", "--secret-file", s1, NULL};
		const char *ab[] = {"--provider", "tcp", "--secret-file", s1b,
		                    NULL};
		const char *ac[] = {"--provider", "tcp", "--secret-file", s2, NULL};
		const char *ad[] = {"--provider", "tcp", NULL};
		if (tp_daemon_start(&a, "a", aa, NULL) != 0 ||
		    tp_daemon_start(&b, "b", ab, NULL) != 0 ||
		    tp_daemon_start(&c, "c", ac, NULL) != 0 ||
		    tp_daemon_start(&d, "d", ad, NULL) != 0)
			bail("sidecars did not start");
	}
	tp_engine_open("pre", &a, NULL, 1 << 20, &pre, &pbuf, &pr);
	tp_engine_open("dec", &b, NULL, 1 << 20, &db, &bbuf, &br);
	tp_engine_open("dec", &c, NULL, 0, &dc, NULL, NULL);
	tp_engine_open("dec", &d, NULL, 0, &dd, NULL, NULL);

	is_int(kvf_resolve_peer(pre, b.peer_url, "dec", 3000, &peer), 0,
	       "same secret: the handshake succeeds (%s)", kvf_last_error());
	tp_pattern_fill(pbuf, 1 << 20, 3);
	struct kvf_seg s = {pr, br, 0, 0, 1 << 20};
	struct kvf_xfer_opts xo = {.tag = "t", .tag_len = 1};
	kvf_submit(pre, KVF_WRITE, peer, &s, 1, &xo, &x);
	ok(tp_wait_event(db, KVF_EV_NOTIF, 10000, &ev, &tp_wait_quiet) &&
	   tp_pattern_ok(bbuf, 1 << 20, 3), "and bytes move between them");

	rc = kvf_resolve_peer(pre, c.peer_url, "dec", 3000, &peer);
	is_int(rc, KVF_EPERM, "a different secret: KVF_EPERM");
	like(kvf_last_error(), "authentication", "message: %s",
	     kvf_last_error());
	usleep(100 * 1000);
	is_int(tp_daemon_log_count(&c, "authentication failed"), 1,
	       "the refusing sidecar logged it once");

	rc = kvf_resolve_peer(pre, d.peer_url, "dec", 3000, &peer);
	is_int(rc, KVF_EPERM, "a peer without a secret: its unsigned reply "
	       "is refused with KVF_EPERM");
	like(kvf_last_error(), "no authentication", "message: %s",
	     kvf_last_error());
	rc = kvf_resolve_peer(dd, a.peer_url, "pre", 3000, &peer);
	is_int(rc, KVF_EPERM, "an unauthenticated caller is refused: "
	       "KVF_EPERM");
	usleep(100 * 1000);
	is_int(tp_daemon_log_count(&a, "peer request refused: sidecar"), 1,
	       "A logged the refusal once");
	ok(tp_daemon_log_count(&a, "handshake for engine pre answered") == 0,
	   "and sent it no regions or keys");

	if (geteuid() != 0) {
		skip(3, "not root: cannot run an engine as another uid");
	} else {
		is_int(as_nobody, KVF_EPERM, "an engine of uid 65534 is refused "
		       "on hello");
		like(nmsg, "uid 65534", "message: %s", nmsg);
		is_int(as_nobody_grp, 0, "allowed with --socket-group (%s)",
		       gmsg);
	}

	kvf_close(pre);
	kvf_close(db);
	kvf_close(dc);
	kvf_close(dd);
	ok(tp_daemon_stop(&a, SIGTERM, 5000) == 0 &&
	   tp_daemon_stop(&b, SIGTERM, 5000) == 0 &&
	   tp_daemon_stop(&c, SIGTERM, 5000) == 0 &&
	   tp_daemon_stop(&d, SIGTERM, 5000) == 0, "all sidecars stop");
	return tap_exit_status();
}
