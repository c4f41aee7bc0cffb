/*
 * ipc/shm.h - POSIX shared-memory objects shared by an engine and its
 * sidecar: the session rings and host KV regions.
 *
 * The engine creates an object under a random name and maps it; the sidecar
 * opens it by name, maps it and unlinks the name, so nothing is left in
 * /dev/shm once both sides hold their mappings, and nobody else can open it
 * afterwards. Neither side keeps a descriptor, so the object's size cannot
 * change under the sidecar's mapping.
 */
#ifndef KVF_IPC_SHM_H
#define KVF_IPC_SHM_H

#include <stddef.h>

#define IPC_SHM_NAME_MAX 64
#define IPC_SHM_PREFIX "/kvferry-"

struct ipc_shm {
	void *base;
	size_t len;
	char name[IPC_SHM_NAME_MAX];
};

/*
 * Create and map a new object of len bytes, mode 0600, named
 * IPC_SHM_PREFIX<tag>-<pid>-<random>. On failure writes a reason into err.
 */
int ipc_shm_create(const char *tag, size_t len, struct ipc_shm *out,
                   char *err, size_t errlen);

/*
 * Open an object another process created, check that its name is one of
 * ours and that it is exactly len bytes long, and map it. With unlink_name
 * the name is removed once mapped (engine objects the sidecar takes over);
 * without, it stays (the sidecar's doorbell, opened by every engine).
 */
int ipc_shm_attach(const char *name, size_t len, int unlink_name,
                   struct ipc_shm *out, char *err, size_t errlen);

/* Unmap; accepts a zeroed struct. */
void ipc_shm_unmap(struct ipc_shm *shm);

/* Remove the name if it is still there (error paths). */
void ipc_shm_unlink(const char *name);

#endif
