// SPDX-License-Identifier: LGPL-2.1-or-later
/* Unit tests for access lists: the decision rule of access.h (longest prefix wins, allow beats
 * deny at equal length, allow rules make the rest denied, scoped and tunnel-wide both apply),
 * IPv4/IPv6/v4-mapped peers, host scopes without case or port, resets, every parse error. */

#include <arpa/inet.h>

#include "access.h"
#include "macro.h"
#include "socket-util.h"
#include "tests.h"

static SocketAddress peer(const char *s) {
        SocketAddress a;
        if (socket_address_parse(s, 1, &a) < 0)
                abort();
        return a;
}

static bool allows(const AccessList *l, const char *scope, const char *addr) {
        SocketAddress a = peer(addr);
        return access_list_allows(l, scope, &a);
}

/* Builds a list from "+ITEMS" (allow) and "-ITEMS" (deny) values, in order. */
static void build(AccessList *l, const char *const *values) {
        for (; *values; values++) {
                const char *reason = NULL;
                int r = access_list_parse(l, *values + 1, **values == '+', true, &reason);
                CHECK(r == 0, "'%s': expected success, got %d (%s)", *values, r, reason ?: "");
        }
}

static void expect(const AccessList *l, const char *scope, const char *addr, bool want, const char *what) {
        CHECK(allows(l, scope, addr) == want, "%s: %s reaching %s: expected %s", what, addr, scope ?: "(tunnel)",
              want ? "allowed" : "refused");
}

static void test_empty(void) {
        AccessList l = {};
        expect(&l, NULL, "203.0.113.1", true, "empty list");
        expect(&l, "3389", "[2001:db8::1]", true, "empty list");
        access_list_done(&l);
}

static void test_decision(void) {
        AccessList l = {};

        /* Deny only: everything else allowed. */
        build(&l, (const char *[]) { "-192.0.2.0/24", NULL });
        expect(&l, NULL, "192.0.2.9", false, "deny only");
        expect(&l, NULL, "192.0.3.9", true, "deny only, no match");
        expect(&l, NULL, "[::ffff:192.0.2.9]", false, "deny only, mapped");
        expect(&l, NULL, "[2001:db8::1]", true, "deny only, other family");
        access_list_done(&l);

        /* Allow rules: what none matches is refused. */
        build(&l, (const char *[]) { "+10.0.0.0/8 2001:db8::/32", NULL });
        expect(&l, NULL, "10.1.2.3", true, "allow");
        expect(&l, NULL, "[::ffff:10.1.2.3]", true, "allow, mapped");
        expect(&l, NULL, "11.1.2.3", false, "allow, no match");
        expect(&l, NULL, "[2001:db8:1::1]", true, "allow v6");
        expect(&l, NULL, "[2001:db9::1]", false, "allow v6, no match");
        access_list_done(&l);

        /* The longest prefix wins, either way round. */
        build(&l, (const char *[]) { "-any", "+10.0.0.0/8", "-10.1.0.0/16", "+10.1.2.3", "-10.1.2.0/24", NULL });
        expect(&l, NULL, "10.9.9.9", true, "/8 allow beats /0 deny");
        expect(&l, NULL, "10.1.9.9", false, "/16 deny beats /8 allow");
        expect(&l, NULL, "10.1.2.4", false, "/24 deny beats /16");
        expect(&l, NULL, "10.1.2.3", true, "/32 allow beats /24 deny");
        expect(&l, NULL, "192.0.2.1", false, "only /0 deny");
        expect(&l, NULL, "[2001:db8::1]", false, "any covers IPv6");
        access_list_done(&l);

        /* Allow beats deny at equal length, whatever the order given. */
        build(&l, (const char *[]) { "-192.0.2.0/24", "+192.0.2.0/24", "-2001:db8::/32", "+2001:db8::/32", NULL });
        expect(&l, NULL, "192.0.2.1", true, "equal length");
        expect(&l, NULL, "[2001:db8::5]", true, "equal length v6");
        access_list_done(&l);
        build(&l, (const char *[]) { "+0.0.0.0/0", "-any", NULL });
        expect(&l, NULL, "198.51.100.1", true, "allow 0.0.0.0/0 and deny any");
        expect(&l, NULL, "[2001:db8::1]", false, "::/0 deny alone in IPv6");
        access_list_done(&l);

        /* /128 and ::/0 */
        build(&l, (const char *[]) { "-::/0", "+2001:db8::1/128", NULL });
        expect(&l, NULL, "[2001:db8::1]", true, "/128 allow");
        expect(&l, NULL, "[2001:db8::2]", false, "::/0 deny");
        expect(&l, NULL, "192.0.2.1", false, "allow rules exist, IPv4 matches none");
        access_list_done(&l);
}

