/* migc_model.h: a model ready to run, as the train, sample and eval commands share it:
 * compiled from its file (frontend, passes, codegen), its state in memory, its
 * functions callable on either backend, its checkpoints written and read. */
#ifndef MIGC_CLI_MODEL_H
#define MIGC_CLI_MODEL_H

#include "codegen/codegen.h"
#include "frontend/frontend.h"
#include "passes/passes.h"

typedef struct {
  ir_module *m;
  cg_program *prog;    /* JIT-compiled native code, or NULL */
  void *so;            /* a shared object from `migc compile` (dlopen handle), or NULL */
  cg_entry *entries;   /* per function of m: its native entry (JIT or .so); NULL when
                          interpreting */
  void **scratch;      /* per function of m, for native code: all the one arena */
  void *arena;         /* scratch for whichever function runs: the largest any needs
                          (one function runs at a time, and none keeps anything in its
                          scratch between calls) */
  float *state;        /* m->state_size floats */
  uint64_t hash;       /* of the program: model source, -D settings, global batch */
  int64_t batch;       /* the run's global batch: m->batch times m->ranks */
  char file[1024];     /* the model file, as an absolute path */
  char settings[512];  /* the -D settings, "name=value,..." */
  char err[1024];
} model;

/* The most bytes a model's buffers may take (ir_memory_need): a bigger model is refused
 * when it is compiled. The default is this machine's physical memory; --max-memory sets
 * another for the whole process. */
int64_t model_memory_limit(void);
void model_set_memory_limit(int64_t bytes);

/* Compiles the model in `path` with -D overrides and batch (0: the model's) for native
 * code under co (NULL: defaults) or the interpreter; the state is zero until
 * initialised or loaded. With ranks > 1 the program is one process's of a data-parallel run: the batch (the
 * global one) is split evenly across the ranks, an error if it does not divide, and
 * every step's gradients are all-reduced (passes/allreduce.c), as are training
 * batchnorm's statistics unless local_bn (each process normalises by its own share).
 * Errors in the model go to d; others to md->err. Returns 0 or 1. */
int model_open(model *md, const char *path, const const_overrides *ov, int64_t batch,
               int ranks, bool local_bn, bool interpret, const cg_options *co, diag_sink *d);
/* As model_open, but the functions run from shared object `so` (written by `migc
 * compile` for this very program: its program hash must be md->hash) instead of the
 * JIT. */
int model_open_so(model *md, const char *path, const const_overrides *ov, int64_t batch,
                  const char *so, diag_sink *d);
/* Initial parameters for `seed`. */
void model_init(model *md, uint64_t seed);
/* Compiled steps run on n threads (runtime/pool.c; n <= 0: one per CPU of the
 * process's affinity mask; more than the online cores: one per core), and so does a
 * shared object opened after this; returns the count. A run is the same bits for every
 * count: GEMMs and kernels are split into blocks fixed by the shapes
 * (tests/cli/threads.sh). */
int model_set_threads(int n);
/* Runs f: in holds f->ninputs tensors; out receives f->noutputs (caller frees). */
int model_run(model *md, const ir_func *f, const ir_tensor *in, ir_tensor *out);
/* Runs f on caller-owned buffers: in[j] the data of input j, out[k] room for output
 * k's whole value. On native code it allocates nothing (the training loop's path). */
int model_call(model *md, const ir_func *f, void *const *in, void *const *out);
/* A latent, code or seed input of the module drawn for (seed, stream, counter), its
 * first sample being sample `sample0` of the global batch (0 in one process; a rank's
 * offset in a data-parallel run): value j of input idx is draw (idx << 40) +
 * sample0 * (values per sample) + j, so a sample's values are a function of (seed,
 * stream, counter, its global index) alone, whatever the number of processes. */
void model_draw(const model *md, int idx, uint64_t seed, uint32_t stream, uint64_t counter,
                int64_t sample0, ir_tensor *x);
/* The same values written into data (room for the input's whole value); data inputs
 * are left alone. */
void model_fill(const model *md, int idx, uint64_t seed, uint32_t stream, uint64_t counter,
                int64_t sample0, void *data);

/* Writes the whole state as safetensors, with what reopens the program (model file,
 * -D settings, batch, program hash) and the run's step and seed in __metadata__. */
int model_save(model *md, const char *path, int64_t step, uint64_t seed);
/* Loads a checkpoint written by this very program into the state. */
int model_load(model *md, const char *path, int64_t *step, uint64_t *seed);
/* The steps of the checkpoints in run/checkpoints (step-N.safetensors), ascending;
 * *count of them (caller frees). */
int64_t *checkpoint_steps(const char *run, int *count);
/* The checkpoint to read: `spec` itself if it is a file, else the newest of
 * spec/checkpoints. */
int checkpoint_find(const char *spec, char *path, size_t n, char *err, size_t errn);
/* Reopens the program that wrote checkpoint `path` (its model file, -D settings and
 * batch, from the metadata; model_file overrides the file) and loads the state. */
int model_open_checkpoint(model *md, const char *path, const char *model_file,
                          bool interpret, diag_sink *d, int64_t *step, uint64_t *seed);
void model_close(model *md);

#endif
