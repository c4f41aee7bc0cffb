/*
 * sidecar/auth.c - the shared-secret handshake authentication and the
 * engine credential check described in sidecar/auth.h. SHA-256 and HMAC are
 * written here from the standards (FIPS 180-4, RFC 2104) so the daemon
 * needs no crypto library; tests/sidecar/auth.c checks them against the
 * RFC 4231 vectors. The responder remembers the nonces it accepted in the
 * last SC_AUTH_SKEW_S seconds (a small ring; older ones are refused by
 * their timestamp anyway), which is what makes a replayed request useless.
 */
#include "sidecar/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client/kvferry.h"

/* ---- SHA-256 ----------------------------------------------------------- */

struct sha256 {
	uint32_t h[8];
	uint8_t buf[64];
	size_t fill;
	uint64_t total;
};

static const uint32_t K256[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
	0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
	0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
	0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
	0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
	0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
	0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t ror(uint32_t x, int n)
{
	return (x >> n) | (x << (32 - n));
}

static void sha_block(struct sha256 *s, const uint8_t *p)
{
	uint32_t w[64], a, b, c, d, e, f, g, h;
	int i;

	for (i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		       (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (i = 16; i < 64; i++) {
		uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^
		              (w[i - 15] >> 3);
		uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^
		              (w[i - 2] >> 10);
		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	a = s->h[0];
	b = s->h[1];
	c = s->h[2];
	d = s->h[3];
	e = s->h[4];
	f = s->h[5];
	g = s->h[6];
	h = s->h[7];
	for (i = 0; i < 64; i++) {
		uint32_t S1 = ror(e, 6) ^ ror(e, 11) ^ ror(e, 25);
		uint32_t ch = (e & f) ^ (~e & g);
		uint32_t t1 = h + S1 + ch + K256[i] + w[i];
		uint32_t S0 = ror(a, 2) ^ ror(a, 13) ^ ror(a, 22);
		uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
		uint32_t t2 = S0 + maj;
		h = g;
		g = f;
		f = e;
		e = d + t1;
		d = c;
		c = b;
		b = a;
		a = t1 + t2;
	}
	s->h[0] += a;
	s->h[1] += b;
	s->h[2] += c;
	s->h[3] += d;
	s->h[4] += e;
	s->h[5] += f;
	s->h[6] += g;
	s->h[7] += h;
}

static void sha_init(struct sha256 *s)
{
	static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372,
	                               0xa54ff53a, 0x510e527f, 0x9b05688c,
	                               0x1f83d9ab, 0x5be0cd19};
	memcpy(s->h, iv, sizeof iv);
	s->fill = 0;
	s->total = 0;
}

static void sha_update(struct sha256 *s, const void *data, size_t len)
{
	const uint8_t *p = data;

	s->total += len;
	while (len > 0) {
		size_t take = 64 - s->fill;
		if (take > len)
			take = len;
		memcpy(s->buf + s->fill, p, take);
		s->fill += take;
		p += take;
		len -= take;
		if (s->fill == 64) {
			sha_block(s, s->buf);
			s->fill = 0;
		}
	}
}

static void sha_final(struct sha256 *s, uint8_t out[SC_SHA256_LEN])
{
	uint64_t bits = s->total * 8;
	uint8_t one = 0x80, zero = 0, len[8];
	int i;

	sha_update(s, &one, 1);
	while (s->fill != 56)
		sha_update(s, &zero, 1);
	for (i = 0; i < 8; i++)
		len[i] = (uint8_t)(bits >> (56 - 8 * i));
	sha_update(s, len, 8);
	for (i = 0; i < 8; i++) {
		out[4 * i] = (uint8_t)(s->h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
		out[4 * i + 3] = (uint8_t)s->h[i];
	}
}

void sc_sha256(const void *msg, size_t len, uint8_t out[SC_SHA256_LEN])
{
	struct sha256 s;
	sha_init(&s);
	sha_update(&s, msg, len);
	sha_final(&s, out);
}

/* ---- HMAC -------------------------------------------------------------- */

struct hmac {
	struct sha256 inner;
	uint8_t okey[64];
};

static void hmac_init(struct hmac *m, const void *key, size_t keylen)
{
	uint8_t k[64] = {0}, ikey[64];
	int i;

	if (keylen > 64)
		sc_sha256(key, keylen, k);
	else
		memcpy(k, key, keylen);
	for (i = 0; i < 64; i++) {
		ikey[i] = k[i] ^ 0x36;
		m->okey[i] = k[i] ^ 0x5c;
	}
	sha_init(&m->inner);
	sha_update(&m->inner, ikey, 64);
}

static void hmac_final(struct hmac *m, uint8_t out[SC_SHA256_LEN])
{
	struct sha256 outer;
	uint8_t ih[SC_SHA256_LEN];

	sha_final(&m->inner, ih);
	sha_init(&outer);
	sha_update(&outer, m->okey, 64);
	sha_update(&outer, ih, sizeof ih);
	sha_final(&outer, out);
}

void sc_hmac_sha256(const void *key, size_t keylen, const void *msg,
                    size_t len, uint8_t out[SC_SHA256_LEN])
{
	struct hmac m;
	hmac_init(&m, key, keylen);
	sha_update(&m.inner, msg, len);
	hmac_final(&m, out);
}

bool sc_auth_equal(const void *a, const void *b, size_t n)
{
	const volatile uint8_t *x = a, *y = b;
	uint8_t diff = 0;
	for (size_t i = 0; i < n; i++)
		diff |= x[i] ^ y[i];
	return diff == 0;
}

/* ---- the secret and the replay cache ----------------------------------- */

#define SEEN_SLOTS 4096

struct sc_auth {
	uint8_t key[SC_AUTH_MAX_SECRET];
	size_t keylen;
	pthread_mutex_t lock;
	uint64_t seen[SEEN_SLOTS]; /* accepted nonces, newest overwrite */
	size_t seen_next;
};

int sc_auth_load(const char *path, struct sc_auth **out, char *err,
                 size_t errlen)
{
	struct sc_auth *a;
	struct stat st;
	ssize_t n;
	int fd;

	*out = NULL;
	if (!path || !path[0])
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		snprintf(err, errlen, "--secret-file %s: open() failed: %s",
		         path, strerror(errno));
		return KVF_ECONFIG;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "--secret-file %s: not a regular file",
		         path);
		close(fd);
		return KVF_ECONFIG;
	}
	if (st.st_mode & 007) {
		snprintf(err, errlen,
		         "--secret-file %s: mode %04o gives others access; "
		         "chmod o= it (0600 or 0640)",
		         path, (unsigned)(st.st_mode & 07777));
		close(fd);
		return KVF_ECONFIG;
	}
	if (!(a = calloc(1, sizeof *a))) {
		close(fd);
		snprintf(err, errlen, "--secret-file %s: out of memory", path);
		return KVF_ENOMEM;
	}
	/* One byte more than allowed tells an oversized file apart. */
	n = read(fd, a->key, sizeof a->key);
	if (n > 0 && (size_t)n == sizeof a->key) {
		char extra;
		if (read(fd, &extra, 1) == 1)
			n = -2;
	}
	close(fd);
	if (n == -1) {
		snprintf(err, errlen, "--secret-file %s: read() failed: %s",
		         path, strerror(errno));
		free(a);
		return KVF_ECONFIG;
	}
	if (n == -2) {
		snprintf(err, errlen,
		         "--secret-file %s: longer than %d bytes", path,
		         SC_AUTH_MAX_SECRET);
		free(a);
		return KVF_ECONFIG;
	}
	while (n > 0 && (a->key[n - 1] == '\n' || a->key[n - 1] == '\r' ||
	                 a->key[n - 1] == ' ' || a->key[n - 1] == '\t'))
		n--;
	if (n < SC_AUTH_MIN_SECRET) {
		snprintf(err, errlen,
		         "--secret-file %s: %zd bytes of secret, at least %d "
		         "needed",
		         path, n, SC_AUTH_MIN_SECRET);
		free(a);
		return KVF_ECONFIG;
	}
	a->keylen = (size_t)n;
	pthread_mutex_init(&a->lock, NULL);
	*out = a;
	return 0;
}

void sc_auth_free(struct sc_auth *a)
{
	if (!a)
		return;
	pthread_mutex_destroy(&a->lock);
	/* Scrub the secret; volatile so the stores are not dropped. */
	volatile uint8_t *k = a->key;
	for (size_t i = 0; i < sizeof a->key; i++)
		k[i] = 0;
	free(a);
}

/* ---- canonical encoding of what a MAC covers --------------------------- */

static void put_u64(struct hmac *m, uint64_t v)
{
	uint8_t b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (56 - 8 * i));
	sha_update(&m->inner, b, 8);
}

static void put_bytes(struct hmac *m, const void *p, size_t len)
{
	put_u64(m, len);
	if (len)
		sha_update(&m->inner, p, len);
}

static void put_str(struct hmac *m, const char *s)
{
	put_bytes(m, s ? s : "", s ? strlen(s) : 0);
}

static void mac_handshake(const struct sc_auth *a, const Kvf__Peer__Handshake *h,
                          uint8_t out[SC_SHA256_LEN])
{
	static const char label[] = "kvferry handshake v1";
	struct hmac m;

	hmac_init(&m, a->key, a->keylen);
	put_bytes(&m, label, sizeof label - 1);
	put_u64(&m, h->proto_version);
	put_str(&m, h->sidecar_id);
	put_str(&m, h->host_id);
	put_str(&m, h->provider);
	put_bytes(&m, h->fabric_addr.data, h->fabric_addr.len);
	put_str(&m, h->engine_name);
	put_u64(&m, h->nonce);
	put_u64(&m, h->epoch);
	put_u64(&m, h->n_rail_addrs);
	for (size_t i = 0; i < h->n_rail_addrs; i++)
		put_bytes(&m, h->rail_addrs[i].data, h->rail_addrs[i].len);
	hmac_final(&m, out);
}

static void mac_reply(const struct sc_auth *a, const Kvf__Peer__Handshake *h,
                      const Kvf__Peer__HandshakeReply *hr,
                      uint8_t out[SC_SHA256_LEN])
{
	static const char label[] = "kvferry handshake reply v1";
	struct hmac m;

	hmac_init(&m, a->key, a->keylen);
	put_bytes(&m, label, sizeof label - 1);
	put_u64(&m, h->nonce);
	put_str(&m, h->engine_name);
	put_str(&m, h->sidecar_id);
	put_u64(&m, hr->proto_version);
	put_str(&m, hr->sidecar_id);
	put_str(&m, hr->host_id);
	put_str(&m, hr->provider);
	put_bytes(&m, hr->fabric_addr.data, hr->fabric_addr.len);
	put_u64(&m, hr->engine_session_id);
	put_u64(&m, hr->epoch);
	put_u64(&m, hr->n_rail_addrs);
	for (size_t i = 0; i < hr->n_rail_addrs; i++)
		put_bytes(&m, hr->rail_addrs[i].data, hr->rail_addrs[i].len);
	/* Only when set, so replies of sidecars without inline writes keep
	 * their MAC; stripping it only turns inline writes off. */
	if (hr->inline_msg_max)
		put_u64(&m, hr->inline_msg_max);
	put_u64(&m, hr->n_regions);
	for (size_t i = 0; i < hr->n_regions; i++) {
		const Kvf__Peer__RegionDesc *r = hr->regions[i];
		put_u64(&m, r->region_id);
		put_u64(&m, r->length);
		put_u64(&m, r->remote_addr);
		put_u64(&m, r->key);
		put_u64(&m, r->n_rail_keys);
		for (size_t k = 0; k < r->n_rail_keys; k++)
			put_u64(&m, r->rail_keys[k]);
		put_u64(&m, r->mem_kind);
		put_u64(&m, r->layout != NULL);
		if (r->layout) {
			put_u64(&m, r->layout->num_layers);
			put_u64(&m, r->layout->num_blocks);
			put_u64(&m, r->layout->block_bytes);
			put_u64(&m, r->layout->layer_stride);
			put_u64(&m, r->layout->block_stride);
			put_u64(&m, r->layout->offset);
		}
	}
	hmac_final(&m, out);
}

/* ---- the protocol ------------------------------------------------------ */

void sc_auth_sign_handshake(struct sc_auth *a, Kvf__Peer__Handshake *h,
                            uint8_t mac[SC_SHA256_LEN])
{
	uint32_t rnd = 0;

	if (!a)
		return;
	if (getrandom(&rnd, sizeof rnd, 0) != sizeof rnd) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		rnd = (uint32_t)ts.tv_nsec ^ (uint32_t)getpid() << 16;
	}
	h->nonce = (uint64_t)(uint32_t)time(NULL) << 32 | rnd;
	mac_handshake(a, h, mac);
	h->auth.data = mac;
	h->auth.len = SC_SHA256_LEN;
}

