/* fuzz_input.h: what every libFuzzer target shares. The runtime's readers take a
 * path, so a target hands them its bytes as a file: an anonymous in-memory file
 * (memfd) reopened through /proc/self/fd, so no run leaves anything on disk and the
 * readers take the same code path as for a real file. */
#ifndef MIGC_FUZZ_INPUT_H
#define MIGC_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* Replaces the contents of the target's in-memory file with data[0..size) and
 * returns its path (valid for the whole process). */
static inline const char *fuzz_file(const uint8_t *data, size_t size) {
  static int fd = -1;
  static char path[64];
  if (fd < 0) {
    fd = memfd_create("migc-fuzz", 0);
    if (fd < 0) {
      perror("memfd_create");
      abort();
    }
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  }
  if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size)) {
    perror("writing the fuzz input");
    abort();
  }
  return path;
}

/* data[0..size) as a NUL-terminated string (caller frees). */
static inline char *fuzz_string(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (!s) abort();
  for (size_t i = 0; i < size; i++) s[i] = (char)data[i];
  s[size] = 0;
  return s;
}

#endif
