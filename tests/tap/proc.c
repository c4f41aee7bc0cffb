/*
 * tests/tap/proc.c - process helpers for end-to-end tests (see proc.h).
 *
 * Children get the test's environment minus every KVFERRY_* variable, so a
 * developer's shell cannot change what a test sees, plus what the test
 * asks for. Output goes to files in the temp dir rather than pipes: no
 * pipe can fill and stall a child, and a failing test can diag() the
 * daemon's whole log. Waits poll waitpid() with short sleeps, bounded by
 * the caller's timeout; at exit every daemon still running is killed and
 * the temp dir removed.
 */
#include "tests/tap/proc.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/tap/clock.h"
#include "tests/tap/tap.h"

extern char **environ;

static char tmpdir[256];
static pid_t spawned[64];
static int nspawned;
static int run_seq;

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void cleanup(void)
{
	/* Only children still running: a reaped daemon's pid may belong to
	 * an unrelated process by now (waitpid says ECHILD for it). */
	for (int i = 0; i < nspawned; i++) {
		if (spawned[i] > 0 && waitpid(spawned[i], NULL, WNOHANG) == 0) {
			kill(spawned[i], SIGKILL);
			waitpid(spawned[i], NULL, 0);
		}
	}
	if (tmpdir[0] && !getenv("KVF_KEEP_TMP"))
		nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

const char *tp_tmpdir(void)
{
	const char *base = getenv("TMPDIR");

	if (tmpdir[0])
		return tmpdir;
	if (!base || !base[0])
		base = "/tmp";
	snprintf(tmpdir, sizeof(tmpdir), "%s/kvf-test-XXXXXX", base);
	if (!mkdtemp(tmpdir)) {
		int e = errno;
		tmpdir[0] = '\0';
		bail("mkdtemp(%s/kvf-test-XXXXXX) failed: %s", base,
		    strerror(e));
	}
	atexit(cleanup);
	return tmpdir;
}

const char *tp_bin(const char *name)
{
	static char bufs[8][512];
	static int next;
	const char *b = getenv("KVF_BUILD");
	char *p;

	if (!b || !b[0])
		bail("KVF_BUILD is not set (run through make check)");
	p = bufs[next++ % 8];
	snprintf(p, 512, "%s/bin/%s", b, name);
	return p;
}

int tp_free_port(void)
{
	struct sockaddr_in a = { 0 };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port;

	if (fd < 0)
		return -1;
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
		close(fd);
		return -1;
	}
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

char *tp_read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0, r;

	if (!f)
		return NULL;
	for (;;) {
		if (cap - n < 4096) {
			char *nb = realloc(buf, cap + 65536);
			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
			cap += 65536;
		}
		r = fread(buf + n, 1, cap - n - 1, f);
		n += r;
		if (r == 0)
			break;
	}
	fclose(f);
	buf[n] = '\0';
	return buf;
}

int tp_count_lines(const char *path, const char *needle)
{
	char *s = tp_read_file(path), *line, *save = NULL;
	int n = 0;

	if (!s)
		return 0;
	for (line = strtok_r(s, "\n", &save); line;
	    line = strtok_r(NULL, "\n", &save))
		if (strstr(line, needle))
			n++;
	free(s);
	return n;
}

/* In the child: drop KVFERRY_*, add env. */
static void child_env(const char *const *env)
{
	char name[256];

	for (;;) {
		int found = 0;
		for (char **e = environ; *e; e++) {
			if (strncmp(*e, "KVFERRY_", 8) == 0) {
				size_t n = strcspn(*e, "=");
				if (n >= sizeof(name))
					n = sizeof(name) - 1;
				memcpy(name, *e, n);
				name[n] = '\0';
				unsetenv(name);
				found = 1;
				break;
			}
		}
		if (!found)
			break;
	}
	for (; env && *env; env++)
		putenv((char *)*env);
}

static pid_t spawn(const char *const *argv, const char *const *env,
                   const char *out, const char *err)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fo = open(out, O_WRONLY | O_CREAT | O_APPEND, 0644);
		int fe = strcmp(out, err) == 0 ? fo :
		    open(err, O_WRONLY | O_CREAT | O_APPEND, 0644);
		int fn = open("/dev/null", O_RDONLY);
		if (fo < 0 || fe < 0 || fn < 0)
			_exit(126);
		dup2(fn, 0);
		dup2(fo, 1);
		dup2(fe, 2);
		child_env(env);
		execv(argv[0], (char *const *)argv);
		dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

static int decode_status(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return -1;
}

