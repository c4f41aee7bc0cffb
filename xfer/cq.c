/*
 * xfer/cq.c - turning the rail's completion queue into xfer_comp entries.
 * fi_cq_read is also what drives progress for manual-progress providers
 * (tcp;ofi_rxm, shm), so the progress thread calls xfer_fabric_poll even
 * when it expects nothing. Each completion's op_context tells what it was:
 * a receive slot of the pool (a message arrived), a send bounce slot (the
 * caller's send finished; the slot goes back on the free list), or the
 * caller's own xfer_ctx (a write or read finished). Error entries become a
 * status with the provider's errno and fi_cq_strerror text. Failed
 * receives are not the caller's business: they are logged and the slot is
 * posted again, except when cancelled because the endpoint is closing.
 */
#include "xfer/fabric_int.h"

#include "client/kvferry.h"
#include "sidecar/log.h"

#include <stdio.h>
#include <string.h>

#include <rdma/fi_errno.h>

#define XFER_CQ_BATCH 16

/* Fill c from one completion; false when it is not for the caller. */
static bool translate(struct xfer_fabric *f, void *op_context, size_t len,
                      int status, struct xfer_comp *c)
{
	struct xfer_slot *s = op_context;

	memset(c, 0, sizeof(*c));
	c->status = status;
	if (s >= f->rx && s < f->rx + f->rx_count) {
		if (status != 0)
			return false;
		c->type = XFER_COMP_RECV;
		c->recv_slot = s->index;
		c->data = f->pool + (size_t)s->index * f->slot_size;
		c->len = len;
		return true;
	}
	c->type = XFER_COMP_OP;
	if (s >= f->tx && s < f->tx + f->tx_count) {
		c->ctx = s->user;
		s->user = NULL;
		s->next_free = f->tx_free;
		f->tx_free = (uint32_t)(s - f->tx);
	} else {
		c->ctx = op_context;
	}
	return true;
}

/* One error entry; returns 1 when it became a completion for the caller,
 * 0 when it was consumed here, or a negative fi errno. */
static int read_error(struct xfer_fabric *f, struct xfer_comp *c)
{
	struct fi_cq_err_entry e;
	struct xfer_slot *s;
	ssize_t rc;
	int status;

	memset(&e, 0, sizeof(e));
	rc = fi_cq_readerr(f->cq, &e, 0);
	if (rc < 0)
		return (int)rc;
	status = e.err == FI_ECANCELED ? KVF_ECANCELED : KVF_EFABRIC;
	s = e.op_context;
	if (s >= f->rx && s < f->rx + f->rx_count) {
		if (e.err != FI_ECANCELED) {
			sc_warn("fabric %s: receive into slot %u failed: %s "
			        "(%d, prov_errno %d); reposting",
			        f->info.provider, s->index, fi_strerror(e.err),
			        e.err, e.prov_errno);
			xfer_fabric_repost(f, s->index);
		}
		return 0;
	}
	translate(f, e.op_context, e.len, status, c);
	c->prov_errno = e.prov_errno;
	snprintf(c->errstr, sizeof(c->errstr), "%s",
	         fi_cq_strerror(f->cq, e.prov_errno, e.err_data, NULL, 0));
	if (c->errstr[0] == '\0')
		snprintf(c->errstr, sizeof(c->errstr), "%s",
		         fi_strerror(e.err));
	return 1;
}

int xfer_fabric_poll(struct xfer_fabric *f, struct xfer_comp *comps, int max,
                     int *n)
{
	struct fi_cq_data_entry ent[XFER_CQ_BATCH];
	int got = 0;

	if (f == NULL || comps == NULL || n == NULL || max < 0)
		return KVF_EINVAL;
	while (got < max) {
		size_t want = (size_t)(max - got);
		ssize_t r;

		if (want > XFER_CQ_BATCH)
			want = XFER_CQ_BATCH;
		r = fi_cq_read(f->cq, ent, want);
		if (r > 0) {
			for (ssize_t i = 0; i < r; i++)
				if (translate(f, ent[i].op_context,
				              ent[i].len, 0, &comps[got]))
					got++;
			if ((size_t)r < want)
				break;
			continue;
		}
		if (r == -FI_EAGAIN)
			break;
		if (r == -FI_EAVAIL) {
			int e = read_error(f, &comps[got]);

			if (e == 1)
				got++;
			if (e >= 0)
				continue;
			if (e == -FI_EAGAIN)
				break;
			r = e;
		}
		sc_error("fabric %s: fi_cq_read() failed: %s (%zd)",
		         f->info.provider, fi_strerror((int)-r), r);
		*n = got;
		return KVF_EFABRIC;
	}
	*n = got;
	return 0;
}
