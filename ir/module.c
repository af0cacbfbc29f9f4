/* module.c: building modules, functions and nodes. Nodes only enter a function
 * through ir_emit, which runs the op's shape rule first, so every node in the IR
 * has a shape its rule agrees with. */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) {
    fputs("migc: out of memory\n", stderr);
    abort();
  }
  return q;
}

static char *xstrdup(const char *s) {
  char *r = strdup(s ? s : "");
  if (!r) abort();
  return r;
}

ir_module *ir_module_new(const char *name) {
  ir_module *m = calloc(1, sizeof *m);
  if (!m) abort();
  m->name = xstrdup(name);
  m->ranks = 1;
  return m;
}

static void func_free(ir_func *f) {
  for (int i = 0; i < f->nnodes; i++) free(f->nodes[i].in_extra);
  free(f->nodes);
  free(f->inputs);
  for (int i = 0; i < f->noutputs; i++) free(f->outputs[i].name);
  free(f->outputs);
  for (int i = 0; i < f->nsteps; i++) {
    free(f->steps[i].name);
    free(f->steps[i].nets);
  }
  free(f->steps);
  free(f->name);
  free(f);
}

void ir_module_free(ir_module *m) {
  if (!m) return;
  for (int i = 0; i < m->nfuncs; i++) func_free(m->funcs[i]);
  free(m->funcs);
  for (int i = 0; i < m->nvars; i++) free(m->vars[i].name);
  free(m->vars);
  for (int i = 0; i < m->ninputs; i++) free(m->inputs[i].name);
  free(m->inputs);
  for (int i = 0; i < m->nnets; i++) free(m->nets[i]);
  free(m->nets);
  free(m->name);
  free(m);
}

int ir_add_var(ir_module *m, const char *name, ir_var_kind kind, ir_dtype dt, ir_shape shape,
               int net, ir_span span) {
  m->vars = xrealloc(m->vars, (size_t)(m->nvars + 1) * sizeof *m->vars);
  ir_var *v = &m->vars[m->nvars];
  memset(v, 0, sizeof *v);
  v->name = xstrdup(name);
  v->kind = kind;
  v->dtype = dt;
  v->shape = shape;
  v->shape.batched = false;
  v->net = net;
  v->of = -1;
  v->span = span;
  v->offset = -1;
  return m->nvars++;
}

int ir_find_var(const ir_module *m, const char *name) {
  for (int i = 0; i < m->nvars; i++)
    if (strcmp(m->vars[i].name, name) == 0) return i;
  return -1;
}

/* Each variable starts on a 64-byte boundary (16 floats) so generated loops over
 * one variable can use aligned vector loads. */
void ir_layout(ir_module *m) {
  int64_t off = 0;
  for (int i = 0; i < m->nvars; i++) {
    m->vars[i].offset = off;
    off += (shape_numel(m->vars[i].shape) + 15) / 16 * 16;
  }
  m->state_size = off;
}

int ir_add_input(ir_module *m, const ir_input *in) {
  m->inputs = xrealloc(m->inputs, (size_t)(m->ninputs + 1) * sizeof *m->inputs);
  m->inputs[m->ninputs] = *in;
  m->inputs[m->ninputs].name = xstrdup(in->name);
  return m->ninputs++;
}

int ir_find_input(const ir_module *m, const char *name) {
  for (int i = 0; i < m->ninputs; i++)
    if (strcmp(m->inputs[i].name, name) == 0) return i;
  return -1;
}

ir_func *ir_add_func(ir_module *m, const char *name, bool training) {
  ir_func *f = calloc(1, sizeof *f);
  if (!f) abort();
  f->name = xstrdup(name);
  f->training = training;
  f->nblocks = 1;
  m->funcs = xrealloc(m->funcs, (size_t)(m->nfuncs + 1) * sizeof *m->funcs);
  m->funcs[m->nfuncs++] = f;
  return f;
}

ir_func *ir_find_func(const ir_module *m, const char *name) {
  for (int i = 0; i < m->nfuncs; i++)
    if (strcmp(m->funcs[i]->name, name) == 0) return m->funcs[i];
  return NULL;
}

int ir_add_net(ir_module *m, const char *name) {
  m->nets = xrealloc(m->nets, (size_t)(m->nnets + 1) * sizeof *m->nets);
  m->nets[m->nnets] = xstrdup(name);
  return m->nnets++;
}

