/* test_codegen_ops.c: every op, forward and adjoint, compiled alone by the LLVM
 * backend (a function of INPUT nodes, the op and one output) on random operands and
 * compared element by element with the reference interpreter (ir_interp_node).
 *
 * Tolerances: ops lowered through migc_rt_sgemm (matmul, conv, deconv, conv_grad_x,
 * conv_grad_w) accumulate in float in OpenBLAS's blocked order, and col2im adds taps
 * in float, where the interpreter sums in double and rounds once: they must agree to
 * rel 1e-4 / abs 1e-5. Every other op is lowered to compute exactly what the kernel
 * computes (double math and sums in the same order), so it must agree bit for bit. */
#include "check.h"
#include "codegen/codegen.h"
#include "runtime/runtime.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  ir_dtype dt;
  int rank;
  int64_t d[IR_MAX_RANK];
  double lo, hi; /* f32: uniform range; i32: values in [0, hi) */
  double spike;  /* f32: if nonzero, about 1 in 8 elements is +-spike instead */
} operand;

static ir_shape shp(const operand *o) { return shape_make(o->rank, o->d, false); }

static ir_tensor random_tensor(const operand *o, uint32_t stream) {
  ir_tensor t = ir_tensor_alloc(o->dt, shp(o));
  int64_t n = shape_numel(t.shape);
  for (int64_t i = 0; i < n; i++) {
    float u = rng_uniform(1234, stream, 0, (uint64_t)i), s = rng_uniform(1234, stream, 1, (uint64_t)i);
    if (o->dt == IR_I32)
      ((int32_t *)t.data)[i] = (int32_t)(u * o->hi);
    else if (o->spike && s < 1.0f / 8)
      ((float *)t.data)[i] = (float)(s < 1.0f / 16 ? o->spike : -o->spike);
    else
      ((float *)t.data)[i] = (float)(o->lo + (o->hi - o->lo) * u);
  }
  return t;
}

static bool gemm_op(ir_op op) {
  return op == IR_OP_MATMUL || op == IR_OP_CONV || op == IR_OP_DECONV ||
         op == IR_OP_CONV_GRAD_X || op == IR_OP_CONV_GRAD_W;
}

static bool covered[IR_OP_COUNT];

/* A stand-in for the other processes of a data-parallel run: adds k+1 to element k. */
static void add_index(float *buf, int64_t n, void *ctx) {
  (void)ctx;
  for (int64_t k = 0; k < n; k++) buf[k] += (float)(k + 1);
}

/* Compiles `op` over operands ops[0..nin) with attributes a and compares with the
 * interpreter. */
