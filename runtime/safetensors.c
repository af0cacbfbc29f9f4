/* safetensors.c: checkpoints in the safetensors format.
 *
 * Format (huggingface/safetensors, docs "Format"): an unsigned 64-bit little-endian
 * header length N; N bytes of UTF-8 JSON, padded at the end with spaces,
 *   {"__metadata__": {"k": "v", ...},
 *    "NAME": {"dtype": "F32", "shape": [2, 3], "data_offsets": [BEGIN, END]}, ...}
 * then the data section: each tensor's raw little-endian bytes in C order at
 * [BEGIN, END) relative to the start of the section. The tensors tile the section
 * exactly: no overlaps, no gaps, nothing after the last one.
 *
 * The reader trusts nothing in the header: every length and offset is checked against
 * the size of the file before anything is allocated or read by it. Data is stored as
 * the host holds it; migc runs on little-endian hosts.
 *
 * The header is read and written with json.c, not cJSON: this file is linked into
 * every compiled model, which may need only libc, libm, zlib and OpenBLAS at run time, and
 * Debian has no static cJSON (see json.h). */
#include "runtime/runtime.h"

#include "runtime/json.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

#define ST_HEADER_MAX (100u << 20) /* the reference implementation's limit: 100 MiB */
#define ST_EXACT_MAX 9007199254740992.0 /* 2^53: JSON numbers above it are not exact */


/* ---- dtypes ----------------------------------------------------------------------- */

/* Every dtype the format defines, with its size in bits. Only F32 and I32 load; the
 * rest are recognised so that a valid file holding them is reported by dtype. */
static const struct {
  const char *name;
  int bits;
  int load; /* st_dtype + 1 when migc loads it, else 0 */
} st_dtypes[] = {
    {"F32", 32, ST_F32 + 1}, {"I32", 32, ST_I32 + 1}, {"BOOL", 8, 0},    {"U8", 8, 0},
    {"I8", 8, 0},            {"F8_E5M2", 8, 0},       {"F8_E4M3", 8, 0}, {"F8_E8M0", 8, 0},
    {"I16", 16, 0},          {"U16", 16, 0},          {"F16", 16, 0},    {"BF16", 16, 0},
    {"U32", 32, 0},          {"F64", 64, 0},          {"I64", 64, 0},    {"U64", 64, 0},
    {"C64", 64, 0},          {"F4", 4, 0},            {"F6_E2M3", 6, 0}, {"F6_E3M2", 6, 0},
};

static const char *st_dtype_name(st_dtype d) { return d == ST_F32 ? "F32" : "I32"; }

int64_t st_numel(const st_tensor *t) {
  int64_t n = 1;
  for (int d = 0; d < t->rank; d++) n *= t->shape[d];
  return n;
}

/* "[10, 20]" into buf. */
static const char *shape_text(const int64_t *shape, int rank, char *buf, size_t n) {
  size_t k = (size_t)snprintf(buf, n, "[");
  for (int d = 0; d < rank && k < n; d++)
    k += (size_t)snprintf(buf + k, n - k, "%s%" PRId64, d ? ", " : "", shape[d]);
  if (k < n) snprintf(buf + k, n - k, "]");
  return buf;
}

/* ---- writing ---------------------------------------------------------------------- */

