/* autodiff.c: reverse-mode automatic differentiation of every step, as an IR pass.
 * Assumes: a verified function whose step s has a scalar loss in a block <= its own.
 * Guarantees: only appends nodes, all in the step's block, so the forward program is
 * untouched; adjoints flow only through nodes that lie on a path from a parameter of
 * the step's nets to the loss (everything else, other nets' parameters included, is
 * a constant of this step). The sweep itself is ir_backprop (ir/backprop.c), which
 * the language's grad() uses too: a loss that holds a grad() is differentiated a
 * second time here. */
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

typedef struct {
  int block;
  int *grads;
} grad_sink;

/* A parameter loaded several times gets the sum of its loads' adjoints. */
static void add_to_grad(void *ctx, ir_func *f, int id, int adj) {
  grad_sink *g = ctx;
  int var = f->nodes[id].var;
  g->grads[var] = ir_accumulate(f, g->block, g->grads[var], adj);
}

int pass_autodiff(const ir_module *m, ir_func *f, int s, int *grads, char *err, size_t errn) {
  const ir_step st = f->steps[s];
  for (int v = 0; v < m->nvars; v++) grads[v] = -1;
  if (st.loss < 0 || st.loss >= f->nnodes) {
    snprintf(err, errn, "step %s: its loss is not a node of %s", st.name, f->name);
    return -1;
  }
  int n = st.loss + 1;
  char *source = calloc((size_t)n, 1);
  for (int id = 0; id < n; id++) {
    const ir_node *nd = &f->nodes[id];
    source[id] = nd->op == IR_OP_LOAD && nd->dtype == IR_F32 && trained_by(m, &st, nd->var);
  }
  int *adj = malloc((size_t)n * sizeof *adj);
  grad_sink sink = {st.block, grads};
  char why[256] = "";
  int bad = -1;
  int status = ir_backprop(f, st.block, st.loss, source, add_to_grad, &sink, adj, NULL, &bad,
                           why, sizeof why);
  if (status) snprintf(err, errn, "step %s: %s", st.name, why);
  free(adj);
  free(source);
  return status;
}
