// SPDX-License-Identifier: LGPL-2.1-or-later
/* Monotonic and wall-clock time in microseconds; see time-util.h.
 * Depends on nothing but libc, so the logger and the rate limiter can use it. */

#include <time.h>

#include "time-util.h"

static uint64_t clock_usec(clockid_t clock) {
        struct timespec ts;
        clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

uint64_t now_usec(void) {
        return clock_usec(CLOCK_MONOTONIC);
}

uint64_t realtime_usec(void) {
        return clock_usec(CLOCK_REALTIME);
}
