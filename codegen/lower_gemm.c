/* lower_gemm.c: matmul as one GEMM call (then its epilogue, when it heads a fused kernel:
 * lower_epilogue.c). Transposed operands are passed with
 * CblasTrans and the stored leading dimension, never copied. Also the shared GEMM call
 * builder that lower_conv.c uses. The call is to the runtime's migc_rt_sgemm
 * (cblas_sgemm's signature), which splits C into blocks over the runtime's threads,
 * one single-threaded OpenBLAS call each. OpenBLAS accumulates in float (blocked,
 * vectorised): results differ from the interpreter's double sums by float rounding
 * only. */
#include "codegen/cg_internal.h"

#include <cblas.h>

_Static_assert(sizeof(blasint) == 4, "cg_sgemm passes 32-bit BLAS integers");

/* C[M,N] = alpha * op(A) op(B) + beta * C, row-major, through migc_rt_sgemm; a, b, cc
 * are float*, beta an f32 value (so loops can pass 0 on the first iteration and 1
 * after). */
void cg_sgemm(cg_ctx *c, bool ta, bool tb, int64_t M, int64_t N, int64_t K, LLVMValueRef a,
              int64_t lda, LLVMValueRef b, int64_t ldb, LLVMValueRef beta, LLVMValueRef cc,
              int64_t ldc) {
  LLVMTypeRef i32 = c->i32;
  LLVMTypeRef params[14] = {i32, i32, i32, i32, i32, i32, c->f32,
                            c->pf32, i32, c->pf32, i32, c->f32, c->pf32, i32};
  LLVMTypeRef fty = LLVMFunctionType(c->void_t, params, 14, 0);
  LLVMValueRef args[14] = {cg_i32c(c, CblasRowMajor),
                           cg_i32c(c, ta ? CblasTrans : CblasNoTrans),
                           cg_i32c(c, tb ? CblasTrans : CblasNoTrans),
                           cg_i32c(c, (int32_t)M),
                           cg_i32c(c, (int32_t)N),
                           cg_i32c(c, (int32_t)K),
                           cg_f32c(c, 1.0),
                           a,
                           cg_i32c(c, (int32_t)lda),
                           b,
                           cg_i32c(c, (int32_t)ldb),
                           beta,
                           cc,
                           cg_i32c(c, (int32_t)ldc)};
  LLVMBuildCall2(c->b, fty, cg_extern(c, "migc_rt_sgemm", fty), args, 14, "");
}

/* a [M,K] (stored [K,M] when i[0]), b [K,N] (stored [N,K] when i[1]), out [M,N] */
int cg_lower_matmul(cg_ctx *c, int id, const ir_node *n, LLVMValueRef const *in,
                    LLVMValueRef out) {
  (void)id;
  bool ta = n->i[0] != 0, tb = n->i[1] != 0;
  const ir_shape sa = c->f->nodes[n->in[0]].shape;
  int64_t M = n->shape.dim[0], N = n->shape.dim[1];
  int64_t K = ta ? sa.dim[0] : sa.dim[1];
  if (M > INT32_MAX || N > INT32_MAX || K > INT32_MAX)
    return cg_fail(c, "matmul dimensions exceed 32-bit BLAS integers");
  if (K == 0) { /* sgemm with K = 0 leaves C alone when beta = 0? make it explicit */
    cg_zero4(c, out, M * N);
  } else {
    cg_sgemm(c, ta, tb, M, N, K, cg_fptr(c, in[0]), ta ? M : K, cg_fptr(c, in[1]), tb ? K : N,
             cg_f32c(c, 0), cg_fptr(c, out), N);
  }
  /* one block, after the whole GEMM: migc_rt_sgemm splits C over the threads itself, in
   * blocks fixed by the shape; the output of a batch of 64 rows is at most a few MB */
  cg_epilogue_rows(c, cg_i64(c, 0), M);
  return 0;
}

void cg_reference_sgemm(int order, int ta, int tb, int M, int N, int K, float alpha,
                        const float *A, int lda, const float *B, int ldb, float beta,
                        float *C, int ldc) {
  (void)order;
  for (int m = 0; m < M; m++)
    for (int n = 0; n < N; n++) {
      double acc = 0;
      for (int k = 0; k < K; k++) {
        double a = ta == CblasTrans ? A[(int64_t)k * lda + m] : A[(int64_t)m * lda + k];
        double b = tb == CblasTrans ? B[(int64_t)n * ldb + k] : B[(int64_t)k * ldb + n];
        acc += a * b;
      }
      float *c = &C[(int64_t)m * ldc + n];
      *c = (float)(alpha * acc + (beta != 0 ? (double)beta * *c : 0.0));
    }
}
