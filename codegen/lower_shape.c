/* lower_shape.c: concat, slice and unslice as row copies around an axis: a shape seen
 * as [outer, A, inner] (outer = product of the dims before the axis, inner after).
 * Copies move 4-byte elements as i32, so i32 values pass through unchanged too.
 * reshape aliases its operand (lower_source.c); expand is in lower_elementwise.c. */
#include "codegen/cg_internal.h"

static void around_axis(ir_shape s, int axis, int64_t *outer, int64_t *inner) {
  *outer = 1, *inner = 1;
  for (int d = 0; d < axis; d++) *outer *= s.dim[d];
  for (int d = axis + 1; d < s.rank; d++) *inner *= s.dim[d];
}

/* out row r = operand rows r one after another */
int cg_lower_concat(cg_ctx *c, int id, const ir_node *n, LLVMValueRef const *in,
                    LLVMValueRef out) {
  (void)id;
  int axis = (int)n->i[0];
  int64_t outer, inner, A = n->shape.dim[axis];
  around_axis(n->shape, axis, &outer, &inner);
  cg_loop l;
  cg_loop_begin(c, &l, cg_i64(c, outer));
  int64_t at = 0;
  for (int j = 0; j < n->nin; j++) {
    int64_t len = c->f->nodes[ir_operand(n, j)].shape.dim[axis] * inner;
    LLVMValueRef doff = LLVMBuildNSWAdd(c->b, LLVMBuildNSWMul(c->b, l.iv, cg_i64(c, A * inner), ""),
                                        cg_i64(c, at), "");
    LLVMValueRef soff = LLVMBuildNSWMul(c->b, l.iv, cg_i64(c, len), "");
    cg_copy4(c, out, doff, in[j], soff, cg_i64(c, len));
    at += len;
  }
  cg_loop_end(c, &l);
  return 0;
}

/* For each of `rows` rows r: count floats from src[r*src_row + src_at] to
 * dst[r*dst_row + dst_at] (slice reads a block of each row, unslice writes one). */
static void copy_rows(cg_ctx *c, int64_t rows, int64_t count, LLVMValueRef dst, int64_t dst_row,
                      int64_t dst_at, LLVMValueRef src, int64_t src_row, int64_t src_at) {
  cg_loop l;
  cg_loop_begin(c, &l, cg_i64(c, rows));
  LLVMValueRef doff = LLVMBuildNSWAdd(c->b, LLVMBuildNSWMul(c->b, l.iv, cg_i64(c, dst_row), ""),
                                      cg_i64(c, dst_at), "");
  LLVMValueRef soff = LLVMBuildNSWAdd(c->b, LLVMBuildNSWMul(c->b, l.iv, cg_i64(c, src_row), ""),
                                      cg_i64(c, src_at), "");
  cg_copy4(c, dst, doff, src, soff, cg_i64(c, count));
  cg_loop_end(c, &l);
}

/* x [outer, A, inner] -> out [outer, end-start, inner] */
int cg_lower_slice(cg_ctx *c, int id, const ir_node *n, LLVMValueRef const *in,
                   LLVMValueRef out) {
  (void)id;
  int axis = (int)n->i[0];
  ir_shape s = c->f->nodes[n->in[0]].shape;
  int64_t start = n->i[1], len = n->i[2] - n->i[1], outer, inner, A = s.dim[axis];
  around_axis(s, axis, &outer, &inner);
  copy_rows(c, outer, len * inner, out, len * inner, 0, in[0], A * inner, start * inner);
  return 0;
}

/* dy [outer, end-start, inner] -> zeros [outer, A, inner] with dy at [start, end) */
int cg_lower_unslice(cg_ctx *c, int id, const ir_node *n, LLVMValueRef const *in,
                     LLVMValueRef out) {
  (void)id;
  int axis = (int)n->i[0];
  int64_t start = n->i[1], len = n->i[2] - n->i[1], outer, inner, A = n->shape.dim[axis];
  around_axis(n->shape, axis, &outer, &inner);
  cg_zero4(c, out, shape_numel(n->shape));
  copy_rows(c, outer, len * inner, out, A * inner, start * inner, in[0], len * inner, 0);
  return 0;
}
