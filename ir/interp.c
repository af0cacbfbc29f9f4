/* interp.c: the reference interpreter. Runs a function node by node in schedule
 * order with the plain kernels of kernels.c; every other backend is tested against
 * what this computes.
 *
 * With it->f64 set it runs the same IR in double precision (for gradient checks by
 * finite differences): f32 nodes are computed by the kernels64.c twins and held as
 * IR_F64 tensors, i32 nodes stay i32, and the state is it->state64. */
#include "ir/kernels64.h"
#include "ir/op_impl.h"

#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static size_t elem_size(ir_dtype dt) { return dt == IR_F64 ? 8 : 4; }

static const char *dtype_name(ir_dtype dt) {
  return dt == IR_F32 ? "f32" : dt == IR_I32 ? "i32" : dt == IR_F64 ? "f64" : "?";
}

/* Elements are 4 bytes for f32 and i32, 8 for f64. A zero-element tensor still gets a
 * block, so data == NULL always means "no value". */
ir_tensor ir_tensor_alloc(ir_dtype dt, ir_shape s) {
  ir_tensor t;
  t.dtype = dt;
  t.shape = s;
  int64_t count = shape_numel(s);
  t.data = calloc(count > 0 ? (size_t)count : 1, elem_size(dt));
  return t;
}

void ir_tensor_free(ir_tensor *t) {
  free(t->data);
  t->data = NULL;
}

__attribute__((format(printf, 2, 3))) static int ifail(ir_interp *it, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(it->err, sizeof it->err, fmt, ap);
  va_end(ap);
  return 1;
}

/* Rewrites it->err as "<prefix><old message>". */
static void err_prefix(ir_interp *it, const char *prefix) {
  size_t cap = sizeof it->err, p = strlen(prefix), n = strnlen(it->err, cap - 1);
  if (p > cap - 1) p = cap - 1;
  if (p + n > cap - 1) n = cap - 1 - p; /* keep the prefix, cut the message's end */
  memmove(it->err + p, it->err, n);
  memcpy(it->err, prefix, p);
  it->err[p + n] = '\0';
}

/* The dtype of the tensor that holds a value of IR dtype dt: f32 values are f64 in
 * f64 mode. */
static ir_dtype held_dtype(const ir_interp *it, ir_dtype dt) {
  return it->f64 && dt == IR_F32 ? IR_F64 : dt;
}

/* Runs n's shape rule on the operands' actual dtypes and shapes and checks that it
 * reproduces n's own: a kernel may then index its operands by n's shapes. Real
 * operands must be held as the mode's real type (f32, or f64 in f64 mode). */
static int check_operands(ir_interp *it, const ir_node *n, const ir_tensor *const *in) {
  const ir_op_info *op = &ir_ops[n->op];
  if (op->arity >= 0 ? n->nin != op->arity : n->nin < 1)
    return ifail(it, "has %d operands, expected %d", n->nin, op->arity);
  for (int j = 0; j < n->nin; j++) {
    if (!in[j] || !in[j]->data) return ifail(it, "operand %d has no value", j);
    if (in[j]->dtype == (it->f64 ? IR_F32 : IR_F64))
      return ifail(it, "operand %d is an %s tensor, %s", j, dtype_name(in[j]->dtype),
                   it->f64 ? "in f64 mode" : "outside f64 mode");
  }
  ir_node *fake = calloc((size_t)(n->nin > 0 ? n->nin : 1), sizeof *fake);
  const ir_node **ptrs = calloc((size_t)(n->nin > 0 ? n->nin : 1), sizeof *ptrs);
  if (!fake || !ptrs) {
    free(fake);
    free(ptrs);
    return ifail(it, "out of memory");
  }
  for (int j = 0; j < n->nin; j++) {
    fake[j].dtype = in[j]->dtype == IR_F64 ? IR_F32 : in[j]->dtype; /* the IR's view */
    fake[j].shape = in[j]->shape;
    fake[j].var = -1;
    ptrs[j] = &fake[j];
  }
  ir_node m = *n;
  char msg[256];
  int bad = -1, rc = 0;
  if (!op->shape(&m, ptrs, msg, sizeof msg, &bad)) {
    rc = ifail(it, "operands do not fit: %s", msg);
  } else if (m.dtype != n->dtype || !shape_equal(m.shape, n->shape)) {
    char got[160], want[160];
    shape_str(m.shape, got, sizeof got);
    shape_str(n->shape, want, sizeof want);
    rc = ifail(it, "operands give a %s %s, the node is a %s %s", dtype_name(m.dtype), got,
               dtype_name(n->dtype), want);
  }
  free(fake);
  free(ptrs);
  return rc;
}

