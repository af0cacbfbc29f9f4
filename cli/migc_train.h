/* migc_train.h: `migc train`, the training loop behind the command line. It compiles a
 * model (frontend, passes), feeds each step its batch of real data and its latents,
 * runs it, and keeps the run's record: progress, metrics.csv, sample grids and
 * checkpoints from which a run resumes bit for bit.
 *
 * A run is a pure function of the model, its -D and batch settings, the data and the
 * seed: step t's batch is dataset_batch(seed, t), its latents latent_fill(seed, t),
 * so a resumed run needs nothing but the checkpoint's state and step. Steps run as
 * native code compiled by codegen/ (LLVM JIT), or on the reference interpreter; each
 * backend is deterministic, so resume is bit-exact within one backend. */
#ifndef MIGC_CLI_TRAIN_H
#define MIGC_CLI_TRAIN_H

#include "frontend/frontend.h"
#include "codegen/codegen.h"
#include "passes/passes.h"

#include "migc_eval.h"

typedef struct {
  const char *model;          /* model file */
  const const_overrides *overrides;
  int64_t batch;              /* 0: the model's */
  const char *data;           /* data set name or path (NULL: mnist) */
  const char *data_dir;       /* where names resolve (NULL: data) */
  int64_t steps;              /* run until this many steps are done in all */
  uint64_t seed;
  bool seed_given;
  const char *out;            /* run directory (NULL: runs/MODEL, or the resumed one) */
  const char *resume;         /* run directory to continue, or NULL */
  int64_t save_every, keep, log_every, sample_every;
  int64_t eval_every;         /* --eval-every: measure as migc eval does every N steps
                                 and after the last (0: never) */
  const char *eval_data;      /* --eval-data: labelled images for it (NULL: the test
                                 split of a known training set, mnist-test or
                                 fashion-test) */
  bool eval_last;             /* measure after the last step even without eval_every */
  const uint64_t *seeds;      /* --seeds: train_seeds runs one run per seed */
  int nseeds;
  const char *subdir;         /* the run directory is this one inside --out's (or
                                 runs/MODEL), NULL: --out's itself */
  bool interpret;             /* --backend interp: the reference interpreter, not the JIT */
  const char *so;             /* --so: run the steps from this shared object (migc compile) */
  bool local_bn;              /* --local-bn: under MPI, batchnorm normalises each
                                 process's share by its own statistics */
  cg_options codegen;         /* --no-fuse, --no-memplan */
  int threads;                /* threads in use (model_set_threads) */
  bool profile;               /* --profile: time every kernel, report after the run */
  bool color;
} train_options;

/* What a run did, for train_seeds. */
typedef struct {
  int64_t steps;          /* done in all */
  double seconds;         /* from its first step to its last, as metrics.csv counts */
  bool interrupted;       /* stopped by SIGINT */
  bool evaluated;         /* measured after its last step: */
  eval_result eval;
  int nmi;                /* the estimates' names and bounds */
  char mi_name[EVAL_MAX_MI][64];
  double mi_bound[EVAL_MAX_MI];
  char dir[1024];         /* the run directory */
} train_result;

/* Runs the training and returns the exit status: 0 done (or stopped by SIGINT after
 * saving), 1 an error (reported through d, or on stderr for run-time failures). What
 * the run did goes to *r when r is not NULL. */
int train_run(const train_options *o, diag_sink *d, train_result *r);
/* --seeds: one run per seed of o->seeds, one after the other, each in DIR/seed-S (DIR:
 * --out, or runs/MODEL) and measured after its last step as migc eval measures; then
 * DIR/seeds.csv (seed, steps, seconds, each MI estimate, accuracy; then the median of
 * each column and the row of the seed with the best accuracy), also printed as a
 * table on stdout. Returns the exit status as train_run. */
int train_seeds(const train_options *o, diag_sink *d);

#endif
