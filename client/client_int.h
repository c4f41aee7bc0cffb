/*
 * client/client_int.h - the engine library's private state, shared by its
 * files: the control connection (client/conn.c), regions
 * (client/regions.c) and the transfer rings (client/xfer.c).
 */
#ifndef KVF_CLIENT_INT_H
#define KVF_CLIENT_INT_H

#include <nng/nng.h>
#include <pthread.h>
#include <stdatomic.h>

#include "client/kvferry.h"
#include "ipc/doorbell.h"
#include "ipc/ring.h"
#include "ipc/shm.h"
#include "ipc/spin.h"
#include "proto/engine.pb-c.h"

struct client_region {
	kvf_region id;
	int host; /* kvf_alloc_host made it: unmap on free */
	struct ipc_shm shm;
	struct client_region *next;
};

struct kvf_client {
	char name[KVF_MAX_NAME];
	uint32_t timeout_ms;
	uint64_t session_id;

	nng_socket sock;
	pthread_mutex_t ctl_lock; /* one control request at a time */

	struct ipc_shm session_shm;
	struct ipc_shm doorbell_shm;
	struct ipc_doorbell *sidecar_bell;

	pthread_mutex_t sub_lock; /* producers of the submission ring */
	struct ipc_ring sub;
	_Atomic uint64_t next_xfer;

	pthread_mutex_t comp_lock; /* consumers of the completion ring */
	struct ipc_ring comp;
	struct ipc_spin wait_spin; /* kvf_wait's spin before it sleeps */
	bool wait_adaptive;        /* learn whether to spin ("auto") */

	pthread_mutex_t regions_lock;
	struct client_region *regions;

	_Atomic int dead; /* the sidecar went away */
};

/* Record the calling thread's error message; returns err. */
int client_fail(int err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Send req, wait for the reply (bounded by the client's timeout) and unpack
 * it. On success *reply must be freed with kvf__engine__reply__free_unpacked.
 * An error reply becomes its code, with its message as the thread's error.
 */
int client_call(kvf_client *c, const Kvf__Engine__Request *req,
                Kvf__Engine__Reply **reply);

/* Send a filled RegisterRegion (session and layout are added here). */
int client_register(kvf_client *c, Kvf__Engine__RegisterRegion *rr,
                    const struct kvf_layout *layout, kvf_region *id);
/* Keep r in the client's list so kvf_free_region and kvf_close find it. */
void client_remember(kvf_client *c, struct client_region *r);

#endif
