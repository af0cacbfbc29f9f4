/* backprop.c: the reverse sweep that both kinds of gradient share: a step's gradient
 * with respect to its nets' parameters (passes/autodiff.c) and the language's
 * grad(y, x) with respect to a value of the train block (frontend). Because the
 * sweep only appends ordinary IR ops, the nodes of grad(y, x) can be swept again by
 * a step: that is second-order reverse mode, with no machinery of its own.
 *
 * Adjoints of a value used several times are summed in reverse node order, so the
 * result depends on nothing but the IR. */
#include "ir.h"

#include <stdio.h>
#include <stdlib.h>

int ir_accumulate(ir_func *f, int block, int have, int add) {
  if (have < 0) return add;
  int in[2] = {have, add};
  return ir_emit_checked(f, block, IR_OP_ADD, in, 2, NULL);
}

/* Does a node of [from, f->nnodes) compute a real value from real operands by an op that
 * has no vjp rule, so that a second sweep would stop there? (onehot of an integer code
 * passes: nothing flows into it.) */
static bool emitted_once_only(const ir_func *f, int from) {
  for (int id = from; id < f->nnodes; id++) {
    const ir_node *nd = &f->nodes[id];
    if (nd->dtype != IR_F32 || ir_ops[nd->op].vjp) continue;
    for (int j = 0; j < nd->nin; j++)
      if (f->nodes[ir_operand(nd, j)].dtype == IR_F32) return true;
  }
  return false;
}

int ir_backprop(ir_func *f, int block, int y, const char *source, ir_backprop_visit visit,
                void *ctx, int *adj, int *once_only, int *bad, char *err, size_t errn) {
  *bad = -1;
  if (once_only) *once_only = -1;
  if (y < 0 || y >= f->nnodes) {
    snprintf(err, errn, "no node %%%d to differentiate", y);
    return -1;
  }
  int n = y + 1; /* nothing after y can reach it */
  /* active: f32 values that depend on a source and that y uses. */
  char *from_src = calloc((size_t)n, 1), *to_y = calloc((size_t)n, 1);
  for (int id = 0; id < n; id++) {
    const ir_node *nd = &f->nodes[id];
    if (nd->dtype != IR_F32 || nd->op == IR_OP_STORE) continue;
    if (source[id]) {
      from_src[id] = 1;
      continue;
    }
    for (int j = 0; j < nd->nin && !from_src[id]; j++) from_src[id] = from_src[ir_operand(nd, j)];
  }
  to_y[y] = 1;
  for (int id = n - 1; id >= 0; id--)
    if (to_y[id])
      for (int j = 0; j < f->nodes[id].nin; j++) to_y[ir_operand(&f->nodes[id], j)] = 1;

  for (int id = 0; id < n; id++) adj[id] = -1;
  int status = 0;
  if (from_src[y]) {
    ir_attrs one = {.f = {1.0}};
    adj[y] = ir_emit_checked(f, block, IR_OP_CONST, NULL, 0, &one);
  }
  for (int id = n - 1; id >= 0 && status == 0; id--) {
    if (adj[id] < 0 || !from_src[id] || !to_y[id]) continue;
    if (source[id]) {
      if (visit) visit(ctx, f, id, adj[id]);
      continue;
    }
    ir_node nd = f->nodes[id]; /* a copy: rules append nodes */
    ir_vjp_rule rule = ir_ops[nd.op].vjp;
    if (!rule) {
      snprintf(err, errn, "cannot differentiate through %s (node %%%d)", ir_ops[nd.op].name, id);
      *bad = id;
      status = -1;
      break;
    }
    bool *want = calloc((size_t)nd.nin, sizeof *want);
    int *dx = malloc((size_t)nd.nin * sizeof *dx);
    for (int j = 0; j < nd.nin; j++) {
      int a = ir_operand(&nd, j);
      want[j] = from_src[a] && to_y[a];
      dx[j] = -1;
    }
    int before = f->nnodes;
    rule(f, block, id, adj[id], want, dx);
    if (once_only && *once_only < 0 && emitted_once_only(f, before)) *once_only = id;
    for (int j = 0; j < nd.nin; j++)
      if (want[j] && dx[j] >= 0) {
        int a = ir_operand(&nd, j);
        adj[a] = ir_accumulate(f, block, adj[a], dx[j]);
      }
    free(want);
    free(dx);
  }
  free(from_src);
  free(to_y);
  return status;
}
