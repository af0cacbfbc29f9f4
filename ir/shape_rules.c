/* shape_rules.c: the shape rule of every op (the `shape` column of op_table.c).
 *
 * A rule reads its operands' dtype and shape (in[0..n->nin)) and n's attributes, and
 * either sets n->dtype and n->shape and returns true, or writes a message for the
 * user and returns false with *bad naming the operand at fault (-1: no single one).
 * Users write per-sample shapes, so messages show shapes through shape_user_str and
 * count axes per sample (IR axis - 1 for batched operands). */
#include "ir/op_impl.h"

#include <stdarg.h>
#include <string.h>

#define SHAPE_BUF 160

__attribute__((format(printf, 5, 6))) static bool fail(char *err, size_t errn, int *bad,
                                                       int which, const char *fmt, ...) {
  if (bad) *bad = which;
  if (err && errn) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errn, fmt, ap);
    va_end(ap);
  }
  return false;
}

/* The shape as the user wrote it, in a caller-provided buffer. */
static const char *ustr(ir_shape s, char *buf) {
  shape_user_str(s, buf, SHAPE_BUF);
  return buf;
}

/* An IR axis of s as the user counts it: "axis 0" is the first per-sample axis. */
static const char *axis_name(ir_shape s, int64_t axis, char *buf) {
  if (s.batched && axis == 0)
    snprintf(buf, SHAPE_BUF, "the batch axis");
  else
    snprintf(buf, SHAPE_BUF, "axis %lld", (long long)(s.batched ? axis - 1 : axis));
  return buf;
}

static const char *op_name(const ir_node *n) { return ir_ops[n->op].name; }

/* Operand j must be f32. */
static bool want_f32(const ir_node *n, const ir_node *const *in, int j, char *err,
                     size_t errn, int *bad) {
  if (in[j]->dtype == IR_F32) return true;
  return fail(err, errn, bad, j, "%s expects a float tensor, got an integer tensor",
              op_name(n));
}

static ir_shape make4(int64_t a, int64_t b, int64_t c, int64_t d, bool batched) {
  int64_t dims[4] = {a, b, c, d};
  return shape_make(4, dims, batched);
}

/* ---- sources and effects ---------------------------------------------------------- */

/* INPUT and LOAD: the caller set n->dtype and n->ashape; only validate them. */
SHAPE_RULE(rule_source) {
  (void)in;
  ir_shape s = n->ashape;
  char sb[SHAPE_BUF];
  if (s.rank < 0 || s.rank > IR_MAX_RANK)
    return fail(err, errn, bad, -1, "a value of rank %d exceeds the %d dimensions migc supports",
                s.rank, IR_MAX_RANK);
  for (int d = 0; d < s.rank; d++)
    if (s.dim[d] <= 0)
      return fail(err, errn, bad, -1, "shape %s has a dimension that is not positive",
                  ustr(s, sb));
  if (n->dtype != IR_F32 && n->dtype != IR_I32)
    return fail(err, errn, bad, -1, "unknown element type %d", (int)n->dtype);
  s.batched = s.batched && s.rank > 0;
  n->shape = s;
  return true;
}

SHAPE_RULE(rule_const) {
  (void)in, (void)err, (void)errn, (void)bad;
  n->dtype = IR_F32;
  n->shape = shape_scalar();
  return true;
}

/* The stored value passes through as the node's value; ir_verify checks that it
 * matches the variable. */
SHAPE_RULE(rule_store) {
  (void)err, (void)errn, (void)bad;
  n->dtype = in[0]->dtype;
  n->shape = in[0]->shape;
  return true;
}

/* ---- elementwise -------------------------------------------------------------------- */

SHAPE_RULE(rule_unary) {
  if (!want_f32(n, in, 0, err, errn, bad)) return false;
  n->dtype = IR_F32;
  n->shape = in[0]->shape;
  return true;
}

SHAPE_RULE(rule_binary) {
  if (!want_f32(n, in, 0, err, errn, bad) || !want_f32(n, in, 1, err, errn, bad))
    return false;
  ir_shape out;
  if (!shape_broadcast(in[0]->shape, in[1]->shape, &out, err, errn)) {
    if (bad) *bad = -1;
    return false;
  }
  n->dtype = IR_F32;
  n->shape = out;
  return true;
}

/* ---- linear algebra and convolution -------------------------------------------------- */

/* a [M,K] (stored [K,M] if i[0]) x b [K,N] (stored [N,K] if i[1]) -> [M,N]. The result
 * is batched when a's rows are the batch: a batched and not transposed. */
