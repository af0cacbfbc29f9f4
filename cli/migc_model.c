/* migc_model.c: compiling a model for running it, running its functions on native
 * code or the interpreter, and its checkpoints (see migc_model.h). */
#include "migc_model.h"

#include "runtime/runtime.h"

#include <cblas.h>

#include <dirent.h>
#include <sched.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int threads_in_use = 1; /* what model_set_threads last set */

static int md_fail(model *md, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int md_fail(model *md, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(md->err, sizeof md->err, fmt, ap);
  va_end(ap);
  return 1;
}

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ULL; /* FNV-1a */
  return h;
}

static int64_t memory_limit; /* 0: not set, use the machine's memory */

int64_t model_memory_limit(void) {
  if (memory_limit > 0) return memory_limit;
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? (int64_t)pages * page : 0;
}

void model_set_memory_limit(int64_t bytes) { memory_limit = bytes; }


/* The module of one of `ranks` processes: elaborated for the global batch first, to
 * learn it (the model's own or `batch`), then again for its share of it. The second
 * elaboration reports into a sink of its own: its warnings are the first's again. */
static ir_module *elaborate_share(model *md, const ast_file *ast, const elab_options *eo,
                                  int ranks, bool local_bn, diag_sink *d) {
  ir_module *m = elaborate(ast, eo, d);
  md->batch = m ? m->batch : 0;
  if (!m || ranks <= 1) return m;
  ir_module_free(m);
  if (md->batch % ranks) {
    md_fail(md, "the batch of %lld does not divide across %d processes; give --batch a "
                "multiple of %d", (long long)md->batch, ranks, ranks);
    return NULL;
  }
  elab_options share = *eo;
  share.batch = md->batch / ranks;
  share.ranks = ranks;
  share.local_bn = local_bn;
  diag_sink again;
  diag_init(&again);
  m = elaborate(ast, &share, &again);
  if (again.nerrors) {
    md_fail(md, "at a batch of %lld per process: %s", (long long)share.batch, again.entries[0].msg);
    ir_module_free(m);
    m = NULL;
  }
  diag_free(&again);
  if (m) m->ranks = ranks;
  return m;
}

/* One scratch arena of `bytes` (64-byte aligned) for every function: a training run
 * that draws sample grids touches generate's arena as well as train_step's, and kept
 * apart they both stay resident (infogan_mnist at batch 64: 84 + 28 MB). */
static int share_arena(model *md, size_t bytes) {
  md->arena = aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
  if (!md->arena) return md_fail(md, "out of memory for %zu bytes of scratch", bytes);
  for (int k = 0; k < md->m->nfuncs; k++) md->scratch[k] = md->arena;
  return 0;
}

