/*
 * sidecar/ctl_tables.c - the `engines`, `regions` and `peers` control
 * commands: views of the registry's three tables.
 *
 * The registry lock is shared with the progress thread, which takes it to
 * accept every transfer, so each handler copies the few fields it shows
 * into plain arrays under the lock and builds the protobuf reply (strings,
 * sub-messages) after releasing it. Rows are sorted by id so that two
 * calls list the same table in the same order. Transfers in flight per
 * engine come from the progress thread's snapshot, not from the sessions'
 * own counters, which only the progress thread may read.
 */
#include <stdlib.h>
#include <string.h>

#include "client/kvferry.h"
#include "sidecar/ctl_server.h"
#include "sidecar/daemon.h"
#include "sidecar/registry.h"
#include "sidecar/xfers.h"
#include "xfer/fabric.h"

/* How long a listing waits for the progress thread's snapshot. */
#define SNAPSHOT_MS 1000

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

static int oom(char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "%s: out of memory", what);
	return KVF_ENOMEM;
}

/* ---- engines ----------------------------------------------------------- */

struct engine_row {
	uint64_t id;
	uint32_t pid;
	uint64_t regions;
	char name[KVF_MAX_NAME];
};

static int by_session(const void *a, const void *b)
{
	return cmp_u64(((const struct engine_row *)a)->id,
	    ((const struct engine_row *)b)->id);
}

static int engines(struct sc_daemon *d, const Kvf__Ctl__Request *req,
                   Kvf__Ctl__Reply *rep, char *err, size_t errlen)
{
	struct sc_registry *reg = d->registry;
	struct engine_row *rows = NULL;
	struct sc_xfer_info *xi = NULL;
	Kvf__Ctl__EnginesReply *er;
	struct sc_session *s;
	size_t n = 0, nx = 0, pos = 0;
	int rv;

	if (!reg) {
		snprintf(err, errlen, "engines: the sidecar is not serving "
		    "engines (starting or stopping)");
		return KVF_ECLOSED;
	}
	if ((rv = sc_xfers_snapshot(d, &xi, &nx, SNAPSHOT_MS)) != 0) {
		snprintf(err, errlen, "engines: sc_xfers_snapshot() failed: "
		    "%s (the progress thread did not answer within %d ms)",
		    kvf_strerror(rv), SNAPSHOT_MS);
		return rv;
	}
	pthread_mutex_lock(&reg->lock);
	rows = calloc(reg->sessions.len + 1, sizeof(*rows));
	while (rows && (s = sc_idmap_next(&reg->sessions, &pos, NULL))) {
		if (atomic_load(&s->closing))
			continue;
		rows[n].id = s->id;
		rows[n].pid = s->pid;
		rows[n].regions = s->regions_count;
		memcpy(rows[n].name, s->name, sizeof(rows[n].name));
		n++;
	}
	pthread_mutex_unlock(&reg->lock);
	if (!rows || !(er = malloc(sizeof(*er)))) {
		free(rows);
		free(xi);
		return oom(err, errlen, "engines");
	}
	qsort(rows, n, sizeof(*rows), by_session);
	kvf__ctl__engines_reply__init(er);
	rep->body_case = KVF__CTL__REPLY__BODY_ENGINES;
	rep->engines = er;
	er->engines = calloc(n + 1, sizeof(*er->engines));
	for (size_t i = 0; er->engines && i < n; i++) {
		Kvf__Ctl__EngineInfo *e = malloc(sizeof(*e));
		if (!e)
			break;
		kvf__ctl__engine_info__init(e);
		e->name = sc_ctl_strdup(rows[i].name);
		e->pid = rows[i].pid;
		e->session_id = rows[i].id;
		e->regions = rows[i].regions;
		for (size_t k = 0; k < nx; k++)
			if (strcmp(xi[k].engine, rows[i].name) == 0)
				e->xfers_in_flight++;
		er->engines[er->n_engines++] = e;
	}
	free(rows);
	free(xi);
	if (er->n_engines != n)
		return oom(err, errlen, "engines");
	return 0;
}

/* ---- regions ----------------------------------------------------------- */

struct region_row {
	uint32_t id;
	uint32_t kind;
	uint64_t len;
	bool has_layout;
	struct kvf_layout layout;
	char engine[KVF_MAX_NAME];
};

static int by_region(const void *a, const void *b)
{
	return cmp_u64(((const struct region_row *)a)->id,
	    ((const struct region_row *)b)->id);
}

