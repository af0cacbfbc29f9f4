/* png_grid.c: a batch of images as one PNG grid, for sample sheets and latent traversals.
 *
 * Layout (as torchvision's make_grid): cell (r, k) holds image r*cols + k, its top-left
 * pixel at (pad + r*(h+pad), pad + k*(w+pad)); the picture is
 * (pad + rows*(h+pad)) x (pad + cols*(w+pad)) pixels. Padding and cells beyond the last
 * image are mid gray (128), not black: MNIST digits are white on black, and a black
 * border would run their backgrounds together.
 *
 * The PNG is encoded in memory by stb_image_write (Debian's libstb), then written with
 * file_write_atomic. */
#include "runtime/runtime.h"

#include <math.h>
#include <stb/stb_image_write.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* v in [lo, hi] to 0..255: clamped, rounded to nearest (halves up); NaN is 0. */
static unsigned char to_byte(float v, float lo, float scale) {
  float x = (v - lo) * scale;
  if (!(x > 0)) return 0;
  if (x >= 255) return 255;
  return (unsigned char)(x + 0.5f);
}

/* stb's output callback: appends to a growing buffer; a failed allocation is remembered. */
typedef struct {
  unsigned char *buf;
  size_t len, cap;
  bool oom;
} png_sink;

static void sink_append(void *ctx, void *data, int size) {
  png_sink *s = ctx;
  if (s->oom || size <= 0) return;
  if (s->len + (size_t)size > s->cap) {
    size_t cap = s->cap ? s->cap : 4096;
    while (cap < s->len + (size_t)size) cap *= 2;
    unsigned char *nb = realloc(s->buf, cap);
    if (!nb) {
      s->oom = true;
      return;
    }
    s->buf = nb;
    s->cap = cap;
  }
  memcpy(s->buf + s->len, data, (size_t)size);
  s->len += (size_t)size;
}

int png_write_grid(const char *path, const float *images, int n, int c, int h, int w, int rows,
                   int cols, float lo, float hi, int pad, char *err, size_t errn) {
  if (c != 1 && c != 3) return file_fail(err, errn, path, "%d channels (expected 1 or 3)", c);
  if (n < 0 || h < 1 || w < 1 || rows < 1 || cols < 1 || pad < 0)
    return file_fail(err, errn, path, "bad grid: n %d, image %dx%d, %d rows x %d cols, pad %d",
                    n, h, w, rows, cols, pad);
  if ((int64_t)rows * cols < n)
    return file_fail(err, errn, path, "%d images do not fit %d rows x %d cols", n, rows, cols);
  if (!(lo < hi) || !isfinite(hi - lo))
    return file_fail(err, errn, path, "value range [%g, %g] is empty or not finite",
                    (double)lo, (double)hi);
  if (n > 0 && !images) return file_fail(err, errn, path, "no image data");
  /* stb and PNG take int sizes; keep the whole picture well inside them */
  int64_t gh = (int64_t)pad + (int64_t)rows * (h + (int64_t)pad);
  int64_t gw = (int64_t)pad + (int64_t)cols * (w + (int64_t)pad);
  if (gh > 1 << 15 || gw > 1 << 15)
    return file_fail(err, errn, path,
                    "grid picture %lldx%lld (width x height) is over 32768 pixels a side",
                    (long long)gw, (long long)gh);

  size_t stride = (size_t)gw * (size_t)c;
  unsigned char *pix = malloc(stride * (size_t)gh);
  if (!pix) return file_fail(err, errn, path, "out of memory");
  memset(pix, 128, stride * (size_t)gh);
  float scale = 255.0f / (hi - lo);
  for (int i = 0; i < n; i++) {
    const float *img = images + (size_t)i * (size_t)c * (size_t)h * (size_t)w; /* [c,h,w] */
    size_t y0 = (size_t)pad + (size_t)(i / cols) * (size_t)(h + pad);
    size_t x0 = (size_t)pad + (size_t)(i % cols) * (size_t)(w + pad);
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++)
        for (int ch = 0; ch < c; ch++)
          pix[(y0 + (size_t)y) * stride + (x0 + (size_t)x) * (size_t)c + (size_t)ch] =
              to_byte(img[((size_t)ch * (size_t)h + (size_t)y) * (size_t)w + (size_t)x], lo,
                      scale);
  }

  png_sink sink = {0};
  int ok = stbi_write_png_to_func(sink_append, &sink, (int)gw, (int)gh, c, pix, (int)stride);
  free(pix);
  int rc;
  if (!ok || sink.oom) {
    rc = file_fail(err, errn, path, "PNG encoding failed%s", sink.oom ? ": out of memory" : "");
  } else {
    const void *parts[1] = {sink.buf};
    size_t lens[1] = {sink.len};
    rc = file_write_atomic(path, parts, lens, 1, err, errn);
  }
  free(sink.buf);
  return rc;
}
