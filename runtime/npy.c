/* npy.c: NumPy .npy files.
 *
 * Format (numpy/lib/format.py): the magic "\x93NUMPY", a version byte pair (1.0 or
 * 2.0), the header length (uint16 little-endian for 1.0, uint32 for 2.0), then an
 * ASCII Python dict literal such as
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (64, 1, 28, 28), }
 * padded with spaces and ending in '\n', then the raw C-order data.
 *
 * A reader trusts nothing in the header: every length is checked against the size of
 * the file before it is used, and the data must fill the rest of the file exactly.
 * Data is read and written little-endian as stored; migc runs on little-endian hosts. */
#include "runtime/runtime.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c assumes a little-endian host"
#endif

#define NPY_MAX_RANK 8

/* ---- header dict parsing ---------------------------------------------------------- */

/* A cursor over the header text h[0..n). */
typedef struct {
  const char *h;
  size_t n, pos;
} npy_cursor;

static void skip_space(npy_cursor *c) {
  while (c->pos < c->n && (c->h[c->pos] == ' ' || c->h[c->pos] == '\t')) c->pos++;
}

static bool accept(npy_cursor *c, char ch) {
  skip_space(c);
  if (c->pos < c->n && c->h[c->pos] == ch) {
    c->pos++;
    return true;
  }
  return false;
}

/* A Python string literal in single or double quotes, without escapes (none of the
 * keys or dtype strings numpy writes contain any). */
static bool parse_string(npy_cursor *c, char *buf, size_t bufn) {
  skip_space(c);
  if (c->pos >= c->n || (c->h[c->pos] != '\'' && c->h[c->pos] != '"')) return false;
  char q = c->h[c->pos++];
  size_t k = 0;
  while (c->pos < c->n && c->h[c->pos] != q) {
    if (c->h[c->pos] == '\\' || k + 1 >= bufn) return false;
    buf[k++] = c->h[c->pos++];
  }
  if (c->pos >= c->n) return false;
  c->pos++; /* closing quote */
  buf[k] = '\0';
  return true;
}

static bool parse_word(npy_cursor *c, const char *w) {
  skip_space(c);
  size_t len = strlen(w);
  if (c->n - c->pos >= len && memcmp(c->h + c->pos, w, len) == 0) {
    c->pos += len;
    return true;
  }
  return false;
}

/* A shape tuple: "()", "(5,)", "(2, 3)", "(2, 3,)". Returns false with a reason. */
static bool parse_shape(npy_cursor *c, int *rank, int64_t *dim, const char **why) {
  *rank = 0;
  if (!accept(c, '(')) {
    *why = "shape is not a tuple";
    return false;
  }
  if (accept(c, ')')) return true;
  for (;;) {
    skip_space(c);
    if (c->pos >= c->n || c->h[c->pos] < '0' || c->h[c->pos] > '9') {
      *why = "shape has a dimension that is not a non-negative integer";
      return false;
    }
    int64_t v = 0;
    while (c->pos < c->n && c->h[c->pos] >= '0' && c->h[c->pos] <= '9') {
      int d = c->h[c->pos++] - '0';
      if (v > (INT64_MAX - d) / 10) {
        *why = "shape has a dimension too large";
        return false;
      }
      v = v * 10 + d;
    }
    /* numpy may write 3L in old Python 2 files */
    if (c->pos < c->n && c->h[c->pos] == 'L') c->pos++;
    if (*rank >= NPY_MAX_RANK) {
      *why = "shape has more than 8 dimensions";
      return false;
    }
    dim[(*rank)++] = v;
    bool comma = accept(c, ',');
    if (accept(c, ')')) {
      /* a one-element tuple must be written (5,); "(5)" is just the integer 5 */
      if (*rank == 1 && !comma) {
        *why = "shape is not a tuple";
        return false;
      }
      return true;
    }
    if (!comma) {
      *why = "shape tuple is malformed";
      return false;
    }
  }
}

/* ---- reading ---------------------------------------------------------------------- */

static int read_file(const char *path, unsigned char **buf, size_t *len, char *err,
                     size_t errn) {
  *buf = NULL;
  *len = 0;
  FILE *fp = fopen(path, "rb");
  if (!fp) return file_fail(err, errn, path, "cannot open: %s", strerror(errno));
  size_t cap = 1 << 16, n = 0;
  unsigned char *b = malloc(cap);
  if (!b) {
    fclose(fp);
    return file_fail(err, errn, path, "out of memory");
  }
  for (;;) {
    if (n == cap) {
      unsigned char *nb = realloc(b, cap * 2);
      if (!nb) {
        free(b);
        fclose(fp);
        return file_fail(err, errn, path, "out of memory");
      }
      b = nb;
      cap *= 2;
    }
    size_t got = fread(b + n, 1, cap - n, fp);
    n += got;
    if (got == 0) break;
  }
  int bad = ferror(fp);
  fclose(fp);
  if (bad) {
    free(b);
    return file_fail(err, errn, path, "read error");
  }
  *buf = b;
  *len = n;
  return 0;
}

