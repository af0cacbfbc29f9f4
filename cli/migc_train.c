/* migc_train.c: the training loop of `migc train` (see migc_train.h). Each step runs
 * as native code from codegen/ or, with --backend interp, on the reference
 * interpreter; run_func hides which. */
#include "migc_train.h"

#include "codegen/codegen.h"

#include "runtime/runtime.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { STREAM_SAMPLES = 9 }; /* latents of the sample grids: the same every time */

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) {
  (void)sig;
  interrupted = 1;
}

typedef struct {
  const train_options *o;
  ir_module *m;
  ir_func *train, *gen;
  float *state;
  dataset ds;
  int data_input;      /* module input of the real data */
  uint64_t seed;
  int64_t step;        /* steps done */
  uint64_t program_hash;
  cg_program *prog;    /* the compiled module, NULL when interpreting */
  void *scratch[2];    /* train_step's and generate's scratch for compiled code */
  char out[1024];
  char err[1024];
} trainer;

static int fail(trainer *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(trainer *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("migc train: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  (void)t;
  return 1;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* FNV-1a over the model source and every setting that changes the program, so a
 * checkpoint is resumed only by the program that wrote it. */
static uint64_t hash_bytes(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ULL;
  return h;
}

static uint64_t program_hash(const diag_sink *d, const train_options *o, int64_t batch) {
  uint64_t h = 1469598103934665603ULL;
  for (int i = 0; i < d->nsources; i++)
    h = hash_bytes(h, d->sources[i].text, strlen(d->sources[i].text));
  if (o->overrides)
    for (int i = 0; i < o->overrides->n; i++) {
      h = hash_bytes(h, o->overrides->items[i].name, strlen(o->overrides->items[i].name));
      h = hash_bytes(h, &o->overrides->items[i].value, sizeof(double));
    }
  return hash_bytes(h, &batch, sizeof batch);
}

static int make_dir(trainer *t, const char *path) {
  if (mkdir(path, 0777) == 0 || errno == EEXIST) return 0;
  return fail(t, "cannot create %s: %s", path, strerror(errno));
}

/* ---- inputs ------------------------------------------------------------------------ */

/* Fills function input j for step `step`: real data from the data set, latents and
 * codes from their priors, the dropout seed. Latent values are indexed by input and
 * element, so each is a function of (seed, stream, step) alone. */
static int fill_input(trainer *t, const ir_func *f, int j, int64_t step, uint32_t stream,
                      ir_tensor *x) {
  int idx = f->inputs[j];
  const ir_input *in = &t->m->inputs[idx];
  *x = ir_tensor_alloc(in->dtype, in->shape);
  int64_t n = shape_numel(in->shape);
  uint64_t first = (uint64_t)idx << 40;
  switch (in->kind) {
  case INPUT_DATA:
    return dataset_batch(&t->ds, t->seed, step, in->shape.dim[0], x->data, NULL, t->err,
                         sizeof t->err);
  case INPUT_SEED:
    ((int32_t *)x->data)[0] = (int32_t)(t->seed & 0x7fffffff);
    ((int32_t *)x->data)[1] = (int32_t)step;
    return 0;
  default:
    if (in->dist == DIST_CATEGORICAL)
      latent_fill_categorical(x->data, n, (int32_t)in->a, t->seed, stream, (uint64_t)step, first);
    else
      latent_fill(x->data, n, in->dist == DIST_UNIFORM ? 0 : in->dist == DIST_NORMAL ? 1 : 2,
                  in->a, in->b, t->seed, stream, (uint64_t)step, first);
    return 0;
  }
}

/* Runs f on inputs made for `step`; outputs receives f->noutputs tensors. */
static int run_func(trainer *t, const ir_func *f, int64_t step, uint32_t stream,
                    ir_tensor *outputs) {
  ir_tensor *in = calloc((size_t)f->ninputs + 1, sizeof *in);
  int st = 0;
  for (int j = 0; j < f->ninputs && !st; j++) st = fill_input(t, f, j, step, stream, &in[j]);
  if (!st && !t->prog) {
    ir_interp it = {.m = t->m, .state = t->state, .seed = t->seed, .step = step};
    st = ir_interp_run(&it, f, in, outputs);
    if (st) snprintf(t->err, sizeof t->err, "%s", it.err);
  } else if (!st) {
    void **ip = calloc((size_t)f->ninputs + 1, sizeof *ip);
    void **op = calloc((size_t)f->noutputs + 1, sizeof *op);
    for (int j = 0; j < f->ninputs; j++) ip[j] = in[j].data;
    for (int k = 0; k < f->noutputs; k++) {
      const ir_node *n = &f->nodes[f->outputs[k].node];
      outputs[k] = ir_tensor_alloc(n->dtype, n->shape);
      op[k] = outputs[k].data;
    }
    void *scratch = t->scratch[f == t->train ? 0 : 1];
    if (cg_lookup(t->prog, f->name)(t->state, ip, op, scratch)) {
      snprintf(t->err, sizeof t->err, "%s: a label or code is outside its range", f->name);
      for (int k = 0; k < f->noutputs; k++) ir_tensor_free(&outputs[k]);
      st = 1;
    }
    free(ip);
    free(op);
  }
  for (int j = 0; j < f->ninputs; j++) ir_tensor_free(&in[j]);
  free(in);
  return st;
}

/* ---- checkpoints ------------------------------------------------------------------- */

static void ckpt_path(const trainer *t, int64_t step, char *buf, size_t n) {
  snprintf(buf, n, "%s/checkpoints/step-%08lld.safetensors", t->out, (long long)step);
}

/* The steps of the checkpoints in dir, ascending (caller frees). */
static int64_t *list_checkpoints(const char *dir, int *count) {
  char path[1200];
  snprintf(path, sizeof path, "%s/checkpoints", dir);
  DIR *dp = opendir(path);
  int64_t *steps = NULL;
  int n = 0;
  struct dirent *de;
  while (dp && (de = readdir(dp))) {
    long long s;
    char tail[32];
    if (sscanf(de->d_name, "step-%8lld.safetensor%31s", &s, tail) == 2 && !strcmp(tail, "s")) {
      steps = realloc(steps, (size_t)(n + 1) * sizeof *steps);
      steps[n++] = s;
    }
  }
  if (dp) closedir(dp);
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && steps[j - 1] > steps[j]; j--) {
      int64_t x = steps[j];
      steps[j] = steps[j - 1];
      steps[j - 1] = x;
    }
  *count = n;
  return steps;
}

/* A run killed while writing a checkpoint leaves its temporary file (NAME.tmp.PID);
 * the checkpoint it was replacing is intact. Whoever runs in the directory next
 * removes such leftovers. */
static void remove_stale_temporaries(const char *dir) {
  DIR *dp = opendir(dir);
  struct dirent *de;
  char path[1600];
  while (dp && (de = readdir(dp)))
    if (strstr(de->d_name, ".safetensors.tmp.")) {
      snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
      unlink(path);
    }
  if (dp) closedir(dp);
}

static int save_checkpoint(trainer *t) {
  const ir_module *m = t->m;
  st_tensor *ts = calloc((size_t)m->nvars, sizeof *ts);
  for (int v = 0; v < m->nvars; v++) {
    ts[v].name = m->vars[v].name;
    ts[v].dtype = ST_F32;
    ts[v].rank = m->vars[v].shape.rank;
    for (int d = 0; d < ts[v].rank; d++) ts[v].shape[d] = m->vars[v].shape.dim[d];
    ts[v].data = t->state + m->vars[v].offset;
  }
  char step[32], seed[32], hash[32], batch[32];
  snprintf(step, sizeof step, "%lld", (long long)t->step);
  snprintf(seed, sizeof seed, "%llu", (unsigned long long)t->seed);
  snprintf(hash, sizeof hash, "%016llx", (unsigned long long)t->program_hash);
  snprintf(batch, sizeof batch, "%lld", (long long)m->batch);
  st_meta meta[] = {{"format", "migc checkpoint 1"}, {"model", m->name},
                    {"program_hash", hash},          {"step", step},
                    {"seed", seed},                  {"batch", batch},
                    {"migc", MIGC_VERSION}};
  char path[1200];
  ckpt_path(t, t->step, path, sizeof path);
  int st = safetensors_write(path, ts, m->nvars, meta, (int)(sizeof meta / sizeof *meta), t->err,
                             sizeof t->err);
  free(ts);
  if (st) return fail(t, "%s (the previous checkpoints are intact)", t->err);
  /* Keep the newest `keep`: older ones go only after the new one is safely written. */
  int n;
  int64_t *steps = list_checkpoints(t->out, &n);
  for (int i = 0; i + t->o->keep < n; i++) {
    ckpt_path(t, steps[i], path, sizeof path);
    unlink(path);
  }
  free(steps);
  return 0;
}

/* Loads the newest checkpoint of dir that reads cleanly into t->state and t->step. */
static int load_checkpoint(trainer *t, const char *dir) {
  int n;
  int64_t *steps = list_checkpoints(dir, &n);
  if (n == 0) {
    free(steps);
    return fail(t, "%s/checkpoints holds no checkpoint to resume from", dir);
  }
  char path[1200];
  snprintf(path, sizeof path, "%s/checkpoints/step-%08lld.safetensors", dir, (long long)steps[n - 1]);
  free(steps);
  st_file f;
  if (safetensors_read(path, &f, t->err, sizeof t->err)) return fail(t, "%s", t->err);
  int st = 0;
  const char *hash = st_file_meta(&f, "program_hash"), *step = st_file_meta(&f, "step");
  const char *seed = st_file_meta(&f, "seed");
  char want[32];
  snprintf(want, sizeof want, "%016llx", (unsigned long long)t->program_hash);
  if (!hash || !step || !seed)
    st = fail(t, "%s: not a migc checkpoint (no program_hash, step or seed metadata)", path);
  else if (strcmp(hash, want))
    st = fail(t, "%s was written by another program (model source, -D or batch differ: "
                 "hash %s, this run %s)", path, hash, want);
  else if (t->o->seed_given && strtoull(seed, NULL, 10) != t->o->seed)
    st = fail(t, "%s was trained with seed %s, not %llu", path, seed,
              (unsigned long long)t->o->seed);
  for (int v = 0; v < t->m->nvars && !st; v++) {
    const ir_var *var = &t->m->vars[v];
    const st_tensor *x = st_file_find(&f, var->name);
    bool same = x && x->dtype == ST_F32 && x->rank == var->shape.rank;
    for (int d = 0; same && d < x->rank; d++) same = x->shape[d] == var->shape.dim[d];
    if (!same)
      st = fail(t, "%s: %s is %s", path, var->name, x ? "of another shape or dtype" : "missing");
    else
      memcpy(t->state + var->offset, x->data, (size_t)shape_numel(var->shape) * sizeof(float));
  }
  if (!st) {
    t->step = strtoll(step, NULL, 10);
    t->seed = strtoull(seed, NULL, 10);
  }
  st_file_free(&f);
  return st;
}

/* ---- the record of a run ----------------------------------------------------------- */

/* metrics.csv keeps one row per logged step. A resumed run first drops rows past its
 * checkpoint, which the interrupted run wrote but the new one will write again. */
static FILE *open_metrics(trainer *t) {
  char path[1200], tmp[1300];
  snprintf(path, sizeof path, "%s/metrics.csv", t->out);
  FILE *old = t->step > 0 ? fopen(path, "r") : NULL;
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *out = fopen(old ? tmp : path, "w");
  if (!out) {
    if (old) fclose(old);
    fail(t, "cannot write %s: %s", path, strerror(errno));
    return NULL;
  }
  char line[4096];
  bool header = false;
  while (old && fgets(line, sizeof line, old)) {
    if (!header) {
      fputs(line, out);
      header = true;
      continue;
    }
    if (strtoll(line, NULL, 10) <= t->step) fputs(line, out);
  }
  if (old) {
    fclose(old);
    fflush(out);
    rename(tmp, path);
  }
  if (!header) {
    fputs("step,seconds", out);
    for (int k = 0; k < t->train->noutputs; k++) fprintf(out, ",%s", t->train->outputs[k].name);
    fputc('\n', out);
  }
  return out;
}

/* A grid of generate's images from fixed latents: the same latents every time, so the
 * grids of one run show the generator changing and nothing else. */
static int write_samples(trainer *t) {
  if (!t->gen) return 0;
  ir_tensor outs[8];
  if (t->gen->noutputs > 8 || run_func(t, t->gen, 0, STREAM_SAMPLES, outs))
    return fail(t, "generate: %s", t->err);
  const ir_tensor *img = &outs[0];
  int st = 0;
  if (img->shape.rank == 4 && (img->shape.dim[1] == 1 || img->shape.dim[1] == 3)) {
    int n = (int)(img->shape.dim[0] < 64 ? img->shape.dim[0] : 64);
    int cols = n >= 8 ? 8 : n, rows = (n + cols - 1) / cols;
    const ir_input *in = &t->m->inputs[t->data_input];
    char path[1200];
    snprintf(path, sizeof path, "%s/samples/step-%08lld.png", t->out, (long long)t->step);
    if (png_write_grid(path, img->data, n, (int)img->shape.dim[1], (int)img->shape.dim[2],
                       (int)img->shape.dim[3], rows, cols, (float)in->a, (float)in->b, 2, t->err,
                       sizeof t->err))
      st = fail(t, "%s", t->err);
  }
  for (int k = 0; k < t->gen->noutputs; k++) ir_tensor_free(&outs[k]);
  return st;
}

static void progress(trainer *t, const ir_tensor *outs, double rate, bool tty) {
  int64_t left = t->o->steps - t->step;
  double eta = rate > 0 ? (double)left / rate : 0;
  fprintf(stderr, "%sstep %lld/%lld  epoch %.2f  %.2f steps/s  ETA %d:%02d", tty ? "\r" : "",
          (long long)t->step, (long long)t->o->steps,
          (double)(t->step * t->m->batch) / (double)t->ds.n, rate, (int)eta / 60, (int)eta % 60);
  for (int k = 0; k < t->train->noutputs; k++) {
    const char *name = t->train->outputs[k].name;
    fprintf(stderr, "  %s %.4f%s", name, ((float *)outs[k].data)[0],
            strncmp(name, "mi", 2) ? "" : " nats");
  }
  fputs(tty ? "\033[K" : "\n", stderr);
}

/* ---- the run --------------------------------------------------------------------------- */

static int setup(trainer *t, diag_sink *d) {
  const train_options *o = t->o;
  ast_file *ast = parse_file(d, o->model);
  if (!ast || d->nerrors) {
    if (ast) ast_free(ast);
    return 1;
  }
  elab_options eo = {o->overrides, o->batch};
  t->m = elaborate(ast, &eo, d);
  ast_free(ast);
  pass_options po = {.verify_each = true};
  if (!t->m || passes_run(t->m, &po, d)) return 1;
  t->train = ir_find_func(t->m, "train_step");
  t->gen = ir_find_func(t->m, "generate");
  t->data_input = -1;
  for (int j = 0; j < t->train->ninputs; j++) {
    int idx = t->train->inputs[j];
    if (t->m->inputs[idx].kind != INPUT_DATA) continue;
    if (t->data_input >= 0)
      return fail(t, "%s: the training step reads two data inputs (%s and %s); migc train "
                     "feeds one", o->model, t->m->inputs[t->data_input].name, t->m->inputs[idx].name);
    t->data_input = idx;
  }
  if (t->data_input < 0) return fail(t, "%s: the training step reads no input data", o->model);
  const ir_input *in = &t->m->inputs[t->data_input];
  int rank = in->shape.rank - 1;
  if (rank != 3 && rank != 1)
    return fail(t, "%s: input %s must be an image [C,H,W] or a flat [D] to be fed from a data set",
                o->model, in->name);
  dataset_shape want = {rank, {0}, (float)in->a, (float)in->b, in->pad};
  for (int i = 0; i < rank; i++) want.dim[i] = in->shape.dim[i + 1];
  if (dataset_open(&t->ds, o->data ? o->data : "mnist", o->data_dir, &want, t->err, sizeof t->err))
    return fail(t, "%s", t->err);
  if (!o->interpret) {
    t->prog = cg_compile(t->m, NULL, t->err, sizeof t->err);
    if (!t->prog) return fail(t, "compiling %s: %s", o->model, t->err);
    for (int k = 0; k < 2; k++) {
      const ir_func *f = k ? t->gen : t->train;
      size_t n = f ? cg_scratch_size(t->prog, f->name) : 0;
      t->scratch[k] = aligned_alloc(64, (n + 63) / 64 * 64 + 64);
      if (!t->scratch[k]) return fail(t, "out of memory for %zu bytes of scratch", n);
    }
    cg_stats cs = cg_get_stats(t->prog);
    fprintf(stderr, "migc train: compiled with LLVM in %.0f ms (lower %.0f, optimise %.0f, "
                    "JIT %.0f)\n", cs.total_ms, cs.lower_ms, cs.opt_ms, cs.jit_ms);
  }
  t->program_hash = program_hash(d, o, t->m->batch);
  t->state = calloc((size_t)t->m->state_size + 1, sizeof *t->state);
  t->seed = o->seed;
  if (o->resume) {
    if (load_checkpoint(t, o->resume)) return 1;
  } else {
    ir_init_state(t->m, t->state, t->seed);
  }
  if (o->out)
    snprintf(t->out, sizeof t->out, "%s", o->out);
  else if (o->resume)
    snprintf(t->out, sizeof t->out, "%s", o->resume);
  else
    snprintf(t->out, sizeof t->out, "runs/%s", t->m->name);
  char sub[1200];
  if (!o->out && !o->resume && make_dir(t, "runs")) return 1;
  if (make_dir(t, t->out)) return 1;
  snprintf(sub, sizeof sub, "%s/checkpoints", t->out);
  if (make_dir(t, sub)) return 1;
  remove_stale_temporaries(sub);
  snprintf(sub, sizeof sub, "%s/samples", t->out);
  return make_dir(t, sub);
}

int train_run(const train_options *o, diag_sink *d) {
  trainer t = {.o = o};
  int st = setup(&t, d);
  FILE *metrics = st ? NULL : open_metrics(&t);
  if (!st && !metrics) st = 1;
  if (!st) {
    fprintf(stderr, "migc train: %s, batch %lld, %lld images from %s, seed %llu, %s, run in "
                    "%s%s\n", t.m->name, (long long)t.m->batch, (long long)t.ds.n,
            t.ds.images_path, (unsigned long long)t.seed,
            t.prog ? "native code" : "interpreted", t.out, t.step ? " (resumed)" : "");
    if (t.step) fprintf(stderr, "migc train: resuming at step %lld\n", (long long)t.step);
  }
  bool tty = isatty(2);
  struct sigaction sa = {.sa_handler = on_sigint}, old_sa;
  sigaction(SIGINT, &sa, &old_sa);
  double start = now(), last_log = start;
  int64_t logged_at = t.step;
  ir_tensor *outs = st ? NULL : calloc((size_t)t.train->noutputs + 1, sizeof *outs);
  while (!st && t.step < o->steps && !interrupted) {
    if (run_func(&t, t.train, t.step, RNG_STREAM_LATENT, outs)) {
      st = fail(&t, "step %lld: %s", (long long)t.step, t.err);
      break;
    }
    for (int k = 0; k < t.train->noutputs && !st; k++) {
      float v = ((float *)outs[k].data)[0];
      if (!isfinite(v))
        st = fail(&t, "step %lld: %s is %s; stopping without saving this state (the last "
                      "checkpoint in %s/checkpoints is the last good one)",
                  (long long)t.step, t.train->outputs[k].name, isnan(v) ? "NaN" : "infinite",
                  t.out);
    }
    if (st) {
      for (int k = 0; k < t.train->noutputs; k++) ir_tensor_free(&outs[k]);
      break;
    }
    t.step++;
    bool last = t.step == o->steps;
    if (t.step % o->log_every == 0 || last) {
      double tnow = now();
      double rate = (double)(t.step - logged_at) / fmax(tnow - last_log, 1e-9);
      last_log = tnow;
      logged_at = t.step;
      fprintf(metrics, "%lld,%.3f", (long long)t.step, tnow - start);
      for (int k = 0; k < t.train->noutputs; k++) fprintf(metrics, ",%.6g", ((float *)outs[k].data)[0]);
      fputc('\n', metrics);
      fflush(metrics);
      progress(&t, outs, rate, tty);
    }
    for (int k = 0; k < t.train->noutputs; k++) ir_tensor_free(&outs[k]);
    if (t.step % o->save_every == 0 || last || interrupted) st = save_checkpoint(&t);
    if (!st && (t.step % o->sample_every == 0 || last)) st = write_samples(&t);
  }
  if (tty && !st) fputc('\n', stderr);
  if (!st && interrupted)
    fprintf(stderr, "migc train: interrupted at step %lld; checkpoint saved in %s/checkpoints\n",
            (long long)t.step, t.out);
  else if (!st)
    fprintf(stderr, "migc train: done, %lld steps; checkpoints in %s/checkpoints, samples in "
                    "%s/samples, metrics in %s/metrics.csv\n",
            (long long)t.step, t.out, t.out, t.out);
  sigaction(SIGINT, &old_sa, NULL);
  free(outs);
  if (metrics) fclose(metrics);
  dataset_close(&t.ds);
  cg_free(t.prog);
  free(t.scratch[0]);
  free(t.scratch[1]);
  free(t.state);
  ir_module_free(t.m);
  return st;
}
