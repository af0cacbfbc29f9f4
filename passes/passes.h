/* passes.h: the whole public surface of migc's IR-to-IR passes. Each pass is one
 * file doing one thing; its header comment states what it assumes and what it
 * guarantees, and the IR verifies after it. */
#ifndef MIGC_PASSES_H
#define MIGC_PASSES_H

#include "../ir/ir.h"

/* ---- dce.c: dead-code elimination --------------------------------------------- */

/* Removes every node of f whose value reaches no output, no step's loss and no
 * effect (store), then renumbers the survivors densely in execution order. Returns
 * the number of nodes removed. */
int pass_dce(ir_func *f);

#endif
