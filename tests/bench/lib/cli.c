/*
 * tests/bench/lib/cli.c - the command-line plumbing the benchmark
 * programs share, so that each main() holds only its getopt switch: the
 * program name that prefixes every message, die() with one clean-up hook
 * (a bench that started sidecars must stop them on the way out, or they
 * outlive it), and number parsing that refuses what atoi() and strtoull()
 * would quietly read as 0 or wrap: a sign, trailing junk, an overflowing
 * suffix, a value out of range. A bad option says which option, what it
 * got and what it wants, then exits with the program's usage status.
 */
#include "tests/bench/lib/cli.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/kvferry.h"

static const char *g_prog = "bench";
static int g_usage_status = 2;
static void (*g_die_fn)(void *);
static void *g_die_arg;

void bench_init(const char *prog, int usage_status)
{
	g_prog = prog;
	g_usage_status = usage_status;
}

const char *bench_prog(void)
{
	return g_prog;
}

static void say(const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: ", g_prog);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void bench_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say(fmt, ap);
	va_end(ap);
}

void bench_at_die(void (*fn)(void *arg), void *arg)
{
	g_die_fn = fn;
	g_die_arg = arg;
}

static void __attribute__((noreturn))
fail(int status, const char *fmt, va_list ap)
{
	void (*fn)(void *) = g_die_fn;

	/* The rows printed so far go out before the message that ends
	 * them. */
	fflush(stdout);
	say(fmt, ap);
	/* Once: a clean-up that dies itself must not loop. */
	g_die_fn = NULL;
	if (fn)
		fn(g_die_arg);
	exit(status);
}

void bench_fail(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fail(status, fmt, ap);
	va_end(ap);
}

void bench_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fail(1, fmt, ap);
	va_end(ap);
}

/* Digits of s into *v and the first byte after them into *end. strtoull
 * alone takes blanks, a sign (and wraps "-1") and empty strings. */
static int parse_digits(const char *s, uint64_t *v, const char **end)
{
	char *e;

	if (!s || !isdigit((unsigned char)s[0]))
		return KVF_EINVAL;
	errno = 0;
	*v = strtoull(s, &e, 10);
	if (errno)
		return KVF_EINVAL;
	*end = e;
	return 0;
}

int bench_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	const char *end;
	uint64_t v;

	if (parse_digits(s, &v, &end) != 0 || *end || v < lo || v > hi)
		return KVF_EINVAL;
	*out = v;
	return 0;
}

int bench_parse_size(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	const char *end;
	unsigned shift = 0;
	uint64_t v;

	if (parse_digits(s, &v, &end) != 0)
		return KVF_EINVAL;
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'm':
	case 'M':
		shift = 20;
		break;
	case 'g':
	case 'G':
		shift = 30;
		break;
	default:
		break;
	}
	if (shift)
		end++;
	if (*end || v > UINT64_MAX >> shift)
		return KVF_EINVAL;
	v <<= shift;
	if (v < lo || v > hi)
		return KVF_EINVAL;
	*out = v;
	return 0;
}

int bench_split_words(char *s, const char **out, int max)
{
	char *save = NULL;
	int n = 0;

	for (char *t = strtok_r(s, " \t", &save); t;
	     t = strtok_r(NULL, " \t", &save)) {
		if (n == max)
			return -1;
		out[n++] = t;
	}
	return n;
}

int bench_bad(const char *opt, const char *val, const char *want)
{
	bench_err("%s '%s': %s", opt, val ? val : "", want);
	return g_usage_status;
}

/* n with the largest suffix that keeps it whole: 65536 is "64k". */
static void fmt_size(char *buf, size_t len, uint64_t n)
{
	static const char suf[] = "gmk";

	for (int i = 0; i < 3; i++) {
		unsigned shift = (unsigned)(30 - 10 * i);

		if (n && n % ((uint64_t)1 << shift) == 0) {
			snprintf(
			    buf, len, "%" PRIu64 "%c", n >> shift, suf[i]);
			return;
		}
	}
	snprintf(buf, len, "%" PRIu64, n);
}

static uint64_t opt_num(
    const char *opt, const char *val, uint64_t lo, uint64_t hi, int size)
{
	char want[96], a[24], b[24];
	uint64_t v;

	if (size) {
		if (bench_parse_size(val, lo, hi, &v) == 0)
			return v;
		fmt_size(a, sizeof a, lo);
		fmt_size(b, sizeof b, hi);
		snprintf(want, sizeof want,
		    "want %s..%s bytes (k, m, g "
		    "allowed)",
		    a, b);
	} else {
		if (bench_parse_u64(val, lo, hi, &v) == 0)
			return v;
		snprintf(
		    want, sizeof want, "want %" PRIu64 "..%" PRIu64, lo, hi);
	}
	exit(bench_bad(opt, val, want));
}

int bench_num_u32(
    const char *opt, const char *val, uint32_t lo, uint32_t hi, uint32_t *out)
{
	char want[64];
	uint64_t v;

	if (bench_parse_u64(val, lo, hi, &v) == 0) {
		*out = (uint32_t)v;
		return 0;
	}
	snprintf(want, sizeof want, "want %u..%u", lo, hi);
	return bench_bad(opt, val, want);
}

uint64_t bench_opt_u64(
    const char *opt, const char *val, uint64_t lo, uint64_t hi)
{
	return opt_num(opt, val, lo, hi, 0);
}

uint32_t bench_opt_u32(
    const char *opt, const char *val, uint32_t lo, uint32_t hi)
{
	return (uint32_t)opt_num(opt, val, lo, hi, 0);
}

int bench_opt_int(const char *opt, const char *val, int lo, int hi)
{
	/* Benches take no negative counts. */
	assert(lo >= 0 && lo <= hi);
	return (int)opt_num(opt, val, (uint64_t)lo, (uint64_t)hi, 0);
}

uint64_t bench_opt_size(
    const char *opt, const char *val, uint64_t lo, uint64_t hi)
{
	return opt_num(opt, val, lo, hi, 1);
}
