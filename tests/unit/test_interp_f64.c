/* test_interp_f64.c: the reference interpreter's double-precision mode (ir_interp.f64),
 * which `migc gradcheck` runs so that finite differences are not drowned in float32
 * rounding. Every golden case passes in it, more tightly than float32 need; a hand
 * case shows the precision float32 lacks; every op agrees with its float32 kernel; loads
 * and stores go through state64; ir_interp_run converts inputs and returns f64. */
#include "golden_ops.h"
#include "ir/kernels64.h"

/* The references are float64 results of float64 inputs, both stored as float32: the
 * inputs' rounding (~6e-8 relative) moves a conv's sums by up to ~2e-7, whatever
 * precision computes them. */
#define F64_RTOL 1e-6
#define F64_ATOL 5e-7

static ir_shape sh(bool batched, int rank, ...) {
  int64_t dims[IR_MAX_RANK] = {0};
  va_list ap;
  va_start(ap, rank);
  for (int d = 0; d < rank; d++) dims[d] = va_arg(ap, int);
  va_end(ap);
  return shape_make(rank, dims, batched);
}

/* A tensor of dtype dt (f32, f64 or i32) holding the values that follow (as doubles). */
static ir_tensor tv(ir_dtype dt, ir_shape s, ...) {
  ir_tensor t = ir_tensor_alloc(dt, s);
  va_list ap;
  va_start(ap, s);
  for (int64_t j = 0; j < shape_numel(s); j++) {
    double v = va_arg(ap, double);
    if (dt == IR_F64) ((double *)t.data)[j] = v;
    else if (dt == IR_F32) ((float *)t.data)[j] = (float)v;
    else ((int32_t *)t.data)[j] = (int32_t)v;
  }
  va_end(ap);
  return t;
}

/* Every op of the table has an f64 twin exactly where it has a kernel. */
static void test_table(void) {
  for (int op = 0; op < IR_OP_COUNT; op++)
    CHECK_MSG((ir_ops[op].interp == NULL) == (ir_kernels64[op] == NULL),
              "op %s: kernel %s, f64 twin %s", ir_ops[op].name, ir_ops[op].interp ? "yes" : "no",
              ir_kernels64[op] ? "yes" : "no");
  ir_tensor t = ir_tensor_alloc(IR_F64, sh(false, 1, 3));
  CHECK(t.data && t.dtype == IR_F64);
  if (t.data) ((double *)t.data)[2] = 1; /* 8-byte elements: ASan would see a short block */
  ir_tensor_free(&t);
}

/* ---- precision ------------------------------------------------------------------------- */

/* Appends a node to a hand-built function, running its shape rule as ir_emit would. */
static int add_node(ir_func *f, ir_node n, int nin, ...) {
  va_list ap;
  va_start(ap, nin);
  const ir_node *ptrs[IR_MAX_IN];
  for (int j = 0; j < nin; j++) {
    n.in[j] = va_arg(ap, int);
    ptrs[j] = &f->nodes[n.in[j]];
  }
  va_end(ap);
  n.nin = nin;
  char err[256];
  int bad;
  bool ok = ir_ops[n.op].shape(&n, ptrs, err, sizeof err, &bad);
  CHECK_MSG(ok, "%s", err);
  f->nodes[f->nnodes] = n;
  return f->nnodes++;
}

static int konst(ir_func *f, double v) {
  ir_node k = mk(IR_OP_CONST);
  k.f[0] = v;
  return add_node(f, k, 0);
}

/* x = [1e8, 1, 1, ..., 1] (1001 ones): sum(x) - 1e8 is 1001, but a float holds 100001001
 * only to the nearest 8, so float32 says 1000; and (x + 0.25) - x, elementwise, is
 * 0.25 where a float's 1 + 0.25 survives and 0 where 1e8's ulp of 8 swallows it. */
