/* The shared-memory record ring: order, wrap-around, full, wake-ups across processes, corruption. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/kvferry.h"
#include "ipc/ring.h"
#include "tests/tap/pattern.h"
#include "tests/tap/tap.h"

#define CAP 4096u
#define N_RECORDS 200000u

static uint32_t rec_len(uint32_t i)
{
	return 8 + (i * 2654435761u >> 7) % 700;
}

int main(void)
{
	size_t size = ipc_ring_size(CAP);
	void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
	                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct ipc_ring prod, cons;
	uint8_t buf[CAP], want[CAP];
	uint32_t type, len;

	plan(13);
	ok(ipc_ring_format(mem, 1000, &prod) == KVF_EINVAL,
	   "capacity not a power of two is refused");
	is_int(ipc_ring_format(mem, CAP, &prod), 0, "format");
	is_int(ipc_ring_attach(mem, size, &cons), 0, "attach");
	is_int(ipc_ring_pop(&cons, buf, sizeof buf, &type, &len), KVF_EAGAIN,
	       "empty ring pops EAGAIN");

	/* Fill until full, then drain and check every record. */
	uint32_t n = 0;
	void *p;
	while ((p = ipc_ring_reserve(&prod, 1, 100))) {
		tp_pattern_fill(p, 100, n++);
		ipc_ring_commit(&prod);
	}
	ok(n >= CAP / 120 && n <= CAP / 108, "ring holds %u records of 100 "
	   "bytes before it is full", n);
	int good = 1;
	for (uint32_t i = 0; i < n; i++) {
		tp_pattern_fill(want, 100, i);
		if (ipc_ring_pop(&cons, buf, sizeof buf, &type, &len) != 0 ||
		    len != 100 || type != 1 || memcmp(buf, want, 100) != 0)
			good = 0;
	}
	ok(good, "drained records arrive in order with their bytes");
	ok(ipc_ring_reserve(&prod, 1, CAP) == NULL,
	   "a record larger than half the ring is refused");

	/* Two processes, many wrap-arounds, consumer sleeps on the bell. */
	pid_t pid = fork();
	if (pid == 0) {
		for (uint32_t i = 0; i < N_RECORDS; i++) {
			uint32_t l = rec_len(i);
			while (!(p = ipc_ring_reserve(&prod, 2, l)))
				ipc_cpu_relax();
			tp_pattern_fill(p, l, i);
			ipc_ring_commit(&prod);
			if (i % 5000 == 0)
				usleep(2000); /* let the consumer fall asleep */
		}
		_exit(0);
	}
	uint32_t got = 0, bad = 0, sleeps = 0;
	while (got < N_RECORDS) {
		int rc = ipc_ring_pop(&cons, buf, sizeof buf, &type, &len);
		if (rc == KVF_EAGAIN) {
			struct ipc_doorbell *b = &cons.sh->consumer_bell;
			uint32_t seq = ipc_doorbell_prepare(b);
			if (!ipc_ring_empty(&cons)) {
				ipc_doorbell_cancel(b);
				continue;
			}
			if (ipc_doorbell_wait(b, seq, 5000000) == KVF_ETIMEDOUT)
				break;
			sleeps++;
			continue;
		}
		if (rc != 0)
			break;
		tp_pattern_fill(want, rec_len(got), got);
		if (len != rec_len(got) || memcmp(buf, want, len) != 0)
			bad++;
		got++;
	}
	int status;
	waitpid(pid, &status, 0);
	is_int(got, N_RECORDS, "consumer got all %u records across processes",
	       N_RECORDS);
	is_int(bad, 0, "every record's bytes intact after wrap-arounds");
	ok(sleeps > 0, "consumer slept on the doorbell and was woken (%u)",
	   sleeps);

	/* Corruption: a producer claiming more than the ring holds. */
	atomic_store(&cons.sh->head, cons.tail_cache + CAP * 4);
	is_int(ipc_ring_pop(&cons, buf, sizeof buf, &type, &len), KVF_EPROTO,
	       "head beyond capacity is reported as corruption");
	atomic_store(&cons.sh->head, cons.tail_cache + 16);
	memset(cons.sh->data + (cons.tail_cache & (CAP - 1)), 0xff, 8);
	is_int(ipc_ring_pop(&cons, buf, sizeof buf, &type, &len), KVF_EPROTO,
	       "record length past the published bytes is corruption");
	ok(ipc_ring_attach(mem, 100, &cons) == KVF_EPROTO,
	   "attach to a too-short mapping is refused");
	return tap_exit_status();
}
