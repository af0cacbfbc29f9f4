/* test_train_interp.c: whole training steps of models/infogan_mlp.mig, lowered
 * (autodiff + Adam) and run by the reference interpreter.
 * - One step changes exactly the parameters of the nets each step names, and the
 *   optimizer state of each step; generate changes nothing.
 * - Steps run in order: gen's loss is computed with the parameters disc just
 *   updated (it equals the gen loss of a program where only disc is lowered, and
 *   differs from the loss at the initial parameters).
 * - A few hundred steps on one fixed batch drive the categorical MI estimate toward
 *   H(c) = ln 10: the code becomes recoverable from the generated image.
 * - A step with every=3 applies its update on training steps 0, 3, 6, ...: there it
 *   leaves the same bits as the step without every=, in between it changes nothing it
 *   owns, while the other step trains on every training step. */
#include "check.h"
#include "frontend/frontend.h"
#include "passes/passes.h"
#include "runtime/runtime.h"

#include <stdlib.h>
#include <string.h>

#define BATCH 16

/* models/infogan_mlp.mig, with `every` (0: as it is) added to the gen step's optimizer. */
static ir_module *load_every(int every) {
  diag_sink d;
  diag_init(&d);
  ast_file *ast = NULL;
  if (every) {
    FILE *fp = fopen(MIGC_SOURCE_DIR "/models/infogan_mlp.mig", "rb");
    CHECK(fp != NULL);
    if (!fp) return NULL;
    static char text[1 << 16], edited[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, fp);
    fclose(fp);
    text[n] = 0;
    const char *opt = "with adam(lr=lr, beta1=0.5)";
    char *gen = strstr(text, "step gen(");
    char *at = gen ? strstr(gen, opt) : NULL;
    CHECK_MSG(at != NULL, "infogan_mlp.mig: no gen step with %s", opt);
    if (!at) return NULL;
    snprintf(edited, sizeof edited, "%.*swith adam(lr=lr, beta1=0.5, every=%d)%s",
             (int)(at - text), text, every, at + strlen(opt));
    ast = parse_source(&d, "infogan_mlp_every.mig", edited);
  } else {
    ast = parse_file(&d, MIGC_SOURCE_DIR "/models/infogan_mlp.mig");
  }
  elab_options eo = {.batch = BATCH};
  ir_module *m = ast && !d.nerrors ? elaborate(ast, &eo, &d) : NULL;
  if (!m) diag_print(&d, stderr, false);
  CHECK(m != NULL);
  if (ast) ast_free(ast);
  diag_free(&d);
  return m;
}

static ir_module *load(void) { return load_every(0); }

/* A fixed batch: "images" uniform in [0,1], latents and codes from their priors. */
static void make_inputs(const ir_module *m, const ir_func *f, ir_tensor *in, uint64_t seed) {
  for (int j = 0; j < f->ninputs; j++) {
    const ir_input *d = &m->inputs[f->inputs[j]];
    in[j] = ir_tensor_alloc(d->dtype, d->shape);
    for (int64_t i = 0; i < shape_numel(d->shape); i++) {
      float u = rng_uniform(seed, RNG_STREAM_LATENT, (uint64_t)f->inputs[j], (uint64_t)i);
      if (d->dtype == IR_I32)
        ((int32_t *)in[j].data)[i] = (int32_t)(u * d->a);
      else
        ((float *)in[j].data)[i] = (float)(d->a + (d->b - d->a) * u);
    }
  }
}

static float out_named(const ir_func *f, const ir_tensor *outs, const char *name) {
  for (int k = 0; k < f->noutputs; k++)
    if (!strcmp(f->outputs[k].name, name)) return ((float *)outs[k].data)[0];
  CHECK_MSG(false, "no output %s", name);
  return NAN;
}

static int run(ir_module *m, ir_func *f, float *state, ir_tensor *in, ir_tensor *outs) {
  ir_interp it = {.m = m, .state = state};
  int st = ir_interp_run(&it, f, in, outs);
  CHECK_MSG(st == 0, "%s", it.err);
  return st;
}

static void free_outs(const ir_func *f, ir_tensor *outs) {
  for (int k = 0; k < f->noutputs; k++) ir_tensor_free(&outs[k]);
}

