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

typedef struct {
  const char *step; /* NULL: every step */
  uint64_t seed;    /* initial parameters and sampled inputs */
  int elements;     /* single elements checked per tensor, besides one random direction */
  double h;         /* finite-difference step, relative to max(1, |parameter|) */
} gradcheck_options;

typedef struct {
  char *step, *var;
  int64_t numel;
  int checks;       /* directional and element comparisons made */
  double grad_norm; /* of the analytic gradient */
  double worst;     /* worst relative error of those comparisons */
} gradcheck_result;

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

#endif
