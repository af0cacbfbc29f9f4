/* test_elaborate.c: what elaboration makes of a model (parameters, their names and
 * shapes, steps, lazy bindings, batchnorm statistics, entry functions), and one case
 * per elaboration diagnostic with its exact line:col and message. */
#include "check.h"
#include "frontend/frontend.h"
#include "passes/passes.h"

#include <stdlib.h>
#include <string.h>

static ir_module *elab_text(const char *text, const elab_options *eo, diag_sink *d) {
  diag_init(d);
  ast_file *ast = parse_source(d, "t.mig", text);
  ir_module *m = ast && !d->nerrors ? elaborate(ast, eo, d) : NULL;
  if (ast) ast_free(ast);
  return m;
}

/* elab_text that must succeed: NULL (diagnostics printed, d freed) counts as a failure */
static ir_module *elab_checked(const char *text, diag_sink *d) {
  ir_module *m = elab_text(text, NULL, d);
  CHECK(m != NULL);
  if (!m) {
    diag_print(d, stderr, false);
    diag_free(d);
  }
  return m;
}

/* The first diagnostic of the given level, as "line:col: message". */
static const char *first(const diag_sink *d, diag_level level, char *buf, size_t n) {
  for (int i = 0; i < d->n; i++)
    if (d->entries[i].level == level) {
      snprintf(buf, n, "%d:%d: %s", d->entries[i].span.line, d->entries[i].span.col,
               d->entries[i].msg);
      return buf;
    }
  return "(none)";
}

static int count_op(const ir_func *f, ir_op op) {
  int n = 0;
  for (int i = 0; i < f->nnodes; i++) n += f->nodes[i].op == op;
  return n;
}

static const ir_var *var(const ir_module *m, const char *name) {
  int v = ir_find_var(m, name);
  CHECK_MSG(v >= 0, "no variable %s", name);
  return v >= 0 ? &m->vars[v] : NULL;
}

static void check_var(const ir_module *m, const char *name, ir_var_kind kind, int rank,
                      int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
  const ir_var *v = var(m, name);
  if (!v) return;
  int64_t want[4] = {d0, d1, d2, d3};
  bool same = v->kind == kind && v->shape.rank == rank;
  for (int i = 0; same && i < rank; i++) same = v->shape.dim[i] == want[i];
  char sh[64];
  shape_str(v->shape, sh, sizeof sh);
  CHECK_MSG(same, "%s is %s kind %d", name, sh, v->kind);
}

static void test_infogan_mnist(void) {
  diag_sink d;
  diag_init(&d);
  ast_file *ast = parse_file(&d, MIGC_SOURCE_DIR "/models/infogan_mnist.mig");
  ir_module *m = ast ? elaborate(ast, NULL, &d) : NULL;
  CHECK(m != NULL && d.nerrors == 0 && d.n == 0);
  if (!m) {
    diag_print(&d, stderr, false);
    return;
  }
  CHECK(m->batch == 64 && m->nnets == 4);
  CHECK_STR(m->nets[0], "G");
  CHECK_STR(m->nets[1], "body");
  check_var(m, "G.dense0.weight", VAR_PARAM, 2, 1024, 74, 0, 0);
  check_var(m, "G.dense1.weight", VAR_PARAM, 2, 6272, 1024, 0, 0);
  check_var(m, "G.bn0.running_mean", VAR_BN_MEAN, 1, 1024, 0, 0, 0);
  check_var(m, "G.bn2.running_var", VAR_BN_VAR, 1, 64, 0, 0, 0);
  check_var(m, "G.deconv0.weight", VAR_PARAM, 4, 128, 64, 4, 4);
  check_var(m, "G.deconv1.weight", VAR_PARAM, 4, 64, 1, 4, 4);
  check_var(m, "body.conv0.weight", VAR_PARAM, 4, 64, 1, 4, 4);
  check_var(m, "body.conv1.bias", VAR_PARAM, 1, 128, 0, 0, 0);
  check_var(m, "body.dense0.weight", VAR_PARAM, 2, 1024, 6272, 0, 0);
  check_var(m, "D.dense0.weight", VAR_PARAM, 2, 1, 1024, 0, 0);
  check_var(m, "Q.dense1.weight", VAR_PARAM, 2, 10, 128, 0, 0);
  check_var(m, "Q.dense2.bias", VAR_PARAM, 1, 2, 0, 0, 0);
  /* PyTorch's fan-in: C_in*k*k for conv, C_out*k*k for a transposed conv. */
  const ir_var *v = var(m, "body.conv1.weight");
  CHECK(v && v->init.kind == INIT_DEFAULT && v->init.fan_in == 64 * 16);
  v = var(m, "G.deconv0.weight");
  CHECK(v && v->init.fan_in == 64 * 16);
  v = var(m, "G.bn0.weight");
  CHECK(v && v->init.kind == INIT_ONES);
  /* The paper's architecture, counted by hand: G 6,652,481; body 6,558,144; D 1,025;
   * Q 133,004. */
  int64_t params = 0;
  for (int i = 0; i < m->nvars; i++)
    if (m->vars[i].kind == VAR_PARAM) params += shape_numel(m->vars[i].shape);
  CHECK_MSG(params == 13344654, "%lld parameters", (long long)params);

  ir_func *t = ir_find_func(m, "train_step");
  CHECK(t && t->training && t->nsteps == 2 && t->nblocks == 2);
  if (t) {
    CHECK_STR(m->inputs[t->inputs[0]].name, "x");
    CHECK_STR(m->inputs[t->inputs[3]].name, "s");
    CHECK_STR(t->steps[0].name, "disc");
    CHECK(t->steps[0].nnets == 3 && t->steps[0].block == 0);
    CHECK(t->steps[1].nnets == 2 && t->steps[1].block == 1);
    CHECK(t->steps[0].opt.kind == OPT_ADAM && t->steps[0].opt.lr == 2e-4 &&
          t->steps[0].opt.beta1 == 0.5 && t->steps[0].opt.beta2 == 0.999);
    CHECK(t->noutputs == 4);
    CHECK_STR(t->outputs[0].name, "mi_c");
    CHECK_STR(t->outputs[2].name, "disc.loss");
    CHECK_STR(t->outputs[3].name, "gen.loss");
    /* G runs once: disc does not change G, so gen reuses `fake`. body runs three
     * times: on x and on fake for disc, and on fake again for gen, because disc
     * changed body's parameters. Q runs once per step. */
    CHECK_MSG(count_op(t, IR_OP_DECONV) == 2, "%d deconvs", count_op(t, IR_OP_DECONV));
    CHECK_MSG(count_op(t, IR_OP_CONV) == 6, "%d convs", count_op(t, IR_OP_CONV));
    /* Running statistics: G 3 batchnorms once, body 2 three times, Q 1 twice; two
     * stores each. */
    CHECK_MSG(count_op(t, IR_OP_STORE) == 2 * (3 + 6 + 2), "%d stores",
              count_op(t, IR_OP_STORE));
    CHECK(count_op(t, IR_OP_BATCHNORM) == 11 && count_op(t, IR_OP_BATCHNORM_INFER) == 0);
  }
  ir_func *g = ir_find_func(m, "generate");
  CHECK(g && !g->training && g->ninputs == 3 && g->noutputs == 1);
  if (g) {
    CHECK(count_op(g, IR_OP_STORE) == 0 && count_op(g, IR_OP_BATCHNORM_INFER) == 3);
    CHECK(g->nodes[g->outputs[0].node].shape.dim[1] == 1 &&
          g->nodes[g->outputs[0].node].shape.dim[3] == 28);
  }
  ir_func *en = ir_find_func(m, "encode");
  CHECK(en && en->ninputs == 1 && en->noutputs == 2);
  diag_sink vd;
  diag_init(&vd);
  CHECK(ir_verify(m, &vd));
  diag_free(&vd);
  ir_module_free(m);
  ast_free(ast);
  diag_free(&d);
}