int npy_read(const char *path, npy_array *out, char *err, size_t errn) {
  memset(out, 0, sizeof *out);
  unsigned char *buf;
  size_t len;
  if (read_file(path, &buf, &len, err, errn)) return 1;
  int rc = 1;

  /* preamble: magic (6), version (2), header length (2 or 4) */
  if (len < 8 || memcmp(buf, "\x93NUMPY", 6) != 0) {
    file_fail(err, errn, path, "not a .npy file (bad magic)");
    goto done;
  }
  int major = buf[6], minor = buf[7];
  if ((major != 1 && major != 2) || minor != 0) {
    file_fail(err, errn, path, "unsupported .npy version %d.%d", major, minor);
    goto done;
  }
  size_t pre = major == 1 ? 10 : 12;
  if (len < pre) {
    file_fail(err, errn, path, "file ends inside the preamble");
    goto done;
  }
  uint64_t hlen = major == 1 ? (uint64_t)buf[8] | (uint64_t)buf[9] << 8
                             : (uint64_t)buf[8] | (uint64_t)buf[9] << 8 |
                                   (uint64_t)buf[10] << 16 | (uint64_t)buf[11] << 24;
  if (hlen > len - pre) {
    file_fail(err, errn, path, "header is %llu bytes but only %llu follow the preamble",
             (unsigned long long)hlen, (unsigned long long)(len - pre));
    goto done;
  }
  const char *h = (const char *)buf + pre;
  for (size_t j = 0; j < hlen; j++) {
    unsigned char ch = (unsigned char)h[j];
    if ((ch < 0x20 && ch != '\n' && ch != '\t' && ch != '\r') || ch > 126) {
      file_fail(err, errn, path, "header is not ASCII text");
      goto done;
    }
  }
  /* the dict ends at the header's last '\n'; what follows it up to hlen is not allowed */
  if (hlen == 0 || h[hlen - 1] != '\n') {
    file_fail(err, errn, path, "header does not end with a newline");
    goto done;
  }

  npy_cursor c = {h, hlen - 1, 0};
  char descr[16] = "";
  bool have_descr = false, have_fortran = false, have_shape = false, fortran = false;
  int rank = 0;
  int64_t dim[NPY_MAX_RANK] = {0};
  if (!accept(&c, '{')) {
    file_fail(err, errn, path, "header is not a dict");
    goto done;
  }
  while (!accept(&c, '}')) {
    char key[32];
    if (!parse_string(&c, key, sizeof key) || !accept(&c, ':')) {
      file_fail(err, errn, path, "header dict is malformed");
      goto done;
    }
    if (strcmp(key, "descr") == 0) {
      if (!parse_string(&c, descr, sizeof descr)) {
        file_fail(err, errn, path, "descr is not a simple dtype string");
        goto done;
      }
      have_descr = true;
    } else if (strcmp(key, "fortran_order") == 0) {
      if (parse_word(&c, "False")) {
        fortran = false;
      } else if (parse_word(&c, "True")) {
        fortran = true;
      } else {
        file_fail(err, errn, path, "fortran_order is neither True nor False");
        goto done;
      }
      have_fortran = true;
    } else if (strcmp(key, "shape") == 0) {
      const char *why = NULL;
      if (!parse_shape(&c, &rank, dim, &why)) {
        file_fail(err, errn, path, "%s", why);
        goto done;
      }
      have_shape = true;
    } else {
      file_fail(err, errn, path, "unknown header key '%s'", key);
      goto done;
    }
    if (!accept(&c, ',')) {
      if (!accept(&c, '}')) {
        file_fail(err, errn, path, "header dict is malformed");
        goto done;
      }
      break;
    }
  }
  skip_space(&c);
  if (c.pos != c.n) {
    file_fail(err, errn, path, "unexpected text after the header dict");
    goto done;
  }
  if (!have_descr || !have_fortran || !have_shape) {
    file_fail(err, errn, path, "header lacks '%s'",
             !have_descr ? "descr" : !have_fortran ? "fortran_order" : "shape");
    goto done;
  }
  if (fortran) {
    file_fail(err, errn, path, "fortran_order True is not supported (save C-order arrays)");
    goto done;
  }

  /* dtype: what is stored (itemsize) and what we hand back */
  npy_dtype dt;
  size_t itemsize;
  bool from_f64 = false;
  if (strcmp(descr, "<f4") == 0) {
    dt = NPY_F32, itemsize = 4;
  } else if (strcmp(descr, "<f8") == 0) {
    dt = NPY_F32, itemsize = 8, from_f64 = true;
  } else if (strcmp(descr, "|u1") == 0 || strcmp(descr, "<u1") == 0) {
    dt = NPY_U8, itemsize = 1;
  } else if (strcmp(descr, "<i4") == 0) {
    dt = NPY_I32, itemsize = 4;
  } else {
    file_fail(err, errn, path, "unsupported dtype '%s' (expected <f4, <f8, |u1 or <i4)",
             descr);
    goto done;
  }

  /* element count and byte count, refusing anything that overflows */
  int64_t numel = 1;
  for (int d = 0; d < rank; d++) {
    if (dim[d] != 0 && numel > INT64_MAX / dim[d]) {
      file_fail(err, errn, path, "shape is too large");
      goto done;
    }
    numel *= dim[d];
  }
  if ((uint64_t)numel > (uint64_t)INT64_MAX / itemsize) {
    file_fail(err, errn, path, "shape is too large");
    goto done;
  }
  uint64_t want = (uint64_t)numel * itemsize;
  uint64_t have = (uint64_t)(len - pre - hlen);
  if (have != want) {
    file_fail(err, errn, path, "data is %llu bytes, header says %llu", (unsigned long long)have,
             (unsigned long long)want);
    goto done;
  }

  size_t outsize = (size_t)numel * (from_f64 ? 4 : itemsize);
  void *data = malloc(outsize ? outsize : 1);
  if (!data) {
    file_fail(err, errn, path, "out of memory for %llu bytes", (unsigned long long)outsize);
    goto done;
  }
  const unsigned char *src = buf + pre + hlen;
  if (from_f64) {
    float *f = data;
    for (int64_t j = 0; j < numel; j++) {
      double v;
      memcpy(&v, src + 8 * j, 8);
      f[j] = (float)v;
    }
  } else {
    memcpy(data, src, (size_t)want);
  }
  out->dtype = dt;
  out->rank = rank;
  for (int d = 0; d < rank; d++) out->dim[d] = dim[d];
  out->data = data;
  out->numel = numel;
  rc = 0;
done:
  free(buf);
  return rc;
}

