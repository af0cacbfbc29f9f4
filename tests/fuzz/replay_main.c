/* replay_main.c: a main for the fuzz targets in builds without libFuzzer (gcc, the
 * sanitizer build): runs the target once on each file named, or on each file of each
 * directory named, so the seed corpus and every crash ever found run as ctests. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
  FILE *fp = fopen(path, "rb");
  if (!fp) {
    fprintf(stderr, "replay: cannot open %s\n", path);
    return 1;
  }
  uint8_t *buf = NULL;
  size_t n = 0, cap = 0, k;
  do {
    if (n == cap) {
      cap = cap ? 2 * cap : 4096;
      buf = realloc(buf, cap);
      if (!buf) abort();
    }
    k = fread(buf + n, 1, cap - n, fp);
    n += k;
  } while (k > 0);
  fclose(fp);
  LLVMFuzzerTestOneInput(buf, n);
  free(buf);
  return 0;
}

static int compare_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
  int files = 0, failed = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      fprintf(stderr, "replay: no such file or directory: %s\n", argv[i]);
      return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
      failed += run_file(argv[i]);
      files++;
      continue;
    }
    struct dirent **names;
    int n = scandir(argv[i], &names, NULL, NULL);
    if (n < 0) {
      fprintf(stderr, "replay: cannot read directory %s\n", argv[i]);
      return 1;
    }
    char **paths = malloc(sizeof *paths * (size_t)(n + 1));
    int np = 0;
    for (int j = 0; j < n; j++) {
      if (names[j]->d_name[0] != '.') {
        size_t len = strlen(argv[i]) + strlen(names[j]->d_name) + 2;
        paths[np] = malloc(len);
        snprintf(paths[np++], len, "%s/%s", argv[i], names[j]->d_name);
      }
      free(names[j]);
    }
    free(names);
    qsort(paths, (size_t)np, sizeof *paths, compare_names);
    for (int j = 0; j < np; j++) {
      failed += run_file(paths[j]);
      files++;
      free(paths[j]);
    }
    free(paths);
  }
  printf("replay: %d inputs run\n", files);
  return failed ? 1 : 0;
}
