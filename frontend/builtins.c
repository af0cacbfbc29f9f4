/* builtins.c: the model language's built-in functions. Each entry gives its
 * parameters (how calls bind to them), the function that lowers a call to IR ops,
 * and a line of documentation. Layers (dense, conv, deconv, batchnorm) make their
 * parameters the first time their call site runs, named net.layer.role. */
#include "elab.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- binding arguments -------------------------------------------------------------- */

typedef struct {
  char name[32];
  bool keyword_only_default; /* has '=': optional */
  char deflt[32];            /* default literal, "" for none */
  bool variadic, raw;
} param_spec;

static int parse_spec(const char *spec, param_spec *out, int max) {
  int n = 0;
  const char *p = spec;
  while (*p && n < max) {
    while (*p == ' ' || *p == ',') p++;
    if (!*p) break;
    param_spec *ps = &out[n++];
    memset(ps, 0, sizeof *ps);
    if (*p == '*') ps->variadic = true, p++;
    if (*p == '~') ps->raw = true, p++;
    int k = 0;
    while (*p && *p != '=' && *p != ',' && *p != ' ' && k < 31) ps->name[k++] = *p++;
    if (*p == '=') {
      p++;
      ps->keyword_only_default = true;
      k = 0;
      while (*p && *p != ',' && *p != ' ' && k < 31) ps->deflt[k++] = *p++;
    }
    while (*p && *p != ',') p++;
  }
  return n;
}

static void spec_list(const param_spec *ps, int n, char *buf, size_t len) {
  size_t used = 0;
  buf[0] = 0;
  for (int i = 0; i < n; i++) {
    int k = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", ps[i].name);
    if (k < 0 || (size_t)k >= len - used) break;
    used += (size_t)k;
  }
}

bool bind_args(elab *e, const builtin *b, const ast_expr *call, call_args *a) {
  memset(a, 0, sizeof *a);
  a->call = call;
  param_spec ps[12];
  int np = parse_spec(b->params, ps, 12);
  int positional = 0;
  bool ok = true;
  for (int j = 0; j < call->nargs; j++) {
    const ast_arg *arg = &call->args[j];
    int slot = -1;
    if (!arg->key) {
      if (positional < np && ps[positional].variadic) {
        a->rest = realloc(a->rest, (size_t)(a->nrest + 1) * sizeof *a->rest);
        a->rest[a->nrest++] = eval_expr(e, arg->value);
        continue;
      }
      slot = positional++;
      if (slot >= np) {
        char list[256];
        spec_list(ps, np, list, sizeof list);
        diag_error(e->d, arg->value->span, "%s takes at most %d argument%s (%s), got %d",
                   b->name, np, np == 1 ? "" : "s", list, call->nargs);
        return false;
      }
    } else {
      for (int k = 0; k < np; k++)
        if (!strcmp(ps[k].name, arg->key) && !ps[k].variadic) slot = k;
      if (slot < 0) {
        char list[256];
        spec_list(ps, np, list, sizeof list);
        diag_error(e->d, arg->key_span, "%s has no argument '%s'; it takes: %s", b->name,
                   arg->key, list);
        ok = false;
        continue;
      }
      if (a->given[slot]) {
        diag_error(e->d, arg->key_span, "'%s' is given twice", arg->key);
        ok = false;
        continue;
      }
    }
    a->given[slot] = true;
    a->raw[slot] = arg->value;
    if (!ps[slot].raw) {
      a->args[slot] = eval_expr(e, arg->value);
      if (a->args[slot].kind == VAL_POISON) ok = false;
    }
  }
  for (int k = 0; k < np; k++) {
    if (a->given[k] || ps[k].variadic) continue;
    if (!ps[k].keyword_only_default) {
      diag_error(e->d, call->span, "%s needs its '%s' argument", b->name, ps[k].name);
      ok = false;
    } else if (ps[k].deflt[0]) {
      char *end;
      double v = strtod(ps[k].deflt, &end);
      bool is_int = !strpbrk(ps[k].deflt, ".e");
      a->args[k] = (value){.kind = VAL_NUM, .num = v, .is_int = is_int, .span = call->span,
                           .origin = call->span};
    }
  }
  for (int k = 0; k < np; k++)
    if (ps[k].variadic && a->nrest == 0) {
      diag_error(e->d, call->span, "%s needs at least one tensor", b->name);
      ok = false;
    }
  for (int k = 0; k < a->nrest; k++)
    if (a->rest[k].kind == VAL_POISON) ok = false;
  return ok;
}

/* ---- helpers for the built-ins ------------------------------------------------------- */

static value op1(elab *e, call_args *a, ir_op op, const ir_attrs *at, value x) {
  const value *args[1] = {&x};
  return emit_op(e, op, args, 1, at, a->call->span, NULL);
}

static value op2(elab *e, call_args *a, ir_op op, const ir_attrs *at, value x, value y) {
  const value *args[2] = {&x, &y};
  return emit_op(e, op, args, 2, at, a->call->span, NULL);
}

static value node_value(elab *e, call_args *a, int id) {
  return val_node(e, id, a->call->span, a->call->span, NULL);
}

/* Per-sample rank of a tensor value. */
static int sample_rank(elab *e, value v) {
  const ir_node *n = node_of(e, v);
  return n->shape.rank - (n->shape.batched ? 1 : 0);
}

/* A user axis (per-sample, may be negative) to an IR axis. */
static bool ir_axis(elab *e, value x, value axis, const char *fn, int64_t *out) {
  int64_t ax;
  if (!need_int(e, axis, "axis", &ax)) return false;
  int r = sample_rank(e, x);
  if (ax < 0) ax += r;
  if (ax < 0 || ax >= r) {
    char sh[128];
    user_shape(e, x, sh, sizeof sh);
    diag_error(e->d, axis.span, "%s: axis %lld is out of range for a %s input", fn,
               (long long)(ax < 0 ? ax - r : ax), sh);
    return false;
  }
  *out = ax + (node_of(e, x)->shape.batched ? 1 : 0);
  return true;
}

/* The layer site of a call: the one numbered in its net's body, or inside a net
 * instance that site's copy for the instance, made on first use. */
static layer_site *site_of(elab *e, const ast_expr *call) {
  int base = -1;
  for (int i = 0; i < e->nlayers && base < 0; i++)
    if (e->layers[i].call == call && !e->layers[i].instance) base = i;
  if (base < 0 || !e->instance) return base < 0 ? NULL : &e->layers[base];
  const char *name = pool_printf(e, "%s.%s", e->instance, e->layers[base].name);
  for (int i = 0; i < e->nlayers; i++) {
    layer_site *l = &e->layers[i];
    if (l->instance && l->call == call && l->net == e->instance_owner && !strcmp(l->name, name))
      return l;
  }
  e->layers = realloc(e->layers, (size_t)(e->nlayers + 1) * sizeof *e->layers);
  layer_site *l = &e->layers[e->nlayers++];
  memset(l, 0, sizeof *l);
  l->call = call;
  l->net = e->instance_owner;
  l->name = strdup(name);
  l->instance = true;
  for (int k = 0; k < 4; k++) l->vars[k] = -1;
  return l;
}

/* The layer site of this call, or NULL with an error if called outside a net. */
static layer_site *layer_here(elab *e, call_args *a) {
  int net = current_net(e);
  if (net < 0) {
    diag_error(e->d, a->call->span, "%s makes parameters, so it can only be called inside a "
                                    "net", a->call->name);
    return NULL;
  }
  return site_of(e, a->call);
}

