/* shape.c: static shapes, broadcasting and how shapes are printed.
 *
 * A shape carries every dimension, the batch included; `batched` says dim[0] is the
 * batch. Users never write the batch dimension, so everything they read goes through
 * shape_user_str, which drops it. */
#include "ir/ir.h"

#include <stdio.h>
#include <string.h>

ir_shape shape_make(int rank, const int64_t *dims, bool batched) {
  ir_shape s;
  memset(&s, 0, sizeof s);
  s.rank = rank;
  for (int d = 0; d < rank && d < IR_MAX_RANK; d++) s.dim[d] = dims[d];
  s.batched = batched && rank > 0;
  return s;
}

ir_shape shape_scalar(void) {
  ir_shape s;
  memset(&s, 0, sizeof s);
  return s;
}

int64_t shape_numel(ir_shape s) {
  int64_t n = 1;
  for (int d = 0; d < s.rank; d++) n *= s.dim[d];
  return n;
}

int64_t shape_numel_checked(ir_shape s) {
  int64_t n = 1;
  for (int d = 0; d < s.rank; d++) {
    if (s.dim[d] < 0) return -1;
    if (s.dim[d] > 0 && n > IR_MAX_NUMEL / s.dim[d]) return -1;
    n *= s.dim[d];
  }
  return n;
}

bool shape_equal(ir_shape a, ir_shape b) {
  if (a.rank != b.rank) return false;
  for (int d = 0; d < a.rank; d++)
    if (a.dim[d] != b.dim[d]) return false;
  return true;
}

/* "[d_from,...,d_rank-1]"; truncates safely when buf is short. */
static void dims_str(ir_shape s, int from, char *buf, size_t n) {
  if (n == 0) return;
  size_t k = 0;
  int w = snprintf(buf, n, "[");
  k = w > 0 ? (size_t)w : 0;
  for (int d = from; d < s.rank && k < n; d++) {
    w = snprintf(buf + k, n - k, "%s%lld", d > from ? "," : "", (long long)s.dim[d]);
    if (w < 0) return;
    k += (size_t)w;
  }
  if (k < n) snprintf(buf + k, n - k, "]");
}

void shape_str(ir_shape s, char *buf, size_t n) { dims_str(s, 0, buf, n); }

void shape_user_str(ir_shape s, char *buf, size_t n) {
  dims_str(s, s.batched && s.rank > 0 ? 1 : 0, buf, n);
}

/* Right-aligned numpy broadcasting of the trailing dims. The batch rule narrows what
 * numpy allows: a batched operand's dim 0 only ever meets another batch dimension,
 * never a per-sample one, so a shape bug cannot silently turn [B] into [B,B]. */
bool shape_broadcast(ir_shape a, ir_shape b, ir_shape *out, char *err, size_t errn) {
  char as[160], bs[160];
  const char *why = NULL;
  char batches[80];
  if (a.batched && b.batched && a.rank != b.rank) {
    why = ": batched operands must have the same rank";
  } else if (a.batched && b.batched && a.dim[0] != b.dim[0]) {
    snprintf(batches, sizeof batches, ": batch sizes %lld and %lld differ",
             (long long)a.dim[0], (long long)b.dim[0]);
    why = batches;
  } else if (a.batched != b.batched) {
    ir_shape bat = a.batched ? a : b, un = a.batched ? b : a;
    if (un.rank > bat.rank - 1) why = ": the unbatched operand has more dimensions than a sample";
  }
  int rank = a.rank > b.rank ? a.rank : b.rank;
  ir_shape r = shape_scalar();
  r.rank = rank;
  r.batched = a.batched || b.batched;
  bool ok = why == NULL;
  for (int d = 0; ok && d < rank; d++) {
    /* position d of the result, counted from the right in each operand */
    int da = d - (rank - a.rank), db = d - (rank - b.rank);
    int64_t x = da >= 0 ? a.dim[da] : 1, y = db >= 0 ? b.dim[db] : 1;
    if (x == y || y == 1) {
      r.dim[d] = x;
    } else if (x == 1) {
      r.dim[d] = y;
    } else {
      ok = false;
    }
  }
  if (!ok) {
    shape_user_str(a, as, sizeof as);
    shape_user_str(b, bs, sizeof bs);
    snprintf(err, errn, "cannot broadcast %s with %s%s", as, bs, why ? why : "");
    return false;
  }
  *out = r;
  return true;
}
