// SPDX-License-Identifier: LGPL-2.1-or-later
/* The log rate limiter; see ratelimit.h. It sits above log.c (it reports what it held back),
 * so log.c itself never needs it. */

#include <assert.h>

#include "log.h"
#include "ratelimit.h"
#include "time-util.h"

bool ratelimit_below(RateLimit *rl) {
        uint64_t ts;

        assert(rl);

        ts = now_usec();
        if (rl->begin == 0 || ts - rl->begin > rl->interval_usec) {
                if (rl->suppressed > 0)
                        log_warning("(%u similar messages suppressed)", rl->suppressed);
                rl->begin = ts;
                rl->num = 0;
                rl->suppressed = 0;
        }
        if (rl->num < rl->burst) {
                rl->num++;
                return true;
        }
        rl->suppressed++;
        return false;
}
