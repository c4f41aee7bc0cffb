/*
 * sidecar/metrics.c - /metrics, /livez and /readyz over nng's HTTP server.
 *
 * Each scrape renders the Prometheus text format from the live counters
 * (atomics in d->counters and d->stats) and a copy of the peer table made
 * under the registry lock, into one growing buffer handed to nng as the
 * response body. Nothing is cached: a scrape every few seconds costs a
 * few microseconds and the numbers are never stale.
 *
 * Naming follows Prometheus conventions: a kvferry_ prefix, base units
 * (seconds, bytes), _total on counters, one histogram in seconds built
 * from the stats buckets (cumulative, as Prometheus wants). Transfers are
 * counted when they end; errors by the KVF_E* name of their code. Error
 * series exist for every code from the start (value 0), so rate() works
 * on the first error too.
 *
 * The handlers run on nng's threads. They read only atomics, the
 * configuration and fabric info fixed at start, and the registry under its
 * lock; daemon stop stops this server before the modules go away.
 */
#include "sidecar/metrics.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "client/kvferry.h"
#include "proto/version.h"
#include "sidecar/daemon.h"
#include "sidecar/xfers.h"
#include "sidecar/log.h"
#include "sidecar/registry.h"
#include "xfer/fabric.h"

struct sc_metrics {
	struct sc_daemon *d;
	nng_http_server *srv;
	nng_url *url;
	bool started;
};

/* Label values for kvferry_transfer_errors_total{code=...}. */
static const char *const code_names[KVF_ERR_COUNT] = {
	[KVF_EINVAL] = "KVF_EINVAL",       [KVF_ENOMEM] = "KVF_ENOMEM",
	[KVF_ENOENT] = "KVF_ENOENT",       [KVF_ERANGE] = "KVF_ERANGE",
	[KVF_ETIMEDOUT] = "KVF_ETIMEDOUT", [KVF_ECLOSED] = "KVF_ECLOSED",
	[KVF_EPROTO] = "KVF_EPROTO",       [KVF_EVERSION] = "KVF_EVERSION",
	[KVF_EPEER] = "KVF_EPEER",         [KVF_EFABRIC] = "KVF_EFABRIC",
	[KVF_ECUDA] = "KVF_ECUDA",         [KVF_EBUSY] = "KVF_EBUSY",
	[KVF_ECANCELED] = "KVF_ECANCELED", [KVF_EAGAIN] = "KVF_EAGAIN",
	[KVF_ESYSTEM] = "KVF_ESYSTEM",     [KVF_EEXIST] = "KVF_EEXIST",
	[KVF_EPERM] = "KVF_EPERM",         [KVF_EIO] = "KVF_EIO",
	[KVF_ENOSPC] = "KVF_ENOSPC",       [KVF_ECORRUPT] = "KVF_ECORRUPT",
	[KVF_ENOTSUP] = "KVF_ENOTSUP",     [KVF_ECONFIG] = "KVF_ECONFIG",
};

/* ---- output buffer ----------------------------------------------------- */

struct buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void put(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void put(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL,
		    b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if (b->p && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 16384;
		while (cap <= b->len + (size_t)n)
			cap *= 2;
		char *q = realloc(b->p, cap);
		if (!q) {
			b->oom = true;
			return;
		}
		b->p = q;
		b->cap = cap;
	}
}

/* A label value with \, " and newline escaped, as the format requires. */
static void put_label(struct buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			put(b, "\\\\");
		else if (*s == '"')
			put(b, "\\\"");
		else if (*s == '\n')
			put(b, "\\n");
		else
			put(b, "%c", *s);
	}
}

