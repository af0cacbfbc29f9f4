/* hungarian.c: optimal one-to-one assignment, and InfoGAN's matched accuracy.
 *
 * hungarian_max is the Hungarian algorithm in its O(n^3) shortest-augmenting-path form
 * (Kuhn-Munkres with potentials; the version in e-maxx's "Hungarian algorithm"), run
 * on the costs max(score) - score so that minimising cost maximises the score. Rows
 * are added one at a time; each addition finds a shortest augmenting path over the
 * reduced costs a[i][j] - u[i] - v[j] >= 0 and keeps those potentials feasible.
 * All arithmetic is exact (int64): the result is a true optimum, ties broken in a
 * fixed, deterministic way. */
#include "runtime/runtime.h"

#include <stdlib.h>
#include <string.h>

int hungarian_max(const int64_t *score, int n, int *assign) {
  if (n < 0 || (n > 0 && (!score || !assign))) return 1;
  if (n == 0) return 0;
  size_t nn = (size_t)n * (size_t)n;
  int64_t hi = score[0], lo = score[0];
  for (size_t k = 1; k < nn; k++) {
    if (score[k] > hi) hi = score[k];
    if (score[k] < lo) lo = score[k];
  }
  /* costs lie in [0, range]; potentials stay within n * range, so bound range such
   * that no sum of a few of them can overflow */
  uint64_t range = (uint64_t)hi - (uint64_t)lo;
  if (range > (uint64_t)(INT64_MAX / 4) / ((uint64_t)n + 1)) return 1;

  /* 1-based rows and columns as in the textbook; index 0 is the virtual start column */
  size_t m = (size_t)n + 1;
  int64_t *u = calloc(m, sizeof *u), *v = calloc(m, sizeof *v);
  int64_t *minv = malloc(m * sizeof *minv);
  int *p = calloc(m, sizeof *p), *way = calloc(m, sizeof *way); /* p[col] = row, 0: none */
  bool *used = malloc(m * sizeof *used);
  int rc = 1;
  if (!u || !v || !minv || !p || !way || !used) goto done;
#define COST(i, j) (hi - score[(size_t)((i)-1) * (size_t)n + (size_t)((j)-1)])
  for (int i = 1; i <= n; i++) {
    p[0] = i;
    int j0 = 0;
    for (size_t j = 0; j < m; j++) minv[j] = INT64_MAX, used[j] = false;
    do { /* grow the tree from row i until it reaches a free column */
      used[j0] = true;
      int i0 = p[j0], j1 = 0;
      int64_t delta = INT64_MAX;
      for (int j = 1; j <= n; j++) {
        if (used[j]) continue;
        int64_t cur = COST(i0, j) - u[i0] - v[j];
        if (cur < minv[j]) minv[j] = cur, way[j] = j0;
        if (minv[j] < delta) delta = minv[j], j1 = j;
      }
      for (int j = 0; j <= n; j++) {
        if (used[j]) {
          u[p[j]] += delta;
          v[j] -= delta;
        } else {
          minv[j] -= delta;
        }
      }
      j0 = j1;
    } while (p[j0] != 0);
    do { /* flip the augmenting path */
      int j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0);
  }
#undef COST
  for (int j = 1; j <= n; j++) assign[p[j] - 1] = j - 1;
  rc = 0;
done:
  free(used);
  free(way);
  free(p);
  free(minv);
  free(v);
  free(u);
  return rc;
}

double matched_accuracy(const int32_t *pred, const int32_t *label, int64_t count, int k,
                        int *mapping) {
  if (k < 1 || count < 0 || (count > 0 && (!pred || !label))) return -1;
  /* table[code][label]: how often code value `code` was predicted for label `label` */
  int64_t *table = calloc((size_t)k * (size_t)k, sizeof *table);
  int *assign = malloc((size_t)k * sizeof *assign);
  double acc = -1;
  if (!table || !assign) goto done;
  for (int64_t i = 0; i < count; i++) {
    if (pred[i] < 0 || pred[i] >= k || label[i] < 0 || label[i] >= k) goto done;
    table[(size_t)pred[i] * (size_t)k + (size_t)label[i]]++;
  }
  if (hungarian_max(table, k, assign)) goto done;
  int64_t correct = 0;
  for (int code = 0; code < k; code++)
    correct += table[(size_t)code * (size_t)k + (size_t)assign[code]];
  if (mapping) memcpy(mapping, assign, (size_t)k * sizeof *assign);
  acc = count ? (double)correct / (double)count : 0.0;
done:
  free(assign);
  free(table);
  return acc;
}
