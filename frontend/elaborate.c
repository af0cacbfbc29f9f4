/* elaborate.c: AST to IR. Resolves names, evaluates constants, declares inputs,
 * inlines every net call (parameters are made by a layer call site the first time it
 * runs and shared by every later call), and builds the entry functions:
 *   train_step  every `step` in order; block k ends with step k's update
 *   generate    `generate NAMES = EXPR`, batchnorm with running statistics
 *   encode      `encode NAMES = EXPR`, likewise
 * Every error is reported against the model source, with notes saying where the
 * shapes involved came from. Errors produce poison values so one mistake is
 * reported once, and elaboration goes on to find the next. */
#include "elab.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- values ------------------------------------------------------------------------ */

value val_poison(void) { return (value){.kind = VAL_POISON}; }

static value val_num(double v, bool is_int, ir_span span) {
  return (value){.kind = VAL_NUM, .num = v, .is_int = is_int, .span = span, .origin = span};
}

value val_node(elab *e, int node, ir_span span, ir_span origin, const char *whence) {
  (void)e;
  return (value){.kind = VAL_NODE, .node = node, .span = span, .origin = origin,
                 .whence = whence};
}

const char *pool_printf(elab *e, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return ast_strdup((ast_file *)e->file, buf, (size_t)(n < (int)sizeof buf ? n : (int)sizeof buf - 1));
}

const ir_node *node_of(elab *e, value v) { return &e->f->nodes[v.node]; }

void user_shape(elab *e, value v, char *buf, size_t n) {
  if (v.kind == VAL_NODE)
    shape_user_str(node_of(e, v)->shape, buf, n);
  else if (v.kind == VAL_NUM)
    snprintf(buf, n, "a number");
  else if (v.kind == VAL_TUPLE)
    snprintf(buf, n, "%d results", v.nitems);
  else
    snprintf(buf, n, "not a tensor");
}

static const char *kind_name(val_kind k) {
  static const char *names[] = {"an erroneous value", "a number", "a tensor",
                                "several results", "a string", "a list"};
  return names[k];
}

/* Notes where a tensor's shape came from, if that is somewhere else than `here`. */
static void note_origin(elab *e, value v, const char *what) {
  if (v.kind != VAL_NODE || !v.origin.file) return;
  char sh[128];
  user_shape(e, v, sh, sizeof sh);
  if (v.whence)
    diag_note(e->d, v.origin, "%s is %s, %s here", what, sh, v.whence);
  else if (v.origin.line != v.span.line || v.origin.col != v.span.col)
    diag_note(e->d, v.origin, "%s gets its shape %s here", what, sh);
}

bool need_tensor(elab *e, value v, const char *what) {
  if (v.kind == VAL_POISON) return false;
  if (v.kind == VAL_NODE) return true;
  diag_error(e->d, v.span, "%s must be a tensor, got %s", what, kind_name(v.kind));
  return false;
}

bool need_num(elab *e, value v, const char *what, double *out) {
  if (v.kind == VAL_POISON) return false;
  if (v.kind != VAL_NUM) {
    diag_error(e->d, v.span, "%s must be a number known when compiling, got %s", what,
               kind_name(v.kind));
    return false;
  }
  *out = v.num;
  return true;
}

bool need_int(elab *e, value v, const char *what, int64_t *out) {
  double x;
  if (!need_num(e, v, what, &x)) return false;
  if (!v.is_int || x != floor(x) || fabs(x) > 9.0e15) {
    diag_error(e->d, v.span, "%s must be a whole number, got %g", what, x);
    return false;
  }
  *out = (int64_t)x;
  return true;
}

int input_of(elab *e, value v) {
  if (v.kind != VAL_NODE) return -1;
  const ir_node *n = node_of(e, v);
  return n->op == IR_OP_INPUT ? e->f->inputs[n->i[0]] : -1;
}

int current_net(elab *e) {
  if (e->depth == 0) return -1;
  const ast_decl *d = e->stack[e->depth - 1].decl;
  for (int i = 0; i < e->m->nnets; i++)
    if (e->nets[i] == d) return i;
  return -1;
}

/* ---- state and nodes ------------------------------------------------------------- */

/* Has a step recorded so far updated `var` at the end of block `since` or later? */
static bool updated_since(elab *e, int var, int since) {
  const ir_var *v = &e->m->vars[var];
  if (v->kind != VAR_PARAM) return false;
  for (int s = 0; s < e->f->nsteps; s++) {
    const ir_step *st = &e->f->steps[s];
    if (st->block < since) continue;
    for (int j = 0; j < st->nnets; j++)
      if (st->nets[j] == v->net) return true;
  }
  return false;
}

/* Variables are made while functions are built, so the load cache grows with them. */
static void ensure_load_cache(elab *e, int var) {
  if (var < e->nload) return;
  int n = var + 64;
  e->load_node = realloc(e->load_node, (size_t)n * sizeof(int));
  for (int i = e->nload; i < n; i++) e->load_node[i] = -1;
  e->nload = n;
}

int load_var(elab *e, int var) {
  ensure_load_cache(e, var);
  int cached = e->load_node[var];
  if (cached >= 0 && !updated_since(e, var, e->f->nodes[cached].block)) return cached;
  const ir_var *v = &e->m->vars[var];
  ir_attrs a = {.ashape = v->shape, .dtype = v->dtype, .var = var};
  int id = ir_emit_checked(e->f, e->f->nblocks - 1, IR_OP_LOAD, NULL, 0, &a);
  e->f->nodes[id].label = v->name;
  e->load_node[var] = id;
  return id;
}

void store_var(elab *e, int var, int node) {
  ir_attrs a = {.var = var};
  int id = ir_emit_checked(e->f, e->f->nblocks - 1, IR_OP_STORE, &node, 1, &a);
  e->f->nodes[id].label = e->m->vars[var].name;
  ensure_load_cache(e, var);
  e->load_node[var] = -1; /* later reads must see the store */
}

int const_node(elab *e, double v, ir_span at) {
  ir_attrs a = {.f = {v}};
  int id = ir_emit_checked(e->f, e->f->nblocks - 1, IR_OP_CONST, NULL, 0, &a);
  e->f->nodes[id].span = at;
  return id;
}

value emit_op(elab *e, ir_op op, const value *const *args, int nargs, const ir_attrs *a,
              ir_span at, const char *label) {
  int in[64] = {0};
  if (nargs > 64) {
    diag_error(e->d, at, "%s takes at most 64 operands here, got %d", ir_ops[op].name, nargs);
    return val_poison();
  }
  for (int j = 0; j < nargs; j++) {
    if (args[j]->kind == VAL_POISON) return val_poison();
    if (args[j]->kind == VAL_NUM)
      in[j] = const_node(e, args[j]->num, args[j]->span);
    else if (args[j]->kind == VAL_NODE)
      in[j] = args[j]->node;
    else {
      diag_error(e->d, args[j]->span, "expected a tensor or a number, got %s",
                 kind_name(args[j]->kind));
      return val_poison();
    }
  }
  char err[512];
  int bad;
  int id = ir_emit(e->f, op, in, nargs, a, at, err, sizeof err, &bad);
  if (id < 0) {
    diag_error(e->d, at, "%s", err);
    for (int j = 0; j < nargs; j++)
      if (bad < 0 || bad == j) note_origin(e, *args[j], nargs > 1 ? "this operand" : "the input");
    return val_poison();
  }
  e->f->nodes[id].label = label;
  return val_node(e, id, at, at, NULL);
}

/* ---- names ----------------------------------------------------------------------- */

static binding *scope_add(scope *s, const char *name, ir_span span) {
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 16;
    s->items = realloc(s->items, (size_t)s->cap * sizeof *s->items);
  }
  binding *b = &s->items[s->n++];
  memset(b, 0, sizeof *b);
  b->name = name;
  b->span = span;
  b->visible = s->n - 1;
  return b;
}

static binding *scope_find(scope *s, const char *name, int limit) {
  if (!s) return NULL;
  for (int i = (limit < s->n ? limit : s->n) - 1; i >= 0; i--)
    if (strcmp(s->items[i].name, name) == 0) return &s->items[i];
  return NULL;
}

/* The visibility limit of lookups in e->locals while a lazy binding is computed. */
static int visible_limit = 1 << 30;

/* "did you mean" the candidate nearest to name (edit distance under 3, and less than
 * name's length), if any */
static void suggest_from(elab *e, const char *name, ir_span span, const char *const *cands,
                         int nc) {
  const char *best = NULL;
  int bestd = 3;
  for (int i = 0; i < nc; i++) {
    int dist = edit_distance(name, cands[i]);
    if (dist < bestd && (int)strlen(name) > dist) bestd = dist, best = cands[i];
  }
  if (best) diag_note(e->d, span, "did you mean '%s'?", best);
}

