/* lower_conv.c: conv, deconv and conv's two adjoints as im2col/col2im loops around
 * cblas_sgemm, over groups of G images of the batch at a time.
 *
 * A column matrix col[C*k*k, G*Hc*Wc] pairs every kernel tap (c,ky,kx) with every
 * position (cy,cx) of a grid of Hc x Wc windows over each image [C,H,W] of a group:
 *   col[(c*k+ky)*k+kx, j*Hc*Wc + cy*Wc+cx] = img_j[c, cy*s-p+ky, cx*s-p+kx]   (0 outside)
 * im2col fills image j's columns from the image; col2im scatters them back, adding
 * taps that land on the same pixel. With them (per group of images b..b+G-1, O/C as
 * in ir.h, T(v) the group's [G,R,P] values regrouped as [R, G*P]):
 *   conv        T(y)         = w[O,Ckk]      x col(x)                   (Hc = Ho)
 *   conv_grad_x dx_j         = col2im_j(w^T[Ckk,O] x T(dy))             (Hc = Ho)
 *   conv_grad_w dw[O,Ckk]   += T(dy)[O,G*HoWo] x col(x)^T               (Hc = Ho)
 *   deconv      y_j          = col2im_j(w^T[Okk,C] x T(x)) onto Ho x Wo (Hc = H)
 * One GEMM per group instead of one per image: OpenBLAS packs the weights once per
 * group, and its N dimension (G*Hc*Wc) is large enough for its kernels (one image's
 * 7x7 grid gives N = 49). G is the largest divisor of the batch whose columns fit
 * GROUP_BYTES, so the scratch stays bounded; G = 1 needs no regrouping. The node's
 * extra scratch holds the columns, then the regrouped values.
 * im2col, col2im and the regrouping run over a group's images on the runtime's
 * threads (cg_ploop; col2im adds each image's taps only into that image, in the same
 * order), and the GEMMs split themselves (runtime/gemm.c). */
#include "codegen/cg_internal.h"


typedef struct {
  int64_t C, H, W; /* image */
  int64_t k, s, p;
  int64_t Hc, Wc; /* window grid */
  int64_t ld;     /* row stride of the column matrix: G*Hc*Wc */
} geom;

enum { GROUP_BYTES = 4 << 20 }; /* the columns of one group of images */

/* The images per group: the largest divisor of N whose columns (per_image floats
 * each) fit GROUP_BYTES; at least 1. */
static int64_t group_size(int64_t N, int64_t per_image) {
  int64_t g = N;
  while (g > 1 && (N % g || g * per_image * 4 > GROUP_BYTES)) g--;
  return g > 0 ? g : 1;
}

/* The windows i in [0, n) whose tap t lands inside an image side of `size` pixels,
 * 0 <= i*s - p + t < size: they are [*lo, *hi), 0 <= lo <= hi <= n (an arithmetic
 * progression meets an interval in one run). */
static void inside_windows(int64_t t, int64_t s, int64_t p, int64_t size, int64_t n,
                           int64_t *lo, int64_t *hi) {
  int64_t i = 0;
  while (i < n && i * s - p + t < 0) i++;
  *lo = i;
  while (i < n && i * s - p + t < size) i++;
  *hi = i;
}

static LLVMValueRef addc(cg_ctx *c, LLVMValueRef v, int64_t k) {
  return k ? LLVMBuildNSWAdd(c->b, v, cg_i64(c, k), "") : v;
}

static LLVMValueRef mulc(cg_ctx *c, LLVMValueRef v, int64_t k) {
  return k == 1 ? v : LLVMBuildNSWMul(c->b, v, cg_i64(c, k), "");
}

/* im2col and col2im run over channels cc and kernel rows ky in loops, and unroll the
 * kernel columns kx here (k is a small constant): each tap's range of window columns
 * that read inside the image is then a constant, so that the copy or add needs no
 * check per element. The inside window rows [ylo, yhi) of kernel row ky are values
 * (selects among the k rows' constants). */
typedef struct {
  LLVMValueRef ylo, yhi;
  LLVMValueRef row; /* the offset of tap (ky, 0)'s row of columns; tap kx's is kx*ld on */
  LLVMValueRef src; /* the image offset of (cc, ky-p, -p); window row cy reads s*cy rows on */
} kernel_row;

