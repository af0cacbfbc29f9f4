/* migc_eval.h: `migc sample` and `migc eval` on a trained run (see migc_eval.c). */
#ifndef MIGC_CLI_EVAL_H
#define MIGC_CLI_EVAL_H

#include "migc_model.h"

typedef struct {
  const char *run;        /* run directory or checkpoint file */
  const char *model_file; /* NULL: the one the checkpoint names */
  const char *data;       /* eval: NULL is mnist-test */
  const char *data_dir;
  const char *grid;       /* sample: output PNG (NULL: RUN/samples/figure-step-N.png) */
  const char *vary;       /* sample: the continuous code swept, NAME or NAME[I] */
  uint64_t seed;          /* latents of the figure, of eval's generated images */
  int batches;            /* eval: generated batches for the MI estimate */
  bool interpret;
} eval_options;

int sample_run(const eval_options *o, diag_sink *d);
int eval_run(const eval_options *o, diag_sink *d);

#endif
