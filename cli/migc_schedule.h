/* migc_schedule.h: what the compiled program runs, as `migc dump --schedule` prints it:
 * per function, kernels before and after fusion, bytes of values read and written per
 * call before and after, the planned arena against its peak and the sum of all buffers,
 * then (with list) every kernel with its nodes, each node's arena offset ("@OFF"), "reg"
 * for values kept in registers, views, in-place reuse and extra scratch. */
#ifndef MIGC_CLI_SCHEDULE_H
#define MIGC_CLI_SCHEDULE_H

#include "codegen/codegen.h"

#include <stdio.h>

/* Prints the report for every function of m (lowered) under co (NULL: defaults).
 * Returns 0, or 1 with a message in err. */
int schedule_report(const ir_module *m, const cg_options *co, bool list, FILE *out, char *err,
                    size_t errn);

#endif