static void test_precision(void) {
  enum { N = 1002 };
  ir_node nodes[16];
  ir_func f;
  memset(&f, 0, sizeof f);
  f.name = "precision";
  f.nodes = nodes;
  f.nblocks = 1;
  int inputs[1] = {0};
  f.inputs = inputs;
  f.ninputs = 1;
  ir_node in = mk(IR_OP_INPUT);
  in.dtype = IR_F32, in.ashape = sh(false, 1, N);
  int x = add_node(&f, in, 0);
  ir_node sum = mk(IR_OP_SUM);
  sum.i[0] = 1;
  int s = add_node(&f, sum, 1, x);
  int d = add_node(&f, mk(IR_OP_SUB), 2, s, konst(&f, 1e8));
  int xq = add_node(&f, mk(IR_OP_ADD), 2, x, konst(&f, 0.25));
  int back = add_node(&f, mk(IR_OP_SUB), 2, xq, x);
  ir_output outs[2] = {{"ones", d}, {"quarter", back}};
  f.outputs = outs;
  f.noutputs = 2;

  ir_tensor xin = ir_tensor_alloc(IR_F32, sh(false, 1, N));
  float *xs = xin.data;
  xs[0] = 1e8f;
  for (int j = 1; j < N; j++) xs[j] = 1;
  ir_tensor r32[2], r64[2];
  ir_interp it = {0};
  CHECK_MSG(ir_interp_run(&it, &f, &xin, r32) == 0, "%s", it.err);
  it.f64 = true;
  CHECK_MSG(ir_interp_run(&it, &f, &xin, r64) == 0, "%s", it.err);
  CHECK(r32[0].dtype == IR_F32 && r32[1].dtype == IR_F32);
  CHECK(r64[0].dtype == IR_F64 && r64[1].dtype == IR_F64);
  if (r32[0].data && r64[0].data) {
    CHECK(((float *)r32[0].data)[0] == 1000.0f);   /* float32 loses the last one */
    CHECK(((double *)r64[0].data)[0] == 1001.0);   /* double keeps it */
    const float *q32 = r32[1].data;
    const double *q64 = r64[1].data;
    CHECK(q32[0] == 0.0f && q32[1] == 0.25f); /* 1e8 + 0.25 rounds back to 1e8 in float */
    CHECK(q64[0] == 0.25 && q64[1] == 0.25);
  }
  for (int k = 0; k < 2; k++) ir_tensor_free(&r32[k]), ir_tensor_free(&r64[k]);
  ir_tensor_free(&xin);

  /* what gradcheck relies on: a central difference of sum(tanh(x)) with h = 1e-6 gives
   * tanh' to about 1e-10 in double; float32 cannot even represent x + h */
  ir_interp i64 = {.f64 = true};
  double x0 = 0.3, h = 1e-6, fx[2];
  ir_node th = mk(IR_OP_TANH);
  th.nin = 1, th.dtype = IR_F32, th.shape = sh(false, 1, 1);
  for (int k = 0; k < 2; k++) {
    ir_tensor xt = tv(IR_F64, sh(false, 1, 1), x0 + (k ? -h : h)), yt;
    const ir_tensor *args[1] = {&xt};
    CHECK_MSG(ir_interp_node(&i64, &th, args, &yt) == 0, "%s", i64.err);
    fx[k] = yt.data ? ((double *)yt.data)[0] : NAN;
    ir_tensor_free(&xt), ir_tensor_free(&yt);
  }
  double want = 1 - tanh(x0) * tanh(x0);
  CHECK_NEAR((fx[0] - fx[1]) / (2 * h), want, 1e-8, 0);
}

/* ---- every op in both modes ----------------------------------------------------------- */

