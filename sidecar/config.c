/*
 * sidecar/config.c - parses kvferryd's options.
 *
 * One table describes every option: its flag, its environment variable,
 * its default, its help line and the function that checks and stores a
 * value. Loading walks the table three times: defaults, then the
 * environment, then argv, so a flag overrides its variable. Each setter
 * returns NULL or the reason a value is refused; the loader prefixes the
 * option as the user wrote it, so every message reads
 * "--log-level 'loud': must be error, warn, info or debug".
 */
#include "sidecar/config.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/kvferry.h"
#include "proto/version.h"
#include "xfer/store.h"

typedef const char *(*setter_fn)(struct sc_config *c, const char *v,
                                 char *why, size_t whylen);

struct opt {
	enum sc_opt id;
	const char *flag;
	const char *env;
	const char *metavar;
	const char *def;
	const char *help;
	setter_fn set;
};

static const char *copy_str(char *dst, size_t dstlen, const char *v,
                            char *why, size_t whylen)
{
	size_t n = strlen(v);

	if (n >= dstlen) {
		snprintf(why, whylen, "too long (%zu bytes, the limit is %zu)",
		    n, dstlen - 1);
		return why;
	}
	memcpy(dst, v, n + 1);
	return NULL;
}

int sc_host_is_wildcard(const char *host)
{
	return host[0] == '\0' || strcmp(host, "*") == 0 ||
	    strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 ||
	    strcmp(host, "[::]") == 0;
}

static int split_host_port(const char *url, const char *scheme, char *host,
                           size_t hostlen, uint16_t *port, char *err,
                           size_t errlen)
{
	size_t sl = strlen(scheme);
	const char *hp, *colon, *h, *hend;
	char *end;
	long p;

	if (strncmp(url, scheme, sl) != 0) {
		snprintf(err, errlen, "must start with %s", scheme);
		return KVF_EINVAL;
	}
	hp = url + sl;
	if (hp[0] == '[') {
		hend = strchr(hp, ']');
		if (!hend || hend[1] != ':') {
			snprintf(err, errlen,
			    "expected %s[ipv6]:port", scheme);
			return KVF_EINVAL;
		}
		h = hp + 1;
		colon = hend + 1;
	} else {
		colon = strrchr(hp, ':');
		if (!colon) {
			snprintf(err, errlen, "expected %shost:port", scheme);
			return KVF_EINVAL;
		}
		h = hp;
		hend = colon;
	}
	if ((size_t)(hend - h) >= hostlen) {
		snprintf(err, errlen, "host name too long");
		return KVF_EINVAL;
	}
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno || p < 1 || p > 65535) {
		snprintf(err, errlen, "port '%s' is not a number in 1..65535",
		    colon + 1);
		return KVF_EINVAL;
	}
	memcpy(host, h, (size_t)(hend - h));
	host[hend - h] = '\0';
	*port = (uint16_t)p;
	return 0;
}

int sc_url_split_tcp(const char *url, char *host, size_t hostlen,
                     uint16_t *port, char *err, size_t errlen)
{
	return split_host_port(url, "tcp://", host, hostlen, port, err,
	    errlen);
}

const char *sc_url_ipc_path(const char *url)
{
	return strncmp(url, "ipc://", 6) == 0 ? url + 6 : NULL;
}

static const char *set_engine_socket(struct sc_config *c, const char *v,
                                     char *why, size_t whylen)
{
	if (v[0] == '\0')
		return "must not be empty";
	if (strncmp(v, "ipc://", 6) == 0)
		return "is a path, not a URL (drop the ipc:// prefix)";
	/* The lock file sits next to it and must fit too. */
	if (strlen(v) + 5 >= PATH_MAX)
		return "path too long";
	return copy_str(c->engine_socket, sizeof(c->engine_socket), v, why,
	    whylen);
}