static bool parse_init(elab *e, const ast_expr *x, ir_init *init) {
  static const builtin inits[] = {
      {"normal", "mean=0, std=1", NULL, ""}, {"uniform", "low, high", NULL, ""},
      {"zeros", "", NULL, ""},               {"ones", "", NULL, ""},
  };
  const builtin *b = builtin_call_in(inits, sizeof inits / sizeof *inits, x);
  if (!b) {
    diag_error(e->d, x->span, "init= takes normal(mean, std), uniform(low, high), zeros() "
                              "or ones()");
    return false;
  }
  call_args a;
  bool ok = bind_args(e, b, x, &a);
  free(a.rest);
  if (!ok) return false;
  if (b == &inits[0]) {
    init->kind = INIT_NORMAL;
    if (!need_num(e, a.args[0], "mean", &init->a) || !need_num(e, a.args[1], "std", &init->b))
      return false;
    if (!(init->b >= 0)) {
      diag_error(e->d, x->span, "normal(mean, std) needs std >= 0");
      return false;
    }
  } else if (b == &inits[1]) {
    init->kind = INIT_UNIFORM;
    if (!need_num(e, a.args[0], "low", &init->a) || !need_num(e, a.args[1], "high", &init->b))
      return false;
    if (!(init->a <= init->b)) {
      diag_error(e->d, x->span, "uniform(low, high) needs low <= high");
      return false;
    }
  } else {
    init->kind = b == &inits[2] ? INIT_ZEROS : INIT_ONES;
  }
  return true;
}

static int make_var(elab *e, layer_site *l, const char *role, ir_var_kind kind, ir_shape shape,
                    ir_init init) {
  char name[256];
  snprintf(name, sizeof name, "%s.%s.%s", e->m->nets[l->net], l->name, role);
  int v = ir_add_var(e->m, name, kind, IR_F32, shape, l->net, l->call->span);
  e->m->vars[v].init = init;
  return v;
}

static ir_shape dims(int rank, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
  int64_t d[4] = {d0, d1, d2, d3};
  return shape_make(rank, d, false);
}

/* Makes (first call) or checks (later calls) a layer's weight and bias. */
static bool layer_params(elab *e, call_args *a, layer_site *l, ir_shape wshape,
                         int64_t nbias, int64_t fan_in, bool bias, int init_slot) {
  if (!l->made) {
    if (shape_numel_checked(wshape) < 0) {
      char sh[160];
      shape_str(wshape, sh, sizeof sh);
      diag_error(e->d, l->call->span, "this layer's weight would be %s: more than 2^40 values, "
                 "the most a tensor may hold", sh);
      return false;
    }
    ir_init wi = {.kind = INIT_DEFAULT, .fan_in = fan_in};
    if (a->given[init_slot] && !parse_init(e, a->raw[init_slot], &wi)) return false;
    l->vars[0] = make_var(e, l, "weight", VAR_PARAM, wshape, wi);
    if (bias) {
      ir_init bi = {.kind = INIT_DEFAULT, .fan_in = fan_in};
      l->vars[1] = make_var(e, l, "bias", VAR_PARAM, dims(1, nbias, 0, 0, 0), bi);
    }
    l->made = true;
    return true;
  }
  const ir_var *w = &e->m->vars[l->vars[0]];
  if (!shape_equal(w->shape, wshape)) {
    char want[128], got[128];
    shape_str(w->shape, want, sizeof want);
    shape_str(wshape, got, sizeof got);
    diag_error(e->d, a->call->span, "%s.%s was made with weight %s, but this call needs %s",
               e->m->nets[l->net], l->name, want, got);
    return false;
  }
  return true;
}

static value add_bias(elab *e, call_args *a, layer_site *l, value y, bool conv) {
  if (l->vars[1] < 0) return y;
  int b = load_var(e, l->vars[1]);
  value bv = node_value(e, a, b);
  if (conv) { /* [O] -> [O,1,1] so it broadcasts over [N,O,H,W] */
    ir_attrs r = {.ashape = dims(3, e->m->vars[l->vars[1]].shape.dim[0], 1, 1, 0)};
    bv = op1(e, a, IR_OP_RESHAPE, &r, bv);
  }
  return op2(e, a, IR_OP_ADD, NULL, y, bv);
}

static const char *layer_label(elab *e, layer_site *l) {
  return pool_printf(e, "%s.%s", e->m->nets[l->net], l->name);
}

/* ---- layers ---------------------------------------------------------------------------- */

/* dense(x, units): x [N,in] -> [N,units]; weight [units,in] as PyTorch stores it. */
static value b_dense(elab *e, call_args *a) {
  layer_site *l = layer_here(e, a);
  int64_t units, bias;
  if (!l || !need_tensor(e, a->args[0], "dense's input") ||
      !need_int(e, a->args[1], "units", &units) || !need_int(e, a->args[2], "bias", &bias))
    return val_poison();
  value x = a->args[0];
  const ir_node *xn = node_of(e, x);
  if (xn->shape.rank != 2 || !xn->shape.batched || xn->dtype != IR_F32) {
    char sh[128];
    user_shape(e, x, sh, sizeof sh);
    diag_error(e->d, x.span, "dense expects a flat [features] input, got %s%s", sh,
               sample_rank(e, x) > 1 ? "; flatten it first with flatten(...)" : "");
    return val_poison();
  }
  if (units < 1 || units > (1 << 24)) {
    diag_error(e->d, a->args[1].span, "units must be between 1 and %d", 1 << 24);
    return val_poison();
  }
  int64_t in = xn->shape.dim[1];
  if (!layer_params(e, a, l, dims(2, units, in, 0, 0), units, in, bias != 0, 4))
    return val_poison();
  value w = node_value(e, a, load_var(e, l->vars[0]));
  ir_attrs mm = {.i = {0, 1}};
  value y = op2(e, a, IR_OP_MATMUL, &mm, x, w);
  y = add_bias(e, a, l, y, false);
  if (y.kind == VAL_NODE) e->f->nodes[y.node].label = layer_label(e, l);
  return y;
}

static value conv_like(elab *e, call_args *a, bool transposed) {
  const char *fn = transposed ? "deconv" : "conv";
  layer_site *l = layer_here(e, a);
  int64_t ch, k, s, p, bias;
  if (!l || !need_tensor(e, a->args[0], "the input") ||
      !need_int(e, a->args[1], "channels", &ch) || !need_int(e, a->args[2], "k", &k) ||
      !need_int(e, a->args[3], "s", &s) || !need_int(e, a->args[4], "p", &p) ||
      !need_int(e, a->args[5], "bias", &bias))
    return val_poison();
  value x = a->args[0];
  const ir_node *xn = node_of(e, x);
  if (xn->shape.rank != 4 || !xn->shape.batched) {
    char sh[128];
    user_shape(e, x, sh, sizeof sh);
    diag_error(e->d, x.span, "%s expects a [C,H,W] input, got %s%s", fn, sh,
               sample_rank(e, x) == 1 ? "; reshape it first, e.g. reshape(h, [C, H, W])" : "");
    return val_poison();
  }
  if (ch < 1 || k < 1 || s < 1 || p < 0 || ch > (1 << 20) || k > 64 || s > 64 || p > 64) {
    diag_error(e->d, a->call->span, "%s needs channels >= 1, 1 <= k <= 64, 1 <= s <= 64 and "
                                    "0 <= p <= 64", fn);
    return val_poison();
  }
  int64_t c = xn->shape.dim[1];
  ir_shape wshape = transposed ? dims(4, c, ch, k, k) : dims(4, ch, c, k, k);
  /* PyTorch takes fan_in from weight dim 1: C_in*k*k for conv, C_out*k*k for deconv. */
  int64_t fan_in = (transposed ? ch : c) * k * k;
  if (!layer_params(e, a, l, wshape, ch, fan_in, bias != 0, 7)) return val_poison();
  value w = node_value(e, a, load_var(e, l->vars[0]));
  ir_attrs at = {.i = {k, s, p}};
  value y = op2(e, a, transposed ? IR_OP_DECONV : IR_OP_CONV, &at, x, w);
  y = add_bias(e, a, l, y, true);
  if (y.kind == VAL_NODE) e->f->nodes[y.node].label = layer_label(e, l);
  return y;
}

