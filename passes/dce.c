/* dce.c: dead-code elimination.
 * Assumes: a function that verifies. Guarantees: the same outputs, step losses and
 * stores, computed by the same nodes in the same relative order; every remaining
 * node is live; ids are dense and ascending in (block, id) order, so ids again
 * equal execution order. */
#include "passes.h"

#include <stdlib.h>
#include <string.h>

static void mark(const ir_func *f, int id, char *live) {
  /* Operands have smaller ids, so one reverse sweep after seeding would do; an
   * explicit stack keeps this independent of that invariant. */
  int *stack = malloc((size_t)f->nnodes * sizeof *stack);
  int top = 0;
  if (!live[id]) live[id] = 1, stack[top++] = id;
  while (top) {
    const ir_node *n = &f->nodes[stack[--top]];
    for (int j = 0; j < n->nin; j++) {
      int a = ir_operand(n, j);
      if (!live[a]) live[a] = 1, stack[top++] = a;
    }
  }
  free(stack);
}

int pass_dce(ir_func *f) {
  if (f->nnodes == 0) return 0;
  char *live = calloc((size_t)f->nnodes, 1);
  for (int k = 0; k < f->noutputs; k++) mark(f, f->outputs[k].node, live);
  for (int s = 0; s < f->nsteps; s++) mark(f, f->steps[s].loss, live);
  for (int id = 0; id < f->nnodes; id++)
    if (ir_ops[f->nodes[id].op].effect) mark(f, id, live);
  /* INPUT nodes stay: callers pass every function input whether or not it is used. */
  for (int id = 0; id < f->nnodes; id++)
    if (f->nodes[id].op == IR_OP_INPUT) live[id] = 1;

  int *order = ir_schedule(f);
  int *newid = malloc((size_t)f->nnodes * sizeof *newid);
  ir_node *nodes = malloc((size_t)f->nnodes * sizeof *nodes);
  int n = 0;
  for (int k = 0; k < f->nnodes; k++) {
    int id = order[k];
    if (!live[id]) {
      free(f->nodes[id].in_extra);
      newid[id] = -1;
      continue;
    }
    newid[id] = n;
    ir_node nd = f->nodes[id];
    for (int j = 0; j < nd.nin && j < IR_MAX_IN; j++) nd.in[j] = newid[nd.in[j]];
    for (int j = IR_MAX_IN; j < nd.nin; j++)
      nd.in_extra[j - IR_MAX_IN] = newid[nd.in_extra[j - IR_MAX_IN]];
    nodes[n++] = nd;
  }
  int removed = f->nnodes - n;
  free(f->nodes);
  f->nodes = nodes;
  f->nnodes = f->cap = n;
  for (int k = 0; k < f->noutputs; k++) f->outputs[k].node = newid[f->outputs[k].node];
  for (int s = 0; s < f->nsteps; s++) f->steps[s].loss = newid[f->steps[s].loss];
  free(order);
  free(newid);
  free(live);
  return removed;
}