static void test_one_step(void) {
  ir_module *full = load(), *half = load(), *fwd = load();
  if (!full || !half || !fwd) return;
  char err[256];
  CHECK(pass_lower_steps(full, err, sizeof err) == 0);
  /* Only disc lowered: gen's forward then runs on disc's updated parameters. */
  ir_func *hf = ir_find_func(half, "train_step");
  int *grads = malloc((size_t)half->nvars * sizeof *grads);
  CHECK(pass_autodiff(half, hf, 0, grads, err, sizeof err) == 0);
  pass_optimizer(half, hf, 0, grads);
  free(grads);

  ir_func *ff = ir_find_func(full, "train_step"), *wf = ir_find_func(fwd, "train_step");
  float *s_full = calloc((size_t)full->state_size, sizeof(float));
  float *s_half = calloc((size_t)half->state_size, sizeof(float));
  float *s_fwd = calloc((size_t)fwd->state_size, sizeof(float));
  float *before = calloc((size_t)full->state_size, sizeof(float));
  ir_init_state(full, s_full, 1);
  ir_init_state(half, s_half, 1);
  ir_init_state(fwd, s_fwd, 1);
  memcpy(before, s_full, (size_t)full->state_size * sizeof(float));
  ir_tensor in[8], o_full[8], o_half[8], o_fwd[8];
  make_inputs(full, ff, in, 3);
  if (run(full, ff, s_full, in, o_full) || run(half, hf, s_half, in, o_half) ||
      run(fwd, wf, s_fwd, in, o_fwd))
    return;
  float disc_full = out_named(ff, o_full, "disc.loss"), disc_fwd = out_named(wf, o_fwd, "disc.loss");
  float gen_full = out_named(ff, o_full, "gen.loss"), gen_half = out_named(hf, o_half, "gen.loss");
  float gen_fwd = out_named(wf, o_fwd, "gen.loss");
  CHECK_MSG(disc_full == disc_fwd, "disc loss %g vs %g", disc_full, disc_fwd);
  CHECK_MSG(gen_full == gen_half, "gen loss %g vs %g with only disc lowered", gen_full, gen_half);
  CHECK_MSG(fabsf(gen_full - gen_fwd) > 1e-6f, "gen loss %g did not see disc's update (%g)",
            gen_full, gen_fwd);

  /* Which variables moved: every parameter (disc trains body, D, Q; gen trains G, Q),
   * each step's moments of exactly its parameters, the counters. */
  for (int v = 0; v < full->nvars; v++) {
    const ir_var *var = &full->vars[v];
    int64_t n = shape_numel(var->shape);
    bool moved = memcmp(s_full + var->offset, before + var->offset, (size_t)n * sizeof(float));
    CHECK_MSG(moved, "%s did not change", var->name);
  }
  const ir_var *gw = &half->vars[ir_find_var(half, "G.dense0.weight")];
  const ir_var *dw = &half->vars[ir_find_var(half, "D.dense0.weight")];
  float *init = calloc((size_t)half->state_size, sizeof(float));
  ir_init_state(half, init, 1);
  CHECK_MSG(!memcmp(s_half + gw->offset, init + gw->offset, (size_t)shape_numel(gw->shape) * 4),
            "G changed in a step that trains only body, D, Q");
  CHECK_MSG(memcmp(s_half + dw->offset, init + dw->offset, (size_t)shape_numel(dw->shape) * 4),
            "D did not change in its own step");
  CHECK(ir_find_var(half, "G.dense0.weight@gen.m") < 0);
  CHECK(ir_find_var(half, "D.dense0.weight@disc.m") >= 0);
  CHECK(ir_find_var(full, "Q.dense0.weight@disc.m") >= 0 && ir_find_var(full, "Q.dense0.weight@gen.m") >= 0);

  /* generate reads the state and leaves it as it is. */
  ir_func *g = ir_find_func(full, "generate");
  memcpy(before, s_full, (size_t)full->state_size * sizeof(float));
  ir_tensor gin[4], gout[2];
  make_inputs(full, g, gin, 4);
  if (!run(full, g, s_full, gin, gout)) {
    CHECK(!memcmp(before, s_full, (size_t)full->state_size * sizeof(float)));
    free_outs(g, gout);
  }
  for (int j = 0; j < g->ninputs; j++) ir_tensor_free(&gin[j]);
  free_outs(ff, o_full);
  free_outs(hf, o_half);
  free_outs(wf, o_fwd);
  for (int j = 0; j < ff->ninputs; j++) ir_tensor_free(&in[j]);
  free(init);
  free(before);
  free(s_full);
  free(s_half);
  free(s_fwd);
  ir_module_free(full);
  ir_module_free(half);
  ir_module_free(fwd);
}

