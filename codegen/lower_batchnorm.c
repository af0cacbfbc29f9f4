/* lower_batchnorm.c: batchnorm (training: batch statistics), batchnorm_infer and the
 * two adjoints. x is [N,C] or [N,C,H,W], seen as [N,C,S] (S = H*W or 1); a loop over
 * channels c holds loops over (n, s), at = (n*C + c)*S + s. With batch statistics of
 * one process, channels go in tiles (dense [N,C]) or groups (S > 1) instead, each
 * channel's sums in the same order (see below). Every sum and the
 * normalisation run in double in the interpreter's order (two-pass biased variance),
 * so results match it bit for bit.
 * Sync batchnorm (i[0] = ranks > 1, data-parallel runs): the statistics of every
 * channel are computed first, their sums added across processes by
 * collective_allreduce (as floats, in the node's extra scratch: mean[C] and var[C]
 * doubles, then 2C floats for the transport), as kernels.c's channel_stats does; the
 * adjoint's sums of g and g*xhat likewise, between its two loops over channels.
 * The loops over channels are split over the runtime's threads (cg_ploop): each
 * channel's sums are one thread's, in the same order, so results do not change. */
#include "codegen/cg_internal.h"

typedef struct {
  int64_t N, C, S;
} nc_s;

static nc_s dims_of(ir_shape s) {
  nc_s d = {s.dim[0], s.dim[1], s.rank == 4 ? s.dim[2] * s.dim[3] : 1};
  return d;
}

/* the element offset of (nest.idx[0] = n, nest.idx[1] = s) in channel ch */
static LLVMValueRef at_of(cg_ctx *c, nc_s d, LLVMValueRef ch, const cg_nest *nest) {
  LLVMValueRef t = LLVMBuildNSWAdd(c->b, LLVMBuildNSWMul(c->b, nest->idx[0], cg_i64(c, d.C), ""), ch, "");
  return LLVMBuildNSWAdd(c->b, LLVMBuildNSWMul(c->b, t, cg_i64(c, d.S), ""), nest->idx[1], "");
}

/* mean and biased variance of channel ch (doubles), as kernels.c's batch_stats */
static void batch_stats(cg_ctx *c, nc_s d, LLVMValueRef x, LLVMValueRef ch, LLVMValueRef *mean,
                        LLVMValueRef *var) {
  int64_t dims[2] = {d.N, d.S};
  double M = (double)(d.N * d.S);
  LLVMValueRef sum = cg_var_f64(c, 0), sq = cg_var_f64(c, 0);
  cg_nest nest;
  cg_nest_begin(c, &nest, 2, dims);
  LLVMValueRef v = cg_ext(c, cg_ld(c, c->f32, x, at_of(c, d, ch, &nest)));
  LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, LLVMBuildLoad2(c->b, c->f64, sum, ""), v, ""), sum);
  cg_nest_end(c, &nest);
  *mean = LLVMBuildFDiv(c->b, LLVMBuildLoad2(c->b, c->f64, sum, ""), cg_f64c(c, M), "");
  cg_nest_begin(c, &nest, 2, dims);
  v = cg_ext(c, cg_ld(c, c->f32, x, at_of(c, d, ch, &nest)));
  LLVMValueRef dv = LLVMBuildFSub(c->b, v, *mean, "");
  LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, LLVMBuildLoad2(c->b, c->f64, sq, ""),
                                     LLVMBuildFMul(c->b, dv, dv, ""), ""), sq);
  cg_nest_end(c, &nest);
  *var = LLVMBuildFDiv(c->b, LLVMBuildLoad2(c->b, c->f64, sq, ""), cg_f64c(c, M), "");
}

/* Extra scratch of sync batchnorm and its adjoints: mean, var (C doubles each) and 2C
 * floats to send. */
int64_t cg_extra_batchnorm(const ir_func *f, const ir_node *n) {
  if (n->i[0] <= 1) return 0;
  return 24 * f->nodes[n->in[0]].shape.dim[1];
}

typedef struct {
  LLVMValueRef mean, var; /* double* [C] */
  LLVMValueRef send;      /* float* [2C] */
} synced;

static synced synced_bufs(cg_ctx *c, int64_t C) {
  LLVMValueRef d = cg_dptr(c, c->extra);
  synced s = {d, cg_gep(c, c->f64, d, cg_i64(c, C)),
              cg_fptr(c, cg_gep(c, c->f64, d, cg_i64(c, 2 * C)))};
  return s;
}

/* s.mean[c], s.var[c] of every channel over every process's batch (kernels.c's
 * channel_stats with ranks > 1): per channel a double sum rounded to float, added
 * across processes, divided by the global count; then the squared deviations. */
