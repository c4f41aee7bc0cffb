/* The learned spin-before-block policy: follows the faster mode, tries the other rarely, ignores idle waits, and turns round when the load changes. */
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
		if (b) {
			spun++;
			if (b != MAX_NS)
				return UINT32_MAX; /* the budget is the ceiling */
		}
		ipc_spin_end(s, b, b ? spin_ns : block_ns);
	}
	return spun;
}

int main(void)
{
	struct ipc_spin s;
	unsigned spun;
	uint32_t ms, mb;

	plan(14);

	ipc_spin_init(&s, 0);
	is_int(run(&s, 1000, 1000, 90000), 0, "ceiling 0: never spins");

	/* Spinning pays (a core to spare): spin, try blocking rarely. */
	ipc_spin_init(&s, MAX_NS);
	is_int(ipc_spin_begin(&s), MAX_NS, "first wait spins (no measure)");
	ipc_spin_end(&s, MAX_NS, 12000);
	is_int(ipc_spin_begin(&s), 0, "second blocks (no measure of that)");
	ipc_spin_end(&s, 0, 20000);
	spun = run(&s, 10000, 12000, 20000);
	ok(spun >= 10000 - 10000 / 32 - 1 && spun < 10000,
	   "spin 12 us, block 20 us: %u of 10000 waits spin", spun);

	/* Spinning starves the producer: block, try spinning very rarely,
	 * since each try costs what spinning is behind (the first wait of
	 * each run spins: nothing is measured yet). */
	ipc_spin_init(&s, MAX_NS);
	spun = run(&s, 10000, 110000, 40000);
	is_int(spun, 1 + 10000 / 512, "spin 110 us, block 40 us: %u of 10000 "
	       "waits spin", spun);
	ipc_spin_init(&s, MAX_NS);
	spun = run(&s, 10000, 56000, 40000);
	is_int(spun, 1 + 10000 / 128, "spin 56 us, block 40 us (a third "
	       "behind): %u tries", spun);
	ipc_spin_init(&s, MAX_NS);
	spun = run(&s, 10000, 45000, 40000);
	is_int(spun, 1 + 10000 / 32, "spin 45 us, block 40 us (close): %u "
	       "tries", spun);

	/* The load goes: the rare tries find out that spinning pays now. */
	ipc_spin_init(&s, MAX_NS);
	run(&s, 5000, 110000, 40000);
	spun = run(&s, 10000, 8000, 40000);
	ok(spun > 10000 / 2, "after the load went: %u of the next 10000 "
	   "waits spin", spun);
	spun = run(&s, 1000, 8000, 40000);
	ok(spun >= 1000 - 1000 / 512 - 1, "and then %u of 1000", spun);
	/* It comes back: spinning waits show it at once. */
	spun = run(&s, 1000, 110000, 40000);
	ok(spun < 20, "after it came back: %u of 1000 spin", spun);

	/* Idle waits and waits without an event teach nothing. */
	ipc_spin_init(&s, MAX_NS);
	run(&s, 100, 10000, 30000);
	ms = atomic_load(&s.mean_spin_ns);
	mb = atomic_load(&s.mean_block_ns);
	ok(ms > 9000 && ms < 11000 && mb > 27000 && mb < 33000,
	   "means follow the waits: spin %u ns, block %u ns", ms, mb);
	ipc_spin_end(&s, MAX_NS, IPC_SPIN_HORIZON_NS + 1);
	ipc_spin_end(&s, 0, IPC_SPIN_HORIZON_NS + 1);
	ipc_spin_end(&s, MAX_NS, IPC_SPIN_NONE);
	ipc_spin_end(&s, 0, IPC_SPIN_NONE);
	ok(atomic_load(&s.mean_spin_ns) == ms &&
	   atomic_load(&s.mean_block_ns) == mb,
	   "a wait past the horizon or without an event changes neither");
	ipc_spin_end(&s, 0, 0);
	ok(atomic_load(&s.mean_block_ns) != 0,
	   "a mean never falls to 0 (\"not measured\")");

	{
		uint64_t a = ipc_now_ns(), b = ipc_now_ns();
		ok(a > 0 && b >= a, "ipc_now_ns is monotonic");
	}
	return tap_exit_status();
}
