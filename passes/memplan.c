/* memplan.c: every temporary of a function in one arena, by offset.
 * Assumes: a verified function and a kernel_plan for it (fuse.c). Guarantees: a
 * memplan (passes.h) in which
 *   - each stored value that is not an input or a view has its own region, and each
 *     node with extra scratch (im2col columns, double accumulators) has one for the
 *     kernel that runs it;
 *   - a value's region is live from the kernel that writes it through the last kernel
 *     that reads it or any view of it (reshape, store); a function output stays live to
 *     the end (it is copied out after the last kernel); extra scratch is live in its
 *     own kernel only; two regions share bytes only when their live ranges are disjoint,
 *     or when a kernel reads a buffer for the last time and writes a value of the same
 *     size element by element in place (under a GEMM head, only over the head's own
 *     buffer; memplan_verify checks all of it);
 *   - the arena is at most the naive total (a region each, as before planning).
 * Views: an input lives in the caller's buffer; reshape and store name their
 * operand's buffer (a stored value never changes, so a view is as good as a copy); a
 * load of its own kernel reads its variable's slice of the state in place when every
 * kernel reading it (or a view of it) runs before the next store of that variable and
 * it is no output (a weight read by the forward and backward GEMMs, stored by the
 * optimizer after both); otherwise it copies, because a later store may change the
 * variable under a value already loaded. */
#include "passes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t align64(int64_t x) { return (x + 63) & ~(int64_t)63; }

static bool is_view(ir_op op) { return op == IR_OP_RESHAPE || op == IR_OP_STORE; }

void memplan_free(memplan *mp) {
  free(mp->off);
  free(mp->home);
  free(mp->extra_off);
  free(mp->extra);
  free(mp->inplace_of);
  free(mp->in_state);
  memset(mp, 0, sizeof *mp);
}

/* home[id] as in memplan: views follow their operand, values in registers and loads
 * read in the state get -1 */
static void find_homes(const ir_func *f, const kernel_plan *kp, const bool *in_state, int *home) {
  for (int id = 0; id < f->nnodes; id++) { /* operands have smaller ids */
    const ir_node *n = &f->nodes[id];
    if (n->op == IR_OP_INPUT || in_state[id])
      home[id] = -1;
    else if (is_view(n->op))
      home[id] = home[n->in[0]];
    else
      home[id] = kp->stored[id] ? id : -1;
  }
}

/* end[h]: the last kernel reading buffer h (through any view), nkernels for outputs;
 * the kernel writing it when nothing reads it. */
static void find_ends(const ir_func *f, const kernel_plan *kp, const int *home, int *end) {
  for (int id = 0; id < f->nnodes; id++) end[id] = kp->kernel_of[id];
  for (int id = 0; id < f->nnodes; id++) {
    const ir_node *n = &f->nodes[id];
    for (int j = 0; j < n->nin; j++) {
      int h = home[ir_operand(n, j)];
      if (h >= 0 && kp->kernel_of[id] > end[h]) end[h] = kp->kernel_of[id];
    }
  }
  for (int k = 0; k < f->noutputs; k++) {
    int h = home[f->outputs[k].node];
    if (h >= 0) end[h] = kp->nkernels;
  }
}

/* Whether kernel k reads element i of every operand of its size it does not compute at
 * the index it writes: true for kernels of elementwise ops (and their loads and stores;
 * a fused broadcast reads its smaller operand elsewhere, but that one is never reused:
 * its size differs). */
static bool kernel_elementwise(const ir_func *f, const kernel_plan *kp, int k) {
  int head = kernel_head(f, kp, k); /* a GEMM runs first: its own buffer is complete,
                                       block by block, before the loop reads it */
  for (int q = kp->first[k]; q < kp->first[k + 1]; q++) {
    if (kp->members[q] == head) continue;
    const ir_node *n = &f->nodes[kp->members[q]];
    bool multi = kp->first[k + 1] - kp->first[k] > 1;
    bool state = (n->op == IR_OP_STORE || n->op == IR_OP_LOAD) && multi;
    if (!fuse_elementwise(f, n) && !state && !(multi && fuse_broadcast(f, n)))
      return false;
  }
  return true;
}

