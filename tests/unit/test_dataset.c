/* test_dataset.c: the data loader. IDX (plain and gzip) and .npy files written here are
 * read back into the model's layout and range, with padding; every malformed file and
 * every shape mismatch is rejected with its exact message; batches follow the
 * documented per-epoch permutations, so any step can be computed directly; and the real
 * MNIST and Fashion-MNIST files under data/ open with their known sizes. */
#include "check.h"
#include "runtime/runtime.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static char dir[] = "/tmp/migc_test_dataset_XXXXXX";

/* path_of returns a path under the temp dir, in one of a few rotating buffers so that
 * a test can hold several at once. */
static const char *path_of(const char *name) {
  static char buf[8][512];
  static int next;
  char *p = buf[next++ % 8];
  snprintf(p, sizeof buf[0], "%s/%s", dir, name);
  return p;
}

static void write_bytes(const char *path, const void *b, size_t n) {
  FILE *fp = fopen(path, "wb");
  if (n) fwrite(b, 1, n, fp);
  fclose(fp);
}

static void write_gz(const char *path, const void *b, size_t n) {
  gzFile gz = gzopen(path, "wb");
  if (n) gzwrite(gz, b, (unsigned)n);
  gzclose(gz);
}

/* Writes an IDX file: magic, ndims big-endian dims, then data (nbytes, whatever the dims
 * say), gzipped when gz. */
static void write_idx(const char *path, uint32_t magic, const uint32_t *dims, int ndims,
                      const void *data, size_t nbytes, bool gz) {
  size_t n = 4 + 4 * (size_t)ndims + nbytes;
  unsigned char *b = malloc(n);
  uint32_t words[4] = {magic, 0, 0, 0};
  for (int d = 0; d < ndims; d++) words[1 + d] = dims[d];
  for (int w = 0; w <= ndims; w++) {
    b[4 * w] = (unsigned char)(words[w] >> 24), b[4 * w + 1] = (unsigned char)(words[w] >> 16);
    b[4 * w + 2] = (unsigned char)(words[w] >> 8), b[4 * w + 3] = (unsigned char)words[w];
  }
  if (nbytes) memcpy(b + 4 + 4 * ndims, data, nbytes);
  if (gz)
    write_gz(path, b, n);
  else
    write_bytes(path, b, n);
  free(b);
}

static void write_images(const char *path, uint32_t n, uint32_t rows, uint32_t cols,
                         const uint8_t *px, bool gz) {
  uint32_t dims[3] = {n, rows, cols};
  write_idx(path, 0x00000803, dims, 3, px, (size_t)n * rows * cols, gz);
}

static void write_labels(const char *path, uint32_t n, const uint8_t *lab, bool gz) {
  write_idx(path, 0x00000801, &n, 1, lab, n, gz);
}

static void write_npy(const char *path, npy_dtype dt, int rank, const int64_t *dim,
                      void *data) {
  npy_array a = {dt, rank, {0}, data, 1};
  for (int d = 0; d < rank; d++) a.dim[d] = dim[d], a.numel *= dim[d];
  char err[256];
  if (npy_write(path, &a, err, sizeof err)) fprintf(stderr, "%s\n", err);
}

static long file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static dataset_shape shape3(int64_t c, int64_t h, int64_t w, float lo, float hi,
                            int64_t pad) {
  dataset_shape s = {3, {c, h, w}, lo, hi, pad};
  return s;
}

static dataset_shape shape1(int64_t d, float lo, float hi, int64_t pad) {
  dataset_shape s = {1, {d, 0, 0}, lo, hi, pad};
  return s;
}

/* The value the loader must give pixel q in [lo, hi]. */
static float expect_px(int q, float lo, float hi) {
  return (float)(((double)lo * (255 - q) + (double)hi * q) / 255.0);
}

/* dataset_open must fail with exactly `want` (a format with %s for each path given). */
#define CHECK_OPEN_FAILS(spec, data_dir, shape, ...)                                     \
  do {                                                                                \
    dataset ds_;                                                                      \
    char err_[2048] = "", want_[2048];                                                \
    dataset_shape shape_ = (shape);                                                   \
    snprintf(want_, sizeof want_, __VA_ARGS__);                                       \
    CHECK(dataset_open(&ds_, (spec), (data_dir), &shape_, err_, sizeof err_) != 0);   \
    CHECK_STR(err_, want_);                                                           \
    CHECK(!ds_.images && !ds_.pixels && !ds_.labels && !ds_.images_path);           \
    dataset_close(&ds_);                                                              \
  } while (0)

#define CHECK_IDX_FAILS(path, ...)                                                    \
  do {                                                                                \
    idx_array a_;                                                                     \
    char err_[2048] = "", want_[2048];                                                \
    snprintf(want_, sizeof want_, __VA_ARGS__);                                       \
    CHECK(idx_read((path), &a_, err_, sizeof err_) != 0);                             \
    CHECK_STR(err_, want_);                                                           \
    CHECK(a_.data == NULL);                                                           \
  } while (0)

/* Every sample of ds, in order, as dataset_sample gives them (byte sources are kept
 * as bytes and converted per sample): one buffer, rewritten by each call. */
static const float *imgs(const dataset *ds) {
  static float buf[1 << 20];
  CHECK_MSG(ds->n * ds->sample <= (int64_t)(sizeof buf / sizeof buf[0]), "%lld values",
            (long long)(ds->n * ds->sample));
  for (int64_t i = 0; i < ds->n && (i + 1) * ds->sample <= (int64_t)(sizeof buf / sizeof buf[0]); i++)
    dataset_sample(ds, i, buf + i * ds->sample);
  return buf;
}

/* Sample i of ds (dataset_sample): one buffer, rewritten by each call. */
static const float *one_sample(const dataset *ds, int64_t i) {
  static float buf[4096];
  CHECK_MSG(ds->sample <= 4096, "samples of %lld values", (long long)ds->sample);
  if (ds->sample <= 4096) dataset_sample(ds, i, buf);
  return buf;
}

/* Two 2x3 images and their labels, used by several tests. */
static const uint8_t px6[12] = {0, 255, 51, 102, 153, 204, 1, 2, 3, 4, 5, 254};
static const uint8_t lab2[2] = {7, 3};

/* ---- values, padding, labels ------------------------------------------------------ */

