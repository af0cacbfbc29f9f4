/* migc_train.c: the training loop of `migc train` (see migc_train.h). Each step runs
 * as native code from codegen/ or, with --backend interp, on the reference
 * interpreter; run_func hides which. */
#include "migc_train.h"
#include "migc_runinfo.h"

#include "migc_eval.h"
#include "migc_model.h"
#include "migc_mpi.h"
#include "migc_profile.h"

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
  model md;
  ir_func *train, *gen;
  dataset ds;
  int data_input;      /* module input of the real data */
  uint64_t seed;
  int64_t step;        /* steps done */
  int ranks, rank;     /* processes of a data-parallel run, and which this is */
  bool leader;         /* rank 0: the one that prints and writes the run's files */
  bool quiet;          /* a failure here is every process's: rank 0 alone reports it */
  ir_tensor *in[2];    /* input buffers of train (0) and generate (1), reused */
  void **in_ptr[2];    /* their data pointers, as the entry takes them */
  int nin[2];
  double *bound;       /* per output of train: the most an MI estimate can reach,
                          NaN for the other outputs (ir_mi_terms) */
  eval_plan ev;        /* --eval-every: what to measure, and the labelled data */
  bool evaluating;
  int eval_cols;       /* metrics.csv's eval_ columns: 0, or 1 + the estimates */
  char out[1024];
  char err[1024];
} trainer;

