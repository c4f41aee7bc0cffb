/*
 * tests/tap/ctl.h - figures of a running sidecar as `kvferryctl -o json
 * status` reports them: a top-level counter, or the bytes each rail posted.
 * Each call runs kvferryctl once, bounded (10 s).
 */
#ifndef KVF_TAP_CTL_H
#define KVF_TAP_CTL_H

#include "tests/tap/proc.h"

/* The JSON of `kvferryctl -u <d's control URL> -o json status`,
 * malloc'ed; NULL when kvferryctl did not run or failed. */
char *tp_ctl_status_json(const struct tp_daemon *d);

/* The integer after the first "key": in json at or after from; -1 when
 * from is NULL or holds no such key. */
long long tp_json_int(const char *from, const char *key);

/* A numeric top-level field of d's status ("engines", "regions",
 * "xfers_in_flight", ...); -1 when unavailable. */
long long tp_ctl_status_field(const struct tp_daemon *d, const char *field);

/* A counter of `kvferryctl -o json stats` ("inline_sent", "writes",
 * ...; a short interval); -1 when unavailable. */
long long tp_ctl_stats_field(const struct tp_daemon *d, const char *field);
/* The rails d's status lists, and the bytes rail i posted in bytes[i] for
 * i < max (bytes may be NULL); -1 when the status was unavailable. */
int tp_ctl_rails(const struct tp_daemon *d, long long *bytes, int max);

/* The bytes rail idx of d posted; -1 when d lists no such rail. */
long long tp_ctl_rail_bytes(const struct tp_daemon *d, int idx);

#endif
