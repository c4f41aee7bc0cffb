/* An engine process exits while a child it forked still holds its connection open: the sidecar sees the exit through the engine's pidfd and releases its session and regions anyway. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/kvferry.h"
#include "tests/tap/clock.h"
#include "tests/tap/proc.h"
#include "tests/tap/tap.h"

int main(void)
{
	struct tp_daemon a;
	int ready[2];
	pid_t engine, holder = 0;

	plan(5);
	if (tp_daemon_start(&a, "a", NULL, NULL) != 0)
		bail("sidecar did not start");
	if (pipe(ready) != 0)
		bail("pipe");
	engine = fork();
	if (engine == 0) {
		struct kvf_connect_opts o = {.socket_path = a.engine_socket};
		kvf_client *c;
		void *p;
		kvf_region r;
		char st = 'n';
		if (kvf_connect("lingers", &o, &c) == 0 &&
		    kvf_alloc_host(c, 1 << 20, NULL, &p, &r) == 0)
			st = 'y';
		/* A child keeps every inherited descriptor, the engine
		 * socket's too, and outlives us. */
		pid_t h = fork();
		if (h == 0) {
			close(ready[1]);
			sleep(30);
			_exit(0);
		}
		if (write(ready[1], &st, 1) != 1 ||
		    write(ready[1], &h, sizeof h) != (ssize_t)sizeof h)
			_exit(1);
		_exit(0); /* no kvf_close: the engine just ends */
	}
	close(ready[1]);
	char got = 0;
	if (read(ready[0], &got, 1) != 1 ||
	    read(ready[0], &holder, sizeof holder) != (ssize_t)sizeof holder)
		got = 0;
	is_int(got, 'y', "the engine connected and registered a region");
	waitpid(engine, NULL, 0);
	long t0 = tp_now_ms();
	char *log = NULL;
	int seen = 0;
	while (tp_now_ms() - t0 < 5000 && !seen) {
		free(log);
		log = tp_daemon_log(&a);
		seen = log && strstr(log, "lingers (session") &&
		       strstr(log, "process exited");
		if (!seen)
			usleep(50000);
	}
	ok(seen, "the sidecar saw the engine's exit while its connection was "
	   "still open (%ld ms)", tp_now_ms() - t0);
	like(log, "1 regions released", "and released its region");
	ok(holder > 0 && kill(holder, 0) == 0,
	   "the child holding the connection is still alive");
	if (holder > 0) {
		kill(holder, SIGKILL);
		waitpid(holder, NULL, 0);
	}
	free(log);
	ok(tp_daemon_stop(&a, SIGTERM, 5000) == 0, "the sidecar stops cleanly");
	return tap_exit_status();
}
