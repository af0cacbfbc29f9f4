/* elab.h: what elaborate.c (declarations, nets, statements, expressions) and
 * builtins.c (the language's built-in functions) share. Internal to frontend/. */
#ifndef MIGC_ELAB_H
#define MIGC_ELAB_H

#include "frontend.h"

typedef enum {
  VAL_POISON, /* an error was already reported: use it silently, report nothing */
  VAL_NUM,    /* a compile-time number */
  VAL_NODE,   /* a tensor: an IR node of the current function */
  VAL_TUPLE,  /* several results of a net */
  VAL_STRING, /* a string literal (layer names) */
  VAL_LIST    /* [a, b, c] of compile-time numbers (shapes, axes, ranges) */
} val_kind;

typedef struct value value;
struct value {
  val_kind kind;
  double num;
  bool is_int;
  int node;
  value *items; /* VAL_TUPLE, VAL_LIST (allocated in the AST pool) */
  int nitems;
  const char *str;
  ir_span span;       /* the expression that produced it */
  ir_span origin;     /* where its shape was decided (a net's return, a layer) */
  const char *whence; /* a few words on the origin: "returned by G", "input x" */
};

/* A name bound in a net body or the train block. Train-block bindings are lazy:
 * computed on first use, and again once a step has updated a parameter they read. */
typedef struct {
  const char *name;
  ir_span span;
  const ast_stmt *stmt; /* the assignment, for lazy evaluation; NULL if eager */
  int item;             /* which name of a destructuring assignment */
  int visible;          /* bindings [0, visible) are what its expression sees */
  bool evaluated, used;
  value val;            /* eager bindings: the value */
  value whole;          /* lazy, first name of an assignment: the statement's value */
} binding;

typedef struct {
  binding *items;
  int n, cap;
} scope;

/* One layer call site in a net body: its parameters are made on first use and
 * shared by every later call of the net. */
typedef struct {
  const ast_expr *call;
  int net;
  char *name;       /* "dense0", or the user's name= */
  int vars[4];      /* weight, bias / gamma, beta, running mean, running var */
  bool made;
  bool instance;    /* made for a net instance: net is the owner, name "inst.conv0" */
} layer_site;

/* What the first call of a net was given: later calls must match. */
typedef struct {
  bool called;
  ir_span span;
  ir_shape *shapes;
  ir_dtype *dtypes;
  int nargs;
} net_first_call;

typedef struct {
  const ast_decl *decl;
  int caller_net;
  ir_span span;
} call_frame;

typedef struct elab {
  const ast_file *file;
  diag_sink *d;
  ir_module *m;
  const elab_options *opt;
  ir_func *f;           /* function being built */
  int *input_node;      /* per module input: its INPUT node in f, or -1 */
  int *load_node;       /* per state variable: its cached LOAD node in f, or -1 */
  int nload;            /* entries in load_node */
  /* declarations */
  const ast_decl **nets; /* by module net index */
  net_first_call *first_call;
  bool *net_used;
  layer_site *layers;
  int nlayers;
  scope consts;         /* compile-time constants */
  const ast_decl **input_decl; /* by module input index */
  /* the net being elaborated */
  call_frame *stack;
  int depth;
  scope *locals;        /* bindings of the innermost net or the train block */
  int dropout_sites;
  /* the net instance being elaborated (a net called with name=, or by repeat): its
   * layers' parameters belong to instance_owner, named OWNER.INSTANCE.LAYER; NULL
   * outside one */
  const char *instance;
  int instance_owner;
  int eval_depth;       /* eval_expr calls in progress, bounded by MAX_EVAL_DEPTH */
  bool eval_too_deep;   /* that bound was reported */
  /* lazy bindings computed, in order (heads of assignments): check_unused forgets
   * those computed while it tried a binding, whose nodes it then drops */
  binding **computed;
  int ncomputed, capcomputed;
} elab;

/* elaborate.c */
value eval_expr(elab *e, const ast_expr *x);
value val_poison(void);
value val_node(elab *e, int node, ir_span span, ir_span origin, const char *whence);
/* Emits an op; on a shape-rule failure reports it at `at`, with a note on the
 * failing operand's origin, and returns poison. */
value emit_op(elab *e, ir_op op, const value *const *args, int nargs, const ir_attrs *a,
              ir_span at, const char *label);
/* A state variable's current value (a cached load, or a new one). */
int load_var(elab *e, int var);
void store_var(elab *e, int var, int node);
int const_node(elab *e, double v, ir_span at);
bool need_int(elab *e, value v, const char *what, int64_t *out);
bool need_num(elab *e, value v, const char *what, double *out);
bool need_tensor(elab *e, value v, const char *what);
/* The node behind a tensor value. The pointer is good only until the next node is
 * emitted (the array grows): copy what is needed past that. */
const ir_node *node_of(elab *e, value v);
const char *pool_printf(elab *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int current_net(elab *e);
void user_shape(elab *e, value v, char *buf, size_t n);
/* The INPUT node of module input idx in the current function, made on first use. */
value input_value(elab *e, int idx, ir_span at);
/* The module input a value comes straight from, or -1. */
int input_of(elab *e, value v);

/* builtins.c */
typedef struct {
  const ast_expr *call;
  value args[12];     /* bound in the builtin's parameter order */
  bool given[12];
  const ast_expr *raw[12]; /* the argument expressions */
  value *rest;        /* variadic positional arguments (concat) */
  int nrest;
} call_args;

typedef value (*builtin_fn)(elab *e, call_args *a);

typedef struct {
  const char *name;
  const char *params; /* "x, units, bias=1, name=, init=": '=' marks keywords with
                         defaults; "*xs" takes any number of positional tensors;
                         "~init" is passed unevaluated */
  builtin_fn fn;
  const char *doc;    /* one line for docs and "did you mean" notes */
} builtin;

const builtin *builtin_find(const char *name);
/* The entry of tbl[0..n) that expression x calls, or NULL when x is no call of one
 * (optimizers, schedules and initialisers are small tables of their own). */
const builtin *builtin_call_in(const builtin *tbl, size_t n, const ast_expr *x);
extern const builtin builtins[];
/* grad.c: grad(y, x), the one builtin that runs the reverse sweep. */
value b_grad(elab *e, call_args *a);
extern const int nbuiltins;
/* Binds a call's arguments to a builtin's parameters, reporting unknown, missing
 * and repeated arguments; evaluates all but '~' parameters. */
bool bind_args(elab *e, const builtin *b, const ast_expr *call, call_args *a);

#endif
