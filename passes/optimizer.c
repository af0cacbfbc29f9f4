/* optimizer.c: the parameter update of a step, lowered to elementwise IR.
 * Assumes: pass_autodiff has produced the step's gradients in its block.
 * Guarantees: appends, in the step's block and after the gradients, loads of the
 * optimizer state, the update, and stores of the new state and parameters; later
 * blocks therefore see the updated parameters. Arithmetic follows torch.optim
 * operation by operation, so results agree with PyTorch to float rounding:
 *   Adam: g += wd p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *         p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 *   SGD:  g += wd p; buf = momentum buf + g (buf starts at zero, which equals
 *         PyTorch's first-step buf = g); p -= lr buf
 * With a schedule (ir.h) lr is a value of the program: lr times the warm-up and decay
 * factors of the update number t, the step's counter (Adam's; an SGD step gains one).
 * With every=k > 1 the update is computed on every training step and kept on the first
 * and every k-th after: each store takes select(run, new, old), so a kept update is
 * the same bits as without every= and a skipped one leaves every variable as it was. */
#include "passes.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  ir_func *f;
  int b;
} emitter;

static int op2(emitter *e, ir_op op, int x, int y) {
  int in[2] = {x, y};
  return ir_emit_checked(e->f, e->b, op, in, 2, NULL);
}

static int op1(emitter *e, ir_op op, int x) { return ir_emit_checked(e->f, e->b, op, &x, 1, NULL); }

static int k(emitter *e, double v) {
  ir_attrs a = {.f = {v}};
  return ir_emit_checked(e->f, e->b, IR_OP_CONST, NULL, 0, &a);
}

static int load(emitter *e, const ir_module *m, int var) {
  ir_attrs a = {.ashape = m->vars[var].shape, .dtype = m->vars[var].dtype, .var = var};
  int id = ir_emit_checked(e->f, e->b, IR_OP_LOAD, NULL, 0, &a);
  e->f->nodes[id].label = m->vars[var].name;
  return id;
}

static void store(emitter *e, const ir_module *m, int var, int value) {
  ir_attrs a = {.var = var};
  int id = ir_emit_checked(e->f, e->b, IR_OP_STORE, &value, 1, &a);
  e->f->nodes[id].label = m->vars[var].name;
}

/* A zero-initialised state variable named after the parameter and the step. */
static int state_var(ir_module *m, int param, const char *step, const char *what,
                     ir_var_kind kind) {
  char name[512];
  snprintf(name, sizeof name, "%s@%s.%s", m->vars[param].name, step, what);
  int v = ir_find_var(m, name);
  if (v >= 0) return v;
  ir_shape shape = m->vars[param].shape;
  ir_span span = m->vars[param].span;
  v = ir_add_var(m, name, kind, IR_F32, shape, m->vars[param].net, span);
  m->vars[v].of = param;
  m->vars[v].init.kind = INIT_ZEROS;
  return v;
}

/* min(x, c) as x - relu(x - c): IR has no min */
static int min_c(emitter *e, int x, double c) {
  return op2(e, IR_OP_SUB, x, op1(e, IR_OP_RELU, op2(e, IR_OP_SUB, x, k(e, c))));
}

/* new where run is nonzero, else old; new itself without a gate (run < 0) */
static int gated(emitter *e, int run, int new_value, int old_value) {
  if (run < 0) return new_value;
  int in[3] = {run, new_value, old_value};
  return ir_emit_checked(e->f, e->b, IR_OP_SELECT, in, 3, NULL);
}

/* A scalar counter of step `st` named STEP.what, zero at the start. */
static int counter_var(ir_module *m, const ir_step *st, const char *what) {
  char name[256];
  snprintf(name, sizeof name, "%s.%s", st->name, what);
  int v = ir_find_var(m, name);
  if (v < 0) {
    ir_span none = {0};
    v = ir_add_var(m, name, VAR_STEP, IR_F32, shape_scalar(), -1, none);
    m->vars[v].init.kind = INIT_ZEROS;
  }
  return v;
}