/* A tiny model whose losses can be computed by hand through the interpreter: one
 * dense layer with known weights, a constant target broadcast by bce. */
static void test_tiny_forward(void) {
  const char *src =
      "model tiny\n"
      "input x : [2]\n"
      "net D(v) {\n  return dense(v, 1, init=ones())\n}\n"
      "train batch 2 {\n"
      "  step d(D) : minimize bce(D(x), 1) + 0.5 * mean(D(x) * D(x)) with sgd(lr=0.1)\n"
      "}\n";
  diag_sink d;
  ir_module *m = elab_checked(src, &d);
  if (!m) return;
  float *state = calloc((size_t)m->state_size, sizeof *state);
  ir_init_state(m, state, 3);
  /* weight = ones, bias = U(-1/sqrt(2), 1/sqrt(2)): set it to 0.25 by hand. */
  state[m->vars[ir_find_var(m, "D.dense0.bias")].offset] = 0.25f;
  ir_func *f = ir_find_func(m, "train_step");
  int64_t xs[2] = {2, 2};
  ir_tensor x = ir_tensor_alloc(IR_F32, shape_make(2, xs, true));
  float *xp = x.data;
  xp[0] = 1, xp[1] = -2, xp[2] = 0.5f, xp[3] = 0.5f; /* logits -0.75 and 1.25 */
  ir_tensor out[1];
  ir_interp it = {.m = m, .state = state};
  CHECK(ir_interp_run(&it, f, &x, out) == 0);
  double l1 = -0.75, l2 = 1.25;
  double bce = (log1p(exp(-l1)) + log1p(exp(-l2))) / 2; /* target 1 */
  double want = bce + 0.5 * (l1 * l1 + l2 * l2) / 2;
  CHECK_NEAR(((float *)out[0].data)[0], want, 1e-6, 1e-7);
  ir_tensor_free(&out[0]);
  ir_tensor_free(&x);
  free(state);
  ir_module_free(m);
  diag_free(&d);
}

/* avgpool, maxpool and upsample against hand values through the interpreter: a 4x4
 * image of 0..15 pools to the means and the largest of its 2x2 blocks, upsampling
 * repeats each value over a 2x2 block, and bilinear upsampling blends them with
 * PyTorch's weights; on a batch of 2, channels 2, the second sample and channel
 * offset. */
static void test_resample(void) {
  const char *src =
      "model rs\n"
      "input x : [2, 4, 4]\n"
      "net R(v) {\n  p = avgpool(v, 2)\n"
      "  return p, upsample(p, 2), avgpool(v, 4), upsample(p, 2, mode=\"bilinear\"),\n"
      "         maxpool(v, 2)\n}\n"
      "net D(v) {\n  return dense(flatten(v), 1)\n}\n"
      "train batch 2 {\n  step d(D) : minimize bce(D(x), 1) with sgd(lr=0.1)\n}\n"
      "encode p, u, q, b, mx = R(x)\n";
  diag_sink d;
  ir_module *m = elab_checked(src, &d);
  if (!m) return;
  ir_func *f = ir_find_func(m, "encode");
  /* PyTorch's bilinear (align_corners=False) from 2 to 4: output o reads source
   * (o + 0.5)/2 - 0.5, clamped to [0, 1], so these weights of the two source values */
  const double lin[4][2] = {{1, 0}, {0.75, 0.25}, {0.25, 0.75}, {0, 1}};
  int64_t xs[4] = {2, 2, 4, 4};
  ir_tensor x = ir_tensor_alloc(IR_F32, shape_make(4, xs, true));
  float *xp = x.data;
  for (int i = 0; i < 64; i++) xp[i] = (float)i; /* sample b, channel c: 32b + 16c + 0..15 */
  ir_tensor out[5];
  ir_interp it = {.m = m};
  CHECK(f && ir_interp_run(&it, f, &x, out) == 0);
  if (f) {
    const float *p = out[0].data, *u = out[1].data, *q = out[2].data, *bl = out[3].data;
    const float *mx = out[4].data;
    CHECK(out[0].shape.rank == 4 && out[0].shape.dim[2] == 2 && out[0].shape.dim[3] == 2);
    CHECK(out[1].shape.dim[2] == 4 && out[1].shape.dim[3] == 4 && out[2].shape.dim[2] == 1);
    for (int bc = 0; bc < 4; bc++) { /* (sample, channel) pairs in order: offset 16 bc */
      double o = 16.0 * bc;
      double want[4] = {o + 2.5, o + 4.5, o + 10.5, o + 12.5};
      for (int j = 0; j < 4; j++) CHECK_NEAR(p[4 * bc + j], want[j], 0, 1e-6);
      for (int h = 0; h < 4; h++)
        for (int w = 0; w < 4; w++)
          CHECK_NEAR(u[16 * bc + 4 * h + w], want[2 * (h / 2) + w / 2], 0, 1e-6);
      CHECK_NEAR(q[bc], o + 7.5, 0, 1e-6);
      double top[4] = {o + 5, o + 7, o + 13, o + 15}; /* each 2x2 block's bottom right */
      for (int j = 0; j < 4; j++) CHECK_NEAR(mx[4 * bc + j], top[j], 0, 0);
      for (int h = 0; h < 4; h++)
        for (int w = 0; w < 4; w++) {
          double v = 0;
          for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++) v += lin[h][i] * lin[w][j] * want[2 * i + j];
          CHECK_NEAR(bl[16 * bc + 4 * h + w], v, 0, 1e-5);
        }
    }
    for (int k = 0; k < 5; k++) ir_tensor_free(&out[k]);
  }
  ir_tensor_free(&x);
  ir_module_free(m);
  diag_free(&d);
}

