/* test_kernels_hand.c: every interpreter kernel on small cases worked out by hand, the
 * edge cases the golden set does not reach (saturating activations and losses at
 * +-100, reductions keeping or dropping axes, dropout's determinism and statistics),
 * the errors kernels report, and ir_interp_run on a small hand-built function. */
#include "check.h"
#include "ir/op_impl.h"
#include "runtime/runtime.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static ir_interp interp;

static ir_shape sh(bool batched, int rank, ...) {
  int64_t dims[IR_MAX_RANK] = {0};
  va_list ap;
  va_start(ap, rank);
  for (int d = 0; d < rank; d++) dims[d] = va_arg(ap, int);
  va_end(ap);
  return shape_make(rank, dims, batched);
}

/* An f32 tensor of shape s holding the values that follow (as doubles). */
static ir_tensor tf(ir_shape s, ...) {
  ir_tensor t = ir_tensor_alloc(IR_F32, s);
  va_list ap;
  va_start(ap, s);
  for (int64_t j = 0; j < shape_numel(s); j++) ((float *)t.data)[j] = (float)va_arg(ap, double);
  va_end(ap);
  return t;
}

static ir_tensor ti(ir_shape s, ...) {
  ir_tensor t = ir_tensor_alloc(IR_I32, s);
  va_list ap;
  va_start(ap, s);
  for (int64_t j = 0; j < shape_numel(s); j++) ((int32_t *)t.data)[j] = va_arg(ap, int);
  va_end(ap);
  return t;
}

static ir_node mk(ir_op op) {
  ir_node n = {0};
  n.op = op;
  n.var = -1;
  return n;
}

static int last_rc;

/* Gives n its dtype and shape from the operands' (as ir_emit would), then runs it. */
static ir_tensor run(ir_node n, int nin, ...) {
  const ir_tensor *in[8];
  ir_node ops[8];
  const ir_node *ptrs[8];
  va_list ap;
  va_start(ap, nin);
  for (int j = 0; j < nin; j++) {
    in[j] = va_arg(ap, const ir_tensor *);
    ops[j] = mk(IR_OP_INPUT);
    ops[j].dtype = in[j]->dtype;
    ops[j].shape = in[j]->shape;
    ptrs[j] = &ops[j];
  }
  va_end(ap);
  n.nin = nin;
  char err[256];
  int bad;
  ir_tensor out = {IR_F32, shape_scalar(), NULL};
  if (!ir_ops[n.op].shape(&n, ptrs, err, sizeof err, &bad)) {
    CHECK_MSG(false, "%s rule: %s", ir_ops[n.op].name, err);
    last_rc = -1;
    return out;
  }
  last_rc = ir_interp_node(&interp, &n, in, &out);
  return out;
}

/* t has shape s and exactly (to 1e-6 relative) the values that follow. */
static void expect(const char *what, const ir_tensor *t, ir_shape s, ...) {
  char gs[160], ws[160];
  shape_str(t->shape, gs, sizeof gs);
  shape_str(s, ws, sizeof ws);
  if (!t->data || !shape_equal(t->shape, s)) {
    CHECK_MSG(false, "%s: shape %s, expected %s (%s)", what, t->data ? gs : "none", ws,
              interp.err);
    return;
  }
  va_list ap;
  va_start(ap, s);
  int bad = 0;
  for (int64_t j = 0; j < shape_numel(s); j++) {
    double want = va_arg(ap, double), got = ((float *)t->data)[j];
    if (!(fabs(got - want) <= 1e-6 * fabs(want) + 1e-7)) {
      if (!bad) fprintf(stderr, "%s: element %lld is %.9g, expected %.9g\n", what, (long long)j,
                        got, want);
      bad++;
    }
  }
  va_end(ap);
  CHECK_MSG(bad == 0, "%s: %d elements differ", what, bad);
}

static float at(const ir_tensor *t, int64_t j) { return ((float *)t->data)[j]; }

/* ---- elementwise ----------------------------------------------------------------------- */

static void test_unary(void) {
  ir_tensor x = tf(sh(false, 1, 5), -2.0, -0.5, 0.0, 0.5, 3.0);
  ir_tensor y = run(mk(IR_OP_NEG), 1, &x);
  expect("neg", &y, sh(false, 1, 5), 2.0, 0.5, 0.0, -0.5, -3.0);
  ir_tensor_free(&y);
  y = run(mk(IR_OP_RELU), 1, &x);
  expect("relu", &y, sh(false, 1, 5), 0.0, 0.0, 0.0, 0.5, 3.0);
  ir_tensor_free(&y);
  ir_node lr = mk(IR_OP_LRELU);
  lr.f[0] = 0.2;
  y = run(lr, 1, &x);
  expect("lrelu", &y, sh(false, 1, 5), -0.4, -0.1, 0.0, 0.5, 3.0);
  ir_tensor_free(&y);
  y = run(mk(IR_OP_TANH), 1, &x);
  expect("tanh", &y, sh(false, 1, 5), tanh(-2.0), tanh(-0.5), 0.0, tanh(0.5), tanh(3.0));
  ir_tensor_free(&y);
  y = run(mk(IR_OP_EXP), 1, &x);
  expect("exp", &y, sh(false, 1, 5), exp(-2.0), exp(-0.5), 1.0, exp(0.5), exp(3.0));
  ir_tensor_free(&y);
  ir_tensor_free(&x);

  /* saturation: finite, and right to float precision at both ends */
  x = tf(sh(false, 1, 5), -100.0, -20.0, 0.0, 20.0, 100.0);
  y = run(mk(IR_OP_SIGMOID), 1, &x);
  expect("sigmoid", &y, sh(false, 1, 5), exp(-100.0), 1 / (1 + exp(20.0)), 0.5,
         1 / (1 + exp(-20.0)), 1.0);
  CHECK(at(&y, 0) > 0 && isfinite(at(&y, 0)) && at(&y, 4) == 1.0f);
  ir_tensor_free(&y);
  y = run(mk(IR_OP_SOFTPLUS), 1, &x);
  expect("softplus", &y, sh(false, 1, 5), exp(-100.0), log1p(exp(-20.0)), log(2.0),
         20 + log1p(exp(-20.0)), 100.0);
  CHECK(isfinite(at(&y, 0)) && isfinite(at(&y, 4)));
  ir_tensor_free(&y);
  ir_tensor_free(&x);

  x = tf(sh(false, 1, 4), 1e-30, 1e-6, 1.0, 4.0);
  y = run(mk(IR_OP_LOG), 1, &x);
  expect("log", &y, sh(false, 1, 4), log((double)1e-30f), log((double)1e-6f), 0.0, log(4.0));
  ir_tensor_free(&y);
  y = run(mk(IR_OP_SQRT), 1, &x);
  expect("sqrt", &y, sh(false, 1, 4), sqrt((double)1e-30f), sqrt((double)1e-6f), 1.0, 2.0);
  ir_tensor_free(&y);
  ir_tensor_free(&x);
  /* sin and cos at 0, pi/2 (as a float), pi (as a float) and -1 */
  x = tf(sh(false, 1, 4), 0.0, (double)(float)M_PI_2, (double)(float)M_PI, -1.0);
  y = run(mk(IR_OP_SIN), 1, &x);
  expect("sin", &y, sh(false, 1, 4), 0.0, sin((double)(float)M_PI_2), sin((double)(float)M_PI),
         sin(-1.0));
  ir_tensor_free(&y);
  y = run(mk(IR_OP_COS), 1, &x);
  expect("cos", &y, sh(false, 1, 4), 1.0, cos((double)(float)M_PI_2), cos((double)(float)M_PI),
         cos(-1.0));
  ir_tensor_free(&y);
  ir_tensor_free(&x);
  x = tf(sh(false, 1, 2), 0.0, -1.0);
  y = run(mk(IR_OP_LOG), 1, &x);
  CHECK(at(&y, 0) == -INFINITY && isnan(at(&y, 1))); /* as torch.log */
  ir_tensor_free(&y);
  ir_tensor_free(&x);
}

