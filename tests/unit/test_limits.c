/* test_limits.c: inputs past the frontend's bounds get an error that says which bound,
 * never a crash, a stack overflow or a wrapped-around size: long names, expressions and
 * net calls nested past the evaluation depth, long chains of train-block names, tensors
 * past 2^40 values, models whose buffers exceed the memory limit. Expected sizes are
 * counted by hand from the models. */
#include "check.h"
#include "frontend/frontend.h"

#include <stdarg.h>
#include <stdlib.h>

/* The first error of elaborating text, "LINE:COL: message", or "" when there was none. */
static const char *first_error(const char *text, const elab_options *eo, char *buf, size_t n,
                               ir_module **out) {
  diag_sink d;
  diag_init(&d);
  ast_file *ast = parse_source(&d, "t.mig", text);
  ir_module *m = ast && !d.nerrors ? elaborate(ast, eo, &d) : NULL;
  buf[0] = 0;
  for (int i = 0; i < d.n; i++)
    if (d.entries[i].level == DIAG_ERROR) {
      snprintf(buf, n, "%d:%d: %s", d.entries[i].span.line, d.entries[i].span.col,
               d.entries[i].msg);
      break;
    }
  CHECK_MSG(!m == !!buf[0], "an error must mean no module and no module an error: %s", buf);
  if (out) *out = m;
  else ir_module_free(m);
  if (ast) ast_free(ast);
  diag_free(&d);
  return buf;
}

/* A growable string. */
typedef struct {
  char *s;
  size_t n, cap;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (t->n + (size_t)k + 1 > t->cap) {
    t->cap = (t->n + (size_t)k + 1) * 2;
    t->s = realloc(t->s, t->cap);
  }
  va_start(ap, fmt);
  vsnprintf(t->s + t->n, t->cap - t->n, fmt, ap);
  va_end(ap);
  t->n += (size_t)k;
}

static const char head[] = "model t\n"
                           "input x : [4] range [0, 1]\n"
                           "latent z : uniform(-1, 1) [4]\n";

static void test_name_length(void) {
  char buf[512];
  for (int len = 255; len <= 256; len++) {
    text t = {0};
    put(&t, "%snet G(z) {\n  return dense(z, 3)\n}\ntrain batch 2 {\n  ", head);
    for (int i = 0; i < len; i++) put(&t, "a");
    put(&t, " = G(z)\n  step g(G) : minimize mean(G(z)) with adam(lr=1e-3)\n}\n");
    first_error(t.s, NULL, buf, sizeof buf, NULL);
    CHECK_STR(buf, len == 255 ? "" : "8:3: a name of 256 characters; names have at most 255");
    free(t.s);
  }
}

/* 40 nets, each adding 60 levels of parentheses to the one it calls: each bound on its
 * own holds (nesting 256, calls 64), together they pass the evaluation depth (1024). */
static void test_deep_evaluation(void) {
  text t = {0};
  put(&t, "%snet N0(z) {\n  return dense(z, 4)\n}\n", head);
  for (int k = 1; k < 40; k++) {
    put(&t, "net N%d(z) {\n  return ", k);
    for (int i = 0; i < 60; i++) put(&t, "(");
    put(&t, "N%d(z)", k - 1);
    for (int i = 0; i < 60; i++) put(&t, " + 1)");
    put(&t, "\n}\n");
  }
  put(&t, "train batch 2 {\n  step g(N0) : minimize mean(N39(z)) with adam(lr=1e-3)\n}\n");
  char buf[512];
  first_error(t.s, NULL, buf, sizeof buf, NULL);
  const char *want = "evaluating this goes more than 1024 levels deep (expressions inside "
                     "expressions, names defined from other names, nets calling nets); split "
                     "it into fewer, flatter steps";
  CHECK_MSG(strstr(buf, want) != NULL, "got: %s", buf);
  free(t.s);
}

/* Train-block names are computed when first used, each from the one before: 5000 of
 * them would recurse 5000 names deep. In a net, the same chain is computed in order
 * and is fine; and its IR, 5000 nodes deep, is walked without recursion. */
static void test_long_chains(void) {
  char buf[512];
  text t = {0};
  put(&t, "%snet G(z) {\n  return dense(z, 4)\n}\ntrain batch 2 {\n  a0 = G(z)\n", head);
  for (int i = 1; i < 5000; i++) put(&t, "  a%d = a%d + 1\n", i, i - 1);
  put(&t, "  step g(G) : minimize mean(a4999) with adam(lr=1e-3)\n}\n");
  first_error(t.s, NULL, buf, sizeof buf, NULL);
  CHECK_MSG(strstr(buf, "more than 1024 levels deep") != NULL, "got: %s", buf);
  free(t.s);

  t = (text){0};
  put(&t, "%snet G(z) {\n  a0 = dense(z, 4)\n", head);
  for (int i = 1; i < 5000; i++) put(&t, "  a%d = a%d + 1\n", i, i - 1);
  put(&t, "  return a4999\n}\ntrain batch 2 {\n  step g(G) : minimize mean(G(z)) with "
          "adam(lr=1e-3)\n}\n");
  ir_module *m;
  first_error(t.s, NULL, buf, sizeof buf, &m);
  CHECK_STR(buf, "");
  ir_module_free(m);
  free(t.s);
}