/* ---- writing ---------------------------------------------------------------------- */

int npy_write(const char *path, const npy_array *a, char *err, size_t errn) {
  const char *descr;
  size_t itemsize;
  switch (a->dtype) {
  case NPY_F32: descr = "<f4", itemsize = 4; break;
  case NPY_U8: descr = "|u1", itemsize = 1; break;
  case NPY_I32: descr = "<i4", itemsize = 4; break;
  default: return file_fail(err, errn, path, "cannot write dtype %d", (int)a->dtype);
  }
  if (a->rank < 0 || a->rank > NPY_MAX_RANK)
    return file_fail(err, errn, path, "cannot write rank %d", a->rank);
  int64_t numel = 1;
  for (int d = 0; d < a->rank; d++) {
    if (a->dim[d] < 0) return file_fail(err, errn, path, "negative dimension");
    numel *= a->dim[d];
  }
  if (numel != a->numel)
    return file_fail(err, errn, path, "numel %lld does not match the shape (%lld)",
                    (long long)a->numel, (long long)numel);
  if (numel > 0 && !a->data) return file_fail(err, errn, path, "no data");

  /* header: the dict, padded with spaces so that the data starts 64-byte aligned */
  char dict[512];
  int k = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                   descr);
  for (int d = 0; d < a->rank; d++)
    k += snprintf(dict + k, sizeof dict - (size_t)k, "%s%lld", d ? ", " : "",
                  (long long)a->dim[d]);
  k += snprintf(dict + k, sizeof dict - (size_t)k, "%s), }", a->rank == 1 ? "," : "");
  size_t total = 10 + (size_t)k + 1; /* preamble, dict, '\n' */
  size_t padded = (total + 63) / 64 * 64;
  size_t hlen = padded - 10;
  char *hdr = malloc(padded);
  if (!hdr) return file_fail(err, errn, path, "out of memory");
  memcpy(hdr, "\x93NUMPY\x01\x00", 8);
  hdr[8] = (char)(hlen & 0xff);
  hdr[9] = (char)(hlen >> 8);
  memcpy(hdr + 10, dict, (size_t)k);
  memset(hdr + 10 + k, ' ', padded - 10 - (size_t)k - 1);
  hdr[padded - 1] = '\n';

  size_t bytes = (size_t)numel * itemsize;
  const void *parts[2] = {hdr, a->data};
  size_t lens[2] = {padded, bytes};
  int rc = file_write_atomic(path, parts, lens, 2, err, errn);
  free(hdr);
  return rc;
}

void npy_free(npy_array *a) {
  free(a->data);
  a->data = NULL;
  a->numel = 0;
  a->rank = 0;
}
