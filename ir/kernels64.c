/* kernels64.c: the interpreter's f64 mode kernels. kernels.c compiled again with
 * KREAL = double: kernel64_<op> computes what kernel_<op> does, holding f32 values as
 * doubles (IR_F64 tensors) and reading and writing the state through it->state64.
 * ir_kernels64 is indexed by op like ir_ops; the interpreter picks from it when
 * it->f64 is set. */
#define KREAL double
#define KNAME(op) kernel64_##op
#define KSTATE state64
#define KF64 1
#include "kernels.c"

const ir_interp_kernel ir_kernels64[] = {
    [IR_OP_INPUT] = NULL, /* the interpreter takes its value from the inputs */
    [IR_OP_CONST] = kernel64_const,
    [IR_OP_LOAD] = kernel64_load,
    [IR_OP_STORE] = kernel64_store,
    [IR_OP_NEG] = kernel64_neg,
    [IR_OP_RELU] = kernel64_relu,
    [IR_OP_LRELU] = kernel64_lrelu,
    [IR_OP_TANH] = kernel64_tanh,
    [IR_OP_SIGMOID] = kernel64_sigmoid,
    [IR_OP_SOFTPLUS] = kernel64_softplus,
    [IR_OP_EXP] = kernel64_exp,
    [IR_OP_LOG] = kernel64_log,
    [IR_OP_SQRT] = kernel64_sqrt,
    [IR_OP_SIN] = kernel64_sin,
    [IR_OP_COS] = kernel64_cos,
    [IR_OP_ADD] = kernel64_add,
    [IR_OP_SUB] = kernel64_sub,
    [IR_OP_MUL] = kernel64_mul,
    [IR_OP_DIV] = kernel64_div,
    [IR_OP_MATMUL] = kernel64_matmul,
    [IR_OP_CONV] = kernel64_conv,
    [IR_OP_DECONV] = kernel64_deconv,
    [IR_OP_BATCHNORM] = kernel64_batchnorm,
    [IR_OP_BATCHNORM_INFER] = kernel64_batchnorm_infer,
    [IR_OP_RESHAPE] = kernel64_reshape,
    [IR_OP_CONCAT] = kernel64_concat,
    [IR_OP_SLICE] = kernel64_slice,
    [IR_OP_SUM] = kernel64_sum,
    [IR_OP_MEAN] = kernel64_mean,
    [IR_OP_VAR] = kernel64_var,
    [IR_OP_ONEHOT] = kernel64_onehot,
    [IR_OP_DROPOUT] = kernel64_dropout,
    [IR_OP_BCE_LOGITS] = kernel64_bce_logits,
    [IR_OP_SOFTMAX_CE] = kernel64_softmax_ce,
    [IR_OP_GAUSSIAN_NLL] = kernel64_gaussian_nll,
    [IR_OP_INFO_CATEGORICAL] = kernel64_info_categorical,
    [IR_OP_RELU_GRAD] = kernel64_relu_grad,
    [IR_OP_LRELU_GRAD] = kernel64_lrelu_grad,
    [IR_OP_CONV_GRAD_X] = kernel64_conv_grad_x,
    [IR_OP_CONV_GRAD_W] = kernel64_conv_grad_w,
    [IR_OP_BATCHNORM_GRAD] = kernel64_batchnorm_grad,
    [IR_OP_BATCHNORM_GRAD_GAMMA] = kernel64_batchnorm_grad_gamma,
    [IR_OP_EXPAND] = kernel64_expand,
    [IR_OP_UNSLICE] = kernel64_unslice,
    [IR_OP_SOFTMAX] = kernel64_softmax,
    [IR_OP_ALLREDUCE] = kernel64_allreduce,
    [IR_OP_MAXIMUM] = kernel64_maximum,
    [IR_OP_MAX_GRAD] = kernel64_max_grad,
    [IR_OP_SELECT] = kernel64_select,
};

_Static_assert(sizeof ir_kernels64 / sizeof ir_kernels64[0] == IR_OP_COUNT,
               "ir_kernels64 must have one entry per ir_op");

/* after the table, so that its declared length cannot hide a short table */
#include "ir/kernels64.h"