/* embedding: row c of its [K, dim] table, through the interpreter, for each sample's
 * code; the table is named E.emb0.weight and starts as N(0, 1) (PyTorch's). */
static void test_embedding(void) {
  const char *src =
      "model em\n"
      "input x : [3]\n"
      "code c : categorical(5)\n"
      "net E(c) {\n  return embedding(c, 3)\n}\n"
      "net D(v) {\n  return dense(v, 1)\n}\n"
      "train batch 4 {\n  step d(D, E) : minimize bce(D(x), 1) + mean(E(c)) with sgd(lr=0.1)\n}\n"
      "generate y = E(c)\n";
  diag_sink d;
  ir_module *m = elab_checked(src, &d);
  if (!m) return;
  int v = ir_find_var(m, "E.emb0.weight");
  CHECK(v >= 0 && m->vars[v].shape.rank == 2 && m->vars[v].shape.dim[0] == 5 &&
        m->vars[v].shape.dim[1] == 3 && m->vars[v].init.kind == INIT_NORMAL &&
        m->vars[v].init.a == 0 && m->vars[v].init.b == 1);
  float *state = calloc((size_t)m->state_size, sizeof *state);
  ir_init_state(m, state, 3);
  ir_func *f = ir_find_func(m, "generate");
  int64_t n4 = 4;
  ir_tensor c = ir_tensor_alloc(IR_I32, shape_make(1, &n4, true));
  int32_t codes[4] = {4, 0, 2, 4};
  memcpy(c.data, codes, sizeof codes);
  ir_tensor out[1];
  ir_interp it = {.m = m, .state = state};
  CHECK(f && v >= 0 && ir_interp_run(&it, f, &c, out) == 0);
  if (f && v >= 0) {
    const float *y = out[0].data, *w = state + m->vars[v].offset;
    for (int s = 0; s < 4; s++)
      for (int j = 0; j < 3; j++) CHECK(y[3 * s + j] == w[3 * codes[s] + j]);
    ir_tensor_free(&out[0]);
  }
  ir_tensor_free(&c);
  free(state);
  ir_module_free(m);
  diag_free(&d);
}

/* Learning-rate schedules: a weight whose gradient is 1 on every step (the mean of a
 * dense layer's output on inputs of ones), trained by plain SGD, moves by exactly the
 * scheduled rate of each update: w_u = w_(u-1) - lr_u, against the formulas of
 * ir_optim computed here. */
static void check_schedule(const char *opt, double lr, double warmup, int kind, double steps,
                           double end) {
  char src[1024];
  snprintf(src, sizeof src,
           "model sc\n"
           "input x : [1]\n"
           "net N(v) {\n  return dense(v, 1, bias=0, init=zeros())\n}\n"
           "train batch 2 {\n  step s(N) : minimize mean(N(x)) with %s\n}\n", opt);
  diag_sink d;
  ir_module *m = elab_checked(src, &d);
  if (!m) return;
  char err[256];
  CHECK(pass_lower_steps(m, err, sizeof err) == 0);
  float *state = calloc((size_t)m->state_size, sizeof *state);
  ir_init_state(m, state, 1);
  int w = ir_find_var(m, "N.dense0.weight");
  ir_func *f = ir_find_func(m, "train_step");
  int64_t xs[2] = {2, 1};
  ir_tensor x = ir_tensor_alloc(IR_F32, shape_make(2, xs, true));
  ((float *)x.data)[0] = ((float *)x.data)[1] = 1;
  double want = 0;
  for (int u = 1; u <= 8; u++) {
    ir_tensor out[2];
    ir_interp it = {.m = m, .state = state};
    CHECK(ir_interp_run(&it, f, &x, out) == 0);
    for (int o = 0; o < f->noutputs; o++) ir_tensor_free(&out[o]);
    double warm = warmup > 0 ? fmin(1, u / warmup) : 1, frac = fmin(u - 1, steps) / steps;
    double decay = kind == 0 ? 1 : kind == 1 ? 1 + (end - 1) * frac
                                 : end + (1 - end) * (1 + cos(M_PI * frac)) / 2;
    want -= lr * warm * decay;
    CHECK_MSG(fabs(state[m->vars[w].offset] - want) <= 1e-6, "%s, update %d: %g, expected %g",
              opt, u, state[m->vars[w].offset], want);
  }
  ir_tensor_free(&x);
  free(state);
  ir_module_free(m);
  diag_free(&d);
}