static const char *check_url(const char *v, int allow_ipc, char *why,
                             size_t whylen)
{
	char host[128], err[128];
	uint16_t port;
	const char *path;

	if (allow_ipc && (path = sc_url_ipc_path(v)) != NULL) {
		if (path[0] == '\0')
			return "ipc:// needs a socket path";
		if (strlen(path) >= SC_PATH_MAX) {
			snprintf(why, whylen,
			    "socket path too long (%zu bytes, the limit is "
			    "%d)", strlen(path), SC_PATH_MAX - 1);
			return why;
		}
		return NULL;
	}
	if (strncmp(v, "tcp://", 6) != 0) {
		snprintf(why, whylen, "must be %stcp://host:port",
		    allow_ipc ? "ipc:///path or " : "");
		return why;
	}
	if (sc_url_split_tcp(v, host, sizeof(host), &port, err,
	        sizeof(err)) != 0) {
		snprintf(why, whylen, "%s", err);
		return why;
	}
	return NULL;
}

static const char *set_control_url(struct sc_config *c, const char *v,
                                   char *why, size_t whylen)
{
	const char *e = check_url(v, 1, why, whylen);

	return e ? e : copy_str(c->control_url, sizeof(c->control_url), v,
	    why, whylen);
}

static const char *set_peer_url(struct sc_config *c, const char *v,
                                char *why, size_t whylen)
{
	const char *e = check_url(v, 0, why, whylen);

	return e ? e : copy_str(c->peer_url, sizeof(c->peer_url), v, why,
	    whylen);
}

static const char *set_advertise_url(struct sc_config *c, const char *v,
                                     char *why, size_t whylen)
{
	char host[128], err[128];
	uint16_t port;

	if (v[0] != '\0') {
		const char *e = check_url(v, 0, why, whylen);
		if (e)
			return e;
		sc_url_split_tcp(v, host, sizeof(host), &port, err,
		    sizeof(err));
		if (sc_host_is_wildcard(host))
			return "must name a host peers can reach, not a "
			       "wildcard";
	}
	return copy_str(c->advertise_url, sizeof(c->advertise_url), v, why,
	    whylen);
}

static const char *set_provider(struct sc_config *c, const char *v,
                                char *why, size_t whylen)
{
	for (const char *p = v; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		        *p == '_' || *p == ';' || *p == '-')) {
			snprintf(why, whylen,
			    "'%c' cannot appear in a provider name (e.g. "
			    "tcp;ofi_rxm, shm, efa, verbs;ofi_rxm)", *p);
			return why;
		}
	}
	return copy_str(c->provider, sizeof(c->provider), v, why, whylen);
}

/* A comma-separated list of at most 32 non-empty names; NULL or why. */
static const char *check_list(const char *v, const char *what, char *why,
                              size_t whylen)
{
	int n = 0;

	for (const char *p = v; *p;) {
		size_t len = strcspn(p, ",");
		if (len == 0) {
			snprintf(why, whylen, "an empty %s in the list", what);
			return why;
		}
		if (++n > 32)
			return "at most 32 rails";
		p += len;
		if (*p == ',' && *++p == '\0') {
			snprintf(why, whylen, "an empty %s in the list", what);
			return why;
		}
	}
	return NULL;
}

static const char *set_fabric_addr(struct sc_config *c, const char *v,
                                   char *why, size_t whylen)
{
	if (strchr(v, '/') || strchr(v, ' '))
		return "must be a host name or address (or a comma-separated "
		       "list of them, one rail each), not a URL";
	if (check_list(v, "address", why, whylen))
		return why;
	return copy_str(c->fabric_addr, sizeof(c->fabric_addr), v, why,
	    whylen);
}

static const char *set_rails(struct sc_config *c, const char *v, char *why,
                             size_t whylen)
{
	char *end;
	unsigned long n;

	if (v[0] >= '0' && v[0] <= '9') {
		errno = 0;
		n = strtoul(v, &end, 10);
		if (*end != '\0' || errno || n < 1 || n > 32)
			return "must be a count in 1..32, all, or NIC (fabric "
			       "domain) names separated by commas";
	} else if (strchr(v, '/') || strchr(v, ' ')) {
		return "must be a count in 1..32, all, or NIC (fabric domain) "
		       "names separated by commas";
	} else if (check_list(v, "NIC name", why, whylen)) {
		return why;
	}
	return copy_str(c->rails, sizeof(c->rails), v, why, whylen);
}