static void suggest(elab *e, const char *name, ir_span span) {
  const char *cands[512];
  int nc = 0;
  if (e->locals)
    for (int i = 0; i < e->locals->n && nc < 500; i++) cands[nc++] = e->locals->items[i].name;
  for (int i = 0; i < e->consts.n && nc < 500; i++) cands[nc++] = e->consts.items[i].name;
  for (int i = 0; i < e->m->ninputs && nc < 500; i++) cands[nc++] = e->m->inputs[i].name;
  for (int i = 0; i < e->m->nnets && nc < 500; i++) cands[nc++] = e->m->nets[i];
  for (int i = 0; i < nbuiltins && nc < 510; i++) cands[nc++] = builtins[i].name;
  suggest_from(e, name, span, cands, nc);
}

static int find_net(elab *e, const char *name) {
  for (int i = 0; i < e->m->nnets; i++)
    if (strcmp(e->m->nets[i], name) == 0) return i;
  return -1;
}

value input_value(elab *e, int idx, ir_span at) {
  const ir_input *in = &e->m->inputs[idx];
  if (e->input_node[idx] < 0) {
    ir_func *f = e->f;
    f->inputs = realloc(f->inputs, (size_t)(f->ninputs + 1) * sizeof *f->inputs);
    f->inputs[f->ninputs] = idx;
    ir_attrs a = {.i = {f->ninputs}, .ashape = in->shape, .dtype = in->dtype};
    f->ninputs++;
    int id = ir_emit_checked(f, f->nblocks - 1, IR_OP_INPUT, NULL, 0, &a);
    f->nodes[id].span = in->span;
    f->nodes[id].label = in->name;
    e->input_node[idx] = id;
  }
  static const char *kinds[] = {"input", "latent", "code", "seed", "labels input"};
  return val_node(e, e->input_node[idx], at, in->span,
                  pool_printf(e, "the %s %s, declared", kinds[in->kind], in->name));
}

static value eval_binding(elab *e, binding *b);

static value lookup(elab *e, const char *name, ir_span at) {
  binding *b = scope_find(e->locals, name, visible_limit);
  if (b) {
    b->used = true;
    value v = eval_binding(e, b);
    v.span = at;
    return v;
  }
  b = scope_find(&e->consts, name, 1 << 30);
  if (b) {
    b->used = true;
    value v = b->val;
    v.span = at;
    return v;
  }
  int idx = ir_find_input(e->m, name);
  if (idx >= 0) {
    if (e->depth > 0) {
      static const char *kinds[] = {"input", "latent", "code", "seed", "labels input"};
      diag_error(e->d, at, "net %s uses the %s '%s' without taking it as a parameter",
                 e->stack[e->depth - 1].decl->name.name, kinds[e->m->inputs[idx].kind], name);
      diag_note(e->d, e->stack[e->depth - 1].decl->name.span,
                "add '%s' to %s's parameters and pass it in the call", name,
                e->stack[e->depth - 1].decl->name.name);
      return val_poison();
    }
    return input_value(e, idx, at);
  }
  if (find_net(e, name) >= 0) {
    diag_error(e->d, at, "'%s' is a net; call it with its inputs, e.g. %s(...)", name, name);
    return val_poison();
  }
  if (builtin_find(name)) {
    diag_error(e->d, at, "'%s' is a built-in function; call it with arguments", name);
    return val_poison();
  }
  diag_error(e->d, at, "unknown name '%s'", name);
  suggest(e, name, at);
  return val_poison();
}

/* ---- staleness of lazy train-block bindings ---------------------------------------- */

/* True when node id, or a node it reaches through operands, satisfies hit; seen marks
 * the nodes visited. A loop with an explicit stack, not recursion: the IR of a long
 * chain of statements is as deep as the chain is long. */
static bool reaches(elab *e, int id, char *seen, bool (*hit)(elab *, const ir_node *, const void *),
                    const void *ctx) {
  if (seen[id]) return false;
  int *stack = malloc(sizeof *stack * (size_t)(e->f->nnodes + 1));
  int top = 0;
  bool found = false;
  seen[id] = 1;
  stack[top++] = id;
  while (top > 0 && !found) {
    const ir_node *n = &e->f->nodes[stack[--top]];
    found = hit(e, n, ctx);
    for (int j = 0; j < n->nin; j++) {
      int in = ir_operand(n, j);
      if (!seen[in]) {
        seen[in] = 1;
        stack[top++] = in;
      }
    }
  }
  free(stack);
  return found;
}

static bool is_stale_load(elab *e, const ir_node *n, const void *ctx) {
  (void)ctx;
  return n->op == IR_OP_LOAD && updated_since(e, n->var, n->block);
}

static bool node_stale(elab *e, int id, char *seen) {
  return reaches(e, id, seen, is_stale_load, NULL);
}

static bool value_stale(elab *e, value v, char *seen) {
  if (v.kind == VAL_NODE) return node_stale(e, v.node, seen);
  if (v.kind == VAL_TUPLE)
    for (int i = 0; i < v.nitems; i++)
      if (value_stale(e, v.items[i], seen)) return true;
  return false;
}

static value destructure(elab *e, value v, const ast_stmt *s, int item, bool report);

/* A lazy binding's value, computed now if it never was or if a step has since
 * changed a parameter it reads: each step sees the parameters earlier steps set.
 * The names of one assignment (a, b = Q(f)) share one computation, kept by the
 * first of them (they are added to the scope side by side). */
static value eval_binding(elab *e, binding *b) {
  if (!b->stmt) return b->val;
  binding *head = b - b->item;
  if (head->evaluated) {
    char *seen = calloc((size_t)e->f->nnodes + 1, 1);
    bool stale = value_stale(e, head->whole, seen);
    free(seen);
    if (!stale) return destructure(e, head->whole, b->stmt, b->item, false);
  }
  int saved = visible_limit;
  visible_limit = b->visible;
  head->whole = eval_expr(e, b->stmt->values[0]);
  visible_limit = saved;
  head->evaluated = true;
  if (e->ncomputed == e->capcomputed) {
    e->capcomputed = e->capcomputed ? 2 * e->capcomputed : 64;
    e->computed = realloc(e->computed, (size_t)e->capcomputed * sizeof *e->computed);
  }
  e->computed[e->ncomputed++] = head;
  /* Report a mismatch once, when the statement is first computed. */
  for (int k = 0; k < b->stmt->nnames; k++) destructure(e, head->whole, b->stmt, k, k == 0);
  return destructure(e, head->whole, b->stmt, b->item, false);
}

/* Item `item` of an assignment's value: `a, b = Q(f)` takes a tuple apart. A
 * mismatch is reported only when `report` is set. */
static value destructure(elab *e, value v, const ast_stmt *s, int item, bool report) {
  if (v.kind == VAL_POISON) return v;
  if (s->nnames == 1) {
    if (v.kind == VAL_TUPLE) {
      if (report)
        diag_error(e->d, s->names[0].span,
                   "this gives %d results; bind each to a name (a, b = ...) or pick one "
                   "with [i]", v.nitems);
      return val_poison();
    }
    return v;
  }
  if (v.kind != VAL_TUPLE || v.nitems != s->nnames) {
    if (report)
      diag_error(e->d, s->span, "%d names on the left but the right gives %s", s->nnames,
                 v.kind == VAL_TUPLE ? pool_printf(e, "%d results", v.nitems)
                                     : "one result");
    return val_poison();
  }
  return v.items[item];
}

/* ---- expressions ------------------------------------------------------------------- */

static value call_net(elab *e, int net, const ast_expr *call);

static value eval_binary(elab *e, const ast_expr *x) {
  value l = eval_expr(e, x->lhs), r = eval_expr(e, x->rhs);
  if (l.kind == VAL_POISON || r.kind == VAL_POISON) return val_poison();
  if (l.kind == VAL_NUM && r.kind == VAL_NUM) {
    double v = 0;
    switch (x->op) {
    case '+': v = l.num + r.num; break;
    case '-': v = l.num - r.num; break;
    case '*': v = l.num * r.num; break;
    case '/':
      if (r.num == 0) {
        diag_error(e->d, x->rhs->span, "division by zero in a constant expression");
        return val_poison();
      }
      v = l.num / r.num;
      break;
    }
    bool is_int = l.is_int && r.is_int && (x->op != '/' || fmod(l.num, r.num) == 0);
    if (is_int && fabs(v) > 9.0e15) {
      diag_error(e->d, x->span, "constant expression overflows");
      return val_poison();
    }
    return val_num(v, is_int, x->span);
  }
  ir_op op = x->op == '+' ? IR_OP_ADD : x->op == '-' ? IR_OP_SUB
           : x->op == '*' ? IR_OP_MUL : IR_OP_DIV;
  const value *args[2] = {&l, &r};
  return emit_op(e, op, args, 2, NULL, x->span, NULL);
}

static value eval_list(elab *e, const ast_expr *x) {
  value v = {.kind = VAL_LIST, .span = x->span, .origin = x->span, .nitems = x->nitems};
  v.items = ast_alloc((ast_file *)e->file, (size_t)(x->nitems ? x->nitems : 1) * sizeof(value));
  for (int i = 0; i < x->nitems; i++) {
    v.items[i] = eval_expr(e, x->items[i]);
    if (v.items[i].kind == VAL_POISON) return val_poison();
    if (v.items[i].kind != VAL_NUM) {
      diag_error(e->d, x->items[i]->span, "list items must be numbers known when compiling");
      return val_poison();
    }
  }
  return v;
}

