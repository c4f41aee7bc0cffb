/* Devices by UUID, not index: the engine sees two GPUs as CUDA_VISIBLE_DEVICES=0,1, its sidecar as 1,0; memory on the engine's device 1 is imported on the sidecar's device 0 (the sidecar's debug log names it), a same-host push and pull across the two GPUs moves the right bytes, and a sidecar that cannot see the device refuses the region naming its UUID. */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/kvferry.h"
#include "tests/tap/events.h"
#include "tests/tap/pattern.h"
#include "tests/tap/proc.h"
#include "tests/tap/tap.h"

#include "tests/gpu/gpu_util.h"

#define MIB (1ull << 20)
#define LEN1 (6 * MIB)  /* the allocation on the engine's device 1 */
#define LEN0 (16 * MIB) /* the allocation on the engine's device 0 */
#define PUSH (5 * MIB + 4093) /* odd length, odd offsets */
#define OFF1 4099ull
#define OFF0 (4 * MIB + 7)

static void uuid_of(int dev, char *buf, size_t len)
{
	struct cudaDeviceProp p;
	const uint8_t *u;

	CK(cudaGetDeviceProperties(&p, dev));
	u = (const uint8_t *)&p.uuid;
	snprintf(buf, len,
	         "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	         "%02x%02x%02x%02x%02x%02x",
	         u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
	         u[10], u[11], u[12], u[13], u[14], u[15]);
}

/* "uuids": print device 0's and 1's UUIDs as this process sees them. */
static int print_uuids(void)
{
	char u0[48], u1[48];
	uuid_of(0, u0, sizeof u0);
	uuid_of(1, u1, sizeof u1);
	printf("%s %s\n", u0, u1);
	return 0;
}

/*
 * The device a sidecar's debug log says it imported an allocation of
 * [lo, lo + 2 MiB) bytes on (the driver may round the size up), or -1.
 * With several such lines, -2 unless they agree.
 */
static int import_dev(const char *log, uint64_t lo)
{
	const char *p = log, *key = "imported CUDA allocation ";
	int dev = -1;

	while (p && (p = strstr(p, key))) {
		unsigned long long n;
		int d;
		const char *q = strchr(p, '(');
		p += strlen(key);
		if (!q || sscanf(q, "(%llu bytes) on device %d", &n, &d) != 2)
			continue;
		if (n < lo || n >= lo + 2 * MIB)
			continue;
		dev = dev == -1 || dev == d ? d : -2;
	}
	return dev;
}

static void fill_dev(uint8_t *p, size_t len, uint32_t seed)
{
	uint8_t *h = malloc(len);
	if (!h)
		bail("out of memory");
	tp_pattern_fill(h, len, seed);
	CK(cudaMemcpy(p, h, len, cudaMemcpyHostToDevice));
	free(h);
}

