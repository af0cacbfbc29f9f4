/* migc_compile.h: `migc compile`, a model to a shared object with the C ABI of
 * runtime/migc.h, and its header NAME.h. */
#ifndef MIGC_CLI_COMPILE_H
#define MIGC_CLI_COMPILE_H

#include "codegen/codegen.h"
#include "frontend/frontend.h"

/* Compiles the model in path (-D overrides, batch 0: the model's) under co (NULL:
 * defaults) to shared object out and writes NAME.h beside it (out's file name less
 * "lib" and ".so"); with stats prints the schedule summary (migc_schedule.h) on stdout.
 * Model errors go to d; others to stderr. Returns 0 or 1. */
int compile_run(const char *path, const const_overrides *ov, int64_t batch, const char *out,
                const cg_options *co, bool stats, diag_sink *d);

#endif
