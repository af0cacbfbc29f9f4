/* test_codegen_fuse.c: fusion and memory planning change no value.
 * - Random graphs (a small generator below: chains of elementwise ops, reductions
 *   broadcast back, GEMMs and convolutions followed by a bias and an activation (fused
 *   into their epilogues), reshapes, stores and reloads of state variables) run for
 *   several calls from the same state three ways: the reference interpreter, native
 *   code unfused with one scratch region per value (--no-fuse --no-memplan), and native
 *   code fused and planned. Fused+planned must equal unfused bit for bit (the same
 *   float operations in the same order, only in registers and other addresses), and
 *   both the interpreter to rel 1e-5 (GEMMs summed in double, cg_options.reference_gemm).
 * - Every model in models/: train_step (three steps), generate and encode, fused and
 *   planned against unfused and naive, outputs and whole state bit for bit, with
 *   OpenBLAS (test_codegen_models compares the default, fused, build against the
 *   interpreter). Fusion must cut the kernel count and planning the arena.
 * - The plan verifier: every compile runs it (cg_plan); here it must also reject a
 *   plan with two live buffers made to overlap or a load read in the state across a
 *   store of its variable, and the arena stays <= the naive total. */
#include "check.h"
#include "codegen/codegen.h"
#include "frontend/frontend.h"
#include "passes/passes.h"
#include "runtime/runtime.h"
#include "codegen_same.h"

#ifndef MIGC_FUSE_GRAPHS
#define MIGC_FUSE_GRAPHS 24 /* random graphs checked (-D for a longer soak) */
#endif

#include <stdlib.h>
#include <string.h>

#define R 8
#define C 12

static uint64_t rng_state;
static uint32_t rnd(uint32_t n) {
  rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
  return (uint32_t)(rng_state >> 33) % n;
}

typedef struct {
  ir_module *m;
  ir_func *f;
  int pool[512]; /* nodes of shape [R,C] */
  int npool;
} gen;

static int emit(gen *g, ir_op op, int a, int b, const ir_attrs *at) {
  int in[2] = {a, b};
  return ir_emit_checked(g->f, 0, op, in, a < 0 ? 0 : b < 0 ? 1 : 2, at);
}

static int pick(gen *g) {
  /* mostly recent values, so chains form; sometimes old ones, so values live long */
  return g->pool[rnd(4) ? g->npool - 1 - (int)rnd(g->npool < 4 ? (uint32_t)g->npool : 4)
                        : (int)rnd((uint32_t)g->npool)];
}

static int konst(gen *g, double v) {
  ir_attrs a = {.f = {v}};
  return emit(g, IR_OP_CONST, -1, -1, &a);
}

static int load(gen *g, int var) {
  ir_attrs a = {.ashape = g->m->vars[var].shape, .dtype = IR_F32, .var = var};
  return emit(g, IR_OP_LOAD, -1, -1, &a);
}

/* variables of a random graph: GEMM weight, state, bias, conv filter, conv bias */
typedef struct {
  int w, s, b, k, kb;
} gen_vars;

/* an activation (or none) after a GEMM and its bias: the GEMM's epilogue */
static int activation(gen *g, int v) {
  static const ir_op u[] = {IR_OP_RELU, IR_OP_LRELU, IR_OP_TANH, IR_OP_SIGMOID};
  ir_attrs a = {.f = {0.2}};
  int r = (int)rnd(5);
  return r < 4 ? emit(g, u[r], v, -1, &a) : v;
}

