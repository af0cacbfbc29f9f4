/* test_parse_errors.c: every syntax and lexical error message the parser produces,
 * each with its exact location; recovery that reports several errors in one run; and
 * robustness: truncated, mangled, deeply nested and binary input never crashes, never
 * hangs, and every diagnostic points inside the file. */
#include "check.h"
#include "frontend/frontend.h"

#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "parser_example.h"

static diag_sink diags;

static ast_file *run(const char *text) {
  diag_free(&diags);
  diag_init(&diags);
  return parse_source(&diags, "e.mig", text);
}

/* The k-th error (notes skipped), or NULL. */
static const diag_entry *error_entry(int k) {
  for (int i = 0; i < diags.n; i++)
    if (diags.entries[i].level == DIAG_ERROR && k-- == 0) return &diags.entries[i];
  return NULL;
}

static void check_entry(const diag_entry *e, const char *text, int line, int col,
                        const char *msg) {
  CHECK_MSG(e != NULL, "no diagnostic for:\n%s", text);
  if (!e) return;
  CHECK_MSG(e->span.line == line && e->span.col == col,
            "'%s' at %d:%d, expected %d:%d, for:\n%s", e->msg, e->span.line, e->span.col, line,
            col, text);
  CHECK_STR(e->msg, msg);
}

/* text's first error is msg at line:col. */
static void expect_error(const char *text, int line, int col, const char *msg) {
  ast_file *f = run(text);
  check_entry(error_entry(0), text, line, col, msg);
  ast_free(f);
}

/* Like expect_error, and the entry right after the error is a note. */
static void expect_error_note(const char *text, int line, int col, const char *msg, int nline,
                              int ncol, const char *note) {
  ast_file *f = run(text);
  const diag_entry *e = error_entry(0);
  check_entry(e, text, line, col, msg);
  const diag_entry *n = e && e + 1 < diags.entries + diags.n ? e + 1 : NULL;
  CHECK_MSG(n && n->level == DIAG_NOTE, "no note after '%s'", e ? e->msg : "");
  if (n && n->level == DIAG_NOTE) check_entry(n, text, nline, ncol, note);
  ast_free(f);
}

static void test_lexical_errors(void) {
  expect_error("model m\nconst a = 1 + @ 2\n", 2, 15, "stray '@' in model file");
  expect_error("model m\nconst a = 1\x01\n", 2, 12, "stray '\\x01' in model file");
  expect_error("model m\nconst a = 1 \xff\n", 2, 13, "stray '\\xff' in model file");
  expect_error("model m\nconst a = \xe2\x86\x92 1\n", 2, 11, "stray '\xe2\x86\x92' in model file");
  expect_error("model m\nconst a = \"abc\nconst b = 2\n", 2, 11, "unterminated string");
  expect_error("model m\nconst a = f(name=\"abc\\", 2, 18, "unterminated string");
  expect_error("model m\nconst a = \"a\\qb\"\n", 2, 13,
               "unknown escape sequence '\\q' in string (only \\\" and \\\\ are allowed)");
  expect_error("model m\nconst a = 99999999999999999999\n", 2, 11,
               "integer literal '99999999999999999999' is too large (the limit is "
               "9223372036854775807)");
  expect_error("model m\nconst a = 1e999\n", 2, 11, "number '1e999' is too large");
  expect_error("model m\nconst a = 64x\n", 2, 11, "malformed number '64x'");
  expect_error("model m\nconst a = 2e-4y\n", 2, 11, "malformed number '2e-4y'");
  expect_error("model m\nconst a = 1..2\n", 2, 11, "malformed number '1..2'");

  /* One lexical error per line: the rest of a garbled line says nothing new. */
  ast_file *f = run("model m\nconst a = @@ $ \x01\nconst b = `\n");
  CHECK(diags.nerrors == 2);
  check_entry(error_entry(1), "(two lines)", 3, 11, "stray '`' in model file");
  ast_free(f);
}

/* Text with NUL bytes can only come from a file. */
static void test_nul_bytes(void) {
  char path[] = "/tmp/migc_test_nul_XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  if (fd < 0) return;
  static const char text[] = "model m\nconst a = 1\0\nconst b = 2\n";
  CHECK(write(fd, text, sizeof text - 1) == (ssize_t)(sizeof text - 1));
  close(fd);
  diag_free(&diags);
  diag_init(&diags);
  ast_file *f = parse_file(&diags, path);
  check_entry(error_entry(0), "NUL", 2, 12, "stray '\\0' in model file");
  CHECK(diags.nerrors == 1);
  CHECK(f && f->ndecls == 1 && strcmp(f->decls[0].name.name, "b") == 0);
  ast_free(f);
  remove(path);
}

