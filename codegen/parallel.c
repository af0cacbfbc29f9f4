/* parallel.c: loops split over the runtime's threads. A parallel loop's body is an
 * internal function part(i8 *ctx, i64 b) and the enclosing function calls the
 * runtime's migc_rt_parallel_for(part, ctx, nblocks) (runtime/pool.c), with the
 * values the body needs stored in a small array ctx on its stack. Blocks are fixed by
 * the shapes, never by the thread count, and no block adds into another's output, so
 * a result does not depend on how many threads ran it. */
#include "codegen/cg_internal.h"

#include <stdlib.h>
#include <string.h>


/* Stores the ncap values into a fresh ctx array of the enclosing function. */
static LLVMValueRef store_ctx(cg_ctx *c, int ncap, const LLVMValueRef *cap) {
  LLVMTypeRef pp = LLVMPointerType(c->pi8, 0);
  LLVMValueRef buf = cg_entry_alloca(c, LLVMArrayType(c->pi8, (unsigned)(ncap > 0 ? ncap : 1)), "par_ctx");
  LLVMValueRef slots = LLVMBuildBitCast(c->b, buf, pp, "");
  for (int k = 0; k < ncap; k++) {
    LLVMValueRef v = cap[k];
    v = LLVMGetTypeKind(LLVMTypeOf(v)) == LLVMPointerTypeKind
            ? LLVMBuildBitCast(c->b, v, c->pi8, "")
            : LLVMBuildIntToPtr(c->b, v, c->pi8, "");
    LLVMBuildStore(c->b, v, cg_gep(c, c->pi8, slots, cg_i64(c, k)));
  }
  return buf;
}

/* migc_rt_parallel_for(part, ctx, nblocks) */
static void call_parallel(cg_ctx *c, LLVMValueRef part, LLVMTypeRef part_ty, LLVMValueRef ctxbuf,
                          LLVMValueRef nblocks) {
  LLVMTypeRef params[3] = {LLVMPointerType(part_ty, 0), c->pi8, c->i64};
  LLVMTypeRef fty = LLVMFunctionType(c->void_t, params, 3, 0);
  LLVMValueRef args[3] = {part, LLVMBuildBitCast(c->b, ctxbuf, c->pi8, ""), nblocks};
  LLVMBuildCall2(c->b, fty, cg_extern(c, "migc_rt_parallel_for", fty), args, 3, "");
}

void cg_par_begin(cg_ctx *c, cg_par *p, LLVMValueRef nblocks, int ncap, LLVMValueRef *cap,
                  LLVMValueRef *block) {
  LLVMTypeRef pp = LLVMPointerType(c->pi8, 0);
  p->nblocks = nblocks;
  p->ctxbuf = store_ctx(c, ncap, cap);
  LLVMTypeRef params[2] = {c->pi8, c->i64};
  p->fty = LLVMFunctionType(c->void_t, params, 2, 0);
  p->part = LLVMAddFunction(c->mod, "part", p->fty); /* LLVM numbers repeats */
  LLVMSetLinkage(p->part, LLVMInternalLinkage);
  p->fn = c->fn, p->entry = c->entry, p->err_bb = c->err_bb, p->loop = c->loop;
  p->resume = LLVMGetInsertBlock(c->b);
  c->fn = p->part;
  c->entry = LLVMAppendBasicBlockInContext(c->ctx, p->part, "entry");
  c->err_bb = NULL; /* a block cannot fail */
  c->loop = NULL;
  LLVMPositionBuilderAtEnd(c->b, c->entry);
  LLVMValueRef slots = LLVMBuildBitCast(c->b, LLVMGetParam(p->part, 0), pp, "");
  for (int k = 0; k < ncap; k++) {
    LLVMTypeRef t = LLVMTypeOf(cap[k]);
    LLVMValueRef v = cg_ld(c, c->pi8, slots, cg_i64(c, k));
    cap[k] = LLVMGetTypeKind(t) == LLVMPointerTypeKind ? LLVMBuildBitCast(c->b, v, t, "")
                                                       : LLVMBuildPtrToInt(c->b, v, t, "");
  }
  *block = LLVMGetParam(p->part, 1);
}

void cg_par_end(cg_ctx *c, cg_par *p) {
  LLVMBuildRetVoid(c->b);
  c->fn = p->fn, c->entry = p->entry, c->err_bb = p->err_bb, c->loop = p->loop;
  LLVMPositionBuilderAtEnd(c->b, p->resume);
  call_parallel(c, p->part, p->fty, p->ctxbuf, p->nblocks);
}

/* The part of a split call reads the element count from ctx, so calls of one kernel
 * with one layout share it (Adam's update of every parameter: one part). */