static uint64_t lcg = 99;
static double rnd(void) { /* uniform in [-1, 1) */
  lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
  return (double)(lcg >> 11) / 9007199254740992.0 * 2 - 1;
}
static ir_tensor trand(ir_shape s, double lo, double hi) {
  ir_tensor t = ir_tensor_alloc(IR_F32, s);
  for (int64_t j = 0; j < shape_numel(s); j++)
    ((float *)t.data)[j] = (float)(lo + (hi - lo) * (rnd() + 1) / 2);
  return t;
}

/* Runs n on the operands in float32 and in f64 mode: the f64 result is an IR_F64 tensor
 * (or i32 where the IR says so) that matches the float32 one to float precision. */
static void both(const char *what, ir_node n, int nin, ...) {
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
  n.nin = nin;
  char err[256];
  int bad;
  if (!ir_ops[n.op].shape(&n, ptrs, err, sizeof err, &bad)) {
    CHECK_MSG(false, "%s: %s", what, err);
    return;
  }
  ir_interp i32 = {.seed = 1}, i64 = {.seed = 1, .f64 = true};
  ir_tensor y32, y64;
  CHECK_MSG(ir_interp_node(&i32, &n, in, &y32) == 0, "%s: %s", what, i32.err);
  CHECK_MSG(ir_interp_node(&i64, &n, in, &y64) == 0, "%s: %s", what, i64.err);
  if (y32.data && y64.data) {
    CHECK_MSG(y64.dtype == (n.dtype == IR_F32 ? IR_F64 : IR_I32), "%s: dtype %d", what,
              (int)y64.dtype);
    CHECK_MSG(shape_equal(y32.shape, y64.shape), "%s: shapes differ", what);
    int64_t count = shape_numel(y32.shape);
    int differ = 0;
    for (int64_t j = 0; j < count; j++) {
      double a = n.dtype == IR_F32 ? ((float *)y32.data)[j] : ((int32_t *)y32.data)[j];
      double b = n.dtype == IR_F32 ? ((double *)y64.data)[j] : ((int32_t *)y64.data)[j];
      if (!(fabs(a - b) <= 1e-6 + 1e-6 * fabs(b))) differ++;
    }
    CHECK_MSG(differ == 0, "%s: %d of %lld elements differ between f32 and f64", what, differ,
              (long long)count);
  }
  ir_tensor_free(&y32), ir_tensor_free(&y64);
}

