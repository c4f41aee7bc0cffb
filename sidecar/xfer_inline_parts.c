/*
 * sidecar/xfer_inline_parts.c - the target's side of inline messages sent
 * in parts (struct sc_inline_part in sidecar/xfers.h).
 *
 * shm moves a message of up to its inject size (4 KiB) by two memory
 * copies through a shared buffer, and a larger one by a copy across the
 * two processes plus an answer: for a 4 KiB WRITE inline, whose message is
 * its bytes plus a header, that larger path cost as much as the RDMA write
 * it replaces. So the sender cuts such a message into parts that each fit
 * the inject size, and here they are put back together, in whatever
 * order they come, into one buffer per (sender, sequence number). The
 * whole message then takes the same path as one that came whole
 * (sc_inline_deliver: checks, copy, notification, answer).
 *
 * Parts are checked before a byte is copied: their header's own
 * consistency, the whole message's size against what this sidecar
 * advertised, overlaps and duplicates. A message whose parts stop coming
 * is dropped after PARTS_MAX_AGE_NS (its sender's transfer ends
 * unconfirmed at its deadline); at most MAX_ASMS are assembled at once,
 * the oldest dropped first.
 */
#include "sidecar/xfers_int.h"

#include <stdlib.h>
#include <string.h>

#include "sidecar/daemon.h"
#include "sidecar/log.h"

#define PARTS_MAX_AGE_NS 1000000000ull
#define MAX_ASMS 256u

struct sc_inline_asm {
	struct sc_inline_asm *next;
	uint64_t src_key;
	uint64_t seq;
	uint64_t first_ns;
	uint32_t total;
	uint32_t nparts;
	uint32_t got_mask;
	uint32_t off[SC_INLINE_PARTS]; /* each part's place, by index */
	uint32_t len[SC_INLINE_PARTS];
	_Alignas(8) uint8_t buf[]; /* the whole message (its header has
	                               * 8-byte fields) */
};

static void dropped(struct sc_xfers *x, const char *fmt,
                    const struct sc_inline_part *h, const char *why)
{
	atomic_fetch_add_explicit(&x->d->stats.inline_dropped, 1,
	                          memory_order_relaxed);
	sc_warn(fmt, (unsigned long long)(h ? h->seq : 0), why);
}

/* The header's own consistency; NULL when sound, else why not. */
static const char *part_refused(const struct sc_xfers *x,
                                const struct sc_inline_part *h,
                                size_t len)
{
	if (h->version != SC_INLINE_VERSION)
		return "unknown version";
	if (h->nparts < 2 || h->nparts > SC_INLINE_PARTS ||
	    h->index >= h->nparts)
		return "bad part index or count";
	if (len != sizeof *h + h->len)
		return "length differs from its header";
	if (h->total < sizeof(struct sc_inline_msg) ||
	    h->total > x->d->inline_msg_max)
		return "whole message larger than this sidecar takes";
	if (h->offset > h->total || h->len > h->total - h->offset ||
	    h->len == 0)
		return "part outside its message";
	return NULL;
}

/* Whether the parts cover the whole message exactly once: walked from
 * offset 0, each next part must start where the last one ended. */
static bool tiles(const struct sc_inline_asm *a)
{
	uint32_t at = 0, used = 0;

	while (at < a->total) {
		uint32_t i;
		for (i = 0; i < a->nparts; i++)
			if (!(used & (1u << i)) && a->off[i] == at)
				break;
		if (i == a->nparts)
			return false;
		used |= 1u << i;
		at += a->len[i];
	}
	return at == a->total && used == (1u << a->nparts) - 1;
}

static void asm_unlink(struct sc_xfers *x, struct sc_inline_asm *a)
{
	struct sc_inline_asm **pp = &x->asms;

	while (*pp && *pp != a)
		pp = &(*pp)->next;
	if (*pp)
		*pp = a->next;
}

static struct sc_inline_asm *asm_find(struct sc_xfers *x, uint64_t key,
                                      uint64_t seq, uint32_t *n)
{
	*n = 0;
	for (struct sc_inline_asm *a = x->asms; a; a = a->next, (*n)++)
		if (a->src_key == key && a->seq == seq)
			return a;
	return NULL;
}

void sc_inline_on_part(struct sc_xfers *x, const void *data, size_t len)
{
	const struct sc_inline_part *h = data;
	struct sc_inline_asm *a;
	const char *no;
	uint32_t n;

	if (len < sizeof *h) {
		dropped(x, "fabric: inline part %llu (short) dropped: %s",
		        NULL, "shorter than its header");
		return;
	}
	if ((no = part_refused(x, h, len))) {
		dropped(x, "fabric: inline part of message %llu dropped: %s",
		        h, no);
		return;
	}
	a = asm_find(x, h->src_key, h->seq, &n);
	if (!a) {
		if (n >= MAX_ASMS) {
			struct sc_inline_asm *old = x->asms;
			x->asms = old->next;
			dropped(x, "fabric: inline message %llu dropped: %s",
			        NULL, "too many messages being assembled");
			free(old);
		}
		/* Not zeroed: it is delivered only once its parts tile
		 * it whole. */
		if (!(a = malloc(sizeof *a + h->total))) {
			dropped(x, "fabric: inline part of message %llu "
			        "dropped: %s", h, "out of memory");
			return;
		}
		memset(a, 0, sizeof *a);
		a->src_key = h->src_key;
		a->seq = h->seq;
		a->total = h->total;
		a->nparts = h->nparts;
		/* The turn's clock: the one sc_inline_parts_expire gets. */
		a->first_ns = x->turn_ns;
		/* Appended: the list stays oldest first. */
		{
			struct sc_inline_asm **pp = &x->asms;
			while (*pp)
				pp = &(*pp)->next;
			*pp = a;
		}
	}
	if (a->total != h->total || a->nparts != h->nparts ||
	    (a->got_mask & (1u << h->index))) {
		dropped(x, "fabric: inline part of message %llu dropped: %s",
		        h, "it contradicts or repeats an earlier part");
		return;
	}
	memcpy(a->buf + h->offset, (const uint8_t *)data + sizeof *h, h->len);
	a->got_mask |= 1u << h->index;
	a->off[h->index] = h->offset;
	a->len[h->index] = h->len;
	if (a->got_mask != (1u << a->nparts) - 1)
		return;
	asm_unlink(x, a);
	if (!tiles(a))
		dropped(x, "fabric: inline message %llu dropped: %s", h,
		        "its parts overlap or leave gaps");
	else
		sc_inline_deliver(x, a->buf, a->total);
	free(a);
}

void sc_inline_parts_expire(struct sc_xfers *x, uint64_t now)
{
	while (x->asms && now > x->asms->first_ns &&
	       now - x->asms->first_ns > PARTS_MAX_AGE_NS) {
		struct sc_inline_asm *a = x->asms;
		struct sc_inline_part h = {.seq = a->seq};
		x->asms = a->next;
		dropped(x, "fabric: inline message %llu dropped: %s", &h,
		        "parts missing after 1 s");
		free(a);
	}
}

void sc_inline_parts_fini(struct sc_xfers *x)
{
	while (x->asms) {
		struct sc_inline_asm *a = x->asms;
		x->asms = a->next;
		free(a);
	}
}
