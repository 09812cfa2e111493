// SPDX-License-Identifier: LGPL-2.1-or-later
/* Unit tests for parse-util: booleans, unsigned numbers, ports, sizes, time spans, and the
 * host:port split, each at its limits and with the input it must refuse. */

#include <inttypes.h>
#include <limits.h>

#include "macro.h"
#include "parse-util.h"
#include "tests.h"
#include "time-util.h"

static void test_parse_boolean(void) {
        static const char *const yes[] = { "1", "yes", "y", "true", "t", "on", "YES", "True", "ON" };
        static const char *const no[] = { "0", "no", "n", "false", "f", "off", "NO", "False", "OFF" };
        static const char *const bad[] = { "", "2", "yess", "enable", " yes", "yes " };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                CHECK(parse_boolean(yes[i]) == 1, "'%s': expected 1, got %d", yes[i], parse_boolean(yes[i]));
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                CHECK(parse_boolean(no[i]) == 0, "'%s': expected 0, got %d", no[i], parse_boolean(no[i]));
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                CHECK(parse_boolean(bad[i]) == -EINVAL, "'%s': expected -EINVAL, got %d", bad[i],
                      parse_boolean(bad[i]));
        printf("parse_boolean: %zu true, %zu false, %zu refused spellings\n", ELEMENTSOF(yes),
               ELEMENTSOF(no), ELEMENTSOF(bad));
}

