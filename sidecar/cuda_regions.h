/*
 * sidecar/cuda_regions.h - CUDA regions: import the engine's IPC handle
 * (cached per allocation, xfer/cuda.h) and, when the provider registers
 * GPU memory, register it with the fabric.
 */
#ifndef KVF_SIDECAR_CUDA_REGIONS_H
#define KVF_SIDECAR_CUDA_REGIONS_H

#include <stddef.h>

#include "proto/engine.pb-c.h"

struct sc_daemon;
struct sc_region;

/* Fill r->base, r->kind, r->cuda for a MEM_CUDA registration, or return
 * KVF_ENOTSUP / KVF_ECUDA / KVF_EINVAL with err saying why. */
int sc_region_import_cuda(struct sc_daemon *d, struct sc_region *r,
                          const Kvf__Engine__RegisterRegion *m, char *err,
                          size_t errlen);

#endif
