/* test_mi_terms.c: which outputs of train_step are MI estimates (ir_mi_terms), of
 * which terms, and the most each can reach, against values computed by hand:
 *   categorical(K)                                  ln K
 *   uniform(a, b) [D], std s    D (ln(b - a) - ½ ln(2π s²))
 *   normal(m, v) [D], std s     D (½ ln(2πe v²) - ½ ln(2π s²)) = D (½ + ln(v / s))
 *   bernoulli(p) [D]            D H(p) = -D (p ln p + (1-p) ln(1-p))
 * a sum adds its terms' bounds, and a scaled estimate has none. Before the passes and
 * after them (autodiff, simplify and dce leave the report nodes as they were). */
#include "check.h"
#include "frontend/frontend.h"
#include "passes/passes.h"

#include <stdlib.h>
#include <string.h>

static const char model_text[] =
    "model bounds\n"
    "input  x : [4] range [0, 1]\n"
    "latent z : uniform(-1, 1) [3]\n"
    "code   c : categorical(10)\n"
    "code   k : categorical(4)\n"
    "code   s : uniform(-1, 1) [2]\n"
    "code   n : normal(0, 2) [3]\n"
    "code   u : uniform(0, 2) [1]\n"
    "code   b : bernoulli(0.5) [4]\n"
    "code   q : bernoulli(0.2) [3]\n"
    "net G(z, c, k, s, n, u, b, q) {\n"
    "  return sigmoid(dense(concat(z, onehot(c), onehot(k), s, n, u, b, q), 4)) }\n"
    "net Q(f) { h = relu(dense(f, 8))\n"
    "  return dense(h, 10), dense(h, 4), dense(h, 2), dense(h, 3), dense(h, 1), dense(h, 4),\n"
    "         dense(h, 3) }\n"
    "net D(f) { return dense(f, 1) }\n"
    "train batch 8 {\n"
    "  fake = G(z, c, k, s, n, u, b, q)\n"
    "  lc, lk, ms, mn, mu, lb, lq = Q(fake)\n"
    "  mi_c = info_categorical(c, lc)\n"
    "  mi_k = info_categorical(k, lk)\n"
    "  mi_s = info_gaussian(s, ms, std=1)\n"
    "  mi_n = info_gaussian(n, mn, std=0.5)\n"
    "  mi_u = info_gaussian(u, mu, std=0.1)\n"
    "  mi_b = info_bernoulli(b, lb)\n"
    "  mi_q = info_bernoulli(q, lq)\n"
    "  mi = mi_c + mi_s\n"
    "  half = 0.5 * mi_c\n"
    "  report mi_c, mi_k, mi_s, mi_n, mi_u, mi_b, mi_q, mi, half\n"
    "  step disc(D, Q) : minimize bce(D(x), 1) + bce(D(fake), 0) - mi_c - mi_k - mi_s - mi_n - mi_u\n"
    "                             - mi_b - mi_q\n"
    "                    with adam(lr=0.001)\n"
    "  step gen(G) : minimize bce(D(fake), 1) - mi with adam(lr=0.001)\n"
    "}\n"
    "generate image = G(z, c, k, s, n, u, b, q)\n";

static int output(const ir_func *f, const char *name) {
  for (int k = 0; k < f->noutputs; k++)
    if (!strcmp(f->outputs[k].name, name)) return f->outputs[k].node;
  CHECK_MSG(false, "no output %s", name);
  return -1;
}

/* Output `name`: its term count, bound and formula. */
static void check_estimate(const ir_module *m, const char *name, int nterms, double bound,
                           const char *formula) {
  const ir_func *f = ir_find_func(m, "train_step");
  ir_mi_term t[4];
  int n = ir_mi_terms(f, output(f, name), t, 4);
  CHECK_MSG(n == nterms, "%s: %d terms, expected %d", name, n, nterms);
  if (n != nterms || !n) return;
  CHECK_NEAR(ir_mi_bound(t, n), bound, 1e-12, 1e-12);
  char buf[256];
  ir_mi_bound_str(m, t, n, buf, sizeof buf);
  CHECK_STR(buf, formula);
}