int model_open(model *md, const char *path, const const_overrides *ov, int64_t batch,
               int ranks, bool local_bn, bool interpret, const cg_options *co,
               diag_sink *d) {
  memset(md, 0, sizeof *md);
  if (!realpath(path, md->file)) snprintf(md->file, sizeof md->file, "%s", path);
  size_t used = 0;
  for (int i = 0; ov && i < ov->n; i++) {
    int k = snprintf(md->settings + used, sizeof md->settings - used, "%s%s=%.17g", i ? "," : "",
                     ov->items[i].name, ov->items[i].value);
    if (k < 0 || (size_t)k >= sizeof md->settings - used) return md_fail(md, "-D settings too long");
    used += (size_t)k;
  }
  ast_file *ast = parse_file(d, path);
  if (!ast || d->nerrors) {
    if (ast) ast_free(ast);
    return md_fail(md, "%s has errors", path);
  }
  elab_options eo = {.overrides = ov, .batch = batch, .max_bytes = model_memory_limit()};
  md->m = elaborate_share(md, ast, &eo, ranks, local_bn, d);
  ast_free(ast);
  if (!md->m && md->err[0]) return 1;
  pass_options po = {.verify_each = true};
  if (!md->m || passes_run(md->m, &po, d)) return md_fail(md, "%s does not compile", path);
  /* Gradients and optimizer moments came with the passes: check again, before any
   * buffer is allocated. */
  if (!ir_memory_fits(md->m, eo.max_bytes, md->err, sizeof md->err)) return 1;
  /* The program: the source, the settings that change it, the global batch (not how
   * many processes share it: a run resumes on any number of them). */
  uint64_t h = 1469598103934665603ULL;
  for (int i = 0; i < d->nsources; i++) h = hash_bytes(h, d->sources[i].text, strlen(d->sources[i].text));
  for (int i = 0; ov && i < ov->n; i++) {
    h = hash_bytes(h, ov->items[i].name, strlen(ov->items[i].name));
    h = hash_bytes(h, &ov->items[i].value, sizeof(double));
  }
  md->hash = hash_bytes(h, &md->batch, sizeof md->batch);
  md->state = calloc((size_t)md->m->state_size + 1, sizeof *md->state);
  if (interpret) return 0;
  md->prog = cg_compile(md->m, co, md->err, sizeof md->err);
  if (!md->prog) return 1;
  md->entries = calloc((size_t)md->m->nfuncs + 1, sizeof *md->entries);
  md->scratch = calloc((size_t)md->m->nfuncs + 1, sizeof *md->scratch);
  if (!md->entries || !md->scratch) return md_fail(md, "out of memory");
  size_t most = 0;
  for (int k = 0; k < md->m->nfuncs; k++) {
    md->entries[k] = cg_lookup(md->prog, md->m->funcs[k]->name);
    size_t n = cg_scratch_size(md->prog, md->m->funcs[k]->name);
    if (n > most) most = n;
  }
  return share_arena(md, most);
}

int model_open_so(model *md, const char *path, const const_overrides *ov, int64_t batch,
                  const char *so, diag_sink *d) {
  if (model_open(md, path, ov, batch, 1, false, true, NULL, d)) return 1;
  /* a path without '/' would make dlopen search the library path, not the file */
  char where[1100];
  snprintf(where, sizeof where, "%s%s", strchr(so, '/') ? "" : "./", so);
  md->so = dlopen(where, RTLD_NOW | RTLD_LOCAL);
  if (!md->so) return md_fail(md, "cannot load %s: %s", so, dlerror());
  const char *text = dlsym(md->so, "migc_model_desc");
  cg_entry const *table = dlsym(md->so, "migc_model_entries");
  if (!text || !table) return md_fail(md, "%s was not written by migc compile (no model description)", so);
  /* the library has its own copy of the runtime, so its own threads: as many as ours */
  int (*set_threads)(int) = (int (*)(int))dlsym(md->so, "migc_set_threads");
  if (set_threads) set_threads(threads_in_use);
  model_desc desc;
  char err[512];
  if (model_desc_parse(text, &desc, err, sizeof err)) return md_fail(md, "%s: %s", so, err);
  int st = 0;
  if (model_desc_check_cpu(&desc, err, sizeof err)) st = md_fail(md, "%s: %s", so, err);
  else if (desc.hash != md->hash)
    st = md_fail(md, "%s was compiled from another program than %s (model source, -D or batch "
                     "differ: its hash %016llx, this run %016llx); compile it again",
                 so, path, (unsigned long long)desc.hash, (unsigned long long)md->hash);
  md->entries = calloc((size_t)md->m->nfuncs + 1, sizeof *md->entries);
  md->scratch = calloc((size_t)md->m->nfuncs + 1, sizeof *md->scratch);
  if (!st && (!md->entries || !md->scratch)) st = md_fail(md, "out of memory");
  size_t most = 0;
  for (int k = 0; k < md->m->nfuncs && !st; k++) {
    int f = model_desc_func(&desc, md->m->funcs[k]->name);
    if (f < 0) {
      st = md_fail(md, "%s has no function %s", so, md->m->funcs[k]->name);
      break;
    }
    md->entries[k] = table[f];
    if (desc.funcs[f].info.scratch_bytes > most) most = desc.funcs[f].info.scratch_bytes;
  }
  model_desc_free(&desc);
  return st ? st : share_arena(md, most);
}

