/* test_grad_golden.c: reverse-mode autodiff against PyTorch. For every case of
 * tests/golden-ops/cases.json the op is built as IR (dense and conv/deconv from their
 * parts, as the frontend builds them), the loss sum(out * dy) is differentiated by
 * pass_autodiff with respect to every input PyTorch has a gradient for, and the
 * interpreter's gradients are compared with PyTorch's at rel 1e-5, abs 1e-6. The
 * Adam lowering is run for three steps and compared with the adam_3_steps case. */
#include "check.h"
#include "passes/passes.h"
#include "runtime/runtime.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#define RTOL 1e-5
#define ATOL 1e-6

static const char *case_name;

static char *read_text(const char *path) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return NULL;
  fseek(fp, 0, SEEK_END);
  long n = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  if (fread(s, 1, (size_t)n, fp) != (size_t)n) n = 0;
  s[n] = 0;
  fclose(fp);
  return s;
}

static npy_array load(const char *file) {
  char path[1024], err[512];
  snprintf(path, sizeof path, "%s/%s", MIGC_GOLDEN_OPS, file);
  npy_array a = {0};
  int st = npy_read(path, &a, err, sizeof err);
  CHECK_MSG(st == 0, "case %s: %s", case_name, err);
  return a;
}

/* One differentiated function under construction. */
typedef struct {
  ir_module *m;
  ir_func *f;
  npy_array values[16]; /* initial value of each state variable, by var index */
  ir_tensor inputs[4];
  int trainable[16];
  int nvars;
} rig;

static void rig_init(rig *r) {
  memset(r, 0, sizeof *r);
  r->m = ir_module_new("golden");
  ir_add_net(r->m, "T");
  r->f = ir_add_func(r->m, "train_step", true);
}

static ir_shape shape_of(const npy_array *a) { return shape_make(a->rank, a->dim, false); }

/* A state variable holding golden file `file`, loaded in block 0. */
static int param(rig *r, const char *name, const char *file, bool train) {
  npy_array a = load(file);
  int v = ir_add_var(r->m, name, VAR_PARAM, IR_F32, shape_of(&a), train ? 0 : -1,
                     (ir_span){0});
  r->values[v] = a;
  r->trainable[v] = train;
  r->nvars = v + 1;
  ir_attrs at = {.ashape = shape_of(&a), .dtype = IR_F32, .var = v};
  return ir_emit_checked(r->f, 0, IR_OP_LOAD, NULL, 0, &at);
}

/* An integer input (labels, codes stored as float in the golden files). */
static int int_input(rig *r, const char *name, const char *file) {
  npy_array a = load(file);
  ir_input in = {.name = (char *)name, .kind = INPUT_CODE, .dtype = IR_I32,
                 .shape = shape_of(&a)};
  int idx = ir_add_input(r->m, &in);
  r->f->inputs = realloc(r->f->inputs, (size_t)(r->f->ninputs + 1) * sizeof(int));
  r->f->inputs[r->f->ninputs] = idx;
  ir_tensor t = ir_tensor_alloc(IR_I32, shape_of(&a));
  for (int64_t i = 0; i < a.numel; i++) ((int32_t *)t.data)[i] = (int32_t)((float *)a.data)[i];
  r->inputs[r->f->ninputs] = t;
  npy_free(&a);
  ir_attrs at = {.i = {r->f->ninputs}, .ashape = t.shape, .dtype = IR_I32};
  r->f->ninputs++;
  return ir_emit_checked(r->f, 0, IR_OP_INPUT, NULL, 0, &at);
}

static int op(rig *r, ir_op o, int nin, const int *in, const ir_attrs *a) {
  return ir_emit_checked(r->f, 0, o, in, nin, a);
}

static int op2(rig *r, ir_op o, int x, int y, const ir_attrs *a) {
  int in[2] = {x, y};
  return op(r, o, 2, in, a);
}