static kernel_row kernel_row_at(cg_ctx *c, const geom *g, LLVMValueRef cc, LLVMValueRef ky) {
  kernel_row kr = {NULL, NULL, NULL, NULL};
  for (int64_t t = g->k - 1; t >= 0; t--) {
    int64_t lo, hi;
    inside_windows(t, g->s, g->p, g->H, g->Hc, &lo, &hi);
    LLVMValueRef is = LLVMBuildICmp(c->b, LLVMIntEQ, ky, cg_i64(c, t), "");
    kr.ylo = kr.ylo ? LLVMBuildSelect(c->b, is, cg_i64(c, lo), kr.ylo, "") : cg_i64(c, lo);
    kr.yhi = kr.yhi ? LLVMBuildSelect(c->b, is, cg_i64(c, hi), kr.yhi, "") : cg_i64(c, hi);
  }
  kr.row = mulc(c, LLVMBuildNSWAdd(c->b, mulc(c, cc, g->k), ky, ""), g->k * g->ld);
  LLVMValueRef src = LLVMBuildNSWAdd(c->b, mulc(c, cc, g->H * g->W),
                                     mulc(c, addc(c, ky, -g->p), g->W), "");
  kr.src = addc(c, src, -g->p);
  return kr;
}

/* Tap (ky, kx)'s window row cy: its offset in the columns and the image offset its
 * window column 0 would read. */
static LLVMValueRef tap_dst(cg_ctx *c, const geom *g, const kernel_row *kr, int64_t kx,
                            LLVMValueRef cy) {
  return LLVMBuildNSWAdd(c->b, addc(c, kr->row, kx * g->ld), mulc(c, cy, g->Wc), "");
}

static LLVMValueRef tap_src(cg_ctx *c, const geom *g, const kernel_row *kr, int64_t kx,
                            LLVMValueRef cy) {
  return LLVMBuildNSWAdd(c->b, addc(c, kr->src, kx), mulc(c, cy, g->s * g->W), "");
}

/* p[off .. off+n) = 0 for a constant n: LLVM makes it a memset of known length, which
 * it expands into a few stores (a run of unknown length would be a call). */
static void zero_run(cg_ctx *c, LLVMValueRef p, LLVMValueRef off, int64_t n) {
  if (n <= 0) return;
  cg_loop l;
  cg_loop_begin(c, &l, cg_i64(c, n));
  cg_st(c, p, LLVMBuildNSWAdd(c->b, off, l.iv, ""), cg_f32c(c, 0));
  cg_loop_end(c, &l);
}

/* col points at the image's first column (row stride g->ld). A window row reads
 * either padding only (zero) or one image row: the tap's inside columns copied, zero
 * around them. */
static void im2col(cg_ctx *c, const geom *g, LLVMValueRef img, LLVMValueRef col) {
  int64_t dims[2] = {g->C, g->k};
  cg_nest nest;
  cg_nest_begin(c, &nest, 2, dims);
  kernel_row kr = kernel_row_at(c, g, nest.idx[0], nest.idx[1]);
  LLVMValueRef rows = LLVMBuildNSWSub(c->b, kr.yhi, kr.ylo, "");
  for (int64_t kx = 0; kx < g->k; kx++) {
    int64_t lo, hi;
    inside_windows(kx, g->s, g->p, g->W, g->Wc, &lo, &hi);
    cg_loop ly;
    cg_loop_begin(c, &ly, cg_i64(c, g->Hc));
    LLVMValueRef cy = ly.iv, dst = tap_dst(c, g, &kr, kx, cy);
    /* a branch per row rather than three loops over the rows: the zero rows of a
     * loop of unknown length would become a memset call */
    LLVMValueRef inside = LLVMBuildICmp(c->b, LLVMIntULT, LLVMBuildNSWSub(c->b, cy, kr.ylo, ""),
                                        rows, ""); /* unsigned: cy < ylo wraps */
    LLVMBasicBlockRef copy = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "im2col_copy");
    LLVMBasicBlockRef pad = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "im2col_pad");
    LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "im2col_next");
    LLVMBuildCondBr(c->b, inside, copy, pad);
    LLVMPositionBuilderAtEnd(c->b, pad);
    zero_run(c, col, dst, g->Wc);
    LLVMBuildBr(c->b, next);
    LLVMPositionBuilderAtEnd(c->b, copy);
    zero_run(c, col, dst, lo);
    if (hi > lo) {
      LLVMValueRef src = tap_src(c, g, &kr, kx, cy);
      cg_loop lx;
      cg_loop_begin(c, &lx, cg_i64(c, hi - lo));
      lx.unroll = true; /* a short strided copy: 1.2x slower as a loop */
      LLVMValueRef cx = addc(c, lx.iv, lo);
      LLVMValueRef v = cg_ld(c, c->f32, img, LLVMBuildNSWAdd(c->b, src, mulc(c, cx, g->s), ""));
      cg_st(c, col, LLVMBuildNSWAdd(c->b, dst, cx, ""), v);
      cg_loop_end(c, &lx);
    }
    zero_run(c, col, addc(c, dst, hi), g->Wc - hi);
    LLVMBuildBr(c->b, next);
    LLVMPositionBuilderAtEnd(c->b, next);
    cg_loop_end(c, &ly);
  }
  cg_nest_end(c, &nest);
}