static int cmp_str_ptr(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The first name that occurs twice in names[0..n), or NULL. */
static const char *first_duplicate(const char **names, int n) {
  if (n < 2) return NULL;
  const char **s = malloc((size_t)n * sizeof *s);
  if (!s) return NULL; /* duplicates then go unreported here */
  memcpy(s, names, (size_t)n * sizeof *s);
  qsort(s, (size_t)n, sizeof *s, cmp_str_ptr);
  const char *dup = NULL;
  for (int j = 1; j < n && !dup; j++)
    if (strcmp(s[j - 1], s[j]) == 0) dup = s[j];
  free(s);
  return dup;
}

/* "[1,2,3]": integers as integers (never 1e+15). */
static bool put_int_array(char **b, size_t *l, size_t *cap, const int64_t *v, int n) {
  bool ok = json_put(b, l, cap, "[");
  for (int j = 0; ok && j < n; j++) {
    char num[24];
    snprintf(num, sizeof num, "%s%" PRId64, j ? "," : "", v[j]);
    ok = json_put(b, l, cap, num);
  }
  return ok && json_put(b, l, cap, "]");
}

int safetensors_write(const char *path, const st_tensor *tensors, int n, const st_meta *meta,
                      int nmeta, char *err, size_t errn) {
  if (n < 0 || nmeta < 0 || (n > 0 && !tensors) || (nmeta > 0 && !meta))
    return file_fail(err, errn, path, "bad arguments (%d tensors, %d metadata entries)", n,
                   nmeta);

  /* check every tensor and lay the data out in the order given */
  int64_t *begin = malloc(((size_t)n + 1) * sizeof *begin);
  const char **names = malloc(((size_t)n + (size_t)nmeta + 1) * sizeof *names);
  const void **parts = malloc(((size_t)n + 1) * sizeof *parts);
  size_t *lens = malloc(((size_t)n + 1) * sizeof *lens);
  char *json = NULL, *header = NULL;
  int rc = 1;
  if (!begin || !names || !parts || !lens) {
    file_fail(err, errn, path, "out of memory");
    goto done;
  }
  int64_t offset = 0;
  for (int j = 0; j < n; j++) {
    const st_tensor *t = &tensors[j];
    if (!t->name || !t->name[0] || strcmp(t->name, "__metadata__") == 0) {
      file_fail(err, errn, path, "tensor %d: name '%s' is not allowed", j,
              t->name ? t->name : "(null)");
      goto done;
    }
    if (t->dtype != ST_F32 && t->dtype != ST_I32) {
      file_fail(err, errn, path, "tensor '%s': cannot write dtype %d", t->name, (int)t->dtype);
      goto done;
    }
    if (t->rank < 0 || t->rank > ST_MAX_RANK) {
      file_fail(err, errn, path, "tensor '%s': rank %d is not in 0..%d", t->name, t->rank,
              ST_MAX_RANK);
      goto done;
    }
    /* bytes, refusing anything past 2^53 (where offsets stop being exact JSON numbers) */
    int64_t bytes = 4;
    for (int d = 0; d < t->rank; d++) {
      if (t->shape[d] < 0) {
        file_fail(err, errn, path, "tensor '%s': dimension %d is negative (%" PRId64 ")",
                t->name, d, t->shape[d]);
        goto done;
      }
      if (t->shape[d] > 0 && bytes > (int64_t)ST_EXACT_MAX / t->shape[d]) {
        file_fail(err, errn, path, "tensor '%s': shape is too large", t->name);
        goto done;
      }
      bytes *= t->shape[d];
    }
    if (bytes > 0 && !t->data) {
      file_fail(err, errn, path, "tensor '%s': no data", t->name);
      goto done;
    }
    if (offset > (int64_t)ST_EXACT_MAX - bytes) {
      file_fail(err, errn, path, "the tensors together are too large");
      goto done;
    }
    begin[j] = offset;
    offset += bytes;
    names[j] = t->name;
    parts[j + 1] = t->data;
    lens[j + 1] = (size_t)bytes;
  }
  begin[n] = offset;
  const char *dup = first_duplicate(names, n);
  if (dup) {
    file_fail(err, errn, path, "tensor name '%s' is given twice", dup);
    goto done;
  }
  for (int j = 0; j < nmeta; j++) {
    if (!meta[j].key || !meta[j].value) {
      file_fail(err, errn, path, "metadata entry %d has no key or no value", j);
      goto done;
    }
    names[j] = meta[j].key;
  }
  dup = first_duplicate(names, nmeta);
  if (dup) {
    file_fail(err, errn, path, "metadata key '%s' is given twice", dup);
    goto done;
  }

  /* the header: metadata first (only when there is some), then tensors in order */
  size_t jlen = 0, jcap = 0;
  bool ok = json_put(&json, &jlen, &jcap, "{");
  if (ok && nmeta > 0) {
    ok = json_put(&json, &jlen, &jcap, "\"__metadata__\":{");
    for (int j = 0; ok && j < nmeta; j++)
      ok = (!j || json_put(&json, &jlen, &jcap, ",")) &&
           json_put_string(&json, &jlen, &jcap, meta[j].key) &&
           json_put(&json, &jlen, &jcap, ":") &&
           json_put_string(&json, &jlen, &jcap, meta[j].value);
    ok = ok && json_put(&json, &jlen, &jcap, "}");
  }
  for (int j = 0; ok && j < n; j++) {
    const st_tensor *t = &tensors[j];
    int64_t off[2] = {begin[j], begin[j + 1]};
    ok = ((j == 0 && nmeta == 0) || json_put(&json, &jlen, &jcap, ",")) &&
         json_put_string(&json, &jlen, &jcap, t->name) &&
         json_put(&json, &jlen, &jcap, ":{\"dtype\":\"") &&
         json_put(&json, &jlen, &jcap, st_dtype_name(t->dtype)) &&
         json_put(&json, &jlen, &jcap, "\",\"shape\":") &&
         put_int_array(&json, &jlen, &jcap, t->shape, t->rank) &&
         json_put(&json, &jlen, &jcap, ",\"data_offsets\":") &&
         put_int_array(&json, &jlen, &jcap, off, 2) && json_put(&json, &jlen, &jcap, "}");
  }
  ok = ok && json_put(&json, &jlen, &jcap, "}");
  if (!ok) {
    file_fail(err, errn, path, "out of memory building the header");
    goto done;
  }

  /* 8-byte length, JSON padded with spaces so the data section starts 8-byte aligned */
  size_t hlen = (jlen + 7) / 8 * 8;
  header = malloc(8 + hlen);
  if (!header) {
    file_fail(err, errn, path, "out of memory");
    goto done;
  }
  for (int b = 0; b < 8; b++) header[b] = (char)((uint64_t)hlen >> (8 * b) & 0xff);
  memcpy(header + 8, json, jlen);
  memset(header + 8 + jlen, ' ', hlen - jlen);
  parts[0] = header;
  lens[0] = 8 + hlen;
  rc = file_write_atomic(path, parts, lens, n + 1, err, errn);
done:
  free(header);
  free(json);
  free(lens);
  free(parts);
  free(names);
  free(begin);
  return rc;
}

/* ---- reading ---------------------------------------------------------------------- */

/* Index of the first byte of s[0..n) that is not part of valid UTF-8, or n. */
static size_t utf8_valid_prefix(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned char c = s[i];
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      i++;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) {
      len = 2, cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3, cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4, cp = c & 0x07;
    } else {
      return i;
    }
    if (n - i < len) return i;
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xc0) != 0x80) return i;
      cp = cp << 6 | (s[i + k] & 0x3f);
    }
    /* overlong forms, surrogates, beyond U+10FFFF */
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return i;
    i += len;
  }
  return n;
}