static void synced_stats(cg_ctx *c, nc_s d, int64_t ranks, LLVMValueRef x, synced s) {
  int64_t dims[2] = {d.N, d.S};
  LLVMValueRef M = cg_f64c(c, (double)(d.N * d.S * ranks));
  for (int pass = 0; pass < 2; pass++) {
    cg_loop lc;
    cg_loop_begin(c, &lc, cg_i64(c, d.C));
    LLVMValueRef mean = pass ? cg_ld(c, c->f64, s.mean, lc.iv) : NULL;
    LLVMValueRef acc = cg_var_f64(c, 0);
    cg_nest nest;
    cg_nest_begin(c, &nest, 2, dims);
    LLVMValueRef v = cg_ext(c, cg_ld(c, c->f32, x, at_of(c, d, lc.iv, &nest)));
    if (pass) {
      v = LLVMBuildFSub(c->b, v, mean, "");
      v = LLVMBuildFMul(c->b, v, v, "");
    }
    LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, LLVMBuildLoad2(c->b, c->f64, acc, ""), v, ""), acc);
    cg_nest_end(c, &nest);
    cg_st(c, s.send, lc.iv, cg_trunc(c, LLVMBuildLoad2(c->b, c->f64, acc, "")));
    cg_loop_end(c, &lc);
    cg_sum_across(c, s.send, d.C);
    cg_loop_begin(c, &lc, cg_i64(c, d.C));
    cg_st(c, pass ? s.var : s.mean, lc.iv,
          LLVMBuildFDiv(c->b, cg_ext(c, cg_ld(c, c->f32, s.send, lc.iv)), M, ""));
    cg_loop_end(c, &lc);
  }
}

/* 1 / sqrt(var + eps) */
static LLVMValueRef inv_std(cg_ctx *c, LLVMValueRef var, double eps) {
  return LLVMBuildFDiv(c->b, cg_f64c(c, 1),
                       cg_call_d(c, "sqrt", LLVMBuildFAdd(c->b, var, cg_f64c(c, eps), "")), "");
}

/* xhat = (x[at] - mean) * inv, in double */
static LLVMValueRef xhat_at(cg_ctx *c, LLVMValueRef x, LLVMValueRef at, LLVMValueRef mean,
                            LLVMValueRef inv) {
  return LLVMBuildFMul(c->b, LLVMBuildFSub(c->b, cg_ext(c, cg_ld(c, c->f32, x, at)), mean, ""),
                       inv, "");
}

/* y[at] = inv * (g - gmean - xhat * gxmean) with g = dy[at] * gamma: the input's
 * gradient, from the channel's mean(g) and mean(g * xhat) */
static void store_dx(cg_ctx *c, LLVMValueRef y, LLVMValueRef dy, LLVMValueRef x, LLVMValueRef at,
                     LLVMValueRef gamma, LLVMValueRef mean, LLVMValueRef inv, LLVMValueRef gmean,
                     LLVMValueRef gxmean) {
  LLVMValueRef g = LLVMBuildFMul(c->b, cg_ext(c, cg_ld(c, c->f32, dy, at)), gamma, "");
  LLVMValueRef r = LLVMBuildFSub(c->b, LLVMBuildFSub(c->b, g, gmean, ""),
                                 LLVMBuildFMul(c->b, xhat_at(c, x, at, mean, inv), gxmean, ""), "");
  cg_st(c, y, at, cg_trunc(c, LLVMBuildFMul(c->b, inv, r, "")));
}

/* ---- the dense layout [N,C] (S = 1), batch statistics of one process ----
 * A channel's elements lie C apart, so a loop per channel walks memory with stride C
 * and its double sum is one serial chain. Instead channels go in tiles of up to
 * DENSE_TILE: rows n are walked in order and every channel of the tile adds into its
 * own double in a stack array (contiguous, so the loop over the tile vectorises).
 * Each channel's sum still adds n = 0, 1, ... N-1 in order: results are those of the
 * per-channel loops (and the interpreter's) bit for bit, whatever the tiles or threads. */
enum { DENSE_TILE = 256 };

/* An array of DENSE_TILE doubles on the current function's stack. */
static LLVMValueRef tile_array(cg_ctx *c) {
  LLVMValueRef a = cg_entry_alloca(c, LLVMArrayType(c->f64, DENSE_TILE), "tile");
  return LLVMBuildBitCast(c->b, a, LLVMPointerType(c->f64, 0), "");
}

/* One tile: channels [c0, c0 + cn) of x [N,C]. */
typedef struct {
  nc_s d;
  LLVMValueRef c0, cn;
  cg_loop rows, lanes;
  LLVMValueRef j, at; /* inside a sweep: lane j, element (n, c0 + j) */
} tile;

static void lanes_begin(cg_ctx *c, tile *t) {
  cg_loop_begin(c, &t->lanes, t->cn);
  t->j = t->lanes.iv;
}

