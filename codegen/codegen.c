/* codegen.c: cg_build and cg_compile. cg_build lowers one LLVM module holding one
 * function per IR function (named "migc_fn_<func>"), lowering nodes in ir_schedule order
 * with the lowering table, and optimises it (target.c); cg_compile hands that module to
 * jit.c, and emit_object.c writes the same module to an object file for `migc compile`,
 * so the JIT and a shared object run the same optimised code.
 *
 * Kernels and scratch come from passes: pass_fuse groups nodes into kernels (or every
 * node its own, with cg_options.no_fuse) and pass_memplan places every stored value
 * and every node's extra scratch (im2col columns, double accumulators, sized by the
 * lowering table) in one arena; memplan_verify checks that plan on every compile.
 * Inputs alias the caller's buffers, reshapes and stores alias their operand; loads
 * copy from the state (a later store in the same function must not change a loaded
 * value). */
#include "codegen/cg_internal.h"

#include <malloc.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct cg_program {
  cg_jit *jit;
  int nfuncs;
  char **names;
  cg_entry *entries;
  size_t *scratch;
  cg_stats stats;
  char *ir_before, *ir_after, *cpu, *features;
  cg_profile *prof; /* cg_options.profile, else NULL */
};

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void init_types(cg_ctx *c) {
  c->f32 = LLVMFloatTypeInContext(c->ctx);
  c->f64 = LLVMDoubleTypeInContext(c->ctx);
  c->i1 = LLVMInt1TypeInContext(c->ctx);
  c->i8 = LLVMInt8TypeInContext(c->ctx);
  c->i32 = LLVMInt32TypeInContext(c->ctx);
  c->i64 = LLVMInt64TypeInContext(c->ctx);
  c->void_t = LLVMVoidTypeInContext(c->ctx);
  c->pf32 = LLVMPointerType(c->f32, 0);
  c->pf64 = LLVMPointerType(c->f64, 0);
  c->pi8 = LLVMPointerType(c->i8, 0);
  c->pi32 = LLVMPointerType(c->i32, 0);
}

int cg_plan(const ir_func *f, const cg_options *o, kernel_plan *kp, memplan *mp, char *err,
            size_t errn) {
  bool fuse = !(o && o->no_fuse);
  if (fuse ? pass_fuse(f, kp) : kernel_plan_unfused(f, kp)) {
    snprintf(err, errn, "out of memory");
    return -1;
  }
  bool plan = !(o && o->no_memplan);
  if (plan ? pass_memplan(f, kp, cg_extra_bytes, true, mp) : memplan_naive(f, kp, cg_extra_bytes, mp)) {
    kernel_plan_free(kp);
    snprintf(err, errn, "out of memory");
    return -1;
  }
  char why[400];
  if (!memplan_verify(f, kp, mp, why, sizeof why)) {
    snprintf(err, errn, "%s: memory plan: %s", f->name, why);
    kernel_plan_free(kp);
    memplan_free(mp);
    return -1;
  }
  return 0;
}

/* A node with its own buffer is lowered into an internal, never-inlined kernel
 *   i32 kernel(float *state, i8 *extra, i8 *out, i64 count, i8 *in0, ...)
 * which the entry function calls (a nonzero result propagates as the entry's). Nodes
 * whose lowerings would be identical share one kernel: the key is everything a
 * lowering reads (op, attributes, dtypes and shapes of operands and value), with the
 * shapes left out for flat elementwise ops, which take their size as `count`. So the
 * optimiser and the JIT see a few hundred small functions instead of one function
 * with thousands of loops: compile time stays well under a second. */
typedef struct {
  char *key;
  LLVMValueRef fn;
  LLVMTypeRef fty;
} kernel_entry;

struct cg_kernel_cache {
  kernel_entry *e;
  int n, cap;
};

LLVMValueRef cg_kernel_find(cg_kernel_cache *kc, const char *key, LLVMTypeRef *fty) {
  for (int k = 0; k < kc->n; k++)
    if (!strcmp(kc->e[k].key, key)) {
      *fty = kc->e[k].fty;
      return kc->e[k].fn;
    }
  return NULL;
}