/* A JSON number that is a whole number in [0, 2^53]. */
static bool json_count(const json_value *x, int64_t *v) {
  if (!x || x->type != JSON_NUMBER) return false;
  double d = x->num;
  if (!(d >= 0 && d <= ST_EXACT_MAX) || (double)(int64_t)d != d) return false;
  *v = (int64_t)d;
  return true;
}

/* One tensor entry while validating: where its bytes lie. */
typedef struct {
  int64_t begin, end;
  int index; /* into the st_file's tensors */
} st_span;

static int cmp_span(const void *a, const void *b) {
  const st_span *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return x->index - y->index;
}

/* Checks one tensor entry e named name and fills t (but not t->data) and span.
 * *unsupported gets the dtype's name when the entry is valid but migc cannot load it. */
static int parse_tensor(const char *path, const char *name, const json_value *e, int64_t data_len,
                        st_tensor *t, st_span *span, const char **unsupported, char *err,
                        size_t errn) {
  if (e->type != JSON_OBJECT)
    return file_fail(err, errn, path, "tensor '%s': entry is not a JSON object", name);
  const json_value *dtype = NULL, *shape = NULL, *offs = NULL;
  for (const json_value *f = e->child; f; f = f->next) {
    const json_value **slot = strcmp(f->key, "dtype") == 0          ? &dtype
                              : strcmp(f->key, "shape") == 0        ? &shape
                              : strcmp(f->key, "data_offsets") == 0 ? &offs
                                                                    : NULL;
    if (!slot) return file_fail(err, errn, path, "tensor '%s': unknown key '%s'", name, f->key);
    if (*slot)
      return file_fail(err, errn, path, "tensor '%s': key '%s' appears twice", name, f->key);
    *slot = f;
  }
  if (!dtype || !shape || !offs)
    return file_fail(err, errn, path, "tensor '%s': no '%s'", name,
                   !dtype ? "dtype" : !shape ? "shape" : "data_offsets");

  /* dtype */
  if (dtype->type != JSON_STRING)
    return file_fail(err, errn, path, "tensor '%s': dtype is not a string", name);
  int kind = -1;
  for (size_t j = 0; j < sizeof st_dtypes / sizeof st_dtypes[0]; j++)
    if (strcmp(dtype->str, st_dtypes[j].name) == 0) kind = (int)j;
  if (kind < 0)
    return file_fail(err, errn, path, "tensor '%s': unknown dtype '%s'", name,
                   dtype->str);
  int bits = st_dtypes[kind].bits;

  /* shape: non-negative whole numbers, at most 8 of them, product not overflowing */
  if (shape->type != JSON_ARRAY)
    return file_fail(err, errn, path, "tensor '%s': shape is not an array", name);
  int rank = shape->count;
  if (rank > ST_MAX_RANK)
    return file_fail(err, errn, path, "tensor '%s': shape has %d dimensions (at most %d)", name,
                   rank, ST_MAX_RANK);
  t->rank = rank;
  uint64_t numel = 1;
  int d = 0;
  for (const json_value *x = shape->child; x; x = x->next, d++) {
    if (!json_count(x, &t->shape[d]))
      return file_fail(err, errn, path,
                     "tensor '%s': shape dimension %d is not a non-negative integer", name, d);
    if (t->shape[d] > 0 && numel > (uint64_t)INT64_MAX / 8 / (uint64_t)t->shape[d])
      return file_fail(err, errn, path, "tensor '%s': shape is too large", name);
    numel *= (uint64_t)t->shape[d];
  }

  /* data_offsets: [begin, end] inside the data section, holding exactly the shape */
  int64_t b, en;
  if (offs->type != JSON_ARRAY || offs->count != 2 || !json_count(offs->child, &b) ||
      !json_count(offs->child->next, &en))
    return file_fail(err, errn, path,
                   "tensor '%s': data_offsets is not a pair of non-negative integers", name);
  if (b > en)
    return file_fail(err, errn, path, "tensor '%s': data_offsets [%" PRId64 ", %" PRId64
                   "] end before they begin", name, b, en);
  if (en > data_len)
    return file_fail(err, errn, path, "tensor '%s': data_offsets [%" PRId64 ", %" PRId64
                   "] run past the end of the data section (%" PRId64 " bytes)",
                   name, b, en, data_len);
  char sbuf[8 * 24 + 8];
  if ((numel * (uint64_t)bits) % 8 != 0)
    return file_fail(err, errn, path, "tensor '%s': shape %s of %s is not a whole number of bytes",
                   name, shape_text(t->shape, rank, sbuf, sizeof sbuf), dtype->str);
  uint64_t want = numel * (uint64_t)bits / 8, have = (uint64_t)(en - b);
  if (have != want) {
    if (have * 8 % (uint64_t)bits == 0)
      return file_fail(err, errn, path, "tensor '%s': data_offsets [%" PRId64 ", %" PRId64
                     "] hold %" PRIu64 " values but its shape %s needs %" PRIu64,
                     name, b, en, have * 8 / (uint64_t)bits,
                     shape_text(t->shape, rank, sbuf, sizeof sbuf), numel);
    return file_fail(err, errn, path, "tensor '%s': data_offsets [%" PRId64 ", %" PRId64
                   "] hold %" PRIu64 " bytes, not a whole number of %s values; its shape %s"
                   " needs %" PRIu64 " bytes",
                   name, b, en, have, dtype->str,
                   shape_text(t->shape, rank, sbuf, sizeof sbuf), want);
  }
  if (!st_dtypes[kind].load) {
    if (!*unsupported) *unsupported = st_dtypes[kind].name;
  } else {
    t->dtype = (st_dtype)(st_dtypes[kind].load - 1);
  }
  span->begin = b;
  span->end = en;
  return 0;
}

