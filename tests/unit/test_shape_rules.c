/* test_shape_rules.c: shapes, broadcasting, and every op's shape rule on good operands
 * (exact output shapes and batched flags) and on bad ones (the exact message, in the
 * per-sample shapes users write, and the operand blamed). */
#include "check.h"
#include "ir/op_impl.h"

#include <stdarg.h>

#define B 64 /* the batch size used throughout */

/* A shape from its dims: sh(batched, rank, d0, d1, ...). */
static ir_shape sh(bool batched, int rank, ...) {
  int64_t dims[IR_MAX_RANK] = {0};
  va_list ap;
  va_start(ap, rank);
  for (int d = 0; d < rank; d++) dims[d] = va_arg(ap, int);
  va_end(ap);
  return shape_make(rank, dims, batched);
}

static ir_node val(ir_dtype dt, ir_shape s) {
  ir_node v = {0};
  v.op = IR_OP_INPUT;
  v.var = -1;
  v.dtype = dt;
  v.shape = s;
  return v;
}
static ir_node f32(ir_shape s) { return val(IR_F32, s); }
static ir_node i32(ir_shape s) { return val(IR_I32, s); }

static ir_node mk(ir_op op) {
  ir_node n = {0};
  n.op = op;
  n.var = -1;
  return n;
}

static char err[256];
static int bad;

/* Runs n's rule on the nin operand values that follow. */
static bool rule(ir_node *n, int nin, ...) {
  ir_node ops[8];
  const ir_node *ptrs[8];
  va_list ap;
  va_start(ap, nin);
  for (int j = 0; j < nin; j++) {
    ops[j] = va_arg(ap, ir_node);
    ptrs[j] = &ops[j];
  }
  va_end(ap);
  n->nin = nin;
  err[0] = '\0';
  bad = -99;
  return ir_ops[n->op].shape(n, ptrs, err, sizeof err, &bad);
}

/* n's result is dtype dt and shape s, batched flag included. */
#define CHECK_RESULT(ok, n, dt, s)                                                      \
  do {                                                                                \
    ir_shape want_ = (s);                                                             \
    char got_[160], exp_[160];                                                        \
    shape_str((n).shape, got_, sizeof got_);                                          \
    shape_str(want_, exp_, sizeof exp_);                                              \
    CHECK_MSG((ok), "rule failed: %s", err);                                          \
    CHECK_MSG((n).dtype == (dt), "dtype %d", (int)(n).dtype);                          \
    CHECK_MSG(shape_equal((n).shape, want_) && (n).shape.batched == want_.batched,    \
              "got %s%s, expected %s%s", got_, (n).shape.batched ? " batched" : "",    \
              exp_, want_.batched ? " batched" : "");                                 \
  } while (0)

/* The rule failed with exactly this message, blaming operand `which`. */
#define CHECK_ERROR(ok, msg, which)                                                   \
  do {                                                                                \
    CHECK_MSG(!(ok), "rule accepted; expected \"%s\"", msg);                          \
    CHECK_STR(err, msg);                                                              \
    CHECK_MSG(bad == (which), "blamed operand %d, expected %d", bad, which);          \
  } while (0)

static void test_shapes(void) {
  char buf[160];
  ir_shape x = sh(true, 4, B, 1, 28, 28);
  CHECK(x.rank == 4 && x.batched && shape_numel(x) == B * 784);
  shape_str(x, buf, sizeof buf);
  CHECK_STR(buf, "[64,1,28,28]");
  shape_user_str(x, buf, sizeof buf);
  CHECK_STR(buf, "[1,28,28]");
  ir_shape s = shape_scalar();
  CHECK(s.rank == 0 && !s.batched && shape_numel(s) == 1);
  shape_str(s, buf, sizeof buf);
  CHECK_STR(buf, "[]");
  shape_user_str(sh(true, 1, B), buf, sizeof buf); /* one label per sample */
  CHECK_STR(buf, "[]");
  shape_user_str(sh(false, 2, 3, 4), buf, sizeof buf);
  CHECK_STR(buf, "[3,4]");
  CHECK(shape_equal(sh(true, 2, B, 3), sh(false, 2, B, 3))); /* ignores batched */
  CHECK(!shape_equal(sh(false, 2, 3, 4), sh(false, 2, 4, 3)));
  CHECK(!shape_equal(sh(false, 1, 12), sh(false, 2, 3, 4)));
  CHECK(!shape_make(0, NULL, true).batched); /* a scalar has no batch dimension */
  /* a short buffer truncates safely */
  char tiny[6];
  shape_str(x, tiny, sizeof tiny);
  CHECK_STR(tiny, "[64,1");
}

static void test_broadcast(void) {
  ir_shape r;
  CHECK(shape_broadcast(sh(false, 2, 2, 1), sh(false, 1, 3), &r, err, sizeof err));
  CHECK(shape_equal(r, sh(false, 2, 2, 3)) && !r.batched);
  CHECK(shape_broadcast(sh(true, 2, B, 3), sh(false, 1, 3), &r, err, sizeof err));
  CHECK(shape_equal(r, sh(true, 2, B, 3)) && r.batched);
  CHECK(shape_broadcast(sh(false, 1, 3), sh(true, 2, B, 3), &r, err, sizeof err));
  CHECK(shape_equal(r, sh(true, 2, B, 3)) && r.batched);
  CHECK(shape_broadcast(sh(true, 3, B, 4, 1), sh(false, 2, 1, 5), &r, err, sizeof err));
  CHECK(shape_equal(r, sh(true, 3, B, 4, 5)) && r.batched);
  CHECK(shape_broadcast(sh(true, 4, B, 8, 1, 1), sh(true, 4, B, 8, 7, 7), &r, err, sizeof err));
  CHECK(shape_equal(r, sh(true, 4, B, 8, 7, 7)));
  CHECK(shape_broadcast(shape_scalar(), sh(true, 2, B, 3), &r, err, sizeof err));
  CHECK(shape_equal(r, sh(true, 2, B, 3)) && r.batched);
  CHECK(shape_broadcast(shape_scalar(), shape_scalar(), &r, err, sizeof err));
  CHECK(r.rank == 0 && !r.batched);

  CHECK(!shape_broadcast(sh(false, 1, 3), sh(false, 1, 5), &r, err, sizeof err));
  CHECK_STR(err, "cannot broadcast [3] with [5]");
  CHECK(!shape_broadcast(sh(true, 2, B, 3), sh(false, 1, 5), &r, err, sizeof err));
  CHECK_STR(err, "cannot broadcast [3] with [5]");
  /* numpy would make [B,1] + [B] a [B,B]; migc refuses */
  CHECK(!shape_broadcast(sh(true, 2, B, 1), sh(true, 1, B), &r, err, sizeof err));
  CHECK_STR(err, "cannot broadcast [1] with []: batched operands must have the same rank");
  CHECK(!shape_broadcast(sh(true, 2, B, 3), sh(false, 2, B, 3), &r, err, sizeof err));
  CHECK_STR(err,
            "cannot broadcast [3] with [64,3]: the unbatched operand has more dimensions than "
            "a sample");
  CHECK(!shape_broadcast(sh(true, 2, 64, 3), sh(true, 2, 128, 3), &r, err, sizeof err));
  CHECK_STR(err, "cannot broadcast [3] with [3]: batch sizes 64 and 128 differ");
}

