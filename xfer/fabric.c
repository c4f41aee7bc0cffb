/*
 * xfer/fabric.c - opening and closing one libfabric rail, and everything
 * that is not a memory registration or a post: provider choice, the
 * address vector, the completion queue and its wait fd, and the pools of
 * message buffers that catch incoming messages and hold outgoing ones.
 *
 * Provider choice. fi_getinfo(1.17) is asked for an FI_EP_RDM endpoint
 * with FI_RMA | FI_MSG, FI_CONTEXT | FI_CONTEXT2 mode bits (every post
 * carries a struct fi_context2) and every mr_mode bit we know how to
 * honour, so the provider picks the cheapest scheme it needs. The domain
 * is asked for FI_THREAD_SAFE: registration may come from any thread
 * while the progress thread posts, and we do not serialise ourselves.
 * A forced provider is matched by its full name ("tcp;ofi_rxm") or by its
 * core name ("tcp" matches "tcp;ofi_rxm"); missing is KVF_ECONFIG, never a
 * fallback. The automatic choice takes the first answer but skips:
 *  - udp;ofi_rxd: reliability emulated over UDP, meant for testing, far
 *    slower than tcp;ofi_rxm on the same links;
 *  - sockets: the deprecated reference provider, slow and unmaintained;
 *  - net, net;ofi_rxm: the experimental tcp rewrite of 1.16/1.17;
 *  - shm: it reaches only this host, while a sidecar's peers are usually
 *    elsewhere (and it names its endpoint after the node, see below).
 * Each can still be forced by name.
 *
 * Write completion semantics. We ask for FI_DELIVERY_COMPLETE in the tx
 * op_flags and pass it on every write (xfer_post_write), so a write's
 * completion means the bytes are visible in the target's memory. Every
 * provider in libfabric 1.17 here (tcp;ofi_rxm, shm, net, udp;ofi_rxd,
 * sockets) accepts the flag in fi_getinfo and echoes it in tx op_flags;
 * info.delivery_complete records that. It is not free: on this machine
 * shm writes of 4 MiB drop from about 9 to 2.5 GB/s with it, tcp;ofi_rxm
 * from about 2.5 to 1.7 GB/s (tests/bench/fi_raw_bench -D), which fits
 * the target acknowledging placement. Were a provider to refuse the flag,
 * a write completion would only mean the source buffer may be reused
 * (FI_INJECT_COMPLETE/FI_TRANSMIT_COMPLETE): the data could still be in
 * flight, and a caller must then order a send after the write (FI_ORDER
 * SAW, which tcp;ofi_rxm and shm both report) or read back before telling
 * the target that the data landed.
 */
#include "xfer/fabric_int.h"

#include "client/kvferry.h"
#include "sidecar/log.h"
#include "xfer/topo.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rdma/fi_cm.h>
#include <rdma/fi_errno.h>

#define XFER_FI_VERSION FI_VERSION(1, 17)
#define XFER_RX_COUNT_DEFAULT 256
#define XFER_RX_SIZE_DEFAULT 1024
#define XFER_TX_SLOTS_MAX 256

_Static_assert(sizeof(struct fi_context2) <=
                   sizeof(((struct xfer_ctx *)0)->fi_space),
               "struct fi_context2 must fit in xfer_ctx.fi_space");
_Static_assert(offsetof(struct xfer_slot, fi_ctx) == 0,
               "the slot's context must come first");

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static bool auto_skipped(const char *prov)
{
	static const char *const skip[] = {
		"udp;ofi_rxd", "sockets", "net", "net;ofi_rxm", "shm",
	};
	for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
		if (strcmp(prov, skip[i]) == 0)
			return true;
	return false;
}

/* Full names match exactly; a name without ';' also matches a layered
 * provider whose core it is ("tcp" -> "tcp;ofi_rxm"). */
static bool prov_matches(const char *want, const char *prov)
{
	size_t n;

	if (strcmp(want, prov) == 0)
		return true;
	if (strchr(want, ';') != NULL)
		return false;
	n = strlen(want);
	return strncmp(prov, want, n) == 0 && prov[n] == ';';
}

