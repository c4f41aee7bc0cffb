/*
 * tests/bench/fi_raw_bench.c - the raw libfabric baseline our benchmarks
 * are compared with: no kvferry code, just two processes (fork, with
 * addresses and keys swapped over a socketpair) on one FI_EP_RDM endpoint
 * each. Bandwidth mode keeps a window of RMA writes (or reads, -r) in
 * flight over a size sweep, warm-up excluded, iterations scaled by size.
 * Latency mode (-m lat) is a write+notify ping-pong: the initiator writes,
 * waits for the write's completion, sends a notify; the target waits for
 * the notify and replies with a send. It reports two one-way figures: the
 * mean of half the round trip (the reply is a bare send, so this is less
 * than a write+notify takes), and the median of the write+notify itself,
 * from the initiator's clock before posting the write to the target's
 * when the notify arrives (the notify carries the first, the reply the
 * difference; the processes are forked, so they share CLOCK_MONOTONIC).
 * Writes ask for FI_DELIVERY_COMPLETE like kvferry's (-D: provider
 * default). The target polls its CQ for progress adaptively: a short spin,
 * then the CQ's wait fd (or a short sleep), since small machines have few
 * cores to spare.
 *
 *   fi_raw_bench [-p provider] [-s min] [-S max] [-w window] [-m bw|lat]
 *                [-r] [-D] [-o csv] [-a addr] [-A target-addr]
 *                [-N target-netns] [-F footprint]
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>

#include "tests/bench/lib/cli.h"
#include "tests/bench/lib/fi_raw.h"
#include "tests/bench/lib/samples.h"
#include "tests/tap/clock.h"
#include "tests/tap/proc.h"

/* The two processes exchange addresses at the start and a byte at the
 * end, each a moment's work for the other side. */
#define SOCK_MS 120000
/* The largest -s and -S: the size sweep doubles up to it. */
#define MAX_SIZE ((uint64_t)1 << 40)

/* Exit status 2: a libfabric call failed, 3: a completion came back with
 * an error; 1 is bad usage. */
#define CHECK(call)                                                          \
	do {                                                                 \
		int rc_ = (int)(call);                                       \
		if (rc_ != 0)                                                \
			bench_fail(2, "%s failed: %s (%d)", #call,           \
			           fi_strerror(-rc_), rc_);                  \
	} while (0)

struct opts {
	const char *prov;
	size_t min, max;
	int window;
	bool lat, read, csv, no_dc;
	/* -a/-A: the initiator's and the target's local address (default
	 * 127.0.0.1); -N: a network namespace the target enters first
	 * (/var/run/netns/<name>), so the two talk over a veth link. */
	const char *addr, *taddr, *tns;
	const char *node; /* this side's */
	/* -F: bytes of buffer the bandwidth mode's operations walk through
	 * (each at the next offset, on both sides), so the copies see cold
	 * memory as a transfer of that many bytes does; 0: one op's size,
	 * every op at offset 0, which shared-memory providers copy from
	 * cache. */
	size_t footprint;
	size_t buf_len; /* max(max, footprint) */
};

struct side {
	struct fi_info *fi;
	struct fid_fabric *fabric;
	struct fid_domain *domain;
	struct fid_av *av;
	struct fid_cq *cq;
	struct fid_ep *ep;
	struct fid_mr *mr;
	int wait_fd;
	uint8_t *buf;
	void *desc;
	uint8_t msg[64];
	struct fid_mr *msg_mr;
	void *msg_desc;
	fi_addr_t peer;
	uint64_t rkey, rbase;
	uint64_t wflags;
	struct fi_context2 rctx, sctx, *ctx;
};

struct hello {
	size_t len;
	uint8_t addr[256];
	uint64_t key, base;
};

/* All n bytes to or from the other process within SOCK_MS, or
 * exit: the run cannot go on without them. */
static void xfer_all(int fd, void *p, size_t n, bool wr)
{
	if (wr ? tp_write_full(fd, p, n, SOCK_MS)
	       : tp_read_full(fd, p, n, SOCK_MS)) {
		bench_fail(2, "the socketpair closed or the other side was "
		           "silent for %d s", SOCK_MS / 1000);
	}
}

