/*
 * sidecar/daemon.c - kvferryd's lifecycle: start-up checks, the three nng
 * listeners, the fabric, the modules, and an orderly shutdown.
 *
 * Start-up refuses anything it cannot serve with one message naming the
 * option and the reason, before any engine can connect: the directory of
 * each unix socket must exist (we create the last level when its parent
 * exists, nothing more) and be writable; a lock file <socket>.lock held
 * with flock() tells a live instance (refused, naming its pid) from a
 * socket left behind by a crash (unlinked, then reused); a port in use or
 * an address not on this host is refused by nng_listen; a forced provider
 * that is missing is refused by the fabric. Modules start once everything
 * listens and the fabric is open; the control server starts last, so a
 * control socket that answers means the sidecar is ready.
 *
 * Shutdown undoes this in reverse order and removes the socket and lock
 * files; `opened` records what exists so a half-finished start unwinds
 * through the same path.
 */
#include "sidecar/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "client/kvferry.h"
#include "proto/version.h"
#include "sidecar/ctl_server.h"
#include "sidecar/log.h"
#include "sidecar/metrics.h"
#include "sidecar/modules.h"
#include "sidecar/xfers.h"
#include "xfer/fabric.h"

enum {
	UP_ENGINE_SOCK = 1u << 0,
	UP_PEER_SOCK = 1u << 1,
	UP_CTL_SOCK = 1u << 2,
	UP_FABRIC = 1u << 3,
	UP_XFERS = 1u << 4,
	UP_PEERS = 1u << 5,
	UP_ENGINES = 1u << 6,
	UP_ENGINE_FILE = 1u << 7, /* our socket file exists: remove it */
	UP_CTL_FILE = 1u << 8,
};

/* Requests somewhat above the limit are still received, so the server can
 * answer them with an error instead of nng dropping the connection. */
#define SC_RECV_MAX ((size_t)KVF_MAX_CONTROL_MSG + 65536u)

uint64_t sc_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void make_ids(struct sc_daemon *d)
{
	uint8_t rnd[16];
	struct timespec ts;
	FILE *f;

	if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
		/* Early boot without entropy: time and pid still make two
		 * starts differ, which is all the id is for. */
		uint64_t x = sc_now_ns() ^ ((uint64_t)getpid() << 32);
		for (size_t i = 0; i < sizeof(rnd); i++, x = x * 6364136223846793005ull + 1)
			rnd[i] = (uint8_t)(x >> 56);
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(d->sidecar_id + 2 * i, 3, "%02x", rnd[i]);

	d->host_id[0] = '\0';
	if (d->cfg.host_id[0])
		snprintf(d->host_id, sizeof(d->host_id), "%s", d->cfg.host_id);
	else if ((f = fopen("/etc/machine-id", "r")) != NULL) {
		if (fgets(d->host_id, sizeof(d->host_id), f))
			d->host_id[strcspn(d->host_id, "\r\n")] = '\0';
		fclose(f);
	}
	if (d->host_id[0] == '\0' &&
	    gethostname(d->host_id, sizeof(d->host_id) - 1) != 0)
		snprintf(d->host_id, sizeof(d->host_id), "unknown");
	clock_gettime(CLOCK_REALTIME, &ts);
	d->epoch = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	d->start_ns = sc_now_ns();
}

/*
 * Make sure the directory of a unix socket exists and is writable, take
 * its lock file, and clear a stale socket. *lockfd gets the held lock.
 */
