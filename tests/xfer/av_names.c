/*
 * tests/xfer/av_names.c - peers' addresses of another length than ours. A
 * shm address is its endpoint's name, "fi_shm://<pid>:<uid>:<n>" where n
 * counts the process's endpoints, so the eleventh endpoint of a process has
 * an address one byte longer than the first's, as a sidecar whose pid has
 * one digit more has. Both take the other into their address vector and
 * RMA writes go both ways, checked byte by byte. Then addresses no peer
 * sends: longer than any we take (KVF_EINVAL, named), a name without its
 * NUL, and over tcp a sockaddr of no family, whose refusal must carry the
 * provider's reason.
 */
#include "client/kvferry.h"
#include "tests/tap/clock.h"
#include "tests/tap/pattern.h"
#include "tests/tap/tap.h"
#include "xfer/fabric.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUF_LEN ((size_t)256 << 10)
#define WAIT_MS 10000
#define MAX_OPENS 24

static struct xfer_fabric *open_one(const char *prov, char *err,
                                    size_t errlen)
{
	struct xfer_fabric_config cfg = {
		.provider = prov,
		.node = strcmp(prov, "tcp") == 0 ? "127.0.0.1" : NULL,
		.rx_count = 8,
		.rx_size = 256,
	};
	struct xfer_fabric *f = NULL;

	if (xfer_fabric_open(&cfg, &f, err, errlen) != 0)
		return NULL;
	return f;
}

/* Poll both until one operation of src completes; its status, or -1. */
static int wait_op(struct xfer_fabric *src, struct xfer_fabric *dst)
{
	long long end = tp_now_ms() + WAIT_MS;
	struct xfer_comp c;
	int n;

	while (tp_now_ms() < end) {
		if (xfer_fabric_poll(src, &c, 1, &n) != 0)
			return -1;
		if (n == 1 && c.type == XFER_COMP_OP) {
			if (c.status != 0)
				diag("completion: %s", c.errstr);
			return c.status;
		}
		if (xfer_fabric_poll(dst, &c, 1, &n) != 0)
			return -1;
		usleep(100);
	}
	diag("no completion within %d ms", WAIT_MS);
	return -1;
}

struct side {
	struct xfer_fabric *f;
	struct xfer_mr *mr;
	uint8_t *buf;
	uint64_t peer; /* the other side in this one's address vector */
};

/* WRITE from a to b's buffer; 1 when b holds the pattern after. */
static int write_check(struct side *a, struct side *b, uint64_t seed)
{
	struct xfer_ctx ctx = {0};
	int rc;

	tp_pattern_fill(a->buf, BUF_LEN, seed);
	memset(b->buf, 0, BUF_LEN);
	/* shm answers KVF_EAGAIN until the two endpoints have met. */
	for (long long end = tp_now_ms() + WAIT_MS;;) {
		struct xfer_comp c;
		int n;

		rc = xfer_post_write(a->f, a->buf, BUF_LEN,
		                     xfer_mr_desc(a->mr), a->peer,
		                     xfer_mr_remote_base(b->mr),
		                     xfer_mr_key(b->mr), &ctx);
		if (rc != KVF_EAGAIN || tp_now_ms() > end)
			break;
		xfer_fabric_poll(a->f, &c, 1, &n);
		xfer_fabric_poll(b->f, &c, 1, &n);
		usleep(100);
	}
	if (rc != 0) {
		diag("xfer_post_write: %s", kvf_strerror(rc));
		return 0;
	}
	return wait_op(a->f, b->f) == 0 &&
	       tp_pattern_ok(b->buf, BUF_LEN, seed);
}

