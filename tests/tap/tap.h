/*
 * tests/tap/tap.h - our small TAP producer: plan, ok, is_*, skip, diag,
 * bail. Every test program prints a plan first (or skip_all) and exits
 * non-zero when a test point failed, so prove sees both.
 */
#ifndef KVF_TAP_H
#define KVF_TAP_H

#include <stddef.h>
#include <stdint.h>

void plan(int n);
/* Plan nothing, skip the whole program (exit 0): "1..0 # SKIP reason". */
void skip_all(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
/* Give up (exit 255): "Bail out! reason". */
void bail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
/* The plan printed at the end instead of the start. */
void done_testing(void) __attribute__((noreturn));

int ok(int pass, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int is_int(long long have, long long want, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int is_str(const char *have, const char *want, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Compares n bytes, reports the first differing offset. */
int is_blob(const void *have, const void *want, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* have contains needle. */
int like(const char *have, const char *needle, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void skip(int n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Where a helper of tests/tap reports trouble (an event it passed over, a
 * command that failed): diag() lines in TAP programs, stderr in
 * benchmarks, whose stdout is data, or nowhere. */
enum tp_say { TP_SAY_DIAG, TP_SAY_STDERR, TP_SAY_QUIET };
void tp_say(enum tp_say to, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Exit status for the end of main: 0 when every point passed and the plan
 * was met. */
int tap_exit_status(void);

#endif