static int regions(struct sc_daemon *d, const Kvf__Ctl__Request *req,
                   Kvf__Ctl__Reply *rep, char *err, size_t errlen)
{
	const char *only = req->regions && req->regions->engine ?
	    req->regions->engine : "";
	struct sc_registry *reg = d->registry;
	struct region_row *rows = NULL;
	Kvf__Ctl__RegionsReply *rr;
	struct sc_region *r;
	bool found = !only[0], short_of_memory = false;
	size_t n = 0, pos = 0;

	if (!reg) {
		snprintf(err, errlen, "regions: the sidecar is not serving "
		    "engines (starting or stopping)");
		return KVF_ECLOSED;
	}
	pthread_mutex_lock(&reg->lock);
	if (only[0] && sc_registry_session_by_name(reg, only))
		found = true;
	rows = calloc(reg->regions.len + 1, sizeof(*rows));
	while (rows && (r = sc_idmap_next(&reg->regions, &pos, NULL))) {
		struct sc_session *s = sc_idmap_get(&reg->sessions,
		    r->session_id);
		const char *name = s ? s->name : "";
		if (only[0] && strcmp(only, name) != 0)
			continue;
		rows[n].id = r->id;
		rows[n].kind = r->kind;
		rows[n].len = r->len;
		rows[n].has_layout = r->has_layout;
		rows[n].layout = r->layout;
		snprintf(rows[n].engine, sizeof(rows[n].engine), "%s", name);
		n++;
	}
	pthread_mutex_unlock(&reg->lock);
	if (!rows)
		return oom(err, errlen, "regions");
	if (!found) {
		free(rows);
		snprintf(err, errlen, "regions: no engine named '%s' is "
		    "connected to this sidecar (see kvferryctl engines)", only);
		return KVF_ENOENT;
	}
	if (!(rr = malloc(sizeof(*rr)))) {
		free(rows);
		return oom(err, errlen, "regions");
	}
	qsort(rows, n, sizeof(*rows), by_region);
	kvf__ctl__regions_reply__init(rr);
	rep->body_case = KVF__CTL__REPLY__BODY_REGIONS;
	rep->regions = rr;
	rr->regions = calloc(n + 1, sizeof(*rr->regions));
	for (size_t i = 0; rr->regions && i < n; i++) {
		Kvf__Ctl__RegionInfo *ri = malloc(sizeof(*ri));
		Kvf__KvLayout *l = NULL;
		if (!ri) {
			short_of_memory = true;
			break;
		}
		kvf__ctl__region_info__init(ri);
		rr->regions[rr->n_regions++] = ri;
		ri->id = rows[i].id;
		ri->engine = sc_ctl_strdup(rows[i].engine);
		ri->kind = sc_ctl_strdup(rows[i].kind == XFER_MEM_CUDA ?
		    "cuda" : "host");
		ri->bytes = rows[i].len;
		if (rows[i].has_layout) {
			if (!(l = malloc(sizeof(*l)))) {
				short_of_memory = true;
				break;
			}
			kvf__kv_layout__init(l);
			l->num_layers = rows[i].layout.num_layers;
			l->num_blocks = rows[i].layout.num_blocks;
			l->block_bytes = rows[i].layout.block_bytes;
			l->layer_stride = rows[i].layout.layer_stride;
			l->block_stride = rows[i].layout.block_stride;
			l->offset = rows[i].layout.offset;
			ri->layout = l;
		}
	}
	free(rows);
	if (!rr->regions || short_of_memory)
		return oom(err, errlen, "regions");
	return 0;
}

/* ---- peers ------------------------------------------------------------- */

struct peer_row {
	uint32_t id;
	bool same_host;
	bool any_cuda;
	bool healthy;
	uint32_t nregions, nrails;
	uint64_t rtt_ns, bytes, errors, last_ok_ns;
	char engine[KVF_MAX_NAME];
	char url[256];
	char sidecar_id[40];
	char provider[64];
};

static int by_peer(const void *a, const void *b)
{
	return cmp_u64(((const struct peer_row *)a)->id,
	    ((const struct peer_row *)b)->id);
}

/*
 * The data path a transfer to this peer takes. Host regions always go
 * through the fabric from host memory ("host"). With GPU regions: CUDA
 * IPC on the same host ("same-host"), the NIC reading GPU memory when the
 * fabric granted FI_HMEM ("gpudirect"), else a copy through host memory
 * ("staged").
 */
