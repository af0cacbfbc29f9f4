/* migc_report.c: `migc report DIR`: one self-contained HTML page for a run: the loss
 * curves and the MI curves (SVG, drawn from metrics.csv) with the most each MI estimate
 * can reach (from the program of the run's checkpoint), and the newest sample grid and
 * figure (PNG embedded as data URIs), how the run was started (RUN/run.json) and the
 * model's text, written to DIR/report.html atomically. */
#include "migc_report.h"

#include "migc_model.h"
#include "migc_runinfo.h"

#include "runtime/json.h"
#include "runtime/runtime.h"

#include <ctype.h>
#include <dirent.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  char *buf;
  size_t n, cap;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...) {
  va_list ap;
  for (;;) {
    va_start(ap, fmt);
    int k = vsnprintf(t->buf + t->n, t->cap - t->n, fmt, ap);
    va_end(ap);
    if (k >= 0 && t->n + (size_t)k < t->cap) {
      t->n += (size_t)k;
      return;
    }
    t->cap = (t->cap + (size_t)(k > 0 ? k : 0)) * 2 + 4096;
    t->buf = realloc(t->buf, t->cap);
  }
}

/* s with &, <, > and " as entities: names and model text go into the page as text */
static void put_escaped(text *t, const char *s) {
  for (; *s; s++) {
    const char *e = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;"
                  : *s == '"' ? "&quot;" : NULL;
    if (e)
      put(t, "%s", e);
    else
      put(t, "%c", *s);
  }
}

/* ---- settings: RUN/run.json and the model's source ---------------------------------- */

typedef struct {
  text *out;
  char model_file[1024];
} settings_ctx;

static void setting_row(void *ctx, const char *key, const char *value) {
  settings_ctx *c = ctx;
  if (!strcmp(key, "format")) return;
  if (!strcmp(key, "model_file")) snprintf(c->model_file, sizeof c->model_file, "%s", value);
  put(c->out, "<tr><th>");
  put_escaped(c->out, key);
  put(c->out, "</th><td style=\"text-align:left\"><code>");
  put_escaped(c->out, value);
  put(c->out, "</code></td></tr>\n");
}

/* How the run was started (run.json) and the model file's text as it is now: what a
 * reader needs to reproduce it. Runs of older migc have no run.json: said so. */
static void settings_section(text *out, const char *dir) {
  settings_ctx c = {out, ""};
  char err[1300];
  put(out, "<h2>Settings</h2>\n<table>\n");
  int st = runinfo_each(dir, setting_row, &c, err, sizeof err);
  put(out, "</table>\n");
  if (st == 1) put(out, "<p>No run.json: this run was made by an older migc.</p>\n");
  if (st == 2) {
    put(out, "<p>");
    put_escaped(out, err);
    put(out, "</p>\n");
  }
  FILE *fp = c.model_file[0] ? fopen(c.model_file, "rb") : NULL;
  if (!fp) return;
  put(out, "<h2>Model <code>");
  put_escaped(out, c.model_file);
  put(out, "</code> (as it is now)</h2>\n<pre>");
  char line[4096];
  while (fgets(line, sizeof line, fp)) put_escaped(out, line);
  put(out, "</pre>\n");
  fclose(fp);
}

/* ---- the last migc eval of the run (RUN/eval.json) --------------------------------- */

static const json_value *member(const json_value *o, const char *key, json_type type) {
  for (const json_value *m = o ? o->child : NULL; m; m = m->next)
    if (m->key && !strcmp(m->key, key) && m->type == type) return m;
  return NULL;
}

static double number(const json_value *o, const char *key) {
  const json_value *v = member(o, key, JSON_NUMBER);
  return v ? v->num : NAN;
}