static value b_conv(elab *e, call_args *a) { return conv_like(e, a, false); }
static value b_deconv(elab *e, call_args *a) { return conv_like(e, a, true); }

/* batchnorm(x): batch statistics while training (and the running averages updated as
 * PyTorch does: r = (1-momentum) r + momentum stat, variance unbiased); the running
 * averages in generate and encode. */
/* The running statistics' inputs under sync batchnorm: the mean and unbiased variance
 * of x's channels over every process's batch (count = per_channel * ranks), each a
 * sum over this process's batch added across processes by an allreduce. */
static void synced_moments(elab *e, call_args *a, value x, int ranks, int64_t per_channel,
                           value *mean, value *var) {
  ir_shape xs = node_of(e, x)->shape;
  int64_t c = xs.dim[1], count = per_channel * ranks;
  ir_attrs red = {.i = {xs.rank == 2 ? 1 : (1 | 4 | 8), 0}};
  ir_attrs to_mean = {.f = {1.0 / (double)count}}, to_var = {.f = {1.0 / (double)(count - 1)}};
  *mean = op1(e, a, IR_OP_ALLREDUCE, &to_mean, op1(e, a, IR_OP_SUM, &red, x));
  value m = *mean; /* [C], or [C,1,1] to broadcast over [N,C,H,W] */
  if (xs.rank == 4) {
    ir_attrs r = {.ashape = dims(3, c, 1, 1, 0)};
    m = op1(e, a, IR_OP_RESHAPE, &r, m);
  }
  value dev = op2(e, a, IR_OP_SUB, NULL, x, m);
  value sq = op1(e, a, IR_OP_SUM, &red, op2(e, a, IR_OP_MUL, NULL, dev, dev));
  *var = op1(e, a, IR_OP_ALLREDUCE, &to_var, sq);
}

static value b_batchnorm(elab *e, call_args *a) {
  layer_site *l = layer_here(e, a);
  double eps, mom;
  if (!l || !need_tensor(e, a->args[0], "batchnorm's input") ||
      !need_num(e, a->args[1], "eps", &eps) || !need_num(e, a->args[2], "momentum", &mom))
    return val_poison();
  if (!(eps > 0) || !(mom >= 0 && mom <= 1)) {
    diag_error(e->d, a->call->span, "batchnorm needs eps > 0 and 0 <= momentum <= 1");
    return val_poison();
  }
  value x = a->args[0];
  /* A copy: emitting nodes below may move the node array. */
  const ir_node xcopy = *node_of(e, x), *xn = &xcopy;
  if (!xn->shape.batched || (xn->shape.rank != 2 && xn->shape.rank != 4)) {
    char sh[128];
    user_shape(e, x, sh, sizeof sh);
    diag_error(e->d, x.span, "batchnorm expects a [features] or [C,H,W] input, got %s", sh);
    return val_poison();
  }
  int64_t c = xn->shape.dim[1];
  int rank = xn->shape.rank;
  if (!l->made) {
    ir_init ones = {.kind = INIT_ONES}, zeros = {.kind = INIT_ZEROS};
    l->vars[0] = make_var(e, l, "weight", VAR_PARAM, dims(1, c, 0, 0, 0), ones);
    l->vars[1] = make_var(e, l, "bias", VAR_PARAM, dims(1, c, 0, 0, 0), zeros);
    l->vars[2] = make_var(e, l, "running_mean", VAR_BN_MEAN, dims(1, c, 0, 0, 0), zeros);
    l->vars[3] = make_var(e, l, "running_var", VAR_BN_VAR, dims(1, c, 0, 0, 0), ones);
    l->made = true;
  } else if (e->m->vars[l->vars[0]].shape.dim[0] != c) {
    diag_error(e->d, a->call->span, "%s.%s was made for %lld channels, this input has %lld",
               e->m->nets[l->net], l->name, (long long)e->m->vars[l->vars[0]].shape.dim[0],
               (long long)c);
    return val_poison();
  }
  const char *label = layer_label(e, l);
  value g = node_value(e, a, load_var(e, l->vars[0]));
  value b = node_value(e, a, load_var(e, l->vars[1]));
  ir_attrs at = {.f = {eps}};
  if (!e->f->training) {
    value rm = node_value(e, a, load_var(e, l->vars[2]));
    value rv = node_value(e, a, load_var(e, l->vars[3]));
    const value *args[5] = {&x, &g, &b, &rm, &rv};
    value y = emit_op(e, IR_OP_BATCHNORM_INFER, args, 5, &at, a->call->span, label);
    return y;
  }
  int64_t per_channel = shape_numel(xn->shape) / c;
  int ranks = e->opt && e->opt->ranks > 1 ? e->opt->ranks : 1;
  bool local = ranks > 1 && e->opt->local_bn;
  /* sync batchnorm counts every process's values: one sample each is enough */
  int64_t counted = local ? per_channel : per_channel * ranks;
  if (counted < 2) {
    diag_error(e->d, a->call->span, "batchnorm while training needs more than one value per "
                                    "channel; with batch %lld it has %lld",
               (long long)e->m->batch, (long long)counted);
    return val_poison();
  }
  if (ranks > 1 && !local) at.i[0] = ranks;
  const value *args[3] = {&x, &g, &b};
  value y = emit_op(e, IR_OP_BATCHNORM, args, 3, &at, a->call->span, label);
  if (y.kind == VAL_POISON) return y;
  ir_attrs red = {.i = {rank == 2 ? 1 : (1 | 4 | 8), 0}};
  value mean, var;
  if (ranks == 1 || local) {
    mean = op1(e, a, IR_OP_MEAN, &red, x);
    var = op1(e, a, IR_OP_VAR, &red, x);
    if (local) { /* the mean over processes: every one keeps the same running values */
      ir_attrs avg = {.f = {1.0 / ranks}};
      mean = op1(e, a, IR_OP_ALLREDUCE, &avg, mean);
      var = op1(e, a, IR_OP_ALLREDUCE, &avg, var);
    }
  } else {
    synced_moments(e, a, x, ranks, per_channel, &mean, &var);
  }
  for (int k = 0; k < 2; k++) {
    int v = l->vars[2 + k];
    value old = node_value(e, a, load_var(e, v));
    value stat = k == 0 ? mean : var;
    value keep = op2(e, a, IR_OP_MUL, NULL, old,
                     (value){.kind = VAL_NUM, .num = 1 - mom, .span = a->call->span});
    value take = op2(e, a, IR_OP_MUL, NULL, stat,
                     (value){.kind = VAL_NUM, .num = mom, .span = a->call->span});
    value upd = op2(e, a, IR_OP_ADD, NULL, keep, take);
    if (upd.kind != VAL_NODE) return val_poison();
    store_var(e, v, upd.node);
  }
  return y;
}

/* ---- elementwise ----------------------------------------------------------------------- */

#define UNARY(fname, OP)                                                                 \
  static value fname(elab *e, call_args *a) {                                            \
    if (!need_tensor(e, a->args[0], "the argument")) return val_poison();                \
    return op1(e, a, OP, NULL, a->args[0]);                                              \
  }
