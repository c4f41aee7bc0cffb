/*
 * tests/fuzz/ring_pop.c - libFuzzer target for the consumer side of the
 * shared-memory ring (ipc_ring_pop) and for ipc_session_attach, on bytes
 * the fuzzer controls as a hostile engine controls its shared memory:
 *   byte 0 even: a formatted 4096-byte ring whose head, the consumer's
 *                starting tail and data area come from the input;
 *   byte 0 odd:  the input is a whole session object (header, offsets,
 *                ring headers), attached as the sidecar does on hello.
 * Each popped record must fit the caller's buffer and the ring; the loop
 * ends on empty or KVF_EPROTO and is bounded.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/kvferry.h"
#include "ipc/ring.h"
#include "ipc/wire.h"

#define CAP 4096u

static void drain(struct ipc_ring *r, uint32_t bufsize)
{
	uint8_t *buf = malloc(bufsize ? bufsize : 1);
	uint32_t type, len;

	for (int i = 0; buf && i < 2 * (int)CAP; i++) {
		int rc = ipc_ring_pop(r, buf, bufsize, &type, &len);
		if (rc != 0)
			break;
		if (len > bufsize || type == 0)
			abort(); /* a record the caller could not hold */
	}
	free(buf);
}

static void fuzz_ring(const uint8_t *data, size_t size)
{
	struct ipc_ring r;
	uint64_t head, tail;
	uint32_t bufsize;
	void *mem = aligned_alloc(64, ipc_ring_size(CAP));

	if (!mem || size < 20) {
		free(mem);
		return;
	}
	ipc_ring_format(mem, CAP, &r);
	memcpy(&head, data, 8);
	memcpy(&tail, data + 8, 8);
	memcpy(&bufsize, data + 16, 4);
	bufsize %= CAP + 64;
	data += 20;
	size -= 20;
	memcpy(r.sh->data, data, size < CAP ? size : CAP);
	atomic_store(&r.sh->head, head);
	atomic_store(&r.sh->tail, tail);
	r.tail_cache = tail;
	drain(&r, bufsize);
	free(mem);
}

/* A session of two 4096-byte rings, as kvf_connect makes the smallest. */
#define SESSION_LEN (4096 + 2 * 8192)

static void fuzz_session(const uint8_t *data, size_t size)
{
	struct ipc_ring sub, comp;
	char err[256];
	void *mem = aligned_alloc(4096, SESSION_LEN);

	if (!mem)
		return;
	memset(mem, 0, SESSION_LEN);
	memcpy(mem, data, size < SESSION_LEN ? size : SESSION_LEN);
	if (ipc_session_attach(mem, SESSION_LEN, &sub, &comp, err,
	                       sizeof err) == 0) {
		drain(&sub, 64 * 1024);
		drain(&comp, 512);
	}
	free(mem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		fuzz_session(data + 1, size - 1);
	else
		fuzz_ring(data + 1, size - 1);
	return 0;
}
