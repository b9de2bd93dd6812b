/* check.h: a tiny test harness; every test binary ends with "N passed, N failed". */
#ifndef ORCH_CHECK_H
#define ORCH_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_passed, check_failed, check_case_failed;

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      printf("  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);                            \
      check_case_failed = 1;                                                                       \
    }                                                                                              \
  } while (0)

#define CHECK_EQ(a, b)                                                                             \
  do {                                                                                             \
    long long check_a_ = (long long)(a), check_b_ = (long long)(b);                                \
    if (check_a_ != check_b_) {                                                                    \
      printf("  %s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a, #b, check_a_,     \
             check_b_);                                                                            \
      check_case_failed = 1;                                                                       \
    }                                                                                              \
  } while (0)

#define CHECK_STR(a, b)                                                                            \
  do {                                                                                             \
    const char *check_a_ = (a), *check_b_ = (b);                                                   \
    if (check_a_ == NULL || check_b_ == NULL || strcmp(check_a_, check_b_) != 0) {                 \
      printf("  %s:%d: %s == %s failed: '%s' != '%s'\n", __FILE__, __LINE__, #a, #b,               \
             check_a_ ? check_a_ : "(null)", check_b_ ? check_b_ : "(null)");                      \
      check_case_failed = 1;                                                                       \
    }                                                                                              \
  } while (0)

typedef struct check_case {
  const char *name;
  void (*fn)(void);
} check_case;

static inline int check_run(const check_case *cases, int n)
{
  for (int i = 0; i < n; i++) {
    check_case_failed = 0;
    cases[i].fn();
    printf("%s %d - %s\n", check_case_failed ? "not ok" : "ok", i + 1, cases[i].name);
    if (check_case_failed)
      check_failed++;
    else
      check_passed++;
  }
  printf("%d passed, %d failed\n", check_passed, check_failed);
  return check_failed ? 1 : 0;
}

#endif