UNARY(b_relu, IR_OP_RELU)
UNARY(b_tanh, IR_OP_TANH)
UNARY(b_sigmoid, IR_OP_SIGMOID)
UNARY(b_softplus, IR_OP_SOFTPLUS)
UNARY(b_exp, IR_OP_EXP)
UNARY(b_log, IR_OP_LOG)
UNARY(b_sqrt, IR_OP_SQRT)
UNARY(b_sin, IR_OP_SIN)
UNARY(b_cos, IR_OP_COS)

static value b_lrelu(elab *e, call_args *a) {
  double slope;
  if (!need_tensor(e, a->args[0], "the argument") ||
      !need_num(e, a->args[1], "slope", &slope))
    return val_poison();
  ir_attrs at = {.f = {slope}};
  return op1(e, a, IR_OP_LRELU, &at, a->args[0]);
}

static value b_maximum(elab *e, call_args *a) {
  if (a->args[0].kind != VAL_NUM && !need_tensor(e, a->args[0], "maximum's first argument"))
    return val_poison();
  if (a->args[1].kind != VAL_NUM && !need_tensor(e, a->args[1], "maximum's second argument"))
    return val_poison();
  if (a->args[0].kind == VAL_NUM && a->args[1].kind == VAL_NUM) {
    diag_error(e->d, a->call->span, "maximum takes at least one tensor");
    return val_poison();
  }
  return op2(e, a, IR_OP_MAXIMUM, NULL, a->args[0], a->args[1]);
}

/* ---- shape ------------------------------------------------------------------------------ */

static value b_reshape(elab *e, call_args *a) {
  if (!need_tensor(e, a->args[0], "reshape's input")) return val_poison();
  value x = a->args[0], sv = a->args[1];
  if (sv.kind != VAL_LIST) {
    diag_error(e->d, sv.span, "reshape takes a shape such as [128, 7, 7]");
    return val_poison();
  }
  const ir_node *xn = node_of(e, x);
  int off = xn->shape.batched ? 1 : 0;
  if (sv.nitems + off > IR_MAX_RANK || sv.nitems == 0) {
    diag_error(e->d, sv.span, "reshape takes 1 to %d dimensions", IR_MAX_RANK - off);
    return val_poison();
  }
  int64_t d[IR_MAX_RANK], known = 1;
  int infer = -1;
  if (off) d[0] = xn->shape.dim[0];
  for (int i = 0; i < sv.nitems; i++) {
    if (!need_int(e, sv.items[i], "a dimension", &d[i + off])) return val_poison();
    if (d[i + off] == -1 && infer < 0) {
      infer = i + off;
    } else if (d[i + off] < 1) {
      diag_error(e->d, sv.items[i].span, "a dimension must be at least 1 (or one -1 to infer "
                                         "it), got %lld", (long long)d[i + off]);
      return val_poison();
    } else {
      known *= d[i + off];
    }
  }
  int64_t total = shape_numel(xn->shape) / (off ? xn->shape.dim[0] : 1);
  if (infer >= 0) {
    if (total % known) {
      char sh[128];
      user_shape(e, x, sh, sizeof sh);
      diag_error(e->d, sv.span, "cannot reshape %s: %lld values do not divide into %lld",
                 sh, (long long)total, (long long)known);
      return val_poison();
    }
    d[infer] = total / known;
  }
  ir_attrs at = {.ashape = shape_make(sv.nitems + off, d, xn->shape.batched)};
  return op1(e, a, IR_OP_RESHAPE, &at, x);
}

static value b_flatten(elab *e, call_args *a) {
  if (!need_tensor(e, a->args[0], "flatten's input")) return val_poison();
  const ir_node *xn = node_of(e, a->args[0]);
  int64_t d[2];
  ir_attrs at;
  memset(&at, 0, sizeof at);
  if (xn->shape.batched) {
    d[0] = xn->shape.dim[0];
    d[1] = shape_numel(xn->shape) / d[0];
    at.ashape = shape_make(2, d, true);
  } else {
    d[0] = shape_numel(xn->shape);
    at.ashape = shape_make(1, d, false);
  }
  return op1(e, a, IR_OP_RESHAPE, &at, a->args[0]);
}

static value b_concat(elab *e, call_args *a) {
  for (int j = 0; j < a->nrest; j++)
    if (!need_tensor(e, a->rest[j], "each part of concat")) return val_poison();
  int64_t axis;
  if (!ir_axis(e, a->rest[0], a->args[1], "concat", &axis)) return val_poison();
  ir_attrs at = {.i = {axis}};
  const value **args = malloc((size_t)a->nrest * sizeof *args);
  for (int j = 0; j < a->nrest; j++) args[j] = &a->rest[j];
  value y = emit_op(e, IR_OP_CONCAT, args, a->nrest, &at, a->call->span, NULL);
  free(args);
  return y;
}

static value b_slice(elab *e, call_args *a) {
  int64_t axis, start, end;
  if (!need_tensor(e, a->args[0], "slice's input") ||
      !ir_axis(e, a->args[0], a->args[3], "slice", &axis) ||
      !need_int(e, a->args[1], "start", &start) || !need_int(e, a->args[2], "end", &end))
    return val_poison();
  ir_attrs at = {.i = {axis, start, end}};
  return op1(e, a, IR_OP_SLICE, &at, a->args[0]);
}

static value reduce(elab *e, call_args *a, ir_op op) {
  if (!need_tensor(e, a->args[0], "the input")) return val_poison();
  value x = a->args[0];
  const ir_node *xn = node_of(e, x);
  int64_t mask = 0, keep;
  if (!need_int(e, a->args[2], "keep", &keep)) return val_poison();
  if (!a->given[1]) {
    mask = (1 << xn->shape.rank) - 1; /* everything, the batch too: a scalar */
  } else {
    value ax = a->args[1];
    if (ax.kind == VAL_NUM) ax = (value){.kind = VAL_LIST, .items = &a->args[1], .nitems = 1,
                                         .span = ax.span};
    if (ax.kind != VAL_LIST) {
      diag_error(e->d, ax.span, "axes takes a list of per-sample axes, e.g. axes=[1, 2]");
      return val_poison();
    }
    for (int i = 0; i < ax.nitems; i++) {
      int64_t k;
      if (!ir_axis(e, x, ax.items[i], a->call->name, &k)) return val_poison();
      mask |= 1LL << k;
    }
  }
  ir_attrs at = {.i = {mask, keep != 0}};
  return op1(e, a, op, &at, x);
}

static value b_sum(elab *e, call_args *a) { return reduce(e, a, IR_OP_SUM); }
static value b_mean(elab *e, call_args *a) { return reduce(e, a, IR_OP_MEAN); }

/* ---- normalisation by sample: compositions of mean, sub, mul, div and sqrt --------------
 *
 * (x - mean) / sqrt(var + eps) over some per-sample axes, with the biased variance (as
 * PyTorch normalises), then an affine weight and bias. No op of their own: autodiff,
 * fusion and codegen come from the ops they are made of. */

/* x (batched) in the batched shape d[0..rank) */
static value reshape_to(elab *e, call_args *a, value x, int rank, const int64_t *d) {
  ir_attrs at;
  memset(&at, 0, sizeof at);
  at.ashape = shape_make(rank, d, true);
  return op1(e, a, IR_OP_RESHAPE, &at, x);
}

/* x normalised over the axes of mask (keep-dims statistics broadcast back) */
static value normalise(elab *e, call_args *a, value x, int64_t mask, double eps) {
  ir_attrs keep = {.i = {mask, 1}};
  value mu = op1(e, a, IR_OP_MEAN, &keep, x);
  value d = op2(e, a, IR_OP_SUB, NULL, x, mu);
  value var = op1(e, a, IR_OP_MEAN, &keep, op2(e, a, IR_OP_MUL, NULL, d, d));
  value sd = op1(e, a, IR_OP_SQRT, NULL,
                 op2(e, a, IR_OP_ADD, NULL, var, (value){.kind = VAL_NUM, .num = eps,
                                                         .span = a->call->span}));
  return op2(e, a, IR_OP_DIV, NULL, d, sd);
}