static void test_binary(void) {
  /* batched [2,3] with an unbatched [3] */
  ir_tensor a = tf(sh(true, 2, 2, 3), 1.0, 2.0, 3.0, 4.0, 5.0, 6.0);
  ir_tensor b = tf(sh(false, 1, 3), 10.0, 20.0, 30.0);
  ir_tensor y = run(mk(IR_OP_ADD), 2, &a, &b);
  expect("add [2,3]+[3]", &y, sh(true, 2, 2, 3), 11.0, 22.0, 33.0, 14.0, 25.0, 36.0);
  CHECK(y.shape.batched);
  ir_tensor_free(&y);
  y = run(mk(IR_OP_SUB), 2, &b, &a);
  expect("sub [3]-[2,3]", &y, sh(true, 2, 2, 3), 9.0, 18.0, 27.0, 6.0, 15.0, 24.0);
  ir_tensor_free(&y);
  /* a column against a row: [2,1] x [1,3] */
  ir_tensor col = tf(sh(false, 2, 2, 1), 2.0, 3.0), row = tf(sh(false, 2, 1, 3), 1.0, 10.0, 100.0);
  y = run(mk(IR_OP_MUL), 2, &col, &row);
  expect("mul [2,1]x[1,3]", &y, sh(false, 2, 2, 3), 2.0, 20.0, 200.0, 3.0, 30.0, 300.0);
  ir_tensor_free(&y);
  /* a scalar divides everything; division by zero gives inf as in torch */
  ir_tensor two = tf(shape_scalar(), 2.0), z = tf(sh(false, 1, 2), 1.0, 0.0);
  y = run(mk(IR_OP_DIV), 2, &a, &two);
  expect("div by scalar", &y, sh(true, 2, 2, 3), 0.5, 1.0, 1.5, 2.0, 2.5, 3.0);
  ir_tensor_free(&y);
  y = run(mk(IR_OP_DIV), 2, &two, &z);
  CHECK(at(&y, 0) == 2.0f && at(&y, 1) == INFINITY);
  ir_tensor_free(&y);
  /* per-channel scale of [N,C,H,W] by [C,1,1] */
  ir_tensor img = tf(sh(true, 4, 1, 2, 1, 2), 1.0, 2.0, 3.0, 4.0);
  ir_tensor scale = tf(sh(false, 3, 2, 1, 1), 10.0, -1.0);
  y = run(mk(IR_OP_MUL), 2, &img, &scale);
  expect("mul [1,2,1,2]x[2,1,1]", &y, sh(true, 4, 1, 2, 1, 2), 10.0, 20.0, -3.0, -4.0);
  ir_tensor *all[] = {&y, &a, &b, &col, &row, &two, &z, &img, &scale};
  for (size_t j = 0; j < sizeof all / sizeof *all; j++) ir_tensor_free(all[j]);
}

/* ---- linear algebra and convolution -------------------------------------------------- */

static void test_matmul(void) {
  /* a = [[1,2,3],[4,5,6]], b = [[1,0],[0,1],[1,1]]: a b = [[4,5],[10,11]] */
  ir_tensor a = tf(sh(false, 2, 2, 3), 1.0, 2.0, 3.0, 4.0, 5.0, 6.0);
  ir_tensor b = tf(sh(false, 2, 3, 2), 1.0, 0.0, 0.0, 1.0, 1.0, 1.0);
  ir_tensor at_ = tf(sh(false, 2, 3, 2), 1.0, 4.0, 2.0, 5.0, 3.0, 6.0); /* a^T */
  ir_tensor bt = tf(sh(false, 2, 2, 3), 1.0, 0.0, 1.0, 0.0, 1.0, 1.0);  /* b^T */
  ir_node n = mk(IR_OP_MATMUL);
  ir_tensor y = run(n, 2, &a, &b);
  expect("matmul", &y, sh(false, 2, 2, 2), 4.0, 5.0, 10.0, 11.0);
  ir_tensor_free(&y);
  n.i[0] = 1;
  y = run(n, 2, &at_, &b);
  expect("matmul ta", &y, sh(false, 2, 2, 2), 4.0, 5.0, 10.0, 11.0);
  ir_tensor_free(&y);
  n.i[1] = 1;
  y = run(n, 2, &at_, &bt);
  expect("matmul ta tb", &y, sh(false, 2, 2, 2), 4.0, 5.0, 10.0, 11.0);
  ir_tensor_free(&y);
  n.i[0] = 0;
  y = run(n, 2, &a, &bt);
  expect("matmul tb", &y, sh(false, 2, 2, 2), 4.0, 5.0, 10.0, 11.0);
  ir_tensor_free(&y);
  /* a^T a: [3,2] x [2,3] by ta on the same operand */
  n.i[0] = 1, n.i[1] = 0;
  y = run(n, 2, &a, &a);
  expect("matmul a^T a", &y, sh(false, 2, 3, 3), 17.0, 22.0, 27.0, 22.0, 29.0, 36.0, 27.0, 36.0,
         45.0);
  ir_tensor *all[] = {&y, &a, &b, &at_, &bt};
  for (size_t j = 0; j < sizeof all / sizeof *all; j++) ir_tensor_free(all[j]);
}

static ir_node conv(ir_op op, int k, int s, int p) {
  ir_node n = mk(op);
  n.i[0] = k, n.i[1] = s, n.i[2] = p;
  return n;
}

static void test_conv(void) {
  /* x = 1..9 in a 3x3, w = [[1,0],[0,-1]]: out = x[y,x] - x[y+1,x+1] = -4 everywhere */
  ir_tensor x = tf(sh(true, 4, 1, 1, 3, 3), 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0);
  ir_tensor w = tf(sh(false, 4, 1, 1, 2, 2), 1.0, 0.0, 0.0, -1.0);
  ir_tensor y = run(conv(IR_OP_CONV, 2, 1, 0), 2, &x, &w);
  expect("conv k2 s1 p0", &y, sh(true, 4, 1, 1, 2, 2), -4.0, -4.0, -4.0, -4.0);
  ir_tensor_free(&y);
  /* padding 1, stride 2: windows at -1 and 1; the zero padding contributes nothing.
   * (0,0): 0 - x[0,0] = -1; (0,1): 0 - x[0,2] = -3; (1,0): 0 - x[2,0] = -7;
   * (1,1): x[1,1] - x[2,2] = 5 - 9 */
  y = run(conv(IR_OP_CONV, 2, 2, 1), 2, &x, &w);
  expect("conv k2 s2 p1", &y, sh(true, 4, 1, 1, 2, 2), -1.0, -3.0, -7.0, -4.0);
  ir_tensor_free(&y);
  /* two input channels summed, two output channels: w[o,c] = (o+1)*(c==0 ? 1 : 10) with k=1 */
  ir_tensor x2 = tf(sh(false, 4, 1, 2, 1, 2), 1.0, 2.0, 3.0, 4.0);
  ir_tensor w2 = tf(sh(false, 4, 2, 2, 1, 1), 1.0, 10.0, 2.0, 20.0);
  y = run(conv(IR_OP_CONV, 1, 1, 0), 2, &x2, &w2);
  expect("conv channels", &y, sh(false, 4, 1, 2, 1, 2), 31.0, 42.0, 62.0, 84.0);
  ir_tensor_free(&y);

  /* deconv, stride 2, k 2, no overlap: each input pixel paints w scaled by itself */
  ir_tensor d = tf(sh(true, 4, 1, 1, 2, 2), 1.0, 2.0, 3.0, 4.0);
  ir_tensor wd = tf(sh(false, 4, 1, 1, 2, 2), 1.0, 10.0, 100.0, 1000.0);
  y = run(conv(IR_OP_DECONV, 2, 2, 0), 2, &d, &wd);
  expect("deconv k2 s2", &y, sh(true, 4, 1, 1, 4, 4), 1.0, 10.0, 2.0, 20.0, 100.0, 1000.0,
         200.0, 2000.0, 3.0, 30.0, 4.0, 40.0, 300.0, 3000.0, 400.0, 4000.0);
  ir_tensor_free(&y);
  /* stride 1: overlapping paints add up; out 3x3 */
  y = run(conv(IR_OP_DECONV, 2, 1, 0), 2, &d, &wd);
  expect("deconv k2 s1", &y, sh(true, 4, 1, 1, 3, 3), 1.0, 12.0, 20.0, 103.0, 1234.0, 2040.0,
         300.0, 3400.0, 4000.0);
  ir_tensor_free(&y);
  /* padding 1 crops the border of that: the centre 1x1 */
  y = run(conv(IR_OP_DECONV, 2, 1, 1), 2, &d, &wd);
  expect("deconv k2 s1 p1", &y, sh(true, 4, 1, 1, 1, 1), 1234.0);
  ir_tensor_free(&y);
  /* deconv weight is [C_in, C_out, k, k]: one input channel to two outputs */
  ir_tensor d1 = tf(sh(false, 4, 1, 1, 1, 1), 2.0);
  ir_tensor w12 = tf(sh(false, 4, 1, 2, 1, 1), 3.0, 5.0);
  y = run(conv(IR_OP_DECONV, 1, 1, 0), 2, &d1, &w12);
  expect("deconv channels", &y, sh(false, 4, 1, 2, 1, 1), 6.0, 10.0);
  ir_tensor *all[] = {&y, &x, &w, &x2, &w2, &d, &wd, &d1, &w12};
  for (size_t j = 0; j < sizeof all / sizeof *all; j++) ir_tensor_free(all[j]);
}