/* __metadata__: an object of strings (or null). */
static int parse_meta(const char *path, const json_value *m, st_file *out, char *err,
                      size_t errn) {
  if (m->type == JSON_NULL) return 0;
  if (m->type != JSON_OBJECT) return file_fail(err, errn, path, "__metadata__ is not a JSON object");
  int n = m->count;
  out->meta = calloc((size_t)n + 1, sizeof *out->meta);
  if (!out->meta) return file_fail(err, errn, path, "out of memory");
  for (const json_value *x = m->child; x; x = x->next) {
    if (x->type != JSON_STRING)
      return file_fail(err, errn, path, "metadata '%s' is not a string", x->key);
    st_meta *e = &out->meta[out->nmeta++];
    e->key = strdup(x->key);
    e->value = strdup(x->str);
    if (!e->key || !e->value) return file_fail(err, errn, path, "out of memory");
  }
  const char **keys = malloc(((size_t)n + 1) * sizeof *keys);
  if (!keys) return file_fail(err, errn, path, "out of memory");
  for (int j = 0; j < n; j++) keys[j] = out->meta[j].key;
  const char *dup = first_duplicate(keys, n);
  int rc = dup ? file_fail(err, errn, path, "metadata key '%s' appears twice", dup) : 0;
  free(keys);
  return rc;
}