static void op_case(const char *what, ir_op op, int nin, const operand *ops, ir_attrs a) {
  ir_module *m = ir_module_new("op");
  ir_func *f = ir_add_func(m, "f", true);
  f->inputs = calloc((size_t)nin + 1, sizeof *f->inputs);
  f->ninputs = nin;
  int ids[8];
  char err[512];
  int bad;
  for (int j = 0; j < nin; j++) {
    ir_attrs ia = {0};
    ia.i[0] = j;
    ia.ashape = shp(&ops[j]);
    ia.dtype = ops[j].dt;
    ids[j] = ir_emit(f, IR_OP_INPUT, NULL, 0, &ia, (ir_span){0}, err, sizeof err, &bad);
    CHECK_MSG(ids[j] >= 0, "%s: input %d: %s", what, j, err);
  }
  int y = ir_emit(f, op, ids, nin, &a, (ir_span){0}, err, sizeof err, &bad);
  CHECK_MSG(y >= 0, "%s: %s", what, err);
  if (y < 0) {
    ir_module_free(m);
    return;
  }
  ir_add_output(f, "y", y);
  ir_tensor in[8];
  const ir_tensor *inp[8];
  void *inptr[8];
  for (int j = 0; j < nin; j++) {
    in[j] = random_tensor(&ops[j], (uint32_t)(100 + j));
    inp[j] = &in[j];
    inptr[j] = in[j].data;
  }
  ir_interp it = {.m = m};
  ir_tensor ref;
  int st = ir_interp_node(&it, &f->nodes[y], inp, &ref);
  CHECK_MSG(st == 0, "%s: interpreter: %s", what, it.err);

  cg_program *p = cg_compile(m, NULL, err, sizeof err);
  CHECK_MSG(p != NULL, "%s: compile: %s", what, err);
  if (p && st == 0) {
    cg_entry fn = cg_lookup(p, "f");
    CHECK(fn != NULL);
    int64_t count = shape_numel(f->nodes[y].shape);
    float *got = calloc((size_t)count + 1, 4);
    void *outs[1] = {got};
    void *scratch = aligned_alloc(64, (cg_scratch_size(p, "f") + 64) & ~(size_t)63);
    int rc = fn(NULL, inptr, outs, scratch);
    CHECK_MSG(rc == 0, "%s: compiled function returned %d", what, rc);
    double rtol = gemm_op(op) ? 1e-4 : 0, atol = gemm_op(op) ? 1e-5 : 0, worst = 0;
    int bad_at = -1;
    for (int64_t i = 0; i < count; i++) {
      double g, r;
      if (f->nodes[y].dtype == IR_I32) {
        g = ((int32_t *)got)[i], r = ((int32_t *)ref.data)[i];
      } else {
        g = got[i], r = ((float *)ref.data)[i];
      }
      double e = fabs(g - r);
      if (e > worst) worst = e;
      if (!(e <= atol + rtol * fabs(r)) && !(isnan(g) && isnan(r)) && bad_at < 0) bad_at = (int)i;
    }
    CHECK_MSG(bad_at < 0, "%s: element %d: %.9g vs %.9g (max abs err %.3g)", what, bad_at,
              bad_at >= 0 ? (double)got[bad_at] : 0.0,
              bad_at >= 0 ? (double)((float *)ref.data)[bad_at] : 0.0, worst);
    if (bad_at < 0) covered[op] = true;
    free(got);
    free(scratch);
    cg_free(p);
  }
  if (st == 0) ir_tensor_free(&ref);
  for (int j = 0; j < nin; j++) ir_tensor_free(&in[j]);
  ir_module_free(m);
}

#define F(lo, hi, ...) {IR_F32, sizeof((int64_t[]){__VA_ARGS__}) / 8, {__VA_ARGS__}, lo, hi, 0}
#define I(k, ...) {IR_I32, sizeof((int64_t[]){__VA_ARGS__}) / 8, {__VA_ARGS__}, 0, k, 0}

static ir_attrs attrs_i(int64_t a, int64_t b, int64_t c) {
  ir_attrs at = {0};
  at.i[0] = a, at.i[1] = b, at.i[2] = c;
  return at;
}

static ir_attrs attrs_f(double x) {
  ir_attrs at = {0};
  at.f[0] = x;
  return at;
}

static ir_attrs with_shape(ir_attrs at, int rank, const int64_t *d) {
  at.ashape = shape_make(rank, d, false);
  return at;
}