/* Bytes with an optional K, M, G or T suffix (powers of 1024); bad is
 * the message for a value that is not such a number. */
static const char *parse_bytes(const char *v, uint64_t *out, const char *bad)
{
	static const char units[] = "KMGT";
	unsigned long long n;
	const char *u;
	char *end;
	int shift = 0;

	errno = 0;
	if (v[0] < '0' || v[0] > '9')
		return bad;
	n = strtoull(v, &end, 10);
	if (*end && (u = strchr(units, end[0] & ~0x20)) != NULL) {
		shift = 10 * (int)(u - units + 1);
		end++;
		if (end[0] == 'i' && end[1] == 'B')
			end += 2;
		else if (end[0] == 'B')
			end++;
	}
	if (*end != '\0' || errno)
		return bad;
	if (shift && n > (UINT64_MAX >> shift))
		return "too large";
	*out = (uint64_t)n << shift;
	return NULL;
}

#define BYTES_BAD "must be a number of bytes, optionally with a K, M, G " \
	"or T suffix (powers of 1024), e.g. 200G"

static const char *set_stripe_min(struct sc_config *c, const char *v,
                                  char *why, size_t whylen)
{
	(void)why;
	(void)whylen;
	return parse_bytes(v, &c->stripe_min, BYTES_BAD);
}

/* parse_bytes into *out only when lo <= n <= hi; each bound its reason. */
static const char *parse_bytes_in(const char *v, uint64_t *out, uint64_t lo,
                                  const char *below, uint64_t hi,
                                  const char *above)
{
	uint64_t n = 0;
	const char *r = parse_bytes(v, &n, BYTES_BAD);

	if (r)
		return r;
	if (n < lo)
		return below;
	if (n > hi)
		return above;
	*out = n;
	return NULL;
}

static const char *set_inline_max(struct sc_config *c, const char *v,
                                  char *why, size_t whylen)
{
	(void)why;
	(void)whylen;
	return parse_bytes_in(v, &c->inline_max, 0, NULL, SC_INLINE_MAX_LIMIT,
	                      "must be at most 64K (larger writes are faster "
	                      "as RDMA)");
}

static const char *set_stripe_chunk(struct sc_config *c, const char *v,
                                    char *why, size_t whylen)
{
	(void)why;
	(void)whylen;
	return parse_bytes_in(v, &c->stripe_chunk, 4096,
	                      "must be at least 4K", UINT64_MAX, NULL);
}

static const char *set_poll_spin(struct sc_config *c, const char *v,
                                 char *why, size_t whylen)
{
	char *end;
	unsigned long n;

	(void)why;
	(void)whylen;
	errno = 0;
	if (v[0] < '0' || v[0] > '9')
		return "must be microseconds in 0..1000000";
	n = strtoul(v, &end, 10);
	if (*end != '\0' || errno || n > 1000000)
		return "must be microseconds in 0..1000000";
	c->poll_spin_us = (uint32_t)n;
	return NULL;
}

static const char *set_log_level(struct sc_config *c, const char *v,
                                 char *why, size_t whylen)
{
	int l = sc_log_parse_level(v);

	if (l < 0)
		return "must be error, warn, info or debug";
	c->log_level = (enum sc_log_level)l;
	return NULL;
}

static const char *set_log_format(struct sc_config *c, const char *v,
                                  char *why, size_t whylen)
{
	if (strcmp(v, "text") == 0)
		c->log_format = SC_LOG_TEXT;
	else if (strcmp(v, "json") == 0)
		c->log_format = SC_LOG_JSON;
	else
		return "must be text or json";
	return NULL;
}

static const char *parse_ms(uint32_t *dst, const char *v, uint32_t max,
                            char *why, size_t whylen)
{
	char *end;
	unsigned long long n;

	errno = 0;
	if (v[0] < '0' || v[0] > '9')
		n = 0, end = (char *)v;
	else
		n = strtoull(v, &end, 10);
	if (end == v || *end != '\0' || errno || n < 1 || n > max) {
		snprintf(why, whylen,
		    "must be a whole number of milliseconds in 1..%u", max);
		return why;
	}
	*dst = (uint32_t)n;
	return NULL;
}

