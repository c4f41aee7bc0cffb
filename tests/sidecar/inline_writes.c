/*
 * tests/sidecar/inline_writes.c - small WRITEs carried inside their
 * notification (sidecar/xfer_inline.c), over tcp;ofi_rxm and shm.
 *
 * Part 1, two real sidecars: which WRITEs go inline (up to --inline-max
 * bytes in at most 64 operations, counted by kvferryctl stats) and which
 * stay RDMA writes, the bytes of each at the target, tagless writes, and a
 * target started with --inline-max 0, which gets only RDMA writes.
 *
 * Part 2, a rogue peer: this test handshakes with a sidecar itself (as a
 * sidecar would, nng + protobuf), opens its own libfabric endpoint and
 * sends hand-made inline messages. A sound one must land and notify;
 * every malformed or malicious one (unknown region, wrong key, out of
 * bounds, another engine's region, a bad second segment, inconsistent
 * lengths, old epoch, unknown session, bad version, long tag, short) must
 * change no byte of any region, notify nobody, be counted and logged with
 * its reason, be answered with it, and leave the sidecar serving. Then
 * messages in parts (as senders cut them where the provider's inject size
 * is small: shm): out of order, a repeated part, overlapping parts, a part
 * claiming too large a whole or a bad index, half a message that never
 * completes. Last, a forged answer (right ids, wrong cookie) sent to a
 * sender whose target is stopped must not end its write.
 *
 * Links the core (xfer/, proto/) and the public library (engines).
 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "client/kvferry.h"
#include "proto/peer.pb-c.h"
#include "proto/version.h"
#include "sidecar/registry.h"
#include "sidecar/xfers.h"
#include "tests/tap/clock.h"
#include "tests/tap/ctl.h"
#include "tests/tap/engine.h"
#include "tests/tap/events.h"
#include "tests/tap/pattern.h"
#include "tests/tap/proc.h"
#include "tests/tap/tap.h"
#include "xfer/fabric.h"

#define REG (64u * 1024)
#define SMALL 4096u

static const char *prov;

/* ---- part 1: two sidecars ---------------------------------------------- */

/* Submit a WRITE of nseg segments of len bytes, every other slot of len
 * (so none merge), with a tag unless tagless; wait for its completion and
 * (tagged) the notification; then compare the bytes. 1 when all held. */
static int push(kvf_client *pre, kvf_client *dec, kvf_peer peer,
                kvf_region pr, kvf_region dr, uint8_t *pbuf, uint8_t *dbuf,
                uint32_t nseg, uint32_t len, bool tagless, uint64_t seed)
{
	struct kvf_seg segs[80];
	struct kvf_xfer_opts o = {0};
	struct kvf_event ev;
	uint64_t tag = seed;
	kvf_xfer x;
	int good = 1;

	for (uint32_t i = 0; i < nseg; i++) {
		uint64_t off = (uint64_t)i * 2 * len;
		segs[i] = (struct kvf_seg){pr, dr, off, off, len};
		tp_pattern_fill_at(pbuf + off, len, off, seed);
	}
	if (!tagless) {
		o.tag = &tag;
		o.tag_len = sizeof tag;
	}
	if (kvf_submit(pre, KVF_WRITE, peer, segs, nseg, &o, &x) != 0) {
		diag("submit: %s", kvf_last_error());
		return 0;
	}
	if (!tp_wait_xfer(pre, x, 10000, &ev) || ev.status != 0)
		return 0;
	if (!tagless && (!tp_wait_event(dec, KVF_EV_NOTIF, 10000, &ev, NULL) ||
	                 memcmp(ev.tag, &tag, sizeof tag) != 0))
		return 0;
	for (uint32_t i = 0; i < nseg; i++) {
		uint64_t off = (uint64_t)i * 2 * len;
		if (tp_pattern_mismatch_at(dbuf + off, len, off, seed) >= 0)
			good = 0;
	}
	return good;
}

