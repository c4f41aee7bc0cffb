/*
 * sidecar/auth.h - who may talk to this sidecar: the shared secret that
 * authenticates sidecar-to-sidecar handshakes (HMAC-SHA256, mutual, with a
 * caller nonce against replay) and the credential check of engines on the
 * engine socket.
 *
 * Handshake protocol (both sidecars hold the same secret K):
 *   caller:    nonce = (unix seconds << 32) | 32 random bits
 *              auth  = HMAC(K, "kvferry handshake v1" || fields || nonce)
 *   responder: refuses a missing or wrong MAC, a nonce more than
 *              SC_AUTH_SKEW_S seconds away from its clock, and a nonce it
 *              has already accepted (so a captured request cannot be
 *              replayed); then answers with
 *              auth  = HMAC(K, "kvferry handshake reply v1" || nonce ||
 *                           engine asked for || reply fields || regions)
 *   caller:    refuses a reply whose MAC does not verify: the responder
 *              proved it knows K, and the reply (keys included) was made
 *              for this very request.
 * The fields are length-prefixed in a fixed order, so no two different
 * messages hash the same bytes. Nothing is encrypted: keys travel in clear
 * as before (use a private network or tls+tcp:// for confidentiality).
 */
#ifndef KVF_SIDECAR_AUTH_H
#define KVF_SIDECAR_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/peer.pb-c.h"

#define SC_SHA256_LEN 32
#define SC_AUTH_SKEW_S 300
#define SC_AUTH_MIN_SECRET 16
#define SC_AUTH_MAX_SECRET 4096

/* SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104) of one buffer. */
void sc_sha256(const void *msg, size_t len, uint8_t out[SC_SHA256_LEN]);
void sc_hmac_sha256(const void *key, size_t keylen, const void *msg,
                    size_t len, uint8_t out[SC_SHA256_LEN]);

/* Constant-time comparison: true when the n bytes are equal. */
bool sc_auth_equal(const void *a, const void *b, size_t n);

struct sc_auth;

/*
 * Read the secret from path ("" or NULL: no authentication, *out = NULL).
 * The file must be a regular file without permissions for others (mode
 * & 007 == 0) holding SC_AUTH_MIN_SECRET..SC_AUTH_MAX_SECRET bytes;
 * trailing whitespace is dropped. KVF_ECONFIG with err naming
 * --secret-file and what was wrong.
 */
int sc_auth_load(const char *path, struct sc_auth **out, char *err,
                 size_t errlen);
void sc_auth_free(struct sc_auth *a);

/*
 * Caller: set h->nonce and h->auth (mac is the storage h->auth points to).
 * A NULL a leaves h unsigned.
 */
void sc_auth_sign_handshake(struct sc_auth *a, Kvf__Peer__Handshake *h,
                            uint8_t mac[SC_SHA256_LEN]);

/*
 * Responder: 0 when h carries a valid, fresh, unseen MAC (or a is NULL);
 * KVF_EPERM with err saying why otherwise.
 */
int sc_auth_verify_handshake(struct sc_auth *a, const Kvf__Peer__Handshake *h,
                             char *err, size_t errlen);

/* Responder: sign the reply to the handshake h (mac is the storage
 * hr->auth points to). A NULL a leaves hr unsigned. */
void sc_auth_sign_reply(struct sc_auth *a, const Kvf__Peer__Handshake *h,
                        Kvf__Peer__HandshakeReply *hr,
                        uint8_t mac[SC_SHA256_LEN]);

/* Caller: 0 when hr answers h with a valid MAC (or a is NULL); KVF_EPERM
 * with err saying why otherwise. */
int sc_auth_verify_reply(struct sc_auth *a, const Kvf__Peer__Handshake *h,
                         const Kvf__Peer__HandshakeReply *hr, char *err,
                         size_t errlen);

/*
 * Engine socket: may a process of peer_uid use this sidecar? Allowed: our
 * own effective uid, root, and anyone when group_shared (the operator set
 * --socket-group, so the socket's group membership decides). KVF_EPERM
 * with err otherwise.
 */
int sc_auth_engine_uid(int peer_uid, bool group_shared, char *err,
                       size_t errlen);

#endif
