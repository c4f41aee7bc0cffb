/*
 * tests/tap/engine.h - the engines of an end-to-end test: a kvf client
 * connected to one of the test's sidecars, with a host region to move
 * bytes from and into. Built on client/kvferry.h only.
 */
#ifndef KVF_TAP_ENGINE_H
#define KVF_TAP_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "client/kvferry.h"
#include "tests/tap/proc.h"

/*
 * Connect an engine called name to d's engine socket (o may be NULL for
 * the defaults; its socket_path is replaced by d's) into *c and, when len
 * is not 0, allocate a host region of len bytes into *buf and *region.
 * A test cannot go on without its engines: on failure this bails, naming
 * the engine, the sidecar and the call that failed. Blocks for as long as
 * kvf_connect and kvf_alloc_host (bounded by o's timeout).
 */
void tp_engine_open(const char *name, const struct tp_daemon *d,
                    const struct kvf_connect_opts *o, size_t len,
                    kvf_client **c, uint8_t **buf, kvf_region *region);

#endif