/* one random step of the generator: appends a value of shape [R,C] to the pool */
static void grow(gen *g, const gen_vars *gv) {
  int wvar = gv->w, svar = gv->s;
  int x = pick(g), y = pick(g), v;
  switch (rnd(12)) {
  case 0: case 1: { /* unary, kept bounded */
    static const ir_op u[] = {IR_OP_NEG, IR_OP_RELU, IR_OP_LRELU, IR_OP_TANH,
                              IR_OP_SIGMOID, IR_OP_SOFTPLUS};
    ir_attrs a = {.f = {0.2}};
    v = emit(g, u[rnd(6)], x, -1, &a);
    if (rnd(2)) v = emit(g, IR_OP_EXP, emit(g, IR_OP_TANH, v, -1, NULL), -1, NULL);
    if (!rnd(3)) v = emit(g, IR_OP_LOG, emit(g, IR_OP_SIGMOID, v, -1, NULL), -1, NULL);
    if (!rnd(4)) v = emit(g, IR_OP_SQRT, emit(g, IR_OP_SIGMOID, v, -1, NULL), -1, NULL);
    break;
  }
  case 2: case 3: { /* binary, sometimes with a scalar */
    static const ir_op b[] = {IR_OP_ADD, IR_OP_SUB, IR_OP_MUL};
    int other = rnd(3) ? y : konst(g, 0.5 + rnd(4) * 0.25);
    v = rnd(2) ? emit(g, b[rnd(3)], x, other, NULL) : emit(g, b[rnd(3)], other, x, NULL);
    break;
  }
  case 4: /* division by something in [1, 2] */
    v = emit(g, IR_OP_DIV, x, emit(g, IR_OP_ADD, emit(g, IR_OP_SIGMOID, y, -1, NULL),
                                   konst(g, 1.0), NULL), NULL);
    break;
  case 5: { /* a reduction broadcast back (not elementwise: a fusion boundary) */
    ir_attrs a = {.i = {rnd(2) ? 1 : 2, 1}};
    static const ir_op r[] = {IR_OP_SUM, IR_OP_MEAN, IR_OP_VAR};
    int s = emit(g, r[rnd(3)], x, -1, &a);
    v = emit(g, rnd(2) ? IR_OP_SUB : IR_OP_MUL, x, s, NULL);
    v = emit(g, IR_OP_TANH, v, -1, NULL);
    break;
  }
  case 6: { /* a GEMM with the weight variable */
    ir_attrs a = {.i = {0, rnd(2)}};
    v = emit(g, IR_OP_TANH, emit(g, IR_OP_MATMUL, x, load(g, wvar), &a), -1, NULL);
    break;
  }
  case 10: { /* a GEMM, a bias broadcast over its rows, an activation (an epilogue) */
    ir_attrs a = {.i = {0, rnd(2)}};
    v = emit(g, IR_OP_MATMUL, x, load(g, wvar), &a);
    v = activation(g, emit(g, IR_OP_ADD, v, load(g, gv->b), NULL));
    if (rnd(2)) v = emit(g, IR_OP_MUL, v, y, NULL);
    break;
  }
  case 11: { /* conv, deconv or conv_grad_x of the value seen as 2 images [1,4,12] (3x3
              * filter, stride 1, padding 1 keep the shape), a bias, an activation */
    int64_t d4[4] = {R / 4, 1, 4, C}, d2[2] = {R, C};
    ir_attrs a4 = {.ashape = shape_make(4, d4, false)}, a2 = {.ashape = shape_make(2, d2, false)};
    static const ir_op convs[] = {IR_OP_CONV, IR_OP_DECONV, IR_OP_CONV_GRAD_X};
    ir_attrs ca = {.i = {3, 1, 1}, .ashape = a4.ashape};
    int img = emit(g, IR_OP_RESHAPE, x, -1, &a4);
    v = emit(g, convs[rnd(3)], img, load(g, gv->k), &ca);
    v = activation(g, emit(g, IR_OP_ADD, v, load(g, gv->kb), NULL));
    v = emit(g, IR_OP_RESHAPE, v, -1, &a2);
    break;
  }
  case 7: { /* reshape round trip around an op */
    int64_t flat = R * C, d[2] = {R, C};
    ir_attrs a1 = {.ashape = shape_make(1, &flat, false)}, a2 = {.ashape = shape_make(2, d, false)};
    v = emit(g, IR_OP_RESHAPE, emit(g, IR_OP_RELU, emit(g, IR_OP_RESHAPE, x, -1, &a1), -1, NULL),
             -1, &a2);
    break;
  }
  case 8: { /* store a new value to the state variable, then read it again */
    int nv = emit(g, IR_OP_ADD, emit(g, IR_OP_MUL, load(g, svar), konst(g, 0.5), NULL),
                  emit(g, IR_OP_MUL, x, konst(g, 0.5), NULL), NULL);
    ir_attrs a = {.var = svar};
    emit(g, IR_OP_STORE, nv, -1, &a);
    v = load(g, svar);
    break;
  }
  default: /* an older value, read after a store: must still be the old one */
    v = emit(g, IR_OP_ADD, x, load(g, svar), NULL);
    break;
  }
  if (g->npool < 512) g->pool[g->npool++] = v;
}