static const char *set_xfer_timeout(struct sc_config *c, const char *v,
                                    char *why, size_t whylen)
{
	return parse_ms(&c->xfer_timeout_ms, v, 3600000, why, whylen);
}

static const char *set_handshake_timeout(struct sc_config *c, const char *v,
                                         char *why, size_t whylen)
{
	return parse_ms(&c->handshake_timeout_ms, v, 600000, why, whylen);
}

static const char *set_heartbeat(struct sc_config *c, const char *v,
                                 char *why, size_t whylen)
{
	return parse_ms(&c->heartbeat_ms, v, 600000, why, whylen);
}

static const char *set_secret_file(struct sc_config *c, const char *v,
                                   char *why, size_t whylen)
{
	if (v[0] != '\0' && access(v, R_OK) != 0) {
		snprintf(why, whylen, "cannot read it: %s", strerror(errno));
		return why;
	}
	return copy_str(c->secret_file, sizeof(c->secret_file), v, why,
	    whylen);
}

static const char *set_socket_mode(struct sc_config *c, const char *v,
                                   char *why, size_t whylen)
{
	char *end;
	unsigned long m;

	errno = 0;
	m = strtoul(v, &end, 8);
	if (v[0] < '0' || v[0] > '7' || *end != '\0' || errno || m > 0777)
		return "must be octal permission bits in 0..0777, e.g. 0660";
	if ((m & 0600) != 0600)
		return "must let the owner read and write (0600 at least)";
	c->socket_mode = (uint32_t)m;
	return NULL;
}

static const char *set_socket_group(struct sc_config *c, const char *v,
                                    char *why, size_t whylen)
{
	if (v[0] != '\0' && getgrnam(v) == NULL) {
		snprintf(why, whylen, "no such group");
		return why;
	}
	return copy_str(c->socket_group, sizeof(c->socket_group), v, why,
	    whylen);
}

static const char *set_metrics_url(struct sc_config *c, const char *v,
                                   char *why, size_t whylen)
{
	char host[128], err[128];
	uint16_t port;

	if (v[0] != '\0' && split_host_port(v, "http://", host,
	        sizeof(host), &port, err, sizeof(err)) != 0) {
		snprintf(why, whylen, "%s (e.g. http://0.0.0.0:9464)", err);
		return why;
	}
	return copy_str(c->metrics_url, sizeof(c->metrics_url), v, why,
	    whylen);
}

static const char *set_host_id(struct sc_config *c, const char *v,
                               char *why, size_t whylen)
{
	for (const char *p = v; *p; p++)
		if (*p <= ' ' || *p > '~')
			return "must be printable without spaces";
	return copy_str(c->host_id, sizeof(c->host_id), v, why, whylen);
}

static const char *set_store_dir(struct sc_config *c, const char *v,
                                 char *why, size_t whylen)
{
	/* Whether it exists and is writable is checked at start-up, where
	 * the store locks it. */
	if (v[0] != '\0' && strlen(v) >= PATH_MAX - 16)
		return "path too long";
	return copy_str(c->store_dir, sizeof(c->store_dir), v, why, whylen);
}

static const char *set_store_capacity(struct sc_config *c, const char *v,
                                      char *why, size_t whylen)
{
	(void)why;
	(void)whylen;
	return parse_bytes(v, &c->store_capacity, BYTES_BAD "; 0 = no limit");
}

static const char *set_store_queue_depth(struct sc_config *c, const char *v,
                                         char *why, size_t whylen)
{
	char *end;
	unsigned long n;

	errno = 0;
	if (v[0] < '0' || v[0] > '9')
		return "must be a whole number in 1..4096";
	n = strtoul(v, &end, 10);
	if (*end != '\0' || errno || n < 1 || n > 4096)
		return "must be a whole number in 1..4096";
	c->store_queue_depth = (uint32_t)n;
	return NULL;
}