static void test_elementwise(void) {
  operand x[1] = {F(-3, 3, 4, 37)}, pos[1] = {F(0.05, 4, 4, 37)};
  const ir_op un[] = {IR_OP_NEG,      IR_OP_RELU, IR_OP_TANH, IR_OP_SIGMOID,
                      IR_OP_SOFTPLUS, IR_OP_EXP,  IR_OP_SIN,  IR_OP_COS};
  for (size_t k = 0; k < sizeof un / sizeof un[0]; k++) op_case(ir_ops[un[k]].name, un[k], 1, x, (ir_attrs){0});
  op_case("lrelu", IR_OP_LRELU, 1, x, attrs_f(0.2));
  op_case("log", IR_OP_LOG, 1, pos, (ir_attrs){0});
  op_case("sqrt", IR_OP_SQRT, 1, pos, (ir_attrs){0});
  operand same[2] = {F(-2, 2, 3, 4, 5), F(0.5, 2, 3, 4, 5)};
  operand bc[2] = {F(-2, 2, 3, 4, 5), F(0.5, 2, 4, 1)};
  operand bc2[2] = {F(-2, 2, 1, 5), F(0.5, 2, 3, 4, 1)};
  const ir_op bin[] = {IR_OP_ADD, IR_OP_SUB, IR_OP_MUL, IR_OP_DIV};
  for (size_t k = 0; k < 4; k++) {
    op_case(ir_ops[bin[k]].name, bin[k], 2, same, (ir_attrs){0});
    op_case(ir_ops[bin[k]].name, bin[k], 2, bc, (ir_attrs){0});
    op_case(ir_ops[bin[k]].name, bin[k], 2, bc2, (ir_attrs){0});
  }
  operand g[2] = {F(-1, 1, 5, 7), F(-1, 1, 5, 7)};
  op_case("relu_grad", IR_OP_RELU_GRAD, 2, g, (ir_attrs){0});
  op_case("lrelu_grad", IR_OP_LRELU_GRAD, 2, g, attrs_f(0.2));
  op_case("maximum", IR_OP_MAXIMUM, 2, same, (ir_attrs){0});
  op_case("maximum", IR_OP_MAXIMUM, 2, bc, (ir_attrs){0});
  operand g3[3] = {F(-1, 1, 5, 7), F(-1, 1, 5, 7), F(-1, 1, 5, 7)};
  op_case("max_grad", IR_OP_MAX_GRAD, 3, g3, (ir_attrs){0});
  op_case("max_grad", IR_OP_MAX_GRAD, 3, g3, attrs_i(1, 0, 0));
  operand keep[3] = {F(0.5, 1, 1), F(-1, 1, 5, 7), F(-1, 1, 5, 7)};
  op_case("select", IR_OP_SELECT, 3, keep, (ir_attrs){0});
  keep[0] = (operand)F(0, 0, 1); /* the condition zero: b */
  op_case("select", IR_OP_SELECT, 3, keep, (ir_attrs){0});
  operand e[1] = {F(-1, 1, 3, 1)};
  int64_t to[3] = {2, 3, 4};
  op_case("expand", IR_OP_EXPAND, 1, e, with_shape((ir_attrs){0}, 3, to));
  op_case("const", IR_OP_CONST, 0, NULL, attrs_f(2.5));
}

static void test_gemm(void) {
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      operand ab[2] = {F(-1, 1, 7, 13), F(-1, 1, 13, 5)};
      if (ta) ab[0].d[0] = 13, ab[0].d[1] = 7;
      if (tb) ab[1].d[0] = 5, ab[1].d[1] = 13;
      op_case("matmul", IR_OP_MATMUL, 2, ab, attrs_i(ta, tb, 0));
    }
  operand big[2] = {F(-1, 1, 64, 300), F(-1, 1, 300, 33)};
  op_case("matmul 64x300x33", IR_OP_MATMUL, 2, big, attrs_i(0, 0, 0));
}

static void test_conv(void) {
  operand c1[2] = {F(-1, 1, 2, 3, 9, 9), F(-1, 1, 4, 3, 3, 3)};
  op_case("conv k3 s2 p1", IR_OP_CONV, 2, c1, attrs_i(3, 2, 1));
  op_case("conv k3 s1 p0", IR_OP_CONV, 2, c1, attrs_i(3, 1, 0));
  operand c2[2] = {F(-1, 1, 2, 3, 8, 8), F(-1, 1, 5, 3, 4, 4)};
  op_case("conv k4 s2 p1", IR_OP_CONV, 2, c2, attrs_i(4, 2, 1));
  operand d1[2] = {F(-1, 1, 2, 4, 4, 4), F(-1, 1, 4, 3, 4, 4)};
  op_case("deconv k4 s2 p1", IR_OP_DECONV, 2, d1, attrs_i(4, 2, 1));
  operand d2[2] = {F(-1, 1, 2, 4, 5, 5), F(-1, 1, 4, 2, 3, 3)};
  op_case("deconv k3 s1 p1", IR_OP_DECONV, 2, d2, attrs_i(3, 1, 1));
  /* conv k3 s2 p1 on [2,3,9,9] gives [2,4,5,5] */
  int64_t xs[4] = {2, 3, 9, 9}, ws[4] = {4, 3, 3, 3};
  operand gx[2] = {F(-1, 1, 2, 4, 5, 5), F(-1, 1, 4, 3, 3, 3)};
  op_case("conv_grad_x", IR_OP_CONV_GRAD_X, 2, gx, with_shape(attrs_i(3, 2, 1), 4, xs));
  operand gw[2] = {F(-1, 1, 2, 3, 9, 9), F(-1, 1, 2, 4, 5, 5)};
  op_case("conv_grad_w", IR_OP_CONV_GRAD_W, 2, gw, with_shape(attrs_i(3, 2, 1), 4, ws));
  int64_t xs2[4] = {2, 3, 8, 8}, ws2[4] = {5, 3, 4, 4};
  operand gx2[2] = {F(-1, 1, 2, 5, 4, 4), F(-1, 1, 5, 3, 4, 4)};
  op_case("conv_grad_x k4", IR_OP_CONV_GRAD_X, 2, gx2, with_shape(attrs_i(4, 2, 1), 4, xs2));
  operand gw2[2] = {F(-1, 1, 2, 3, 8, 8), F(-1, 1, 2, 5, 4, 4)};
  op_case("conv_grad_w k4", IR_OP_CONV_GRAD_W, 2, gw2, with_shape(attrs_i(4, 2, 1), 4, ws2));
}

