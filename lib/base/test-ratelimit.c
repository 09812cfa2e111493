// SPDX-License-Identifier: LGPL-2.1-or-later
/* Unit tests for ratelimit: the burst passes, the rest is held back and counted, and a new
 * interval reports the count once in the log. */

#include <fcntl.h>
#include <time.h>

#include "fileio.h"
#include "log.h"
#include "ratelimit.h"
#include "tests.h"
#include "time-util.h"

static char logpath[] = "/tmp/test-ratelimit-XXXXXX";

static void sleep_usec(uint64_t usec) {
        struct timespec ts = { .tv_sec = (time_t) (usec / USEC_PER_SEC),
                               .tv_nsec = (long) (usec % USEC_PER_SEC * 1000) };
        nanosleep(&ts, NULL);
}

/* Runs ratelimit_below() once with stderr captured; returns what it decided, *ret_log what
 * it logged. */
static bool below_logged(RateLimit *rl, char **ret_log) {
        int saved = dup(STDERR_FILENO), fd;
        bool b;

        fd = open(logpath, O_WRONLY | O_TRUNC);
        dup2(fd, STDERR_FILENO);
        close(fd);
        b = ratelimit_below(rl);
        fflush(stderr);
        dup2(saved, STDERR_FILENO);
        close(saved);
        if (read_full_file(logpath, 4096, ret_log, NULL) < 0)
                *ret_log = NULL;
        return b;
}

static void test_burst(void) {
        RateLimit rl = { .interval_usec = 60 * USEC_PER_SEC, .burst = 3 };
        unsigned passed = 0;

        for (unsigned i = 0; i < 10; i++)
                passed += ratelimit_below(&rl);
        CHECK(passed == 3, "expected the burst of 3 to pass, got %u", passed);
        CHECK(rl.suppressed == 7, "expected 7 suppressed, got %u", rl.suppressed);
        printf("ratelimit_below: burst 3 of 10 in one interval, 7 counted\n");
}

static void test_new_interval_reports(void) {
        RateLimit rl = { .interval_usec = 30 * USEC_PER_MSEC, .burst = 1 };
        _cleanup_free_ char *log1 = NULL, *log2 = NULL, *log3 = NULL;

        CHECK(below_logged(&rl, &log1), "first message held back");
        CHECK(log1 && !*log1, "nothing to report yet, got '%s'", log1 ?: "(null)");
        CHECK(!ratelimit_below(&rl) && !ratelimit_below(&rl), "second and third passed");

        sleep_usec(2 * rl.interval_usec);
        CHECK(below_logged(&rl, &log2), "a new interval held the first message back");
        CHECK_CONTAINS(log2, "(2 similar messages suppressed)");
        CHECK(rl.suppressed == 0 && rl.num == 1, "counters not reset: suppressed %u num %u", rl.suppressed,
              rl.num);

        sleep_usec(2 * rl.interval_usec);
        CHECK(below_logged(&rl, &log3), "third interval");
        CHECK(log3 && !*log3, "reported with nothing suppressed: '%s'", log3 ?: "(null)");
        printf("ratelimit_below: a new interval logs the suppressed count once, then resets\n");
}

int main(void) {
        int fd = mkstemp(logpath);

        if (fd < 0)
                abort();
        close(fd);
        unsetenv("JOURNAL_STREAM"); /* the report must come to our stderr, not the journal */
        log_set_prefix("test-ratelimit");
        test_burst();
        test_new_interval_reports();
        (void) unlink(logpath);
        return tests_finish("test-ratelimit");
}