/* ema=D: the step's moving average of the weight (N.dense0.weight@s.ema, kind ema)
 * follows avg_u = p_u + d_u (avg_(u-1) - p_u), d_u = min(D, (u-1)/u), here with the
 * same SGD updates of exactly lr a step (p_u = -0.5 u). */
static void test_ema(void) {
  const char *src =
      "model av\n"
      "input x : [1]\n"
      "net N(v) {\n  return dense(v, 1, bias=0, init=zeros())\n}\n"
      "train batch 2 {\n  step s(N) : minimize mean(N(x)) with sgd(lr=0.5, ema=0.8)\n}\n";
  diag_sink d;
  ir_module *m = elab_checked(src, &d);
  if (!m) return;
  char err[256];
  CHECK(pass_lower_steps(m, err, sizeof err) == 0);
  int a = ir_find_var(m, "N.dense0.weight@s.ema"), w = ir_find_var(m, "N.dense0.weight");
  CHECK(a >= 0 && m->vars[a].kind == VAR_EMA && m->vars[a].of == w);
  float *state = calloc((size_t)m->state_size, sizeof *state);
  ir_init_state(m, state, 1);
  ir_func *f = ir_find_func(m, "train_step");
  int64_t xs[2] = {2, 1};
  ir_tensor x = ir_tensor_alloc(IR_F32, shape_make(2, xs, true));
  ((float *)x.data)[0] = ((float *)x.data)[1] = 1;
  double avg = 0;
  for (int u = 1; a >= 0 && u <= 10; u++) {
    ir_tensor out[2];
    ir_interp it = {.m = m, .state = state};
    CHECK(ir_interp_run(&it, f, &x, out) == 0);
    for (int o = 0; o < f->noutputs; o++) ir_tensor_free(&out[o]);
    double p = -0.5 * u, dd = fmin(0.8, (u - 1.0) / u);
    avg = p + dd * (avg - p);
    CHECK_MSG(fabs(state[m->vars[a].offset] - avg) <= 1e-5, "update %d: %g, expected %g", u,
              state[m->vars[a].offset], avg);
    CHECK(fabs(state[m->vars[w].offset] - p) <= 1e-6);
  }
  ir_tensor_free(&x);
  free(state);
  ir_module_free(m);
  diag_free(&d);
}

static void test_schedules(void) {
  check_schedule("sgd(lr=0.5)", 0.5, 0, 0, 1, 1);
  check_schedule("sgd(lr=0.5, warmup=3)", 0.5, 3, 0, 1, 1);
  check_schedule("sgd(lr=0.5, schedule=linear(4, end=0.25))", 0.5, 0, 1, 4, 0.25);
  check_schedule("sgd(lr=0.5, schedule=cosine(5), warmup=2)", 0.5, 2, 2, 5, 0);
  check_schedule("sgd(lr=0.5, schedule=constant())", 0.5, 0, 0, 1, 1);
}

/* A correct model with a marker line replaced by `line`; the elaboration must fail
 * with `want` ("line:col: message") as its first error. */
static const char base[] =
    "model m\n"                                       /* 1 */
    "input x : [1, 8, 8]\n"                           /* 2 */
    "latent z : uniform(-1, 1) [4]\n"                 /* 3 */
    "code c : categorical(3)\n"                       /* 4 */
    "const k = 3\n"                                   /* 5 */
    "net G(z, c) {\n"                                 /* 6 */
    "  h = dense(concat(z, onehot(c)), 64)\n"         /* 7 */
    "  return sigmoid(reshape(h, [1, 8, 8]))\n"       /* 8 */
    "}\n"                                             /* 9 */
    "net D(img : [1, 8, 8]) {\n"                      /* 10 */
    "  h = lrelu(conv(img, 4, k=3, p=1), 0.2)\n"      /* 11 */
    "  return dense(flatten(h), 1), dense(flatten(h), k)\n" /* 12 */
    "}\n"                                             /* 13 */
    "train batch 8 {\n"                               /* 14 */
    "  fake = G(z, c)\n"                              /* 15 */
    "  @@\n"                                          /* 16 */
    "  step d(D) : minimize bce(D(x)[0], 1) + bce(D(fake)[0], 0) with adam(lr=1e-3)\n" /* 17 */
    "  step g(G) : minimize bce(D(fake)[0], 1) with adam(lr=1e-3)\n" /* 18 */
    "}\n";                                            /* 19 */

static void expect_error(const char *line16, const char *want) {
  char *src = malloc(sizeof base + strlen(line16));
  const char *at = strstr(base, "@@");
  sprintf(src, "%.*s%s%s", (int)(at - base), base, line16, at + 2);
  diag_sink d;
  ir_module *m = elab_text(src, NULL, &d);
  char buf[512];
  CHECK_MSG(m == NULL, "expected an error for: %s", line16);
  CHECK_STR(first(&d, DIAG_ERROR, buf, sizeof buf), want);
  ir_module_free(m);
  diag_free(&d);
  free(src);
}

/* As expect_error, and the first note must be want_note ("" for none). */
static void expect_note(const char *line16, const char *want, const char *want_note) {
  char *src = malloc(sizeof base + strlen(line16));
  const char *at = strstr(base, "@@");
  sprintf(src, "%.*s%s%s", (int)(at - base), base, line16, at + 2);
  diag_sink d;
  ir_module *m = elab_text(src, NULL, &d);
  char buf[512];
  CHECK(m == NULL);
  CHECK_STR(first(&d, DIAG_ERROR, buf, sizeof buf), want);
  const char *note = first(&d, DIAG_NOTE, buf, sizeof buf);
  CHECK_STR(strcmp(note, "(none)") ? note : "", want_note);
  ir_module_free(m);
  diag_free(&d);
  free(src);
}

static void expect_with(const char *src, const elab_options *eo, diag_level level,
                        const char *want) {
  diag_sink d;
  ir_module *m = elab_text(src, eo, &d);
  char buf[512];
  CHECK_STR(first(&d, level, buf, sizeof buf), want);
  if (level == DIAG_ERROR) CHECK(m == NULL);
  ir_module_free(m);
  diag_free(&d);
}

