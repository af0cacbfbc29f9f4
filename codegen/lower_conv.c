/* lower_conv.c: conv, deconv and conv's two adjoints as im2col/col2im loops around
 * cblas_sgemm, one image of the batch at a time.
 *
 * A column matrix col[C*k*k, Hc*Wc] pairs every kernel tap (c,ky,kx) with every
 * position (cy,cx) of a grid of Hc x Wc windows over an image [C,H,W]:
 *   col[(c*k+ky)*k+kx, cy*Wc+cx] = img[c, cy*s-p+ky, cx*s-p+kx]   (0 outside)
 * im2col fills it from the image; col2im scatters it back, adding taps that land on
 * the same pixel. With them (per image b, O/C as in ir.h):
 *   conv        y_b[O,HoWo]    = w[O,Ckk]      x col(x_b)                  (Hc = Ho)
 *   conv_grad_x dx_b           = col2im(w^T[Ckk,O] x dy_b[O,HoWo])         (Hc = Ho)
 *   conv_grad_w dw[O,Ckk]     += dy_b[O,HoWo]  x col(x_b)^T                (Hc = Ho)
 *   deconv      y_b[O,Ho,Wo]   = col2im(w^T[Okk,C] x x_b[C,HW]) onto Ho x Wo (Hc = H)
 * The column buffer is the node's extra scratch (C*k*k*Hc*Wc floats). */
#include "codegen/cg_internal.h"


typedef struct {
  int64_t C, H, W; /* image */
  int64_t k, s, p;
  int64_t Hc, Wc; /* window grid */
} geom;

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

