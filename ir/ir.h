/* ir.h: the whole public surface of migc's intermediate representation.
 *
 * A module is a typed dataflow program: state variables (parameters, batchnorm
 * running statistics, optimizer moments, the step counter) plus entry functions
 * (train_step, generate, encode). A function is a list of single-output SSA nodes.
 * Nodes are appended and never move; their id is their index in func->nodes.
 * Execution order is (block, id): block k holds everything a training step does
 * between the parameter updates of step k-1 and step k, so a pass that adds work
 * to step k appends nodes with block = k and they still run in the right place.
 * Loads and stores of state variables are the only effects; a load in block k sees
 * every store made in blocks < k (and earlier in block k).
 *
 * Shapes are static and include the batch dimension; `batched` marks that dim[0]
 * is the batch, so diagnostics can show users per-sample shapes ([1,28,28]) while
 * the IR works with [64,1,28,28].
 *
 * Grouped by the file that implements each part.
 */
#ifndef MIGC_IR_H
#define MIGC_IR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define IR_MAX_RANK 6
#define IR_MAX_IN 5   /* most inputs an op with fixed arity takes */
#define IR_MAX_ATTR 4 /* integer and float attributes per node, each */

/* ---- diag.c: one diagnostics sink for every stage ---------------------------- */

/* A source range. Lines and columns are 1-based; `file` points into the sink's
 * source table (or is NULL for nodes made by passes). */
typedef struct {
  const char *file;
  int line, col;         /* first character */
  int end_line, end_col; /* last character (inclusive) */
} ir_span;

typedef enum { DIAG_ERROR, DIAG_WARNING, DIAG_NOTE } diag_level;

typedef struct {
  diag_level level;
  ir_span span;
  char *msg;
} diag_entry;

typedef struct {
  const char *name; /* file name as given on the command line */
  char *text;       /* whole contents, NUL-terminated (owned) */
} diag_source;

typedef struct {
  diag_entry *entries;
  int n, cap;
  int nerrors;
  int max_errors;   /* stop recording errors after this many (0: 50) */
  bool dropping;    /* the last error was past max_errors: drop its notes too */
  diag_source *sources;
  int nsources;
} diag_sink;

/* Levenshtein distance of two names, for "did you mean" (longer than 32 characters:
 * 99). */
