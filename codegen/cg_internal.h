/* cg_internal.h: what the lowering files share. A cg_ctx is the state of lowering one
 * IR function into one LLVM function; lower_*.c hold one family of ops each and
 * lower_table.c maps every ir_op to its lowering. LLVM 14 has typed pointers, so node
 * values are kept as i8* and cast where used (cg_fptr, cg_iptr, cg_dptr). */
#ifndef MIGC_CG_INTERNAL_H
#define MIGC_CG_INTERNAL_H

#include "codegen/codegen.h"
#include "passes/passes.h"

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

typedef struct cg_ctx {
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMBuilderRef b;
  LLVMTypeRef f32, f64, i1, i8, i32, i64, void_t;
  LLVMTypeRef pf32, pf64, pi8, pi32; /* pointers to them */
  LLVMValueRef fn;                   /* the function being built */
  LLVMBasicBlockRef entry;           /* holds the allocas */
  LLVMBasicBlockRef err_bb;          /* returns 1 (range errors) */
  LLVMValueRef state, inputs, outputs, scratch; /* the arguments */
  const ir_module *m;
  const ir_func *f;
  LLVMValueRef *val;    /* per node: i8* to its value */
  LLVMValueRef extra;   /* in a kernel: i8* to the node's extra scratch (or null) */
  LLVMValueRef numel;   /* in a flat kernel: i64 element count (a parameter) */
  struct cg_loop *loop; /* the innermost open loop (builder.c) */
  unsigned md_loop;     /* metadata kind id of "llvm.loop" */
  LLVMValueRef unroll_full; /* llvm.loop metadata forcing full unrolling (lazily made) */
  cg_profile *prof;     /* cg_options.profile: kernel call sites are registered here */
  struct cg_kernel_cache *kc; /* the module's shared kernels (codegen.c), or NULL */
  struct cg_epilogue *epi; /* lowering a GEMM head (lower_epilogue.c): its epilogue */
  char *err;
  size_t errn;
} cg_ctx;

/* Lowers node n: in[j] are the operands' values (i8*), out is n's buffer (i8*; NULL
 * for ops that alias, which then set c->val[id] themselves). Returns 0 or nonzero
 * with c->err set. */
typedef int (*cg_lower_fn)(cg_ctx *c, int id, const ir_node *n, LLVMValueRef const *in,
                           LLVMValueRef out);
/* Extra scratch bytes a node needs beyond its value (im2col columns, sync batchnorm statistics). */
typedef int64_t (*cg_extra_fn)(const ir_func *f, const ir_node *n);

/* Whether a node has a buffer of its own is the memory plan's decision (memplan.c):
 * input, reshape and store have none, and their lowerings set c->val[id] themselves. */
typedef struct {
  cg_lower_fn lower;
  cg_extra_fn extra; /* NULL: none; the planner's memplan_extra_fn */
} cg_lowering;

extern const cg_lowering cg_lowerings[IR_OP_COUNT];