/* ---- normalisation ------------------------------------------------------------------ */

static void test_batchnorm(void) {
  /* [N=2,C=2]: channel 0 is {1,3} (mean 2, biased var 1), channel 1 is {5,5} (var 0) */
  ir_tensor x = tf(sh(true, 2, 2, 2), 1.0, 5.0, 3.0, 5.0);
  ir_tensor g = tf(sh(false, 1, 2), 2.0, 1.0), b = tf(sh(false, 1, 2), 0.5, -1.0);
  ir_node n = mk(IR_OP_BATCHNORM);
  n.f[0] = 1e-5;
  ir_tensor y = run(n, 3, &x, &g, &b);
  double s = 1 / sqrt(1 + 1e-5);
  expect("batchnorm [2,2]", &y, sh(true, 2, 2, 2), -2 * s + 0.5, -1.0, 2 * s + 0.5, -1.0);
  ir_tensor_free(&y);
  /* [N=1,C=1,H=2,W=2]: statistics over H and W too; {0,0,0,4}: mean 1, var 3 */
  ir_tensor x4 = tf(sh(true, 4, 1, 1, 2, 2), 0.0, 0.0, 0.0, 4.0);
  ir_tensor g1 = tf(sh(false, 1, 1), 1.0), b1 = tf(sh(false, 1, 1), 0.0);
  y = run(n, 3, &x4, &g1, &b1);
  double s3 = 1 / sqrt(3 + 1e-5);
  expect("batchnorm [1,1,2,2]", &y, sh(true, 4, 1, 1, 2, 2), -s3, -s3, -s3, 3 * s3);
  ir_tensor_free(&y);
  /* inference uses the given statistics */
  ir_tensor m = tf(sh(false, 1, 2), 1.0, 0.0), v = tf(sh(false, 1, 2), 4.0, 1.0);
  n = mk(IR_OP_BATCHNORM_INFER);
  n.f[0] = 0;
  y = run(n, 5, &x, &g, &b, &m, &v);
  expect("batchnorm_infer", &y, sh(true, 2, 2, 2), 0.5, 4.0, 2.5, 4.0);
  ir_tensor *all[] = {&y, &x, &g, &b, &x4, &g1, &b1, &m, &v};
  for (size_t j = 0; j < sizeof all / sizeof *all; j++) ir_tensor_free(all[j]);
}

/* ---- shape ---------------------------------------------------------------------------- */

static void test_shape_ops(void) {
  ir_tensor x = tf(sh(true, 2, 2, 3), 1.0, 2.0, 3.0, 4.0, 5.0, 6.0);
  ir_node r = mk(IR_OP_RESHAPE);
  r.ashape = sh(true, 3, 2, 3, 1);
  ir_tensor y = run(r, 1, &x);
  expect("reshape", &y, sh(true, 3, 2, 3, 1), 1.0, 2.0, 3.0, 4.0, 5.0, 6.0);
  CHECK(y.shape.batched);
  ir_tensor_free(&y);

  ir_tensor a = tf(sh(false, 2, 2, 1), 7.0, 8.0), c = tf(sh(false, 2, 2, 2), 9.0, 10.0, 11.0, 12.0);
  ir_node cat = mk(IR_OP_CONCAT);
  cat.i[0] = 1;
  y = run(cat, 3, &x, &a, &c);
  expect("concat axis 1", &y, sh(false, 2, 2, 6), 1.0, 2.0, 3.0, 7.0, 9.0, 10.0, 4.0, 5.0, 6.0,
         8.0, 11.0, 12.0);
  ir_tensor_free(&y);
  cat.i[0] = 0;
  ir_tensor row = tf(sh(false, 2, 1, 3), -1.0, -2.0, -3.0);
  y = run(cat, 2, &x, &row);
  expect("concat axis 0", &y, sh(false, 2, 3, 3), 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, -1.0, -2.0,
         -3.0);
  ir_tensor_free(&y);
  /* integer tensors concatenate too */
  ir_tensor i1 = ti(sh(false, 1, 2), 1, 2), i2 = ti(sh(false, 1, 1), 3);
  y = run(cat, 2, &i1, &i2);
  CHECK(y.dtype == IR_I32 && ((int32_t *)y.data)[2] == 3);
  ir_tensor_free(&y);

  ir_node sl = mk(IR_OP_SLICE);
  sl.i[0] = 1, sl.i[1] = 1, sl.i[2] = 3;
  y = run(sl, 1, &x);
  expect("slice axis 1 [1,3)", &y, sh(true, 2, 2, 2), 2.0, 3.0, 5.0, 6.0);
  ir_tensor_free(&y);
  sl.i[0] = 0, sl.i[1] = 1, sl.i[2] = 2;
  y = run(sl, 1, &x);
  expect("slice axis 0 [1,2)", &y, sh(true, 2, 1, 3), 4.0, 5.0, 6.0);
  ir_tensor *all[] = {&y, &x, &a, &c, &row, &i1, &i2};
  for (size_t j = 0; j < sizeof all / sizeof *all; j++) ir_tensor_free(all[j]);
}

/* ---- reductions ------------------------------------------------------------------------ */

static ir_node red(ir_op op, int mask, int keep) {
  ir_node n = mk(op);
  n.i[0] = mask, n.i[1] = keep;
  return n;
}

static void test_reduce(void) {
  /* x [2,2,3] = 0..11 */
  ir_tensor x = tf(sh(true, 3, 2, 2, 3), 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0,
                   11.0);
  ir_tensor y = run(red(IR_OP_SUM, 4, 0), 1, &x);
  expect("sum axis 2", &y, sh(true, 2, 2, 2), 3.0, 12.0, 21.0, 30.0);
  ir_tensor_free(&y);
  y = run(red(IR_OP_SUM, 4, 1), 1, &x);
  expect("sum axis 2 keep", &y, sh(true, 3, 2, 2, 1), 3.0, 12.0, 21.0, 30.0);
  ir_tensor_free(&y);
  y = run(red(IR_OP_SUM, 1, 0), 1, &x);
  expect("sum axis 0", &y, sh(false, 2, 2, 3), 6.0, 8.0, 10.0, 12.0, 14.0, 16.0);
  ir_tensor_free(&y);
  y = run(red(IR_OP_SUM, 2, 1), 1, &x);
  expect("sum axis 1 keep", &y, sh(true, 3, 2, 1, 3), 3.0, 5.0, 7.0, 15.0, 17.0, 19.0);
  ir_tensor_free(&y);
  y = run(red(IR_OP_MEAN, 5, 0), 1, &x);
  expect("mean axes 0,2", &y, sh(false, 1, 2), 4.0, 7.0);
  ir_tensor_free(&y);
  y = run(red(IR_OP_MEAN, 5, 1), 1, &x);
  expect("mean axes 0,2 keep", &y, sh(false, 3, 1, 2, 1), 4.0, 7.0);
  ir_tensor_free(&y);
  y = run(red(IR_OP_MEAN, 7, 0), 1, &x);
  expect("mean all", &y, shape_scalar(), 5.5);
  ir_tensor_free(&y);
  y = run(red(IR_OP_SUM, 7, 1), 1, &x);
  expect("sum all keep", &y, sh(false, 3, 1, 1, 1), 66.0);
  ir_tensor_free(&y);
  /* unbiased: {0,1,2}: mean 1, squares 2, / (3-1) = 1 */
  y = run(red(IR_OP_VAR, 4, 0), 1, &x);
  expect("var axis 2", &y, sh(true, 2, 2, 2), 1.0, 1.0, 1.0, 1.0);
  ir_tensor_free(&y);
  /* over axes 0 and 2 (batchnorm's running variance of [N,C,W]): channel 0 is
   * {0,1,2,6,7,8}: mean 4, squares 16+9+4+4+9+16 = 58, / 5 */
  y = run(red(IR_OP_VAR, 5, 0), 1, &x);
  expect("var axes 0,2", &y, sh(false, 1, 2), 58.0 / 5, 58.0 / 5);
  ir_tensor_free(&y);
  /* nothing reduced: a copy */
  y = run(red(IR_OP_SUM, 0, 0), 1, &x);
  CHECK(y.data && memcmp(y.data, x.data, 12 * sizeof(float)) == 0);
  ir_tensor_free(&y);
  ir_tensor_free(&x);
  /* large sums accumulate in double: 2^24 + 1 + ... stays exact */
  ir_tensor big = tf(sh(false, 1, 3), 16777216.0, 1.0, 1.0);
  y = run(red(IR_OP_SUM, 1, 0), 1, &big);
  expect("sum in double", &y, shape_scalar(), 16777218.0);
  ir_tensor_free(&y);
  ir_tensor_free(&big);
}

