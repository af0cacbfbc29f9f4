/* test_parser.c: what the parser builds from valid model files: declarations,
 * statements, expressions (precedence, indexing, keyword arguments), the line rules
 * (continuations, ';', comments), literals, spans, and ast_print's exact output. */
#include "check.h"
#include "frontend/frontend.h"

#include <stdlib.h>

#include "parser_example.h"

static diag_sink diags;

/* Parses text that must have no errors; prints any it has. */
static ast_file *parse_ok(const char *text) {
  diag_free(&diags);
  diag_init(&diags);
  ast_file *f = parse_source(&diags, "test.mig", text);
  CHECK(f != NULL);
  CHECK_MSG(diags.nerrors == 0, "%d errors in:\n%s", diags.nerrors, text);
  if (diags.nerrors) diag_print(&diags, stderr, false);
  return f;
}

/* The value of `const a = EXPR`, the file's last declaration. */
static const ast_expr *const_value(ast_file *f) {
  if (!f || f->ndecls == 0) return NULL;
  const ast_decl *d = &f->decls[f->ndecls - 1];
  CHECK(d->kind == DECL_CONST);
  return d->value;
}

static bool is_name(const ast_expr *e, const char *name) {
  return e && e->kind == EXPR_NAME && strcmp(e->name, name) == 0;
}

static bool is_num(const ast_expr *e, double v, bool is_int) {
  return e && e->kind == EXPR_NUM && e->num == v && e->is_int == is_int;
}

static bool span_is(ir_span s, int line, int col, int end_line, int end_col) {
  bool ok = s.line == line && s.col == col && s.end_line == end_line && s.end_col == end_col;
  if (!ok)
    fprintf(stderr, "  span %d:%d-%d:%d, expected %d:%d-%d:%d\n", s.line, s.col, s.end_line,
            s.end_col, line, col, end_line, end_col);
  return ok;
}

static const ast_arg *kwarg(const ast_expr *call, const char *key) {
  for (int i = 0; i < call->nargs; i++)
    if (call->args[i].key && strcmp(call->args[i].key, key) == 0) return &call->args[i];
  return NULL;
}

static bool list_is(const ast_expr *e, int n, const double *v) {
  if (!e || e->kind != EXPR_LIST || e->nitems != n) return false;
  for (int i = 0; i < n; i++)
    if (!is_num(e->items[i], v[i], true)) return false;
  return true;
}

static void test_example_decls(void) {
  ast_file *f = parse_ok(example);
  CHECK_STR(f->model.name, "infogan_mnist");
  CHECK(f->ndecls == 10);
  if (f->ndecls != 10) return;
  static const ast_decl_kind kinds[] = {DECL_INPUT, DECL_LATENT, DECL_CODE, DECL_CODE,
                                        DECL_CONST, DECL_NET,    DECL_NET,  DECL_TRAIN,
                                        DECL_GENERATE, DECL_ENCODE};
  static const char *names[] = {"x", "z", "c", "s", "lambda", "G", "Q", NULL, NULL, NULL};
  for (int i = 0; i < 10; i++) {
    CHECK_MSG(f->decls[i].kind == kinds[i], "decl %d", i);
    if (names[i]) CHECK_STR(f->decls[i].name.name, names[i]);
  }
  const ast_decl *x = &f->decls[0];
  CHECK(list_is(x->shape, 3, (double[]){1, 28, 28}));
  CHECK(x->noptions == 1);
  CHECK_STR(x->options[0].key.name, "range");
  CHECK(list_is(x->options[0].value, 2, (double[]){0, 1}));

  const ast_decl *z = &f->decls[1];
  CHECK(z->dist && z->dist->kind == EXPR_CALL && strcmp(z->dist->name, "uniform") == 0);
  CHECK(z->dist->nargs == 2 && z->dist->args[0].value->kind == EXPR_NEG &&
        is_num(z->dist->args[0].value->lhs, 1, true) && is_num(z->dist->args[1].value, 1, true));
  CHECK(list_is(z->shape, 1, (double[]){62}));
  CHECK(f->decls[2].shape == NULL);
  CHECK(is_num(f->decls[4].value, 1.0, false));

  const ast_decl *g = &f->decls[5];
  CHECK(g->nparams == 3 && strcmp(g->params[2].name.name, "s") == 0 && !g->params[0].shape);
  CHECK(g->nbody == 4);
  CHECK(g->body[0].kind == STMT_ASSIGN && g->body[3].kind == STMT_RETURN);
  const ast_decl *q = &f->decls[6];
  CHECK(q->nbody == 2 && q->body[1].kind == STMT_RETURN && q->body[1].nvalues == 2);

  const ast_decl *gen = &f->decls[8];
  CHECK(gen->nnames == 1 && strcmp(gen->names[0].name, "image") == 0);
  CHECK(gen->value->kind == EXPR_CALL && gen->value->nargs == 3);
  const ast_decl *enc = &f->decls[9];
  CHECK(enc->nnames == 2 && strcmp(enc->names[0].name, "c_logits") == 0 &&
        strcmp(enc->names[1].name, "s_mean") == 0);
  ast_free(f);
}

