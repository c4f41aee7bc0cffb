/*
 * sidecar/engine_watch.h - a second way to learn that an engine died: a
 * pidfd per engine process, watched by one thread. The nng pipe closing is
 * the first way; the pidfd also covers an engine whose connection lingers
 * (a child that inherited the socket, say) after the engine itself exited.
 */
#ifndef KVF_SIDECAR_ENGINE_WATCH_H
#define KVF_SIDECAR_ENGINE_WATCH_H

#include <stdint.h>
#include <sys/types.h>

struct sc_engine_watch;

/* Called on the watch thread when the process of session_id exited. */
typedef void (*sc_engine_exit_fn)(void *arg, uint64_t session_id);

int sc_engine_watch_start(sc_engine_exit_fn fn, void *arg,
                          struct sc_engine_watch **out);
/* Stop the thread, close every pidfd. Accepts NULL. */
void sc_engine_watch_stop(struct sc_engine_watch *w);

/* Watch pid for session_id. KVF_ENOTSUP when pidfd_open is not available
 * (old kernel, pid in another namespace): the pipe still tells. */
int sc_engine_watch_add(struct sc_engine_watch *w, pid_t pid,
                        uint64_t session_id);
/* Stop watching session_id (its session ended). */
void sc_engine_watch_remove(struct sc_engine_watch *w, uint64_t session_id);

#endif