int cg_kernel_add(cg_kernel_cache *kc, char *key, LLVMValueRef fn, LLVMTypeRef fty) {
  if (kc->n == kc->cap) {
    int nc = kc->cap ? kc->cap * 2 : 64;
    kernel_entry *ne = realloc(kc->e, (size_t)nc * sizeof *ne);
    if (!ne) {
      free(key);
      return -1;
    }
    kc->e = ne, kc->cap = nc;
  }
  kc->e[kc->n++] = (kernel_entry){key, fn, fty};
  return 0;
}

#define key_add cg_key_add
void cg_key_add(char **buf, size_t *len, size_t *cap, const char *fmt, ...) {
  char tmp[256];
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (k < 0) return;
  if (*len + (size_t)k + 1 > *cap) {
    size_t nc = (*cap + (size_t)k + 1) * 2;
    char *nb = realloc(*buf, nc);
    if (!nb) return;
    *buf = nb, *cap = nc;
  }
  memcpy(*buf + *len, tmp, (size_t)k + 1);
  *len += (size_t)k;
}

static void key_shape(char **b, size_t *l, size_t *cap, ir_dtype dt, ir_shape s) {
  key_add(b, l, cap, "|%d:", (int)dt);
  for (int d = 0; d < s.rank; d++) key_add(b, l, cap, "%lld,", (long long)s.dim[d]);
}

static char *kernel_key(const ir_func *f, const ir_node *n, bool flat, bool inplace);

char *cg_node_key(const ir_func *f, const ir_node *n, bool inplace) {
  return kernel_key(f, n, cg_flat(f, n), inplace);
}

static char *kernel_key(const ir_func *f, const ir_node *n, bool flat, bool inplace) {
  char *b = NULL;
  size_t l = 0, cap = 0;
  key_add(&b, &l, &cap, "%d/%d%s", (int)n->op, n->nin, inplace ? "/inplace" : "");
  for (int k = 0; k < IR_MAX_ATTR; k++)
    key_add(&b, &l, &cap, "/%lld/%a", (long long)n->i[k], n->f[k]);
  if (n->op == IR_OP_LOAD) key_add(&b, &l, &cap, "/var%d", n->var);
  if (flat) {
    key_add(&b, &l, &cap, "/flat/%d", (int)n->dtype);
    for (int j = 0; j < n->nin; j++) /* which operands are single elements */
      key_add(&b, &l, &cap, "/%d", shape_numel(f->nodes[ir_operand(n, j)].shape) == 1);
    return b;
  }
  key_shape(&b, &l, &cap, n->dtype, n->shape);
  key_shape(&b, &l, &cap, n->dtype, n->ashape);
  for (int j = 0; j < n->nin; j++) {
    const ir_node *a = &f->nodes[ir_operand(n, j)];
    key_shape(&b, &l, &cap, a->dtype, a->shape);
  }
  return b;
}

/* A kernel function: internal, never inlined (identical nodes share it, and the
 * entry stays a list of calls), its output (attribute index 3: parameter 2) noalias
 * unless it is computed in place. */
LLVMValueRef cg_kernel_function(cg_ctx *c, const char *name, LLVMTypeRef fty, bool noalias_out) {
  LLVMValueRef kf = LLVMAddFunction(c->mod, name, fty);
  LLVMSetLinkage(kf, LLVMInternalLinkage);
  LLVMAddAttributeAtIndex(kf, LLVMAttributeFunctionIndex,
      LLVMCreateEnumAttribute(c->ctx, LLVMGetEnumAttributeKindForName("noinline", 8), 0));
  if (noalias_out)
    LLVMAddAttributeAtIndex(kf, 3,
        LLVMCreateEnumAttribute(c->ctx, LLVMGetEnumAttributeKindForName("noalias", 7), 0));
  return kf;
}

