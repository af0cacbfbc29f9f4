/* allreduce.c: data parallelism's one change to a training step. Each of N processes
 * runs the step on its slice of the global batch; before a step's update, its
 * gradients are averaged over the processes, so every process applies the same update
 * to the same parameters and they stay identical.
 * Assumes: pass_autodiff has just produced step s's gradients (grads[v], one node per
 * trained variable) and pass_optimizer has not yet used them; m->ranks > 1.
 * Guarantees: appends to the step's block, after the gradients and before anything the
 * optimizer will append, one flat buffer of all of the step's gradients (in variable
 * order, each flattened), one `allreduce` node summing it over the processes and
 * scaling by 1/ranks, and the slices of the result reshaped back; grads[v] is replaced
 * by its averaged slice. One call per step (not one per tensor): a single message of
 * the whole step's gradients, which is what the transport does best.
 * Why the mean: every loss is a mean over the batch, so the mean over processes of
 * each process's gradient is the gradient of the global batch's loss. */
#include "passes.h"

#include <stdlib.h>

static int reshape(ir_func *f, int block, int x, ir_shape to) {
  ir_attrs a = {.ashape = to};
  return ir_emit_checked(f, block, IR_OP_RESHAPE, &x, 1, &a);
}

void pass_allreduce(const ir_module *m, ir_func *f, int s, int *grads) {
  int block = f->steps[s].block, n = 0;
  int *flat = malloc((size_t)(m->nvars + 1) * sizeof *flat);
  for (int v = 0; v < m->nvars; v++) {
    if (grads[v] < 0) continue;
    int64_t len = shape_numel(m->vars[v].shape);
    flat[n++] = reshape(f, block, grads[v], shape_make(1, &len, false));
  }
  if (n > 0) {
    ir_attrs cat = {.i = {0}};
    int all = n == 1 ? flat[0] : ir_emit_checked(f, block, IR_OP_CONCAT, flat, n, &cat);
    ir_attrs red = {.f = {1.0 / m->ranks}};
    int sum = ir_emit_checked(f, block, IR_OP_ALLREDUCE, &all, 1, &red);
    f->nodes[sum].label = "gradients";
    int64_t at = 0;
    for (int v = 0; v < m->nvars; v++) {
      if (grads[v] < 0) continue;
      int64_t len = shape_numel(m->vars[v].shape);
      ir_attrs sl = {.i = {0, at, at + len}};
      int part = ir_emit_checked(f, block, IR_OP_SLICE, &sum, 1, &sl);
      grads[v] = reshape(f, block, part, m->vars[v].shape);
      at += len;
    }
  }
  free(flat);
}