static void open_side(struct side *s, struct opts *o, int sock)
{
	struct fi_info *hints = fi_allocinfo(), *list, *p;
	struct fi_cq_attr cqa = { .format = FI_CQ_FORMAT_CONTEXT,
		                  .wait_obj = FI_WAIT_FD };
	struct fi_av_attr ava = { .type = FI_AV_TABLE };
	struct hello me = { 0 }, them;
	size_t n;
	int rc;

	hints->ep_attr->type = FI_EP_RDM;
	hints->caps = FI_RMA | FI_MSG;
	hints->mode = FI_CONTEXT | FI_CONTEXT2;
	hints->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR |
	                              FI_MR_ALLOCATED | FI_MR_PROV_KEY |
	                              FI_MR_ENDPOINT;
	hints->domain_attr->threading = FI_THREAD_DOMAIN;
	if (!o->no_dc)
		hints->tx_attr->op_flags = FI_DELIVERY_COMPLETE;
	CHECK(fi_getinfo(FI_VERSION(1, 17),
	                 strcmp(o->prov, "shm") ? o->node : NULL, NULL,
	                 strcmp(o->prov, "shm") ? FI_SOURCE : 0, hints,
	                 &list));
	for (p = list; p; p = p->next) {
		const char *nm = p->fabric_attr->prov_name;
		size_t l = strlen(o->prov);

		if (!strcmp(nm, o->prov) ||
		    (!strchr(o->prov, ';') && !strncmp(nm, o->prov, l) &&
		     nm[l] == ';'))
			break;
	}
	if (!p) {
		bench_fail(2, "provider %s not found", o->prov);
	}
	s->fi = fi_dupinfo(p);
	fi_freeinfo(list);
	fi_freeinfo(hints);
	s->wflags = FI_COMPLETION | (o->no_dc ? 0 : FI_DELIVERY_COMPLETE);
	CHECK(fi_fabric(s->fi->fabric_attr, &s->fabric, NULL));
	CHECK(fi_domain(s->fabric, s->fi, &s->domain, NULL));
	CHECK(fi_av_open(s->domain, &ava, &s->av, NULL));
	cqa.size = s->fi->tx_attr->size + s->fi->rx_attr->size;
	s->wait_fd = -1;
	if (fi_cq_open(s->domain, &cqa, &s->cq, NULL) == 0) {
		if (fi_control(&s->cq->fid, FI_GETWAIT, &s->wait_fd) != 0)
			s->wait_fd = -1;
	} else {
		cqa.wait_obj = FI_WAIT_NONE;
		CHECK(fi_cq_open(s->domain, &cqa, &s->cq, NULL));
	}
	CHECK(fi_endpoint(s->domain, s->fi, &s->ep, NULL));
	CHECK(fi_ep_bind(s->ep, &s->av->fid, 0));
	CHECK(fi_ep_bind(s->ep, &s->cq->fid, FI_TRANSMIT | FI_RECV));
	CHECK(fi_enable(s->ep));
	/* aligned_alloc wants a multiple of the alignment: KV pieces such
	 * as an MLA block's 18 KiB are not one. */
	s->buf = aligned_alloc(4096, (o->buf_len + 4095) & ~(size_t)4095);
	if (!s->buf) {
		bench_fail(2, "out of memory (%zu bytes)", o->buf_len);
	}
	memset(s->buf, 0xab, o->buf_len);
	CHECK(fi_mr_reg(s->domain, s->buf, o->buf_len,
	                FI_READ | FI_WRITE | FI_REMOTE_READ | FI_REMOTE_WRITE,
	                0, 1, 0, &s->mr, NULL));
	CHECK(fi_mr_reg(s->domain, s->msg, sizeof(s->msg), FI_SEND | FI_RECV,
	                0, 2, 0, &s->msg_mr, NULL));
	if (s->fi->domain_attr->mr_mode & FI_MR_ENDPOINT) {
		CHECK(fi_mr_bind(s->mr, &s->ep->fid, 0));
		CHECK(fi_mr_enable(s->mr));
		CHECK(fi_mr_bind(s->msg_mr, &s->ep->fid, 0));
		CHECK(fi_mr_enable(s->msg_mr));
	}
	s->desc = fi_mr_desc(s->mr);
	s->msg_desc = fi_mr_desc(s->msg_mr);
	me.len = sizeof(me.addr);
	CHECK(fi_getname(&s->ep->fid, me.addr, &me.len));
	me.key = fi_mr_key(s->mr);
	me.base = s->fi->domain_attr->mr_mode & FI_MR_VIRT_ADDR
	                  ? (uint64_t)(uintptr_t)s->buf
	                  : 0;
	xfer_all(sock, &me, sizeof(me), true);
	xfer_all(sock, &them, sizeof(them), false);
	rc = fi_av_insert(s->av, them.addr, 1, &s->peer, 0, NULL);
	if (rc != 1) {
		bench_fail(2, "fi_av_insert: %d", rc);
	}
	s->rkey = them.key;
	s->rbase = them.base;
	/* The window never exceeds the tx queue. */
	if (s->fi->tx_attr->size && (size_t)o->window > s->fi->tx_attr->size)
		o->window = (int)s->fi->tx_attr->size;
	n = (size_t)o->window + 16;
	s->ctx = calloc(n, sizeof(*s->ctx));
}