/* A vector of n floats at p[off] (4-byte aligned), or its store. */
static LLVMValueRef vec_ptr(cg_ctx *c, LLVMValueRef p, LLVMValueRef off, int64_t n) {
  LLVMTypeRef vt = LLVMVectorType(c->f32, (unsigned)n);
  return LLVMBuildBitCast(c->b, cg_gep(c, c->f32, p, off), LLVMPointerType(vt, 0), "");
}

static LLVMValueRef vec_ld(cg_ctx *c, LLVMValueRef p, LLVMValueRef off, int64_t n) {
  LLVMValueRef v = LLVMBuildLoad2(c->b, LLVMVectorType(c->f32, (unsigned)n),
                                  vec_ptr(c, p, off, n), "");
  LLVMSetAlignment(v, 4);
  return v;
}

static void vec_st(cg_ctx *c, LLVMValueRef p, LLVMValueRef off, LLVMValueRef v, int64_t n) {
  LLVMSetAlignment(LLVMBuildStore(c->b, v, vec_ptr(c, p, off, n)), 4);
}

enum { COL2IM_LANES = 16 }; /* image pixels per vector of col2im's row adds */

/* img (zeroed here) += the columns. Image row iy of channel cc receives, in the
 * order (ky, kx), what the inside window rows cy = (iy + p - ky)/s of the taps put
 * there: per (cc, ky, cy) the row is loaded in vectors of COL2IM_LANES pixels, each
 * tap kx's window row spread onto its pixels (cx*s - p + kx) by a constant shuffle
 * with zeros on the others and added, and the row stored. Every pixel thus gets its
 * taps in the order (c, ky, kx) of the scalar loop over (c, ky, kx, cy, cx), plus
 * some +0.0: x + 0.0 == x bit for bit for every x but -0.0, and a pixel never holds
 * -0.0 (it starts at +0.0, and rounding to nearest, the default, gives a sum -0.0
 * only when both terms are). */