SHAPE_RULE(rule_matmul) {
  char s0[SHAPE_BUF], s1[SHAPE_BUF];
  if (!want_f32(n, in, 0, err, errn, bad) || !want_f32(n, in, 1, err, errn, bad))
    return false;
  ir_shape a = in[0]->shape, b = in[1]->shape;
  bool ta = n->i[0] != 0, tb = n->i[1] != 0;
  for (int j = 0; j < 2; j++) {
    ir_shape s = j ? b : a;
    if (s.rank == 2) continue;
    if (s.batched)
      return fail(err, errn, bad, j, "matmul expects a [K] vector per sample, got %s",
                  ustr(s, s0));
    return fail(err, errn, bad, j, "matmul expects a matrix, got %s", ustr(s, s0));
  }
  int64_t m = ta ? a.dim[1] : a.dim[0], ka = ta ? a.dim[0] : a.dim[1];
  int64_t kb = tb ? b.dim[1] : b.dim[0], nn = tb ? b.dim[0] : b.dim[1];
  if (ka != kb)
    return fail(err, errn, bad, -1, "matmul inner dimensions differ: %s x %s", ustr(a, s0),
                ustr(b, s1));
  int64_t dims[2] = {m, nn};
  n->dtype = IR_F32;
  n->shape = shape_make(2, dims, a.batched && !ta);
  return true;
}

/* Shared checks of conv and deconv: x [N,C,H,W] and w rank 4 with kernel k, stride
 * and padding in range. `cin` is the axis of w that holds input channels. */
static bool check_conv(ir_node *n, const ir_node *const *in, int cin, char *err, size_t errn,
                       int *bad) {
  char s0[SHAPE_BUF];
  const char *op = op_name(n);
  if (!want_f32(n, in, 0, err, errn, bad) || !want_f32(n, in, 1, err, errn, bad))
    return false;
  ir_shape x = in[0]->shape, w = in[1]->shape;
  int64_t k = n->i[0], s = n->i[1], p = n->i[2];
  if (x.rank != 4)
    return fail(err, errn, bad, 0, "%s expects a %s input, got %s", op,
                x.batched ? "[C,H,W]" : "[N,C,H,W]", ustr(x, s0));
  if (w.rank != 4)
    return fail(err, errn, bad, 1, "%s weight must be %s, got %s", op,
                cin == 1 ? "[O,C,k,k]" : "[C,O,k,k]", ustr(w, s0));
  if (w.dim[cin] != x.dim[1])
    return fail(err, errn, bad, 0, "%s weight expects %lld input channels, got %lld", op,
                (long long)w.dim[cin], (long long)x.dim[1]);
  if (k < 1) return fail(err, errn, bad, -1, "%s kernel size must be at least 1, got %lld", op,
                         (long long)k);
  if (w.dim[2] != k || w.dim[3] != k)
    return fail(err, errn, bad, 1, "%s weight %s does not have kernel size %lld", op,
                ustr(w, s0), (long long)k);
  if (s < 1)
    return fail(err, errn, bad, -1, "%s stride must be at least 1, got %lld", op, (long long)s);
  if (p < 0)
    return fail(err, errn, bad, -1, "%s padding must not be negative, got %lld", op,
                (long long)p);
  return true;
}

/* x [N,C,H,W], w [O,C,k,k] -> [N,O,Ho,Wo], Ho = (H + 2p - k)/s + 1. */
SHAPE_RULE(rule_conv) {
  if (!check_conv(n, in, 1, err, errn, bad)) return false;
  ir_shape x = in[0]->shape, w = in[1]->shape;
  int64_t k = n->i[0], s = n->i[1], p = n->i[2];
  /* checked before dividing: C's division truncates -1/2 to 0, which would claim a
   * one-pixel output for an input smaller than the kernel */
  if (x.dim[2] + 2 * p < k || x.dim[3] + 2 * p < k)
    return fail(err, errn, bad, 0,
                "conv kernel %lld does not fit a %lldx%lld input with padding %lld",
                (long long)k, (long long)x.dim[2], (long long)x.dim[3], (long long)p);
  int64_t ho = (x.dim[2] + 2 * p - k) / s + 1, wo = (x.dim[3] + 2 * p - k) / s + 1;
  n->dtype = IR_F32;
  n->shape = make4(x.dim[0], w.dim[0], ho, wo, x.batched);
  return true;
}

/* x [N,C,H,W], w [C,O,k,k] -> [N,O,Ho,Wo], Ho = (H-1)s - 2p + k (PyTorch's
 * conv_transpose2d without output_padding). */