static void close_side(struct side *s)
{
	fi_close(&s->ep->fid);
	fi_close(&s->mr->fid);
	fi_close(&s->msg_mr->fid);
	fi_close(&s->cq->fid);
	fi_close(&s->av->fid);
	fi_close(&s->domain->fid);
	fi_close(&s->fabric->fid);
	fi_freeinfo(s->fi);
	free(s->buf);
	free(s->ctx);
}

/* Completions read; exits on an error entry. With idle, back off: spin
 * a while, then block briefly on the wait fd or sleep. */
static int reap(struct side *s, bool idle_ok, int *idle)
{
	struct fi_cq_entry e[32];
	ssize_t r = fi_cq_read(s->cq, e, 32);

	if (r > 0) {
		*idle = 0;
		return (int)r;
	}
	if (r == -FI_EAVAIL) {
		struct fi_cq_err_entry err = { 0 };

		fi_cq_readerr(s->cq, &err, 0);
		bench_fail(3, "completion error: %s (%d)",
		           fi_strerror(err.err), err.err);
	}
	if (r != -FI_EAGAIN) {
		bench_fail(3, "fi_cq_read: %zd", r);
	}
	if (idle_ok && ++*idle > 2000) {
		struct fid *f = &s->cq->fid;

		if (s->wait_fd >= 0 && fi_trywait(s->fabric, &f, 1) == 0) {
			struct pollfd p = { .fd = s->wait_fd,
				            .events = POLLIN };
			poll(&p, 1, 1);
		} else {
			sched_yield();
		}
	}
	return 0;
}

static void post_recv(struct side *s)
{
	while (fi_recv(s->ep, s->msg, 32, s->msg_desc,
	               FI_ADDR_UNSPEC, &s->rctx) == -FI_EAGAIN)
		fi_cq_read(s->cq, NULL, 0);
}

static void send_msg(struct side *s, uint64_t v)
{
	ssize_t rc;

	memcpy(s->msg + 32, &v, sizeof(v));
	while ((rc = fi_send(s->ep, s->msg + 32, 8, s->msg_desc, s->peer,
	                     &s->sctx)) == -FI_EAGAIN)
		fi_cq_read(s->cq, NULL, 0);
	CHECK(rc);
}

/* Wait until the completion of ctx arrives; others are dropped. */
static void wait_ctx(struct side *s, void *ctx, bool idle_ok)
{
	struct fi_cq_entry e;
	int idle = 0;

	for (;;) {
		ssize_t r = fi_cq_read(s->cq, &e, 1);

		if (r == 1 && e.op_context == ctx)
			return;
		if (r == 1)
			continue;
		if (r == -FI_EAGAIN) {
			if (idle_ok && ++idle > 2000) {
				struct fid *f = &s->cq->fid;
				if (s->wait_fd >= 0 &&
				    fi_trywait(s->fabric, &f, 1) == 0) {
					struct pollfd p = { .fd = s->wait_fd,
						            .events = POLLIN };
					poll(&p, 1, 1);
				} else {
					sched_yield();
				}
			}
			continue;
		}
		reap(s, false, &idle);
	}
}

static size_t iters_for(size_t size, bool lat)
{
	size_t it = ((size_t)64 << 20) / size;

	if (!lat)
		return (size_t)raw_bw_iters(size);
	return it > 2000 ? 2000 : it < 100 ? 100 : it;
}