static int fail(trainer *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(trainer *t, const char *fmt, ...) {
  if (t->quiet) return 1;
  va_list ap;
  va_start(ap, fmt);
  if (t->ranks > 1)
    fprintf(stderr, "migc train (rank %d of %d): ", t->rank, t->ranks);
  else
    fputs("migc train: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return 1;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* mkdir -p: the run directory and any parent it lacks (--out runs/a/b). */
static int make_dir(trainer *t, const char *path) {
  char buf[1200];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++)
    if (*p == '/') {
      *p = 0;
      if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return fail(t, "cannot create %s: %s", buf, strerror(errno));
      *p = '/';
    }
  if (mkdir(buf, 0777) == 0 || errno == EEXIST) return 0;
  return fail(t, "cannot create %s: %s", path, strerror(errno));
}

/* ---- steps ------------------------------------------------------------------------- */

/* The buffers of f's inputs (and their pointers), made on f's first run and reused:
 * a step allocates nothing. */
static int input_buffers(trainer *t, const ir_func *f, ir_tensor **in, void ***ptr) {
  int k = f == t->train ? 0 : 1;
  if (!t->in[k]) {
    t->in[k] = calloc((size_t)f->ninputs + 1, sizeof *t->in[k]);
    t->in_ptr[k] = calloc((size_t)f->ninputs + 1, sizeof *t->in_ptr[k]);
    if (!t->in[k] || !t->in_ptr[k]) return 1;
    t->nin[k] = f->ninputs;
    for (int j = 0; j < f->ninputs; j++) {
      const ir_input *inp = &t->md.m->inputs[f->inputs[j]];
      t->in[k][j] = ir_tensor_alloc(inp->dtype, inp->shape);
      if (!t->in[k][j].data) return 1;
      t->in_ptr[k][j] = t->in[k][j].data;
    }
  }
  *in = t->in[k], *ptr = t->in_ptr[k];
  return 0;
}

/* Runs f for step `step` on samples [sample0, sample0 + m->batch) of the step's global
 * batch: their real data from the data set, latents and codes drawn for (seed, stream,
 * step), the dropout seed; out[k] is room for output k. */
static int run_func(trainer *t, const ir_func *f, int64_t step, uint32_t stream,
                    int64_t sample0, void *const *out) {
  ir_tensor *in;
  void **ptr;
  if (input_buffers(t, f, &in, &ptr)) {
    snprintf(t->err, sizeof t->err, "out of memory for the inputs of %s", f->name);
    return 1;
  }
  int32_t *labels = NULL; /* a labels input is the data set's labels of the same samples */
  for (int j = 0; j < f->ninputs; j++)
    if (t->md.m->inputs[f->inputs[j]].kind == INPUT_LABEL) labels = in[j].data;
  for (int j = 0; j < f->ninputs; j++) {
    int idx = f->inputs[j];
    const ir_input *inp = &t->md.m->inputs[idx];
    if (inp->kind == INPUT_DATA) {
      if (dataset_batch_part(&t->ds, t->seed, step, t->md.batch, sample0, inp->shape.dim[0],
                             in[j].data, labels, t->err, sizeof t->err))
        return 1;
    } else if (inp->kind == INPUT_LABEL) {
      continue; /* filled with the data above */
    } else {
      model_fill(&t->md, idx, t->seed, stream, (uint64_t)step, sample0, in[j].data);
    }
  }
  if (model_call(&t->md, f, ptr, out)) {
    snprintf(t->err, sizeof t->err, "%s", t->md.err);
    return 1;
  }
  return 0;
}

/* Room for each of f's outputs (ir_tensor_free each), and their pointers in ptr. */
static ir_tensor *output_buffers(const ir_func *f, void **ptr) {
  ir_tensor *out = calloc((size_t)f->noutputs + 1, sizeof *out);
  for (int k = 0; out && k < f->noutputs; k++) {
    const ir_node *n = &f->nodes[f->outputs[k].node];
    out[k] = ir_tensor_alloc(n->dtype, n->shape);
    ptr[k] = out[k].data;
  }
  return out;
}

static void free_outputs(ir_tensor *out, int n) {
  for (int k = 0; out && k < n; k++) ir_tensor_free(&out[k]);
  free(out);
}

/* ---- checkpoints ------------------------------------------------------------------- */

static void ckpt_path(const trainer *t, int64_t step, char *buf, size_t n) {
  snprintf(buf, n, "%s/checkpoints/step-%08lld.safetensors", t->out, (long long)step);
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
  char path[1200];
  ckpt_path(t, t->step, path, sizeof path);
  if (model_save(&t->md, path, t->step, t->seed))
    return fail(t, "%s (the previous checkpoints are intact)", t->md.err);
  /* Keep the newest `keep`: older ones go only after the new one is safely written. */
  int n;
  int64_t *steps = checkpoint_steps(t->out, &n);
  for (int i = 0; i + t->o->keep < n; i++) {
    ckpt_path(t, steps[i], path, sizeof path);
    unlink(path);
  }
  free(steps);
  return 0;
}

/* Loads the newest checkpoint of a run directory into the state, step and seed. */
static int load_checkpoint(trainer *t, const char *dir) {
  char path[1200];
  if (checkpoint_find(dir, path, sizeof path, t->err, sizeof t->err)) return fail(t, "%s", t->err);
  uint64_t seed;
  if (model_load(&t->md, path, &t->step, &seed)) return fail(t, "%s", t->md.err);
  if (t->o->seed_given && seed != t->o->seed)
    return fail(t, "%s was trained with seed %llu, not %llu", path, (unsigned long long)seed,
                (unsigned long long)t->o->seed);
  t->seed = seed;
  return 0;
}

/* ---- the record of a run ----------------------------------------------------------- */

/* metrics.csv's header: step, seconds, train_step's outputs; with evaluations also
 * eval_accuracy and eval_NAME for each MI estimate (each without its newline). */
static void metrics_header(const trainer *t, char *base, size_t nb, char *evals, size_t ne) {
  size_t at = (size_t)snprintf(base, nb, "step,seconds");
  for (int k = 0; k < t->train->noutputs && at < nb; k++)
    at += (size_t)snprintf(base + at, nb - at, ",%s", t->train->outputs[k].name);
  at = (size_t)snprintf(evals, ne, ",eval_accuracy");
  for (int e = 0; e < t->ev.nmi && at < ne; e++)
    at += (size_t)snprintf(evals + at, ne - at, ",eval_%s", t->ev.mi[e].name);
}

/* n empty cells: the eval_ columns of a row without an evaluation. */
static void empty_cells(FILE *out, int n) {
  for (int c = 0; c < n; c++) fputc(',', out);
}

/* metrics.csv keeps one row per logged or evaluated step. A resumed run first drops
 * rows past its checkpoint, which the interrupted run wrote but the new one will write
 * again. The eval_ columns stay once a run has them (empty cells on rows without an
 * evaluation); a resumed run that starts evaluating adds them to the rows it keeps. */
static FILE *open_metrics(trainer *t) {
  char path[1200], tmp[1300], base[4096], evals[4096];
  metrics_header(t, base, sizeof base, evals, sizeof evals);
  int nevals = t->evaluating ? 1 + t->ev.nmi : 0;
  snprintf(path, sizeof path, "%s/metrics.csv", t->out);
  FILE *old = t->step > 0 ? fopen(path, "r") : NULL;
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *out = fopen(old ? tmp : path, "w");
  if (!out) {
    if (old) fclose(old);
    fail(t, "cannot write %s: %s", path, strerror(errno));
    return NULL;
  }
  char line[8192];
  bool header = false;
  int pad = 0; /* empty eval cells added to each kept row */
  while (old && fgets(line, sizeof line, old)) {
    line[strcspn(line, "\n")] = 0;
    if (!header) {
      header = true;
      size_t nb = strlen(base);
      if (!strcmp(line, base) && nevals) { /* evaluating from now on */
        fprintf(out, "%s%s\n", base, evals);
        pad = nevals;
      } else {
        fprintf(out, "%s\n", line);
      }
      if (!strncmp(line, base, nb) && line[nb] == ',') /* the run's eval_ columns */
        for (const char *c = line + nb; *c; c++) t->eval_cols += *c == ',';
      if (pad) t->eval_cols = pad;
      continue;
    }
    if (strtoll(line, NULL, 10) > t->step) continue;
    fputs(line, out);
    empty_cells(out, pad);
    fputc('\n', out);
  }
  if (old) {
    fclose(old);
    fflush(out);
    rename(tmp, path);
  }
  if (!header) {
    fprintf(out, "%s%s\n", base, nevals ? evals : "");
    t->eval_cols = nevals;
  }
  return out;
}

/* A grid of generate's images from fixed latents: the same latents every time, so the
 * grids of one run show the generator changing and nothing else. generate is compiled
 * for one process's share of the batch and draws no batch statistics, so in a
 * data-parallel run it runs on consecutive shares until the grid holds the images one
 * process would draw. */
static int write_samples(trainer *t) {
  if (!t->gen || t->gen->noutputs > 8) return 0;
  ir_shape s = t->gen->nodes[t->gen->outputs[0].node].shape;
  if (s.rank != 4 || (s.dim[1] != 1 && s.dim[1] != 3)) return 0;
  int64_t share = s.dim[0], per = shape_numel(s) / share;
  int n = (int)(t->md.batch < 64 ? t->md.batch : 64);
  float *grid = malloc((size_t)(n * per) * sizeof *grid);
  int st = grid ? 0 : fail(t, "out of memory for a sample grid");
  for (int64_t at = 0; at < n && !st; at += share) {
    void *ptr[8];
    ir_tensor *outs = output_buffers(t->gen, ptr);
    if (!outs || run_func(t, t->gen, 0, STREAM_SAMPLES, at, ptr)) {
      st = fail(t, "generate: %s", outs ? t->err : "out of memory");
      free_outputs(outs, t->gen->noutputs);
      break;
    }
    int64_t take = n - at < share ? n - at : share;
    memcpy(grid + at * per, outs[0].data, (size_t)(take * per) * sizeof *grid);
    free_outputs(outs, t->gen->noutputs);
  }
  if (!st) {
    int cols = n >= 8 ? 8 : n, rows = (n + cols - 1) / cols;
    const ir_input *in = &t->md.m->inputs[t->data_input];
    char path[1200];
    snprintf(path, sizeof path, "%s/samples/step-%08lld.png", t->out, (long long)t->step);
    if (png_write_grid(path, grid, n, (int)s.dim[1], (int)s.dim[2], (int)s.dim[3], rows, cols,
                       (float)in->a, (float)in->b, 2, t->err, sizeof t->err))
      st = fail(t, "%s", t->err);
  }
  free(grid);
  return st;
}

static void progress(trainer *t, const ir_tensor *outs, double rate, bool tty) {
  int64_t left = t->o->steps - t->step;
  double eta = rate > 0 ? (double)left / rate : 0;
  fprintf(stderr, "%sstep %lld/%lld  epoch %.2f  %.2f steps/s  ETA %d:%02d", tty ? "\r" : "",
          (long long)t->step, (long long)t->o->steps,
          (double)(t->step * t->md.batch) / (double)t->ds.n, rate, (int)eta / 60, (int)eta % 60);
  for (int k = 0; k < t->train->noutputs; k++) {
    const char *name = t->train->outputs[k].name;
    fprintf(stderr, "  %s %.4f%s", name, ((float *)outs[k].data)[0],
            strncmp(name, "mi", 2) && !isfinite(t->bound[k]) ? "" : " nats");
    if (isfinite(t->bound[k])) fprintf(stderr, " (max %.4f)", t->bound[k]);
  }
  fputs(tty ? "\033[K" : "\n", stderr);
}

/* The labelled images --eval-every measures on: --eval-data, else the test split of
 * the training set when it is mnist or fashion; NULL otherwise. */
static const char *eval_data(const train_options *o) {
  return o->eval_data ? o->eval_data : runinfo_test_split(o->data ? o->data : "mnist");
}

/* The most each output of train_step can reach when it is an MI estimate (NaN when it
 * is not), and a line that says so for each: the run's summary of its estimates. */
static int find_bounds(trainer *t) {
  const ir_func *f = t->train;
  t->bound = calloc((size_t)f->noutputs + 1, sizeof *t->bound);
  if (!t->bound) return fail(t, "out of memory");
  char line[2048] = "", formula[256];
  size_t at = 0;
  for (int k = 0; k < f->noutputs; k++) {
    ir_mi_term terms[16];
    int n = ir_mi_terms(f, f->outputs[k].node, terms, 16);
    t->bound[k] = n ? ir_mi_bound(terms, n) : NAN;
    if (!n || at >= sizeof line) continue;
    ir_mi_bound_str(t->md.m, terms, n, formula, sizeof formula);
    at += (size_t)snprintf(line + at, sizeof line - at, "%s%s <= %s = %.4f nats", at ? ", " : "",
                           f->outputs[k].name, formula, t->bound[k]);
  }
  if (line[0] && t->leader) fprintf(stderr, "migc train: MI estimates at most: %s\n", line);
  return 0;
}

/* Measures the state after this step as migc eval would on its checkpoint, and prints
 * the result; the values go into *r. */
static int evaluate(trainer *t, eval_result *r, bool tty) {
  if (eval_measure(&t->ev, &t->md, EVAL_SEED, EVAL_BATCHES, 0, r, t->err, sizeof t->err))
    return fail(t, "evaluating at step %lld: %s", (long long)t->step, t->err);
  fprintf(stderr, "%seval at step %lld: matched accuracy %.4f on %lld images; on %lld generated:",
          tty ? "\r" : "", (long long)t->step, r->accuracy, (long long)r->images,
          (long long)r->generated);
  for (int e = 0; e < t->ev.nmi; e++)
    fprintf(stderr, "%s %s %.4f nats (max %.4f)", e ? "," : "", t->ev.mi[e].name, r->mi[e],
            ir_mi_bound(t->ev.mi[e].terms, t->ev.mi[e].nterms));
  fprintf(stderr, "%s\n", tty ? "\033[K" : "");
  return 0;
}

/* ---- the run --------------------------------------------------------------------------- */

static int setup(trainer *t, diag_sink *d) {
  const train_options *o = t->o;
  if (o->so && t->ranks > 1)
    return fail(t, "--so: a shared object is compiled for one process; under mpirun "
                   "migc train compiles the data-parallel program itself (leave out --so)");
  if (o->so && (o->codegen.no_fuse || o->codegen.no_memplan))
    return fail(t, "--so runs the library as migc compile made it; --no-fuse and --no-memplan "
                   "change only the JIT's code (leave them or --so out)");
  cg_options co = o->codegen;
  co.profile = o->profile;
  if (o->so ? model_open_so(&t->md, o->model, o->overrides, o->batch, o->so, d)
            : model_open(&t->md, o->model, o->overrides, o->batch, t->ranks, o->local_bn,
                         o->interpret, &co, d)) {
    if (!d->nerrors) fail(t, "%s", t->md.err);
    return 1;
  }
  if (t->md.prog && t->leader) {
    cg_stats cs = cg_get_stats(t->md.prog);
    fprintf(stderr, "migc train: compiled with LLVM in %.0f ms (lower %.0f, optimise %.0f, "
                    "JIT %.0f)\n", cs.total_ms, cs.lower_ms, cs.opt_ms, cs.jit_ms);
  }
  t->train = ir_find_func(t->md.m, "train_step");
  t->gen = ir_find_func(t->md.m, "generate");
  t->data_input = -1;
  for (int j = 0; j < t->train->ninputs; j++) {
    int idx = t->train->inputs[j];
    if (t->md.m->inputs[idx].kind != INPUT_DATA) continue;
    if (t->data_input >= 0)
      return fail(t, "%s: the training step reads two data inputs (%s and %s); migc train "
                     "feeds one", o->model, t->md.m->inputs[t->data_input].name, t->md.m->inputs[idx].name);
    t->data_input = idx;
  }
  if (t->data_input < 0) return fail(t, "%s: the training step reads no input data", o->model);
  const ir_input *in = &t->md.m->inputs[t->data_input];
  int rank = in->shape.rank - 1;
  if (rank != 3 && rank != 1)
    return fail(t, "%s: input %s must be an image [C,H,W] or a flat [D] to be fed from a data set",
                o->model, in->name);
  dataset_shape want = {rank, {0}, (float)in->a, (float)in->b, in->pad};
  for (int i = 0; i < rank; i++) want.dim[i] = in->shape.dim[i + 1];
  if (dataset_open(&t->ds, o->data ? o->data : "mnist", o->data_dir, &want, t->err, sizeof t->err))
    return fail(t, "%s", t->err);
  for (int j = 0; j < t->train->ninputs; j++) {
    const ir_input *lab = &t->md.m->inputs[t->train->inputs[j]];
    if (lab->kind != INPUT_LABEL) continue;
    if (!t->ds.labels)
      return fail(t, "%s: input %s is the data set's labels, but %s has none", o->model,
                  lab->name, t->ds.images_path);
    for (int64_t i = 0; i < t->ds.n; i++)
      if (t->ds.labels[i] < 0 || t->ds.labels[i] >= (int32_t)lab->a)
        return fail(t, "%s: label %d of image %lld is outside input %s's [0, %g)",
                    t->ds.labels_path, (int)t->ds.labels[i], (long long)i, lab->name, lab->a);
  }
  if (o->eval_every > 0 || o->eval_last) {
    const char *data = eval_data(o), *opt = o->eval_every > 0 ? "--eval-every" : "--seeds";
    if (!data)
      return fail(t, "%s: %s has no test split known to migc; give labelled images to "
                     "evaluate on with --eval-data", opt, o->data);
    if (eval_plan_open(&t->ev, &t->md, data, o->data_dir, true, t->err, sizeof t->err))
      return fail(t, "%s: %s", opt, t->err);
    t->evaluating = true;
  }
  t->seed = o->seed;
  if (o->resume) {
    if (load_checkpoint(t, o->resume)) return 1;
  } else {
    model_init(&t->md, t->seed);
  }
  if (o->out)
    snprintf(t->out, sizeof t->out, "%s", o->out);
  else if (o->resume)
    snprintf(t->out, sizeof t->out, "%s", o->resume);
  else
    snprintf(t->out, sizeof t->out, "runs/%s", t->md.m->name);
  if (o->subdir) {
    size_t n = strlen(t->out);
    snprintf(t->out + n, sizeof t->out - n, "/%s", o->subdir);
  }
  if (!t->leader) return 0; /* the run directory is rank 0's */
  char sub[1200];
  if (make_dir(t, t->out)) return 1;
  snprintf(sub, sizeof sub, "%s/checkpoints", t->out);
  if (make_dir(t, sub)) return 1;
  remove_stale_temporaries(sub);
  snprintf(sub, sizeof sub, "%s/samples", t->out);
  return make_dir(t, sub);
}

/* A hash of the whole state (FNV-1a of its bytes): equal on every process of a
 * data-parallel run, since each applies the same averaged update to the same start. */
static uint64_t state_hash(const trainer *t) {
  const unsigned char *b = (const unsigned char *)t->md.state;
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < (size_t)t->md.m->state_size * sizeof(float); i++)
    h = (h ^ b[i]) * 1099511628211ULL;
  return h;
}

/* After a data-parallel run: rank 0 gathers every process's state hash and fails the
 * run if any differs (a bug, or a process on different data or code). */
static int check_same_state(trainer *t) {
  uint64_t *all = calloc((size_t)t->ranks, sizeof *all);
  mpi_gather_u64(state_hash(t), all);
  int st = 0;
  if (t->leader) {
    bool same = true;
    for (int r = 1; r < t->ranks; r++) same = same && all[r] == all[0];
    fprintf(stderr, "migc train: state hash on %d processes:", t->ranks);
    for (int r = 0; r < t->ranks; r++) fprintf(stderr, " %016llx", (unsigned long long)all[r]);
    fprintf(stderr, " (%s)\n", same ? "identical" : "DIFFERENT");
    if (!same) st = fail(t, "the processes' parameters differ after step %lld", (long long)t->step);
  }
  free(all);
  return st;
}

/* A data-parallel step's reported values (each process's loss over its share) become
 * their mean over the processes, which is the loss over the global batch since every
 * loss is a mean over samples; `stop` (this process's Ctrl-C) becomes whether any
 * process was interrupted, so that all stop after the same step. */
static void agree(trainer *t, ir_tensor *outs, bool *stop) {
  int k, n = t->train->noutputs;
  float *v = malloc((size_t)(n + 1) * sizeof *v);
  for (k = 0; k < n; k++) v[k] = ((float *)outs[k].data)[0];
  v[n] = *stop ? 1.0f : 0.0f;
  collective_allreduce(v, n + 1);
  for (k = 0; k < n; k++) ((float *)outs[k].data)[0] = v[k] / (float)t->ranks;
  *stop = v[n] > 0;
  free(v);
}

int train_run(const train_options *o, diag_sink *d, train_result *res) {
  trainer t = {.o = o, .ranks = collective_ranks(), .rank = collective_rank()};
  t.leader = t.rank == 0;
  t.quiet = !t.leader; /* setup reads the same files on every process */
  int st = setup(&t, d);
  t.quiet = false;
  FILE *metrics = st || !t.leader ? NULL : open_metrics(&t);
  if (!st && t.leader && !metrics) st = 1;
  if (!st && t.leader) {
    runinfo ri = {t.md.m->name, t.md.file, t.md.settings, o->data, o->data_dir, t.md.batch,
                  t.seed, o->threads};
    if (runinfo_write(t.out, &ri, t.err, sizeof t.err)) st = fail(&t, "%s", t.err);
  }
  if (!st && t.leader) {
    char procs[64] = "";
    if (t.ranks > 1)
      snprintf(procs, sizeof procs, " (%lld on each of %d processes)", (long long)t.md.m->batch,
               t.ranks);
    fprintf(stderr, "migc train: %s, batch %lld%s, %lld images from %s, seed %llu, %s, run in "
                    "%s%s\n", t.md.m->name, (long long)t.md.batch, procs, (long long)t.ds.n,
            t.ds.images_path, (unsigned long long)t.seed,
            t.md.so ? "native code from --so" : t.md.prog ? "native code" : "interpreted", t.out, t.step ? " (resumed)" : "");
    if (t.step) fprintf(stderr, "migc train: resuming at step %lld\n", (long long)t.step);
    if (find_bounds(&t)) st = 1;
    if (t.evaluating && o->eval_every > 0)
      fprintf(stderr, "migc train: evaluating every %lld steps on %s (%lld labelled images, "
                      "%d generated batches)\n", (long long)o->eval_every, t.ev.data.images_path,
              (long long)t.ev.data.n, EVAL_BATCHES);
    else if (t.evaluating)
      fprintf(stderr, "migc train: evaluating after the last step on %s (%lld labelled images, "
                      "%d generated batches)\n", t.ev.data.images_path, (long long)t.ev.data.n,
              EVAL_BATCHES);
  }
  bool tty = isatty(2);
  struct sigaction sa = {.sa_handler = on_sigint}, old_sa;
  sigaction(SIGINT, &sa, &old_sa);
  double start = now(), last_log = start;
  int64_t logged_at = t.step;
  void **out_ptr = st ? NULL : calloc((size_t)t.train->noutputs + 1, sizeof *out_ptr);
  ir_tensor *outs = out_ptr ? output_buffers(t.train, out_ptr) : NULL;
  if (!st && !outs) st = fail(&t, "out of memory for the outputs of train_step");
  /* --profile: the first step warms up; the report is the mean of the others */
  cg_profile *prof = !st && t.md.prog ? cg_get_profile(t.md.prog) : NULL;
  int64_t profiled = 0, first_step = t.step;
  double profiled_ms = 0;
  bool stop = false;
  while (!st && t.step < o->steps && !stop) {
    if (prof && t.step == first_step + 1) cg_profile_reset(prof), profiled = 0, profiled_ms = 0;
    double t0 = now();
    if (run_func(&t, t.train, t.step, RNG_STREAM_LATENT, t.rank * t.md.m->batch, out_ptr)) {
      st = fail(&t, "step %lld: %s", (long long)t.step, t.err);
      break;
    }
    profiled_ms += (now() - t0) * 1e3, profiled++;
    stop = interrupted;
    if (t.ranks > 1) agree(&t, outs, &stop);
    for (int k = 0; k < t.train->noutputs && !st; k++) {
      float v = ((float *)outs[k].data)[0];
      int saved = 0;
      if (!isfinite(v)) free(checkpoint_steps(t.out, &saved));
      if (!isfinite(v))
        st = fail(&t, "step %lld: %s is %s; stopping without saving this state (%s%s%s)",
                  (long long)t.step, t.train->outputs[k].name, isnan(v) ? "NaN" : "infinite",
                  saved ? "the last checkpoint in " : "no checkpoint was saved before it",
                  saved ? t.out : "", saved ? "/checkpoints is the last good one" : "");
    }
    if (st) break;
    t.step++;
    bool last = t.step == o->steps;
    bool log = t.step % o->log_every == 0 || last;
    bool eval = t.evaluating && ((o->eval_every > 0 && t.step % o->eval_every == 0) || last);
    eval_result ev;
    if (t.leader && eval) {
      double t1 = now();
      if (prof) prof->paused = true; /* --profile reports train_step alone */
      st = evaluate(&t, &ev, tty);
      if (prof) prof->paused = false;
      last_log += now() - t1; /* steps/s counts training time only */
      if (!st && res && last) res->eval = ev, res->evaluated = true;
    }
    if (!st && t.leader && (log || eval)) {
      double tnow = now();
      fprintf(metrics, "%lld,%.3f", (long long)t.step, tnow - start);
      for (int k = 0; k < t.train->noutputs; k++) fprintf(metrics, ",%.6g", ((float *)outs[k].data)[0]);
      if (eval) {
        fprintf(metrics, ",%.6g", ev.accuracy);
        for (int e = 0; e < t.ev.nmi; e++) fprintf(metrics, ",%.6g", ev.mi[e]);
      } else {
        empty_cells(metrics, t.eval_cols);
      }
      fputc('\n', metrics);
      int lost = fflush(metrics) != 0 ? errno : 0; /* a full disk: say so, keep no rows */
      if (log) {
        double rate = (double)(t.step - logged_at) / fmax(tnow - last_log, 1e-9);
        last_log = tnow;
        logged_at = t.step;
        progress(&t, outs, rate, tty);
      }
      if (lost) st = fail(&t, "cannot write %s/metrics.csv: %s", t.out, strerror(lost));
    }
    if (!t.leader) continue; /* a write that fails ends the job (mpi_leave) */
    if (!st && (t.step % o->save_every == 0 || last || stop)) st = save_checkpoint(&t);
    if (!st && (t.step % o->sample_every == 0 || last)) {
      if (prof) prof->paused = true; /* --profile reports train_step alone */
      st = write_samples(&t);
      if (prof) prof->paused = false;
    }
  }
  if (res) {
    res->steps = t.step;
    res->seconds = now() - start;
    res->interrupted = stop;
    res->nmi = t.ev.nmi;
    for (int e = 0; e < t.ev.nmi; e++) {
      snprintf(res->mi_name[e], sizeof res->mi_name[e], "%s", t.ev.mi[e].name);
      res->mi_bound[e] = ir_mi_bound(t.ev.mi[e].terms, t.ev.mi[e].nterms);
    }
    snprintf(res->dir, sizeof res->dir, "%s", t.out);
  }
  if (!st && t.ranks > 1) st = check_same_state(&t);
  if (tty && !st && t.leader) fputc('\n', stderr);
  if (prof && profiled > 0 && t.leader)
    profile_report(prof, "train_step", profiled, profiled_ms, stderr);
  if (!st && t.leader && stop)
    fprintf(stderr, "migc train: interrupted at step %lld; checkpoint saved in %s/checkpoints\n",
            (long long)t.step, t.out);
  else if (!st && t.leader)
    fprintf(stderr, "migc train: done, %lld steps; checkpoints in %s/checkpoints, samples in "
                    "%s/samples, metrics in %s/metrics.csv\n",
            (long long)t.step, t.out, t.out, t.out);
  sigaction(SIGINT, &old_sa, NULL);
  if (t.train) free_outputs(outs, t.train->noutputs);
  free(out_ptr);
  for (int k = 0; k < 2; k++) free_outputs(t.in[k], t.nin[k]), free(t.in_ptr[k]);
  if (metrics) fclose(metrics);
  eval_plan_close(&t.ev);
  free(t.bound);
  dataset_close(&t.ds);
  model_close(&t.md);
  return st;
}

/* ---- several seeds --------------------------------------------------------------------- */

/* The median of n values (the mean of the middle two for even n); sorts v. */
static double median(double *v, int n) {
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
      double x = v[j];
      v[j] = v[j - 1];
      v[j - 1] = x;
    }
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* A seed's row of the table as numbers: steps, seconds, the estimates, accuracy. */
static void row_values(const train_result *r, double *v) {
  int k = 0;
  v[k++] = (double)r->steps;
  v[k++] = r->seconds;
  for (int e = 0; e < r->nmi; e++) v[k++] = r->eval.mi[e];
  v[k] = r->eval.accuracy;
}

/* seeds.csv and the table on stdout: a row per seed, the medians, the best seed's row. */
static int write_seeds(const train_options *o, const train_result *r, const char *dir) {
  int n = o->nseeds, ncol = 3 + r[0].nmi;
  double v[EVAL_MAX_MI + 3], med[EVAL_MAX_MI + 3], *col = malloc((size_t)n * sizeof *col);
  if (!col) return fprintf(stderr, "migc train: out of memory\n"), 1;
  int best = 0;
  for (int i = 1; i < n; i++)
    if (r[i].eval.accuracy > r[best].eval.accuracy) best = i;
  for (int c = 0; c < ncol; c++) {
    for (int i = 0; i < n; i++) row_values(&r[i], v), col[i] = v[c];
    med[c] = median(col, n);
  }
  free(col);
  char *csv = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&csv, &len);
  if (!out) return fprintf(stderr, "migc train: out of memory\n"), 1;
  fprintf(out, "seed,steps,seconds");
  for (int e = 0; e < r[0].nmi; e++) fprintf(out, ",%s", r[0].mi_name[e]);
  fprintf(out, ",accuracy\n");
  printf("%-14s %8s %9s", "seed", "steps", "seconds");
  for (int e = 0; e < r[0].nmi; e++) {
    char h[96];
    snprintf(h, sizeof h, "%s (max %.4f)", r[0].mi_name[e], r[0].mi_bound[e]);
    printf(" %20s", h);
  }
  printf(" %9s\n", "accuracy");
  for (int i = 0; i < n + 2; i++) {
    char name[48], label[48];
    if (i < n) {
      row_values(&r[i], v);
      snprintf(name, sizeof name, "%llu", (unsigned long long)o->seeds[i]);
      snprintf(label, sizeof label, "%s", name);
    } else if (i == n) {
      memcpy(v, med, sizeof v);
      snprintf(name, sizeof name, "median");
      snprintf(label, sizeof label, "median");
    } else {
      row_values(&r[best], v);
      snprintf(name, sizeof name, "best");
      snprintf(label, sizeof label, "best (seed %llu)", (unsigned long long)o->seeds[best]);
    }
    fprintf(out, "%s,%.6g,%.3f", name, v[0], v[1]);
    printf("%-14s %8.6g %9.3f", label, v[0], v[1]);
    for (int c = 2; c < ncol; c++) fprintf(out, ",%.6g", v[c]), printf(" %20.4f", v[c]);
    fputc('\n', out);
    putchar('\n');
  }
  fclose(out);
  char path[1200], err[1024];
  snprintf(path, sizeof path, "%s/seeds.csv", dir);
  const void *parts[1] = {csv};
  size_t lens[1] = {len};
  int st = file_write_atomic(path, parts, lens, 1, err, sizeof err);
  if (st)
    fprintf(stderr, "migc train: %s\n", err);
  else
    fprintf(stderr, "migc train: %d seeds done; each in %s/seed-S, the table in %s\n", n, dir, path);
  free(csv);
  return st;
}

