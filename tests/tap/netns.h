/*
 * tests/tap/netns.h - two network namespaces, A and B, joined by veth
 * pairs (one per link, each a /30 of its own), with kvferryd started inside
 * one of them: real links that a test can set down and whose kernel
 * counters it can read. Needs root and ip(8). Single-threaded programs.
 */
#ifndef KVF_TAP_NETNS_H
#define KVF_TAP_NETNS_H

#include <stdbool.h>
#include <stddef.h>

#include "tests/tap/proc.h"
#include "tests/tap/tap.h"

#define TP_NETNS_LINKS 8
#define TP_NETNS_DAEMONS 4

enum { TP_NS_A, TP_NS_B };

struct tp_netns {
	char ns[2][32];                        /* names of A and B */
	int nlinks;
	char dev[TP_NETNS_LINKS][2][16];       /* link l's veth in A, in B */
	char addr[TP_NETNS_LINKS][2][32];      /* their IPv4 addresses */
	enum tp_say say;                       /* where failures are said */
	struct tp_daemon *daemons[TP_NETNS_DAEMONS];
	int ndaemons;
	bool made;
};

/*
 * Make A and B (loopback up in each) and nlinks veth pairs between them:
 * link l has addresses 10.<net + l>.x.1 in A and 10.<net + l>.x.2 in B
 * (x from this process's id, so parallel runs do not meet), veths named
 * <tag>a<pid>_<l> and <tag>b<pid>_<l> (tag up to 3 characters). n must
 * stay valid until exit (static storage): everything made is removed at
 * exit, or on SIGINT, SIGTERM and SIGALRM, whose handlers this installs
 * and which exit(1). Failures are said to say. Returns 0, or -1 with what
 * the machine lacks in why (for skip_all: not root, no ip(8), no
 * namespaces, no veth), having removed what it made.
 */
int tp_netns_open(struct tp_netns *n, const char *tag, int nlinks, int net,
                  enum tp_say say, char *why, size_t len);

/* Kill the daemons started in the namespaces, then remove the namespaces
 * (their veths go with them). Safe to call again. */
void tp_netns_close(struct tp_netns *n);

/* Set link l up or down, at A's end. 0 or the failure of ip(8). */
int tp_netns_link_set(struct tp_netns *n, int l, bool up);

/* Bytes the kernel counted leaving link l's veth on side (TP_NS_A or
 * TP_NS_B); -1 when unreadable. */
long long tp_netns_tx_bytes(const struct tp_netns *n, int l, int side);

/*
 * Point $KVF_BUILD at a new bin/ under tp_tmpdir() whose kvferryd enters
 * $KVF_NETNS (ip netns exec) before running the real one, and whose
 * kvferryctl is the real one; returns the real build directory (static
 * storage), or NULL with the failure said. Once per process.
 */
const char *tp_netns_wrap_bins(struct tp_netns *n);

/* tp_daemon_start of d inside namespace side, through the wrapper (call
 * tp_netns_wrap_bins first); d, in static storage (it may be used again
 * for a later daemon), is killed before the namespaces are removed. */
int tp_netns_daemon_start(struct tp_netns *n, int side, struct tp_daemon *d,
                          const char *name, const char *const *args);

#endif