static void im2col(cg_ctx *c, const geom *g, LLVMValueRef img, LLVMValueRef col) {
  int64_t dims[5] = {g->C, g->k, g->k, g->Hc, g->Wc};
  int64_t cst[5] = {g->k * g->k * g->Hc * g->Wc, g->k * g->Hc * g->Wc, g->Hc * g->Wc, g->Wc, 1};
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
  int64_t cst[5] = {g->k * g->k * g->Hc * g->Wc, g->k * g->Hc * g->Wc, g->Hc * g->Wc, g->Wc, 1};
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

static const ir_shape *opshape(cg_ctx *c, const ir_node *n, int j) {
  return &c->f->nodes[ir_operand(n, j)].shape;
}

int64_t cg_extra_conv(const ir_func *f, const ir_node *n) {
  int64_t k = n->i[0];
  const ir_shape *a = &f->nodes[n->in[0]].shape;
  switch (n->op) {
  case IR_OP_CONV: /* x [N,C,H,W], out [N,O,Ho,Wo] */
    return a->dim[1] * k * k * n->shape.dim[2] * n->shape.dim[3] * 4;
  case IR_OP_CONV_GRAD_X: /* dy [N,O,Ho,Wo], out [N,C,H,W] */
    return n->shape.dim[1] * k * k * a->dim[2] * a->dim[3] * 4;
  case IR_OP_CONV_GRAD_W: { /* x [N,C,H,W], dy [N,O,Ho,Wo] */
    const ir_shape *dy = &f->nodes[n->in[1]].shape;
    return a->dim[1] * k * k * dy->dim[2] * dy->dim[3] * 4;
  }
  default: /* deconv: x [N,C,H,W], out [N,O,Ho,Wo] */
    return n->shape.dim[1] * k * k * a->dim[2] * a->dim[3] * 4;
  }
}

int cg_lower_conv(cg_ctx *c, int id, const ir_node *n, LLVMValueRef const *in,
                  LLVMValueRef out) {
  (void)id;
  int64_t k = n->i[0], s = n->i[1], p = n->i[2];
  LLVMValueRef col = cg_fptr(c, c->extra);
  LLVMValueRef a = cg_fptr(c, in[0]), w = cg_fptr(c, in[1]), y = cg_fptr(c, out);
  const ir_shape *sa = opshape(c, n, 0), *so = &n->shape;
  cg_loop l;
  switch (n->op) {
  case IR_OP_CONV: {
    int64_t N = sa->dim[0], C = sa->dim[1], H = sa->dim[2], W = sa->dim[3];
    int64_t O = so->dim[1], Ho = so->dim[2], Wo = so->dim[3];
    geom g = {C, H, W, k, s, p, Ho, Wo};
    cg_loop_begin(c, &l, cg_i64(c, N));
    im2col(c, &g, batch_ptr(c, a, l.iv, C * H * W), col);
    cg_sgemm(c, false, false, O, Ho * Wo, C * k * k, w, C * k * k, col, Ho * Wo,
             cg_f32c(c, 0), batch_ptr(c, y, l.iv, O * Ho * Wo), Ho * Wo);
    cg_loop_end(c, &l);
    return 0;
  }
  case IR_OP_CONV_GRAD_X: {
    /* a = dy [N,O,Ho,Wo], w [O,C,k,k], out [N,C,H,W] */
    int64_t N = so->dim[0], C = so->dim[1], H = so->dim[2], W = so->dim[3];
    int64_t O = sa->dim[1], Ho = sa->dim[2], Wo = sa->dim[3];
    geom g = {C, H, W, k, s, p, Ho, Wo};
    cg_loop_begin(c, &l, cg_i64(c, N));
    cg_sgemm(c, true, false, C * k * k, Ho * Wo, O, w, C * k * k,
             batch_ptr(c, a, l.iv, O * Ho * Wo), Ho * Wo, cg_f32c(c, 0), col, Ho * Wo);
    col2im(c, &g, col, batch_ptr(c, y, l.iv, C * H * W));
    cg_loop_end(c, &l);
    return 0;
  }
  case IR_OP_CONV_GRAD_W: {
    /* a = x [N,C,H,W], in[1] = dy [N,O,Ho,Wo], out [O,C,k,k] */
    const ir_shape *sd = opshape(c, n, 1);
    int64_t N = sa->dim[0], C = sa->dim[1], H = sa->dim[2], W = sa->dim[3];
    int64_t O = sd->dim[1], Ho = sd->dim[2], Wo = sd->dim[3];
    geom g = {C, H, W, k, s, p, Ho, Wo};
    if (N == 0) {
      cg_zero4(c, out, O * C * k * k);
      return 0;
    }
    cg_loop_begin(c, &l, cg_i64(c, N));
    im2col(c, &g, batch_ptr(c, a, l.iv, C * H * W), col);
    LLVMValueRef first = LLVMBuildICmp(c->b, LLVMIntEQ, l.iv, cg_i64(c, 0), "");
    LLVMValueRef beta = LLVMBuildSelect(c->b, first, cg_f32c(c, 0), cg_f32c(c, 1), "");
    cg_sgemm(c, false, true, O, C * k * k, Ho * Wo, batch_ptr(c, w, l.iv, O * Ho * Wo),
             Ho * Wo, col, Ho * Wo, beta, y, C * k * k);
    cg_loop_end(c, &l);
    return 0;
  }
  default: {
    /* deconv: a = x [N,C,H,W], w [C,O,k,k], out [N,O,Ho,Wo] */
    int64_t N = sa->dim[0], C = sa->dim[1], H = sa->dim[2], W = sa->dim[3];
    int64_t O = so->dim[1], Ho = so->dim[2], Wo = so->dim[3];
    geom g = {O, Ho, Wo, k, s, p, H, W};
    cg_loop_begin(c, &l, cg_i64(c, N));
    cg_sgemm(c, true, false, O * k * k, H * W, C, w, O * k * k,
             batch_ptr(c, a, l.iv, C * H * W), H * W, cg_f32c(c, 0), col, H * W);
    col2im(c, &g, col, batch_ptr(c, y, l.iv, O * Ho * Wo));
    cg_loop_end(c, &l);
    return 0;
  }
  }
}