int edit_distance(const char *a, const char *b);
void diag_init(diag_sink *d);
void diag_free(diag_sink *d);
/* Registers a source text; returns the stable file-name pointer to use in spans. */
const char *diag_add_source(diag_sink *d, const char *name, const char *text);
void diag_error(diag_sink *d, ir_span span, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void diag_warning(diag_sink *d, ir_span span, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A note attaches to the diagnostic reported just before it. */
void diag_note(diag_sink *d, ir_span span, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prints every entry as `file:line:col: level: msg`, the source line and a caret
 * (with ~ under the rest of a one-line span). `color` adds ANSI colours. */
void diag_print(const diag_sink *d, FILE *out, bool color);
ir_span span_join(ir_span a, ir_span b);

/* ---- shape.c: shapes, broadcasting, formatting -------------------------------- */

/* IR_F64 is only ever a tensor's dtype: the interpreter's double-precision mode
 * (ir_interp.f64) holds the values of f32 nodes in it. IR nodes stay f32 or i32. */
typedef enum { IR_F32, IR_I32, IR_F64 } ir_dtype;

typedef struct {
  int rank;
  int64_t dim[IR_MAX_RANK];
  bool batched; /* dim[0] is the batch dimension */
} ir_shape;

ir_shape shape_make(int rank, const int64_t *dims, bool batched);
ir_shape shape_scalar(void);
int64_t shape_numel(ir_shape s);
/* Tensors hold at most IR_MAX_NUMEL elements (4 TiB of float): ir_emit refuses a node
 * whose shape rule gives more, so no product of a node's dimensions overflows. */
#define IR_MAX_NUMEL ((int64_t)1 << 40)
/* shape_numel, or -1 when a dimension is negative or the product passes IR_MAX_NUMEL. */
int64_t shape_numel_checked(ir_shape s);
bool shape_equal(ir_shape a, ir_shape b); /* dims and rank; ignores `batched` */
/* "[64,1,28,28]": every dimension, as the IR printer shows it. */
void shape_str(ir_shape s, char *buf, size_t n);
/* "[1,28,28]": what a user wrote; drops the batch dimension of batched shapes. */
void shape_user_str(ir_shape s, char *buf, size_t n);
/* Numpy-style broadcasting, right-aligned, with one extra rule: a batched and an
 * unbatched operand broadcast only over the per-sample dims (the unbatched rank
 * must not exceed the batched one's per-sample rank), and two batched operands
 * must have equal rank, so [B,1] + [B] is an error rather than a silent [B,B]. */
bool shape_broadcast(ir_shape a, ir_shape b, ir_shape *out, char *err, size_t errn);

/* ---- op_table.c: every op, once ------------------------------------------------ */

typedef enum {
  /* sources and effects */
  IR_OP_INPUT,  /* function input i (attr i[0]); no operands */
  IR_OP_CONST,  /* scalar f32 constant f[0]; shape [] */
  IR_OP_LOAD,   /* read state variable node->var */
  IR_OP_STORE,  /* write operand 0 to state variable node->var; shape = var's */
  /* elementwise unary, f32 -> f32 */
  IR_OP_NEG,
  IR_OP_RELU,
  IR_OP_LRELU,  /* f[0] = negative slope */
  IR_OP_TANH,
  IR_OP_SIGMOID,
  IR_OP_SOFTPLUS,
  IR_OP_EXP,
  IR_OP_LOG,
  IR_OP_SQRT,
  IR_OP_SIN,
  IR_OP_COS,
  /* elementwise binary with broadcasting, f32 */
  IR_OP_ADD,
  IR_OP_SUB,
  IR_OP_MUL,
  IR_OP_DIV,
  /* linear algebra and convolution */
  IR_OP_MATMUL, /* [M,K] x [K,N] -> [M,N]; i[0]=transpose a, i[1]=transpose b */
  IR_OP_CONV,   /* x [N,C,H,W], w [O,C,k,k] -> [N,O,Ho,Wo]; i = k, s, p (no bias) */
  IR_OP_DECONV, /* x [N,C,H,W], w [C,O,k,k] -> [N,O,(H-1)s-2p+k,..]; i = k, s, p */
  /* normalisation */
  IR_OP_BATCHNORM,       /* x, gamma[C], beta[C] -> y; batch statistics over all
                            axes but 1; f[0] = eps; i[0] = ranks: > 1 when the
                            statistics are over the batches of that many processes
                            (sync batchnorm, summed through collective_allreduce) */
  IR_OP_BATCHNORM_INFER, /* x, gamma, beta, mean[C], var[C] -> y; f[0] = eps */
  /* shape */
  IR_OP_RESHAPE, /* to node->ashape (same element count) */
  IR_OP_CONCAT,  /* any number of operands along axis i[0] */
  IR_OP_SLICE,   /* axis i[0], elements [i[1], i[2]) */
  /* reductions; i[0] = bitmask of reduced axes, i[1] = keep dims */
  IR_OP_SUM,
  IR_OP_MEAN,
  IR_OP_VAR, /* unbiased (n-1) variance, as batchnorm's running variance uses */
  /* codes and randomness */
  IR_OP_ONEHOT,  /* i32 [N] -> f32 [N, i[0]] */
  IR_OP_DROPOUT, /* x, seed (i32 [2]: run seed, step) -> y; f[0] = p, i[0] = site */
  /* losses: scalar results */
  IR_OP_BCE_LOGITS,       /* logits, target (broadcast to the logits) -> mean
                             binary cross-entropy, computed stably */
  IR_OP_SOFTMAX_CE,       /* logits [N,K], labels i32 [N] -> mean cross-entropy */
  IR_OP_GAUSSIAN_NLL,     /* mean [N,D], x [N,D] -> Gaussian NLL with std f[0],
                             summed over D, averaged over N (with the ½log2π term) */
  IR_OP_INFO_CATEGORICAL, /* logits [N,K], c i32 [N] -> ln K − mean cross-entropy */
  /* made by autodiff: the adjoints of the ops above */
  IR_OP_RELU_GRAD,       /* x, dy -> dy where x > 0, else 0 (PyTorch's choice at 0) */
  IR_OP_LRELU_GRAD,      /* x, dy -> dy where x > 0, else slope*dy; f[0] = slope */
  IR_OP_CONV_GRAD_X,     /* dy [N,O,Ho,Wo], w [O,C,k,k] -> dx of shape ashape
                            [N,C,H,W]; i = k, s, p */
  IR_OP_CONV_GRAD_W,     /* x [N,C,H,W], dy [N,O,Ho,Wo] -> dw of shape ashape
                            [O,C,k,k]; i = k, s, p */
  IR_OP_BATCHNORM_GRAD,  /* x, gamma, dy -> dx through the batch statistics; f[0]=eps;
                            i[0] = ranks as batchnorm's (the means of dy and dy*x̂
                            over every process's batch too) */
  IR_OP_BATCHNORM_GRAD_GAMMA, /* x, dy -> sum of dy * x̂ over all axes but 1 [C] (this
                                 process's batch; x̂ with batchnorm's statistics);
                                 f[0] = eps; i[0] = ranks */
  IR_OP_EXPAND,          /* x broadcast (numpy rules) to ashape */
  IR_OP_UNSLICE,         /* dy -> zeros of ashape with dy at [i[1], i[2]) along
                            axis i[0] */
  IR_OP_SOFTMAX,         /* softmax over the last axis */
  /* data parallelism (passes/allreduce.c inserts it only when ranks > 1) */
  IR_OP_ALLREDUCE,       /* x -> f[0] * (x summed elementwise over every process of the
                            run), through the runtime's collective_allreduce; an effect:
                            every process must run the same ones in the same order */
  /* the larger of two values (max pooling is made of it) */
  IR_OP_MAXIMUM,         /* a, b (numpy broadcasting) -> a where a >= b, else b */
  IR_OP_MAX_GRAD,        /* a, b, dy of one shape -> dy where a wins, else 0: a >= b, or
                            a > b with i[0] = 1 (strict: b's adjoint, so that a tie
                            sends the whole adjoint to a, as maximum returns a) */
  /* a step that runs every k-th training step (passes/optimizer.c) */
  IR_OP_SELECT,          /* cond [] (one element), a, b of one shape -> a where cond is
                            nonzero, else b: the new or the kept value of a state
                            variable, chosen without arithmetic so both stay exact */
  IR_OP_COUNT
} ir_op;

typedef enum { ATTR_INT, ATTR_AXES, ATTR_FLOAT } ir_attr_kind;

typedef struct {
  const char *name;  /* as printed: "k", "axes", "slope" */
  ir_attr_kind kind; /* ATTR_INT and ATTR_AXES read i[slot], ATTR_FLOAT f[slot] */
  int slot;
  bool if_set;       /* printed only when nonzero (an option most programs leave off) */
} ir_attr_desc;

struct ir_node;
struct ir_func;
struct ir_module;
struct ir_tensor;
struct ir_interp;

/* Infers node->dtype and node->shape from its operands and attributes. On failure
 * returns false and writes a user-facing message to err (per-sample shapes, via
 * shape_user_str), with *bad_operand set to the operand at fault or -1. */
typedef bool (*ir_shape_rule)(struct ir_node *n, const struct ir_node *const *in,
                              char *err, size_t errn, int *bad_operand);
/* Computes one node from its operands, in plain loops (the reference). Returns 0,
 * or nonzero with a message in the interpreter's error buffer. */
typedef int (*ir_interp_kernel)(struct ir_interp *it, const struct ir_node *n,
                                const struct ir_tensor *const *in, struct ir_tensor *out);

/* Appends to f (in block `block`) the nodes computing the adjoint of each operand
 * j of node `id` for which want[j] is set, given the node `dy` holding the adjoint
 * of `id`'s value; writes their ids to dx[j] (-1 where nothing flows, e.g. into an
 * integer operand). NULL for ops that are never differentiated (sources, effects,
 * inference-only ops, batchnorm's adjoints: grad() refuses a net with batchnorm).
 * Rules live in vjp_rules.c. */
typedef void (*ir_vjp_rule)(struct ir_func *f, int block, int id, int dy, const bool *want,
                            int *dx);

typedef struct {
  const char *name;   /* printed and parsed name */
  int arity;          /* number of operands, or -1 for any number >= 1 */
  ir_attr_desc attrs[IR_MAX_ATTR * 2];
  int nattrs;
  bool effect;        /* has a side effect: never removed as dead code */
  ir_shape_rule shape;
  ir_interp_kernel interp;
  ir_vjp_rule vjp;
} ir_op_info;

extern const ir_op_info ir_ops[IR_OP_COUNT];

/* ---- module.c: modules, functions, nodes --------------------------------------- */

typedef struct ir_node {
  ir_op op;
  int nin;
  int in[IR_MAX_IN]; /* operand node ids (all < this node's id) */
  int *in_extra;     /* operands past IR_MAX_IN (concat); NULL otherwise */
  int64_t i[IR_MAX_ATTR];
  double f[IR_MAX_ATTR];
  ir_shape ashape;   /* shape attribute (reshape's target) */
  int var;           /* state variable of load/store, -1 otherwise */
  int block;         /* step block it runs in */
  ir_dtype dtype;
  ir_shape shape;
  ir_span span;      /* source that made it; file NULL for pass-made nodes */
  const char *label; /* readable name for printing (binding or layer), or NULL */
} ir_node;

/* Operand j of n (works past IR_MAX_IN). */
static inline int ir_operand(const ir_node *n, int j) {
  return j < IR_MAX_IN ? n->in[j] : n->in_extra[j - IR_MAX_IN];
}

typedef enum {
  VAR_PARAM,    /* trained parameter */
  VAR_BN_MEAN,  /* batchnorm running mean */
  VAR_BN_VAR,   /* batchnorm running variance */
  VAR_OPT_M,    /* optimizer first moment (Adam m, SGD momentum buffer) */
  VAR_OPT_V,    /* optimizer second moment (Adam v) */
  VAR_STEP,     /* step counter */
  VAR_EMA       /* exponential moving average of a parameter (a step's ema=) */
} ir_var_kind;

typedef enum {
  INIT_DEFAULT, /* PyTorch's default for the layer: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
  INIT_ZEROS,
  INIT_ONES,
  INIT_UNIFORM, /* U(a, b) */
  INIT_NORMAL   /* N(a, b) (mean, std) */
} ir_init_kind;

typedef struct {
  ir_init_kind kind;
  double a, b;
  int64_t fan_in; /* for INIT_DEFAULT */
} ir_init;

typedef struct {
  char *name;   /* "G.dense0.weight" */
  ir_var_kind kind;
  ir_dtype dtype;
  ir_shape shape;
  int net;      /* index into module->nets, -1 for none */
  int of;       /* for optimizer state: the parameter it belongs to, else -1 */
  ir_init init;
  int64_t offset; /* element offset in the flat state buffer (4-byte elements) */
  ir_span span;
} ir_var;

/* INPUT_LABEL: the data set's label of each sample of the data input (i32, a in
 * classes, categorical), fed beside it by migc train; drawn uniformly elsewhere. */
typedef enum { INPUT_DATA, INPUT_LATENT, INPUT_CODE, INPUT_SEED, INPUT_LABEL } ir_input_kind;

typedef enum { DIST_NONE, DIST_UNIFORM, DIST_NORMAL, DIST_CATEGORICAL, DIST_BERNOULLI } ir_dist;

/* A model-level input: real data, a latent, or a code, with how to produce it. */
typedef struct {
  char *name;
  ir_input_kind kind;
  ir_dtype dtype;
  ir_shape shape; /* batched; for INPUT_SEED [2] unbatched */
  ir_dist dist;
  double a, b;    /* uniform(a,b), normal(a=mean,b=std), categorical(a=K),
                     bernoulli(a=p); for data: the value range [a, b] */
  int64_t pad;    /* data: zero padding added to each side of H and W */
  ir_span span;
} ir_input;

typedef enum { OPT_ADAM, OPT_SGD } ir_opt_kind;

/* The learning rate of update u = 1, 2, ... is lr * warm(u) * decay(u - 1):
 *   warm(u)  = min(1, u / warmup)          (1 without warm-up)
 *   constant: decay = 1
 *   linear:   decay(s) = 1 + (end - 1) min(s, steps) / steps
 *   cosine:   decay(s) = end + (1 - end) (1 + cos(pi min(s, steps) / steps)) / 2
 * so `end` is the fraction of lr left after `steps` updates (PyTorch's LinearLR and
 * CosineAnnealingLR with eta_min = end * lr, stepped once per update). */
typedef enum { SCHED_CONSTANT, SCHED_LINEAR, SCHED_COSINE } ir_sched_kind;

typedef struct {
  ir_opt_kind kind;
  double lr, beta1, beta2, eps, weight_decay, momentum;
  ir_sched_kind sched;
  double sched_steps, sched_end, warmup; /* whole numbers of updates; end a fraction */
  double ema; /* 0, or the decay of an average of every parameter the step trains:
                 after update u, avg = d avg + (1 - d) p with d = min(ema, (u-1)/u),
                 so the first update sets it and early ones weigh alike */
  double every; /* 0 or 1: the update is applied on every training step; k > 1: on the
                   first and then every k-th (steps 0, k, 2k, ... of this program), the
                   state left as it was on the others */
} ir_optim;

/* One `step` of the train block: minimise `loss` over the parameters of `nets`. */
typedef struct {
  char *name;
  int block;      /* the block whose end applies the update */
  int loss;       /* node id of the scalar loss (negated already for maximize) */
  int *nets;      /* indices into module->nets */
  int nnets;
  ir_optim opt;
  bool lowered;   /* autodiff and the optimizer update have been appended */
  ir_span span;
} ir_step;

typedef struct {
  char *name;
  int node;
} ir_output;

typedef struct ir_func {
  char *name;       /* "train_step", "generate", "encode" */
  ir_node *nodes;
  int nnodes, cap;
  int *inputs;      /* module input indices, in the order callers pass them */
  int ninputs;
  ir_output *outputs;
  int noutputs;
  ir_step *steps;   /* train_step only */
  int nsteps;
  int nblocks;      /* blocks are 0 .. nblocks-1 */
  bool training;    /* batchnorm uses batch statistics, dropout is active */
} ir_func;

typedef struct ir_module {
  char *name;
  int64_t batch;    /* of one process: the run's batch divided by `ranks` */
  int ranks;        /* processes of a data-parallel run the program is built for (1:
                       one; more: gradients are all-reduced, see passes/allreduce.c) */
  char **nets;      /* net names, in declaration order */
  int nnets;
  ir_var *vars;
  int nvars;
  int64_t state_size; /* elements in the flat state buffer */
  ir_input *inputs;
  int ninputs;
  ir_func **funcs;
  int nfuncs;
} ir_module;

ir_module *ir_module_new(const char *name);
void ir_module_free(ir_module *m);
int ir_add_var(ir_module *m, const char *name, ir_var_kind kind, ir_dtype dt, ir_shape shape,
               int net, ir_span span); /* returns its index; offsets set by ir_layout */
int ir_find_var(const ir_module *m, const char *name);
void ir_layout(ir_module *m); /* assigns offsets (64-byte aligned) and state_size */
int ir_add_input(ir_module *m, const ir_input *in); /* copies; returns index */
int ir_find_input(const ir_module *m, const char *name);
ir_func *ir_add_func(ir_module *m, const char *name, bool training);
ir_func *ir_find_func(const ir_module *m, const char *name);
int ir_add_net(ir_module *m, const char *name);
/* A copy of f (nodes, inputs, outputs, steps) added to m under a new name. */
ir_func *ir_clone_func(ir_module *m, const ir_func *f, const char *name);

/* Attributes of a node being built; zero-initialise and fill what the op uses. */
typedef struct {
  int64_t i[IR_MAX_ATTR];
  double f[IR_MAX_ATTR];
  ir_shape ashape; /* INPUT and LOAD: the value's shape; RESHAPE: the target */
  ir_dtype dtype;  /* INPUT and LOAD: the value's dtype */
  int var;         /* LOAD and STORE */
} ir_attrs;

/* Appends a node in block f->nblocks-1 (or `block` with ir_emit_in) after running
 * the op's shape rule. Returns the node id, or -1 with the rule's message in err
 * and the failing operand in *bad (nothing is appended then). */
int ir_emit(ir_func *f, ir_op op, const int *in, int nin, const ir_attrs *a, ir_span span,
            char *err, size_t errn, int *bad);
int ir_emit_in(ir_func *f, int block, ir_op op, const int *in, int nin, const ir_attrs *a,
               ir_span span, char *err, size_t errn, int *bad);
/* For nodes whose inputs are known good (passes): aborts the program if the shape
 * rule fails, since that is a bug in migc, not in the user's model. */
int ir_emit_checked(ir_func *f, int block, ir_op op, const int *in, int nin,
                    const ir_attrs *a);
void ir_add_output(ir_func *f, const char *name, int node);
/* Node ids in execution order: sorted by (block, id). Caller frees. */
int *ir_schedule(const ir_func *f);

/* ---- backprop.c: the reverse sweep of every gradient ------------------------------- */

/* have + add as a node in `block` (add alone when have is -1, no adjoint yet): how
 * the adjoints of a value used several times are summed. */
int ir_accumulate(ir_func *f, int block, int have, int add);

/* Called when the sweep reaches a source node, with that node's adjoint. */
typedef void (*ir_backprop_visit)(void *ctx, ir_func *f, int id, int adj);

/* Appends to f, in `block`, the nodes of the adjoints of y (a scalar node) with respect
 * to every node flagged in source[0..y] (f32 nodes whose own operands are not followed),
 * through the op table's vjp rules. adj[0..y] receives each node's adjoint, -1 where
 * none flows (y does not depend on it through a source). visit, if not NULL, is called
 * for each source as the sweep reaches it. once_only, if not NULL, receives the first
 * node (in sweep order) whose adjoint uses an op without a vjp rule, so that the
 * adjoints cannot be swept again (batchnorm), or -1. Returns 0, or -1 with err set and
 * *bad the node whose op has no vjp rule. */
int ir_backprop(ir_func *f, int block, int y, const char *source, ir_backprop_visit visit,
                void *ctx, int *adj, int *once_only, int *bad, char *err, size_t errn);

/* ---- memory.c: what a module's buffers take ---------------------------------------- */

typedef struct {
  int64_t state_bytes; /* every state variable: parameters, optimizer moments, statistics */
  int64_t temp_bytes;  /* every node of every function, one buffer each: what the
                          interpreter and the naive codegen layout hold at most */
  int64_t total_bytes; /* their sum; each saturates at INT64_MAX */
} ir_memory;

ir_memory ir_memory_need(const ir_module *m);
/* True when m needs at most `limit` bytes (limit <= 0: no limit); otherwise false with
 * "model NAME needs SIZE of memory (...), more than the limit of SIZE; ..." in err. */
bool ir_memory_fits(const ir_module *m, int64_t limit, char *err, size_t errn);
/* "37.3 GiB", "512 bytes". */
void ir_format_bytes(int64_t bytes, char *buf, size_t n);

/* ---- init_state.c: initial values of the state ------------------------------------- */

/* Fills the flat state buffer (m->state_size floats) from each variable's
 * initialiser. Values are a function of (seed, variable name, element index)
 * through the runtime's counter-based generator, so they do not depend on the
 * order variables were declared in or on any other variable's size. Step
 * counters and optimizer moments start at zero. */
void ir_init_state(const ir_module *m, float *state, uint64_t seed);

/* ---- verify.c: invariants checked after every pass ---------------------------- */

/* Checks operand ranges and order, op arity, that every shape rule reproduces the
 * recorded dtype and shape, that loads/stores name real variables with matching
 * shapes, outputs and steps refer to scalar nodes, and the flat layout does not
 * overlap. Reports each violation to d (span-less); returns true if none. */
bool ir_verify(const ir_module *m, diag_sink *d);

/* ---- mi_terms.c: what an MI estimate is made of ---------------------------------- */

/* One InfoGAN term of a function: an info_categorical node, or the H - gaussian_nll
 * that info_gaussian makes. */
typedef struct {
  ir_op op;     /* IR_OP_INFO_CATEGORICAL, IR_OP_GAUSSIAN_NLL or IR_OP_BCE_LOGITS
                   (info_bernoulli: D H(p) - D bce) */
  int node;     /* the term's value: the info_categorical, or the sub */
  int pred;     /* Q's prediction: the logits [N,K] or the mean [N,D] */
  int code;     /* module input of the code it predicts, -1 if that operand is no input */
  int64_t dims; /* K values, or D dimensions */
  double h;     /* gaussian, bernoulli: the constant subtracted from, H(c) */
  double std;   /* gaussian: Q's fixed standard deviation */
  double bound; /* the most the term can be: ln K or h (a cross-entropy is at least 0),
                   or h - D ln(std sqrt(2 pi)) (the NLL at a perfect prediction) */
} ir_mi_term;

/* If node id of f is an MI estimate, one term or a sum of terms (scalar adds), writes
 * them to terms and returns their count; 0 if it is not, or has more than max. */
int ir_mi_terms(const ir_func *f, int id, ir_mi_term *terms, int max);
/* The most a sum of n terms can be: the sum of their bounds. */
double ir_mi_bound(const ir_mi_term *terms, int n);
/* The bound as a formula, the terms' joined by " + ": "ln 10", "2 (ln 2 - 0.5 ln(2
 * pi))" for two uniform(-1, 1) dimensions with std 1 (H(c) written out when h is the
 * entropy of the code's prior in m, else as a number). */
void ir_mi_bound_str(const ir_module *m, const ir_mi_term *terms, int n, char *buf, size_t len);

/* ---- print.c: stable text form, used by `migc dump --ir` and golden tests ------ */

void ir_print_module(const ir_module *m, FILE *out);
void ir_print_func(const ir_module *m, const ir_func *f, FILE *out);

/* ---- interp.c: the reference interpreter ---------------------------------------- */

typedef struct ir_tensor {
  ir_dtype dtype;
  ir_shape shape;
  void *data; /* float* or int32_t*, shape_numel elements, C order */
} ir_tensor;

typedef struct ir_interp {
  const ir_module *m;
  float *state;     /* flat state buffer, m->state_size elements (i32 vars alias) */
  bool f64;         /* double-precision mode: every f32 node is computed and held as
                       an IR_F64 tensor (i32 stays i32); inputs may be IR_F32 or
                       IR_F64, outputs come back IR_F64; loads and stores use state64 */
  double *state64;  /* the state in f64 mode: m->state_size doubles at the same
                       offsets; an i32 variable's elements hold its integer values */
  uint64_t seed;    /* run seed for dropout */
  int64_t step;     /* training step number for dropout's counter */
  char err[512];
} ir_interp;

/* Runs f: inputs[j] is the tensor for f->inputs[j]; outputs receives f->noutputs
 * tensors (allocated here, freed with ir_tensor_free). Stores update it->state.
 * Returns 0, or nonzero with it->err set. */
int ir_interp_run(ir_interp *it, const ir_func *f, const ir_tensor *inputs, ir_tensor *outputs);
/* Evaluates a single node on given operand tensors (for op tests); allocates *out,
 * which the caller frees with ir_tensor_free. */
int ir_interp_node(ir_interp *it, const ir_node *n, const ir_tensor *const *in, ir_tensor *out);
ir_tensor ir_tensor_alloc(ir_dtype dt, ir_shape s); /* zero-filled */
void ir_tensor_free(ir_tensor *t);

#endif