/* Window of RMA ops of one size; returns seconds for iters of them. */
static double bw_run(struct side *s, const struct opts *o, size_t size,
                     size_t iters)
{
	size_t posted = 0, done = 0;
	int idle = 0, inflight = 0;
	double t0 = tp_now_s();

	/* Slots of size in the footprint (at least one). */
	size_t slots = o->footprint >= size ? o->footprint / size : 1;

	while (done < iters) {
		while (posted < iters && inflight < o->window) {
			struct fi_context2 *c = &s->ctx[posted % o->window];
			size_t off = (posted % slots) * size;
			ssize_t rc;

			if (o->read) {
				rc = fi_read(s->ep, s->buf + off, size,
				             s->desc, s->peer, s->rbase + off,
				             s->rkey, c);
			} else {
				struct iovec iov = { s->buf + off, size };
				struct fi_rma_iov ri = { s->rbase + off, size,
					                 s->rkey };
				struct fi_msg_rma m = {
					.msg_iov = &iov, .desc = &s->desc,
					.iov_count = 1, .addr = s->peer,
					.rma_iov = &ri, .rma_iov_count = 1,
					.context = c,
				};
				rc = fi_writemsg(s->ep, &m, s->wflags);
			}
			if (rc == -FI_EAGAIN)
				break;
			CHECK(rc);
			posted++;
			inflight++;
		}
		int n = reap(s, false, &idle);
		done += (size_t)n;
		inflight -= n;
	}
	return tp_now_s() - t0;
}

/* iters ping-pongs; seconds. oneway (iters entries, or NULL): each
 * write+notify's own time, as the target measured it, ns. */
static double lat_run(struct side *s, size_t size, size_t iters,
                      uint64_t *oneway)
{
	double t0 = tp_now_s();

	for (size_t i = 0; i < iters; i++) {
		struct iovec iov = { s->buf, size };
		struct fi_rma_iov ri = { s->rbase, size, s->rkey };
		struct fi_msg_rma m = {
			.msg_iov = &iov, .desc = &s->desc, .iov_count = 1,
			.addr = s->peer, .rma_iov = &ri, .rma_iov_count = 1,
			.context = &s->ctx[0],
		};
		ssize_t rc;
		uint64_t w0 = tp_now_ns();

		while ((rc = fi_writemsg(s->ep, &m, s->wflags)) == -FI_EAGAIN)
			fi_cq_read(s->cq, NULL, 0);
		CHECK(rc);
		wait_ctx(s, &s->ctx[0], false);
		send_msg(s, w0);
		wait_ctx(s, &s->sctx, false);
		wait_ctx(s, &s->rctx, false);
		if (oneway)
			memcpy(&oneway[i], s->msg, sizeof *oneway);
		post_recv(s);
	}
	return tp_now_s() - t0;
}

static void initiator(struct opts *o, int sock)
{
	struct side s = { 0 };

	open_side(&s, o, sock);
	post_recv(&s);
	if (o->csv)
		printf("provider,mode,op,size,iters,gbps,usec%s\n",
		       o->lat ? ",usec_med" : "");
	else
		printf("# %s %s %s%s, window %d\n%-10s %8s %10s %12s%s\n",
		       s.fi->fabric_attr->prov_name, o->lat ? "lat" : "bw",
		       o->read ? "read" : "write",
		       o->no_dc ? "" : " (delivery complete)", o->window,
		       "size", "iters", "GB/s", o->lat ? "rtt/2 mean" : "usec/xfer",
		       o->lat ? "   1way med" : "");
	for (size_t size = o->min; size <= o->max; size *= 2) {
		size_t iters = iters_for(size, o->lat);
		size_t warm = iters / 10 < 2 ? 2 : iters / 10;
		double t, us, med = 0;

		if (o->lat) {
			uint64_t *ow = malloc(iters * sizeof *ow);

			if (!ow)
				bench_fail(2, "out of memory");
			lat_run(&s, size, warm, NULL);
			t = lat_run(&s, size, iters, ow);
			us = t / (double)iters / 2 * 1e6;
			med = (double)bench_pct(ow, iters, 0.5) / 1e3;
			free(ow);
		} else {
			bw_run(&s, o, size, warm);
			t = bw_run(&s, o, size, iters);
			us = t / (double)iters * 1e6;
		}
		double gbps = (double)size * (double)iters / t / 1e9;
		if (o->csv)
			printf("%s,%s,%s,%zu,%zu,%.3f,%.2f",
			       s.fi->fabric_attr->prov_name,
			       o->lat ? "lat" : "bw",
			       o->read ? "read" : "write", size, iters, gbps,
			       us);
		else
			printf("%-10zu %8zu %10.3f %12.2f", size, iters, gbps,
			       us);
		if (o->lat)
			printf(o->csv ? ",%.2f" : " %12.2f", med);
		printf("\n");
		fflush(stdout);
	}
	/* UINT64_MAX: the target may stop. */
	send_msg(&s, UINT64_MAX);
	wait_ctx(&s, &s.sctx, false);
	char b;
	xfer_all(sock, &b, 1, false);
	close_side(&s);
}

