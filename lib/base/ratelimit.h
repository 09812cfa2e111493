// SPDX-License-Identifier: LGPL-2.1-or-later
/* A rate limit for log messages that a peer can provoke (failed logins, a full descriptor
 * table): at most `burst` per `interval_usec`; the rest are counted and reported later. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef struct RateLimit {
        uint64_t interval_usec, begin;
        unsigned burst, num, suppressed;
} RateLimit;

/* True when one more message may go out now. Opening a new interval after some were held back
 * logs "(N similar messages suppressed)" first. */
bool ratelimit_below(RateLimit *rl);