static void check_module(const ir_module *m) {
  const double ln2 = log(2), half_ln_2pi = 0.5 * log(2 * M_PI);
  check_estimate(m, "mi_c", 1, log(10), "ln 10");                    /* 2.302585 */
  check_estimate(m, "mi_k", 1, log(4), "ln 4");                      /* 1.386294 */
  check_estimate(m, "mi_s", 1, 2 * (ln2 - half_ln_2pi),              /* -0.451583 */
                 "2 (ln 2 - 0.5 ln(2 pi))");
  check_estimate(m, "mi_n", 1, 3 * (0.5 + log(2 / 0.5)),             /* 5.658883 */
                 "3 (0.5 ln(2 pi e 4) - 0.5 ln(2 pi 0.25))");
  check_estimate(m, "mi_u", 1, ln2 - 0.5 * log(2 * M_PI * 0.01),     /* 2.076793 */
                 "ln 2 - 0.5 ln(2 pi 0.01)");
  double h02 = -(0.2 * log(0.2) + 0.8 * log(0.8));                     /* 0.500402 */
  check_estimate(m, "mi_b", 1, 4 * ln2, "4 ln 2");                   /* 2.772589 */
  check_estimate(m, "mi_q", 1, 3 * h02, "3 H(0.2)");                 /* 1.501207 */
  check_estimate(m, "mi", 2, log(10) + 2 * (ln2 - half_ln_2pi),      /* 1.851002 */
                 "ln 10 + 2 (ln 2 - 0.5 ln(2 pi))");
  check_estimate(m, "half", 0, 0, "");
  check_estimate(m, "disc.loss", 0, 0, "");
  /* the numbers themselves, as a reader would check them */
  ir_mi_term t[4];
  const ir_func *f = ir_find_func(m, "train_step");
  CHECK(ir_mi_terms(f, output(f, "mi_s"), t, 4) == 1);
  CHECK_NEAR(t[0].bound, -0.4515827, 0, 1e-7);
  CHECK(t[0].op == IR_OP_GAUSSIAN_NLL && t[0].dims == 2 && t[0].std == 1);
  CHECK(t[0].code == ir_find_input(m, "s"));
  CHECK_NEAR(t[0].h, 2 * ln2, 1e-15, 0);
  CHECK(ir_mi_terms(f, output(f, "mi_n"), t, 4) == 1);
  CHECK_NEAR(t[0].bound, 5.6588831, 0, 1e-7);
  CHECK(ir_mi_terms(f, output(f, "mi_c"), t, 4) == 1);
  CHECK(t[0].op == IR_OP_INFO_CATEGORICAL && t[0].code == ir_find_input(m, "c") && t[0].dims == 10);
  CHECK(f->nodes[t[0].pred].shape.dim[1] == 10);
  CHECK(ir_mi_terms(f, output(f, "mi"), t, 1) == 0); /* more terms than room */
  CHECK(ir_mi_terms(f, output(f, "mi_q"), t, 4) == 1);
  CHECK(t[0].op == IR_OP_BCE_LOGITS && t[0].code == ir_find_input(m, "q") && t[0].dims == 3);
  CHECK(f->nodes[t[0].pred].shape.dim[1] == 3);
  CHECK_NEAR(t[0].h, 1.5012073, 0, 1e-7);
}

int main(void) {
  diag_sink d;
  diag_init(&d);
  ast_file *ast = parse_source(&d, "bounds.mig", model_text);
  ir_module *m = ast && !d.nerrors ? elaborate(ast, NULL, &d) : NULL;
  CHECK(m != NULL && d.nerrors == 0);
  if (!m) {
    diag_print(&d, stderr, false);
    return check_done();
  }
  check_module(m);
  pass_options po = {.verify_each = true};
  CHECK(passes_run(m, &po, &d) == 0);
  check_module(m);
  ir_module_free(m);
  ast_free(ast);
  diag_free(&d);
  return check_done();
}