static void test_values(void) {
  char err[1024];
  const char *img = path_of("v-images-idx3-ubyte"), *lab = path_of("v-labels-idx1-ubyte");
  write_images(img, 2, 2, 3, px6, false);
  write_labels(lab, 2, lab2, false);

  dataset ds;
  dataset_shape s01 = shape3(1, 2, 3, 0, 1, 0);
  CHECK_MSG(dataset_open(&ds, img, NULL, &s01, err, sizeof err) == 0, "%s", err);
  CHECK(ds.n == 2 && ds.sample == 6 && ds.channels == 1 && ds.rows == 2 && ds.cols == 3);
  CHECK(ds.pixels && !ds.images); /* bytes stay bytes, converted per sample */
  CHECK_STR(ds.images_path, img);
  CHECK_STR(ds.labels_path, lab);
  CHECK(ds.labels && ds.labels[0] == 7 && ds.labels[1] == 3);
  for (int i = 0; i < 12; i++)
    CHECK_MSG(imgs(&ds)[i] == (float)(px6[i] / 255.0), "pixel %d: %.9g", i,
              (double)imgs(&ds)[i]);
  CHECK(imgs(&ds)[0] == 0.0f && imgs(&ds)[1] == 1.0f);
  dataset_close(&ds);
  CHECK(!ds.images && !ds.pixels && !ds.labels && !ds.images_path);
  dataset_close(&ds); /* twice is harmless */

  dataset_shape s11 = shape3(1, 2, 3, -1, 1, 0);
  CHECK_MSG(dataset_open(&ds, img, NULL, &s11, err, sizeof err) == 0, "%s", err);
  CHECK(imgs(&ds)[0] == -1.0f && imgs(&ds)[1] == 1.0f);
  CHECK(imgs(&ds)[2] == (float)(-153.0 / 255.0)); /* 51 -> -1 + 2*51/255 */
  for (int i = 0; i < 12; i++) {
    CHECK(imgs(&ds)[i] == expect_px(px6[i], -1, 1));
    CHECK(imgs(&ds)[i] >= -1.0f && imgs(&ds)[i] <= 1.0f);
  }
  dataset_close(&ds);

  /* an odd range: still exact at both ends */
  dataset_shape odd = shape3(1, 2, 3, -0.3f, 2.7f, 0);
  CHECK_MSG(dataset_open(&ds, img, NULL, &odd, err, sizeof err) == 0, "%s", err);
  CHECK(imgs(&ds)[0] == -0.3f && imgs(&ds)[1] == 2.7f);
  dataset_close(&ds);

  /* a flat [6] takes 2x3 images, in the same order */
  dataset_shape flat = shape1(6, 0, 1, 0);
  CHECK_MSG(dataset_open(&ds, img, NULL, &flat, err, sizeof err) == 0, "%s", err);
  CHECK(ds.n == 2 && ds.sample == 6);
  for (int i = 0; i < 12; i++) CHECK(imgs(&ds)[i] == (float)(px6[i] / 255.0));
  dataset_close(&ds);

  /* idx_read on its own */
  idx_array a;
  CHECK_MSG(idx_read(img, &a, err, sizeof err) == 0, "%s", err);
  CHECK(a.rank == 3 && a.dim[0] == 2 && a.dim[1] == 2 && a.dim[2] == 3 && a.numel == 12);
  CHECK(a.data && memcmp(a.data, px6, 12) == 0);
  idx_free(&a);
  CHECK(a.data == NULL);
  CHECK_MSG(idx_read(lab, &a, err, sizeof err) == 0, "%s", err);
  CHECK(a.rank == 1 && a.dim[0] == 2 && a.numel == 2 && a.data[0] == 7 && a.data[1] == 3);
  idx_free(&a);
}

static void test_padding(void) {
  char err[1024];
  const char *img = path_of("p-images-idx3-ubyte");
  write_images(img, 2, 2, 3, px6, false);
  dataset ds;

  /* [1,2,3] with pad 1 is [1,4,5]: a border of -1 around each image */
  dataset_shape s = shape3(1, 4, 5, -1, 1, 1);
  CHECK_MSG(dataset_open(&ds, img, NULL, &s, err, sizeof err) == 0, "%s", err);
  CHECK(ds.n == 2 && ds.sample == 20 && ds.rows == 2 && ds.cols == 3);
  int bad = 0;
  for (int i = 0; i < 2; i++)
    for (int y = 0; y < 4; y++)
      for (int x = 0; x < 5; x++) {
        float v = imgs(&ds)[i * 20 + y * 5 + x];
        bool border = y == 0 || y == 3 || x == 0 || x == 4;
        float want = border ? -1.0f : expect_px(px6[i * 6 + (y - 1) * 3 + (x - 1)], -1, 1);
        if (v != want) bad++;
      }
  CHECK_MSG(bad == 0, "%d values misplaced", bad);
  /* the corners of the source land one in from the border */
  CHECK(imgs(&ds)[1 * 5 + 1] == -1.0f);               /* pixel 0 -> lo */
  CHECK(imgs(&ds)[1 * 5 + 2] == 1.0f);                /* pixel 255 -> hi */
  CHECK(imgs(&ds)[20 + 2 * 5 + 3] == expect_px(254, -1, 1));
  dataset_close(&ds);

  /* range [0,1]: the padding is 0 (black); pad 2 on a flat input: [1,6,7] = 42 values */
  dataset_shape f = shape1(42, 0, 1, 2);
  CHECK_MSG(dataset_open(&ds, img, NULL, &f, err, sizeof err) == 0, "%s", err);
  CHECK(ds.sample == 42);
  bad = 0;
  for (int i = 0; i < 2; i++)
    for (int y = 0; y < 6; y++)
      for (int x = 0; x < 7; x++) {
        float v = imgs(&ds)[i * 42 + y * 7 + x];
        bool inside = y >= 2 && y < 4 && x >= 2 && x < 5;
        float want = inside ? (float)(px6[i * 6 + (y - 2) * 3 + (x - 2)] / 255.0) : 0.0f;
        if (v != want) bad++;
      }
  CHECK_MSG(bad == 0, "%d values misplaced", bad);
  dataset_close(&ds);
}

/* gzip is decided by the magic: .gz files, a gzip file without .gz and a plain file
 * named .gz all read the same; labels pair across .gz and plain. */
static void test_gzip(void) {
  char err[1024];
  dataset ds;
  dataset_shape s = shape3(1, 2, 3, -1, 1, 0);
  float ref[12];
  const char *plain = path_of("v-images-idx3-ubyte");
  CHECK_MSG(dataset_open(&ds, plain, NULL, &s, err, sizeof err) == 0, "%s", err);
  memcpy(ref, imgs(&ds), sizeof ref);
  dataset_close(&ds);

  const char *img = path_of("g-images-idx3-ubyte.gz"), *lab = path_of("g-labels-idx1-ubyte.gz");
  write_images(img, 2, 2, 3, px6, true);
  write_labels(lab, 2, lab2, true);
  unsigned char m[2] = {0, 0};
  FILE *fp = fopen(img, "rb");
  CHECK(fread(m, 1, 2, fp) == 2 && m[0] == 0x1f && m[1] == 0x8b);
  fclose(fp);
  CHECK_MSG(dataset_open(&ds, img, NULL, &s, err, sizeof err) == 0, "%s", err);
  CHECK(ds.n == 2 && memcmp(imgs(&ds), ref, sizeof ref) == 0);
  CHECK_STR(ds.labels_path, lab);
  CHECK(ds.labels && ds.labels[0] == 7 && ds.labels[1] == 3);
  dataset_close(&ds);

  /* gzipped images, plain labels; and plain images, gzipped labels */
  img = path_of("m-images-idx3-ubyte.gz"), lab = path_of("m-labels-idx1-ubyte");
  write_images(img, 2, 2, 3, px6, true);
  write_labels(lab, 2, lab2, false);
  CHECK_MSG(dataset_open(&ds, img, NULL, &s, err, sizeof err) == 0, "%s", err);
  CHECK_STR(ds.labels_path, lab);
  CHECK(ds.labels && ds.labels[1] == 3);
  dataset_close(&ds);
  img = path_of("n-images-idx3-ubyte"), lab = path_of("n-labels-idx1-ubyte.gz");
  write_images(img, 2, 2, 3, px6, false);
  write_labels(lab, 2, lab2, true);
  CHECK_MSG(dataset_open(&ds, img, NULL, &s, err, sizeof err) == 0, "%s", err);
  CHECK_STR(ds.labels_path, lab);
  CHECK(ds.labels && ds.labels[0] == 7);
  dataset_close(&ds);

  /* the name decides nothing */
  img = path_of("gzip-without-suffix");
  write_images(img, 2, 2, 3, px6, true);
  CHECK_MSG(dataset_open(&ds, img, NULL, &s, err, sizeof err) == 0, "%s", err);
  CHECK(memcmp(imgs(&ds), ref, sizeof ref) == 0 && ds.labels == NULL);
  dataset_close(&ds);
  img = path_of("plain-named.gz");
  write_images(img, 2, 2, 3, px6, false);
  CHECK_MSG(dataset_open(&ds, img, NULL, &s, err, sizeof err) == 0, "%s", err);
  CHECK(memcmp(imgs(&ds), ref, sizeof ref) == 0);
  dataset_close(&ds);

  /* a larger image set (beyond one read buffer) survives the round trip */
  enum { N = 300, R = 28 };
  uint8_t *big = malloc(N * R * R);
  for (int i = 0; i < N * R * R; i++) big[i] = (uint8_t)(i * 7 + i / 13);
  img = path_of("big-images-idx3-ubyte.gz");
  write_images(img, N, R, R, big, true);
  idx_array a;
  CHECK_MSG(idx_read(img, &a, err, sizeof err) == 0, "%s", err);
  CHECK(a.numel == N * R * R && a.data && memcmp(a.data, big, N * R * R) == 0);
  idx_free(&a);
  free(big);
}