static ir_module *random_module(uint64_t seed, int size) {
  rng_state = seed;
  gen g = {0};
  g.m = ir_module_new("random");
  int64_t d[2] = {R, C}, dw[2] = {C, C};
  ir_span none = {0};
  int64_t db[1] = {C}, dk[4] = {1, 1, 3, 3}, dkb[1] = {1};
  gen_vars gv;
  gv.w = ir_add_var(g.m, "w", VAR_PARAM, IR_F32, shape_make(2, dw, false), -1, none);
  gv.s = ir_add_var(g.m, "s", VAR_PARAM, IR_F32, shape_make(2, d, false), -1, none);
  gv.b = ir_add_var(g.m, "b", VAR_PARAM, IR_F32, shape_make(1, db, false), -1, none);
  gv.k = ir_add_var(g.m, "k", VAR_PARAM, IR_F32, shape_make(4, dk, false), -1, none);
  gv.kb = ir_add_var(g.m, "kb", VAR_PARAM, IR_F32, shape_make(1, dkb, false), -1, none);
  int wvar = gv.w, svar = gv.s;
  g.m->vars[wvar].init = (ir_init){INIT_UNIFORM, -0.4, 0.4, 0};
  g.m->vars[svar].init = (ir_init){INIT_UNIFORM, -1, 1, 0};
  g.m->vars[gv.b].init = (ir_init){INIT_UNIFORM, -0.5, 0.5, 0};
  g.m->vars[gv.k].init = (ir_init){INIT_UNIFORM, -0.4, 0.4, 0};
  g.m->vars[gv.kb].init = (ir_init){INIT_UNIFORM, -0.5, 0.5, 0};
  ir_layout(g.m);
  g.f = ir_add_func(g.m, "f", false);
  ir_input in = {.name = "x", .kind = INPUT_DATA, .dtype = IR_F32, .shape = shape_make(2, d, false)};
  int xi = ir_add_input(g.m, &in);
  g.f->inputs = malloc(sizeof(int));
  g.f->inputs[0] = xi;
  g.f->ninputs = 1;
  ir_attrs ia = {.ashape = in.shape, .dtype = IR_F32};
  g.pool[g.npool++] = emit(&g, IR_OP_INPUT, -1, -1, &ia);
  g.pool[g.npool++] = load(&g, svar);
  for (int k = 0; k < size; k++) grow(&g, &gv);
  ir_add_output(g.f, "last", g.pool[g.npool - 1]);
  ir_add_output(g.f, "mid", g.pool[g.npool / 2]);
  ir_attrs all = {.i = {3, 0}};
  ir_add_output(g.f, "total", emit(&g, IR_OP_SUM, g.pool[g.npool - 2], -1, &all));
  diag_sink dv;
  diag_init(&dv);
  bool ok = ir_verify(g.m, &dv);
  if (!ok) diag_print(&dv, stderr, false);
  CHECK_MSG(ok, "random graph %llu does not verify", (unsigned long long)seed);
  diag_free(&dv);
  return g.m;
}

/* GEMM-headed kernels (epilogues) seen in the random graphs' fused plans, by head op */
static int heads_seen[IR_OP_COUNT];

static void plan_summary(const char *what, const ir_func *f, const cg_options *o,
                         int *kernels, int64_t *arena, int64_t *naive) {
  kernel_plan kp;
  memplan mp;
  char err[512];
  int rc = cg_plan(f, o, &kp, &mp, err, sizeof err);
  CHECK_MSG(rc == 0, "%s: %s", what, err);
  if (rc) return;
  CHECK_MSG(mp.arena <= mp.naive, "%s: arena %lld > naive %lld", what, (long long)mp.arena,
            (long long)mp.naive);
  *kernels = kp.nkernels, *arena = mp.arena, *naive = mp.naive;
  for (int k = 0; k < kp.nkernels; k++) {
    int h = kernel_head(f, &kp, k);
    if (h >= 0) heads_seen[f->nodes[h].op]++;
  }
  printf("  %s %s: peak live %lld, arena %lld\n", what, f->name, (long long)mp.peak, (long long)mp.arena);
  kernel_plan_free(&kp);
  memplan_free(&mp);
}

