/* test_hungarian.c: the Hungarian algorithm on hand cases (identity, permutation, where
 * greedy fails, negative scores, ties), against brute force over every permutation for
 * n <= 7, on a large matrix, and matched accuracy on permuted and noisy labellings. */
#include "check.h"
#include "runtime/runtime.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A fixed-seed generator so that failures reproduce (splitmix64). */
static uint64_t rng_state = 0x5eed;
static uint64_t next_u64(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static int64_t rand_in(int64_t lo, int64_t hi) { /* [lo, hi] */
  return lo + (int64_t)(next_u64() % (uint64_t)(hi - lo + 1));
}

static bool is_permutation(const int *a, int n) {
  bool seen[512] = {false};
  for (int i = 0; i < n; i++) {
    if (a[i] < 0 || a[i] >= n || seen[a[i]]) return false;
    seen[a[i]] = true;
  }
  return true;
}

static int64_t total(const int64_t *s, int n, const int *a) {
  int64_t t = 0;
  for (int i = 0; i < n; i++) t += s[i * n + a[i]];
  return t;
}

/* The best total over all n! assignments, by Heap's algorithm; brute_force_visited
 * counts the assignments seen, so the test can check it saw n! of them. */
static long brute_force_visited;
static int64_t brute_force(const int64_t *s, int n) {
  brute_force_visited = 1;
  int perm[8], c[8] = {0};
  for (int i = 0; i < n; i++) perm[i] = i;
  int64_t best = total(s, n, perm);
  for (int i = 1; i < n;) {
    if (c[i] < i) {
      int j = i % 2 ? c[i] : 0, t = perm[j];
      perm[j] = perm[i];
      perm[i] = t;
      int64_t v = total(s, n, perm);
      if (v > best) best = v;
      brute_force_visited++;
      c[i]++;
      i = 1;
    } else {
      c[i++] = 0;
    }
  }
  return best;
}

static void test_hand_cases(void) {
  int a[8];
  /* identity */
  int64_t id[9] = {5, 1, 1, 1, 5, 1, 1, 1, 5};
  CHECK(hungarian_max(id, 3, a) == 0);
  CHECK(a[0] == 0 && a[1] == 1 && a[2] == 2);

  /* a permutation: row i goes to column p[i] */
  int p[5] = {3, 0, 4, 1, 2};
  int64_t pm[25] = {0};
  for (int i = 0; i < 5; i++) pm[i * 5 + p[i]] = 7;
  CHECK(hungarian_max(pm, 5, a) == 0);
  CHECK(memcmp(a, p, sizeof p) == 0);

  /* greedy takes the 10 and is left with 0; the best is 9 + 9 */
  int64_t g[4] = {10, 9, 9, 0};
  CHECK(hungarian_max(g, 2, a) == 0);
  CHECK(a[0] == 1 && a[1] == 0);
  /* at 3x3: greedy (by largest entry, or row by row) takes 10, then 0 + 1 = 11; the
   * best is 9 + 9 + 1 = 19 */
  int64_t g3[9] = {10, 9, 0, 9, 0, 0, 0, 0, 1};
  CHECK(hungarian_max(g3, 3, a) == 0);
  CHECK(a[0] == 1 && a[1] == 0 && a[2] == 2);
  CHECK(total(g3, 3, a) == 19 && brute_force(g3, 3) == 19);

  /* negative scores: the least bad assignment */
  int64_t neg[4] = {-1, -100, -100, -2};
  CHECK(hungarian_max(neg, 2, a) == 0);
  CHECK(a[0] == 0 && a[1] == 1);

  /* ties: every assignment scores the same; any permutation is right */
  int64_t flat[16];
  for (int k = 0; k < 16; k++) flat[k] = 3;
  CHECK(hungarian_max(flat, 4, a) == 0);
  CHECK(is_permutation(a, 4) && total(flat, 4, a) == 12);
  /* two optimal assignments; the answer is one of them and is deterministic */
  int64_t two[4] = {1, 1, 1, 1};
  int b[2];
  CHECK(hungarian_max(two, 2, a) == 0 && hungarian_max(two, 2, b) == 0);
  CHECK(is_permutation(a, 2) && a[0] == b[0] && a[1] == b[1]);

  /* 1x1, 0x0, bad sizes, scores whose range would overflow the potentials */
  int64_t one = -42;
  CHECK(hungarian_max(&one, 1, a) == 0 && a[0] == 0);
  CHECK(hungarian_max(NULL, 0, NULL) == 0);
  CHECK(hungarian_max(id, -1, a) != 0);
  int64_t wide[4] = {INT64_MAX, 0, 0, INT64_MIN};
  CHECK(hungarian_max(wide, 2, a) != 0);
  int64_t big[4] = {(int64_t)1 << 58, 0, 0, 1}; /* within range: fine */
  CHECK(hungarian_max(big, 2, a) == 0 && a[0] == 0 && a[1] == 1);
}

static void test_against_brute_force(void) {
  int mismatches = 0, bad_perms = 0, cases = 0;
  int a[8];
  int64_t s[64];
  for (int n = 1; n <= 7; n++)
    for (int trial = 0; trial < 60; trial++) {
      /* alternate wide ranges, narrow ranges (many ties) and negative ones */
      int64_t lo = trial % 3 == 0 ? -1000 : trial % 3 == 1 ? 0 : -3;
      int64_t hi = trial % 3 == 0 ? 1000 : trial % 3 == 1 ? 2 : 0;
      for (int k = 0; k < n * n; k++) s[k] = rand_in(lo, hi);
      if (hungarian_max(s, n, a) != 0 || !is_permutation(a, n)) {
        bad_perms++;
        continue;
      }
      if (total(s, n, a) != brute_force(s, n)) mismatches++;
      long fact = 1;
      for (int k = 2; k <= n; k++) fact *= k;
      if (brute_force_visited != fact) bad_perms++;
      cases++;
    }
  CHECK_MSG(bad_perms == 0, "%d runs failed or gave no permutation", bad_perms);
  CHECK_MSG(mismatches == 0, "%d of %d cases below the brute-force optimum", mismatches, cases);
}

/* n = 300: a permutation, at least as good as the planted one, and no better pair swap. */
static void test_large(void) {
  enum { N = 300 };
  int64_t *s = malloc(sizeof(int64_t) * N * N);
  int *a = malloc(sizeof(int) * N), planted[N];
  for (int k = 0; k < N * N; k++) s[k] = rand_in(0, 1000);
  /* a planted assignment scoring 1500 per row beats every other by a wide margin */
  for (int i = 0; i < N; i++) planted[i] = (i * 7 + 3) % N;
  for (int i = 0; i < N; i++) s[i * N + planted[i]] = 1500 + rand_in(0, 10);
  CHECK(hungarian_max(s, N, a) == 0);
  CHECK(is_permutation(a, N));
  CHECK(memcmp(a, planted, sizeof planted) == 0);

  /* pure noise: check 2-opt optimality (no swap of two rows' columns improves) */
  for (int k = 0; k < N * N; k++) s[k] = rand_in(-500, 500);
  CHECK(hungarian_max(s, N, a) == 0);
  CHECK(is_permutation(a, N));
  int improving = 0;
  for (int i = 0; i < N; i++)
    for (int j = i + 1; j < N; j++)
      if (s[i * N + a[j]] + s[j * N + a[i]] > s[i * N + a[i]] + s[j * N + a[j]]) improving++;
  CHECK_MSG(improving == 0, "%d improving swaps", improving);
  free(a);
  free(s);
}

static void test_matched_accuracy(void) {
  enum { COUNT = 1000, K = 10 };
  int32_t label[COUNT], pred[COUNT];
  int perm[K] = {4, 7, 0, 9, 2, 5, 1, 8, 3, 6}, map[K];
  for (int i = 0; i < COUNT; i++) {
    label[i] = (int32_t)rand_in(0, K - 1);
    pred[i] = perm[label[i]]; /* code value perm[l] stands for label l */
  }
  CHECK(matched_accuracy(pred, label, COUNT, K, map) == 1.0);
  int ok = 0;
  for (int l = 0; l < K; l++) ok += map[perm[l]] == l;
  CHECK(ok == K);
  CHECK(matched_accuracy(pred, label, COUNT, K, NULL) == 1.0);

  /* 100 items mislabelled: accuracy 0.9 exactly, the mapping unchanged */
  for (int i = 0; i < 100; i++) pred[i] = perm[(label[i] + 1) % K];
  CHECK(matched_accuracy(pred, label, COUNT, K, map) == 0.9);
  ok = 0;
  for (int l = 0; l < K; l++) ok += map[perm[l]] == l;
  CHECK(ok == K);

  /* one code for everything: the best is the most common label */
  int32_t lab6[6] = {0, 1, 1, 2, 1, 0}, zero6[6] = {0};
  CHECK_NEAR(matched_accuracy(zero6, lab6, 6, 3, map), 0.5, 0, 1e-15);
  CHECK(map[0] == 1);

  /* ties: either mapping of two equally good ones gives the same accuracy */
  int32_t pt[4] = {0, 0, 1, 1}, lt[4] = {0, 1, 0, 1};
  CHECK(matched_accuracy(pt, lt, 4, 2, map) == 0.5);
  CHECK(is_permutation(map, 2));

  /* bad inputs */
  int32_t out[2] = {0, 3}, in[2] = {0, 1};
  CHECK(matched_accuracy(out, in, 2, 2, map) == -1);
  CHECK(matched_accuracy(in, out, 2, 2, map) == -1);
  int32_t negv[1] = {-1};
  CHECK(matched_accuracy(negv, in, 1, 2, map) == -1);
  CHECK(matched_accuracy(in, in, 2, 0, map) == -1);
  CHECK(matched_accuracy(NULL, NULL, 0, 2, map) == 0.0);
}

int main(void) {
  test_hand_cases();
  test_against_brute_force();
  test_large();
  test_matched_accuracy();
  return check_done();
}