/* Reads exactly n bytes at the current position; false on a short read. */
static bool read_exact(FILE *fp, void *buf, size_t n) {
  return n == 0 || fread(buf, 1, n, fp) == n;
}

int safetensors_read(const char *path, st_file *out, char *err, size_t errn) {
  memset(out, 0, sizeof *out);
  FILE *fp = fopen(path, "rb");
  if (!fp) return file_fail(err, errn, path, "cannot open: %s", strerror(errno));
  char *hdr = NULL;
  json_value *root = NULL;
  st_span *spans = NULL;
  const char **names = NULL;
  int rc = 1;

  struct stat sb;
  if (fstat(fileno(fp), &sb) != 0) {
    file_fail(err, errn, path, "cannot stat: %s", strerror(errno));
    goto done;
  }
  if (!S_ISREG(sb.st_mode)) {
    file_fail(err, errn, path, "not a regular file");
    goto done;
  }
  int64_t size = (int64_t)sb.st_size;
  unsigned char lenbuf[8];
  if (size < 8 || !read_exact(fp, lenbuf, 8)) {
    file_fail(err, errn, path, "file is %" PRId64 " bytes, too short for the 8-byte header length",
            size);
    goto done;
  }
  uint64_t hlen = 0;
  for (int b = 7; b >= 0; b--) hlen = hlen << 8 | lenbuf[b];
  if (hlen > (uint64_t)(size - 8)) {
    file_fail(err, errn, path, "header length %" PRIu64 " runs past the end of the file (%" PRId64
            " bytes follow it)", hlen, size - 8);
    goto done;
  }
  if (hlen > ST_HEADER_MAX) {
    file_fail(err, errn, path, "header length %" PRIu64 " is over the 100 MiB limit", hlen);
    goto done;
  }
  if (hlen < 2) {
    file_fail(err, errn, path, "header is %" PRIu64 " bytes, too short for a JSON object", hlen);
    goto done;
  }
  hdr = malloc(hlen + 1);
  if (!hdr) {
    file_fail(err, errn, path, "out of memory for a %" PRIu64 "-byte header", hlen);
    goto done;
  }
  if (!read_exact(fp, hdr, hlen)) {
    file_fail(err, errn, path, "file ends inside the header");
    goto done;
  }
  hdr[hlen] = '\0';
  size_t good = utf8_valid_prefix((const unsigned char *)hdr, hlen);
  if (good != hlen) {
    file_fail(err, errn, path, "header is not valid UTF-8 (at byte %zu)", good);
    goto done;
  }
  if (hdr[0] != '{') {
    file_fail(err, errn, path, "header does not start with '{'");
    goto done;
  }
  size_t bad_at = 0;
  bool trailing, deep;
  root = json_parse(hdr, hlen, &bad_at, &trailing, &deep);
  if (!root) {
    if (trailing)
      file_fail(err, errn, path, "header has text after the JSON object (at byte %zu)", bad_at);
    else if (deep)
      file_fail(err, errn, path, "header nests deeper than %d levels (at byte %zu)",
                JSON_MAX_DEPTH, bad_at);
    else
      file_fail(err, errn, path, "header is not valid JSON (near byte %zu)", bad_at);
    goto done;
  }
  if (root->type != JSON_OBJECT) {
    file_fail(err, errn, path, "header is not a JSON object");
    goto done;
  }

  /* entries: __metadata__ once at most, then tensors in header order */
  int64_t data_len = size - 8 - (int64_t)hlen;
  int count = root->count;
  out->tensors = calloc((size_t)count + 1, sizeof *out->tensors);
  spans = calloc((size_t)count + 1, sizeof *spans);
  names = calloc((size_t)count + 1, sizeof *names);
  if (!out->tensors || !spans || !names) {
    file_fail(err, errn, path, "out of memory");
    goto done;
  }
  const char *unsupported = NULL, *unsupported_name = NULL;
  bool seen_meta = false;
  for (const json_value *e = root->child; e; e = e->next) {
    if (strcmp(e->key, "__metadata__") == 0) {
      if (seen_meta) {
        file_fail(err, errn, path, "__metadata__ appears twice");
        goto done;
      }
      seen_meta = true;
      if (parse_meta(path, e, out, err, errn)) goto done;
      continue;
    }
    int j = out->n;
    st_tensor *t = &out->tensors[j];
    const char *before = unsupported;
    if (parse_tensor(path, e->key, e, data_len, t, &spans[j], &unsupported, err, errn))
      goto done;
    if (unsupported && !before) unsupported_name = e->key;
    spans[j].index = j;
    names[j] = e->key;
    out->n++;
  }
  const char *dup = first_duplicate(names, out->n);
  if (dup) {
    file_fail(err, errn, path, "tensor '%s' appears twice in the header", dup);
    goto done;
  }

  /* the tensors tile the data section: sorted by offset, each starts where the last ended */
  qsort(spans, (size_t)out->n, sizeof *spans, cmp_span);
  int64_t at = 0;
  const char *prev = NULL;
  int64_t prev_begin = 0;
  for (int j = 0; j < out->n; j++) {
    const st_span *s = &spans[j];
    const char *name = names[s->index];
    if (s->begin < at) {
      file_fail(err, errn, path, "tensors '%s' [%" PRId64 ", %" PRId64 "] and '%s' [%" PRId64
              ", %" PRId64 "] overlap", prev, prev_begin, at, name, s->begin, s->end);
      goto done;
    }
    if (s->begin > at) {
      file_fail(err, errn, path, "bytes [%" PRId64 ", %" PRId64 "] of the data section %s%s%s"
              "belong to no tensor", at, s->begin, prev ? "after tensor '" : "",
              prev ? prev : "", prev ? "' " : "");
      goto done;
    }
    prev = name;
    prev_begin = s->begin;
    at = s->end;
  }
  if (at != data_len) {
    file_fail(err, errn, path, "bytes [%" PRId64 ", %" PRId64 "] of the data section %s%s%s"
            "belong to no tensor", at, data_len, prev ? "after tensor '" : "",
            prev ? prev : "", prev ? "' " : "");
    goto done;
  }
  if (unsupported) {
    file_fail(err, errn, path, "tensor '%s': dtype %s is not supported (migc loads F32 and I32)",
            unsupported_name, unsupported);
    goto done;
  }

  /* everything checks out against the file size: now read the data section */
  out->data_ = malloc(data_len ? (size_t)data_len : 1);
  if (!out->data_) {
    file_fail(err, errn, path, "out of memory for %" PRId64 " bytes of data", data_len);
    goto done;
  }
  if (!read_exact(fp, out->data_, (size_t)data_len)) {
    file_fail(err, errn, path, "file ends inside the data section (was it truncated meanwhile?)");
    goto done;
  }
  /* names next to each other in one block, so the st_file owns one allocation for them */
  size_t name_bytes = 0;
  for (int j = 0; j < out->n; j++) name_bytes += strlen(names[j]) + 1;
  out->names_ = malloc(name_bytes ? name_bytes : 1);
  if (!out->names_) {
    file_fail(err, errn, path, "out of memory");
    goto done;
  }
  char *np = out->names_;
  for (int j = 0; j < out->n; j++) {
    size_t len = strlen(names[j]) + 1;
    memcpy(np, names[j], len);
    out->tensors[j].name = np;
    np += len;
  }
  for (int j = 0; j < out->n; j++)
    out->tensors[spans[j].index].data = (const char *)out->data_ + spans[j].begin;
  rc = 0;
done:
  if (rc) st_file_free(out);
  free(names);
  free(spans);
  json_free(root);
  free(hdr);
  fclose(fp);
  return rc;
}

