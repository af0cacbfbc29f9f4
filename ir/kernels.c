/* kernels.c: the interpreter kernel of every op (the `interp` column of op_table.c).
 *
 * This is migc's reference: the JIT and generated code are tested against it, so it
 * is written to be obviously right rather than fast. Plain loops over C-order arrays,
 * the shapes of each in a comment, sums accumulated in double. Semantics follow
 * PyTorch (tests/golden-ops holds its values).
 *
 * `in[j]` are the operand tensors and `out` is already allocated with n's dtype and
 * shape and zero-filled; the interpreter has checked that the operand shapes agree
 * with n's shape rule, so kernels index without re-checking shapes. */
#include "ir/op_impl.h"
#include "runtime/runtime.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define F32(t) ((float *)(t)->data)
#define I32(t) ((int32_t *)(t)->data)

__attribute__((format(printf, 2, 3))) static int kfail(ir_interp *it, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(it->err, sizeof it->err, fmt, ap);
  va_end(ap);
  return 1;
}

/* ---- sources and effects ---------------------------------------------------------- */

/* out is [] */
KERNEL(kernel_const) {
  (void)it, (void)in;
  F32(out)[0] = (float)n->f[0];
  return 0;
}

/* The variable's slice of the flat state buffer, where it->m laid it out. */
static int state_slice(ir_interp *it, const ir_node *n, const ir_tensor *val, int64_t *off) {
  if (!it->m || !it->state) return kfail(it, "no module state to access");
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

/* out is the variable's shape; state elements are 4 bytes whatever the dtype */
KERNEL(kernel_load) {
  (void)in;
  int64_t off;
  if (state_slice(it, n, out, &off)) return 1;
  memcpy(out->data, it->state + off, (size_t)shape_numel(out->shape) * 4);
  return 0;
}

/* in[0] and out are the variable's shape; the value also passes through to out */
KERNEL(kernel_store) {
  int64_t off;
  if (state_slice(it, n, in[0], &off)) return 1;
  size_t bytes = (size_t)shape_numel(in[0]->shape) * 4;
  memcpy(it->state + off, in[0]->data, bytes);
  memcpy(out->data, in[0]->data, bytes);
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

/* y[j] = f(x[j]), computed in double and rounded once */
static int unary(const ir_tensor *x, ir_tensor *out, double (*f)(double, double), double a) {
  const float *xs = F32(x);
  float *y = F32(out);
  int64_t count = shape_numel(out->shape);
  for (int64_t j = 0; j < count; j++) y[j] = (float)f(xs[j], a);
  return 0;
}

KERNEL(kernel_neg) { (void)it, (void)n; return unary(in[0], out, f_neg, 0); }
KERNEL(kernel_relu) { (void)it, (void)n; return unary(in[0], out, f_relu, 0); }
KERNEL(kernel_lrelu) { (void)it; return unary(in[0], out, f_lrelu, n->f[0]); }
KERNEL(kernel_tanh) { (void)it, (void)n; return unary(in[0], out, f_tanh, 0); }
KERNEL(kernel_sigmoid) { (void)it, (void)n; return unary(in[0], out, f_sigmoid, 0); }
KERNEL(kernel_softplus) { (void)it, (void)n; return unary(in[0], out, f_softplus, 0); }
KERNEL(kernel_exp) { (void)it, (void)n; return unary(in[0], out, f_exp, 0); }
KERNEL(kernel_log) { (void)it, (void)n; return unary(in[0], out, f_log, 0); }
KERNEL(kernel_sqrt) { (void)it, (void)n; return unary(in[0], out, f_sqrt, 0); }

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

enum { BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV };

/* a and b broadcast to out (numpy rules; the shape rule has checked them). Walks out
 * in C order with an odometer over its index, moving a's and b's offsets along. */
static int binary(const ir_tensor *a, const ir_tensor *b, ir_tensor *out, int op) {
  ir_shape o = out->shape;
  int64_t sa[IR_MAX_RANK], sb[IR_MAX_RANK], idx[IR_MAX_RANK] = {0};
  broadcast_strides(a->shape, o, sa);
  broadcast_strides(b->shape, o, sb);
  const float *x = F32(a), *y = F32(b);
  float *z = F32(out);
  int64_t count = shape_numel(o), ia = 0, ib = 0;
  for (int64_t j = 0; j < count; j++) {
    /* float arithmetic: +, -, * and / of floats round once, as PyTorch's do */
    switch (op) {
    case BIN_ADD: z[j] = x[ia] + y[ib]; break;
    case BIN_SUB: z[j] = x[ia] - y[ib]; break;
    case BIN_MUL: z[j] = x[ia] * y[ib]; break;
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

KERNEL(kernel_add) { (void)it, (void)n; return binary(in[0], in[1], out, BIN_ADD); }
KERNEL(kernel_sub) { (void)it, (void)n; return binary(in[0], in[1], out, BIN_SUB); }
KERNEL(kernel_mul) { (void)it, (void)n; return binary(in[0], in[1], out, BIN_MUL); }
KERNEL(kernel_div) { (void)it, (void)n; return binary(in[0], in[1], out, BIN_DIV); }

/* ---- linear algebra and convolution -------------------------------------------------- */

/* a is [M,K] (stored [K,M] when i[0]), b is [K,N] (stored [N,K] when i[1]),
 * out is [M,N]: out[m,n] = sum_k a[m,k] b[k,n] */
KERNEL(kernel_matmul) {
  (void)it;
  bool ta = n->i[0] != 0, tb = n->i[1] != 0;
  const float *a = F32(in[0]), *b = F32(in[1]);
  float *c = F32(out);
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
      c[m * N + j] = (float)acc;
    }
  }
  return 0;
}

/* x is [N,C,H,W], w is [O,C,k,k], out is [N,O,Ho,Wo]; cross-correlation with zero
 * padding p and stride s (PyTorch's conv2d without bias):
 *   out[n,o,y,x] = sum_{c,ky,kx} x[n,c, y*s-p+ky, x*s-p+kx] * w[o,c,ky,kx] */
KERNEL(kernel_conv) {
  (void)it;
  int64_t k = n->i[0], s = n->i[1], p = n->i[2];
  int64_t N = in[0]->shape.dim[0], C = in[0]->shape.dim[1];
  int64_t H = in[0]->shape.dim[2], W = in[0]->shape.dim[3];
  int64_t O = out->shape.dim[1], Ho = out->shape.dim[2], Wo = out->shape.dim[3];
  const float *x = F32(in[0]), *w = F32(in[1]);
  float *y = F32(out);
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
          y[((b * O + o) * Ho + oy) * Wo + ox] = (float)acc;
        }
  return 0;
}

/* x is [N,C,H,W], w is [C,O,k,k], out is [N,O,Ho,Wo] with Ho = (H-1)s - 2p + k
 * (PyTorch's conv_transpose2d without bias). Input pixel (iy,ix) scatters
 * x * w[c,o,ky,kx] to output (iy*s - p + ky, ix*s - p + kx); here each output
 * gathers instead, so it sums in one double:
 *   out[n,o,y,x] = sum over c,ky,kx with y+p-ky = iy*s, x+p-kx = ix*s in range */
KERNEL(kernel_deconv) {
  (void)it;
  int64_t k = n->i[0], s = n->i[1], p = n->i[2];
  int64_t N = in[0]->shape.dim[0], C = in[0]->shape.dim[1];
  int64_t H = in[0]->shape.dim[2], W = in[0]->shape.dim[3];
  int64_t O = out->shape.dim[1], Ho = out->shape.dim[2], Wo = out->shape.dim[3];
  const float *x = F32(in[0]), *w = F32(in[1]);
  float *y = F32(out);
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
          y[((b * O + o) * Ho + oy) * Wo + ox] = (float)acc;
        }
  return 0;
}

/* ---- normalisation ------------------------------------------------------------------ */

/* x is [N,C] or [N,C,H,W], seen as [N,C,S] with S = H*W (1 for rank 2); gamma, beta,
 * mean, var are [C]; y is x's shape:
 *   y = (x - mean[c]) / sqrt(var[c] + eps) * gamma[c] + beta[c]
 * mean/var NULL: the batch's own statistics over N and S, with the biased variance
 * (divide by N*S), as PyTorch normalises in training. */
static void batchnorm(const ir_tensor *xt, const float *gamma, const float *beta,
                      const float *mean_in, const float *var_in, double eps, ir_tensor *out) {
  int64_t N = xt->shape.dim[0], C = xt->shape.dim[1];
  int64_t S = xt->shape.rank == 4 ? xt->shape.dim[2] * xt->shape.dim[3] : 1;
  const float *x = F32(xt);
  float *y = F32(out);
  for (int64_t c = 0; c < C; c++) {
    double mean, var;
    if (mean_in) {
      mean = mean_in[c];
      var = var_in[c];
    } else {
      double sum = 0;
      for (int64_t b = 0; b < N; b++)
        for (int64_t j = 0; j < S; j++) sum += x[(b * C + c) * S + j];
      mean = sum / (double)(N * S);
      double sq = 0;
      for (int64_t b = 0; b < N; b++)
        for (int64_t j = 0; j < S; j++) {
          double d = x[(b * C + c) * S + j] - mean;
          sq += d * d;
        }
      var = sq / (double)(N * S);
    }
    double inv = 1 / sqrt(var + eps);
    for (int64_t b = 0; b < N; b++)
      for (int64_t j = 0; j < S; j++) {
        int64_t at = (b * C + c) * S + j;
        y[at] = (float)((x[at] - mean) * inv * gamma[c] + beta[c]);
      }
  }
}

/* in: x, gamma [C], beta [C]; f[0] = eps */
KERNEL(kernel_batchnorm) {
  (void)it;
  batchnorm(in[0], F32(in[1]), F32(in[2]), NULL, NULL, n->f[0], out);
  return 0;
}

/* in: x, gamma [C], beta [C], mean [C], var [C]; f[0] = eps */
KERNEL(kernel_batchnorm_infer) {
  (void)it;
  batchnorm(in[0], F32(in[1]), F32(in[2]), F32(in[3]), F32(in[4]), n->f[0], out);
  return 0;
}

/* ---- shape ---------------------------------------------------------------------------- */

/* same elements in the same C order, new shape */
KERNEL(kernel_reshape) {
  (void)it, (void)n;
  memcpy(out->data, in[0]->data, (size_t)shape_numel(out->shape) * 4);
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
KERNEL(kernel_concat) {
  int axis = (int)n->i[0];
  int64_t outer, inner;
  around_axis(out->shape, axis, &outer, &inner);
  const char **src = malloc((size_t)n->nin * sizeof *src);
  if (!src) return kfail(it, "out of memory");
  for (int j = 0; j < n->nin; j++) src[j] = in[j]->data;
  char *dst = out->data;
  for (int64_t r = 0; r < outer; r++)
    for (int j = 0; j < n->nin; j++) {
      size_t bytes = (size_t)(in[j]->shape.dim[axis] * inner) * 4;
      memcpy(dst, src[j], bytes);
      dst += bytes;
      src[j] += bytes;
    }
  free(src);
  return 0;
}

/* x is [outer, A, inner] around axis i[0]; out is [outer, end-start, inner] holding
 * x[:, start:end, :] */
KERNEL(kernel_slice) {
  (void)it;
  int axis = (int)n->i[0];
  int64_t start = n->i[1], len = n->i[2] - n->i[1], outer, inner;
  around_axis(in[0]->shape, axis, &outer, &inner);
  int64_t A = in[0]->shape.dim[axis];
  const char *x = in[0]->data;
  char *y = out->data;
  for (int64_t r = 0; r < outer; r++)
    memcpy(y + (size_t)(r * len * inner) * 4, x + (size_t)((r * A + start) * inner) * 4,
           (size_t)(len * inner) * 4);
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
  const float *x = F32(xt);
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
  float *y = F32(out);
  for (int64_t o = 0; o < m; o++) {
    switch (kind) {
    case RED_SUM: y[o] = (float)acc[o]; break;
    case RED_MEAN: y[o] = (float)(acc[o] / (double)count); break;
    default: y[o] = (float)(acc[o] / (double)(count - 1)); break;
    }
  }
  free(acc);
  free(mean);
  return 0;
}

KERNEL(kernel_sum) { return reduce(it, n, in[0], out, RED_SUM); }
KERNEL(kernel_mean) { return reduce(it, n, in[0], out, RED_MEAN); }
KERNEL(kernel_var) { return reduce(it, n, in[0], out, RED_VAR); }

/* ---- codes and randomness ------------------------------------------------------------- */

/* codes is i32 [N] with values in [0, K); out is f32 [N,K], out[b, codes[b]] = 1 */
KERNEL(kernel_onehot) {
  int64_t N = out->shape.dim[0], K = out->shape.dim[1];
  const int32_t *c = I32(in[0]);
  float *y = F32(out);
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
 * otherwise as y = x * (float)(1 / (1 - p)) (inverted dropout: the expectation of y
 * is x). Each dropout site has its own stream, each step its own counter, so masks
 * differ between layers and steps but replay exactly. p = 0 is the identity. The
 * interpreter applies the op whenever it appears: functions that do not train are
 * expected to leave dropout out. */
KERNEL(kernel_dropout) {
  (void)it;
  double p = n->f[0];
  const int32_t *sd = I32(in[1]);
  uint64_t seed = (uint32_t)sd[0], step = (uint32_t)sd[1];
  uint32_t stream = RNG_STREAM_DROPOUT + (uint32_t)n->i[0];
  float scale = (float)(1.0 / (1.0 - p));
  const float *x = F32(in[0]);
  float *y = F32(out);
  int64_t count = shape_numel(out->shape);
  for (int64_t j = 0; j < count; j++)
    y[j] = rng_uniform(seed, stream, step, (uint64_t)j) < p ? 0.0f : x[j] * scale;
  return 0;
}

/* ---- losses: out is [] ------------------------------------------------------------------ */

/* logits, target any equal shape: mean over all elements of
 *   max(x,0) - x*t + log1p(exp(-|x|))
 * which is -[t log sigmoid(x) + (1-t) log(1 - sigmoid(x))] without overflow. */
KERNEL(kernel_bce_logits) {
  (void)it, (void)n;
  const float *x = F32(in[0]), *t = F32(in[1]);
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
  F32(out)[0] = (float)(sum / (double)count);
  return 0;
}

/* logits is [N,K], labels is i32 [N]: the mean over rows of
 *   logsumexp(logits[b]) - logits[b, label[b]]
 * with the row maximum taken out before exponentiating. */
static int mean_cross_entropy(ir_interp *it, const ir_tensor *lt, const ir_tensor *ct,
                              double *ce) {
  int64_t N = lt->shape.dim[0], K = lt->shape.dim[1];
  const float *l = F32(lt);
  const int32_t *c = I32(ct);
  double sum = 0;
  for (int64_t b = 0; b < N; b++) {
    if (c[b] < 0 || c[b] >= K)
      return kfail(it, "label %d at row %lld is outside [0, %lld)", (int)c[b], (long long)b,
                   (long long)K);
    const float *row = l + b * K;
    double mx = row[0];
    for (int64_t j = 1; j < K; j++) mx = fmax(mx, row[j]);
    double se = 0;
    for (int64_t j = 0; j < K; j++) se += exp(row[j] - mx);
    sum += mx + log(se) - row[c[b]];
  }
  *ce = sum / (double)N;
  return 0;
}

KERNEL(kernel_softmax_ce) {
  (void)n;
  double ce;
  if (mean_cross_entropy(it, in[0], in[1], &ce)) return 1;
  F32(out)[0] = (float)ce;
  return 0;
}

/* logits [N,K], c i32 [N]: the variational lower bound on the mutual information of a
 * uniform categorical code, ln K - mean cross-entropy (InfoGAN's L_I). */
KERNEL(kernel_info_categorical) {
  (void)n;
  double ce;
  if (mean_cross_entropy(it, in[0], in[1], &ce)) return 1;
  F32(out)[0] = (float)(log((double)in[0]->shape.dim[1]) - ce);
  return 0;
}

/* mean [N,D], x [N,D], std = f[0]: the negative log-likelihood of x under
 * N(mean, std^2), summed over D and averaged over N:
 *   1/N sum_b sum_d 0.5*((x-mean)/std)^2 + log(std) + 0.5*log(2*pi) */
KERNEL(kernel_gaussian_nll) {
  (void)it;
  int64_t N = in[0]->shape.dim[0], D = in[0]->shape.dim[1];
  const float *mu = F32(in[0]), *x = F32(in[1]);
  double sd = n->f[0], half_log_2pi = 0.5 * log(2 * 3.14159265358979323846);
  double sum = 0;
  for (int64_t b = 0; b < N; b++)
    for (int64_t d = 0; d < D; d++) {
      double z = ((double)x[b * D + d] - mu[b * D + d]) / sd;
      sum += 0.5 * z * z + log(sd) + half_log_2pi;
    }
  F32(out)[0] = (float)(sum / (double)N);
  return 0;
}