SHAPE_RULE(rule_deconv) {
  if (!check_conv(n, in, 0, err, errn, bad)) return false;
  ir_shape x = in[0]->shape, w = in[1]->shape;
  int64_t k = n->i[0], s = n->i[1], p = n->i[2];
  int64_t ho = (x.dim[2] - 1) * s - 2 * p + k, wo = (x.dim[3] - 1) * s - 2 * p + k;
  if (ho < 1 || wo < 1)
    return fail(err, errn, bad, -1,
                "deconv output would be empty: a %lldx%lld input with kernel %lld, stride "
                "%lld and padding %lld gives %lldx%lld",
                (long long)x.dim[2], (long long)x.dim[3], (long long)k, (long long)s,
                (long long)p, (long long)ho, (long long)wo);
  n->dtype = IR_F32;
  n->shape = make4(x.dim[0], w.dim[1], ho, wo, x.batched);
  return true;
}

/* ---- normalisation ------------------------------------------------------------------ */

/* x [N,C] or [N,C,H,W]; operands 1.. are per-channel vectors [C] named by `names`. */
static bool check_batchnorm(ir_node *n, const ir_node *const *in, int nparam,
                            char *err, size_t errn, int *bad) {
  static const char *const names[] = {"gamma", "beta", "mean", "variance"};
  char s0[SHAPE_BUF];
  if (!want_f32(n, in, 0, err, errn, bad)) return false;
  ir_shape x = in[0]->shape;
  if (x.rank != 2 && x.rank != 4)
    return fail(err, errn, bad, 0, "batchnorm expects a %s input, got %s",
                x.batched ? "[C] or [C,H,W]" : "[N,C] or [N,C,H,W]", ustr(x, s0));
  for (int j = 1; j <= nparam; j++) {
    ir_shape v = in[j]->shape;
    if (in[j]->dtype != IR_F32 || v.rank != 1 || v.dim[0] != x.dim[1])
      return fail(err, errn, bad, j, "batchnorm %s must be a float [%lld], got %s",
                  names[j - 1], (long long)x.dim[1], ustr(v, s0));
  }
  if (!(n->f[0] >= 0))
    return fail(err, errn, bad, -1, "batchnorm eps must not be negative, got %g", n->f[0]);
  n->dtype = IR_F32;
  n->shape = x;
  return true;
}

SHAPE_RULE(rule_batchnorm) { return check_batchnorm(n, in, 2, err, errn, bad); }
SHAPE_RULE(rule_batchnorm_infer) { return check_batchnorm(n, in, 4, err, errn, bad); }

/* ---- shape ---------------------------------------------------------------------------- */

/* To n->ashape, whose batched flag the caller chose; the element count must agree. */
SHAPE_RULE(rule_reshape) {
  char s0[SHAPE_BUF], s1[SHAPE_BUF];
  ir_shape t = n->ashape, x = in[0]->shape;
  if (t.rank < 0 || t.rank > IR_MAX_RANK)
    return fail(err, errn, bad, -1, "reshape to rank %d exceeds the %d dimensions migc supports",
                t.rank, IR_MAX_RANK);
  for (int d = 0; d < t.rank; d++)
    if (t.dim[d] <= 0)
      return fail(err, errn, bad, -1, "reshape target %s has a dimension that is not positive",
                  ustr(t, s0));
  if (shape_numel(t) != shape_numel(x))
    return fail(err, errn, bad, 0, "cannot reshape %s to %s", ustr(x, s0), ustr(t, s1));
  t.batched = t.batched && t.rank > 0;
  n->dtype = in[0]->dtype;
  n->shape = t;
  return true;
}

/* Operands of one dtype and rank, equal except along axis i[0], which adds up. */
SHAPE_RULE(rule_concat) {
  char s0[SHAPE_BUF], s1[SHAPE_BUF], ax[SHAPE_BUF];
  if (n->nin < 1) return fail(err, errn, bad, -1, "concat needs at least one operand");
  ir_shape r = in[0]->shape;
  int64_t axis = n->i[0];
  if (axis < 0 || axis >= r.rank)
    return fail(err, errn, bad, 0, "concat: %s is out of range for %s", axis_name(r, axis, ax),
                ustr(r, s0));
  bool batched = r.batched;
  for (int j = 1; j < n->nin; j++) {
    ir_shape s = in[j]->shape;
    if (in[j]->dtype != in[0]->dtype)
      return fail(err, errn, bad, j, "concat: operands mix float and integer tensors");
    bool same = s.rank == r.rank;
    for (int d = 0; same && d < r.rank; d++)
      if (d != axis && s.dim[d] != r.dim[d]) same = false;
    if (!same)
      return fail(err, errn, bad, j, "concat: shapes %s and %s differ outside %s",
                  ustr(in[0]->shape, s0), ustr(s, s1), axis_name(in[0]->shape, axis, ax));
    r.dim[axis] += s.dim[axis];
    batched = batched && s.batched;
  }
  r.batched = batched;
  n->dtype = in[0]->dtype;
  n->shape = r;
  return true;
}

