/* migc_main.c: the command-line driver. It parses options, calls the libraries and
 * prints what they report; it is the only place that prints diagnostics and chooses
 * the exit status: 0 success, 1 errors in the model, 2 a usage error. */
#include "frontend/frontend.h"
#include "passes/passes.h"
#include "codegen/codegen.h"
#include "migc_mpi.h"
#include "migc_train.h"
#include "migc_bench.h"
#include "migc_model.h"
#include "migc_eval.h"
#include "migc_model.h"
#include "migc_report.h"
#include "migc_compile.h"
#include "runtime/runtime.h"
#include "migc_schedule.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  const char *file;
  const char **more; /* check: the files after the first */
  int nmore;
  const_overrides overrides;
  int64_t batch;
  bool color;
  bool dump_ast, dump_ir, dump_grad, dump_llvm, dump_llvm_raw, dump_schedule;
  bool stats;          /* dump --schedule --stats: the summary only */
  cg_options codegen;  /* dump, train: --no-fuse, --no-memplan */
  bool batch_given;
  const char *step;  /* gradcheck --step */
  uint64_t seed;     /* gradcheck --seed */
  int elements;      /* gradcheck --elements */
  double tol;        /* gradcheck --tol */
  double h;          /* gradcheck --h */
  pass_options passes; /* dump --grad: --no-PASS, --[no-]verify-each */
  train_options train; /* train */
  eval_options eval;   /* sample, eval */
  bench_options bench; /* bench */
  int threads;         /* train, sample, eval, bench: --threads (0: one per CPU allowed) */
  const char *disabled[8];
  const char *output;  /* compile -o */
  uint64_t *seeds;     /* train --seeds (owned) */
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
    "  --max-memory SIZE  refuse a model whose buffers need more than SIZE bytes\n"
    "                  (suffix K, M, G or T: 512M, 8G); default: this machine's memory\n"
    "  -h, --help      show this help\n";

