/*
 * xfer/fabric.h - one libfabric rail: fabric, domain, one FI_EP_RDM endpoint
 * that serves every peer, its address vector, one completion queue, memory
 * registration, RMA and message posting.
 *
 * Only xfer/ calls libfabric; everything here speaks KVF_E* codes (see
 * client/kvferry.h) and logs the provider's own error once, by name.
 *
 * Threads: a fabric is driven by one progress thread (posting and
 * xfer_fabric_poll); open/close and the query functions may be called from
 * any thread when no progress thread runs; mr registration may be called
 * from any thread (the domain is opened FI_THREAD_SAFE).
 */
#ifndef KVF_XFER_FABRIC_H
#define KVF_XFER_FABRIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct xfer_fabric;
struct xfer_mr;

struct xfer_fabric_config {
	/* NULL or "": pick the first provider offering FI_RMA | FI_MSG on an
	 * FI_EP_RDM endpoint. Otherwise a provider name as fi_info prints it
	 * ("tcp;ofi_rxm", "shm", "efa", "verbs;ofi_rxm") or its core name
	 * ("tcp", "verbs"); a forced provider that is missing is an error,
	 * never a silent fallback. */
	const char *provider;
	/* Local address to bind the endpoint to (hints node, FI_SOURCE);
	 * NULL: the provider's default. */
	const char *node;
	/* Domain to open (fi_info->domain_attr->name: a NIC, "rdmap16s27" for
	 * EFA, an interface for tcp); NULL or "": the first one offered. */
	const char *domain;
	/* Ask for FI_HMEM (CUDA) support; granted only if the provider has it. */
	bool want_hmem;
	/* Receive buffers posted for incoming messages (0: 256) and their
	 * size (0: 1024 bytes). */
	uint32_t rx_count;
	uint32_t rx_size;
};

struct xfer_fabric_info {
	char provider[64]; /* fi_info->fabric_attr->prov_name */
	char fabric[128];
	char domain[128];
	uint64_t max_msg_size;  /* ep_attr->max_msg_size */
	uint64_t mr_mode;       /* domain_attr->mr_mode bits */
	uint32_t cq_data_size;
	uint32_t tx_size;       /* tx_attr->size: the queue depth to respect */
	uint64_t inject_size;
	bool hmem_cuda;         /* FI_HMEM with CUDA granted */
	uint8_t addr[256];      /* fi_getname() of the endpoint */
	uint32_t addr_len;
	char addr_str[128];     /* fi_av_straddr() of it, for humans */
	/* Writes carry FI_DELIVERY_COMPLETE (see xfer_post_write). */
	bool delivery_complete;
	/* The provider delivers a send after the writes posted before it to
	 * the same peer (FI_ORDER_SAW); then writes skip delivery-complete. */
	bool ordered_saw;
	/* The provider needs xfer_fabric_poll to move data (manual data
	 * progress): a progress thread must keep polling while transfers
	 * are in flight, not only block on the wait fd. */
	bool manual_progress;
	/* The NIC's sysfs device path (xfer/topo.h), "" when unknown or
	 * virtual (loopback, veth): GPU affinity ignores such rails. */
	char pci_path[256];
	/* The largest message xfer_post_send takes and a receive slot holds
	 * (xfer_fabric_config.rx_size). */
	uint32_t msg_max;
};

/*
 * Open a rail. On failure returns KVF_ECONFIG (unknown/missing provider),
 * KVF_EFABRIC or KVF_ENOMEM and writes a one-line reason into err.
 * Blocks briefly; call before any progress thread starts.
 */
int xfer_fabric_open(const struct xfer_fabric_config *cfg,
                     struct xfer_fabric **out, char *err, size_t errlen);

/* Close the endpoint and free everything. Accepts NULL. Every MR must have
 * been closed first. */
void xfer_fabric_close(struct xfer_fabric *f);

const struct xfer_fabric_info *xfer_fabric_info(const struct xfer_fabric *f);

/*
 * The distinct domains (NICs) the provider offers, in fi_getinfo order, as
 * NUL-terminated names of up to 64 bytes into names[0..max); *n gets the
 * count. provider NULL or "": the automatic choice's provider. For
 * "--rails N": one rail per domain.
 */
int xfer_fabric_domains(const char *provider, char (*names)[64], int max,
                        int *n);

/* Names every provider able to serve kvferry (FI_RMA|FI_MSG, FI_EP_RDM), one
 * per line, into buf; for error messages. */
void xfer_fabric_list_providers(char *buf, size_t len);

/*
 * The fd to block on when idle (FI_WAIT_FD of the CQ), or -1 when the
 * provider offers none (then poll with back-off). Before blocking on it,
 * xfer_fabric_trywait must return true.
 */
int xfer_fabric_wait_fd(struct xfer_fabric *f);
bool xfer_fabric_trywait(struct xfer_fabric *f);

