/* latents.c: samples of the generator's latents and codes, as pure functions of
 * (seed, stream, counter, index) through Philox. */
#include "runtime/runtime.h"

void latent_fill(float *out, int64_t n, int kind, double a, double b, uint64_t seed,
                 uint32_t stream, uint64_t counter, uint64_t first) {
  for (int64_t j = 0; j < n; j++) {
    uint64_t i = first + (uint64_t)j;
    switch (kind) {
    case 0: out[j] = (float)(a + (b - a) * rng_uniform(seed, stream, counter, i)); break;
    case 1: out[j] = (float)(a + b * rng_normal(seed, stream, counter, i)); break;
    default: out[j] = rng_uniform(seed, stream, counter, i) < a ? 1.0f : 0.0f; break;
    }
  }
}

void latent_fill_categorical(int32_t *out, int64_t n, int32_t k, uint64_t seed,
                             uint32_t stream, uint64_t counter, uint64_t first) {
  for (int64_t j = 0; j < n; j++) {
    /* 24 random bits: k <= 2^24 keeps every value reachable with bias below k/2^24 */
    int32_t v = (int32_t)(rng_uniform(seed, stream, counter, first + (uint64_t)j) * (float)k);
    out[j] = v < k ? v : k - 1;
  }
}

void latent_draw_input(void *out, int64_t n, int index, bool is_seed, int dist, double a,
                       double b, uint64_t seed, uint32_t stream, uint64_t counter) {
  latent_draw_part(out, n, index, 0, is_seed, dist, a, b, seed, stream, counter);
}

void latent_draw_part(void *out, int64_t n, int index, int64_t skip, bool is_seed, int dist,
                      double a, double b, uint64_t seed, uint32_t stream, uint64_t counter) {
  uint64_t first = ((uint64_t)index << 40) + (uint64_t)skip;
  if (is_seed) {
    ((int32_t *)out)[0] = (int32_t)(seed & 0x7fffffff);
    ((int32_t *)out)[1] = (int32_t)counter;
  } else if (dist == MIGC_DIST_CATEGORICAL) {
    latent_fill_categorical(out, n, (int32_t)a, seed, stream, counter, first);
  } else if (dist != MIGC_DIST_NONE) {
    latent_fill(out, n, dist == MIGC_DIST_UNIFORM ? 0 : dist == MIGC_DIST_NORMAL ? 1 : 2, a, b,
                seed, stream, counter, first);
  }
}
