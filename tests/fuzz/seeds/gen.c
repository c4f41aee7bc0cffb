/*
 * tests/fuzz/seeds/gen.c - writes the seed corpora of the fuzz targets
 * (make fuzz-seeds): well-formed messages and records of each kind, plus a
 * few near misses, so the fuzzers start from inputs that reach the deep
 * checks instead of dying in the decoder. Usage: gen_seeds <corpus dir>.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ipc/ring.h"
#include "ipc/wire.h"
#include "proto/ctl.pb-c.h"
#include "proto/engine.pb-c.h"
#include "proto/peer.pb-c.h"
#include "proto/version.h"

static const char *root;

static void put(const char *target, const char *name, const void *p,
                size_t n)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", root, target);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/%s/%s", root, target, name);
	if (!(f = fopen(path, "wb")) || fwrite(p, 1, n, f) != n) {
		fprintf(stderr, "gen_seeds: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	fclose(f);
}

/* Pack with a leading selector byte when sel >= 0. */
#define PUT_PACKED(target, name, type, msg, sel)                             \
	do {                                                                 \
		size_t n_ = type##__get_packed_size(msg);                    \
		uint8_t *b_ = malloc(n_ + 1);                                \
		b_[0] = (uint8_t)(sel);                                      \
		type##__pack(msg, b_ + 1);                                   \
		if ((sel) >= 0)                                              \
			put(target, name, b_, n_ + 1);                       \
		else                                                         \
			put(target, name, b_ + 1, n_);                       \
		free(b_);                                                    \
	} while (0)

static void wire(void)
{
	uint64_t buf[256] = {0};
	struct ipc_sub_xfer *h = (void *)buf;
	struct kvf_seg *s;
	struct ipc_block_pair *bp;

	h->xfer_id = 1;
	h->peer = 1;
	h->op = KVF_WRITE;
	h->mode = IPC_SEG_BYTES;
	h->tag_len = 5;
	h->nseg = 2;
	h->timeout_ms = 1000;
	memcpy(h + 1, "req-1", 5);
	s = (void *)((uint8_t *)(h + 1) + 8);
	s[0] = (struct kvf_seg){1, 1, 0, 4096, 1 << 20};
	s[1] = (struct kvf_seg){1, 1, 1 << 20, 8192, 12345};
	put("wire_xfer", "bytes-2seg", buf,
	    ipc_sub_xfer_size(5, IPC_SEG_BYTES, 2));
	memset(buf, 0, sizeof buf);
	h->xfer_id = 2;
	h->op = KVF_READ;
	h->mode = IPC_SEG_BLOCKS;
	h->nseg = 3;
	h->local_region = 1;
	h->remote_region = 2;
	bp = (void *)(h + 1);
	for (int i = 0; i < 3; i++)
		bp[i] = (struct ipc_block_pair){(uint32_t)i, (uint32_t)(7 - i)};
	put("wire_xfer", "blocks-3", buf,
	    ipc_sub_xfer_size(0, IPC_SEG_BLOCKS, 3));
	put("wire_xfer", "short", buf, 10);
}

static void ring(void)
{
	static uint8_t mem[4096 + 2 * 8192] __attribute__((aligned(4096)));
	struct ipc_ring sub, comp;
	uint8_t in[1 + 20 + 4096] = {0};
	uint64_t head, tail = 0;
	uint32_t bufsize = 4096;
	void *p;

	/* Direct ring: two records then a wrap with padding. */
	ipc_session_format(mem, 4096, 4096, &sub, &comp);
	for (int i = 0; i < 3; i++) {
		p = ipc_ring_reserve(&sub, IPC_SUB_XFER, 1000 + 300 * i);
		memset(p, i + 1, 1000 + 300 * i);
		ipc_ring_commit(&sub);
	}
	head = atomic_load(&sub.sh->head);
	in[0] = 0;
	memcpy(in + 1, &head, 8);
	memcpy(in + 9, &tail, 8);
	memcpy(in + 17, &bufsize, 4);
	memcpy(in + 21, sub.sh->data, 4096);
	put("ring_pop", "ring-3rec", in, sizeof in);
	/* A whole session object with records on both rings. */
	p = ipc_ring_reserve(&comp, IPC_COMP_DONE, sizeof(struct ipc_comp_done));
	memset(p, 0, sizeof(struct ipc_comp_done));
	ipc_ring_commit(&comp);
	{
		uint8_t *s = malloc(1 + sizeof mem);
		s[0] = 1;
		memcpy(s + 1, mem, sizeof mem);
		put("ring_pop", "session", s, 1 + sizeof mem);
		free(s);
	}
}