static void col2im(cg_ctx *c, const geom *g, LLVMValueRef col, LLVMValueRef img) {
  cg_loop l;
  cg_loop_begin(c, &l, cg_i64(c, g->C * g->H * g->W));
  cg_st(c, img, l.iv, cg_f32c(c, 0));
  cg_loop_end(c, &l);
  int64_t dims[2] = {g->C, g->k};
  cg_nest nest;
  cg_nest_begin(c, &nest, 2, dims);
  kernel_row kr = kernel_row_at(c, g, nest.idx[0], nest.idx[1]);
  cg_loop ly;
  cg_loop_begin(c, &ly, LLVMBuildNSWSub(c->b, kr.yhi, kr.ylo, ""));
  LLVMValueRef cy = LLVMBuildNSWAdd(c->b, kr.ylo, ly.iv, "");
  LLVMValueRef dst = tap_dst(c, g, &kr, 0, cy), src = tap_src(c, g, &kr, 0, cy);
  LLVMValueRef irow = addc(c, src, g->p); /* the offset of image row iy */
  LLVMTypeRef i32 = LLVMInt32TypeInContext(c->ctx);
  for (int64_t x0 = 0; x0 < g->W; x0 += COL2IM_LANES) {
    int64_t n = g->W - x0 < COL2IM_LANES ? g->W - x0 : COL2IM_LANES;
    LLVMValueRef at = addc(c, irow, x0), acc = vec_ld(c, img, at, n);
    for (int64_t kx = 0; kx < g->k; kx++) {
      /* the tap's inside window columns that land on pixels [x0, x0+n) */
      int64_t lo, hi;
      inside_windows(kx, g->s, g->p, g->W, g->Wc, &lo, &hi);
      while (lo < hi && lo * g->s - g->p + kx < x0) lo++;
      while (hi > lo && (hi - 1) * g->s - g->p + kx >= x0 + n) hi--;
      if (hi == lo) continue;
      LLVMValueRef mask[COL2IM_LANES];
      for (int64_t i = 0; i < n; i++) {
        int64_t d = x0 + i + g->p - kx; /* cx*s for the window column on pixel x0+i */
        bool on = d >= 0 && d % g->s == 0 && d / g->s >= lo && d / g->s < hi;
        mask[i] = LLVMConstInt(i32, (unsigned long long)(on ? d / g->s - lo : hi - lo), 0);
      }
      LLVMValueRef cols = vec_ld(c, col, addc(c, dst, kx * g->ld + lo), hi - lo);
      LLVMValueRef spread = LLVMBuildShuffleVector(c->b, cols, LLVMConstNull(LLVMTypeOf(cols)),
                                                   LLVMConstVector(mask, (unsigned)n), "");
      acc = LLVMBuildFAdd(c->b, acc, spread, "");
    }
    vec_st(c, img, at, acc, n);
  }
  cg_loop_end(c, &ly);
  cg_nest_end(c, &nest);
}

/* float* base + b * stride */
static LLVMValueRef batch_ptr(cg_ctx *c, LLVMValueRef base, LLVMValueRef b, int64_t stride) {
  return cg_gep(c, c->f32, base, LLVMBuildNSWMul(c->b, b, cg_i64(c, stride), ""));
}

/* the columns of images b0..b0+G-1 of x (image j's at column j*Hc*Wc), the images
 * over the runtime's threads */
static void im2col_images(cg_ctx *c, const geom *g, int64_t G, LLVMValueRef x, LLVMValueRef b0,
                          LLVMValueRef col) {
  int64_t P = g->Hc * g->Wc;
  cg_ploop lj;
  LLVMValueRef *used[] = {&x, &b0, &col};
  cg_ploop_begin(c, &lj, G, g->C * g->k * g->k * P, used, 3);
  im2col(c, g, batch_ptr(c, x, LLVMBuildNSWAdd(c->b, b0, lj.iv, ""), g->C * g->H * g->W),
         batch_ptr(c, col, lj.iv, P));
  cg_ploop_end(c, &lj);
}

static const ir_shape *opshape(cg_ctx *c, const ir_node *n, int j) {
  return &c->f->nodes[ir_operand(n, j)].shape;
}

/* Between a group's values v[G,R,P] and their rows t[R, G*P]: t[r, j*P+p] = v[j,r,p]
 * (to_rows), or back. */
static void regroup(cg_ctx *c, LLVMValueRef v, LLVMValueRef t, int64_t G, int64_t R, int64_t P,
                    bool to_rows) {
  int64_t dims[2] = {R, P}, vst[3] = {R * P, P, 1}, tst[3] = {P, G * P, 1};
  cg_ploop lj; /* images j over the runtime's threads */
  LLVMValueRef *used[] = {&v, &t};
  cg_ploop_begin(c, &lj, G, R * P, used, 2);
  cg_nest nest;
  cg_nest_begin(c, &nest, 2, dims);
  LLVMValueRef idx[3] = {lj.iv, nest.idx[0], nest.idx[1]};
  LLVMValueRef iv = cg_linear(c, 3, idx, vst), it = cg_linear(c, 3, idx, tst);
  if (to_rows)
    cg_st(c, t, it, cg_ld(c, c->f32, v, iv));
  else
    cg_st(c, v, iv, cg_ld(c, c->f32, t, it));
  cg_nest_end(c, &nest);
  cg_ploop_end(c, &lj);
}

