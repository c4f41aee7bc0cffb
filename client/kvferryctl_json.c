/*
 * client/kvferryctl_json.c - nested JSON for kvferryctl's list commands
 * and the human units of its text tables.
 *
 * The writer streams: each object or array has its own struct ctl_json
 * counting members for the commas, opened on its parent's, so a command
 * writes its reply in one pass with no tree in memory.
 */
#include <math.h>

#include "client/kvferryctl.h"

void ctl_json_obj(struct ctl_json *parent, const char *key,
                  struct ctl_json *child)
{
	ctl_json_key(parent, key);
	fputc('{', parent->f);
	child->f = parent->f;
	child->n = 0;
}

void ctl_json_arr(struct ctl_json *parent, const char *key,
                  struct ctl_json *child)
{
	ctl_json_key(parent, key);
	fputc('[', parent->f);
	child->f = parent->f;
	child->n = 0;
}

void ctl_json_close_obj(struct ctl_json *j)
{
	fputc('}', j->f);
}

void ctl_json_close_arr(struct ctl_json *j)
{
	fputc(']', j->f);
}

void ctl_json_bool(struct ctl_json *j, const char *key, int val)
{
	ctl_json_key(j, key);
	fputs(val ? "true" : "false", j->f);
}

void ctl_json_null(struct ctl_json *j, const char *key)
{
	ctl_json_key(j, key);
	fputs("null", j->f);
}

void ctl_json_f64(struct ctl_json *j, const char *key, double val)
{
	ctl_json_key(j, key);
	if (isfinite(val))
		fprintf(j->f, "%.6g", val);
	else
		fputs("null", j->f);
}

const char *ctl_fmt_bytes(char *buf, size_t len, uint64_t bytes)
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	int u = -1;

	if (bytes < 1024) {
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
		return buf;
	}
	while (v >= 1024 && u < 3) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%.1f %s", v, unit[u]);
	return buf;
}

const char *ctl_fmt_us(char *buf, size_t len, double us)
{
	if (!isfinite(us) || us < 0)
		snprintf(buf, len, "-");
	else if (us < 1000)
		snprintf(buf, len, "%.0f us", us);
	else if (us < 1e6)
		snprintf(buf, len, "%.2f ms", us / 1e3);
	else
		snprintf(buf, len, "%.2f s", us / 1e6);
	return buf;
}