static void test_sources(void) {
  ir_node n = mk(IR_OP_INPUT);
  n.dtype = IR_F32;
  n.ashape = sh(true, 4, B, 1, 28, 28);
  CHECK_RESULT(rule(&n, 0), n, IR_F32, sh(true, 4, B, 1, 28, 28));
  n = mk(IR_OP_LOAD);
  n.dtype = IR_I32;
  n.ashape = sh(false, 1, 2);
  CHECK_RESULT(rule(&n, 0), n, IR_I32, sh(false, 1, 2));
  n.ashape = sh(false, 2, 0, 3);
  CHECK_ERROR(rule(&n, 0), "shape [0,3] has a dimension that is not positive", -1);
  n.ashape = sh(false, 2, 3, 3);
  n.ashape.rank = IR_MAX_RANK + 1;
  CHECK_ERROR(rule(&n, 0), "a value of rank 7 exceeds the 6 dimensions migc supports", -1);

  n = mk(IR_OP_CONST);
  n.f[0] = 2.5;
  CHECK_RESULT(rule(&n, 0), n, IR_F32, shape_scalar());

  n = mk(IR_OP_STORE);
  n.var = 0;
  CHECK_RESULT(rule(&n, 1, i32(sh(false, 1, 2))), n, IR_I32, sh(false, 1, 2));
}

static void test_elementwise(void) {
  ir_node n = mk(IR_OP_RELU);
  CHECK_RESULT(rule(&n, 1, f32(sh(true, 2, B, 7))), n, IR_F32, sh(true, 2, B, 7));
  CHECK_ERROR(rule(&n, 1, i32(sh(true, 1, B))),
              "relu expects a float tensor, got an integer tensor", 0);
  n = mk(IR_OP_LRELU);
  n.f[0] = 0.2;
  CHECK_RESULT(rule(&n, 1, f32(shape_scalar())), n, IR_F32, shape_scalar());

  n = mk(IR_OP_ADD);
  CHECK_RESULT(rule(&n, 2, f32(sh(true, 2, B, 10)), f32(sh(false, 1, 10))), n, IR_F32,
               sh(true, 2, B, 10));
  n = mk(IR_OP_MUL);
  CHECK_RESULT(rule(&n, 2, f32(sh(true, 4, B, 8, 7, 7)), f32(sh(false, 3, 8, 1, 1))), n, IR_F32,
               sh(true, 4, B, 8, 7, 7));
  n = mk(IR_OP_SUB);
  CHECK_RESULT(rule(&n, 2, f32(shape_scalar()), f32(sh(true, 2, B, 1))), n, IR_F32,
               sh(true, 2, B, 1));
  n = mk(IR_OP_DIV);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 2, B, 3)), f32(sh(false, 1, 5))),
              "cannot broadcast [3] with [5]", -1);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 2, B, 3)), i32(sh(false, 1, 3))),
              "div expects a float tensor, got an integer tensor", 1);
}

static void test_matmul(void) {
  ir_node n = mk(IR_OP_MATMUL);
  /* x [B,784] W [784,10] */
  CHECK_RESULT(rule(&n, 2, f32(sh(true, 2, B, 784)), f32(sh(false, 2, 784, 10))), n, IR_F32,
               sh(true, 2, B, 10));
  /* dense: x [B,4] W^T with W [2,4] */
  n.i[1] = 1;
  CHECK_RESULT(rule(&n, 2, f32(sh(true, 2, B, 4)), f32(sh(false, 2, 2, 4))), n, IR_F32,
               sh(true, 2, B, 2));
  /* the weight gradient x^T dy: [4,B] x [B,2] is not batched */
  n.i[0] = 1, n.i[1] = 0;
  CHECK_RESULT(rule(&n, 2, f32(sh(true, 2, B, 4)), f32(sh(true, 2, B, 2))), n, IR_F32,
               sh(false, 2, 4, 2));
  /* dy W: [B,2] x [2,4] */
  n.i[0] = 0;
  CHECK_RESULT(rule(&n, 2, f32(sh(true, 2, B, 2)), f32(sh(false, 2, 2, 4))), n, IR_F32,
               sh(true, 2, B, 4));
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 2, B, 4)), f32(sh(false, 2, 5, 2))),
              "matmul inner dimensions differ: [4] x [5,2]", -1);
  n.i[1] = 1;
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 2, B, 4)), f32(sh(false, 2, 4, 5))),
              "matmul inner dimensions differ: [4] x [4,5]", -1);
  n.i[1] = 0;
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 3, B, 3, 4)), f32(sh(false, 2, 4, 5))),
              "matmul expects a [K] vector per sample, got [3,4]", 0);
  CHECK_ERROR(rule(&n, 2, f32(sh(false, 2, 3, 4)), f32(sh(false, 1, 4))),
              "matmul expects a matrix, got [4]", 1);
  CHECK_ERROR(rule(&n, 2, i32(sh(false, 2, 3, 4)), f32(sh(false, 2, 4, 4))),
              "matmul expects a float tensor, got an integer tensor", 0);
}

static ir_node conv(ir_op op, int k, int s, int p) {
  ir_node n = mk(op);
  n.i[0] = k, n.i[1] = s, n.i[2] = p;
  return n;
}

