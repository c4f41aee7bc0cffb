/*
 * sidecar/ctl_status.c - the `status` control command: version, uptime,
 * the fabric chosen at start, the listen addresses and the counters.
 *
 * Everything read here is either fixed after start (configuration,
 * fabric info) or an atomic counter, so the handler takes no lock.
 */
#include <stdlib.h>
#include <unistd.h>

#include "client/kvferry.h"
#include "proto/version.h"
#include "sidecar/ctl_server.h"
#include "sidecar/daemon.h"
#include "sidecar/xfers.h"
#include "xfer/fabric.h"

static int status(struct sc_daemon *d, const Kvf__Ctl__Request *req,
                  Kvf__Ctl__Reply *rep, char *err, size_t errlen)
{
	Kvf__Ctl__StatusReply *s = malloc(sizeof(*s));
	const struct xfer_fabric_info *fi;

	if (!s) {
		snprintf(err, errlen, "status: out of memory");
		return KVF_ENOMEM;
	}
	kvf__ctl__status_reply__init(s);
	rep->body_case = KVF__CTL__REPLY__BODY_STATUS;
	rep->status = s;

	s->version = sc_ctl_strdup(KVF_VERSION_STRING);
	s->uptime_ms = (sc_now_ns() - d->start_ns) / 1000000u;
	s->pid = (uint32_t)getpid();
	s->sidecar_id = sc_ctl_strdup(d->sidecar_id);
	fi = d->fabric ? xfer_fabric_info(d->fabric) : NULL;
	if (fi) {
		s->provider = sc_ctl_strdup(fi->provider);
		s->fabric = sc_ctl_strdup(fi->fabric);
		s->domain = sc_ctl_strdup(fi->domain);
		s->fabric_addr = sc_ctl_strdup(fi->addr_str);
	}
	s->engine_socket = sc_ctl_strdup(d->cfg.engine_socket);
	s->control_url = sc_ctl_strdup(d->cfg.control_url);
	s->peer_url = sc_ctl_strdup(d->cfg.peer_url);
	s->engines = atomic_load(&d->counters.engines);
	s->peers = atomic_load(&d->counters.peers);
	s->regions = atomic_load(&d->counters.regions);
	s->xfers_in_flight = atomic_load(&d->counters.xfers_in_flight);
	s->xfers_total = atomic_load(&d->counters.xfers_total);
	s->xfers_failed = atomic_load(&d->counters.xfers_failed);
	s->bytes_total = atomic_load(&d->counters.bytes_total);
	s->rails = calloc(d->nrails + 1, sizeof *s->rails);
	for (uint32_t i = 0; s->rails && i < d->nrails; i++) {
		const struct xfer_fabric_info *ri = xfer_fabric_info(d->rails[i]);
		Kvf__Ctl__RailStatus *r = malloc(sizeof *r);
		if (!r)
			break;
		kvf__ctl__rail_status__init(r);
		r->index = i;
		r->domain = sc_ctl_strdup(ri->domain);
		r->address = sc_ctl_strdup(ri->addr_str);
		r->nic = sc_ctl_strdup(ri->pci_path);
		r->bytes = sc_xfers_rail_bytes(d, i);
		s->rails[s->n_rails++] = r;
	}
	return 0;
}

void sc_ctl_builtin_register(void)
{
	sc_ctl_register(KVF__CTL__REQUEST__BODY_STATUS, status);
	sc_ctl_tables_register();
	sc_ctl_xfers_register();
	sc_ctl_stats_register();
}