static void eval_section(text *out, const char *dir) {
  char path[1200], err[1400];
  snprintf(path, sizeof path, "%s/eval.json", dir);
  json_value *v = NULL;
  int st = runinfo_json_file(path, "migc eval result", &v, err, sizeof err);
  if (st == 1) return; /* never evaluated by migc eval */
  put(out, "<h2>Evaluation</h2>\n");
  if (st) {
    put(out, "<p>");
    put_escaped(out, err);
    put(out, "</p>\n");
    return;
  }
  put(out, "<p>The last <code>migc eval</code> of this run, at step %.0f.</p>\n<table>\n",
      number(v, "step"));
  const json_value *data = member(v, "data", JSON_STRING);
  if (data) { /* a model without a categorical code has no matched accuracy */
    put(out, "<tr><th>data</th><td style=\"text-align:left\">");
    put_escaped(out, data->str);
    put(out, "</td></tr>\n<tr><th>matched accuracy</th><td style=\"text-align:left\">%.4f on "
             "%.0f images</td></tr>\n", number(v, "accuracy"), number(v, "images"));
    const json_value *map = member(v, "mapping", JSON_ARRAY);
    put(out, "<tr><th>code value &rarr; label</th><td style=\"text-align:left\">");
    int i = 0;
    for (const json_value *x = map ? map->child : NULL; x; x = x->next, i++)
      put(out, "%s%d&rarr;%.0f", i ? " " : "", i, x->type == JSON_NUMBER ? x->num : NAN);
    put(out, "</td></tr>\n");
  }
  const json_value *mi = member(v, "mi", JSON_OBJECT), *bounds = member(v, "mi_bounds", JSON_OBJECT);
  for (const json_value *x = mi ? mi->child : NULL; x; x = x->next) {
    put(out, "<tr><th>");
    put_escaped(out, x->key);
    put(out, "</th><td style=\"text-align:left\">%.4f nats (at most %.4f) on %.0f generated "
             "images</td></tr>\n", x->type == JSON_NUMBER ? x->num : NAN, number(bounds, x->key),
        number(v, "generated"));
  }
  const json_value *bits = member(v, "bit_accuracy", JSON_OBJECT);
  for (const json_value *x = bits ? bits->child : NULL; x; x = x->next) {
    put(out, "<tr><th>bits of ");
    put_escaped(out, x->key);
    put(out, " recovered</th><td style=\"text-align:left\">%.4f on generated images</td></tr>\n",
        x->type == JSON_NUMBER ? x->num : NAN);
  }
  const json_value *kept = member(v, "class_kept", JSON_OBJECT);
  for (const json_value *x = kept ? kept->child : NULL; x; x = x->next) {
    put(out, "<tr><th>class kept along ");
    put_escaped(out, x->key);
    put(out, "</th><td style=\"text-align:left\">%.4f of %.0f images</td></tr>\n",
        x->type == JSON_NUMBER ? x->num : NAN, number(v, "class_kept_images"));
  }
  put(out, "</table>\n");
  json_free(v);
}

/* ---- metrics ------------------------------------------------------------------------- */

typedef struct {
  char names[32][64];
  double bound[32]; /* per column: the most its MI estimate can reach, or NaN */
  int ncols;
  double *rows; /* nrows x ncols */
  int nrows;
} table;

static int read_metrics(const char *path, table *tb, char *err, size_t errn) {
  FILE *fp = fopen(path, "r");
  if (!fp) return file_fail(err, errn, path, "cannot open: no metrics (has the run logged a step?)");
  char line[8192];
  memset(tb, 0, sizeof *tb);
  if (!fgets(line, sizeof line, fp)) {
    fclose(fp);
    return file_fail(err, errn, path, "empty");
  }
  for (char *tok = strtok(line, ",\n"); tok && tb->ncols < 32; tok = strtok(NULL, ",\n")) {
    tb->bound[tb->ncols] = NAN;
    snprintf(tb->names[tb->ncols++], 64, "%s", tok);
  }
  while (fgets(line, sizeof line, fp)) {
    tb->rows = realloc(tb->rows, (size_t)(tb->nrows + 1) * (size_t)tb->ncols * sizeof(double));
    char *p = line;
    for (int c = 0; c < tb->ncols; c++) { /* an empty cell (no evaluation there) is NaN */
      bool empty = *p == ',' || *p == '\n' || !*p;
      tb->rows[tb->nrows * tb->ncols + c] = empty ? NAN : strtod(p, &p);
      if (*p == ',') p++;
    }
    tb->nrows++;
  }
  fclose(fp);
  return 0;
}

