/* profile.c: per-kernel timing of native code (cg_options.profile).
 *
 * With profiling on, lower_kernel registers every kernel call site (cg_prof_site) and
 * brackets the call with cg_prof_enter / cg_prof_exit, which take the profile's
 * address as a constant; the JIT binds migc_rt_sgemm to cg_prof_sgemm, which times each
 * GEMM (the whole call, all its blocks on all threads), charges it to the kernel that
 * is running and counts its shape. A parallel kernel's time is the wall time of its
 * whole call, as the hooks are on the calling thread. Nothing is
 * emitted or bound without the option, and a shared object never has it. */
#include "codegen/cg_internal.h"
#include "runtime/runtime.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static cg_profile *running; /* the profile whose kernel is running (for the GEMM hook) */

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

cg_profile *cg_profile_new(void) { return calloc(1, sizeof(cg_profile)); }

void cg_profile_free(cg_profile *p) {
  if (!p) return;
  free(p->sites);
  free(p->gemms);
  free(p);
}

void cg_profile_reset(cg_profile *p) {
  for (int i = 0; i < p->nsites; i++) {
    cg_prof_site *s = &p->sites[i];
    s->calls = 0, s->ms = s->gemm_ms = s->gemm_flops = 0;
  }
  p->ngemms = 0;
}

static int64_t value_bytes(const ir_node *n) { return shape_numel(n->shape) * 4; }

static int add_site(cg_ctx *c, int id, const char *op, const char *kernel, int64_t numel,
                    int64_t bytes) {
  cg_profile *p = c->prof;
  if (p->nsites == p->cap) {
    int nc = p->cap ? p->cap * 2 : 256;
    cg_prof_site *ns = realloc(p->sites, (size_t)nc * sizeof *ns);
    if (!ns) return -1;
    p->sites = ns, p->cap = nc;
  }
  cg_prof_site *s = &p->sites[p->nsites];
  memset(s, 0, sizeof *s);
  snprintf(s->func, sizeof s->func, "%s", c->f->name);
  snprintf(s->kernel, sizeof s->kernel, "%s", kernel);
  s->op = op;
  s->node = id;
  s->numel = numel;
  s->bytes = bytes;
  cg_prof_emit(c, "cg_prof_enter", p->nsites);
  return p->nsites++;
}

/* Registers node id's call of kernel `kernel` and emits the enter hook before it. */
int cg_prof_site_begin(cg_ctx *c, int id, const ir_node *n, const char *kernel) {
  int64_t extra = cg_lowerings[n->op].extra ? cg_lowerings[n->op].extra(c->f, n) : 0;
  /* operands read, value written, extra scratch (im2col columns) written and read */
  int64_t bytes = value_bytes(n) + 2 * (extra > 0 ? extra : 0);
  for (int j = 0; j < n->nin; j++) bytes += value_bytes(&c->f->nodes[ir_operand(n, j)]);
  return add_site(c, id, ir_ops[n->op].name, kernel, shape_numel(n->shape), bytes);
}

int cg_prof_site_fused(cg_ctx *c, int id, const char *kernel, int64_t count, int64_t bytes) {
  return add_site(c, id, "fused", kernel, count, bytes);
}

void cg_prof_emit(cg_ctx *c, const char *hook, int site) {
  LLVMTypeRef params[2] = {c->pi8, c->i32};
  LLVMTypeRef fty = LLVMFunctionType(c->void_t, params, 2, 0);
  LLVMValueRef args[2] = {
      LLVMConstIntToPtr(cg_i64(c, (int64_t)(uintptr_t)c->prof), c->pi8),
      cg_i32c(c, site)};
  LLVMBuildCall2(c->b, fty, cg_extern(c, hook, fty), args, 2, "");
}

void cg_prof_enter(cg_profile *p, int32_t site) {
  running = p->paused ? NULL : p;
  p->current = site;
  p->t0 = now_ms();
}

void cg_prof_exit(cg_profile *p, int32_t site) {
  if (p->paused) return;
  cg_prof_site *s = &p->sites[site];
  s->ms += now_ms() - p->t0;
  s->calls++;
  p->current = -1;
}

static void count_gemm(cg_profile *p, const cg_prof_gemm *g, double ms) {
  for (int i = 0; i < p->ngemms; i++) {
    cg_prof_gemm *h = &p->gemms[i];
    if (h->ta == g->ta && h->tb == g->tb && h->M == g->M && h->N == g->N && h->K == g->K &&
        h->lda == g->lda && h->ldb == g->ldb && h->ldc == g->ldc && h->beta == g->beta) {
      h->calls++, h->ms += ms;
      return;
    }
  }
  if (p->ngemms == p->gcap) {
    int nc = p->gcap ? p->gcap * 2 : 64;
    cg_prof_gemm *ng = realloc(p->gemms, (size_t)nc * sizeof *ng);
    if (!ng) return;
    p->gemms = ng, p->gcap = nc;
  }
  cg_prof_gemm *h = &p->gemms[p->ngemms++];
  *h = *g;
  h->calls = 1, h->ms = ms;
}

void cg_prof_sgemm(int order, int ta, int tb, int M, int N, int K, float alpha, const float *A,
                   int lda, const float *B, int ldb, float beta, float *C, int ldc) {
  double t0 = now_ms();
  migc_rt_sgemm(order, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  double ms = now_ms() - t0;
  cg_profile *p = running;
  if (!p) return;
  if (p->current >= 0) {
    cg_prof_site *s = &p->sites[p->current];
    s->gemm_ms += ms;
    s->gemm_flops += 2.0 * M * N * K;
  }
  cg_prof_gemm g = {ta == CblasTrans, tb == CblasTrans, M, N, K, lda, ldb, ldc, beta != 0, 0, 0};
  count_gemm(p, &g, ms);
}
