/* lower_fused.c: a kernel of several elementwise nodes (fuse.c) as one loop
 *   void kernel(i64 count, i8 *ext0.., i8 *out0.., i8 *var0..)
 * over i < count (or, when a member broadcasts a smaller operand such as a bias, a loop
 * nest over the kernel's shape with count rows of its outermost dimension, that
 * operand read through broadcast strides): every
 * operand from outside the kernel (ext) is read at i (at 0 when it is a single element)
 * before anything is written, so a value may be written in
 * place of an operand that dies here (memplan.c); then the members are computed in
 * schedule order in registers with cg_elementwise_value, each stored value written to
 * its buffer (out); loads read, and stores write, their variable's slice of the state
 * (var) directly, loads before anything is written (fuse.c puts no load after a store
 * of its variable in one kernel).
 * Kernels of the same structure share one function whatever their size: the Adam
 * update of every parameter is one function, called once per parameter. Large calls
 * run on the runtime's threads (cg_call_split), a range of elements (or of outer rows,
 * the count parameter of a nested kernel) per block. A kernel headed by a GEMM
 * (fuse.c) is lowered by lower_epilogue.c: the GEMM calls the loop on each block of
 * rows of its output as it completes them. */
#include "codegen/cg_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
  int *ext;       /* external operand node ids, in order of first use */
  int next;
  int *ref;       /* per member operand: >= 0 member index, < 0: -1 - external index */
  int *outs, nouts; /* members whose value is stored (member indices) */
  int *vars, nvars; /* state variables loaded or stored, in order of first use */
  int *var_of;      /* per member: index into vars for loads and stores, else -1 */
} fused_shape;

static int local_of(const int *mem, int nm, int id) {
  for (int q = 0; q < nm; q++)
    if (mem[q] == id) return q;
  return -1;
}

