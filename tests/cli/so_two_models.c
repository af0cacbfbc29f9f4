/* so_two_models.c: the host of tests/cli/so_two_models.sh. Drives each library given
 * through the C ABI and prints one line per library: its name, batch, state size and
 * program hash, the bits of its metrics after two training steps on images of 0.5
 * (latents drawn inside, seed 1) and an FNV-1a hash of what generate draws next.
 *
 *   so_two_models global LIB...   dlopen every library RTLD_GLOBAL first, then drive each
 *   so_two_models alone LIB...    one at a time, RTLD_LOCAL, closed before the next
 *
 * "alone" cannot mix libraries up, so the script compares "global" against it: a
 * library whose symbols bound to another's (issue 18) reports the other model. */
#include "migc.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SYM(h, name) dlsym(h, #name)

static int drive(void *h, const char *lib) {
  migc_status (*create)(uint64_t, migc_model **, char *, size_t) = SYM(h, migc_create);
  void (*destroy)(migc_model *) = SYM(h, migc_destroy);
  const char *(*last_error)(const migc_model *) = SYM(h, migc_last_error);
  const char *(*name)(const migc_model *) = SYM(h, migc_model_name);
  int64_t (*batch)(const migc_model *) = SYM(h, migc_batch);
  int64_t (*state_size)(const migc_model *) = SYM(h, migc_state_size);
  uint64_t (*hash)(const migc_model *) = SYM(h, migc_program_hash);
  migc_status (*input)(migc_model *, int, migc_input_info *) = SYM(h, migc_input);
  migc_status (*train_step)(migc_model *, const float *, size_t, const void *const *, int,
                            float *, int) = SYM(h, migc_train_step);
  migc_status (*metric)(const migc_model *, int, const char **, float *) = SYM(h, migc_metric);
  migc_status (*generate)(migc_model *, const void *const *, int, float *, size_t) =
      SYM(h, migc_generate);
  char err[512];
  migc_model *m = NULL;
  if (!create || create(1, &m, err, sizeof err)) {
    fprintf(stderr, "%s: cannot create: %s\n", lib, create ? err : dlerror());
    return 1;
  }
  printf("%s batch %lld state %lld hash %016llx", name(m), (long long)batch(m),
         (long long)state_size(m), (unsigned long long)hash(m));
  migc_input_info x; /* input 0 is the images in every model here */
  int st = input(m, 0, &x) || x.kind != MIGC_INPUT_DATA;
  size_t n = st ? 0 : (size_t)x.numel;
  float *buf = malloc((n + 1) * sizeof *buf);
  for (size_t i = 0; i < n; i++) buf[i] = 0.5f;
  for (int s = 0; !st && s < 2; s++) {
    st = train_step(m, buf, n, NULL, 0, NULL, 0) != MIGC_OK;
    float v;
    for (int k = 0; !st && metric(m, k, NULL, &v) == MIGC_OK; k++) {
      uint32_t bits;
      memcpy(&bits, &v, 4);
      printf(" %08x", bits);
    }
  }
  /* generate's image has as many floats as the data input here */
  st = st || generate(m, NULL, 0, buf, n) != MIGC_OK;
  uint32_t fnv = 2166136261u;
  for (size_t i = 0; !st && i < n; i++) {
    uint32_t bits;
    memcpy(&bits, &buf[i], 4);
    fnv = (fnv ^ bits) * 16777619u;
  }
  printf(" gen %08x\n", fnv);
  if (st) fprintf(stderr, "%s: %s\n", lib, last_error(m));
  free(buf);
  destroy(m);
  return st;
}

int main(int argc, char **argv) {
  if (argc < 3 || (strcmp(argv[1], "global") && strcmp(argv[1], "alone"))) {
    fprintf(stderr, "usage: so_two_models global|alone LIB...\n");
    return 2;
  }
  int global = !strcmp(argv[1], "global"), st = 0;
  void *h[16] = {0};
  for (int i = 2; i < argc && i < 18; i++) {
    if (!global && i > 2) dlclose(h[i - 3]);
    h[i - 2] = dlopen(argv[i], RTLD_NOW | (global ? RTLD_GLOBAL : RTLD_LOCAL));
    if (!h[i - 2]) {
      fprintf(stderr, "%s\n", dlerror());
      return 1;
    }
    if (!global) st |= drive(h[i - 2], argv[i]);
  }
  for (int i = 2; global && i < argc && i < 18; i++) st |= drive(h[i - 2], argv[i]);
  return st;
}