static void test_no_labels(void) {
  char err[1024];
  const char *img = path_of("solo.idx");
  write_images(img, 2, 2, 3, px6, false);
  dataset ds;
  dataset_shape s = shape3(1, 2, 3, 0, 1, 0);
  CHECK_MSG(dataset_open(&ds, img, NULL, &s, err, sizeof err) == 0, "%s", err);
  CHECK(ds.labels == NULL && ds.labels_path == NULL);
  int32_t lab[3] = {5, 5, 5};
  float out[18];
  CHECK(dataset_batch(&ds, 1, 0, 3, out, lab, err, sizeof err) == 0);
  CHECK(lab[0] == -1 && lab[1] == -1 && lab[2] == -1);
  dataset_close(&ds);

  /* an images name whose labels partner is absent */
  img = path_of("lonely-images-idx3-ubyte");
  write_images(img, 2, 2, 3, px6, false);
  CHECK_MSG(dataset_open(&ds, img, NULL, &s, err, sizeof err) == 0, "%s", err);
  CHECK(ds.labels == NULL && ds.labels_path == NULL);
  dataset_close(&ds);
}

/* ---- malformed IDX files ---------------------------------------------------------- */

/* A malformed IDX file: its header words and how many data bytes follow, and the
 * message after "PATH: ", where %s stands for "the file" (or, gzipped, "the decompressed
 * stream"). */
static const struct {
  const char *name;
  uint32_t magic;
  int ndims;
  uint32_t dim[3];
  size_t nbytes;
  const char *msg;
} bad_idx[] = {
    {"bad-magic", 0x12340803, 3, {3, 2, 2}, 12,
     "not an IDX file (magic 0x12340803; images are 0x00000803, labels 0x00000801)"},
    {"bad-type-unknown", 0x00000703, 3, {3, 2, 2}, 12,
     "not an IDX file (magic 0x00000703; images are 0x00000803, labels 0x00000801)"},
    {"bad-type-float", 0x00000D03, 3, {3, 2, 2}, 48,
     "IDX type code 0x0D (float32) is not supported: only unsigned bytes (0x08)"},
    {"bad-type-int32", 0x00000C01, 1, {3}, 12,
     "IDX type code 0x0C (int32) is not supported: only unsigned bytes (0x08)"},
    {"bad-rank", 0x00000802, 2, {3, 2}, 6,
     "IDX rank 2 (magic 0x00000802) is not supported: images are 0x00000803, labels "
     "0x00000801"},
    /* zero dimensions */
    {"zero-n", 0x00000803, 3, {0, 28, 28}, 0,
     "header says 0 images of 28x28: a dimension is zero"},
    {"zero-rows", 0x00000803, 3, {5, 0, 28}, 0,
     "header says 5 images of 0x28: a dimension is zero"},
    {"zero-cols", 0x00000803, 3, {5, 28, 0}, 0,
     "header says 5 images of 28x0: a dimension is zero"},
    {"zero-labels", 0x00000801, 1, {0}, 0, "header says 0 labels: a dimension is zero"},
    /* sizes that overflow, or pass the 2 GiB limit, are refused before reading on */
    {"overflow", 0x00000803, 3, {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu}, 16,
     "header says 4294967295 images of 4294967295x4294967295: the byte count overflows 64 "
     "bits"},
    {"over-cap", 0x00000803, 3, {65536, 256, 256}, 16,
     "header says 65536 images of 256x256 (4294967296 bytes), more than the 2 GiB limit"},
    {"over-cap-labels", 0x00000801, 1, {0xFFFFFFFFu}, 16,
     "header says 4294967295 labels (4294967295 bytes), more than the 2 GiB limit"},
    /* exactly 2 GiB passes the header check; then the data is missing */
    {"at-cap", 0x00000803, 3, {32768, 256, 256}, 16,
     "header says 32768 images of 256x256 (2147483648 bytes) but %s has 16 after the header"},
    /* the data must be exactly as long as the header says */
    {"short-by-one", 0x00000803, 3, {3, 2, 2}, 11,
     "header says 3 images of 2x2 (12 bytes) but %s has 11 after the header"},
    {"long-by-one", 0x00000803, 3, {3, 2, 2}, 13,
     "header says 3 images of 2x2 (12 bytes) but %s has 13 after the header"},
    {"labels-short", 0x00000801, 1, {3}, 2,
     "header says 3 labels (3 bytes) but %s has 2 after the header"},
    {"labels-long", 0x00000801, 1, {3}, 4,
     "header says 3 labels (3 bytes) but %s has 4 after the header"},
    /* trailing garbage counted past one read buffer */
    {"long-by-a-lot", 0x00000803, 3, {3, 2, 2}, 200000,
     "header says 3 images of 2x2 (12 bytes) but %s has 200000 after the header"},
};

static void test_malformed_idx(void) {
  uint8_t *zeros = calloc(200000, 1);
  dataset_shape s = shape3(1, 2, 2, 0, 1, 0);
  for (size_t k = 0; k < sizeof bad_idx / sizeof bad_idx[0]; k++) {
    for (int gz = 0; gz < 2; gz++) {
      char name[64], msg[256];
      snprintf(name, sizeof name, "%s%s", bad_idx[k].name, gz ? ".gz" : "");
      const char *p = path_of(name);
      write_idx(p, bad_idx[k].magic, bad_idx[k].dim, bad_idx[k].ndims, zeros,
                bad_idx[k].nbytes, gz);
      snprintf(msg, sizeof msg, bad_idx[k].msg, gz ? "the decompressed stream" : "the file");
      CHECK_IDX_FAILS(p, "%s: %s", p, msg);
      CHECK_OPEN_FAILS(p, NULL, s, "%s: %s", p, msg);
    }
  }
  free(zeros);
  const char *p;

  /* the header itself cut short */
  static const uint8_t h6[6] = {0, 0, 8, 3, 0, 0}, h2[2] = {0, 0};
  p = path_of("header-6");
  write_bytes(p, h6, 6);
  CHECK_IDX_FAILS(p, "%s: the file ends inside the IDX header (6 bytes)", p);
  p = path_of("header-2");
  write_bytes(p, h2, 2);
  CHECK_IDX_FAILS(p, "%s: the file ends inside the IDX header (2 bytes)", p);
  p = path_of("empty");
  write_bytes(p, NULL, 0);
  CHECK_IDX_FAILS(p, "%s: the file ends inside the IDX header (0 bytes)", p);
  CHECK_OPEN_FAILS(p, NULL, s, "%s: the file ends inside the IDX header (0 bytes)", p);

  p = path_of("no-such-file");
  CHECK_IDX_FAILS(p, "%s: cannot open: No such file or directory", p);
  CHECK_OPEN_FAILS(p, NULL, s, "%s: cannot open: No such file or directory", p);
  /* a directory opens but cannot be read */
  CHECK_IDX_FAILS(dir, "%s: read error: Is a directory", dir);
}

