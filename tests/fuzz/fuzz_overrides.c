/* fuzz_overrides.c: frontend/overrides.c, the -D name=value parser. The input is split
 * at newlines into several -D arguments (so duplicates are exercised); each is
 * accepted or refused with a message, and what is accepted is a valid name with a
 * finite value. */
#include "frontend/frontend.h"

#include "fuzz_input.h"

#include <ctype.h>
#include <math.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = fuzz_string(data, size);
  const_overrides ov = {0};
  char err[256];
  for (char *line = text, *next; line; line = next) {
    next = strchr(line, '\n');
    if (next) *next++ = 0;
    err[0] = 0;
    int before = ov.n;
    if (overrides_add(&ov, line, err, sizeof err)) {
      const const_override *o = &ov.items[ov.n - 1];
      if (ov.n != before + 1 || !isfinite(o->value) || !o->name[0] ||
          !(isalpha((unsigned char)o->name[0]) || o->name[0] == '_'))
        abort();
    } else if (!err[0] || ov.n != before) {
      abort();
    }
  }
  overrides_free(&ov);
  free(text);
  return 0;
}
