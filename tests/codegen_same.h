/* codegen_same.h: what test_codegen_fuse and test_codegen_parts share. Both compile a
 * model from models/ twice with different cg_options (fused or not; one module or
 * several parts) and require the two programs to compute the same bits, function by
 * function, from the same state on the same inputs. Needs check.h and the codegen,
 * frontend, passes and runtime headers included first. */
#ifndef MIGC_TEST_CODEGEN_SAME_H
#define MIGC_TEST_CODEGEN_SAME_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* models/NAME.mig elaborated at batch and through every pass, verified after each;
 * NULL (and a failed check) if it does not compile. */
static inline ir_module *same_load_model(const char *name, int batch) {
  char path[512];
  snprintf(path, sizeof path, "%s/models/%s.mig", MIGC_SOURCE_DIR, name);
  diag_sink d;
  diag_init(&d);
  ast_file *ast = parse_file(&d, path);
  elab_options eo = {.batch = batch};
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

/* Runs f natively from state (updated in place); outs[k] receives output k. The
 * scratch starts as garbage: nothing may read bytes it did not write. */
static inline int same_run(cg_program *p, const ir_func *f, float *state, void **inptr,
                           float **outs) {
  size_t ss = (cg_scratch_size(p, f->name) + 64) & ~(size_t)63;
  void *scratch = aligned_alloc(64, ss);
  memset(scratch, 0xA5, ss);
  int rc = cg_lookup(p, f->name)(state, inptr, (void *const *)outs, scratch);
  free(scratch);
  return rc;
}

/* Calls f `calls` times in a and in b, from states sa and sb (equal on entry, each
 * updated in place), on inputs drawn from Philox stream `salt`: every output and the
 * whole state must be the same bits after each call. label names the comparison. */
static inline void same_bits(const ir_module *m, const ir_func *f, cg_program *a,
                             cg_program *b, float *sa, float *sb, int calls, uint64_t salt,
                             const char *label) {
  size_t bytes = (size_t)m->state_size * 4;
  for (int call = 0; call < calls; call++) {
    ir_tensor *ins = calloc((size_t)f->ninputs + 1, sizeof *ins);
    void **inptr = calloc((size_t)f->ninputs + 1, sizeof *inptr);
    for (int j = 0; j < f->ninputs; j++) {
      const ir_input *in = &m->inputs[f->inputs[j]];
      ins[j] = ir_tensor_alloc(in->dtype, in->shape);
      for (int64_t i = 0; i < shape_numel(in->shape); i++) {
        float u = rng_uniform(salt, 2, (uint64_t)(call * 16 + j), (uint64_t)i);
        if (in->dtype == IR_I32)
          ((int32_t *)ins[j].data)[i] = in->kind == INPUT_SEED ? call : (int32_t)(u * in->a);
        else
          ((float *)ins[j].data)[i] = in->kind == INPUT_DATA ? u : 2 * u - 1;
      }
      inptr[j] = ins[j].data;
    }
    float **oa = calloc((size_t)f->noutputs + 1, sizeof *oa);
    float **ob = calloc((size_t)f->noutputs + 1, sizeof *ob);
    for (int o = 0; o < f->noutputs; o++) {
      int64_t n = shape_numel(f->nodes[f->outputs[o].node].shape);
      oa[o] = calloc((size_t)n + 1, 4), ob[o] = calloc((size_t)n + 1, 4);
    }
    CHECK(same_run(a, f, sa, inptr, oa) == 0);
    CHECK(same_run(b, f, sb, inptr, ob) == 0);
    for (int o = 0; o < f->noutputs; o++) {
      int64_t n = shape_numel(f->nodes[f->outputs[o].node].shape);
      CHECK_MSG(!memcmp(oa[o], ob[o], (size_t)n * 4), "%s.%s call %d: output %s differs",
                label, f->name, call, f->outputs[o].name);
      free(oa[o]), free(ob[o]);
    }
    CHECK_MSG(!memcmp(sa, sb, bytes), "%s.%s call %d: state differs", label, f->name, call);
    for (int j = 0; j < f->ninputs; j++) ir_tensor_free(&ins[j]);
    free(ins), free(inptr), free(oa), free(ob);
  }
}

#endif