/* Node n (id) lowered as kernel kf's whole body, its output parameter 2: an entry
 * block, the range_error block checks branch to (returning 1), and 0 returned after
 * the node. c must already point at kf's parameters. */
int cg_lower_kernel_body(cg_ctx *c, LLVMValueRef kf, int id, const ir_node *n,
                         LLVMValueRef const *in) {
  c->entry = LLVMAppendBasicBlockInContext(c->ctx, kf, "entry");
  c->err_bb = LLVMAppendBasicBlockInContext(c->ctx, kf, "range_error");
  LLVMPositionBuilderAtEnd(c->b, c->err_bb);
  LLVMBuildRet(c->b, cg_i32c(c, 1));
  LLVMPositionBuilderAtEnd(c->b, c->entry);
  int rc = cg_lowerings[n->op].lower(c, id, n, in, LLVMGetParam(kf, 2));
  if (!rc) LLVMBuildRet(c->b, cg_i32c(c, 0));
  return rc;
}

/* inplace: out may be one of the operands (memplan.c), so it is not marked noalias */
static int lower_kernel(cg_ctx *c, cg_kernel_cache *kc, int id, const ir_node *n,
                        LLVMValueRef const *args, LLVMValueRef out, int64_t extra_off,
                        bool inplace) {
  int nin = n->nin, rc = 0;
  bool flat = cg_flat(c->f, n);
  char *key = kernel_key(c->f, n, flat, inplace);
  LLVMValueRef *cargs = calloc((size_t)nin + 4, sizeof *cargs);
  if (!key || !cargs) {
    free(key), free(cargs);
    return cg_fail(c, "out of memory");
  }
  LLVMTypeRef fty = NULL;
  LLVMValueRef kf = cg_kernel_find(kc, key, &fty);
  if (!kf) {
    LLVMTypeRef *pt = calloc((size_t)nin + 4, sizeof *pt);
    LLVMValueRef *kin = calloc((size_t)nin + 1, sizeof *kin);
    if (!pt || !kin) {
      free(pt), free(kin), free(key), free(cargs);
      return cg_fail(c, "out of memory");
    }
    pt[0] = c->pf32, pt[1] = c->pi8, pt[2] = c->pi8, pt[3] = c->i64;
    for (int j = 0; j < nin; j++) pt[4 + j] = c->pi8;
    fty = LLVMFunctionType(c->i32, pt, (unsigned)nin + 4, 0);
    char name[96];
    snprintf(name, sizeof name, "k%d.%s", kc->n, ir_ops[n->op].name);
    kf = cg_kernel_function(c, name, fty, !inplace);

    /* lower inside the kernel, then restore the entry's context */
    cg_ctx saved = *c;
    LLVMBasicBlockRef cur = LLVMGetInsertBlock(c->b);
    c->fn = kf;
    c->state = LLVMGetParam(kf, 0);
    c->extra = LLVMGetParam(kf, 1);
    c->numel = flat ? LLVMGetParam(kf, 3) : NULL;
    c->scratch = NULL;
    for (int j = 0; j < nin; j++) kin[j] = LLVMGetParam(kf, 4 + (unsigned)j);
    rc = cg_lower_kernel_body(c, kf, id, n, kin);
    c->fn = saved.fn, c->state = saved.state, c->scratch = saved.scratch;
    c->entry = saved.entry, c->err_bb = saved.err_bb;
    c->extra = NULL, c->numel = NULL;
    LLVMPositionBuilderAtEnd(c->b, cur);
    free(pt), free(kin);
    if (rc) {
      free(key), free(cargs);
      return rc;
    }
    if (cg_kernel_add(kc, key, kf, fty)) {
      free(cargs);
      return cg_fail(c, "out of memory");
    }
    key = NULL;
  }
  free(key);
  cargs[0] = c->state;
  cargs[1] = extra_off >= 0 ? cg_scratch_at(c, extra_off) : LLVMConstNull(c->pi8);
  cargs[2] = out;
  cargs[3] = cg_i64(c, shape_numel(n->shape));
  for (int j = 0; j < nin; j++) cargs[4 + j] = args[j];
  int site = c->prof ? cg_prof_site_begin(c, id, n, LLVMGetValueName(kf)) : -1;
  if (flat) { /* elementwise, never fails: large ones split over the runtime's threads */
    int64_t stride[4 + IR_MAX_IN] = {0, 0, 1, 0};
    for (int j = 0; j < nin && j < IR_MAX_IN; j++)
      stride[4 + j] = shape_numel(c->f->nodes[ir_operand(n, j)].shape) == 1 ? 0 : 1;
    cg_call_split(c, fty, kf, cargs, nin + 4, 3, stride, shape_numel(n->shape), 1);
    if (site >= 0) cg_prof_emit(c, "cg_prof_exit", site);
  } else {
    LLVMValueRef r = LLVMBuildCall2(c->b, fty, kf, cargs, (unsigned)nin + 4, "");
    if (site >= 0) cg_prof_emit(c, "cg_prof_exit", site);
    cg_check(c, LLVMBuildICmp(c->b, LLVMIntEQ, r, cg_i32c(c, 0), ""));
  }
  c->val[id] = out;
  free(cargs);
  return rc;
}