/* for n: for j: the builder is left in the body, t->at set */
static void sweep_begin(cg_ctx *c, tile *t) {
  cg_loop_begin(c, &t->rows, cg_i64(c, t->d.N));
  lanes_begin(c, t);
  t->at = LLVMBuildNSWAdd(c->b, LLVMBuildNSWMul(c->b, t->rows.iv, cg_i64(c, t->d.C), ""),
                          LLVMBuildNSWAdd(c->b, t->c0, t->j, ""), "");
}

static void sweep_end(cg_ctx *c, tile *t) {
  cg_loop_end(c, &t->lanes);
  cg_loop_end(c, &t->rows);
}

static void acc_add(cg_ctx *c, LLVMValueRef arr, LLVMValueRef j, LLVMValueRef v) {
  cg_st(c, arr, j, LLVMBuildFAdd(c->b, cg_ld(c, c->f64, arr, j), v, ""));
}

/* mean[j] and inv[j] = 1 / sqrt(var + eps) of the tile's channels, as batch_stats */
static void tile_stats(cg_ctx *c, tile *t, LLVMValueRef x, LLVMValueRef mean, LLVMValueRef inv,
                       double eps) {
  LLVMValueRef M = cg_f64c(c, (double)t->d.N);
  lanes_begin(c, t);
  cg_st(c, mean, t->j, cg_f64c(c, 0));
  cg_loop_end(c, &t->lanes);
  sweep_begin(c, t);
  acc_add(c, mean, t->j, cg_ext(c, cg_ld(c, c->f32, x, t->at)));
  sweep_end(c, t);
  lanes_begin(c, t);
  cg_st(c, mean, t->j, LLVMBuildFDiv(c->b, cg_ld(c, c->f64, mean, t->j), M, ""));
  cg_st(c, inv, t->j, cg_f64c(c, 0));
  cg_loop_end(c, &t->lanes);
  sweep_begin(c, t);
  LLVMValueRef dv = LLVMBuildFSub(c->b, cg_ext(c, cg_ld(c, c->f32, x, t->at)),
                                  cg_ld(c, c->f64, mean, t->j), "");
  acc_add(c, inv, t->j, LLVMBuildFMul(c->b, dv, dv, ""));
  sweep_end(c, t);
  lanes_begin(c, t);
  cg_st(c, inv, t->j, inv_std(c, LLVMBuildFDiv(c->b, cg_ld(c, c->f64, inv, t->j), M, ""), eps));
  cg_loop_end(c, &t->lanes);
}

/* Opens the loop over tiles (split over the runtime's threads) and sets t's c0, cn. */
static void tiles_begin(cg_ctx *c, cg_ploop *pl, tile *t, nc_s d, LLVMValueRef **used, int nused) {
  int64_t ntiles = (d.C + DENSE_TILE - 1) / DENSE_TILE;
  t->d = d;
  cg_ploop_begin(c, pl, ntiles, d.N * DENSE_TILE, used, nused);
  t->c0 = LLVMBuildNSWMul(c->b, pl->iv, cg_i64(c, DENSE_TILE), "");
  LLVMValueRef left = LLVMBuildNSWSub(c->b, cg_i64(c, d.C), t->c0, "");
  t->cn = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, left, cg_i64(c, DENSE_TILE), ""),
                          left, cg_i64(c, DENSE_TILE), "");
}

/* the channel of lane j */
static LLVMValueRef chan(cg_ctx *c, tile *t) { return LLVMBuildNSWAdd(c->b, t->c0, t->j, ""); }

/* batchnorm with batch statistics, x [N,C] */
static void dense_batchnorm(cg_ctx *c, nc_s d, double eps, LLVMValueRef x, LLVMValueRef gamma,
                            LLVMValueRef beta, LLVMValueRef y) {
  cg_ploop pl;
  tile t;
  LLVMValueRef *used[] = {&x, &gamma, &beta, &y};
  tiles_begin(c, &pl, &t, d, used, 4);
  LLVMValueRef mean = tile_array(c), inv = tile_array(c);
  tile_stats(c, &t, x, mean, inv, eps);
  sweep_begin(c, &t);
  LLVMValueRef ch = chan(c, &t);
  LLVMValueRef v = LLVMBuildFSub(c->b, cg_ext(c, cg_ld(c, c->f32, x, t.at)),
                                 cg_ld(c, c->f64, mean, t.j), "");
  v = LLVMBuildFMul(c->b, LLVMBuildFMul(c->b, v, cg_ld(c, c->f64, inv, t.j), ""),
                    cg_ext(c, cg_ld(c, c->f32, gamma, ch)), "");
  cg_st(c, y, t.at, cg_trunc(c, LLVMBuildFAdd(c->b, v, cg_ext(c, cg_ld(c, c->f32, beta, ch)), "")));
  sweep_end(c, &t);
  cg_ploop_end(c, &pl);
}

