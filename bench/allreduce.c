/* allreduce.c: how long MPI_Allreduce takes for a buffer of floats (sum, in place,
 * MPI_COMM_WORLD), the call `migc train` makes once per optimisation step under mpirun
 * (cli/migc_mpi.c). For each size given in bytes, rank 0 prints the median and the
 * minimum over 30 timed calls after 5 untimed ones, each call started after a barrier.
 *
 *   mpirun -np 2 build/bench-allreduce 983040 26953728 */
#include <mpi.h>

#include <stdio.h>
#include <stdlib.h>

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, ranks;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  enum { WARM = 5, TIMED = 30 };
  for (int a = 1; a < argc; a++) {
    long bytes = atol(argv[a]);
    int n = (int)(bytes / 4 > 0 ? bytes / 4 : 1);
    float *buf = calloc((size_t)n, sizeof *buf);
    double t[TIMED];
    for (int i = 0; i < WARM + TIMED; i++) {
      MPI_Barrier(MPI_COMM_WORLD);
      double t0 = MPI_Wtime();
      MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      if (i >= WARM) t[i - WARM] = MPI_Wtime() - t0;
    }
    qsort(t, TIMED, sizeof *t, by_value);
    if (rank == 0)
      printf("%d processes, %ld bytes: median %.1f us, min %.1f us\n", ranks, (long)n * 4,
             1e6 * t[TIMED / 2], 1e6 * t[0]);
    free(buf);
  }
  MPI_Finalize();
  return 0;
}