/* ---- codes and randomness ------------------------------------------------------------- */

static void test_onehot(void) {
  ir_tensor c = ti(sh(true, 1, 3), 2, 0, 1);
  ir_node n = mk(IR_OP_ONEHOT);
  n.i[0] = 3;
  ir_tensor y = run(n, 1, &c);
  expect("onehot", &y, sh(true, 2, 3, 3), 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0);
  ir_tensor_free(&y);
  ir_tensor_free(&c);
  c = ti(sh(true, 1, 2), 1, 3);
  y = run(n, 1, &c);
  CHECK(last_rc != 0 && y.data == NULL);
  CHECK_STR(interp.err, "onehot: code 3 at row 1 is outside [0, 3)");
  ir_tensor_free(&c);
  c = ti(sh(true, 1, 1), -1);
  y = run(n, 1, &c);
  CHECK_STR(interp.err, "onehot: code -1 at row 0 is outside [0, 3)");
  ir_tensor_free(&c);
}

static void test_dropout(void) {
  enum { N = 100000 };
  ir_tensor x = ir_tensor_alloc(IR_F32, sh(true, 2, 100, 1000));
  for (int j = 0; j < N; j++) ((float *)x.data)[j] = 1.0f + (float)(j % 7);
  ir_tensor seed = ti(sh(false, 1, 2), 1234, 5), seed2 = ti(sh(false, 1, 2), 1234, 6);
  ir_node n = mk(IR_OP_DROPOUT);
  n.f[0] = 0.3, n.i[0] = 1;
  ir_tensor y = run(n, 2, &x, &seed), y_again = run(n, 2, &x, &seed);
  ir_tensor y_step = run(n, 2, &x, &seed2);
  n.i[0] = 2;
  ir_tensor y_site = run(n, 2, &x, &seed);
  CHECK(y.data && y_again.data && y_step.data && y_site.data);
  if (y.data && y_again.data && y_step.data && y_site.data) {
    CHECK(memcmp(y.data, y_again.data, N * sizeof(float)) == 0); /* replays exactly */
    CHECK(memcmp(y.data, y_step.data, N * sizeof(float)) != 0);  /* a new mask per step */
    CHECK(memcmp(y.data, y_site.data, N * sizeof(float)) != 0);  /* and per site */
    int kept = 0, scaled = 0, differ = 0;
    float scale = (float)(1.0 / 0.7);
    for (int j = 0; j < N; j++) {
      float v = at(&y, j), xv = at(&x, j);
      if (v != 0) {
        kept++;
        if (v == xv * scale) scaled++;
      }
      /* the documented rule, element by element */
      bool drop = rng_uniform(1234, RNG_STREAM_DROPOUT + 1, 5, (uint64_t)j) < 0.3f;
      if (drop != (v == 0)) differ++;
    }
    CHECK_NEAR((double)kept / N, 0.7, 0, 0.005); /* sd 0.0014 */
    CHECK(scaled == kept);
    CHECK(differ == 0);
    /* the expectation is preserved: mean(y) ~ mean(x) */
    double sy = 0, sx = 0;
    for (int j = 0; j < N; j++) sy += at(&y, j), sx += at(&x, j);
    CHECK_NEAR(sy / N, sx / N, 0.01, 0);
  }
  ir_tensor *ys[] = {&y, &y_again, &y_step, &y_site};
  for (int j = 0; j < 4; j++) ir_tensor_free(ys[j]);
  /* p = 0 is the identity */
  n.f[0] = 0;
  y = run(n, 2, &x, &seed);
  CHECK(y.data && memcmp(y.data, x.data, N * sizeof(float)) == 0);
  ir_tensor_free(&y);
  ir_tensor_free(&x);
  ir_tensor_free(&seed);
  ir_tensor_free(&seed2);
}

/* ---- losses ---------------------------------------------------------------------------- */

static void test_losses(void) {
  /* bce: x=0 gives log 2 whatever t; x=+-100 saturate without overflow */
  ir_tensor x = tf(sh(false, 1, 2), 0.0, 0.0), t = tf(sh(false, 1, 2), 1.0, 0.0);
  ir_tensor y = run(mk(IR_OP_BCE_LOGITS), 2, &x, &t);
  expect("bce at 0", &y, shape_scalar(), log(2.0));
  ir_tensor_free(&y), ir_tensor_free(&x), ir_tensor_free(&t);
  x = tf(sh(false, 1, 1), 100.0), t = tf(sh(false, 1, 1), 1.0);
  y = run(mk(IR_OP_BCE_LOGITS), 2, &x, &t);
  expect("bce +100 right", &y, shape_scalar(), exp(-100.0));
  ir_tensor_free(&y), ir_tensor_free(&t);
  t = tf(sh(false, 1, 1), 0.0);
  y = run(mk(IR_OP_BCE_LOGITS), 2, &x, &t);
  expect("bce +100 wrong", &y, shape_scalar(), 100.0);
  ir_tensor_free(&y), ir_tensor_free(&t), ir_tensor_free(&x);
  x = tf(sh(false, 1, 1), -100.0), t = tf(sh(false, 1, 1), 1.0);
  y = run(mk(IR_OP_BCE_LOGITS), 2, &x, &t);
  expect("bce -100 wrong", &y, shape_scalar(), 100.0);
  ir_tensor_free(&y), ir_tensor_free(&t), ir_tensor_free(&x);
  /* mean over elements, soft targets allowed: x = [1, -2], t = [0.25, 0.5] */
  x = tf(sh(true, 2, 1, 2), 1.0, -2.0), t = tf(sh(true, 2, 1, 2), 0.25, 0.5);
  y = run(mk(IR_OP_BCE_LOGITS), 2, &x, &t);
  expect("bce soft", &y, shape_scalar(),
         ((1 - 0.25 + log1p(exp(-1.0))) + (0 + 1.0 + log1p(exp(-2.0)))) / 2);
  ir_tensor_free(&y), ir_tensor_free(&t), ir_tensor_free(&x);
  /* a constant target broadcasts to the logits: bce(D(x), 1) */
  x = tf(sh(true, 2, 2, 1), 2.0, -1.0), t = tf(shape_scalar(), 1.0);
  y = run(mk(IR_OP_BCE_LOGITS), 2, &x, &t);
  expect("bce scalar target", &y, shape_scalar(),
         (log1p(exp(-2.0)) + (1.0 + log1p(exp(-1.0)))) / 2);
  ir_tensor_free(&y), ir_tensor_free(&t), ir_tensor_free(&x);

  /* softmax_ce: equal logits give ln K; a huge margin is finite */
  ir_tensor l = tf(sh(true, 2, 2, 2), 0.0, 0.0, 1000.0, 0.0);
  ir_tensor c = ti(sh(true, 1, 2), 0, 1);
  y = run(mk(IR_OP_SOFTMAX_CE), 2, &l, &c);
  expect("softmax_ce", &y, shape_scalar(), (log(2.0) + 1000.0) / 2);
  ir_tensor_free(&y);
  /* info_categorical: ln K - CE */
  y = run(mk(IR_OP_INFO_CATEGORICAL), 2, &l, &c);
  expect("info_categorical", &y, shape_scalar(), log(2.0) - (log(2.0) + 1000.0) / 2);
  ir_tensor_free(&y), ir_tensor_free(&c);
  c = ti(sh(true, 1, 2), 0, 2);
  y = run(mk(IR_OP_SOFTMAX_CE), 2, &l, &c);
  CHECK(last_rc != 0 && y.data == NULL);
  CHECK_STR(interp.err, "softmax_ce: label 2 at row 1 is outside [0, 2)");
  y = run(mk(IR_OP_INFO_CATEGORICAL), 2, &l, &c);
  CHECK(last_rc != 0 && y.data == NULL);
  CHECK_STR(interp.err, "info_categorical: label 2 at row 1 is outside [0, 2)");
  ir_tensor_free(&c), ir_tensor_free(&l);
  /* a confident right answer: info_categorical reaches ln K */
  l = tf(sh(true, 2, 1, 4), 50.0, 0.0, 0.0, 0.0), c = ti(sh(true, 1, 1), 0);
  y = run(mk(IR_OP_INFO_CATEGORICAL), 2, &l, &c);
  expect("info_categorical max", &y, shape_scalar(), log(4.0));
  ir_tensor_free(&y), ir_tensor_free(&c), ir_tensor_free(&l);

  /* gaussian_nll, N=2, D=2: sum over D, mean over N */
  ir_tensor mu = tf(sh(true, 2, 2, 2), 0.0, 1.0, 0.0, 0.0);
  ir_tensor v = tf(sh(true, 2, 2, 2), 1.0, 1.0, 2.0, 0.0);
  ir_node g = mk(IR_OP_GAUSSIAN_NLL);
  g.f[0] = 1;
  double k = 0.5 * log(2 * M_PI);
  y = run(g, 2, &mu, &v);
  expect("gaussian_nll std 1", &y, shape_scalar(), ((0.5 + k) + k + (2 + k) + k) / 2);
  ir_tensor_free(&y);
  g.f[0] = 2;
  y = run(g, 2, &mu, &v);
  double k2 = k + log(2.0);
  expect("gaussian_nll std 2", &y, shape_scalar(),
         ((0.125 + k2) + k2 + (0.5 + k2) + k2) / 2);
  ir_tensor_free(&y), ir_tensor_free(&mu), ir_tensor_free(&v);
}

