/* migc_profile.h: the report of `migc train --profile` and `migc bench --profile`:
 * where one training step's time goes, kernel by kernel, and how far the step is from
 * the attainable time, the sum over its GEMMs of what OpenBLAS takes for each shape
 * alone on its own threads (measured here, on this machine, with the threads in use),
 * and from the GEMM-bound time, the step's GEMM work at the machine's measured fp32
 * peak (migc_peak.h). */
#ifndef MIGC_CLI_PROFILE_H
#define MIGC_CLI_PROFILE_H

#include "codegen/codegen.h"

#include <stdio.h>

typedef struct {
  double step_ms;       /* mean wall time of a profiled step */
  double kernel_ms;     /* of which inside kernels */
  double gemm_ms;       /* of which inside cblas_sgemm */
  double attainable_ms; /* the step's GEMMs, each shape timed alone on OpenBLAS's threads */
  double split_alone_ms; /* the same, each called as the step calls it (migc_rt_sgemm) */
  double gemm_gflop;    /* the step's GEMM work: 2MNK summed over its calls, in GFLOP */
  double peak_gflops;   /* this machine's measured fp32 FMA peak on the threads in use */
  double gemm_bound_ms; /* gemm_gflop at that peak: no GEMM code can beat it */
  int gemm_calls, gemm_shapes;
} profile_summary;

/* Summarises prof, gathered over `steps` steps of function `func` that took step_ms
 * in all, timing each GEMM shape alone; prints the report to out unless out is NULL. */
profile_summary profile_report(const cg_profile *prof, const char *func, int64_t steps,
                               double step_ms, FILE *out);

#endif
