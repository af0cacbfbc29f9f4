/* parser.y: the grammar of .mig model files, as a pure bison parser.
 *
 * Actions only build AST nodes (frontend.h); every meaning check happens later in
 * elaborate.c. Every value lives in the ast_file's pool, so values that error
 * recovery throws away are reclaimed by ast_free with the rest: no %destructor is
 * needed, and none would have anything to free.
 *
 * Recovery: a syntax error inside a statement or declaration skips to the end of its
 * line (the layout filter in lexer.l decides where lines end, and closes brackets
 * that a new statement shows were never closed), then parsing goes on, so one run
 * reports every broken line. Messages are built in yyreport_syntax_error from the
 * expected-token set (exact, thanks to LAC) and from what the layout filter knows
 * about open brackets and braces.
 */

%define api.pure full
%define api.prefix {mig_}
%define api.token.prefix {TOK_}
%define parse.error custom
%define parse.lac full
%locations
%expect 0

%parse-param {void *scanner} {parse_state *ps}
%lex-param {void *scanner}

%code requires {
#include "frontend.h"

/* Deepest expression (and deepest bracket nesting) accepted. Later stages walk
 * expressions recursively, so the bound protects them as well as the parser. */
#define MIG_MAX_NESTING 256
/* Names longer than this are refused by the lexer: messages quote names whole. */
#define MIG_MAX_IDENT 255

/* An expression under construction and the depth of its tree. */
typedef struct { ast_expr *e; int depth; } expr_val;
typedef struct { ast_arg a; int depth; } arg_val;
typedef struct { ast_ident *v; int n; } ident_vec;
typedef struct { ast_expr **v; int n; } expr_vec;
typedef struct { ast_stmt *v; int n; } stmt_vec;
typedef struct { ast_param *v; int n; } param_vec;
typedef struct { ast_option *v; int n; } option_vec;

typedef struct lex_state lex_state;
typedef struct parse_state parse_state;
}

%code provides {
/* A token as the parser received it, kept for error messages. */
typedef struct {
  int kind;          /* token kind, 0 for end of file */
  MIG_LTYPE loc;
  const char *text;  /* as written (points into the source), or NULL */
  int len;
  const char *what;  /* for end-of-line tokens: "end of line", "';'", "end of file"... */
} lex_token;

/* A '(' or '[' not yet closed, for "expected ')' to close the call to 'f'". */
typedef struct {
  char open;             /* '(' or '[' */
  MIG_LTYPE loc;
  int role;              /* OPEN_* */
  const char *name;      /* the callee, net or step name (into the source) */
  int name_len;
} open_bracket;

enum { OPEN_GROUP, OPEN_CALL, OPEN_NET_PARAMS, OPEN_STEP_NETS };

/* The scanner's state (flex's "extra"): the input, the position, and what the layout
 * filter needs to decide where statements end. */
struct lex_state {
  const char *text;   /* the whole input, len bytes (may contain NULs) */
  size_t len, pos;    /* pos: offset of the next byte the scanner will read */
  int line, col;      /* position of text[pos] */
  int nl_line, nl_col; /* position of the last '\n' read */
  size_t tok_start;   /* the raw token just read: offset and length */
  int tok_len;
  const char *raw_what; /* the raw end of line just read: "end of line" or "';'" */
  bool bol;           /* no token yet on the current line */
  bool line_has_error; /* a lexical error was reported since the last end of line */
  const char *path;   /* registered file name, for spans */
  ast_file *file;
  diag_sink *diag;

  lex_token cur, prev;      /* the parser's lookahead and the token before it */
  int last;                 /* kind of the last token given to the parser, -1: none */
  lex_token pending[3];     /* tokens the filter has decided to give next */
  int npending;
  bool eof;                 /* the end of file has been given to the parser */

  int depth;                /* open '(' and '[' */
  open_bracket open[MIG_MAX_NESTING];
  bool stale;               /* a new statement began: forget open brackets after this
                               token (kept until then for the error message) */
  int minus_run;            /* consecutive '-' tokens */
  bool nesting_reported;    /* one nesting error per statement */

  int braces;               /* open '{' */
  MIG_LTYPE brace_loc;
  int brace_kind;           /* TOK_NET or TOK_TRAIN: what the '{' opened */
  const char *brace_name;
  int brace_name_len;
  int decl_kind;            /* the last declaration keyword seen, and its name */
  const char *decl_name;
  int decl_name_len;
};

struct parse_state {
  ast_file *file;
  diag_sink *diag;
  lex_state *lex;
  bool skipping; /* a declaration was dropped; quiet until the next one parses */
};

/* lexer.l: the token stream the grammar reads (raw tokens through the layout filter),
 * and the scanner's life cycle around one parse. */
int mig_lex(MIG_STYPE *lval, MIG_LTYPE *lloc, void *scanner);
void *lex_open(lex_state *ls);
void lex_close(void *scanner);
ir_span lex_span(const lex_state *ls, MIG_LTYPE loc);
void lex_block_owner(const lex_state *ls, char *buf, size_t n);
}