/* loss = sum(y * dy), differentiated; returns the gradients by variable index. */
static void differentiate(rig *r, int y, const char *dy_file, int *grads) {
  int dy = param(r, "dy", dy_file, false);
  int prod = op2(r, IR_OP_MUL, y, dy, NULL);
  int rank = r->f->nodes[prod].shape.rank;
  int loss = prod;
  if (rank > 0) {
    ir_attrs all = {.i = {(1 << rank) - 1, 0}};
    loss = op(r, IR_OP_SUM, 1, &prod, &all);
  }
  r->f->steps = calloc(1, sizeof *r->f->steps);
  r->f->steps[0] = (ir_step){strdup("t"), 0, loss, malloc(sizeof(int)), 1, {0}, false, {0}};
  r->f->steps[0].nets[0] = 0;
  r->f->nsteps = 1;
  char err[256] = "";
  int st = pass_autodiff(r->m, r->f, 0, grads, err, sizeof err);
  CHECK_MSG(st == 0, "case %s: %s", case_name, err);
  ir_layout(r->m);
  diag_sink d;
  diag_init(&d);
  bool ok = ir_verify(r->m, &d);
  CHECK_MSG(ok, "case %s: differentiated IR does not verify: %s", case_name,
            d.n ? d.entries[0].msg : "");
  diag_free(&d);
}

/* Runs the function and compares the gradient of each trainable input with PyTorch. */
static void compare(rig *r, const int *grads, cJSON *gold) {
  for (int v = 0; v < r->nvars; v++)
    if (r->trainable[v]) {
      CHECK_MSG(grads[v] >= 0, "case %s: no gradient for %s", case_name, r->m->vars[v].name);
      if (grads[v] >= 0) ir_add_output(r->f, r->m->vars[v].name, grads[v]);
    }
  ir_layout(r->m);
  float *state = calloc((size_t)r->m->state_size + 1, sizeof *state);
  for (int v = 0; v < r->nvars; v++)
    memcpy(state + r->m->vars[v].offset, r->values[v].data,
           (size_t)r->values[v].numel * sizeof(float));
  ir_tensor outs[16];
  ir_interp it = {.m = r->m, .state = state};
  int st = ir_interp_run(&it, r->f, r->inputs, outs);
  CHECK_MSG(st == 0, "case %s: %s", case_name, it.err);
  for (int k = 0; st == 0 && k < r->f->noutputs; k++) {
    const char *name = r->f->outputs[k].name;
    cJSON *file = cJSON_GetObjectItem(gold, name);
    CHECK_MSG(cJSON_IsString(file), "case %s: PyTorch has no gradient for %s", case_name, name);
    if (!cJSON_IsString(file)) continue;
    npy_array want = load(file->valuestring);
    CHECK_MSG(want.numel == shape_numel(outs[k].shape), "case %s: grad %s has %lld elements, "
              "PyTorch's %lld", case_name, name, (long long)shape_numel(outs[k].shape),
              (long long)want.numel);
    int bad = 0;
    for (int64_t i = 0; i < want.numel && i < shape_numel(outs[k].shape); i++) {
      double got = ((float *)outs[k].data)[i], exp = ((float *)want.data)[i];
      if (fabs(got - exp) > ATOL + RTOL * fabs(exp) && bad++ < 3)
        CHECK_MSG(false, "case %s: grad %s[%lld] = %.9g, PyTorch %.9g", case_name, name,
                  (long long)i, got, exp);
    }
    if (!bad) CHECK(true);
    npy_free(&want);
  }
  if (st == 0)
    for (int k = 0; k < r->f->noutputs; k++) ir_tensor_free(&outs[k]);
  free(state);
}

static void rig_free(rig *r) {
  for (int v = 0; v < r->nvars; v++) npy_free(&r->values[v]);
  for (int j = 0; j < r->f->ninputs; j++) ir_tensor_free(&r->inputs[j]);
  ir_module_free(r->m);
}

static const char *in_file(cJSON *c, const char *name) {
  cJSON *x = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "inputs"), name);
  return cJSON_IsString(x) ? x->valuestring : "missing.npy";
}

static int attr_int(cJSON *c, const char *name) {
  return cJSON_GetObjectItem(cJSON_GetObjectItem(c, "attrs"), name)->valueint;
}

static bool has_grad(cJSON *c, const char *name) {
  return cJSON_GetObjectItem(cJSON_GetObjectItem(c, "grads"), name) != NULL;
}

/* A trainable input if PyTorch gives it a gradient, a constant otherwise. */
static int input(rig *r, cJSON *c, const char *name) {
  return param(r, name, in_file(c, name), has_grad(c, name));
}

