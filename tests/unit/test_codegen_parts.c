/* test_codegen_parts.c: compiling the JIT's module in parts on several threads
 * (cg_options.compile_threads, jit_parts.c) changes no value. For models with
 * and without convolutions, train_step (three steps), generate and encode run from
 * the same state compiled in one module and in 2 and 3 parts: every output and the
 * whole state after each call must be the same bits. The timing figures must add up:
 * lower + optimise + the rest is the total. */
#include "check.h"
#include "codegen/codegen.h"
#include "frontend/frontend.h"
#include "passes/passes.h"
#include "runtime/runtime.h"
#include "codegen_same.h"

#include <stdlib.h>
#include <string.h>

static void test_model(const char *name, int parts) {
  ir_module *m = same_load_model(name, 4);
  if (!m) return;
  char err[512];
  cg_program *one = cg_compile(m, &(cg_options){.compile_threads = 1}, err, sizeof err);
  CHECK_MSG(one != NULL, "%s: %s", name, err);
  cg_program *many = one ? cg_compile(m, &(cg_options){.compile_threads = parts}, err, sizeof err) : NULL;
  CHECK_MSG(!one || many, "%s in %d parts: %s", name, parts, err);
  if (!many) {
    cg_free(one);
    ir_module_free(m);
    return;
  }
  cg_stats st = cg_get_stats(many);
  CHECK_MSG(st.lower_ms > 0 && st.opt_ms > 0 && st.jit_ms >= 0 &&
                st.lower_ms + st.opt_ms + st.jit_ms <= st.total_ms * 1.0001 + 1e-6,
            "%s: lower %.3f + opt %.3f + jit %.3f ms, total %.3f", name, st.lower_ms,
            st.opt_ms, st.jit_ms, st.total_ms);
  size_t bytes = (size_t)m->state_size * 4;
  float *s1 = malloc(bytes), *sn = malloc(bytes);
  ir_init_state(m, s1, 5);
  memcpy(sn, s1, bytes);
  char label[128];
  snprintf(label, sizeof label, "%s in %d parts", name, parts);
  for (int k = 0; k < m->nfuncs; k++) {
    const ir_func *f = m->funcs[k];
    same_bits(m, f, one, many, s1, sn, !strcmp(f->name, "train_step") ? 3 : 1, 13, label);
  }
  printf("%s in %d parts: lower %.1f ms, optimise %.1f ms (longest part), rest %.1f ms, "
         "total %.1f ms\n", name, parts, st.lower_ms, st.opt_ms, st.jit_ms, st.total_ms);
  free(s1), free(sn);
  cg_free(one), cg_free(many);
  ir_module_free(m);
}

int main(void) {
  test_model("infogan_mlp", 2);
  test_model("infogan_mlp", 3);
#ifndef __SANITIZE_ADDRESS__ /* the compiles are the cost; one model under the sanitizers */
  test_model("dcgan_fashion", 2);
#endif
  return check_done();
}
