/* dataset.c: training data. Reads images (and labels, where there are any) from IDX
 * files, plain or gzipped, or from .npy files, converts every image once into the
 * model's layout and value range, and hands out shuffled batches by global step.
 *
 * IDX (yann.lecun.com/exdb/mnist): a big-endian uint32 magic 0x0000TTRR (TT the type
 * code, 0x08 = unsigned byte; RR the rank), RR big-endian uint32 dimensions, then the
 * data, row-major. We read 0x00000803 (images [n, rows, cols]) and 0x00000801 (labels
 * [n]). Like npy.c, the reader trusts nothing in a header: dimensions must be nonzero,
 * their product must not overflow nor pass IDX_MAX_BYTES, and the data must be exactly
 * that long. A gzip stream is read to its end, so its CRC and length are checked too.
 *
 * Shuffling: the permutation of an epoch depends on (seed, epoch) only, so the batch of
 * any step is computed directly; resuming a run needs nothing but the step number. */
#include "runtime/runtime.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

/* A new string: a followed by b. NULL when out of memory. */
static char *str_cat(const char *a, const char *b) {
  size_t na = strlen(a), nb = strlen(b);
  char *s = malloc(na + nb + 1);
  if (!s) return NULL;
  memcpy(s, a, na);
  memcpy(s + na, b, nb + 1);
  return s;
}

static bool file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* ---- IDX files -------------------------------------------------------------------- */

/* A byte stream that is either a plain file or a gzip stream. */
typedef struct {
  const char *path;
  FILE *fp;  /* plain */
  gzFile gz; /* gzip */
} idx_stream;

/* Reads up to n bytes into buf; fewer only at the end of the data. Returns the count, or
 * -1 with a message when the gzip stream is damaged or the file cannot be read. */
static int64_t stream_read(idx_stream *s, void *buf, size_t n, char *err, size_t errn) {
  size_t got = 0;
  if (s->fp) {
    got = fread(buf, 1, n, s->fp);
    if (got < n && ferror(s->fp))
      return file_fail(err, errn, s->path, "read error: %s", strerror(errno)), -1;
    return (int64_t)got;
  }
  while (got < n) {
    size_t chunk = n - got < (1u << 30) ? n - got : (1u << 30); /* gzread takes an int */
    int r = gzread(s->gz, (unsigned char *)buf + got, (unsigned)chunk);
    if (r <= 0) break;
    got += (size_t)r;
  }
  if (got < n) {
    /* Z_BUF_ERROR: the input ended inside the gzip stream; others: corrupt data. zlib's
     * message starts with the path given to gzopen, which our own prefix repeats. */
    int code = Z_OK;
    const char *msg = gzerror(s->gz, &code);
    if (code == Z_BUF_ERROR)
      return file_fail(err, errn, s->path, "gzip stream is truncated"), -1;
    if (code != Z_OK) {
      size_t np = strlen(s->path);
      if (msg && strncmp(msg, s->path, np) == 0 && strncmp(msg + np, ": ", 2) == 0)
        msg += np + 2;
      return file_fail(err, errn, s->path, "gzip stream is corrupt (zlib: %s)",
                     msg ? msg : "unknown error"),
             -1;
    }
  }
  return (int64_t)got;
}

/* Opens path as a plain or gzip stream, told apart by the gzip magic 1f 8b. */
static int stream_open(idx_stream *s, const char *path, char *err, size_t errn) {
  memset(s, 0, sizeof *s);
  s->path = path;
  FILE *fp = fopen(path, "rb");
  if (!fp) return file_fail(err, errn, path, "cannot open: %s", strerror(errno));
  unsigned char magic[2] = {0, 0};
  size_t m = fread(magic, 1, 2, fp);
  if (m == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
    fclose(fp);
    s->gz = gzopen(path, "rb");
    if (!s->gz) return file_fail(err, errn, path, "cannot open: %s", strerror(errno));
    gzbuffer(s->gz, 1u << 17);
    return 0;
  }
  rewind(fp);
  s->fp = fp;
  return 0;
}

