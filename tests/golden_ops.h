/* golden_ops.h: runs every case of tests/golden-ops/cases.json through the reference
 * interpreter, one op at a time with ir_interp_node (so the shape rules are exercised
 * too), and compares with PyTorch's values at golden_rtol / golden_atol. Shared by
 * test_kernels_golden.c (float32 kernels, rel 1e-5, abs 1e-6) and test_interp_f64.c
 * (the same cases in the interpreter's f64 mode, tighter).
 *
 * Layers that are several ops in migc are built from them: dense = matmul(x, W^T) +
 * bias, conv/deconv + bias, batchnorm's running statistics from mean, var, mul and add.
 * The gradients (`grads`: of sum(output * dy)) of the cases whose adjoints are ops of
 * their own are checked too: conv's through conv_grad_x and conv_grad_w, deconv's
 * through conv (its input's gradient) and conv_grad_w with the roles swapped,
 * batchnorm's through batchnorm_grad and batchnorm_grad_gamma, relu's and lrelu's
 * through relu_grad and lrelu_grad, biases and beta through sum; softmax against a
 * hand computation and through the cross-entropy gradients (softmax - onehot)/N. The
 * other gradients are autodiff's to test. Adam is the optimizer's.
 *
 * A header of static functions, like check.h: include it once, in a test's main file. */
#ifndef MIGC_TEST_GOLDEN_OPS_H
#define MIGC_TEST_GOLDEN_OPS_H

#include "check.h"
#include "ir/op_impl.h"
#include "runtime/runtime.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* |got - want| <= golden_atol + golden_rtol * |want|, element by element */
static double golden_rtol = 1e-5, golden_atol = 1e-6;
static double golden_worst; /* the largest |got - want| / (atol + rtol |want|) seen */

static const char *case_name; /* for failure messages */
static ir_interp interp;      /* interp.f64 selects the double-precision mode */

/* element j of a real tensor, f32 or f64 */
static double tval(const ir_tensor *t, int64_t j) {
  return t->dtype == IR_F64 ? ((const double *)t->data)[j] : ((const float *)t->data)[j];
}

static char *read_text(const char *path) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return NULL;
  fseek(fp, 0, SEEK_END);
  long n = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  if (s && fread(s, 1, (size_t)n, fp) != (size_t)n) {
    free(s);
    s = NULL;
  }
  if (s) s[n] = '\0';
  fclose(fp);
  return s;
}

/* Loads a golden file as an unbatched f32 tensor (data NULL on failure). */
static ir_tensor load(const char *file) {
  ir_tensor t = {IR_F32, shape_scalar(), NULL};
  char path[1024], err[512];
  snprintf(path, sizeof path, "%s/%s", MIGC_GOLDEN_OPS, file);
  npy_array a;
  if (npy_read(path, &a, err, sizeof err) != 0) {
    CHECK_MSG(false, "case %s: %s", case_name, err);
    return t;
  }
  CHECK_MSG(a.dtype == NPY_F32 && a.rank <= IR_MAX_RANK, "case %s: %s is not f32", case_name,
            file);
  t.shape = shape_make(a.rank, a.dim, false);
  t.data = a.data; /* both are malloc'd float arrays: the tensor takes it over */
  return t;
}

/* Class indices stored as float become an i32 tensor. */
static ir_tensor to_i32(const ir_tensor *f) {
  ir_tensor t = ir_tensor_alloc(IR_I32, f->shape);
  for (int64_t j = 0; j < shape_numel(f->shape); j++) {
    float v = ((float *)f->data)[j];
    CHECK_MSG(v == (float)(int32_t)v, "case %s: label %g is not an integer", case_name, v);
    ((int32_t *)t.data)[j] = (int32_t)v;
  }
  return t;
}

static ir_node mk(ir_op op) {
  ir_node n = {0};
  n.op = op;
  n.var = -1;
  return n;
}

/* Runs n on the nin tensors that follow: its shape rule on their shapes (to give n its
 * dtype and shape, as ir_emit would), then the kernel. Returns the result (data NULL
 * on failure, reported under the case's name). */