/* Elements [i[1], i[2]) of axis i[0]. Slicing the batch axis keeps the flag: the
 * halves of a concatenated real+fake batch are batches again. */
SHAPE_RULE(rule_slice) {
  char s0[SHAPE_BUF], ax[SHAPE_BUF];
  ir_shape x = in[0]->shape;
  int64_t axis = n->i[0], start = n->i[1], end = n->i[2];
  if (axis < 0 || axis >= x.rank)
    return fail(err, errn, bad, 0, "slice: %s is out of range for %s", axis_name(x, axis, ax),
                ustr(x, s0));
  if (start < 0 || start >= end || end > x.dim[axis])
    return fail(err, errn, bad, -1, "slice [%lld, %lld) is out of range for %s of %s",
                (long long)start, (long long)end, axis_name(x, axis, ax), ustr(x, s0));
  x.dim[axis] = end - start;
  n->dtype = in[0]->dtype;
  n->shape = x;
  return true;
}

/* ---- reductions ------------------------------------------------------------------------ */

/* i[0]: bit a set reduces IR axis a; i[1]: keep reduced axes as size 1, or drop them.
 * Reducing axis 0 of a batched value averages over the batch, so the result is no
 * longer batched. */
SHAPE_RULE(rule_reduce) {
  char s0[SHAPE_BUF], ax[SHAPE_BUF];
  if (!want_f32(n, in, 0, err, errn, bad)) return false;
  ir_shape x = in[0]->shape;
  int64_t mask = n->i[0];
  bool keep = n->i[1] != 0;
  if (mask < 0)
    return fail(err, errn, bad, -1, "%s: invalid axes mask %lld", op_name(n), (long long)mask);
  for (int a = x.rank; a < 63; a++)
    if (mask >> a & 1)
      return fail(err, errn, bad, 0, "%s: %s is out of range for %s", op_name(n),
                  axis_name(x, a, ax), ustr(x, s0));
  ir_shape r = shape_scalar();
  for (int d = 0; d < x.rank; d++) {
    if (mask >> d & 1) {
      if (keep) r.dim[r.rank++] = 1;
    } else {
      r.dim[r.rank++] = x.dim[d];
    }
  }
  r.batched = x.batched && !(mask & 1) && r.rank > 0;
  n->dtype = IR_F32;
  n->shape = r;
  return true;
}

/* ---- codes and randomness ------------------------------------------------------------- */

/* i32 [N] -> f32 [N, i[0]] */
SHAPE_RULE(rule_onehot) {
  char s0[SHAPE_BUF];
  ir_shape c = in[0]->shape;
  if (in[0]->dtype != IR_I32)
    return fail(err, errn, bad, 0, "onehot expects integer codes, got a float tensor");
  if (c.rank != 1)
    return fail(err, errn, bad, 0, "onehot expects a single code per sample, got %s",
                ustr(c, s0));
  if (n->i[0] < 2)
    return fail(err, errn, bad, -1, "onehot needs at least 2 classes, got %lld",
                (long long)n->i[0]);
  int64_t dims[2] = {c.dim[0], n->i[0]};
  n->dtype = IR_F32;
  n->shape = shape_make(2, dims, c.batched);
  return true;
}

/* x, seed i32 [2] (run seed, step) -> y like x; p = f[0] in [0, 1). */
SHAPE_RULE(rule_dropout) {
  char s0[SHAPE_BUF];
  if (!want_f32(n, in, 0, err, errn, bad)) return false;
  ir_shape s = in[1]->shape;
  if (in[1]->dtype != IR_I32 || s.rank != 1 || s.dim[0] != 2)
    return fail(err, errn, bad, 1, "dropout seed must be an integer [2] (seed, step), got %s",
                ustr(s, s0));
  if (!(n->f[0] >= 0 && n->f[0] < 1))
    return fail(err, errn, bad, -1, "dropout probability must be in [0, 1), got %g", n->f[0]);
  if (n->i[0] < 0)
    return fail(err, errn, bad, -1, "dropout site must not be negative, got %lld",
                (long long)n->i[0]);
  n->dtype = IR_F32;
  n->shape = in[0]->shape;
  return true;
}

/* ---- losses ---------------------------------------------------------------------------- */

