/*
 * tests/tap/engine.c - set-up of a test's engines (see engine.h). The
 * steps bail rather than fail a point: no later point of the test would
 * mean anything without them, and the bail names which engine and which
 * call, with the library's last error.
 */
#include "tests/tap/engine.h"

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