/* The target: answer notifies (latency mode) and keep progress going. */
static void target(struct opts *o, int sock)
{
	struct side s = { 0 };

	open_side(&s, o, sock);
	post_recv(&s);
	for (;;) {
		uint64_t v, at;

		wait_ctx(&s, &s.rctx, !o->lat);
		at = tp_now_ns();
		memcpy(&v, s.msg + 0, sizeof(v));
		post_recv(&s);
		if (v == UINT64_MAX)
			break;
		/* Latency mode's notify carries when its write was posted. */
		send_msg(&s, o->lat ? at - v : v);
		wait_ctx(&s, &s.sctx, !o->lat);
	}
	xfer_all(sock, "x", 1, true);
	close_side(&s);
	_exit(0);
}

int main(int argc, char **argv)
{
	struct opts o = { .prov = "tcp", .min = 0, .max = 0, .window = 64,
	                  .addr = "127.0.0.1", .taddr = "127.0.0.1" };
	int c, sv[2], status;
	pid_t pid;

	bench_init("fi_raw_bench", 1);
	while ((c = getopt(argc, argv, "p:s:S:w:m:o:rDa:A:N:F:")) != -1) {
		switch (c) {
		case 'p': o.prov = optarg; break;
		case 's': o.min = bench_opt_size("-s", optarg, 1, MAX_SIZE);
		          break;
		case 'S': o.max = bench_opt_size("-S", optarg, 1, MAX_SIZE);
		          break;
		case 'w': o.window = bench_opt_int("-w", optarg, 1, 65536);
		          break;
		case 'm': o.lat = strcmp(optarg, "lat") == 0; break;
		case 'o': o.csv = strcmp(optarg, "csv") == 0; break;
		case 'r': o.read = true; break;
		case 'D': o.no_dc = true; break;
		case 'a': o.addr = optarg; break;
		case 'A': o.taddr = optarg; break;
		case 'N': o.tns = optarg; break;
		case 'F': o.footprint = bench_opt_size("-F", optarg, 1,
		                                       (size_t)4 << 30);
			break;
		default:
			fprintf(stderr, "usage: %s [-p prov] [-s min] [-S max]"
			        " [-w window] [-m bw|lat] [-r] [-D] [-o csv]"
			        " [-a addr] [-A target-addr]"
			        " [-N target-netns] [-F footprint]\n",
			        argv[0]);
			return 1;
		}
	}
	if (optind < argc) {
		bench_err("unexpected argument '%s'", argv[optind]);
		return 1;
	}
	if (!o.min)
		o.min = o.lat ? 8 : 4096;
	if (!o.max)
		o.max = o.lat ? 65536 : (size_t)64 << 20;
	o.buf_len = o.footprint > o.max ? o.footprint : o.max;
	if (o.min > o.max) {
		bench_err("-s %zu is above -S %zu", o.min, o.max);
		return 1;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return 2;
	alarm(600);
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		if (o.tns) {
			char path[300];
			int fd;
			snprintf(path, sizeof path, "/var/run/netns/%s",
			         o.tns);
			fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
				bench_err("entering netns %s failed: %s",
				          o.tns, strerror(errno));
				_exit(2);
			}
			close(fd);
		}
		o.node = o.taddr;
		target(&o, sv[1]);
	}
	close(sv[1]);
	o.node = o.addr;
	initiator(&o, sv[0]);
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 4;
}
