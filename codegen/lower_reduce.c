/* lower_reduce.c: sum, mean and var over a bitmask of axes, bit for bit as the
 * interpreter computes them: it walks x in C order adding each element into a double
 * acc[o], so every output adds its elements in the C order of the reduced axes. Any
 * loop order that keeps the reduced axes' loops in that relative order keeps every
 * output's sequence of additions; only the kept axes may move. Here they go outside:
 * the outputs are taken in groups of K neighbours along the last kept axis (the jam
 * axis), and one walk over the reduced axes in C order adds into K independent double
 * chains, one <K x double> vector, whose adds overlap where a single chain would wait
 * on each add. var walks twice per group: the mean (sum / count), then the squared
 * deviations from it (divided by count - 1). The groups are split over the runtime's
 * threads; each writes only its own outputs, so threads do not change a bit either. */
#include "codegen/cg_internal.h"

/* Lanes of a group. When the jam axis is x's contiguous one, a vector load: wide, so
 * that several vector chains overlap and each row of a column sum is read 256 bytes at
 * a time (with 16 lanes, one 64-byte line per 4 KiB row of [256,1024] left the
 * prefetchers behind: 4x slower). Else one scalar load per lane (a gather is slower,
 * as lower_batchnorm.c found); the loads, not the adds, bound it from 8 lanes on. */
enum { LANES_CONTIGUOUS = 64, LANES_STRIDED = 8 };

typedef struct {
  int nred;                                    /* reduced axes, in C order: */
  int64_t rdim[IR_MAX_RANK], rst[IR_MAX_RANK]; /*   their sizes and x strides */
  int ngroup;                                  /* the digits of a group's index: */
  int64_t gdim[IR_MAX_RANK], gx[IR_MAX_RANK], gy[IR_MAX_RANK]; /* sizes, x and y strides */
  int64_t jst;         /* x stride of the jam axis (0: no kept axis longer than 1) */
  int64_t K, rem;      /* lanes of a group; of the last group along the jam axis (0: K) */
  int64_t count;       /* elements reduced into each output */
} plan;

/* The group digits are the kept axes before the jam axis, then the jam axis in steps
 * of K; y's stride along the jam axis is 1 (later kept axes have size 1). */
static plan plan_of(ir_shape s, int64_t mask) {
  plan p = {.count = 1};
  int64_t xst[IR_MAX_RANK], yst[IR_MAX_RANK], step = 1;
  cg_contig_strides(s, xst);
  int jam = -1;
  for (int d = s.rank - 1; d >= 0; d--) {
    yst[d] = mask >> d & 1 ? 0 : step;
    if (mask >> d & 1) p.count *= s.dim[d];
    else step *= s.dim[d];
    if (jam < 0 && !(mask >> d & 1) && s.dim[d] > 1) jam = d;
  }
  for (int d = 0; d < s.rank; d++) {
    if (mask >> d & 1) {
      p.rdim[p.nred] = s.dim[d], p.rst[p.nred++] = xst[d];
    } else if (d < jam) {
      p.gdim[p.ngroup] = s.dim[d], p.gx[p.ngroup] = xst[d], p.gy[p.ngroup++] = yst[d];
    }
  }
  int64_t n = jam < 0 ? 1 : s.dim[jam];
  p.jst = jam < 0 ? 0 : xst[jam];
  p.K = p.jst == 1 ? LANES_CONTIGUOUS : LANES_STRIDED;
  if (p.K > n) p.K = n;
  p.rem = n % p.K;
  p.gdim[p.ngroup] = (n + p.K - 1) / p.K, p.gx[p.ngroup] = p.K * p.jst, p.gy[p.ngroup++] = p.K;
  return p;
}

static LLVMValueRef splat(cg_ctx *c, int64_t K, double v) {
  LLVMValueRef e[LANES_CONTIGUOUS];
  for (int64_t k = 0; k < K; k++) e[k] = cg_f64c(c, v);
  return LLVMConstVector(e, (unsigned)K);
}

/* The K lanes' sums over the reduced axes of x (from element xo of x, lanes jst apart)
 * or, given center, of (x - center)^2: one walk in C order. */
