/*
 * sidecar/engine_watch.c - pidfds of engine processes in one epoll set; the
 * epoll data is the session id, so an exit maps straight to its session.
 * A small table maps session ids to their pidfds for removal.
 */
#include "sidecar/engine_watch.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "client/kvferry.h"
#include "sidecar/idmap.h"
#include "sidecar/log.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

struct sc_engine_watch {
	sc_engine_exit_fn fn;
	void *arg;
	int epfd;
	pthread_t thread;
	_Atomic int stop;
	pthread_mutex_t lock;
	struct sc_idmap fds; /* session id -> pidfd + 1 */
};

static void *watch(void *p)
{
	struct sc_engine_watch *w = p;
	struct epoll_event ev[8];

	while (!atomic_load(&w->stop)) {
		int n = epoll_wait(w->epfd, ev, 8, 200);
		for (int i = 0; i < n; i++) {
			uint64_t sid = ev[i].data.u64;
			sc_engine_watch_remove(w, sid);
			w->fn(w->arg, sid);
		}
	}
	return NULL;
}

int sc_engine_watch_start(sc_engine_exit_fn fn, void *arg,
                          struct sc_engine_watch **out)
{
	struct sc_engine_watch *w = calloc(1, sizeof *w);

	if (!w)
		return KVF_ENOMEM;
	w->fn = fn;
	w->arg = arg;
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	pthread_mutex_init(&w->lock, NULL);
	sc_idmap_init(&w->fds);
	if (w->epfd < 0 || pthread_create(&w->thread, NULL, watch, w) != 0) {
		if (w->epfd >= 0)
			close(w->epfd);
		pthread_mutex_destroy(&w->lock);
		free(w);
		return KVF_ESYSTEM;
	}
	*out = w;
	return 0;
}

void sc_engine_watch_stop(struct sc_engine_watch *w)
{
	size_t pos = 0;
	void *v;

	if (!w)
		return;
	atomic_store(&w->stop, 1);
	pthread_join(w->thread, NULL);
	while ((v = sc_idmap_next(&w->fds, &pos, NULL)))
		close((int)((uintptr_t)v - 1));
	sc_idmap_fini(&w->fds);
	close(w->epfd);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

int sc_engine_watch_add(struct sc_engine_watch *w, pid_t pid,
                        uint64_t session_id)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = session_id};
	int fd;

	if (!w || pid <= 0)
		return KVF_EINVAL;
	fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0) {
		sc_debug("engine session %llu: pidfd_open(%d) failed: %s; its "
		         "connection alone tells when it exits",
		         (unsigned long long)session_id, (int)pid,
		         strerror(errno));
		return KVF_ENOTSUP;
	}
	pthread_mutex_lock(&w->lock);
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) != 0 ||
	    sc_idmap_put(&w->fds, session_id, (void *)(uintptr_t)(fd + 1))) {
		pthread_mutex_unlock(&w->lock);
		close(fd);
		return KVF_ESYSTEM;
	}
	pthread_mutex_unlock(&w->lock);
	return 0;
}

void sc_engine_watch_remove(struct sc_engine_watch *w, uint64_t session_id)
{
	void *v;

	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	v = sc_idmap_del(&w->fds, session_id);
	if (v) {
		int fd = (int)((uintptr_t)v - 1);
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd, NULL);
		close(fd);
	}
	pthread_mutex_unlock(&w->lock);
}
