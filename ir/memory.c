/* memory.c: the bytes a module's buffers take, so that a model too big for the machine
 * is refused when it is compiled, with the size it needs, instead of failing (or being
 * killed) when its buffers are allocated. */
#include "ir/ir.h"

#include <stdio.h>

static int64_t add_sat(int64_t a, int64_t b) { return a > INT64_MAX - b ? INT64_MAX : a + b; }

static int64_t bytes_of(int64_t numel) {
  return numel < 0 || numel > INT64_MAX / 4 ? INT64_MAX : numel * 4;
}

ir_memory ir_memory_need(const ir_module *m) {
  ir_memory r = {0};
  for (int v = 0; v < m->nvars; v++)
    r.state_bytes = add_sat(r.state_bytes, bytes_of(shape_numel_checked(m->vars[v].shape)));
  for (int k = 0; k < m->nfuncs; k++)
    for (int i = 0; i < m->funcs[k]->nnodes; i++)
      r.temp_bytes = add_sat(r.temp_bytes, bytes_of(shape_numel_checked(m->funcs[k]->nodes[i].shape)));
  r.total_bytes = add_sat(r.state_bytes, r.temp_bytes);
  return r;
}

void ir_format_bytes(int64_t bytes, char *buf, size_t n) {
  static const char *units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double x = (double)bytes;
  int u = 0;
  while (x >= 1024 && u < 6) {
    x /= 1024;
    u++;
  }
  if (u == 0)
    snprintf(buf, n, "%lld bytes", (long long)bytes);
  else
    snprintf(buf, n, "%.1f %s", x, units[u]);
}

bool ir_memory_fits(const ir_module *m, int64_t limit, char *err, size_t errn) {
  ir_memory need = ir_memory_need(m);
  if (limit <= 0 || need.total_bytes <= limit) return true;
  char total[32], state[32], temp[32], lim[32];
  ir_format_bytes(need.total_bytes, total, sizeof total);
  ir_format_bytes(need.state_bytes, state, sizeof state);
  ir_format_bytes(need.temp_bytes, temp, sizeof temp);
  ir_format_bytes(limit, lim, sizeof lim);
  snprintf(err, errn,
           "model %s needs %s of memory (%lld bytes: state %s, temporaries %s at batch %lld), "
           "more than the limit of %s; --max-memory SIZE sets the limit (default: this "
           "machine's memory)",
           m->name, total, (long long)need.total_bytes, state, temp, (long long)m->batch, lim);
  return false;
}