ir_func *ir_clone_func(ir_module *m, const ir_func *src, const char *name) {
  ir_func *f = ir_add_func(m, name, src->training);
  f->nnodes = f->cap = src->nnodes;
  f->nodes = xrealloc(NULL, (size_t)(src->nnodes ? src->nnodes : 1) * sizeof *f->nodes);
  memcpy(f->nodes, src->nodes, (size_t)src->nnodes * sizeof *f->nodes);
  for (int i = 0; i < f->nnodes; i++)
    if (src->nodes[i].in_extra) {
      size_t n = (size_t)(src->nodes[i].nin - IR_MAX_IN) * sizeof(int);
      f->nodes[i].in_extra = xrealloc(NULL, n);
      memcpy(f->nodes[i].in_extra, src->nodes[i].in_extra, n);
    }
  f->ninputs = src->ninputs;
  f->inputs = xrealloc(NULL, (size_t)(src->ninputs ? src->ninputs : 1) * sizeof *f->inputs);
  memcpy(f->inputs, src->inputs, (size_t)src->ninputs * sizeof *f->inputs);
  for (int k = 0; k < src->noutputs; k++) ir_add_output(f, src->outputs[k].name, src->outputs[k].node);
  f->nsteps = src->nsteps;
  f->steps = xrealloc(NULL, (size_t)(src->nsteps ? src->nsteps : 1) * sizeof *f->steps);
  for (int s = 0; s < src->nsteps; s++) {
    f->steps[s] = src->steps[s];
    f->steps[s].name = xstrdup(src->steps[s].name);
    f->steps[s].nets = xrealloc(NULL, (size_t)(src->steps[s].nnets + 1) * sizeof(int));
    memcpy(f->steps[s].nets, src->steps[s].nets, (size_t)src->steps[s].nnets * sizeof(int));
  }
  f->nblocks = src->nblocks;
  return f;
}

int ir_emit_in(ir_func *f, int block, ir_op op, const int *in, int nin, const ir_attrs *a,
               ir_span span, char *err, size_t errn, int *bad) {
  static const ir_attrs none = {.var = -1};
  if (!a) a = &none;
  *bad = -1;
  if (ir_ops[op].arity >= 0 ? nin != ir_ops[op].arity : nin < 1) {
    snprintf(err, errn, "%s takes %d operand%s, got %d", ir_ops[op].name, ir_ops[op].arity,
             ir_ops[op].arity == 1 ? "" : "s", nin);
    return -1;
  }
  ir_node n;
  memset(&n, 0, sizeof n);
  n.op = op;
  n.nin = nin;
  for (int j = 0; j < nin && j < IR_MAX_IN; j++) n.in[j] = in[j];
  memcpy(n.i, a->i, sizeof n.i);
  memcpy(n.f, a->f, sizeof n.f);
  n.ashape = a->ashape;
  n.dtype = a->dtype;
  n.var = (op == IR_OP_LOAD || op == IR_OP_STORE) ? a->var : -1;
  n.block = block;
  n.span = span;

  const ir_node **ops = calloc((size_t)(nin ? nin : 1), sizeof *ops);
  for (int j = 0; j < nin; j++) {
    if (in[j] < 0 || in[j] >= f->nnodes) {
      free(ops);
      snprintf(err, errn, "operand %d of %s is not a node of %s", j, ir_ops[op].name, f->name);
      return -1;
    }
    ops[j] = &f->nodes[in[j]];
  }
  bool ok = ir_ops[op].shape(&n, ops, err, errn, bad);
  free(ops);
  if (!ok) return -1;
  if (shape_numel_checked(n.shape) < 0) {
    char sh[160];
    shape_user_str(n.shape, sh, sizeof sh);
    snprintf(err, errn, "%s would give %s (per sample): more than 2^40 values in all, the most "
             "a tensor may hold", ir_ops[op].name, sh);
    return -1;
  }

  if (nin > IR_MAX_IN) {
    n.in_extra = xrealloc(NULL, (size_t)(nin - IR_MAX_IN) * sizeof(int));
    memcpy(n.in_extra, in + IR_MAX_IN, (size_t)(nin - IR_MAX_IN) * sizeof(int));
  }
  if (f->nnodes == f->cap) {
    f->cap = f->cap ? f->cap * 2 : 64;
    f->nodes = xrealloc(f->nodes, (size_t)f->cap * sizeof *f->nodes);
  }
  f->nodes[f->nnodes] = n;
  if (block >= f->nblocks) f->nblocks = block + 1;
  return f->nnodes++;
}

int ir_emit(ir_func *f, ir_op op, const int *in, int nin, const ir_attrs *a, ir_span span,
            char *err, size_t errn, int *bad) {
  return ir_emit_in(f, f->nblocks - 1, op, in, nin, a, span, err, errn, bad);
}

int ir_emit_checked(ir_func *f, int block, ir_op op, const int *in, int nin,
                    const ir_attrs *a) {
  char err[256];
  int bad;
  ir_span none = {0};
  int id = ir_emit_in(f, block, op, in, nin, a, none, err, sizeof err, &bad);
  if (id < 0) {
    fprintf(stderr, "migc: internal error: %s in %s: %s\n", ir_ops[op].name, f->name, err);
    abort();
  }
  return id;
}

void ir_add_output(ir_func *f, const char *name, int node) {
  f->outputs = xrealloc(f->outputs, (size_t)(f->noutputs + 1) * sizeof *f->outputs);
  f->outputs[f->noutputs].name = xstrdup(name);
  f->outputs[f->noutputs].node = node;
  f->noutputs++;
}

int *ir_schedule(const ir_func *f) {
  /* Counting sort by block keeps ids ascending inside each block. */
  int *order = xrealloc(NULL, (size_t)(f->nnodes ? f->nnodes : 1) * sizeof *order);
  int k = 0;
  for (int b = 0; b < f->nblocks; b++)
    for (int i = 0; i < f->nnodes; i++)
      if (f->nodes[i].block == b) order[k++] = i;
  return order;
}
