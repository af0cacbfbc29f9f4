/* files.c: what every runtime reader and writer shares: error messages that name the
 * file, and writes that either complete or leave the old file as it was. */
#include "runtime/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int file_fail(char *err, size_t errn, const char *path, const char *fmt, ...) {
  if (err && errn) {
    int k = snprintf(err, errn, "%s: ", path);
    if (k >= 0 && (size_t)k < errn) {
      va_list ap;
      va_start(ap, fmt);
      vsnprintf(err + k, errn - (size_t)k, fmt, ap);
      va_end(ap);
    }
  }
  return 1;
}

/* ---- the fault hook (for tests; in every build) ------------------------------------ *
 * MIGC_TEST_FAULT=fail-write:N makes the N-th file_write_atomic of the process (from 1)
 * fail as on a full disk (ENOSPC) once half of its bytes are in the temporary file;
 * MIGC_TEST_FAULT=kill-write:N kills the process with SIGKILL at that point instead.
 * tests/cli/fault_*.sh use them to check what a full disk or a crash in the middle of
 * a checkpoint leaves behind. Unset (as always outside tests), they cost one getenv. */
typedef enum { FAULT_NONE, FAULT_FAIL, FAULT_KILL } fault_kind;

static fault_kind fault_for_this_write(void) {
  static long writes;
  const char *spec = getenv("MIGC_TEST_FAULT");
  writes++;
  if (!spec) return FAULT_NONE;
  long n;
  char kind[16];
  if (sscanf(spec, "%15[a-z-]:%ld", kind, &n) != 2 || n != writes) return FAULT_NONE;
  return !strcmp(kind, "fail-write") ? FAULT_FAIL : !strcmp(kind, "kill-write") ? FAULT_KILL
                                                                               : FAULT_NONE;
}

/* write(2) until all n bytes are out; false with errno set otherwise. */
static bool write_all(int fd, const void *buf, size_t n) {
  const unsigned char *p = buf;
  while (n > 0) {
    ssize_t k = write(fd, p, n);
    if (k < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (k == 0) { /* no progress and no error: treat as a full device */
      errno = ENOSPC;
      return false;
    }
    p += k;
    n -= (size_t)k;
  }
  return true;
}

/* fsync of the directory holding path, so that the rename itself is durable. File
 * systems that cannot sync a directory answer EINVAL; that is not a failure. */
static int sync_parent_dir(const char *path, char *err, size_t errn) {
  const char *slash = strrchr(path, '/');
  char *dir;
  if (!slash) {
    dir = strdup(".");
  } else if (slash == path) {
    dir = strdup("/");
  } else {
    dir = strndup(path, (size_t)(slash - path));
  }
  if (!dir) return file_fail(err, errn, path, "out of memory");
  int rc = 0;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    rc = file_fail(err, errn, path, "renamed into place, but cannot open directory %s: %s",
                 dir, strerror(errno));
  } else {
    if (fsync(fd) != 0 && errno != EINVAL)
      rc = file_fail(err, errn, path, "renamed into place, but syncing directory %s failed: %s",
                   dir, strerror(errno));
    close(fd);
  }
  free(dir);
  return rc;
}

int file_write_atomic(const char *path, const void *const *parts, const size_t *lens,
                      int nparts, char *err, size_t errn) {
  size_t tn = strlen(path) + 32;
  char *tmp = malloc(tn);
  if (!tmp) return file_fail(err, errn, path, "out of memory");
  snprintf(tmp, tn, "%s.tmp.%ld", path, (long)getpid());

  int rc = 1;
  /* the temporary file sits beside the target, so the rename stays on one file system */
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) {
    file_fail(err, errn, path, "cannot create %s: %s", tmp, strerror(errno));
    goto done;
  }
  bool ok = true;
  fault_kind fault = fault_for_this_write();
  size_t total = 0, written = 0;
  for (int j = 0; j < nparts; j++) total += lens[j];
  for (int j = 0; j < nparts && ok; j++) {
    size_t n = lens[j];
    if (fault != FAULT_NONE && written + n >= total / 2) n = total / 2 - written;
    if (n > 0) ok = write_all(fd, parts[j], n);
    written += n;
    if (ok && n < lens[j]) { /* the fault's point: half of the bytes are out */
      if (fault == FAULT_KILL) kill(getpid(), SIGKILL);
      errno = ENOSPC;
      ok = false;
    }
  }
  if (ok) ok = fsync(fd) == 0;
  int saved = errno;
  if (close(fd) != 0 && ok) {
    ok = false;
    saved = errno;
  }
  if (!ok) {
    file_fail(err, errn, path, "cannot write %s: %s", tmp, strerror(saved));
    unlink(tmp);
    goto done;
  }
  if (rename(tmp, path) != 0) {
    file_fail(err, errn, path, "cannot rename %s into place: %s", tmp, strerror(errno));
    unlink(tmp);
    goto done;
  }
  rc = sync_parent_dir(path, err, errn);
done:
  free(tmp);
  return rc;
}

