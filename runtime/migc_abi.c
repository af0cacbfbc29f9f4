/* migc_abi.c: the C ABI of runtime/migc.h, linked into every shared object that
 * `migc compile` writes. It knows no model: it reads the description the object
 * carries (migc_model_desc, parsed by model_desc.c) and calls the entries in
 * migc_model_entries (one per function, in the description's order, with codegen's
 * entry ABI: int fn(float *state, void *const *inputs, void *const *outputs,
 * void *scratch)). Initialisation, latents and checkpoints go through the same runtime
 * code `migc train` uses, so both agree bit for bit. This file is only linked into
 * shared objects: migc itself never references it. */
#include "runtime/migc.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*migc_entry)(float *state, void *const *inputs, void *const *outputs,
                          void *scratch);

/* OpenBLAS's own call (cblas.h), declared here to keep its headers out of the runtime. */
void openblas_set_num_threads(int n);

/* Defined by the object codegen emits (codegen/emit_object.c). */
extern const char migc_model_desc[];
extern const migc_entry migc_model_entries[];

struct migc_model {
  model_desc d;
  float *state;       /* d.state_size floats, 64-byte aligned */
  void *scratch;      /* the largest function's scratch, 64-byte aligned */
  void **drawn;       /* per model input: room for a drawn latent (lazily made) */
  void **train_out;   /* per train_step output: its value */
  int train;          /* index of train_step, or -1 */
  bool have_metrics;  /* a step has finished */
  uint64_t seed;
  int64_t step;
  char err[1024];
};

static migc_status fail(migc_model *m, migc_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static migc_status fail(migc_model *m, migc_status st, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m->err, sizeof m->err, fmt, ap);
  va_end(ap);
  return st;
}

static migc_status ok(migc_model *m) {
  m->err[0] = '\0';
  return MIGC_OK;
}

void migc_abi_set_error(migc_model *m, const char *msg) {
  if (m) snprintf(m->err, sizeof m->err, "%s", msg);
}

static void *alloc64(size_t bytes) {
  return aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
}

int migc_abi_version(void) { return MIGC_ABI_VERSION; }

static void init_state(migc_model *m) {
  memset(m->state, 0, (size_t)m->d.state_size * sizeof(float));
  for (int v = 0; v < m->d.nvars; v++) {
    const desc_var *x = &m->d.vars[v];
    if (x->info.kind == MIGC_VAR_OPT_M || x->info.kind == MIGC_VAR_OPT_V ||
        x->info.kind == MIGC_VAR_STEP)
      continue;
    state_init_fill(m->state + x->info.offset, x->info.numel, x->info.name, x->init, x->fan_in,
                    x->a, x->b, m->seed);
  }
}

migc_status migc_create(uint64_t seed, migc_model **out, char *err, size_t errn) {
  char dummy[8];
  if (!err) err = dummy, errn = sizeof dummy;
  if (!out) {
    snprintf(err, errn, "migc_create: out is NULL");
    return MIGC_E_ARG;
  }
  *out = NULL;
  migc_model *m = calloc(1, sizeof *m);
  if (!m) {
    snprintf(err, errn, "migc_create: out of memory");
    return MIGC_E_NOMEM;
  }
  if (model_desc_parse(migc_model_desc, &m->d, err, errn)) {
    free(m);
    return MIGC_E_MODEL;
  }
  char why[512];
  if (model_desc_check_cpu(&m->d, why, sizeof why)) {
    snprintf(err, errn, "migc_create: %s", why);
    model_desc_free(&m->d);
    free(m);
    return MIGC_E_CPU;
  }
  size_t scratch = 0;
  for (int k = 0; k < m->d.nfuncs; k++)
    if (m->d.funcs[k].info.scratch_bytes > scratch) scratch = m->d.funcs[k].info.scratch_bytes;
  m->train = model_desc_func(&m->d, "train_step");
  int nout = m->train >= 0 ? m->d.funcs[m->train].info.noutputs : 0;
  m->state = alloc64((size_t)m->d.state_size * sizeof(float));
  m->scratch = alloc64(scratch);
  m->drawn = calloc((size_t)m->d.ninputs + 1, sizeof *m->drawn);
  m->train_out = calloc((size_t)nout + 1, sizeof *m->train_out);
  bool good = m->state && m->scratch && m->drawn && m->train_out;
  for (int k = 0; good && k < nout; k++)
    good = (m->train_out[k] = alloc64((size_t)m->d.funcs[m->train].outputs[k].numel * 4)) != NULL;
  if (!good) {
    migc_destroy(m);
    snprintf(err, errn, "migc_create: out of memory");
    return MIGC_E_NOMEM;
  }
  m->seed = seed;
  init_state(m);
  /* GEMMs are split over the library's own threads (pool.c, gemm.c), each block on one
   * OpenBLAS thread: more would oversubscribe the cores. Process-wide; docs/abi.md
   * says so. */
  openblas_set_num_threads(1);
  *out = m;
  return MIGC_OK;
}

