/* test_safetensors.c: safetensors round trips, the exact bytes of tiny files, every
 * corruption the reader must reject (each message naming the file and the tensor),
 * atomic writes that fail without harming an existing file, and an independent
 * parse of our output by Python's json and struct modules. */
#include "check.h"
#include "runtime/runtime.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/migc_test_st_XXXXXX";

static void path_of(char *buf, size_t n, const char *name) {
  snprintf(buf, n, "%s/%s", dir, name);
}

static void write_bytes(const char *path, const void *b, size_t n) {
  FILE *fp = fopen(path, "wb");
  if (n) fwrite(b, 1, n, fp);
  fclose(fp);
}

/* The whole file into a malloc'd buffer; *n its length. */
static unsigned char *slurp(const char *path, size_t *n) {
  FILE *fp = fopen(path, "rb");
  *n = 0;
  if (!fp) return NULL;
  fseek(fp, 0, SEEK_END);
  long len = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  unsigned char *b = malloc((size_t)len + 1);
  *n = fread(b, 1, (size_t)len, fp);
  fclose(fp);
  return b;
}

/* A file with header length hlen (the JSON's own length unless hlen_override >= 0),
 * the JSON unpadded, then data. */
static void write_st_raw(const char *path, const char *json, int64_t hlen_override,
                         const void *data, size_t ndata) {
  size_t jlen = strlen(json);
  uint64_t hlen = hlen_override >= 0 ? (uint64_t)hlen_override : jlen;
  unsigned char len8[8];
  for (int b = 0; b < 8; b++) len8[b] = (unsigned char)(hlen >> (8 * b));
  FILE *fp = fopen(path, "wb");
  fwrite(len8, 1, 8, fp);
  fwrite(json, 1, jlen, fp);
  if (ndata) fwrite(data, 1, ndata, fp);
  fclose(fp);
}

/* Count of directory entries whose name contains ".tmp.": leftovers of failed writes. */
static int temp_files_left(void) {
  DIR *d = opendir(dir);
  int k = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strstr(e->d_name, ".tmp.")) k++;
  closedir(d);
  return k;
}

/* ---- round trips ------------------------------------------------------------------ */

static void test_round_trip(void) {
  char p[256], err[512];
  path_of(p, sizeof p, "rt.safetensors");
  float w[6] = {1.5f, -2, 0, 3.25f, 1e-30f, -7};
  int32_t idx[4] = {7, -1, 2147483647, -2147483647 - 1};
  float s = 0.125f;
  int32_t si = 42;
  st_tensor t[5] = {
      {"G.dense0.weight", ST_F32, 2, {2, 3}, w},
      {"labels", ST_I32, 1, {4}, idx},
      {"scalar", ST_F32, 0, {0}, &s},
      {"empty", ST_F32, 2, {0, 5}, NULL},
      {"step \"quoted\" \\ name", ST_I32, 0, {0}, &si},
  };
  st_meta m[4] = {
      {"format", "pt"},
      {"odd \"key\"\twith\\stuff", "line1\nline2 \x01 caf\xc3\xa9 \xe2\x88\x91 \xf0\x9f\x99\x82"},
      {"empty", ""},
      {"model", "mnist_infogan.mig"},
  };
  CHECK_MSG(safetensors_write(p, t, 5, m, 4, err, sizeof err) == 0, "%s", err);
  CHECK(temp_files_left() == 0);

  st_file f;
  CHECK_MSG(safetensors_read(p, &f, err, sizeof err) == 0, "%s", err);
  CHECK(f.n == 5 && f.nmeta == 4);
  for (int j = 0; j < 5 && j < f.n; j++) {
    const st_tensor *a = &f.tensors[j], *b = &t[j];
    CHECK_STR(a->name, b->name);
    CHECK(a->dtype == b->dtype && a->rank == b->rank);
    for (int d = 0; d < b->rank; d++) CHECK(a->shape[d] == b->shape[d]);
    CHECK(st_numel(a) == st_numel(b));
    size_t bytes = (size_t)st_numel(b) * 4;
    CHECK(bytes == 0 || memcmp(a->data, b->data, bytes) == 0);
    CHECK((uintptr_t)a->data % 4 == 0);
  }
  for (int j = 0; j < 4 && j < f.nmeta; j++) {
    CHECK_STR(f.meta[j].key, m[j].key);
    CHECK_STR(f.meta[j].value, m[j].value);
  }
  const st_tensor *x = st_file_find(&f, "labels");
  CHECK(x && x->dtype == ST_I32 && ((const int32_t *)x->data)[2] == 2147483647);
  x = st_file_find(&f, "scalar");
  CHECK(x && x->rank == 0 && st_numel(x) == 1 && *(const float *)x->data == 0.125f);
  CHECK(st_file_find(&f, "nope") == NULL);
  CHECK_STR(st_file_meta(&f, "model"), "mnist_infogan.mig");
  CHECK_STR(st_file_meta(&f, "empty"), "");
  CHECK(st_file_meta(&f, "nope") == NULL);
  st_file_free(&f);
  CHECK(f.tensors == NULL && f.n == 0);

  /* overwriting replaces the file; no tensors and no metadata is a valid file too */
  CHECK_MSG(safetensors_write(p, NULL, 0, NULL, 0, err, sizeof err) == 0, "%s", err);
  size_t n;
  unsigned char *b = slurp(p, &n);
  CHECK(n == 16 && b && memcmp(b, "\x08\0\0\0\0\0\0\0{}      ", 16) == 0);
  free(b);
  CHECK_MSG(safetensors_read(p, &f, err, sizeof err) == 0, "%s", err);
  CHECK(f.n == 0 && f.nmeta == 0);
  st_file_free(&f);
}