/* mp's per-node tables for f's n nodes, homes found; false when out of memory (mp is
 * then freed). */
static bool plan_tables(const ir_func *f, const kernel_plan *kp, memplan *mp) {
  memset(mp, 0, sizeof *mp);
  size_t sz = (size_t)(f->nnodes ? f->nnodes : 1);
  mp->nnodes = f->nnodes;
  mp->off = malloc(sz * sizeof *mp->off);
  mp->home = malloc(sz * sizeof *mp->home);
  mp->extra_off = malloc(sz * sizeof *mp->extra_off);
  mp->extra = calloc(sz, sizeof *mp->extra);
  mp->inplace_of = malloc(sz * sizeof *mp->inplace_of);
  mp->in_state = calloc(sz, sizeof *mp->in_state);
  if (!mp->off || !mp->home || !mp->extra_off || !mp->extra || !mp->inplace_of || !mp->in_state) {
    memplan_free(mp);
    return false;
  }
  find_homes(f, kp, mp->in_state, mp->home);
  return true;
}

/* Whether load id, with home[] as if it had a buffer of its own (views of it name it),
 * may read its variable in the state instead: it is alone in its kernel, no output is
 * it or a view of it, and no kernel after its own up to the last one reading it (or a
 * view of it) holds a store of its variable. */
static bool reads_in_state(const ir_func *f, const kernel_plan *kp, const int *home, int id) {
  const ir_node *ld = &f->nodes[id];
  int k = kp->kernel_of[id];
  if (ld->op != IR_OP_LOAD || kp->first[k + 1] - kp->first[k] != 1) return false;
  for (int o = 0; o < f->noutputs; o++)
    if (home[f->outputs[o].node] == id) return false;
  int last = k;
  for (int u = id + 1; u < f->nnodes; u++) {
    const ir_node *un = &f->nodes[u];
    for (int j = 0; j < un->nin; j++)
      if (home[ir_operand(un, j)] == id && kp->kernel_of[u] > last) last = kp->kernel_of[u];
  }
  for (int u = 0; u < f->nnodes; u++)
    if (f->nodes[u].op == IR_OP_STORE && f->nodes[u].var == ld->var && kp->kernel_of[u] > k &&
        kp->kernel_of[u] <= last)
      return false;
  return true;
}

int memplan_naive(const ir_func *f, const kernel_plan *kp, memplan_extra_fn extra_fn,
                  memplan *mp) {
  if (!plan_tables(f, kp, mp)) return -1;
  int n = f->nnodes;
  int64_t at = 0;
  for (int id = 0; id < n; id++) {
    const ir_node *nd = &f->nodes[id];
    int64_t e = extra_fn ? extra_fn(f, nd) : 0;
    mp->extra[id] = e > 0 ? e : 0;
    mp->off[id] = mp->extra_off[id] = -1;
    mp->inplace_of[id] = -1;
    if (nd->op != IR_OP_INPUT && !is_view(nd->op)) {
      if (mp->home[id] == id) mp->off[id] = at;
      at += align64(shape_numel(nd->shape) * 4);
    }
    if (mp->extra[id] > 0) {
      mp->extra_off[id] = at;
      at += align64(mp->extra[id]);
    }
  }
  mp->arena = mp->naive = mp->peak = at;
  return 0;
}

typedef struct {
  int64_t size, off;
  int start, end; /* kernels, inclusive */
} region;

static int by_size(const void *a, const void *b) {
  const region *x = *(region *const *)a, *y = *(region *const *)b;
  if (x->size != y->size) return x->size > y->size ? -1 : 1;
  return x->start - y->start;
}