/* Windows that lie partly or wholly in the padding (the lowering copies and adds only
 * each tap's inside range): padding as large as the kernel or larger, so that whole
 * window rows and columns read padding only; a stride larger than the kernel, so that
 * deconv leaves pixels no tap reaches; a 1x1 kernel; a kernel wider than the image. */
static void test_conv_padding(void) {
  operand a[2] = {F(-1, 1, 2, 3, 7, 7), F(-1, 1, 4, 3, 3, 3)};
  op_case("conv k3 s2 p2", IR_OP_CONV, 2, a, attrs_i(3, 2, 2)); /* [2,4,5,5] */
  operand b[2] = {F(-1, 1, 1, 2, 2, 3), F(-1, 1, 3, 2, 3, 3)};
  op_case("conv k3 s1 p3", IR_OP_CONV, 2, b, attrs_i(3, 1, 3)); /* [1,3,6,7] */
  operand c5[2] = {F(-1, 1, 2, 2, 5, 6), F(-1, 1, 3, 2, 5, 5)};
  op_case("conv k5 s3 p4", IR_OP_CONV, 2, c5, attrs_i(5, 3, 4)); /* [2,3,3,4] */
  operand c1[2] = {F(-1, 1, 2, 3, 5, 5), F(-1, 1, 2, 3, 1, 1)};
  op_case("conv k1 s2 p1", IR_OP_CONV, 2, c1, attrs_i(1, 2, 1)); /* [2,2,4,4] */
  operand wide[2] = {F(-1, 1, 1, 2, 3, 2), F(-1, 1, 2, 2, 6, 6)};
  op_case("conv k6 s1 p2", IR_OP_CONV, 2, wide, attrs_i(6, 1, 2)); /* [1,2,2,1] */
  operand d1[2] = {F(-1, 1, 2, 3, 4, 4), F(-1, 1, 3, 2, 3, 3)};
  op_case("deconv k3 s2 p2", IR_OP_DECONV, 2, d1, attrs_i(3, 2, 2)); /* [2,2,5,5] */
  operand d2[2] = {F(-1, 1, 2, 3, 4, 3), F(-1, 1, 3, 2, 2, 2)};
  op_case("deconv k2 s3 p0", IR_OP_DECONV, 2, d2, attrs_i(2, 3, 0)); /* [2,2,11,8] */
  operand d3[2] = {F(-1, 1, 1, 2, 3, 3), F(-1, 1, 2, 3, 5, 5)};
  op_case("deconv k5 s1 p3", IR_OP_DECONV, 2, d3, attrs_i(5, 1, 3)); /* [1,3,1,1] */
  /* the adjoints of the first three convs */
  int64_t xa[4] = {2, 3, 7, 7}, wa[4] = {4, 3, 3, 3};
  operand gxa[2] = {F(-1, 1, 2, 4, 5, 5), F(-1, 1, 4, 3, 3, 3)};
  op_case("conv_grad_x k3 s2 p2", IR_OP_CONV_GRAD_X, 2, gxa, with_shape(attrs_i(3, 2, 2), 4, xa));
  operand gwa[2] = {F(-1, 1, 2, 3, 7, 7), F(-1, 1, 2, 4, 5, 5)};
  op_case("conv_grad_w k3 s2 p2", IR_OP_CONV_GRAD_W, 2, gwa, with_shape(attrs_i(3, 2, 2), 4, wa));
  int64_t xb[4] = {1, 2, 2, 3}, wb[4] = {3, 2, 3, 3};
  operand gxb[2] = {F(-1, 1, 1, 3, 6, 7), F(-1, 1, 3, 2, 3, 3)};
  op_case("conv_grad_x k3 s1 p3", IR_OP_CONV_GRAD_X, 2, gxb, with_shape(attrs_i(3, 1, 3), 4, xb));
  operand gwb[2] = {F(-1, 1, 1, 2, 2, 3), F(-1, 1, 1, 3, 6, 7)};
  op_case("conv_grad_w k3 s1 p3", IR_OP_CONV_GRAD_W, 2, gwb, with_shape(attrs_i(3, 1, 3), 4, wb));
  int64_t xc[4] = {2, 2, 5, 6}, wc[4] = {3, 2, 5, 5};
  operand gxc[2] = {F(-1, 1, 2, 3, 3, 4), F(-1, 1, 3, 2, 5, 5)};
  op_case("conv_grad_x k5 s3 p4", IR_OP_CONV_GRAD_X, 2, gxc, with_shape(attrs_i(5, 3, 4), 4, xc));
  operand gwc[2] = {F(-1, 1, 2, 2, 5, 6), F(-1, 1, 2, 3, 3, 4)};
  op_case("conv_grad_w k5 s3 p4", IR_OP_CONV_GRAD_W, 2, gwc, with_shape(attrs_i(5, 3, 4), 4, wc));
  /* image rows wider than one vector of col2im's row adds (16 pixels): 20 = 16 + 4,
   * 35 = 16 + 16 + 3 */
  operand dw[2] = {F(-1, 1, 2, 2, 3, 10), F(-1, 1, 2, 3, 4, 4)};
  op_case("deconv k4 s2 p1 wide", IR_OP_DECONV, 2, dw, attrs_i(4, 2, 1)); /* [2,3,6,20] */
  int64_t xw[4] = {2, 2, 3, 35};
  operand gxw[2] = {F(-1, 1, 2, 3, 3, 35), F(-1, 1, 3, 2, 5, 5)};
  op_case("conv_grad_x k5 s1 p2 wide", IR_OP_CONV_GRAD_X, 2, gxw, with_shape(attrs_i(5, 1, 2), 4, xw));
  int64_t xv[4] = {1, 2, 4, 20};
  operand gxv[2] = {F(-1, 1, 1, 2, 2, 10), F(-1, 1, 2, 2, 3, 3)};
  op_case("conv_grad_x k3 s2 p1 wide", IR_OP_CONV_GRAD_X, 2, gxv, with_shape(attrs_i(3, 2, 1), 4, xv));
}

