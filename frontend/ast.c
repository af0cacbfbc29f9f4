/* ast.c: the syntax tree's memory and its printed form.
 *
 * Every node, string and array of one ast_file comes from its pool: chunks freed all
 * at once by ast_free, so the parser never frees (or leaks) anything on its own, even
 * when error recovery drops half-built nodes. The ast_file itself is calloc'ed by the
 * parser; its pool is created by the first allocation. */
#include "frontend.h"

#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_BYTES (64u << 10)

typedef struct pool_chunk {
  struct pool_chunk *next;
  size_t used, cap;
  alignas(max_align_t) unsigned char data[];
} pool_chunk;

struct ast_pool {
  pool_chunk *chunks; /* newest first; allocation happens in the newest */
};

/* Out of memory leaves no way to go on building the tree; like any allocation
 * failure in the compiler it ends the process (16 MiB of source at most keeps the
 * tree well inside ordinary memory). */
static void *pool_oom(void) {
  fputs("migc: out of memory\n", stderr);
  abort();
}

static pool_chunk *chunk_new(size_t cap, pool_chunk *next) {
  pool_chunk *c = malloc(sizeof *c + cap);
  if (!c) pool_oom();
  c->next = next;
  c->used = 0;
  c->cap = cap;
  return c;
}

void *ast_alloc(ast_file *f, size_t n) {
  if (!f->pool) {
    f->pool = calloc(1, sizeof *f->pool);
    if (!f->pool) pool_oom();
  }
  size_t align = alignof(max_align_t);
  n = (n + align - 1) & ~(align - 1);
  if (n == 0) n = align;
  struct ast_pool *p = f->pool;
  pool_chunk *c = p->chunks;
  if (n > CHUNK_BYTES / 4) {
    /* A big block gets its own chunk behind the current one, which stays in use. */
    pool_chunk *big = chunk_new(n, NULL);
    if (c) {
      big->next = c->next;
      c->next = big;
    } else {
      p->chunks = big;
    }
    big->used = n;
    memset(big->data, 0, n);
    return big->data;
  }
  if (!c || c->cap - c->used < n) c = p->chunks = chunk_new(CHUNK_BYTES, c);
  void *r = c->data + c->used;
  c->used += n;
  memset(r, 0, n);
  return r;
}

char *ast_strdup(ast_file *f, const char *s, size_t n) {
  char *r = ast_alloc(f, n + 1);
  memcpy(r, s, n);
  r[n] = '\0';
  return r;
}

void ast_free(ast_file *f) {
  if (!f) return;
  if (f->pool) {
    for (pool_chunk *c = f->pool->chunks, *next; c; c = next) {
      next = c->next;
      free(c);
    }
    free(f->pool);
  }
  free(f);
}

/* ---- ast_print ------------------------------------------------------------------------
 * One node per line, children indented two spaces, each with `@line:col` of its first
 * character. A child's role, where it is not obvious, prefixes it ("shape: list").
 * Numbers print as the shortest text that reads back the same; non-integers always
 * show a '.' or an exponent so 1.0 and 1 stay distinct. */

static void indent(FILE *out, int depth) {
  for (int i = 0; i < depth; i++) fputs("  ", out);
}

static void print_at(FILE *out, ir_span s) { fprintf(out, " @%d:%d\n", s.line, s.col); }

static void print_number(FILE *out, double v, bool is_int) {
  char buf[64];
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (strtod(buf, NULL) == v) break;
  }
  fputs(buf, out);
  if (!is_int && !strpbrk(buf, ".eEn")) fputs(".0", out);
}

static void print_string(FILE *out, const char *s) {
  fputc('"', out);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') fprintf(out, "\\%c", *p);
    else if (*p < 0x20 || *p == 0x7f) fprintf(out, "\\x%02x", *p);
    else fputc(*p, out);
  }
  fputc('"', out);
}

static void print_expr(FILE *out, const ast_expr *e, int depth, const char *role);

static void print_args(FILE *out, const ast_expr *e, int depth) {
  for (int i = 0; i < e->nargs; i++) {
    const ast_arg *a = &e->args[i];
    if (!a->key) {
      print_expr(out, a->value, depth, NULL);
      continue;
    }
    indent(out, depth);
    fprintf(out, "arg %s", a->key);
    print_at(out, a->key_span);
    print_expr(out, a->value, depth + 1, NULL);
  }
}