/* Returns the bytes of path (n set), malloc'd. */
static unsigned char *slurp(const char *path, size_t *n) {
  long sz = file_size(path);
  unsigned char *b = malloc(sz > 0 ? (size_t)sz : 1);
  FILE *fp = fopen(path, "rb");
  *n = fread(b, 1, (size_t)(sz > 0 ? sz : 0), fp);
  fclose(fp);
  return b;
}

static void test_malformed_gzip(void) {
  uint8_t px[4097];
  for (int i = 0; i < 4097; i++) px[i] = (uint8_t)(i * 31 + (i >> 5));
  uint32_t d[3] = {16, 16, 16};
  const char *good = path_of("gz-good"), *p;
  write_idx(good, 0x00000803, d, 3, px, 4096, true);
  size_t n;
  unsigned char *b = slurp(good, &n);
  CHECK(n > 64);

  /* cut short: inside the deflate data, and just before the 8-byte trailer */
  p = path_of("gz-truncated-half");
  write_bytes(p, b, n / 2);
  CHECK_IDX_FAILS(p, "%s: gzip stream is truncated", p);
  dataset_shape s = shape3(1, 16, 16, 0, 1, 0);
  CHECK_OPEN_FAILS(p, NULL, s, "%s: gzip stream is truncated", p);
  p = path_of("gz-truncated-trailer");
  write_bytes(p, b, n - 1);
  CHECK_IDX_FAILS(p, "%s: gzip stream is truncated", p);
  p = path_of("gz-truncated-header");
  write_bytes(p, b, 12);
  CHECK_IDX_FAILS(p, "%s: gzip stream is truncated", p);

  /* corrupt: the CRC, the length, and the compressed bits */
  unsigned char *c = malloc(n);
  memcpy(c, b, n);
  c[n - 8] ^= 0x55;
  p = path_of("gz-bad-crc");
  write_bytes(p, c, n);
  CHECK_IDX_FAILS(p, "%s: gzip stream is corrupt (zlib: incorrect data check)", p);
  memcpy(c, b, n);
  c[n - 2] ^= 0x01;
  p = path_of("gz-bad-length");
  write_bytes(p, c, n);
  CHECK_IDX_FAILS(p, "%s: gzip stream is corrupt (zlib: incorrect length check)", p);
  memcpy(c, b, n);
  c[10] = 0xff; /* the first deflate block header: type 3 is invalid */
  p = path_of("gz-bad-block");
  write_bytes(p, c, n);
  CHECK_IDX_FAILS(p, "%s: gzip stream is corrupt (zlib: invalid block type)", p);
  /* damage anywhere in the deflate data must not pass */
  int passed = 0;
  for (size_t at = 10; at < n - 8; at += 7) {
    memcpy(c, b, n);
    c[at] ^= 0xA5;
    p = path_of("gz-bad-somewhere");
    write_bytes(p, c, n);
    idx_array a;
    char err[1024];
    if (idx_read(p, &a, err, sizeof err) == 0) {
      passed++;
      idx_free(&a);
    }
  }
  CHECK_MSG(passed == 0, "%d corrupted streams passed", passed);
  free(c);
  free(b);

  /* a valid gzip stream whose content is one byte short or long */
  p = path_of("gz-content-short");
  write_idx(p, 0x00000803, d, 3, px, 4095, true);
  CHECK_IDX_FAILS(p, "%s: header says 16 images of 16x16 (4096 bytes) but the decompressed "
                     "stream has 4095 after the header", p);
  p = path_of("gz-content-long");
  write_idx(p, 0x00000803, d, 3, px, 4096 + 1, false); /* plain first, then gzip it */
  b = slurp(p, &n);
  write_gz(p, b, n);
  free(b);
  CHECK_IDX_FAILS(p, "%s: header says 16 images of 16x16 (4096 bytes) but the decompressed "
                     "stream has 4097 after the header", p);
  p = path_of("gz-header-only");
  static const uint8_t h3[3] = {0, 0, 8};
  write_gz(p, h3, 3);
  CHECK_IDX_FAILS(p, "%s: the decompressed stream ends inside the IDX header (3 bytes)", p);
}

/* ---- labels and shapes ------------------------------------------------------------ */

static void test_label_errors(void) {
  uint8_t px[12] = {0}, lab[3] = {1, 2, 3};
  dataset_shape s = shape3(1, 2, 2, 0, 1, 0);
  const char *img = path_of("c-images-idx3-ubyte"), *l = path_of("c-labels-idx1-ubyte");
  write_images(img, 3, 2, 2, px, false);
  write_labels(l, 2, lab, false);
  CHECK_OPEN_FAILS(img, NULL, s, "%s: 2 labels but %s has 3 images", l, img);
  write_labels(l, 4, (const uint8_t[4]){0}, false);
  CHECK_OPEN_FAILS(img, NULL, s, "%s: 4 labels but %s has 3 images", l, img);
  /* the labels file holds images */
  write_images(l, 3, 2, 2, px, false);
  CHECK_OPEN_FAILS(img, NULL, s, "%s: is an images file (magic 0x00000803), expected labels "
                                 "(0x00000801)", l);
  /* a damaged labels file is an error, not "no labels" */
  write_idx(l, 0x00000801, (const uint32_t[1]){3}, 1, lab, 2, false);
  CHECK_OPEN_FAILS(img, NULL, s, "%s: header says 3 labels (3 bytes) but the file has 2 after "
                                 "the header", l);
  /* the images file holds labels */
  CHECK_OPEN_FAILS(path_of("v-labels-idx1-ubyte"), NULL, s,
                   "%s: is a labels file (magic 0x00000801), expected images (0x00000803)",
                   path_of("v-labels-idx1-ubyte"));
}