static void test_nesting(void) {
  size_t n = 10000;
  char *text = malloc(3 * n + 64);
  /* "const a = " puts the first bracket at column 11; the 257th is at 267. */
  strcpy(text, "model m\nconst a = ");
  char *p = text + strlen(text);
  memset(p, '(', n);
  p[n] = '1';
  memset(p + n + 1, ')', n);
  strcpy(p + 2 * n + 1, "\nconst b = 2\n");
  ast_file *f = run(text);
  check_entry(error_entry(0), "10000 (", 2, 267, "expressions nested too deeply (limit 256)");
  CHECK(diags.nerrors == 1 && f && f->ndecls == 1);
  ast_free(f);

  memset(p, '[', n);
  strcpy(p + n, "\nconst b = 2\n");
  f = run(text);
  check_entry(error_entry(0), "10000 [", 2, 267, "expressions nested too deeply (limit 256)");
  CHECK(diags.nerrors == 1 && f && f->ndecls == 1);
  ast_free(f);

  memset(p, '-', n);
  strcpy(p + n, "1\nconst b = 2\n");
  f = run(text);
  check_entry(error_entry(0), "10000 -", 2, 267, "expressions nested too deeply (limit 256)");
  CHECK(diags.nerrors == 1 && f && f->ndecls == 1);
  ast_free(f);
  free(text);

  /* A left-deep chain nests as deeply; its 256th '+' (column 10 + 2 * 256) is too many. */
  n = 100000;
  text = malloc(2 * n + 64);
  strcpy(text, "model m\nconst a = 1");
  p = text + strlen(text);
  for (size_t i = 0; i < n; i++) p[2 * i] = '+', p[2 * i + 1] = '1';
  strcpy(p + 2 * n, "\nconst b = 2\n");
  f = run(text);
  check_entry(error_entry(0), "a+a+...", 2, 522, "expressions nested too deeply (limit 256)");
  CHECK(diags.nerrors == 1 && f && f->ndecls == 1);
  ast_free(f);
  free(text);

  /* Exactly at the limit is fine. */
  text = malloc(1024);
  strcpy(text, "model m\nconst a = ");
  p = text + strlen(text);
  memset(p, '(', 255);
  strcpy(p + 255, "-1");
  memset(p + 257, ')', 255);
  strcpy(p + 512, "\n");
  f = run(text);
  CHECK(diags.nerrors == 0);
  ast_free(f);
  free(text);
}

static void test_brackets_and_blocks(void) {
  expect_error_note("model m\nnet G(z) {\n  h = dense(h, 1024\n  return h\n}\n", 3, 20,
                    "expected ')' to close the call to 'dense', found end of line", 3, 12,
                    "to match this '('");
  expect_error_note("model m\nconst a = f(g(1", 2, 16,
                    "expected ')' to close the call to 'g', found end of file", 2, 14,
                    "to match this '('");
  expect_error_note("model m\nconst a = f(1; b)\n", 2, 14,
                    "expected ')' to close the call to 'f', found ';'", 2, 12,
                    "to match this '('");
  expect_error_note("model m\nconst a = f(x 3)\n", 2, 15,
                    "expected ',' or ')' in the call to 'f', found number 3", 2, 12,
                    "to match this '('");
  expect_error_note("model m\nnet G(z c) {\n}\n", 2, 9,
                    "expected ',' or ')' in the parameters of net 'G', found identifier 'c'", 2,
                    6, "to match this '('");
  expect_error_note("model m\ntrain {\n  step s(G, Q : minimize x with adam()\n}\n", 3, 15,
                    "expected ',' or ')' in the nets of step 's', found ':'", 3, 9,
                    "to match this '('");
  expect_error_note("model m\nconst a = (1\nconst b = 2\n", 2, 13,
                    "expected ')' to close '(', found end of line", 2, 11, "to match this '('");
  expect_error_note("model m\nnet F(x) { return (x }\n", 2, 22,
                    "expected ')' to close '(', found '}'", 2, 19, "to match this '('");
  expect_error_note("model m\nconst a = x[1 2]\n", 2, 15,
                    "expected ']' to close '[', found number 2", 2, 12, "to match this '['");
  expect_error_note("model m\nconst a = [1 2]\n", 2, 14,
                    "expected ',' or ']' in the list, found number 2", 2, 11,
                    "to match this '['");
  expect_error_note("model m\nnet G(x) {\n  h = x\nnet Q(f) {\n  return f\n}\n", 4, 1,
                    "expected '}' to close the body of net 'G', found 'net'", 2, 10,
                    "to match this '{'");
  CHECK(diags.nerrors == 1);
  expect_error_note("model m\nnet G(z) {\n  h = z\n", 3, 8,
                    "expected '}' to close the body of net 'G', found end of file", 2, 10,
                    "to match this '{'");
  expect_error_note("model m\ntrain {\n  h = 3\n", 3, 8,
                    "expected '}' to close the body of 'train', found end of file", 2, 7,
                    "to match this '{'");

  /* The missing '}' is supplied: both nets are there. */
  ast_file *f = run("model m\nnet G(x) {\n  h = x\nnet Q(f) {\n  return f\n}\n");
  CHECK(f && f->ndecls == 2 && f->decls[0].nbody == 1 && f->decls[1].nbody == 1);
  ast_free(f);
}

