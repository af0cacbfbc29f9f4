/* lower_table.c: the lowering of every ir_op, indexed by op. The op table itself lives
 * in ir/ (which must not depend on codegen), so this is codegen's column of it; the
 * static assertion fails the build when ir.h gains an op this table does not list. */
#include "codegen/cg_internal.h"

#define BUF(fn) {fn, NULL}
#define BUFX(fn, ex) {fn, ex}
#define ALIAS(fn) {fn, NULL} /* no buffer of its own (memplan.c) */

const cg_lowering cg_lowerings[] = {
    [IR_OP_INPUT] = ALIAS(cg_lower_input),
    [IR_OP_CONST] = BUF(cg_lower_const),
    [IR_OP_LOAD] = BUF(cg_lower_load),
    [IR_OP_STORE] = ALIAS(cg_lower_store),
    [IR_OP_NEG] = BUF(cg_lower_unary),
    [IR_OP_RELU] = BUF(cg_lower_unary),
    [IR_OP_LRELU] = BUF(cg_lower_unary),
    [IR_OP_TANH] = BUF(cg_lower_unary),
    [IR_OP_SIGMOID] = BUF(cg_lower_unary),
    [IR_OP_SOFTPLUS] = BUF(cg_lower_unary),
    [IR_OP_EXP] = BUF(cg_lower_unary),
    [IR_OP_LOG] = BUF(cg_lower_unary),
    [IR_OP_SQRT] = BUF(cg_lower_unary),
    [IR_OP_SIN] = BUF(cg_lower_unary),
    [IR_OP_COS] = BUF(cg_lower_unary),
    [IR_OP_ADD] = BUF(cg_lower_binary),
    [IR_OP_SUB] = BUF(cg_lower_binary),
    [IR_OP_MUL] = BUF(cg_lower_binary),
    [IR_OP_DIV] = BUF(cg_lower_binary),
    [IR_OP_MATMUL] = BUF(cg_lower_matmul),
    [IR_OP_CONV] = BUFX(cg_lower_conv, cg_extra_conv),
    [IR_OP_DECONV] = BUFX(cg_lower_conv, cg_extra_conv),
    [IR_OP_BATCHNORM] = BUFX(cg_lower_batchnorm, cg_extra_batchnorm),
    [IR_OP_BATCHNORM_INFER] = BUF(cg_lower_batchnorm),
    [IR_OP_RESHAPE] = ALIAS(cg_lower_reshape),
    [IR_OP_CONCAT] = BUF(cg_lower_concat),
    [IR_OP_SLICE] = BUF(cg_lower_slice),
    [IR_OP_SUM] = BUF(cg_lower_reduce),
    [IR_OP_MEAN] = BUF(cg_lower_reduce),
    [IR_OP_VAR] = BUF(cg_lower_reduce),
    [IR_OP_ONEHOT] = BUF(cg_lower_onehot),
    [IR_OP_DROPOUT] = BUF(cg_lower_dropout),
    [IR_OP_BCE_LOGITS] = BUF(cg_lower_bce_logits),
    [IR_OP_SOFTMAX_CE] = BUF(cg_lower_cross_entropy),
    [IR_OP_GAUSSIAN_NLL] = BUF(cg_lower_gaussian_nll),
    [IR_OP_INFO_CATEGORICAL] = BUF(cg_lower_cross_entropy),
    [IR_OP_RELU_GRAD] = BUF(cg_lower_same_shape),
    [IR_OP_LRELU_GRAD] = BUF(cg_lower_same_shape),
    [IR_OP_CONV_GRAD_X] = BUFX(cg_lower_conv, cg_extra_conv),
    [IR_OP_CONV_GRAD_W] = BUFX(cg_lower_conv, cg_extra_conv),
    [IR_OP_BATCHNORM_GRAD] = BUFX(cg_lower_batchnorm_grad, cg_extra_batchnorm),
    [IR_OP_BATCHNORM_GRAD_GAMMA] = BUFX(cg_lower_batchnorm_grad, cg_extra_batchnorm),
    [IR_OP_EXPAND] = BUF(cg_lower_expand),
    [IR_OP_UNSLICE] = BUF(cg_lower_unslice),
    [IR_OP_SOFTMAX] = BUF(cg_lower_softmax),
    [IR_OP_ALLREDUCE] = BUF(cg_lower_allreduce),
    [IR_OP_MAXIMUM] = BUF(cg_lower_binary),
    [IR_OP_MAX_GRAD] = BUF(cg_lower_same_shape),
    [IR_OP_SELECT] = BUF(cg_lower_same_shape),
};

_Static_assert(sizeof cg_lowerings / sizeof cg_lowerings[0] == IR_OP_COUNT,
               "cg_lowerings must list every ir_op");

int64_t cg_extra_bytes(const ir_func *f, const ir_node *n) {
  cg_extra_fn e = (unsigned)n->op < IR_OP_COUNT ? cg_lowerings[n->op].extra : NULL;
  return e ? e(f, n) : 0;
}
