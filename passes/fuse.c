/* fuse.c: which nodes run together in one kernel.
 * Assumes: a verified function. Guarantees: a kernel_plan (passes.h) in which every
 * kernel can run at the place of its last node in ir_schedule order and still see
 * every value and every state variable as the node-by-node program would:
 *   - a kernel's members are elementwise ops of one shape (fuse_elementwise, and
 *     fuse_broadcast: a binary op with a smaller operand broadcast, such as a bias add)
 *     plus the loads and stores of their values; one loop computes them all;
 *   - a node joins the kernels of its operands of the same shape, and
 *     joins them only while no node outside has read any of their values yet (a kernel
 *     that has been read is sealed: it must run before that reader);
 *   - a store joins the kernel of its value; a load joins the kernel of its first
 *     reader when nothing read it before and its variable was not stored since, and
 *     then reads the state in the loop instead of copying it first;
 *   - a kernel holding a store of a variable is sealed when a load or store of it
 *     outside comes by, one holding a load of it when a store of it comes by, so no
 *     access to a variable changes order;
 *   - a GEMM (fuse_gemm_head: matmul, conv, deconv, conv_grad_x) heads a kernel of its
 *     own that its elementwise consumers of its shape may join as above: the GEMM runs
 *     first, block by block of its outermost dimension, and the loop over the other
 *     members runs over each block as soon as it is complete (an epilogue), so the
 *     GEMM's output is read again while it is still in cache. A kernel has at most one
 *     head, and its value is always stored (the GEMM writes it).
 * A member's value is stored (written to memory) when a node of another kernel reads
 * it, or it is an output or a step's loss; the others stay in registers. The plan
 * changes no IR: the interpreter, the verifier and every other pass are unaffected. */
#include "passes.h"

#include <stdlib.h>
#include <string.h>

bool fuse_elementwise(const ir_func *f, const ir_node *n) {
  if (n->dtype != IR_F32) return false;
  switch (n->op) {
  case IR_OP_NEG: case IR_OP_RELU: case IR_OP_LRELU: case IR_OP_TANH: case IR_OP_SIGMOID:
  case IR_OP_SOFTPLUS: case IR_OP_EXP: case IR_OP_LOG: case IR_OP_SQRT: case IR_OP_SIN:
  case IR_OP_COS:
  case IR_OP_RELU_GRAD: case IR_OP_LRELU_GRAD: case IR_OP_MAX_GRAD:
    return true;
  case IR_OP_SELECT: /* the condition is one element, repeated */
    return true;
  case IR_OP_ADD: case IR_OP_SUB: case IR_OP_MUL: case IR_OP_DIV: case IR_OP_MAXIMUM:
    /* each operand the value's shape, or a single element repeated */
    for (int j = 0; j < 2; j++) {
      ir_shape s = f->nodes[n->in[j]].shape;
      if (!shape_equal(s, n->shape) && shape_numel(s) != 1) return false;
    }
    return true;
  default:
    return false;
  }
}

bool fuse_broadcast(const ir_func *f, const ir_node *n) {
  if (n->dtype != IR_F32 || n->nin != 2 || fuse_elementwise(f, n)) return false;
  if (n->op != IR_OP_ADD && n->op != IR_OP_SUB && n->op != IR_OP_MUL && n->op != IR_OP_DIV)
    return false;
  /* one operand the value's shape, the other strictly smaller (a bias, a statistic) */
  int64_t cnt = shape_numel(n->shape);
  for (int j = 0; j < 2; j++) {
    ir_shape a = f->nodes[n->in[j]].shape, b = f->nodes[n->in[1 - j]].shape;
    if (shape_equal(a, n->shape) && shape_numel(b) < cnt) return true;
  }
  return false;
}

bool fuse_gemm_head(const ir_func *f, const ir_node *n) {
  (void)f;
  if (n->dtype != IR_F32) return false;
  return n->op == IR_OP_MATMUL || n->op == IR_OP_CONV || n->op == IR_OP_DECONV ||
         n->op == IR_OP_CONV_GRAD_X;
}

int kernel_head(const ir_func *f, const kernel_plan *kp, int k) {
  if (kp->first[k + 1] - kp->first[k] < 2) return -1;
  for (int q = kp->first[k]; q < kp->first[k + 1]; q++)
    if (fuse_gemm_head(f, &f->nodes[kp->members[q]])) return kp->members[q];
  return -1;
}

void kernel_plan_free(kernel_plan *kp) {
  free(kp->kernel_of);
  free(kp->stored);
  free(kp->members);
  free(kp->first);
  memset(kp, 0, sizeof *kp);
}

/* Numbers the groups (group[id], any ids) in the order of their last member in
 * `order`, and fills kernel_of, members and first. */
