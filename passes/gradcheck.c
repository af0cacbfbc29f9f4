/* gradcheck.c: are autodiff's gradients right? Each step's loss is a function of the
 * parameters it trains; the analytic gradient from the IR (pass_autodiff, run by the
 * reference interpreter) must match central differences of that function. Both run
 * in double precision, so the comparison is limited by the method (O(h^2) truncation,
 * rounding ~1e-16/h), not by float32 noise: errors of 1e-6 or less are expected and
 * anything above 1e-3 is a wrong rule. Updates are not applied: every step's loss is
 * taken at the initial parameters, which is what its gradient is the gradient of. */
#include "passes.h"

#include "runtime/runtime.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { STREAM_INPUTS = 11, STREAM_DIRECTION = 12, STREAM_PICK = 13 };

/* An input drawn as its declaration says: latents and codes from their priors through
 * the runtime's latent_fill, real data uniform over its value range. */
static ir_tensor sample(const ir_input *in, uint64_t seed, int idx) {
  ir_tensor t = ir_tensor_alloc(in->dtype, in->shape);
  int64_t n = shape_numel(in->shape);
  uint64_t first = (uint64_t)idx << 40;
  if (in->kind == INPUT_SEED) {
    ((int32_t *)t.data)[0] = (int32_t)(seed & 0x7fffffff);
  } else if (in->dist == DIST_CATEGORICAL) {
    latent_fill_categorical(t.data, n, (int32_t)in->a, seed, STREAM_INPUTS, 0, first);
  } else {
    int kind = in->dist == DIST_NORMAL ? 1 : in->dist == DIST_BERNOULLI ? 2 : 0;
    latent_fill(t.data, n, kind, in->a, in->b, seed, STREAM_INPUTS, 0, first);
  }
  return t;
}

typedef struct {
  ir_module *m;
  ir_func *fwd;
  ir_tensor *inputs;
  double *state;
  int loss_out; /* which output of fwd is the loss being checked */
  char *err;
  size_t errn;
} evaluator;

static int run(evaluator *ev, ir_func *f, ir_tensor *outs) {
  ir_interp it = {.m = ev->m, .f64 = true, .state64 = ev->state};
  if (ir_interp_run(&it, f, ev->inputs, outs)) {
    snprintf(ev->err, ev->errn, "%s", it.err);
    return -1;
  }
  return 0;
}

static double value_at(const ir_tensor *t, int64_t i) {
  return t->dtype == IR_F64 ? ((const double *)t->data)[i] : ((const float *)t->data)[i];
}

static int loss(evaluator *ev, double *out) {
  ir_tensor outs[64];
  if (ev->fwd->noutputs > 64 || run(ev, ev->fwd, outs)) return -1;
  *out = value_at(&outs[ev->loss_out], 0);
  for (int k = 0; k < ev->fwd->noutputs; k++) ir_tensor_free(&outs[k]);
  return 0;
}

/* The floor keeps a gradient that is truly zero (a bias right before batchnorm) from
 * being judged on rounding noise: a central difference of a loss L with step h
 * carries DBL_EPSILON |L| / h of it times the error the loss accumulates through the
 * network (measured: up to ~20x), so derivatives below 10^5 DBL_EPSILON |L| / h are
 * compared absolutely against that. A wrong derivative of an element is still
 * caught down to ~2e-5 |L| at the default h. */
static double rel_err(double a, double d, double loss, double h) {
  double noise = DBL_EPSILON * fmax(fabs(loss), 1.0) / h;
  double den = fmax(fmax(fabs(a), fabs(d)), fmax(1e5 * noise, 1e-9));
  return fabs(a - d) / den;
}

