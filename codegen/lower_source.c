/* lower_source.c: sources and effects. input aliases the caller's buffer; const writes
 * its one float; load copies the variable's slice of the state (a store later in the
 * function must not change a value already loaded), or, without a buffer (out NULL:
 * the memory plan found no store of it before its last reader), is that slice; store
 * copies into the state and its value aliases its operand. State offsets are in 4-byte elements, as in ir.h. */
#include "codegen/cg_internal.h"

int cg_lower_input(cg_ctx *c, int id, const ir_node *n, LLVMValueRef const *in,
                   LLVMValueRef out) {
  (void)in, (void)out;
  if (n->i[0] < 0 || n->i[0] >= c->f->ninputs)
    return cg_fail(c, "input %lld of a function with %d inputs", (long long)n->i[0],
                   c->f->ninputs);
  c->val[id] = LLVMBuildLoad2(c->b, c->pi8, cg_gep(c, c->pi8, c->inputs, cg_i64(c, n->i[0])), "");
  return 0;
}

int cg_lower_const(cg_ctx *c, int id, const ir_node *n, LLVMValueRef const *in,
                   LLVMValueRef out) {
  (void)id, (void)in;
  cg_st(c, cg_fptr(c, out), cg_i64(c, 0), cg_f32c(c, n->f[0]));
  return 0;
}

static int var_of(cg_ctx *c, const ir_node *n, int64_t *off) {
  if (n->var < 0 || n->var >= c->m->nvars) return cg_fail(c, "no state variable %d", n->var);
  const ir_var *v = &c->m->vars[n->var];
  int64_t count = shape_numel(v->shape);
  if (count != shape_numel(n->shape))
    return cg_fail(c, "variable %s has %lld elements, the value %lld", v->name,
                   (long long)count, (long long)shape_numel(n->shape));
  if (v->offset < 0 || v->offset + count > c->m->state_size)
    return cg_fail(c, "variable %s lies outside the state buffer", v->name);
  *off = v->offset;
  return 0;
}

int cg_lower_load(cg_ctx *c, int id, const ir_node *n, LLVMValueRef const *in,
                  LLVMValueRef out) {
  (void)in;
  int64_t off;
  if (var_of(c, n, &off)) return 1;
  if (!out) {
    c->val[id] = LLVMBuildBitCast(c->b, cg_gep(c, c->f32, c->state, cg_i64(c, off)), c->pi8, "");
    return 0;
  }
  LLVMValueRef st = LLVMBuildBitCast(c->b, c->state, c->pi8, "");
  /* in pieces over the runtime's threads when large (a layer's weights) */
  int64_t count = shape_numel(n->shape), piece = CG_SPLIT_ELEMENTS;
  cg_ploop pl;
  LLVMValueRef *used[] = {&out, &st};
  cg_ploop_begin(c, &pl, (count + piece - 1) / piece, piece, used, 2);
  LLVMValueRef lo = LLVMBuildNSWMul(c->b, pl.iv, cg_i64(c, piece), "");
  LLVMValueRef left = LLVMBuildNSWSub(c->b, cg_i64(c, count), lo, "");
  LLVMValueRef len = LLVMBuildSelect(
      c->b, LLVMBuildICmp(c->b, LLVMIntSLT, left, cg_i64(c, piece), ""), left, cg_i64(c, piece), "");
  cg_copy4(c, out, lo, st, LLVMBuildNSWAdd(c->b, lo, cg_i64(c, off), ""), len);
  cg_ploop_end(c, &pl);
  return 0;
}

int cg_lower_store(cg_ctx *c, int id, const ir_node *n, LLVMValueRef const *in,
                   LLVMValueRef out) {
  (void)out;
  int64_t off;
  if (var_of(c, n, &off)) return 1;
  LLVMValueRef st = LLVMBuildBitCast(c->b, c->state, c->pi8, "");
  cg_copy4(c, st, cg_i64(c, off), in[0], cg_i64(c, 0), cg_i64(c, shape_numel(n->shape)));
  c->val[id] = in[0];
  return 0;
}

/* same elements, new shape: the operand's buffer itself (values never change) */
int cg_lower_reshape(cg_ctx *c, int id, const ir_node *n, LLVMValueRef const *in,
                     LLVMValueRef out) {
  (void)n, (void)out;
  c->val[id] = in[0];
  return 0;
}