%union {
  char *name;
  ast_expr *lit;
  expr_val ex;
  arg_val arg;
  ident_vec ids;
  expr_vec exs;
  ast_stmt *stmt;
  stmt_vec stmts;
  ast_param param;
  param_vec params;
  ast_option option;
  option_vec options;
  bool flag;
}

%code {
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Bison's stack grows only with nesting: per open bracket (at most MIG_MAX_NESTING,
 * the lexer's limit) a run of unary minus signs (at most MIG_MAX_NESTING, also the
 * lexer's) and a few operator states. 257 * (256 + 16) states fit; anything that still
 * overflows is reported as too deep rather than growing the stack without bound. */
#define YYMAXDEPTH 70000

static void mig_error(MIG_LTYPE *loc, void *scanner, parse_state *ps, const char *msg);

static ir_span span_of(parse_state *ps, MIG_LTYPE a) { return lex_span(ps->lex, a); }
static ir_span span_range(parse_state *ps, MIG_LTYPE a, MIG_LTYPE b);
static ast_ident ident(parse_state *ps, char *name, MIG_LTYPE loc);
static void *grow(ast_file *f, void *v, int n, size_t elem);
#define APPEND(f, arr, n, item) \
  ((arr) = grow((f), (arr), (n), sizeof *(arr)), (arr)[(n)++] = (item))

static expr_val leaf(ast_expr *e);
static expr_val name_expr(parse_state *ps, char *name, MIG_LTYPE loc);
static bool nest(parse_state *ps, expr_val *out, ast_expr *e, int child_depth, MIG_LTYPE at);
static bool binary(parse_state *ps, expr_val *out, int op, expr_val l, expr_val r,
                   MIG_LTYPE all, MIG_LTYPE at);
static bool negate(parse_state *ps, expr_val *out, expr_val x, MIG_LTYPE all);
static bool index_expr(parse_state *ps, expr_val *out, expr_val base, expr_val idx,
                       MIG_LTYPE all, MIG_LTYPE at);
static expr_val args_push(parse_state *ps, expr_val call, arg_val a);
static bool call_finish(parse_state *ps, expr_val *out, expr_val call, char *name,
                        MIG_LTYPE name_loc, MIG_LTYPE all);
static expr_val items_push(parse_state *ps, expr_val list, expr_val item);
static bool list_finish(parse_state *ps, expr_val *out, expr_val list, MIG_LTYPE all);
static ast_decl *decl_add(parse_state *ps, ast_decl_kind kind, MIG_LTYPE first, MIG_LTYPE last);
static ast_stmt *stmt_new(parse_state *ps, ast_stmt_kind kind, MIG_LTYPE first, MIG_LTYPE last);
static void train_check_batch(parse_state *ps, const char *word, MIG_LTYPE loc);
static void skip_declaration(parse_state *ps);
}

/* Names as users write them; the error messages quote these. */
%token MODEL "'model'" INPUT "'input'" LATENT "'latent'" CODE "'code'"
%token CONST "'const'" NET "'net'" TRAIN "'train'" GENERATE "'generate'"
%token ENCODE "'encode'" RETURN "'return'" STEP "'step'" MINIMIZE "'minimize'"
%token MAXIMIZE "'maximize'" WITH "'with'" REPORT "'report'"
%token <name> IDENT "a name"
%token <lit> NUMBER "a number"
%token <lit> STRING "a string"
%token NL "end of line"

%type <ex> expr postfix primary call args list items
%type <arg> arg
%type <ids> idents
%type <exs> exprs
%type <stmt> stmt
%type <stmts> stmts block
%type <param> param
%type <params> params params_opt
%type <option> option
%type <options> options
%type <ex> shape_opt
%type <flag> direction

%left '+' '-'
%left '*' '/'
%precedence NEG

%%

file:
    header
  | header decls
  ;

header:
    MODEL IDENT NL      { ps->file->model = ident(ps, $2, @2); }
  | error NL            { skip_declaration(ps); yyerrok; }
  | error block NL      { skip_declaration(ps); yyerrok; }
  ;

/* No empty rule here or in stmts: LAC stops before empty reductions, and error
 * recovery needs the state it stops in to accept `error`. */
decls:
    decl
  | decls decl
  ;