static int lower_func(cg_ctx *c, cg_kernel_cache *kc, const ir_func *f, const char *fname,
                      const cg_options *o, int64_t *scratch_size) {
  int nn = f->nnodes, rc = 1;
  kernel_plan kp = {0};
  memplan mp = {0};
  c->val = calloc((size_t)nn + 1, sizeof *c->val);
  LLVMValueRef *args = NULL;
  if (!c->val) {
    cg_fail(c, "out of memory");
    goto done;
  }
  for (int id = 0; id < nn; id++) {
    const ir_node *n = &f->nodes[id];
    if ((unsigned)n->op >= IR_OP_COUNT || !cg_lowerings[n->op].lower) {
      cg_fail(c, "%s: node %d: op %s is not lowered yet", f->name, id,
              (unsigned)n->op < IR_OP_COUNT ? ir_ops[n->op].name : "?");
      goto done;
    }
    if (n->block < 0 || n->block >= f->nblocks) {
      cg_fail(c, "%s: node %d is in block %d, outside 0..%d", f->name, id, n->block,
              f->nblocks - 1);
      goto done;
    }
  }
  if (cg_plan(f, o, &kp, &mp, c->err, c->errn)) goto done;
  *scratch_size = mp.arena;
  int maxin = 1;
  for (int id = 0; id < nn; id++)
    if (f->nodes[id].nin > maxin) maxin = f->nodes[id].nin;
  args = calloc((size_t)maxin, sizeof *args);
  if (!args) {
    cg_fail(c, "out of memory");
    goto done;
  }

  LLVMTypeRef params[4] = {c->pf32, LLVMPointerType(c->pi8, 0), LLVMPointerType(c->pi8, 0),
                           c->pi8};
  LLVMTypeRef fty = LLVMFunctionType(c->i32, params, 4, 0);
  c->fn = LLVMAddFunction(c->mod, fname, fty);
  for (unsigned j = 0; j < 4; j++) LLVMAddAttributeAtIndex(c->fn, j + 1,
      LLVMCreateEnumAttribute(c->ctx, LLVMGetEnumAttributeKindForName("noalias", 7), 0));
  c->state = LLVMGetParam(c->fn, 0);
  c->inputs = LLVMGetParam(c->fn, 1);
  c->outputs = LLVMGetParam(c->fn, 2);
  c->scratch = LLVMGetParam(c->fn, 3);
  c->f = f;
  c->entry = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "entry");
  c->err_bb = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "range_error");
  LLVMPositionBuilderAtEnd(c->b, c->err_bb);
  LLVMBuildRet(c->b, cg_i32c(c, 1));
  LLVMPositionBuilderAtEnd(c->b, c->entry);

  for (int k = 0; k < kp.nkernels; k++) {
    if (kp.first[k + 1] - kp.first[k] > 1) {
      if (cg_lower_fused(c, kc, &kp, &mp, k)) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s: kernel %d: %s", f->name, k, c->err);
        snprintf(c->err, c->errn, "%s", msg);
        goto done;
      }
      continue;
    }
    int id = kp.members[kp.first[k]];
    const ir_node *n = &f->nodes[id];
    for (int j = 0; j < n->nin; j++) {
      int a = ir_operand(n, j);
      if (a < 0 || a >= id || !c->val[a]) {
        cg_fail(c, "%s: node %d: operand %d (node %d) has no value", f->name, id, j, a);
        goto done;
      }
      args[j] = c->val[a];
    }
    LLVMValueRef out = mp.home[id] == id ? cg_scratch_at(c, mp.off[id]) : NULL;
    c->val[id] = out;
    if (out ? lower_kernel(c, kc, id, n, args, out, mp.extra_off[id], mp.inplace_of[id] >= 0)
            : cg_lowerings[n->op].lower(c, id, n, args, out)) {
      char msg[256];
      snprintf(msg, sizeof msg, "%s: node %d (%s): %s", f->name, id, ir_ops[n->op].name, c->err);
      snprintf(c->err, c->errn, "%s", msg);
      goto done;
    }
    if (!c->val[id]) {
      cg_fail(c, "%s: node %d (%s) produced no value", f->name, id, ir_ops[n->op].name);
      goto done;
    }
  }
  /* outputs: the whole value of each output node */
  for (int k = 0; k < f->noutputs; k++) {
    int id = f->outputs[k].node;
    if (id < 0 || id >= nn) {
      cg_fail(c, "%s: output %s is node %d, which does not exist", f->name,
              f->outputs[k].name, id);
      goto done;
    }
    LLVMValueRef kk = cg_i64(c, k);
    LLVMValueRef dst = LLVMBuildLoad2(c->b, c->pi8, cg_gep(c, c->pi8, c->outputs, kk), "");
    cg_copy4(c, dst, cg_i64(c, 0), c->val[id], cg_i64(c, 0),
             cg_i64(c, shape_numel(f->nodes[id].shape)));
  }
  LLVMBuildRet(c->b, cg_i32c(c, 0));
  rc = 0;
