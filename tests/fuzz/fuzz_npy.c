/* fuzz_npy.c: runtime/npy.c's reader on arbitrary bytes. It must accept or refuse
 * with a message naming the file; what it accepts must be self-consistent. */
#include "runtime/runtime.h"

#include "fuzz_input.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_file(data, size);
  npy_array a;
  char err[512] = "";
  if (npy_read(path, &a, err, sizeof err) == 0) {
    int64_t n = 1;
    for (int k = 0; k < a.rank; k++) n *= a.dim[k];
    if (n != a.numel) abort();
    size_t elem = a.dtype == NPY_U8 ? 1 : 4;
    /* touch every element: ASan catches a buffer shorter than numel says */
    volatile unsigned char sum = 0;
    for (int64_t i = 0; i < a.numel * (int64_t)elem; i++) sum += ((unsigned char *)a.data)[i];
    (void)sum;
    npy_free(&a);
  } else if (strncmp(err, path, strlen(path)) != 0) {
    abort(); /* the message must name the file */
  }
  return 0;
}
