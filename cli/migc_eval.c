/* migc_eval.c: what users look at after training an InfoGAN (shared/infogan.md):
 *   migc sample  the paper's figure: one row per value of the categorical code, columns
 *                sweeping one continuous code from -2 to 2, the other latents fixed;
 *   migc eval    every MI estimate in nats on generated images, the unsupervised
 *                classification accuracy of Q's code on real test images after the best
 *                one-to-one matching of code values to labels (Hungarian algorithm),
 *                and whether Q's class stays that of the row along the figure's sweeps;
 *                eval_measure is that measurement, which migc train --eval-every takes
 *                during a run too (without the sweeps). */
#include "migc_eval.h"
#include "migc_runinfo.h"

#include "runtime/runtime.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
  if (o->ema) { /* each averaged parameter takes its average's values */
    int n = 0;
    for (int v = 0; v < md->m->nvars; v++) {
      const ir_var *a = &md->m->vars[v];
      if (a->kind != VAR_EMA || a->of < 0) continue;
      memcpy(md->state + md->m->vars[a->of].offset, md->state + a->offset,
             (size_t)shape_numel(a->shape) * sizeof(float));
      n++;
    }
    if (!n) {
      fprintf(stderr, "migc: --ema: %s keeps no moving average; give the steps that train "
                      "the generator ema=DECAY (adam(..., ema=0.999))\n", md->m->name);
      return 1;
    }
    fprintf(stderr, "migc: %s at step %lld (%s), %d parameters replaced by their moving "
                    "averages\n", md->m->name, (long long)*step, path, n);
    return 0;
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

/* What a figure's rows and columns vary (sample_plan): rows are the values of the
 * categorical code `code`, or, without one, `rows` draws of every latent; columns sweep
 * element `at` of input `col` from -2 to 2 (a continuous code, or a latent when the
 * model has no other code), or turn the bits of a Bernoulli code `col` off and on, two
 * columns a bit. */
typedef enum { COLS_SWEEP, COLS_BITS } cols_kind;
typedef struct {
  int code, col, at;
  cols_kind kind;
  int rows, cols;
  int64_t from; /* the draw every cell takes when the rows are the code's values */
} figure_plan;

/* The inputs of generate for cells [start, start + batch) of the figure, into in[j]
 * (one batch each), from draw[j] (a batch of draws of input j): a cell takes the draw
 * of its row (sample `from` when the rows are the code's values), the row's code value,
 * the column's value of element `at` (or bit) of `col`; every non-categorical code,
 * the rest of `col` included, is 0 when there is a categorical code, so only what the
 * figure shows changes across it. Cells past the figure keep the draw. */
static void figure_inputs(const ir_module *m, const ir_func *gen, const ir_tensor *draw,
                          const figure_plan *p, int start, ir_tensor *in) {
  int64_t b = m->batch;
  int cells = p->rows * p->cols;
  for (int j = 0; j < gen->ninputs; j++) {
    int idx = gen->inputs[j];
    const ir_input *inp = &m->inputs[idx];
    int64_t per = shape_numel(inp->shape) / b;
    bool zero = inp->kind == INPUT_CODE && inp->dist != DIST_CATEGORICAL && p->code >= 0;
    for (int64_t s = 0; s < b; s++) {
      int cell = start + (int)s, row = cell / p->cols, col = cell % p->cols;
      bool in_fig = cell < cells;
      int64_t from = in_fig && p->code < 0 ? row % b : p->from;
      if (inp->dtype == IR_I32) {
        int32_t *q = in[j].data;
        q[s] = idx == p->code && in_fig ? row : ((const int32_t *)draw[j].data)[from];
        continue;
      }
      float *q = (float *)in[j].data + s * per;
      if (zero)
        memset(q, 0, (size_t)per * sizeof *q);
      else
        memcpy(q, (const float *)draw[j].data + from * per, (size_t)per * sizeof *q);
      if (idx != p->col || !in_fig) continue;
      if (p->kind == COLS_SWEEP) {
        q[p->at] = (float)(-2.0 + 4.0 * col / (p->cols - 1));
      } else { /* column 0 every bit off, column d + 1 bit d on */
        memset(q, 0, (size_t)per * sizeof *q);
        if (col > 0) q[col - 1] = 1;
      }
    }
  }
}

/* The figure for generate's inputs: rows from the first categorical code, else 8
 * draws; columns from --vary, else the first continuous code, else the first
 * Bernoulli code, else the first continuous latent. col -1: no codes nor latents to
 * vary (plain samples). */
static figure_plan plan_figure(const ir_module *m, const ir_func *gen) {
  figure_plan p = {.code = -1, .col = -1, .rows = 8, .cols = 10};
  int cont = -1, bits = -1, latent = -1;
  for (int j = 0; j < gen->ninputs; j++) {
    int idx = gen->inputs[j];
    const ir_input *in = &m->inputs[idx];
    bool f32 = in->dtype == IR_F32;
    if (in->kind == INPUT_CODE && in->dist == DIST_CATEGORICAL && p.code < 0) p.code = idx;
    if (in->kind == INPUT_CODE && in->dist == DIST_BERNOULLI && f32 && bits < 0) bits = idx;
    if (in->kind == INPUT_CODE && (in->dist == DIST_UNIFORM || in->dist == DIST_NORMAL) && f32 &&
        cont < 0)
      cont = idx;
    if (in->kind == INPUT_LATENT && f32 && in->dist != DIST_BERNOULLI && latent < 0) latent = idx;
  }
  if (p.code >= 0) p.rows = (int)m->inputs[p.code].a;
  if (cont >= 0) {
    p.col = cont;
  } else if (bits >= 0) {
    int64_t d = shape_numel(m->inputs[bits].shape) / m->batch;
    p.col = bits, p.kind = COLS_BITS, p.cols = 1 + (int)(d < 15 ? d : 15);
  } else if (latent >= 0 && p.code >= 0) {
    p.col = latent;
  } else if (p.code >= 0) { /* the code is generate's only input: one column */
    p.cols = 1;
  }
  return p;
}

static int figure(const eval_options *o, model *md, const ir_func *gen, int64_t step) {
  const ir_module *m = md->m;
  figure_plan p = plan_figure(m, gen);
  if (o->vary) { /* NAME or NAME[I] */
    char name[128];
    int k = 0;
    if (sscanf(o->vary, "%127[^[][%d]", name, &k) < 1) k = 0;
    int col = ir_find_input(m, name);
    if (col < 0 || m->inputs[col].dtype != IR_F32 || k < 0 ||
        k >= shape_numel(m->inputs[col].shape) / m->batch) {
      fprintf(stderr, "migc sample: --vary %s: no continuous latent or code element by that name\n",
              o->vary);
      return 1;
    }
    p.col = col, p.at = k, p.kind = COLS_SWEEP, p.cols = 10;
  }
  int64_t b = m->batch;
  bool plain = p.code < 0 && p.col < 0; /* nothing to vary: plain samples, 8 a row */
  if (plain) p.cols = 8, p.rows = (int)((b < 64 ? b : 64) + 7) / 8;
  int rows = p.rows, cols = p.cols;
  char what[512], columns[200] = "";
  if (!plain && p.kind == COLS_BITS)
    snprintf(columns, sizeof columns, "%s with every bit off, then each bit on",
             m->inputs[p.col].name);
  else if (!plain && p.col >= 0)
    snprintf(columns, sizeof columns, "%s[%d] from -2 to 2", m->inputs[p.col].name, p.at);
  else if (!plain)
    snprintf(columns, sizeof columns, "one, as generate takes nothing else");
  if (plain)
    snprintf(what, sizeof what, ", each its own draw of the latents");
  else
    snprintf(what, sizeof what, ", rows: %s%s, columns: %s", p.code >= 0 ? "the values of " : "",
             p.code >= 0 ? m->inputs[p.code].name : "draws of the other latents", columns);
  int cells = rows * cols;
  ir_tensor *draw = calloc((size_t)gen->ninputs + 1, sizeof *draw);
  ir_tensor *in = calloc((size_t)gen->ninputs + 1, sizeof *in);
  ir_tensor *outs = calloc((size_t)gen->noutputs + 1, sizeof *outs);
  float *grid = NULL;
  int64_t img = 0;
  int st = draw && in && outs ? 0 : (fprintf(stderr, "migc sample: out of memory\n"), 1);
  for (int j = 0; j < gen->ninputs && !st; j++) { /* every cell starts from sample 0's draw */
    model_draw(md, gen->inputs[j], o->seed, STREAM_FIGURE, 0, 0, &draw[j]);
    in[j] = ir_tensor_alloc(draw[j].dtype, draw[j].shape);
  }
  for (int start = 0; start < cells && !st; start += (int)b) {
    if (plain) {
      for (int j = 0; j < gen->ninputs; j++) {
        ir_tensor_free(&in[j]);
        model_draw(md, gen->inputs[j], o->seed, STREAM_FIGURE, (uint64_t)start, 0, &in[j]);
      }
    } else {
      figure_inputs(m, gen, draw, &p, start, in);
    }
    if (model_run(md, gen, in, outs)) {
      fprintf(stderr, "migc sample: %s\n", md->err);
      st = 1;
      break;
    }
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
      size_t len = strlen(path);
      /* OUT.npy: the cells' values themselves, [rows * cols, C, H, W], for a classifier
       * of one's own; otherwise a PNG grid */
      if (s->rank == 4 && len > 4 && !strcmp(path + len - 4, ".npy")) {
        npy_array a = {NPY_F32, 4, {cells, s->dim[1], s->dim[2], s->dim[3]}, grid,
                       (int64_t)cells * img};
        if (npy_write(path, &a, err, sizeof err)) {
          fprintf(stderr, "migc sample: %s\n", err);
          st = 1;
        } else {
          printf("%s: %d x %d images in order%s\n", path, rows, cols, what);
        }
      } else if (s->rank != 4 || png_write_grid(path, grid, cells, (int)s->dim[1], (int)s->dim[2],
                                                (int)s->dim[3], rows, cols, lo, hi, 2, err, sizeof err)) {
        fprintf(stderr, "migc sample: %s\n", s->rank != 4 ? "generate does not make images" : err);
        st = 1;
      } else {
        printf("%s: %d x %d%s\n", path, rows, cols, what);
      }
    }
    for (int k = 0; k < gen->noutputs; k++) ir_tensor_free(&outs[k]);
  }
  for (int j = 0; draw && in && j < gen->ninputs; j++) ir_tensor_free(&draw[j]), ir_tensor_free(&in[j]);
  free(draw);
  free(in);
  free(outs);
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

/* ---- eval: what to measure --------------------------------------------------------- */

/* The encode output that predicts what node `pred` of train_step predicts: the one
 * made by the same expression of the same net (a net's body is inlined at each call,
 * so Q's head in train_step and in encode has one source span; the file names are the
 * diagnostics sink's, one pointer per file), else the first whose per-sample shape is
 * [dims]; -1 if none. (Not the nodes' labels: they point into the freed syntax tree.) */
static int predicting_output(const ir_func *train, int pred, int64_t dims, const ir_func *enc) {
  for (int pass = 0; pass < 2; pass++)
    for (int o = 0; o < enc->noutputs; o++) {
      const ir_node *b = &enc->nodes[enc->outputs[o].node];
      if (b->shape.rank != 2 || b->shape.dim[1] != dims) continue;
      if (pass == 1) return o;
      const ir_node *a = pred >= 0 ? &train->nodes[pred] : NULL;
      if (a && a->span.file && a->span.file == b->span.file && a->span.line == b->span.line &&
          a->span.col == b->span.col && a->span.end_line == b->span.end_line &&
          a->span.end_col == b->span.end_col)
        return o;
    }
  return -1;
}

/* Whether generate draws term t's code and eval can recompute the term from it. */
static bool term_measurable(const ir_module *m, const ir_func *gen, const ir_mi_term *t) {
  bool drawn = false;
  for (int j = 0; j < gen->ninputs; j++) drawn = drawn || gen->inputs[j] == t->code;
  if (!drawn) return false;
  const ir_input *c = &m->inputs[t->code];
  if (t->op == IR_OP_INFO_CATEGORICAL)
    return c->dist == DIST_CATEGORICAL && c->dtype == IR_I32 && (int64_t)c->a == t->dims;
  if (t->op == IR_OP_BCE_LOGITS && c->dist != DIST_BERNOULLI) return false;
  return c->dtype == IR_F32 && shape_numel(c->shape) == c->shape.dim[0] * t->dims;
}

/* The outputs of train_step that are MI estimates eval can recompute; when there are
 * none (a model that reports none), the categorical code alone as mi_CODE. */
static void find_estimates(eval_plan *p, const ir_module *m) {
  const ir_func *train = ir_find_func(m, "train_step");
  for (int k = 0; train && k < train->noutputs && p->nmi < EVAL_MAX_MI; k++) {
    eval_estimate *e = &p->mi[p->nmi];
    e->nterms = ir_mi_terms(train, train->outputs[k].node, e->terms, EVAL_MAX_TERMS);
    bool ok = e->nterms > 0;
    for (int t = 0; t < e->nterms && ok; t++) {
      ok = term_measurable(m, p->gen, &e->terms[t]);
      e->enc_out[t] = ok ? predicting_output(train, e->terms[t].pred, e->terms[t].dims, p->enc) : -1;
      ok = ok && e->enc_out[t] >= 0;
    }
    if (!ok) continue;
    snprintf(e->name, sizeof e->name, "%s", train->outputs[k].name);
    p->nmi++;
  }
  for (int i = 0; i < p->nmi; i++) /* the matched code's logits as the estimates find them */
    for (int t = 0; t < p->mi[i].nterms; t++)
      if (p->mi[i].terms[t].code == p->code && p->mi[i].terms[t].op == IR_OP_INFO_CATEGORICAL)
        p->code_out = p->mi[i].enc_out[t];
  if (p->nmi || p->code < 0) return;
  eval_estimate *e = &p->mi[p->nmi++];
  snprintf(e->name, sizeof e->name, "mi_%s", m->inputs[p->code].name);
  e->terms[0] = (ir_mi_term){.op = IR_OP_INFO_CATEGORICAL, .node = -1, .pred = -1,
                             .code = p->code, .dims = p->k, .bound = log((double)p->k)};
  e->enc_out[0] = p->code_out;
  e->nterms = 1;
}

int eval_plan_open(eval_plan *p, const model *md, const char *data, const char *data_dir,
                   bool matched, char *err, size_t errn) {
  memset(p, 0, sizeof *p);
  dataset_close(&p->data); /* closed: its permutation cache marked empty */
  const ir_module *m = md->m;
  p->gen = ir_find_func(m, "generate");
  p->enc = ir_find_func(m, "encode");
  bool has_code = p->gen && find_code(md, p->gen, p->enc, &p->code, &p->code_out);
  if (!p->gen || !p->enc || (!has_code && matched)) {
    snprintf(err, errn, "%s has no categorical code that encode predicts", m->name);
    return 1;
  }
  if (!has_code) p->code = p->code_out = -1;
  p->k = has_code ? (int64_t)m->inputs[p->code].a : 0;
  if (p->k > 1024) {
    snprintf(err, errn, "%s's code %s has %lld values; eval matches at most 1024", m->name,
             m->inputs[p->code].name, (long long)p->k);
    return 1;
  }
  const ir_input *in = p->enc->ninputs == 1 ? &m->inputs[p->enc->inputs[0]] : NULL;
  int rank = in ? in->shape.rank - 1 : 0;
  if (!in || in->kind != INPUT_DATA || (rank != 3 && rank != 1) || p->gen->noutputs < 1 ||
      !shape_equal(p->gen->nodes[p->gen->outputs[0].node].shape, in->shape)) {
    snprintf(err, errn, "encode must take one image input, of the shape generate makes");
    return 1;
  }
  find_estimates(p, m);
  if (!has_code) {
    if (p->nmi) return 0; /* the MI estimates alone: no labels needed */
    snprintf(err, errn, "%s has no categorical code that encode predicts and no MI estimate "
                        "eval can recompute", m->name);
    return 1;
  }
  dataset_shape want = {rank, {0}, (float)in->a, (float)in->b, in->pad};
  for (int i = 0; i < rank; i++) want.dim[i] = in->shape.dim[i + 1];
  if (dataset_open(&p->data, data, data_dir, &want, err, errn)) return 1;
  if (!p->data.labels) {
    snprintf(err, errn, "%s has no labels to match codes to", p->data.images_path);
    return 1;
  }
  for (int64_t i = 0; i < p->data.n; i++)
    if (p->data.labels[i] >= 1024) {
      snprintf(err, errn, "%s: label %d is past the 1024 eval matches", p->data.labels_path,
               (int)p->data.labels[i]);
      return 1;
    }
  return 0;
}

void eval_plan_close(eval_plan *p) { dataset_close(&p->data); }

/* ---- eval: measuring ----------------------------------------------------------------- */

/* Mean cross-entropy's sum over samples: softmax(row) against c, with the row maximum
 * taken out before exponentiating, as the info_categorical kernel computes it. */
static double cross_entropy(const float *row, int64_t k, int32_t c) {
  double mx = row[0];
  for (int64_t j = 1; j < k; j++) mx = fmax(mx, row[j]);
  double se = 0;
  for (int64_t j = 0; j < k; j++) se += exp(row[j] - mx);
  return mx + log(se) - row[c];
}

/* Each estimate on `batches` global batches of generated images: a categorical term is
 * ln K minus the mean cross-entropy of encode's logits for the codes G was given, a
 * Gaussian one H minus the mean Gaussian NLL of the codes under encode's mean (the
 * terms' own formulas, on generate's and encode's inference form). */
static int estimate_on_generated(eval_plan *p, model *md, uint64_t seed, int batches,
                                 eval_result *r, char *err, size_t errn) {
  const ir_func *gen = p->gen, *enc = p->enc;
  int64_t share = md->m->batch, global = md->batch;
  double sum[EVAL_MAX_MI][EVAL_MAX_TERMS] = {{0}}, right[EVAL_MAX_MI][EVAL_MAX_TERMS] = {{0}};
  int64_t count = 0;
  ir_tensor *in = calloc((size_t)gen->ninputs + 1, sizeof *in);
  ir_tensor *gouts = calloc((size_t)gen->noutputs + 1, sizeof *gouts);
  ir_tensor *eouts = calloc((size_t)enc->noutputs + 1, sizeof *eouts);
  int st = in && gouts && eouts ? 0 : (snprintf(err, errn, "out of memory"), 1);
  for (int it = 0; it < batches && !st; it++)
    for (int64_t at = 0; at < global && !st; at += share) {
      for (int j = 0; j < gen->ninputs; j++)
        model_draw(md, gen->inputs[j], seed, STREAM_EVAL, (uint64_t)it, at, &in[j]);
      if (model_run(md, gen, in, gouts)) {
        st = (snprintf(err, errn, "%s", md->err), 1);
      } else {
        if (model_run(md, enc, &gouts[0], eouts)) {
          st = (snprintf(err, errn, "%s", md->err), 1);
        } else {
          for (int e = 0; e < p->nmi; e++)
            for (int t = 0; t < p->mi[e].nterms; t++) {
              const ir_mi_term *term = &p->mi[e].terms[t];
              const float *q = eouts[p->mi[e].enc_out[t]].data;
              const void *c = NULL;
              for (int j = 0; j < gen->ninputs; j++)
                if (gen->inputs[j] == term->code) c = in[j].data;
              int64_t d = term->dims;
              for (int64_t s = 0; s < share; s++)
                if (term->op == IR_OP_INFO_CATEGORICAL) {
                  sum[e][t] += cross_entropy(q + s * d, d, ((const int32_t *)c)[s]);
                } else if (term->op == IR_OP_BCE_LOGITS) {
                  for (int64_t i = 0; i < d; i++) { /* stable: max(l,0) - l b + ln(1+e^-|l|) */
                    double l = q[s * d + i], b = ((const float *)c)[s * d + i];
                    sum[e][t] += fmax(l, 0) - l * b + log1p(exp(-fabs(l)));
                    right[e][t] += (l > 0) == (b > 0.5);
                  }
                } else {
                  for (int64_t i = 0; i < d; i++) {
                    double z = ((double)((const float *)c)[s * d + i] - q[s * d + i]) / term->std;
                    sum[e][t] += 0.5 * z * z + log(term->std) + 0.5 * log(2 * M_PI);
                  }
                }
            }
          count += share;
          for (int q = 0; q < enc->noutputs; q++) ir_tensor_free(&eouts[q]);
        }
        for (int q = 0; q < gen->noutputs; q++) ir_tensor_free(&gouts[q]);
      }
      for (int j = 0; j < gen->ninputs; j++) ir_tensor_free(&in[j]);
    }
  free(in);
  free(gouts);
  free(eouts);
  for (int e = 0; e < p->nmi; e++) /* each Bernoulli code's bits once */
    for (int t = 0; t < p->mi[e].nterms && count; t++) {
      const ir_mi_term *term = &p->mi[e].terms[t];
      const char *name = md->m->inputs[term->code].name;
      bool seen = term->op != IR_OP_BCE_LOGITS || r->nbits == EVAL_MAX_MI;
      for (int i = 0; i < r->nbits && !seen; i++) seen = !strcmp(r->bits_name[i], name);
      if (seen) continue;
      snprintf(r->bits_name[r->nbits], sizeof r->bits_name[0], "%s", name);
      r->bits[r->nbits++] = right[e][t] / (double)(count * term->dims);
    }
  for (int e = 0; e < p->nmi; e++) {
    r->mi[e] = 0;
    for (int t = 0; t < p->mi[e].nterms; t++) {
      const ir_mi_term *term = &p->mi[e].terms[t];
      double h = term->op == IR_OP_INFO_CATEGORICAL ? log((double)term->dims) : term->h;
      r->mi[e] += h - sum[e][t] / (double)(count ? count : 1);
    }
  }
  r->generated = count;
  return st;
}

/* The most likely of k values by their logits (the first of equal ones). */
static int most_likely(const float *logits, int64_t k) {
  int best = 0;
  for (int j = 1; j < k; j++)
    if (logits[j] > logits[best]) best = j;
  return best;
}

/* Q's most likely code value for every labelled image, matched to the labels. */
static int matched_on_data(eval_plan *p, model *md, eval_result *r, char *err, size_t errn) {
  const ir_func *enc = p->enc;
  const dataset *ds = &p->data;
  int64_t b = md->m->batch, k = p->k;
  int32_t *pred = malloc((size_t)ds->n * sizeof *pred + 1);
  ir_tensor t = ir_tensor_alloc(IR_F32, md->m->inputs[enc->inputs[0]].shape);
  ir_tensor *outs = calloc((size_t)enc->noutputs + 1, sizeof *outs);
  int st = pred && t.data && outs ? 0 : (snprintf(err, errn, "out of memory"), 1);
  for (int64_t start = 0; start < ds->n && !st; start += b) {
    /* The last batch is filled up with the set's first images, and their predictions
     * dropped. */
    for (int64_t s = 0; s < b; s++)
      dataset_sample(ds, (start + s) % ds->n, (float *)t.data + s * ds->sample);
    if (model_run(md, enc, &t, outs)) {
      st = (snprintf(err, errn, "%s", md->err), 1);
      break;
    }
    const float *l = outs[p->code_out].data;
    for (int64_t s = 0; s < b && start + s < ds->n; s++) pred[start + s] = most_likely(l + s * k, k);
    for (int q = 0; q < enc->noutputs; q++) ir_tensor_free(&outs[q]);
  }
  int32_t labels_max = 0;
  for (int64_t i = 0; i < ds->n; i++) labels_max = ds->labels[i] > labels_max ? ds->labels[i] : labels_max;
  int kk = (int)(k > labels_max + 1 ? k : labels_max + 1);
  if (!st) {
    r->accuracy = matched_accuracy(pred, ds->labels, ds->n, kk, r->mapping);
    r->images = ds->n;
  }
  ir_tensor_free(&t);
  free(outs);
  free(pred);
  return st;
}

/* Q's categorical head on migc sample's sweep figures: see eval_result. Each draw's
 * figure is generated in the figure's own batches, so the first draw's images are the
 * figure's bit for bit. */
static int class_kept(eval_plan *p, model *md, uint64_t seed, int draws, eval_result *r,
                      char *err, size_t errn) {
  const ir_module *m = md->m;
  const ir_func *gen = p->gen, *enc = p->enc;
  int64_t b = m->batch, k = p->k, drawn = -1;
  int cols = 10, cells = (int)k * cols;
  ir_tensor *draw = calloc((size_t)gen->ninputs + 1, sizeof *draw);
  ir_tensor *in = calloc((size_t)gen->ninputs + 1, sizeof *in);
  ir_tensor *gouts = calloc((size_t)gen->noutputs + 1, sizeof *gouts);
  ir_tensor *eouts = calloc((size_t)enc->noutputs + 1, sizeof *eouts);
  int st = draw && in && gouts && eouts ? 0 : (snprintf(err, errn, "out of memory"), 1);
  for (int j = 0; j < gen->ninputs && !st; j++)
    in[j] = ir_tensor_alloc(m->inputs[gen->inputs[j]].dtype, m->inputs[gen->inputs[j]].shape);
  for (int c = 0; c < gen->ninputs && !st; c++) {
    const ir_input *code = &m->inputs[gen->inputs[c]];
    if (code->kind != INPUT_CODE || code->dist == DIST_CATEGORICAL || code->dtype != IR_F32) continue;
    for (int d = 0; d < shape_numel(code->shape) / b && r->nkept < EVAL_MAX_KEPT && !st; d++) {
      int64_t kept = 0, count = 0;
      for (int64_t dr = 0; dr < draws && !st; dr++) {
        if (dr / b != drawn) { /* draw dr is sample dr % b of batch dr / b of the draws */
          drawn = dr / b;
          for (int j = 0; j < gen->ninputs; j++) {
            ir_tensor_free(&draw[j]);
            model_draw(md, gen->inputs[j], seed, STREAM_FIGURE, (uint64_t)drawn, 0, &draw[j]);
          }
        }
        for (int start = 0; start < cells && !st; start += (int)b) {
          figure_plan fp = {.code = p->code, .col = gen->inputs[c], .at = d, .kind = COLS_SWEEP,
                            .rows = (int)k, .cols = cols, .from = dr % b};
          figure_inputs(m, gen, draw, &fp, start, in);
          if (model_run(md, gen, in, gouts)) {
            st = (snprintf(err, errn, "%s", md->err), 1);
            break;
          }
          if (model_run(md, enc, &gouts[0], eouts)) {
            st = (snprintf(err, errn, "%s", md->err), 1);
          } else {
            const float *l = eouts[p->code_out].data;
            for (int64_t s = 0; s < b && start + s < cells; s++, count++)
              kept += most_likely(l + s * k, k) == (start + s) / cols;
            for (int q = 0; q < enc->noutputs; q++) ir_tensor_free(&eouts[q]);
          }
          for (int q = 0; q < gen->noutputs; q++) ir_tensor_free(&gouts[q]);
        }
      }
      snprintf(r->kept_name[r->nkept], sizeof r->kept_name[0], "%s[%d]", code->name, d);
      r->kept[r->nkept++] = count ? (double)kept / (double)count : 0;
      r->kept_images = count;
    }
  }
  for (int j = 0; draw && in && j < gen->ninputs; j++) ir_tensor_free(&draw[j]), ir_tensor_free(&in[j]);
  free(draw);
  free(in);
  free(gouts);
  free(eouts);
  return st;
}

int eval_measure(eval_plan *p, model *md, uint64_t seed, int batches, int draws, eval_result *r,
                 char *err, size_t errn) {
  memset(r, 0, sizeof *r);
  if (estimate_on_generated(p, md, seed, batches, r, err, errn)) return 1;
  if (p->code < 0) return 0; /* no categorical code: the estimates are all */
  if (matched_on_data(p, md, r, err, errn)) return 1;
  return draws > 0 ? class_kept(p, md, seed, draws, r, err, errn) : 0;
}

/* ---- eval: the command --------------------------------------------------------------- */

/* s as a JSON string. */
static void json_string(const char *s, FILE *out) {
  fputc('"', out);
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\')
      fprintf(out, "\\%c", ch);
    else if (ch < 0x20)
      fprintf(out, "\\u%04x", ch);
    else
      fputc(ch, out);
  }
  fputc('"', out);
}