static void two_sidecars(const char *inline_b, long long want_inline,
                         int want_sent)
{
	struct tp_daemon a, b;
	const char *const args_a[] = {"--provider", prov, NULL};
	const char *const args_b[] = {"--provider", prov, "--inline-max",
	                              inline_b, NULL};
	kvf_client *pre, *dec;
	uint8_t *pbuf, *dbuf;
	kvf_region pr, dr;
	kvf_peer peer;
	long long sent0, got0;
	static int run;
	char na[32], nb[32];

	run++;
	snprintf(na, sizeof na, "inl-a%d", run);
	snprintf(nb, sizeof nb, "inl-b%d", run);
	if (tp_daemon_start(&a, na, args_a, NULL) != 0 ||
	    tp_daemon_start(&b, nb, args_b, NULL) != 0)
		bail("sidecars did not start");
	tp_engine_open("prefill", &a, NULL, REG * 2, &pre, &pbuf, &pr);
	tp_engine_open("decode", &b, NULL, REG * 2, &dec, &dbuf, &dr);
	if (kvf_resolve_peer(pre, b.peer_url, "decode", 0, &peer) != 0)
		bail("resolve: %s", kvf_last_error());
	sent0 = tp_ctl_stats_field(&a, "inline_sent");
	got0 = tp_ctl_stats_field(&b, "inline_received");

	ok(push(pre, dec, peer, pr, dr, pbuf, dbuf, 1, 1, false, 11),
	   "B --inline-max %s: 1 byte arrives, notified", inline_b);
	ok(push(pre, dec, peer, pr, dr, pbuf, dbuf, 1, 8192, false, 12),
	   "8 KiB in one segment arrives, notified");
	ok(push(pre, dec, peer, pr, dr, pbuf, dbuf, 1, 8193, false, 13),
	   "8 KiB + 1 arrives, notified");
	ok(push(pre, dec, peer, pr, dr, pbuf, dbuf, 64, 100, false, 14),
	   "64 scattered segments of 100 bytes arrive, notified");
	ok(push(pre, dec, peer, pr, dr, pbuf, dbuf, 65, 100, false, 15),
	   "65 scattered segments arrive, notified");
	ok(push(pre, dec, peer, pr, dr, pbuf, dbuf, 1, SMALL, true, 16),
	   "a tagless 4 KiB WRITE arrives and completes");
	/* On shm a part ends inside the second piece. */
	ok(push(pre, dec, peer, pr, dr, pbuf, dbuf, 3, 2500, false, 17),
	   "3 segments of 2500 bytes arrive, notified");
	is_int((int)(tp_ctl_stats_field(&a, "inline_sent") - sent0),
	       want_sent, "A sent %d of them inline (1 byte, 8 KiB, 64 "
	       "segments, tagless, 3 x 2500; not 8 KiB + 1 nor 65 "
	       "segments)", want_sent);
	is_int((int)(tp_ctl_stats_field(&b, "inline_received") - got0),
	       (int)want_inline, "B applied as many");
	is_int((int)tp_ctl_stats_field(&b, "inline_dropped"), 0,
	       "B dropped none");
	kvf_close(pre);
	kvf_close(dec);
	ok(tp_daemon_stop(&a, SIGTERM, 5000) == 0 &&
	   tp_daemon_stop(&b, SIGTERM, 5000) == 0, "both stop cleanly");
}

/* ---- part 2: a rogue peer ---------------------------------------------- */

struct rogue {
	struct xfer_fabric *fab;
	uint64_t b_addr;
};

/* Handshake with url for engine as a sidecar would; the reply or NULL. */
static Kvf__Peer__HandshakeReply *handshake(struct rogue *r, const char *url,
                                            const char *engine,
                                            Kvf__Peer__Reply **keep)
{
	const struct xfer_fabric_info *fi = xfer_fabric_info(r->fab);
	Kvf__Peer__Request req = KVF__PEER__REQUEST__INIT;
	Kvf__Peer__Handshake h = KVF__PEER__HANDSHAKE__INIT;
	Kvf__Peer__Reply *rep = NULL;
	nng_socket s;
	nng_msg *m = NULL;

	h.proto_version = KVF_PEER_PROTO_VERSION;
	h.sidecar_id = "rogue";
	h.host_id = "rogue-host";
	h.provider = (char *)fi->provider;
	h.fabric_addr.data = (uint8_t *)fi->addr;
	h.fabric_addr.len = fi->addr_len;
	h.engine_name = (char *)engine;
	h.epoch = 7;
	h.nonce = 1;
	req.body_case = KVF__PEER__REQUEST__BODY_HANDSHAKE;
	req.handshake = &h;
	if (nng_req0_open(&s) != 0)
		return NULL;
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 5000);
	nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 5000);
	if (nng_dial(s, url, NULL, 0) == 0 &&
	    nng_msg_alloc(&m, kvf__peer__request__get_packed_size(&req)) ==
	            0) {
		kvf__peer__request__pack(&req, nng_msg_body(m));
		if (nng_sendmsg(s, m, 0) == 0 && nng_recvmsg(s, &m, 0) == 0) {
			rep = kvf__peer__reply__unpack(NULL, nng_msg_len(m),
			                               nng_msg_body(m));
		}
		nng_msg_free(m);
	}
	nng_close(s);
	if (!rep || rep->body_case != KVF__PEER__REPLY__BODY_HANDSHAKE) {
		if (rep)
			kvf__peer__reply__free_unpacked(rep, NULL);
		return NULL;
	}
	*keep = rep;
	return rep->handshake;
}

