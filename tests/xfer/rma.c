/* tests/xfer/rma.c - two real processes on one rail each (tcp;ofi_rxm and
 * shm): RMA write and read verified byte by byte, messages both ways, a bad
 * key ending in an error completion, and a full queue giving KVF_EAGAIN. */
#include "client/kvferry.h"
#include "tests/tap/clock.h"
#include "tests/tap/pattern.h"
#include "tests/tap/proc.h"
#include "tests/tap/tap.h"
#include "xfer/fabric.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_LEN ((size_t)4 << 20) + 123
#define CHUNK ((size_t)512 << 10)
#define WAIT_MS 10000
#define CHILD_MS 30000

/* What each side tells the other over the socketpair at start. */
struct hello {
	uint32_t addr_len;
	uint8_t addr[256];
	uint64_t key;
	uint64_t base;
};

/* The target's own findings, sent back to the parent at the end. */
struct report {
	int opened;
	int write_ok;
	long long first_bad;
	int pings;
	int errors;
};

/* Wait up to ms for one completion: spin briefly, then block on the wait
 * fd (bounded) or sleep a little. 1 when *c was filled, 0 on timeout. */
static int next_comp(struct xfer_fabric *f, struct xfer_comp *c, int ms)
{
	long long end = tp_now_ms() + ms;
	int spins = 0, n = 0;

	for (;;) {
		if (xfer_fabric_poll(f, c, 1, &n) != 0)
			return 0;
		if (n == 1)
			return 1;
		if (tp_now_ms() > end)
			return 0;
		if (++spins < 200)
			continue;
		int fd = xfer_fabric_wait_fd(f);
		if (fd >= 0 && xfer_fabric_trywait(f)) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			poll(&p, 1, 5);
		} else {
			usleep(50);
		}
	}
}

static struct xfer_ctx send_ctx[64];
static unsigned send_next;

static int send_str(struct xfer_fabric *f, uint64_t to, const char *s)
{
	long long end = tp_now_ms() + WAIT_MS;
	struct xfer_comp c;
	int rc;

	while ((rc = xfer_post_send(f, s, strlen(s) + 1, to,
	                            &send_ctx[send_next++ % 64])) ==
	           KVF_EAGAIN &&
	       tp_now_ms() < end)
		next_comp(f, &c, 1);
	return rc;
}

static int open_side(const char *prov, int sock, struct xfer_fabric **f,
                     uint8_t *buf, uint64_t key, struct xfer_mr **mr,
                     uint64_t *peer, struct hello *them_out)
{
	struct xfer_fabric_config cfg = {
		.provider = prov,
		.node = strcmp(prov, "tcp") == 0 ? "127.0.0.1" : NULL,
		.rx_count = 16,
		.rx_size = 512,
	};
	struct hello me = { 0 }, them;
	char err[512];
	int rc;

	rc = xfer_fabric_open(&cfg, f, err, sizeof(err));
	if (rc != 0) {
		diag("open %s: %s", prov, err);
		return rc;
	}
	rc = xfer_mr_reg(*f, buf, BUF_LEN, XFER_MEM_HOST, 0, key, mr);
	if (rc != 0)
		return rc;
	me.addr_len = xfer_fabric_info(*f)->addr_len;
	memcpy(me.addr, xfer_fabric_info(*f)->addr, me.addr_len);
	me.key = xfer_mr_key(*mr);
	me.base = xfer_mr_remote_base(*mr);
	if (tp_write_full(sock, &me, sizeof(me), WAIT_MS) ||
	    tp_read_full(sock, &them, sizeof(them), WAIT_MS))
		return KVF_ESYSTEM;
	*them_out = them;
	rc = xfer_fabric_av_insert(*f, them.addr, them.addr_len, peer, err,
	                           sizeof(err));
	if (rc != 0)
		diag("av insert %s: %s", prov, err);
	return rc;
}

/* The target: keep the CQ moving and answer messages until "bye". */
static void child(const char *prov, int sock)
{
	static uint8_t buf[BUF_LEN];
	struct xfer_fabric *f = NULL;
	struct xfer_mr *mr = NULL;
	struct report rep = { .first_bad = -2 };
	long long end = tp_now_ms() + CHILD_MS;
	uint64_t peer = 0;
	struct xfer_comp c;
	struct hello them;

	alarm(CHILD_MS / 1000 + 10);
	rep.opened = open_side(prov, sock, &f, buf, 7, &mr, &peer, &them) == 0;
	while (rep.opened && tp_now_ms() < end) {
		struct pollfd stop = { .fd = sock, .events = POLLIN };
		char msg[512];

		if (poll(&stop, 1, 0) > 0)
			break;

		if (!next_comp(f, &c, 100))
			continue;
		if (c.type == XFER_COMP_OP) {
			rep.errors += c.status != 0;
			continue;
		}
		snprintf(msg, sizeof(msg), "%.*s", (int)c.len,
		         (const char *)c.data);
		xfer_fabric_repost(f, c.recv_slot);
		if (strcmp(msg, "written") == 0) {
			rep.first_bad =
				tp_pattern_mismatch_at(buf, BUF_LEN, 0, 1);
			rep.write_ok = rep.first_bad == -1;
			/* New bytes for the parent to read back. */
			tp_pattern_fill(buf, BUF_LEN, 2);
			send_str(f, peer, rep.write_ok ? "verified" : "bad");
		} else if (strncmp(msg, "ping ", 5) == 0) {
			rep.pings++;
			msg[1] = 'o';
			send_str(f, peer, msg);
		} else if (strcmp(msg, "bye") == 0) {
			break;
		}
	}
	tp_write_full(sock, &rep, sizeof(rep), WAIT_MS);
	xfer_mr_close(mr);
	xfer_fabric_close(f);
	_exit(0);
}

