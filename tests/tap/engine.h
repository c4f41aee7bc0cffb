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

/* The usual two-node set-up: sidecars a and b, engine "prefill" on a and
 * "decode" on b, each with a host region, decode resolved from prefill. */
struct tp_pair {
	struct tp_daemon a, b;
	kvf_client *pre, *dec;
	uint8_t *pbuf, *dbuf;
	kvf_region pr, dr;
	kvf_peer peer;
};

/*
 * Start sidecars "<prefix>-a" and "<prefix>-b" with their arguments
 * (NULL-terminated lists), open both engines with regions of len bytes
 * and resolve the peer. Bails, saying which step failed.
 */
void tp_pair_open(struct tp_pair *p, const char *prefix,
                  const char *const *args_a, const char *const *args_b,
                  size_t len);

/* Close both engines and stop both sidecars (SIGTERM, 5 s each): 1 when
 * both stopped cleanly, else 0. */
int tp_pair_close(struct tp_pair *p);

#endif
