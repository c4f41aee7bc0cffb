/*
 * tests/tap/pattern.h - deterministic byte patterns for checking that the
 * bytes which arrived are the ones that were sent. A pattern is an endless
 * byte stream named by a seed; any slice of it can be made or checked on
 * its own, in any process, so a sender and a checker need to share only
 * (seed, offset, length). Different seeds give unrelated streams.
 */
#ifndef KVF_TAP_PATTERN_H
#define KVF_TAP_PATTERN_H

#include <stddef.h>
#include <stdint.h>

/* Byte i of pattern seed. */
uint8_t tp_pattern_byte(uint64_t i, uint64_t seed);

/* Bytes [first, first + n) of pattern seed into p. */
void tp_pattern_fill_at(void *p, size_t n, uint64_t first, uint64_t seed);

/* Bytes [0, n) of pattern seed into p. */
void tp_pattern_fill(void *p, size_t n, uint64_t seed);

/* The first offset in p[0..n) that differs from bytes [first, first + n)
 * of pattern seed, or -1 when none does. */
long long tp_pattern_mismatch_at(const void *p, size_t n, uint64_t first,
                                 uint64_t seed);

/* 1 when p[0..n) holds bytes [0, n) of pattern seed, else 0. */
int tp_pattern_ok(const void *p, size_t n, uint64_t seed);

#endif