static void stream_close(idx_stream *s) {
  if (s->fp) fclose(s->fp);
  if (s->gz) gzclose(s->gz);
  s->fp = NULL, s->gz = NULL;
}

static const char *idx_type_name(int code) {
  switch (code) {
  case 0x08: return "unsigned byte";
  case 0x09: return "signed byte";
  case 0x0B: return "int16";
  case 0x0C: return "int32";
  case 0x0D: return "float32";
  case 0x0E: return "float64";
  default: return NULL;
  }
}

/* "9000 images of 28x28" or "9000 labels", from the header's dimensions. */
static void idx_describe(char *buf, size_t n, int rank, const uint32_t *dim) {
  if (rank == 3)
    snprintf(buf, n, "%lu images of %lux%lu", (unsigned long)dim[0], (unsigned long)dim[1],
             (unsigned long)dim[2]);
  else
    snprintf(buf, n, "%lu labels", (unsigned long)dim[0]);
}

int idx_read(const char *path, idx_array *out, char *err, size_t errn) {
  memset(out, 0, sizeof *out);
  idx_stream s;
  if (stream_open(&s, path, err, errn)) return 1;
  const char *where = s.gz ? "the decompressed stream" : "the file";
  int rc = 1;
  uint8_t *data = NULL, *scratch = NULL;

  unsigned char head[16];
  int64_t got = stream_read(&s, head, 4, err, errn);
  if (got < 0) goto done;
  if (got < 4) {
    file_fail(err, errn, path, "%s ends inside the IDX header (%lld bytes)", where,
            (long long)got);
    goto done;
  }
  uint32_t magic = (uint32_t)head[0] << 24 | (uint32_t)head[1] << 16 |
                   (uint32_t)head[2] << 8 | head[3];
  int type = head[2], rank = head[3];
  if (head[0] != 0 || head[1] != 0 || !idx_type_name(type)) {
    file_fail(err, errn, path,
            "not an IDX file (magic 0x%08lx; images are 0x00000803, labels 0x00000801)",
            (unsigned long)magic);
    goto done;
  }
  if (type != 0x08) {
    file_fail(err, errn, path,
            "IDX type code 0x%02X (%s) is not supported: only unsigned bytes (0x08)", type,
            idx_type_name(type));
    goto done;
  }
  if (rank != 1 && rank != 3) {
    file_fail(err, errn, path,
            "IDX rank %d (magic 0x%08lx) is not supported: images are 0x00000803, labels "
            "0x00000801",
            rank, (unsigned long)magic);
    goto done;
  }
  got = stream_read(&s, head + 4, 4 * (size_t)rank, err, errn);
  if (got < 0) goto done;
  if (got < 4 * rank) {
    file_fail(err, errn, path, "%s ends inside the IDX header (%lld bytes)", where,
            (long long)(4 + got));
    goto done;
  }
  uint32_t dim[3];
  for (int d = 0; d < rank; d++) {
    const unsigned char *p = head + 4 + 4 * d;
    dim[d] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
  }
  char what[96];
  idx_describe(what, sizeof what, rank, dim);

  uint64_t bytes = 1;
  bool overflow = false;
  for (int d = 0; d < rank; d++) {
    if (dim[d] == 0) {
      file_fail(err, errn, path, "header says %s: a dimension is zero", what);
      goto done;
    }
    if (bytes > UINT64_MAX / dim[d]) overflow = true;
    bytes *= dim[d];
  }
  if (overflow) {
    file_fail(err, errn, path, "header says %s: the byte count overflows 64 bits", what);
    goto done;
  }
  if (bytes > (uint64_t)IDX_MAX_BYTES) {
    file_fail(err, errn, path, "header says %s (%llu bytes), more than the 2 GiB limit", what,
            (unsigned long long)bytes);
    goto done;
  }

  /* The buffer grows as data arrives (1 MiB, doubling up to the header's size), so a
   * header that claims 2 GiB over a short file costs no more than the file. */
  size_t cap = bytes < (1u << 20) ? (size_t)bytes : (1u << 20);
  got = 0;
  for (;;) {
    uint8_t *grown = realloc(data, cap);
    if (!grown) {
      file_fail(err, errn, path, "out of memory for %zu bytes", cap);
      goto done;
    }
    data = grown;
    int64_t r = stream_read(&s, data + got, cap - (size_t)got, err, errn);
    if (r < 0) goto done;
    got += r;
    if ((size_t)got < cap || cap == bytes) break;
    cap = cap > bytes / 2 ? (size_t)bytes : 2 * cap;
  }
  /* Read on to the end: trailing bytes are an error, and a gzip stream's CRC and length
   * are only checked at its end. Counting stops at the global limit. */
  uint64_t extra = 0;
  if ((uint64_t)got == bytes) {
    enum { SCRATCH = 1 << 16 };
    scratch = malloc(SCRATCH);
    if (!scratch) {
      file_fail(err, errn, path, "out of memory");
      goto done;
    }
    for (;;) {
      int64_t r = stream_read(&s, scratch, SCRATCH, err, errn);
      if (r < 0) goto done;
      extra += (uint64_t)r;
      if (r < SCRATCH || bytes + extra > (uint64_t)IDX_MAX_BYTES) break;
    }
  }
  if ((uint64_t)got != bytes || extra) {
    if (bytes + extra > (uint64_t)IDX_MAX_BYTES)
      file_fail(err, errn, path,
              "header says %s (%llu bytes) but %s has more than 2 GiB after the header",
              what, (unsigned long long)bytes, where);
    else
      file_fail(err, errn, path, "header says %s (%llu bytes) but %s has %llu after the header",
              what, (unsigned long long)bytes, where,
              (unsigned long long)((uint64_t)got + extra));
    goto done;
  }

  out->rank = rank;
  for (int d = 0; d < rank; d++) out->dim[d] = dim[d];
  out->data = data;
  out->numel = (int64_t)bytes;
  data = NULL;
  rc = 0;
done:
  free(scratch);
  free(data);
  stream_close(&s);
  return rc;
}

