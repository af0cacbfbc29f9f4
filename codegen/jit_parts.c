/* jit_parts.c: the JIT's machine code made on several threads at once.
 *
 * Optimising and compiling the lowered module takes most of a model's start-up
 * (infogan_mnist: about 0.25 s of passes and 0.35 s of machine code on one core), and
 * it is mostly independent work: hundreds of small kernel functions. An LLVMContext
 * is not thread-safe, so the module is written to bitcode once and each part reads
 * it into a context of its own, keeps the functions it was given and turns the
 * others into declarations (or drops them), then optimises and emits an object file
 * in memory with its own target machine. jit.c links the objects.
 *
 * The parts: part 0 holds every entry function (they call the kernels) and kernels
 * as the balance needs. The other functions go in groups that keep together whatever
 * refers to each other (a kernel and the parallel parts of its loops, a part and the
 * kernel it runs: parallel.c), so that only entries call across parts; the groups,
 * largest first (by instruction count), go to the least loaded part. An entry's
 * instructions count half: they are calls and checks in one block, and counted in
 * full they left part 0 with a third less work than part 1 for infogan_mnist (CPU
 * time of each part measured). A function outside part 0 may be called from another
 * object, so it becomes external; inside part 0 it stays internal. Splitting never
 * changes a value: the pipeline has no fast-math, so what crosses a module boundary
 * (inlining is off for kernels anyway) can change code, never results. */
#include "codegen/cg_internal.h"

#include <llvm-c/BitReader.h>
#include <llvm-c/BitWriter.h>
#include <llvm-c/TargetMachine.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

typedef struct {
  LLVMMemoryBufferRef bc; /* the lowered module (shared, read only) */
  int part, level, nfn;
  char **names;         /* the module's defined functions */
  const int *part_of;   /* which part defines each */
  LLVMMemoryBufferRef obj; /* the object file made */
  double opt_ms;
  char err[512];
} part_job;

static void keep_part(LLVMModuleRef mod, const part_job *j) {
  for (int k = 0; k < j->nfn; k++) {
    LLVMValueRef f = LLVMGetNamedFunction(mod, j->names[k]);
    if (!f) continue;
    if (j->part_of[k] == j->part) {
      if (j->part) LLVMSetLinkage(f, LLVMExternalLinkage);
      continue;
    }
    if (LLVMGetFirstUse(f)) { /* called from here: a declaration of the same name */
      LLVMValueRef d = LLVMAddFunction(mod, "", LLVMGlobalGetValueType(f));
      LLVMReplaceAllUsesWith(f, d);
      LLVMDeleteFunction(f);
      LLVMSetValueName2(d, j->names[k], strlen(j->names[k]));
    } else {
      LLVMDeleteFunction(f);
    }
  }
}

static void *run_part(void *arg) {
  part_job *j = arg;
  LLVMContextRef ctx = LLVMContextCreate();
  LLVMModuleRef mod = NULL;
  LLVMTargetMachineRef tm = NULL;
  if (LLVMParseBitcodeInContext2(ctx, j->bc, &mod)) {
    snprintf(j->err, sizeof j->err, "part %d: cannot read the module's bitcode back", j->part);
    goto done;
  }
  keep_part(mod, j);
  tm = cg_host_machine(j->level, false, NULL, NULL, NULL, j->err, sizeof j->err);
  if (!tm) goto done;
  double t0 = now_ms();
  if (cg_optimize(mod, tm, j->level, NULL, NULL, j->err, sizeof j->err)) goto done;
  j->opt_ms = now_ms() - t0;
  char *msg = NULL;
  if (LLVMTargetMachineEmitToMemoryBuffer(tm, mod, LLVMObjectFile, &msg, &j->obj)) {
    snprintf(j->err, sizeof j->err, "part %d: machine code: %s", j->part, msg ? msg : "");
    j->obj = NULL;
  }
  LLVMDisposeMessage(msg);
done:
  if (tm) LLVMDisposeTargetMachine(tm);
  if (mod) LLVMDisposeModule(mod);
  LLVMContextDispose(ctx);
  return NULL;
}

static long instructions(LLVMValueRef f) {
  long n = 0;
  for (LLVMBasicBlockRef b = LLVMGetFirstBasicBlock(f); b; b = LLVMGetNextBasicBlock(b))
    for (LLVMValueRef i = LLVMGetFirstInstruction(b); i; i = LLVMGetNextInstruction(i)) n++;
  return n;
}

typedef struct {
  long size;
  int fn;
} sized_fn;

static int larger_first(const void *a, const void *b) {
  const sized_fn *x = a, *y = b;
  if (x->size != y->size) return x->size > y->size ? -1 : 1;
  return x->fn - y->fn;
}

/* Union-find over the module's defined functions: a function and the internal
 * functions it references (a kernel's parallel parts, a part's kernel) stay together,
 * so only the entries call across parts. */
static int root(int *up, int a) {
  while (up[a] != a) a = up[a] = up[up[a]];
  return a;
}

static int index_of(LLVMValueRef *fns, int nfn, LLVMValueRef f) {
  for (int k = 0; k < nfn; k++)
    if (fns[k] == f) return k;
  return -1;
}

/* joins g with every non-entry function whose code refers to v (g itself, or a
 * constant expression around it) */
