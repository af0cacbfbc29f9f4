/* grad.c: the language's grad(y, x), the gradient of a scalar with respect to a tensor
 * value, as ordinary IR appended where it is written (ir_backprop, the sweep the steps
 * use). A step whose loss uses it is then differentiated through it: second-order
 * reverse mode, as gradient penalties (WGAN-GP, R1) need. The checks here are the
 * ones a user can trip over; they are reported at the call. */
#include "elab.h"

#include <stdlib.h>
#include <string.h>

/* What the user wrote for grad's second argument, for messages: its name, when it is
 * one. */
static const char *said(const ast_expr *raw) {
  return raw && raw->kind == EXPR_NAME ? raw->name : "its second argument";
}

value b_grad(elab *e, call_args *a) {
  value y = a->args[0], x = a->args[1];
  if (!need_tensor(e, y, "grad's first argument") || !need_tensor(e, x, "grad's second argument"))
    return val_poison();
  char sh[128];
  const ir_node *yn = node_of(e, y);
  if (yn->shape.rank != 0 || yn->shape.batched) {
    user_shape(e, y, sh, sizeof sh);
    diag_error(e->d, a->raw[0] ? a->raw[0]->span : y.span,
               "grad differentiates a scalar, got %s; sum or average it first, "
               "e.g. grad(sum(D(xhat)), xhat)",
               sh);
    return val_poison();
  }
  const ir_node *xn = node_of(e, x);
  if (xn->dtype != IR_F32) {
    diag_error(e->d, x.span, "grad differentiates with respect to real values; %s holds integers",
               said(a->raw[1]));
    return val_poison();
  }
  /* No check for "a net's parameter": no expression names one (layers load their own
   * weights), so x is always a value computed or read in by the program. */

  ir_func *f = e->f;
  int first = f->nnodes, block = f->nblocks - 1;
  char *source = calloc((size_t)y.node + 1, 1);
  int *adj = malloc(((size_t)y.node + 1) * sizeof *adj);
  if (x.node <= y.node) source[x.node] = 1;
  int once_only = -1, bad = -1;
  char why[256] = "";
  int status = ir_backprop(f, block, y.node, source, NULL, NULL, adj, &once_only, &bad, why,
                           sizeof why);
  int g = status == 0 && x.node <= y.node ? adj[x.node] : -1;
  free(source);
  free(adj);

  value out = val_poison();
  if (status) {
    diag_error(e->d, a->call->span, "grad: %s", why);
  } else if (g < 0) {
    diag_error(e->d, a->call->span, "grad: the first argument does not depend on %s, so its "
                                    "gradient would be zero everywhere",
               said(a->raw[1]));
  } else if (once_only >= 0) {
    const ir_node *at = &f->nodes[once_only];
    diag_error(e->d, a->call->span,
               "grad goes back through %s, whose gradient migc cannot differentiate again, "
               "so no step could train through this grad()",
               ir_ops[at->op].name);
    bool norm = at->op == IR_OP_BATCHNORM;
    if (at->span.file)
      diag_note(e->d, at->span, "this %s is between %s and the first argument%s",
                ir_ops[at->op].name, said(a->raw[1]),
                norm ? "; a net under grad() can use layernorm, groupnorm or no normalisation"
                     : "");
  } else {
    out = val_node(e, g, a->call->span, a->call->span, NULL);
  }
  /* The gradient's nodes belong to this call: dumps and profiles say so. */
  for (int id = first; id < f->nnodes; id++) {
    f->nodes[id].span = a->call->span;
    f->nodes[id].label = "grad";
  }
  return out;
}
