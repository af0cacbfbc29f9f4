/* jit.c: ORC LLJIT. The module cg_build optimised (target.c) is added to an LLJIT
 * built from the target machine it was optimised for (same CPU, features and
 * CodeGenOptLevel).
 *
 * The symbols generated code calls are defined to the JIT explicitly as absolute
 * symbols (the runtime's migc_rt_sgemm, migc_rt_parallel_for and rng_uniform, libm,
 * memcpy/memset that loop idioms become). No process-symbol generator: with
 * --as-needed the linker may drop a library from the executable's needed list, and
 * then such a generator would not find its symbols. A symbol missing from the table
 * fails the lookup loudly. */
#include "codegen/cg_internal.h"
#include "runtime/runtime.h"

#include <cblas.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct cg_jit {
  LLVMOrcLLJITRef jit;
};

static void take_error(LLVMErrorRef e, const char *what, char *err, size_t errn) {
  char *msg = LLVMGetErrorMessage(e);
  snprintf(err, errn, "%s: %s", what, msg);
  LLVMDisposeErrorMessage(msg);
}

void *cg_jit_new_context(LLVMContextRef *ctx) {
  LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
  *ctx = LLVMOrcThreadSafeContextGetContext(tsc);
  return tsc;
}

void cg_jit_dispose_context(void *tsc) { LLVMOrcDisposeThreadSafeContext(tsc); }

/* Every external symbol generated code may reference. */
typedef struct {
  const char *name;
  void *addr;
} jit_symbol;

static const jit_symbol *symbols(size_t *n, bool reference_gemm, bool profile) {
  static jit_symbol tab[] = {
      {"migc_rt_sgemm", NULL}, {"rng_uniform", NULL}, {"exp", NULL},    {"log", NULL},
      {"log1p", NULL},       {"tanh", NULL},        {"sqrt", NULL},   {"expf", NULL},
      {"logf", NULL},        {"log1pf", NULL},      {"tanhf", NULL},  {"sqrtf", NULL},
      {"memcpy", NULL},      {"memset", NULL},      {"memmove", NULL}, {"fmax", NULL},
      {"fabs", NULL},        {"collective_allreduce", NULL}, {"cg_prof_enter", NULL},
      {"cg_prof_exit", NULL}, {"migc_rt_parallel_for", NULL}, {"sin", NULL},
      {"cos", NULL},
  };
  /* addresses filled at run time: some are not constant expressions in C */
  tab[0].addr = reference_gemm ? (void *)(uintptr_t)&cg_reference_sgemm
                : profile      ? (void *)(uintptr_t)&cg_prof_sgemm
                               : (void *)(uintptr_t)&migc_rt_sgemm;
  tab[1].addr = (void *)(uintptr_t)&rng_uniform;
  tab[2].addr = (void *)(uintptr_t)&exp;
  tab[3].addr = (void *)(uintptr_t)&log;
  tab[4].addr = (void *)(uintptr_t)&log1p;
  tab[5].addr = (void *)(uintptr_t)&tanh;
  tab[6].addr = (void *)(uintptr_t)&sqrt;
  tab[7].addr = (void *)(uintptr_t)&expf;
  tab[8].addr = (void *)(uintptr_t)&logf;
  tab[9].addr = (void *)(uintptr_t)&log1pf;
  tab[10].addr = (void *)(uintptr_t)&tanhf;
  tab[11].addr = (void *)(uintptr_t)&sqrtf;
  tab[12].addr = (void *)(uintptr_t)&memcpy;
  tab[13].addr = (void *)(uintptr_t)&memset;
  tab[14].addr = (void *)(uintptr_t)&memmove;
  tab[15].addr = (void *)(uintptr_t)&fmax;
  tab[16].addr = (void *)(uintptr_t)&fabs;
  tab[17].addr = (void *)(uintptr_t)&collective_allreduce;
  tab[18].addr = (void *)(uintptr_t)&cg_prof_enter;
  tab[19].addr = (void *)(uintptr_t)&cg_prof_exit;
  tab[20].addr = (void *)(uintptr_t)&migc_rt_parallel_for;
  tab[21].addr = (void *)(uintptr_t)&sin;
  tab[22].addr = (void *)(uintptr_t)&cos;
  *n = sizeof tab / sizeof tab[0];
  return tab;
}

/* An LLJIT for tm's machine (the builder takes tm) with the runtime's symbols defined;
 * NULL with err set on failure. */
