/*
 * The pass/fail bookkeeping of the C test programs (vectors_test.c,
 * member_test.c): each check counts, a failure prints its test name and
 * what was checked, and check_summary() prints the totals and gives the
 * exit status. Header-only (static functions): each program has its own
 * counts.
 */
#ifndef MQSEAL_TESTS_CHECK_H
#define MQSEAL_TESTS_CHECK_H

#include <stdio.h>

#include "mqseal.h"

static unsigned passed, failed;

static void check(int ok, const char *what, const char *name) {
  if (ok) {
    passed++;
  } else {
    failed++;
    printf("FAIL %s: %s\n", name, what);
  }
}

/* Checks that `rc` is `want`, printing both names (and reasons) when not. */
static void expect(MqsealStatus rc, MqsealStatus want, const char *what, const char *name) {
  if (rc != want)
    printf("    %s: expected %s (%d%s%s), got %s (%d%s%s)\n", what, mqseal_error_code_name(want), (int)want,
           *mqseal_error_reason(want) ? ", " : "", mqseal_error_reason(want), mqseal_error_code_name(rc), (int)rc,
           *mqseal_error_reason(rc) ? ", " : "", mqseal_error_reason(rc));
  check(rc == want, what, name);
}

/* Prints "<what>: N passed, M failed" and gives the exit status: 0 only
 * when nothing failed and something was checked. */
static int check_summary(const char *what) {
  printf("%s: %u passed, %u failed\n", what, passed, failed);
  return failed == 0 && passed > 0 ? 0 : 1;
}

#endif
