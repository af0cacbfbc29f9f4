/* model_desc.c: parsing the description a compiled model carries (migc_model_desc,
 * written by codegen/model_desc.c; format in docs/abi.md). One record per line, fields
 * separated by single spaces; names have no spaces. The text is the library's own, but
 * it is checked as if it were not: a damaged library fails migc_create with a message
 * instead of running off its state buffer. */
#include "runtime/runtime.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DESC_MAX_ITEMS (1 << 20)

typedef struct {
  char *tok[64 + 2 * MIGC_MAX_RANK];
  int n;
  int line;
  char *err;
  size_t errn;
} fields;

static int desc_fail(fields *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int desc_fail(fields *f, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(f->err, f->errn, "model description, line %d: %s", f->line, msg);
  return 1;
}

static bool get_i64(const char *s, int64_t lo, int64_t hi, int64_t *v) {
  if (!s || !*s) return false;
  char *end;
  errno = 0;
  long long x = strtoll(s, &end, 10);
  if (*end || errno || x < lo || x > hi) return false;
  *v = x;
  return true;
}

static bool get_f64(const char *s, double *v) {
  if (!s || !*s) return false;
  char *end;
  *v = strtod(s, &end);
  return !*end;
}

/* RANK D0 .. D(rank-1) starting at token k; numel must stay below 2^40 elements. */
static int get_shape(fields *f, int k, int *rank, int64_t *shape, int64_t *numel) {
  int64_t r;
  if (!get_i64(k < f->n ? f->tok[k] : NULL, 0, MIGC_MAX_RANK, &r) || k + 1 + r != f->n)
    return desc_fail(f, "bad shape");
  *rank = (int)r;
  *numel = 1;
  for (int d = 0; d < r; d++) {
    if (!get_i64(f->tok[k + 1 + d], 0, (int64_t)1 << 40, &shape[d]) ||
        (shape[d] && *numel > ((int64_t)1 << 40) / shape[d]))
      return desc_fail(f, "bad shape");
    *numel *= shape[d];
  }
  return 0;
}

int model_desc_func(const model_desc *d, const char *name) {
  for (int k = 0; k < d->nfuncs; k++)
    if (!strcmp(d->funcs[k].info.name, name)) return k;
  return -1;
}

int model_desc_parse(const char *text, model_desc *d, char *err, size_t errn) {
  memset(d, 0, sizeof *d);
  fields f = {.err = err, .errn = errn};
  if (!text) return desc_fail(&f, "missing");
  d->strings_ = strdup(text);
  if (!d->strings_) return desc_fail(&f, "out of memory");
  /* counts first, to allocate once */
  int nv = 0, ni = 0, nf = 0, no = 0;
  for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
    p += strspn(p, " "); /* the tokenizer below skips leading spaces too */
    nv += !strncmp(p, "var ", 4);
    ni += !strncmp(p, "input ", 6);
    nf += !strncmp(p, "func ", 5);
    no += !strncmp(p, "out ", 4);
    if (nv + ni + nf + no > DESC_MAX_ITEMS) return desc_fail(&f, "too many records");
  }
  d->vars = calloc((size_t)nv + 1, sizeof *d->vars);
  d->inputs = calloc((size_t)ni + 1, sizeof *d->inputs);
  d->funcs = calloc((size_t)nf + 1, sizeof *d->funcs);
  migc_output_info *outs = calloc((size_t)no + 1, sizeof *outs);
  size_t fields_total = 1; /* every function input is a field: room for all of them */
  for (const char *p = text; *p; p++) fields_total += *p == ' ';
  int *ins = calloc(fields_total, sizeof *ins);
  int nouts = 0, nins = 0;
  if (!d->vars || !d->inputs || !d->funcs || !outs || !ins) {
    free(outs), free(ins);
    model_desc_free(d);
    return desc_fail(&f, "out of memory");
  }
  /* outputs and input lists live in the first function's arrays (freed through it) */
  bool header = false, ended = false, have_state = false;
  desc_func *cur = NULL;
  int rc = 0;
  char *save = NULL;
  for (char *line = strtok_r(d->strings_, "\n", &save); line && !rc && !ended;
       line = strtok_r(NULL, "\n", &save)) {
    f.line++;
    /* "file" and "settings" keep the rest of the line, spaces and all */
    if (!strncmp(line, "file ", 5) || !strcmp(line, "file")) {
      d->file = line[4] ? line + 5 : line + 4;
      continue;
    }
    if (!strncmp(line, "settings ", 9) || !strcmp(line, "settings")) {
      d->settings = line[8] ? line + 9 : line + 8;
      continue;
    }
    /* "cpu NAME FEATURE...": the features stay one string for cpu_missing_features */
    if (!strncmp(line, "cpu ", 4) && line[4] && line[4] != ' ') {
      if (d->cpu) {
        rc = desc_fail(&f, "the cpu is given twice");
        continue;
      }
      d->cpu = line + 4;
      char *sp = strchr(d->cpu, ' ');
      d->features = sp ? sp + 1 : d->cpu + strlen(d->cpu);
      if (sp) *sp = '\0';
      continue;
    }
    f.n = 0;
    char *tsave = NULL;
    for (char *t = strtok_r(line, " ", &tsave); t; t = strtok_r(NULL, " ", &tsave)) {
      if (f.n == (int)(sizeof f.tok / sizeof f.tok[0])) {
        rc = desc_fail(&f, "too many fields");
        break;
      }
      f.tok[f.n++] = t;
    }
    if (rc || f.n == 0) continue;
    const char *kw = f.tok[0];
    int64_t v = 0;
    if (!header) {
      if (strcmp(kw, "migc-model") || f.n != 2 || !get_i64(f.tok[1], 0, 1000, &v))
        rc = desc_fail(&f, "does not start with 'migc-model VERSION'");
      else if (v != MIGC_ABI_VERSION)
        rc = desc_fail(&f, "version %" PRId64 ", this runtime reads version %d", v,
                       MIGC_ABI_VERSION);
      d->version = (int)v;
      header = true;
    } else if (!strcmp(kw, "name") && f.n == 2) {
      d->name = f.tok[1];
    } else if (!strcmp(kw, "hash") && f.n == 2) {
      char *end;
      d->hash = strtoull(f.tok[1], &end, 16);
      if (*end || strlen(f.tok[1]) != 16) rc = desc_fail(&f, "bad hash");
    } else if (!strcmp(kw, "batch") && f.n == 2) {
      if (!get_i64(f.tok[1], 1, (int64_t)1 << 30, &d->batch)) rc = desc_fail(&f, "bad batch");
    } else if (!strcmp(kw, "state") && f.n == 2) {
      /* once: the variables before a second line were checked against the first */
      if (have_state) rc = desc_fail(&f, "the state size is given twice");
      else if (!get_i64(f.tok[1], 0, (int64_t)1 << 40, &d->state_size))
        rc = desc_fail(&f, "bad state size");
      have_state = true;
    } else if (!strcmp(kw, "var") && f.n >= 9) {
      desc_var *x = &d->vars[d->nvars++];
      int64_t kind = 0, init = 0;
      x->info.name = f.tok[1];
      if (!get_i64(f.tok[2], 0, MIGC_VAR_EMA, &kind) ||
          !get_i64(f.tok[3], 0, (int64_t)1 << 40, &x->info.offset) ||
          !get_i64(f.tok[4], 0, STATE_INIT_NORMAL, &init) ||
          !get_i64(f.tok[5], 0, (int64_t)1 << 40, &x->fan_in) || !get_f64(f.tok[6], &x->a) ||
          !get_f64(f.tok[7], &x->b))
        rc = desc_fail(&f, "bad variable");
      else rc = get_shape(&f, 8, &x->info.rank, x->info.shape, &x->info.numel);
      x->info.kind = (migc_var_kind)kind;
      x->init = (int)init;
      if (!rc && (!have_state || x->info.offset > d->state_size - x->info.numel))
        rc = desc_fail(&f, "variable %s lies outside the state", x->info.name);
    } else if (!strcmp(kw, "input") && f.n >= 9) {
      migc_input_info *x = &d->inputs[d->ninputs++];
      int64_t kind = 0, dist = 0, dtype = 0;
      x->name = f.tok[1];
      if (!get_i64(f.tok[2], 0, MIGC_INPUT_LABEL, &kind) ||
          !get_i64(f.tok[3], 0, MIGC_DIST_BERNOULLI, &dist) || !get_f64(f.tok[4], &x->a) ||
          !get_f64(f.tok[5], &x->b) || !get_i64(f.tok[6], 0, (int64_t)1 << 20, &x->pad) ||
          !get_i64(f.tok[7], 0, MIGC_I32, &dtype))
        rc = desc_fail(&f, "bad input");
      else rc = get_shape(&f, 8, &x->rank, x->shape, &x->numel);
      x->kind = (migc_input_kind)kind, x->dist = (migc_dist)dist, x->dtype = (migc_dtype)dtype;
      if (!rc && x->kind == MIGC_INPUT_SEED && x->numel != 2) rc = desc_fail(&f, "bad seed input");
      if (!rc && x->dist == MIGC_DIST_CATEGORICAL && !(x->a >= 1 && x->a <= (1 << 24)))
        rc = desc_fail(&f, "bad categorical input");
    } else if (!strcmp(kw, "func") && f.n >= 5) {
      if (cur && nouts - (int)(cur->outputs - outs) != cur->info.noutputs)
        rc = desc_fail(&f, "function %s lacks outputs", cur->info.name);
      cur = &d->funcs[d->nfuncs++];
      int64_t scratch = 0, nin = 0, nout = 0;
      cur->info.name = f.tok[1];
      if (!rc && (!get_i64(f.tok[2], 0, INT64_MAX, &scratch) || !get_i64(f.tok[3], 0, 64, &nin) ||
                  f.n != 5 + nin || !get_i64(f.tok[4 + nin], 0, 64, &nout)))
        rc = desc_fail(&f, "bad function");
      if (!rc) {
        cur->info.scratch_bytes = (size_t)scratch;
        cur->info.ninputs = (int)nin;
        cur->info.inputs = ins + nins;
        for (int j = 0; j < nin && !rc; j++) {
          if (!get_i64(f.tok[4 + j], 0, d->ninputs - 1, &v))
            rc = desc_fail(&f, "function %s: input %d is not a declared input", cur->info.name, j);
          ins[nins++] = (int)v;
        }
        cur->info.noutputs = (int)nout;
        cur->outputs = outs + nouts;
      }
    } else if (!strcmp(kw, "out") && f.n >= 4) {
      if (!cur || nouts - (int)(cur->outputs - outs) >= cur->info.noutputs) {
        rc = desc_fail(&f, "output outside a function");
        continue;
      }
      migc_output_info *x = &outs[nouts++];
      int64_t dtype = 0;
      x->name = f.tok[1];
      if (!get_i64(f.tok[2], 0, MIGC_I32, &dtype)) rc = desc_fail(&f, "bad output");
      else rc = get_shape(&f, 3, &x->rank, x->shape, &x->numel);
      x->dtype = (migc_dtype)dtype;
    } else if (!strcmp(kw, "end") && f.n == 1) {
      ended = true;
    } else {
      rc = desc_fail(&f, "unknown record '%s'", kw);
    }
  }
  if (!rc && cur && nouts - (int)(cur->outputs - outs) != cur->info.noutputs)
    rc = desc_fail(&f, "function %s lacks outputs", cur->info.name);
  if (!rc && (!ended || !d->name || !d->batch || !have_state || !d->file || !d->settings))
    rc = desc_fail(&f, "incomplete (no name, batch, state, file, settings or end)");
  /* ownership of the shared arrays: outs and ins hang off funcs[0] (or are freed now) */
  if (d->nfuncs > 0) {
    d->funcs[0].outputs = outs;
    d->funcs[0].info.inputs = ins;
  } else {
    free(outs), free(ins);
  }
  if (rc) model_desc_free(d);
  return rc;
}

void model_desc_free(model_desc *d) {
  if (d->funcs && d->nfuncs > 0) {
    free(d->funcs[0].outputs);
    free((int *)d->funcs[0].info.inputs);
  }
  free(d->funcs);
  free(d->vars);
  free(d->inputs);
  free(d->strings_);
  memset(d, 0, sizeof *d);
}
