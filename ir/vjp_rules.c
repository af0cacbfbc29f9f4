/* vjp_rules.c: the vector-Jacobian product of every differentiable op, the column
 * `vjp` of the op table. Each rule reads the forward node it differentiates and
 * appends the nodes of its operands' adjoints, in terms of ordinary IR ops (so the
 * gradient is IR like any other: printable, verifiable, interpretable, fusable).
 * Composite ops whose gradients are delicate (batchnorm, the losses) have their own
 * adjoint ops or are written in stable closed form, as PyTorch does.
 *
 * A rule copies the node it reads before emitting anything: emitting may move the
 * node array. */
#include "op_impl.h"

#include <math.h>

/* ---- building blocks ------------------------------------------------------------ */

static int emit(ir_func *f, int b, ir_op op, int nin, const int *in, const ir_attrs *a) {
  return ir_emit_checked(f, b, op, in, nin, a);
}

static int un(ir_func *f, int b, ir_op op, int x) { return emit(f, b, op, 1, &x, NULL); }

static int bin(ir_func *f, int b, ir_op op, int x, int y) {
  int in[2] = {x, y};
  return emit(f, b, op, 2, in, NULL);
}

static int cnst(ir_func *f, int b, double v) {
  ir_attrs a = {.f = {v}};
  return emit(f, b, IR_OP_CONST, 0, NULL, &a);
}

static int scale(ir_func *f, int b, int x, double k) { return bin(f, b, IR_OP_MUL, x, cnst(f, b, k)); }

static int reshape(ir_func *f, int b, int x, ir_shape to) {
  ir_attrs a = {.ashape = to};
  return emit(f, b, IR_OP_RESHAPE, 1, &x, &a);
}

static ir_shape shape_of(const ir_func *f, int id) { return f->nodes[id].shape; }

/* Sums g (the shape two operands broadcast to) back down to `to`, the shape of one
 * operand: over leading axes `to` lacks and over axes where `to` has size 1. */
static int reduce_to(ir_func *f, int b, int g, ir_shape to) {
  ir_shape gs = shape_of(f, g);
  int off = gs.rank - to.rank;
  int64_t mask = 0;
  for (int d = 0; d < gs.rank; d++)
    if (d < off || (to.dim[d - off] == 1 && gs.dim[d] != 1)) mask |= 1LL << d;
  if (mask) {
    ir_attrs a = {.i = {mask, 1}};
    g = emit(f, b, IR_OP_SUM, 1, &g, &a);
  }
  ir_shape now = shape_of(f, g);
  if (now.rank != to.rank || !shape_equal(now, to) || now.batched != to.batched)
    g = reshape(f, b, g, to);
  return g;
}

/* The shape a reduction with keep dims would have had. */
static ir_shape kept_shape(ir_shape x, int64_t mask) {
  ir_shape s = x;
  for (int d = 0; d < x.rank; d++)
    if (mask >> d & 1) s.dim[d] = 1;
  s.batched = x.batched && !(mask & 1);
  return s;
}

/* dy of a reduction of x over `mask`, spread back over x's shape. */
static int spread(ir_func *f, int b, int dy, ir_shape x, int64_t mask) {
  int g = reshape(f, b, dy, kept_shape(x, mask));
  ir_attrs a = {.ashape = x};
  return emit(f, b, IR_OP_EXPAND, 1, &g, &a);
}

static int64_t reduced_count(ir_shape x, int64_t mask) {
  int64_t n = 1;
  for (int d = 0; d < x.rank; d++)
    if (mask >> d & 1) n *= x.dim[d];
  return n;
}

/* ---- elementwise ------------------------------------------------------------------ */

VJP(vjp_neg) {
  (void)id, (void)want;
  dx[0] = un(f, block, IR_OP_NEG, dy);
}

VJP(vjp_relu) {
  (void)want;
  dx[0] = bin(f, block, IR_OP_RELU_GRAD, f->nodes[id].in[0], dy);
}

VJP(vjp_lrelu) {
  (void)want;
  ir_node n = f->nodes[id];
  ir_attrs a = {.f = {n.f[0]}};
  int in[2] = {n.in[0], dy};
  dx[0] = emit(f, block, IR_OP_LRELU_GRAD, 2, in, &a);
}

/* d tanh = 1 - y^2 */
VJP(vjp_tanh) {
  (void)want;
  int y2 = bin(f, block, IR_OP_MUL, id, id);
  int d = bin(f, block, IR_OP_SUB, cnst(f, block, 1.0), y2);
  dx[0] = bin(f, block, IR_OP_MUL, dy, d);
}

