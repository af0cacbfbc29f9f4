/* op_table.c: every IR op, once. A row gives the op's name, arity, attributes,
 * shape rule and interpreter kernel; later layers add their columns here (gradient
 * rule, codegen hook). The static assertion below fails the build if the enum in
 * ir.h and this table disagree in length. */
#include "op_impl.h"

#define INT(nm, s) {nm, ATTR_INT, s}
#define AXES(nm, s) {nm, ATTR_AXES, s}
#define FLT(nm, s) {nm, ATTR_FLOAT, s}
#define INT_IF_SET(nm, s) {nm, ATTR_INT, s, true}

const ir_op_info ir_ops[] = {
    [IR_OP_INPUT] = {"input", 0, {INT("index", 0)}, 1, false, rule_source, NULL, NULL},
    [IR_OP_CONST] = {"const", 0, {FLT("value", 0)}, 1, false, rule_const, kernel_const, NULL},
    [IR_OP_LOAD] = {"load", 0, {{0}}, 0, false, rule_source, kernel_load, NULL},
    [IR_OP_STORE] = {"store", 1, {{0}}, 0, true, rule_store, kernel_store, NULL},

    [IR_OP_NEG] = {"neg", 1, {{0}}, 0, false, rule_unary, kernel_neg, vjp_neg},
    [IR_OP_RELU] = {"relu", 1, {{0}}, 0, false, rule_unary, kernel_relu, vjp_relu},
    [IR_OP_LRELU] = {"lrelu", 1, {FLT("slope", 0)}, 1, false, rule_unary, kernel_lrelu, vjp_lrelu},
    [IR_OP_TANH] = {"tanh", 1, {{0}}, 0, false, rule_unary, kernel_tanh, vjp_tanh},
    [IR_OP_SIGMOID] = {"sigmoid", 1, {{0}}, 0, false, rule_unary, kernel_sigmoid, vjp_sigmoid},
    [IR_OP_SOFTPLUS] = {"softplus", 1, {{0}}, 0, false, rule_unary, kernel_softplus, vjp_softplus},
    [IR_OP_EXP] = {"exp", 1, {{0}}, 0, false, rule_unary, kernel_exp, vjp_exp},
    [IR_OP_LOG] = {"log", 1, {{0}}, 0, false, rule_unary, kernel_log, vjp_log},
    [IR_OP_SQRT] = {"sqrt", 1, {{0}}, 0, false, rule_unary, kernel_sqrt, vjp_sqrt},
    [IR_OP_SIN] = {"sin", 1, {{0}}, 0, false, rule_unary, kernel_sin, vjp_sin},
    [IR_OP_COS] = {"cos", 1, {{0}}, 0, false, rule_unary, kernel_cos, vjp_cos},

    [IR_OP_ADD] = {"add", 2, {{0}}, 0, false, rule_binary, kernel_add, vjp_add},
    [IR_OP_SUB] = {"sub", 2, {{0}}, 0, false, rule_binary, kernel_sub, vjp_sub},
    [IR_OP_MUL] = {"mul", 2, {{0}}, 0, false, rule_binary, kernel_mul, vjp_mul},
    [IR_OP_DIV] = {"div", 2, {{0}}, 0, false, rule_binary, kernel_div, vjp_div},

    [IR_OP_MATMUL] = {"matmul", 2, {INT("ta", 0), INT("tb", 1)}, 2, false, rule_matmul,
                      kernel_matmul, vjp_matmul},
    [IR_OP_CONV] = {"conv", 2, {INT("k", 0), INT("s", 1), INT("p", 2)}, 3, false, rule_conv,
                    kernel_conv, vjp_conv},
    [IR_OP_DECONV] = {"deconv", 2, {INT("k", 0), INT("s", 1), INT("p", 2)}, 3, false,
                      rule_deconv, kernel_deconv, vjp_deconv},

    [IR_OP_BATCHNORM] = {"batchnorm", 3, {FLT("eps", 0), INT_IF_SET("ranks", 0)}, 2, false, rule_batchnorm,
                         kernel_batchnorm, vjp_batchnorm},
    [IR_OP_BATCHNORM_INFER] = {"batchnorm_infer", 5, {FLT("eps", 0)}, 1, false,
                               rule_batchnorm_infer, kernel_batchnorm_infer, NULL},

    [IR_OP_RESHAPE] = {"reshape", 1, {{0}}, 0, false, rule_reshape, kernel_reshape, vjp_reshape},
    [IR_OP_CONCAT] = {"concat", -1, {INT("axis", 0)}, 1, false, rule_concat, kernel_concat, vjp_concat},
    [IR_OP_SLICE] = {"slice", 1, {INT("axis", 0), INT("start", 1), INT("end", 2)}, 3, false,
                     rule_slice, kernel_slice, vjp_slice},

    [IR_OP_SUM] = {"sum", 1, {AXES("axes", 0), INT("keep", 1)}, 2, false, rule_reduce,
                   kernel_sum, vjp_sum},
    [IR_OP_MEAN] = {"mean", 1, {AXES("axes", 0), INT("keep", 1)}, 2, false, rule_reduce,
                    kernel_mean, vjp_mean},
    [IR_OP_VAR] = {"var", 1, {AXES("axes", 0), INT("keep", 1)}, 2, false, rule_reduce,
                   kernel_var, vjp_var},

    [IR_OP_ONEHOT] = {"onehot", 1, {INT("n", 0)}, 1, false, rule_onehot, kernel_onehot, NULL},
    [IR_OP_DROPOUT] = {"dropout", 2, {FLT("p", 0), INT("site", 0)}, 2, false, rule_dropout,
                       kernel_dropout, vjp_dropout},

    [IR_OP_BCE_LOGITS] = {"bce_logits", 2, {{0}}, 0, false, rule_bce_logits,
                          kernel_bce_logits, vjp_bce_logits},
    [IR_OP_SOFTMAX_CE] = {"softmax_ce", 2, {{0}}, 0, false, rule_softmax_ce,
                          kernel_softmax_ce, vjp_softmax_ce},
    [IR_OP_GAUSSIAN_NLL] = {"gaussian_nll", 2, {FLT("std", 0)}, 1, false, rule_gaussian_nll,
                            kernel_gaussian_nll, vjp_gaussian_nll},
    [IR_OP_INFO_CATEGORICAL] = {"info_categorical", 2, {{0}}, 0, false,
                                rule_info_categorical, kernel_info_categorical, vjp_info_categorical},
    [IR_OP_RELU_GRAD] = {"relu_grad", 2, {{0}}, 0, false, rule_act_grad, kernel_relu_grad,
                         vjp_relu_grad},
    [IR_OP_LRELU_GRAD] = {"lrelu_grad", 2, {FLT("slope", 0)}, 1, false, rule_act_grad,
                          kernel_lrelu_grad, vjp_lrelu_grad},
    [IR_OP_CONV_GRAD_X] = {"conv_grad_x", 2, {INT("k", 0), INT("s", 1), INT("p", 2)}, 3, false,
                           rule_conv_grad_x, kernel_conv_grad_x, vjp_conv_grad_x},
    [IR_OP_CONV_GRAD_W] = {"conv_grad_w", 2, {INT("k", 0), INT("s", 1), INT("p", 2)}, 3, false,
                           rule_conv_grad_w, kernel_conv_grad_w, vjp_conv_grad_w},
    [IR_OP_BATCHNORM_GRAD] = {"batchnorm_grad", 3, {FLT("eps", 0), INT_IF_SET("ranks", 0)}, 2, false,
                              rule_batchnorm_grad, kernel_batchnorm_grad, NULL},
    [IR_OP_BATCHNORM_GRAD_GAMMA] = {"batchnorm_grad_gamma", 2, {FLT("eps", 0), INT_IF_SET("ranks", 0)}, 2, false,
                                    rule_batchnorm_grad_gamma, kernel_batchnorm_grad_gamma,
                                    NULL},
    [IR_OP_EXPAND] = {"expand", 1, {{0}}, 0, false, rule_expand, kernel_expand, vjp_expand},
    [IR_OP_UNSLICE] = {"unslice", 1, {INT("axis", 0), INT("start", 1), INT("end", 2)}, 3,
                       false, rule_unslice, kernel_unslice, vjp_unslice},
    [IR_OP_SOFTMAX] = {"softmax", 1, {{0}}, 0, false, rule_softmax, kernel_softmax, vjp_softmax},
    [IR_OP_ALLREDUCE] = {"allreduce", 1, {FLT("scale", 0)}, 1, true, rule_unary,
                         kernel_allreduce, NULL},
    [IR_OP_MAXIMUM] = {"maximum", 2, {{0}}, 0, false, rule_binary, kernel_maximum, vjp_maximum},
    [IR_OP_MAX_GRAD] = {"max_grad", 3, {INT("strict", 0)}, 1, false, rule_max_grad,
                        kernel_max_grad, vjp_max_grad},
    [IR_OP_SELECT] = {"select", 3, {{0}}, 0, false, rule_select, kernel_select, vjp_select},
};

_Static_assert(sizeof ir_ops / sizeof ir_ops[0] == IR_OP_COUNT,
               "ir_ops must have one row per ir_op");
