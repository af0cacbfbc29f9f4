/* lower_elementwise.c: unary and binary elementwise ops, relu/lrelu/max adjoints and
 * expand, as loops. Unary math runs in double and rounds once, exactly as the
 * interpreter's kernels do (libm's double exp/log/log1p/tanh), so results match bit
 * for bit; binary ops compute in float, broadcasting through constant strides. */
#include "codegen/cg_internal.h"
#include "passes/passes.h"

/* y = f(x) in double for one element (x already extended to double). */
static LLVMValueRef unary_f64(cg_ctx *c, const ir_node *n, LLVMValueRef x) {
  LLVMBuilderRef b = c->b;
  LLVMValueRef zero = cg_f64c(c, 0);
  switch (n->op) {
  case IR_OP_NEG: return LLVMBuildFNeg(b, x, "");
  case IR_OP_RELU: return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, x, zero, ""), x, zero, "");
  case IR_OP_LRELU:
    return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, x, zero, ""), x,
                           LLVMBuildFMul(b, cg_f64c(c, n->f[0]), x, ""), "");
  case IR_OP_TANH: return cg_call_d(c, "tanh", x);
  case IR_OP_SIGMOID: {
    /* e = exp(-|x|): 1/(1+e) for x >= 0, e/(1+e) otherwise (no overflow either way) */
    LLVMValueRef ax = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGE, x, zero, ""),
                                      LLVMBuildFNeg(b, x, ""), x, "");
    LLVMValueRef e = cg_call_d(c, "exp", ax);
    LLVMValueRef den = LLVMBuildFAdd(b, cg_f64c(c, 1), e, "");
    LLVMValueRef num = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGE, x, zero, ""),
                                       cg_f64c(c, 1), e, "");
    return LLVMBuildFDiv(b, num, den, "");
  }
  case IR_OP_SOFTPLUS: {
    /* max(x,0) + log1p(exp(-|x|)) */
    LLVMValueRef mx = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, x, zero, ""), x, zero, "");
    LLVMValueRef nabs = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGE, x, zero, ""),
                                        LLVMBuildFNeg(b, x, ""), x, "");
    return LLVMBuildFAdd(b, mx, cg_call_d(c, "log1p", cg_call_d(c, "exp", nabs)), "");
  }
  case IR_OP_EXP: return cg_call_d(c, "exp", x);
  case IR_OP_LOG: return cg_call_d(c, "log", x);
  case IR_OP_SIN: return cg_call_d(c, "sin", x);
  case IR_OP_COS: return cg_call_d(c, "cos", x);
  default: return cg_call_d(c, "sqrt", x);
  }
}

/* The f32 value of elementwise node n (fuse_elementwise) from its operands' f32
 * values x[j]: what cg_lower_unary, the flat binary loop and cg_lower_same_shape
 * compute for one element, and what a fused kernel computes in registers, so fused
 * and unfused programs agree bit for bit. */
LLVMValueRef cg_elementwise_value(cg_ctx *c, const ir_node *n, LLVMValueRef const *x) {
  LLVMBuilderRef b = c->b;
  switch (n->op) {
  case IR_OP_ADD: return LLVMBuildFAdd(b, x[0], x[1], "");
  case IR_OP_SUB: return LLVMBuildFSub(b, x[0], x[1], "");
  case IR_OP_MUL: return LLVMBuildFMul(b, x[0], x[1], "");
  case IR_OP_DIV: return LLVMBuildFDiv(b, x[0], x[1], "");
  case IR_OP_MAXIMUM: /* a on a tie, as the kernel */
    return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGE, x[0], x[1], ""), x[0], x[1], "");
  case IR_OP_MAX_GRAD:
    return LLVMBuildSelect(
        b, LLVMBuildFCmp(b, n->i[0] ? LLVMRealOGT : LLVMRealOGE, x[0], x[1], ""), x[2],
        cg_f32c(c, 0), "");
  case IR_OP_SELECT: /* x[0] is the condition, the same for every element */
    return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealUNE, x[0], cg_f32c(c, 0), ""), x[1],
                           x[2], "");
  case IR_OP_RELU_GRAD:
  case IR_OP_LRELU_GRAD: {
    /* x, dy: dy where x > 0; else 0 (relu) or slope*dy in double, rounded once */
    LLVMValueRef pos = LLVMBuildFCmp(b, LLVMRealOGT, x[0], cg_f32c(c, 0), "");
    LLVMValueRef neg = n->op == IR_OP_RELU_GRAD
                           ? cg_f32c(c, 0)
                           : cg_trunc(c, LLVMBuildFMul(b, cg_f64c(c, n->f[0]), cg_ext(c, x[1]), ""));
    return LLVMBuildSelect(b, pos, x[1], neg, "");
  }
  default: return cg_trunc(c, unary_f64(c, n, cg_ext(c, x[0])));
  }
}