/* Wait for the completion of ctx; 1 when it came, with its status. */
static int wait_op(struct xfer_fabric *f, struct xfer_ctx *ctx,
                   struct xfer_comp *out)
{
	long long end = tp_now_ms() + WAIT_MS;
	struct xfer_comp c;

	while (tp_now_ms() < end) {
		if (!next_comp(f, &c, 100))
			continue;
		if (c.type == XFER_COMP_RECV) {
			xfer_fabric_repost(f, c.recv_slot);
			continue;
		}
		if (c.ctx == ctx) {
			*out = c;
			return 1;
		}
	}
	return 0;
}

static int wait_msg(struct xfer_fabric *f, char *msg, size_t len)
{
	long long end = tp_now_ms() + WAIT_MS;
	struct xfer_comp c;

	while (tp_now_ms() < end) {
		if (!next_comp(f, &c, 100) || c.type != XFER_COMP_RECV)
			continue;
		snprintf(msg, len, "%.*s", (int)c.len, (const char *)c.data);
		xfer_fabric_repost(f, c.recv_slot);
		return 1;
	}
	return 0;
}

/* Post n ops of one kind in chunks; wait for all; count failures. */
static int rma_all(struct xfer_fabric *f, bool write, uint8_t *buf,
                   void *desc, uint64_t peer, uint64_t base, uint64_t key)
{
	static struct xfer_ctx ctx[64];
	size_t nchunks = (BUF_LEN + CHUNK - 1) / CHUNK;
	long long end = tp_now_ms() + WAIT_MS;
	size_t posted = 0, done = 0;
	int bad = 0;

	while (done < nchunks && tp_now_ms() < end) {
		while (posted < nchunks) {
			size_t off = posted * CHUNK;
			size_t len = BUF_LEN - off < CHUNK ? BUF_LEN - off
			                                   : CHUNK;
			int rc = write ? xfer_post_write(f, buf + off, len, desc,
			                                 peer, base + off, key,
			                                 &ctx[posted])
			               : xfer_post_read(f, buf + off, len, desc,
			                                peer, base + off, key,
			                                &ctx[posted]);
			if (rc == KVF_EAGAIN)
				break;
			if (rc != 0)
				return -1;
			posted++;
		}
		struct xfer_comp c;
		if (!next_comp(f, &c, 100))
			continue;
		if (c.type == XFER_COMP_OP) {
			done++;
			bad += c.status != 0;
		} else {
			xfer_fabric_repost(f, c.recv_slot);
		}
	}
	return done == nchunks ? bad : -1;
}