static void test_example_train(void) {
  ast_file *f = parse_ok(example);
  if (f->ndecls != 10) return;
  const ast_decl *t = &f->decls[7];
  CHECK(is_num(t->value, 64, true));
  CHECK(t->nbody == 6);
  if (t->nbody != 6) return;
  CHECK(t->body[1].kind == STMT_ASSIGN && t->body[1].nnames == 2 &&
        strcmp(t->body[1].names[1].name, "mu") == 0);

  const ast_stmt *disc = &t->body[3];
  CHECK(disc->kind == STMT_STEP);
  CHECK_STR(disc->step.name, "disc");
  CHECK(disc->nnames == 3);
  CHECK_STR(disc->names[0].name, "body");
  CHECK_STR(disc->names[1].name, "D");
  CHECK_STR(disc->names[2].name, "Q");
  CHECK(!disc->maximize);
  CHECK(disc->nvalues == 1 && disc->values[0]->kind == EXPR_BINARY && disc->values[0]->op == '-');
  const ast_expr *opt = disc->optimizer;
  CHECK(opt && opt->kind == EXPR_CALL && strcmp(opt->name, "adam") == 0 && opt->nargs == 2);
  const ast_arg *lr = kwarg(opt, "lr"), *beta1 = kwarg(opt, "beta1");
  CHECK(lr && is_num(lr->value, 2e-4, false));
  CHECK(beta1 && is_num(beta1->value, 0.5, false));

  const ast_stmt *gen = &t->body[4];
  CHECK_STR(gen->step.name, "gen");
  CHECK(gen->nnames == 2);
  CHECK(kwarg(gen->optimizer, "lr") && is_num(kwarg(gen->optimizer, "lr")->value, 1e-3, false));
  CHECK(t->body[5].kind == STMT_REPORT && t->body[5].nnames == 1 &&
        strcmp(t->body[5].names[0].name, "mi") == 0);

  /* deconv(reshape(h, [128, 7, 7]), 64, k=4, s=2, p=1) */
  const ast_expr *deconv = f->decls[5].body[2].values[0]->args[0].value->args[0].value;
  CHECK_STR(deconv->name, "deconv");
  CHECK(deconv->nargs == 5 && deconv->args[0].key == NULL && deconv->args[1].key == NULL);
  CHECK(kwarg(deconv, "k") && is_num(kwarg(deconv, "k")->value, 4, true));
  CHECK(kwarg(deconv, "s") && is_num(kwarg(deconv, "s")->value, 2, true));
  CHECK(kwarg(deconv, "p") && is_num(kwarg(deconv, "p")->value, 1, true));
  CHECK(list_is(deconv->args[0].value->args[1].value, 3, (double[]){128, 7, 7}));

  /* info_gaussian(s, mu, std=1) */
  const ast_expr *mi = t->body[2].values[0];
  CHECK(mi->kind == EXPR_BINARY && mi->op == '+');
  CHECK(kwarg(mi->rhs, "std") && mi->rhs->args[2].key_span.col == 59);
  ast_free(f);
}

static void test_precedence(void) {
  ast_file *f = parse_ok("model m\nconst a = a - b * c\n");
  const ast_expr *e = const_value(f);
  CHECK(e->kind == EXPR_BINARY && e->op == '-' && is_name(e->lhs, "a"));
  CHECK(e->rhs->kind == EXPR_BINARY && e->rhs->op == '*' && is_name(e->rhs->lhs, "b") &&
        is_name(e->rhs->rhs, "c"));
  ast_free(f);

  f = parse_ok("model m\nconst a = -a * b\n");
  e = const_value(f);
  CHECK(e->kind == EXPR_BINARY && e->op == '*' && is_name(e->rhs, "b"));
  CHECK(e->lhs->kind == EXPR_NEG && is_name(e->lhs->lhs, "a"));
  ast_free(f);

  f = parse_ok("model m\nconst a = a - b - c\n");
  e = const_value(f);
  CHECK(e->op == '-' && e->lhs->kind == EXPR_BINARY && e->lhs->op == '-' && is_name(e->rhs, "c"));
  ast_free(f);

  f = parse_ok("model m\nconst a = a / b * c + d\n");
  e = const_value(f);
  CHECK(e->op == '+' && e->lhs->op == '*' && e->lhs->lhs->op == '/');
  ast_free(f);

  f = parse_ok("model m\nconst a = (a - b) * -c\n");
  e = const_value(f);
  CHECK(e->op == '*' && e->lhs->op == '-' && e->rhs->kind == EXPR_NEG);
  ast_free(f);

  f = parse_ok("model m\nconst a = - - a\n");
  e = const_value(f);
  CHECK(e->kind == EXPR_NEG && e->lhs->kind == EXPR_NEG && is_name(e->lhs->lhs, "a"));
  ast_free(f);
}