static ir_tensor run(ir_node n, int nin, ...) {
  const ir_tensor *in[IR_MAX_IN];
  ir_node ops[IR_MAX_IN];
  const ir_node *ptrs[IR_MAX_IN];
  va_list ap;
  va_start(ap, nin);
  for (int j = 0; j < nin; j++) {
    in[j] = va_arg(ap, const ir_tensor *);
    ops[j] = mk(IR_OP_INPUT);
    ops[j].dtype = in[j]->dtype == IR_F64 ? IR_F32 : in[j]->dtype; /* the IR's view */
    ops[j].shape = in[j]->shape;
    ptrs[j] = &ops[j];
  }
  va_end(ap);
  ir_tensor out = {IR_F32, shape_scalar(), NULL};
  n.nin = nin;
  for (int j = 0; j < nin; j++)
    if (!in[j]->data) return out; /* an input failed to load: already reported */
  char err[256];
  int bad;
  if (!ir_ops[n.op].shape(&n, ptrs, err, sizeof err, &bad)) {
    CHECK_MSG(false, "case %s: %s rule: %s", case_name, ir_ops[n.op].name, err);
    return out;
  }
  if (ir_interp_node(&interp, &n, in, &out) != 0)
    CHECK_MSG(false, "case %s: %s", case_name, interp.err);
  return out;
}

/* got matches the golden file `file` in shape and every element. */
static void compare(const ir_tensor *got, const char *file) {
  ir_tensor want = load(file);
  if (!got->data || !want.data) {
    CHECK_MSG(false, "case %s: nothing to compare with %s", case_name, file);
    ir_tensor_free(&want);
    return;
  }
  char gs[160], ws[160];
  shape_str(got->shape, gs, sizeof gs);
  shape_str(want.shape, ws, sizeof ws);
  if (!shape_equal(got->shape, want.shape)) {
    CHECK_MSG(false, "case %s: %s: shape %s, expected %s", case_name, file, gs, ws);
    ir_tensor_free(&want);
    return;
  }
  const float *w = want.data;
  int64_t worst = -1, count = shape_numel(want.shape);
  int bad = 0;
  CHECK_MSG(got->dtype == (interp.f64 ? IR_F64 : IR_F32), "case %s: %s: a tensor of dtype %d",
            case_name, file, (int)got->dtype);
  for (int64_t j = 0; j < count; j++) {
    double d = fabs(tval(got, j) - w[j]), tol = golden_atol + golden_rtol * fabs((double)w[j]);
    if (d / tol > golden_worst) golden_worst = d / tol;
    if (!(d <= tol)) {
      if (worst < 0) worst = j;
      bad++;
    }
  }
  CHECK_MSG(bad == 0, "case %s: %s: %d of %lld elements differ; first at %lld: %.9g vs %.9g",
            case_name, file, bad, (long long)count, (long long)worst,
            worst >= 0 ? tval(got, worst) : 0.0, worst >= 0 ? w[worst] : 0.0);
  ir_tensor_free(&want);
}

static const char *input(const cJSON *c, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c, "inputs"),
                                                    name);
  CHECK_MSG(cJSON_IsString(v), "case %s: no input %s", case_name, name);
  return cJSON_IsString(v) ? v->valuestring : "missing";
}

static double attr(const cJSON *c, const char *name, double dflt) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c, "attrs"),
                                                    name);
  return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static const char *output(const cJSON *c) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, "output");
  return cJSON_IsString(v) ? v->valuestring : "missing";
}

static const char *dy_file(const cJSON *c) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, "dy");
  CHECK_MSG(cJSON_IsString(v), "case %s: no dy", case_name);
  return cJSON_IsString(v) ? v->valuestring : "missing";
}

static const char *grad(const cJSON *c, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c, "grads"),
                                                    name);
  CHECK_MSG(cJSON_IsString(v), "case %s: no gradient of %s", case_name, name);
  return cJSON_IsString(v) ? v->valuestring : "missing";
}

static int grads_checked; /* golden gradient files compared */

/* got matches the golden gradient of input `name` */
static void compare_grad(const ir_tensor *got, const cJSON *c, const char *name) {
  compare(got, grad(c, name));
  grads_checked++;
}

/* sum over every axis but 1: a bias's or beta's gradient [C] */
static ir_tensor sum_but_1(const ir_tensor *t) {
  ir_node n = mk(IR_OP_SUM);
  for (int d = 0; d < t->shape.rank; d++)
    if (d != 1) n.i[0] |= (int64_t)1 << d;
  return run(n, 1, t);
}

/* ---- the cases, by op ------------------------------------------------------------------ */