/* ir_interp_node without the message prefix: allocates *out and runs the kernel. */
static int eval_node(ir_interp *it, const ir_node *n, const ir_tensor *const *in,
                     ir_tensor *out) {
  memset(out, 0, sizeof *out);
  ir_interp_kernel kernel = it->f64 ? ir_kernels64[n->op] : ir_ops[n->op].interp;
  if (!kernel)
    return ifail(it, "has no kernel (the interpreter takes its value from the inputs)");
  if (check_operands(it, n, in)) return 1;
  *out = ir_tensor_alloc(held_dtype(it, n->dtype), n->shape);
  if (!out->data) return ifail(it, "out of memory");
  if (kernel(it, n, in, out)) {
    ir_tensor_free(out);
    return 1;
  }
  return 0;
}

/* A copy of src (shape_numel(s) elements) as a tensor of dtype dt and shape s; f32
 * converts to f64, any other dtype must be src's own. */
static ir_tensor tensor_copy(const ir_tensor *src, ir_dtype dt, ir_shape s) {
  ir_tensor t = ir_tensor_alloc(dt, s);
  int64_t count = shape_numel(s);
  if (!t.data) return t;
  if (dt == IR_F64 && src->dtype == IR_F32) {
    for (int64_t j = 0; j < count; j++) ((double *)t.data)[j] = ((const float *)src->data)[j];
  } else {
    memcpy(t.data, src->data, (size_t)count * elem_size(dt));
  }
  return t;
}

/* Allocates *out itself (the caller frees it with ir_tensor_free); on failure *out has
 * no data and it->err reads "<op>: <problem>". In f64 mode, f32 operands are converted
 * to f64 first, so op tests can pass the same tensors in both modes. */
int ir_interp_node(ir_interp *it, const ir_node *n, const ir_tensor *const *in,
                   ir_tensor *out) {
  it->err[0] = '\0';
  if ((unsigned)n->op >= IR_OP_COUNT) {
    memset(out, 0, sizeof *out);
    return ifail(it, "unknown op %d", (int)n->op);
  }
  int nin = n->nin > 0 ? n->nin : 0, rc = 0;
  const ir_tensor **args = NULL;
  ir_tensor *conv = NULL;
  if (it->f64 && nin > 0) {
    args = calloc((size_t)nin, sizeof *args);
    conv = calloc((size_t)nin, sizeof *conv);
    if (!args || !conv) {
      free(args);
      free(conv);
      memset(out, 0, sizeof *out);
      return ifail(it, "out of memory");
    }
    for (int j = 0; j < nin; j++) {
      args[j] = in[j];
      if (in[j] && in[j]->data && in[j]->dtype == IR_F32) {
        conv[j] = tensor_copy(in[j], IR_F64, in[j]->shape);
        args[j] = &conv[j];
      }
    }
    in = args;
  }
  if (eval_node(it, n, in, out)) {
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s: ", ir_ops[n->op].name);
    err_prefix(it, prefix);
    rc = 1;
  }
  if (conv)
    for (int j = 0; j < nin; j++) ir_tensor_free(&conv[j]);
  free(conv);
  free(args);
  return rc;
}

/* Each node's value is freed right after its last use in schedule order, so a step
 * holds only its live tensors; outputs live to the end. */