void idx_free(idx_array *a) {
  free(a->data);
  memset(a, 0, sizeof *a);
}

/* ---- conversion into the model's layout ------------------------------------------- */

/* Writes "[a,b,c]" for the n dims (the runtime's own: ir/'s shape_str takes an ir_shape, and
 * the runtime ships in every model without ir/). */
static void dims_str(char *buf, size_t bufn, const int64_t *dim, int n) {
  size_t k = 0;
  buf[0] = '\0';
  for (int d = 0; d < n && k < bufn; d++) {
    int w = snprintf(buf + k, bufn - k, "%s%lld", d ? "," : "[", (long long)dim[d]);
    if (w < 0) return;
    k += (size_t)w;
  }
  if (k < bufn) snprintf(buf + k, bufn - k, "]");
}

static int check_want(const char *path, const dataset_shape *want, char *err, size_t errn) {
  if (want->rank != 1 && want->rank != 3)
    return file_fail(err, errn, path, "the model's input has rank %d; expected [C,H,W] or [D]",
                   want->rank);
  for (int d = 0; d < want->rank; d++)
    if (want->dim[d] < 1 || want->dim[d] > INT32_MAX)
      return file_fail(err, errn, path, "the model's input has dimension %lld",
                     (long long)want->dim[d]);
  if (want->pad < 0 || want->pad > INT32_MAX / 4)
    return file_fail(err, errn, path, "the model's input has pad %lld", (long long)want->pad);
  if (!isfinite(want->lo) || !isfinite(want->hi) || !(want->lo < want->hi))
    return file_fail(err, errn, path, "the model's input range [%g, %g] is not an interval",
                   (double)want->lo, (double)want->hi);
  return 0;
}

