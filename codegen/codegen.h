/* codegen.h: the whole public surface of migc's native code generator.
 *
 * cg_compile lowers every function of an IR module (after pass_lower_steps, or any
 * module the reference interpreter can run) to LLVM IR through the LLVM C API,
 * optimises it with the new pass manager for the host CPU and JIT-compiles it with
 * ORC LLJIT. Each IR function becomes one native function with a fixed C ABI:
 *
 *   int fn(float *state, void *const *inputs, void *const *outputs, void *scratch);
 *
 *   state    the flat state buffer (m->state_size 4-byte elements), read by loads and
 *            written by stores exactly as the interpreter's it->state;
 *   inputs   f->ninputs pointers, inputs[j] the f32 or i32 data of the function's
 *            input j (C order, the INPUT node's shape);
 *   outputs  f->noutputs pointers, each to room for the output node's whole value;
 *   scratch  cg_scratch_size(p, f->name) bytes, 64-byte aligned, owned by the caller
 *            (one region per node for now: memory planning comes later).
 *
 * The return value is 0, or 1 when a label or code is outside its range (the cases
 * where the interpreter's kernels fail). Results match the interpreter's up to float
 * summation order in GEMMs (see docs/codegen.md). Not thread-safe per scratch buffer. */
#ifndef MIGC_CODEGEN_H
#define MIGC_CODEGEN_H

#include "ir/ir.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef int (*cg_entry)(float *state, void *const *inputs, void *const *outputs,
                        void *scratch);

typedef struct {
  int opt_level; /* 0..3 ("default<Ox>"); 0 in the struct means 3 */
  bool keep_ir;  /* keep the LLVM IR before and after optimisation for cg_dump_llvm */
  bool reference_gemm; /* for tests: bind cblas_sgemm to a plain GEMM that sums in
                          double and rounds once, as the interpreter does, so whole
                          training steps can be compared tightly (slow) */
} cg_options;

typedef struct {
  double lower_ms; /* IR -> LLVM IR */
  double opt_ms;   /* LLVMRunPasses */
  double jit_ms;   /* LLJIT creation, symbol definitions, machine code (eager lookup) */
  double total_ms;
} cg_stats;

typedef struct cg_program cg_program;

/* Compiles every function of m. m must outlive nothing: the program keeps no pointer
 * into it. Returns NULL with a message in err on failure. o may be NULL (O3, no IR
 * kept). Free with cg_free. */
cg_program *cg_compile(const ir_module *m, const cg_options *o, char *err, size_t errn);
/* The native function compiled from IR function `func`, or NULL if there is none. */
cg_entry cg_lookup(const cg_program *p, const char *func);
/* Bytes of scratch the caller must pass to func's entry (0 for unknown names). */
size_t cg_scratch_size(const cg_program *p, const char *func);
cg_stats cg_get_stats(const cg_program *p);
/* Prints the target CPU and features used, then the LLVM IR of the whole module as
 * lowered (optimized = false) or after the pass pipeline (true). Needs keep_ir; returns
 * false when that IR was not kept. */
bool cg_dump_llvm(const cg_program *p, FILE *out, bool optimized);
void cg_free(cg_program *p);

#endif