static int build(rig *r, cJSON *c) {
  const char *o = cJSON_GetObjectItem(c, "op")->valuestring;
  static const struct { const char *name; ir_op op; } unary[] = {
      {"relu", IR_OP_RELU}, {"sigmoid", IR_OP_SIGMOID}, {"tanh", IR_OP_TANH},
      {"softplus", IR_OP_SOFTPLUS}, {"exp", IR_OP_EXP}, {"log", IR_OP_LOG}};
  for (size_t i = 0; i < sizeof unary / sizeof *unary; i++)
    if (!strcmp(o, unary[i].name)) {
      int x = input(r, c, "x");
      return op(r, unary[i].op, 1, &x, NULL);
    }
  if (!strcmp(o, "lrelu")) {
    int x = input(r, c, "x");
    ir_attrs a = {.f = {cJSON_GetObjectItem(cJSON_GetObjectItem(c, "attrs"), "slope")->valuedouble}};
    return op(r, IR_OP_LRELU, 1, &x, &a);
  }
  if (!strcmp(o, "add") || !strcmp(o, "mul") || !strcmp(o, "div")) {
    int a = input(r, c, "a"), b = input(r, c, "b");
    return op2(r, !strcmp(o, "add") ? IR_OP_ADD : !strcmp(o, "mul") ? IR_OP_MUL : IR_OP_DIV, a, b, NULL);
  }
  if (!strcmp(o, "matmul")) {
    int a = input(r, c, "a"), b = input(r, c, "b");
    return op2(r, IR_OP_MATMUL, a, b, NULL);
  }
  if (!strcmp(o, "dense")) {
    int x = input(r, c, "x"), w = input(r, c, "weight"), b = input(r, c, "bias");
    ir_attrs tb = {.i = {0, 1}};
    return op2(r, IR_OP_ADD, op2(r, IR_OP_MATMUL, x, w, &tb), b, NULL);
  }
  if (!strcmp(o, "conv") || !strcmp(o, "deconv")) {
    int x = input(r, c, "x"), w = input(r, c, "weight"), b = input(r, c, "bias");
    ir_attrs k = {.i = {attr_int(c, "k"), attr_int(c, "s"), attr_int(c, "p")}};
    int y = op2(r, !strcmp(o, "conv") ? IR_OP_CONV : IR_OP_DECONV, x, w, &k);
    int64_t d[3] = {r->f->nodes[y].shape.dim[1], 1, 1};
    ir_attrs rs = {.ashape = shape_make(3, d, false)};
    return op2(r, IR_OP_ADD, y, op(r, IR_OP_RESHAPE, 1, &b, &rs), NULL);
  }
  if (!strcmp(o, "batchnorm")) {
    int in[3] = {input(r, c, "x"), input(r, c, "gamma"), input(r, c, "beta")};
    ir_attrs a = {.f = {1e-5}};
    return op(r, IR_OP_BATCHNORM, 3, in, &a);
  }
  if (!strcmp(o, "sum") || !strcmp(o, "mean")) {
    int x = input(r, c, "x");
    cJSON *axes = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "attrs"), "axes"), *ax;
    int64_t mask = 0;
    cJSON_ArrayForEach(ax, axes) mask |= 1LL << ax->valueint;
    ir_attrs a = {.i = {mask, 0}};
    return op(r, !strcmp(o, "sum") ? IR_OP_SUM : IR_OP_MEAN, 1, &x, &a);
  }
  if (!strcmp(o, "concat")) {
    int in[2] = {input(r, c, "a"), input(r, c, "b")};
    ir_attrs a = {.i = {attr_int(c, "axis")}};
    return op(r, IR_OP_CONCAT, 2, in, &a);
  }
  if (!strcmp(o, "bce")) return op2(r, IR_OP_BCE_LOGITS, input(r, c, "logits"), input(r, c, "target"), NULL);
  if (!strcmp(o, "softmax_ce"))
    return op2(r, IR_OP_SOFTMAX_CE, input(r, c, "logits"), int_input(r, "labels", in_file(c, "labels")), NULL);
  if (!strcmp(o, "info_categorical"))
    return op2(r, IR_OP_INFO_CATEGORICAL, input(r, c, "logits"), int_input(r, "c", in_file(c, "c")), NULL);
  if (!strcmp(o, "gaussian_nll")) {
    ir_attrs a = {.f = {1.0}};
    return op2(r, IR_OP_GAUSSIAN_NLL, input(r, c, "mean"), input(r, c, "x"), &a);
  }
  return -1;
}

/* Adam lowered to IR, three steps, against torch.optim.Adam. The loss sum(p * g)
 * has gradient g, fed in as an input each step. */