static cg_jit *jit_begin(LLVMTargetMachineRef tm, bool reference_gemm, bool profile, char *err,
                         size_t errn) {
  cg_jit *j = calloc(1, sizeof *j);
  if (!j) {
    snprintf(err, errn, "out of memory");
    LLVMDisposeTargetMachine(tm);
    return NULL;
  }
  /* the JIT's own target machine: the one the module was optimised for */
  LLVMOrcJITTargetMachineBuilderRef jtmb =
      LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm);
  LLVMOrcLLJITBuilderRef jb = LLVMOrcCreateLLJITBuilder();
  LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(jb, jtmb);
  LLVMErrorRef e = LLVMOrcCreateLLJIT(&j->jit, jb);
  if (e) {
    take_error(e, "creating the JIT", err, errn);
    free(j);
    return NULL;
  }
  LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(j->jit);
  size_t ns;
  const jit_symbol *tab = symbols(&ns, reference_gemm, profile);
  LLVMJITCSymbolMapPair *pairs = calloc(ns, sizeof *pairs);
  if (!pairs) {
    snprintf(err, errn, "out of memory");
    cg_jit_free(j);
    return NULL;
  }
  for (size_t k = 0; k < ns; k++) {
    pairs[k].Name = LLVMOrcLLJITMangleAndIntern(j->jit, tab[k].name);
    pairs[k].Sym.Address = (LLVMOrcJITTargetAddress)(uintptr_t)tab[k].addr;
    pairs[k].Sym.Flags.GenericFlags =
        LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable;
    pairs[k].Sym.Flags.TargetFlags = 0;
  }
  e = LLVMOrcJITDylibDefine(jd, LLVMOrcAbsoluteSymbols(pairs, ns));
  free(pairs);
  if (e) {
    take_error(e, "defining runtime symbols", err, errn);
    cg_jit_free(j);
    return NULL;
  }
  return j;
}

cg_jit *cg_jit_create(cg_module *cm, bool reference_gemm, bool profile, char *err,
                      size_t errn) {
  LLVMOrcThreadSafeContextRef tsc = cm->tsc;
  LLVMModuleRef mod = cm->mod;
  LLVMTargetMachineRef tm = cm->tm;
  cm->tsc = NULL, cm->mod = NULL, cm->tm = NULL; /* ours now, whatever happens */
  cg_jit *j = jit_begin(tm, reference_gemm, profile, err, errn);
  if (!j) {
    LLVMDisposeModule(mod);
    LLVMOrcDisposeThreadSafeContext(tsc);
    return NULL;
  }
  LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(mod, tsc);
  LLVMOrcDisposeThreadSafeContext(tsc); /* the module holds its own reference */
  LLVMErrorRef e = LLVMOrcLLJITAddLLVMIRModule(j->jit, LLVMOrcLLJITGetMainJITDylib(j->jit), tsm);
  if (e) {
    take_error(e, "adding the module", err, errn);
    LLVMOrcDisposeThreadSafeModule(tsm);
    cg_jit_free(j);
    return NULL;
  }
  return j;
}

cg_jit *cg_jit_create_objects(LLVMTargetMachineRef tm, LLVMMemoryBufferRef *objs, int n,
                              bool reference_gemm, bool profile, char *err, size_t errn) {
  cg_jit *j = jit_begin(tm, reference_gemm, profile, err, errn);
  int k = 0;
  for (; j && k < n; k++) {
    LLVMErrorRef e = LLVMOrcLLJITAddObjectFile(j->jit, LLVMOrcLLJITGetMainJITDylib(j->jit), objs[k]);
    objs[k] = NULL; /* the JIT's now, added or not */
    if (e) {
      take_error(e, "adding an object file", err, errn);
      cg_jit_free(j);
      j = NULL;
    }
  }
  for (; k < n; k++)
    if (objs[k]) LLVMDisposeMemoryBuffer(objs[k]), objs[k] = NULL;
  return j;
}

void *cg_jit_lookup(cg_jit *j, const char *name, char *err, size_t errn) {
  LLVMOrcExecutorAddress addr = 0;
  LLVMErrorRef e = LLVMOrcLLJITLookup(j->jit, &addr, name);
  if (e) {
    take_error(e, name, err, errn);
    return NULL;
  }
  return (void *)(uintptr_t)addr;
}

void cg_jit_free(cg_jit *j) {
  if (!j) return;
  if (j->jit) {
    LLVMErrorRef e = LLVMOrcDisposeLLJIT(j->jit);
    if (e) LLVMConsumeError(e);
  }
  free(j);
}