static void test_shape_errors(void) {
  const char *img = path_of("v-images-idx3-ubyte"); /* 2 images of 2x3 */
  CHECK_OPEN_FAILS(img, NULL, shape3(3, 64, 64, 0, 1, 0),
                   "%s: images are [1,2,3], the model's input is [3,64,64]; declare pad or a "
                   "matching shape", img);
  CHECK_OPEN_FAILS(img, NULL, shape3(1, 3, 2, 0, 1, 0),
                   "%s: images are [1,2,3], the model's input is [1,3,2]; declare pad or a "
                   "matching shape", img);
  CHECK_OPEN_FAILS(img, NULL, shape3(3, 2, 3, 0, 1, 0),
                   "%s: images are [1,2,3], the model's input is [3,2,3]; declare pad or a "
                   "matching shape", img);
  CHECK_OPEN_FAILS(img, NULL, shape3(1, 4, 5, -1, 1, 2),
                   "%s: images are [1,2,3] ([1,6,7] with pad 2), the model's input is [1,4,5]; "
                   "declare pad or a matching shape", img);
  CHECK_OPEN_FAILS(img, NULL, shape1(7, 0, 1, 0),
                   "%s: images are [1,2,3] (6 values), the model's input is [7]; declare pad "
                   "or a matching shape", img);
  CHECK_OPEN_FAILS(img, NULL, shape1(6, 0, 1, 1),
                   "%s: images are [1,2,3] ([1,4,5] with pad 1, 20 values), the model's input "
                   "is [6]; declare pad or a matching shape", img);
  /* the model's declaration itself */
  dataset_shape r2 = {2, {2, 3, 0}, 0, 1, 0};
  CHECK_OPEN_FAILS(img, NULL, r2, "%s: the model's input has rank 2; expected [C,H,W] or [D]",
                   img);
  CHECK_OPEN_FAILS(img, NULL, shape3(1, 0, 3, 0, 1, 0), "%s: the model's input has dimension 0",
                   img);
  CHECK_OPEN_FAILS(img, NULL, shape3(1, 2, 3, 0, 1, -1), "%s: the model's input has pad -1",
                   img);
  CHECK_OPEN_FAILS(img, NULL, shape3(1, 2, 3, 1, 1, 0),
                   "%s: the model's input range [1, 1] is not an interval", img);
  CHECK_OPEN_FAILS(img, NULL, shape3(1, 2, 3, 1, -1, 0),
                   "%s: the model's input range [1, -1] is not an interval", img);
}

/* ---- .npy ------------------------------------------------------------------------- */

static void test_npy(void) {
  char err[1024];
  dataset ds;
  dataset_shape s = shape3(1, 2, 3, -1, 1, 0);

  /* uint8 [n,H,W] with int32 labels by the images -> labels rule */
  const char *img = path_of("a-images.npy"), *lab = path_of("a-labels.npy");
  write_npy(img, NPY_U8, 3, (const int64_t[]){2, 2, 3}, (void *)px6);
  write_npy(lab, NPY_I32, 1, (const int64_t[]){2}, (int32_t[]){7, 3});
  CHECK_MSG(dataset_open(&ds, img, NULL, &s, err, sizeof err) == 0, "%s", err);
  CHECK(ds.n == 2 && ds.sample == 6 && ds.channels == 1 && ds.rows == 2 && ds.cols == 3);
  CHECK(ds.pixels && !ds.images);
  for (int i = 0; i < 12; i++) CHECK(imgs(&ds)[i] == expect_px(px6[i], -1, 1));
  CHECK_STR(ds.labels_path, lab);
  CHECK(ds.labels && ds.labels[0] == 7 && ds.labels[1] == 3);
  dataset_close(&ds);

  /* uint8 [n,C,H,W], C = 3; labels by X.npy -> X-labels.npy, uint8 */
  uint8_t rgb[2 * 3 * 2 * 2];
  for (int i = 0; i < 24; i++) rgb[i] = (uint8_t)(i * 11);
  img = path_of("rgb.npy"), lab = path_of("rgb-labels.npy");
  write_npy(img, NPY_U8, 4, (const int64_t[]){2, 3, 2, 2}, rgb);
  write_npy(lab, NPY_U8, 1, (const int64_t[]){2}, (uint8_t[]){9, 0});
  dataset_shape s3 = shape3(3, 2, 2, 0, 1, 0);
  CHECK_MSG(dataset_open(&ds, img, NULL, &s3, err, sizeof err) == 0, "%s", err);
  CHECK(ds.n == 2 && ds.sample == 12 && ds.channels == 3);
  for (int i = 0; i < 24; i++) CHECK(imgs(&ds)[i] == (float)(rgb[i] / 255.0));
  CHECK(ds.labels && ds.labels[0] == 9 && ds.labels[1] == 0);
  dataset_close(&ds);
  /* with pad 1: each channel padded on its own */
  dataset_shape s3p = shape3(3, 4, 4, 0, 1, 1);
  CHECK_MSG(dataset_open(&ds, img, NULL, &s3p, err, sizeof err) == 0, "%s", err);
  CHECK(ds.sample == 48);
  CHECK(imgs(&ds)[48 + 2 * 16 + 1 * 4 + 1] == (float)(rgb[12 + 2 * 4] / 255.0));
  CHECK(imgs(&ds)[48 + 2 * 16 + 2 * 4 + 2] == (float)(rgb[12 + 2 * 4 + 3] / 255.0));
  CHECK(imgs(&ds)[48 + 2 * 16 + 3 * 4 + 3] == 0.0f);
  dataset_close(&ds);
  CHECK_OPEN_FAILS(img, NULL, shape3(1, 2, 2, 0, 1, 0),
                   "%s: images are [3,2,2], the model's input is [1,2,2]; declare pad or a "
                   "matching shape", img);

  /* float32 in [0,1], no labels */
  float f[6] = {0, 1, 0.5f, 0.25f, 0.75f, 1.0f / 3};
  img = path_of("floats.npy");
  write_npy(img, NPY_F32, 4, (const int64_t[]){1, 1, 2, 3}, f);
  CHECK_MSG(dataset_open(&ds, img, NULL, &s, err, sizeof err) == 0, "%s", err);
  CHECK(ds.n == 1 && ds.labels == NULL && ds.labels_path == NULL);
  CHECK(imgs(&ds)[0] == -1.0f && imgs(&ds)[1] == 1.0f && imgs(&ds)[2] == 0.0f);
  CHECK(imgs(&ds)[3] == -0.5f && imgs(&ds)[4] == 0.5f);
  CHECK(imgs(&ds)[5] == (float)(-1.0 * (1.0 - (double)f[5]) + (double)f[5]));
  CHECK(ds.images && !ds.pixels); /* floats are converted once */
  dataset_close(&ds);
  /* padded floats: a border of lo around the same values */
  dataset_shape sp = shape3(1, 4, 5, -1, 1, 1);
  CHECK_MSG(dataset_open(&ds, img, NULL, &sp, err, sizeof err) == 0, "%s", err);
  CHECK(ds.sample == 20);
  for (int y = 0; y < 4; y++)
    for (int x = 0; x < 5; x++) {
      bool border = y == 0 || y == 3 || x == 0 || x == 4;
      double v = border ? 0 : f[(y - 1) * 3 + (x - 1)];
      float want = border ? -1.0f : (float)(-1.0 * (1.0 - v) + v);
      CHECK_MSG(imgs(&ds)[y * 5 + x] == want, "padded float (%d,%d): %g, want %g", y, x,
                (double)imgs(&ds)[y * 5 + x], (double)want);
    }
  dataset_close(&ds);

  /* rejected: floats outside [0,1] or NaN, int32 images, other ranks, zero dims */
  float g[6] = {0, 0.5f, 1, 0, 1.5f, 0};
  img = path_of("floats-big.npy");
  write_npy(img, NPY_F32, 3, (const int64_t[]){2, 1, 3}, g);
  CHECK_OPEN_FAILS(img, NULL, shape3(1, 1, 3, 0, 1, 0),
                   "%s: value 1.5 (image 1) is outside [0,1]; float32 images must be scaled "
                   "to [0,1]", img);
  g[4] = NAN;
  write_npy(img, NPY_F32, 3, (const int64_t[]){2, 1, 3}, g);
  CHECK_OPEN_FAILS(img, NULL, shape3(1, 1, 3, 0, 1, 0),
                   "%s: value nan (image 1) is outside [0,1]; float32 images must be scaled "
                   "to [0,1]", img);
  g[4] = 0, g[0] = -0.001f;
  write_npy(img, NPY_F32, 3, (const int64_t[]){2, 1, 3}, g);
  CHECK_OPEN_FAILS(img, NULL, shape3(1, 1, 3, 0, 1, 0),
                   "%s: value -0.001 (image 0) is outside [0,1]; float32 images must be "
                   "scaled to [0,1]", img);
  img = path_of("ints.npy");
  write_npy(img, NPY_I32, 3, (const int64_t[]){2, 1, 3}, (int32_t[6]){0});
  CHECK_OPEN_FAILS(img, NULL, shape3(1, 1, 3, 0, 1, 0),
                   "%s: images must be uint8 or float32, got int32 [2,1,3]", img);
  img = path_of("rank2.npy");
  write_npy(img, NPY_U8, 2, (const int64_t[]){2, 6}, (uint8_t[12]){0});
  CHECK_OPEN_FAILS(img, NULL, shape1(6, 0, 1, 0),
                   "%s: images must be [n,H,W] or [n,C,H,W], got [2,6]", img);
  img = path_of("empty.npy");
  write_npy(img, NPY_U8, 3, (const int64_t[]){0, 2, 3}, (uint8_t[1]){0});
  CHECK_OPEN_FAILS(img, NULL, s, "%s: images are [0,2,3]: a dimension is zero", img);
  /* npy_read's own complaints come through */
  img = path_of("bad-version.npy");
  write_bytes(img, "\x93NUMPY\x03\x00\x10\x00", 10);
  CHECK_OPEN_FAILS(img, NULL, s, "%s: unsupported .npy version 3.0", img);

  /* label problems */
  img = path_of("b-images.npy"), lab = path_of("b-labels.npy");
  write_npy(img, NPY_U8, 3, (const int64_t[]){2, 2, 3}, (void *)px6);
  write_npy(lab, NPY_I32, 1, (const int64_t[]){3}, (int32_t[]){1, 2, 3});
  CHECK_OPEN_FAILS(img, NULL, s, "%s: 3 labels but %s has 2 images", lab, img);
  write_npy(lab, NPY_I32, 1, (const int64_t[]){2}, (int32_t[]){1, -3});
  CHECK_OPEN_FAILS(img, NULL, s, "%s: label 1 is -3; labels must not be negative", lab);
  write_npy(lab, NPY_F32, 1, (const int64_t[]){2}, (float[]){1, 2});
  CHECK_OPEN_FAILS(img, NULL, s, "%s: labels must be uint8 or int32 [n], got float32 [2]", lab);
  write_npy(lab, NPY_U8, 2, (const int64_t[]){2, 1}, (uint8_t[]){1, 2});
  CHECK_OPEN_FAILS(img, NULL, s, "%s: labels must be uint8 or int32 [n], got uint8 [2,1]", lab);
}

