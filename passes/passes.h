/* passes.h: the whole public surface of migc's IR-to-IR passes. Each pass is one
 * file doing one thing; its header comment states what it assumes and what it
 * guarantees, and the IR verifies after it. */
#ifndef MIGC_PASSES_H
#define MIGC_PASSES_H

#include "../ir/ir.h"

/* ---- dce.c: dead-code elimination --------------------------------------------- */

/* Removes every node of f whose value reaches no output, no step's loss and no
 * effect (store), then renumbers the survivors densely in execution order. Returns
 * the number of nodes removed. */
int pass_dce(ir_func *f);

/* ---- constfold.c: constant folding -------------------------------------------------- */

/* Scalar elementwise nodes of constants become constants of the value they would
 * compute (bit for bit as the f32 interpreter and native code); operands are left for
 * dce. Returns how many were folded. */
int pass_constfold(ir_func *f);

/* ---- simplify.c: exact rewrites -------------------------------------------------------- */

/* Common subexpressions merged, x * 1 and reshape chains removed, every value bit for
 * bit as before; the replaced nodes are left for dce. Returns how many were replaced. */
int pass_simplify(ir_func *f);

/* ---- autodiff.c: reverse-mode differentiation of one step ------------------------- */

/* Appends to step s's block the gradient of its loss with respect to every parameter
 * of the nets the step names. grads[v] (one slot per module variable) receives the
 * node holding d loss / d var v, or -1 where the loss does not depend on v or the step
 * does not train it. Returns 0, or -1 with a message naming the op on the path that
 * has no gradient rule. */
int pass_autodiff(const ir_module *m, ir_func *f, int s, int *grads, char *err, size_t errn);

/* ---- optimizer.c: the update of one step ------------------------------------------- */

/* Appends step s's parameter update, given its gradients: Adam (bias-corrected, with
 * optional L2 weight decay, exactly as torch.optim.Adam) or SGD with momentum (as
 * torch.optim.SGD). Adds the state it needs to the module: STEP.t (the step counter)
 * and PARAM@STEP.m / .v (moments, zero at the start), then recomputes the layout.
 * Parameters without a gradient are left alone, as PyTorch skips them. Marks the
 * step lowered. */
void pass_optimizer(ir_module *m, ir_func *f, int s, const int *grads);

/* ---- allreduce.c: gradients averaged across the processes of a data-parallel run -- */

/* Replaces step s's gradients (grads[v], from pass_autodiff) by their mean over the
 * m->ranks processes: one flat buffer of all of them, one `allreduce` node, slices
 * back. Run between autodiff and the optimizer, and only when m->ranks > 1. */
void pass_allreduce(const ir_module *m, ir_func *f, int s, int *grads);

/* autodiff, then (m->ranks > 1) allreduce, then optimizer for every step of
 * train_step, in order. Returns 0 or -1 with a message. */
int pass_lower_steps(ir_module *m, char *err, size_t errn);

/* ---- pipeline.c: the passes in order, each verified ------------------------------------- */

typedef struct {
  const char *name; /* as in --no-NAME */
  const char *doc;  /* one line for --help */
  int (*run)(ir_module *m, char *err, size_t errn);
} pass_info;

extern const pass_info passes[];
extern const int npasses;

typedef struct {
  bool verify_each;      /* ir_verify after every pass (the default) */
  const char **disabled; /* names of passes to skip (--no-NAME) */
  int ndisabled;
} pass_options;

/* Runs every enabled pass in order; with verify_each, the IR must verify after each,
 * and a failure names the pass that broke it. Returns 0, or -1 with the first error
 * (a pass's own, or the verifier's) in d. */
int passes_run(ir_module *m, const pass_options *o, diag_sink *d);
const pass_info *pass_find(const char *name);

/* ---- gradcheck.c: analytic gradients against finite differences ------------------- */

typedef struct gradcheck_result {
  char *step, *var;
  int64_t numel;
  int checks;       /* directional and element comparisons made */
  double grad_norm; /* of the analytic gradient */
  double worst;     /* worst relative error of those comparisons */
} gradcheck_result;

typedef struct {
  const char *step; /* NULL: every step */
  uint64_t seed;    /* initial parameters and sampled inputs */
  int elements;     /* single elements checked per tensor, besides one random direction */
  double h;         /* finite-difference step, relative to max(1, |parameter|) */
  /* called (when not NULL) once the analytic gradients are computed (done 0, r NULL),
   * then after each tensor with its result: a big model takes minutes */
  void (*progress)(void *ctx, const gradcheck_result *r, int done, int total,
                   double seconds);
  void *progress_ctx;
} gradcheck_options;

/* Differentiates every step of m's train_step (or the one named) without applying
 * updates, runs it in double precision from parameters initialised with the seed on
 * sampled inputs, and compares each parameter tensor's gradient with central
 * differences of the step's loss: along one random direction, and at single elements
 * (the largest-magnitude one first, then random ones). The relative error of a
 * comparison is |a - d| / max(|a|, |d|, 1e5 DBL_EPSILON |L| / h): derivatives
 * smaller than the differences' rounding noise are compared absolutely. m gains two functions. Returns the
 * number of results (in *out, freed with gradcheck_free), or -1 with a message. */