/* batchnorm_grad (gamma != NULL: dx [N,C]) or batchnorm_grad_gamma (dgamma [C]) */
static void dense_grad(cg_ctx *c, nc_s d, double eps, LLVMValueRef x, LLVMValueRef gamma,
                       LLVMValueRef dy, LLVMValueRef y) {
  bool gamma_only = gamma == NULL;
  LLVMValueRef M = cg_f64c(c, (double)d.N);
  cg_ploop pl;
  tile t;
  LLVMValueRef *used[] = {&x, &gamma, &dy, &y};
  tiles_begin(c, &pl, &t, d, used, 4);
  LLVMValueRef mean = tile_array(c), inv = tile_array(c);
  LLVMValueRef gsum = tile_array(c), gxsum = gamma_only ? NULL : tile_array(c);
  tile_stats(c, &t, x, mean, inv, eps);
  lanes_begin(c, &t);
  cg_st(c, gsum, t.j, cg_f64c(c, 0));
  if (!gamma_only) cg_st(c, gxsum, t.j, cg_f64c(c, 0));
  cg_loop_end(c, &t.lanes);
  sweep_begin(c, &t);
  LLVMValueRef dyv = cg_ext(c, cg_ld(c, c->f32, dy, t.at));
  LLVMValueRef xhat = xhat_at(c, x, t.at, cg_ld(c, c->f64, mean, t.j), cg_ld(c, c->f64, inv, t.j));
  if (gamma_only) {
    acc_add(c, gsum, t.j, LLVMBuildFMul(c->b, dyv, xhat, ""));
  } else {
    LLVMValueRef g = LLVMBuildFMul(c->b, dyv, cg_ext(c, cg_ld(c, c->f32, gamma, chan(c, &t))), "");
    acc_add(c, gsum, t.j, g);
    acc_add(c, gxsum, t.j, LLVMBuildFMul(c->b, g, xhat, ""));
  }
  sweep_end(c, &t);
  lanes_begin(c, &t);
  if (gamma_only) {
    cg_st(c, y, chan(c, &t), cg_trunc(c, cg_ld(c, c->f64, gsum, t.j)));
  } else {
    cg_st(c, gsum, t.j, LLVMBuildFDiv(c->b, cg_ld(c, c->f64, gsum, t.j), M, ""));
    cg_st(c, gxsum, t.j, LLVMBuildFDiv(c->b, cg_ld(c, c->f64, gxsum, t.j), M, ""));
  }
  cg_loop_end(c, &t.lanes);
  if (!gamma_only) {
    sweep_begin(c, &t);
    store_dx(c, y, dy, x, t.at, cg_ext(c, cg_ld(c, c->f32, gamma, chan(c, &t))),
             cg_ld(c, c->f64, mean, t.j), cg_ld(c, c->f64, inv, t.j),
             cg_ld(c, c->f64, gsum, t.j), cg_ld(c, c->f64, gxsum, t.j));
    sweep_end(c, &t);
  }
  cg_ploop_end(c, &pl);
}

/* ---- [N,C,H,W] (S > 1), batch statistics of one process ----
 * A channel's planes are contiguous, but its double sum is one serial chain of adds
 * (latency-bound). Channels go in groups of K (8, 4 or 2, dividing C) whose K chains
 * are interleaved in one walk over (n, s): independent adds overlap, and each channel
 * still adds its elements in the order (n, s), so results are bit for bit those of
 * the per-channel loops. The K sums are one <K x double> vector built from K scalar
 * loads (left to the SLP vectoriser, they became masked gathers, slower than the
 * per-channel loops on this AMD EPYC). Per-channel values go to stack arrays of K doubles, and the
 * elementwise passes (y, dx) are a loop over the group's channels around (n, s). */
enum { GROUP_MAX = 8 };

static int64_t group_of(int64_t C) {
  for (int64_t k = GROUP_MAX; k > 1; k /= 2)
    if (C % k == 0) return k;
  return 1;
}

static LLVMValueRef group_array(cg_ctx *c) {
  LLVMValueRef a = cg_entry_alloca(c, LLVMArrayType(c->f64, GROUP_MAX), "group");
  return LLVMBuildBitCast(c->b, a, LLVMPointerType(c->f64, 0), "");
}

/* A zero vector of type t in an entry-block alloca (promoted to registers). */
static LLVMValueRef vec_var(cg_ctx *c, LLVMTypeRef t) {
  LLVMValueRef a = cg_entry_alloca(c, t, "vacc");
  LLVMBuildStore(c->b, LLVMConstNull(t), a);
  return a;
}

/* K doubles of a group array as one vector (the array is only 8-byte aligned) */
static LLVMValueRef vec_ld(cg_ctx *c, LLVMTypeRef vd, LLVMValueRef arr) {
  LLVMValueRef l = LLVMBuildLoad2(c->b, vd, LLVMBuildBitCast(c->b, arr, LLVMPointerType(vd, 0), ""), "");
  LLVMSetAlignment(l, 8);
  return l;
}

