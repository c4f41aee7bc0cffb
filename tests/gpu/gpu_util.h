/*
 * tests/gpu/gpu_util.h - helpers the GPU tests share, header-only (each
 * test is one program): probing for a device, a kernel that waits and
 * then writes (PTX text, JIT-compiled by the driver, so the build
 * needs no nvcc), and VMM allocations through the driver's entry points.
 */
#ifndef KVF_TESTS_GPU_UTIL_H
#define KVF_TESTS_GPU_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime_api.h>

#define CK(call)                                                             \
	do {                                                                 \
		cudaError_t ck_rc_ = (call);                                 \
		if (ck_rc_ != cudaSuccess)                                   \
			bail("%s:%d: %s failed: %s", __FILE__, __LINE__,     \
			     #call, cudaGetErrorName(ck_rc_));               \
	} while (0)

/* 0 when there is a device; else a reason for skip_all in why. */
static inline int gpu_probe(char *why, size_t len)
{
	int n = 0;
	cudaError_t rc = cudaGetDeviceCount(&n);

	if (rc != cudaSuccess) {
		snprintf(why, len, "cudaGetDeviceCount() failed: %s",
		         cudaGetErrorName(rc));
		return -1;
	}
	if (n == 0) {
		snprintf(why, len, "cudaGetDeviceCount() says 0");
		return -1;
	}
	return 0;
}

/*
 * kvf_spin_fill(ptr, nwords, value, delay_ns): every thread waits on the
 * global timer for delay_ns, then the grid writes value into nwords 32-bit
 * words. Lets a test put "a write that lands later" on a stream.
 */
static const char spin_fill_ptx[] =
	".version 7.0\n"
	".target sm_70\n"
	".address_size 64\n"
	".visible .entry kvf_spin_fill(.param .u64 p_ptr, .param .u64 p_n,\n"
	"\t.param .u32 p_val, .param .u64 p_ns)\n"
	"{\n"
	"\t.reg .pred %p<3>;\n"
	"\t.reg .b32 %r<6>;\n"
	"\t.reg .b64 %rd<12>;\n"
	"\tld.param.u64 %rd1, [p_ptr];\n"
	"\tld.param.u64 %rd2, [p_n];\n"
	"\tld.param.u32 %r1, [p_val];\n"
	"\tld.param.u64 %rd3, [p_ns];\n"
	"\tcvta.to.global.u64 %rd1, %rd1;\n"
	"\tmov.u64 %rd4, %globaltimer;\n"
	"\tadd.u64 %rd5, %rd4, %rd3;\n"
	"SPIN:\n"
	"\tmov.u64 %rd6, %globaltimer;\n"
	"\tsetp.lt.u64 %p1, %rd6, %rd5;\n"
	"\t@%p1 bra SPIN;\n"
	"\tmov.u32 %r2, %ctaid.x;\n"
	"\tmov.u32 %r3, %ntid.x;\n"
	"\tmov.u32 %r4, %tid.x;\n"
	"\tmov.u32 %r5, %nctaid.x;\n"
	"\tmul.wide.u32 %rd7, %r2, %r3;\n"
	"\tcvt.u64.u32 %rd8, %r4;\n"
	"\tadd.u64 %rd7, %rd7, %rd8;\n"
	"\tmul.wide.u32 %rd9, %r5, %r3;\n"
	"LOOP:\n"
	"\tsetp.ge.u64 %p2, %rd7, %rd2;\n"
	"\t@%p2 bra DONE;\n"
	"\tshl.b64 %rd10, %rd7, 2;\n"
	"\tadd.u64 %rd11, %rd1, %rd10;\n"
	"\tst.global.u32 [%rd11], %r1;\n"
	"\tadd.u64 %rd7, %rd7, %rd9;\n"
	"\tbra LOOP;\n"
	"DONE:\n"
	"\tret;\n"
	"}\n";

static inline dim3 dim3_make(unsigned x)
{
	dim3 d = {x, 1, 1};

	return d;
}

static inline cudaError_t spin_fill(cudaStream_t s, void *p, uint64_t nwords,
                                    uint32_t value, uint64_t delay_ns)
{
	static cudaLibrary_t lib;
	static cudaKernel_t k;
	void *args[4] = {&p, &nwords, &value, &delay_ns};
	cudaError_t rc;

	if (!k) {
		rc = cudaLibraryLoadData(&lib, spin_fill_ptx, NULL, NULL, 0,
		                         NULL, NULL, 0);
		if (rc != cudaSuccess)
			return rc;
		rc = cudaLibraryGetKernel(&k, lib, "kvf_spin_fill");
		if (rc != cudaSuccess)
			return rc;
	}
	return cudaLaunchKernel((const void *)k, dim3_make(64), dim3_make(256),
	                        args, 0, s);
}

#endif