/* x [N,in], weight [out,in], bias [out]: x W^T + b */
static void case_dense(const cJSON *c) {
  ir_tensor x = load(input(c, "x")), w = load(input(c, "weight")), b = load(input(c, "bias"));
  ir_node mm = mk(IR_OP_MATMUL);
  mm.i[1] = 1;
  ir_tensor xw = run(mm, 2, &x, &w);
  ir_tensor y = run(mk(IR_OP_ADD), 2, &xw, &b);
  compare(&y, output(c));
  ir_tensor *all[] = {&x, &w, &b, &xw, &y};
  for (size_t j = 0; j < sizeof all / sizeof *all; j++) ir_tensor_free(all[j]);
}

static void case_matmul(const cJSON *c) {
  ir_tensor a = load(input(c, "a")), b = load(input(c, "b"));
  ir_tensor y = run(mk(IR_OP_MATMUL), 2, &a, &b);
  compare(&y, output(c));
  ir_tensor_free(&a), ir_tensor_free(&b), ir_tensor_free(&y);
}

/* conv or deconv of x with weight, plus bias [O] reshaped to [O,1,1] to broadcast over
 * [N,O,Ho,Wo] */
static void case_conv(const cJSON *c, ir_op op) {
  ir_tensor x = load(input(c, "x")), w = load(input(c, "weight")), b = load(input(c, "bias"));
  ir_node n = mk(op);
  n.i[0] = (int64_t)attr(c, "k", 0), n.i[1] = (int64_t)attr(c, "s", 0);
  n.i[2] = (int64_t)attr(c, "p", 0);
  ir_tensor z = run(n, 2, &x, &w);
  ir_node r = mk(IR_OP_RESHAPE);
  int64_t dims[3] = {b.shape.dim[0], 1, 1};
  r.ashape = shape_make(3, dims, false);
  ir_tensor b3 = run(r, 1, &b);
  ir_tensor y = run(mk(IR_OP_ADD), 2, &z, &b3);
  compare(&y, output(c));

  ir_tensor dy = load(dy_file(c)), dx, dw;
  ir_node gw = mk(IR_OP_CONV_GRAD_W);
  gw.i[0] = n.i[0], gw.i[1] = n.i[1], gw.i[2] = n.i[2];
  gw.ashape = w.shape;
  if (op == IR_OP_CONV) {
    /* dx = conv_grad_x(dy, w) to x's shape, dw = conv_grad_w(x, dy) */
    ir_node gx = mk(IR_OP_CONV_GRAD_X);
    gx.i[0] = n.i[0], gx.i[1] = n.i[1], gx.i[2] = n.i[2];
    gx.ashape = x.shape;
    dx = run(gx, 2, &dy, &w);
    dw = run(gw, 2, &x, &dy);
  } else {
    /* deconv is conv's adjoint: dx = conv(dy, w) with the same k, s, p, and
     * dw [C,O,k,k] = conv_grad_w(dy, x), dy in the role of the input */
    ir_node cv = mk(IR_OP_CONV);
    cv.i[0] = n.i[0], cv.i[1] = n.i[1], cv.i[2] = n.i[2];
    dx = run(cv, 2, &dy, &w);
    dw = run(gw, 2, &dy, &x);
  }
  ir_tensor db = sum_but_1(&dy);
  compare_grad(&dx, c, "x");
  compare_grad(&dw, c, "weight");
  compare_grad(&db, c, "bias");
  ir_tensor *all[] = {&x, &w, &b, &z, &b3, &y, &dy, &dx, &dw, &db};
  for (size_t j = 0; j < sizeof all / sizeof *all; j++) ir_tensor_free(all[j]);
}

static ir_tensor scalar(double v) {
  ir_node k = mk(IR_OP_CONST);
  k.f[0] = v;
  return run(k, 0);
}

/* y, then one running-statistics update from mean 0, variance 1 with momentum 0.1:
 *   rm' = 0.9*0 + 0.1*mean(x),  rv' = 0.9*1 + 0.1*var_unbiased(x)
 * over all axes but 1, computed with the mean, var, mul and add kernels. */