SHAPE_RULE(rule_bce_logits) {
  char s0[SHAPE_BUF], s1[SHAPE_BUF];
  if (!want_f32(n, in, 0, err, errn, bad) || !want_f32(n, in, 1, err, errn, bad))
    return false;
  /* The target may be a constant such as 1 or 0: it broadcasts to the logits. */
  ir_shape joined;
  char why[2];
  if (!shape_broadcast(in[0]->shape, in[1]->shape, &joined, why, sizeof why) ||
      !shape_equal(joined, in[0]->shape))
    return fail(err, errn, bad, 1, "bce: the target %s does not match the logits %s",
                ustr(in[1]->shape, s1), ustr(in[0]->shape, s0));
  n->dtype = IR_F32;
  n->shape = shape_scalar();
  return true;
}

/* logits [N,K] f32 and labels/codes [N] i32 (softmax_ce, info_categorical). */
static bool check_logits_labels(ir_node *n, const ir_node *const *in, int64_t min_k,
                                char *err, size_t errn, int *bad) {
  char s0[SHAPE_BUF];
  const char *op = op_name(n);
  if (!want_f32(n, in, 0, err, errn, bad)) return false;
  ir_shape l = in[0]->shape, c = in[1]->shape;
  if (l.rank != 2)
    return fail(err, errn, bad, 0, "%s expects %s logits, got %s", op,
                l.batched ? "[K]" : "[N,K]", ustr(l, s0));
  if (l.dim[1] < min_k)
    return fail(err, errn, bad, 0, "%s needs at least %lld classes, got %lld", op,
                (long long)min_k, (long long)l.dim[1]);
  if (in[1]->dtype != IR_I32)
    return fail(err, errn, bad, 1, "%s expects integer labels, got a float tensor", op);
  if (c.rank != 1)
    return fail(err, errn, bad, 1, "%s expects a single label per sample, got %s", op,
                ustr(c, s0));
  if (c.dim[0] != l.dim[0])
    return fail(err, errn, bad, 1, "%s: %lld labels for %lld rows of logits", op,
                (long long)c.dim[0], (long long)l.dim[0]);
  n->dtype = IR_F32;
  n->shape = shape_scalar();
  return true;
}

SHAPE_RULE(rule_softmax_ce) { return check_logits_labels(n, in, 1, err, errn, bad); }
SHAPE_RULE(rule_info_categorical) { return check_logits_labels(n, in, 2, err, errn, bad); }

/* mean [N,D], x [N,D] -> scalar; std f[0] > 0. */
SHAPE_RULE(rule_gaussian_nll) {
  char s0[SHAPE_BUF], s1[SHAPE_BUF];
  if (!want_f32(n, in, 0, err, errn, bad) || !want_f32(n, in, 1, err, errn, bad))
    return false;
  ir_shape m = in[0]->shape, x = in[1]->shape;
  if (m.rank != 2)
    return fail(err, errn, bad, 0, "gaussian_nll expects a %s mean, got %s",
                m.batched ? "[D]" : "[N,D]", ustr(m, s0));
  if (!shape_equal(m, x))
    return fail(err, errn, bad, 1, "gaussian_nll: mean %s and value %s differ in shape",
                ustr(m, s0), ustr(x, s1));
  if (!(n->f[0] > 0))
    return fail(err, errn, bad, -1, "gaussian_nll std must be positive, got %g", n->f[0]);
  n->dtype = IR_F32;
  n->shape = shape_scalar();
  return true;
}


/* ---- adjoints (made by autodiff) ------------------------------------------------------
 * Ops whose result shape is an attribute (conv_grad_x, conv_grad_w, expand, unslice)
 * take it from n->ashape, batched flag included, as reshape does. */

/* n->ashape is a shape migc can hold: rank in range, every dimension positive. */
static bool check_ashape(const ir_node *n, char *err, size_t errn, int *bad) {
  char s0[SHAPE_BUF];
  ir_shape t = n->ashape;
  if (t.rank < 0 || t.rank > IR_MAX_RANK)
    return fail(err, errn, bad, -1, "%s to rank %d exceeds the %d dimensions migc supports",
                op_name(n), t.rank, IR_MAX_RANK);
  for (int d = 0; d < t.rank; d++)
    if (t.dim[d] <= 0)
      return fail(err, errn, bad, -1, "%s target %s has a dimension that is not positive",
                  op_name(n), ustr(t, s0));
  return true;
}

static ir_shape target(const ir_node *n) {
  ir_shape t = n->ashape;
  t.batched = t.batched && t.rank > 0;
  return t;
}