static void test_base_is_fine(void) {
  char *src = strdup(base);
  char *at = strstr(src, "@@");
  at[0] = at[1] = ' ';
  diag_sink d;
  ir_module *m = elab_text(src, NULL, &d);
  CHECK_MSG(m != NULL && d.n == 0, "the base model must elaborate cleanly");
  if (!m) diag_print(&d, stderr, false);
  ir_module_free(m);
  diag_free(&d);
  free(src);
}

/* Net instances: repeat and name= give each call parameters of its own, owned by the
 * calling net and named after the instance; the net's second call (G in both steps)
 * uses the same ones; a plain call keeps the net's shared parameters. */
static void test_instances(void) {
  const char *src =
      "model inst\n"
      "input x : [4]\n"
      "latent z : normal(0, 1) [4]\n"
      "net blk(h, n) {\n  return h + dense(relu(dense(h, n)), 4)\n}\n"
      "net G(z) {\n"
      "  h = repeat(blk, 3, z, 8, name=\"block\")\n"
      "  h = blk(h, 2, name=\"last\")\n"
      "  return repeat(blk, 1, h, 5)\n"
      "}\n"
      "net D(v) {\n  return dense(blk(v, 3), 1)\n}\n"
      "train batch 2 {\n"
      "  fake = G(z)\n"
      "  step d(D, blk) : minimize bce(D(x), 1) + bce(D(fake), 0) with sgd(lr=0.1)\n"
      "  step g(G) : minimize bce(D(fake), 1) with sgd(lr=0.1)\n"
      "}\n";
  diag_sink d;
  ir_module *m = elab_checked(src, &d);
  if (!m) return;
  const char *want[] = {"G.block0.dense0.weight", "G.block1.dense0.weight",
                        "G.block2.dense1.bias", "G.last.dense0.weight", "G.blk0.dense0.weight",
                        "blk.dense0.weight"};
  for (size_t k = 0; k < sizeof want / sizeof *want; k++)
    CHECK_MSG(ir_find_var(m, want[k]) >= 0, "no variable %s", want[k]);
  /* dense0 is the outer call (numbered in source order), dense1 the one of width n */
  int v = ir_find_var(m, "G.block1.dense1.weight"), l = ir_find_var(m, "G.last.dense1.weight");
  int g = -1;
  for (int i = 0; i < m->nnets; i++)
    if (!strcmp(m->nets[i], "G")) g = i;
  CHECK(v >= 0 && m->vars[v].shape.dim[0] == 8 && m->vars[v].net == g);
  CHECK(l >= 0 && m->vars[l].shape.dim[0] == 2);
  CHECK(ir_find_var(m, "G.block3.dense0.weight") < 0);
  int params = 0;
  for (int i = 0; i < m->nvars; i++) params += m->vars[i].kind == VAR_PARAM;
  CHECK_MSG(params == 2 * 2 * 6 + 2, "%d parameters: G made its instances twice?", params);
  ir_module_free(m);
  diag_free(&d);
  /* misuse inside a net, located */
  static const struct {
    const char *line, *want;
  } bad[] = {
      {"  h = repeat(dense, 2, z)", "8:14: repeat's first argument must name a net"},
      {"  h = repeat(blk, 0, z, 4)", "8:19: repeat's count must be from 1 to 64, got 0"},
      {"  h = repeat(blk, 2, z)", "8:7: blk takes 2 arguments, got 1"},
      {"  h = repeat(two, 2, z)", "8:7: repeat feeds two's result to its next call, so two must "
                                "return one tensor"},
      {"  h = blk(z, 4, name=\"a.b\")", "8:22: name= takes a string of letters, digits and '_' "
                                       "(at most 47), e.g. name=\"block1\""},
  };
  for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
    char text[1024];
    snprintf(text, sizeof text,
             "model inst\ninput x : [4]\nlatent z : normal(0, 1) [4]\n"
             "net blk(h, n) {\n  return h + dense(h, 4)\n}\nnet G(z) {\n%s\n  return h\n}\n"
             "net two(h) {\n  return h, h\n}\n"
             "train batch 2 {\n  step g(G) : minimize mean(G(z)) + mean(x) with sgd(lr=0.1)\n}\n",
             bad[k].line);
    expect_with(text, NULL, DIAG_ERROR, bad[k].want);
  }
}

/* grad() through batchnorm: refused at the call, with a note at the layer. */
static void test_grad_batchnorm(void) {
  char src[sizeof base + 64];
  const char *layer = strstr(base, "lrelu(conv(img, 4, k=3, p=1), 0.2)");
  const char *at = strstr(base, "@@");
  snprintf(src, sizeof src, "%.*slrelu(batchnorm(conv(img, 4, k=3, p=1)), 0.2)%.*s%s%s",
           (int)(layer - base), base, (int)(at - layer - 34), layer + 34,
           "g = grad(sum(D(x)[0]), x)", at + 2);
  diag_sink d;
  ir_module *m = elab_text(src, NULL, &d);
  char buf[512];
  CHECK(m == NULL);
  CHECK_STR(first(&d, DIAG_ERROR, buf, sizeof buf),
            "16:7: grad goes back through batchnorm, whose gradient migc cannot differentiate "
            "again, so no step could train through this grad()");
  CHECK_STR(first(&d, DIAG_NOTE, buf, sizeof buf),
            "11:13: this batchnorm is between x and the first argument; a net under grad() can "
            "use layernorm, groupnorm or no normalisation");
  ir_module_free(m);
  diag_free(&d);
}

