/*
 * tests/faults/common.h - helpers shared by the fault tests: a monotonic
 * clock, byte patterns, `kvferryctl -o json status` fields, /proc figures
 * of a sidecar, and waiting for one event of a kind with a bound.
 */
#ifndef KVF_TESTS_FAULTS_COMMON_H
#define KVF_TESTS_FAULTS_COMMON_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/kvferry.h"
#include "tests/tap/proc.h"
#include "tests/tap/tap.h"

static inline long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static inline void pattern(uint8_t *p, size_t n, uint32_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
}

/* 1 when p[0..n) is pattern(seed), without a second buffer. */
static inline int pattern_ok(const uint8_t *p, size_t n, uint32_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		if (p[i] != (uint8_t)x)
			return 0;
	}
	return 1;
}

/* A numeric field of `kvferryctl -o json status`; -1 when unavailable. */
static inline long long ctl_status_field(const struct tp_daemon *d,
                                         const char *field)
{
	struct tp_run r;
	const char *argv[] = {tp_bin("kvferryctl"), "-u", d->control_url,
	                      "-o", "json", "status", NULL};
	long long v = -1;
	char key[80];
	const char *p;

	if (tp_run(&r, 5000, NULL, argv) != 0)
		return -1;
	snprintf(key, sizeof key, "\"%s\":", field);
	if (r.status == 0 && r.out && (p = strstr(r.out, key)))
		v = strtoll(p + strlen(key), NULL, 10);
	tp_run_free(&r);
	return v;
}

/* Resident set (kB) and open fds of a process; -1 when unreadable. */
static inline long proc_rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	if (!(f = fopen(path, "r")))
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static inline int proc_fds(pid_t pid)
{
	char path[64];
	struct dirent *e;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
	if (!(d = opendir(path)))
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/*
 * Wait up to ms for an event of type (others are counted in *others when
 * not NULL and dropped). 1 and *ev filled, or 0 on timeout, or -1 with the
 * error of kvf_wait in *err.
 */
static inline int wait_type(kvf_client *c, enum kvf_event_type type, int ms,
                            struct kvf_event *ev, int *others, int *err)
{
	long t0 = now_ms();
	while (now_ms() - t0 < ms) {
		int n = 0, rc = kvf_wait(c, ev, 1, 50, &n);
		if (rc != 0) {
			if (err)
				*err = rc;
			return -1;
		}
		if (n == 1 && ev->type == type)
			return 1;
		if (n == 1 && others)
			(*others)++;
	}
	return 0;
}

/* Count the log lines of a daemon that contain needle. */
static inline int log_count(const struct tp_daemon *d, const char *needle)
{
	return tp_count_lines(d->log_path, needle);
}

#endif