static void test_scopes(void) {
        AccessList l = {};

        build(&l, (const char *[]) { "+10.0.0.0/8", "+3389=10.1.0.0/16", "-2222=10.2.0.0/16",
                                     "+App.Example.COM=10.3.0.0/16", NULL });
        expect(&l, NULL, "10.9.0.1", true, "tunnel-wide");
        expect(&l, NULL, "192.0.2.1", false, "tunnel-wide refuses");
        expect(&l, "3389", "10.1.0.1", true, "scoped allow and tunnel-wide allow");
        expect(&l, "3389", "10.9.0.1", false, "tunnel-wide allows, the port's allow list does not");
        expect(&l, "3389", "192.0.2.1", false, "neither");
        expect(&l, "2222", "10.9.0.1", true, "port with a deny only");
        expect(&l, "2222", "10.2.0.1", false, "port deny");
        expect(&l, "8080", "10.2.0.1", true, "port without rules: tunnel-wide only");
        expect(&l, "8080", "192.0.2.1", false, "port without rules: tunnel-wide refuses");
        expect(&l, "app.example.com", "10.3.0.1", true, "host allow");
        expect(&l, "APP.example.Com", "10.3.0.1", true, "host without case");
        expect(&l, "app.example.com:8000", "10.3.0.1", true, "host with a port");
        expect(&l, "app.example.com", "10.4.0.1", false, "host refuses");
        expect(&l, "app.example.co", "10.4.0.1", true, "a prefix of the host name is another host");
        expect(&l, "app.example.comm", "10.4.0.1", true, "a longer host name is another host");
        expect(&l, "[::1]:80", "10.4.0.1", true, "literal host: tunnel-wide only");
        expect(&l, "", "10.4.0.1", true, "empty scope: tunnel-wide only");
        /* A port's rules narrow the tunnel-wide ones, never widen them. */
        build(&l, (const char *[]) { "-any", "+3389=192.0.2.0/24", NULL });
        expect(&l, "3389", "192.0.2.7", false, "deny any tunnel-wide: a port's allow does not open it");
        access_list_done(&l);
        build(&l, (const char *[]) { "-192.0.2.66", "+3389=192.0.2.0/24", NULL });
        expect(&l, "3389", "192.0.2.7", true, "the port's allow");
        expect(&l, "3389", "192.0.2.66", false, "the tunnel-wide deny holds on the port too");
        access_list_done(&l);
        /* A host scope written with the root's trailing dot is the same host. */
        build(&l, (const char *[]) { "+App.Example.COM.=10.3.0.0/16", NULL });
        expect(&l, "app.example.com", "10.3.0.1", true, "dotted scope, plain host");
        expect(&l, "app.example.com", "10.4.0.1", false, "dotted scope guards the plain host");
        access_list_done(&l);
        /* A port scope written with leading zeros is the same port. */
        build(&l, (const char *[]) { "-03389=10.1.2.0/24", NULL });
        expect(&l, "3389", "10.1.2.1", false, "03389 is 3389");
        access_list_done(&l);
}

static void test_reset(void) {
        AccessList l = {};

        build(&l, (const char *[]) { "+10.0.0.0/8 3389=10.1.0.0/16", "-10.1.2.0/24", NULL });
        CHECK(l.n_rules == 3, "expected 3 rules, got %zu", l.n_rules);
        build(&l, (const char *[]) { "+", NULL });
        CHECK(l.n_rules == 1 && !l.rules[0].allow, "an empty AllowFrom= drops the allow rules only (%zu left)",
              l.n_rules);
        expect(&l, NULL, "192.0.2.1", true, "after the reset of the allow rules");
        expect(&l, "3389", "10.1.2.1", false, "the deny rule stays");
        build(&l, (const char *[]) { "- \t", NULL });
        CHECK(l.n_rules == 0 && !l.rules, "an empty DenyFrom= leaves nothing (%zu)", l.n_rules);
        expect(&l, NULL, "10.1.2.1", true, "empty again");
        /* Commas and runs of blanks separate items, as --allow-ips writes them. */
        build(&l, (const char *[]) { "+10.0.0.1,10.0.0.2, 10.0.0.3\t10.0.0.4", NULL });
        CHECK(l.n_rules == 4, "expected 4 rules, got %zu", l.n_rules);
        access_list_done(&l);
        CHECK(!l.rules && l.n_rules == 0, "access_list_done() leaves an empty list");
        access_list_done(&l);
}

