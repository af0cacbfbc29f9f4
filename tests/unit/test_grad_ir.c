/* test_grad_ir.c: gradient rules the model language cannot reach on its own, checked
 * on IR built by hand against central differences in double precision: matmul with
 * every combination of transpose flags (autodiff itself emits them), var (batchnorm's
 * running variance), concat of more operands than a node holds inline, neg, sqrt,
 * sum and mean keeping dims. Loss = sum(out * w) with fixed weights w. */
#include "check.h"
#include "passes/passes.h"
#include "runtime/runtime.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
  ir_module *m;
  ir_func *f;
  int params[8];
  int nparams;
} rig;

static void rig_init(rig *r) {
  memset(r, 0, sizeof *r);
  r->m = ir_module_new("t");
  ir_add_net(r->m, "T");
  r->f = ir_add_func(r->m, "train_step", true);
}

static int param(rig *r, int rank, int64_t d0, int64_t d1, int64_t d2) {
  int64_t d[3] = {d0, d1, d2};
  char name[16];
  snprintf(name, sizeof name, "p%d", r->nparams);
  int v = ir_add_var(r->m, name, VAR_PARAM, IR_F32, shape_make(rank, d, false), 0, (ir_span){0});
  r->m->vars[v].init = (ir_init){INIT_NORMAL, 0.5, 1.0, 0};
  r->params[r->nparams++] = v;
  ir_attrs a = {.ashape = r->m->vars[v].shape, .dtype = IR_F32, .var = v};
  return ir_emit_checked(r->f, 0, IR_OP_LOAD, NULL, 0, &a);
}

static int emit(rig *r, ir_op op, int nin, const int *in, const ir_attrs *a) {
  return ir_emit_checked(r->f, 0, op, in, nin, a);
}

/* Differentiates sum(y * w) and compares each parameter's gradient with central
 * differences, element by element. */
static void check(rig *r, int y, const char *what) {
  /* Weights: a constant (untrained) variable with fixed values. */
  ir_shape ys = r->f->nodes[y].shape;
  int wv = ir_add_var(r->m, "w", VAR_PARAM, IR_F32, ys, -1, (ir_span){0});
  r->m->vars[wv].init = (ir_init){INIT_UNIFORM, -1.0, 1.0, 0};
  ir_attrs la = {.ashape = ys, .dtype = IR_F32, .var = wv};
  int w = emit(r, IR_OP_LOAD, 0, NULL, &la);
  int in[2] = {y, w};
  int prod = emit(r, IR_OP_MUL, 2, in, NULL);
  ir_attrs all = {.i = {(1 << ys.rank) - 1, 0}};
  int loss = ys.rank ? emit(r, IR_OP_SUM, 1, &prod, &all) : prod;
  ir_func *f = r->f;
  f->steps = calloc(1, sizeof *f->steps);
  f->steps[0] = (ir_step){strdup("s"), 0, loss, malloc(sizeof(int)), 1, {0}, false, {0}};
  f->steps[0].nets[0] = 0;
  f->nsteps = 1;
  ir_add_output(f, "loss", loss);
  int grads[16];
  char err[256];
  CHECK_MSG(pass_autodiff(r->m, f, 0, grads, err, sizeof err) == 0, "%s: %s", what, err);
  for (int k = 0; k < r->nparams; k++) ir_add_output(f, r->m->vars[r->params[k]].name, grads[r->params[k]]);
  ir_layout(r->m);
  diag_sink d;
  diag_init(&d);
  CHECK_MSG(ir_verify(r->m, &d), "%s: %s", what, d.n ? d.entries[0].msg : "");
  diag_free(&d);

  float *s32 = calloc((size_t)r->m->state_size, sizeof *s32);
  double *s64 = calloc((size_t)r->m->state_size, sizeof *s64);
  ir_init_state(r->m, s32, 9);
  for (int64_t i = 0; i < r->m->state_size; i++) s64[i] = s32[i];
  ir_interp it = {.m = r->m, .f64 = true, .state64 = s64};
  ir_tensor outs[16];
  if (ir_interp_run(&it, f, NULL, outs)) {
    CHECK_MSG(false, "%s: %s", what, it.err);
    return;
  }
  for (int k = 0; k < r->nparams; k++) {
    const ir_var *v = &r->m->vars[r->params[k]];
    const double *g = outs[1 + k].data;
    for (int64_t i = 0; i < shape_numel(v->shape); i++) {
      double *p = s64 + v->offset + i, saved = *p, h = 1e-6, lp, lm;
      ir_tensor o2[16];
      *p = saved + h;
      ir_interp_run(&it, f, NULL, o2);
      lp = ((double *)o2[0].data)[0];
      for (int j = 0; j < f->noutputs; j++) ir_tensor_free(&o2[j]);
      *p = saved - h;
      ir_interp_run(&it, f, NULL, o2);
      lm = ((double *)o2[0].data)[0];
      for (int j = 0; j < f->noutputs; j++) ir_tensor_free(&o2[j]);
      *p = saved;
      double fd = (lp - lm) / (2 * h);
      CHECK_MSG(fabs(fd - g[i]) <= 1e-6 * fmax(1.0, fabs(fd)), "%s: d/d%s[%lld] %.9g, differences %.9g",
                what, v->name, (long long)i, g[i], fd);
    }
  }
  for (int j = 0; j < f->noutputs; j++) ir_tensor_free(&outs[j]);
  free(s32);
  free(s64);
}