static void vec_st(cg_ctx *c, LLVMValueRef arr, LLVMValueRef v) {
  LLVMValueRef s = LLVMBuildStore(c->b, v, LLVMBuildBitCast(c->b, arr, LLVMPointerType(LLVMTypeOf(v), 0), ""));
  LLVMSetAlignment(s, 8);
}

typedef enum { SUM_X, SUM_SQ, SUM_GRAD } group_sum;

/* One interleaved walk over (n, s) of the K channels from c0: per channel k,
 *   SUM_X: a[k] = sum x;  SUM_SQ: a[k] = sum (x - mean[k])^2;
 *   SUM_GRAD: xhat = (x - mean[k]) * inv[k], with gamma: g = dy*gamma[c0+k],
 *   a[k] = sum g, b[k] = sum g*xhat; without: a[k] = sum dy*xhat. */
static void group_sums(cg_ctx *c, nc_s d, int64_t K, LLVMValueRef c0, group_sum what,
                       LLVMValueRef x, LLVMValueRef dy, LLVMValueRef gamma, LLVMValueRef mean,
                       LLVMValueRef inv, LLVMValueRef a, LLVMValueRef b) {
  LLVMTypeRef vd = LLVMVectorType(c->f64, (unsigned)K), vf = LLVMVectorType(c->f32, (unsigned)K);
  LLVMValueRef acc = vec_var(c, vd), acc2 = vec_var(c, vd);
  LLVMValueRef mv = what == SUM_X ? NULL : vec_ld(c, vd, mean);
  LLVMValueRef iv = what == SUM_GRAD ? vec_ld(c, vd, inv) : NULL;
  LLVMValueRef gv = NULL;
  if (what == SUM_GRAD && gamma) {
    gv = LLVMGetUndef(vf);
    for (int64_t k = 0; k < K; k++)
      gv = LLVMBuildInsertElement(
          c->b, gv, cg_ld(c, c->f32, gamma, LLVMBuildNSWAdd(c->b, c0, cg_i64(c, k), "")),
          cg_i64(c, k), "");
    gv = LLVMBuildFPExt(c->b, gv, vd, "");
  }
  int64_t dims[2] = {d.N, d.S};
  cg_nest nest;
  cg_nest_begin(c, &nest, 2, dims);
  LLVMValueRef base = at_of(c, d, c0, &nest);
  LLVMValueRef xv = LLVMGetUndef(vf), dyv = LLVMGetUndef(vf);
  for (int64_t k = 0; k < K; k++) { /* scalar loads: a gather is slower here */
    LLVMValueRef at = LLVMBuildNSWAdd(c->b, base, cg_i64(c, k * d.S), "");
    xv = LLVMBuildInsertElement(c->b, xv, cg_ld(c, c->f32, x, at), cg_i64(c, k), "");
    if (what == SUM_GRAD)
      dyv = LLVMBuildInsertElement(c->b, dyv, cg_ld(c, c->f32, dy, at), cg_i64(c, k), "");
  }
  LLVMValueRef v = LLVMBuildFPExt(c->b, xv, vd, ""), t, t2 = NULL;
  if (what == SUM_X) {
    t = v;
  } else if (what == SUM_SQ) {
    LLVMValueRef dv = LLVMBuildFSub(c->b, v, mv, "");
    t = LLVMBuildFMul(c->b, dv, dv, "");
  } else {
    LLVMValueRef dd = LLVMBuildFPExt(c->b, dyv, vd, "");
    LLVMValueRef xhat = LLVMBuildFMul(c->b, LLVMBuildFSub(c->b, v, mv, ""), iv, "");
    if (gamma) {
      t = LLVMBuildFMul(c->b, dd, gv, "");
      t2 = LLVMBuildFMul(c->b, t, xhat, "");
    } else {
      t = LLVMBuildFMul(c->b, dd, xhat, "");
    }
  }
  LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, LLVMBuildLoad2(c->b, vd, acc, ""), t, ""), acc);
  if (t2)
    LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, LLVMBuildLoad2(c->b, vd, acc2, ""), t2, ""), acc2);
  cg_nest_end(c, &nest);
  vec_st(c, a, LLVMBuildLoad2(c->b, vd, acc, ""));
  if (what == SUM_GRAD && gamma) vec_st(c, b, LLVMBuildLoad2(c->b, vd, acc2, ""));
}

