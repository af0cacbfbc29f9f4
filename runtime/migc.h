/* migc.h: the C ABI of a model compiled by `migc compile` (described fully in
 * docs/abi.md). Version MIGC_ABI_VERSION; a host needs nothing but this header and the
 * shared object, and can drive any model: the library describes its own state,
 * inputs and functions.
 *
 * Conventions: every call that can fail returns a migc_status (MIGC_OK is 0; only
 * migc_function_find returns -1) and sets migc_last_error(model): a message naming the
 * problem, or "" on success (for migc_create: in err). Nothing in the library aborts
 * or exits. Arrays are C order; images and latents are float32, codes and labels
 * int32, as each input's dtype says. A model is not thread-safe: one thread at a time
 * per model; distinct models are independent. */
#ifndef MIGC_H
#define MIGC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MIGC_ABI_VERSION 3
#define MIGC_MAX_RANK 8

#if defined(__GNUC__)
#define MIGC_API __attribute__((visibility("default")))
#else
#define MIGC_API
#endif

typedef enum {
  MIGC_OK = 0,
  MIGC_E_ARG = 1,      /* a NULL pointer, an index or name that does not exist, a wrong size */
  MIGC_E_NOMEM = 2,    /* out of memory */
  MIGC_E_IO = 3,       /* a file could not be opened, read or written */
  MIGC_E_FORMAT = 4,   /* not a valid safetensors file, or not a migc checkpoint */
  MIGC_E_MISMATCH = 5, /* a checkpoint of another program, or with other tensors */
  MIGC_E_RANGE = 6,    /* an input value outside its range (a code, data not finite or
                          outside [a, b]): refused before running, nothing changed */
  MIGC_E_MODEL = 7,    /* the library's own model description is damaged */
  MIGC_E_CPU = 8,      /* compiled for instruction-set extensions this CPU lacks
                          (migc compile --cpu): nothing of the model ran */
} migc_status;

typedef enum { MIGC_F32 = 0, MIGC_I32 = 1 } migc_dtype;

/* What a state variable is; all live in one float buffer, parameters first-class. */
typedef enum {
  MIGC_VAR_PARAM = 0,   /* a trained parameter */
  MIGC_VAR_BN_MEAN = 1, /* batchnorm running mean */
  MIGC_VAR_BN_VAR = 2,  /* batchnorm running variance */
  MIGC_VAR_OPT_M = 3,   /* optimizer first moment */
  MIGC_VAR_OPT_V = 4,   /* optimizer second moment */
  MIGC_VAR_STEP = 5,    /* the optimizer's step counter */
  MIGC_VAR_EMA = 6,     /* a moving average of a parameter (a step's ema=), named
                           PARAM@STEP.ema */
} migc_var_kind;

typedef enum {
  MIGC_INPUT_DATA = 0,   /* real data (images), given by the host */
  MIGC_INPUT_LATENT = 1, /* generator noise */
  MIGC_INPUT_CODE = 2,   /* InfoGAN codes */
  MIGC_INPUT_SEED = 3,   /* dropout's seed: int32 [2] = (seed & 0x7fffffff, step) */
  MIGC_INPUT_LABEL = 4,  /* the data set's labels of the data input's samples, int32 in
                            [0, a): given by the host to migc_train_step (never drawn
                            there); drawn uniformly, as a categorical code, elsewhere */
} migc_input_kind;

typedef enum {
  MIGC_DIST_NONE = 0,
  MIGC_DIST_UNIFORM = 1,     /* U(a, b) */
  MIGC_DIST_NORMAL = 2,      /* N(a, b): mean a, standard deviation b */
  MIGC_DIST_CATEGORICAL = 3, /* int32 uniform over [0, a) */
  MIGC_DIST_BERNOULLI = 4,   /* 1 with probability a, else 0 */
} migc_dist;

typedef struct {
  const char *name;     /* "G.dense0.weight"; owned by the model */
  migc_var_kind kind;
  int rank;
  int64_t shape[MIGC_MAX_RANK];
  int64_t numel;
  int64_t offset;       /* in floats, into the state buffer */
  float *data;          /* the live values (numel floats): read and write freely */
} migc_var_info;