int pass_memplan(const ir_func *f, const kernel_plan *kp, memplan_extra_fn extra_fn,
                 bool inplace, memplan *mp) {
  if (!plan_tables(f, kp, mp)) return -1;
  int n = f->nnodes;
  for (int id = 0; id < n; id++) mp->in_state[id] = reads_in_state(f, kp, mp->home, id);
  find_homes(f, kp, mp->in_state, mp->home);
  size_t sz = (size_t)(n ? n : 1);
  int *end = malloc(sz * sizeof *end);
  int *region_of = malloc(sz * sizeof *region_of); /* per buffer node; extras after */
  region *rs = calloc(2 * sz, sizeof *rs);
  region **sorted = calloc(2 * sz, sizeof *sorted);
  bool *taken = calloc(sz, 1); /* a dying buffer already reused in this kernel */
  if (!end || !region_of || !rs || !sorted || !taken) {
    free(end), free(region_of), free(rs), free(sorted), free(taken);
    memplan_free(mp);
    return -1;
  }
  find_ends(f, kp, mp->home, end);
  int nr = 0;
  for (int id = 0; id < n; id++) {
    const ir_node *nd = &f->nodes[id];
    mp->off[id] = mp->extra_off[id] = -1;
    mp->inplace_of[id] = -1;
    region_of[id] = -1;
    int64_t e = extra_fn ? extra_fn(f, nd) : 0;
    mp->extra[id] = e > 0 ? e : 0;
    if (nd->op != IR_OP_INPUT && !is_view(nd->op))
      mp->naive += align64(shape_numel(nd->shape) * 4);
    mp->naive += align64(mp->extra[id]);
  }
  /* regions in kernel order, so an in-place value finds its operand's region made */
  for (int k = 0; k < kp->nkernels; k++) {
    bool ew = inplace && kernel_elementwise(f, kp, k);
    /* under a GEMM head only the head's own buffer is reused: the GEMM reads its
     * operands whole, while the loop writes block by block */
    int head = kernel_head(f, kp, k);
    for (int q = kp->first[k]; q < kp->first[k + 1]; q++) {
      int id = kp->members[q];
      const ir_node *nd = &f->nodes[id];
      if (mp->extra[id] > 0) {
        rs[nr] = (region){mp->extra[id], -1, k, k};
        mp->extra_off[id] = nr++; /* region index for now */
      }
      if (mp->home[id] != id) continue;
      int64_t bytes = shape_numel(nd->shape) * 4;
      int reuse = -1;
      /* in place: a buffer of the same size read by this kernel for the last time */
      for (int q2 = kp->first[k]; ew && reuse < 0 && q2 < kp->first[k + 1]; q2++) {
        const ir_node *m = &f->nodes[kp->members[q2]];
        for (int j = 0; j < m->nin; j++) {
          int h = mp->home[ir_operand(m, j)];
          if (h < 0 || region_of[h] < 0 || (head >= 0 ? h != head : kp->kernel_of[h] == k) ||
              end[h] != k || taken[h] ||
              shape_numel(f->nodes[h].shape) * 4 != bytes)
            continue;
          reuse = h;
          break;
        }
      }
      if (reuse >= 0) {
        taken[reuse] = true;
        mp->inplace_of[id] = reuse;
        region_of[id] = region_of[reuse];
        if (rs[region_of[id]].end < end[id]) rs[region_of[id]].end = end[id];
      } else {
        rs[nr] = (region){bytes, -1, k, end[id]};
        region_of[id] = nr++;
      }
    }
  }
  /* the most bytes live at any one kernel: no placement can do better */
  int64_t *delta = calloc((size_t)kp->nkernels + 2, sizeof *delta);
  if (delta) {
    for (int r = 0; r < nr; r++) {
      delta[rs[r].start] += align64(rs[r].size);
      delta[rs[r].end + 1] -= align64(rs[r].size);
    }
    int64_t live = 0;
    for (int k = 0; k <= kp->nkernels; k++) {
      live += delta[k];
      if (live > mp->peak) mp->peak = live;
    }
    free(delta);
  }
  /* first fit, largest first: the lowest offset clear of every placed region whose
   * live range meets this one's */
  for (int r = 0; r < nr; r++) sorted[r] = &rs[r];
  qsort(sorted, (size_t)nr, sizeof *sorted, by_size);
  region **placed = calloc((size_t)nr + 1, sizeof *placed);
  if (!placed) {
    free(end), free(region_of), free(rs), free(sorted), free(taken);
    memplan_free(mp);
    return -1;
  }
  for (int r = 0; r < nr; r++) {
    region *x = sorted[r];
    int np = 0;
    for (int s = 0; s < r; s++)
      if (sorted[s]->start <= x->end && x->start <= sorted[s]->end) placed[np++] = sorted[s];
    int64_t at = 0;
    for (bool moved = true; moved;) {
      moved = false;
      for (int s = 0; s < np; s++) {
        const region *y = placed[s];
        if (at < y->off + align64(y->size) && y->off < at + align64(x->size)) {
          at = y->off + align64(y->size);
          moved = true;
        }
      }
    }
    x->off = at;
    if (at + align64(x->size) > mp->arena) mp->arena = at + align64(x->size);
  }
  free(placed);
  for (int id = 0; id < n; id++) {
    if (region_of[id] >= 0 && mp->home[id] == id) mp->off[id] = rs[region_of[id]].off;
    if (mp->extra_off[id] >= 0) mp->extra_off[id] = rs[mp->extra_off[id]].off;
  }
  free(end), free(region_of), free(rs), free(sorted), free(taken);
  if (mp->arena > mp->naive) { /* never worse than one region each */
    memplan_free(mp);
    return memplan_naive(f, kp, extra_fn, mp);
  }
  return 0;
}

