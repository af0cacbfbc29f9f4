/* migc_bench.h: `migc bench`, the migc side of bench/run.sh. It compiles a model, runs
 * its training step on one fixed batch (drawn once: the step is timed, not data
 * loading), and prints one JSON line that bench/peer/peer.py prints too for PyTorch. */
#ifndef MIGC_CLI_BENCH_H
#define MIGC_CLI_BENCH_H

#include "frontend/frontend.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
  const char *model;                /* model file */
  const const_overrides *overrides;
  int64_t batch;                    /* 0: the model's */
  int threads;                      /* as set by model_set_threads */
  int64_t warmup;                   /* untimed steps first (at least 1) */
  int64_t steps;                    /* at most this many timed steps */
  double seconds;                   /* time steps until this long has passed (at least 3) */
  bool profile;                     /* print the per-kernel profile (stderr) */
  bool peak;                        /* --peak: the machine's peaks, no model */
  const char *so;                   /* run the step from this shared object (migc
                                       compile) instead of the JIT, or NULL */
} bench_options;

/* Returns the exit status: 0, or 1 (the model's errors in d, others on stderr). */
int bench_run(const bench_options *o, diag_sink *d);
/* migc bench --peak: a Markdown table of this machine's arithmetic peaks (fp32 FMA
 * with AVX-512 and AVX2, bf16 dot products) on 1 to `threads` threads. */
int bench_peak(int threads);

#endif