static void test_conv(void) {
  ir_node n = conv(IR_OP_CONV, 4, 2, 1);
  CHECK_RESULT(rule(&n, 2, f32(sh(true, 4, B, 1, 28, 28)), f32(sh(false, 4, 64, 1, 4, 4))), n,
               IR_F32, sh(true, 4, B, 64, 14, 14));
  CHECK_RESULT(rule(&n, 2, f32(sh(true, 4, B, 64, 14, 14)), f32(sh(false, 4, 128, 64, 4, 4))),
               n, IR_F32, sh(true, 4, B, 128, 7, 7));
  n = conv(IR_OP_CONV, 3, 1, 1);
  CHECK_RESULT(rule(&n, 2, f32(sh(false, 4, 2, 3, 5, 5)), f32(sh(false, 4, 4, 3, 3, 3))), n,
               IR_F32, sh(false, 4, 2, 4, 5, 5));
  n = conv(IR_OP_CONV, 3, 2, 0);
  CHECK_RESULT(rule(&n, 2, f32(sh(true, 4, B, 3, 7, 6)), f32(sh(false, 4, 4, 3, 3, 3))), n,
               IR_F32, sh(true, 4, B, 4, 3, 2));
  n = conv(IR_OP_CONV, 4, 1, 0); /* kernel as large as the input: one pixel */
  CHECK_RESULT(rule(&n, 2, f32(sh(true, 4, B, 2, 4, 4)), f32(sh(false, 4, 1, 2, 4, 4))), n,
               IR_F32, sh(true, 4, B, 1, 1, 1));

  n = conv(IR_OP_CONV, 4, 2, 1);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 2, B, 1024)), f32(sh(false, 4, 64, 1, 4, 4))),
              "conv expects a [C,H,W] input, got [1024]", 0);
  CHECK_ERROR(rule(&n, 2, f32(sh(false, 2, B, 1024)), f32(sh(false, 4, 64, 1, 4, 4))),
              "conv expects a [N,C,H,W] input, got [64,1024]", 0);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 4, B, 1, 28, 28)), f32(sh(false, 4, 8, 3, 4, 4))),
              "conv weight expects 3 input channels, got 1", 0);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 4, B, 1, 28, 28)), f32(sh(false, 2, 8, 16))),
              "conv weight must be [O,C,k,k], got [8,16]", 1);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 4, B, 1, 28, 28)), f32(sh(false, 4, 8, 1, 3, 3))),
              "conv weight [8,1,3,3] does not have kernel size 4", 1);
  n = conv(IR_OP_CONV, 4, 0, 1);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 4, B, 1, 28, 28)), f32(sh(false, 4, 8, 1, 4, 4))),
              "conv stride must be at least 1, got 0", -1);
  n = conv(IR_OP_CONV, 4, 1, -1);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 4, B, 1, 28, 28)), f32(sh(false, 4, 8, 1, 4, 4))),
              "conv padding must not be negative, got -1", -1);
  n = conv(IR_OP_CONV, 0, 1, 0);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 4, B, 1, 28, 28)), f32(sh(false, 4, 8, 1, 0, 0))),
              "conv kernel size must be at least 1, got 0", -1);
  /* (3 + 0 - 4)/2 would truncate to 0 and claim a 1x1 output */
  n = conv(IR_OP_CONV, 4, 2, 0);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 4, B, 1, 3, 8)), f32(sh(false, 4, 8, 1, 4, 4))),
              "conv kernel 4 does not fit a 3x8 input with padding 0", 0);
}

static void test_deconv(void) {
  ir_node n = conv(IR_OP_DECONV, 4, 2, 1);
  CHECK_RESULT(rule(&n, 2, f32(sh(true, 4, B, 128, 7, 7)), f32(sh(false, 4, 128, 64, 4, 4))), n,
               IR_F32, sh(true, 4, B, 64, 14, 14));
  CHECK_RESULT(rule(&n, 2, f32(sh(true, 4, B, 64, 14, 14)), f32(sh(false, 4, 64, 1, 4, 4))), n,
               IR_F32, sh(true, 4, B, 1, 28, 28));
  n = conv(IR_OP_DECONV, 3, 2, 0);
  CHECK_RESULT(rule(&n, 2, f32(sh(false, 4, 2, 3, 3, 3)), f32(sh(false, 4, 3, 2, 3, 3))), n,
               IR_F32, sh(false, 4, 2, 2, 7, 7));
  n = conv(IR_OP_DECONV, 3, 1, 1);
  CHECK_RESULT(rule(&n, 2, f32(sh(true, 4, B, 3, 5, 4)), f32(sh(false, 4, 3, 2, 3, 3))), n,
               IR_F32, sh(true, 4, B, 2, 5, 4));

  n = conv(IR_OP_DECONV, 4, 2, 1);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 4, B, 64, 7, 7)), f32(sh(false, 4, 128, 64, 4, 4))),
              "deconv weight expects 128 input channels, got 64", 0);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 2, B, 6272)), f32(sh(false, 4, 128, 64, 4, 4))),
              "deconv expects a [C,H,W] input, got [6272]", 0);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 4, B, 128, 7, 7)), f32(sh(false, 3, 128, 64, 16))),
              "deconv weight must be [C,O,k,k], got [128,64,16]", 1);
  n = conv(IR_OP_DECONV, 1, 1, 1);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 4, B, 3, 1, 2)), f32(sh(false, 4, 3, 2, 1, 1))),
              "deconv output would be empty: a 1x2 input with kernel 1, stride 1 and padding 1 "
              "gives -1x0",
              -1);
}