/*
 * Peers in the address vector. addr is what the peer's
 * xfer_fabric_info().addr held, len its addr_len (which differs between
 * peers with some providers: shm's is a name). Returns 0 with *fi_addr set,
 * KVF_EINVAL for an address no peer of this provider sends, or
 * KVF_EFABRIC with the provider's reason in err when it inserted nothing.
 */
int xfer_fabric_av_insert(struct xfer_fabric *f, const void *addr,
                          size_t len, uint64_t *fi_addr, char *err,
                          size_t errlen);
int xfer_fabric_av_remove(struct xfer_fabric *f, uint64_t fi_addr);

enum xfer_mem {
	XFER_MEM_HOST = 0,
	XFER_MEM_CUDA = 1,
};

/*
 * Register [buf, buf + len) for local use and remote RMA access, honouring
 * the provider's mr_mode (FI_MR_LOCAL descriptors, FI_MR_VIRT_ADDR,
 * FI_MR_PROV_KEY, FI_MR_ALLOCATED, FI_MR_ENDPOINT). key is used when the
 * provider lets the application choose keys (must be unique per fabric).
 * XFER_MEM_CUDA needs info.hmem_cuda (cuda_device is the device ordinal).
 */
int xfer_mr_reg(struct xfer_fabric *f, void *buf, size_t len,
                enum xfer_mem kind, int cuda_device, uint64_t key,
                struct xfer_mr **out);
/* Accepts NULL. */
void xfer_mr_close(struct xfer_mr *mr);
void *xfer_mr_desc(const struct xfer_mr *mr);
uint64_t xfer_mr_key(const struct xfer_mr *mr);
/* What a peer puts in fi_write/fi_read's addr for offset 0 of this MR:
 * the virtual address with FI_MR_VIRT_ADDR, else 0. */
uint64_t xfer_mr_remote_base(const struct xfer_mr *mr);

/*
 * Per-operation context. The caller embeds one in each of its in-flight
 * operations and it must stay put until the completion comes back.
 */
struct xfer_ctx {
	uint64_t fi_space[8]; /* struct fi_context2 lives here */
	void *owner;          /* the caller's, returned in the completion */
	uint32_t kind;        /* the caller's, returned in the completion */
	uint32_t aux;
};

/*
 * Post one operation. Return 0, KVF_EAGAIN when the queue is full (drive
 * xfer_fabric_poll and retry), or KVF_EFABRIC. Writes are posted with
 * FI_DELIVERY_COMPLETE unless the provider orders sends after writes
 * (info.ordered_saw), so that either their completion means the bytes are
 * in the target's memory, or a message sent after that completion is
 * delivered after them. Never block.
 */
int xfer_post_write(struct xfer_fabric *f, const void *buf, size_t len,
                    void *desc, uint64_t fi_addr, uint64_t raddr,
                    uint64_t rkey, struct xfer_ctx *ctx);
int xfer_post_read(struct xfer_fabric *f, void *buf, size_t len, void *desc,
                   uint64_t fi_addr, uint64_t raddr, uint64_t rkey,
                   struct xfer_ctx *ctx);
/* Send a small message (len <= rx_size of the peer) to fi_addr; the bytes
 * are copied before return (internal buffer). Sent with
 * FI_DELIVERY_COMPLETE where the provider offers it, so its completion
 * means the target has it (and, with ordered_saw, every write before it). */
int xfer_post_send(struct xfer_fabric *f, const void *buf, size_t len,
                   uint64_t fi_addr, struct xfer_ctx *ctx);
/* The same, gathering the message from niov pieces (one copy into the
 * bounce slot); their total must not exceed info.msg_max. Without
 * delivery the completion only says the message left (the caller has an
 * answer of its own to wait for). */
int xfer_post_sendv(struct xfer_fabric *f, const struct iovec *iov,
                    int niov, uint64_t fi_addr, bool delivery,
                    struct xfer_ctx *ctx);

enum xfer_comp_type {
	XFER_COMP_OP = 1,   /* a posted write/read/send finished */
	XFER_COMP_RECV = 2, /* a message arrived */
};

struct xfer_comp {
	enum xfer_comp_type type;
	int status;            /* 0 or KVF_E* */
	int prov_errno;        /* the provider's errno on failure */
	struct xfer_ctx *ctx;  /* XFER_COMP_OP: the caller's context */
	const void *data;      /* XFER_COMP_RECV: the message, valid until */
	size_t len;            /* xfer_fabric_repost(recv_slot) */
	uint32_t recv_slot;
	char errstr[96];       /* fi_cq_strerror on failure */
};

/*
 * Drive progress and take up to max completions into comps; *n gets the
 * count (0 when none). Never blocks.
 */
int xfer_fabric_poll(struct xfer_fabric *f, struct xfer_comp *comps, int max,
                     int *n);

/* Give a receive buffer back to the provider after its message is handled. */
int xfer_fabric_repost(struct xfer_fabric *f, uint32_t recv_slot);

#endif
