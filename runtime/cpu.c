/* cpu.c: does this CPU have the instruction-set extensions a compiled model was built
 * for? A shared object made with `migc compile --cpu` carries, in its description, the
 * target's feature names (LLVM's spelling); migc_create asks this before any generated
 * code runs, so an older CPU gets MIGC_E_CPU and a sentence instead of SIGILL.
 *
 * Only the extensions in has_feature's table are asked (from CPUID, and for vector
 * registers whether the OS saves them); the others in a description (cx8, xsave, ...)
 * are ones that every CPU with the listed vector extensions has, and are not checked.
 * This file is compiled for the baseline x86-64, so it runs on any CPU. */
#include "runtime/runtime.h"

#include <stdio.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>

/* The CPUID bits, read once: leaf 1 (ecx), leaf 7 subleaf 0 (ebx, ecx, edx), leaf 7
 * subleaf 1 (eax), leaf 0x80000001 (ecx); and what the OS saves on a context switch
 * (XCR0): a vector extension is usable only when its registers are saved too. (Not
 * __builtin_cpu_supports: clang 14 knows fewer of these names than GCC 12.) */
typedef struct {
  unsigned l1c, l7b, l7c, l7d, l71a, x1c;
  unsigned long long xcr0;
} cpu_bits;

static cpu_bits read_bits(void) {
  cpu_bits c = {0};
  unsigned a, b, d, max = __get_cpuid_max(0, NULL);
  __cpuid(1, a, b, c.l1c, d);
  if (max >= 7) {
    __cpuid_count(7, 0, a, c.l7b, c.l7c, c.l7d);
    __cpuid_count(7, 1, c.l71a, b, a, d);
  }
  if ((unsigned)__get_cpuid_max(0x80000000, NULL) >= 0x80000001u) __cpuid(0x80000001, a, b, c.x1c, d);
  if (c.l1c & (1u << 27)) { /* OSXSAVE: XGETBV may be used */
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    c.xcr0 = ((unsigned long long)hi << 32) | lo;
  }
  return c;
}

static int has_feature(const char *name, bool *known) {
  static cpu_bits c;
  static bool done;
  if (!done) c = read_bits(), done = true;
  bool ymm = (c.xcr0 & 0x6) == 0x6, zmm = ymm && (c.xcr0 & 0xe0) == 0xe0,
       amx = (c.xcr0 & 0x60000) == 0x60000;
  static const struct {
    const char *name;
    char reg; /* 'c' leaf 1 ecx, 'b' 'C' 'd' leaf 7 ebx ecx edx, 'a' leaf 7.1 eax, 'x' ext ecx */
    unsigned char bit, state; /* state: 0 none, 1 ymm, 2 zmm, 3 amx */
  } table[] = {
      {"sse3", 'c', 0, 0},          {"ssse3", 'c', 9, 0},         {"fma", 'c', 12, 1},
      {"sse4.1", 'c', 19, 0},       {"sse4.2", 'c', 20, 0},       {"popcnt", 'c', 23, 0},
      {"avx", 'c', 28, 1},          {"f16c", 'c', 29, 1},         {"bmi", 'b', 3, 0},
      {"avx2", 'b', 5, 1},          {"bmi2", 'b', 8, 0},          {"avx512f", 'b', 16, 2},
      {"avx512dq", 'b', 17, 2},     {"avx512ifma", 'b', 21, 2},   {"avx512cd", 'b', 28, 2},
      {"avx512bw", 'b', 30, 2},     {"avx512vl", 'b', 31, 2},     {"avx512vbmi", 'C', 1, 2},
      {"avx512vbmi2", 'C', 6, 2},   {"gfni", 'C', 8, 0},          {"vpclmulqdq", 'C', 10, 1},
      {"avx512vnni", 'C', 11, 2},   {"avx512bitalg", 'C', 12, 2}, {"avx512vpopcntdq", 'C', 14, 2},
      {"amx-bf16", 'd', 22, 3},     {"avx512fp16", 'd', 23, 2},   {"amx-tile", 'd', 24, 3},
      {"amx-int8", 'd', 25, 3},     {"avx512bf16", 'a', 5, 2},    {"sse4a", 'x', 6, 0},
      {"xop", 'x', 11, 1},          {"fma4", 'x', 16, 1},
  };
  for (size_t k = 0; k < sizeof table / sizeof table[0]; k++) {
    if (strcmp(name, table[k].name)) continue;
    *known = true;
    unsigned r = table[k].reg == 'c' ? c.l1c : table[k].reg == 'b' ? c.l7b
               : table[k].reg == 'C' ? c.l7c : table[k].reg == 'd' ? c.l7d
               : table[k].reg == 'a' ? c.l71a : c.x1c;
    bool saved = table[k].state == 0 || (table[k].state == 1 && ymm) ||
                 (table[k].state == 2 && zmm) || (table[k].state == 3 && amx);
    return (r >> table[k].bit & 1) && saved;
  }
  *known = false;
  return 1;
}
#else
static int has_feature(const char *name, bool *known) {
  (void)name;
  *known = false; /* nothing to ask on other targets: the model was built for this one */
  return 1;
}
#endif

int cpu_missing_features(const char *features, char *missing, size_t n) {
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