int train_seeds(const train_options *o, diag_sink *d) {
  train_result *r = calloc((size_t)o->nseeds, sizeof *r);
  if (!r) return fprintf(stderr, "migc train: out of memory\n"), 1;
  int st = 0, done = 0;
  for (int i = 0; i < o->nseeds && !st; i++) {
    train_options so = *o;
    char sub[64];
    snprintf(sub, sizeof sub, "seed-%llu", (unsigned long long)o->seeds[i]);
    so.seed = o->seeds[i];
    so.seed_given = true;
    so.subdir = sub;
    so.eval_last = true;
    if (collective_rank() == 0)
      fprintf(stderr, "migc train: seed %llu (%d of %d)\n", (unsigned long long)o->seeds[i],
              i + 1, o->nseeds);
    st = train_run(&so, d, &r[i]);
    if (!st && r[i].interrupted) {
      if (collective_rank() == 0)
        fprintf(stderr, "migc train: interrupted in seed %llu; no seeds.csv (the seeds done "
                        "are in their directories)\n", (unsigned long long)o->seeds[i]);
      break;
    }
    done += !st;
  }
  if (!st && done == o->nseeds && collective_rank() == 0) {
    char dir[1024]; /* the seeds' parent: DIR of DIR/seed-S */
    snprintf(dir, sizeof dir, "%s", r[0].dir);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    st = write_seeds(o, r, dir);
  }
  free(r);
  return st;
}
