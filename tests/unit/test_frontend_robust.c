/* test_frontend_robust.c: the whole frontend (parse, elaborate, verify) never crashes
 * on damaged input: every byte prefix of every model, and models mangled by byte
 * flips, deleted lines and swapped lines. Each run must either succeed with IR that
 * verifies, or report at least one error, every error located inside the file. */
#include "check.h"
#include "frontend/frontend.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

static int line_count(const char *text, size_t n) {
  int lines = 1;
  for (size_t i = 0; i < n; i++) lines += text[i] == '\n';
  return lines;
}

/* Runs the frontend on text[0..n); returns false if a check failed. */
static bool run_one(const char *text, size_t n, const char *what) {
  char *buf = malloc(n + 1);
  memcpy(buf, text, n);
  buf[n] = 0;
  diag_sink d;
  diag_init(&d);
  ast_file *ast = parse_source(&d, "t.mig", buf);
  ir_module *m = NULL;
  if (ast && d.nerrors == 0) m = elaborate(ast, NULL, &d);
  bool ok = true;
  if (m) {
    diag_sink vd;
    diag_init(&vd);
    ok = ir_verify(m, &vd);
    CHECK_MSG(ok, "%s: IR does not verify", what);
    diag_free(&vd);
  } else {
    ok = d.nerrors > 0;
    CHECK_MSG(ok, "%s: failed without an error", what);
  }
  int lines = line_count(buf, n);
  for (int i = 0; i < d.n; i++) {
    const ir_span *s = &d.entries[i].span;
    if (!s->file) continue;
    bool in = s->line >= 1 && s->line <= lines + 1 && s->col >= 1;
    if (!in) {
      CHECK_MSG(in, "%s: diagnostic '%s' at %d:%d outside the file", what, d.entries[i].msg,
                s->line, s->col);
      ok = false;
    }
  }
  ir_module_free(m);
  if (ast) ast_free(ast);
  diag_free(&d);
  free(buf);
  return ok;
}

static char *read_all(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)len + 1);
  *n = fread(b, 1, (size_t)len, f);
  b[*n] = 0;
  fclose(f);
  return b;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint64_t next_rand(void) { /* xorshift64*: a fixed sequence for this test only */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ULL;
}

static void mangle(const char *path, const char *text, size_t n) {
  char what[1200];
  for (int round = 0; round < 40; round++) {
    char *b = malloc(n + 1);
    memcpy(b, text, n + 1);
    int flips = 1 + (int)(next_rand() % 4);
    for (int k = 0; k < flips; k++) {
      static const char bytes[] = "()[]{},:=+-*/#\n \"x0.e;@\t";
      b[next_rand() % n] = bytes[next_rand() % (sizeof bytes - 1)];
    }
    snprintf(what, sizeof what, "%s mangled round %d", path, round);
    if (!run_one(b, n, what)) {
      fprintf(stderr, "---- input ----\n%s\n---------------\n", b);
    }
    free(b);
  }
  /* Drop each line in turn: names go missing, blocks lose their ends. */
  int lines = line_count(text, n);
  for (int drop = 1; drop <= lines; drop++) {
    char *b = malloc(n + 1);
    size_t k = 0;
    int line = 1;
    for (size_t i = 0; i < n; i++) {
      if (line != drop) b[k++] = text[i];
      if (text[i] == '\n') line++;
    }
    snprintf(what, sizeof what, "%s without line %d", path, drop);
    run_one(b, k, what);
    free(b);
  }
}

int main(void) {
  const char *dir = MIGC_SOURCE_DIR "/models";
  DIR *dp = opendir(dir);
  CHECK_MSG(dp != NULL, "cannot open %s", dir);
  if (!dp) return check_done();
  struct dirent *de;
  int models = 0;
  while ((de = readdir(dp))) {
    size_t len = strlen(de->d_name);
    if (len < 5 || strcmp(de->d_name + len - 4, ".mig")) continue;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    size_t n;
    char *text = read_all(path, &n);
    CHECK_MSG(text != NULL, "cannot read %s", path);
    if (!text) continue;
    models++;
    CHECK_MSG(run_one(text, n, path), "%s itself", path);
    int bad = 0;
    for (size_t k = 0; k < n; k++) {
      char what[1100];
      snprintf(what, sizeof what, "%s prefix of %zu bytes", path, k);
      if (!run_one(text, k, what) && ++bad > 5) break;
    }
    mangle(path, text, n);
    free(text);
  }
  closedir(dp);
  CHECK_MSG(models >= 4, "found %d models", models);
  /* Adversarial shapes of input that no model has. */
  static const char *odd[] = {
      "", "\n\n\n", "model", "model m", "model m\n", "model m\ntrain {", "}}}}", "\"",
      "model m\nconst a = ((((((((((((1))))))))))))\n", "model m\ninput x : [\n",
      "model m\nnet G(", "model m\ntrain batch 0 {\n}\n", "model m\n\x01\x02\xff\n",
  };
  for (size_t i = 0; i < sizeof odd / sizeof *odd; i++) run_one(odd[i], strlen(odd[i]), odd[i]);
  /* 100,000 nested parentheses: bounded depth, an error, no stack overflow. */
  size_t deep = 100000;
  char *b = malloc(2 * deep + 64);
  size_t k = (size_t)sprintf(b, "model m\nconst a = ");
  for (size_t i = 0; i < deep; i++) b[k++] = '(';
  b[k++] = '1';
  for (size_t i = 0; i < deep; i++) b[k++] = ')';
  b[k++] = '\n';
  run_one(b, k, "deep nesting");
  free(b);
  return check_done();
}