/* The exact bytes: header length, JSON in the order given, space padding to 8, data. */
static void test_exact_bytes(void) {
  char p[256], err[512];
  path_of(p, sizeof p, "tiny.safetensors");
  float a[2] = {1.0f, -2.0f};
  st_tensor t = {"a", ST_F32, 1, {2}, a};
  st_meta m = {"k", "v"};
  CHECK_MSG(safetensors_write(p, &t, 1, &m, 1, err, sizeof err) == 0, "%s", err);
  static const char want[] =
      "\x50\0\0\0\0\0\0\0"
      "{\"__metadata__\":{\"k\":\"v\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
      "\"data_offsets\":[0,8]}} "
      "\x00\x00\x80\x3f\x00\x00\x00\xc0";
  size_t n;
  unsigned char *b = slurp(p, &n);
  CHECK_MSG(n == sizeof want - 1, "%zu bytes", n);
  CHECK(b && n == sizeof want - 1 && memcmp(b, want, n) == 0);
  CHECK((n - 8) % 8 == 0);
  free(b);

  /* an I32 scalar, no metadata: 53 bytes of JSON padded to 56 */
  path_of(p, sizeof p, "scalar.safetensors");
  int32_t v = 0x01020304;
  st_tensor s = {"s", ST_I32, 0, {0}, &v};
  CHECK_MSG(safetensors_write(p, &s, 1, NULL, 0, err, sizeof err) == 0, "%s", err);
  static const char want2[] = "\x38\0\0\0\0\0\0\0"
                              "{\"s\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[0,4]}}   "
                              "\x04\x03\x02\x01";
  b = slurp(p, &n);
  CHECK(b && n == sizeof want2 - 1 && memcmp(b, want2, n) == 0);
  free(b);
}

/* ---- corrupt files ---------------------------------------------------------------- */

/* Reads path expecting failure with exactly "<path>: <msg>". */
static void expect_error(const char *path, const char *msg, int line) {
  char err[512] = "", want[768];
  st_file f;
  int rc = safetensors_read(path, &f, err, sizeof err);
  snprintf(want, sizeof want, "%s: %s", path, msg);
  if (rc == 0) {
    check_failed++;
    fprintf(stderr, "%s:%d: read succeeded, expected: %s\n", __FILE__, line, want);
    st_file_free(&f);
    return;
  }
  CHECK_MSG(strcmp(err, want) == 0, "(line %d)\n  got:      %s\n  expected: %s", line, err,
            want);
  CHECK(f.tensors == NULL && f.data_ == NULL && f.n == 0);
}