int migc_set_threads(int n) { return migc_rt_set_threads(n); }

void migc_destroy(migc_model *m) {
  if (!m) return;
  for (int k = 0; m->drawn && k < m->d.ninputs; k++) free(m->drawn[k]);
  int nout = m->train >= 0 && m->d.funcs ? m->d.funcs[m->train].info.noutputs : 0;
  for (int k = 0; m->train_out && k < nout; k++) free(m->train_out[k]);
  free(m->drawn);
  free(m->train_out);
  free(m->state);
  free(m->scratch);
  model_desc_free(&m->d);
  free(m);
}

const char *migc_last_error(const migc_model *m) {
  return m ? m->err : "migc_last_error: the model is NULL";
}
const char *migc_model_name(const migc_model *m) { return m ? m->d.name : NULL; }
int64_t migc_batch(const migc_model *m) { return m ? m->d.batch : -1; }
uint64_t migc_program_hash(const migc_model *m) { return m ? m->d.hash : 0; }
uint64_t migc_seed(const migc_model *m) { return m ? m->seed : 0; }
int64_t migc_step(const migc_model *m) { return m ? m->step : -1; }
float *migc_state(migc_model *m) { return m ? m->state : NULL; }
int64_t migc_state_size(const migc_model *m) { return m ? m->d.state_size : -1; }
int migc_var_count(const migc_model *m) { return m ? m->d.nvars : -1; }
int migc_input_count(const migc_model *m) { return m ? m->d.ninputs : -1; }
int migc_function_count(const migc_model *m) { return m ? m->d.nfuncs : -1; }

/* Can fail, so it reports like the calls that return a status (docs/abi.md). */
int migc_function_find(const migc_model *cm, const char *name) {
  migc_model *m = (migc_model *)cm;
  if (!m) return -1;
  if (!name) return fail(m, MIGC_E_ARG, "migc_function_find: name is NULL"), -1;
  int f = model_desc_func(&m->d, name);
  if (f < 0)
    return fail(m, MIGC_E_ARG, "migc_function_find: the model has no function %s", name), -1;
  return ok(m), f;
}

/* Checks m and out, and i against n; the name of the call goes into the message. */
#define CHECK_INDEX(m, out, i, n, what)                                                     \
  do {                                                                                      \
    if (!(m)) return MIGC_E_ARG;                                                            \
    if (!(out)) return fail(m, MIGC_E_ARG, "%s: out is NULL", __func__);                   \
    if ((i) < 0 || (i) >= (n))                                                              \
      return fail(m, MIGC_E_ARG, "%s: %s %d does not exist (the model has %d)", __func__,  \
                  what, (int)(i), (int)(n));                                                \
  } while (0)

migc_status migc_var(migc_model *m, int i, migc_var_info *out) {
  CHECK_INDEX(m, out, i, m->d.nvars, "variable");
  *out = m->d.vars[i].info;
  out->data = m->state + out->offset;
  return ok(m);
}

migc_status migc_input(migc_model *m, int i, migc_input_info *out) {
  CHECK_INDEX(m, out, i, m->d.ninputs, "input");
  *out = m->d.inputs[i];
  return ok(m);
}

migc_status migc_function(migc_model *m, int i, migc_function_info *out) {
  CHECK_INDEX(m, out, i, m->d.nfuncs, "function");
  *out = m->d.funcs[i].info;
  return ok(m);
}

migc_status migc_function_output(migc_model *m, int f, int k, migc_output_info *out) {
  CHECK_INDEX(m, out, f, m->d.nfuncs, "function");
  if (k < 0 || k >= m->d.funcs[f].info.noutputs)
    return fail(m, MIGC_E_ARG, "%s: %s has no output %d (it has %d)", __func__,
                m->d.funcs[f].info.name, k, m->d.funcs[f].info.noutputs);
  *out = m->d.funcs[f].outputs[k];
  return ok(m);
}