/* d sigmoid = y (1 - y) */
VJP(vjp_sigmoid) {
  (void)want;
  int one_minus = bin(f, block, IR_OP_SUB, cnst(f, block, 1.0), id);
  int d = bin(f, block, IR_OP_MUL, id, one_minus);
  dx[0] = bin(f, block, IR_OP_MUL, dy, d);
}

/* d softplus = sigmoid(x) */
VJP(vjp_softplus) {
  (void)want;
  int s = un(f, block, IR_OP_SIGMOID, f->nodes[id].in[0]);
  dx[0] = bin(f, block, IR_OP_MUL, dy, s);
}

VJP(vjp_exp) {
  (void)want;
  dx[0] = bin(f, block, IR_OP_MUL, dy, id);
}

VJP(vjp_log) {
  (void)want;
  dx[0] = bin(f, block, IR_OP_DIV, dy, f->nodes[id].in[0]);
}

/* d sqrt = 1 / (2 y) */
VJP(vjp_sqrt) {
  (void)want;
  dx[0] = bin(f, block, IR_OP_DIV, dy, scale(f, block, id, 2.0));
}

/* d sin = cos, d cos = -sin: each rule emits only ops with rules, so both differentiate
 * again */
VJP(vjp_sin) {
  (void)want;
  dx[0] = bin(f, block, IR_OP_MUL, dy, un(f, block, IR_OP_COS, f->nodes[id].in[0]));
}

VJP(vjp_cos) {
  (void)want;
  dx[0] = bin(f, block, IR_OP_MUL, dy, un(f, block, IR_OP_NEG,
                                          un(f, block, IR_OP_SIN, f->nodes[id].in[0])));
}

VJP(vjp_add) {
  ir_node n = f->nodes[id];
  for (int j = 0; j < 2; j++)
    if (want[j]) dx[j] = reduce_to(f, block, dy, shape_of(f, n.in[j]));
}

VJP(vjp_sub) {
  ir_node n = f->nodes[id];
  if (want[0]) dx[0] = reduce_to(f, block, dy, shape_of(f, n.in[0]));
  if (want[1]) dx[1] = reduce_to(f, block, un(f, block, IR_OP_NEG, dy), shape_of(f, n.in[1]));
}

VJP(vjp_mul) {
  ir_node n = f->nodes[id];
  if (want[0]) dx[0] = reduce_to(f, block, bin(f, block, IR_OP_MUL, dy, n.in[1]), shape_of(f, n.in[0]));
  if (want[1]) dx[1] = reduce_to(f, block, bin(f, block, IR_OP_MUL, dy, n.in[0]), shape_of(f, n.in[1]));
}

/* y = a / b: da = dy / b, db = -dy a / b^2 = -(dy / b) y */
VJP(vjp_div) {
  ir_node n = f->nodes[id];
  int q = bin(f, block, IR_OP_DIV, dy, n.in[1]);
  if (want[0]) dx[0] = reduce_to(f, block, q, shape_of(f, n.in[0]));
  if (want[1]) {
    int g = un(f, block, IR_OP_NEG, bin(f, block, IR_OP_MUL, q, id));
    dx[1] = reduce_to(f, block, g, shape_of(f, n.in[1]));
  }
}

/* ---- linear algebra ------------------------------------------------------------------ */

static int mm(ir_func *f, int b, int x, int y, int tx, int ty) {
  ir_attrs a = {.i = {tx, ty}};
  int in[2] = {x, y};
  return emit(f, b, IR_OP_MATMUL, 2, in, &a);
}

/* C = op(A) op(B) with op transposing where the flags say. Every adjoint is one more
 * matmul with flags, never a transposed copy. */
VJP(vjp_matmul) {
  ir_node n = f->nodes[id];
  int A = n.in[0], B = n.in[1];
  bool ta = n.i[0], tb = n.i[1];
  if (want[0]) {
    if (!ta)
      dx[0] = tb ? mm(f, block, dy, B, 0, 0) : mm(f, block, dy, B, 0, 1); /* dC op(B)^T */
    else
      dx[0] = tb ? mm(f, block, B, dy, 1, 1) : mm(f, block, B, dy, 0, 1); /* op(B) dC^T */
  }
  if (want[1]) {
    if (!tb)
      dx[1] = ta ? mm(f, block, A, dy, 0, 0) : mm(f, block, A, dy, 1, 0); /* op(A)^T dC */
    else
      dx[1] = ta ? mm(f, block, dy, A, 1, 1) : mm(f, block, dy, A, 1, 0); /* dC^T op(A) */
  }
}

