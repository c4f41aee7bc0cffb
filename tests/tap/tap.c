/*
 * tests/tap/tap.c - TAP output for our test programs. Counts points,
 * remembers failures, and at exit checks the plan so a test that dies
 * half way is reported as failed by prove.
 */
#include "tests/tap/tap.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int planned = -1;
static int run;
static int failed;
static int lazy_plan;

static void vline(const char *prefix, const char *fmt, va_list ap)
{
	fputs(prefix, stdout);
	vfprintf(stdout, fmt, ap);
	fputc('\n', stdout);
	fflush(stdout);
}

static void at_exit_check(void)
{
	if (lazy_plan)
		return;
	if (planned >= 0 && run != planned) {
		printf("# planned %d tests but ran %d\n", planned, run);
		fflush(stdout);
	}
}

void plan(int n)
{
	planned = n;
	printf("1..%d\n", n);
	fflush(stdout);
	atexit(at_exit_check);
}

void skip_all(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vline("1..0 # SKIP ", fmt, ap);
	va_end(ap);
	exit(0);
}

void bail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vline("Bail out! ", fmt, ap);
	va_end(ap);
	exit(255);
}

void done_testing(void)
{
	lazy_plan = 1;
	printf("1..%d\n", run);
	fflush(stdout);
	exit(failed ? 1 : 0);
}

static int vok(int pass, const char *fmt, va_list ap)
{
	run++;
	if (!pass)
		failed++;
	printf("%sok %d - ", pass ? "" : "not ", run);
	vfprintf(stdout, fmt, ap);
	fputc('\n', stdout);
	fflush(stdout);
	return pass;
}

int ok(int pass, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vok(pass, fmt, ap);
	va_end(ap);
	return pass;
}

int is_int(long long have, long long want, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int pass = vok(have == want, fmt, ap);
	va_end(ap);
	if (!pass)
		diag("     got: %lld\n    expected: %lld", have, want);
	return pass;
}

int is_str(const char *have, const char *want, const char *fmt, ...)
{
	va_list ap;
	int same = have && want ? strcmp(have, want) == 0 : have == want;
	va_start(ap, fmt);
	int pass = vok(same, fmt, ap);
	va_end(ap);
	if (!pass)
		diag("     got: '%s'\n    expected: '%s'", have ? have : "(null)",
		     want ? want : "(null)");
	return pass;
}

int is_blob(const void *have, const void *want, size_t n, const char *fmt, ...)
{
	const unsigned char *h = have, *w = want;
	size_t i = 0;
	while (i < n && h[i] == w[i])
		i++;
	va_list ap;
	va_start(ap, fmt);
	int pass = vok(i == n, fmt, ap);
	va_end(ap);
	if (!pass)
		diag("    first difference at byte %zu of %zu: got 0x%02x, "
		     "expected 0x%02x", i, n, h[i], w[i]);
	return pass;
}

int like(const char *have, const char *needle, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int pass = vok(have && strstr(have, needle) != NULL, fmt, ap);
	va_end(ap);
	if (!pass)
		diag("    '%s'\n    does not contain '%s'", have ? have : "(null)",
		     needle);
	return pass;
}

void skip(int n, const char *fmt, ...)
{
	for (int i = 0; i < n; i++) {
		va_list ap;
		va_start(ap, fmt);
		run++;
		printf("ok %d # skip ", run);
		vfprintf(stdout, fmt, ap);
		fputc('\n', stdout);
		va_end(ap);
	}
	fflush(stdout);
}

void diag(const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	/* Each line of a diagnostic starts with '#'. */
	char *save = NULL;
	for (char *line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		printf("# %s\n", line);
	fflush(stdout);
}

void tp_say(enum tp_say to, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;

	if (to == TP_SAY_QUIET)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (to == TP_SAY_DIAG)
		diag("%s", buf);
	else
		fprintf(stderr, "%s\n", buf);
}

int tap_exit_status(void)
{
	if (failed)
		return 1;
	if (planned >= 0 && run != planned)
		return 1;
	return 0;
}