/* relu_grad, lrelu_grad: the forward input x and the gradient dy, of one shape. */
SHAPE_RULE(rule_act_grad) {
  char s0[SHAPE_BUF], s1[SHAPE_BUF];
  if (!want_f32(n, in, 0, err, errn, bad) || !want_f32(n, in, 1, err, errn, bad))
    return false;
  if (!shape_equal(in[0]->shape, in[1]->shape))
    return fail(err, errn, bad, 1, "%s: the input %s and its gradient %s differ in shape",
                op_name(n), ustr(in[0]->shape, s0), ustr(in[1]->shape, s1));
  n->dtype = IR_F32;
  n->shape = in[1]->shape;
  return true;
}

/* Kernel size, stride and padding, checked as conv checks them. */
static bool check_ksp(const ir_node *n, char *err, size_t errn, int *bad) {
  const char *op = op_name(n);
  int64_t k = n->i[0], s = n->i[1], p = n->i[2];
  if (k < 1)
    return fail(err, errn, bad, -1, "%s kernel size must be at least 1, got %lld", op,
                (long long)k);
  if (s < 1)
    return fail(err, errn, bad, -1, "%s stride must be at least 1, got %lld", op, (long long)s);
  if (p < 0)
    return fail(err, errn, bad, -1, "%s padding must not be negative, got %lld", op,
                (long long)p);
  return true;
}

/* The conv with n's k, s, p of an input x [.,.,H,W] (operand xj, -1: the target) gives
 * dy's [.,.,Ho,Wo] (operand dyj): Ho = (H + 2p - k)/s + 1, likewise Wo. */
static bool check_conv_out(const ir_node *n, ir_shape x, int xj, ir_shape dy, int dyj,
                           char *err, size_t errn, int *bad) {
  int64_t k = n->i[0], s = n->i[1], p = n->i[2];
  if (x.dim[2] + 2 * p < k || x.dim[3] + 2 * p < k)
    return fail(err, errn, bad, xj,
                "%s kernel %lld does not fit a %lldx%lld input with padding %lld", op_name(n),
                (long long)k, (long long)x.dim[2], (long long)x.dim[3], (long long)p);
  int64_t ho = (x.dim[2] + 2 * p - k) / s + 1, wo = (x.dim[3] + 2 * p - k) / s + 1;
  if (dy.dim[2] != ho || dy.dim[3] != wo)
    return fail(err, errn, bad, dyj,
                "%s: a %lldx%lld input with kernel %lld, stride %lld and padding %lld gives "
                "%lldx%lld, but the gradient is %lldx%lld",
                op_name(n), (long long)x.dim[2], (long long)x.dim[3], (long long)k,
                (long long)s, (long long)p, (long long)ho, (long long)wo,
                (long long)dy.dim[2], (long long)dy.dim[3]);
  return true;
}

/* dy [N,O,Ho,Wo], w [O,C,k,k] -> the conv input's gradient, ashape [N,C,H,W]. H may
 * exceed what the conv reads (rows it never reads get zero gradient). */
SHAPE_RULE(rule_conv_grad_x) {
  char s0[SHAPE_BUF];
  const char *op = op_name(n);
  if (!want_f32(n, in, 0, err, errn, bad) || !want_f32(n, in, 1, err, errn, bad) ||
      !check_ashape(n, err, errn, bad) || !check_ksp(n, err, errn, bad))
    return false;
  ir_shape dy = in[0]->shape, w = in[1]->shape, x = target(n);
  int64_t k = n->i[0];
  if (dy.rank != 4)
    return fail(err, errn, bad, 0, "%s expects a %s gradient, got %s", op,
                dy.batched ? "[O,Ho,Wo]" : "[N,O,Ho,Wo]", ustr(dy, s0));
  if (w.rank != 4)
    return fail(err, errn, bad, 1, "%s weight must be [O,C,k,k], got %s", op, ustr(w, s0));
  if (x.rank != 4)
    return fail(err, errn, bad, -1, "%s target must be %s, got %s", op,
                x.batched ? "[C,H,W]" : "[N,C,H,W]", ustr(x, s0));
  if (w.dim[2] != k || w.dim[3] != k)
    return fail(err, errn, bad, 1, "%s weight %s does not have kernel size %lld", op,
                ustr(w, s0), (long long)k);
  if (w.dim[0] != dy.dim[1])
    return fail(err, errn, bad, 0, "%s: the weight has %lld output channels, the gradient %lld",
                op, (long long)w.dim[0], (long long)dy.dim[1]);
  if (w.dim[1] != x.dim[1])
    return fail(err, errn, bad, -1, "%s: the weight has %lld input channels, the target %lld",
                op, (long long)w.dim[1], (long long)x.dim[1]);
  if (x.dim[0] != dy.dim[0])
    return fail(err, errn, bad, 0, "%s: the gradient has a batch of %lld, the target %lld", op,
                (long long)dy.dim[0], (long long)x.dim[0]);
  if (!check_conv_out(n, x, -1, dy, 0, err, errn, bad)) return false;
  n->dtype = IR_F32;
  n->shape = x;
  return true;
}