void model_init(model *md, uint64_t seed) { ir_init_state(md->m, md->state, seed); }

/* The CPUs this process may run on: its affinity mask (taskset, cgroups' cpusets,
 * mpirun's binding), not the machine's count, so the default never oversubscribes. */
static int cpus_allowed(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  return cores > 0 ? (int)cores : 1;
}

int model_set_threads(int n) {
  if (n <= 0) n = cpus_allowed();
  n = migc_rt_set_threads(n);
  threads_in_use = n;
  return n;
}

int model_call(model *md, const ir_func *f, void *const *in, void *const *out) {
  if (!md->entries) { /* the interpreter allocates; copy its results into out */
    ir_tensor *ti = calloc((size_t)f->ninputs + 1, sizeof *ti);
    ir_tensor *to = calloc((size_t)f->noutputs + 1, sizeof *to);
    for (int j = 0; j < f->ninputs; j++) {
      const ir_input *inp = &md->m->inputs[f->inputs[j]];
      ti[j] = (ir_tensor){inp->dtype, inp->shape, in[j]};
    }
    ir_interp it = {.m = md->m, .state = md->state};
    int st = ir_interp_run(&it, f, ti, to);
    if (st) md_fail(md, "%s", it.err);
    for (int k = 0; k < f->noutputs && !st; k++) {
      memcpy(out[k], to[k].data, (size_t)shape_numel(to[k].shape) * 4);
      ir_tensor_free(&to[k]);
    }
    free(ti);
    free(to);
    return st;
  }
  int fi = 0;
  while (fi < md->m->nfuncs && md->m->funcs[fi] != f) fi++;
  if (md->entries[fi](md->state, in, out, md->scratch[fi]))
    return md_fail(md, "%s: a label or code is outside its range", f->name);
  return 0;
}

int model_run(model *md, const ir_func *f, const ir_tensor *in, ir_tensor *out) {
  void **ip = calloc((size_t)f->ninputs + 1, sizeof *ip);
  void **op = calloc((size_t)f->noutputs + 1, sizeof *op);
  for (int j = 0; j < f->ninputs; j++) ip[j] = in[j].data;
  for (int k = 0; k < f->noutputs; k++) {
    const ir_node *n = &f->nodes[f->outputs[k].node];
    out[k] = ir_tensor_alloc(n->dtype, n->shape);
    op[k] = out[k].data;
  }
  int st = model_call(md, f, ip, op);
  free(ip);
  free(op);
  if (st)
    for (int k = 0; k < f->noutputs; k++) ir_tensor_free(&out[k]);
  return st;
}

void model_fill(const model *md, int idx, uint64_t seed, uint32_t stream, uint64_t counter,
                int64_t sample0, void *data) {
  const ir_input *in = &md->m->inputs[idx];
  if (in->kind != INPUT_DATA) { /* the runtime's code: a compiled model draws the same */
    int64_t n = shape_numel(in->shape);
    int64_t per_sample = in->shape.batched && in->shape.dim[0] > 0 ? n / in->shape.dim[0] : 0;
    latent_draw_part(data, n, idx, sample0 * per_sample, in->kind == INPUT_SEED,
                     (int)in->dist, in->a, in->b, seed, stream, counter);
  }
}

void model_draw(const model *md, int idx, uint64_t seed, uint32_t stream, uint64_t counter,
                int64_t sample0, ir_tensor *x) {
  const ir_input *in = &md->m->inputs[idx];
  *x = ir_tensor_alloc(in->dtype, in->shape);
  model_fill(md, idx, seed, stream, counter, sample0, x->data);
}

