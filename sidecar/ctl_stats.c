/*
 * sidecar/ctl_stats.c - the `stats` and `log-level` control commands.
 *
 * stats answers the raw counters and the latency histogram with the
 * sidecar's monotonic clock at the sample; kvferryctl takes two samples
 * and computes rates and percentiles itself, so the sidecar keeps no
 * windows and any number of watchers cost nothing between calls. Every
 * value read is an atomic counter: no lock.
 */
#include <stdlib.h>
#include <string.h>

#include "client/kvferry.h"
#include "sidecar/ctl_server.h"
#include "sidecar/daemon.h"
#include "sidecar/log.h"

static uint64_t ld(_Atomic uint64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

static int stats(struct sc_daemon *d, const Kvf__Ctl__Request *req,
                 Kvf__Ctl__Reply *rep, char *err, size_t errlen)
{
	struct sc_stats *st = &d->stats;
	Kvf__Ctl__StatsReply *s = malloc(sizeof(*s));
	size_t nerr = 0;

	if (!s) {
		snprintf(err, errlen, "stats: out of memory");
		return KVF_ENOMEM;
	}
	kvf__ctl__stats_reply__init(s);
	rep->body_case = KVF__CTL__REPLY__BODY_STATS;
	rep->stats = s;
	s->sample_ns = sc_now_ns();
	s->uptime_ms = (s->sample_ns - d->start_ns) / 1000000u;
	s->writes = ld(&st->writes);
	s->reads = ld(&st->reads);
	s->write_bytes = ld(&st->write_bytes);
	s->read_bytes = ld(&st->read_bytes);
	s->xfers_total = ld(&d->counters.xfers_total);
	s->xfers_failed = ld(&d->counters.xfers_failed);
	s->xfers_in_flight = ld(&d->counters.xfers_in_flight);
	s->notifs_sent = ld(&st->notifs_sent);
	s->notifs_received = ld(&st->notifs_received);
	s->inline_sent = ld(&st->inline_sent);
	s->inline_received = ld(&st->inline_received);
	s->inline_dropped = ld(&st->inline_dropped);
	s->wakeups_sent = ld(&st->wakeups_sent);
	s->wakeups_received = ld(&st->wakeups_received);
	s->regions_gone_sent = ld(&st->regions_gone_sent);
	s->regions_gone_received = ld(&st->regions_gone_received);
	s->lat_sum_ns = ld(&st->lat_sum_ns);
	s->lat_count = ld(&st->lat_count);
	s->draining = atomic_load(&d->draining) != 0;
	s->lat_bounds_us = calloc(SC_LAT_BUCKETS, sizeof(uint64_t));
	s->lat_buckets = calloc(SC_LAT_BUCKETS + 1, sizeof(uint64_t));
	s->errors = calloc(KVF_ERR_COUNT, sizeof(*s->errors));
	if (!s->lat_bounds_us || !s->lat_buckets || !s->errors) {
		snprintf(err, errlen, "stats: out of memory");
		return KVF_ENOMEM;
	}
	s->n_lat_bounds_us = SC_LAT_BUCKETS;
	s->n_lat_buckets = SC_LAT_BUCKETS + 1;
	for (int i = 0; i < SC_LAT_BUCKETS; i++)
		s->lat_bounds_us[i] = sc_lat_bounds_us[i];
	for (int i = 0; i <= SC_LAT_BUCKETS; i++)
		s->lat_buckets[i] = ld(&st->lat_bucket[i]);
	for (int c = 1; c < KVF_ERR_COUNT; c++) {
		uint64_t v = ld(&st->errors[c]);
		Kvf__Ctl__ErrorCount *e;
		if (!v)
			continue;
		if (!(e = malloc(sizeof(*e)))) {
			snprintf(err, errlen, "stats: out of memory");
			return KVF_ENOMEM;
		}
		kvf__ctl__error_count__init(e);
		e->code = (uint32_t)c;
		e->name = sc_ctl_strdup(kvf_strerror(c));
		e->count = v;
		s->errors[nerr++] = e;
		s->n_errors = nerr;
	}
	return 0;
}

static int log_level(struct sc_daemon *d, const Kvf__Ctl__Request *req,
                     Kvf__Ctl__Reply *rep, char *err, size_t errlen)
{
	const char *want = req->log_level && req->log_level->level ?
	    req->log_level->level : "";
	enum sc_log_level prev = sc_log_get_level();
	Kvf__Ctl__LogLevelReply *r;
	int lv = (int)prev;

	if (want[0] && (lv = sc_log_parse_level(want)) < 0) {
		snprintf(err, errlen, "log-level '%s': must be error, warn, "
		    "info or debug", want);
		return KVF_EINVAL;
	}
	if (!(r = malloc(sizeof(*r)))) {
		snprintf(err, errlen, "log-level: out of memory");
		return KVF_ENOMEM;
	}
	kvf__ctl__log_level_reply__init(r);
	rep->body_case = KVF__CTL__REPLY__BODY_LOG_LEVEL;
	rep->log_level = r;
	if (want[0] && lv != (int)prev) {
		sc_log_set_level((enum sc_log_level)lv);
		/* Written whatever the new level: an operator's change to
		 * what the log shows belongs in the log. */
		sc_log_write(SC_LOG_INFO, "log level: %s -> %s (kvferryctl)",
		    sc_log_level_name(prev),
		    sc_log_level_name((enum sc_log_level)lv));
	}
	r->previous = sc_ctl_strdup(sc_log_level_name(prev));
	r->level = sc_ctl_strdup(sc_log_level_name(sc_log_get_level()));
	return 0;
}

void sc_ctl_stats_register(void)
{
	sc_ctl_register(KVF__CTL__REQUEST__BODY_STATS, stats);
	sc_ctl_register(KVF__CTL__REQUEST__BODY_LOG_LEVEL, log_level);
}
