/* collective.c: the one point where a training step talks to the other processes of a
 * data-parallel run. The runtime knows nothing of MPI: the driver that starts under
 * mpirun installs a function that sums a float buffer across every rank, in place,
 * and compiled steps (through the op `allreduce`) and the interpreter call
 * collective_allreduce, which forwards to it. In a single process nothing is
 * installed and the call is never made: the pass that inserts it runs only for
 * ranks > 1. */
#include "runtime/runtime.h"

static collective_sum_fn installed;
static void *installed_ctx;
static int installed_ranks = 1, installed_rank;

void collective_install(collective_sum_fn sum, void *ctx, int ranks, int rank) {
  installed = sum;
  installed_ctx = ctx;
  installed_ranks = sum && ranks > 1 ? ranks : 1;
  installed_rank = sum && ranks > 1 ? rank : 0;
}

int collective_ranks(void) { return installed_ranks; }
int collective_rank(void) { return installed_rank; }

void collective_allreduce(float *buf, int64_t n) {
  if (installed && n > 0) installed(buf, n, installed_ctx);
}