/* Takes n source images of c x h x w, given as bytes (u8, mapped from [0,255]) or
 * floats (f32, already checked to lie in [0,1]). The padded image [c, h+2p, w+2p] must
 * equal the model's [C,H,W], or hold as many values as its flat [D]. Bytes are kept as
 * they are (*u8 is taken, left NULL) and converted a sample at a time by
 * dataset_sample: MNIST's 60000 images are 47 MB of bytes, 188 MB of floats (246 MB
 * padded to 32x32). Floats are converted and padded once into ds->images. */
static int convert_images(dataset *ds, const char *path, int64_t n, int64_t c, int64_t h,
                          int64_t w, uint8_t **u8, const float *f32,
                          const dataset_shape *want, char *err, size_t errn) {
  int64_t p = want->pad;
  int64_t src[3] = {c, h, w}, padded[3] = {c, h + 2 * p, w + 2 * p};
  int64_t numel = padded[0] * padded[1] * padded[2]; /* each factor < 2^32: no overflow */
  bool fits = want->rank == 3 ? want->dim[0] == padded[0] && want->dim[1] == padded[1] &&
                                    want->dim[2] == padded[2]
                              : want->dim[0] == numel;
  if (!fits) {
    char a[64], b[64], m[64], desc[200];
    dims_str(a, sizeof a, src, 3);
    dims_str(b, sizeof b, padded, 3);
    dims_str(m, sizeof m, want->dim, want->rank);
    if (p && want->rank == 1)
      snprintf(desc, sizeof desc, "%s (%s with pad %lld, %lld values)", a, b, (long long)p,
               (long long)numel);
    else if (p)
      snprintf(desc, sizeof desc, "%s (%s with pad %lld)", a, b, (long long)p);
    else if (want->rank == 1)
      snprintf(desc, sizeof desc, "%s (%lld values)", a, (long long)numel);
    else
      snprintf(desc, sizeof desc, "%s", a);
    return file_fail(err, errn, path,
                   "images are %s, the model's input is %s; declare pad or a matching shape",
                   desc, m);
  }
  if ((uint64_t)n > (uint64_t)(SIZE_MAX / sizeof(float)) / (uint64_t)numel)
    return file_fail(err, errn, path, "%lld images of %lld values do not fit in memory",
                   (long long)n, (long long)numel);
  /* v in [0,1] becomes lo*(1-v) + hi*v, in double: 0 gives lo and 1 gives hi exactly. */
  double lo = want->lo, hi = want->hi;
  for (int q = 0; q < 256; q++) ds->table[q] = (float)((lo * (255 - q) + hi * q) / 255.0);
  ds->pad_value = want->lo;
  ds->pad = p;
  ds->n = n;
  ds->sample = numel;
  ds->channels = c, ds->rows = h, ds->cols = w;
  if (u8) {
    ds->pixels = *u8;
    *u8 = NULL;
    return 0;
  }
  size_t total = (size_t)n * (size_t)numel;
  float *img = malloc(total * sizeof(float));
  if (!img)
    return file_fail(err, errn, path, "out of memory for %zu bytes", total * sizeof(float));
  int64_t H = h + 2 * p, W = w + 2 * p;
  float *o = img;
  for (int64_t i = 0; i < n; i++) {
    for (int64_t ch = 0; ch < c; ch++) {
      int64_t plane = ((i * c) + ch) * h * w;
      for (int64_t y = 0; y < H; y++) {
        int64_t sy = y - p;
        for (int64_t x = 0; x < W; x++) {
          int64_t sx = x - p;
          if (sy < 0 || sy >= h || sx < 0 || sx >= w) {
            *o++ = ds->pad_value;
          } else {
            double v = f32[plane + sy * w + sx];
            *o++ = (float)(lo * (1.0 - v) + hi * v);
          }
        }
      }
    }
  }
  ds->images = img;
  return 0;
}