static int number_kernels(const ir_func *f, const int *order, const int *group, kernel_plan *kp) {
  int n = f->nnodes;
  int *last = malloc((size_t)(n ? n : 1) * sizeof *last); /* per group id: last position */
  int *num = malloc((size_t)(n ? n : 1) * sizeof *num);
  kp->nnodes = n;
  kp->kernel_of = malloc((size_t)(n ? n : 1) * sizeof *kp->kernel_of);
  kp->members = malloc((size_t)(n ? n : 1) * sizeof *kp->members);
  kp->first = calloc((size_t)n + 2, sizeof *kp->first);
  if (!kp->stored) kp->stored = calloc((size_t)(n ? n : 1), sizeof *kp->stored);
  if (!last || !num || !kp->kernel_of || !kp->members || !kp->first || !kp->stored) {
    free(last), free(num);
    kernel_plan_free(kp);
    return -1;
  }
  for (int p = 0; p < n; p++) last[group[order[p]]] = p, num[order[p]] = -1;
  int nk = 0;
  for (int p = 0; p < n; p++) {
    int g = group[order[p]];
    if (last[g] == p) num[g] = nk++;
  }
  for (int id = 0; id < n; id++) kp->kernel_of[id] = num[group[id]];
  kp->nkernels = nk;
  /* counting sort of the schedule by kernel keeps schedule order inside a kernel */
  for (int id = 0; id < n; id++) kp->first[kp->kernel_of[id] + 1]++;
  for (int k = 0; k < nk; k++) kp->first[k + 1] += kp->first[k];
  int *fill = calloc((size_t)nk + 1, sizeof *fill);
  if (!fill) {
    free(last), free(num);
    kernel_plan_free(kp);
    return -1;
  }
  for (int p = 0; p < n; p++) {
    int k = kp->kernel_of[order[p]];
    kp->members[kp->first[k] + fill[k]++] = order[p];
  }
  free(fill);
  free(last);
  free(num);
  return 0;
}

/* stored[id]: read by another kernel, an output or a step's loss; a kernel of one
 * node always stores its value (it is lowered on its own, into a buffer), and so does
 * a kernel's GEMM head (the GEMM writes its output to memory) */
static void mark_stored(const ir_func *f, kernel_plan *kp) {
  for (int k = 0; k < kp->nkernels; k++) {
    if (kp->first[k + 1] - kp->first[k] == 1) kp->stored[kp->members[kp->first[k]]] = true;
    int h = kernel_head(f, kp, k);
    if (h >= 0) kp->stored[h] = true;
  }
  for (int id = 0; id < f->nnodes; id++) {
    const ir_node *n = &f->nodes[id];
    for (int j = 0; j < n->nin; j++) {
      int a = ir_operand(n, j);
      if (kp->kernel_of[a] != kp->kernel_of[id]) kp->stored[a] = true;
    }
  }
  for (int k = 0; k < f->noutputs; k++) kp->stored[f->outputs[k].node] = true;
  for (int s = 0; s < f->nsteps; s++) kp->stored[f->steps[s].loss] = true;
}

int kernel_plan_unfused(const ir_func *f, kernel_plan *kp) {
  memset(kp, 0, sizeof *kp);
  int *order = ir_schedule(f);
  int *group = malloc((size_t)(f->nnodes ? f->nnodes : 1) * sizeof *group);
  if (!order || !group) {
    free(order), free(group);
    return -1;
  }
  for (int id = 0; id < f->nnodes; id++) group[id] = id;
  int rc = number_kernels(f, order, group, kp);
  if (!rc)
    for (int id = 0; id < f->nnodes; id++) kp->stored[id] = true;
  free(order);
  free(group);
  return rc;
}

static int find(int *parent, int x) {
  while (parent[x] != x) x = parent[x] = parent[parent[x]];
  return x;
}

/* Group g joins group into: union, state-access flags and lists. */
static void merge(int *parent, bool *has_store, bool *has_load, bool *has_gemm, int *head,
                  int *tail, int *next_access, int g, int into) {
  parent[g] = into;
  has_store[into] |= has_store[g];
  has_load[into] |= has_load[g];
  has_gemm[into] |= has_gemm[g];
  if (head[g] < 0) return;
  if (head[into] < 0)
    head[into] = head[g];
  else
    next_access[tail[into]] = head[g];
  tail[into] = tail[g];
}

/* Whether group g (a root) holds a store of var, or with any_access a load of it too. */
static bool touches(const ir_func *f, const int *head, const int *next_access, int g, int var,
                    bool any_access) {
  for (int a = head[g]; a >= 0; a = next_access[a])
    if (f->nodes[a].var == var && (any_access || f->nodes[a].op == IR_OP_STORE)) return true;
  return false;
}

