/* migc_peak.c: see migc_peak.h. Each peak is a loop of independent multiply-adds on
 * registers only (no memory traffic): 12 accumulator chains per thread, more than the
 * FMA latency (4 cycles) times the FMA ports (2) needs, so the loop runs at the ports'
 * throughput. The vector kernels carry their own target attributes, so migc itself
 * stays built for the baseline x86-64 and runs them only where the CPU has them. */
#include "migc_peak.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define X86 1
#else
#define X86 0
#endif

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#if X86
/* Twelve named accumulators, so that each stays in a register (an array would be
 * kept in memory by GCC at -O2, and the loop would measure loads and stores). */
#define TWELVE(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

/* Each returns the flops of iters iterations; sink keeps the results alive. */
__attribute__((target("avx512f"))) static double fma_avx512(int64_t iters, float *sink) {
  __m512 m = _mm512_set1_ps(0.9999f), a = _mm512_set1_ps(1e-7f);
#define DECL(j) __m512 acc##j = _mm512_set1_ps((float)(j));
#define STEP(j) acc##j = _mm512_fmadd_ps(acc##j, m, a);
#define SUM(j) total = _mm512_add_ps(total, acc##j);
  TWELVE(DECL)
  for (int64_t i = 0; i < iters; i++) {
    TWELVE(STEP)
    __asm__ volatile("" ::: "memory"); /* one iteration is one round of the chains */
  }
  __m512 total = _mm512_setzero_ps();
  TWELVE(SUM)
  *sink += _mm512_reduce_add_ps(total);
#undef DECL
#undef STEP
#undef SUM
  return (double)iters * 12 * 16 * 2;
}

__attribute__((target("avx2,fma"))) static double fma_avx2(int64_t iters, float *sink) {
  __m256 m = _mm256_set1_ps(0.9999f), a = _mm256_set1_ps(1e-7f);
#define DECL(j) __m256 acc##j = _mm256_set1_ps((float)(j));
#define STEP(j) acc##j = _mm256_fmadd_ps(acc##j, m, a);
#define SUM(j) total = _mm256_add_ps(total, acc##j);
  TWELVE(DECL)
  for (int64_t i = 0; i < iters; i++) {
    TWELVE(STEP)
    __asm__ volatile("" ::: "memory");
  }
  __m256 total = _mm256_setzero_ps();
  TWELVE(SUM)
#undef DECL
#undef STEP
#undef SUM
  float v[8];
  _mm256_storeu_ps(v, total);
  for (int k = 0; k < 8; k++) *sink += v[k];
  return (double)iters * 12 * 8 * 2;
}

/* vdpbf16ps: per 32-bit lane, two bf16 products added to an fp32 sum: 4 flops a lane */
__attribute__((target("avx512f,avx512bf16"))) static double dot_bf16(int64_t iters, float *sink) {
  __m512bh x = (__m512bh)_mm512_set1_epi32(0x3f803f80), y = x; /* pairs of bf16 1.0 */
#define DECL(j) __m512 acc##j = _mm512_setzero_ps();
#define STEP(j) acc##j = _mm512_dpbf16_ps(acc##j, x, y);
#define SUM(j) total = _mm512_add_ps(total, acc##j);
  TWELVE(DECL)
  for (int64_t i = 0; i < iters; i++) {
    TWELVE(STEP)
    __asm__ volatile("" ::: "memory");
  }
  __m512 total = _mm512_setzero_ps();
  TWELVE(SUM)
#undef DECL
#undef STEP
#undef SUM
  *sink += _mm512_reduce_add_ps(total);
  return (double)iters * 12 * 16 * 4;
}
#endif

typedef double (*peak_kernel)(int64_t, float *);

typedef struct {
  peak_kernel k;
  int64_t iters;
  double flops;
  float sink;
  pthread_barrier_t *start;
} worker;

static void *run_worker(void *arg) {
  worker *w = arg;
  pthread_barrier_wait(w->start);
  w->flops = w->k(w->iters, &w->sink);
  return NULL;
}

/* GFLOP/s of kernel k on `threads` threads at once, the best of 3 runs of about
 * 0.2 s each (the iteration count calibrated on one thread first). */
static double measure(peak_kernel k, int threads) {
  float sink = 0;
  int64_t iters = 1 << 16;
  for (;;) { /* calibrate */
    double t0 = now_s();
    k(iters, &sink);
    double t = now_s() - t0;
    if (t > 0.05 || iters > ((int64_t)1 << 40)) {
      iters = (int64_t)((double)iters * 0.2 / (t > 0 ? t : 1e-3)) + 1;
      break;
    }
    iters *= 4;
  }
  double best = 0;
  for (int rep = 0; rep < 3; rep++) {
    worker w[PEAK_MAX_THREADS];
    pthread_t tid[PEAK_MAX_THREADS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
    for (int t = 0; t < threads; t++) {
      w[t] = (worker){k, iters, 0, 0, &start};
      pthread_create(&tid[t], NULL, run_worker, &w[t]);
    }
    pthread_barrier_wait(&start);
    double t0 = now_s(), flops = 0;
    for (int t = 0; t < threads; t++) {
      pthread_join(tid[t], NULL);
      flops += w[t].flops;
      sink += w[t].sink;
    }
    double gflops = flops / (now_s() - t0) / 1e9;
    if (gflops > best) best = gflops;
    pthread_barrier_destroy(&start);
  }
  if (sink == 12345.678f) best += 0; /* the sums are used */
  return best;
}

int peak_measure(peak_kind kind, int threads, double *gflops) {
  *gflops = 0;
  if (threads < 1 || threads > PEAK_MAX_THREADS) return 1;
#if X86
  __builtin_cpu_init();
  switch (kind) {
  case PEAK_FP32_AVX512:
    if (!__builtin_cpu_supports("avx512f")) return 1;
    *gflops = measure(fma_avx512, threads);
    return 0;
  case PEAK_FP32_AVX2:
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return 1;
    *gflops = measure(fma_avx2, threads);
    return 0;
  case PEAK_BF16_AVX512:
    if (!__builtin_cpu_supports("avx512bf16")) return 1;
    *gflops = measure(dot_bf16, threads);
    return 0;
  }
#endif
  (void)kind;
  return 1;
}

const char *peak_name(peak_kind kind) {
  switch (kind) {
  case PEAK_FP32_AVX512: return "fp32 FMA, AVX-512 (vfmadd231ps zmm)";
  case PEAK_FP32_AVX2: return "fp32 FMA, AVX2 (vfmadd231ps ymm)";
  case PEAK_BF16_AVX512: return "bf16 dot, AVX512_BF16 (vdpbf16ps zmm)";
  }
  return "?";
}

double peak_fp32(int threads) {
  double g = 0;
  if (peak_measure(PEAK_FP32_AVX512, threads, &g)) peak_measure(PEAK_FP32_AVX2, threads, &g);
  return g;
}
