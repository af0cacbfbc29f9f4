/* test_png_grid.c: PNG grids read back with stb_image: the layout (cell corners,
 * padding, empty cells), the value mapping (range, clamping, rounding, NaN), gray and
 * RGB, argument errors, and atomic writes that fail without harming an existing file. */
#include "check.h"
#include "runtime/runtime.h"

#include <stb/stb_image.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/migc_test_png_XXXXXX";

static void path_of(char *buf, size_t n, const char *name) {
  snprintf(buf, n, "%s/%s", dir, name);
}

/* Pixel (y, x), channel ch of a loaded picture with comp channels and width w. */
static int px(const unsigned char *img, int w, int comp, int y, int x, int ch) {
  return img[((size_t)y * (size_t)w + (size_t)x) * (size_t)comp + (size_t)ch];
}

/* Gray, 3 images of 2x3 in a 2x2 grid with 1 pixel of padding: a 7x9 picture. */
static void test_gray_layout(void) {
  char p[256], err[512];
  path_of(p, sizeof p, "gray.png");
  enum { N = 3, H = 2, W = 3 };
  float img[N * H * W];
  /* image i, pixel (y, x) = i*0.25 - 1 + (y*W + x)*0.05, all inside [-1, 1] */
  for (int i = 0; i < N; i++)
    for (int k = 0; k < H * W; k++) img[i * H * W + k] = (float)i * 0.25f - 1 + (float)k * 0.05f;
  img[0] = -1;                 /* image 0 top-left: lo is 0 */
  img[H * W - 1] = 1;          /* image 0 bottom-right: hi is 255 */
  img[H * W] = 0;              /* image 1 top-left: the middle, 127.5, rounds to 128 */
  img[2 * H * W + 2] = 0.5f;   /* image 2 top-right: 191.25 rounds to 191 */
  CHECK_MSG(png_write_grid(p, img, N, 1, H, W, 2, 2, -1, 1, 1, err, sizeof err) == 0, "%s",
            err);
  int w, h, comp;
  unsigned char *g = stbi_load(p, &w, &h, &comp, 0);
  CHECK_MSG(g != NULL, "stbi_load: %s", stbi_failure_reason());
  if (!g) return;
  CHECK(w == 1 + 2 * (W + 1) && h == 1 + 2 * (H + 1) && comp == 1);

  /* every pixel against the layout rule */
  int bad = 0;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      int want = 128, cy = (y - 1) / (H + 1), cx = (x - 1) / (W + 1);
      int iy = (y - 1) % (H + 1), ix = (x - 1) % (W + 1);
      int i = cy * 2 + cx;
      if (y >= 1 && x >= 1 && iy < H && ix < W && i < N) {
        float v = img[i * H * W + iy * W + ix];
        want = (int)((v + 1) * 127.5f + 0.5f);
      }
      if (px(g, w, 1, y, x, 0) != want) bad++;
    }
  CHECK_MSG(bad == 0, "%d pixels differ from the layout rule", bad);

  /* corners of each cell, by hand */
  CHECK(px(g, w, 1, 1, 1, 0) == 0);     /* image 0 (0,0): -1 */
  CHECK(px(g, w, 1, 2, 3, 0) == 255);   /* image 0 (1,2): 1 */
  CHECK(px(g, w, 1, 1, 5, 0) == 128);   /* image 1 (0,0): 0 */
  CHECK(px(g, w, 1, 1, 7, 0) == 45);    /* image 1 (0,2): -0.65 -> 44.625 */
  CHECK(px(g, w, 1, 4, 1, 0) == 64);    /* image 2 (0,0): -0.5 -> 63.75 */
  CHECK(px(g, w, 1, 4, 3, 0) == 191);   /* image 2 (0,2): 0.5 */
  CHECK(px(g, w, 1, 5, 3, 0) == 96);    /* image 2 (1,2): -0.5 + 5*0.05 = -0.25 -> 95.625 */
  /* padding: the border, between cells, and the empty fourth cell */
  CHECK(px(g, w, 1, 0, 0, 0) == 128 && px(g, w, 1, 6, 8, 0) == 128);
  CHECK(px(g, w, 1, 3, 2, 0) == 128 && px(g, w, 1, 1, 4, 0) == 128);
  CHECK(px(g, w, 1, 4, 5, 0) == 128 && px(g, w, 1, 5, 7, 0) == 128);
  stbi_image_free(g);
}