typedef struct {
  const char *name;
  migc_input_kind kind;
  migc_dist dist;
  double a, b;          /* the distribution's parameters; for data: the value range */
  int64_t pad;          /* data: border (valued a) added to each side of H and W, included
                           in the shape: 28x28 images with pad 2 fill [1, 32, 32] */
  migc_dtype dtype;
  int rank;
  int64_t shape[MIGC_MAX_RANK]; /* batched: shape[0] is the batch (not for seeds) */
  int64_t numel;
} migc_input_info;

typedef struct {
  const char *name;     /* "mi_c", "images" */
  migc_dtype dtype;
  int rank;
  int64_t shape[MIGC_MAX_RANK];
  int64_t numel;
} migc_output_info;

typedef struct {
  const char *name;     /* "train_step", "generate", "encode" */
  int ninputs;
  const int *inputs;    /* model input indices, in the order migc_run takes them */
  int noutputs;
  size_t scratch_bytes; /* temporary memory the model holds for it */
} migc_function_info;

typedef struct migc_model migc_model;

/* MIGC_ABI_VERSION of the library. */
MIGC_API int migc_abi_version(void);

/* A model whose parameters are initialised from seed exactly as `migc train --seed`
 * initialises them; its step is 0. Sets OpenBLAS to one thread for the whole process
 * (openblas_set_num_threads(1)): the library splits GEMMs over its own threads
 * (migc_set_threads). On failure *out is NULL and err (when not NULL) holds a message.
 * Free with migc_destroy. */
MIGC_API migc_status migc_create(uint64_t seed, migc_model **out, char *err, size_t errn);
MIGC_API void migc_destroy(migc_model *m); /* NULL is fine */
/* The library's threads, for every model of the process (default 1): each step's
 * GEMMs and large kernels are split over n threads, the caller's and n-1 workers that
 * wait between calls and sleep when idle (n <= 0 or more than the online cores: one
 * per core). Results are the same bits for every n. Call it between steps, not during
 * one. Returns the count in use. */
MIGC_API int migc_set_threads(int n);
/* The message of the last call on m that can fail (one returning a migc_status, or
 * migc_function_find): "" when it succeeded. Calls that cannot fail leave it as it
 * was. Valid until the next call on m. */
MIGC_API const char *migc_last_error(const migc_model *m);

MIGC_API const char *migc_model_name(const migc_model *m);
MIGC_API int64_t migc_batch(const migc_model *m);
MIGC_API uint64_t migc_program_hash(const migc_model *m);
MIGC_API uint64_t migc_seed(const migc_model *m);
MIGC_API int64_t migc_step(const migc_model *m); /* training steps done */
/* The whole state: migc_state_size floats (parameters, moments, statistics). */
MIGC_API float *migc_state(migc_model *m);
MIGC_API int64_t migc_state_size(const migc_model *m);

/* Tables. Counts are >= 0 (-1 for a NULL model); entries are indexed from 0. */
MIGC_API int migc_var_count(const migc_model *m);
MIGC_API migc_status migc_var(migc_model *m, int i, migc_var_info *out);
MIGC_API int migc_input_count(const migc_model *m);
MIGC_API migc_status migc_input(migc_model *m, int i, migc_input_info *out);
MIGC_API int migc_function_count(const migc_model *m);
MIGC_API migc_status migc_function(migc_model *m, int i, migc_function_info *out);
/* The index of the function named name, or -1 (and a message in migc_last_error). */
MIGC_API int migc_function_find(const migc_model *m, const char *name);
MIGC_API migc_status migc_function_output(migc_model *m, int f, int k, migc_output_info *out);

/* Draws model input i as `migc train` does: value j is a function of (the model's
 * seed, stream, counter, (i << 40) + j) only. Not for data inputs. out holds bytes
 * bytes, exactly the input's numel * 4. */
MIGC_API migc_status migc_draw_input(migc_model *m, int i, uint32_t stream, uint64_t counter,
                                     void *out, size_t bytes);

/* Runs function f: inputs[j] points at the data of the function's input j (its
 * migc_input_info numel elements of its dtype), outputs[k] at room for output k;
 * ninputs and noutputs must be the function's counts (the arrays' lengths, so a short
 * array is refused, not read past). Every pointer must be non-NULL. Updates the state
 * when f trains; running "train_step" counts a step, as migc_train_step does. */
MIGC_API migc_status migc_run(migc_model *m, int f, const void *const *inputs, int ninputs,
                              void *const *outputs, int noutputs);