/* y * weight + bias, the parameters of shape `shape` (made on the layer's first call,
 * ones and zeros) reshaped to `view` to broadcast over y */
static value affine(elab *e, call_args *a, layer_site *l, value y, ir_shape shape, ir_shape view) {
  if (!l->made) {
    ir_init ones = {.kind = INIT_ONES}, zeros = {.kind = INIT_ZEROS};
    l->vars[0] = make_var(e, l, "weight", VAR_PARAM, shape, ones);
    l->vars[1] = make_var(e, l, "bias", VAR_PARAM, shape, zeros);
    l->made = true;
  } else if (!shape_equal(e->m->vars[l->vars[0]].shape, shape)) {
    char was[64], now[64];
    shape_str(e->m->vars[l->vars[0]].shape, was, sizeof was);
    shape_str(shape, now, sizeof now);
    diag_error(e->d, a->call->span, "%s.%s was made for %s, this input needs %s",
               e->m->nets[l->net], l->name, was, now);
    return val_poison();
  }
  value w = node_value(e, a, load_var(e, l->vars[0]));
  value b = node_value(e, a, load_var(e, l->vars[1]));
  ir_attrs r = {.ashape = view};
  if (!shape_equal(view, shape)) {
    w = op1(e, a, IR_OP_RESHAPE, &r, w);
    b = op1(e, a, IR_OP_RESHAPE, &r, b);
  }
  value y2 = op2(e, a, IR_OP_ADD, NULL, op2(e, a, IR_OP_MUL, NULL, y, w), b);
  if (y2.kind == VAL_NODE) e->f->nodes[y2.node].label = layer_label(e, l);
  return y2;
}

/* x must be batched images, [C,H,W] a sample */
static bool need_chw(elab *e, value x, const char *fn) {
  const ir_node *n = node_of(e, x);
  if (n->shape.batched && n->shape.rank == 4) return true;
  char sh[128];
  user_shape(e, x, sh, sizeof sh);
  diag_error(e->d, x.span, "%s expects a [C,H,W] input, got %s", fn, sh);
  return false;
}

static bool need_eps(elab *e, call_args *a, int arg, double *eps) {
  if (!need_num(e, a->args[arg], "eps", eps)) return false;
  if (!(*eps > 0)) {
    diag_error(e->d, a->args[arg].span, "eps must be positive, got %g", *eps);
    return false;
  }
  return true;
}

/* over every per-sample axis; weight and bias of the per-sample shape (PyTorch's
 * LayerNorm(x.shape[1:])) */
static value b_layernorm(elab *e, call_args *a) {
  layer_site *l = layer_here(e, a);
  double eps;
  if (!l || !need_tensor(e, a->args[0], "layernorm's input") || !need_eps(e, a, 1, &eps))
    return val_poison();
  const ir_node xn = *node_of(e, a->args[0]);
  if (!xn.shape.batched || xn.shape.rank < 2) {
    char sh[128];
    user_shape(e, a->args[0], sh, sizeof sh);
    diag_error(e->d, a->args[0].span, "layernorm expects a batched tensor, got %s", sh);
    return val_poison();
  }
  int64_t mask = ((1LL << xn.shape.rank) - 1) & ~1LL, d[IR_MAX_RANK];
  for (int i = 1; i < xn.shape.rank; i++) d[i - 1] = xn.shape.dim[i];
  ir_shape per = shape_make(xn.shape.rank - 1, d, false);
  value y = normalise(e, a, a->args[0], mask, eps);
  return affine(e, a, l, y, per, per);
}

/* [C,H,W] per sample and channel over H and W; affine=1 adds weight and bias [C]
 * (PyTorch's InstanceNorm2d, whose affine is off by default) */
static value b_instancenorm(elab *e, call_args *a) {
  layer_site *l = layer_here(e, a);
  double eps;
  int64_t aff;
  if (!l || !need_tensor(e, a->args[0], "instancenorm's input") || !need_eps(e, a, 1, &eps) ||
      !need_int(e, a->args[2], "affine", &aff))
    return val_poison();
  if (!need_chw(e, a->args[0], "instancenorm")) return val_poison();
  const ir_node xn = *node_of(e, a->args[0]);
  value y = normalise(e, a, a->args[0], 4 | 8, eps);
  if (!aff) return y;
  return affine(e, a, l, y, dims(1, xn.shape.dim[1], 0, 0, 0), dims(3, xn.shape.dim[1], 1, 1, 0));
}

/* [C,H,W] in `groups` groups of C/groups channels, each normalised over its channels,
 * H and W; weight and bias [C] (PyTorch's GroupNorm) */
static value b_groupnorm(elab *e, call_args *a) {
  layer_site *l = layer_here(e, a);
  double eps;
  int64_t g;
  if (!l || !need_tensor(e, a->args[0], "groupnorm's input") ||
      !need_int(e, a->args[1], "groups", &g) || !need_eps(e, a, 2, &eps))
    return val_poison();
  if (!need_chw(e, a->args[0], "groupnorm")) return val_poison();
  const ir_node xn = *node_of(e, a->args[0]);
  int64_t c = xn.shape.dim[1];
  if (g < 1 || c % g) {
    diag_error(e->d, a->args[1].span, "groups must divide the %lld channels, got %lld",
               (long long)c, (long long)g);
    return val_poison();
  }
  int64_t d5[5] = {xn.shape.dim[0], g, c / g, xn.shape.dim[2], xn.shape.dim[3]};
  value y = normalise(e, a, reshape_to(e, a, a->args[0], 5, d5), 4 | 8 | 16, eps);
  y = reshape_to(e, a, y, 4, xn.shape.dim);
  return affine(e, a, l, y, dims(1, c, 0, 0, 0), dims(3, c, 1, 1, 0));
}

/* ---- resampling images: compositions of reshape, mean and concat ------------------------
 *
 * Neither is an op of its own: pooling is a mean over the k x k blocks of a reshaped
 * image, nearest upsampling the image's pixels repeated by concat. Autodiff, fusion,
 * the interpreter and codegen handle them as the ops they are made of (their gradients
 * are each other: concat's adjoint sums the copies, mean's spreads the average). */

/* x must be images ([C,H,W] a sample); k, at least 1. */
static bool image_and_k(elab *e, call_args *a, const char *fn, int64_t *k) {
  if (!need_tensor(e, a->args[0], "the input") || !need_int(e, a->args[1], "k", k)) return false;
  if (sample_rank(e, a->args[0]) != 3 || !node_of(e, a->args[0])->shape.batched) {
    char sh[128];
    user_shape(e, a->args[0], sh, sizeof sh);
    diag_error(e->d, a->args[0].span, "%s takes images, [C,H,W] a sample; this is %s", fn, sh);
    return false;
  }
  if (*k < 1 || *k > 64) {
    diag_error(e->d, a->args[1].span, "k must be from 1 to 64, got %lld", (long long)*k);
    return false;
  }
  return true;
}

/* Pooling takes whole k x k blocks. */
static bool divides_image(elab *e, call_args *a, const char *fn, int64_t k) {
  ir_shape s = node_of(e, a->args[0])->shape;
  for (int d = 2; d < 4; d++)
    if (s.dim[d] % k) {
      diag_error(e->d, a->args[1].span, "%s: the image's %s, %lld, is not a multiple of "
                 "k = %lld", fn, d == 2 ? "height" : "width", (long long)s.dim[d], (long long)k);
      return false;
    }
  return true;
}