static void test_syntax_errors(void) {
  expect_error("", 1, 1, "expected 'model NAME' at the start of the file");
  expect_error("input x : [1]\n", 1, 1, "expected 'model NAME' at the start of the file");
  expect_error("model 3\n", 1, 7, "expected a name after 'model', found number 3");
  expect_error("model m n\n", 1, 9, "expected end of line, found identifier 'n'");
  expect_error("model m\nfoo = 3\n", 2, 1,
               "expected a declaration (input, latent, code, const, net, train, generate or "
               "encode), found identifier 'foo'");
  expect_error("model m\nnet G(z) {\n 3\n}\n", 3, 2,
               "expected a statement or '}', found number 3");
  expect_error("model m\nconst a = 1 +\nconst b = 2\n", 2, 14,
               "expected an expression after '+', found end of line");
  expect_error("model m\nconst a =", 2, 10, "expected an expression after '=', found end of file");
  expect_error("model m\nconst a = f(k=)\n", 2, 15, "expected an expression after '=', found ')'");
  expect_error("model m\nconst a = 1 ++ 2\n", 2, 14, "expected an expression after '+', found '+'");
  expect_error("model m\ninput x : [1] range\n", 2, 20,
               "expected an expression after 'range', found end of line");
  expect_error("model m\ntrain {\n  step s(G) : minimize x\n}\n", 3, 25,
               "expected 'with' and an optimizer after the objective, found end of line");
  expect_error("model m\ntrain {\n  step s(G) : minimize x with 3\n}\n", 3, 31,
               "expected an optimizer call after 'with', found number 3");
  expect_error("model m\ntrain {\n  step s(G) : x\n}\n", 3, 15,
               "expected 'minimize' or 'maximize', found identifier 'x'");
  expect_error("model m\ntrain epochs 3 {\n}\n", 2, 7, "expected 'batch' or '{' after 'train'");
  expect_error("model m\ntrain 3 {\n}\n", 2, 7,
               "expected 'batch' or '{' after 'train', found number 3");
  expect_error("model m\ninput x [1]\n", 2, 9, "expected ':' after the input name, found '['");
  expect_error("model m\nlatent z [1]\n", 2, 10, "expected ':' after the latent name, found '['");
  expect_error("model m\ncode c = u(1)\n", 2, 8, "expected ':' after the code name, found '='");
  expect_error("model m\nlatent z : 3\n", 2, 12,
               "expected a distribution such as uniform(-1, 1) after ':', found number 3");
  expect_error("model m\nconst a 3\n", 2, 9, "expected '=' after the constant name, found number 3");
  expect_error("model m\nnet G {\n}\n", 2, 7, "expected '(' after the net name, found '{'");
  expect_error("model m\nnet G(x)\n  h = x\n}\n", 2, 9,
               "expected '{' to start the body of net 'G', found end of line");
  expect_error("model m\ntrain batch 3\n", 2, 14,
               "expected '{' to start the body of 'train', found end of line");
  expect_error("model m\ninput 3 : [1]\n", 2, 7, "expected a name after 'input', found number 3");
  expect_error("model m\nnet G(x) {\n  x, = 3\n}\n", 3, 6, "expected a name after ',', found '='");
  expect_error("model m\ngenerate a b = 3\n", 2, 12, "expected '=' or ',', found identifier 'b'");
  expect_error("model m\nnet G(x) {\n  return x\n} foo\n", 4, 3,
               "expected end of line, found identifier 'foo'");
}

