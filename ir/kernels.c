/* kernels.c: the interpreter kernel of every op (the `interp` column of op_table.c).
 *
 * This is migc's reference: the JIT and generated code are tested against it, so it
 * is written to be obviously right rather than fast. Plain loops over C-order arrays,
 * the shapes of each in a comment, sums accumulated in double. Semantics follow
 * PyTorch (tests/golden-ops holds its values).
 *
 * `in[j]` are the operand tensors and `out` is already allocated with n's dtype and
 * shape and zero-filled; the interpreter has checked that the operand shapes agree
 * with n's shape rule, so kernels index without re-checking shapes.
 *
 * The file is written once over a real type KREAL and compiled twice: here with
 * KREAL = float, giving kernel_<op> (the op table's kernels), and by kernels64.c with
 * KREAL = double, giving kernel64_<op> for the interpreter's f64 mode, whose f32
 * values are IR_F64 tensors and whose state is it->state64. Integer operands (labels,
 * codes, seeds, the step counter) are int32 in both. Whatever the type, results are
 * rounded to KREAL once, binary ops compute in KREAL, and sums accumulate in double. */
#include "ir/op_impl.h"
#include "runtime/runtime.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#ifndef KREAL
#define KREAL float
#define KNAME(op) kernel_##op
#define KSTATE state /* the ir_interp field holding the state */
#define KF64 0
#endif

#define FP(t) ((KREAL *)(t)->data)
#define I32(t) ((int32_t *)(t)->data)

/* Bytes per element of a tensor: 8 for the f64 mode's reals, 4 otherwise. */
static size_t esize(const ir_tensor *t) { return t->dtype == IR_F64 ? 8 : 4; }

__attribute__((format(printf, 2, 3))) static int kfail(ir_interp *it, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(it->err, sizeof it->err, fmt, ap);
  va_end(ap);
  return 1;
}

/* ---- sources and effects ---------------------------------------------------------- */

/* out is [] */
KERNEL(KNAME(const)) {
  (void)it, (void)in;
  FP(out)[0] = (KREAL)n->f[0];
  return 0;
}

/* The variable's slice of the flat state buffer, where it->m laid it out. */
static int state_slice(ir_interp *it, const ir_node *n, const ir_tensor *val, int64_t *off) {
  if (!it->m || !it->KSTATE) return kfail(it, "no module state to access");
  if (n->var < 0 || n->var >= it->m->nvars) return kfail(it, "no state variable %d", n->var);
  const ir_var *v = &it->m->vars[n->var];
  int64_t count = shape_numel(v->shape);
  if (count != shape_numel(val->shape))
    return kfail(it, "variable %s has %lld elements, the value %lld", v->name,
                 (long long)count, (long long)shape_numel(val->shape));
  if (v->offset < 0 || v->offset + count > it->m->state_size)
    return kfail(it, "variable %s lies outside the state buffer", v->name);
  *off = v->offset;
  return 0;
}

/* out is the variable's shape. State elements are KREALs whatever the dtype: with
 * floats an i32 variable's bits alias them (4 bytes each), with doubles (f64 mode) its
 * elements hold the integer values. */
KERNEL(KNAME(load)) {
  (void)in;
  int64_t off, count = shape_numel(out->shape);
  if (state_slice(it, n, out, &off)) return 1;
  const KREAL *st = it->KSTATE + off;
  if (KF64 && out->dtype == IR_I32)
    for (int64_t j = 0; j < count; j++) I32(out)[j] = (int32_t)st[j];
  else
    memcpy(out->data, st, (size_t)count * sizeof(KREAL));
  return 0;
}

/* in[0] and out are the variable's shape; the value also passes through to out */
KERNEL(KNAME(store)) {
  int64_t off, count = shape_numel(in[0]->shape);
  if (state_slice(it, n, in[0], &off)) return 1;
  KREAL *st = it->KSTATE + off;
  if (KF64 && in[0]->dtype == IR_I32)
    for (int64_t j = 0; j < count; j++) st[j] = (KREAL)I32(in[0])[j];
  else
    memcpy(st, in[0]->data, (size_t)count * sizeof(KREAL));
  memcpy(out->data, in[0]->data, (size_t)count * esize(in[0]));
  return 0;
}

/* ---- elementwise unary: x and out have the same shape ------------------------------- */

static double f_neg(double x, double a) { (void)a; return -x; }
static double f_relu(double x, double a) { (void)a; return x > 0 ? x : 0; }
static double f_lrelu(double x, double slope) { return x > 0 ? x : slope * x; }
static double f_tanh(double x, double a) { (void)a; return tanh(x); }
/* exp of a non-positive number only, so neither branch overflows */
static double f_sigmoid(double x, double a) {
  (void)a;
  if (x >= 0) return 1 / (1 + exp(-x));
  double e = exp(x);
  return e / (1 + e);
}
/* log(1 + e^x) = max(x,0) + log1p(e^-|x|): finite for every finite x */
static double f_softplus(double x, double a) { (void)a; return fmax(x, 0) + log1p(exp(-fabs(x))); }
static double f_exp(double x, double a) { (void)a; return exp(x); }
static double f_log(double x, double a) { (void)a; return log(x); }
static double f_sqrt(double x, double a) { (void)a; return sqrt(x); }
static double f_sin(double x, double a) { (void)a; return sin(x); }
static double f_cos(double x, double a) { (void)a; return cos(x); }

/* y[j] = f(x[j]), computed in double and rounded once */
static int unary(const ir_tensor *x, ir_tensor *out, double (*f)(double, double), double a) {
  const KREAL *xs = FP(x);
  KREAL *y = FP(out);
  int64_t count = shape_numel(out->shape);
  for (int64_t j = 0; j < count; j++) y[j] = (KREAL)f(xs[j], a);
  return 0;
}