static void draw(migc_model *m, int i, uint32_t stream, uint64_t counter, void *out) {
  const migc_input_info *x = &m->d.inputs[i];
  latent_draw_input(out, x->numel, i, x->kind == MIGC_INPUT_SEED, x->dist, x->a, x->b, m->seed,
                    stream, counter);
}

migc_status migc_draw_input(migc_model *m, int i, uint32_t stream, uint64_t counter, void *out,
                            size_t bytes) {
  CHECK_INDEX(m, out, i, m->d.ninputs, "input");
  const migc_input_info *x = &m->d.inputs[i];
  if (x->kind == MIGC_INPUT_DATA)
    return fail(m, MIGC_E_ARG, "%s: input %s is real data, not drawn", __func__, x->name);
  if (bytes != (size_t)x->numel * 4)
    return fail(m, MIGC_E_ARG, "%s: input %s needs %lld bytes, not %zu", __func__, x->name,
                (long long)x->numel * 4, bytes);
  draw(m, i, stream, counter, out);
  return ok(m);
}

/* How far a data value may lie outside its input's range [a, b], as a fraction of b - a:
 * room for rounding in the host's scaling, none for another range. */
#define DATA_RANGE_SLACK 1e-4

/* Where element e of input x sits, for messages: ", sample S" (and ", element E" when a
 * sample holds more than one); ", element E" alone for an unbatched input (a seed). */
static void where_in(const migc_input_info *x, int64_t e, char *buf, size_t n) {
  bool batched = x->kind != MIGC_INPUT_SEED && x->rank > 0 && x->shape[0] > 0;
  int64_t per = batched ? x->numel / x->shape[0] : 0;
  if (!per) snprintf(buf, n, ", element %lld", (long long)e);
  else if (per == 1) snprintf(buf, n, ", sample %lld", (long long)e);
  else snprintf(buf, n, ", sample %lld, element %lld", (long long)(e / per), (long long)(e % per));
}

/* The values of function f's inputs, before any is used: a categorical code in
 * [0, a), data finite and in its range, any other float finite (seeds are free). The
 * compiled code checks codes too, but only after it may have changed the state, and
 * without saying which; a NaN or a wrong scale in the data would train silently. */
static migc_status check_values(migc_model *m, int f, void *const *in, const char *who) {
  const migc_function_info *fi = &m->d.funcs[f].info;
  char at[96];
  for (int j = 0; j < fi->ninputs; j++) {
    const migc_input_info *x = &m->d.inputs[fi->inputs[j]];
    if (x->dtype == MIGC_I32 && x->dist == MIGC_DIST_CATEGORICAL) {
      const int32_t *v = in[j];
      for (int64_t e = 0; e < x->numel; e++)
        if (v[e] < 0 || v[e] >= x->a) {
          where_in(x, e, at, sizeof at);
          return fail(m, MIGC_E_RANGE, "%s: input %s%s: code %d is outside [0, %g)", who,
                      x->name, at, (int)v[e], x->a);
        }
    } else if (x->dtype == MIGC_F32) {
      const float *v = in[j];
      bool data = x->kind == MIGC_INPUT_DATA;
      double slack = DATA_RANGE_SLACK * (x->b - x->a);
      for (int64_t e = 0; e < x->numel; e++) {
        bool finite = isfinite(v[e]);
        if (finite && (!data || (v[e] >= x->a - slack && v[e] <= x->b + slack))) continue;
        where_in(x, e, at, sizeof at);
        if (!finite)
          return fail(m, MIGC_E_RANGE, "%s: input %s%s: %g is not a finite number", who,
                      x->name, at, v[e]);
        return fail(m, MIGC_E_RANGE, "%s: input %s%s: %g is outside its range [%g, %g]", who,
                    x->name, at, v[e], x->a, x->b);
      }
    }
  }
  return MIGC_OK;
}

static migc_status call(migc_model *m, int f, void *const *in, void *const *out,
                        const char *who) {
  migc_status st = check_values(m, f, in, who);
  if (st) return st;
  if (migc_model_entries[f](m->state, in, out, m->scratch))
    return fail(m, MIGC_E_RANGE, "%s: a label or code is outside its range",
                m->d.funcs[f].info.name);
  return ok(m);
}

