/* builder.c: the few wrappers over LLVMBuild* that remove real repetition in the
 * lowerings: typed element access, counted loops and loop nests, libm calls. Shapes
 * are static, so trip counts and strides are constants. */
#include "codegen/cg_internal.h"

#include <string.h>

#include <llvm-c/DebugInfo.h>
#include <stdarg.h>

int cg_fail(cg_ctx *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err, c->errn, fmt, ap);
  va_end(ap);
  return 1;
}

LLVMValueRef cg_i64(cg_ctx *c, int64_t v) { return LLVMConstInt(c->i64, (unsigned long long)v, 1); }
LLVMValueRef cg_i32c(cg_ctx *c, int32_t v) { return LLVMConstInt(c->i32, (unsigned long long)(int64_t)v, 1); }
LLVMValueRef cg_f32c(cg_ctx *c, double v) { return LLVMConstReal(c->f32, (float)v); }
LLVMValueRef cg_f64c(cg_ctx *c, double v) { return LLVMConstReal(c->f64, v); }

LLVMValueRef cg_fptr(cg_ctx *c, LLVMValueRef p) { return LLVMBuildBitCast(c->b, p, c->pf32, ""); }
LLVMValueRef cg_iptr(cg_ctx *c, LLVMValueRef p) { return LLVMBuildBitCast(c->b, p, c->pi32, ""); }
LLVMValueRef cg_dptr(cg_ctx *c, LLVMValueRef p) { return LLVMBuildBitCast(c->b, p, c->pf64, ""); }

LLVMValueRef cg_scratch_at(cg_ctx *c, int64_t off) {
  LLVMValueRef idx = cg_i64(c, off);
  return LLVMBuildInBoundsGEP2(c->b, c->i8, c->scratch, &idx, 1, "");
}

LLVMValueRef cg_gep(cg_ctx *c, LLVMTypeRef t, LLVMValueRef p, LLVMValueRef idx) {
  return LLVMBuildInBoundsGEP2(c->b, t, p, &idx, 1, "");
}

LLVMValueRef cg_ld(cg_ctx *c, LLVMTypeRef t, LLVMValueRef p, LLVMValueRef idx) {
  return LLVMBuildLoad2(c->b, t, cg_gep(c, t, p, idx), "");
}

void cg_st(cg_ctx *c, LLVMValueRef p, LLVMValueRef idx, LLVMValueRef v) {
  LLVMBuildStore(c->b, v, cg_gep(c, LLVMTypeOf(v), p, idx));
}

LLVMValueRef cg_ext(cg_ctx *c, LLVMValueRef v) { return LLVMBuildFPExt(c->b, v, c->f64, ""); }
LLVMValueRef cg_trunc(cg_ctx *c, LLVMValueRef v) { return LLVMBuildFPTrunc(c->b, v, c->f32, ""); }

/* Allocas go at the top of the entry block, whatever block is being built, so that
 * mem2reg promotes them and a loop does not grow the stack. */
LLVMValueRef cg_entry_alloca(cg_ctx *c, LLVMTypeRef t, const char *name) {
  LLVMBuilderRef eb = LLVMCreateBuilderInContext(c->ctx);
  LLVMValueRef first = LLVMGetFirstInstruction(c->entry);
  if (first)
    LLVMPositionBuilderBefore(eb, first);
  else
    LLVMPositionBuilderAtEnd(eb, c->entry);
  LLVMValueRef a = LLVMBuildAlloca(eb, t, name);
  LLVMDisposeBuilder(eb);
  return a;
}

LLVMValueRef cg_var_f64(cg_ctx *c, double init) {
  LLVMValueRef a = cg_entry_alloca(c, c->f64, "acc");
  LLVMBuildStore(c->b, cg_f64c(c, init), a);
  return a;
}

void cg_loop_begin(cg_ctx *c, cg_loop *l, LLVMValueRef n) {
  if (c->loop) c->loop->has_inner = true;
  l->parent = c->loop;
  l->has_inner = false;
  l->unroll = false;
  c->loop = l;
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(c->b);
  l->head = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "loop");
  LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "body");
  l->exit = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "done");
  LLVMBuildBr(c->b, l->head);
  LLVMPositionBuilderAtEnd(c->b, l->head);
  l->iv = LLVMBuildPhi(c->b, c->i64, "i");
  LLVMValueRef zero = cg_i64(c, 0);
  LLVMAddIncoming(l->iv, &zero, &pre, 1);
  LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, l->iv, n, ""), body, l->exit);
  LLVMPositionBuilderAtEnd(c->b, body);
}