int main(int argc, char **argv)
{
	char why[200], self[PATH_MAX], u0[48], u1[48];
	int ndev = 0;

	if (argc == 2 && strcmp(argv[1], "uuids") == 0)
		return print_uuids();
	/* The engine's view: both GPUs, in PCI order. Set before CUDA
	 * starts; the sidecars inherit the order, not the list. */
	setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID", 1);
	setenv("CUDA_VISIBLE_DEVICES", "0,1", 1);
	if (gpu_probe(why, sizeof why) != 0)
		skip_all("no CUDA device: %s", why);
	CK(cudaGetDeviceCount(&ndev));
	if (ndev < 2)
		skip_all("remapped device indices need 2 CUDA devices, this "
		         "machine shows %d", ndev);
	uuid_of(0, u0, sizeof u0);
	uuid_of(1, u1, sizeof u1);
	diag("engine: device 0 = %s, device 1 = %s", u0, u1);

	/* 1. The premise: with CUDA_VISIBLE_DEVICES=1,0 the indices swap. */
	{
		ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
		if (n <= 0)
			bail("readlink /proc/self/exe failed");
		self[n] = 0;
		const char *env[] = {"CUDA_VISIBLE_DEVICES=1,0", NULL};
		const char *av[] = {self, "uuids", NULL};
		struct tp_run r;
		char want[120];
		snprintf(want, sizeof want, "%s %s", u1, u0);
		if (tp_run(&r, 20000, env, av) != 0)
			bail("could not run %s uuids", self);
		ok(r.status == 0 && r.out && strncmp(r.out, want,
		                                     strlen(want)) == 0,
		   "a process with CUDA_VISIBLE_DEVICES=1,0 sees our device 1 "
		   "as its 0 and our 0 as its 1 (%s)", r.out ? r.out : "");
		tp_run_free(&r);
	}

	const char *const sargs[] = {"--provider", "tcp", "--host-id", "same",
	                             "--log-level", "debug", NULL};
	const char *const env_a[] = {"CUDA_VISIBLE_DEVICES=1,0", NULL};
	const char *const env_b[] = {"CUDA_VISIBLE_DEVICES=0,1", NULL};
	const char *const env_c[] = {"CUDA_VISIBLE_DEVICES=0", NULL};
	struct tp_daemon a, b, c;
	if (tp_daemon_start(&a, "a", sargs, env_a) ||
	    tp_daemon_start(&b, "b", sargs, env_b) ||
	    tp_daemon_start(&c, "c", sargs, env_c))
		bail("sidecars did not start");

	/* 2. Engine e1 (memory on our device 1) on sidecar A (1,0); engine
	 * e0 (our device 0) on sidecar B (0,1). */
	struct kvf_connect_opts oa = {.socket_path = a.engine_socket};
	struct kvf_connect_opts ob = {.socket_path = b.engine_socket};
	struct kvf_connect_opts oc = {.socket_path = c.engine_socket};
	kvf_client *e1, *e0, *ec;
	kvf_region r1, r0, rc_;
	kvf_peer p10;
	uint8_t *d1, *d0;
	struct kvf_event ev;

	CK(cudaSetDevice(1));
	CK(cudaMalloc((void **)&d1, LEN1));
	CK(cudaSetDevice(0));
	CK(cudaMalloc((void **)&d0, LEN0));
	if (kvf_connect("e1", &oa, &e1) || kvf_connect("e0", &ob, &e0))
		bail("connect: %s", kvf_last_error());
	is_int(kvf_register_cuda(e1, d1, LEN1, NULL, &r1), 0,
	       "memory on the engine's device 1 registered with sidecar A "
	       "(%s)", kvf_last_error());
	is_int(kvf_register_cuda(e0, d0, LEN0, NULL, &r0), 0,
	       "memory on the engine's device 0 registered with sidecar B "
	       "(%s)", kvf_last_error());
	is_int(kvf_resolve_peer(e1, b.peer_url, "e0", 0, &p10), 0,
	       "e1 resolved e0 across the sidecars (same host id)");

	char *la = tp_daemon_log(&a), *lb = tp_daemon_log(&b);
	is_int(import_dev(la, LEN1), 0, "sidecar A (CUDA_VISIBLE_DEVICES=1,0) "
	       "imported the engine's device-1 allocation on its device 0");
	/* The peer's memory is mapped where e1's memory is (A's device 0),
	 * so the copies between the two GPUs go peer to peer. */
	is_int(import_dev(la, LEN0), 0, "sidecar A mapped peer e0's "
	       "allocation on its device 0, next to e1's memory");
	is_int(import_dev(lb, LEN0), 0, "sidecar B (0,1) imported the "
	       "engine's device-0 allocation on its device 0");
	if (import_dev(la, LEN1) != 0 || import_dev(la, LEN0) != 0)
		diag("sidecar A's log:\n%s", la);
	free(la);
	free(lb);

	/* 3. Bytes: push from our device 1 to our device 0 through A
	 * (a peer copy between the GPUs), then pull back. */
	CK(cudaSetDevice(1));
	fill_dev(d1, LEN1, 61);
	CK(cudaSetDevice(0));
	fill_dev(d0, LEN0, 60);
	struct kvf_seg s = {r1, r0, OFF1, OFF0, PUSH};
	struct kvf_xfer_opts o = {.tag = "x", .tag_len = 1};
	is_int(kvf_submit(e1, KVF_WRITE, p10, &s, 1, &o, NULL), 0,
	       "push device 1 -> device 0 submitted");
	ok(tp_wait_event(e0, KVF_EV_NOTIF, 20000, &ev, NULL), "e0 notified");
	ok(tp_wait_event(e1, KVF_EV_XFER_DONE, 5000, &ev, NULL) &&
	   ev.status == 0,
	   "push completed ok (%s)", ev.message);
	{
		/* d0 holds pattern 60 except the pushed range, which holds
		 * pattern 61 from OFF1 on. Check with the shift folded in. */
		uint8_t *h = malloc(LEN0);
		long long bad = -1;
		CK(cudaMemcpy(h, d0, LEN0, cudaMemcpyDeviceToHost));
		for (size_t i = 0; i < LEN0 && bad < 0; i++) {
			uint8_t want =
				i >= OFF0 && i < OFF0 + PUSH
					? tp_pattern_byte(i - OFF0 + OFF1, 61)
					: tp_pattern_byte(i, 60);
			if (h[i] != want)
				bad = (long long)i;
		}
		free(h);
		is_int(bad, -1, "the engine's device 0 holds the %llu bytes "
		       "from its device 1 at the right offset, nothing around "
		       "them changed", (unsigned long long)PUSH);
	}
	CK(cudaSetDevice(0));
	fill_dev(d0, LEN0, 62);
	s = (struct kvf_seg){r1, r0, 0, LEN0 - LEN1, LEN1};
	is_int(kvf_submit(e1, KVF_READ, p10, &s, 1, NULL, NULL), 0,
	       "pull device 0 -> device 1 submitted");
	ok(tp_wait_event(e1, KVF_EV_XFER_DONE, 20000, &ev, NULL) &&
	   ev.status == 0,
	   "pull completed ok (%s)", ev.message);
	{
		uint8_t *h = malloc(LEN1);
		long long bad = -1;
		CK(cudaSetDevice(1));
		CK(cudaMemcpy(h, d1, LEN1, cudaMemcpyDeviceToHost));
		for (size_t i = 0; i < LEN1 && bad < 0; i++)
			if (h[i] != tp_pattern_byte(i + LEN0 - LEN1, 62))
				bad = (long long)i;
		free(h);
		is_int(bad, -1, "the engine's device 1 holds the last %llu "
		       "bytes of its device 0", (unsigned long long)LEN1);
	}
	{
		struct tp_run r;
		const char *av[] = {tp_bin("kvferryctl"), "-u", a.control_url,
		                    "peers", NULL};
		if (tp_run(&r, 10000, NULL, av) != 0)
			bail("kvferryctl did not run");
		like(r.out, "same-host", "sidecar A's peer e0 is on the "
		     "same-host path");
		tp_run_free(&r);
	}

	/* 4. A sidecar that cannot see the device refuses the region and
	 * names the device. */
	if (kvf_connect("ec", &oc, &ec))
		bail("connect: %s", kvf_last_error());
	is_int(kvf_register_cuda(ec, d1, LEN1, NULL, &rc_), KVF_ENOENT,
	       "sidecar C (CUDA_VISIBLE_DEVICES=0) refuses memory on the "
	       "engine's device 1 with KVF_ENOENT");
	like(kvf_last_error(), u1, "its message names the device's UUID: %s",
	     kvf_last_error());
	like(kvf_last_error(), "CUDA_VISIBLE_DEVICES", "and says where to "
	     "look");

	kvf_close(e1);
	kvf_close(e0);
	kvf_close(ec);
	CK(cudaFree(d0));
	CK(cudaFree(d1));
	ok(tp_daemon_stop(&a, SIGTERM, 8000) == 0 &&
	   tp_daemon_stop(&b, SIGTERM, 8000) == 0 &&
	   tp_daemon_stop(&c, SIGTERM, 8000) == 0,
	   "all sidecars stop cleanly");
	done_testing();
}