static void test_all_ops(void) {
  ir_tensor x = trand(sh(true, 2, 4, 6), -2, 2), y = trand(sh(true, 2, 4, 6), -2, 2);
  ir_tensor pos = trand(sh(true, 2, 4, 6), 0.1, 3), row = trand(sh(false, 1, 6), -1, 1);
  static const ir_op un[] = {IR_OP_NEG,      IR_OP_RELU, IR_OP_LRELU, IR_OP_TANH, IR_OP_SIGMOID,
                             IR_OP_SOFTPLUS, IR_OP_EXP,  IR_OP_SOFTMAX, IR_OP_SIN,
                             IR_OP_COS};
  for (size_t j = 0; j < sizeof un / sizeof *un; j++) {
    ir_node n = mk(un[j]);
    n.f[0] = 0.2;
    both(ir_ops[un[j]].name, n, 1, &x);
  }
  both("log", mk(IR_OP_LOG), 1, &pos);
  both("sqrt", mk(IR_OP_SQRT), 1, &pos);
  both("add", mk(IR_OP_ADD), 2, &x, &row);
  both("sub", mk(IR_OP_SUB), 2, &row, &x);
  both("mul", mk(IR_OP_MUL), 2, &x, &y);
  both("div", mk(IR_OP_DIV), 2, &x, &pos);
  ir_node mm = mk(IR_OP_MATMUL);
  mm.i[0] = 1;
  both("matmul ta", mm, 2, &x, &y);
  ir_node k = mk(IR_OP_CONST);
  k.f[0] = 0.1;
  both("const", k, 0);
  ir_node r = mk(IR_OP_RESHAPE);
  r.ashape = sh(true, 3, 4, 3, 2);
  both("reshape", r, 1, &x);
  ir_node cat = mk(IR_OP_CONCAT);
  cat.i[0] = 1;
  both("concat", cat, 3, &x, &y, &pos);
  ir_node sl = mk(IR_OP_SLICE);
  sl.i[0] = 1, sl.i[1] = 2, sl.i[2] = 5;
  both("slice", sl, 1, &x);
  ir_node us = mk(IR_OP_UNSLICE);
  us.i[0] = 1, us.i[1] = 3, us.i[2] = 9;
  us.ashape = sh(true, 2, 4, 10);
  both("unslice", us, 1, &x);
  ir_node ex = mk(IR_OP_EXPAND);
  ex.ashape = sh(true, 3, 5, 4, 6);
  both("expand", ex, 1, &x);
  static const ir_op red[] = {IR_OP_SUM, IR_OP_MEAN, IR_OP_VAR};
  for (size_t j = 0; j < 3; j++) {
    ir_node n = mk(red[j]);
    n.i[0] = 1;
    both(ir_ops[red[j]].name, n, 1, &x);
  }
  both("relu_grad", mk(IR_OP_RELU_GRAD), 2, &x, &y);
  both("maximum", mk(IR_OP_MAXIMUM), 2, &x, &y);
  both("max_grad", mk(IR_OP_MAX_GRAD), 3, &x, &y, &pos);
  ir_tensor on = tv(IR_F32, sh(false, 0), 1.0), off = tv(IR_F32, sh(false, 0), 0.0);
  both("select", mk(IR_OP_SELECT), 3, &on, &x, &y);
  both("select", mk(IR_OP_SELECT), 3, &off, &x, &y);
  ir_tensor_free(&on), ir_tensor_free(&off);
  ir_node lg = mk(IR_OP_LRELU_GRAD);
  lg.f[0] = 0.2;
  both("lrelu_grad", lg, 2, &x, &y);
  both("bce_logits", mk(IR_OP_BCE_LOGITS), 2, &x, &pos);
  ir_node gn = mk(IR_OP_GAUSSIAN_NLL);
  gn.f[0] = 0.5;
  both("gaussian_nll", gn, 2, &x, &y);

  ir_tensor labels = tv(IR_I32, sh(true, 1, 4), 0.0, 5.0, 2.0, 3.0);
  both("softmax_ce", mk(IR_OP_SOFTMAX_CE), 2, &x, &labels);
  both("info_categorical", mk(IR_OP_INFO_CATEGORICAL), 2, &x, &labels);
  ir_node oh = mk(IR_OP_ONEHOT);
  oh.i[0] = 6;
  both("onehot", oh, 1, &labels);
  ir_tensor seed = tv(IR_I32, sh(false, 1, 2), 42.0, 3.0);
  ir_node dr = mk(IR_OP_DROPOUT);
  dr.f[0] = 0.5, dr.i[0] = 1;
  both("dropout", dr, 2, &x, &seed); /* the same mask */
  ir_tensor ints = tv(IR_I32, sh(false, 1, 3), 1.0, 2.0, 3.0);
  ir_node ri = mk(IR_OP_RESHAPE);
  ri.ashape = sh(false, 2, 3, 1);
  both("reshape i32", ri, 1, &ints); /* stays i32 */
  ir_node ci = mk(IR_OP_CONCAT);
  ci.i[0] = 0;
  both("concat i32", ci, 2, &ints, &ints);

  ir_tensor img = trand(sh(true, 4, 2, 3, 6, 5), -1, 1), w = trand(sh(false, 4, 4, 3, 3, 3), -1, 1);
  ir_tensor wd = trand(sh(false, 4, 3, 4, 3, 3), -1, 1), g = trand(sh(false, 1, 3), 0.5, 2);
  ir_tensor b = trand(sh(false, 1, 3), -1, 1), var = trand(sh(false, 1, 3), 0.5, 2);
  ir_node cv = mk(IR_OP_CONV);
  cv.i[0] = 3, cv.i[1] = 2, cv.i[2] = 1;
  both("conv", cv, 2, &img, &w);
  ir_node dc = cv;
  dc.op = IR_OP_DECONV;
  both("deconv", dc, 2, &img, &wd);
  ir_tensor dy = trand(sh(true, 4, 2, 4, 3, 3), -1, 1); /* conv's output: [2,4,3,3] */
  ir_node gx = cv, gw = cv;
  gx.op = IR_OP_CONV_GRAD_X, gx.ashape = img.shape;
  gw.op = IR_OP_CONV_GRAD_W, gw.ashape = w.shape;
  both("conv_grad_x", gx, 2, &dy, &w);
  both("conv_grad_w", gw, 2, &img, &dy);
  ir_node bn = mk(IR_OP_BATCHNORM);
  bn.f[0] = 1e-5;
  both("batchnorm", bn, 3, &img, &g, &b);
  ir_node bi = bn;
  bi.op = IR_OP_BATCHNORM_INFER;
  both("batchnorm_infer", bi, 5, &img, &g, &b, &b, &var);
  ir_node bg = bn;
  bg.op = IR_OP_BATCHNORM_GRAD;
  both("batchnorm_grad", bg, 3, &img, &g, &img);
  bg.op = IR_OP_BATCHNORM_GRAD_GAMMA;
  both("batchnorm_grad_gamma", bg, 2, &img, &img);
  ir_tensor *all[] = {&x,    &y,    &pos, &row, &labels, &seed, &ints, &img,
                      &w,    &wd,   &g,   &b,   &var,    &dy};
  for (size_t j = 0; j < sizeof all / sizeof *all; j++) ir_tensor_free(all[j]);
}

