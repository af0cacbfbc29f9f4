/* test_grad_fd.c: every differentiable op's gradient against central differences in
 * double precision, through small models that use it in each configuration the
 * models need: every broadcasting pattern, the conv and deconv strides and paddings,
 * batchnorm on [N,C] and [N,C,H,W], each shape op, each reduction, each loss, and
 * the MI terms. Each model runs through gradcheck() (every parameter tensor: one
 * random direction and four single elements), and the worst relative error must stay
 * below 1e-6: double-precision differences leave no room for a wrong rule. (A bias
 * right before batchnorm has a zero gradient, so the batchnorm case has none.) */
#include "check.h"
#include "frontend/frontend.h"
#include "passes/passes.h"

#include <stdlib.h>
#include <string.h>

#define TOL 1e-6

static void check_model(const char *what, const char *body_and_train) {
  char src[8192];
  snprintf(src, sizeof src,
           "model t\n"
           "input x : [2, 4, 4] range [-1, 1]\n"
           "latent z : normal(0, 1) [6]\n"
           "code c : categorical(3)\n"
           "code s : uniform(-1, 1) [2]\n"
           "%s",
           body_and_train);
  diag_sink d;
  diag_init(&d);
  ast_file *ast = parse_source(&d, "t.mig", src);
  elab_options eo = {.batch = 3};
  ir_module *m = ast && !d.nerrors ? elaborate(ast, &eo, &d) : NULL;
  if (!m) diag_print(&d, stderr, false);
  CHECK_MSG(m != NULL, "%s: the model does not elaborate", what);
  if (m) {
    gradcheck_options o = {NULL, 5, 4, 1e-6, NULL, NULL};
    gradcheck_result *r;
    char err[512];
    int n = gradcheck(m, &o, &r, err, sizeof err);
    CHECK_MSG(n > 0, "%s: %s", what, n < 0 ? err : "nothing checked");
    for (int i = 0; i < n; i++) {
      CHECK_MSG(r[i].worst <= TOL, "%s: %s %s: relative error %.3e (|grad| %.3e)", what,
                r[i].step, r[i].var, r[i].worst, r[i].grad_norm);
      CHECK_MSG(r[i].grad_norm > 0, "%s: %s has a zero gradient", what, r[i].var);
    }
    if (n > 0) gradcheck_free(r, n);
  }
  ir_module_free(m);
  if (ast) ast_free(ast);
  diag_free(&d);
}

