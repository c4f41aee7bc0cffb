/*
 * sidecar/xfer_watch.c - the watcher thread, which wakes a sleeping
 * progress thread when a file descriptor it watches becomes readable: the
 * fabric's CQ wait fd (added by sc_xfers_start) and those other modules
 * add (a storage ring's eventfd). It blocks in epoll on one-shot entries
 * and rings the doorbell engines ring; the progress thread re-arms the
 * entries before it sleeps.
 */
#include "sidecar/xfers_int.h"

#include <sys/epoll.h>

#include "ipc/doorbell.h"
#include "sidecar/daemon.h"

void *sc_watch_main(void *arg)
{
	struct sc_xfers *x = arg;
	struct epoll_event ev;

	while (!atomic_load(&x->stop)) {
		int n = epoll_wait(x->epfd, &ev, 1, 1000);
		if (n > 0) {
			/* One-shot: the progress thread re-arms before it
			 * sleeps again, so a busy thread is not disturbed. */
			atomic_fetch_add(&x->bell->seq, 1);
			ipc_doorbell_ring(x->bell);
		}
	}
	return NULL;
}

void sc_arm_watcher(struct sc_xfers *x)
{
	for (int i = 0; i < x->nwatched; i++) {
		struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT,
		                         .data.fd = x->watched[i]};
		epoll_ctl(x->epfd, EPOLL_CTL_MOD, x->watched[i], &ev);
	}
}

int sc_xfers_watch_fd(struct sc_daemon *d, int fd)
{
	struct sc_xfers *x = d->xfers;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.fd = fd};

	if (x->epfd < 0 || x->nwatched == 8)
		return KVF_ENOTSUP;
	if (epoll_ctl(x->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
		return KVF_ESYSTEM;
	x->watched[x->nwatched++] = fd;
	return 0;
}
