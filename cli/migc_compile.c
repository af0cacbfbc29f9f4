/* migc_compile.c: `migc compile` (see migc_compile.h). The model is compiled as migc
 * train compiles it (model_open: same passes, same program hash), then codegen writes
 * the object file and links it (codegen/emit_object.c, codegen/link_shared.c). */
#include "migc_compile.h"

#include "migc_model.h"
#include "migc_schedule.h"

#include "codegen/codegen.h"
#include "runtime/runtime.h"

#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* NAME of .../libNAME.so, as a C identifier (other characters become '_'). */
static void header_name(const char *out, char *name, size_t n) {
  const char *base = strrchr(out, '/') ? strrchr(out, '/') + 1 : out;
  if (!strncmp(base, "lib", 3) && base[3]) base += 3;
  size_t len = strlen(base);
  if (len > 3 && !strcmp(base + len - 3, ".so")) len -= 3;
  if (len >= n) len = n - 1;
  for (size_t i = 0; i < len; i++)
    name[i] = isalnum((unsigned char)base[i]) ? base[i] : '_';
  name[len] = '\0';
  if (!len || isdigit((unsigned char)name[0])) snprintf(name, n, "model");
}

/* NAME.h: what a host that knows this model may want as compile-time constants. The
 * generic ABI needs none of it. */
static int write_header(const model *md, const char *out, char *err, size_t errn) {
  char name[256], upper[256], path[1200];
  header_name(out, name, sizeof name);
  for (size_t i = 0; i <= strlen(name); i++) upper[i] = (char)toupper((unsigned char)name[i]);
  char *dir = strdup(out);
  if (!dir) return 1;
  snprintf(path, sizeof path, "%s/%s.h", dirname(dir), name);
  free(dir);
  const ir_module *m = md->m;
  char *text = NULL;
  size_t len = 0;
  FILE *fp = open_memstream(&text, &len);
  if (!fp) return file_fail(err, errn, path, "out of memory");
  fprintf(fp, "/* %s.h: constants of model %s, compiled by migc %s into %s.\n"
              " * The C ABI itself is in migc.h (docs/abi.md); a host needs none of these. */\n"
              "#ifndef MIGC_MODEL_%s_H\n#define MIGC_MODEL_%s_H\n\n#include \"migc.h\"\n\n",
          name, m->name, MIGC_VERSION, out, upper, upper);
  fprintf(fp, "#define %s_PROGRAM_HASH 0x%016llxULL /* migc_program_hash() */\n", upper,
          (unsigned long long)md->hash);
  fprintf(fp, "#define %s_BATCH %lld\n#define %s_STATE_SIZE %lld /* floats */\n", upper,
          (long long)m->batch, upper, (long long)m->state_size);
  int64_t params = 0;
  for (int v = 0; v < m->nvars; v++)
    if (m->vars[v].kind == VAR_PARAM) params += shape_numel(m->vars[v].shape);
  fprintf(fp, "#define %s_PARAMETERS %lld /* trained floats */\n", upper, (long long)params);
  fprintf(fp, "#define %s_VARS %d\n#define %s_INPUTS %d\n#define %s_FUNCTIONS %d\n\n", upper,
          m->nvars, upper, m->ninputs, upper, m->nfuncs);
  for (int i = 0; i < m->ninputs; i++) {
    const ir_input *in = &m->inputs[i];
    char id[128];
    snprintf(id, sizeof id, "%s", in->name);
    for (char *c = id; *c; c++) *c = isalnum((unsigned char)*c) ? (char)toupper((unsigned char)*c) : '_';
    fprintf(fp, "#define %s_INPUT_%s %d /* %s, %lld elements */\n", upper, id, i,
            in->kind == INPUT_DATA ? "data" : in->kind == INPUT_SEED ? "seed"
            : in->kind == INPUT_CODE ? "code" : in->kind == INPUT_LABEL ? "labels" : "latent",
            (long long)shape_numel(in->shape));
    fprintf(fp, "#define %s_INPUT_%s_NUMEL %lld\n", upper, id, (long long)shape_numel(in->shape));
  }
  for (int k = 0; k < m->nfuncs; k++) {
    const ir_func *f = m->funcs[k];
    for (int o = 0; o < f->noutputs; o++) {
      char id[160];
      snprintf(id, sizeof id, "%s_%s", f->name, f->outputs[o].name);
      for (char *c = id; *c; c++) *c = isalnum((unsigned char)*c) ? (char)toupper((unsigned char)*c) : '_';
      fprintf(fp, "#define %s_%s %d /* output index */\n", upper, id, o);
      fprintf(fp, "#define %s_%s_NUMEL %lld\n", upper, id,
              (long long)shape_numel(f->nodes[f->outputs[o].node].shape));
    }
  }
  fprintf(fp, "\n#endif\n");
  fclose(fp);
  const void *parts[1] = {text};
  size_t lens[1] = {len};
  int st = file_write_atomic(path, parts, lens, 1, err, errn);
  free(text);
  return st;
}

int compile_run(const char *path, const const_overrides *ov, int64_t batch, const char *out,
                const cg_options *co, bool stats, diag_sink *d) {
  /* the object, the temporary library and NAME.h all go beside out */
  char *copy = strdup(out);
  const char *dir = copy ? dirname(copy) : ".";
  if (access(dir, W_OK) != 0) {
    fprintf(stderr, "migc compile: cannot write %s: %s: %s\n", out, dir, strerror(errno));
    free(copy);
    return 1;
  }
  free(copy);
  model md;
  if (model_open(&md, path, ov, batch, 1, false, true, NULL, d)) {
    if (!d->nerrors) fprintf(stderr, "migc compile: %s\n", md.err);
    model_close(&md);
    return 1;
  }
  char obj[1200], err[1024];
  snprintf(obj, sizeof obj, "%s.%ld.o", out, (long)getpid());
  cg_model_info info = {md.hash, md.file, md.settings};
  cg_stats cs;
  int st = cg_emit_object(md.m, co, &info, obj, &cs, err, sizeof err) ||
           cg_link_shared(obj, out, err, sizeof err) || write_header(&md, out, err, sizeof err);
  unlink(obj);
  if (st)
    fprintf(stderr, "migc compile: %s\n", err);
  else
    fprintf(stderr, "migc compile: %s (batch %lld, program %016llx) -> %s for %s in %.0f ms "
                    "(lower %.0f, optimise %.0f, machine code %.0f) and linked\n",
            md.m->name, (long long)md.m->batch, (unsigned long long)md.hash, out,
            co->cpu && strcmp(co->cpu, "native") ? co->cpu : "this CPU (native)", cs.total_ms,
            cs.lower_ms, cs.opt_ms, cs.jit_ms);
  if (!st && stats && schedule_report(md.m, co, false, stdout, err, sizeof err)) {
    fprintf(stderr, "migc compile: %s\n", err);
    st = 1;
  }
  model_close(&md);
  return st;
}