static void test_adam(cJSON *c) {
  case_name = "adam_3_steps";
  ir_module *m = ir_module_new("adam");
  ir_add_net(m, "T");
  ir_func *f = ir_add_func(m, "train_step", true);
  npy_array p0 = load("adam.param0.npy");
  int pv = ir_add_var(m, "p", VAR_PARAM, IR_F32, shape_make(1, p0.dim, false), 0, (ir_span){0});
  ir_input gin = {.name = "g", .kind = INPUT_DATA, .dtype = IR_F32,
                  .shape = shape_make(1, p0.dim, false)};
  int gi = ir_add_input(m, &gin);
  f->inputs = malloc(sizeof(int));
  f->inputs[0] = gi;
  f->ninputs = 1;
  ir_attrs ia = {.i = {0}, .ashape = gin.shape, .dtype = IR_F32};
  int g = ir_emit_checked(f, 0, IR_OP_INPUT, NULL, 0, &ia);
  ir_attrs la = {.ashape = gin.shape, .dtype = IR_F32, .var = pv};
  int p = ir_emit_checked(f, 0, IR_OP_LOAD, NULL, 0, &la);
  int in[2] = {p, g};
  int prod = ir_emit_checked(f, 0, IR_OP_MUL, in, 2, NULL);
  ir_attrs all = {.i = {1, 0}};
  int loss = ir_emit_checked(f, 0, IR_OP_SUM, &prod, 1, &all);
  cJSON *at = cJSON_GetObjectItem(c, "attrs");
  ir_optim o = {.kind = OPT_ADAM, .lr = cJSON_GetObjectItem(at, "lr")->valuedouble,
                .beta1 = cJSON_GetObjectItem(at, "beta1")->valuedouble,
                .beta2 = cJSON_GetObjectItem(at, "beta2")->valuedouble,
                .eps = cJSON_GetObjectItem(at, "eps")->valuedouble};
  f->steps = calloc(1, sizeof *f->steps);
  f->steps[0] = (ir_step){strdup("s"), 0, loss, malloc(sizeof(int)), 1, o, false, {0}};
  f->steps[0].nets[0] = 0;
  f->nsteps = 1;
  char err[256];
  CHECK(pass_lower_steps(m, err, sizeof err) == 0);
  CHECK(f->steps[0].lowered);
  diag_sink d;
  diag_init(&d);
  CHECK(ir_verify(m, &d));
  diag_free(&d);
  float *state = calloc((size_t)m->state_size, sizeof *state);
  memcpy(state + m->vars[pv].offset, p0.data, (size_t)p0.numel * sizeof(float));
  const char *gfiles[3] = {"adam.grad0.npy", "adam.grad1.npy", "adam.grad2.npy"};
  for (int s = 0; s < 3; s++) {
    npy_array ga = load(gfiles[s]);
    ir_tensor gt = ir_tensor_alloc(IR_F32, gin.shape);
    memcpy(gt.data, ga.data, (size_t)ga.numel * sizeof(float));
    ir_interp it = {.m = m, .state = state};
    CHECK_MSG(ir_interp_run(&it, f, &gt, NULL) == 0, "adam step %d: %s", s, it.err);
    ir_tensor_free(&gt);
    npy_free(&ga);
  }
  struct { const char *var, *file; } cmp[] = {
      {"p", "adam.param3.npy"}, {"p@s.m", "adam.m.npy"}, {"p@s.v", "adam.v.npy"}};
  for (int k = 0; k < 3; k++) {
    int v = ir_find_var(m, cmp[k].var);
    CHECK_MSG(v >= 0, "no variable %s", cmp[k].var);
    if (v < 0) continue;
    npy_array want = load(cmp[k].file);
    for (int64_t i = 0; i < want.numel; i++)
      CHECK_NEAR(state[m->vars[v].offset + i], ((float *)want.data)[i], RTOL, ATOL);
    npy_free(&want);
  }
  int t = ir_find_var(m, "s.t");
  CHECK(t >= 0 && state[m->vars[t].offset] == 3.0f);
  free(state);
  npy_free(&p0);
  ir_module_free(m);
}

/* SGD with momentum and weight decay, two steps of the loss sum(p * g), against the
 * update torch.optim.SGD makes (dampening 0, nesterov off), computed here by hand:
 *   g' = g + wd p;  buf = momentum buf + g' (buf starts at 0);  p -= lr buf */
