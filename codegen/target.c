/* target.c: the host target machine and the optimisation pipeline, shared by the JIT
 * (jit.c) and object emission (emit_object.c) so both run the same optimised code.
 *
 * The machine is made from the host's CPU name and feature list (so AVX-512 is used
 * where the CPU has it, even where LLVM 14 names a newer CPU by an older model). The
 * module is verified, then optimised with the new pass manager ("default<Ox>") for
 * that machine. Only the relocation and code models differ between the two users:
 * the JIT's defaults, or position-independent code for a shared object. */
#include "codegen/cg_internal.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/Error.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <stdlib.h>
#include <string.h>

static bool targets_ready;

static char *dup_message(char *msg) {
  char *s = strdup(msg ? msg : "");
  LLVMDisposeMessage(msg);
  return s;
}

LLVMTargetMachineRef cg_host_machine(int level, bool pic, char **cpu_out, char **feat_out,
                                     char *err, size_t errn) {
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
  LLVMCodeGenOptLevel ol = level >= 3 ? LLVMCodeGenLevelAggressive
                           : level == 2 ? LLVMCodeGenLevelDefault
                                        : LLVMCodeGenLevelLess;
  LLVMTargetMachineRef tm =
      LLVMCreateTargetMachine(t, triple, cpu, feat, ol, pic ? LLVMRelocPIC : LLVMRelocDefault,
                              pic ? LLVMCodeModelDefault : LLVMCodeModelJITDefault);
  if (cpu_out) *cpu_out = strdup(cpu);
  if (feat_out) *feat_out = strdup(feat);
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