/* Send one message to B, wait for its completion and, up to ack_ms, for
 * B's answer (into *ack, magic 0 when none came). 1 when the message went
 * out. */
static int send_msg(struct rogue *r, const void *buf, size_t len,
                    struct sc_inline_ack *ack, int ack_ms)
{
	struct xfer_ctx ctx = {0};
	struct xfer_comp c[8];
	long until = tp_now_ms() + 5000, ack_until = 0;
	bool posted = false;
	int sent = 0;

	memset(ack, 0, sizeof *ack);
	while (tp_now_ms() < (sent ? ack_until : until)) {
		int n = 0;
		if (!posted) {
			/* EAGAIN while the provider connects to B. */
			int rc = xfer_post_send(r->fab, buf, len, r->b_addr,
			                        &ctx);
			if (rc != 0 && rc != KVF_EAGAIN)
				return 0;
			posted = rc == 0;
		}
		xfer_fabric_poll(r->fab, c, 8, &n);
		for (int i = 0; i < n; i++) {
			if (c[i].type == XFER_COMP_OP && c[i].ctx == &ctx) {
				if (c[i].status != 0)
					return 0;
				sent = 1;
				ack_until = tp_now_ms() + ack_ms;
			}
			if (c[i].type == XFER_COMP_RECV) {
				if (c[i].status == 0 &&
				    c[i].len == sizeof *ack)
					memcpy(ack, c[i].data, sizeof *ack);
				xfer_fabric_repost(r->fab, c[i].recv_slot);
			}
		}
		if (sent && ack->magic)
			return 1;
		if (!n)
			tp_sleep_ms(1);
	}
	return sent;
}

/* What one inline message says; built into buf by build(). */
struct spec {
	uint64_t session, epoch, xfer_id, seq;
	uint32_t nsegs;
	struct sc_inline_seg seg[SC_INLINE_SEGS + 1];
	const char *tag;
	uint64_t seed;
};

/* A spec for the engine of handshake reply hr, nsegs segments to come. */
static void spec_init(struct spec *s, const Kvf__Peer__HandshakeReply *hr,
                      uint32_t nsegs)
{
	memset(s, 0, sizeof *s);
	s->session = hr->engine_session_id;
	s->epoch = hr->epoch;
	s->nsegs = nsegs;
}

static size_t build(uint8_t *buf, const struct spec *s)
{
	struct sc_inline_msg m;
	uint8_t *p = buf + sizeof m;
	uint32_t bytes = 0;

	memset(&m, 0, sizeof m);
	m.magic = SC_INLINE_MAGIC;
	m.version = SC_INLINE_VERSION;
	m.tag_len = (uint16_t)strlen(s->tag);
	m.target_session = s->session;
	m.target_epoch = s->epoch;
	snprintf(m.src_engine, sizeof m.src_engine, "rogue-engine");
	m.nsegs = s->nsegs;
	m.src_key = sc_hash_str("rogue", 7);
	m.src_session = 9;
	m.xfer_id = s->xfer_id;
	m.seq = s->seq;
	m.cookie = 0xc00c1e0000000000ull + s->seq;
	memcpy(m.tag, s->tag, m.tag_len);
	memcpy(p, s->seg, s->nsegs * sizeof s->seg[0]);
	p += s->nsegs * sizeof s->seg[0];
	for (uint32_t i = 0; i < s->nsegs; i++) {
		tp_pattern_fill_at(p, s->seg[i].len, bytes, s->seed);
		p += s->seg[i].len;
		bytes += s->seg[i].len;
	}
	m.bytes = bytes;
	memcpy(buf, &m, sizeof m);
	return (size_t)(p - buf);
}

/* Send part idx of nparts of the whole message msg (total bytes): its
 * bytes [off, off + len), the header claiming claim bytes in all. */
static int send_part(struct rogue *r, const uint8_t *msg, uint32_t claim,
                     uint16_t idx, uint16_t nparts, uint32_t off,
                     uint32_t len, uint64_t seq, struct sc_inline_ack *ack,
                     int ack_ms)
{
	uint8_t p[sizeof(struct sc_inline_part) + 16384];
	struct sc_inline_part h = {
		.magic = SC_INLINE_PART_MAGIC, .version = SC_INLINE_VERSION,
		.index = idx, .nparts = nparts, .len = len, .offset = off,
		.total = claim, .src_key = sc_hash_str("rogue", 7),
		.seq = seq};

	memcpy(p, &h, sizeof h);
	memcpy(p + sizeof h, msg + off, len);
	return send_msg(r, p, sizeof h + len, ack, ack_ms);
}