static void test_file_errors(void) {
  diag_free(&diags);
  diag_init(&diags);
  CHECK(parse_file(&diags, "/nonexistent/dir/model.mig") == NULL);
  CHECK(diags.nerrors == 1);
  if (diags.n) CHECK_STR(diags.entries[0].msg,
                         "cannot open '/nonexistent/dir/model.mig': No such file or directory");

  diag_free(&diags);
  diag_init(&diags);
  CHECK(parse_file(&diags, "/tmp") == NULL);
  if (diags.n) CHECK_STR(diags.entries[0].msg, "cannot read '/tmp': Is a directory");

  char path[] = "/tmp/migc_test_big_XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  if (fd < 0) return;
  CHECK(ftruncate(fd, (16 << 20) + 1) == 0);
  close(fd);
  diag_free(&diags);
  diag_init(&diags);
  CHECK(parse_file(&diags, path) == NULL);
  char want[256];
  snprintf(want, sizeof want, "'%s' is larger than 16 MiB; model files are limited to 16 MiB",
           path);
  if (diags.n) CHECK_STR(diags.entries[0].msg, want);
  remove(path);
}

/* Several broken lines, each reported once, and the good declarations between them kept. */
static void test_recovery(void) {
  const char *text = "model m\n"
                     "input x : [1]\n"
                     "latent z 3\n"
                     "const = 2\n"
                     "net G(x) {\n"
                     "  h = (x\n"
                     "  return h h\n"
                     "}\n"
                     "code c : categorical(10) @\n"
                     "generate y = G(z)\n";
  ast_file *f = run(text);
  CHECK(diags.nerrors == 5);
  check_entry(error_entry(0), text, 3, 10, "expected ':' after the latent name, found number 3");
  check_entry(error_entry(1), text, 4, 7, "expected a name after 'const', found '='");
  check_entry(error_entry(2), text, 6, 9, "expected ')' to close '(', found end of line");
  check_entry(error_entry(3), text, 7, 12, "expected end of line, '(' or ',', found identifier 'h'");
  check_entry(error_entry(4), text, 9, 26, "stray '@' in model file");
  CHECK(f && f->ndecls == 3);
  if (f && f->ndecls == 3) {
    CHECK(f->decls[0].kind == DECL_INPUT);
    CHECK(f->decls[1].kind == DECL_NET && f->decls[1].nbody == 0);
    CHECK(f->decls[2].kind == DECL_GENERATE);
  }
  ast_free(f);

  /* Three errors on consecutive lines, each early in its line. */
  f = run("model m\nconst 1\nconst 2\nconst 3\nconst d = 4\n");
  CHECK(diags.nerrors == 3);
  CHECK(f && f->ndecls == 1);
  ast_free(f);

  /* A body without its '{' is one error, not one per line. */
  f = run("model m\nnet G(x)\n  h = x\n  return h\n}\nconst b = 3\nfoo\n");
  CHECK(diags.nerrors == 2);
  check_entry(error_entry(1), "(missing '{')", 7, 1,
              "expected a declaration (input, latent, code, const, net, train, generate or "
              "encode), found identifier 'foo'");
  CHECK(f && f->ndecls == 1 && f->decls[0].kind == DECL_CONST);
  ast_free(f);

  /* A header broken before its '{' still has its body parsed (and its errors found). */
  f = run("model m\nnet G(x y) {\n  h = x\n  return 3 3\n}\nconst b = 3\n");
  CHECK(diags.nerrors == 2);
  check_entry(error_entry(1), "(broken header)", 4, 12, "expected end of line or ',', found number 3");
  ast_free(f);
}

/* ---- robustness ------------------------------------------------------------------------ */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint32_t rng(void) {
  rng_state = rng_state * 6364136223846793005u + 1442695040888963407u;
  return (uint32_t)(rng_state >> 33);
}

static int line_count(const char *text) {
  int lines = 1;
  for (const char *p = text; *p; p++) lines += *p == '\n';
  return lines;
}

/* Parses text (must not crash or hang), prints any tree, and checks that every
 * diagnostic lies inside the file. */
static void survive(const char *text, const char *what) {
  ast_file *f = run(text);
  if (f) {
    FILE *null = fopen("/dev/null", "w");
    ast_print(f, null);
    fclose(null);
  }
  int lines = line_count(text);
  for (int i = 0; i < diags.n; i++) {
    ir_span s = diags.entries[i].span;
    bool in = s.file && s.line >= 1 && s.line <= lines && s.col >= 1 && s.end_line >= s.line &&
              (s.end_line > s.line || s.end_col >= s.col);
    CHECK_MSG(in, "%s: '%s' at %d:%d-%d:%d (file has %d lines)", what, diags.entries[i].msg,
              s.line, s.col, s.end_line, s.end_col, lines);
    if (!in) break;
  }
  ast_free(f);
}

