/* migc_peak.h: this machine's measured arithmetic peaks (`migc bench --peak`, and the
 * profile's GEMM-bound line): what the FMA and bf16 dot-product units deliver on
 * registers alone, per vector width and thread count. A ceiling to measure GEMMs
 * against, not a promise: real GEMMs also load and store. */
#ifndef MIGC_CLI_PEAK_H
#define MIGC_CLI_PEAK_H

enum { PEAK_MAX_THREADS = 64 };

typedef enum { PEAK_FP32_AVX512, PEAK_FP32_AVX2, PEAK_BF16_AVX512 } peak_kind;

/* GFLOP/s of `kind` on `threads` threads running at once (each its own chains), into
 * *gflops: 0, or 1 where this CPU lacks the instructions (or threads is out of range).
 * Takes about 0.8 s. */
int peak_measure(peak_kind kind, int threads, double *gflops);
const char *peak_name(peak_kind kind);
/* The fp32 FMA peak of the widest vectors this CPU has (AVX-512, else AVX2; 0 if
 * neither) on `threads` threads. */
double peak_fp32(int threads);

#endif