int pass_fuse(const ir_func *f, kernel_plan *kp) {
  memset(kp, 0, sizeof *kp);
  int n = f->nnodes;
  size_t sz = (size_t)(n ? n : 1);
  int *order = ir_schedule(f);
  int *parent = malloc(sz * sizeof *parent);
  int *uses = calloc(sz, sizeof *uses);
  int *pos = malloc(sz * sizeof *pos);
  bool *fused = calloc(sz, 1), *sealed = calloc(sz, 1);
  bool *has_store = calloc(sz, 1), *has_load = calloc(sz, 1), *has_gemm = calloc(sz, 1);
  /* per group root: its loads and stores as a list through next_access */
  int *head = malloc(sz * sizeof *head), *tail = malloc(sz * sizeof *tail);
  int *next_access = malloc(sz * sizeof *next_access);
  int *open = malloc(sz * sizeof *open); /* roots of groups that touch the state */
  int nvars = 1;
  for (int id = 0; id < n; id++)
    if (f->nodes[id].var >= nvars) nvars = f->nodes[id].var + 1;
  int *last_store = malloc((size_t)nvars * sizeof *last_store); /* position, per variable */
  int nopen = 0, rc = -1;
  if (!order || !parent || !uses || !pos || !fused || !sealed || !has_store || !has_load ||
      !has_gemm ||
      !open || !last_store || !head || !tail || !next_access)
    goto done;
  for (int v = 0; v < nvars; v++) last_store[v] = -1;
  for (int id = 0; id < n; id++) {
    parent[id] = id;
    head[id] = tail[id] = next_access[id] = -1;
    const ir_node *nd = &f->nodes[id];
    if (nd->op == IR_OP_LOAD || nd->op == IR_OP_STORE) head[id] = tail[id] = id;
    for (int j = 0; j < nd->nin; j++) uses[ir_operand(nd, j)]++;
  }
  for (int k = 0; k < f->noutputs; k++) uses[f->outputs[k].node]++;
  for (int p = 0; p < n; p++) pos[order[p]] = p;
  for (int p = 0; p < n; p++) {
    int id = order[p];
    const ir_node *nd = &f->nodes[id];
    bool joins = false;
    if (fuse_elementwise(f, nd) || fuse_broadcast(f, nd)) {
      fused[id] = joins = true;
      for (int j = 0; j < nd->nin; j++) {
        int a = ir_operand(nd, j), g = find(parent, a);
        const ir_node *an = &f->nodes[a];
        /* only operands of the value's very shape: all members of a kernel have one */
        if (sealed[g] || !shape_equal(an->shape, nd->shape) || an->shape.rank != nd->shape.rank)
          continue;
        /* one GEMM head per kernel */
        int me0 = find(parent, id);
        if (g != me0 && has_gemm[g] && has_gemm[me0]) continue;
        if (!fused[a]) {
          /* a load nobody has read yet, of a variable not stored since: read the
           * state inside this kernel instead of copying it first */
          if (an->op != IR_OP_LOAD || an->dtype != IR_F32 || last_store[an->var] > pos[a])
            continue;
          fused[a] = true;
          has_load[a] = true;
        }
        int me = find(parent, id);
        if (g != me) merge(parent, has_store, has_load, has_gemm, head, tail, next_access, g, me);
      }
    } else if (fuse_gemm_head(f, nd)) {
      /* a group of its own that its consumers may join; it joins nothing */
      fused[id] = has_gemm[id] = true;
    } else if (nd->op == IR_OP_STORE && uses[id] == 0) {
      int a = nd->in[0], g = find(parent, a);
      if (fused[a] && !sealed[g]) {
        fused[id] = joins = true;
        has_store[id] = true;
        merge(parent, has_store, has_load, has_gemm, head, tail, next_access, id, g);
      }
    }
    int me = find(parent, id);
    /* State accesses keep their order: a group holding a store of a variable runs
     * before any later load or store of it outside, one holding a load of it before any
     * later store of it. */
    if (nd->op == IR_OP_STORE || (!joins && nd->op == IR_OP_LOAD))
      for (int k = 0; k < nopen; k++) {
        int g = find(parent, open[k]);
        if (g != me && touches(f, head, next_access, g, nd->var, nd->op == IR_OP_STORE))
          sealed[g] = true;
      }
    if (nd->op == IR_OP_STORE) last_store[nd->var] = p;
    if (joins && (has_store[me] || has_load[me])) open[nopen++] = me;
    /* every group this node reads without belonging to it is sealed */
    for (int j = 0; j < nd->nin; j++) {
      int g = find(parent, ir_operand(nd, j));
      if (g != me) sealed[g] = true;
    }
    if (nopen > n / 2) { /* drop sealed groups from the open list now and then */
      int w = 0;
      for (int k = 0; k < nopen; k++)
        if (!sealed[find(parent, open[k])]) open[w++] = open[k];
      nopen = w;
    }
  }
  for (int id = 0; id < n; id++) parent[id] = find(parent, id);
  rc = number_kernels(f, order, parent, kp);
  if (!rc) mark_stored(f, kp);
done:
  free(order), free(parent), free(uses), free(pos), free(fused), free(sealed);
  free(has_store), free(has_load), free(has_gemm), free(open), free(last_store);
  free(head), free(tail), free(next_access);
  return rc;
}