/* ---- the verifier: liveness recomputed from the IR, every pair of regions checked ---- */

typedef struct {
  int node;       /* whose value or extra scratch */
  bool extra;
  int64_t off, size;
  int start, end;
} live_region;

/* the node a view (reshape, store) shows, through chains of views */
static int view_root(const ir_func *f, int id) {
  while (is_view(f->nodes[id].op)) id = f->nodes[id].in[0];
  return id;
}

/* A load read in the state: alone in its kernel, no output, and no store of its
 * variable from the kernel after its own through the last kernel reading it. */
static bool state_read_ok(const ir_func *f, const kernel_plan *kp, int id, char *err,
                          size_t errn) {
  const ir_node *ld = &f->nodes[id];
  int k = kp->kernel_of[id], last = k;
  if (ld->op != IR_OP_LOAD || kp->first[k + 1] - kp->first[k] != 1) {
    snprintf(err, errn, "node %d (%s) reads the state in place but is no load of its own kernel",
             id, ir_ops[ld->op].name);
    return false;
  }
  for (int o = 0; o < f->noutputs; o++)
    if (view_root(f, f->outputs[o].node) == id) {
      snprintf(err, errn, "load %d reads the state in place but is output %s", id,
               f->outputs[o].name);
      return false;
    }
  for (int u = id + 1; u < f->nnodes; u++)
    for (int j = 0; j < f->nodes[u].nin; j++)
      if (view_root(f, ir_operand(&f->nodes[u], j)) == id && kp->kernel_of[u] > last)
        last = kp->kernel_of[u];
  for (int u = 0; u < f->nnodes; u++)
    if (f->nodes[u].op == IR_OP_STORE && f->nodes[u].var == ld->var && kp->kernel_of[u] > k &&
        kp->kernel_of[u] <= last) {
      snprintf(err, errn, "load %d reads the state in place until kernel %d, but store %d in "
               "kernel %d changes it", id, last, u, kp->kernel_of[u]);
      return false;
    }
  return true;
}

