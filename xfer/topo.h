/*
 * xfer/topo.h - where devices sit on the PCI tree, so a transfer of GPU
 * memory goes out through the NICs nearest its GPU (on a p5 node each
 * GPU shares a PCIe switch with four EFA devices; crossing the CPU's root
 * complex halves GPUDirect bandwidth).
 *
 * A device is named by its sysfs path, the chain of bridges from the root
 * complex down ("/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0"). The
 * distance of two devices is the number of hops between them in that
 * tree: 2 under the same switch port, more across switches, most across
 * root complexes (another socket). Pure string work plus realpath(3);
 * callable from any thread.
 */
#ifndef KVF_XFER_TOPO_H
#define KVF_XFER_TOPO_H

#include <stddef.h>
#include <stdint.h>

/* Rails a selection can name (rail masks are 32 bits). */
#define XFER_TOPO_MAX_RAILS 32

/*
 * The sysfs path of a PCI function given as "dddd:bb:dd.f" (any case; a
 * CUDA bus id "00000000:1B:00.0" works too), resolved under root ("" or
 * NULL: "/sys"). Writes "" and returns KVF_ENOENT when there is no such
 * device.
 */
int xfer_topo_pci_path(const char *root, const char *bdf, char *out,
                       size_t len);

/*
 * The sysfs path of the device behind a network interface or an RDMA
 * device name ("eth0", "rdmap16s27"): /sys/class/net/<name>/device or
 * /sys/class/infiniband/<name>/device resolved under root. KVF_ENOENT
 * (and "") for virtual devices (lo, veth) that have none.
 */
int xfer_topo_netdev_path(const char *root, const char *name, char *out,
                          size_t len);

/* Hops between two sysfs device paths; -1 when either is unknown (""). */
int xfer_topo_distance(const char *a, const char *b);

/*
 * Of nrails rails (their device paths, "" when unknown), the mask of those
 * nearest the device at path dev: every rail when dev or all rails are
 * unknown. Rails of unknown position never beat a known near one.
 */
uint32_t xfer_topo_nearest(const char *dev, const char *const *rails,
                           int nrails);

#endif