migc_status migc_run(migc_model *m, int f, const void *const *inputs, int ninputs,
                     void *const *outputs, int noutputs) {
  if (!m) return MIGC_E_ARG;
  if (f < 0 || f >= m->d.nfuncs)
    return fail(m, MIGC_E_ARG, "migc_run: function %d does not exist (the model has %d)", f,
                m->d.nfuncs);
  const migc_function_info *fi = &m->d.funcs[f].info;
  if (ninputs != fi->ninputs || noutputs != fi->noutputs)
    return fail(m, MIGC_E_ARG, "migc_run: %s takes %d inputs and %d outputs, not %d and %d",
                fi->name, fi->ninputs, fi->noutputs, ninputs, noutputs);
  if ((fi->ninputs && !inputs) || (fi->noutputs && !outputs))
    return fail(m, MIGC_E_ARG, "migc_run: %s: inputs or outputs is NULL", fi->name);
  for (int j = 0; j < fi->ninputs; j++)
    if (!inputs[j])
      return fail(m, MIGC_E_ARG, "migc_run: %s: input %d (%s) is NULL", fi->name, j,
                  m->d.inputs[fi->inputs[j]].name);
  for (int k = 0; k < fi->noutputs; k++)
    if (!outputs[k])
      return fail(m, MIGC_E_ARG, "migc_run: %s: output %d (%s) is NULL", fi->name, k,
                  m->d.funcs[f].outputs[k].name);
  char who[300];
  snprintf(who, sizeof who, "migc_run: %s", fi->name);
  migc_status st = call(m, f, (void *const *)inputs, outputs, who);
  /* train_step advances the optimizers' step counters: count it, so the step saved
   * with the state agrees with them (migc_load checks that they do) */
  if (!st && f == m->train) m->step++, m->have_metrics = false;
  return st;
}

/* The inputs of function f: data from `data` (data_floats checked), the rest from
 * given[j] (ngiven entries: none, or exactly the function's inputs) or drawn for (seed,
 * RNG_STREAM_LATENT, step). in has room for 64. */
static migc_status gather(migc_model *m, int f, const float *data, size_t data_floats,
                          const void *const *given, int ngiven, void **in, const char *who) {
  const migc_function_info *fi = &m->d.funcs[f].info;
  if (!given && ngiven)
    return fail(m, MIGC_E_ARG, "%s: latents is NULL but nlatents is %d (NULL draws every input: "
                "pass 0)", who, ngiven);
  if (given && ngiven != fi->ninputs)
    return fail(m, MIGC_E_ARG, "%s: %d latents given, %s takes %d inputs", who, ngiven, fi->name,
                fi->ninputs);
  for (int j = 0; j < fi->ninputs; j++) {
    int idx = fi->inputs[j];
    const migc_input_info *x = &m->d.inputs[idx];
    if (x->kind == MIGC_INPUT_DATA) {
      if (!data)
        return fail(m, MIGC_E_ARG, "%s: the data for input %s is NULL", who, x->name);
      if (data_floats != (size_t)x->numel)
        return fail(m, MIGC_E_ARG, "%s: input %s holds %lld floats, not %zu", who, x->name,
                    (long long)x->numel, data_floats);
      in[j] = (void *)data;
    } else if (given && given[j]) {
      in[j] = (void *)given[j];
    } else if (x->kind == MIGC_INPUT_LABEL && f == m->train) {
      return fail(m, MIGC_E_ARG, "%s: input %s holds the data set's labels of this batch, "
                  "which are not drawn: give them in latents[%d] (migc_data_batch reads them)",
                  who, x->name, j);
    } else {
      if (!m->drawn[idx] && !(m->drawn[idx] = alloc64((size_t)x->numel * 4)))
        return fail(m, MIGC_E_NOMEM, "%s: out of memory", who);
      draw(m, idx, RNG_STREAM_LATENT, (uint64_t)m->step, m->drawn[idx]);
      in[j] = m->drawn[idx];
    }
  }
  return MIGC_OK;
}

static int find_or_fail(migc_model *m, const char *name, const char *who) {
  int f = model_desc_func(&m->d, name);
  if (f < 0) fail(m, MIGC_E_ARG, "%s: the model has no %s function", who, name);
  return f;
}

migc_status migc_train_step(migc_model *m, const float *data, size_t data_floats,
                            const void *const *latents, int nlatents, float *metrics,
                            int nmetrics) {
  if (!m) return MIGC_E_ARG;
  int f = find_or_fail(m, "train_step", __func__);
  if (f < 0) return MIGC_E_ARG;
  const desc_func *df = &m->d.funcs[f];
  if (nmetrics < 0 || nmetrics > df->info.noutputs || (nmetrics > 0 && !metrics))
    return fail(m, MIGC_E_ARG, "%s: %d metrics asked for (train_step has %d outputs)%s",
                __func__, nmetrics, df->info.noutputs, nmetrics > 0 && !metrics ? ", into NULL" : "");
  void *in[64];
  migc_status st = gather(m, f, data, data_floats, latents, nlatents, in, __func__);
  if (st) return st;
  m->have_metrics = false;
  st = call(m, f, in, m->train_out, __func__);
  if (st) return st;
  m->have_metrics = true;
  m->step++;
  for (int k = 0; k < nmetrics; k++) metrics[k] = ((const float *)m->train_out[k])[0];
  return MIGC_OK;
}

