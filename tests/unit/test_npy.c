/* test_npy.c: .npy round trips, every malformed header the reader must reject (each
 * message naming the file), and the golden-ops files loading. */
#include "check.h"
#include "runtime/runtime.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/migc_test_npy_XXXXXX";

static void path_of(char *buf, size_t n, const char *name) {
  snprintf(buf, n, "%s/%s", dir, name);
}

/* Writes a file: preamble with the given magic/version, the header text padded to a
 * multiple of 16 with '\n' last (unless raw_header), then `data`. */
static void write_npy_raw(const char *path, const char *magic, int major, const char *dict,
                          const void *data, size_t nbytes) {
  FILE *fp = fopen(path, "wb");
  size_t pre = major == 2 ? 12 : 10;
  size_t hlen = strlen(dict) + 1;
  size_t total = (pre + hlen + 15) / 16 * 16;
  size_t pad = total - pre - hlen;
  fwrite(magic, 1, 6, fp);
  fputc(major, fp);
  fputc(0, fp);
  size_t h = hlen + pad;
  fputc((int)(h & 0xff), fp);
  fputc((int)(h >> 8 & 0xff), fp);
  if (major == 2) {
    fputc((int)(h >> 16 & 0xff), fp);
    fputc((int)(h >> 24 & 0xff), fp);
  }
  fputs(dict, fp);
  for (size_t j = 0; j < pad; j++) fputc(' ', fp);
  fputc('\n', fp);
  if (nbytes) fwrite(data, 1, nbytes, fp);
  fclose(fp);
}

static void write_bytes(const char *path, const void *b, size_t n) {
  FILE *fp = fopen(path, "wb");
  if (n) fwrite(b, 1, n, fp);
  fclose(fp);
}

static long file_size(const char *path) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return -1;
  fseek(fp, 0, SEEK_END);
  long n = ftell(fp);
  fclose(fp);
  return n;
}

static void test_round_trip(void) {
  char p[256], err[256];
  /* f32 [2,3] */
  float f[6] = {1.5f, -2, 0, 3.25f, 1e-30f, -7};
  npy_array a = {NPY_F32, 2, {2, 3}, f, 6}, b;
  path_of(p, sizeof p, "f32.npy");
  CHECK(npy_write(p, &a, err, sizeof err) == 0);
  CHECK(file_size(p) == 128 + 24); /* data starts 64-byte aligned */
  CHECK_MSG(npy_read(p, &b, err, sizeof err) == 0, "%s", err);
  CHECK(b.dtype == NPY_F32 && b.rank == 2 && b.dim[0] == 2 && b.dim[1] == 3 && b.numel == 6);
  CHECK(b.data && memcmp(b.data, f, sizeof f) == 0);
  npy_free(&b);
  CHECK(b.data == NULL);

  /* the header text is what numpy writes */
  FILE *fp = fopen(p, "rb");
  char hdr[129] = {0};
  CHECK(fread(hdr, 1, 128, fp) == 128);
  fclose(fp);
  CHECK(memcmp(hdr, "\x93NUMPY\x01\x00\x76\x00", 10) == 0);
  CHECK(strncmp(hdr + 10, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 59) ==
        0);
  CHECK(hdr[69] == ' ' && hdr[126] == ' ' && hdr[127] == '\n');

  /* u8 [5]: the one-tuple (5,) */
  uint8_t u[5] = {0, 1, 127, 128, 255};
  npy_array c = {NPY_U8, 1, {5}, u, 5};
  path_of(p, sizeof p, "u8.npy");
  CHECK(npy_write(p, &c, err, sizeof err) == 0);
  CHECK_MSG(npy_read(p, &b, err, sizeof err) == 0, "%s", err);
  CHECK(b.dtype == NPY_U8 && b.rank == 1 && b.dim[0] == 5 && b.numel == 5);
  CHECK(b.data && memcmp(b.data, u, 5) == 0);
  npy_free(&b);

  /* i32 [2,1,2] */
  int32_t v[4] = {-1, 0, 2147483647, -2147483647 - 1};
  npy_array d = {NPY_I32, 3, {2, 1, 2}, v, 4};
  path_of(p, sizeof p, "i32.npy");
  CHECK(npy_write(p, &d, err, sizeof err) == 0);
  CHECK_MSG(npy_read(p, &b, err, sizeof err) == 0, "%s", err);
  CHECK(b.dtype == NPY_I32 && b.rank == 3 && b.dim[0] == 2 && b.dim[1] == 1 &&
        b.dim[2] == 2 && b.numel == 4);
  CHECK(b.data && memcmp(b.data, v, sizeof v) == 0);
  npy_free(&b);

  /* scalar: shape () */
  float s = 3.5f;
  npy_array e = {NPY_F32, 0, {0}, &s, 1};
  path_of(p, sizeof p, "scalar.npy");
  CHECK(npy_write(p, &e, err, sizeof err) == 0);
  CHECK_MSG(npy_read(p, &b, err, sizeof err) == 0, "%s", err);
  CHECK(b.dtype == NPY_F32 && b.rank == 0 && b.numel == 1);
  CHECK(b.data && ((float *)b.data)[0] == 3.5f);
  npy_free(&b);

  /* overwriting replaces the file and leaves no temporary behind */
  path_of(p, sizeof p, "f32.npy");
  CHECK(npy_write(p, &e, err, sizeof err) == 0);
  CHECK(npy_read(p, &b, err, sizeof err) == 0 && b.rank == 0);
  npy_free(&b);
  char tmp[300];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", p, (long)getpid());
  CHECK(access(tmp, F_OK) != 0);

  /* writing into a missing directory fails with the path in the message */
  path_of(p, sizeof p, "no/such/dir.npy");
  CHECK(npy_write(p, &e, err, sizeof err) != 0);
  CHECK(strstr(err, "no/such/dir.npy") != NULL);

  /* numel must agree with the shape */
  npy_array bad = {NPY_F32, 1, {3}, f, 4};
  path_of(p, sizeof p, "bad.npy");
  CHECK(npy_write(p, &bad, err, sizeof err) != 0);
}

