/*
 * tests/tap/events.h - waiting, with a bound, for the kvf events a test
 * expects: the next one of a type, the completion of one transfer, or the
 * completions of a set of transfers. Built on client/kvferry.h only, so any
 * program that links libkvferry or libkvfcore can use it.
 */
#ifndef KVF_TAP_EVENTS_H
#define KVF_TAP_EVENTS_H

#include "client/kvferry.h"
#include "tests/tap/tap.h"

/* How tp_wait_event treats what it meets; all zero is the default. */
struct tp_wait_opts {
	/* Not 0: wait for the KVF_EV_XFER_DONE of this transfer only. */
	kvf_xfer xfer;
	/* Where events passed over, a failed kvf_wait and a timeout are
	 * reported (TP_SAY_DIAG by default), named by who when not NULL. */
	enum tp_say say;
	const char *who;
	/* Not NULL: incremented for each event passed over. */
	int *others;
	/* Not NULL: 0 after a timeout, kvf_wait's KVF_E* code after it
	 * failed; untouched when the event came. */
	int *err;
};

/* Quiet: passes events over and times out without a word. */
extern const struct tp_wait_opts tp_wait_quiet;

/* For benchmarks, whose stdout is data: what is said goes to stderr. */
extern const struct tp_wait_opts tp_wait_stderr;

/*
 * Wait up to ms (at least one kvf_wait, however small ms) for the next
 * event of type on c; the events before it are taken and dropped. o may
 * be NULL (the defaults). Returns 1 with the event in *ev, or 0 when none
 * came in time or kvf_wait failed (*ev then holds the last event taken,
 * if any). Blocks; for the thread that owns c's events.
 */
int tp_wait_event(kvf_client *c, enum kvf_event_type type, int ms,
                  struct kvf_event *ev, const struct tp_wait_opts *o);

/* tp_wait_event for the KVF_EV_XFER_DONE of transfer x, with the default
 * options (events passed over said with diag()). */
int tp_wait_xfer(kvf_client *c, kvf_xfer x, int ms, struct kvf_event *ev);

/*
 * Wait up to ms for the completions of all n transfers in ids, in any
 * order, dropping other events. Returns 1 when every one came and ended
 * with status 0, else 0; each failed one is said with diag() with its
 * message, which *ev also holds for the last one taken.
 */
int tp_wait_xfers(kvf_client *c, const kvf_xfer *ids, int n, int ms,
                  struct kvf_event *ev);

#endif
