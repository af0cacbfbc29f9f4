/* philox.c: counter-based random numbers, Random123's Philox-4x32 with 10 rounds.
 *
 * Every random number migc uses is a pure function of (seed, stream, counter, i), so
 * the interpreter, the JIT and generated code agree bit for bit and any element can
 * be drawn without drawing the ones before it.
 *
 * The mapping onto one Philox block (documented in runtime.h's terms):
 *
 *   key    = { seed & 0xffffffff, seed >> 32 }
 *   ctr[0] = (i / 4) & 0xffffffff        which block of 4 words holds element i
 *   ctr[1] = (i / 4) >> 32
 *   ctr[2] = counter & 0xffffffff
 *   ctr[3] = (counter >> 32) ^ (stream << 16)
 *   word   = out[i % 4]
 *
 * For stream < 2^16 and counter < 2^48 the last word is the plain concatenation
 * stream:counter_hi, so distinct (stream, counter, i/4) give distinct Philox counters
 * and no two streams or counters ever share a block, for every i. (migc's streams are
 * single digits plus the dropout site; counters are step or epoch numbers.) */
#include "runtime/runtime.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u /* golden ratio */
#define PHILOX_W1 0xBB67AE85u /* sqrt(3) - 1 */
#define RNG_TWO_PI 6.28318530717958647692

/* One round: two 32x32->64 multiplies, their halves crossed and keyed. */
static void philox_round(uint32_t c[4], const uint32_t k[2]) {
  uint64_t p0 = (uint64_t)PHILOX_M0 * c[0];
  uint64_t p1 = (uint64_t)PHILOX_M1 * c[2];
  uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
  uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
  uint32_t r[4] = {hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0};
  c[0] = r[0], c[1] = r[1], c[2] = r[2], c[3] = r[3];
}

void philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
  uint32_t c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
  uint32_t k[2] = {key[0], key[1]};
  for (int r = 0; r < 10; r++) {
    if (r > 0) { /* the key is bumped before every round but the first */
      k[0] += PHILOX_W0;
      k[1] += PHILOX_W1;
    }
    philox_round(c, k);
  }
  for (int j = 0; j < 4; j++) out[j] = c[j];
}

/* The raw 32-bit word i of (seed, stream, counter), by the mapping above. */
static uint32_t rng_word(uint64_t seed, uint32_t stream, uint64_t counter, uint64_t i) {
  uint64_t block = i / 4;
  uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), (uint32_t)counter,
                     (uint32_t)(counter >> 32) ^ (stream << 16)};
  uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  uint32_t out[4];
  philox4x32_10(ctr, key, out);
  return out[i % 4];
}

/* The top 24 bits (Philox's high bits are its best-mixed ones) scaled by 2^-24: a
 * multiple of 2^-24 in [0, 1 - 2^-24], every value exactly representable in float. */
float rng_uniform(uint64_t seed, uint32_t stream, uint64_t counter, uint64_t i) {
  uint32_t w = rng_word(seed, stream, counter, i);
  return (float)(w >> 8) * (1.0f / 16777216.0f);
}

void rng_uniform_fill(float *out, int64_t n, uint64_t seed, uint32_t stream, uint64_t counter,
                      uint64_t first) {
  uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  int64_t j = 0;
  while (j < n) {
    uint64_t i = first + (uint64_t)j, block = i / 4;
    uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), (uint32_t)counter,
                       (uint32_t)(counter >> 32) ^ (stream << 16)};
    uint32_t w[4];
    philox4x32_10(ctr, key, w);
    for (int q = (int)(i % 4); q < 4 && j < n; q++, j++)
      out[j] = (float)(w[q] >> 8) * (1.0f / 16777216.0f);
  }
}

/* Normal i uses words 2i and 2i+1 of (seed, stream, counter) (so a (stream, counter)
 * should serve either uniforms or normals, not both):
 *   u1 = (w0 + 1) / 2^32 in (0, 1]   -- never 0, so log(u1) is finite
 *   u2 =  w1      / 2^32 in [0, 1)
 *   z  = sqrt(-2 ln u1) cos(2 pi u2)
 * in double; with 32-bit u1 the largest |z| is about 6.66. */
float rng_normal(uint64_t seed, uint32_t stream, uint64_t counter, uint64_t i) {
  uint32_t w0 = rng_word(seed, stream, counter, 2 * i);
  uint32_t w1 = rng_word(seed, stream, counter, 2 * i + 1);
  double u1 = ((double)w0 + 1.0) / 4294967296.0;
  double u2 = (double)w1 / 4294967296.0;
  double r = sqrt(-2.0 * log(u1));
  return (float)(r * cos(RNG_TWO_PI * u2));
}
