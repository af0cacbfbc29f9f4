/* train_host.c: a C program that trains any model compiled by `migc compile`, knowing
 * nothing of it in advance. It loads the shared object with dlopen, asks it for its
 * parameters, inputs and functions (runtime/migc.h, docs/abi.md), feeds real MNIST
 * batches to its training step (latents are drawn inside the library), prints the
 * losses and saves a checkpoint that `migc train --resume`, `migc sample` and
 * `migc eval` read.
 *
 *   train_host LIB.so [--steps N] [--seed S] [--data NAME|PATH] [--data-dir DIR]
 *                     [--resume CKPT] [--save CKPT]
 *
 * Batches come from the library's own data reader (migc_data_*) in the order
 * `migc train` uses for the same seed, so this host and `migc train` compute the same
 * run bit for bit. A host may as well read its data any other way. It needs nothing
 * but migc.h: `cc train_host.c $(pkg-config --cflags --libs migc)`. */
#include "migc.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The entry points used here, looked up by name. */
static struct {
  migc_status (*create)(uint64_t, migc_model **, char *, size_t);
  void (*destroy)(migc_model *);
  const char *(*last_error)(const migc_model *);
  const char *(*model_name)(const migc_model *);
  int64_t (*batch)(const migc_model *);
  int64_t (*step)(const migc_model *);
  uint64_t (*seed)(const migc_model *);
  int (*var_count)(const migc_model *);
  migc_status (*var)(migc_model *, int, migc_var_info *);
  int (*function_find)(const migc_model *, const char *);
  migc_status (*function)(migc_model *, int, migc_function_info *);
  migc_status (*function_output)(migc_model *, int, int, migc_output_info *);
  migc_status (*input)(migc_model *, int, migc_input_info *);
  migc_status (*train_step)(migc_model *, const float *, size_t, const void *const *, int,
                            float *, int);
  migc_status (*save)(migc_model *, const char *);
  migc_status (*load)(migc_model *, const char *);
  migc_status (*data_open)(migc_model *, int, const char *, const char *, migc_data **, char *,
                           size_t);
  migc_status (*data_batch)(migc_data *, uint64_t, int64_t, float *, size_t, int32_t *, size_t);
  const char *(*data_last_error)(const migc_data *);
  void (*data_close)(migc_data *);
} abi;

