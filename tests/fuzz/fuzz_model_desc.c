/* fuzz_model_desc.c: runtime/model_desc.c's parser of the description a compiled
 * model carries (docs/abi.md), on arbitrary text. The library's own text is trusted
 * by no one: what the parser accepts must keep every variable inside the state, every
 * function input inside the inputs, and every count and rank in range. */
#include "runtime/runtime.h"

#include "fuzz_input.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = fuzz_string(data, size);
  model_desc d;
  char err[512] = "";
  if (model_desc_parse(text, &d, err, sizeof err) == 0) {
    if (d.version != MIGC_ABI_VERSION || d.batch < 1 || !d.name || !d.file || !d.settings) abort();
    for (int v = 0; v < d.nvars; v++) {
      const migc_var_info *x = &d.vars[v].info;
      if (x->rank < 0 || x->rank > MIGC_MAX_RANK || x->offset < 0 || x->numel < 0 ||
          x->offset + x->numel > d.state_size)
        abort();
    }
    for (int k = 0; k < d.nfuncs; k++) {
      const desc_func *f = &d.funcs[k];
      for (int j = 0; j < f->info.ninputs; j++)
        if (f->info.inputs[j] < 0 || f->info.inputs[j] >= d.ninputs) abort();
      for (int o = 0; o < f->info.noutputs; o++)
        if (!f->outputs[o].name || f->outputs[o].rank > MIGC_MAX_RANK) abort();
      if (model_desc_func(&d, f->info.name) < 0) abort();
    }
    model_desc_free(&d);
  } else if (strncmp(err, "model description", 17) != 0) {
    abort();
  }
  free(text);
  return 0;
}