int cg_fail(cg_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The element count of n's value: the kernel's count parameter when the kernel is
 * shared by every size (flat elementwise ops), else the constant. */
LLVMValueRef cg_numel(cg_ctx *c, const ir_node *n);
/* Whether n's lowering depends on its shape only through the element count (so one
 * kernel serves all sizes): same-shape unary, binary without broadcasting, adjoints. */
bool cg_flat(const ir_func *f, const ir_node *n);
/* The f32 value of an elementwise node (fuse_elementwise) from its operands' values. */
LLVMValueRef cg_elementwise_value(cg_ctx *c, const ir_node *n, LLVMValueRef const *x);
/* Extra scratch of any node through the lowering table (memplan_extra_fn). */
int64_t cg_extra_bytes(const ir_func *f, const ir_node *n);

/* ---- codegen.c: kernels shared by key ---- */
typedef struct cg_kernel_cache cg_kernel_cache;
/* The kernel made for key (its type in *fty), or NULL. */
LLVMValueRef cg_kernel_find(cg_kernel_cache *kc, const char *key, LLVMTypeRef *fty);
/* Records a kernel under key (taken over: freed with the cache). Returns 0 or -1. */
int cg_kernel_add(cg_kernel_cache *kc, char *key, LLVMValueRef fn, LLVMTypeRef fty);
LLVMValueRef cg_kernel_function(cg_ctx *c, const char *name, LLVMTypeRef fty, bool noalias_out);
int cg_lower_kernel_body(cg_ctx *c, LLVMValueRef kf, int id, const ir_node *n,
                         LLVMValueRef const *in);
/* Appends printf-style text to a growing key string. */
void cg_key_add(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* lower_fused.c: kernel k of kp, a fused loop over its elementwise members (after its
 * GEMM head, if it has one) */
int cg_lower_fused(cg_ctx *c, cg_kernel_cache *kc, const kernel_plan *kp, const memplan *mp,
                   int k);
/* The key of node n's own kernel (what lower_kernel shares kernels by). */
char *cg_node_key(const ir_func *f, const ir_node *n, bool inplace);
/* lower_epilogue.c: kernel of GEMM `head` and the fused loop (loop, of type loop_ty)
 * over its other members: a function that lowers the head and calls the loop on each
 * block of rows the head completes (cg_epilogue_rows), called with the head's
 * arguments and loop_args[1..np) (the loop's pointers; loop_args[0], the count, is per
 * block), each advanced by stride[p] elements per unit of the loop's count (a row of
 * the outermost dimension when nested, else an element), as cg_call_split's. inplace:
 * an output of the loop is written over the head's buffer. */
typedef struct cg_epilogue cg_epilogue;
int cg_lower_headed(cg_ctx *c, cg_kernel_cache *kc, const memplan *mp, int head,
                    LLVMValueRef loop, LLVMTypeRef loop_ty, LLVMValueRef const *loop_args,
                    const int64_t *stride, int np, bool nested, bool inplace);
/* In a GEMM head's lowering: rows [row0, row0 + rows) of the outermost dimension of its
 * output are complete; runs the epilogue on them (nothing outside a headed kernel). */
void cg_epilogue_rows(cg_ctx *c, LLVMValueRef row0, int64_t rows);

/* ---- builder.c: constants, pointers, loops, calls ---- */
LLVMValueRef cg_i64(cg_ctx *c, int64_t v);
LLVMValueRef cg_i32c(cg_ctx *c, int32_t v);
LLVMValueRef cg_f32c(cg_ctx *c, double v);
LLVMValueRef cg_f64c(cg_ctx *c, double v);
LLVMValueRef cg_fptr(cg_ctx *c, LLVMValueRef p); /* i8* -> float* */
LLVMValueRef cg_iptr(cg_ctx *c, LLVMValueRef p); /* i8* -> i32* */
LLVMValueRef cg_dptr(cg_ctx *c, LLVMValueRef p); /* i8* -> double* */
LLVMValueRef cg_scratch_at(cg_ctx *c, int64_t byte_off); /* i8* into scratch */
/* Typed element access: p is a typed pointer, idx an i64. */
LLVMValueRef cg_ld(cg_ctx *c, LLVMTypeRef t, LLVMValueRef p, LLVMValueRef idx);
void cg_st(cg_ctx *c, LLVMValueRef p, LLVMValueRef idx, LLVMValueRef v);
LLVMValueRef cg_gep(cg_ctx *c, LLVMTypeRef t, LLVMValueRef p, LLVMValueRef idx);
LLVMValueRef cg_ext(cg_ctx *c, LLVMValueRef f32v);   /* f32 -> f64 */
LLVMValueRef cg_trunc(cg_ctx *c, LLVMValueRef f64v); /* f64 -> f32 */
/* An alloca of t at the top of the entry block, named name. */
LLVMValueRef cg_entry_alloca(cg_ctx *c, LLVMTypeRef t, const char *name);
/* A double in an entry-block alloca (promoted to a register by mem2reg). */
LLVMValueRef cg_var_f64(cg_ctx *c, double init);

/* for (iv = 0; iv < n; iv++): begin leaves the builder in the body. */
typedef struct cg_loop {
  LLVMBasicBlockRef head, exit;
  LLVMValueRef iv;
  struct cg_loop *parent; /* the enclosing open loop, or NULL */
  bool has_inner;         /* another loop was opened inside this one */
  bool unroll;            /* set in the body: ask LLVM to unroll it fully (constant count) */
} cg_loop;
void cg_loop_begin(cg_ctx *c, cg_loop *l, LLVMValueRef n);
void cg_loop_end(cg_ctx *c, cg_loop *l);
/* A nest over dims[0..rank); idx[d] are the induction variables (outermost first). */
typedef struct {
  int rank;
  cg_loop l[IR_MAX_RANK + 2];
  LLVMValueRef idx[IR_MAX_RANK + 2];
} cg_nest;
void cg_nest_begin(cg_ctx *c, cg_nest *nest, int rank, const int64_t *dims);
void cg_nest_end(cg_ctx *c, cg_nest *nest);
/* sum_d idx[d] * stride[d] as i64 (constant strides; zero strides skipped). */
LLVMValueRef cg_linear(cg_ctx *c, int rank, const LLVMValueRef *idx, const int64_t *stride);
/* Element strides of shape s seen from o under broadcasting (0 where s repeats). */
void cg_broadcast_strides(ir_shape s, ir_shape o, int64_t st[IR_MAX_RANK]);
void cg_contig_strides(ir_shape s, int64_t st[IR_MAX_RANK]);
/* Calls a double (double) libm function by name (exp, log, log1p, tanh, sqrt). */
LLVMValueRef cg_call_d(cg_ctx *c, const char *name, LLVMValueRef x);
/* Declares (once) and returns an external function. */
LLVMValueRef cg_extern(cg_ctx *c, const char *name, LLVMTypeRef fty);
/* Copies count 4-byte elements src[so..] to dst[do..] (i8* bases, element offsets). */
void cg_copy4(cg_ctx *c, LLVMValueRef dst, LLVMValueRef doff, LLVMValueRef src,
              LLVMValueRef soff, LLVMValueRef count);
void cg_zero4(cg_ctx *c, LLVMValueRef dst, int64_t count);
/* if (!cond) return 1 from the function. */
void cg_check(cg_ctx *c, LLVMValueRef cond);

/* ---- parallel.c: loops split over the runtime's threads (runtime/pool.c) ---- */
/* Work is split in blocks of about this many elements, and only when there are at
 * least two: smaller kernels stay on the calling thread. */
enum { CG_SPLIT_ELEMENTS = 65536 };
typedef struct {
  LLVMValueRef nblocks, ctxbuf, part, fn;
  LLVMTypeRef fty;
  LLVMBasicBlockRef entry, err_bb, resume;
  struct cg_loop *loop;
} cg_par;
/* Opens the body of a loop over nblocks blocks (an i64 of the enclosing function) that
 * runs on the runtime's threads: the builder moves into a new function part(i8 *ctx,
 * i64 b), *block is b, and the ncap values cap[] of the enclosing function that the
 * body uses (pointers or integers) are replaced by their copies inside part. The body
 * may use nothing else of the enclosing function (capture state, extra, scratch) and
 * cannot fail; the blocks must write disjoint memory. */
void cg_par_begin(cg_ctx *c, cg_par *p, LLVMValueRef nblocks, int ncap, LLVMValueRef *cap,
                  LLVMValueRef *block);
/* Closes the body: the enclosing function calls migc_rt_parallel_for(part, ctx, n). */
void cg_par_end(cg_ctx *c, cg_par *p);
/* Calls kernel kf (type fty) with args, split along a dimension of count units of
 * `unit` elements each: block b gets units [lo, lo + n), args[count_arg] = n and every
 * args[k] with stride[k] != 0 advanced by lo * stride[k] 4-byte elements. One plain
 * call when the work is under two blocks of CG_SPLIT_ELEMENTS. */
void cg_call_split(cg_ctx *c, LLVMTypeRef fty, LLVMValueRef kf, LLVMValueRef *args, int nargs,
                   int count_arg, const int64_t *stride, int64_t count, int64_t unit);

/* A loop for (iv = 0; iv < count; iv++) whose iterations write disjoint memory, each
 * about `work` elements: split into blocks of iterations over the runtime's threads
 * when there are two blocks of CG_SPLIT_ELEMENTS or more, else a plain loop. The
 * values *vars[k] (NULL ones skipped) are what the body uses of the enclosing
 * function: inside the body they are their copies, after cg_ploop_end the originals. */
enum { CG_PLOOP_MAX = 12 };
typedef struct {
  bool split;
  cg_par par;
  cg_loop l;
  LLVMValueRef iv;
  int nvars;
  LLVMValueRef *var[CG_PLOOP_MAX], saved[CG_PLOOP_MAX];
} cg_ploop;
void cg_ploop_begin(cg_ctx *c, cg_ploop *pl, int64_t count, int64_t work, LLVMValueRef **vars,
                    int nvars);
void cg_ploop_end(cg_ctx *c, cg_ploop *pl);

/* ---- the lowerings (lower_*.c), one family per file ---- */
#define CG_LOWER(name)                                                                 \
  int cg_lower_##name(cg_ctx *c, int id, const ir_node *n, LLVMValueRef const *in,     \
                      LLVMValueRef out)
CG_LOWER(input);
CG_LOWER(const);
CG_LOWER(load);
CG_LOWER(store);
CG_LOWER(reshape);
CG_LOWER(unary);
CG_LOWER(binary);
CG_LOWER(same_shape); /* relu_grad, lrelu_grad, max_grad, select */
CG_LOWER(expand);
CG_LOWER(matmul);
CG_LOWER(conv); /* conv, deconv, conv_grad_x, conv_grad_w */
CG_LOWER(batchnorm);      /* batchnorm, batchnorm_infer */
CG_LOWER(batchnorm_grad); /* batchnorm_grad, batchnorm_grad_gamma */
CG_LOWER(concat);
CG_LOWER(slice);
CG_LOWER(unslice);
CG_LOWER(reduce); /* sum, mean, var */
CG_LOWER(onehot);
CG_LOWER(dropout);
CG_LOWER(bce_logits);
CG_LOWER(cross_entropy); /* softmax_ce, info_categorical */
CG_LOWER(gaussian_nll);
CG_LOWER(softmax);
CG_LOWER(allreduce); /* lower_collective.c */
/* lower_collective.c: a call of the runtime's collective_allreduce on the floats
 * buf[0..n) (float*), in place: the sum across the processes of a data-parallel run. */
void cg_sum_across(cg_ctx *c, LLVMValueRef buf, int64_t n);
int64_t cg_extra_conv(const ir_func *f, const ir_node *n);
int64_t cg_extra_batchnorm(const ir_func *f, const ir_node *n); /* sync batchnorm only */
/* lower_gemm.c: C[M,N] = op(A) op(B) + beta*C through migc_rt_sgemm (row-major;
 * cblas_sgemm's signature, split over the runtime's threads). */
void cg_sgemm(cg_ctx *c, bool ta, bool tb, int64_t M, int64_t N, int64_t K, LLVMValueRef a,
              int64_t lda, LLVMValueRef b, int64_t ldb, LLVMValueRef beta, LLVMValueRef cc,
              int64_t ldc);
/* cblas_sgemm's signature (row-major only), summing in double in k order and rounding
 * once: bound in place of OpenBLAS under cg_options.reference_gemm. */
void cg_reference_sgemm(int order, int ta, int tb, int M, int N, int K, float alpha,
                        const float *A, int lda, const float *B, int ldb, float beta,
                        float *C, int ldc);

/* ---- codegen.c: the optimised module, shared by the JIT and migc compile ---- */
typedef struct {
  LLVMModuleRef mod;       /* lowered and optimised (owned) */
  void *tsc;               /* the thread-safe context mod lives in (owned; void* keeps
                              Orc headers out of here) */
  LLVMTargetMachineRef tm; /* the machine mod was optimised for (owned) */
  int level;               /* optimisation level 1..3 */
  int nfuncs;
  char **names;            /* IR function names; the entry of names[k] is cg_entry_name */
  size_t *scratch;         /* scratch bytes per function */
  char *ir_before, *ir_after; /* kept LLVM IR text, or NULL */
  char *cpu, *features;    /* of tm */
  double lower_ms, opt_ms;
  cg_profile *prof;        /* cg_options.profile, else NULL (owned) */
} cg_module;
/* Lowers every function of m and optimises the module for the host CPU; pic asks for
 * position-independent code (a shared object) instead of the JIT's code model.
 * Returns 0, or 1 with err set (cm then holds nothing). */
int cg_build(const ir_module *m, const cg_options *o, bool pic, cg_module *cm, char *err,
             size_t errn);
/* The first half of cg_build: lowers every function of m into cm->mod, not yet
 * optimised (cm->tm stays NULL). */
int cg_lower_module(const ir_module *m, const cg_options *o, cg_module *cm, char *err,
                    size_t errn);
/* Frees whatever cm still owns; safe on a zeroed or partly taken module. */
void cg_module_free(cg_module *cm);
/* The LLVM symbol of IR function func's entry: "migc_fn_<func>" (the prefix keeps
 * entries apart from the C ABI's migc_* names in a shared object). */
void cg_entry_name(char *buf, size_t n, const char *func);

/* ---- target.c ---- */
/* The machine for the host CPU (target_cpu NULL or "native") or an x86-64 psABI level
 * (cg_check_cpu); *cpu gets its name and *features its extensions, space-separated
 * (LLVM's names; both malloc'd, either pointer may be NULL). */
LLVMTargetMachineRef cg_host_machine(int level, bool pic, const char *target_cpu, char **cpu,
                                     char **features, char *err, size_t errn);
/* Verifies mod and runs "default<O<level>>" for tm; keeps IR text when asked. */
int cg_optimize(LLVMModuleRef mod, LLVMTargetMachineRef tm, int level, char **ir_before,
                char **ir_after, char *err, size_t errn);

/* ---- profile.c: kernel timing hooks (cg_options.profile) ---- */
cg_profile *cg_profile_new(void);
void cg_profile_free(cg_profile *p);
/* Registers node id's call of `kernel` as a site and emits the enter hook; returns the
 * site (then emit "cg_prof_exit" after the call), or -1 out of memory. */
int cg_prof_site_begin(cg_ctx *c, int id, const ir_node *n, const char *kernel);
/* The same for a fused kernel (lower_fused.c) over count elements, standing for node
 * id (one of its outputs), moving about `bytes`. */
int cg_prof_site_fused(cg_ctx *c, int id, const char *kernel, int64_t count, int64_t bytes);
void cg_prof_emit(cg_ctx *c, const char *hook, int site);
/* The hooks and the timed migc_rt_sgemm the JIT binds when profiling. */
void cg_prof_enter(cg_profile *p, int32_t site);
void cg_prof_exit(cg_profile *p, int32_t site);
void cg_prof_sgemm(int order, int ta, int tb, int M, int N, int K, float alpha, const float *A,
                   int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* ---- jit_parts.c ---- */
/* Optimises the lowered, unoptimised mod (which it leaves as it was) in nparts parts on
 * as many threads, each in a context of its own, and makes an object file of each:
 * objs[0..nparts), the caller's. opt_ms: the longest part's optimisation. Returns 0, or
 * 1 with err set and no objects. */
int cg_compile_parts(LLVMModuleRef mod, int level, int nparts, LLVMMemoryBufferRef *objs,
                     double *opt_ms, char *err, size_t errn);

/* ---- jit.c ---- */
typedef struct cg_jit cg_jit;
/* Takes cm's module, context and target machine (leaving them NULL in cm, also on
 * failure) and adds the module to a new LLJIT. */
cg_jit *cg_jit_create(cg_module *cm, bool reference_gemm, bool profile, char *err,
                      size_t errn);
/* Takes tm and the object files objs[0..n) (every one, also on failure; they are
 * NULL after) and links them into a new LLJIT. */
cg_jit *cg_jit_create_objects(LLVMTargetMachineRef tm, LLVMMemoryBufferRef *objs, int n,
                              bool reference_gemm, bool profile, char *err, size_t errn);
void *cg_jit_lookup(cg_jit *j, const char *name, char *err, size_t errn);
void cg_jit_free(cg_jit *j);
/* Creates the thread-safe context whose LLVMContextRef modules are built in. */
void *cg_jit_new_context(LLVMContextRef *ctx);
void cg_jit_dispose_context(void *tsc);

#endif