void dataset_sample(const dataset *ds, int64_t i, float *out) {
  if (ds->images) {
    memcpy(out, ds->images + i * ds->sample, (size_t)ds->sample * sizeof(float));
    return;
  }
  int64_t c = ds->channels, h = ds->rows, w = ds->cols, p = ds->pad;
  int64_t H = h + 2 * p, W = w + 2 * p;
  const uint8_t *img = ds->pixels + i * c * h * w;
  for (int64_t ch = 0; ch < c; ch++) {
    for (int64_t y = 0; y < H; y++) {
      int64_t sy = y - p;
      if (sy < 0 || sy >= h) {
        for (int64_t x = 0; x < W; x++) *out++ = ds->pad_value;
        continue;
      }
      const uint8_t *row = img + (ch * h + sy) * w;
      for (int64_t x = 0; x < p; x++) *out++ = ds->pad_value;
      for (int64_t x = 0; x < w; x++) *out++ = ds->table[row[x]];
      for (int64_t x = 0; x < p; x++) *out++ = ds->pad_value;
    }
  }
}

/* ---- sources: IDX and .npy -------------------------------------------------------- */

/* Sets ds->labels from count labels, given as bytes (u8) or int32 (i32): the count must
 * be ds->n and no label may be negative. */
static int take_labels(dataset *ds, const char *path, int64_t count, const uint8_t *u8,
                       const int32_t *i32, char *err, size_t errn) {
  if (count != ds->n)
    return file_fail(err, errn, path, "%lld labels but %s has %lld images", (long long)count,
                   ds->images_path, (long long)ds->n);
  for (int64_t i = 0; i32 && i < count; i++)
    if (i32[i] < 0)
      return file_fail(err, errn, path, "label %lld is %ld; labels must not be negative",
                     (long long)i, (long)i32[i]);
  ds->labels = malloc((size_t)count * sizeof(int32_t));
  if (!ds->labels) return file_fail(err, errn, path, "out of memory");
  for (int64_t i = 0; i < count; i++) ds->labels[i] = u8 ? u8[i] : i32[i];
  return 0;
}

/* Reads an IDX labels file into ds->labels. */
static int load_idx_labels(dataset *ds, const char *path, char *err, size_t errn) {
  idx_array a;
  if (idx_read(path, &a, err, errn)) return 1;
  int rc = a.rank != 1 ? file_fail(err, errn, path, "is an images file (magic 0x00000803), "
                                                  "expected labels (0x00000801)")
                       : take_labels(ds, path, a.dim[0], a.data, NULL, err, errn);
  idx_free(&a);
  return rc;
}

static int load_idx(dataset *ds, const char *path, const dataset_shape *want, char *err,
                    size_t errn) {
  idx_array a;
  if (idx_read(path, &a, err, errn)) return 1;
  int rc = a.rank != 3 ? file_fail(err, errn, path, "is a labels file (magic 0x00000801), "
                                                  "expected images (0x00000803)")
                       : convert_images(ds, path, a.dim[0], 1, a.dim[1], a.dim[2], &a.data,
                                        NULL, want, err, errn);
  idx_free(&a);
  return rc;
}

/* Reads a .npy labels file (uint8 or int32 [n]) into ds->labels. */
static int load_npy_labels(dataset *ds, const char *path, char *err, size_t errn) {
  npy_array a;
  if (npy_read(path, &a, err, errn)) return 1;
  int rc;
  if ((a.dtype != NPY_U8 && a.dtype != NPY_I32) || a.rank != 1) {
    char s[128];
    dims_str(s, sizeof s, a.dim, a.rank);
    rc = file_fail(err, errn, path, "labels must be uint8 or int32 [n], got %s %s",
                 a.dtype == NPY_F32 ? "float32" : a.dtype == NPY_U8 ? "uint8" : "int32", s);
  } else {
    rc = take_labels(ds, path, a.dim[0], a.dtype == NPY_U8 ? a.data : NULL,
                     a.dtype == NPY_I32 ? a.data : NULL, err, errn);
  }
  npy_free(&a);
  return rc;
}