static void test_batchnorm(void) {
  ir_node n = mk(IR_OP_BATCHNORM);
  n.f[0] = 1e-5;
  CHECK_RESULT(rule(&n, 3, f32(sh(true, 2, B, 1024)), f32(sh(false, 1, 1024)),
                    f32(sh(false, 1, 1024))),
               n, IR_F32, sh(true, 2, B, 1024));
  CHECK_RESULT(rule(&n, 3, f32(sh(true, 4, B, 64, 7, 7)), f32(sh(false, 1, 64)),
                    f32(sh(false, 1, 64))),
               n, IR_F32, sh(true, 4, B, 64, 7, 7));
  CHECK_ERROR(rule(&n, 3, f32(sh(true, 3, B, 3, 4)), f32(sh(false, 1, 3)), f32(sh(false, 1, 3))),
              "batchnorm expects a [C] or [C,H,W] input, got [3,4]", 0);
  CHECK_ERROR(rule(&n, 3, f32(sh(true, 2, B, 64)), f32(sh(false, 1, 32)), f32(sh(false, 1, 64))),
              "batchnorm gamma must be a float [64], got [32]", 1);
  CHECK_ERROR(rule(&n, 3, f32(sh(true, 2, B, 64)), f32(sh(false, 1, 64)), f32(sh(false, 2, 1, 64))),
              "batchnorm beta must be a float [64], got [1,64]", 2);
  n.f[0] = -1;
  CHECK_ERROR(rule(&n, 3, f32(sh(true, 2, B, 64)), f32(sh(false, 1, 64)), f32(sh(false, 1, 64))),
              "batchnorm eps must not be negative, got -1", -1);

  n = mk(IR_OP_BATCHNORM_INFER);
  n.f[0] = 1e-5;
  ir_node c = f32(sh(false, 1, 8));
  CHECK_RESULT(rule(&n, 5, f32(sh(true, 4, B, 8, 7, 7)), c, c, c, c), n, IR_F32,
               sh(true, 4, B, 8, 7, 7));
  CHECK_ERROR(rule(&n, 5, f32(sh(true, 4, B, 8, 7, 7)), c, c, c, f32(sh(false, 1, 9))),
              "batchnorm variance must be a float [8], got [9]", 4);
  CHECK_ERROR(rule(&n, 5, f32(sh(true, 4, B, 8, 7, 7)), c, c, i32(sh(false, 1, 8)), c),
              "batchnorm mean must be a float [8], got [8]", 3);
}

static void test_reshape_concat_slice(void) {
  ir_node n = mk(IR_OP_RESHAPE);
  n.ashape = sh(true, 4, B, 1, 28, 28);
  CHECK_RESULT(rule(&n, 1, f32(sh(true, 2, B, 784))), n, IR_F32, sh(true, 4, B, 1, 28, 28));
  n.ashape = sh(false, 1, 12);
  CHECK_RESULT(rule(&n, 1, i32(sh(false, 2, 3, 4))), n, IR_I32, sh(false, 1, 12));
  n.ashape = sh(true, 4, B, 1, 28, 27);
  CHECK_ERROR(rule(&n, 1, f32(sh(true, 2, B, 784))), "cannot reshape [784] to [1,28,27]", 0);
  n.ashape = sh(false, 2, -1, 4);
  CHECK_ERROR(rule(&n, 1, f32(sh(false, 1, 4))),
              "reshape target [-1,4] has a dimension that is not positive", -1);

  n = mk(IR_OP_CONCAT);
  n.i[0] = 1;
  CHECK_RESULT(rule(&n, 2, f32(sh(true, 2, B, 62)), f32(sh(true, 2, B, 10))), n, IR_F32,
               sh(true, 2, B, 72));
  CHECK_RESULT(rule(&n, 3, f32(sh(true, 2, B, 62)), f32(sh(true, 2, B, 10)),
                    f32(sh(true, 2, B, 2))),
               n, IR_F32, sh(true, 2, B, 74));
  CHECK_RESULT(rule(&n, 2, f32(sh(true, 4, B, 3, 7, 7)), f32(sh(true, 4, B, 5, 7, 7))), n,
               IR_F32, sh(true, 4, B, 8, 7, 7));
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 2, B, 3)), f32(sh(true, 3, B, 4, 2))),
              "concat: shapes [3] and [4,2] differ outside axis 0", 1);
  CHECK_ERROR(rule(&n, 3, f32(sh(true, 3, B, 3, 5)), f32(sh(true, 3, B, 1, 5)),
                   f32(sh(true, 3, B, 4, 6))),
              "concat: shapes [3,5] and [4,6] differ outside axis 0", 2);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 2, B, 3)), i32(sh(true, 2, B, 3))),
              "concat: operands mix float and integer tensors", 1);
  n.i[0] = 2;
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 2, B, 3)), f32(sh(true, 2, B, 3))),
              "concat: axis 1 is out of range for [3]", 0);
  /* real and fake batches side by side: the batch axis */
  n.i[0] = 0;
  CHECK_RESULT(rule(&n, 2, f32(sh(true, 2, B, 1)), f32(sh(true, 2, B, 1))), n, IR_F32,
               sh(true, 2, 2 * B, 1));
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 2, B, 1)), f32(sh(true, 2, B, 2))),
              "concat: shapes [1] and [2] differ outside the batch axis", 1);
  CHECK_RESULT(rule(&n, 1, f32(sh(false, 1, 5))), n, IR_F32, sh(false, 1, 5));

  n = mk(IR_OP_SLICE);
  n.i[0] = 1, n.i[1] = 2, n.i[2] = 5;
  CHECK_RESULT(rule(&n, 1, f32(sh(true, 2, B, 10))), n, IR_F32, sh(true, 2, B, 3));
  n.i[0] = 0, n.i[1] = 0, n.i[2] = B;
  CHECK_RESULT(rule(&n, 1, f32(sh(true, 2, 2 * B, 1))), n, IR_F32, sh(true, 2, B, 1));
  n.i[0] = 1, n.i[1] = 5, n.i[2] = 12;
  CHECK_ERROR(rule(&n, 1, f32(sh(true, 2, B, 10))),
              "slice [5, 12) is out of range for axis 0 of [10]", -1);
  n.i[1] = 3, n.i[2] = 3;
  CHECK_ERROR(rule(&n, 1, f32(sh(true, 2, B, 10))),
              "slice [3, 3) is out of range for axis 0 of [10]", -1);
  n.i[0] = 2, n.i[1] = 0, n.i[2] = 1;
  CHECK_ERROR(rule(&n, 1, f32(sh(true, 2, B, 10))), "slice: axis 1 is out of range for [10]", 0);
}