static void test_mi_rises(void) {
  ir_module *m = load();
  if (!m) return;
  char err[256];
  CHECK(pass_lower_steps(m, err, sizeof err) == 0);
  ir_func *f = ir_find_func(m, "train_step");
  float *state = calloc((size_t)m->state_size, sizeof(float));
  ir_init_state(m, state, 2);
  ir_tensor in[8], outs[8];
  make_inputs(m, f, in, 5);
  float first = NAN, last = NAN, best = -1e9f;
  int steps = 300;
  for (int t = 0; t < steps; t++) {
    if (run(m, f, state, in, outs)) break;
    float mi = out_named(f, outs, "mi_c");
    if (t == 0) first = mi;
    last = mi;
    best = mi > best ? mi : best;
    CHECK_MSG(isfinite(out_named(f, outs, "disc.loss")), "disc loss at step %d", t);
    free_outs(f, outs);
  }
  printf("mi_c: %.4f at the first step, %.4f after %d steps (ln 10 = %.4f)\n", first, last,
         steps, log(10.0));
  CHECK_MSG(first < 0.5f, "MI starts at %g", first);
  CHECK_MSG(last > 2.0f && last <= (float)log(10.0) + 1e-4f, "MI after %d steps: %g", steps, last);
  for (int j = 0; j < f->ninputs; j++) ir_tensor_free(&in[j]);
  free(state);
  ir_module_free(m);
}

/* Whether variable `name` of a and b hold the same bits. */
static bool same_var(const ir_module *a, const float *sa, const ir_module *b, const float *sb,
                     const char *name) {
  int va = ir_find_var(a, name), vb = ir_find_var(b, name);
  CHECK_MSG(va >= 0 && vb >= 0, "no variable %s", name);
  if (va < 0 || vb < 0) return false;
  return !memcmp(sa + a->vars[va].offset, sb + b->vars[vb].offset,
                 (size_t)shape_numel(a->vars[va].shape) * sizeof(float));
}

static float scalar_var(const ir_module *m, const float *s, const char *name) {
  int v = ir_find_var(m, name);
  CHECK_MSG(v >= 0, "no variable %s", name);
  return v >= 0 ? s[m->vars[v].offset] : NAN;
}

static void test_every(void) {
  ir_module *plain = load(), *every = load_every(3);
  if (!plain || !every) return;
  char err[256];
  CHECK(pass_lower_steps(plain, err, sizeof err) == 0);
  CHECK(pass_lower_steps(every, err, sizeof err) == 0);
  ir_func *pf = ir_find_func(plain, "train_step"), *ef = ir_find_func(every, "train_step");
  float *sp = calloc((size_t)plain->state_size, sizeof(float));
  float *se = calloc((size_t)every->state_size, sizeof(float));
  float *before = calloc((size_t)every->state_size, sizeof(float));
  ir_init_state(plain, sp, 1);
  ir_init_state(every, se, 1);
  /* What gen alone trains (G, its moments, its counter) and what disc trains. */
  const char *gen_owns[] = {"G.dense0.weight", "G.dense0.weight@gen.m", "G.dense0.weight@gen.v",
                            "Q.dense0.weight@gen.m", "gen.t"};
  const int phase_after[] = {1, 2, 0, 1, 2, 0, 1};
  for (int step = 0; step < 7; step++) {
    ir_tensor in[8], op[8], oe[8];
    make_inputs(every, ef, in, 10 + (uint64_t)step);
    memcpy(before, se, (size_t)every->state_size * sizeof(float));
    if (run(plain, pf, sp, in, op) || run(every, ef, se, in, oe)) return;
    bool applies = step % 3 == 0;
    for (size_t k = 0; k < sizeof gen_owns / sizeof *gen_owns; k++) {
      bool kept = same_var(every, se, every, before, gen_owns[k]);
      CHECK_MSG(kept != applies, "step %d: %s %s", step, gen_owns[k],
                applies ? "did not change on an update" : "changed between updates");
    }
    CHECK_MSG(!same_var(every, se, every, before, "D.dense0.weight"),
              "step %d: disc's step did not train D", step);
    CHECK_MSG(scalar_var(every, se, "gen.t") == (float)(step / 3 + 1), "step %d: gen.t %g", step,
              scalar_var(every, se, "gen.t"));
    CHECK_MSG(scalar_var(every, se, "gen.phase") == (float)phase_after[step],
              "step %d: gen.phase %g", step, scalar_var(every, se, "gen.phase"));
    CHECK_MSG(isfinite(out_named(ef, oe, "gen.loss")), "step %d: gen.loss", step);
    /* Until the first skipped update both programs ran the same updates. */
    if (step == 0) {
      for (int v = 0; v < plain->nvars; v++)
        CHECK_MSG(same_var(plain, sp, every, se, plain->vars[v].name),
                  "%s differs from the program without every= after the first step",
                  plain->vars[v].name);
      CHECK(out_named(pf, op, "gen.loss") == out_named(ef, oe, "gen.loss"));
    }
    free_outs(pf, op);
    free_outs(ef, oe);
    for (int j = 0; j < ef->ninputs; j++) ir_tensor_free(&in[j]);
  }
  CHECK(!same_var(plain, sp, every, se, "G.dense0.weight"));
  free(before), free(sp), free(se);
  ir_module_free(plain);
  ir_module_free(every);
}

int main(void) {
  test_every();
  test_one_step();
  test_mi_rises();
  return check_done();
}