/* Central difference of the loss along `dir` (NULL: along element `at`) with step h. */
static int central(evaluator *ev, const ir_var *v, const double *dir, int64_t at, double h,
                   double *d, double *l) {
  double *p = ev->state + v->offset;
  int64_t n = dir ? shape_numel(v->shape) : 1, base = dir ? 0 : at;
  double *saved = malloc((size_t)n * sizeof *saved);
  memcpy(saved, p + base, (size_t)n * sizeof *saved);
  double lp = 0, lm = 0;
  for (int64_t i = 0; i < n; i++) p[base + i] = saved[i] + h * (dir ? dir[i] : 1.0);
  int st = loss(ev, &lp);
  for (int64_t i = 0; i < n; i++) p[base + i] = saved[i] - h * (dir ? dir[i] : 1.0);
  if (!st) st = loss(ev, &lm);
  memcpy(p + base, saved, (size_t)n * sizeof *saved);
  free(saved);
  *d = (lp - lm) / (2 * h);
  *l = fmax(fabs(lp), fabs(lm));
  return st;
}

/* A ReLU or leaky ReLU whose input crosses zero inside [-h, h] bends the loss there,
 * and one difference across the bend is off by far more than the method's error. A
 * comparison that misses is measured again with steps 10 and 100 times smaller and
 * the best one counts: a wrong gradient misses at every step, a kink does not stay
 * inside a shrinking interval. */
static int compare(evaluator *ev, const ir_var *v, const double *dir, int64_t at, double h,
                   double analytic, double *err) {
  *err = INFINITY;
  for (int k = 0; k < 3 && *err > 1e-6; k++, h /= 10) {
    double d, l;
    if (central(ev, v, dir, at, h, &d, &l)) return -1;
    double e = rel_err(analytic, d, l, h);
    if (e < *err) *err = e;
  }
  return 0;
}

