/* fuzz_abi.c: a compiled model's C ABI (runtime/migc.h, docs/abi.md) driven by
 * arbitrary calls. The model (a small InfoGAN with a data input, a categorical and a
 * uniform code) is compiled into a shared object once per process and opened with
 * dlopen, as a host would; each input is then a script of up to 24 calls on a fresh
 * model: training steps on data and codes taken from the input's bytes (NaN, huge,
 * out of range), migc_run with wrong counts and indices, table lookups with any index,
 * draws into buffers of any size, checkpoints saved and mutated by the input before
 * loading, files that are the input itself, generate and encode with wrong sizes.
 * Besides what ASan and UBSan catch, every call must keep these promises:
 * - its status is one of migc_status's values;
 * - a failure sets migc_last_error to a sentence and leaves the state, step and seed
 *   as they were (a checkpoint that fails to load changes nothing);
 * - a training step that succeeds counts one step, and its metrics are finite when
 *   its codes lay in their priors' ranges and the state it started from was finite
 *   (an earlier step on raw codes, or a checkpoint the input edited, may leave NaN in
 *   the weights, and NaN weights rightly give NaN losses);
 * - a table entry that is returned lies inside the state and has a rank in range. */
#include "codegen/codegen.h"
#include "frontend/frontend.h"
#include "passes/passes.h"
#include "runtime/migc.h"

#include "fuzz_input.h"

#include <dlfcn.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

static const char model_text[] =
    "model fuzzabi\n"
    "input x : [16] range [0, 1]\n"
    "latent z : uniform(-1, 1) [4]\n"
    "code c : categorical(3)\n"
    "code s : uniform(-1, 1) [1]\n"
    "net G(z, c, s) {\n  return sigmoid(dense(relu(dense(concat(z, onehot(c), s), 8)), 16))\n}\n"
    "net D(v) {\n  h = lrelu(dense(v, 8), 0.1)\n  return dense(h, 1), dense(h, 3), dense(h, 1)\n}\n"
    "net Q(v) {\n  return D(v)[1], D(v)[2]\n}\n"
    "train batch 4 {\n"
    "  fake = G(z, c, s)\n"
    "  d, cl, sm = D(fake)\n"
    "  mi = info_categorical(c, cl) + info_gaussian(s, sm)\n"
    "  report mi\n"
    "  step disc(D) : minimize bce(D(x)[0], 1) + bce(d, 0) - mi with adam(lr=1e-3, beta1=0.5)\n"
    "  step gen(G) : minimize bce(D(fake)[0], 1) - mi with adam(lr=1e-3, beta1=0.5)\n"
    "}\n"
    "generate image = G(z, c, s)\n"
    "encode logits, mean = Q(x)\n";

#define F(ret, name, ...) ret (*name)(__VA_ARGS__)
static struct {
  F(migc_status, create, uint64_t, migc_model **, char *, size_t);
  F(void, destroy, migc_model *);
  F(const char *, last_error, const migc_model *);
  F(float *, state, migc_model *);
  F(int64_t, state_size, const migc_model *);
  F(int64_t, step, const migc_model *);
  F(uint64_t, seed, const migc_model *);
  F(int, var_count, const migc_model *);
  F(migc_status, var, migc_model *, int, migc_var_info *);
  F(int, input_count, const migc_model *);
  F(migc_status, input, migc_model *, int, migc_input_info *);
  F(int, function_count, const migc_model *);
  F(migc_status, function, migc_model *, int, migc_function_info *);
  F(int, function_find, const migc_model *, const char *);
  F(migc_status, function_output, migc_model *, int, int, migc_output_info *);
  F(migc_status, draw_input, migc_model *, int, uint32_t, uint64_t, void *, size_t);
  F(migc_status, run, migc_model *, int, const void *const *, int, void *const *, int);
  F(migc_status, train_step, migc_model *, const float *, size_t, const void *const *, int,
    float *, int);
  F(migc_status, generate, migc_model *, const void *const *, int, float *, size_t);
  F(migc_status, encode, migc_model *, const float *, size_t, void *const *, int);
  F(migc_status, save, migc_model *, const char *);
  F(migc_status, load, migc_model *, const char *);
} abi;
#undef F

static char dir[64];

/* What open_model and the checkpoints left in dir. */
static void remove_dir(void) {
  const char *files[] = {"m.o", "libfuzzabi.so", "ckpt.safetensors"};
  char path[128];
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    unlink(path);
  }
  rmdir(dir);
}

