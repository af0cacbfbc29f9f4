/* init_state.c: a model's state before its first step. Parameters follow PyTorch's
 * defaults unless the model says init=: dense, conv and deconv weights and biases
 * are U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (what kaiming_uniform(a=sqrt(5)) reduces
 * to), batchnorm's scale starts at one and its shift at zero, running means at
 * zero, running variances at one. */
#include "ir.h"

#include "runtime/runtime.h"

#include <math.h>
#include <string.h>

/* The generator's counter for a variable: a hash of its name, so adding a layer to a
 * model does not change how the other layers start. 48 bits, the range in which
 * philox.c promises distinct streams never collide. */
static uint64_t name_counter(const char *name) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (const unsigned char *p = (const unsigned char *)name; *p; p++) h = (h ^ *p) * 1099511628211ULL;
  return h >> 16;
}

void ir_init_state(const ir_module *m, float *state, uint64_t seed) {
  memset(state, 0, (size_t)m->state_size * sizeof *state);
  for (int v = 0; v < m->nvars; v++) {
    const ir_var *var = &m->vars[v];
    float *p = state + var->offset;
    int64_t n = shape_numel(var->shape);
    if (var->kind == VAR_OPT_M || var->kind == VAR_OPT_V || var->kind == VAR_STEP) continue;
    const ir_init *in = &var->init;
    uint64_t ctr = name_counter(var->name);
    for (int64_t i = 0; i < n; i++) {
      float u = rng_uniform(seed, RNG_STREAM_INIT, ctr, (uint64_t)i);
      switch (in->kind) {
      case INIT_DEFAULT: {
        double bound = in->fan_in > 0 ? 1.0 / sqrt((double)in->fan_in) : 0.0;
        p[i] = (float)((2.0 * u - 1.0) * bound);
        break;
      }
      case INIT_ZEROS: p[i] = 0; break;
      case INIT_ONES: p[i] = 1; break;
      case INIT_UNIFORM: p[i] = (float)(in->a + (in->b - in->a) * u); break;
      case INIT_NORMAL:
        p[i] = (float)(in->a + in->b * rng_normal(seed, RNG_STREAM_INIT, ctr, (uint64_t)i));
        break;
      }
    }
  }
}
