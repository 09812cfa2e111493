// SPDX-License-Identifier: LGPL-2.1-or-later
/* stderr logger with syslog priority prefixes and a small rate limiter. */

#include <stdio.h>
#include <time.h>

#include "log.h"
#include "util.h"

int log_max_level = LOG_INFO;
static const char *log_prefix = NULL;

void log_set_prefix(const char *prefix) {
        log_prefix = prefix;
}

int log_parse_level(const char *s) {
        static const char *const names[] = { "emerg", "alert", "crit", "err",
                                             "warning", "notice", "info", "debug" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (strcaseeq(s, names[i]))
                        return (int) i;
        if (strcaseeq(s, "error"))
                return LOG_ERR;
        return -EINVAL;
}

int log_internal(int level, int error, const char *format, ...) {
        char buf[2048];
        va_list ap;
        int saved = errno;

        error = abs(error);
        errno = error; /* for %m */
        va_start(ap, format);
        vsnprintf(buf, sizeof(buf), format, ap);
        va_end(ap);

        /* Priority prefixes are what journald parses from a stream; on a terminal they are
         * noise, so humans get the bare line. */
        if (isatty(STDERR_FILENO))
                fprintf(stderr, "%s%s%s\n", log_prefix ?: "", log_prefix ? ": " : "", buf);
        else
                fprintf(stderr, "<%d>%s%s%s\n", level, log_prefix ?: "", log_prefix ? ": " : "", buf);

        errno = saved;
        return -error;
}

bool ratelimit_below(RateLimit *rl) {
        uint64_t ts = now_usec();

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