static int check_tensor(evaluator *ev, const gradcheck_options *o, int var,
                        const ir_tensor *g, gradcheck_result *r) {
  const ir_var *v = &ev->m->vars[var];
  int64_t n = shape_numel(v->shape);
  double *dir = malloc((size_t)n * sizeof *dir);
  double analytic = 0, norm = 0;
  int64_t biggest = 0;
  for (int64_t i = 0; i < n; i++) {
    dir[i] = 2.0 * rng_uniform(o->seed, STREAM_DIRECTION, (uint64_t)var, (uint64_t)i) - 1.0;
    double gi = value_at(g, i);
    analytic += gi * dir[i];
    norm += gi * gi;
    if (fabs(gi) > fabs(value_at(g, biggest))) biggest = i;
  }
  r->grad_norm = sqrt(norm);
  /* Moving every element at once shifts each downstream activation by about
   * h sqrt(fan-in): enough, for a big tensor, that some ReLU crosses its kink inside
   * the difference. A step of h / sqrt(n) keeps the shifts small; the directional
   * derivative, a sum over n elements, stays large against rounding. */
  int st = compare(ev, v, dir, 0, o->h / sqrt((double)n), analytic, &r->worst);
  free(dir);
  if (st) return -1;
  r->checks = 1;
  for (int k = 0; k < o->elements && k < n; k++) {
    int64_t at = k == 0 ? biggest
                        : (int64_t)(rng_uniform(o->seed, STREAM_PICK, (uint64_t)var, (uint64_t)k) * (double)n) % n;
    double e, h = o->h * fmax(1.0, fabs(ev->state[v->offset + at]));
    if (compare(ev, v, NULL, at, h, value_at(g, at), &e)) return -1;
    if (e > r->worst) r->worst = e;
    r->checks++;
  }
  return 0;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int gradcheck(ir_module *m, const gradcheck_options *o, gradcheck_result **out, char *err,
              size_t errn) {
  *out = NULL;
  ir_func *f = ir_find_func(m, "train_step");
  if (!f) {
    snprintf(err, errn, "the model has no train_step");
    return -1;
  }
  int first = 0, last = f->nsteps - 1;
  if (o->step) {
    first = -1;
    for (int s = 0; s < f->nsteps; s++)
      if (!strcmp(f->steps[s].name, o->step)) first = last = s;
    if (first < 0) {
      snprintf(err, errn, "the model has no step named '%s'", o->step);
      return -1;
    }
  }
  /* The forward program alone, computing just the losses, for the differences. */
  ir_func *fwd = ir_clone_func(m, f, "gradcheck_forward");
  for (int k = 0; k < fwd->noutputs; k++) free(fwd->outputs[k].name);
  fwd->noutputs = 0;
  for (int s = 0; s < fwd->nsteps; s++) {
    char name[160];
    snprintf(name, sizeof name, "%s.loss", fwd->steps[s].name);
    ir_add_output(fwd, name, fwd->steps[s].loss);
  }
  pass_dce(fwd);

  /* The analytic gradients, as outputs of train_step. */
  int *grads = malloc((size_t)m->nvars * sizeof *grads);
  int cap = 16, n = 0;
  gradcheck_result *res = calloc((size_t)cap, sizeof *res);
  int *res_out = malloc((size_t)cap * sizeof *res_out), *res_step = malloc((size_t)cap * sizeof(int));
  int *res_var = malloc((size_t)cap * sizeof(int));
  int status = 0;
  for (int s = first; s <= last && !status; s++) {
    status = pass_autodiff(m, f, s, grads, err, errn);
    for (int v = 0; v < m->nvars && !status; v++) {
      if (grads[v] < 0) continue;
      if (n == cap) {
        cap *= 2;
        res = realloc(res, (size_t)cap * sizeof *res);
        res_out = realloc(res_out, (size_t)cap * sizeof *res_out);
        res_step = realloc(res_step, (size_t)cap * sizeof *res_step);
        res_var = realloc(res_var, (size_t)cap * sizeof *res_var);
      }
      memset(&res[n], 0, sizeof res[n]);
      res[n].step = strdup(f->steps[s].name);
      res[n].var = strdup(m->vars[v].name);
      res[n].numel = shape_numel(m->vars[v].shape);
      char name[512];
      snprintf(name, sizeof name, "grad.%s.%s", f->steps[s].name, m->vars[v].name);
      ir_add_output(f, name, grads[v]);
      res_out[n] = f->noutputs - 1;
      res_step[n] = s;
      res_var[n] = v;
      n++;
    }
  }
  free(grads);
  diag_sink vd;
  diag_init(&vd);
  if (!status && !ir_verify(m, &vd)) {
    snprintf(err, errn, "the differentiated IR does not verify: %s",
             vd.n ? vd.entries[0].msg : "?");
    status = -1;
  }
  diag_free(&vd);

  float *state32 = calloc((size_t)m->state_size + 1, sizeof *state32);
  double *state = calloc((size_t)m->state_size + 1, sizeof *state);
  ir_tensor *inputs = calloc((size_t)f->ninputs + 1, sizeof *inputs);
  ir_tensor *outs = calloc((size_t)f->noutputs + 1, sizeof *outs);
  bool have_outs = false;
  if (!status) {
    ir_init_state(m, state32, o->seed);
    for (int64_t i = 0; i < m->state_size; i++) state[i] = state32[i];
    for (int j = 0; j < f->ninputs; j++) inputs[j] = sample(&m->inputs[f->inputs[j]], o->seed, j);
    evaluator ev = {m, fwd, inputs, state, 0, err, errn};
    double t0 = now_s();
    status = run(&ev, f, outs);
    have_outs = !status;
    if (!status && o->progress) o->progress(o->progress_ctx, NULL, 0, n, now_s() - t0);
    for (int k = 0; k < n && !status; k++) {
      ev.loss_out = res_step[k];
      status = check_tensor(&ev, o, res_var[k], &outs[res_out[k]], &res[k]);
      if (!status && o->progress) o->progress(o->progress_ctx, &res[k], k + 1, n, now_s() - t0);
    }
  }
  if (have_outs)
    for (int k = 0; k < f->noutputs; k++) ir_tensor_free(&outs[k]);
  for (int j = 0; j < f->ninputs; j++) ir_tensor_free(&inputs[j]);
  free(outs);
  free(inputs);
  free(state);
  free(state32);
  free(res_out);
  free(res_step);
  free(res_var);
  if (status) {
    gradcheck_free(res, n);
    return -1;
  }
  *out = res;
  return n;
}

void gradcheck_free(gradcheck_result *r, int n) {
  for (int i = 0; i < n; i++) {
    free(r[i].step);
    free(r[i].var);
  }
  free(r);
}
