/* op_impl.h: the functions the op table points to. Internal to ir/: shape rules
 * live in shape_rules.c, interpreter kernels in kernels.c. Nothing outside ir/
 * calls these directly; everyone goes through ir_ops[op]. */
#ifndef MIGC_OP_IMPL_H
#define MIGC_OP_IMPL_H

#include "ir.h"

#define SHAPE_RULE(name)                                                              \
  bool name(ir_node *n, const ir_node *const *in, char *err, size_t errn, int *bad)
#define KERNEL(name)                                                                  \
  int name(ir_interp *it, const ir_node *n, const ir_tensor *const *in, ir_tensor *out)

SHAPE_RULE(rule_source); /* INPUT, LOAD: shape and dtype preset from attributes */
SHAPE_RULE(rule_const);
SHAPE_RULE(rule_store);
SHAPE_RULE(rule_unary);
SHAPE_RULE(rule_binary);
SHAPE_RULE(rule_matmul);
SHAPE_RULE(rule_conv);
SHAPE_RULE(rule_deconv);
SHAPE_RULE(rule_batchnorm);
SHAPE_RULE(rule_batchnorm_infer);
SHAPE_RULE(rule_reshape);
SHAPE_RULE(rule_concat);
SHAPE_RULE(rule_slice);
SHAPE_RULE(rule_reduce);
SHAPE_RULE(rule_onehot);
SHAPE_RULE(rule_dropout);
SHAPE_RULE(rule_bce_logits);
SHAPE_RULE(rule_softmax_ce);
SHAPE_RULE(rule_gaussian_nll);
SHAPE_RULE(rule_info_categorical);
SHAPE_RULE(rule_act_grad);   /* RELU_GRAD, LRELU_GRAD: x, dy same shape */
SHAPE_RULE(rule_conv_grad_x);
SHAPE_RULE(rule_conv_grad_w);
SHAPE_RULE(rule_batchnorm_grad);
SHAPE_RULE(rule_batchnorm_grad_gamma);
SHAPE_RULE(rule_expand);
SHAPE_RULE(rule_unslice);
SHAPE_RULE(rule_softmax);
SHAPE_RULE(rule_max_grad); /* MAX_GRAD: a, b, dy of one shape */
SHAPE_RULE(rule_select);   /* SELECT: cond of one element, a and b of one shape */

KERNEL(kernel_const);
KERNEL(kernel_load);
KERNEL(kernel_store);
KERNEL(kernel_neg);
KERNEL(kernel_relu);
KERNEL(kernel_lrelu);
KERNEL(kernel_tanh);
KERNEL(kernel_sigmoid);
KERNEL(kernel_softplus);
KERNEL(kernel_exp);
KERNEL(kernel_log);
KERNEL(kernel_sqrt);
KERNEL(kernel_sin);
KERNEL(kernel_cos);
KERNEL(kernel_add);
KERNEL(kernel_sub);
KERNEL(kernel_mul);
KERNEL(kernel_div);
KERNEL(kernel_matmul);
KERNEL(kernel_conv);
KERNEL(kernel_deconv);
KERNEL(kernel_batchnorm);
KERNEL(kernel_batchnorm_infer);
KERNEL(kernel_reshape);
KERNEL(kernel_concat);
KERNEL(kernel_slice);
KERNEL(kernel_sum);
KERNEL(kernel_mean);
KERNEL(kernel_var);
KERNEL(kernel_onehot);
KERNEL(kernel_dropout);
KERNEL(kernel_bce_logits);
KERNEL(kernel_softmax_ce);
KERNEL(kernel_gaussian_nll);
KERNEL(kernel_info_categorical);
KERNEL(kernel_relu_grad);
KERNEL(kernel_lrelu_grad);
KERNEL(kernel_conv_grad_x);
KERNEL(kernel_conv_grad_w);
KERNEL(kernel_batchnorm_grad);
KERNEL(kernel_batchnorm_grad_gamma);
KERNEL(kernel_expand);
KERNEL(kernel_unslice);
KERNEL(kernel_softmax);
KERNEL(kernel_allreduce);
KERNEL(kernel_maximum);
KERNEL(kernel_max_grad);
KERNEL(kernel_select);

#define VJP(name) void name(ir_func *f, int block, int id, int dy, const bool *want, int *dx)
VJP(vjp_neg);
VJP(vjp_relu);
VJP(vjp_lrelu);
VJP(vjp_tanh);
VJP(vjp_sigmoid);
VJP(vjp_softplus);
VJP(vjp_exp);
VJP(vjp_log);
VJP(vjp_sqrt);
VJP(vjp_sin);
VJP(vjp_cos);
VJP(vjp_add);
VJP(vjp_sub);
VJP(vjp_mul);
VJP(vjp_div);
VJP(vjp_matmul);
VJP(vjp_conv);
VJP(vjp_deconv);
VJP(vjp_batchnorm);
VJP(vjp_reshape);
VJP(vjp_concat);
VJP(vjp_slice);
VJP(vjp_sum);
VJP(vjp_mean);
VJP(vjp_var);
VJP(vjp_dropout);
VJP(vjp_bce_logits);
VJP(vjp_softmax_ce);
VJP(vjp_gaussian_nll);
VJP(vjp_relu_grad);
VJP(vjp_lrelu_grad);
VJP(vjp_conv_grad_x);
VJP(vjp_conv_grad_w);
VJP(vjp_expand);
VJP(vjp_unslice);
VJP(vjp_softmax);
VJP(vjp_maximum);
VJP(vjp_max_grad);
VJP(vjp_select);
VJP(vjp_info_categorical);

#endif
