/*
 * ipc/spin.h - whether a waiter spins before it blocks, learned from the
 * waits themselves. Spinning pays when the event comes soon and its
 * producer has a CPU of its own: the waiter then sees it without a
 * wake-up. It costs when CPUs are short (fewer cores than busy threads):
 * the spinner holds a CPU the producer needs, and the event comes later
 * than had the waiter slept at once. No cheap probe tells the two apart,
 * so the waiter measures: it keeps a running mean of how long waits took
 * that spun and of those that blocked at once, follows the faster, and
 * now and then tries the other so its mean stays current: every
 * IPC_SPIN_EXPLORE waits while the two are close, 2 or 4 times more
 * rarely when the other is a third or half behind.
 *
 * The first waits of a connection are the slowest (connections and
 * mappings are set up), so each mean starts as the fastest of its first
 * IPC_SPIN_WARM waits (the two modes alternate until both have them),
 * later samples count at most 4 times the mean, and the mode that is
 * behind moves its mean by half of each try, since its tries are rare:
 * one bad start cannot hold a client in the wrong mode. Waits longer than
 * IPC_SPIN_HORIZON_NS (idle periods) say nothing about either and are
 * left out.
 *
 * The struct lives in private memory; several threads may share one (the
 * fields are relaxed atomics: a race only blurs what is learned).
 */
#ifndef KVF_IPC_SPIN_H
#define KVF_IPC_SPIN_H

#include <stdatomic.h>
#include <stdint.h>

/* One wait in this many tries the mode that is behind, while close. */
#define IPC_SPIN_EXPLORE 32u
/* Samples of each mode whose fastest starts its mean. */
#define IPC_SPIN_WARM 4u
/* Waits longer than this do not count towards the means. */
#define IPC_SPIN_HORIZON_NS 2000000u
/* ipc_spin_end's total_ns for a wait that ended without an event. */
#define IPC_SPIN_NONE UINT64_MAX

/* What is learned of one mode (spinning, or blocking at once). */
struct ipc_spin_mode {
	_Atomic uint32_t mean_ns; /* 0: still warming up */
	_Atomic uint32_t n;       /* samples so far, up to IPC_SPIN_WARM */
	_Atomic uint32_t warm[IPC_SPIN_WARM];
};

struct ipc_spin {
	uint32_t max_ns; /* the spin; 0: never spin */
	struct ipc_spin_mode spin, block;
	_Atomic uint32_t waits;
};

/* Spin up to max_ns nanoseconds before blocking (0: never spin). */
void ipc_spin_init(struct ipc_spin *s, uint32_t max_ns);

/*
 * How long the wait about to start spins before it blocks, in
 * nanoseconds; 0: block at once. Pass it to ipc_spin_end.
 */
uint32_t ipc_spin_begin(struct ipc_spin *s);

/*
 * Report how the wait went: budget as ipc_spin_begin gave it; total_ns,
 * the time from the start of the wait until the event was seen, or
 * IPC_SPIN_NONE when the wait ended without one.
 */
void ipc_spin_end(struct ipc_spin *s, uint32_t budget, uint64_t total_ns);

/* Monotonic time in nanoseconds (vDSO: no system call). */
uint64_t ipc_now_ns(void);

#endif