static void test_index(void) {
  ast_file *f = parse_ok("model m\nconst a = Q(f)[0]\n");
  const ast_expr *e = const_value(f);
  CHECK(e->kind == EXPR_INDEX && e->lhs->kind == EXPR_CALL && is_num(e->rhs, 0, true));
  CHECK(span_is(e->span, 2, 11, 2, 17));
  ast_free(f);

  f = parse_ok("model m\nconst a = -x[1][i + 1]\n");
  e = const_value(f);
  CHECK(e->kind == EXPR_NEG && e->lhs->kind == EXPR_INDEX);
  CHECK(e->lhs->lhs->kind == EXPR_INDEX && is_name(e->lhs->lhs->lhs, "x"));
  CHECK(e->lhs->rhs->kind == EXPR_BINARY);
  ast_free(f);
}

static void test_lists_and_calls(void) {
  ast_file *f = parse_ok("model m\nconst a = f([128 * 7 * 7], [], [1, 2,], g(),)\n");
  const ast_expr *e = const_value(f);
  CHECK(e->kind == EXPR_CALL && e->nargs == 4);
  const ast_expr *l = e->args[0].value;
  CHECK(l->kind == EXPR_LIST && l->nitems == 1 && l->items[0]->kind == EXPR_BINARY);
  CHECK(e->args[1].value->kind == EXPR_LIST && e->args[1].value->nitems == 0);
  CHECK(list_is(e->args[2].value, 2, (double[]){1, 2}));
  CHECK(e->args[3].value->kind == EXPR_CALL && e->args[3].value->nargs == 0);
  ast_free(f);

  f = parse_ok("model m\nnet D(img : [1, 28, 28], y) {\n  return dense(img, 1, name=\"fc1\", "
               "init=normal(0, 0.02))\n}\n");
  const ast_decl *d = &f->decls[0];
  CHECK(d->nparams == 2 && list_is(d->params[0].shape, 3, (double[]){1, 28, 28}));
  CHECK(d->params[1].shape == NULL);
  const ast_expr *call = d->body[0].values[0];
  const ast_arg *name = kwarg(call, "name"), *init = kwarg(call, "init");
  CHECK(name && name->value->kind == EXPR_STRING && strcmp(name->value->str, "fc1") == 0);
  CHECK(init && init->value->kind == EXPR_CALL && strcmp(init->value->name, "normal") == 0);
  ast_free(f);

  f = parse_ok("model m\ninput x : [3, 32, 32] range [-1, 1], pad 2\nlatent z : normal(0, 1)\n");
  CHECK(f->decls[0].noptions == 2);
  CHECK_STR(f->decls[0].options[1].key.name, "pad");
  CHECK(is_num(f->decls[0].options[1].value, 2, true));
  CHECK(f->decls[1].shape == NULL && f->decls[1].dist->kind == EXPR_CALL);
  ast_free(f);
}