/* A pooling's image [N,C,H,W] as k-by-k blocks [N,C,H/k,k,W/k,k], once fn's k is
 * checked and divides H and W; false (diagnosed) otherwise. */
static bool pool_blocks(elab *e, call_args *a, const char *fn, int64_t *k, value *blocks) {
  if (!image_and_k(e, a, fn, k) || !divides_image(e, a, fn, *k)) return false;
  ir_shape s = node_of(e, a->args[0])->shape;
  int64_t d6[6] = {s.dim[0], s.dim[1], s.dim[2] / *k, *k, s.dim[3] / *k, *k};
  *blocks = reshape_to(e, a, a->args[0], 6, d6);
  return true;
}

/* [N,C,H,W] -> [N,C,H/k,k,W/k,k] -> mean over the two k axes -> [N,C,H/k,W/k] */
static value b_avgpool(elab *e, call_args *a) {
  int64_t k;
  value blocks;
  if (!pool_blocks(e, a, "avgpool", &k, &blocks)) return val_poison();
  ir_attrs at = {.i = {(1LL << 3) | (1LL << 5), 0}};
  return op1(e, a, IR_OP_MEAN, &at, blocks);
}

static value slice_of(elab *e, call_args *a, value x, int64_t axis, int64_t from, int64_t to) {
  ir_attrs at = {.i = {axis, from, to}};
  return op1(e, a, IR_OP_SLICE, &at, x);
}

/* The maximum over axis `axis` (of length k) of x, kept as an axis of 1: a chain of
 * maximum over its slices, the earlier slice winning a tie. */
static value max_along(elab *e, call_args *a, value x, int64_t axis, int64_t k) {
  value m = slice_of(e, a, x, axis, 0, 1);
  for (int64_t j = 1; j < k && m.kind == VAL_NODE; j++)
    m = op2(e, a, IR_OP_MAXIMUM, NULL, m, slice_of(e, a, x, axis, j, j + 1));
  return m;
}

/* [N,C,H,W] -> [N,C,H/k,k,W/k,k] -> maximum along each row of a block, then over the
 * rows: the first largest value in row-major order wins, as PyTorch's MaxPool2d picks
 * it, so the gradient goes where PyTorch's goes */
static value b_maxpool(elab *e, call_args *a) {
  int64_t k;
  value blocks;
  if (!pool_blocks(e, a, "maxpool", &k, &blocks)) return val_poison();
  value y = max_along(e, a, max_along(e, a, blocks, 5, k), 3, k);
  if (y.kind != VAL_NODE) return y;
  ir_shape s = node_of(e, a->args[0])->shape;
  int64_t d4[4] = {s.dim[0], s.dim[1], s.dim[2] / k, s.dim[3] / k};
  return reshape_to(e, a, y, 4, d4);
}

/* [N,C,H,W] -> [N,C,H,1,W,1] -> k copies along each 1 -> [N,C,H*k,W*k] */
static value upsample_nearest(elab *e, call_args *a, int64_t k) {
  ir_shape s = node_of(e, a->args[0])->shape;
  int64_t d6[6] = {s.dim[0], s.dim[1], s.dim[2], 1, s.dim[3], 1};
  value y = reshape_to(e, a, a->args[0], 6, d6);
  for (int64_t axis = 5; axis >= 3; axis -= 2) {
    const value **copies = malloc((size_t)k * sizeof *copies);
    for (int64_t j = 0; j < k; j++) copies[j] = &y;
    ir_attrs at = {.i = {axis}};
    y = emit_op(e, IR_OP_CONCAT, copies, (int)k, &at, a->call->span, NULL);
    free(copies);
  }
  int64_t d4[4] = {s.dim[0], s.dim[1], s.dim[2] * k, s.dim[3] * k};
  return reshape_to(e, a, y, 4, d4);
}

static value scaled(elab *e, call_args *a, value x, double w) {
  return op2(e, a, IR_OP_MUL, NULL, x, (value){.kind = VAL_NUM, .num = w, .span = a->call->span});
}

/* Bilinear upsampling by k along one axis of x [N,C,H,W] (2 or 3), as PyTorch's
 * align_corners=False: output o reads source (o + 0.5)/k - 0.5, so output phase j of
 * input i is i + d with d = (2j + 1 - k) / 2k, a blend of x[i] and its neighbour
 * before (d < 0) or after, the edges repeated. Each phase is a weighted sum of x and
 * x shifted by one; the phases are interleaved by a concat on a new axis. */
static value bilinear_axis(elab *e, call_args *a, value x, int axis, int64_t k) {
  ir_shape s = node_of(e, x)->shape;
  int64_t n = s.dim[axis];
  value before = x, after = x; /* x[i-1] and x[i+1], edges repeated */
  if (n > 1) {
    value first = slice_of(e, a, x, axis, 0, 1), last = slice_of(e, a, x, axis, n - 1, n);
    value head = slice_of(e, a, x, axis, 0, n - 1), tail = slice_of(e, a, x, axis, 1, n);
    const value *b[2] = {&first, &head}, *f[2] = {&tail, &last};
    ir_attrs at = {.i = {axis}};
    before = emit_op(e, IR_OP_CONCAT, b, 2, &at, a->call->span, NULL);
    after = emit_op(e, IR_OP_CONCAT, f, 2, &at, a->call->span, NULL);
  }
  int64_t d5[5] = {s.dim[0], s.dim[1], s.dim[2], s.dim[3], 1};
  for (int d = 4; d > axis + 1; d--) d5[d] = d5[d - 1];
  d5[axis + 1] = 1; /* a new axis of 1 right after `axis` */
  value *phase = malloc((size_t)k * sizeof *phase);
  const value **ptr = malloc((size_t)k * sizeof *ptr);
  for (int64_t j = 0; j < k; j++) {
    double d = (double)(2 * j + 1 - k) / (double)(2 * k);
    value y = d == 0 ? x
                     : op2(e, a, IR_OP_ADD, NULL, scaled(e, a, x, 1 - fabs(d)),
                           scaled(e, a, d < 0 ? before : after, fabs(d)));
    phase[j] = reshape_to(e, a, y, 5, d5);
    ptr[j] = &phase[j];
  }
  ir_attrs at = {.i = {axis + 1}};
  value y = emit_op(e, IR_OP_CONCAT, ptr, (int)k, &at, a->call->span, NULL);
  free(phase);
  free(ptr);
  int64_t d4[4] = {s.dim[0], s.dim[1], s.dim[2], s.dim[3]};
  d4[axis] *= k;
  return reshape_to(e, a, y, 4, d4);
}

static value b_upsample(elab *e, call_args *a) {
  int64_t k;
  if (!image_and_k(e, a, "upsample", &k)) return val_poison();
  const char *mode = "nearest";
  if (a->given[2]) {
    if (a->args[2].kind != VAL_STRING ||
        (strcmp(a->args[2].str, "nearest") && strcmp(a->args[2].str, "bilinear"))) {
      diag_error(e->d, a->args[2].span, "upsample's mode is \"nearest\" or \"bilinear\"");
      return val_poison();
    }
    mode = a->args[2].str;
  }
  if (!strcmp(mode, "nearest") || k == 1) return upsample_nearest(e, a, k);
  value y = bilinear_axis(e, a, a->args[0], 2, k);
  return y.kind == VAL_NODE ? bilinear_axis(e, a, y, 3, k) : y;
}

static value b_matmul(elab *e, call_args *a) {
  if (!need_tensor(e, a->args[0], "matmul's first operand") ||
      !need_tensor(e, a->args[1], "matmul's second operand"))
    return val_poison();
  return op2(e, a, IR_OP_MATMUL, NULL, a->args[0], a->args[1]);
}

/* ---- codes, randomness, losses ------------------------------------------------------- */