static void test_reduce(void) {
  ir_node n = mk(IR_OP_SUM);
  ir_node x = f32(sh(true, 3, B, 3, 4));
  n.i[0] = 6, n.i[1] = 0; /* per-sample axes: one value per sample */
  CHECK_RESULT(rule(&n, 1, x), n, IR_F32, sh(true, 1, B));
  n.i[1] = 1;
  CHECK_RESULT(rule(&n, 1, x), n, IR_F32, sh(true, 3, B, 1, 1));
  n = mk(IR_OP_MEAN);
  n.i[0] = 1, n.i[1] = 0; /* over the batch: no longer batched */
  CHECK_RESULT(rule(&n, 1, x), n, IR_F32, sh(false, 2, 3, 4));
  n.i[1] = 1;
  CHECK_RESULT(rule(&n, 1, x), n, IR_F32, sh(false, 3, 1, 3, 4));
  n.i[0] = 7, n.i[1] = 0; /* everything: a scalar */
  CHECK_RESULT(rule(&n, 1, x), n, IR_F32, shape_scalar());
  n.i[1] = 1;
  CHECK_RESULT(rule(&n, 1, x), n, IR_F32, sh(false, 3, 1, 1, 1));
  n = mk(IR_OP_VAR);
  n.i[0] = 5, n.i[1] = 0; /* batchnorm's running variance: all axes but 1 */
  CHECK_RESULT(rule(&n, 1, x), n, IR_F32, sh(false, 1, 3));
  n.i[0] = 0; /* nothing reduced */
  CHECK_RESULT(rule(&n, 1, x), n, IR_F32, sh(true, 3, B, 3, 4));
  n.i[0] = 8;
  CHECK_ERROR(rule(&n, 1, x), "var: axis 2 is out of range for [3,4]", 0);
  n = mk(IR_OP_SUM);
  n.i[0] = 2;
  CHECK_ERROR(rule(&n, 1, f32(sh(false, 1, 3))), "sum: axis 1 is out of range for [3]", 0);
  n.i[0] = -1;
  CHECK_ERROR(rule(&n, 1, x), "sum: invalid axes mask -1", -1);
  n.i[0] = 1;
  CHECK_ERROR(rule(&n, 1, i32(sh(true, 1, B))), "sum expects a float tensor, got an integer tensor",
              0);
}

static void test_codes(void) {
  ir_node n = mk(IR_OP_ONEHOT);
  n.i[0] = 10;
  CHECK_RESULT(rule(&n, 1, i32(sh(true, 1, B))), n, IR_F32, sh(true, 2, B, 10));
  CHECK_ERROR(rule(&n, 1, f32(sh(true, 1, B))), "onehot expects integer codes, got a float tensor",
              0);
  CHECK_ERROR(rule(&n, 1, i32(sh(true, 2, B, 2))),
              "onehot expects a single code per sample, got [2]", 0);
  n.i[0] = 1;
  CHECK_ERROR(rule(&n, 1, i32(sh(true, 1, B))), "onehot needs at least 2 classes, got 1", -1);

  n = mk(IR_OP_DROPOUT);
  n.f[0] = 0.5, n.i[0] = 2;
  CHECK_RESULT(rule(&n, 2, f32(sh(true, 2, B, 100)), i32(sh(false, 1, 2))), n, IR_F32,
               sh(true, 2, B, 100));
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 2, B, 100)), f32(sh(false, 1, 2))),
              "dropout seed must be an integer [2] (seed, step), got [2]", 1);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 2, B, 100)), i32(sh(false, 1, 3))),
              "dropout seed must be an integer [2] (seed, step), got [3]", 1);
  n.f[0] = 1;
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 2, B, 100)), i32(sh(false, 1, 2))),
              "dropout probability must be in [0, 1), got 1", -1);
  n.f[0] = -0.25;
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 2, B, 100)), i32(sh(false, 1, 2))),
              "dropout probability must be in [0, 1), got -0.25", -1);
}

static void test_losses(void) {
  ir_node n = mk(IR_OP_BCE_LOGITS);
  CHECK_RESULT(rule(&n, 2, f32(sh(true, 2, B, 1)), f32(sh(true, 2, B, 1))), n, IR_F32,
               shape_scalar());
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 2, B, 1)), f32(sh(true, 1, B))),
              "bce: the target [] does not match the logits [1]", 1);
  /* A constant target (bce(D(x), 1)) broadcasts to the logits. */
  CHECK_RESULT(rule(&n, 2, f32(sh(true, 2, B, 1)), f32(shape_scalar())), n, IR_F32,
               shape_scalar());
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 2, B, 1)), f32(sh(true, 2, B, 3))),
              "bce: the target [3] does not match the logits [1]", 1);

  n = mk(IR_OP_SOFTMAX_CE);
  CHECK_RESULT(rule(&n, 2, f32(sh(true, 2, B, 10)), i32(sh(true, 1, B))), n, IR_F32,
               shape_scalar());
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 2, B, 10)), f32(sh(true, 1, B))),
              "softmax_ce expects integer labels, got a float tensor", 1);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 3, B, 10, 2)), i32(sh(true, 1, B))),
              "softmax_ce expects [K] logits, got [10,2]", 0);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 2, B, 10)), i32(sh(true, 2, B, 10))),
              "softmax_ce expects a single label per sample, got [10]", 1);
  CHECK_ERROR(rule(&n, 2, f32(sh(false, 2, 4, 10)), i32(sh(false, 1, 5))),
              "softmax_ce: 5 labels for 4 rows of logits", 1);

  n = mk(IR_OP_INFO_CATEGORICAL);
  CHECK_RESULT(rule(&n, 2, f32(sh(true, 2, B, 10)), i32(sh(true, 1, B))), n, IR_F32,
               shape_scalar());
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 2, B, 1)), i32(sh(true, 1, B))),
              "info_categorical needs at least 2 classes, got 1", 0);

  n = mk(IR_OP_GAUSSIAN_NLL);
  n.f[0] = 1;
  CHECK_RESULT(rule(&n, 2, f32(sh(true, 2, B, 2)), f32(sh(true, 2, B, 2))), n, IR_F32,
               shape_scalar());
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 2, B, 2)), f32(sh(true, 2, B, 3))),
              "gaussian_nll: mean [2] and value [3] differ in shape", 1);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 1, B)), f32(sh(true, 1, B))),
              "gaussian_nll expects a [D] mean, got []", 0);
  n.f[0] = 0;
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 2, B, 2)), f32(sh(true, 2, B, 2))),
              "gaussian_nll std must be positive, got 0", -1);
}

/* ---- adjoints (made by autodiff) ------------------------------------------------------ */