int gradcheck(ir_module *m, const gradcheck_options *o, gradcheck_result **out, char *err,
              size_t errn);
void gradcheck_free(gradcheck_result *r, int n);

/* ---- fuse.c: which nodes run together in one kernel ---------------------------------- */

/* The kernels of a function: a partition of its nodes, each kernel run at once at the
 * place of its last node in ir_schedule order. Kernels are numbered in execution order.
 * A value is `stored` when something outside its kernel reads it (another kernel, an
 * output); a fused kernel keeps its other values in registers. */
typedef struct {
  int nnodes, nkernels;
  int *kernel_of; /* per node: its kernel */
  bool *stored;   /* per node: its value is written to memory */
  int *members;   /* the nodes of every kernel, kernel by kernel, in schedule order */
  int *first;     /* per kernel (and one past the last): index of its first node in members */
} kernel_plan;

/* Every node its own kernel, every value stored: the program as the interpreter runs it. */
int kernel_plan_unfused(const ir_func *f, kernel_plan *kp);
/* Fuses chains of elementwise ops over the same element count into one kernel each
 * (see fuse.c for the rules); values used only inside their kernel are not stored. */
int pass_fuse(const ir_func *f, kernel_plan *kp);
void kernel_plan_free(kernel_plan *kp);
/* Whether n may head a kernel as a GEMM whose elementwise consumers run over each block
 * of its output as an epilogue: matmul, conv, deconv, conv_grad_x (f32). */
bool fuse_gemm_head(const ir_func *f, const ir_node *n);
/* The GEMM heading kernel k of kp (a kernel of several nodes), or -1. */
int kernel_head(const ir_func *f, const kernel_plan *kp, int k);
/* Whether n is an elementwise op whose value element i depends only on element i of
 * each operand of the same element count (and on single-element operands): unary
 * math, binary ops without broadcasting, relu/lrelu adjoints. */
bool fuse_elementwise(const ir_func *f, const ir_node *n);
/* Whether n is a binary op with one operand of its shape and the other smaller and
 * broadcast to it (a bias add, a batch statistic applied): fusable by a loop nest over
 * the shape, the smaller operand read through broadcast strides. */
bool fuse_broadcast(const ir_func *f, const ir_node *n);

/* ---- memplan.c: one arena for every temporary ------------------------------------------ */

/* Extra scratch bytes a node needs while it runs, beyond its value (im2col columns,
 * double accumulators): the code generator's own requirement, passed in so passes do
 * not depend on codegen. */
typedef int64_t (*memplan_extra_fn)(const ir_func *f, const ir_node *n);

typedef struct {
  int nnodes;
  int64_t *off;       /* per node: byte offset of its value in the arena, or -1 when it
                         has no buffer of its own (input, view, value kept in registers) */
  int *home;          /* per node: the node whose buffer holds its value (itself when it
                         has one, the operand for reshape and store); -1: an input or a
                         value in registers */
  int64_t *extra_off; /* per node: byte offset of its extra scratch, -1 for none */
  int64_t *extra;     /* per node: extra scratch bytes */
  int *inplace_of;    /* per node: the node whose dying buffer it reuses in place, or -1 */
  bool *in_state;     /* per node: a load that reads its variable's slice of the state in
                         place (no buffer: home -1), every reader running before the
                         variable's next store */
  int64_t arena;      /* bytes the plan needs */
  int64_t peak;       /* the most bytes live at one kernel: a lower bound for arena */
  int64_t naive;      /* one region per value and per extra scratch, 64-byte aligned: the
                         layout before planning, and the sum of all buffers */
} memplan;

/* Plans f's arena for the kernels kp: loads whose readers all run before the next store
 * of their variable read the state in place (no buffer); liveness over kernel
 * positions (a buffer is live from the kernel that writes it through the last kernel
 * that reads it or any view of it, outputs to the end), in-place reuse where an
 * elementwise kernel reads a buffer of its own size for the last time, then first-fit
 * placement, largest buffers first.
 * Returns 0, or -1 when memory runs out. */
int pass_memplan(const ir_func *f, const kernel_plan *kp, memplan_extra_fn extra, bool inplace,
                 memplan *mp);
/* The layout before planning: one region per value and per extra scratch, in node
 * order (what --no-memplan compiles with). */
int memplan_naive(const ir_func *f, const kernel_plan *kp, memplan_extra_fn extra,
                  memplan *mp);
/* Checks a plan against liveness recomputed from f: no two buffers (values or extra
 * scratch) that are live at the same kernel overlap, unless one reuses the other in
 * place; every region lies inside the arena; the arena is no larger than the naive
 * total; no store changes a variable while a load read in the state is still read. Writes the first violation to err; returns true if none. */
bool memplan_verify(const ir_func *f, const kernel_plan *kp, const memplan *mp, char *err,
                    size_t errn);
void memplan_free(memplan *mp);

#endif