static value eval_repeat(elab *e, const ast_expr *call);

static value eval_call(elab *e, const ast_expr *x) {
  int net = find_net(e, x->name);
  if (net >= 0) return call_net(e, net, x);
  if (!strcmp(x->name, "repeat")) return eval_repeat(e, x);
  const builtin *b = builtin_find(x->name);
  if (!b) {
    if (scope_find(e->locals, x->name, visible_limit) || scope_find(&e->consts, x->name, 1 << 30) ||
        ir_find_input(e->m, x->name) >= 0)
      diag_error(e->d, x->name_span, "'%s' is not a function or a net", x->name);
    else {
      diag_error(e->d, x->name_span, "unknown function '%s'", x->name);
      suggest(e, x->name, x->name_span);
    }
    return val_poison();
  }
  call_args a;
  if (!bind_args(e, b, x, &a)) {
    free(a.rest);
    return val_poison();
  }
  value v = b->fn(e, &a);
  free(a.rest);
  if (v.kind != VAL_POISON) v.span = x->span;
  return v;
}

/* Evaluation recurses through nested expressions (at most MIG_MAX_NESTING deep), net
 * calls (at most 64 deep) and names of the train block bound to earlier names
 * (evaluated when first used). Each is bounded, their product is not: the whole
 * recursion is, so that no file can overflow the stack. */
#define MAX_EVAL_DEPTH 1024

static value eval_expr_here(elab *e, const ast_expr *x);

value eval_expr(elab *e, const ast_expr *x) {
  if (e->eval_depth >= MAX_EVAL_DEPTH) {
    if (!e->eval_too_deep)
      diag_error(e->d, x->span, "evaluating this goes more than %d levels deep (expressions "
                 "inside expressions, names defined from other names, nets calling nets); "
                 "split it into fewer, flatter steps", MAX_EVAL_DEPTH);
    e->eval_too_deep = true;
    return val_poison();
  }
  e->eval_depth++;
  value v = eval_expr_here(e, x);
  e->eval_depth--;
  return v;
}

static value eval_expr_here(elab *e, const ast_expr *x) {
  switch (x->kind) {
  case EXPR_NUM: return val_num(x->num, x->is_int, x->span);
  case EXPR_STRING:
    return (value){.kind = VAL_STRING, .str = x->str, .span = x->span, .origin = x->span};
  case EXPR_NAME: return lookup(e, x->name, x->span);
  case EXPR_CALL: return eval_call(e, x);
  case EXPR_LIST: return eval_list(e, x);
  case EXPR_NEG: {
    value v = eval_expr(e, x->lhs);
    if (v.kind == VAL_NUM) return val_num(-v.num, v.is_int, x->span);
    const value *args[1] = {&v};
    return emit_op(e, IR_OP_NEG, args, 1, NULL, x->span, NULL);
  }
  case EXPR_BINARY: return eval_binary(e, x);
  case EXPR_INDEX: {
    value base = eval_expr(e, x->lhs);
    value idx = eval_expr(e, x->rhs);
    int64_t i;
    if (base.kind == VAL_POISON || !need_int(e, idx, "an index", &i)) return val_poison();
    if (base.kind != VAL_TUPLE) {
      diag_error(e->d, x->span, "only the results of a net can be indexed; to take part of "
                                "a tensor use slice(x, start, end, axis=...)");
      return val_poison();
    }
    if (i < 0 || i >= base.nitems) {
      diag_error(e->d, x->rhs->span, "index %lld is out of range: there are %d results",
                 (long long)i, base.nitems);
      return val_poison();
    }
    value v = base.items[i];
    v.span = x->span;
    return v;
  }
  }
  return val_poison();
}

/* ---- nets -------------------------------------------------------------------------- */

/* Checks a tensor argument against the net's declared parameter shape, or against
 * the first call, whose shapes the net's parameters were made for. */
static bool check_net_arg(elab *e, int net, const ast_decl *d, int j, value arg,
                          bool instance) {
  if (arg.kind != VAL_NODE) return true;
  const ir_node copy = *node_of(e, arg), *n = &copy;
  const ast_param *p = &d->params[j];
  char got[128], want[128];
  user_shape(e, arg, got, sizeof got);
  if (p->shape) {
    value sv = eval_expr(e, p->shape);
    if (sv.kind != VAL_LIST) return sv.kind == VAL_POISON;
    int64_t dims[IR_MAX_RANK];
    bool ok = sv.nitems + 1 <= IR_MAX_RANK;
    for (int i = 0; ok && i < sv.nitems; i++) ok = need_int(e, sv.items[i], "a dimension", &dims[i]);
    if (!ok) return false;
    ir_shape decl = shape_make(sv.nitems, dims, false);
    shape_user_str(decl, want, sizeof want);
    int off = n->shape.batched ? 1 : 0;
    bool match = n->shape.rank - off == sv.nitems;
    for (int i = 0; match && i < sv.nitems; i++) match = n->shape.dim[i + off] == dims[i];
    if (!match) {
      diag_error(e->d, arg.span, "%s's parameter '%s' is declared %s, but this argument is %s",
                 d->name.name, p->name.name, want, got);
      diag_note(e->d, p->shape->span, "%s declared here", p->name.name);
      note_origin(e, arg, "the argument");
      return false;
    }
  }
  net_first_call *fc = &e->first_call[net];
  if (!instance && fc->called && j < fc->nargs && fc->dtypes[j] != (ir_dtype)-1) {
    if (!shape_equal(fc->shapes[j], n->shape) || fc->dtypes[j] != n->dtype) {
      shape_user_str(fc->shapes[j], want, sizeof want);
      diag_error(e->d, arg.span,
                 "%s is called here with %s for '%s', but its parameters were made for %s",
                 d->name.name, got, p->name.name, want);
      diag_note(e->d, fc->span, "the first call of %s, which fixed its shapes, is here",
                d->name.name);
      note_origin(e, arg, "the argument");
      return false;
    }
  }
  return true;
}

static void record_first_call(elab *e, int net, const value *args, int nargs, ir_span span) {
  net_first_call *fc = &e->first_call[net];
  if (fc->called) return;
  fc->called = true;
  fc->span = span;
  fc->nargs = nargs;
  fc->shapes = calloc((size_t)(nargs ? nargs : 1), sizeof *fc->shapes);
  fc->dtypes = calloc((size_t)(nargs ? nargs : 1), sizeof *fc->dtypes);
  for (int j = 0; j < nargs; j++) {
    if (args[j].kind == VAL_NODE) {
      fc->shapes[j] = node_of(e, args[j])->shape;
      fc->dtypes[j] = node_of(e, args[j])->dtype;
    } else {
      fc->dtypes[j] = (ir_dtype)-1;
    }
  }
}

static value run_net_body(elab *e, const ast_decl *d, scope *sc);

/* A name that becomes one part of parameter names (a layer's or an instance's name=):
 * 1 to max letters, digits and '_'. */
static bool is_part_name(const char *s, size_t max) {
  size_t n = strlen(s);
  if (n == 0 || n > max) return false;
  for (const char *p = s; *p; p++)
    if (!(*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
          (*p >= '0' && *p <= '9')))
      return false;
  return true;
}

/* Runs net `net` on evaluated arguments. With `instance` (name= or repeat), its
 * layers get parameters of their own, owned by the calling net and named
 * CALLER.INSTANCE.LAYER; without, the net's own shared parameters. */
static value invoke_net(elab *e, int net, ir_span span, const value *args,
                        const char *instance) {
  const ast_decl *d = e->nets[net];
  for (int i = 0; i < e->depth; i++)
    if (e->stack[i].decl == d) {
      diag_error(e->d, span, "net %s calls itself; nets cannot be recursive", d->name.name);
      return val_poison();
    }
  if (e->depth >= 64) {
    diag_error(e->d, span, "nets nested more than 64 calls deep");
    return val_poison();
  }
  if (!instance) record_first_call(e, net, args, d->nparams, span);
  e->net_used[net] = true;

  scope sc = {0};
  for (int j = 0; j < d->nparams; j++) {
    binding *b = scope_add(&sc, d->params[j].name.name, d->params[j].name.span);
    b->val = args[j];
    b->used = true;
  }
  const char *saved_instance = e->instance;
  int saved_owner = e->instance_owner;
  if (instance) {
    e->instance_owner = saved_instance ? saved_owner : current_net(e);
    e->instance = saved_instance ? pool_printf(e, "%s.%s", saved_instance, instance) : instance;
  } else {
    e->instance = NULL, e->instance_owner = -1;
  }
  e->stack[e->depth++] = (call_frame){d, current_net(e), span};
  scope *saved_locals = e->locals;
  int saved_limit = visible_limit;
  e->locals = &sc;
  visible_limit = 1 << 30;
  value r = run_net_body(e, d, &sc);
  visible_limit = saved_limit;
  e->locals = saved_locals;
  e->depth--;
  e->instance = saved_instance, e->instance_owner = saved_owner;
  free(sc.items);
  return r;
}

