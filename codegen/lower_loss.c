/* lower_loss.c: the scalar losses (bce_logits, softmax_ce, info_categorical,
 * gaussian_nll) and softmax, as loops summing in double in the interpreter's order
 * with libm's double exp/log/log1p: results match it bit for bit. A label outside
 * [0, K) makes the function return 1, where the interpreter's kernel fails. */
#include "codegen/cg_internal.h"

#include <math.h>

static void add_to(cg_ctx *c, LLVMValueRef acc, LLVMValueRef v) {
  LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, LLVMBuildLoad2(c->b, c->f64, acc, ""), v, ""), acc);
}

static LLVMValueRef fmax_d(cg_ctx *c, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOGT, b, a, ""), b, a, "");
}

/* Over row x[row .. row+K): stores its maximum m in mx and the sum of exp(x - m) in
 * se (both f64 slots), and returns m. Shared by the cross-entropy and softmax. */
static LLVMValueRef row_max_sumexp(cg_ctx *c, LLVMValueRef x, LLVMValueRef row, int64_t K,
                                   LLVMValueRef mx, LLVMValueRef se) {
  cg_loop lj;
  LLVMBuildStore(c->b, cg_ext(c, cg_ld(c, c->f32, x, row)), mx);
  cg_loop_begin(c, &lj, cg_i64(c, K));
  LLVMValueRef v = cg_ext(c, cg_ld(c, c->f32, x, LLVMBuildNSWAdd(c->b, row, lj.iv, "")));
  LLVMBuildStore(c->b, fmax_d(c, LLVMBuildLoad2(c->b, c->f64, mx, ""), v), mx);
  cg_loop_end(c, &lj);
  LLVMValueRef m = LLVMBuildLoad2(c->b, c->f64, mx, "");
  LLVMBuildStore(c->b, cg_f64c(c, 0), se);
  cg_loop_begin(c, &lj, cg_i64(c, K));
  v = cg_ext(c, cg_ld(c, c->f32, x, LLVMBuildNSWAdd(c->b, row, lj.iv, "")));
  add_to(c, se, cg_call_d(c, "exp", LLVMBuildFSub(c->b, v, m, "")));
  cg_loop_end(c, &lj);
  return m;
}

/* logits, target broadcast to the logits -> mean of max(x,0) - x*t + log1p(exp(-|x|)) */
int cg_lower_bce_logits(cg_ctx *c, int id, const ir_node *n, LLVMValueRef const *in,
                        LLVMValueRef out) {
  (void)id;
  ir_shape o = c->f->nodes[n->in[0]].shape;
  int64_t st[IR_MAX_RANK], xs[IR_MAX_RANK];
  cg_broadcast_strides(c->f->nodes[n->in[1]].shape, o, st);
  cg_contig_strides(o, xs);
  LLVMValueRef x = cg_fptr(c, in[0]), t = cg_fptr(c, in[1]);
  LLVMValueRef sum = cg_var_f64(c, 0), zero = cg_f64c(c, 0);
  cg_nest nest;
  cg_nest_begin(c, &nest, o.rank, o.dim);
  LLVMValueRef v = cg_ext(c, cg_ld(c, c->f32, x, cg_linear(c, o.rank, nest.idx, xs)));
  LLVMValueRef tv = cg_ext(c, cg_ld(c, c->f32, t, cg_linear(c, o.rank, nest.idx, st)));
  LLVMValueRef mx = LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOGT, v, zero, ""), v, zero, "");
  LLVMValueRef nabs = LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOGE, v, zero, ""),
                                      LLVMBuildFNeg(c->b, v, ""), v, "");
  LLVMValueRef term = LLVMBuildFSub(c->b, mx, LLVMBuildFMul(c->b, v, tv, ""), "");
  term = LLVMBuildFAdd(c->b, term, cg_call_d(c, "log1p", cg_call_d(c, "exp", nabs)), "");
  add_to(c, sum, term);
  cg_nest_end(c, &nest);
  LLVMValueRef r = LLVMBuildFDiv(c->b, LLVMBuildLoad2(c->b, c->f64, sum, ""),
                                 cg_f64c(c, (double)shape_numel(o)), "");
  cg_st(c, cg_fptr(c, out), cg_i64(c, 0), cg_trunc(c, r));
  return 0;
}

/* logits [N,K], labels i32 [N]: mean over rows of logsumexp(row) - row[label];
 * info_categorical gives ln K minus that */