static void test_matmul(int ta, int tb) {
  rig r;
  rig_init(&r);
  int a = ta ? param(&r, 2, 4, 3, 0) : param(&r, 2, 3, 4, 0); /* op(A) is [3,4] */
  int b = tb ? param(&r, 2, 2, 4, 0) : param(&r, 2, 4, 2, 0); /* op(B) is [4,2] */
  ir_attrs t = {.i = {ta, tb}};
  int in[2] = {a, b};
  char what[48];
  snprintf(what, sizeof what, "matmul ta=%d tb=%d", ta, tb);
  check(&r, emit(&r, IR_OP_MATMUL, 2, in, &t), what);
  ir_module_free(r.m);
}

static void test_var(int64_t mask, int keep) {
  rig r;
  rig_init(&r);
  int x = param(&r, 3, 3, 2, 4);
  ir_attrs a = {.i = {mask, keep}};
  check(&r, emit(&r, IR_OP_VAR, 1, &x, &a), "var");
  ir_module_free(r.m);
}

static void test_concat_many(void) {
  rig r;
  rig_init(&r);
  int in[7];
  for (int j = 0; j < 7; j++) in[j] = param(&r, 2, 2, 1 + j % 3, 0);
  ir_attrs a = {.i = {1}};
  int c = emit(&r, IR_OP_CONCAT, 7, in, &a);
  CHECK(r.f->nodes[c].in_extra != NULL);
  check(&r, c, "concat of 7");
  ir_module_free(r.m);
}

static void test_unary_and_keep(void) {
  rig r;
  rig_init(&r);
  int x = param(&r, 3, 2, 3, 2);
  int n = emit(&r, IR_OP_NEG, 1, &x, NULL);
  int sq = emit(&r, IR_OP_MUL, 2, (int[]){x, x}, NULL);
  int s = emit(&r, IR_OP_SQRT, 1, &sq, NULL);
  ir_attrs k1 = {.i = {2, 1}}, k2 = {.i = {5, 1}};
  int a = emit(&r, IR_OP_SUM, 1, &n, &k1);  /* [2,1,2] */
  int b = emit(&r, IR_OP_MEAN, 1, &s, &k2); /* [1,3,1] */
  check(&r, emit(&r, IR_OP_MUL, 2, (int[]){a, b}, NULL), "neg, sqrt, sum and mean keeping dims");
  ir_module_free(r.m);
}

int main(void) {
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) test_matmul(ta, tb);
  test_var(1, 0);
  test_var(1 | 4, 1);
  test_var(2, 0);
  test_concat_many();
  test_unary_and_keep();
  return check_done();
}
