// SPDX-License-Identifier: LGPL-2.1-or-later
/* Unit tests for time-util: the monotonic clock moves forward across a sleep by about the
 * sleep, and the wall clock agrees with time(2). */

#include <inttypes.h>
#include <time.h>

#include "tests.h"
#include "time-util.h"

static void test_now_usec(void) {
        uint64_t a, b;
        struct timespec ts = { .tv_nsec = 20 * 1000 * 1000 };

        a = now_usec();
        nanosleep(&ts, NULL);
        b = now_usec();
        CHECK(a > 0, "monotonic clock at 0");
        CHECK(b >= a + 20 * USEC_PER_MSEC, "expected >= 20ms between readings, got %" PRIu64 "us", b - a);
        CHECK(b < a + 10 * USEC_PER_SEC, "expected well under 10s for a 20ms sleep, got %" PRIu64 "us",
              b - a);
        printf("now_usec: a 20ms sleep measures %" PRIu64 "us\n", b - a);
}

static void test_realtime_usec(void) {
        uint64_t before = (uint64_t) time(NULL) * USEC_PER_SEC, r = realtime_usec();
        uint64_t after = ((uint64_t) time(NULL) + 1) * USEC_PER_SEC;

        CHECK(r >= before && r <= after, "expected %" PRIu64 " <= %" PRIu64 " <= %" PRIu64, before, r,
              after);
        CHECK(USEC_PER_SEC == 1000 * USEC_PER_MSEC, "unit constants disagree");
        printf("realtime_usec: within the second time(2) reports\n");
}

int main(void) {
        test_now_usec();
        test_realtime_usec();
        return tests_finish("test-time-util");
}
