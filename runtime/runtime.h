/* runtime.h: the whole public surface of migc's runtime. It depends on no compiler
 * layer: the same code is linked into the migc binary and into every compiled model.
 * Functions that can fail return 0 on success, nonzero on failure with a message
 * naming the file and the problem in err[errn].
 *
 * Grouped by the file that implements each part.
 */
#ifndef MIGC_RUNTIME_H
#define MIGC_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/migc.h"

/* ---- files.c: naming the file in errors, writing files atomically ----------------- */

/* Writes "PATH: message" to err (when err is not NULL) and returns 1, the runtime's
 * failure status, so a reader can `return file_fail(err, errn, path, "...", ...)`. */
int file_fail(char *err, size_t errn, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Writes parts[0..nparts) one after another to path: to "path.tmp.<pid>" beside it,
 * fsync, rename over path, fsync the directory. On a failure before the rename (a
 * full disk, a missing directory) the temporary file is removed and path is untouched.
 * Every runtime writer (npy, safetensors, PNG) goes through it. */
int file_write_atomic(const char *path, const void *const *parts, const size_t *lens,
                      int nparts, char *err, size_t errn);

/* ---- npy.c: NumPy .npy files (version 1.0/2.0 headers, C order) ------------------- */

typedef enum { NPY_F32, NPY_U8, NPY_I32 } npy_dtype;

typedef struct {
  npy_dtype dtype;
  int rank;
  int64_t dim[8];
  void *data;    /* numel elements of dtype, C order (owned) */
  int64_t numel;
} npy_array;

/* Reads '<f4', '|u1' or '<i4' arrays; also '<f8', converted to float32. Every size
 * in the header is checked against the file length before use. */
int npy_read(const char *path, npy_array *out, char *err, size_t errn);
/* Writes atomically: a temporary file in the same directory, fsync, rename. */
int npy_write(const char *path, const npy_array *a, char *err, size_t errn);
void npy_free(npy_array *a);

/* ---- philox.c: counter-based random numbers (Philox-4x32-10) ---------------------- */

/* One block of the Random123 Philox-4x32 generator with 10 rounds. */
void philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Randomness is a function of (seed, stream, counter): streams separate uses
 * (initialisation, latents, shuffling, dropout) so none perturbs another. */
enum { RNG_STREAM_INIT = 1, RNG_STREAM_LATENT = 2, RNG_STREAM_SHUFFLE = 3,
       RNG_STREAM_DROPOUT = 4 };

/* The i-th float in [0,1) of (seed, stream, counter): 24 random bits, exact. */
float rng_uniform(uint64_t seed, uint32_t stream, uint64_t counter, uint64_t i);
/* out[j] = rng_uniform(seed, stream, counter, first + j) for j < n, the same bits,
 * with each Philox block computed once for its four words instead of once per word. */
void rng_uniform_fill(float *out, int64_t n, uint64_t seed, uint32_t stream, uint64_t counter,
                      uint64_t first);
/* The i-th standard normal of (seed, stream, counter), by Box-Muller. */
float rng_normal(uint64_t seed, uint32_t stream, uint64_t counter, uint64_t i);

/* ---- safetensors.c: checkpoints in the safetensors format -------------------------- */

/* File layout: 8-byte little-endian header length N, N bytes of JSON padded with spaces
 * ({"__metadata__": {strings}, "NAME": {"dtype", "shape", "data_offsets": [b, e]}}),
 * then every tensor's raw little-endian bytes, C order, tiling the rest of the file. */

#define ST_MAX_RANK 8

typedef enum { ST_F32, ST_I32 } st_dtype; /* the dtypes migc reads and writes */

typedef struct {
  const char *name;           /* unique, non-empty, not "__metadata__" */
  st_dtype dtype;
  int rank;                   /* 0 (a scalar) .. ST_MAX_RANK */
  int64_t shape[ST_MAX_RANK]; /* dims >= 0 */
  const void *data;           /* numel elements of dtype, C order */
} st_tensor;

typedef struct {
  const char *key, *value; /* UTF-8 strings; keys unique */
} st_meta;

/* A file read into memory. Everything it points to belongs to it: st_file_free. */
typedef struct {
  st_tensor *tensors; /* n tensors in header order; data 4-byte aligned, inside data_ */
  int n;
  st_meta *meta;      /* nmeta __metadata__ entries in header order */
  int nmeta;
  char *names_;       /* the tensors' names (owned) */
  void *data_;        /* the data section (owned) */
} st_file;

/* numel of t's shape (1 for a scalar). */
int64_t st_numel(const st_tensor *t);
/* Writes tensors[0..n) in the order given, contiguous, the header padded to a multiple
 * of 8 bytes; "__metadata__" only when nmeta > 0. Atomic, as file_write_atomic: on
 * any failure an existing file at path is left as it was. */
int safetensors_write(const char *path, const st_tensor *tensors, int n, const st_meta *meta,
                      int nmeta, char *err, size_t errn);
/* Reads and validates the whole file: header length within the file and <= 100 MiB,
 * UTF-8 JSON, known dtypes, shapes, offsets that tile the data section exactly,
 * metadata strings. Loads F32 and I32; a valid file with another dtype is refused by
 * name. Errors name the file and the tensor. */
int safetensors_read(const char *path, st_file *out, char *err, size_t errn);
/* The tensor or metadata value with that name, or NULL. */
const st_tensor *st_file_find(const st_file *f, const char *name);
const char *st_file_meta(const st_file *f, const char *key);
void st_file_free(st_file *f);
/* A checkpoint's optimizer step counters: names[k] holds values[k]. A counter STEP.t
 * counts the training steps too, so it must equal the file's step metadata, or
 * resuming would restart Adam's bias correction at another step. A step that updates
 * every k-th training step (every=k) keeps STEP.phase beside it, and its STEP.t counts
 * only its updates: then both must be whole numbers from 0 to the step metadata (the
 * file does not say k). 0, or 1 with "PATH: its step metadata says ..." (a float
 * counter stops at 2^24: past it, not compared). migc_load and migc train's loader
 * both ask it. */
int st_check_step_counters(const char *path, unsigned long long step, int n,
                           const char *const *names, const float *values, char *err,
                           size_t errn);


/* ---- png_grid.c: image grids as PNG (sample sheets, latent traversals) ------------- */

/* images is [n, c, h, w] (c = 1 gray, 3 RGB) with values in [lo, hi], mapped to 0..255
 * with clamping and rounding (NaN is 0). Image i goes to row i / cols, column i % cols
 * of a rows x cols grid, n <= rows * cols; cells are pad pixels apart and pad pixels
 * from the edges. Padding and empty cells are mid gray (128), so cells stand apart
 * from black backgrounds. The picture is (pad + rows*(h+pad)) x (pad + cols*(w+pad)),
 * at most 32768 pixels a side. Written atomically (file_write_atomic). */
int png_write_grid(const char *path, const float *images, int n, int c, int h, int w, int rows,
                   int cols, float lo, float hi, int pad, char *err, size_t errn);

/* ---- hungarian.c: optimal assignment and matched accuracy -------------------------- */

/* assign[row] = column maximising the total of score[row * n + column] over a
 * one-to-one assignment of an n x n matrix; O(n^3), exact. Returns nonzero (and leaves
 * assign unspecified) for n < 0, out of memory, or scores whose range exceeds
 * 2^61 / (n + 1). */
int hungarian_max(const int64_t *score, int n, int *assign);
/* The fraction of the count items whose predicted code value, mapped one-to-one to
 * labels so as to maximise that fraction, equals their label (InfoGAN's unsupervised
 * accuracy). pred and label values lie in [0, k); mapping (k entries, may be NULL)
 * receives mapping[code] = label. Returns -1 on a value out of range or out of memory,
 * 0 when count is 0. */
double matched_accuracy(const int32_t *pred, const int32_t *label, int64_t count, int k,
                        int *mapping);

/* ---- dataset.c: training data (IDX, gzipped IDX, .npy), shuffled into batches ----- */

/* An IDX file of unsigned bytes: images [n, rows, cols] (magic 0x00000803) or labels
 * [n] (0x00000801), plain or gzip-compressed (told apart by the gzip magic 1f 8b, not
 * by the name). Other type codes and ranks are rejected. */
typedef struct {
  int rank;       /* 3 for images, 1 for labels */
  int64_t dim[3]; /* dim[0] items; images: dim[1] rows, dim[2] columns */
  uint8_t *data;  /* numel bytes, row-major (owned) */
  int64_t numel;
} idx_array;

/* The most data bytes an IDX file may hold (decompressed), whatever its header says. */
#define IDX_MAX_BYTES ((int64_t)1 << 31)

/* Every dimension must be nonzero, their product must not overflow nor pass
 * IDX_MAX_BYTES, and the data must be exactly that long: a short file, trailing bytes
 * and a truncated or corrupt gzip stream (read to its end, CRC included) are errors. */
int idx_read(const char *path, idx_array *out, char *err, size_t errn);
void idx_free(idx_array *a);

/* What the model's input declaration asks of each sample:
 *   input x : [1, 32, 32] range [-1, 1] pad 2   is   {3, {1, 32, 32}, -1, 1, 2}
 * The declared shape includes the padding: 28x28 images with pad 2 fill [1,32,32]. A
 * flat [D] takes images whose padded [C,H,W] holds D values, in C order. */
typedef struct {
  int rank;       /* 3: [C,H,W]; 1: flat [D] */
  int64_t dim[3]; /* the per-sample shape, padding included */
  float lo, hi;   /* value range: pixel 0 becomes lo, pixel 255 (float 1.0) becomes hi */
  int64_t pad;    /* border added to each side of H and W, valued lo (black) */
} dataset_shape;

typedef struct {
  int64_t n;                 /* samples */
  int64_t sample;            /* floats per sample: the product of the model's shape */
  int64_t channels, rows, cols; /* the stored images' shape, before padding */
  float *images;             /* float sources: [n, sample] in the model's layout and
                                range (owned); NULL for bytes */
  uint8_t *pixels;           /* byte sources: [n, channels, rows, cols] as read (owned),
                                converted a sample at a time (dataset_sample); else NULL */
  float table[256];          /* pixel q's value in the model's range */
  float pad_value;           /* the value of the padding (lo) */
  int64_t pad;               /* border added to each side of rows and cols */
  int32_t *labels;           /* [n], or NULL when the data set has none (owned) */
  char *images_path;         /* the files read (owned); labels_path NULL when none */
  char *labels_path;
  /* dataset_batch's cache: the permutations of two epochs, epoch e in slot e%2 */
  int64_t *perm[2];
  int64_t perm_epoch[2];     /* -1: slot empty */
  uint64_t perm_seed[2];
} dataset;

/* Opens a data set. An image's value v = pixel/255 (or the float itself) becomes
 * lo*(1-v) + hi*v, so 0 -> lo and 255 -> hi exactly, and the image is padded: bytes
 * are kept as read and converted when a sample is taken (a quarter of the memory),
 * floats are converted once. spec is
 *   - a known name, resolved under data_dir (NULL: "data"); images and labels both
 *     required, each the plain file or else NAME.gz:
 *       mnist         DIR/mnist/train-{images-idx3,labels-idx1}-ubyte
 *       mnist-test    DIR/mnist/t10k-...      fashion-test  DIR/fashion-mnist/t10k-...
 *       fashion       DIR/fashion-mnist/train-...
 *   - a path to an IDX images file; labels, optional, beside it by the standard name:
 *     *images-idx3-ubyte[.gz] <-> *labels-idx1-ubyte[.gz] (same suffix tried first);
 *   - a path to a .npy file (told by its magic): uint8 [n,H,W] or [n,C,H,W], or float32
 *     (also <f8) already in [0,1]; labels, optional, uint8 or int32 [n] non-negative, in
 *     the file named with "images" replaced by "labels", else X.npy -> X-labels.npy.
 * Images whose padded shape is not the model's are rejected naming both shapes; a
 * label count that differs from the image count is an error. On failure ds is left
 * closed (dataset_close is harmless). */
int dataset_open(dataset *ds, const char *spec, const char *data_dir,
                 const dataset_shape *want, char *err, size_t errn);
void dataset_close(dataset *ds);
/* Sample i (0 <= i < n) in the model's layout and range: ds->sample floats to out. */
void dataset_sample(const dataset *ds, int64_t i, float *out);

/* The permutation of [0, n) for (seed, epoch): Fisher-Yates, for i = n-1 down to 1
 * swapping i with j = floor(u*(i+1)), u = rng_uniform(seed, RNG_STREAM_SHUFFLE, epoch, i)
 * (computed exactly in integers). Depends on nothing else. */
void dataset_permutation(int64_t n, uint64_t seed, int64_t epoch, int64_t *perm);

/* The batch of global step `step`: sample k (0 <= k < batch) is global position
 * p = step*batch + k, taken from epoch p / n at index perm_epoch[p % n]. Batches run
 * through each epoch's permutation in order and one that crosses an epoch's end
 * continues in the next epoch's permutation, so any step is computed directly, without
 * replaying earlier ones: resuming needs only the step number. images_out gets
 * batch*ds->sample floats, labels_out batch labels (-1 when the data set has none);
 * either may be NULL. Mutates only the permutation cache in ds. Fails on batch < 1,
 * step < 0 or positions past INT64_MAX. */
int dataset_batch(dataset *ds, uint64_t seed, int64_t step, int64_t batch,
                  float *images_out, int32_t *labels_out, char *err, size_t errn);
/* Samples [first_k, first_k + count) of that batch: one process's contiguous share of
 * the global batch in a data-parallel run, the same samples a single process would
 * put at those positions. */
int dataset_batch_part(dataset *ds, uint64_t seed, int64_t step, int64_t batch, int64_t first_k,
                       int64_t count, float *images_out, int32_t *labels_out, char *err,
                       size_t errn);

/* ---- latents.c: latent and code samples --------------------------------------------- */

/* Draws n values of a distribution into out, value j being a function of (seed,
 * stream, counter, first + j) only, so a batch's latents depend on the run's seed and
 * the step, never on what ran before (resume and data parallelism need no generator
 * state). kind: 0 uniform(a, b), 1 normal(a = mean, b = std), 2 bernoulli(a = p). */
void latent_fill(float *out, int64_t n, int kind, double a, double b, uint64_t seed,
                 uint32_t stream, uint64_t counter, uint64_t first);
/* n categorical values, each uniform over [0, k). */
void latent_fill_categorical(int32_t *out, int64_t n, int32_t k, uint64_t seed,
                             uint32_t stream, uint64_t counter, uint64_t first);

/* The input of a model drawn as `migc train` draws it (the ABI's migc_draw_input):
 * seed inputs (is_seed) get the int32 pair (seed & 0x7fffffff, counter); otherwise
 * dist is a migc_dist (the IR's ir_dist has the same numbering): categorical fills
 * int32 values in [0, a), uniform/normal/bernoulli floats, each value j drawn as
 * (seed, stream, counter, (index << 40) + j). Data inputs (dist none) are left as
 * they are. */
void latent_draw_input(void *out, int64_t n, int index, bool is_seed, int dist, double a,
                       double b, uint64_t seed, uint32_t stream, uint64_t counter);
/* The same input's values skip .. skip+n-1 (its share of the global batch in a process
 * of a data-parallel run: skip = the samples before it times the values per sample). */
void latent_draw_part(void *out, int64_t n, int index, int64_t skip, bool is_seed, int dist,
                      double a, double b, uint64_t seed, uint32_t stream, uint64_t counter);

/* ---- state_init.c: parameters before the first step --------------------------------- */

/* How a variable starts (the IR's ir_init_kind has the same numbering). */
enum { STATE_INIT_DEFAULT, STATE_INIT_ZEROS, STATE_INIT_ONES, STATE_INIT_UNIFORM,
       STATE_INIT_NORMAL };
/* Fills the n floats of variable `name`: DEFAULT is U(-1/sqrt(fan_in), 1/sqrt(fan_in))
 * (0 when fan_in is 0), UNIFORM U(a, b), NORMAL N(a, b). Element i is drawn as (seed,
 * RNG_STREAM_INIT, FNV-1a hash of name >> 16, i): the same for migc and every compiled
 * model, and independent of the other variables. */
void state_init_fill(float *p, int64_t n, const char *name, int kind, int64_t fan_in, double a,
                     double b, uint64_t seed);

/* ---- model_desc.c: the description a compiled model carries ------------------------- */

/* The text `migc compile` embeds in a shared object as migc_model_desc (its format is
 * in docs/abi.md), parsed and checked: every offset and size within the state,
 * every input index within the inputs, ranks and counts bounded. */
typedef struct {
  migc_var_info info; /* data NULL here */
  int init;           /* STATE_INIT_* */
  int64_t fan_in;
  double a, b;
} desc_var;

typedef struct {
  migc_function_info info;
  migc_output_info *outputs; /* info.noutputs */
} desc_func;

typedef struct {
  int version;          /* MIGC_ABI_VERSION */
  char *name, *file, *settings;
  char *cpu, *features; /* the `cpu` record: the target CPU and its extensions (LLVM
                           names, space-separated); NULL when there is none */
  uint64_t hash;
  int64_t batch, state_size;
  int nvars, ninputs, nfuncs;
  desc_var *vars;
  migc_input_info *inputs;
  desc_func *funcs;
  char *strings_;       /* every name above points into it (owned) */
} model_desc;

int model_desc_parse(const char *text, model_desc *d, char *err, size_t errn);
void model_desc_free(model_desc *d);
/* The index of the function named name, or -1. */
int model_desc_func(const model_desc *d, const char *name);

/* ---- migc_abi.c, for migc_data.c ---------------------------------------------------- */

/* Sets m's migc_last_error to msg ("" for success). */
typedef struct migc_model migc_model;
void migc_abi_set_error(migc_model *m, const char *msg);

/* ---- cpu.c: the instruction-set extensions of this CPU ---------------------------- */

/* How many of features (LLVM's names, space-separated) this CPU lacks, their names in
 * missing; names cpu.c cannot ask about count as present. */
int cpu_missing_features(const char *features, char *missing, size_t n);
/* 0 when this CPU has every extension d's `cpu` record asks (or it has none); else 1
 * and err says, naming the model, the target and the missing extensions. */
int model_desc_check_cpu(const model_desc *d, char *err, size_t errn);

/* ---- collective.c: sums across the processes of a data-parallel run --------------- */

/* Sums buf[0..n) element by element across every process of the run and leaves the
 * total in buf on each of them; every process must make the same calls in the same
 * order. A failure (a process that died) is not returned: the transport ends the job. */
typedef void (*collective_sum_fn)(float *buf, int64_t n, void *ctx);
/* Installs the transport (the CLI's MPI binding), or with sum NULL the single-process
 * default. Call before any step runs. */
void collective_install(collective_sum_fn sum, void *ctx, int ranks, int rank);
int collective_ranks(void); /* processes in the run; 1 when nothing is installed */
int collective_rank(void);  /* this process's index, 0 .. ranks-1 */
/* Sums buf across the processes (see collective_sum_fn); does nothing in one process.
 * Generated code calls it by this name for the IR op `allreduce`. */
void collective_allreduce(float *buf, int64_t n);

/* ---- pool.c: the step's threads ------------------------------------------------------ */

/* One block of a parallel job: the work of block b of ctx's job. */
typedef void (*migc_rt_block_fn)(void *ctx, int64_t b);
/* Kernels and GEMMs run on n threads: the caller and n-1 workers (n <= 0 or more than
 * the online cores: one per core). Sets OpenBLAS to one thread, process-wide, since
 * GEMMs are split here instead. Returns the count in use. Default 1. */
int migc_rt_set_threads(int n);
int migc_rt_threads(void);
/* Runs fn(ctx, b) for b in 0..nblocks, spread over the pool's threads, and returns
 * when all are done. Inline (in order, on the calling thread) with one thread, one
 * block, or when called from inside a block. Callers make each block's result
 * independent of which thread runs it and of the thread count. Generated code calls
 * it by this name. */
void migc_rt_parallel_for(migc_rt_block_fn fn, void *ctx, int64_t nblocks);

/* ---- gemm.c: the GEMM generated code calls ------------------------------------------- */

/* cblas_sgemm (row-major), split into blocks of rows or columns of C that depend only
 * on the shape and run on the pool: the same bits for every thread count. */
void migc_rt_sgemm(int order, int ta, int tb, int M, int N, int K, float alpha,
                   const float *A, int lda, const float *B, int ldb, float beta, float *C,
                   int ldc);

#endif
