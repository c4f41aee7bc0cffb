/*
 * sidecar/ctl_server.h - the control server: kvferryctl's requests
 * (kvf.ctl.Request over nng rep0 on the control URL) dispatched through a
 * table of handlers, one per Request body case.
 *
 * To add a command: add its messages to proto/ctl.proto (a new case of
 * Request.body and of Reply.body), write a handler in its own file and
 * call sc_ctl_register() for it before sc_ctl_server_start (e.g. from the
 * module's start function, or from sc_ctl_builtin_register).
 */
#ifndef KVF_SIDECAR_CTL_SERVER_H
#define KVF_SIDECAR_CTL_SERVER_H

#include <stddef.h>

#include "proto/ctl.pb-c.h"

struct sc_daemon;
struct sc_ctl_server;

/*
 * A handler answers one request. It sets rep->body_case and the matching
 * body field; everything it hangs on rep (sub-messages, strings, arrays)
 * must come from malloc, because the server frees the reply with
 * kvf__ctl__reply__free_unpacked after sending it. On failure it returns
 * a KVF_E* code with a one-line reason in err (rep is then freed and an
 * Error reply sent instead). Runs on a control worker thread; may block
 * briefly, never for long.
 */
typedef int (*sc_ctl_fn)(struct sc_daemon *d, const Kvf__Ctl__Request *req,
                         Kvf__Ctl__Reply *rep, char *err, size_t errlen);

/* Route requests whose body is `body` to fn (NULL unregisters). Returns 0,
 * or KVF_EINVAL for a body case out of range. Thread-safe. */
int sc_ctl_register(Kvf__Ctl__Request__BodyCase body, sc_ctl_fn fn);

/* Register the handlers in sidecar/ctl_*.c (status, ...). */
void sc_ctl_builtin_register(void);
/* Each command group's part of it: engines, regions, peers
 * (ctl_tables.c); xfers, drain (ctl_xfers.c); stats, log-level
 * (ctl_stats.c). */
void sc_ctl_tables_register(void);
void sc_ctl_xfers_register(void);
void sc_ctl_stats_register(void);

/* strdup for reply fields; NULL (packed as "") when out of memory. */
char *sc_ctl_strdup(const char *s);

/*
 * Start serving d->ctl_sock with worker threads. Returns 0 or a KVF_E*
 * code with the reason in err. Call from the main thread.
 */
int sc_ctl_server_start(struct sc_daemon *d, struct sc_ctl_server **out,
                        char *err, size_t errlen);

/* Stop the workers (an answer in progress is finished) and free. Accepts
 * NULL. The socket stays open: the daemon closes it. */
void sc_ctl_server_stop(struct sc_ctl_server *s);

#endif
