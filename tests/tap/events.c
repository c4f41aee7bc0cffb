/*
 * tests/tap/events.c - bounded waits for kvf events (see events.h).
 * kvf_wait returns at the first event, so each call is given all that is
 * left of the caller's bound: the wait ends on the event it looks for, or
 * at the bound however the other events trickle in, and never later.
 */
#include "tests/tap/events.h"

#include <stdio.h>

#include "tests/tap/clock.h"

const struct tp_wait_opts tp_wait_quiet = {.say = TP_SAY_QUIET};
const struct tp_wait_opts tp_wait_stderr = {.say = TP_SAY_STDERR};

static const char *type_name(enum kvf_event_type t)
{
	switch (t) {
	case KVF_EV_XFER_DONE:
		return "completion";
	case KVF_EV_NOTIF:
		return "notification";
	}
	return "event";
}

/* One kvf_wait for at most what is left until deadline. */
static int take(kvf_client *c, long deadline, struct kvf_event *ev, int *n)
{
	long left = deadline - tp_now_ms();

	*n = 0;
	return kvf_wait(c, ev, 1, left > 0 ? (int)left : 0, n);
}

int tp_wait_event(kvf_client *c, enum kvf_event_type type, int ms,
                  struct kvf_event *ev, const struct tp_wait_opts *o)
{
	static const struct tp_wait_opts defaults;
	long deadline = tp_now_ms() + ms;
	char who[80] = "";

	if (!o)
		o = &defaults;
	if (o->who)
		snprintf(who, sizeof who, "%s: ", o->who);
	for (;;) {
		int n, rc = take(c, deadline, ev, &n);

		if (rc != 0) {
			tp_say(o->say, "%skvf_wait() failed: %s (%d): %s", who,
			       kvf_strerror(rc), rc, kvf_last_error());
			if (o->err)
				*o->err = rc;
			return 0;
		}
		if (n == 1 && ev->type == type &&
		    (!o->xfer || ev->xfer == o->xfer))
			return 1;
		if (n == 1) {
			tp_say(o->say, "%spassed over a %s (xfer %llu, status "
			       "%d: %s)", who, type_name(ev->type),
			       (unsigned long long)ev->xfer, ev->status,
			       ev->message);
			if (o->others)
				(*o->others)++;
		}
		if (tp_now_ms() >= deadline)
			break;
	}
	if (o->xfer)
		tp_say(o->say, "%sno completion of xfer %llu within %d ms", who,
		       (unsigned long long)o->xfer, ms);
	else
		tp_say(o->say, "%sno %s within %d ms", who, type_name(type),
		       ms);
	if (o->err)
		*o->err = 0;
	return 0;
}

int tp_wait_xfer(kvf_client *c, kvf_xfer x, int ms, struct kvf_event *ev)
{
	struct tp_wait_opts o = {.xfer = x};

	return tp_wait_event(c, KVF_EV_XFER_DONE, ms, ev, &o);
}

int tp_wait_xfers(kvf_client *c, const kvf_xfer *ids, int n, int ms,
                  struct kvf_event *ev)
{
	long deadline = tp_now_ms() + ms;
	int left = n, good = 1;

	while (left > 0) {
		int got, rc = take(c, deadline, ev, &got);

		if (rc != 0) {
			diag("kvf_wait() failed: %s (%d): %s", kvf_strerror(rc),
			     rc, kvf_last_error());
			return 0;
		}
		for (int i = 0; got == 1 && i < n; i++) {
			if (ev->type != KVF_EV_XFER_DONE || ids[i] != ev->xfer)
				continue;
			left--;
			if (ev->status) {
				good = 0;
				diag("xfer %llu: %s",
				     (unsigned long long)ev->xfer, ev->message);
			}
		}
		if (left > 0 && tp_now_ms() >= deadline) {
			diag("%d of %d completions missing after %d ms", left,
			     n, ms);
			return 0;
		}
	}
	return good;
}