/* The region of length len in a handshake reply, or NULL. */
static const Kvf__Peer__RegionDesc *region_of(
	const Kvf__Peer__HandshakeReply *hr, uint64_t len)
{
	for (size_t i = 0; i < hr->n_regions; i++)
		if (hr->regions[i]->length == len)
			return hr->regions[i];
	return NULL;
}

static struct sc_inline_seg seg_in(const Kvf__Peer__RegionDesc *r,
                                   uint64_t off, uint32_t len)
{
	return (struct sc_inline_seg){.raddr = r->remote_addr + off,
	                              .rkey = r->key,
	                              .region = r->region_id, .len = len};
}

enum mutation {
	M_NONE, M_REGION, M_KEY, M_PAST_END, M_BEFORE, M_OTHER_ENGINE,
	M_SECOND_BAD, M_SUM, M_TRUNCATED, M_NO_SEGS, M_TOO_MANY, M_EPOCH,
	M_SESSION, M_VERSION, M_LONG_TAG, M_SHORT, M_COUNT
};

static const struct {
	const char *what, *log;
} bad[M_COUNT] = {
	[M_REGION] = {"an unknown region", "is not registered here"},
	[M_KEY] = {"a wrong key", "the key does not match"},
	[M_PAST_END] = {"bytes past the region's end", "fall outside region"},
	[M_BEFORE] = {"an address before the region", "lies before region"},
	[M_OTHER_ENGINE] = {"another engine's region",
	                    "belongs to another engine"},
	[M_SECOND_BAD] = {"a sound segment then a bad one",
	                  "segment 1: region"},
	[M_SUM] = {"segments that do not add up", "segments add up to"},
	[M_TRUNCATED] = {"a truncated message", "where its header says"},
	[M_NO_SEGS] = {"no segments", "0 segments (1..64 allowed)"},
	[M_TOO_MANY] = {"65 segments", "65 segments (1..64 allowed)"},
	[M_EPOCH] = {"an earlier epoch", "earlier run of this sidecar"},
	[M_SESSION] = {"an unknown session", "the session is gone"},
	[M_VERSION] = {"version 2", "version 2, this sidecar speaks 1"},
	[M_LONG_TAG] = {"a tag past KVF_MAX_TAG", "tag longer than"},
	[M_SHORT] = {"10 bytes", "shorter than its header"},
};

