/*
 * ipc/doorbell.h - a wake-up word in shared memory. A consumer that found
 * nothing to do announces that it sleeps, checks once more, and waits on a
 * futex; a producer rings only when someone sleeps, so the fast path (the
 * consumer busy) makes no system call.
 *
 * The struct lives in shared memory (process-shared futex, not private).
 */
#ifndef KVF_IPC_DOORBELL_H
#define KVF_IPC_DOORBELL_H

#include <stdatomic.h>
#include <stdint.h>

struct ipc_doorbell {
	_Atomic uint32_t seq;      /* bumped on each ring that wakes */
	_Atomic uint32_t sleepers; /* consumers between prepare and wake */
};

/* A pause for spin loops. */
static inline void ipc_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* Producer: after publishing work. Cheap when nobody sleeps. */
void ipc_doorbell_ring(struct ipc_doorbell *db);

/*
 * Consumer: announce intent to sleep and get the sequence to wait on. The
 * caller must re-check for work after this and before ipc_doorbell_wait;
 * work published after prepare is guaranteed to ring.
 */
uint32_t ipc_doorbell_prepare(struct ipc_doorbell *db);

/*
 * Sleep until the doorbell rings past seq or timeout_us microseconds pass
 * (-1: no limit); then ends the sleep announced by prepare. Returns 0 when
 * woken, KVF_ETIMEDOUT on timeout.
 */
int ipc_doorbell_wait(struct ipc_doorbell *db, uint32_t seq,
                      int64_t timeout_us);

/* End the sleep announced by prepare without waiting (work was found). */
void ipc_doorbell_cancel(struct ipc_doorbell *db);

#endif