static void test_random(uint64_t seed, int size, int calls) {
  ir_module *m = random_module(seed, size);
  ir_func *f = m->funcs[0];
  char err[512];
  cg_options fused = {.reference_gemm = true};
  cg_options plain = {.reference_gemm = true, .no_fuse = true, .no_memplan = true};
  cg_program *pf = cg_compile(m, &fused, err, sizeof err);
  CHECK_MSG(pf != NULL, "seed %llu: %s", (unsigned long long)seed, err);
  cg_program *pu = cg_compile(m, &plain, err, sizeof err);
  CHECK_MSG(pu != NULL, "seed %llu: %s", (unsigned long long)seed, err);
  if (!pf || !pu) {
    cg_free(pf), cg_free(pu), ir_module_free(m);
    return;
  }
  size_t bytes = (size_t)m->state_size * 4;
  float *s_i = malloc(bytes), *s_f = malloc(bytes), *s_u = malloc(bytes);
  ir_init_state(m, s_i, seed);
  memcpy(s_f, s_i, bytes);
  memcpy(s_u, s_i, bytes);
  bool same = true, close = true;
  for (int call = 0; call < calls; call++) {
    ir_tensor x = ir_tensor_alloc(IR_F32, m->inputs[0].shape), outs[3];
    for (int i = 0; i < R * C; i++)
      ((float *)x.data)[i] = 2 * rng_uniform(seed, 1, (uint64_t)call, (uint64_t)i) - 1;
    ir_interp it = {.m = m, .state = s_i};
    int st = ir_interp_run(&it, f, &x, outs);
    CHECK_MSG(st == 0, "seed %llu: interpreter: %s", (unsigned long long)seed, it.err);
    float *of[3], *ou[3];
    for (int k = 0; k < 3; k++) {
      int64_t n = shape_numel(f->nodes[f->outputs[k].node].shape);
      of[k] = calloc((size_t)n, 4), ou[k] = calloc((size_t)n, 4);
    }
    void *inptr[1] = {x.data};
    CHECK(same_run(pf, f, s_f, inptr, of) == 0);
    CHECK(same_run(pu, f, s_u, inptr, ou) == 0);
    for (int k = 0; k < 3 && st == 0; k++) {
      int64_t n = shape_numel(f->nodes[f->outputs[k].node].shape);
      const float *ref = outs[k].data;
      if (memcmp(of[k], ou[k], (size_t)n * 4)) same = false;
      for (int64_t i = 0; i < n; i++)
        if (!(fabs(of[k][i] - ref[i]) <= 1e-6 + 1e-5 * fabs(ref[i]))) {
          if (close)
            fprintf(stderr, "seed %llu call %d: %s[%lld] = %.9g, interpreter %.9g\n",
                    (unsigned long long)seed, call, f->outputs[k].name, (long long)i,
                    (double)of[k][i], (double)ref[i]);
          close = false;
        }
      ir_tensor_free(&outs[k]);
    }
    if (memcmp(s_f, s_u, bytes)) same = false;
    for (int64_t i = 0; i < m->state_size; i++)
      if (!(fabs(s_f[i] - s_i[i]) <= 1e-6 + 1e-5 * fabs(s_i[i]))) close = false;
    for (int k = 0; k < 3; k++) free(of[k]), free(ou[k]);
    ir_tensor_free(&x);
  }
  CHECK_MSG(same, "seed %llu: fused and planned differs from unfused", (unsigned long long)seed);
  CHECK_MSG(close, "seed %llu: native differs from the interpreter", (unsigned long long)seed);
  int kf = 0, ku = 0;
  int64_t af = 0, nf = 0, au = 0, nu = 0;
  plan_summary("random fused", f, &fused, &kf, &af, &nf);
  plan_summary("random plain", f, &plain, &ku, &au, &nu);
  CHECK_MSG(kf < ku, "seed %llu: %d kernels fused, %d not", (unsigned long long)seed, kf, ku);
  printf("random %llu: %d nodes, kernels %d -> %d, arena %lld of %lld bytes\n",
         (unsigned long long)seed, f->nnodes, ku, kf, (long long)af, (long long)nf);
  free(s_i), free(s_f), free(s_u);
  cg_free(pf), cg_free(pu);
  ir_module_free(m);
}