/* The bounds of the MI estimates among train_step's outputs, for the columns that hold
 * them (NAME and eval_NAME), read from the program of the run's newest checkpoint,
 * reopened for the interpreter (nothing is compiled to native code). A run without a
 * checkpoint, or whose model file is gone or changed, gets none: no bound rather than a
 * wrong one. */
static void read_bounds(const char *dir, table *tb) {
  char path[1200], err[1024];
  if (checkpoint_find(dir, path, sizeof path, err, sizeof err)) return;
  model md;
  diag_sink d;
  diag_init(&d);
  int64_t step;
  uint64_t seed;
  if (!model_open_checkpoint(&md, path, NULL, true, &d, &step, &seed)) {
    const ir_func *f = ir_find_func(md.m, "train_step");
    for (int k = 0; f && k < f->noutputs; k++) {
      ir_mi_term terms[16];
      int n = ir_mi_terms(f, f->outputs[k].node, terms, 16);
      for (int c = 0; c < tb->ncols && n; c++) {
        const char *name = tb->names[c];
        if (!strcmp(name, f->outputs[k].name) ||
            (!strncmp(name, "eval_", 5) && !strcmp(name + 5, f->outputs[k].name)))
          tb->bound[c] = ir_mi_bound(terms, n);
      }
    }
  }
  model_close(&md);
  diag_free(&d);
}

/* The column named name, or -1. */
static int column(const table *tb, const char *name) {
  for (int c = 0; c < tb->ncols; c++)
    if (!strcmp(tb->names[c], name)) return c;
  return -1;
}

/* A line chart of the columns whose name `pick` accepts, against column xc (step or
 * seconds); rows where a column is empty leave it out. */
static void chart(text *out, const table *tb, const char *title, bool (*pick)(const char *),
                  int xc) {
  static const char *colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};
  const double W = 640, H = 260, L = 60, R = 150, T = 30, B = 40;
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  if (xc < 0) return;
  for (int c = 1; c < tb->ncols; c++) {
    if (!pick(tb->names[c])) continue;
    for (int r = 0; r < tb->nrows; r++) {
      double x = tb->rows[r * tb->ncols + xc], y = tb->rows[r * tb->ncols + c];
      if (!isfinite(y)) continue;
      x0 = fmin(x0, x), x1 = fmax(x1, x), y0 = fmin(y0, y), y1 = fmax(y1, y);
    }
  }
  for (int c = 1; c < tb->ncols && x1 >= x0; c++) /* the bounds are in sight too */
    if (pick(tb->names[c]) && isfinite(tb->bound[c]))
      y0 = fmin(y0, tb->bound[c]), y1 = fmax(y1, tb->bound[c]);
  if (!(x1 >= x0) || !(y1 >= y0)) return;
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + 1;
  put(out, "<h2>%s</h2>\n<svg width=\"%g\" height=\"%g\" viewBox=\"0 0 %g %g\">\n", title, W, H, W, H);
  put(out, "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" stroke=\"#999\"/>\n", L, T,
      W - L - R, H - T - B);
  for (int i = 0; i <= 4; i++) {
    double y = y0 + (y1 - y0) * i / 4, py = H - B - (H - T - B) * i / 4;
    double x = x0 + (x1 - x0) * i / 4, px = L + (W - L - R) * i / 4;
    put(out, "<text x=\"%g\" y=\"%g\" font-size=\"11\" text-anchor=\"end\">%.3g</text>\n", L - 4, py + 4, y);
    put(out, "<text x=\"%g\" y=\"%g\" font-size=\"11\" text-anchor=\"middle\">%.*f</text>\n", px,
        H - B + 14, x1 - x0 < 10 && xc ? 1 : 0, x);
  }
  put(out, "<text x=\"%g\" y=\"%g\" font-size=\"12\" text-anchor=\"middle\">%s</text>\n",
      L + (W - L - R) / 2, H - 6, xc ? "wall time (s)" : "step");
  int k = 0;
  for (int c = 1; c < tb->ncols; c++) {
    if (!pick(tb->names[c])) continue;
    const char *col = colors[k % 6];
    put(out, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", col);
    for (int r = 0; r < tb->nrows; r++) {
      double x = tb->rows[r * tb->ncols + xc], y = tb->rows[r * tb->ncols + c];
      if (!isfinite(y)) continue;
      put(out, "%.1f,%.1f ", L + (W - L - R) * (x - x0) / (x1 - x0),
          H - B - (H - T - B) * (y - y0) / (y1 - y0));
    }
    put(out, "\"/>\n<text x=\"%g\" y=\"%g\" font-size=\"12\" fill=\"%s\">%s</text>\n", W - R + 8,
        T + 14 + 16 * k, col, tb->names[c]);
    if (isfinite(tb->bound[c])) { /* dashed: the most the estimate can reach */
      double py = H - B - (H - T - B) * (tb->bound[c] - y0) / (y1 - y0);
      put(out, "<line class=\"bound\" x1=\"%g\" x2=\"%g\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
               "stroke-dasharray=\"5 4\"><title>%s at most %.4f</title></line>\n",
          L, W - R, py, py, col, tb->names[c], tb->bound[c]);
    }
    k++;
  }
  put(out, "</svg>\n");
}

