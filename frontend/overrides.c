/* overrides.c: `-D name=value` from the command line. The value must be a plain
 * number; which constant it names is checked against the model by elaborate.c. */
#include "frontend.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

bool overrides_add(const_overrides *o, const char *arg, char *err, size_t errn) {
  const char *eq = strchr(arg, '=');
  if (!eq || eq == arg) {
    snprintf(err, errn, "-D expects name=value, e.g. -D lambda=0.5; got '%s'", arg);
    return false;
  }
  size_t len = (size_t)(eq - arg);
  if (len > 63 || !(isalpha((unsigned char)arg[0]) || arg[0] == '_')) {
    snprintf(err, errn, "-D %s: '%.*s' is not a constant name", arg, (int)(len > 63 ? 63 : len),
             arg);
    return false;
  }
  for (size_t i = 0; i < len; i++)
    if (!isalnum((unsigned char)arg[i]) && arg[i] != '_') {
      snprintf(err, errn, "-D %s: '%.*s' is not a constant name", arg, (int)len, arg);
      return false;
    }
  const char *val = eq + 1;
  char *end;
  errno = 0;
  double v = strtod(val, &end);
  /* Decimal only, as the language writes numbers: strtod would also take 0x10. */
  if (end == val || *end || errno == ERANGE || !isfinite(v) || isspace((unsigned char)*val) ||
      strpbrk(val, "xXpP")) {
    snprintf(err, errn, "-D %s: '%s' is not a decimal number such as 0.5 or 2e-4", arg, val);
    return false;
  }
  for (int i = 0; i < o->n; i++)
    if (strlen(o->items[i].name) == len && !strncmp(o->items[i].name, arg, len)) {
      snprintf(err, errn, "-D %.*s is given twice", (int)len, arg);
      return false;
    }
  if (o->n == o->cap) {
    o->cap = o->cap ? o->cap * 2 : 8;
    o->items = realloc(o->items, (size_t)o->cap * sizeof *o->items);
  }
  const_override *it = &o->items[o->n++];
  it->name = strndup(arg, len);
  it->value = v;
  it->is_int = !strpbrk(val, ".eEnN") && v == floor(v) && fabs(v) < 9.0e15;
  it->used = false;
  return true;
}

void overrides_free(const_overrides *o) {
  for (int i = 0; i < o->n; i++) free(o->items[i].name);
  free(o->items);
  o->items = NULL;
  o->n = o->cap = 0;
}
