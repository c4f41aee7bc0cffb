/*
 * tests/fuzz/engine_req.c - libFuzzer target for the engine control server:
 * the real request handler of sidecar/engines.c (size limit, protobuf-c
 * unpack, hello/register/deregister/resolve/goodbye checks, the session
 * and region tables) fed raw request bytes from a connection whose pipe
 * owns session 1 ("prefill", with region 1 registered). The fabric, the
 * progress thread and CUDA are stubs (tests/fuzz/sidecar_stubs.h): memory
 * registration fails after every check before it passed, peer resolution
 * reports an unreachable peer, and the pipe's peer uid is ours. Every
 * input must get a reply that decodes.
 */
#include <nng/nng.h>
#include <unistd.h>

/* The pipe is not a real connection: its peer is us, as for an engine
 * of the sidecar's own user. */
static int fuzz_pipe_get_uint64(nng_pipe p, const char *opt, uint64_t *v)
{
	(void)p;
	(void)opt;
	*v = geteuid();
	return 0;
}
#define nng_pipe_get_uint64 fuzz_pipe_get_uint64
#include "sidecar/engines.c"
#undef nng_pipe_get_uint64

#include "sidecar/peers.h"
#include "tests/fuzz/sidecar_stubs.h"

int sc_peers_resolve(struct sc_daemon *d, const char *url,
                     const char *engine_name, uint32_t timeout_ms,
                     int near_dev, uint32_t *peer_id, char *path,
                     size_t pathlen, char *err, size_t errlen)
{
	(void)near_dev;
	(void)d;
	(void)url;
	(void)engine_name;
	(void)timeout_ms;
	(void)peer_id;
	(void)path;
	(void)pathlen;
	snprintf(err, errlen, "no peers in the fuzzer");
	return KVF_EPEER;
}

static struct sc_daemon daemon_;
static struct sc_registry reg;
static struct sc_engines eng;
static const nng_pipe pipe_ = NNG_PIPE_INITIALIZER;

/* Session 1 and its region 1, made again after an input tore them down. */
static void ensure_session(void)
{
	struct sc_session *s = sc_idmap_get(&reg.sessions, 1);
	struct sc_region *r;

	if (!s) {
		s = calloc(1, sizeof *s);
		s->id = 1;
		snprintf(s->name, sizeof s->name, "prefill");
		s->pipe_id = (uint32_t)nng_pipe_id(pipe_);
		atomic_store(&s->refs, 1);
		sc_idmap_put(&reg.sessions, 1, s);
	}
	if (!sc_idmap_get(&reg.regions, 1)) {
		r = calloc(1, sizeof *r);
		r->id = 1;
		r->session_id = 1;
		r->len = 1 << 20;
		r->d = &daemon_;
		atomic_store(&r->refs, 1);
		sc_idmap_put(&reg.regions, 1, r);
		s->regions_count++;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	Kvf__Engine__Reply *rep;
	nng_msg *req, *out;

	if (!init) {
		fuzz_quiet_log();
		sc_registry_init(&reg);
		reg.next_session = 2;
		reg.next_region = 2;
		daemon_.registry = &reg;
		snprintf(daemon_.sidecar_id, sizeof daemon_.sidecar_id, "fuzz");
		eng.d = &daemon_;
		init = 1;
	}
	ensure_session();
	if (!(req = fuzz_msg(data, size)))
		return 0;
	out = handle(&eng, req, pipe_);
	nng_msg_free(req);
	if (!out)
		abort(); /* every request deserves a reply */
	rep = kvf__engine__reply__unpack(NULL, nng_msg_len(out),
	                                 nng_msg_body(out));
	if (!rep || rep->body_case == KVF__ENGINE__REPLY__BODY__NOT_SET)
		abort(); /* the reply must decode */
	if (rep->body_case == KVF__ENGINE__REPLY__BODY_ERROR &&
	    (rep->error->code == 0 || rep->error->code >= KVF_ERR_COUNT ||
	     !rep->error->message[0]))
		abort(); /* errors carry a known code and a message */
	kvf__engine__reply__free_unpacked(rep, NULL);
	nng_msg_free(out);
	return 0;
}