decl:
    INPUT IDENT ':' list options NL {
      ast_decl *d = decl_add(ps, DECL_INPUT, @1, @5);
      d->name = ident(ps, $2, @2);
      d->shape = $4.e;
      d->options = $5.v;
      d->noptions = $5.n;
    }
  | LATENT IDENT ':' call shape_opt NL {
      ast_decl *d = decl_add(ps, DECL_LATENT, @1, @5);
      d->name = ident(ps, $2, @2);
      d->dist = $4.e;
      d->shape = $5.e;
    }
  | CODE IDENT ':' call shape_opt NL {
      ast_decl *d = decl_add(ps, DECL_CODE, @1, @5);
      d->name = ident(ps, $2, @2);
      d->dist = $4.e;
      d->shape = $5.e;
    }
  | CONST IDENT '=' expr NL {
      ast_decl *d = decl_add(ps, DECL_CONST, @1, @4);
      d->name = ident(ps, $2, @2);
      d->value = $4.e;
    }
  | NET IDENT '(' params_opt ')' block NL {
      ast_decl *d = decl_add(ps, DECL_NET, @1, @6);
      d->name = ident(ps, $2, @2);
      d->params = $4.v;
      d->nparams = $4.n;
      d->body = $6.v;
      d->nbody = $6.n;
    }
  | TRAIN block NL {
      ast_decl *d = decl_add(ps, DECL_TRAIN, @1, @2);
      d->body = $2.v;
      d->nbody = $2.n;
    }
  | TRAIN IDENT expr block NL {
      train_check_batch(ps, $2, @2);
      ast_decl *d = decl_add(ps, DECL_TRAIN, @1, @4);
      d->value = $3.e;
      d->body = $4.v;
      d->nbody = $4.n;
    }
  | GENERATE idents '=' expr NL {
      ast_decl *d = decl_add(ps, DECL_GENERATE, @1, @4);
      d->names = $2.v;
      d->nnames = $2.n;
      d->value = $4.e;
    }
  | ENCODE idents '=' expr NL {
      ast_decl *d = decl_add(ps, DECL_ENCODE, @1, @4);
      d->names = $2.v;
      d->nnames = $2.n;
      d->value = $4.e;
    }
  | error NL            { skip_declaration(ps); yyerrok; }
  | error block NL      { skip_declaration(ps); yyerrok; }
  ;

shape_opt:
    %empty              { $$ = (expr_val){NULL, 0}; }
  | list
  ;

options:
    %empty              { $$ = (option_vec){NULL, 0}; }
  | options option      { $$ = $1; APPEND(ps->file, $$.v, $$.n, $2); }
  | options ',' option  { $$ = $1; APPEND(ps->file, $$.v, $$.n, $3); }
  ;

option:
    IDENT primary       { $$ = (ast_option){ident(ps, $1, @1), $2.e}; }
  ;

params_opt:
    %empty              { $$ = (param_vec){NULL, 0}; }
  | params
  ;

params:
    param               { $$ = (param_vec){NULL, 0}; APPEND(ps->file, $$.v, $$.n, $1); }
  | params ',' param    { $$ = $1; APPEND(ps->file, $$.v, $$.n, $3); }
  ;

param:
    IDENT               { $$ = (ast_param){ident(ps, $1, @1), NULL}; }
  | IDENT ':' list      { $$ = (ast_param){ident(ps, $1, @1), $3.e}; }
  ;

/* The layout filter never puts an end of line right after '{'. */
block:
    '{' '}'                   { $$ = (stmt_vec){NULL, 0}; }
  | '{' stmts '}'             { $$ = $2; }
  | '{' error '}'             { $$ = (stmt_vec){NULL, 0}; yyerrok; }
  | '{' stmts error '}'       { $$ = $2; yyerrok; }
  ;

stmts:
    stmt                { $$ = (stmt_vec){NULL, 0}; if ($1) APPEND(ps->file, $$.v, $$.n, *$1); }
  | stmts stmt          { $$ = $1; if ($2) APPEND(ps->file, $$.v, $$.n, *$2); }
  ;

stmt:
    idents '=' expr NL {
      $$ = stmt_new(ps, STMT_ASSIGN, @1, @3);
      $$->names = $1.v;
      $$->nnames = $1.n;
      APPEND(ps->file, $$->values, $$->nvalues, $3.e);
    }
  | RETURN exprs NL {
      $$ = stmt_new(ps, STMT_RETURN, @1, @2);
      $$->values = $2.v;
      $$->nvalues = $2.n;
    }
  | STEP IDENT '(' idents ')' ':' direction expr WITH call NL {
      $$ = stmt_new(ps, STMT_STEP, @1, @10);
      $$->step = ident(ps, $2, @2);
      $$->names = $4.v;
      $$->nnames = $4.n;
      $$->maximize = $7;
      APPEND(ps->file, $$->values, $$->nvalues, $8.e);
      $$->optimizer = $10.e;
    }
  | REPORT idents NL {
      $$ = stmt_new(ps, STMT_REPORT, @1, @2);
      $$->names = $2.v;
      $$->nnames = $2.n;
    }
  | error NL            { $$ = NULL; yyerrok; }
  ;

