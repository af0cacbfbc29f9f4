/* emit_object.c: the object file of `migc compile`. The module is the one cg_compile
 * JITs (cg_build: same lowering, same pass pipeline, same CPU and features), only
 * position-independent, so a shared object computes what the JIT computes, bit for
 * bit. Two globals are added for the C ABI (runtime/migc_abi.c):
 *   migc_model_desc     the model's description (model_desc.c), a NUL-terminated string;
 *   migc_model_entries  the entries, one pointer per function in the description's order. */
#include "codegen/cg_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int cg_emit_object(const ir_module *m, const cg_options *o, const cg_model_info *info,
                   const char *path, cg_stats *stats, char *err, size_t errn) {
  double t0 = now_ms();
  cg_module cm;
  if (cg_build(m, o, true, &cm, err, errn)) return 1;
  char *desc = cg_model_desc(m, cm.scratch, cm.cpu, cm.features, info, err, errn);
  if (!desc) {
    cg_module_free(&cm);
    return 1;
  }
  LLVMContextRef ctx = LLVMGetModuleContext(cm.mod);
  LLVMValueRef text = LLVMConstStringInContext(ctx, desc, (unsigned)strlen(desc), 0);
  LLVMValueRef g = LLVMAddGlobal(cm.mod, LLVMTypeOf(text), "migc_model_desc");
  LLVMSetInitializer(g, text);
  LLVMSetGlobalConstant(g, 1);
  free(desc);

  LLVMTypeRef pi8 = LLVMPointerType(LLVMInt8TypeInContext(ctx), 0);
  LLVMValueRef *fns = calloc((size_t)m->nfuncs + 1, sizeof *fns);
  if (!fns) {
    snprintf(err, errn, "out of memory");
    cg_module_free(&cm);
    return 1;
  }
  for (int k = 0; k < m->nfuncs; k++) {
    char name[256];
    cg_entry_name(name, sizeof name, m->funcs[k]->name);
    fns[k] = LLVMConstBitCast(LLVMGetNamedFunction(cm.mod, name), pi8);
  }
  LLVMValueRef table = LLVMConstArray(pi8, fns, (unsigned)m->nfuncs);
  free(fns);
  LLVMValueRef e = LLVMAddGlobal(cm.mod, LLVMTypeOf(table), "migc_model_entries");
  LLVMSetInitializer(e, table);
  LLVMSetGlobalConstant(e, 1);

  double t1 = now_ms();
  char *msg = NULL;
  int rc = 0;
  if (LLVMTargetMachineEmitToFile(cm.tm, cm.mod, (char *)path, LLVMObjectFile, &msg)) {
    snprintf(err, errn, "%s: cannot write the object file: %s", path, msg ? msg : "");
    rc = 1;
  }
  LLVMDisposeMessage(msg);
  if (stats) {
    stats->lower_ms = cm.lower_ms;
    stats->opt_ms = cm.opt_ms;
    stats->jit_ms = now_ms() - t1; /* machine code */
    stats->total_ms = now_ms() - t0;
  }
  cg_module_free(&cm);
  return rc;
}
