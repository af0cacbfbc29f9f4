/* migc_bench.c: `migc bench` (see migc_bench.h). The JSON line's fields:
 *   parameters       trainable parameters (what the harness compares with the peer's)
 *   frontend_ms      parse, elaborate and passes
 *   compile_ms       codegen: lower + optimise + JIT (and lower_ms, opt_ms, jit_ms)
 *   first_step_unix  wall clock when the first step finished, seconds since the epoch
 *   steps_ms         each timed step, wall clock
 *   steps_cpu_ms     each timed step, CPU time of the process (all its threads): on a
 *                    machine shared with other jobs the wall clock includes waiting
 *                    for a core, this does not
 *   vmhwm_kb         peak resident memory (VmHWM) at the end
 *   first_losses     the scalar outputs of the first step (the losses): two runs of
 *                    one model on different GEMM kernels must agree on them closely
 *   blas_core        the kernels OpenBLAS chose (openblas_get_corename) */
#include "migc_bench.h"

#include "migc_model.h"
#include "migc_peak.h"
#include "migc_profile.h"

#include "runtime/runtime.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double cpu_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double unix_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long vmhwm_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = 0;
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, "VmHWM:", 6)) kb = strtol(line + 6, NULL, 10);
  if (f) fclose(f);
  return kb;
}

/* One batch of every input: latents and codes as migc train draws them for step 0,
 * real data uniform over the input's declared range (its values do not change the
 * work a step does). */
static int draw_inputs(model *md, const ir_func *f, ir_tensor *in, void **ptr) {
  for (int j = 0; j < f->ninputs; j++) {
    const ir_input *inp = &md->m->inputs[f->inputs[j]];
    in[j] = ir_tensor_alloc(inp->dtype, inp->shape);
    if (!in[j].data) return 1;
    ptr[j] = in[j].data;
    if (inp->kind == INPUT_DATA)
      latent_fill(in[j].data, shape_numel(inp->shape), 0, inp->a, inp->b, 1, 0, 0, 0);
    else
      model_fill(md, f->inputs[j], 1, RNG_STREAM_LATENT, 0, 0, in[j].data);
  }
  return 0;
}