done:
  kernel_plan_free(&kp);
  memplan_free(&mp);
  free(c->val);
  free(args);
  c->val = NULL;
  return rc;
}

static void free_cache(cg_kernel_cache *kc) {
  for (int k = 0; k < kc->n; k++) free(kc->e[k].key);
  free(kc->e);
}

void cg_entry_name(char *buf, size_t n, const char *func) {
  snprintf(buf, n, "migc_fn_%s", func);
}

void cg_module_free(cg_module *cm) {
  if (cm->mod) LLVMDisposeModule(cm->mod);
  if (cm->tm) LLVMDisposeTargetMachine(cm->tm);
  if (cm->tsc) cg_jit_dispose_context(cm->tsc);
  for (int k = 0; k < cm->nfuncs; k++)
    if (cm->names) free(cm->names[k]);
  free(cm->names);
  free(cm->scratch);
  free(cm->ir_before);
  free(cm->ir_after);
  free(cm->cpu);
  free(cm->features);
  cg_profile_free(cm->prof);
  memset(cm, 0, sizeof *cm);
}

static int cg_lower_into(const ir_module *m, const cg_options *o, bool pic, cg_module *cm,
                         char *err, size_t errn);

int cg_lower_module(const ir_module *m, const cg_options *o, cg_module *cm, char *err,
                    size_t errn) {
  return cg_lower_into(m, o, false, cm, err, errn);
}