KERNEL(KNAME(neg)) { (void)it, (void)n; return unary(in[0], out, f_neg, 0); }
KERNEL(KNAME(relu)) { (void)it, (void)n; return unary(in[0], out, f_relu, 0); }
KERNEL(KNAME(lrelu)) { (void)it; return unary(in[0], out, f_lrelu, n->f[0]); }
KERNEL(KNAME(tanh)) { (void)it, (void)n; return unary(in[0], out, f_tanh, 0); }
KERNEL(KNAME(sigmoid)) { (void)it, (void)n; return unary(in[0], out, f_sigmoid, 0); }
KERNEL(KNAME(softplus)) { (void)it, (void)n; return unary(in[0], out, f_softplus, 0); }
KERNEL(KNAME(exp)) { (void)it, (void)n; return unary(in[0], out, f_exp, 0); }
KERNEL(KNAME(log)) { (void)it, (void)n; return unary(in[0], out, f_log, 0); }
KERNEL(KNAME(sqrt)) { (void)it, (void)n; return unary(in[0], out, f_sqrt, 0); }
KERNEL(KNAME(sin)) { (void)it, (void)n; return unary(in[0], out, f_sin, 0); }
KERNEL(KNAME(cos)) { (void)it, (void)n; return unary(in[0], out, f_cos, 0); }

/* ---- elementwise binary with broadcasting ------------------------------------------- */

/* Element strides of operand s as seen from out: s is right-aligned against out, and
 * a dimension of size 1 (or one s lacks) repeats, so its stride is 0. */
static void broadcast_strides(ir_shape s, ir_shape o, int64_t st[IR_MAX_RANK]) {
  int64_t step = 1;
  for (int d = o.rank - 1; d >= 0; d--) {
    int ds = d - (o.rank - s.rank);
    if (ds < 0 || s.dim[ds] == 1) {
      st[d] = 0;
    } else {
      st[d] = step;
    }
    if (ds >= 0) step *= s.dim[ds];
  }
}

enum { BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV, BIN_MAX };

/* a and b broadcast to out (numpy rules; the shape rule has checked them). Walks out
 * in C order with an odometer over its index, moving a's and b's offsets along. */
static int binary(const ir_tensor *a, const ir_tensor *b, ir_tensor *out, int op) {
  ir_shape o = out->shape;
  int64_t sa[IR_MAX_RANK], sb[IR_MAX_RANK], idx[IR_MAX_RANK] = {0};
  broadcast_strides(a->shape, o, sa);
  broadcast_strides(b->shape, o, sb);
  const KREAL *x = FP(a), *y = FP(b);
  KREAL *z = FP(out);
  int64_t count = shape_numel(o), ia = 0, ib = 0;
  for (int64_t j = 0; j < count; j++) {
    /* KREAL arithmetic: +, -, * and / of floats round once, as PyTorch's do */
    switch (op) {
    case BIN_ADD: z[j] = x[ia] + y[ib]; break;
    case BIN_SUB: z[j] = x[ia] - y[ib]; break;
    case BIN_MUL: z[j] = x[ia] * y[ib]; break;
    case BIN_MAX: z[j] = x[ia] >= y[ib] ? x[ia] : y[ib]; break;
    default: z[j] = x[ia] / y[ib]; break;
    }
    for (int d = o.rank - 1; d >= 0; d--) {
      idx[d]++;
      ia += sa[d];
      ib += sb[d];
      if (idx[d] < o.dim[d]) break;
      ia -= sa[d] * o.dim[d];
      ib -= sb[d] * o.dim[d];
      idx[d] = 0;
    }
  }
  return 0;
}

KERNEL(KNAME(add)) { (void)it, (void)n; return binary(in[0], in[1], out, BIN_ADD); }
KERNEL(KNAME(sub)) { (void)it, (void)n; return binary(in[0], in[1], out, BIN_SUB); }
KERNEL(KNAME(mul)) { (void)it, (void)n; return binary(in[0], in[1], out, BIN_MUL); }
KERNEL(KNAME(div)) { (void)it, (void)n; return binary(in[0], in[1], out, BIN_DIV); }
KERNEL(KNAME(maximum)) { (void)it, (void)n; return binary(in[0], in[1], out, BIN_MAX); }

/* dy where a wins against b (a >= b; a > b when i[0] is set), else 0 */
KERNEL(KNAME(max_grad)) {
  (void)it;
  const KREAL *a = FP(in[0]), *b = FP(in[1]), *dy = FP(in[2]);
  KREAL *y = FP(out);
  bool strict = n->i[0] != 0;
  int64_t count = shape_numel(out->shape);
  for (int64_t j = 0; j < count; j++)
    y[j] = (strict ? a[j] > b[j] : a[j] >= b[j]) ? dy[j] : (KREAL)0;
  return 0;
}

/* a where the one element of cond is nonzero, else b: copied, never computed */
KERNEL(KNAME(select)) {
  (void)it, (void)n;
  const KREAL *cond = FP(in[0]), *a = FP(in[1]), *b = FP(in[2]);
  KREAL *y = FP(out);
  const KREAL *from = cond[0] != 0 ? a : b;
  int64_t count = shape_numel(out->shape);
  for (int64_t j = 0; j < count; j++) y[j] = from[j];
  return 0;
}

/* ---- linear algebra and convolution -------------------------------------------------- */

/* a is [M,K] (stored [K,M] when i[0]), b is [K,N] (stored [N,K] when i[1]),
 * out is [M,N]: out[m,n] = sum_k a[m,k] b[k,n] */