static void test_model(const char *name) {
  ir_module *m = same_load_model(name, 8);
  if (!m) return;
  char err[512];
  cg_options fused = {0}, plain = {.no_fuse = true, .no_memplan = true};
  cg_program *pf = cg_compile(m, &fused, err, sizeof err);
  CHECK_MSG(pf != NULL, "%s: %s", name, err);
  cg_program *pu = pf ? cg_compile(m, &plain, err, sizeof err) : NULL;
  CHECK_MSG(!pf || pu, "%s: %s", name, err);
  size_t bytes = (size_t)m->state_size * 4;
  float *s_f = malloc(bytes), *s_u = malloc(bytes);
  ir_init_state(m, s_f, 3);
  memcpy(s_u, s_f, bytes);
  for (int k = 0; pu && k < m->nfuncs; k++) {
    const ir_func *f = m->funcs[k];
    same_bits(m, f, pf, pu, s_f, s_u, !strcmp(f->name, "train_step") ? 3 : 1, 11, name);
    int kf = 0, ku = 0;
    int64_t af = 0, nf = 0, au = 0, nu = 0;
    cg_options unfused_planned = {.no_fuse = true};
    plan_summary(name, f, &fused, &kf, &af, &nf);
    plan_summary(name, f, &unfused_planned, &ku, &au, &nu);
    CHECK_MSG(!strcmp(f->name, "train_step") ? kf < ku : kf <= ku,
              "%s.%s: %d kernels fused, %d not", name, f->name, kf, ku);
    CHECK_MSG(af < nf, "%s.%s: arena %lld, naive %lld", name, f->name, (long long)af, (long long)nf);
    printf("%s.%s: %d nodes, kernels %d -> %d; arena %lld bytes fused (%lld unfused), "
           "naive %lld\n", name, f->name, f->nnodes, ku, kf, (long long)af, (long long)au,
           (long long)nf);
  }
  free(s_f), free(s_u);
  cg_free(pf), cg_free(pu);
  ir_module_free(m);
}

/* The verifier must catch what it is there for. */
static void test_verifier(void) {
  ir_module *m = random_module(5, 30);
  const ir_func *f = m->funcs[0];
  kernel_plan kp;
  memplan mp;
  char err[512];
  CHECK(cg_plan(f, NULL, &kp, &mp, err, sizeof err) == 0);
  CHECK(memplan_verify(f, &kp, &mp, err, sizeof err));
  /* move some live buffer onto another one that is live at the same kernel */
  bool broke = false;
  for (int a = 0; a < f->nnodes && !broke; a++)
    for (int b = a + 1; b < f->nnodes && !broke; b++) {
      if (mp.home[a] != a || mp.home[b] != b || mp.inplace_of[b] == a) continue;
      if (kp.kernel_of[b] <= kp.kernel_of[a]) continue; /* b written after a ... */
      for (int u = b; u < f->nnodes; u++)
        for (int j = 0; j < f->nodes[u].nin; j++)
          if (f->nodes[u].in[j] == a && kp.kernel_of[u] > kp.kernel_of[b] && !broke) { /* ... and a read after b is written */
            int64_t save = mp.off[b];
            mp.off[b] = mp.off[a];
            broke = true;
            CHECK_MSG(!memplan_verify(f, &kp, &mp, err, sizeof err),
                      "a buffer moved onto a live one verifies");
            printf("verifier: %s\n", err);
            mp.off[b] = save;
          }
    }
  CHECK_MSG(broke, "found no pair of buffers to break");
  mp.arena = mp.naive + 64;
  CHECK(!memplan_verify(f, &kp, &mp, err, sizeof err));
  kernel_plan_free(&kp);
  memplan_free(&mp);
  ir_module_free(m);
}