static int prepare_socket_path(const struct sc_daemon *d, enum sc_opt opt,
                               const char *path, int *lockfd, char *err,
                               size_t errlen)
{
	const char *as = sc_config_origin(&d->cfg, opt);
	char dir[PATH_MAX], parent[PATH_MAX], lock[PATH_MAX + 8], pidbuf[32];
	char tmp[PATH_MAX];
	struct stat st;
	int fd;
	ssize_t n;

	/* dirname() may write into its argument and return a pointer into
	 * it, so each call gets a scratch copy. */
	snprintf(tmp, sizeof(tmp), "%s", path);
	snprintf(dir, sizeof(dir), "%s", dirname(tmp));
	if (stat(dir, &st) != 0) {
		if (errno != ENOENT) {
			snprintf(err, errlen, "%s %s: cannot use directory "
			    "%s: %s", as, path, dir, strerror(errno));
			return KVF_ECONFIG;
		}
		snprintf(tmp, sizeof(tmp), "%s", dir);
		snprintf(parent, sizeof(parent), "%s", dirname(tmp));
		if (stat(parent, &st) != 0 || !S_ISDIR(st.st_mode)) {
			snprintf(err, errlen, "%s %s: directory %s does not "
			    "exist (nor its parent %s; create it first)", as,
			    path, dir, parent);
			return KVF_ECONFIG;
		}
		if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
			snprintf(err, errlen, "%s %s: cannot create directory "
			    "%s: %s", as, path, dir, strerror(errno));
			return KVF_ECONFIG;
		}
		sc_info("created directory %s for %s", dir, as);
		if (stat(dir, &st) != 0) {
			snprintf(err, errlen, "%s %s: cannot use directory "
			    "%s: %s", as, path, dir, strerror(errno));
			return KVF_ECONFIG;
		}
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s %s: %s is not a directory", as, path,
		    dir);
		return KVF_ECONFIG;
	}
	if (access(dir, W_OK | X_OK) != 0) {
		snprintf(err, errlen, "%s %s: directory %s is not writable: %s",
		    as, path, dir, strerror(errno));
		return KVF_ECONFIG;
	}

	snprintf(lock, sizeof(lock), "%s.lock", path);
	fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(err, errlen, "%s %s: cannot open lock file %s: %s",
		    as, path, lock, strerror(errno));
		return KVF_ESYSTEM;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		n = pread(fd, pidbuf, sizeof(pidbuf) - 1, 0);
		pidbuf[n > 0 ? n : 0] = '\0';
		pidbuf[strcspn(pidbuf, "\r\n")] = '\0';
		close(fd);
		if (e == EWOULDBLOCK) {
			snprintf(err, errlen, "%s %s: in use by another kvferryd "
			    "(pid %s, holding %s); stop it or choose another "
			    "socket", as, path, pidbuf[0] ? pidbuf : "unknown",
			    lock);
			return KVF_EEXIST;
		}
		snprintf(err, errlen, "%s %s: flock(%s) failed: %s", as, path,
		    lock, strerror(e));
		return KVF_ESYSTEM;
	}
	n = snprintf(pidbuf, sizeof(pidbuf), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, pidbuf, (size_t)n, 0) != n)
		sc_warn("%s: cannot write pid to %s: %s", as, lock,
		    strerror(errno));

	/* We hold the lock, so a socket file here belongs to no live
	 * kvferryd: a crashed one left it. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s %s: exists and is not a "
			    "socket; refusing to replace it", as, path);
			unlink(lock);
			close(fd);
			return KVF_EEXIST;
		}
		if (unlink(path) != 0) {
			snprintf(err, errlen, "%s %s: cannot remove the stale "
			    "socket: %s", as, path, strerror(errno));
			unlink(lock);
			close(fd);
			return KVF_ESYSTEM;
		}
		sc_warn("%s %s: removed a stale socket left by an instance "
		    "that did not shut down", as, path);
	}
	*lockfd = fd;
	return 0;
}

static void release_lock(const char *path, int *fd)
{
	char lock[PATH_MAX + 8];

	if (*fd < 0)
		return;
	snprintf(lock, sizeof(lock), "%s.lock", path);
	/* Unlink while still holding it, so no new instance can take a
	 * lock on a file that is about to vanish under it. */
	unlink(lock);
	close(*fd);
	*fd = -1;
}

static int listen_on(const struct sc_daemon *d, enum sc_opt opt,
                     nng_socket *sock, const char *url, const char *show,
                     char *err, size_t errlen)
{
	const char *as = sc_config_origin(&d->cfg, opt);
	nng_listener l;
	int rv;

	if ((rv = nng_rep0_open(sock)) != 0) {
		snprintf(err, errlen, "%s %s: nng_rep0_open() failed: %s", as,
		    show, nng_strerror(rv));
		return KVF_ESYSTEM;
	}
	nng_socket_set_size(*sock, NNG_OPT_RECVMAXSZ, SC_RECV_MAX);
	if ((rv = nng_listener_create(&l, *sock, url)) != 0) {
		snprintf(err, errlen, "%s %s: nng_listener_create() failed: %s",
		    as, show, nng_strerror(rv));
		return KVF_ECONFIG;
	}
	if (sc_url_ipc_path(url))
		nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS,
		    (int)d->cfg.socket_mode);
	if ((rv = nng_listener_start(l, 0)) != 0) {
		const char *why = nng_strerror(rv);
		if (rv == NNG_EADDRINUSE)
			why = "address in use: another process listens there";
		else if (rv == NNG_EADDRINVAL)
			why = "address not valid on this host";
		snprintf(err, errlen, "%s %s: nng_listener_start() failed: %s",
		    as, show, why);
		return rv == NNG_EADDRINUSE ? KVF_EBUSY : KVF_ECONFIG;
	}
	return 0;
}

