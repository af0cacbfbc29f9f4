/* simplify.c: rewrites that leave every value bit for bit as it was.
 * Assumes: a verified function. Guarantees: the same outputs, losses and stores,
 * computed exactly as before (no reassociation, no x+0 -> x, which would turn -0 into
 * +0), by fewer nodes:
 *   - common subexpressions: a node equal to an earlier one (same op, operands,
 *     attributes, shape) that runs no later is replaced by it, so autodiff's repeated
 *     constants, softmaxes and onehots are computed once;
 *   - x * 1 and 1 * x -> x when the product has x's shape;
 *   - reshape(reshape(x)) -> reshape(x); a reshape to x's own shape -> x.
 * Replaced nodes stay in place, unused, for dce to remove. Loads, inputs, stores and
 * dropout are never merged: their values depend on order or on a site. */
#include "passes.h"

#include <stdlib.h>
#include <string.h>

static bool same_node(const ir_node *a, const ir_node *b) {
  if (a->op != b->op || a->nin != b->nin || a->dtype != b->dtype ||
      !shape_equal(a->shape, b->shape) || a->shape.batched != b->shape.batched ||
      memcmp(a->i, b->i, sizeof a->i) || memcmp(a->f, b->f, sizeof a->f) ||
      !shape_equal(a->ashape, b->ashape) || a->ashape.batched != b->ashape.batched)
    return false;
  for (int j = 0; j < a->nin; j++)
    if (ir_operand(a, j) != ir_operand(b, j)) return false;
  return true;
}

static uint64_t node_key(const ir_node *n) {
  uint64_t h = 1469598103934665603ULL ^ (uint64_t)n->op;
  for (int j = 0; j < n->nin; j++) h = (h ^ (uint64_t)ir_operand(n, j)) * 1099511628211ULL;
  for (int k = 0; k < IR_MAX_ATTR; k++) h = (h ^ (uint64_t)n->i[k]) * 1099511628211ULL;
  double f0 = n->f[0];
  uint64_t fb;
  memcpy(&fb, &f0, sizeof fb);
  return (h ^ fb) * 1099511628211ULL;
}

static bool mergeable(ir_op op) {
  return op != IR_OP_LOAD && op != IR_OP_INPUT && op != IR_OP_DROPOUT && !ir_ops[op].effect;
}

static bool is_one(const ir_node *n) { return n->op == IR_OP_CONST && n->f[0] == 1.0; }

static void set_operand(ir_node *n, int j, int v) {
  if (j < IR_MAX_IN)
    n->in[j] = v;
  else
    n->in_extra[j - IR_MAX_IN] = v;
}

int pass_simplify(ir_func *f) {
  int n = f->nnodes, changed = 0;
  int *repl = malloc((size_t)(n ? n : 1) * sizeof *repl);
  for (int i = 0; i < n; i++) repl[i] = i;
  int cap = 1;
  while (cap < 2 * n) cap *= 2;
  int *table = malloc((size_t)cap * sizeof *table);
  for (int i = 0; i < cap; i++) table[i] = -1;
  int *order = ir_schedule(f);
  for (int k = 0; k < n; k++) {
    int id = order[k];
    ir_node *nd = &f->nodes[id];
    for (int j = 0; j < nd->nin; j++) set_operand(nd, j, repl[ir_operand(nd, j)]);
    /* x * 1, 1 * x */
    if (nd->op == IR_OP_MUL)
      for (int j = 0; j < 2; j++) {
        const ir_node *one = &f->nodes[nd->in[j]], *x = &f->nodes[nd->in[1 - j]];
        if (is_one(one) && shape_equal(x->shape, nd->shape) && x->shape.batched == nd->shape.batched) {
          repl[id] = nd->in[1 - j];
          break;
        }
      }
    if (nd->op == IR_OP_RESHAPE) {
      const ir_node *x = &f->nodes[nd->in[0]];
      if (x->op == IR_OP_RESHAPE) nd->in[0] = x->in[0]; /* reshape of a reshape */
      const ir_node *src = &f->nodes[nd->in[0]];
      if (shape_equal(src->shape, nd->shape) && src->shape.batched == nd->shape.batched)
        repl[id] = nd->in[0];
    }
    if (repl[id] != id) {
      changed++;
      continue;
    }
    if (!mergeable(nd->op)) continue;
    uint64_t h = node_key(nd);
    int slot = (int)(h & (uint64_t)(cap - 1));
    while (table[slot] >= 0) {
      const ir_node *m = &f->nodes[table[slot]];
      /* Only into a node that runs no later and has a smaller id: then every user of
       * this node may use it instead, as the verifier requires. */
      if (same_node(m, nd) && table[slot] < id && m->block <= nd->block) {
        repl[id] = table[slot];
        changed++;
        break;
      }
      slot = (slot + 1) & (cap - 1);
    }
    if (repl[id] == id) table[slot] = id;
  }
  for (int k = 0; k < f->noutputs; k++) f->outputs[k].node = repl[f->outputs[k].node];
  for (int s = 0; s < f->nsteps; s++) f->steps[s].loss = repl[f->steps[s].loss];
  free(order);
  free(table);
  free(repl);
  return changed;
}