static int load_npy(dataset *ds, const char *path, const dataset_shape *want, char *err,
                    size_t errn) {
  npy_array a;
  if (npy_read(path, &a, err, errn)) return 1;
  int rc = 1;
  char s[128];
  dims_str(s, sizeof s, a.dim, a.rank);
  if (a.dtype != NPY_U8 && a.dtype != NPY_F32) {
    file_fail(err, errn, path, "images must be uint8 or float32, got int32 %s", s);
    goto done;
  }
  if (a.rank != 3 && a.rank != 4) {
    file_fail(err, errn, path, "images must be [n,H,W] or [n,C,H,W], got %s", s);
    goto done;
  }
  for (int d = 0; d < a.rank; d++)
    if (a.dim[d] == 0 || a.dim[d] > UINT32_MAX) {
      file_fail(err, errn, path, "images are %s: %s", s,
              a.dim[d] ? "a dimension is too large" : "a dimension is zero");
      goto done;
    }
  int64_t n = a.dim[0], c = a.rank == 4 ? a.dim[1] : 1;
  int64_t h = a.dim[a.rank - 2], w = a.dim[a.rank - 1];
  if (a.dtype == NPY_F32) {
    const float *f = a.data;
    for (int64_t i = 0; i < a.numel; i++)
      if (!(f[i] >= 0.0f && f[i] <= 1.0f)) {
        file_fail(err, errn, path, "value %g (image %lld) is outside [0,1]; float32 images "
                                 "must be scaled to [0,1]",
                (double)f[i], (long long)(i / (a.numel / n)));
        goto done;
      }
  }
  uint8_t *bytes = a.dtype == NPY_U8 ? a.data : NULL;
  rc = convert_images(ds, path, n, c, h, w, bytes ? &bytes : NULL,
                      a.dtype == NPY_F32 ? a.data : NULL, want, err, errn);
  if (a.dtype == NPY_U8 && !bytes) a.data = NULL; /* ds has them now */
done:
  npy_free(&a);
  return rc;
}

/* ---- naming ----------------------------------------------------------------------- */

static const struct {
  const char *name, *dir, *prefix;
} known_sets[] = {
    {"mnist", "mnist", "train"},
    {"mnist-test", "mnist", "t10k"},
    {"fashion", "fashion-mnist", "train"},
    {"fashion-test", "fashion-mnist", "t10k"},
};
#define KNOWN_NAMES "mnist, mnist-test, fashion, fashion-test"

/* The file that exists of base and base.gz (plain first); base itself when neither does,
 * so that the error names the standard file. NULL when out of memory. */
static char *plain_or_gz(const char *base) {
  char *gz = str_cat(base, ".gz");
  if (gz && !file_exists(base) && file_exists(gz)) return gz;
  free(gz);
  return strdup(base);
}

/* The labels file beside an images file, by replacing the last `from` in its base name
 * with `to` (of the same length); NULL when the name has no `from` or out of memory. */
static char *sibling(const char *images, const char *from, const char *to) {
  const char *base = strrchr(images, '/');
  base = base ? base + 1 : images;
  const char *at = NULL;
  for (const char *q = strstr(base, from); q; q = strstr(q + 1, from)) at = q;
  if (!at) return NULL;
  char *s = strdup(images);
  if (s) memcpy(s + (at - images), to, strlen(to));
  return s;
}

/* The labels of an IDX images file, if present: *-images-idx3-ubyte[.gz] pairs with
 * *-labels-idx1-ubyte[.gz], with the same suffix tried first. NULL when absent. */
static char *idx_labels_path(const char *images) {
  char *same = sibling(images, "images-idx3-ubyte", "labels-idx1-ubyte");
  if (!same || file_exists(same)) return same;
  size_t n = strlen(same);
  char *other = n > 3 && strcmp(same + n - 3, ".gz") == 0 ? strndup(same, n - 3)
                                                           : str_cat(same, ".gz");
  free(same);
  if (other && file_exists(other)) return other;
  free(other);
  return NULL;
}

/* The labels of a .npy images file, if present: "images" in the base name replaced by
 * "labels" (train-images.npy -> train-labels.npy), else X.npy -> X-labels.npy. */