static void test_errors(void) {
        static const struct { const char *value; bool scoped; const char *item, *why; } cases[] = {
                { "10.1.2.3/8", true, "10.1.2.3/8", "bits set" },
                { "10.0.0.0/33", true, "10.0.0.0/33", "0-32" },
                { "::/200", true, "::/200", "0-128" },
                { "10.0.0.0/x", true, "10.0.0.0/x", "prefix length" },
                { "example.com", true, "example.com", "no host names" },
                { "10.0.0.1 nope 10.0.0.2", true, "nope", "no host names" },
                { "=10.0.0.0/8", true, "=10.0.0.0/8", "empty scope" },
                { "3389=", true, "3389=", "after '='" },
                { "0=10.0.0.0/8", true, "0=10.0.0.0/8", "1-65535" },
                { "65536=10.0.0.0/8", true, "65536=10.0.0.0/8", "1-65535" },
                { "99999999999=10.0.0.0/8", true, "99999999999=10.0.0.0/8", "1-65535" },
                { "bad_host=10.0.0.0/8", true, "bad_host=10.0.0.0/8", "host name" },
                { "*.example.com=10.0.0.0/8", true, "*.example.com=10.0.0.0/8", "host name" },
                { "-x.com=10.0.0.0/8", true, "-x.com=10.0.0.0/8", "host name" },
                { "a=b=10.0.0.0/8", true, "a=b=10.0.0.0/8", "no host names" },
                { "3389=example.com", true, "3389=example.com", "no host names" },
                { "3389=10.0.0.0/8", false, "3389=10.0.0.0/8", "no SCOPE=PREFIX" },
                { "\"10.0.0.1\"", true, "\"10.0.0.1\"", "no host names" },
                { "a..test=10.0.0.0/8", true, "a..test=10.0.0.0/8", "host name" },
                { "a.test..=10.0.0.0/8", true, "a.test..=10.0.0.0/8", "host name" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                AccessList l = {};
                const char *reason = NULL;
                char *item = NULL;
                int r;

                build(&l, (const char *[]) { "+192.0.2.0/24", NULL });
                r = access_list_parse_full(&l, cases[i].value, true, cases[i].scoped, &reason, &item);
                CHECK(r < 0, "'%s': expected an error, got %d", cases[i].value, r);
                CHECK_STR(item, cases[i].item);
                CHECK_CONTAINS(reason, cases[i].why);
                CHECK(l.n_rules == 1, "'%s': the list changed on error (%zu rules)", cases[i].value, l.n_rules);
                free(item);
                access_list_done(&l);
        }
        printf("refused %zu malformed values\n", ELEMENTSOF(cases));
}

static void test_cap(void) {
        AccessList l = {};
        const char *reason = NULL;
        char item[32], *big = NULL, *bad = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&big, &size);
        int r;

        for (unsigned i = 0; i < ACCESS_RULES_MAX; i++)
                fprintf(f, "10.%u.%u.0/24 ", i / 256, i % 256);
        fclose(f);
        r = access_list_parse(&l, big, true, true, &reason);
        CHECK(r == 0 && l.n_rules == ACCESS_RULES_MAX, "%u rules: expected success, got %d", ACCESS_RULES_MAX, r);
        expect(&l, NULL, "10.15.255.7", true, "the last of 4096");
        expect(&l, NULL, "10.16.0.7", false, "past the 4096");
        /* Deny rules have their own budget. */
        r = access_list_parse(&l, big, false, true, &reason);
        CHECK(r == 0, "4096 deny rules beside 4096 allow rules: got %d", r);
        expect(&l, NULL, "10.1.2.3", true, "allow beats deny at equal length, 4096 each");
        snprintf(item, sizeof(item), "192.0.2.1");
        r = access_list_parse_full(&l, item, true, true, &reason, &bad);
        CHECK(r == -E2BIG, "rule 4097: expected -E2BIG, got %d", r);
        CHECK_CONTAINS(reason, "too many rules");
        CHECK_STR(bad, "192.0.2.1");
        CHECK(l.n_rules == 2 * ACCESS_RULES_MAX, "the list changed on error");
        r = access_list_parse(&l, "any", false, true, &reason);
        CHECK(r == -E2BIG, "any past the cap: expected -E2BIG, got %d", r);
        free(bad);
        free(big);
        access_list_done(&l);
}

static void test_equal_and_format(void) {
        AccessList a = {}, b = {};
        char buf[ACCESS_RULE_STR_MAX];

        build(&a, (const char *[]) { "+3389=192.0.2.0/24 10.0.0.0/8", "-app.test=2001:db8::/32", NULL });
        build(&b, (const char *[]) { "-app.test=2001:db8::/32", "+10.0.0.0/8 3389=192.0.2.0/24", NULL });
        CHECK(access_list_equal(&a, &b), "the same rules in another order are equal");
        CHECK(strcmp(access_rule_format(&a.rules[0], buf), "10.0.0.0/8") == 0 ||
              strcmp(buf, "3389=192.0.2.0/24") == 0 || strcmp(buf, "app.test=2001:db8::/32") == 0, "format: %s", buf);
        /* Every rule printed and read back gives the same list. */
        {
                AccessList c = {};
                for (size_t i = 0; i < a.n_rules; i++) {
                        const char *reason = NULL;
                        CHECK(access_list_parse(&c, access_rule_format(&a.rules[i], buf), a.rules[i].allow, true,
                                                &reason) == 0, "read back '%s': %s", buf, reason ?: "");
                }
                CHECK(access_list_equal(&a, &c), "printed and read back");
                access_list_done(&c);
        }
        build(&b, (const char *[]) { "-10.0.0.0/8", NULL });
        CHECK(!access_list_equal(&a, &b), "one more rule");
        access_list_done(&b);
        build(&b, (const char *[]) { "+3389=192.0.2.0/24 10.0.0.0/8", "-app.test=2001:db8::/33", NULL });
        CHECK(!access_list_equal(&a, &b), "another prefix length");
        access_list_done(&a);
        access_list_done(&b);
}

int main(void) {
        test_empty();
        test_decision();
        test_scopes();
        test_reset();
        test_errors();
        test_cap();
        test_equal_and_format();
        return tests_finish("test-access");
}