static void rogue_peer(void)
{
	struct tp_daemon b;
	const char *const args[] = {"--provider", prov, NULL};
	struct xfer_fabric_config fc = {0};
	struct rogue r = {0};
	Kvf__Peer__Reply *keep1 = NULL, *keep2 = NULL;
	const Kvf__Peer__HandshakeReply *hr, *ho;
	const Kvf__Peer__RegionDesc *r1, *r3;
	kvf_client *dec, *oth;
	uint8_t *dbuf, *obuf, *before, *obefore, *buf;
	kvf_region dr, orr;
	struct kvf_event ev;
	struct spec s;
	struct sc_inline_ack ack;
	char err[256];
	int dropped = 0;
	char name[32];

	snprintf(name, sizeof name, "inl-target-%s", prov);
	if (tp_daemon_start(&b, name, args, NULL) != 0)
		bail("sidecar did not start");
	tp_engine_open("decode", &b, NULL, REG, &dec, &dbuf, &dr);
	tp_engine_open("other", &b, NULL, REG / 2, &oth, &obuf, &orr);
	memset(dbuf, 0xee, REG);
	memset(obuf, 0xdd, REG / 2);
	fc.provider = prov;
	fc.node = strcmp(prov, "shm") ? "127.0.0.1" : NULL;
	fc.rx_size = (uint32_t)SC_INLINE_MSG_SIZE(8192) + 4096;
	if (xfer_fabric_open(&fc, &r.fab, err, sizeof err) != 0)
		bail("rogue fabric: %s", err);
	hr = handshake(&r, b.peer_url, "decode", &keep1);
	ho = handshake(&r, b.peer_url, "other", &keep2);
	if (!hr || !ho)
		bail("handshakes failed");
	r1 = region_of(hr, REG);
	r3 = region_of(ho, REG / 2);
	ok(r1 && r3, "handshakes give the engines' regions");
	ok(hr->inline_msg_max >= SC_INLINE_MSG_SIZE(8192),
	   "the sidecar takes inline messages of %u bytes (8K default)",
	   hr->inline_msg_max);
	if (!r1 || !r3)
		bail("no regions in the handshakes");
	if (xfer_fabric_av_insert(r.fab, hr->fabric_addr.data,
	                          hr->fabric_addr.len, &r.b_addr, err,
	                          sizeof err) != 0)
		bail("the sidecar's address: %s", err);
	buf = malloc(SC_INLINE_MSG_SIZE(8192) + 4096);
	before = malloc(REG);
	obefore = malloc(REG / 2);

	/* A sound message first: proves the harness can land bytes. */
	spec_init(&s, hr, 2);
	s.seg[0] = seg_in(r1, 100, 50);
	s.seg[1] = seg_in(r1, 4000, 300);
	s.tag = "sound-1";
	s.seed = 5;
	s.xfer_id = 77;
	s.seq = 1;
	ok(send_msg(&r, buf, build(buf, &s), &ack, 5000) &&
	   ack.magic == SC_INLINE_ACK_MAGIC && ack.status == 0 &&
	   ack.xfer_id == 77 && ack.seq == 1 && ack.src_session == 9 &&
	   ack.cookie == 0xc00c1e0000000001ull,
	   "a sound inline message is answered: applied (status %d), for "
	   "its transfer", ack.status);
	ok(tp_wait_event(dec, KVF_EV_NOTIF, 5000, &ev, NULL) &&
	   ev.tag_len == 7 && memcmp(ev.tag, "sound-1", 7) == 0 &&
	   strcmp(ev.peer_engine, "rogue-engine") == 0,
	   "the engine is notified with its tag and the sender's name");
	ok(tp_pattern_mismatch_at(dbuf + 100, 50, 0, 5) < 0 &&
	   tp_pattern_mismatch_at(dbuf + 4000, 300, 50, 5) < 0 &&
	   dbuf[99] == 0xee && dbuf[150] == 0xee && dbuf[3999] == 0xee &&
	   dbuf[4300] == 0xee,
	   "both segments landed where they were aimed, nothing around them");

	for (int mu = M_REGION; mu < M_COUNT; mu++) {
		struct sc_inline_msg *m = (void *)buf;
		/* Without FI_MR_VIRT_ADDR a region starts at 0, and 8 bytes
		 * before it wrap around to far past its end. */
		const char *want = mu == M_BEFORE && r1->remote_addr < 8
		                           ? "fall outside region"
		                           : bad[mu].log;
		size_t len;
		int sent, notified;

		memcpy(before, dbuf, REG);
		memcpy(obefore, obuf, REG / 2);
		spec_init(&s, hr, 1);
		s.seg[0] = seg_in(r1, 8192, 256);
		s.tag = "bad";
		s.seed = 100 + (uint64_t)mu;
		s.xfer_id = 1000 + (uint64_t)mu;
		s.seq = 2 + (uint64_t)mu;
		switch (mu) {
		case M_REGION: s.seg[0].region = 999999; break;
		case M_KEY: s.seg[0].rkey ^= 1; break;
		case M_PAST_END: s.seg[0] = seg_in(r1, REG - 10, 100); break;
		case M_BEFORE: s.seg[0].raddr = r1->remote_addr - 8; break;
		case M_OTHER_ENGINE: s.seg[0] = seg_in(r3, 0, 256); break;
		case M_SECOND_BAD:
			s.nsegs = 2;
			s.seg[1] = seg_in(r1, 0, 64);
			s.seg[1].region = 999999;
			break;
		case M_EPOCH: s.epoch--; break;
		case M_SESSION: s.session += 12345; break;
		case M_TOO_MANY:
			s.nsegs = SC_INLINE_SEGS + 1;
			for (uint32_t i = 0; i < s.nsegs; i++)
				s.seg[i] = seg_in(r1, i * 16, 8);
			break;
		default: break;
		}
		len = build(buf, &s);
		switch (mu) {
		case M_SUM: {
			/* The header's byte count and the length agree; the
			 * segments claim one byte less. */
			struct sc_inline_seg *g = (void *)(buf + sizeof *m);
			g->len--;
			break;
		}
		case M_TRUNCATED: len--; break;
		case M_NO_SEGS: m->nsegs = 0; break;
		case M_VERSION: m->version = 2; break;
		case M_LONG_TAG: m->tag_len = KVF_MAX_TAG + 1; break;
		case M_SHORT: len = 10; break;
		default: break;
		}
		sent = send_msg(&r, buf, len, &ack,
		                mu == M_SHORT ? 300 : 5000);
		notified = tp_wait_event(dec, KVF_EV_NOTIF, 300, &ev,
		                         &tp_wait_quiet) ||
		           tp_wait_event(oth, KVF_EV_NOTIF, 50, &ev,
		                         &tp_wait_quiet);
		ok(sent && !notified && memcmp(before, dbuf, REG) == 0 &&
		   memcmp(obefore, obuf, REG / 2) == 0 &&
		   tp_daemon_log_count(&b, want) >= 1,
		   "%s: no byte changed in any region, nobody notified, "
		   "logged ('%s')", bad[mu].what, want);
		if (mu == M_SHORT)
			ok(!ack.magic, "no answer to 10 bytes (nothing to "
			   "answer to)");
		else
			ok(ack.magic == SC_INLINE_ACK_MAGIC &&
			   ack.status > 0 &&
			   ack.xfer_id == s.xfer_id && ack.seq == s.seq &&
			   ack.cookie == 0xc00c1e0000000000ull + s.seq &&
			   strstr(ack.msg, want),
			   "the sender is answered: %s: %.*s",
			   kvf_strerror(ack.status), (int)sizeof ack.msg,
			   ack.msg);
		dropped++;
	}
	/* Messages in parts (what a sender does where the provider's inject
	 * size is smaller than the message: shm). */
	{
		uint32_t total, third;
		int good;

		memcpy(before, dbuf, REG);
		spec_init(&s, hr, 1);
		s.seg[0] = seg_in(r1, 16384, 8192);
		s.tag = "parts-1";
		s.seed = 7;
		s.xfer_id = 500;
		s.seq = 500;
		total = (uint32_t)build(buf, &s);
		third = total / 3;
		good = send_part(&r, buf, total, 2, 3, 2 * third,
		                 total - 2 * third, 500, &ack, 50) &&
		       !ack.magic &&
		       send_part(&r, buf, total, 0, 3, 0, third, 500, &ack,
		                 50) &&
		       !ack.magic &&
		       send_part(&r, buf, total, 1, 3, third, third, 500, &ack,
		                 5000);
		ok(good && ack.magic && ack.status == 0 && ack.seq == 500,
		   "a message in 3 parts, last part first: answered (status "
		   "%d) once the last one came", ack.status);
		ok(tp_wait_event(dec, KVF_EV_NOTIF, 5000, &ev, NULL) &&
		   memcmp(ev.tag, "parts-1", 7) == 0 &&
		   tp_pattern_mismatch_at(dbuf + 16384, 8192, 0, 7) < 0 &&
		   memcmp(dbuf, before, 16384) == 0 &&
		   memcmp(dbuf + 16384 + 8192, before + 16384 + 8192,
		          REG - 16384 - 8192) == 0,
		   "its bytes landed, nothing around them, the engine was "
		   "notified");

		/* A repeated part is refused; the message still completes. */
		s.tag = "parts-2";
		s.seed = 8;
		s.seq = 501;
		total = (uint32_t)build(buf, &s);
		good = send_part(&r, buf, total, 0, 2, 0, total / 2, 501, &ack,
		                 50) &&
		       send_part(&r, buf, total, 0, 2, 0, total / 2, 501, &ack,
		                 50) &&
		       send_part(&r, buf, total, 1, 2, total / 2,
		                 total - total / 2, 501, &ack, 5000);
		dropped++;
		ok(good && ack.magic && ack.status == 0 &&
		   tp_wait_event(dec, KVF_EV_NOTIF, 5000, &ev, NULL) &&
		   tp_pattern_mismatch_at(dbuf + 16384, 8192, 0, 8) < 0 &&
		   tp_daemon_log_count(&b, "repeats an earlier part") >= 1,
		   "a repeated part is dropped and logged, the message lands");

		memcpy(before, dbuf, REG);
		/* Two halves that both claim offset 0: overlap and a gap. */
		s.seq = 502;
		s.seed = 9;
		total = (uint32_t)build(buf, &s);
		send_part(&r, buf, total, 0, 2, 0, total / 2, 502, &ack, 50);
		send_part(&r, buf, total, 1, 2, 0, total / 2, 502, &ack, 300);
		dropped++;
		ok(!ack.magic && !tp_wait_event(dec, KVF_EV_NOTIF, 200, &ev,
		                                &tp_wait_quiet) &&
		   memcmp(before, dbuf, REG) == 0 &&
		   tp_daemon_log_count(&b, "overlap or leave gaps") >= 1,
		   "overlapping parts: nothing applied, nobody notified, "
		   "logged");

		/* A whole larger than the sidecar takes; a bad index. */
		send_part(&r, buf, hr->inline_msg_max + 1, 0, 2, 0, 100, 503,
		          &ack, 100);
		send_part(&r, buf, total, 5, 4, 0, 100, 504, &ack, 100);
		dropped += 2;
		ok(tp_daemon_log_count(&b, "larger than this sidecar takes")
		           >= 1 &&
		   tp_daemon_log_count(&b, "bad part index or count") >= 1 &&
		   memcmp(before, dbuf, REG) == 0,
		   "a part claiming too large a whole, and one with a bad "
		   "index: refused, logged, nothing applied");

		/* Half a message: dropped after a second. */
		s.seq = 505;
		total = (uint32_t)build(buf, &s);
		send_part(&r, buf, total, 0, 2, 0, total / 2, 505, &ack, 50);
		tp_sleep_ms(1600);
		dropped++;
		ok(!tp_wait_event(dec, KVF_EV_NOTIF, 100, &ev,
		                  &tp_wait_quiet) &&
		   memcmp(before, dbuf, REG) == 0 &&
		   tp_daemon_log_count(&b, "parts missing after 1 s") >= 1,
		   "a message whose second part never comes: dropped after "
		   "1 s, logged, nothing applied");
	}
	is_int((int)tp_ctl_stats_field(&b, "inline_dropped"), dropped,
	       "kvferryctl stats counts the %d dropped", dropped);

	spec_init(&s, hr, 1);
	s.seg[0] = seg_in(r1, REG - 8192, 8192);
	s.tag = "sound-2";
	s.seed = 6;
	ok(send_msg(&r, buf, build(buf, &s), &ack, 5000) &&
	   ack.status == 0 && ack.magic &&
	   tp_wait_event(dec, KVF_EV_NOTIF, 5000, &ev, NULL) &&
	   tp_pattern_mismatch_at(dbuf + REG - 8192, 8192, 0, 6) < 0,
	   "after all that, 8 KiB up to the region's last byte lands");
	is_int((int)tp_ctl_stats_field(&b, "inline_received"), 4,
	       "and the sidecar counts 4 applied (2 whole, 2 in parts)");

	free(buf);
	free(before);
	free(obefore);
	kvf__peer__reply__free_unpacked(keep1, NULL);
	kvf__peer__reply__free_unpacked(keep2, NULL);
	xfer_fabric_close(r.fab);
	kvf_close(dec);
	kvf_close(oth);
	ok(tp_daemon_stop(&b, SIGTERM, 5000) == 0,
	   "the sidecar stops cleanly");
}