static int set_group(const struct sc_daemon *d, const char *path, char *err,
                     size_t errlen)
{
	struct group *g;

	if (!d->cfg.socket_group[0])
		return 0;
	g = getgrnam(d->cfg.socket_group);
	if (!g || chown(path, (uid_t)-1, g->gr_gid) != 0) {
		snprintf(err, errlen, "%s %s: chown(%s) failed: %s",
		    sc_config_origin(&d->cfg, SC_OPT_SOCKET_GROUP),
		    d->cfg.socket_group, path,
		    g ? strerror(errno) : "no such group");
		return KVF_EPERM;
	}
	return 0;
}

static int open_rail(struct sc_daemon *d, const char *node,
                     const char *domain, char *err, size_t errlen)
{
	struct xfer_fabric_config fc = { 0 };
	struct xfer_fabric **slot = &d->rails[d->nrails];
	char why[512];
	int rv;

	fc.provider = d->cfg.provider;
	fc.node = node;
	fc.domain = domain;
	/* GPUDirect (FI_HMEM with CUDA) is asked of providers that can have
	 * it (efa, verbs). tcp has none, and shm grants FI_HMEM even in
	 * builds without CUDA (Debian's), then fails to register; both stage
	 * GPU memory instead. */
	fc.want_hmem = !(strncmp(d->cfg.provider, "tcp", 3) == 0 ||
	                 strcmp(d->cfg.provider, "shm") == 0 ||
	                 strcmp(d->cfg.provider, "sockets") == 0);
	/* Rail 0 receives the notifications, and with them the WRITEs that
	 * travel inside them (sidecar/xfer_inline.c): its slots hold the
	 * largest such message, rounded to keep each slot aligned. */
	if (d->nrails == 0 && d->cfg.inline_max) {
		size_t sz = (SC_INLINE_MSG_SIZE(d->cfg.inline_max) + 63) &
		            ~(size_t)63;
		fc.rx_size = (uint32_t)(sz > 1024 ? sz : 1024);
	}
	why[0] = '\0';
	rv = xfer_fabric_open(&fc, slot, why, sizeof(why));
	if (rv != 0) {
		*slot = NULL;
		if (d->cfg.provider[0])
			snprintf(err, errlen, "%s '%s': xfer_fabric_open() "
			    "failed on rail %u: %s",
			    sc_config_origin(&d->cfg, SC_OPT_PROVIDER),
			    d->cfg.provider, d->nrails, why);
		else
			snprintf(err, errlen, "fabric (auto provider%s%s): "
			    "xfer_fabric_open() failed on rail %u: %s",
			    node ? ", address " : "", node ? node : "",
			    d->nrails, why);
		return rv;
	}
	if (d->nrails > 0 &&
	    strcmp(xfer_fabric_info(*slot)->provider,
	           xfer_fabric_info(d->rails[0])->provider) != 0) {
		snprintf(err, errlen, "rail %u: provider %s differs from rail "
		    "0's %s; every rail must use one provider (set %s)",
		    d->nrails, xfer_fabric_info(*slot)->provider,
		    xfer_fabric_info(d->rails[0])->provider,
		    sc_config_origin(&d->cfg, SC_OPT_PROVIDER));
		xfer_fabric_close(*slot);
		*slot = NULL;
		return KVF_ECONFIG;
	}
	d->nrails++;
	return 0;
}