/* K of a categorical code or latent, or 0 if x does not come straight from one. */
static int64_t categories_of(elab *e, value x) {
  int in = input_of(e, x);
  if (in < 0 || e->m->inputs[in].dist != DIST_CATEGORICAL) return 0;
  return (int64_t)e->m->inputs[in].a;
}

static value b_onehot(elab *e, call_args *a) {
  if (!need_tensor(e, a->args[0], "onehot's input")) return val_poison();
  int64_t n = categories_of(e, a->args[0]);
  if (a->given[1] && !need_int(e, a->args[1], "n", &n)) return val_poison();
  if (n == 0) {
    diag_error(e->d, a->call->span, "onehot(x) needs n=K unless x is a categorical code");
    return val_poison();
  }
  ir_attrs at = {.i = {n}};
  return op1(e, a, IR_OP_ONEHOT, &at, a->args[0]);
}

/* embedding(c, dim): row c of a [K, dim] table (PyTorch's Embedding, N(0, 1) rows),
 * as onehot(c) times the table, so its gradient is an ordinary matmul's */
static value b_embedding(elab *e, call_args *a) {
  layer_site *l = layer_here(e, a);
  int64_t dim, k;
  if (!l || !need_tensor(e, a->args[0], "embedding's input") ||
      !need_int(e, a->args[1], "dim", &dim))
    return val_poison();
  k = categories_of(e, a->args[0]);
  if (a->given[2] && !need_int(e, a->args[2], "n", &k)) return val_poison();
  const ir_node *xn = node_of(e, a->args[0]);
  if (xn->dtype != IR_I32 || sample_rank(e, a->args[0]) != 0) {
    char sh[128];
    user_shape(e, a->args[0], sh, sizeof sh);
    diag_error(e->d, a->args[0].span, "embedding takes one integer a sample (a categorical "
                                      "code or labels), got %s%s", xn->dtype == IR_I32 ? "" : "float ", sh);
    return val_poison();
  }
  if (k < 1) {
    diag_error(e->d, a->call->span, "embedding(x, dim) needs n=K unless x is a categorical code");
    return val_poison();
  }
  if (dim < 1 || dim > (1 << 24)) {
    diag_error(e->d, a->args[1].span, "dim must be between 1 and %d", 1 << 24);
    return val_poison();
  }
  if (!l->made) {
    ir_init wi = {.kind = INIT_NORMAL, .a = 0, .b = 1};
    if (a->given[4] && !parse_init(e, a->raw[4], &wi)) return val_poison();
    l->vars[0] = make_var(e, l, "weight", VAR_PARAM, dims(2, k, dim, 0, 0), wi);
    l->made = true;
  } else if (!shape_equal(e->m->vars[l->vars[0]].shape, dims(2, k, dim, 0, 0))) {
    diag_error(e->d, a->call->span, "%s.%s was made for %lld values of %lld, this call needs "
               "%lld of %lld", e->m->nets[l->net], l->name,
               (long long)e->m->vars[l->vars[0]].shape.dim[0],
               (long long)e->m->vars[l->vars[0]].shape.dim[1], (long long)k, (long long)dim);
    return val_poison();
  }
  ir_attrs oh = {.i = {k}};
  value onehot = op1(e, a, IR_OP_ONEHOT, &oh, a->args[0]);
  value w = node_value(e, a, load_var(e, l->vars[0]));
  value y = op2(e, a, IR_OP_MATMUL, NULL, onehot, w);
  if (y.kind == VAL_NODE) e->f->nodes[y.node].label = layer_label(e, l);
  return y;
}

static value b_dropout(elab *e, call_args *a) {
  double p;
  if (!need_tensor(e, a->args[0], "dropout's input") || !need_num(e, a->args[1], "p", &p))
    return val_poison();
  if (!(p >= 0 && p < 1)) {
    diag_error(e->d, a->args[1].span, "dropout needs 0 <= p < 1, got %g", p);
    return val_poison();
  }
  if (!e->f->training) return a->args[0];
  int seed = -1;
  for (int i = 0; i < e->m->ninputs; i++)
    if (e->m->inputs[i].kind == INPUT_SEED) seed = i;
  if (seed < 0) {
    /* The run's (seed, step) pair; named so it cannot clash with a declared input. */
    ir_input in = {.name = ir_find_input(e->m, "seed") < 0 ? "seed" : "run_seed",
                   .kind = INPUT_SEED, .dtype = IR_I32};
    int64_t two = 2;
    in.shape = shape_make(1, &two, false);
    seed = ir_add_input(e->m, &in);
    e->input_node = realloc(e->input_node, (size_t)(e->m->ninputs + 1) * sizeof(int));
    e->input_node[seed] = -1;
  }
  /* The seed is the run's, not the net's: bound directly, not looked up by name. */
  value sv = input_value(e, seed, a->call->span);
  ir_attrs at = {.f = {p}, .i = {e->dropout_sites++}};
  return op2(e, a, IR_OP_DROPOUT, &at, a->args[0], sv);
}

static value b_bce(elab *e, call_args *a) {
  if (!need_tensor(e, a->args[0], "bce's logits")) return val_poison();
  return op2(e, a, IR_OP_BCE_LOGITS, NULL, a->args[0], a->args[1]);
}

static value b_softmax_ce(elab *e, call_args *a) {
  if (!need_tensor(e, a->args[0], "the logits") || !need_tensor(e, a->args[1], "the labels"))
    return val_poison();
  return op2(e, a, IR_OP_SOFTMAX_CE, NULL, a->args[0], a->args[1]);
}

static value b_gaussian_nll(elab *e, call_args *a) {
  double std;
  if (!need_tensor(e, a->args[0], "x") || !need_tensor(e, a->args[1], "the mean") ||
      !need_num(e, a->args[2], "std", &std))
    return val_poison();
  if (!(std > 0)) {
    diag_error(e->d, a->args[2].span, "std must be positive, got %g", std);
    return val_poison();
  }
  ir_attrs at = {.f = {std}};
  return op2(e, a, IR_OP_GAUSSIAN_NLL, &at, a->args[1], a->args[0]);
}

static value b_info_categorical(elab *e, call_args *a) {
  if (!need_tensor(e, a->args[0], "the code") || !need_tensor(e, a->args[1], "the logits"))
    return val_poison();
  int64_t k = categories_of(e, a->args[0]);
  const ir_node *ln = node_of(e, a->args[1]);
  if (k && ln->shape.rank == 2 && ln->shape.dim[1] != k) {
    char sh[128];
    user_shape(e, a->args[1], sh, sizeof sh);
    diag_error(e->d, a->args[1].span, "the code has %lld values but these logits are %s",
               (long long)k, sh);
    return val_poison();
  }
  return op2(e, a, IR_OP_INFO_CATEGORICAL, NULL, a->args[1], a->args[0]);
}

/* The variational lower bound for a continuous code: H(c) - E[-log Q(c|x)], with the
 * code's prior entropy per dimension (ln(b-a) for uniform, ½ln(2πeσ²) for normal). */
