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
/* The i-th standard normal of (seed, stream, counter), by Box-Muller. */
float rng_normal(uint64_t seed, uint32_t stream, uint64_t counter, uint64_t i);

#endif
