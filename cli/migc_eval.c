/* migc_eval.c: what users look at after training an InfoGAN (shared/infogan.md):
 *   migc sample  the paper's figure: one row per value of the categorical code, columns
 *                sweeping one continuous code from -2 to 2, the other latents fixed;
 *   migc eval    the MI estimate in nats on generated images, and the unsupervised
 *                classification accuracy of Q's code on real test images after the best
 *                one-to-one matching of code values to labels (Hungarian algorithm). */
#include "migc_eval.h"

#include "runtime/runtime.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { STREAM_EVAL = 10, STREAM_FIGURE = 11 };

static int open_run(const eval_options *o, model *md, diag_sink *d, int64_t *step) {
  char path[1200], err[1024];
  uint64_t seed;
  memset(md, 0, sizeof *md); /* the caller closes it even when nothing was opened */
  if (checkpoint_find(o->run, path, sizeof path, err, sizeof err)) {
    fprintf(stderr, "migc: %s\n", err);
    return 1;
  }
  if (model_open_checkpoint(md, path, o->model_file, o->interpret, d, step, &seed)) {
    if (md->err[0]) fprintf(stderr, "migc: %s\n", md->err);
    return 1;
  }
  fprintf(stderr, "migc: %s at step %lld (%s)\n", md->m->name, (long long)*step, path);
  return 0;
}

/* The first categorical code of the generator and the encode output that predicts it
 * (the first [N,K] output with K its number of values). */
static bool find_code(const model *md, const ir_func *gen, const ir_func *enc, int *code,
                      int *out) {
  *code = *out = -1;
  for (int j = 0; j < gen->ninputs && *code < 0; j++) {
    const ir_input *in = &md->m->inputs[gen->inputs[j]];
    if (in->kind == INPUT_CODE && in->dist == DIST_CATEGORICAL) *code = gen->inputs[j];
  }
  if (*code < 0 || !enc) return false;
  int64_t k = (int64_t)md->m->inputs[*code].a;
  for (int o = 0; o < enc->noutputs && *out < 0; o++) {
    const ir_shape *s = &enc->nodes[enc->outputs[o].node].shape;
    if (s->rank == 2 && s->dim[1] == k) *out = o;
  }
  return *out >= 0;
}

/* ---- sample ---------------------------------------------------------------------------- */