_Static_assert((int)DIST_UNIFORM == (int)MIGC_DIST_UNIFORM &&
                   (int)DIST_NORMAL == (int)MIGC_DIST_NORMAL &&
                   (int)DIST_CATEGORICAL == (int)MIGC_DIST_CATEGORICAL &&
                   (int)DIST_BERNOULLI == (int)MIGC_DIST_BERNOULLI &&
                   (int)DIST_NONE == (int)MIGC_DIST_NONE,
               "ir_dist and migc_dist agree");

/* ---- checkpoints ------------------------------------------------------------------------ */

int model_save(model *md, const char *path, int64_t step, uint64_t seed) {
  const ir_module *m = md->m;
  st_tensor *ts = calloc((size_t)m->nvars, sizeof *ts);
  for (int v = 0; v < m->nvars; v++) {
    ts[v].name = m->vars[v].name;
    ts[v].dtype = ST_F32;
    ts[v].rank = m->vars[v].shape.rank;
    for (int k = 0; k < ts[v].rank; k++) ts[v].shape[k] = m->vars[v].shape.dim[k];
    ts[v].data = md->state + m->vars[v].offset;
  }
  char sstep[32], sseed[32], shash[32], sbatch[32];
  snprintf(sstep, sizeof sstep, "%lld", (long long)step);
  snprintf(sseed, sizeof sseed, "%llu", (unsigned long long)seed);
  snprintf(shash, sizeof shash, "%016llx", (unsigned long long)md->hash);
  snprintf(sbatch, sizeof sbatch, "%lld", (long long)md->batch);
  /* no thread count: a run is the same bits for every --threads (runtime/pool.c), so a
   * checkpoint is the same bytes too, and the same as one the C ABI writes.
   * (Checkpoints of older migc may carry "threads"; it is ignored.) */
  st_meta meta[] = {{"format", "migc checkpoint 1"}, {"model", m->name},
                    {"model_file", md->file},        {"settings", md->settings},
                    {"batch", sbatch},               {"program_hash", shash},
                    {"step", sstep},                 {"seed", sseed},
                    {"migc", MIGC_VERSION}};
  int nmeta = (int)(sizeof meta / sizeof *meta);
  int st = safetensors_write(path, ts, m->nvars, meta, nmeta, md->err, sizeof md->err);
  free(ts);
  return st;
}

int model_load(model *md, const char *path, int64_t *step, uint64_t *seed) {
  st_file f;
  if (safetensors_read(path, &f, md->err, sizeof md->err)) return 1;
  int st = 0;
  const char *hash = st_file_meta(&f, "program_hash"), *sstep = st_file_meta(&f, "step");
  const char *sseed = st_file_meta(&f, "seed");
  char want[32];
  snprintf(want, sizeof want, "%016llx", (unsigned long long)md->hash);
  if (!hash || !sstep || !sseed)
    st = md_fail(md, "%s: not a migc checkpoint (no program_hash, step or seed metadata)", path);
  else if (strcmp(hash, want))
    st = md_fail(md, "%s was written by another program (model source, -D or batch differ: "
                     "hash %s, this run %s)", path, hash, want);
  for (int v = 0; v < md->m->nvars && !st; v++) {
    const ir_var *var = &md->m->vars[v];
    const st_tensor *x = st_file_find(&f, var->name);
    bool same = x && x->dtype == ST_F32 && x->rank == var->shape.rank;
    for (int k = 0; same && k < x->rank; k++) same = x->shape[k] == var->shape.dim[k];
    if (!same)
      st = md_fail(md, "%s: %s is %s", path, var->name, x ? "of another shape or dtype" : "missing");
    else
      memcpy(md->state + var->offset, x->data, (size_t)shape_numel(var->shape) * sizeof(float));
  }
  char *end = NULL;
  long long n = st ? 0 : strtoll(sstep, &end, 10);
  if (!st && (end == sstep || *end || n < 0))
    st = md_fail(md, "%s: its step metadata \"%s\" is not a step count", path, sstep);
  if (!st) {
    const char **names = malloc(((size_t)md->m->nvars + 1) * sizeof *names);
    float *values = malloc(((size_t)md->m->nvars + 1) * sizeof *values);
    int nc = 0;
    for (int v = 0; names && values && v < md->m->nvars; v++) {
      const ir_var *var = &md->m->vars[v];
      if (var->kind != VAR_STEP) continue;
      names[nc] = var->name;
      values[nc++] = md->state[var->offset];
    }
    if (!names || !values)
      st = md_fail(md, "%s: out of memory", path);
    else
      st = st_check_step_counters(path, (unsigned long long)n, nc, names, values, md->err,
                                  sizeof md->err) != 0;
    free(names);
    free(values);
  }
  if (!st) {
    *step = n;
    *seed = strtoull(sseed, NULL, 10);
  }
  st_file_free(&f);
  return st;
}