/* conv_grad_x and deconv: per group of G images b0.., the values v [N,R,P] (dy or x)
 * regrouped to rows, the columns w^T[M,R] x T(v) with M = g->C*k*k, then each image
 * j of the group out_j [g->C, g->H, g->W] = col2im_j(columns). */
static void gemm_col2im(cg_ctx *c, const geom *g, int64_t N, int64_t G, int64_t R, int64_t P,
                        LLVMValueRef v, LLVMValueRef w, LLVMValueRef col, LLVMValueRef t,
                        LLVMValueRef out) {
  int64_t M = g->C * g->k * g->k;
  cg_loop l;
  cg_loop_begin(c, &l, cg_i64(c, N / G));
  LLVMValueRef b0 = LLVMBuildNSWMul(c->b, l.iv, cg_i64(c, G), "");
  LLVMValueRef vb = batch_ptr(c, v, b0, R * P);
  if (G > 1) regroup(c, vb, t, G, R, P, true);
  cg_sgemm(c, true, false, M, G * P, R, w, M, G > 1 ? t : vb, G * P, cg_f32c(c, 0), col,
           G * P);
  cg_ploop lj; /* images over the runtime's threads: each adds only into its own */
  LLVMValueRef *used[] = {&col, &out, &b0};
  cg_ploop_begin(c, &lj, G, M * P, used, 3);
  col2im(c, g, batch_ptr(c, col, lj.iv, P),
         batch_ptr(c, out, LLVMBuildNSWAdd(c->b, b0, lj.iv, ""), g->C * g->H * g->W));
  cg_ploop_end(c, &lj);
  cg_epilogue_rows(c, b0, G); /* the group's images are complete */
  cg_loop_end(c, &l);
}

/* A conv node's group: G images, the floats of one image's columns and of one image's
 * regrouped values (the GEMM operand or result that T() rearranges). */
typedef struct {
  int64_t G, col, val;
} grouping;

static grouping conv_grouping(const ir_func *f, const ir_node *n) {
  int64_t k = n->i[0];
  const ir_shape *a = &f->nodes[n->in[0]].shape, *o = &n->shape;
  grouping g = {1, 0, 0};
  switch (n->op) {
  case IR_OP_CONV: /* x [N,C,H,W], out [N,O,Ho,Wo] */
    g.col = a->dim[1] * k * k * o->dim[2] * o->dim[3];
    g.val = o->dim[1] * o->dim[2] * o->dim[3];
    break;
  case IR_OP_CONV_GRAD_X: /* dy [N,O,Ho,Wo], out [N,C,H,W] */
    g.col = o->dim[1] * k * k * a->dim[2] * a->dim[3];
    g.val = a->dim[1] * a->dim[2] * a->dim[3];
    break;
  case IR_OP_CONV_GRAD_W: { /* x [N,C,H,W], dy [N,O,Ho,Wo] */
    const ir_shape *dy = &f->nodes[n->in[1]].shape;
    g.col = a->dim[1] * k * k * dy->dim[2] * dy->dim[3];
    g.val = dy->dim[1] * dy->dim[2] * dy->dim[3];
    break;
  }
  default: /* deconv: x [N,C,H,W], out [N,O,Ho,Wo] */
    g.col = o->dim[1] * k * k * a->dim[2] * a->dim[3];
    g.val = a->dim[1] * a->dim[2] * a->dim[3];
    break;
  }
  g.G = group_size(a->dim[0], g.col);
  return g;
}

int64_t cg_extra_conv(const ir_func *f, const ir_node *n) {
  grouping g = conv_grouping(f, n);
  return g.G * (g.col + (g.G > 1 ? g.val : 0)) * 4;
}