static void case_batchnorm(const cJSON *c) {
  ir_tensor x = load(input(c, "x")), g = load(input(c, "gamma")), b = load(input(c, "beta"));
  ir_node n = mk(IR_OP_BATCHNORM);
  n.f[0] = attr(c, "eps", 1e-5);
  ir_tensor y = run(n, 3, &x, &g, &b);
  compare(&y, output(c));

  int64_t mask = 0;
  for (int d = 0; d < x.shape.rank; d++)
    if (d != 1) mask |= (int64_t)1 << d;
  ir_node mn = mk(IR_OP_MEAN), vr = mk(IR_OP_VAR);
  mn.i[0] = vr.i[0] = mask;
  ir_tensor mean = run(mn, 1, &x), var = run(vr, 1, &x);
  double momentum = attr(c, "momentum", 0.1);
  ir_tensor keep = scalar(1 - momentum), mom = scalar(momentum);
  ir_tensor zeros = ir_tensor_alloc(IR_F32, g.shape), ones = ir_tensor_alloc(IR_F32, g.shape);
  for (int64_t j = 0; j < shape_numel(g.shape); j++) ((float *)ones.data)[j] = 1;
  ir_tensor a1 = run(mk(IR_OP_MUL), 2, &keep, &zeros), a2 = run(mk(IR_OP_MUL), 2, &mom, &mean);
  ir_tensor rm = run(mk(IR_OP_ADD), 2, &a1, &a2);
  ir_tensor b1 = run(mk(IR_OP_MUL), 2, &keep, &ones), b2 = run(mk(IR_OP_MUL), 2, &mom, &var);
  ir_tensor rv = run(mk(IR_OP_ADD), 2, &b1, &b2);
  const cJSON *extra = cJSON_GetObjectItemCaseSensitive(c, "extra_outputs");
  const cJSON *erm = cJSON_GetObjectItemCaseSensitive(extra, "running_mean");
  const cJSON *erv = cJSON_GetObjectItemCaseSensitive(extra, "running_var");
  CHECK_MSG(cJSON_IsString(erm) && cJSON_IsString(erv), "case %s: no running statistics",
            case_name);
  if (cJSON_IsString(erm)) compare(&rm, erm->valuestring);
  if (cJSON_IsString(erv)) compare(&rv, erv->valuestring);

  /* gradients through the batch statistics; beta's is the sum of dy */
  ir_tensor dy = load(dy_file(c));
  ir_node gx = mk(IR_OP_BATCHNORM_GRAD), gg = mk(IR_OP_BATCHNORM_GRAD_GAMMA);
  gx.f[0] = gg.f[0] = n.f[0];
  ir_tensor dx = run(gx, 3, &x, &g, &dy), dg = run(gg, 2, &x, &dy), db = sum_but_1(&dy);
  compare_grad(&dx, c, "x");
  compare_grad(&dg, c, "gamma");
  compare_grad(&db, c, "beta");
  ir_tensor *all[] = {&x, &g, &b, &y, &mean, &var, &keep, &mom, &zeros, &ones,
                      &a1, &a2, &rm, &b1, &b2, &rv, &dy, &dx, &dg, &db};
  for (size_t j = 0; j < sizeof all / sizeof *all; j++) ir_tensor_free(all[j]);
}

static void case_unary(const cJSON *c, ir_op op) {
  ir_tensor x = load(input(c, "x"));
  ir_node n = mk(op);
  n.f[0] = attr(c, "slope", 0);
  ir_tensor y = run(n, 1, &x);
  compare(&y, output(c));
  if (op == IR_OP_RELU || op == IR_OP_LRELU) {
    ir_tensor dy = load(dy_file(c));
    ir_node g = mk(op == IR_OP_RELU ? IR_OP_RELU_GRAD : IR_OP_LRELU_GRAD);
    g.f[0] = n.f[0];
    ir_tensor dx = run(g, 2, &x, &dy);
    compare_grad(&dx, c, "x");
    ir_tensor_free(&dy), ir_tensor_free(&dx);
  }
  ir_tensor_free(&x), ir_tensor_free(&y);
}

static void case_binary(const cJSON *c, ir_op op) {
  ir_tensor a = load(input(c, "a")), b = load(input(c, "b"));
  ir_tensor y = run(mk(op), 2, &a, &b);
  compare(&y, output(c));
  ir_tensor_free(&a), ir_tensor_free(&b), ir_tensor_free(&y);
}