/* The NICs --rails names: a count, "all", or a list of domain names. */
static int open_rails_by_domain(struct sc_daemon *d, char *err,
                                size_t errlen)
{
	char names[SC_MAX_RAILS][64];
	const char *spec = d->cfg.rails;
	int n = 0, want;
	int rv;

	if ((spec[0] >= '0' && spec[0] <= '9') || strcmp(spec, "all") == 0) {
		rv = xfer_fabric_domains(d->cfg.provider, names, SC_MAX_RAILS,
		                         &n);
		if (rv != 0 || n == 0) {
			snprintf(err, errlen, "%s %s: no fabric domains found "
			    "for provider '%s'",
			    sc_config_origin(&d->cfg, SC_OPT_RAILS), spec,
			    d->cfg.provider[0] ? d->cfg.provider : "(auto)");
			return rv ? rv : KVF_ECONFIG;
		}
		want = strcmp(spec, "all") == 0 ? n : atoi(spec);
		if (want > n) {
			char list[SC_MAX_RAILS * 66] = "";
			for (int i = 0; i < n; i++)
				snprintf(list + strlen(list),
				    sizeof list - strlen(list), "%s%s",
				    i ? ", " : "", names[i]);
			snprintf(err, errlen, "%s %s: the provider offers %d "
			    "NIC%s (%s)",
			    sc_config_origin(&d->cfg, SC_OPT_RAILS), spec, n,
			    n == 1 ? "" : "s", list);
			return KVF_ECONFIG;
		}
		for (int i = 0; i < want; i++)
			if ((rv = open_rail(d, NULL, names[i], err, errlen)))
				return rv;
		return 0;
	}
	for (const char *p = spec; *p;) {
		size_t len = strcspn(p, ",");
		char name[64];
		snprintf(name, sizeof name, "%.*s", (int)len, p);
		if ((rv = open_rail(d, NULL, name, err, errlen)))
			return rv;
		p += len + (p[len] == ',');
	}
	return 0;
}

static int open_fabric(struct sc_daemon *d, char *err, size_t errlen)
{
	const char *addrs = d->cfg.fabric_addr;
	bool many_addrs = strchr(addrs, ',') != NULL;
	int rv;

	if (d->cfg.rails[0] && strcmp(d->cfg.rails, "1") != 0) {
		if (many_addrs) {
			snprintf(err, errlen, "%s and several addresses in %s: "
			    "name the rails one way",
			    sc_config_origin(&d->cfg, SC_OPT_RAILS),
			    sc_config_origin(&d->cfg, SC_OPT_FABRIC_ADDR));
			return KVF_ECONFIG;
		}
		return open_rails_by_domain(d, err, errlen);
	}
	if (!addrs[0])
		return open_rail(d, NULL, NULL, err, errlen);
	for (const char *p = addrs; *p;) {
		size_t len = strcspn(p, ",");
		char node[128];
		snprintf(node, sizeof node, "%.*s", (int)len, p);
		if ((rv = open_rail(d, node, NULL, err, errlen)))
			return rv;
		p += len + (p[len] == ',');
	}
	return 0;
}

