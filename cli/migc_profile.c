/* migc_profile.c: see migc_profile.h. Per kernel (the LLVM function a node calls;
 * identical nodes share one), per step: time, share of the step, calls, time in
 * GEMM, bytes moved (operands read + value written + extra scratch written and read:
 * a lower bound of the memory traffic), GB/s, and GFLOP/s (2MNK per GEMM; one flop
 * per element of the value for kernels without a GEMM, a lower bound). */
#include "migc_profile.h"

#include "migc_peak.h"

#include "runtime/runtime.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

void openblas_set_num_threads(int n);

/* What one call of this GEMM shape takes alone: the median of 5 timings, each of
 * enough back-to-back calls to last about a millisecond, after a warm-up call. Timed
 * two ways on the runtime's threads: as the step calls it (migc_rt_sgemm: blocks split
 * over the pool, OpenBLAS on one thread each), into split_ms, and as one cblas_sgemm
 * on OpenBLAS's own threads, into blas_ms: the attainable time is OpenBLAS's. */
static void gemm_alone_ms(const cg_prof_gemm *g, double *split_ms, double *blas_ms) {
  *split_ms = *blas_ms = 0;
  size_t na = (size_t)(g->ta ? g->K : g->M) * (size_t)g->lda;
  size_t nb = (size_t)(g->tb ? g->N : g->K) * (size_t)g->ldb;
  size_t nc = (size_t)g->M * (size_t)g->ldc;
  float *a = malloc((na + 1) * sizeof *a), *b = malloc((nb + 1) * sizeof *b);
  float *c = calloc(nc + 1, sizeof *c);
  if (!a || !b || !c) {
    free(a), free(b), free(c);
    return;
  }
  for (size_t i = 0; i < na; i++) a[i] = (float)((i * 7919) % 101) / 101.0f - 0.5f;
  for (size_t i = 0; i < nb; i++) b[i] = (float)((i * 104729) % 97) / 97.0f - 0.5f;
  int ta = g->ta ? CblasTrans : CblasNoTrans, tb = g->tb ? CblasTrans : CblasNoTrans;
  float beta = g->beta ? 1.0f : 0.0f;
  for (int way = 0; way < 2; way++) {
    if (way == 1) openblas_set_num_threads(migc_rt_threads());
#define CALL                                                                            \
  (way ? cblas_sgemm(CblasRowMajor, ta, tb, g->M, g->N, g->K, 1.0f, a, g->lda, b, g->ldb, \
                     beta, c, g->ldc)                                                      \
       : migc_rt_sgemm(CblasRowMajor, ta, tb, g->M, g->N, g->K, 1.0f, a, g->lda, b,      \
                       g->ldb, beta, c, g->ldc))
    double t0 = now_ms();
    CALL;
    double one = now_ms() - t0;
    int inner = one > 0 ? (int)(1.0 / one) + 1 : 1000;
    if (inner > 1000) inner = 1000;
    double t[5];
    for (int r = 0; r < 5; r++) {
      t0 = now_ms();
      for (int i = 0; i < inner; i++) CALL;
      t[r] = (now_ms() - t0) / inner;
    }
#undef CALL
    qsort(t, 5, sizeof *t, cmp_double);
    *(way ? blas_ms : split_ms) = t[2];
  }
  openblas_set_num_threads(1); /* the pool's GEMMs each run on one OpenBLAS thread */
  free(a), free(b), free(c);
}

typedef struct {
  const cg_prof_site *first; /* the first site calling this kernel */
  int64_t calls, bytes;
  double ms, gemm_ms, flops;
} kernel_row;

static int cmp_rows(const void *a, const void *b) {
  double x = ((const kernel_row *)a)->ms, y = ((const kernel_row *)b)->ms;
  return x > y ? -1 : x < y;
}

typedef struct {
  const cg_prof_gemm *g;
  double split_ms, blas_ms; /* one call alone, as the step calls it and on OpenBLAS's threads */
} gemm_row;

static int cmp_gemms(const void *a, const void *b) {
  double x = ((const gemm_row *)a)->g->ms, y = ((const gemm_row *)b)->g->ms;
  return x > y ? -1 : x < y;
}