static LLVMValueRef lane_sums(cg_ctx *c, const plan *p, int64_t K, LLVMValueRef x,
                              LLVMValueRef xo, LLVMValueRef center) {
  LLVMTypeRef vd = LLVMVectorType(c->f64, (unsigned)K), vf = LLVMVectorType(c->f32, (unsigned)K);
  LLVMValueRef acc = cg_entry_alloca(c, vd, "lanes");
  LLVMBuildStore(c->b, LLVMConstNull(vd), acc);
  cg_nest nest;
  cg_nest_begin(c, &nest, p->nred, p->rdim);
  LLVMValueRef at = LLVMBuildNSWAdd(c->b, xo, cg_linear(c, p->nred, nest.idx, p->rst), "");
  LLVMValueRef v = LLVMGetUndef(vf);
  if (p->jst == 1) {
    v = LLVMBuildLoad2(c->b, vf, LLVMBuildBitCast(c->b, cg_gep(c, c->f32, x, at),
                                                  LLVMPointerType(vf, 0), ""), "");
    LLVMSetAlignment(v, 4);
  } else {
    for (int64_t k = 0; k < K; k++)
      v = LLVMBuildInsertElement(
          c->b, v, cg_ld(c, c->f32, x, LLVMBuildNSWAdd(c->b, at, cg_i64(c, k * p->jst), "")),
          cg_i64(c, k), "");
  }
  v = LLVMBuildFPExt(c->b, v, vd, "");
  if (center) {
    LLVMValueRef d = LLVMBuildFSub(c->b, v, center, "");
    v = LLVMBuildFMul(c->b, d, d, "");
  }
  LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, LLVMBuildLoad2(c->b, vd, acc, ""), v, ""), acc);
  cg_nest_end(c, &nest);
  return LLVMBuildLoad2(c->b, vd, acc, "");
}

/* y[yo + k] for the K lanes of the group at xo */
static void group(cg_ctx *c, const plan *p, ir_op op, int64_t K, LLVMValueRef x,
                  LLVMValueRef xo, LLVMValueRef y, LLVMValueRef yo) {
  LLVMValueRef v = lane_sums(c, p, K, x, xo, NULL);
  if (op != IR_OP_SUM) v = LLVMBuildFDiv(c->b, v, splat(c, K, (double)p->count), "");
  if (op == IR_OP_VAR)
    v = LLVMBuildFDiv(c->b, lane_sums(c, p, K, x, xo, v), splat(c, K, (double)(p->count - 1)), "");
  LLVMTypeRef vf = LLVMVectorType(c->f32, (unsigned)K);
  LLVMValueRef st = LLVMBuildStore(
      c->b, LLVMBuildFPTrunc(c->b, v, vf, ""),
      LLVMBuildBitCast(c->b, cg_gep(c, c->f32, y, yo), LLVMPointerType(vf, 0), ""));
  LLVMSetAlignment(st, 4);
}

int cg_lower_reduce(cg_ctx *c, int id, const ir_node *n, LLVMValueRef const *in,
                    LLVMValueRef out) {
  (void)id;
  ir_shape s = c->f->nodes[n->in[0]].shape;
  if (shape_numel(n->shape) == 0) return 0;
  plan p = plan_of(s, n->i[0]);
  int64_t groups = 1;
  for (int g = 0; g < p.ngroup; g++) groups *= p.gdim[g];
  LLVMValueRef x = cg_fptr(c, in[0]), y = cg_fptr(c, out);
  LLVMValueRef *used[] = {&x, &y};
  cg_ploop pl;
  cg_ploop_begin(c, &pl, groups, shape_numel(s) / groups, used, 2);
  /* group index -> its digits -> where its lanes start in x and y */
  LLVMValueRef rest = pl.iv, xo = cg_i64(c, 0), yo = xo, last = NULL;
  for (int g = p.ngroup - 1; g >= 0; g--) {
    LLVMValueRef dim = cg_i64(c, p.gdim[g]), digit = LLVMBuildURem(c->b, rest, dim, "");
    if (!last) last = digit;
    rest = LLVMBuildUDiv(c->b, rest, dim, "");
    xo = LLVMBuildNSWAdd(c->b, xo, LLVMBuildNSWMul(c->b, digit, cg_i64(c, p.gx[g]), ""), "");
    yo = LLVMBuildNSWAdd(c->b, yo, LLVMBuildNSWMul(c->b, digit, cg_i64(c, p.gy[g]), ""), "");
  }
  if (!p.rem) {
    group(c, &p, n->op, p.K, x, xo, y, yo);
  } else { /* the last group along the jam axis has rem lanes */
    LLVMBasicBlockRef full = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "full");
    LLVMBasicBlockRef part = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "rem");
    LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "join");
    LLVMValueRef is_last = LLVMBuildICmp(c->b, LLVMIntEQ, last, cg_i64(c, p.gdim[p.ngroup - 1] - 1), "");
    LLVMBuildCondBr(c->b, is_last, part, full);
    LLVMPositionBuilderAtEnd(c->b, full);
    group(c, &p, n->op, p.K, x, xo, y, yo);
    LLVMBuildBr(c->b, join);
    LLVMPositionBuilderAtEnd(c->b, part);
    group(c, &p, n->op, p.rem, x, xo, y, yo);
    LLVMBuildBr(c->b, join);
    LLVMPositionBuilderAtEnd(c->b, join);
  }
  cg_ploop_end(c, &pl);
  return 0;
}
