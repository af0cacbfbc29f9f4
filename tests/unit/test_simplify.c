/* test_simplify.c: simplify changes no value. For every model, the whole lowered
 * training step with the pipeline's simplify + dce and without them runs three steps
 * in the interpreter from the same state on the same inputs: every output and the
 * whole state buffer must be equal bit for bit, with fewer nodes. And on hand-built IR:
 * x*1, a reshape chain and duplicated subexpressions disappear; constants fold. */
#include "check.h"
#include "frontend/frontend.h"
#include "passes/passes.h"
#include "runtime/runtime.h"

#include <stdlib.h>
#include <string.h>

static ir_module *load(const char *name, const pass_options *po) {
  char path[512];
  snprintf(path, sizeof path, "%s/models/%s.mig", MIGC_SOURCE_DIR, name);
  diag_sink d;
  diag_init(&d);
  ast_file *ast = parse_file(&d, path);
  elab_options eo = {.batch = 4};
  ir_module *m = ast ? elaborate(ast, &eo, &d) : NULL;
  if (m && passes_run(m, po, &d)) {
    diag_print(&d, stderr, false);
    ir_module_free(m);
    m = NULL;
  }
  CHECK_MSG(m != NULL, "%s", name);
  if (ast) ast_free(ast);
  diag_free(&d);
  return m;
}

static void check_model(const char *name) {
  static const char *off[] = {"constfold", "simplify", "dce"};
  pass_options with = {.verify_each = true}, without = {.verify_each = true, .disabled = off, .ndisabled = 3};
  ir_module *a = load(name, &with), *b = load(name, &without);
  if (!a || !b) return;
  ir_func *fa = ir_find_func(a, "train_step"), *fb = ir_find_func(b, "train_step");
  CHECK_MSG(fa->nnodes < fb->nnodes, "%s: %d nodes simplified, %d not", name, fa->nnodes, fb->nnodes);
  printf("%s: train_step %d nodes, %d before simplify and dce\n", name, fa->nnodes, fb->nnodes);
  CHECK(a->state_size == b->state_size);
  float *sa = calloc((size_t)a->state_size, sizeof *sa), *sb = calloc((size_t)b->state_size, sizeof *sb);
  ir_init_state(a, sa, 4);
  ir_init_state(b, sb, 4);
  for (int step = 0; step < 3; step++) {
    ir_tensor in[8], oa[16], ob[16];
    for (int j = 0; j < fa->ninputs; j++) {
      const ir_input *d = &a->inputs[fa->inputs[j]];
      in[j] = ir_tensor_alloc(d->dtype, d->shape);
      for (int64_t i = 0; i < shape_numel(d->shape); i++) {
        float u = rng_uniform(5, RNG_STREAM_LATENT, (uint64_t)step, (uint64_t)j << 40 | (uint64_t)i);
        if (d->dtype == IR_I32)
          ((int32_t *)in[j].data)[i] = d->kind == INPUT_SEED ? step : (int32_t)(u * d->a);
        else
          ((float *)in[j].data)[i] = (float)(d->kind == INPUT_DATA ? u : 2 * u - 1);
      }
    }
    ir_interp ia = {.m = a, .state = sa}, ib = {.m = b, .state = sb};
    int st = ir_interp_run(&ia, fa, in, oa) | ir_interp_run(&ib, fb, in, ob);
    CHECK_MSG(st == 0, "%s: %s %s", name, ia.err, ib.err);
    for (int k = 0; !st && k < fa->noutputs; k++) {
      CHECK_MSG(!memcmp(oa[k].data, ob[k].data, 4), "%s step %d: %s differs", name, step, fa->outputs[k].name);
      ir_tensor_free(&oa[k]);
      ir_tensor_free(&ob[k]);
    }
    CHECK_MSG(!memcmp(sa, sb, (size_t)a->state_size * sizeof *sa), "%s step %d: the state differs", name, step);
    for (int j = 0; j < fa->ninputs; j++) ir_tensor_free(&in[j]);
  }
  free(sa);
  free(sb);
  ir_module_free(a);
  ir_module_free(b);
}

