/*
 * sidecar/gpu_path.h - moving GPU memory: the staged pipeline (when the
 * provider cannot register CUDA memory) and the same-host path (both
 * engines' GPUs on this host: copy GPU to GPU, no network). Driven by the
 * progress thread; see sidecar/gpu_path.c for the protocol.
 */
#ifndef KVF_SIDECAR_GPU_PATH_H
#define KVF_SIDECAR_GPU_PATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sc_daemon;
struct sc_xfers;
struct sc_xfer;
struct xfer_comp;
struct xfer_cuda;
struct xfer_cuda_copier;
struct ipc_cuda_mem;

/* Open CUDA and the staging pool (main thread, in sc_xfers_start). A
 * machine without CUDA is not an error: GPU regions are then refused. */
int sc_gpu_start(struct sc_xfers *x);
void sc_gpu_stop(struct sc_xfers *x);

/* The CUDA context for imports (control threads), or NULL with the reason
 * in err. */
struct xfer_cuda *sc_gpu_cuda(struct sc_daemon *d, char *err, size_t errlen);

/* The copier, for the storage tier's staging copies (progress thread), or
 * NULL when this sidecar has no CUDA. */
struct xfer_cuda_copier *sc_gpu_copier(struct sc_daemon *d);

/* Progress thread: another module's copies run (+1) or ended (-1); the
 * copier has no fd to wake the loop, so it must not sleep meanwhile. */
void sc_gpu_busy_add(struct sc_daemon *d, int delta);

/* Import an engine's CUDA memory exported to us; open_dev >= 0 maps it in
 * that device's context (the device that will copy to or from it, so a
 * same-host copy between two GPUs goes peer to peer), -1 in its own. The
 * returned reference is released with sc_gpu_rele_import. */
int sc_gpu_hold_import(struct sc_daemon *d, const struct ipc_cuda_mem *m,
                       int open_dev, void **ref, uint8_t **dptr, int *dev,
                       char *err, size_t errlen);
void sc_gpu_rele_import(struct sc_daemon *d, void *ref);

/* Progress thread: take a planned transfer that touches CUDA memory.
 * event_handle: the engine's CUDA IPC event to wait for before reading
 * its memory, or NULL. Returns 0, or an error (with t's message set). */
int sc_gpu_accept(struct sc_xfers *x, struct sc_xfer *t,
                  const uint8_t *event_handle);

/* Progress thread: move GPU work forward; returns how much happened. */
int sc_gpu_progress(struct sc_xfers *x);

/* Progress thread: a fabric completion whose context kind is CTX_GPU. */
void sc_gpu_on_comp(struct sc_xfers *x, const struct xfer_comp *c);

/* Progress thread: a received message that is not a notification. */
void sc_gpu_on_msg(struct sc_xfers *x, const void *data, size_t len);

/* True while copies or chunks are in flight (do not sleep long). */
bool sc_gpu_busy(struct sc_xfers *x);

/* A transfer is being freed: drop its GPU state. */
void sc_gpu_xfer_free(struct sc_xfers *x, struct sc_xfer *t);

/* What kvferryctl shows for a peer: "same-host", "staged", "gpudirect". */
const char *sc_gpu_path_name(struct sc_daemon *d, bool same_host);

#endif
