/* migc_main.c: the command-line driver. It parses options, calls the libraries and
 * prints what they report; it is the only place that prints diagnostics and chooses
 * the exit status: 0 success, 1 errors in the model, 2 a usage error. */
#include "frontend/frontend.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  const char *file;
  const_overrides overrides;
  int64_t batch;
  bool color;
  bool dump_ast, dump_ir;
} cli_options;

typedef struct {
  const char *name;
  int (*run)(cli_options *o);
  const char *summary;
  const char *usage;
  const char *help;
} command;

static const char common_help[] =
    "  -D NAME=VALUE   override a constant of the model (const NAME = ...)\n"
    "  --batch N       compile for batch size N instead of the train block's\n"
    "  --color WHEN    colour diagnostics: auto (default), always, never\n"
    "  -h, --help      show this help\n";

/* Parses and elaborates o->file, printing diagnostics. Returns the module or NULL. */
static ir_module *load_model(cli_options *o, diag_sink *d, ast_file **ast_out) {
  ast_file *ast = parse_file(d, o->file);
  if (ast_out) *ast_out = ast;
  if (!ast || d->nerrors) return NULL;
  elab_options eo = {&o->overrides, o->batch};
  ir_module *m = elaborate(ast, &eo, d);
  if (m) {
    diag_sink vd;
    diag_init(&vd);
    if (!ir_verify(m, &vd)) {
      fputs("migc: internal error: the IR built from this model does not verify:\n", stderr);
      diag_print(&vd, stderr, false);
      diag_free(&vd);
      ir_module_free(m);
      return NULL;
    }
    diag_free(&vd);
  }
  return m;
}

static int finish(diag_sink *d, cli_options *o, int status) {
  diag_print(d, stderr, o->color);
  if (d->nerrors && status == 0) status = 1;
  if (d->nerrors)
    fprintf(stderr, "%d error%s\n", d->nerrors, d->nerrors == 1 ? "" : "s");
  diag_free(d);
  return status;
}

static int cmd_check(cli_options *o) {
  diag_sink d;
  diag_init(&d);
  ast_file *ast = NULL;
  ir_module *m = load_model(o, &d, &ast);
  if (m) {
    int64_t params = 0;
    for (int i = 0; i < m->nvars; i++)
      if (m->vars[i].kind == VAR_PARAM) params += shape_numel(m->vars[i].shape);
    printf("%s: model %s is well-formed: %d nets, %lld parameters, batch %lld, entries",
           o->file, m->name, m->nnets, (long long)params, (long long)m->batch);
    for (int i = 0; i < m->nfuncs; i++) printf(" %s", m->funcs[i]->name);
    putchar('\n');
  }
  ir_module_free(m);
  if (ast) ast_free(ast);
  return finish(&d, o, m ? 0 : 1);
}

static int cmd_dump(cli_options *o) {
  if (!o->dump_ast && !o->dump_ir) {
    fputs("migc dump: say what to print: --ast or --ir\n", stderr);
    return 2;
  }
  diag_sink d;
  diag_init(&d);
  ast_file *ast = NULL;
  if (o->dump_ast) {
    ast = parse_file(&d, o->file);
    if (ast && !d.nerrors) ast_print(ast, stdout);
    if (ast) ast_free(ast);
    return finish(&d, o, 0);
  }
  ir_module *m = load_model(o, &d, &ast);
  if (m) ir_print_module(m, stdout);
  ir_module_free(m);
  if (ast) ast_free(ast);
  return finish(&d, o, m ? 0 : 1);
}

static const command commands[] = {
    {"check", cmd_check, "parse a model, resolve names and infer every shape",
     "migc check FILE [-D NAME=VALUE]... [--batch N]",
     "Reads FILE, reports every error it finds with its file:line:col, the source\n"
     "line and a caret, and exits 1 if there were any. On success prints a summary\n"
     "(nets, parameter count, batch size, entry functions) and exits 0.\n"},
    {"dump", cmd_dump, "print a stage of compilation",
     "migc dump FILE (--ast | --ir) [-D NAME=VALUE]... [--batch N]",
     "  --ast           the syntax tree, one node per line with its line:col\n"
     "  --ir            the IR module: state variables with their offsets and\n"
     "                  initialisers, inputs, and every entry function's nodes\n"
     "                  with shapes, grouped into the blocks of each step\n"},
};
enum { NCOMMANDS = sizeof commands / sizeof commands[0] };