KERNEL(KNAME(matmul)) {
  (void)it;
  bool ta = n->i[0] != 0, tb = n->i[1] != 0;
  const KREAL *a = FP(in[0]), *b = FP(in[1]);
  KREAL *c = FP(out);
  int64_t M = out->shape.dim[0], N = out->shape.dim[1];
  int64_t K = ta ? in[0]->shape.dim[0] : in[0]->shape.dim[1];
  for (int64_t m = 0; m < M; m++) {
    for (int64_t j = 0; j < N; j++) {
      double acc = 0;
      for (int64_t k = 0; k < K; k++) {
        double av = ta ? a[k * M + m] : a[m * K + k];
        double bv = tb ? b[j * K + k] : b[k * N + j];
        acc += av * bv;
      }
      c[m * N + j] = (KREAL)acc;
    }
  }
  return 0;
}

/* x is [N,C,H,W], w is [O,C,k,k], out is [N,O,Ho,Wo]; cross-correlation with zero
 * padding p and stride s (PyTorch's conv2d without bias):
 *   out[n,o,y,x] = sum_{c,ky,kx} x[n,c, y*s-p+ky, x*s-p+kx] * w[o,c,ky,kx] */
KERNEL(KNAME(conv)) {
  (void)it;
  int64_t k = n->i[0], s = n->i[1], p = n->i[2];
  int64_t N = in[0]->shape.dim[0], C = in[0]->shape.dim[1];
  int64_t H = in[0]->shape.dim[2], W = in[0]->shape.dim[3];
  int64_t O = out->shape.dim[1], Ho = out->shape.dim[2], Wo = out->shape.dim[3];
  const KREAL *x = FP(in[0]), *w = FP(in[1]);
  KREAL *y = FP(out);
  for (int64_t b = 0; b < N; b++)
    for (int64_t o = 0; o < O; o++)
      for (int64_t oy = 0; oy < Ho; oy++)
        for (int64_t ox = 0; ox < Wo; ox++) {
          double acc = 0;
          for (int64_t c = 0; c < C; c++)
            for (int64_t ky = 0; ky < k; ky++) {
              int64_t iy = oy * s - p + ky;
              if (iy < 0 || iy >= H) continue;
              for (int64_t kx = 0; kx < k; kx++) {
                int64_t ix = ox * s - p + kx;
                if (ix < 0 || ix >= W) continue;
                acc += (double)x[((b * C + c) * H + iy) * W + ix] *
                       w[((o * C + c) * k + ky) * k + kx];
              }
            }
          y[((b * O + o) * Ho + oy) * Wo + ox] = (KREAL)acc;
        }
  return 0;
}

/* x is [N,C,H,W], w is [C,O,k,k], out is [N,O,Ho,Wo] with Ho = (H-1)s - 2p + k
 * (PyTorch's conv_transpose2d without bias). Input pixel (iy,ix) scatters
 * x * w[c,o,ky,kx] to output (iy*s - p + ky, ix*s - p + kx); here each output
 * gathers instead, so it sums in one double:
 *   out[n,o,y,x] = sum over c,ky,kx with y+p-ky = iy*s, x+p-kx = ix*s in range */
KERNEL(KNAME(deconv)) {
  (void)it;
  int64_t k = n->i[0], s = n->i[1], p = n->i[2];
  int64_t N = in[0]->shape.dim[0], C = in[0]->shape.dim[1];
  int64_t H = in[0]->shape.dim[2], W = in[0]->shape.dim[3];
  int64_t O = out->shape.dim[1], Ho = out->shape.dim[2], Wo = out->shape.dim[3];
  const KREAL *x = FP(in[0]), *w = FP(in[1]);
  KREAL *y = FP(out);
  for (int64_t b = 0; b < N; b++)
    for (int64_t o = 0; o < O; o++)
      for (int64_t oy = 0; oy < Ho; oy++)
        for (int64_t ox = 0; ox < Wo; ox++) {
          double acc = 0;
          for (int64_t c = 0; c < C; c++)
            for (int64_t ky = 0; ky < k; ky++) {
              int64_t ty = oy + p - ky;
              if (ty < 0 || ty % s != 0 || ty / s >= H) continue;
              int64_t iy = ty / s;
              for (int64_t kx = 0; kx < k; kx++) {
                int64_t tx = ox + p - kx;
                if (tx < 0 || tx % s != 0 || tx / s >= W) continue;
                int64_t ix = tx / s;
                acc += (double)x[((b * C + c) * H + iy) * W + ix] *
                       w[((c * O + o) * k + ky) * k + kx];
              }
            }
          y[((b * O + o) * Ho + oy) * Wo + ox] = (KREAL)acc;
        }
  return 0;
}

/* ---- normalisation ------------------------------------------------------------------ */

/* x is [N,C] or [N,C,H,W], seen as [N,C,S] with S = H*W (1 for rank 2): the batch
 * statistics of channel c over N and S, with the biased variance (divide by N*S), as
 * PyTorch normalises in training. Two passes, both in double. */
static void batch_stats(const ir_tensor *xt, int64_t c, double *mean, double *var) {
  int64_t N = xt->shape.dim[0], C = xt->shape.dim[1];
  int64_t S = xt->shape.rank == 4 ? xt->shape.dim[2] * xt->shape.dim[3] : 1;
  const KREAL *x = FP(xt);
  double sum = 0;
  for (int64_t b = 0; b < N; b++)
    for (int64_t j = 0; j < S; j++) sum += x[(b * C + c) * S + j];
  *mean = sum / (double)(N * S);
  double sq = 0;
  for (int64_t b = 0; b < N; b++)
    for (int64_t j = 0; j < S; j++) {
      double d = x[(b * C + c) * S + j] - *mean;
      sq += d * d;
    }
  *var = sq / (double)(N * S);
}

/* Rounds n double sums to float, sums them across the processes of a data-parallel run
 * (collective_allreduce) and returns the totals in place, as doubles. */