/* ---- sources, state and the interpreter ----------------------------------------------- */

static void test_state(void) {
  ir_var vars[2];
  memset(vars, 0, sizeof vars);
  vars[0].name = "w";
  vars[0].dtype = IR_F32;
  vars[0].shape = sh(false, 1, 3);
  vars[0].offset = 0;
  vars[1].name = "step";
  vars[1].dtype = IR_I32;
  vars[1].shape = sh(false, 1, 1);
  vars[1].offset = 16;
  ir_module m;
  memset(&m, 0, sizeof m);
  m.vars = vars;
  m.nvars = 2;
  m.state_size = 17;
  float state[17] = {1, 2, 3};
  int32_t seven = 7;
  memcpy(&state[16], &seven, 4);
  interp.m = &m;
  interp.state = state;

  ir_node ld = mk(IR_OP_LOAD);
  ld.var = 0, ld.dtype = IR_F32, ld.ashape = vars[0].shape;
  ir_tensor w = run(ld, 0);
  expect("load", &w, sh(false, 1, 3), 1.0, 2.0, 3.0);
  ld.var = 1, ld.dtype = IR_I32, ld.ashape = vars[1].shape;
  ir_tensor s = run(ld, 0);
  CHECK(s.dtype == IR_I32 && s.data && ((int32_t *)s.data)[0] == 7);

  ir_tensor nw = tf(sh(false, 1, 3), -1.0, -2.0, -3.0);
  ir_node st = mk(IR_OP_STORE);
  st.var = 0;
  ir_tensor out = run(st, 1, &nw);
  CHECK(last_rc == 0 && state[0] == -1 && state[1] == -2 && state[2] == -3 && state[3] == 0);
  expect("store passes the value through", &out, sh(false, 1, 3), -1.0, -2.0, -3.0);
  ir_tensor_free(&out);
  /* a store of the wrong size is refused */
  ir_tensor wrong = tf(sh(false, 1, 2), 1.0, 2.0);
  out = run(st, 1, &wrong);
  CHECK(last_rc != 0);
  CHECK_STR(interp.err, "store: variable w has 3 elements, the value 2");
  ir_tensor_free(&wrong);

  ir_node k = mk(IR_OP_CONST);
  k.f[0] = -0.75;
  ir_tensor c = run(k, 0);
  expect("const", &c, shape_scalar(), -0.75);
  ir_tensor_free(&c), ir_tensor_free(&w), ir_tensor_free(&s), ir_tensor_free(&nw);
  interp.m = NULL;
  interp.state = NULL;
}

/* ir_interp_node checks its operands against the node before running the kernel. */
static void test_node_checks(void) {
  ir_tensor a = tf(sh(false, 1, 3), 1.0, 2.0, 3.0), b = tf(sh(false, 1, 2), 1.0, 2.0);
  ir_node n = mk(IR_OP_ADD);
  n.nin = 2;
  n.dtype = IR_F32;
  n.shape = sh(false, 1, 3);
  const ir_tensor *in[2] = {&a, &b};
  ir_tensor out;
  CHECK(ir_interp_node(&interp, &n, in, &out) != 0 && out.data == NULL);
  CHECK_STR(interp.err, "add: operands do not fit: cannot broadcast [3] with [2]");
  in[1] = &a;
  n.shape = sh(false, 1, 4);
  CHECK(ir_interp_node(&interp, &n, in, &out) != 0);
  CHECK_STR(interp.err, "add: operands give a f32 [3], the node is a f32 [4]");
  n.shape = sh(false, 1, 3);
  n.nin = 1;
  CHECK(ir_interp_node(&interp, &n, in, &out) != 0);
  CHECK_STR(interp.err, "add: has 1 operands, expected 2");
  n.nin = 2;
  CHECK(ir_interp_node(&interp, &n, in, &out) == 0);
  expect("checked add", &out, sh(false, 1, 3), 2.0, 4.0, 6.0);
  ir_tensor_free(&out);
  ir_node inp = mk(IR_OP_INPUT);
  CHECK(ir_interp_node(&interp, &inp, NULL, &out) != 0);
  CHECK_STR(interp.err,
            "input: has no kernel (the interpreter takes its value from the inputs)");
  ir_tensor_free(&a), ir_tensor_free(&b);
}

/* Appends a node to a hand-built function, running its shape rule as ir_emit would. */
static int add_node(ir_func *f, ir_node n, int nin, ...) {
  va_list ap;
  va_start(ap, nin);
  const ir_node *ptrs[IR_MAX_IN];
  for (int j = 0; j < nin; j++) {
    n.in[j] = va_arg(ap, int);
    ptrs[j] = &f->nodes[n.in[j]];
  }
  va_end(ap);
  n.nin = nin;
  char err[256];
  int bad;
  bool ok = ir_ops[n.op].shape(&n, ptrs, err, sizeof err, &bad);
  CHECK_MSG(ok, "%s", err);
  f->nodes[f->nnodes] = n;
  return f->nnodes++;
}

static void test_run(void) {
  /* block 0: h = relu(x) * 2 + w (w loaded); loss = mean(h); store h's mean into w.
   * block 1: w2 = load w again (sees the store); out2 = w2 + 1 */
  ir_var var;
  memset(&var, 0, sizeof var);
  var.name = "w";
  var.dtype = IR_F32;
  var.shape = sh(false, 1, 2);
  ir_module m;
  memset(&m, 0, sizeof m);
  m.vars = &var;
  m.nvars = 1;
  m.state_size = 2;
  float state[2] = {10, 20};
  interp.m = &m;
  interp.state = state;

  ir_node nodes[16];
  ir_func f;
  memset(&f, 0, sizeof f);
  f.name = "train_step";
  f.nodes = nodes;
  f.nblocks = 2;
  int inputs[1] = {0};
  f.inputs = inputs;
  f.ninputs = 1;

  ir_node in = mk(IR_OP_INPUT);
  in.dtype = IR_F32, in.ashape = sh(true, 2, 2, 2);
  int x = add_node(&f, in, 0);
  ir_node ld = mk(IR_OP_LOAD);
  ld.var = 0, ld.dtype = IR_F32, ld.ashape = var.shape;
  int w = add_node(&f, ld, 0);
  int r = add_node(&f, mk(IR_OP_RELU), 1, x);
  ir_node two = mk(IR_OP_CONST);
  two.f[0] = 2;
  int k = add_node(&f, two, 0);
  int h = add_node(&f, mk(IR_OP_MUL), 2, r, k);
  int hw = add_node(&f, mk(IR_OP_ADD), 2, h, w);
  ir_node mean0 = mk(IR_OP_MEAN);
  mean0.i[0] = 1;
  int mh = add_node(&f, mean0, 1, hw);
  ir_node all = mk(IR_OP_MEAN);
  all.i[0] = 3;
  int loss = add_node(&f, all, 1, hw);
  ir_node st = mk(IR_OP_STORE);
  st.var = 0;
  add_node(&f, st, 1, mh);
  ld.block = 1;
  int w2 = add_node(&f, ld, 0);
  ir_node one = mk(IR_OP_CONST);
  one.f[0] = 1, one.block = 1;
  int k1 = add_node(&f, one, 0);
  ir_node plus = mk(IR_OP_ADD);
  plus.block = 1;
  int out2 = add_node(&f, plus, 2, w2, k1);
  ir_output outs[2] = {{"loss", loss}, {"w_plus_1", out2}};
  f.outputs = outs;
  f.noutputs = 2;

  /* x = [[1,-1],[3,4]]: relu*2 = [[2,0],[6,8]], + w = [[12,20],[16,28]];
   * mean over the batch = [14,24]; mean of all = 19 */
  ir_tensor xin = tf(sh(true, 2, 2, 2), 1.0, -1.0, 3.0, 4.0);
  ir_tensor res[2];
  CHECK_MSG(ir_interp_run(&interp, &f, &xin, res) == 0, "%s", interp.err);
  expect("run: loss", &res[0], shape_scalar(), 19.0);
  expect("run: w after store, + 1", &res[1], sh(false, 1, 2), 15.0, 25.0);
  CHECK(state[0] == 14 && state[1] == 24);
  ir_tensor_free(&res[0]), ir_tensor_free(&res[1]);

  /* a wrong input shape is an error naming the node */
  ir_tensor bad = tf(sh(true, 2, 1, 2), 1.0, 2.0);
  CHECK(ir_interp_run(&interp, &f, &bad, res) != 0);
  CHECK_STR(interp.err, "node 0 (input): input 0 is a f32 [1,2], expected a f32 [2,2]");
  CHECK(res[0].data == NULL && res[1].data == NULL);
  ir_tensor_free(&bad);

  /* a kernel error is reported with the node's id and op */
  ir_node oh = mk(IR_OP_ONEHOT);
  oh.i[0] = 2, oh.block = 1;
  ir_node ci = mk(IR_OP_INPUT);
  ci.dtype = IR_I32, ci.ashape = sh(true, 1, 2), ci.i[0] = 1, ci.block = 1;
  int cnode = add_node(&f, ci, 0);
  int ohn = add_node(&f, oh, 1, cnode);
  int inputs2[2] = {0, 1};
  f.inputs = inputs2;
  f.ninputs = 2;
  outs[1].node = ohn;
  ir_tensor ins[2] = {tf(sh(true, 2, 2, 2), 1.0, 1.0, 1.0, 1.0), ti(sh(true, 1, 2), 0, 5)};
  CHECK(ir_interp_run(&interp, &f, ins, res) != 0);
  char want[128];
  snprintf(want, sizeof want, "node %d (onehot): code 5 at row 1 is outside [0, 2)", ohn);
  CHECK_STR(interp.err, want);
  ((int32_t *)ins[1].data)[1] = 1;
  CHECK_MSG(ir_interp_run(&interp, &f, ins, res) == 0, "%s", interp.err);
  expect("run: onehot output", &res[1], sh(true, 2, 2, 2), 1.0, 0.0, 0.0, 1.0);
  ir_tensor_free(&res[0]), ir_tensor_free(&res[1]);
  ir_tensor_free(&ins[0]), ir_tensor_free(&ins[1]), ir_tensor_free(&xin);
  interp.m = NULL;
  interp.state = NULL;
}

