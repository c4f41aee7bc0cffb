/*
 * xfer/topo.c - PCI distances from sysfs paths. A device's canonical
 * sysfs path lists every bridge above it, so the hop count between two
 * devices is the number of path components after their common prefix on
 * both sides; no hwloc needed, and a test can build a fake tree.
 */
#include "xfer/topo.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/kvferry.h"

static const char *root_of(const char *root)
{
	return root && *root ? root : "/sys";
}

static int resolve(const char *path, char *out, size_t len)
{
	char real[PATH_MAX];

	if (len)
		out[0] = '\0';
	if (!realpath(path, real))
		return KVF_ENOENT;
	if (strlen(real) >= len)
		return KVF_EINVAL;
	memcpy(out, real, strlen(real) + 1);
	return 0;
}

int xfer_topo_pci_path(const char *root, const char *bdf, char *out,
                       size_t len)
{
	unsigned dom, bus, dev, fn;
	char path[PATH_MAX];

	if (len)
		out[0] = '\0';
	if (!bdf || sscanf(bdf, "%x:%x:%x.%x", &dom, &bus, &dev, &fn) != 4)
		return KVF_EINVAL;
	/* CUDA pads the domain to 8 digits; sysfs uses 4. */
	snprintf(path, sizeof path, "%s/bus/pci/devices/%04x:%02x:%02x.%x",
	         root_of(root), dom & 0xffffu, bus & 0xffu, dev & 0x1fu,
	         fn & 0x7u);
	return resolve(path, out, len);
}

int xfer_topo_netdev_path(const char *root, const char *name, char *out,
                          size_t len)
{
	static const char *const classes[] = {"net", "infiniband"};
	char path[PATH_MAX];

	if (len)
		out[0] = '\0';
	if (!name || !*name || strchr(name, '/'))
		return KVF_EINVAL;
	for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++) {
		snprintf(path, sizeof path, "%s/class/%s/%s/device",
		         root_of(root), classes[i], name);
		if (resolve(path, out, len) == 0)
			return 0;
	}
	return KVF_ENOENT;
}

/* Components of a path, '/'-separated, empty ones skipped. */
static int split(const char *p, const char **parts, size_t *lens, int max)
{
	int n = 0;

	while (*p && n < max) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		parts[n] = p;
		lens[n] = strcspn(p, "/");
		p += lens[n];
		n++;
	}
	return n;
}

int xfer_topo_distance(const char *a, const char *b)
{
	const char *pa[64], *pb[64];
	size_t la[64], lb[64];
	int na, nb, common = 0;

	if (!a || !b || !*a || !*b)
		return -1;
	na = split(a, pa, la, 64);
	nb = split(b, pb, lb, 64);
	while (common < na && common < nb && la[common] == lb[common] &&
	       strncmp(pa[common], pb[common], la[common]) == 0)
		common++;
	return (na - common) + (nb - common);
}

uint32_t xfer_topo_nearest(const char *dev, const char *const *rails,
                           int nrails)
{
	uint32_t all, mask = 0;
	int best = INT_MAX;

	if (nrails > XFER_TOPO_MAX_RAILS)
		nrails = XFER_TOPO_MAX_RAILS;
	if (nrails <= 0)
		return 0;
	all = nrails == 32 ? UINT32_MAX : (1u << nrails) - 1;
	for (int i = 0; i < nrails; i++) {
		int d = xfer_topo_distance(dev, rails[i]);
		if (d < 0)
			continue;
		if (d < best) {
			best = d;
			mask = 0;
		}
		if (d == best)
			mask |= 1u << i;
	}
	return mask ? mask : all;
}
