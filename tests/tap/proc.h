/*
 * tests/tap/proc.h - real processes for end-to-end tests: a private temp
 * dir, kvferryd instances on free sockets and ports, commands run with a
 * timeout and their output captured, /proc figures of a process.
 *
 * Binaries come from $KVF_BUILD/bin (make check sets it). Every wait is
 * bounded; a child that overstays gets SIGKILL. The temp dir is removed at
 * exit unless KVF_KEEP_TMP is set. Single-threaded tests only.
 */
#ifndef KVF_TAP_PROC_H
#define KVF_TAP_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "tests/tap/tap.h"

/* A fresh directory under $TMPDIR (or /tmp), removed at exit. Bails when
 * it cannot be made. */
const char *tp_tmpdir(void);

/* $KVF_BUILD/bin/<name> (static storage, one per name). Bails without
 * KVF_BUILD. */
const char *tp_bin(const char *name);

/* A TCP port on 127.0.0.1 free right now. */
int tp_free_port(void);

/* A malloc'ed copy of the whole file, NUL-terminated; NULL on error. */
char *tp_read_file(const char *path);

/* Lines of a text file that contain needle. */
int tp_count_lines(const char *path, const char *needle);

struct tp_daemon {
	pid_t pid;               /* 0 once reaped */
	int status;              /* wait status once reaped */
	char dir[256];           /* its own directory under tp_tmpdir() */
	char engine_socket[300];
	char control_url[320];
	char peer_url[64];
	char log_path[300];      /* its stdout and stderr */
};

/*
 * Start kvferryd in a new directory <tmpdir>/<name> with engine socket
 * and control socket inside it, peer_url tcp://127.0.0.1:<free port> and
 * --provider $KVF_TEST_PROVIDER (default tcp; none when env sets
 * KVFERRY_PROVIDER),
 * then args (NULL-terminated, may be NULL; a later --engine-socket,
 * --control-url or --peer-url wins and updates d), and env
 * ("KEY=VALUE", NULL-terminated, may be NULL) on top of the environment
 * stripped of KVFERRY_*. Does not wait. Returns 0 or -1.
 */
int tp_daemon_spawn(struct tp_daemon *d, const char *name,
                    const char *const *args, const char *const *env);

/* Like tp_daemon_spawn but with no default flags at all: only args. */
int tp_daemon_spawn_raw(struct tp_daemon *d, const char *name,
                        const char *const *args, const char *const *env);

/* Wait until `kvferryctl status` answers on d->control_url. Returns 0, or
 * -1 when the daemon exited (then reaped) or timeout_ms passed. */
int tp_daemon_wait_ready(struct tp_daemon *d, int timeout_ms);

/* Spawn and wait ready; on failure diag()s its log. */
int tp_daemon_start(struct tp_daemon *d, const char *name,
                    const char *const *args, const char *const *env);

/* Wait for exit up to timeout_ms; returns 0 when it exited (status in
 * d->status), -1 on timeout (still running). */
int tp_daemon_wait(struct tp_daemon *d, int timeout_ms);

/* Send sig, wait up to timeout_ms, then SIGKILL. Returns 0 when it exited
 * by itself within the time, -1 when it had to be killed. */
int tp_daemon_stop(struct tp_daemon *d, int sig, int timeout_ms);

/* The daemon's log so far (malloc'ed; "" when none). */
char *tp_daemon_log(const struct tp_daemon *d);

/* Lines of the daemon's log so far that contain needle. */
int tp_daemon_log_count(const struct tp_daemon *d, const char *needle);

/* Resident set in kB, and open fds, of a process; -1 when unreadable. */
long tp_proc_rss_kb(pid_t pid);
int tp_proc_fds(pid_t pid);

struct tp_run {
	int status;     /* exit code, or 128 + signal */
	bool timed_out; /* killed after timeout_ms */
	char *out;      /* stdout, malloc'ed */
	char *err;      /* stderr, malloc'ed */
	long ms;        /* how long it ran */
};

/*
 * Run argv (argv[0] a path) with env entries on top of the environment
 * stripped of KVFERRY_*; capture its output. Returns 0 when it ran (see
 * r->status), -1 when it could not start.
 */
int tp_run(struct tp_run *r, int timeout_ms, const char *const *env,
           const char *const *argv);
void tp_run_free(struct tp_run *r);

/*
 * Read exactly n bytes from fd (a pipe or socket to another process of the
 * test) into p, all of them within timeout_ms. Returns 0, or -1 on end of
 * file, an error or the timeout.
 */
int tp_read_full(int fd, void *p, size_t n, int timeout_ms);

/* Write all n bytes of p to fd within timeout_ms. Returns 0, or -1 on an
 * error (a closed peer: callers ignore SIGPIPE or let it end them) or the
 * timeout. */
int tp_write_full(int fd, const void *p, size_t n, int timeout_ms);

/*
 * Wait up to timeout_ms for the child pid to exit, then SIGKILL it. Returns
 * its exit code (128 + signal when a signal ended it), or -1 when it had
 * to be killed or could not be waited for.
 */
int tp_reap(pid_t pid, int timeout_ms);

/* Where Linux keeps the last pid it handed out in this pid namespace. */
#define TP_LAST_PID "/proc/sys/kernel/ns_last_pid"
/* Make the next process created get the first free pid above v (writes
 * TP_LAST_PID: root only). 0, or -1 when it cannot be written. */
int tp_place_next_pid(long v);

/*
 * Run a command line (printf format) with /bin/sh -c, bounded to 10 s.
 * Returns 0 when it exited 0, else its exit status (128 + signal, or -1
 * when it could not start); a failure is said to say with its stderr.
 */
int tp_sh(enum tp_say say, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