static void print_json(FILE *out, const eval_plan *p, const model *md, int64_t step,
                       const eval_result *r) {
  fputs("{\"model\": ", out);
  json_string(md->m->name, out);
  fprintf(out, ", \"step\": %lld, \"generated\": %lld, \"mi\": {", (long long)step,
          (long long)r->generated);
  for (int e = 0; e < p->nmi; e++) {
    fprintf(out, "%s", e ? ", " : "");
    json_string(p->mi[e].name, out);
    fprintf(out, ": %.17g", r->mi[e]);
  }
  fputs("}, \"mi_bounds\": {", out);
  for (int e = 0; e < p->nmi; e++) {
    fprintf(out, "%s", e ? ", " : "");
    json_string(p->mi[e].name, out);
    fprintf(out, ": %.17g", ir_mi_bound(p->mi[e].terms, p->mi[e].nterms));
  }
  fputs("}, \"bit_accuracy\": {", out);
  for (int i = 0; i < r->nbits; i++) {
    fprintf(out, "%s", i ? ", " : "");
    json_string(r->bits_name[i], out);
    fprintf(out, ": %.17g", r->bits[i]);
  }
  fputs("}, \"data\": ", out);
  if (p->code >= 0) { /* without a categorical code nothing is matched to labels */
    json_string(p->data.images_path, out);
    fprintf(out, ", \"images\": %lld, \"accuracy\": %.17g, \"mapping\": [",
            (long long)r->images, r->accuracy);
  } else {
    fputs("null, \"images\": 0, \"accuracy\": null, \"mapping\": [", out);
  }
  for (int i = 0; i < p->k; i++) fprintf(out, "%s%d", i ? ", " : "", r->mapping[i]);
  fputs("], \"class_kept\": {", out);
  for (int i = 0; i < r->nkept; i++) {
    fprintf(out, "%s", i ? ", " : "");
    json_string(r->kept_name[i], out);
    fprintf(out, ": %.17g", r->kept[i]);
  }
  fprintf(out, "}, \"class_kept_images\": %lld}\n", (long long)r->kept_images);
}