static struct fi_info *make_hints(bool hmem)
{
	struct fi_info *h = fi_allocinfo();

	if (h == NULL)
		return NULL;
	h->ep_attr->type = FI_EP_RDM;
	h->caps = FI_RMA | FI_MSG | (hmem ? FI_HMEM : 0);
	h->mode = FI_CONTEXT | FI_CONTEXT2;
	h->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR |
	                          FI_MR_ALLOCATED | FI_MR_PROV_KEY |
	                          FI_MR_ENDPOINT | (hmem ? FI_MR_HMEM : 0);
	h->domain_attr->threading = FI_THREAD_SAFE;
	h->tx_attr->op_flags = FI_DELIVERY_COMPLETE;
	return h;
}

/* fi_getinfo with our hints; node, when given, is the local source. */
static int get_infos(const char *node, bool hmem, struct fi_info **out)
{
	struct fi_info *hints = make_hints(hmem);
	int rc;

	if (hints == NULL)
		return -FI_ENOMEM;
	if (node != NULL && *node != '\0')
		hints->addr_format = FI_FORMAT_UNSPEC;
	rc = fi_getinfo(XFER_FI_VERSION, node && *node ? node : NULL, NULL,
	                node && *node ? FI_SOURCE : 0, hints, out);
	fi_freeinfo(hints);
	return rc;
}

/* Unique provider names of list, joined by sep, into buf. */
static void join_providers(const struct fi_info *list, const char *sep,
                           char *buf, size_t len)
{
	size_t used = 0;

	if (len == 0)
		return;
	buf[0] = '\0';
	for (const struct fi_info *p = list; p != NULL; p = p->next) {
		const char *name = p->fabric_attr->prov_name;
		bool seen = false;
		int n;

		for (const struct fi_info *q = list; q != p; q = q->next)
			if (strcmp(q->fabric_attr->prov_name, name) == 0) {
				seen = true;
				break;
			}
		if (seen)
			continue;
		n = snprintf(buf + used, len - used, "%s%s",
		             used ? sep : "", name);
		if (n < 0 || (size_t)n >= len - used)
			break;
		used += (size_t)n;
	}
}

void xfer_fabric_list_providers(char *buf, size_t len)
{
	struct fi_info *list = NULL;

	if (buf == NULL || len == 0)
		return;
	buf[0] = '\0';
	if (get_infos(NULL, false, &list) != 0)
		return;
	join_providers(list, "\n", buf, len);
	fi_freeinfo(list);
}

static bool domain_matches(const struct fi_info *p, const char *domain)
{
	return !domain || !*domain ||
	       (p->domain_attr->name &&
	        strcmp(p->domain_attr->name, domain) == 0);
}

static const struct fi_info *choose(const struct fi_info *list,
                                    const char *want, const char *domain)
{
	bool forced = want != NULL && *want != '\0';

	/* An exact name wins over a core-name match further up the list. */
	if (forced)
		for (const struct fi_info *p = list; p; p = p->next)
			if (strcmp(want, p->fabric_attr->prov_name) == 0 &&
			    domain_matches(p, domain))
				return p;
	for (const struct fi_info *p = list; p; p = p->next) {
		const char *name = p->fabric_attr->prov_name;

		if ((forced ? prov_matches(want, name) : !auto_skipped(name)) &&
		    domain_matches(p, domain))
			return p;
	}
	return NULL;
}

int xfer_fabric_domains(const char *provider, char (*names)[64], int max,
                        int *n)
{
	struct fi_info *list = NULL;
	const struct fi_info *first;
	int count = 0;

	if (!names || max <= 0 || !n)
		return KVF_EINVAL;
	if (get_infos(NULL, false, &list) != 0)
		return KVF_EFABRIC;
	first = choose(list, provider, NULL);
	for (const struct fi_info *p = list; first && p && count < max;
	     p = p->next) {
		const char *dom = p->domain_attr->name;
		bool seen = false;

		if (!dom ||
		    strcmp(p->fabric_attr->prov_name,
		           first->fabric_attr->prov_name) != 0)
			continue;
		for (int i = 0; i < count; i++)
			if (strcmp(names[i], dom) == 0)
				seen = true;
		if (!seen)
			snprintf(names[count++], 64, "%s", dom);
	}
	fi_freeinfo(list);
	*n = count;
	return first ? 0 : KVF_ECONFIG;
}

