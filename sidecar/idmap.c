/*
 * sidecar/idmap.c - linear probing with tombstones; grows at half load so
 * probes stay short. Ids are mixed with a 64-bit finaliser because ours are
 * sequential and would otherwise cluster.
 */
#include "sidecar/idmap.h"

#include <stdlib.h>

#include "client/kvferry.h"

#define EMPTY 0ull
#define TOMB UINT64_MAX

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

void sc_idmap_init(struct sc_idmap *m)
{
	m->keys = NULL;
	m->vals = NULL;
	m->cap = m->len = m->tombs = 0;
}

void sc_idmap_fini(struct sc_idmap *m)
{
	free(m->keys);
	free(m->vals);
	sc_idmap_init(m);
}

static int grow(struct sc_idmap *m)
{
	size_t ncap = m->cap ? m->cap * 2 : 16;
	struct sc_idmap n;

	if (m->len * 4 < m->cap)
		ncap = m->cap; /* mostly tombstones: rehash in place size */
	n.keys = calloc(ncap, sizeof *n.keys);
	n.vals = calloc(ncap, sizeof *n.vals);
	if (!n.keys || !n.vals) {
		free(n.keys);
		free(n.vals);
		return KVF_ENOMEM;
	}
	n.cap = ncap;
	n.len = n.tombs = 0;
	for (size_t i = 0; i < m->cap; i++) {
		if (m->keys[i] != EMPTY && m->keys[i] != TOMB) {
			size_t j = mix(m->keys[i]) & (ncap - 1);
			while (n.keys[j] != EMPTY)
				j = (j + 1) & (ncap - 1);
			n.keys[j] = m->keys[i];
			n.vals[j] = m->vals[i];
			n.len++;
		}
	}
	free(m->keys);
	free(m->vals);
	*m = n;
	return 0;
}

int sc_idmap_put(struct sc_idmap *m, uint64_t key, void *val)
{
	size_t i, tomb = SIZE_MAX;

	if (key == EMPTY || key == TOMB)
		return KVF_EINVAL;
	if ((m->len + m->tombs + 1) * 2 > m->cap && grow(m) != 0)
		return KVF_ENOMEM;
	for (i = mix(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		if (m->keys[i] == key) {
			m->vals[i] = val;
			return 0;
		}
		if (m->keys[i] == TOMB && tomb == SIZE_MAX)
			tomb = i;
		if (m->keys[i] == EMPTY)
			break;
	}
	if (tomb != SIZE_MAX) {
		i = tomb;
		m->tombs--;
	}
	m->keys[i] = key;
	m->vals[i] = val;
	m->len++;
	return 0;
}

static size_t find(const struct sc_idmap *m, uint64_t key)
{
	if (!m->cap || key == EMPTY || key == TOMB)
		return SIZE_MAX;
	for (size_t i = mix(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		if (m->keys[i] == key)
			return i;
		if (m->keys[i] == EMPTY)
			return SIZE_MAX;
	}
}

void *sc_idmap_get(const struct sc_idmap *m, uint64_t key)
{
	size_t i = find(m, key);
	return i == SIZE_MAX ? NULL : m->vals[i];
}

void *sc_idmap_del(struct sc_idmap *m, uint64_t key)
{
	size_t i = find(m, key);
	void *v;
	if (i == SIZE_MAX)
		return NULL;
	v = m->vals[i];
	m->keys[i] = TOMB;
	m->vals[i] = NULL;
	m->len--;
	m->tombs++;
	return v;
}

void *sc_idmap_next(const struct sc_idmap *m, size_t *pos, uint64_t *key)
{
	while (*pos < m->cap) {
		size_t i = (*pos)++;
		if (m->keys[i] != EMPTY && m->keys[i] != TOMB) {
			if (key)
				*key = m->keys[i];
			return m->vals[i];
		}
	}
	return NULL;
}