/* An instance's name becomes part of parameter names, as a layer's name= does. */
static bool instance_name(elab *e, const ast_expr *x, const char **out) {
  value v = eval_expr(e, x);
  bool valid = v.kind == VAL_STRING && is_part_name(v.str, 47);
  if (!valid && v.kind != VAL_POISON)
    diag_error(e->d, x->span, "name= takes a string of letters, digits and '_' (at most 47), "
                              "e.g. name=\"block1\"");
  *out = valid ? v.str : NULL;
  return valid;
}

/* Instances of a net belong to the net that makes them. */
static bool inside_a_net(elab *e, const ast_expr *call, const char *what) {
  if (current_net(e) >= 0) return true;
  diag_error(e->d, call->span, "%s makes an instance of a net with parameters of its own, "
                               "which belong to the net that makes it: use it inside a net",
             what);
  return false;
}

static value call_net(elab *e, int net, const ast_expr *call) {
  const ast_decl *d = e->nets[net];
  const char *instance = NULL;
  int npos = 0;
  bool ok = true;
  for (int j = 0; j < call->nargs; j++) {
    if (!call->args[j].key) {
      npos++;
    } else if (!strcmp(call->args[j].key, "name")) {
      ok &= instance_name(e, call->args[j].value, &instance) &&
            inside_a_net(e, call, "a net call with name=");
    } else {
      diag_error(e->d, call->args[j].key_span, "arguments of nets are positional; the one "
                                               "keyword is name=, an instance's name");
      ok = false;
    }
  }
  if (!ok) return val_poison();
  if (npos != d->nparams) {
    diag_error(e->d, call->span, "%s takes %d argument%s, got %d", d->name.name, d->nparams,
               d->nparams == 1 ? "" : "s", npos);
    diag_note(e->d, d->name.span, "%s is declared here", d->name.name);
    return val_poison();
  }
  value *args = calloc((size_t)(npos ? npos : 1), sizeof *args);
  for (int j = 0, k = 0; j < call->nargs; j++) {
    if (call->args[j].key) continue;
    value *a = &args[k];
    *a = eval_expr(e, call->args[j].value);
    if (a->kind == VAL_POISON) ok = false;
    else if (a->kind != VAL_NODE && a->kind != VAL_NUM) {
      diag_error(e->d, a->span, "a net's argument must be a tensor or a number, got %s",
                 kind_name(a->kind));
      ok = false;
    } else if (!check_net_arg(e, net, d, k, *a, instance != NULL)) {
      ok = false;
    }
    k++;
  }
  value r = ok ? invoke_net(e, net, call->span, args, instance) : val_poison();
  free(args);
  return r;
}

/* repeat(NET, n, x, more..., name="NAME"): NET applied n times, x feeding the first
 * call and each result the next (x_{k+1} = NET(x_k, more...)), every call an instance
 * of its own named NAME0 .. NAME{n-1} (NET's name by default). */
static value eval_repeat(elab *e, const ast_expr *call) {
  const char *name = NULL;
  const ast_expr *pos[64];
  int npos = 0;
  bool ok = inside_a_net(e, call, "repeat");
  for (int j = 0; ok && j < call->nargs; j++) {
    if (!call->args[j].key) {
      if (npos < 64) pos[npos] = call->args[j].value;
      npos++;
    } else if (!strcmp(call->args[j].key, "name")) {
      ok = instance_name(e, call->args[j].value, &name);
    } else {
      diag_error(e->d, call->args[j].key_span, "repeat takes NET, n, x, NET's other "
                                               "arguments, and name=");
      ok = false;
    }
  }
  if (!ok) return val_poison();
  int net = npos >= 1 && pos[0]->kind == EXPR_NAME ? find_net(e, pos[0]->name) : -1;
  if (npos < 3 || npos > 64 || net < 0) {
    diag_error(e->d, npos >= 1 && net < 0 ? pos[0]->span : call->span,
               npos >= 1 && net < 0 ? "repeat's first argument must name a net"
                                    : "repeat takes a net, a count and the net's arguments, "
                                      "e.g. repeat(res, 4, h)");
    return val_poison();
  }
  const ast_decl *d = e->nets[net];
  if (npos - 2 != d->nparams) {
    diag_error(e->d, call->span, "%s takes %d argument%s, got %d", d->name.name, d->nparams,
               d->nparams == 1 ? "" : "s", npos - 2);
    diag_note(e->d, d->name.span, "%s is declared here", d->name.name);
    return val_poison();
  }
  int64_t n;
  if (!need_int(e, eval_expr(e, pos[1]), "repeat's count", &n)) return val_poison();
  if (n < 1 || n > 64) {
    diag_error(e->d, pos[1]->span, "repeat's count must be from 1 to 64, got %lld",
               (long long)n);
    return val_poison();
  }
  value args[64];
  for (int j = 2; j < npos; j++) {
    args[j - 2] = eval_expr(e, pos[j]);
    if (args[j - 2].kind == VAL_POISON ||
        !check_net_arg(e, net, d, j - 2, args[j - 2], true))
      return val_poison();
  }
  if (args[0].kind != VAL_NODE) {
    diag_error(e->d, pos[2]->span, "repeat feeds this argument through the calls, so it must "
                                   "be a tensor");
    return val_poison();
  }
  value v = val_poison();
  for (int64_t k = 0; k < n; k++) {
    const char *inst = pool_printf(e, "%s%lld", name ? name : d->name.name, (long long)k);
    v = invoke_net(e, net, call->span, args, inst);
    if (v.kind == VAL_POISON) return v;
    if (v.kind != VAL_NODE) {
      diag_error(e->d, call->span, "repeat feeds %s's result to its next call, so %s must "
                                   "return one tensor", d->name.name, d->name.name);
      return val_poison();
    }
    if (k + 1 < n && !check_net_arg(e, net, d, 0, v, true)) return val_poison();
    args[0] = v;
  }
  return v;
}

static value returned(elab *e, const ast_decl *d, const ast_stmt *s) {
  value *vals = ast_alloc((ast_file *)e->file, (size_t)s->nvalues * sizeof(value));
  for (int i = 0; i < s->nvalues; i++) {
    vals[i] = eval_expr(e, s->values[i]);
    if (vals[i].kind == VAL_POISON) return val_poison();
    if (vals[i].kind == VAL_NODE) {
      vals[i].origin = s->values[i]->span;
      vals[i].whence = s->nvalues > 1 ? pool_printf(e, "result %d of %s, returned", i, d->name.name)
                                       : pool_printf(e, "the output of %s, returned", d->name.name);
    }
  }
  if (s->nvalues == 1) return vals[0];
  return (value){.kind = VAL_TUPLE, .items = vals, .nitems = s->nvalues, .span = s->span,
                 .origin = s->span};
}

static value run_net_body(elab *e, const ast_decl *d, scope *sc) {
  for (int i = 0; i < d->nbody; i++) {
    const ast_stmt *s = &d->body[i];
    switch (s->kind) {
    case STMT_ASSIGN: {
      value v = eval_expr(e, s->values[0]);
      for (int k = 0; k < s->nnames; k++) {
        binding *b = scope_add(sc, s->names[k].name, s->names[k].span);
        b->val = destructure(e, v, s, k, k == 0);
        b->used = true;
      }
      break;
    }
    case STMT_RETURN:
      if (i + 1 < d->nbody)
        diag_error(e->d, d->body[i + 1].span, "this comes after 'return' in net %s and would "
                                              "never run", d->name.name);
      return returned(e, d, s);
    case STMT_STEP:
    case STMT_REPORT:
      diag_error(e->d, s->span, "'%s' belongs in the train block, not in a net",
                 s->kind == STMT_STEP ? "step" : "report");
      return val_poison();
    }
  }
  diag_error(e->d, d->name.span, "net %s does not return anything; end it with 'return ...'",
             d->name.name);
  return val_poison();
}

/* ---- layer call sites ------------------------------------------------------------- */

/* Layers make parameters; each kind numbers its calls in a net from 0 (G.conv1) under
 * its prefix. */
static const char *const layer_kinds[][2] = {
    {"dense", "dense"}, {"conv", "conv"},     {"deconv", "deconv"}, {"batchnorm", "bn"},
    {"layernorm", "ln"}, {"instancenorm", "in"}, {"groupnorm", "gn"}, {"embedding", "emb"},
};
enum { NLAYER_KINDS = sizeof layer_kinds / sizeof layer_kinds[0] };

static int layer_kind(const char *name) {
  for (int k = 0; k < NLAYER_KINDS; k++)
    if (!strcmp(name, layer_kinds[k][0])) return k;
  return -1;
}

static bool is_layer(const char *name) { return layer_kind(name) >= 0; }