static void print_expr(FILE *out, const ast_expr *e, int depth, const char *role) {
  indent(out, depth);
  if (role) fprintf(out, "%s: ", role);
  if (!e) {
    fputs("(missing)\n", out);
    return;
  }
  switch (e->kind) {
  case EXPR_NUM:
    fputs("num ", out);
    print_number(out, e->num, e->is_int);
    break;
  case EXPR_STRING:
    fputs("string ", out);
    print_string(out, e->str ? e->str : "");
    break;
  case EXPR_NAME: fprintf(out, "name %s", e->name); break;
  case EXPR_CALL: fprintf(out, "call %s", e->name); break;
  case EXPR_INDEX: fputs("index", out); break;
  case EXPR_BINARY: fprintf(out, "binary %c", e->op); break;
  case EXPR_NEG: fputs("neg", out); break;
  case EXPR_LIST: fputs("list", out); break;
  }
  print_at(out, e->span);
  switch (e->kind) {
  case EXPR_CALL: print_args(out, e, depth + 1); break;
  case EXPR_INDEX:
  case EXPR_BINARY:
    print_expr(out, e->lhs, depth + 1, NULL);
    print_expr(out, e->rhs, depth + 1, NULL);
    break;
  case EXPR_NEG: print_expr(out, e->lhs, depth + 1, NULL); break;
  case EXPR_LIST:
    for (int i = 0; i < e->nitems; i++) print_expr(out, e->items[i], depth + 1, NULL);
    break;
  default: break;
  }
}

static void print_names(FILE *out, const ast_ident *names, int n) {
  for (int i = 0; i < n; i++) fprintf(out, "%s%s", i ? ", " : " ", names[i].name);
}

static void print_stmt(FILE *out, const ast_stmt *s, int depth) {
  indent(out, depth);
  switch (s->kind) {
  case STMT_ASSIGN: fputs("assign", out); break;
  case STMT_RETURN: fputs("return", out); break;
  case STMT_STEP:
    fprintf(out, "step %s(", s->step.name);
    for (int i = 0; i < s->nnames; i++) fprintf(out, "%s%s", i ? ", " : "", s->names[i].name);
    fprintf(out, ") %s", s->maximize ? "maximize" : "minimize");
    break;
  case STMT_REPORT: fputs("report", out); break;
  }
  if (s->kind != STMT_STEP) print_names(out, s->names, s->nnames);
  print_at(out, s->span);
  for (int i = 0; i < s->nvalues; i++) print_expr(out, s->values[i], depth + 1, NULL);
  if (s->kind == STMT_STEP) print_expr(out, s->optimizer, depth + 1, "with");
}

static const char *decl_word(ast_decl_kind k) {
  static const char *words[] = {"input", "latent",   "code",  "const",
                                "net",   "train", "generate", "encode"};
  return words[k];
}

static void print_decl(FILE *out, const ast_decl *d) {
  fputs(decl_word(d->kind), out);
  if (d->name.name) fprintf(out, " %s", d->name.name);
  print_names(out, d->names, d->nnames);
  print_at(out, d->span);
  for (int i = 0; i < d->nparams; i++) {
    indent(out, 1);
    fprintf(out, "param %s", d->params[i].name.name);
    print_at(out, d->params[i].name.span);
    if (d->params[i].shape) print_expr(out, d->params[i].shape, 2, "shape");
  }
  if (d->dist) print_expr(out, d->dist, 1, "dist");
  if (d->shape) print_expr(out, d->shape, 1, "shape");
  for (int i = 0; i < d->noptions; i++) print_expr(out, d->options[i].value, 1, d->options[i].key.name);
  if (d->value) print_expr(out, d->value, 1, d->kind == DECL_TRAIN ? "batch" : "value");
  for (int i = 0; i < d->nbody; i++) print_stmt(out, &d->body[i], 1);
}

void ast_print(const ast_file *f, FILE *out) {
  fprintf(out, "model %s", f->model.name ? f->model.name : "(missing)");
  print_at(out, f->model.span);
  for (int i = 0; i < f->ndecls; i++) print_decl(out, &f->decls[i]);
}
