/* fuzz_idx.c: runtime/dataset.c's IDX reader (plain and gzip) on arbitrary bytes. */
#include "runtime/runtime.h"

#include "fuzz_input.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_file(data, size);
  idx_array a;
  char err[512] = "";
  if (idx_read(path, &a, err, sizeof err) == 0) {
    int64_t n = 1;
    for (int k = 0; k < a.rank; k++) n *= a.dim[k];
    if (n != a.numel || (a.rank != 1 && a.rank != 3)) abort();
    volatile unsigned char sum = 0;
    for (int64_t i = 0; i < a.numel; i++) sum += a.data[i];
    (void)sum;
    idx_free(&a);
  } else if (strncmp(err, path, strlen(path)) != 0) {
    abort();
  }
  return 0;
}