/* Clamping and rounding: lo 0, hi 255 makes the mapping the identity before rounding. */
static void test_mapping(void) {
  char p[256], err[512];
  path_of(p, sizeof p, "map.png");
  float v[10] = {-1e9f, -0.1f, 0.49f, 0.5f, 127.5f, 254.49f, 254.5f, 256, 1e30f, NAN};
  int want[10] = {0, 0, 0, 1, 128, 254, 255, 255, 255, 0};
  CHECK_MSG(png_write_grid(p, v, 1, 1, 1, 10, 1, 1, 0, 255, 0, err, sizeof err) == 0, "%s",
            err);
  int w, h, comp;
  unsigned char *g = stbi_load(p, &w, &h, &comp, 0);
  CHECK(g && w == 10 && h == 1 && comp == 1);
  for (int k = 0; g && k < 10; k++)
    CHECK_MSG(g[k] == want[k], "value %d: %d, want %d", k, g[k], want[k]);
  stbi_image_free(g);

  /* infinities clamp too; lo < 0 < hi with an offset range */
  float v2[4] = {-INFINITY, INFINITY, 2, 3};
  CHECK_MSG(png_write_grid(p, v2, 1, 1, 2, 2, 1, 1, 2, 3, 0, err, sizeof err) == 0, "%s", err);
  g = stbi_load(p, &w, &h, &comp, 0);
  CHECK(g && w == 2 && h == 2 && g[0] == 0 && g[1] == 255 && g[2] == 0 && g[3] == 255);
  stbi_image_free(g);
}

/* RGB: planes [c, h, w] become interleaved pixels. Two 2x2 images side by side, pad 0. */
static void test_rgb(void) {
  char p[256], err[512];
  path_of(p, sizeof p, "rgb.png");
  enum { N = 2, C = 3, H = 2, W = 2 };
  float img[N * C * H * W];
  for (int i = 0; i < N; i++)
    for (int c = 0; c < C; c++)
      for (int k = 0; k < H * W; k++)
        img[((i * C) + c) * H * W + k] = (float)(i * 100 + c * 30 + k * 5) / 255.0f;
  CHECK_MSG(png_write_grid(p, img, N, C, H, W, 1, 2, 0, 1, 0, err, sizeof err) == 0, "%s",
            err);
  int w, h, comp;
  unsigned char *g = stbi_load(p, &w, &h, &comp, 0);
  CHECK(g && w == 4 && h == 2 && comp == 3);
  if (!g) return;
  int bad = 0;
  for (int y = 0; y < H; y++)
    for (int x = 0; x < 2 * W; x++)
      for (int c = 0; c < C; c++) {
        int i = x / W, k = y * W + x % W;
        if (px(g, w, 3, y, x, c) != i * 100 + c * 30 + k * 5) bad++;
      }
  CHECK_MSG(bad == 0, "%d channel values differ", bad);
  CHECK(px(g, w, 3, 0, 0, 0) == 0 && px(g, w, 3, 0, 0, 1) == 30 && px(g, w, 3, 0, 0, 2) == 60);
  CHECK(px(g, w, 3, 1, 3, 0) == 115 && px(g, w, 3, 1, 3, 2) == 175); /* image 1, k = 3 */
  stbi_image_free(g);

  /* an RGB grid with padding and an empty cell: padding is gray in all channels */
  CHECK_MSG(png_write_grid(p, img, 1, C, H, W, 1, 2, 0, 1, 2, err, sizeof err) == 0, "%s", err);
  g = stbi_load(p, &w, &h, &comp, 0);
  CHECK(g && w == 2 + 2 * (W + 2) && h == 2 + H + 2 && comp == 3);
  if (!g) return;
  CHECK(px(g, w, 3, 0, 0, 0) == 128 && px(g, w, 3, 0, 0, 2) == 128);
  CHECK(px(g, w, 3, 2, 2, 0) == 0 && px(g, w, 3, 2, 2, 1) == 30);  /* image 0 (0,0) */
  CHECK(px(g, w, 3, 3, 3, 2) == 75);                                /* image 0 (1,1) */
  CHECK(px(g, w, 3, 2, 6, 0) == 128 && px(g, w, 3, 3, 7, 1) == 128); /* empty cell */
  stbi_image_free(g);
}

