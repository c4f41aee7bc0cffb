/*
 * sidecar/metrics.h - the HTTP endpoint for Prometheus and Kubernetes
 * probes, served with nng's HTTP server on cfg.metrics_url
 * (--metrics-url / KVFERRY_METRICS_URL, http://host:port):
 *
 *   /metrics  Prometheus text format 0.0.4: counters, gauges, the transfer
 *             latency histogram, per-peer series;
 *   /livez    200 while the process serves HTTP;
 *   /readyz   200 when the sidecar should be given work, else 503 with a
 *             one-line reason (sc_metrics_readiness).
 */
#ifndef KVF_SIDECAR_METRICS_H
#define KVF_SIDECAR_METRICS_H

#include <stddef.h>

struct sc_daemon;
struct sc_metrics;

/*
 * Serve d's metrics on d->cfg.metrics_url; *out is NULL when no URL is
 * configured. Returns 0, or a KVF_E* code with a one-line reason in err
 * naming the option (a port in use is KVF_EBUSY). Call from the main
 * thread once the modules run; the handlers read d until stop.
 */
int sc_metrics_start(struct sc_daemon *d, struct sc_metrics **out, char *err,
                     size_t errlen);

/* Stop serving (requests in progress finish first) and free. Accepts
 * NULL. Main thread. */
void sc_metrics_stop(struct sc_metrics *m);

/*
 * Whether d should get work: its fabric endpoint is open, the provider in
 * use is the one required by the configuration (when cfg.provider is set;
 * "tcp" matches "tcp;ofi_rxm"), and it is neither draining nor stopping.
 * Returns 1 when ready, else 0 with the reason in why. Any thread.
 */
int sc_metrics_readiness(struct sc_daemon *d, char *why, size_t whylen);

#endif
