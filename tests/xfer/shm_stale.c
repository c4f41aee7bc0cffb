/*
 * tests/xfer/shm_stale.c - a shm rail opens where a dead process of the
 * same pid left its region in /dev/shm. shm names the region
 * "<pid>:<uid>:<n>"; one killed with SIGKILL never removes it, and when
 * its pid comes round again the provider sees the recorded pid alive (the
 * new process itself), refuses the name with FI_EBUSY and removes the
 * file; kvferryd then failed to start ("fi_enable() failed: Device or
 * resource busy"). Placing the second process on the first one's pid
 * needs /proc/sys/kernel/ns_last_pid, so root; elsewhere this skips.
 */
#include "client/kvferry.h"
#include "tests/tap/proc.h"
#include "tests/tap/tap.h"
#include "xfer/fabric.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TRIES 5

static int open_shm(struct xfer_fabric **f, char *err, size_t errlen)
{
	struct xfer_fabric_config cfg = {
		.provider = "shm",
		.rx_count = 8,
		.rx_size = 256,
	};

	return xfer_fabric_open(&cfg, f, err, errlen);
}

/* A child that opens a shm rail and dies by SIGKILL with it open. */
static pid_t leave_region(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		struct xfer_fabric *f = NULL;
		char err[300];

		if (open_shm(&f, err, sizeof(err)) != 0)
			_exit(3);
		raise(SIGKILL);
		_exit(4);
	}
	return pid;
}

/* A child placed on pid `on` that opens a shm rail: exits 0 when it did,
 * 2 when it got another pid, 1 when the open failed. */
static pid_t reopen_on(pid_t on, int out)
{
	if (tp_place_next_pid(on - 1) != 0)
		return -1;
	pid_t pid = fork();

	if (pid == 0) {
		struct xfer_fabric *f = NULL;
		char err[300];
		int rc;

		if (getpid() != on)
			_exit(2);
		rc = open_shm(&f, err, sizeof(err));
		if (rc != 0) {
			dprintf(out, "%s", err);
			_exit(1);
		}
		dprintf(out, "%s", xfer_fabric_info(f)->addr_str);
		xfer_fabric_close(f);
		_exit(0);
	}
	return pid;
}

int main(void)
{
	char path[64], said[300];
	int st, tries, p[2];
	pid_t dead = -1, again;
	ssize_t n;

	if (tp_place_next_pid(getpid()) != 0)
		skip_all("cannot write %s (not root?)", TP_LAST_PID);
	plan(4);

	/* Another process may take the pid first: try a few times. */
	for (tries = 0; tries < TRIES; tries++) {
		dead = leave_region();
		if (dead < 0 || waitpid(dead, &st, 0) != dead)
			bail("fork/waitpid: the region's first owner");
		if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
			bail("the first owner did not die by SIGKILL "
			     "(status 0x%x)", st);
		snprintf(path, sizeof(path), "/dev/shm/%d:%d:0", (int)dead,
		         (int)getuid());
		if (access(path, F_OK) != 0)
			bail("no %s after SIGKILL: shm names its regions "
			     "otherwise", path);
		if (pipe(p) != 0)
			bail("pipe");
		again = reopen_on(dead, p[1]);
		close(p[1]);
		if (again < 0 || waitpid(again, &st, 0) != again)
			bail("fork/waitpid: the second owner");
		n = read(p[0], said, sizeof(said) - 1);
		said[n > 0 ? n : 0] = '\0';
		close(p[0]);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 2) {
			unlink(path); /* ours, left on purpose */
			continue;
		}
		break;
	}
	if (!ok(tries < TRIES, "a second process on pid %d, whose dead "
	        "owner left %s", (int)dead, path)) {
		skip(3, "never got the pid back");
		return tap_exit_status();
	}
	if (!ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	        "it opens a shm rail all the same"))
		diag("status 0x%x: %s", st, said);
	like(said, "fi_shm://", "at %s", said);
	ok(access(path, F_OK) != 0, "and the dead process's region is gone");
	return tap_exit_status();
}
