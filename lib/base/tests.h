// SPDX-License-Identifier: LGPL-2.1-or-later
/* A minimal assertion kit for the unit tests: each check prints what it expected and got. */
#pragma once

#include <stdio.h>
#include <stdlib.h>

static unsigned tests_run, tests_failed;

#define CHECK(cond, ...)                                                                   \
        do {                                                                               \
                tests_run++;                                                               \
                if (!(cond)) {                                                             \
                        tests_failed++;                                                    \
                        fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);    \
                        fprintf(stderr, __VA_ARGS__);                                      \
                        fputc('\n', stderr);                                               \
                }                                                                          \
        } while (0)

#define CHECK_STR(a, b)                                                                    \
        do {                                                                               \
                const char *_a = (a), *_b = (b);                                           \
                CHECK(_a && _b && strcmp(_a, _b) == 0, "expected '%s', got '%s'", _b ?: "(null)", \
                      _a ?: "(null)");                                                     \
        } while (0)

#define CHECK_CONTAINS(hay, needle)                                                        \
        do {                                                                               \
                const char *_h = (hay), *_n = (needle);                                    \
                CHECK(_h && strstr(_h, _n), "expected to contain '%s', got '%s'", _n, _h ?: "(null)"); \
        } while (0)

static inline int tests_finish(const char *name) {
        printf("%s: %u checks, %u failed\n", name, tests_run, tests_failed);
        return tests_failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