static void head(struct buf *b, const char *name, const char *type,
                 const char *help)
{
	put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metric(struct buf *b, const char *name, const char *type,
                   const char *help, uint64_t v)
{
	head(b, name, type, help);
	put(b, "%s %llu\n", name, (unsigned long long)v);
}

static uint64_t ld(_Atomic uint64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

/* ---- readiness --------------------------------------------------------- */

/* The daemon's provider rule (xfer/fabric.c): a full name matches itself,
 * a core name without ';' also matches the layered provider on it. */
static bool prov_matches(const char *want, const char *prov)
{
	size_t n = strlen(want);

	if (strcmp(want, prov) == 0)
		return true;
	return !strchr(want, ';') && strncmp(prov, want, n) == 0 &&
	    prov[n] == ';';
}

int sc_metrics_readiness(struct sc_daemon *d, char *why, size_t whylen)
{
	const struct xfer_fabric_info *fi;

	if (atomic_load(&d->stopping)) {
		snprintf(why, whylen, "not ready: kvferryd is shutting down");
		return 0;
	}
	fi = d->fabric ? xfer_fabric_info(d->fabric) : NULL;
	if (!fi) {
		snprintf(why, whylen, "not ready: the fabric endpoint is not "
		    "open");
		return 0;
	}
	if (d->cfg.provider[0] && !prov_matches(d->cfg.provider, fi->provider)) {
		snprintf(why, whylen, "not ready: provider %s is in use but "
		    "%s requires %s", fi->provider,
		    sc_config_origin(&d->cfg, SC_OPT_PROVIDER),
		    d->cfg.provider);
		return 0;
	}
	if (atomic_load(&d->draining)) {
		snprintf(why, whylen, "not ready: draining (kvferryctl drain); "
		    "new transfers are refused until kvferryctl undrain");
		return 0;
	}
	snprintf(why, whylen, "ready: provider %s%s%s", fi->provider,
	    d->cfg.provider[0] ? ", as required by " : "",
	    d->cfg.provider[0] ? sc_config_origin(&d->cfg, SC_OPT_PROVIDER) :
	                         "");
	return 1;
}

/* ---- /metrics ---------------------------------------------------------- */

struct peer_row {
	uint32_t id;
	bool healthy;
	uint64_t bytes, errors, rtt_ns;
	char engine[KVF_MAX_NAME];
	char url[256];
};

static void peer_labels(struct buf *b, const struct peer_row *p)
{
	put(b, "{peer=\"%u\",engine=\"", p->id);
	put_label(b, p->engine);
	put(b, "\",url=\"");
	put_label(b, p->url);
	put(b, "\"}");
}

static void render_peers(struct buf *b, struct sc_daemon *d)
{
	struct sc_registry *reg = d->registry;
	struct peer_row *rows = NULL;
	struct sc_peer *p;
	size_t n = 0, pos = 0;

	if (reg) {
		pthread_mutex_lock(&reg->lock);
		rows = calloc(reg->peers.len + 1, sizeof(*rows));
		while (rows && (p = sc_idmap_next(&reg->peers, &pos, NULL))) {
			struct peer_row *w = &rows[n++];
			w->id = p->id;
			w->healthy = atomic_load(&p->healthy) != 0;
			w->bytes = atomic_load(&p->bytes);
			w->errors = atomic_load(&p->errors);
			w->rtt_ns = atomic_load(&p->rtt_ns);
			memcpy(w->engine, p->engine, sizeof(w->engine));
			memcpy(w->url, p->url, sizeof(w->url));
		}
		pthread_mutex_unlock(&reg->lock);
	}
	head(b, "kvferry_peer_up", "gauge",
	    "1 when the remote engine's sidecar is healthy, else 0.");
	for (size_t i = 0; i < n; i++) {
		put(b, "kvferry_peer_up");
		peer_labels(b, &rows[i]);
		put(b, " %d\n", rows[i].healthy ? 1 : 0);
	}
	head(b, "kvferry_peer_bytes_total", "counter",
	    "Bytes moved to or from the remote engine.");
	for (size_t i = 0; i < n; i++) {
		put(b, "kvferry_peer_bytes_total");
		peer_labels(b, &rows[i]);
		put(b, " %llu\n", (unsigned long long)rows[i].bytes);
	}
	head(b, "kvferry_peer_errors_total", "counter",
	    "Failed transfers and heartbeats with the remote engine.");
	for (size_t i = 0; i < n; i++) {
		put(b, "kvferry_peer_errors_total");
		peer_labels(b, &rows[i]);
		put(b, " %llu\n", (unsigned long long)rows[i].errors);
	}
	head(b, "kvferry_peer_rtt_seconds", "gauge",
	    "Last round-trip time measured to the remote sidecar (0 until "
	    "measured).");
	for (size_t i = 0; i < n; i++) {
		put(b, "kvferry_peer_rtt_seconds");
		peer_labels(b, &rows[i]);
		put(b, " %.9f\n", (double)rows[i].rtt_ns / 1e9);
	}
	free(rows);
}

static void render(struct buf *b, struct sc_daemon *d)
{
	const struct xfer_fabric_info *fi =
	    d->fabric ? xfer_fabric_info(d->fabric) : NULL;
	struct sc_stats *st = &d->stats;
	uint64_t cum = 0, count, sum_ns;
	char why[256];

	metric(b, "kvferry_up", "gauge", "1 while kvferryd serves.", 1);
	head(b, "kvferry_info", "gauge",
	    "Build and fabric of this sidecar; the value is always 1.");
	put(b, "kvferry_info{version=\"%s\",provider=\"", KVF_VERSION_STRING);
	put_label(b, fi ? fi->provider : "");
	put(b, "\",fabric=\"");
	put_label(b, fi ? fi->fabric : "");
	put(b, "\",sidecar_id=\"%s\"} 1\n", d->sidecar_id);
	metric(b, "kvferry_ready", "gauge",
	    "1 when /readyz answers 200 (fabric up, required provider in "
	    "use, not draining).",
	    (uint64_t)sc_metrics_readiness(d, why, sizeof(why)));
	metric(b, "kvferry_draining", "gauge",
	    "1 while new transfers are refused (kvferryctl drain).",
	    atomic_load(&d->draining) ? 1 : 0);
	head(b, "kvferry_uptime_seconds", "gauge",
	    "Seconds since kvferryd started.");
	put(b, "kvferry_uptime_seconds %.3f\n",
	    (double)(sc_now_ns() - d->start_ns) / 1e9);

	head(b, "kvferry_rail_bytes_total", "counter",
	    "Bytes of RDMA operations posted on each rail (fabric endpoint).");
	for (uint32_t i = 0; i < d->nrails; i++) {
		put(b, "kvferry_rail_bytes_total{rail=\"%u\",domain=\"", i);
		put_label(b, xfer_fabric_info(d->rails[i])->domain);
		put(b, "\"} %llu\n",
		    (unsigned long long)sc_xfers_rail_bytes(d, i));
	}

	head(b, "kvferry_transfers_total", "counter",
	    "Transfers that completed successfully, by operation.");
	put(b, "kvferry_transfers_total{op=\"write\"} %llu\n",
	    (unsigned long long)ld(&st->writes));
	put(b, "kvferry_transfers_total{op=\"read\"} %llu\n",
	    (unsigned long long)ld(&st->reads));
	head(b, "kvferry_transfer_bytes_total", "counter",
	    "Bytes of transfers that completed successfully, by operation.");
	put(b, "kvferry_transfer_bytes_total{op=\"write\"} %llu\n",
	    (unsigned long long)ld(&st->write_bytes));
	put(b, "kvferry_transfer_bytes_total{op=\"read\"} %llu\n",
	    (unsigned long long)ld(&st->read_bytes));
	head(b, "kvferry_transfer_errors_total", "counter",
	    "Accepted transfers that ended with an error, by KVF_E* code.");
	for (int c = 1; c < KVF_ERR_COUNT; c++)
		if (code_names[c])
			put(b, "kvferry_transfer_errors_total{code=\"%s\"} "
			    "%llu\n", code_names[c],
			    (unsigned long long)ld(&st->errors[c]));
	metric(b, "kvferry_transfers_submitted_total", "counter",
	    "Transfers engines submitted, including refused ones.",
	    ld(&d->counters.xfers_total));
	metric(b, "kvferry_transfers_failed_total", "counter",
	    "Transfers that ended with an error or were refused at "
	    "submission (draining, unknown region or peer, bad segment).",
	    ld(&d->counters.xfers_failed));

	/* Sum and count first, then the buckets: a transfer finishing in
	 * between makes the buckets run ahead of _count, never behind,
	 * and the +Inf bucket is written as the sum of the others. */
	sum_ns = ld(&st->lat_sum_ns);
	count = ld(&st->lat_count);
	head(b, "kvferry_transfer_duration_seconds", "histogram",
	    "Time from submission to completion of successful transfers.");
	for (int i = 0; i < SC_LAT_BUCKETS; i++) {
		cum += ld(&st->lat_bucket[i]);
		put(b, "kvferry_transfer_duration_seconds_bucket{le=\"%g\"} "
		    "%llu\n", (double)sc_lat_bounds_us[i] / 1e6,
		    (unsigned long long)cum);
	}
	cum += ld(&st->lat_bucket[SC_LAT_BUCKETS]);
	if (count < cum)
		count = cum;
	put(b, "kvferry_transfer_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
	    (unsigned long long)count);
	put(b, "kvferry_transfer_duration_seconds_sum %.9f\n",
	    (double)sum_ns / 1e9);
	put(b, "kvferry_transfer_duration_seconds_count %llu\n",
	    (unsigned long long)count);

	metric(b, "kvferry_transfers_in_flight", "gauge",
	    "Transfers accepted and not yet completed.",
	    ld(&d->counters.xfers_in_flight));
	metric(b, "kvferry_engines", "gauge", "Engines connected.",
	    ld(&d->counters.engines));
	metric(b, "kvferry_regions", "gauge", "KV regions registered.",
	    ld(&d->counters.regions));
	metric(b, "kvferry_peers", "gauge", "Remote engines resolved.",
	    ld(&d->counters.peers));
	metric(b, "kvferry_notifications_sent_total", "counter",
	    "Completion notifications sent to remote engines.",
	    ld(&st->notifs_sent));
	metric(b, "kvferry_notifications_received_total", "counter",
	    "Completion notifications received for local engines.",
	    ld(&st->notifs_received));
	metric(b, "kvferry_inline_writes_sent_total", "counter",
	    "Small WRITEs sent inside their notification message.",
	    ld(&st->inline_sent));
	metric(b, "kvferry_inline_writes_received_total", "counter",
	    "Inline WRITEs copied into local engines' regions.",
	    ld(&st->inline_received));
	metric(b, "kvferry_inline_writes_dropped_total", "counter",
	    "Inline WRITEs refused (unknown region, bad key or bounds, "
	    "engine gone); the log says why.",
	    ld(&st->inline_dropped));
	metric(b, "kvferry_wakeups_sent_total", "counter",
	    "Wake-ups sent to peers that must poll for our RDMA operations "
	    "(manual-progress providers).",
	    ld(&st->wakeups_sent));
	metric(b, "kvferry_wakeups_received_total", "counter",
	    "Wake-ups received: a peer had RDMA operations in flight to us.",
	    ld(&st->wakeups_received));
	metric(b, "kvferry_regions_gone_sent_total", "counter",
	    "Messages telling a peer that a local engine's region went.",
	    ld(&st->regions_gone_sent));
	metric(b, "kvferry_regions_gone_received_total", "counter",
	    "Messages from peers whose engine's region went (transfers "
	    "into it are refused).",
	    ld(&st->regions_gone_received));
	render_peers(b, d);
}

/* ---- HTTP -------------------------------------------------------------- */

static struct sc_daemon *daemon_of(nng_aio *aio)
{
	return nng_http_handler_get_data(nng_aio_get_input(aio, 1));
}

static void respond(nng_aio *aio, uint16_t code, const char *type,
                    const char *body, size_t len)
{
	nng_http_res *res;
	int rv;

	if ((rv = nng_http_res_alloc(&res)) != 0) {
		nng_aio_finish(aio, rv);
		return;
	}
	if ((rv = nng_http_res_set_status(res, code)) != 0 ||
	    (rv = nng_http_res_set_header(res, "Content-Type", type)) != 0 ||
	    (rv = nng_http_res_copy_data(res, body, len)) != 0) {
		nng_http_res_free(res);
		nng_aio_finish(aio, rv);
		return;
	}
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

static void on_metrics(nng_aio *aio)
{
	struct buf b = { 0 };

	render(&b, daemon_of(aio));
	if (b.oom) {
		static const char msg[] = "out of memory rendering metrics\n";
		respond(aio, 500, "text/plain; charset=utf-8", msg,
		    sizeof(msg) - 1);
	} else {
		respond(aio, 200, "text/plain; version=0.0.4; charset=utf-8",
		    b.p, b.len);
	}
	free(b.p);
}

static void on_livez(nng_aio *aio)
{
	static const char msg[] = "ok\n";

	respond(aio, 200, "text/plain; charset=utf-8", msg, sizeof(msg) - 1);
}

static void on_readyz(nng_aio *aio)
{
	char why[320];
	int ready = sc_metrics_readiness(daemon_of(aio), why, sizeof(why) - 1);

	strcat(why, "\n");
	respond(aio, ready ? 200 : 503, "text/plain; charset=utf-8", why,
	    strlen(why));
}

static int add(struct sc_metrics *m, const char *path, void (*fn)(nng_aio *),
               char *err, size_t errlen)
{
	nng_http_handler *h = NULL;
	int rv;

	if ((rv = nng_http_handler_alloc(&h, path, fn)) != 0 ||
	    (rv = nng_http_handler_set_data(h, m->d, NULL)) != 0 ||
	    (rv = nng_http_server_add_handler(m->srv, h)) != 0) {
		if (h)
			nng_http_handler_free(h);
		snprintf(err, errlen, "%s %s: handler %s: %s",
		    sc_config_origin(&m->d->cfg, SC_OPT_METRICS_URL),
		    m->d->cfg.metrics_url, path, nng_strerror(rv));
		return KVF_ESYSTEM;
	}
	return 0;
}

int sc_metrics_start(struct sc_daemon *d, struct sc_metrics **out, char *err,
                     size_t errlen)
{
	const char *as = sc_config_origin(&d->cfg, SC_OPT_METRICS_URL);
	const char *url = d->cfg.metrics_url;
	struct sc_metrics *m;
	int rv;

	*out = NULL;
	if (!url[0])
		return 0;
	if (!(m = calloc(1, sizeof(*m)))) {
		snprintf(err, errlen, "%s %s: out of memory", as, url);
		return KVF_ENOMEM;
	}
	m->d = d;
	if ((rv = nng_url_parse(&m->url, url)) != 0) {
		snprintf(err, errlen, "%s %s: nng_url_parse() failed: %s", as,
		    url, nng_strerror(rv));
		sc_metrics_stop(m);
		return KVF_ECONFIG;
	}
	if ((rv = nng_http_server_hold(&m->srv, m->url)) != 0) {
		snprintf(err, errlen, "%s %s: nng_http_server_hold() failed: "
		    "%s", as, url, nng_strerror(rv));
		sc_metrics_stop(m);
		return KVF_ECONFIG;
	}
	if ((rv = add(m, "/metrics", on_metrics, err, errlen)) != 0 ||
	    (rv = add(m, "/livez", on_livez, err, errlen)) != 0 ||
	    (rv = add(m, "/readyz", on_readyz, err, errlen)) != 0) {
		sc_metrics_stop(m);
		return rv;
	}
	if ((rv = nng_http_server_start(m->srv)) != 0) {
		const char *why = nng_strerror(rv);
		if (rv == NNG_EADDRINUSE)
			why = "address in use: another process listens there";
		else if (rv == NNG_EADDRINVAL)
			why = "address not valid on this host";
		snprintf(err, errlen, "%s %s: nng_http_server_start() failed: "
		    "%s", as, url, why);
		sc_metrics_stop(m);
		return rv == NNG_EADDRINUSE ? KVF_EBUSY : KVF_ECONFIG;
	}
	m->started = true;
	sc_info("metrics: serving /metrics, /livez and /readyz on %s", url);
	*out = m;
	return 0;
}

void sc_metrics_stop(struct sc_metrics *m)
{
	if (!m)
		return;
	if (m->started)
		nng_http_server_stop(m->srv);
	/* The last release frees the server and the handlers it holds. */
	if (m->srv)
		nng_http_server_release(m->srv);
	if (m->url)
		nng_url_free(m->url);
	free(m);
}