direction:
    MINIMIZE            { $$ = false; }
  | MAXIMIZE            { $$ = true; }
  ;

idents:
    IDENT               { $$ = (ident_vec){NULL, 0}; APPEND(ps->file, $$.v, $$.n, ident(ps, $1, @1)); }
  | idents ',' IDENT    { $$ = $1; APPEND(ps->file, $$.v, $$.n, ident(ps, $3, @3)); }
  ;

exprs:
    expr                { $$ = (expr_vec){NULL, 0}; APPEND(ps->file, $$.v, $$.n, $1.e); }
  | exprs ',' expr      { $$ = $1; APPEND(ps->file, $$.v, $$.n, $3.e); }
  ;

expr:
    expr '+' expr       { if (!binary(ps, &$$, '+', $1, $3, @$, @2)) YYERROR; }
  | expr '-' expr       { if (!binary(ps, &$$, '-', $1, $3, @$, @2)) YYERROR; }
  | expr '*' expr       { if (!binary(ps, &$$, '*', $1, $3, @$, @2)) YYERROR; }
  | expr '/' expr       { if (!binary(ps, &$$, '/', $1, $3, @$, @2)) YYERROR; }
  | '-' expr %prec NEG  { if (!negate(ps, &$$, $2, @$)) YYERROR; }
  | postfix
  ;

postfix:
    primary
  | postfix '[' expr ']' { if (!index_expr(ps, &$$, $1, $3, @$, @2)) YYERROR; }
  ;

primary:
    NUMBER              { $$ = leaf($1); }
  | STRING              { $$ = leaf($1); }
  | IDENT               { $$ = name_expr(ps, $1, @1); }
  | call
  | '(' expr ')'        { $$ = $2; }
  | list
  ;

call:
    IDENT '(' ')'           { if (!call_finish(ps, &$$, (expr_val){NULL, 0}, $1, @1, @$)) YYERROR; }
  | IDENT '(' args ')'      { if (!call_finish(ps, &$$, $3, $1, @1, @$)) YYERROR; }
  | IDENT '(' args ',' ')'  { if (!call_finish(ps, &$$, $3, $1, @1, @$)) YYERROR; }
  ;

args:
    arg                 { $$ = args_push(ps, (expr_val){NULL, 0}, $1); }
  | args ',' arg        { $$ = args_push(ps, $1, $3); }
  ;

arg:
    expr                { $$ = (arg_val){{NULL, {0}, $1.e}, $1.depth}; }
  | IDENT '=' expr      { $$ = (arg_val){{$1, span_of(ps, @1), $3.e}, $3.depth}; }
  ;

list:
    '[' ']'             { if (!list_finish(ps, &$$, (expr_val){NULL, 0}, @$)) YYERROR; }
  | '[' items ']'       { if (!list_finish(ps, &$$, $2, @$)) YYERROR; }
  | '[' items ',' ']'   { if (!list_finish(ps, &$$, $2, @$)) YYERROR; }
  ;

items:
    expr                { $$ = items_push(ps, (expr_val){NULL, 0}, $1); }
  | items ',' expr      { $$ = items_push(ps, $1, $3); }
  ;

%%

/* ---- building the tree ------------------------------------------------------------ */

static ir_span span_range(parse_state *ps, MIG_LTYPE a, MIG_LTYPE b) {
  a.last_line = b.last_line;
  a.last_column = b.last_column;
  return span_of(ps, a);
}

static ast_ident ident(parse_state *ps, char *name, MIG_LTYPE loc) {
  return (ast_ident){name, span_of(ps, loc)};
}

/* Arrays grow in the pool by doubling; the capacity is implied by the count (4, then
 * the next power of two), so vectors need no capacity field. Old copies stay in the
 * pool until the file is freed. */
static void *grow(ast_file *f, void *v, int n, size_t elem) {
  if (n > 0 && (n < 4 || (n & (n - 1)) != 0)) return v;
  size_t cap = n == 0 ? 4 : 2 * (size_t)n;
  void *w = ast_alloc(f, cap * elem);
  if (n > 0) memcpy(w, v, (size_t)n * elem);
  return w;
}

static ast_expr *expr_new(parse_state *ps, ast_expr_kind kind) {
  ast_expr *e = ast_alloc(ps->file, sizeof *e);
  e->kind = kind;
  return e;
}

static expr_val leaf(ast_expr *e) { return (expr_val){e, 1}; }