static int conv_op(ir_func *f, int b, ir_op op, int x, int y, const ir_node *fwd, ir_shape to) {
  ir_attrs a = {.i = {fwd->i[0], fwd->i[1], fwd->i[2]}, .ashape = to};
  int in[2] = {x, y};
  return emit(f, b, op, 2, in, &a);
}

VJP(vjp_conv) {
  ir_node n = f->nodes[id];
  int x = n.in[0], w = n.in[1];
  if (want[0]) dx[0] = conv_op(f, block, IR_OP_CONV_GRAD_X, dy, w, &n, shape_of(f, x));
  if (want[1]) dx[1] = conv_op(f, block, IR_OP_CONV_GRAD_W, x, dy, &n, shape_of(f, w));
}

/* A transposed conv's input gradient is the conv with the same weight, k, s and p;
 * its weight gradient is a conv weight gradient with input and output swapped. */
VJP(vjp_deconv) {
  ir_node n = f->nodes[id];
  int x = n.in[0], w = n.in[1];
  if (want[0]) dx[0] = conv_op(f, block, IR_OP_CONV, dy, w, &n, shape_of(f, x));
  if (want[1]) dx[1] = conv_op(f, block, IR_OP_CONV_GRAD_W, dy, x, &n, shape_of(f, w));
}

/* ---- normalisation ------------------------------------------------------------------- */

VJP(vjp_batchnorm) {
  ir_node n = f->nodes[id];
  ir_attrs a = {.f = {n.f[0]}, .i = {n.i[0]}};
  if (want[0]) {
    int in[3] = {n.in[0], n.in[1], dy};
    dx[0] = emit(f, block, IR_OP_BATCHNORM_GRAD, 3, in, &a);
  }
  if (want[1]) {
    int in[2] = {n.in[0], dy};
    dx[1] = emit(f, block, IR_OP_BATCHNORM_GRAD_GAMMA, 2, in, &a);
  }
  if (want[2]) {
    int rank = shape_of(f, dy).rank;
    ir_attrs s = {.i = {((1LL << rank) - 1) & ~2LL, 0}};
    dx[2] = emit(f, block, IR_OP_SUM, 1, &dy, &s);
  }
}

/* ---- shape ------------------------------------------------------------------------- */

VJP(vjp_reshape) {
  (void)want;
  dx[0] = reshape(f, block, dy, shape_of(f, f->nodes[id].in[0]));
}

VJP(vjp_concat) {
  ir_node n = f->nodes[id];
  int axis = (int)n.i[0];
  int64_t start = 0;
  for (int j = 0; j < n.nin; j++) {
    int64_t len = shape_of(f, ir_operand(&n, j)).dim[axis];
    if (want[j]) {
      ir_attrs a = {.i = {axis, start, start + len}};
      dx[j] = emit(f, block, IR_OP_SLICE, 1, &dy, &a);
    }
    start += len;
  }
}

VJP(vjp_slice) {
  (void)want;
  ir_node n = f->nodes[id];
  ir_attrs a = {.i = {n.i[0], n.i[1], n.i[2]}, .ashape = shape_of(f, n.in[0])};
  dx[0] = emit(f, block, IR_OP_UNSLICE, 1, &dy, &a);
}

/* ---- reductions ---------------------------------------------------------------------- */

VJP(vjp_sum) {
  (void)want;
  ir_node n = f->nodes[id];
  dx[0] = spread(f, block, dy, shape_of(f, n.in[0]), n.i[0]);
}

VJP(vjp_mean) {
  (void)want;
  ir_node n = f->nodes[id];
  ir_shape x = shape_of(f, n.in[0]);
  int g = spread(f, block, dy, x, n.i[0]);
  dx[0] = scale(f, block, g, 1.0 / (double)reduced_count(x, n.i[0]));
}