bool memplan_verify(const ir_func *f, const kernel_plan *kp, const memplan *mp, char *err,
                    size_t errn) {
  int n = f->nnodes;
  if (mp->nnodes != n || kp->nnodes != n) {
    snprintf(err, errn, "the plan is for %d nodes, the function has %d", mp->nnodes, n);
    return false;
  }
  if (mp->arena > mp->naive) {
    snprintf(err, errn, "arena of %lld bytes exceeds the naive total %lld",
             (long long)mp->arena, (long long)mp->naive);
    return false;
  }
  live_region *lr = calloc((size_t)(2 * n + 1), sizeof *lr);
  if (!lr) {
    snprintf(err, errn, "out of memory");
    return false;
  }
  int nl = 0;
  bool ok = true;
  for (int id = 0; id < n && ok; id++) {
    const ir_node *nd = &f->nodes[id];
    int k = kp->kernel_of[id];
    /* where the value must be: views follow their operand; a stored value of any other
     * node but an input needs a region of its own */
    int want = nd->op == IR_OP_INPUT || mp->in_state[id] ? -1
             : is_view(nd->op)                           ? mp->home[nd->in[0]]
             : kp->stored[id]                            ? id : -1;
    if (mp->home[id] != want) {
      snprintf(err, errn, "node %d (%s): value held by node %d, expected %d", id,
               ir_ops[nd->op].name, mp->home[id], want);
      ok = false;
      break;
    }
    if (mp->in_state[id] && !state_read_ok(f, kp, id, err, errn)) {
      ok = false;
      break;
    }
    if (mp->extra[id] > 0)
      lr[nl++] = (live_region){id, true, mp->extra_off[id], mp->extra[id], k, k};
    if (mp->home[id] != id) continue;
    int last = k;
    for (int u = id + 1; u < n; u++) { /* readers of id or of a view of it */
      const ir_node *un = &f->nodes[u];
      for (int j = 0; j < un->nin; j++)
        if (mp->home[ir_operand(un, j)] == id && kp->kernel_of[u] > last) last = kp->kernel_of[u];
    }
    for (int o = 0; o < f->noutputs; o++)
      if (mp->home[f->outputs[o].node] == id) last = kp->nkernels;
    lr[nl++] = (live_region){id, false, mp->off[id], shape_numel(nd->shape) * 4, k, last};
  }
  for (int a = 0; a < nl && ok; a++) {
    const live_region *x = &lr[a];
    if (x->off < 0 || x->off % 64 || x->off + x->size > mp->arena) {
      snprintf(err, errn, "node %d: %s region [%lld, +%lld) outside the arena of %lld bytes",
               x->node, x->extra ? "extra" : "value", (long long)x->off, (long long)x->size,
               (long long)mp->arena);
      ok = false;
    }
    for (int b = a + 1; b < nl && ok; b++) {
      const live_region *y = &lr[b];
      if (y->start > x->end || x->start > y->end) continue;
      if (y->off >= x->off + x->size || x->off >= y->off + y->size) continue;
      /* in place: y's kernel writes over x, which that kernel reads for the last time */
      if (!x->extra && !y->extra && mp->inplace_of[y->node] == x->node && x->end == y->start &&
          x->off == y->off && x->size == y->size)
        continue;
      if (!x->extra && !y->extra && mp->inplace_of[x->node] == y->node && y->end == x->start &&
          x->off == y->off && x->size == y->size)
        continue;
      snprintf(err, errn,
               "node %d (%s%s, kernels %d..%d) and node %d (%s%s, kernels %d..%d) overlap at "
               "bytes [%lld, +%lld) and [%lld, +%lld)",
               x->node, ir_ops[f->nodes[x->node].op].name, x->extra ? " extra" : "", x->start,
               x->end, y->node, ir_ops[f->nodes[y->node].op].name, y->extra ? " extra" : "",
               y->start, y->end, (long long)x->off, (long long)x->size, (long long)y->off,
               (long long)y->size);
      ok = false;
    }
  }
  free(lr);
  return ok;
}