static int load_abi(void *h) {
  struct {
    void **slot;
    const char *name;
  } syms[] = {
      {(void **)&abi.create, "migc_create"},           {(void **)&abi.destroy, "migc_destroy"},
      {(void **)&abi.last_error, "migc_last_error"},   {(void **)&abi.model_name, "migc_model_name"},
      {(void **)&abi.batch, "migc_batch"},             {(void **)&abi.step, "migc_step"},
      {(void **)&abi.seed, "migc_seed"},               {(void **)&abi.var_count, "migc_var_count"},
      {(void **)&abi.var, "migc_var"},                 {(void **)&abi.function_find, "migc_function_find"},
      {(void **)&abi.function, "migc_function"},       {(void **)&abi.function_output, "migc_function_output"},
      {(void **)&abi.input, "migc_input"},             {(void **)&abi.train_step, "migc_train_step"},
      {(void **)&abi.save, "migc_save"},               {(void **)&abi.load, "migc_load"},
      {(void **)&abi.data_open, "migc_data_open"},     {(void **)&abi.data_batch, "migc_data_batch"},
      {(void **)&abi.data_last_error, "migc_data_last_error"},
      {(void **)&abi.data_close, "migc_data_close"},
  };
  for (size_t k = 0; k < sizeof syms / sizeof *syms; k++)
    if (!(*syms[k].slot = dlsym(h, syms[k].name))) {
      fprintf(stderr, "train_host: the library has no %s: not a migc model?\n", syms[k].name);
      return 1;
    }
  int (*version)(void) = (int (*)(void))dlsym(h, "migc_abi_version");
  if (!version || version() != MIGC_ABI_VERSION) {
    fprintf(stderr, "train_host: the library speaks ABI version %d, this host %d\n",
            version ? version() : -1, MIGC_ABI_VERSION);
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  const char *lib = NULL, *data = "mnist", *data_dir = "data", *resume = NULL, *save = NULL;
  long long steps = 20;
  unsigned long long seed = 1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (a[0] != '-' && !lib) lib = a;
    else if (!strcmp(a, "--steps") && v) steps = atoll(argv[++i]);
    else if (!strcmp(a, "--seed") && v) seed = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(a, "--data") && v) data = argv[++i];
    else if (!strcmp(a, "--data-dir") && v) data_dir = argv[++i];
    else if (!strcmp(a, "--resume") && v) resume = argv[++i];
    else if (!strcmp(a, "--save") && v) save = argv[++i];
    else lib = NULL, i = argc; /* usage */
  }
  if (!lib || steps < 0) {
    fprintf(stderr, "usage: train_host LIB.so [--steps N] [--seed S] [--data NAME|PATH] "
                    "[--data-dir DIR] [--resume CKPT] [--save CKPT]\n");
    return 2;
  }
  char where[1100];
  snprintf(where, sizeof where, "%s%s", strchr(lib, '/') ? "" : "./", lib);
  void *h = dlopen(where, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    fprintf(stderr, "train_host: %s\n", dlerror());
    return 1;
  }
  if (load_abi(h)) return 1;

  char err[1024];
  migc_model *m = NULL;
  if (abi.create(seed, &m, err, sizeof err)) {
    fprintf(stderr, "train_host: %s\n", err);
    return 1;
  }
  int st = 0;
  if (resume && abi.load(m, resume)) {
    fprintf(stderr, "train_host: %s\n", abi.last_error(m));
    st = 1;
  }

  /* what the library says about itself */
  int64_t params = 0;
  for (int v = 0; v < abi.var_count(m); v++) {
    migc_var_info vi;
    if (!abi.var(m, v, &vi) && vi.kind == MIGC_VAR_PARAM) params += vi.numel;
  }
  int f = abi.function_find(m, "train_step");
  migc_function_info fi = {0};
  migc_input_info x = {0};
  int ndata = 0;
  if (!st && (f < 0 || abi.function(m, f, &fi))) {
    fprintf(stderr, "train_host: the model has no training step\n");
    st = 1;
  }
  for (int j = 0; !st && j < fi.ninputs; j++) {
    migc_input_info in;
    abi.input(m, fi.inputs[j], &in);
    if (in.kind == MIGC_INPUT_DATA) x = in, ndata++;
  }
  if (!st && (ndata != 1 || (x.rank != 4 && x.rank != 2))) {
    fprintf(stderr, "train_host: the training step must read one image input\n");
    st = 1;
  }
  if (!st)
    printf("%s: batch %lld, %lld parameters, data input %s, step %lld, seed %llu\n",
           abi.model_name(m), (long long)abi.batch(m), (long long)params, x.name,
           (long long)abi.step(m), (unsigned long long)abi.seed(m));

  /* the data set, shaped as the model's data input asks */
  migc_data *ds = NULL;
  if (!st && abi.data_open(m, -1, data, data_dir, &ds, err, sizeof err)) {
    fprintf(stderr, "train_host: %s\n", err);
    st = 1;
  }
  float *images = st ? NULL : malloc((size_t)x.numel * sizeof *images);
  float metrics[16];
  int nm = fi.noutputs < 16 ? fi.noutputs : 16;
  while (!st && abi.step(m) < steps) {
    int64_t step = abi.step(m);
    if (abi.data_batch(ds, abi.seed(m), step, images, (size_t)x.numel, NULL, 0)) {
      fprintf(stderr, "train_host: %s\n", abi.data_last_error(ds));
      st = 1;
    } else if (abi.train_step(m, images, (size_t)x.numel, NULL, 0, metrics, nm)) {
      fprintf(stderr, "train_host: step %lld: %s\n", (long long)step, abi.last_error(m));
      st = 1;
    } else {
      printf("step %lld", (long long)abi.step(m));
      for (int k = 0; k < nm; k++) {
        migc_output_info o;
        abi.function_output(m, f, k, &o);
        printf("  %s %.6g", o.name, metrics[k]);
      }
      putchar('\n');
    }
  }
  if (!st && save) {
    if (abi.save(m, save)) {
      fprintf(stderr, "train_host: %s\n", abi.last_error(m));
      st = 1;
    } else {
      printf("saved %s at step %lld\n", save, (long long)abi.step(m));
    }
  }
  free(images);
  abi.data_close(ds);
  abi.destroy(m);
  dlclose(h);
  return st;
}