static bool is_loss(const char *n) { return strstr(n, ".loss") != NULL; }
static bool is_mi(const char *n) { return !strncmp(n, "mi", 2); }
static bool is_eval_accuracy(const char *n) { return !strcmp(n, "eval_accuracy"); }
static bool is_eval_mi(const char *n) { return !strncmp(n, "eval_", 5) && !is_eval_accuracy(n); }

/* ---- images -------------------------------------------------------------------------- */

/* The newest DIR/samples/PREFIX-step-N.png (name into out), or false. */
static bool newest(const char *dir, const char *prefix, char *out, size_t n) {
  char sub[1000];
  snprintf(sub, sizeof sub, "%s/samples", dir);
  DIR *dp = opendir(sub);
  long long best = -1, s;
  struct dirent *de;
  char pat[64];
  snprintf(pat, sizeof pat, "%s-%%lld.png", prefix);
  while (dp && (de = readdir(dp)))
    if (sscanf(de->d_name, pat, &s) == 1 && s > best) {
      best = s;
      snprintf(out, n, "%s/%s", sub, de->d_name);
    }
  if (dp) closedir(dp);
  return best >= 0;
}

static void embed_png(text *out, const char *path, const char *caption) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return;
  fseek(fp, 0, SEEK_END);
  long len = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  unsigned char *b = malloc((size_t)(len > 0 ? len : 1));
  size_t got = fread(b, 1, (size_t)(len > 0 ? len : 0), fp);
  fclose(fp);
  static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  put(out, "<figure><img alt=\"%s\" src=\"data:image/png;base64,", caption);
  for (size_t i = 0; i < got; i += 3) { /* base64: three bytes to four digits */
    unsigned v = (unsigned)b[i] << 16 | (i + 1 < got ? (unsigned)b[i + 1] << 8 : 0) |
                 (i + 2 < got ? b[i + 2] : 0);
    put(out, "%c%c%c%c", digits[v >> 18 & 63], digits[v >> 12 & 63],
        i + 1 < got ? digits[v >> 6 & 63] : '=', i + 2 < got ? digits[v & 63] : '=');
  }
  put(out, "\"><figcaption>%s</figcaption></figure>\n", caption);
  free(b);
}

