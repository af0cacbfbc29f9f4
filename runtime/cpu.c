/* cpu.c: does this CPU have the instruction-set extensions a compiled model was built
 * for? A shared object made with `migc compile --cpu` carries, in its description, the
 * target's feature names (LLVM's spelling); migc_create asks this before any generated
 * code runs, so an older CPU gets MIGC_E_CPU and a sentence instead of SIGILL.
 *
 * Only the extensions below can be asked (GCC's __builtin_cpu_supports needs each name
 * as a literal); the others in a description (cx8, xsave, ...) are ones that every CPU
 * with the listed vector extensions has, and are not checked. This file is compiled for
 * the baseline x86-64, so it runs on any CPU. */
#include "runtime/runtime.h"

#include <stdio.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define HAS(lit) __builtin_cpu_supports(lit)
#else
#define HAS(lit) 1 /* nothing to ask on other targets: the model was built for this one */
#endif

static int has_feature(const char *name, bool *known) {
  *known = true;
  /* LLVM's name, then GCC's: the same for every extension asked here */
#define F(llvm, gcc) if (!strcmp(name, llvm)) return HAS(gcc);
  F("sse3", "sse3") F("ssse3", "ssse3") F("sse4.1", "sse4.1") F("sse4.2", "sse4.2")
  F("popcnt", "popcnt") F("avx", "avx") F("avx2", "avx2") F("fma", "fma") F("f16c", "f16c")
  F("bmi", "bmi") F("bmi2", "bmi2") F("sse4a", "sse4a") F("fma4", "fma4") F("xop", "xop")
  F("avx512f", "avx512f") F("avx512bw", "avx512bw") F("avx512cd", "avx512cd")
  F("avx512dq", "avx512dq") F("avx512vl", "avx512vl") F("avx512vnni", "avx512vnni")
  F("avx512bf16", "avx512bf16") F("avx512ifma", "avx512ifma") F("avx512vbmi", "avx512vbmi")
  F("avx512vbmi2", "avx512vbmi2") F("avx512bitalg", "avx512bitalg")
  F("avx512vpopcntdq", "avx512vpopcntdq") F("avx512fp16", "avx512fp16") F("gfni", "gfni")
  F("vpclmulqdq", "vpclmulqdq") F("amx-tile", "amx-tile") F("amx-int8", "amx-int8")
  F("amx-bf16", "amx-bf16")
#undef F
  *known = false;
  return 1;
}

int cpu_missing_features(const char *features, char *missing, size_t n) {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
#endif
  int count = 0;
  size_t used = 0;
  if (n) missing[0] = '\0';
  for (const char *p = features ? features : ""; *p;) {
    p += strspn(p, " ");
    size_t len = strcspn(p, " ");
    if (!len) break;
    char name[32];
    bool known = false;
    if (len < sizeof name) {
      memcpy(name, p, len);
      name[len] = '\0';
      if (!has_feature(name, &known) && known) {
        count++;
        int k = snprintf(missing + used, used < n ? n - used : 0, "%s%s", used ? " " : "", name);
        if (k > 0) used += (size_t)k;
      }
    }
    p += len;
  }
  return count;
}

int model_desc_check_cpu(const model_desc *d, char *err, size_t errn) {
  char missing[256];
  if (!d->cpu || !cpu_missing_features(d->features, missing, sizeof missing)) return 0;
  snprintf(err, errn, "%s was compiled for CPU %s and needs %s, which this CPU lacks; compile "
           "it again here (migc compile --cpu native) or for an older CPU (--cpu x86-64-v3, "
           "or x86-64 for any)", d->name, d->cpu, missing);
  return 1;
}