/* ---- adjoints (made by autodiff) ------------------------------------------------------ */

static void test_act_grads(void) {
  ir_tensor x = tf(sh(true, 2, 1, 5), -2.0, -0.5, 0.0, 0.5, 3.0);
  ir_tensor dy = tf(sh(true, 2, 1, 5), 1.0, 2.0, 3.0, 4.0, 5.0);
  ir_tensor y = run(mk(IR_OP_RELU_GRAD), 2, &x, &dy);
  expect("relu_grad", &y, sh(true, 2, 1, 5), 0.0, 0.0, 0.0, 4.0, 5.0); /* 0 at x = 0 */
  ir_tensor_free(&y);
  ir_node lr = mk(IR_OP_LRELU_GRAD);
  lr.f[0] = 0.2;
  y = run(lr, 2, &x, &dy);
  expect("lrelu_grad", &y, sh(true, 2, 1, 5), 0.2, 0.4, 0.6, 4.0, 5.0);
  CHECK(y.shape.batched);
  ir_tensor_free(&y);
  /* maximum returns a on a tie; max_grad sends dy to a where a >= b, to b (strict)
   * where b > a, so a tie's adjoint goes to a alone */
  ir_tensor b = tf(sh(true, 2, 1, 5), -1.0, -0.5, 1.0, 0.0, 3.0);
  y = run(mk(IR_OP_MAXIMUM), 2, &x, &b);
  expect("maximum", &y, sh(true, 2, 1, 5), -1.0, -0.5, 1.0, 0.5, 3.0);
  ir_tensor_free(&y);
  y = run(mk(IR_OP_MAX_GRAD), 3, &x, &b, &dy);
  expect("max_grad", &y, sh(true, 2, 1, 5), 0.0, 2.0, 0.0, 4.0, 5.0);
  ir_tensor_free(&y);
  ir_node strict = mk(IR_OP_MAX_GRAD);
  strict.i[0] = 1;
  y = run(strict, 3, &b, &x, &dy);
  expect("max_grad strict", &y, sh(true, 2, 1, 5), 1.0, 0.0, 3.0, 0.0, 0.0);
  ir_tensor_free(&y);
  /* select copies a whole operand by the condition's one element, NaN included */
  ir_tensor on = tf(sh(false, 0), -0.5), off = tf(sh(false, 0), 0.0);
  ((float *)b.data)[1] = NAN;
  y = run(mk(IR_OP_SELECT), 3, &on, &x, &b);
  expect("select on", &y, sh(true, 2, 1, 5), -2.0, -0.5, 0.0, 0.5, 3.0);
  ir_tensor_free(&y);
  y = run(mk(IR_OP_SELECT), 3, &off, &x, &b);
  CHECK(isnan(((float *)y.data)[1]));
  ((float *)y.data)[1] = 7, ((float *)b.data)[1] = 7;
  expect("select off", &y, sh(true, 2, 1, 5), -1.0, 7.0, 1.0, 0.0, 3.0);
  ir_tensor_free(&on), ir_tensor_free(&off);
  ir_tensor_free(&y), ir_tensor_free(&b), ir_tensor_free(&x), ir_tensor_free(&dy);
}

static void test_conv_grads(void) {
  /* conv_grad_x of conv k2 s1 p0 with w = [[1,0],[0,-1]] on a 3x3 input, dy = [[1,2],[3,4]]:
   * w[0,0] puts dy at (h,w), w[1,1] puts -dy at (h+1,w+1) */
  ir_tensor w = tf(sh(false, 4, 1, 1, 2, 2), 1.0, 0.0, 0.0, -1.0);
  ir_tensor dy = tf(sh(true, 4, 1, 1, 2, 2), 1.0, 2.0, 3.0, 4.0);
  ir_node gx = conv(IR_OP_CONV_GRAD_X, 2, 1, 0);
  gx.ashape = sh(true, 4, 1, 1, 3, 3);
  ir_tensor y = run(gx, 2, &dy, &w);
  expect("conv_grad_x k2 s1 p0", &y, sh(true, 4, 1, 1, 3, 3), 1.0, 2.0, 0.0, 3.0, 3.0, -2.0, 0.0,
         -3.0, -4.0);
  CHECK(y.shape.batched);
  ir_tensor_free(&y);
  /* k3 s2 p0 reads rows and columns 0..2 of a 4x4 input: the 4th get zero gradient */
  ir_tensor w9 = tf(sh(false, 4, 1, 1, 3, 3), 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0);
  ir_tensor dy1 = tf(sh(false, 4, 1, 1, 1, 1), 2.0);
  gx = conv(IR_OP_CONV_GRAD_X, 3, 2, 0);
  gx.ashape = sh(false, 4, 1, 1, 4, 4);
  y = run(gx, 2, &dy1, &w9);
  expect("conv_grad_x unread rows", &y, sh(false, 4, 1, 1, 4, 4), 2.0, 4.0, 6.0, 0.0, 8.0, 10.0,
         12.0, 0.0, 14.0, 16.0, 18.0, 0.0, 0.0, 0.0, 0.0, 0.0);
  ir_tensor_free(&y);
  /* channels: dy [1,2,1,1] = (1, 10), w [O=2,C=3,1,1]: dx[c] = w[0,c] + 10 w[1,c] */
  ir_tensor dy2 = tf(sh(false, 4, 1, 2, 1, 1), 1.0, 10.0);
  ir_tensor w23 = tf(sh(false, 4, 2, 3, 1, 1), 1.0, 2.0, 3.0, 4.0, 5.0, 6.0);
  gx = conv(IR_OP_CONV_GRAD_X, 1, 1, 0);
  gx.ashape = sh(false, 4, 1, 3, 1, 1);
  y = run(gx, 2, &dy2, &w23);
  expect("conv_grad_x channels", &y, sh(false, 4, 1, 3, 1, 1), 41.0, 52.0, 63.0);
  ir_tensor_free(&y);

  /* conv_grad_w, x = 1..9 in a 3x3, k2 s1 p0, dy = [[1,0],[0,1]]:
   * dw[ky,kx] = x[ky,kx] + x[1+ky,1+kx] */
  ir_tensor x = tf(sh(true, 4, 1, 1, 3, 3), 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0);
  ir_tensor eye = tf(sh(true, 4, 1, 1, 2, 2), 1.0, 0.0, 0.0, 1.0);
  ir_node gw = conv(IR_OP_CONV_GRAD_W, 2, 1, 0);
  gw.ashape = sh(false, 4, 1, 1, 2, 2);
  y = run(gw, 2, &x, &eye);
  expect("conv_grad_w k2 s1 p0", &y, sh(false, 4, 1, 1, 2, 2), 6.0, 8.0, 12.0, 14.0);
  CHECK(!y.shape.batched);
  ir_tensor_free(&y);
  /* k2 s2 p1, dy all ones: windows at -1 and 1, the padding contributes nothing.
   * dw[0,0] = x[1,1]; dw[0,1] = x[1,0]+x[1,2]; dw[1,0] = x[0,1]+x[2,1]; dw[1,1] = corners */
  ir_tensor ones = tf(sh(true, 4, 1, 1, 2, 2), 1.0, 1.0, 1.0, 1.0);
  gw = conv(IR_OP_CONV_GRAD_W, 2, 2, 1);
  gw.ashape = sh(false, 4, 1, 1, 2, 2);
  y = run(gw, 2, &x, &ones);
  expect("conv_grad_w k2 s2 p1", &y, sh(false, 4, 1, 1, 2, 2), 5.0, 10.0, 10.0, 20.0);
  ir_tensor_free(&y);
  /* channels and batch: x [2,2,1,1], dy [2,1,1,1]: dw[0,c] = sum_n dy[n] x[n,c] */
  ir_tensor xc = tf(sh(true, 4, 2, 2, 1, 1), 1.0, 2.0, 3.0, 4.0);
  ir_tensor dyc = tf(sh(true, 4, 2, 1, 1, 1), 10.0, 100.0);
  gw = conv(IR_OP_CONV_GRAD_W, 1, 1, 0);
  gw.ashape = sh(false, 4, 1, 2, 1, 1);
  y = run(gw, 2, &xc, &dyc);
  expect("conv_grad_w channels", &y, sh(false, 4, 1, 2, 1, 1), 310.0, 420.0);
  ir_tensor *all[] = {&y, &w, &dy, &w9, &dy1, &dy2, &w23, &x, &eye, &ones, &xc, &dyc};
  for (size_t j = 0; j < sizeof all / sizeof *all; j++) ir_tensor_free(all[j]);
}