int cg_lower_fused(cg_ctx *c, cg_kernel_cache *kc, const kernel_plan *kp, const memplan *mp,
                   int k) {
  const ir_func *f = c->f;
  /* the loop's members: the kernel's but its GEMM head, whose value the loop reads as
   * an operand from outside */
  int head = kernel_head(f, kp, k);
  int nm = 0, *mem = malloc((size_t)(kp->first[k + 1] - kp->first[k]) * sizeof *mem);
  if (!mem) return cg_fail(c, "out of memory");
  for (int q = kp->first[k]; q < kp->first[k + 1]; q++)
    if (kp->members[q] != head) mem[nm++] = kp->members[q];
  int64_t count = shape_numel(f->nodes[mem[0]].shape);
  fused_shape fs = {0};
  size_t cap = (size_t)nm * IR_MAX_IN + 1;
  fs.ext = malloc(cap * sizeof *fs.ext);
  fs.ref = malloc(cap * sizeof *fs.ref);
  fs.outs = malloc((size_t)nm * sizeof *fs.outs);
  fs.vars = malloc((size_t)nm * sizeof *fs.vars);
  fs.var_of = malloc((size_t)nm * sizeof *fs.var_of);
  LLVMValueRef *vals = calloc((size_t)nm, sizeof *vals);
  LLVMValueRef *ev = calloc(cap, sizeof *ev);
  LLVMValueRef *cargs = calloc(cap + 2 * (size_t)nm + 1, sizeof *cargs);
  LLVMTypeRef *pt = calloc(cap + 2 * (size_t)nm + 1, sizeof *pt);
  char *key = NULL;
  size_t kl = 0, kcap = 0;
  int rc = 0;
  if (!fs.ext || !fs.ref || !fs.outs || !fs.vars || !fs.var_of || !vals || !ev || !cargs || !pt) {
    rc = cg_fail(c, "out of memory");
    goto done;
  }
  /* the structure, as a key; with a broadcast operand the loop is a nest over the
   * kernel's shape and the key holds the shapes */
  bool inplace = false, nested = false;
  ir_shape shape = f->nodes[mem[0]].shape;
  for (int q = 0; q < nm; q++) nested |= fuse_broadcast(f, &f->nodes[mem[q]]);
  cg_key_add(&key, &kl, &kcap, "fused");
  if (nested)
    for (int d = 0; d < shape.rank; d++) cg_key_add(&key, &kl, &kcap, "%s%lld", d ? "," : "[", (long long)shape.dim[d]);
  int nref = 0;
  for (int q = 0; q < nm; q++) {
    const ir_node *n = &f->nodes[mem[q]];
    if (n->nin > IR_MAX_IN) {
      rc = cg_fail(c, "fused %s with %d operands", ir_ops[n->op].name, n->nin);
      goto done;
    }
    cg_key_add(&key, &kl, &kcap, ";%d", (int)n->op);
    for (int a = 0; a < IR_MAX_ATTR; a++)
      cg_key_add(&key, &kl, &kcap, "/%lld/%a", (long long)n->i[a], n->f[a]);
    for (int j = 0; j < n->nin; j++) {
      int a = n->in[j], lq = local_of(mem, nm, a);
      if (lq < 0) {
        int x = 0;
        while (x < fs.next && fs.ext[x] != a) x++;
        if (x == fs.next) fs.ext[fs.next++] = a;
        lq = -1 - x;
        cg_key_add(&key, &kl, &kcap, " e%d%s", x,
                   shape_numel(f->nodes[a].shape) == 1 ? "s" : "");
        for (int d = 0; nested && d < f->nodes[a].shape.rank; d++)
          cg_key_add(&key, &kl, &kcap, "%s%lld", d ? "," : ":", (long long)f->nodes[a].shape.dim[d]);
      } else {
        cg_key_add(&key, &kl, &kcap, " m%d", lq);
      }
      fs.ref[nref++] = lq;
    }
    fs.var_of[q] = -1;
    if (n->op == IR_OP_LOAD || n->op == IR_OP_STORE) {
      int x = 0;
      while (x < fs.nvars && fs.vars[x] != n->var) x++;
      if (x == fs.nvars) fs.vars[fs.nvars++] = n->var;
      fs.var_of[q] = x;
      cg_key_add(&key, &kl, &kcap, " v%d", x);
    }
    if (n->op == IR_OP_STORE) {
      continue;
    } else if (mp->home[mem[q]] == mem[q]) {
      fs.outs[fs.nouts++] = q;
      cg_key_add(&key, &kl, &kcap, " o");
      if (mp->inplace_of[mem[q]] >= 0) inplace = true;
    }
  }
  cg_key_add(&key, &kl, &kcap, "%s", inplace ? "/inplace" : "");
  if (!key) {
    rc = cg_fail(c, "out of memory");
    goto done;
  }
  int np = 1 + fs.next + fs.nouts + fs.nvars;
  LLVMTypeRef fty = NULL;
  LLVMValueRef kf = cg_kernel_find(kc, key, &fty);
  if (!kf) {
    pt[0] = c->i64;
    for (int p = 1; p < np; p++) pt[p] = c->pi8;
    fty = LLVMFunctionType(c->void_t, pt, (unsigned)np, 0);
    char name[96];
    snprintf(name, sizeof name, "fused%d", nm); /* LLVM numbers repeats */
    kf = LLVMAddFunction(c->mod, name, fty);
    LLVMSetLinkage(kf, LLVMInternalLinkage);
    LLVMAddAttributeAtIndex(kf, LLVMAttributeFunctionIndex,
        LLVMCreateEnumAttribute(c->ctx, LLVMGetEnumAttributeKindForName("noinline", 8), 0));
    /* Writes go to buffers no operand shares (unless in place) and to the state, each
     * variable through one pointer whether loaded or stored, and no operand points into
     * the state (unfused loads copy): noalias lets the loop vectorise. */
    if (!inplace)
      for (int p = 1; p < np; p++)
        LLVMAddAttributeAtIndex(kf, (unsigned)p + 1,
            LLVMCreateEnumAttribute(c->ctx, LLVMGetEnumAttributeKindForName("noalias", 7), 0));
    cg_ctx saved = *c;
    LLVMBasicBlockRef cur = LLVMGetInsertBlock(c->b);
    c->fn = kf;
    c->entry = LLVMAppendBasicBlockInContext(c->ctx, kf, "entry");
    c->err_bb = NULL;
    LLVMPositionBuilderAtEnd(c->b, c->entry);
    cg_nest nest;
    LLVMValueRef at; /* the element's index in the kernel's shape */
    if (nested) { /* the outermost trip count is the count parameter (a block's rows) */
      int64_t st[IR_MAX_RANK];
      cg_contig_strides(shape, st);
      nest.rank = shape.rank;
      for (int d = 0; d < shape.rank; d++) {
        cg_loop_begin(c, &nest.l[d], d ? cg_i64(c, shape.dim[d]) : LLVMGetParam(kf, 0));
        nest.idx[d] = nest.l[d].iv;
      }
      at = cg_linear(c, shape.rank, nest.idx, st);
    } else {
      nest.rank = 1;
      cg_loop_begin(c, &nest.l[0], LLVMGetParam(kf, 0));
      at = nest.l[0].iv;
    }
    for (int x = 0; x < fs.next; x++) {
      ir_shape es = f->nodes[fs.ext[x]].shape;
      LLVMValueRef p = cg_fptr(c, LLVMGetParam(kf, 1 + (unsigned)x)), ix = at;
      if (shape_numel(es) == 1) {
        ix = cg_i64(c, 0);
      } else if (nested && !shape_equal(es, shape)) {
        int64_t st[IR_MAX_RANK];
        cg_broadcast_strides(es, shape, st);
        ix = cg_linear(c, shape.rank, nest.idx, st);
      }
      ev[x] = cg_ld(c, c->f32, p, ix);
    }
    /* loads read the state before any store of this kernel writes it */
    for (int q = 0; q < nm; q++)
      if (f->nodes[mem[q]].op == IR_OP_LOAD) {
        unsigned pi = (unsigned)(1 + fs.next + fs.nouts + fs.var_of[q]);
        vals[q] = cg_ld(c, c->f32, cg_fptr(c, LLVMGetParam(kf, pi)), at);
      }
    nref = 0;
    int oi = 0;
    for (int q = 0; q < nm; q++) {
      const ir_node *n = &f->nodes[mem[q]];
      LLVMValueRef x[IR_MAX_IN];
      for (int j = 0; j < n->nin; j++, nref++)
        x[j] = fs.ref[nref] >= 0 ? vals[fs.ref[nref]] : ev[-1 - fs.ref[nref]];
      if (n->op == IR_OP_STORE) {
        unsigned pi = (unsigned)(1 + fs.next + fs.nouts + fs.var_of[q]);
        cg_st(c, cg_fptr(c, LLVMGetParam(kf, pi)), at, x[0]);
        vals[q] = x[0];
        continue;
      }
      if (n->op != IR_OP_LOAD) vals[q] = cg_elementwise_value(c, n, x);
      if (oi < fs.nouts && fs.outs[oi] == q) {
        LLVMValueRef o = cg_fptr(c, LLVMGetParam(kf, (unsigned)(1 + fs.next + oi++)));
        cg_st(c, o, at, vals[q]);
      }
    }
    if (nested)
      cg_nest_end(c, &nest);
    else
      cg_loop_end(c, &nest.l[0]);
    LLVMBuildRetVoid(c->b);
    c->fn = saved.fn, c->entry = saved.entry, c->err_bb = saved.err_bb;
    LLVMPositionBuilderAtEnd(c->b, cur);
    if (cg_kernel_add(kc, key, kf, fty)) {
      key = NULL;
      rc = cg_fail(c, "out of memory");
      goto done;
    }
    key = NULL;
  }
  /* the call, split over the runtime's threads when large: flat kernels by elements,
   * nested ones by rows of the outermost dimension (each operand advanced by its
   * stride along it, 0 for a broadcast one) */
  int64_t *stride = calloc((size_t)np, sizeof *stride), st0[IR_MAX_RANK];
  if (!stride) {
    rc = cg_fail(c, "out of memory");
    goto done;
  }
  cg_contig_strides(shape, st0);
  int64_t rows = nested ? shape.dim[0] : count, row = nested ? st0[0] : 1;
  for (int x = 0; x < fs.next; x++) {
    ir_shape es = f->nodes[fs.ext[x]].shape;
    int64_t bst[IR_MAX_RANK];
    cg_broadcast_strides(es, shape, bst);
    stride[1 + x] = shape_numel(es) == 1 ? 0 : nested ? bst[0] : 1;
  }
  for (int p = 1 + fs.next; p < np; p++) stride[p] = row; /* outputs and variables */
  cargs[0] = cg_i64(c, rows);
  if (head >= 0) c->val[head] = cg_scratch_at(c, mp->off[head]); /* the GEMM writes it */
  for (int x = 0; x < fs.next; x++) {
    if (!c->val[fs.ext[x]]) {
      rc = cg_fail(c, "operand node %d has no value", fs.ext[x]);
      goto done;
    }
    cargs[1 + x] = c->val[fs.ext[x]];
  }
  for (int o = 0; o < fs.nouts; o++) {
    int id = mem[fs.outs[o]];
    c->val[id] = cg_scratch_at(c, mp->off[id]);
    cargs[1 + fs.next + o] = c->val[id];
  }
  for (int x = 0; x < fs.nvars; x++) {
    const ir_var *v = &c->m->vars[fs.vars[x]];
    if (v->offset < 0 || v->offset + count > c->m->state_size) {
      rc = cg_fail(c, "variable %s lies outside the state buffer", v->name);
      goto done;
    }
    LLVMValueRef p = cg_gep(c, c->f32, c->state, cg_i64(c, v->offset));
    cargs[1 + fs.next + fs.nouts + x] = LLVMBuildBitCast(c->b, p, c->pi8, "");
  }
  for (int q = 0; q < nm; q++) /* a store's value: NULL when it stays in registers */
    if (f->nodes[mem[q]].op == IR_OP_STORE) c->val[mem[q]] = c->val[f->nodes[mem[q]].in[0]];
  if (head >= 0) { /* the GEMM calls the loop on each block of rows it completes */
    rc = cg_lower_headed(c, kc, mp, head, kf, fty, cargs, stride, np, nested, inplace);
    free(stride);
    goto done;
  }
  /* --profile: about count elements of each operand read, each output written and each
   * variable read and written (a broadcast operand is counted in full) */
  int site = c->prof ? cg_prof_site_fused(c, mem[fs.nouts ? fs.outs[0] : 0], LLVMGetValueName(kf),
                                          count, count * 4 * (fs.next + fs.nouts + 2 * fs.nvars))
                     : -1;
  cg_call_split(c, fty, kf, cargs, np, 0, stride, rows, row);
  free(stride);
  if (site >= 0) cg_prof_emit(c, "cg_prof_exit", site);
done:
  free(mem);
  free(key);
  free(fs.ext), free(fs.ref), free(fs.outs), free(fs.vars), free(fs.var_of);
  free(vals), free(ev), free(cargs), free(pt);
  return rc;
}