/* mean[k], inv[k] of the group's channels, as batch_stats */
static void group_stats(cg_ctx *c, nc_s d, int64_t K, LLVMValueRef c0, LLVMValueRef x,
                        LLVMValueRef mean, LLVMValueRef inv, double eps) {
  LLVMValueRef M = cg_f64c(c, (double)(d.N * d.S));
  group_sums(c, d, K, c0, SUM_X, x, NULL, NULL, NULL, NULL, mean, NULL);
  for (int64_t k = 0; k < K; k++)
    cg_st(c, mean, cg_i64(c, k), LLVMBuildFDiv(c->b, cg_ld(c, c->f64, mean, cg_i64(c, k)), M, ""));
  group_sums(c, d, K, c0, SUM_SQ, x, NULL, NULL, mean, NULL, inv, NULL);
  for (int64_t k = 0; k < K; k++)
    cg_st(c, inv, cg_i64(c, k),
          inv_std(c, LLVMBuildFDiv(c->b, cg_ld(c, c->f64, inv, cg_i64(c, k)), M, ""), eps));
}

/* batchnorm with batch statistics, x [N,C,H,W] */
static void grouped_batchnorm(cg_ctx *c, nc_s d, int64_t K, double eps, LLVMValueRef x,
                              LLVMValueRef gamma, LLVMValueRef beta, LLVMValueRef y) {
  cg_ploop pl;
  LLVMValueRef *used[] = {&x, &gamma, &beta, &y};
  cg_ploop_begin(c, &pl, d.C / K, d.N * d.S * K, used, 4);
  LLVMValueRef c0 = LLVMBuildNSWMul(c->b, pl.iv, cg_i64(c, K), "");
  LLVMValueRef mean = group_array(c), inv = group_array(c);
  group_stats(c, d, K, c0, x, mean, inv, eps);
  cg_loop lk;
  cg_loop_begin(c, &lk, cg_i64(c, K));
  LLVMValueRef ch = LLVMBuildNSWAdd(c->b, c0, lk.iv, "");
  LLVMValueRef m = cg_ld(c, c->f64, mean, lk.iv), iv = cg_ld(c, c->f64, inv, lk.iv);
  LLVMValueRef g = cg_ext(c, cg_ld(c, c->f32, gamma, ch));
  LLVMValueRef bt = cg_ext(c, cg_ld(c, c->f32, beta, ch));
  int64_t dims[2] = {d.N, d.S};
  cg_nest nest;
  cg_nest_begin(c, &nest, 2, dims);
  LLVMValueRef at = at_of(c, d, ch, &nest);
  LLVMValueRef v = LLVMBuildFSub(c->b, cg_ext(c, cg_ld(c, c->f32, x, at)), m, "");
  v = LLVMBuildFMul(c->b, LLVMBuildFMul(c->b, v, iv, ""), g, "");
  cg_st(c, y, at, cg_trunc(c, LLVMBuildFAdd(c->b, v, bt, "")));
  cg_nest_end(c, &nest);
  cg_loop_end(c, &lk);
  cg_ploop_end(c, &pl);
}

/* batchnorm_grad (gamma != NULL: dx) or batchnorm_grad_gamma (dgamma [C]), x [N,C,H,W] */
static void grouped_grad(cg_ctx *c, nc_s d, int64_t K, double eps, LLVMValueRef x,
                         LLVMValueRef gamma, LLVMValueRef dy, LLVMValueRef y) {
  LLVMValueRef M = cg_f64c(c, (double)(d.N * d.S));
  cg_ploop pl;
  LLVMValueRef *used[] = {&x, &gamma, &dy, &y};
  cg_ploop_begin(c, &pl, d.C / K, d.N * d.S * K, used, 4);
  LLVMValueRef c0 = LLVMBuildNSWMul(c->b, pl.iv, cg_i64(c, K), "");
  LLVMValueRef mean = group_array(c), inv = group_array(c);
  LLVMValueRef gsum = group_array(c), gxsum = group_array(c);
  group_stats(c, d, K, c0, x, mean, inv, eps);
  group_sums(c, d, K, c0, SUM_GRAD, x, dy, gamma, mean, inv, gsum, gxsum);
  if (!gamma) {
    for (int64_t k = 0; k < K; k++)
      cg_st(c, y, LLVMBuildNSWAdd(c->b, c0, cg_i64(c, k), ""),
            cg_trunc(c, cg_ld(c, c->f64, gsum, cg_i64(c, k))));
    cg_ploop_end(c, &pl);
    return;
  }
  cg_loop lk;
  cg_loop_begin(c, &lk, cg_i64(c, K));
  LLVMValueRef ch = LLVMBuildNSWAdd(c->b, c0, lk.iv, "");
  LLVMValueRef m = cg_ld(c, c->f64, mean, lk.iv), iv = cg_ld(c, c->f64, inv, lk.iv);
  LLVMValueRef gm = cg_ext(c, cg_ld(c, c->f32, gamma, ch));
  LLVMValueRef gmean = LLVMBuildFDiv(c->b, cg_ld(c, c->f64, gsum, lk.iv), M, "");
  LLVMValueRef gxmean = LLVMBuildFDiv(c->b, cg_ld(c, c->f64, gxsum, lk.iv), M, "");
  int64_t dims[2] = {d.N, d.S};
  cg_nest nest;
  cg_nest_begin(c, &nest, 2, dims);
  store_dx(c, y, dy, x, at_of(c, d, ch, &nest), gm, m, iv, gmean, gxmean);
  cg_nest_end(c, &nest);
  cg_loop_end(c, &lk);
  cg_ploop_end(c, &pl);
}

