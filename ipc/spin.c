/*
 * ipc/spin.c - the learned spin of ipc/spin.h. A mean is exponentially
 * weighted: 1/8 per sample for the mode in use (it gets every wait), 1/2
 * for the mode behind (it gets one wait in 32 to 128), so a change of
 * machine load shows within a few dozen waits either way.
 */
#include "ipc/spin.h"

#include <stdbool.h>
#include <time.h>

#define RLX memory_order_relaxed

static void mode_init(struct ipc_spin_mode *m)
{
	atomic_store_explicit(&m->mean_ns, 0, RLX);
	atomic_store_explicit(&m->n, 0, RLX);
	for (unsigned i = 0; i < IPC_SPIN_WARM; i++)
		atomic_store_explicit(&m->warm[i], 0, RLX);
}

void ipc_spin_init(struct ipc_spin *s, uint32_t max_ns)
{
	s->max_ns = max_ns;
	mode_init(&s->spin);
	mode_init(&s->block);
	atomic_store_explicit(&s->waits, 0, RLX);
}

uint32_t ipc_spin_begin(struct ipc_spin *s)
{
	uint32_t ms = atomic_load_explicit(&s->spin.mean_ns, RLX);
	uint32_t mb = atomic_load_explicit(&s->block.mean_ns, RLX);
	uint32_t n = atomic_fetch_add_explicit(&s->waits, 1, RLX);
	uint32_t lo, hi, every;
	bool spin;

	if (s->max_ns == 0)
		return 0;
	if (ms == 0 || mb == 0) {
		/* Warming up: the mode with fewer samples. */
		spin = atomic_load_explicit(&s->spin.n, RLX) <=
		       atomic_load_explicit(&s->block.n, RLX);
		return spin ? s->max_ns : 0;
	}
	/* The further behind the other mode, the rarer its tries: each
	 * costs what it is behind. */
	lo = ms <= mb ? ms : mb;
	hi = ms <= mb ? mb : ms;
	every = hi / 2 > lo       ? IPC_SPIN_EXPLORE * 4
	        : hi / 4 * 3 > lo ? IPC_SPIN_EXPLORE * 2
	                          : IPC_SPIN_EXPLORE;
	spin = (ms <= mb) != (n % every == every - 1);
	return spin ? s->max_ns : 0;
}

void ipc_spin_end(struct ipc_spin *s, uint32_t budget, uint64_t total_ns)
{
	struct ipc_spin_mode *m = budget ? &s->spin : &s->block;
	struct ipc_spin_mode *o = budget ? &s->block : &s->spin;
	uint32_t mean = atomic_load_explicit(&m->mean_ns, RLX);
	uint32_t other = atomic_load_explicit(&o->mean_ns, RLX);
	uint32_t v, n;
	int64_t d;

	if (total_ns > IPC_SPIN_HORIZON_NS)
		return;
	v = total_ns ? (uint32_t)total_ns : 1u; /* 0 means "no mean" */
	if (mean == 0) {
		n = atomic_fetch_add_explicit(&m->n, 1, RLX);
		if (n >= IPC_SPIN_WARM)
			return; /* a racing thread completes the warm-up */
		atomic_store_explicit(&m->warm[n], v, RLX);
		if (n + 1 < IPC_SPIN_WARM)
			return;
		/* The fastest of the first waits: a mode that starts too
		 * good is used at once and corrected by every wait, one
		 * that starts too bad would be tried only rarely. */
		for (unsigned i = 0; i < IPC_SPIN_WARM; i++) {
			uint32_t w = atomic_load_explicit(&m->warm[i], RLX);
			if (w && w < v)
				v = w;
		}
		atomic_store_explicit(&m->mean_ns, v, RLX);
		return;
	}
	if (v / 4 > mean)
		v = mean * 4; /* an outlier counts as four times the mean */
	d = (int64_t)v - (int64_t)mean;
	d = other && mean > other ? d / 2 : d / 8;
	v = (uint32_t)((int64_t)mean + d);
	atomic_store_explicit(&m->mean_ns, v ? v : 1u, RLX);
}

uint64_t ipc_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