int cg_lower_conv(cg_ctx *c, int id, const ir_node *n, LLVMValueRef const *in,
                  LLVMValueRef out) {
  (void)id;
  int64_t k = n->i[0], s = n->i[1], p = n->i[2];
  grouping gr = conv_grouping(c->f, n);
  int64_t G = gr.G;
  LLVMValueRef col = cg_fptr(c, c->extra);
  LLVMValueRef t = G > 1 ? batch_ptr(c, col, cg_i64(c, 1), G * gr.col) : NULL; /* regrouped */
  LLVMValueRef a = cg_fptr(c, in[0]), w = cg_fptr(c, in[1]), y = cg_fptr(c, out);
  const ir_shape *sa = opshape(c, n, 0), *so = &n->shape;
  cg_loop l;
  switch (n->op) {
  case IR_OP_CONV: {
    int64_t N = sa->dim[0], C = sa->dim[1], H = sa->dim[2], W = sa->dim[3];
    int64_t O = so->dim[1], Ho = so->dim[2], Wo = so->dim[3], P = Ho * Wo;
    geom g = {C, H, W, k, s, p, Ho, Wo, G * P};
    cg_loop_begin(c, &l, cg_i64(c, N / G));
    LLVMValueRef b0 = LLVMBuildNSWMul(c->b, l.iv, cg_i64(c, G), "");
    im2col_images(c, &g, G, a, b0, col);
    LLVMValueRef yb = batch_ptr(c, y, b0, O * P);
    cg_sgemm(c, false, false, O, G * P, C * k * k, w, C * k * k, col, G * P, cg_f32c(c, 0),
             G > 1 ? t : yb, G * P);
    if (G > 1) regroup(c, yb, t, G, O, P, false);
    cg_epilogue_rows(c, b0, G); /* the group's images are complete */
    cg_loop_end(c, &l);
    return 0;
  }
  case IR_OP_CONV_GRAD_X: {
    /* a = dy [N,O,Ho,Wo], w [O,C,k,k], out [N,C,H,W] */
    int64_t N = so->dim[0], C = so->dim[1], H = so->dim[2], W = so->dim[3];
    int64_t O = sa->dim[1], Ho = sa->dim[2], Wo = sa->dim[3], P = Ho * Wo;
    geom g = {C, H, W, k, s, p, Ho, Wo, G * P};
    gemm_col2im(c, &g, N, G, O, P, a, w, col, t, y);
    return 0;
  }
  case IR_OP_CONV_GRAD_W: {
    /* a = x [N,C,H,W], in[1] = dy [N,O,Ho,Wo], out [O,C,k,k] */
    const ir_shape *sd = opshape(c, n, 1);
    int64_t N = sa->dim[0], C = sa->dim[1], H = sa->dim[2], W = sa->dim[3];
    int64_t O = sd->dim[1], Ho = sd->dim[2], Wo = sd->dim[3], P = Ho * Wo;
    geom g = {C, H, W, k, s, p, Ho, Wo, G * P};
    if (N == 0) {
      cg_zero4(c, out, O * C * k * k);
      return 0;
    }
    cg_loop_begin(c, &l, cg_i64(c, N / G));
    LLVMValueRef b0 = LLVMBuildNSWMul(c->b, l.iv, cg_i64(c, G), "");
    im2col_images(c, &g, G, a, b0, col);
    LLVMValueRef dyb = batch_ptr(c, w, b0, O * P);
    if (G > 1) regroup(c, dyb, t, G, O, P, true);
    LLVMValueRef first = LLVMBuildICmp(c->b, LLVMIntEQ, l.iv, cg_i64(c, 0), "");
    LLVMValueRef beta = LLVMBuildSelect(c->b, first, cg_f32c(c, 0), cg_f32c(c, 1), "");
    cg_sgemm(c, false, true, O, C * k * k, G * P, G > 1 ? t : dyb, G * P, col, G * P, beta, y,
             C * k * k);
    cg_loop_end(c, &l);
    return 0;
  }
  default: {
    /* deconv: a = x [N,C,H,W], w [C,O,k,k], out [N,O,Ho,Wo] */
    int64_t N = sa->dim[0], C = sa->dim[1], H = sa->dim[2], W = sa->dim[3];
    int64_t O = so->dim[1], Ho = so->dim[2], Wo = so->dim[3], P = H * W;
    geom g = {O, Ho, Wo, k, s, p, H, W, G * P};
    gemm_col2im(c, &g, N, G, C, P, a, w, col, t, y);
    return 0;
  }
  }
}