/* var = sum (x - mean)^2 / (n - 1): dx = dy 2 (x - mean) / (n - 1) */
VJP(vjp_var) {
  (void)want;
  ir_node n = f->nodes[id];
  ir_shape x = shape_of(f, n.in[0]);
  ir_attrs keep = {.i = {n.i[0], 1}};
  int mean = emit(f, block, IR_OP_MEAN, 1, &n.in[0], &keep);
  int centred = bin(f, block, IR_OP_SUB, n.in[0], mean);
  int g = spread(f, block, dy, x, n.i[0]);
  int64_t count = reduced_count(x, n.i[0]);
  dx[0] = bin(f, block, IR_OP_MUL, g, scale(f, block, centred, 2.0 / (double)(count - 1)));
}

/* ---- the adjoint ops themselves: their rules make every rule above differentiable
 * again (second order, the language's grad() inside a step's loss) ------------------ */

/* relu_grad(x, dy) = dy where x > 0: linear in dy, piecewise constant in x (its
 * derivative in x is zero wherever it exists, as PyTorch takes it). */
VJP(vjp_relu_grad) {
  ir_node n = f->nodes[id];
  if (want[1]) dx[1] = bin(f, block, IR_OP_RELU_GRAD, n.in[0], dy);
}

VJP(vjp_lrelu_grad) {
  ir_node n = f->nodes[id];
  ir_attrs a = {.f = {n.f[0]}};
  int in[2] = {n.in[0], dy};
  if (want[1]) dx[1] = emit(f, block, IR_OP_LRELU_GRAD, 2, in, &a);
}

/* conv_grad_x(dy, w) is the adjoint of x -> conv(x, w); so <g, conv_grad_x(dy, w)> =
 * <conv(g, w), dy>, bilinear in (g, w): d/ddy = conv(g, w), d/dw = conv_grad_w(g, dy). */
VJP(vjp_conv_grad_x) {
  ir_node n = f->nodes[id];
  int d = n.in[0], w = n.in[1];
  if (want[0]) dx[0] = conv_op(f, block, IR_OP_CONV, dy, w, &n, shape_of(f, d));
  if (want[1]) dx[1] = conv_op(f, block, IR_OP_CONV_GRAD_W, dy, d, &n, shape_of(f, w));
}

/* conv_grad_w(a, b) = d/dW <b, conv(a, W)>; so <G, conv_grad_w(a, b)> = <b, conv(a, G)>:
 * d/da = conv_grad_x(b, G), d/db = conv(a, G). */
VJP(vjp_conv_grad_w) {
  ir_node n = f->nodes[id];
  int a = n.in[0], b = n.in[1];
  if (want[0]) dx[0] = conv_op(f, block, IR_OP_CONV_GRAD_X, b, dy, &n, shape_of(f, a));
  if (want[1]) dx[1] = conv_op(f, block, IR_OP_CONV, a, dy, &n, shape_of(f, b));
}

VJP(vjp_expand) {
  (void)want;
  dx[0] = reduce_to(f, block, dy, shape_of(f, f->nodes[id].in[0]));
}

VJP(vjp_unslice) {
  (void)want;
  ir_node n = f->nodes[id];
  ir_attrs a = {.i = {n.i[0], n.i[1], n.i[2]}};
  dx[0] = emit(f, block, IR_OP_SLICE, 1, &dy, &a);
}

/* y = softmax(x) over the last axis: dx = y (dy - sum(dy y)) */
VJP(vjp_softmax) {
  (void)want;
  int rank = shape_of(f, id).rank;
  ir_attrs last = {.i = {1LL << (rank - 1), 1}};
  int dot = bin(f, block, IR_OP_MUL, dy, id);
  int s = emit(f, block, IR_OP_SUM, 1, &dot, &last);
  dx[0] = bin(f, block, IR_OP_MUL, id, bin(f, block, IR_OP_SUB, dy, s));
}

/* ---- maximum --------------------------------------------------------------------------- */

static int max_grad(ir_func *f, int b, int x, int y, int dy, bool strict) {
  ir_attrs a = {.i = {strict}};
  int in[3] = {x, y, dy};
  return emit(f, b, IR_OP_MAX_GRAD, 3, in, &a);
}

/* x broadcast to `to` (a no-op when it has that shape already) */
static int broadcast(ir_func *f, int b, int x, ir_shape to) {
  if (shape_equal(shape_of(f, x), to) && shape_of(f, x).batched == to.batched) return x;
  ir_attrs a = {.ashape = to};
  return emit(f, b, IR_OP_EXPAND, 1, &x, &a);
}

