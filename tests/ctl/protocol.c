/* The control socket under bad input: undecodable, oversized and
 * wrong-version requests get an Error reply and a log line while the
 * daemon keeps serving; kvferryctl refuses a reply of another version. */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include "client/kvferry.h"
#include "proto/ctl.pb-c.h"
#include "proto/version.h"
#include "tests/tap/proc.h"
#include "tests/tap/tap.h"

/* Send raw bytes, return the decoded reply (NULL on timeout/garbage). */
static Kvf__Ctl__Reply *ask_raw(const char *url, const void *buf, size_t len,
                                int *nng_rv)
{
	Kvf__Ctl__Reply *rep = NULL;
	nng_socket s;
	nng_msg *m;
	int rv;

	if ((rv = nng_req0_open(&s)) != 0)
		goto out;
	nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 3000);
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 3000);
	nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, 60000);
	if ((rv = nng_dial(s, url, NULL, 0)) != 0 ||
	    (rv = nng_msg_alloc(&m, len)) != 0) {
		nng_close(s);
		goto out;
	}
	if (len)
		memcpy(nng_msg_body(m), buf, len);
	if ((rv = nng_sendmsg(s, m, 0)) != 0) {
		nng_msg_free(m);
		nng_close(s);
		goto out;
	}
	if ((rv = nng_recvmsg(s, &m, 0)) == 0) {
		rep = kvf__ctl__reply__unpack(NULL, nng_msg_len(m),
		    nng_msg_body(m));
		nng_msg_free(m);
	}
	nng_close(s);
out:
	if (nng_rv)
		*nng_rv = rv;
	return rep;
}

/*
 * Speak nng's IPC framing by hand (an 8-byte SP header naming req0, then
 * a type byte and a 64-bit big-endian length per message) to announce an
 * 8 MiB request, send only its first 64 KiB, and see the daemon hang up.
 * An nng client can't do this: its close waits for the unsent rest.
 */
static int huge_dropped(const char *path)
{
	static const uint8_t hdr[8] = { 0, 'S', 'P', 0, 0, 0x30, 0, 0 };
	uint8_t peer[8], msg[9] = { 1 }, chunk[4096] = { 0 };
	uint64_t len = 8u << 20;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct pollfd pfd;
	int fd, r = 0;

	if (strlen(path) >= sizeof(sa.sun_path))
		return 0;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (void *)&sa, sizeof(sa)) != 0 ||
	    write(fd, hdr, 8) != 8 || read(fd, peer, 8) != 8) {
		diag("raw ipc connect to %s failed", path);
		if (fd >= 0)
			close(fd);
		return 0;
	}
	for (int i = 0; i < 8; i++)
		msg[1 + i] = (uint8_t)(len >> (56 - 8 * i));
	if (write(fd, msg, 9) != 9) {
		close(fd);
		return 0;
	}
	for (int i = 0; i < 16; i++)
		if (send(fd, chunk, sizeof(chunk), MSG_NOSIGNAL) < 0)
			break;
	pfd.fd = fd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, 5000) == 1) {
		ssize_t n = read(fd, peer, sizeof(peer));
		r = n <= 0;
	} else {
		diag("the daemon kept the connection for 5 s");
	}
	close(fd);
	return r;
}

static Kvf__Ctl__Reply *ask(const char *url, const Kvf__Ctl__Request *req)
{
	size_t n = kvf__ctl__request__get_packed_size(req);
	uint8_t *buf = malloc(n ? n : 1);
	Kvf__Ctl__Reply *rep;

	kvf__ctl__request__pack(req, buf);
	rep = ask_raw(url, buf, n, NULL);
	free(buf);
	return rep;
}

static int is_error(const Kvf__Ctl__Reply *rep, unsigned code,
                    const char *needle)
{
	if (!rep || rep->body_case != KVF__CTL__REPLY__BODY_ERROR) {
		diag("no error reply (%s)", rep ? "other body" : "none");
		return 0;
	}
	if (rep->error->code != code || !strstr(rep->error->message, needle)) {
		diag("error %u '%s', wanted %u with '%s'", rep->error->code,
		    rep->error->message, code, needle);
		return 0;
	}
	return rep->proto_version == KVF_CTL_PROTO_VERSION;
}

static int status_ok(const char *url, pid_t pid)
{
	Kvf__Ctl__Request req = KVF__CTL__REQUEST__INIT;
	Kvf__Ctl__StatusRequest sr = KVF__CTL__STATUS_REQUEST__INIT;
	Kvf__Ctl__Reply *rep;
	int good;

	req.proto_version = KVF_CTL_PROTO_VERSION;
	req.body_case = KVF__CTL__REQUEST__BODY_STATUS;
	req.status = &sr;
	rep = ask(url, &req);
	good = rep && rep->body_case == KVF__CTL__REPLY__BODY_STATUS &&
	    rep->status->pid == (uint32_t)pid;
	if (rep)
		kvf__ctl__reply__free_unpacked(rep, NULL);
	return good;
}

/* A fake sidecar (a child process) answering one request with a reply of
 * control protocol version 7. Forked before this process uses nng. */
