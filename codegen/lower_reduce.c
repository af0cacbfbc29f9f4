/* lower_reduce.c: sum, mean and var over a bitmask of axes. As the interpreter does,
 * x is walked in C order and each element added to a double accumulator acc[o] (the
 * node's extra scratch), o moving by the output's strides (0 on reduced axes); var is
 * two passes (mean, then squared deviations) divided by count - 1. Same order, same
 * double sums: results match the interpreter bit for bit. The first kept axis is the
 * outermost loop, split over the runtime's threads (each thread owns its outputs). */
#include "codegen/cg_internal.h"

int64_t cg_extra_reduce(const ir_func *f, const ir_node *n) {
  (void)f;
  return shape_numel(n->shape) * 8 * (n->op == IR_OP_VAR ? 2 : 1);
}

/* acc[o] += v (or (v - center[o])^2) over x in C order */
static void accumulate(cg_ctx *c, ir_shape s, int64_t mask, LLVMValueRef x, LLVMValueRef acc,
                       LLVMValueRef center) {
  int64_t ost[IR_MAX_RANK], xst[IR_MAX_RANK], step = 1;
  for (int d = s.rank - 1; d >= 0; d--) {
    if (mask >> d & 1) {
      ost[d] = 0;
    } else {
      ost[d] = step;
      step *= s.dim[d];
    }
  }
  cg_contig_strides(s, xst);
  /* the first kept axis k, one index of it per iteration of a loop split over the
   * runtime's threads, around a nest over the other axes in C order: every acc[o]
   * still sums its elements in the interpreter's order, and no two threads share one */
  int k = 0;
  while (k < s.rank && mask >> k & 1) k++;
  int64_t rest[IR_MAX_RANK];
  int nr = 0;
  for (int d = 0; d < s.rank; d++)
    if (d != k) rest[nr++] = s.dim[d];
  cg_ploop pk = {.split = false};
  LLVMValueRef *used[] = {&x, &acc, &center};
  if (k < s.rank) cg_ploop_begin(c, &pk, s.dim[k], shape_numel(s) / (s.dim[k] ? s.dim[k] : 1), used, 3);
  cg_nest nest;
  cg_nest_begin(c, &nest, nr, rest);
  LLVMValueRef idx[IR_MAX_RANK];
  for (int d = 0, r = 0; d < s.rank; d++) idx[d] = d == k ? pk.iv : nest.idx[r++];
  LLVMValueRef o = cg_linear(c, s.rank, idx, ost);
  LLVMValueRef v = cg_ext(c, cg_ld(c, c->f32, x, cg_linear(c, s.rank, idx, xst)));
  if (center) {
    LLVMValueRef d = LLVMBuildFSub(c->b, v, cg_ld(c, c->f64, center, o), "");
    v = LLVMBuildFMul(c->b, d, d, "");
  }
  LLVMValueRef p = cg_gep(c, c->f64, acc, o);
  LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, LLVMBuildLoad2(c->b, c->f64, p, ""), v, ""), p);
  cg_nest_end(c, &nest);
  if (k < s.rank) cg_ploop_end(c, &pk);
}

int cg_lower_reduce(cg_ctx *c, int id, const ir_node *n, LLVMValueRef const *in,
                    LLVMValueRef out) {
  (void)id;
  ir_shape s = c->f->nodes[n->in[0]].shape;
  int64_t m = shape_numel(n->shape), count = 1;
  for (int d = 0; d < s.rank; d++)
    if (n->i[0] >> d & 1) count *= s.dim[d];
  LLVMValueRef acc = cg_dptr(c, c->extra);
  LLVMValueRef x = cg_fptr(c, in[0]), y = cg_fptr(c, out);
  cg_loop l;
  cg_loop_begin(c, &l, cg_i64(c, m));
  cg_st(c, acc, l.iv, cg_f64c(c, 0));
  cg_loop_end(c, &l);
  accumulate(c, s, n->i[0], x, acc, NULL);
  if (n->op == IR_OP_VAR) {
    LLVMValueRef mean = cg_gep(c, c->f64, cg_dptr(c, c->extra), cg_i64(c, m));
    cg_loop_begin(c, &l, cg_i64(c, m));
    cg_st(c, mean, l.iv,
          LLVMBuildFDiv(c->b, cg_ld(c, c->f64, acc, l.iv), cg_f64c(c, (double)count), ""));
    cg_st(c, acc, l.iv, cg_f64c(c, 0));
    cg_loop_end(c, &l);
    accumulate(c, s, n->i[0], x, acc, mean);
  }
  double div = n->op == IR_OP_SUM ? 1 : n->op == IR_OP_MEAN ? (double)count : (double)(count - 1);
  cg_loop_begin(c, &l, cg_i64(c, m));
  LLVMValueRef v = cg_ld(c, c->f64, acc, l.iv);
  if (n->op != IR_OP_SUM) v = LLVMBuildFDiv(c->b, v, cg_f64c(c, div), "");
  cg_st(c, y, l.iv, cg_trunc(c, v));
  cg_loop_end(c, &l);
  return 0;
}
