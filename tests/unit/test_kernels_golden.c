/* test_kernels_golden.c: the interpreter kernels against PyTorch's values in
 * tests/golden-ops. Every forward case of cases.json runs through ir_interp_node (so
 * the shape rules are exercised too) and is compared at rel 1e-5, abs 1e-6. Layers
 * that are several ops in migc are built from them: dense = matmul(x, W^T) + bias,
 * conv/deconv + bias, batchnorm's running statistics from mean, var, mul and add.
 * Gradients and Adam are another test's business. */
#include "check.h"
#include "ir/op_impl.h"
#include "runtime/runtime.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define RTOL 1e-5
#define ATOL 1e-6

static const char *case_name; /* for failure messages */
static ir_interp interp;

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
    ops[j].dtype = in[j]->dtype;
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
  const float *g = got->data, *w = want.data;
  int64_t worst = -1, count = shape_numel(want.shape);
  int bad = 0;
  for (int64_t j = 0; j < count; j++)
    if (!(fabs((double)g[j] - w[j]) <= ATOL + RTOL * fabs((double)w[j]))) {
      if (worst < 0) worst = j;
      bad++;
    }
  CHECK_MSG(bad == 0, "case %s: %s: %d of %lld elements differ; first at %lld: %.9g vs %.9g",
            case_name, file, bad, (long long)count, (long long)worst,
            worst >= 0 ? g[worst] : 0.0, worst >= 0 ? w[worst] : 0.0);
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
  ir_tensor *all[] = {&x, &w, &b, &z, &b3, &y};
  for (size_t j = 0; j < sizeof all / sizeof *all; j++) ir_tensor_free(all[j]);
}

static ir_tensor scalar(float v) {
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
  ir_tensor keep = scalar((float)(1 - momentum)), mom = scalar((float)momentum);
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
  ir_tensor *all[] = {&x, &g, &b, &y, &mean, &var, &keep, &mom, &zeros, &ones,
                      &a1, &a2, &rm, &b1, &b2, &rv};
  for (size_t j = 0; j < sizeof all / sizeof *all; j++) ir_tensor_free(all[j]);
}

static void case_unary(const cJSON *c, ir_op op) {
  ir_tensor x = load(input(c, "x"));
  ir_node n = mk(op);
  n.f[0] = attr(c, "slope", 0);
  ir_tensor y = run(n, 1, &x);
  compare(&y, output(c));
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

/* softmax_ce and info_categorical: logits and integer labels stored as float */
static void case_labels(const cJSON *c, ir_op op, const char *labels) {
  ir_tensor x = load(input(c, "logits")), lf = load(input(c, labels));
  ir_tensor l = lf.data ? to_i32(&lf) : lf;
  ir_tensor y = run(mk(op), 2, &x, &l);
  compare(&y, output(c));
  if (l.data != lf.data) ir_tensor_free(&l);
  ir_tensor_free(&x), ir_tensor_free(&lf), ir_tensor_free(&y);
}

static void case_gaussian_nll(const cJSON *c) {
  ir_tensor m = load(input(c, "mean")), x = load(input(c, "x"));
  ir_node n = mk(IR_OP_GAUSSIAN_NLL);
  n.f[0] = attr(c, "std", 0);
  ir_tensor y = run(n, 2, &m, &x);
  compare(&y, output(c));
  ir_tensor_free(&m), ir_tensor_free(&x), ir_tensor_free(&y);
}

int main(void) {
  char path[1024];
  snprintf(path, sizeof path, "%s/cases.json", MIGC_GOLDEN_OPS);
  char *text = read_text(path);
  CHECK_MSG(text != NULL, "cannot read %s", path);
  if (!text) return check_done();
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
  printf("%d golden cases run, %d skipped (adam)\n", ran, skipped);
  CHECK_MSG(ran == 29, "ran %d cases, expected the 29 forward cases", ran);
  cJSON_Delete(root);
  return check_done();
}
