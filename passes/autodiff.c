/* autodiff.c: reverse-mode automatic differentiation as an IR pass.
 * Assumes: a verified function whose step s has a scalar loss in a block <= its own.
 * Guarantees: only appends nodes, all in the step's block, so the forward program is
 * untouched; adjoints flow only through nodes that lie on a path from a parameter of
 * the step's nets to the loss (everything else, other nets' parameters included, is
 * a constant of this step); adjoints of a value used several times are summed in a
 * fixed order (reverse node order), so the result does not depend on anything but
 * the IR. */
#include "passes.h"

#include <stdlib.h>
#include <string.h>

static bool trained_by(const ir_module *m, const ir_step *st, int var) {
  const ir_var *v = &m->vars[var];
  if (v->kind != VAR_PARAM) return false;
  for (int j = 0; j < st->nnets; j++)
    if (st->nets[j] == v->net) return true;
  return false;
}

static int accumulate(ir_func *f, int block, int have, int add) {
  if (have < 0) return add;
  int in[2] = {have, add};
  return ir_emit_checked(f, block, IR_OP_ADD, in, 2, NULL);
}

int pass_autodiff(const ir_module *m, ir_func *f, int s, int *grads, char *err, size_t errn) {
  const ir_step st = f->steps[s];
  for (int v = 0; v < m->nvars; v++) grads[v] = -1;
  if (st.loss < 0 || st.loss >= f->nnodes) {
    snprintf(err, errn, "step %s: its loss is not a node of %s", st.name, f->name);
    return -1;
  }
  int n = st.loss + 1; /* nothing after the loss can reach it */

  /* active: f32 values that depend on a trained parameter and that the loss uses. */
  char *from_param = calloc((size_t)n, 1), *to_loss = calloc((size_t)n, 1);
  for (int id = 0; id < n; id++) {
    const ir_node *nd = &f->nodes[id];
    if (nd->dtype != IR_F32 || nd->op == IR_OP_STORE) continue;
    if (nd->op == IR_OP_LOAD) {
      from_param[id] = trained_by(m, &st, nd->var);
      continue;
    }
    for (int j = 0; j < nd->nin && !from_param[id]; j++) from_param[id] = from_param[ir_operand(nd, j)];
  }
  to_loss[st.loss] = 1;
  for (int id = n - 1; id >= 0; id--)
    if (to_loss[id])
      for (int j = 0; j < f->nodes[id].nin; j++) to_loss[ir_operand(&f->nodes[id], j)] = 1;

  int *adj = malloc((size_t)n * sizeof *adj);
  for (int id = 0; id < n; id++) adj[id] = -1;
  int status = 0;
  if (from_param[st.loss]) {
    ir_attrs one = {.f = {1.0}};
    adj[st.loss] = ir_emit_checked(f, st.block, IR_OP_CONST, NULL, 0, &one);
  }
  for (int id = n - 1; id >= 0 && status == 0; id--) {
    if (adj[id] < 0 || !from_param[id] || !to_loss[id]) continue;
    ir_node nd = f->nodes[id]; /* a copy: rules append nodes */
    if (nd.op == IR_OP_LOAD) {
      grads[nd.var] = accumulate(f, st.block, grads[nd.var], adj[id]);
      continue;
    }
    ir_vjp_rule rule = ir_ops[nd.op].vjp;
    if (!rule) {
      snprintf(err, errn, "step %s: cannot differentiate through %s (node %%%d)", st.name,
               ir_ops[nd.op].name, id);
      status = -1;
      break;
    }
    bool *want = calloc((size_t)nd.nin, sizeof *want);
    int *dx = malloc((size_t)nd.nin * sizeof *dx);
    for (int j = 0; j < nd.nin; j++) {
      int a = ir_operand(&nd, j);
      want[j] = from_param[a] && to_loss[a];
      dx[j] = -1;
    }
    rule(f, st.block, id, adj[id], want, dx);
    for (int j = 0; j < nd.nin; j++)
      if (want[j] && dx[j] >= 0) {
        int a = ir_operand(&nd, j);
        adj[a] = accumulate(f, st.block, adj[a], dx[j]);
      }
    free(want);
    free(dx);
  }
  free(adj);
  free(from_param);
  free(to_loss);
  return status;
}