static const char *set_store_direct(struct sc_config *c, const char *v,
                                    char *why, size_t whylen)
{
	int m = xfer_store_direct_parse(v);

	if (m < 0)
		return "must be auto, on or off";
	c->store_direct = m;
	return NULL;
}

static const char *set_store_fsync(struct sc_config *c, const char *v,
                                   char *why, size_t whylen)
{
	int m = xfer_store_sync_parse(v);

	if (m < 0)
		return "must be none, data or full";
	c->store_fsync = m;
	return NULL;
}

static const struct opt opts[SC_OPT_COUNT] = {
	{ SC_OPT_ENGINE_SOCKET, "--engine-socket", "KVFERRY_ENGINE_SOCKET",
	    "PATH", "/run/kvferry/engine.sock",
	    "unix socket engines connect to", set_engine_socket },
	{ SC_OPT_CONTROL_URL, "--control-url", "KVFERRY_CONTROL_URL", "URL",
	    "ipc:///run/kvferry/control.sock",
	    "kvferryctl endpoint: ipc:///path or tcp://host:port",
	    set_control_url },
	{ SC_OPT_PEER_URL, "--peer-url", "KVFERRY_PEER_URL", "URL",
	    "tcp://0.0.0.0:18515",
	    "listener other sidecars dial for handshakes", set_peer_url },
	{ SC_OPT_ADVERTISE_URL, "--advertise-url", "KVFERRY_ADVERTISE_URL",
	    "URL", "",
	    "peer URL told to others (default: --peer-url, its wildcard "
	    "host replaced by the hostname)",
	    set_advertise_url },
	{ SC_OPT_PROVIDER, "--provider", "KVFERRY_PROVIDER", "NAME", "",
	    "libfabric provider, e.g. efa, tcp;ofi_rxm, shm (default: auto)",
	    set_provider },
	{ SC_OPT_FABRIC_ADDR, "--fabric-addr", "KVFERRY_FABRIC_ADDR", "HOST",
	    "",
	    "local address of the fabric endpoint (default: the host of "
	    "--peer-url unless a wildcard)",
	    set_fabric_addr },
	{ SC_OPT_RAILS, "--rails", "KVFERRY_RAILS", "N|all|NIC,...", "",
	    "rails by NIC: the first N fabric domains, all of them, or the "
	    "named ones (default: one rail)",
	    set_rails },
	{ SC_OPT_STRIPE_MIN, "--stripe-min", "KVFERRY_STRIPE_MIN", "BYTES",
	    "256K",
	    "transfers this large are striped over the rails; smaller ones "
	    "go whole to the least busy rail",
	    set_stripe_min },
	{ SC_OPT_STRIPE_CHUNK, "--stripe-chunk", "KVFERRY_STRIPE_CHUNK",
	    "BYTES", "1M",
	    "largest piece of a striped transfer on one rail",
	    set_stripe_chunk },
	{ SC_OPT_INLINE_MAX, "--inline-max", "KVFERRY_INLINE_MAX", "BYTES",
	    "8K",
	    "WRITEs up to this size travel inside the notification message "
	    "instead of as RDMA writes (0: never)",
	    set_inline_max },
	{ SC_OPT_POLL_SPIN, "--poll-spin-us", "KVFERRY_POLL_SPIN_US", "US",
	    "50",
	    "how long an idle progress thread polls before it sleeps "
	    "(latency against CPU)",
	    set_poll_spin },
	{ SC_OPT_LOG_LEVEL, "--log-level", "KVFERRY_LOG_LEVEL", "LEVEL",
	    "info", "error, warn, info or debug", set_log_level },
	{ SC_OPT_LOG_FORMAT, "--log-format", "KVFERRY_LOG_FORMAT", "FORMAT",
	    "text", "text or json, one line per event on stderr",
	    set_log_format },
	{ SC_OPT_XFER_TIMEOUT, "--xfer-timeout-ms", "KVFERRY_XFER_TIMEOUT_MS",
	    "MS", "30000", "deadline of one transfer", set_xfer_timeout },
	{ SC_OPT_HANDSHAKE_TIMEOUT, "--handshake-timeout-ms",
	    "KVFERRY_HANDSHAKE_TIMEOUT_MS", "MS", "5000",
	    "deadline of a peer handshake", set_handshake_timeout },
	{ SC_OPT_HEARTBEAT, "--heartbeat-ms", "KVFERRY_HEARTBEAT_MS", "MS",
	    "1000", "interval of peer liveness checks", set_heartbeat },
	{ SC_OPT_SECRET_FILE, "--secret-file", "KVFERRY_SECRET_FILE", "PATH",
	    "", "shared secret peers must prove in the handshake (default: "
	    "none)",
	    set_secret_file },
	{ SC_OPT_SOCKET_MODE, "--socket-mode", "KVFERRY_SOCKET_MODE", "OCTAL",
	    "0660", "permissions of the unix sockets", set_socket_mode },
	{ SC_OPT_SOCKET_GROUP, "--socket-group", "KVFERRY_SOCKET_GROUP",
	    "GROUP", "", "group owning the unix sockets (default: ours)",
	    set_socket_group },
	{ SC_OPT_METRICS_URL, "--metrics-url", "KVFERRY_METRICS_URL", "URL",
	    "", "/metrics, /livez, /readyz on http://host:port (default: off)",
	    set_metrics_url },
	{ SC_OPT_HOST_ID, "--host-id", "KVFERRY_HOST_ID", "ID", "",
	    "sidecars with equal host ids copy GPU memory directly "
	    "(default: /etc/machine-id)",
	    set_host_id },
	{ SC_OPT_STORE_DIR, "--store-dir", "KVFERRY_STORE_DIR", "DIR", "",
	    "directory of the KV storage tier (saved KV objects); default: "
	    "storage off",
	    set_store_dir },
	{ SC_OPT_STORE_CAPACITY, "--store-capacity", "KVFERRY_STORE_CAPACITY",
	    "BYTES", "0",
	    "bytes of stored objects kept before the least recently used are "
	    "evicted; K, M, G, T suffixes; 0 = no limit",
	    set_store_capacity },
	{ SC_OPT_STORE_QUEUE_DEPTH, "--store-queue-depth",
	    "KVFERRY_STORE_QUEUE_DEPTH", "N", "64",
	    "storage I/Os in flight (io_uring queue depth), 1..4096",
	    set_store_queue_depth },
	{ SC_OPT_STORE_DIRECT, "--store-direct", "KVFERRY_STORE_DIRECT",
	    "MODE", "auto",
	    "O_DIRECT for aligned blocks: auto (when the filesystem takes "
	    "it), on or off",
	    set_store_direct },
	{ SC_OPT_STORE_FSYNC, "--store-fsync", "KVFERRY_STORE_FSYNC", "MODE",
	    "none",
	    "durability of a save: none, data (fdatasync) or full (fsync, "
	    "rename, fsync of the directory)",
	    set_store_fsync },
};