/* every=k: 1 on the training steps that apply the update, else 0. The state keeps the
 * phase, the training steps since the last update (0 .. k-1), so that a resumed run
 * keeps the rhythm; every value is a small whole number, exact in f32. */
static int update_gate(emitter *e, ir_module *m, const ir_step *st, double every) {
  int pv = counter_var(m, st, "phase");
  int phase = load(e, m, pv);
  int run = op1(e, IR_OP_RELU, op2(e, IR_OP_SUB, k(e, 1), phase)); /* phase == 0 */
  int x = op2(e, IR_OP_ADD, phase, k(e, 1));                         /* 1 .. k */
  int wrap = op2(e, IR_OP_SUB, op1(e, IR_OP_RELU, op2(e, IR_OP_SUB, x, k(e, every - 1))),
                 op1(e, IR_OP_RELU, op2(e, IR_OP_SUB, x, k(e, every)))); /* x == k */
  store(e, m, pv, op2(e, IR_OP_SUB, x, op2(e, IR_OP_MUL, wrap, k(e, every))));
  return run;
}

/* The scheduled learning rate of update t (t counts from 1): see ir_optim. */
static int scheduled_lr(emitter *e, const ir_optim *o, int t) {
  int lr = k(e, o->lr);
  if (o->warmup > 0) lr = op2(e, IR_OP_MUL, lr, min_c(e, op2(e, IR_OP_DIV, t, k(e, o->warmup)), 1));
  if (o->sched == SCHED_CONSTANT) return lr;
  /* frac = min(t - 1, steps) / steps */
  int frac = op2(e, IR_OP_DIV, min_c(e, op2(e, IR_OP_SUB, t, k(e, 1)), o->sched_steps),
                 k(e, o->sched_steps));
  int decay;
  if (o->sched == SCHED_LINEAR) {
    decay = op2(e, IR_OP_ADD, k(e, 1), op2(e, IR_OP_MUL, frac, k(e, o->sched_end - 1)));
  } else {
    int c = op1(e, IR_OP_COS, op2(e, IR_OP_MUL, frac, k(e, M_PI)));
    decay = op2(e, IR_OP_ADD, k(e, o->sched_end),
                op2(e, IR_OP_MUL, op2(e, IR_OP_ADD, k(e, 1), c), k(e, (1 - o->sched_end) / 2)));
  }
  return op2(e, IR_OP_MUL, lr, decay);
}