/* A load that copies because a store of its variable comes before its last reader must
 * not be let read the state in place: the verifier rejects the plan that claims it. And
 * the planner reads some loads in place (the weights of the GEMMs, never stored). */
static void test_verifier_state_reads(void) {
  bool found = false;
  for (uint64_t seed = 1; seed < 200 && !found; seed++) {
    ir_module *m = random_module(seed, 40);
    const ir_func *f = m->funcs[0];
    kernel_plan kp;
    memplan mp;
    char err[512];
    CHECK(cg_plan(f, NULL, &kp, &mp, err, sizeof err) == 0);
    for (int id = 0; id < f->nnodes && !found; id++) {
      const ir_node *n = &f->nodes[id];
      int k = kp.kernel_of[id];
      if (n->op != IR_OP_LOAD || mp.in_state[id] || mp.home[id] != id ||
          kp.first[k + 1] - kp.first[k] != 1)
        continue;
      bool output = false;
      for (int o = 0; o < f->noutputs; o++) output |= f->outputs[o].node == id;
      if (output) continue;
      mp.in_state[id] = true, mp.home[id] = -1;
      for (int u = id + 1; u < f->nnodes; u++) /* views follow */
        if (f->nodes[u].op == IR_OP_RESHAPE || f->nodes[u].op == IR_OP_STORE)
          if (mp.home[f->nodes[u].in[0]] == -1 && f->nodes[f->nodes[u].in[0]].op != IR_OP_INPUT)
            mp.home[u] = -1;
      found = true;
      CHECK_MSG(!memplan_verify(f, &kp, &mp, err, sizeof err),
                "a copied load claimed read in place verifies (seed %llu, node %d)",
                (unsigned long long)seed, id);
      printf("verifier: %s\n", err);
    }
    kernel_plan_free(&kp);
    memplan_free(&mp);
    ir_module_free(m);
  }
  CHECK_MSG(found, "found no copied load to break");
  ir_module *m = random_module(7, 40);
  kernel_plan kp;
  memplan mp;
  char err[512];
  CHECK(cg_plan(m->funcs[0], NULL, &kp, &mp, err, sizeof err) == 0);
  int in_state = 0;
  for (int id = 0; id < m->funcs[0]->nnodes; id++) in_state += mp.in_state[id];
  CHECK_MSG(in_state > 0, "no load reads the state in place");
  kernel_plan_free(&kp);
  memplan_free(&mp);
  ir_module_free(m);
}

int main(void) {
  test_verifier();
  test_verifier_state_reads();
#ifdef __SANITIZE_ADDRESS__
  const int graphs = 6;
#else
  const int graphs = MIGC_FUSE_GRAPHS;
#endif
  for (int k = 0; k < graphs; k++) test_random(1000 + (uint64_t)k, 20 + 6 * k, 3);
  /* the random graphs exercised every GEMM epilogue (the fused plans of test_random) */
  const ir_op heads[] = {IR_OP_MATMUL, IR_OP_CONV, IR_OP_DECONV, IR_OP_CONV_GRAD_X};
  for (size_t k = 0; k < sizeof heads / sizeof heads[0]; k++) {
    printf("epilogues headed by %s: %d\n", ir_ops[heads[k]].name, heads_seen[heads[k]]);
    CHECK_MSG(heads_seen[heads[k]] > 0, "no random graph fused an epilogue into %s",
              ir_ops[heads[k]].name);
  }
  /* under the sanitizers the models' compiled code is not instrumented and the
   * interpreter is not involved, but two compiles per model still cost: one model */
#ifdef __SANITIZE_ADDRESS__
  const char *models[] = {"infogan_mlp"};
#else
  const char *models[] = {"infogan_mlp", "infogan_mnist", "dcgan_fashion", "seed_infogan",
                          "resize_fashion", "wgan_gp_fashion", "resnet_fashion"};
#endif
  for (size_t k = 0; k < sizeof models / sizeof models[0]; k++) test_model(models[k]);
  return check_done();
}