static char *npy_labels_path(const char *images) {
  char *s = sibling(images, "images", "labels");
  if (!s) {
    size_t n = strlen(images);
    char *stem = n > 4 && strcmp(images + n - 4, ".npy") == 0 ? strndup(images, n - 4)
                                                              : strdup(images);
    s = stem ? str_cat(stem, "-labels.npy") : NULL;
    free(stem);
  }
  if (s && file_exists(s)) return s;
  free(s);
  return NULL;
}

static bool is_npy(const char *path) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return false;
  char m[6];
  bool yes = fread(m, 1, 6, fp) == 6 && memcmp(m, "\x93NUMPY", 6) == 0;
  fclose(fp);
  return yes;
}

/* ---- the data set ----------------------------------------------------------------- */

int dataset_open(dataset *ds, const char *spec, const char *data_dir,
                 const dataset_shape *want, char *err, size_t errn) {
  memset(ds, 0, sizeof *ds);
  ds->perm_epoch[0] = ds->perm_epoch[1] = -1;
  if (!data_dir || !*data_dir) data_dir = "data";
  if (check_want(spec, want, err, errn)) return 1;

  int known = -1;
  for (size_t k = 0; k < sizeof known_sets / sizeof known_sets[0]; k++)
    if (strcmp(spec, known_sets[k].name) == 0) known = (int)k;

  int rc = 1;
  if (known >= 0) {
    /* DIR/SET/PREFIX-images-idx3-ubyte[.gz] and its labels, both required */
    size_t n = strlen(data_dir) + strlen(known_sets[known].dir) + 64;
    char *base = malloc(n);
    if (!base) return file_fail(err, errn, spec, "out of memory");
    snprintf(base, n, "%s/%s/%s-images-idx3-ubyte", data_dir, known_sets[known].dir,
             known_sets[known].prefix);
    ds->images_path = plain_or_gz(base);
    snprintf(base, n, "%s/%s/%s-labels-idx1-ubyte", data_dir, known_sets[known].dir,
             known_sets[known].prefix);
    ds->labels_path = plain_or_gz(base);
    free(base);
    if (!ds->images_path || !ds->labels_path) {
      file_fail(err, errn, spec, "out of memory");
      goto done;
    }
    if (!file_exists(ds->images_path)) {
      /* say where to put it: fetch-data.sh writes to data/ unless MIGC_DATA_DIR says
       * otherwise, and a data dir given by hand is usually a misspelt or moved one */
      if (strcmp(data_dir, "data") == 0)
        file_fail(err, errn, ds->images_path,
                  "not found (nor with .gz): the '%s' data set; scripts/fetch-data.sh "
                  "fetches it into data/", spec);
      else
        file_fail(err, errn, ds->images_path,
                  "not found (nor with .gz): the '%s' data set is not under %s/; "
                  "MIGC_DATA_DIR=%s scripts/fetch-data.sh fetches it there", spec, data_dir,
                  data_dir);
      goto done;
    }
    if (load_idx(ds, ds->images_path, want, err, errn) ||
        load_idx_labels(ds, ds->labels_path, err, errn))
      goto done;
  } else {
    ds->images_path = strdup(spec);
    if (!ds->images_path) return file_fail(err, errn, spec, "out of memory");
    FILE *fp = fopen(spec, "rb");
    if (!fp) {
      if (errno == ENOENT && !strchr(spec, '/'))
        file_fail(err, errn, spec, "no such file, nor a known data set (" KNOWN_NAMES ")");
      else
        file_fail(err, errn, spec, "cannot open: %s", strerror(errno));
      goto done;
    }
    fclose(fp);
    bool npy = is_npy(spec);
    if (npy ? load_npy(ds, spec, want, err, errn) : load_idx(ds, spec, want, err, errn))
      goto done;
    ds->labels_path = npy ? npy_labels_path(spec) : idx_labels_path(spec);
    if (ds->labels_path && (npy ? load_npy_labels(ds, ds->labels_path, err, errn)
                                : load_idx_labels(ds, ds->labels_path, err, errn)))
      goto done;
  }

  for (int s = 0; s < 2; s++) {
    ds->perm[s] = malloc((size_t)ds->n * sizeof(int64_t));
    if (!ds->perm[s]) {
      file_fail(err, errn, ds->images_path, "out of memory");
      goto done;
    }
  }
  rc = 0;
done:
  if (rc) dataset_close(ds);
  return rc;
}