static void test_prefixes(void) {
  size_t n = strlen(example);
  char *buf = malloc(n + 1);
  int failed_before = check_failed;
  for (size_t k = 0; k <= n && check_failed == failed_before; k++) {
    memcpy(buf, example, k);
    buf[k] = '\0';
    char what[64];
    snprintf(what, sizeof what, "prefix of %zu bytes", k);
    survive(buf, what);
  }
  free(buf);
}

static void test_mangled(void) {
  size_t n = strlen(example);
  char *buf = malloc(2 * n + 1);
  int failed_before = check_failed;
  static const char interesting[] = "(){}[],;:=+-*/\"\\#\n @.0e";
  for (int iter = 0; iter < 4000 && check_failed == failed_before; iter++) {
    memcpy(buf, example, n + 1);
    int flips = 1 + (int)(rng() % 4);
    for (int k = 0; k < flips; k++) {
      size_t at = rng() % n;
      buf[at] = iter % 2 ? interesting[rng() % (sizeof interesting - 1)]
                         : (char)(1 + rng() % 255);
    }
    if (iter % 5 == 0) { /* delete a range */
      size_t at = rng() % n, len = rng() % 40;
      if (at + len > n) len = n - at;
      memmove(buf + at, buf + at + len, n - at - len + 1);
    }
    char what[64];
    snprintf(what, sizeof what, "mangled variant %d", iter);
    survive(buf, what);
  }
  free(buf);
}

static char *repeat(const char *prefix, const char *unit, size_t times, const char *suffix) {
  size_t pl = strlen(prefix), ul = strlen(unit), sl = strlen(suffix);
  char *s = malloc(pl + ul * times + sl + 1);
  memcpy(s, prefix, pl);
  for (size_t i = 0; i < times; i++) memcpy(s + pl + i * ul, unit, ul);
  memcpy(s + pl + ul * times, suffix, sl + 1);
  return s;
}

static void test_garbage(void) {
  static const struct {
    const char *prefix, *unit, *suffix;
    size_t times;
  } cases[] = {
      {"model m\nconst a = ", "(", "", 10000},
      {"model m\nconst a = ", "[", "", 10000},
      {"model m\nconst a = ", ")", "", 10000},
      {"model m\nconst a = ", "]", "\nconst b = 1\n", 10000},
      {"model m\n", "{", "", 10000},
      {"model m\n", "}", "", 10000},
      {"model m\nnet G(x) ", "{", "\n", 10000},
      {"model m\nconst a = ", "f(", "", 10000},
      {"model m\nconst a = ", "-(", "1", 10000},
      {"model m\nconst a = ", "-----------------------------------------------------------(", "1", 300},
      {"model m\nconst a = x", "[0]", "\n", 10000},
      {"model m\nconst a = 1", "*1", "\n", 100000},
      {"model m\n", "\n", "", 100000},
      {"model m\n", "net G(x) {\n", "", 1000},
      {"", "model m\n", "", 1000},
      {"model m\nconst a = \"", "\\", "", 1000},
      {"model m\n", "@", "\n", 10000},
      {"model m\nconst a = f(", "a,\n", ")\n", 10000},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char *text = repeat(cases[i].prefix, cases[i].unit, cases[i].times, cases[i].suffix);
    char what[64];
    snprintf(what, sizeof what, "garbage case %zu", i);
    survive(text, what);
    free(text);
  }

  /* Random bytes, and random tokens. */
  static const char *tokens[] = {"model", "input", "net", "train", "step", "return", "with",
                                 "x", "1", "2.5", "\"s\"", "(", ")", "[", "]", "{", "}", ",",
                                 ":", "=", "+", "-", "*", "/", "\n", ";", "#c\n", "minimize"};
  char *buf = malloc(8192);
  for (int iter = 0; iter < 300; iter++) {
    size_t n = 0;
    if (iter % 2) {
      while (n < 4000) buf[n++] = (char)(1 + rng() % 255);
    } else {
      while (n < 4000) {
        const char *t = tokens[rng() % (sizeof tokens / sizeof *tokens)];
        size_t k = strlen(t);
        memcpy(buf + n, t, k);
        n += k;
        buf[n++] = ' ';
      }
    }
    buf[n] = '\0';
    char what[64];
    snprintf(what, sizeof what, "random input %d", iter);
    survive(buf, what);
  }
  free(buf);
}

int main(void) {
  diag_init(&diags);
  test_lexical_errors();
  test_nul_bytes();
  test_nesting();
  test_brackets_and_blocks();
  test_syntax_errors();
  test_file_errors();
  test_recovery();
  test_prefixes();
  test_mangled();
  test_garbage();
  diag_free(&diags);
  return check_done();
}
