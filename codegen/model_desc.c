/* model_desc.c: the text that describes a model inside its shared object
 * (migc_model_desc), read back by runtime/model_desc.c for the C ABI. One record per
 * line, fields separated by single spaces (format: docs/abi.md). Doubles are written
 * as C99 hex floats so they read back exactly. */
#include "codegen/cg_internal.h"

#include "runtime/migc.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  char *buf;
  size_t len, cap;
  bool oom;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (k < 0 || t->oom) return;
  if (t->len + (size_t)k + 1 > t->cap) {
    size_t nc = (t->len + (size_t)k + 1) * 2;
    char *nb = realloc(t->buf, nc);
    if (!nb) {
      t->oom = true;
      return;
    }
    t->buf = nb, t->cap = nc;
  }
  va_start(ap, fmt);
  vsnprintf(t->buf + t->len, (size_t)k + 1, fmt, ap);
  va_end(ap);
  t->len += (size_t)k;
}

static void put_shape(text *t, ir_shape s) {
  put(t, " %d", s.rank);
  for (int d = 0; d < s.rank; d++) put(t, " %lld", (long long)s.dim[d]);
}

/* Names are single fields: no spaces, no line breaks, not empty. */
static bool plain(const char *s) {
  if (!s || !*s) return false;
  for (; *s; s++)
    if (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t') return false;
  return true;
}

static int dtype_code(ir_dtype dt) { return dt == IR_I32 ? MIGC_I32 : MIGC_F32; }

char *cg_model_desc(const ir_module *m, const size_t *scratch, const char *cpu,
                    const char *features, const cg_model_info *info, char *err, size_t errn) {
  text t = {0};
  if (strchr(info->file, '\n') || strchr(info->settings, '\n')) {
    snprintf(err, errn, "the model file name and -D settings must not hold line breaks");
    return NULL;
  }
  put(&t, "migc-model %d\nname %s\nhash %016llx\nbatch %lld\nstate %lld\nfile %s\nsettings %s\n",
      MIGC_ABI_VERSION, m->name, (unsigned long long)info->hash, (long long)m->batch,
      (long long)m->state_size, info->file, info->settings);
  if (cpu) put(&t, "cpu %s%s%s\n", cpu, features && *features ? " " : "", features ? features : "");
  const char *bad = plain(m->name) ? NULL : m->name;
  for (int v = 0; v < m->nvars; v++) {
    const ir_var *x = &m->vars[v];
    if (!plain(x->name) || x->dtype != IR_F32) bad = x->name;
    put(&t, "var %s %d %lld %d %lld %a %a", x->name, (int)x->kind, (long long)x->offset,
        (int)x->init.kind, (long long)x->init.fan_in, x->init.a, x->init.b);
    put_shape(&t, x->shape);
    put(&t, "\n");
  }
  for (int i = 0; i < m->ninputs; i++) {
    const ir_input *x = &m->inputs[i];
    if (!plain(x->name) || x->dtype == IR_F64) bad = x->name;
    put(&t, "input %s %d %d %a %a %lld %d", x->name, (int)x->kind, (int)x->dist, x->a, x->b,
        (long long)x->pad, dtype_code(x->dtype));
    put_shape(&t, x->shape);
    put(&t, "\n");
  }
  for (int k = 0; k < m->nfuncs; k++) {
    const ir_func *f = m->funcs[k];
    if (!plain(f->name) || f->ninputs > 64 || f->noutputs > 64) bad = f->name;
    put(&t, "func %s %zu %d", f->name, scratch[k], f->ninputs);
    for (int j = 0; j < f->ninputs; j++) put(&t, " %d", f->inputs[j]);
    put(&t, " %d\n", f->noutputs);
    for (int o = 0; o < f->noutputs; o++) {
      const ir_node *n = &f->nodes[f->outputs[o].node];
      if (!plain(f->outputs[o].name) || n->dtype == IR_F64) bad = f->outputs[o].name;
      put(&t, "out %s %d", f->outputs[o].name, dtype_code(n->dtype));
      put_shape(&t, n->shape);
      put(&t, "\n");
    }
  }
  put(&t, "end\n");
  if (t.oom || bad) {
    if (bad) snprintf(err, errn, "'%s' cannot be described to the C ABI (a name with spaces, "
                                 "more than 64 inputs or outputs, or a float64 value)", bad);
    else snprintf(err, errn, "out of memory");
    free(t.buf);
    return NULL;
  }
  return t.buf;
}