void cg_call_split(cg_ctx *c, LLVMTypeRef fty, LLVMValueRef kf, LLVMValueRef *args, int nargs,
                   int count_arg, const int64_t *stride, int64_t count, int64_t unit) {
  cg_kernel_cache *kc = c->kc;
  int64_t per = CG_SPLIT_ELEMENTS / (unit > 0 ? unit : 1);
  if (per < 1) per = 1;
  if (count * unit < 2 * CG_SPLIT_ELEMENTS || count < 2) {
    LLVMBuildCall2(c->b, fty, kf, args, (unsigned)nargs, "");
    return;
  }
  LLVMValueRef nb = cg_i64(c, (count + per - 1) / per);
  char *key = NULL;
  size_t kl = 0, kcap = 0;
  cg_key_add(&key, &kl, &kcap, "part/%s/%d/%lld", LLVMGetValueName(kf), count_arg, (long long)per);
  for (int k = 0; k < nargs; k++) cg_key_add(&key, &kl, &kcap, ",%lld", (long long)stride[k]);
  LLVMValueRef *cap = malloc((size_t)nargs * sizeof *cap);
  if (!key || !cap) { /* out of memory: one call does the same work */
    free(key), free(cap);
    LLVMBuildCall2(c->b, fty, kf, args, (unsigned)nargs, "");
    return;
  }
  memcpy(cap, args, (size_t)nargs * sizeof *cap);
  LLVMTypeRef part_ty;
  LLVMValueRef part = kc ? cg_kernel_find(kc, key, &part_ty) : NULL;
  if (part) {
    free(key);
    call_parallel(c, part, part_ty, store_ctx(c, nargs, cap), nb);
    free(cap);
    return;
  }
  cg_par par;
  LLVMValueRef b;
  cg_par_begin(c, &par, nb, nargs, cap, &b);
  LLVMValueRef lo = LLVMBuildNSWMul(c->b, b, cg_i64(c, per), "");
  LLVMValueRef left = LLVMBuildNSWSub(c->b, cap[count_arg], lo, "");
  LLVMValueRef n = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, left, cg_i64(c, per), ""),
                                   left, cg_i64(c, per), "");
  for (int k = 0; k < nargs; k++) {
    if (k == count_arg)
      cap[k] = n;
    else if (stride[k]) /* 4-byte elements */
      cap[k] = cg_gep(c, c->i8, cap[k], LLVMBuildNSWMul(c->b, lo, cg_i64(c, 4 * stride[k]), ""));
  }
  LLVMBuildCall2(c->b, fty, kf, cap, (unsigned)nargs, "");
  cg_par_end(c, &par);
  free(cap);
  if (kc)
    (void)cg_kernel_add(kc, key, par.part, par.fty); /* failing, only sharing is lost */
  else
    free(key);
}

void cg_ploop_begin(cg_ctx *c, cg_ploop *pl, int64_t count, int64_t work, LLVMValueRef **vars,
                    int nvars) {
  int64_t per = CG_SPLIT_ELEMENTS / (work > 0 ? work : 1);
  if (per < 1) per = 1;
  pl->nvars = 0;
  pl->split = count >= 2 && count * work >= 2 * CG_SPLIT_ELEMENTS && nvars <= CG_PLOOP_MAX;
  if (!pl->split) {
    cg_loop_begin(c, &pl->l, cg_i64(c, count));
    pl->iv = pl->l.iv;
    return;
  }
  LLVMValueRef cap[CG_PLOOP_MAX], b;
  for (int k = 0; k < nvars; k++)
    if (*vars[k]) {
      pl->var[pl->nvars] = vars[k];
      pl->saved[pl->nvars] = *vars[k];
      cap[pl->nvars++] = *vars[k];
    }
  cg_par_begin(c, &pl->par, cg_i64(c, (count + per - 1) / per), pl->nvars, cap, &b);
  for (int k = 0; k < pl->nvars; k++) *pl->var[k] = cap[k];
  LLVMValueRef lo = LLVMBuildNSWMul(c->b, b, cg_i64(c, per), "");
  LLVMValueRef left = LLVMBuildNSWSub(c->b, cg_i64(c, count), lo, "");
  LLVMValueRef n = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, left, cg_i64(c, per), ""),
                                   left, cg_i64(c, per), "");
  cg_loop_begin(c, &pl->l, n);
  pl->iv = LLVMBuildNSWAdd(c->b, lo, pl->l.iv, "");
}

void cg_ploop_end(cg_ctx *c, cg_ploop *pl) {
  cg_loop_end(c, &pl->l);
  if (!pl->split) return;
  cg_par_end(c, &pl->par);
  for (int k = 0; k < pl->nvars; k++) *pl->var[k] = pl->saved[k];
}
