/* migc_mpi.h: the binding of `migc train` to Open MPI, the only code in migc that knows
 * MPI. It joins the job mpirun started, installs MPI_Allreduce as the runtime's
 * collective transport (runtime/collective.c), and ends the job. Built without MPI
 * (CMake did not find it), the same calls run one process and say so when mpirun
 * started several. */
#ifndef MIGC_CLI_MPI_H
#define MIGC_CLI_MPI_H

#include <stddef.h>
#include <stdint.h>

/* Joins the MPI job when mpirun started this process as one of several
 * (OMPI_COMM_WORLD_SIZE > 1; one process alone never initialises MPI) and installs the
 * transport; collective_ranks()/collective_rank() then say which process this is.
 * Returns 0, or 1 with a message in err. */
int mpi_join(char *err, size_t errn);
/* Leaves the job: MPI_Finalize after status 0; otherwise MPI_Abort with the status, so
 * that the other processes, which may be waiting for this one in a sum, end too and
 * mpirun exits non-zero. Nothing in one process. */
void mpi_leave(int status);
/* Gathers v from every process into all[0 .. ranks) on rank 0 (all[0] = v in one
 * process). */
void mpi_gather_u64(uint64_t v, uint64_t *all);

#endif