static int fi_to_kvf(int fi_rc)
{
	if (fi_rc == -FI_ENOMEM)
		return KVF_ENOMEM;
	return KVF_EFABRIC;
}

static int open_cq(struct xfer_fabric *f, char *err, size_t errlen)
{
	struct fi_cq_attr attr = {
		.format = FI_CQ_FORMAT_DATA,
		.wait_obj = FI_WAIT_FD,
		.size = 0,
	};
	int rc;

	/* The CQ must hold a completion for every outstanding op: tx queue
	 * plus every posted receive, or completions would be dropped. */
	attr.size = (size_t)f->fi->tx_attr->size + f->fi->rx_attr->size +
	            f->rx_count + f->tx_count;
	rc = fi_cq_open(f->domain, &attr, &f->cq, NULL);
	if (rc == 0) {
		rc = fi_control(&f->cq->fid, FI_GETWAIT, &f->wait_fd);
		if (rc == 0)
			return 0;
		fi_close(&f->cq->fid);
		f->cq = NULL;
	}
	/* No fd to block on: the progress thread polls with back-off. */
	f->wait_fd = -1;
	attr.wait_obj = FI_WAIT_NONE;
	rc = fi_cq_open(f->domain, &attr, &f->cq, NULL);
	if (rc != 0) {
		set_err(err, errlen, "fabric %s: fi_cq_open() failed: %s (%d)",
		        f->info.provider, fi_strerror(-rc), rc);
		return fi_to_kvf(rc);
	}
	return 0;
}

int xfer_fabric_repost(struct xfer_fabric *f, uint32_t recv_slot)
{
	struct xfer_slot *s;
	ssize_t rc;

	if (f == NULL || recv_slot >= f->rx_count)
		return KVF_EINVAL;
	s = &f->rx[recv_slot];
	rc = fi_recv(f->ep, f->pool + (size_t)recv_slot * f->slot_size,
	             f->slot_size, f->pool_desc, FI_ADDR_UNSPEC, &s->fi_ctx);
	if (rc == 0)
		return 0;
	if (rc == -FI_EAGAIN)
		return KVF_EAGAIN;
	sc_error("fabric %s: fi_recv() failed: slot %u: %s (%zd)",
	         f->info.provider, recv_slot, fi_strerror((int)-rc), rc);
	return KVF_EFABRIC;
}

static int open_pools(struct xfer_fabric *f, char *err, size_t errlen)
{
	size_t n = (size_t)f->rx_count + f->tx_count;
	int rc;

	f->rx = calloc(n, sizeof(*f->rx));
	f->pool_len = n * f->slot_size;
	f->pool = aligned_alloc(4096, (f->pool_len + 4095) & ~(size_t)4095);
	if (f->rx == NULL || f->pool == NULL) {
		set_err(err, errlen, "fabric %s: message pools of %zu bytes: "
		        "out of memory", f->info.provider, f->pool_len);
		return KVF_ENOMEM;
	}
	memset(f->pool, 0, f->pool_len);
	f->tx = f->rx + f->rx_count;
	for (uint32_t i = 0; i < f->rx_count; i++)
		f->rx[i].index = i;
	f->tx_free = f->tx_count ? 0 : XFER_SLOT_NONE;
	for (uint32_t i = 0; i < f->tx_count; i++) {
		f->tx[i].index = f->rx_count + i;
		f->tx[i].next_free = i + 1 < f->tx_count ? i + 1
		                                         : XFER_SLOT_NONE;
	}
	if (f->mr_local) {
		rc = xfer_mr_reg_raw(f, f->pool, f->pool_len,
		                     FI_SEND | FI_RECV, f->key_reserved,
		                     &f->pool_mr);
		if (rc != 0) {
			set_err(err, errlen, "fabric %s: registering the "
			        "message pools failed: %s (%d)",
			        f->info.provider, fi_strerror(-rc), rc);
			return fi_to_kvf(rc);
		}
		f->pool_desc = fi_mr_desc(f->pool_mr);
	}
	for (uint32_t i = 0; i < f->rx_count; i++) {
		rc = xfer_fabric_repost(f, i);
		if (rc != 0) {
			set_err(err, errlen, "fabric %s: posting receive %u of "
			        "%u failed: %s", f->info.provider, i,
			        f->rx_count, kvf_strerror(rc));
			return rc;
		}
	}
	return 0;
}

