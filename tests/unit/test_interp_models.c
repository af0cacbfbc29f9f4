/* test_interp_models.c: the reference interpreter runs the forward of every entry
 * function of every model in models/, from initialised state and sampled inputs, and
 * what comes out means what it should: finite losses near their values at a random
 * start, images in the range of G's last activation, batchnorm running statistics
 * moved by training forwards and untouched by generate. */
#include "check.h"
#include "frontend/frontend.h"
#include "runtime/runtime.h"

#include <stdlib.h>
#include <string.h>

static ir_module *load(const char *name) {
  char path[512];
  snprintf(path, sizeof path, "%s/models/%s.mig", MIGC_SOURCE_DIR, name);
  diag_sink d;
  diag_init(&d);
  ast_file *ast = parse_file(&d, path);
  elab_options eo = {.batch = 8}; /* a small batch keeps the interpreter quick */
  ir_module *m = ast && !d.nerrors ? elaborate(ast, &eo, &d) : NULL;
  if (!m) diag_print(&d, stderr, false);
  CHECK_MSG(m != NULL, "%s does not elaborate", path);
  if (ast) ast_free(ast);
  diag_free(&d);
  return m;
}

/* Samples an input as its declaration says (data: uniform over its range). */
static ir_tensor sample_input(const ir_input *in, uint64_t seed, int idx) {
  ir_tensor t = ir_tensor_alloc(in->dtype, in->shape);
  int64_t n = shape_numel(in->shape);
  for (int64_t i = 0; i < n; i++) {
    float u = rng_uniform(seed, RNG_STREAM_LATENT, (uint64_t)idx, (uint64_t)i);
    if (in->dtype == IR_I32) {
      int32_t *p = t.data;
      p[i] = in->kind == INPUT_SEED ? (int32_t)(i == 0 ? seed : 0)
                                    : (int32_t)(u * in->a) % (int32_t)in->a;
    } else {
      float *p = t.data;
      p[i] = in->dist == DIST_NORMAL ? (float)(in->a + in->b * rng_normal(seed, 9, idx, i))
           : in->dist == DIST_BERNOULLI ? (u < in->a ? 1.0f : 0.0f)
                                        : (float)(in->a + (in->b - in->a) * u);
    }
  }
  return t;
}

static int run_func(const ir_module *m, const ir_func *f, float *state, ir_tensor *outs) {
  ir_tensor *ins = calloc((size_t)f->ninputs + 1, sizeof *ins);
  for (int j = 0; j < f->ninputs; j++) ins[j] = sample_input(&m->inputs[f->inputs[j]], 7, j);
  ir_interp it = {.m = m, .state = state, .seed = 7, .step = 0};
  int st = ir_interp_run(&it, f, ins, outs);
  CHECK_MSG(st == 0, "%s.%s: %s", m->name, f->name, it.err);
  for (int j = 0; j < f->ninputs; j++) ir_tensor_free(&ins[j]);
  free(ins);
  return st;
}

static float scalar(const ir_tensor *t) { return ((float *)t->data)[0]; }

static const ir_output *output(const ir_func *f, const char *name, int *k) {
  for (int i = 0; i < f->noutputs; i++)
    if (!strcmp(f->outputs[i].name, name)) {
      *k = i;
      return &f->outputs[i];
    }
  return NULL;
}

static void check_model(const char *name, float img_lo, float img_hi, bool infogan) {
  ir_module *m = load(name);
  if (!m) return;
  float *state = calloc((size_t)m->state_size, sizeof *state);
  ir_init_state(m, state, 1);
  float *before = malloc((size_t)m->state_size * sizeof *before);
  memcpy(before, state, (size_t)m->state_size * sizeof *state);

  ir_func *train = ir_find_func(m, "train_step");
  ir_tensor outs[16] = {0};
  if (train && run_func(m, train, state, outs) == 0) {
    int k;
    /* At a random start D's logits are near 0: each bce term is near ln 2. */
    CHECK_MSG(output(train, "disc.loss", &k) != NULL, "%s has disc.loss", name);
    if (output(train, "disc.loss", &k)) {
      float l = scalar(&outs[k]);
      CHECK_MSG(isfinite(l) && l > 0.5f && l < (infogan ? 8.0f : 2.5f), "%s disc.loss %g", name, l);
    }
    if (output(train, "gen.loss", &k)) {
      float l = scalar(&outs[k]);
      CHECK_MSG(isfinite(l), "%s gen.loss %g", name, l);
    }
    if (infogan && output(train, "mi_c", &k)) {
      /* An untrained Q guesses: ln 10 minus a cross-entropy near ln 10, so near 0. */
      float mi = scalar(&outs[k]);
      CHECK_MSG(mi > -1.5f && mi < 0.7f, "%s mi_c at the start %g", name, mi);
    }
    for (int i = 0; i < train->noutputs; i++) ir_tensor_free(&outs[i]);
    /* Training forwards move batchnorm running statistics; parameters stay put
     * (no update is lowered yet). */
    bool bn_moved = false, params_same = true, has_bn = false;
    for (int v = 0; v < m->nvars; v++) {
      const ir_var *var = &m->vars[v];
      int64_t n = shape_numel(var->shape);
      bool same = !memcmp(state + var->offset, before + var->offset, (size_t)n * sizeof(float));
      if (var->kind == VAR_BN_MEAN) has_bn = true, bn_moved |= !same;
      if (var->kind == VAR_PARAM) params_same &= same;
    }
    CHECK_MSG(!has_bn || bn_moved, "%s: running statistics did not move", name);
    CHECK_MSG(params_same, "%s: a parameter changed in a forward-only step", name);
  }

  ir_func *gen = ir_find_func(m, "generate");
  CHECK_MSG(gen != NULL, "%s has generate", name);
  if (gen) {
    memcpy(before, state, (size_t)m->state_size * sizeof *state);
    if (run_func(m, gen, state, outs) == 0) {
      const ir_tensor *img = &outs[0];
      CHECK_MSG(img->shape.rank == 4 && img->shape.dim[0] == 8, "%s image rank %d", name,
                img->shape.rank);
      const float *p = img->data;
      float lo = 1e30f, hi = -1e30f;
      for (int64_t i = 0; i < shape_numel(img->shape); i++) {
        lo = p[i] < lo ? p[i] : lo;
        hi = p[i] > hi ? p[i] : hi;
      }
      CHECK_MSG(lo >= img_lo && hi <= img_hi && hi > lo, "%s images in [%g, %g]", name, lo, hi);
      for (int i = 0; i < gen->noutputs; i++) ir_tensor_free(&outs[i]);
      CHECK_MSG(!memcmp(before, state, (size_t)m->state_size * sizeof *state),
                "%s: generate changed the state", name);
    }
  }
  ir_func *enc = ir_find_func(m, "encode");
  CHECK_MSG(!infogan || enc != NULL, "%s has encode", name);
  if (enc && run_func(m, enc, state, outs) == 0) {
    CHECK_MSG(enc->noutputs == 2 && outs[0].shape.dim[1] == 10, "%s encode gives c logits",
              name);
    for (int i = 0; i < enc->noutputs; i++) ir_tensor_free(&outs[i]);
  }
  free(before);
  free(state);
  ir_module_free(m);
}

int main(void) {
  check_model("infogan_mlp", 0.0f, 1.0f, true);
  check_model("infogan_mnist", 0.0f, 1.0f, true);
  check_model("dcgan_fashion", -1.0f, 1.0f, false);
  check_model("seed_infogan", -1.0f, 1.0f, true);
  return check_done();
}