static int figure(const eval_options *o, model *md, const ir_func *gen, int64_t step) {
  const ir_module *m = md->m;
  int code = -1, cont = -1, vary_at = 0;
  for (int j = 0; j < gen->ninputs; j++) {
    const ir_input *in = &m->inputs[gen->inputs[j]];
    if (in->kind != INPUT_CODE) continue;
    if (in->dist == DIST_CATEGORICAL && code < 0) code = gen->inputs[j];
    if (in->dist != DIST_CATEGORICAL && cont < 0) cont = gen->inputs[j];
  }
  if (o->vary) { /* NAME or NAME[I] */
    char name[128];
    int k = 0;
    if (sscanf(o->vary, "%127[^[][%d]", name, &k) < 1) k = 0;
    cont = ir_find_input(m, name);
    vary_at = k;
    if (cont < 0 || m->inputs[cont].dtype != IR_F32 || k < 0 ||
        k >= shape_numel(m->inputs[cont].shape) / m->batch) {
      fprintf(stderr, "migc sample: --vary %s: no continuous latent or code element by that name\n",
              o->vary);
      return 1;
    }
  }
  int64_t b = m->batch;
  int rows = code >= 0 ? (int)m->inputs[code].a : 1;
  int cols = cont >= 0 ? 10 : (int)(b < 64 ? b : 64);
  if (code < 0 && cont < 0) rows = (cols + 7) / 8, cols = 8;
  int cells = rows * cols;
  ir_tensor *in = calloc((size_t)gen->ninputs, sizeof *in);
  ir_tensor outs[8];
  float *grid = NULL;
  int64_t img = 0;
  int st = 0;
  for (int start = 0; start < cells && !st; start += (int)b) {
    for (int j = 0; j < gen->ninputs; j++) {
      int idx = gen->inputs[j];
      /* Every cell starts from the same draw (sample 0's), then the row and column
       * set the code and the swept value: only those change across the figure. */
      model_draw(md, idx, o->seed, STREAM_FIGURE, 0, 0, &in[j]);
      const ir_input *inp = &m->inputs[idx];
      int64_t per = shape_numel(inp->shape) / b;
      for (int64_t s = 0; s < b; s++) {
        int cell = start + (int)s;
        if (inp->dtype == IR_I32) {
          int32_t *p = in[j].data;
          p[s] = p[0];
          if (idx == code && cell < cells) p[s] = cell / cols;
        } else {
          float *p = in[j].data;
          memcpy(p + s * per, p, (size_t)per * sizeof *p);
          if (inp->kind == INPUT_CODE && inp->dist != DIST_CATEGORICAL && code >= 0)
            memset(p + s * per, 0, (size_t)per * sizeof *p); /* other continuous codes: 0 */
          if (idx == cont && cell < cells)
            p[s * per + vary_at] = (float)(-2.0 + 4.0 * (cell % cols) / (cols - 1));
        }
      }
      if (code < 0 && cont < 0) { /* no codes: plain samples, each its own draw */
        ir_tensor_free(&in[j]);
        model_draw(md, idx, o->seed, STREAM_FIGURE, (uint64_t)start, 0, &in[j]);
      }
    }
    if (model_run(md, gen, in, outs)) {
      fprintf(stderr, "migc sample: %s\n", md->err);
      st = 1;
    } else {
      const ir_shape *s = &outs[0].shape;
      img = shape_numel(*s) / b;
      if (!grid) grid = calloc((size_t)(cells + b) * (size_t)img, sizeof *grid);
      memcpy(grid + (size_t)start * (size_t)img, outs[0].data, (size_t)(b * img) * sizeof *grid);
      if (start + b >= cells) {
        char path[1300], err[1024];
        if (o->grid)
          snprintf(path, sizeof path, "%s", o->grid);
        else
          snprintf(path, sizeof path, "%s/samples/figure-step-%08lld.png", o->run, (long long)step);
        int data = -1;
        for (int i = 0; i < m->ninputs; i++)
          if (m->inputs[i].kind == INPUT_DATA) data = i;
        float lo = data >= 0 ? (float)m->inputs[data].a : 0, hi = data >= 0 ? (float)m->inputs[data].b : 1;
        if (s->rank != 4 || png_write_grid(path, grid, cells, (int)s->dim[1], (int)s->dim[2],
                                           (int)s->dim[3], rows, cols, lo, hi, 2, err, sizeof err)) {
          fprintf(stderr, "migc sample: %s\n", s->rank != 4 ? "generate does not make images" : err);
          st = 1;
        } else {
          printf("%s: %d x %d%s%s%s\n", path, rows, cols,
                 code >= 0 ? ", rows: the values of " : "", code >= 0 ? m->inputs[code].name : "",
                 cont >= 0 ? ", columns: a code swept from -2 to 2" : "");
        }
      }
      for (int k = 0; k < gen->noutputs; k++) ir_tensor_free(&outs[k]);
    }
    for (int j = 0; j < gen->ninputs; j++) ir_tensor_free(&in[j]);
  }
  free(in);
  free(grid);
  return st;
}

int sample_run(const eval_options *o, diag_sink *d) {
  model md;
  int64_t step;
  if (open_run(o, &md, d, &step)) {
    model_close(&md);
    return 1;
  }
  const ir_func *gen = ir_find_func(md.m, "generate");
  int st = gen ? figure(o, &md, gen, step) : (fprintf(stderr, "migc sample: the model has no generate\n"), 1);
  model_close(&md);
  return st;
}

/* ---- eval ---------------------------------------------------------------------------- */

/* ln K minus the mean cross-entropy of Q's logits for the codes G was given. */
static int mi_on_generated(const eval_options *o, model *md, const ir_func *gen,
                           const ir_func *enc, int code, int out, double *mi) {
  int64_t b = md->m->batch, k = (int64_t)md->m->inputs[code].a;
  double ce = 0;
  int64_t count = 0;
  ir_tensor *in = calloc((size_t)gen->ninputs, sizeof *in), gouts[8], eouts[8];
  int st = 0;
  for (int it = 0; it < o->batches && !st; it++) {
    const int32_t *c = NULL;
    for (int j = 0; j < gen->ninputs; j++) {
      model_draw(md, gen->inputs[j], o->seed, STREAM_EVAL, (uint64_t)it, 0, &in[j]);
      if (gen->inputs[j] == code) c = in[j].data;
    }
    if (model_run(md, gen, in, gouts) || model_run(md, enc, &gouts[0], eouts)) {
      fprintf(stderr, "migc eval: %s\n", md->err);
      st = 1;
    } else {
      const float *l = eouts[out].data;
      for (int64_t s = 0; s < b; s++) {
        double mx = l[s * k];
        for (int64_t j = 1; j < k; j++) mx = fmax(mx, l[s * k + j]);
        double se = 0;
        for (int64_t j = 0; j < k; j++) se += exp(l[s * k + j] - mx);
        ce += mx + log(se) - l[s * k + c[s]];
        count++;
      }
      for (int q = 0; q < enc->noutputs; q++) ir_tensor_free(&eouts[q]);
      for (int q = 0; q < gen->noutputs; q++) ir_tensor_free(&gouts[q]);
    }
    for (int j = 0; j < gen->ninputs; j++) ir_tensor_free(&in[j]);
  }
  free(in);
  *mi = log((double)k) - ce / (double)(count ? count : 1);
  return st;
}