int main(void) {
  check_model("elementwise",
              "net N(v, z) {\n"
              "  h = dense(concat(flatten(v), z), 5)\n"
              "  a = tanh(h) + sigmoid(h) * softplus(h) - exp(h * 0.1) / (2 + relu(h))\n"
              "  b = log(softplus(h) + 1) + sqrt(softplus(h) + 0.5) + lrelu(h, 0.1) - h\n"
              "  c = sin(h * 2) * cos(h + 1)\n"
              "  return mean(a * b + c)\n"
              "}\n"
              "train batch 3 { step s(N) : minimize N(x, z) with sgd(lr=0.1) }\n");
  check_model("broadcasting",
              "net N(v) {\n"
              "  h = conv(v, 3, k=3, p=1)\n"                       /* [3,4,4] */
              "  w = reshape(dense(flatten(v), 3), [3, 1, 1])\n"   /* [3,1,1] batched */
              "  u = dense(flatten(v), 4)\n"                       /* [4] batched */
              "  p = reshape(dense(flatten(v), 1), [1])\n"
              "  q = mean(h, axes=[0, 1])\n"                      /* [4] batched */
              "  y = h * w + h / (2 + w * w) - reshape(u * q, [1, 1, 4]) + reshape(p, [1, 1, 1])\n"
              "  return mean(y * y) + mean(u / (3 + q * q))\n"
              "}\n"
              "train batch 3 { step s(N) : minimize N(x) with sgd(lr=0.1) }\n");
  check_model("conv strides and paddings",
              "net N(v) {\n"
              "  a = conv(v, 3, k=4, s=2, p=1)\n"   /* 4 -> 2 */
              "  b = conv(v, 2, k=3, s=1, p=1)\n"   /* 4 -> 4 */
              "  c = conv(v, 2, k=3, s=2, p=0)\n"   /* 4 -> 1 */
              "  d = conv(v, 2, k=1)\n"
              "  e = conv(v, 2, k=2, s=3, p=1)\n"   /* rows the conv never reads */
              "  return mean(a * a) + mean(b * b) + mean(c) + mean(d * d) + mean(e * e)\n"
              "}\n"
              "train batch 3 { step s(N) : minimize N(x) with sgd(lr=0.1) }\n");
  check_model("deconv strides and paddings",
              "net N(v) {\n"
              "  a = deconv(v, 3, k=4, s=2, p=1)\n" /* 4 -> 8 */
              "  b = deconv(v, 2, k=3, s=1, p=1)\n" /* 4 -> 4 */
              "  c = deconv(v, 2, k=3, s=2, p=0)\n" /* 4 -> 9 */
              "  return mean(a * a) + mean(b * b) + mean(tanh(c))\n"
              "}\n"
              "train batch 3 { step s(N) : minimize N(x) with sgd(lr=0.1) }\n");
  check_model("batchnorm",
              "net N(v) {\n"
              "  h = batchnorm(conv(v, 3, k=3, p=1, bias=0))\n"
              "  g = batchnorm(dense(flatten(h), 4, bias=0))\n"
              "  return mean(sigmoid(g) * g) + mean(h * h * h)\n"
              "}\n"
              "train batch 3 { step s(N) : minimize N(x) with sgd(lr=0.1) }\n");
  check_model("shape ops and reductions",
              "net N(v, z) {\n"
              "  h = dense(z, 12)\n"
              "  r = reshape(h, [3, 2, 2])\n"
              "  k = concat(r, slice(r, 1, 3, axis=0), axis=0)\n"   /* [5,2,2] */
              "  t = sum(k, axes=[1], keep=1) * mean(k, axes=[0, 2], keep=1)\n"
              "  return mean(t * t) + sum(slice(flatten(k), 2, 7)) / 10\n"
              "}\n"
              "train batch 3 { step s(N) : minimize N(x, z) with sgd(lr=0.1) }\n");
  check_model("losses and MI terms",
              "net N(v, z) {\n"
              "  h = lrelu(dense(concat(flatten(v), z), 8), 0.2)\n"
              "  return dense(h, 1), dense(h, 3), dense(h, 2), sigmoid(dense(h, 1))\n"
              "}\n"
              "train batch 3 {\n"
              "  logit, cls, mu, p = N(x, z)\n"
              "  step s(N) : minimize bce(logit, 1) + bce(logit, p) + softmax_ce(cls, c)\n"
              "    - info_categorical(c, cls) - info_gaussian(s, mu, std=0.7)\n"
              "    + gaussian_nll(s, mu * 2, std=1.5) with sgd(lr=0.1)\n"
              "}\n");
  check_model("dropout and two steps",
              "net A(z) {\n  return dense(dropout(relu(dense(z, 8)), 0.25), 4)\n}\n"
              "net B(h) {\n  return dense(h, 1)\n}\n"
              "train batch 3 {\n"
              "  h = A(z)\n"
              "  step b(B) : minimize mean(B(h) * B(h)) with adam(lr=1e-3)\n"
              "  step a(A, B) : minimize bce(B(h), 1) with adam(lr=1e-3)\n"
              "}\n");
  check_model("resampling",
              "net N(v) {\n"
              "  h = tanh(conv(v, 2, k=3, p=1))\n"                       /* [2,4,4] */
              "  a = upsample(h, 2, mode=\"bilinear\")\n"
              "  b = avgpool(upsample(h, 3, mode=\"bilinear\"), 3)\n"    /* [2,4,4] */
              "  return mean(a * a) + mean(b * h) + mean(avgpool(upsample(h, 2)) * h)\n"
              "}\n"
              "train batch 3 { step s(N) : minimize N(x) with sgd(lr=0.1) }\n");
  /* net instances: repeat and name= (each instance's own parameters) */
  check_model("instances",
              "net blk(h, n) {\n  return h + dense(tanh(dense(h, n)), 6)\n}\n"
              "net N(z) {\n"
              "  h = repeat(blk, 3, z, 5, name=\"block\")\n"
              "  return mean(blk(h, 4, name=\"last\") * h)\n"
              "}\n"
              "train batch 3 { step s(N) : minimize N(z) with sgd(lr=0.1) }\n");
  /* maxpool and maximum, and grad() through them (random values: no ties) */
  check_model("max",
              "net N(v) {\n"
              "  h = tanh(conv(v, 3, k=3, p=1))\n"                       /* [3,4,4] */
              "  p = maxpool(h, 2)\n"                                    /* [3,2,2] */
              "  return mean(p * p) + mean(maximum(h, 0.1) * h) + mean(maximum(p, reshape(slice(flatten(p), 0, 1), [1, 1, 1])))\n"
              "}\n"
              "train batch 3 {\n"
              "  g = grad(N(x), x)\n"
              "  step s(N) : minimize N(x) + mean(g * g) with sgd(lr=0.1)\n"
              "}\n");
  /* grad() inside the loss: the step differentiates every adjoint op a second time
   * (conv_grad_x and conv_grad_w from conv and deconv, lrelu_grad, relu_grad, expand
   * from sum and mean, unslice from slice, softmax from info_categorical). */
  check_model("grad inside the loss",
              "net N(v, z) {\n"
              "  h = lrelu(conv(v, 3, k=3, s=2, p=1), 0.1)\n"           /* [3,2,2] */
              "  h = relu(deconv(h, 2, k=2, s=2) + 0.1)\n"              /* [2,4,4] */
              "  f = concat(flatten(h), z)\n"
              "  return slice(dense(f, 4), 0, 3) * 2\n"                 /* [3] */
              "}\n"
              "train batch 3 {\n"
              "  q = N(x, z)\n"
              "  gx = grad(sum(tanh(q) * q) + info_categorical(c, q) + mean(q), x)\n"
              "  gz = grad(sum(q * q), z)\n"
              "  pen = mean(sum(gx * gx, axes=[0, 1, 2])) + mean(sqrt(sum(gz * gz, axes=[0]) + 1))\n"
              "  step s(N) : minimize pen + mean(q) with sgd(lr=0.1)\n"
              "}\n");
  return check_done();
}
