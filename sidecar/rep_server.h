/*
 * sidecar/rep_server.h - worker threads answering requests on an nng rep0
 * socket, each with its own context so a slow request (a peer handshake)
 * does not hold up the others. The handler turns a request into a reply;
 * it also learns which pipe (connection) the request came on.
 */
#ifndef KVF_SIDECAR_REP_SERVER_H
#define KVF_SIDECAR_REP_SERVER_H

#include <nng/nng.h>

struct sc_rep_server;

/* Build the reply for req (the handler must not free req). Returns the
 * reply or NULL to send nothing (the requester then times out). */
typedef nng_msg *(*sc_rep_handler)(void *arg, nng_msg *req, nng_pipe pipe);

/* Start nworkers threads on sock. 0 or KVF_E*. */
int sc_rep_server_start(nng_socket sock, int nworkers, sc_rep_handler fn,
                        void *arg, const char *name,
                        struct sc_rep_server **out);

/* Stop and join the workers; requests in progress finish first. Accepts
 * NULL. */
void sc_rep_server_stop(struct sc_rep_server *s);

#endif
