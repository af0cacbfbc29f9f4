/* fuzz_safetensors.c: runtime/safetensors.c's reader on arbitrary bytes, as migc reads
 * a checkpoint from another tool. It must accept or refuse with a message naming the
 * file; what it accepts must be self-consistent: every tensor's data inside the file,
 * names unique, lookups finding what the table holds. */
#include "runtime/runtime.h"

#include "fuzz_input.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_file(data, size);
  st_file f;
  char err[512] = "";
  if (safetensors_read(path, &f, err, sizeof err) == 0) {
    for (int i = 0; i < f.n; i++) {
      const st_tensor *t = &f.tensors[i];
      if (t->rank < 0 || t->rank > ST_MAX_RANK || !t->name[0]) abort();
      if (st_file_find(&f, t->name) != t) abort(); /* names are unique */
      int64_t bytes = st_numel(t) * 4;
      if (bytes < 0 || (uint64_t)bytes > size) abort();
      volatile unsigned char sum = 0; /* ASan catches data shorter than the shape */
      for (int64_t k = 0; k < bytes; k++) sum += ((const unsigned char *)t->data)[k];
      (void)sum;
    }
    for (int i = 0; i < f.nmeta; i++)
      if (st_file_meta(&f, f.meta[i].key) != f.meta[i].value) abort();
    st_file_free(&f);
  } else if (strncmp(err, path, strlen(path)) != 0) {
    abort();
  }
  return 0;
}