static pid_t fake_sidecar(const char *url)
{
	pid_t pid = fork();

	if (pid == 0) {
		Kvf__Ctl__Reply rep = KVF__CTL__REPLY__INIT;
		Kvf__Ctl__StatusReply st = KVF__CTL__STATUS_REPLY__INIT;
		nng_socket s;
		nng_msg *m;
		uint8_t buf[256];
		size_t n;

		rep.proto_version = 7;
		rep.body_case = KVF__CTL__REPLY__BODY_STATUS;
		rep.status = &st;
		n = kvf__ctl__reply__pack(&rep, buf);
		if (nng_rep0_open(&s) || nng_listen(s, url, NULL, 0))
			_exit(1);
		nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 10000);
		if (nng_recvmsg(s, &m, 0) == 0) {
			nng_msg_clear(m);
			nng_msg_append(m, buf, n);
			nng_sendmsg(s, m, 0);
			usleep(200000);
		}
		nng_close(s);
		_exit(0);
	}
	return pid;
}

int main(void)
{
	struct tp_daemon d;
	Kvf__Ctl__Request req = KVF__CTL__REQUEST__INIT;
	Kvf__Ctl__StatusRequest sr = KVF__CTL__STATUS_REQUEST__INIT;
	Kvf__Ctl__Reply *rep;
	char url[64], want[256];
	uint8_t *big;

	plan(14);

	/* kvferryctl against a sidecar of another protocol version. */
	{
		const char *argv[] = { tp_bin("kvferryctl"), "-u", url, "-t",
			"5000", "status", NULL };
		struct tp_run r;
		pid_t fake;
		snprintf(url, sizeof(url), "tcp://127.0.0.1:%d",
		    tp_free_port());
		fake = fake_sidecar(url);
		tp_run(&r, 10000, NULL, argv);
		snprintf(want, sizeof(want), "speaks control protocol version "
		    "7, this kvferryctl (kvferry %s) speaks version %u",
		    KVF_VERSION_STRING, KVF_CTL_PROTO_VERSION);
		ok(r.status == 3 && strstr(r.err, want),
		    "kvferryctl refuses a reply of another version, exit 3");
		if (r.status != 3 || !strstr(r.err, want))
			diag("exit %d: %s", r.status, r.err);
		tp_run_free(&r);
		kill(fake, SIGKILL);
		waitpid(fake, NULL, 0);
	}

	if (tp_daemon_start(&d, "d", NULL, NULL) != 0)
		bail("kvferryd did not start");
	ok(status_ok(d.control_url, d.pid), "a good status request answers");

	/* Bytes that are not a Request. */
	{
		static const uint8_t junk[] = { 0xff, 0xff, 0xff, 0xff, 0x0f,
			0x42, 0x13, 0x37 };
		rep = ask_raw(d.control_url, junk, sizeof(junk), NULL);
		ok(is_error(rep, KVF_EPROTO, "does not decode as "
		    "kvf.ctl.Request"), "garbage: Error KVF_EPROTO");
		if (rep)
			kvf__ctl__reply__free_unpacked(rep, NULL);
		ok(status_ok(d.control_url, d.pid), "still serving after garbage");
	}

	/* Over the limit, but within what the socket receives. */
	big = calloc(1, KVF_MAX_CONTROL_MSG + 4096);
	if (!big)
		bail("out of memory");
	memset(big, 0x08, KVF_MAX_CONTROL_MSG + 1);
	rep = ask_raw(d.control_url, big, KVF_MAX_CONTROL_MSG + 1, NULL);
	snprintf(want, sizeof(want), "control request of %u bytes is larger "
	    "than the limit of %u bytes", KVF_MAX_CONTROL_MSG + 1,
	    KVF_MAX_CONTROL_MSG);
	ok(is_error(rep, KVF_EPROTO, want), "oversized: Error KVF_EPROTO");
	if (rep)
		kvf__ctl__reply__free_unpacked(rep, NULL);
	free(big);
	ok(status_ok(d.control_url, d.pid), "still serving after oversized");

	/* Far over: the daemon must drop the connection without reading
	 * it all, and go on serving. */
	ok(huge_dropped(d.control_url + 6),
	    "8 MiB request: the connection is dropped");
	ok(status_ok(d.control_url, d.pid), "still serving after 8 MiB");

	/* Another protocol version. */
	req.proto_version = 99;
	req.body_case = KVF__CTL__REQUEST__BODY_STATUS;
	req.status = &sr;
	rep = ask(d.control_url, &req);
	snprintf(want, sizeof(want), "control protocol version 99 refused: "
	    "this sidecar (kvferry %s) speaks control protocol version %u",
	    KVF_VERSION_STRING, KVF_CTL_PROTO_VERSION);
	ok(is_error(rep, KVF_EVERSION, want),
	    "version 99: Error KVF_EVERSION naming both versions");
	if (rep)
		kvf__ctl__reply__free_unpacked(rep, NULL);

	/* No command. */
	req.proto_version = KVF_CTL_PROTO_VERSION;
	req.body_case = KVF__CTL__REQUEST__BODY__NOT_SET;
	rep = ask(d.control_url, &req);
	ok(is_error(rep, KVF_EINVAL, "carries no command"),
	    "no command: Error KVF_EINVAL");
	if (rep)
		kvf__ctl__reply__free_unpacked(rep, NULL);
	ok(status_ok(d.control_url, d.pid), "still serving at the end");

	/* One log line per refused request. */
	is_int(tp_count_lines(d.log_path, "does not decode"), 1,
	    "one log line for the garbage");
	is_int(tp_count_lines(d.log_path, "is larger than the limit"), 1,
	    "one log line for the oversized request");
	ok(tp_daemon_stop(&d, SIGTERM, 10000) == 0 && WIFEXITED(d.status) &&
	        WEXITSTATUS(d.status) == 0,
	    "clean SIGTERM exit after all that");
	return tap_exit_status();
}
