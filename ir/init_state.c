/* init_state.c: a model's state before its first step. The values of each parameter
 * come from the runtime's state_init_fill (the same code a compiled model runs);
 * batchnorm's scale starts at one and its shift at zero, running means at zero,
 * running variances at one (their init kinds say so); optimizer moments and the step
 * counter at zero. */
#include "ir.h"

#include "runtime/runtime.h"

#include <string.h>

_Static_assert((int)INIT_DEFAULT == (int)STATE_INIT_DEFAULT &&
                   (int)INIT_ZEROS == (int)STATE_INIT_ZEROS &&
                   (int)INIT_ONES == (int)STATE_INIT_ONES &&
                   (int)INIT_UNIFORM == (int)STATE_INIT_UNIFORM &&
                   (int)INIT_NORMAL == (int)STATE_INIT_NORMAL,
               "ir_init_kind and the runtime's STATE_INIT_* agree");

void ir_init_state(const ir_module *m, float *state, uint64_t seed) {
  memset(state, 0, (size_t)m->state_size * sizeof *state);
  for (int v = 0; v < m->nvars; v++) {
    const ir_var *var = &m->vars[v];
    if (var->kind == VAR_OPT_M || var->kind == VAR_OPT_V || var->kind == VAR_STEP) continue;
    state_init_fill(state + var->offset, shape_numel(var->shape), var->name, var->init.kind,
                    var->init.fan_in, var->init.a, var->init.b, seed);
  }
}