int tp_run(struct tp_run *r, int timeout_ms, const char *const *env,
           const char *const *argv)
{
	char out[320], err[320];
	long t0 = tp_now_ms(), nap = 1;
	pid_t pid;
	int st = 0;

	memset(r, 0, sizeof(r[0]));
	snprintf(out, sizeof(out), "%s/run-%d.out", tp_tmpdir(), run_seq);
	snprintf(err, sizeof(err), "%s/run-%d.err", tp_tmpdir(), run_seq++);
	pid = spawn(argv, env, out, err);
	if (pid < 0)
		return -1;
	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR)
			return -1;
		if (tp_now_ms() - t0 > timeout_ms) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			r->timed_out = true;
			break;
		}
		tp_sleep_ms(nap);
		if (nap < 20)
			nap *= 2;
	}
	r->ms = tp_now_ms() - t0;
	r->status = decode_status(st);
	r->out = tp_read_file(out);
	r->err = tp_read_file(err);
	if (!r->out)
		r->out = strdup("");
	if (!r->err)
		r->err = strdup("");
	unlink(out);
	unlink(err);
	return 0;
}

void tp_run_free(struct tp_run *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

/* All n bytes into in (from fd) or out of out (to fd) within timeout_ms:
 * poll for data or room, then as much as the kernel takes. */
static int full_io(int fd, uint8_t *in, const uint8_t *out, size_t n,
                   int timeout_ms)
{
	long end = tp_now_ms() + timeout_ms;
	size_t done = 0;

	while (done < n) {
		struct pollfd pf = { .fd = fd, .events = in ? POLLIN : POLLOUT };
		long left = end - tp_now_ms();
		ssize_t r;

		if (left <= 0)
			return -1;
		r = poll(&pf, 1, (int)left);
		if (r > 0)
			r = in ? read(fd, in + done, n - done)
			       : write(fd, out + done, n - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		done += (size_t)r;
	}
	return 0;
}

int tp_read_full(int fd, void *p, size_t n, int timeout_ms)
{
	return full_io(fd, p, NULL, n, timeout_ms);
}

int tp_write_full(int fd, const void *p, size_t n, int timeout_ms)
{
	return full_io(fd, NULL, p, n, timeout_ms);
}

int tp_place_next_pid(long v)
{
	FILE *f = fopen(TP_LAST_PID, "w");
	int rc;

	if (!f)
		return -1;
	rc = fprintf(f, "%ld", v) > 0 ? 0 : -1;
	if (fclose(f) != 0)
		rc = -1;
	return rc;
}

int tp_reap(pid_t pid, int timeout_ms)
{
	long t0 = tp_now_ms(), nap = 1;
	int st = 0;

	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			return decode_status(st);
		if (w < 0 && errno != EINTR)
			return -1;
		if (tp_now_ms() - t0 > timeout_ms)
			break;
		tp_sleep_ms(nap);
		if (nap < 20)
			nap *= 2;
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

int tp_sh(enum tp_say say, const char *fmt, ...)
{
	char cmd[1024];
	const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	struct tp_run r;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (tp_run(&r, 10000, NULL, argv) != 0) {
		tp_say(say, "%s: could not run /bin/sh", cmd);
		return -1;
	}
	rc = r.status;
	if (rc != 0)
		tp_say(say, "%s: exit %d%s: %s", cmd, rc,
		    r.timed_out ? " (timed out)" : "", r.err);
	tp_run_free(&r);
	return rc;
}

static int spawn_daemon(struct tp_daemon *d, const char *name,
                        const char *const *args, const char *const *env,
                        int defaults)
{
	const char *argv[64];
	int n = 0;

	memset(d, 0, sizeof(*d));
	snprintf(d->dir, sizeof(d->dir), "%s/%s", tp_tmpdir(), name);
	if (mkdir(d->dir, 0755) != 0 && errno != EEXIST) {
		diag("mkdir %s: %s", d->dir, strerror(errno));
		return -1;
	}
	snprintf(d->engine_socket, sizeof(d->engine_socket), "%s/engine.sock",
	    d->dir);
	snprintf(d->control_url, sizeof(d->control_url),
	    "ipc://%s/control.sock", d->dir);
	snprintf(d->peer_url, sizeof(d->peer_url), "tcp://127.0.0.1:%d",
	    tp_free_port());
	snprintf(d->log_path, sizeof(d->log_path), "%s/kvferryd.log", d->dir);

	argv[n++] = tp_bin("kvferryd");
	if (defaults) {
		argv[n++] = "--engine-socket";
		argv[n++] = d->engine_socket;
		argv[n++] = "--control-url";
		argv[n++] = d->control_url;
		argv[n++] = "--peer-url";
		argv[n++] = d->peer_url;
		/* Not the auto choice: it may pick shm, whose endpoint name
		 * derives from the fabric address, so two sidecars on
		 * 127.0.0.1 anywhere on this host (another test running at
		 * the same time) collide in fi_enable. */
		int env_sets = 0;
		for (const char *const *e = env; e && *e; e++)
			env_sets |= strncmp(*e, "KVFERRY_PROVIDER=", 17) == 0;
		if (!env_sets) {
			argv[n++] = "--provider";
			argv[n++] = getenv("KVF_TEST_PROVIDER") ?
			    getenv("KVF_TEST_PROVIDER") : "tcp";
		}
	}
	for (; args && *args && n < 63; args++) {
		/* Later flags win in kvferryd; keep d's view the same. */
		if (args[1] && strcmp(args[0], "--control-url") == 0)
			snprintf(d->control_url, sizeof(d->control_url), "%s",
			    args[1]);
		else if (args[1] && strcmp(args[0], "--engine-socket") == 0)
			snprintf(d->engine_socket, sizeof(d->engine_socket),
			    "%s", args[1]);
		else if (args[1] && strcmp(args[0], "--peer-url") == 0)
			snprintf(d->peer_url, sizeof(d->peer_url), "%s",
			    args[1]);
		argv[n++] = *args;
	}
	argv[n] = NULL;
	d->pid = spawn(argv, env, d->log_path, d->log_path);
	if (d->pid < 0) {
		d->pid = 0;
		return -1;
	}
	if (nspawned < (int)(sizeof(spawned) / sizeof(spawned[0])))
		spawned[nspawned++] = d->pid;
	return 0;
}

int tp_daemon_spawn(struct tp_daemon *d, const char *name,
                    const char *const *args, const char *const *env)
{
	return spawn_daemon(d, name, args, env, 1);
}

int tp_daemon_spawn_raw(struct tp_daemon *d, const char *name,
                        const char *const *args, const char *const *env)
{
	return spawn_daemon(d, name, args, env, 0);
}

int tp_daemon_wait(struct tp_daemon *d, int timeout_ms)
{
	long t0 = tp_now_ms(), nap = 1;

	while (d->pid > 0) {
		pid_t w = waitpid(d->pid, &d->status, WNOHANG);
		if (w == d->pid) {
			d->pid = 0;
			return 0;
		}
		if (w < 0 && errno != EINTR) {
			d->pid = 0;
			return 0;
		}
		if (tp_now_ms() - t0 > timeout_ms)
			return -1;
		tp_sleep_ms(nap);
		if (nap < 20)
			nap *= 2;
	}
	return 0;
}

int tp_daemon_wait_ready(struct tp_daemon *d, int timeout_ms)
{
	long t0 = tp_now_ms();
	const char *argv[] = { tp_bin("kvferryctl"), "-u", d->control_url,
		"-t", "500", "status", NULL };
	struct tp_run r;

	for (;;) {
		if (d->pid <= 0 || tp_daemon_wait(d, 0) == 0)
			return -1;
		if (tp_run(&r, 2000, NULL, argv) == 0) {
			int good = r.status == 0;
			tp_run_free(&r);
			if (good)
				return 0;
		}
		if (tp_now_ms() - t0 > timeout_ms)
			return -1;
		tp_sleep_ms(30);
	}
}

char *tp_daemon_log(const struct tp_daemon *d)
{
	char *s = tp_read_file(d->log_path);

	return s ? s : strdup("");
}

int tp_daemon_log_count(const struct tp_daemon *d, const char *needle)
{
	return tp_count_lines(d->log_path, needle);
}

long tp_proc_rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (!(f = fopen(path, "r")))
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

int tp_proc_fds(pid_t pid)
{
	char path[64];
	struct dirent *e;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	if (!(d = opendir(path)))
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

int tp_daemon_start(struct tp_daemon *d, const char *name,
                    const char *const *args, const char *const *env)
{
	char *log;

	if (tp_daemon_spawn(d, name, args, env) != 0)
		return -1;
	if (tp_daemon_wait_ready(d, 15000) == 0)
		return 0;
	log = tp_daemon_log(d);
	diag("kvferryd %s did not become ready; its log:\n%s", name, log);
	free(log);
	return -1;
}

int tp_daemon_stop(struct tp_daemon *d, int sig, int timeout_ms)
{
	if (d->pid <= 0)
		return 0;
	kill(d->pid, sig);
	if (tp_daemon_wait(d, timeout_ms) == 0)
		return 0;
	kill(d->pid, SIGKILL);
	tp_daemon_wait(d, 5000);
	return -1;
}