int ir_interp_run(ir_interp *it, const ir_func *f, const ir_tensor *inputs,
                  ir_tensor *outputs) {
  it->err[0] = '\0';
  for (int k = 0; k < f->noutputs; k++) memset(&outputs[k], 0, sizeof outputs[k]);
  int nn = f->nnodes, rc = 1;
  int *order = NULL, *pos = NULL, *last = NULL;
  const ir_tensor **args = NULL;
  ir_tensor *val = calloc((size_t)(nn > 0 ? nn : 1), sizeof *val);
  pos = malloc((size_t)(nn > 0 ? nn : 1) * sizeof *pos);
  last = malloc((size_t)(nn > 0 ? nn : 1) * sizeof *last);
  int maxin = 1;
  for (int id = 0; id < nn; id++)
    if (f->nodes[id].nin > maxin) maxin = f->nodes[id].nin;
  args = malloc((size_t)maxin * sizeof *args);
  if (!val || !pos || !last || !args) {
    ifail(it, "out of memory");
    goto done;
  }
  /* ir_schedule lists only nodes of blocks 0..nblocks-1: insist that is all of them */
  for (int id = 0; id < nn; id++)
    if (f->nodes[id].block < 0 || f->nodes[id].block >= f->nblocks) {
      ifail(it, "node %d is in block %d, outside 0..%d", id, f->nodes[id].block,
            f->nblocks - 1);
      goto done;
    }
  order = ir_schedule(f);
  if (!order) {
    ifail(it, "out of memory");
    goto done;
  }

  /* last[id]: the schedule position of id's last consumer (-1: none) */
  for (int p = 0; p < nn; p++) pos[order[p]] = p, last[order[p]] = -1;
  for (int id = 0; id < nn; id++) {
    const ir_node *n = &f->nodes[id];
    for (int j = 0; j < n->nin; j++) {
      int a = ir_operand(n, j);
      if (a < 0 || a >= nn) {
        ifail(it, "node %d (%s): operand %d is node %d, which does not exist", id,
              ir_ops[n->op].name, j, a);
        goto done;
      }
      if (pos[id] > last[a]) last[a] = pos[id];
    }
  }
  for (int k = 0; k < f->noutputs; k++) {
    int id = f->outputs[k].node;
    if (id < 0 || id >= nn) {
      ifail(it, "output %s is node %d, which does not exist", f->outputs[k].name, id);
      goto done;
    }
    last[id] = INT_MAX;
  }

  for (int p = 0; p < nn; p++) {
    int id = order[p];
    const ir_node *n = &f->nodes[id];
    if (n->op == IR_OP_INPUT) {
      int64_t j = n->i[0];
      if (j < 0 || j >= f->ninputs) {
        ifail(it, "node %d (input): input %lld of a function with %d inputs", id,
              (long long)j, f->ninputs);
        goto done;
      }
      const ir_tensor *src = &inputs[j];
      /* f64 mode takes real inputs as f32 (converted) or f64 */
      bool dt_ok = src->dtype == n->dtype ||
                   (it->f64 && n->dtype == IR_F32 && src->dtype == IR_F64);
      if (!src->data || !dt_ok || !shape_equal(src->shape, n->shape)) {
        char got[160], want[160];
        shape_str(src->shape, got, sizeof got);
        shape_str(n->shape, want, sizeof want);
        ifail(it, "node %d (input): input %lld is a %s %s, expected a %s %s", id,
              (long long)j, dtype_name(src->dtype), src->data ? got : "(none)",
              dtype_name(n->dtype), want);
        goto done;
      }
      val[id] = tensor_copy(src, held_dtype(it, n->dtype), n->shape);
      if (!val[id].data) {
        ifail(it, "out of memory");
        goto done;
      }
    } else {
      for (int j = 0; j < n->nin; j++) args[j] = &val[ir_operand(n, j)];
      if (eval_node(it, n, args, &val[id])) {
        char prefix[96];
        snprintf(prefix, sizeof prefix, "node %d (%s): ", id, ir_ops[n->op].name);
        err_prefix(it, prefix);
        goto done;
      }
      /* operands whose last use this was (ir_tensor_free tolerates a repeated one) */
      for (int j = 0; j < n->nin; j++) {
        int a = ir_operand(n, j);
        if (last[a] == p) ir_tensor_free(&val[a]);
      }
    }
    if (last[id] < p) ir_tensor_free(&val[id]); /* nothing reads it: a store */
  }

  for (int k = 0; k < f->noutputs; k++) {
    const ir_node *n = &f->nodes[f->outputs[k].node];
    outputs[k] = tensor_copy(&val[f->outputs[k].node], held_dtype(it, n->dtype), n->shape);
    if (!outputs[k].data) {
      ifail(it, "out of memory");
      goto done;
    }
  }
  rc = 0;
done:
  if (rc)
    for (int k = 0; k < f->noutputs; k++) ir_tensor_free(&outputs[k]);
  if (val)
    for (int id = 0; id < nn; id++) ir_tensor_free(&val[id]);
  free(val);
  free(order);
  free(pos);
  free(last);
  free(args);
  return rc;
}
