/*
 * xfer/mr.c - memory registration on a rail. One function turns the
 * provider's mr_mode into what the caller needs to know: a local
 * descriptor (FI_MR_LOCAL), the key a peer must present (ours unless
 * FI_MR_PROV_KEY), the remote base a peer adds offsets to (the virtual
 * address under FI_MR_VIRT_ADDR, else 0), and the bind + enable step that
 * FI_MR_ENDPOINT providers need before the region is usable. CUDA memory
 * goes through fi_mr_regattr with FI_HMEM_CUDA, only where the rail was
 * granted FI_HMEM.
 */
#include "xfer/fabric_int.h"

#include "client/kvferry.h"
#include "sidecar/log.h"

#include <stdlib.h>

#include <rdma/fi_errno.h>

struct xfer_mr {
	struct fid_mr *mr;
	void *desc;
	uint64_t key;
	uint64_t remote_base;
};

#define XFER_MR_ACCESS                                                       \
	(FI_READ | FI_WRITE | FI_REMOTE_READ | FI_REMOTE_WRITE | FI_SEND |   \
	 FI_RECV)

/* Bind to the endpoint and enable, where FI_MR_ENDPOINT asks for it. */
static int mr_finish(struct xfer_fabric *f, struct fid_mr *mr)
{
	int rc;

	if (!f->mr_endpoint)
		return 0;
	rc = fi_mr_bind(mr, &f->ep->fid, 0);
	if (rc == 0)
		rc = fi_mr_enable(mr);
	return rc;
}

int xfer_mr_reg_raw(struct xfer_fabric *f, void *buf, size_t len,
                    uint64_t access, uint64_t key, struct fid_mr **out)
{
	struct fid_mr *mr = NULL;
	int rc;

	rc = fi_mr_reg(f->domain, buf, len, access, 0, key, 0, &mr, NULL);
	if (rc != 0)
		return rc;
	rc = mr_finish(f, mr);
	if (rc != 0) {
		fi_close(&mr->fid);
		return rc;
	}
	*out = mr;
	return 0;
}

int xfer_mr_reg(struct xfer_fabric *f, void *buf, size_t len,
                enum xfer_mem kind, int cuda_device, uint64_t key,
                struct xfer_mr **out)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct fi_mr_attr attr = {
		.mr_iov = &iov,
		.iov_count = 1,
		.access = XFER_MR_ACCESS,
		.requested_key = key,
		.iface = FI_HMEM_SYSTEM,
	};
	struct xfer_mr *m;
	const char *what = kind == XFER_MEM_CUDA ? "cuda" : "host";
	int rc;

	if (f == NULL || buf == NULL || len == 0 || out == NULL)
		return KVF_EINVAL;
	if (kind != XFER_MEM_HOST && kind != XFER_MEM_CUDA)
		return KVF_EINVAL;
	if (kind == XFER_MEM_CUDA) {
		if (!f->info.hmem_cuda) {
			sc_error("fabric %s: registering cuda memory %p+%zu on "
			         "device %d: provider has no FI_HMEM CUDA "
			         "support on this rail", f->info.provider, buf,
			         len, cuda_device);
			return KVF_ENOTSUP;
		}
		attr.iface = FI_HMEM_CUDA;
		attr.device.cuda = cuda_device;
	}
	if (!f->mr_prov_key && key == f->key_reserved) {
		sc_error("fabric %s: mr key 0x%llx is reserved for the rail's "
		         "message pools", f->info.provider,
		         (unsigned long long)key);
		return KVF_EINVAL;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return KVF_ENOMEM;
	rc = fi_mr_regattr(f->domain, &attr, 0, &m->mr);
	if (rc == 0) {
		rc = mr_finish(f, m->mr);
		if (rc != 0) {
			fi_close(&m->mr->fid);
			m->mr = NULL;
		}
	}
	if (rc != 0) {
		sc_error("fabric %s: fi_mr_regattr() failed: %s memory %p+%zu "
		         "key 0x%llx: %s (%d)", f->info.provider, what, buf,
		         len, (unsigned long long)key, fi_strerror(-rc), rc);
		free(m);
		return rc == -FI_ENOMEM ? KVF_ENOMEM : KVF_EFABRIC;
	}
	m->desc = fi_mr_desc(m->mr);
	m->key = f->mr_prov_key ? fi_mr_key(m->mr) : key;
	m->remote_base = f->mr_virt_addr ? (uint64_t)(uintptr_t)buf : 0;
	*out = m;
	return 0;
}

void xfer_mr_close(struct xfer_mr *mr)
{
	int rc;

	if (mr == NULL)
		return;
	rc = fi_close(&mr->mr->fid);
	if (rc != 0)
		sc_warn("fabric: fi_close(mr key 0x%llx) failed: %s (%d)",
		        (unsigned long long)mr->key, fi_strerror(-rc), rc);
	free(mr);
}

void *xfer_mr_desc(const struct xfer_mr *mr)
{
	return mr ? mr->desc : NULL;
}

uint64_t xfer_mr_key(const struct xfer_mr *mr)
{
	return mr ? mr->key : 0;
}

uint64_t xfer_mr_remote_base(const struct xfer_mr *mr)
{
	return mr ? mr->remote_base : 0;
}
