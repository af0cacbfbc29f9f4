/* lower_collective.c: allreduce, the one op that talks to the other processes of a
 * data-parallel run. Its value is a copy of the operand summed in place by the
 * runtime's collective_allreduce (the driver's MPI binding, or nothing in one
 * process), then multiplied by the scale, in float like the interpreter's kernel. */
#include "codegen/cg_internal.h"

void cg_sum_across(cg_ctx *c, LLVMValueRef buf, int64_t n) {
  LLVMTypeRef params[2] = {c->pf32, c->i64};
  LLVMTypeRef fty = LLVMFunctionType(c->void_t, params, 2, 0);
  LLVMValueRef args[2] = {buf, cg_i64(c, n)};
  LLVMBuildCall2(c->b, fty, cg_extern(c, "collective_allreduce", fty), args, 2, "");
}

int cg_lower_allreduce(cg_ctx *c, int id, const ir_node *n, LLVMValueRef const *in,
                       LLVMValueRef out) {
  (void)id;
  int64_t count = shape_numel(n->shape);
  cg_copy4(c, out, cg_i64(c, 0), in[0], cg_i64(c, 0), cg_i64(c, count));
  cg_sum_across(c, cg_fptr(c, out), count);
  if ((float)n->f[0] == 1.0f) return 0;
  LLVMValueRef y = cg_fptr(c, out), scale = cg_f32c(c, (float)n->f[0]);
  cg_loop l;
  cg_loop_begin(c, &l, cg_i64(c, count));
  cg_st(c, y, l.iv, LLVMBuildFMul(c->b, cg_ld(c, c->f32, y, l.iv), scale, ""));
  cg_loop_end(c, &l);
  return 0;
}
