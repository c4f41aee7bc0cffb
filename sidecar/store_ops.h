/*
 * sidecar/store_ops.h - the storage tier as a transfer target: an engine's
 * save and load requests (IPC_SUB_STORE records on its submission ring) are
 * carried out with xfer/store.h and completed like network transfers.
 * Driven by the progress thread (sidecar/xfers.c).
 */
#ifndef KVF_SIDECAR_STORE_OPS_H
#define KVF_SIDECAR_STORE_OPS_H

#include <stdbool.h>
#include <stdint.h>

struct sc_daemon;
struct sc_session;

/* Open the store when one is configured (main thread, before the progress
 * thread starts). 0 or KVF_E*. */
int sc_store_start(struct sc_daemon *d);
void sc_store_stop(struct sc_daemon *d);

/* A storage record popped from session s's ring (progress thread). Every
 * request ends in exactly one sc_xfers_complete for its id. */
void sc_store_accept(struct sc_daemon *d, struct sc_session *s,
                     const void *rec, uint32_t len);

/* Reap storage completions (progress thread); returns how many. */
int sc_store_progress(struct sc_daemon *d);

/* True while storage operations are in flight. */
bool sc_store_busy(struct sc_daemon *d);

#endif
