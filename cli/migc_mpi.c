/* migc_mpi.c: see migc_mpi.h. Compiled with MIGC_HAVE_MPI when CMake found MPI. */
#include "migc_mpi.h"

#include "runtime/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* How many processes mpirun started, from the environment Open MPI gives each (also
 * MPICH/PMI's, for a launcher that sets only those); 1 when not under mpirun. */
static int launched_size(void) {
  const char *names[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    const char *v = getenv(names[i]);
    if (v && atoi(v) > 0) return atoi(v);
  }
  return 1;
}

#ifdef MIGC_HAVE_MPI
#include <mpi.h>

static bool joined;

/* The transport: a sum over every process, in place. An error ends the job (MPI's
 * default handler, MPI_ERRORS_ARE_FATAL), which is what a lost process must do. */
static void mpi_sum(float *buf, int64_t n, void *ctx) {
  (void)ctx;
  while (n > 0) { /* MPI counts are int */
    int part = n > (1 << 30) ? 1 << 30 : (int)n;
    MPI_Allreduce(MPI_IN_PLACE, buf, part, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    buf += part;
    n -= part;
  }
}

int mpi_join(char *err, size_t errn) {
  (void)err, (void)errn;
  if (launched_size() <= 1) return 0;
  if (MPI_Init(NULL, NULL) != MPI_SUCCESS) {
    snprintf(err, errn, "MPI_Init failed");
    return 1;
  }
  joined = true;
  int ranks, rank;
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  collective_install(mpi_sum, NULL, ranks, rank);
  return 0;
}

void mpi_leave(int status) {
  if (!joined) return;
  int rank = collective_rank();
  collective_install(NULL, NULL, 1, 0);
  joined = false;
  /* An error every process meets (a bad file, a batch that does not divide) is
   * reported by rank 0, whose abort ends the others; they abort themselves only if
   * rank 0 does not, a second later (their own errors). Several aborting at once
   * make Open MPI's launcher garble its report. */
  if (status && rank != 0) sleep(1);
  if (status) MPI_Abort(MPI_COMM_WORLD, status);
  MPI_Finalize();
}

void mpi_gather_u64(uint64_t v, uint64_t *all) {
  if (!joined) {
    all[0] = v;
    return;
  }
  MPI_Gather(&v, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
}

#else

int mpi_join(char *err, size_t errn) {
  int n = launched_size();
  if (n <= 1) return 0;
  snprintf(err, errn, "started by mpirun as one of %d processes, but this migc was built "
                      "without MPI (install libopenmpi-dev and rebuild)", n);
  return 1;
}

void mpi_leave(int status) { (void)status; }

void mpi_gather_u64(uint64_t v, uint64_t *all) { all[0] = v; }

#endif