/* ---- data set names --------------------------------------------------------------- */

static void test_names(void) {
  char err[1024], dd[512], p[700];
  snprintf(dd, sizeof dd, "%s/dd", dir);
  mkdir(dd, 0700);
  snprintf(p, sizeof p, "%s/mnist", dd);
  mkdir(p, 0700);
  snprintf(p, sizeof p, "%s/fashion-mnist", dd);
  mkdir(p, 0700);
  snprintf(p, sizeof p, "%s/mnist/train-images-idx3-ubyte", dd);
  write_images(p, 2, 2, 3, px6, false);
  snprintf(p, sizeof p, "%s/mnist/train-labels-idx1-ubyte", dd);
  write_labels(p, 2, lab2, false);
  snprintf(p, sizeof p, "%s/fashion-mnist/t10k-images-idx3-ubyte.gz", dd);
  write_images(p, 2, 2, 3, px6, true);
  snprintf(p, sizeof p, "%s/fashion-mnist/t10k-labels-idx1-ubyte.gz", dd);
  write_labels(p, 2, lab2, true);
  snprintf(p, sizeof p, "%s/fashion-mnist/train-images-idx3-ubyte.gz", dd);
  write_images(p, 2, 2, 3, px6, true); /* and no labels */

  dataset ds;
  dataset_shape s = shape3(1, 2, 3, 0, 1, 0);
  CHECK_MSG(dataset_open(&ds, "mnist", dd, &s, err, sizeof err) == 0, "%s", err);
  snprintf(p, sizeof p, "%s/mnist/train-images-idx3-ubyte", dd);
  CHECK_STR(ds.images_path, p);
  snprintf(p, sizeof p, "%s/mnist/train-labels-idx1-ubyte", dd);
  CHECK_STR(ds.labels_path, p);
  CHECK(ds.n == 2 && ds.labels && ds.labels[0] == 7 && imgs(&ds)[1] == 1.0f);
  dataset_close(&ds);
  CHECK_MSG(dataset_open(&ds, "fashion-test", dd, &s, err, sizeof err) == 0, "%s", err);
  snprintf(p, sizeof p, "%s/fashion-mnist/t10k-images-idx3-ubyte.gz", dd);
  CHECK_STR(ds.images_path, p);
  snprintf(p, sizeof p, "%s/fashion-mnist/t10k-labels-idx1-ubyte.gz", dd);
  CHECK_STR(ds.labels_path, p);
  CHECK(ds.n == 2 && ds.labels && ds.labels[1] == 3);
  dataset_close(&ds);

  /* a known set must be complete */
  snprintf(p, sizeof p, "%s/mnist/t10k-images-idx3-ubyte", dd);
  CHECK_OPEN_FAILS("mnist-test", dd, s, "%s: not found (nor with .gz): the 'mnist-test' data "
                                        "set is not under %s/; MIGC_DATA_DIR=%s "
                                        "scripts/fetch-data.sh fetches it there", p, dd, dd);
  snprintf(p, sizeof p, "%s/fashion-mnist/train-labels-idx1-ubyte", dd);
  CHECK_OPEN_FAILS("fashion", dd, s, "%s: cannot open: No such file or directory", p);
  /* the default directory is data/, relative to the working directory */
  char cwd[512];
  CHECK(getcwd(cwd, sizeof cwd) != NULL);
  CHECK(chdir(dir) == 0);
  CHECK_OPEN_FAILS("fashion-test", NULL, s, "data/fashion-mnist/t10k-images-idx3-ubyte: not "
                                            "found (nor with .gz): the 'fashion-test' data set; "
                                            "scripts/fetch-data.sh fetches it into data/");
  CHECK_OPEN_FAILS("mnsit", NULL, s, "mnsit: no such file, nor a known data set (mnist, "
                                     "mnist-test, fashion, fashion-test)");
  CHECK(chdir(cwd) == 0);
}

/* ---- batching --------------------------------------------------------------------- */

/* The documented permutation, written out again in the test: floor(u*(i+1)) in double
 * is exact for these sizes. */
static void reference_permutation(int64_t n, uint64_t seed, int64_t epoch, int64_t *perm) {
  for (int64_t i = 0; i < n; i++) perm[i] = i;
  for (int64_t i = n - 1; i > 0; i--) {
    double u = rng_uniform(seed, RNG_STREAM_SHUFFLE, (uint64_t)epoch, (uint64_t)i);
    int64_t j = (int64_t)(u * (double)(i + 1));
    int64_t t = perm[i];
    perm[i] = perm[j], perm[j] = t;
  }
}

static bool is_permutation(const int64_t *perm, int64_t n) {
  char *seen = calloc((size_t)n, 1);
  bool ok = true;
  for (int64_t i = 0; i < n && ok; i++) {
    if (perm[i] < 0 || perm[i] >= n || seen[perm[i]]) ok = false;
    else seen[perm[i]] = 1;
  }
  free(seen);
  return ok;
}