static int sum_across(ir_interp *it, double *v, int64_t n) {
  float *buf = malloc((size_t)(n > 0 ? n : 1) * sizeof *buf);
  if (!buf) return kfail(it, "out of memory");
  for (int64_t k = 0; k < n; k++) buf[k] = (float)v[k];
  collective_allreduce(buf, n);
  for (int64_t k = 0; k < n; k++) v[k] = buf[k];
  free(buf);
  return 0;
}

/* mean and var (C doubles each) of every channel of x: batch_stats's, or with
 * ranks > 1 over the batches of all processes (sync batchnorm): the channel sums are
 * added across processes and divided by the global count, then the sums of squared
 * deviations from that mean likewise, so the statistics are the whole batch's up to
 * float rounding of the partial sums. */
static int channel_stats(ir_interp *it, const ir_tensor *xt, int64_t ranks, double *mean,
                         double *var) {
  int64_t N = xt->shape.dim[0], C = xt->shape.dim[1];
  int64_t S = xt->shape.rank == 4 ? xt->shape.dim[2] * xt->shape.dim[3] : 1;
  const KREAL *x = FP(xt);
  if (ranks <= 1) {
    for (int64_t c = 0; c < C; c++) batch_stats(xt, c, &mean[c], &var[c]);
    return 0;
  }
  double M = (double)(N * S * ranks);
  for (int64_t c = 0; c < C; c++) {
    mean[c] = 0;
    for (int64_t b = 0; b < N; b++)
      for (int64_t j = 0; j < S; j++) mean[c] += x[(b * C + c) * S + j];
  }
  if (sum_across(it, mean, C)) return 1;
  for (int64_t c = 0; c < C; c++) {
    mean[c] /= M;
    var[c] = 0;
    for (int64_t b = 0; b < N; b++)
      for (int64_t j = 0; j < S; j++) {
        double d = x[(b * C + c) * S + j] - mean[c];
        var[c] += d * d;
      }
  }
  if (sum_across(it, var, C)) return 1;
  for (int64_t c = 0; c < C; c++) var[c] /= M;
  return 0;
}

/* x is [N,C] or [N,C,H,W], seen as [N,C,S]; gamma, beta, mean, var are [C]; y is x's
 * shape:
 *   y = (x - mean[c]) / sqrt(var[c] + eps) * gamma[c] + beta[c] */
static void batchnorm(const ir_tensor *xt, const KREAL *gamma, const KREAL *beta,
                      const double *mean, const double *var, double eps, ir_tensor *out) {
  int64_t N = xt->shape.dim[0], C = xt->shape.dim[1];
  int64_t S = xt->shape.rank == 4 ? xt->shape.dim[2] * xt->shape.dim[3] : 1;
  const KREAL *x = FP(xt);
  KREAL *y = FP(out);
  for (int64_t c = 0; c < C; c++) {
    double inv = 1 / sqrt(var[c] + eps);
    for (int64_t b = 0; b < N; b++)
      for (int64_t j = 0; j < S; j++) {
        int64_t at = (b * C + c) * S + j;
        y[at] = (KREAL)((x[at] - mean[c]) * inv * gamma[c] + beta[c]);
      }
  }
}

/* Two arrays of C doubles (mean, var), or NULL with the interpreter's error set. */
static double *stats_alloc(ir_interp *it, int64_t C) {
  double *s = malloc((size_t)(2 * C + 1) * sizeof *s);
  if (!s) kfail(it, "out of memory");
  return s;
}

/* in: x, gamma [C], beta [C]; f[0] = eps, i[0] = ranks (channel_stats) */
KERNEL(KNAME(batchnorm)) {
  int64_t C = in[0]->shape.dim[1];
  double *s = stats_alloc(it, C);
  if (!s || channel_stats(it, in[0], n->i[0], s, s + C)) return free(s), 1;
  batchnorm(in[0], FP(in[1]), FP(in[2]), s, s + C, n->f[0], out);
  free(s);
  return 0;
}

/* in: x, gamma [C], beta [C], mean [C], var [C]; f[0] = eps */
KERNEL(KNAME(batchnorm_infer)) {
  int64_t C = in[0]->shape.dim[1];
  double *s = stats_alloc(it, C);
  if (!s) return 1;
  for (int64_t c = 0; c < C; c++) s[c] = FP(in[3])[c], s[C + c] = FP(in[4])[c];
  batchnorm(in[0], FP(in[1]), FP(in[2]), s, s + C, n->f[0], out);
  free(s);
  return 0;
}

/* ---- shape ---------------------------------------------------------------------------- */

/* same elements in the same C order, new shape (any dtype) */
KERNEL(KNAME(reshape)) {
  (void)it, (void)n;
  memcpy(out->data, in[0]->data, (size_t)shape_numel(out->shape) * esize(out));
  return 0;
}

/* Splits a shape around axis: outer = prod dim[<axis], inner = prod dim[>axis]. */
static void around_axis(ir_shape s, int axis, int64_t *outer, int64_t *inner) {
  *outer = 1, *inner = 1;
  for (int d = 0; d < axis; d++) *outer *= s.dim[d];
  for (int d = axis + 1; d < s.rank; d++) *inner *= s.dim[d];
}

/* in[j] is [..., A_j, ...], out is [..., sum A_j, ...] along axis i[0]: seen as
 * [outer, A, inner], each outer row of out is the operands' rows one after another. */
KERNEL(KNAME(concat)) {
  int axis = (int)n->i[0];
  int64_t outer, inner;
  around_axis(out->shape, axis, &outer, &inner);
  const char **src = malloc((size_t)n->nin * sizeof *src);
  if (!src) return kfail(it, "out of memory");
  for (int j = 0; j < n->nin; j++) src[j] = in[j]->data;
  char *dst = out->data;
  for (int64_t r = 0; r < outer; r++)
    for (int j = 0; j < n->nin; j++) {
      size_t bytes = (size_t)(in[j]->shape.dim[axis] * inner) * esize(out);
      memcpy(dst, src[j], bytes);
      dst += bytes;
      src[j] += bytes;
    }
  free(src);
  return 0;
}