int sc_daemon_start(struct sc_daemon *d, const struct sc_config *cfg,
                    char *err, size_t errlen)
{
	const char *ctl_path = sc_url_ipc_path(cfg->control_url);
	char url[SC_PATH_MAX + 16];
	const struct xfer_fabric_info *fi;
	int rv;

	memset(d, 0, sizeof(*d));
	d->cfg = *cfg;
	d->engine_lock_fd = -1;
	d->ctl_lock_fd = -1;
	make_ids(d);
	sc_config_advertise(&d->cfg, d->advertise_url,
	    sizeof(d->advertise_url));

	if ((rv = prepare_socket_path(d, SC_OPT_ENGINE_SOCKET,
	         d->cfg.engine_socket, &d->engine_lock_fd, err, errlen)))
		goto fail;
	if (ctl_path && strcmp(ctl_path, d->cfg.engine_socket) == 0) {
		snprintf(err, errlen, "%s %s: the same path as %s",
		    sc_config_origin(&d->cfg, SC_OPT_CONTROL_URL),
		    d->cfg.control_url,
		    sc_config_origin(&d->cfg, SC_OPT_ENGINE_SOCKET));
		rv = KVF_ECONFIG;
		goto fail;
	}
	if (ctl_path && (rv = prepare_socket_path(d, SC_OPT_CONTROL_URL,
	                     ctl_path, &d->ctl_lock_fd, err, errlen)))
		goto fail;

	snprintf(url, sizeof(url), "ipc://%s", d->cfg.engine_socket);
	rv = listen_on(d, SC_OPT_ENGINE_SOCKET, &d->engine_sock, url,
	    d->cfg.engine_socket, err, errlen);
	d->opened |= UP_ENGINE_SOCK;
	if (rv)
		goto fail;
	d->opened |= UP_ENGINE_FILE;
	if ((rv = set_group(d, d->cfg.engine_socket, err, errlen)))
		goto fail;

	rv = listen_on(d, SC_OPT_PEER_URL, &d->peer_sock, d->cfg.peer_url,
	    d->cfg.peer_url, err, errlen);
	d->opened |= UP_PEER_SOCK;
	if (rv)
		goto fail;

	rv = listen_on(d, SC_OPT_CONTROL_URL, &d->ctl_sock,
	    d->cfg.control_url, d->cfg.control_url, err, errlen);
	d->opened |= UP_CTL_SOCK;
	if (rv)
		goto fail;
	if (ctl_path) {
		d->opened |= UP_CTL_FILE;
		if ((rv = set_group(d, ctl_path, err, errlen)))
			goto fail;
	}

	d->opened |= UP_FABRIC;
	rv = open_fabric(d, err, errlen);
	d->fabric = d->rails[0];
	if (rv)
		goto fail;
	if (d->cfg.inline_max)
		d->inline_msg_max = xfer_fabric_info(d->fabric)->msg_max;
	for (uint32_t i = 0; i < d->nrails; i++) {
		fi = xfer_fabric_info(d->rails[i]);
		sc_info("fabric: rail %u: provider %s, fabric %s, domain %s, "
		    "address %s%s%s%s", i, fi->provider, fi->fabric,
		    fi->domain, fi->addr_str,
		    fi->hmem_cuda ? ", CUDA memory" : "",
		    fi->pci_path[0] ? ", NIC at " : "", fi->pci_path);
	}

	/* The modules log their own reason; ours names the step. */
	if ((rv = sc_xfers_start(d))) {
		snprintf(err, errlen, "transfers: sc_xfers_start() failed: %s",
		    kvf_strerror(rv));
		goto fail;
	}
	d->opened |= UP_XFERS;
	if ((rv = sc_peers_start(d))) {
		snprintf(err, errlen, "peers: sc_peers_start() failed: %s",
		    kvf_strerror(rv));
		goto fail;
	}
	d->opened |= UP_PEERS;
	if ((rv = sc_engines_start(d))) {
		snprintf(err, errlen, "engines: sc_engines_start() failed: %s",
		    kvf_strerror(rv));
		goto fail;
	}
	d->opened |= UP_ENGINES;
	if ((rv = sc_metrics_start(d, &d->metrics, err, errlen)))
		goto fail;

	if ((rv = sc_ctl_server_start(d, &d->ctl, err, errlen)))
		goto fail;
	sc_info("kvferryd ready: version %s, pid %d, id %s, engine socket "
	    "%s, control %s, peers %s (advertised %s), provider %s, %u "
	    "rail%s", KVF_VERSION_STRING, (int)getpid(), d->sidecar_id,
	    d->cfg.engine_socket, d->cfg.control_url, d->cfg.peer_url,
	    d->advertise_url, xfer_fabric_info(d->fabric)->provider,
	    d->nrails, d->nrails == 1 ? "" : "s");
	return 0;

fail:
	sc_daemon_stop(d);
	return rv;
}

void sc_daemon_stop(struct sc_daemon *d)
{
	const char *ctl_path = sc_url_ipc_path(d->cfg.control_url);

	atomic_store(&d->stopping, 1);
	sc_ctl_server_stop(d->ctl);
	d->ctl = NULL;
	sc_metrics_stop(d->metrics);
	d->metrics = NULL;
	if (d->opened & UP_ENGINES)
		sc_engines_stop(d);
	if (d->opened & UP_PEERS)
		sc_peers_stop(d);
	if (d->opened & UP_XFERS)
		sc_xfers_stop(d);
	if (d->opened & UP_CTL_SOCK)
		nng_close(d->ctl_sock);
	if (d->opened & UP_PEER_SOCK)
		nng_close(d->peer_sock);
	if (d->opened & UP_ENGINE_SOCK)
		nng_close(d->engine_sock);
	if (d->opened & UP_FABRIC)
		for (uint32_t i = 0; i < d->nrails; i++) {
			xfer_fabric_close(d->rails[i]);
			d->rails[i] = NULL;
		}
	d->nrails = 0;
	d->fabric = NULL;
	/* nng may already have removed them on close; either way they go
	 * before the locks, so a successor never finds our socket. */
	if ((d->opened & UP_ENGINE_FILE) && unlink(d->cfg.engine_socket) != 0 &&
	    errno != ENOENT)
		sc_warn("cannot remove %s: %s", d->cfg.engine_socket,
		    strerror(errno));
	if ((d->opened & UP_CTL_FILE) && ctl_path && unlink(ctl_path) != 0 &&
	    errno != ENOENT)
		sc_warn("cannot remove %s: %s", ctl_path, strerror(errno));
	if (ctl_path)
		release_lock(ctl_path, &d->ctl_lock_fd);
	release_lock(d->cfg.engine_socket, &d->engine_lock_fd);
	d->opened = 0;
}
