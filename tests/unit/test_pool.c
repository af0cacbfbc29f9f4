/* test_pool.c: the runtime's threads (runtime/pool.c) and its split GEMM
 * (runtime/gemm.c).
 * - every block of a job runs exactly once, with 1 and with 2 threads, back to back,
 *   after the workers have gone to sleep, and from inside a block (inline);
 * - migc_rt_set_threads clamps to the online cores;
 * - migc_rt_sgemm against a double-precision GEMM (float rounding only) for shapes
 *   split along M and along N, with transposes, ragged block edges (not multiples of
 *   16), beta = 1 accumulation and leading dimensions wider than the matrix, and the
 *   same bits with 1 and 2 threads, cells outside the matrix untouched. */
#include "check.h"
#include "runtime/runtime.h"

#include <cblas.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

enum { NB = 1000 };
static int hits[NB];

static void count_block(void *ctx, int64_t b) {
  (void)ctx;
  __atomic_fetch_add(&hits[b], 1, __ATOMIC_RELAXED);
}

static void nested_block(void *ctx, int64_t b) {
  int *inner = ctx;
  (void)b;
  /* from inside a job: runs inline, all of it */
  migc_rt_parallel_for(count_block, NULL, 10);
  __atomic_fetch_add(inner, 1, __ATOMIC_RELAXED);
}

static bool all_once(int n) {
  for (int b = 0; b < n; b++)
    if (hits[b] != 1) return false;
  return true;
}

static void test_jobs(void) {
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  CHECK(migc_rt_set_threads(1) == 1);
  CHECK(migc_rt_set_threads(0) == (int)cores);
  CHECK(migc_rt_set_threads(100000) == (int)cores);
  for (int t = 1; t <= 2; t++) {
    migc_rt_set_threads(t);
    for (int rep = 0; rep < 200; rep++) { /* back to back: workers awake */
      int n = 1 + rep * 7 % NB;
      memset(hits, 0, sizeof hits);
      migc_rt_parallel_for(count_block, NULL, n);
      CHECK_MSG(all_once(n), "threads %d, job %d of %d blocks", t, rep, n);
    }
    struct timespec ms = {0, 2000000}; /* past the spin: workers asleep on the futex */
    nanosleep(&ms, NULL);
    memset(hits, 0, sizeof hits);
    migc_rt_parallel_for(count_block, NULL, NB);
    CHECK_MSG(all_once(NB), "threads %d, after sleeping", t);
    memset(hits, 0, sizeof hits);
    int outer = 0;
    migc_rt_parallel_for(nested_block, &outer, 8);
    CHECK(outer == 8);
    bool ten = true;
    for (int b = 0; b < 10; b++) ten &= hits[b] == 8;
    CHECK_MSG(ten, "nested jobs, threads %d", t);
    migc_rt_parallel_for(count_block, NULL, 0); /* nothing, no hang */
  }
}

/* C = op(A) op(B) (+ C when beta) in double, then rounded */
static void ref_gemm(int ta, int tb, int M, int N, int K, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc) {
  for (int m = 0; m < M; m++)
    for (int n = 0; n < N; n++) {
      double acc = 0;
      for (int k = 0; k < K; k++)
        acc += (double)(ta ? A[k * lda + m] : A[m * lda + k]) *
               (double)(tb ? B[n * ldb + k] : B[k * ldb + n]);
      C[m * ldc + n] = (float)(acc + (beta != 0 ? C[m * ldc + n] : 0.0));
    }
}

static void test_gemm(void) {
  /* M, N, K, ta, tb, beta: split in 2 along M (M >= N) or N with a ragged last
   * block (gemm.c's rule: one block per 8 MFLOP, edges >= 256 and on 16, an even
   * count), up to 8 blocks, two halved below that edge (a GEMM worth two blocks:
   * 128 + 122 columns, 160 + 140 rows), and two too small to split */
  static const int shapes[][6] = {
      {600, 70, 200, 0, 0, 0},   {70, 600, 200, 1, 0, 0}, {77, 1000, 128, 0, 1, 1},
      {1000, 33, 300, 1, 1, 1},  {40, 2100, 400, 0, 0, 0}, {64, 1024, 74, 0, 1, 0},
      {64, 250, 784, 0, 1, 0},   {300, 40, 700, 1, 0, 1}, {5, 7, 3, 0, 0, 0},
  };
  for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
    int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], ta = shapes[s][3];
    int tb = shapes[s][4];
    float beta = (float)shapes[s][5];
    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
    float *A = malloc(na * 4), *B = malloc(nb * 4), *C0 = malloc(nc * 4);
    float *C1 = malloc(nc * 4), *C2 = malloc(nc * 4), *R = malloc(nc * 4);
    for (size_t i = 0; i < na; i++) A[i] = (float)((i * 7919) % 101) / 101.0f - 0.5f;
    for (size_t i = 0; i < nb; i++) B[i] = (float)((i * 104729) % 97) / 97.0f - 0.5f;
    for (size_t i = 0; i < nc; i++) C0[i] = (float)(i % 13) - 6.0f;
    memcpy(C1, C0, nc * 4), memcpy(C2, C0, nc * 4), memcpy(R, C0, nc * 4);
    int TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
    migc_rt_set_threads(1);
    migc_rt_sgemm(CblasRowMajor, TA, TB, M, N, K, 1, A, lda, B, ldb, beta, C1, ldc);
    migc_rt_set_threads(2);
    migc_rt_sgemm(CblasRowMajor, TA, TB, M, N, K, 1, A, lda, B, ldb, beta, C2, ldc);
    ref_gemm(ta, tb, M, N, K, A, lda, B, ldb, beta, R, ldc);
    CHECK_MSG(!memcmp(C1, C2, nc * 4), "shape %zu: 1 and 2 threads differ", s);
    double worst = 0;
    bool outside = true;
    for (int m = 0; m < M; m++)
      for (int n = 0; n < ldc; n++) {
        size_t i = (size_t)m * ldc + n;
        if (n >= N) {
          outside &= C1[i] == C0[i];
          continue;
        }
        double e = fabs((double)C1[i] - R[i]) / (1 + fabs(R[i]));
        if (e > worst) worst = e;
      }
    CHECK_MSG(worst < 1e-5, "shape %zu: relative error %g", s, worst);
    CHECK_MSG(outside, "shape %zu: wrote past N", s);
    free(A), free(B), free(C0), free(C1), free(C2), free(R);
  }
  migc_rt_set_threads(1);
}

int main(void) {
  test_jobs();
  test_gemm();
  return check_done();
}