/* x is [outer, A, inner] around axis i[0]; out is [outer, end-start, inner] holding
 * x[:, start:end, :] */
KERNEL(KNAME(slice)) {
  (void)it;
  int axis = (int)n->i[0];
  int64_t start = n->i[1], len = n->i[2] - n->i[1], outer, inner;
  around_axis(in[0]->shape, axis, &outer, &inner);
  int64_t A = in[0]->shape.dim[axis];
  size_t es = esize(out);
  const char *x = in[0]->data;
  char *y = out->data;
  for (int64_t r = 0; r < outer; r++)
    memcpy(y + (size_t)(r * len * inner) * es, x + (size_t)((r * A + start) * inner) * es,
           (size_t)(len * inner) * es);
  return 0;
}

/* ---- reductions ------------------------------------------------------------------------ */

/* x is any shape; bit a of `mask` reduces axis a. Accumulates into acc, indexed like the
 * keep-dims result (whose C order equals the dropped one, size-1 axes taking no room):
 * acc[o] = sum of f(x[j], center[o]) over the x elements j that reduce into o.
 * center (NULL: 0) lets var sum squared deviations from the mean. Returns the number
 * of elements reduced into each output. */
static int64_t reduce_into(const ir_tensor *xt, int64_t mask, const double *center,
                           double *acc) {
  ir_shape s = xt->shape;
  int64_t ost[IR_MAX_RANK], idx[IR_MAX_RANK] = {0}, step = 1, count = 1;
  for (int d = s.rank - 1; d >= 0; d--) {
    if (mask >> d & 1) {
      ost[d] = 0;
      count *= s.dim[d];
    } else {
      ost[d] = step;
      step *= s.dim[d];
    }
  }
  const KREAL *x = FP(xt);
  int64_t total = shape_numel(s), o = 0;
  for (int64_t j = 0; j < total; j++) {
    double v = x[j];
    if (center) v = (v - center[o]) * (v - center[o]);
    acc[o] += v;
    for (int d = s.rank - 1; d >= 0; d--) {
      idx[d]++;
      o += ost[d];
      if (idx[d] < s.dim[d]) break;
      o -= ost[d] * s.dim[d];
      idx[d] = 0;
    }
  }
  return count;
}

enum { RED_SUM, RED_MEAN, RED_VAR };

/* x any shape, out = x with the masked axes reduced (kept as 1 or dropped) */
static int reduce(ir_interp *it, const ir_node *n, const ir_tensor *x, ir_tensor *out,
                  int kind) {
  int64_t m = shape_numel(out->shape);
  double *acc = calloc((size_t)m, sizeof *acc);
  double *mean = kind == RED_VAR ? calloc((size_t)m, sizeof *mean) : NULL;
  if (!acc || (kind == RED_VAR && !mean)) {
    free(acc);
    free(mean);
    return kfail(it, "out of memory");
  }
  int64_t count = reduce_into(x, n->i[0], NULL, acc);
  if (kind == RED_VAR) {
    /* two passes: the mean, then squared deviations from it, divided by count - 1
     * (unbiased, as torch.var; a single element gives 0/0 = nan, as there) */
    for (int64_t o = 0; o < m; o++) mean[o] = acc[o] / (double)count, acc[o] = 0;
    reduce_into(x, n->i[0], mean, acc);
  }
  KREAL *y = FP(out);
  for (int64_t o = 0; o < m; o++) {
    switch (kind) {
    case RED_SUM: y[o] = (KREAL)acc[o]; break;
    case RED_MEAN: y[o] = (KREAL)(acc[o] / (double)count); break;
    default: y[o] = (KREAL)(acc[o] / (double)(count - 1)); break;
    }
  }
  free(acc);
  free(mean);
  return 0;
}

KERNEL(KNAME(sum)) { return reduce(it, n, in[0], out, RED_SUM); }
KERNEL(KNAME(mean)) { return reduce(it, n, in[0], out, RED_MEAN); }
KERNEL(KNAME(var)) { return reduce(it, n, in[0], out, RED_VAR); }

/* ---- codes and randomness ------------------------------------------------------------- */

/* codes is i32 [N] with values in [0, K); out is f32 [N,K], out[b, codes[b]] = 1 */
KERNEL(KNAME(onehot)) {
  int64_t N = out->shape.dim[0], K = out->shape.dim[1];
  const int32_t *c = I32(in[0]);
  KREAL *y = FP(out);
  for (int64_t b = 0; b < N; b++) {
    if (c[b] < 0 || c[b] >= K)
      return kfail(it, "code %d at row %lld is outside [0, %lld)", (int)c[b], (long long)b,
                   (long long)K);
    y[b * K + c[b]] = 1;
  }
  (void)n;
  return 0;
}

/* x any shape, seed i32 [2] = (run seed, step), out is x's shape; p = f[0], site = i[0].
 * Element j (C order) is dropped when
 *   rng_uniform(seed, RNG_STREAM_DROPOUT + site, step, j) < p
 * with seed and step read from the operand as unsigned 32-bit values, and kept
 * otherwise as y = x * (KREAL)(1 / (1 - p)) (inverted dropout: the expectation of y
 * is x; the mask is the same in f64 mode). Each dropout site has its own stream, each step its own counter, so masks
 * differ between layers and steps but replay exactly. p = 0 is the identity. The
 * interpreter applies the op whenever it appears: functions that do not train are
 * expected to leave dropout out. */