/* Where the rail's NIC sits: the provider's own PCI attributes when it
 * reports them (efa, verbs), else the device behind the domain's name. */
static void nic_path(const struct fi_info *fi, char *out, size_t len)
{
	const char *root = getenv("KVFERRY_SYSFS_ROOT");
	char bdf[32];

	out[0] = '\0';
	if (fi->nic && fi->nic->bus_attr &&
	    fi->nic->bus_attr->bus_type == FI_BUS_PCI) {
		const struct fi_pci_attr *pci = &fi->nic->bus_attr->attr.pci;
		snprintf(bdf, sizeof bdf, "%04x:%02x:%02x.%x",
		         (unsigned)pci->domain_id, (unsigned)pci->bus_id,
		         (unsigned)pci->device_id, (unsigned)pci->function_id);
		if (xfer_topo_pci_path(root, bdf, out, len) == 0)
			return;
	}
	if (fi->domain_attr->name)
		xfer_topo_netdev_path(root, fi->domain_attr->name, out, len);
}

static void fill_info(struct xfer_fabric *f)
{
	struct xfer_fabric_info *in = &f->info;
	const struct fi_info *fi = f->fi;

	snprintf(in->provider, sizeof(in->provider), "%s",
	         fi->fabric_attr->prov_name);
	snprintf(in->fabric, sizeof(in->fabric), "%s",
	         fi->fabric_attr->name ? fi->fabric_attr->name : "");
	snprintf(in->domain, sizeof(in->domain), "%s",
	         fi->domain_attr->name ? fi->domain_attr->name : "");
	in->max_msg_size = fi->ep_attr->max_msg_size;
	in->mr_mode = (uint64_t)fi->domain_attr->mr_mode;
	in->cq_data_size = (uint32_t)fi->domain_attr->cq_data_size;
	in->tx_size = (uint32_t)fi->tx_attr->size;
	in->inject_size = fi->tx_attr->inject_size;
	in->hmem_cuda = (fi->caps & FI_HMEM) != 0;
	in->delivery_complete =
		(fi->tx_attr->op_flags & FI_DELIVERY_COMPLETE) != 0;
	in->manual_progress =
		fi->domain_attr->data_progress == FI_PROGRESS_MANUAL;
	nic_path(fi, in->pci_path, sizeof in->pci_path);
}

static void close_fid(struct fid *fid, const char *what, const char *prov);

/* The endpoint, bound and enabled: 0 or the provider's negative code. */
static int open_ep(struct xfer_fabric *f, char *err, size_t errlen)
{
	const char *prov = f->info.provider;
	int rc;

	rc = fi_endpoint(f->domain, f->fi, &f->ep, NULL);
	if (rc != 0) {
		set_err(err, errlen, "fabric %s: fi_endpoint() failed: %s "
		        "(%d)", prov, fi_strerror(-rc), rc);
		return rc;
	}
	rc = fi_ep_bind(f->ep, &f->av->fid, 0);
	if (rc == 0)
		rc = fi_ep_bind(f->ep, &f->cq->fid, FI_TRANSMIT | FI_RECV);
	if (rc != 0) {
		set_err(err, errlen, "fabric %s: fi_ep_bind() failed: %s (%d)",
		        prov, fi_strerror(-rc), rc);
		return rc;
	}
	rc = fi_enable(f->ep);
	if (rc != 0)
		set_err(err, errlen, "fabric %s: fi_enable() failed: %s (%d)",
		        prov, fi_strerror(-rc), rc);
	return rc;
}