/* A run directory keeps its last evaluation (RUN/eval.json, what --json prints) for
 * migc report; a checkpoint file evaluated on its own leaves nothing behind. */
static int save_json(const char *run, const eval_plan *p, const model *md, int64_t step,
                     const eval_result *r, char *err, size_t errn) {
  struct stat sb;
  if (stat(run, &sb) || !S_ISDIR(sb.st_mode)) return 0;
  char *text = NULL, path[1200];
  size_t len = 0;
  FILE *fp = open_memstream(&text, &len);
  if (!fp) return snprintf(err, errn, "out of memory") > 0;
  print_json(fp, p, md, step, r);
  fclose(fp);
  snprintf(path, sizeof path, "%s/eval.json", run);
  const void *parts[1] = {text};
  size_t lens[1] = {len};
  int st = file_write_atomic(path, parts, lens, 1, err, errn);
  free(text);
  return st;
}

static void print_text(const eval_plan *p, const model *md, int64_t step, int draws,
                       const eval_result *r) {
  printf("model: %s, step %lld\n", md->m->name, (long long)step);
  for (int e = 0; e < p->nmi; e++) {
    const eval_estimate *x = &p->mi[e];
    char formula[256];
    ir_mi_bound_str(md->m, x->terms, x->nterms, formula, sizeof formula);
    printf("%s: %.4f nats on %lld generated images (at most %s = %.4f)\n", x->name, r->mi[e],
           (long long)r->generated, formula, ir_mi_bound(x->terms, x->nterms));
  }
  for (int i = 0; i < r->nbits; i++)
    printf("bits of %s recovered: %.4f of its bits on the generated images (Q's logit's sign)\n",
           r->bits_name[i], r->bits[i]);
  if (p->code < 0) {
    printf("matched accuracy: not measured: %s has no categorical code\n", md->m->name);
    return;
  }
  printf("data: %s\n", p->data.images_path);
  printf("matched accuracy: %.4f on %lld images (code value -> label:", r->accuracy,
         (long long)r->images);
  for (int i = 0; i < p->k; i++) printf(" %d->%d", i, r->mapping[i]);
  printf(")\n");
  for (int i = 0; i < r->nkept; i++)
    printf("class kept along %s: %.4f of %lld images (Q's %s is the row's; -2 to 2, %d draws "
           "per row)\n", r->kept_name[i], r->kept[i], (long long)r->kept_images,
           md->m->inputs[p->code].name, draws);
}

