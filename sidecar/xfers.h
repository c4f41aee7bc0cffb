/*
 * sidecar/xfers.h - the progress thread: it drains every engine's
 * submission ring, plans and posts the RDMA operations, reaps the fabric's
 * completions, sends notifications once a transfer's bytes are delivered,
 * enforces deadlines and writes exactly one completion per transfer.
 */
#ifndef KVF_SIDECAR_XFERS_H
#define KVF_SIDECAR_XFERS_H

#include <stdint.h>

#include "client/kvferry.h"

struct sc_daemon;

/* Create the registry and the doorbell, start the threads. 0 or KVF_E*. */
int sc_xfers_start(struct sc_daemon *d);
/* Stop the threads; transfers still in flight end with KVF_ECLOSED. */
void sc_xfers_stop(struct sc_daemon *d);

/* The shared-memory name of the sidecar-wide doorbell engines ring. */
const char *sc_xfers_doorbell_name(struct sc_daemon *d);

/* Wake the progress thread (a session was added or is closing). */
void sc_xfers_kick(struct sc_daemon *d);

/* The notification message one sidecar sends another over the fabric
 * once every byte of a transfer is delivered. */
#define SC_NOTIFY_MAGIC 0x6b76666eu /* "kvfn" */
#define SC_NOTIFY_VERSION 1u

struct sc_notify_msg {
	uint32_t magic;
	uint16_t version;
	uint16_t tag_len;
	uint64_t target_session;
	uint64_t target_epoch;
	char src_engine[KVF_MAX_NAME];
	uint8_t tag[KVF_MAX_TAG];
};

#endif