migc_status migc_metric(const migc_model *cm, int k, const char **name, float *value) {
  migc_model *m = (migc_model *)cm;
  if (!m) return MIGC_E_ARG;
  if (m->train < 0 || !m->have_metrics)
    return fail(m, MIGC_E_ARG, "migc_metric: no training step has finished");
  const desc_func *df = &m->d.funcs[m->train];
  if (k < 0 || k >= df->info.noutputs)
    return fail(m, MIGC_E_ARG, "migc_metric: train_step has no output %d (it has %d)", k,
                df->info.noutputs);
  if (name) *name = df->outputs[k].name;
  if (value) *value = ((const float *)m->train_out[k])[0];
  return ok(m);
}

migc_status migc_generate(migc_model *m, const void *const *latents, int nlatents,
                          float *images, size_t image_floats) {
  if (!m) return MIGC_E_ARG;
  int f = find_or_fail(m, "generate", __func__);
  if (f < 0) return MIGC_E_ARG;
  const desc_func *df = &m->d.funcs[f];
  if (!images) return fail(m, MIGC_E_ARG, "%s: images is NULL", __func__);
  if (df->info.noutputs < 1 || image_floats != (size_t)df->outputs[0].numel)
    return fail(m, MIGC_E_ARG, "%s: the images hold %lld floats, not %zu", __func__,
                df->info.noutputs ? (long long)df->outputs[0].numel : 0LL, image_floats);
  void *in[64], *out[64];
  migc_status st = gather(m, f, NULL, 0, latents, nlatents, in, __func__);
  if (st) return st;
  /* outputs past the first go to scratch buffers the caller does not see */
  void *extra[64] = {0};
  out[0] = images;
  for (int k = 1; k < df->info.noutputs; k++) { /* at most 64 (model_desc.c) */
    out[k] = extra[k] = alloc64((size_t)df->outputs[k].numel * 4);
    if (!out[k]) st = fail(m, MIGC_E_NOMEM, "%s: out of memory", __func__);
  }
  if (!st) st = call(m, f, in, out, __func__);
  for (int k = 1; k < 64; k++) free(extra[k]);
  return st;
}

migc_status migc_encode(migc_model *m, const float *images, size_t image_floats,
                        void *const *outputs, int noutputs) {
  if (!m) return MIGC_E_ARG;
  int f = find_or_fail(m, "encode", __func__);
  if (f < 0) return MIGC_E_ARG;
  const desc_func *df = &m->d.funcs[f];
  if (!outputs) return fail(m, MIGC_E_ARG, "%s: outputs is NULL", __func__);
  if (noutputs != df->info.noutputs)
    return fail(m, MIGC_E_ARG, "%s: %d outputs given, encode has %d", __func__, noutputs,
                df->info.noutputs);
  for (int k = 0; k < df->info.noutputs; k++)
    if (!outputs[k])
      return fail(m, MIGC_E_ARG, "%s: output %d (%s) is NULL", __func__, k, df->outputs[k].name);
  void *in[64];
  migc_status st = gather(m, f, images, image_floats, NULL, 0, in, __func__);
  return st ? st : call(m, f, in, outputs, __func__);
}

/* ---- checkpoints: the format and metadata of cli/migc_model.c's model_save ---------- */