static void test_batchnorm_grads(void) {
  /* [N=3,C=1], x = {0,0,3}, eps 0: mean 1, var 2, xhat = {-1,-1,2}/sqrt2; gamma 2,
   * dy = {1,0,0}: g = {2,0,0}, mean(g) = 2/3, mean(g xhat) = -2/(3 sqrt2), so
   * dx = (g - 2/3 + xhat*2/(3 sqrt2))/sqrt2 = {1, -1, 0}/sqrt2 */
  ir_tensor x = tf(sh(true, 2, 3, 1), 0.0, 0.0, 3.0);
  ir_tensor g = tf(sh(false, 1, 1), 2.0), dy = tf(sh(true, 2, 3, 1), 1.0, 0.0, 0.0);
  ir_node n = mk(IR_OP_BATCHNORM_GRAD);
  n.f[0] = 0;
  ir_tensor y = run(n, 3, &x, &g, &dy);
  expect("batchnorm_grad [3,1]", &y, sh(true, 2, 3, 1), 1 / sqrt(2.0), -1 / sqrt(2.0), 0.0);
  ir_tensor_free(&y);
  n = mk(IR_OP_BATCHNORM_GRAD_GAMMA);
  y = run(n, 2, &x, &dy);
  expect("batchnorm_grad_gamma [3,1]", &y, sh(false, 1, 1), -1 / sqrt(2.0));
  ir_tensor_free(&y);
  ir_tensor_free(&x), ir_tensor_free(&g), ir_tensor_free(&dy);

  /* [N=1,C=2,H=1,W=2]: statistics per channel over H and W; channel 0 is {1,3}
   * (xhat = {-1,1}/sqrt(1+eps)), channel 1 is {5,5} (var 0, xhat 0). dy = {2,0, 1,4}:
   * dgamma = {-2 s, 0}; dx of channel 1 is (g - mean g)/sqrt(eps) */
  double eps = 1e-5, s = 1 / sqrt(1 + eps);
  ir_tensor x4 = tf(sh(true, 4, 1, 2, 1, 2), 1.0, 3.0, 5.0, 5.0);
  ir_tensor g2 = tf(sh(false, 1, 2), 1.0, 0.5), dy4 = tf(sh(true, 4, 1, 2, 1, 2), 2.0, 0.0, 1.0, 4.0);
  n = mk(IR_OP_BATCHNORM_GRAD_GAMMA);
  n.f[0] = eps;
  y = run(n, 2, &x4, &dy4);
  expect("batchnorm_grad_gamma 4d", &y, sh(false, 1, 2), -2 * s, 0.0);
  ir_tensor_free(&y);
  /* channel 0: g = {2,0}, mean 1, mean(g xhat) = -s: dx = s (g - 1 - xhat (-s))
   * = s {2 - 1 - s^2, 0 - 1 + s^2}; channel 1: g = {0.5, 2}, dx = {-0.75, 0.75}/sqrt(eps) */
  n = mk(IR_OP_BATCHNORM_GRAD);
  n.f[0] = eps;
  y = run(n, 3, &x4, &g2, &dy4);
  expect("batchnorm_grad 4d", &y, sh(true, 4, 1, 2, 1, 2), s * (1 - s * s), s * (s * s - 1),
         -0.75 / sqrt(eps), 0.75 / sqrt(eps));
  ir_tensor_free(&y);
  ir_tensor_free(&x4), ir_tensor_free(&g2), ir_tensor_free(&dy4);
}

static void test_expand_unslice(void) {
  ir_tensor row = tf(sh(false, 1, 3), 1.0, 2.0, 3.0);
  ir_node e = mk(IR_OP_EXPAND);
  e.ashape = sh(true, 2, 2, 3);
  ir_tensor y = run(e, 1, &row);
  expect("expand [3] to [2,3]", &y, sh(true, 2, 2, 3), 1.0, 2.0, 3.0, 1.0, 2.0, 3.0);
  CHECK(y.shape.batched);
  ir_tensor_free(&y);
  ir_tensor col = tf(sh(true, 2, 2, 1), 7.0, 8.0);
  y = run(e, 1, &col);
  expect("expand [2,1] to [2,3]", &y, sh(true, 2, 2, 3), 7.0, 7.0, 7.0, 8.0, 8.0, 8.0);
  ir_tensor_free(&y);
  ir_tensor row1 = tf(sh(false, 2, 1, 3), 4.0, 5.0, 6.0); /* a mean over the batch, kept */
  y = run(e, 1, &row1);
  expect("expand [1,3] to [2,3]", &y, sh(true, 2, 2, 3), 4.0, 5.0, 6.0, 4.0, 5.0, 6.0);
  ir_tensor_free(&y);
  ir_tensor k = tf(shape_scalar(), -1.5);
  e.ashape = sh(false, 3, 2, 1, 2);
  y = run(e, 1, &k);
  expect("expand [] to [2,1,2]", &y, sh(false, 3, 2, 1, 2), -1.5, -1.5, -1.5, -1.5);
  ir_tensor_free(&y);
  /* per-channel [2,1,1] over [1,2,2,2] */
  ir_tensor ch = tf(sh(false, 3, 2, 1, 1), 1.0, 2.0);
  e.ashape = sh(true, 4, 1, 2, 2, 2);
  y = run(e, 1, &ch);
  expect("expand [2,1,1] to [1,2,2,2]", &y, sh(true, 4, 1, 2, 2, 2), 1.0, 1.0, 1.0, 1.0, 2.0, 2.0,
         2.0, 2.0);
  ir_tensor_free(&y);

  ir_tensor dy = tf(sh(true, 2, 2, 2), 1.0, 2.0, 3.0, 4.0);
  ir_node u = mk(IR_OP_UNSLICE);
  u.i[0] = 1, u.i[1] = 1, u.i[2] = 3;
  u.ashape = sh(true, 2, 2, 4);
  y = run(u, 1, &dy);
  expect("unslice axis 1 [1,3)", &y, sh(true, 2, 2, 4), 0.0, 1.0, 2.0, 0.0, 0.0, 3.0, 4.0, 0.0);
  ir_tensor_free(&y);
  ir_tensor dr = tf(sh(true, 2, 1, 3), 5.0, 6.0, 7.0);
  u.i[0] = 0, u.i[1] = 1, u.i[2] = 2;
  u.ashape = sh(true, 2, 3, 3);
  y = run(u, 1, &dr);
  expect("unslice axis 0 [1,2)", &y, sh(true, 2, 3, 3), 0.0, 0.0, 0.0, 5.0, 6.0, 7.0, 0.0, 0.0,
         0.0);
  ir_tensor_free(&y);
  /* the whole axis: a copy */
  u.i[0] = 1, u.i[1] = 0, u.i[2] = 2;
  u.ashape = sh(true, 2, 2, 2);
  y = run(u, 1, &dy);
  expect("unslice whole axis", &y, sh(true, 2, 2, 2), 1.0, 2.0, 3.0, 4.0);
  ir_tensor *all[] = {&y, &row, &col, &row1, &k, &ch, &dy, &dr};
  for (size_t j = 0; j < sizeof all / sizeof *all; j++) ir_tensor_free(all[j]);
}