static void engine(void)
{
	Kvf__Engine__Request r = KVF__ENGINE__REQUEST__INIT;
	Kvf__Engine__Hello h = KVF__ENGINE__HELLO__INIT;
	Kvf__Engine__RegisterRegion rr = KVF__ENGINE__REGISTER_REGION__INIT;
	Kvf__Engine__DeregisterRegion dr = KVF__ENGINE__DEREGISTER_REGION__INIT;
	Kvf__Engine__ResolvePeer rp = KVF__ENGINE__RESOLVE_PEER__INIT;
	Kvf__Engine__Goodbye g = KVF__ENGINE__GOODBYE__INIT;
	Kvf__KvLayout l = KVF__KV_LAYOUT__INIT;

	h.proto_version = KVF_ENGINE_PROTO_VERSION;
	h.engine_name = "decode";
	h.pid = 1234;
	h.ring_shm = "/kvferry-session-1234-abcdef";
	h.ring_bytes = 20480;
	r.body_case = KVF__ENGINE__REQUEST__BODY_HELLO;
	r.hello = &h;
	PUT_PACKED("engine_req", "hello", kvf__engine__request, &r, -1);
	h.proto_version = 99;
	PUT_PACKED("engine_req", "hello-version", kvf__engine__request, &r, -1);

	rr.session_id = 1;
	rr.kind = KVF__ENGINE__MEM_KIND__MEM_HOST;
	rr.length = 1 << 20;
	rr.shm_name = "/kvferry-region-1234-abcdef";
	l.num_layers = 4;
	l.num_blocks = 16;
	l.block_bytes = 4096;
	l.layer_stride = 65536;
	l.block_stride = 4096;
	rr.layout = &l;
	r.body_case = KVF__ENGINE__REQUEST__BODY_REGISTER_REGION;
	r.register_region = &rr;
	PUT_PACKED("engine_req", "register", kvf__engine__request, &r, -1);
	l.layer_stride = 1 << 20;
	PUT_PACKED("engine_req", "register-badlayout", kvf__engine__request, &r,
	           -1);
	rr.kind = KVF__ENGINE__MEM_KIND__MEM_CUDA;
	PUT_PACKED("engine_req", "register-cuda", kvf__engine__request, &r, -1);

	dr.session_id = 1;
	dr.region_id = 1;
	r.body_case = KVF__ENGINE__REQUEST__BODY_DEREGISTER_REGION;
	r.deregister_region = &dr;
	PUT_PACKED("engine_req", "deregister", kvf__engine__request, &r, -1);

	rp.session_id = 1;
	rp.sidecar_url = "tcp://127.0.0.1:7001";
	rp.engine_name = "decode";
	rp.timeout_ms = 100;
	r.body_case = KVF__ENGINE__REQUEST__BODY_RESOLVE_PEER;
	r.resolve_peer = &rp;
	PUT_PACKED("engine_req", "resolve", kvf__engine__request, &r, -1);

	g.session_id = 1;
	r.body_case = KVF__ENGINE__REQUEST__BODY_GOODBYE;
	r.goodbye = &g;
	PUT_PACKED("engine_req", "goodbye", kvf__engine__request, &r, -1);
}

