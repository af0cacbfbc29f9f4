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

/* The pixel offset of (c, cy*s-p+ky, cx*s-p+kx) clamped to 0 when outside, and
 * whether it is inside. */
static LLVMValueRef pixel(cg_ctx *c, const geom *g, const LLVMValueRef *ix, LLVMValueRef *inside) {
  LLVMBuilderRef b = c->b;
  LLVMValueRef iy = LLVMBuildNSWAdd(b, LLVMBuildNSWMul(b, ix[3], cg_i64(c, g->s), ""),
                                    cg_i64(c, g->p ? -g->p : 0), "");
  iy = LLVMBuildNSWAdd(b, iy, ix[1], "");
  LLVMValueRef ixx = LLVMBuildNSWAdd(b, LLVMBuildNSWMul(b, ix[4], cg_i64(c, g->s), ""),
                                     cg_i64(c, g->p ? -g->p : 0), "");
  ixx = LLVMBuildNSWAdd(b, ixx, ix[2], "");
  /* unsigned compare against the bound covers both < 0 and >= bound */
  LLVMValueRef oky = LLVMBuildICmp(b, LLVMIntULT, iy, cg_i64(c, g->H), "");
  LLVMValueRef okx = LLVMBuildICmp(b, LLVMIntULT, ixx, cg_i64(c, g->W), "");
  *inside = LLVMBuildAnd(b, oky, okx, "");
  LLVMValueRef st[3] = {0};
  int64_t strides[3] = {g->H * g->W, g->W, 1};
  st[0] = ix[0], st[1] = iy, st[2] = ixx;
  LLVMValueRef off = cg_linear(c, 3, st, strides);
  return LLVMBuildSelect(b, *inside, off, cg_i64(c, 0), "");
}

/* col points at the image's first column (row stride g->ld) */
static void im2col(cg_ctx *c, const geom *g, LLVMValueRef img, LLVMValueRef col) {
  int64_t dims[5] = {g->C, g->k, g->k, g->Hc, g->Wc};
  int64_t cst[5] = {g->k * g->k * g->ld, g->k * g->ld, g->ld, g->Wc, 1};
  cg_nest nest;
  cg_nest_begin(c, &nest, 5, dims);
  LLVMValueRef inside, at = pixel(c, g, nest.idx, &inside);
  LLVMValueRef v = cg_ld(c, c->f32, img, at);
  v = LLVMBuildSelect(c->b, inside, v, cg_f32c(c, 0), "");
  cg_st(c, col, cg_linear(c, 5, nest.idx, cst), v);
  cg_nest_end(c, &nest);
}

/* img (zeroed here) += the columns, tap by tap */
static void col2im(cg_ctx *c, const geom *g, LLVMValueRef col, LLVMValueRef img) {
  cg_loop l;
  cg_loop_begin(c, &l, cg_i64(c, g->C * g->H * g->W));
  cg_st(c, img, l.iv, cg_f32c(c, 0));
  cg_loop_end(c, &l);
  int64_t dims[5] = {g->C, g->k, g->k, g->Hc, g->Wc};
  int64_t cst[5] = {g->k * g->k * g->ld, g->k * g->ld, g->ld, g->Wc, 1};
  cg_nest nest;
  cg_nest_begin(c, &nest, 5, dims);
  LLVMValueRef inside, at = pixel(c, g, nest.idx, &inside);
  LLVMBasicBlockRef add = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "col2im_add");
  LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "col2im_next");
  LLVMBuildCondBr(c->b, inside, add, next);
  LLVMPositionBuilderAtEnd(c->b, add);
  LLVMValueRef v = cg_ld(c, c->f32, col, cg_linear(c, 5, nest.idx, cst));
  LLVMValueRef p = cg_gep(c, c->f32, img, at);
  LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, LLVMBuildLoad2(c->b, c->f32, p, ""), v, ""), p);
  LLVMBuildBr(c->b, next);
  LLVMPositionBuilderAtEnd(c->b, next);
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