static void test_softmax(void) {
  ir_tensor x = tf(sh(true, 2, 2, 3), 0.0, 0.0, 0.0, 1.0, 2.0, 3.0);
  ir_tensor y = run(mk(IR_OP_SOFTMAX), 1, &x);
  double z = exp(1.0) + exp(2.0) + exp(3.0);
  expect("softmax [2,3]", &y, sh(true, 2, 2, 3), 1 / 3.0, 1 / 3.0, 1 / 3.0, exp(1.0) / z,
         exp(2.0) / z, exp(3.0) / z);
  ir_tensor_free(&y), ir_tensor_free(&x);
  /* rank 1, and huge logits stay finite */
  x = tf(sh(false, 1, 2), 0.0, log(3.0));
  y = run(mk(IR_OP_SOFTMAX), 1, &x);
  expect("softmax [2]", &y, sh(false, 1, 2), 0.25, 0.75);
  ir_tensor_free(&y), ir_tensor_free(&x);
  x = tf(sh(false, 2, 2, 2), 1000.0, 0.0, -1000.0, -1000.0);
  y = run(mk(IR_OP_SOFTMAX), 1, &x);
  expect("softmax saturated", &y, sh(false, 2, 2, 2), 1.0, 0.0, 0.5, 0.5);
  ir_tensor_free(&y), ir_tensor_free(&x);
  /* rank 3: over the last axis only */
  x = tf(sh(false, 3, 2, 1, 2), 0.0, log(4.0), log(2.0), log(2.0));
  y = run(mk(IR_OP_SOFTMAX), 1, &x);
  expect("softmax rank 3", &y, sh(false, 3, 2, 1, 2), 0.2, 0.8, 0.5, 0.5);
  ir_tensor_free(&y), ir_tensor_free(&x);
}

/* ---- adjoint identities: <A x, y> = <x, A^T y> on random data -------------------------- */

static uint64_t lcg_state = 12345;
static double rnd(void) { /* uniform in [-1, 1) */
  lcg_state = lcg_state * 6364136223846793005ULL + 1442695040888963407ULL;
  return (double)(lcg_state >> 11) / 9007199254740992.0 * 2 - 1;
}
static ir_tensor trand(ir_shape s) {
  ir_tensor t = ir_tensor_alloc(IR_F32, s);
  for (int64_t j = 0; j < shape_numel(s); j++) ((float *)t.data)[j] = (float)rnd();
  return t;
}
static double dot(const ir_tensor *a, const ir_tensor *b) {
  double acc = 0;
  if (!a->data || !b->data || !shape_equal(a->shape, b->shape)) return NAN;
  for (int64_t j = 0; j < shape_numel(a->shape); j++) acc += (double)at(a, j) * at(b, j);
  return acc;
}

static void test_adjoint_identities(void) {
  /* conv y = conv(x, w): <y, dy> = <x, conv_grad_x(dy, w)> = <w, conv_grad_w(x, dy)>;
   * k3 s2 p0 on 8x6 and k4 s3 p1 on 9x10 leave rows or columns the conv never reads */
  static const int cs[][5] = {/* k, s, p, H, W */
                               {4, 2, 1, 8, 8}, {3, 1, 1, 5, 6}, {3, 2, 0, 7, 7},
                               {1, 1, 0, 4, 3}, {3, 2, 0, 8, 6}, {4, 3, 1, 9, 10},
                               {5, 1, 2, 4, 4}};
  for (size_t c = 0; c < sizeof cs / sizeof *cs; c++) {
    int k = cs[c][0], s = cs[c][1], p = cs[c][2], H = cs[c][3], W = cs[c][4];
    ir_tensor x = trand(sh(true, 4, 2, 3, H, W)), w = trand(sh(false, 4, 4, 3, k, k));
    ir_tensor y = run(conv(IR_OP_CONV, k, s, p), 2, &x, &w);
    ir_tensor dy = trand(y.shape);
    ir_node gx = conv(IR_OP_CONV_GRAD_X, k, s, p), gw = conv(IR_OP_CONV_GRAD_W, k, s, p);
    gx.ashape = x.shape, gw.ashape = w.shape;
    ir_tensor dx = run(gx, 2, &dy, &w), dw = run(gw, 2, &x, &dy);
    double ref = dot(&y, &dy);
    CHECK_NEAR(dot(&x, &dx), ref, 1e-5, 1e-5);
    CHECK_NEAR(dot(&w, &dw), ref, 1e-5, 1e-5);
    ir_tensor *all[] = {&x, &w, &y, &dy, &dx, &dw};
    for (size_t j = 0; j < sizeof all / sizeof *all; j++) ir_tensor_free(all[j]);

    /* deconv y = deconv(x, w [C,O,k,k]): <y, dy> = <x, conv(dy, w)> = <w, conv_grad_w(dy, x)> */
    x = trand(sh(true, 4, 2, 3, H / 2 + 1, W / 2 + 1)), w = trand(sh(false, 4, 3, 4, k, k));
    ir_node dc = conv(IR_OP_DECONV, k, s, p);
    y = run(dc, 2, &x, &w);
    dy = trand(y.shape);
    dx = run(conv(IR_OP_CONV, k, s, p), 2, &dy, &w);
    gw.ashape = w.shape;
    dw = run(gw, 2, &dy, &x);
    ref = dot(&y, &dy);
    CHECK_NEAR(dot(&x, &dx), ref, 1e-5, 1e-5);
    CHECK_NEAR(dot(&w, &dw), ref, 1e-5, 1e-5);
    for (size_t j = 0; j < sizeof all / sizeof *all; j++) ir_tensor_free(all[j]);
  }

  /* expand and sum: <expand(x), y> = <x, sum of y over the expanded axes> */
  ir_tensor x = trand(sh(false, 3, 3, 1, 4)), y = trand(sh(true, 4, 2, 3, 5, 4));
  ir_node e = mk(IR_OP_EXPAND);
  e.ashape = y.shape;
  ir_tensor ex = run(e, 1, &x);
  ir_node sm = mk(IR_OP_SUM);
  sm.i[0] = 1 | 4, sm.i[1] = 1; /* axes 0 and 2, kept: [1,3,1,4] */
  ir_tensor sy = run(sm, 1, &y);
  ir_node r = mk(IR_OP_RESHAPE);
  r.ashape = x.shape;
  ir_tensor sy3 = run(r, 1, &sy);
  CHECK_NEAR(dot(&ex, &y), dot(&x, &sy3), 1e-5, 1e-5);
  ir_tensor_free(&x), ir_tensor_free(&y), ir_tensor_free(&ex), ir_tensor_free(&sy),
      ir_tensor_free(&sy3);

  /* slice and unslice: <slice(x), dy> = <x, unslice(dy)> */
  x = trand(sh(true, 3, 2, 7, 3));
  ir_node sl = mk(IR_OP_SLICE);
  sl.i[0] = 1, sl.i[1] = 2, sl.i[2] = 6;
  ir_tensor xs = run(sl, 1, &x);
  ir_tensor dy = trand(xs.shape);
  ir_node u = mk(IR_OP_UNSLICE);
  u.i[0] = 1, u.i[1] = 2, u.i[2] = 6;
  u.ashape = x.shape;
  ir_tensor ux = run(u, 1, &dy);
  CHECK_NEAR(dot(&x, &ux), dot(&xs, &dy), 1e-5, 1e-5);
  ir_tensor_free(&x), ir_tensor_free(&xs), ir_tensor_free(&dy), ir_tensor_free(&ux);
}

int main(void) {
  test_unary();
  test_binary();
  test_matmul();
  test_conv();
  test_batchnorm();
  test_shape_ops();
  test_reduce();
  test_onehot();
  test_dropout();
  test_losses();
  test_state();
  test_node_checks();
  test_run();
  test_act_grads();
  test_conv_grads();
  test_batchnorm_grads();
  test_expand_unslice();
  test_softmax();
  test_adjoint_identities();
  return check_done();
}
