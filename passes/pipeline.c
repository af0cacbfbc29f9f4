/* pipeline.c: which passes run, in what order, and the check after each. The order
 * is the compiler's: every step differentiated and its update lowered, then exact
 * simplifications, then dead code removed. Each pass can be switched off by name; with verify_each (the default, and
 * always in tests) the verifier runs after every pass, so a pass that breaks an
 * invariant is named at once. */
#include "passes.h"

#include <string.h>

static int run_lower(ir_module *m, char *err, size_t errn) {
  return pass_lower_steps(m, err, errn);
}

static int run_constfold(ir_module *m, char *err, size_t errn) {
  (void)err, (void)errn;
  for (int i = 0; i < m->nfuncs; i++) pass_constfold(m->funcs[i]);
  return 0;
}

static int run_simplify(ir_module *m, char *err, size_t errn) {
  (void)err, (void)errn;
  for (int i = 0; i < m->nfuncs; i++) pass_simplify(m->funcs[i]);
  return 0;
}

static int run_dce(ir_module *m, char *err, size_t errn) {
  (void)err, (void)errn;
  for (int i = 0; i < m->nfuncs; i++) pass_dce(m->funcs[i]);
  return 0;
}

const pass_info passes[] = {
    {"autodiff", "differentiate every step and lower its optimizer update", run_lower},
    {"constfold", "fold scalar elementwise ops of constants into constants (exact)",
     run_constfold},
    {"simplify", "merge common subexpressions, drop x*1 and reshape chains (exact)",
     run_simplify},
    {"dce", "remove nodes whose values reach no output, loss or store", run_dce},
};
const int npasses = sizeof passes / sizeof passes[0];

const pass_info *pass_find(const char *name) {
  for (int i = 0; i < npasses; i++)
    if (!strcmp(passes[i].name, name)) return &passes[i];
  return NULL;
}

static bool disabled(const pass_options *o, const char *name) {
  for (int i = 0; i < o->ndisabled; i++)
    if (!strcmp(o->disabled[i], name)) return true;
  return false;
}

int passes_run(ir_module *m, const pass_options *o, diag_sink *d) {
  ir_span none = {0};
  for (int i = 0; i < npasses; i++) {
    if (disabled(o, passes[i].name)) continue;
    char err[512] = "";
    if (passes[i].run(m, err, sizeof err)) {
      diag_error(d, none, "pass %s: %s", passes[i].name, err);
      return -1;
    }
    if (o->verify_each) {
      diag_sink vd;
      diag_init(&vd);
      bool ok = ir_verify(m, &vd);
      if (!ok) {
        diag_error(d, none, "internal error: the IR does not verify after pass %s: %s",
                   passes[i].name, vd.entries[0].msg);
        for (int k = 1; k < vd.n && k < 10; k++) diag_note(d, none, "%s", vd.entries[k].msg);
      }
      diag_free(&vd);
      if (!ok) return -1;
    }
  }
  return 0;
}