static int open_rail(struct xfer_fabric *f, char *err, size_t errlen)
{
	const char *prov = f->info.provider;
	size_t alen;
	int rc;

	rc = fi_fabric(f->fi->fabric_attr, &f->fabric, NULL);
	if (rc != 0) {
		set_err(err, errlen, "fabric %s: fi_fabric() failed: %s (%d)",
		        prov, fi_strerror(-rc), rc);
		return fi_to_kvf(rc);
	}
	rc = fi_domain(f->fabric, f->fi, &f->domain, NULL);
	if (rc != 0) {
		set_err(err, errlen, "fabric %s: fi_domain(%s) failed: %s (%d)",
		        prov, f->info.domain, fi_strerror(-rc), rc);
		return fi_to_kvf(rc);
	}
	struct fi_av_attr av_attr = { .type = FI_AV_TABLE };
	rc = fi_av_open(f->domain, &av_attr, &f->av, NULL);
	if (rc != 0) {
		set_err(err, errlen, "fabric %s: fi_av_open() failed: %s (%d)",
		        prov, fi_strerror(-rc), rc);
		return fi_to_kvf(rc);
	}
	rc = open_cq(f, err, errlen);
	if (rc != 0)
		return rc;
	rc = open_ep(f, err, errlen);
	if (rc == -FI_EBUSY && strcmp(prov, "shm") == 0) {
		/* shm names its region after our pid; a process of that
		 * pid that died without closing left it in /dev/shm, and
		 * the provider, seeing the pid alive (us), refused it and
		 * removed it. The next endpoint takes a new name. */
		sc_warn("fabric shm: fi_enable() failed: %s (%d): a dead "
		        "process's region of our name, now removed; opening "
		        "the endpoint again", fi_strerror(FI_EBUSY), rc);
		close_fid(&f->ep->fid, "ep", prov);
		f->ep = NULL;
		rc = open_ep(f, err, errlen);
	}
	if (rc != 0)
		return fi_to_kvf(rc);
	alen = sizeof(f->info.addr);
	rc = fi_getname(&f->ep->fid, f->info.addr, &alen);
	if (rc != 0) {
		set_err(err, errlen, "fabric %s: fi_getname() failed: %s (%d)",
		        prov, fi_strerror(-rc), rc);
		return fi_to_kvf(rc);
	}
	f->info.addr_len = (uint32_t)alen;
	alen = sizeof(f->info.addr_str);
	fi_av_straddr(f->av, f->info.addr, f->info.addr_str, &alen);
	return open_pools(f, err, errlen);
}

int xfer_fabric_open(const struct xfer_fabric_config *cfg,
                     struct xfer_fabric **out, char *err, size_t errlen)
{
	struct xfer_fabric *f;
	struct fi_info *list = NULL;
	const struct fi_info *pick = NULL;
	const char *want, *node;
	bool hmem;
	int rc;