static void test_batchnorm(void) {
  operand b4[3] = {F(-2, 3, 6, 3, 4, 4), F(0.5, 1.5, 3), F(-1, 1, 3)};
  operand b2[3] = {F(-2, 3, 8, 5), F(0.5, 1.5, 5), F(-1, 1, 5)};
  op_case("batchnorm 4d", IR_OP_BATCHNORM, 3, b4, attrs_f(1e-5));
  op_case("batchnorm 2d", IR_OP_BATCHNORM, 3, b2, attrs_f(1e-5));
  operand inf[5] = {F(-2, 3, 6, 3, 4, 4), F(0.5, 1.5, 3), F(-1, 1, 3), F(-1, 1, 3), F(0.1, 2, 3)};
  op_case("batchnorm_infer", IR_OP_BATCHNORM_INFER, 5, inf, attrs_f(1e-5));
  operand g4[3] = {F(-2, 3, 6, 3, 4, 4), F(0.5, 1.5, 3), F(-1, 1, 6, 3, 4, 4)};
  operand g2[3] = {F(-2, 3, 8, 5), F(0.5, 1.5, 5), F(-1, 1, 8, 5)};
  op_case("batchnorm_grad 4d", IR_OP_BATCHNORM_GRAD, 3, g4, attrs_f(1e-5));
  op_case("batchnorm_grad 2d", IR_OP_BATCHNORM_GRAD, 3, g2, attrs_f(1e-5));
  operand gg[2] = {F(-2, 3, 6, 3, 4, 4), F(-1, 1, 6, 3, 4, 4)};
  op_case("batchnorm_grad_gamma", IR_OP_BATCHNORM_GRAD_GAMMA, 2, gg, attrs_f(1e-5));
  /* the dense layout goes in tiles of 256 channels (lower_batchnorm.c): 600 channels
   * are three tiles, the last one partial; [40, 3300] is 13 tiles, split over the
   * runtime's threads in blocks. Each channel's sums keep their order: bit for bit. */
  operand t2[3] = {F(-2, 3, 9, 600), F(0.5, 1.5, 600), F(-1, 1, 600)};
  operand tg2[3] = {F(-2, 3, 9, 600), F(0.5, 1.5, 600), F(-1, 1, 9, 600)};
  operand tgg2[2] = {F(-2, 3, 9, 600), F(-1, 1, 9, 600)};
  op_case("batchnorm 2d tiles", IR_OP_BATCHNORM, 3, t2, attrs_f(1e-5));
  op_case("batchnorm_grad 2d tiles", IR_OP_BATCHNORM_GRAD, 3, tg2, attrs_f(1e-5));
  op_case("batchnorm_grad_gamma 2d tiles", IR_OP_BATCHNORM_GRAD_GAMMA, 2, tgg2, attrs_f(1e-5));
  /* [N,C,H,W] goes in groups of 8, 4 or 2 channels dividing C (C = 8, 12, 6; C = 3
   * above stays per channel); [32,64,8,8] is split over the runtime's threads */
  for (int k = 0; k < 4; k++) {
    int64_t ch = (int64_t[]){8, 12, 6, 64}[k], nb = k == 3 ? 32 : 5, hw = k == 3 ? 8 : 3;
    operand q[3] = {F(-2, 3, nb, ch, hw, hw), F(0.5, 1.5, ch), F(-1, 1, ch)};
    operand qg[3] = {F(-2, 3, nb, ch, hw, hw), F(0.5, 1.5, ch), F(-1, 1, nb, ch, hw, hw)};
    operand qgg[2] = {F(-2, 3, nb, ch, hw, hw), F(-1, 1, nb, ch, hw, hw)};
    op_case("batchnorm 4d channels", IR_OP_BATCHNORM, 3, q, attrs_f(1e-5));
    op_case("batchnorm_grad 4d channels", IR_OP_BATCHNORM_GRAD, 3, qg, attrs_f(1e-5));
    op_case("batchnorm_grad_gamma 4d channels", IR_OP_BATCHNORM_GRAD_GAMMA, 2, qgg, attrs_f(1e-5));
  }
  operand s2[3] = {F(-2, 3, 40, 3300), F(0.5, 1.5, 3300), F(-1, 1, 3300)};
  operand sg2[3] = {F(-2, 3, 40, 3300), F(0.5, 1.5, 3300), F(-1, 1, 40, 3300)};
  operand sgg2[2] = {F(-2, 3, 40, 3300), F(-1, 1, 40, 3300)};
  op_case("batchnorm 2d split", IR_OP_BATCHNORM, 3, s2, attrs_f(1e-5));
  op_case("batchnorm_grad 2d split", IR_OP_BATCHNORM_GRAD, 3, sg2, attrs_f(1e-5));
  op_case("batchnorm_grad_gamma 2d split", IR_OP_BATCHNORM_GRAD_GAMMA, 2, sgg2, attrs_f(1e-5));
  /* sync batchnorm (ranks = 3): every per-channel sum goes through the transport, here
   * one that adds k+1 to element k as other processes would; the backends must agree */
  ir_attrs sync = attrs_f(1e-5);
  sync.i[0] = 3;
  collective_install(add_index, NULL, 3, 0);
  op_case("batchnorm 4d sync", IR_OP_BATCHNORM, 3, b4, sync);
  op_case("batchnorm 2d sync", IR_OP_BATCHNORM, 3, b2, sync);
  op_case("batchnorm_grad 4d sync", IR_OP_BATCHNORM_GRAD, 3, g4, sync);
  op_case("batchnorm_grad 2d sync", IR_OP_BATCHNORM_GRAD, 3, g2, sync);
  op_case("batchnorm_grad_gamma sync", IR_OP_BATCHNORM_GRAD_GAMMA, 2, gg, sync);
  collective_install(NULL, NULL, 1, 0);
}