int bench_run(const bench_options *o, diag_sink *d) {
  double t0 = mono_ms();
  model md;
  if (o->so && o->profile) {
    fprintf(stderr, "migc bench: --profile times JIT-compiled code; it does not apply to --so\n");
    return 2;
  }
  if (o->so ? model_open_so(&md, o->model, o->overrides, o->batch, o->so, d)
            : model_open(&md, o->model, o->overrides, o->batch, 1, false, false,
                         &(cg_options){.profile = o->profile}, d)) {
    if (!d->nerrors) fprintf(stderr, "migc bench: %s\n", md.err);
    model_close(&md);
    return 1;
  }
  cg_stats cs = md.prog ? cg_get_stats(md.prog) : (cg_stats){0};
  double frontend_ms = mono_ms() - t0 - cs.total_ms;
  model_init(&md, 1);
  const ir_func *f = ir_find_func(md.m, "train_step");
  ir_tensor *in = calloc((size_t)f->ninputs + 1, sizeof *in);
  void **ip = calloc((size_t)f->ninputs + 1, sizeof *ip);
  void **op = calloc((size_t)f->noutputs + 1, sizeof *op);
  ir_tensor *out = calloc((size_t)f->noutputs + 1, sizeof *out);
  int64_t cap = o->steps > 0 ? o->steps : 1;
  double *ms = calloc((size_t)cap, sizeof *ms), *cpu = calloc((size_t)cap, sizeof *cpu);
  int st = !in || !ip || !op || !out || !ms || !cpu || draw_inputs(&md, f, in, ip);
  for (int k = 0; k < f->noutputs && !st; k++) {
    const ir_node *n = &f->nodes[f->outputs[k].node];
    out[k] = ir_tensor_alloc(n->dtype, n->shape);
    op[k] = out[k].data;
    st = !op[k];
  }
  if (st) fprintf(stderr, "migc bench: out of memory\n");
  double first = 0, losses[16];
  int nlosses = 0;
  for (int64_t i = 0; i < (o->warmup > 0 ? o->warmup : 1) && !st; i++) {
    st = model_call(&md, f, ip, op);
    if (first) continue;
    first = unix_seconds();
    for (int k = 0; k < f->noutputs && nlosses < 16; k++)
      if (out[k].dtype == IR_F32 && shape_numel(out[k].shape) == 1)
        losses[nlosses++] = ((const float *)out[k].data)[0];
  }
  cg_profile *prof = md.prog ? cg_get_profile(md.prog) : NULL;
  if (prof) cg_profile_reset(prof); /* the timed steps only */
  int64_t n = 0;
  double start = mono_ms();
  while (!st && n < cap && (n < 3 || mono_ms() - start < o->seconds * 1e3)) {
    double a = mono_ms(), ca = cpu_ms();
    st = model_call(&md, f, ip, op);
    cpu[n] = cpu_ms() - ca;
    ms[n++] = mono_ms() - a;
  }
  if (st && md.err[0]) fprintf(stderr, "migc bench: %s\n", md.err);
  if (!st) {
    int64_t params = 0;
    for (int v = 0; v < md.m->nvars; v++)
      if (md.m->vars[v].kind == VAR_PARAM) params += shape_numel(md.m->vars[v].shape);
    printf("{\"side\": \"%s\", \"model\": \"%s\", \"batch\": %lld, \"threads\": %d, "
           "\"parameters\": %lld, \"frontend_ms\": %.3f, \"compile_ms\": %.3f, "
           "\"lower_ms\": %.3f, \"opt_ms\": %.3f, \"jit_ms\": %.3f, "
           "\"first_step_unix\": %.6f, \"steps_ms\": [",
           o->so ? "migc-so" : "migc", md.m->name, (long long)md.m->batch, o->threads, (long long)params, frontend_ms,
           cs.total_ms, cs.lower_ms, cs.opt_ms, cs.jit_ms, first);
    double total = 0;
    for (int64_t i = 0; i < n; i++) printf("%s%.4f", i ? ", " : "", ms[i]), total += ms[i];
    printf("], \"steps_cpu_ms\": [");
    for (int64_t i = 0; i < n; i++) printf("%s%.4f", i ? ", " : "", cpu[i]);
    printf("], \"vmhwm_kb\": %ld, \"first_losses\": [", vmhwm_kb());
    for (int k = 0; k < nlosses; k++) printf("%s%.9g", k ? ", " : "", losses[k]);
    printf("], \"blas_core\": \"%s\"", openblas_get_corename());
    if (prof) {
      profile_summary s = profile_report(prof, "train_step", n, total, stderr);
      printf(", \"profiled_step_ms\": %.4f, \"kernel_ms\": %.4f, \"gemm_ms\": %.4f, "
             "\"attainable_ms\": %.4f, \"split_alone_ms\": %.4f, \"gemm_calls\": %d, "
             "\"gemm_shapes\": %d, \"gemm_gflop\": %.9g, \"peak_gflops\": %.9g, "
             "\"gemm_bound_ms\": %.9g",
             s.step_ms, s.kernel_ms, s.gemm_ms, s.attainable_ms, s.split_alone_ms, s.gemm_calls,
             s.gemm_shapes, s.gemm_gflop, s.peak_gflops, s.gemm_bound_ms);
    }
    printf("}\n");
  }
  for (int j = 0; in && j < f->ninputs; j++) ir_tensor_free(&in[j]);
  for (int k = 0; out && k < f->noutputs; k++) ir_tensor_free(&out[k]);
  free(in), free(ip), free(op), free(out), free(ms), free(cpu);
  model_close(&md);
  return st ? 1 : 0;
}

/* The CPU's name as the kernel reports it, for the table's heading. */
static void cpu_model(char *buf, size_t n) {
  snprintf(buf, n, "an unknown CPU");
  FILE *fp = fopen("/proc/cpuinfo", "r");
  char line[512];
  while (fp && fgets(line, sizeof line, fp))
    if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
      char *v = strchr(line, ':') + 1;
      v += strspn(v, " \t");
      v[strcspn(v, "\n")] = '\0';
      snprintf(buf, n, "%s", v);
      break;
    }
  if (fp) fclose(fp);
}

int bench_peak(int threads) {
  if (threads < 1) threads = 1;
  if (threads > PEAK_MAX_THREADS) threads = PEAK_MAX_THREADS;
  char cpu[256];
  cpu_model(cpu, sizeof cpu);
  printf("Arithmetic peaks of %s, measured by migc bench --peak (GFLOP/s; registers only,\n"
         "12 independent chains a thread; 1 to %d threads at once):\n\n| |", cpu, threads);
  for (int t = 1; t <= threads; t++) printf(" %d thread%s |", t, t == 1 ? "" : "s");
  printf("\n|---|");
  for (int t = 1; t <= threads; t++) printf("---|");
  printf("\n");
  for (int k = PEAK_FP32_AVX512; k <= PEAK_BF16_AVX512; k++) {
    printf("| %s |", peak_name((peak_kind)k));
    for (int t = 1; t <= threads; t++) {
      double g;
      if (peak_measure((peak_kind)k, t, &g)) printf(" not on this CPU |");
      else printf(" %.1f |", g);
      fflush(stdout);
    }
    printf("\n");
  }
  return 0;
}