/* Q's most likely code value for every real image, matched to the labels. */
static int matched_on_data(const eval_options *o, model *md, const ir_func *enc, int out,
                           int64_t k, double *acc, int64_t *n, int *mapping) {
  int x = enc->inputs[0];
  const ir_input *in = &md->m->inputs[x];
  int rank = in->shape.rank - 1;
  dataset_shape want = {rank, {0}, (float)in->a, (float)in->b, in->pad};
  for (int i = 0; i < rank && i < 3; i++) want.dim[i] = in->shape.dim[i + 1];
  dataset ds;
  char err[1024];
  if (enc->ninputs != 1 || in->kind != INPUT_DATA || (rank != 3 && rank != 1)) {
    fprintf(stderr, "migc eval: encode must take one image input\n");
    return 1;
  }
  if (dataset_open(&ds, o->data ? o->data : "mnist-test", o->data_dir, &want, err, sizeof err)) {
    fprintf(stderr, "migc eval: %s\n", err);
    return 1;
  }
  if (!ds.labels) {
    fprintf(stderr, "migc eval: %s has no labels to match codes to\n", ds.images_path);
    dataset_close(&ds);
    return 1;
  }
  int64_t b = md->m->batch;
  int32_t *pred = malloc((size_t)ds.n * sizeof *pred);
  ir_tensor t = ir_tensor_alloc(IR_F32, in->shape), outs[8];
  int st = 0;
  for (int64_t start = 0; start < ds.n && !st; start += b) {
    /* The last batch is filled up with the set's first images, and their predictions
     * dropped. */
    for (int64_t s = 0; s < b; s++)
      dataset_sample(&ds, (start + s) % ds.n, (float *)t.data + s * ds.sample);
    if (model_run(md, enc, &t, outs)) {
      fprintf(stderr, "migc eval: %s\n", md->err);
      st = 1;
      break;
    }
    const float *l = outs[out].data;
    for (int64_t s = 0; s < b && start + s < ds.n; s++) {
      int best = 0;
      for (int j = 1; j < k; j++)
        if (l[s * k + j] > l[s * k + best]) best = j;
      pred[start + s] = best;
    }
    for (int q = 0; q < enc->noutputs; q++) ir_tensor_free(&outs[q]);
  }
  int32_t labels_max = 0;
  for (int64_t i = 0; i < ds.n; i++) labels_max = ds.labels[i] > labels_max ? ds.labels[i] : labels_max;
  int kk = (int)(k > labels_max + 1 ? k : labels_max + 1);
  if (!st) {
    *acc = matched_accuracy(pred, ds.labels, ds.n, kk, mapping);
    *n = ds.n;
    printf("data: %s\n", ds.images_path);
  }
  ir_tensor_free(&t);
  free(pred);
  dataset_close(&ds);
  return st;
}

int eval_run(const eval_options *o, diag_sink *d) {
  model md;
  int64_t step;
  if (open_run(o, &md, d, &step)) {
    model_close(&md);
    return 1;
  }
  const ir_func *gen = ir_find_func(md.m, "generate"), *enc = ir_find_func(md.m, "encode");
  int code, out, st = 0;
  if (!gen || !find_code(&md, gen, enc, &code, &out)) {
    fprintf(stderr, "migc eval: %s has no categorical code that encode predicts\n", md.m->name);
    model_close(&md);
    return 1;
  }
  int64_t k = (int64_t)md.m->inputs[code].a;
  double mi = 0, acc = 0;
  int64_t n = 0;
  int mapping[1024];
  st = mi_on_generated(o, &md, gen, enc, code, out, &mi);
  if (!st) {
    printf("model: %s, step %lld\n", md.m->name, (long long)step);
    printf("mi_%s: %.4f nats on %lld generated images (at most ln %lld = %.4f)\n",
           md.m->inputs[code].name, mi, (long long)(o->batches * md.m->batch), (long long)k, log((double)k));
  }
  if (!st && k <= 1024) st = matched_on_data(o, &md, enc, out, k, &acc, &n, mapping);
  if (!st) {
    printf("matched accuracy: %.4f on %lld images (code value -> label:", acc, (long long)n);
    for (int i = 0; i < k; i++) printf(" %d->%d", i, mapping[i]);
    printf(")\n");
  }
  model_close(&md);
  return st;
}