static value b_info_gaussian(elab *e, call_args *a) {
  double std;
  if (!need_tensor(e, a->args[0], "the code") || !need_tensor(e, a->args[1], "the mean") ||
      !need_num(e, a->args[2], "std", &std))
    return val_poison();
  int in = input_of(e, a->args[0]);
  const ir_input *c = in >= 0 ? &e->m->inputs[in] : NULL;
  if (!c || (c->dist != DIST_UNIFORM && c->dist != DIST_NORMAL)) {
    diag_error(e->d, a->args[0].span, "info_gaussian's first argument must be a code declared "
                                      "with a uniform or normal prior");
    return val_poison();
  }
  if (!(std > 0)) {
    diag_error(e->d, a->args[2].span, "std must be positive, got %g", std);
    return val_poison();
  }
  double h = c->dist == DIST_UNIFORM ? log(c->b - c->a)
                                     : 0.5 * log(2 * M_PI * M_E * c->b * c->b);
  h *= (double)(shape_numel(c->shape) / c->shape.dim[0]);
  ir_attrs at = {.f = {std}};
  value nll = op2(e, a, IR_OP_GAUSSIAN_NLL, &at, a->args[1], a->args[0]);
  return op2(e, a, IR_OP_SUB, NULL, (value){.kind = VAL_NUM, .num = h, .span = a->call->span},
             nll);
}

/* ln 2 per fair bit, -(p ln p + (1-p) ln(1-p)) in general: what log Q(b|x) adds to */
static double bernoulli_entropy(double p) {
  return (p > 0 ? -p * log(p) : 0) + (p < 1 ? -(1 - p) * log(1 - p) : 0);
}

/* D H(p) - D bce(logits, b): bce averages over all N D bits, so D times it is the
 * summed cross-entropy per sample, averaged over the batch (mi_terms.c reads this
 * shape back as one term). */
static value b_info_bernoulli(elab *e, call_args *a) {
  if (!need_tensor(e, a->args[0], "the code") || !need_tensor(e, a->args[1], "the logits"))
    return val_poison();
  int in = input_of(e, a->args[0]);
  const ir_input *c = in >= 0 ? &e->m->inputs[in] : NULL;
  if (!c || c->dist != DIST_BERNOULLI) {
    diag_error(e->d, a->args[0].span, "info_bernoulli's first argument must be a code declared "
                                      "with a bernoulli(p) prior");
    return val_poison();
  }
  const ir_node *ln = node_of(e, a->args[1]);
  if (!shape_equal(ln->shape, c->shape)) {
    char want[128], got[128];
    user_shape(e, a->args[0], want, sizeof want);
    user_shape(e, a->args[1], got, sizeof got);
    diag_error(e->d, a->args[1].span, "the logits must have the code's shape, %s, one per bit; "
                                      "this is %s", want, got);
    return val_poison();
  }
  double dims = (double)(shape_numel(c->shape) / c->shape.dim[0]);
  value bce = op2(e, a, IR_OP_BCE_LOGITS, NULL, a->args[1], a->args[0]);
  value summed = op2(e, a, IR_OP_MUL, NULL,
                     (value){.kind = VAL_NUM, .num = dims, .span = a->call->span}, bce);
  return op2(e, a, IR_OP_SUB, NULL,
             (value){.kind = VAL_NUM, .num = dims * bernoulli_entropy(c->a), .span = a->call->span},
             summed);
}

/* ---- the table ------------------------------------------------------------------------- */

const builtin builtins[] = {
    {"dense", "x, units, bias=1, name=, ~init=", b_dense,
     "fully connected layer: [in] -> [units]"},
    {"conv", "x, channels, k, s=1, p=0, bias=1, name=, ~init=", b_conv,
     "2-D convolution: [C,H,W] -> [channels,(H+2p-k)/s+1,...]"},
    {"deconv", "x, channels, k, s=1, p=0, bias=1, name=, ~init=", b_deconv,
     "transposed 2-D convolution: [C,H,W] -> [channels,(H-1)s-2p+k,...]"},
    {"batchnorm", "x, eps=1e-5, momentum=0.1, name=", b_batchnorm,
     "batch normalisation over all axes but the channel axis"},
    {"layernorm", "x, eps=1e-5, name=", b_layernorm,
     "normalisation of each sample over all its values; weight and bias of its shape"},
    {"instancenorm", "x, eps=1e-5, affine=0, name=", b_instancenorm,
     "normalisation of each sample's channels over H and W; affine=1 adds weight, bias [C]"},
    {"groupnorm", "x, groups, eps=1e-5, name=", b_groupnorm,
     "normalisation of each sample's channel groups; weight and bias [C]"},
    {"relu", "x", b_relu, "max(x, 0)"},
    {"lrelu", "x, slope=0.01", b_lrelu, "x if x > 0 else slope*x"},
    {"maximum", "a, b", b_maximum, "the larger of a and b, elementwise (broadcasting)"},
    {"tanh", "x", b_tanh, "hyperbolic tangent"},
    {"sigmoid", "x", b_sigmoid, "1 / (1 + exp(-x))"},
    {"softplus", "x", b_softplus, "log(1 + exp(x))"},
    {"exp", "x", b_exp, "e^x"},
    {"log", "x", b_log, "natural logarithm"},
    {"sqrt", "x", b_sqrt, "square root"},
    {"sin", "x", b_sin, "sine (radians)"},
    {"cos", "x", b_cos, "cosine (radians)"},
    {"reshape", "x, shape", b_reshape, "same values, new per-sample shape (one -1 inferred)"},
    {"flatten", "x", b_flatten, "per-sample shape to [n]"},
    {"concat", "*xs, axis=0", b_concat, "join tensors along a per-sample axis"},
    {"slice", "x, start, end, axis=0", b_slice, "elements [start, end) along an axis"},
    {"sum", "x, axes=, keep=0", b_sum, "sum over per-sample axes, or everything"},
    {"mean", "x, axes=, keep=0", b_mean, "mean over per-sample axes, or everything"},
    {"matmul", "a, b", b_matmul, "matrix product [M,K] x [K,N]"},
    {"grad", "y, x", b_grad, "gradient of the scalar y with respect to x: x's shape"},
    {"avgpool", "x, k=2", b_avgpool, "average over k x k blocks: [C,H,W] -> [C,H/k,W/k]"},
    {"maxpool", "x, k=2", b_maxpool, "largest of k x k blocks: [C,H,W] -> [C,H/k,W/k]"},
    {"upsample", "x, k=2, mode=", b_upsample,
     "nearest (or mode=\"bilinear\") upsampling: [C,H,W] -> [C,kH,kW]"},
    {"onehot", "c, n=", b_onehot, "categorical code to a one-hot vector"},
    {"embedding", "c, dim, n=, name=, ~init=", b_embedding,
     "a learned [dim] vector per integer value: [] -> [dim] (table [n, dim])"},
    {"dropout", "x, p=0.5", b_dropout, "zero elements with probability p while training"},
    {"bce", "logits, target", b_bce, "mean binary cross-entropy of logits against target"},
    {"softmax_ce", "logits, labels", b_softmax_ce, "mean softmax cross-entropy"},
    {"gaussian_nll", "x, mean, std=1", b_gaussian_nll,
     "Gaussian negative log-likelihood, summed over dims, mean over the batch"},
    {"info_categorical", "c, logits", b_info_categorical,
     "InfoGAN lower bound for a categorical code: ln K - cross-entropy (nats)"},
    {"info_gaussian", "c, mean, std=1", b_info_gaussian,
     "InfoGAN lower bound for a continuous code: H(c) - Gaussian NLL (nats)"},
    {"info_bernoulli", "c, logits", b_info_bernoulli,
     "InfoGAN lower bound for Bernoulli codes: D H(p) - summed binary cross-entropy (nats)"},
};
const int nbuiltins = sizeof builtins / sizeof builtins[0];

const builtin *builtin_call_in(const builtin *tbl, size_t n, const ast_expr *x) {
  for (size_t i = 0; x->kind == EXPR_CALL && i < n; i++)
    if (!strcmp(tbl[i].name, x->name)) return &tbl[i];
  return NULL;
}

const builtin *builtin_find(const char *name) {
  for (int i = 0; i < nbuiltins; i++)
    if (!strcmp(builtins[i].name, name)) return &builtins[i];
  return NULL;
}