/* ---- state, inputs and mode checks ------------------------------------------------------ */

static void test_state64(void) {
  ir_var vars[2];
  memset(vars, 0, sizeof vars);
  vars[0].name = "w";
  vars[0].dtype = IR_F32;
  vars[0].shape = sh(false, 1, 3);
  vars[0].offset = 0;
  vars[1].name = "step";
  vars[1].dtype = IR_I32;
  vars[1].shape = sh(false, 1, 1);
  vars[1].offset = 16;
  ir_module m;
  memset(&m, 0, sizeof m);
  m.vars = vars;
  m.nvars = 2;
  m.state_size = 17;
  double state[17] = {1 + 1e-12, 2, 3};
  state[16] = 7; /* an i32 variable holds its values */
  ir_interp it = {.m = &m, .f64 = true, .state64 = state}; /* no float state at all */

  ir_node ld = mk(IR_OP_LOAD);
  ld.var = 0, ld.dtype = IR_F32, ld.ashape = vars[0].shape;
  ir_tensor w;
  CHECK(ir_ops[IR_OP_LOAD].shape(&ld, NULL, NULL, 0, NULL));
  CHECK_MSG(ir_interp_node(&it, &ld, NULL, &w) == 0, "%s", it.err);
  CHECK(w.dtype == IR_F64 && w.data && ((double *)w.data)[0] == 1 + 1e-12 &&
        ((double *)w.data)[2] == 3);
  ir_node li = mk(IR_OP_LOAD);
  li.var = 1, li.dtype = IR_I32, li.ashape = vars[1].shape;
  CHECK(ir_ops[IR_OP_LOAD].shape(&li, NULL, NULL, 0, NULL));
  ir_tensor s;
  CHECK_MSG(ir_interp_node(&it, &li, NULL, &s) == 0, "%s", it.err);
  CHECK(s.dtype == IR_I32 && s.data && ((int32_t *)s.data)[0] == 7);

  /* stores: an f32 given as f32 (converted) and as f64, and an i32 */
  ir_node st = mk(IR_OP_STORE);
  st.var = 0, st.nin = 1, st.dtype = IR_F32, st.shape = vars[0].shape;
  ir_tensor nw = tv(IR_F64, sh(false, 1, 3), -1.0 / 3, -2.0, -3.0), out;
  const ir_tensor *args[1] = {&nw};
  CHECK_MSG(ir_interp_node(&it, &st, args, &out) == 0, "%s", it.err);
  CHECK(state[0] == -1.0 / 3 && state[1] == -2 && state[2] == -3 && state[3] == 0);
  CHECK(out.dtype == IR_F64 && out.data && ((double *)out.data)[0] == -1.0 / 3);
  ir_tensor_free(&out);
  ir_tensor nf = tv(IR_F32, sh(false, 1, 3), 0.5, 0.25, 0.125);
  args[0] = &nf;
  CHECK_MSG(ir_interp_node(&it, &st, args, &out) == 0, "%s", it.err);
  CHECK(state[0] == 0.5 && state[1] == 0.25 && state[2] == 0.125);
  ir_tensor_free(&out);
  ir_node sti = mk(IR_OP_STORE);
  sti.var = 1, sti.nin = 1, sti.dtype = IR_I32, sti.shape = vars[1].shape;
  ir_tensor ni = tv(IR_I32, sh(false, 1, 1), 8.0);
  args[0] = &ni;
  CHECK_MSG(ir_interp_node(&it, &sti, args, &out) == 0, "%s", it.err);
  CHECK(state[16] == 8 && out.dtype == IR_I32 && ((int32_t *)out.data)[0] == 8);
  ir_tensor_free(&out);

  /* f64 mode without state64 has nothing to load, even with a float state */
  float fstate[17] = {0};
  ir_interp no64 = {.m = &m, .f64 = true, .state = fstate};
  CHECK(ir_interp_node(&no64, &ld, NULL, &out) != 0 && out.data == NULL);
  CHECK_STR(no64.err, "load: no module state to access");
  ir_tensor *all[] = {&w, &s, &nw, &nf, &ni};
  for (size_t j = 0; j < sizeof all / sizeof *all; j++) ir_tensor_free(all[j]);
}