static void test_shape_and_reduce(void) {
  operand r[1] = {F(-1, 1, 2, 3, 4)};
  int64_t to[2] = {6, 4};
  op_case("reshape", IR_OP_RESHAPE, 1, r, with_shape((ir_attrs){0}, 2, to));
  operand cc[3] = {F(-1, 1, 2, 3, 4), F(-1, 1, 2, 2, 4), F(-1, 1, 2, 1, 4)};
  op_case("concat axis 1", IR_OP_CONCAT, 3, cc, attrs_i(1, 0, 0));
  operand cc0[2] = {F(-1, 1, 2, 3), F(-1, 1, 4, 3)};
  op_case("concat axis 0", IR_OP_CONCAT, 2, cc0, attrs_i(0, 0, 0));
  operand sl[1] = {F(-1, 1, 2, 5, 3)};
  op_case("slice", IR_OP_SLICE, 1, sl, attrs_i(1, 1, 3));
  operand us[1] = {F(-1, 1, 2, 2, 3)};
  int64_t full[3] = {2, 5, 3};
  op_case("unslice", IR_OP_UNSLICE, 1, us, with_shape(attrs_i(1, 1, 3), 3, full));
  operand x[1] = {F(-1, 2, 3, 4, 5)};
  const ir_op red[] = {IR_OP_SUM, IR_OP_MEAN, IR_OP_VAR};
  for (int k = 0; k < 3; k++) {
    op_case(ir_ops[red[k]].name, red[k], 1, x, attrs_i(5, 0, 0));
    op_case(ir_ops[red[k]].name, red[k], 1, x, attrs_i(5, 1, 0));
    op_case(ir_ops[red[k]].name, red[k], 1, x, attrs_i(1, 0, 0));
    op_case(ir_ops[red[k]].name, red[k], 1, x, attrs_i(7, 0, 0));
  }
}