static const char *path_of(const struct sc_daemon *d,
                           const struct peer_row *p)
{
	const struct xfer_fabric_info *fi;

	if (!p->any_cuda)
		return "host";
	if (p->same_host)
		return "same-host";
	fi = d->fabric ? xfer_fabric_info(d->fabric) : NULL;
	return fi && fi->hmem_cuda ? "gpudirect" : "staged";
}

static int peers(struct sc_daemon *d, const Kvf__Ctl__Request *req,
                 Kvf__Ctl__Reply *rep, char *err, size_t errlen)
{
	struct sc_registry *reg = d->registry;
	struct peer_row *rows = NULL;
	Kvf__Ctl__PeersReply *pr;
	struct sc_peer *p;
	size_t n = 0, pos = 0;
	uint64_t now = sc_now_ns();

	if (!reg) {
		snprintf(err, errlen, "peers: the sidecar is not serving "
		    "(starting or stopping)");
		return KVF_ECLOSED;
	}
	pthread_mutex_lock(&reg->lock);
	rows = calloc(reg->peers.len + 1, sizeof(*rows));
	while (rows && (p = sc_idmap_next(&reg->peers, &pos, NULL))) {
		struct peer_row *w = &rows[n++];
		w->id = p->id;
		w->same_host = strcmp(p->host_id, d->host_id) == 0;
		for (uint32_t i = 0; i < p->nregions; i++)
			if (p->regions[i].kind == XFER_MEM_CUDA)
				w->any_cuda = true;
		w->healthy = atomic_load(&p->healthy) != 0;
		w->nregions = p->nregions;
		w->nrails = p->nrails ? p->nrails : 1;
		w->rtt_ns = atomic_load(&p->rtt_ns);
		w->bytes = atomic_load(&p->bytes);
		w->errors = atomic_load(&p->errors);
		w->last_ok_ns = p->last_ok_ns;
		memcpy(w->engine, p->engine, sizeof(w->engine));
		memcpy(w->url, p->url, sizeof(w->url));
		memcpy(w->sidecar_id, p->sidecar_id, sizeof(w->sidecar_id));
		memcpy(w->provider, p->provider, sizeof(w->provider));
	}
	pthread_mutex_unlock(&reg->lock);
	if (!rows || !(pr = malloc(sizeof(*pr)))) {
		free(rows);
		return oom(err, errlen, "peers");
	}
	qsort(rows, n, sizeof(*rows), by_peer);
	kvf__ctl__peers_reply__init(pr);
	rep->body_case = KVF__CTL__REPLY__BODY_PEERS;
	rep->peers = pr;
	pr->peers = calloc(n + 1, sizeof(*pr->peers));
	for (size_t i = 0; pr->peers && i < n; i++) {
		Kvf__Ctl__PeerInfo *pi = malloc(sizeof(*pi));
		if (!pi)
			break;
		kvf__ctl__peer_info__init(pi);
		pr->peers[pr->n_peers++] = pi;
		pi->id = rows[i].id;
		pi->engine = sc_ctl_strdup(rows[i].engine);
		pi->url = sc_ctl_strdup(rows[i].url);
		pi->sidecar_id = sc_ctl_strdup(rows[i].sidecar_id);
		pi->provider = sc_ctl_strdup(rows[i].provider);
		pi->path = sc_ctl_strdup(path_of(d, &rows[i]));
		pi->healthy = rows[i].healthy;
		pi->rtt_ns = rows[i].rtt_ns;
		pi->bytes = rows[i].bytes;
		pi->errors = rows[i].errors;
		pi->regions = rows[i].nregions;
		pi->rails = rows[i].nrails;
		pi->same_host = rows[i].same_host;
		if (rows[i].last_ok_ns && now > rows[i].last_ok_ns)
			pi->last_ok_ms_ago = (now - rows[i].last_ok_ns) /
			    1000000u;
	}
	free(rows);
	if (pr->n_peers != n)
		return oom(err, errlen, "peers");
	return 0;
}

void sc_ctl_tables_register(void)
{
	sc_ctl_register(KVF__CTL__REQUEST__BODY_ENGINES, engines);
	sc_ctl_register(KVF__CTL__REQUEST__BODY_REGIONS, regions);
	sc_ctl_register(KVF__CTL__REQUEST__BODY_PEERS, peers);
}
