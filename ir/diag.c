/* diag.c: the diagnostics sink. Stages record errors, warnings and notes with a
 * span; only the CLI prints them (in the style of a C compiler: location, message,
 * the source line and a caret) and decides the exit code. */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

void diag_init(diag_sink *d) {
  memset(d, 0, sizeof *d);
  d->max_errors = 50;
}

void diag_free(diag_sink *d) {
  for (int i = 0; i < d->n; i++) free(d->entries[i].msg);
  free(d->entries);
  for (int i = 0; i < d->nsources; i++) {
    free((char *)d->sources[i].name);
    free(d->sources[i].text);
  }
  free(d->sources);
  memset(d, 0, sizeof *d);
}

const char *diag_add_source(diag_sink *d, const char *name, const char *text) {
  for (int i = 0; i < d->nsources; i++)
    if (strcmp(d->sources[i].name, name) == 0) {
      free(d->sources[i].text);
      d->sources[i].text = strdup(text);
      return d->sources[i].name;
    }
  d->sources = realloc(d->sources, (size_t)(d->nsources + 1) * sizeof *d->sources);
  d->sources[d->nsources].name = strdup(name);
  d->sources[d->nsources].text = strdup(text);
  return d->sources[d->nsources++].name;
}

static void add(diag_sink *d, diag_level level, ir_span span, const char *fmt, va_list ap) {
  if (level == DIAG_NOTE && d->dropping) return;
  char buf[1024];
  vsnprintf(buf, sizeof buf, fmt, ap);
  if (level == DIAG_ERROR) {
    /* The same error at the same place, as a net called several times repeats its
     * body's mistake: report it once, notes included. */
    for (int i = 0; i < d->n; i++) {
      const diag_entry *e = &d->entries[i];
      if (e->level == DIAG_ERROR && e->span.file == span.file && e->span.line == span.line &&
          e->span.col == span.col && e->span.end_col == span.end_col && !strcmp(e->msg, buf)) {
        d->dropping = true;
        return;
      }
    }
    int limit = d->max_errors > 0 ? d->max_errors : 50;
    d->nerrors++;
    d->dropping = d->nerrors > limit;
    if (d->dropping) return;
  } else if (level == DIAG_WARNING) {
    d->dropping = false;
  }
  if (d->n == d->cap) {
    d->cap = d->cap ? d->cap * 2 : 16;
    d->entries = realloc(d->entries, (size_t)d->cap * sizeof *d->entries);
  }
  d->entries[d->n++] = (diag_entry){level, span, strdup(buf)};
}

void diag_error(diag_sink *d, ir_span span, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  add(d, DIAG_ERROR, span, fmt, ap);
  va_end(ap);
}

void diag_warning(diag_sink *d, ir_span span, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  add(d, DIAG_WARNING, span, fmt, ap);
  va_end(ap);
}

void diag_note(diag_sink *d, ir_span span, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  add(d, DIAG_NOTE, span, fmt, ap);
  va_end(ap);
}

ir_span span_join(ir_span a, ir_span b) {
  if (!a.file) return b;
  if (!b.file) return a;
  ir_span s = a;
  if (b.line > a.end_line || (b.line == a.end_line && b.end_col > a.end_col)) {
    s.end_line = b.end_line;
    s.end_col = b.end_col;
  }
  if (b.line < a.line || (b.line == a.line && b.col < a.col)) {
    s.line = b.line;
    s.col = b.col;
  }
  return s;
}

static const char *source_text(const diag_sink *d, const char *file) {
  if (!file) return NULL;
  for (int i = 0; i < d->nsources; i++)
    if (d->sources[i].name == file || strcmp(d->sources[i].name, file) == 0)
      return d->sources[i].text;
  return NULL;
}

/* Finds line `line` (1-based) of text; returns its start and sets *len. */
static const char *find_line(const char *text, int line, int *len) {
  const char *p = text;
  for (int l = 1; l < line && p; l++) {
    p = strchr(p, '\n');
    if (p) p++;
  }
  if (!p) return NULL;
  const char *e = strchr(p, '\n');
  *len = e ? (int)(e - p) : (int)strlen(p);
  return p;
}

static void print_excerpt(const diag_sink *d, const diag_entry *e, FILE *out, bool color) {
  const char *text = source_text(d, e->span.file);
  if (!text || e->span.line < 1) return;
  int len;
  const char *ln = find_line(text, e->span.line, &len);
  if (!ln) return;
  fprintf(out, "%5d | %.*s\n      | ", e->span.line, len, ln);
  /* Tabs in the source line keep their width in the caret line. */
  int col = e->span.col < 1 ? 1 : e->span.col;
  for (int i = 0; i < col - 1 && i < len; i++) fputc(ln[i] == '\t' ? '\t' : ' ', out);
  int end = e->span.end_line == e->span.line ? e->span.end_col : len;
  if (end < col) end = col;
  if (color) fputs("\033[1;32m", out);
  fputc('^', out);
  for (int i = col + 1; i <= end && i <= len; i++) fputc('~', out);
  if (color) fputs("\033[0m", out);
  fputc('\n', out);
}

void diag_print(const diag_sink *d, FILE *out, bool color) {
  static const char *names[] = {"error", "warning", "note"};
  static const char *colors[] = {"\033[1;31m", "\033[1;35m", "\033[1;36m"};
  for (int i = 0; i < d->n; i++) {
    const diag_entry *e = &d->entries[i];
    if (color) fputs("\033[1m", out);
    if (e->span.file && e->span.line > 0)
      fprintf(out, "%s:%d:%d: ", e->span.file, e->span.line, e->span.col);
    else
      fputs("migc: ", out);
    if (color) fputs(colors[e->level], out);
    fprintf(out, "%s:", names[e->level]);
    if (color) fputs("\033[0m\033[1m", out);
    fprintf(out, " %s\n", e->msg);
    if (color) fputs("\033[0m", out);
    print_excerpt(d, e, out, color);
  }
  int limit = d->max_errors > 0 ? d->max_errors : 50;
  if (d->nerrors > limit)
    fprintf(out, "migc: too many errors; %d more not shown\n", d->nerrors - limit);
}

/* Levenshtein distance, for "did you mean" (names of at most 32 characters; longer: 99). */
int edit_distance(const char *a, const char *b) {
  int la = (int)strlen(a), lb = (int)strlen(b);
  if (la > 32 || lb > 32) return 99;
  int row[33];
  for (int j = 0; j <= lb; j++) row[j] = j;
  for (int i = 1; i <= la; i++) {
    int prev = row[0];
    row[0] = i;
    for (int j = 1; j <= lb; j++) {
      int cur = row[j];
      int sub = prev + (a[i - 1] != b[j - 1]);
      int del = row[j] + 1, ins = row[j - 1] + 1;
      row[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
      prev = cur;
    }
  }
  return row[lb];
}