int cg_build(const ir_module *m, const cg_options *o, bool pic, cg_module *cm, char *err,
             size_t errn) {
  if (cg_lower_into(m, o, pic, cm, err, errn)) return 1;
  bool keep = o && o->keep_ir;
  double t1 = now_ms();
  cm->tm = cg_host_machine(cm->level, pic, pic && o ? o->cpu : NULL, &cm->cpu, &cm->features,
                           err, errn);
  if (!cm->tm || cg_optimize(cm->mod, cm->tm, cm->level, keep ? &cm->ir_before : NULL,
                             keep ? &cm->ir_after : NULL, err, errn)) {
    cg_module_free(cm);
    return 1;
  }
  cm->opt_ms = now_ms() - t1;
  return 0;
}

static int cg_lower_into(const ir_module *m, const cg_options *o, bool pic, cg_module *cm,
                         char *err, size_t errn) {
  double t0 = now_ms();
  memset(cm, 0, sizeof *cm);
  cm->level = o && o->opt_level > 0 ? o->opt_level : 2;
  if (cm->level > 3) cm->level = 3;
  cm->nfuncs = m->nfuncs;
  cm->names = calloc((size_t)m->nfuncs + 1, sizeof *cm->names);
  cm->scratch = calloc((size_t)m->nfuncs + 1, sizeof *cm->scratch);
  if (!cm->names || !cm->scratch) {
    snprintf(err, errn, "out of memory");
    cg_module_free(cm);
    return 1;
  }
  cg_ctx c = {0};
  c.err = err;
  c.errn = errn;
  c.m = m;
  if (o && o->profile && !pic && !(c.prof = cm->prof = cg_profile_new())) {
    snprintf(err, errn, "out of memory");
    cg_module_free(cm);
    return 1;
  }
  cm->tsc = cg_jit_new_context(&c.ctx);
  c.mod = LLVMModuleCreateWithNameInContext(m->name ? m->name : "migc", c.ctx);
  cm->mod = c.mod;
  c.b = LLVMCreateBuilderInContext(c.ctx);
  init_types(&c);
  cg_kernel_cache kc = {0};
  c.kc = &kc;
  int rc = 0;
  for (int k = 0; k < m->nfuncs && !rc; k++) {
    const ir_func *f = m->funcs[k];
    char fname[256];
    cg_entry_name(fname, sizeof fname, f->name);
    cm->names[k] = strdup(f->name);
    int64_t size = 0;
    if (!cm->names[k]) rc = cg_fail(&c, "out of memory");
    else rc = lower_func(&c, &kc, f, fname, o, &size);
    cm->scratch[k] = (size_t)size;
  }
  free_cache(&kc);
  LLVMDisposeBuilder(c.b);
  cm->lower_ms = now_ms() - t0;
  if (rc) {
    cg_module_free(cm);
    return 1;
  }
  return 0;
}

/* How many parts cg_compile makes machine code in (jit_parts.c): the cores this
 * process may run on (its affinity: taskset, a container's cpuset), at most 4. Kept
 * IR text is of one module, so keep_ir compiles one. */
static int compile_parts(const cg_options *o) {
  if (o && o->keep_ir) return 1;
  int n = o ? o->compile_threads : 0;
  if (n <= 0) {
    cpu_set_t set;
    long cores = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set)
                                                             : sysconf(_SC_NPROCESSORS_ONLN);
    n = cores > 4 ? 4 : cores > 0 ? (int)cores : 1;
  }
  return n;
}