static void test_errors(void) {
  expect_error("y = fak", "16:7: unknown name 'fak'");
  expect_error("g = grad(D(x)[0], x)", "16:12: grad differentiates a scalar, got [1]; sum or "
                                        "average it first, e.g. grad(sum(D(xhat)), xhat)");
  expect_error("g = grad(sum(D(x)[0]), fake)", "16:7: grad: the first argument does not depend "
                                                "on fake, so its gradient would be zero everywhere");
  expect_error("g = grad(sum(G(z, c)), c)", "16:26: grad differentiates with respect to real "
                                             "values; c holds integers");
  expect_error("g = grad(sum(G(z, c)), 2)", "16:26: grad's second argument must be a tensor, "
                                             "got a number");
  expect_error("y = G(z)", "16:7: G takes 2 arguments, got 1");
  expect_error("y = D(z)", "16:9: D's parameter 'img' is declared [1,8,8], but this argument is [4]");
  expect_error("y = dense(z, 3)", "16:7: dense makes parameters, so it can only be called inside a net");
  expect_error("y = relu(z, 3)", "16:15: relu takes at most 1 argument (x), got 2");
  expect_error("y = lrelu(z, slop=0.1)", "16:16: lrelu has no argument 'slop'; it takes: x, slope");
  expect_error("y = frob(z)", "16:7: unknown function 'frob'");
  expect_error("y = z[0]", "16:7: only the results of a net can be indexed; to take part of a tensor use slice(x, start, end, axis=...)");
  expect_error("y = D(x)[2]", "16:12: index 2 is out of range: there are 2 results");
  expect_error("y = z + onehot(c, n=5)", "16:7: cannot broadcast [4] with [5]");
  expect_error("step e(D) : minimize D(x)[0] with adam(lr=1e-3)",
               "16:24: the objective of a step must be a scalar, but this is [8,1]; reduce it, e.g. with mean(...)");
  expect_error("step e(D) : minimize mean(fake) with adam(lr=1e-3)",
               "16:24: the objective of step e does not depend on any parameter of the nets it trains");
  /* a net the objective never reaches, here called only by later steps */
  expect_error("step e(G, D) : minimize mean(fake) with adam(lr=1e-3)",
               "16:13: the objective of step e does not depend on the parameters of net D; call D in it or leave D out of the step");
  /* a misspelt net gets a net suggested; an input named in a step gets none */
  expect_note("step e(Gx) : minimize mean(fake) with adam(lr=1e-3)",
              "16:10: 'Gx' is not a net; a step names the nets it trains", "16:10: did you mean 'G'?");
  expect_note("step e(x) : minimize mean(fake) with adam(lr=1e-3)",
              "16:10: 'x' is not a net; a step names the nets it trains", "");
  expect_error("y = embedding(z, 4)", "16:7: embedding makes parameters, so it can only be called inside a net");
  expect_error("y = avgpool(x, 3)", "16:18: avgpool: the image's height, 8, is not a multiple of k = 3");
  expect_error("y = avgpool(z)", "16:15: avgpool takes images, [C,H,W] a sample; this is [4]");
  expect_error("y = upsample(x, 0)", "16:19: k must be from 1 to 64, got 0");
  expect_error("y = maxpool(x, 3)", "16:18: maxpool: the image's height, 8, is not a multiple of k = 3");
  expect_error("y = maximum(1, 2)", "16:7: maximum takes at least one tensor");
  expect_error("y = G(z, c, name=\"g2\")", "16:7: a net call with name= makes an instance of a "
               "net with parameters of its own, which belong to the net that makes it: use it "
               "inside a net");
  expect_error("y = repeat(G, 2, z, c)", "16:7: repeat makes an instance of a net with "
               "parameters of its own, which belong to the net that makes it: use it inside a net");
  expect_error("y = G(z, c, nom=\"g2\")", "16:15: arguments of nets are positional; the one "
               "keyword is name=, an instance's name");
  expect_error("y = upsample(x, 2, mode=\"cubic\")",
               "16:27: upsample's mode is \"nearest\" or \"bilinear\"");
  expect_error("step e(H) : minimize mean(fake) with adam(lr=1e-3)",
               "16:10: 'H' is not a net; a step names the nets it trains");
  expect_error("step e(G) : minimize mean(fake) with adam(lr=-1)",
               "16:40: the learning rate must be positive, got -1");
  expect_error("step e(G) : minimize mean(fake) with rmsprop(lr=1)",
               "16:40: expected an optimizer: adam(lr, beta1, beta2, eps, weight_decay, schedule, warmup, ema, every) or sgd(lr, momentum, weight_decay, schedule, warmup, ema, every)");
  expect_error("step e(G) : minimize mean(fake) with adam(lr=1, ema=1)",
               "16:55: ema is the average's decay, from 0 (none) up to 1 (not included); got 1");
  expect_error("step e(G) : minimize mean(fake) with adam(lr=1, schedule=exponential(3))",
               "16:60: expected a schedule: constant(), linear(steps, end=0) or cosine(steps, end=0)");
  expect_error("step e(G) : minimize mean(fake) with adam(lr=1, schedule=cosine(0))",
               "16:67: steps must be a whole number of updates from 1, got 0");
  expect_error("step e(G) : minimize mean(fake) with adam(lr=1, schedule=linear(9, end=2))",
               "16:74: end is the fraction of lr left at the end, from 0 to 1; got 2");
  expect_error("step e(G) : minimize mean(fake) with sgd(lr=1, warmup=0.5)",
               "16:57: warmup must be a whole number of updates, got 0.5");
  expect_error("step e(G) : minimize mean(fake) with adam(lr=1, every=0)",
               "16:57: every is how many training steps apart the updates are, a whole number "
               "from 1; got 0");
  expect_error("step e(G) : minimize mean(fake) with sgd(lr=1, every=2.5)",
               "16:56: every is how many training steps apart the updates are, a whole number "
               "from 1; got 2.5");
  expect_error("step d(G) : minimize mean(fake) with adam(lr=1)",
               "17:8: there is already a step named 'd'");
  expect_error("report nothing", "16:10: report names a binding of the train block; 'nothing' is not bound before this line");
  expect_error("report fake", "16:10: a reported value must be a scalar, but this is [8,1,8,8]; reduce it, e.g. with mean(...)");
  expect_error("return x", "16:3: 'return' belongs in a net; the train block has steps");
  expect_error("y = reshape(z, [3])", "16:7: cannot reshape [4] to [3]");
  expect_error("y = info_categorical(c, D(x)[1] - D(x)[1] + z)", "16:27: cannot broadcast [3] with [4]");
  expect_error("y = info_gaussian(z * 2, z)", "16:21: info_gaussian's first argument must be a code declared with a uniform or normal prior");
  expect_error("y = onehot(z)", "16:7: onehot(x) needs n=K unless x is a categorical code");
  expect_error("y = mean(z, axes=[1])", "16:21: mean: axis 1 is out of range for a [4] input");
  expect_error("y = dropout(z, 1.5)", "16:18: dropout needs 0 <= p < 1, got 1.5");
  expect_error("a, b = G(z, c)", "16:3: 2 names on the left but the right gives one result");
  expect_error("y = D", "16:7: 'D' is a net; call it with its inputs, e.g. D(...)");
  expect_error("y = 1 / (k - 3)", "16:12: division by zero in a constant expression");
}

