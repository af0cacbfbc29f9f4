/* mi_terms.c: the InfoGAN terms an MI estimate is made of, and the most each can
 * reach (see ir.h). The frontend builds them (frontend/builtins.c) as
 *   info_categorical(c, logits)     one INFO_CATEGORICAL node: ln K - cross-entropy
 *   info_gaussian(c, mean, std)     SUB(CONST H(c), GAUSSIAN_NLL(mean, c))
 *   info_bernoulli(b, logits)       SUB(CONST D H(p), MUL(CONST D, BCE_LOGITS(logits, b)))
 * and a report may add several (`report mi = mi_c + mi_s`). Anything else, a scaled
 * term or a difference of two, is not an estimate here, and has no bound: none rather
 * than a wrong one.
 *
 * The bounds hold for every batch, not only in expectation: a cross-entropy is at least
 * 0, and the NLL, sum over d of ½((c-mean)/std)² + ln std + ½ ln 2π, is at least
 * D (ln std + ½ ln 2π) = D · ½ ln(2π std²), reached when Q's mean is the code itself. */
#include "ir.h"

#include <math.h>
#include <string.h>

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
    term.bound = log((double)term.dims);
  } else if (x->op == IR_OP_SUB && f->nodes[x->in[0]].op == IR_OP_CONST &&
             f->nodes[x->in[1]].op == IR_OP_GAUSSIAN_NLL) {
    const ir_node *nll = &f->nodes[x->in[1]];
    term.op = IR_OP_GAUSSIAN_NLL;
    term.pred = nll->in[0];
    term.code = input_of(f, nll->in[1]);
    term.dims = per_sample(&f->nodes[nll->in[0]]);
    term.h = f->nodes[x->in[0]].f[0];
    term.std = nll->f[0];
    term.bound = term.h - (double)term.dims * 0.5 * log(2 * M_PI * term.std * term.std);
  } else if (x->op == IR_OP_SUB && f->nodes[x->in[0]].op == IR_OP_CONST &&
             f->nodes[x->in[1]].op == IR_OP_MUL &&
             f->nodes[f->nodes[x->in[1]].in[0]].op == IR_OP_CONST &&
             f->nodes[f->nodes[x->in[1]].in[1]].op == IR_OP_BCE_LOGITS) {
    const ir_node *mul = &f->nodes[x->in[1]], *bce = &f->nodes[mul->in[1]];
    term.op = IR_OP_BCE_LOGITS;
    term.pred = bce->in[0];
    term.code = input_of(f, bce->in[1]);
    term.dims = per_sample(&f->nodes[bce->in[0]]);
    term.h = f->nodes[x->in[0]].f[0];
    term.bound = term.h; /* a cross-entropy is at least 0 */
    /* info_bernoulli's scale is the bits per sample; anything else is not one */
    if (f->nodes[mul->in[0]].f[0] != (double)term.dims || term.code < 0) return false;
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

double ir_mi_bound(const ir_mi_term *terms, int n) {
  double b = 0;
  for (int i = 0; i < n; i++) b += terms[i].bound;
  return b;
}

/* H(c) per dimension of the code's prior as a formula, when h is D times it; else "". */
static void entropy_str(const ir_module *m, const ir_mi_term *t, char *buf, size_t len) {
  buf[0] = 0;
  if (t->code < 0) return;
  const ir_input *c = &m->inputs[t->code];
  double per = c->dist == DIST_UNIFORM  ? log(c->b - c->a)
             : c->dist == DIST_NORMAL ? 0.5 * log(2 * M_PI * M_E * c->b * c->b)
                                      : NAN;
  if (!(fabs(per * (double)t->dims - t->h) <= 1e-9 * fmax(1, fabs(t->h)))) return;
  if (c->dist == DIST_UNIFORM)
    snprintf(buf, len, "ln %g", c->b - c->a);
  else
    snprintf(buf, len, "0.5 ln(2 pi e %g)", c->b * c->b);
}

void ir_mi_bound_str(const ir_module *m, const ir_mi_term *terms, int n, char *buf, size_t len) {
  size_t at = 0;
  buf[0] = 0;
  for (int i = 0; i < n && at < len; i++) {
    const ir_mi_term *t = &terms[i];
    const char *plus = i ? " + " : "";
    int k;
    if (t->op == IR_OP_INFO_CATEGORICAL) {
      k = snprintf(buf + at, len - at, "%sln %lld", plus, (long long)t->dims);
    } else if (t->op == IR_OP_BCE_LOGITS) {
      double per = t->h / (double)t->dims;
      char h[64];
      if (fabs(per - log(2.0)) <= 1e-12) snprintf(h, sizeof h, "ln 2");
      else snprintf(h, sizeof h, "H(%g)", m->inputs[t->code].a);
      k = t->dims == 1 ? snprintf(buf + at, len - at, "%s%s", plus, h)
                       : snprintf(buf + at, len - at, "%s%lld %s", plus, (long long)t->dims, h);
    } else {
      char h[64], nll[64];
      entropy_str(m, t, h, sizeof h);
      if (!h[0]) snprintf(h, sizeof h, "%.6g", t->h / (double)t->dims);
      if (t->std == 1)
        snprintf(nll, sizeof nll, "0.5 ln(2 pi)");
      else
        snprintf(nll, sizeof nll, "0.5 ln(2 pi %g)", t->std * t->std);
      k = t->dims == 1 ? snprintf(buf + at, len - at, "%s%s - %s", plus, h, nll)
                       : snprintf(buf + at, len - at, "%s%lld (%s - %s)", plus,
                                  (long long)t->dims, h, nll);
    }
    at += k > 0 ? (size_t)k : 0;
  }
}
