/* constfold.c: constant folding.
 * Assumes: a verified function. Guarantees: every elementwise node (fuse_elementwise)
 * whose operands are all constants and whose value is a scalar ([]) becomes a constant
 * holding the value the reference interpreter's f32 kernel computes for it, which is the
 * value the f32 interpreter and native code compute at run time (bit for bit); chains
 * fold in one pass, since operands come first. The node keeps its id and shape, so no
 * user changes; its former operands are left for dce. (The interpreter's f64 mode then
 * sees the f32-rounded constant, as it sees every other constant of the IR.) */
#include "passes.h"

#include <string.h>

int pass_constfold(ir_func *f) {
  int folded = 0;
  ir_interp it = {0};
  for (int id = 0; id < f->nnodes; id++) { /* operands have smaller ids */
    ir_node *n = &f->nodes[id];
    if (n->shape.rank != 0 || !fuse_elementwise(f, n)) continue;
    bool all_const = true;
    for (int j = 0; j < n->nin; j++) all_const &= f->nodes[ir_operand(n, j)].op == IR_OP_CONST;
    if (!all_const) continue;
    ir_tensor in[IR_MAX_IN], out;
    const ir_tensor *args[IR_MAX_IN];
    for (int j = 0; j < n->nin; j++) {
      const ir_node *c = &f->nodes[n->in[j]];
      in[j] = ir_tensor_alloc(IR_F32, c->shape);
      *(float *)in[j].data = (float)c->f[0];
      args[j] = &in[j];
    }
    int rc = ir_interp_node(&it, n, args, &out);
    for (int j = 0; j < n->nin; j++) ir_tensor_free(&in[j]);
    if (rc) continue; /* leave it to run time, which reports the same */
    double v = *(float *)out.data;
    ir_tensor_free(&out);
    n->op = IR_OP_CONST;
    n->nin = 0;
    memset(n->in, 0, sizeof n->in);
    memset(n->i, 0, sizeof n->i);
    memset(n->f, 0, sizeof n->f);
    n->f[0] = v;
    folded++;
  }
  return folded;
}
