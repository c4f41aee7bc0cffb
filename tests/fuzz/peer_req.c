/*
 * tests/fuzz/peer_req.c - libFuzzer target for sidecar-to-sidecar
 * messages, both directions:
 *   byte 0 even: the rest is a request to this sidecar's peer server, run
 *                through the real handler of sidecar/peer_server.c (size
 *                limit, unpack, version and provider checks, the engine
 *                lookup and the region list of engine "decode", which has
 *                two regions, one with a KV layout);
 *   byte 0 odd:  the rest is a reply a remote sidecar sent us: unpacked
 *                and checked as sc_peers_resolve checks it (body, version,
 *                fabric address size), every region walked.
 * Bit 1 of byte 0 turns on a shared secret on both sides (sidecar/auth.c):
 * requests must then carry a valid MAC, replies are verified against one.
 * The fabric is a stub (tests/fuzz/sidecar_stubs.h).
 */
#include <unistd.h>

#include "sidecar/peer_addrs.c"
#include "sidecar/peer_server.c"

#include "tests/fuzz/sidecar_stubs.h"

static struct sc_daemon daemon_;
static struct sc_registry reg;
static struct sc_peers peers_, peers_auth;
static struct sc_auth *auth;

static void setup(void)
{
	struct sc_session *s = calloc(1, sizeof *s);
	struct sc_region *r;

	fuzz_quiet_log();
	sc_registry_init(&reg);
	daemon_.registry = &reg;
	daemon_.epoch = 42;
	snprintf(daemon_.sidecar_id, sizeof daemon_.sidecar_id, "fuzz");
	snprintf(daemon_.host_id, sizeof daemon_.host_id, "fuzz-host");
	peers_.d = &daemon_;
	pthread_mutex_init(&peers_.resolve_lock, NULL);
	{
		char path[] = "/tmp/kvf-fuzz-secret-XXXXXX", err[300];
		int fd = mkstemp(path);
		if (fd < 0 || write(fd, "fuzzing secret 0123456789", 25) != 25 ||
		    sc_auth_load(path, &auth, err, sizeof err) != 0)
			abort();
		close(fd);
		unlink(path);
		peers_auth = peers_;
		peers_auth.auth = auth;
	}
	s->id = 1;
	snprintf(s->name, sizeof s->name, "decode");
	atomic_store(&s->refs, 1);
	sc_idmap_put(&reg.sessions, 1, s);
	for (uint32_t i = 1; i <= 2; i++) {
		r = calloc(1, sizeof *r);
		r->id = i;
		r->session_id = 1;
		r->len = (uint64_t)i << 20;
		r->key = 0x1000 + i;
		r->has_layout = i == 2;
		r->layout = (struct kvf_layout){2, 4, 4096, 16384, 4096, 0};
		atomic_store(&r->refs, 1);
		sc_idmap_put(&reg.regions, i, r);
		s->regions_count++;
	}
}

static void server(struct sc_peers *p, const uint8_t *data, size_t size)
{
	Kvf__Peer__Reply *rep;
	nng_msg *req, *out;

	if (!(req = fuzz_msg(data, size)))
		return;
	out = sc_peer_handle(p, req, (nng_pipe)NNG_PIPE_INITIALIZER);
	nng_msg_free(req);
	if (!out)
		abort();
	rep = kvf__peer__reply__unpack(NULL, nng_msg_len(out),
	                               nng_msg_body(out));
	if (!rep || rep->body_case == KVF__PEER__REPLY__BODY__NOT_SET)
		abort();
	if (rep->body_case == KVF__PEER__REPLY__BODY_ERROR &&
	    (rep->error->code == 0 || rep->error->code >= KVF_ERR_COUNT))
		abort();
	kvf__peer__reply__free_unpacked(rep, NULL);
	nng_msg_free(out);
}

static void client(struct sc_auth *a, const uint8_t *data, size_t size)
{
	Kvf__Peer__Handshake h = KVF__PEER__HANDSHAKE__INIT;
	char err[300];
	Kvf__Peer__Reply *rep = kvf__peer__reply__unpack(NULL, size, data);
	Kvf__Peer__HandshakeReply *hr;
	uint64_t sum = 0;

	if (!rep)
		return;
	if (rep->body_case == KVF__PEER__REPLY__BODY_ERROR) {
		sum += strlen(rep->error->message) + rep->error->code;
	} else if (rep->body_case == KVF__PEER__REPLY__BODY_HANDSHAKE) {
		hr = rep->handshake;
		h.engine_name = "decode";
		h.nonce = 1;
		if (sc_auth_verify_reply(a, &h, hr, err, sizeof err) != 0 &&
		    !err[0])
			abort();
		sum += strlen(hr->sidecar_id) + strlen(hr->host_id) +
		       strlen(hr->provider) + hr->auth.len;
		if (hr->fabric_addr.len > 0 && hr->fabric_addr.len <= 256)
			sum += hr->fabric_addr.data[hr->fabric_addr.len - 1];
		for (size_t i = 0; i < hr->n_regions; i++) {
			const Kvf__Peer__RegionDesc *rd = hr->regions[i];
			sum += rd->region_id + rd->length + rd->key;
			if (rd->layout)
				sum += rd->layout->num_layers;
		}
	}
	kvf__peer__reply__free_unpacked(rep, NULL);
	(void)sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;

	if (!init) {
		setup();
		init = 1;
	}
	if (size < 1)
		return 0;
	if (data[0] & 1)
		client(data[0] & 2 ? auth : NULL, data + 1, size - 1);
	else
		server(data[0] & 2 ? &peers_auth : &peers_, data + 1, size - 1);
	return 0;
}