/* (a) inside ( ) and [ ], (b) after , + - * / = : ( [ {, (c) before + - * / and with. */
static void test_continuations(void) {
  ast_file *f = parse_ok("model m\nconst a = f(1\n\n  , 2\n)\nconst b = [1\n, 2\n]\n");
  CHECK(f->ndecls == 2 && f->decls[0].value->nargs == 2);
  ast_free(f);

  f = parse_ok("model m\nconst a = 1 +\n  2 *\n  3\ngenerate p,\n  q =\n  G(z)\n"
               "input x :\n [1]\n");
  CHECK(f->ndecls == 3);
  CHECK(f->decls[0].value->op == '+' && f->decls[0].value->rhs->op == '*');
  CHECK(f->decls[1].nnames == 2);
  CHECK(f->decls[2].kind == DECL_INPUT);
  ast_free(f);

  f = parse_ok("model m\nconst a = 1\n  + 2  # more\n  # a comment line\n\n  - 3\n  * 4\n  / 5\n"
               "const b = 2\n");
  CHECK(f->ndecls == 2);
  const ast_expr *e = f->decls[0].value;
  CHECK(e->op == '-' && e->lhs->op == '+' && e->rhs->op == '/' && e->rhs->lhs->op == '*');
  ast_free(f);

  f = parse_ok("model m\ntrain {\n  step s(G) : maximize x\n    with sgd(lr=1)\n  report x\n}\n");
  const ast_stmt *s = &f->decls[0].body[0];
  CHECK(s->kind == STMT_STEP && s->maximize && s->optimizer && s->nnames == 1);
  CHECK(f->decls[0].value == NULL && f->decls[0].nbody == 2);
  ast_free(f);

  /* The keyword argument on its own line follows a ',' or '('. */
  f = parse_ok("model m\nconst a = f(\n  k=1,\n  s=2)\n");
  CHECK(f->decls[0].value->nargs == 2 && strcmp(f->decls[0].value->args[1].key, "s") == 0);
  ast_free(f);
}

static void test_semicolons_and_comments(void) {
  ast_file *f = parse_ok("# leading comment\n\n;model m # the name\n;;\nconst a = 1; const b = 2;\n"
                         "net F(x) { return x }\nnet E() {}\nnet H(x) { h = x; return h; }\n"
                         "# trailing comment");
  CHECK_STR(f->model.name, "m");
  CHECK(f->ndecls == 5);
  CHECK(f->decls[2].kind == DECL_NET && f->decls[2].nbody == 1);
  CHECK(f->decls[3].nparams == 0 && f->decls[3].nbody == 0);
  CHECK(f->decls[4].nbody == 2);
  ast_free(f);

  f = parse_ok("model m\r\nconst a = 1\r\n\r\n");
  CHECK(f->ndecls == 1);
  ast_free(f);

  f = parse_ok("model m");
  CHECK_STR(f->model.name, "m");
  CHECK(f->ndecls == 0);
  ast_free(f);
}

static void test_numbers_and_strings(void) {
  ast_file *f = parse_ok("model m\nconst a = f(64, 1.0, 2e-4, .5, 1e6, 9223372036854775807, 3., "
                         "2E+3, \"a\\\"b\\\\c\", \"\")\n");
  const ast_expr *e = const_value(f);
  CHECK(e->nargs == 10);
  if (e->nargs == 10) {
    CHECK(is_num(e->args[0].value, 64, true));
    CHECK(is_num(e->args[1].value, 1.0, false));
    CHECK(is_num(e->args[2].value, 2e-4, false));
    CHECK(is_num(e->args[3].value, 0.5, false));
    CHECK(is_num(e->args[4].value, 1e6, false));
    CHECK(is_num(e->args[5].value, 9223372036854775807.0, true));
    CHECK(is_num(e->args[6].value, 3, false));
    CHECK(is_num(e->args[7].value, 2000, false));
    CHECK(e->args[8].value->kind == EXPR_STRING);
    CHECK_STR(e->args[8].value->str, "a\"b\\c");
    CHECK_STR(e->args[9].value->str, "");
  }
  ast_free(f);
}

static void test_spans(void) {
  ast_file *f = parse_ok("model m\nconst a = foo(x, k=2) + 3\n");
  const ast_decl *d = &f->decls[0];
  CHECK(span_is(f->model.span, 1, 7, 1, 7));
  CHECK(span_is(d->span, 2, 1, 2, 25));
  CHECK(span_is(d->name.span, 2, 7, 2, 7));
  const ast_expr *e = d->value;
  CHECK(span_is(e->span, 2, 11, 2, 25));
  CHECK(span_is(e->lhs->span, 2, 11, 2, 21));
  CHECK(span_is(e->lhs->name_span, 2, 11, 2, 13));
  CHECK(span_is(e->lhs->args[0].value->span, 2, 15, 2, 15));
  CHECK(span_is(e->lhs->args[1].key_span, 2, 18, 2, 18));
  CHECK(span_is(e->lhs->args[1].value->span, 2, 20, 2, 20));
  CHECK(span_is(e->rhs->span, 2, 25, 2, 25));
  CHECK(!strcmp(e->span.file, "test.mig") && e->span.file == f->path);
  ast_free(f);

  f = parse_ok(example);
  if (f->ndecls == 10) {
    CHECK(span_is(f->decls[0].span, 2, 1, 2, 35));     /* input, through its option */
    CHECK(span_is(f->decls[5].span, 8, 1, 13, 1));     /* net G through '}' */
    CHECK(span_is(f->decls[5].params[1].name.span, 8, 10, 8, 10));
    const ast_stmt *disc = &f->decls[7].body[3];
    CHECK(span_is(disc->span, 22, 3, 23, 55));         /* the step and its 'with' line */
    CHECK(span_is(disc->step.span, 22, 8, 22, 11));
    CHECK(span_is(disc->optimizer->span, 23, 32, 23, 55));
    CHECK(span_is(disc->values[0]->span, 22, 36, 22, 91));
    CHECK(span_is(f->decls[7].body[1].names[1].span, 20, 11, 20, 12));
    CHECK(span_is(f->decls[1].dist->args[0].value->span, 3, 20, 3, 21)); /* -1 */
    CHECK(span_is(f->decls[1].shape->span, 3, 27, 3, 30));              /* [62] */
    CHECK(span_is(f->decls[9].span, 28, 1, 28, 36));
  }
  ast_free(f);
}

