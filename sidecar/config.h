/*
 * sidecar/config.h - kvferryd's configuration: defaults, then KVFERRY_*
 * environment variables, then command-line flags (flags win).
 *
 * Every option has one flag and one environment variable; a bad value is
 * refused with a message naming the option as the user wrote it (the flag
 * or the variable) and why. Form is checked here; what only start-up can
 * tell (a directory that is not writable, a port in use, a provider that
 * is missing) is checked by the daemon, which names the option through
 * sc_config_origin().
 */
#ifndef KVF_SIDECAR_CONFIG_H
#define KVF_SIDECAR_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sidecar/log.h"

/* The options, in --help order. */
enum sc_opt {
	SC_OPT_ENGINE_SOCKET = 0,
	SC_OPT_CONTROL_URL,
	SC_OPT_PEER_URL,
	SC_OPT_ADVERTISE_URL,
	SC_OPT_PROVIDER,
	SC_OPT_FABRIC_ADDR,
	SC_OPT_RAILS,
	SC_OPT_STRIPE_MIN,
	SC_OPT_STRIPE_CHUNK,
	SC_OPT_INLINE_MAX,
	SC_OPT_POLL_SPIN,
	SC_OPT_LOG_LEVEL,
	SC_OPT_LOG_FORMAT,
	SC_OPT_XFER_TIMEOUT,
	SC_OPT_HANDSHAKE_TIMEOUT,
	SC_OPT_HEARTBEAT,
	SC_OPT_SECRET_FILE,
	SC_OPT_SOCKET_MODE,
	SC_OPT_SOCKET_GROUP,
	SC_OPT_METRICS_URL,
	SC_OPT_HOST_ID,
	SC_OPT_STORE_DIR,
	SC_OPT_STORE_CAPACITY,
	SC_OPT_STORE_QUEUE_DEPTH,
	SC_OPT_STORE_DIRECT,
	SC_OPT_STORE_FSYNC,
	SC_OPT_COUNT
};

/* A unix socket path must fit sockaddr_un.sun_path with its NUL. */
#define SC_PATH_MAX 108
#define SC_URL_MAX 256
/* The largest --inline-max: the receive slots of every rail grow with
 * it (sidecar/xfer_inline.c). */
#define SC_INLINE_MAX_LIMIT 65536u

struct sc_config {
	/* Engines connect here (nng ipc); <engine_socket>.lock guards it. */
	char engine_socket[SC_PATH_MAX];
	/* kvferryctl talks here: ipc://path or tcp://host:port. */
	char control_url[SC_URL_MAX];
	/* Other sidecars dial this nng listener for handshakes. */
	char peer_url[SC_URL_MAX];
	/* What peers are told to dial back; "" = peer_url when its host is
	 * not a wildcard (see sc_config_advertise). */
	char advertise_url[SC_URL_MAX];
	/* libfabric provider; "" = the first one able to serve us. */
	char provider[64];
	/* Local address of the fabric endpoint, or a comma-separated list
	 * of them: one rail each; "" = the host of peer_url unless that is
	 * a wildcard, then the provider's default. */
	char fabric_addr[512];
	/* Rails by NIC (fabric domain): "" = one; a count N (the first N
	 * domains the provider offers), "all", or comma-separated domain
	 * names. Excludes several --fabric-addr addresses. */
	char rails[512];
	/* Transfers of at least stripe_min bytes are cut into pieces of at
	 * most stripe_chunk bytes spread over the rails; smaller ones go
	 * whole to the least busy rail. */
	uint64_t stripe_min;
	uint64_t stripe_chunk;
	/* WRITEs of at most inline_max bytes into host memory travel inside
	 * the notification message (one send instead of writes plus a
	 * notification); 0 = never. Also what this sidecar accepts. */
	uint64_t inline_max;
	/* How long an idle progress thread keeps polling before it sleeps
	 * (microseconds): latency against CPU. */
	uint32_t poll_spin_us;
	enum sc_log_level log_level;
	enum sc_log_format log_format;
	uint32_t xfer_timeout_ms;
	uint32_t handshake_timeout_ms;
	uint32_t heartbeat_ms;
	/* Optional shared secret for peer handshakes; "" = none. */
	char secret_file[4096];
	/* Permission bits of the unix sockets (engine, ipc control). */
	uint32_t socket_mode;
	/* Optional group owning the unix sockets; "" = the daemon's. */
	char socket_group[64];
	/* /metrics, /livez, /readyz (sidecar/metrics.c) on http://host:port;
	 * "" = off. */
	char metrics_url[SC_URL_MAX];
	/* What decides "same host" between sidecars (GPU copies without the
	 * network); "" = /etc/machine-id, else the hostname. */
	char host_id[80];
	/* KV storage tier (sidecar/store_ops.c): the directory of stored
	 * objects, "" = storage off; bytes kept before least-recently-used
	 * objects are evicted, 0 = no limit but the filesystem's; I/Os in
	 * flight; enum xfer_store_direct and enum xfer_store_sync values. */
	char store_dir[4096];
	uint64_t store_capacity;
	uint32_t store_queue_depth;
	int store_direct;
	int store_fsync;

	/* Where each value came from: "--flag", "KVFERRY_VAR" or "default
	 * --flag"; for messages. */
	char origin[SC_OPT_COUNT][40];
};

/* What sc_config_load asks the caller to do. */
enum sc_config_action {
	SC_CONFIG_RUN = 0,
	SC_CONFIG_HELP = 1,    /* --help was printed on stdout: exit 0 */
	SC_CONFIG_VERSION = 2, /* --version was printed: exit 0 */
};

void sc_config_defaults(struct sc_config *c);

/*
 * Fill c from the defaults, the environment and argv (argv[0] is skipped).
 * Returns 0 with *action set, or KVF_ECONFIG with a one-line reason in err
 * naming the flag or variable. --help and --version print to out.
 */
int sc_config_load(struct sc_config *c, int argc, char **argv, FILE *out,
                   enum sc_config_action *action, char *err, size_t errlen);

/* The option as the user gave it: "--peer-url", "KVFERRY_PEER_URL", or
 * "--peer-url (default)". */
const char *sc_config_origin(const struct sc_config *c, enum sc_opt o);

/* Print --help text. */
void sc_config_usage(FILE *f);

/*
 * Split a tcp://host:port URL. host gets the host without brackets;
 * returns 0 or KVF_EINVAL with why in err.
 */
int sc_url_split_tcp(const char *url, char *host, size_t hostlen,
                     uint16_t *port, char *err, size_t errlen);

/* True for "", "*", "0.0.0.0", "::" and "[::]". */
int sc_host_is_wildcard(const char *host);

/* The URL peers should dial back, into buf: advertise_url if set, else
 * peer_url when its host is not a wildcard, else the peer_url port on this
 * machine's hostname. */
void sc_config_advertise(const struct sc_config *c, char *buf, size_t len);

/* The path of an ipc:// URL, or NULL for other schemes. */
const char *sc_url_ipc_path(const char *url);

#endif
