/* frontend.h: the whole public surface of migc's frontend.
 *
 * source text --lexer.l/parser.y--> AST (every node with its span)
 *             --elaborate.c--------> IR module (names resolved, nets inlined,
 *                                    parameters created, shapes inferred)
 * Grammar actions only build AST nodes; every check happens in elaborate.c.
 * All AST memory belongs to one ast_file and is freed with it.
 *
 * Grouped by the file that implements each part.
 */
#ifndef MIGC_FRONTEND_H
#define MIGC_FRONTEND_H

#include "../ir/ir.h"

/* ---- ast.c: the syntax tree ------------------------------------------------------ */

typedef enum {
  EXPR_NUM,    /* number literal: num, is_int */
  EXPR_STRING, /* "text": str */
  EXPR_NAME,   /* identifier: name */
  EXPR_CALL,   /* name(args): name, args */
  EXPR_INDEX,  /* base[index]: lhs = base, rhs = index */
  EXPR_BINARY, /* lhs op rhs, op one of + - * / */
  EXPR_NEG,    /* -lhs */
  EXPR_LIST    /* [items]: shapes, axes, ranges */
} ast_expr_kind;

typedef struct ast_expr ast_expr;

typedef struct {
  char *key;       /* keyword argument name, NULL for positional */
  ir_span key_span;
  ast_expr *value;
} ast_arg;

struct ast_expr {
  ast_expr_kind kind;
  ir_span span;
  double num;
  bool is_int;     /* literal written without '.', 'e' */
  char *str;       /* EXPR_STRING */
  char *name;      /* EXPR_NAME, EXPR_CALL */
  ir_span name_span;
  int op;          /* EXPR_BINARY: '+', '-', '*', '/' */
  ast_expr *lhs, *rhs;
  ast_arg *args;   /* EXPR_CALL */
  int nargs;
  ast_expr **items; /* EXPR_LIST */
  int nitems;
};

typedef enum {
  STMT_ASSIGN, /* names = value (several names destructure a net's tuple) */
  STMT_RETURN, /* return values */
  STMT_STEP,   /* step name(nets) : minimize|maximize value with optimizer */
  STMT_REPORT  /* report names */
} ast_stmt_kind;

typedef struct {
  char *name;
  ir_span span;
} ast_ident;

typedef struct {
  ast_stmt_kind kind;
  ir_span span;
  ast_ident *names;   /* ASSIGN targets, STEP nets, REPORT names */
  int nnames;
  ast_ident step;     /* STEP: the step's name */
  bool maximize;      /* STEP */
  ast_expr **values;  /* ASSIGN: one; RETURN: one or more; STEP: the objective */
  int nvalues;
  ast_expr *optimizer; /* STEP: a call, e.g. adam(lr=2e-4, beta1=0.5) */
} ast_stmt;

typedef struct {
  ast_ident name;
  ast_expr *shape; /* optional declared per-sample shape (EXPR_LIST), or NULL */
} ast_param;

typedef enum {
  DECL_INPUT,    /* input name : shape options */
  DECL_LATENT,   /* latent name : dist shape? */
  DECL_CODE,     /* code name : dist shape? */
  DECL_CONST,    /* const name = value */
  DECL_NET,      /* net name(params) { body } */
  DECL_TRAIN,    /* train [batch N] { body } */
  DECL_GENERATE, /* generate names = value */
  DECL_ENCODE    /* encode names = value */
} ast_decl_kind;

typedef struct {
  ast_ident key;   /* option name, e.g. range, pad */
  ast_expr *value;
} ast_option;

typedef struct {
  ast_decl_kind kind;
  ir_span span;
  ast_ident name;     /* INPUT/LATENT/CODE/CONST/NET; TRAIN/GENERATE/ENCODE: unused */
  ast_expr *shape;    /* INPUT, LATENT, CODE: EXPR_LIST or NULL */
  ast_expr *dist;     /* LATENT, CODE: a call such as uniform(-1, 1) */
  ast_option *options; /* INPUT: e.g. range [0, 1], pad 2 */
  int noptions;
  ast_expr *value;    /* CONST; GENERATE/ENCODE: the expression; TRAIN: batch or NULL */
  ast_ident *names;   /* GENERATE/ENCODE: output names */
  int nnames;
  ast_param *params;  /* NET */
  int nparams;
  ast_stmt *body;     /* NET, TRAIN */
  int nbody;
} ast_decl;

typedef struct {
  const char *path;  /* as registered with the diagnostics sink */
  ast_ident model;   /* model NAME */
  ast_decl *decls;
  int ndecls;
  struct ast_pool *pool; /* owns every allocation above */
} ast_file;

/* Pool allocation: every AST allocation comes from the file's pool. */
void *ast_alloc(ast_file *f, size_t n);   /* zeroed */
char *ast_strdup(ast_file *f, const char *s, size_t n);
void ast_free(ast_file *f);
/* Prints the tree in an indented, stable form (`migc dump --ast`). */
void ast_print(const ast_file *f, FILE *out);

/* ---- lexer.l, parser.y: text to AST ----------------------------------------------- */

/* Parses `text` (registered in d as `path`). Syntax errors go to d; the parser
 * recovers at the end of the line and keeps going. Returns the AST (possibly
 * partial) or NULL if nothing could be built; check d->nerrors. */
ast_file *parse_source(diag_sink *d, const char *path, const char *text);
/* Reads and parses a file; a missing or unreadable file is reported to d. */
ast_file *parse_file(diag_sink *d, const char *path);

/* ---- overrides.c: -D name=value ----------------------------------------------------- */

typedef struct {
  char *name;
  double value;
  bool is_int;
  bool used;
} const_override;

typedef struct {
  const_override *items;
  int n, cap;
} const_overrides;

/* Parses "name=value" (value a number, e.g. 0.5, 2e-4, 64). Returns false and
 * writes a message to err on malformed input. */
bool overrides_add(const_overrides *o, const char *arg, char *err, size_t errn);
void overrides_free(const_overrides *o);

/* ---- elaborate.c: AST to IR --------------------------------------------------------- */

typedef struct {
  const const_overrides *overrides; /* -D, or NULL */
  int64_t batch;                    /* --batch, or 0 for the model's own */
  int64_t max_bytes;                /* refuse a model whose buffers need more (the
                                       state and the forward functions' temporaries,
                                       ir_memory_need); 0: no limit */
  int ranks;                        /* > 1: one of that many processes of a data-parallel
                                       run: training batchnorm's statistics are over
                                       every process's batch (sync batchnorm), and its
                                       running statistics are updated with them */
  bool local_bn;                    /* with ranks > 1: batchnorm normalises by this
                                       process's batch alone; the running statistics
                                       take the mean over processes of their batches'
                                       statistics, so they stay the same everywhere */
} elab_options;

/* Resolves names, inlines nets, creates parameters and state, infers every shape and
 * builds the entry functions. Errors go to d against the model source. Returns NULL
 * if there were errors. */
ir_module *elaborate(const ast_file *f, const elab_options *opt, diag_sink *d);

#endif