void pass_optimizer(ir_module *m, ir_func *f, int s, const int *grads) {
  ir_step *st = &f->steps[s];
  emitter e = {f, st->block};
  const ir_optim o = st->opt;
  int nvars = m->nvars; /* variables added below are not parameters */
  bool scheduled = o.sched != SCHED_CONSTANT || o.warmup > 0;

  int bc1 = -1, bc2_sqrt = -1, t = -1;
  int run = o.every > 1 ? update_gate(&e, m, st, o.every) : -1;
  if (o.kind == OPT_ADAM || scheduled || o.ema > 0) { /* the step's update counter */
    int tv = counter_var(m, st, "t");
    int t0 = load(&e, m, tv);
    t = op2(&e, IR_OP_ADD, t0, k(&e, 1.0));
    store(&e, m, tv, gated(&e, run, t, t0));
  }
  int lr = scheduled ? scheduled_lr(&e, &o, t) : -1; /* else the constant, per use */
  /* the average's decay of this update: min(ema, (t - 1) / t) */
  int ema_d = o.ema > 0 ? min_c(&e, op2(&e, IR_OP_DIV, op2(&e, IR_OP_SUB, t, k(&e, 1)), t), o.ema)
                        : -1;
  if (o.kind == OPT_ADAM) {
    /* 1 - beta^t as 1 - exp(t ln beta): t is a value of the program, not a constant */
    bc1 = op2(&e, IR_OP_SUB, k(&e, 1.0), op1(&e, IR_OP_EXP, op2(&e, IR_OP_MUL, t, k(&e, log(o.beta1)))));
    int bc2 = op2(&e, IR_OP_SUB, k(&e, 1.0), op1(&e, IR_OP_EXP, op2(&e, IR_OP_MUL, t, k(&e, log(o.beta2)))));
    bc2_sqrt = op1(&e, IR_OP_SQRT, bc2);
  }
  for (int v = 0; v < nvars; v++) {
    if (grads[v] < 0) continue;
    int p = load(&e, m, v);
    int g = grads[v];
    if (o.weight_decay != 0) g = op2(&e, IR_OP_ADD, g, op2(&e, IR_OP_MUL, p, k(&e, o.weight_decay)));
    int p_new;
    if (o.kind == OPT_ADAM) {
      int mv = state_var(m, v, st->name, "m", VAR_OPT_M);
      int vv = state_var(m, v, st->name, "v", VAR_OPT_V);
      int m0 = load(&e, m, mv), v0 = load(&e, m, vv);
      int m1 = op2(&e, IR_OP_ADD, op2(&e, IR_OP_MUL, m0, k(&e, o.beta1)),
                   op2(&e, IR_OP_MUL, g, k(&e, 1 - o.beta1)));
      int g2 = op2(&e, IR_OP_MUL, g, g);
      int v1 = op2(&e, IR_OP_ADD, op2(&e, IR_OP_MUL, v0, k(&e, o.beta2)),
                   op2(&e, IR_OP_MUL, g2, k(&e, 1 - o.beta2)));
      store(&e, m, mv, gated(&e, run, m1, m0));
      store(&e, m, vv, gated(&e, run, v1, v0));
      int denom = op2(&e, IR_OP_ADD, op2(&e, IR_OP_DIV, op1(&e, IR_OP_SQRT, v1), bc2_sqrt),
                      k(&e, o.eps));
      int step_size = op2(&e, IR_OP_DIV, lr >= 0 ? lr : k(&e, o.lr), bc1);
      p_new = op2(&e, IR_OP_SUB, p, op2(&e, IR_OP_MUL, op2(&e, IR_OP_DIV, m1, denom), step_size));
    } else {
      int upd = g;
      if (o.momentum != 0) {
        int bv = state_var(m, v, st->name, "m", VAR_OPT_M);
        int b0 = load(&e, m, bv);
        upd = op2(&e, IR_OP_ADD, op2(&e, IR_OP_MUL, b0, k(&e, o.momentum)), g);
        store(&e, m, bv, gated(&e, run, upd, b0));
      }
      p_new = op2(&e, IR_OP_SUB, p, op2(&e, IR_OP_MUL, upd, lr >= 0 ? lr : k(&e, o.lr)));
    }
    store(&e, m, v, gated(&e, run, p_new, p));
    if (ema_d >= 0) {
      int av = state_var(m, v, st->name, "ema", VAR_EMA);
      int a = load(&e, m, av); /* d a + (1 - d) p = p + d (a - p) */
      int a1 = op2(&e, IR_OP_ADD, p_new, op2(&e, IR_OP_MUL, ema_d, op2(&e, IR_OP_SUB, a, p_new)));
      store(&e, m, av, gated(&e, run, a1, a));
    }
  }
  st->lowered = true;
  ir_layout(m);
}

int pass_lower_steps(ir_module *m, char *err, size_t errn) {
  ir_func *f = ir_find_func(m, "train_step");
  if (!f) return 0;
  int *grads = malloc((size_t)(m->nvars + 1) * sizeof *grads);
  int status = 0;
  for (int s = 0; s < f->nsteps && status == 0; s++) {
    if (f->steps[s].lowered) continue;
    grads = realloc(grads, (size_t)(m->nvars + 1) * sizeof *grads);
    status = pass_autodiff(m, f, s, grads, err, errn);
    if (status == 0 && m->ranks > 1) pass_allreduce(m, f, s, grads);
    if (status == 0) pass_optimizer(m, f, s, grads);
  }
  free(grads);
  return status;
}