profile_summary profile_report(const cg_profile *prof, const char *func, int64_t steps,
                               double step_ms, FILE *out) {
  profile_summary s = {0};
  double per = steps > 0 ? 1.0 / (double)steps : 0;
  s.step_ms = step_ms * per;
  kernel_row *rows = calloc((size_t)prof->nsites + 1, sizeof *rows);
  gemm_row *gr = calloc((size_t)prof->ngemms + 1, sizeof *gr);
  if (!rows || !gr) {
    free(rows), free(gr);
    return s;
  }
  int nrows = 0;
  for (int i = 0; i < prof->nsites; i++) {
    const cg_prof_site *site = &prof->sites[i];
    if (strcmp(site->func, func) || !site->calls) continue;
    int r = 0;
    while (r < nrows && strcmp(rows[r].first->kernel, site->kernel)) r++;
    if (r == nrows) rows[nrows++].first = site;
    rows[r].calls += site->calls;
    rows[r].bytes += site->bytes * site->calls;
    rows[r].ms += site->ms;
    rows[r].gemm_ms += site->gemm_ms;
    rows[r].flops += site->gemm_flops > 0 ? site->gemm_flops : (double)(site->numel * site->calls);
    s.kernel_ms += site->ms * per;
    s.gemm_ms += site->gemm_ms * per;
  }
  qsort(rows, (size_t)nrows, sizeof *rows, cmp_rows);
  /* GEMM shapes: this function's steps only are profiled between resets */
  for (int i = 0; i < prof->ngemms; i++) {
    gr[i].g = &prof->gemms[i];
    gemm_alone_ms(&prof->gemms[i], &gr[i].split_ms, &gr[i].blas_ms);
    s.attainable_ms += gr[i].blas_ms * (double)prof->gemms[i].calls * per;
    s.split_alone_ms += gr[i].split_ms * (double)prof->gemms[i].calls * per;
    s.gemm_calls += (int)prof->gemms[i].calls;
  }
  for (int i = 0; i < prof->ngemms; i++)
    s.gemm_gflop += 2.0 * prof->gemms[i].M * prof->gemms[i].N * prof->gemms[i].K *
                    (double)prof->gemms[i].calls * per / 1e9;
  s.peak_gflops = peak_fp32(migc_rt_threads() < PEAK_MAX_THREADS ? migc_rt_threads() : 1);
  s.gemm_bound_ms = s.peak_gflops > 0 ? 1e3 * s.gemm_gflop / s.peak_gflops : 0;
  s.gemm_calls = (int)((double)s.gemm_calls * per + 0.5);
  s.gemm_shapes = prof->ngemms;
  qsort(gr, (size_t)prof->ngemms, sizeof *gr, cmp_gemms);
  if (out) {
    fprintf(out, "migc profile: %s, mean of %lld step%s, %d thread%s\n", func,
            (long long)steps, steps == 1 ? "" : "s", migc_rt_threads(),
            migc_rt_threads() == 1 ? "" : "s");
    fprintf(out, "  step %.3f ms: in kernels %.3f ms (%.0f%%), in GEMM %.3f ms (%.0f%% of the step)\n",
            s.step_ms, s.kernel_ms, 100 * s.kernel_ms / s.step_ms, s.gemm_ms,
            100 * s.gemm_ms / s.step_ms);
    fprintf(out, "  attainable %.3f ms: the step's %d GEMM calls (%d shapes), each shape timed "
                 "alone on OpenBLAS's %d thread%s; step / attainable = %.2f\n",
            s.attainable_ms, s.gemm_calls, s.gemm_shapes, migc_rt_threads(),
            migc_rt_threads() == 1 ? "" : "s", s.step_ms / s.attainable_ms);
    fprintf(out, "  the same calls alone as the step makes them (split over migc's threads): "
                 "%.3f ms\n", s.split_alone_ms);
    if (s.peak_gflops > 0)
      fprintf(out, "  GEMM-bound %.3f ms: the step's %.2f GFLOP of GEMM at this machine's "
                   "measured fp32 FMA peak, %.1f GFLOP/s on %d thread%s (migc bench --peak); "
                   "step / GEMM-bound = %.2f\n", s.gemm_bound_ms, s.gemm_gflop, s.peak_gflops,
              migc_rt_threads(), migc_rt_threads() == 1 ? "" : "s", s.step_ms / s.gemm_bound_ms);
    fputc('\n', out);
    fprintf(out, "%9s %6s %6s %9s %9s %7s %8s  %s\n", "ms/step", "%", "calls", "GEMM ms",
            "MB/step", "GB/s", "GFLOP/s", "kernel (op, value elements)");
    double rest = 0;
    int shown = 0;
    for (int r = 0; r < nrows; r++) {
      double ms = rows[r].ms * per;
      if (shown >= 30) {
        rest += ms;
        continue;
      }
      shown++;
      double sec = rows[r].ms / 1e3;
      fprintf(out, "%9.3f %6.1f %6.0f %9.3f %9.2f %7.2f %8.2f  %s (%s, %lld)\n", ms,
              100 * ms / s.step_ms, (double)rows[r].calls * per, rows[r].gemm_ms * per,
              (double)rows[r].bytes * per / 1e6, sec > 0 ? (double)rows[r].bytes / sec / 1e9 : 0,
              sec > 0 ? rows[r].flops / sec / 1e9 : 0, rows[r].first->kernel, rows[r].first->op,
              (long long)rows[r].first->numel);
    }
    if (nrows > shown)
      fprintf(out, "%9.3f %6.1f  ... %d more kernels\n", rest, 100 * rest / s.step_ms,
              nrows - shown);
    fprintf(out, "\nGEMM shapes by time in the step (per step; alone: as the step calls them, "
                 "and on OpenBLAS's threads; GFLOP/s and %% of peak: OpenBLAS's):\n"
                 "%6s %9s %9s %9s %8s %8s %6s  %s\n",
            "calls", "step ms", "alone ms", "OpenBLAS", "step/alone", "GFLOP/s", "%peak",
            "shape");
    for (int i = 0; i < prof->ngemms; i++) {
      const cg_prof_gemm *g = gr[i].g;
      double alone = gr[i].split_ms * (double)g->calls * per;
      double gf = gr[i].blas_ms > 0 ? 2.0 * g->M * g->N * g->K / gr[i].blas_ms / 1e6 : 0;
      fprintf(out, "%6.0f %9.3f %9.3f %9.3f %8.2f %8.1f %6.1f  M=%d N=%d K=%d %s%s%s\n",
              (double)g->calls * per, g->ms * per, alone, gr[i].blas_ms * (double)g->calls * per,
              alone > 0 ? g->ms * per / alone : 0, gf,
              s.peak_gflops > 0 ? 100 * gf / s.peak_gflops : 0, g->M, g->N, g->K,
              g->ta ? "A^T " : "", g->tb ? "B^T " : "", g->beta ? "+=" : "");
    }
  }
  free(rows), free(gr);
  return s;
}