/* Whether every thread of pid shows as stopped within ms (SIGSTOP takes
 * effect some time after kill() returns). */
static int all_stopped(pid_t pid, int ms)
{
	long until = tp_now_ms() + ms;
	char dir[64];

	snprintf(dir, sizeof dir, "/proc/%d/task", (int)pid);
	while (tp_now_ms() < until) {
		DIR *d = opendir(dir);
		struct dirent *e;
		int running = 0;

		if (!d)
			return 0;
		while ((e = readdir(d))) {
			char path[384], *st, *p;
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof path, "%s/%s/stat", dir,
			         e->d_name);
			st = tp_read_file(path);
			/* The state follows the command's closing paren. */
			p = st ? strrchr(st, ')') : NULL;
			if (p && p[1] == ' ' && p[2] != 'T' && p[2] != 't')
				running++;
			free(st);
		}
		closedir(d);
		if (!running)
			return 1;
		tp_sleep_ms(1);
	}
	return 0;
}

/* A forged answer (right session, transfer and sequence number, wrong
 * cookie) must not end a sender's inline write: the target is stopped
 * while the rogue answers in its place, then let go. */
static void forged_answer(void)
{
	struct tp_daemon a, b;
	const char *const args[] = {"--provider", prov, NULL};
	struct xfer_fabric_config fc = {0};
	struct rogue r = {0};
	Kvf__Peer__Reply *keep = NULL;
	const Kvf__Peer__HandshakeReply *hr;
	kvf_client *pre, *dec;
	uint8_t *pbuf, *dbuf;
	kvf_region pr, dr;
	kvf_peer peer;
	struct kvf_event ev;
	struct sc_inline_ack fake, ack;
	uint64_t tag = 4242;
	struct kvf_xfer_opts o = {.tag = &tag, .tag_len = sizeof tag};
	struct kvf_seg seg;
	kvf_xfer x = 0;
	char na[32], nb[32], err[256];
	int early;

	snprintf(na, sizeof na, "forge-a-%s", prov);
	snprintf(nb, sizeof nb, "forge-b-%s", prov);
	if (tp_daemon_start(&a, na, args, NULL) != 0 ||
	    tp_daemon_start(&b, nb, args, NULL) != 0)
		bail("sidecars did not start");
	tp_engine_open("prefill", &a, NULL, REG, &pre, &pbuf, &pr);
	tp_engine_open("decode", &b, NULL, REG, &dec, &dbuf, &dr);
	if (kvf_resolve_peer(pre, b.peer_url, "decode", 0, &peer) != 0)
		bail("resolve: %s", kvf_last_error());
	fc.provider = prov;
	fc.node = strcmp(prov, "shm") ? "127.0.0.1" : NULL;
	if (xfer_fabric_open(&fc, &r.fab, err, sizeof err) != 0)
		bail("rogue fabric: %s", err);
	/* The rogue learns A's address and the prefill session's id. */
	if (!(hr = handshake(&r, a.peer_url, "prefill", &keep)) ||
	    xfer_fabric_av_insert(r.fab, hr->fabric_addr.data,
	                          hr->fabric_addr.len, &r.b_addr, err,
	                          sizeof err) != 0)
		bail("rogue handshake with A: %s", err);

	/* One inline write first: the fabric connection to B exists before
	 * B stops, so the next one is posted and waits for its answer. */
	seg = (struct kvf_seg){pr, dr, 2048, 2048, 512};
	if (kvf_submit(pre, KVF_WRITE, peer, &seg, 1, &o, &x) != 0 ||
	    !tp_wait_xfer(pre, x, 10000, &ev) || ev.status != 0 ||
	    !tp_wait_event(dec, KVF_EV_NOTIF, 10000, &ev, NULL))
		bail("warm-up write: %s", kvf_last_error());
	tp_pattern_fill(pbuf, 1024, 21);
	seg = (struct kvf_seg){pr, dr, 0, 0, 1024};
	kill(b.pid, SIGSTOP);
	if (!all_stopped(b.pid, 2000))
		diag("sidecar B (pid %d) did not stop within 2 s",
		     (int)b.pid);
	if (kvf_submit(pre, KVF_WRITE, peer, &seg, 1, &o, &x) != 0)
		bail("submit: %s", kvf_last_error());
	tp_sleep_ms(50);
	memset(&fake, 0, sizeof fake);
	fake.magic = SC_INLINE_ACK_MAGIC;
	fake.version = SC_INLINE_VERSION;
	fake.status = 0;
	fake.src_session = hr->engine_session_id;
	fake.xfer_id = x;
	fake.seq = 2; /* A's second inline write */
	fake.cookie = 0;
	send_msg(&r, &fake, sizeof fake, &ack, 0);
	early = tp_wait_xfer(pre, x, 400, &ev);
	if (early)
		diag("xfer %llu ended early: status %d: %s",
		     (unsigned long long)x, ev.status, ev.message);
	ok(!early && tp_daemon_log_count(&a, "with the wrong cookie") >= 1,
	   "%s: a forged answer (wrong cookie) while the target is stopped "
	   "does not complete the write; A logs it", prov);
	kill(b.pid, SIGCONT);
	ok(!early && tp_wait_xfer(pre, x, 10000, &ev) && ev.status == 0 &&
	   tp_wait_event(dec, KVF_EV_NOTIF, 10000, &ev, NULL) &&
	   tp_pattern_mismatch_at(dbuf, 1024, 0, 21) < 0,
	   "once the target runs again the write completes, its bytes there");

	kvf__peer__reply__free_unpacked(keep, NULL);
	xfer_fabric_close(r.fab);
	kvf_close(pre);
	kvf_close(dec);
	ok(tp_daemon_stop(&a, SIGTERM, 5000) == 0 &&
	   tp_daemon_stop(&b, SIGTERM, 5000) == 0, "both stop cleanly");
}

int main(void)
{
	const char *provs[] = {"tcp", "shm"};

	plan(2 * (2 * 11 + 5 + 2 * (M_COUNT - 1) + 4 + 6 + 3));
	for (int i = 0; i < 2; i++) {
		prov = provs[i];
		diag("provider %s", prov);
		two_sidecars("8K", 5, 5);
		/* B takes none: A sends everything as RDMA writes. */
		two_sidecars("0", 0, 0);
		rogue_peer();
		forged_answer();
	}
	return tap_exit_status();
}