/* A table cell of a number, empty for NaN (no value there). */
static void number_cell(text *out, double v) {
  if (isfinite(v))
    put(out, "<td>%.4g</td>", v);
  else
    put(out, "<td></td>");
}

/* The table row of the most each column's MI estimate can reach, after the cell head. */
static void bound_row(text *out, const table *tb, const char *head) {
  put(out, "<tr class=\"bound\">%s", head);
  for (int c = 1; c < tb->ncols; c++) number_cell(out, tb->bound[c]);
  put(out, "</tr>");
}

/* ---- several seeds ------------------------------------------------------------------- */

/* The page of a migc train --seeds directory: DIR/seeds.csv as a table, each seed
 * linked to the report of its run (written first), with the most each MI estimate can
 * reach (from the first seed's program). */
static int seeds_report(const char *dir, const char *csv) {
  FILE *fp = fopen(csv, "r");
  char line[8192], path[1300], err[1024];
  table tb = {.nrows = 0};
  if (!fp || !fgets(line, sizeof line, fp)) {
    if (fp) fclose(fp);
    fprintf(stderr, "migc report: %s: cannot read\n", csv);
    return 1;
  }
  for (char *tok = strtok(line, ",\n"); tok && tb.ncols < 32; tok = strtok(NULL, ",\n")) {
    tb.bound[tb.ncols] = NAN;
    snprintf(tb.names[tb.ncols++], 64, "%s", tok);
  }
  text out = {0};
  put(&out, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>migc seeds ");
  put_escaped(&out, dir);
  put(&out, "</title>\n<style>body{font-family:sans-serif;margin:2em;max-width:960px}"
            "td,th{padding:2px 10px;text-align:right}</style></head><body>\n"
            "<h1>migc runs <code>");
  put_escaped(&out, dir);
  put(&out, "</code>, one per seed</h1>\n<table><tr>");
  for (int c = 0; c < tb.ncols; c++) put(&out, "<th>%s</th>", tb.names[c]);
  put(&out, "</tr>\n");
  int st = 0, seeds = 0;
  while (!st && fgets(line, sizeof line, fp)) {
    char *cells[32];
    int n = 0;
    line[strcspn(line, "\n")] = 0;
    for (char *save = NULL, *c = strtok_r(line, ",", &save); c && n < 32; c = strtok_r(NULL, ",", &save))
      cells[n++] = c;
    if (!n) continue;
    if (isdigit((unsigned char)cells[0][0])) { /* the seed's own report, linked from its row */
      snprintf(path, sizeof path, "%s/seed-%s", dir, cells[0]);
      if (!seeds++) read_bounds(path, &tb);
      st = report_run(path);
      put(&out, "<tr><td><a href=\"seed-%s/report.html\">%s</a></td>", cells[0], cells[0]);
    } else {
      put(&out, "<tr><th>%s</th>", cells[0]);
    }
    for (int c = 1; c < n; c++) put(&out, "<td>%s</td>", cells[c]);
    put(&out, "</tr>\n");
  }
  fclose(fp);
  bound_row(&out, &tb, "<th>at most</th>");
  put(&out, "</table>\n<p>One run per seed (migc train --seeds), each measured after its "
            "last step as migc eval measures it: MI estimates in nats on generated images, "
            "matched accuracy on the test split. seconds: from the first step to the last. "
            "median: of each column; best: the seed with the best accuracy. 'at most': the "
            "most each estimate can reach.</p>\n</body></html>\n");
  snprintf(path, sizeof path, "%s/report.html", dir);
  const void *parts[1] = {out.buf};
  size_t lens[1] = {out.n};
  if (!st && (st = file_write_atomic(path, parts, lens, 1, err, sizeof err)))
    fprintf(stderr, "migc report: %s\n", err);
  else if (!st)
    printf("%s\n", path);
  free(out.buf);
  return st;
}

int report_run(const char *dir) {
  char path[1300], err[1024], img[1400];
  snprintf(path, sizeof path, "%s/seeds.csv", dir);
  if (access(path, F_OK) == 0) return seeds_report(dir, path);
  snprintf(path, sizeof path, "%s/metrics.csv", dir);
  table tb;
  if (read_metrics(path, &tb, err, sizeof err)) {
    fprintf(stderr, "migc report: %s\n", err);
    return 1;
  }
  text out = {0};
  put(&out, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>migc run ");
  put_escaped(&out, dir);
  put(&out, "</title>\n"
            "<style>body{font-family:sans-serif;margin:2em;max-width:960px}"
            "figure{display:inline-block;margin:1em}img{image-rendering:pixelated;width:360px}"
            "td,th{padding:2px 10px;text-align:right}</style></head><body>\n"
            "<h1>migc run <code>");
  put_escaped(&out, dir);
  put(&out, "</code></h1>\n");
  read_bounds(dir, &tb);
  bool bounded = false;
  for (int c = 0; c < tb.ncols; c++) bounded = bounded || isfinite(tb.bound[c]);
  int acc = column(&tb, "eval_accuracy"), evaluated = -1;
  for (int r = 0; r < tb.nrows && acc >= 0; r++)
    if (isfinite(tb.rows[r * tb.ncols + acc])) evaluated = r;
  if (tb.nrows) {
    put(&out, "<table><tr>");
    for (int c = 0; c < tb.ncols; c++) put(&out, "<th>%s</th>", tb.names[c]);
    put(&out, "</tr>");
    /* the last row, and the last evaluated one when that is another */
    int shown[2] = {tb.nrows - 1, evaluated};
    int nshown = evaluated >= 0 && evaluated < tb.nrows - 1 ? 2 : 1;
    for (int i = 0; i < nshown; i++) {
      put(&out, "<tr>");
      for (int c = 0; c < tb.ncols; c++) number_cell(&out, tb.rows[shown[i] * tb.ncols + c]);
      put(&out, "</tr>");
    }
    if (bounded) bound_row(&out, &tb, "<td>at most</td>"); /* the step column names it */
    put(&out, "</table>\n<p>The last logged step%s. MI estimates are in nats; 'at most' is "
              "the most each can reach (the dashed lines below): ln K for a categorical code "
              "of K values, H(c) - D ln(std sqrt(2 pi)) for D continuous dimensions whose Q has "
              "a fixed std (the Gaussian NLL at a perfect prediction).%s</p>\n",
        evaluated >= 0 && evaluated < tb.nrows - 1 ? ", and the last evaluation" : "",
        acc >= 0 ? " eval_ columns: migc eval's measures, taken during the run on the test "
                   "split (matched accuracy) and on generated images (MI)." : "");
  }
  chart(&out, &tb, "Losses", is_loss, 0);
  chart(&out, &tb, "Mutual information (nats)", is_mi, 0);
  chart(&out, &tb, "Matched accuracy on the test split, by step", is_eval_accuracy, 0);
  chart(&out, &tb, "Matched accuracy on the test split, by wall time", is_eval_accuracy,
        column(&tb, "seconds"));
  chart(&out, &tb, "MI estimates on generated images (nats), by step", is_eval_mi, 0);
  chart(&out, &tb, "MI estimates on generated images (nats), by wall time", is_eval_mi,
        column(&tb, "seconds"));
  if (newest(dir, "step", img, sizeof img)) embed_png(&out, img, "the newest samples");
  if (newest(dir, "figure-step", img, sizeof img))
    embed_png(&out, img, "rows: categorical code; columns: a continuous code from -2 to 2");
  eval_section(&out, dir);
  settings_section(&out, dir);
  put(&out, "</body></html>\n");
  snprintf(path, sizeof path, "%s/report.html", dir);
  const void *parts[1] = {out.buf};
  size_t lens[1] = {out.n};
  int st = file_write_atomic(path, parts, lens, 1, err, sizeof err);
  if (st)
    fprintf(stderr, "migc report: %s\n", err);
  else
    printf("%s\n", path);
  free(out.buf);
  free(tb.rows);
  return st;
}
