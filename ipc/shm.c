/*
 * ipc/shm.c - create, attach and unmap shared-memory objects. Names carry a
 * random part so that a guessed name cannot be opened before the sidecar
 * unlinks it; the sidecar refuses names outside our prefix and objects whose
 * size differs from what the engine announced.
 */
#include "ipc/shm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/kvferry.h"

int ipc_shm_create(const char *tag, size_t len, struct ipc_shm *out,
                   char *err, size_t errlen)
{
	struct ipc_shm shm = {0};
	uint64_t rnd = 0;
	int fd = -1;

	if (len == 0) {
		snprintf(err, errlen, "shared memory: length 0");
		return KVF_EINVAL;
	}
	for (int tries = 0; tries < 8; tries++) {
		if (getrandom(&rnd, sizeof rnd, 0) != sizeof rnd)
			rnd ^= (uint64_t)getpid() << 32 ^ (uint64_t)tries;
		snprintf(shm.name, sizeof shm.name, IPC_SHM_PREFIX "%.16s-%d-%016llx",
		         tag, (int)getpid(), (unsigned long long)rnd);
		fd = shm_open(shm.name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
		              0600);
		if (fd >= 0 || errno != EEXIST)
			break;
	}
	if (fd < 0) {
		snprintf(err, errlen, "shared memory %s: shm_open() failed: %s",
		         shm.name, strerror(errno));
		return KVF_ESYSTEM;
	}
	if (ftruncate(fd, (off_t)len) != 0) {
		snprintf(err, errlen,
		         "shared memory %s: ftruncate(%zu) failed: %s (is /dev/shm "
		         "large enough?)",
		         shm.name, len, strerror(errno));
		close(fd);
		shm_unlink(shm.name);
		return KVF_ENOMEM;
	}
	shm.base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (shm.base == MAP_FAILED) {
		snprintf(err, errlen, "shared memory %s: mmap(%zu) failed: %s",
		         shm.name, len, strerror(errno));
		shm_unlink(shm.name);
		return KVF_ENOMEM;
	}
	shm.len = len;
	*out = shm;
	return 0;
}

static int name_ok(const char *name)
{
	size_t n = strnlen(name, IPC_SHM_NAME_MAX);
	size_t p = strlen(IPC_SHM_PREFIX);
	if (n == IPC_SHM_NAME_MAX || n <= p)
		return 0;
	if (strncmp(name, IPC_SHM_PREFIX, p) != 0)
		return 0;
	if (strchr(name + 1, '/') || strstr(name, ".."))
		return 0;
	return 1;
}

int ipc_shm_attach(const char *name, size_t len, int unlink_name,
                   struct ipc_shm *out, char *err, size_t errlen)
{
	struct ipc_shm shm = {0};
	struct stat st;
	int fd;

	if (!name_ok(name)) {
		snprintf(err, errlen,
		         "shared memory: name '%.80s' is not a kvferry object "
		         "(want %s...)",
		         name, IPC_SHM_PREFIX);
		return KVF_EINVAL;
	}
	fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "shared memory %s: shm_open() failed: %s",
		         name, strerror(errno));
		return errno == ENOENT ? KVF_ENOENT : KVF_ESYSTEM;
	}
	if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != len || len == 0) {
		snprintf(err, errlen,
		         "shared memory %s: size %lld differs from the announced "
		         "%zu bytes",
		         name, (long long)st.st_size, len);
		close(fd);
		return KVF_EINVAL;
	}
	shm.base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (shm.base == MAP_FAILED) {
		snprintf(err, errlen, "shared memory %s: mmap(%zu) failed: %s",
		         name, len, strerror(errno));
		return KVF_ENOMEM;
	}
	if (unlink_name)
		shm_unlink(name);
	shm.len = len;
	snprintf(shm.name, sizeof shm.name, "%s", name);
	*out = shm;
	return 0;
}

void ipc_shm_unmap(struct ipc_shm *shm)
{
	if (shm && shm->base && shm->len)
		munmap(shm->base, shm->len);
	if (shm) {
		shm->base = NULL;
		shm->len = 0;
	}
}

void ipc_shm_unlink(const char *name)
{
	if (name && name[0])
		shm_unlink(name);
}
