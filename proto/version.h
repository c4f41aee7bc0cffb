/*
 * Versions of kvferry and of its three wire conversations. A peer or client
 * whose protocol version differs is refused with an error naming both.
 */
#ifndef KVF_PROTO_VERSION_H
#define KVF_PROTO_VERSION_H

#define KVF_VERSION_STRING "0.1.0"

#define KVF_ENGINE_PROTO_VERSION 1u
#define KVF_PEER_PROTO_VERSION 1u
#define KVF_CTL_PROTO_VERSION 1u

/* The largest control message any socket accepts; larger ones are refused. */
#define KVF_MAX_CONTROL_MSG (1u << 20)

#endif
