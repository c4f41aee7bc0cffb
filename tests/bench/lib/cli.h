/*
 * tests/bench/lib/cli.h - what every benchmark program's main() needs
 * around its getopt loop: one program name for its messages, die() with
 * an optional clean-up (stop the sidecars it started), and strict number
 * and size parsing that names the option and the range it wants.
 *
 * Single-threaded programs only: the name and the clean-up are globals.
 */
#ifndef KVF_BENCH_CLI_H
#define KVF_BENCH_CLI_H

#include <stdint.h>

/* Set once, first thing in main(): prog prefixes every message (a string
 * that outlives the program, a literal); usage_status is what a bad
 * option exits with, or what bench_bad() returns. */
void bench_init(const char *prog, int usage_status);

/* The name given to bench_init ("bench" before it). */
const char *bench_prog(void);

/* "prog: message\n" on stderr. */
void bench_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Called by bench_fail() before it exits (one at a time; NULL removes
 * it): stop the daemons and close the connections the run holds. */
void bench_at_die(void (*fn)(void *arg), void *arg);

/* Flush stdout, say "prog: message" on stderr, run the clean-up, exit
 * with status. bench_die() is bench_fail(1, ...). */
void bench_fail(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
void bench_die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/*
 * Silent parsers: 0 and *out set, or KVF_EINVAL (*out untouched) when s
 * is not a whole decimal number in [lo, hi]. bench_parse_size also takes
 * a k, m or g suffix (KiB, MiB, GiB) and refuses what would overflow.
 */
int bench_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);
int bench_parse_size(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);

/* Split s in place at blanks into out[0..max) (an -A string of sidecar
 * arguments): the count, or -1 when there are more than max words. */
int bench_split_words(char *s, const char **out, int max);

/* Say "prog: opt 'val': want" on stderr; returns the usage status. */
int bench_bad(const char *opt, const char *val, const char *want);

/* The value of option opt in [lo, hi] into *out: 0, or the usage status
 * after saying what was wrong (for parsers that return, not exit). */
int bench_num_u32(
    const char *opt, const char *val, uint32_t lo, uint32_t hi, uint32_t *out);

/*
 * The value of option opt (its name as the user wrote it: "-w",
 * "--tokens") in [lo, hi]; a bad value exits with the usage status after
 * saying what was wrong. For getopt loops: nothing runs yet to clean up.
 */
uint64_t bench_opt_u64(
    const char *opt, const char *val, uint64_t lo, uint64_t hi);
uint32_t bench_opt_u32(
    const char *opt, const char *val, uint32_t lo, uint32_t hi);
/* 0 <= lo <= hi. */
int bench_opt_int(const char *opt, const char *val, int lo, int hi);
/* Bytes, with a k, m or g suffix allowed. */
uint64_t bench_opt_size(
    const char *opt, const char *val, uint64_t lo, uint64_t hi);

/*
 * BENCH_CK(call): a CUDA runtime call that must succeed, for the benches
 * built with CUDA (after cuda_runtime_api.h): on failure "prog: call:
 * cudaErrorName" on stderr and exit 1 (bench_die). A macro, so that this
 * header needs no CUDA.
 */
#define BENCH_CK(call)                                                        \
	do {                                                                  \
		cudaError_t ck_ = (call);                                     \
		if (ck_ != cudaSuccess)                                       \
			bench_die("%s: %s", #call, cudaGetErrorName(ck_));    \
	} while (0)

#endif