/* A hand-built train_step in f64 mode: inputs as f32 and as f64, an i32 input, a store
 * seen by a load of the next block, outputs in f64. */
static void test_run64(void) {
  ir_var var;
  memset(&var, 0, sizeof var);
  var.name = "w";
  var.dtype = IR_F32;
  var.shape = sh(false, 1, 2);
  ir_module m;
  memset(&m, 0, sizeof m);
  m.vars = &var;
  m.nvars = 1;
  m.state_size = 2;
  double state[2] = {0.1, 0.2};
  ir_interp it = {.m = &m, .f64 = true, .state64 = state};

  ir_node nodes[16];
  ir_func f;
  memset(&f, 0, sizeof f);
  f.name = "train_step";
  f.nodes = nodes;
  f.nblocks = 2;
  int inputs[2] = {0, 1};
  f.inputs = inputs;
  f.ninputs = 2;
  ir_node in = mk(IR_OP_INPUT);
  in.dtype = IR_F32, in.ashape = sh(true, 2, 2, 2);
  int x = add_node(&f, in, 0);
  ir_node ci = mk(IR_OP_INPUT);
  ci.dtype = IR_I32, ci.ashape = sh(true, 1, 2), ci.i[0] = 1;
  int c = add_node(&f, ci, 0);
  ir_node ld = mk(IR_OP_LOAD);
  ld.var = 0, ld.dtype = IR_F32, ld.ashape = var.shape;
  int w = add_node(&f, ld, 0);
  ir_node oh = mk(IR_OP_ONEHOT);
  oh.i[0] = 2;
  int o = add_node(&f, oh, 1, c);
  int xw = add_node(&f, mk(IR_OP_ADD), 2, x, w);
  int h = add_node(&f, mk(IR_OP_MUL), 2, xw, o);
  ir_node mean0 = mk(IR_OP_MEAN);
  mean0.i[0] = 1;
  int mh = add_node(&f, mean0, 1, h);
  ir_node st = mk(IR_OP_STORE);
  st.var = 0;
  add_node(&f, st, 1, mh);
  ld.block = 1;
  int w2 = add_node(&f, ld, 0);
  ir_output outs[2] = {{"h", h}, {"w2", w2}};
  f.outputs = outs;
  f.noutputs = 2;

  /* x = [[1/3, 1], [2, 1e-9]], codes (1, 0): h = (x + w) * onehot =
   * [[0, 1.2], [2.1, 0]]; the mean over the batch, [1.05, 0.6], is stored and reloaded */
  for (int as64 = 0; as64 < 2; as64++) {
    state[0] = 0.1, state[1] = 0.2;
    ir_tensor ins[2] = {tv(as64 ? IR_F64 : IR_F32, sh(true, 2, 2, 2), 1.0 / 3, 1.0, 2.0, 1e-9),
                        tv(IR_I32, sh(true, 1, 2), 1.0, 0.0)};
    ir_tensor res[2];
    CHECK_MSG(ir_interp_run(&it, &f, ins, res) == 0, "%s", it.err);
    if (res[0].data && res[1].data) {
      CHECK(res[0].dtype == IR_F64 && res[1].dtype == IR_F64);
      const double *hv = res[0].data, *wv = res[1].data;
      CHECK(hv[0] == 0 && hv[3] == 0);
      CHECK_NEAR(hv[1], 1.2, 1e-15, 0);
      CHECK_NEAR(hv[2], 2.1, 1e-15, 0);
      CHECK_NEAR(wv[0], 1.05, 1e-15, 0);
      CHECK_NEAR(wv[1], 0.6, 1e-15, 0);
      CHECK(state[0] == wv[0] && state[1] == wv[1]);
    }
    ir_tensor_free(&res[0]), ir_tensor_free(&res[1]);
    ir_tensor_free(&ins[0]), ir_tensor_free(&ins[1]);
  }

  /* an f64 input outside f64 mode is refused; so is an f64 operand */
  float fstate[2] = {0.1f, 0.2f};
  ir_interp i32 = {.m = &m, .state = fstate};
  ir_tensor ins[2] = {tv(IR_F64, sh(true, 2, 2, 2), 1.0, 1.0, 1.0, 1.0),
                      tv(IR_I32, sh(true, 1, 2), 1.0, 0.0)};
  ir_tensor res[2];
  CHECK(ir_interp_run(&i32, &f, ins, res) != 0 && res[0].data == NULL);
  CHECK_STR(i32.err, "node 0 (input): input 0 is a f64 [2,2], expected a f32 [2,2]");
  ir_node add = mk(IR_OP_ADD);
  add.nin = 2, add.dtype = IR_F32, add.shape = sh(true, 2, 2, 2);
  const ir_tensor *args[2] = {&ins[0], &ins[0]};
  ir_tensor out;
  CHECK(ir_interp_node(&i32, &add, args, &out) != 0 && out.data == NULL);
  CHECK_STR(i32.err, "add: operand 0 is an f64 tensor, outside f64 mode");
  /* in f64 mode an i32 input where the IR wants f32 is still refused */
  ins[0].dtype = IR_I32;
  CHECK(ir_interp_run(&it, &f, ins, res) != 0);
  CHECK_STR(it.err, "node 0 (input): input 0 is a i32 [2,2], expected a f32 [2,2]");
  ins[0].dtype = IR_F64;
  ir_tensor_free(&ins[0]), ir_tensor_free(&ins[1]);
}

int main(void) {
  test_table();
  interp.f64 = true;
  golden_rtol = F64_RTOL, golden_atol = F64_ATOL;
  golden_run_all();
  test_precision();
  test_all_ops();
  test_state64();
  test_run64();
  return check_done();
}