/* Parses and elaborates o->file, printing diagnostics. Returns the module or NULL. */
static ir_module *load_model(cli_options *o, diag_sink *d, ast_file **ast_out) {
  ast_file *ast = parse_file(d, o->file);
  if (ast_out) *ast_out = ast;
  if (!ast || d->nerrors) return NULL;
  elab_options eo = {.overrides = &o->overrides, .batch = o->batch,
                     .max_bytes = model_memory_limit()};
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

static int check_one(cli_options *o);

/* Every file given, each with its own diagnostics; fails if any does. */
static int cmd_check(cli_options *o) {
  int status = check_one(o);
  for (int i = 0; i < o->nmore; i++) {
    o->file = o->more[i];
    int st = check_one(o);
    if (st > status) status = st;
  }
  return status;
}

static int check_one(cli_options *o) {
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
  if (o->stats && !o->dump_schedule) {
    fputs("migc dump: --stats goes with --schedule\n", stderr);
    return 2;
  }
  if (o->dump_ast + o->dump_ir + o->dump_grad + o->dump_llvm + o->dump_llvm_raw +
          o->dump_schedule != 1) {
    fputs("migc dump: say what to print: one of --ast, --ir, --grad, --llvm, --llvm-raw, "
          "--schedule\n", stderr);
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
  int status = m ? 0 : 1;
  bool llvm = o->dump_llvm || o->dump_llvm_raw;
  if (m && (o->dump_grad || llvm || o->dump_schedule) && passes_run(m, &o->passes, &d))
    status = 1;
  if (m && !status && o->dump_schedule) {
    char err[1024];
    if (schedule_report(m, &o->codegen, !o->stats, stdout, err, sizeof err)) {
      fprintf(stderr, "migc dump: %s\n", err);
      status = 1;
    }
  } else if (m && !status && llvm) {
    char err[1024];
    cg_options co = o->codegen;
    co.keep_ir = true;
    cg_program *p = cg_compile(m, &co, err, sizeof err);
    if (!p) {
      fprintf(stderr, "migc dump: %s\n", err);
      status = 1;
    } else {
      cg_stats cs = cg_get_stats(p);
      printf("; compiled in %.1f ms: lower %.1f, optimise %.1f, JIT %.1f\n", cs.total_ms,
             cs.lower_ms, cs.opt_ms, cs.jit_ms);
      cg_dump_llvm(p, stdout, o->dump_llvm);
      cg_free(p);
    }
  } else if (m && !status) {
    ir_print_module(m, stdout);
  }
  ir_module_free(m);
  if (ast) ast_free(ast);
  return finish(&d, o, status);
}

typedef struct {
  double tol, worst, grad_s; /* grad_s: the analytic run's time */
  int bad;
} gradcheck_table;

/* Prints each tensor's row as it is checked (a big model takes minutes), with the
 * work ahead on stderr once the first tensor's time is known. */
static void gradcheck_row(void *ctx, const gradcheck_result *r, int done, int total,
                          double seconds) {
  gradcheck_table *t = ctx;
  if (!r) {
    fprintf(stderr, "migc gradcheck: %d parameter tensors to check; the step and its "
                    "gradients ran once in double precision in %.1f s\n", total, seconds);
    t->grad_s = seconds;
    printf("%-8s %-34s %10s %6s %12s %12s\n", "step", "parameter", "elements", "checks",
           "|grad|", "worst rel");
    fflush(stdout);
    return;
  }
  bool fail = !(r->worst <= t->tol);
  printf("%-8s %-34s %10lld %6d %12.4e %12.3e%s\n", r->step, r->var, (long long)r->numel,
         r->checks, r->grad_norm, r->worst, fail ? "  FAIL" : "");
  fflush(stdout);
  if (!(r->worst <= t->worst)) t->worst = r->worst;
  t->bad += fail;
  if (done == 1 && total > 1)
    fprintf(stderr, "migc gradcheck: the first tensor took %.1f s; about %.0f s for all %d\n",
            seconds - t->grad_s, t->grad_s + (seconds - t->grad_s) * total, total);
}

static int cmd_gradcheck(cli_options *o) {
  if (!o->batch_given) o->batch = 4; /* small: every difference runs the whole step */
  diag_sink d;
  diag_init(&d);
  ast_file *ast = NULL;
  ir_module *m = load_model(o, &d, &ast);
  int status = m ? 0 : 1;
  if (m) {
    gradcheck_table t = {o->tol, 0, 0, 0};
    gradcheck_options go = {o->step, o->seed, o->elements, o->h, gradcheck_row, &t};
    gradcheck_result *r;
    char err[512];
    int n = gradcheck(m, &go, &r, err, sizeof err);
    if (n < 0) {
      fprintf(stderr, "migc gradcheck: %s\n", err);
      status = 1;
    } else {
      printf("%d parameter tensors, worst relative error %.3e (tolerance %.1e): %s\n", n,
             t.worst, o->tol, t.bad ? "FAIL" : "ok");
      status = t.bad ? 1 : 0;
      gradcheck_free(r, n);
    }
  }
  ir_module_free(m);
  if (ast) ast_free(ast);
  return finish(&d, o, status);
}

/* Under mpirun with several processes, each joins the job first; the model's
 * diagnostics, the same on every process, are printed by rank 0 alone. */
static int cmd_train(cli_options *o) {
  char err[512];
  if (mpi_join(err, sizeof err)) {
    fprintf(stderr, "migc train: %s\n", err);
    return 1;
  }
  /* never more threads than cores: the processes on this machine share them (results
   * do not depend on the count) */
  const char *local = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  long cores = sysconf(_SC_NPROCESSORS_ONLN), procs = local ? atol(local) : 1;
  if (collective_ranks() > 1 && procs > 1 && cores > 0 && (long)o->threads * procs > cores)
    o->threads = model_set_threads(cores / procs > 1 ? (int)(cores / procs) : 1);
  diag_sink d;
  diag_init(&d);
  o->train.model = o->file;
  o->train.overrides = &o->overrides;
  o->train.batch = o->batch;
  o->train.color = o->color;
  o->train.codegen = o->codegen;
  o->train.threads = o->threads;
  int st = o->train.nseeds ? train_seeds(&o->train, &d) : train_run(&o->train, &d, NULL);
  if (collective_rank() != 0) {
    if (d.nerrors && !st) st = 1;
    diag_free(&d);
  }
  st = finish(&d, o, st);
  mpi_leave(st);
  return st;
}

static int cmd_compile(cli_options *o) {
  if (!o->output) {
    fputs("migc compile: say where the shared object goes: -o libNAME.so\n", stderr);
    return 2;
  }
  diag_sink d;
  diag_init(&d);
  return finish(&d, o, compile_run(o->file, &o->overrides, o->batch, o->output, &o->codegen,
                                   o->stats, &d));
}

static int cmd_sample(cli_options *o) {
  diag_sink d;
  diag_init(&d);
  o->eval.run = o->file;
  return finish(&d, o, sample_run(&o->eval, &d));
}

static int cmd_eval(cli_options *o) {
  diag_sink d;
  diag_init(&d);
  o->eval.run = o->file;
  return finish(&d, o, eval_run(&o->eval, &d));
}

static int cmd_report(cli_options *o) { return report_run(o->file); }

static int cmd_bench(cli_options *o) {
  if (o->bench.peak) return bench_peak(model_set_threads(o->threads));
  diag_sink d;
  diag_init(&d);
  o->bench.model = o->file;
  o->bench.overrides = &o->overrides;
  o->bench.batch = o->batch;
  o->bench.threads = o->threads;
  return finish(&d, o, bench_run(&o->bench, &d));
}

/* --so LIB and --profile, which choose the code train and bench run: 1 if a was --so,
 * 2 if --profile (it takes no value), 0 if neither, -1 on error. */
static int code_option(const char *cmd, const char *a, const char *v, const char **so,
                       bool *profile) {
  if (!strcmp(a, "--profile")) {
    *profile = true;
    return 2;
  }
  if (strcmp(a, "--so")) return 0;
  if (!v) {
    fprintf(stderr, "migc %s: --so needs the path of a shared object from migc compile\n", cmd);
    return -1;
  }
  *so = v;
  return 1;
}

/* Parses a bench option with a value; 1 if a was one, 0 if not, -1 on error. */
static int bench_option(cli_options *o, const char *a, const char *v) {
  bench_options *b = &o->bench;
  if (!strcmp(a, "--peak")) {
    b->peak = true;
    return 2;
  }
  int r = code_option("bench", a, v, &b->so, &b->profile);
  if (r) return r;
  static const char *names[] = {"--warmup", "--steps", "--time"};
  int k = -1;
  for (int i = 0; i < (int)(sizeof names / sizeof *names); i++)
    if (!strcmp(a, names[i])) k = i;
  if (k < 0) return 0;
  char *end = NULL;
  double x = v ? strtod(v, &end) : 0;
  if (!v || *end || !*v || !(x >= (k == 0 ? 0 : k == 1 ? 1 : 0)) || x > 1e6 ||
      (k < 2 && x != (double)(int64_t)x)) {
    fprintf(stderr, "migc bench: %s needs %s\n", a,
            k == 2 ? "a number of seconds from 0 to 1e6" : "a whole number from 0 or 1 to 1e6");
    return -1;
  }
  if (k == 0) b->warmup = (int64_t)x;
  else if (k == 1) b->steps = (int64_t)x;
  else b->seconds = x;
  return 1;
}

/* --threads N for the commands that run native code; 1 if a was it, -1 on error. */
static int threads_option(cli_options *o, const char *cmd, const char *a, const char *v) {
  if (strcmp(a, "--threads")) return 0;
  char *end = NULL;
  long x = v ? strtol(v, &end, 10) : 0;
  if (!v || *end || !*v || x < 1 || x > 1024) {
    fprintf(stderr, "migc %s: --threads needs a whole number from 1 to 1024\n", cmd);
    return -1;
  }
  o->threads = (int)x;
  return 1;
}

/* Parses a sample/eval option with a value; 1 if a was one, 0 if not, -1 on error. */
static int eval_option(cli_options *o, const char *a, const char *v) {
  eval_options *e = &o->eval;
  static const char *names[] = {"--model", "--data", "--data-dir", "--grid", "--vary",
                                "--seed", "--batches", "--backend", "--draws"};
  int k = -1;
  for (int i = 0; i < (int)(sizeof names / sizeof *names); i++)
    if (!strcmp(a, names[i])) k = i;
  if (k < 0) return 0;
  if (!v) {
    fprintf(stderr, "migc: %s needs a value\n", a);
    return -1;
  }
  const char **slot[] = {&e->model_file, &e->data, &e->data_dir, &e->grid, &e->vary};
  if (k < 5) {
    *slot[k] = v;
    return 1;
  }
  if (k == 7) {
    if (strcmp(v, "jit") && strcmp(v, "interp")) {
      fprintf(stderr, "migc: --backend takes jit or interp\n");
      return -1;
    }
    e->interpret = !strcmp(v, "interp");
    return 1;
  }
  char *end;
  long long x = strtoll(v, &end, 10);
  if (*end || !*v || x < (k == 6 ? 1 : 0) || (k == 6 && x > 100000) || (k == 8 && x > 10000)) {
    fprintf(stderr, "migc: %s needs a whole number%s\n", a,
            k == 6 ? " from 1 to 100000" : k == 8 ? " from 0 to 10000" : "");
    return -1;
  }
  if (k == 5) e->seed = (uint64_t)x;
  else if (k == 6) e->batches = (int)x;
  else e->draws = (int)x;
  return 1;
}

/* --seeds LIST: seeds and ranges of seeds, "1,2,3", "1-5", "1-3,7"; each once, at most
 * 1000. Fills o->seeds (o->nseeds) and returns 0, or -1 with a message. */
static int seeds_option(cli_options *o, const char *v) {
  enum { MOST = 1000 };
  o->seeds = realloc(o->seeds, MOST * sizeof *o->seeds);
  int n = 0;
  const char *p = v;
  while (o->seeds && *p) {
    char *end;
    errno = 0;
    unsigned long long a = strtoull(p, &end, 10), b = a;
    bool ok = end != p && isdigit((unsigned char)*p) && !errno;
    if (ok && *end == '-') {
      p = end + 1;
      b = strtoull(p, &end, 10);
      ok = end != p && isdigit((unsigned char)*p) && !errno && b >= a && b - a < MOST;
    }
    ok = ok && (*end == ',' ? end[1] != 0 : !*end);
    for (unsigned long long s = a; ok && s <= b; s++) {
      for (int i = 0; i < n && ok; i++) ok = o->seeds[i] != s;
      ok = ok && n < MOST;
      if (ok) o->seeds[n++] = s;
    }
    if (!ok) {
      fprintf(stderr, "migc train: --seeds takes seeds and ranges such as 1,2,3 or 1-5 (each "
                      "seed once, at most %d), got '%s'\n", MOST, v);
      return -1;
    }
    p = *end ? end + 1 : end;
  }
  if (!n) {
    fprintf(stderr, "migc train: --seeds needs at least one seed\n");
    return -1;
  }
  o->train.seeds = o->seeds;
  o->train.nseeds = n;
  return 0;
}

/* Parses a train option with a value; returns 1 if a was one, 0 if not, -1 on error. */
static int train_option(cli_options *o, const char *a, const char *v) {
  train_options *t = &o->train;
  if (!strcmp(a, "--seeds")) {
    if (!v) {
      fprintf(stderr, "migc train: --seeds needs a value\n");
      return -1;
    }
    return seeds_option(o, v) ? -1 : 1;
  }
  int r = code_option("train", a, v, &t->so, &t->profile);
  if (r) return r;
  if (!strcmp(a, "--backend")) {
    if (!v || (strcmp(v, "jit") && strcmp(v, "interp"))) {
      fprintf(stderr, "migc train: --backend takes jit or interp\n");
      return -1;
    }
    t->interpret = !strcmp(v, "interp");
    return 1;
  }
  static const char *names[] = {"--data", "--data-dir", "--out", "--resume", "--eval-data",
                                "--steps", "--save-every", "--keep", "--log-every",
                                "--sample-every", "--eval-every", "--seed"};
  enum { STRINGS = 5, SEED = 11 };
  int k = -1;
  for (int i = 0; i < (int)(sizeof names / sizeof *names); i++)
    if (!strcmp(a, names[i])) k = i;
  if (k < 0) return 0;
  if (!v) {
    fprintf(stderr, "migc train: %s needs a value\n", a);
    return -1;
  }
  if (k < STRINGS) {
    const char **slot[] = {&t->data, &t->data_dir, &t->out, &t->resume, &t->eval_data};
    *slot[k] = v;
    return 1;
  }
  char *end;
  errno = 0;
  long long x = strtoll(v, &end, 10);
  if (*end || !*v || errno || x < (k == SEED ? 0 : 1)) {
    fprintf(stderr, "migc train: %s needs a whole number%s, got '%s'\n", a,
            k == SEED ? "" : " of at least 1", v);
    return -1;
  }
  int64_t *nums[] = {&t->steps, &t->save_every, &t->keep, &t->log_every, &t->sample_every,
                     &t->eval_every};
  if (k == SEED) {
    t->seed = (uint64_t)x;
    t->seed_given = true;
  } else {
    *nums[k - STRINGS] = x;
  }
  return 1;
}

static const command commands[] = {
    {"check", cmd_check, "parse a model, resolve names and infer every shape",
     "migc check FILE... [-D NAME=VALUE]... [--batch N]",
     "Reads each FILE, reports every error it finds with its file:line:col, the\n"
     "source line and a caret, and exits 1 if any file had one. For each file without\n"
     "errors prints a summary (nets, parameter count, batch size, entry functions).\n"},
    {"dump", cmd_dump, "print a stage of compilation",
     "migc dump FILE (--ast | --ir | --grad | --llvm | --llvm-raw | --schedule [--stats])\n"
     "               [--no-fuse] [--no-memplan] [--no-PASS]... [--no-verify-each]\n"
     "               [-D NAME=VALUE]... [--batch N]",
     "  --ast           the syntax tree, one node per line with its line:col\n"
     "  --ir            the IR module: state variables with their offsets and\n"
     "                  initialisers, inputs, and every entry function's nodes\n"
     "                  with shapes, grouped into the blocks of each step\n"
     "  --grad          the IR of the whole training step: each step's forward,\n"
     "                  its gradients (reverse-mode autodiff) and its optimizer\n"
     "                  update, with the optimizer state it adds, after the passes:\n"
     "                    autodiff  differentiate every step, lower its update\n"
     "                    constfold fold scalar ops of constants (exact)\n"
     "                    simplify  merge common subexpressions, drop x*1 (exact)\n"
     "                    dce       remove nodes that reach no output or store\n"
     "  --llvm          the LLVM IR of every function after optimisation for this\n"
     "                  CPU (its name and features first), with compile times\n"
     "  --llvm-raw      the same before optimisation, as lowered from the IR\n"
     "  --schedule      what the compiled code runs: per function, every kernel with\n"
     "                  its nodes (fused kernels hold several), each value's arena\n"
     "                  offset (@OFF), 'reg' for values kept in registers, in-place\n"
     "                  reuse and extra scratch; after a summary of kernels before and\n"
     "                  after fusion, bytes read and written per call before and\n"
     "                  after, and the planned arena against the sum of all buffers\n"
     "  --stats         with --schedule: the summary only\n"
     "  --no-fuse       every node its own kernel (also for train)\n"
     "  --no-memplan    one scratch region per value, nothing reused (also for train)\n"
     "  --no-PASS       skip a pass (e.g. --no-dce)\n"
     "  --no-verify-each  do not verify the IR after every pass (on by default)\n"},
    {"compile", cmd_compile, "compile a model into a shared object with a C ABI",
     "migc compile FILE [-D NAME=VALUE]... [--batch N] [--cpu CPU] [--stats] [--no-fuse]\n"
     "             [--no-memplan] -o libNAME.so",
     "Compiles FILE to native code exactly as migc train's JIT does (same passes,\n"
     "optimisation and CPU) and links libNAME.so: the model's functions, its\n"
     "description and the runtime's C ABI (runtime/migc.h, docs/abi.md), needing only\n"
     "libc, libm, zlib and OpenBLAS. Also writes NAME.h beside it (the model's\n"
     "constants). Links with $CC (default cc) and libmigc_rt_pic.a found beside migc.\n"
     "  -o FILE         the shared object to write\n"
     "  --cpu CPU       the CPU the code is for: native (default: this machine's CPU\n"
     "                  and every extension it has, as the JIT), or an x86-64 level\n"
     "                  for other machines: x86-64 (any), x86-64-v2 (SSE4.2),\n"
     "                  x86-64-v3 (AVX2, FMA), x86-64-v4 (AVX-512). On a CPU without\n"
     "                  the extensions, migc_create refuses with MIGC_E_CPU\n"
     "  --stats         print, per function, kernels before and after fusion, bytes\n"
     "                  read and written per call before and after, and the planned\n"
     "                  arena against the sum of all buffers (as dump --schedule --stats)\n"
     "  --no-fuse       every IR node its own kernel\n"
     "  --no-memplan    one scratch region per value instead of the planned arena\n"},
    {"train", cmd_train, "train a model on a data set",
     "migc train FILE [--data D] [--data-dir DIR] [--steps N] [--batch B] [--seed S]\n"
     "                [-D NAME=VALUE]... [--out DIR | --resume DIR] [--save-every N]\n"
     "                [--keep K] [--log-every N] [--sample-every N]\n"
     "                [--eval-every N [--eval-data D]] [--seeds LIST] [--threads N]\n"
     "                [--backend jit|interp] [--so LIB] [--no-fuse] [--no-memplan]\n"
     "                [--local-bn] [--profile]",
     "Compiles FILE and trains it: each step gets the next batch of real images\n"
     "(shuffled per epoch with the seed) and latents drawn from their priors. A run\n"
     "is a function of the model, its settings, the data and the seed: resumed from\n"
     "a checkpoint, it ends bit for bit where an uninterrupted run ends. Progress\n"
     "goes to stderr (one updating line on a terminal); metrics.csv, sample grids\n"
     "(samples/step-N.png) and checkpoints (checkpoints/step-N.safetensors) to the\n"
     "run directory. A loss that becomes NaN or infinite stops the run, keeping the\n"
     "last good checkpoint; Ctrl-C saves a checkpoint and stops.\n"
     "Under `mpirun -np N` the run is data-parallel: each process trains on its 1/N\n"
     "of every global batch (--batch or the model's, which N must divide), gradients\n"
     "are averaged across the processes inside each step, rank 0 alone prints and\n"
     "writes the run's files, and a run resumes on any number of processes. Results\n"
     "match one process up to float rounding (docs/scaling.md).\n"
     "  --local-bn      under mpirun: each process's batchnorm uses its own share's\n"
     "                  statistics (default: the whole global batch's, synchronised,\n"
     "                  as one process computes them)\n"
     "  --no-fuse       compile every IR node as its own kernel (the same results,\n"
     "                  bit for bit; for measuring what fusion buys)\n"
     "  --no-memplan    one scratch region per value instead of the planned arena\n"
     "  --backend B     jit (default): native code compiled with LLVM; interp: the\n"
     "                  reference interpreter (slow; the oracle the JIT is tested\n"
     "                  against). Resume is bit-exact within one backend.\n"
     "  --so LIB        run the steps from LIB, a shared object migc compile wrote for\n"
     "                  this model, -D and batch (refused otherwise): the same\n"
     "                  numbers as the JIT\n"
     "  --data D        mnist (default), mnist-test, fashion, fashion-test, or a\n"
     "                  path to an IDX images file (.gz too) or a .npy file\n"
     "  --data-dir DIR  where data set names are found (default data)\n"
     "  --steps N       train until N steps are done in all (default 1000)\n"
     "  --seed S        seed of the initial parameters, data order and latents (1)\n"
     "  --out DIR       run directory (default runs/MODEL)\n"
     "  --resume DIR    continue the run in DIR from its newest checkpoint\n"
     "  --save-every N  checkpoint every N steps (default 500), and at the end\n"
     "  --keep K        keep the K newest checkpoints (default 3)\n"
     "  --log-every N   progress and a metrics row every N steps (default 10)\n"
     "  --sample-every N  a sample grid every N steps (default 500)\n"
     "  --eval-every N  every N steps and after the last, measure what migc eval\n"
     "                  does with its defaults (matched accuracy on the test split,\n"
     "                  every MI estimate on 20 generated batches of latents drawn\n"
     "                  for seed 1, generate and encode in their inference form):\n"
     "                  a line on stderr and, in metrics.csv, eval_accuracy and\n"
     "                  eval_NAME per estimate (empty on rows without an evaluation,\n"
     "                  a row of its own when the step is not logged). It draws\n"
     "                  nothing from the run's random streams and changes no state:\n"
     "                  the run is the same bits with or without it\n"
     "  --eval-data D   labelled images for --eval-every and --seeds (default:\n"
     "                  mnist-test when training on mnist, fashion-test on fashion;\n"
     "                  needed otherwise)\n"
     "  --seeds LIST    one run per seed, one after the other (1,2,3 or 1-5 or both,\n"
     "                  each seed once): seed S in DIR/seed-S (DIR: --out, default\n"
     "                  runs/MODEL), the same run as --seed S alone, measured after\n"
     "                  its last step as migc eval measures it. Then DIR/seeds.csv,\n"
     "                  also printed as a table: seed, steps, seconds, each MI\n"
     "                  estimate, accuracy; a median row (of each column) and a best\n"
     "                  row (the seed with the best accuracy). Not with --seed or\n"
     "                  --resume; Ctrl-C stops after saving the current seed's run,\n"
     "                  without seeds.csv\n"
     "  --profile       time every kernel; after the run, print where a step's time\n"
     "                  goes (mean of the steps after the first): per kernel ms, GEMM\n"
     "                  ms, bytes, GB/s, GFLOP/s; the GEMM share; the attainable time\n"
     "                  (each GEMM shape of the step timed alone). See docs/benchmarks.md\n"
     "  --threads N     threads for the step's GEMMs and large kernels (default: the\n"
     "                  CPUs this process may run on, its affinity mask; at most one\n"
     "                  per core). A run is the same bits for every N\n"},
    {"bench", cmd_bench, "time a model's training step (bench/run.sh's migc side)",
     "migc bench FILE [--batch B] [--threads N] [--warmup W] [--steps N] [--time S]\n"
     "                [--profile] [--so LIB]\n"
     "migc bench --peak [--threads N]",
     "Compiles FILE, runs W untimed training steps (default 2), then times steps on\n"
     "one fixed batch until S seconds have passed (default 2; at least 3 steps, at\n"
     "most N, default 1000). Prints one JSON line: parameters, frontend and compile\n"
     "times in ms, when the first step finished (unix seconds), every timed step in\n"
     "ms, and the peak resident memory (VmHWM, kB). bench/run.sh runs it next to\n"
     "a PyTorch peer; see bench/README.md.\n"
     "  --threads N     threads for GEMMs and large kernels (default: the CPUs this\n"
     "                  process may run on, its affinity mask)\n"
     "  --profile       also time every kernel of the steps after the first, print\n"
     "                  the report of migc train --profile on stderr and add its\n"
     "                  summary to the JSON (profiled_step_ms, kernel_ms, gemm_ms,\n"
     "                  attainable_ms)\n"
     "  --so LIB        run the step from LIB, written by migc compile for this\n"
     "                  program, instead of the JIT (compile_ms is then 0)\n"
     "  --peak          no model: print this machine's arithmetic peaks as a table\n"
     "                  (fp32 FMA with AVX-512 and AVX2, bf16 dot products; GFLOP/s\n"
     "                  on 1 to N threads), the ceiling --profile measures GEMMs by\n"},
    {"sample", cmd_sample, "draw the InfoGAN figure of a trained run",
     "migc sample RUN|CHECKPOINT [--grid OUT.png|OUT.npy] [--vary NAME[I]] [--seed S]\n"
     "                           [--ema] [--model FILE] [--backend jit|interp] [--threads N]",
     "Reopens the program a checkpoint was written by (its model file, -D settings\n"
     "and batch are in the checkpoint) and draws the figure of the InfoGAN paper, and\n"
     "says what it drew. Rows: the values of the first categorical code, or without\n"
     "one 8 draws of the latents. Columns: the first continuous code swept from -2 to\n"
     "2 (past the training range [-1, 1]); without one, a Bernoulli code with every\n"
     "bit off, then each bit on; without either, the first latent swept. Every other\n"
     "input is fixed along the figure (other codes 0 beside a categorical code). A\n"
     "model without codes gets a plain grid of samples, each its own draw.\n"
     "  --grid OUT.png  where to write it (default RUN/samples/figure-step-N.png);\n"
     "                  OUT.npy: the images themselves, float32 [rows * columns, C, H,\n"
     "                  W] row by row, for a classifier of one's own\n"
     "  --vary NAME[I]  the continuous latent or code element to sweep (default the\n"
     "                  first continuous code, element 0)\n"
     "  --seed S        the draw of the fixed latents (default 1)\n"
     "  --ema           draw with the parameters' moving averages (kept by a step\n"
     "                  with ema=DECAY) instead of the parameters\n"
     "  --model FILE    the model file, if it moved since training\n"
     "  --backend B     jit (default) or interp\n"
     "  --threads N     threads for GEMMs and large kernels (default: the CPUs this\n"
     "                  process may run on, its affinity mask)\n"},
    {"eval", cmd_eval, "measure what a trained InfoGAN's code captures",
     "migc eval RUN|CHECKPOINT [--data D] [--data-dir DIR] [--batches N] [--draws N]\n"
     "                         [--seed S] [--ema] [--model FILE] [--json]\n"
     "                         [--backend jit|interp] [--threads N]",
     "Prints every MI estimate the model reports (an output of train_step made of\n"
     "info_categorical, info_gaussian and info_bernoulli terms: mi_c, mi_s) in nats,\n"
     "computed with the terms' formulas from encode's prediction of the codes on N\n"
     "batches of images generate made (ln K minus the cross-entropy for a categorical\n"
     "code, at most ln K; H(c) minus the Gaussian NLL for a continuous one; D H(p)\n"
     "minus the summed binary cross-entropy for D Bernoulli bits), and the\n"
     "unsupervised classification accuracy of Q's most likely code value on real\n"
     "labelled images after the best one-to-one matching of code values to labels\n"
     "(Hungarian algorithm), with that matching. Each estimate comes with the most it\n"
     "can reach, from the IR: ln K, H(c) - D * 0.5 ln(2 pi std^2) (the Gaussian NLL at\n"
     "a perfect prediction), or their sum. A model that reports no estimate gets\n"
     "mi_CODE of its categorical code. generate and encode run in their inference\n"
     "form (batchnorm's running statistics). Then, for each continuous code element,\n"
     "whether the class stays put along it: the share of the images of migc sample's\n"
     "figure sweeping it from -2 to 2 (N draws of the other latents per row, the first\n"
     "the figure's) whose most likely categorical value, by Q's own head, is their\n"
     "row's (1: Q sees the row's value all along; about 1/K: no relation). It uses Q,\n"
     "not a classifier of digits: a Q that reads its code from other marks than the\n"
     "class can call a changing digit kept (docs/language.md, section 11).\n"
     "For each Bernoulli code, the share of its bits whose sign Q's logit gets right\n"
     "on the generated images. A model without a categorical code gets its MI\n"
     "estimates and bits only (no labels are read). Evaluating a run directory also\n"
     "saves the result as RUN/eval.json (the --json object), which migc report shows.\n"
     "  --data D        labelled images (default: the test split of the data the run\n"
     "                  trained on, as RUN/run.json records it, and its --data-dir;\n"
     "                  mnist-test for a run without run.json)\n"
     "  --data-dir DIR  where data set names are found (default data)\n"
     "  --batches N     generated batches for the MI estimates (default 20)\n"
     "  --draws N       draws of the other latents per row for class keeping\n"
     "                  (default 10; 0: not measured)\n"
     "  --seed S        the draw of the generated images' latents, and of the\n"
     "                  figures' (default 1)\n"
     "  --ema           measure the parameters' moving averages (kept by a step\n"
     "                  with ema=DECAY) instead of the parameters\n"
     "  --model FILE    the model file, if it moved since training\n"
     "  --json          print one JSON object instead: model, step, generated, mi\n"
     "                  (name: nats), mi_bounds (name: the most it can reach), data,\n"
     "                  images, accuracy, mapping, class_kept (NAME[I]: share),\n"
     "                  class_kept_images (full precision)\n"
     "  --backend B     jit (default) or interp\n"
     "  --threads N     threads for GEMMs and large kernels (default: the CPUs this\n"
     "                  process may run on, its affinity mask)\n"},
    {"report", cmd_report, "write a run's HTML report",
     "migc report RUN",
     "Writes RUN/report.html, one self-contained page: the last logged metrics, the\n"
     "loss curves and the MI curves (SVG, from metrics.csv) with the most each MI\n"
     "estimate can reach (dashed lines and an 'at most' row, from the program of the\n"
     "newest checkpoint), with train --eval-every the matched accuracy and the MI\n"
     "estimates of its evaluations against step and against wall time, and the\n"
     "newest sample grid and InfoGAN figure (PNG embedded in the page), the last\n"
     "migc eval of the run (RUN/eval.json), how the run was started (RUN/run.json) and\n"
     "the model file's text. For the\n"
     "directory of migc train --seeds: its seeds.csv as a table, each seed linked to\n"
     "its own report, which is written first.\n"},
    {"gradcheck", cmd_gradcheck, "check every gradient against finite differences",
     "migc gradcheck FILE [--step NAME] [--seed N] [--elements K] [--tol T] [--h H] [--batch N]",
     "Differentiates each step's loss with respect to the parameters of the nets it\n"
     "trains, runs it in double precision from initial parameters on sampled inputs,\n"
     "and compares every parameter tensor's gradient with central differences: along\n"
     "one random direction and at K single elements (the largest first); a miss is\n"
     "measured again with steps 10 and 100 times smaller (a ReLU kink inside the\n"
     "step spoils one difference, not three). Prints the\n"
     "worst relative error per tensor; exits 1 if any exceeds the tolerance.\n"
     "  --step NAME     check only this step\n"
     "  --seed N        seed of the parameters, inputs and directions (default 1)\n"
     "  --elements K    single elements per tensor (default 2)\n"
     "  --tol T         largest relative error accepted (default 1e-3)\n"
     "  --h H           difference step, relative to max(1, |parameter|) (default 1e-6)\n"
     "  --batch N       batch size to check at (default 4)\n"},
};
enum { NCOMMANDS = sizeof commands / sizeof commands[0] };

static void usage(FILE *out) {
  fputs("migc: a compiler for GANs with a mutual-information objective (InfoGAN)\n\n"
        "usage: migc COMMAND [OPTIONS] FILE|RUN\n\ncommands:\n",
        out);
  for (int i = 0; i < NCOMMANDS; i++)
    fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fputs("\n  migc COMMAND --help   options of one command\n"
        "  migc --version        print the version\n",
        out);
}

static void command_help(const command *c) {
  printf("usage: %s\n\n%s\n%s\n%s", c->usage, c->summary, c->help, "options:\n");
  fputs(common_help, stdout);
}

/* "8G", "512M", "64K", "1T" (powers of 1024) or a plain number of bytes; -1 if
 * malformed, zero or past 2^62. */
static int64_t parse_size(const char *v) {
  char *end;
  errno = 0;
  long long x = strtoll(v, &end, 10);
  int shift = 0;
  if (*end && !end[1]) {
    const char *units = "KMGT", *u = strchr(units, *end);
    if (!u) return -1;
    shift = 10 * (int)(u - units + 1);
    end++;
  }
  if (end == v || *end || errno || x <= 0 || x > ((long long)1 << (62 - shift))) return -1;
  return (int64_t)x << shift;
}

/* The option of command c nearest to the unknown `arg` (its part before any '='), from
 * the options its usage and help name and the common ones: 0 when none is within two
 * edits, else 1 with it in out. */
static int nearest_option(const command *c, const char *arg, char *out, size_t n) {
  char want[64];
  snprintf(want, sizeof want, "%.*s", (int)strcspn(arg, "="), arg);
  const char *texts[] = {c->usage, c->help, common_help};
  int best = 3;
  for (size_t t = 0; t < sizeof texts / sizeof *texts; t++)
    for (const char *p = texts[t]; (p = strchr(p, '-')) != NULL;) {
      bool starts = p == texts[t] || p[-1] == ' ' || p[-1] == '[' || p[-1] == '|';
      size_t len = strspn(p, "-abcdefghijklmnopqrstuvwxyzD");
      if (starts && len > 1 && len < sizeof want && p[1] != ' ') {
        char cand[64];
        snprintf(cand, sizeof cand, "%.*s", (int)len, p);
        int d = edit_distance(want, cand);
        if (d < best && d < (int)strlen(want) - 1) {
          best = d;
          snprintf(out, n, "%s", cand);
        }
      }
      p += len ? len : 1;
    }
  return best < 3;
}

static int parse_options(const command *c, int argc, char **argv, cli_options *o) {
  const char *color = "auto";
  int st;
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
      o->batch_given = true;
      if (i + 1 >= argc || (o->batch = strtoll(argv[++i], &end, 10), *end) || o->batch < 1 ||
          o->batch > (1 << 20)) {
        fprintf(stderr, "migc %s: --batch needs a whole number from 1 to %d\n", c->name, 1 << 20);
        return 2;
      }
    } else if (!strcmp(a, "--max-memory")) {
      int64_t bytes = i + 1 < argc ? parse_size(argv[++i]) : -1;
      if (bytes <= 0) {
        fprintf(stderr, "migc %s: --max-memory needs a size such as 512M, 8G or 1000000 "
                        "(bytes; suffix K, M, G or T)\n", c->name);
        return 2;
      }
      model_set_memory_limit(bytes);
    } else if (!strcmp(a, "--color") || !strncmp(a, "--color=", 8)) {
      color = a[7] == '=' ? a + 8 : (i + 1 < argc ? argv[++i] : "");
      if (strcmp(color, "auto") && strcmp(color, "always") && strcmp(color, "never")) {
        fprintf(stderr, "migc %s: --color takes auto, always or never\n", c->name);
        return 2;
      }
    } else if (!strcmp(c->name, "train") && !strcmp(a, "--local-bn")) {
      o->train.local_bn = true;
    } else if ((!strcmp(c->name, "train") || !strcmp(c->name, "sample") ||
                !strcmp(c->name, "eval") || !strcmp(c->name, "bench")) &&
               (st = threads_option(o, c->name, a, i + 1 < argc ? argv[i + 1] : NULL)) != 0) {
      if (st < 0) return 2;
      i++;
    } else if (!strcmp(c->name, "bench") && a[0] == '-' &&
               (st = bench_option(o, a, i + 1 < argc ? argv[i + 1] : NULL)) != 0) {
      if (st < 0) return 2;
      if (st == 1) i++; /* 2: a flag without a value */
    } else if (!strcmp(c->name, "train") && a[0] == '-' &&
               (st = train_option(o, a, i + 1 < argc ? argv[i + 1] : NULL)) != 0) {
      if (st < 0) return 2;
      if (st == 1) i++; /* 2: a flag without a value */
    } else if (!strcmp(c->name, "eval") && !strcmp(a, "--json")) {
      o->eval.json = true;
    } else if ((!strcmp(c->name, "sample") || !strcmp(c->name, "eval")) && !strcmp(a, "--ema")) {
      o->eval.ema = true;
    } else if ((!strcmp(c->name, "sample") || !strcmp(c->name, "eval")) && a[0] == '-' &&
               (st = eval_option(o, a, i + 1 < argc ? argv[i + 1] : NULL)) != 0) {
      if (st < 0) return 2;
      i++;
    } else if (!strcmp(c->name, "gradcheck") &&
               (!strcmp(a, "--step") || !strcmp(a, "--seed") || !strcmp(a, "--elements") ||
                !strcmp(a, "--tol") || !strcmp(a, "--h"))) {
      if (i + 1 >= argc) {
        fprintf(stderr, "migc gradcheck: %s needs a value\n", a);
        return 2;
      }
      const char *v = argv[++i];
      char *end;
      if (!strcmp(a, "--step")) {
        o->step = v;
      } else if (!strcmp(a, "--seed")) {
        o->seed = strtoull(v, &end, 10);
        if (*end || !*v) return fprintf(stderr, "migc gradcheck: --seed needs a number\n"), 2;
      } else if (!strcmp(a, "--elements")) {
        long k = strtol(v, &end, 10);
        if (*end || k < 0 || k > 100000)
          return fprintf(stderr, "migc gradcheck: --elements needs a number from 0 to 100000\n"), 2;
        o->elements = (int)k;
      } else {
        double x = strtod(v, &end);
        if (*end || !(x > 0) || x > 1)
          return fprintf(stderr, "migc gradcheck: %s needs a number in (0, 1]\n", a), 2;
        *(!strcmp(a, "--tol") ? &o->tol : &o->h) = x;
      }
    } else if (!strcmp(c->name, "compile") && !strcmp(a, "--cpu")) {
      char cerr[160];
      if (i + 1 >= argc || cg_check_cpu(argv[i + 1], cerr, sizeof cerr)) {
        fprintf(stderr, "migc compile: --cpu: %s\n",
                i + 1 >= argc ? "needs a CPU: native, x86-64, x86-64-v2, x86-64-v3 or x86-64-v4"
                              : cerr);
        return 2;
      }
      o->codegen.cpu = argv[++i];
    } else if (!strcmp(c->name, "compile") && !strcmp(a, "-o")) {
      if (i + 1 >= argc) {
        fprintf(stderr, "migc compile: -o needs a file name (libNAME.so)\n");
        return 2;
      }
      o->output = argv[++i];
    } else if (!strcmp(c->name, "dump") && (!strcmp(a, "--verify-each") ||
                                             !strcmp(a, "--no-verify-each"))) {
      o->passes.verify_each = a[2] == 'v';
    } else if (!strcmp(c->name, "dump") && !strncmp(a, "--no-", 5) && pass_find(a + 5)) {
      if (o->passes.ndisabled < 8) o->disabled[o->passes.ndisabled++] = a + 5;
      o->passes.disabled = o->disabled;
    } else if ((!strcmp(c->name, "dump") || !strcmp(c->name, "train") ||
                !strcmp(c->name, "compile")) &&
               (!strcmp(a, "--no-fuse") || !strcmp(a, "--no-memplan"))) {
      *(a[5] == 'f' ? &o->codegen.no_fuse : &o->codegen.no_memplan) = true;
    } else if (!strcmp(c->name, "dump") && !strcmp(a, "--schedule")) {
      o->dump_schedule = true;
    } else if ((!strcmp(c->name, "dump") || !strcmp(c->name, "compile")) &&
               !strcmp(a, "--stats")) {
      o->stats = true;
    } else if (!strcmp(c->name, "dump") && !strcmp(a, "--llvm")) {
      o->dump_llvm = true;
    } else if (!strcmp(c->name, "dump") && !strcmp(a, "--llvm-raw")) {
      o->dump_llvm_raw = true;
    } else if (!strcmp(c->name, "dump") && !strcmp(a, "--grad")) {
      o->dump_grad = true;
    } else if (!strcmp(c->name, "dump") && !strcmp(a, "--ast")) {
      o->dump_ast = true;
    } else if (!strcmp(c->name, "dump") && !strcmp(a, "--ir")) {
      o->dump_ir = true;
    } else if (a[0] == '-' && a[1]) {
      char near[64];
      if (nearest_option(c, a, near, sizeof near))
        fprintf(stderr, "migc %s: unknown option '%s'; did you mean '%s'? (see migc %s --help)\n",
                c->name, a, near, c->name);
      else
        fprintf(stderr, "migc %s: unknown option '%s' (see migc %s --help)\n", c->name, a,
                c->name);
      return 2;
    } else if (o->file && !strcmp(c->name, "check")) {
      o->more = realloc(o->more, (size_t)(o->nmore + 1) * sizeof *o->more);
      o->more[o->nmore++] = a;
    } else if (o->file) {
      fprintf(stderr, "migc %s: one model file at a time ('%s' and '%s')\n", c->name, o->file,
              a);
      return 2;
    } else {
      o->file = a;
    }
  }
  if (!o->file && !o->bench.peak) {
    fprintf(stderr, "migc %s: no model file given\nusage: %s\n", c->name, c->usage);
    return 2;
  }
  if (o->train.nseeds && (o->train.seed_given || o->train.resume)) {
    fprintf(stderr, "migc train: --seeds runs each seed from the start; leave out %s\n",
            o->train.seed_given ? "--seed" : "--resume (resume one seed's directory alone)");
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
    cli_options o = {.seed = 1, .elements = 2, .tol = 1e-3, .h = 1e-6,
                     .passes = {.verify_each = true},
                     .train = {.steps = 1000, .seed = 1, .save_every = 500, .keep = 3,
                               .log_every = 10, .sample_every = 500},
                     .eval = {.seed = EVAL_SEED, .batches = EVAL_BATCHES, .draws = EVAL_DRAWS},
                     .bench = {.warmup = 2, .steps = 1000, .seconds = 2},
                     .threads = 0};
    int st = parse_options(&commands[i], argc, argv, &o);
    if (!st) o.threads = model_set_threads(o.threads);
    int status = st < 0 ? 0 : st ? st : commands[i].run(&o);
    overrides_free(&o.overrides);
    free(o.more);
    free(o.seeds);
    return status;
  }
  fprintf(stderr, "migc: unknown command '%s'\n\n", argv[1]);
  usage(stderr);
  return 2;
}