int eval_run(const eval_options *o, diag_sink *d) {
  model md;
  int64_t step;
  if (open_run(o, &md, d, &step)) {
    model_close(&md);
    return 1;
  }
  eval_plan p = {0};
  eval_result r;
  char err[1024];
  char trained[1024], dir[1024];
  const char *data = o->data, *data_dir = o->data_dir;
  int st = 0;
  if (!data) { /* the test split of what the run trained on (run.json), else MNIST's */
    int r = runinfo_read_data(o->run, trained, sizeof trained, dir, sizeof dir, err, sizeof err);
    data = r == 0 && trained[0] ? runinfo_test_split(trained) : "mnist-test";
    if (r == 0 && !data_dir && dir[0]) data_dir = dir;
    if (r == 2)
      st = 1;
    else if (!data)
      st = snprintf(err, sizeof err, "%s was trained on %s, which has no test split known to "
                    "migc; give --data the labelled images to evaluate on", o->run, trained) > 0;
  }
  if (!st) st = eval_plan_open(&p, &md, data, data_dir, false, err, sizeof err);
  if (!st) st = eval_measure(&p, &md, o->seed, o->batches, o->draws, &r, err, sizeof err);
  if (!st) {
    if (o->json)
      print_json(stdout, &p, &md, step, &r);
    else
      print_text(&p, &md, step, o->draws, &r);
    st = save_json(o->run, &p, &md, step, &r, err, sizeof err);
  }
  if (st) fprintf(stderr, "migc eval: %s\n", err);
  eval_plan_close(&p);
  model_close(&md);
  return st;
}