static void test_permutation(void) {
  enum { N = 1000 };
  static int64_t a[N], b[N];
  for (int64_t e = 0; e < 6; e++) {
    dataset_permutation(N, 42, e, a);
    reference_permutation(N, 42, e, b);
    CHECK(is_permutation(a, N));
    CHECK_MSG(memcmp(a, b, sizeof a) == 0, "epoch %lld differs from the reference",
              (long long)e);
  }
  dataset_permutation(N, 42, 0, a);
  dataset_permutation(N, 42, 0, b);
  CHECK(memcmp(a, b, sizeof a) == 0); /* deterministic */
  dataset_permutation(N, 43, 0, b);
  CHECK(memcmp(a, b, sizeof a) != 0); /* another seed, another order */
  dataset_permutation(N, 42, 1, b);
  CHECK(memcmp(a, b, sizeof a) != 0); /* another epoch, another order */
  int64_t ident = 0;
  for (int64_t i = 0; i < N; i++) ident += a[i] == i;
  CHECK_MSG(ident < 20, "%lld fixed points", (long long)ident); /* about 1 expected */
  /* tiny sets */
  int64_t one = 7;
  dataset_permutation(1, 42, 3, &one);
  CHECK(one == 0);
  int64_t two[2];
  int swapped = 0;
  for (int64_t e = 0; e < 64; e++) {
    dataset_permutation(2, 42, e, two);
    CHECK(is_permutation(two, 2));
    swapped += two[0] == 1;
  }
  CHECK_MSG(swapped > 10 && swapped < 54, "swapped %d of 64", swapped);
  /* a large epoch number is just another counter */
  dataset_permutation(N, 42, INT64_MAX / 3, a);
  reference_permutation(N, 42, INT64_MAX / 3, b);
  CHECK(is_permutation(a, N) && memcmp(a, b, sizeof a) == 0);
}

enum { BN = 10 }; /* samples in the batching data set */

/* A data set of BN 1x1 images with pixel 10*i and label i, range [0,255] so that the
 * value is the pixel exactly: a sample's value names it. */
static int open_counting(dataset *ds) {
  uint8_t px[BN], lab[BN];
  for (int i = 0; i < BN; i++) px[i] = (uint8_t)(10 * i), lab[i] = (uint8_t)i;
  const char *img = path_of("count-images-idx3-ubyte"), *l = path_of("count-labels-idx1-ubyte");
  write_images(img, BN, 1, 1, px, false);
  write_labels(l, BN, lab, false);
  char err[1024];
  dataset_shape s = shape3(1, 1, 1, 0, 255, 0);
  int rc = dataset_open(ds, img, NULL, &s, err, sizeof err);
  CHECK_MSG(rc == 0, "%s", err);
  return rc;
}

/* The sample index at global position pos, by the documented rule. */
static int64_t expected_index(uint64_t seed, int64_t pos) {
  int64_t perm[BN];
  reference_permutation(BN, seed, pos / BN, perm);
  return perm[pos % BN];
}

static void test_batches(void) {
  dataset ds, ds2;
  char err[1024];
  if (open_counting(&ds) || open_counting(&ds2)) return;
  CHECK(ds.n == BN && ds.sample == 1);
  for (int i = 0; i < BN; i++) CHECK(imgs(&ds)[i] == (float)(10 * i) && ds.labels[i] == i);

  enum { B = 3, STEPS = 40 }; /* 120 positions: 12 epochs, batches crossing their ends */
  const uint64_t seed = 7;
  float img[STEPS][B];
  int32_t lab[STEPS][B];
  int bad = 0;
  for (int64_t step = 0; step < STEPS; step++) {
    CHECK(dataset_batch(&ds, seed, step, B, img[step], lab[step], err, sizeof err) == 0);
    for (int k = 0; k < B; k++) {
      int64_t want = expected_index(seed, step * B + k);
      if (lab[step][k] != want || img[step][k] != (float)(10 * want)) bad++;
    }
  }
  CHECK_MSG(bad == 0, "%d samples not where the documented rule puts them", bad);
  /* step 3 is positions 9, 10, 11: the end of epoch 0, the start of epoch 1 */
  int64_t p0[BN], p1[BN];
  dataset_permutation(BN, seed, 0, p0);
  dataset_permutation(BN, seed, 1, p1);
  CHECK(lab[3][0] == p0[9] && lab[3][1] == p1[0] && lab[3][2] == p1[1]);
  /* every epoch of the sequential stream is a permutation */
  for (int e = 0; e < STEPS * B / BN; e++) {
    int64_t seen[BN];
    for (int k = 0; k < BN; k++) seen[k] = lab[(e * BN + k) / B][(e * BN + k) % B];
    CHECK_MSG(is_permutation(seen, BN), "epoch %d", e);
  }
  /* epochs differ (each is its own shuffle) */
  int same01 = 1;
  for (int k = 0; k < BN; k++) same01 &= p0[k] == p1[k];
  CHECK(!same01);

  /* any step directly: backwards, and jumping about, on another data set object */
  bad = 0;
  for (int64_t step = STEPS - 1; step >= 0; step--) {
    float i2[B];
    int32_t l2[B];
    CHECK(dataset_batch(&ds2, seed, step, B, i2, l2, err, sizeof err) == 0);
    if (memcmp(i2, img[step], sizeof i2) || memcmp(l2, lab[step], sizeof l2)) bad++;
  }
  for (int64_t r = 0; r < 200; r++) {
    int64_t step = (r * 17 + 5) % STEPS;
    float i2[B];
    int32_t l2[B];
    CHECK(dataset_batch(&ds2, seed, step, B, i2, l2, err, sizeof err) == 0);
    if (memcmp(i2, img[step], sizeof i2) || memcmp(l2, lab[step], sizeof l2)) bad++;
  }
  CHECK_MSG(bad == 0, "%d steps differ from the sequential run", bad);

  /* a second seed interleaved on the same object changes nothing for the first */
  bad = 0;
  int differs = 0;
  for (int64_t step = 0; step < STEPS; step++) {
    int32_t la[B], lb[B];
    CHECK(dataset_batch(&ds2, seed + 1, step, B, NULL, lb, err, sizeof err) == 0);
    CHECK(dataset_batch(&ds2, seed, step, B, NULL, la, err, sizeof err) == 0);
    if (memcmp(la, lab[step], sizeof la)) bad++;
    if (memcmp(la, lb, sizeof la)) differs++;
    for (int k = 0; k < B; k++)
      if (lb[k] != expected_index(seed + 1, step * B + k)) bad++;
  }
  CHECK_MSG(bad == 0, "%d mismatches with two seeds interleaved", bad);
  CHECK(differs > STEPS / 2);

  /* a batch larger than the data set spans three epochs */
  enum { BIG = 25 };
  int32_t lbig[BIG];
  float ibig[BIG];
  CHECK(dataset_batch(&ds, seed, 1, BIG, ibig, lbig, err, sizeof err) == 0);
  bad = 0;
  for (int k = 0; k < BIG; k++)
    if (lbig[k] != expected_index(seed, BIG + k) || ibig[k] != (float)(10 * lbig[k])) bad++;
  CHECK_MSG(bad == 0, "%d misplaced in the large batch", bad);
  /* batch == n: each step is exactly one epoch's permutation */
  int32_t lfull[BN];
  CHECK(dataset_batch(&ds, seed, 5, BN, NULL, lfull, err, sizeof err) == 0);
  int64_t p5[BN];
  dataset_permutation(BN, seed, 5, p5);
  bad = 0;
  for (int k = 0; k < BN; k++) bad += lfull[k] != p5[k];
  CHECK(bad == 0);
  /* far steps work without replaying anything */
  int64_t far = 1000000007;
  int32_t lf[B];
  CHECK(dataset_batch(&ds, seed, far, B, NULL, lf, err, sizeof err) == 0);
  for (int k = 0; k < B; k++) CHECK(lf[k] == expected_index(seed, far * B + k));

  /* bad arguments */
  snprintf(err, sizeof err, "?");
  char want[1024];
  CHECK(dataset_batch(&ds, seed, 0, 0, NULL, NULL, err, sizeof err) != 0);
  snprintf(want, sizeof want, "%s: batch size 0", ds.images_path);
  CHECK_STR(err, want);
  CHECK(dataset_batch(&ds, seed, -1, 3, NULL, NULL, err, sizeof err) != 0);
  snprintf(want, sizeof want, "%s: negative step -1", ds.images_path);
  CHECK_STR(err, want);
  /* positions are int64: the last sample of step INT64_MAX/3 would be INT64_MAX + 1 */
  CHECK(dataset_batch(&ds, seed, INT64_MAX / 3, 3, NULL, NULL, err, sizeof err) != 0);
  snprintf(want, sizeof want, "%s: step %lld of batch 3 is past the last sample index",
           ds.images_path, (long long)(INT64_MAX / 3));
  CHECK_STR(err, want);
  /* the step before is the last one that fits */
  CHECK(dataset_batch(&ds, seed, INT64_MAX / 3 - 1, 3, NULL, lf, err, sizeof err) == 0);
  for (int k = 0; k < B; k++) CHECK(lf[k] == expected_index(seed, (INT64_MAX / 3 - 1) * 3 + k));
  CHECK(dataset_batch(&ds, seed, 1, INT64_MAX, NULL, NULL, err, sizeof err) != 0);
  snprintf(want, sizeof want, "%s: step 1 of batch %lld is past the last sample index",
           ds.images_path, (long long)INT64_MAX);
  CHECK_STR(err, want);
  dataset_close(&ds);
  dataset_close(&ds2);
  CHECK(dataset_batch(&ds, seed, 0, 1, NULL, NULL, err, sizeof err) != 0);
  CHECK_STR(err, "dataset: the data set is not open");
}