/* Reductions over every kind of mask: the compiled loops take outputs in groups along
 * the last kept axis (lower_reduce.c), but each output must add its elements in the
 * interpreter's order. Spikes of +-2^40 make the double sums depend on that order: the
 * small terms added while a spike is in the sum lose bits, which show in the float
 * result when its spikes cancel. Sizes leave partial groups; the large shapes are
 * split over the threads. */
static void test_reduce_orders(void) {
  static const struct {
    int rank;
    int64_t d[IR_MAX_RANK], mask;
  } cases[] = {
      {2, {37, 150}, 1},          /* kept axis contiguous (vector lanes), 2 * 64 + 22 */
      {2, {37, 19}, 2},           /* kept axis outermost (strided lanes), 4 * 8 + 5 */
      {4, {5, 11, 3, 7}, 13},     /* channels of NCHW */
      {4, {5, 11, 3, 7}, 5},      /* kept 1 and 3, reduced between */
      {4, {5, 11, 3, 7}, 10},     /* kept 0 and 2, reduced innermost */
      {4, {4, 1, 6, 1}, 4},       /* kept axes of size 1 after the last long one */
      {3, {6, 5, 7}, 7},          /* everything: one chain */
      {3, {6, 5, 7}, 0},          /* nothing (var: 0/0) */
      {6, {2, 3, 4, 3, 5, 2}, 42},
      {6, {2, 3, 4, 3, 5, 2}, 21},
      {4, {64, 48, 7, 7}, 13},    /* split over threads */
      {2, {300, 1000}, 1},
      {2, {300, 1000}, 2},
  };
  const ir_op red[] = {IR_OP_SUM, IR_OP_MEAN, IR_OP_VAR};
  for (int threads = 1; threads <= 2; threads++) {
    migc_rt_set_threads(threads);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
      operand x = {IR_F32, cases[c].rank, {0}, -1, 2, 0x1p40};
      memcpy(x.d, cases[c].d, sizeof x.d);
      for (int k = 0; k < 3; k++) {
        char what[96];
        snprintf(what, sizeof what, "%s mask %lld case %zu, %d threads", ir_ops[red[k]].name,
                 (long long)cases[c].mask, c, threads);
        op_case(what, red[k], 1, &x, attrs_i(cases[c].mask, 0, 0));
      }
    }
  }
  migc_rt_set_threads(1);
}

