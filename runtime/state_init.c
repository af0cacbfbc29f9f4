/* state_init.c: a variable's starting values, shared by migc (ir_init_state) and every
 * compiled model (migc_create), so both start from the same bits for the same seed.
 * Parameters follow PyTorch's defaults unless the model says init=: dense, conv and
 * deconv weights and biases are U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (what
 * kaiming_uniform(a=sqrt(5)) reduces to). */
#include "runtime/runtime.h"

#include <math.h>

/* The generator's counter for a variable: a hash of its name, so adding a layer to a
 * model does not change how the other layers start. 48 bits, the range in which
 * philox.c promises distinct streams never collide. */
static uint64_t name_counter(const char *name) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (const unsigned char *p = (const unsigned char *)name; *p; p++) h = (h ^ *p) * 1099511628211ULL;
  return h >> 16;
}

/* Uniform kinds draw their numbers a Philox block at a time (rng_uniform_fill, four
 * words per block) into p and scale them in place; zeros and ones draw none. Each
 * value is the one rng_uniform gives for its index, so the bits are those of one call
 * per element, with a quarter of the blocks: 13 M default-initialised values took
 * 78 ms of CPU instead of 190 (infogan_mnist has 13 M parameters; the time is part of
 * its first step's). */
void state_init_fill(float *p, int64_t n, const char *name, int kind, int64_t fan_in, double a,
                     double b, uint64_t seed) {
  uint64_t ctr = name_counter(name);
  switch (kind) {
  case STATE_INIT_DEFAULT: {
    double bound = fan_in > 0 ? 1.0 / sqrt((double)fan_in) : 0.0;
    rng_uniform_fill(p, n, seed, RNG_STREAM_INIT, ctr, 0);
    for (int64_t i = 0; i < n; i++) p[i] = (float)((2.0 * p[i] - 1.0) * bound);
    break;
  }
  case STATE_INIT_ZEROS:
    for (int64_t i = 0; i < n; i++) p[i] = 0;
    break;
  case STATE_INIT_ONES:
    for (int64_t i = 0; i < n; i++) p[i] = 1;
    break;
  case STATE_INIT_UNIFORM:
    rng_uniform_fill(p, n, seed, RNG_STREAM_INIT, ctr, 0);
    for (int64_t i = 0; i < n; i++) p[i] = (float)(a + (b - a) * p[i]);
    break;
  case STATE_INIT_NORMAL:
    for (int64_t i = 0; i < n; i++)
      p[i] = (float)(a + b * rng_normal(seed, RNG_STREAM_INIT, ctr, (uint64_t)i));
    break;
  }
}
