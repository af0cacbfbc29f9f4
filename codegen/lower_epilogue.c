/* lower_epilogue.c: a kernel headed by a GEMM (fuse.c: matmul, conv, deconv,
 * conv_grad_x) whose other members, elementwise consumers of its output, run as an
 * epilogue: the head's own lowering writes its output block by block (conv and its
 * relatives a group of images at a time, matmul all at once) and, once a block of rows
 * of the outermost dimension is complete, calls the kernel's fused loop (lower_fused.c)
 * on just those rows, while they are still in cache, instead of a separate pass over
 * the whole output afterwards. The GEMM calls and the loop's float operations are the
 * same as unfused, so the results are bit for bit the same. As one function
 *   i32 headed(float *state, i8 *extra, i8 *out, i8 *in0.., i8 *p1..)
 * with the head's arguments as lower_kernel passes them (codegen.c) and p the loop's
 * pointer arguments (operands, outputs, variables), each advanced by its stride (0 for
 * a broadcast operand such as a bias) to the block's first row; a large block is split
 * over the runtime's threads like any fused loop (cg_call_split). */
#include "codegen/cg_internal.h"

#include <stdlib.h>
#include <string.h>

struct cg_epilogue {
  LLVMValueRef fn; /* the loop */
  LLVMTypeRef fty;
  int np;                /* its arguments: count, then np - 1 pointers */
  LLVMValueRef *ptr;     /* the pointers, parameters of the headed function */
  const int64_t *stride; /* per argument: elements per unit of count */
  bool nested;           /* the loop counts rows, else elements */
  int64_t row_elems;     /* elements per row of the outermost dimension */
};

void cg_epilogue_rows(cg_ctx *c, LLVMValueRef row0, int64_t rows) {
  const cg_epilogue *e = c->epi;
  if (!e) return;
  LLVMValueRef *a = calloc((size_t)e->np, sizeof *a);
  if (!a) {
    cg_fail(c, "out of memory");
    return;
  }
  /* units: rows of a nested loop, else elements */
  int64_t unit = e->nested ? e->row_elems : 1, per_row = e->nested ? 1 : e->row_elems;
  LLVMValueRef u0 = LLVMBuildNSWMul(c->b, row0, cg_i64(c, per_row), "");
  a[0] = cg_i64(c, rows * per_row);
  for (int p = 1; p < e->np; p++) {
    a[p] = e->ptr[p];
    if (e->stride[p])
      a[p] = LLVMBuildBitCast(
          c->b,
          cg_gep(c, c->f32, cg_fptr(c, e->ptr[p]),
                 LLVMBuildNSWMul(c->b, u0, cg_i64(c, e->stride[p]), "")),
          c->pi8, "");
  }
  /* a large block over the runtime's threads, as lower_fused.c's own calls */
  cg_call_split(c, e->fty, e->fn, a, e->np, 0, e->stride, rows * per_row, unit);
  free(a);
}

int cg_lower_headed(cg_ctx *c, cg_kernel_cache *kc, const memplan *mp, int head,
                    LLVMValueRef loop, LLVMTypeRef loop_ty, LLVMValueRef const *loop_args,
                    const int64_t *stride, int np, bool nested, bool inplace) {
  const ir_node *n = &c->f->nodes[head];
  int nin = n->nin, nargs = 3 + nin + np - 1, rc = 0;
  /* the head's lowering and which loop it calls: identical heads with identical loops
   * share one function */
  char *nk = cg_node_key(c->f, n, inplace);
  const char *ln = LLVMGetValueName(loop);
  char *key = nk ? malloc(strlen(nk) + strlen(ln) + 10) : NULL;
  if (key) sprintf(key, "%s|headed|%s", nk, ln);
  free(nk);
  LLVMValueRef *cargs = calloc((size_t)nargs, sizeof *cargs);
  LLVMTypeRef *pt = calloc((size_t)nargs, sizeof *pt);
  LLVMValueRef *ptr = calloc((size_t)np, sizeof *ptr);
  if (!key || !cargs || !pt || !ptr) {
    free(key), free(cargs), free(pt), free(ptr);
    return cg_fail(c, "out of memory");
  }
  LLVMTypeRef fty = NULL;
  LLVMValueRef kf = cg_kernel_find(kc, key, &fty);
  if (!kf) {
    pt[0] = c->pf32;
    for (int p = 1; p < nargs; p++) pt[p] = c->pi8;
    fty = LLVMFunctionType(c->i32, pt, (unsigned)nargs, 0);
    char name[96];
    snprintf(name, sizeof name, "headed.%s", ir_ops[n->op].name);
    kf = cg_kernel_function(c, name, fty, !inplace); /* out: no loop output shares it */
    cg_ctx saved = *c;
    LLVMBasicBlockRef cur = LLVMGetInsertBlock(c->b);
    LLVMValueRef kin[IR_MAX_IN];
    c->fn = kf;
    c->state = LLVMGetParam(kf, 0);
    c->extra = LLVMGetParam(kf, 1);
    c->numel = NULL;
    c->scratch = NULL;
    for (int j = 0; j < nin; j++) kin[j] = LLVMGetParam(kf, 3 + (unsigned)j);
    for (int p = 1; p < np; p++) ptr[p] = LLVMGetParam(kf, (unsigned)(2 + nin + p));
    cg_epilogue e = {loop, loop_ty, np, ptr, stride, nested, 1};
    for (int d = 1; d < n->shape.rank; d++) e.row_elems *= n->shape.dim[d];
    c->epi = &e;
    rc = cg_lower_kernel_body(c, kf, head, n, kin);
    c->fn = saved.fn, c->state = saved.state, c->scratch = saved.scratch;
    c->entry = saved.entry, c->err_bb = saved.err_bb;
    c->extra = NULL, c->numel = NULL, c->epi = NULL;
    LLVMPositionBuilderAtEnd(c->b, cur);
    if (rc || cg_kernel_add(kc, key, kf, fty)) {
      if (!rc) rc = cg_fail(c, "out of memory");
      free(cargs), free(pt), free(ptr);
      return rc;
    }
    key = NULL;
  }
  free(key);
  cargs[0] = c->state;
  cargs[1] = mp->extra_off[head] >= 0 ? cg_scratch_at(c, mp->extra_off[head])
                                      : LLVMConstNull(c->pi8);
  cargs[2] = cg_scratch_at(c, mp->off[head]);
  for (int j = 0; j < nin; j++) {
    LLVMValueRef v = c->val[ir_operand(n, j)];
    if (!v) {
      free(cargs), free(pt), free(ptr);
      return cg_fail(c, "operand node %d has no value", ir_operand(n, j));
    }
    cargs[3 + j] = v;
  }
  for (int p = 1; p < np; p++) cargs[2 + nin + p] = loop_args[p];
  int site = c->prof ? cg_prof_site_begin(c, head, n, LLVMGetValueName(kf)) : -1;
  LLVMValueRef r = LLVMBuildCall2(c->b, fty, kf, cargs, (unsigned)nargs, "");
  if (site >= 0) cg_prof_emit(c, "cg_prof_exit", site);
  cg_check(c, LLVMBuildICmp(c->b, LLVMIntEQ, r, cg_i32c(c, 0), ""));
  free(cargs), free(pt), free(ptr);
  return 0;
}