KERNEL(KNAME(dropout)) {
  (void)it;
  double p = n->f[0];
  const int32_t *sd = I32(in[1]);
  uint64_t seed = (uint32_t)sd[0], step = (uint32_t)sd[1];
  uint32_t stream = RNG_STREAM_DROPOUT + (uint32_t)n->i[0];
  KREAL scale = (KREAL)(1.0 / (1.0 - p));
  const KREAL *x = FP(in[0]);
  KREAL *y = FP(out);
  int64_t count = shape_numel(out->shape);
  for (int64_t j = 0; j < count; j++)
    y[j] = rng_uniform(seed, stream, step, (uint64_t)j) < p ? (KREAL)0 : x[j] * scale;
  return 0;
}

/* ---- losses: out is [] ------------------------------------------------------------------ */

/* logits, target any equal shape: mean over all elements of
 *   max(x,0) - x*t + log1p(exp(-|x|))
 * which is -[t log sigmoid(x) + (1-t) log(1 - sigmoid(x))] without overflow. */
KERNEL(KNAME(bce_logits)) {
  (void)it, (void)n;
  const KREAL *x = FP(in[0]), *t = FP(in[1]);
  ir_shape o = in[0]->shape;
  int64_t st[IR_MAX_RANK], idx[IR_MAX_RANK] = {0}, it_ = 0;
  broadcast_strides(in[1]->shape, o, st); /* the target broadcasts to the logits */
  int64_t count = shape_numel(o);
  double sum = 0;
  for (int64_t j = 0; j < count; j++) {
    double v = x[j];
    sum += fmax(v, 0) - v * t[it_] + log1p(exp(-fabs(v)));
    for (int d = o.rank - 1; d >= 0; d--) {
      idx[d]++;
      it_ += st[d];
      if (idx[d] < o.dim[d]) break;
      it_ -= st[d] * o.dim[d];
      idx[d] = 0;
    }
  }
  FP(out)[0] = (KREAL)(sum / (double)count);
  return 0;
}

/* logits is [N,K], labels is i32 [N]: the mean over rows of
 *   logsumexp(logits[b]) - logits[b, label[b]]
 * with the row maximum taken out before exponentiating. */
static int mean_cross_entropy(ir_interp *it, const ir_tensor *lt, const ir_tensor *ct,
                              double *ce) {
  int64_t N = lt->shape.dim[0], K = lt->shape.dim[1];
  const KREAL *l = FP(lt);
  const int32_t *c = I32(ct);
  double sum = 0;
  for (int64_t b = 0; b < N; b++) {
    if (c[b] < 0 || c[b] >= K)
      return kfail(it, "label %d at row %lld is outside [0, %lld)", (int)c[b], (long long)b,
                   (long long)K);
    const KREAL *row = l + b * K;
    double mx = row[0];
    for (int64_t j = 1; j < K; j++) mx = fmax(mx, row[j]);
    double se = 0;
    for (int64_t j = 0; j < K; j++) se += exp(row[j] - mx);
    sum += mx + log(se) - row[c[b]];
  }
  *ce = sum / (double)N;
  return 0;
}

KERNEL(KNAME(softmax_ce)) {
  (void)n;
  double ce;
  if (mean_cross_entropy(it, in[0], in[1], &ce)) return 1;
  FP(out)[0] = (KREAL)ce;
  return 0;
}

/* logits [N,K], c i32 [N]: the variational lower bound on the mutual information of a
 * uniform categorical code, ln K - mean cross-entropy (InfoGAN's L_I). */
KERNEL(KNAME(info_categorical)) {
  (void)n;
  double ce;
  if (mean_cross_entropy(it, in[0], in[1], &ce)) return 1;
  FP(out)[0] = (KREAL)(log((double)in[0]->shape.dim[1]) - ce);
  return 0;
}

/* mean [N,D], x [N,D], std = f[0]: the negative log-likelihood of x under
 * N(mean, std^2), summed over D and averaged over N:
 *   1/N sum_b sum_d 0.5*((x-mean)/std)^2 + log(std) + 0.5*log(2*pi) */
KERNEL(KNAME(gaussian_nll)) {
  (void)it;
  int64_t N = in[0]->shape.dim[0], D = in[0]->shape.dim[1];
  const KREAL *mu = FP(in[0]), *x = FP(in[1]);
  double sd = n->f[0], half_log_2pi = 0.5 * log(2 * 3.14159265358979323846);
  double sum = 0;
  for (int64_t b = 0; b < N; b++)
    for (int64_t d = 0; d < D; d++) {
      double z = ((double)x[b * D + d] - mu[b * D + d]) / sd;
      sum += 0.5 * z * z + log(sd) + half_log_2pi;
    }
  FP(out)[0] = (KREAL)(sum / (double)N);
  return 0;
}

/* ---- adjoints (made by autodiff) --------------------------------------------------------- */

/* x and dy have one shape, out too: dy where x > 0, else 0 (PyTorch's choice at 0) */
KERNEL(KNAME(relu_grad)) {
  (void)it, (void)n;
  const KREAL *x = FP(in[0]), *dy = FP(in[1]);
  KREAL *y = FP(out);
  int64_t count = shape_numel(out->shape);
  for (int64_t j = 0; j < count; j++) y[j] = x[j] > 0 ? dy[j] : (KREAL)0;
  return 0;
}

/* as relu_grad, with slope*dy (in double, rounded once) where x <= 0; f[0] = slope */
KERNEL(KNAME(lrelu_grad)) {
  (void)it;
  const KREAL *x = FP(in[0]), *dy = FP(in[1]);
  KREAL *y = FP(out);
  double slope = n->f[0];
  int64_t count = shape_numel(out->shape);
  for (int64_t j = 0; j < count; j++) y[j] = x[j] > 0 ? dy[j] : (KREAL)(slope * dy[j]);
  return 0;
}