migc_status migc_save(migc_model *m, const char *path) {
  if (!m) return MIGC_E_ARG;
  if (!path) return fail(m, MIGC_E_ARG, "migc_save: path is NULL");
  st_tensor *ts = calloc((size_t)m->d.nvars + 1, sizeof *ts);
  if (!ts) return fail(m, MIGC_E_NOMEM, "migc_save: out of memory");
  for (int v = 0; v < m->d.nvars; v++) {
    const migc_var_info *x = &m->d.vars[v].info;
    ts[v].name = x->name;
    ts[v].dtype = ST_F32;
    ts[v].rank = x->rank;
    for (int k = 0; k < x->rank; k++) ts[v].shape[k] = x->shape[k];
    ts[v].data = m->state + x->offset;
  }
  char sstep[32], sseed[32], shash[32], sbatch[32];
  snprintf(sstep, sizeof sstep, "%lld", (long long)m->step);
  snprintf(sseed, sizeof sseed, "%llu", (unsigned long long)m->seed);
  snprintf(shash, sizeof shash, "%016llx", (unsigned long long)m->d.hash);
  snprintf(sbatch, sizeof sbatch, "%lld", (long long)m->d.batch);
  st_meta meta[] = {{"format", "migc checkpoint 1"}, {"model", m->d.name},
                    {"model_file", m->d.file},       {"settings", m->d.settings},
                    {"batch", sbatch},               {"program_hash", shash},
                    {"step", sstep},                 {"seed", sseed},
                    {"migc", MIGC_VERSION}};
  int rc = safetensors_write(path, ts, m->d.nvars, meta, (int)(sizeof meta / sizeof *meta),
                             m->err, sizeof m->err);
  free(ts);
  return rc ? MIGC_E_IO : ok(m);
}

static bool parse_u64(const char *s, uint64_t *v) {
  char *end;
  errno = 0;
  if (!s || !*s || *s == '-') return false;
  *v = strtoull(s, &end, 10);
  return !*end && !errno;
}

migc_status migc_load(migc_model *m, const char *path) {
  if (!m) return MIGC_E_ARG;
  if (!path) return fail(m, MIGC_E_ARG, "migc_load: path is NULL");
  FILE *fp = fopen(path, "rb");
  if (!fp) return fail(m, MIGC_E_IO, "%s: cannot open: %s", path, strerror(errno));
  fclose(fp);
  st_file f;
  if (safetensors_read(path, &f, m->err, sizeof m->err)) return MIGC_E_FORMAT;
  const char *hash = st_file_meta(&f, "program_hash"), *sstep = st_file_meta(&f, "step");
  const char *sseed = st_file_meta(&f, "seed");
  char want[32];
  snprintf(want, sizeof want, "%016llx", (unsigned long long)m->d.hash);
  uint64_t step = 0, seed = 0;
  migc_status st = MIGC_OK;
  if (!hash || !parse_u64(sstep, &step) || !parse_u64(sseed, &seed) || step > INT64_MAX)
    st = fail(m, MIGC_E_FORMAT, "%s: not a migc checkpoint (no program_hash, step or seed "
                                "metadata)", path);
  else if (strcmp(hash, want))
    st = fail(m, MIGC_E_MISMATCH, "%s was written by another program (model source, -D or "
                                  "batch differ: hash %s, this model %s)", path, hash, want);
  /* all or nothing: check every variable before changing the state */
  for (int v = 0; v < m->d.nvars && !st; v++) {
    const migc_var_info *x = &m->d.vars[v].info;
    const st_tensor *t = st_file_find(&f, x->name);
    bool same = t && t->dtype == ST_F32 && t->rank == x->rank;
    for (int k = 0; same && k < x->rank; k++) same = t->shape[k] == x->shape[k];
    if (!same)
      st = fail(m, MIGC_E_MISMATCH, "%s: %s is %s", path, x->name,
                t ? "of another shape or dtype" : "missing");
  }
  if (!st) {
    const char **names = malloc(((size_t)m->d.nvars + 1) * sizeof *names);
    float *values = malloc(((size_t)m->d.nvars + 1) * sizeof *values);
    int n = 0;
    for (int v = 0; names && values && v < m->d.nvars; v++) {
      const migc_var_info *x = &m->d.vars[v].info;
      if (x->kind != MIGC_VAR_STEP) continue;
      names[n] = x->name;
      values[n++] = *(const float *)st_file_find(&f, x->name)->data;
    }
    if (!names || !values)
      st = fail(m, MIGC_E_NOMEM, "%s: out of memory", path);
    else if (st_check_step_counters(path, (unsigned long long)step, n, names, values, m->err,
                                    sizeof m->err))
      st = MIGC_E_FORMAT;
    free(names);
    free(values);
  }
  for (int v = 0; v < m->d.nvars && !st; v++) {
    const migc_var_info *x = &m->d.vars[v].info;
    memcpy(m->state + x->offset, st_file_find(&f, x->name)->data, (size_t)x->numel * 4);
  }
  if (!st) {
    m->step = (int64_t)step;
    m->seed = seed;
    m->have_metrics = false;
    ok(m);
  }
  st_file_free(&f);
  return st;
}