/* ---- the real data sets under data/ ----------------------------------------------- */

static void check_real(const char *name, const char *file, int64_t n, dataset_shape s) {
  char data_dir[1024], path[1200], err[1024];
  snprintf(data_dir, sizeof data_dir, "%s/data", MIGC_SOURCE_DIR);
  snprintf(path, sizeof path, "%s/%s", data_dir, file);
  if (access(path, R_OK) != 0) {
    CHECK_MSG(0, "%s is missing: run scripts/fetch-data.sh (scripts/test.sh does)", path);
    return;
  }
  dataset ds;
  if (dataset_open(&ds, name, data_dir, &s, err, sizeof err) != 0) {
    CHECK_MSG(0, "%s: %s", name, err);
    return;
  }
  CHECK_MSG(ds.n == n, "%s: %lld images, expected %lld", name, (long long)ds.n, (long long)n);
  CHECK(ds.rows == 28 && ds.cols == 28 && ds.channels == 1 && ds.labels);
  int64_t count[10] = {0}, out = 0;
  for (int64_t i = 0; i < ds.n; i++) {
    if (ds.labels[i] >= 0 && ds.labels[i] <= 9) count[ds.labels[i]]++;
    else out++;
  }
  CHECK_MSG(out == 0, "%s: %lld labels outside 0..9", name, (long long)out);
  for (int d = 0; d < 10; d++) CHECK_MSG(count[d] > 0, "%s: no label %d", name, d);
  /* values within the range, both ends reached; the padding is lo */
  int64_t below = 0, lo_seen = 0, hi_seen = 0, pad_bad = 0;
  int64_t side = s.rank == 3 ? s.dim[2] : 28;
  const float *smp = NULL;
  for (int64_t i = 0; i < ds.n * ds.sample; i++) {
    if (i % ds.sample == 0) smp = one_sample(&ds, i / ds.sample);
    float v = smp[i % ds.sample];
    below += !(v >= s.lo && v <= s.hi);
    lo_seen += v == s.lo, hi_seen += v == s.hi;
    int64_t y = i % ds.sample / side, x = i % side;
    if (s.pad && (y < s.pad || x < s.pad || y >= side - s.pad || x >= side - s.pad))
      pad_bad += v != s.lo;
  }
  CHECK_MSG(below == 0, "%s: %lld values outside the range", name, (long long)below);
  CHECK(lo_seen > 0 && hi_seen > 0);
  CHECK_MSG(pad_bad == 0, "%s: %lld padding values are not lo", name, (long long)pad_bad);
  /* a batch across the first epoch boundary, against the documented rule */
  int64_t batch = 64, step = n / batch; /* n is not a multiple of 64 */
  float *img = malloc((size_t)(batch * ds.sample) * sizeof(float));
  int32_t lab[64];
  CHECK(dataset_batch(&ds, 2016, step, batch, img, lab, err, sizeof err) == 0);
  int64_t *p0 = malloc((size_t)n * sizeof(int64_t)), *p1 = malloc((size_t)n * sizeof(int64_t));
  reference_permutation(n, 2016, 0, p0);
  reference_permutation(n, 2016, 1, p1);
  int bad = 0;
  for (int64_t k = 0; k < batch; k++) {
    int64_t pos = step * batch + k, i = pos < n ? p0[pos] : p1[pos - n];
    bad += lab[k] != ds.labels[i] ||
           memcmp(img + k * ds.sample, one_sample(&ds, i), (size_t)ds.sample * 4) != 0;
  }
  CHECK_MSG(bad == 0, "%s: %d samples of the boundary batch misplaced", name, bad);
  free(p0);
  free(p1);
  free(img);
  dataset_close(&ds);
}

static void test_real_data(void) {
  /* the models' declarations: infogan_mnist [1,28,28] in [0,1]; infogan_mlp flat;
   * dcgan_fashion [1,32,32] in [-1,1] with pad 2 */
  check_real("mnist", "mnist/train-images-idx3-ubyte", 60000, shape3(1, 28, 28, 0, 1, 0));
  check_real("mnist-test", "mnist/t10k-images-idx3-ubyte", 10000, shape3(1, 28, 28, -1, 1, 0));
  check_real("mnist-test", "mnist/t10k-images-idx3-ubyte", 10000, shape1(784, 0, 1, 0));
  check_real("fashion", "fashion-mnist/train-images-idx3-ubyte.gz", 60000,
             shape3(1, 32, 32, -1, 1, 2));
  check_real("fashion-test", "fashion-mnist/t10k-images-idx3-ubyte.gz", 10000,
             shape3(1, 28, 28, 0, 1, 0));
}

/* Removes dir and what the tests wrote in it (one level of subdirectories). */
static void remove_tree(const char *path) {
  DIR *d = opendir(path);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", path, e->d_name);
    struct stat st;
    if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
      remove_tree(p);
    else
      unlink(p);
  }
  if (d) closedir(d);
  rmdir(path);
}

int main(void) {
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_values();
  test_padding();
  test_gzip();
  test_no_labels();
  test_malformed_idx();
  test_malformed_gzip();
  test_label_errors();
  test_shape_errors();
  test_npy();
  test_names();
  test_permutation();
  test_batches();
  test_real_data();
  remove_tree(dir);
  return check_done();
}
