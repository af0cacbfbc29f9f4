/* mi_terms.c: the InfoGAN terms an MI estimate is made of (see ir.h). The frontend
 * builds them (frontend/builtins.c) as
 *   info_categorical(c, logits)     one INFO_CATEGORICAL node: ln K - cross-entropy
 *   info_gaussian(c, mean, std)     SUB(CONST H(c), GAUSSIAN_NLL(mean, c))
 * and a report may add several (`report mi = mi_c + mi_s`). Anything else, a scaled
 * term or a difference of two, is not an estimate here. */
#include "ir.h"

/* Module input read by node `id` of f, or -1 when the node is not an input. */
static int input_of(const ir_func *f, int id) {
  const ir_node *n = &f->nodes[id];
  return n->op == IR_OP_INPUT ? f->inputs[n->i[0]] : -1;
}

/* Values per sample of a batched [N,...] node. */
static int64_t per_sample(const ir_node *n) {
  return n->shape.rank >= 1 && n->shape.dim[0] > 0 ? shape_numel(n->shape) / n->shape.dim[0] : 0;
}

/* Appends the terms of node id to t[*n..max); false if id is not a sum of terms. */
static bool collect(const ir_func *f, int id, ir_mi_term *t, int *n, int max) {
  const ir_node *x = &f->nodes[id];
  if (x->op == IR_OP_ADD && x->shape.rank == 0)
    return collect(f, x->in[0], t, n, max) && collect(f, x->in[1], t, n, max);
  if (*n >= max) return false;
  ir_mi_term term = {.node = id, .code = -1};
  if (x->op == IR_OP_INFO_CATEGORICAL) {
    term.op = IR_OP_INFO_CATEGORICAL;
    term.pred = x->in[0];
    term.code = input_of(f, x->in[1]);
    term.dims = f->nodes[x->in[0]].shape.dim[1];
  } else if (x->op == IR_OP_SUB && f->nodes[x->in[0]].op == IR_OP_CONST &&
             f->nodes[x->in[1]].op == IR_OP_GAUSSIAN_NLL) {
    const ir_node *nll = &f->nodes[x->in[1]];
    term.op = IR_OP_GAUSSIAN_NLL;
    term.pred = nll->in[0];
    term.code = input_of(f, nll->in[1]);
    term.dims = per_sample(&f->nodes[nll->in[0]]);
    term.h = f->nodes[x->in[0]].f[0];
    term.std = nll->f[0];
  } else {
    return false;
  }
  t[(*n)++] = term;
  return true;
}

int ir_mi_terms(const ir_func *f, int id, ir_mi_term *terms, int max) {
  int n = 0;
  return id >= 0 && id < f->nnodes && collect(f, id, terms, &n, max) ? n : 0;
}