/* x [N,C,H,W], dy [N,O,Ho,Wo] -> the conv weight's gradient, ashape [O,C,k,k]. With the
 * roles swapped (x: the deconv output's gradient, dy: the deconv input) it is the
 * deconv weight's gradient [C,O,k,k]. */
SHAPE_RULE(rule_conv_grad_w) {
  char s0[SHAPE_BUF];
  const char *op = op_name(n);
  if (!want_f32(n, in, 0, err, errn, bad) || !want_f32(n, in, 1, err, errn, bad) ||
      !check_ashape(n, err, errn, bad) || !check_ksp(n, err, errn, bad))
    return false;
  ir_shape x = in[0]->shape, dy = in[1]->shape, w = target(n);
  int64_t k = n->i[0];
  if (x.rank != 4)
    return fail(err, errn, bad, 0, "%s expects a %s input, got %s", op,
                x.batched ? "[C,H,W]" : "[N,C,H,W]", ustr(x, s0));
  if (dy.rank != 4)
    return fail(err, errn, bad, 1, "%s expects a %s gradient, got %s", op,
                dy.batched ? "[O,Ho,Wo]" : "[N,O,Ho,Wo]", ustr(dy, s0));
  if (w.rank != 4)
    return fail(err, errn, bad, -1, "%s target must be [O,C,k,k], got %s", op, ustr(w, s0));
  if (w.dim[2] != k || w.dim[3] != k)
    return fail(err, errn, bad, -1, "%s target %s does not have kernel size %lld", op,
                ustr(w, s0), (long long)k);
  if (x.dim[0] != dy.dim[0])
    return fail(err, errn, bad, 1, "%s: the input has a batch of %lld, the gradient %lld", op,
                (long long)x.dim[0], (long long)dy.dim[0]);
  if (w.dim[0] != dy.dim[1])
    return fail(err, errn, bad, 1, "%s: the target has %lld output channels, the gradient %lld",
                op, (long long)w.dim[0], (long long)dy.dim[1]);
  if (w.dim[1] != x.dim[1])
    return fail(err, errn, bad, 0, "%s: the target has %lld input channels, the input %lld", op,
                (long long)w.dim[1], (long long)x.dim[1]);
  if (!check_conv_out(n, x, 0, dy, 1, err, errn, bad)) return false;
  n->dtype = IR_F32;
  n->shape = w;
  return true;
}

/* x [N,C] or [N,C,H,W] and the gradient dy of x's shape, at operand dyj. */
static bool check_bn_grad(const ir_node *n, const ir_node *const *in, int dyj, char *err,
                          size_t errn, int *bad) {
  char s0[SHAPE_BUF], s1[SHAPE_BUF];
  const char *op = op_name(n);
  for (int j = 0; j < n->nin; j++)
    if (!want_f32(n, in, j, err, errn, bad)) return false;
  ir_shape x = in[0]->shape, dy = in[dyj]->shape;
  if (x.rank != 2 && x.rank != 4)
    return fail(err, errn, bad, 0, "%s expects a %s input, got %s", op,
                x.batched ? "[C] or [C,H,W]" : "[N,C] or [N,C,H,W]", ustr(x, s0));
  if (!shape_equal(x, dy))
    return fail(err, errn, bad, dyj, "%s: the input %s and its gradient %s differ in shape", op,
                ustr(x, s0), ustr(dy, s1));
  if (!(n->f[0] >= 0))
    return fail(err, errn, bad, -1, "%s eps must not be negative, got %g", op, n->f[0]);
  return true;
}

/* x, gamma [C], dy -> dx of x's shape */
SHAPE_RULE(rule_batchnorm_grad) {
  char s0[SHAPE_BUF];
  if (!check_bn_grad(n, in, 2, err, errn, bad)) return false;
  ir_shape x = in[0]->shape, g = in[1]->shape;
  if (g.rank != 1 || g.dim[0] != x.dim[1])
    return fail(err, errn, bad, 1, "%s gamma must be a float [%lld], got %s", op_name(n),
                (long long)x.dim[1], ustr(g, s0));
  n->dtype = IR_F32;
  n->shape = x;
  return true;
}

/* x, dy -> [C] */
SHAPE_RULE(rule_batchnorm_grad_gamma) {
  if (!check_bn_grad(n, in, 1, err, errn, bad)) return false;
  int64_t c = in[0]->shape.dim[1];
  n->dtype = IR_F32;
  n->shape = shape_make(1, &c, false);
  return true;
}