/* y = (x - mean[c]) * inv * gamma[c] + beta[c], in double */
int cg_lower_batchnorm(cg_ctx *c, int id, const ir_node *n, LLVMValueRef const *in,
                       LLVMValueRef out) {
  (void)id;
  nc_s d = dims_of(n->shape);
  int64_t dims[2] = {d.N, d.S};
  LLVMValueRef x = cg_fptr(c, in[0]), gamma = cg_fptr(c, in[1]), beta = cg_fptr(c, in[2]);
  LLVMValueRef y = cg_fptr(c, out);
  bool sync = n->op == IR_OP_BATCHNORM && n->i[0] > 1;
  if (n->op == IR_OP_BATCHNORM && !sync && d.S == 1) {
    dense_batchnorm(c, d, n->f[0], x, gamma, beta, y);
    return 0;
  }
  if (n->op == IR_OP_BATCHNORM && !sync && group_of(d.C) > 1) {
    grouped_batchnorm(c, d, group_of(d.C), n->f[0], x, gamma, beta, y);
    return 0;
  }
  synced s = {0};
  if (sync) {
    s = synced_bufs(c, d.C);
    synced_stats(c, d, n->i[0], x, s);
  }
  bool infer = n->op == IR_OP_BATCHNORM_INFER;
  LLVMValueRef rmean = infer ? cg_fptr(c, in[3]) : NULL, rvar = infer ? cg_fptr(c, in[4]) : NULL;
  cg_ploop lc; /* channels are independent: split over the runtime's threads */
  LLVMValueRef *used[] = {&x, &gamma, &beta, &y, &rmean, &rvar, &s.mean, &s.var};
  cg_ploop_begin(c, &lc, d.C, d.N * d.S, used, 8);
  LLVMValueRef mean, var;
  if (infer) {
    mean = cg_ext(c, cg_ld(c, c->f32, rmean, lc.iv));
    var = cg_ext(c, cg_ld(c, c->f32, rvar, lc.iv));
  } else if (sync) {
    mean = cg_ld(c, c->f64, s.mean, lc.iv);
    var = cg_ld(c, c->f64, s.var, lc.iv);
  } else {
    batch_stats(c, d, x, lc.iv, &mean, &var);
  }
  LLVMValueRef inv = inv_std(c, var, n->f[0]);
  LLVMValueRef g = cg_ext(c, cg_ld(c, c->f32, gamma, lc.iv));
  LLVMValueRef bt = cg_ext(c, cg_ld(c, c->f32, beta, lc.iv));
  cg_nest nest;
  cg_nest_begin(c, &nest, 2, dims);
  LLVMValueRef at = at_of(c, d, lc.iv, &nest);
  LLVMValueRef v = LLVMBuildFSub(c->b, cg_ext(c, cg_ld(c, c->f32, x, at)), mean, "");
  v = LLVMBuildFMul(c->b, LLVMBuildFMul(c->b, v, inv, ""), g, "");
  cg_st(c, y, at, cg_trunc(c, LLVMBuildFAdd(c->b, v, bt, "")));
  cg_nest_end(c, &nest);
  cg_ploop_end(c, &lc);
  return 0;
}

/* batchnorm_grad (x, gamma, dy -> dx) and batchnorm_grad_gamma (x, dy -> [C]):
 *   xhat = (x - mean)*inv, g = dy*gamma[c]
 *   dx = inv * (g - mean(g) - xhat * mean(g * xhat)),  dgamma = sum dy * xhat */