static void usage(FILE *out) {
  fputs("migc: a compiler for GANs with a mutual-information objective (InfoGAN)\n\n"
        "usage: migc COMMAND [OPTIONS] FILE\n\ncommands:\n",
        out);
  for (int i = 0; i < NCOMMANDS; i++)
    fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
  fputs("\n  migc COMMAND --help   options of one command\n"
        "  migc --version        print the version\n",
        out);
}

static void command_help(const command *c) {
  printf("usage: %s\n\n%s\n%s\n%s", c->usage, c->summary, c->help, "options:\n");
  fputs(common_help, stdout);
}

static int parse_options(const command *c, int argc, char **argv, cli_options *o) {
  const char *color = "auto";
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    const char *val = NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      command_help(c);
      return -1;
    } else if (!strcmp(a, "-D") || !strncmp(a, "-D", 2)) {
      val = a[2] ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);
      if (!val) {
        fprintf(stderr, "migc %s: -D needs NAME=VALUE\n", c->name);
        return 2;
      }
      char err[256];
      if (!overrides_add(&o->overrides, val, err, sizeof err)) {
        fprintf(stderr, "migc %s: %s\n", c->name, err);
        return 2;
      }
    } else if (!strcmp(a, "--batch")) {
      char *end;
      if (i + 1 >= argc || (o->batch = strtoll(argv[++i], &end, 10), *end) || o->batch < 1 ||
          o->batch > (1 << 20)) {
        fprintf(stderr, "migc %s: --batch needs a whole number from 1 to %d\n", c->name, 1 << 20);
        return 2;
      }
    } else if (!strcmp(a, "--color") || !strncmp(a, "--color=", 8)) {
      color = a[7] == '=' ? a + 8 : (i + 1 < argc ? argv[++i] : "");
      if (strcmp(color, "auto") && strcmp(color, "always") && strcmp(color, "never")) {
        fprintf(stderr, "migc %s: --color takes auto, always or never\n", c->name);
        return 2;
      }
    } else if (!strcmp(c->name, "dump") && !strcmp(a, "--ast")) {
      o->dump_ast = true;
    } else if (!strcmp(c->name, "dump") && !strcmp(a, "--ir")) {
      o->dump_ir = true;
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "migc %s: unknown option '%s' (see migc %s --help)\n", c->name, a,
              c->name);
      return 2;
    } else if (o->file) {
      fprintf(stderr, "migc %s: one model file at a time ('%s' and '%s')\n", c->name, o->file,
              a);
      return 2;
    } else {
      o->file = a;
    }
  }
  if (!o->file) {
    fprintf(stderr, "migc %s: no model file given\nusage: %s\n", c->name, c->usage);
    return 2;
  }
  o->color = !strcmp(color, "always") || (!strcmp(color, "auto") && isatty(2));
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
    printf("migc %s\n", MIGC_VERSION);
    return 0;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    if (argc > 2)
      for (int i = 0; i < NCOMMANDS; i++)
        if (!strcmp(argv[2], commands[i].name)) {
          command_help(&commands[i]);
          return 0;
        }
    usage(stdout);
    return 0;
  }
  for (int i = 0; i < NCOMMANDS; i++) {
    if (strcmp(argv[1], commands[i].name)) continue;
    cli_options o = {0};
    int st = parse_options(&commands[i], argc, argv, &o);
    int status = st < 0 ? 0 : st ? st : commands[i].run(&o);
    overrides_free(&o.overrides);
    return status;
  }
  fprintf(stderr, "migc: unknown command '%s'\n\n", argv[1]);
  usage(stderr);
  return 2;
}
