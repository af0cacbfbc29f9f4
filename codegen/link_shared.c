/* link_shared.c: object file -> shared object, with the system C compiler as linker.
 *
 *   $CC -shared -o OUT.tmp.PID OBJ --whole-archive ARCHIVE -lopenblas -lz -lm -z defs -Bsymbolic
 *
 * spawned without a shell (CC names one program, no arguments), then renamed over OUT.
 * ARCHIVE is libmigc_rt_pic.a, the runtime built position-independent with hidden
 * visibility (CMakeLists.txt): only the C ABI's migc_* functions and the model's own
 * symbols are exported, and the object needs nothing at run time but libc, libm,
 * OpenBLAS and zlib (the data reader's gzip). -z defs makes a symbol missing from all of these a link error, not a
 * failure when a host loads the library. -Bsymbolic binds the library's references to its
 * own definitions: every model exports the same names (migc_model_desc, migc_create,
 * ...), and without it a host that loads two models RTLD_GLOBAL would run the first
 * one's description and code from the second's functions (docs/abi.md). */
#include "codegen/cg_internal.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int cg_runtime_archive(char *path, size_t n, char *err, size_t errn) {
  const char *env = getenv("MIGC_RUNTIME_ARCHIVE");
  if (env && *env) {
    if (access(env, R_OK) == 0) {
      snprintf(path, n, "%s", env);
      return 0;
    }
    snprintf(err, errn, "MIGC_RUNTIME_ARCHIVE=%s: %s", env, strerror(errno));
    return 1;
  }
  char exe[PATH_MAX];
  ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (k <= 0) {
    snprintf(err, errn, "cannot find the running executable (/proc/self/exe): %s",
             strerror(errno));
    return 1;
  }
  exe[k] = '\0';
  char *dir = dirname(exe);
  /* beside migc (the build directory), one level up (test binaries in build/tests),
   * or an installed layout: bin/migc and lib/migc/libmigc_rt_pic.a */
  static const char *const where[] = {"%s/libmigc_rt_pic.a", "%s/../libmigc_rt_pic.a",
                                      "%s/../lib/migc/libmigc_rt_pic.a"};
  for (size_t w = 0; w < sizeof where / sizeof *where; w++) {
    snprintf(path, n, where[w], dir);
    if (access(path, R_OK) == 0) return 0;
  }
  snprintf(err, errn, "cannot find libmigc_rt_pic.a beside %s, in %s/.. or %s/../lib/migc "
                      "(build it with cmake, or set MIGC_RUNTIME_ARCHIVE)", exe, dir, dir);
  return 1;
}

int cg_link_shared(const char *obj, const char *out, char *err, size_t errn) {
  char archive[PATH_MAX + 64];
  if (cg_runtime_archive(archive, sizeof archive, err, errn)) return 1;
  const char *cc = getenv("CC");
  if (!cc || !*cc) cc = "cc";
  char tmp[PATH_MAX + 64];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", out, (long)getpid());
  /* whole archive: the object references none of the ABI, which the host calls */
  char *argv[] = {(char *)cc, "-shared", "-o", tmp, (char *)obj, "-Wl,--whole-archive", archive,
                  "-Wl,--no-whole-archive", "-lopenblas", "-lz", "-lm", "-Wl,-z,defs", "-Wl,-Bsymbolic",
                  NULL};
  pid_t pid;
  int rc = posix_spawnp(&pid, cc, NULL, NULL, argv, environ);
  if (rc) {
    snprintf(err, errn, "cannot run the linker %s: %s", cc, strerror(rc));
    return 1;
  }
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) {
      snprintf(err, errn, "waiting for %s: %s", cc, strerror(errno));
      return 1;
    }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    unlink(tmp);
    snprintf(err, errn, "%s -shared failed (%s %d) linking %s", cc,
             WIFEXITED(status) ? "exit status" : "signal",
             WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), out);
    return 1;
  }
  if (rename(tmp, out)) {
    snprintf(err, errn, "%s: cannot rename %s into place: %s", out, tmp, strerror(errno));
    unlink(tmp);
    return 1;
  }
  return 0;
}