/* A file of the given JSON and data, read expecting msg. */
static void corrupt(const char *json, const void *data, size_t ndata, const char *msg,
                    int line) {
  char p[256];
  path_of(p, sizeof p, "bad.safetensors");
  write_st_raw(p, json, -1, data, ndata);
  expect_error(p, msg, line);
}
#define CORRUPT(json, data, ndata, msg) corrupt(json, data, ndata, msg, __LINE__)

static void test_corrupt(void) {
  char p[256], err[512];
  static unsigned char zeros[1024];

  /* truncation: inside the length, inside the header, inside the data */
  path_of(p, sizeof p, "trunc.safetensors");
  float a[2] = {1, 2};
  st_tensor t = {"a", ST_F32, 1, {2}, a};
  CHECK_MSG(safetensors_write(p, &t, 1, NULL, 0, err, sizeof err) == 0, "%s", err);
  size_t n;
  unsigned char *whole = slurp(p, &n);
  write_bytes(p, whole, 5);
  expect_error(p, "file is 5 bytes, too short for the 8-byte header length", __LINE__);
  write_bytes(p, whole, 30);
  expect_error(p, "header length 56 runs past the end of the file (22 bytes follow it)",
               __LINE__);
  write_bytes(p, whole, n - 4);
  expect_error(p, "tensor 'a': data_offsets [0, 8] run past the end of the data section "
                  "(4 bytes)", __LINE__);
  free(whole);
  write_bytes(p, "", 0);
  expect_error(p, "file is 0 bytes, too short for the 8-byte header length", __LINE__);

  /* header length beyond the file, and beyond 100 MiB in a file that is that large
   * (sparse, so it costs no disk) */
  write_st_raw(p, "{}", 1000, NULL, 0);
  expect_error(p, "header length 1000 runs past the end of the file (2 bytes follow it)",
               __LINE__);
  write_st_raw(p, "{}", (100 << 20) + 1, NULL, 0);
  CHECK(truncate(p, (100 << 20) + 64) == 0);
  expect_error(p, "header length 104857601 is over the 100 MiB limit", __LINE__);
  write_st_raw(p, "{}", 1, NULL, 0);
  expect_error(p, "header is 1 bytes, too short for a JSON object", __LINE__);

  /* not JSON, not an object, not UTF-8, trailing text */
  CORRUPT("{\"a\": {\"dtype\": ", NULL, 0, "header is not valid JSON (near byte 15)");
  CORRUPT("{\"a\": 1,}", NULL, 0, "header is not valid JSON (near byte 8)");
  CORRUPT("[1, 2]", NULL, 0, "header does not start with '{'");
  CORRUPT("{}  x", NULL, 0, "header has text after the JSON object (at byte 4)");
  CORRUPT("{\"\xff\": 1}", NULL, 0, "header is not valid UTF-8 (at byte 2)");
  CORRUPT("{\"\xc0\xaf\": 1}", NULL, 0, "header is not valid UTF-8 (at byte 2)");
  path_of(p, sizeof p, "nul.safetensors");
  write_bytes(p, "\x04\0\0\0\0\0\0\0{}\0 ", 12);
  expect_error(p, "header has text after the JSON object (at byte 2)", __LINE__);

  /* the strict reader (json.c): grammar, escapes, depth */
  CORRUPT("{\"a\": 01}", NULL, 0, "header is not valid JSON (near byte 7)");
  CORRUPT("{\"a\": +1}", NULL, 0, "header is not valid JSON (near byte 6)");
  CORRUPT("{\"a\": 1.}", NULL, 0, "header is not valid JSON (near byte 8)");
  CORRUPT("{\"a\": tru}", NULL, 0, "header is not valid JSON (near byte 6)");
  CORRUPT("{\"a\\u0000b\": 1}", NULL, 0, "header is not valid JSON (near byte 9)");
  CORRUPT("{\"\\ud800\": 1}", NULL, 0, "header is not valid JSON (near byte 8)");
  CORRUPT("{\"a\\q\": 1}", NULL, 0, "header is not valid JSON (near byte 4)");
  CORRUPT("{\"a\tb\": 1}", NULL, 0, "header is not valid JSON (near byte 3)");
  CORRUPT("{'a': 1}", NULL, 0, "header is not valid JSON (near byte 1)");
  {
    char deep[200] = "{\"__metadata__\": ";
    for (int k = 0; k < 70; k++) strcat(deep, "[");
    CORRUPT(deep, NULL, 0, "header nests deeper than 64 levels (at byte 80)");
  }
  /* escapes decode: "\u00e9\"" is the name \xc3\xa9" */
  path_of(p, sizeof p, "escaped.safetensors");
  write_st_raw(p, "{\"\\u00e9\\\"\": {\"dtype\": \"F32\", \"shape\": [], "
                  "\"data_offsets\": [0, 4]}}", -1, "\0\0\0\0", 4);
  {
    st_file ef;
    CHECK_MSG(safetensors_read(p, &ef, err, sizeof err) == 0, "%s", err);
    CHECK(ef.n == 1 && strcmp(ef.tensors[0].name, "\xc3\xa9\"") == 0);
    st_file_free(&ef);
  }

  /* entries */
  CORRUPT("{\"a\": 3}", NULL, 0, "tensor 'a': entry is not a JSON object");
  CORRUPT("{\"a\": {\"dtype\": \"F32\", \"shape\": [1]}}", zeros, 4,
          "tensor 'a': no 'data_offsets'");
  CORRUPT("{\"a\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", zeros, 4,
          "tensor 'a': no 'dtype'");
  CORRUPT("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4], \"x\": 1}}",
          zeros, 4, "tensor 'a': unknown key 'x'");
  CORRUPT("{\"a\": {\"dtype\": \"F32\", \"dtype\": \"F32\", \"shape\": [1], "
          "\"data_offsets\": [0, 4]}}",
          zeros, 4, "tensor 'a': key 'dtype' appears twice");
  CORRUPT("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}, "
          "\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}",
          zeros, 8, "tensor 'a' appears twice in the header");

  /* dtypes: not a string, unknown, known but not loaded (after all else checks out) */
  CORRUPT("{\"w\": {\"dtype\": 5, \"shape\": [1], \"data_offsets\": [0, 4]}}", zeros, 4,
          "tensor 'w': dtype is not a string");
  CORRUPT("{\"w\": {\"dtype\": \"F33\", \"shape\": [1], \"data_offsets\": [0, 4]}}", zeros, 4,
          "tensor 'w': unknown dtype 'F33'");
  CORRUPT("{\"w\": {\"dtype\": \"f32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", zeros, 4,
          "tensor 'w': unknown dtype 'f32'");
  CORRUPT("{\"ok\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}, "
          "\"half\": {\"dtype\": \"F16\", \"shape\": [3], \"data_offsets\": [4, 10]}, "
          "\"b\": {\"dtype\": \"BF16\", \"shape\": [1], \"data_offsets\": [10, 12]}}",
          zeros, 12, "tensor 'half': dtype F16 is not supported (migc loads F32 and I32)");
  CORRUPT("{\"d\": {\"dtype\": \"F64\", \"shape\": [2], \"data_offsets\": [0, 16]}}", zeros, 16,
          "tensor 'd': dtype F64 is not supported (migc loads F32 and I32)");
  /* a structural error wins over an unsupported dtype */
  CORRUPT("{\"u\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [0, 3]}}", zeros, 3,
          "tensor 'u': data_offsets [0, 3] hold 3 values but its shape [2] needs 2");

  /* shapes */
  CORRUPT("{\"w\": {\"dtype\": \"F32\", \"shape\": 4, \"data_offsets\": [0, 16]}}", zeros, 16,
          "tensor 'w': shape is not an array");
  CORRUPT("{\"w\": {\"dtype\": \"F32\", \"shape\": [2, -1], \"data_offsets\": [0, 8]}}", zeros, 8,
          "tensor 'w': shape dimension 1 is not a non-negative integer");
  CORRUPT("{\"w\": {\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0, 8]}}", zeros, 8,
          "tensor 'w': shape dimension 0 is not a non-negative integer");
  CORRUPT("{\"w\": {\"dtype\": \"F32\", \"shape\": [\"2\"], \"data_offsets\": [0, 8]}}", zeros,
          8, "tensor 'w': shape dimension 0 is not a non-negative integer");
  CORRUPT("{\"w\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 4]}}",
          zeros, 4, "tensor 'w': shape has 9 dimensions (at most 8)");
  CORRUPT("{\"w\": {\"dtype\": \"F32\", \"shape\": [1099511627776, 1099511627776], "
          "\"data_offsets\": [0, 4]}}",
          zeros, 4, "tensor 'w': shape is too large");
  CORRUPT("{\"w\": {\"dtype\": \"F32\", \"shape\": [1e300], \"data_offsets\": [0, 4]}}", zeros,
          4, "tensor 'w': shape dimension 0 is not a non-negative integer");
  CORRUPT("{\"f\": {\"dtype\": \"F4\", \"shape\": [3], \"data_offsets\": [0, 2]}}", zeros, 2,
          "tensor 'f': shape [3] of F4 is not a whole number of bytes");

  /* shape against offsets */
  CORRUPT("{\"G.dense0.weight\": {\"dtype\": \"F32\", \"shape\": [10, 20], "
          "\"data_offsets\": [0, 400]}}",
          zeros, 400,
          "tensor 'G.dense0.weight': data_offsets [0, 400] hold 100 values but its shape "
          "[10, 20] needs 200");
  CORRUPT("{\"w\": {\"dtype\": \"I32\", \"shape\": [2], \"data_offsets\": [0, 6]}}", zeros, 6,
          "tensor 'w': data_offsets [0, 6] hold 6 bytes, not a whole number of I32 values; "
          "its shape [2] needs 8 bytes");
  CORRUPT("{\"s\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [0, 0]}}", NULL, 0,
          "tensor 's': data_offsets [0, 0] hold 0 values but its shape [] needs 1");

  /* offsets: malformed, reversed, out of range, overlapping, gaps */
  CORRUPT("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0]}}", zeros, 4,
          "tensor 'w': data_offsets is not a pair of non-negative integers");
  CORRUPT("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [-4, 0]}}", zeros, 4,
          "tensor 'w': data_offsets is not a pair of non-negative integers");
  CORRUPT("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": \"0,4\"}}", zeros, 4,
          "tensor 'w': data_offsets is not a pair of non-negative integers");
  CORRUPT("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 4]}}", zeros, 8,
          "tensor 'w': data_offsets [8, 4] end before they begin");
  CORRUPT("{\"w\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [4, 20]}}", zeros, 16,
          "tensor 'w': data_offsets [4, 20] run past the end of the data section (16 bytes)");
  CORRUPT("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], "
          "\"data_offsets\": [18446744073709551612, 18446744073709551616]}}",
          zeros, 4, "tensor 'w': data_offsets is not a pair of non-negative integers");
  CORRUPT("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, "
          "\"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}",
          zeros, 12, "tensors 'a' [0, 8] and 'b' [4, 12] overlap");
  CORRUPT("{\"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}, "
          "\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}",
          zeros, 12, "tensors 'a' [0, 8] and 'b' [4, 12] overlap");
  CORRUPT("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, "
          "\"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}",
          zeros, 8, "tensors 'a' [0, 8] and 'b' [0, 8] overlap");
  CORRUPT("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}, "
          "\"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 12]}}",
          zeros, 12, "bytes [4, 8] of the data section after tensor 'a' belong to no tensor");
  CORRUPT("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", zeros, 8,
          "bytes [0, 4] of the data section belong to no tensor");
  CORRUPT("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", zeros, 8,
          "bytes [4, 8] of the data section after tensor 'a' belong to no tensor");
  CORRUPT("{}", zeros, 3, "bytes [0, 3] of the data section belong to no tensor");

  /* metadata */
  CORRUPT("{\"__metadata__\": {\"k\": 1}}", NULL, 0, "metadata 'k' is not a string");
  CORRUPT("{\"__metadata__\": {\"a\": \"x\", \"k\": null}}", NULL, 0,
          "metadata 'k' is not a string");
  CORRUPT("{\"__metadata__\": {\"k\": {\"nested\": \"x\"}}}", NULL, 0,
          "metadata 'k' is not a string");
  CORRUPT("{\"__metadata__\": [\"k\"]}", NULL, 0, "__metadata__ is not a JSON object");
  CORRUPT("{\"__metadata__\": {\"k\": \"a\", \"k\": \"b\"}}", NULL, 0,
          "metadata key 'k' appears twice");
  CORRUPT("{\"__metadata__\": {}, \"__metadata__\": {}}", NULL, 0, "__metadata__ appears twice");

  /* what must still load: null metadata, padding, zero-size tensors anywhere */
  path_of(p, sizeof p, "ok.safetensors");
  write_st_raw(p,
               "{\"__metadata__\": null, \"z\": {\"dtype\": \"F32\", \"shape\": [0, 3], "
               "\"data_offsets\": [4, 4]}, \"a\": {\"dtype\": \"I32\", \"shape\": [1], "
               "\"data_offsets\": [0, 4]}}   \n",
               -1, "\x05\0\0\0", 4);
  st_file f;
  CHECK_MSG(safetensors_read(p, &f, err, sizeof err) == 0, "%s", err);
  CHECK(f.n == 2 && f.nmeta == 0 && strcmp(f.tensors[0].name, "z") == 0);
  CHECK(f.n == 2 && *(const int32_t *)f.tensors[1].data == 5);
  st_file_free(&f);

  /* not a file */
  path_of(p, sizeof p, "missing.safetensors");
  char want[512];
  snprintf(want, sizeof want, "%s: cannot open: No such file or directory", p);
  CHECK(safetensors_read(p, &f, err, sizeof err) != 0);
  CHECK_STR(err, want);
  CHECK(safetensors_read(dir, &f, err, sizeof err) != 0);
}

