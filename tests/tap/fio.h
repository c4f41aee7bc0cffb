/*
 * tests/tap/fio.h - the baseline the storage benchmarks measure in the
 * same run: fio on io_uring doing the I/O the store does.
 */
#ifndef KVF_TAP_FIO_H
#define KVF_TAP_FIO_H

#include <stdint.h>

/*
 * GB/s of fio writing or reading (rw "write" or "read") size bytes in
 * blocks of bs at queue depth qd, O_DIRECT when direct, in the file
 * fio.bench of dir; a write starts from a fresh file, as a save makes a
 * new one. 0 when fio or jq is missing or failed. Bounded: 10 minutes.
 */
double tp_fio_gbps(const char *dir, const char *rw, uint64_t bs,
                   unsigned qd, int direct, uint64_t size);

#endif
