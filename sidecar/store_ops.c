/*
 * sidecar/store_ops.c - storage requests from engines. No storage
 * directory can be configured yet, so every request is answered with
 * KVF_ENOTSUP and a reason; the module is here so the data path and the
 * ring format are in place.
 */
#include "sidecar/store_ops.h"

#include "client/kvferry.h"
#include "ipc/wire.h"
#include "sidecar/xfers.h"

int sc_store_start(struct sc_daemon *d)
{
	(void)d;
	return 0;
}

void sc_store_stop(struct sc_daemon *d)
{
	(void)d;
}

void sc_store_accept(struct sc_daemon *d, struct sc_session *s,
                     const void *rec, uint32_t len)
{
	uint64_t id = 0;
	if (len >= sizeof id)
		id = *(const uint64_t *)rec;
	sc_xfers_complete(d, s, id, KVF_ENOTSUP, 0,
	                  "no storage directory is configured on this sidecar");
}

int sc_store_progress(struct sc_daemon *d)
{
	(void)d;
	return 0;
}

bool sc_store_busy(struct sc_daemon *d)
{
	(void)d;
	return false;
}