/* ---- writing: bad arguments and failed writes ------------------------------------- */

static void expect_write_error(const char *path, const st_tensor *t, int n, const st_meta *m,
                               int nm, const char *msg, int line) {
  char err[512] = "", want[768];
  snprintf(want, sizeof want, "%s: %s", path, msg);
  int rc = safetensors_write(path, t, n, m, nm, err, sizeof err);
  CHECK_MSG(rc != 0 && strcmp(err, want) == 0, "(line %d)\n  got:      %s\n  expected: %s",
            line, err, want);
}

static void test_write_errors(void) {
  char p[256], err[512];
  path_of(p, sizeof p, "args.safetensors");
  float v[4] = {0};
  st_tensor dup[2] = {{"w", ST_F32, 1, {1}, v}, {"w", ST_F32, 1, {1}, v}};
  expect_write_error(p, dup, 2, NULL, 0, "tensor name 'w' is given twice", __LINE__);
  st_tensor reserved = {"__metadata__", ST_F32, 1, {1}, v};
  expect_write_error(p, &reserved, 1, NULL, 0, "tensor 0: name '__metadata__' is not allowed",
                     __LINE__);
  st_tensor noname = {"", ST_F32, 1, {1}, v};
  expect_write_error(p, &noname, 1, NULL, 0, "tensor 0: name '' is not allowed", __LINE__);
  st_tensor neg = {"w", ST_F32, 2, {2, -1}, v};
  expect_write_error(p, &neg, 1, NULL, 0, "tensor 'w': dimension 1 is negative (-1)", __LINE__);
  st_tensor deep = {"w", ST_F32, 9, {1}, v};
  expect_write_error(p, &deep, 1, NULL, 0, "tensor 'w': rank 9 is not in 0..8", __LINE__);
  st_tensor nodata = {"w", ST_I32, 1, {3}, NULL};
  expect_write_error(p, &nodata, 1, NULL, 0, "tensor 'w': no data", __LINE__);
  st_tensor huge = {"w", ST_F32, 2, {1 << 30, 1 << 30}, v};
  expect_write_error(p, &huge, 1, NULL, 0, "tensor 'w': shape is too large", __LINE__);
  st_meta mdup[2] = {{"k", "a"}, {"k", "b"}};
  expect_write_error(p, NULL, 0, mdup, 2, "metadata key 'k' is given twice", __LINE__);
  st_meta mnull = {"k", NULL};
  expect_write_error(p, NULL, 0, &mnull, 1, "metadata entry 0 has no key or no value", __LINE__);
  CHECK(access(p, F_OK) != 0);

  /* an existing checkpoint that every failed write below must leave as it was */
  path_of(p, sizeof p, "keep.safetensors");
  float old[3] = {1, 2, 3};
  st_tensor t_old = {"w", ST_F32, 1, {3}, old};
  CHECK_MSG(safetensors_write(p, &t_old, 1, NULL, 0, err, sizeof err) == 0, "%s", err);
  size_t n0;
  unsigned char *before = slurp(p, &n0);

  /* a full disk: the temporary file's name is a symlink to /dev/full, so every write to
   * it fails with ENOSPC, just as it would on a full file system */
  char tmp[300], want[1024];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", p, (long)getpid());
  CHECK(symlink("/dev/full", tmp) == 0);
  float fresh[5] = {9, 9, 9, 9, 9};
  st_tensor t_new = {"w", ST_F32, 1, {5}, fresh};
  snprintf(want, sizeof want, "%s: cannot write %s: No space left on device", p, tmp);
  expect_write_error(p, &t_new, 1, NULL, 0, want + strlen(p) + 2, __LINE__);
  struct stat sb;
  CHECK(lstat(tmp, &sb) != 0); /* the temporary name is gone */
  size_t n1;
  unsigned char *after = slurp(p, &n1);
  CHECK(after && n1 == n0 && memcmp(before, after, n0) == 0);
  free(after);
  CHECK(temp_files_left() == 0);

  /* a directory that is a regular file: the temporary file cannot be created */
  char notdir[300], under[400];
  path_of(notdir, sizeof notdir, "plainfile");
  write_bytes(notdir, "x", 1);
  snprintf(under, sizeof under, "%s/ckpt.safetensors", notdir);
  snprintf(want, sizeof want, "cannot create %s.tmp.%ld: Not a directory", under,
           (long)getpid());
  expect_write_error(under, &t_new, 1, NULL, 0, want, __LINE__);

  /* a directory where the file should go: the rename fails, the temporary file goes */
  char isdir[300], inside[400];
  path_of(isdir, sizeof isdir, "adir.safetensors");
  CHECK(mkdir(isdir, 0777) == 0);
  snprintf(inside, sizeof inside, "%s/inner", isdir);
  write_bytes(inside, "y", 1);
  snprintf(want, sizeof want, "cannot rename %s.tmp.%ld into place: Is a directory", isdir,
           (long)getpid());
  expect_write_error(isdir, &t_new, 1, NULL, 0, want, __LINE__);
  CHECK(stat(isdir, &sb) == 0 && S_ISDIR(sb.st_mode) && access(inside, F_OK) == 0);
  CHECK(temp_files_left() == 0);
  unlink(inside);
  rmdir(isdir);
  unlink(notdir);

  /* and after all that, the checkpoint still reads as the old one */
  st_file f;
  CHECK_MSG(safetensors_read(p, &f, err, sizeof err) == 0, "%s", err);
  CHECK(f.n == 1 && f.tensors[0].shape[0] == 3 && ((const float *)f.tensors[0].data)[2] == 3);
  st_file_free(&f);
  free(before);
}