static void peer(void)
{
	Kvf__Peer__Request r = KVF__PEER__REQUEST__INIT;
	Kvf__Peer__Handshake h = KVF__PEER__HANDSHAKE__INIT;
	Kvf__Peer__Heartbeat hb = KVF__PEER__HEARTBEAT__INIT;
	Kvf__Peer__Reply rep = KVF__PEER__REPLY__INIT;
	Kvf__Peer__HandshakeReply hr = KVF__PEER__HANDSHAKE_REPLY__INIT;
	Kvf__Peer__RegionDesc rd = KVF__PEER__REGION_DESC__INIT, *rdp = &rd;
	Kvf__KvLayout l = KVF__KV_LAYOUT__INIT;
	Kvf__Error e = KVF__ERROR__INIT;
	uint8_t addr[16] = {2, 0, 0x1b, 0x59, 127, 0, 0, 1};
	uint8_t mac[32] = {0};

	h.proto_version = KVF_PEER_PROTO_VERSION;
	h.sidecar_id = "0123456789abcdef";
	h.host_id = "host-a";
	h.provider = "tcp";
	h.fabric_addr.data = addr;
	h.fabric_addr.len = sizeof addr;
	h.engine_name = "decode";
	r.body_case = KVF__PEER__REQUEST__BODY_HANDSHAKE;
	r.handshake = &h;
	PUT_PACKED("peer_req", "handshake", kvf__peer__request, &r, 0);
	h.nonce = 0x6600000012345678ull;
	h.auth.data = mac;
	h.auth.len = sizeof mac;
	PUT_PACKED("peer_req", "handshake-auth", kvf__peer__request, &r, 0);
	h.engine_name = "nobody";
	PUT_PACKED("peer_req", "handshake-noengine", kvf__peer__request, &r, 0);
	hb.proto_version = KVF_PEER_PROTO_VERSION;
	hb.sidecar_id = "0123456789abcdef";
	hb.epoch = 7;
	r.body_case = KVF__PEER__REQUEST__BODY_HEARTBEAT;
	r.heartbeat = &hb;
	PUT_PACKED("peer_req", "heartbeat", kvf__peer__request, &r, 0);

	hr.proto_version = KVF_PEER_PROTO_VERSION;
	hr.sidecar_id = "fedcba9876543210";
	hr.host_id = "host-b";
	hr.provider = "tcp";
	hr.fabric_addr.data = addr;
	hr.fabric_addr.len = sizeof addr;
	hr.engine_session_id = 3;
	hr.epoch = 99;
	rd.region_id = 1;
	rd.length = 1 << 20;
	rd.key = 77;
	l.num_layers = 2;
	l.num_blocks = 4;
	l.block_bytes = 4096;
	rd.layout = &l;
	hr.n_regions = 1;
	hr.regions = &rdp;
	hr.auth.data = mac;
	hr.auth.len = sizeof mac;
	rep.body_case = KVF__PEER__REPLY__BODY_HANDSHAKE;
	rep.handshake = &hr;
	PUT_PACKED("peer_req", "reply-handshake", kvf__peer__reply, &rep, 1);
	e.code = 3;
	e.message = "no engine named 'x'";
	rep.body_case = KVF__PEER__REPLY__BODY_ERROR;
	rep.error = &e;
	PUT_PACKED("peer_req", "reply-error", kvf__peer__reply, &rep, 1);
}

static void ctl(void)
{
	Kvf__Ctl__Request r = KVF__CTL__REQUEST__INIT;
	Kvf__Ctl__StatusRequest s = KVF__CTL__STATUS_REQUEST__INIT;

	r.proto_version = KVF_CTL_PROTO_VERSION;
	r.body_case = KVF__CTL__REQUEST__BODY_STATUS;
	r.status = &s;
	PUT_PACKED("ctl_req", "status", kvf__ctl__request, &r, -1);
	r.proto_version = 2;
	PUT_PACKED("ctl_req", "status-v2", kvf__ctl__request, &r, -1);
	r.proto_version = KVF_CTL_PROTO_VERSION;
	r.body_case = KVF__CTL__REQUEST__BODY__NOT_SET;
	PUT_PACKED("ctl_req", "empty", kvf__ctl__request, &r, -1);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen_seeds <corpus dir>\n");
		return 2;
	}
	root = argv[1];
	mkdir(root, 0755);
	wire();
	ring();
	engine();
	peer();
	ctl();
	return 0;
}