int sc_auth_verify_handshake(struct sc_auth *a, const Kvf__Peer__Handshake *h,
                             char *err, size_t errlen)
{
	uint8_t want[SC_SHA256_LEN];
	int64_t skew;
	size_t i;

	if (!a)
		return 0;
	if (h->auth.len == 0) {
		snprintf(err, errlen, "handshake carries no authentication "
		         "(this sidecar has --secret-file; the caller has none)");
		return KVF_EPERM;
	}
	mac_handshake(a, h, want);
	if (h->auth.len != SC_SHA256_LEN ||
	    !sc_auth_equal(want, h->auth.data, SC_SHA256_LEN)) {
		snprintf(err, errlen, "handshake authentication failed (a "
		         "different --secret-file?)");
		return KVF_EPERM;
	}
	skew = (int64_t)(h->nonce >> 32) - (int64_t)(uint32_t)time(NULL);
	if (skew > SC_AUTH_SKEW_S || skew < -SC_AUTH_SKEW_S) {
		snprintf(err, errlen,
		         "handshake nonce is %lld s away from this sidecar's "
		         "clock (max %d): a replay or a clock off",
		         (long long)skew, SC_AUTH_SKEW_S);
		return KVF_EPERM;
	}
	pthread_mutex_lock(&a->lock);
	for (i = 0; i < SEEN_SLOTS; i++)
		if (a->seen[i] == h->nonce)
			break;
	if (i == SEEN_SLOTS) {
		a->seen[a->seen_next] = h->nonce;
		a->seen_next = (a->seen_next + 1) % SEEN_SLOTS;
	}
	pthread_mutex_unlock(&a->lock);
	if (i != SEEN_SLOTS) {
		snprintf(err, errlen, "handshake nonce %016llx seen before: "
		         "a replayed request",
		         (unsigned long long)h->nonce);
		return KVF_EPERM;
	}
	return 0;
}