/* dy is [N,O,Ho,Wo], w is [O,C,k,k], out is [N,C,H,W]: the gradient of conv's input,
 *   dx[n,c,h,w] = sum over o,ky,kx with h = oy*s-p+ky, w = ox*s-p+kx, (oy,ox) in range
 *                 of dy[n,o,oy,ox] * w[o,c,ky,kx]
 * gathered per input pixel, as kernel_deconv gathers (this is deconv of dy with w,
 * except that H and W come from the target: rows the conv never read get 0). */
KERNEL(KNAME(conv_grad_x)) {
  (void)it;
  int64_t k = n->i[0], s = n->i[1], p = n->i[2];
  int64_t N = out->shape.dim[0], C = out->shape.dim[1];
  int64_t H = out->shape.dim[2], W = out->shape.dim[3];
  int64_t O = in[0]->shape.dim[1], Ho = in[0]->shape.dim[2], Wo = in[0]->shape.dim[3];
  const KREAL *dy = FP(in[0]), *w = FP(in[1]);
  KREAL *dx = FP(out);
  for (int64_t b = 0; b < N; b++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t iy = 0; iy < H; iy++)
        for (int64_t ix = 0; ix < W; ix++) {
          double acc = 0;
          for (int64_t o = 0; o < O; o++)
            for (int64_t ky = 0; ky < k; ky++) {
              int64_t ty = iy + p - ky; /* = oy*s */
              if (ty < 0 || ty % s != 0 || ty / s >= Ho) continue;
              int64_t oy = ty / s;
              for (int64_t kx = 0; kx < k; kx++) {
                int64_t tx = ix + p - kx;
                if (tx < 0 || tx % s != 0 || tx / s >= Wo) continue;
                int64_t ox = tx / s;
                acc += (double)dy[((b * O + o) * Ho + oy) * Wo + ox] *
                       w[((o * C + c) * k + ky) * k + kx];
              }
            }
          dx[((b * C + c) * H + iy) * W + ix] = (KREAL)acc;
        }
  return 0;
}

/* x is [N,C,H,W], dy is [N,O,Ho,Wo], out is [O,C,k,k]: the gradient of conv's weight,
 *   dw[o,c,ky,kx] = sum over n,oy,ox of dy[n,o,oy,ox] * x[n,c, oy*s-p+ky, ox*s-p+kx]
 * with zero padding. With x the gradient of a deconv's output [N,O',Ho',Wo'] and dy the
 * deconv's input [N,C',H',W'], out [C',O',k,k] is the deconv weight's gradient. */
KERNEL(KNAME(conv_grad_w)) {
  (void)it;
  int64_t k = n->i[0], s = n->i[1], p = n->i[2];
  int64_t N = in[0]->shape.dim[0], C = in[0]->shape.dim[1];
  int64_t H = in[0]->shape.dim[2], W = in[0]->shape.dim[3];
  int64_t O = in[1]->shape.dim[1], Ho = in[1]->shape.dim[2], Wo = in[1]->shape.dim[3];
  const KREAL *x = FP(in[0]), *dy = FP(in[1]);
  KREAL *dw = FP(out);
  for (int64_t o = 0; o < O; o++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t ky = 0; ky < k; ky++)
        for (int64_t kx = 0; kx < k; kx++) {
          double acc = 0;
          for (int64_t b = 0; b < N; b++)
            for (int64_t oy = 0; oy < Ho; oy++) {
              int64_t iy = oy * s - p + ky;
              if (iy < 0 || iy >= H) continue;
              for (int64_t ox = 0; ox < Wo; ox++) {
                int64_t ix = ox * s - p + kx;
                if (ix < 0 || ix >= W) continue;
                acc += (double)dy[((b * O + o) * Ho + oy) * Wo + ox] *
                       x[((b * C + c) * H + iy) * W + ix];
              }
            }
          dw[((o * C + c) * k + ky) * k + kx] = (KREAL)acc;
        }
  return 0;
}

/* x and dy are [N,C] or [N,C,H,W], seen as [N,C,S]; gamma is [C]; out is x's shape: the
 * gradient of training batchnorm's input through the batch statistics (biased variance
 * over N and S, M = N*S elements per channel). With inv = 1/sqrt(var + eps),
 * xhat = (x - mean)*inv and g = dy*gamma[c]:
 *   dx = inv * (g - mean(g) - xhat * mean(g * xhat))
 * all in double. With i[0] = ranks > 1 the statistics and both means are over every
 * process's batch (the sums of g and g*xhat added across processes, M times ranks). */
KERNEL(KNAME(batchnorm_grad)) {
  const ir_tensor *xt = in[0];
  int64_t N = xt->shape.dim[0], C = xt->shape.dim[1];
  int64_t S = xt->shape.rank == 4 ? xt->shape.dim[2] * xt->shape.dim[3] : 1;
  int64_t ranks = n->i[0] > 1 ? n->i[0] : 1;
  double M = (double)(N * S * ranks);
  const KREAL *x = FP(xt), *gamma = FP(in[1]), *dy = FP(in[2]);
  KREAL *dx = FP(out);
  double *s = malloc((size_t)(4 * C + 1) * sizeof *s); /* mean, var, sum g, sum g*xhat */
  if (!s) return kfail(it, "out of memory");
  double *mean = s, *var = s + C, *sums = s + 2 * C;
  if (channel_stats(it, xt, ranks, mean, var)) return free(s), 1;
  for (int64_t c = 0; c < C; c++) {
    double inv = 1 / sqrt(var[c] + n->f[0]), g_sum = 0, gx_sum = 0;
    for (int64_t b = 0; b < N; b++)
      for (int64_t j = 0; j < S; j++) {
        int64_t at = (b * C + c) * S + j;
        double g = (double)dy[at] * gamma[c];
        g_sum += g;
        gx_sum += g * ((x[at] - mean[c]) * inv);
      }
    sums[c] = g_sum, sums[C + c] = gx_sum;
  }
  if (ranks > 1 && sum_across(it, sums, 2 * C)) return free(s), 1;
  for (int64_t c = 0; c < C; c++) {
    double inv = 1 / sqrt(var[c] + n->f[0]);
    double g_mean = sums[c] / M, gx_mean = sums[C + c] / M;
    for (int64_t b = 0; b < N; b++)
      for (int64_t j = 0; j < S; j++) {
        int64_t at = (b * C + c) * S + j;
        double g = (double)dy[at] * gamma[c], xhat = (x[at] - mean[c]) * inv;
        dx[at] = (KREAL)(inv * (g - g_mean - xhat * gx_mean));
      }
  }
  free(s);
  return 0;
}