static void test_parse_unsigned(void) {
        static const struct { const char *s; int r; unsigned v; } cases[] = {
                { "0", 0, 0 },          { "42", 0, 42 },          { "4294967295", 0, UINT_MAX },
                { "4294967296", -ERANGE, 0 }, { "99999999999999999999999", -ERANGE, 0 },
                { "", -EINVAL, 0 },     { "-1", -EINVAL, 0 },     { "+1", -EINVAL, 0 },
                { " 1", -EINVAL, 0 },   { "1 ", -EINVAL, 0 },     { "12a", -EINVAL, 0 },
                { "0x10", -EINVAL, 0 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                unsigned v = 7777;
                int r = parse_unsigned(cases[i].s, &v);
                CHECK(r == cases[i].r, "'%s': expected %d, got %d", cases[i].s, cases[i].r, r);
                if (cases[i].r == 0)
                        CHECK(v == cases[i].v, "'%s': expected %u, got %u", cases[i].s, cases[i].v, v);
                else
                        CHECK(v == 7777, "'%s': *ret written on failure (%u)", cases[i].s, v);
        }
        printf("parse_unsigned: %zu cases incl. UINT_MAX, overflow, signs, spaces, hex\n",
               ELEMENTSOF(cases));
}

static void test_parse_port(void) {
        uint16_t p = 0;

        CHECK(parse_port("1", &p) == 0 && p == 1, "expected 1, got %u", p);
        CHECK(parse_port("8080", &p) == 0 && p == 8080, "expected 8080, got %u", p);
        CHECK(parse_port("65535", &p) == 0 && p == 65535, "expected 65535, got %u", p);
        CHECK(parse_port("0", &p) == -ERANGE, "port 0 accepted");
        CHECK(parse_port("65536", &p) == -ERANGE, "port 65536 accepted");
        CHECK(parse_port("http", &p) == -EINVAL, "port 'http' accepted");
        CHECK(parse_port("", &p) == -EINVAL, "empty port accepted");
        printf("parse_port: 1, 8080, 65535 accepted; 0, 65536, names, empty refused\n");
}

typedef struct U64Case {
        const char *s;
        int r;
        uint64_t v;
} U64Case;

static void check_u64_cases(const char *name, int (*parse)(const char *, uint64_t *), const U64Case *cases,
                            size_t n) {
        for (size_t i = 0; i < n; i++) {
                uint64_t v = 0;
                int r = parse(cases[i].s, &v);
                CHECK(r == cases[i].r, "%s('%s'): expected %d, got %d", name, cases[i].s, cases[i].r, r);
                if (r == 0 && cases[i].r == 0)
                        CHECK(v == cases[i].v, "%s('%s'): expected %" PRIu64 ", got %" PRIu64, name,
                              cases[i].s, cases[i].v, v);
        }
}

static void test_parse_size(void) {
        static const U64Case cases[] = {
                { "0", 0, 0 },
                { "1048576", 0, 1048576 },
                { "64K", 0, 64 * 1024 },
                { "64KiB", 0, 64 * 1024 },
                { "16M", 0, 16 * 1024 * 1024 },
                { "16MiB", 0, 16 * 1024 * 1024 },
                { "1G", 0, UINT64_C(1) << 30 },
                { "3GiB", 0, UINT64_C(3) << 30 },
                { "18446744073709551615", 0, UINT64_MAX },
                { "17179869184G", -ERANGE, 0 }, /* 2^34 GiB = 2^64 */
                { "1k", -EINVAL, 0 },
                { "1 K", -EINVAL, 0 },
                { "1T", -EINVAL, 0 },
                { "K", -EINVAL, 0 },
                { "", -EINVAL, 0 },
        };

        check_u64_cases("parse_size", parse_size, cases, ELEMENTSOF(cases));
        printf("parse_size: %zu cases incl. K/M/G and KiB/MiB/GiB, overflow, lower case refused\n",
               ELEMENTSOF(cases));
}

static void test_parse_sec(void) {
        static const U64Case cases[] = {
                { "30", 0, 30 * USEC_PER_SEC },
                { "30s", 0, 30 * USEC_PER_SEC },
                { "30sec", 0, 30 * USEC_PER_SEC },
                { "500ms", 0, 500 * USEC_PER_MSEC },
                { "500msec", 0, 500 * USEC_PER_MSEC },
                { "2m", 0, 120 * USEC_PER_SEC },
                { "2min", 0, 120 * USEC_PER_SEC },
                { "1h", 0, 3600 * USEC_PER_SEC },
                { "1min 30s", 0, 90 * USEC_PER_SEC },
                { "1min30s", 0, 90 * USEC_PER_SEC },
                { " 1h\t2m ", 0, 3720 * USEC_PER_SEC },
                { "0", 0, 0 },
                { "", -EINVAL, 0 },
                { "   ", -EINVAL, 0 },
                { "10d", -EINVAL, 0 },
                { "s", -EINVAL, 0 },
                { "-1s", -EINVAL, 0 },
                { "1.5s", -EINVAL, 0 },
                { "99999999999999999h", -ERANGE, 0 },
        };

        check_u64_cases("parse_sec", parse_sec, cases, ELEMENTSOF(cases));
        printf("parse_sec: %zu cases incl. sums, every unit, fractions and unknown units refused\n",
               ELEMENTSOF(cases));
}

static void test_split_host_port(void) {
        static const struct { const char *s; int r; const char *host; uint16_t port; } cases[] = {
                { "example.com:8443", 0, "example.com", 8443 },
                { "example.com", 0, "example.com", 443 },
                { "1.2.3.4:80", 0, "1.2.3.4", 80 },
                { "[::1]:8080", 0, "::1", 8080 },
                { "[::1]", 0, "::1", 443 },
                { "::1", 0, "::1", 443 }, /* bare IPv6: no port */
                { ":80", 0, "", 80 },
                { "[::1]x", -EINVAL, NULL, 0 },
                { "[::1", -EINVAL, NULL, 0 },
                { "host:0", -ERANGE, NULL, 0 },
                { "host:http", -EINVAL, NULL, 0 },
                { "host:", -EINVAL, NULL, 0 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *host = NULL;
                uint16_t port = 0;
                int r = split_host_port(cases[i].s, 443, &host, &port);
                CHECK(r == cases[i].r, "'%s': expected %d, got %d", cases[i].s, cases[i].r, r);
                if (r == 0 && cases[i].r == 0) {
                        CHECK_STR(host, cases[i].host);
                        CHECK(port == cases[i].port, "'%s': expected port %u, got %u", cases[i].s,
                              cases[i].port, port);
                }
        }

        _cleanup_free_ char *host = NULL;
        uint16_t port = 0;
        CHECK(split_host_port("host", 0, &host, &port) == -EINVAL, "no port and no default accepted");
        printf("split_host_port: %zu cases incl. IPv6 brackets, defaults, bad ports\n",
               ELEMENTSOF(cases) + 1);
}

static void test_authority_port(void) {
        CHECK(authority_port("example.com:8443") == 8443, "got %u", authority_port("example.com:8443"));
        CHECK(authority_port("[::1]:81") == 81, "got %u", authority_port("[::1]:81"));
        CHECK(authority_port("example.com") == 0, "got %u", authority_port("example.com"));
        CHECK(authority_port("example.com:x") == 0, "got %u", authority_port("example.com:x"));
        CHECK(authority_port(NULL) == 0, "got %u", authority_port(NULL));
        printf("authority_port: host:port, [v6]:port, none, junk, NULL\n");
}

int main(void) {
        test_parse_boolean();
        test_parse_unsigned();
        test_parse_port();
        test_parse_size();
        test_parse_sec();
        test_split_host_port();
        test_authority_port();
        return tests_finish("test-parse-util");
}
