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
 *   scratch  cg_scratch_size(p, f->name) bytes, 64-byte aligned, owned by the caller:
 *            the arena planned by pass_memplan for every temporary of the function.
 *
 * The return value is 0, or 1 when a label or code is outside its range (the cases
 * where the interpreter's kernels fail). Results match the interpreter's up to float
 * summation order in GEMMs (see docs/codegen.md). Not thread-safe per scratch buffer. */
#ifndef MIGC_CODEGEN_H
#define MIGC_CODEGEN_H

#include "ir/ir.h"
#include "passes/passes.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef int (*cg_entry)(float *state, void *const *inputs, void *const *outputs,
                        void *scratch);

typedef struct {
  int opt_level; /* 0..3 ("default<Ox>"); 0 in the struct means 2 */
  bool keep_ir;  /* keep the LLVM IR before and after optimisation for cg_dump_llvm */
  bool reference_gemm; /* for tests: bind migc_rt_sgemm to a plain GEMM that sums in
                          double and rounds once, as the interpreter does, so whole
                          training steps can be compared tightly (slow) */
  bool no_fuse;        /* every node its own kernel (--no-fuse) */
  bool no_memplan;     /* one scratch region per value, nothing reused (--no-memplan) */
  bool profile;        /* time every kernel call and GEMM (cg_get_profile; slower) */
  const char *cpu;     /* cg_emit_object: NULL or "native" for this machine's CPU and
                          every extension it has; or an x86-64 psABI level ("x86-64",
                          "x86-64-v2" .. "v4", cg_check_cpu) for a shared object that
                          runs on any CPU of that level. The JIT always uses the host's. */
  int compile_threads; /* cg_compile: optimise and make machine code in this many parts
                          on as many threads (jit_parts.c); 0: the cores this process
                          may run on (affinity), at most 4; 1: one module, as migc
                          compile does */
} cg_options;

typedef struct {
  double lower_ms; /* IR -> LLVM IR */
  double opt_ms;   /* LLVMRunPasses (on several threads: the longest part's) */
  double jit_ms;   /* the rest: machine code, LLJIT creation, linking, eager lookup */
  double total_ms;
} cg_stats;

typedef struct cg_program cg_program;

/* A profile (cg_options.profile): what each kernel call site and each GEMM shape took
 * since the last cg_profile_reset. A site is one node's call of its kernel. */
typedef struct {
  char func[32];     /* IR function */
  char kernel[48];   /* LLVM kernel function (shared by identical nodes) */
  const char *op;    /* IR op name */
  int node;          /* node id in func */
  int64_t numel;     /* elements of the node's value */
  int64_t bytes;     /* operands read + value written + extra scratch written and read */
  int64_t calls;     /* times it ran */
  double ms;         /* total time in the kernel */
  double gemm_ms;    /* of which in GEMMs (migc_rt_sgemm) */
  double gemm_flops; /* 2*M*N*K summed over its GEMMs */
} cg_prof_site;

typedef struct {
  bool ta, tb;                  /* CblasTrans flags */
  int M, N, K, lda, ldb, ldc;
  bool beta;                    /* accumulates into C (beta = 1) */
  int64_t calls;
  double ms;                    /* total time of these calls inside the step */
} cg_prof_gemm;

typedef struct cg_profile {
  cg_prof_site *sites;
  int nsites, cap;
  cg_prof_gemm *gemms;
  int ngemms, gcap;
  int current;                  /* the site running now, -1 between kernels */
  bool paused;                  /* set by the caller: the hooks record nothing */
  double t0;                    /* when it started (ms) */
} cg_profile;

/* Compiles every function of m. m must outlive nothing: the program keeps no pointer
 * into it. Returns NULL with a message in err on failure. o may be NULL (O3, no IR
 * kept). Free with cg_free. */
cg_program *cg_compile(const ir_module *m, const cg_options *o, char *err, size_t errn);
/* The native function compiled from IR function `func`, or NULL if there is none. */
cg_entry cg_lookup(const cg_program *p, const char *func);
/* Bytes of scratch the caller must pass to func's entry (0 for unknown names). */
size_t cg_scratch_size(const cg_program *p, const char *func);
cg_stats cg_get_stats(const cg_program *p);
/* The program's profile, or NULL when it was compiled without cg_options.profile. */
cg_profile *cg_get_profile(const cg_program *p);
/* Zeroes the times and counts (keeps the sites). */
void cg_profile_reset(cg_profile *prof);
/* Prints the target CPU and features used, then the LLVM IR of the whole module as
 * lowered (optimized = false) or after the pass pipeline (true). Needs keep_ir; returns
 * false when that IR was not kept. */
bool cg_dump_llvm(const cg_program *p, FILE *out, bool optimized);
void cg_free(cg_program *p);
/* The kernels and the memory plan cg_compile uses for f under o (o may be NULL), the
 * plan verified (memplan_verify). For reports and tests; free both with
 * kernel_plan_free and memplan_free. Returns 0, or -1 with a message. */
int cg_plan(const ir_func *f, const cg_options *o, kernel_plan *kp, memplan *mp, char *err,
            size_t errn);


/* ---- shared objects (migc compile; docs/abi.md) ---- */

/* What a shared object records about the program it was compiled from. */
typedef struct {
  uint64_t hash;        /* the program hash (cli/migc_model.c) */
  const char *file;     /* the model file, absolute */
  const char *settings; /* the -D settings, "name=value,..." ("" for none) */
} cg_model_info;

/* 0 if cpu is a name cg_options.cpu accepts, else 1 with err naming the choices. */
int cg_check_cpu(const char *cpu, char *err, size_t errn);
/* Writes to path an object file of m's functions, lowered and optimised exactly as
 * cg_compile does (same pipeline, CPU and features) but position-independent, plus
 * the globals the C ABI reads (migc_model_desc, migc_model_entries). stats may be
 * NULL (its jit_ms is the machine-code time here). Returns 0 or 1 with err set. */
int cg_emit_object(const ir_module *m, const cg_options *o, const cg_model_info *info,
                   const char *path, cg_stats *stats, char *err, size_t errn);
/* The description text of m for the C ABI (format in docs/abi.md); scratch[k] is the
 * scratch size of m->funcs[k]; cpu and features (space-separated), when cpu is not
 * NULL, make the `cpu` record the runtime checks at load. Caller frees; NULL with err
 * set on failure. */
char *cg_model_desc(const ir_module *m, const size_t *scratch, const char *cpu,
                    const char *features, const cg_model_info *info, char *err, size_t errn);
/* Where the runtime's position-independent archive is: $MIGC_RUNTIME_ARCHIVE, else
 * libmigc_rt_pic.a beside the running executable (found through /proc/self/exe), in
 * its parent directory, or in ../lib/migc. */
int cg_runtime_archive(char *path, size_t n, char *err, size_t errn);
/* Links object obj with that archive, OpenBLAS and libm into shared object out with
 * $CC (default cc), spawned without a shell; out is replaced atomically. */
int cg_link_shared(const char *obj, const char *out, char *err, size_t errn);

#endif