static void test_act_grad(void) {
  ir_node n = mk(IR_OP_RELU_GRAD);
  CHECK_RESULT(rule(&n, 2, f32(sh(true, 2, B, 7)), f32(sh(true, 2, B, 7))), n, IR_F32,
               sh(true, 2, B, 7));
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 2, B, 7)), f32(sh(true, 2, B, 8))),
              "relu_grad: the input [7] and its gradient [8] differ in shape", 1);
  CHECK_ERROR(rule(&n, 2, i32(sh(true, 1, B)), f32(sh(true, 1, B))),
              "relu_grad expects a float tensor, got an integer tensor", 0);
  n = mk(IR_OP_LRELU_GRAD);
  n.f[0] = 0.2;
  CHECK_RESULT(rule(&n, 2, f32(sh(true, 4, B, 8, 7, 7)), f32(sh(true, 4, B, 8, 7, 7))), n,
               IR_F32, sh(true, 4, B, 8, 7, 7));
  CHECK_RESULT(rule(&n, 2, f32(shape_scalar()), f32(shape_scalar())), n, IR_F32, shape_scalar());
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 2, B, 7)), i32(sh(true, 2, B, 7))),
              "lrelu_grad expects a float tensor, got an integer tensor", 1);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 2, B, 6)), f32(sh(true, 3, B, 2, 3))),
              "lrelu_grad: the input [6] and its gradient [2,3] differ in shape", 1);
  n = mk(IR_OP_MAX_GRAD);
  CHECK_RESULT(rule(&n, 3, f32(sh(true, 2, B, 7)), f32(sh(true, 2, B, 7)), f32(sh(true, 2, B, 7))),
               n, IR_F32, sh(true, 2, B, 7));
  CHECK_ERROR(rule(&n, 3, f32(sh(true, 2, B, 7)), f32(sh(true, 2, B, 7)), f32(sh(true, 2, B, 6))),
              "max_grad: operands [7] and [6] differ in shape", 2);
  CHECK_ERROR(rule(&n, 3, f32(sh(true, 2, B, 7)), i32(sh(true, 2, B, 7)), f32(sh(true, 2, B, 7))),
              "max_grad expects a float tensor, got an integer tensor", 1);
  n = mk(IR_OP_SELECT);
  CHECK_RESULT(rule(&n, 3, f32(shape_scalar()), f32(sh(false, 2, 3, 4)), f32(sh(false, 2, 3, 4))),
               n, IR_F32, sh(false, 2, 3, 4));
  CHECK_ERROR(rule(&n, 3, f32(sh(true, 2, B, 7)), f32(sh(true, 2, B, 7)), f32(sh(true, 2, B, 7))),
              "select: the condition must be one number, got [7]", 0);
  CHECK_ERROR(rule(&n, 3, f32(shape_scalar()), f32(sh(false, 1, 7)), f32(sh(false, 1, 6))),
              "select: operands [7] and [6] differ in shape", 2);
}

/* conv's input gradient: dy [N,O,Ho,Wo], w [O,C,k,k] -> ashape [N,C,H,W] */
static void test_conv_grad_x(void) {
  ir_node n = conv(IR_OP_CONV_GRAD_X, 4, 2, 1);
  n.ashape = sh(true, 4, B, 1, 28, 28);
  CHECK_RESULT(rule(&n, 2, f32(sh(true, 4, B, 64, 14, 14)), f32(sh(false, 4, 64, 1, 4, 4))), n,
               IR_F32, sh(true, 4, B, 1, 28, 28));
  /* (8 + 0 - 3)/2 + 1 = 3: row 7 is never read, and a 7-row input gives 3 too */
  n = conv(IR_OP_CONV_GRAD_X, 3, 2, 0);
  n.ashape = sh(false, 4, 2, 3, 8, 7);
  CHECK_RESULT(rule(&n, 2, f32(sh(false, 4, 2, 4, 3, 3)), f32(sh(false, 4, 4, 3, 3, 3))), n,
               IR_F32, sh(false, 4, 2, 3, 8, 7));
  n.ashape = sh(false, 4, 2, 3, 9, 7);
  CHECK_ERROR(rule(&n, 2, f32(sh(false, 4, 2, 4, 3, 3)), f32(sh(false, 4, 4, 3, 3, 3))),
              "conv_grad_x: a 9x7 input with kernel 3, stride 2 and padding 0 gives 4x3, but the "
              "gradient is 3x3",
              0);

  n = conv(IR_OP_CONV_GRAD_X, 4, 2, 1);
  n.ashape = sh(true, 4, B, 1, 28, 28);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 2, B, 64)), f32(sh(false, 4, 64, 1, 4, 4))),
              "conv_grad_x expects a [O,Ho,Wo] gradient, got [64]", 0);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 4, B, 64, 14, 14)), f32(sh(false, 2, 64, 16))),
              "conv_grad_x weight must be [O,C,k,k], got [64,16]", 1);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 4, B, 64, 14, 14)), f32(sh(false, 4, 64, 1, 3, 3))),
              "conv_grad_x weight [64,1,3,3] does not have kernel size 4", 1);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 4, B, 32, 14, 14)), f32(sh(false, 4, 64, 1, 4, 4))),
              "conv_grad_x: the weight has 64 output channels, the gradient 32", 0);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 4, B, 64, 14, 14)), f32(sh(false, 4, 64, 3, 4, 4))),
              "conv_grad_x: the weight has 3 input channels, the target 1", -1);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 4, 32, 64, 14, 14)), f32(sh(false, 4, 64, 1, 4, 4))),
              "conv_grad_x: the gradient has a batch of 32, the target 64", 0);
  CHECK_ERROR(rule(&n, 2, i32(sh(true, 4, B, 64, 14, 14)), f32(sh(false, 4, 64, 1, 4, 4))),
              "conv_grad_x expects a float tensor, got an integer tensor", 0);
  n.ashape = sh(true, 2, B, 784);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 4, B, 64, 14, 14)), f32(sh(false, 4, 64, 1, 4, 4))),
              "conv_grad_x target must be [C,H,W], got [784]", -1);
  n.ashape = sh(true, 4, B, 1, 0, 28);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 4, B, 64, 14, 14)), f32(sh(false, 4, 64, 1, 4, 4))),
              "conv_grad_x target [1,0,28] has a dimension that is not positive", -1);
  n.ashape = sh(true, 4, B, 1, 1, 1);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 4, B, 64, 1, 1)), f32(sh(false, 4, 64, 1, 4, 4))),
              "conv_grad_x kernel 4 does not fit a 1x1 input with padding 1", -1);
  n.ashape = sh(true, 4, B, 1, 28, 28);
  n.i[1] = 0;
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 4, B, 64, 14, 14)), f32(sh(false, 4, 64, 1, 4, 4))),
              "conv_grad_x stride must be at least 1, got 0", -1);
  n.i[1] = 2, n.i[2] = -1;
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 4, B, 64, 14, 14)), f32(sh(false, 4, 64, 1, 4, 4))),
              "conv_grad_x padding must not be negative, got -1", -1);
  n.i[2] = 1, n.i[0] = 0;
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 4, B, 64, 14, 14)), f32(sh(false, 4, 64, 1, 4, 4))),
              "conv_grad_x kernel size must be at least 1, got 0", -1);
}

