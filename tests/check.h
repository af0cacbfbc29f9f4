/* check.h: the assertions every unit test uses. A failed CHECK prints where and
 * why, and the test keeps going; check_done() prints "N passed, N failed" and gives
 * the exit status. */
#ifndef MIGC_TEST_CHECK_H
#define MIGC_TEST_CHECK_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;

#define CHECK(cond)                                                                   \
  do {                                                                                \
    if (cond) {                                                                       \
      check_passed++;                                                                 \
    } else {                                                                          \
      check_failed++;                                                                 \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);       \
    }                                                                                 \
  } while (0)

#define CHECK_MSG(cond, ...)                                                          \
  do {                                                                                \
    if (cond) {                                                                       \
      check_passed++;                                                                 \
    } else {                                                                          \
      check_failed++;                                                                 \
      fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);        \
      fprintf(stderr, __VA_ARGS__);                                                   \
      fputc('\n', stderr);                                                            \
    }                                                                                 \
  } while (0)

#define CHECK_STR(a, b)                                                               \
  do {                                                                                \
    const char *check_a_ = (a), *check_b_ = (b);                                      \
    CHECK_MSG(check_a_ && check_b_ && strcmp(check_a_, check_b_) == 0,                \
              "\n  got:      \"%s\"\n  expected: \"%s\"", check_a_ ? check_a_ : "(null)", \
              check_b_ ? check_b_ : "(null)");                                        \
  } while (0)

/* |a-b| <= atol + rtol*|b| */
#define CHECK_NEAR(a, b, rtol, atol)                                                  \
  do {                                                                                \
    double check_x_ = (a), check_y_ = (b);                                            \
    CHECK_MSG(fabs(check_x_ - check_y_) <= (atol) + (rtol)*fabs(check_y_),            \
              "%.9g vs %.9g", check_x_, check_y_);                                    \
  } while (0)

static inline int check_done(void) {
  printf("%d passed, %d failed\n", check_passed, check_failed);
  return check_failed ? 1 : 0;
}

#endif