/* x -> ashape, numpy's broadcasting: x right-aligned, its dims equal to the target's
 * or 1, missing leading dims repeating. Unlike the binary ops, an unbatched [1,K] may
 * expand to a batched [N,K] (the gradient of a mean over the batch). */
SHAPE_RULE(rule_expand) {
  char s0[SHAPE_BUF], s1[SHAPE_BUF];
  if (!want_f32(n, in, 0, err, errn, bad) || !check_ashape(n, err, errn, bad)) return false;
  ir_shape x = in[0]->shape, t = target(n);
  bool ok = x.rank <= t.rank;
  for (int d = 0; ok && d < x.rank; d++) {
    int64_t xd = x.dim[d], td = t.dim[d + t.rank - x.rank];
    ok = xd == td || xd == 1;
  }
  if (!ok)
    return fail(err, errn, bad, 0, "expand: cannot broadcast %s to %s", ustr(x, s0),
                ustr(t, s1));
  n->dtype = IR_F32;
  n->shape = t;
  return true;
}

/* dy -> ashape: zeros with dy at [i[1], i[2]) of axis i[0] (slice's adjoint). */
SHAPE_RULE(rule_unslice) {
  char s0[SHAPE_BUF], s1[SHAPE_BUF], ax[SHAPE_BUF];
  if (!want_f32(n, in, 0, err, errn, bad) || !check_ashape(n, err, errn, bad)) return false;
  ir_shape dy = in[0]->shape, t = target(n);
  int64_t axis = n->i[0], start = n->i[1], end = n->i[2];
  if (axis < 0 || axis >= t.rank)
    return fail(err, errn, bad, -1, "unslice: %s is out of range for %s", axis_name(t, axis, ax),
                ustr(t, s0));
  if (start < 0 || start >= end || end > t.dim[axis])
    return fail(err, errn, bad, -1, "unslice [%lld, %lld) is out of range for %s of %s",
                (long long)start, (long long)end, axis_name(t, axis, ax), ustr(t, s0));
  bool same = dy.rank == t.rank;
  for (int d = 0; same && d < t.rank; d++)
    if (d != axis && dy.dim[d] != t.dim[d]) same = false;
  if (!same)
    return fail(err, errn, bad, 0, "unslice: shapes %s and %s differ outside %s", ustr(dy, s0),
                ustr(t, s1), axis_name(t, axis, ax));
  if (dy.dim[axis] != end - start)
    return fail(err, errn, bad, 0,
                "unslice: the gradient has %lld elements along %s, the range [%lld, %lld) %lld",
                (long long)dy.dim[axis], axis_name(t, axis, ax), (long long)start,
                (long long)end, (long long)(end - start));
  n->dtype = IR_F32;
  n->shape = t;
  return true;
}

/* softmax over the last axis: any rank >= 1, same shape */
SHAPE_RULE(rule_max_grad) {
  char s0[SHAPE_BUF], s1[SHAPE_BUF];
  for (int j = 0; j < 3; j++)
    if (!want_f32(n, in, j, err, errn, bad)) return false;
  for (int j = 1; j < 3; j++)
    if (!shape_equal(in[0]->shape, in[j]->shape))
      return fail(err, errn, bad, j, "max_grad: operands %s and %s differ in shape",
                  ustr(in[0]->shape, s0), ustr(in[j]->shape, s1));
  n->dtype = IR_F32;
  n->shape = in[0]->shape;
  return true;
}

SHAPE_RULE(rule_select) {
  char s0[SHAPE_BUF], s1[SHAPE_BUF];
  for (int j = 0; j < 3; j++)
    if (!want_f32(n, in, j, err, errn, bad)) return false;
  if (shape_numel(in[0]->shape) != 1)
    return fail(err, errn, bad, 0, "select: the condition must be one number, got %s",
                ustr(in[0]->shape, s0));
  if (!shape_equal(in[1]->shape, in[2]->shape))
    return fail(err, errn, bad, 2, "select: operands %s and %s differ in shape",
                ustr(in[1]->shape, s0), ustr(in[2]->shape, s1));
  n->dtype = IR_F32;
  n->shape = in[1]->shape;
  return true;
}

SHAPE_RULE(rule_softmax) {
  if (!want_f32(n, in, 0, err, errn, bad)) return false;
  if (in[0]->shape.rank < 1)
    return fail(err, errn, bad, 0, "softmax expects at least one axis, got a scalar");
  n->dtype = IR_F32;
  n->shape = in[0]->shape;
  return true;
}