/* Unused names are computed once for their errors, then their nodes are dropped; the
 * names computed on the way must be forgotten too (they once kept dropped nodes). */
static void test_unused_chain(void) {
  char buf[512];
  text t = {0};
  put(&t, "%snet G(z) {\n  return dense(z, 4)\n}\ntrain batch 2 {\n  u1 = G(z)\n"
          "  u2 = u1 + 1\n  u3 = u2 * frob\n"
          "  step g(G) : minimize mean(G(z)) with adam(lr=1e-3)\n}\n", head);
  first_error(t.s, NULL, buf, sizeof buf, NULL);
  CHECK_STR(buf, "10:13: unknown name 'frob'");
  free(t.s);
}

static void test_tensor_size(void) {
  char buf[512];
  /* per sample 2 * 2^17 * 2^17 = 2^35 values, times the batch 64: 2^41 */
  const char *src = "model t\n"
                    "input x : [1, 131072, 131072] range [0, 1]\n"
                    "net D(x) {\n  return dense(flatten(concat(x, x)), 1)\n}\n"
                    "train batch 64 {\n"
                    "  step d(D) : minimize mean(D(x)) with adam(lr=1e-3)\n}\n";
  first_error(src, NULL, buf, sizeof buf, NULL);
  CHECK_STR(buf, "4:24: concat would give [2,131072,131072] (per sample): more than 2^40 "
                 "values in all, the most a tensor may hold");
  /* the input itself: 2^34 values per sample, 2^20 samples */
  src = "model t\n"
        "input x : [1, 131072, 131072] range [0, 1]\n"
        "net D(x) {\n  return dense(flatten(x), 1)\n}\n"
        "train batch 1048576 {\n"
        "  step d(D) : minimize mean(D(x)) with adam(lr=1e-3)\n}\n";
  first_error(src, NULL, buf, sizeof buf, NULL);
  CHECK_STR(buf, "2:7: x is [1,131072,131072] per sample, at batch 1048576 more than 2^40 values, "
                 "the most a tensor may hold");
  /* a weight of 2^34 x 2^24 values */
  src = "model t\n"
        "input x : [1, 131072, 131072] range [0, 1]\n"
        "net D(x) {\n  return dense(flatten(x), 16777216)\n}\n"
        "train batch 1 {\n"
        "  step d(D) : minimize mean(D(x)) with adam(lr=1e-3)\n}\n";
  first_error(src, NULL, buf, sizeof buf, NULL);
  CHECK_STR(buf, "4:10: this layer's weight would be [16777216,17179869184]: more than 2^40 "
                 "values, the most a tensor may hold");
}

/* dense(z, 3) on z [4]: weight [3,4] and bias [3], 15 floats = 60 bytes of state. */
static void test_memory_limit(void) {
  const char *src = "model t\n"
                    "input x : [4] range [0, 1]\n"
                    "latent z : uniform(-1, 1) [4]\n"
                    "net G(z) {\n  return dense(z, 3)\n}\n"
                    "train batch 2 {\n"
                    "  step g(G) : minimize mean(G(z)) with adam(lr=1e-3)\n}\n";
  char buf[512];
  ir_module *m;
  first_error(src, NULL, buf, sizeof buf, &m);
  CHECK_STR(buf, "");
  if (!m) return;
  ir_memory need = ir_memory_need(m);
  CHECK(need.state_bytes == 60);
  CHECK(need.temp_bytes > 0 && need.total_bytes == need.state_bytes + need.temp_bytes);
  elab_options at = {.max_bytes = need.total_bytes}, below = {.max_bytes = need.total_bytes - 1};
  first_error(src, &at, buf, sizeof buf, NULL);
  CHECK_STR(buf, "");
  first_error(src, &below, buf, sizeof buf, NULL);
  char want[512];
  snprintf(want, sizeof want,
           "1:7: model t needs %lld bytes of memory (%lld bytes: state 60 bytes, temporaries "
           "%lld bytes at batch 2), more than the limit of %lld bytes; --max-memory SIZE sets "
           "the limit (default: this machine's memory)",
           (long long)need.total_bytes, (long long)need.total_bytes, (long long)need.temp_bytes,
           (long long)need.total_bytes - 1);
  CHECK_STR(buf, want);
  ir_module_free(m);

  char size[32];
  ir_format_bytes(80104001048, size, sizeof size);
  CHECK_STR(size, "74.6 GiB");
  ir_format_bytes(1023, size, sizeof size);
  CHECK_STR(size, "1023 bytes");
  ir_format_bytes(1536, size, sizeof size);
  CHECK_STR(size, "1.5 KiB");
}

int main(void) {
  test_name_length();
  test_deep_evaluation();
  test_long_chains();
  test_unused_chain();
  test_tensor_size();
  test_memory_limit();
  return check_done();
}
