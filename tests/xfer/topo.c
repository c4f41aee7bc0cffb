/*
 * xfer/topo: PCI distances and the choice of the rails nearest a GPU, on a
 * fake sysfs tree shaped like a p5 node's (two root complexes, a PCIe
 * switch under each with a GPU and two NICs, a veth with no device).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/kvferry.h"
#include "tests/tap/proc.h"
#include "tests/tap/tap.h"
#include "xfer/topo.h"

static char root[1024];

static void mkdirs(const char *path)
{
	char tmp[PATH_MAX];

	snprintf(tmp, sizeof tmp, "%s", path);
	for (char *p = tmp + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			mkdir(tmp, 0755);
			*p = '/';
		}
	mkdir(tmp, 0755);
}

/* A device at devices/<chain> and its links under bus/pci/devices and,
 * when name is given, class/<cls>/<name>/device. */
static void device(const char *chain, const char *bdf, const char *cls,
                   const char *name)
{
	char dev[PATH_MAX], link[PATH_MAX];

	snprintf(dev, sizeof dev, "%s/devices/%s", root, chain);
	mkdirs(dev);
	snprintf(link, sizeof link, "%s/bus/pci/devices/%s", root, bdf);
	if (symlink(dev, link) != 0)
		bail("symlink %s: failed", link);
	if (name) {
		snprintf(link, sizeof link, "%s/class/%s/%s", root, cls, name);
		mkdirs(link);
		snprintf(link, sizeof link, "%s/class/%s/%s/device", root, cls,
		         name);
		if (symlink(dev, link) != 0)
			bail("symlink %s: failed", link);
	}
}

int main(void)
{
	char gpu0[PATH_MAX], gpu1[PATH_MAX], nic[4][PATH_MAX], veth[PATH_MAX];
	char p[PATH_MAX];

	plan(20);
	snprintf(root, sizeof root, "%s/sys", tp_tmpdir());
	mkdirs(root);
	snprintf(p, sizeof p, "%s/bus/pci/devices", root);
	mkdirs(p);
	snprintf(p, sizeof p, "%s/class/net/veth1", root);
	mkdirs(p); /* virtual: no device link */
	/* Socket 0: switch 0000:10 with GPU 0 and NICs rdmap0, rdmap1. */
	device("pci0000:00/0000:00:01.0/0000:10:00.0/0000:11:00.0",
	       "0000:11:00.0", NULL, NULL);
	device("pci0000:00/0000:00:01.0/0000:10:00.0/0000:12:00.0",
	       "0000:12:00.0", "infiniband", "rdmap0");
	device("pci0000:00/0000:00:01.0/0000:10:00.0/0000:13:00.0",
	       "0000:13:00.0", "infiniband", "rdmap1");
	/* Socket 1: switch 0000:90 with GPU 1, NIC rdmap2 and eth1. */
	device("pci0000:80/0000:80:01.0/0000:90:00.0/0000:91:00.0",
	       "0000:91:00.0", NULL, NULL);
	device("pci0000:80/0000:80:01.0/0000:90:00.0/0000:92:00.0",
	       "0000:92:00.0", "infiniband", "rdmap2");
	device("pci0000:80/0000:80:01.0/0000:90:00.0/0000:93:00.0",
	       "0000:93:00.0", "net", "eth1");

	is_int(xfer_topo_pci_path(root, "00000000:11:00.0", gpu0, sizeof gpu0),
	       0, "a CUDA-style bus id (8-digit domain) resolves");
	like(gpu0, "0000:10:00.0/0000:11:00.0", "to the device under its switch");
	is_int(xfer_topo_pci_path(root, "0000:91:00.0", gpu1, sizeof gpu1), 0,
	       "a sysfs-style bus id resolves");
	is_int(xfer_topo_pci_path(root, "0000:55:00.0", p, sizeof p),
	       KVF_ENOENT, "a device that is not there: KVF_ENOENT");
	is_str(p, "", "and an empty path");
	is_int(xfer_topo_pci_path(root, "nonsense", p, sizeof p), KVF_EINVAL,
	       "a malformed bus id: KVF_EINVAL");
	is_int(xfer_topo_netdev_path(root, "rdmap0", nic[0], sizeof nic[0]), 0,
	       "an RDMA device resolves through class/infiniband");
	xfer_topo_netdev_path(root, "rdmap1", nic[1], sizeof nic[1]);
	xfer_topo_netdev_path(root, "rdmap2", nic[2], sizeof nic[2]);
	is_int(xfer_topo_netdev_path(root, "eth1", nic[3], sizeof nic[3]), 0,
	       "a network interface resolves through class/net");
	is_int(xfer_topo_netdev_path(root, "veth1", veth, sizeof veth),
	       KVF_ENOENT, "a virtual interface has no device");
	is_int(xfer_topo_netdev_path(root, "../../etc", p, sizeof p),
	       KVF_EINVAL, "a name with a slash is refused");

	is_int(xfer_topo_distance(gpu0, nic[0]), 2,
	       "GPU 0 to a NIC on its switch: 2 hops");
	is_int(xfer_topo_distance(gpu0, nic[2]), 8,
	       "GPU 0 to a NIC on the other socket: 8 hops");
	is_int(xfer_topo_distance(gpu0, gpu0), 0, "a device to itself: 0");
	is_int(xfer_topo_distance(gpu0, ""), -1, "unknown: -1");

	{
		const char *rails[5] = {nic[0], nic[1], nic[2], nic[3], veth};
		is_int(xfer_topo_nearest(gpu0, rails, 5), 0x3,
		       "GPU 0: rails 0 and 1 are nearest");
		is_int(xfer_topo_nearest(gpu1, rails, 5), 0xc,
		       "GPU 1: rails 2 and 3 are nearest");
		is_int(xfer_topo_nearest("", rails, 5), 0x1f,
		       "unknown GPU position: every rail");
	}
	{
		const char *rails[2] = {"", ""};
		is_int(xfer_topo_nearest(gpu0, rails, 2), 0x3,
		       "rails of unknown position (veth, lo): every rail");
	}
	{
		const char *rails[3] = {"", nic[2], ""};
		is_int(xfer_topo_nearest(gpu0, rails, 3), 0x2,
		       "a known far rail beats unknown ones");
	}
	{
		const char *rails[32];
		for (int i = 0; i < 32; i++)
			rails[i] = nic[i % 4];
		is_int(xfer_topo_nearest(gpu1, rails, 32), 0xcccccccc,
		       "32 rails (p5): the mask uses every bit");
	}
	return tap_exit_status();
}
