/* tests/xfer/fabric_open.c - opening rails on real libfabric providers:
 * automatic choice, forced tcp and shm, missing providers, info fields. */
#include "client/kvferry.h"
#include "tests/tap/tap.h"
#include "xfer/fabric.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rdma/fi_domain.h>

static char providers[1024];

static bool have_provider(const char *name)
{
	char *save = NULL, copy[sizeof(providers)];

	snprintf(copy, sizeof(copy), "%s", providers);
	for (char *t = strtok_r(copy, "\n", &save); t;
	     t = strtok_r(NULL, "\n", &save))
		if (strcmp(t, name) == 0)
			return true;
	return false;
}

/* Fields every open rail must have, whatever the provider. */
static void check_info(const struct xfer_fabric_info *in, const char *what)
{
	ok(in != NULL && in->provider[0] != '\0', "%s: provider named (%s)",
	   what, in ? in->provider : "?");
	ok(in->fabric[0] != '\0' && in->domain[0] != '\0',
	   "%s: fabric '%s' domain '%s'", what, in->fabric, in->domain);
	ok(in->tx_size > 0, "%s: tx_size %u", what, in->tx_size);
	ok(in->max_msg_size >= 1024, "%s: max_msg_size %llu", what,
	   (unsigned long long)in->max_msg_size);
	ok(in->addr_len > 0 && in->addr_len <= sizeof(in->addr),
	   "%s: address of %u bytes", what, in->addr_len);
	ok(in->addr_str[0] != '\0', "%s: address '%s'", what, in->addr_str);
	ok((in->mr_mode & ~(uint64_t)(FI_MR_LOCAL | FI_MR_VIRT_ADDR |
	                              FI_MR_ALLOCATED | FI_MR_PROV_KEY |
	                              FI_MR_ENDPOINT | FI_MR_HMEM)) == 0,
	   "%s: mr_mode 0x%llx within what we asked for", what,
	   (unsigned long long)in->mr_mode);
}

static void test_auto(void)
{
	struct xfer_fabric_config cfg = { 0 };
	struct xfer_fabric *f = NULL;
	char err[512] = "";
	int rc;

	rc = xfer_fabric_open(&cfg, &f, err, sizeof(err));
	is_int(rc, 0, "auto: open (%s)", err);
	if (rc != 0) {
		skip(9, "auto open failed");
		return;
	}
	const struct xfer_fabric_info *in = xfer_fabric_info(f);
	check_info(in, "auto");
	ok(strcmp(in->provider, "udp;ofi_rxd") != 0 &&
	       strcmp(in->provider, "sockets") != 0,
	   "auto: skips udp and sockets (got %s)", in->provider);
	ok(xfer_fabric_wait_fd(f) >= -1, "auto: wait fd %d",
	   xfer_fabric_wait_fd(f));
	xfer_fabric_close(f);
}

static void test_forced(const char *name, const char *want_prov)
{
	struct xfer_fabric_config cfg = { .provider = name };
	struct xfer_fabric *f = NULL;
	char err[512] = "";
	int rc;

	if (!have_provider(want_prov)) {
		skip(9, "provider %s not installed here", want_prov);
		return;
	}
	rc = xfer_fabric_open(&cfg, &f, err, sizeof(err));
	is_int(rc, 0, "forced '%s': open (%s)", name, err);
	if (rc != 0) {
		skip(8, "open failed");
		return;
	}
	const struct xfer_fabric_info *in = xfer_fabric_info(f);
	is_str(in->provider, want_prov, "forced '%s': got %s", name,
	       want_prov);
	check_info(in, name);
	xfer_fabric_close(f);
}

static void test_missing(void)
{
	struct xfer_fabric_config cfg = { .provider = "nosuch" };
	struct xfer_fabric *f = (struct xfer_fabric *)&cfg;
	char err[512] = "";
	int rc;

	rc = xfer_fabric_open(&cfg, &f, err, sizeof(err));
	is_int(rc, KVF_ECONFIG, "forced 'nosuch': KVF_ECONFIG");
	ok(f == (struct xfer_fabric *)&cfg, "nosuch: output left alone");
	like(err, "nosuch", "nosuch: message names the provider");
	like(err, "tcp;ofi_rxm", "nosuch: message lists usable providers");
	diag("%s", err);

	/* A full name only matches itself. */
	cfg.provider = "tcp;nosuch";
	rc = xfer_fabric_open(&cfg, &f, err, sizeof(err));
	is_int(rc, KVF_ECONFIG, "forced 'tcp;nosuch': KVF_ECONFIG");
}

static void test_node(void)
{
	struct xfer_fabric_config cfg = { .provider = "tcp",
		                          .node = "127.0.0.1" };
	struct xfer_fabric *f = NULL;
	char err[512] = "";
	int rc;

	rc = xfer_fabric_open(&cfg, &f, err, sizeof(err));
	is_int(rc, 0, "tcp on node 127.0.0.1: open (%s)", err);
	if (rc == 0) {
		like(xfer_fabric_info(f)->addr_str, "127.0.0.1",
		     "node: endpoint bound to 127.0.0.1");
		is_str(xfer_fabric_info(f)->domain, "lo",
		       "node: domain is lo");
		xfer_fabric_close(f);
	} else {
		skip(2, "open failed");
	}

	/* An address no interface has: a clear error, no crash. */
	cfg.node = "203.0.113.77";
	f = NULL;
	rc = xfer_fabric_open(&cfg, &f, err, sizeof(err));
	ok(rc == KVF_ECONFIG || rc == KVF_EFABRIC,
	   "node 203.0.113.77: refused (%d: %s)", rc, err);
	ok(f == NULL, "node 203.0.113.77: no rail");
	if (rc == 0)
		xfer_fabric_close(f);
}

static void test_hmem_and_cuda(void)
{
	struct xfer_fabric_config cfg = { .provider = "tcp",
		                          .want_hmem = true,
		                          .rx_count = 8,
		                          .rx_size = 256 };
	struct xfer_fabric *f = NULL;
	struct xfer_mr *mr = NULL;
	char err[512] = "";
	static char buf[4096];
	int rc;

	rc = xfer_fabric_open(&cfg, &f, err, sizeof(err));
	is_int(rc, 0, "tcp with want_hmem: opens host-only (%s)", err);
	if (rc != 0) {
		skip(3, "open failed");
		return;
	}
	ok(!xfer_fabric_info(f)->hmem_cuda, "tcp: hmem_cuda false");
	rc = xfer_mr_reg(f, buf, sizeof(buf), XFER_MEM_CUDA, 0, 1, &mr);
	is_int(rc, KVF_ENOTSUP, "cuda registration without hmem: ENOTSUP");
	rc = xfer_mr_reg(f, buf, sizeof(buf), XFER_MEM_HOST, 0, 1, &mr);
	is_int(rc, 0, "host registration works");
	xfer_mr_close(mr);
	xfer_fabric_close(f);
}

int main(void)
{
	plan(54);
	xfer_fabric_list_providers(providers, sizeof(providers));
	ok(providers[0] != '\0', "list_providers names some");
	diag("usable providers:\n%s", providers);
	ok(have_provider("tcp;ofi_rxm"), "tcp;ofi_rxm usable");
	xfer_fabric_close(NULL);
	ok(1, "close(NULL) is harmless");
	test_auto();
	test_forced("tcp", "tcp;ofi_rxm");
	test_forced("tcp;ofi_rxm", "tcp;ofi_rxm");
	test_forced("shm", "shm");
	test_missing();
	test_node();
	test_hmem_and_cuda();
	return tap_exit_status();
}
