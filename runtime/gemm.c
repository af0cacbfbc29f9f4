/* gemm.c: the GEMM compiled code calls, cblas_sgemm's signature (row-major). C is
 * split into blocks of rows (M) or columns (N), whichever dimension is larger (each
 * block then repacks the smaller operand), one cblas_sgemm per block on OpenBLAS's
 * single thread (pool.c keeps it there), the blocks spread over the pool's threads.
 *
 * The blocks depend only on the shape, never on the thread count, and every element
 * of C is computed by exactly one block's call: C is the same bits with 1 thread or
 * 16. (OpenBLAS's own threads split differently per thread count, which is why a run
 * used to differ in its last bits between --threads values.) */
#include "runtime/runtime.h"

#include <cblas.h>

/* A block repacks the operand it shares with the other blocks (B when splitting rows,
 * A when splitting columns): the one-thread cost of a split is one more packing of it
 * per block, which measured 1.66x for M=1024 N=784 K=128 in 16 blocks of 64 rows. So
 * blocks are few and wide: at least MIN_EDGE rows or columns (a packed element then
 * serves 512 flops or more), one per BLOCK_FLOPS, at most MAX_BLOCKS, and an even
 * count, so 2 threads (the benchmark's configuration) get equal shares. A GEMM worth
 * two blocks whose larger side is under 2*MIN_EDGE still gets two, down to PAIR_EDGE:
 * the MLP's M=64 N=256 K=784 ran on one thread, 0.225 ms against OpenBLAS's 0.12 on
 * two, and halved it is one more packing of a 200 KB operand. */
enum {
  BLOCK_FLOPS = 8000000, /* about 80 us of one core's GEMM */
  MIN_EDGE = 256,
  PAIR_EDGE = 64,
  MAX_BLOCKS = 8,
  ALIGN = 16, /* block edges on OpenBLAS's register tile (16 rows or columns) */
};

typedef struct {
  int ta, tb, M, N, K, lda, ldb, ldc;
  float alpha, beta;
  const float *A, *B;
  float *C;
  bool split_m; /* blocks of rows of C, else of columns */
  int step;     /* rows or columns per block */
} gemm_job;

static void gemm_block(void *ctx, int64_t b) {
  const gemm_job *g = ctx;
  int lo = (int)b * g->step, dim = g->split_m ? g->M : g->N;
  int n = dim - lo < g->step ? dim - lo : g->step;
  const float *A = g->A, *B = g->B;
  float *C = g->C;
  if (g->split_m) { /* rows lo.. of op(A) and of C */
    A += g->ta == CblasTrans ? lo : (int64_t)lo * g->lda;
    C += (int64_t)lo * g->ldc;
    cblas_sgemm(CblasRowMajor, g->ta, g->tb, n, g->N, g->K, g->alpha, A, g->lda, B, g->ldb,
                g->beta, C, g->ldc);
  } else { /* columns lo.. of op(B) and of C */
    B += g->tb == CblasTrans ? (int64_t)lo * g->ldb : lo;
    C += lo;
    cblas_sgemm(CblasRowMajor, g->ta, g->tb, g->M, n, g->K, g->alpha, A, g->lda, B, g->ldb,
                g->beta, C, g->ldc);
  }
}

void migc_rt_sgemm(int order, int ta, int tb, int M, int N, int K, float alpha,
                   const float *A, int lda, const float *B, int ldb, float beta, float *C,
                   int ldc) {
  double flops = 2.0 * M * N * K;
  bool split_m = M >= N;
  int dim = split_m ? M : N;
  int64_t nb = (int64_t)(flops / BLOCK_FLOPS);
  if (nb > dim / MIN_EDGE) nb = dim / MIN_EDGE;
  if (nb < 2 && flops >= 2.0 * BLOCK_FLOPS && dim >= 2 * PAIR_EDGE) nb = 2;
  if (nb > MAX_BLOCKS) nb = MAX_BLOCKS;
  nb -= nb % 2;
  int step = nb > 1 ? (int)((dim + nb - 1) / nb) : dim;
  step = (step + ALIGN - 1) / ALIGN * ALIGN;
  if (order != CblasRowMajor || nb <= 1 || step >= dim) {
    cblas_sgemm(order, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  gemm_job g = {ta, tb, M, N, K, lda, ldb, ldc, alpha, beta, A, B, C, split_m, step};
  migc_rt_parallel_for(gemm_block, &g, (dim + step - 1) / step);
}
