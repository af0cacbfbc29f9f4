/* verify.c: the invariants every pass must keep. It re-derives what it can (each
 * node's shape from its rule) rather than trusting what is recorded, so a pass that
 * edits a node carelessly is caught at the pass, not three passes later. */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
  const ir_module *m;
  const ir_func *f;
  diag_sink *d;
  bool ok;
} verifier;

static void fail(verifier *v, int node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(verifier *v, int node, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  ir_span none = {0};
  if (node >= 0)
    diag_error(v->d, none, "verifier: %s: %%%d (%s): %s", v->f->name, node,
               ir_ops[v->f->nodes[node].op].name, msg);
  else
    diag_error(v->d, none, "verifier: %s: %s", v->f ? v->f->name : v->m->name, msg);
  v->ok = false;
}

/* Operands must exist and run earlier: lower block, or same block and lower id. */
static bool check_operands(verifier *v, int id) {
  const ir_node *n = &v->f->nodes[id];
  const ir_op_info *op = &ir_ops[n->op];
  if (op->arity >= 0 ? n->nin != op->arity : n->nin < 1) {
    fail(v, id, "has %d operands, op takes %d", n->nin, op->arity);
    return false;
  }
  for (int j = 0; j < n->nin; j++) {
    int a = ir_operand(n, j);
    if (a < 0 || a >= id) {
      fail(v, id, "operand %d is %%%d, not an earlier node", j, a);
      return false;
    }
    if (v->f->nodes[a].block > n->block) {
      fail(v, id, "operand %%%d runs in block %d, after this node's block %d", a,
           v->f->nodes[a].block, n->block);
      return false;
    }
    if (v->f->nodes[a].op == IR_OP_STORE) {
      fail(v, id, "uses the store %%%d as a value", a);
      return false;
    }
  }
  return true;
}

static void check_shape(verifier *v, int id) {
  const ir_node *n = &v->f->nodes[id];
  ir_node copy = *n;
  const ir_node **ops = malloc((size_t)(n->nin ? n->nin : 1) * sizeof *ops);
  for (int j = 0; j < n->nin; j++) ops[j] = &v->f->nodes[ir_operand(n, j)];
  char err[256] = "";
  int bad;
  bool ok = ir_ops[n->op].shape(&copy, ops, err, sizeof err, &bad);
  free(ops);
  if (!ok) {
    fail(v, id, "shape rule rejects it: %s", err);
    return;
  }
  if (copy.dtype != n->dtype || !shape_equal(copy.shape, n->shape) ||
      copy.shape.batched != n->shape.batched) {
    char want[128], got[128];
    shape_str(copy.shape, want, sizeof want);
    shape_str(n->shape, got, sizeof got);
    fail(v, id, "recorded shape %s, rule gives %s", got, want);
  }
}

static void check_effects(verifier *v, int id) {
  const ir_node *n = &v->f->nodes[id];
  if (n->op == IR_OP_LOAD || n->op == IR_OP_STORE) {
    if (n->var < 0 || n->var >= v->m->nvars) {
      fail(v, id, "names state variable %d of %d", n->var, v->m->nvars);
      return;
    }
    const ir_var *var = &v->m->vars[n->var];
    if (var->dtype != n->dtype || !shape_equal(var->shape, n->shape))
      fail(v, id, "shape or dtype differs from @%s", var->name);
  }
  if (n->op == IR_OP_INPUT) {
    if (n->i[0] < 0 || n->i[0] >= v->f->ninputs) {
      fail(v, id, "input index %lld out of range", (long long)n->i[0]);
      return;
    }
    const ir_input *in = &v->m->inputs[v->f->inputs[n->i[0]]];
    if (in->dtype != n->dtype || !shape_equal(in->shape, n->shape))
      fail(v, id, "shape or dtype differs from input %s", in->name);
  }
}

static void check_func(verifier *v) {
  const ir_func *f = v->f;
  for (int j = 0; j < f->ninputs; j++)
    if (f->inputs[j] < 0 || f->inputs[j] >= v->m->ninputs)
      fail(v, -1, "function input %d names module input %d", j, f->inputs[j]);
  for (int id = 0; id < f->nnodes; id++) {
    const ir_node *n = &f->nodes[id];
    if ((unsigned)n->op >= IR_OP_COUNT) {
      fail(v, -1, "node %%%d has op %d", id, (int)n->op);
      continue;
    }
    if (n->block < 0 || n->block >= f->nblocks) fail(v, id, "block %d out of range", n->block);
    if (!check_operands(v, id)) continue;
    check_effects(v, id);
    check_shape(v, id);
  }
  for (int k = 0; k < f->noutputs; k++) {
    int o = f->outputs[k].node;
    if (o < 0 || o >= f->nnodes || f->nodes[o].op == IR_OP_STORE)
      fail(v, -1, "output %s is not a value node", f->outputs[k].name);
  }
  for (int s = 0; s < f->nsteps; s++) {
    const ir_step *st = &f->steps[s];
    if (st->loss < 0 || st->loss >= f->nnodes || f->nodes[st->loss].shape.rank != 0)
      fail(v, -1, "step %s: loss is not a scalar node", st->name);
    else if (f->nodes[st->loss].block > st->block)
      fail(v, -1, "step %s: loss computed after the step's block", st->name);
    if (st->block < 0 || st->block >= f->nblocks)
      fail(v, -1, "step %s: block %d out of range", st->name, st->block);
    for (int j = 0; j < st->nnets; j++)
      if (st->nets[j] < 0 || st->nets[j] >= v->m->nnets)
        fail(v, -1, "step %s: net %d out of range", st->name, st->nets[j]);
  }
}

/* Variables must lie inside the state buffer without overlapping. Offsets ascend in
 * declaration order (ir_layout), so checking neighbours suffices. */
static void check_layout(verifier *v) {
  int64_t end = 0;
  for (int i = 0; i < v->m->nvars; i++) {
    const ir_var *var = &v->m->vars[i];
    if (var->offset < end)
      fail(v, -1, "@%s at offset %lld overlaps the variable before it", var->name,
           (long long)var->offset);
    end = var->offset + shape_numel(var->shape);
    if (end > v->m->state_size)
      fail(v, -1, "@%s ends at %lld, past the state size %lld", var->name, (long long)end,
           (long long)v->m->state_size);
    if (var->shape.batched) fail(v, -1, "@%s has a batched shape", var->name);
  }
}

bool ir_verify(const ir_module *m, diag_sink *d) {
  verifier v = {m, NULL, d, true};
  check_layout(&v);
  for (int i = 0; i < m->nfuncs; i++) {
    v.f = m->funcs[i];
    check_func(&v);
  }
  return v.ok;
}
