/* parser_example.h: the model both parser tests read: every declaration and statement
 * kind, keyword arguments, destructuring, indexing, a continuation line. */
#ifndef MIGC_TEST_PARSER_EXAMPLE_H
#define MIGC_TEST_PARSER_EXAMPLE_H

static const char *example =
    "model infogan_mnist\n"
    "input  x : [1, 28, 28] range [0, 1]       # pixels in [0, 1]\n"
    "latent z : uniform(-1, 1) [62]\n"
    "code   c : categorical(10)\n"
    "code   s : uniform(-1, 1) [2]\n"
    "const  lambda = 1.0\n"
    "\n"
    "net G(z, c, s) {\n"
    "  h = concat(z, onehot(c), s)\n"
    "  h = relu(batchnorm(dense(h, 1024)))\n"
    "  h = relu(batchnorm(deconv(reshape(h, [128, 7, 7]), 64, k=4, s=2, p=1)))\n"
    "  return sigmoid(deconv(h, 1, k=4, s=2, p=1))\n"
    "}\n"
    "net Q(f) {\n"
    "  h = lrelu(batchnorm(dense(f, 128)), 0.1)\n"
    "  return dense(h, 10), dense(h, 2)\n"
    "}\n"
    "train batch 64 {\n"
    "  fake = G(z, c, s)\n"
    "  logits, mu = Q(body(fake))\n"
    "  mi = info_categorical(c, logits) + info_gaussian(s, mu, std=1)\n"
    "  step disc(body, D, Q) : minimize bce(D(body(x)), 1) + bce(D(body(fake)), 0) - lambda * mi\n"
    "                          with adam(lr=2e-4, beta1=0.5)\n"
    "  step gen(G, Q) : minimize bce(D(body(fake)), 1) - lambda * mi with adam(lr=1e-3, beta1=0.5)\n"
    "  report mi\n"
    "}\n"
    "generate image = G(z, c, s)\n"
    "encode c_logits, s_mean = Q(body(x))\n";

#endif