/* conv's weight gradient: x [N,C,H,W], dy [N,O,Ho,Wo] -> ashape [O,C,k,k] */
static void test_conv_grad_w(void) {
  ir_node n = conv(IR_OP_CONV_GRAD_W, 4, 2, 1);
  n.ashape = sh(false, 4, 64, 1, 4, 4);
  CHECK_RESULT(rule(&n, 2, f32(sh(true, 4, B, 1, 28, 28)), f32(sh(true, 4, B, 64, 14, 14))), n,
               IR_F32, sh(false, 4, 64, 1, 4, 4));
  /* a deconv's weight gradient, roles swapped: deconv [128,7,7] -> [64,14,14] with
   * w [128,64,4,4] is conv_grad_w(dy [64,14,14], x [128,7,7]) */
  n.ashape = sh(false, 4, 128, 64, 4, 4);
  CHECK_RESULT(rule(&n, 2, f32(sh(true, 4, B, 64, 14, 14)), f32(sh(true, 4, B, 128, 7, 7))), n,
               IR_F32, sh(false, 4, 128, 64, 4, 4));

  n.ashape = sh(false, 4, 64, 1, 4, 4);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 2, B, 784)), f32(sh(true, 4, B, 64, 14, 14))),
              "conv_grad_w expects a [C,H,W] input, got [784]", 0);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 4, B, 1, 28, 28)), f32(sh(true, 2, B, 64))),
              "conv_grad_w expects a [O,Ho,Wo] gradient, got [64]", 1);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 4, B, 1, 28, 28)), f32(sh(true, 4, 32, 64, 14, 14))),
              "conv_grad_w: the input has a batch of 64, the gradient 32", 1);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 4, B, 1, 28, 28)), f32(sh(true, 4, B, 32, 14, 14))),
              "conv_grad_w: the target has 64 output channels, the gradient 32", 1);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 4, B, 3, 28, 28)), f32(sh(true, 4, B, 64, 14, 14))),
              "conv_grad_w: the target has 1 input channels, the input 3", 0);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 4, B, 1, 28, 28)), f32(sh(true, 4, B, 64, 13, 14))),
              "conv_grad_w: a 28x28 input with kernel 4, stride 2 and padding 1 gives 14x14, "
              "but the gradient is 13x14",
              1);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 4, B, 1, 1, 1)), f32(sh(true, 4, B, 64, 1, 1))),
              "conv_grad_w kernel 4 does not fit a 1x1 input with padding 1", 0);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 4, B, 1, 28, 28)), i32(sh(true, 4, B, 64, 14, 14))),
              "conv_grad_w expects a float tensor, got an integer tensor", 1);
  n.ashape = sh(false, 4, 64, 1, 3, 3);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 4, B, 1, 28, 28)), f32(sh(true, 4, B, 64, 14, 14))),
              "conv_grad_w target [64,1,3,3] does not have kernel size 4", -1);
  n.ashape = sh(false, 2, 64, 16);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 4, B, 1, 28, 28)), f32(sh(true, 4, B, 64, 14, 14))),
              "conv_grad_w target must be [O,C,k,k], got [64,16]", -1);
  n.ashape = sh(false, 4, 64, 1, 4, 4);
  n.ashape.rank = IR_MAX_RANK + 1;
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 4, B, 1, 28, 28)), f32(sh(true, 4, B, 64, 14, 14))),
              "conv_grad_w to rank 7 exceeds the 6 dimensions migc supports", -1);
}

static void test_batchnorm_grad(void) {
  ir_node n = mk(IR_OP_BATCHNORM_GRAD);
  n.f[0] = 1e-5;
  ir_node x = f32(sh(true, 4, B, 8, 7, 7)), g = f32(sh(false, 1, 8));
  CHECK_RESULT(rule(&n, 3, x, g, x), n, IR_F32, sh(true, 4, B, 8, 7, 7));
  CHECK_RESULT(rule(&n, 3, f32(sh(true, 2, B, 1024)), f32(sh(false, 1, 1024)),
                    f32(sh(true, 2, B, 1024))),
               n, IR_F32, sh(true, 2, B, 1024));
  CHECK_ERROR(rule(&n, 3, x, f32(sh(false, 1, 9)), x),
              "batchnorm_grad gamma must be a float [8], got [9]", 1);
  CHECK_ERROR(rule(&n, 3, x, g, f32(sh(true, 4, B, 8, 7, 6))),
              "batchnorm_grad: the input [8,7,7] and its gradient [8,7,6] differ in shape", 2);
  CHECK_ERROR(rule(&n, 3, f32(sh(true, 3, B, 8, 7)), g, f32(sh(true, 3, B, 8, 7))),
              "batchnorm_grad expects a [C] or [C,H,W] input, got [8,7]", 0);
  CHECK_ERROR(rule(&n, 3, x, i32(sh(false, 1, 8)), x),
              "batchnorm_grad expects a float tensor, got an integer tensor", 1);
  n.f[0] = -1;
  CHECK_ERROR(rule(&n, 3, x, g, x), "batchnorm_grad eps must not be negative, got -1", -1);

  n = mk(IR_OP_BATCHNORM_GRAD_GAMMA);
  n.f[0] = 1e-5;
  CHECK_RESULT(rule(&n, 2, x, x), n, IR_F32, sh(false, 1, 8));
  CHECK_RESULT(rule(&n, 2, f32(sh(true, 2, B, 1024)), f32(sh(true, 2, B, 1024))), n, IR_F32,
               sh(false, 1, 1024));
  CHECK_ERROR(rule(&n, 2, x, f32(sh(true, 2, B, 8))),
              "batchnorm_grad_gamma: the input [8,7,7] and its gradient [8] differ in shape", 1);
  CHECK_ERROR(rule(&n, 2, f32(sh(true, 1, B)), f32(sh(true, 1, B))),
              "batchnorm_grad_gamma expects a [C] or [C,H,W] input, got []", 0);
}

