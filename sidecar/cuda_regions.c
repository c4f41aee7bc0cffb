/*
 * sidecar/cuda_regions.c - CUDA region import. GPU transfers are not wired
 * into the data path yet, so a CUDA registration is refused with a clear
 * reason instead of being accepted and moved wrongly.
 */
#include "sidecar/cuda_regions.h"

#include <stdio.h>

#include "client/kvferry.h"

int sc_region_import_cuda(struct sc_daemon *d, struct sc_region *r,
                          const Kvf__Engine__RegisterRegion *m, char *err,
                          size_t errlen)
{
	(void)d;
	(void)r;
	(void)m;
	snprintf(err, errlen, "CUDA regions are not supported by this "
	         "sidecar's data path yet");
	return KVF_ENOTSUP;
}