static int apply(struct sc_config *c, const struct opt *o, const char *v,
                 const char *as, char *err, size_t errlen)
{
	char why[256];
	const char *r = o->set(c, v, why, sizeof(why));

	if (r) {
		snprintf(err, errlen, "%s '%s': %s", as, v, r);
		return KVF_ECONFIG;
	}
	snprintf(c->origin[o->id], sizeof(c->origin[o->id]), "%s", as);
	return 0;
}

void sc_config_defaults(struct sc_config *c)
{
	char err[256];

	memset(c, 0, sizeof(*c));
	for (int i = 0; i < SC_OPT_COUNT; i++) {
		char as[48];
		snprintf(as, sizeof(as), "%s (default)", opts[i].flag);
		/* Defaults are ours and valid, except a group that does not
		 * exist; none have one. */
		apply(c, &opts[i], opts[i].def, as, err, sizeof(err));
	}
}

const char *sc_config_origin(const struct sc_config *c, enum sc_opt o)
{
	return c->origin[o];
}

void sc_config_usage(FILE *f)
{
	fprintf(f,
	    "usage: kvferryd [OPTION]...\n"
	    "kvferry sidecar: moves KV cache between serving engines over "
	    "libfabric.\n\n"
	    "Every option can also be set by its environment variable; a "
	    "flag wins.\n\n");
	for (int i = 0; i < SC_OPT_COUNT; i++) {
		char lhs[64];
		snprintf(lhs, sizeof(lhs), "%s %s", opts[i].flag,
		    opts[i].metavar);
		fprintf(f, "  %-28s %s\n  %-28s   env %s", lhs, opts[i].help,
		    "", opts[i].env);
		if (opts[i].def[0])
			fprintf(f, ", default %s", opts[i].def);
		fputc('\n', f);
	}
	fprintf(f,
	    "  %-28s print this help and exit\n"
	    "  %-28s print the version and exit\n\n"
	    "Exit status: 0 after a clean shutdown (SIGTERM, SIGINT), 1 when "
	    "start-up fails,\n2 for a bad option.\n",
	    "-h, --help", "-V, --version");
}