static void shm_lengths(void)
{
	const struct xfer_fabric_info *si, *li = NULL;
	struct side s = {0}, l = {0};
	char err[400];
	int rc, opens = 1;
	bool inserted;

	s.f = open_one("shm", err, sizeof(err));
	if (!s.f) {
		skip(8, "shm: %s", err);
		return;
	}
	si = xfer_fabric_info(s.f);
	/* Open and close endpoints until one's name is longer. */
	while (opens++ < MAX_OPENS) {
		l.f = open_one("shm", err, sizeof(err));
		if (!l.f)
			break;
		li = xfer_fabric_info(l.f);
		if (li->addr_len != si->addr_len)
			break;
		xfer_fabric_close(l.f);
		l.f = NULL;
	}
	if (!ok(l.f != NULL && li->addr_len == si->addr_len + 1,
	        "shm: an endpoint whose address is one byte longer, after "
	        "%d opens", opens)) {
		diag("%s", l.f ? li->addr_str : err);
		skip(8, "no two address lengths");
		xfer_fabric_close(l.f);
		xfer_fabric_close(s.f);
		return;
	}
	diag("%s (%u bytes) and %s (%u bytes)", si->addr_str, si->addr_len,
	     li->addr_str, li->addr_len);

	rc = xfer_fabric_av_insert(s.f, li->addr, li->addr_len, &s.peer, err,
	                           sizeof(err));
	if (!is_int(rc, 0, "shm: the longer address goes into the shorter's "
	            "address vector"))
		diag("%s", err);
	inserted = rc == 0;
	rc = xfer_fabric_av_insert(l.f, si->addr, si->addr_len, &l.peer, err,
	                           sizeof(err));
	if (!is_int(rc, 0, "shm: and the shorter into the longer's"))
		diag("%s", err);
	inserted = inserted && rc == 0;

	s.buf = malloc(BUF_LEN);
	l.buf = malloc(BUF_LEN);
	if (!s.buf || !l.buf ||
	    xfer_mr_reg(s.f, s.buf, BUF_LEN, XFER_MEM_HOST, 0, 1, &s.mr) ||
	    xfer_mr_reg(l.f, l.buf, BUF_LEN, XFER_MEM_HOST, 0, 2, &l.mr))
		bail("shm: no buffers or registrations");
	if (inserted) {
		ok(write_check(&s, &l, 21), "shm: WRITE of %zu bytes shorter "
		   "to longer landed", BUF_LEN);
		ok(write_check(&l, &s, 22), "shm: WRITE of %zu bytes longer "
		   "to shorter landed", BUF_LEN);
	} else {
		/* A write to an address not in the vector crashes shm. */
		skip(2, "shm: no writes without both addresses");
	}

	/* Longer than any address we take: refused before the provider. */
	{
		uint8_t big[257];
		uint64_t a;

		memset(big, 'x', sizeof(big));
		rc = xfer_fabric_av_insert(s.f, big, sizeof(big), &a, err,
		                           sizeof(err));
		is_int(rc, KVF_EINVAL, "shm: an address of 257 bytes: "
		       "KVF_EINVAL");
		like(err, "257 bytes", "and the message says how long: %s",
		     err);
		/* A name with no NUL in its 256 bytes: terminated here, so
		 * the provider reads no further; shm cannot open a name
		 * that long and says so. */
		rc = xfer_fabric_av_insert(s.f, big, 256, &a, err,
		                           sizeof(err));
		ok(rc == KVF_EFABRIC || rc == 0,
		   "shm: a 256-byte name without its NUL: %s%s%s",
		   kvf_strerror(rc), rc ? ": " : "", rc ? err : "");
	}
	xfer_mr_close(s.mr);
	xfer_mr_close(l.mr);
	xfer_fabric_close(l.f);
	xfer_fabric_close(s.f);
	free(s.buf);
	free(l.buf);
}

static void tcp_reason(void)
{
	struct xfer_fabric *f;
	const struct xfer_fabric_info *fi;
	uint8_t bogus[256];
	uint64_t a;
	char err[400];
	int rc;

	f = open_one("tcp", err, sizeof(err));
	if (!f) {
		skip(3, "tcp: %s", err);
		return;
	}
	fi = xfer_fabric_info(f);
	/* Our own address with its family made up. */
	memcpy(bogus, fi->addr, fi->addr_len);
	bogus[0] = 0x77;
	bogus[1] = 0x77;
	err[0] = '\0';
	rc = xfer_fabric_av_insert(f, bogus, fi->addr_len, &a, err,
	                           sizeof(err));
	is_int(rc, KVF_EFABRIC, "tcp: a sockaddr of family 0x7777: "
	       "KVF_EFABRIC");
	like(err, "fi_av_insert(", "the message names the call: %s", err);
	ok(strstr(err, "gave no reason") == NULL && strstr(err, "(-") != NULL,
	   "and carries the provider's errno");
	xfer_fabric_close(f);
}

int main(void)
{
	plan(11);
	shm_lengths();
	tcp_reason();
	return tap_exit_status();
}