void dataset_close(dataset *ds) {
  free(ds->images);
  free(ds->pixels);
  free(ds->labels);
  free(ds->images_path);
  free(ds->labels_path);
  free(ds->perm[0]);
  free(ds->perm[1]);
  memset(ds, 0, sizeof *ds);
  ds->perm_epoch[0] = ds->perm_epoch[1] = -1;
}

/* Fisher-Yates: for i = n-1 down to 1, swap i with j = floor(u_i * (i+1)), where u_i =
 * rng_uniform(seed, RNG_STREAM_SHUFFLE, epoch, i) = k/2^24; j = (k*(i+1)) >> 24 exactly,
 * in integers, so 0 <= j <= i. (With 24-bit u the draw is uniform to within (i+1)/2^24.) */
void dataset_permutation(int64_t n, uint64_t seed, int64_t epoch, int64_t *perm) {
  for (int64_t i = 0; i < n; i++) perm[i] = i;
  for (int64_t i = n - 1; i > 0; i--) {
    float u = rng_uniform(seed, RNG_STREAM_SHUFFLE, (uint64_t)epoch, (uint64_t)i);
    uint64_t k = (uint64_t)(u * 16777216.0f);
    int64_t j = (int64_t)((k * (uint64_t)(i + 1)) >> 24);
    int64_t t = perm[i];
    perm[i] = perm[j], perm[j] = t;
  }
}

/* The permutation of (seed, epoch), from the cache: epoch e lives in slot e%2, so a
 * batch that crosses from one epoch into the next finds both. */
static const int64_t *epoch_perm(dataset *ds, uint64_t seed, int64_t epoch) {
  int s = (int)(epoch & 1);
  if (ds->perm_epoch[s] != epoch || ds->perm_seed[s] != seed) {
    dataset_permutation(ds->n, seed, epoch, ds->perm[s]);
    ds->perm_epoch[s] = epoch;
    ds->perm_seed[s] = seed;
  }
  return ds->perm[s];
}

int dataset_batch(dataset *ds, uint64_t seed, int64_t step, int64_t batch,
                  float *images_out, int32_t *labels_out, char *err, size_t errn) {
  return dataset_batch_part(ds, seed, step, batch, 0, batch, images_out, labels_out, err, errn);
}

int dataset_batch_part(dataset *ds, uint64_t seed, int64_t step, int64_t batch, int64_t first_k,
                       int64_t count, float *images_out, int32_t *labels_out, char *err,
                       size_t errn) {
  const char *path = ds->images_path ? ds->images_path : "dataset";
  if (ds->n < 1 || (!ds->images && !ds->pixels))
    return file_fail(err, errn, path, "the data set is not open");
  if (batch < 1) return file_fail(err, errn, path, "batch size %lld", (long long)batch);
  if (step < 0) return file_fail(err, errn, path, "negative step %lld", (long long)step);
  if (step > (INT64_MAX - (batch - 1)) / batch)
    return file_fail(err, errn, path, "step %lld of batch %lld is past the last sample index",
                   (long long)step, (long long)batch);
  if (first_k < 0 || count < 0 || first_k > batch - count)
    return file_fail(err, errn, path, "samples [%lld, %lld) are not in a batch of %lld",
                     (long long)first_k, (long long)(first_k + count), (long long)batch);
  int64_t first = step * batch + first_k;
  for (int64_t k = 0; k < count; k++) {
    int64_t pos = first + k;
    const int64_t *perm = epoch_perm(ds, seed, pos / ds->n);
    int64_t i = perm[pos % ds->n];
    if (images_out) dataset_sample(ds, i, images_out + k * ds->sample);
    if (labels_out) labels_out[k] = ds->labels ? ds->labels[i] : -1;
  }
  return 0;
}