	if (cfg == NULL || out == NULL) {
		set_err(err, errlen, "xfer_fabric_open: no config or output");
		return KVF_EINVAL;
	}
	want = cfg->provider && *cfg->provider ? cfg->provider : NULL;
	hmem = cfg->want_hmem;
	/* shm's "address" is a name, unique per endpoint when libfabric
	 * picks it; a network address as its name would make the second
	 * sidecar on a host fail with EBUSY. */
	node = want && strcmp(want, "shm") == 0 ? NULL : cfg->node;
	for (;;) {
		rc = get_infos(node, hmem, &list);
		if (rc == 0)
			pick = choose(list, want, cfg->domain);
		if (pick != NULL || !hmem)
			break;
		/* No provider with FI_HMEM for this choice: carry on with
		 * host memory only; info.hmem_cuda says so. */
		fi_freeinfo(list);
		list = NULL;
		hmem = false;
	}
	if (pick == NULL) {
		char usable[512];

		struct fi_info *all = NULL;

		fi_freeinfo(list);
		usable[0] = '\0';
		if (get_infos(NULL, false, &all) == 0) {
			join_providers(all, ", ", usable, sizeof(usable));
			fi_freeinfo(all);
		}
		if (rc != 0 && rc != -FI_ENODATA) {
			set_err(err, errlen, "fabric: fi_getinfo() failed: "
			        "%s (%d)", fi_strerror(-rc), rc);
			return KVF_EFABRIC;
		}
		set_err(err, errlen, "fabric: provider '%s'%s%s%s%s%s%s not "
		        "found with FI_EP_RDM, FI_RMA and FI_MSG; usable "
		        "providers: %s", want ? want : "(auto)",
		        node && *node ? " on node '" : "",
		        node && *node ? node : "",
		        node && *node ? "'" : "",
		        cfg->domain && *cfg->domain ? " in domain '" : "",
		        cfg->domain && *cfg->domain ? cfg->domain : "",
		        cfg->domain && *cfg->domain ? "'" : "",
		        usable[0] ? usable : "none");
		return KVF_ECONFIG;
	}
	f = calloc(1, sizeof(*f));
	if (f == NULL) {
		fi_freeinfo(list);
		set_err(err, errlen, "fabric: out of memory");
		return KVF_ENOMEM;
	}
	f->wait_fd = -1;
	f->fi = fi_dupinfo(pick);
	fi_freeinfo(list);
	if (f->fi == NULL) {
		free(f);
		set_err(err, errlen, "fabric: fi_dupinfo() failed");
		return KVF_ENOMEM;
	}
	fill_info(f);
	f->mr_local = (f->fi->domain_attr->mr_mode & FI_MR_LOCAL) != 0;
	f->mr_virt_addr = (f->fi->domain_attr->mr_mode & FI_MR_VIRT_ADDR) != 0;
	f->mr_prov_key = (f->fi->domain_attr->mr_mode & FI_MR_PROV_KEY) != 0;
	f->mr_endpoint = (f->fi->domain_attr->mr_mode & FI_MR_ENDPOINT) != 0;
	/* A provider that places a send after the writes posted before it
	 * (FI_ORDER_SAW: tcp;ofi_rxm) needs no delivery-complete: our
	 * notification is posted behind the writes (with the last of them,
	 * sidecar/xfer_tail.c), so it cannot overtake their bytes. Without
	 * that order (shm, efa) every write asks for delivery-complete. */
	/* Messages always ask for delivery-complete where the provider has
	 * it: a transfer's last message is then proof that it, and every
	 * write ordered before it, reached the target. */
	f->send_flags = FI_COMPLETION |
	                (f->info.delivery_complete ? FI_DELIVERY_COMPLETE : 0);
	if (f->fi->tx_attr->msg_order & FI_ORDER_SAW) {
		f->info.delivery_complete = false;
		f->info.ordered_saw = true;
	}
	f->write_flags = FI_COMPLETION |
	                 (f->info.delivery_complete ? FI_DELIVERY_COMPLETE : 0);
	/* The pools take the largest key the provider can hold, so callers
	 * keep every small key. */
	if (f->fi->domain_attr->mr_key_size >= 8 ||
	    f->fi->domain_attr->mr_key_size == 0)
		f->key_reserved = UINT64_MAX;
	else
		f->key_reserved =
			(1ULL << (8 * f->fi->domain_attr->mr_key_size)) - 1;