/* attrs.axes lists the reduced axes; PyTorch drops them (keepdim=False) */
static void case_reduce(const cJSON *c, ir_op op) {
  ir_tensor x = load(input(c, "x"));
  ir_node n = mk(op);
  const cJSON *axes = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c, "attrs"),
                                                       "axes");
  const cJSON *a;
  cJSON_ArrayForEach(a, axes) n.i[0] |= (int64_t)1 << (int)a->valuedouble;
  CHECK_MSG(n.i[0] != 0, "case %s: no axes", case_name);
  ir_tensor y = run(n, 1, &x);
  compare(&y, output(c));
  ir_tensor_free(&x), ir_tensor_free(&y);
}

static void case_concat(const cJSON *c) {
  ir_tensor a = load(input(c, "a")), b = load(input(c, "b"));
  ir_node n = mk(IR_OP_CONCAT);
  n.i[0] = (int64_t)attr(c, "axis", -1);
  ir_tensor y = run(n, 2, &a, &b);
  compare(&y, output(c));
  ir_tensor_free(&a), ir_tensor_free(&b), ir_tensor_free(&y);
}

static void case_bce(const cJSON *c) {
  ir_tensor x = load(input(c, "logits")), t = load(input(c, "target"));
  ir_tensor y = run(mk(IR_OP_BCE_LOGITS), 2, &x, &t);
  compare(&y, output(c));
  ir_tensor_free(&x), ir_tensor_free(&t), ir_tensor_free(&y);
}

/* softmax of the [N,K] logits against exp(x - max)/sum computed here in double */
static void check_softmax(const ir_tensor *x, const ir_tensor *p) {
  if (!x->data || !p->data) return;
  int64_t N = x->shape.dim[0], K = x->shape.dim[1];
  int bad = 0;
  for (int64_t r = 0; r < N; r++) {
    double mx = -INFINITY, z = 0;
    for (int64_t j = 0; j < K; j++) mx = fmax(mx, tval(x, r * K + j));
    for (int64_t j = 0; j < K; j++) z += exp(tval(x, r * K + j) - mx);
    for (int64_t j = 0; j < K; j++) {
      double want = exp(tval(x, r * K + j) - mx) / z;
      if (!(fabs(tval(p, r * K + j) - want) <= golden_atol + golden_rtol * want)) bad++;
    }
  }
  CHECK_MSG(bad == 0, "case %s: softmax differs from the hand computation in %d elements",
            case_name, bad);
}

/* softmax_ce and info_categorical: logits and integer labels stored as float. Their
 * logits' gradient is (softmax - onehot(labels)) * dy / N, negated for info_categorical
 * (ln K minus the cross-entropy); dy is a scalar. */
static void case_labels(const cJSON *c, ir_op op, const char *labels) {
  ir_tensor x = load(input(c, "logits")), lf = load(input(c, labels));
  ir_tensor l = lf.data ? to_i32(&lf) : lf;
  ir_tensor y = run(mk(op), 2, &x, &l);
  compare(&y, output(c));

  ir_tensor p = run(mk(IR_OP_SOFTMAX), 1, &x);
  check_softmax(&x, &p);
  ir_node oh = mk(IR_OP_ONEHOT);
  oh.i[0] = x.shape.rank == 2 ? x.shape.dim[1] : 0;
  ir_tensor t = run(oh, 1, &l);
  ir_tensor diff = run(mk(IR_OP_SUB), 2, &p, &t);
  ir_tensor dy = load(dy_file(c));
  double scale = x.shape.rank == 2 ? (op == IR_OP_SOFTMAX_CE ? 1.0 : -1.0) / (double)x.shape.dim[0]
                                   : 0;
  ir_tensor k = scalar(scale);
  ir_tensor kd = run(mk(IR_OP_MUL), 2, &k, &dy);
  ir_tensor dx = run(mk(IR_OP_MUL), 2, &diff, &kd);
  compare_grad(&dx, c, "logits");
  if (l.data != lf.data) ir_tensor_free(&l);
  ir_tensor *all[] = {&x, &lf, &y, &p, &t, &diff, &dy, &k, &kd, &dx};
  for (size_t j = 0; j < sizeof all / sizeof *all; j++) ir_tensor_free(all[j]);
}

static void case_gaussian_nll(const cJSON *c) {
  ir_tensor m = load(input(c, "mean")), x = load(input(c, "x"));
  ir_node n = mk(IR_OP_GAUSSIAN_NLL);
  n.f[0] = attr(c, "std", 0);
  ir_tensor y = run(n, 2, &m, &x);
  compare(&y, output(c));
  ir_tensor_free(&m), ir_tensor_free(&x), ir_tensor_free(&y);
}