/* x and dy are [N,C] or [N,C,H,W] ([N,C,S]), out is [C]: gamma's gradient,
 *   dgamma[c] = sum over n and s of dy * xhat,  xhat = (x - mean)/sqrt(var + eps)
 * over this process's batch; with i[0] = ranks > 1, mean and var are every process's
 * (channel_stats), and the sum is averaged with the other gradients later. */
KERNEL(KNAME(batchnorm_grad_gamma)) {
  const ir_tensor *xt = in[0];
  int64_t N = xt->shape.dim[0], C = xt->shape.dim[1];
  int64_t S = xt->shape.rank == 4 ? xt->shape.dim[2] * xt->shape.dim[3] : 1;
  const KREAL *x = FP(xt), *dy = FP(in[1]);
  KREAL *dg = FP(out);
  double *s = stats_alloc(it, C);
  if (!s || channel_stats(it, xt, n->i[0], s, s + C)) return free(s), 1;
  for (int64_t c = 0; c < C; c++) {
    double inv = 1 / sqrt(s[C + c] + n->f[0]), acc = 0;
    for (int64_t b = 0; b < N; b++)
      for (int64_t j = 0; j < S; j++) {
        int64_t at = (b * C + c) * S + j;
        acc += (double)dy[at] * ((x[at] - s[c]) * inv);
      }
    dg[c] = (KREAL)acc;
  }
  free(s);
  return 0;
}

/* x broadcasts to out (numpy rules, checked by the shape rule): walks out in C order
 * with an odometer, x's offset moving by its broadcast strides (0 where it repeats). */
KERNEL(KNAME(expand)) {
  (void)it, (void)n;
  ir_shape o = out->shape;
  int64_t st[IR_MAX_RANK], idx[IR_MAX_RANK] = {0}, ix = 0;
  broadcast_strides(in[0]->shape, o, st);
  const KREAL *x = FP(in[0]);
  KREAL *y = FP(out);
  int64_t count = shape_numel(o);
  for (int64_t j = 0; j < count; j++) {
    y[j] = x[ix];
    for (int d = o.rank - 1; d >= 0; d--) {
      idx[d]++;
      ix += st[d];
      if (idx[d] < o.dim[d]) break;
      ix -= st[d] * o.dim[d];
      idx[d] = 0;
    }
  }
  return 0;
}

/* dy is [outer, end-start, inner] around axis i[0], out is [outer, A, inner] (zeros):
 * out[:, start:end, :] = dy, slice's adjoint */
KERNEL(KNAME(unslice)) {
  (void)it;
  int axis = (int)n->i[0];
  int64_t start = n->i[1], len = n->i[2] - n->i[1], outer, inner;
  around_axis(out->shape, axis, &outer, &inner);
  int64_t A = out->shape.dim[axis];
  size_t es = esize(out);
  const char *x = in[0]->data;
  char *y = out->data;
  for (int64_t r = 0; r < outer; r++)
    memcpy(y + (size_t)((r * A + start) * inner) * es, x + (size_t)(r * len * inner) * es,
           (size_t)(len * inner) * es);
  return 0;
}

/* x and out have one shape of rank >= 1, seen as [rows, K] with K the last dim:
 *   y[r,j] = exp(x[r,j] - max_r) / sum_j' exp(x[r,j'] - max_r)
 * in double, the row maximum subtracted first so nothing overflows. */
KERNEL(KNAME(softmax)) {
  (void)it, (void)n;
  ir_shape s = out->shape;
  int64_t K = s.dim[s.rank - 1], rows = K > 0 ? shape_numel(s) / K : 0;
  const KREAL *x = FP(in[0]);
  KREAL *y = FP(out);
  for (int64_t r = 0; r < rows; r++) {
    const KREAL *row = x + r * K;
    double mx = row[0], se = 0;
    for (int64_t j = 1; j < K; j++) mx = fmax(mx, row[j]);
    for (int64_t j = 0; j < K; j++) se += exp(row[j] - mx);
    for (int64_t j = 0; j < K; j++) y[r * K + j] = (KREAL)(exp(row[j] - mx) / se);
  }
  return 0;
}

/* ---- data parallelism ---------------------------------------------------------------- */

/* x and out have one shape: out = f[0] * (x summed over the processes of the run). The
 * transport carries floats, so f64 mode rounds to f32 for the sum; the scale multiplies
 * in float as generated code does. */
KERNEL(KNAME(allreduce)) {
  int64_t count = shape_numel(out->shape);
  float *buf = malloc((size_t)(count > 0 ? count : 1) * sizeof *buf);
  if (!buf) return kfail(it, "out of memory");
  for (int64_t j = 0; j < count; j++) buf[j] = (float)FP(in[0])[j];
  collective_allreduce(buf, count);
  float scale = (float)n->f[0];
  for (int64_t j = 0; j < count; j++) FP(out)[j] = (KREAL)(buf[j] * scale);
  free(buf);
  return 0;
}
