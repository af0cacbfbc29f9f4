/* lower_random.c: onehot and dropout. Dropout calls the runtime's rng_uniform per
 * element with the interpreter's arguments (seed and step read from the i32 seed
 * operand as unsigned 32-bit values, stream RNG_STREAM_DROPOUT + site, counter j), so
 * the masks are identical. */
#include "codegen/cg_internal.h"
#include "runtime/runtime.h"

/* codes i32 [N] in [0, K) -> f32 [N,K]; a code outside makes the function return 1 */
int cg_lower_onehot(cg_ctx *c, int id, const ir_node *n, LLVMValueRef const *in,
                    LLVMValueRef out) {
  (void)id;
  int64_t N = n->shape.dim[0], K = n->shape.dim[1];
  cg_zero4(c, out, N * K);
  LLVMValueRef codes = cg_iptr(c, in[0]), y = cg_fptr(c, out);
  cg_loop l;
  cg_loop_begin(c, &l, cg_i64(c, N));
  LLVMValueRef v = cg_ld(c, c->i32, codes, l.iv);
  cg_check(c, LLVMBuildICmp(c->b, LLVMIntULT, v, cg_i32c(c, (int32_t)K), ""));
  LLVMValueRef at = LLVMBuildNSWAdd(c->b, LLVMBuildNSWMul(c->b, l.iv, cg_i64(c, K), ""),
                                    LLVMBuildSExt(c->b, v, c->i64, ""), "");
  cg_st(c, y, at, cg_f32c(c, 1));
  cg_loop_end(c, &l);
  return 0;
}

/* x, seed i32 [2] -> y: 0 where rng_uniform(...) < p, else x * (float)(1/(1-p)) */
int cg_lower_dropout(cg_ctx *c, int id, const ir_node *n, LLVMValueRef const *in,
                     LLVMValueRef out) {
  (void)id;
  double p = n->f[0];
  LLVMTypeRef params[4] = {c->i64, c->i32, c->i64, c->i64};
  LLVMTypeRef fty = LLVMFunctionType(c->f32, params, 4, 0);
  LLVMValueRef fn = cg_extern(c, "rng_uniform", fty);
  LLVMValueRef sd = cg_iptr(c, in[1]);
  LLVMValueRef seed = LLVMBuildZExt(c->b, cg_ld(c, c->i32, sd, cg_i64(c, 0)), c->i64, "");
  LLVMValueRef step = LLVMBuildZExt(c->b, cg_ld(c, c->i32, sd, cg_i64(c, 1)), c->i64, "");
  LLVMValueRef stream = cg_i32c(c, (int32_t)(RNG_STREAM_DROPOUT + (uint32_t)n->i[0]));
  LLVMValueRef scale = cg_f32c(c, (float)(1.0 / (1.0 - p)));
  LLVMValueRef x = cg_fptr(c, in[0]), y = cg_fptr(c, out);
  cg_loop l;
  cg_loop_begin(c, &l, cg_i64(c, shape_numel(n->shape)));
  LLVMValueRef args[4] = {seed, stream, step, l.iv};
  LLVMValueRef u = LLVMBuildCall2(c->b, fty, fn, args, 4, "");
  LLVMValueRef drop = LLVMBuildFCmp(c->b, LLVMRealOLT, cg_ext(c, u), cg_f64c(c, p), "");
  LLVMValueRef kept = LLVMBuildFMul(c->b, cg_ld(c, c->f32, x, l.iv), scale, "");
  cg_st(c, y, l.iv, LLVMBuildSelect(c->b, drop, cg_f32c(c, 0), kept, ""));
  cg_loop_end(c, &l);
  return 0;
}