static void test_losses_and_random(void) {
  operand oh[1] = {I(4, 6)};
  op_case("onehot", IR_OP_ONEHOT, 1, oh, attrs_i(4, 0, 0));
  operand dr[2] = {F(-1, 1, 4, 50), I(1, 2)};
  ir_attrs da = attrs_f(0.3);
  da.i[0] = 1;
  op_case("dropout", IR_OP_DROPOUT, 2, dr, da);
  operand bce[2] = {F(-4, 4, 6, 3), F(0, 1, 6, 3)};
  op_case("bce_logits", IR_OP_BCE_LOGITS, 2, bce, (ir_attrs){0});
  operand bce1[2] = {F(-4, 4, 6, 1), F(0, 1, 1)};
  op_case("bce_logits broadcast", IR_OP_BCE_LOGITS, 2, bce1, (ir_attrs){0});
  operand ce[2] = {F(-3, 3, 6, 5), I(5, 6)};
  op_case("softmax_ce", IR_OP_SOFTMAX_CE, 2, ce, (ir_attrs){0});
  op_case("info_categorical", IR_OP_INFO_CATEGORICAL, 2, ce, (ir_attrs){0});
  operand gn[2] = {F(-1, 1, 6, 3), F(-1, 1, 6, 3)};
  op_case("gaussian_nll", IR_OP_GAUSSIAN_NLL, 2, gn, attrs_f(1.0));
  op_case("gaussian_nll std 0.5", IR_OP_GAUSSIAN_NLL, 2, gn, attrs_f(0.5));
  operand sm[1] = {F(-3, 3, 4, 6)};
  op_case("softmax", IR_OP_SOFTMAX, 1, sm, (ir_attrs){0});
  /* allreduce: alone (no transport: x * scale), and through a stand-in transport that
   * adds k+1 to element k (another process's values), which both backends must call */
  operand ar[1] = {F(-3, 3, 37, 1)};
  op_case("allreduce alone", IR_OP_ALLREDUCE, 1, ar, attrs_f(0.25));
  collective_install(add_index, NULL, 2, 0);
  op_case("allreduce", IR_OP_ALLREDUCE, 1, ar, attrs_f(0.5));
  collective_install(NULL, NULL, 1, 0);
}

/* cg_dump_llvm: the IR before and after O3 and the target it was made for. */
static void test_dump(void) {
  ir_module *m = ir_module_new("dump");
  ir_func *f = ir_add_func(m, "f", true);
  f->inputs = calloc(3, sizeof *f->inputs);
  f->ninputs = 2;
  char err[512];
  int bad, ids[2];
  for (int j = 0; j < 2; j++) {
    ir_attrs ia = {0};
    int64_t d[2] = {16, 16};
    ia.i[0] = j;
    ia.ashape = shape_make(2, d, false);
    ids[j] = ir_emit(f, IR_OP_INPUT, NULL, 0, &ia, (ir_span){0}, err, sizeof err, &bad);
  }
  ir_attrs a = {0};
  ir_add_output(f, "y", ir_emit(f, IR_OP_MATMUL, ids, 2, &a, (ir_span){0}, err, sizeof err, &bad));
  cg_program *p = cg_compile(m, &(cg_options){.keep_ir = true}, err, sizeof err);
  CHECK_MSG(p != NULL, "%s", err);
  for (int opt = 0; p && opt < 2; opt++) {
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    CHECK(cg_dump_llvm(p, mem, opt == 1));
    fclose(mem);
    CHECK(buf && strstr(buf, "; target cpu: ") && strstr(buf, "; target features: "));
    CHECK(buf && strstr(buf, "define i32 @migc_fn_f(") && strstr(buf, "@migc_rt_sgemm"));
    free(buf);
  }
  cg_free(p);
  p = cg_compile(m, NULL, err, sizeof err);
  CHECK(p && !cg_dump_llvm(p, stdout, false)); /* nothing kept */
  cg_free(p);
  ir_module_free(m);
}

int main(void) {
  test_dump();
  test_elementwise();
  test_gemm();
  test_conv();
  test_conv_padding();
  test_batchnorm();
  test_shape_and_reduce();
  test_reduce_orders();
  test_losses_and_random();
  /* every op but the state ops (covered by test_codegen_models) and input */
  for (int op = 0; op < IR_OP_COUNT; op++) {
    if (op == IR_OP_INPUT || op == IR_OP_LOAD || op == IR_OP_STORE) continue;
    CHECK_MSG(covered[op], "op %s has no passing codegen test", ir_ops[op].name);
  }
  return check_done();
}