static void number_layers_in(elab *e, int net, const ast_expr *x, int *counts) {
  if (!x) return;
  if (x->kind == EXPR_CALL && is_layer(x->name)) {
    const char *prefix = layer_kinds[layer_kind(x->name)][1];
    int *c = &counts[layer_kind(x->name)];
    char name[96];
    snprintf(name, sizeof name, "%s%d", prefix, (*c)++);
    const ast_expr *given = NULL;
    for (int j = 0; j < x->nargs; j++)
      if (x->args[j].key && !strcmp(x->args[j].key, "name")) given = x->args[j].value;
    if (given && given->kind == EXPR_STRING) {
      if (!is_part_name(given->str, 63))
        diag_error(e->d, given->span, "a layer name must be letters, digits and '_' "
                                      "(at most 63 characters)");
      else
        snprintf(name, sizeof name, "%s", given->str);
      for (int i = 0; i < e->nlayers; i++)
        if (e->layers[i].net == net && !strcmp(e->layers[i].name, name)) {
          diag_error(e->d, given->span, "%s already has a layer named '%s'", e->m->nets[net],
                     name);
          diag_note(e->d, e->layers[i].call->span, "the other one is here");
        }
    } else if (given) {
      diag_error(e->d, given->span, "name= takes a string, e.g. name=\"fc1\"");
    }
    e->layers = realloc(e->layers, (size_t)(e->nlayers + 1) * sizeof *e->layers);
    layer_site *l = &e->layers[e->nlayers++];
    memset(l, 0, sizeof *l);
    l->call = x;
    l->net = net;
    l->name = strdup(name);
    for (int k = 0; k < 4; k++) l->vars[k] = -1;
  }
  number_layers_in(e, net, x->lhs, counts);
  number_layers_in(e, net, x->rhs, counts);
  for (int j = 0; j < x->nargs; j++) number_layers_in(e, net, x->args[j].value, counts);
  for (int j = 0; j < x->nitems; j++) number_layers_in(e, net, x->items[j], counts);
}

/* Layers are numbered per kind in source order (dense0, dense1, conv0, bn0, ...), so
 * parameter names do not depend on which net happens to be called first. */
static void number_layers(elab *e, int net) {
  int counts[NLAYER_KINDS] = {0};
  const ast_decl *d = e->nets[net];
  for (int i = 0; i < d->nbody; i++)
    for (int k = 0; k < d->body[i].nvalues; k++)
      number_layers_in(e, net, d->body[i].values[k], counts);
}

/* ---- declarations ------------------------------------------------------------------ */

typedef struct {
  const char *name;
  ir_span span;
  const char *what;
} declared_name;

static bool declare_name(elab *e, declared_name *names, int *n, const char *name,
                         ir_span span, const char *what) {
  for (int i = 0; i < *n; i++)
    if (!strcmp(names[i].name, name)) {
      diag_error(e->d, span, "'%s' is already declared as %s", name, names[i].what);
      diag_note(e->d, names[i].span, "the first declaration is here");
      return false;
    }
  if (builtin_find(name)) {
    diag_error(e->d, span, "'%s' is the name of a built-in function; choose another name",
               name);
    return false;
  }
  names[(*n)++] = (declared_name){name, span, what};
  return true;
}

static void eval_consts(elab *e) {
  for (int i = 0; i < e->file->ndecls; i++) {
    const ast_decl *d = &e->file->decls[i];
    if (d->kind != DECL_CONST) continue;
    value v = eval_expr(e, d->value);
    if (v.kind != VAL_NUM && v.kind != VAL_POISON) {
      diag_error(e->d, d->value->span, "a constant must be a number known when compiling");
      v = val_poison();
    }
    if (e->opt && e->opt->overrides)
      for (int k = 0; k < e->opt->overrides->n; k++) {
        const_override *o = &e->opt->overrides->items[k];
        if (strcmp(o->name, d->name.name)) continue;
        o->used = true;
        if (v.kind == VAL_NUM && v.is_int && !o->is_int) {
          diag_error(e->d, d->name.span,
                     "-D %s=%g: '%s' is a whole number in the model, so the value must be too",
                     o->name, o->value, o->name);
          continue;
        }
        v = val_num(o->value, o->is_int, d->value->span);
      }
    binding *b = scope_add(&e->consts, d->name.name, d->name.span);
    b->val = v;
    b->val.origin = d->span;
  }
  if (e->opt && e->opt->overrides)
    for (int k = 0; k < e->opt->overrides->n; k++)
      if (!e->opt->overrides->items[k].used) {
        ir_span none = {0};
        char list[256] = "";
        for (int i = 0; i < e->consts.n; i++)
          snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                   e->consts.items[i].name);
        diag_error(e->d, none, "-D %s: the model has no constant named '%s'%s%s",
                   e->opt->overrides->items[k].name, e->opt->overrides->items[k].name,
                   e->consts.n ? "; its constants are: " : " (it declares none)", list);
      }
}

/* Reads a shape list into dims; every dimension a positive whole number. */
static bool eval_dims(elab *e, const ast_expr *x, int64_t *dims, int *rank, int max_rank) {
  value v = eval_expr(e, x);
  if (v.kind == VAL_POISON) return false;
  if (v.kind != VAL_LIST) {
    diag_error(e->d, x->span, "expected a shape such as [1, 28, 28]");
    return false;
  }
  if (v.nitems > max_rank) {
    diag_error(e->d, x->span, "shapes have at most %d dimensions here, got %d", max_rank,
               v.nitems);
    return false;
  }
  int64_t total = 1;
  for (int i = 0; i < v.nitems; i++) {
    if (!need_int(e, v.items[i], "a dimension", &dims[i])) return false;
    if (dims[i] < 1) {
      diag_error(e->d, x->items[i]->span, "a dimension must be at least 1, got %lld",
                 (long long)dims[i]);
      return false;
    }
    if (dims[i] > (1LL << 31) || (total *= dims[i]) > (1LL << 34)) {
      diag_error(e->d, x->span, "this shape is too large");
      return false;
    }
  }
  *rank = v.nitems;
  return true;
}

static ir_shape batched_shape(int64_t batch, const int64_t *dims, int rank) {
  int64_t all[IR_MAX_RANK];
  all[0] = batch;
  for (int i = 0; i < rank; i++) all[i + 1] = dims[i];
  return shape_make(rank + 1, all, true);
}

static const builtin dist_table[] = {
    {"uniform", "low, high", NULL, "uniform on [low, high)"},
    {"normal", "mean=0, std=1", NULL, "normal"},
    {"categorical", "k", NULL, "one of k values, uniformly"},
    {"bernoulli", "p=0.5", NULL, "1 with probability p, else 0"},
};

static bool declare_latent(elab *e, const ast_decl *d, ir_input *in) {
  const ast_expr *x = d->dist;
  if (x->kind != EXPR_CALL) {
    diag_error(e->d, x->span, "expected a distribution: uniform(a, b), normal(mean, std), "
                              "categorical(k) or bernoulli(p)");
    return false;
  }
  const builtin *b = NULL;
  for (size_t i = 0; i < sizeof dist_table / sizeof *dist_table; i++)
    if (!strcmp(dist_table[i].name, x->name)) b = &dist_table[i];
  if (!b) {
    diag_error(e->d, x->name_span, "unknown distribution '%s'; expected uniform, normal, "
                                   "categorical or bernoulli", x->name);
    return false;
  }
  call_args a;
  bool ok = bind_args(e, b, x, &a);
  free(a.rest);
  if (!ok) return false;
  int64_t dims[IR_MAX_RANK] = {0};
  int rank = 0;
  if (d->shape && !eval_dims(e, d->shape, dims, &rank, IR_MAX_RANK - 1)) return false;
  in->dtype = IR_F32;
  if (b == &dist_table[0]) {
    in->dist = DIST_UNIFORM;
    if (!need_num(e, a.args[0], "low", &in->a) || !need_num(e, a.args[1], "high", &in->b))
      return false;
    if (!(in->a < in->b)) {
      diag_error(e->d, x->span, "uniform(low, high) needs low < high");
      return false;
    }
  } else if (b == &dist_table[1]) {
    in->dist = DIST_NORMAL;
    if (!need_num(e, a.args[0], "mean", &in->a) || !need_num(e, a.args[1], "std", &in->b))
      return false;
    if (!(in->b > 0)) {
      diag_error(e->d, x->span, "normal(mean, std) needs std > 0");
      return false;
    }
  } else if (b == &dist_table[2]) {
    int64_t k;
    in->dist = DIST_CATEGORICAL;
    in->dtype = IR_I32;
    if (!need_int(e, a.args[0], "k", &k)) return false;
    if (k < 2 || k > 1000000) {
      diag_error(e->d, x->span, "categorical(k) needs 2 <= k <= 1000000, got %lld", (long long)k);
      return false;
    }
    in->a = (double)k;
    if (d->shape) {
      diag_error(e->d, d->shape->span, "a categorical %s is one value per sample and takes "
                                       "no shape; use onehot(%s) for a vector",
                 d->kind == DECL_CODE ? "code" : "latent", d->name.name);
      return false;
    }
  } else {
    in->dist = DIST_BERNOULLI;
    if (!need_num(e, a.args[0], "p", &in->a)) return false;
    if (!(in->a >= 0 && in->a <= 1)) {
      diag_error(e->d, x->span, "bernoulli(p) needs 0 <= p <= 1");
      return false;
    }
  }
  if (in->dist != DIST_CATEGORICAL && !d->shape) {
    diag_error(e->d, d->name.span, "%s '%s' needs a shape, e.g. %s(...) [62]",
               d->kind == DECL_CODE ? "code" : "latent", d->name.name, x->name);
    return false;
  }
  in->shape = batched_shape(e->m->batch, dims, rank);
  return true;
}

