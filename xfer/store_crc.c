/*
 * xfer/store_crc.c - CRC-32C over KV blocks, fast enough to run inline with
 * the I/O of the store (every saved block is summed, every loaded block is
 * verified).
 *
 * The portable path is slicing-by-8: eight 256-entry tables, generated on
 * first use from the reflected polynomial, consume eight bytes per step.
 * The fast path uses the SSE4.2 crc32 instruction. One stream of it is
 * bound by the instruction's 3-cycle latency, so big buffers run three
 * independent streams over adjacent chunks of fixed size and join them:
 * a CRC register is linear, so the state after A||B is the state after A
 * multiplied by x^(8|B|) modulo the polynomial, xored with B's state from
 * zero. The multipliers for the fixed chunk sizes are computed once.
 */
#include "xfer/store_crc.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

/* Reflected CRC-32C polynomial. */
#define POLY 0x82f63b78u
/* Chunk sizes of the three-stream loop, large then small. */
#define BIG 4096u
#define SMALL 256u

static uint32_t table[8][256];
static uint32_t shift_big, shift_small;
static bool have_hw;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* a * b modulo POLY, reflected: bit 31 holds x^0. */
static uint32_t gf_mul(uint32_t a, uint32_t b)
{
	uint32_t prod = 0;

	for (int i = 0; i < 32; i++) {
		if (a & 0x80000000u)
			prod ^= b;
		a <<= 1;
		b = (b & 1) ? (b >> 1) ^ POLY : b >> 1;
	}
	return prod;
}

/* x^(8 * nbytes) modulo POLY, by square and multiply. */
static uint32_t x_pow_bytes(uint64_t nbytes)
{
	uint64_t n = nbytes * 8;
	uint32_t r = 0x80000000u; /* 1 */
	uint32_t base = 0x40000000u; /* x */

	while (n) {
		if (n & 1)
			r = gf_mul(r, base);
		base = gf_mul(base, base);
		n >>= 1;
	}
	return r;
}

static void setup(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
		table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int k = 1; k < 8; k++)
			table[k][i] = (table[k - 1][i] >> 8) ^
			              table[0][table[k - 1][i] & 0xff];
	shift_big = x_pow_bytes(BIG);
	shift_small = x_pow_bytes(SMALL);
#if defined(__x86_64__)
	__builtin_cpu_init();
	have_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint64_t load64(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

/* Raw register update (no inversion), table driven. */
static uint32_t sw_update(uint32_t c, const unsigned char *p, size_t n)
{
	while (n >= 8) {
		uint64_t w = load64(p) ^ c;
		c = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^
		    table[5][(w >> 16) & 0xff] ^ table[4][(w >> 24) & 0xff] ^
		    table[3][(w >> 32) & 0xff] ^ table[2][(w >> 40) & 0xff] ^
		    table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
		p += 8;
		n -= 8;
	}
	while (n--)
		c = (c >> 8) ^ table[0][(c ^ *p++) & 0xff];
	return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t
hw_lanes(uint32_t c, const unsigned char *p, size_t *np, size_t chunk,
         uint32_t shift)
{
	size_t n = *np;

	while (n >= 3 * chunk) {
		uint64_t a = c, b = 0, d = 0;
		const unsigned char *q = p + chunk, *r = p + 2 * chunk;
		for (size_t i = 0; i < chunk; i += 8) {
			a = _mm_crc32_u64(a, load64(p + i));
			b = _mm_crc32_u64(b, load64(q + i));
			d = _mm_crc32_u64(d, load64(r + i));
		}
		c = gf_mul((uint32_t)a, shift) ^ (uint32_t)b;
		c = gf_mul(c, shift) ^ (uint32_t)d;
		p += 3 * chunk;
		n -= 3 * chunk;
	}
	*np = n;
	return c;
}

__attribute__((target("sse4.2"))) static uint32_t
hw_update(uint32_t c, const unsigned char *p, size_t n)
{
	size_t before = n;

	c = hw_lanes(c, p, &n, BIG, shift_big);
	p += before - n;
	before = n;
	c = hw_lanes(c, p, &n, SMALL, shift_small);
	p += before - n;
	uint64_t c64 = c;
	while (n >= 8) {
		c64 = _mm_crc32_u64(c64, load64(p));
		p += 8;
		n -= 8;
	}
	c = (uint32_t)c64;
	while (n--)
		c = _mm_crc32_u8(c, *p++);
	return c;
}
#endif

uint32_t xfer_store_crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&once, setup);
	return ~sw_update(~crc, buf, len);
}

uint32_t xfer_store_crc32c(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&once, setup);
#if defined(__x86_64__)
	if (have_hw)
		return ~hw_update(~crc, buf, len);
#endif
	return ~sw_update(~crc, buf, len);
}

bool xfer_store_crc32c_hw(void)
{
	pthread_once(&once, setup);
	return have_hw;
}
