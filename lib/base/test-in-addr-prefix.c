// SPDX-License-Identifier: LGPL-2.1-or-later
/* Unit tests for in-addr-prefix: parse/format round trips, every refused input, matching of
 * IPv4, IPv6 and v4-mapped peers at /0, odd lengths, /32 and /128. */

#include <arpa/inet.h>

#include "in-addr-prefix.h"
#include "macro.h"
#include "socket-util.h"
#include "tests.h"

static SocketAddress peer(const char *s) {
        SocketAddress a;
        if (socket_address_parse(s, 1, &a) < 0)
                abort();
        return a;
}

static void test_round_trips(void) {
        static const struct { const char *in, *out; int family; } cases[] = {
                { "192.0.2.0/24", "192.0.2.0/24", AF_INET },
                { "192.0.2.7", "192.0.2.7/32", AF_INET },
                { "0.0.0.0/0", "0.0.0.0/0", AF_INET },
                { "10.0.0.0/8", "10.0.0.0/8", AF_INET },
                { "172.16.0.0/12", "172.16.0.0/12", AF_INET },
                { "2001:db8::/32", "2001:db8::/32", AF_INET6 },
                { "2001:DB8::1", "2001:db8::1/128", AF_INET6 },
                { "::/0", "::/0", AF_INET6 },
                { "fe80::/10", "fe80::/10", AF_INET6 },
                { "::ffff:10.0.0.0/104", "10.0.0.0/8", AF_INET },  /* a mapped prefix is IPv4 */
                { "::ffff:192.0.2.1", "192.0.2.1/32", AF_INET },
                { "::ffff:0:0/96", "0.0.0.0/0", AF_INET },
                { "::ffff:0:0/95", "::fffe:0:0/95", AF_INET6 },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                AddressPrefix p, q;
                char buf[ADDRESS_PREFIX_STR_MAX];
                const char *reason = NULL;
                int r = address_prefix_parse(cases[i].in, &p, &reason);

                if (streq(cases[i].in, "::ffff:0:0/95")) {
                        /* host bits set: ::ffff:0:0 has bit 95 set */
                        CHECK(r == -EINVAL, "'%s': expected -EINVAL, got %d", cases[i].in, r);
                        continue;
                }
                CHECK(r == 0, "'%s': expected success, got %d (%s)", cases[i].in, r, reason ?: "");
                if (r < 0)
                        continue;
                CHECK(p.family == cases[i].family, "'%s': family %d, expected %d", cases[i].in, p.family,
                      cases[i].family);
                CHECK_STR(address_prefix_format(&p, buf), cases[i].out);
                CHECK(address_prefix_parse(buf, &q, NULL) == 0 && memcmp(&p, &q, sizeof(p)) == 0,
                      "'%s' does not parse back to the same prefix", buf);
        }
}

