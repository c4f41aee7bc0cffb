/*
 * tests/tap/engine.c - set-up of a test's engines (see engine.h). The
 * steps bail rather than fail a point: no later point of the test would
 * mean anything without them, and the bail names which engine and which
 * call, with the library's last error.
 */
#include "tests/tap/engine.h"

#include <signal.h>
#include <stdio.h>

#include "tests/tap/tap.h"

void tp_engine_open(const char *name, const struct tp_daemon *d,
                    const struct kvf_connect_opts *o, size_t len,
                    kvf_client **c, uint8_t **buf, kvf_region *region)
{
	struct kvf_connect_opts co = {0};
	int rc;

	if (o)
		co = *o;
	co.socket_path = d->engine_socket;
	rc = kvf_connect(name, &co, c);
	if (rc != 0)
		bail("engine %s: kvf_connect(%s) failed: %s (%d): %s", name,
		     d->engine_socket, kvf_strerror(rc), rc, kvf_last_error());
	if (len == 0)
		return;
	rc = kvf_alloc_host(*c, len, NULL, (void **)buf, region);
	if (rc != 0)
		bail("engine %s: kvf_alloc_host(%zu bytes) on %s failed: %s "
		     "(%d): %s", name, len, d->dir, kvf_strerror(rc), rc,
		     kvf_last_error());
}

void tp_pair_open(struct tp_pair *p, const char *prefix,
                  const char *const *args_a, const char *const *args_b,
                  size_t len)
{
	char na[64], nb[64];

	snprintf(na, sizeof na, "%s-a", prefix);
	snprintf(nb, sizeof nb, "%s-b", prefix);
	if (tp_daemon_start(&p->a, na, args_a, NULL) != 0)
		bail("sidecar %s did not start", na);
	if (tp_daemon_start(&p->b, nb, args_b, NULL) != 0)
		bail("sidecar %s did not start", nb);
	tp_engine_open("prefill", &p->a, NULL, len, &p->pre, &p->pbuf,
	               &p->pr);
	tp_engine_open("decode", &p->b, NULL, len, &p->dec, &p->dbuf, &p->dr);
	if (kvf_resolve_peer(p->pre, p->b.peer_url, "decode", 0, &p->peer) !=
	    0)
		bail("prefill: kvf_resolve_peer(%s, decode) failed: %s",
		     p->b.peer_url, kvf_last_error());
}

int tp_pair_close(struct tp_pair *p)
{
	int a, b;

	kvf_close(p->pre);
	kvf_close(p->dec);
	a = tp_daemon_stop(&p->a, SIGTERM, 5000);
	b = tp_daemon_stop(&p->b, SIGTERM, 5000);
	return a == 0 && b == 0;
}