int64_t *checkpoint_steps(const char *dir, int *count) {
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

int checkpoint_find(const char *spec, char *path, size_t n, char *err, size_t errn) {
  char dir[1200];
  snprintf(dir, sizeof dir, "%s/checkpoints", spec);
  DIR *dp = opendir(dir);
  if (!dp) {
    FILE *fp = fopen(spec, "rb");
    if (!fp) {
      snprintf(err, errn, "%s: neither a run directory nor a checkpoint file", spec);
      return 1;
    }
    fclose(fp);
    snprintf(path, n, "%s", spec);
    return 0;
  }
  closedir(dp);
  int count;
  int64_t *steps = checkpoint_steps(spec, &count);
  if (count == 0) {
    free(steps);
    snprintf(err, errn, "%s holds no checkpoint", dir);
    return 1;
  }
  snprintf(path, n, "%s/step-%08lld.safetensors", dir, (long long)steps[count - 1]);
  free(steps);
  return 0;
}

int model_open_checkpoint(model *md, const char *path, const char *model_file,
                          bool interpret, diag_sink *d, int64_t *step, uint64_t *seed) {
  char err[900];
  st_file f;
  if (safetensors_read(path, &f, err, sizeof err)) {
    memset(md, 0, sizeof *md);
    snprintf(md->err, sizeof md->err, "%s", err);
    return 1;
  }
  const char *file = st_file_meta(&f, "model_file"), *settings = st_file_meta(&f, "settings");
  const char *batch = st_file_meta(&f, "batch");
  char file_copy[1024] = "", settings_copy[512] = "";
  int64_t b = batch ? strtoll(batch, NULL, 10) : 0;
  snprintf(file_copy, sizeof file_copy, "%s", model_file ? model_file : file ? file : "");
  snprintf(settings_copy, sizeof settings_copy, "%s", settings ? settings : "");
  st_file_free(&f);
  if (!file_copy[0]) {
    memset(md, 0, sizeof *md);
    snprintf(md->err, sizeof md->err, "%s does not name its model file; give it with --model", path);
    return 1;
  }
  const_overrides ov = {0};
  for (char *tok = strtok(settings_copy, ","); tok; tok = strtok(NULL, ",")) {
    if (!overrides_add(&ov, tok, err, sizeof err)) {
      overrides_free(&ov);
      memset(md, 0, sizeof *md);
      snprintf(md->err, sizeof md->err, "%s: its -D settings do not parse: %s", path, err);
      return 1;
    }
  }
  int st = model_open(md, file_copy, &ov, b, 1, false, interpret, NULL, d);
  overrides_free(&ov);
  if (!st) st = model_load(md, path, step, seed);
  return st;
}

void model_close(model *md) {
  free(md->arena);
  free(md->scratch);
  free(md->entries);
  cg_free(md->prog);
  if (md->so) dlclose(md->so);
  free(md->state);
  ir_module_free(md->m);
  memset(md, 0, sizeof *md);
}
