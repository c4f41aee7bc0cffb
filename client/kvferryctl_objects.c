/*
 * client/kvferryctl_objects.c - `kvferryctl objects`: the KV objects a
 * sidecar's storage tier holds (name, bytes, blocks, last use), most
 * recently used first, and the bytes used against the capacity. Eviction
 * shows here: the least recently used objects are the ones that go.
 *
 * Text for people (a usage line, then one row per object), JSON for
 * scripts: one object with dir, used_bytes, capacity_bytes, count and an
 * objects array whose keys are the StoredObject field names.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/kvferryctl.h"

static int build(Kvf__Ctl__Request *req, int argc, char **argv, char *err,
                 size_t errlen)
{
	static Kvf__Ctl__ObjectsRequest orq = KVF__CTL__OBJECTS_REQUEST__INIT;

	for (int i = 1; i < argc; i++) {
		char *end;
		unsigned long n;

		if (strcmp(argv[i], "-n") != 0 || i + 1 >= argc) {
			snprintf(err, errlen, "objects: unexpected '%s' (usage: "
			    "objects [-n COUNT])", argv[i]);
			return CTL_EXIT_USAGE;
		}
		errno = 0;
		n = strtoul(argv[++i], &end, 10);
		if (argv[i][0] < '0' || argv[i][0] > '9' || *end || errno ||
		    n < 1 || n > 10000) {
			snprintf(err, errlen, "objects -n '%s': must be a count "
			    "in 1..10000", argv[i]);
			return CTL_EXIT_USAGE;
		}
		orq.limit = (uint32_t)n;
	}
	req->body_case = KVF__CTL__REQUEST__BODY_OBJECTS;
	req->objects = &orq;
	return 0;
}

/* "1.5 GiB" for people; exact bytes are in the JSON form. */
static void human(uint64_t b, char *buf, size_t len)
{
	static const char *const u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)b;
	int i = 0;

	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)b);
	else
		snprintf(buf, len, "%.1f %s", v, u[i]);
}

static void print(const Kvf__Ctl__Reply *rep, int json, FILE *out)
{
	const Kvf__Ctl__ObjectsReply *o = rep->objects;
	char used[32], cap[32], when[32], size[32];

	if (json) {
		fputs("{\"dir\":", out);
		ctl_json_quote(out, o->dir);
		fprintf(out, ",\"used_bytes\":%llu,\"capacity_bytes\":%llu,"
		    "\"count\":%llu,\"objects\":[",
		    (unsigned long long)o->used_bytes,
		    (unsigned long long)o->capacity_bytes,
		    (unsigned long long)o->count);
		for (size_t i = 0; i < o->n_objects; i++) {
			const Kvf__Ctl__StoredObject *e = o->objects[i];
			fputs(i ? ",{\"name\":" : "{\"name\":", out);
			ctl_json_quote(out, e->name);
			fprintf(out, ",\"bytes\":%llu,\"last_use_ns\":%llu,"
			    "\"blocks\":%u,\"block_bytes\":%llu}",
			    (unsigned long long)e->bytes,
			    (unsigned long long)e->last_use_ns, e->blocks,
			    (unsigned long long)e->block_bytes);
		}
		fputs("]}\n", out);
		return;
	}
	human(o->used_bytes, used, sizeof(used));
	if (o->capacity_bytes) {
		human(o->capacity_bytes, cap, sizeof(cap));
		fprintf(out, "store %s: %llu objects, %s of %s used (%.0f%%)\n",
		    o->dir, (unsigned long long)o->count, used, cap,
		    100.0 * (double)o->used_bytes / (double)o->capacity_bytes);
	} else {
		fprintf(out, "store %s: %llu objects, %s used (no capacity "
		    "limit)\n", o->dir, (unsigned long long)o->count, used);
	}
	if (!o->n_objects)
		return;
	fprintf(out, "%-40s %14s %8s %12s  %s\n", "NAME", "BYTES", "BLOCKS",
	    "BLOCK BYTES", "LAST USE (UTC)");
	for (size_t i = 0; i < o->n_objects; i++) {
		const Kvf__Ctl__StoredObject *e = o->objects[i];
		time_t t = (time_t)(e->last_use_ns / 1000000000u);
		struct tm tm;

		if (gmtime_r(&t, &tm))
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		else
			snprintf(when, sizeof(when), "-");
		human(e->bytes, size, sizeof(size));
		fprintf(out, "%-40s %14llu %8u %12llu  %s\n", e->name,
		    (unsigned long long)e->bytes, e->blocks,
		    (unsigned long long)e->block_bytes, when);
	}
	if (o->count > o->n_objects)
		fprintf(out, "(%zu most recently used of %llu shown; -n "
		    "COUNT for more)\n", o->n_objects,
		    (unsigned long long)o->count);
}

const struct ctl_cmd ctl_cmd_objects = {
	.name = "objects",
	.args = "[-n COUNT]",
	.help = "stored KV objects (name, bytes, last use), usage/capacity",
	.build = build,
	.reply = KVF__CTL__REPLY__BODY_OBJECTS,
	.print = print,
};