static void run(const char *prov)
{
	static uint8_t buf[BUF_LEN];
	struct xfer_fabric *f = NULL;
	struct xfer_mr *mr = NULL;
	struct report rep = { 0 };
	struct hello them;
	uint64_t peer = 0;
	int sv[2], rc;
	char msg[512];
	pid_t pid;

	diag("provider %s", prov);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		bail("socketpair: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		bail("fork: %s", strerror(errno));
	if (pid == 0) {
		close(sv[0]);
		child(prov, sv[1]);
	}
	close(sv[1]);

	tp_pattern_fill(buf, BUF_LEN, 1);
	rc = open_side(prov, sv[0], &f, buf, 9, &mr, &peer, &them);
	is_int(rc, 0, "%s: both sides open, register and exchange", prov);
	if (rc != 0)
		goto out;
	uint64_t rbase = them.base, rkey = them.key;

	/* 1. Write the pattern into the target, then say so. */
	rc = rma_all(f, true, buf, xfer_mr_desc(mr), peer, rbase, rkey);
	is_int(rc, 0, "%s: %zu-byte write in %zu-byte chunks completes",
	       prov, (size_t)BUF_LEN, CHUNK);
	is_int(send_str(f, peer, "written"), 0, "%s: notify sent", prov);
	ok(wait_msg(f, msg, sizeof(msg)), "%s: target answered", prov);
	is_str(msg, "verified", "%s: target verified every byte", prov);

	/* 2. Read the target's new bytes back. */
	memset(buf, 0, BUF_LEN);
	rc = rma_all(f, false, buf, xfer_mr_desc(mr), peer, rbase, rkey);
	is_int(rc, 0, "%s: read back completes", prov);
	is_int(tp_pattern_mismatch_at(buf, BUF_LEN, 0, 2), -1,
	       "%s: read bytes match the target's (first bad offset)", prov);

	/* 3. Messages both ways, more than the receive pool holds. */
	int pongs = 0;
	for (int i = 0; i < 40; i++) {
		char want[32];

		snprintf(want, sizeof(want), "ping %d", i);
		if (send_str(f, peer, want) != 0 ||
		    !wait_msg(f, msg, sizeof(msg)))
			break;
		want[1] = 'o';
		pongs += strcmp(msg, want) == 0;
	}
	is_int(pongs, 40, "%s: 40 ping/pong messages, pool of 16", prov);

	/* 4. A full queue: KVF_EAGAIN, then everything completes. */
	{
		uint32_t tx = xfer_fabric_info(f)->tx_size;
		size_t cap = (size_t)tx * 8 + 64, posted = 0, done = 0;
		struct xfer_ctx *ctx = calloc(cap, sizeof(*ctx));
		long long end = tp_now_ms() + WAIT_MS;
		int eagain = 0, bad = 0;

		while (posted < cap && ctx) {
			rc = xfer_post_write(f, buf, 64, xfer_mr_desc(mr),
			                     peer, rbase, rkey, &ctx[posted]);
			if (rc != 0)
				break;
			posted++;
		}
		eagain = rc == KVF_EAGAIN;
		ok(eagain, "%s: KVF_EAGAIN after %zu posts (tx_size %u)",
		   prov, posted, tx);
		/* Post the rest as room appears. */
		while (done < cap && tp_now_ms() < end && ctx) {
			struct xfer_comp c;

			while (posted < cap) {
				rc = xfer_post_write(f, buf, 64,
				                     xfer_mr_desc(mr), peer,
				                     rbase, rkey, &ctx[posted]);
				if (rc != 0)
					break;
				posted++;
			}
			if (!next_comp(f, &c, 100))
				continue;
			if (c.type == XFER_COMP_RECV) {
				xfer_fabric_repost(f, c.recv_slot);
				continue;
			}
			done++;
			bad += c.status != 0;
		}
		is_int((long long)done, (long long)cap,
		       "%s: all %zu writes completed after polling", prov, cap);
		is_int(bad, 0, "%s: none failed", prov);
		free(ctx);
	}

	/* 5. A bad key ends in an error completion, not a hang. The shm
	 * provider of libfabric 1.17 logs "unknown key" and "error processing
	 * command" on the target and then neither completes the write nor
	 * moves past it (the target's command queue stalls), so there the
	 * check cannot hold: callers must validate keys before posting. */
	if (strcmp(prov, "shm") == 0) {
		skip(3, "shm 1.17 never completes a write with a bad key and "
		     "stalls the target's command queue");
	} else if (!xfer_fabric_info(f)->delivery_complete) {
		/* Ordered providers (tcp;ofi_rxm) write without
		 * delivery-complete: the local completion of a bad-key write
		 * says nothing about the target; the sidecar's closing
		 * delivery-complete message is what fails then. */
		skip(3, "%s writes without delivery-complete (ordered sends): "
		     "a bad key surfaces on the next delivery-complete message",
		     prov);
	} else {
		struct xfer_ctx ctx = { 0 };
		struct xfer_comp c;

		rc = xfer_post_write(f, buf, 4096, xfer_mr_desc(mr), peer,
		                     rbase, rkey ^ 0x5a5a00, &ctx);
		is_int(rc, 0, "%s: write with a bad key is posted", prov);
		ok(rc == 0 && wait_op(f, &ctx, &c), "%s: its completion came",
		   prov);
		ok(rc == 0 && c.status != 0, "%s: with an error status %d: %s "
		   "(prov_errno %d)", prov, c.status, c.errstr, c.prov_errno);
	}

	/* tcp;ofi_rxm 1.17: the target drops the connection on a bad key
	 * ("invalid rma iov received") and later sends to that peer fail
	 * with ENOTCONN, even after av remove + insert; so the target is
	 * told to stop over the socketpair as well as over the fabric. */
	send_str(f, peer, "bye");
	{
		/* Let the bye leave before the endpoint closes. */
		struct xfer_comp c;
		next_comp(f, &c, 200);
	}
out:
	(void)!write(sv[0], "B", 1);
	rc = tp_read_full(sv[0], &rep, sizeof(rep), CHILD_MS + WAIT_MS);
	ok(rc == 0 && rep.opened, "%s: target opened and reported", prov);
	ok(rep.write_ok, "%s: target saw every written byte (first bad %lld)",
	   prov, rep.first_bad);
	ok(rep.pings >= 40, "%s: target got %d pings", prov, rep.pings);
	xfer_mr_close(mr);
	xfer_fabric_close(f);
	close(sv[0]);
	ok(tp_reap(pid, 5000) == 0, "%s: target exited cleanly", prov);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	alarm(120);
	if (!getenv("RMA_ONLY") || strcmp(getenv("RMA_ONLY"), "tcp") == 0)
		run("tcp");
	if (!getenv("RMA_ONLY") || strcmp(getenv("RMA_ONLY"), "shm") == 0)
		run("shm");
	done_testing();
}
