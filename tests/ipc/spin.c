/* The learned spin-before-block policy: follows the faster mode, tries the other rarely, survives slow first waits, ignores idle waits, turns round when the load changes. */
#include <stdint.h>

#include "ipc/spin.h"
#include "tests/tap/tap.h"

#define MAX_NS 50000u

/* Run n waits where a spinning wait takes spin_ns and one that blocks at
 * once takes block_ns; count the waits that spun. */
static unsigned run(struct ipc_spin *s, unsigned n, uint64_t spin_ns,
                    uint64_t block_ns)
{
	unsigned spun = 0;

	for (unsigned i = 0; i < n; i++) {
		uint32_t b = ipc_spin_begin(s);
		/* A spinning wait spins the whole ceiling. */
		if (b && b != MAX_NS)
			return UINT32_MAX;
		spun += b != 0;
		ipc_spin_end(s, b, b ? spin_ns : block_ns);
	}
	return spun;
}

/* Tries of the mode behind among waits [from, to) at one in every. */
static unsigned tries(unsigned from, unsigned to, unsigned every)
{
	unsigned k = 0;
	for (unsigned n = from; n < to; n++)
		k += n % every == every - 1;
	return k;
}

int main(void)
{
	const unsigned W = IPC_SPIN_WARM, E = IPC_SPIN_EXPLORE;
	struct ipc_spin s;
	unsigned spun;
	uint32_t ms, mb;

	plan(17);

	ipc_spin_init(&s, 0);
	is_int(run(&s, 1000, 1000, 90000), 0, "ceiling 0: never spins");

	/* Warm-up: the modes alternate until each has W samples. */
	ipc_spin_init(&s, MAX_NS);
	is_int(ipc_spin_begin(&s), MAX_NS, "first wait spins");
	ipc_spin_end(&s, MAX_NS, 12000);
	is_int(ipc_spin_begin(&s), 0, "second blocks");
	ipc_spin_end(&s, 0, 20000);
	is_int(run(&s, 2 * W - 2, 12000, 20000), W - 1,
	       "warm-up alternates (%u waits of each mode)", W);

	/* Spinning pays (a core to spare): spin, try blocking rarely. */
	spun = run(&s, 10000, 12000, 20000);
	is_int(spun, 10000 - tries(2 * W, 10000 + 2 * W, 2 * E),
	       "spin 12 us, block 20 us: %u of 10000 waits spin", spun);

	/* Spinning starves the producer: block, try spinning rarely, since
	 * each try costs what spinning is behind. */
	ipc_spin_init(&s, MAX_NS);
	spun = run(&s, 10000, 110000, 40000);
	is_int(spun, W + tries(2 * W, 10000, 4 * E),
	       "spin 110 us, block 40 us: %u of 10000 waits spin", spun);
	ipc_spin_init(&s, MAX_NS);
	spun = run(&s, 10000, 56000, 40000);
	is_int(spun, W + tries(2 * W, 10000, 2 * E),
	       "spin 56 us, block 40 us (a third behind): %u", spun);
	ipc_spin_init(&s, MAX_NS);
	spun = run(&s, 10000, 45000, 40000);
	is_int(spun, W + tries(2 * W, 10000, E),
	       "spin 45 us, block 40 us (close): %u", spun);

	/* The first waits of a connection are slow (setup): they must not
	 * hold the client in the wrong mode. */
	ipc_spin_init(&s, MAX_NS);
	for (int i = 0; i < 2; i++) {
		uint32_t b = ipc_spin_begin(&s);
		ipc_spin_end(&s, b, 1800000);
		b = ipc_spin_begin(&s);
		ipc_spin_end(&s, b, 1500000);
	}
	spun = run(&s, 2000, 5000, 10000);
	ok(spun >= 2000 - 2000 / E - 2 * W,
	   "first waits 1.5-1.8 ms, then spin 5 us, block 10 us: %u of 2000 "
	   "spin", spun);

	/* Even when every first spinning wait was slow, the rare tries of
	 * spinning bring the client round. */
	ipc_spin_init(&s, MAX_NS);
	for (unsigned i = 0; i < W; i++) {
		uint32_t b = ipc_spin_begin(&s);
		ipc_spin_end(&s, b, b ? 1500000 : 10000);
		b = ipc_spin_begin(&s);
		ipc_spin_end(&s, b, b ? 1500000 : 10000);
	}
	run(&s, 2000, 5000, 10000);
	spun = run(&s, 1000, 5000, 10000);
	ok(spun >= 1000 - 1000 / E - 1,
	   "first spins 1.5 ms each: after 2000 waits %u of 1000 spin", spun);

	/* The load goes: the rare tries find out that spinning pays now. */
	ipc_spin_init(&s, MAX_NS);
	run(&s, 5000, 110000, 40000);
	spun = run(&s, 2000, 8000, 40000);
	ok(spun > 2000 - 2 * 4 * E - 2000 / (4 * E) - 2,
	   "after the load went: %u of the next 2000 waits spin", spun);
	/* It comes back: spinning waits show it within a few. */
	spun = run(&s, 1000, 110000, 40000);
	ok(spun < 30, "after it came back: %u of 1000 spin", spun);

	/* Idle waits and waits without an event teach nothing. */
	ipc_spin_init(&s, MAX_NS);
	run(&s, 200, 10000, 30000);
	ms = atomic_load(&s.spin.mean_ns);
	mb = atomic_load(&s.block.mean_ns);
	ok(ms == 10000 && mb > 27000 && mb < 33000,
	   "means follow the waits: spin %u ns, block %u ns", ms, mb);
	ipc_spin_end(&s, MAX_NS, IPC_SPIN_HORIZON_NS + 1);
	ipc_spin_end(&s, 0, IPC_SPIN_HORIZON_NS + 1);
	ipc_spin_end(&s, MAX_NS, IPC_SPIN_NONE);
	ipc_spin_end(&s, 0, IPC_SPIN_NONE);
	ok(atomic_load(&s.spin.mean_ns) == ms &&
	   atomic_load(&s.block.mean_ns) == mb,
	   "a wait past the horizon or without an event changes neither");
	/* One outlier inside the horizon moves a mean by a bounded step. */
	ipc_spin_end(&s, MAX_NS, 1900000);
	ok(atomic_load(&s.spin.mean_ns) <= ms + (4 * ms - ms) / 8,
	   "a 1.9 ms outlier counts as 4 times the mean: spin %u ns",
	   atomic_load(&s.spin.mean_ns));
	ipc_spin_end(&s, 0, 0);
	ok(atomic_load(&s.block.mean_ns) != 0,
	   "a mean never falls to 0 (\"warming up\")");

	{
		uint64_t a = ipc_now_ns(), b = ipc_now_ns();
		ok(a > 0 && b >= a, "ipc_now_ns is monotonic");
	}
	return tap_exit_status();
}