static void test_sgd(void) {
  case_name = "sgd_momentum";
  ir_module *m = ir_module_new("sgd");
  ir_add_net(m, "T");
  ir_func *f = ir_add_func(m, "train_step", true);
  int64_t three = 3;
  ir_shape s3 = shape_make(1, &three, false);
  int pv = ir_add_var(m, "p", VAR_PARAM, IR_F32, s3, 0, (ir_span){0});
  ir_input gin = {.name = "g", .kind = INPUT_DATA, .dtype = IR_F32, .shape = s3};
  int gi = ir_add_input(m, &gin);
  f->inputs = malloc(sizeof(int));
  f->inputs[0] = gi;
  f->ninputs = 1;
  ir_attrs ia = {.i = {0}, .ashape = s3, .dtype = IR_F32};
  int g = ir_emit_checked(f, 0, IR_OP_INPUT, NULL, 0, &ia);
  ir_attrs la = {.ashape = s3, .dtype = IR_F32, .var = pv};
  int p = ir_emit_checked(f, 0, IR_OP_LOAD, NULL, 0, &la);
  int prod = ir_emit_checked(f, 0, IR_OP_MUL, (int[]){p, g}, 2, NULL);
  ir_attrs all = {.i = {1, 0}};
  int loss = ir_emit_checked(f, 0, IR_OP_SUM, &prod, 1, &all);
  ir_optim o = {.kind = OPT_SGD, .lr = 0.1, .momentum = 0.9, .weight_decay = 0.01};
  f->steps = calloc(1, sizeof *f->steps);
  f->steps[0] = (ir_step){strdup("s"), 0, loss, malloc(sizeof(int)), 1, o, false, {0}};
  f->steps[0].nets[0] = 0;
  f->nsteps = 1;
  char err[256];
  CHECK(pass_lower_steps(m, err, sizeof err) == 0);
  float *state = calloc((size_t)m->state_size, sizeof *state);
  float p0[3] = {1.0f, -2.0f, 0.5f}, gs[2][3] = {{0.3f, -0.1f, 2.0f}, {-1.0f, 0.5f, 0.25f}};
  memcpy(state + m->vars[pv].offset, p0, sizeof p0);
  double pw[3] = {1.0, -2.0, 0.5}, buf[3] = {0, 0, 0};
  for (int s = 0; s < 2; s++) {
    ir_tensor gt = ir_tensor_alloc(IR_F32, s3);
    memcpy(gt.data, gs[s], sizeof gs[s]);
    ir_interp it = {.m = m, .state = state};
    CHECK_MSG(ir_interp_run(&it, f, &gt, NULL) == 0, "sgd step %d: %s", s, it.err);
    ir_tensor_free(&gt);
    for (int i = 0; i < 3; i++) {
      double gd = gs[s][i] + 0.01 * pw[i];
      buf[i] = 0.9 * buf[i] + gd;
      pw[i] -= 0.1 * buf[i];
    }
  }
  int bv = ir_find_var(m, "p@s.m");
  CHECK(bv >= 0);
  for (int i = 0; i < 3; i++) {
    CHECK_NEAR(state[m->vars[pv].offset + i], pw[i], RTOL, ATOL);
    if (bv >= 0) CHECK_NEAR(state[m->vars[bv].offset + i], buf[i], RTOL, ATOL);
  }
  free(state);
  ir_module_free(m);
}

int main(void) {
  test_sgd();
  char *text = read_text(MIGC_GOLDEN_OPS "/cases.json");
  CHECK_MSG(text != NULL, "cannot read %s/cases.json", MIGC_GOLDEN_OPS);
  if (!text) return check_done();
  cJSON *root = cJSON_Parse(text);
  cJSON *c;
  int cases = 0;
  cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases")) {
    case_name = cJSON_GetObjectItem(c, "name")->valuestring;
    if (!strcmp(cJSON_GetObjectItem(c, "op")->valuestring, "adam")) {
      test_adam(c);
      cases++;
      continue;
    }
    rig r;
    rig_init(&r);
    int y = build(&r, c);
    CHECK_MSG(y >= 0, "case %s: op not handled by this test", case_name);
    if (y >= 0) {
      int grads[16];
      differentiate(&r, y, cJSON_GetObjectItem(c, "dy")->valuestring, grads);
      compare(&r, grads, cJSON_GetObjectItem(c, "grads"));
      cases++;
    }
    rig_free(&r);
  }
  CHECK_MSG(cases == 30, "%d of 30 cases run", cases);
  cJSON_Delete(root);
  free(text);
  return check_done();
}
