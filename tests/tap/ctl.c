/*
 * tests/tap/ctl.c - numbers from `kvferryctl -o json status` and `stats`
 * (see ctl.h).
 * kvferryctl writes compact JSON with the top-level counters before the
 * "rails" array, each rail an object that opens with its "index", so a
 * key is found by text search rather than by a JSON parser: the tests need
 * a handful of integers, and a missing one reads as -1, which no counter
 * or byte count can be.
 */
#include "tests/tap/ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CTL_MS 10000

char *tp_ctl_status_json(const struct tp_daemon *d)
{
	const char *argv[] = {tp_bin("kvferryctl"), "-u", d->control_url,
	                      "-o", "json", "status", NULL};
	struct tp_run r;
	char *out = NULL;

	if (tp_run(&r, CTL_MS, NULL, argv) != 0)
		return NULL;
	if (r.status == 0 && r.out) {
		out = r.out;
		r.out = NULL;
	}
	tp_run_free(&r);
	return out;
}

long long tp_json_int(const char *from, const char *key)
{
	char k[96];
	const char *p;

	snprintf(k, sizeof k, "\"%s\":", key);
	if (!from || !(p = strstr(from, k)))
		return -1;
	return strtoll(p + strlen(k), NULL, 10);
}

long long tp_ctl_status_field(const struct tp_daemon *d, const char *field)
{
	char *json = tp_ctl_status_json(d);
	long long v = tp_json_int(json, field);

	free(json);
	return v;
}

long long tp_ctl_stats_field(const struct tp_daemon *d, const char *field)
{
	const char *argv[] = {tp_bin("kvferryctl"), "-u", d->control_url,
	                      "-o", "json", "stats", "--interval", "0.05",
	                      NULL};
	struct tp_run r;
	long long v = -1;

	if (tp_run(&r, CTL_MS, NULL, argv) != 0)
		return -1;
	if (r.status == 0)
		v = tp_json_int(r.out, field);
	tp_run_free(&r);
	return v;
}

/* The rail object of index idx in json, or NULL. */
static const char *rail_at(const char *json, int idx)
{
	char k[32];

	snprintf(k, sizeof k, "{\"index\":%d,", idx);
	return json ? strstr(json, k) : NULL;
}

int tp_ctl_rails(const struct tp_daemon *d, long long *bytes, int max)
{
	char *json = tp_ctl_status_json(d);
	const char *r;
	int n = 0;

	if (!json)
		return -1;
	while ((r = rail_at(json, n))) {
		if (bytes && n < max)
			bytes[n] = tp_json_int(r, "bytes");
		n++;
	}
	free(json);
	return n;
}

long long tp_ctl_rail_bytes(const struct tp_daemon *d, int idx)
{
	char *json = tp_ctl_status_json(d);
	long long v = tp_json_int(rail_at(json, idx), "bytes");

	free(json);
	return v;
}