void cg_loop_end(cg_ctx *c, cg_loop *l) {
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(c->b);
  LLVMValueRef next = LLVMBuildNSWAdd(c->b, l->iv, cg_i64(c, 1), "");
  LLVMValueRef br = LLVMBuildBr(c->b, l->head);
  c->loop = l->parent;
  /* LLVM's unroller runs only on loops that ask for it (cg_optimize turns it off):
   * left on, it unrolled small constant loops for little gain and took a fifth of the
   * compile time; the few loops that need it (short strided copies) set l->unroll. */
  if (l->unroll) {
    if (!c->unroll_full) {
      LLVMMetadataRef tmp = LLVMTemporaryMDNode(c->ctx, NULL, 0);
      LLVMMetadataRef str = LLVMMDStringInContext2(c->ctx, "llvm.loop.unroll.full", 21);
      LLVMMetadataRef hint = LLVMMDNodeInContext2(c->ctx, &str, 1);
      LLVMMetadataRef ops[2] = {tmp, hint};
      LLVMMetadataRef self = LLVMMDNodeInContext2(c->ctx, ops, 2);
      LLVMMetadataReplaceAllUsesWith(tmp, self); /* loop ids refer to themselves */
      c->unroll_full = LLVMMetadataAsValue(c->ctx, self);
      c->md_loop = LLVMGetMDKindIDInContext(c->ctx, "llvm.loop", 9);
    }
    LLVMSetMetadata(br, c->md_loop, c->unroll_full);
  }
  LLVMAddIncoming(l->iv, &next, &latch, 1);
  LLVMPositionBuilderAtEnd(c->b, l->exit);
}

void cg_nest_begin(cg_ctx *c, cg_nest *nest, int rank, const int64_t *dims) {
  nest->rank = rank;
  for (int d = 0; d < rank; d++) {
    cg_loop_begin(c, &nest->l[d], cg_i64(c, dims[d]));
    nest->idx[d] = nest->l[d].iv;
  }
}

void cg_nest_end(cg_ctx *c, cg_nest *nest) {
  for (int d = nest->rank - 1; d >= 0; d--) cg_loop_end(c, &nest->l[d]);
}

LLVMValueRef cg_linear(cg_ctx *c, int rank, const LLVMValueRef *idx, const int64_t *stride) {
  LLVMValueRef acc = cg_i64(c, 0);
  for (int d = 0; d < rank; d++) {
    if (stride[d] == 0) continue;
    LLVMValueRef t = stride[d] == 1 ? idx[d] : LLVMBuildNSWMul(c->b, idx[d], cg_i64(c, stride[d]), "");
    acc = LLVMBuildNSWAdd(c->b, acc, t, "");
  }
  return acc;
}

/* As kernels.c's broadcast_strides: s right-aligned against o. */
void cg_broadcast_strides(ir_shape s, ir_shape o, int64_t st[IR_MAX_RANK]) {
  int64_t step = 1;
  for (int d = o.rank - 1; d >= 0; d--) {
    int ds = d - (o.rank - s.rank);
    st[d] = (ds < 0 || s.dim[ds] == 1) ? 0 : step;
    if (ds >= 0) step *= s.dim[ds];
  }
}

void cg_contig_strides(ir_shape s, int64_t st[IR_MAX_RANK]) {
  int64_t step = 1;
  for (int d = s.rank - 1; d >= 0; d--) {
    st[d] = step;
    step *= s.dim[d];
  }
}

LLVMValueRef cg_extern(cg_ctx *c, const char *name, LLVMTypeRef fty) {
  LLVMValueRef fn = LLVMGetNamedFunction(c->mod, name);
  if (!fn) fn = LLVMAddFunction(c->mod, name, fty);
  return fn;
}

LLVMValueRef cg_call_d(cg_ctx *c, const char *name, LLVMValueRef x) {
  LLVMTypeRef fty = LLVMFunctionType(c->f64, &c->f64, 1, 0);
  /* sqrt as LLVM's intrinsic: the same correctly rounded result as libm's, but the
   * loop vectoriser can use vsqrtpd (a call to libm's sqrt, which may set errno, it
   * must leave scalar); Adam's update takes one per parameter */
  if (!strcmp(name, "sqrt")) name = "llvm.sqrt.f64";
  return LLVMBuildCall2(c->b, fty, cg_extern(c, name, fty), &x, 1, "");
}

void cg_copy4(cg_ctx *c, LLVMValueRef dst, LLVMValueRef doff, LLVMValueRef src,
              LLVMValueRef soff, LLVMValueRef count) {
  LLVMValueRef d = cg_iptr(c, dst), s = cg_iptr(c, src);
  cg_loop l;
  cg_loop_begin(c, &l, count);
  LLVMValueRef v = cg_ld(c, c->i32, s, LLVMBuildNSWAdd(c->b, soff, l.iv, ""));
  cg_st(c, d, LLVMBuildNSWAdd(c->b, doff, l.iv, ""), v);
  cg_loop_end(c, &l);
}

void cg_zero4(cg_ctx *c, LLVMValueRef dst, int64_t count) {
  LLVMValueRef d = cg_iptr(c, dst);
  cg_loop l;
  cg_loop_begin(c, &l, cg_i64(c, count));
  cg_st(c, d, l.iv, cg_i32c(c, 0));
  cg_loop_end(c, &l);
}

void cg_check(cg_ctx *c, LLVMValueRef cond) {
  LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "ok");
  LLVMBuildCondBr(c->b, cond, ok, c->err_bb);
  LLVMPositionBuilderAtEnd(c->b, ok);
}
