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

#include <stdlib.h>
#include <string.h>

static ir_module *load_model(const char *name) {
  char path[512];
  snprintf(path, sizeof path, "%s/models/%s.mig", MIGC_SOURCE_DIR, name);
  diag_sink d;
  diag_init(&d);
  ast_file *ast = parse_file(&d, path);
  elab_options eo = {.batch = 4};
  ir_module *m = ast && !d.nerrors ? elaborate(ast, &eo, &d) : NULL;
  pass_options po = {.verify_each = true};
  if (m && passes_run(m, &po, &d)) {
    ir_module_free(m);
    m = NULL;
  }
  if (!m) diag_print(&d, stderr, false);
  CHECK_MSG(m != NULL, "%s does not compile", path);
  if (ast) ast_free(ast);
  diag_free(&d);
  return m;
}

static int run(cg_program *p, const ir_func *f, float *state, void **in, float **out) {
  size_t ss = cg_scratch_size(p, f->name);
  void *scratch = aligned_alloc(64, (ss + 64) & ~(size_t)63);
  int rc = cg_lookup(p, f->name)(state, in, (void *const *)out, scratch);
  free(scratch);
  return rc;
}

static void test_model(const char *name, int parts) {
  ir_module *m = load_model(name);
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
  for (int k = 0; k < m->nfuncs; k++) {
    const ir_func *f = m->funcs[k];
    int calls = !strcmp(f->name, "train_step") ? 3 : 1;
    for (int call = 0; call < calls; call++) {
      ir_tensor *ins = calloc((size_t)f->ninputs + 1, sizeof *ins);
      void **inptr = calloc((size_t)f->ninputs + 1, sizeof *inptr);
      for (int j = 0; j < f->ninputs; j++) {
        const ir_input *in = &m->inputs[f->inputs[j]];
        ins[j] = ir_tensor_alloc(in->dtype, in->shape);
        for (int64_t i = 0; i < shape_numel(in->shape); i++) {
          float u = rng_uniform(13, 2, (uint64_t)(call * 16 + j), (uint64_t)i);
          if (in->dtype == IR_I32)
            ((int32_t *)ins[j].data)[i] = in->kind == INPUT_SEED ? call : (int32_t)(u * in->a);
          else
            ((float *)ins[j].data)[i] = in->kind == INPUT_DATA ? u : 2 * u - 1;
        }
        inptr[j] = ins[j].data;
      }
      float **o1 = calloc((size_t)f->noutputs + 1, sizeof *o1);
      float **on = calloc((size_t)f->noutputs + 1, sizeof *on);
      for (int o = 0; o < f->noutputs; o++) {
        int64_t n = shape_numel(f->nodes[f->outputs[o].node].shape);
        o1[o] = calloc((size_t)n + 1, 4), on[o] = calloc((size_t)n + 1, 4);
      }
      CHECK(run(one, f, s1, inptr, o1) == 0);
      CHECK(run(many, f, sn, inptr, on) == 0);
      for (int o = 0; o < f->noutputs; o++) {
        int64_t n = shape_numel(f->nodes[f->outputs[o].node].shape);
        CHECK_MSG(!memcmp(o1[o], on[o], (size_t)n * 4), "%s.%s call %d, %d parts: output %s differs",
                  name, f->name, call, parts, f->outputs[o].name);
        free(o1[o]), free(on[o]);
      }
      CHECK_MSG(!memcmp(s1, sn, bytes), "%s.%s call %d, %d parts: state differs", name, f->name,
                call, parts);
      for (int j = 0; j < f->ninputs; j++) ir_tensor_free(&ins[j]);
      free(ins), free(inptr), free(o1), free(on);
    }
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
