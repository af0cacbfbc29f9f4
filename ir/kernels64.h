/* kernels64.h: the f64 twins of the op table's kernels (kernels64.c), for the
 * interpreter's double-precision mode. Internal to ir/ and its tests. */
#ifndef MIGC_KERNELS64_H
#define MIGC_KERNELS64_H

#include "ir.h"

/* ir_kernels64[op] computes what ir_ops[op].interp does, on IR_F64 tensors where the
 * IR says f32, with the state in it->state64; NULL exactly where ir_ops[op].interp is. */
extern const ir_interp_kernel ir_kernels64[IR_OP_COUNT];

#endif
