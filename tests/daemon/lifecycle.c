/* kvferryd start, readiness, socket files, second instance refused, stale
 * socket recovered, SIGTERM/SIGINT cleanup, SIGHUP ignored. */
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/tap/proc.h"
#include "tests/tap/tap.h"

static int is_sock(const char *path, unsigned *mode)
{
	struct stat st;

	if (lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode))
		return 0;
	if (mode)
		*mode = st.st_mode & 07777;
	return 1;
}

static int exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static int status_ok(const char *url)
{
	const char *argv[] = { tp_bin("kvferryctl"), "-u", url, "-t", "2000",
		"status", NULL };
	struct tp_run r;
	int good;

	if (tp_run(&r, 5000, NULL, argv) != 0)
		return 0;
	good = r.status == 0;
	if (!good)
		diag("kvferryctl status: %d: %s", r.status, r.err);
	tp_run_free(&r);
	return good;
}

int main(void)
{
	struct tp_daemon a, b, c;
	char lock[400], ctlpath[700], *s, pidstr[32];
	unsigned mode = 0;

	plan(34);

	/* A running daemon and its files. */
	if (tp_daemon_start(&a, "a", NULL, NULL) != 0)
		bail("kvferryd did not start");
	ok(1, "kvferryd starts and its control socket answers");
	ok(tp_count_lines(a.log_path, "kvferryd ready") == 1,
	    "one 'kvferryd ready' log line");
	ok(is_sock(a.engine_socket, &mode), "engine socket exists");
	is_int(mode, 0660, "engine socket has the default mode 0660");
	snprintf(ctlpath, sizeof(ctlpath), "%s", a.control_url + 6);
	mode = 0;
	ok(is_sock(ctlpath, &mode) && mode == 0660,
	    "control socket exists with mode 0660");
	snprintf(lock, sizeof(lock), "%s.lock", a.engine_socket);
	s = tp_read_file(lock);
	snprintf(pidstr, sizeof(pidstr), "%d\n", (int)a.pid);
	is_str(s ? s : "", pidstr, "lock file holds the daemon's pid");
	free(s);

	/* Second instance on the same engine socket. */
	{
		const char *args[] = { "--engine-socket", a.engine_socket,
			NULL };
		char *log;
		tp_daemon_spawn(&b, "b", args, NULL);
		ok(tp_daemon_wait(&b, 10000) == 0,
		    "second instance exits by itself");
		is_int(WIFEXITED(b.status) ? WEXITSTATUS(b.status) : -1, 1,
		    "second instance exits 1");
		log = tp_daemon_log(&b);
		like(log, a.engine_socket, "its message names the socket");
		snprintf(pidstr, sizeof(pidstr), "pid %d", (int)a.pid);
		like(log, pidstr, "its message names the pid holding it");
		like(log, "in use by another kvferryd", "and says why");
		free(log);
		ok(is_sock(a.engine_socket, NULL) && status_ok(a.control_url),
		    "the first instance still serves, socket intact");
	}

	/* SIGHUP is not a shutdown. */
	kill(a.pid, SIGHUP);
	usleep(100000);
	ok(status_ok(a.control_url), "SIGHUP ignored, still serving");

	/* SIGTERM: clean exit, files gone. */
	ok(tp_daemon_stop(&a, SIGTERM, 10000) == 0,
	    "SIGTERM: exits within 10 s");
	ok(WIFEXITED(a.status) && WEXITSTATUS(a.status) == 0,
	    "SIGTERM: exit status 0");
	ok(!exists(a.engine_socket), "SIGTERM: engine socket removed");
	ok(!exists(ctlpath), "SIGTERM: control socket removed");
	ok(!exists(lock), "SIGTERM: lock file removed");
	is_int(tp_count_lines(a.log_path, "kvferryd stopped: SIGTERM"), 1,
	    "SIGTERM: one shutdown log line");
	ok(!status_ok(a.control_url), "status fails once it is gone");

	/* Crash, then restart on the same paths. */
	if (tp_daemon_start(&c, "c", NULL, NULL) != 0)
		bail("kvferryd c did not start");
	kill(c.pid, SIGKILL);
	tp_daemon_wait(&c, 5000);
	ok(is_sock(c.engine_socket, NULL), "after SIGKILL the socket stays");
	{
		const char *kept = c.engine_socket;
		struct tp_daemon c2;
		char want[400];
		ok(tp_daemon_start(&c2, "c", NULL, NULL) == 0,
		    "restart over the stale socket succeeds");
		is_str(c2.engine_socket, kept, "on the same engine socket");
		snprintf(want, sizeof(want), "%s: removed a stale socket",
		    c2.engine_socket);
		ok(tp_count_lines(c2.log_path, want) >= 1,
		    "and logs that it removed the stale socket");
		ok(status_ok(c2.control_url), "the restarted daemon serves");

		/* SIGINT behaves like SIGTERM. */
		ok(tp_daemon_stop(&c2, SIGINT, 10000) == 0 &&
		        WIFEXITED(c2.status) && WEXITSTATUS(c2.status) == 0,
		    "SIGINT: exit 0 within 10 s");
		ok(!exists(c2.engine_socket), "SIGINT: engine socket removed");
		is_int(tp_count_lines(c2.log_path, "kvferryd stopped: SIGINT"),
		    1, "SIGINT: one shutdown log line");
	}

	/* --socket-mode applies to both sockets. */
	{
		const char *args[] = { "--socket-mode", "0600", NULL };
		struct tp_daemon m;
		unsigned em = 0, cm = 0;
		if (tp_daemon_start(&m, "m", args, NULL) != 0)
			bail("kvferryd m did not start");
		is_sock(m.engine_socket, &em);
		is_sock(m.control_url + 6, &cm);
		is_int(em, 0600, "--socket-mode 0600 on the engine socket");
		is_int(cm, 0600, "--socket-mode 0600 on the control socket");
		tp_daemon_stop(&m, SIGTERM, 10000);
	}

	/* --socket-group, and JSON logs that jq reads line by line. */
	{
		const char *args[] = { "--socket-group", "nogroup",
			"--log-format", "json", NULL };
		struct group *g = getgrnam("nogroup");
		struct tp_daemon j;
		struct stat st;
		if (!g || geteuid() != 0) {
			skip(3, "needs root and a group 'nogroup'");
		} else if (tp_daemon_start(&j, "j", args, NULL) != 0) {
			bail("kvferryd j did not start");
		} else {
			ok(lstat(j.engine_socket, &st) == 0 &&
			        st.st_gid == g->gr_gid,
			    "--socket-group nogroup owns the engine socket");
			tp_daemon_stop(&j, SIGTERM, 10000);
			if (access("/usr/bin/jq", X_OK) != 0) {
				skip(2, "jq is not installed");
			} else {
				const char *argv[] = { "/usr/bin/jq", "-e", "-s",
					"length >= 3 and all(.[]; (.ts | "
					"type) == \"string\" and (.level | "
					"type) == \"string\" and (.msg | "
					"type) == \"string\" and .pid > 0)",
					j.log_path, NULL };
				struct tp_run r;
				tp_run(&r, 5000, NULL, argv);
				is_int(r.status, 0, "--log-format json: every "
				    "line is an object with ts, level, msg");
				tp_run_free(&r);
				ok(tp_count_lines(j.log_path,
				       "\"msg\":\"kvferryd stopped: SIGTERM") == 1,
				    "--log-format json: the shutdown line");
			}
		}
	}

	/* The last level of the socket directory is created. */
	{
		char sock[400];
		const char *args[] = { "--engine-socket", sock, NULL };
		struct tp_daemon n;
		snprintf(sock, sizeof(sock), "%s/newdir/engine.sock",
		    tp_tmpdir());
		ok(tp_daemon_start(&n, "n", args, NULL) == 0 &&
		        is_sock(sock, NULL),
		    "a missing last directory level is created");
		tp_daemon_stop(&n, SIGTERM, 10000);
	}
	return tap_exit_status();
}