/* ---- an independent reader: Python's json and struct ------------------------------ */

static const char python_reader[] =
    "import json, struct, sys\n"
    "b = open(sys.argv[1], 'rb').read()\n"
    "n = struct.unpack('<Q', b[:8])[0]\n"
    "print('header', n, n % 8, len(b) - 8 - n)\n"
    "h = json.loads(b[8:8 + n].decode('utf-8'))\n"
    "meta = h.pop('__metadata__', {})\n"
    "for k in sorted(meta):\n"
    "    print('meta', json.dumps(k), json.dumps(meta[k]))\n"
    "data = b[8 + n:]\n"
    "for name, e in h.items():\n"
    "    s, t = e['data_offsets']\n"
    "    code = {'F32': 'f', 'I32': 'i'}[e['dtype']]\n"
    "    vals = struct.unpack('<%d%s' % ((t - s) // 4, code), data[s:t])\n"
    "    print(name, e['dtype'], e['shape'], s, t, *vals)\n";

static void test_python_reads_it(void) {
  char p[256], script[256], err[512], cmd[1024];
  FILE *probe = popen("command -v python3 || command -v /usr/bin/python3", "r");
  char py[256] = "";
  if (probe) {
    if (!fgets(py, sizeof py, probe)) py[0] = '\0';
    pclose(probe);
  }
  py[strcspn(py, "\n")] = '\0';
  CHECK_MSG(py[0] != '\0', "python3 not found: this test reads our file with Python's json "
                           "and struct modules (CI has python3)");
  if (!py[0]) return;

  path_of(p, sizeof p, "py.safetensors");
  path_of(script, sizeof script, "read_st.py");
  write_bytes(script, python_reader, sizeof python_reader - 1);
  float w[6] = {1.5f, -2, 0.25f, 3, -0.5f, 1024};
  int32_t c[3] = {-7, 0, 2147483647};
  float s = -0.125f;
  st_tensor t[4] = {
      {"G.dense0.weight", ST_F32, 2, {2, 3}, w},
      {"codes", ST_I32, 1, {3}, c},
      {"lr", ST_F32, 0, {0}, &s},
      {"nothing", ST_F32, 3, {2, 0, 4}, NULL},
  };
  st_meta m[2] = {{"step", "1200"}, {"odd", "tab\there \"q\" \\ caf\xc3\xa9\n"}};
  CHECK_MSG(safetensors_write(p, t, 4, m, 2, err, sizeof err) == 0, "%s", err);

  snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' 2>&1", py, script, p);
  FILE *fp = popen(cmd, "r");
  char out[4096];
  size_t len = fp ? fread(out, 1, sizeof out - 1, fp) : 0;
  out[len] = '\0';
  int status = fp ? pclose(fp) : -1;
  CHECK_MSG(status == 0, "python exited with %d:\n%s", status, out);
  /* header: length, its remainder mod 8, and the data bytes (24 + 12 + 4 + 0) */
  const char *nl = strchr(out, '\n');
  CHECK(strncmp(out, "header ", 7) == 0 && nl && strncmp(nl - 5, " 0 40", 5) == 0);
  CHECK_STR(nl ? nl + 1 : "",
            "meta \"odd\" \"tab\\there \\\"q\\\" \\\\ caf\\u00e9\\n\"\n"
            "meta \"step\" \"1200\"\n"
            "G.dense0.weight F32 [2, 3] 0 24 1.5 -2.0 0.25 3.0 -0.5 1024.0\n"
            "codes I32 [3] 24 36 -7 0 2147483647\n"
            "lr F32 [] 36 40 -0.125\n"
            "nothing F32 [2, 0, 4] 40 40\n");
  unlink(script);
}