/* x, out: one shape */
int cg_lower_unary(cg_ctx *c, int id, const ir_node *n, LLVMValueRef const *in,
                       LLVMValueRef out) {
  (void)id;
  LLVMValueRef x = cg_fptr(c, in[0]), y = cg_fptr(c, out);
  cg_loop l;
  cg_loop_begin(c, &l, cg_numel(c, n));
  LLVMValueRef v = cg_ld(c, c->f32, x, l.iv);
  cg_st(c, y, l.iv, cg_elementwise_value(c, n, &v));
  cg_loop_end(c, &l);
  return 0;
}

/* a and b broadcast to out (numpy rules); float arithmetic, rounded once per op */
int cg_lower_binary(cg_ctx *c, int id, const ir_node *n, LLVMValueRef const *in,
                        LLVMValueRef out) {
  ir_shape o = n->shape;
  const ir_node *na = &c->f->nodes[n->in[0]], *nb = &c->f->nodes[n->in[1]];
  int64_t sa[IR_MAX_RANK], sb[IR_MAX_RANK], so[IR_MAX_RANK];
  cg_broadcast_strides(na->shape, o, sa);
  cg_broadcast_strides(nb->shape, o, sb);
  cg_contig_strides(o, so);
  (void)id;
  LLVMValueRef a = cg_fptr(c, in[0]), bb = cg_fptr(c, in[1]), y = cg_fptr(c, out);
  if (c->numel) { /* one flat loop for every size */
    int64_t one = 1;
    ir_shape flat = shape_make(1, &one, false);
    o = flat;
    sa[0] = shape_numel(na->shape) == 1 ? 0 : 1; /* a scalar operand repeats */
    sb[0] = shape_numel(nb->shape) == 1 ? 0 : 1;
    so[0] = 1;
  }
  cg_nest nest;
  if (c->numel) {
    nest.rank = 1;
    cg_loop_begin(c, &nest.l[0], c->numel);
    nest.idx[0] = nest.l[0].iv;
  } else {
    cg_nest_begin(c, &nest, o.rank, o.dim);
  }
  LLVMValueRef x0 = cg_ld(c, c->f32, a, cg_linear(c, o.rank, nest.idx, sa));
  LLVMValueRef x1 = cg_ld(c, c->f32, bb, cg_linear(c, o.rank, nest.idx, sb));
  LLVMValueRef xs[2] = {x0, x1};
  cg_st(c, y, cg_linear(c, o.rank, nest.idx, so), cg_elementwise_value(c, n, xs));
  cg_nest_end(c, &nest);
  return 0;
}

/* relu_grad, lrelu_grad, max_grad and select: every operand the shape of out, or one
 * element that every element of out reads (select's condition) */
int cg_lower_same_shape(cg_ctx *c, int id, const ir_node *n, LLVMValueRef const *in,
                        LLVMValueRef out) {
  (void)id;
  LLVMValueRef p[IR_MAX_IN], v[IR_MAX_IN], y = cg_fptr(c, out);
  for (int j = 0; j < n->nin; j++) p[j] = cg_fptr(c, in[j]);
  cg_loop l;
  cg_loop_begin(c, &l, cg_numel(c, n));
  for (int j = 0; j < n->nin; j++) {
    bool one = shape_numel(c->f->nodes[n->in[j]].shape) == 1;
    v[j] = cg_ld(c, c->f32, p[j], one ? cg_i64(c, 0) : l.iv);
  }
  cg_st(c, y, l.iv, cg_elementwise_value(c, n, v));
  cg_loop_end(c, &l);
  return 0;
}

/* x broadcasts to out */
int cg_lower_expand(cg_ctx *c, int id, const ir_node *n, LLVMValueRef const *in,
                        LLVMValueRef out) {
  (void)id;
  ir_shape o = n->shape;
  int64_t sx[IR_MAX_RANK], so[IR_MAX_RANK];
  cg_broadcast_strides(c->f->nodes[n->in[0]].shape, o, sx);
  cg_contig_strides(o, so);
  LLVMValueRef x = cg_iptr(c, in[0]), y = cg_iptr(c, out);
  cg_nest nest;
  cg_nest_begin(c, &nest, o.rank, o.dim);
  cg_st(c, y, cg_linear(c, o.rank, nest.idx, so),
        cg_ld(c, c->i32, x, cg_linear(c, o.rank, nest.idx, sx)));
  cg_nest_end(c, &nest);
  return 0;
}


LLVMValueRef cg_numel(cg_ctx *c, const ir_node *n) {
  return c->numel ? c->numel : cg_i64(c, shape_numel(n->shape));
}

bool cg_flat(const ir_func *f, const ir_node *n) { return fuse_elementwise(f, n); }