static const struct opt *find_flag(const char *arg, size_t n)
{
	for (int i = 0; i < SC_OPT_COUNT; i++)
		if (strlen(opts[i].flag) == n &&
		    strncmp(opts[i].flag, arg, n) == 0)
			return &opts[i];
	return NULL;
}

static void derive(struct sc_config *c)
{
	char host[128], err[128];
	uint16_t port;

	if (c->fabric_addr[0] == '\0' &&
	    sc_url_split_tcp(c->peer_url, host, sizeof(host), &port, err,
	        sizeof(err)) == 0 &&
	    !sc_host_is_wildcard(host) && strlen(host) < sizeof(c->fabric_addr))
		snprintf(c->fabric_addr, sizeof(c->fabric_addr), "%s", host);
}

void sc_config_advertise(const struct sc_config *c, char *buf, size_t len)
{
	char host[128], err[128], hn[256];
	uint16_t port = 0;

	if (c->advertise_url[0]) {
		snprintf(buf, len, "%s", c->advertise_url);
		return;
	}
	if (sc_url_split_tcp(c->peer_url, host, sizeof(host), &port, err,
	        sizeof(err)) != 0 || !sc_host_is_wildcard(host)) {
		snprintf(buf, len, "%s", c->peer_url);
		return;
	}
	if (gethostname(hn, sizeof(hn)) != 0)
		snprintf(hn, sizeof(hn), "localhost");
	hn[sizeof(hn) - 1] = '\0';
	snprintf(buf, len, "tcp://%s:%u", hn, (unsigned)port);
}

int sc_config_load(struct sc_config *c, int argc, char **argv, FILE *out,
                   enum sc_config_action *action, char *err, size_t errlen)
{
	int rv;

	*action = SC_CONFIG_RUN;
	sc_config_defaults(c);
	for (int i = 0; i < SC_OPT_COUNT; i++) {
		const char *v = getenv(opts[i].env);
		if (v && (rv = apply(c, &opts[i], v, opts[i].env, err,
		              errlen)) != 0)
			return rv;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *eq, *v;
		const struct opt *o;

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			sc_config_usage(out);
			*action = SC_CONFIG_HELP;
			return 0;
		}
		if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			fprintf(out, "kvferryd %s (control protocol %u, engine "
			    "protocol %u, peer protocol %u)\n",
			    KVF_VERSION_STRING, KVF_CTL_PROTO_VERSION,
			    KVF_ENGINE_PROTO_VERSION, KVF_PEER_PROTO_VERSION);
			*action = SC_CONFIG_VERSION;
			return 0;
		}
		eq = strchr(a, '=');
		o = find_flag(a, eq ? (size_t)(eq - a) : strlen(a));
		if (!o) {
			snprintf(err, errlen,
			    "unknown option '%s' (see kvferryd --help)", a);
			return KVF_ECONFIG;
		}
		if (eq) {
			v = eq + 1;
		} else if (i + 1 < argc) {
			v = argv[++i];
		} else {
			snprintf(err, errlen, "%s: needs a value (%s)",
			    o->flag, o->metavar);
			return KVF_ECONFIG;
		}
		if ((rv = apply(c, o, v, o->flag, err, errlen)) != 0)
			return rv;
	}
	derive(c);
	return 0;
}
