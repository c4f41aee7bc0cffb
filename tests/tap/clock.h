/*
 * tests/tap/clock.h - the monotonic clock every bounded wait of the tests
 * measures against, in milliseconds, seconds or nanoseconds.
 */
#ifndef KVF_TAP_CLOCK_H
#define KVF_TAP_CLOCK_H

#include <stdint.h>

/* Milliseconds on CLOCK_MONOTONIC (any origin: compare two readings). */
long tp_now_ms(void);

/* Seconds on CLOCK_MONOTONIC, to the nanosecond, for timing. */
double tp_now_s(void);

/* Nanoseconds on CLOCK_MONOTONIC, for timing short events; one clock for
 * every process of a host, so two processes may compare readings. */
uint64_t tp_now_ns(void);

/* Sleep ms milliseconds (a signal may cut it short). */
void tp_sleep_ms(long ms);

#endif