static void test_expand(void) {
  ir_node n = mk(IR_OP_EXPAND);
  n.ashape = sh(true, 2, B, 10);
  CHECK_RESULT(rule(&n, 1, f32(sh(false, 1, 10))), n, IR_F32, sh(true, 2, B, 10));
  /* the gradient of a mean over the batch kept as [1,10]: plain numpy rules */
  CHECK_RESULT(rule(&n, 1, f32(sh(false, 2, 1, 10))), n, IR_F32, sh(true, 2, B, 10));
  CHECK_RESULT(rule(&n, 1, f32(shape_scalar())), n, IR_F32, sh(true, 2, B, 10));
  CHECK_RESULT(rule(&n, 1, f32(sh(true, 2, B, 1))), n, IR_F32, sh(true, 2, B, 10));
  CHECK_RESULT(rule(&n, 1, f32(sh(true, 2, B, 10))), n, IR_F32, sh(true, 2, B, 10));
  n.ashape = sh(true, 4, B, 8, 7, 7);
  CHECK_RESULT(rule(&n, 1, f32(sh(false, 3, 8, 1, 1))), n, IR_F32, sh(true, 4, B, 8, 7, 7));
  CHECK_ERROR(rule(&n, 1, f32(sh(false, 3, 8, 1, 2))), "expand: cannot broadcast [8,1,2] to [8,7,7]",
              0);
  n.ashape = sh(true, 2, B, 10);
  CHECK_ERROR(rule(&n, 1, f32(sh(true, 3, B, 1, 10))), "expand: cannot broadcast [1,10] to [10]",
              0);
  CHECK_ERROR(rule(&n, 1, f32(sh(false, 1, 5))), "expand: cannot broadcast [5] to [10]", 0);
  CHECK_ERROR(rule(&n, 1, i32(sh(false, 1, 10))),
              "expand expects a float tensor, got an integer tensor", 0);
  n.ashape = sh(false, 2, 3, -2);
  CHECK_ERROR(rule(&n, 1, f32(sh(false, 1, 3))),
              "expand target [3,-2] has a dimension that is not positive", -1);
}

static void test_unslice(void) {
  ir_node n = mk(IR_OP_UNSLICE);
  n.i[0] = 1, n.i[1] = 62, n.i[2] = 72;
  n.ashape = sh(true, 2, B, 74);
  CHECK_RESULT(rule(&n, 1, f32(sh(true, 2, B, 10))), n, IR_F32, sh(true, 2, B, 74));
  /* the real half of a concatenated real+fake batch */
  n.i[0] = 0, n.i[1] = 0, n.i[2] = B;
  n.ashape = sh(true, 2, 2 * B, 1);
  CHECK_RESULT(rule(&n, 1, f32(sh(true, 2, B, 1))), n, IR_F32, sh(true, 2, 2 * B, 1));
  n.i[1] = B, n.i[2] = 2 * B;
  CHECK_RESULT(rule(&n, 1, f32(sh(true, 2, B, 1))), n, IR_F32, sh(true, 2, 2 * B, 1));

  n.i[0] = 1, n.i[1] = 62, n.i[2] = 72;
  n.ashape = sh(true, 2, B, 74);
  CHECK_ERROR(rule(&n, 1, f32(sh(true, 2, B, 9))),
              "unslice: the gradient has 9 elements along axis 0, the range [62, 72) 10", 0);
  CHECK_ERROR(rule(&n, 1, f32(sh(true, 3, B, 10, 1))),
              "unslice: shapes [10,1] and [74] differ outside axis 0", 0);
  CHECK_ERROR(rule(&n, 1, f32(sh(true, 2, 32, 10))),
              "unslice: shapes [10] and [74] differ outside axis 0", 0);
  n.i[1] = 70, n.i[2] = 80;
  CHECK_ERROR(rule(&n, 1, f32(sh(true, 2, B, 10))),
              "unslice [70, 80) is out of range for axis 0 of [74]", -1);
  n.i[1] = 5, n.i[2] = 5;
  CHECK_ERROR(rule(&n, 1, f32(sh(true, 2, B, 0))),
              "unslice [5, 5) is out of range for axis 0 of [74]", -1);
  n.i[1] = -1, n.i[2] = 9;
  CHECK_ERROR(rule(&n, 1, f32(sh(true, 2, B, 10))),
              "unslice [-1, 9) is out of range for axis 0 of [74]", -1);
  n.i[0] = 2, n.i[1] = 0, n.i[2] = 1;
  CHECK_ERROR(rule(&n, 1, f32(sh(true, 2, B, 1))), "unslice: axis 1 is out of range for [74]",
              -1);
  n.i[0] = 0, n.i[1] = 0, n.i[2] = 80;
  CHECK_ERROR(rule(&n, 1, f32(sh(true, 2, 80, 74))),
              "unslice [0, 80) is out of range for the batch axis of [74]", -1);
  n.i[2] = 1;
  CHECK_ERROR(rule(&n, 1, i32(sh(true, 2, 1, 74))),
              "unslice expects a float tensor, got an integer tensor", 0);
}

static void test_softmax(void) {
  ir_node n = mk(IR_OP_SOFTMAX);
  CHECK_RESULT(rule(&n, 1, f32(sh(true, 2, B, 10))), n, IR_F32, sh(true, 2, B, 10));
  CHECK_RESULT(rule(&n, 1, f32(sh(false, 1, 3))), n, IR_F32, sh(false, 1, 3));
  CHECK_RESULT(rule(&n, 1, f32(sh(true, 4, B, 2, 3, 4))), n, IR_F32, sh(true, 4, B, 2, 3, 4));
  CHECK_ERROR(rule(&n, 1, f32(shape_scalar())), "softmax expects at least one axis, got a scalar",
              0);
  CHECK_ERROR(rule(&n, 1, i32(sh(true, 2, B, 10))),
              "softmax expects a float tensor, got an integer tensor", 0);
}

int main(void) {
  test_shapes();
  test_broadcast();
  test_sources();
  test_elementwise();
  test_matmul();
  test_conv();
  test_deconv();
  test_batchnorm();
  test_reshape_concat_slice();
  test_reduce();
  test_codes();
  test_losses();
  test_act_grad();
  test_conv_grad_x();
  test_conv_grad_w();
  test_batchnorm_grad();
  test_expand();
  test_unslice();
  test_softmax();
  return check_done();
}