/* Step counters against the step metadata: a plain counter equals it; the counters of
 * a step with every= (STEP.t beside STEP.phase) are whole numbers up to it. */
static void test_step_counters(void) {
  char err[256];
  const char *names[] = {"disc.t", "gen.t", "gen.phase"};
  float ok[] = {7, 2, 1};
  CHECK(st_check_step_counters("c.st", 7, 3, names, ok, err, sizeof err) == 0);
  float plain_off[] = {6, 2, 1};
  CHECK(st_check_step_counters("c.st", 7, 3, names, plain_off, err, sizeof err) == 1);
  CHECK_STR(err, "c.st: its step metadata says 7, but its step counter disc.t holds 6");
  float gated_off[] = {7, 8, 1};
  CHECK(st_check_step_counters("c.st", 7, 3, names, gated_off, err, sizeof err) == 1);
  CHECK_STR(err, "c.st: its step metadata says 7, but its step counter gen.t holds 8 (a "
                 "whole number from 0 to the step, as its step updates every few steps)");
  float phase_off[] = {7, 2, 0.5f};
  CHECK(st_check_step_counters("c.st", 7, 3, names, phase_off, err, sizeof err) == 1);
  CHECK(strstr(err, "counter gen.phase holds 0.5") != NULL);
  /* gen.t alone (no phase) is a plain counter */
  CHECK(st_check_step_counters("c.st", 7, 2, names, (float[]){7, 2}, err, sizeof err) == 1);
  CHECK_STR(err, "c.st: its step metadata says 7, but its step counter gen.t holds 2");
}

int main(void) {
  test_step_counters();
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_round_trip();
  test_exact_bytes();
  test_corrupt();
  test_write_errors();
  test_python_reads_it();
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return check_done();
}