/* `input y : [] labels K`: the data set's labels, K classes, beside the data input. */
static bool declare_labels(elab *e, const ast_decl *d, const ast_option *o, int rank,
                           ir_input *in) {
  int64_t k;
  if (d->noptions != 1) {
    diag_error(e->d, d->options[d->noptions - 1].key.span,
               "a labels input takes no other option");
    return false;
  }
  if (!need_int(e, eval_expr(e, o->value), "labels", &k)) return false;
  if (k < 2 || k > 1 << 20) {
    diag_error(e->d, o->value->span, "labels K needs 2 <= K <= %d classes", 1 << 20);
    return false;
  }
  if (rank != 0) {
    diag_error(e->d, d->shape->span, "a labels input holds one label per sample: declare it "
                                     "[], e.g. input y : [] labels %lld", (long long)k);
    return false;
  }
  in->kind = INPUT_LABEL;
  in->dtype = IR_I32;
  in->dist = DIST_CATEGORICAL;
  in->a = (double)k;
  in->shape = batched_shape(e->m->batch, NULL, 0);
  return true;
}

static bool declare_data(elab *e, const ast_decl *d, ir_input *in) {
  int64_t dims[IR_MAX_RANK];
  int rank;
  if (!eval_dims(e, d->shape, dims, &rank, IR_MAX_RANK - 1)) return false;
  for (int i = 0; i < d->noptions; i++)
    if (!strcmp(d->options[i].key.name, "labels"))
      return declare_labels(e, d, &d->options[i], rank, in);
  in->dtype = IR_F32;
  in->a = 0;
  in->b = 1;
  for (int i = 0; i < d->noptions; i++) {
    const ast_option *o = &d->options[i];
    value v = eval_expr(e, o->value);
    if (v.kind == VAL_POISON) return false;
    if (!strcmp(o->key.name, "range")) {
      if (v.kind != VAL_LIST || v.nitems != 2) {
        diag_error(e->d, o->value->span, "range takes [low, high], e.g. range [-1, 1]");
        return false;
      }
      in->a = v.items[0].num;
      in->b = v.items[1].num;
      if (!(in->a < in->b)) {
        diag_error(e->d, o->value->span, "range [low, high] needs low < high");
        return false;
      }
    } else if (!strcmp(o->key.name, "pad")) {
      if (!need_int(e, v, "pad", &in->pad)) return false;
      if (in->pad < 0 || rank != 3 || 2 * in->pad >= dims[1] || 2 * in->pad >= dims[2]) {
        diag_error(e->d, o->value->span, "pad N needs an image input [C,H,W] larger than 2N "
                                         "in height and width");
        return false;
      }
    } else {
      diag_error(e->d, o->key.span, "unknown input option '%s'; expected range, pad or labels",
                 o->key.name);
      return false;
    }
  }
  in->shape = batched_shape(e->m->batch, dims, rank);
  return true;
}

static void declare_inputs(elab *e) {
  for (int i = 0; i < e->file->ndecls; i++) {
    const ast_decl *d = &e->file->decls[i];
    if (d->kind != DECL_INPUT && d->kind != DECL_LATENT && d->kind != DECL_CODE) continue;
    ir_input in = {0};
    in.name = d->name.name;
    in.span = d->name.span;
    in.kind = d->kind == DECL_INPUT ? INPUT_DATA : d->kind == DECL_CODE ? INPUT_CODE
                                                                        : INPUT_LATENT;
    bool ok = d->kind == DECL_INPUT ? declare_data(e, d, &in) : declare_latent(e, d, &in);
    if (ok && shape_numel_checked(in.shape) < 0) {
      char sh[160];
      shape_user_str(in.shape, sh, sizeof sh);
      diag_error(e->d, d->name.span, "%s is %s per sample, at batch %lld more than 2^40 values, "
                 "the most a tensor may hold", d->name.name, sh, (long long)e->m->batch);
      ok = false;
    }
    if (!ok) {
      /* Declare it anyway (scalar) so later uses do not add "unknown name" errors. */
      in.dtype = IR_F32;
      in.dist = DIST_NONE;
      in.shape = batched_shape(e->m->batch, NULL, 0);
    }
    int idx = ir_add_input(e->m, &in);
    e->input_decl = realloc(e->input_decl, (size_t)(idx + 1) * sizeof *e->input_decl);
    e->input_decl[idx] = d;
  }
}

static const ast_decl *find_train(elab *e) {
  const ast_decl *t = NULL;
  for (int i = 0; i < e->file->ndecls; i++) {
    const ast_decl *d = &e->file->decls[i];
    if (d->kind != DECL_TRAIN) continue;
    if (t) {
      diag_error(e->d, d->span, "a model has one train block");
      diag_note(e->d, t->span, "the first is here");
    } else {
      t = d;
    }
  }
  return t;
}

static void eval_batch(elab *e, const ast_decl *train) {
  e->m->batch = 64;
  if (train && train->value) {
    int64_t b;
    if (need_int(e, eval_expr(e, train->value), "the batch size", &b)) {
      if (b < 1 || b > (1 << 20))
        diag_error(e->d, train->value->span, "the batch size must be between 1 and %d, got %lld",
                   1 << 20, (long long)b);
      else
        e->m->batch = b;
    }
  }
  if (e->opt && e->opt->batch > 0) e->m->batch = e->opt->batch;
}

/* ---- functions ---------------------------------------------------------------------- */

static void begin_func(elab *e, const char *name, bool training) {
  e->f = ir_add_func(e->m, name, training);
  free(e->input_node);
  e->input_node = malloc((size_t)(e->m->ninputs + 1) * sizeof(int));
  for (int i = 0; i < e->m->ninputs + 1; i++) e->input_node[i] = -1;
  free(e->load_node);
  e->load_node = NULL;
  e->nload = 0;
}

/* Inputs in declaration order, whatever order the body first used them in, so a
 * caller passes them the same way for every model. */
static void sort_func_inputs(ir_func *f) {
  int n = f->ninputs;
  int *newpos = malloc((size_t)(n ? n : 1) * sizeof *newpos);
  for (int i = 0; i < n; i++) {
    newpos[i] = 0;
    for (int j = 0; j < n; j++)
      if (f->inputs[j] < f->inputs[i]) newpos[i]++;
  }
  int *sorted = malloc((size_t)(n ? n : 1) * sizeof *sorted);
  for (int i = 0; i < n; i++) sorted[newpos[i]] = f->inputs[i];
  if (n) memcpy(f->inputs, sorted, (size_t)n * sizeof *sorted);
  for (int id = 0; id < f->nnodes; id++)
    if (f->nodes[id].op == IR_OP_INPUT) f->nodes[id].i[0] = newpos[f->nodes[id].i[0]];
  free(sorted);
  free(newpos);
}

static value eval_scalar_objective(elab *e, const ast_expr *x, const char *what) {
  value v = eval_expr(e, x);
  if (v.kind == VAL_POISON) return v;
  if (v.kind != VAL_NODE) {
    diag_error(e->d, x->span, "%s must be a tensor computed from the model, got %s", what,
               kind_name(v.kind));
    return val_poison();
  }
  const ir_node *n = node_of(e, v);
  if (n->shape.rank != 0 || n->dtype != IR_F32) {
    char sh[128];
    shape_str(n->shape, sh, sizeof sh);
    diag_error(e->d, x->span, "%s must be a scalar, but this is %s%s; reduce it, e.g. with "
                              "mean(...)", what, n->dtype == IR_I32 ? "an integer " : "", sh);
    note_origin(e, v, "it");
    return val_poison();
  }
  return v;
}

typedef struct {
  const int *nets;
  int nnets;
} net_set;

static bool loads_param_of(elab *e, const ir_node *n, const void *ctx) {
  const net_set *ns = ctx;
  if (n->op != IR_OP_LOAD || e->m->vars[n->var].kind != VAR_PARAM) return false;
  for (int j = 0; j < ns->nnets; j++)
    if (e->m->vars[n->var].net == ns->nets[j]) return true;
  return false;
}

static bool depends_on_nets(elab *e, int id, const int *nets, int nnets, char *seen) {
  net_set ns = {nets, nnets};
  return reaches(e, id, seen, loads_param_of, &ns);
}

static const builtin optim_table[] = {
    {"adam", "lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0, ~schedule=, warmup=0, ema=0, "
             "every=1",
     NULL, "Adam"},
    {"sgd", "lr, momentum=0, weight_decay=0, ~schedule=, warmup=0, ema=0, every=1", NULL,
     "SGD with momentum"},
};

/* schedule=constant(), linear(steps, end=0) or cosine(steps, end=0); warmup=W; ema=D;
 * every=K (the slots after schedule's) */