/* Files numpy itself might write that we accept: version 2.0, '<f8' (converted),
 * double quotes, keys in another order, a trailing comma in the shape. */
static void test_accepted_variants(void) {
  char p[256], err[256];
  npy_array b;
  float f[3] = {1, 2, 3};
  path_of(p, sizeof p, "v2.npy");
  write_npy_raw(p, "\x93NUMPY", 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
                f, sizeof f);
  CHECK_MSG(npy_read(p, &b, err, sizeof err) == 0, "%s", err);
  CHECK(b.numel == 3 && ((float *)b.data)[2] == 3);
  npy_free(&b);

  double g[2] = {0.1, -1e10};
  path_of(p, sizeof p, "f8.npy");
  write_npy_raw(p, "\x93NUMPY", 1, "{\"shape\": (2,), \"fortran_order\": False, \"descr\": \"<f8\"}",
                g, sizeof g);
  CHECK_MSG(npy_read(p, &b, err, sizeof err) == 0, "%s", err);
  CHECK(b.dtype == NPY_F32 && b.numel == 2);
  CHECK(b.data && ((float *)b.data)[0] == 0.1f && ((float *)b.data)[1] == -1e10f);
  npy_free(&b);

  path_of(p, sizeof p, "comma.npy");
  write_npy_raw(p, "\x93NUMPY", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3,), }",
                f, sizeof f);
  CHECK_MSG(npy_read(p, &b, err, sizeof err) == 0, "%s", err);
  CHECK(b.rank == 2 && b.dim[0] == 1 && b.dim[1] == 3);
  npy_free(&b);

  /* zero elements: data is empty */
  path_of(p, sizeof p, "empty.npy");
  write_npy_raw(p, "\x93NUMPY", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }",
                NULL, 0);
  CHECK_MSG(npy_read(p, &b, err, sizeof err) == 0, "%s", err);
  CHECK(b.numel == 0 && b.rank == 2);
  npy_free(&b);
}

/* Reads `name`, expecting failure with exactly "<path>: <want>". */
static void expect_error(const char *name, const char *want) {
  char p[256], err[256], full[512];
  npy_array b;
  path_of(p, sizeof p, name);
  memset(err, 0, sizeof err);
  int rc = npy_read(p, &b, err, sizeof err);
  CHECK_MSG(rc != 0, "%s was accepted", name);
  CHECK(b.data == NULL);
  snprintf(full, sizeof full, "%s: %s", p, want);
  CHECK_STR(err, full);
  if (rc == 0) npy_free(&b);
}