static void test_decl_errors(void) {
  expect_with("model m\nconst a = 1\nconst a = 2\n", NULL, DIAG_ERROR,
              "3:7: 'a' is already declared as a constant");
  expect_with("model m\nconst relu = 1\n", NULL, DIAG_ERROR,
              "2:7: 'relu' is the name of a built-in function; choose another name");
  expect_with("model m\ninput x : [1, 0]\n", NULL, DIAG_ERROR,
              "2:15: a dimension must be at least 1, got 0");
  expect_with("model m\ninput x : [2] span [0, 1]\n", NULL, DIAG_ERROR,
              "2:15: unknown input option 'span'; expected range, pad or labels");
  expect_with("model m\nlatent z : gamma(1) [2]\n", NULL, DIAG_ERROR,
              "2:12: unknown distribution 'gamma'; expected uniform, normal, categorical or bernoulli");
  expect_with("model m\ncode c : categorical(10) [3]\n", NULL, DIAG_ERROR,
              "2:26: a categorical code is one value per sample and takes no shape; use onehot(c) for a vector");
  expect_with("model m\nlatent z : uniform(1, -1) [2]\n", NULL, DIAG_ERROR,
              "2:12: uniform(low, high) needs low < high");
  expect_with("model m\nlatent z : normal(0, 1)\n", NULL, DIAG_ERROR,
              "2:8: latent 'z' needs a shape, e.g. normal(...) [62]");
  expect_with("model m\ninput x : [2]\n", NULL, DIAG_ERROR,
              "1:1: the model has no train block; add 'train batch 64 { ... }' with at least one step");
  expect_with("model m\ninput x : [2]\ntrain {\n  y = x\n}\n", NULL, DIAG_ERROR,
              "3:1: the train block has no step; add one, e.g. step g(G) : minimize loss with adam(lr=1e-3)");
  expect_with("model m\nnet N(a) {\n  b = a\n}\n", NULL, DIAG_ERROR,
              "1:1: the model has no train block; add 'train batch 64 { ... }' with at least one step");
  /* Net bodies, recursion, inputs used without being passed. */
  const char *rec =
      "model m\ninput x : [2]\nnet N(a) {\n  return N(a)\n}\n"
      "train batch 4 {\n  step s(N) : minimize mean(N(x)) with adam(lr=1)\n}\n";
  expect_with(rec, NULL, DIAG_ERROR, "4:10: net N calls itself; nets cannot be recursive");
  const char *noret =
      "model m\ninput x : [2]\nnet N(a) {\n  b = a\n}\n"
      "train batch 4 {\n  step s(N) : minimize mean(N(x)) with adam(lr=1)\n}\n";
  expect_with(noret, NULL, DIAG_ERROR,
              "3:5: net N does not return anything; end it with 'return ...'");
  const char *global =
      "model m\ninput x : [2]\nnet N(a) {\n  return dense(x, 1)\n}\n"
      "train batch 4 {\n  step s(N) : minimize mean(N(x)) with adam(lr=1)\n}\n";
  expect_with(global, NULL, DIAG_ERROR,
              "4:16: net N uses the input 'x' without taking it as a parameter");
  const char *mono =
      "model m\ninput x : [2]\nlatent z : normal(0, 1) [3]\nnet N(a) {\n  return dense(a, 1)\n}\n"
      "train batch 4 {\n  step s(N) : minimize mean(N(x)) + mean(N(z)) with adam(lr=1)\n}\n";
  expect_with(mono, NULL, DIAG_ERROR,
              "8:44: N is called here with [3] for 'a', but its parameters were made for [2]");
  const char *conv_flat =
      "model m\ninput x : [16]\nnet N(a) {\n  return mean(conv(a, 2, k=3))\n}\n"
      "train batch 4 {\n  step s(N) : minimize N(x) with adam(lr=1)\n}\n";
  expect_with(conv_flat, NULL, DIAG_ERROR,
              "4:20: conv expects a [C,H,W] input, got [16]; reshape it first, e.g. reshape(h, [C, H, W])");
  const char *dense_img =
      "model m\ninput x : [1, 4, 4]\nnet N(a) {\n  return mean(dense(a, 2))\n}\n"
      "train batch 4 {\n  step s(N) : minimize N(x) with adam(lr=1)\n}\n";
  expect_with(dense_img, NULL, DIAG_ERROR,
              "4:21: dense expects a flat [features] input, got [1,4,4]; flatten it first with flatten(...)");
  const char *bn1 =
      "model m\ninput x : [2]\nnet N(a) {\n  return mean(batchnorm(a))\n}\n"
      "train batch 1 {\n  step s(N) : minimize N(x) with adam(lr=1)\n}\n";
  expect_with(bn1, NULL, DIAG_ERROR,
              "4:15: batchnorm while training needs more than one value per channel; with batch 1 it has 1");
  const char *big =
      "model m\ninput x : [4, 4]\nnet N(a) {\n  return mean(conv(reshape(a, [1, 4, 4]), 2, k=5))\n}\n"
      "train batch 4 {\n  step s(N) : minimize N(x) with adam(lr=1)\n}\n";
  expect_with(big, NULL, DIAG_ERROR,
              "4:15: conv kernel 5 does not fit a 4x4 input with padding 0");
  /* -D and --batch. */
  const char *ok =
      "model m\ninput x : [2]\nconst w = 4\nconst lr = 0.1\nnet N(a) {\n  return mean(dense(a, w))\n}\n"
      "train batch 4 {\n  step s(N) : minimize N(x) with adam(lr=lr)\n}\n";
  const_overrides ov = {0};
  char err[256];
  CHECK(overrides_add(&ov, "w=2.5", err, sizeof err));
  elab_options eo = {.overrides = &ov};
  expect_with(ok, &eo, DIAG_ERROR,
              "3:7: -D w=2.5: 'w' is a whole number in the model, so the value must be too");
  overrides_free(&ov);
  CHECK(overrides_add(&ov, "wx=1", err, sizeof err));
  expect_with(ok, &eo, DIAG_ERROR,
              "0:0: -D wx: the model has no constant named 'wx'; its constants are: w, lr");
  overrides_free(&ov);
  CHECK(!overrides_add(&ov, "w", err, sizeof err));
  CHECK_STR(err, "-D expects name=value, e.g. -D lambda=0.5; got 'w'");
  CHECK(!overrides_add(&ov, "w=1x", err, sizeof err));
  CHECK_STR(err, "-D w=1x: '1x' is not a decimal number such as 0.5 or 2e-4");
  CHECK(!overrides_add(&ov, "9w=1", err, sizeof err));
  CHECK(!overrides_add(&ov, "w=inf", err, sizeof err));
  CHECK(overrides_add(&ov, "lr=0.5", err, sizeof err));
  CHECK(!overrides_add(&ov, "lr=0.25", err, sizeof err));
  CHECK_STR(err, "-D lr is given twice");
  diag_sink d;
  ir_module *m = elab_text(ok, &eo, &d);
  CHECK(m && ir_find_func(m, "train_step")->steps[0].opt.lr == 0.5);
  ir_module_free(m);
  diag_free(&d);
  overrides_free(&ov);
  elab_options b16 = {.batch = 16};
  m = elab_text(ok, &b16, &d);
  CHECK(m && m->batch == 16 && m->inputs[0].shape.dim[0] == 16);
  ir_module_free(m);
  diag_free(&d);
  /* Statements after return; the kind of input named; one error per place even when
   * a net's body runs for several calls. */
  const char *after =
      "model m\ninput x : [2]\nnet N(a) {\n  return mean(dense(a, 1))\n  b = frob(a)\n}\n"
      "train batch 4 {\n  step s(N) : minimize N(x) with adam(lr=1)\n}\n";
  expect_with(after, NULL, DIAG_ERROR, "5:3: this comes after 'return' in net N and would never run");
  const char *code_in_net =
      "model m\ninput x : [2]\ncode c : categorical(3)\nnet N(a) {\n  return mean(dense(a, 1)) + mean(onehot(c))\n}\n"
      "train batch 4 {\n  step s(N) : minimize N(x) with adam(lr=1)\n}\n";
  expect_with(code_in_net, NULL, DIAG_ERROR,
              "5:42: net N uses the code 'c' without taking it as a parameter");
  const char *thrice =
      "model m\ninput x : [1, 4, 4]\nnet N(a) {\n  return mean(dense(a, 2))\n}\n"
      "train batch 4 {\n  step s(N) : minimize N(x) + N(x) + N(x) with adam(lr=1)\n}\n";
  diag_sink d3;
  ir_module *m3 = elab_text(thrice, NULL, &d3);
  CHECK_MSG(m3 == NULL && d3.nerrors == 1, "%d errors for one mistake in a net called 3 times",
            d3.nerrors);
  ir_module_free(m3);
  diag_free(&d3);
  /* A net nobody trains; dropout's seed beside a declared input named seed. */
  const char *frozen =
      "model m\ninput x : [2]\nnet F(a) {\n  return dense(a, 3)\n}\nnet N(a) {\n  return mean(dense(a, 1))\n}\n"
      "train batch 4 {\n  step s(N) : minimize N(F(x)) with adam(lr=1)\n}\n";
  expect_with(frozen, NULL, DIAG_WARNING,
              "3:5: net F has parameters but no step trains it; name it in a step, e.g. step s(F, ...)");
  const char *seeded =
      "model m\ninput seed : [2]\nnet N(a) {\n  return mean(dense(dropout(a, 0.5), 1))\n}\n"
      "train batch 4 {\n  step s(N) : minimize N(seed) with adam(lr=1)\n}\n";
  diag_sink ds;
  ir_module *ms = elab_text(seeded, NULL, &ds);
  CHECK_MSG(ms != NULL, "an input named seed beside dropout");
  if (ms) CHECK(ir_find_input(ms, "run_seed") >= 0 && ms->inputs[ir_find_input(ms, "run_seed")].kind == INPUT_SEED);
  ir_module_free(ms);
  diag_free(&ds);
  const_overrides hex = {0};
  char herr[256];
  CHECK(!overrides_add(&hex, "w=0x10", herr, sizeof herr));
  CHECK_STR(herr, "-D w=0x10: '0x10' is not a decimal number such as 0.5 or 2e-4");
  overrides_free(&hex);
  /* Warnings. */
  const char *unused =
      "model m\ninput x : [2]\nnet N(a) {\n  return mean(dense(a, 1))\n}\nnet M(a) {\n  return a\n}\n"
      "train batch 4 {\n  u = N(x)\n  step s(N) : minimize N(x) with adam(lr=1)\n}\n";
  expect_with(unused, NULL, DIAG_WARNING, "10:3: 'u' is bound but never used");
  m = elab_text(unused, NULL, &d);
  CHECK(m != NULL && d.nerrors == 0 && d.n == 2);
  if (m) CHECK_STR(d.entries[1].msg, "net M is never called");
  ir_module_free(m);
  diag_free(&d);
}

int main(void) {
  test_infogan_mnist();
  test_tiny_forward();
  test_resample();
  test_embedding();
  test_schedules();
  test_ema();
  test_base_is_fine();
  test_errors();
  test_grad_batchnorm();
  test_instances();
  test_decl_errors();
  return check_done();
}