static bool eval_schedule(elab *e, const call_args *oa, int slot, ir_optim *o) {
  static const builtin scheds[] = {
      {"constant", "", NULL, ""}, {"linear", "steps, end=0", NULL, ""},
      {"cosine", "steps, end=0", NULL, ""}};
  double w;
  if (!need_num(e, oa->args[slot + 3], "every", &o->every)) return false;
  if (!(o->every >= 1 && o->every <= 1e6 && o->every == (double)(int64_t)o->every)) {
    diag_error(e->d, oa->args[slot + 3].span,
               "every is how many training steps apart the updates are, a whole number "
               "from 1; got %g", o->every);
    return false;
  }
  if (!need_num(e, oa->args[slot + 2], "ema", &o->ema)) return false;
  if (!(o->ema >= 0 && o->ema < 1)) {
    diag_error(e->d, oa->args[slot + 2].span, "ema is the average's decay, from 0 (none) up to "
                                              "1 (not included); got %g", o->ema);
    return false;
  }
  if (!need_num(e, oa->args[slot + 1], "warmup", &w)) return false;
  if (!(w >= 0 && w <= 1e9 && w == (double)(int64_t)w)) {
    diag_error(e->d, oa->args[slot + 1].span, "warmup must be a whole number of updates, got %g", w);
    return false;
  }
  o->warmup = w;
  if (!oa->given[slot]) return true;
  const ast_expr *x = oa->raw[slot];
  const builtin *b = builtin_call_in(scheds, sizeof scheds / sizeof *scheds, x);
  if (!b) {
    diag_error(e->d, x->kind == EXPR_CALL ? x->name_span : x->span,
               "expected a schedule: constant(), linear(steps, end=0) or cosine(steps, end=0)");
    return false;
  }
  call_args a;
  bool ok = bind_args(e, b, x, &a);
  free(a.rest);
  if (!ok) return false;
  o->sched = b == &scheds[0] ? SCHED_CONSTANT : b == &scheds[1] ? SCHED_LINEAR : SCHED_COSINE;
  if (o->sched == SCHED_CONSTANT) return true;
  if (!need_num(e, a.args[0], "steps", &o->sched_steps) || !need_num(e, a.args[1], "end", &o->sched_end))
    return false;
  if (!(o->sched_steps >= 1 && o->sched_steps <= 1e9 &&
        o->sched_steps == (double)(int64_t)o->sched_steps)) {
    diag_error(e->d, a.args[0].span, "steps must be a whole number of updates from 1, got %g",
               o->sched_steps);
    return false;
  }
  if (!(o->sched_end >= 0 && o->sched_end <= 1)) {
    diag_error(e->d, a.args[1].span, "end is the fraction of lr left at the end, from 0 to 1; "
                                     "got %g", o->sched_end);
    return false;
  }
  return true;
}

static bool eval_optimizer(elab *e, const ast_expr *x, ir_optim *o) {
  const builtin *b = builtin_call_in(optim_table, sizeof optim_table / sizeof *optim_table, x);
  if (!b) {
    diag_error(e->d, x->kind == EXPR_CALL ? x->name_span : x->span,
               "expected an optimizer: adam(lr, beta1, beta2, eps, weight_decay, schedule, "
               "warmup, ema, every) or sgd(lr, momentum, weight_decay, schedule, warmup, ema, "
               "every)");
    return false;
  }
  call_args a;
  bool ok = bind_args(e, b, x, &a);
  if (!ok) {
    free(a.rest);
    return false;
  }
  memset(o, 0, sizeof *o);
  ok = eval_schedule(e, &a, b == &optim_table[0] ? 5 : 3, o);
  free(a.rest);
  if (!ok) return false;
  if (b == &optim_table[0]) {
    o->kind = OPT_ADAM;
    ok = need_num(e, a.args[0], "lr", &o->lr) && need_num(e, a.args[1], "beta1", &o->beta1) &&
         need_num(e, a.args[2], "beta2", &o->beta2) && need_num(e, a.args[3], "eps", &o->eps) &&
         need_num(e, a.args[4], "weight_decay", &o->weight_decay);
    if (ok && !(o->beta1 >= 0 && o->beta1 < 1 && o->beta2 >= 0 && o->beta2 < 1 && o->eps > 0)) {
      diag_error(e->d, x->span, "adam needs 0 <= beta1, beta2 < 1 and eps > 0");
      ok = false;
    }
  } else {
    o->kind = OPT_SGD;
    ok = need_num(e, a.args[0], "lr", &o->lr) &&
         need_num(e, a.args[1], "momentum", &o->momentum) &&
         need_num(e, a.args[2], "weight_decay", &o->weight_decay);
    if (ok && !(o->momentum >= 0 && o->momentum < 1)) {
      diag_error(e->d, x->span, "sgd needs 0 <= momentum < 1");
      ok = false;
    }
  }
  if (ok && !(o->lr > 0)) {
    diag_error(e->d, x->span, "the learning rate must be positive, got %g", o->lr);
    ok = false;
  }
  return ok;
}

static void train_step_stmt(elab *e, const ast_stmt *s) {
  ir_func *f = e->f;
  for (int i = 0; i < f->nsteps; i++)
    if (!strcmp(f->steps[i].name, s->step.name)) {
      diag_error(e->d, s->step.span, "there is already a step named '%s'", s->step.name);
      return;
    }
  int *nets = malloc((size_t)(s->nnames ? s->nnames : 1) * sizeof *nets);
  int nn = 0;
  bool ok = true;
  for (int j = 0; j < s->nnames; j++) {
    int net = find_net(e, s->names[j].name);
    if (net < 0) {
      diag_error(e->d, s->names[j].span, "'%s' is not a net; a step names the nets it trains",
                 s->names[j].name);
      /* a step names nets: suggest only nets (anything else would be refused too) */
      suggest_from(e, s->names[j].name, s->names[j].span, (const char *const *)e->m->nets,
                   e->m->nnets);
      ok = false;
      continue;
    }
    for (int k = 0; k < nn; k++)
      if (nets[k] == net) {
        diag_error(e->d, s->names[j].span, "%s is named twice", s->names[j].name);
        ok = false;
      }
    nets[nn++] = net;
  }
  ir_optim opt;
  if (!eval_optimizer(e, s->optimizer, &opt)) ok = false;
  value loss = eval_scalar_objective(e, s->values[0], "the objective of a step");
  if (loss.kind == VAL_POISON || !ok) {
    free(nets);
    return;
  }
  char *seen = calloc((size_t)f->nnodes + 1, 1);
  bool depends = depends_on_nets(e, loss.node, nets, nn, seen);
  free(seen);
  if (!depends) {
    diag_error(e->d, s->values[0]->span,
               "the objective of step %s does not depend on any parameter of the nets it "
               "trains", s->step.name);
    free(nets);
    return;
  }
  /* each named net must be trained by the objective: naming one it never reaches is a
   * mistake (a typo of another net, or a call left out), not a choice */
  for (int j = 0; j < nn && ok; j++) {
    bool has_params = false;
    for (int v = 0; v < e->m->nvars; v++)
      has_params |= e->m->vars[v].kind == VAR_PARAM && e->m->vars[v].net == nets[j];
    if (e->net_used[nets[j]] && !has_params) continue; /* no parameters: nothing to train */
    seen = calloc((size_t)f->nnodes + 1, 1);
    bool reached = depends_on_nets(e, loss.node, &nets[j], 1, seen);
    free(seen);
    if (reached) continue;
    diag_error(e->d, s->names[j].span, "the objective of step %s does not depend on the "
               "parameters of net %s; call %s in it or leave %s out of the step", s->step.name,
               e->m->nets[nets[j]], e->m->nets[nets[j]], e->m->nets[nets[j]]);
    ok = false;
  }
  if (!ok) {
    free(nets);
    return;
  }
  if (s->maximize) {
    const value *args[1] = {&loss};
    loss = emit_op(e, IR_OP_NEG, args, 1, NULL, s->values[0]->span, NULL);
  }
  f->steps = realloc(f->steps, (size_t)(f->nsteps + 1) * sizeof *f->steps);
  f->steps[f->nsteps++] = (ir_step){strdup(s->step.name), f->nblocks - 1, loss.node, nets, nn,
                                    opt, false, s->span};
  char out[160];
  snprintf(out, sizeof out, "%s.loss", s->step.name);
  ir_add_output(f, out, loss.node);
  f->nblocks++; /* what follows sees this step's updated parameters */
}

static void train_report(elab *e, const ast_stmt *s, int stmt_index) {
  for (int j = 0; j < s->nnames; j++) {
    binding *b = scope_find(e->locals, s->names[j].name, stmt_index);
    if (!b) {
      diag_error(e->d, s->names[j].span, "report names a binding of the train block; '%s' "
                                         "is not bound before this line", s->names[j].name);
      continue;
    }
    b->used = true;
    ast_expr fake = {.kind = EXPR_NAME, .name = (char *)s->names[j].name,
                     .span = s->names[j].span};
    int saved = visible_limit;
    visible_limit = stmt_index;
    value v = eval_scalar_objective(e, &fake, "a reported value");
    visible_limit = saved;
    if (v.kind == VAL_NODE) {
      for (int k = 0; k < e->f->noutputs; k++)
        if (!strcmp(e->f->outputs[k].name, s->names[j].name))
          diag_error(e->d, s->names[j].span, "'%s' is reported twice", s->names[j].name);
      ir_add_output(e->f, s->names[j].name, v.node);
    }
  }
}

/* Bindings nothing used were never computed, so their mistakes were never seen.
 * Compute each once to report them, then drop what that added to the function: an
 * unused binding must not change the program (nor update running statistics). */