const st_tensor *st_file_find(const st_file *f, const char *name) {
  for (int j = 0; j < f->n; j++)
    if (strcmp(f->tensors[j].name, name) == 0) return &f->tensors[j];
  return NULL;
}

const char *st_file_meta(const st_file *f, const char *key) {
  for (int j = 0; j < f->nmeta; j++)
    if (strcmp(f->meta[j].key, key) == 0) return f->meta[j].value;
  return NULL;
}

/* Whether counter `name` belongs to a step with every=: it is STEP.phase, or a
 * STEP.phase is among the names. */
static bool counter_gated(const char *name, int n, const char *const *names) {
  const char *dot = strrchr(name, '.');
  size_t len = dot ? (size_t)(dot - name) : strlen(name);
  for (int k = 0; k < n; k++)
    if (!strncmp(names[k], name, len) && !strcmp(names[k] + len, ".phase")) return true;
  return false;
}

int st_check_step_counters(const char *path, unsigned long long step, int n,
                           const char *const *names, const float *values, char *err,
                           size_t errn) {
  if (step > 1u << 24) return 0;
  for (int k = 0; k < n; k++) {
    float v = values[k];
    if (!counter_gated(names[k], n, names)) {
      if (v != (float)step)
        return file_fail(err, errn, path, "its step metadata says %llu, but its step "
                         "counter %s holds %.9g", step, names[k], v);
    } else if (!(v >= 0 && v <= (float)step && v == (float)(int64_t)v)) {
      return file_fail(err, errn, path, "its step metadata says %llu, but its step "
                       "counter %s holds %.9g (a whole number from 0 to the step, as its "
                       "step updates every few steps)", step, names[k], v);
    }
  }
  return 0;
}

void st_file_free(st_file *f) {
  for (int j = 0; j < f->nmeta; j++) {
    free((char *)f->meta[j].key);
    free((char *)f->meta[j].value);
  }
  free(f->meta);
  free(f->tensors);
  free(f->names_);
  free(f->data_);
  memset(f, 0, sizeof *f);
}
