/*
 * ipc/doorbell.c - futex-based wake-ups across processes. The seq_cst
 * fences pair up: the consumer's store to sleepers before its last check of
 * the ring, and the producer's publication before its load of sleepers, so
 * one of them always sees the other (no lost wake-up).
 */
#include "ipc/doorbell.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "client/kvferry.h"

static long futex(_Atomic uint32_t *addr, int op, uint32_t val,
                  const struct timespec *ts)
{
	return syscall(SYS_futex, (uint32_t *)addr, op, val, ts, NULL, 0);
}

void ipc_doorbell_ring(struct ipc_doorbell *db)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&db->sleepers, memory_order_relaxed) == 0)
		return;
	atomic_fetch_add_explicit(&db->seq, 1, memory_order_release);
	futex(&db->seq, FUTEX_WAKE, INT_MAX, NULL);
}

uint32_t ipc_doorbell_prepare(struct ipc_doorbell *db)
{
	uint32_t seq = atomic_load_explicit(&db->seq, memory_order_acquire);
	atomic_fetch_add_explicit(&db->sleepers, 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst);
	return seq;
}

int ipc_doorbell_wait(struct ipc_doorbell *db, uint32_t seq,
                      int64_t timeout_us)
{
	struct timespec ts, *tsp = NULL;
	int rc = 0;

	if (timeout_us >= 0) {
		ts.tv_sec = timeout_us / 1000000;
		ts.tv_nsec = (long)(timeout_us % 1000000) * 1000L;
		tsp = &ts;
	}
	if (atomic_load_explicit(&db->seq, memory_order_acquire) == seq) {
		if (futex(&db->seq, FUTEX_WAIT, seq, tsp) != 0 &&
		    errno == ETIMEDOUT)
			rc = KVF_ETIMEDOUT;
	}
	atomic_fetch_sub_explicit(&db->sleepers, 1, memory_order_relaxed);
	return rc;
}

void ipc_doorbell_cancel(struct ipc_doorbell *db)
{
	atomic_fetch_sub_explicit(&db->sleepers, 1, memory_order_relaxed);
}