static void check_unused(elab *e, scope *sc) {
  ir_func *f = e->f;
  for (int i = 0; i < sc->n; i++) {
    binding *b = &sc->items[i];
    binding *head = b - b->item;
    if (!b->stmt || head->evaluated) continue;
    /* Past the depth limit, every unused binding of a long chain would run down it
     * again: a quadratic amount of work to repeat one error. */
    if (e->eval_too_deep) break;
    int mark = f->nnodes, ninputs = f->ninputs, computed = e->ncomputed;
    bool used = b->used;
    eval_binding(e, b);
    b->used = used;
    for (int id = mark; id < f->nnodes; id++) free(f->nodes[id].in_extra);
    f->nnodes = mark;
    f->ninputs = ninputs;
    for (int v = 0; v < e->nload; v++)
      if (e->load_node[v] >= mark) e->load_node[v] = -1;
    for (int k = 0; k < e->m->ninputs; k++)
      if (e->input_node[k] >= mark) e->input_node[k] = -1;
    /* The bindings it computed on the way hold dropped nodes too. */
    for (int k = computed; k < e->ncomputed; k++) e->computed[k]->evaluated = false;
    e->ncomputed = computed;
    head->evaluated = false;
  }
}

static void build_train(elab *e, const ast_decl *t) {
  begin_func(e, "train_step", true);
  scope sc = {0};
  e->locals = &sc;
  /* Bindings are declared up front (lazily computed), so `visible` marks what each
   * statement's expression may see: only names bound before it. */
  int *stmt_first = malloc((size_t)(t->nbody + 1) * sizeof *stmt_first);
  for (int i = 0; i < t->nbody; i++) {
    const ast_stmt *s = &t->body[i];
    stmt_first[i] = sc.n;
    if (s->kind == STMT_ASSIGN)
      for (int k = 0; k < s->nnames; k++) {
        int visible = stmt_first[i];
        binding *b = scope_add(&sc, s->names[k].name, s->names[k].span);
        b->stmt = s;
        b->item = k;
        b->visible = visible;
      }
  }
  for (int i = 0; i < t->nbody; i++) {
    const ast_stmt *s = &t->body[i];
    visible_limit = stmt_first[i];
    switch (s->kind) {
    case STMT_ASSIGN: break;
    case STMT_STEP: train_step_stmt(e, s); break;
    case STMT_REPORT: train_report(e, s, stmt_first[i]); break;
    case STMT_RETURN:
      diag_error(e->d, s->span, "'return' belongs in a net; the train block has steps");
      break;
    }
  }
  visible_limit = 1 << 30;
  bool wrote_step = false;
  for (int i = 0; i < t->nbody; i++) wrote_step |= t->body[i].kind == STMT_STEP;
  if (!wrote_step)
    diag_error(e->d, t->span, "the train block has no step; add one, e.g. "
                              "step g(G) : minimize loss with adam(lr=1e-3)");
  check_unused(e, &sc);
  for (int i = 0; i < sc.n && e->d->nerrors == 0; i++)
    if (!sc.items[i].used)
      diag_warning(e->d, sc.items[i].span, "'%s' is bound but never used", sc.items[i].name);
  /* A trailing block with nothing in it is not a block. */
  int last = e->f->nblocks - 1;
  bool empty = true;
  for (int id = 0; id < e->f->nnodes; id++)
    if (e->f->nodes[id].block == last) empty = false;
  if (empty && e->f->nblocks > 1) e->f->nblocks--;
  free(stmt_first);
  free(sc.items);
  e->locals = NULL;
}

static void build_entry(elab *e, const ast_decl *d, const char *name) {
  if (ir_find_func(e->m, name)) {
    diag_error(e->d, d->span, "a model has one '%s' declaration", name);
    return;
  }
  begin_func(e, name, false);
  value v = eval_expr(e, d->value);
  if (v.kind == VAL_POISON) return;
  int n = v.kind == VAL_TUPLE ? v.nitems : 1;
  if (n != d->nnames) {
    diag_error(e->d, d->span, "%d output name%s but the expression gives %d result%s",
               d->nnames, d->nnames == 1 ? "" : "s", n, n == 1 ? "" : "s");
    return;
  }
  for (int k = 0; k < n; k++) {
    value item = v.kind == VAL_TUPLE ? v.items[k] : v;
    if (!need_tensor(e, item, "an output")) return;
    ir_add_output(e->f, d->names[k].name, item.node);
  }
}

/* A net with parameters that no step names stays as initialised: worth a warning. */
static bool net_trained(elab *e, int net) {
  bool has_params = false;
  for (int v = 0; v < e->m->nvars; v++)
    has_params |= e->m->vars[v].kind == VAR_PARAM && e->m->vars[v].net == net;
  ir_func *t = ir_find_func(e->m, "train_step");
  if (!has_params || !t) return true;
  for (int s = 0; s < t->nsteps; s++)
    for (int j = 0; j < t->steps[s].nnets; j++)
      if (t->steps[s].nets[j] == net) return true;
  return false;
}

/* ---- the entry point ---------------------------------------------------------------- */

static void free_elab(elab *e) {
  free(e->input_node);
  free(e->load_node);
  for (int i = 0; i < e->m->nnets; i++) {
    free(e->first_call[i].shapes);
    free(e->first_call[i].dtypes);
  }
  free(e->first_call);
  free(e->net_used);
  for (int i = 0; i < e->nlayers; i++) free(e->layers[i].name);
  free(e->layers);
  free(e->consts.items);
  free(e->input_decl);
  free(e->nets);
  free(e->stack);
  free(e->computed);
}

ir_module *elaborate(const ast_file *file, const elab_options *opt, diag_sink *d) {
  int errors_before = d->nerrors;
  elab e = {0};
  e.instance_owner = -1;
  e.file = file;
  e.d = d;
  e.opt = opt;
  e.m = ir_module_new(file->model.name ? file->model.name : "model");
  e.stack = calloc(65, sizeof *e.stack);

  declared_name *names = calloc((size_t)file->ndecls + 1, sizeof *names);
  int nnames = 0;
  for (int i = 0; i < file->ndecls; i++) {
    const ast_decl *dc = &file->decls[i];
    static const char *what[] = {"an input", "a latent", "a code", "a constant", "a net"};
    if (dc->kind <= DECL_NET)
      declare_name(&e, names, &nnames, dc->name.name, dc->name.span, what[dc->kind]);
  }
  free(names);

  for (int i = 0; i < file->ndecls; i++)
    if (file->decls[i].kind == DECL_NET) {
      int idx = ir_add_net(e.m, file->decls[i].name.name);
      e.nets = realloc(e.nets, (size_t)(idx + 1) * sizeof *e.nets);
      e.nets[idx] = &file->decls[i];
      for (int j = 0; j < file->decls[i].nparams; j++)
        for (int k = 0; k < j; k++)
          if (!strcmp(file->decls[i].params[j].name.name, file->decls[i].params[k].name.name))
            diag_error(d, file->decls[i].params[j].name.span,
                       "parameter '%s' appears twice", file->decls[i].params[j].name.name);
    }
  e.first_call = calloc((size_t)e.m->nnets + 1, sizeof *e.first_call);
  e.net_used = calloc((size_t)e.m->nnets + 1, sizeof *e.net_used);
  for (int i = 0; i < e.m->nnets; i++) number_layers(&e, i);

  eval_consts(&e);
  const ast_decl *train = find_train(&e);
  eval_batch(&e, train);
  declare_inputs(&e);

  if (!train) {
    ir_span at = {file->path, 1, 1, 1, 1};
    diag_error(d, at, "the model has no train block; add 'train batch 64 { ... }' with at "
                      "least one step");
  } else {
    build_train(&e, train);
  }
  for (int i = 0; i < file->ndecls; i++) {
    const ast_decl *dc = &file->decls[i];
    if (dc->kind == DECL_GENERATE) build_entry(&e, dc, "generate");
    if (dc->kind == DECL_ENCODE) build_entry(&e, dc, "encode");
  }
  /* After an error, unused nets are usually its consequence: say nothing then. */
  for (int i = 0; i < e.m->nnets && d->nerrors == errors_before; i++)
    if (!e.net_used[i])
      diag_warning(d, e.nets[i]->name.span, "net %s is never called", e.m->nets[i]);
    else if (train && !net_trained(&e, i))
      diag_warning(d, e.nets[i]->name.span, "net %s has parameters but no step trains it; "
                   "name it in a step, e.g. step s(%s, ...)", e.m->nets[i], e.m->nets[i]);
  for (int f = 0; f < e.m->nfuncs; f++) sort_func_inputs(e.m->funcs[f]);
  ir_layout(e.m);
  free_elab(&e);
  char err[512];
  if (d->nerrors == errors_before && opt && !ir_memory_fits(e.m, opt->max_bytes, err, sizeof err)) {
    ir_span at = file->model.name ? file->model.span : (ir_span){file->path, 1, 1, 1, 1};
    diag_error(d, at, "%s", err);
  }
  if (d->nerrors > errors_before) {
    ir_module_free(e.m);
    return NULL;
  }
  return e.m;
}