/* One training step ("train_step") on a batch of real data: data holds data_floats
 * floats, the numel of the step's data input (values in its range [a, b]). Latents,
 * codes and seeds: latents NULL draws them all as `migc train` does (stream
 * RNG_STREAM_LATENT = 2, counter = migc_step) and nlatents must be 0; else latents holds
 * nlatents entries, exactly train_step's input count, and latents[j] gives input j
 * (entries for data inputs are ignored; NULL entries are drawn). A MIGC_INPUT_LABEL
 * input (the batch's labels) is never drawn here: it must be given. On success the step
 * count grows by one and metrics (when not NULL) receives nmetrics floats: element 0
 * of each train_step output in order (losses and MI estimates; names from
 * migc_function_output), nmetrics at most the output count. The values stay readable
 * through migc_metric until the next step. */
MIGC_API migc_status migc_train_step(migc_model *m, const float *data, size_t data_floats,
                                     const void *const *latents, int nlatents, float *metrics,
                                     int nmetrics);
/* Output k of the last successful training step: its name and element 0. */
MIGC_API migc_status migc_metric(const migc_model *m, int k, const char **name, float *value);

/* "generate": latents[j] is generate's input j (NULL entries, or latents NULL with
 * nlatents 0: drawn with stream 2 and counter migc_step; else nlatents is exactly the
 * input count); images receives output 0, image_floats floats exactly its numel. */
MIGC_API migc_status migc_generate(migc_model *m, const void *const *latents, int nlatents,
                                   float *images, size_t image_floats);
/* "encode": images (image_floats floats, the numel of encode's data input) to the
 * code predictions, outputs[k] for each of encode's noutputs outputs (exactly its
 * output count). */
MIGC_API migc_status migc_encode(migc_model *m, const float *images, size_t image_floats,
                                 void *const *outputs, int noutputs);

/* Checkpoints: the safetensors files of `migc train` (every state variable by name,
 * F32, and the same __metadata__: format, model, model_file, settings, batch,
 * program_hash, step, seed, migc). Either side reads what the other wrote. Loading
 * refuses another program's file (program_hash) and one whose optimizers' step counters
 * disagree with its step metadata; it adopts the file's step and seed. */
MIGC_API migc_status migc_save(migc_model *m, const char *path);
MIGC_API migc_status migc_load(migc_model *m, const char *path);

/* Data: the reader of `migc train` (IDX or .npy images, labels where there are any),
 * shaped as one of the model's data inputs asks (value range [a, b], padding; the
 * images' shape must be the input's per-sample shape) and batched in migc train's
 * order, so a host that feeds step t the batch of (migc_seed(m), t) computes migc
 * train's run bit for bit. spec is migc train's --data: mnist, mnist-test, fashion,
 * fashion-test under data_dir (NULL: "data"), or the path of an IDX images file (its
 * labels beside it by the standard name) or of a .npy file; IDX files may be
 * gzip-compressed. input: a model input of kind
 * MIGC_INPUT_DATA, or -1 for the training step's only one. MIGC_E_IO when a file
 * cannot be opened, MIGC_E_FORMAT when it is not images of that shape, MIGC_E_ARG for
 * bad arguments; the message goes to err (may be NULL) and migc_last_error(m). */
typedef struct migc_data migc_data;
MIGC_API migc_status migc_data_open(migc_model *m, int input, const char *spec,
                                    const char *data_dir, migc_data **out, char *err,
                                    size_t errn);
MIGC_API void migc_data_close(migc_data *d); /* NULL is fine */
MIGC_API int64_t migc_data_count(const migc_data *d);  /* images; -1 for NULL */
MIGC_API int migc_data_labelled(const migc_data *d);   /* 1 with labels, else 0 */
/* The batch of step `step` for seed (migc_batch(m) images): image_floats must be that
 * many times the input's per-sample numel; labels, when not NULL, gets nlabels =
 * batch labels (-1 each when the data set has none). */
MIGC_API migc_status migc_data_batch(migc_data *d, uint64_t seed, int64_t step, float *images,
                                     size_t image_floats, int32_t *labels, size_t nlabels);
/* The message of the last failed migc_data_batch ("" after a success). */
MIGC_API const char *migc_data_last_error(const migc_data *d);

#ifdef __cplusplus
}
#endif

#endif