	f->rx_count = cfg->rx_count ? cfg->rx_count : XFER_RX_COUNT_DEFAULT;
	f->slot_size = cfg->rx_size ? cfg->rx_size : XFER_RX_SIZE_DEFAULT;
	f->info.msg_max = (uint32_t)f->slot_size;
	/* Posted receives beyond the rx queue would only fail. */
	if (f->fi->rx_attr->size && f->rx_count > f->fi->rx_attr->size)
		f->rx_count = (uint32_t)f->fi->rx_attr->size;
	f->tx_count = f->info.tx_size && f->info.tx_size < XFER_TX_SLOTS_MAX
	                      ? f->info.tx_size
	                      : XFER_TX_SLOTS_MAX;
	if (f->slot_size > f->info.max_msg_size) {
		set_err(err, errlen, "fabric %s: rx_size %zu exceeds "
		        "max_msg_size %llu", f->info.provider, f->slot_size,
		        (unsigned long long)f->info.max_msg_size);
		xfer_fabric_close(f);
		return KVF_ECONFIG;
	}
	rc = open_rail(f, err, errlen);
	if (rc != 0) {
		xfer_fabric_close(f);
		return rc;
	}
	sc_debug("fabric %s: open on %s/%s at %s (mr_mode 0x%llx, tx_size %u,"
	         " delivery_complete %d, wait_fd %d)", f->info.provider,
	         f->info.fabric, f->info.domain, f->info.addr_str,
	         (unsigned long long)f->info.mr_mode, f->info.tx_size,
	         f->info.delivery_complete, f->wait_fd);
	*out = f;
	return 0;
}

static void close_fid(struct fid *fid, const char *what, const char *prov)
{
	int rc;

	if (fid == NULL)
		return;
	rc = fi_close(fid);
	if (rc != 0)
		sc_warn("fabric %s: fi_close(%s) failed: %s (%d)", prov, what,
		        fi_strerror(-rc), rc);
}

void xfer_fabric_close(struct xfer_fabric *f)
{
	if (f == NULL)
		return;
	/* The endpoint goes first: it cancels the posted receives, so the
	 * pool memory and its registration are free to go after it. */
	close_fid(f->ep ? &f->ep->fid : NULL, "ep", f->info.provider);
	close_fid(f->pool_mr ? &f->pool_mr->fid : NULL, "pool mr",
	          f->info.provider);
	close_fid(f->cq ? &f->cq->fid : NULL, "cq", f->info.provider);
	close_fid(f->av ? &f->av->fid : NULL, "av", f->info.provider);
	close_fid(f->domain ? &f->domain->fid : NULL, "domain",
	          f->info.provider);
	close_fid(f->fabric ? &f->fabric->fid : NULL, "fabric",
	          f->info.provider);
	fi_freeinfo(f->fi);
	free(f->pool);
	free(f->rx);
	free(f);
}

const struct xfer_fabric_info *xfer_fabric_info(const struct xfer_fabric *f)
{
	return f ? &f->info : NULL;
}

int xfer_fabric_wait_fd(struct xfer_fabric *f)
{
	return f ? f->wait_fd : -1;
}

bool xfer_fabric_trywait(struct xfer_fabric *f)
{
	struct fid *fids[1];

	if (f == NULL || f->wait_fd < 0)
		return false;
	fids[0] = &f->cq->fid;
	return fi_trywait(f->fabric, fids, 1) == 0;
}

/*
 * Peers' addresses. Not every provider's address has one length: shm's is
 * the name of the peer's endpoint, "fi_shm://<pid>:<uid>:<n>" and its NUL,
 * so a sidecar whose pid has one digit more than ours sends one byte more.
 * Such an address was once refused here for being longer than our own,
 * and with it every run whose two sidecars' pids straddled 1000, 10000 or
 * 100000 (docs/PERFORMANCE.md, "Known issues"). Only the fixed formats
 * (one sockaddr family, EFA's, IB's) are still held to our own length; a
 * string or a generic sockaddr may be any length that fits.
 *
 * fi_av_insert takes no length: the provider reads as much as its format
 * says, a string up to its NUL. The bytes go through a zeroed buffer one
 * byte longer than any address we accept, so a short or unterminated
 * address cannot make it read past what the peer sent.
 *
 * FI_SYNC_ERR asks the provider for its reason when it inserts nothing:
 * tcp;ofi_rxm (the util IP AV) writes it, shm in 1.17 ignores the flag
 * and fails only what it cannot map (a name shm_open refuses; a peer not
 * there yet is mapped later), and a provider that refuses the flag is
 * asked again without it.
 */
