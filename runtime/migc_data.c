/* migc_data.c: the data reader of the C ABI (migc_data_*, runtime/migc.h): dataset.c
 * behind an opaque handle, shaped from the model's own description of its data input,
 * so a host needs no knowledge of the runtime's internals to feed migc train's batches. */
#include "runtime/migc.h"
#include "runtime/runtime.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct migc_data {
  dataset ds;
  int64_t batch, sample; /* images per batch (the model's), floats per image */
  char err[1024];
};

static migc_status open_fail(char *err, size_t errn, migc_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static migc_status open_fail(char *err, size_t errn, migc_status st, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errn, fmt, ap);
  va_end(ap);
  return st;
}

/* The training step's only data input, or -1 with a message. */
static int training_data_input(migc_model *m, char *err, size_t errn) {
  int f = migc_function_find(m, "train_step"), found = -1, count = 0;
  migc_function_info fi;
  if (f < 0 || migc_function(m, f, &fi) != MIGC_OK)
    return open_fail(err, errn, MIGC_E_ARG, "migc_data_open: the model has no train_step; "
                     "name its data input"), -1;
  for (int j = 0; j < fi.ninputs; j++) {
    migc_input_info in;
    if (migc_input(m, fi.inputs[j], &in) == MIGC_OK && in.kind == MIGC_INPUT_DATA)
      found = fi.inputs[j], count++;
  }
  if (count != 1)
    return open_fail(err, errn, MIGC_E_ARG, "migc_data_open: train_step reads %d data inputs; "
                     "name the one to feed", count), -1;
  return found;
}

static migc_status data_open(migc_model *m, int input, const char *spec, const char *data_dir,
                             migc_data **out, char *err, size_t errn) {
  if (!m || !spec || !out)
    return open_fail(err, errn, MIGC_E_ARG, "migc_data_open: %s is NULL",
                     !m ? "the model" : !spec ? "spec" : "out");
  *out = NULL;
  if (input < 0 && (input = training_data_input(m, err, errn)) < 0) return MIGC_E_ARG;
  migc_input_info x;
  /* per sample: [C,H,W] images or flat [D] (dataset_shape) */
  if (migc_input(m, input, &x) != MIGC_OK || x.kind != MIGC_INPUT_DATA ||
      (x.rank != 4 && x.rank != 2))
    return open_fail(err, errn, MIGC_E_ARG, "migc_data_open: input %d is not a data input "
                     "of images ([C,H,W] or flat [D] a sample)", input);
  dataset_shape want = {x.rank - 1, {0}, (float)x.a, (float)x.b, x.pad};
  for (int d = 1; d < x.rank; d++) want.dim[d - 1] = x.shape[d];
  migc_data *d = calloc(1, sizeof *d);
  if (!d) return open_fail(err, errn, MIGC_E_NOMEM, "migc_data_open: out of memory");
  if (dataset_open(&d->ds, spec, data_dir, &want, err, errn)) {
    free(d);
    /* dataset.c words every failure to open a file so; the rest is the content */
    return strstr(err, "cannot open") || strstr(err, "not found") ? MIGC_E_IO : MIGC_E_FORMAT;
  }
  d->batch = x.shape[0];
  d->sample = x.numel / x.shape[0];
  *out = d;
  return MIGC_OK;
}

/* The message goes to err and to m's last error alike ("" on success). */
migc_status migc_data_open(migc_model *m, int input, const char *spec, const char *data_dir,
                           migc_data **out, char *err, size_t errn) {
  char buf[1024];
  migc_status st = data_open(m, input, spec, data_dir, out, buf, sizeof buf);
  if (st == MIGC_OK) buf[0] = '\0';
  if (err && errn) snprintf(err, errn, "%s", buf);
  migc_abi_set_error(m, buf);
  return st;
}

void migc_data_close(migc_data *d) {
  if (!d) return;
  dataset_close(&d->ds);
  free(d);
}

int64_t migc_data_count(const migc_data *d) { return d ? d->ds.n : -1; }
int migc_data_labelled(const migc_data *d) { return d && d->ds.labels ? 1 : 0; }
const char *migc_data_last_error(const migc_data *d) { return d ? d->err : "the data is NULL"; }

migc_status migc_data_batch(migc_data *d, uint64_t seed, int64_t step, float *images,
                            size_t image_floats, int32_t *labels, size_t nlabels) {
  if (!d) return MIGC_E_ARG;
  d->err[0] = '\0';
  if (!images || image_floats != (size_t)(d->batch * d->sample)) {
    snprintf(d->err, sizeof d->err, "migc_data_batch: images must hold %lld floats (batch %lld "
             "of %lld), got %zu%s", (long long)(d->batch * d->sample), (long long)d->batch,
             (long long)d->sample, image_floats, images ? "" : " and NULL");
    return MIGC_E_ARG;
  }
  if (labels && nlabels != (size_t)d->batch) {
    snprintf(d->err, sizeof d->err, "migc_data_batch: labels must hold %lld (the batch), got "
             "%zu", (long long)d->batch, nlabels);
    return MIGC_E_ARG;
  }
  if (step < 0) {
    snprintf(d->err, sizeof d->err, "migc_data_batch: step %lld is negative", (long long)step);
    return MIGC_E_ARG;
  }
  if (dataset_batch(&d->ds, seed, step, d->batch, images, labels, d->err, sizeof d->err))
    return MIGC_E_ARG;
  return MIGC_OK;
}