int cg_lower_cross_entropy(cg_ctx *c, int id, const ir_node *n, LLVMValueRef const *in,
                           LLVMValueRef out) {
  (void)id;
  ir_shape s = c->f->nodes[n->in[0]].shape;
  int64_t N = s.dim[0], K = s.dim[1];
  LLVMValueRef l = cg_fptr(c, in[0]), lab = cg_iptr(c, in[1]);
  LLVMValueRef sum = cg_var_f64(c, 0), mx = cg_var_f64(c, 0), se = cg_var_f64(c, 0);
  cg_loop lb;
  cg_loop_begin(c, &lb, cg_i64(c, N));
  LLVMValueRef lv = cg_ld(c, c->i32, lab, lb.iv);
  cg_check(c, LLVMBuildICmp(c->b, LLVMIntULT, lv, cg_i32c(c, (int32_t)K), ""));
  LLVMValueRef row = LLVMBuildNSWMul(c->b, lb.iv, cg_i64(c, K), "");
  LLVMValueRef m = row_max_sumexp(c, l, row, K, mx, se);
  LLVMValueRef at = LLVMBuildNSWAdd(c->b, row, LLVMBuildSExt(c->b, lv, c->i64, ""), "");
  LLVMValueRef term = LLVMBuildFAdd(c->b, m, cg_call_d(c, "log", LLVMBuildLoad2(c->b, c->f64, se, "")), "");
  term = LLVMBuildFSub(c->b, term, cg_ext(c, cg_ld(c, c->f32, l, at)), "");
  add_to(c, sum, term);
  cg_loop_end(c, &lb);
  LLVMValueRef ce = LLVMBuildFDiv(c->b, LLVMBuildLoad2(c->b, c->f64, sum, ""), cg_f64c(c, (double)N), "");
  if (n->op == IR_OP_INFO_CATEGORICAL) ce = LLVMBuildFSub(c->b, cg_f64c(c, log((double)K)), ce, "");
  cg_st(c, cg_fptr(c, out), cg_i64(c, 0), cg_trunc(c, ce));
  return 0;
}

/* mean [N,D], x [N,D], std f[0]: 1/N sum 0.5*((x-mean)/std)^2 + log(std) + ½log 2π */
int cg_lower_gaussian_nll(cg_ctx *c, int id, const ir_node *n, LLVMValueRef const *in,
                          LLVMValueRef out) {
  (void)id;
  ir_shape s = c->f->nodes[n->in[0]].shape;
  int64_t N = s.dim[0], D = s.dim[1];
  double sd = n->f[0], half_log_2pi = 0.5 * log(2 * 3.14159265358979323846), lsd = log(sd);
  LLVMValueRef mu = cg_fptr(c, in[0]), x = cg_fptr(c, in[1]), sum = cg_var_f64(c, 0);
  cg_loop l;
  cg_loop_begin(c, &l, cg_i64(c, N * D));
  LLVMValueRef z = LLVMBuildFSub(c->b, cg_ext(c, cg_ld(c, c->f32, x, l.iv)),
                                 cg_ext(c, cg_ld(c, c->f32, mu, l.iv)), "");
  z = LLVMBuildFDiv(c->b, z, cg_f64c(c, sd), "");
  LLVMValueRef t = LLVMBuildFMul(c->b, LLVMBuildFMul(c->b, cg_f64c(c, 0.5), z, ""), z, "");
  t = LLVMBuildFAdd(c->b, LLVMBuildFAdd(c->b, t, cg_f64c(c, lsd), ""), cg_f64c(c, half_log_2pi), "");
  add_to(c, sum, t);
  cg_loop_end(c, &l);
  LLVMValueRef r = LLVMBuildFDiv(c->b, LLVMBuildLoad2(c->b, c->f64, sum, ""), cg_f64c(c, (double)N), "");
  cg_st(c, cg_fptr(c, out), cg_i64(c, 0), cg_trunc(c, r));
  return 0;
}

/* softmax over the last axis, rows [rows, K]: exp(x - max) / sum exp(x - max) */
int cg_lower_softmax(cg_ctx *c, int id, const ir_node *n, LLVMValueRef const *in,
                     LLVMValueRef out) {
  (void)id;
  ir_shape s = n->shape;
  int64_t K = s.dim[s.rank - 1], rows = K > 0 ? shape_numel(s) / K : 0;
  LLVMValueRef x = cg_fptr(c, in[0]), y = cg_fptr(c, out);
  LLVMValueRef mx = cg_var_f64(c, 0), se = cg_var_f64(c, 0);
  cg_loop lr, lj;
  cg_loop_begin(c, &lr, cg_i64(c, rows));
  LLVMValueRef row = LLVMBuildNSWMul(c->b, lr.iv, cg_i64(c, K), "");
  LLVMValueRef m = row_max_sumexp(c, x, row, K, mx, se);
  LLVMValueRef tot = LLVMBuildLoad2(c->b, c->f64, se, "");
  cg_loop_begin(c, &lj, cg_i64(c, K));
  LLVMValueRef at = LLVMBuildNSWAdd(c->b, row, lj.iv, "");
  LLVMValueRef v = cg_ext(c, cg_ld(c, c->f32, x, at));
  v = LLVMBuildFDiv(c->b, cg_call_d(c, "exp", LLVMBuildFSub(c->b, v, m, "")), tot, "");
  cg_st(c, y, at, cg_trunc(c, v));
  cg_loop_end(c, &lj);
  cg_loop_end(c, &lr);
  return 0;
}
