/* migc_schedule.c: `migc dump --schedule` and its `--stats` report (see migc_schedule.h).
 * Both print what cg_compile would run, from cg_plan: the same kernels and arena. */
#include "migc_schedule.h"

#include <stdlib.h>
#include <string.h>

/* the node whose buffer a value is read from: through reshapes and stores */
static int root_of(const ir_func *f, int id) {
  while (f->nodes[id].op == IR_OP_RESHAPE || f->nodes[id].op == IR_OP_STORE) id = f->nodes[id].in[0];
  return id;
}

/* inputs, reshapes and loads read in the state in place do nothing themselves */
static bool does_work(const ir_func *f, const kernel_plan *kp, const memplan *mp, int k) {
  for (int q = kp->first[k]; q < kp->first[k + 1]; q++) {
    ir_op op = f->nodes[kp->members[q]].op;
    if (op != IR_OP_INPUT && op != IR_OP_RESHAPE && !mp->in_state[kp->members[q]]) return true;
  }
  return false;
}

/* Bytes of values moved through memory by one call: every kernel reads each operand it
 * does not compute (once per kernel) and each variable it loads, and writes each value
 * read elsewhere and each store; outputs are copied out at the end. Scratch inside a
 * kernel (im2col columns, accumulators) and GEMM blocking are not counted; a load read
 * in the state in place moves nothing itself (its readers read the state). */
static void traffic(const ir_func *f, const kernel_plan *kp, const memplan *mp, int64_t *rd,
                    int64_t *wr) {
  *rd = *wr = 0;
  int *seen = malloc((size_t)(f->nnodes ? f->nnodes : 1) * sizeof *seen);
  if (!seen) return;
  for (int id = 0; id < f->nnodes; id++) seen[id] = -1;
  for (int k = 0; k < kp->nkernels; k++)
    for (int q = kp->first[k]; q < kp->first[k + 1]; q++) {
      int id = kp->members[q];
      const ir_node *n = &f->nodes[id];
      int64_t bytes = shape_numel(n->shape) * 4;
      if (n->op == IR_OP_INPUT || n->op == IR_OP_RESHAPE || mp->in_state[id]) continue;
      for (int j = 0; j < n->nin; j++) {
        int a = ir_operand(n, j), r = root_of(f, a);
        if (kp->kernel_of[a] == k || seen[r] == k) continue;
        seen[r] = k;
        *rd += shape_numel(f->nodes[r].shape) * 4;
      }
      if (n->op == IR_OP_LOAD) *rd += bytes;
      if (n->op == IR_OP_STORE || (n->op != IR_OP_LOAD && kp->stored[id])) *wr += bytes;
      if (n->op == IR_OP_LOAD && kp->stored[id]) *wr += bytes;
    }
  for (int o = 0; o < f->noutputs; o++) {
    int64_t bytes = shape_numel(f->nodes[f->outputs[o].node].shape) * 4;
    *rd += bytes, *wr += bytes;
  }
  free(seen);
}

static void print_node(const ir_module *m, const ir_func *f, const kernel_plan *kp,
                       const memplan *mp, int id, FILE *out) {
  const ir_node *n = &f->nodes[id];
  char sh[96];
  shape_str(n->shape, sh, sizeof sh);
  fprintf(out, " %%%d %s%s%s %s", id, ir_ops[n->op].name, n->var >= 0 ? " " : "",
          n->var >= 0 ? m->vars[n->var].name : "", sh);
  if (n->op == IR_OP_INPUT)
    fputs(" caller", out);
  else if (mp->home[id] == id && mp->inplace_of[id] >= 0)
    fprintf(out, " @%lld (in place of %%%d)", (long long)mp->off[id], mp->inplace_of[id]);
  else if (mp->home[id] == id)
    fprintf(out, " @%lld", (long long)mp->off[id]);
  else if (mp->in_state[id])
    fputs(" in state", out);
  else if (n->op == IR_OP_RESHAPE || n->op == IR_OP_STORE)
    fprintf(out, " view of %%%d", n->in[0]);
  else
    fputs(kp->stored[id] ? " ?" : " reg", out);
  if (mp->extra[id] > 0)
    fprintf(out, " extra @%lld+%lld", (long long)mp->extra_off[id], (long long)mp->extra[id]);
}

int schedule_report(const ir_module *m, const cg_options *co, bool list, FILE *out, char *err,
                    size_t errn) {
  cg_options unfused = co ? *co : (cg_options){0};
  unfused.no_fuse = true;
  for (int fi = 0; fi < m->nfuncs; fi++) {
    const ir_func *f = m->funcs[fi];
    kernel_plan kp, ku;
    memplan mp, mu;
    if (cg_plan(f, co, &kp, &mp, err, errn)) return 1;
    if (cg_plan(f, &unfused, &ku, &mu, err, errn)) {
      kernel_plan_free(&kp);
      memplan_free(&mp);
      return 1;
    }
    int nk = 0, nku = 0;
    for (int k = 0; k < kp.nkernels; k++) nk += does_work(f, &kp, &mp, k);
    for (int k = 0; k < ku.nkernels; k++) nku += does_work(f, &ku, &mu, k);
    int64_t rd, wr, rdu, wru;
    traffic(f, &kp, &mp, &rd, &wr);
    traffic(f, &ku, &mu, &rdu, &wru);
    fprintf(out, "%s: %d nodes\n", f->name, f->nnodes);
    fprintf(out, "  kernels          %8d unfused  %8d %s\n", nku, nk,
            co && co->no_fuse ? "unfused" : "fused");
    fprintf(out, "  bytes read       %8.2f MB     %8.2f MB per call\n", rdu / 1e6, rd / 1e6);
    fprintf(out, "  bytes written    %8.2f MB     %8.2f MB per call\n", wru / 1e6, wr / 1e6);
    fprintf(out, "  arena planned    %8.2f MB     %8.2f MB (peak live %.2f MB)\n", mu.arena / 1e6,
            mp.arena / 1e6, mp.peak / 1e6);
    fprintf(out, "  all buffers      %8.2f MB     (one region per value and scratch, unplanned)\n",
            mp.naive / 1e6);
    for (int k = 0; list && k < kp.nkernels; k++) {
      /* listed: kernels that work, and loads read in the state (not counted) */
      if (!does_work(f, &kp, &mp, k) && !mp.in_state[kp.members[kp.first[k]]]) continue;
      int size = kp.first[k + 1] - kp.first[k];
      fprintf(out, "  kernel %d%s:", k, size > 1 ? " (fused)" : "");
      for (int q = kp.first[k]; q < kp.first[k + 1]; q++) {
        if (q > kp.first[k]) fputs(" |", out);
        print_node(m, f, &kp, &mp, kp.members[q], out);
      }
      fputc('\n', out);
    }
    kernel_plan_free(&kp), kernel_plan_free(&ku);
    memplan_free(&mp), memplan_free(&mu);
  }
  return 0;
}
