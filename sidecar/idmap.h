/*
 * sidecar/idmap.h - an open-addressing hash map from 64-bit ids to
 * pointers, for the sidecar's tables (sessions, regions, peers, transfers).
 * Not thread-safe: the owner of the table serialises access.
 */
#ifndef KVF_SIDECAR_IDMAP_H
#define KVF_SIDECAR_IDMAP_H

#include <stddef.h>
#include <stdint.h>

struct sc_idmap {
	uint64_t *keys;
	void **vals;
	size_t cap; /* a power of two, or 0 */
	size_t len;
	size_t tombs;
};

void sc_idmap_init(struct sc_idmap *m);
void sc_idmap_fini(struct sc_idmap *m);
/* 0 or KVF_ENOMEM. Key 0 and UINT64_MAX are reserved. Replaces. */
int sc_idmap_put(struct sc_idmap *m, uint64_t key, void *val);
void *sc_idmap_get(const struct sc_idmap *m, uint64_t key);
/* Returns the removed value or NULL. */
void *sc_idmap_del(struct sc_idmap *m, uint64_t key);
/* Iterate: start with *pos = 0; returns NULL at the end. */
void *sc_idmap_next(const struct sc_idmap *m, size_t *pos, uint64_t *key);

#endif