static void join_users(LLVMValueRef v, int g, LLVMValueRef *fns, const bool *entry, int nfn,
                       int *up) {
  for (LLVMUseRef u = LLVMGetFirstUse(v); u; u = LLVMGetNextUse(u)) {
    LLVMValueRef user = LLVMGetUser(u);
    if (LLVMIsAInstruction(user)) {
      int k = index_of(fns, nfn, LLVMGetBasicBlockParent(LLVMGetInstructionParent(user)));
      if (k >= 0 && !entry[k]) up[root(up, k)] = root(up, g);
    } else if (LLVMIsAConstantExpr(user)) {
      join_users(user, g, fns, entry, nfn, up);
    }
  }
}

int cg_compile_parts(LLVMModuleRef mod, int level, int nparts, LLVMMemoryBufferRef *objs,
                     double *opt_ms, char *err, size_t errn) {
  int nfn = 0;
  for (LLVMValueRef f = LLVMGetFirstFunction(mod); f; f = LLVMGetNextFunction(f))
    if (LLVMGetFirstBasicBlock(f)) nfn++;
  char **names = calloc((size_t)nfn + 1, sizeof *names);
  int *part_of = calloc((size_t)nfn + 1, sizeof *part_of);
  int *up = calloc((size_t)nfn + 1, sizeof *up);
  bool *entry = calloc((size_t)nfn + 1, sizeof *entry);
  LLVMValueRef *fns = calloc((size_t)nfn + 1, sizeof *fns);
  sized_fn *group = calloc((size_t)nfn + 1, sizeof *group); /* per root: its size */
  long *load = calloc((size_t)nparts, sizeof *load);
  part_job *jobs = calloc((size_t)nparts, sizeof *jobs);
  pthread_t *th = calloc((size_t)nparts, sizeof *th);
  bool *started = calloc((size_t)nparts, sizeof *started);
  int rc = 1, k = 0;
  LLVMMemoryBufferRef bc = NULL;
  if (!names || !part_of || !up || !entry || !fns || !group || !load || !jobs || !th ||
      !started) {
    snprintf(err, errn, "out of memory");
    goto done;
  }
  for (LLVMValueRef f = LLVMGetFirstFunction(mod); f; f = LLVMGetNextFunction(f)) {
    if (!LLVMGetFirstBasicBlock(f)) continue;
    size_t len;
    if (!(names[k] = strdup(LLVMGetValueName2(f, &len)))) {
      snprintf(err, errn, "out of memory");
      goto done;
    }
    fns[k] = f, up[k] = k;
    entry[k] = LLVMGetLinkage(f) != LLVMInternalLinkage;
    group[k] = (sized_fn){0, k};
    k++;
  }
  for (k = 0; k < nfn; k++)
    if (!entry[k]) join_users(fns[k], k, fns, entry, nfn, up);
  for (k = 0; k < nfn; k++) {
    long size = instructions(fns[k]);
    if (entry[k]) /* straight-line calls, cheaper per instruction than loops */
      load[0] += size / 2;
    else
      group[root(up, k)].size += size;
  }
  qsort(group, (size_t)nfn, sizeof *group, larger_first); /* empty groups last */
  int *part_of_root = part_of; /* filled per root first, then per function */
  for (int q = 0; q < nfn && group[q].size > 0; q++) {
    int best = 0;
    for (int p = 1; p < nparts; p++)
      if (load[p] < load[best]) best = p;
    part_of_root[group[q].fn] = best;
    load[best] += group[q].size;
  }
  for (k = 0; k < nfn; k++) /* roots are their own roots: read theirs before overwriting */
    if (!entry[k] && root(up, k) != k) part_of[k] = part_of_root[root(up, k)];
  for (k = 0; k < nfn; k++)
    if (entry[k]) part_of[k] = 0;
  bc = LLVMWriteBitcodeToMemoryBuffer(mod);
  if (!bc) {
    snprintf(err, errn, "cannot write the module's bitcode");
    goto done;
  }
  for (int p = 0; p < nparts; p++)
    jobs[p] = (part_job){.bc = bc, .part = p, .level = level, .nfn = nfn, .names = names,
                         .part_of = part_of};
  /* part 0 on this thread; a part whose thread cannot start runs here too */
  for (int p = 1; p < nparts; p++) started[p] = !pthread_create(&th[p], NULL, run_part, &jobs[p]);
  run_part(&jobs[0]);
  for (int p = 1; p < nparts; p++) {
    if (started[p]) pthread_join(th[p], NULL);
    else run_part(&jobs[p]);
  }
  rc = 0;
  *opt_ms = 0;
  for (int p = 0; p < nparts; p++) {
    if (jobs[p].opt_ms > *opt_ms) *opt_ms = jobs[p].opt_ms;
    if (!jobs[p].obj && !rc) {
      snprintf(err, errn, "%s", jobs[p].err);
      rc = 1;
    }
  }
  for (int p = 0; p < nparts; p++) {
    if (rc && jobs[p].obj) LLVMDisposeMemoryBuffer(jobs[p].obj);
    objs[p] = rc ? NULL : jobs[p].obj;
  }
done:
  if (bc) LLVMDisposeMemoryBuffer(bc);
  for (int q = 0; names && q < nfn; q++) free(names[q]);
  free(names), free(part_of), free(up), free(entry), free(fns), free(group), free(load);
  free(jobs), free(th), free(started);
  return rc;
}
