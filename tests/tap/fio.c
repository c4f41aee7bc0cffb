/*
 * tests/tap/fio.c - fio as a storage baseline (see fio.h). The directory
 * reaches the shell through the environment, not the command line, so no
 * name needs quoting; fio's JSON report is read with jq.
 */
#include "tests/tap/fio.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

double tp_fio_gbps(const char *dir, const char *rw, uint64_t bs,
                   unsigned qd, int direct, uint64_t size)
{
	int wr = strcmp(rw, "write") == 0;
	char cmd[1024];
	double bw = 0;
	FILE *p;

	setenv("KVF_FIO_DIR", dir, 1);
	snprintf(cmd, sizeof(cmd), "%s"
	         "timeout 600 fio --name=kvfbench --directory=\"$KVF_FIO_DIR\" "
	         "--filename=fio.bench --rw=%s --bs=%" PRIu64 " --iodepth=%u "
	         "--ioengine=io_uring --direct=%d --size=%" PRIu64 " "
	         "--loops=1 --output-format=json 2>/dev/null | "
	         "jq '.jobs[0].%s.bw_bytes'",
	         wr ? "rm -f \"$KVF_FIO_DIR\"/fio.bench; " : "", rw, bs, qd,
	         direct, size, wr ? "write" : "read");
	p = popen(cmd, "r");
	if (!p || fscanf(p, "%lf", &bw) != 1)
		bw = 0;
	if (p)
		pclose(p);
	return bw / 1e9;
}