static void bad_header(const char *name, const char *dict, size_t nbytes) {
  char p[256];
  static const uint8_t zeros[64];
  path_of(p, sizeof p, name);
  write_npy_raw(p, "\x93NUMPY", 1, dict, zeros, nbytes);
}

static void test_malformed(void) {
  char p[256];
  static const uint8_t zeros[64];

  path_of(p, sizeof p, "magic.npy");
  write_npy_raw(p, "\x93NUMPx", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
                zeros, 8);
  expect_error("magic.npy", "not a .npy file (bad magic)");

  path_of(p, sizeof p, "v3.npy");
  write_npy_raw(p, "\x93NUMPY", 3, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
                zeros, 8);
  expect_error("v3.npy", "unsupported .npy version 3.0");

  path_of(p, sizeof p, "tiny.npy");
  write_bytes(p, "\x93NUM", 4);
  expect_error("tiny.npy", "not a .npy file (bad magic)");

  path_of(p, sizeof p, "empty_file.npy");
  write_bytes(p, "", 0);
  expect_error("empty_file.npy", "not a .npy file (bad magic)");

  /* the preamble is cut off before the header length */
  path_of(p, sizeof p, "preamble.npy");
  write_bytes(p, "\x93NUMPY\x01\x00\x10", 9);
  expect_error("preamble.npy", "file ends inside the preamble");

  /* header length pointing past the end of the file */
  path_of(p, sizeof p, "hlen.npy");
  write_bytes(p, "\x93NUMPY\x01\x00\xff\x7f{'descr'", 18);
  expect_error("hlen.npy", "header is 32767 bytes but only 8 follow the preamble");

  /* header without the final newline */
  path_of(p, sizeof p, "newline.npy");
  write_bytes(p, "\x93NUMPY\x01\x00\x06\x00{}    ", 16);
  expect_error("newline.npy", "header does not end with a newline");

  path_of(p, sizeof p, "binary.npy");
  write_bytes(p, "\x93NUMPY\x01\x00\x06\x00{\x01}  \n", 16);
  expect_error("binary.npy", "header is not ASCII text");

  bad_header("notdict.npy", "['descr', '<f4']", 0);
  expect_error("notdict.npy", "header is not a dict");

  bad_header("dict.npy", "{'descr' '<f4', 'fortran_order': False, 'shape': (2,), }", 8);
  expect_error("dict.npy", "header dict is malformed");

  bad_header("nocomma.npy", "{'descr': '<f4' 'fortran_order': False, 'shape': (2,), }", 8);
  expect_error("nocomma.npy", "header dict is malformed");

  bad_header("trailing.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } x", 8);
  expect_error("trailing.npy", "unexpected text after the header dict");

  bad_header("i8.npy", "{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }", 8);
  expect_error("i8.npy", "unsupported dtype '<i8' (expected <f4, <f8, |u1 or <i4)");

  bad_header("big.npy", "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8);
  expect_error("big.npy", "unsupported dtype '>f4' (expected <f4, <f8, |u1 or <i4)");

  bad_header("struct.npy", "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }",
             8);
  expect_error("struct.npy", "descr is not a simple dtype string");

  bad_header("fortran.npy", "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", 8);
  expect_error("fortran.npy", "fortran_order True is not supported (save C-order arrays)");

  bad_header("fortran2.npy", "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", 8);
  expect_error("fortran2.npy", "fortran_order is neither True nor False");

  bad_header("shape_int.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': 2, }", 8);
  expect_error("shape_int.npy", "shape is not a tuple");

  bad_header("shape_paren.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2), }", 8);
  expect_error("shape_paren.npy", "shape is not a tuple");

  bad_header("shape_neg.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 8);
  expect_error("shape_neg.npy", "shape has a dimension that is not a non-negative integer");

  bad_header("shape_open.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, }", 8);
  expect_error("shape_open.npy", "shape has a dimension that is not a non-negative integer");

  bad_header("shape_sep.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2; 1), }", 8);
  expect_error("shape_sep.npy", "shape tuple is malformed");

  bad_header("shape_9.npy",
             "{'descr': '|u1', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", 1);
  expect_error("shape_9.npy", "shape has more than 8 dimensions");

  bad_header("shape_huge.npy",
             "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 8);
  expect_error("shape_huge.npy", "shape has a dimension too large");

  /* numel fits int64 but numel * 4 does not */
  bad_header("overflow.npy",
             "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", 8);
  expect_error("overflow.npy", "shape is too large");
  bad_header("overflow2.npy",
             "{'descr': '<f4', 'fortran_order': False, 'shape': (3037000500, 3037000500), }", 8);
  expect_error("overflow2.npy", "shape is too large");

  bad_header("nokey.npy", "{'descr': '<f4', 'fortran_order': False, }", 8);
  expect_error("nokey.npy", "header lacks 'shape'");

  bad_header("extra_key.npy",
             "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1, }", 8);
  expect_error("extra_key.npy", "unknown header key 'x'");

  /* data shorter and longer than the header says */
  bad_header("short.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 6), }", 40);
  expect_error("short.npy", "data is 40 bytes, header says 48");
  bad_header("long.npy", "{'descr': '<i4', 'fortran_order': False, 'shape': (), }", 8);
  expect_error("long.npy", "data is 8 bytes, header says 4");

  path_of(p, sizeof p, "missing.npy");
  char err[256];
  npy_array b;
  CHECK(npy_read(p, &b, err, sizeof err) != 0);
  CHECK(strncmp(err, p, strlen(p)) == 0 && strstr(err, "cannot open") != NULL);
}

/* A good file cut short anywhere is rejected. */
static void test_truncated(void) {
  char p[256], q[256], err[256];
  float f[16];
  for (int j = 0; j < 16; j++) f[j] = (float)j;
  npy_array a = {NPY_F32, 2, {4, 4}, f, 16}, b;
  path_of(p, sizeof p, "whole.npy");
  CHECK(npy_write(p, &a, err, sizeof err) == 0);
  FILE *fp = fopen(p, "rb");
  unsigned char buf[256];
  size_t n = fread(buf, 1, sizeof buf, fp);
  fclose(fp);
  CHECK(n == 128 + 64);
  path_of(q, sizeof q, "cut.npy");
  int rejected = 0, tried = 0;
  for (size_t len = 0; len < n; len += 5) {
    write_bytes(q, buf, len);
    tried++;
    if (npy_read(q, &b, err, sizeof err) != 0 && strncmp(err, q, strlen(q)) == 0)
      rejected++;
    else
      npy_free(&b);
  }
  CHECK_MSG(rejected == tried, "%d of %d truncations rejected", rejected, tried);
  write_bytes(q, buf, n - 1);
  expect_error("cut.npy", "data is 63 bytes, header says 64");
}

/* Every file of the golden-ops set loads as float32. */
static void test_golden(void) {
  DIR *d = opendir(MIGC_GOLDEN_OPS);
  CHECK_MSG(d != NULL, "cannot open %s", MIGC_GOLDEN_OPS);
  if (!d) return;
  int loaded = 0, total = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t len = strlen(e->d_name);
    if (len < 4 || strcmp(e->d_name + len - 4, ".npy") != 0) continue;
    char p[1024], err[512];
    snprintf(p, sizeof p, "%s/%s", MIGC_GOLDEN_OPS, e->d_name);
    npy_array a;
    total++;
    if (npy_read(p, &a, err, sizeof err) == 0) {
      if (a.dtype == NPY_F32 && a.numel >= 1)
        loaded++;
      else
        fprintf(stderr, "%s: unexpected dtype or size\n", e->d_name);
      npy_free(&a);
    } else {
      fprintf(stderr, "%s\n", err);
    }
  }
  closedir(d);
  CHECK(total > 100);
  CHECK_MSG(loaded == total, "%d of %d golden files loaded", loaded, total);
}

int main(void) {
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_round_trip();
  test_accepted_variants();
  test_malformed();
  test_truncated();
  test_golden();
  /* remove what the tests wrote */
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    unlink(p);
  }
  if (d) closedir(d);
  rmdir(dir);
  return check_done();
}
