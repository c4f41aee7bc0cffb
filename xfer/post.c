/*
 * xfer/post.c - the posting hot path: one RMA write, RMA read or message
 * send per call, straight into the provider's queue. Nothing here blocks
 * or allocates: the caller's xfer_ctx carries the struct fi_context2 the
 * provider needs, and a send copies its bytes into one of the rail's
 * pre-registered bounce slots so the caller's buffer is free on return
 * whatever the provider's inject size. A full queue is KVF_EAGAIN: the
 * caller drives xfer_fabric_poll, which also makes progress for providers
 * with manual progress, and posts again.
 */
#include "xfer/fabric_int.h"

#include "client/kvferry.h"
#include "sidecar/log.h"

#include <string.h>

#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>

static int post_failed(struct xfer_fabric *f, const char *op, ssize_t rc,
                       uint64_t fi_addr, size_t len)
{
	if (rc == -FI_EAGAIN)
		return KVF_EAGAIN;
	sc_error("fabric %s: %s() failed: peer %llu len %zu: %s (%zd)",
	         f->info.provider, op, (unsigned long long)fi_addr, len,
	         fi_strerror((int)-rc), rc);
	return KVF_EFABRIC;
}

int xfer_post_write(struct xfer_fabric *f, const void *buf, size_t len,
                    void *desc, uint64_t fi_addr, uint64_t raddr,
                    uint64_t rkey, struct xfer_ctx *ctx)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct fi_rma_iov riov = { .addr = raddr, .len = len, .key = rkey };
	struct fi_msg_rma msg = {
		.msg_iov = &iov,
		.desc = &desc,
		.iov_count = 1,
		.addr = fi_addr,
		.rma_iov = &riov,
		.rma_iov_count = 1,
		.context = ctx->fi_space,
	};
	ssize_t rc;

	/* fi_writemsg rather than fi_write: the flags say
	 * FI_DELIVERY_COMPLETE on this very op instead of trusting the
	 * endpoint's default op_flags to carry it through every layer. */
	rc = fi_writemsg(f->ep, &msg, f->write_flags);
	return rc == 0 ? 0 : post_failed(f, "fi_writemsg", rc, fi_addr, len);
}

int xfer_post_read(struct xfer_fabric *f, void *buf, size_t len, void *desc,
                   uint64_t fi_addr, uint64_t raddr, uint64_t rkey,
                   struct xfer_ctx *ctx)
{
	ssize_t rc;

	rc = fi_read(f->ep, buf, len, desc, fi_addr, raddr, rkey,
	             ctx->fi_space);
	return rc == 0 ? 0 : post_failed(f, "fi_read", rc, fi_addr, len);
}

int xfer_post_send(struct xfer_fabric *f, const void *buf, size_t len,
                   uint64_t fi_addr, struct xfer_ctx *ctx)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };

	return xfer_post_sendv(f, &iov, 1, fi_addr, true, ctx);
}

int xfer_post_sendv(struct xfer_fabric *f, const struct iovec *iov,
                    int niov, uint64_t fi_addr, bool delivery,
                    struct xfer_ctx *ctx)
{
	struct xfer_slot *s;
	uint32_t i = f->tx_free;
	uint8_t *slot;
	size_t len = 0;
	ssize_t rc;

	for (int k = 0; k < niov; k++)
		len += iov[k].iov_len;
	if (len > f->slot_size) {
		sc_error("fabric %s: send to peer %llu: %zu bytes exceed the "
		         "message size %zu", f->info.provider,
		         (unsigned long long)fi_addr, len, f->slot_size);
		return KVF_EINVAL;
	}
	if (i == XFER_SLOT_NONE)
		return KVF_EAGAIN;
	s = &f->tx[i];
	slot = f->pool + (size_t)s->index * f->slot_size;
	len = 0;
	for (int k = 0; k < niov; k++) {
		memcpy(slot + len, iov[k].iov_base, iov[k].iov_len);
		len += iov[k].iov_len;
	}
	{
		struct iovec one = { .iov_base = slot, .iov_len = len };
		void *desc = f->pool_desc;
		struct fi_msg msg = {
			.msg_iov = &one,
			.desc = &desc,
			.iov_count = 1,
			.addr = fi_addr,
			.context = &s->fi_ctx,
		};
		rc = fi_sendmsg(f->ep, &msg,
		                delivery ? f->send_flags : FI_COMPLETION);
	}
	if (rc != 0)
		return post_failed(f, "fi_sendmsg", rc, fi_addr, len);
	f->tx_free = s->next_free;
	s->user = ctx;
	return 0;
}