static expr_val name_expr(parse_state *ps, char *name, MIG_LTYPE loc) {
  ast_expr *e = expr_new(ps, EXPR_NAME);
  e->name = name;
  e->span = e->name_span = span_of(ps, loc);
  return leaf(e);
}

/* Gives e the depth one above its deepest child, refusing trees deeper than
 * MIG_MAX_NESTING (reported at `at`: the operator or bracket that went too deep). */
static bool nest(parse_state *ps, expr_val *out, ast_expr *e, int child_depth, MIG_LTYPE at) {
  *out = (expr_val){e, child_depth + 1};
  if (out->depth <= MIG_MAX_NESTING) return true;
  diag_error(ps->diag, span_of(ps, at), "expressions nested too deeply (limit %d)",
             MIG_MAX_NESTING);
  return false;
}

static int max_int(int a, int b) { return a > b ? a : b; }

static bool binary(parse_state *ps, expr_val *out, int op, expr_val l, expr_val r,
                   MIG_LTYPE all, MIG_LTYPE at) {
  ast_expr *e = expr_new(ps, EXPR_BINARY);
  e->op = op;
  e->lhs = l.e;
  e->rhs = r.e;
  e->span = span_of(ps, all);
  return nest(ps, out, e, max_int(l.depth, r.depth), at);
}

static bool negate(parse_state *ps, expr_val *out, expr_val x, MIG_LTYPE all) {
  ast_expr *e = expr_new(ps, EXPR_NEG);
  e->lhs = x.e;
  e->span = span_of(ps, all);
  return nest(ps, out, e, x.depth, all);
}

static bool index_expr(parse_state *ps, expr_val *out, expr_val base, expr_val idx,
                       MIG_LTYPE all, MIG_LTYPE at) {
  ast_expr *e = expr_new(ps, EXPR_INDEX);
  e->lhs = base.e;
  e->rhs = idx.e;
  e->span = span_of(ps, all);
  return nest(ps, out, e, max_int(base.depth, idx.depth), at);
}

/* A call's arguments collect in its node before its name is known; depth tracks the
 * deepest argument. */
static expr_val args_push(parse_state *ps, expr_val call, arg_val a) {
  if (!call.e) call.e = expr_new(ps, EXPR_CALL);
  APPEND(ps->file, call.e->args, call.e->nargs, a.a);
  call.depth = max_int(call.depth, a.depth);
  return call;
}

static bool call_finish(parse_state *ps, expr_val *out, expr_val call, char *name,
                        MIG_LTYPE name_loc, MIG_LTYPE all) {
  if (!call.e) call.e = expr_new(ps, EXPR_CALL);
  call.e->name = name;
  call.e->name_span = span_of(ps, name_loc);
  call.e->span = span_of(ps, all);
  return nest(ps, out, call.e, call.depth, name_loc);
}

static expr_val items_push(parse_state *ps, expr_val list, expr_val item) {
  if (!list.e) list.e = expr_new(ps, EXPR_LIST);
  APPEND(ps->file, list.e->items, list.e->nitems, item.e);
  list.depth = max_int(list.depth, item.depth);
  return list;
}

static bool list_finish(parse_state *ps, expr_val *out, expr_val list, MIG_LTYPE all) {
  if (!list.e) list.e = expr_new(ps, EXPR_LIST);
  list.e->span = span_of(ps, all);
  return nest(ps, out, list.e, list.depth, all);
}

/* A declaration is appended to the file as soon as it is complete; its span runs from
 * the keyword to the last token before the end of the line. */
static ast_decl *decl_add(parse_state *ps, ast_decl_kind kind, MIG_LTYPE first, MIG_LTYPE last) {
  ast_decl d = {.kind = kind, .span = span_range(ps, first, last)};
  ps->skipping = false;
  APPEND(ps->file, ps->file->decls, ps->file->ndecls, d);
  return &ps->file->decls[ps->file->ndecls - 1];
}

/* A statement is copied into its block's array once the block has it; its span runs
 * from its first token to the last before the end of the line. */
static ast_stmt *stmt_new(parse_state *ps, ast_stmt_kind kind, MIG_LTYPE first, MIG_LTYPE last) {
  ast_stmt *s = ast_alloc(ps->file, sizeof *s);
  s->kind = kind;
  s->span = span_range(ps, first, last);
  return s;
}

/* After a broken declaration, lines that are not declarations (the body of a net
 * whose '{' is missing, say) are skipped without a message each. */
static void skip_declaration(parse_state *ps) { ps->skipping = true; }

/* `train` takes one optional setting; the grammar accepts any word there so that a
 * misspelling gets this message rather than a generic one. */
static void train_check_batch(parse_state *ps, const char *word, MIG_LTYPE loc) {
  if (strcmp(word, "batch") != 0)
    diag_error(ps->diag, span_of(ps, loc), "expected 'batch' or '{' after 'train'");
}