/* Compiles model_text into dir/libfuzzabi.so and looks the ABI up in it. */
static void open_model(void) {
  setenv("MIGC_RUNTIME_ARCHIVE", MIGC_RT_PIC, 0); /* the build's, wherever this runs */
  snprintf(dir, sizeof dir, "/tmp/migc-fuzz-abi-XXXXXX");
  if (!mkdtemp(dir)) abort();
  atexit(remove_dir);
  diag_sink d;
  diag_init(&d);
  ast_file *ast = parse_source(&d, "fuzzabi.mig", model_text);
  elab_options eo = {.batch = 4};
  ir_module *m = ast && !d.nerrors ? elaborate(ast, &eo, &d) : NULL;
  char err[1024], obj[128], so[128];
  if (!m || pass_lower_steps(m, err, sizeof err)) {
    diag_print(&d, stderr, false);
    abort();
  }
  snprintf(obj, sizeof obj, "%s/m.o", dir);
  snprintf(so, sizeof so, "%s/libfuzzabi.so", dir);
  cg_model_info info = {7, "fuzzabi.mig", ""};
  cg_stats cs;
  if (cg_emit_object(m, NULL, &info, obj, &cs, err, sizeof err) ||
      cg_link_shared(obj, so, err, sizeof err)) {
    fprintf(stderr, "fuzz_abi: %s\n", err);
    abort();
  }
  ir_module_free(m);
  ast_free(ast);
  diag_free(&d);
  void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    fprintf(stderr, "fuzz_abi: %s\n", dlerror());
    abort();
  }
#define SYM(f) *(void **)&abi.f = dlsym(h, "migc_" #f)
  SYM(create), SYM(destroy), SYM(last_error), SYM(state), SYM(state_size), SYM(step);
  SYM(seed), SYM(var_count), SYM(var), SYM(input_count), SYM(input), SYM(function_count);
  SYM(function), SYM(function_find), SYM(function_output), SYM(draw_input), SYM(run);
  SYM(train_step), SYM(generate), SYM(encode), SYM(save), SYM(load);
#undef SYM
  if (!abi.load || !abi.create) abort();
}

/* The input, read from the front; zeros once it runs out. */
typedef struct {
  const uint8_t *p;
  size_t n;
} cursor;

static uint32_t take(cursor *c, int bytes) {
  uint32_t v = 0;
  for (int i = 0; i < bytes; i++) v = v << 8 | (c->n ? (c->n--, *c->p++) : 0);
  return v;
}

/* A count near `want`: itself most often, else off by a little or anything. */
static int64_t near(cursor *c, int64_t want) {
  uint32_t k = take(c, 1);
  if (k < 160) return want;
  if (k < 220) return want + (int64_t)(k % 5) - 2;
  return (int64_t)take(c, 2) - 8;
}

/* n values of 4 bytes: in [0, 1) most often (valid data and uniform codes; 0 for a
 * categorical code read as an integer), else the input's raw bits (NaN, inf, huge,
 * negative, or integers for codes); returns whether they were raw. */
static bool fill(cursor *c, void *buf, int64_t n) {
  uint32_t *u = buf;
  bool raw = take(c, 1) >= 200;
  for (int64_t i = 0; i < n; i++) {
    if (raw) u[i] = take(c, 4);
    else ((float *)buf)[i] = (float)(take(c, 1) % 100) / 100.0f;
  }
  return raw;
}

static void check_status(migc_status st) {
  if ((int)st < MIGC_OK || (int)st > MIGC_E_CPU) abort();
}

typedef struct {
  float *state;
  int64_t step;
  uint64_t seed;
} snapshot;

static snapshot snap(migc_model *m) {
  int64_t n = abi.state_size(m);
  snapshot s = {malloc((size_t)n * 4 + 4), abi.step(m), abi.seed(m)};
  memcpy(s.state, abi.state(m), (size_t)n * 4);
  return s;
}

/* A failed call changed nothing and said why. */
static void failed_cleanly(migc_model *m, const snapshot *before) {
  const char *e = abi.last_error(m);
  if (!e || !*e) abort();
  if (abi.step(m) != before->step || abi.seed(m) != before->seed) abort();
  if (memcmp(before->state, abi.state(m), (size_t)abi.state_size(m) * 4)) abort();
}

