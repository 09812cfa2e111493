// SPDX-License-Identifier: LGPL-2.1-or-later
/* Unit tests for the string helpers (string-util, string-table, bus-label), the byte queue
 * (buffer) and the secret helpers (crypto-util), each on values and at their edges. */

#include "buffer.h"
#include "bus-label.h"
#include "crypto-util.h"
#include "encoding.h"
#include "string-table.h"
#include "string-util.h"
#include "tests.h"

static void test_strstrip(void) {
        static const struct { const char *in, *out; } cases[] = {
                { "", "" },           { "   ", "" },          { "abc", "abc" },
                { "  abc", "abc" },   { "abc \t\r\n", "abc" }, { "\t a b \n", "a b" },
                { "\n\r\t x", "x" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *s = strdup(cases[i].in);
                CHECK_STR(strstrip(s), cases[i].out);
        }
        printf("strstrip: %zu cases, inner spaces kept\n", ELEMENTSOF(cases));
}

static void test_asprintf_errorf(void) {
        _cleanup_free_ char *s = asprintf_safe("%s-%d", "tunnel", 7), *err = NULL;

        CHECK_STR(s, "tunnel-7");
        CHECK(errorf(&err, -ENOENT, "no %s", "file") == -ENOENT, "errorf keeps a negative r");
        CHECK_STR(err, "no file");
        CHECK(errorf(&err, 0, "second %d", 2) == -EINVAL, "errorf turns r >= 0 into -EINVAL");
        CHECK_STR(err, "second 2"); /* replaced, the first freed (ASan would see a leak) */
        CHECK(errorf(NULL, -EIO, "dropped") == -EIO, "errorf without a message pointer");
        printf("asprintf_safe, errorf: formatting, replacing the message, return values\n");
}

static void test_string_is_safe_id(void) {
        static const char *const good[] = { "a", "web-1", "my.tunnel", "user@host", "A_b.c-d@e", "0" };
        static const char *const bad[] = { "", "a b", "a/b", "../x", "a\nb", "ä", "a:b", "a$b" };

        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                CHECK(string_is_safe_id(good[i], 32), "'%s' refused", good[i]);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                CHECK(!string_is_safe_id(bad[i], 32), "'%s' accepted", bad[i]);
        CHECK(string_is_safe_id("abcd", 4), "max_len itself refused");
        CHECK(!string_is_safe_id("abcde", 4), "max_len + 1 accepted");
        printf("string_is_safe_id: %zu accepted, %zu refused, length bound exact\n", ELEMENTSOF(good),
               ELEMENTSOF(bad));
}

static void test_strv(void) {
        _cleanup_strv_free_ char **l = NULL;
        size_t n = 0;

        CHECK(!strv_contains(l, n, "a"), "empty list contains a");
        CHECK(strv_push(&l, &n, strdup("a")) == 0, "push a");
        CHECK(strv_push(&l, &n, strdup("b")) == 0, "push b");
        CHECK(strv_push(&l, &n, NULL) == -ENOMEM, "a NULL value (failed strdup) is -ENOMEM");
        CHECK(n == 2 && l[2] == NULL, "expected 2 entries, NULL-terminated; got %zu", n);
        CHECK(strv_contains(l, n, "a") && strv_contains(l, n, "b"), "pushed entries found");
        CHECK(!strv_contains(l, n, "c") && !strv_contains(l, 1, "b"), "contains looks only at [0, n)");
        printf("strv_push/strv_contains: push, NULL terminator, -ENOMEM on NULL, bounded search\n");
}

typedef enum Color {
        COLOR_RED,
        COLOR_GREEN,
        COLOR_BLUE,
        _COLOR_MAX,
        _COLOR_INVALID = -EINVAL,
} Color;

static const char *const color_table[_COLOR_MAX] = {
        [COLOR_RED] = "red",
        [COLOR_GREEN] = "green",
        [COLOR_BLUE] = "blue",
};

DEFINE_PRIVATE_STRING_TABLE_LOOKUP(color, Color);

static void test_string_table(void) {
        CHECK_STR(color_to_string(COLOR_RED), "red");
        CHECK_STR(color_to_string(COLOR_BLUE), "blue");
        CHECK(color_to_string(_COLOR_MAX) == NULL, "past the end gives NULL");
        CHECK(color_to_string(_COLOR_INVALID) == NULL, "a negative value gives NULL");
        CHECK(color_from_string("green") == COLOR_GREEN, "green: got %d", color_from_string("green"));
        CHECK(color_from_string("GREEN") == _COLOR_INVALID, "lookups are case-sensitive");
        CHECK(color_from_string("") == _COLOR_INVALID, "empty name");
        CHECK(color_from_string(NULL) == _COLOR_INVALID, "NULL name");
        for (Color c = 0; c < _COLOR_MAX; c++)
                CHECK(color_from_string(color_to_string(c)) == c, "%d does not round-trip", c);
        printf("DEFINE_STRING_TABLE_LOOKUP: both directions, bounds, unknown names, round trip\n");
}

static void test_bus_label(void) {
        static const struct { const char *name, *label; } cases[] = {
                { "", "_" },          { "web", "web" },           { "web-1", "web_2d1" },
                { "1st", "_31st" },   { "a.b", "a_2eb" },         { "_", "_5f" },
                { "a b", "a_20b" },   { "\xff", "_ff" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *e = bus_label_escape(cases[i].name);
                _cleanup_free_ char *u = bus_label_unescape(cases[i].label);
                CHECK_STR(e, cases[i].label);
                CHECK_STR(u, cases[i].name);
        }
        _cleanup_free_ char *u = bus_label_unescape("a_zz_4");
        CHECK_STR(u, "a_zz_4"); /* not an escape: kept as is */
        printf("bus_label_escape/unescape: %zu round trips, leading digit, empty name, bad escapes\n",
               ELEMENTSOF(cases));
}

static void test_buffer_reserve(void) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t off = 0, len = 0, cap = 0;
        uint8_t *before;

        CHECK(buffer_reserve(&buf, &off, len, &cap, 100) == 0 && buf, "first reserve");
        CHECK(cap == 16384, "expected the 16 KiB minimum, got %zu", cap);
        memcpy(buf, "0123456789", 10);
        len = 10;

        /* Room after the data: nothing moves. */
        before = buf;
        CHECK(buffer_reserve(&buf, &off, len, &cap, 100) == 0 && buf == before && cap == 16384,
              "a fitting reserve changed the buffer");

        /* Consumed from the front: the data slides to the start instead of growing. */
        off = 4;
        len = 6;
        CHECK(buffer_reserve(&buf, &off, len, &cap, cap - 8) == 0, "slide");
        CHECK(off == 0 && cap == 16384 && memcmp(buf, "456789", 6) == 0,
              "expected a slide to 0, off %zu cap %zu", off, cap);

        /* Not enough even after sliding: at least doubles, data kept. */
        CHECK(buffer_reserve(&buf, &off, len, &cap, cap) == 0, "grow");
        CHECK(cap == 32768 && memcmp(buf, "456789", 6) == 0, "expected 32768, got %zu", cap);
        CHECK(buffer_reserve(&buf, &off, len, &cap, 100000) == 0, "grow big");
        CHECK(cap == 100006 && memcmp(buf, "456789", 6) == 0, "expected len + n = 100006, got %zu", cap);
        printf("buffer_reserve: minimum, fit, slide, doubling, exact growth\n");
}

static void test_crypto(void) {
        /* FIPS 180-2 appendix B.1. */
        static const char abc_sha256[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        uint8_t h[32];
        _cleanup_free_ char *hex = NULL, *t1 = NULL, *t2 = NULL;

        CHECK(sha256("abc", 3, h) == 0, "sha256 failed");
        hex = hexmem(h, sizeof(h));
        CHECK_STR(hex, abc_sha256);

        CHECK(random_token(&t1) == 0 && random_token(&t2) == 0, "random_token failed");
        CHECK(t1 && strlen(t1) == 64, "expected 64 hex digits, got %zu", t1 ? strlen(t1) : 0);
        CHECK(t1 && t2 && !streq(t1, t2), "two tokens are equal");

        CHECK(secret_equal("s3cret", 6, "s3cret", 6), "equal secrets differ");
        CHECK(!secret_equal("s3cret", 6, "s3creT", 6), "different secrets equal");
        CHECK(!secret_equal("s3cret", 6, "s3cret", 5), "a prefix is equal");
        CHECK(secret_equal("", 0, "", 0), "two empty secrets differ");
        printf("crypto-util: SHA-256 vector, 256-bit tokens, secret_equal on value and length\n");
}

int main(void) {
        test_strstrip();
        test_asprintf_errorf();
        test_string_is_safe_id();
        test_strv();
        test_string_table();
        test_bus_label();
        test_buffer_reserve();
        test_crypto();
        return tests_finish("test-string-util");
}
