/*
 * tests/fuzz/sidecar_stubs.h - stand-ins for the parts of the daemon a
 * request handler reaches but a fuzzer cannot have: the fabric (no
 * endpoint, no memory registration), the progress thread and CUDA. The
 * handler code itself (sidecar/engines.c, sidecar/peer_server.c), the
 * registry, the id maps, shared-memory attach and the log are the real
 * ones. Include once per fuzz target, after the handler source.
 */
#ifndef KVF_FUZZ_SIDECAR_STUBS_H
#define KVF_FUZZ_SIDECAR_STUBS_H

#include <string.h>

#include "sidecar/cuda_regions.h"
#include "sidecar/daemon.h"
#include "sidecar/log.h"
#include "sidecar/registry.h"
#include "sidecar/rep_server.h"
#include "sidecar/xfers.h"
#include "xfer/fabric.h"

static struct xfer_fabric_info fuzz_fabric_info = {
	.provider = "tcp",
	.fabric = "fuzz",
	.domain = "fuzz",
	.addr = {1, 2, 3, 4, 5, 6, 7, 8},
	.addr_len = 8,
};

const struct xfer_fabric_info *xfer_fabric_info(const struct xfer_fabric *f)
{
	(void)f;
	return &fuzz_fabric_info;
}

int xfer_fabric_av_insert(struct xfer_fabric *f, const void *addr,
                          size_t len, uint64_t *fi_addr, char *err,
                          size_t errlen)
{
	(void)f;
	(void)addr;
	(void)len;
	(void)err;
	(void)errlen;
	*fi_addr = 1;
	return 0;
}

int xfer_mr_reg(struct xfer_fabric *f, void *buf, size_t len,
                enum xfer_mem kind, int cuda_device, uint64_t key,
                struct xfer_mr **out)
{
	(void)f;
	(void)buf;
	(void)len;
	(void)kind;
	(void)cuda_device;
	(void)key;
	*out = NULL;
	return KVF_EFABRIC;
}

void xfer_mr_close(struct xfer_mr *mr)
{
	(void)mr;
}

/* GPU affinity of regions (sidecar/engines.c): no CUDA here. */
struct xfer_cuda *sc_gpu_cuda(struct sc_daemon *d, char *err, size_t errlen)
{
	(void)d;
	(void)err;
	(void)errlen;
	return NULL;
}

const char *xfer_cuda_bus_id(const struct xfer_cuda *cu, int dev)
{
	(void)cu;
	(void)dev;
	return "";
}

void *xfer_mr_desc(const struct xfer_mr *mr)
{
	(void)mr;
	return NULL;
}

uint64_t xfer_mr_key(const struct xfer_mr *mr)
{
	(void)mr;
	return 0;
}

uint64_t xfer_mr_remote_base(const struct xfer_mr *mr)
{
	(void)mr;
	return 0;
}

void sc_xfers_kick(struct sc_daemon *d)
{
	(void)d;
}

void sc_xfers_registry_changed(struct sc_daemon *d)
{
	(void)d;
}

const char *sc_xfers_doorbell_name(struct sc_daemon *d)
{
	(void)d;
	return "/kvferry-fuzz-doorbell";
}

int sc_region_import_cuda(struct sc_daemon *d, struct sc_region *r,
                          const Kvf__Engine__RegisterRegion *m, char *err,
                          size_t errlen)
{
	(void)d;
	(void)r;
	(void)m;
	snprintf(err, errlen, "no CUDA in the fuzzer");
	return KVF_ENOTSUP;
}

int sc_rep_server_start(nng_socket sock, int nworkers, sc_rep_handler fn,
                        void *arg, const char *name,
                        struct sc_rep_server **out)
{
	(void)sock;
	(void)nworkers;
	(void)fn;
	(void)arg;
	(void)name;
	*out = NULL;
	return 0;
}

void sc_rep_server_stop(struct sc_rep_server *s)
{
	(void)s;
}

uint64_t sc_now_ns(void)
{
	return 1;
}

/* Quiet: a fuzzer that logs every refused input spends its time in
 * write(2). */
static void fuzz_quiet_log(void)
{
	sc_log_setup(SC_LOG_ERROR, SC_LOG_TEXT);
}

/* A request body as the nng message a rep worker hands the handler. */
static nng_msg *fuzz_msg(const uint8_t *data, size_t size)
{
	nng_msg *m;
	if (nng_msg_alloc(&m, size) != 0)
		return NULL;
	if (size)
		memcpy(nng_msg_body(m), data, size);
	return m;
}

#endif
