/*
 * ipc/spin.c - the learned spin of ipc/spin.h. Each mean is an
 * exponentially weighted one (weight 1/8), so a change of machine load
 * shows within a few dozen waits of the mode concerned. A mode with no
 * measurement yet is tried first, so both means fill within the first
 * two waits that see an event.
 */
#include "ipc/spin.h"

#include <stdbool.h>
#include <time.h>

#define RLX memory_order_relaxed

void ipc_spin_init(struct ipc_spin *s, uint32_t max_ns)
{
	s->max_ns = max_ns;
	atomic_store_explicit(&s->mean_spin_ns, 0, RLX);
	atomic_store_explicit(&s->mean_block_ns, 0, RLX);
	atomic_store_explicit(&s->waits, 0, RLX);
}

uint32_t ipc_spin_begin(struct ipc_spin *s)
{
	uint32_t ms = atomic_load_explicit(&s->mean_spin_ns, RLX);
	uint32_t mb = atomic_load_explicit(&s->mean_block_ns, RLX);
	uint32_t n = atomic_fetch_add_explicit(&s->waits, 1, RLX);
	uint32_t lo, hi, every;
	bool spin;

	if (s->max_ns == 0)
		return 0;
	if (ms == 0 || mb == 0)
		return ms == 0 ? s->max_ns : 0;
	/* The further behind the other mode, the rarer its tries: each
	 * costs what it is behind. */
	lo = ms <= mb ? ms : mb;
	hi = ms <= mb ? mb : ms;
	every = hi / 2 > lo       ? IPC_SPIN_EXPLORE * 16
	        : hi / 4 * 3 > lo ? IPC_SPIN_EXPLORE * 4
	                          : IPC_SPIN_EXPLORE;
	spin = (ms <= mb) != (n % every == every - 1);
	return spin ? s->max_ns : 0;
}

void ipc_spin_end(struct ipc_spin *s, uint32_t budget, uint64_t total_ns)
{
	_Atomic uint32_t *m = budget ? &s->mean_spin_ns : &s->mean_block_ns;
	uint32_t old = atomic_load_explicit(m, RLX);
	int64_t v;

	if (total_ns > IPC_SPIN_HORIZON_NS)
		return;
	v = old ? (int64_t)old + ((int64_t)total_ns - (int64_t)old) / 8
	        : (int64_t)total_ns;
	/* Never 0 once measured: 0 means "no measurement yet". */
	atomic_store_explicit(m, v > 0 ? (uint32_t)v : 1u, RLX);
}

uint64_t ipc_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