static void test_refused(void) {
        static const struct { const char *in, *why; } cases[] = {
                { "", "expected" },
                { "/8", "expected" },
                { "10.0.0.0/", "prefix length" },
                { "10.0.0.0/-1", "prefix length" },
                { "10.0.0.0/+8", "prefix length" },
                { "10.0.0.0/8x", "prefix length" },
                { "10.0.0.0/8/8", "prefix length" },
                { "10.0.0.0/0008", "prefix length" },
                { "10.0.0.0/33", "0-32" },
                { "::/129", "0-128" },
                { "10.1.2.3/8", "bits set" },
                { "2001:db8::1/32", "bits set" },
                { "192.0.2.1/31", "bits set" },
                { "example.com", "no host names" },
                { "localhost/32", "no host names" },
                { "10", "no host names" },
                { "10.0.0", "no host names" },
                { "010.0.0.1", "no host names" },
                { "1.2.3.4.5", "no host names" },
                { "256.0.0.0", "no host names" },
                { "fe80::1%eth0", "no host names" },
                { "[::1]", "no host names" },
                { " 10.0.0.1", "no host names" },
                { "10.0.0.1 ", "no host names" },
                { "::1::2", "no host names" },
                { "aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa", "expected" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                AddressPrefix p = { .family = 99 };
                const char *reason = NULL;
                int r = address_prefix_parse(cases[i].in, &p, &reason);

                CHECK(r < 0, "'%s': expected an error, got %d", cases[i].in, r);
                CHECK(p.family == 99, "'%s': *ret written on failure", cases[i].in);
                CHECK_CONTAINS(reason, cases[i].why);
        }
        printf("refused %zu malformed prefixes\n", ELEMENTSOF(cases));
}

static void test_match(void) {
        static const struct { const char *prefix, *peer; bool match; } cases[] = {
                { "0.0.0.0/0", "203.0.113.9", true },
                { "0.0.0.0/0", "[2001:db8::1]", false },      /* families stay apart */
                { "::/0", "[2001:db8::1]", true },
                { "::/0", "203.0.113.9", false },
                { "::/0", "[::ffff:203.0.113.9]", false },     /* a mapped peer is IPv4 */
                { "0.0.0.0/0", "[::ffff:203.0.113.9]", true },
                { "10.0.0.0/8", "[::ffff:10.9.8.7]", true },
                { "10.0.0.0/8", "[::ffff:11.9.8.7]", false },
                { "192.0.2.1", "192.0.2.1", true },
                { "192.0.2.1", "192.0.2.2", false },
                { "192.0.2.0/31", "192.0.2.1", true },
                { "192.0.2.0/31", "192.0.2.2", false },
                { "172.16.0.0/12", "172.31.255.255", true },
                { "172.16.0.0/12", "172.32.0.0", false },
                { "2001:db8::/32", "[2001:db8:ffff::1]", true },
                { "2001:db8::/32", "[2001:db9::1]", false },
                { "2001:db8::1", "[2001:db8::1]", true },
                { "2001:db8::1", "[2001:db8::2]", false },
                { "2001:db8::/33", "[2001:db8:7fff::]", true },
                { "2001:db8::/33", "[2001:db8:8000::]", false },
                { "::ffff:10.0.0.0/104", "10.1.1.1", true },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                AddressPrefix p;
                SocketAddress a = peer(cases[i].peer);

                CHECK(address_prefix_parse(cases[i].prefix, &p, NULL) == 0, "'%s' did not parse",
                      cases[i].prefix);
                CHECK(address_prefix_match(&p, &a) == cases[i].match, "%s in %s: expected %s", cases[i].peer,
                      cases[i].prefix, cases[i].match ? "a match" : "no match");
        }
        printf("matched %zu peer/prefix pairs\n", ELEMENTSOF(cases));
}

static void test_mask_and_peer(void) {
        uint8_t a[16];
        SocketAddress m = peer("[::ffff:1.2.3.4]"), u = {};

        CHECK(address_prefix_peer(&m, a) == AF_INET && a[0] == 1 && a[3] == 4 && a[4] == 0,
              "a mapped peer should read as IPv4 1.2.3.4");
        u.sa.sa_family = AF_UNIX;
        CHECK(address_prefix_peer(&u, a) == -EAFNOSUPPORT, "AF_UNIX should be refused");
        memset(a, 0xff, 16);
        address_prefix_mask(a, 12);
        CHECK(a[0] == 0xff && a[1] == 0xf0 && a[2] == 0, "mask /12: got %02x %02x %02x", a[0], a[1], a[2]);
        memset(a, 0xff, 16);
        address_prefix_mask(a, 128);
        CHECK(a[15] == 0xff, "mask /128 should keep everything");
        address_prefix_mask(a, 0);
        CHECK(a[0] == 0 && a[15] == 0, "mask /0 should clear everything");
}

int main(void) {
        test_round_trips();
        test_refused();
        test_match();
        test_mask_and_peer();
        return tests_finish("test-in-addr-prefix");
}