/* ---- syntax error messages ---------------------------------------------------------- */

/* A message under construction. */
typedef struct {
  char buf[512];
  size_t n;
} msg_buf;

static void msg_add(msg_buf *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void msg_add(msg_buf *m, const char *fmt, ...) {
  if (m->n >= sizeof m->buf) return;
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(m->buf + m->n, sizeof m->buf - m->n, fmt, ap);
  va_end(ap);
  if (k > 0) m->n += (size_t)k;
  if (m->n >= sizeof m->buf) m->n = sizeof m->buf - 1;
}

/* Source text quoted in a message: at most 32 bytes, unprintable bytes as '?'. */
static void msg_text(msg_buf *m, const char *text, int len) {
  int shown = len > 32 ? 29 : len;
  for (int i = 0; i < shown; i++) {
    unsigned char c = (unsigned char)text[i];
    msg_add(m, "%c", c >= 0x20 && c < 0x7f ? c : '?');
  }
  if (shown < len) msg_add(m, "...");
}

/* How a token reads in "found X". */
static void msg_token(msg_buf *m, const lex_token *t) {
  if (t->kind == 0) msg_add(m, "end of file");
  else if (t->kind == TOK_NL) msg_add(m, "%s", t->what);
  else if (!t->text) msg_add(m, "%s", t->what ? t->what : "a token");
  else {
    if (t->kind == TOK_IDENT) msg_add(m, "identifier '");
    else if (t->kind == TOK_NUMBER) msg_add(m, "number ");
    else if (t->kind == TOK_STRING) msg_add(m, "string ");
    else msg_add(m, "'");
    msg_text(m, t->text, t->len);
    if (t->kind != TOK_NUMBER && t->kind != TOK_STRING) msg_add(m, "'");
  }
}

static void msg_found(msg_buf *m, const lex_token *t) {
  msg_add(m, ", found ");
  msg_token(m, t);
}

/* " after '+'": the token before the lookahead, when there is one on the same line. */
static void msg_after(msg_buf *m, const lex_token *prev) {
  if (prev->kind <= 0 || prev->kind == TOK_NL || !prev->text) return;
  msg_add(m, " after '");
  msg_text(m, prev->text, prev->len);
  msg_add(m, "'");
}

static bool is_end(const lex_token *t) {
  return t->kind == 0 || (t->kind == TOK_NL && strcmp(t->what, "end of file") == 0);
}

/* The expected-token set, as a membership table over symbol kinds. */
typedef struct {
  bool has[YYNTOKENS];
} token_set;

static bool want(const token_set *s, int token) {
  yysymbol_kind_t k = YYTRANSLATE(token);
  return k >= 0 && k < YYNTOKENS && s->has[k];
}

/* Operators and '[' could continue almost any expression; listing them in "expected"
 * would only hide what the user most likely left out. */
static bool is_continuation(yysymbol_kind_t k) {
  return k == YYTRANSLATE('+') || k == YYTRANSLATE('-') || k == YYTRANSLATE('*') ||
         k == YYTRANSLATE('/') || k == YYTRANSLATE('[');
}

/* The set without operators (when anything else remains). */
static int essential_count(const token_set *s) {
  int n = 0;
  for (int k = 0; k < YYNTOKENS; k++)
    if (s->has[k] && !is_continuation(k)) n++;
  return n;
}

static bool only(const token_set *s, int token) {
  return want(s, token) && essential_count(s) == 1;
}

static const char *keyword_name(int kind) {
  switch (kind) {
  case TOK_INPUT: return "input";
  case TOK_LATENT: return "latent";
  case TOK_CODE: return "code";
  default: return "?";
  }
}

static void note_open(parse_state *ps, MIG_LTYPE loc, char c) {
  diag_note(ps->diag, span_of(ps, loc), "to match this '%c'", c);
}

/* "expected ')' to close the call to 'dense'" when the innermost open bracket can be
 * closed here. */
static bool report_unclosed(parse_state *ps, const token_set *s, const lex_token *found) {
  lex_state *ls = ps->lex;
  if (ls->depth <= 0 || ls->depth > MIG_MAX_NESTING) return false;
  const open_bracket *b = &ls->open[ls->depth - 1];
  char close = b->open == '(' ? ')' : ']';
  if (!want(s, close)) return false;
  msg_buf m = {0};
  bool comma = want(s, ',') && !is_end(found) && found->kind != TOK_NL;
  if (comma) msg_add(&m, "expected ',' or '%c' ", close);
  else msg_add(&m, "expected '%c' to close ", close);
  switch (b->role) {
  case OPEN_CALL: msg_add(&m, "%sthe call to '", comma ? "in " : ""); break;
  case OPEN_NET_PARAMS: msg_add(&m, "%sthe parameters of net '", comma ? "in " : ""); break;
  case OPEN_STEP_NETS: msg_add(&m, "%sthe nets of step '", comma ? "in " : ""); break;
  default:
    if (comma) msg_add(&m, "in the list");
    else msg_add(&m, "'%c'", b->open);
    break;
  }
  if (b->role != OPEN_GROUP) {
    msg_text(&m, b->name, b->name_len);
    msg_add(&m, "'");
  }
  msg_found(&m, found);
  diag_error(ps->diag, span_of(ps, found->loc), "%s", m.buf);
  note_open(ps, b->loc, b->open);
  return true;
}

/* The end of the file inside a block: the '}' was never written. */
static bool report_unclosed_block(parse_state *ps, const token_set *s, const lex_token *found) {
  lex_state *ls = ps->lex;
  if (ls->braces <= 0 || !is_end(found) || !want(s, '}')) return false;
  msg_buf m = {0};
  char owner[96];
  lex_block_owner(ls, owner, sizeof owner);
  msg_add(&m, "expected '}' to close %s", owner);
  msg_found(&m, found);
  diag_error(ps->diag, span_of(ps, found->loc), "%s", m.buf);
  note_open(ps, ls->brace_loc, '{');
  return true;
}

/* Messages that name what the declaration being parsed needs next. Returns true when
 * the message is complete without ", found X" (or, left empty, when the error is a
 * cascade of the last one and is not reported). */
static bool report_in_context(parse_state *ps, const token_set *s, msg_buf *m) {
  const lex_state *ls = ps->lex;
  const lex_token *prev = &ls->prev;
  if (want(s, TOK_MODEL)) {
    msg_add(m, "expected 'model NAME' at the start of the file");
    return true;
  }
  if (want(s, TOK_INPUT) && ps->skipping) return true;
  if (want(s, TOK_INPUT)) {
    msg_add(m, "expected a declaration (input, latent, code, const, net, train, generate "
               "or encode)");
    return false;
  }
  if (want(s, TOK_RETURN)) {
    msg_add(m, "expected a statement or '}'");
    return false;
  }
  if (want(s, TOK_NUMBER)) {
    msg_add(m, "expected an expression");
    msg_after(m, prev);
    return false;
  }
  if (want(s, TOK_WITH)) {
    msg_add(m, "expected 'with' and an optimizer after the objective");
    return false;
  }
  if (prev->kind == TOK_TRAIN && want(s, TOK_IDENT) && want(s, '{')) {
    msg_add(m, "expected 'batch' or '{' after 'train'");
    return false;
  }
  if (only(s, ':') && prev->kind == TOK_IDENT &&
      (ls->decl_kind == TOK_INPUT || ls->decl_kind == TOK_LATENT ||
       ls->decl_kind == TOK_CODE)) {
    msg_add(m, "expected ':' after the %s name", keyword_name(ls->decl_kind));
    return false;
  }
  if (only(s, '=') && prev->kind == TOK_IDENT && ls->decl_kind == TOK_CONST) {
    msg_add(m, "expected '=' after the constant name");
    return false;
  }
  if (only(s, '(') && prev->kind == TOK_IDENT && ls->decl_kind == TOK_NET) {
    msg_add(m, "expected '(' after the net name");
    return false;
  }
  if (only(s, '{') && (ls->decl_kind == TOK_NET || ls->decl_kind == TOK_TRAIN)) {
    msg_add(m, "expected '{' to start the body of ");
    if (ls->decl_kind == TOK_NET && ls->decl_name) {
      msg_add(m, "net '");
      msg_text(m, ls->decl_name, ls->decl_name_len);
      msg_add(m, "'");
    } else {
      msg_add(m, "'train'");
    }
    return false;
  }
  if (only(s, TOK_IDENT) && prev->kind == ':' &&
      (ls->decl_kind == TOK_LATENT || ls->decl_kind == TOK_CODE)) {
    msg_add(m, "expected a distribution such as uniform(-1, 1) after ':'");
    return false;
  }
  if (only(s, TOK_IDENT) && prev->kind == TOK_WITH) {
    msg_add(m, "expected an optimizer call after 'with'");
    return false;
  }
  if (only(s, TOK_IDENT)) {
    msg_add(m, "expected a name");
    msg_after(m, prev);
    return false;
  }
  return false;
}

/* "expected A, B or C", operators left out unless they are all there is. */
static void msg_expected_list(msg_buf *m, const token_set *s) {
  bool all = essential_count(s) == 0;
  int shown[8], n = 0;
  for (int k = 0; k < YYNTOKENS && n < 8; k++)
    if (s->has[k] && (all || !is_continuation(k)) && k != YYSYMBOL_YYerror &&
        k != YYSYMBOL_YYUNDEF)
      shown[n++] = k;
  if (n == 0) {
    msg_add(m, "syntax error");
    return;
  }
  msg_add(m, "expected ");
  for (int i = 0; i < n; i++) {
    if (i > 0) msg_add(m, i == n - 1 ? " or " : ", ");
    msg_add(m, "%s", yysymbol_name((yysymbol_kind_t)shown[i]));
  }
}

static int yyreport_syntax_error(const yypcontext_t *ctx, void *scanner, parse_state *ps) {
  (void)scanner;
  yysymbol_kind_t expected[YYNTOKENS];
  int n = yypcontext_expected_tokens(ctx, expected, YYNTOKENS);
  token_set s = {{0}};
  for (int i = 0; i < n; i++) s.has[expected[i]] = true;

  const lex_token *found = &ps->lex->cur;
  if (report_unclosed_block(ps, &s, found) || report_unclosed(ps, &s, found)) return 0;
  msg_buf m = {0};
  bool complete = report_in_context(ps, &s, &m);
  if (complete && m.n == 0) return 0; /* a cascade from the last error */
  if (m.n == 0) msg_expected_list(&m, &s);
  if (!complete) msg_found(&m, found);
  diag_error(ps->diag, span_of(ps, found->loc), "%s", m.buf);
  return 0;
}

/* Bison calls this only when its stack is full, which only nesting can do. */
static void mig_error(MIG_LTYPE *loc, void *scanner, parse_state *ps, const char *msg) {
  (void)scanner;
  if (strcmp(msg, "memory exhausted") == 0)
    diag_error(ps->diag, span_of(ps, *loc), "expressions nested too deeply (limit %d)",
               MIG_MAX_NESTING);
  else
    diag_error(ps->diag, span_of(ps, *loc), "%s", msg);
}

/* ---- parse_source, parse_file ---------------------------------------------------------- */

#define MAX_SOURCE_BYTES (16u << 20)

/* Parses len bytes (NULs included: they are reported as stray characters). */
static ast_file *parse_bytes(diag_sink *d, const char *path, const char *text, size_t len) {
  ast_file *f = calloc(1, sizeof *f);
  if (!f) return NULL;
  f->path = diag_add_source(d, path, text);
  lex_state ls = {.text = text, .len = len, .path = f->path, .file = f, .diag = d};
  parse_state ps = {.file = f, .diag = d, .lex = &ls};
  void *scanner = lex_open(&ls);
  if (!scanner) {
    ast_free(f);
    return NULL;
  }
  mig_parse(scanner, &ps);
  lex_close(scanner);
  return f;
}

ast_file *parse_source(diag_sink *d, const char *path, const char *text) {
  return parse_bytes(d, path, text, strlen(text));
}

static const ir_span no_span = {0};

/* Reads at most MAX_SOURCE_BYTES + 1 bytes, so that pipes and devices without a size
 * are bounded too. Returns the bytes (NUL-terminated) or NULL with errno set. */
static char *read_source(FILE *fp, size_t *len, bool *too_big) {
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap + 1);
  *too_big = false;
  while (buf) {
    if (n == cap) {
      if (cap > MAX_SOURCE_BYTES) {
        *too_big = true;
        break;
      }
      cap *= 2;
      char *bigger = realloc(buf, cap + 1);
      if (!bigger) {
        free(buf);
        return NULL;
      }
      buf = bigger;
    }
    size_t k = fread(buf + n, 1, cap - n, fp);
    n += k;
    if (k == 0) {
      if (ferror(fp)) {
        int e = errno;
        free(buf);
        errno = e ? e : EIO;
        return NULL;
      }
      break;
    }
  }
  if (!buf) return NULL;
  if (n > MAX_SOURCE_BYTES) *too_big = true;
  buf[n] = '\0';
  *len = n;
  return buf;
}

ast_file *parse_file(diag_sink *d, const char *path) {
  FILE *fp = fopen(path, "rb");
  if (!fp) {
    diag_error(d, no_span, "cannot open '%s': %s", path, strerror(errno));
    return NULL;
  }
  size_t len = 0;
  bool too_big = false;
  errno = 0;
  char *text = read_source(fp, &len, &too_big);
  int err = errno;
  fclose(fp);
  if (!text) {
    diag_error(d, no_span, "cannot read '%s': %s", path, strerror(err ? err : EIO));
    return NULL;
  }
  if (too_big) {
    diag_error(d, no_span, "'%s' is larger than 16 MiB; model files are limited to 16 MiB",
               path);
    free(text);
    return NULL;
  }
  ast_file *f = parse_bytes(d, path, text, len);
  free(text);
  return f;
}