int cg_lower_batchnorm_grad(cg_ctx *c, int id, const ir_node *n, LLVMValueRef const *in,
                            LLVMValueRef out) {
  (void)id;
  bool gamma_only = n->op == IR_OP_BATCHNORM_GRAD_GAMMA;
  nc_s d = dims_of(c->f->nodes[n->in[0]].shape);
  int64_t dims[2] = {d.N, d.S}, ranks = n->i[0] > 1 ? n->i[0] : 1;
  double M = (double)(d.N * d.S * ranks);
  LLVMValueRef x = cg_fptr(c, in[0]), y = cg_fptr(c, out);
  LLVMValueRef gamma = gamma_only ? NULL : cg_fptr(c, in[1]);
  LLVMValueRef dy = cg_fptr(c, in[gamma_only ? 1 : 2]);
  if (ranks <= 1 && d.S == 1) {
    dense_grad(c, d, n->f[0], x, gamma, dy, y);
    return 0;
  }
  if (ranks <= 1 && group_of(d.C) > 1) {
    grouped_grad(c, d, group_of(d.C), n->f[0], x, gamma, dy, y);
    return 0;
  }
  synced s = {0};
  if (ranks > 1) {
    s = synced_bufs(c, d.C);
    synced_stats(c, d, ranks, x, s);
  }
  cg_ploop lc; /* channels are independent: split over the runtime's threads */
  LLVMValueRef *used[] = {&x, &y, &gamma, &dy, &s.mean, &s.var, &s.send};
  cg_ploop_begin(c, &lc, d.C, d.N * d.S, used, 7);
  LLVMValueRef mean, var;
  if (ranks > 1) {
    mean = cg_ld(c, c->f64, s.mean, lc.iv);
    var = cg_ld(c, c->f64, s.var, lc.iv);
  } else {
    batch_stats(c, d, x, lc.iv, &mean, &var);
  }
  LLVMValueRef inv = inv_std(c, var, n->f[0]);
  LLVMValueRef gm = gamma_only ? NULL : cg_ext(c, cg_ld(c, c->f32, gamma, lc.iv));
  LLVMValueRef gsum = cg_var_f64(c, 0), gxsum = cg_var_f64(c, 0);
  cg_nest nest;
  cg_nest_begin(c, &nest, 2, dims);
  LLVMValueRef at = at_of(c, d, lc.iv, &nest);
  LLVMValueRef dyv = cg_ext(c, cg_ld(c, c->f32, dy, at));
  LLVMValueRef xhat = xhat_at(c, x, at, mean, inv);
  if (gamma_only) {
    LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, LLVMBuildLoad2(c->b, c->f64, gsum, ""),
                                       LLVMBuildFMul(c->b, dyv, xhat, ""), ""), gsum);
  } else {
    LLVMValueRef g = LLVMBuildFMul(c->b, dyv, gm, "");
    LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, LLVMBuildLoad2(c->b, c->f64, gsum, ""), g, ""), gsum);
    LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, LLVMBuildLoad2(c->b, c->f64, gxsum, ""),
                                       LLVMBuildFMul(c->b, g, xhat, ""), ""), gxsum);
  }
  cg_nest_end(c, &nest);
  if (gamma_only) {
    cg_st(c, y, lc.iv, cg_trunc(c, LLVMBuildLoad2(c->b, c->f64, gsum, "")));
  } else if (ranks > 1) { /* the sums go out first; dx in a second loop below */
    cg_st(c, s.send, lc.iv, cg_trunc(c, LLVMBuildLoad2(c->b, c->f64, gsum, "")));
    cg_st(c, s.send, LLVMBuildNSWAdd(c->b, lc.iv, cg_i64(c, d.C), ""),
          cg_trunc(c, LLVMBuildLoad2(c->b, c->f64, gxsum, "")));
  } else {
    LLVMValueRef gmean = LLVMBuildFDiv(c->b, LLVMBuildLoad2(c->b, c->f64, gsum, ""), cg_f64c(c, M), "");
    LLVMValueRef gxmean = LLVMBuildFDiv(c->b, LLVMBuildLoad2(c->b, c->f64, gxsum, ""), cg_f64c(c, M), "");
    cg_nest_begin(c, &nest, 2, dims);
    store_dx(c, y, dy, x, at_of(c, d, lc.iv, &nest), gm, mean, inv, gmean, gxmean);
    cg_nest_end(c, &nest);
  }
  cg_ploop_end(c, &lc);
  if (gamma_only || ranks <= 1) return 0;
  /* sync: dx from the sums of every process */
  cg_sum_across(c, s.send, 2 * d.C);
  cg_ploop_begin(c, &lc, d.C, d.N * d.S, used, 7);
  mean = cg_ld(c, c->f64, s.mean, lc.iv);
  inv = inv_std(c, cg_ld(c, c->f64, s.var, lc.iv), n->f[0]);
  gm = cg_ext(c, cg_ld(c, c->f32, gamma, lc.iv));
  LLVMValueRef gmean = LLVMBuildFDiv(c->b, cg_ext(c, cg_ld(c, c->f32, s.send, lc.iv)),
                                     cg_f64c(c, M), "");
  LLVMValueRef gxmean = LLVMBuildFDiv(
      c->b, cg_ext(c, cg_ld(c, c->f32, s.send, LLVMBuildNSWAdd(c->b, lc.iv, cg_i64(c, d.C), ""))),
      cg_f64c(c, M), "");
  cg_nest_begin(c, &nest, 2, dims);
  store_dx(c, y, dy, x, at_of(c, d, lc.iv, &nest), gm, mean, inv, gmean, gxmean);
  cg_nest_end(c, &nest);
  cg_ploop_end(c, &lc);
  return 0;
}
