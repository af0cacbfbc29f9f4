/* test_philox.c: Philox-4x32-10 against Random123's known answers, and the uniform and
 * normal draws built on it. */
#include "check.h"
#include "runtime/runtime.h"

#include <stdint.h>

/* Random123 tests/kat_vectors, the three "philox4x32 10" lines:
 * counter (4 words), key (2 words), expected output (4 words). */
static const uint32_t kat[3][10] = {
    {0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000,
     0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
    {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
     0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
    {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0,
     0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1},
};

static void test_kat(void) {
  for (int v = 0; v < 3; v++) {
    uint32_t out[4];
    philox4x32_10(&kat[v][0], &kat[v][4], out);
    for (int j = 0; j < 4; j++)
      CHECK_MSG(out[j] == kat[v][6 + j], "vector %d word %d: %08x, expected %08x", v, j,
                out[j], kat[v][6 + j]);
  }
}

/* The documented mapping: uniform i of (seed, stream, counter) is the top 24 bits of
 * word i%4 of the block ctr = {i/4 lo, i/4 hi, counter lo, counter hi ^ stream<<16},
 * key = {seed lo, seed hi}. */
static void test_mapping(void) {
  uint64_t seed = 0x0123456789abcdefull, counter = 0x0000000500000007ull, i = 0x600000009ull;
  uint32_t stream = 3;
  uint64_t block = i / 4;
  uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), 7, 5u ^ (3u << 16)};
  uint32_t key[2] = {0x89abcdef, 0x01234567};
  uint32_t out[4];
  philox4x32_10(ctr, key, out);
  float want = (float)(out[i % 4] >> 8) / 16777216.0f;
  CHECK(rng_uniform(seed, stream, counter, i) == want);
}

static void test_uniform(void) {
  const int n = 100000;
  double sum = 0, lo = 1, hi = 0;
  bool exact = true;
  for (int i = 0; i < n; i++) {
    float u = rng_uniform(42, RNG_STREAM_LATENT, 7, (uint64_t)i);
    sum += u;
    if (u < lo) lo = u;
    if (u > hi) hi = u;
    /* 24 bits: u * 2^24 is an integer */
    float scaled = u * 16777216.0f;
    if (scaled != (float)(int32_t)scaled) exact = false;
  }
  CHECK(lo >= 0 && hi < 1);
  CHECK(lo < 0.001 && hi > 0.999);
  CHECK(exact);
  CHECK_NEAR(sum / n, 0.5, 0, 0.005); /* sd of the mean is 0.0009 */

  /* pure function: same arguments, same value */
  CHECK(rng_uniform(42, 2, 7, 12345) == rng_uniform(42, 2, 7, 12345));

  /* streams, counters, seeds and neighbouring elements all give different numbers */
  int same_stream = 0, same_counter = 0, same_seed = 0, same_next = 0;
  for (int i = 0; i < 1000; i++) {
    float u = rng_uniform(42, RNG_STREAM_INIT, 0, (uint64_t)i);
    if (u == rng_uniform(42, RNG_STREAM_DROPOUT, 0, (uint64_t)i)) same_stream++;
    if (u == rng_uniform(42, RNG_STREAM_INIT, 1, (uint64_t)i)) same_counter++;
    if (u == rng_uniform(43, RNG_STREAM_INIT, 0, (uint64_t)i)) same_seed++;
    if (u == rng_uniform(42, RNG_STREAM_INIT, 0, (uint64_t)i + 1)) same_next++;
  }
  /* two independent 24-bit values agree with probability 2^-24 */
  CHECK(same_stream == 0);
  CHECK(same_counter == 0);
  CHECK(same_seed == 0);
  CHECK(same_next == 0);

  /* the counter's high word counts too: counter 2^32 is not counter 0 */
  CHECK(rng_uniform(1, 1, (uint64_t)1 << 32, 0) != rng_uniform(1, 1, 0, 0));

  /* the stream sequences are uncorrelated */
  double sxy = 0, sx = 0, sy = 0, sxx = 0, syy = 0;
  for (int i = 0; i < n; i++) {
    double x = rng_uniform(9, 1, 0, (uint64_t)i), y = rng_uniform(9, 2, 0, (uint64_t)i);
    sx += x, sy += y, sxy += x * y, sxx += x * x, syy += y * y;
  }
  double cov = sxy / n - (sx / n) * (sy / n);
  double corr = cov / sqrt((sxx / n - (sx / n) * (sx / n)) * (syy / n - (sy / n) * (sy / n)));
  CHECK_NEAR(corr, 0, 0, 0.02);
}

/* rng_uniform_fill is rng_uniform element by element, whatever block the run starts
 * and ends in (first % 4, n % 4), also past 2^32 elements and with a 48-bit counter. */
static void test_uniform_fill(void) {
  const uint64_t firsts[] = {0, 1, 2, 3, 5, 4096, ((uint64_t)1 << 32) - 2};
  const int64_t ns[] = {0, 1, 3, 4, 7, 13, 1000};
  float out[1001];
  int bad = 0;
  for (size_t a = 0; a < sizeof firsts / sizeof firsts[0]; a++)
    for (size_t b = 0; b < sizeof ns / sizeof ns[0]; b++) {
      out[ns[b]] = -1; /* nothing written past n */
      rng_uniform_fill(out, ns[b], 77, RNG_STREAM_INIT, 0xABCDEF012345ULL, firsts[a]);
      for (int64_t j = 0; j < ns[b]; j++)
        bad += out[j] != rng_uniform(77, RNG_STREAM_INIT, 0xABCDEF012345ULL, firsts[a] + (uint64_t)j);
      bad += out[ns[b]] != -1;
    }
  CHECK_MSG(bad == 0, "%d values differ from rng_uniform", bad);
}

static void test_normal(void) {
  const int n = 100000;
  double sum = 0, sq = 0, big = 0;
  bool finite = true;
  for (int i = 0; i < n; i++) {
    double z = rng_normal(7, RNG_STREAM_INIT, 3, (uint64_t)i);
    if (!isfinite(z)) finite = false;
    sum += z;
    sq += z * z;
    if (fabs(z) > 1.96) big++;
  }
  double mean = sum / n, sd = sqrt(sq / n - mean * mean);
  CHECK(finite);
  CHECK_NEAR(mean, 0, 0, 0.02); /* sd of the mean is 0.003 */
  CHECK_NEAR(sd, 1, 0, 0.02);
  CHECK_NEAR(big / n, 0.05, 0, 0.005); /* the tails have the right mass */
  CHECK(rng_normal(7, 1, 3, 99) == rng_normal(7, 1, 3, 99));
  CHECK(rng_normal(7, 1, 3, 99) != rng_normal(7, 2, 3, 99));

  /* the smallest word makes u1 = 2^-32: finite, about 6.66 */
  CHECK(sqrt(-2 * log(1.0 / 4294967296.0)) < 6.7);
}

int main(void) {
  test_uniform_fill();
  test_kat();
  test_mapping();
  test_uniform();
  test_normal();
  return check_done();
}