/* The adjoint goes to the operand maximum returned: a on a tie. */
VJP(vjp_maximum) {
  ir_node n = f->nodes[id];
  int a = broadcast(f, block, n.in[0], n.shape), b = broadcast(f, block, n.in[1], n.shape);
  if (want[0]) dx[0] = reduce_to(f, block, max_grad(f, block, a, b, dy, false), shape_of(f, n.in[0]));
  if (want[1]) dx[1] = reduce_to(f, block, max_grad(f, block, b, a, dy, true), shape_of(f, n.in[1]));
}

/* linear in dy; piecewise constant in a and b (zero derivative wherever it exists) */
VJP(vjp_max_grad) {
  ir_node n = f->nodes[id];
  if (want[2]) dx[2] = max_grad(f, block, n.in[0], n.in[1], dy, n.i[0] != 0);
}

/* The adjoint goes to the operand select chose; none to the condition, which is
 * piecewise constant. */
VJP(vjp_select) {
  ir_node n = f->nodes[id];
  if (!want[1] && !want[2]) return;
  int zero = broadcast(f, block, cnst(f, block, 0), n.shape), in[3] = {n.in[0], dy, -1};
  for (int j = 1; j < 3; j++) {
    if (!want[j]) continue;
    in[1] = j == 1 ? dy : zero;
    in[2] = j == 1 ? zero : dy;
    dx[j] = emit(f, block, IR_OP_SELECT, 3, in, NULL);
  }
}

/* ---- randomness ----------------------------------------------------------------------- */

/* The same site, seed and step give the same mask: dropout's adjoint is dropout. */
VJP(vjp_dropout) {
  (void)want;
  ir_node n = f->nodes[id];
  ir_attrs a = {.f = {n.f[0]}, .i = {n.i[0]}};
  int in[2] = {dy, n.in[1]};
  dx[0] = emit(f, block, IR_OP_DROPOUT, 2, in, &a);
}

/* ---- losses: closed forms, stable because they reuse the stable forward pieces --- */

/* mean over elements of softplus(x) - x t: dx = (sigmoid(x) - t) dy / n,
 * dt = -x dy / n */
VJP(vjp_bce_logits) {
  ir_node n = f->nodes[id];
  ir_shape xs = shape_of(f, n.in[0]);
  int g = scale(f, block, dy, 1.0 / (double)shape_numel(xs));
  if (want[0]) {
    int diff = bin(f, block, IR_OP_SUB, un(f, block, IR_OP_SIGMOID, n.in[0]), n.in[1]);
    dx[0] = bin(f, block, IR_OP_MUL, diff, g);
  }
  if (want[1]) {
    int t = bin(f, block, IR_OP_MUL, un(f, block, IR_OP_NEG, n.in[0]), g);
    dx[1] = reduce_to(f, block, t, shape_of(f, n.in[1]));
  }
}

/* (softmax(logits) - onehot(labels)) * sign * dy / N */
static int ce_grad(ir_func *f, int b, const ir_node *n, int dy, double sign) {
  ir_shape l = shape_of(f, n->in[0]);
  ir_attrs oh = {.i = {l.dim[1]}};
  int onehot = emit(f, b, IR_OP_ONEHOT, 1, &n->in[1], &oh);
  int p = un(f, b, IR_OP_SOFTMAX, n->in[0]);
  int diff = bin(f, b, IR_OP_SUB, p, onehot);
  return bin(f, b, IR_OP_MUL, diff, scale(f, b, dy, sign / (double)l.dim[0]));
}

VJP(vjp_softmax_ce) {
  (void)want;
  ir_node n = f->nodes[id];
  dx[0] = ce_grad(f, block, &n, dy, 1.0);
}

/* ln K - cross-entropy: the cross-entropy's gradient, negated. */
VJP(vjp_info_categorical) {
  (void)want;
  ir_node n = f->nodes[id];
  dx[0] = ce_grad(f, block, &n, dy, -1.0);
}

/* mean over N of sum over D of ((x - m) / s)^2 / 2 + const:
 * dm = (m - x) dy / (s^2 N), dx = -dm */
VJP(vjp_gaussian_nll) {
  ir_node n = f->nodes[id];
  ir_shape ms = shape_of(f, n.in[0]);
  double k = 1.0 / (n.f[0] * n.f[0] * (double)ms.dim[0]);
  int diff = bin(f, block, IR_OP_SUB, n.in[0], n.in[1]);
  int g = bin(f, block, IR_OP_MUL, diff, scale(f, block, dy, k));
  if (want[0]) dx[0] = g;
  if (want[1]) dx[1] = un(f, block, IR_OP_NEG, g);
}
