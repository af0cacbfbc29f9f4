/* migc_eval.h: `migc sample` and `migc eval` on a trained run, and the measurement
 * behind eval that `migc train --eval-every` takes during a run (see migc_eval.c). */
#ifndef MIGC_CLI_EVAL_H
#define MIGC_CLI_EVAL_H

#include "migc_model.h"

#include "runtime/runtime.h"

typedef struct {
  const char *run;        /* run directory or checkpoint file */
  const char *model_file; /* NULL: the one the checkpoint names */
  const char *data;       /* eval: NULL is mnist-test */
  const char *data_dir;
  const char *grid;       /* sample: output PNG (NULL: RUN/samples/figure-step-N.png) */
  const char *vary;       /* sample: the continuous code swept, NAME or NAME[I] */
  uint64_t seed;          /* latents of the figure, of eval's generated images */
  int batches;            /* eval: generated batches for the MI estimate */
  int draws;              /* eval: draws of the other latents per row of the class
                             keeping measure (0: not measured) */
  bool json;              /* eval: one JSON object on stdout instead of text */
  bool ema;               /* the parameters' moving averages (a step's ema=) instead */
  bool interpret;
} eval_options;

int sample_run(const eval_options *o, diag_sink *d);
int eval_run(const eval_options *o, diag_sink *d);

/* ---- the measurement (migc eval, migc train --eval-every) ------------------------- */

/* What eval's defaults are: train's evaluations use them, so that they equal `migc
 * eval` on a checkpoint of the same step. */
enum { EVAL_SEED = 1, EVAL_BATCHES = 20, EVAL_DRAWS = 10 };

enum { EVAL_MAX_MI = 16, EVAL_MAX_TERMS = 8, EVAL_MAX_KEPT = 64 };

/* One MI estimate: an output of train_step made of InfoGAN terms (ir_mi_terms), each
 * computed again from encode's prediction of its code on generated images. */
typedef struct {
  char name[64];                   /* the output's name (mi_c) */
  ir_mi_term terms[EVAL_MAX_TERMS];
  int nterms;
  int enc_out[EVAL_MAX_TERMS];     /* the encode output predicting each term's code */
} eval_estimate;

/* What to measure on a model, found once: generate, encode, the estimates, the
 * categorical code matched to the labels and the labelled data. */
typedef struct {
  const ir_func *gen, *enc;
  eval_estimate mi[EVAL_MAX_MI];
  int nmi;
  int code;     /* the categorical code (module input) whose values are matched; -1:
                   none, no matched accuracy or class keeping */
  int code_out; /* the encode output of its logits */
  int64_t k;    /* its number of values */
  dataset data; /* labelled images */
} eval_plan;

typedef struct {
  double mi[EVAL_MAX_MI]; /* each of plan->mi, in nats */
  int64_t generated;      /* images the estimates are means over */
  double accuracy;        /* matched accuracy on plan->data */
  int64_t images;         /* plan->data's images */
  int mapping[1024];      /* code value -> label of the best matching */
  /* Class keeping: a continuous code should change the style, not the class. For each
   * element of each continuous code (up to EVAL_MAX_KEPT), the images of migc sample's
   * figure sweeping it (rows: the categorical code's values, 10 columns from -2 to 2,
   * the other latents fixed per row, other continuous codes 0), for `draws` draws of
   * the other latents (the first is the figure's); the share of them whose value Q's
   * categorical head finds most likely is the row's. */
  int nkept;
  char kept_name[EVAL_MAX_KEPT][72]; /* the element, NAME[I] as sample --vary takes it */
  double kept[EVAL_MAX_KEPT];        /* its share, in [0, 1] */
  int64_t kept_images;               /* images behind each share */
  /* Bernoulli codes: the share of their bits on generated images whose sign Q's logit
   * gets right, per code (each code once, whatever estimates it is in) */
  int nbits;
  char bits_name[EVAL_MAX_MI][64];
  double bits[EVAL_MAX_MI];
} eval_result;

/* Finds what to measure in md's program and opens the labelled data set `data`
 * (a name or path as train's --data, under data_dir). A model without a categorical
 * code has no matched accuracy: with `matched` that is an error, else only its MI
 * estimates are measured (p->code -1, no data opened). Returns 0, or 1 with a message
 * in err; close the plan either way. */
int eval_plan_open(eval_plan *p, const model *md, const char *data, const char *data_dir,
                   bool matched, char *err, size_t errn);
void eval_plan_close(eval_plan *p);
/* Measures md's current state: the estimates on `batches` global batches of images
 * generated from latents drawn for `seed`, the matched accuracy of Q's most likely
 * code value on every labelled image, and with draws > 0 the class keeping of every
 * continuous code element (sample's figure latents for `seed`; one process only). generate and encode only read the
 * state (batchnorm in its inference form) and the latents come from eval's own
 * random stream, so a training run measured in the middle goes on unchanged. In a
 * data-parallel program each global batch is generated in the process's shares, each
 * sample with its global index: the same images as one process. Returns 0, or 1 with
 * a message in err. */
int eval_measure(eval_plan *p, model *md, uint64_t seed, int batches, int draws, eval_result *r,
                 char *err, size_t errn);

#endif