cg_program *cg_compile(const ir_module *m, const cg_options *o, char *err, size_t errn) {
  double t0 = now_ms();
  cg_program *p = calloc(1, sizeof *p);
  if (!p) {
    snprintf(err, errn, "out of memory");
    return NULL;
  }
  int nparts = compile_parts(o);
  cg_module cm;
  if (nparts > 1 ? cg_lower_module(m, o, &cm, err, errn) : cg_build(m, o, false, &cm, err, errn)) {
    free(p);
    return NULL;
  }
  /* the program takes the tables; the JIT takes the module, context and machine */
  p->nfuncs = cm.nfuncs, p->names = cm.names, p->scratch = cm.scratch;
  p->ir_before = cm.ir_before, p->ir_after = cm.ir_after;
  p->cpu = cm.cpu, p->features = cm.features, p->prof = cm.prof;
  p->stats.lower_ms = cm.lower_ms, p->stats.opt_ms = cm.opt_ms;
  cm.names = NULL, cm.scratch = NULL, cm.ir_before = cm.ir_after = cm.cpu = cm.features = NULL;
  cm.prof = NULL;
  p->entries = calloc((size_t)m->nfuncs + 1, sizeof *p->entries);
  if (!p->entries) {
    snprintf(err, errn, "out of memory");
    cg_module_free(&cm);
    cg_free(p);
    return NULL;
  }
  bool ref = o && o->reference_gemm;
  if (nparts > 1) {
    LLVMMemoryBufferRef objs[64] = {0};
    if (nparts > 64) nparts = 64;
    LLVMTargetMachineRef tm =
        cg_host_machine(cm.level, false, NULL, &p->cpu, &p->features, err, errn);
    int rc = !tm || cg_compile_parts(cm.mod, cm.level, nparts, objs, &p->stats.opt_ms, err, errn);
    cg_module_free(&cm); /* the lowered module: the parts have their own copies */
    if (rc) {
      if (tm) LLVMDisposeTargetMachine(tm);
      cg_free(p);
      return NULL;
    }
    p->jit = cg_jit_create_objects(tm, objs, nparts, ref, p->prof != NULL, err, errn);
  } else {
    p->jit = cg_jit_create(&cm, ref, p->prof != NULL, err, errn);
  }
  if (!p->jit) {
    cg_free(p);
    return NULL;
  }
  /* eager lookups: LLJIT compiles (or links) on first lookup */
  for (int k = 0; k < m->nfuncs; k++) {
    char fname[256];
    cg_entry_name(fname, sizeof fname, m->funcs[k]->name);
    void *addr = cg_jit_lookup(p->jit, fname, err, errn);
    if (!addr) {
      cg_free(p);
      return NULL;
    }
    p->entries[k] = (cg_entry)addr;
  }
#ifdef __GLIBC__
  /* what LLVM freed (modules, contexts, the parts' thread arenas) goes back to the
   * system instead of counting in the process's peak memory while it trains:
   * infogan_mnist's resident memory after compiling went from 85 to 74 MB */
  malloc_trim(0);
#endif
  p->stats.total_ms = now_ms() - t0;
  p->stats.jit_ms = p->stats.total_ms - p->stats.lower_ms - p->stats.opt_ms;
  return p;
}

static int find(const cg_program *p, const char *func) {
  for (int k = 0; k < p->nfuncs; k++)
    if (p->names[k] && !strcmp(p->names[k], func)) return k;
  return -1;
}

cg_entry cg_lookup(const cg_program *p, const char *func) {
  int k = find(p, func);
  return k < 0 ? NULL : p->entries[k];
}

size_t cg_scratch_size(const cg_program *p, const char *func) {
  int k = find(p, func);
  return k < 0 ? 0 : p->scratch[k];
}

cg_stats cg_get_stats(const cg_program *p) { return p->stats; }

cg_profile *cg_get_profile(const cg_program *p) { return p->prof; }

bool cg_dump_llvm(const cg_program *p, FILE *out, bool optimized) {
  const char *ir = optimized ? p->ir_after : p->ir_before;
  if (!ir) return false;
  fprintf(out, "; target cpu: %s\n; target features: %s\n", p->cpu ? p->cpu : "?",
          p->features ? p->features : "?");
  fputs(ir, out);
  return true;
}

void cg_free(cg_program *p) {
  if (!p) return;
  if (p->jit) cg_jit_free(p->jit);
  for (int k = 0; k < p->nfuncs; k++)
    if (p->names) free(p->names[k]);
  free(p->names);
  free(p->entries);
  free(p->scratch);
  free(p->ir_before);
  free(p->ir_after);
  free(p->cpu);
  free(p->features);
  cg_profile_free(p->prof);
  free(p);
}