static char *print_to_string(const ast_file *f) {
  char *buf = NULL;
  size_t n = 0;
  FILE *out = open_memstream(&buf, &n);
  ast_print(f, out);
  fclose(out);
  return buf;
}

static void test_ast_print(void) {
  ast_file *f = parse_ok("model tiny\n"
                         "input x : [2] range [0, 1]\n"
                         "const k = 2.0\n"
                         "net N(a : [2], b) {\n"
                         "  h, g = f(a, -b[0], n=\"s\")\n"
                         "  return h * (g + 1)\n"
                         "}\n"
                         "train batch 8 {\n"
                         "  step s(N) : minimize N(x, x) with adam(lr=1e-3)\n"
                         "  report k\n"
                         "}\n"
                         "encode y = N(x, x)\n");
  char *got = print_to_string(f);
  const char *want = "model tiny @1:7\n"
                     "input x @2:1\n"
                     "  shape: list @2:11\n"
                     "    num 2 @2:12\n"
                     "  range: list @2:21\n"
                     "    num 0 @2:22\n"
                     "    num 1 @2:25\n"
                     "const k @3:1\n"
                     "  value: num 2.0 @3:11\n"
                     "net N @4:1\n"
                     "  param a @4:7\n"
                     "    shape: list @4:11\n"
                     "      num 2 @4:12\n"
                     "  param b @4:16\n"
                     "  assign h, g @5:3\n"
                     "    call f @5:10\n"
                     "      name a @5:12\n"
                     "      neg @5:15\n"
                     "        index @5:16\n"
                     "          name b @5:16\n"
                     "          num 0 @5:18\n"
                     "      arg n @5:22\n"
                     "        string \"s\" @5:24\n"
                     "  return @6:3\n"
                     "    binary * @6:10\n"
                     "      name h @6:10\n"
                     "      binary + @6:15\n"
                     "        name g @6:15\n"
                     "        num 1 @6:19\n"
                     "train @8:1\n"
                     "  batch: num 8 @8:13\n"
                     "  step s(N) minimize @9:3\n"
                     "    call N @9:24\n"
                     "      name x @9:26\n"
                     "      name x @9:29\n"
                     "    with: call adam @9:37\n"
                     "      arg lr @9:42\n"
                     "        num 0.001 @9:45\n"
                     "  report k @10:3\n"
                     "encode y @12:1\n"
                     "  value: call N @12:12\n"
                     "    name x @12:14\n"
                     "    name x @12:17\n";
  CHECK_STR(got, want);
  free(got);
  ast_free(f);
}

static void test_parse_file(void) {
  char path[] = "/tmp/migc_test_parser_XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  if (fd < 0) return;
  FILE *fp = fdopen(fd, "w");
  fputs(example, fp);
  fclose(fp);
  diag_sink d;
  diag_init(&d);
  ast_file *f = parse_file(&d, path);
  CHECK(f && d.nerrors == 0 && f->ndecls == 10);
  CHECK(f && strcmp(f->path, path) == 0);
  ast_free(f);
  diag_free(&d);
  remove(path);
}

int main(void) {
  diag_init(&diags);
  test_example_decls();
  test_example_train();
  test_precedence();
  test_index();
  test_lists_and_calls();
  test_continuations();
  test_semicolons_and_comments();
  test_numbers_and_strings();
  test_spans();
  test_ast_print();
  test_parse_file();
  diag_free(&diags);
  return check_done();
}