static bool addr_len_varies(uint32_t fmt)
{
	return fmt == FI_ADDR_STR || fmt == FI_SOCKADDR;
}

int xfer_fabric_av_insert(struct xfer_fabric *f, const void *addr,
                          size_t len, uint64_t *fi_addr, char *err,
                          size_t errlen)
{
	uint8_t buf[sizeof(f->info.addr) + 1];
	char str[128], msg[320];
	size_t slen = sizeof(str);
	fi_addr_t a = FI_ADDR_NOTAVAIL;
	int why = INT_MIN; /* untouched: the provider gave no reason */
	bool varies;
	int rc;

	if (f == NULL || addr == NULL || len == 0 || fi_addr == NULL) {
		set_err(err, errlen,
		        "av insert: no fabric, address or output");
		return KVF_EINVAL;
	}
	varies = addr_len_varies(f->fi->addr_format);
	if (len > sizeof(f->info.addr) ||
	    (!varies && f->info.addr_len != 0 && len > f->info.addr_len)) {
		snprintf(msg, sizeof(msg), "fabric %s: av insert: a peer "
		         "address of %zu bytes, where %s's are %s%u bytes",
		         f->info.provider, len, f->info.provider,
		         varies ? "at most " : "",
		         varies ? (unsigned)sizeof(f->info.addr)
		                : f->info.addr_len);
		sc_error("%s", msg);
		set_err(err, errlen, "%s", msg);
		return KVF_EINVAL;
	}
	memset(buf, 0, sizeof(buf));
	memcpy(buf, addr, len);
	str[0] = '\0';
	fi_av_straddr(f->av, buf, str, &slen);
	str[sizeof(str) - 1] = '\0';
	if (str[0] == '\0') /* a format the provider cannot print */
		snprintf(str, sizeof(str), "%zu bytes", len);
	rc = fi_av_insert(f->av, buf, 1, &a, FI_SYNC_ERR, &why);
	if (rc == -FI_EBADFLAGS || rc == -FI_ENOSYS) {
		why = INT_MIN;
		a = FI_ADDR_NOTAVAIL;
		rc = fi_av_insert(f->av, buf, 1, &a, 0, NULL);
	}
	if (rc == 1 && a != FI_ADDR_NOTAVAIL) {
		*fi_addr = a;
		return 0;
	}
	if (rc < 0)
		snprintf(msg, sizeof(msg), "fabric %s: fi_av_insert(%s) "
		         "failed: %s (%d)", f->info.provider, str,
		         fi_strerror(-rc), rc);
	else if (why != INT_MIN && why != 0)
		/* A positive fabric errno by the man page; some give it
		 * negated. */
		snprintf(msg, sizeof(msg), "fabric %s: fi_av_insert(%s) "
		         "failed: %s (%d)", f->info.provider, str,
		         fi_strerror(why < 0 ? -why : why),
		         why < 0 ? why : -why);
	else
		snprintf(msg, sizeof(msg), "fabric %s: fi_av_insert(%s) "
		         "inserted nothing (returned %d) and gave no reason; "
		         "FI_LOG_LEVEL=warn shows the provider's",
		         f->info.provider, str, rc);
	sc_error("%s", msg);
	set_err(err, errlen, "%s", msg);
	return KVF_EFABRIC;
}

int xfer_fabric_av_remove(struct xfer_fabric *f, uint64_t fi_addr)
{
	fi_addr_t a = fi_addr;
	int rc;

	if (f == NULL)
		return KVF_EINVAL;
	rc = fi_av_remove(f->av, &a, 1, 0);
	if (rc != 0) {
		sc_error("fabric %s: fi_av_remove(%llu) failed: %s (%d)",
		         f->info.provider, (unsigned long long)fi_addr,
		         fi_strerror(-rc), rc);
		return KVF_EFABRIC;
	}
	return 0;
}