static void expect_error(const char *path, const float *img, int n, int c, int rows, int cols,
                         float lo, float hi, int pad, const char *msg, int line) {
  char err[512] = "", want[768];
  snprintf(want, sizeof want, "%s: %s", path, msg);
  int rc = png_write_grid(path, img, n, c, 2, 2, rows, cols, lo, hi, pad, err, sizeof err);
  CHECK_MSG(rc != 0 && strcmp(err, want) == 0, "(line %d)\n  got:      %s\n  expected: %s",
            line, err, want);
}

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

static void test_errors(void) {
  char p[256], err[512], want[1024];
  path_of(p, sizeof p, "err.png");
  float img[3 * 4 * 4] = {0};
  expect_error(p, img, 1, 2, 1, 1, 0, 1, 0, "2 channels (expected 1 or 3)", __LINE__);
  expect_error(p, img, 3, 1, 1, 2, 0, 1, 0, "3 images do not fit 1 rows x 2 cols", __LINE__);
  expect_error(p, img, 1, 1, 1, 1, 1, 1, 0, "value range [1, 1] is empty or not finite",
               __LINE__);
  expect_error(p, img, 1, 1, 1, 1, 0, INFINITY, 0, "value range [0, inf] is empty or not finite",
               __LINE__);
  expect_error(p, img, 1, 1, 0, 1, 0, 1, 0, "bad grid: n 1, image 2x2, 0 rows x 1 cols, pad 0",
               __LINE__);
  expect_error(p, img, 1, 1, 1, 1, 0, 1, -1, "bad grid: n 1, image 2x2, 1 rows x 1 cols, pad -1",
               __LINE__);
  expect_error(p, NULL, 1, 1, 1, 1, 0, 1, 0, "no image data", __LINE__);
  expect_error(p, img, 1, 1, 20000, 1, 0, 1, 0,
               "grid picture 2x40000 (width x height) is over 32768 pixels a side", __LINE__);
  CHECK(access(p, F_OK) != 0);

  /* under a regular file: the temporary file cannot be created */
  char notdir[300], under[400];
  path_of(notdir, sizeof notdir, "plainfile");
  FILE *fp = fopen(notdir, "wb");
  fclose(fp);
  snprintf(under, sizeof under, "%s/grid.png", notdir);
  snprintf(want, sizeof want, "cannot create %s.tmp.%ld: Not a directory", under,
           (long)getpid());
  expect_error(under, img, 1, 1, 1, 1, 0, 1, 0, want, __LINE__);
  unlink(notdir);

  /* an existing PNG survives a write that fails on a full disk (the temporary name is a
   * symlink to /dev/full) and no temporary file is left behind */
  path_of(p, sizeof p, "keep.png");
  CHECK_MSG(png_write_grid(p, img, 1, 1, 2, 2, 1, 1, 0, 1, 0, err, sizeof err) == 0, "%s", err);
  size_t n0, n1;
  unsigned char *before = slurp(p, &n0);
  char tmp[300];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", p, (long)getpid());
  CHECK(symlink("/dev/full", tmp) == 0);
  snprintf(want, sizeof want, "cannot write %s: No space left on device", tmp);
  expect_error(p, img, 3, 1, 2, 2, 0, 1, 1, want, __LINE__);
  struct stat sb;
  CHECK(lstat(tmp, &sb) != 0);
  unsigned char *after = slurp(p, &n1);
  CHECK(before && after && n0 == n1 && memcmp(before, after, n0) == 0);
  free(before);
  free(after);
  int w, h, comp;
  unsigned char *g = stbi_load(p, &w, &h, &comp, 0);
  CHECK(g && w == 2 && h == 2 && comp == 1 && g[0] == 0);
  stbi_image_free(g);
}

int main(void) {
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_gray_layout();
  test_mapping();
  test_rgb();
  test_errors();
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return check_done();
}