/* Room for every input and output of function f, sized by the tables. */
static void **buffers(migc_model *m, int f, bool outputs, int *count) {
  migc_function_info fi;
  if (abi.function(m, f, &fi) != MIGC_OK) abort();
  *count = outputs ? fi.noutputs : fi.ninputs;
  void **b = calloc((size_t)*count + 1, sizeof *b);
  for (int j = 0; j < *count; j++) {
    int64_t numel;
    if (outputs) {
      migc_output_info o;
      if (abi.function_output(m, f, j, &o) != MIGC_OK) abort();
      numel = o.numel;
    } else {
      migc_input_info x;
      if (abi.input(m, fi.inputs[j], &x) != MIGC_OK) abort();
      numel = x.numel;
    }
    b[j] = calloc((size_t)numel + 1, 4);
  }
  return b;
}

static void free_buffers(void **b, int n) {
  for (int j = 0; j < n; j++) free(b[j]);
  free(b);
}

static void op_train(migc_model *m, cursor *c) {
  int f = abi.function_find(m, "train_step"), nin, nout;
  void **in = buffers(m, f, false, &nin), **out = buffers(m, f, true, &nout);
  migc_function_info fi;
  abi.function(m, f, &fi);
  int64_t ndata = 0;
  int data_j = 0;
  bool raw = false; /* values outside the priors' ranges may make any loss infinite */
  for (int j = 0; j < nin; j++) {
    migc_input_info x;
    abi.input(m, fi.inputs[j], &x);
    if (x.kind == MIGC_INPUT_DATA) ndata = x.numel, data_j = j;
    if (x.dtype != MIGC_I32) {
      raw |= fill(c, in[j], x.numel);
    } else if (take(c, 1) >= 200) {
      fill(c, in[j], x.numel); /* float bits or raw ones: codes out of [0, K) */
      raw = true;
    } else {
      for (int64_t e = 0; e < x.numel; e++) ((int32_t *)in[j])[e] = (int32_t)(take(c, 1) % 3);
    }
  }
  bool given = take(c, 1) & 1;
  int nlat = given ? (int)near(c, nin) : 0;
  if (nlat < 0 || nlat > nin) nlat = nin; /* the host's array holds nin entries */
  float metrics[8];
  int nmet = (int)(take(c, 1) % 6);
  snapshot s = snap(m);
  migc_status st = abi.train_step(m, in[data_j], (size_t)near(c, ndata), given ? (const void *const *)in : NULL,
                                  nlat, metrics, nmet);
  check_status(st);
  if (st == MIGC_OK) {
    if (abi.step(m) != s.step + 1) abort();
    bool finite_state = true;
    for (int64_t q = 0; q < abi.state_size(m) && finite_state; q++)
      finite_state = isfinite(s.state[q]);
    for (int k = 0; k < nmet && k < nout && !(raw && given) && finite_state; k++)
      if (!isfinite(metrics[k])) abort();
  } else {
    failed_cleanly(m, &s);
  }
  free(s.state);
  free_buffers(in, nin);
  free_buffers(out, nout);
}

static void op_run(migc_model *m, cursor *c) {
  int nf = abi.function_count(m), f = (int)(take(c, 1) % (uint32_t)(nf + 2)) - 1;
  int real = f >= 0 && f < nf ? f : 0, nin, nout;
  void **in = buffers(m, real, false, &nin), **out = buffers(m, real, true, &nout);
  for (int j = 0; j < nin; j++) {
    migc_function_info fi;
    migc_input_info x;
    abi.function(m, real, &fi);
    abi.input(m, fi.inputs[j], &x);
    fill(c, in[j], x.numel);
  }
  int ni = (int)near(c, nin), no = (int)near(c, nout);
  if (ni > nin) ni = nin;
  if (no > nout) no = nout;
  snapshot s = snap(m);
  migc_status st = abi.run(m, f, (const void *const *)in, ni, out, no);
  check_status(st);
  if (st != MIGC_OK) failed_cleanly(m, &s);
  free(s.state);
  free_buffers(in, nin);
  free_buffers(out, nout);
}

static void op_tables(migc_model *m, cursor *c) {
  int i = (int)take(c, 1) - 8, k = (int)take(c, 1) - 8;
  migc_var_info v;
  migc_status st = abi.var(m, i, &v);
  check_status(st);
  if (st == MIGC_OK && (v.rank < 0 || v.rank > MIGC_MAX_RANK || v.offset < 0 ||
                        v.offset + v.numel > abi.state_size(m)))
    abort();
  migc_input_info x;
  check_status(st = abi.input(m, i, &x));
  if (st == MIGC_OK && (x.rank < 0 || x.rank > MIGC_MAX_RANK || x.numel < 0)) abort();
  migc_function_info fi;
  check_status(abi.function(m, i, &fi));
  migc_output_info o;
  check_status(st = abi.function_output(m, i, k, &o));
  if (st == MIGC_OK && (o.rank < 0 || o.rank > MIGC_MAX_RANK)) abort();
  char name[16];
  for (int j = 0; j < 15; j++) name[j] = (char)take(c, 1);
  name[15] = 0;
  int f = abi.function_find(m, name);
  if (f < -1 || f >= abi.function_count(m)) abort();
  if (f < 0 && !*abi.last_error(m)) abort();
}

