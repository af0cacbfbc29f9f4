/* test_cpu.c: runtime/cpu.c, the load-time check of a compiled model's extensions,
 * against the kernel's own list of this CPU's flags (/proc/cpuinfo) as the oracle:
 * - every extension cpu.c can ask is reported missing exactly when cpuinfo lacks it;
 * - the missing ones are named in order, space-separated; names cpu.c does not know
 *   (cx8, made-up ones) and an empty list count as present;
 * - a small buffer is cut, not overrun, and the count stays right. */
#include "check.h"
#include "runtime/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char flags[8192];

static bool in_cpuinfo(const char *flag) {
  char word[64];
  snprintf(word, sizeof word, " %s ", flag);
  return strstr(flags, word) != NULL;
}

int main(void) {
  FILE *fp = fopen("/proc/cpuinfo", "r");
  char line[8192];
  while (fp && fgets(line, sizeof line, fp))
    if (!strncmp(line, "flags", 5)) {
      char *p = strchr(line, ':');
      snprintf(flags, sizeof flags, "%s ", p ? p : "");
      for (char *q = flags; *q; q++)
        if (*q == '\n' || *q == ':') *q = ' ';
      break;
    }
  if (fp) fclose(fp);
  CHECK_MSG(flags[0], "no flags line in /proc/cpuinfo: no oracle");
  /* LLVM's name, cpuinfo's */
  static const char *names[][2] = {
      {"sse3", "pni"}, {"ssse3", "ssse3"}, {"sse4.1", "sse4_1"}, {"sse4.2", "sse4_2"},
      {"popcnt", "popcnt"}, {"avx", "avx"}, {"avx2", "avx2"}, {"fma", "fma"}, {"f16c", "f16c"},
      {"bmi", "bmi1"}, {"bmi2", "bmi2"}, {"sse4a", "sse4a"}, {"fma4", "fma4"}, {"xop", "xop"},
      {"avx512f", "avx512f"}, {"avx512bw", "avx512bw"}, {"avx512cd", "avx512cd"},
      {"avx512dq", "avx512dq"}, {"avx512vl", "avx512vl"}, {"avx512vnni", "avx512_vnni"},
      {"avx512bf16", "avx512_bf16"}, {"avx512ifma", "avx512ifma"}, {"avx512vbmi", "avx512vbmi"},
      {"avx512vbmi2", "avx512_vbmi2"}, {"avx512bitalg", "avx512_bitalg"},
      {"avx512vpopcntdq", "avx512_vpopcntdq"}, {"avx512fp16", "avx512_fp16"}, {"gfni", "gfni"},
      {"vpclmulqdq", "vpclmulqdq"}, {"amx-tile", "amx_tile"}, {"amx-int8", "amx_int8"},
      {"amx-bf16", "amx_bf16"}};
  char all[1024] = "", expect[1024] = "", missing[1024];
  int nexpect = 0;
  for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
    bool has = in_cpuinfo(names[k][1]);
    int n = cpu_missing_features(names[k][0], missing, sizeof missing);
    CHECK_MSG(n == !has, "%s: cpuinfo says %s, cpu.c says %d missing", names[k][0],
              has ? "present" : "absent", n);
    CHECK_STR(missing, has ? "" : names[k][0]);
    snprintf(all + strlen(all), sizeof all - strlen(all), "%s ", names[k][0]);
    if (!has) {
      snprintf(expect + strlen(expect), sizeof expect - strlen(expect), "%s%s",
               nexpect ? " " : "", names[k][0]);
      nexpect++;
    }
  }
  /* all at once, with unknown names between them */
  char mixed[2048];
  snprintf(mixed, sizeof mixed, "  cx8 %s madeup-ext  ", all);
  CHECK(cpu_missing_features(mixed, missing, sizeof missing) == nexpect);
  CHECK_STR(missing, expect);
  /* no AMD Bulldozer extension on a CPU of today: the check has something to find */
  CHECK(nexpect >= 1);

  CHECK(cpu_missing_features("", missing, sizeof missing) == 0);
  CHECK_STR(missing, "");
  CHECK(cpu_missing_features(NULL, missing, sizeof missing) == 0);
  CHECK(cpu_missing_features("cx8 sahf a-name-longer-than-thirty-two-characters-in-all", missing,
                             sizeof missing) == 0);

  char tiny[4] = {'x', 'x', 'x', 'x'};
  CHECK(cpu_missing_features(mixed, tiny, sizeof tiny) == nexpect);
  CHECK(memchr(tiny, '\0', sizeof tiny) != NULL);
  return check_done();
}
