/* target.c: the host target machine and the optimisation pipeline, shared by the JIT
 * (jit.c) and object emission (emit_object.c) so both run the same optimised code.
 *
 * The machine is made from the host's CPU name and feature list (so AVX-512 is used
 * where the CPU has it, even where LLVM 14 names a newer CPU by an older model). The
 * module is verified, then optimised with the new pass manager ("default<Ox>") for
 * that machine. Only the relocation and code models differ between the two users:
 * the JIT's defaults, or position-independent code for a shared object.
 *
 * A shared object may instead be built for a generic x86-64 level (`migc compile
 * --cpu`), so it runs on other machines. Only the psABI levels are offered: their
 * extensions are fixed by the psABI, so the list the runtime checks at load time
 * (runtime/cpu.c) is known here without asking LLVM, whose C API cannot tell what a
 * named CPU implies. */
#include "codegen/cg_internal.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/Error.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <stdlib.h>
#include <string.h>

static bool targets_ready;

/* The x86-64 psABI levels, each with the extensions it adds to the one before. */
static const struct {
  const char *name, *adds;
} levels[] = {
    {"x86-64", ""},
    {"x86-64-v2", "sse3 ssse3 sse4.1 sse4.2 popcnt cx16 sahf"},
    {"x86-64-v3", "avx avx2 bmi bmi2 f16c fma lzcnt movbe xsave"},
    {"x86-64-v4", "avx512f avx512bw avx512cd avx512dq avx512vl"},
};
enum { NLEVELS = sizeof levels / sizeof levels[0] };


int cg_check_cpu(const char *cpu, char *err, size_t errn) {
  if (!cpu || !strcmp(cpu, "native")) return 0;
  for (int k = 0; k < NLEVELS; k++)
    if (!strcmp(cpu, levels[k].name)) return 0;
  snprintf(err, errn, "unknown CPU '%s': use native, x86-64, x86-64-v2, x86-64-v3 or x86-64-v4", cpu);
  return 1;
}

/* "+a,+b,-c,..." (LLVM's host list) or a level's lists, as "a b ..." (enabled only) */
static char *feature_words(const char *cpu, const char *host) {
  size_t n = strlen(host) + 1;
  for (int k = 0; k < NLEVELS; k++) n += strlen(levels[k].adds) + 1;
  char *out = calloc(n, 1), *o = out;
  if (!out) return NULL;
  if (!cpu) {
    for (const char *p = host; *p;) {
      size_t len = strcspn(p, ",");
      if (*p == '+' && len > 1) o += sprintf(o, "%s%.*s", o > out ? " " : "", (int)len - 1, p + 1);
      p += len + (p[len] == ',');
    }
    return out;
  }
  for (int k = 0; k < NLEVELS; k++) {
    if (*levels[k].adds) o += sprintf(o, "%s%s", o > out ? " " : "", levels[k].adds);
    if (!strcmp(cpu, levels[k].name)) break;
  }
  return out;
}

static char *dup_message(char *msg) {
  char *s = strdup(msg ? msg : "");
  LLVMDisposeMessage(msg);
  return s;
}

LLVMTargetMachineRef cg_host_machine(int level, bool pic, const char *target_cpu,
                                     char **cpu_out, char **feat_out, char *err, size_t errn) {
  if (target_cpu && !strcmp(target_cpu, "native")) target_cpu = NULL;
  if (cg_check_cpu(target_cpu, err, errn)) return NULL;
  if (!targets_ready) {
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
    targets_ready = true;
  }
  char *triple = LLVMGetDefaultTargetTriple(), *msg = NULL;
  LLVMTargetRef t;
  if (LLVMGetTargetFromTriple(triple, &t, &msg)) {
    snprintf(err, errn, "no target for %s: %s", triple, msg ? msg : "");
    LLVMDisposeMessage(msg);
    LLVMDisposeMessage(triple);
    return NULL;
  }
  char *cpu = LLVMGetHostCPUName(), *feat = LLVMGetHostCPUFeatures();
  if (target_cpu) { /* a level: its name, and the features it implies */
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(feat);
    cpu = LLVMCreateMessage(target_cpu);
    feat = LLVMCreateMessage("");
  }
  LLVMCodeGenOptLevel ol = level >= 3 ? LLVMCodeGenLevelAggressive
                           : level == 2 ? LLVMCodeGenLevelDefault
                                        : LLVMCodeGenLevelLess;
  LLVMTargetMachineRef tm =
      LLVMCreateTargetMachine(t, triple, cpu, feat, ol, pic ? LLVMRelocPIC : LLVMRelocDefault,
                              pic ? LLVMCodeModelDefault : LLVMCodeModelJITDefault);
  if (cpu_out) *cpu_out = strdup(cpu);
  if (feat_out) *feat_out = feature_words(target_cpu, feat);
  LLVMDisposeMessage(cpu);
  LLVMDisposeMessage(feat);
  LLVMDisposeMessage(triple);
  if (!tm) snprintf(err, errn, "cannot create a target machine for the host");
  return tm;
}

int cg_optimize(LLVMModuleRef mod, LLVMTargetMachineRef tm, int level, char **ir_before,
                char **ir_after, char *err, size_t errn) {
  char *triple = LLVMGetTargetMachineTriple(tm);
  LLVMSetTarget(mod, triple);
  LLVMDisposeMessage(triple);
  LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
  LLVMSetModuleDataLayout(mod, td);
  LLVMDisposeTargetData(td);

  char *verr = NULL;
  if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &verr)) {
    snprintf(err, errn, "generated LLVM IR does not verify: %s", verr ? verr : "");
    LLVMDisposeMessage(verr);
    return 1;
  }
  LLVMDisposeMessage(verr);
  if (ir_before) *ir_before = dup_message(LLVMPrintModuleToString(mod));

  char pipeline[32];
  snprintf(pipeline, sizeof pipeline, "default<O%d>", level);
  LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
  /* unroll only the loops whose metadata asks (cg_loop.unroll): infogan_mnist compiled
   * in 0.44-0.47 s instead of 0.58-0.60, its step as fast */
  LLVMPassBuilderOptionsSetLoopUnrolling(po, 0);
  LLVMErrorRef e = LLVMRunPasses(mod, pipeline, tm, po);
  LLVMDisposePassBuilderOptions(po);
  if (e) {
    char *m = LLVMGetErrorMessage(e);
    snprintf(err, errn, "optimisation: %s", m);
    LLVMDisposeErrorMessage(m);
    return 1;
  }
  if (ir_after) *ir_after = dup_message(LLVMPrintModuleToString(mod));
  return 0;
}