static void op_draw(migc_model *m, cursor *c) {
  int i = (int)take(c, 1) % 8 - 2;
  migc_input_info x;
  int64_t numel = abi.input(m, i < 0 ? 0 : i, &x) == MIGC_OK ? x.numel : 4;
  size_t bytes = (size_t)near(c, numel * 4);
  if ((int64_t)bytes < 0 || bytes > (size_t)numel * 4 + 64) bytes = (size_t)numel * 4;
  void *buf = calloc(bytes + 4, 1);
  check_status(abi.draw_input(m, i, take(c, 1), take(c, 2), buf, bytes));
  free(buf);
}

/* A checkpoint of this model, some bytes changed by the input, loaded back. */
static void op_checkpoint(migc_model *m, cursor *c) {
  char path[128];
  snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
  migc_status st = abi.save(m, path);
  check_status(st);
  if (st != MIGC_OK) return;
  FILE *fp = fopen(path, "rb");
  if (!fp) abort();
  uint8_t *buf = malloc(1 << 16);
  size_t n = fread(buf, 1, 1 << 16, fp);
  fclose(fp);
  int edits = (int)(take(c, 1) % 8);
  for (int e = 0; e < edits && n; e++) {
    size_t at = take(c, 2) % (uint32_t)n;
    buf[at] ^= (uint8_t)take(c, 1);
  }
  if (take(c, 1) < 32) n = take(c, 2) % (n + 1); /* truncated */
  snapshot s = snap(m);
  st = abi.load(m, fuzz_file(buf, n));
  check_status(st);
  if (st != MIGC_OK) failed_cleanly(m, &s);
  free(s.state);
  free(buf);
}

static void op_generate_encode(migc_model *m, cursor *c) {
  int f = abi.function_find(m, "generate"), nout, nin;
  void **out = buffers(m, f, true, &nout);
  migc_output_info o;
  abi.function_output(m, f, 0, &o);
  size_t floats = (size_t)near(c, o.numel);
  if ((int64_t)floats < 0 || floats > (size_t)o.numel) floats = (size_t)o.numel;
  check_status(abi.generate(m, NULL, (int)(take(c, 1) % 2), out[0], floats));
  free_buffers(out, nout);
  f = abi.function_find(m, "encode");
  void **in = buffers(m, f, false, &nin);
  out = buffers(m, f, true, &nout);
  migc_input_info x;
  migc_function_info fi;
  abi.function(m, f, &fi);
  abi.input(m, fi.inputs[0], &x);
  fill(c, in[0], x.numel);
  size_t n = (size_t)near(c, x.numel);
  if ((int64_t)n < 0 || n > (size_t)x.numel) n = (size_t)x.numel;
  int no = (int)near(c, nout);
  if (no < 0 || no > nout) no = nout;
  check_status(abi.encode(m, in[0], n, out, no));
  free_buffers(in, nin);
  free_buffers(out, nout);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static bool opened;
  if (!opened) open_model(), opened = true;
  cursor c = {data, size};
  migc_model *m = NULL;
  char err[256];
  if (abi.create(take(&c, 2), &m, err, sizeof err) != MIGC_OK || !m) abort();
  for (int op = 0; op < 24 && c.n; op++) {
    switch (take(&c, 1) % 7) {
    case 0: op_train(m, &c); break;
    case 1: op_run(m, &c); break;
    case 2: op_tables(m, &c); break;
    case 3: op_draw(m, &c); break;
    case 4: op_checkpoint(m, &c); break;
    case 5: { /* the input itself as a checkpoint */
      snapshot s = snap(m);
      migc_status st = abi.load(m, fuzz_file(c.p, c.n));
      check_status(st);
      if (st != MIGC_OK) failed_cleanly(m, &s);
      free(s.state);
      c.n = 0;
      break;
    }
    default: op_generate_encode(m, &c); break;
    }
  }
  abi.destroy(m);
  return 0;
}