/* Runs every case in the mode interp.f64 says; failures go through CHECK. */
static void golden_run_all(void) {
  char path[1024];
  snprintf(path, sizeof path, "%s/cases.json", MIGC_GOLDEN_OPS);
  char *text = read_text(path);
  CHECK_MSG(text != NULL, "cannot read %s", path);
  if (!text) return;
  cJSON *root = cJSON_Parse(text);
  free(text);
  const cJSON *cases = cJSON_GetObjectItemCaseSensitive(root, "cases");
  CHECK_MSG(cJSON_IsArray(cases), "%s has no cases array", path);

  static const struct {
    const char *name;
    ir_op op;
  } unary[] = {{"relu", IR_OP_RELU},       {"lrelu", IR_OP_LRELU}, {"sigmoid", IR_OP_SIGMOID},
               {"tanh", IR_OP_TANH},       {"softplus", IR_OP_SOFTPLUS},
               {"exp", IR_OP_EXP},         {"log", IR_OP_LOG}},
    binary[] = {{"add", IR_OP_ADD}, {"mul", IR_OP_MUL}, {"div", IR_OP_DIV}, {"sub", IR_OP_SUB}},
    reduce[] = {{"sum", IR_OP_SUM}, {"mean", IR_OP_MEAN}, {"var", IR_OP_VAR}};

  int ran = 0, skipped = 0;
  grads_checked = 0, golden_worst = 0;
  const cJSON *c;
  cJSON_ArrayForEach(c, cases) {
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(c, "name");
    const cJSON *opj = cJSON_GetObjectItemCaseSensitive(c, "op");
    case_name = cJSON_IsString(nm) ? nm->valuestring : "?";
    const char *op = cJSON_IsString(opj) ? opj->valuestring : "?";
    int before = check_failed;
    bool done = true;
    if (strcmp(op, "dense") == 0) case_dense(c);
    else if (strcmp(op, "matmul") == 0) case_matmul(c);
    else if (strcmp(op, "conv") == 0) case_conv(c, IR_OP_CONV);
    else if (strcmp(op, "deconv") == 0) case_conv(c, IR_OP_DECONV);
    else if (strcmp(op, "batchnorm") == 0) case_batchnorm(c);
    else if (strcmp(op, "concat") == 0) case_concat(c);
    else if (strcmp(op, "bce") == 0) case_bce(c);
    else if (strcmp(op, "softmax_ce") == 0) case_labels(c, IR_OP_SOFTMAX_CE, "labels");
    else if (strcmp(op, "info_categorical") == 0) case_labels(c, IR_OP_INFO_CATEGORICAL, "c");
    else if (strcmp(op, "gaussian_nll") == 0) case_gaussian_nll(c);
    else if (strcmp(op, "adam") == 0) done = false, skipped++; /* the optimizer's test */
    else {
      done = false;
      for (size_t j = 0; j < sizeof unary / sizeof *unary; j++)
        if (strcmp(op, unary[j].name) == 0) case_unary(c, unary[j].op), done = true;
      for (size_t j = 0; j < sizeof binary / sizeof *binary; j++)
        if (strcmp(op, binary[j].name) == 0) case_binary(c, binary[j].op), done = true;
      for (size_t j = 0; j < sizeof reduce / sizeof *reduce; j++)
        if (strcmp(op, reduce[j].name) == 0) case_reduce(c, reduce[j].op), done = true;
      CHECK_MSG(done, "case %s: op %s has no test here", case_name, op);
    }
    if (done) {
      ran++;
      if (check_failed > before) fprintf(stderr, "case %s: FAILED\n", case_name);
    }
  }
  printf("%s: %d golden cases run, %d skipped (adam); %d gradients checked; the largest "
         "error is %.3g of the tolerance (rel %g, abs %g)\n",
         interp.f64 ? "f64" : "f32", ran, skipped, grads_checked, golden_worst, golden_rtol,
         golden_atol);
  CHECK_MSG(ran == 29, "ran %d cases, expected the 29 forward cases", ran);
  /* 8 conv and deconv cases x 3, 2 batchnorm x 3, relu, lrelu, softmax_ce, info_categorical */
  CHECK_MSG(grads_checked == 34, "checked %d gradients, expected 34", grads_checked);
  cJSON_Delete(root);
}

#endif