void sc_auth_sign_reply(struct sc_auth *a, const Kvf__Peer__Handshake *h,
                        Kvf__Peer__HandshakeReply *hr,
                        uint8_t mac[SC_SHA256_LEN])
{
	if (!a)
		return;
	mac_reply(a, h, hr, mac);
	hr->auth.data = mac;
	hr->auth.len = SC_SHA256_LEN;
}

int sc_auth_verify_reply(struct sc_auth *a, const Kvf__Peer__Handshake *h,
                         const Kvf__Peer__HandshakeReply *hr, char *err,
                         size_t errlen)
{
	uint8_t want[SC_SHA256_LEN];

	if (!a)
		return 0;
	if (hr->auth.len == 0) {
		snprintf(err, errlen, "handshake reply carries no "
		         "authentication (the peer has no --secret-file)");
		return KVF_EPERM;
	}
	mac_reply(a, h, hr, want);
	if (hr->auth.len != SC_SHA256_LEN ||
	    !sc_auth_equal(want, hr->auth.data, SC_SHA256_LEN)) {
		snprintf(err, errlen, "handshake reply authentication failed "
		         "(a different --secret-file, or not the reply to our "
		         "request)");
		return KVF_EPERM;
	}
	return 0;
}

int sc_auth_engine_uid(int peer_uid, bool group_shared, char *err,
                       size_t errlen)
{
	if (peer_uid == 0 || (uid_t)peer_uid == geteuid() || group_shared)
		return 0;
	snprintf(err, errlen,
	         "uid %d may not use this sidecar (it runs as uid %d; set "
	         "--socket-group to share the engine socket with a group)",
	         peer_uid, (int)geteuid());
	return KVF_EPERM;
}