static void test_rewrites(void) {
  ir_module *m = ir_module_new("t");
  ir_func *f = ir_add_func(m, "f", false);
  int64_t d[2] = {2, 3}, d6 = 6;
  ir_input in = {.name = "x", .kind = INPUT_DATA, .dtype = IR_F32, .shape = shape_make(2, d, false)};
  int xi = ir_add_input(m, &in);
  f->inputs = malloc(sizeof(int));
  f->inputs[0] = xi;
  f->ninputs = 1;
  ir_attrs ia = {.ashape = in.shape, .dtype = IR_F32};
  int x = ir_emit_checked(f, 0, IR_OP_INPUT, NULL, 0, &ia);
  ir_attrs one = {.f = {1.0}};
  int c1 = ir_emit_checked(f, 0, IR_OP_CONST, NULL, 0, &one);
  int c1b = ir_emit_checked(f, 0, IR_OP_CONST, NULL, 0, &one);
  int y = ir_emit_checked(f, 0, IR_OP_MUL, (int[]){x, c1}, 2, NULL);       /* x*1 -> x */
  int e1 = ir_emit_checked(f, 0, IR_OP_EXP, &y, 1, NULL);
  int e2 = ir_emit_checked(f, 0, IR_OP_EXP, &x, 1, NULL);                 /* == e1 */
  ir_attrs flat = {.ashape = shape_make(1, &d6, false)}, back = {.ashape = in.shape};
  int r1 = ir_emit_checked(f, 0, IR_OP_RESHAPE, &e2, 1, &flat);
  int r2 = ir_emit_checked(f, 0, IR_OP_RESHAPE, &r1, 1, &back);           /* -> e1 */
  int s = ir_emit_checked(f, 0, IR_OP_ADD, (int[]){e1, r2}, 2, NULL);
  int t = ir_emit_checked(f, 0, IR_OP_MUL, (int[]){c1b, s}, 2, NULL);      /* 1*s -> s */
  ir_add_output(f, "out", t);
  int replaced = pass_simplify(f);
  CHECK_MSG(replaced == 5, "%d replaced", replaced); /* c1b, y, e2, r2, t; r1 becomes dead */
  const ir_node *o = &f->nodes[f->outputs[0].node];
  CHECK(o->op == IR_OP_ADD && o->in[0] == e1 && o->in[1] == e1);
  CHECK(f->nodes[e1].in[0] == x);
  pass_dce(f);
  CHECK_MSG(f->nnodes == 3, "%d nodes left (input, exp, add)", f->nnodes);
  diag_sink dv;
  diag_init(&dv);
  ir_layout(m);
  CHECK(ir_verify(m, &dv));
  diag_free(&dv);
  ir_module_free(m);
}

/* 2 + 3, exp of it, a chain of scalar constants: folded to the interpreter's values,
 * and the function computes the same bits as before */
static void test_constfold(void) {
  ir_module *m = ir_module_new("t");
  ir_func *f = ir_add_func(m, "f", false);
  int64_t d[1] = {4};
  ir_input in = {.name = "x", .kind = INPUT_DATA, .dtype = IR_F32, .shape = shape_make(1, d, false)};
  int xi = ir_add_input(m, &in);
  f->inputs = malloc(sizeof(int));
  f->inputs[0] = xi;
  f->ninputs = 1;
  ir_attrs ia = {.ashape = in.shape, .dtype = IR_F32};
  int x = ir_emit_checked(f, 0, IR_OP_INPUT, NULL, 0, &ia);
  ir_attrs two = {.f = {2.0}}, three = {.f = {0.3}};
  int c2 = ir_emit_checked(f, 0, IR_OP_CONST, NULL, 0, &two);
  int c3 = ir_emit_checked(f, 0, IR_OP_CONST, NULL, 0, &three);
  int s = ir_emit_checked(f, 0, IR_OP_ADD, (int[]){c2, c3}, 2, NULL);
  int e = ir_emit_checked(f, 0, IR_OP_EXP, &s, 1, NULL);
  int y = ir_emit_checked(f, 0, IR_OP_MUL, (int[]){x, e}, 2, NULL);
  ir_add_output(f, "y", y);
  ir_tensor xt = ir_tensor_alloc(IR_F32, in.shape), before, after;
  for (int i = 0; i < 4; i++) ((float *)xt.data)[i] = 0.1f * (float)i - 0.17f;
  ir_interp it = {.m = m};
  CHECK(ir_interp_run(&it, f, &xt, &before) == 0);
  int folded = pass_constfold(f);
  CHECK_MSG(folded == 2, "%d folded (add, exp)", folded);
  CHECK(f->nodes[s].op == IR_OP_CONST && f->nodes[e].op == IR_OP_CONST);
  CHECK(f->nodes[y].op == IR_OP_MUL); /* x is not a constant */
  CHECK((float)f->nodes[s].f[0] == 2.0f + 0.3f);
  CHECK((float)f->nodes[e].f[0] == (float)exp((double)(2.0f + 0.3f)));
  CHECK(ir_interp_run(&it, f, &xt, &after) == 0);
  CHECK_MSG(!memcmp(before.data, after.data, 4 * sizeof(float)), "folding changed the value");
  pass_dce(f);
  CHECK_MSG(f->nnodes == 3, "%d nodes left (input, the folded exp, mul)", f->nnodes);
  diag_sink dv;
  diag_init(&dv);
  ir_layout(m);
  CHECK(ir_verify(m, &dv));
  diag_free(&dv);
  ir_tensor_free(&xt), ir_tensor_free(&before), ir_tensor_free(&after);
  ir_module_free(m);
}

int main(void) {
  test_rewrites();
  test_constfold();
  check_model("infogan_mlp");
  check_model("dcgan_fashion");
  check_model("seed_infogan");
  check_model("infogan_mnist");
  return check_done();
}
